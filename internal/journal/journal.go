package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"kinko/internal/journal/tree"
)

// Key layout in Pebble: 'j' + big-endian sequence number -> encoded entry;
// 't' + tile level (1 byte) + big-endian tile index -> a full tile of the
// Merkle tree (tree.TileBytes); "mtree" -> the tree's format version, set
// once the tree covers every entry from the first.
const (
	keyPrefix  = 'j'
	tilePrefix = 't'
)

var treeMarkerKey = []byte("mtree")

// treeVersion is the tree's stored format.
const treeVersion = 1

func entryKey(dst []byte, seq uint64) []byte {
	dst[0] = keyPrefix
	binary.BigEndian.PutUint64(dst[1:], seq)
	return dst[:9]
}

var (
	lowerKey = []byte{keyPrefix}
	upperKey = []byte{keyPrefix + 1}
)

// Errors callers can test.
var (
	// ErrBrokenChain reports an entry that does not continue the chain.
	ErrBrokenChain = errors.New("journal: entry does not continue the chain")
	// ErrNotFound reports a sequence number with no entry.
	ErrNotFound = errors.New("journal: no such entry")
	// ErrClosed reports use of a closed journal.
	ErrClosed = errors.New("journal: closed")
)

// BadEntryError names the first entry that failed verification.
type BadEntryError struct {
	Seq    uint64
	Reason string
}

func (e *BadEntryError) Error() string {
	return fmt.Sprintf("journal: entry %d is bad: %s", e.Seq, e.Reason)
}

// Options tune a journal.
type Options struct {
	// NoSync skips the fsync of each batch. Only for tests and
	// benchmarks that measure something else; never in service.
	NoSync bool
	// Logger receives Pebble's events; nil discards them.
	Logger *slog.Logger
}

// Journal is an open journal. Append is for one writer at a time (the
// core's committer); reads may run concurrently with it.
type Journal struct {
	db   *pebble.DB
	sync *pebble.WriteOptions

	mu     sync.Mutex // guards head, and orders tree commits with it
	head   Entry      // the newest entry; Seq 0 when empty (Payload not kept)
	closed bool

	// tree is the Merkle tree over the entries: leaf i is entry i+1. Its
	// size is always head.Seq (both change under mu).
	tree *tree.Tree

	// cleanup, if set, runs after Close (OpenSnapshot's copy is removed).
	cleanup func()

	// unflushed is the bytes of batches written since the journal last
	// asked Pebble to flush its memtable (under mu).
	unflushed int
}

// walFlushBytes bounds the batches written between flushes of Pebble's
// memtable: past it the journal asks Pebble for one, in the background.
// After a crash Pebble replays its write-ahead log and writes what it
// recovered to a table, synced, before it opens; with the memtable's 64
// MiB that was up to 64 MiB to write during a start (a start after a
// crash on a journal of 10,000,000 transfers spent 209-305 ms opening the
// journal, docs/benchmarks.md; this disk writes about 75 MB/s). The
// entries' keys ascend, so the smaller tables the flushes make move down
// the levels without being rewritten.
const walFlushBytes = 8 << 20

// Open opens or creates the journal in dir. It reads the newest entry and
// checks its own hash, so a journal whose newest entry is damaged fails here;
// it rebuilds the Merkle tree's right edge from the stored tiles and the
// newest entries, so a tree that lacks a tile, holds one beyond the newest
// entry (the journal was cut) or cannot be built from the newest entries
// fails here too, a *BadEntryError naming the first entry concerned. A
// journal kept before the tree existed gets its tree built from its entries.
// Verify (and any scan from the first entry) checks the rest: every entry
// against the tree.
func Open(dir string, o Options) (*Journal, error) {
	opts := &pebble.Options{
		MemTableSize:                64 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       8,
		L0StopWritesThreshold:       64,
		Logger:                      quietLogger{},
	}
	// Entries are hashed and mostly incompressible; compressing blocks
	// would cost every write and every replay CPU for little.
	opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionNone })
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", dir, err)
	}
	j := &Journal{db: db, sync: pebble.Sync}
	if o.NoSync {
		j.sync = pebble.NoSync
	}
	head, err := readHead(db)
	if err != nil {
		db.Close()
		return nil, err
	}
	j.head = head
	if err := j.openTree(); err != nil {
		db.Close()
		return nil, err
	}
	return j, nil
}

// readHead returns the newest entry, its hash checked, without its payload.
func readHead(db *pebble.DB) (Entry, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lowerKey, UpperBound: upperKey})
	if err != nil {
		return Entry{}, fmt.Errorf("journal: %w", err)
	}
	defer it.Close()
	if !it.Last() {
		return Entry{}, it.Error()
	}
	seq := binary.BigEndian.Uint64(it.Key()[1:])
	b := it.Value()
	e, err := Decode(b)
	if err != nil || !checkHash(b) || e.Seq != seq {
		return Entry{}, &BadEntryError{Seq: seq, Reason: "newest entry does not decode or its hash does not match"}
	}
	e.Payload = nil
	return e, nil
}

// quietLogger drops Pebble's informational logs and keeps its fatal ones
// fatal.
type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{})  {}
func (quietLogger) Errorf(string, ...interface{}) {}
func (quietLogger) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf(format, args...))
}

// Close closes the journal.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	err := j.db.Close()
	if j.cleanup != nil {
		j.cleanup()
	}
	return err
}

// Head returns the newest entry's sequence number, hash and time; seq 0 for
// an empty journal.
func (j *Journal) Head() (seq uint64, hash Hash, t int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.head.Seq, j.head.Hash, j.head.Time
}

// Batch collects sealed entries for one durable write.
type Batch struct {
	b      *pebble.Batch
	first  uint64
	last   Entry
	n      int
	hashes []Hash // the entries' hashes, the tree's leaf data
}

// NewBatch starts a batch continuing the journal's head.
func (j *Journal) NewBatch() *Batch {
	return &Batch{b: j.db.NewBatch()}
}

// Add seals an entry with the given fields after prev (the previous entry's
// hash) and adds it to the batch. It returns the entry, whose Payload aliases
// the batch's memory and is valid until the batch is closed.
func (b *Batch) Add(prev Hash, seq uint64, t int64, kind uint16, payload []byte) (Entry, error) {
	if len(payload) > MaxPayload {
		return Entry{}, fmt.Errorf("journal: payload of %d bytes exceeds %d", len(payload), MaxPayload)
	}
	op := b.b.SetDeferred(9, EncodedSize(len(payload)))
	entryKey(op.Key, seq)
	e := Seal(op.Value, prev, seq, t, kind, payload)
	if err := op.Finish(); err != nil {
		return Entry{}, fmt.Errorf("journal: %w", err)
	}
	if b.n == 0 {
		b.first = seq
	}
	b.n++
	b.last = e
	b.hashes = append(b.hashes, e.Hash)
	return e, nil
}

// Len returns the number of entries in the batch.
func (b *Batch) Len() int { return b.n }

// Close releases the batch's memory.
func (b *Batch) Close() { b.b.Close() }

// Commit writes the batch durably (one fsync) and makes its newest entry the
// head. The batch must continue the head exactly. The entries' leaves go
// into the Merkle tree in the same write: the tiles they complete are part
// of the batch, so a crash never leaves entries without their tree or the
// tree ahead of them.
func (j *Journal) Commit(b *Batch) error {
	if b.n == 0 {
		return nil
	}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return ErrClosed
	}
	if b.first != j.head.Seq+1 {
		j.mu.Unlock()
		return fmt.Errorf("%w: batch starts at %d after head %d", ErrBrokenChain, b.first, j.head.Seq)
	}
	j.mu.Unlock()
	p := j.tree.Begin()
	for i := range b.hashes {
		p.Append(tree.LeafHash(b.hashes[i][:]))
	}
	if err := p.Err(); err != nil {
		return fmt.Errorf("journal: tree: %w", err)
	}
	for _, t := range p.Tiles() {
		if err := b.b.Set(tileKey(t.Level, t.Index), t.Encode(), nil); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	size := b.b.Len()
	if err := j.db.Apply(b.b, j.sync); err != nil {
		return fmt.Errorf("journal: write: %w", err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.unflushed += size; j.unflushed >= walFlushBytes && !j.closed {
		// A failure here is a flush that did not start: the entries are
		// durable in the log either way.
		j.db.AsyncFlush()
		j.unflushed = 0
	}
	h := b.last
	h.Payload = nil
	j.head = h
	return j.tree.Commit(p)
}

// Append seals and durably writes entries with the given kinds and payloads
// after the head, one batch, and returns them. For callers outside the core's
// committer, which batches for itself.
func (j *Journal) Append(t int64, kind uint16, payload []byte) (Entry, error) {
	seq, prev, headTime := j.Head()
	if t < headTime {
		t = headTime
	}
	b := j.NewBatch()
	defer b.Close()
	e, err := b.Add(prev, seq+1, t, kind, payload)
	if err != nil {
		return Entry{}, err
	}
	if err := j.Commit(b); err != nil {
		return Entry{}, err
	}
	e.Payload = append([]byte(nil), e.Payload...)
	return e, nil
}

// Get returns the entry with seq, with its hash checked.
func (j *Journal) Get(seq uint64) (Entry, error) {
	var k [9]byte
	v, closer, err := j.db.Get(entryKey(k[:], seq))
	if errors.Is(err, pebble.ErrNotFound) {
		return Entry{}, fmt.Errorf("%w: %d", ErrNotFound, seq)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("journal: get %d: %w", seq, err)
	}
	defer closer.Close()
	b := append([]byte(nil), v...)
	e, err := Decode(b)
	if err != nil {
		return Entry{}, &BadEntryError{Seq: seq, Reason: err.Error()}
	}
	if e.Seq != seq || !checkHash(b) {
		return Entry{}, &BadEntryError{Seq: seq, Reason: "hash does not match its contents"}
	}
	return e, nil
}

// ScanFunc receives entries in order. The entry's Payload is only valid
// during the call.
type ScanFunc func(e Entry) error

// ErrStop ends a scan early without error.
var ErrStop = errors.New("journal: stop")

// Scan calls fn for each entry from seq from (inclusive) to the head, in
// order, and checks as it goes what Verify checks: contiguous sequence
// numbers, each hash, each link to the previous hash. The first failure is a
// *BadEntryError. Scanning from 0 or 1 checks the chain from its start, and
// the Merkle tree too: each entry's leaf hash against the stored tree's, and
// each stored hash above 256, 65,536, ... leaves against the leaves under
// it, so a tree that does not match its entries names the first entry that
// differs (an entry appended during the scan and not yet in the tree is not
// checked against it). That check runs on its own goroutine, a few thousand
// entries behind: fn may have seen that many entries past the one it names
// when the scan stops. From a later seq, the link into the first entry is
// checked against the entry before it.
func (j *Journal) Scan(from uint64, fn ScanFunc) error {
	if from == 0 {
		from = 1
	}
	if from > 1 {
		return j.scan(from, fn, nil)
	}
	check := j.startTreeCheck()
	err := j.scan(from, fn, check)
	// The check covers entries before any the scan failed at: its
	// finding comes first.
	if cerr := check.finish(); cerr != nil {
		return cerr
	}
	return err
}

func (j *Journal) scan(from uint64, fn ScanFunc, check *treeCheck) error {
	var prev Hash
	if from > 1 {
		e, err := j.Get(from - 1)
		if err != nil {
			return err
		}
		prev = e.Hash
	}
	var k [9]byte
	it, err := j.db.NewIter(&pebble.IterOptions{LowerBound: entryKey(k[:], from), UpperBound: upperKey})
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer it.Close()
	want := from
	for valid := it.First(); valid; valid = it.Next() {
		key := it.Key()
		if len(key) != 9 {
			return &BadEntryError{Seq: want, Reason: "malformed key"}
		}
		seq := binary.BigEndian.Uint64(key[1:])
		if seq != want {
			return &BadEntryError{Seq: want, Reason: fmt.Sprintf("missing: the next entry stored is %d", seq)}
		}
		b, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("journal: read %d: %w", seq, err)
		}
		e, err := Decode(b)
		if err != nil {
			return &BadEntryError{Seq: seq, Reason: err.Error()}
		}
		if e.Seq != seq {
			return &BadEntryError{Seq: seq, Reason: fmt.Sprintf("stored under %d but says %d", seq, e.Seq)}
		}
		if !checkHash(b) {
			return &BadEntryError{Seq: seq, Reason: "hash does not match its contents"}
		}
		if e.Prev != prev {
			return &BadEntryError{Seq: seq, Reason: "previous hash does not match the entry before it"}
		}
		if check != nil && !check.add(e.Hash) {
			return nil // the tree check failed: Scan returns its error
		}
		prev = e.Hash
		if err := fn(e); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
		want++
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("journal: scan: %w", err)
	}
	return nil
}

// Report summarises a verification.
type Report struct {
	Entries uint64
	Head    Hash
}

// Verify checks every entry from the first: that it decodes, that its hash
// matches its contents, that it links to the entry before, that no sequence
// number is missing, that the Merkle tree holds it (its leaf and every
// stored hash above it), and that decode (the core's command decoder)
// accepts its payload. The first failure is a *BadEntryError naming the
// entry.
func (j *Journal) Verify(decode func(kind uint16, payload []byte) error) (Report, error) {
	var r Report
	err := j.Scan(1, func(e Entry) error {
		if decode != nil {
			if err := decode(e.Kind, e.Payload); err != nil {
				return &BadEntryError{Seq: e.Seq, Reason: "payload: " + err.Error()}
			}
		}
		r.Entries++
		r.Head = e.Hash
		return nil
	})
	if err != nil {
		return r, err
	}
	if seq, h, _ := j.Head(); seq != r.Entries || h != r.Head {
		return r, &BadEntryError{Seq: r.Entries + 1, Reason: fmt.Sprintf("journal ends at %d, its head is %d", r.Entries, seq)}
	}
	return r, nil
}

// SeqAtTime returns the sequence number of the newest entry whose time is at
// or before t (unix nanoseconds), or 0 if t is before the first entry.
// Entry times never decrease, so this is a binary search.
func (j *Journal) SeqAtTime(t int64) (uint64, error) {
	head, _, _ := j.Head()
	var ferr error
	n := sort.Search(int(head), func(i int) bool {
		if ferr != nil {
			return true
		}
		e, err := j.Get(uint64(i) + 1)
		if err != nil {
			ferr = err
			return true
		}
		return e.Time > t
	})
	if ferr != nil {
		return 0, ferr
	}
	return uint64(n), nil
}

// Key returns the Pebble key under which entry seq is stored.
func Key(seq uint64) []byte {
	var k [9]byte
	return entryKey(k[:], seq)
}

var _ io.Closer = (*Journal)(nil)
