package ledger

import "math/bits"

// posTable is an open-addressing hash table from a key to a position in an
// array the caller owns. A slot is eight bytes: the top 32 bits of the key's
// hash and the position plus one. The key itself is not stored: the caller
// compares it at the position, which it reads anyway. So a lookup touches one
// small slot, then the record, and the table costs at most 16 bytes per key.
// A key's home slot comes from the top bits of its hash, which the slot
// keeps, so growing and deleting never read the records.
//
// INVARIANT: at most half the slots are full; a zero slot is empty; every
// key sits in the probe run starting at its home slot. At most 2^32 slots.
type posTable struct {
	slots []uint64
	mask  uint64
	shift uint // 32 - log2(len(slots))
	n     int
}

const posTableMin = 1 << 10

func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func (x *posTable) init(n int) {
	size := posTableMin
	for size < 2*n {
		size <<= 1
	}
	x.slots = make([]uint64, size)
	x.mask = uint64(size - 1)
	x.shift = uint(32 - bits.TrailingZeros(uint(size)))
	x.n = 0
}

// home returns the home slot of a slot value or hash (top 32 bits used).
func (x *posTable) home(v uint64) uint64 { return (v >> 32) >> x.shift }

// find returns the position whose key eq accepts, among those with hash h.
func (x *posTable) find(h uint64, eq func(p uint32) bool) (uint32, bool) {
	if x.n == 0 {
		return 0, false
	}
	tag := h >> 32
	for i := x.home(h); ; i = (i + 1) & x.mask {
		s := x.slots[i]
		if s == 0 {
			return 0, false
		}
		if s>>32 == tag && eq(uint32(s)-1) {
			return uint32(s) - 1, true
		}
	}
}

// add adds position p under hash h; the key must not be present.
func (x *posTable) add(h uint64, p uint32) {
	if 2*(x.n+1) > len(x.slots) {
		x.resize(2 * (x.n + 1))
	}
	x.place(h>>32<<32 | uint64(p+1))
	x.n++
}

func (x *posTable) place(s uint64) {
	for i := x.home(s); ; i = (i + 1) & x.mask {
		if x.slots[i] == 0 {
			x.slots[i] = s
			return
		}
	}
}

// resize rebuilds the table with room for n keys.
func (x *posTable) resize(n int) {
	old, count := x.slots, x.n
	x.init(max(n, count))
	for _, s := range old {
		if s != 0 {
			x.place(s)
		}
	}
	x.n = count
}

// remove takes out position p stored under hash h, shifting the rest of its
// probe run back so that no lookup stops early.
func (x *posTable) remove(h uint64, p uint32) {
	want := h>>32<<32 | uint64(p+1)
	i := x.home(h)
	for x.slots[i] != want {
		if x.slots[i] == 0 {
			return
		}
		i = (i + 1) & x.mask
	}
	for {
		x.slots[i] = 0
		j := i
		for {
			j = (j + 1) & x.mask
			s := x.slots[j]
			if s == 0 {
				x.n--
				return
			}
			home := x.home(s)
			// Move s back to i if its home is not within (i, j].
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				x.slots[i] = s
				i = j
				break
			}
		}
	}
}

// ownerTable is an open-addressing hash table from a customer id to its
// position in the customers array, with four-byte slots (the position plus
// one) and no hash tag: a look-up compares the id at the position. At most
// half full, it costs 8 to 16 bytes a customer.
//
// INVARIANT: at most half the slots are full; a zero slot is empty; every
// key sits in the probe run starting at its home slot.
type ownerTable struct {
	slots []uint32
	mask  uint64
	shift uint // 64 - log2(len(slots))
	n     int
}

func (x *ownerTable) init(n int) {
	size := posTableMin
	for size < 2*n {
		size <<= 1
	}
	x.slots = make([]uint32, size)
	x.mask = uint64(size - 1)
	x.shift = uint(64 - bits.TrailingZeros(uint(size)))
	x.n = 0
}

func (x *ownerTable) home(h uint64) uint64 { return h >> x.shift }

// find returns the position of id among owners.
func (x *ownerTable) find(id OwnerID, owners []OwnerID) (uint32, bool) {
	if x.n == 0 {
		return 0, false
	}
	for i := x.home(hashOwner(id)); ; i = (i + 1) & x.mask {
		s := x.slots[i]
		if s == 0 {
			return 0, false
		}
		if owners[s-1] == id {
			return s - 1, true
		}
	}
}

// add adds position p of owners, whose id must not be present.
func (x *ownerTable) add(p uint32, owners []OwnerID) {
	if 2*(x.n+1) > len(x.slots) {
		old, count := x.slots, x.n
		x.init(2 * (x.n + 1))
		for _, s := range old {
			if s != 0 {
				x.place(s, owners)
			}
		}
		x.n = count
	}
	x.place(p+1, owners)
	x.n++
}

func (x *ownerTable) place(s uint32, owners []OwnerID) {
	for i := x.home(hashOwner(owners[s-1])); ; i = (i + 1) & x.mask {
		if x.slots[i] == 0 {
			x.slots[i] = s
			return
		}
	}
}
