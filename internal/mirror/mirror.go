// Package mirror keeps, on a follower's own host (the co-signer's, the
// watcher's), a durable copy of the core's journal as far as the follower
// verified it, and the follower's replica of the state rebuilt from it.
//
// A follower trusts what it verified itself, never what it is told later:
// each entry is checked (its hash, its link to the one before) before it is
// applied and written to the mirror, and every pull from the core first
// asks again for the newest entry the mirror holds. A core whose journal no
// longer holds that entry (shorter) or holds another one in its place
// (rewritten) is refused for good with ErrHistory: the mirror is the
// follower's checkpoint of the history it saw, and a restarted follower
// resumes from it rather than from the core's word.
package mirror

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"kinko/internal/core"
	"kinko/internal/journal"
	"kinko/internal/journal/tree"
	"kinko/internal/stream"
)

// ErrHistory reports a core whose journal is not the history the mirror
// verified: shorter than it, or different at an entry it holds.
var ErrHistory = errors.New("mirror: the core's journal is not the history this host verified")

// flushEvery bounds the entries ingested and not yet durable.
const flushEvery = 1024

// Applied is one entry as the replica applied it.
type Applied struct {
	Entry   journal.Entry
	Command core.Command
	Outcome core.Outcome
	// Replayed is set for entries read back from the mirror at Open,
	// verified before the restart.
	Replayed bool
}

// Mirror is a durable verified copy of the core's journal and the state
// replayed from it. It is not safe for concurrent use: callers serialize,
// and Pull takes the caller's lock around each entry.
type Mirror struct {
	j       *journal.Journal
	r       *core.Replica
	batch   *journal.Batch
	pending int
	broken  error
}

// Open opens (or creates) the mirror in dir and replays every entry it
// holds into a fresh replica, calling fn (if not nil) with each. A mirror
// that does not verify is an error: the host's own record is damaged.
func Open(dir string, noSync bool, fn func(Applied) error) (*Mirror, error) {
	j, err := journal.Open(dir, journal.Options{NoSync: noSync})
	if err != nil {
		return nil, err
	}
	m := &Mirror{j: j, r: core.NewReplica()}
	err = j.Scan(1, func(e journal.Entry) error {
		got, cmd, o, err := m.r.Ingest(e.Encode())
		if err != nil {
			return err
		}
		if fn != nil {
			return fn(Applied{Entry: got, Command: cmd, Outcome: o, Replayed: true})
		}
		return nil
	})
	if err == nil {
		if seq, h, _ := j.Head(); seq != m.r.State().Seq() || h != m.r.State().Head() {
			err = fmt.Errorf("mirror: ends at %d but its head is %d", m.r.State().Seq(), seq)
		}
	}
	if err != nil {
		j.Close()
		return nil, fmt.Errorf("mirror: %s: %w", dir, err)
	}
	m.batch = j.NewBatch()
	return m, nil
}

// State returns the replica's state. Callers must not change it.
func (m *Mirror) State() *core.State { return m.r.State() }

// Head returns the newest entry verified.
func (m *Mirror) Head() (uint64, journal.Hash) { return m.r.State().Seq(), m.r.State().Head() }

// TreeHead returns the head of the mirror's own Merkle tree: the entries
// it keeps durably (Origin empty). Safe to call while the mirror's owner
// ingests: it reads the journal, which allows reads beside its writer.
func (m *Mirror) TreeHead() tree.Head { return m.j.TreeHead() }

// RootAt returns the root of the mirror's tree of its first size entries,
// computed on this host from the entries it verified.
func (m *Mirror) RootAt(size uint64) (tree.Hash, error) { return m.j.RootAt(size) }

// EntryTime returns the time of the mirror's entry seq.
func (m *Mirror) EntryTime(seq uint64) (int64, error) {
	e, err := m.j.Get(seq)
	if err != nil {
		return 0, err
	}
	return e.Time, nil
}

// Broken returns why the mirror stopped following, or nil.
func (m *Mirror) Broken() error { return m.broken }

// Ingest verifies the encoded entry raw, applies it and adds it to the
// mirror (durable at the next Flush). A break is permanent.
func (m *Mirror) Ingest(raw []byte) (Applied, error) {
	if m.broken != nil {
		return Applied{}, m.broken
	}
	e, cmd, o, err := m.r.Ingest(raw)
	if err != nil {
		m.broken = err
		return Applied{}, err
	}
	sealed, err := m.batch.Add(e.Prev, e.Seq, e.Time, e.Kind, e.Payload)
	if err != nil || sealed.Hash != e.Hash {
		m.broken = fmt.Errorf("mirror: entry %d does not seal to its own hash: %v", e.Seq, err)
		return Applied{}, m.broken
	}
	m.pending++
	return Applied{Entry: e, Command: cmd, Outcome: o}, nil
}

// Flush makes every ingested entry durable.
func (m *Mirror) Flush() error {
	if m.pending == 0 {
		return nil
	}
	err := m.j.Commit(m.batch)
	m.batch.Close()
	m.batch, m.pending = m.j.NewBatch(), 0
	if err != nil {
		// The replica is ahead of the mirror now: stop rather than sign
		// on entries this host cannot keep.
		m.broken = fmt.Errorf("mirror: write: %w", err)
	}
	return err
}

// Check compares the newest entry the core serves at the mirror's head with
// the mirror's: the same bytes' hash, or ErrHistory.
func (m *Mirror) check(raw []byte) error {
	seq, head := m.Head()
	e, err := journal.DecodeChecked(raw)
	if err != nil {
		return fmt.Errorf("%w: its entry %d does not verify: %v", ErrHistory, seq, err)
	}
	if e.Seq != seq || e.Hash != head {
		return fmt.Errorf("%w: its entry %d has hash %s, this host verified %s", ErrHistory, seq, e.Hash, head)
	}
	return nil
}

// Pull reads from the core at base (with the stream token) what follows
// the mirror's head, verifying the head first, and ingests each entry with
// mu held, calling fn (if not nil) after each. It flushes before it
// returns. A core serving a shorter or different history breaks the mirror
// with ErrHistory; a core that does not answer is only an error.
func (m *Mirror) Pull(ctx context.Context, client *http.Client, base, token string, mu sync.Locker, fn func(Applied) error) (int, error) {
	mu.Lock()
	if m.broken != nil {
		mu.Unlock()
		return 0, m.broken
	}
	seq, _ := m.Head()
	mu.Unlock()
	from, checked := seq, seq == 0
	if from == 0 {
		from = 1
	}
	n := 0
	_, err := stream.Pull(ctx, client, base, token, from, func(raw []byte) error {
		mu.Lock()
		defer mu.Unlock()
		if !checked {
			checked = true
			if err := m.check(raw); err != nil {
				m.broken = err
				return err
			}
			return nil
		}
		a, err := m.Ingest(raw)
		if err != nil {
			return err
		}
		n++
		if m.pending >= flushEvery {
			if err := m.Flush(); err != nil {
				return err
			}
		}
		if fn != nil {
			return fn(a)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if ferr := m.Flush(); err == nil {
		err = ferr
	}
	if err == nil && !checked {
		m.broken = fmt.Errorf("%w: it ends before entry %d, which this host verified", ErrHistory, seq)
		err = m.broken
	}
	return n, err
}

// Close flushes and closes the mirror.
func (m *Mirror) Close() error {
	ferr := m.Flush()
	m.batch.Close()
	if err := m.j.Close(); err != nil {
		return err
	}
	return ferr
}
