package ledger

// transferIndex finds a transfer's position by id. Ids that arrive in
// ascending order (time-based ids such as ULIDs, which TigerBeetle also
// recommends) are appended to a sorted array: no hashing, no random memory
// access, and a new id above the largest is known to be new without a
// lookup. Ids that arrive out of order go to a hash table. The two never
// hold the same id.
//
// INVARIANT: asc is strictly ascending and its last id is the largest id in
// the index; asc.len()+other.n is the number of transfers.
type transferIndex struct {
	asc    chunked[ID]
	ascPos chunked[uint32]
	other  posTable
}

func (a ID) less(b ID) bool { return a.Hi < b.Hi || (a.Hi == b.Hi && a.Lo < b.Lo) }

func (x *transferIndex) len() int { return x.asc.len() + x.other.n }

// reserve allocates room for n ids in the ascending arrays.
func (x *transferIndex) reserve(n int) {
	x.asc.reserve(n)
	x.ascPos.reserve(n)
}

// transferIndex returns the position of the transfer with id.
func (l *Ledger) transferIndex(id ID) (uint32, bool) {
	x := &l.transferIdx
	n := x.asc.len()
	if n == 0 || x.asc.at(n-1).less(id) {
		// Above every id in the index: new. Out-of-order ids are all
		// below the largest, so the table need not be asked.
		return 0, false
	}
	if p, ok := x.other.find(hashID(id), func(p uint32) bool { return l.transfers.at(int(p)).ID == id }); ok {
		return p, true
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

// addTransferIndex indexes the transfer at position p, whose id must not be
// in the index.
func (l *Ledger) addTransferIndex(p uint32) { l.indexTransfer(p, l.transfers.at(int(p)).ID) }

// indexTransfer is addTransferIndex given the transfer's id.
func (l *Ledger) indexTransfer(p uint32, id ID) {
	x := &l.transferIdx
	if n := x.asc.len(); n == 0 || x.asc.at(n-1).less(id) {
		*x.asc.extend() = id
		*x.ascPos.extend() = p
		return
	}
	x.other.add(hashID(id), p)
}

// removeTransferIndex takes out the transfer at position p, which must be
// the newest indexed: rollback removes newest first.
func (l *Ledger) removeTransferIndex(p uint32) {
	x := &l.transferIdx
	id := l.transfers.at(int(p)).ID
	if n := x.asc.len(); n > 0 && *x.asc.at(n - 1) == id {
		x.asc.truncate(n - 1)
		x.ascPos.truncate(n - 1)
		return
	}
	x.other.remove(hashID(id), p)
}
