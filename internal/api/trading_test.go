package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/market"
	"kinko/internal/people"
	"kinko/internal/trading"
)

const (
	jpy ledger.AssetID = 1
	btc ledger.AssetID = 2
)

// btcJPY is the test market: yen per bitcoin on a 1,000 yen tick, lots of
// 0.001 BTC, maker 5 bps and taker 15 bps, a dealer desk at 50 bps, orders
// up to 10,000,000,000 yen; the band, breaker and operators' bounds are the
// defaults.
var btcJPY = trading.Listing{ID: 1, Code: "BTC/JPY", Base: btc, Quote: jpy, Scale: 1_0000_0000, TickSize: 1_000, LotSize: 100_000,
	MinQty: 100_000, MaxQty: 100_0000_0000, MaxPrice: 100_000_000_000, MaxOrders: 1 << 20, MakerFeeBps: 5, TakerFeeBps: 15,
	DealerSpreadBps: 50, QuoteValidityNs: 10e9, DealerMaxLong: 10_0000_0000, DealerMaxShort: 10_0000_0000, MaxOrderNotional: 10_000_000_000}

// submit applies a command to the env's core directly, failing the test on
// any refusal.
func (e *env) submit(cmd core.Command) {
	e.t.Helper()
	o, err := e.core.Submit(context.Background(), e.clock.Now(), e.sign(cmd))
	if err == nil {
		err = o.EventErr()
	}
	if err != nil {
		e.t.Fatalf("%s: %v", cmd.Kind(), err)
	}
}

// listBTCJPY lists the test market (asked by aiko, approved by ren) and
// opens it: two operators set its index at 10,000,000 yen (a market that
// never traded has no reference, and trades nothing).
func (e *env) listBTCJPY() {
	a, b := "aiko", "ren"
	if e.listers[0] != "" {
		a, b = e.listers[0], e.listers[1]
	}
	e.twoPerson(core.KindListMarketRequest, core.ListMarketPayload{Listing: btcJPY}, a, b, people.RoleAdmin)
	e.twoPerson(core.KindIndexPrice, core.MarketPricePayload{Market: 1, Price: 10_000_000}, a, b, people.RoleAdmin)
}

// fundSeq numbers the funding transfers of every test env.
var fundSeq atomic.Uint64

// fund credits amount of asset to an account from the asset's equity
// account (created if missing).
func (e *env) fund(k ledger.AccountKey, amount uint64) {
	e.t.Helper()
	eq := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: k.Asset, Kind: ledger.KindEquity}
	e.submit(core.CreateAccounts{Keys: []ledger.AccountKey{eq}})
	e.submit(core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 7, Lo: fundSeq.Add(1)}, Debit: eq, Credit: k, Amount: ledger.AmountOf(amount)}}})
}

func avail(o ledger.OwnerID, a ledger.AssetID) ledger.AccountKey {
	return ledger.AccountKey{Owner: o, Asset: a, Kind: ledger.KindAvailable}
}

// trader signs a customer up, verifies them and funds them with yen and
// satoshi.
func (e *env) trader(email string, yen, sat uint64) (ledger.OwnerID, string) {
	e.t.Helper()
	id, tok := e.signUp(email)
	e.submit(core.SetKYC{Customer: id, KYC: people.KYCVerified, Actor: "kenji", Reason: "documents checked"})
	if yen > 0 {
		e.fund(avail(id, jpy), yen)
	}
	if sat > 0 {
		e.fund(avail(id, btc), sat)
	}
	return id, tok
}

// balanceMap reads GET /v1/me/balances as "ASSET kind" -> balance.
func (e *env) balanceMap(tok string) map[string]string {
	e.t.Helper()
	var b struct {
		Balances []BalanceView `json:"balances"`
	}
	r := e.do("GET", "/v1/me/balances", tok, nil)
	if r.status != 200 {
		e.t.Fatalf("balances = %d %s", r.status, r.body)
	}
	r.json(e.t, &b)
	out := map[string]string{}
	for _, v := range b.Balances {
		out[v.Asset+" "+v.Kind] = v.Balance.String()
	}
	return out
}

func wantBalances(t *testing.T, who string, got map[string]string, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s %s = %s; want %s (all: %v)", who, k, got[k], w, got)
		}
	}
}

// TestTradingThroughTheAPI: two verified, funded customers trade through
// the API. A sell rests, a buy fills at the maker's price; balances,
// depth, the public trades, candles and the market list show it, and the
// public answers carry no customer id. Then a replace, a cancel, and an
// operator's cancel-all release the holds.
func TestTradingThroughTheAPI(t *testing.T) {
	e := newEnv(t)
	e.listBTCJPY()
	alice, atok := e.trader("alice@example.jp", 0, 2_0000_0000)
	bob, btok := e.trader("bob@example.jp", 50_000_000, 0)

	// Alice sells 1 BTC at 10,000,000 yen: it rests and holds 1 BTC.
	r := e.do("POST", "/v1/me/orders", atok, OrderRequest{Market: "BTC/JPY", Side: Side(market.Sell), Type: OrderType(market.Limit), Price: 10_000_000, Qty: 1_0000_0000, ClientOrderID: "a-1"})
	var sell PlaceView
	r.json(t, &sell)
	if r.status != 201 || sell.Resting != 1_0000_0000 || sell.Filled != 0 || len(sell.Trades) != 0 || sell.ClientOrderID != "a-1" {
		t.Fatalf("sell = %d %s", r.status, r.body)
	}
	var open Page[OrderView]
	e.do("GET", "/v1/me/orders", atok, nil).json(t, &open)
	if len(open.Items) != 1 || open.Items[0].ID != sell.Order || open.Items[0].Open != 1_0000_0000 || open.Items[0].Held != 1_0000_0000 || open.Items[0].Market != "BTC/JPY" {
		t.Fatalf("alice's open orders = %+v", open)
	}
	// The JSON spells side and type.
	if r := e.do("GET", "/v1/me/orders", atok, nil); !bytes.Contains(r.body, []byte(`"side":"sell","type":"limit"`)) {
		t.Fatalf("open orders = %s", r.body)
	}

	// Bob buys 0.5 BTC at up to 10,010,000: it fills at 10,000,000.
	r = e.do("POST", "/v1/me/orders", btok, map[string]any{"market": "BTC-JPY", "side": "buy", "type": "limit", "price": "10010000", "qty": "50000000"})
	var buy PlaceView
	r.json(t, &buy)
	if r.status != 201 || buy.Filled != 5000_0000 || buy.Resting != 0 || len(buy.Trades) != 1 {
		t.Fatalf("buy = %d %s", r.status, r.body)
	}
	f := buy.Trades[0]
	// Notional 5,000,000 yen; the taker pays 15 bps, the maker 5.
	if f.Price != 10_000_000 || f.Qty != 5000_0000 || sideName(f.Side) != "buy" || f.Role != "taker" || f.Order != buy.Order || f.Notional != 5_000_000 || f.Fee != 7_500 {
		t.Fatalf("bob's fill = %+v", f)
	}
	if bytes.Contains(r.body, []byte(strconv.FormatUint(uint64(alice), 10))) {
		t.Fatalf("bob's answer names alice: %s", r.body)
	}
	wantBalances(t, "bob", e.balanceMap(btok), map[string]string{"JPY available": "44992500", "JPY held": "0", "BTC available": "50000000"})
	wantBalances(t, "alice", e.balanceMap(atok), map[string]string{"JPY available": "4997500", "BTC available": "100000000", "BTC held": "50000000"})

	// Depth, trades, candles, the market list.
	var d DepthView
	e.do("GET", "/v1/markets/BTC-JPY/depth", "", nil).json(t, &d)
	if d.Market != "BTC/JPY" || len(d.Bids) != 0 || len(d.Asks) != 1 || d.Asks[0] != (LevelView{Price: 10_000_000, Qty: 5000_0000, Orders: 1}) {
		t.Fatalf("depth = %+v", d)
	}
	r = e.do("GET", "/v1/markets/BTC-JPY/trades", "", nil)
	var trades struct{ Items []TradeView }
	r.json(t, &trades)
	if r.status != 200 || len(trades.Items) != 1 || trades.Items[0].Price != 10_000_000 || trades.Items[0].Qty != 5000_0000 || trades.Items[0].Seq != 1 || trades.Items[0].Entry == 0 {
		t.Fatalf("trades = %d %s", r.status, r.body)
	}
	for _, id := range []ledger.OwnerID{alice, bob} {
		if bytes.Contains(r.body, []byte(strconv.FormatUint(uint64(id), 10))) || bytes.Contains(r.body, []byte("owner")) {
			t.Fatalf("public trades name a customer: %s", r.body)
		}
	}
	if !bytes.Contains(r.body, []byte(`"taker_side":"buy"`)) || !strings.HasSuffix(trades.Items[0].Time.Format(time.RFC3339), "Z") {
		t.Fatalf("trades = %s", r.body)
	}
	var cs struct {
		Interval string
		Items    []CandleView
	}
	e.do("GET", "/v1/markets/BTC-JPY/candles?interval=1h", "", nil).json(t, &cs)
	if cs.Interval != "1h" || len(cs.Items) != 1 || cs.Items[0] != (CandleView{Time: cs.Items[0].Time, Open: 10_000_000, High: 10_000_000, Low: 10_000_000, Close: 10_000_000, Volume: 5000_0000, Trades: 1}) ||
		cs.Items[0].Time.Minute() != 0 || cs.Items[0].Time.Second() != 0 {
		t.Fatalf("candles = %+v", cs)
	}
	var ms struct{ Items []MarketView }
	e.do("GET", "/v1/markets", "", nil).json(t, &ms)
	if len(ms.Items) != 1 {
		t.Fatalf("markets = %+v", ms)
	}
	if m := ms.Items[0]; m.Code != "BTC/JPY" || m.Base != "BTC" || m.Quote != "JPY" || m.TickSize != 1_000 || m.LotSize != 100_000 || m.TakerFeeBps != 15 ||
		m.BestBid != 0 || m.BestAsk != 10_000_000 || m.LastPrice != 10_000_000 || m.Trades != 1 || m.Resting != 1 || !m.Dealer || len(m.Halted) != 0 {
		t.Fatalf("market = %+v", m)
	}

	// Alice lowers her price and quantity: the hold follows.
	r = e.do("POST", fmt.Sprintf("/v1/me/orders/%d/replace", sell.Order), atok, ReplaceRequest{Price: 10_100_000, Qty: 2000_0000})
	if r.status != 200 {
		t.Fatalf("replace = %d %s", r.status, r.body)
	}
	e.do("GET", "/v1/me/orders", atok, nil).json(t, &open)
	if len(open.Items) != 1 || open.Items[0].Price != 10_100_000 || open.Items[0].Open != 2000_0000 {
		t.Fatalf("after the replace: %+v", open)
	}
	wantBalances(t, "alice", e.balanceMap(atok), map[string]string{"BTC available": "130000000", "BTC held": "20000000"})
	// She cancels: the hold comes back.
	if r := e.do("POST", fmt.Sprintf("/v1/me/orders/%d/cancel", sell.Order), atok, nil); r.status != 200 {
		t.Fatalf("cancel = %d %s", r.status, r.body)
	}
	wantBalances(t, "alice", e.balanceMap(atok), map[string]string{"BTC available": "150000000", "BTC held": "0"})
	if r := e.do("POST", fmt.Sprintf("/v1/me/orders/%d/cancel", sell.Order), atok, nil); r.status != 404 {
		t.Fatalf("cancel twice = %d %s", r.status, r.body)
	}

	// An operator empties the book; the holds are released.
	for i := range 3 {
		if r := e.do("POST", "/v1/me/orders", btok, OrderRequest{Market: "BTC/JPY", Side: Side(market.Buy), Type: OrderType(market.PostOnly), Price: Units(9_000_000 + i*1_000), Qty: 1000_0000}); r.status != 201 {
			t.Fatalf("post-only bid = %d %s", r.status, r.body)
		}
	}
	kenji, sora := e.loginOperator("kenji"), e.loginOperator("sora")
	if r := e.do("POST", "/v1/markets/BTC-JPY/cancel-all", kenji, CancelAllRequest{}); r.status != 422 {
		t.Fatalf("cancel-all without a reason = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/markets/BTC-JPY/cancel-all", sora, CancelAllRequest{Reason: "x"}); r.status != 403 {
		t.Fatalf("cancel-all by the ciso = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/markets/BTC-JPY/cancel-all", btok, CancelAllRequest{Reason: "x"}); r.status != 403 {
		t.Fatalf("cancel-all by a customer = %d %s", r.status, r.body)
	}
	r = e.do("POST", "/v1/markets/BTC-JPY/cancel-all", kenji, CancelAllRequest{Reason: "market maker's feed is broken"})
	var after MarketView
	r.json(t, &after)
	if r.status != 200 || after.Resting != 0 || after.BestBid != 0 {
		t.Fatalf("cancel-all = %d %s", r.status, r.body)
	}
	wantBalances(t, "bob", e.balanceMap(btok), map[string]string{"JPY available": "44992500", "JPY held": "0"})
	if r := e.do("POST", "/v1/markets/DOGE-JPY/cancel-all", kenji, CancelAllRequest{Reason: "x"}); r.status != 404 {
		t.Fatalf("cancel-all of an unknown market = %d %s", r.status, r.body)
	}
}

// sideName names a side for the test's messages.
func sideName(s Side) string { b, _ := s.MarshalText(); return string(b) }

// TestTradingBadInput: each bad order is a problem with the right status
// and leaves the customer's balances as they were.
func TestTradingBadInput(t *testing.T) {
	e := newEnv(t)
	e.listBTCJPY()
	_, atok := e.trader("alice@example.jp", 10_000_000, 1_0000_0000)
	_, btok := e.trader("bob@example.jp", 10_000_000, 1_0000_0000)
	carolID, ctok := e.signUp("carol@example.jp") // not verified
	e.fund(avail(carolID, jpy), 10_000_000)

	// Alice's resting order and a used client order id.
	r := e.do("POST", "/v1/me/orders", atok, OrderRequest{Market: "BTC/JPY", Side: Side(market.Sell), Type: OrderType(market.Limit), Price: 10_900_000, Qty: 100_000, ClientOrderID: "once"}, "Idempotency-Key", "k-1")
	var rest PlaceView
	r.json(t, &rest)
	if r.status != 201 {
		t.Fatalf("resting sell = %d %s", r.status, r.body)
	}
	order := func(price, qty int64) map[string]any {
		return map[string]any{"market": "BTC/JPY", "side": "buy", "type": "limit", "price": Units(price), "qty": Units(qty)}
	}
	with := func(m map[string]any, k string, v any) map[string]any { m[k] = v; return m }
	cases := []struct {
		name   string
		tok    string
		method string
		path   string
		body   any
		want   int
		key    string
	}{
		{"price off the tick", atok, "POST", "/v1/me/orders", order(10_000_500, 100_000), 422, ""},
		{"zero price", atok, "POST", "/v1/me/orders", order(0, 100_000), 422, ""},
		{"qty below the lot", atok, "POST", "/v1/me/orders", order(10_000_000, 50_000), 422, ""},
		{"qty off the lot", atok, "POST", "/v1/me/orders", order(10_000_000, 150_000), 422, ""},
		{"unknown market", atok, "POST", "/v1/me/orders", with(order(10_000_000, 100_000), "market", "DOGE/JPY"), 404, ""},
		{"insufficient yen", atok, "POST", "/v1/me/orders", order(10_000_000, 2_0000_0000), 422, ""},
		{"insufficient coins", atok, "POST", "/v1/me/orders", with(order(10_500_000, 1_0000_0000), "side", "sell"), 422, ""},
		{"unverified customer", ctok, "POST", "/v1/me/orders", order(10_000_000, 100_000), 422, ""},
		{"client order id replayed", atok, "POST", "/v1/me/orders", with(order(10_000_000, 100_000), "client_order_id", "once"), 409, "k-2"},
		{"client order id too long", atok, "POST", "/v1/me/orders", with(order(10_000_000, 100_000), "client_order_id", strings.Repeat("x", 65)), 400, ""},
		{"unknown side", atok, "POST", "/v1/me/orders", with(order(10_000_000, 100_000), "side", "hold"), 400, ""},
		{"unknown type", atok, "POST", "/v1/me/orders", with(order(10_000_000, 100_000), "type", "stop"), 400, ""},
		{"unknown field", atok, "POST", "/v1/me/orders", with(order(10_000_000, 100_000), "leverage", 100), 400, ""},
		{"price as a JSON number", atok, "POST", "/v1/me/orders", with(order(10_000_000, 100_000), "price", 10_000_000), 400, `"field":"price"`},
		{"quantity as a fraction", atok, "POST", "/v1/me/orders", with(order(10_000_000, 100_000), "qty", "0.5"), 400, `"field":"qty"`},
		{"malformed JSON", atok, "POST", "/v1/me/orders", `{"market":`, 400, ""},
		{"trailing data", atok, "POST", "/v1/me/orders", `{"market":"BTC/JPY"} {}`, 400, ""},
		{"post-only crossing", btok, "POST", "/v1/me/orders", with(order(10_900_000, 100_000), "type", "post_only"), 422, ""},
		{"price above the band", atok, "POST", "/v1/me/orders", order(11_001_000, 100_000), 422, ""},
		{"price below the band", atok, "POST", "/v1/me/orders", with(order(8_999_000, 100_000), "side", "sell"), 422, ""},
		{"replace beyond the band", atok, "POST", fmt.Sprintf("/v1/me/orders/%d/replace", rest.Order), ReplaceRequest{Price: 12_000_000, Qty: 100_000}, 422, ""},
		{"market order with nothing to take", atok, "POST", "/v1/me/orders", with(with(order(10_000_000, 100_000), "type", "market"), "side", "sell"), 422, ""},
		{"cancel of someone else's order", btok, "POST", fmt.Sprintf("/v1/me/orders/%d/cancel", rest.Order), nil, 403, ""},
		{"replace of someone else's order", btok, "POST", fmt.Sprintf("/v1/me/orders/%d/replace", rest.Order), ReplaceRequest{Price: 10_000_000, Qty: 100_000}, 403, ""},
		{"cancel of an unknown order", atok, "POST", "/v1/me/orders/999999/cancel", nil, 404, ""},
		{"cancel of a bad order id", atok, "POST", "/v1/me/orders/x/cancel", nil, 400, ""},
		{"cancel with a body", atok, "POST", fmt.Sprintf("/v1/me/orders/%d/cancel", rest.Order), `{"all":true}`, 400, ""},
		{"replace off the tick", atok, "POST", fmt.Sprintf("/v1/me/orders/%d/replace", rest.Order), ReplaceRequest{Price: 10_900_001, Qty: 100_000}, 422, ""},
		{"replace past the funds", atok, "POST", fmt.Sprintf("/v1/me/orders/%d/replace", rest.Order), ReplaceRequest{Price: 10_900_000, Qty: 10_0000_0000}, 422, ""},
		{"an operator placing", e.loginOperator("kenji"), "POST", "/v1/me/orders", order(10_000_000, 100_000), 403, ""},
		{"anonymous", "", "POST", "/v1/me/orders", order(10_000_000, 100_000), 401, ""},
		{"depth of an unknown market", "", "GET", "/v1/markets/DOGE-JPY/depth", nil, 404, ""},
		{"depth past the bound", "", "GET", "/v1/markets/BTC-JPY/depth?levels=501", nil, 400, ""},
		{"trades past the bound", "", "GET", "/v1/markets/BTC-JPY/trades?limit=501", nil, 400, ""},
		{"candles of an unknown interval", "", "GET", "/v1/markets/BTC-JPY/candles?interval=2m", nil, 400, ""},
	}
	run := func(name, tok, method, path string, body any, want int, key string) {
		t.Helper()
		before := map[string]map[string]string{"alice": e.balanceMap(atok), "bob": e.balanceMap(btok), "carol": e.balanceMap(ctok)}
		headers := []string{}
		if key != "" {
			headers = append(headers, "Idempotency-Key", key)
		}
		r := e.do(method, path, tok, body, headers...)
		if r.status != want || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s %s; want %d problem+json", name, r.status, r.header.Get("Content-Type"), r.body, want)
		}
		after := map[string]map[string]string{"alice": e.balanceMap(atok), "bob": e.balanceMap(btok), "carol": e.balanceMap(ctok)}
		for who := range before {
			wantBalances(t, name+": "+who, after[who], before[who])
		}
	}
	for _, c := range cases {
		run(c.name, c.tok, c.method, c.path, c.body, c.want, c.key)
	}
	// The same key and body answers the first placement again, without
	// placing it twice.
	r = e.do("POST", "/v1/me/orders", atok, OrderRequest{Market: "BTC/JPY", Side: Side(market.Sell), Type: OrderType(market.Limit), Price: 10_900_000, Qty: 100_000, ClientOrderID: "once"}, "Idempotency-Key", "k-1")
	if r.status != 201 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replayed key = %d %s", r.status, r.body)
	}

	// A halted market: 503, nothing held.
	kenji := e.loginOperator("kenji")
	if r := e.do("POST", "/v1/halts", kenji, HaltRequest{Switch: "BTC:trade", Reason: "x"}); r.status != 201 {
		t.Fatalf("halt = %d %s", r.status, r.body)
	}
	run("halted market", atok, "POST", "/v1/me/orders", order(10_000_000, 100_000), 503, `"code":"halted","detail":"BTC:trade is halted since`)
	// The customer is told what is halted and why, never which operator
	// halted it.
	if r := e.do("POST", "/v1/me/orders", atok, order(10_000_000, 100_000)); strings.Contains(string(r.body), "kenji") {
		t.Errorf("a customer is shown the operator's name: %s", r.body)
	}
	run("replace in a halted market", atok, "POST", fmt.Sprintf("/v1/me/orders/%d/replace", rest.Order), ReplaceRequest{Price: 10_950_000, Qty: 100_000}, 503, "")
	var ms struct{ Items []MarketView }
	e.do("GET", "/v1/markets", "", nil).json(t, &ms)
	if len(ms.Items) != 1 || strings.Join(ms.Items[0].Halted, ",") != "BTC:trade" {
		t.Fatalf("halted market = %+v", ms.Items)
	}
	// Cancelling stays allowed: it only takes risk away.
	if r := e.do("POST", fmt.Sprintf("/v1/me/orders/%d/cancel", rest.Order), atok, "{}"); r.status != 200 {
		t.Fatalf("cancel in a halted market = %d %s", r.status, r.body)
	}
	wantBalances(t, "alice", e.balanceMap(atok), map[string]string{"BTC available": "100000000", "BTC held": "0", "JPY available": "10000000"})
}

// TestMarketStream reads the live stream: a depth snapshot on connect,
// then a trade event after a crossing order.
func TestMarketStream(t *testing.T) {
	e := newEnv(t)
	e.listBTCJPY()
	_, atok := e.trader("alice@example.jp", 0, 1_0000_0000)
	_, btok := e.trader("bob@example.jp", 50_000_000, 0)
	if r := e.do("POST", "/v1/me/orders", atok, OrderRequest{Market: "BTC/JPY", Side: Side(market.Sell), Type: OrderType(market.Limit), Price: 10_000_000, Qty: 1_0000_0000}); r.status != 201 {
		t.Fatalf("sell = %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/markets/XEM-JPY/stream", "", nil); r.status != 404 {
		t.Fatalf("stream of an unknown market = %d", r.status)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.http.URL+"/v1/markets/BTC-JPY/stream", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	rd := bufio.NewReader(res.Body)
	// next reads one event, skipping comments.
	next := func() (string, []byte) {
		t.Helper()
		var event string
		var data []byte
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the stream: %v", err)
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "" && event != "":
				return event, data
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = []byte(strings.TrimPrefix(line, "data: "))
			}
		}
	}
	ev, data := next()
	var d DepthView
	if err := json.Unmarshal(data, &d); ev != "depth" || err != nil || len(d.Asks) != 1 || d.Asks[0].Price != 10_000_000 || len(d.Bids) != 0 {
		t.Fatalf("first event %s %s (%v)", ev, data, err)
	}
	if r := e.do("POST", "/v1/me/orders", btok, OrderRequest{Market: "BTC/JPY", Side: Side(market.Buy), Type: OrderType(market.IOC), Price: 10_000_000, Qty: 3000_0000}); r.status != 201 {
		t.Fatalf("buy = %d %s", r.status, r.body)
	}
	for {
		ev, data = next()
		if ev == "trade" {
			break
		}
	}
	var tr TradeView
	if err := json.Unmarshal(data, &tr); err != nil || tr.Price != 10_000_000 || tr.Qty != 3000_0000 || sideName(tr.TakerSide) != "buy" || tr.Seq != 1 {
		t.Fatalf("trade event %s (%v)", data, err)
	}
	if bytes.Contains(data, []byte("owner")) {
		t.Fatalf("the stream names a customer: %s", data)
	}
	// The book changed too: a depth event with what is left.
	for {
		ev, data = next()
		if ev == "depth" {
			break
		}
	}
	if err := json.Unmarshal(data, &d); err != nil || len(d.Asks) != 1 || d.Asks[0].Qty != 7000_0000 {
		t.Fatalf("depth after the trade %s (%v)", data, err)
	}
}

// TestDealerThroughTheAPI: an operator sets the reference; a customer
// takes a quote and executes it once; the desk's position shows the
// house's inventory and profit.
func TestDealerThroughTheAPI(t *testing.T) {
	e := newEnv(t)
	e.listBTCJPY()
	house := func(a ledger.AssetID) ledger.AccountKey {
		return ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: a, Kind: ledger.KindHouse}
	}
	e.fund(house(btc), 5_0000_0000)
	e.fund(house(jpy), 1_000_000_000)
	cust, ctok := e.trader("dealer@example.jp", 20_000_000, 0)
	_, otok := e.trader("other@example.jp", 20_000_000, 0)
	kenji, sora := e.loginOperator("kenji"), e.loginOperator("sora")

	quote := QuoteRequest{Market: "BTC/JPY", Side: Side(market.Buy), Qty: 1000_0000}
	if r := e.do("POST", "/v1/me/dealer/quotes", ctok, quote); r.status != 422 {
		t.Fatalf("quote with no reference and an empty book = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/markets/BTC-JPY/reference", sora, ReferenceRequest{Price: 10_000_000}); r.status != 403 {
		t.Fatalf("reference by the ciso = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/markets/BTC-JPY/reference", kenji, ReferenceRequest{Price: -1}); r.status != 422 {
		t.Fatalf("negative reference = %d %s", r.status, r.body)
	}
	r := e.do("POST", "/v1/markets/BTC-JPY/reference", kenji, ReferenceRequest{Price: 10_000_000})
	var dv DealerView
	r.json(t, &dv)
	if r.status != 200 || dv.Reference != 10_000_000 {
		t.Fatalf("reference = %d %s", r.status, r.body)
	}

	// 0.1 BTC at the reference plus 50 bps: 10,050,000 yen per BTC.
	r = e.do("POST", "/v1/me/dealer/quotes", ctok, quote)
	var q QuoteView
	r.json(t, &q)
	if r.status != 201 || q.Price != 10_050_000 || q.Notional != 1_005_000 || q.Qty != 1000_0000 || !q.Expires.After(e.clock.Now()) {
		t.Fatalf("quote = %d %s", r.status, r.body)
	}
	path := fmt.Sprintf("/v1/me/dealer/quotes/%d/execute", q.ID)
	if r := e.do("POST", path, otok, nil); r.status != 403 {
		t.Fatalf("another customer executes = %d %s", r.status, r.body)
	}
	r = e.do("POST", path, ctok, nil)
	var fill FillView
	r.json(t, &fill)
	if r.status != 201 || fill.Price != 10_050_000 || fill.Qty != 1000_0000 || !fill.Dealer || sideName(fill.Side) != "buy" || fill.Notional != 1_005_000 {
		t.Fatalf("execute = %d %s", r.status, r.body)
	}
	if r := e.do("POST", path, ctok, nil); r.status != 409 {
		t.Fatalf("execute twice = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/me/dealer/quotes/424242/execute", ctok, nil); r.status != 404 {
		t.Fatalf("execute an unknown quote = %d %s", r.status, r.body)
	}
	wantBalances(t, "customer", e.balanceMap(ctok), map[string]string{"JPY available": "18995000", "BTC available": "10000000"})

	// A quote left to expire.
	e.do("POST", "/v1/me/dealer/quotes", ctok, QuoteRequest{Market: "BTC/JPY", Side: Side(market.Sell), Qty: 500_0000}).json(t, &q)
	e.clock.Add(11 * time.Second)
	if r := e.do("POST", fmt.Sprintf("/v1/me/dealer/quotes/%d/execute", q.ID), ctok, nil); r.status != 422 {
		t.Fatalf("execute an expired quote = %d %s", r.status, r.body)
	}
	for _, bad := range []QuoteRequest{{Market: "DOGE/JPY", Side: Side(market.Buy), Qty: 100_000}, {Market: "BTC/JPY", Side: Side(market.Buy), Qty: 50_000}} {
		if r := e.do("POST", "/v1/me/dealer/quotes", ctok, bad); r.status != 404 && r.status != 422 {
			t.Fatalf("quote %+v = %d %s", bad, r.status, r.body)
		}
	}

	// The desk: short 0.1 BTC, 5,000 yen earned against the reference.
	r = e.do("GET", "/v1/dealer", kenji, nil)
	var desk struct{ Items []DealerView }
	r.json(t, &desk)
	if r.status != 200 || len(desk.Items) != 1 {
		t.Fatalf("dealer = %d %s", r.status, r.body)
	}
	v := desk.Items[0]
	if v.Market != "BTC/JPY" || v.Inventory != -1000_0000 || v.Profit != 5_000 || v.Reference != 10_000_000 || len(v.House) != 2 ||
		v.House[0].Asset != "BTC" || v.House[0].Balance.String() != "490000000" || v.House[1].Asset != "JPY" || v.House[1].Balance.String() != "1001005000" {
		t.Fatalf("dealer = %+v", v)
	}
	if r := e.do("GET", "/v1/dealer", ctok, nil); r.status != 403 {
		t.Fatalf("dealer for a customer = %d", r.status)
	}
	if r := e.do("GET", "/v1/dealer", "", nil); r.status != 401 {
		t.Fatalf("dealer anonymous = %d", r.status)
	}
	// The execution is on the public tape, marked, without the customer.
	r = e.do("GET", "/v1/markets/BTC-JPY/trades", "", nil)
	if !bytes.Contains(r.body, []byte(`"dealer":true`)) || bytes.Contains(r.body, []byte(strconv.FormatUint(uint64(cust), 10))) {
		t.Fatalf("trades = %s", r.body)
	}
	// A dealer halt stops quotes.
	if r := e.do("POST", "/v1/halts", kenji, HaltRequest{Switch: "BTC:dealer", Reason: "reference feed stale"}); r.status != 201 {
		t.Fatalf("halt = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/me/dealer/quotes", ctok, quote); r.status != 503 {
		t.Fatalf("quote while halted = %d %s", r.status, r.body)
	}
}

// TestTradingConsole: the console's market forms need a session and
// their CSRF token, and the market actions the admin or operator role; an
// unknown market is a 404 page.
func TestTradingConsole(t *testing.T) {
	e := newEnv(t)
	e.listBTCJPY()
	_, atok := e.trader("alice@example.jp", 0, 1_0000_0000)
	if r := e.do("POST", "/v1/me/orders", atok, OrderRequest{Market: "BTC/JPY", Side: Side(market.Sell), Type: OrderType(market.Limit), Price: 10_000_000, Qty: 100_000}); r.status != 201 {
		t.Fatalf("sell = %d %s", r.status, r.body)
	}
	send := func(method, path, form, tok string) (*http.Response, string) {
		req, _ := http.NewRequest(method, e.http.URL+path, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tok != "" {
			req.AddCookie(&http.Cookie{Name: cookieName, Value: tok})
		}
		cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b strings.Builder
		bufio.NewReader(res.Body).WriteTo(&b)
		return res, b.String()
	}
	csrf := func(tok string) string {
		req, _ := http.NewRequest("GET", "/", nil)
		req.AddCookie(&http.Cookie{Name: cookieName, Value: tok})
		p, err := e.srv.principal(req)
		if err != nil {
			t.Fatal(err)
		}
		return e.srv.csrfFor(p.Token)
	}
	kenji, sora := e.loginOperator("kenji"), e.loginOperator("sora")
	for _, path := range []string{"/console/markets", "/console/markets/BTC-JPY", "/console/dealer"} {
		if res, _ := send("GET", path, "", ""); res.StatusCode != 303 {
			t.Errorf("GET %s without a session = %d", path, res.StatusCode)
		}
		if res, body := send("GET", path, "", kenji); res.StatusCode != 200 || !strings.Contains(body, "BTC/JPY") {
			t.Errorf("GET %s = %d", path, res.StatusCode)
		}
	}
	if res, body := send("GET", "/console/markets/BTC-JPY", "", kenji); !strings.Contains(body, `id="asks"`) || !strings.Contains(body, "0.00100000 BTC") || !strings.Contains(body, "10,000,000") {
		t.Errorf("market page = %d %s", res.StatusCode, body)
	}
	if res, _ := send("GET", "/console/markets/DOGE-JPY", "", kenji); res.StatusCode != 404 {
		t.Errorf("unknown market page = %d", res.StatusCode)
	}
	if _, body := send("GET", "/console/markets", "", kenji); !strings.Contains(body, "9,000,000 – 11,000,000 (±1000 bps of the index)") || !strings.Contains(body, `form class="inline index"`) {
		t.Errorf("markets page without the band or the index form: %s", body)
	}
	for _, path := range []string{"/console/markets/BTC-JPY/reference", "/console/markets/BTC-JPY/index", "/console/markets/BTC-JPY/cancel-all"} {
		form := "price=10000000&reason=drill"
		if res, _ := send("POST", path, form, kenji); res.StatusCode != 403 {
			t.Errorf("POST %s without CSRF = %d", path, res.StatusCode)
		}
		res, _ := send("POST", path, form+"&csrf="+csrf(sora), sora)
		if loc := res.Header.Get("Location"); res.StatusCode != 303 || !strings.Contains(loc, "err=") {
			t.Errorf("POST %s by the ciso = %d %s", path, res.StatusCode, loc)
		}
		res, _ = send("POST", path, form+"&csrf="+csrf(kenji), kenji)
		if loc := res.Header.Get("Location"); res.StatusCode != 303 || !strings.Contains(loc, "ok=") {
			t.Errorf("POST %s = %d %s", path, res.StatusCode, loc)
		}
	}
	e.core.Read(func(st *core.State) {
		m, _ := st.Trading.MarketByCode("BTC/JPY")
		if m.Reference != 10_000_000 || m.Book.Len() != 0 {
			t.Errorf("after the forms: reference %d, %d resting", m.Reference, m.Book.Len())
		}
	})
	res, _ := send("POST", "/console/markets/BTC-JPY/reference", "price=ten&csrf="+csrf(kenji), kenji)
	if loc := res.Header.Get("Location"); !strings.Contains(loc, "err=") {
		t.Errorf("a reference that is not a number = %s", loc)
	}
	// An index beyond what one operator may move: refused, the reason shown.
	res, _ = send("POST", "/console/markets/BTC-JPY/index", "price=1000&csrf="+csrf(kenji), kenji)
	if loc := res.Header.Get("Location"); !strings.Contains(loc, "err=") || !strings.Contains(loc, "second") {
		t.Errorf("an index 99.99%% away from one operator = %s", loc)
	}
	res, _ = send("POST", "/console/markets/BTC-JPY/index", "price=10300000&csrf="+csrf(kenji), kenji)
	if loc := res.Header.Get("Location"); !strings.Contains(loc, "ok=") {
		t.Errorf("an index +3%% = %s", loc)
	}
}

// TestCandles groups trades into intervals, oldest first, leaving dealer
// executions out.
func TestCandles(t *testing.T) {
	minute := int64(time.Minute)
	base := int64(1_700_000_040) * 1e9 // a whole minute
	// Newest first, as Market.Trades gives them.
	ts := []trading.Trade{
		{Time: base + 2*minute + 5, Price: 12, Qty: 1},
		{Time: base + 2*minute, Price: 99, Qty: 50, Dealer: true},
		{Time: base + 59e9, Price: 8, Qty: 2},
		{Time: base + 30e9, Price: 11, Qty: 3},
		{Time: base, Price: 10, Qty: 4},
	}
	got := candles(ts, time.Minute)
	want := []CandleView{
		{Time: time.Unix(0, base).UTC(), Open: 10, High: 11, Low: 8, Close: 8, Volume: 9, Trades: 3},
		{Time: time.Unix(0, base+2*minute).UTC(), Open: 12, High: 12, Low: 12, Close: 12, Volume: 1, Trades: 1},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("candles = %+v; want %+v", got, want)
	}
	if got := candles(nil, time.Hour); got == nil || len(got) != 0 {
		t.Fatalf("candles(nil) = %#v; want empty", got)
	}
}

// TestSigned formats quantities and prices for the console.
func TestSigned(t *testing.T) {
	for _, c := range []struct {
		v, unit int64
		dec     uint8
		want    string
	}{
		{10_000_000, 1, 0, "10,000,000"},
		{123, 1, 0, "123"},
		// Every decimal of the asset, so that a column lines up.
		{-1000_0000, 1, 8, "−0.10000000"},
		{1_2345_0000, 1, 8, "1.23450000"},
		{1234_5678_9000_0000, 1, 8, "12,345,678.90000000"},
		{3, 1_000_000_000, 18, "0.000000003000000000"},
		{0, 1, 8, "0.00000000"},
	} {
		if got := signed(c.v, c.unit, c.dec); got != c.want {
			t.Errorf("signed(%d, %d, %d) = %q; want %q", c.v, c.unit, c.dec, got, c.want)
		}
	}
}

// seedBTCJPY lists BTC/JPY for the console: taker (a verified customer)
// and a new maker, both funded, rest a few orders on each side, and the
// taker buys twice, the second time (sweeping two levels) while BTC
// deposits are halted; the house gets inventory for the dealer desk.
func (e *env) seedBTCJPY(taker ledger.OwnerID) {
	e.t.Helper()
	e.listBTCJPY()
	maker, _ := e.trader("maker@example.jp", 100_000_000, 10_0000_0000)
	e.fund(avail(taker, jpy), 100_000_000)
	e.fund(ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: btc, Kind: ledger.KindHouse}, 5_0000_0000)
	e.fund(ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: jpy, Kind: ledger.KindHouse}, 200_000_000)
	place := func(c ledger.OwnerID, side market.Side, kind market.Kind, price, qty int64) {
		e.submit(core.PlaceOrder{Customer: c, Market: btcJPY.ID, Side: side, Type: kind, Price: price, Qty: qty})
	}
	for i, qty := range []int64{5000_0000, 3000_0000, 1_0000_0000, 2500_0000} {
		place(maker, market.Sell, market.Limit, 10_020_000+int64(i)*15_000, qty)
	}
	for i, qty := range []int64{2000_0000, 4000_0000, 1000_0000} {
		place(taker, market.Buy, market.Limit, 9_990_000-int64(i)*12_000, qty)
	}
	place(taker, market.Buy, market.IOC, 10_020_000, 1000_0000)
	e.submit(core.Halt{Switch: controls.Switch{Asset: btc, Service: controls.Deposit}, Actor: "kenji", Reason: "node resyncing"})
	place(taker, market.Buy, market.IOC, 10_035_000, 4500_0000)
}

// dealerBuy has customer c buy qty from the dealer desk at its quote.
func (e *env) dealerBuy(c ledger.OwnerID, qty int64) {
	e.t.Helper()
	o, err := e.core.Submit(context.Background(), e.clock.Now(), core.DealerQuote{Customer: c, Market: btcJPY.ID, Side: market.Buy, Qty: qty})
	if err == nil {
		err = o.EventErr()
	}
	q, ok := o.Value.(*trading.Quote)
	if err != nil || !ok {
		e.t.Fatalf("dealer quote: %v %v", err, o.Value)
	}
	e.submit(core.DealerExecute{Customer: c, Quote: q.ID})
}

// TestDealerQuoteDocumented: through the route customers use, a desk at
// reference 88 and 200 bps with a tick of 1 quotes 90 to buy and 86 to
// sell, as docs/trading.md says (rounding the offset before applying it
// gives 89/87), and executing each quote trades at that price: the
// customer pays 90 yen for a coin and gets 86 for one.
func TestDealerQuoteDocumented(t *testing.T) {
	e := newEnv(t)
	l := btcJPY
	l.TickSize, l.DealerSpreadBps, l.LotSize, l.MinQty = 1, 200, 1_0000_0000, 1_0000_0000
	e.twoPerson(core.KindListMarketRequest, core.ListMarketPayload{Listing: l}, "aiko", "ren", people.RoleAdmin)
	e.twoPerson(core.KindDealerReference, core.MarketPricePayload{Market: 1, Price: 88}, "aiko", "ren", people.RoleAdmin)
	house := func(a ledger.AssetID) ledger.AccountKey {
		return ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: a, Kind: ledger.KindHouse}
	}
	e.fund(house(btc), 5_0000_0000)
	e.fund(house(jpy), 1_000_000)
	cust, ctok := e.trader("quote88@example.jp", 1_000, 1_0000_0000)
	for _, c := range []struct {
		side  market.Side
		price int64
	}{{market.Buy, 90}, {market.Sell, 86}} {
		r := e.do("POST", "/v1/me/dealer/quotes", ctok, QuoteRequest{Market: "BTC/JPY", Side: Side(c.side), Qty: 1_0000_0000})
		var q QuoteView
		r.json(t, &q)
		if r.status != 201 || int64(q.Price) != c.price || int64(q.Notional) != c.price {
			t.Fatalf("%s quote at 88 and 200 bps = %d %s; want price and notional %d", sideName(Side(c.side)), r.status, r.body, c.price)
		}
		r = e.do("POST", fmt.Sprintf("/v1/me/dealer/quotes/%d/execute", q.ID), ctok, nil)
		var fill FillView
		r.json(t, &fill)
		if r.status != 201 || int64(fill.Price) != c.price || int64(fill.Notional) != c.price {
			t.Fatalf("%s execution = %d %s; want %d", sideName(Side(c.side)), r.status, r.body, c.price)
		}
	}
	// Bought one coin at 90 and sold one at 86: 1,000 − 90 + 86 yen and
	// the coin it had.
	e.core.Read(func(st *core.State) {
		y, _ := st.Ledger.Account(avail(cust, jpy))
		b, _ := st.Ledger.Account(avail(cust, btc))
		if y.SignedBalance().String() != "996" || b.SignedBalance().String() != "100000000" {
			t.Fatalf("customer after buying at 90 and selling at 86: %s yen, %s sat", y.SignedBalance(), b.SignedBalance())
		}
	})
}
