package core

import (
	"time"

	"kinko/internal/incident"
	"kinko/internal/journal"
)

// Timeline reads the journal from seq from and returns every detection,
// halt, lift, reversal and failure with its time and actor, in order: the
// record an incident report starts from.
func Timeline(j *journal.Journal, from uint64) ([]incident.Event, error) {
	var evs []incident.Event
	err := j.Scan(from, func(e journal.Entry) error {
		c, err := DecodeCommand(e.Kind, e.Payload)
		if err != nil {
			return nil // verification reports these; a timeline skips them
		}
		ev := incident.Event{Seq: e.Seq, Time: time.Unix(0, e.Time).UTC()}
		switch c := c.(type) {
		case Halt:
			ev.Actor, ev.What, ev.Detail = c.Actor, "halt "+c.Switch.String(), c.Reason
		case Lift:
			ev.Actor, ev.What, ev.Detail = c.Requester+" + "+c.Approver, "lift "+c.Switch.String(), c.Reason
		case OpenIncident:
			ev.Actor, ev.What, ev.Detail = c.Incident.Detector, "incident "+c.Incident.ID, c.Incident.Reason
			for _, tx := range c.Incident.TxIDs {
				ev.Detail += " " + tx
			}
		case ReverseDeposits:
			ev.Actor, ev.What, ev.Detail = c.Actor, "deposits reversed", c.Reason
		case FailBatch:
			ev.Actor, ev.What, ev.Detail = "watcher", "batch "+c.Batch+" failed", c.Reason
		case OpenRequest:
			if c.Request.Kind != KindLiftHalt {
				return nil
			}
			ev.Actor, ev.What, ev.Detail = c.Request.Requester, "asks to lift a halt", c.Request.Reason
		case DecideRequest:
			ev.Actor, ev.What, ev.Detail = c.Decider, "decides request "+c.ID, c.Reason
		default:
			return nil
		}
		evs = append(evs, ev)
		return nil
	})
	return evs, err
}
