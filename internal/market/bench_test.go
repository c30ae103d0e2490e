package market

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// benchConfig is BTC/JPY-like: prices in yen per bitcoin on a 1 yen tick,
// quantities in satoshi in lots of 0.0001 BTC, up to 100 BTC an order.
var benchConfig = Config{TickSize: 1, LotSize: 10_000, MinQty: 10_000, MaxQty: 10_000_000_000, MaxPrice: 1_000_000_000, MaxOrders: 1 << 24}

// The standard mix of exchange-core's benchmarks: about 1,000 resting
// orders a side within mixBand ticks of mixMid; 9% new GTC orders, 3% IOC,
// 6% cancels and 82% replaces that move an order to a new price. While
// fewer than 2,000 orders rest, a cancel is drawn as a new order instead,
// which holds the book at its size.
const (
	mixMid       = 10_000_000
	mixBand      = 300
	mixPerSide   = 1000
	mixOwners    = 1000
	mixStreamLen = 1 << 19
)

type mixGen struct {
	rng    *rand.Rand
	book   *Book
	active [2][]OrderID // resting ids per side, in no particular order
	pos    map[OrderID]int
	nextID OrderID
	fills  []Fill
}

// price returns a price on side's half of the band; one in fifty reaches up
// to 5 ticks across the mid and may trade.
func (g *mixGen) price(side Side) int64 {
	off := int64(1 + g.rng.IntN(mixBand))
	if g.rng.IntN(50) == 0 {
		off = int64(-g.rng.IntN(5))
	}
	if side == Buy {
		return mixMid - off
	}
	return mixMid + off
}

func (g *mixGen) qty() int64 { return benchConfig.LotSize * int64(1+g.rng.IntN(100)) }

func (g *mixGen) order(kind Kind, side Side) Order {
	g.nextID++
	return Order{ID: g.nextID, Owner: Owner(1 + g.rng.IntN(mixOwners)), Side: side, Kind: kind, Price: g.price(side), Qty: g.qty()}
}

// sync brings the active sets in line with the book for id.
func (g *mixGen) sync(id OrderID) {
	o, resting := g.book.Resting(id)
	i, known := g.pos[id]
	switch {
	case resting && !known:
		s := o.Side - 1
		g.pos[id] = len(g.active[s])
		g.active[s] = append(g.active[s], id)
	case !resting && known:
		for s := range g.active {
			a := g.active[s]
			if i < len(a) && a[i] == id {
				last := a[len(a)-1]
				a[i] = last
				g.pos[last] = i
				g.active[s] = a[:len(a)-1]
				break
			}
		}
		delete(g.pos, id)
	}
}

func (g *mixGen) run(x op) {
	var res Result
	var err error
	g.fills, res, _, err = apply(g.book, x, g.fills[:0])
	if err != nil {
		panic(err)
	}
	g.sync(x.order.ID)
	for _, f := range g.fills {
		g.sync(f.Maker)
	}
	for _, e := range res.Expired {
		g.sync(e.ID)
	}
}

// mixStream returns orders that rest mixPerSide orders a side, and a valid
// stream of mixStreamLen ops to run on a book holding them.
var mixStream = sync.OnceValues(func() ([]Order, []op) {
	g := &mixGen{rng: rand.New(rand.NewPCG(1, 2)), book: New(benchConfig, 4*mixPerSide), pos: map[OrderID]int{}}
	var prefill []Order
	for range mixPerSide {
		for _, side := range []Side{Buy, Sell} {
			o := g.order(Limit, side)
			o.Price = mixMid + int64(1+g.rng.IntN(mixBand))
			if side == Buy {
				o.Price = 2*mixMid - o.Price
			}
			prefill = append(prefill, o)
			g.run(op{kind: opPlace, order: o})
		}
	}
	ops := make([]op, 0, mixStreamLen)
	for len(ops) < mixStreamLen {
		bids, asks := len(g.active[0]), len(g.active[1])
		thin, thick := Buy, Sell
		if asks < bids {
			thin, thick = Sell, Buy
		}
		var x op
		r := g.rng.IntN(100)
		if r >= 12 && r < 18 && bids+asks < 2*mixPerSide {
			r = 0 // a cancel becomes a new order while the book is thin
		}
		switch {
		case r < 9:
			x = op{kind: opPlace, order: g.order(Limit, thin)}
		case r < 12:
			side := Side(1 + g.rng.IntN(2))
			o := g.order(IOC, side)
			bid, ask := g.book.Best()
			if side == Buy {
				o.Price = max(ask, mixMid) + 5
			} else {
				o.Price = min(bid, mixMid) - 5
			}
			x = op{kind: opPlace, order: o}
		case r < 18:
			a := g.active[thick-1]
			r, _ := g.book.Resting(a[g.rng.IntN(len(a))])
			x = op{kind: opCancel, order: r}
		default:
			a := g.active[g.rng.IntN(2)]
			r, _ := g.book.Resting(a[g.rng.IntN(len(a))])
			r.Price = g.price(r.Side)
			r.Qty = max(r.Qty, benchConfig.MinQty)
			x = op{kind: opReplace, order: r}
		}
		g.run(x)
		ops = append(ops, x)
	}
	return prefill, ops
})

func mixBook(prefill []Order) *Book { return mixBookOf(benchConfig, prefill) }

// benchBandConfig is benchConfig with a 10% band; mixBookOf starts such a book
// with its last trade at the mid, so the band follows the trades and is
// computed again after every fill (its costlier mode).
var benchBandConfig = func() Config { c := benchConfig; c.BandBps = 1000; return c }()

func mixBookOf(cfg Config, prefill []Order) *Book {
	b := New(cfg, 4*mixPerSide)
	if cfg.BandBps != 0 {
		if err := b.RestoreReference(mixMid, 0); err != nil {
			panic(err)
		}
	}
	for _, o := range prefill {
		if _, _, err := b.Place(o, nil); err != nil {
			panic(err)
		}
	}
	return b
}

// runOp is the benchmarks' dispatch: one call on the book.
func runOp(b *Book, x *op, fills []Fill) []Fill {
	switch x.kind {
	case opPlace:
		fills, _, _ = b.Place(x.order, fills)
	case opCancel:
		b.Cancel(x.order.ID, x.order.Owner)
	case opReplace:
		fills, _, _ = b.Replace(x.order.ID, x.order.Owner, x.order.Price, x.order.Qty, fills)
	}
	return fills
}

// BenchmarkMix runs the standard mix; an op is one Place, Cancel or
// Replace. Band runs it on a book with a price band that follows the last
// trade: every order checked against it, the band computed again after
// every fill.
func BenchmarkMix(b *testing.B) {
	b.Run("NoBand", func(b *testing.B) { benchMix(b, benchConfig) })
	b.Run("Band", func(b *testing.B) { benchMix(b, benchBandConfig) })
}

func benchMix(b *testing.B, cfg Config) {
	prefill, ops := mixStream()
	book := mixBookOf(cfg, prefill)
	fills := make([]Fill, 0, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i, j := 0, 0; i < b.N; i, j = i+1, j+1 {
		if j == len(ops) {
			b.StopTimer()
			book, j = mixBookOf(cfg, prefill), 0
			b.StartTimer()
		}
		fills = runOp(book, &ops[j], fills[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// latencySamplesMax bounds the per-op samples BenchmarkMixLatency keeps.
const latencySamplesMax = 1 << 24

// BenchmarkMixLatency runs the standard mix timing each op with
// time.Now, and reports the 50th, 99th and 99.9th percentile in
// nanoseconds, the clock reads included; clock-ns is the median of the
// same two reads around nothing.
func BenchmarkMixLatency(b *testing.B) {
	prefill, ops := mixStream()
	book := mixBook(prefill)
	fills := make([]Fill, 0, 256)
	samples := make([]time.Duration, min(b.N, latencySamplesMax))
	b.ReportAllocs()
	b.ResetTimer()
	for i, j := 0, 0; i < b.N; i, j = i+1, j+1 {
		if j == len(ops) {
			b.StopTimer()
			book, j = mixBook(prefill), 0
			b.StartTimer()
		}
		t0 := time.Now()
		fills = runOp(book, &ops[j], fills[:0])
		if i < len(samples) {
			samples[i] = time.Since(t0)
		}
	}
	b.StopTimer()
	slices.Sort(samples)
	at := func(q float64) float64 { return float64(samples[int(q*float64(len(samples)-1))]) }
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.99), "p99-ns")
	b.ReportMetric(at(0.999), "p99.9-ns")
	clock := samples[:min(len(samples), 1<<16)]
	for i := range clock {
		t0 := time.Now()
		clock[i] = time.Since(t0)
	}
	slices.Sort(clock)
	b.ReportMetric(float64(clock[len(clock)/2]), "clock-ns")
}

// restingBytesOrders is how many orders BenchmarkRestingBytes rests.
const restingBytesOrders = 1_000_000

// BenchmarkRestingBytes reports the live heap per resting order of a book
// of 1,000,000 orders over 2,000 price levels, the book made with that
// capacity hint.
func BenchmarkRestingBytes(b *testing.B) {
	var perOrder float64
	for range b.N {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		book := New(benchConfig, restingBytesOrders)
		for k := range restingBytesOrders {
			side := Side(1 + k%2)
			off := int64(1 + (k/2)%mixPerSide)
			o := Order{ID: OrderID(k + 1), Owner: Owner(k%mixOwners + 1), Side: side, Kind: Limit, Price: mixMid - off, Qty: benchConfig.MinQty}
			if side == Sell {
				o.Price = mixMid + off
			}
			if _, _, err := book.Place(o, nil); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		perOrder = float64(m1.HeapAlloc-m0.HeapAlloc) / restingBytesOrders
		runtime.KeepAlive(book)
	}
	b.ReportMetric(perOrder, "B/order")
}
