package api

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"

	"kinko/internal/core"
	hotview "kinko/internal/signer/view"
)

// The hot signer reaches the core with its own token
// (<data>/secrets/signer.token): it reads what it needs and journals only
// its two commands. Whatever it journals, the co-signer checks for itself.

func (s *Server) signerAuth(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(s.signerToken)) != 1 {
		writeProblem(w, http.StatusUnauthorized, "unauthenticated", "the signer's routes need the signer token")
		return false
	}
	return true
}

func (s *Server) signerView(w http.ResponseWriter, r *http.Request) {
	if !s.signerAuth(w, r) {
		return
	}
	var v hotview.View
	s.core.Read(func(st *core.State) { v = hotview.Of(st, strings.ToUpper(r.URL.Query().Get("asset"))) })
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) signerCommand(w http.ResponseWriter, r *http.Request) {
	if !s.signerAuth(w, r) {
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req hotview.SignerCommand
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	kinds := map[string]core.Kind{"reserve_batch": core.KindReserveBatch, "record_signed": core.KindRecordSigned}
	k, ok := kinds[req.Kind]
	if !ok {
		writeProblem(w, http.StatusForbidden, "forbidden", "the signer journals only reserve_batch and record_signed")
		return
	}
	var compact []byte
	if compact, err = json.Marshal(req.Payload); err != nil {
		s.fail(w, r, errBadJSON)
		return
	}
	o, err := s.core.SubmitRaw(r.Context(), s.now().UnixNano(), k, compact)
	if err == nil {
		err = o.Err
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
