package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"kinko/internal/journal/tree"
)

// The journal's Merkle tree (package tree): leaf i is entry i+1, its leaf
// data the entry's hash, so leaf hash = SHA-256(0x00 || entry hash). Full
// tiles are stored under tilePrefix in the journal's own Pebble DB, written
// in the batch of the entry that completes them.

func tileKey(level int, index uint64) []byte {
	k := make([]byte, 10)
	k[0] = tilePrefix
	k[1] = byte(level)
	binary.BigEndian.PutUint64(k[2:], index)
	return k
}

// tileStore reads the tree's tiles from Pebble.
type tileStore struct{ db *pebble.DB }

func (s tileStore) ReadTile(level int, index uint64, dst []tree.Hash) ([]tree.Hash, error) {
	v, closer, err := s.db.Get(tileKey(level, index))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("%w: %d/%d", tree.ErrNoTile, level, index)
	}
	if err != nil {
		return nil, fmt.Errorf("journal: read tile %d/%d: %w", level, index, err)
	}
	defer closer.Close()
	return tree.DecodeTile(v, dst)
}

// treeError turns the tree's mismatch into a *BadEntryError naming the
// first entry the bad part covers.
func treeError(err error) error {
	var mm *tree.MismatchError
	if errors.As(err, &mm) {
		return &BadEntryError{Seq: mm.Leaf + 1, Reason: "does not match the journal's Merkle tree: " + mm.Reason}
	}
	return err
}

// treeCheck checks scanned entries against the tree on its own goroutine,
// in chunks, so that the check's hashing runs beside the scan's (and the
// core's apply).
type treeCheck struct {
	c      *tree.Checker
	chunk  []Hash
	in     chan []Hash
	free   chan []Hash
	done   chan error
	failed atomic.Bool
}

// Sizes of the check's chunks of entry hashes, and how many there are.
const (
	checkChunk   = 4096
	checkBuffers = 3
)

func (j *Journal) startTreeCheck() *treeCheck {
	tc := &treeCheck{c: j.tree.NewChecker(), in: make(chan []Hash, checkBuffers), free: make(chan []Hash, checkBuffers), done: make(chan error, 1)}
	for i := 0; i < checkBuffers; i++ {
		tc.free <- make([]Hash, 0, checkChunk)
	}
	tc.chunk = <-tc.free
	// The goroutine exits when finish closes in.
	go tc.run()
	return tc
}

func (tc *treeCheck) run() {
	var err error
	for chunk := range tc.in {
		for i := 0; err == nil && i < len(chunk); i++ {
			if _, e := tc.c.Add(tree.LeafHash(chunk[i][:])); e != nil {
				err = treeError(e)
				tc.failed.Store(true)
			}
		}
		tc.free <- chunk[:0]
	}
	tc.done <- err
}

// add queues an entry's hash for the check. It reports false once the
// check has failed, for the scan to stop.
func (tc *treeCheck) add(h Hash) bool {
	tc.chunk = append(tc.chunk, h)
	if len(tc.chunk) == checkChunk {
		tc.in <- tc.chunk
		tc.chunk = <-tc.free
	}
	return !tc.failed.Load()
}

// finish checks what is queued and returns the first mismatch, if any.
func (tc *treeCheck) finish() error {
	if len(tc.chunk) > 0 {
		tc.in <- tc.chunk
	}
	close(tc.in)
	return <-tc.done
}

// openTree rebuilds the tree's right edge (or, for a journal kept before
// the tree, builds the tree from every entry).
func (j *Journal) openTree() error {
	store := tileStore{j.db}
	v, closer, err := j.db.Get(treeMarkerKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return j.buildTree(store)
	case err != nil:
		return fmt.Errorf("journal: %w", err)
	}
	ok := len(v) == 1 && v[0] == treeVersion
	closer.Close()
	if !ok {
		return fmt.Errorf("journal: tree format %x is not %d", v, treeVersion)
	}
	t, err := tree.Open(j.head.Seq, store, j.leaves)
	if err != nil {
		return treeError(err)
	}
	j.tree = t
	return nil
}

// buildTree builds the tree over every entry of a journal that has none,
// from the entries' stored hashes, and marks it built. The chain is not
// checked here: Verify checks it, and the entries against the new tree.
func (j *Journal) buildTree(store tileStore) error {
	t := tree.Empty(store)
	b := j.db.NewBatch()
	defer func() { b.Close() }()
	p := t.Begin()
	var k [9]byte
	it, err := j.db.NewIter(&pebble.IterOptions{LowerBound: lowerKey, UpperBound: entryKey(k[:], j.head.Seq+1)})
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer it.Close()
	flush := func(last bool) error {
		for _, tl := range p.Tiles() {
			if err := b.Set(tileKey(tl.Level, tl.Index), tl.Encode(), nil); err != nil {
				return err
			}
		}
		if last {
			if err := b.Set(treeMarkerKey, []byte{treeVersion}, nil); err != nil {
				return err
			}
		}
		if err := j.db.Apply(b, j.sync); err != nil {
			return fmt.Errorf("journal: write tree: %w", err)
		}
		if err := t.Commit(p); err != nil {
			return err
		}
		b.Close()
		b = j.db.NewBatch()
		p = t.Begin()
		return nil
	}
	want := uint64(1)
	for valid := it.First(); valid; valid = it.Next() {
		h, err := storedHash(it, want)
		if err != nil {
			return err
		}
		p.Append(tree.LeafHash(h[:]))
		if want++; len(p.Tiles()) >= 1024 {
			if err := flush(false); err != nil {
				return err
			}
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if want != j.head.Seq+1 {
		return &BadEntryError{Seq: want, Reason: fmt.Sprintf("missing: the journal's head is %d", j.head.Seq)}
	}
	if err := p.Err(); err != nil {
		return err
	}
	if err := flush(true); err != nil {
		return err
	}
	j.tree = t
	return nil
}

// storedHash returns the hash stored in the entry at it, which must be
// entry want.
func storedHash(it *pebble.Iterator, want uint64) (Hash, error) {
	key := it.Key()
	if len(key) != 9 {
		return Hash{}, &BadEntryError{Seq: want, Reason: "malformed key"}
	}
	if seq := binary.BigEndian.Uint64(key[1:]); seq != want {
		return Hash{}, &BadEntryError{Seq: want, Reason: fmt.Sprintf("missing: the next entry stored is %d", seq)}
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return Hash{}, fmt.Errorf("journal: read %d: %w", want, err)
	}
	if len(v) < headerSize+2*HashSize {
		return Hash{}, &BadEntryError{Seq: want, Reason: "too short to be an entry"}
	}
	return Hash(v[len(v)-HashSize:]), nil
}

// leaves returns the leaf hashes of leaves [from, to): entries from+1 to
// to, from their stored hashes.
func (j *Journal) leaves(from, to uint64) ([]tree.Hash, error) {
	var lo, hi [9]byte
	it, err := j.db.NewIter(&pebble.IterOptions{LowerBound: entryKey(lo[:], from+1), UpperBound: entryKey(hi[:], to+1)})
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer it.Close()
	out := make([]tree.Hash, 0, to-from)
	want := from + 1
	for valid := it.First(); valid; valid = it.Next() {
		h, err := storedHash(it, want)
		if err != nil {
			return nil, err
		}
		out = append(out, tree.LeafHash(h[:]))
		want++
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if want != to+1 {
		return nil, &BadEntryError{Seq: want, Reason: fmt.Sprintf("missing: the journal's head is %d", to)}
	}
	return out, nil
}

// TreeHead returns the tree's head now: its size (the newest entry's seq),
// root hash and the newest entry's time; Origin is left for the signer.
func (j *Journal) TreeHead() tree.Head {
	j.mu.Lock()
	defer j.mu.Unlock()
	size, root := j.tree.Root()
	return tree.Head{Size: size, Root: root, Time: j.head.Time}
}

// RootAt returns the root hash of the tree of the first size entries.
func (j *Journal) RootAt(size uint64) (tree.Hash, error) {
	root, err := j.tree.RootAt(size)
	if err != nil {
		return tree.Hash{}, fmt.Errorf("journal: %w", err)
	}
	return root, nil
}

// InclusionProof shows that one entry is in the tree of a head: RFC 6962's
// audit path for leaf Index (= Seq-1) in the tree of Size entries, with the
// entry's hash (the leaf data), its leaf hash and, if Entry is set, the
// entry's encoding, so a verifier sees what the entry says.
type InclusionProof struct {
	Seq       uint64      `json:"seq"`
	Index     uint64      `json:"index"`
	Size      uint64      `json:"size"`
	EntryHash tree.Hash   `json:"entry_hash"`
	LeafHash  tree.Hash   `json:"leaf_hash"`
	Entry     []byte      `json:"entry,omitempty"`
	Path      []tree.Hash `json:"path"`
}

// InclusionProof returns the proof that entry seq is in the tree of the
// first size entries (seq <= size <= the journal's size).
func (j *Journal) InclusionProof(seq, size uint64) (*InclusionProof, error) {
	if seq == 0 || seq > size {
		return nil, fmt.Errorf("journal: entry %d is not in a tree of %d entries", seq, size)
	}
	if n := j.tree.Size(); size > n {
		return nil, fmt.Errorf("journal: a tree of %d entries is beyond the journal's %d", size, n)
	}
	e, err := j.Get(seq)
	if err != nil {
		return nil, err
	}
	leaf := tree.LeafHash(e.Hash[:])
	if got, err := j.tree.LeafAt(seq - 1); err != nil || got != leaf {
		return nil, &BadEntryError{Seq: seq, Reason: "does not match the journal's Merkle tree"}
	}
	path, err := j.tree.InclusionPath(seq-1, size)
	if err != nil {
		return nil, treeError(err)
	}
	return &InclusionProof{Seq: seq, Index: seq - 1, Size: size, EntryHash: tree.Hash(e.Hash), LeafHash: leaf, Entry: e.Encode(), Path: path}, nil
}

// Verify checks the proof against a head (whose signature the caller has
// checked): the sizes agree, the leaf hash is the entry hash's, the entry
// (if given) decodes, carries that hash and seq and its hash matches its
// contents, the audit path leads to the head's root, and, for the head's
// newest entry, the entry's time is the head's.
func (p *InclusionProof) Verify(h tree.Head) error {
	if p.Seq == 0 || p.Index != p.Seq-1 {
		return fmt.Errorf("%w: seq %d and index %d disagree", tree.ErrProof, p.Seq, p.Index)
	}
	if p.Size != h.Size {
		return fmt.Errorf("%w: proof for a tree of %d entries, head of %d", tree.ErrProof, p.Size, h.Size)
	}
	if tree.LeafHash(p.EntryHash[:]) != p.LeafHash {
		return fmt.Errorf("%w: leaf hash is not the entry hash's", tree.ErrProof)
	}
	if p.Entry != nil {
		e, err := DecodeChecked(p.Entry)
		if err != nil {
			return fmt.Errorf("%w: entry: %v", tree.ErrProof, err)
		}
		if e.Seq != p.Seq || tree.Hash(e.Hash) != p.EntryHash {
			return fmt.Errorf("%w: the entry is %d with hash %s, the proof's %d with %s", tree.ErrProof, e.Seq, e.Hash, p.Seq, p.EntryHash)
		}
		if e.Seq == h.Size && e.Time != h.Time {
			return fmt.Errorf("%w: the head's time is %d, its newest entry's %d", tree.ErrProof, h.Time, e.Time)
		}
	}
	return tree.VerifyInclusion(p.Index, p.Size, p.LeafHash, p.Path, h.Root)
}

// ConsistencyProof returns the proof that the tree of the first to entries
// extends the tree of the first from entries (from <= to <= the journal's
// size).
func (j *Journal) ConsistencyProof(from, to uint64) (*tree.ConsistencyProof, error) {
	if from > to {
		return nil, fmt.Errorf("journal: consistency from %d to %d: from is after to", from, to)
	}
	path, err := j.tree.ConsistencyPath(from, to)
	if err != nil {
		return nil, treeError(err)
	}
	return &tree.ConsistencyProof{From: from, To: to, Path: path}, nil
}

// HistoryError reports a journal whose first Size entries are not the
// history a head signed, while its entries and its tree agree: the entries
// and the tree were both rewritten. One head cannot tell which entry
// changed; a mirror of the journal (or an older head that still matches)
// narrows it.
type HistoryError struct {
	Size     uint64
	Root     tree.Hash
	HeadRoot tree.Hash
}

func (e *HistoryError) Error() string {
	return fmt.Sprintf("journal: its first %d entries are not the history the head signed: their tree's root is %s, the head's %s (entries and tree were both rewritten)", e.Size, e.Root, e.HeadRoot)
}

// ErrHeadMismatch is wrapped by HistoryError.
var ErrHeadMismatch = errors.New("journal: not the history the head signed")

// Unwrap makes errors.Is(err, ErrHeadMismatch) hold.
func (e *HistoryError) Unwrap() error { return ErrHeadMismatch }

// CheckHead checks the journal against a head saved earlier (its signature
// checked by the caller). A journal shorter than the head fails with a
// *BadEntryError naming the first missing entry; a tree at the head's size
// with another root fails naming the first entry that differs from the
// journal's own tree (Scan from 1, as Verify runs first, names entries that
// differ from a tree left as it was) or, if entries and tree agree, with a
// *HistoryError; the head's time must be the time of the entry at its size.
func (j *Journal) CheckHead(h tree.Head) error {
	size := j.tree.Size()
	if h.Size > size {
		return &BadEntryError{Seq: size + 1, Reason: fmt.Sprintf("missing: the journal ends at %d, the head has %d entries", size, h.Size)}
	}
	root, err := j.tree.RootAt(h.Size)
	if err != nil {
		return treeError(err)
	}
	if root != h.Root {
		if err := j.Scan(1, func(e Entry) error {
			if e.Seq >= h.Size {
				return ErrStop
			}
			return nil
		}); err != nil {
			return err
		}
		return &HistoryError{Size: h.Size, Root: root, HeadRoot: h.Root}
	}
	if h.Size == 0 {
		if h.Time != 0 {
			return fmt.Errorf("journal: the head of no entries has time %d", h.Time)
		}
		return nil
	}
	e, err := j.Get(h.Size)
	if err != nil {
		return err
	}
	if e.Time != h.Time {
		return &BadEntryError{Seq: h.Size, Reason: fmt.Sprintf("its time is %d, the head's %d", e.Time, h.Time)}
	}
	return nil
}
