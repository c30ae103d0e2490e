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
	// Errors of resumption plans.
	ErrPlanInvalid = errors.New("controls: resumption plan invalid")
	ErrPlanActive  = errors.New("controls: a resumption plan is already being followed")
	ErrOutOfPlan   = errors.New("controls: the resumption plan lifts another switch first")
)

// Plan is a staged resumption, written down and approved before the first
// lift: the order in which halted switches come back (BITPoint resumed yen
// first and receiving crypto last). While it is followed, a switch in the
// plan can be lifted only when its turn has come, and each lift is still
// approved by two people. Switches outside the plan are not held back.
type Plan struct {
	ID        string   `json:"id"`
	Steps     []Switch `json:"steps"`
	Reason    string   `json:"reason"`
	Requester string   `json:"requester"`
	Approver  string   `json:"approver"`
	Time      int64    `json:"time"`
	Seq       uint64   `json:"seq"`
	// Done counts the steps lifted so far; the plan is complete when it
	// reaches len(Steps).
	Done int `json:"done"`
}

// Complete tells whether every step is lifted.
func (p Plan) Complete() bool { return p.Done >= len(p.Steps) }

// maxPlanSteps bounds a plan.
const maxPlanSteps = 256

// Bounds on free text.
const maxText = 1024

// State is the halt matrix and its history.
type State struct {
	halts map[Switch]Halt
	lifts []Lift
	plans []Plan // oldest first; at most the last is being followed
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
	if err := s.CheckLift(sw); err != nil {
		return err
	}
	h := s.halts[sw]
	if strings.TrimSpace(requester) == "" || strings.TrimSpace(approver) == "" {
		return ErrNoActor
	}
	if requester == approver {
		return ErrSelfApproval
	}
	if strings.TrimSpace(reason) == "" || len(reason) > maxText {
		return ErrNoReason
	}
	if p := s.Following(); p != nil && p.Steps[p.Done] == sw {
		p.Done++
	}
	delete(s.halts, sw)
	s.lifts = append(s.lifts, Lift{Halt: h, Requester: requester, Approver: approver, Reason: reason, Time: t, Seq: seq})
	s.skipLifted()
	return nil
}

// CheckLift tells whether sw can be lifted now: it is halted, and the plan
// being followed, if it names sw, has come to it.
func (s *State) CheckLift(sw Switch) error {
	if _, ok := s.halts[sw]; !ok {
		return ErrNotHalted
	}
	if p := s.Following(); p != nil {
		for i, st := range p.Steps {
			if st == sw && i != p.Done {
				return fmt.Errorf("%w: plan %s: step %d (%s) before step %d (%s)", ErrOutOfPlan, p.ID, p.Done+1, p.Steps[p.Done], i+1, sw)
			}
		}
	}
	return nil
}

// CheckPlan checks a plan before it is approved: an id, a reason, between
// one and maxPlanSteps distinct valid switches, and no plan being followed.
func (s *State) CheckPlan(p Plan) error {
	if strings.TrimSpace(p.ID) == "" || len(p.ID) > 64 {
		return fmt.Errorf("%w: id", ErrPlanInvalid)
	}
	if strings.TrimSpace(p.Reason) == "" || len(p.Reason) > maxText {
		return ErrNoReason
	}
	if len(p.Steps) == 0 || len(p.Steps) > maxPlanSteps {
		return fmt.Errorf("%w: between 1 and %d steps", ErrPlanInvalid, maxPlanSteps)
	}
	seen := map[Switch]bool{}
	for i, st := range p.Steps {
		if !st.valid() {
			return fmt.Errorf("%w: step %d", ErrSwitchInvalid, i+1)
		}
		if seen[st] {
			return fmt.Errorf("%w: step %d repeats %s", ErrPlanInvalid, i+1, st)
		}
		seen[st] = true
	}
	for _, q := range s.plans {
		if q.ID == p.ID {
			return fmt.Errorf("%w: id %s is taken", ErrPlanInvalid, p.ID)
		}
	}
	if f := s.Following(); f != nil {
		return fmt.Errorf("%w: %s", ErrPlanActive, f.ID)
	}
	return nil
}

// AdoptPlan starts following an approved plan. Steps already lifted (or
// never halted) count as done when they come up.
func (s *State) AdoptPlan(p Plan) error {
	if err := s.CheckPlan(p); err != nil {
		return err
	}
	if p.Requester == p.Approver {
		return ErrSelfApproval
	}
	p.Done = 0
	s.plans = append(s.plans, p)
	s.skipLifted()
	return nil
}

// skipLifted advances the followed plan past steps that are not halted.
func (s *State) skipLifted() {
	p := s.Following()
	for p != nil && !p.Complete() {
		if _, ok := s.halts[p.Steps[p.Done]]; ok {
			return
		}
		p.Done++
	}
}

// Following returns the plan being followed, or nil.
func (s *State) Following() *Plan {
	if n := len(s.plans); n > 0 && !s.plans[n-1].Complete() {
		return &s.plans[n-1]
	}
	return nil
}

// Plans returns every plan, oldest first.
func (s *State) Plans() []Plan { return append([]Plan(nil), s.plans...) }

// Any tells whether anything is halted.
func (s *State) Any() bool { return len(s.halts) > 0 }

// Allowed answers whether service of asset may run now: not if it, or the
// global switch, is halted. The error names the halt.
func (s *State) Allowed(asset ledger.AssetID, service Service) error {
	if h, ok := s.halts[Switch{Service: Global}]; ok {
		return &HaltedError{Halt: h}
	}
	if h, ok := s.halts[Switch{Asset: asset, Service: service}]; ok {
		return &HaltedError{Halt: h}
	}
	return nil
}

// HaltedError is what Allowed answers for a halted service: the halt in
// force, with who halted it (for operators and logs) and why. It is
// ErrHalted to errors.Is. What customers are shown of it is the switch,
// the time and the reason, never who (the API writes its own text).
type HaltedError struct{ Halt Halt }

func (e *HaltedError) Error() string {
	if e.Halt.Switch.Service == Global {
		return fmt.Sprintf("%v: global halt by %s: %s", ErrHalted, e.Halt.Actor, e.Halt.Reason)
	}
	return fmt.Sprintf("%v: %s by %s: %s", ErrHalted, e.Halt.Switch, e.Halt.Actor, e.Halt.Reason)
}

// Unwrap makes a HaltedError ErrHalted.
func (e *HaltedError) Unwrap() error { return ErrHalted }

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
	Plans []Plan `json:"plans"`
}

// Snapshot returns the state's deterministic encoding.
func (s *State) Snapshot() any { return snapshot{Halts: s.Halted(), Lifts: s.lifts, Plans: s.plans} }

// Restore rebuilds a state from halts, lifts and plans.
func Restore(halts []Halt, lifts []Lift, plans []Plan) (*State, error) {
	s := New()
	for _, h := range halts {
		if !h.Switch.valid() {
			return nil, ErrSwitchInvalid
		}
		s.halts[h.Switch] = h
	}
	s.lifts = lifts
	s.plans = plans
	return s, nil
}
