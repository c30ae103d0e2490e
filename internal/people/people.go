// Package people is the journaled state of everyone who acts in kinko:
// customers (sign-up, password, TOTP, sessions, lock-out, KYC) and operators
// (roles, TOTP, sessions), the two-person rule that every sensitive change
// goes through, and asset listing governance.
//
// Like every part of the core's state it changes only in the deterministic
// apply. Secrets never reach it in clear: passwords arrive as argon2id
// hashes, TOTP seeds sealed with a key that never leaves the API's host,
// session tokens as their SHA-256. Hashing, verifying and clocks are the
// API's business; apply records facts, such as "login with TOTP time step
// N", and refuses a step at or below the last one used (replayed codes).
package people

import (
	"errors"
	"strings"

	"kinko/internal/ledger"
	"kinko/internal/passkey"
)

// KYC is a customer's identity verification state.
type KYC string

// KYC states. Only verified customers may trade or withdraw.
const (
	KYCPending  KYC = "pending"
	KYCVerified KYC = "verified"
	KYCRejected KYC = "rejected"
)

// Role is an operator role.
type Role string

// Roles.
const (
	RoleAdmin    Role = "admin"
	RoleOperator Role = "operator"
	RoleApprover Role = "approver"
	RoleAuditor  Role = "auditor"
	RoleCISO     Role = "ciso"
)

// AllRoles lists the roles.
var AllRoles = []Role{RoleAdmin, RoleOperator, RoleApprover, RoleAuditor, RoleCISO}

// ValidRole reports whether r is a role.
func ValidRole(r Role) bool {
	for _, v := range AllRoles {
		if v == r {
			return true
		}
	}
	return false
}

// Credentials are what a person logs in with, as the journal keeps them:
// a commitment (Commit), the SHA-256 of the password's argon2id hash and
// the sealed TOTP seed that the API keeps in its own store on the core's
// host (CredentialCommit), never the secrets themselves, so that the
// journal stream the co-signer and the watcher follow carries none.
// PasswordHash and TOTPSealed are only in the entries of data directories
// made before commitments (read, never written any more).
type Credentials struct {
	PasswordHash string `json:"password_hash,omitempty"` // argon2id, PHC string (legacy entries)
	TOTPSealed   string `json:"totp_sealed,omitempty"`   // the TOTP seed, sealed by the API's key (legacy entries)
	// Commit is the hex SHA-256 commitment to the credentials kept apart.
	Commit      string `json:"commit,omitempty"`
	LastStep    uint64 `json:"last_step"`    // the last TOTP time step accepted
	Failed      int    `json:"failed"`       // failed logins in a row
	LockedUntil int64  `json:"locked_until"` // unix ns
	// Lockouts counts the login lock-outs in a row: each lasts twice the
	// one before (LockPeriod); a login resets it.
	Lockouts int `json:"lockouts,omitempty"`
	// StepFailed are the failed step-up codes in a row, StepLockedUntil
	// the end of the step-up lock-out, StepLockouts its growth.
	StepFailed      int   `json:"step_failed,omitempty"`
	StepLockedUntil int64 `json:"step_locked_until,omitempty"`
	StepLockouts    int   `json:"step_lockouts,omitempty"`
	// Changed is when the password or the second factor last changed
	// (unix ns): withdrawals wait the cool-down after it.
	Changed int64 `json:"changed,omitempty"`
}

// Customer is a customer's record.
type Customer struct {
	ID      ledger.OwnerID `json:"id"`
	Email   string         `json:"email"`
	Name    string         `json:"name"`
	KYC     KYC            `json:"kyc"`
	Created int64          `json:"created"`
	Creds   Credentials    `json:"creds"`
	// Devices are the hex SHA-256 of the device ids the customer logged
	// in from, newest last, at most MaxDevices: a login from another is
	// a new device, and the customer gets a notice.
	Devices []string `json:"devices,omitempty"`
	// Frozen, when set, halts the customer's withdrawals.
	Frozen *Freeze `json:"frozen,omitempty"`
}

// Operator is an operator's record. An operator acts only with an
// enrolled credential (Keys): they log in with it and sign every approval
// and sensitive action with it. Operators have no password.
type Operator struct {
	Name    string `json:"name"`
	Roles   []Role `json:"roles"`
	Created int64  `json:"created"`
	// Founder: created by bootstrap, whose first credential needs no
	// approval.
	Founder bool `json:"founder,omitempty"`
	// Enrol is the one-time enrolment code not yet used, if any.
	Enrol *Enrolment `json:"enrol,omitempty"`
	// Keys are the active credentials; Pending those registered and
	// waiting for two admins' approval.
	Keys    []Key `json:"keys,omitempty"`
	Pending []Key `json:"pending,omitempty"`
}

// HasRole reports whether o holds r.
func (o *Operator) HasRole(r Role) bool {
	for _, v := range o.Roles {
		if v == r {
			return true
		}
	}
	return false
}

// SessionKind says who a session belongs to.
type SessionKind string

// Session kinds.
const (
	SessionCustomer SessionKind = "customer"
	SessionOperator SessionKind = "operator"
)

// Session is a login. Only the token's SHA-256 is kept.
type Session struct {
	TokenHash [32]byte       `json:"token_hash"`
	Kind      SessionKind    `json:"kind"`
	Customer  ledger.OwnerID `json:"customer,omitempty"`
	Operator  string         `json:"operator,omitempty"`
	Created   int64          `json:"created"`
	Expires   int64          `json:"expires"`
	Revoked   bool           `json:"revoked"`
	// StepFailed are the failed step-up codes in this session: at
	// MaxFailed the session ends.
	StepFailed int `json:"step_failed,omitempty"`
	// SteppedUp is when a step-up code last succeeded in this session.
	SteppedUp int64 `json:"stepped_up,omitempty"`
	// Device is the hex SHA-256 of the device id the login came from.
	Device string `json:"device,omitempty"`
}

// Valid reports whether the session may act at time now.
func (s *Session) Valid(now int64) bool { return !s.Revoked && now < s.Expires }

// Bounds and policy.
const (
	// MaxFailed failed logins (or failed step-up codes) in a row lock an
	// account for LockFor, and each lock-out in a row for twice the one
	// before, up to LockFor << MaxLockShift (LockPeriod).
	MaxFailed    = 5
	LockFor      = int64(15 * 60 * 1e9)
	MaxLockShift = 6
	// MaxText bounds names, reasons and other free text.
	MaxText = 1024
	// MaxSessions bounds the sessions kept; the oldest expired go first.
	MaxSessions = 1 << 20
)

// Errors of people commands; callers test them with errors.Is.
var (
	ErrEmailTaken       = errors.New("people: email already registered")
	ErrCustomerExists   = errors.New("people: customer id taken")
	ErrCustomerUnknown  = errors.New("people: customer unknown")
	ErrOperatorExists   = errors.New("people: operator exists")
	ErrOperatorUnknown  = errors.New("people: operator unknown")
	ErrInvalid          = errors.New("people: invalid field")
	ErrLocked           = errors.New("people: locked after too many failed attempts")
	ErrTOTPReplayed     = errors.New("people: TOTP code already used")
	ErrSessionExists    = errors.New("people: session exists")
	ErrSessionUnknown   = errors.New("people: session unknown")
	ErrRequestUnknown   = errors.New("people: approval request unknown")
	ErrRequestExists    = errors.New("people: approval request id exists")
	ErrRequestClosed    = errors.New("people: approval request no longer pending")
	ErrRequestExpired   = errors.New("people: approval request expired")
	ErrSelfApproval     = errors.New("people: nobody approves their own request")
	ErrWrongRole        = errors.New("people: approver lacks the required role")
	ErrNotAuthorized    = errors.New("people: actor lacks the role for this")
	ErrReviewMissing    = errors.New("people: asset has no risk review by a ciso")
	ErrAssetNotProposed = errors.New("people: asset is not awaiting listing")
)

// State is the people state.
type State struct {
	customers []Customer
	custIdx   map[ledger.OwnerID]int
	emails    map[string]ledger.OwnerID
	operators []Operator
	opIdx     map[string]int
	sessions  map[[32]byte]*Session
	sessOrder [][32]byte
	// notices are what customers are told, oldest first, at most
	// MaxNotices (NoticesOf, Notices).
	notices    []Notice
	requests   []Request
	reqIdx     map[string]int
	reviews    []Review
	proposed   map[ledger.AssetID]bool // created, not yet enabled
	proposedAt []ledger.AssetID
	// rp is the relying party whose assertions count, journaled by
	// bootstrap.
	rp passkey.RP
	// used are the digests signed so far, each usable once; usedOrder
	// keeps them in the order used, for the encoding.
	used      map[[32]byte]struct{}
	usedOrder [][32]byte
}

// New returns an empty state.
func New() *State {
	return &State{
		custIdx: map[ledger.OwnerID]int{}, emails: map[string]ledger.OwnerID{},
		opIdx: map[string]int{}, sessions: map[[32]byte]*Session{},
		reqIdx: map[string]int{}, proposed: map[ledger.AssetID]bool{}, used: map[[32]byte]struct{}{},
	}
}

// NormalizeEmail returns the canonical form of an email address.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// ValidText reports whether s is acceptable free text: not blank, at most
// MaxText bytes, one line.
func ValidText(s string) bool { return validText(s, MaxText) }

func validText(s string, maxLen int) bool {
	return strings.TrimSpace(s) != "" && len(s) <= maxLen && !strings.ContainsAny(s, "\x00\r\n")
}

// Customer returns a customer by id.
func (s *State) Customer(id ledger.OwnerID) (Customer, bool) {
	i, ok := s.custIdx[id]
	if !ok {
		return Customer{}, false
	}
	return s.customers[i], true
}

// CustomerByEmail returns a customer by email.
func (s *State) CustomerByEmail(email string) (Customer, bool) {
	id, ok := s.emails[NormalizeEmail(email)]
	if !ok {
		return Customer{}, false
	}
	return s.Customer(id)
}

// Customers returns customers in sign-up order from index start, at most n.
func (s *State) Customers(start, n int) []Customer {
	if start >= len(s.customers) {
		return nil
	}
	end := min(len(s.customers), start+n)
	return append([]Customer(nil), s.customers[start:end]...)
}

// CustomerCount returns the number of customers.
func (s *State) CustomerCount() int { return len(s.customers) }

// Operator returns an operator by name.
func (s *State) Operator(name string) (Operator, bool) {
	i, ok := s.opIdx[name]
	if !ok {
		return Operator{}, false
	}
	return s.operators[i], true
}

// Operators returns the operators in creation order.
func (s *State) Operators() []Operator { return append([]Operator(nil), s.operators...) }

// Session returns the session with the token hash.
func (s *State) Session(h [32]byte) (Session, bool) {
	ss, ok := s.sessions[h]
	if !ok {
		return Session{}, false
	}
	return *ss, true
}

// CanTrade reports whether a customer may trade or withdraw: verified KYC.
// It reads the one field in place: every order asks.
func (s *State) CanTrade(id ledger.OwnerID) bool {
	i, ok := s.custIdx[id]
	return ok && s.customers[i].KYC == KYCVerified
}

// AssetEnabled reports whether an asset may be deposited and traded: it
// was not proposed for listing, or its listing was approved.
func (s *State) AssetEnabled(id ledger.AssetID) bool { return !s.proposed[id] }

// Reviews returns the risk reviews, oldest first.
func (s *State) Reviews() []Review { return append([]Review(nil), s.reviews...) }

// Proposed returns the assets awaiting listing approval.
func (s *State) Proposed() []ledger.AssetID {
	var out []ledger.AssetID
	for _, id := range s.proposedAt {
		if s.proposed[id] {
			out = append(out, id)
		}
	}
	return out
}

// Requests returns approval requests, newest first.
func (s *State) Requests() []Request {
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[len(out)-1-i] = r
	}
	return out
}

// Request returns the approval request with id.
func (s *State) Request(id string) (Request, bool) {
	i, ok := s.reqIdx[id]
	if !ok {
		return Request{}, false
	}
	return s.requests[i], true
}
