package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"kinko/internal/compensation"
	"kinko/internal/controls"
	"kinko/internal/journal"
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
// of up to 10,000,000,000 yen; the band, the breaker and the operators'
// bounds are the defaults.
var btcJPY = trading.Listing{ID: 1, Code: "BTC/JPY", Base: btc, Quote: jpy, Scale: 1_0000_0000, TickSize: 1_000, LotSize: 100_000,
	MinQty: 100_000, MaxQty: 100_0000_0000, MaxPrice: 100_000_000_000, MaxOrders: 1 << 20, MakerFeeBps: 5, TakerFeeBps: 15,
	DealerSpreadBps: 50, QuoteValidityNs: 10e9, DealerMaxLong: 10_0000_0000, DealerMaxShort: 10_0000_0000, MaxOrderNotional: 10_000_000_000}

// openPrice is the index the test market opens at.
const openPrice = 10_000_000

// tradeEnv applies commands to a state through sealed entries, as the core
// does, and checks every invariant after each.
type tradeEnv struct {
	t       testing.TB
	st      *State
	mj      memJournal
	entries []journal.Entry
	now     int64
	check   bool
	reqs    int // requests opened, for their ids
	// core, if set, is given every command too, at the env's time, and
	// must answer as the state does: for what only a running core does
	// (its alerts).
	core *Core
}

// open sets a market's index by two operators: how a market that never
// traded gets its first reference.
func (e *tradeEnv) open(mkt uint16, price int64) {
	e.t.Helper()
	if o := e.twoPerson(KindIndexPrice, MarketPricePayload{Market: mkt, Price: price}, "aiko", "hana", people.RoleApprover); o.Err != nil {
		e.t.Fatalf("opening market %d at %d: %v", mkt, price, o.Err)
	}
}

func (e *tradeEnv) do(cmd Command) Outcome {
	e.t.Helper()
	e.now += 1_000_000
	cmd = signed(cmd)
	en := e.mj.seal(e.now, cmd)
	e.entries = append(e.entries, en)
	o := e.st.Apply(&en)
	if e.core != nil {
		co, err := e.core.Submit(context.Background(), time.Unix(0, e.now), cmd)
		if err != nil || fmt.Sprint(co.EventErr()) != fmt.Sprint(o.EventErr()) {
			e.t.Fatalf("%s: the core answers %v, %v; the state %v", cmd.Kind(), err, co.EventErr(), o.EventErr())
		}
	}
	if e.check {
		if err := e.st.CheckInvariants(); err != nil {
			e.t.Fatalf("%s: %v", cmd.Kind(), err)
		}
	}
	return o
}

func (e *tradeEnv) must(cmd Command) any {
	e.t.Helper()
	o := e.do(cmd)
	if err := o.EventErr(); err != nil {
		e.t.Fatalf("%s: %v", cmd.Kind(), err)
	}
	return o.Value
}

// newTradeEnv: JPY and BTC, the market, customers 1..n verified, each with
// 100,000,000 yen and 10 BTC, and the house with 20 BTC and 200,000,000 yen
// for the dealer desk.
func newTradeEnv(t testing.TB, n int) *tradeEnv { return newTradeEnvOn(t, n, nil) }

// newTradeEnvOn is newTradeEnv that gives every command to c as well.
func newTradeEnvOn(t testing.TB, n int, c *Core) *tradeEnv {
	e := &tradeEnv{t: t, st: NewState(), now: 1_700_000_000e9, check: true, core: c}
	creds := people.Credentials{PasswordHash: strings.Repeat("h", 30), TOTPSealed: strings.Repeat("s", 30)}
	e.must(CreateAssets{Assets: []ledger.Asset{{ID: jpy, Code: "JPY", Class: ledger.ClassFiat}, {ID: btc, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}})
	for _, c := range founding(time.Unix(0, e.now)) {
		e.must(c)
	}
	eq := func(a ledger.AssetID) ledger.AccountKey {
		return ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: a, Kind: ledger.KindEquity}
	}
	e.must(CreateAccounts{Keys: []ledger.AccountKey{eq(jpy), eq(btc)}})
	if o := e.listMarket(btcJPY); o.EventErr() != nil {
		t.Fatal(o.EventErr())
	}
	e.open(1, openPrice)
	var ts []ledger.Transfer
	fund := func(k ledger.AccountKey, amt uint64) {
		ts = append(ts, ledger.Transfer{ID: ledger.ID{Hi: 7, Lo: uint64(len(ts) + 1)}, Debit: eq(k.Asset), Credit: k, Amount: ledger.AmountOf(amt)})
	}
	for i := ledger.OwnerID(1); i <= ledger.OwnerID(n); i++ {
		e.must(SignUp{Customer: people.Customer{ID: i, Email: fmt.Sprintf("c%d@example.jp", i), Name: "c", Creds: creds}})
		e.must(SetKYC{Customer: i, KYC: people.KYCVerified, Actor: "aiko", Reason: "ok"})
		fund(avail(i, jpy), 100_000_000)
		fund(avail(i, btc), 10_0000_0000)
	}
	fund(house(btc), 20_0000_0000)
	fund(house(jpy), 200_000_000)
	for len(ts) > 0 {
		k := min(len(ts), 8000)
		e.must(CreateTransfers{Transfers: ts[:k]})
		ts = ts[k:]
	}
	return e
}

func (e *tradeEnv) bal(k ledger.AccountKey) int64 {
	a, ok := e.st.Ledger.Account(k)
	if !ok {
		return 0
	}
	v, _ := a.Balance().Uint64()
	return int64(v)
}

func place(c ledger.OwnerID, side market.Side, kind market.Kind, price, qty int64) PlaceOrder {
	return PlaceOrder{Customer: c, Market: 1, Side: side, Type: kind, Price: price, Qty: qty}
}

// TestTradeSettlesInTheSameEntry: a fill moves yen, bitcoin and both fees in
// the entry that matched it; holds follow the order; cancel releases.
func TestTradeSettlesInTheSameEntry(t *testing.T) {
	e := newTradeEnv(t, 2)
	// Customer 1 sells 1 BTC at 10,000,000 yen: 1 BTC held.
	r := e.must(place(1, market.Sell, market.Limit, 10_000_000, 1_0000_0000)).(*PlaceResult)
	if r.Resting != 1_0000_0000 || e.bal(held(1, btc)) != 1_0000_0000 || e.bal(avail(1, btc)) != 9_0000_0000 {
		t.Fatalf("after the sell: %+v, held %d", r, e.bal(held(1, btc)))
	}
	// Customer 2 buys 0.5 BTC at up to 10,010,000: fills at the maker's price.
	r = e.must(place(2, market.Buy, market.Limit, 10_010_000, 5000_0000)).(*PlaceResult)
	if r.Filled != 5000_0000 || r.Resting != 0 || len(r.Trades) != 1 || r.Trades[0].Price != 10_000_000 {
		t.Fatalf("buy = %+v", r)
	}
	const notional, takerFee, makerFee = 5_000_000, 7_500, 2_500
	for _, c := range []struct {
		k    ledger.AccountKey
		want int64
	}{
		{avail(2, jpy), 100_000_000 - notional - takerFee}, {held(2, jpy), 0}, {avail(2, btc), 10_5000_0000},
		{avail(1, jpy), 100_000_000 + notional - makerFee}, {held(1, btc), 5000_0000}, {avail(1, btc), 9_0000_0000},
		{house(jpy), 200_000_000 + takerFee + makerFee},
	} {
		if got := e.bal(c.k); got != c.want {
			t.Errorf("%+v = %d; want %d", c.k, got, c.want)
		}
	}
	tr := r.Trades[0]
	if tr.Entry != e.st.Seq() || tr.Time != e.now || tr.MakerOwn != 1 || tr.TakerOwn != 2 || tr.MakerFee != makerFee || tr.TakerFee != takerFee || tr.Halted != "" {
		t.Fatalf("trade record %+v", tr)
	}
	// Replace: down to 0.2 BTC keeps priority and releases 0.3 BTC.
	sell := r.Trades[0].Maker
	e.must(ReplaceOrder{Customer: 1, Order: sell, Price: 10_000_000, Qty: 2000_0000})
	if e.bal(held(1, btc)) != 2000_0000 {
		t.Fatalf("held after reduce = %d", e.bal(held(1, btc)))
	}
	// Cancel: the rest comes back.
	e.must(CancelOrder{Customer: 1, Order: sell})
	if e.bal(held(1, btc)) != 0 || e.bal(avail(1, btc)) != 9_5000_0000 || len(e.st.Trading.OpenOrders(0)) != 0 {
		t.Fatalf("after cancel: held %d avail %d", e.bal(held(1, btc)), e.bal(avail(1, btc)))
	}
}

// digest is what a refused command must leave unchanged: the ledger's
// accounts, the trading state, the numbering of transfers.
func (e *tradeEnv) digest() string {
	var b bytes.Buffer
	e.st.Ledger.Accounts(func(a *ledger.Account) bool { fmt.Fprintf(&b, "%+v\n", *a); return true })
	fmt.Fprintf(&b, "%+v %d\n", e.st.Trading.Snapshot(), e.st.Ledger.TransferCount())
	for _, m := range e.st.Trading.Markets() {
		for o := range m.Book.Orders() {
			fmt.Fprintf(&b, "%+v\n", o)
		}
	}
	return b.String()
}

// TestTradeBadInput: each refusal is a clear error and nothing is held,
// filled or numbered.
func TestTradeBadInput(t *testing.T) {
	e := newTradeEnv(t, 3)
	e.must(place(1, market.Sell, market.Limit, 10_000_000, 1_0000_0000))
	c := PlaceOrder{Customer: 2, Market: 1, Side: market.Buy, Type: market.Limit, Price: 9_000_000, Qty: 1000_0000, ClientID: "c-1"}
	e.must(c)
	creds := people.Credentials{PasswordHash: strings.Repeat("h", 30), TOTPSealed: strings.Repeat("s", 30)}
	e.must(SignUp{Customer: people.Customer{ID: 9, Email: "new@example.jp", Name: "n", Creds: creds}})
	cases := []struct {
		name string
		cmd  Command
		want error
	}{
		{"price off the tick", place(2, market.Buy, market.Limit, 9_000_500, 1000_0000), market.ErrOffTick},
		{"quantity off the lot", place(2, market.Buy, market.Limit, 9_000_000, 1000_0001), market.ErrOffLot},
		{"quantity below the minimum", place(2, market.Buy, market.Limit, 9_000_000, 0), market.ErrBelowMin},
		{"zero price", place(2, market.Buy, market.Limit, 0, 1000_0000), market.ErrPrice},
		{"unknown market", PlaceOrder{Customer: 2, Market: 9, Side: market.Buy, Type: market.Limit, Price: 9_000_000, Qty: 1000_0000}, trading.ErrUnknownMarket},
		{"insufficient yen", place(2, market.Buy, market.Limit, 9_000_000, 20_0000_0000), trading.ErrInsufficient},
		{"insufficient bitcoin", place(2, market.Sell, market.Limit, 11_000_000, 11_0000_0000), trading.ErrInsufficient},
		{"unverified customer", place(9, market.Buy, market.Limit, 9_000_000, 1000_0000), trading.ErrNotVerified},
		{"replayed client order id", c, trading.ErrClientID},
		{"cancel of someone else's order", CancelOrder{Customer: 3, Order: 1}, trading.ErrNotOwner},
		{"replace of someone else's order", ReplaceOrder{Customer: 3, Order: 1, Price: 10_000_000, Qty: 1000_0000}, trading.ErrNotOwner},
		{"cancel of an unknown order", CancelOrder{Customer: 2, Order: 99}, trading.ErrUnknownOrder},
		{"post-only that would cross", place(2, market.Buy, market.PostOnly, 10_000_000, 1000_0000), market.ErrWouldCross},
		{"FOK that cannot fill", place(2, market.Buy, market.FOK, 10_000_000, 2_0000_0000), market.ErrFOKUnfilled},
		{"market order with nothing to take", place(2, market.Sell, market.Market, 9_500_000, 1000_0000), market.ErrNoLiquidity},
		{"unknown order kind", place(2, market.Buy, 9, 9_000_000, 1000_0000), market.ErrKind},
		{"replace raising past the funds", ReplaceOrder{Customer: 2, Order: 2, Price: 9_000_000, Qty: 20_0000_0000}, trading.ErrInsufficient},
	}
	for _, tc := range cases {
		before := e.digest()
		o := e.do(tc.cmd)
		if !errors.Is(o.Err, tc.want) {
			t.Errorf("%s: %v; want %v", tc.name, o.Err, tc.want)
		}
		if after := e.digest(); after != before {
			t.Errorf("%s changed the state", tc.name)
		}
	}
	// A trade halt: new orders and replaces refused, resting orders stay,
	// their owners may cancel; an operator may cancel the market's orders.
	e.must(Halt{Switch: controls.Switch{Asset: btc, Service: controls.Trade}, Actor: "aiko", Reason: "incident"})
	before := e.digest()
	if o := e.do(place(3, market.Buy, market.Limit, 10_000_000, 1000_0000)); !errors.Is(o.Err, controls.ErrHalted) {
		t.Fatalf("order in a halted market = %v", o.Err)
	}
	if o := e.do(ReplaceOrder{Customer: 2, Order: 2, Price: 10_000_000, Qty: 1000_0000}); !errors.Is(o.Err, controls.ErrHalted) {
		t.Fatalf("replace in a halted market = %v", o.Err)
	}
	if e.digest() != before || len(e.st.Trading.OpenOrders(0)) != 2 {
		t.Fatal("the halt touched the book")
	}
	e.must(CancelOrder{Customer: 2, Order: 2})
	e.must(CancelMarketOrders{Market: 1, Actor: "aiko", Reason: "halted market emptied"})
	if len(e.st.Trading.OpenOrders(0)) != 0 || e.bal(held(1, btc)) != 0 || e.bal(held(2, jpy)) != 0 {
		t.Fatal("holds left after cancelling the market")
	}
}

// TestTradeProperties runs seeded random order streams (KINKO_SIM_SEED
// replays one) around a moving reference, with operators moving the index
// (alone, some beyond their bound, and by two), the circuit breaker
// halting the market and two operators lifting it: after every command
// every ledger and trading invariant holds (no negative balance, each
// asset sums to zero, books uncrossed and no order beyond the band, every
// open order resting with a positive hold); every fill moves the same
// quantity on both sides and is inside the band as it stood when its
// order arrived; nothing trades while halted; and replaying the journal,
// or a snapshot, rebuilds the same state, books included.
func TestTradeProperties(t *testing.T) {
	trips := 0
	// What the streams exercised, all seeds together: one stream of the
	// three may happen to fill little.
	allFills, allOutside, allMoves := 0, 0, 0
	seeds := simSeeds(t, 3)
	for _, seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 0x7ade))
		e := newTradeEnv(t, 8)
		m, _ := e.st.Trading.Market(1)
		halt := controls.Switch{Asset: btc, Service: controls.Trade}
		fills, outside, moves, lifts := 0, 0, 0, 0
		for i := 0; i < 3000; i++ {
			cust := ledger.OwnerID(1 + rng.IntN(8))
			ref := bandReference(m)
			if ref == 0 { // the index cleared before a trade: none, until two operators set one
				ref = openPrice
			}
			// Mostly within 3% of the reference, one in six up to 12% away.
			off := int64(rng.IntN(301) - 150)
			if rng.IntN(6) == 0 {
				off = int64(rng.IntN(2401) - 1200)
			}
			price := max(1_000, ref/1_000*1_000+1_000*(off*ref/10_000_000))
			qty := int64(100_000 * (1 + rng.IntN(30)))
			var cmd Command
			switch r := rng.IntN(100); {
			case r < 50:
				kinds := []market.Kind{market.Limit, market.Limit, market.Limit, market.IOC, market.FOK, market.PostOnly, market.Market}
				side := market.Side(1 + rng.IntN(2))
				cmd = PlaceOrder{Customer: cust, Market: 1, Side: side, Type: kinds[rng.IntN(len(kinds))], Price: price, Qty: qty, ClientID: fmt.Sprintf("o%d", i)}
			case r < 68:
				cmd = CancelOrder{Customer: cust, Order: market.OrderID(1 + rng.IntN(int(e.st.Trading.NextOrder+1)))}
			case r < 93:
				cmd = ReplaceOrder{Customer: cust, Order: market.OrderID(1 + rng.IntN(int(e.st.Trading.NextOrder+1))), Price: price, Qty: qty}
			case r < 95:
				cmd = PlaceOrder{Customer: cust, Market: 1, Side: market.Buy, Type: market.Limit, Price: price + 500, Qty: qty} // off the tick
			case r < 97:
				// One operator moves the index up to 7% (beyond 5% refused),
				// or clears it.
				p := ref/1_000*1_000 + 1_000*(int64(rng.IntN(141)-70)*ref/10_000_000)
				if rng.IntN(10) == 0 {
					p = 0
				}
				cmd = SetIndexPrice{Market: 1, Price: p, Actor: "mei"}
			case r < 98:
				// Two operators move the index up to 20%.
				p := ref/1_000*1_000 + 1_000*(int64(rng.IntN(401)-200)*ref/10_000_000)
				if o := e.twoPerson(KindIndexPrice, MarketPricePayload{Market: 1, Price: p}, "mei", "hana", people.RoleApprover); o.Err != nil {
					t.Fatalf("seed %d step %d: index %d by two: %v", seed, i, p, o.Err)
				}
				moves++
				continue
			default:
				if e.st.Controls.Allowed(btc, controls.Trade) != nil {
					if o := e.twoPerson(KindLiftHalt, LiftHaltPayload{Switch: halt}, "mei", "hana", people.RoleApprover); o.Err != nil {
						t.Fatalf("seed %d step %d: lift: %v", seed, i, o.Err)
					}
					lifts++
				}
				continue
			}
			lo, hi := m.Book.Band()
			halted := e.st.Controls.Allowed(btc, controls.Trade) != nil
			btcBefore, jpyBefore := e.sums()
			o := e.do(cmd)
			if errors.Is(o.Err, market.ErrOutsideBand) {
				outside++
			}
			if _, ok := cmd.(SetIndexPrice); ok && o.Err == nil {
				moves++
			}
			if r, ok := o.Value.(*PlaceResult); ok && o.Err == nil {
				var q int64
				for _, tr := range r.Trades {
					q += tr.Qty
					if tr.Qty <= 0 || tr.Price <= 0 {
						t.Fatalf("seed %d step %d: trade %+v", seed, i, tr)
					}
					if hi == 0 || tr.Price < lo || tr.Price > hi || halted {
						t.Fatalf("seed %d step %d: trade %+v with the band %d-%d (halted %v)", seed, i, tr, lo, hi, halted)
					}
				}
				if q != r.Filled {
					t.Fatalf("seed %d step %d: trades %d, filled %d", seed, i, q, r.Filled)
				}
				fills += len(r.Trades)
				if !halted && e.st.Controls.Allowed(btc, controls.Trade) != nil {
					trips++
					if h := e.st.Controls.Halted(); len(h) != 1 || h[0].Actor != BreakerActor || !strings.Contains(h[0].Reason, "circuit breaker") {
						t.Fatalf("seed %d step %d: halts %+v", seed, i, h)
					}
				}
			}
			// Customers' and the house's holdings of each asset only move
			// between them.
			if b, j := e.sums(); b != btcBefore || j != jpyBefore {
				t.Fatalf("seed %d step %d (%s): BTC %d -> %d, JPY %d -> %d", seed, i, cmd.Kind(), btcBefore, b, jpyBefore, j)
			}
			if bid, ask := m.Book.Best(); bid != 0 && ask != 0 && bid >= ask {
				t.Fatalf("seed %d step %d: crossed %d >= %d", seed, i, bid, ask)
			}
		}
		allFills, allOutside, allMoves = allFills+fills, allOutside+outside, allMoves+moves
		// Replay from the journal: the same state, to the hash.
		re := NewState()
		for i := range e.entries {
			re.Apply(&e.entries[i])
		}
		if re.Hash() != e.st.Hash() {
			t.Fatalf("seed %d: replay gives another state", seed)
		}
		// And through a snapshot.
		var buf bytes.Buffer
		if err := e.st.Encode(&buf); err != nil {
			t.Fatal(err)
		}
		back, err := DecodeState(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if back.Hash() != e.st.Hash() || back.Trading.CheckInvariants() != nil {
			t.Fatalf("seed %d: snapshot round trip differs", seed)
		}
		t.Logf("seed %d: %d fills, %d open orders, %d refused outside the band, %d index moves, %d lifts", seed, fills, len(e.st.Trading.OpenOrders(0)), outside, moves, lifts)
	}
	if trips == 0 {
		t.Fatal("the circuit breaker never tripped")
	}
	if allFills < 50*len(seeds) || allOutside == 0 || allMoves == 0 {
		t.Fatalf("%d fills, %d orders outside the band, %d index moves over the seeds: the streams do not exercise enough", allFills, allOutside, allMoves)
	}
}

// sums is the total of customer and house accounts of BTC and JPY.
func (e *tradeEnv) sums() (b, j int64) {
	e.st.Ledger.Accounts(func(a *ledger.Account) bool {
		if a.Key.Kind.IsCustomer() || a.Key.Kind == ledger.KindHouse {
			v, _ := a.Balance().Uint64()
			if a.Key.Asset == btc {
				b += int64(v)
			} else {
				j += int64(v)
			}
		}
		return true
	})
	return b, j
}

// TestDealerDesk: a quote at the reference ± the spread, on the tick,
// executed once against the house's inventory within its limits, before it
// expires; profit and inventory reported.
func TestDealerDesk(t *testing.T) {
	e := newTradeEnv(t, 2)
	if o := e.do(DealerQuote{Customer: 1, Market: 1, Side: market.Buy, Qty: 1000_0000}); !errors.Is(o.Err, trading.ErrNoReference) {
		t.Fatalf("quote with no book and no reference = %v", o.Err)
	}
	e.must(SetReferencePrice{Market: 1, Price: 10_000_000, Actor: "aiko"})
	q := e.must(DealerQuote{Customer: 1, Market: 1, Side: market.Buy, Qty: 1000_0000}).(*trading.Quote)
	if q.Price != 10_050_000 || q.Expires != e.now+10e9 {
		t.Fatalf("buy quote %+v", q)
	}
	sq := e.must(DealerQuote{Customer: 2, Market: 1, Side: market.Sell, Qty: 1000_0000}).(*trading.Quote)
	if sq.Price != 9_950_000 {
		t.Fatalf("sell quote %+v", sq)
	}
	if o := e.do(DealerExecute{Customer: 2, Quote: q.ID}); !errors.Is(o.Err, trading.ErrNotOwner) {
		t.Fatalf("someone else's quote = %v", o.Err)
	}
	tr := e.must(DealerExecute{Customer: 1, Quote: q.ID}).(*trading.Trade)
	if !tr.Dealer || tr.Price != 10_050_000 || e.bal(avail(1, btc)) != 10_1000_0000 || e.bal(avail(1, jpy)) != 100_000_000-1_005_000 {
		t.Fatalf("execution %+v, BTC %d JPY %d", tr, e.bal(avail(1, btc)), e.bal(avail(1, jpy)))
	}
	if o := e.do(DealerExecute{Customer: 1, Quote: q.ID}); !errors.Is(o.Err, trading.ErrQuoteUsed) {
		t.Fatalf("second execution = %v", o.Err)
	}
	m, _ := e.st.Trading.Market(1)
	if m.Inventory != -1000_0000 || m.Profit != 5_000 {
		t.Fatalf("inventory %d profit %d", m.Inventory, m.Profit)
	}
	e.now += 11e9 // the sell quote expires
	if o := e.do(DealerExecute{Customer: 2, Quote: sq.ID}); !errors.Is(o.Err, trading.ErrQuoteExpired) {
		t.Fatalf("expired quote = %v", o.Err)
	}
	// The house may be short 10 BTC at most.
	if o := e.do(DealerQuote{Customer: 1, Market: 1, Side: market.Buy, Qty: 10_0000_0000}); !errors.Is(o.Err, trading.ErrExposure) {
		t.Fatalf("quote beyond the short limit = %v", o.Err)
	}
	e.must(Halt{Switch: controls.Switch{Asset: btc, Service: controls.Dealer}, Actor: "aiko", Reason: "feed down"})
	if o := e.do(DealerQuote{Customer: 1, Market: 1, Side: market.Buy, Qty: 1000_0000}); !errors.Is(o.Err, controls.ErrHalted) {
		t.Fatalf("quote with the dealer halted = %v", o.Err)
	}
}

// FuzzDecodeOrders: the binary commands (orders, compensation payouts)
// never panic and re-encode to the bytes they came from.
func FuzzDecodeOrders(f *testing.F) {
	f.Add(uint8(KindPlaceOrder), place(1, market.Buy, market.Limit, 1000, 100_000).AppendPayload(nil))
	f.Add(uint8(KindCancelOrder), CancelOrder{Customer: 1, Order: 2}.AppendPayload(nil))
	f.Add(uint8(KindReplaceOrder), ReplaceOrder{Customer: 1, Order: 2, Price: 3, Qty: 4}.AppendPayload(nil))
	f.Add(uint8(3), AddPayouts{Plan: "p", Payouts: []compensation.Payout{{Customer: 1, Basis: 2, Pay: 3}}}.AppendPayload(nil))
	f.Fuzz(func(t *testing.T, k uint8, p []byte) {
		kind := []Kind{KindPlaceOrder, KindCancelOrder, KindReplaceOrder, KindAddPayouts}[int(k)%4]
		c, err := DecodeCommand(uint16(kind), p)
		if err != nil {
			return
		}
		if !bytes.Equal(c.AppendPayload(nil), p) {
			t.Fatalf("%s: %x re-encodes as %x", kind, p, c.AppendPayload(nil))
		}
	})
}

// TestEtherInGwei: a market whose quantity unit is 1e9 base units (gwei):
// orders in gwei, the ledger in wei, 128-bit where it must be.
func TestEtherInGwei(t *testing.T) {
	e := newTradeEnv(t, 2)
	const eth ledger.AssetID = 3
	e.must(CreateAssets{Assets: []ledger.Asset{{ID: eth, Code: "ETH", Decimals: 18, Class: ledger.ClassChain}}})
	eq := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: eth, Kind: ledger.KindEquity}
	e.must(CreateAccounts{Keys: []ledger.AccountKey{eq, avail(1, eth), held(1, eth), avail(2, eth), held(2, eth)}})
	e.must(CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 9, Lo: 1}, Debit: eq, Credit: avail(1, eth), Amount: ledger.AmountOf(10_000_000_000_000_000_000)}}})
	l := trading.Listing{ID: 3, Code: "ETH/JPY", Base: eth, Quote: jpy, QtyUnit: 1_000_000_000, Scale: 1_000_000_000, TickSize: 1_000, LotSize: 1_000_000,
		MinQty: 1_000_000, MaxQty: 1_000_000_000_000, MaxPrice: 1_000_000_000, MaxOrders: 1 << 18}
	bad := l
	bad.QtyUnit = 1
	if o := e.listMarket(bad); !errors.Is(o.Err, trading.ErrListing) {
		t.Fatalf("a wei-unit listing with a gwei scale = %v", o.Err)
	}
	if o := e.listMarket(l); o.Err != nil {
		t.Fatal(o.Err)
	}
	e.open(3, 300_000)
	// 5 ETH for sale at 300,000 yen an ether; 2 ETH bought.
	e.must(PlaceOrder{Customer: 1, Market: 3, Side: market.Sell, Type: market.Limit, Price: 300_000, Qty: 5_000_000_000})
	if got := e.bal(held(1, eth)); got != 5_000_000_000_000_000_000 {
		t.Fatalf("held wei = %d", got)
	}
	r := e.must(PlaceOrder{Customer: 2, Market: 3, Side: market.Buy, Type: market.Limit, Price: 300_000, Qty: 2_000_000_000}).(*PlaceResult)
	if r.Filled != 2_000_000_000 || e.bal(avail(2, eth)) != 2_000_000_000_000_000_000 || e.bal(avail(2, jpy)) != 100_000_000-600_000 {
		t.Fatalf("fill %+v: buyer ETH %d JPY %d", r, e.bal(avail(2, eth)), e.bal(avail(2, jpy)))
	}
	if e.bal(held(1, eth)) != 3_000_000_000_000_000_000 {
		t.Fatalf("seller still holds %d wei", e.bal(held(1, eth)))
	}
	// More than the customer has, in gwei against wei: refused.
	if o := e.do(PlaceOrder{Customer: 1, Market: 3, Side: market.Sell, Type: market.Limit, Price: 310_000, Qty: 6_000_000_000}); !errors.Is(o.Err, trading.ErrInsufficient) {
		t.Fatalf("oversell = %v", o.Err)
	}
}

// TestDealerPriceRounding: the desk's price is the reference times the
// spread, rounded once and against the customer onto the tick, as
// docs/trading.md says: 88 at 200 bps quotes 90 to buy and 86 to sell
// (rounding the offset first would give 89/87).
func TestDealerPriceRounding(t *testing.T) {
	for _, c := range []struct {
		ref       int64
		bps       uint32
		tick      int64
		buy, sell int64
	}{
		{88, 200, 1, 90, 86},
		{10_000_000, 50, 1, 10_050_000, 9_950_000},
		{10_000_000, 50, 1_000, 10_050_000, 9_950_000},
		{10_000_001, 50, 1_000, 10_051_000, 9_950_000},
		{100, 0, 1, 100, 100},
		{1, 200, 1, 2, 0},
		{100, 10_000, 1, 200, 0},
	} {
		if b, s := dealerPrice(c.ref, c.bps, c.tick, market.Buy), dealerPrice(c.ref, c.bps, c.tick, market.Sell); b != c.buy || s != c.sell {
			t.Errorf("reference %d at %d bps, tick %d: %d/%d; want %d/%d", c.ref, c.bps, c.tick, b, s, c.buy, c.sell)
		}
	}
}
