package api

import (
	"encoding/json"
	"net/http"
)

// Refusal is why the core refuses to serve: a witness (the co-signer's or
// the watcher's host, pinned on the core's) signed a head that the
// journal is shorter than or inconsistent with. The journal was cut,
// rewritten or restored from an older copy; serving it would act on a
// history that is not the one the witnesses verified.
type Refusal struct {
	Witness string `json:"witness"`
	Origin  string `json:"origin"`
	Size    uint64 `json:"size"`
	Detail  string `json:"detail"`
}

// refusalProblem is the problem document of a refusal: RFC 9457 with the
// witness and the head's size as extension members.
type refusalProblem struct {
	Problem
	Witness string `json:"witness"`
	Origin  string `json:"origin"`
	Size    uint64 `json:"size"`
}

// evidence are the routes a refusing core still serves: the journal's
// head, stream and proofs, read-only, so that witnesses and auditors see
// what it holds (the co-signer and the watcher refuse it from their own
// mirrors), and the metrics.
var evidence = map[string]bool{
	"/v1/journal/head": true, "/v1/journal/raw": true, "/v1/journal/proof": true, "/v1/journal/consistency": true, "/metrics": true,
}

// refused answers 503 with the refusal's problem, unless the request is
// for the evidence; it reports whether it answered.
func (s *Server) refused(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.Refuse == nil || (r.Method == http.MethodGet && evidence[r.URL.Path]) {
		return false
	}
	ref := s.cfg.Refuse()
	if ref == nil {
		return false
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(http.StatusServiceUnavailable)
	json.NewEncoder(w).Encode(refusalProblem{
		Problem: Problem{Type: "about:blank", Title: "the journal is not the history a witness signed", Status: http.StatusServiceUnavailable, Detail: ref.Detail},
		Witness: ref.Witness, Origin: ref.Origin, Size: ref.Size,
	})
	return true
}
