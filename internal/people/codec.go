package people

import (
	"encoding/json"
	"fmt"

	"kinko/internal/ledger"
	"kinko/internal/passkey"
)

// snapshot is the deterministic encoding: slices in the order things
// happened, never maps.
type snapshot struct {
	Customers []Customer       `json:"customers"`
	Operators []Operator       `json:"operators"`
	Sessions  []Session        `json:"sessions"`
	Requests  []Request        `json:"requests"`
	Reviews   []Review         `json:"reviews"`
	Proposed  []ledger.AssetID `json:"proposed"`
	RP        passkey.RP       `json:"rp"`
	Used      [][32]byte       `json:"used,omitempty"`
	Notices   []Notice         `json:"notices,omitempty"`
}

// MarshalJSON encodes the state deterministically.
func (s *State) MarshalJSON() ([]byte, error) {
	snap := snapshot{Customers: s.customers, Operators: s.operators, Requests: s.requests, Reviews: s.reviews, Proposed: s.Proposed(), RP: s.rp, Used: s.usedOrder, Notices: s.notices}
	for _, h := range s.sessOrder {
		snap.Sessions = append(snap.Sessions, *s.sessions[h])
	}
	return json.Marshal(snap)
}

// Decode rebuilds a state from its encoding.
func Decode(b []byte) (*State, error) {
	var snap snapshot
	if len(b) > 0 {
		if err := json.Unmarshal(b, &snap); err != nil {
			return nil, fmt.Errorf("people: decode: %w", err)
		}
	}
	s := New()
	for _, c := range snap.Customers {
		if _, dup := s.custIdx[c.ID]; dup {
			return nil, fmt.Errorf("people: decode: customer %d twice", c.ID)
		}
		s.custIdx[c.ID] = len(s.customers)
		s.emails[c.Email] = c.ID
		s.customers = append(s.customers, c)
	}
	for _, o := range snap.Operators {
		if _, dup := s.opIdx[o.Name]; dup {
			return nil, fmt.Errorf("people: decode: operator %s twice", o.Name)
		}
		s.opIdx[o.Name] = len(s.operators)
		s.operators = append(s.operators, o)
	}
	for _, ss := range snap.Sessions {
		s.addSession(ss, 0)
	}
	for _, r := range snap.Requests {
		s.reqIdx[r.ID] = len(s.requests)
		s.requests = append(s.requests, r)
	}
	s.reviews = snap.Reviews
	for i, n := range snap.Notices {
		if i > 0 && n.Seq < snap.Notices[i-1].Seq {
			return nil, fmt.Errorf("people: decode: notices out of order at %d", n.Seq)
		}
	}
	s.notices = snap.Notices
	s.rp = snap.RP
	for _, d := range snap.Used {
		if _, dup := s.used[d]; dup {
			return nil, fmt.Errorf("people: decode: signed digest %x twice", d)
		}
		s.used[d] = struct{}{}
		s.usedOrder = append(s.usedOrder, d)
	}
	for _, id := range snap.Proposed {
		s.proposed[id] = true
		s.proposedAt = append(s.proposedAt, id)
	}
	return s, nil
}
