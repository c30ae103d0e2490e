package api

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"kinko/internal/core"
	hotview "kinko/internal/signer/view"
	"kinko/internal/watch"
)

// The hot signer reaches the core with its own token
// (<data>/secrets/signer.token): it reads what it needs and journals only
// its two commands. Whatever it journals, the co-signer checks for itself.

func bearer(w http.ResponseWriter, r *http.Request, token, who string) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(token)) != 1 {
		writeProblem(w, http.StatusUnauthorized, "unauthenticated", "the "+who+"'s routes need the "+who+" token")
		return false
	}
	return true
}

func (s *Server) signerAuth(w http.ResponseWriter, r *http.Request) bool {
	return bearer(w, r, s.signerToken, "signer")
}

func (s *Server) signerView(w http.ResponseWriter, r *http.Request) {
	if !s.signerAuth(w, r) {
		return
	}
	var v hotview.View
	s.core.Read(func(st *core.State) { v = hotview.Of(st, strings.ToUpper(r.URL.Query().Get("asset"))) })
	writeJSON(w, http.StatusOK, v)
}

var signerKinds = map[string]core.Kind{"reserve_batch": core.KindReserveBatch, "record_signed": core.KindRecordSigned}

func (s *Server) signerCommand(w http.ResponseWriter, r *http.Request) {
	if !s.signerAuth(w, r) {
		return
	}
	if o, ok := s.roleCommand(w, r, "signer", signerKinds); ok && o.Seq > 0 {
		w.WriteHeader(http.StatusNoContent)
	}
}

// watchCommand journals one of a separate watcher's commands and answers
// with the entry's sequence number: the watcher reads the outcome from
// its own replica of the state.
func (s *Server) watchCommand(w http.ResponseWriter, r *http.Request) {
	if !bearer(w, r, s.watcherToken, "watcher") {
		return
	}
	if o, ok := s.roleCommand(w, r, "watcher", watch.WatcherKinds); ok {
		writeJSON(w, http.StatusOK, watch.WatchAccepted{Seq: o.Seq})
	}
}

// roleCommand journals a command of one of the roles that reach the core
// with a token, if its kind is one the role may journal. A refusal by the
// state machine is the answer too: the entry is in the journal.
func (s *Server) roleCommand(w http.ResponseWriter, r *http.Request, role string, kinds map[string]core.Kind) (core.Outcome, bool) {
	body, err := readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return core.Outcome{}, false
	}
	var req hotview.SignerCommand
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return core.Outcome{}, false
	}
	k, ok := kinds[req.Kind]
	if !ok {
		writeProblem(w, http.StatusForbidden, "forbidden", fmt.Sprintf("the %s does not journal %q", role, req.Kind))
		return core.Outcome{}, false
	}
	var compact []byte
	if compact, err = json.Marshal(req.Payload); err != nil || len(req.Payload) == 0 {
		s.fail(w, r, errBadJSON)
		return core.Outcome{}, false
	}
	o, err := s.core.SubmitRaw(r.Context(), s.now().UnixNano(), k, compact)
	if err != nil {
		s.fail(w, r, err)
		return core.Outcome{}, false
	}
	if role == "signer" && o.Err != nil {
		s.fail(w, r, o.Err)
		return core.Outcome{}, false
	}
	return o, true
}
