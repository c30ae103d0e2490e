package market

import "iter"

// nilRef marks the end of a list in the order pool.
const nilRef int32 = -1

// levelsHint is the number of price levels each side reserves room for up
// front, unless the market has fewer prices.
const levelsHint = 1024

// Book is the limit order book of one market.
//
// Resting orders live in pool, a slice of nodes addressed by int32, and
// price levels likewise in levels; free nodes and levels each form a list.
// A level is a FIFO list of its orders, linked through the nodes' prev and
// next, oldest at head, and each node knows its level (and by it its
// price), so taking an order out finds no level by search. Each side orders its levels in two parallel
// slices from the worst price to the best: keys, the prices as numbers that
// grow toward the best (the price for bids, its negation for asks), dense
// for binary search, and refs, the levels. The levels that trade most sit
// at the end, where matching removes them without moving the rest. Each
// side also maps prices to levels in a hash table (at), so the binary
// search is needed only to add or drop a level. ids maps each resting
// order's id to its node.
//
// INVARIANT: a level is on its side's slices if and only if it holds an
// order; its qty and count are the sums over its list; keys strictly grow
// and each node's side and level are those of the level whose list it is
// on.
// INVARIANT: ids holds exactly the resting orders, live counts them, and
// every pool node is either resting (qty > 0) or on the free list (qty 0);
// every level is either on a side or on the free level list.
// INVARIANT: lo and hi are the band around the reference (index, else
// last) when the config has a band and there is a reference, both 0
// otherwise; with a band, no ask rests below lo and no bid above hi.
type Book struct {
	cfg       Config
	sides     [2]sideBook // sides[Buy-1] holds bids, sides[Sell-1] asks
	pool      []node
	free      int32
	live      int
	levels    []level
	freeLevel int32
	ids       index
	// reentry is set while Replace enters an order again whose id is
	// still in ids: rest then updates its entry and clears it.
	reentry bool
	expired []Order
	// last is the price of the last fill (0: none); index is the
	// operator's index price (0: none); lo and hi are the price band.
	last, index int64
	lo, hi      int64
}

// node is one resting order, or a free pool slot when qty is 0. Its price
// is its level's.
type node struct {
	id         OrderID
	owner      Owner
	qty        int64
	prev, next int32
	level      int32
	side       Side
	kind       Kind
}

// order returns node ref as an Order.
func (b *Book) order(ref int32) Order {
	n := &b.pool[ref]
	return Order{ID: n.id, Owner: n.owner, Side: n.side, Kind: n.kind, Price: b.levels[n.level].price, Qty: n.qty}
}

// level is one price of one side: a FIFO list of orders, oldest at head. A
// free level links the next free one through tail.
type level struct {
	price      int64
	qty        int64
	head, tail int32
	count      int32
}

// sideBook is one side's levels, worst price first and best last: keys
// holds each level's price as key returns it, refs the level. at finds a
// level by its price without a search.
type sideBook struct {
	side Side
	keys []int64
	refs []int32
	at   index
}

// key maps a price of the side to a number that grows toward the best
// price.
func (s *sideBook) key(price int64) int64 {
	if s.side == Buy {
		return price
	}
	return -price
}

// New returns an empty book for cfg with room reserved for capacityHint
// resting orders. It panics if cfg does not pass Validate: a market's rules
// are checked when the market is listed.
func New(cfg Config, capacityHint int) *Book {
	if err := cfg.Validate(); err != nil {
		panic("market: New: " + err.Error())
	}
	capacityHint = max(0, min(capacityHint, cfg.MaxOrders))
	nLevels := int(min(cfg.MaxPrice/cfg.TickSize, levelsHint))
	b := &Book{
		cfg:       cfg,
		pool:      make([]node, 0, capacityHint),
		free:      nilRef,
		levels:    make([]level, 0, 2*nLevels),
		freeLevel: nilRef,
		ids:       newIndex(capacityHint),
	}
	for _, side := range []Side{Buy, Sell} {
		b.sides[side-1] = sideBook{side: side, keys: make([]int64, 0, nLevels), refs: make([]int32, 0, nLevels), at: newIndex(nLevels)}
	}
	return b
}

// Config returns the book's rules.
func (b *Book) Config() Config { return b.cfg }

// Len returns the number of resting orders.
func (b *Book) Len() int { return b.live }

// Place matches o against the book, appends its fills to fills, and rests or
// cancels what is left according to o.Kind. On error nothing changes and
// fills is returned as given. Refusal codes are listed, in the order they
// are checked, with Code.
// A Market order enters with its protection price clamped to the band.
func (b *Book) Place(o Order, fills []Fill) ([]Fill, Result, error) {
	if err := b.admit(&o); err != nil {
		return fills, Result{}, err
	}
	return b.enter(&o, fills)
}

// Cancel removes a resting order of owner and returns it as it stood, Qty
// being what was still open.
func (b *Book) Cancel(id OrderID, owner Owner) (Order, error) {
	ref, ok := b.ids.get(uint64(id))
	if !ok {
		return Order{}, ErrUnknownOrder
	}
	n := &b.pool[ref]
	if n.owner != owner {
		return Order{}, ErrNotOwner
	}
	o := b.order(ref)
	b.remove(ref)
	return o, nil
}

// Replace sets the price and open quantity of owner's resting order id,
// appending any fills to fills. If price is unchanged and qty is not above
// the open quantity, the order keeps its place in the queue; otherwise it is
// cancelled and entered again, same id, owner, side and kind, as a new order
// of qty at price, and the Result is that order's: its new price must be
// within the band (ErrOutsideBand), and may not trade with no reference
// (ErrNoReference). A PostOnly order whose new price would trade is refused
// with ErrWouldCross. On error nothing changes.
func (b *Book) Replace(id OrderID, owner Owner, price, qty int64, fills []Fill) ([]Fill, Result, error) {
	ref, ok := b.ids.get(uint64(id))
	if !ok {
		return fills, Result{}, ErrUnknownOrder
	}
	n := &b.pool[ref]
	if n.owner != owner {
		return fills, Result{}, ErrNotOwner
	}
	if err := b.cfg.checkPrice(price); err != nil {
		return fills, Result{}, err
	}
	if err := b.cfg.checkQty(qty); err != nil {
		return fills, Result{}, err
	}
	b.expired = b.expired[:0]
	lv := &b.levels[n.level]
	if price == lv.price && qty <= n.qty {
		lv.qty -= n.qty - qty
		n.qty = qty
		return fills, Result{Resting: qty}, nil
	}
	o := Order{ID: n.id, Owner: n.owner, Side: n.side, Kind: n.kind, Price: price, Qty: qty}
	if b.cfg.BandBps != 0 && b.outside(&o) {
		if err := b.inBand(&o); err != nil {
			return fills, Result{}, err
		}
	}
	if n.kind == PostOnly && b.crosses(n.side, price) {
		return fills, Result{}, ErrWouldCross
	}
	// The order leaves its place but keeps its entry in the id index,
	// which rest points at its new node (or which is dropped if it does
	// not rest again): a move costs no delete and insert of the id.
	b.reentry = true
	b.removeNode(ref)
	fills, res, err := b.enter(&o, fills)
	if b.reentry {
		b.reentry = false
		b.ids.del(uint64(o.ID))
	}
	return fills, res, err
}

// Restore puts o, a resting order from a snapshot (see Orders), at the back
// of its price's queue without matching it. Its Qty is its open quantity,
// which may be below MinQty after partial fills. Restore refuses, changing
// nothing, an order that could not be resting: ErrSide; ErrKind unless
// Limit or PostOnly; ErrPrice or ErrOffTick; ErrBelowMin for a Qty not
// positive, ErrAboveMax, ErrOffLot; ErrDuplicateID; ErrWouldCross if it
// would cross the other side; ErrOutsideBand if it stands beyond the band
// where it would fill outside it (restore the reference first, with
// RestoreReference); ErrBookFull.
func (b *Book) Restore(o Order) error {
	switch {
	case o.Side != Buy && o.Side != Sell:
		return ErrSide
	case !o.Kind.rests():
		return ErrKind
	}
	if err := b.cfg.checkPrice(o.Price); err != nil {
		return err
	}
	switch {
	case o.Qty <= 0:
		return ErrBelowMin
	case o.Qty > b.cfg.MaxQty:
		return ErrAboveMax
	case o.Qty%b.cfg.LotSize != 0:
		return ErrOffLot
	}
	if _, ok := b.ids.get(uint64(o.ID)); ok {
		return ErrDuplicateID
	}
	if b.crosses(o.Side, o.Price) {
		return ErrWouldCross
	}
	if b.beyond(o.Side, o.Price) {
		return ErrOutsideBand
	}
	if b.live >= b.cfg.MaxOrders {
		return ErrBookFull
	}
	b.rest(&o, o.Qty)
	return nil
}

// admit returns the error that refuses o, or nil.
func (b *Book) admit(o *Order) error {
	if o.Side != Buy && o.Side != Sell {
		return ErrSide
	}
	if o.Kind < Limit || o.Kind > PostOnly {
		return ErrKind
	}
	if err := b.cfg.checkPrice(o.Price); err != nil {
		return err
	}
	if err := b.cfg.checkQty(o.Qty); err != nil {
		return err
	}
	if _, ok := b.ids.get(uint64(o.ID)); ok {
		return ErrDuplicateID
	}
	if b.cfg.BandBps != 0 && b.outside(o) {
		if err := b.inBand(o); err != nil {
			return err
		}
	}
	switch o.Kind {
	case PostOnly:
		if b.crosses(o.Side, o.Price) {
			return ErrWouldCross
		}
		if b.live >= b.cfg.MaxOrders {
			return ErrBookFull
		}
	case Market:
		if b.available(o, 1) == 0 {
			return ErrNoLiquidity
		}
	case FOK:
		if b.available(o, o.Qty) < o.Qty {
			return ErrFOKUnfilled
		}
	case Limit:
		if b.live >= b.cfg.MaxOrders && b.available(o, o.Qty) < o.Qty {
			return ErrBookFull
		}
	}
	return nil
}

// outside tells whether o needs inBand's look: no reference, a Market
// order, or a price beyond the band. An order inside the band, the common
// case, costs two comparisons.
func (b *Book) outside(o *Order) bool {
	return o.Kind == Market || uint64(o.Price-b.lo) > uint64(b.hi-b.lo)
}

// inBand applies the band to o, which must be of a valid side: it clamps
// a Market order's protection price to the band and refuses any other
// order priced outside it; with no reference it refuses what would trade.
func (b *Book) inBand(o *Order) error {
	if b.hi == 0 { // no reference yet
		switch o.Kind {
		case Market, IOC, FOK:
			return ErrNoReference
		case Limit:
			if b.crosses(o.Side, o.Price) {
				return ErrNoReference
			}
		}
		return nil
	}
	if o.Kind == Market {
		o.Price = b.clamp(o.Side, o.Price)
		return nil
	}
	if o.Price < b.lo || o.Price > b.hi {
		return ErrOutsideBand
	}
	return nil
}

// clamp returns a protection price of side held inside the band.
func (b *Book) clamp(side Side, price int64) int64 {
	if side == Buy {
		return min(price, b.hi)
	}
	return max(price, b.lo)
}

// beyond reports whether an order of side at price would stand beyond the
// band on the side where a fill with it would be outside the band: a bid
// above the ceiling, an ask below the floor.
func (b *Book) beyond(side Side, price int64) bool {
	if b.hi == 0 {
		return false
	}
	if side == Buy {
		return price > b.hi
	}
	return price < b.lo
}

// CheckBand answers what the band makes of an order of side and kind at
// price, without placing it: the price it would enter at (a Market order's
// protection price clamped to the band) or the refusal (ErrOutsideBand,
// ErrNoReference) Place would give for the band. Other checks are Place's:
// an invalid side or kind passes here unchanged. The caller uses it to size
// a hold and to refuse before anything is held.
func (b *Book) CheckBand(side Side, kind Kind, price int64) (int64, error) {
	// Inside the band, the common case, is one unsigned comparison; with
	// no reference lo = hi = 0 and every positive price goes the long way.
	if kind == Market || uint64(price-b.lo) > uint64(b.hi-b.lo) {
		return b.checkBand(side, kind, price)
	}
	return price, nil
}

func (b *Book) checkBand(side Side, kind Kind, price int64) (int64, error) {
	if b.cfg.BandBps == 0 || (side != Buy && side != Sell) || kind < Limit || kind > PostOnly {
		return price, nil
	}
	o := Order{Side: side, Kind: kind, Price: price}
	err := b.inBand(&o)
	return o.Price, err
}

// enter matches an admitted order and rests or cancels its remainder.
func (b *Book) enter(o *Order, fills []Fill) ([]Fill, Result, error) {
	b.expired = b.expired[:0]
	left := o.Qty
	if b.crosses(o.Side, o.Price) { // most orders do not: no call
		fills, left = b.match(o, fills)
	}
	res := Result{Filled: o.Qty - left}
	if res.Filled > 0 {
		b.last = fills[len(fills)-1].Price
		if b.cfg.BandBps != 0 && b.index == 0 {
			b.reband()
		}
	}
	if left > 0 {
		if o.Kind.rests() && !b.beyond(o.Side, o.Price) {
			b.rest(o, left)
			res.Resting = left
		} else {
			res.Cancelled = left
		}
	}
	if len(b.expired) > 0 {
		res.Expired = b.expired
	}
	return fills, res, nil
}

// best returns side's best level, or nil.
func (b *Book) best(s *sideBook) *level {
	if len(s.refs) == 0 {
		return nil
	}
	return &b.levels[s.refs[len(s.refs)-1]]
}

// crosses reports whether a price on side would trade with the other side's
// best.
func (b *Book) crosses(side Side, price int64) bool {
	top := b.best(&b.sides[side.Opposite()-1])
	return top != nil && reaches(side, price, top.price)
}

// reaches reports whether a taker on side with limit price trades with a
// maker at makerPrice.
func reaches(side Side, price, makerPrice int64) bool {
	if side == Buy {
		return makerPrice <= price
	}
	return makerPrice >= price
}

// available returns how much of o other owners' orders within o's price
// would fill, counting until it reaches need.
func (b *Book) available(o *Order, need int64) int64 {
	opp := &b.sides[o.Side.Opposite()-1]
	var sum int64
	for i := len(opp.refs) - 1; i >= 0; i-- {
		lv := &b.levels[opp.refs[i]]
		if !reaches(o.Side, o.Price, lv.price) {
			break
		}
		for ref := lv.head; ref != nilRef; ref = b.pool[ref].next {
			if n := &b.pool[ref]; n.owner != o.Owner {
				if sum += n.qty; sum >= need {
					return sum
				}
			}
		}
	}
	return sum
}

// match trades o against the other side, best level first and oldest order
// first, cancelling o's owner's orders it meets, and returns the quantity
// left.
func (b *Book) match(o *Order, fills []Fill) ([]Fill, int64) {
	opp := &b.sides[o.Side.Opposite()-1]
	left := o.Qty
	for left > 0 && len(opp.refs) > 0 {
		top := len(opp.refs) - 1
		lref := opp.refs[top]
		lv := &b.levels[lref]
		if !reaches(o.Side, o.Price, lv.price) {
			break
		}
		for left > 0 && lv.head != nilRef {
			ref := lv.head
			m := &b.pool[ref]
			if m.owner == o.Owner {
				b.expired = append(b.expired, b.order(ref))
				b.unlink(lv, ref)
				continue
			}
			q := min(left, m.qty)
			left -= q
			m.qty -= q
			lv.qty -= q
			fills = append(fills, Fill{
				Maker: m.id, Taker: o.ID,
				MakerOwner: m.owner, TakerOwner: o.Owner,
				TakerSide: o.Side,
				Price:     lv.price, Qty: q,
				MakerDone: m.qty == 0,
			})
			if m.qty == 0 {
				b.unlink(lv, ref)
			}
		}
		if lv.head == nilRef {
			opp.keys = opp.keys[:top]
			opp.refs = opp.refs[:top]
			opp.at.del(uint64(lv.price))
			b.releaseLevel(lref)
		}
	}
	return fills, left
}

// rest puts qty of o at the back of its price's queue.
func (b *Book) rest(o *Order, qty int64) {
	s := &b.sides[o.Side-1]
	lref, ok := s.at.get(uint64(o.Price))
	if !ok {
		key := s.key(o.Price)
		i := s.search(key)
		lref = b.allocLevel(o.Price)
		s.keys = append(s.keys, 0)
		copy(s.keys[i+1:], s.keys[i:])
		s.keys[i] = key
		s.refs = append(s.refs, 0)
		copy(s.refs[i+1:], s.refs[i:])
		s.refs[i] = lref
		s.at.put(uint64(o.Price), lref)
	}
	ref := b.alloc()
	lv := &b.levels[lref]
	b.pool[ref] = node{id: o.ID, owner: o.Owner, qty: qty, prev: lv.tail, next: nilRef, level: lref, side: o.Side, kind: o.Kind}
	if lv.tail != nilRef {
		b.pool[lv.tail].next = ref
	} else {
		lv.head = ref
	}
	lv.tail = ref
	lv.qty += qty
	lv.count++
	if b.reentry {
		b.reentry = false
		b.ids.set(uint64(o.ID), ref)
	} else {
		b.ids.put(uint64(o.ID), ref)
	}
	b.live++
}

// remove takes a resting order off the book, dropping its level if empty.
func (b *Book) remove(ref int32) {
	b.ids.del(uint64(b.pool[ref].id))
	b.removeNode(ref)
}

// removeNode is remove leaving the order's id in the index.
func (b *Book) removeNode(ref int32) {
	n := &b.pool[ref]
	lref := n.level
	lv := &b.levels[lref]
	s := &b.sides[n.side-1]
	price := lv.price
	b.unlinkNode(lv, ref)
	if lv.count == 0 {
		i := s.search(s.key(price))
		s.keys = append(s.keys[:i], s.keys[i+1:]...)
		s.refs = append(s.refs[:i], s.refs[i+1:]...)
		s.at.del(uint64(price))
		b.releaseLevel(lref)
	}
}

// unlink takes node ref out of lv's list, the id index and the book, and
// frees it. It leaves lv on its side even when empty.
func (b *Book) unlink(lv *level, ref int32) {
	b.ids.del(uint64(b.pool[ref].id))
	b.unlinkNode(lv, ref)
}

// unlinkNode is unlink leaving the order's id in the index.
func (b *Book) unlinkNode(lv *level, ref int32) {
	n := &b.pool[ref]
	if n.prev != nilRef {
		b.pool[n.prev].next = n.next
	} else {
		lv.head = n.next
	}
	if n.next != nilRef {
		b.pool[n.next].prev = n.prev
	} else {
		lv.tail = n.prev
	}
	lv.qty -= n.qty
	lv.count--
	b.live--
	*n = node{next: b.free}
	b.free = ref
}

// alloc returns a free pool node, growing the pool if none is free.
func (b *Book) alloc() int32 {
	if ref := b.free; ref != nilRef {
		b.free = b.pool[ref].next
		return ref
	}
	b.pool = append(b.pool, node{})
	return int32(len(b.pool) - 1)
}

// allocLevel returns an empty level at price, growing the level pool if
// none is free.
func (b *Book) allocLevel(price int64) int32 {
	lref := b.freeLevel
	if lref != nilRef {
		b.freeLevel = b.levels[lref].tail
	} else {
		b.levels = append(b.levels, level{})
		lref = int32(len(b.levels) - 1)
	}
	b.levels[lref] = level{price: price, head: nilRef, tail: nilRef}
	return lref
}

// releaseLevel puts an empty level on the free list.
func (b *Book) releaseLevel(lref int32) {
	b.levels[lref] = level{head: nilRef, tail: b.freeLevel}
	b.freeLevel = lref
}

// search returns the index of the first level whose key is at least key:
// where the level for key is, or would be inserted. It is a branch-free
// lower bound (Khuong and Morin): the prices searched are spread across the
// band, and a branch on each step would be mispredicted half the time.
func (s *sideBook) search(key int64) int {
	a := s.keys
	n := len(a)
	if n == 0 {
		return 0
	}
	base := 0
	for n > 1 {
		half := n >> 1
		base += half * btoi(a[base+half] < key)
		n -= half
	}
	return base + btoi(a[base] < key)
}

// btoi is 1 for true and 0 for false; the compiler makes it a conditional
// move.
func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// side returns side's levels, and panics on an invalid side: queries take a
// Side from the program, not from customers.
func (b *Book) side(side Side) *sideBook {
	if side != Buy && side != Sell {
		panic("market: invalid side " + side.String())
	}
	return &b.sides[side-1]
}

// reband sets the band around the reference: the index if set, else the
// last fill's price; none without a band or a reference.
func (b *Book) reband() {
	ref := b.index
	if ref == 0 {
		ref = b.last
	}
	if b.cfg.BandBps == 0 || ref == 0 {
		b.lo, b.hi = 0, 0
		return
	}
	b.lo, b.hi = b.cfg.bandOf(ref)
}

// SetIndex sets the book's index price, the band's reference while it is
// set; 0 clears it, and the band follows the last fill again. The resting
// orders the new band leaves beyond its edge where they would fill outside
// it (asks below the floor, then bids above the ceiling, each side best
// price first and oldest first) are cancelled and returned as they stood;
// the slice shares the Book's buffer like Result.Expired. A price off the
// rules (ErrPrice, ErrOffTick) changes nothing.
func (b *Book) SetIndex(price int64) ([]Order, error) {
	if price != 0 {
		if err := b.cfg.checkPrice(price); err != nil {
			return nil, err
		}
	}
	b.index = price
	b.reband()
	b.expired = b.expired[:0]
	if b.hi == 0 {
		return nil, nil
	}
	asks, bids := &b.sides[Sell-1], &b.sides[Buy-1]
	for lv := b.best(asks); lv != nil && lv.price < b.lo; lv = b.best(asks) {
		b.sweepTop(asks)
	}
	for lv := b.best(bids); lv != nil && lv.price > b.hi; lv = b.best(bids) {
		b.sweepTop(bids)
	}
	if len(b.expired) == 0 {
		return nil, nil
	}
	return b.expired, nil
}

// sweepTop cancels every order of side s's best level into b.expired and
// drops the level.
func (b *Book) sweepTop(s *sideBook) {
	top := len(s.refs) - 1
	lref := s.refs[top]
	lv := &b.levels[lref]
	for lv.head != nilRef {
		ref := lv.head
		b.expired = append(b.expired, b.order(ref))
		b.unlink(lv, ref)
	}
	s.keys = s.keys[:top]
	s.refs = s.refs[:top]
	s.at.del(uint64(lv.price))
	b.releaseLevel(lref)
}

// Reference returns the price of the last fill and the index price, 0 for
// none: with the resting orders, what a snapshot keeps.
func (b *Book) Reference() (last, index int64) { return b.last, b.index }

// RestoreReference puts back, into an empty book, the last fill's price
// and the index that Reference returned. A price off the rules is refused
// (ErrPrice, ErrOffTick), and so is a book that holds orders (ErrConfig).
func (b *Book) RestoreReference(last, index int64) error {
	if b.live != 0 {
		return ErrConfig
	}
	for _, p := range []int64{last, index} {
		if p != 0 {
			if err := b.cfg.checkPrice(p); err != nil {
				return err
			}
		}
	}
	b.last, b.index = last, index
	b.reband()
	return nil
}

// Band returns the price band, lo and hi inclusive; 0, 0 when the book has
// no band (BandBps 0) or no reference yet.
func (b *Book) Band() (lo, hi int64) { return b.lo, b.hi }

// Best returns the best bid and best ask; 0 (never a valid price) stands for
// an empty side.
func (b *Book) Best() (bid, ask int64) {
	if lv := b.best(&b.sides[Buy-1]); lv != nil {
		bid = lv.price
	}
	if lv := b.best(&b.sides[Sell-1]); lv != nil {
		ask = lv.price
	}
	return bid, ask
}

// Depth appends up to levels price levels of side to dst, best first.
func (b *Book) Depth(side Side, levels int, dst []Level) []Level {
	refs := b.side(side).refs
	for i := len(refs) - 1; i >= 0 && levels > 0; i-- {
		lv := &b.levels[refs[i]]
		dst = append(dst, Level{Price: lv.price, Qty: lv.qty, Orders: int(lv.count)})
		levels--
	}
	return dst
}

// Resting returns the resting order id, Qty being its open quantity.
func (b *Book) Resting(id OrderID) (Order, bool) {
	ref, ok := b.ids.get(uint64(id))
	if !ok {
		return Order{}, false
	}
	return b.order(ref), true
}

// Orders yields every resting order, Qty being its open quantity: bids
// from the best price to the worst, then asks likewise, each price oldest
// first. Restoring them in this order into an empty book with the same
// Config rebuilds the book with the same priorities, which makes this a
// snapshot. The book must not change during the iteration.
func (b *Book) Orders() iter.Seq[Order] {
	return func(yield func(Order) bool) {
		for si := range b.sides {
			refs := b.sides[si].refs
			for i := len(refs) - 1; i >= 0; i-- {
				for ref := b.levels[refs[i]].head; ref != nilRef; ref = b.pool[ref].next {
					if !yield(b.order(ref)) {
						return
					}
				}
			}
		}
	}
}
