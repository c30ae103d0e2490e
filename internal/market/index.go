package market

// index maps keys (order ids, prices) to pool slots: an open-addressing
// hash table with linear probing and backward-shift deletion, so deletes
// leave no tombstones and a table of steady size never grows or allocates.
//
// INVARIANT: len(slots) is a power of two at least 16, n <= len(slots)/2,
// and every key sits in the run of full slots that starts at its home slot.
type index struct {
	slots []slot
	shift uint // 64 - log2(len(slots))
	n     int
}

// slot holds one key; ref is the pool slot plus one, and 0 marks it empty.
type slot struct {
	key uint64
	ref int32
}

const indexMinSlots = 16

func newIndex(hint int) index {
	size := indexMinSlots
	for size/2 < hint {
		size *= 2
	}
	return makeIndex(size)
}

func makeIndex(size int) index {
	shift := uint(64)
	for s := size; s > 1; s >>= 1 {
		shift--
	}
	return index{slots: make([]slot, size), shift: shift}
}

// home is the first slot probed for key: Fibonacci hashing, which spreads
// sequential ids and prices on a tick evenly.
func (x *index) home(key uint64) uint64 {
	return (key * 0x9e3779b97f4a7c15) >> x.shift
}

// find returns the table slot holding key, or -1.
func (x *index) find(key uint64) int {
	mask := uint64(len(x.slots) - 1)
	for i := x.home(key); ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.ref == 0 {
			return -1
		}
		if s.key == key {
			return int(i)
		}
	}
}

// get returns key's pool slot.
func (x *index) get(key uint64) (int32, bool) {
	i := x.find(key)
	if i < 0 {
		return 0, false
	}
	return x.slots[i].ref - 1, true
}

// put adds key, which must be absent, at pool slot ref.
func (x *index) put(key uint64, ref int32) {
	if 2*(x.n+1) > len(x.slots) {
		x.grow()
	}
	x.insert(key, ref+1)
	x.n++
}

func (x *index) insert(key uint64, ref int32) {
	mask := uint64(len(x.slots) - 1)
	i := x.home(key)
	for x.slots[i].ref != 0 {
		i = (i + 1) & mask
	}
	x.slots[i] = slot{key: key, ref: ref}
}

func (x *index) grow() {
	old, n := x.slots, x.n
	*x = makeIndex(2 * len(old))
	x.n = n
	for _, s := range old {
		if s.ref != 0 {
			x.insert(s.key, s.ref)
		}
	}
}

// set points key, which must be present, at pool slot ref.
func (x *index) set(key uint64, ref int32) {
	i := x.find(key)
	if i < 0 {
		panic("market: index: setting an absent key")
	}
	x.slots[i].ref = ref + 1
}

// del removes key, which must be present. Each later entry of the run
// moves back into the hole when the hole lies on its probe path.
func (x *index) del(key uint64) {
	i := x.find(key)
	if i < 0 {
		panic("market: index: deleting an absent key")
	}
	mask := uint64(len(x.slots) - 1)
	hole := uint64(i)
	for j := (hole + 1) & mask; x.slots[j].ref != 0; j = (j + 1) & mask {
		k := x.home(x.slots[j].key)
		if (j-k)&mask >= (j-hole)&mask {
			x.slots[hole] = x.slots[j]
			hole = j
		}
	}
	x.slots[hole] = slot{}
	x.n--
}
