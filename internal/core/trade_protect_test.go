package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"kinko/internal/controls"
	"kinko/internal/journal"
	"kinko/internal/ledger"
	"kinko/internal/market"
	"kinko/internal/people"
	"kinko/internal/trading"
)

// worth is what an owner holds of bitcoin and yen (available and held),
// valued in yen at price yen per bitcoin.
func (e *tradeEnv) worth(c ledger.OwnerID, price int64) int64 {
	sat := e.bal(avail(c, btc)) + e.bal(held(c, btc))
	yen := e.bal(avail(c, jpy)) + e.bal(held(c, jpy))
	return yen + sat/1_000_000*price/100 // 1e8 sat a coin, in two steps to stay in range
}

// TestStolenSessionSellOff is the attack with 50 customers' passwords and
// TOTP secrets: the attacker rests a bid at 1/9,000 of the market, and
// each victim's session places a market sell (protection price the
// attacker's) and a limit sell at the attacker's price. With the band the
// bid at 1,000 yen is refused, every victim order is refused or filled
// inside the band (at worst at its floor, 10% under the index), and the
// circuit breaker halts the market at the first victim's fill; the same
// orders on a book without a band hand the attacker nearly all 500 BTC
// for nothing. The attacker's take is measured in the ledger.
func TestStolenSessionSellOff(t *testing.T) {
	const (
		victims       = 50
		marketPrice   = 9_000_000
		attackerPrice = marketPrice / 9_000 // 1,000 yen a bitcoin
		sell          = 5_0000_0000         // each order: 5 of the victim's 10 BTC
	)
	e := newTradeEnv(t, victims+2)
	attacker, honest := ledger.OwnerID(victims+1), ledger.OwnerID(victims+2)
	// The market trades around 9,000,000: two operators set the index.
	if o := e.twoPerson(KindIndexPrice, MarketPricePayload{Market: 1, Price: marketPrice}, "aiko", "hana", people.RoleApprover); o.Err != nil {
		t.Fatal(o.Err)
	}
	eq := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: jpy, Kind: ledger.KindEquity}
	e.must(CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 9, Lo: 1}, Debit: eq, Credit: avail(attacker, jpy), Amount: ledger.AmountOf(5_000_000_000)}}})
	// An honest bidder near the market.
	e.must(place(honest, market.Buy, market.Limit, 8_950_000, 1_0000_0000))
	e.must(place(honest, market.Buy, market.Limit, 8_900_000, 1_0000_0000))
	lo, hi := e.st.Trading.Markets()[0].Book.Band()
	if lo != 8_100_000 || hi != 9_900_000 {
		t.Fatalf("band %d-%d", lo, hi)
	}
	// The attacker's bid at 1/9,000 is refused with the band in the error;
	// it rests what it can, at the floor. (The checks up to the value
	// taken do not stop the test: with the band gone, the assertion on
	// what the attacker took is the one that must fail.)
	for i := 0; i < 5; i++ {
		o := e.do(place(attacker, market.Buy, market.Limit, attackerPrice, 100_0000_0000))
		if o.Err == nil {
			t.Errorf("attacker's bid at %d taken; want refused naming the band", attackerPrice)
			continue
		}
		if !errors.Is(o.Err, market.ErrOutsideBand) || !strings.Contains(o.Err.Error(), "8100000-9900000") {
			t.Errorf("attacker's bid at %d = %v; want refused naming the band", attackerPrice, o.Err)
		}
		e.must(place(attacker, market.Buy, market.Limit, lo, 100_0000_0000))
	}
	before := e.worth(attacker, marketPrice)
	var sold, refused, halted int64
	for v := ledger.OwnerID(1); v <= victims; v++ {
		for _, c := range []PlaceOrder{
			place(v, market.Sell, market.Limit, attackerPrice, sell),
			place(v, market.Sell, market.Market, attackerPrice, sell),
		} {
			o := e.do(c)
			switch {
			case errors.Is(o.Err, controls.ErrHalted):
				halted++
				continue
			case o.Err != nil:
				refused++
				if !errors.Is(o.Err, market.ErrOutsideBand) {
					t.Errorf("victim %d's %v: %v", v, c.Type, o.Err)
				}
				continue
			}
			for _, tr := range o.Value.(*PlaceResult).Trades {
				if tr.Price < lo || tr.Price > hi {
					t.Errorf("victim %d filled at %d, outside the band %d-%d", v, tr.Price, lo, hi)
				}
				sold += tr.Qty
			}
		}
	}
	take := e.worth(attacker, marketPrice) - before
	// The same orders on a book without a band, the attacker's bids at
	// 1,000 yen: what the attack took before.
	nb := market.New(market.Config{TickSize: btcJPY.TickSize, LotSize: btcJPY.LotSize, MinQty: btcJPY.MinQty, MaxQty: btcJPY.MaxQty,
		MaxPrice: btcJPY.MaxPrice, MaxOrders: btcJPY.MaxOrders}, 64)
	id := market.OrderID(0)
	put := func(c PlaceOrder) []market.Fill {
		id++
		fills, _, _ := nb.Place(market.Order{ID: id, Owner: market.Owner(c.Customer), Side: c.Side, Kind: c.Type, Price: c.Price, Qty: c.Qty}, nil)
		return fills
	}
	put(place(honest, market.Buy, market.Limit, 8_950_000, 1_0000_0000))
	put(place(honest, market.Buy, market.Limit, 8_900_000, 1_0000_0000))
	for i := 0; i < 5; i++ {
		put(place(attacker, market.Buy, market.Limit, attackerPrice, 100_0000_0000))
	}
	var takeWithout int64
	for v := ledger.OwnerID(1); v <= victims; v++ {
		for _, c := range []PlaceOrder{place(v, market.Sell, market.Limit, attackerPrice, sell), place(v, market.Sell, market.Market, attackerPrice, sell)} {
			for _, f := range put(c) {
				if f.MakerOwner == market.Owner(attacker) {
					takeWithout += btcJPY.Notional(marketPrice-f.Price, f.Qty)
				}
			}
		}
	}
	t.Logf("with the band and the breaker: %d victim orders refused outside the band, %d refused halted, %d sat sold; the attacker took %d yen; without the band: %d yen",
		refused, halted, sold, take, takeWithout)
	// At worst every coin sold went at the band's floor: 10% of its value.
	if bound := btcJPY.Notional(marketPrice-lo, sold); take > bound {
		t.Fatalf("the attacker took %d yen; the band bounds it at %d", take, bound)
	}
	if take*1_000 > takeWithout {
		t.Fatalf("the attacker took %d yen with the band, %d without: the band took off less than 99.9%%", take, takeWithout)
	}
	if takeWithout < 4_000_000_000 {
		t.Fatalf("without the band the attack takes only %d yen: the scenario is wrong", takeWithout)
	}
	// The breaker stopped the rest: the market's trading is halted, by it.
	if h := e.st.Controls.Halted(); len(h) != 1 || h[0].Actor != BreakerActor || h[0].Switch != (controls.Switch{Asset: btc, Service: controls.Trade}) {
		t.Fatalf("halts %+v", h)
	}
	if refused < 1 || halted < 2*victims-2 {
		t.Fatalf("%d victim orders refused outside the band, %d met the halt", refused, halted)
	}
}

// TestBandThroughTheCore: a limit order at the band's edges is taken and a
// tick beyond is refused, naming the band, with nothing held; a market
// order's hold is sized at the band's edge and it fills no further; a
// replace beyond the band is refused.
func TestBandThroughTheCore(t *testing.T) {
	e := newTradeEnv(t, 3)
	for _, c := range []struct {
		cmd  PlaceOrder
		want error
	}{
		{place(1, market.Buy, market.Limit, 9_000_000, 1000_0000), nil},
		{place(1, market.Sell, market.Limit, 11_000_000, 1000_0000), nil},
		{place(1, market.Buy, market.Limit, 8_999_000, 1000_0000), market.ErrOutsideBand},
		{place(1, market.Sell, market.Limit, 11_001_000, 1000_0000), market.ErrOutsideBand},
		{place(1, market.Buy, market.IOC, 11_001_000, 1000_0000), market.ErrOutsideBand},
		{place(1, market.Sell, market.PostOnly, 8_999_000, 1000_0000), market.ErrOutsideBand},
	} {
		before := e.digest()
		o := e.do(c.cmd)
		if !errors.Is(o.Err, c.want) {
			t.Errorf("%v %v at %d = %v; want %v", c.cmd.Side, c.cmd.Type, c.cmd.Price, o.Err, c.want)
		}
		if c.want != nil {
			if !strings.Contains(o.Err.Error(), "the band is 9000000-11000000 (±10.00% of the index price 10000000)") {
				t.Errorf("refusal %q does not name the band", o.Err)
			}
			if e.digest() != before {
				t.Errorf("refused %v at %d changed the state", c.cmd.Type, c.cmd.Price)
			}
		}
	}
	// A market buy with a protection price of 50,000,000 holds what it
	// could pay at the ceiling, 11,000,000, and takes only the ask at it.
	e.must(place(2, market.Sell, market.Limit, 11_000_000, 1000_0000))
	e.must(CancelOrder{Customer: 1, Order: 2}) // customer 1's own ask at 11,000,000
	jpyBefore := e.bal(avail(3, jpy))
	r := e.must(place(3, market.Buy, market.Market, 50_000_000, 2000_0000)).(*PlaceResult)
	if r.Filled != 1000_0000 || r.Cancelled != 1000_0000 || r.Trades[0].Price != 11_000_000 {
		t.Fatalf("market buy = %+v", r)
	}
	if paid := jpyBefore - e.bal(avail(3, jpy)); paid != 1_100_000+1_650 {
		t.Fatalf("market buy paid %d", paid)
	}
	// That fill was 10% from the index: the circuit breaker halted the
	// market; two operators lift it.
	if e.st.Controls.Allowed(btc, controls.Trade) == nil {
		t.Fatal("a fill 10% from the index did not trip the breaker")
	}
	if o := e.twoPerson(KindLiftHalt, LiftHaltPayload{Switch: controls.Switch{Asset: btc, Service: controls.Trade}}, "mei", "hana", people.RoleApprover); o.Err != nil {
		t.Fatal(o.Err)
	}
	// Replace beyond the band refused; the order stays as it was.
	if o := e.do(ReplaceOrder{Customer: 1, Order: 1, Price: 8_000_000, Qty: 1000_0000}); !errors.Is(o.Err, market.ErrOutsideBand) {
		t.Fatalf("replace beyond the band = %v", o.Err)
	}
	if o, _ := e.st.Trading.Order(1); o.Price != 9_000_000 {
		t.Fatalf("order after a refused replace: %+v", o)
	}
	// The fill moved the last trade to 11,000,000, but the index holds the
	// band; cleared by one operator (11,000,000 is 10% away: refused), then
	// by two, it follows the last trade.
	if o := e.do(SetIndexPrice{Market: 1, Price: 0, Actor: "mei"}); !errors.Is(o.Err, trading.ErrNeedsApproval) {
		t.Fatalf("clearing the index 10%% from the last trade alone = %v", o.Err)
	}
	if o := e.twoPerson(KindIndexPrice, MarketPricePayload{Market: 1, Price: 0}, "mei", "hana", people.RoleApprover); o.Err != nil {
		t.Fatal(o.Err)
	}
	m, _ := e.st.Trading.Market(1)
	if lo, hi := m.Book.Band(); lo != 9_900_000 || hi != 12_100_000 {
		t.Fatalf("band after clearing the index: %d-%d", lo, hi)
	}
	// Customer 1's bid at 9,000,000 now stands below the band: it stays,
	// and can only fill when the band comes back to it.
	if _, ok := e.st.Trading.Order(1); !ok {
		t.Fatal("the bid below the band was cancelled")
	}
}

// TestNoReference: a market that never traded and has no index takes
// orders that rest and refuses what would trade; one operator cannot give
// it a first price (there is nothing to measure the move against), two
// can; then it trades.
func TestNoReference(t *testing.T) {
	e := newTradeEnv(t, 2)
	l := btcJPY
	l.ID, l.Code = 2, "BTC/JPY2"
	if o := e.listMarket(l); o.Err != nil {
		t.Fatal(o.Err)
	}
	p := func(c ledger.OwnerID, side market.Side, kind market.Kind, price int64) PlaceOrder {
		return PlaceOrder{Customer: c, Market: 2, Side: side, Type: kind, Price: price, Qty: 1000_0000}
	}
	e.must(p(1, market.Sell, market.Limit, 10_000_000))
	for _, c := range []PlaceOrder{
		p(2, market.Buy, market.Market, 10_000_000),
		p(2, market.Buy, market.Limit, 10_000_000),
		p(2, market.Buy, market.IOC, 10_000_000),
		p(2, market.Buy, market.FOK, 10_000_000),
	} {
		before := e.digest()
		if o := e.do(c); !errors.Is(o.Err, market.ErrNoReference) || !strings.Contains(o.Err.Error(), "no reference price yet") {
			t.Errorf("%v with no reference = %v", c.Type, o.Err)
		}
		if e.digest() != before {
			t.Errorf("%v with no reference changed the state", c.Type)
		}
	}
	e.must(p(2, market.Buy, market.Limit, 9_000_000)) // rests
	if o := e.do(SetIndexPrice{Market: 2, Price: 10_000_000, Actor: "mei"}); !errors.Is(o.Err, trading.ErrNeedsApproval) {
		t.Fatalf("a first index by one operator = %v", o.Err)
	}
	e.open(2, 10_000_000)
	if r := e.must(p(2, market.Buy, market.Limit, 10_000_000)).(*PlaceResult); r.Filled != 1000_0000 {
		t.Fatalf("after opening: %+v", r)
	}
}

// TestLargestOrder: an order above the listing's largest notional or
// quantity is refused with nothing held; one at it is taken.
func TestLargestOrder(t *testing.T) {
	e := newTradeEnv(t, 1)
	l := btcJPY
	l.ID, l.Code, l.MaxOrderNotional = 2, "BTC/JPY2", 0 // the default: 10,000,000 yen
	if o := e.listMarket(l); o.Err != nil {
		t.Fatal(o.Err)
	}
	m, _ := e.st.Trading.Market(2)
	if m.Listing.MaxOrderNotional != trading.DefaultMaxOrderFiat || m.Listing.BandBps != trading.DefaultBandBps || m.Listing.BreakerBps != trading.DefaultBreakerBps {
		t.Fatalf("listed with %+v", m.Listing)
	}
	e.open(2, 10_000_000)
	p := func(side market.Side, kind market.Kind, price, qty int64) PlaceOrder {
		return PlaceOrder{Customer: 1, Market: 2, Side: side, Type: kind, Price: price, Qty: qty}
	}
	e.must(p(market.Buy, market.Limit, 10_000_000, 1_0000_0000)) // 10,000,000 yen: at the limit
	for _, c := range []PlaceOrder{
		p(market.Buy, market.Limit, 10_000_000, 1_0010_0000),
		p(market.Sell, market.Limit, 10_001_000, 1_0000_0000),
		p(market.Sell, market.Market, 9_000_000, 1_1200_0000), // at the clamped floor, 9,000,000: 10,080,000
	} {
		before := e.digest()
		if o := e.do(c); !errors.Is(o.Err, trading.ErrOrderTooLarge) {
			t.Errorf("%v %d at %d = %v; want ErrOrderTooLarge", c.Type, c.Qty, c.Price, o.Err)
		}
		if e.digest() != before {
			t.Error("a refused large order changed the state")
		}
	}
	if o := e.do(p(market.Sell, market.Limit, 10_000_000, btcJPY.MaxQty+btcJPY.LotSize)); !errors.Is(o.Err, trading.ErrOrderTooLarge) && !errors.Is(o.Err, market.ErrAboveMax) {
		t.Errorf("above the largest quantity = %v", o.Err)
	}
}

// TestCircuitBreaker: trades that move the price more than 5% within five
// minutes halt the market's trading, a journaled halt by the circuit
// breaker naming the move; orders are refused, cancels are not; one
// operator cannot lift it, two can; the journal and a snapshot rebuild
// the same state. A move of less than 5% in a window, or more spread over
// more than a window, does not trip.
func TestCircuitBreaker(t *testing.T) {
	e := newTradeEnv(t, 4)
	// 10,000,000 -> 10,400,000 in steps within a minute: +4%, no halt.
	for _, p := range []int64{10_200_000, 10_400_000} {
		e.must(place(1, market.Sell, market.Limit, p, 1000_0000))
		e.must(place(2, market.Buy, market.Limit, p, 1000_0000))
	}
	if e.st.Controls.Any() {
		t.Fatalf("halted at +4%%: %+v", e.st.Controls.Halted())
	}
	// A resting bid, to show cancels go on during the halt.
	e.must(place(3, market.Buy, market.Limit, 10_300_000, 1000_0000))
	bid := market.OrderID(e.st.Trading.NextOrder)
	// +5.2% from the price at the window's start: halted by the fill.
	e.must(place(1, market.Sell, market.Limit, 10_520_000, 1000_0000))
	r := e.must(place(2, market.Buy, market.Limit, 10_520_000, 1000_0000)).(*PlaceResult)
	if r.Filled != 1000_0000 {
		t.Fatalf("the tripping order did not fill: %+v", r)
	}
	h := e.st.Controls.Halted()
	if len(h) != 1 || h[0].Actor != BreakerActor || h[0].Switch != (controls.Switch{Asset: btc, Service: controls.Trade}) ||
		!strings.Contains(h[0].Reason, "+5.20% from 10000000") || h[0].Seq != e.st.Seq() {
		t.Fatalf("halts %+v", h)
	}
	if o := e.do(place(4, market.Buy, market.Limit, 10_520_000, 1000_0000)); !errors.Is(o.Err, controls.ErrHalted) || !strings.Contains(o.Err.Error(), "circuit-breaker") {
		t.Fatalf("an order while the breaker holds = %v", o.Err)
	}
	e.must(CancelOrder{Customer: 3, Order: bid})
	// One person cannot lift it: not alone, not approving their own request.
	e.reqs++
	id := fmt.Sprintf("req-%d", e.reqs)
	e.must(OpenRequest{Request: people.Request{ID: id, Kind: KindLiftHalt, Payload: []byte(`{"switch":{"asset":2,"service":"trade"}}`), Requester: "hana",
		Reason: "checked the move", RequiredRole: people.RoleApprover, Expires: e.now + 3600e9}})
	if o := e.do(DecideRequest{ID: id, Decider: "hana", Reason: "me", Approve: true}); !errors.Is(o.Err, people.ErrSelfApproval) {
		t.Fatalf("self-approved lift = %v", o.Err)
	}
	if o := e.do(DecideRequest{ID: id, Decider: "mei", Reason: "me", Approve: true}); !errors.Is(o.Err, people.ErrWrongRole) {
		t.Fatalf("lift approved without the approver role = %v", o.Err)
	}
	if !e.st.Controls.Any() {
		t.Fatal("the halt was lifted by one person")
	}
	if o := e.do(DecideRequest{ID: id, Decider: "aiko", Reason: "wrong role", Approve: true}); !errors.Is(o.Err, people.ErrWrongRole) {
		t.Fatalf("lift approved by an admin without the approver role = %v", o.Err)
	}
	if o := e.twoPerson(KindLiftHalt, LiftHaltPayload{Switch: controls.Switch{Asset: btc, Service: controls.Trade}}, "mei", "hana", people.RoleApprover); o.Err != nil {
		t.Fatal(o.Err)
	}
	if e.st.Controls.Any() {
		t.Fatal("still halted after the lift")
	}
	// Six minutes later the window starts at 10,520,000: a move to
	// 10,900,000 (+3.6%) trades without a halt.
	e.now += 6 * 60e9
	e.must(place(1, market.Sell, market.Limit, 10_900_000, 1000_0000))
	e.must(place(2, market.Buy, market.Limit, 10_900_000, 1000_0000))
	if e.st.Controls.Any() {
		t.Fatalf("halted by a move spread over more than a window: %+v", e.st.Controls.Halted())
	}
	// The incident timeline shows the breaker's halt, at the order that
	// tripped it, and the two people who lifted it.
	c := openCore(t, t.TempDir(), 0)
	for i := range e.entries {
		if _, err := c.SubmitRaw(context.Background(), e.entries[i].Time, Kind(e.entries[i].Kind), e.entries[i].Payload); err != nil {
			t.Fatal(err)
		}
	}
	var applied func(journal.Entry, Command) bool
	var names Names
	c.Read(func(st *State) { applied, names = Applied(st), NamesOf(st) })
	evs, err := Timeline(c.Journal(), 1, applied, names)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, ev := range evs {
		if ev.Actor == BreakerActor || strings.Contains(ev.What, "approves") {
			seen = append(seen, ev.Actor+": "+ev.What)
		}
	}
	if got := strings.Join(seen, "; "); !strings.Contains(got, "circuit-breaker: halt of trading: the circuit breaker tripped; ") || strings.Count(got, "circuit-breaker") != 1 {
		t.Fatalf("timeline: %s", got)
	}
	// The journal and a snapshot give the same state.
	re := NewState()
	for i := range e.entries {
		re.Apply(&e.entries[i])
	}
	var buf bytes.Buffer
	if err := e.st.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	back, err2 := DecodeState(&buf)
	if err2 != nil {
		t.Fatal(err2)
	}
	if re.Hash() != e.st.Hash() || back.Hash() != e.st.Hash() {
		t.Fatal("replay or snapshot gives another state")
	}
	// And the snapshot goes on as the original, the breaker's window too:
	// 9,990,000 is 5.04% under the window's 10,520,000.
	for _, st := range []*State{e.st, back} {
		mj := e.mj
		for i, c := range []PlaceOrder{place(2, market.Buy, market.Limit, 9_990_000, 1000_0000), place(1, market.Sell, market.Limit, 9_990_000, 1000_0000)} {
			en := mj.seal(e.now+int64(i+1)*1e9, c)
			if o := st.Apply(&en); o.Err != nil {
				t.Fatal(o.Err)
			}
		}
		if st.Controls.Allowed(btc, controls.Trade) == nil {
			t.Fatal("-5.04% within the window did not trip")
		}
	}
	if back.Hash() != e.st.Hash() {
		t.Fatal("the restored state diverged")
	}
}

// TestDealerReferenceBounds: one operator moves the dealer's reference
// within 5% a change and 10% a day; beyond, alone, is refused and changes
// nothing; proposed by one and approved by another with the approver role
// it is taken; the proposer cannot approve it, nor an admin without the
// role; quotes use only the reference, never the book's mid, and a quote
// made before the reference moved cannot be executed.
func TestDealerReferenceBounds(t *testing.T) {
	e := newTradeEnv(t, 2)
	// sora (the crew's CISO) has neither the operator nor the approver
	// role.
	m, _ := e.st.Trading.Market(1)
	// A quote with no reference: refused though the book has a mid.
	e.must(place(1, market.Sell, market.Limit, 10_100_000, 1000_0000))
	e.must(place(2, market.Buy, market.Limit, 9_900_000, 1000_0000))
	if o := e.do(DealerQuote{Customer: 1, Market: 1, Side: market.Buy, Qty: 1000_0000}); !errors.Is(o.Err, trading.ErrNoReference) {
		t.Fatalf("quote from the mid = %v", o.Err)
	}
	// The first reference within 5% of the market's (the index), alone;
	// then +4.85%.
	e.must(SetReferencePrice{Market: 1, Price: 10_300_000, Actor: "mei"})
	e.must(SetReferencePrice{Market: 1, Price: 10_800_000, Actor: "mei"})
	q := e.must(DealerQuote{Customer: 1, Market: 1, Side: market.Buy, Qty: 1000_0000}).(*trading.Quote)
	for _, c := range []struct {
		price int64
		actor string
		want  error
		why   string
	}{
		{11_360_000, "mei", trading.ErrNeedsApproval, "beyond ±5.00% a change"},
		{1, "mei", trading.ErrNeedsApproval, "-99.99%"},
		{-1, "mei", ErrCommandInvalid, ""},
		{11_000_000, "nobody", people.ErrOperatorUnknown, ""},
		{11_000_000, "sora", people.ErrNotAuthorized, ""},
	} {
		before := e.digest()
		o := e.do(SetReferencePrice{Market: 1, Price: c.price, Actor: c.actor})
		if !errors.Is(o.Err, c.want) || !strings.Contains(fmt.Sprint(o.Err), c.why) {
			t.Errorf("reference %d by %s = %v; want %v (%s)", c.price, c.actor, o.Err, c.want, c.why)
		}
		if m.Reference != 10_800_000 || e.digest() != before {
			t.Errorf("refused reference %d changed the state: %d", c.price, m.Reference)
		}
	}
	// +4.63%: 9.71% from the day's first price, 10,300,000. One more step
	// alone would be 10.68% in the day: refused.
	e.must(SetReferencePrice{Market: 1, Price: 11_300_000, Actor: "mei"})
	if o := e.do(SetReferencePrice{Market: 1, Price: 11_400_000, Actor: "mei"}); !errors.Is(o.Err, trading.ErrNeedsApproval) || !strings.Contains(o.Err.Error(), "a day") {
		t.Fatalf("past 10%% in a day alone = %v", o.Err)
	}
	// The quote made at 10,800,000 is stale now.
	if o := e.do(DealerExecute{Customer: 1, Quote: q.ID}); !errors.Is(o.Err, trading.ErrQuoteStale) {
		t.Fatalf("execution of a quote made before the reference moved = %v", o.Err)
	}
	// Two people: proposed by mei; mei cannot approve, nor aiko (admin,
	// not approver); hana can.
	e.reqs++
	id := fmt.Sprintf("req-%d", e.reqs)
	e.must(OpenRequest{Request: people.Request{ID: id, Kind: KindDealerReference, Payload: []byte(`{"market":1,"price":11400000}`), Requester: "mei",
		Reason: "the market moved 11% today", RequiredRole: people.RoleApprover, Expires: e.now + 3600e9}})
	for _, c := range []struct {
		who  string
		want error
	}{{"mei", people.ErrSelfApproval}, {"aiko", people.ErrWrongRole}, {"hana", nil}} {
		if o := e.do(DecideRequest{ID: id, Decider: c.who, Reason: "ok", Approve: true}); !errors.Is(o.Err, c.want) {
			t.Fatalf("approval by %s = %v; want %v", c.who, o.Err, c.want)
		}
	}
	if m.Reference != 11_400_000 {
		t.Fatalf("reference after approval %d", m.Reference)
	}
	// The approved price anchors the next day: +4% alone is taken.
	e.must(SetReferencePrice{Market: 1, Price: 11_850_000, Actor: "mei"})
	// A request is checked when opened: an unknown market, a negative
	// price, a wrong role to approve, a requester who may not set prices.
	for _, r := range []people.Request{
		{Kind: KindDealerReference, Payload: []byte(`{"market":9,"price":1}`), Requester: "mei", RequiredRole: people.RoleApprover},
		{Kind: KindDealerReference, Payload: []byte(`{"market":1,"price":-5}`), Requester: "mei", RequiredRole: people.RoleApprover},
		{Kind: KindIndexPrice, Payload: []byte(`{"market":1,"price":10000500}`), Requester: "mei", RequiredRole: people.RoleApprover},
		{Kind: KindDealerReference, Payload: []byte(`{"market":1,"price":1}`), Requester: "mei", RequiredRole: people.RoleOperator},
		{Kind: KindDealerReference, Payload: []byte(`{"market":1,"price":1}`), Requester: "sora", RequiredRole: people.RoleApprover},
	} {
		e.reqs++
		r.ID, r.Reason, r.Expires = fmt.Sprintf("req-%d", e.reqs), "test", e.now+3600e9
		if o := e.do(OpenRequest{Request: r}); o.Err == nil {
			t.Errorf("request %s %s by %s for %s opened", r.Kind, r.Payload, r.Requester, r.RequiredRole)
		}
	}
}

// TestInsiderReferenceAttack is Coincheck's XEM desk with an insider: an
// operator sets the dealer's reference for XEM from 88 yen to 1 and an
// accomplice buys the house's XEM at it. Alone, the move is refused and
// the accomplice's quote is at the market; the house's loss is measured.
func TestInsiderReferenceAttack(t *testing.T) {
	e := newTradeEnv(t, 2)
	const xem ledger.AssetID = 4
	e.must(CreateAssets{Assets: []ledger.Asset{{ID: xem, Code: "XEM", Decimals: 6, Class: ledger.ClassChain}}})
	eq := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: xem, Kind: ledger.KindEquity}
	e.must(CreateAccounts{Keys: []ledger.AccountKey{eq, avail(1, xem), held(1, xem), avail(2, xem), held(2, xem)}})
	xemJPY := trading.Listing{ID: 2, Code: "XEM/JPY", Base: xem, Quote: jpy, Scale: 1_000_000, TickSize: 1, LotSize: 1_000_000, MinQty: 1_000_000,
		MaxQty: 1_000_000_000_000, MaxPrice: 1_000_000, MaxOrders: 1 << 10, DealerSpreadBps: 200, QuoteValidityNs: 10e9,
		DealerMaxLong: 500_000_000_000, DealerMaxShort: 500_000_000_000}
	if o := e.listMarket(xemJPY); o.Err != nil {
		t.Fatal(o.Err)
	}
	e.must(CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 9, Lo: 2}, Debit: eq, Credit: house(xem), Amount: ledger.AmountOf(1_000_000_000_000)}}})
	e.open(2, 88)
	e.must(SetReferencePrice{Market: 2, Price: 88, Actor: "mei"})
	houseBefore := e.bal(house(xem))*88/1_000_000 + e.bal(house(jpy))
	// The insider: 88 -> 1, alone. Refused, nothing changes.
	o := e.do(SetReferencePrice{Market: 2, Price: 1, Actor: "mei"})
	if !errors.Is(o.Err, trading.ErrNeedsApproval) || !strings.Contains(o.Err.Error(), "88 -> 1 moves -98.86%") {
		t.Fatalf("88 -> 1 alone = %v", o.Err)
	}
	m, _ := e.st.Trading.Market(2)
	if m.Reference != 88 {
		t.Fatalf("reference now %d", m.Reference)
	}
	// The accomplice buys 100,000 XEM: at the reference plus the spread.
	q := e.must(DealerQuote{Customer: 2, Market: 2, Side: market.Buy, Qty: 100_000_000_000}).(*trading.Quote)
	e.must(DealerExecute{Customer: 2, Quote: q.ID})
	houseAfter := e.bal(house(xem))*88/1_000_000 + e.bal(house(jpy))
	// At 1 yen the house would have lost 87 yen an XEM: 8,700,000 yen.
	if q.Price < 88 || houseAfter < houseBefore {
		t.Fatalf("the accomplice bought at %d; the house went from %d to %d yen", q.Price, houseBefore, houseAfter)
	}
	t.Logf("accomplice paid %d yen an XEM; the house's value went from %d to %d yen (at 1 yen it would have lost %d)", q.Price, houseBefore, houseAfter, 87*100_000)
}
