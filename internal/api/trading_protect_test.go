package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"kinko/internal/core"
	"kinko/internal/people"
	"kinko/internal/trading"
)

// TestTradingProtectionsThroughTheAPI: a market listed with the default
// protections shows them; a new market trades nothing until two operators
// open it (one alone: 403); an order outside the band or above the largest
// order is a 422 naming the bound, nothing held; an operator moves the
// index within the bound alone and beyond it only through a request a
// second operator approves (the requester cannot); the circuit breaker
// halts the market (503, the halt shown) until two operators lift it; the
// dealer's reference beyond its bound alone is a 403.
func TestTradingProtectionsThroughTheAPI(t *testing.T) {
	e := newEnv(t)
	l := btcJPY
	l.MaxOrderNotional = 0 // the default: 10,000,000 yen
	e.twoPerson(core.KindListMarketRequest, core.ListMarketPayload{Listing: l}, "aiko", "ren", people.RoleAdmin)
	_, atok := e.trader("alice@example.jp", 50_000_000, 5_0000_0000)
	_, btok := e.trader("bob@example.jp", 50_000_000, 5_0000_0000)
	kenji, aiko := e.loginOperator("kenji"), e.loginOperator("aiko")
	market1 := func() MarketView {
		var ms struct{ Items []MarketView }
		e.do("GET", "/v1/markets", "", nil).json(t, &ms)
		return ms.Items[0]
	}
	if m := market1(); m.Band.Source != "none" || m.Band.BandBps != trading.DefaultBandBps || m.MaxOrderNotional != 10_000_000 ||
		m.BreakerBps != trading.DefaultBreakerBps || m.BreakerWindowSeconds != 300 || m.ReferenceChangeBps != 500 || m.ReferenceDayBps != 1000 {
		t.Fatalf("market = %+v", m)
	}
	order := func(side string, kind string, price, qty int64) map[string]any {
		return map[string]any{"market": "BTC/JPY", "side": side, "type": kind, "price": Units(price), "qty": Units(qty)}
	}
	refused := func(name, tok string, body any, status int, detail string) {
		t.Helper()
		before := [2]map[string]string{e.balanceMap(atok), e.balanceMap(btok)}
		r := e.do("POST", "/v1/me/orders", tok, body)
		if r.status != status || !strings.Contains(string(r.body), detail) {
			t.Errorf("%s = %d %s; want %d with %q", name, r.status, r.body, status, detail)
		}
		wantBalances(t, name, e.balanceMap(atok), before[0])
		wantBalances(t, name, e.balanceMap(btok), before[1])
	}
	// No reference: a resting order is taken, one that would trade is not.
	if r := e.do("POST", "/v1/me/orders", atok, order("sell", "limit", 10_000_000, 100_000)); r.status != 201 {
		t.Fatalf("resting sell = %d %s", r.status, r.body)
	}
	refused("a buy that would trade with no reference", btok, order("buy", "limit", 10_000_000, 100_000), 422, "no reference price yet")
	refused("a market order with no reference", btok, order("buy", "market", 10_000_000, 100_000), 422, "no reference price yet")
	// One operator cannot open the market; two can.
	if r := e.do("POST", "/v1/markets/BTC-JPY/index", kenji, ReferenceRequest{Price: 10_000_000}); r.status != 403 || !strings.Contains(string(r.body), "index_price request") {
		t.Fatalf("opening by one operator = %d %s", r.status, r.body)
	}
	open := func(requester, approver string, price int64) {
		t.Helper()
		r := e.do("POST", "/v1/requests", requester, OpenRequestRequest{Kind: core.KindIndexPrice, Payload: json.RawMessage(fmt.Sprintf(`{"market":"BTC/JPY","price":"%d"}`, price)),
			Reason: "index", RequiredRole: people.RoleApprover})
		var id struct{ ID string }
		r.json(t, &id)
		if r.status != 201 {
			t.Fatalf("index request = %d %s", r.status, r.body)
		}
		if r := e.do("POST", "/v1/requests/"+id.ID+"/approve", requester, DecideRequest{Reason: "mine"}); r.status != 403 {
			t.Fatalf("self-approved index = %d %s", r.status, r.body)
		}
		if r := e.do("POST", "/v1/requests/"+id.ID+"/approve", approver, DecideRequest{Reason: "checked"}); r.status != 200 {
			t.Fatalf("approved index = %d %s", r.status, r.body)
		}
	}
	open(aiko, kenji, 10_000_000)
	if m := market1(); m.Band.Source != "index" || m.Band.Low != 9_000_000 || m.Band.High != 11_000_000 {
		t.Fatalf("band after opening = %+v", m.Band)
	}
	// Outside the band, above the largest order: 422 naming the bound.
	refused("a sell at 1/9,000 of the market", btok, order("sell", "limit", 1_000, 100_000), 422, "the band is 9000000-11000000")
	refused("a buy above the band", btok, order("buy", "limit", 11_001_000, 100_000), 422, "outside the price band")
	refused("an order above the largest", btok, order("buy", "limit", 10_000_000, 1_0010_0000), 422, "largest order")
	// Within it, a market sell clamped to the floor fills the bid at it.
	if r := e.do("POST", "/v1/me/orders", btok, order("buy", "limit", 10_000_000, 100_000)); r.status != 201 {
		t.Fatalf("buy at the index = %d %s", r.status, r.body)
	}
	// One operator: within 5% alone; beyond, 403.
	if r := e.do("POST", "/v1/markets/BTC-JPY/index", kenji, ReferenceRequest{Price: 10_400_000}); r.status != 200 {
		t.Fatalf("index +4%% = %d %s", r.status, r.body)
	}
	r := e.do("POST", "/v1/markets/BTC-JPY/index", kenji, ReferenceRequest{Price: 11_000_000})
	var p Problem
	r.json(t, &p)
	if r.status != 403 || p.Title != "a second operator must approve this" || !strings.Contains(p.Detail, "beyond ±5.00% a change") {
		t.Fatalf("index +5.8%% alone = %d %+v", r.status, p)
	}
	if m := market1(); m.Band.Index != 10_400_000 {
		t.Fatalf("a refused move changed the index: %+v", m.Band)
	}
	// The circuit breaker: a trade 5%+ from the window's start halts the
	// market; the next order is a 503; the halt is the breaker's.
	if r := e.do("POST", "/v1/me/orders", atok, order("sell", "limit", 10_600_000, 100_000)); r.status != 201 {
		t.Fatalf("sell = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/me/orders", btok, order("buy", "limit", 10_600_000, 100_000)); r.status != 201 {
		t.Fatalf("the tripping buy = %d %s", r.status, r.body)
	}
	if m := market1(); strings.Join(m.Halted, ",") != "BTC:trade" {
		t.Fatalf("halted = %v", m.Halted)
	}
	refused("an order after the breaker", btok, order("buy", "limit", 10_600_000, 100_000), 503, "BTC:trade is halted since 2026-01-26T00:03:00Z: circuit breaker")
	var halts struct{ Halts []HaltView }
	e.do("GET", "/v1/status", "", nil).json(t, &halts)
	if len(halts.Halts) != 1 || !strings.HasPrefix(halts.Halts[0].Reason, "circuit breaker: BTC/JPY traded at 10600000") {
		t.Fatalf("status = %+v", halts)
	}
	r = e.do("POST", "/v1/requests", kenji, OpenRequestRequest{Kind: core.KindLiftHalt, Payload: json.RawMessage(`{"switch":"BTC:trade"}`),
		Reason: "the move was real", RequiredRole: people.RoleApprover})
	var id struct{ ID string }
	r.json(t, &id)
	if r := e.do("POST", "/v1/requests/"+id.ID+"/approve", kenji, DecideRequest{Reason: "mine"}); r.status != 403 {
		t.Fatalf("self-lift = %d %s", r.status, r.body)
	}
	if m := market1(); len(m.Halted) != 1 {
		t.Fatal("lifted by one person")
	}
	// The dealer's reference alone beyond its bound: 403.
	if r := e.do("POST", "/v1/markets/BTC-JPY/reference", kenji, ReferenceRequest{Price: 10_400_000}); r.status != 200 {
		t.Fatalf("reference at the index = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/markets/BTC-JPY/reference", kenji, ReferenceRequest{Price: 1}); r.status != 403 || !strings.Contains(string(r.body), "dealer_reference request") {
		t.Fatalf("reference 10,400,000 -> 1 alone = %d %s", r.status, r.body)
	}
}
