package core

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"kinko/internal/fsutil"
	"kinko/internal/journal"
)

// openBalWriter opens the balance log for appending: it verifies the log
// from the newest good checkpoint to its end, cuts a torn or unauthentic
// tail off, and checks that the last entry the log covers is the
// journal's. A log that is not this journal's is removed (an empty one
// takes its place). The writer's lastSeq is the entry the log ends at.
func openBalWriter(dir string, aead cipher.AEAD, j *journal.Journal, log interface{ Warn(string, ...any) }) (*balWriter, error) {
	d := balDir(dir)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, fmt.Errorf("balance log: %w", err)
	}
	path := filepath.Join(d, balLogName)
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("balance log: %w", err)
		}
		head, _, _ := j.Head()
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("balance log: %w", err)
		}
		// From the newest checkpoint the log still reaches (one past
		// its end was cut off with the log's tail), or from the start
		// record if it is further on and holds.
		m, _ := balStartWithin(dir, aead, j, head, fi.Size())
		r := &balReader{f: f, aead: aead, off: m.off, prevTag: m.tag, lastSeq: m.seq}
		lastHash := m.lastHash
		var records uint64
		lastOff := int64(-1) // no chunk read: the start record cannot name one
		var lastPrev [16]byte
		if sr, ok := readStartRecord(dir, aead, f, j, head, fi.Size()); ok && sr.off > m.off {
			r = &balReader{f: f, aead: aead, off: sr.off, prevTag: sr.tag, lastSeq: sr.seq}
			lastHash, records, lastOff, lastPrev = sr.lastHash, sr.records, sr.lastOff, sr.lastPrev
		}
		var cerr error
		for {
			prev := *r
			c, err := r.next()
			if err != nil {
				if err != io.EOF {
					cerr = err
				}
				break
			}
			lastOff, lastPrev = prev.off, prev.prevTag
			var n uint64
			ferr := frames(c.body, prev.lastSeq, c.lastSeq, func(_ uint64, _, recs []byte) bool { n += uint64(len(recs) / balRecordSize); return true })
			if ferr != nil {
				// Authentic but not parsing: the log ends before it.
				cerr = ferr
				*r = prev
				break
			}
			records += n
			lastHash = c.lastHash
		}
		good := r.lastSeq <= head
		if good && r.lastSeq > 0 {
			e, err := j.Get(r.lastSeq)
			good = err == nil && e.Hash == lastHash
		}
		if good {
			if fi.Size() > r.off {
				log.Warn("balance log: cut after its last good chunk", "entry", r.lastSeq, "bytes", fi.Size()-r.off, "err", cerr)
				err = f.Truncate(r.off)
			}
			if err == nil {
				// Checkpoints past the log's end name bytes that the
				// appends to come will not be.
				err = removeCkptsAfter(dir, r.lastSeq)
			}
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("balance log: %w", err)
			}
			w := newBalWriter(f, path, aead, r.off, r.prevTag, r.lastSeq, 0)
			w.records, w.lastHash, w.lastOff, w.lastPrev = records, lastHash, lastOff, lastPrev
			return w, nil
		}
		f.Close()
		if attempt > 0 {
			return nil, fmt.Errorf("balance log: cannot start afresh")
		}
		log.Warn("balance log: not this journal's; rebuilt from the journal", "entry", r.lastSeq)
		if err := clearBalances(dir); err != nil {
			return nil, err
		}
	}
}

// removeCkptsAfter removes the checkpoints after entry seq.
func removeCkptsAfter(dir string, seq uint64) error {
	for _, s := range ckptSeqs(dir) {
		if s <= seq {
			continue
		}
		if err := os.Remove(filepath.Join(balDir(dir), ckptName(s))); err != nil {
			return fmt.Errorf("balance log: %w", err)
		}
		parts, _ := filepath.Glob(filepath.Join(balDir(dir), fmt.Sprintf("%020d.*.part", s)))
		for _, p := range parts {
			os.Remove(p)
		}
	}
	return nil
}

// clearBalances removes the balance log and its checkpoints.
func clearBalances(dir string) error {
	d := balDir(dir)
	ents, err := os.ReadDir(d)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("balance log: %w", err)
	}
	for _, e := range ents {
		n := e.Name()
		if n == balLogName || n == balStartName || strings.HasSuffix(n, ".ckpt") || strings.HasSuffix(n, ".part") || strings.HasSuffix(n, ".tmp") {
			if err := os.Remove(filepath.Join(d, n)); err != nil {
				return fmt.Errorf("balance log: %w", err)
			}
		}
	}
	return nil
}

// balApplied is called by the applier after each entry it applies.
func (c *Core) balApplied(e *journal.Entry) {
	if c.blog != nil {
		c.blog.add(c.state, e)
	}
}

// balFlush seals what the applier's batch added to the balance log and,
// when enough records came since the last checkpoint, asks for one. The
// caller holds mu.
func (c *Core) balFlush() {
	w := c.blog
	if w == nil {
		return
	}
	if err := w.flush(); err != nil {
		c.log.Warn("balance log write failed: holdings replay from here", "err", err)
		c.blog = nil
		c.state.Ledger.TrackChanges(false)
		w.close()
		return
	}
	if w.records >= max(ckptRecords, c.ckptRows.Load()/ckptFraction) && c.ckptBusy.CompareAndSwap(false, true) {
		// The rows are copied out here, where the state is the log's
		// end; sorted and written by checkpointLoop.
		began := time.Now()
		job := extractCkpt(c.state, w)
		job.copied = time.Since(began)
		if ckptInline {
			c.writeCkptJob(job)
		} else {
			c.ckptCh <- job
		}
		w.records = 0
	}
}

// balSync writes what the applier added to the balance log so far, syncs
// the log, so that it reaches the state's entry on disk (before a
// snapshot of that state, at the end of a start, at a stop), and records
// that end in the start record. A failure stops the log, as in balFlush.
// The caller holds mu (or is the start, before the pipeline runs).
func (c *Core) balSync() {
	w := c.blog
	if w == nil {
		return
	}
	err := w.flush()
	if err == nil && !c.cfg.NoSync {
		if err = w.f.Sync(); err != nil {
			err = fmt.Errorf("balance log: sync: %w", err)
		}
	}
	if err == nil {
		// The log is on disk to here: the next start checks it from
		// here on.
		c.startRecMu.Lock()
		rerr := writeStartRecord(c.cfg.Dir, c.baead, w.point())
		c.startRecMu.Unlock()
		if rerr != nil {
			c.log.Warn("balance log: start record not written", "err", rerr)
		}
	}
	if err != nil {
		c.log.Warn("balance log write failed: holdings replay from here", "err", err)
		c.blog = nil
		c.state.Ledger.TrackChanges(false)
		w.close()
	}
}

// checkpointLoop writes the balance checkpoints the applier asks for,
// off the applier's goroutine.
func (c *Core) checkpointLoop() {
	defer close(c.ckptDone)
	// At the lowest priority: on a busy host the applier and the
	// committer come first, and a checkpoint that lags only makes a query
	// read more of the log. The thread is never unlocked, so that it is
	// not handed back at low priority: Go ends it when the loop returns
	// (a child process forked from it would get its parent-death signal
	// then, which is why nodetool.Start forks from a thread of its own).
	runtime.LockOSThread()
	lowPriority()
	for job := range c.ckptCh {
		c.writeCkptJob(job)
	}
}

// ckptInline writes checkpoints on the applier's goroutine, each before
// the applier goes on: for tests that need the checkpoints a stream
// makes whatever the machine's load (the background writer lags on a
// busy host, and a checkpoint due while one is written is made later).
var ckptInline = false

// writeCkptJob writes one checkpoint the applier copied out.
func (c *Core) writeCkptJob(job ckptJob) {
	began := time.Now()
	n, err := writeCkpt(c.cfg.Dir, c.baead, job, c.quit)
	c.ckptBusy.Store(false)
	if err != nil {
		if !errors.Is(err, ErrClosed) {
			c.log.Warn("balance checkpoint failed", "err", err)
		}
		return
	}
	c.ckptRows.Store(uint64(n))
	c.lastCkptCopy.Store(int64(job.copied))
	c.log.Info("balance checkpoint written", "seq", job.m.seq, "rows", n, "copied", job.copied, "written", time.Since(began))
}

// rebuildBalances builds the balance log afresh from the journal's first
// entry, in the background, while the core serves (holdings replay until
// it is done): a state of its own replays the journal up to the core's,
// then, with the applier held, the last entries, and the log is handed to
// the applier.
func (c *Core) rebuildBalances() {
	defer close(c.rebuilt)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	fail := func(err error) { c.log.Warn("balance log rebuild failed: holdings replay the journal", "err", err) }
	if err := clearBalances(c.cfg.Dir); err != nil {
		fail(err)
		return
	}
	tmp := filepath.Join(balDir(c.cfg.Dir), balLogName+".tmp")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		fail(err)
		return
	}
	w := newBalWriter(f, tmp, c.baead, 0, [16]byte{}, 0, 0)
	st := NewState()
	st.Ledger.TrackChanges(true)
	apply := func(e *journal.Entry) error {
		st.Apply(e)
		w.add(st, e)
		if w.full() {
			return w.flush()
		}
		return nil
	}
	began := time.Now()
	c.mu.RLock()
	to := c.state.seq
	c.mu.RUnlock()
	for {
		if err := replay(ctx, c.j, st.seq+1, to, apply); err != nil {
			w.close()
			os.Remove(tmp)
			if !errors.Is(err, context.Canceled) {
				fail(err)
			}
			return
		}
		c.mu.Lock()
		if c.state.seq-st.seq > 4*MaxBatchEntries {
			to = c.state.seq
			c.mu.Unlock()
			continue
		}
		err := replay(ctx, c.j, st.seq+1, c.state.seq, apply)
		if err == nil {
			err = w.flush()
		}
		if err == nil {
			err = os.Rename(tmp, filepath.Join(balDir(c.cfg.Dir), balLogName))
		}
		if err != nil {
			c.mu.Unlock()
			w.close()
			os.Remove(tmp)
			fail(err)
			return
		}
		w.assets = c.state.Ledger.AssetCount()
		c.state.Ledger.TrackChanges(true)
		c.blog = w
		c.balFlush() // a first checkpoint, if the log is long enough
		c.mu.Unlock()
		c.log.Info("balance log rebuilt from the journal", "entries", st.seq, "took", time.Since(began))
		return
	}
}

// balanceLogReady is closed once the balance log is live (at once unless
// it is rebuilt).
func (c *Core) balanceLogReady() <-chan struct{} { return c.rebuilt }

// HoldingsAt returns every customer's holding of the asset (by code) as of
// entry seq: from the balance log if it covers seq, otherwise from the
// state rebuilt there (StateAt). ErrAssetUnknown if no asset had the code
// then.
func (c *Core) HoldingsAt(ctx context.Context, code string, seq uint64) (IndexedHoldings, error) {
	return holdingsAt(ctx, c.cfg.Dir, c.snapKey, c.baead, c.j, code, seq)
}

// HoldingsAtTime is HoldingsAt at time t: every entry at or before t.
func (c *Core) HoldingsAtTime(ctx context.Context, code string, t, now time.Time) (IndexedHoldings, error) {
	seq, err := seqAtTime(c.j, t, now)
	if err != nil {
		return IndexedHoldings{}, err
	}
	return c.HoldingsAt(ctx, code, seq)
}

// HoldingsAt is Core.HoldingsAt on a data directory (a stopped core's, or
// a copy): without the head key the balance log is not trusted and the
// journal is replayed.
func HoldingsAt(ctx context.Context, dir string, j *journal.Journal, code string, seq uint64) (IndexedHoldings, error) {
	key := readKey(dir)
	return holdingsAt(ctx, dir, key, balanceAEAD(key), j, code, seq)
}

// HoldingsAtTime is HoldingsAt at time t.
func HoldingsAtTime(ctx context.Context, dir string, j *journal.Journal, code string, t, now time.Time) (IndexedHoldings, error) {
	seq, err := seqAtTime(j, t, now)
	if err != nil {
		return IndexedHoldings{}, err
	}
	return HoldingsAt(ctx, dir, j, code, seq)
}

func holdingsAt(ctx context.Context, dir string, key []byte, aead cipher.AEAD, j *journal.Journal, code string, seq uint64) (IndexedHoldings, error) {
	if head, _, _ := j.Head(); seq > head {
		return IndexedHoldings{}, fmt.Errorf("%w: %d > %d", ErrFuture, seq, head)
	}
	h, err := holdingsFromLog(dir, aead, j, code, seq)
	if err == nil || !errors.Is(err, ErrNoIndex) {
		return h, err
	}
	return holdingsByReplay(ctx, dir, key, j, code, seq)
}

// holdingsByReplay is holdings from the state rebuilt at seq.
func holdingsByReplay(ctx context.Context, dir string, key []byte, j *journal.Journal, code string, seq uint64) (IndexedHoldings, error) {
	st, err := stateAt(ctx, dir, key, j, seq)
	if err != nil {
		return IndexedHoldings{}, err
	}
	a, ok := st.Ledger.AssetByCode(code)
	if !ok {
		return IndexedHoldings{}, fmt.Errorf("%w %q", ErrAssetUnknown, code)
	}
	return IndexedHoldings{Asset: a, Seq: st.Seq(), Time: st.Time(), Holdings: st.Holdings(a.ID)}, nil
}

// ckptState is the core's checkpoint bookkeeping.
type ckptState struct {
	ckptCh   chan ckptJob
	ckptBusy atomic.Bool
	// lastCkptCopy is how long the applier took to copy the last
	// checkpoint's rows out of the state (nanoseconds).
	lastCkptCopy atomic.Int64
	ckptDone     chan struct{}
	ckptRows     atomic.Uint64
}

// The start record (balances/start) names a point of the log that was on
// disk, synced, when it was written: the end of the last chunk then, that
// chunk's start and the tag before it, the entry it ends at and its hash,
// and the records since the last checkpoint. A start checks the log from
// there instead of from the newest checkpoint when the record is further
// on: it authenticates the record, checks that the log is at least that
// long, that the chunk the record names verifies there and ends where the
// record says, and that the entry's hash is the journal's; if any of that
// fails the record is passed over and the start checks from the
// checkpoint as before. It is written where the log is synced anyway:
// before each snapshot, at the end of a start and at a stop. Without it,
// a start after a crash checks every chunk since the newest checkpoint,
// and a start that replayed a long tail adds that tail's chunks to what
// the next start checks (575 ms of a start after a crash on a journal of
// 10,000,000 transfers, docs/benchmarks.md).
const (
	balStartName  = "start"
	balStartMagic = "KNKBSTR1"
	// magic nonce offset seq lastOff lastPrev tag hash records
	balStartLen = 8 + 12 + 8 + 8 + 8 + 16 + 16 + 32 + 8
)

// startRecord is a start record's contents.
type startRecord struct {
	off      int64 // the log's end
	tag      [16]byte
	seq      uint64
	lastHash journal.Hash
	lastOff  int64 // where the chunk ending at off begins
	lastPrev [16]byte
	records  uint64
}

// point is the start record of w's end.
func (w *balWriter) point() startRecord {
	return startRecord{off: w.off, tag: w.prevTag, seq: w.lastSeq, lastHash: w.lastHash, lastOff: w.lastOff, lastPrev: w.lastPrev, records: w.records}
}

// recordStart syncs the log and writes the start record for the point p
// the start left it at, off the start's path (the applier may append
// meanwhile: the sync covers p's bytes and perhaps more).
func (c *Core) recordStart(f *os.File, p startRecord) {
	defer close(c.startRecDone)
	if !c.cfg.NoSync {
		if err := f.Sync(); err != nil {
			c.log.Warn("balance log: sync failed; no start record", "err", err)
			return
		}
	}
	c.startRecMu.Lock()
	defer c.startRecMu.Unlock()
	if err := writeStartRecord(c.cfg.Dir, c.baead, p); err != nil {
		c.log.Warn("balance log: start record not written", "err", err)
	}
}

// startRecState is the core's start-record bookkeeping.
type startRecState struct {
	startRecMu   sync.Mutex    // one writer of the record at a time
	startRecDone chan struct{} // closed when the start's record is written
}

// writeStartRecord writes the start record p, whose bytes of the log the
// caller has synced (unless the core runs without syncs).
func writeStartRecord(dir string, aead cipher.AEAD, w startRecord) error {
	if w.off == 0 || w.seq == 0 || w.lastOff < 0 {
		return nil
	}
	b := make([]byte, balStartLen, balStartLen+balTagSize)
	copy(b, balStartMagic)
	if _, err := rand.Read(b[8:20]); err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(b[20:], uint64(w.off))
	binary.LittleEndian.PutUint64(b[28:], w.seq)
	binary.LittleEndian.PutUint64(b[36:], uint64(w.lastOff))
	copy(b[44:60], w.lastPrev[:])
	copy(b[60:76], w.tag[:])
	copy(b[76:108], w.lastHash[:])
	binary.LittleEndian.PutUint64(b[108:], w.records)
	b = append(b, aead.Seal(nil, b[8:20], nil, b)...)
	if err := fsutil.WriteFile(filepath.Join(balDir(dir), balStartName), "", b, false); err != nil {
		return fmt.Errorf("balance log: start record: %w", err)
	}
	return nil
}

// readStartRecord reads the start record and checks it against the log f
// of size bytes and the journal (at most head): false if there is none or
// it does not hold.
func readStartRecord(dir string, aead cipher.AEAD, f *os.File, j *journal.Journal, head uint64, size int64) (startRecord, bool) {
	b, err := os.ReadFile(filepath.Join(balDir(dir), balStartName))
	if err != nil || len(b) != balStartLen+balTagSize || string(b[:8]) != balStartMagic {
		return startRecord{}, false
	}
	if _, err := aead.Open(nil, b[8:20], b[balStartLen:], b[:balStartLen]); err != nil {
		return startRecord{}, false
	}
	sr := startRecord{
		off:     int64(binary.LittleEndian.Uint64(b[20:])),
		seq:     binary.LittleEndian.Uint64(b[28:]),
		lastOff: int64(binary.LittleEndian.Uint64(b[36:])),
		records: binary.LittleEndian.Uint64(b[108:]),
	}
	copy(sr.lastPrev[:], b[44:60])
	copy(sr.tag[:], b[60:76])
	copy(sr.lastHash[:], b[76:108])
	if sr.off <= 0 || sr.off > size || sr.lastOff < 0 || sr.lastOff >= sr.off || sr.seq == 0 || sr.seq > head {
		return startRecord{}, false
	}
	// The chunk that ends there, as the record has it.
	r := &balReader{f: f, aead: aead, off: sr.lastOff, prevTag: sr.lastPrev}
	c, err := r.next()
	if err != nil || c.end != sr.off || c.tag != sr.tag || c.lastSeq != sr.seq || c.lastHash != sr.lastHash {
		return startRecord{}, false
	}
	if e, err := j.Get(sr.seq); err != nil || e.Hash != sr.lastHash {
		return startRecord{}, false
	}
	return sr, true
}
