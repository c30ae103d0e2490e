package api

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"kinko/internal/core"
	hotview "kinko/internal/signer/view"
	"kinko/internal/watch"
)

// The hot signer reaches the core with its own token
// (<data>/secrets/signer.token): it reads what it needs and journals only
// its own commands: reserve_batch and record_signed, and for an Ether
// batch (a SafeTx of a Safe) also confirm_batch and fail_batch, which the
// Ether signer journals once it read the outcome on its node. Whatever it
// journals, the co-signer checks for itself, and the watcher of Safe
// executions halts on an execution of a batch journaled as failed.

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

var signerKinds = map[string]core.Kind{"reserve_batch": core.KindReserveBatch, "record_signed": core.KindRecordSigned,
	"confirm_batch": core.KindConfirmBatch, "fail_batch": core.KindFailBatch}

func (s *Server) signerCommand(w http.ResponseWriter, r *http.Request) {
	if !s.signerAuth(w, r) {
		return
	}
	if o, ok := s.roleCommand(w, r, "signer", signerKinds, s.signerSettles); ok && o.Seq > 0 {
		w.WriteHeader(http.StatusNoContent)
	}
}

// errNotEtherBatch refuses a settlement the signer may not journal: a
// Bitcoin batch's confirmation or failure is the watcher's alone.
var errNotEtherBatch = errors.New("the signer settles only its Ether batches (a SafeTx of a Safe): a Bitcoin batch is confirmed or failed by the watcher")

// signerSettles lets the signer journal confirm_batch and fail_batch for
// an Ether batch only (one with a SafeTx); its other kinds pass.
func (s *Server) signerSettles(k core.Kind, payload []byte) error {
	var ok bool
	switch k {
	case core.KindConfirmBatch:
		var c core.ConfirmBatch
		if err := json.Unmarshal(payload, &c); err != nil {
			return errBadJSON
		}
		s.core.Read(func(st *core.State) { b, found := st.Withdraw.BatchByTx(c.TxID); ok = found && b.Safe != nil })
	case core.KindFailBatch:
		var c core.FailBatch
		if err := json.Unmarshal(payload, &c); err != nil {
			return errBadJSON
		}
		s.core.Read(func(st *core.State) { b, found := st.Withdraw.Batch(c.Batch); ok = found && b.Safe != nil })
	default:
		return nil
	}
	if !ok {
		return errNotEtherBatch
	}
	return nil
}

// watchCommand journals one of a separate watcher's commands and answers
// with the entry's sequence number: the watcher reads the outcome from
// its own replica of the state.
func (s *Server) watchCommand(w http.ResponseWriter, r *http.Request) {
	if !bearer(w, r, s.watcherToken, "watcher") {
		return
	}
	if o, ok := s.roleCommand(w, r, "watcher", watch.WatcherKinds, nil); ok {
		writeJSON(w, http.StatusOK, watch.WatchAccepted{Seq: o.Seq})
	}
}

// roleCommand journals a command of one of the roles that reach the core
// with a token, if its kind is one the role may journal. A refusal by the
// state machine is the answer too: the entry is in the journal. allow, if
// set, may refuse a command of an allowed kind by its payload (403).
func (s *Server) roleCommand(w http.ResponseWriter, r *http.Request, role string, kinds map[string]core.Kind, allow func(core.Kind, []byte) error) (core.Outcome, bool) {
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
	if allow != nil {
		if err := allow(k, compact); errors.Is(err, errBadJSON) {
			s.fail(w, r, err)
			return core.Outcome{}, false
		} else if err != nil {
			writeProblem(w, http.StatusForbidden, "forbidden", err.Error())
			return core.Outcome{}, false
		}
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
