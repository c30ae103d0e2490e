// Package core is kinko's event-sourced state machine and the service around
// it: commands are journaled, group-committed with one fsync per batch, then
// applied in order by one deterministic apply; reads see the applied state.
//
// The commit pipeline has two stages, each one goroutine. The committer takes
// queued commands, seals them into the hash chain and writes them to the
// journal as one synced Pebble batch. The applier applies each durable batch
// to the state and answers the submitters. While batch N is applied, batch N+1
// is being made durable. INVARIANT: a command is acknowledged only after the
// batch holding it is durable, and the state never holds an entry that is not
// durable in the journal.
package core

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"kinko/internal/alert"
	"kinko/internal/journal"
	"kinko/internal/journal/tree"
	"kinko/internal/ledger"
)

// Errors the core's callers can test.
var (
	// ErrClosed reports a core that is stopped or stopping.
	ErrClosed = errors.New("core: closed")
	// ErrJournalFailed reports that the journal could not be written: the
	// core fails closed and acknowledges nothing more.
	ErrJournalFailed = errors.New("core: journal write failed")
	// ErrFuture reports a point in time after the journal's head.
	ErrFuture = errors.New("core: point in time is after the journal's newest entry")
	// ErrBeforeJournal reports a time before the journal's first entry.
	ErrBeforeJournal = errors.New("core: point in time is before the journal's first entry")
	// ErrOutcomeUnknown reports a submit whose context ended after the
	// command was queued: it may still be applied. Retry with the same ids.
	ErrOutcomeUnknown = errors.New("core: outcome unknown; retry with the same ids")
)

// Defaults and bounds of the pipeline.
const (
	DefaultSnapshotEvery = 100_000
	DefaultSnapshotKeep  = 8
	// DefaultSnapshotBytes is the journal payload between snapshots: with
	// entries of many customers or transfers each, a snapshot comes
	// before the entry count would bring one, so that a point in time is
	// never more than this much replay away from a snapshot.
	DefaultSnapshotBytes = 64 << 20
	// DefaultSnapshotApplyTime is the applying time between snapshots.
	DefaultSnapshotApplyTime = 2 * time.Second

	// MaxBatchEntries bounds the commands in one durable batch.
	MaxBatchEntries = 1024
	// maxBatchBytes bounds the payload bytes in one durable batch.
	maxBatchBytes = 32 << 20
	// queueLen bounds the commands waiting for the committer.
	queueLen = 4096
	// applyQueueLen bounds the durable batches waiting for the applier.
	applyQueueLen = 2
)

// incidentSnapBytes is the payload since the last snapshot below which no
// snapshot is taken before a halt or an incident: the moment is a short
// replay away already. (A variable for tests.)
var incidentSnapBytes uint64 = 1 << 20

// Config configures a core.
type Config struct {
	// Dir is the data directory: journal/ and snapshots/ live there.
	Dir string
	// SecretsDir is the host's secrets directory, where the head key
	// lives (empty: the default, Dir.secrets; see internal/secrets).
	SecretsDir string
	// SnapshotEvery is the number of entries between snapshots; 0 means
	// DefaultSnapshotEvery.
	SnapshotEvery uint64
	// SnapshotBytes is the journal payload (bytes) between snapshots, or
	// half the newest snapshot's size if that is more (so that writing
	// snapshots never costs more than twice the journal's own writes); 0
	// means DefaultSnapshotBytes.
	SnapshotBytes uint64
	// SnapshotApplyTime is the time spent applying entries after which
	// a snapshot is taken (or the time the last snapshot took to write,
	// if that is more); 0 means DefaultSnapshotApplyTime.
	SnapshotApplyTime time.Duration
	// SnapshotKeep is how many snapshots to keep; 0 means the default.
	// The snapshots taken just before a halt or an incident (the state at
	// the moment of an incident, which holdings and compensation ask
	// for) are kept besides.
	SnapshotKeep int
	// VerifyAtStart verifies the whole journal (every entry, its link
	// and the Merkle tree) before the core serves, as before snapshots
	// loaded at memory speed; otherwise start loads the newest snapshot,
	// replays the tail, and verifies the journal from its first entry in
	// the background, failing closed if it does not verify (Verified).
	VerifyAtStart bool
	// CheckInvariants checks every invariant after every apply (slow).
	// Builds with the invariants tag always check.
	CheckInvariants bool
	// NoSync skips fsync. Only for tests that measure something else.
	NoSync bool
	// ReserveAccounts and ReserveTransfers allocate room for this many
	// accounts and transfers at start, so that the hot path never waits
	// for memory to be mapped (TigerBeetle's static allocation).
	ReserveAccounts, ReserveTransfers int
	// Logger is the core's logger; nil discards.
	Logger *slog.Logger
	// Alert, if set, is told of what an applied entry found wrong that
	// the entry itself recorded: a compensation plan that left the
	// customer side of an asset short (a critical alert, beside the
	// incident the entry opened). It is called after the entry is
	// applied, outside the apply, never on the replay at start.
	Alert func(alert.Alert)
	// Progress, if set, is told how far the replay at start has come:
	// entries applied of the entries to apply (kinko core draws a bar on
	// a terminal).
	Progress func(done, total uint64)
	// Audit, if set, is told of every entry the core journals and
	// applies, in order, once its batch is applied and acknowledged: the
	// audit log and the readiness checks of `kinko core`. It runs on the
	// applier's goroutine, outside the state's lock, and must not block.
	Audit func(AuditRecord)
}

// AuditRecord is one journaled command as the audit log says it.
type AuditRecord struct {
	Seq  uint64
	Time int64 // the entry's time, unix nanoseconds
	Kind Kind
	// Command is the command (nil for a create_transfers batch, which is
	// not decoded again).
	Command Command
	// Actor is who the command names as acting (Actor).
	Actor string
	// Err is why the command did not take effect, nil if it did.
	Err error
}

func (c *Config) fill() {
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = DefaultSnapshotEvery
	}
	if c.SnapshotApplyTime == 0 {
		c.SnapshotApplyTime = DefaultSnapshotApplyTime
	}
	if c.SnapshotBytes == 0 {
		c.SnapshotBytes = DefaultSnapshotBytes
	}
	if c.SnapshotKeep == 0 {
		c.SnapshotKeep = DefaultSnapshotKeep
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Core is a running core. Its methods are safe for concurrent use.
type Core struct {
	cfg   Config
	j     *journal.Journal
	heads *tree.Signer // signs the journal's tree heads
	log   *slog.Logger

	headMu   sync.Mutex // guards lastHead and lastNote
	lastHead tree.Head  // the head signed last
	lastNote []byte     // its signed note

	mu    sync.RWMutex // guards state
	state *State

	in      chan *request
	applyCh chan *durableBatch
	quit    chan struct{}
	stopped chan struct{}
	wg      sync.WaitGroup

	failMu sync.Mutex
	err    error // set once the journal failed

	snapKey  []byte // authenticates snapshots
	lastSnap uint64 // seq of the newest snapshot written or loaded
	// lastIncident is the seq of the newest snapshot before a halt or an
	// incident.
	lastIncident uint64
	snapBytes    uint64        // payload applied since
	snapSize     uint64        // size of the newest snapshot written
	snapWrite    time.Duration // how long writing it took
	applyTime    time.Duration // time spent applying since
	snapEnded    time.Time     // when it was written

	verified  chan struct{} // closed when the background verification ends
	verifyErr error         // its finding, read after verified closes

	baead   cipher.AEAD // authenticates the balance log
	blog    *balWriter  // the balance log; nil while it is rebuilt (mu)
	rebuilt chan struct{}
	ckptState
	startRecState

	stopOnce sync.Once
}

type request struct {
	at      int64
	kind    Kind
	payload []byte
	done    chan response
}

type response struct {
	out Outcome
	err error
}

type durableBatch struct {
	b       *journal.Batch
	entries []journal.Entry
	reqs    []*request
}

// Open opens the data directory, rebuilds the state from the newest good
// snapshot and the journal after it, and starts the pipeline. It verifies
// the whole hash chain as it goes and refuses to start on a bad entry.
func Open(ctx context.Context, cfg Config) (*Core, error) {
	cfg.fill()
	began := time.Now()
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("core: %w", err)
	}
	heads, err := LoadHeadSignerIn(cfg.SecretsDir, cfg.Dir)
	if err != nil {
		return nil, err
	}
	j, err := journal.Open(filepath.Join(cfg.Dir, "journal"), journal.Options{NoSync: cfg.NoSync})
	if err != nil {
		return nil, err
	}
	key, err := snapshotKey(cfg.SecretsDir, cfg.Dir)
	if err != nil {
		j.Close()
		return nil, err
	}
	head, _, _ := j.Head()
	var from uint64
	var loaded, balOpened time.Time
	opened := time.Now()
	baead := balanceAEAD(key)
	// The balance log (holdings at any moment): verified and cut to its
	// last good chunk; if it reaches the state the start begins from, the
	// start's replay writes the rest, otherwise it is rebuilt from the
	// journal in the background.
	blog, err := openBalWriter(cfg.Dir, baead, j, cfg.Logger)
	if err != nil {
		cfg.Logger.Warn("balance log unusable: rebuilt from the journal", "err", err)
	}
	balOpened = time.Now()
	st, err := rebuild(ctx, cfg.Dir, key, j, head, cfg.VerifyAtStart, cfg.Logger, cfg.Progress, func(s *State) func(*State, *journal.Entry) {
		from, loaded = s.seq, time.Now()
		s.Ledger.Reserve(cfg.ReserveAccounts, cfg.ReserveTransfers)
		if blog == nil {
			return nil
		}
		if blog.lastSeq < s.seq {
			blog.close()
			blog = nil
			return nil
		}
		blog.assets = s.Ledger.AssetCount()
		s.Ledger.TrackChanges(true)
		return func(s *State, e *journal.Entry) {
			blog.add(s, e)
			if blog.full() {
				blog.flush()
			}
		}
	})
	if err == nil && blog != nil {
		err = blog.flush()
	}
	if err != nil {
		if blog != nil {
			blog.close()
		}
		j.Close()
		return nil, err
	}
	c := &Core{
		cfg:     cfg,
		j:       j,
		heads:   heads,
		log:     cfg.Logger,
		state:   st,
		in:      make(chan *request, queueLen),
		applyCh: make(chan *durableBatch, applyQueueLen),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),

		snapKey:  key,
		lastSnap: from,
		verified: make(chan struct{}),

		baead:   baead,
		blog:    blog,
		rebuilt: make(chan struct{}),
	}
	c.ckptCh, c.ckptDone = make(chan ckptJob, 1), make(chan struct{})
	c.startRecDone = make(chan struct{})
	go c.checkpointLoop()
	if blog == nil {
		close(c.startRecDone)
		go c.rebuildBalances()
	} else {
		// A checkpoint due is taken after the first batch, not here:
		// the start does not wait for its copy. The start record
		// (where the next start checks the log from) is written
		// once the log is synced, off the start's path too.
		go c.recordStart(blog.f, blog.point())
		close(c.rebuilt)
	}
	if from == 0 || cfg.VerifyAtStart {
		// The replay from the first entry verified everything.
		close(c.verified)
	} else {
		go c.verifyBelow(head)
	}
	c.wg.Add(2)
	go c.commitLoop()
	go c.applyLoop()
	go func() { c.wg.Wait(); close(c.stopped) }()
	// Where the start's time went, for the benchmarks (docs/benchmarks.md
	// "Answers in a second"): the journal's open, the balance log's check,
	// the snapshot's load and the tail's replay.
	c.log.Info("core started", "dir", cfg.Dir, "seq", st.seq, "snapshot", from, "tail", st.seq-from,
		"journal", opened.Sub(began).Round(time.Millisecond), "balance_log", balOpened.Sub(opened).Round(time.Millisecond),
		"snapshot_load", loaded.Sub(balOpened).Round(time.Millisecond), "replay", time.Since(loaded).Round(time.Millisecond),
		"took", time.Since(began).Round(time.Millisecond))
	return c, nil
}

// rebuild returns the state as of seq: the newest good snapshot at or before
// seq, then the journal after it. With verifyAll it checks the chain from the
// first entry even below the snapshot.
// prepare, if not nil, is called on the starting state before the replay;
// the function it returns, if not nil, after each entry the replay applies.
// progress, if not nil, is told every progressEvery entries (and at the
// end) how many of the entries to replay are done.
func rebuild(ctx context.Context, dir string, key []byte, j *journal.Journal, seq uint64, verifyAll bool, log *slog.Logger, progress func(done, total uint64), prepare func(*State) func(*State, *journal.Entry)) (*State, error) {
	st, err := loadSnapshot(dir, key, j, seq, log)
	if err != nil {
		return nil, err
	}
	var applied func(*State, *journal.Entry)
	if prepare != nil {
		applied = prepare(st)
	}
	from := st.seq + 1
	if verifyAll {
		from = 1
	}
	total := uint64(0)
	if seq >= from {
		total = seq - from + 1
	}
	err = replay(ctx, j, from, seq, func(e *journal.Entry) error {
		if progress != nil && (e.Seq-from+1)%progressEvery == 0 {
			progress(e.Seq-from+1, total)
		}
		if e.Seq <= st.seq {
			if e.Seq == st.seq && e.Hash != st.hash {
				return &journal.BadEntryError{Seq: e.Seq, Reason: "differs from the snapshot"}
			}
			return nil
		}
		st.Apply(e)
		if applied != nil {
			applied(st, e)
		}
		if invariantsBuild {
			if err := st.CheckInvariants(); err != nil {
				panic(err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if st.seq != seq {
		return nil, &journal.BadEntryError{Seq: st.seq + 1, Reason: fmt.Sprintf("journal ends at %d, wanted %d", st.seq, seq)}
	}
	if progress != nil {
		progress(total, total)
	}
	return st, nil
}

// loadSnapshot returns the state of the newest good snapshot at or before
// seq, or the empty state. A snapshot is good when its tag verifies under
// key and the entry hash and the Merkle root it records are the journal's
// at its seq; any other is passed over with a warning.
func loadSnapshot(dir string, key []byte, j *journal.Journal, seq uint64, log *slog.Logger) (*State, error) {
	files, err := snapshotFiles(dir)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if f.seq > seq || f.seq == 0 {
			continue
		}
		if key == nil {
			log.Warn("snapshots passed over: no head key to authenticate them", "dir", dir)
			break
		}
		snap, root, err := readSnapshot(dir, key, f)
		if err == nil {
			var e journal.Entry
			if e, err = j.Get(f.seq); err == nil && e.Hash != snap.hash {
				err = fmt.Errorf("%w: %d: entry hash differs from the journal's", ErrSnapshotCorrupt, f.seq)
			}
		}
		if err == nil {
			var r tree.Hash
			if r, err = j.RootAt(f.seq); err == nil && r != root {
				err = fmt.Errorf("%w: %d: the journal's Merkle root at its size differs", ErrSnapshotCorrupt, f.seq)
			}
		}
		if err != nil {
			log.Warn("snapshot passed over", "seq", f.seq, "err", err)
			continue
		}
		return snap, nil
	}
	return NewState(), nil
}

// verifyBelow verifies the journal from its first entry to entry head (the
// head at start), in the background: every entry's hash and link and the
// Merkle tree, as a start from the first entry would. If it does not
// verify the core fails closed: it acknowledges nothing more.
func (c *Core) verifyBelow(head uint64) {
	defer close(c.verified)
	var n uint64
	err := c.j.Scan(1, func(e journal.Entry) error {
		if e.Seq > head {
			return journal.ErrStop
		}
		n = e.Seq
		select {
		case <-c.quit:
			return ErrClosed
		default:
		}
		return nil
	})
	if err == nil && n != head {
		err = &journal.BadEntryError{Seq: n + 1, Reason: fmt.Sprintf("journal ends at %d, its head was %d", n, head)}
	}
	c.verifyErr = err
	if errors.Is(err, ErrClosed) {
		return
	}
	if err != nil {
		c.failMu.Lock()
		if c.err == nil {
			c.err = fmt.Errorf("%w: the journal below the snapshot the core started from does not verify: %v", ErrJournalFailed, err)
		}
		c.failMu.Unlock()
		c.log.Error("journal does not verify; core fails closed", "err", err)
		return
	}
	c.log.Info("journal verified", "entries", head)
}

// Verified waits for the verification of the journal below the snapshot
// the core started from (at once when it started by replaying from the
// first entry) and returns its finding: nil, or the *journal.BadEntryError
// after which the core acknowledges nothing more. It returns ErrClosed if
// the core closed first.
func (c *Core) Verified(ctx context.Context) error {
	select {
	case <-c.verified:
		return c.verifyErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// progressEvery is how often the replay at start says how far it is.
const progressEvery = 4096

// replayBatch is a run of verified entries whose payloads live in buf.
type replayBatch struct {
	entries []journal.Entry
	buf     []byte
}

// Bounds of the replay pipeline.
const (
	replayBatchEntries = 1024
	replayBatchBytes   = 1 << 20
	replayBuffers      = 4
)

// replay calls fn for each entry from seq from to seq to, in order. Reading
// and checking the chain (journal.Scan) runs on one goroutine and fn on the
// caller's, so that hashing and applying use both cores. The reader exits
// when the scan ends, fails, or done closes.
func replay(ctx context.Context, j *journal.Journal, from, to uint64, fn func(e *journal.Entry) error) error {
	full := make(chan *replayBatch, replayBuffers)
	free := make(chan *replayBatch, replayBuffers)
	for i := 0; i < replayBuffers; i++ {
		free <- &replayBatch{buf: make([]byte, 0, replayBatchBytes)}
	}
	done := make(chan struct{})
	defer close(done)
	errc := make(chan error, 1)
	go func() {
		defer close(full)
		var b *replayBatch
		send := func() bool {
			if b == nil || len(b.entries) == 0 {
				return true
			}
			select {
			case full <- b:
				b = nil
				return true
			case <-done:
				return false
			}
		}
		err := j.Scan(from, func(e journal.Entry) error {
			if e.Seq > to {
				return journal.ErrStop
			}
			if b != nil && (len(b.entries) == replayBatchEntries || len(b.buf)+len(e.Payload) > cap(b.buf)) {
				if !send() {
					return journal.ErrStop
				}
			}
			if b == nil {
				select {
				case b = <-free:
				case <-done:
					return journal.ErrStop
				}
				b.entries, b.buf = b.entries[:0], b.buf[:0]
			}
			if len(e.Payload) > cap(b.buf) {
				// A payload larger than a buffer gets its own copy.
				e.Payload = append([]byte(nil), e.Payload...)
			} else {
				n := len(b.buf)
				b.buf = append(b.buf, e.Payload...)
				e.Payload = b.buf[n:len(b.buf):len(b.buf)]
			}
			b.entries = append(b.entries, e)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return nil
		})
		if err == nil {
			send()
		}
		errc <- err
	}()
	for b := range full {
		for i := range b.entries {
			if err := fn(&b.entries[i]); err != nil {
				return err
			}
		}
		free <- b
	}
	return <-errc
}

// Submit journals cmd with the submitter's time at and applies it. It
// returns once the command is durable and applied. A command that does not
// encode validly is refused before the journal with ErrCommandInvalid.
func (c *Core) Submit(ctx context.Context, at time.Time, cmd Command) (Outcome, error) {
	return c.SubmitRaw(ctx, at.UnixNano(), cmd.Kind(), cmd.AppendPayload(nil))
}

// Do is Submit with one error for everything that went wrong: the
// journal's, the apply's refusal (Outcome.Err) or the first ledger event
// that failed (Outcome.EventErr).
func (c *Core) Do(ctx context.Context, at time.Time, cmd Command) (Outcome, error) {
	o, err := c.Submit(ctx, at, cmd)
	if err == nil {
		err = o.EventErr()
	}
	return o, err
}

// SubmitRaw is Submit for an encoded payload; at is unix nanoseconds.
func (c *Core) SubmitRaw(ctx context.Context, at int64, kind Kind, payload []byte) (Outcome, error) {
	if len(payload) > journal.MaxPayload {
		return Outcome{}, invalid("payload of %d bytes exceeds %d", len(payload), journal.MaxPayload)
	}
	if kind == KindCreateTransfers {
		if _, _, err := batchCount(payload, ledger.TransferSize); err != nil {
			return Outcome{}, err
		}
	} else if _, err := DecodeCommand(uint16(kind), payload); err != nil {
		return Outcome{}, err
	}
	if err := c.failed(); err != nil {
		return Outcome{}, err
	}
	r := &request{at: at, kind: kind, payload: payload, done: make(chan response, 1)}
	select {
	case c.in <- r:
	case <-c.quit:
		return Outcome{}, ErrClosed
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
	select {
	case res := <-r.done:
		return res.out, res.err
	case <-c.stopped:
		select {
		case res := <-r.done:
			return res.out, res.err
		default:
			return Outcome{}, ErrClosed
		}
	case <-ctx.Done():
		return Outcome{}, fmt.Errorf("%w: %v", ErrOutcomeUnknown, ctx.Err())
	}
}

func (c *Core) failed() error {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	return c.err
}

func (c *Core) fail(err error) {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	if c.err == nil {
		c.err = fmt.Errorf("%w: %v", ErrJournalFailed, err)
		c.log.Error("journal write failed; core fails closed", "err", err)
	}
}

// commitLoop is the committer. It exits when quit closes, after answering
// every request it has taken.
func (c *Core) commitLoop() {
	defer c.wg.Done()
	defer close(c.applyCh)
	seq, prev, lastTime := c.j.Head()
	for {
		var first *request
		select {
		case first = <-c.in:
		case <-c.quit:
			c.drainClosed()
			return
		}
		reqs := []*request{first}
		size := len(first.payload)
	gather:
		for len(reqs) < MaxBatchEntries && size < maxBatchBytes {
			select {
			case r := <-c.in:
				reqs = append(reqs, r)
				size += len(r.payload)
			default:
				break gather
			}
		}
		if err := c.failed(); err != nil {
			answer(reqs, err)
			continue
		}
		b := c.j.NewBatch()
		entries := make([]journal.Entry, 0, len(reqs))
		s, p, lt := seq, prev, lastTime
		var err error
		for _, r := range reqs {
			t := r.at
			if t < lt {
				// Entry times never decrease, so that point-in-time
				// search by time is a binary search.
				t = lt
			}
			s++
			var e journal.Entry
			if e, err = b.Add(p, s, t, uint16(r.kind), r.payload); err != nil {
				break
			}
			entries = append(entries, e)
			p, lt = e.Hash, t
		}
		if err == nil {
			err = c.j.Commit(b)
		}
		if err != nil {
			b.Close()
			c.fail(err)
			answer(reqs, c.failed())
			continue
		}
		seq, prev, lastTime = s, p, lt
		c.applyCh <- &durableBatch{b: b, entries: entries, reqs: reqs}
	}
}

func (c *Core) drainClosed() {
	for {
		select {
		case r := <-c.in:
			r.done <- response{err: ErrClosed}
		default:
			return
		}
	}
}

func answer(reqs []*request, err error) {
	for _, r := range reqs {
		r.done <- response{err: err}
	}
}

// applyLoop is the applier. It exits when the committer closes applyCh.
func (c *Core) applyLoop() {
	defer c.wg.Done()
	for db := range c.applyCh {
		outs := make([]Outcome, len(db.entries))
		c.mu.Lock()
		began := time.Now()
		for i := range db.entries {
			if k := Kind(db.entries[i].Kind); (k == KindHalt || k == KindOpenIncident) && c.state.seq > c.lastIncident && c.snapBytes >= incidentSnapBytes {
				// The state at the moment of an incident, before its
				// halt: what holdings and compensation ask for. Not
				// when a snapshot is already a short replay away (the
				// halts and incidents that follow the first).
				c.snapshot(true)
			}
			o := c.state.Apply(&db.entries[i])
			c.balApplied(&db.entries[i])
			c.snapBytes += uint64(len(db.entries[i].Payload))
			if len(o.Events) > 0 {
				o.Events = append([]ledger.Result(nil), o.Events...)
			}
			outs[i] = o
			if c.cfg.CheckInvariants || invariantsBuild {
				if err := c.state.CheckInvariants(); err != nil {
					c.log.Error("invariant broken", "err", err)
					panic(err)
				}
			}
			if c.state.seq%c.cfg.SnapshotEvery == 0 || c.snapBytes >= max(c.cfg.SnapshotBytes, c.snapSize/2) || executionDone(o) {
				c.snapshot(false)
			}
		}
		// Work the journal's payload does not show (a compensation's
		// execution pays thousands a small entry): once applying since
		// the last snapshot took longer than SnapshotApplyTime, or than
		// writing the last snapshot did, whichever is more, a snapshot,
		// so that a start after a crash replays about that long at most
		// and snapshots take at most half the applier's time. The clock
		// is read here, outside apply: when a snapshot is taken changes
		// no state.
		if c.snapEnded.After(began) {
			began = c.snapEnded // a snapshot in the batch: its time is not applying
		}
		if c.applyTime += time.Since(began); c.applyTime >= max(c.cfg.SnapshotApplyTime, c.snapWrite) && c.state.seq > c.lastSnap {
			c.snapshot(false)
		}
		// The balance log: written before the batch is acknowledged, so
		// that holdings at an acknowledged entry find it there.
		c.balFlush()
		c.mu.Unlock()
		for i, r := range db.reqs {
			r.done <- response{out: outs[i]}
		}
		if c.cfg.Alert != nil {
			for i := range outs {
				c.alertOf(&db.entries[i], outs[i])
			}
		}
		if c.cfg.Audit != nil {
			// Before the batch is closed: the entries' payloads may be
			// its memory.
			for i := range db.entries {
				c.cfg.Audit(auditOf(&db.entries[i], &outs[i]))
			}
		}
		db.b.Close()
	}
}

// executionDone reports the entry that paid a compensation plan's last
// part: a snapshot is taken after it, so that a start after a crash does
// not replay the whole execution (a payment to every holder, its
// applying time hidden in small entries) and the moment after the
// compensation is a snapshot of its own.
func executionDone(o Outcome) bool {
	r, ok := o.Value.(*ExecutionResult)
	return ok && o.Err == nil && r.Done
}

// alertOf raises the alerts an applied entry calls for.
func (c *Core) alertOf(e *journal.Entry, o Outcome) {
	res, ok := o.Value.(*ExecutionResult)
	if !ok || o.Err != nil {
		return
	}
	for _, sf := range res.Shortfalls {
		c.cfg.Alert(alert.Alert{Key: "shortfall:" + sf.Incident, Severity: alert.Critical, Title: "customer side short after a compensation plan",
			Detail: fmt.Sprintf("%s: customer liabilities %s, customer-side holdings %s, short by %s base units (entry %d, incident %s)",
				sf.Asset, sf.Liabilities, sf.Holdings, sf.Short, e.Seq, sf.Incident), Time: time.Unix(0, e.Time).UTC()})
	}
}

// auditOf is the audit record of an applied entry.
func auditOf(e *journal.Entry, o *Outcome) AuditRecord {
	r := AuditRecord{Seq: e.Seq, Time: e.Time, Kind: Kind(e.Kind), Err: o.EventErr()}
	if r.Kind != KindCreateTransfers {
		if cmd, err := DecodeCommand(e.Kind, e.Payload); err == nil {
			r.Command, r.Actor = cmd, Actor(cmd)
		}
	}
	return r
}

// Err returns why the core fails closed (ErrJournalFailed: the journal
// could not be written), nil while it journals.
func (c *Core) Err() error { return c.failed() }

// snapshot writes a snapshot of the state; the caller holds mu. A failed
// snapshot is logged: snapshots are a cache, the journal is the record.
func (c *Core) snapshot(incident bool) {
	began := time.Now()
	defer func() { c.snapEnded = time.Now(); c.snapWrite, c.applyTime = c.snapEnded.Sub(began), 0 }()
	c.snapBytes = 0
	c.lastSnap = c.state.seq
	if incident {
		c.lastIncident = c.state.seq
	}
	// The balance log first reaches the snapshot, durably: a snapshot is
	// taken in the middle of the applier's batch, whose frames the log
	// writes at its end, and the log is not synced otherwise. A crash
	// (of the process, or of the host) just after the snapshot would
	// leave a log that ends before it, and the next start would rebuild
	// the log from the journal's first entry (a second state replaying
	// the whole journal beside the serving core) instead of appending
	// the tail.
	c.balSync()
	root, err := c.j.RootAt(c.state.seq)
	if err == nil {
		var n int64
		n, err = writeSnapshot(c.cfg.Dir, c.snapKey, c.state, root, incident)
		c.snapSize = uint64(n)
	}
	if err != nil {
		c.log.Warn("snapshot failed", "seq", c.state.seq, "err", err)
		return
	}
	if snapshotWritten != nil {
		snapshotWritten(c.state.seq)
	}
	if err := pruneSnapshots(c.cfg.Dir, c.cfg.SnapshotKeep); err != nil {
		c.log.Warn("snapshot prune failed", "err", err)
	}
}

// snapshotWritten, if set, is called on the applier just after each
// snapshot the core writes is in place (for tests: what a crash then
// leaves on disk).
var snapshotWritten func(seq uint64)

// Snapshot writes a snapshot of the current state now.
func (c *Core) Snapshot() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.balSync()
	root, err := c.j.RootAt(c.state.seq)
	if err != nil {
		return err
	}
	_, err = writeSnapshot(c.cfg.Dir, c.snapKey, c.state, root, false)
	return err
}

// Read calls fn with the current state under a read lock. fn must not keep
// the state or change it.
func (c *Core) Read(fn func(s *State)) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	fn(c.state)
}

// StateHash returns the current state's hash and the seq it is at.
func (c *Core) StateHash() (uint64, journal.Hash) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.state.seq, c.state.Hash()
}

// Journal returns the core's journal, for reads.
func (c *Core) Journal() *journal.Journal { return c.j }

// StateAt returns a new state as of entry seq (0 is the empty state), built
// from the newest snapshot at or before it and the journal.
func (c *Core) StateAt(ctx context.Context, seq uint64) (*State, error) {
	return stateAt(ctx, c.cfg.Dir, c.snapKey, c.j, seq)
}

// StateAtTime returns a new state as of time t: every entry at or before t
// applied, none after. A time after now is ErrFuture; before the first entry,
// ErrBeforeJournal.
func (c *Core) StateAtTime(ctx context.Context, t, now time.Time) (*State, error) {
	return stateAtTime(ctx, c.cfg.Dir, c.snapKey, c.j, t, now)
}

// StateAt returns the state as of seq from a data directory's journal and
// snapshots; the library call behind point-in-time queries. Snapshots are
// authenticated with the head key in the data directory's default secrets
// directory; without it they are passed over and the journal replayed.
func StateAt(ctx context.Context, dir string, j *journal.Journal, seq uint64) (*State, error) {
	return stateAt(ctx, dir, readKey(dir), j, seq)
}

func readKey(dir string) []byte {
	key, err := snapshotKey("", dir)
	if err != nil {
		return nil
	}
	return key
}

func stateAt(ctx context.Context, dir string, key []byte, j *journal.Journal, seq uint64) (*State, error) {
	if head, _, _ := j.Head(); seq > head {
		return nil, fmt.Errorf("%w: %d > %d", ErrFuture, seq, head)
	}
	return rebuild(ctx, dir, key, j, seq, false, slog.New(slog.DiscardHandler), nil, nil)
}

// StateAtTime returns the state as of time t; see Core.StateAtTime.
func StateAtTime(ctx context.Context, dir string, j *journal.Journal, t, now time.Time) (*State, error) {
	return stateAtTime(ctx, dir, readKey(dir), j, t, now)
}

func stateAtTime(ctx context.Context, dir string, key []byte, j *journal.Journal, t, now time.Time) (*State, error) {
	seq, err := seqAtTime(j, t, now)
	if err != nil {
		return nil, err
	}
	return stateAt(ctx, dir, key, j, seq)
}

// seqAtTime is the last entry at or before time t.
func seqAtTime(j *journal.Journal, t, now time.Time) (uint64, error) {
	if t.After(now) {
		return 0, fmt.Errorf("%w: %s", ErrFuture, t.Format(time.RFC3339Nano))
	}
	first, err := j.Get(1)
	if errors.Is(err, journal.ErrNotFound) || (err == nil && t.UnixNano() < first.Time) {
		return 0, fmt.Errorf("%w: %s", ErrBeforeJournal, t.Format(time.RFC3339Nano))
	}
	if err != nil {
		return 0, err
	}
	return j.SeqAtTime(t.UnixNano())
}

// Close stops the pipeline after the batches in flight, answers queued
// commands with ErrClosed, writes a snapshot of the state if it moved since
// the last one (the next start then has no tail to replay), and closes the
// journal.
func (c *Core) Close() error {
	var err error
	c.stopOnce.Do(func() {
		close(c.quit)
		<-c.stopped
		<-c.verified // the verification below the snapshot sees quit and stops
		<-c.startRecDone
		if c.state.seq > c.lastSnap && c.snapKey != nil {
			// A snapshot of where the core stopped, so that the next
			// start has no tail to replay.
			c.mu.Lock()
			c.snapshot(false)
			c.mu.Unlock()
		}
		<-c.rebuilt
		// The balance log synced and its start record at its end.
		c.mu.Lock()
		c.balSync()
		c.mu.Unlock()
		close(c.ckptCh)
		<-c.ckptDone
		if c.blog != nil {
			c.blog.close()
		}
		err = c.j.Close()
		c.log.Info("core stopped")
	})
	return err
}

// GCPercent is the garbage collector's target the core runs with (Go's
// default is 100). The core's state is large, long-lived and almost free
// of pointers, while the hot path allocates almost nothing: collecting at
// every doubling of a small young heap only steals a core from the apply.
// GOGC in the environment overrides it.
const GCPercent = 400

// TuneGC sets the collector's target to GCPercent unless GOGC is set.
func TuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
}
