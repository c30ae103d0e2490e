// Package incident is the journaled record of incidents: what was detected,
// by whom, the offending transactions, and the notes and plans that follow.
// The first alert opens one; it gathers everything after.
package incident

import (
	"errors"
	"fmt"

	"kinko/internal/withdraw"
)

// Incident is an incident record.
type Incident struct {
	ID       string   `json:"id"`
	Asset    string   `json:"asset"`
	Detector string   `json:"detector"` // "watcher", "reconciliation", or an operator
	Reason   string   `json:"reason"`
	TxIDs    []string `json:"txids,omitempty"`
	// Loss is what the incident cost, in base units of Asset, as its
	// detector measured it: the outputs of ours its transactions spent
	// (the watcher), a shortfall's size (reserves). Reopening it with new
	// transactions adds theirs. 128 bits (wei: 2^64-1 is 18.4 ether),
	// journaled as a bare JSON number as when it was 64-bit.
	Loss     withdraw.Amount `json:"loss,omitzero"`
	Opened   int64           `json:"opened"` // unix ns of the journal entry
	Seq      uint64          `json:"seq"`
	Closed   int64           `json:"closed,omitempty"`
	ClosedBy string          `json:"closed_by,omitempty"`
	Notes    []Note          `json:"notes,omitempty"`
}

// Note is an operator's note on an incident, or its closing reason.
type Note struct {
	Time  int64  `json:"time"`
	Seq   uint64 `json:"seq"`
	Actor string `json:"actor"`
	Text  string `json:"text"`
}

// MaxNote bounds a note.
const MaxNote = 4096

// AddNote records a note.
func (s *State) AddNote(id, actor, text string, t int64, seq uint64) error {
	i, ok := s.idx[id]
	if !ok {
		return ErrUnknown
	}
	if actor == "" || text == "" || len(text) > MaxNote {
		return fmt.Errorf("%w: a note needs an actor and 1-%d bytes of text", ErrInvalid, MaxNote)
	}
	s.list[i].Notes = append(s.list[i].Notes, Note{Time: t, Seq: seq, Actor: actor, Text: text})
	return nil
}

// Close closes an incident with its reason, as a last note.
func (s *State) Close(id, actor, reason string, t int64, seq uint64) error {
	i, ok := s.idx[id]
	if !ok {
		return ErrUnknown
	}
	if s.list[i].Closed != 0 {
		return ErrClosed
	}
	if err := s.AddNote(id, actor, "closed: "+reason, t, seq); err != nil {
		return err
	}
	s.list[i].Closed, s.list[i].ClosedBy = t, actor
	return nil
}

// Errors.
var (
	ErrExists  = errors.New("incident: id exists")
	ErrInvalid = errors.New("incident: invalid")
	ErrUnknown = errors.New("incident: unknown incident")
	ErrClosed  = errors.New("incident: already closed")
)

// State holds the incidents in the order opened.
type State struct {
	list []Incident
	idx  map[string]int
}

// New returns an empty state.
func New() *State { return &State{idx: map[string]int{}} }

// Open records an incident; opening the same id again adds its
// transactions (detectors may report one theft in several steps).
func (s *State) Open(in Incident, t int64, seq uint64) error {
	if in.ID == "" || len(in.ID) > 128 || in.Detector == "" || in.Reason == "" || len(in.TxIDs) > 1000 {
		return fmt.Errorf("%w: id, detector and reason are required", ErrInvalid)
	}
	if i, ok := s.idx[in.ID]; ok {
		cur := &s.list[i]
		added := false
	next:
		for _, tx := range in.TxIDs {
			for _, have := range cur.TxIDs {
				if have == tx {
					continue next
				}
			}
			cur.TxIDs, added = append(cur.TxIDs, tx), true
		}
		if added {
			cur.Loss = cur.Loss.AddSat(in.Loss)
		}
		return nil
	}
	in.Opened, in.Seq, in.Closed = t, seq, 0
	s.idx[in.ID] = len(s.list)
	s.list = append(s.list, in)
	return nil
}

// Names tells whether an incident already names the transaction txid.
func (s *State) Names(txid string) bool {
	for _, in := range s.list {
		for _, t := range in.TxIDs {
			if t == txid {
				return true
			}
		}
	}
	return false
}

// List returns the incidents, oldest first.
func (s *State) List() []Incident { return append([]Incident(nil), s.list...) }

// Get returns an incident.
func (s *State) Get(id string) (Incident, bool) {
	i, ok := s.idx[id]
	if !ok {
		return Incident{}, false
	}
	return s.list[i], true
}

// Restore rebuilds the state.
func Restore(list []Incident) *State {
	s := New()
	for _, in := range list {
		s.idx[in.ID] = len(s.list)
		s.list = append(s.list, in)
	}
	return s
}
