package core

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"kinko/internal/ledger"
	"kinko/internal/market"
	"kinko/internal/trading"
)

// mixGen makes the exchange-core standard mix against one market: about
// 9% GTC, 3% IOC, 6% cancel and 82% replace, over some 1,000 resting
// orders a side within 300 ticks of the mid, from 1,000 customers.
type mixGen struct {
	rng   *rand.Rand
	st    *State
	live  []market.OrderID
	mid   int64
	custs int
}

const benchCustomers = 1000

func (g *mixGen) price(side market.Side) int64 {
	off := int64(1+g.rng.IntN(300)) * btcJPY.TickSize
	if side == market.Buy {
		return g.mid - off
	}
	return g.mid + off
}

// pick returns a live order, dropping those that no longer rest.
func (g *mixGen) pick() (*trading.Order, bool) {
	for len(g.live) > 0 {
		i := g.rng.IntN(len(g.live))
		if o, ok := g.st.Trading.Order(g.live[i]); ok {
			return o, true
		}
		g.live[i] = g.live[len(g.live)-1]
		g.live = g.live[:len(g.live)-1]
	}
	return nil, false
}

func (g *mixGen) next() Command { return g.nextOp().command() }

// mixOp is one command of the mix, unboxed.
type mixOp struct {
	kind    Kind
	place   PlaceOrder
	cancel  CancelOrder
	replace ReplaceOrder
}

// nextOp is next without an interface.
func (g *mixGen) nextOp() mixOp {
	cust := ledger.OwnerID(1 + g.rng.IntN(g.custs))
	side := market.Side(1 + g.rng.IntN(2))
	qty := int64(1+g.rng.IntN(10)) * btcJPY.LotSize
	r := g.rng.IntN(100)
	if len(g.live) < 2000 && r >= 9 && r < 18 {
		r = 0
	}
	switch {
	case r < 9:
		return mixOp{kind: KindPlaceOrder, place: PlaceOrder{Customer: cust, Market: 1, Side: side, Type: market.Limit, Price: g.price(side), Qty: qty}}
	case r < 12:
		p := g.mid + 300*btcJPY.TickSize
		if side == market.Sell {
			p = g.mid - 300*btcJPY.TickSize
		}
		return mixOp{kind: KindPlaceOrder, place: PlaceOrder{Customer: cust, Market: 1, Side: side, Type: market.IOC, Price: p, Qty: qty}}
	case r < 18:
		if o, ok := g.pick(); ok {
			return mixOp{kind: KindCancelOrder, cancel: CancelOrder{Customer: o.Customer, Order: o.ID}}
		}
	}
	if o, ok := g.pick(); ok {
		return mixOp{kind: KindReplaceOrder, replace: ReplaceOrder{Customer: o.Customer, Order: o.ID, Price: g.price(o.Side), Qty: qty}}
	}
	return mixOp{kind: KindPlaceOrder, place: PlaceOrder{Customer: cust, Market: 1, Side: side, Type: market.Limit, Price: g.price(side), Qty: qty}}
}

// command boxes an op for the journal.
func (op mixOp) command() Command {
	switch op.kind {
	case KindPlaceOrder:
		return op.place
	case KindCancelOrder:
		return op.cancel
	}
	return op.replace
}

// note records what an applied command left resting.
func (g *mixGen) note(v any) {
	if r, ok := v.(*PlaceResult); ok && r.Resting > 0 {
		g.live = append(g.live, r.Order)
	}
}

// newBenchTrading is newTradeEnv for benchmarks: 1,000 customers rich
// enough for any mix, the ledger reserved for n operations, and a book of
// 1,000 orders a side.
func newBenchTrading(b testing.TB, n int) (*tradeEnv, *mixGen) {
	e := newTradeEnv(b, benchCustomers)
	e.check = false
	// Top every customer up far beyond what the mix can move.
	var ts []ledger.Transfer
	for i := ledger.OwnerID(1); i <= benchCustomers; i++ {
		for _, k := range []ledger.AccountKey{avail(i, jpy), avail(i, btc)} {
			ts = append(ts, ledger.Transfer{ID: ledger.ID{Hi: 8, Lo: uint64(len(ts) + 1)}, Debit: ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: k.Asset, Kind: ledger.KindEquity},
				Credit: k, Amount: ledger.AmountOf(1 << 50)})
		}
	}
	e.must(CreateTransfers{Transfers: ts})
	e.st.Ledger.Reserve(0, 4*n+100_000)
	g := &mixGen{rng: rand.New(rand.NewPCG(1, 2)), st: e.st, mid: 10_000_000, custs: benchCustomers}
	for i := 0; i < 2000; i++ {
		side := market.Side(1 + i%2)
		v := e.must(PlaceOrder{Customer: ledger.OwnerID(1 + i%benchCustomers), Market: 1, Side: side, Type: market.Limit, Price: g.price(side), Qty: btcJPY.LotSize * int64(1+i%10)})
		g.note(v)
	}
	// A trade at the mid, then the index cleared: the band follows the
	// last trade and moves with every fill, its costlier mode.
	e.must(PlaceOrder{Customer: 1, Market: 1, Side: market.Sell, Type: market.Limit, Price: g.mid, Qty: btcJPY.LotSize})
	e.must(PlaceOrder{Customer: 2, Market: 1, Side: market.Buy, Type: market.Limit, Price: g.mid, Qty: btcJPY.LotSize})
	e.must(SetIndexPrice{Market: 1, Price: 0, Actor: "mei"})
	return e, g
}

// BenchmarkTradingMix measures the matching engine with settlement in the
// ledger, in process: each operation is the core's apply of the command
// (the price band and largest order checks, matching, holds, fills, fees,
// trade records, the circuit breaker), without the journal. It
// reports operations per second on one core, p50/p99/p99.9 latency per
// operation and allocations. It runs with the core's collector setting
// (TuneGC); GOGC=100 in the environment shows Go's default.
func BenchmarkTradingMix(b *testing.B) {
	TuneGC() // as the core runs
	e, g := newBenchTrading(b, b.N)
	st := e.st
	lat := make([]time.Duration, 0, b.N)
	var fills int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// The same functions the apply dispatches to, called on the
		// command's own type (no interface boxing in the measurement).
		var r *PlaceResult
		var t0 time.Time
		var lap time.Duration
		switch c := g.nextOp(); c.kind {
		case KindPlaceOrder:
			t0 = time.Now()
			r, _ = st.placeOrder(c.place, e.now)
			lap = time.Since(t0)
		case KindCancelOrder:
			t0 = time.Now()
			st.cancelOrder(c.cancel)
			lap = time.Since(t0)
		default:
			t0 = time.Now()
			r, _ = st.replaceOrder(c.replace, e.now)
			lap = time.Since(t0)
		}
		lat = append(lat, lap)
		if r != nil {
			fills += len(r.Trades)
			if r.Resting > 0 {
				g.live = append(g.live, r.Order)
			}
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	var total time.Duration
	for _, d := range lat {
		total += d
	}
	b.ReportMetric(float64(b.N)/total.Seconds(), "orders/s")
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(lat[len(lat)*999/1000].Nanoseconds()), "p99.9-ns")
	b.ReportMetric(float64(fills)/float64(b.N), "fills/op")
	if err := st.CheckInvariants(); err != nil {
		b.Fatal(err)
	}
	// The figure is of trading: the mix never moves the price far enough
	// to trip the circuit breaker, and every order passed the band.
	if st.Controls.Any() {
		b.Fatalf("the mix tripped a halt: %+v", st.Controls.Halted())
	}
}

// BenchmarkTradingDurable measures orders end to end through the journal:
// encoded, journaled with fsync by the group commit, applied, acknowledged;
// 8 submitters, each a stream of the mix on its own customers.
func BenchmarkTradingDurable(b *testing.B) {
	TuneGC()
	dir := b.TempDir()
	c, err := Open(context.Background(), Config{Dir: dir, ReserveTransfers: 4*b.N + 100_000})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	// The same setup as in process, through the core.
	src, g := newBenchTrading(b, 0)
	for i := range src.entries {
		if _, err := c.SubmitRaw(context.Background(), src.entries[i].Time, Kind(src.entries[i].Kind), src.entries[i].Payload); err != nil {
			b.Fatal(err)
		}
	}
	// Pre-generate the mix against the in-process copy, then submit the
	// same commands to the core: both states follow the same journal.
	payloads := make([][]byte, b.N)
	kinds := make([]Kind, b.N)
	for i := range payloads {
		cmd := g.next()
		_, v, _ := src.st.applyTrading(cmd, src.now)
		g.note(v)
		payloads[i], kinds[i] = cmd.AppendPayload(nil), cmd.Kind()
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	// One submitter keeps the order; group commit batches what is queued.
	var wg sync.WaitGroup
	const inflight = 8
	sem := make(chan struct{}, 256*inflight)
	for i := range payloads {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := c.SubmitRaw(ctx, time.Now().UnixNano(), kinds[i], payloads[i]); err != nil {
				b.Error(err)
			}
		}(i)
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
	var ok bool
	c.Read(func(st *State) { ok = st.Trading.CheckInvariants() == nil })
	if !ok {
		b.Fatal("invariants broken")
	}
}

// BenchmarkRestingOrderMemory measures the memory one resting order takes:
// the book's entry, the open order's record and its hold's ledger
// transfer, at 1,000,000 resting orders.
func BenchmarkRestingOrderMemory(b *testing.B) {
	const n = 1_000_000
	for range b.N {
		e := newTradeEnv(b, benchCustomers)
		e.check = false
		var ts []ledger.Transfer
		for i := ledger.OwnerID(1); i <= benchCustomers; i++ {
			ts = append(ts, ledger.Transfer{ID: ledger.ID{Hi: 8, Lo: uint64(i)}, Debit: ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: btc, Kind: ledger.KindEquity}, Credit: avail(i, btc), Amount: ledger.AmountOf(1 << 50)})
		}
		e.must(CreateTransfers{Transfers: ts})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := 0; i < n; i++ {
			c := PlaceOrder{Customer: ledger.OwnerID(1 + i%benchCustomers), Market: 1, Side: market.Sell, Type: market.Limit, Price: 10_000_000 + int64(i%1000)*btcJPY.TickSize, Qty: btcJPY.LotSize}
			if _, _, err := e.st.applyTrading(c, e.now); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/order")
		if got := len(e.st.Trading.OpenOrders(1)); got != n/benchCustomers {
			b.Fatal(fmt.Sprintf("%d open orders of customer 1", got))
		}
	}
}
