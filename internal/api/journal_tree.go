package api

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"time"

	"kinko/internal/journal/tree"
)

// HeadView is the journal's head: the newest entry (seq, hash, time) and
// the signed tree head over every entry, a C2SP checkpoint to save and check
// the journal against later. Public: it holds only hashes.
type HeadView struct {
	Seq        uint64    `json:"seq"`
	Hash       string    `json:"hash"`
	Time       time.Time `json:"time"`
	Size       uint64    `json:"size"`
	Root       tree.Hash `json:"root"`
	SignedHead string    `json:"signed_head"`
}

func (s *Server) head(w http.ResponseWriter, r *http.Request) {
	note, h, err := s.core.SignedHead()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The entry of the tree's size, so that the two halves agree.
	e, err := s.core.Journal().Get(h.Size)
	v := HeadView{Seq: h.Size, Time: time.Unix(0, h.Time).UTC(), Size: h.Size, Root: h.Root, SignedHead: string(note)}
	if err == nil {
		v.Hash = e.Hash.String()
	} else if h.Size != 0 {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// sizeParam reads an optional tree size; absent, the journal's now.
func (s *Server) sizeParam(r *http.Request, name string) (uint64, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return s.core.Journal().TreeHead().Size, true
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil
}

// journalProof serves the inclusion proof of entry ?seq=N in the tree of
// ?size=S entries (default: now). The proof carries the entry itself, so it
// needs the journal stream token, like the stream.
func (s *Server) journalProof(w http.ResponseWriter, r *http.Request) {
	tok := r.Header.Get("Authorization")
	if len(tok) < 8 || subtle.ConstantTimeCompare([]byte(tok[7:]), []byte(s.streamToken)) != 1 || tok[:7] != "Bearer " {
		writeProblem(w, http.StatusUnauthorized, "unauthenticated", "an inclusion proof carries its entry: it needs the journal stream token")
		return
	}
	seq, err := strconv.ParseUint(r.URL.Query().Get("seq"), 10, 64)
	size, ok := s.sizeParam(r, "size")
	if err != nil || seq == 0 || !ok {
		writeProblem(w, http.StatusBadRequest, "malformed request", "seq must be a sequence number >= 1 and size, if given, a tree size")
		return
	}
	if n := s.core.Journal().TreeHead().Size; seq > size || size > n {
		writeProblem(w, http.StatusBadRequest, "malformed request", "need seq <= size <= the journal's size ("+strconv.FormatUint(n, 10)+")")
		return
	}
	p, err := s.core.Journal().InclusionProof(seq, size)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// journalConsistency serves the consistency proof from the tree of ?from=A
// entries to the tree of ?to=B (default: now). Public: hashes only.
func (s *Server) journalConsistency(w http.ResponseWriter, r *http.Request) {
	from, err := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
	to, ok := s.sizeParam(r, "to")
	if err != nil || !ok {
		writeProblem(w, http.StatusBadRequest, "malformed request", "from must be a tree size and to, if given, a tree size")
		return
	}
	if n := s.core.Journal().TreeHead().Size; from > to || to > n {
		writeProblem(w, http.StatusBadRequest, "malformed request", "need from <= to <= the journal's size ("+strconv.FormatUint(n, 10)+")")
		return
	}
	p, err := s.core.Journal().ConsistencyProof(from, to)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}
