package api

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"kinko/internal/ledger"
	"kinko/internal/people"
)

// A customer's password hash and sealed TOTP seed are not journaled: the
// journal is streamed to the co-signer's and the watcher's hosts, which
// need neither. The journal keeps a commitment (people.Credentials.Commit,
// credCommit); the record it commits to lives in the API's store on the
// core's host, under the customer and the commitment, itself sealed with
// the host's key (so a copy of the data directory holds nothing usable
// without the secrets directory). A record is written before the command
// that commits to it is journaled: a command that fails leaves an unused
// record, never a journaled commitment without its record. A record that
// does not hash to the journal's commitment is refused (no login).
//
// Store layout (in the API's Pebble store, beside the idempotency
// records): "cred/" customer(8) commitment(32) -> sealed credRecord.

// credRecord is what a commitment stands for.
type credRecord struct {
	PasswordHash string `json:"password_hash"` // argon2id PHC string
	TOTPSealed   string `json:"totp_sealed"`   // the TOTP seed, sealed
}

// errCredsMissing is a commitment whose record is not in the store.
var errCredsMissing = errors.New("api: the credentials the journal commits to are not in the store")

// credCommit is the commitment to a customer's credentials.
func credCommit(id ledger.OwnerID, r credRecord) string {
	h := sha256.New()
	h.Write([]byte("kinko credentials v1\x00"))
	binary.Write(h, binary.BigEndian, uint64(id))
	h.Write([]byte(r.PasswordHash))
	h.Write([]byte{0})
	h.Write([]byte(r.TOTPSealed))
	return hex.EncodeToString(h.Sum(nil))
}

func credKey(id ledger.OwnerID, commit string) []byte {
	b := append([]byte("cred/"), binary.BigEndian.AppendUint64(nil, uint64(id))...)
	c, _ := hex.DecodeString(commit)
	return append(b, c...)
}

// putCreds keeps r for customer id, durably, and returns its commitment.
func (s *Server) putCreds(id ledger.OwnerID, r credRecord) (string, error) {
	commit := credCommit(id, r)
	b, _ := json.Marshal(r)
	sealed, err := s.sealer.Seal(string(b), fmt.Sprintf("credentials:%d:%s", id, commit))
	if err != nil {
		return "", err
	}
	if err := s.idem.db.Set(credKey(id, commit), []byte(sealed), pebble.Sync); err != nil {
		return "", fmt.Errorf("api: credential store: %w", err)
	}
	return commit, nil
}

// credsOf returns the credentials of a customer: those of a data
// directory made before commitments from the journal, others from the
// store, checked against the commitment.
func (s *Server) credsOf(c people.Customer) (credRecord, error) {
	if c.Creds.Commit == "" {
		return credRecord{PasswordHash: c.Creds.PasswordHash, TOTPSealed: c.Creds.TOTPSealed}, nil
	}
	v, closer, err := s.idem.db.Get(credKey(c.ID, c.Creds.Commit))
	if errors.Is(err, pebble.ErrNotFound) {
		return credRecord{}, errCredsMissing
	}
	if err != nil {
		return credRecord{}, fmt.Errorf("api: credential store: %w", err)
	}
	sealed := string(v)
	closer.Close()
	pt, err := s.sealer.Open(sealed, fmt.Sprintf("credentials:%d:%s", c.ID, c.Creds.Commit))
	if err != nil {
		return credRecord{}, err
	}
	var r credRecord
	if err := json.Unmarshal([]byte(pt), &r); err != nil || credCommit(c.ID, r) != c.Creds.Commit {
		return credRecord{}, errCredsMissing
	}
	return r, nil
}
