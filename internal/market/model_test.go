package market

import (
	"fmt"
	"slices"
	"strings"
)

// model is a slow order book that is correct by inspection: a flat list of
// resting orders with arrival numbers, searched and sorted in full for every
// decision. The property and fuzz tests check that Book agrees with it on
// every error, fill, result and resting order.
type model struct {
	cfg    Config
	orders []modelOrder
	seq    uint64
	// last is the last fill's price, index the index price (0: none).
	last, index int64
}

// band returns the price band, and whether there is one with a
// reference: ok with lo = hi = 0 means no band at all.
func (m *model) band() (lo, hi int64, ok bool) {
	if m.cfg.BandBps == 0 {
		return 0, 0, true
	}
	ref := m.index
	if ref == 0 {
		ref = m.last
	}
	if ref == 0 {
		return 0, 0, false
	}
	off := ref * int64(m.cfg.BandBps) / 10_000
	tick := m.cfg.TickSize
	lo = (ref - off + tick - 1) / tick * tick
	if lo < tick {
		lo = tick
	}
	hi = (ref + off) / tick * tick
	if hi > m.cfg.MaxPrice {
		hi = m.cfg.MaxPrice
	}
	return lo, hi, true
}

// checkBand is the band's refusal of an order of kind at price on side,
// and the price it enters at.
func (m *model) checkBand(side Side, kind Kind, price int64) (int64, error) {
	lo, hi, ok := m.band()
	switch {
	case !ok:
		if kind == Market || kind == IOC || kind == FOK || (kind == Limit && len(m.makers(side, price)) > 0) {
			return price, ErrNoReference
		}
	case hi == 0:
	case kind == Market && side == Buy:
		return min(price, hi), nil
	case kind == Market:
		return max(price, lo), nil
	case price < lo || price > hi:
		return price, ErrOutsideBand
	}
	return price, nil
}

// beyond reports whether a resting order of side at price would stand
// where a fill would be outside the band.
func (m *model) beyond(side Side, price int64) bool {
	lo, hi, ok := m.band()
	if !ok || hi == 0 {
		return false
	}
	return (side == Buy && price > hi) || (side == Sell && price < lo)
}

// setIndex sets the index and cancels, asks first then bids, best first,
// what the band leaves beyond its edge.
func (m *model) setIndex(price int64) ([]Order, error) {
	if price != 0 {
		if err := m.validPrice(price); err != nil {
			return nil, err
		}
	}
	m.index = price
	var gone []Order
	for _, side := range []Side{Sell, Buy} {
		var idx []int
		for i, r := range m.orders {
			if r.Side == side && m.beyond(side, r.Price) {
				idx = append(idx, i)
			}
		}
		slices.SortFunc(idx, func(a, b int) int {
			if ahead(m.orders[a], m.orders[b]) {
				return -1
			}
			return 1
		})
		for _, i := range idx {
			gone = append(gone, m.orders[i].Order)
		}
	}
	m.orders = slices.DeleteFunc(m.orders, func(r modelOrder) bool {
		return slices.ContainsFunc(gone, func(g Order) bool { return g.ID == r.ID })
	})
	return gone, nil
}

type modelOrder struct {
	Order
	seq uint64
}

func newModel(cfg Config) *model { return &model{cfg: cfg} }

func (m *model) find(id OrderID) int {
	return slices.IndexFunc(m.orders, func(o modelOrder) bool { return o.ID == id })
}

// ahead reports whether resting order a comes before b on their side: a
// better price, or the same price and earlier arrival.
func ahead(a, b modelOrder) bool {
	if a.Price != b.Price {
		if a.Side == Buy {
			return a.Price > b.Price
		}
		return a.Price < b.Price
	}
	return a.seq < b.seq
}

// makers returns the indexes of the orders o would meet, in the order it
// meets them.
func (m *model) makers(side Side, price int64) []int {
	var idx []int
	for i, r := range m.orders {
		if r.Side == side {
			continue
		}
		if (side == Buy && r.Price <= price) || (side == Sell && r.Price >= price) {
			idx = append(idx, i)
		}
	}
	slices.SortFunc(idx, func(a, b int) int {
		if ahead(m.orders[a], m.orders[b]) {
			return -1
		}
		return 1
	})
	return idx
}

func (m *model) validPrice(p int64) error {
	if p <= 0 || p > m.cfg.MaxPrice {
		return ErrPrice
	}
	if p%m.cfg.TickSize != 0 {
		return ErrOffTick
	}
	return nil
}

func (m *model) validQty(q int64) error {
	if q < m.cfg.MinQty {
		return ErrBelowMin
	}
	if q > m.cfg.MaxQty {
		return ErrAboveMax
	}
	if q%m.cfg.LotSize != 0 {
		return ErrOffLot
	}
	return nil
}

func (m *model) place(o Order) ([]Fill, Result, error) {
	if o.Side != Buy && o.Side != Sell {
		return nil, Result{}, ErrSide
	}
	if o.Kind < Limit || o.Kind > PostOnly {
		return nil, Result{}, ErrKind
	}
	if err := m.validPrice(o.Price); err != nil {
		return nil, Result{}, err
	}
	if err := m.validQty(o.Qty); err != nil {
		return nil, Result{}, err
	}
	if m.find(o.ID) >= 0 {
		return nil, Result{}, ErrDuplicateID
	}
	var err error
	if o.Price, err = m.checkBand(o.Side, o.Kind, o.Price); err != nil {
		return nil, Result{}, err
	}
	met := m.makers(o.Side, o.Price)
	var others int64
	for _, i := range met {
		if m.orders[i].Owner != o.Owner {
			others += m.orders[i].Qty
		}
	}
	full := len(m.orders) >= m.cfg.MaxOrders
	switch o.Kind {
	case PostOnly:
		if len(met) > 0 {
			return nil, Result{}, ErrWouldCross
		}
		if full {
			return nil, Result{}, ErrBookFull
		}
	case Market:
		if others == 0 {
			return nil, Result{}, ErrNoLiquidity
		}
	case FOK:
		if others < o.Qty {
			return nil, Result{}, ErrFOKUnfilled
		}
	case Limit:
		if full && others < o.Qty {
			return nil, Result{}, ErrBookFull
		}
	}
	return m.enter(o)
}

func (m *model) enter(o Order) ([]Fill, Result, error) {
	var fills []Fill
	var res Result
	left := o.Qty
	gone := map[OrderID]bool{}
	for _, i := range m.makers(o.Side, o.Price) {
		if left == 0 {
			break
		}
		r := &m.orders[i]
		if r.Owner == o.Owner {
			res.Expired = append(res.Expired, r.Order)
			gone[r.ID] = true
			continue
		}
		q := min(left, r.Qty)
		left -= q
		r.Qty -= q
		fills = append(fills, Fill{Maker: r.ID, Taker: o.ID, MakerOwner: r.Owner, TakerOwner: o.Owner,
			TakerSide: o.Side, Price: r.Price, Qty: q, MakerDone: r.Qty == 0})
		if r.Qty == 0 {
			gone[r.ID] = true
		}
	}
	m.orders = slices.DeleteFunc(m.orders, func(r modelOrder) bool { return gone[r.ID] })
	res.Filled = o.Qty - left
	if len(fills) > 0 {
		m.last = fills[len(fills)-1].Price
	}
	if left > 0 {
		if (o.Kind == Limit || o.Kind == PostOnly) && !m.beyond(o.Side, o.Price) {
			m.seq++
			r := o
			r.Qty = left
			m.orders = append(m.orders, modelOrder{Order: r, seq: m.seq})
			res.Resting = left
		} else {
			res.Cancelled = left
		}
	}
	return fills, res, nil
}

func (m *model) cancel(id OrderID, owner Owner) (Order, error) {
	i := m.find(id)
	if i < 0 {
		return Order{}, ErrUnknownOrder
	}
	if m.orders[i].Owner != owner {
		return Order{}, ErrNotOwner
	}
	o := m.orders[i].Order
	m.orders = slices.Delete(m.orders, i, i+1)
	return o, nil
}

func (m *model) replace(id OrderID, owner Owner, price, qty int64) ([]Fill, Result, error) {
	i := m.find(id)
	if i < 0 {
		return nil, Result{}, ErrUnknownOrder
	}
	r := &m.orders[i]
	if r.Owner != owner {
		return nil, Result{}, ErrNotOwner
	}
	if err := m.validPrice(price); err != nil {
		return nil, Result{}, err
	}
	if err := m.validQty(qty); err != nil {
		return nil, Result{}, err
	}
	if price == r.Price && qty <= r.Qty {
		r.Qty = qty
		return nil, Result{Resting: qty}, nil
	}
	if _, err := m.checkBand(r.Side, r.Kind, price); err != nil {
		return nil, Result{}, err
	}
	if r.Kind == PostOnly && len(m.makers(r.Side, price)) > 0 {
		return nil, Result{}, ErrWouldCross
	}
	o := r.Order
	o.Price, o.Qty = price, qty
	m.orders = slices.Delete(m.orders, i, i+1)
	return m.enter(o)
}

// view is everything observable about a book, to compare two books.
type view struct {
	len      int
	bid, ask int64
	// lo, hi, last and index are the band and its references.
	lo, hi, last, index int64
	depth               [2][]Level // bids, asks; best first
	orders              []Order    // as Orders yields them
}

// of sets v to b's state, reusing v's slices.
func (v *view) of(b *Book) *view {
	v.len = b.Len()
	v.bid, v.ask = b.Best()
	v.lo, v.hi = b.Band()
	v.last, v.index = b.Reference()
	v.depth[0] = b.Depth(Buy, 1<<30, v.depth[0][:0])
	v.depth[1] = b.Depth(Sell, 1<<30, v.depth[1][:0])
	v.orders = v.orders[:0]
	for o := range b.Orders() {
		v.orders = append(v.orders, o)
	}
	return v
}

func (v *view) equal(w *view) bool {
	return v.len == w.len && v.bid == w.bid && v.ask == w.ask && v.lo == w.lo && v.hi == w.hi && v.last == w.last && v.index == w.index &&
		slices.Equal(v.depth[0], w.depth[0]) && slices.Equal(v.depth[1], w.depth[1]) &&
		slices.Equal(v.orders, w.orders)
}

func (v *view) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "len %d best %d/%d band %d-%d last %d index %d\n", v.len, v.bid, v.ask, v.lo, v.hi, v.last, v.index)
	for i, side := range []Side{Buy, Sell} {
		for _, l := range v.depth[i] {
			fmt.Fprintf(&sb, "%v %d x %d (%d)\n", side, l.Price, l.Qty, l.Orders)
		}
	}
	for _, o := range v.orders {
		fmt.Fprintf(&sb, "%+v\n", o)
	}
	return sb.String()
}

// find returns the order id in v.
func (v *view) find(id OrderID) (Order, bool) {
	for _, o := range v.orders {
		if o.ID == id {
			return o, true
		}
	}
	return Order{}, false
}

// view sets v to the model's state in Book's order.
func (m *model) view(v *view) *view {
	sorted := slices.Clone(m.orders)
	slices.SortFunc(sorted, func(a, b modelOrder) int {
		if a.Side != b.Side {
			return int(a.Side) - int(b.Side)
		}
		if ahead(a, b) {
			return -1
		}
		return 1
	})
	*v = view{len: len(sorted), depth: [2][]Level{v.depth[0][:0], v.depth[1][:0]}, orders: v.orders[:0], last: m.last, index: m.index}
	if lo, hi, ok := m.band(); ok {
		v.lo, v.hi = lo, hi
	}
	for _, r := range sorted {
		if r.Side == Buy && v.bid == 0 {
			v.bid = r.Price
		}
		if r.Side == Sell && v.ask == 0 {
			v.ask = r.Price
		}
		d := v.depth[r.Side-1]
		if len(d) == 0 || d[len(d)-1].Price != r.Price {
			d = append(d, Level{Price: r.Price})
		}
		d[len(d)-1].Qty += r.Qty
		d[len(d)-1].Orders++
		v.depth[r.Side-1] = d
		v.orders = append(v.orders, r.Order)
	}
	return v
}

// dumpBook renders everything observable about b.
func dumpBook(b *Book) string {
	var v view
	return v.of(b).String()
}
