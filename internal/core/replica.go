package core

import (
	"errors"
	"fmt"

	"kinko/internal/journal"
)

// ErrReplicaBroken reports a stream of entries that does not chain onto
// the replica's head: the replica stops for good.
var ErrReplicaBroken = errors.New("core: replica: journal chain broken")

// Replica is a copy of the state kept, in another process, from the
// journal's entries: each one is checked (its own hash, then that it
// follows the head) before the core's deterministic apply runs on it, so
// the replica's state is the core's at the same sequence number. The
// co-signer and a separate watcher keep one. Not safe for concurrent use.
type Replica struct {
	st     *State
	broken error
}

// NewReplica returns a replica at the empty journal.
func NewReplica() *Replica { return &Replica{st: NewState()} }

// State returns the replica's state. Callers must not change it.
func (r *Replica) State() *State { return r.st }

// Broken returns why the replica stopped, or nil.
func (r *Replica) Broken() error { return r.broken }

// Ingest checks and applies one encoded entry, returning it with the
// outcome of its apply. A break is permanent.
func (r *Replica) Ingest(raw []byte) (journal.Entry, Command, Outcome, error) {
	if r.broken != nil {
		return journal.Entry{}, nil, Outcome{}, r.broken
	}
	e, err := journal.DecodeChecked(raw)
	if err == nil && (e.Seq != r.st.Seq()+1 || e.Prev != r.st.Head()) {
		err = fmt.Errorf("entry %d does not follow entry %d", e.Seq, r.st.Seq())
	}
	var cmd Command
	if err == nil {
		cmd, err = DecodeCommand(e.Kind, e.Payload)
	}
	if err != nil {
		r.broken = fmt.Errorf("%w: %v", ErrReplicaBroken, err)
		return journal.Entry{}, nil, Outcome{}, r.broken
	}
	return e, cmd, r.st.Apply(&e), nil
}
