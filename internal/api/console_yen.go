package api

import (
	"net/http"

	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/yen"
)

// registerConsoleYen adds the console's Yen page: the deposits held for
// review (released or returned by one operator up to the threshold; above
// it, a yen_review_deposit request approved on the Approvals page), the
// transfer files, the bank instructions, the reconciliations and the
// halted yen channels.
func (s *Server) registerConsoleYen() {
	s.handle("GET", "/console/yen", false, func(w http.ResponseWriter, r *http.Request) {
		v, _, ok := s.consoleUser(w, r)
		if !ok {
			return
		}
		d := map[string]any{}
		s.core.Read(func(st *core.State) {
			y := st.Yen
			d["Config"] = y.Config
			if y.Config == nil {
				return
			}
			d["Held"] = y.Deposits(func(x *yen.Deposit) bool { return x.Status == yen.DepositHeld }, MaxLimit)
			d["Batches"] = y.Batches()
			d["Instructions"] = y.Instructions()
			d["Reconciliations"] = y.Reconciliations(DefaultLimit)
			var halted []string
			for _, ch := range controls.Channels {
				if st.Controls.Allowed(0, ch) != nil {
					halted = append(halted, string(ch))
				}
			}
			d["Halted"] = halted
		})
		v.Title, v.Nav, v.Data = "Yen", "yen", d
		s.render(w, "yen", http.StatusOK, v)
	})
	s.handle("POST", "/console/yen/review", false, func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.consolePost(w, r)
		if !ok {
			return
		}
		_, err := s.submit(r.Context(), core.YenReviewDeposit{TxID: r.PostForm.Get("txid"), Action: r.PostForm.Get("action"), Actor: p.Session.Operator, Reason: r.PostForm.Get("reason")})
		back(w, r, "/console/yen", publicErrOrNil(err), "deposit reviewed")
	})
}
