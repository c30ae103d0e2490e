package market

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
)

// opKind is what one step of a simulated stream does.
type opKind uint8

const (
	opPlace opKind = iota
	opCancel
	opReplace
	opIndex
)

var opNames = [...]string{"place", "cancel", "replace", "index"}

// op is one call on the book: Place(order), Cancel(order.ID, order.Owner),
// Replace(order.ID, order.Owner, order.Price, order.Qty) or
// SetIndex(order.Price).
type op struct {
	kind  opKind
	order Order
}

func (o op) String() string {
	return fmt.Sprintf("%v %+v", opNames[o.kind], o.order)
}

// source draws the choices of a generated stream: from a seeded PRNG in the
// simulation, from the input bytes in the fuzz test.
type source interface {
	IntN(n int) int
}

// bytesSource reads choices from fuzz input; done reports it ran out.
type bytesSource struct {
	data []byte
	done bool
}

func (s *bytesSource) IntN(n int) int {
	if len(s.data) == 0 {
		s.done = true
		return 0
	}
	v := int(s.data[0])
	s.data = s.data[1:]
	if n > 256 && len(s.data) > 0 {
		v = v<<8 | int(s.data[0])
		s.data = s.data[1:]
	}
	return v % n
}

// simConfig is a market small enough that orders cross, share levels, meet
// their own owner's orders and fill the book.
func simConfig(maxOrders int) Config {
	return Config{TickSize: 5, LotSize: 10, MinQty: 20, MaxQty: 400, MaxPrice: 1000, MaxOrders: maxOrders}
}

// simBands are the bands the simulation runs with: none, one as wide as
// the orders' spread (trades move it), and a narrow one that refuses most.
var simBands = []uint32{0, 1200, 300}

const (
	simMid    = 500 // price the simulated orders gather around
	simBand   = 12  // ticks either side of simMid
	simCross  = 4   // ticks an order may reach across simMid
	simOwners = 4
)

// gen makes the next op from src, aiming at orders resting in m.
type gen struct {
	src    source
	nextID OrderID
}

func (g *gen) pct(p int) bool { return g.src.IntN(100) < p }

// price returns a price for side, mostly on its own half of the band so
// that the book fills up, sometimes across, sometimes invalid.
func (g *gen) price(cfg Config, side Side) int64 {
	switch {
	case g.pct(2):
		return [...]int64{0, -cfg.TickSize, cfg.MaxPrice + cfg.TickSize}[g.src.IntN(3)]
	case g.pct(2):
		return simMid + 1
	}
	off := int64(g.src.IntN(simBand+simCross+1)-simCross) * cfg.TickSize
	if side == Sell {
		return simMid + off
	}
	return simMid - off
}

func (g *gen) qty(cfg Config) int64 {
	switch {
	case g.pct(2):
		return cfg.LotSize * int64(g.src.IntN(2)) // 0 or one lot: below min
	case g.pct(2):
		return cfg.MaxQty + cfg.LotSize
	case g.pct(2):
		return cfg.MinQty + 1
	}
	return cfg.MinQty + cfg.LotSize*int64(g.src.IntN(int((cfg.MaxQty-cfg.MinQty)/cfg.LotSize)+1)/3)
}

func (g *gen) next(m *model) op {
	cfg := m.cfg
	var target *modelOrder
	if len(m.orders) > 0 {
		target = &m.orders[g.src.IntN(len(m.orders))]
	}
	r := g.src.IntN(100)
	switch {
	case m.cfg.BandBps != 0 && (r < 3 || (m.index == 0 && m.last == 0 && g.pct(5))):
		// An index near the middle, sometimes cleared or off the rules.
		p := simMid + int64(g.src.IntN(2*simBand+1)-simBand)*cfg.TickSize
		switch {
		case g.pct(15):
			p = 0
		case g.pct(5):
			p = simMid + 1
		}
		return op{kind: opIndex, order: Order{Price: p}}
	case r < 55 || target == nil:
		g.nextID++
		o := Order{ID: g.nextID, Owner: Owner(1 + g.src.IntN(simOwners)), Side: Side(1 + g.src.IntN(2))}
		o.Kind = [...]Kind{Limit, Limit, Limit, Limit, IOC, FOK, Market, PostOnly, PostOnly}[g.src.IntN(9)]
		o.Price, o.Qty = g.price(cfg, o.Side), g.qty(cfg)
		switch {
		case g.pct(2):
			o.Side = Side(g.src.IntN(2) * 3)
		case g.pct(2):
			o.Kind = Kind(g.src.IntN(2) * 6)
		case g.pct(3) && target != nil:
			o.ID = target.ID
		}
		return op{kind: opPlace, order: o}
	case r < 70:
		o := Order{ID: target.ID, Owner: target.Owner}
		switch {
		case g.pct(5):
			o.Owner++
		case g.pct(5):
			o.ID = g.nextID + 1
		}
		return op{kind: opCancel, order: o}
	default:
		o := target.Order
		switch g.src.IntN(4) {
		case 0: // reduce in place
			o.Qty -= cfg.LotSize * int64(g.src.IntN(int(o.Qty/cfg.LotSize)))
		case 1: // grow in place
			o.Qty += cfg.LotSize * int64(1+g.src.IntN(5))
		default:
			o.Price, o.Qty = g.price(cfg, o.Side), g.qty(cfg)
		}
		switch {
		case g.pct(3):
			o.Owner++
		case g.pct(3):
			o.ID = g.nextID + 1
		}
		return op{kind: opReplace, order: o}
	}
}

// account is one order id's quantity ledger: everything placed under the id
// was filled, cancelled or is resting.
type account struct {
	placed, filled, cancelled int64
}

// harness runs ops on a Book and on the model side by side and checks the
// book's invariants after every op.
type harness struct {
	cfg     Config
	book    *Book
	model   *model
	fills   []Fill
	acct    map[OrderID]*account
	log     []op
	journal hash.Hash64 // every op's outcome, for the replay check
	before  view
	after   view
	want    view
	// seen counts outcomes by name, to show what a stream exercised.
	seen map[string]int
}

func newHarness(cfg Config) *harness {
	return &harness{cfg: cfg, book: New(cfg, 0), model: newModel(cfg), acct: map[OrderID]*account{}, journal: fnv.New64a(), seen: map[string]int{}}
}

// sentinel is a fill the harness puts in front of the caller's slice, to
// see that the book appends and never overwrites.
var sentinel = Fill{Maker: 1<<64 - 1, Qty: -1}

// apply runs x on b and returns its outcome.
func apply(b *Book, x op, fills []Fill) ([]Fill, Result, Order, error) {
	var res Result
	var gone Order
	var err error
	switch x.kind {
	case opPlace:
		fills, res, err = b.Place(x.order, fills)
	case opCancel:
		gone, err = b.Cancel(x.order.ID, x.order.Owner)
	case opReplace:
		fills, res, err = b.Replace(x.order.ID, x.order.Owner, x.order.Price, x.order.Qty, fills)
	case opIndex:
		res.Expired, err = b.SetIndex(x.order.Price)
	}
	return fills, res, gone, err
}

// record writes an op's outcome into j.
func record(j hash.Hash64, fills []Fill, res Result, gone Order, err error) {
	var buf [64]byte
	b := buf[:0]
	code, _ := err.(Code)
	b = append(b, byte(code))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(fills)))
	for _, f := range fills {
		b = binary.LittleEndian.AppendUint64(b, uint64(f.Maker))
		b = binary.LittleEndian.AppendUint64(b, uint64(f.Taker))
		b = binary.LittleEndian.AppendUint64(b, uint64(f.MakerOwner))
		b = binary.LittleEndian.AppendUint64(b, uint64(f.Price))
		b = binary.LittleEndian.AppendUint64(b, uint64(f.Qty))
		b = append(b, byte(f.TakerSide), btob(f.MakerDone))
		j.Write(b)
		b = b[:0]
	}
	for _, v := range []int64{res.Filled, res.Resting, res.Cancelled, int64(len(res.Expired)), int64(gone.ID), gone.Qty} {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	j.Write(b)
	for _, e := range res.Expired {
		b = binary.LittleEndian.AppendUint64(b[:0], uint64(e.ID))
		b = binary.LittleEndian.AppendUint64(b, uint64(e.Qty))
		j.Write(b)
	}
}

func btob(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func (h *harness) account(id OrderID) *account {
	a := h.acct[id]
	if a == nil {
		a = &account{}
		h.acct[id] = a
	}
	return a
}

// step runs x and returns the first disagreement or broken invariant.
func (h *harness) step(x op) error {
	h.log = append(h.log, x)
	before := h.before.of(h.book)
	// The band as the op found it: every fill must be inside it.
	bandLo, bandHi := h.book.Band()

	fills, res, gone, err := apply(h.book, x, append(h.fills[:0], sentinel))
	h.fills = fills
	record(h.journal, fills, res, gone, err)
	if len(fills) == 0 || fills[0] != sentinel {
		return fmt.Errorf("fills prefix overwritten: %+v", fills)
	}
	fills = fills[1:]
	h.seen[fmt.Sprintf("%v %v", opNames[x.kind], err)]++
	if len(fills) > 0 {
		h.seen["trades"]++
	}
	if len(res.Expired) > 0 {
		h.seen[opNames[x.kind]+" expiries"]++
	}

	var wantFills []Fill
	var wantRes Result
	var wantGone Order
	var wantErr error
	switch x.kind {
	case opPlace:
		wantFills, wantRes, wantErr = h.model.place(x.order)
	case opCancel:
		wantGone, wantErr = h.model.cancel(x.order.ID, x.order.Owner)
	case opReplace:
		wantFills, wantRes, wantErr = h.model.replace(x.order.ID, x.order.Owner, x.order.Price, x.order.Qty)
	case opIndex:
		wantRes.Expired, wantErr = h.model.setIndex(x.order.Price)
	}
	if err != wantErr {
		return fmt.Errorf("error %v; want %v", err, wantErr)
	}
	if err != nil {
		var code Code
		if !errors.As(err, &code) {
			return fmt.Errorf("error %v is not a Code", err)
		}
		if len(fills) != 0 || res.Filled != 0 || res.Expired != nil {
			return fmt.Errorf("refused with fills %+v result %+v", fills, res)
		}
		if after := h.after.of(h.book); !after.equal(before) {
			return fmt.Errorf("refused op changed the book:\n%v\nto\n%v", before, after)
		}
	}
	if !slices.Equal(fills, wantFills) {
		return fmt.Errorf("fills %+v; want %+v", fills, wantFills)
	}
	if res.Filled != wantRes.Filled || res.Resting != wantRes.Resting || res.Cancelled != wantRes.Cancelled ||
		!slices.Equal(res.Expired, wantRes.Expired) || (res.Expired == nil) != (wantRes.Expired == nil) {
		return fmt.Errorf("result %+v; want %+v", res, wantRes)
	}
	if gone != wantGone {
		return fmt.Errorf("cancelled %+v; want %+v", gone, wantGone)
	}
	if got, want := h.after.of(h.book), h.model.view(&h.want); !got.equal(want) {
		return fmt.Errorf("book:\n%v\nmodel:\n%v", got, want)
	}
	if err := h.book.CheckInvariants(); err != nil {
		return fmt.Errorf("invariant: %v", err)
	}
	if bid, ask := h.book.Best(); bid != 0 && ask != 0 && bid >= ask {
		return fmt.Errorf("crossed: %d/%d", bid, ask)
	}
	if err != nil {
		return nil
	}
	if x.kind == opIndex {
		for _, e := range res.Expired {
			h.account(e.ID).cancelled += e.Qty
			if err := h.balanced(e.ID); err != nil {
				return err
			}
		}
		return nil
	}

	// Each fill: positive, at the resting maker's price, within the
	// taker's limit and the band, between two owners.
	o := x.order
	var taken int64
	for _, f := range fills {
		m, ok := before.find(f.Maker)
		switch {
		case f.Qty <= 0:
			return fmt.Errorf("fill %+v: qty not positive", f)
		case !ok:
			return fmt.Errorf("fill %+v: maker was not resting", f)
		case f.Price != m.Price || f.MakerOwner != m.Owner || m.Side == f.TakerSide:
			return fmt.Errorf("fill %+v: maker was %+v", f, m)
		case f.TakerSide == Buy && f.Price > o.Price, f.TakerSide == Sell && f.Price < o.Price:
			return fmt.Errorf("fill %+v: outside taker limit %d", f, o.Price)
		case f.MakerOwner == f.TakerOwner:
			return fmt.Errorf("fill %+v: self-trade", f)
		case h.cfg.BandBps != 0 && (bandHi == 0 || f.Price < bandLo || f.Price > bandHi):
			return fmt.Errorf("fill %+v: outside the band %d-%d", f, bandLo, bandHi)
		}
		taken += f.Qty
		h.account(f.Maker).filled += f.Qty
	}
	if taken != res.Filled {
		return fmt.Errorf("fills total %d, result filled %d", taken, res.Filled)
	}

	// Quantity ledger per order id.
	touched := []OrderID{o.ID}
	switch x.kind {
	case opCancel:
		h.account(o.ID).cancelled += gone.Qty
	case opPlace, opReplace:
		if res.Filled+res.Resting+res.Cancelled != o.Qty {
			return fmt.Errorf("result %+v does not add up to qty %d", res, o.Qty)
		}
		a := h.account(o.ID)
		if old, ok := before.find(o.ID); x.kind == opReplace && ok {
			a.cancelled += old.Qty
		}
		a.placed += o.Qty
		a.filled += res.Filled
		a.cancelled += res.Cancelled
	}
	for _, e := range res.Expired {
		if e.Owner != o.Owner {
			return fmt.Errorf("expired %+v of another owner", e)
		}
		h.account(e.ID).cancelled += e.Qty
		touched = append(touched, e.ID)
	}
	for _, f := range fills {
		touched = append(touched, f.Maker)
	}
	for _, id := range touched {
		if err := h.balanced(id); err != nil {
			return err
		}
	}
	return nil
}

// balanced checks id's ledger: placed = filled + cancelled + resting.
func (h *harness) balanced(id OrderID) error {
	a := h.account(id)
	r, _ := h.book.Resting(id)
	if a.placed != a.filled+a.cancelled+r.Qty {
		return fmt.Errorf("order %d: placed %d, filled %d + cancelled %d + resting %d", id, a.placed, a.filled, a.cancelled, r.Qty)
	}
	return nil
}

// finish checks every ledger, that replaying the log gives the same
// outcomes and book, and that a snapshot rebuilds the book.
func (h *harness) finish() error {
	var placed, settled int64
	for id, a := range h.acct {
		if err := h.balanced(id); err != nil {
			return err
		}
		placed += a.placed
		r, _ := h.book.Resting(id)
		settled += a.filled + a.cancelled + r.Qty
	}
	if placed != settled {
		return fmt.Errorf("placed %d, settled %d", placed, settled)
	}

	replay := New(h.cfg, 0)
	j := fnv.New64a()
	var fills []Fill
	for _, x := range h.log {
		var res Result
		var gone Order
		var err error
		fills, res, gone, err = apply(replay, x, append(fills[:0], sentinel))
		record(j, fills, res, gone, err)
	}
	if j.Sum64() != h.journal.Sum64() {
		return fmt.Errorf("replay of %d ops gave other outcomes", len(h.log))
	}
	want := dumpBook(h.book)
	if got := dumpBook(replay); got != want {
		return fmt.Errorf("replay book:\n%s\nwant:\n%s", got, want)
	}

	rebuilt := New(h.cfg, h.book.Len())
	if err := rebuilt.RestoreReference(h.book.Reference()); err != nil {
		return fmt.Errorf("rebuild: RestoreReference = %v", err)
	}
	for o := range h.book.Orders() {
		if err := rebuilt.Restore(o); err != nil {
			return fmt.Errorf("rebuild: Restore(%+v) = %v", o, err)
		}
	}
	if got := dumpBook(rebuilt); got != want {
		return fmt.Errorf("rebuilt book:\n%s\nwant:\n%s", got, want)
	}
	return rebuilt.CheckInvariants()
}

// simSeeds returns the seed in KINKO_SIM_SEED, or a fixed seed and a few
// new ones.
func simSeeds(t *testing.T) []uint64 {
	if v := os.Getenv("KINKO_SIM_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("KINKO_SIM_SEED=%q: %v", v, err)
		}
		return []uint64{seed}
	}
	seeds := []uint64{1}
	for range 3 {
		seeds = append(seeds, rand.Uint64())
	}
	return seeds
}

// TestSimulation runs seeded random streams of orders, cancels and
// replaces, valid and not, against Book and the model, checking every
// invariant after every op. A failure replays from its seed:
// KINKO_SIM_SEED=n go test -run TestSimulation ./internal/market/
func TestSimulation(t *testing.T) {
	steps := 20000
	if testing.Short() {
		steps = 2000
	}
	for _, seed := range simSeeds(t) {
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		// Alternate a roomy book with one that fills up, each without a
		// band and with two.
		for _, maxOrders := range []int{1000, 12} {
			for _, band := range simBands {
				t.Logf("seed %d, max orders %d, band %d bps", seed, maxOrders, band)
				cfg := simConfig(maxOrders)
				cfg.BandBps = band
				h := newHarness(cfg)
				g := &gen{src: rng}
				for i := range steps {
					x := g.next(h.model)
					if err := h.step(x); err != nil {
						t.Fatalf("seed %d, max orders %d, band %d, step %d (%v): %v", seed, maxOrders, band, i, x, err)
					}
				}
				if err := h.finish(); err != nil {
					t.Fatalf("seed %d, max orders %d, band %d: %v", seed, maxOrders, band, err)
				}
				if band != 0 && (h.seen["trades"] == 0 || h.seen["place price outside the price band"] == 0) {
					t.Fatalf("seed %d, band %d: the stream does not exercise the band: %v", seed, band, h.seen)
				}
				if seed == 1 {
					t.Logf("outcomes: %v", h.seen)
				}
			}
		}
	}
}

// fuzzMaxSteps bounds the ops one fuzz input drives.
const fuzzMaxSteps = 2000

// FuzzBook decodes the input into a stream of ops and checks Book against
// the model and its invariants after every op, as TestSimulation does.
func FuzzBook(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("0123456789abcdefghijklmnopqrstuvwxyz"))
	seed := make([]byte, 512)
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range seed {
		seed[i] = byte(rng.Uint32())
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &bytesSource{data: data}
		maxOrders := 8 + src.IntN(32)
		cfg := simConfig(maxOrders)
		cfg.BandBps = simBands[src.IntN(len(simBands))]
		h := newHarness(cfg)
		g := &gen{src: src}
		for i := 0; i < fuzzMaxSteps && !src.done; i++ {
			x := g.next(h.model)
			if err := h.step(x); err != nil {
				t.Fatalf("step %d (%v): %v", i, x, err)
			}
		}
		if err := h.finish(); err != nil {
			t.Fatal(err)
		}
	})
}
