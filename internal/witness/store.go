package witness

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// Retention of the heads a witness signed. Every size of the newest
// DenseHeads has its head, so a journal rewritten there is named to the
// entry; older heads are kept only at multiples of SparseEvery, so a
// rewrite further back is bounded to SparseEvery entries. A head is never
// signed twice for one size (the mirror's tree at a size never changes),
// so "the newest per size" is the only one. The store holds at most
// DenseHeads + size/SparseEvery heads, about 200 bytes each: 13 MB plus
// 0.2 MB per million entries.
const (
	DenseHeads  = 65_536
	SparseEvery = 1_024
)

// Keep tells whether the head of size stays when the newest is newest.
func Keep(size, newest uint64) bool {
	return size+DenseHeads > newest || size%SparseEvery == 0
}

// ErrNoHead reports a witness that has signed no head yet.
var ErrNoHead = errors.New("witness: no head signed yet")

// store keeps a witness's signed heads durably, in a Pebble DB of its own
// in the role's state directory:
//
//	'h' size(8, big-endian) -> the signed head (a C2SP signed note)
//
// Each head is written, synced, before it is served; retention (Keep) is
// applied in the same batch as the newest heads.
type store struct {
	mu         sync.Mutex
	db         *pebble.DB
	sync       *pebble.WriteOptions
	newest     uint64
	newestNote []byte
}

func headKey(size uint64) []byte { return binary.BigEndian.AppendUint64([]byte{'h'}, size) }

type quiet struct{}

func (quiet) Infof(string, ...interface{})  {}
func (quiet) Errorf(string, ...interface{}) {}
func (quiet) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf(format, args...))
}

func openStore(dir string, noSync bool) (*store, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quiet{}})
	if err != nil {
		return nil, fmt.Errorf("witness: heads: %w", err)
	}
	s := &store{db: db, sync: pebble.Sync}
	if noSync {
		s.sync = pebble.NoSync
	}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{'h'}, UpperBound: []byte{'i'}})
	if err != nil {
		db.Close()
		return nil, err
	}
	if it.Last() {
		k := it.Key()
		if len(k) != 9 {
			it.Close()
			db.Close()
			return nil, fmt.Errorf("witness: heads: malformed key %x", k)
		}
		s.newest = binary.BigEndian.Uint64(k[1:])
		s.newestNote = append([]byte(nil), it.Value()...)
	}
	if err := it.Close(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// signedHead is one head to store.
type signedHead struct {
	size uint64
	note []byte
}

// put stores heads (in increasing size, each after the newest) durably
// and drops the heads retention no longer keeps.
func (s *store) put(hs []signedHead) error {
	if len(hs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	last := s.newest
	for _, h := range hs {
		if h.size <= last {
			return fmt.Errorf("witness: head of %d after the head of %d", h.size, last)
		}
		last = h.size
		if err := b.Set(headKey(h.size), h.note, nil); err != nil {
			return err
		}
	}
	// The sizes that leave the dense window with this batch.
	lo, hi := uint64(1), uint64(0)
	if s.newest >= DenseHeads {
		lo = s.newest - DenseHeads + 1
	}
	if last >= DenseHeads {
		hi = last - DenseHeads + 1 // exclusive
	}
	if hi > lo {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: headKey(lo), UpperBound: headKey(hi)})
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			if size := binary.BigEndian.Uint64(it.Key()[1:]); !Keep(size, last) {
				b.Delete(it.Key(), nil)
			}
		}
		if err := it.Close(); err != nil {
			return err
		}
		for _, h := range hs {
			if !Keep(h.size, last) {
				b.Delete(headKey(h.size), nil)
			}
		}
	}
	if err := b.Commit(s.sync); err != nil {
		return fmt.Errorf("witness: heads: %w", err)
	}
	s.newest, s.newestNote = last, hs[len(hs)-1].note
	return nil
}

// newestHead returns the newest head and its size.
func (s *store) newestHead() ([]byte, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newestNote, s.newest
}

// from returns up to limit heads of sizes from on, in order, and the size
// to ask from next (0 when there are no more).
func (s *store) from(from uint64, limit int) ([][]byte, uint64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: headKey(from), UpperBound: []byte{'i'}})
	if err != nil {
		return nil, 0, err
	}
	defer it.Close()
	var out [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		if len(out) == limit {
			return out, binary.BigEndian.Uint64(it.Key()[1:]), nil
		}
		out = append(out, append([]byte(nil), it.Value()...))
	}
	return out, 0, it.Error()
}

// count returns how many heads are kept (for tests and status).
func (s *store) count() (int, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{'h'}, UpperBound: []byte{'i'}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n, it.Error()
}

func (s *store) close() error { return s.db.Close() }
