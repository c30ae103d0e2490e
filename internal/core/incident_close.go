package core

import (
	"encoding/json"
	"fmt"

	"kinko/internal/incident"
	"kinko/internal/people"
)

// KindCloseIncident is also a request kind: closing an incident takes two
// people, as lifting a halt does. One operator asks (any role but
// auditor), another with the approver or admin role approves; the
// incident is closed by the approval, in its entry, with both names. A
// direct close_incident command is refused (ErrTwoPerson): an incident
// that closes too early hides what is still wrong.
const KindCloseIncident people.RequestKind = "close_incident"

// CloseIncidentPayload is the payload of a close_incident request.
type CloseIncidentPayload struct {
	Incident string `json:"incident"`
}

// checkCloseIncident checks a close_incident request: the incident is
// open and an approver approves.
func (s *State) checkCloseIncident(r people.Request) error {
	var p CloseIncidentPayload
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		return fmt.Errorf("%w: payload: %v", people.ErrInvalid, err)
	}
	if r.RequiredRole != people.RoleApprover && r.RequiredRole != people.RoleAdmin {
		return fmt.Errorf("%w: closing an incident is approved by an approver", people.ErrInvalid)
	}
	return s.checkIncidentOpen(p.Incident)
}

func (s *State) checkIncidentOpen(id string) error {
	in, ok := s.Incidents.Get(id)
	if !ok {
		return fmt.Errorf("%w: %q", incident.ErrUnknown, id)
	}
	if in.Closed != 0 {
		return incident.ErrClosed
	}
	return nil
}

// applyCloseIncident closes the incident of an approved request: closed by
// the requester and the approver, with the request's reason.
func (s *State) applyCloseIncident(r people.Request, decider string, t int64) error {
	var p CloseIncidentPayload
	json.Unmarshal(r.Payload, &p)
	return s.Incidents.Close(p.Incident, r.Requester+" and "+decider, r.Reason, t, s.seq)
}
