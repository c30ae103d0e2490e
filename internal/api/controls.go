package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/incident"
	"kinko/internal/journal"
	"kinko/internal/people"
)

// The halt matrix for operators: any operator halts a switch alone (one
// journaled command); lifting one, and adopting a staged resumption plan,
// go through the two-person mechanism (/v1/requests with kind lift_halt or
// resumption_plan, approved by an approver).

var errSwitchText = errors.New("a switch is ASSET:service (deposit, withdraw, trade, dealer), a yen channel (bank, card, pay-easy, convenience-store) or global")

// parseSwitch reads "BTC:withdraw", "bank" or "global".
func parseSwitch(st *core.State, text string) (controls.Switch, error) {
	text = strings.TrimSpace(text)
	code, svc, ok := strings.Cut(text, ":")
	if !ok {
		sw := controls.Switch{Service: controls.Service(strings.ToLower(text))}
		return sw, nil
	}
	a, found := st.Ledger.AssetByCode(strings.ToUpper(strings.TrimSpace(code)))
	if !found {
		return controls.Switch{}, fmt.Errorf("%w: unknown asset %q", errSwitchText, code)
	}
	return controls.Switch{Asset: a.ID, Service: controls.Service(strings.ToLower(strings.TrimSpace(svc)))}, nil
}

// switchText is parseSwitch's inverse.
func switchText(st *core.State, sw controls.Switch) string {
	if sw.Asset == 0 {
		return string(sw.Service)
	}
	if a, ok := st.Ledger.Asset(sw.Asset); ok {
		return a.Code + ":" + string(sw.Service)
	}
	return sw.String()
}

// CellView is one switch of the matrix.
type CellView struct {
	Switch  string     `json:"switch"` // as parseSwitch reads it
	Service string     `json:"service"`
	Halted  bool       `json:"halted"`
	Actor   string     `json:"actor,omitempty"`
	Reason  string     `json:"reason,omitempty"`
	Since   *time.Time `json:"since,omitempty"`
	// Lifting is the id of a pending lift request, if any.
	Lifting string `json:"lifting,omitempty"`
}

// RowView is one asset's row, the yen channels, or the global switch.
type RowView struct {
	Name  string     `json:"name"`
	Cells []CellView `json:"cells"`
}

// PlanView is a resumption plan with its progress.
type PlanView struct {
	ID        string   `json:"id"`
	Steps     []string `json:"steps"`
	Done      int      `json:"done"`
	Reason    string   `json:"reason"`
	Requester string   `json:"requester"`
	Approver  string   `json:"approver"`
	Following bool     `json:"following"`
}

// ControlsView is GET /v1/controls: the matrix, the plans, the lifts.
type ControlsView struct {
	Rows  []RowView        `json:"rows"`
	Plans []PlanView       `json:"plans"`
	Lifts []LiftView       `json:"lifts"`
	Recon []ReconciledView `json:"reconciliation"`
}

// LiftView is a halt that was lifted: the switch as parseSwitch reads it,
// the halt (who, why, since when), the two people who lifted it and why.
type LiftView struct {
	Switch    string    `json:"switch"`
	HaltedBy  string    `json:"halted_by"`
	HaltedFor string    `json:"halted_for"`
	Since     time.Time `json:"since"`
	Requester string    `json:"requester"`
	Approver  string    `json:"approver"`
	Reason    string    `json:"reason"`
	Lifted    time.Time `json:"lifted"`
	Seq       uint64    `json:"seq"`
}

// ReconciledView is one wallet's reconciliation difference, ledger less
// chain, in the asset's base units, as the chain watcher last computed
// it.
type ReconciledView struct {
	Wallet     uint32 `json:"wallet"`
	Difference Units  `json:"difference"`
}

func (s *Server) controlsView() ControlsView {
	var v ControlsView
	s.core.Read(func(st *core.State) {
		halts := map[controls.Switch]controls.Halt{}
		for _, h := range st.Controls.Halted() {
			halts[h.Switch] = h
		}
		lifting := map[controls.Switch]string{}
		for _, q := range st.People.Requests() {
			if q.Kind == core.KindLiftHalt && q.State == people.RequestPending {
				var p core.LiftHaltPayload
				if err := decodeStrict(q.Payload, &p); err == nil {
					lifting[p.Switch] = q.ID
				}
			}
		}
		cell := func(sw controls.Switch) CellView {
			c := CellView{Switch: switchText(st, sw), Service: string(sw.Service), Lifting: lifting[sw]}
			if h, ok := halts[sw]; ok {
				since := time.Unix(0, h.Since).UTC()
				c.Halted, c.Actor, c.Reason, c.Since = true, h.Actor, h.Reason, &since
			}
			return c
		}
		v.Rows = append(v.Rows, RowView{Name: "global", Cells: []CellView{cell(controls.Switch{Service: controls.Global})}})
		for _, a := range st.Ledger.Assets() {
			row := RowView{Name: a.Code}
			for _, svc := range controls.AssetServices {
				row.Cells = append(row.Cells, cell(controls.Switch{Asset: a.ID, Service: svc}))
			}
			v.Rows = append(v.Rows, row)
		}
		yen := RowView{Name: "yen channels"}
		for _, ch := range controls.Channels {
			yen.Cells = append(yen.Cells, cell(controls.Switch{Service: ch}))
		}
		v.Rows = append(v.Rows, yen)
		following := st.Controls.Following()
		for _, p := range st.Controls.Plans() {
			pv := PlanView{ID: p.ID, Done: p.Done, Reason: p.Reason, Requester: p.Requester, Approver: p.Approver, Following: following != nil && following.ID == p.ID}
			for _, sw := range p.Steps {
				pv.Steps = append(pv.Steps, switchText(st, sw))
			}
			v.Plans = append(v.Plans, pv)
		}
		for _, l := range st.Controls.Lifts() {
			v.Lifts = append(v.Lifts, LiftView{Switch: switchText(st, l.Halt.Switch), HaltedBy: l.Halt.Actor, HaltedFor: l.Halt.Reason, Since: time.Unix(0, l.Halt.Since).UTC(),
				Requester: l.Requester, Approver: l.Approver, Reason: l.Reason, Lifted: time.Unix(0, l.Time).UTC(), Seq: l.Seq})
		}
	})
	if s.reconciled != nil {
		for w, d := range s.reconciled() {
			v.Recon = append(v.Recon, ReconciledView{Wallet: w, Difference: Units(d)})
		}
		sort.Slice(v.Recon, func(i, j int) bool { return v.Recon[i].Wallet < v.Recon[j].Wallet })
	}
	if v.Plans == nil {
		v.Plans = []PlanView{}
	}
	if v.Lifts == nil {
		v.Lifts = []LiftView{}
	}
	if v.Recon == nil {
		v.Recon = []ReconciledView{}
	}
	return v
}

// SetReconciliation gives the API the chain watcher's reconciliation
// differences per wallet (the watcher may start after the server). Call it
// before serving.
func (s *Server) SetReconciliation(f func() map[uint32]int64) { s.reconciled = f }

func (s *Server) getControls(w http.ResponseWriter, r *http.Request, _ Principal) {
	writeJSON(w, http.StatusOK, s.controlsView())
}

// HaltRequest is the body of POST /v1/halts.
type HaltRequest struct {
	Switch string `json:"switch"`
	Reason string `json:"reason"`
}

// Halt halts a switch for an operator: one person is enough to stop.
func (s *Server) Halt(r *http.Request, operator, text, reason string) error {
	var sw controls.Switch
	var err error
	s.core.Read(func(st *core.State) { sw, err = parseSwitch(st, text) })
	if err != nil {
		return err
	}
	_, err = s.submit(r.Context(), core.Halt{Switch: sw, Actor: operator, Reason: reason})
	return err
}

func (s *Server) postHalt(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.operator(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req HaltRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.Halt(r, p.Session.Operator, req.Switch, req.Reason); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.controlsView())
}

// liftRequest is the lift_halt request for the switch named by text.
func (s *Server) liftRequest(text, reason string) (OpenRequestRequest, error) {
	var sw controls.Switch
	var err error
	s.core.Read(func(st *core.State) { sw, err = parseSwitch(st, text) })
	if err != nil {
		return OpenRequestRequest{}, err
	}
	payload, _ := json.Marshal(core.LiftHaltPayload{Switch: sw})
	return OpenRequestRequest{Kind: core.KindLiftHalt, Payload: payload, Reason: reason, RequiredRole: people.RoleApprover}, nil
}

// planRequest opens a resumption_plan request: steps are switches, one per
// line or separated by commas, in the order they are to be lifted.
func (s *Server) planRequest(id, steps, reason string) (OpenRequestRequest, error) {
	var p core.ResumptionPlanPayload
	p.ID = strings.TrimSpace(id)
	var err error
	s.core.Read(func(st *core.State) {
		for _, f := range strings.FieldsFunc(steps, func(r rune) bool { return r == '\n' || r == ',' || r == '\r' }) {
			if strings.TrimSpace(f) == "" {
				continue
			}
			var sw controls.Switch
			if sw, err = parseSwitch(st, f); err != nil {
				return
			}
			p.Steps = append(p.Steps, sw)
		}
	})
	if err != nil {
		return OpenRequestRequest{}, err
	}
	payload, _ := json.Marshal(p)
	return OpenRequestRequest{Kind: core.KindResumptionPlan, Payload: payload, Reason: reason, RequiredRole: people.RoleApprover}, nil
}

func (s *Server) registerControls() {
	s.handle("GET", "/v1/controls", true, s.operatorOnly(s.getControls))
	s.handle("POST", "/v1/halts", true, s.idempotent(s.postHalt))
	s.handle("GET", "/console/controls", false, func(w http.ResponseWriter, r *http.Request) {
		v, _, ok := s.consoleUser(w, r)
		if !ok {
			return
		}
		d := struct {
			ControlsView
			Incidents []IncidentView
			Timeline  []incident.Event
		}{ControlsView: s.controlsView(), Incidents: s.incidentViews()}
		// The timeline of the last timelineWindow entries, newest first.
		head, _, _ := s.core.Journal().Head()
		from := uint64(1)
		if head > timelineWindow {
			from = head - timelineWindow + 1
		}
		var applied func(journal.Entry, core.Command) bool
		var names core.Names
		s.core.Read(func(st *core.State) { applied, names = core.Applied(st), core.NamesOf(st) })
		evs, err := core.Timeline(s.core.Journal(), from, applied, names)
		if err != nil {
			s.log.Error("timeline", "err", err)
		}
		for i := len(evs) - 1; i >= 0 && len(d.Timeline) < timelineRows; i-- {
			d.Timeline = append(d.Timeline, evs[i])
		}
		v.Title, v.Nav, v.Data = "Controls", "controls", d
		s.render(w, "controls", http.StatusOK, v)
	})
	s.handle("POST", "/console/controls/halt", false, func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.consolePost(w, r)
		if !ok {
			return
		}
		err := s.Halt(r, p.Session.Operator, r.PostForm.Get("switch"), r.PostForm.Get("reason"))
		back(w, r, "/console/controls", publicErrOrNil(err), "halted "+r.PostForm.Get("switch"))
	})
	s.handle("POST", "/console/controls/lift", false, func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.consolePost(w, r)
		if !ok {
			return
		}
		s.consoleRequest(w, r, p, "/console/controls", "lift of "+r.PostForm.Get("switch")+" requested: an approver must approve it", func() (OpenRequestRequest, error) {
			return s.liftRequest(r.PostForm.Get("switch"), r.PostForm.Get("reason"))
		})
	})
	s.handle("POST", "/console/controls/plan", false, func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.consolePost(w, r)
		if !ok {
			return
		}
		s.consoleRequest(w, r, p, "/console/controls", "resumption plan requested: an approver must approve it", func() (OpenRequestRequest, error) {
			return s.planRequest(r.PostForm.Get("id"), r.PostForm.Get("steps"), r.PostForm.Get("reason"))
		})
	})
}

// Bounds of the console's timeline: the entries it reads, the rows it
// shows. `kinko incident timeline` exports the whole journal's.
const (
	timelineWindow = 200_000
	timelineRows   = 200
)

// IncidentView is an incident for operators.
// Status is "open" or "closed"; Loss what it cost in base units of
// Asset (a decimal string), as its detector measured it; ClosedBy the two
// people who closed it; CloseRequest a pending request to close it.
type IncidentView struct {
	ID           string     `json:"id"`
	Asset        string     `json:"asset"`
	Detector     string     `json:"detector"`
	Reason       string     `json:"reason"`
	TxIDs        []string   `json:"txids"`
	Opened       time.Time  `json:"opened"`
	Closed       bool       `json:"closed"`
	Status       string     `json:"status"`
	Loss         WideUnits  `json:"loss"`
	ClosedAt     *time.Time `json:"closed_at,omitempty"`
	ClosedBy     string     `json:"closed_by,omitempty"`
	CloseRequest string     `json:"close_request,omitempty"`
	// LossText is Loss as the console writes it ("0.18994932 BTC").
	LossText string `json:"-"`
}

func (s *Server) incidentViews() []IncidentView {
	out := []IncidentView{}
	s.core.Read(func(st *core.State) {
		pending := map[string]string{}
		for _, q := range st.People.Requests() {
			if q.Kind == core.KindCloseIncident && q.State == people.RequestPending {
				var p core.CloseIncidentPayload
				if json.Unmarshal(q.Payload, &p) == nil {
					pending[p.Incident] = q.ID
				}
			}
		}
		for _, in := range st.Incidents.List() {
			v := IncidentView{ID: in.ID, Asset: in.Asset, Detector: in.Detector, Reason: in.Reason, TxIDs: in.TxIDs, Opened: time.Unix(0, in.Opened).UTC(), Closed: in.Closed != 0,
				Status: "open", Loss: WideUnits(in.Loss), ClosedBy: in.ClosedBy, CloseRequest: pending[in.ID], LossText: groupDigits(in.Loss.String())}
			if v.TxIDs == nil {
				v.TxIDs = []string{}
			}
			if a, ok := st.Ledger.AssetByCode(in.Asset); ok {
				v.LossText = amountText(in.Loss.Ledger(), a.Decimals, a.Code)
			}
			if in.Closed != 0 {
				t := time.Unix(0, in.Closed).UTC()
				v.Status, v.ClosedAt = "closed", &t
			}
			out = append(out, v)
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Opened.After(out[j].Opened) })
	return out
}
