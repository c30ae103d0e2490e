package people

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"kinko/internal/passkey"
)

// Key is an operator's enrolled credential: a WebAuthn security key or
// passkey, or a software CLI key. Only its public half is kept.
type Key struct {
	ID        []byte `json:"id"`
	PublicKey []byte `json:"public_key"` // COSE_Key
	Label     string `json:"label"`
	Counter   uint32 `json:"counter"` // the last sign counter seen
	Added     int64  `json:"added"`
	// Seq is the journal entry that made it active (0 while pending).
	Seq uint64 `json:"seq,omitempty"`
}

// Fingerprint is the short form of a public key that the enrolling
// operator reads out to the admins who approve it: the first 8 bytes of
// SHA-256(COSE key), in hex.
func Fingerprint(cose []byte) string {
	h := sha256.Sum256(cose)
	return hex.EncodeToString(h[:8])
}

// Bounds on credentials.
const (
	// MaxKeys bounds an operator's credentials, active and pending each.
	MaxKeys = 8
	// MaxEnrolTTL bounds how long an enrolment code stays usable.
	MaxEnrolTTL = int64(7 * 24 * 3600 * 1e9)
	// MinFounders is the smallest founding set: two admins, so that
	// every change after bootstrap has someone to approve it.
	MinFounders = 2
	// MaxFounders bounds the founding set.
	MaxFounders = 16
)

// Errors of credentials and signatures.
var (
	ErrBootstrapped    = errors.New("people: operators exist; changes go through two-person requests")
	ErrNotBootstrapped = errors.New("people: no operators yet: bootstrap on the core's host first")
	ErrEnrolCode       = errors.New("people: enrolment code wrong, used or expired")
	ErrKeyUnknown      = errors.New("people: credential not enrolled for this operator")
	ErrKeyExists       = errors.New("people: credential already enrolled")
	ErrAssertion       = errors.New("people: the operator's signature is missing or does not verify")
	ErrReplayed        = errors.New("people: this signed request was already used")
	ErrSubject         = errors.New("people: nobody approves a change to themselves")
	ErrNoKey           = errors.New("people: operator has no enrolled credential")
)

// Founder is one of the founding operators created by bootstrap.
type Founder struct {
	Name  string `json:"name"`
	Roles []Role `json:"roles"`
	// Code is SHA-256 of the one-time enrolment code given to them.
	Code [32]byte `json:"code"`
}

// Enrolment is a one-time code an operator enrols a credential with.
type Enrolment struct {
	Code    [32]byte `json:"code"` // SHA-256 of the code
	Expires int64    `json:"expires"`
}

// RP returns the relying party the journal configured: whose assertions
// count.
func (s *State) RP() passkey.RP { return s.rp }

// Bootstrapped reports whether the founding operators exist.
func (s *State) Bootstrapped() bool { return len(s.operators) > 0 }

// Bootstrap creates the founding operators of an empty journal, each with
// a one-time enrolment code (its hash), and journals the relying party.
// It is done on the core's host (`kinko operators bootstrap`); once any
// operator exists it is refused, and every later change to operators and
// credentials is a two-person request.
func (s *State) Bootstrap(rp passkey.RP, founders []Founder, expires, t int64) error {
	if len(s.operators) > 0 {
		return ErrBootstrapped
	}
	if err := rp.Check(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(founders) < MinFounders || len(founders) > MaxFounders {
		return fmt.Errorf("%w: %d-%d founders", ErrInvalid, MinFounders, MaxFounders)
	}
	if expires <= t || expires-t > MaxEnrolTTL {
		return fmt.Errorf("%w: enrolment expiry", ErrInvalid)
	}
	admins := 0
	seen := map[string]bool{}
	for _, f := range founders {
		if !nameRe.MatchString(f.Name) || seen[f.Name] || !validRoles(f.Roles) || f.Code == ([32]byte{}) {
			return fmt.Errorf("%w: founder %q", ErrInvalid, f.Name)
		}
		seen[f.Name] = true
		if hasRole(f.Roles, RoleAdmin) {
			admins++
		}
	}
	if admins < MinFounders {
		return fmt.Errorf("%w: at least %d founders must be admins", ErrInvalid, MinFounders)
	}
	s.rp = passkey.RP{ID: rp.ID, Origins: append([]string(nil), rp.Origins...)}
	for _, f := range founders {
		o := Operator{Name: f.Name, Roles: append([]Role(nil), f.Roles...), Created: t, Founder: true,
			Enrol: &Enrolment{Code: f.Code, Expires: expires}}
		s.opIdx[o.Name] = len(s.operators)
		s.operators = append(s.operators, o)
	}
	return nil
}

func validRoles(rs []Role) bool {
	if len(rs) == 0 || len(rs) > len(AllRoles) {
		return false
	}
	for i, r := range rs {
		if !ValidRole(r) || hasRole(rs[:i], r) {
			return false
		}
	}
	return true
}

func hasRole(rs []Role, r Role) bool {
	for _, v := range rs {
		if v == r {
			return true
		}
	}
	return false
}

func validKey(k Key) error {
	if len(k.ID) == 0 || len(k.ID) > passkey.MaxCredentialID || !validText(k.Label, 128) {
		return fmt.Errorf("%w: credential id or label", ErrInvalid)
	}
	if _, err := passkey.ParseKey(k.PublicKey); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// findKey returns the index of the credential with id among ks.
func findKey(ks []Key, id []byte) int {
	for i, k := range ks {
		if bytes.Equal(k.ID, id) {
			return i
		}
	}
	return -1
}

// keyInUse reports whether any operator has the credential, active or
// pending: a credential belongs to one operator only.
func (s *State) keyInUse(id, cose []byte) bool {
	for _, o := range s.operators {
		for _, ks := range [][]Key{o.Keys, o.Pending} {
			for _, k := range ks {
				if bytes.Equal(k.ID, id) || bytes.Equal(k.PublicKey, cose) {
					return true
				}
			}
		}
	}
	return false
}

// EnrolWithCode records a credential registered with an operator's
// one-time enrolment code, and uses the code up. A founder's first
// credential is active at once (bootstrap has nobody to approve it yet);
// anyone else's waits, pending, for an enrol_credential request approved
// by two admins.
func (s *State) EnrolWithCode(name, code string, k Key, t int64, seq uint64) (active bool, err error) {
	i, ok := s.opIdx[name]
	if !ok {
		return false, ErrOperatorUnknown
	}
	o := &s.operators[i]
	if o.Enrol == nil || t >= o.Enrol.Expires || sha256.Sum256([]byte(code)) != o.Enrol.Code {
		return false, ErrEnrolCode
	}
	if err := validKey(k); err != nil {
		return false, err
	}
	if s.keyInUse(k.ID, k.PublicKey) {
		return false, ErrKeyExists
	}
	k.Added, k.Counter = t, 0
	if o.Founder && len(o.Keys) == 0 {
		k.Seq = seq
		o.Keys = append(o.Keys, k)
		o.Enrol = nil
		return true, nil
	}
	if len(o.Pending) >= MaxKeys {
		return false, fmt.Errorf("%w: %d pending credentials", ErrInvalid, MaxKeys)
	}
	k.Seq = 0
	o.Pending = append(o.Pending, k)
	o.Enrol = nil
	return false, nil
}

// AddPending records a further credential an operator registered while
// signed in with one they hold: pending until two admins approve it.
func (s *State) AddPending(name string, k Key, t int64) error {
	i, ok := s.opIdx[name]
	if !ok {
		return ErrOperatorUnknown
	}
	o := &s.operators[i]
	if err := validKey(k); err != nil {
		return err
	}
	if s.keyInUse(k.ID, k.PublicKey) {
		return ErrKeyExists
	}
	if len(o.Pending) >= MaxKeys {
		return fmt.Errorf("%w: %d pending credentials", ErrInvalid, MaxKeys)
	}
	k.Added, k.Counter, k.Seq = t, 0, 0
	o.Pending = append(o.Pending, k)
	return nil
}

// Signature is an assertion checked against an operator's credential, to
// be recorded once the command it signs has applied.
type Signature struct {
	Operator string
	Key      int // index in the operator's Keys
	Counter  uint32
	Digest   [32]byte
}

// CheckSignature verifies that operator signed digest with one of their
// active credentials, and that the digest was never signed before. It
// changes nothing: Record does, once the signed command applied.
func (s *State) CheckSignature(operator string, digest [32]byte, a *passkey.Assertion) (Signature, error) {
	i, ok := s.opIdx[operator]
	if !ok {
		return Signature{}, ErrOperatorUnknown
	}
	o := &s.operators[i]
	if len(o.Keys) == 0 {
		return Signature{}, ErrNoKey
	}
	if a == nil {
		return Signature{}, fmt.Errorf("%w: no assertion", ErrAssertion)
	}
	if _, used := s.used[digest]; used {
		return Signature{}, ErrReplayed
	}
	ki := findKey(o.Keys, a.Credential)
	if ki < 0 {
		return Signature{}, ErrKeyUnknown
	}
	n, err := passkey.Verify(s.rp, o.Keys[ki].PublicKey, o.Keys[ki].Counter, digest[:], *a)
	if err != nil {
		return Signature{}, fmt.Errorf("%w: %w", ErrAssertion, err)
	}
	return Signature{Operator: operator, Key: ki, Counter: n, Digest: digest}, nil
}

// Record makes a checked signature count: the credential's counter moves
// on and the digest can never be used again.
func (s *State) Record(sig Signature) {
	o := &s.operators[s.opIdx[sig.Operator]]
	o.Keys[sig.Key].Counter = sig.Counter
	s.used[sig.Digest] = struct{}{}
	s.usedOrder = append(s.usedOrder, sig.Digest)
}

// Request kinds about operators and credentials. Each is proposed by one
// admin and approved by another who is neither the proposer nor the
// operator it changes.
const (
	KindAddOperator      RequestKind = "add_operator"
	KindEnrolCredential  RequestKind = "enrol_credential"
	KindRemoveCredential RequestKind = "remove_credential"
	// KindIssueEnrolment gives an existing operator a new one-time
	// enrolment code (a lost key, a new device); what they register with
	// it is pending until an enrol_credential approval.
	KindIssueEnrolment RequestKind = "issue_enrolment"
)

// AddOperatorPayload is the payload of an add_operator request. Code is
// the hex SHA-256 of the one-time enrolment code the new operator will
// register their credential with; the credential then needs its own
// enrol_credential approval.
type AddOperatorPayload struct {
	Operator    string `json:"operator"`
	Roles       []Role `json:"roles"`
	Code        string `json:"code"`
	CodeExpires int64  `json:"code_expires"`
}

// CredentialPayload is the payload of enrol_credential (a pending
// credential becomes active) and remove_credential. Fingerprint must be
// the credential's: what the approving admin compared with the operator.
type CredentialPayload struct {
	Operator    string `json:"operator"`
	Credential  []byte `json:"credential"`
	Fingerprint string `json:"fingerprint"`
}

// subject returns the operator a request of this package's kinds changes.
func subject(r Request) string {
	switch r.Kind {
	case KindSetRoles:
		var p SetRolesPayload
		strictJSON(r.Payload, &p)
		return p.Operator
	case KindAddOperator, KindIssueEnrolment:
		var p AddOperatorPayload
		strictJSON(r.Payload, &p)
		return p.Operator
	case KindEnrolCredential, KindRemoveCredential:
		var p CredentialPayload
		strictJSON(r.Payload, &p)
		return p.Operator
	}
	return ""
}

func (s *State) checkAdminRequest(r Request) error {
	if err := s.authorize(r.Requester, RoleAdmin); err != nil {
		return err
	}
	if r.RequiredRole != RoleAdmin {
		return fmt.Errorf("%w: operator and credential changes are approved by an admin", ErrInvalid)
	}
	return nil
}

func decodeCode(hexCode string) ([32]byte, error) {
	var c [32]byte
	b, err := hex.DecodeString(hexCode)
	if err != nil || len(b) != 32 {
		return c, fmt.Errorf("%w: code must be 64 hex digits (SHA-256 of the enrolment code)", ErrInvalid)
	}
	copy(c[:], b)
	return c, nil
}

func (s *State) checkAddOperator(r Request) error {
	if err := s.checkAdminRequest(r); err != nil {
		return err
	}
	var p AddOperatorPayload
	if err := strictJSON(r.Payload, &p); err != nil {
		return err
	}
	if !nameRe.MatchString(p.Operator) || !validRoles(p.Roles) {
		return fmt.Errorf("%w: operator name or roles", ErrInvalid)
	}
	if _, ok := s.opIdx[p.Operator]; ok {
		return ErrOperatorExists
	}
	if _, err := decodeCode(p.Code); err != nil {
		return err
	}
	if p.CodeExpires <= 0 || p.CodeExpires-r.Expires > MaxEnrolTTL {
		return fmt.Errorf("%w: code expiry", ErrInvalid)
	}
	return nil
}

func (s *State) checkIssueEnrolment(r Request) error {
	if err := s.checkAdminRequest(r); err != nil {
		return err
	}
	var p AddOperatorPayload
	if err := strictJSON(r.Payload, &p); err != nil {
		return err
	}
	if _, ok := s.opIdx[p.Operator]; !ok {
		return ErrOperatorUnknown
	}
	if len(p.Roles) != 0 {
		return fmt.Errorf("%w: an enrolment changes no roles", ErrInvalid)
	}
	if _, err := decodeCode(p.Code); err != nil {
		return err
	}
	if p.CodeExpires <= 0 || p.CodeExpires-r.Expires > MaxEnrolTTL {
		return fmt.Errorf("%w: code expiry", ErrInvalid)
	}
	return nil
}

func (s *State) checkCredential(r Request) error {
	if err := s.checkAdminRequest(r); err != nil {
		return err
	}
	var p CredentialPayload
	if err := strictJSON(r.Payload, &p); err != nil {
		return err
	}
	o, ok := s.Operator(p.Operator)
	if !ok {
		return ErrOperatorUnknown
	}
	ks := o.Pending
	if r.Kind == KindRemoveCredential {
		ks = o.Keys
	}
	i := findKey(ks, p.Credential)
	if i < 0 {
		return ErrKeyUnknown
	}
	if p.Fingerprint != Fingerprint(ks[i].PublicKey) {
		return fmt.Errorf("%w: fingerprint is not the credential's", ErrInvalid)
	}
	return nil
}

// applyOperatorRequest makes an approved request of this package's
// operator kinds take effect.
func (s *State) applyOperatorRequest(r Request, t int64, seq uint64) error {
	switch r.Kind {
	case KindAddOperator:
		var p AddOperatorPayload
		strictJSON(r.Payload, &p)
		if _, ok := s.opIdx[p.Operator]; ok {
			return ErrOperatorExists
		}
		code, _ := decodeCode(p.Code)
		if t >= p.CodeExpires {
			return ErrEnrolCode
		}
		o := Operator{Name: p.Operator, Roles: append([]Role(nil), p.Roles...), Created: t, Enrol: &Enrolment{Code: code, Expires: p.CodeExpires}}
		s.opIdx[o.Name] = len(s.operators)
		s.operators = append(s.operators, o)
	case KindIssueEnrolment:
		var p AddOperatorPayload
		strictJSON(r.Payload, &p)
		code, _ := decodeCode(p.Code)
		if t >= p.CodeExpires {
			return ErrEnrolCode
		}
		s.operators[s.opIdx[p.Operator]].Enrol = &Enrolment{Code: code, Expires: p.CodeExpires}
	case KindEnrolCredential:
		var p CredentialPayload
		strictJSON(r.Payload, &p)
		o := &s.operators[s.opIdx[p.Operator]]
		i := findKey(o.Pending, p.Credential)
		if i < 0 {
			return ErrKeyUnknown
		}
		if len(o.Keys) >= MaxKeys {
			return fmt.Errorf("%w: %d credentials", ErrInvalid, MaxKeys)
		}
		k := o.Pending[i]
		k.Seq = seq
		o.Keys = append(o.Keys, k)
		o.Pending = append(o.Pending[:i:i], o.Pending[i+1:]...)
	case KindRemoveCredential:
		var p CredentialPayload
		strictJSON(r.Payload, &p)
		o := &s.operators[s.opIdx[p.Operator]]
		i := findKey(o.Keys, p.Credential)
		if i < 0 {
			return ErrKeyUnknown
		}
		o.Keys = append(o.Keys[:i:i], o.Keys[i+1:]...)
	}
	return nil
}

// checkOperatorEffect tells whether approving r now would take effect.
func (s *State) checkOperatorEffect(r Request, t int64) error {
	switch r.Kind {
	case KindAddOperator:
		var p AddOperatorPayload
		strictJSON(r.Payload, &p)
		if _, ok := s.opIdx[p.Operator]; ok {
			return ErrOperatorExists
		}
		if t >= p.CodeExpires {
			return ErrEnrolCode
		}
	case KindIssueEnrolment:
		var p AddOperatorPayload
		strictJSON(r.Payload, &p)
		if t >= p.CodeExpires {
			return ErrEnrolCode
		}
	case KindEnrolCredential, KindRemoveCredential:
		return s.checkCredential(Request{Kind: r.Kind, Payload: r.Payload, Requester: r.Requester, RequiredRole: r.RequiredRole})
	case KindSetRoles:
		var p SetRolesPayload
		strictJSON(r.Payload, &p)
		if _, ok := s.opIdx[p.Operator]; !ok {
			return ErrOperatorUnknown
		}
	}
	return nil
}

// CanExecute tells whether actor may execute an approved compensation
// plan: an operator, approver or admin.
func (s *State) CanExecute(actor string) error {
	return s.authorize(actor, RoleOperator, RoleApprover, RoleAdmin)
}
