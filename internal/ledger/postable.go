package ledger

// posTable is an open-addressing hash table from a key to a position in an
// array the caller owns. A slot is eight bytes: 32 bits of the key's hash
// and the position plus one. The key itself is not stored: the caller
// compares it at the position, which it reads anyway. So a lookup touches one
// small slot, then the record, and the table costs at most 16 bytes per key.
//
// INVARIANT: at most half the slots are full; a zero slot is empty; every
// key sits in the probe run starting at its hash's home slot.
type posTable struct {
	slots []uint64
	mask  uint64
	n     int
}

const posTableMin = 1 << 10

func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
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
	x.n = 0
}

// find returns the position whose key eq accepts, among those with hash h.
func (x *posTable) find(h uint64, eq func(p uint32) bool) (uint32, bool) {
	if x.n == 0 {
		return 0, false
	}
	tag := h >> 32
	for i := h & x.mask; ; i = (i + 1) & x.mask {
		s := x.slots[i]
		if s == 0 {
			return 0, false
		}
		if s>>32 == tag && eq(uint32(s)-1) {
			return uint32(s) - 1, true
		}
	}
}

// add adds position p under hash h; the key must not be present. hashAt
// returns the hash of the key at a position, for growing.
func (x *posTable) add(h uint64, p uint32, hashAt func(p uint32) uint64) {
	if 2*(x.n+1) > len(x.slots) {
		x.resize(2*(x.n+1), hashAt)
	}
	x.place(h, p)
	x.n++
}

func (x *posTable) place(h uint64, p uint32) {
	for i := h & x.mask; ; i = (i + 1) & x.mask {
		if x.slots[i] == 0 {
			x.slots[i] = h>>32<<32 | uint64(p+1)
			return
		}
	}
}

// resize rebuilds the table with room for n keys.
func (x *posTable) resize(n int, hashAt func(p uint32) uint64) {
	old, count := x.slots, x.n
	x.init(max(n, count))
	for _, s := range old {
		if s != 0 {
			x.place(hashAt(uint32(s)-1), uint32(s)-1)
		}
	}
	x.n = count
}

// remove takes out position p stored under hash h, shifting the rest of its
// probe run back so that no lookup stops early.
func (x *posTable) remove(h uint64, p uint32, hashAt func(p uint32) uint64) {
	i := h & x.mask
	for x.slots[i] != uint64(h>>32<<32|uint64(p+1)) {
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
			home := hashAt(uint32(s)-1) & x.mask
			// Move s back to i if its home is not within (i, j].
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				x.slots[i] = s
				i = j
				break
			}
		}
	}
}
