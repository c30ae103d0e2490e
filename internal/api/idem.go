package api

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Idempotency records live in their own Pebble store beside the journal,
// keyed by who asked and the key they sent. They hold the first answer
// (status and body) and the SHA-256 of the request body, so that the same
// key with the same body gets the same answer, and with another body a 409.
// They outlive restarts. They are not in the journal: they are answers, and
// the commands they answered are journaled already. An answer may carry a
// secret (a sign-up's TOTP seed): the body is kept only sealed, with a key
// of the host's secrets directory (idempotency.key) and the record's key
// as associated data, so the store holds no secret in clear.

// idemTTL is how long a key is remembered.
const idemTTL = 24 * time.Hour

// MaxIdemKey bounds an Idempotency-Key header.
const MaxIdemKey = 128

type idemStore struct{ db *pebble.DB }

type idemRecord struct {
	BodyHash [32]byte `json:"body_hash"`
	Status   int      `json:"status"`
	Type     string   `json:"type"`
	Body     []byte   `json:"body,omitempty"` // records written before sealing
	Sealed   string   `json:"sealed,omitempty"`
	Time     int64    `json:"time"`
}

func openIdem(dir string) (*idemStore, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quiet{}})
	if err != nil {
		return nil, fmt.Errorf("api: idempotency store: %w", err)
	}
	return &idemStore{db: db}, nil
}

type quiet struct{}

func (quiet) Infof(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (quiet) Fatalf(f string, a ...any) {
	panic(fmt.Sprintf(f, a...))
}

func (s *idemStore) Close() error { return s.db.Close() }

func (s *idemStore) get(k []byte, now time.Time) (idemRecord, bool) {
	v, c, err := s.db.Get(k)
	if err != nil {
		return idemRecord{}, false
	}
	defer c.Close()
	var rec idemRecord
	if json.Unmarshal(v, &rec) != nil || now.Sub(time.Unix(0, rec.Time)) > idemTTL {
		return idemRecord{}, false
	}
	return rec, true
}

func (s *idemStore) put(k []byte, rec idemRecord) error {
	b, _ := json.Marshal(rec)
	return s.db.Set(k, b, pebble.Sync)
}

var errIdemConflict = errors.New("idempotency key reused with another body")

// idempotent wraps a state-changing POST handler: with an Idempotency-Key
// header, the first answer is kept and given again for the same body. The
// handler reads the body from the request as usual.
func (s *Server) idempotent(h func(w http.ResponseWriter, r *http.Request, body []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(w, r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		if key == "" {
			h(w, r, body)
			return
		}
		if len(key) > MaxIdemKey {
			writeProblem(w, http.StatusBadRequest, "malformed request", "Idempotency-Key too long")
			return
		}
		who := "anonymous"
		if p, err := s.principal(r); err == nil {
			who = fmt.Sprintf("%x", p.Token[:8])
		}
		k := []byte("idem/" + r.Method + " " + r.URL.Path + "/" + who + "/" + key)
		sum := sha256.Sum256(body)
		now := s.now()
		if rec, ok := s.idem.get(k, now); ok {
			if rec.BodyHash != sum {
				writeProblem(w, http.StatusConflict, "conflict", errIdemConflict.Error())
				return
			}
			body := rec.Body
			if rec.Sealed != "" {
				pt, err := s.idemKey.Open(rec.Sealed, string(k))
				if err != nil {
					s.log.Error("idempotency record does not open", "err", err)
					writeProblem(w, http.StatusConflict, "conflict", "the first answer to this key cannot be given again; use a new key")
					return
				}
				body = []byte(pt)
			}
			w.Header().Set("Idempotent-Replayed", "true")
			w.Header().Set("Content-Type", rec.Type)
			w.WriteHeader(rec.Status)
			w.Write(body)
			return
		}
		rw := httptest.NewRecorder()
		h(rw, r, body)
		res := rw.Result()
		// A refusal to try now (429) is not the answer to keep: the same
		// key is good again once the bucket refilled.
		if res.StatusCode < 500 && res.StatusCode != http.StatusTooManyRequests {
			sealed, err := s.idemKey.Seal(rw.Body.String(), string(k))
			if err == nil {
				err = s.idem.put(k, idemRecord{BodyHash: sum, Status: res.StatusCode, Type: rw.Header().Get("Content-Type"), Sealed: sealed, Time: now.UnixNano()})
			}
			if err != nil {
				s.log.Error("idempotency record not written", "err", err)
			}
		}
		for k, v := range rw.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(res.StatusCode)
		w.Write(rw.Body.Bytes())
	}
}
