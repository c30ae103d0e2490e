// Package controls is the journaled halt matrix: for each asset the
// services deposit, withdraw, trade and dealer; the yen channels bank, card,
// pay-easy and convenience store; and a global switch. Halting is one
// command by one actor (a person or a detector) with a reason, effective at
// once. Lifting needs two people: the one who asks and a different one who
// approves. Every part that moves value asks Allowed before it does.
package controls

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"kinko/internal/ledger"
)

// Service is one switch of an asset's row, or a yen channel.
type Service string

// Services and channels.
const (
	Deposit  Service = "deposit"
	Withdraw Service = "withdraw"
	Trade    Service = "trade"
	Dealer   Service = "dealer"

	Bank        Service = "bank"
	Card        Service = "card"
	PayEasy     Service = "pay-easy"
	Convenience Service = "convenience-store"

	// Global stops every service of every asset.
	Global Service = "global"
)

// AssetServices are the columns of the matrix.
var AssetServices = []Service{Deposit, Withdraw, Trade, Dealer}

// Channels are the yen deposit and withdrawal channels.
var Channels = []Service{Bank, Card, PayEasy, Convenience}

// Switch names one switch: an asset's service, a yen channel (Asset 0), or
// the global switch (Asset 0, Global).
type Switch struct {
	Asset   ledger.AssetID `json:"asset"`
	Service Service        `json:"service"`
}

func (s Switch) String() string {
	if s.Asset == 0 {
		return string(s.Service)
	}
	return fmt.Sprintf("asset %d %s", s.Asset, s.Service)
}

func (s Switch) valid() bool {
	if s.Service == Global || isChannel(s.Service) {
		return s.Asset == 0
	}
	for _, v := range AssetServices {
		if v == s.Service {
			return s.Asset != 0
		}
	}
	return false
}

func isChannel(v Service) bool {
	for _, c := range Channels {
		if c == v {
			return true
		}
	}
	return false
}

// Halt is a switch that is off.
type Halt struct {
	Switch Switch `json:"switch"`
	Actor  string `json:"actor"` // an operator, or a detector such as "watcher"
	Reason string `json:"reason"`
	Since  int64  `json:"since"` // unix ns, the entry's time
	Seq    uint64 `json:"seq"`   // the journal entry that halted it
}

// Lift records a halt that was lifted.
type Lift struct {
	Halt      Halt   `json:"halt"`
	Requester string `json:"requester"`
	Approver  string `json:"approver"`
	Reason    string `json:"reason"`
	Time      int64  `json:"time"`
	Seq       uint64 `json:"seq"`
}

// Errors of control commands.
var (
	ErrSwitchInvalid = errors.New("controls: no such switch")
	ErrNotHalted     = errors.New("controls: not halted")
	ErrSelfApproval  = errors.New("controls: the approver must be another person than the requester")
	ErrNoReason      = errors.New("controls: a reason is required")
	ErrNoActor       = errors.New("controls: an actor is required")
	// ErrHalted is what Allowed answers for a halted service.
	ErrHalted = errors.New("halted")
)

// Bounds on free text.
const maxText = 1024

// State is the halt matrix and its history.
type State struct {
	halts map[Switch]Halt
	lifts []Lift
}

// New returns a state with nothing halted.
func New() *State { return &State{halts: map[Switch]Halt{}} }

// HaltSwitch turns a switch off. Halting what is halted keeps the first
// halt (its time and reason) and is not an error: detectors may repeat.
func (s *State) HaltSwitch(sw Switch, actor, reason string, t int64, seq uint64) (bool, error) {
	if !sw.valid() {
		return false, ErrSwitchInvalid
	}
	if strings.TrimSpace(actor) == "" || len(actor) > maxText {
		return false, ErrNoActor
	}
	if strings.TrimSpace(reason) == "" || len(reason) > maxText {
		return false, ErrNoReason
	}
	if _, ok := s.halts[sw]; ok {
		return false, nil
	}
	s.halts[sw] = Halt{Switch: sw, Actor: actor, Reason: reason, Since: t, Seq: seq}
	return true, nil
}

// LiftSwitch turns a switch back on, with the two people who asked and
// approved.
func (s *State) LiftSwitch(sw Switch, requester, approver, reason string, t int64, seq uint64) error {
	h, ok := s.halts[sw]
	if !ok {
		return ErrNotHalted
	}
	if strings.TrimSpace(requester) == "" || strings.TrimSpace(approver) == "" {
		return ErrNoActor
	}
	if requester == approver {
		return ErrSelfApproval
	}
	if strings.TrimSpace(reason) == "" || len(reason) > maxText {
		return ErrNoReason
	}
	delete(s.halts, sw)
	s.lifts = append(s.lifts, Lift{Halt: h, Requester: requester, Approver: approver, Reason: reason, Time: t, Seq: seq})
	return nil
}

// Allowed answers whether service of asset may run now: not if it, or the
// global switch, is halted. The error names the halt.
func (s *State) Allowed(asset ledger.AssetID, service Service) error {
	if h, ok := s.halts[Switch{Service: Global}]; ok {
		return fmt.Errorf("%w: global halt by %s: %s", ErrHalted, h.Actor, h.Reason)
	}
	if h, ok := s.halts[Switch{Asset: asset, Service: service}]; ok {
		return fmt.Errorf("%w: %s by %s: %s", ErrHalted, h.Switch, h.Actor, h.Reason)
	}
	return nil
}

// Halted returns the halts in force, in a stable order.
func (s *State) Halted() []Halt {
	out := make([]Halt, 0, len(s.halts))
	for _, h := range s.halts {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Switch.Asset != out[j].Switch.Asset {
			return out[i].Switch.Asset < out[j].Switch.Asset
		}
		return out[i].Switch.Service < out[j].Switch.Service
	})
	return out
}

// Lifts returns the lifts so far, oldest first.
func (s *State) Lifts() []Lift { return append([]Lift(nil), s.lifts...) }

// snapshot is the deterministic encoding.
type snapshot struct {
	Halts []Halt `json:"halts"`
	Lifts []Lift `json:"lifts"`
}

// Snapshot returns the state's deterministic encoding.
func (s *State) Snapshot() any { return snapshot{Halts: s.Halted(), Lifts: s.lifts} }

// Restore rebuilds a state from halts and lifts.
func Restore(halts []Halt, lifts []Lift) (*State, error) {
	s := New()
	for _, h := range halts {
		if !h.Switch.valid() {
			return nil, ErrSwitchInvalid
		}
		s.halts[h.Switch] = h
	}
	s.lifts = lifts
	return s, nil
}
