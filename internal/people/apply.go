package people

import (
	"encoding/json"
	"fmt"
	"regexp"

	"kinko/internal/ledger"
)

var (
	emailRe = regexp.MustCompile(`^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$`)
	nameRe  = regexp.MustCompile(`^[a-z][a-z0-9._-]{1,31}$`)
	idRe    = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
)

// ValidEmail reports whether s looks like an email address.
func ValidEmail(s string) bool { return emailRe.MatchString(NormalizeEmail(s)) }

func validCreds(c *Credentials) bool {
	if c.Commit != "" {
		return validCommit(c.Commit) && c.PasswordHash == "" && c.TOTPSealed == ""
	}
	return len(c.PasswordHash) > 20 && len(c.PasswordHash) < 512 && len(c.TOTPSealed) > 16 && len(c.TOTPSealed) < 512
}

// validCommit reports whether s is a credential commitment: 64 lower-case
// hex digits.
func validCommit(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// SignUp registers a customer with KYC pending. The ledger must already
// have id as a customer: the core registers both in one apply.
func (s *State) SignUp(c Customer, t int64) error {
	c.Email = NormalizeEmail(c.Email)
	if c.ID == 0 || c.ID >= ledger.OwnerHouseMin || !emailRe.MatchString(c.Email) || !validText(c.Name, 128) || !validCreds(&c.Creds) {
		return ErrInvalid
	}
	if _, ok := s.custIdx[c.ID]; ok {
		return ErrCustomerExists
	}
	if _, ok := s.emails[c.Email]; ok {
		return ErrEmailTaken
	}
	c.KYC, c.Created = KYCPending, t
	c.Creds = Credentials{PasswordHash: c.Creds.PasswordHash, TOTPSealed: c.Creds.TOTPSealed, Commit: c.Creds.Commit}
	c.Devices, c.Frozen = nil, nil
	s.custIdx[c.ID] = len(s.customers)
	s.emails[c.Email] = c.ID
	s.customers = append(s.customers, c)
	return nil
}

// CreateOperator is the command that once added operators on one admin's
// word. It is refused: operators are created by bootstrap on an empty
// journal (Bootstrap) and after that only by an approved add_operator
// request, proposed by one admin and approved by another.
func (s *State) CreateOperator(o Operator, actor string, t int64) error {
	if len(s.operators) > 0 {
		return ErrBootstrapped
	}
	return ErrNotBootstrapped
}

// creds returns the credentials of a customer or operator.
func (s *State) creds(kind SessionKind, customer ledger.OwnerID, operator string) (*Credentials, error) {
	switch kind {
	case SessionCustomer:
		i, ok := s.custIdx[customer]
		if !ok {
			return nil, ErrCustomerUnknown
		}
		return &s.customers[i].Creds, nil
	case SessionOperator:
		// Operators have no password or TOTP: they sign in with their
		// credential (OperatorLogin).
		return nil, fmt.Errorf("%w: operators sign in with their credential", ErrInvalid)
	}
	return nil, ErrInvalid
}

// OperatorLogin opens an operator's session once the core checked their
// assertion over the login challenge (CheckSignature).
func (s *State) OperatorLogin(sess Session, t int64) error {
	if sess.Kind != SessionOperator {
		return ErrInvalid
	}
	if _, ok := s.opIdx[sess.Operator]; !ok {
		return ErrOperatorUnknown
	}
	if sess.Expires <= t {
		return ErrInvalid
	}
	if _, ok := s.sessions[sess.TokenHash]; ok {
		return ErrSessionExists
	}
	sess.Created, sess.Revoked, sess.Customer = t, false, 0
	s.addSession(sess, t)
	return nil
}

// Login records a login whose password and TOTP code the API verified,
// with the code's time step, and opens a session. A locked account or a
// step at or below the last accepted one is refused and counts as a failed
// attempt. A login from a device the customer has not used before
// (sess.Device, the hex SHA-256 of the device id; empty for a client that
// keeps none) is told to them in a notice of entry seq.
func (s *State) Login(sess Session, step uint64, t int64, seq uint64) error {
	c, err := s.creds(sess.Kind, sess.Customer, sess.Operator)
	if err != nil {
		return err
	}
	if c.LockedUntil > t {
		return ErrLocked
	}
	if step <= c.LastStep {
		s.fail(c, t)
		return ErrTOTPReplayed
	}
	if sess.Expires <= t || (sess.Device != "" && !validCommit(sess.Device)) {
		return ErrInvalid
	}
	if _, ok := s.sessions[sess.TokenHash]; ok {
		return ErrSessionExists
	}
	c.LastStep, c.Failed, c.Lockouts = step, 0, 0
	sess.Created, sess.Revoked, sess.StepFailed, sess.SteppedUp = t, false, 0, 0
	s.addSession(sess, t)
	cu := &s.customers[s.custIdx[sess.Customer]]
	if sess.Device == "" || !containsString(cu.Devices, sess.Device) {
		if sess.Device != "" {
			cu.Devices = append(cu.Devices, sess.Device)
			if len(cu.Devices) > MaxDevices {
				cu.Devices = append([]string(nil), cu.Devices[len(cu.Devices)-MaxDevices:]...)
			}
		}
		s.notify(sess.Customer, NoticeNewDevice, "a login from a device not seen before", t, seq)
	}
	return nil
}

func containsString(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func (s *State) addSession(sess Session, t int64) {
	// Keep the table bounded: drop sessions that have ended, oldest first.
	for len(s.sessOrder) >= MaxSessions {
		h := s.sessOrder[0]
		s.sessOrder = s.sessOrder[1:]
		delete(s.sessions, h)
	}
	s.sessions[sess.TokenHash] = &sess
	s.sessOrder = append(s.sessOrder, sess.TokenHash)
}

func (s *State) fail(c *Credentials, t int64) {
	c.Failed++
	if c.Failed >= MaxFailed {
		c.LockedUntil = t + LockPeriod(c.Lockouts)
		c.Failed = 0
		c.Lockouts++
	}
}

// LockPeriod is how long the lock-out after n lock-outs in a row lasts:
// LockFor, doubled each time, at most LockFor << MaxLockShift.
func LockPeriod(n int) int64 { return LockFor << min(max(n, 0), MaxLockShift) }

// LoginFailed records a failed login (wrong password or code). Unknown
// names are not recorded: there is nothing to lock.
func (s *State) LoginFailed(kind SessionKind, customer ledger.OwnerID, operator string, t int64) error {
	c, err := s.creds(kind, customer, operator)
	if err != nil {
		return err
	}
	s.fail(c, t)
	return nil
}

// StepUp records a fresh TOTP code used to authorise a money-moving action
// in a session: the code's step must be newer than the last one used, and
// the customer's step-ups not locked out.
func (s *State) StepUp(h [32]byte, step uint64, t int64) error {
	ss, ok := s.sessions[h]
	if !ok || !ss.Valid(t) {
		return ErrSessionUnknown
	}
	c, err := s.creds(ss.Kind, ss.Customer, ss.Operator)
	if err != nil {
		return err
	}
	if c.StepLockedUntil > t {
		return ErrLocked
	}
	if step <= c.LastStep {
		return ErrTOTPReplayed
	}
	c.LastStep, c.StepFailed, c.StepLockouts = step, 0, 0
	ss.StepFailed, ss.SteppedUp = 0, t
	return nil
}

// StepUpFailed records a wrong step-up code in a session. MaxFailed in a
// row end the session, and lock the customer's step-ups (every session's)
// for LockPeriod of the lock-outs in a row: guessing a code is bounded by
// the journal, whatever the API's rate limits let through, and survives
// a restart.
func (s *State) StepUpFailed(h [32]byte, t int64) error {
	ss, ok := s.sessions[h]
	if !ok || !ss.Valid(t) {
		return ErrSessionUnknown
	}
	c, err := s.creds(ss.Kind, ss.Customer, ss.Operator)
	if err != nil {
		return err
	}
	ss.StepFailed++
	if ss.StepFailed >= MaxFailed {
		ss.Revoked = true
	}
	c.StepFailed++
	if c.StepFailed >= MaxFailed {
		c.StepLockedUntil = t + LockPeriod(c.StepLockouts)
		c.StepFailed = 0
		c.StepLockouts++
	}
	return nil
}

// Logout revokes a session.
func (s *State) Logout(h [32]byte) error {
	ss, ok := s.sessions[h]
	if !ok {
		return ErrSessionUnknown
	}
	ss.Revoked = true
	return nil
}

// authorize checks that actor is an operator holding one of roles.
func (s *State) authorize(actor string, roles ...Role) error {
	o, ok := s.Operator(actor)
	if !ok {
		return ErrOperatorUnknown
	}
	for _, r := range roles {
		if o.HasRole(r) {
			return nil
		}
	}
	return ErrNotAuthorized
}

// SetKYC sets a customer's KYC state; actor is an operator or admin.
func (s *State) SetKYC(id ledger.OwnerID, k KYC, actor, reason string) error {
	if k != KYCPending && k != KYCVerified && k != KYCRejected {
		return ErrInvalid
	}
	if !validText(reason, MaxText) {
		return fmt.Errorf("%w: reason", ErrInvalid)
	}
	if err := s.authorize(actor, RoleOperator, RoleAdmin); err != nil {
		return err
	}
	i, ok := s.custIdx[id]
	if !ok {
		return ErrCustomerUnknown
	}
	s.customers[i].KYC = k
	return nil
}

// Review is a CISO's risk review of an asset before listing.
type Review struct {
	Asset          ledger.AssetID `json:"asset"`
	AMLRisk        string         `json:"aml_risk"`       // e.g. "high: privacy coin"
	ChainMaturity  string         `json:"chain_maturity"` // e.g. "mainnet since 2015, no reorg over 6"
	Multisig       string         `json:"multisig"`       // how the chain supports multisig
	CustodyPlan    string         `json:"custody_plan"`   // cold share, keys, ceremonies
	Recommendation string         `json:"recommendation"` // "list" or "do not list"
	Reviewer       string         `json:"reviewer"`
	Time           int64          `json:"time"`
}

// RecordReview records a risk review by a ciso of a proposed asset.
func (s *State) RecordReview(r Review, t int64) error {
	if err := s.authorize(r.Reviewer, RoleCISO); err != nil {
		return err
	}
	if !s.proposed[r.Asset] {
		return ErrAssetNotProposed
	}
	for _, f := range []string{r.AMLRisk, r.ChainMaturity, r.Multisig, r.CustodyPlan} {
		if !validText(f, MaxText) {
			return fmt.Errorf("%w: every review field is required", ErrInvalid)
		}
	}
	if r.Recommendation != "list" && r.Recommendation != "do not list" {
		return fmt.Errorf("%w: recommendation", ErrInvalid)
	}
	r.Time = t
	s.reviews = append(s.reviews, r)
	return nil
}

// Propose marks a newly created asset as awaiting listing: deposits and
// trading of it are refused until a listing request is approved.
func (s *State) Propose(id ledger.AssetID, actor string) error {
	if err := s.CanPropose(actor); err != nil {
		return err
	}
	s.proposed[id] = true
	s.proposedAt = append(s.proposedAt, id)
	return nil
}

// CanPropose tells whether actor may propose an asset for listing: an
// operator, admin or ciso. The core asks before it creates the asset, so
// a refused proposal leaves nothing behind.
func (s *State) CanPropose(actor string) error {
	return s.authorize(actor, RoleOperator, RoleAdmin, RoleCISO)
}

func (s *State) reviewed(id ledger.AssetID) bool {
	for i := len(s.reviews) - 1; i >= 0; i-- {
		if s.reviews[i].Asset == id {
			return s.reviews[i].Recommendation == "list"
		}
	}
	return false
}

// RequestKind names what a request does once approved.
type RequestKind string

// Request kinds of this package; other subsystems add theirs.
const (
	KindSetRoles  RequestKind = "set_roles"
	KindListAsset RequestKind = "list_asset"
)

// RequestState is where a request stands.
type RequestState string

// Request states.
const (
	RequestPending  RequestState = "pending"
	RequestApproved RequestState = "approved"
	RequestRejected RequestState = "rejected"
)

// Request is a change waiting for a second person: the two-person rule.
type Request struct {
	ID           string          `json:"id"`
	Kind         RequestKind     `json:"kind"`
	Payload      json.RawMessage `json:"payload"`
	Requester    string          `json:"requester"`
	Reason       string          `json:"reason"`
	RequiredRole Role            `json:"required_role"`
	Created      int64           `json:"created"`
	Expires      int64           `json:"expires"`
	State        RequestState    `json:"state"`
	Decider      string          `json:"decider,omitempty"`
	Decision     string          `json:"decision,omitempty"`
	Decided      int64           `json:"decided,omitempty"`
	// The journal entries that opened and decided it.
	OpenedSeq  uint64 `json:"opened_seq,omitempty"`
	DecidedSeq uint64 `json:"decided_seq,omitempty"`
}

// SetRolesPayload is the payload of a set_roles request.
type SetRolesPayload struct {
	Operator string `json:"operator"`
	Roles    []Role `json:"roles"`
}

// ListAssetPayload is the payload of a list_asset request.
type ListAssetPayload struct {
	Asset ledger.AssetID `json:"asset"`
}

// MaxRequestTTL bounds how long a request may wait for approval.
const MaxRequestTTL = int64(7 * 24 * 3600 * 1e9)

// Open files a request. The kind's own checks (who may ask, what the
// payload must be) are made by check, which the caller supplies for kinds
// of other subsystems; this package's kinds are checked here.
func (s *State) Open(r Request, t int64, seq uint64, check func(Request) error) error {
	if !idRe.MatchString(r.ID) || !validText(r.Reason, MaxText) || !ValidRole(r.RequiredRole) {
		return ErrInvalid
	}
	if _, ok := s.reqIdx[r.ID]; ok {
		return ErrRequestExists
	}
	if r.Expires <= t || r.Expires-t > MaxRequestTTL {
		return fmt.Errorf("%w: expiry", ErrInvalid)
	}
	if _, ok := s.Operator(r.Requester); !ok {
		return ErrOperatorUnknown
	}
	var err error
	switch r.Kind {
	case KindSetRoles:
		err = s.checkSetRoles(r)
	case KindListAsset:
		err = s.checkListAsset(r)
	case KindAddOperator:
		err = s.checkAddOperator(r)
	case KindIssueEnrolment:
		err = s.checkIssueEnrolment(r)
	case KindEnrolCredential, KindRemoveCredential:
		err = s.checkCredential(r)
	default:
		if check == nil {
			return fmt.Errorf("%w: kind %q", ErrInvalid, r.Kind)
		}
		err = check(r)
	}
	if err != nil {
		return err
	}
	r.Created, r.State, r.Decider, r.Decision, r.Decided = t, RequestPending, "", "", 0
	r.OpenedSeq, r.DecidedSeq = seq, 0
	s.reqIdx[r.ID] = len(s.requests)
	s.requests = append(s.requests, r)
	return nil
}

func (s *State) checkSetRoles(r Request) error {
	if err := s.checkAdminRequest(r); err != nil {
		return err
	}
	var p SetRolesPayload
	if err := strictJSON(r.Payload, &p); err != nil {
		return err
	}
	if _, ok := s.Operator(p.Operator); !ok {
		return ErrOperatorUnknown
	}
	if !validRoles(p.Roles) {
		return fmt.Errorf("%w: roles", ErrInvalid)
	}
	return nil
}

func (s *State) checkListAsset(r Request) error {
	if err := s.authorize(r.Requester, RoleOperator, RoleAdmin, RoleCISO); err != nil {
		return err
	}
	if r.RequiredRole != RoleApprover && r.RequiredRole != RoleAdmin {
		return fmt.Errorf("%w: listings are approved by an approver", ErrInvalid)
	}
	var p ListAssetPayload
	if err := strictJSON(r.Payload, &p); err != nil {
		return err
	}
	if !s.proposed[p.Asset] {
		return ErrAssetNotProposed
	}
	if !s.reviewed(p.Asset) {
		return ErrReviewMissing
	}
	return nil
}

func strictJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: payload: %v", ErrInvalid, err)
	}
	return nil
}

// Decide approves or rejects a request. An approval must come from an
// operator other than the requester, holding the required role, before the
// request expires. On approval this package's kinds take effect here; the
// caller applies other kinds' effects when Decide returns the request with
// state approved.
func (s *State) Decide(id, decider, reason string, approve bool, t int64, seq uint64) (Request, error) {
	i, ok := s.reqIdx[id]
	if !ok {
		return Request{}, ErrRequestUnknown
	}
	r := &s.requests[i]
	if r.State != RequestPending {
		return *r, ErrRequestClosed
	}
	if t >= r.Expires {
		return *r, ErrRequestExpired
	}
	if !validText(reason, MaxText) {
		return *r, fmt.Errorf("%w: reason", ErrInvalid)
	}
	if decider == r.Requester && approve {
		return *r, ErrSelfApproval
	}
	if approve && decider == subject(*r) {
		return *r, ErrSubject
	}
	o, ok := s.Operator(decider)
	if !ok {
		return *r, ErrOperatorUnknown
	}
	if approve && !o.HasRole(r.RequiredRole) {
		return *r, ErrWrongRole
	}
	if !approve && decider != r.Requester && !o.HasRole(r.RequiredRole) {
		return *r, ErrWrongRole
	}
	if approve {
		if err := s.checkOperatorEffect(*r, t); err != nil {
			return *r, err
		}
		switch r.Kind {
		case KindAddOperator, KindIssueEnrolment, KindEnrolCredential, KindRemoveCredential:
			if err := s.applyOperatorRequest(*r, t, seq); err != nil {
				return *r, err
			}
		case KindSetRoles:
			var p SetRolesPayload
			strictJSON(r.Payload, &p)
			s.operators[s.opIdx[p.Operator]].Roles = append([]Role(nil), p.Roles...)
		case KindListAsset:
			var p ListAssetPayload
			strictJSON(r.Payload, &p)
			if !s.proposed[p.Asset] {
				return *r, ErrAssetNotProposed
			}
			delete(s.proposed, p.Asset)
		}
		r.State = RequestApproved
	} else {
		r.State = RequestRejected
	}
	r.Decider, r.Decision, r.Decided, r.DecidedSeq = decider, reason, t, seq
	return *r, nil
}
