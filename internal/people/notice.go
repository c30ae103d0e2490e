package people

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"kinko/internal/ledger"
)

// NoticeKind says what a notice tells a customer.
type NoticeKind string

// Notice kinds: every change that lets value leave in a customer's name,
// and every way in.
const (
	NoticeIntentKey      NoticeKind = "intent_key"
	NoticeIntentKeyGone  NoticeKind = "intent_key_revoked"
	NoticeAddress        NoticeKind = "address"
	NoticeAddressGone    NoticeKind = "address_removed"
	NoticePassword       NoticeKind = "password"
	NoticeSecondFactor   NoticeKind = "second_factor"
	NoticeNewDevice      NoticeKind = "new_device_login"
	NoticeFrozen         NoticeKind = "withdrawals_frozen"
	NoticeUnfrozen       NoticeKind = "withdrawals_unfrozen"
	NoticeSessionRevoked NoticeKind = "session_revoked"
)

// Notice is one thing a customer is told, at the journal entry that did
// it. Its Seq names it: the freeze link of a notice carries its seq, and
// works once (FreezeUsed).
type Notice struct {
	Seq        uint64         `json:"seq"`
	Customer   ledger.OwnerID `json:"customer"`
	Kind       NoticeKind     `json:"kind"`
	Detail     string         `json:"detail"`
	Time       int64          `json:"time"`
	FreezeUsed bool           `json:"freeze_used,omitempty"`
}

// Freeze is a customer's freeze of their withdrawals.
type Freeze struct {
	Since  int64  `json:"since"`
	Seq    uint64 `json:"seq"`
	By     string `json:"by"` // "notice link", "customer" or an operator's name
	Reason string `json:"reason"`
}

// Bounds of what is kept per customer.
const (
	// MaxNotices bounds the notices kept (all customers); the oldest go
	// first, and their freeze links stop working.
	MaxNotices = 1 << 16
	// MaxDevices bounds the devices remembered per customer.
	MaxDevices = 16
	// FreshLogin is how recent a login must be for its session to lift a
	// freeze, FreshStepUp how recent its step-up.
	FreshLogin  = int64(10 * 60 * 1e9)
	FreshStepUp = int64(2 * 60 * 1e9)
	// FreezeLinkTTL is how long a notice's freeze link works.
	FreezeLinkTTL = int64(30 * 24 * 3600 * 1e9)
)

// Errors of customers' own changes.
var (
	ErrFrozen        = errors.New("people: the customer's withdrawals are frozen")
	ErrNotFrozen     = errors.New("people: the customer's withdrawals are not frozen")
	ErrNoticeUnknown = errors.New("people: notice unknown, expired or its freeze link already used")
	ErrNotFresh      = errors.New("people: lifting a freeze needs a fresh login and a step-up code in that session")
)

func (s *State) notify(c ledger.OwnerID, k NoticeKind, detail string, t int64, seq uint64) {
	if len(s.notices) >= MaxNotices {
		s.notices = append(s.notices[:0:0], s.notices[len(s.notices)-MaxNotices+1:]...)
	}
	s.notices = append(s.notices, Notice{Seq: seq, Customer: c, Kind: k, Detail: detail, Time: t})
}

// Notify records a notice for customer c at entry seq: called by the
// core for the changes other subsystems make (intent keys, addresses).
func (s *State) Notify(c ledger.OwnerID, k NoticeKind, detail string, t int64, seq uint64) {
	if _, ok := s.custIdx[c]; ok {
		s.notify(c, k, detail, t, seq)
	}
}

// NoticesOf returns a customer's notices, newest first, at most n.
func (s *State) NoticesOf(c ledger.OwnerID, n int) []Notice {
	var out []Notice
	for i := len(s.notices) - 1; i >= 0 && len(out) < n; i-- {
		if s.notices[i].Customer == c {
			out = append(out, s.notices[i])
		}
	}
	return out
}

// NoticesAfter returns the notices of entries after seq, oldest first, at
// most n: what the mailer has still to send.
func (s *State) NoticesAfter(seq uint64, n int) []Notice {
	lo, hi := 0, len(s.notices)
	for lo < hi {
		m := (lo + hi) / 2
		if s.notices[m].Seq <= seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	end := min(len(s.notices), lo+n)
	return append([]Notice(nil), s.notices[lo:end]...)
}

func (s *State) notice(seq uint64, c ledger.OwnerID) *Notice {
	for i := len(s.notices) - 1; i >= 0; i-- {
		n := &s.notices[i]
		if n.Seq == seq && n.Customer == c {
			return n
		}
		if n.Seq < seq {
			break
		}
	}
	return nil
}

// CustomerSessions returns a customer's sessions still valid at t,
// newest first, at most n.
func (s *State) CustomerSessions(c ledger.OwnerID, t int64, n int) []Session {
	var out []Session
	for i := len(s.sessOrder) - 1; i >= 0 && len(out) < n; i-- {
		ss := s.sessions[s.sessOrder[i]]
		if ss.Kind == SessionCustomer && ss.Customer == c && ss.Valid(t) {
			out = append(out, *ss)
		}
	}
	return out
}

// RevokeSession ends one of a customer's sessions, on their word.
func (s *State) RevokeSession(c ledger.OwnerID, h [32]byte, t int64, seq uint64) error {
	ss, ok := s.sessions[h]
	if !ok || ss.Kind != SessionCustomer || ss.Customer != c || ss.Revoked {
		return ErrSessionUnknown
	}
	ss.Revoked = true
	s.notify(c, NoticeSessionRevoked, "a session was ended", t, seq)
	return nil
}

// Credential changes.
const (
	ChangePassword     = "password"
	ChangeSecondFactor = "second_factor"
)

// ChangeCredentials replaces a customer's credential commitment after the
// API checked their password and a fresh code (what changes: change). It
// ends every other session of theirs, keeps keep, and starts the
// cool-down in which their withdrawals wait (Changed).
func (s *State) ChangeCredentials(c ledger.OwnerID, change, commit string, keep [32]byte, t int64, seq uint64) error {
	i, ok := s.custIdx[c]
	if !ok {
		return ErrCustomerUnknown
	}
	if (change != ChangePassword && change != ChangeSecondFactor) || !validCommit(commit) {
		return ErrInvalid
	}
	ss, ok := s.sessions[keep]
	if !ok || ss.Kind != SessionCustomer || ss.Customer != c || !ss.Valid(t) {
		return ErrSessionUnknown
	}
	cr := &s.customers[i].Creds
	cr.PasswordHash, cr.TOTPSealed, cr.Commit, cr.Changed = "", "", commit, t
	for _, h := range s.sessOrder {
		if o := s.sessions[h]; h != keep && o.Kind == SessionCustomer && o.Customer == c {
			o.Revoked = true
		}
	}
	k, what := NoticePassword, "your password was changed; every other session was ended"
	if change == ChangeSecondFactor {
		k, what = NoticeSecondFactor, "a new authenticator (TOTP) was enrolled; the old one no longer works"
	}
	s.notify(c, k, what, t, seq)
	return nil
}

// FreezeWithdrawals halts a customer's withdrawals at once. By is who
// asked: "notice link" (with the notice's seq, used once), "customer"
// (their own session), or an operator with the operator or admin role.
func (s *State) FreezeWithdrawals(c ledger.OwnerID, by string, notice uint64, reason string, t int64, seq uint64) error {
	i, ok := s.custIdx[c]
	if !ok {
		return ErrCustomerUnknown
	}
	if !validText(reason, MaxText) {
		return fmt.Errorf("%w: reason", ErrInvalid)
	}
	var n *Notice
	switch by {
	case "notice link":
		if n = s.notice(notice, c); n == nil || n.FreezeUsed || t-n.Time > FreezeLinkTTL {
			return ErrNoticeUnknown
		}
	case "customer":
	default:
		if err := s.authorize(by, RoleOperator, RoleAdmin); err != nil {
			return err
		}
	}
	cu := &s.customers[i]
	if n != nil {
		n.FreezeUsed = true
	}
	if cu.Frozen != nil {
		return nil // frozen already; the link is spent all the same
	}
	cu.Frozen = &Freeze{Since: t, Seq: seq, By: by, Reason: reason}
	s.notify(c, NoticeFrozen, "your withdrawals were frozen ("+by+"): "+reason, t, seq)
	return nil
}

// Unfreeze lifts a customer's freeze: by an operator (operator or admin
// role), or by the customer in a session opened within FreshLogin that
// passed a step-up within FreshStepUp.
func (s *State) Unfreeze(c ledger.OwnerID, by string, session [32]byte, reason string, t int64, seq uint64) error {
	i, ok := s.custIdx[c]
	if !ok {
		return ErrCustomerUnknown
	}
	if !validText(reason, MaxText) {
		return fmt.Errorf("%w: reason", ErrInvalid)
	}
	if by == "customer" {
		ss, ok := s.sessions[session]
		if !ok || ss.Kind != SessionCustomer || ss.Customer != c || !ss.Valid(t) || t-ss.Created > FreshLogin || ss.SteppedUp == 0 || t-ss.SteppedUp > FreshStepUp {
			return ErrNotFresh
		}
	} else if err := s.authorize(by, RoleOperator, RoleAdmin); err != nil {
		return err
	}
	cu := &s.customers[i]
	if cu.Frozen == nil {
		return ErrNotFrozen
	}
	cu.Frozen = nil
	s.notify(c, NoticeUnfrozen, "your withdrawals were unfrozen ("+by+")", t, seq)
	return nil
}

// Frozen returns a customer's freeze, if any.
func (s *State) Frozen(c ledger.OwnerID) *Freeze {
	i, ok := s.custIdx[c]
	if !ok {
		return nil
	}
	return s.customers[i].Frozen
}

// DeviceHash is the form a device id takes in the journal.
func DeviceHash(device string) string {
	h := sha256.Sum256([]byte("kinko device v1\x00" + device))
	return hex.EncodeToString(h[:])
}
