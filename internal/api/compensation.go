package api

import (
	"net/http"

	"kinko/internal/compensation"
	"kinko/internal/core"
)

// CompensationView is a compensation plan's progress, without its payouts.
type CompensationView struct {
	ID       string              `json:"id"`
	Rule     compensation.Rule   `json:"rule"`
	Status   compensation.Status `json:"status"`
	Count    int                 `json:"count"`
	Paid     int                 `json:"paid"`
	Total    uint64              `json:"total"`
	Incident string              `json:"incident,omitempty"`
}

func (s *Server) registerCompensation() {
	s.handle("GET", "/v1/compensation/{id}", true, s.operatorOnly(func(w http.ResponseWriter, r *http.Request, _ Principal) {
		var v CompensationView
		var ok bool
		s.core.Read(func(st *core.State) {
			var p *compensation.Plan
			if p, ok = st.Compensation.Get(r.PathValue("id")); ok {
				v = CompensationView{ID: p.ID, Rule: p.Rule, Status: p.Status, Count: p.Count, Paid: p.Paid, Total: p.Total, Incident: p.Incident}
			}
		})
		if !ok {
			s.fail(w, r, compensation.ErrUnknown)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}))
}
