package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"kinko/internal/compensation"
	"kinko/internal/core"
	"kinko/internal/incident"
	"kinko/internal/people"
)

// Incident response for operators: point-in-time holdings, incidents and
// their reports.

var errHoldingsQuery = errors.New("holdings: asset=CODE, at=SEQ or RFC 3339 time (optional), format=json|csv")

// holdings answers GET /v1/holdings?asset=XEM&at=2018-01-26T00:02:00+09:00:
// who held how much of the asset then, from the journal.
func (s *Server) holdings(w http.ResponseWriter, r *http.Request, _ Principal) {
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "json"
	}
	if format != "json" && format != "csv" {
		s.fail(w, r, fmt.Errorf("%w: %w", errBadJSON, errHoldingsQuery))
		return
	}
	h, err := s.holdingsAt(r, q.Get("at"), strings.ToUpper(q.Get("asset")))
	if errors.Is(err, core.ErrAssetUnknown) {
		writeProblem(w, http.StatusNotFound, "not found", fmt.Sprintf("unknown asset %q", q.Get("asset")))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rep := compensation.NewHoldingsReport(h.Asset.Code, h.Asset.Decimals, h.Seq, h.Time, h.Holdings)
	a := h.Asset
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="holdings-%s-%d.csv"`, a.Code, rep.Seq))
		rep.WriteCSV(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rep.WriteJSON(w)
}

// holdingsAt is the holdings of an asset at a sequence number or time (""
// for now): from the balance log where it can answer, else from the state
// rebuilt there.
func (s *Server) holdingsAt(r *http.Request, at, code string) (core.IndexedHoldings, error) {
	if at == "" {
		head, _, _ := s.core.Journal().Head()
		return s.core.HoldingsAt(r.Context(), code, head)
	}
	if seq, err := strconv.ParseUint(at, 10, 64); err == nil {
		return s.core.HoldingsAt(r.Context(), code, seq)
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return core.IndexedHoldings{}, fmt.Errorf("%w: at %q is neither a sequence number nor an RFC 3339 time", errBadJSON, at)
	}
	return s.core.HoldingsAtTime(r.Context(), code, t, s.now())
}

// stateAt is the state at a sequence number or time ("" for now).
func (s *Server) stateAt(r *http.Request, at string) (*core.State, error) {
	if at == "" {
		head, _, _ := s.core.Journal().Head()
		return s.core.StateAt(r.Context(), head)
	}
	if seq, err := strconv.ParseUint(at, 10, 64); err == nil {
		return s.core.StateAt(r.Context(), seq)
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return nil, fmt.Errorf("%w: at %q is neither a sequence number nor an RFC 3339 time", errBadJSON, at)
	}
	return s.core.StateAtTime(r.Context(), t, s.now())
}

// incidentReport builds an incident's report from the current state.
func (s *Server) incidentReport(id string) (*incident.Report, error) {
	var rep *incident.Report
	var err error
	s.core.Read(func(st *core.State) { rep, err = core.IncidentReport(st, s.core.Journal(), id) })
	return rep, err
}

func (s *Server) getIncident(w http.ResponseWriter, r *http.Request, _ Principal) {
	rep, err := s.incidentReport(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	switch r.URL.Query().Get("format") {
	case "md":
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		rep.WriteMarkdown(w)
	case "notice":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rep.WriteNotice(w)
	case "", "json":
		writeJSON(w, http.StatusOK, rep)
	default:
		s.fail(w, r, fmt.Errorf("%w: format is json, md or notice", errBadJSON))
	}
}

func (s *Server) listIncidents(w http.ResponseWriter, r *http.Request, _ Principal) {
	writeJSON(w, http.StatusOK, map[string]any{"items": s.incidentViews()})
}

func (s *Server) registerIncidents() {
	s.handle("GET", "/v1/holdings", true, s.operatorOnly(s.holdings))
	s.handle("GET", "/v1/incidents", true, s.operatorOnly(s.listIncidents))
	s.handle("GET", "/v1/incidents/{id}", true, s.operatorOnly(s.getIncident))
	s.handle("GET", "/console/incidents", false, func(w http.ResponseWriter, r *http.Request) {
		v, _, ok := s.consoleUser(w, r)
		if !ok {
			return
		}
		items := s.incidentViews()
		open := 0
		for _, in := range items {
			if !in.Closed {
				open++
			}
		}
		v.Title, v.Nav, v.Data = "Incidents", "incidents", map[string]any{"Items": items, "Open": open, "MayClose": mayAskClose(v.Roles)}
		s.render(w, "incidents", http.StatusOK, v)
	})
	// Closing takes two people: this files the close_incident request a
	// second operator (approver or admin) approves on the Approvals page.
	s.handle("POST", "/console/incidents/{id}/close", false, func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.consolePost(w, r)
		if !ok {
			return
		}
		id := r.PathValue("id")
		s.consoleRequest(w, r, p, "/console/incidents", "close of incident "+id+" requested: a second operator (approver or admin) must approve it", func() (OpenRequestRequest, error) {
			payload, _ := json.Marshal(core.CloseIncidentPayload{Incident: id})
			return OpenRequestRequest{Kind: core.KindCloseIncident, Payload: payload, Reason: r.PostForm.Get("reason"), RequiredRole: people.RoleApprover}, nil
		})
	})
	s.handle("GET", "/console/incidents/{id}", false, func(w http.ResponseWriter, r *http.Request) {
		v, _, ok := s.consoleUser(w, r)
		if !ok {
			return
		}
		rep, err := s.incidentReport(r.PathValue("id"))
		if err != nil {
			back(w, r, "/console/controls", publicErr(err), "")
			return
		}
		var svg, notice bytes.Buffer
		svg.WriteString(rep.SVG())
		rep.WriteNotice(&notice)
		d := struct {
			Report *incident.Report
			SVG    template.HTML
			Notice string
		}{rep, template.HTML(svg.String()), notice.String()}
		v.Title, v.Nav, v.Data = "Incident "+rep.Incident.ID, "incidents", d
		s.render(w, "incident", http.StatusOK, v)
	})
}

// mayAskClose tells whether roles may ask to close an incident: any role
// but the auditor's, who only reads.
func mayAskClose(roles []people.Role) bool {
	for _, r := range roles {
		if r != people.RoleAuditor {
			return true
		}
	}
	return false
}
