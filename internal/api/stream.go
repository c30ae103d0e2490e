package api

import (
	"crypto/subtle"
	"net/http"
	"strconv"

	"kinko/internal/journal"
	"kinko/internal/stream"
)

// MaxStreamEntries bounds the entries of one journal stream answer.
const MaxStreamEntries = 10_000

// journalRaw serves the journal's stored entries from ?from=N as frames of
// a 4-byte big-endian length and the entry's bytes: the read-only stream
// the co-signer follows and verifies for itself. It needs the stream token
// (<data>/secrets/stream.token), not an operator session.
func (s *Server) journalRaw(w http.ResponseWriter, r *http.Request) {
	tok := r.Header.Get("Authorization")
	if len(tok) < 8 || subtle.ConstantTimeCompare([]byte(tok[7:]), []byte(s.streamToken)) != 1 || tok[:7] != "Bearer " {
		writeProblem(w, http.StatusUnauthorized, "unauthenticated", "the journal stream needs its token")
		return
	}
	from, err := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
	if err != nil || from == 0 {
		writeProblem(w, http.StatusBadRequest, "malformed request", "from must be a sequence number >= 1")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	n := 0
	s.core.Journal().Scan(from, func(e journal.Entry) error {
		if n++; n > MaxStreamEntries {
			return journal.ErrStop
		}
		return stream.WriteFrame(w, e.Encode())
	})
}

// StreamToken returns the token of the journal stream, for the co-signer's
// configuration (and tests).
func (s *Server) StreamToken() string { return s.streamToken }

// SignerToken returns the hot signer's token, for its configuration (and
// tests).
func (s *Server) SignerToken() string { return s.signerToken }

// WatcherToken returns a separate watcher's token, for its configuration
// (and tests).
func (s *Server) WatcherToken() string { return s.watcherToken }
