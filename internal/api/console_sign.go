package api

import (
	"encoding/json"
	"net/http"
	"time"

	"kinko/internal/core"
)

// The console signs with the operator's credential in the browser. A form
// marked data-sign is posted twice by the console's script (kinko.js):
// first with sign=challenge, answered with what to sign (the digest of the
// exact command, and the request id and expiry to send back so that it is
// the same command); then, after navigator.credentials.get, with the
// assertion. Without the script nothing is signed, and nothing signed is
// journaled.

// consoleSigned handles a console form whose command is signed. build
// makes the command from the form; it is called on both posts.
func (s *Server) consoleSigned(w http.ResponseWriter, r *http.Request, page, ok string, build func() (core.Command, error)) {
	cmd, err := build()
	if err != nil {
		s.consoleSignFail(w, r, page, err)
		return
	}
	s.consoleSubmitSigned(w, r, page, ok, cmd, "", 0)
}

// consoleRequest handles a console form that opens a request.
func (s *Server) consoleRequest(w http.ResponseWriter, r *http.Request, p Principal, page, ok string, build func() (OpenRequestRequest, error)) {
	req, err := build()
	if err == nil {
		req.ID = r.PostForm.Get("sign_id")
		if t, perr := time.Parse(time.RFC3339Nano, r.PostForm.Get("sign_expires")); perr == nil {
			req.Expires = &Time{t}
		}
		var cmd core.OpenRequest
		if cmd, err = s.OpenRequestCommand(p.Session.Operator, req); err == nil {
			s.consoleSubmitSigned(w, r, page, ok, cmd, cmd.Request.ID, cmd.Request.Expires)
			return
		}
	}
	s.consoleSignFail(w, r, page, err)
}

func (s *Server) consoleSignFail(w http.ResponseWriter, r *http.Request, page string, err error) {
	if r.PostForm.Get("sign") == "challenge" {
		status, title, known := statusOf(err)
		if !known {
			status, title = http.StatusInternalServerError, "internal error"
		}
		writeProblem(w, status, title, publicErr(err).Error())
		return
	}
	back(w, r, page, publicErr(err), "")
}

func (s *Server) consoleSubmitSigned(w http.ResponseWriter, r *http.Request, page, ok string, cmd core.Command, id string, expires int64) {
	if r.PostForm.Get("sign") == "challenge" {
		s.challenge(w, cmd, id, expires)
		return
	}
	a, err := ParseAssertion(json.RawMessage(r.PostForm.Get("assertion")))
	if err == nil && a == nil {
		err = errSignatureRequired
	}
	if err == nil {
		_, err = s.submit(r.Context(), core.WithAssertion(cmd, a))
	}
	back(w, r, page, publicErrOrNil(err), ok)
}
