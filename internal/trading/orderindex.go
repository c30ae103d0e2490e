package trading

import (
	"math/bits"

	"kinko/internal/market"
)

// orderIndex finds an open order's record by its id: an open-addressing
// hash table of the records' pointers, with linear probing and
// backward-shift deletion (no tombstones: a table of steady size never
// grows or rehashes). A slot is the pointer alone, eight bytes; a look-up
// compares the id in the record, which its caller reads next anyway. At
// most half full, it costs 16 to 32 bytes an open order.
//
// INVARIANT: len(slots) is a power of two at least orderIndexMin, n is
// the number of full slots and at most len(slots)/2, and every record
// sits in the run of full slots that starts at its id's home slot.
type orderIndex struct {
	slots []*Order
	shift uint // 64 - log2(len(slots))
	n     int
}

const orderIndexMin = 16

func newOrderIndex(hint int) orderIndex {
	size := orderIndexMin
	for size/2 < hint {
		size *= 2
	}
	return orderIndex{slots: make([]*Order, size), shift: uint(64 - bits.TrailingZeros(uint(size)))}
}

// home is the first slot probed for id: Fibonacci hashing, which spreads
// sequential ids evenly.
func (x *orderIndex) home(id market.OrderID) uint64 {
	return (uint64(id) * 0x9e3779b97f4a7c15) >> x.shift
}

// slot returns the slot holding id's record, or -1.
func (x *orderIndex) slot(id market.OrderID) int {
	mask := uint64(len(x.slots) - 1)
	for i := x.home(id); ; i = (i + 1) & mask {
		o := x.slots[i]
		if o == nil {
			return -1
		}
		if o.ID == id {
			return int(i)
		}
	}
}

func (x *orderIndex) get(id market.OrderID) (*Order, bool) {
	if i := x.slot(id); i >= 0 {
		return x.slots[i], true
	}
	return nil, false
}

// put adds o, or replaces the record of its id.
func (x *orderIndex) put(o *Order) {
	if i := x.slot(o.ID); i >= 0 {
		x.slots[i] = o
		return
	}
	if 2*(x.n+1) > len(x.slots) {
		old := x.slots
		*x = newOrderIndex(x.n + 1)
		for _, p := range old {
			if p != nil {
				x.insert(p)
			}
		}
	}
	x.insert(o)
}

func (x *orderIndex) insert(o *Order) {
	mask := uint64(len(x.slots) - 1)
	i := x.home(o.ID)
	for x.slots[i] != nil {
		i = (i + 1) & mask
	}
	x.slots[i] = o
	x.n++
}

// del removes id's record if it is there. Each later record of the run
// moves back into the hole when the hole lies on its probe path.
func (x *orderIndex) del(id market.OrderID) {
	i := x.slot(id)
	if i < 0 {
		return
	}
	mask := uint64(len(x.slots) - 1)
	hole := uint64(i)
	for j := (hole + 1) & mask; x.slots[j] != nil; j = (j + 1) & mask {
		k := x.home(x.slots[j].ID)
		if (j-k)&mask >= (j-hole)&mask {
			x.slots[hole] = x.slots[j]
			hole = j
		}
	}
	x.slots[hole] = nil
	x.n--
}

// len returns the number of records.
func (x *orderIndex) len() int { return x.n }

// each calls fn for every record, in slot order.
func (x *orderIndex) each(fn func(*Order)) {
	for _, o := range x.slots {
		if o != nil {
			fn(o)
		}
	}
}

// check checks the invariant.
func (x *orderIndex) check() bool {
	n := 0
	for _, o := range x.slots {
		if o != nil {
			n++
			if i := x.slot(o.ID); i < 0 || x.slots[i] != o {
				return false
			}
		}
	}
	return n == x.n && 2*x.n <= len(x.slots) && len(x.slots) >= orderIndexMin && len(x.slots)&(len(x.slots)-1) == 0
}
