package api

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"kinko/internal/core"
	"kinko/internal/reserves"
	"kinko/internal/reserves/attest"
	"kinko/internal/reserves/sumtree"
)

// porAPI holds the proof-of-reserves routes' salt key and prover, loaded
// at first use from the data directory (the key is made by the first
// publication, here or by kinko reserves publish).
type porAPI struct {
	mu     sync.Mutex
	key    []byte
	prover *attest.Prover
}

func (s *Server) registerReserves() {
	s.handle("GET", "/v1/reserves/roots", true, s.liabilitiesRoots)
	s.handle("GET", "/v1/me/reserves/proof", true, s.myReservesProof)
	s.handle("POST", "/v1/reserves/liabilities", true, s.idempotent(s.publishLiabilities))
}

// porProver returns the salt key and the prover; create makes the key if
// the data directory has none (a publication), otherwise its absence is
// an error (a proof: no tree was ever published with a key).
func (s *Server) porProver(create bool) (*attest.Prover, []byte, error) {
	s.por.mu.Lock()
	defer s.por.mu.Unlock()
	if s.por.prover == nil {
		load := reserves.LoadKey
		if create {
			load = reserves.LoadOrCreateKey
		}
		key, err := load(s.cfg.DataDir)
		if err != nil {
			return nil, nil, err
		}
		s.por.key, s.por.prover = key, attest.NewProver(key, s.core.StateAt)
	}
	return s.por.prover, s.por.key, nil
}

// LiabilitiesRootView is a published liabilities root as the public sees
// it.
type LiabilitiesRootView struct {
	Asset         string `json:"asset"`
	Seq           uint64 `json:"seq"`
	Time          string `json:"time"`
	Size          uint64 `json:"size"`
	Hash          string `json:"hash"`
	Total         string `json:"total"`
	PublishedSeq  uint64 `json:"published_seq"`
	PublishedTime string `json:"published_time"`
}

func rootView(r core.PublishedRoot) LiabilitiesRootView {
	return LiabilitiesRootView{Asset: r.Asset, Seq: r.Seq, Time: time.Unix(0, r.Time).UTC().Format(time.RFC3339Nano), Size: r.Size,
		Hash: r.Hash.String(), Total: r.Total.String(), PublishedSeq: r.PublishedSeq, PublishedTime: time.Unix(0, r.PublishedTime).UTC().Format(time.RFC3339Nano)}
}

// liabilitiesRoots lists the published roots, newest first, for anyone:
// every customer should find the same root as every other.
func (s *Server) liabilitiesRoots(w http.ResponseWriter, r *http.Request) {
	asset := strings.ToUpper(r.URL.Query().Get("asset"))
	out := []LiabilitiesRootView{}
	s.core.Read(func(st *core.State) {
		for i := len(st.Liabilities) - 1; i >= 0; i-- {
			if p := st.Liabilities[i]; asset == "" || p.Asset == asset {
				out = append(out, rootView(p))
			}
		}
	})
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

// myReservesProof answers the customer's inclusion proof in the asset's
// last published liabilities tree.
func (s *Server) myReservesProof(w http.ResponseWriter, r *http.Request) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	asset := strings.ToUpper(r.URL.Query().Get("asset"))
	if !sumtree.ValidAsset(asset) {
		writeProblem(w, http.StatusBadRequest, "malformed request", "asset: an asset code such as BTC")
		return
	}
	var pub core.PublishedRoot
	var ok bool
	s.core.Read(func(st *core.State) { pub, ok = st.PublishedLiabilities(asset) })
	if !ok {
		writeProblem(w, http.StatusNotFound, "not found", "no liabilities tree of "+asset+" is published")
		return
	}
	prover, _, err := s.porProver(false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cp, err := prover.Proof(r.Context(), pub, p.Session.Customer)
	switch {
	case errors.Is(err, reserves.ErrNotInTree):
		writeProblem(w, http.StatusNotFound, "not found", "you had no account of "+asset+" at the tree's journal entry")
		return
	case errors.Is(err, attest.ErrRootMismatch):
		s.log.Error("PUBLISHED LIABILITIES ROOT DOES NOT MATCH THE JOURNAL", "asset", asset, "err", err)
		writeProblem(w, http.StatusInternalServerError, "internal error", "")
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cp)
}

// PublishLiabilitiesRequest is the body of POST /v1/reserves/liabilities:
// the journal entry the trees are of (0: the head) and the assets (none:
// every listed asset).
type PublishLiabilitiesRequest struct {
	At     uint64   `json:"at,omitempty"`
	Assets []string `json:"assets,omitempty"`
}

// publishLiabilities builds the trees at an entry and journals their
// roots, as the operator.
func (s *Server) publishLiabilities(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.operator(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req PublishLiabilitiesRequest
	if len(body) > 0 {
		if err := decodeStrict(body, &req); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if len(req.Assets) > core.MaxRootsPerPublication {
		writeProblem(w, http.StatusUnprocessableEntity, "invalid request", "too many assets")
		return
	}
	seq := req.At
	if seq == 0 {
		seq, _, _ = s.core.Journal().Head()
	}
	_, key, err := s.porProver(true)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	recs, err := attest.Publish(r.Context(), s.core, key, p.Session.Operator, seq, req.Assets, s.now())
	switch {
	case errors.Is(err, attest.ErrUnknownAsset):
		writeProblem(w, http.StatusUnprocessableEntity, "invalid request", "an asset is not listed")
		return
	case errors.Is(err, core.ErrLiabilitiesConflict), errors.Is(err, core.ErrLiabilitiesOrder):
		writeProblem(w, http.StatusConflict, "conflict", "a root of a later or the same entry is published differently")
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	out := make([]LiabilitiesRootView, len(recs))
	for i, rec := range recs {
		out[i] = rootView(rec)
	}
	writeJSON(w, http.StatusCreated, map[string]any{"items": out})
}
