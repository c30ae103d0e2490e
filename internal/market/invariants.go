package market

import "fmt"

// CheckInvariants walks the whole book and returns an error naming the first
// broken invariant, or nil. It costs time linear in the book's size: tests
// call it after every operation; the core may call it in builds with
// invariant checks on. A non-nil result is a bug in this package.
func (b *Book) CheckInvariants() error {
	c := &b.cfg
	seen, levels := 0, 0
	for si := range b.sides {
		s := &b.sides[si]
		if s.side != Side(si+1) {
			return fmt.Errorf("side %d holds %v", si, s.side)
		}
		if len(s.keys) != len(s.refs) || s.at.n != len(s.refs) {
			return fmt.Errorf("%v: %d keys, %d levels, %d prices", s.side, len(s.keys), len(s.refs), s.at.n)
		}
		for i, lref := range s.refs {
			if lref < 0 || int(lref) >= len(b.levels) {
				return fmt.Errorf("%v: level %d out of the pool", s.side, lref)
			}
			lv := &b.levels[lref]
			if s.keys[i] != s.key(lv.price) {
				return fmt.Errorf("%v level %d under key %d", s.side, lv.price, s.keys[i])
			}
			if i > 0 && s.keys[i-1] >= s.keys[i] {
				return fmt.Errorf("%v levels out of order: %d before %d", s.side, s.keys[i-1], s.keys[i])
			}
			if err := c.checkPrice(lv.price); err != nil {
				return fmt.Errorf("%v level %d: %v", s.side, lv.price, err)
			}
			if lv.head == nilRef || lv.count == 0 {
				return fmt.Errorf("%v level %d is empty", s.side, lv.price)
			}
			if got, ok := s.at.get(uint64(lv.price)); !ok || got != lref {
				return fmt.Errorf("%v level %d: price table has %d (%v), want %d", s.side, lv.price, got, ok, lref)
			}
			if levels++; levels > len(b.levels) {
				return fmt.Errorf("a level is on the sides twice")
			}
			var qty int64
			var count int32
			prev := nilRef
			for ref := lv.head; ref != nilRef; ref = b.pool[ref].next {
				if ref < 0 || int(ref) >= len(b.pool) {
					return fmt.Errorf("%v level %d: node %d out of the pool", s.side, lv.price, ref)
				}
				n := &b.pool[ref]
				if n.prev != prev {
					return fmt.Errorf("order %d: prev %d, want %d", n.id, n.prev, prev)
				}
				if n.side != s.side || n.level != lref {
					return fmt.Errorf("order %d (%v, level %d) on %v level %d (%d)", n.id, n.side, n.level, s.side, lv.price, lref)
				}
				if n.qty <= 0 || n.qty > c.MaxQty || n.qty%c.LotSize != 0 {
					return fmt.Errorf("order %d rests with qty %d", n.id, n.qty)
				}
				if !n.kind.rests() {
					return fmt.Errorf("order %d of kind %v rests", n.id, n.kind)
				}
				if got, ok := b.ids.get(uint64(n.id)); !ok || got != ref {
					return fmt.Errorf("order %d: index has node %d (%v), want %d", n.id, got, ok, ref)
				}
				qty += n.qty
				count++
				seen++
				if seen > len(b.pool) {
					return fmt.Errorf("%v level %d: list has a cycle", s.side, lv.price)
				}
				prev = ref
			}
			if lv.tail != prev {
				return fmt.Errorf("%v level %d: tail %d, want %d", s.side, lv.price, lv.tail, prev)
			}
			if lv.qty != qty || lv.count != count {
				return fmt.Errorf("%v level %d: total %d in %d orders, lists hold %d in %d", s.side, lv.price, lv.qty, lv.count, qty, count)
			}
		}
	}
	if bid, ask := b.Best(); bid != 0 && ask != 0 && bid >= ask {
		return fmt.Errorf("book crossed: bid %d, ask %d", bid, ask)
	}
	for _, p := range []int64{b.last, b.index} {
		if p != 0 {
			if err := c.checkPrice(p); err != nil {
				return fmt.Errorf("reference price %d: %v", p, err)
			}
		}
	}
	var lo, hi int64
	if ref := b.index; c.BandBps != 0 {
		if ref == 0 {
			ref = b.last
		}
		if ref != 0 {
			lo, hi = c.bandOf(ref)
		}
	}
	if b.lo != lo || b.hi != hi {
		return fmt.Errorf("band %d-%d; last %d and index %d give %d-%d", b.lo, b.hi, b.last, b.index, lo, hi)
	}
	if bid, ask := b.Best(); hi != 0 && (bid > hi || (ask != 0 && ask < lo)) {
		return fmt.Errorf("orders beyond the band %d-%d: bid %d, ask %d", lo, hi, bid, ask)
	}
	if seen != b.live || b.ids.n != b.live {
		return fmt.Errorf("%d orders on the levels, live %d, index %d", seen, b.live, b.ids.n)
	}
	if b.live > c.MaxOrders {
		return fmt.Errorf("%d orders rest, max %d", b.live, c.MaxOrders)
	}
	free := 0
	for ref := b.free; ref != nilRef; ref = b.pool[ref].next {
		if b.pool[ref].qty != 0 {
			return fmt.Errorf("free node %d holds qty %d", ref, b.pool[ref].qty)
		}
		if free++; free > len(b.pool) {
			return fmt.Errorf("free list has a cycle")
		}
	}
	if free+b.live != len(b.pool) {
		return fmt.Errorf("%d free and %d live nodes in a pool of %d", free, b.live, len(b.pool))
	}
	freeLevels := 0
	for lref := b.freeLevel; lref != nilRef; lref = b.levels[lref].tail {
		if lv := &b.levels[lref]; lv.count != 0 || lv.head != nilRef {
			return fmt.Errorf("free level %d holds orders", lref)
		}
		if freeLevels++; freeLevels > len(b.levels) {
			return fmt.Errorf("free level list has a cycle")
		}
	}
	if freeLevels+levels != len(b.levels) {
		return fmt.Errorf("%d free and %d used levels in a pool of %d", freeLevels, levels, len(b.levels))
	}
	used := 0
	for _, s := range b.ids.slots {
		if s.ref != 0 {
			used++
		}
	}
	if used != b.ids.n || 2*used > len(b.ids.slots) {
		return fmt.Errorf("index holds %d ids, counts %d, in %d slots", used, b.ids.n, len(b.ids.slots))
	}
	return nil
}
