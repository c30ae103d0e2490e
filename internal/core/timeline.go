package core

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"kinko/internal/controls"
	"kinko/internal/incident"
	"kinko/internal/journal"
	"kinko/internal/ledger"
	"kinko/internal/people"
)

// Timeline reads the journal from seq from and returns every detection,
// halt, lift, reversal and failure with its time and actor, in order: the
// record an incident report starts from. With applied (Applied of the
// state at the journal's head), requests, decisions and lifts the state
// machine refused (a self-approval, a lift out of a plan's order) are left
// out, and the orders whose fills tripped the circuit breaker are in, as
// the breaker's halts (without applied, orders are left out: nothing in
// the journal alone tells which tripped it).
//
// names names assets and switches as the halt matrix does ("BTC:withdraw"):
// NamesOf the state at the journal's head (the zero Names writes "asset 2
// withdraw").
func Timeline(j *journal.Journal, from uint64, applied func(journal.Entry, Command) bool, names Names) ([]incident.Event, error) {
	var evs []incident.Event
	err := j.Scan(from, func(e journal.Entry) error {
		c, err := DecodeCommand(e.Kind, e.Payload)
		if err != nil {
			return nil // verification reports these; a timeline skips them
		}
		if applied != nil && !applied(e, c) {
			return nil
		}
		ev := incident.Event{Seq: e.Seq, Time: time.Unix(0, e.Time).UTC()}
		switch c := c.(type) {
		case Halt:
			ev.Actor, ev.What, ev.Detail = c.Actor, "halt "+names.Switch(c.Switch), c.Reason
		case Lift:
			ev.Actor, ev.What, ev.Detail = c.Requester+" + "+c.Approver, "lift "+names.Switch(c.Switch), c.Reason
		case OpenIncident:
			ev.Actor, ev.What, ev.Detail = c.Incident.Detector, "incident "+c.Incident.ID, c.Incident.Reason
			for _, tx := range c.Incident.TxIDs {
				ev.Detail += " " + tx
			}
		case NoteIncident:
			ev.Actor, ev.What, ev.Detail = c.Actor, "note on incident "+c.ID, c.Text
		case CloseIncident:
			ev.Actor, ev.What, ev.Detail = c.Actor, "incident "+c.ID+" closed", c.Reason
		case WriteCompensation:
			ev.Actor, ev.What = c.Plan.Requester, "writes compensation plan "+c.Plan.ID
			ev.Detail = fmt.Sprintf("%s: %d customers, total %d, at entry %d: %s", c.Plan.Rule, c.Plan.Count, c.Plan.Total, c.Plan.At, c.Plan.Reason)
		case ExecuteCompensation:
			ev.Actor, ev.What = c.Actor, "executes compensation plan "+c.Plan
			ev.Detail = fmt.Sprintf("payouts %d to %d", c.From+1, c.From+c.Count)
		case ReverseDeposits:
			ev.Actor, ev.What, ev.Detail = c.Actor, "deposits reversed", c.Reason
		case FailBatch:
			ev.Actor, ev.What, ev.Detail = "watcher", "batch "+c.Batch+" failed", c.Reason
		case PlaceOrder, ReplaceOrder:
			if applied == nil {
				return nil
			}
			ev.Actor, ev.What = BreakerActor, "halt of trading: the circuit breaker tripped"
			if p, ok := c.(PlaceOrder); ok {
				ev.Detail = fmt.Sprintf("customer %d's %v %v of %d at %d in market %d traded past the breaker", p.Customer, p.Type, p.Side, p.Qty, p.Price, p.Market)
			} else {
				r := c.(ReplaceOrder)
				ev.Detail = fmt.Sprintf("customer %d's order %d replaced at %d traded past the breaker", r.Customer, r.Order, r.Price)
			}
		case OpenRequest:
			what := names.Request(c.Request)
			switch c.Request.Kind {
			case KindLiftHalt:
				ev.What = "asks to " + what + " (request " + c.Request.ID + ")"
			case KindResumptionPlan:
				ev.What = "writes a resumption plan (request " + c.Request.ID + "): " + what
			case KindApproveCompensation:
				ev.What = "asks to approve a compensation plan (request " + c.Request.ID + ")"
			case KindCloseIncident:
				ev.What = "asks to close an incident (request " + c.Request.ID + ")"
			default:
				return nil
			}
			ev.Actor, ev.Detail = c.Request.Requester, c.Request.Reason
		case DecideRequest:
			verb := "rejects"
			if c.Approve {
				verb = "approves"
			}
			ev.Actor, ev.What, ev.Detail = c.Decider, verb+" request "+c.ID, c.Reason
		default:
			return nil
		}
		evs = append(evs, ev)
		return nil
	})
	return evs, err
}

// Names names assets, switches and requests for timelines and reports:
// the asset codes of a state, copied (NamesOf), so it is used after Read.
type Names struct{ codes map[ledger.AssetID]string }

// NamesOf copies st's asset codes.
func NamesOf(st *State) Names {
	n := Names{codes: map[ledger.AssetID]string{}}
	for _, a := range st.Ledger.Assets() {
		n.codes[a.ID] = a.Code
	}
	return n
}

// Asset is an asset's code ("asset 2" when unknown).
func (n Names) Asset(id ledger.AssetID) string {
	if c, ok := n.codes[id]; ok {
		return c
	}
	return fmt.Sprintf("asset %d", id)
}

// Switch is a switch as the halt matrix and the API write it:
// "BTC:withdraw", "bank", "global".
func (n Names) Switch(sw controls.Switch) string {
	if sw.Asset == 0 {
		return string(sw.Service)
	}
	if c, ok := n.codes[sw.Asset]; ok {
		return c + ":" + string(sw.Service)
	}
	return sw.String()
}

// Request says, in a few words, what a lift or a plan request asks.
func (n Names) Request(r people.Request) string {
	switch r.Kind {
	case KindLiftHalt:
		var p LiftHaltPayload
		if json.Unmarshal(r.Payload, &p) == nil {
			return "lift " + n.Switch(p.Switch)
		}
	case KindResumptionPlan:
		var p ResumptionPlanPayload
		if json.Unmarshal(r.Payload, &p) == nil {
			var steps []string
			for _, sw := range p.Steps {
				steps = append(steps, n.Switch(sw))
			}
			return p.ID + ": " + strings.Join(steps, " → ")
		}
	case KindCloseIncident:
		var p CloseIncidentPayload
		if json.Unmarshal(r.Payload, &p) == nil {
			return "close incident " + p.Incident
		}
	}
	return string(r.Kind)
}

// Applied returns a test of whether an entry's request, decision, lift,
// halt, incident or note took effect, from st, the state at the journal's
// head. It copies what it
// needs: call it under Read, use it after.
func Applied(st *State) func(journal.Entry, Command) bool {
	reqs := map[string]people.Request{}
	for _, r := range st.People.Requests() {
		reqs[r.ID] = r
	}
	lifts, halts := map[uint64]bool{}, map[uint64]bool{}
	for _, l := range st.Controls.Lifts() {
		lifts[l.Seq] = true
		halts[l.Halt.Seq] = true
	}
	for _, h := range st.Controls.Halted() {
		halts[h.Seq] = true
	}
	incidents, notes := map[string]bool{}, map[uint64]bool{}
	for _, in := range st.Incidents.List() {
		incidents[in.ID] = true
		for _, n := range in.Notes {
			notes[n.Seq] = true
		}
	}
	// The circuit breaker's halts, in force or lifted, by the entry of the
	// order that tripped them.
	tripped := map[uint64]bool{}
	for _, h := range st.Controls.Halted() {
		if h.Actor == BreakerActor {
			tripped[h.Seq] = true
		}
	}
	for _, l := range st.Controls.Lifts() {
		if l.Halt.Actor == BreakerActor {
			tripped[l.Halt.Seq] = true
		}
	}
	plans := map[uint64]bool{}
	for _, p := range st.Compensation.List() {
		plans[p.WrittenSeq] = true
		for _, q := range p.PartSeqs {
			plans[q] = true
		}
	}
	return func(e journal.Entry, c Command) bool {
		switch c := c.(type) {
		case OpenRequest:
			r, ok := reqs[c.Request.ID]
			return ok && r.OpenedSeq == e.Seq
		case DecideRequest:
			r, ok := reqs[c.ID]
			return ok && r.DecidedSeq == e.Seq
		case Lift:
			return lifts[e.Seq]
		case Halt:
			// A halt refused (a bad switch, no reason) or of a switch
			// already halted changed nothing.
			return halts[e.Seq]
		case OpenIncident:
			return incidents[c.Incident.ID]
		case NoteIncident, CloseIncident:
			return notes[e.Seq]
		case WriteCompensation, ExecuteCompensation:
			return plans[e.Seq]
		case PlaceOrder, ReplaceOrder:
			return tripped[e.Seq]
		}
		return true
	}
}
