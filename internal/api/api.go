// Package api is kinko's HTTP API, served by the core.
package api

import (
	"encoding/json"
	"net/http"
	"time"

	"kinko/internal/core"
)

// Handler serves the API for a core.
type Handler struct {
	core *core.Core
	mux  *http.ServeMux
}

// New returns the API handler for c.
func New(c *core.Core) *Handler {
	h := &Handler{core: c, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /healthz", h.health)
	h.mux.HandleFunc("GET /v1/journal/head", h.head)
	h.mux.HandleFunc("GET /v1/state/hash", h.stateHash)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (h *Handler) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (h *Handler) head(w http.ResponseWriter, r *http.Request) {
	seq, hash, t := h.core.Journal().Head()
	writeJSON(w, http.StatusOK, map[string]any{"seq": seq, "hash": hash.String(), "time": time.Unix(0, t).UTC()})
}

func (h *Handler) stateHash(w http.ResponseWriter, r *http.Request) {
	seq, hash := h.core.StateHash()
	var accounts, transfers int
	h.core.Read(func(s *core.State) {
		accounts, transfers = s.Ledger.AccountCount(), s.Ledger.TransferCount()
	})
	writeJSON(w, http.StatusOK, map[string]any{"seq": seq, "state_hash": hash.String(), "accounts": accounts, "transfers": transfers})
}
