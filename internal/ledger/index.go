package ledger

// transferIndex finds a transfer's position by id. Ids that arrive in
// ascending order (time-based ids such as ULIDs, which TigerBeetle also
// recommends) are appended to a sorted array: no hashing, no random memory
// access, and a new id above the largest is known to be new without a
// lookup. Ids that arrive out of order go to a hash map. The two never hold
// the same id.
//
// INVARIANT: asc is strictly ascending and its last id is the largest id in
// the index; len(asc)+len(other) is the number of transfers.
type transferIndex struct {
	asc    chunked[ID]
	ascPos chunked[uint32]
	other  map[ID]uint32
}

func newTransferIndex() transferIndex {
	return transferIndex{other: make(map[ID]uint32)}
}

func (a ID) less(b ID) bool { return a.Hi < b.Hi || (a.Hi == b.Hi && a.Lo < b.Lo) }

func (x *transferIndex) len() int { return x.asc.len() + len(x.other) }

// get returns the position of id.
func (x *transferIndex) get(id ID) (uint32, bool) {
	n := x.asc.len()
	if n == 0 || x.asc.at(n-1).less(id) {
		// Above every id in the index: new. Out-of-order ids are all
		// below the largest, so the map need not be asked.
		return 0, false
	}
	if len(x.other) > 0 {
		if p, ok := x.other[id]; ok {
			return p, true
		}
	}
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if x.asc.at(m).less(id) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < n && *x.asc.at(lo) == id {
		return *x.ascPos.at(lo), true
	}
	return 0, false
}

// put adds id, which must not be in the index, at position pos.
func (x *transferIndex) put(id ID, pos uint32) {
	if n := x.asc.len(); n == 0 || x.asc.at(n-1).less(id) {
		x.asc.append(id)
		x.ascPos.append(pos)
		return
	}
	x.other[id] = pos
}

// remove takes out id, which must be the newest id put: rollback removes
// newest first.
func (x *transferIndex) remove(id ID) {
	if n := x.asc.len(); n > 0 && *x.asc.at(n-1) == id {
		x.asc.truncate(n - 1)
		x.ascPos.truncate(n - 1)
		return
	}
	delete(x.other, id)
}

// reserve allocates room for n ids in all.
func (x *transferIndex) reserve(n int) {
	x.asc.reserve(n)
	x.ascPos.reserve(n)
}
