package core

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"

	"kinko/internal/ledger"
	"kinko/internal/passkey"
	"kinko/internal/people"
	"kinko/internal/trading"
	"kinko/internal/withdraw"
)

// Command kinds of operators' credentials.
const (
	KindBootstrap       Kind = 111
	KindEnrolCredential Kind = 112
	KindOperatorLogin   Kind = 113
	KindAddCredential   Kind = 114
)

func init() {
	kindNames[KindBootstrap] = "bootstrap"
	kindNames[KindEnrolCredential] = "enrol_credential"
	kindNames[KindOperatorLogin] = "operator_login"
	kindNames[KindAddCredential] = "add_credential"
}

// Bootstrap creates the founding operators of an empty journal, each with
// the SHA-256 of a one-time enrolment code, and journals the relying party
// (the console's WebAuthn id and origins) whose assertions count. Given on
// the core's host only (`kinko operators bootstrap`); refused once any
// operator exists.
type Bootstrap struct {
	RP       passkey.RP
	Founders []people.Founder
	// Expires is when the enrolment codes stop working.
	Expires int64
}

// EnrolCredential registers a credential with an operator's one-time
// enrolment code: a founder's first credential is active at once; anyone
// else's is pending until an enrol_credential request is approved.
type EnrolCredential struct {
	Operator string
	Code     string
	Key      people.Key
}

// OperatorLogin opens an operator's session. The assertion signs this
// command (SignedDigest): the exact session it opens.
type OperatorLogin struct {
	Session   people.Session
	Assertion *passkey.Assertion `json:",omitempty"`
}

// AddCredential registers a further credential for an operator, signed
// with one they already hold; it is pending until an enrol_credential
// request is approved.
type AddCredential struct {
	Operator  string
	Key       people.Key
	Assertion *passkey.Assertion `json:",omitempty"`
}

func (Bootstrap) Kind() Kind       { return KindBootstrap }
func (EnrolCredential) Kind() Kind { return KindEnrolCredential }
func (OperatorLogin) Kind() Kind   { return KindOperatorLogin }
func (AddCredential) Kind() Kind   { return KindAddCredential }

func (c Bootstrap) AppendPayload(b []byte) []byte       { return appendJSON(b, c) }
func (c EnrolCredential) AppendPayload(b []byte) []byte { return appendJSON(b, c) }
func (c OperatorLogin) AppendPayload(b []byte) []byte   { return appendJSON(b, c) }
func (c AddCredential) AppendPayload(b []byte) []byte   { return appendJSON(b, c) }

func decodeKeys(kind Kind, p []byte) (Command, bool, error) {
	var c Command
	var err error
	switch kind {
	case KindBootstrap:
		c, err = decodeJSON[Bootstrap](p)
	case KindEnrolCredential:
		c, err = decodeJSON[EnrolCredential](p)
	case KindOperatorLogin:
		c, err = decodeJSON[OperatorLogin](p)
	case KindAddCredential:
		c, err = decodeJSON[AddCredential](p)
	default:
		return nil, false, nil
	}
	return c, true, err
}

// Request kinds of the two-person rule for controls that live outside
// people: each is proposed by one admin and approved by another.
const (
	KindSetWithdrawalRulesRequest people.RequestKind = "set_withdrawal_rules"
	KindListMarketRequest         people.RequestKind = "list_market"
)

// SetWithdrawalRulesPayload is the payload of a set_withdrawal_rules
// request: the rules that replace the policy's.
type SetWithdrawalRulesPayload struct {
	Rules withdraw.Rules `json:"rules"`
}

// ListMarketPayload is the payload of a list_market request.
type ListMarketPayload struct {
	Listing trading.Listing `json:"listing"`
}

// ErrTwoPerson refuses a command that only an approved request may give.
var ErrTwoPerson = errors.New("core: this is given only by an approved two-person request")

// SignedDigest returns who must sign a command and the digest they sign
// (passkey.Digest over the command kind's name, its request or action id,
// and its canonical JSON without the assertion), or ok false for a
// command that is not signed. The same function computes what the API,
// the CLI and the console have signed and what apply verifies.
func SignedDigest(c Command) (signer string, digest [32]byte, ok bool) {
	var id string
	var unsigned Command
	switch x := c.(type) {
	case OpenRequest:
		signer, id = x.Request.Requester, x.Request.ID
		x.Assertion = nil
		unsigned = x
	case DecideRequest:
		signer, id = x.Decider, x.ID
		x.Assertion = nil
		unsigned = x
	case ProposeAsset:
		signer, id = x.Actor, "asset:"+strconv.FormatUint(uint64(x.Asset.ID), 10)
		x.Assertion = nil
		unsigned = x
	case ExecuteCompensation:
		signer, id = x.Actor, x.Plan+":"+strconv.Itoa(x.From)+":"+x.Run
		x.Assertion = nil
		unsigned = x
	case OperatorLogin:
		signer, id = x.Session.Operator, hex.EncodeToString(x.Session.TokenHash[:])
		x.Assertion = nil
		unsigned = x
	case AddCredential:
		signer, id = x.Operator, hex.EncodeToString(x.Key.ID)
		x.Assertion = nil
		unsigned = x
	case FreezeWithdrawals:
		if x.By == "customer" || x.By == "notice link" {
			return "", digest, false
		}
		signer, id = x.By, "freeze:"+strconv.FormatUint(uint64(x.Customer), 10)
		x.Assertion = nil
		unsigned = x
	case UnfreezeWithdrawals:
		if x.By == "customer" {
			return "", digest, false
		}
		signer, id = x.By, "unfreeze:"+strconv.FormatUint(uint64(x.Customer), 10)
		x.Assertion = nil
		unsigned = x
	default:
		return "", digest, false
	}
	return signer, passkey.Digest(c.Kind().String(), id, unsigned.AppendPayload(nil)), true
}

// assertionOf returns the assertion a signed command carries.
func assertionOf(c Command) *passkey.Assertion {
	switch x := c.(type) {
	case OpenRequest:
		return x.Assertion
	case DecideRequest:
		return x.Assertion
	case ProposeAsset:
		return x.Assertion
	case ExecuteCompensation:
		return x.Assertion
	case OperatorLogin:
		return x.Assertion
	case AddCredential:
		return x.Assertion
	case FreezeWithdrawals:
		return x.Assertion
	case UnfreezeWithdrawals:
		return x.Assertion
	}
	return nil
}

// WithAssertion returns c carrying a, for the commands that are signed.
func WithAssertion(c Command, a *passkey.Assertion) Command {
	switch x := c.(type) {
	case OpenRequest:
		x.Assertion = a
		return x
	case DecideRequest:
		x.Assertion = a
		return x
	case ProposeAsset:
		x.Assertion = a
		return x
	case ExecuteCompensation:
		x.Assertion = a
		return x
	case OperatorLogin:
		x.Assertion = a
		return x
	case AddCredential:
		x.Assertion = a
		return x
	case FreezeWithdrawals:
		x.Assertion = a
		return x
	case UnfreezeWithdrawals:
		x.Assertion = a
		return x
	}
	return c
}

// authenticate is the gate every command passes before it applies. A
// command that only an approved request may give is refused; a signed
// command must carry its signer's assertion over its exact bytes, made
// with a credential enrolled in the journal, never used before. The
// signature is returned to be recorded once the command applied.
func (s *State) authenticate(cmd Command) (*people.Signature, error) {
	switch c := cmd.(type) {
	case SetWithdrawalRules:
		return nil, fmt.Errorf("%w: request kind %s", ErrTwoPerson, KindSetWithdrawalRulesRequest)
	case ListMarket:
		return nil, fmt.Errorf("%w: request kind %s", ErrTwoPerson, KindListMarketRequest)
	case Lift:
		return nil, fmt.Errorf("%w: request kind %s", ErrTwoPerson, KindLiftHalt)
	case RegisterWallet:
		return nil, fmt.Errorf("%w: request kind %s", ErrTwoPerson, KindRegisterWalletRequest)
	case ExecuteCompensation:
		if err := s.People.CanExecute(c.Actor); err != nil {
			return nil, err
		}
	}
	signer, digest, ok := SignedDigest(cmd)
	if !ok {
		return nil, nil
	}
	sig, err := s.People.CheckSignature(signer, digest, assertionOf(cmd))
	if err != nil {
		return nil, err
	}
	return &sig, nil
}

func (s *State) applyKeys(cmd Command, t int64) (bool, any, error) {
	p := s.People
	switch c := cmd.(type) {
	case Bootstrap:
		return true, nil, p.Bootstrap(c.RP, c.Founders, c.Expires, t)
	case EnrolCredential:
		active, err := p.EnrolWithCode(c.Operator, c.Code, c.Key, t, s.seq)
		return true, active, err
	case OperatorLogin:
		return true, nil, p.OperatorLogin(c.Session, t)
	case AddCredential:
		return true, nil, p.AddPending(c.Operator, c.Key, t)
	}
	return false, nil, nil
}

func (s *State) checkSetWithdrawalRules(r people.Request) error {
	if err := s.authorizeAdminRequest(r); err != nil {
		return err
	}
	var p SetWithdrawalRulesPayload
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		return fmt.Errorf("%w: payload: %v", people.ErrInvalid, err)
	}
	if err := p.Rules.Check(); err != nil {
		return fmt.Errorf("%w: %w", ErrCommandInvalid, err)
	}
	if err := s.checkFinalityRules(p.Rules); err != nil {
		return fmt.Errorf("%w: %w", ErrCommandInvalid, err)
	}
	return nil
}

func (s *State) checkListMarket(r people.Request) error {
	if err := s.authorizeAdminRequest(r); err != nil {
		return err
	}
	var p ListMarketPayload
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		return fmt.Errorf("%w: payload: %v", people.ErrInvalid, err)
	}
	quote, ok := s.Ledger.Asset(p.Listing.Quote)
	if !ok {
		return fmt.Errorf("%w: unknown asset", trading.ErrListing)
	}
	// Checked as it will be listed: with its protections' defaults.
	l := p.Listing.WithDefaults(quote.Decimals, quote.Class == ledger.ClassFiat)
	if err := l.Validate(); err != nil {
		return err
	}
	return s.checkListing(l)
}

func (s *State) authorizeAdminRequest(r people.Request) error {
	o, ok := s.People.Operator(r.Requester)
	if !ok || !o.HasRole(people.RoleAdmin) {
		return people.ErrNotAuthorized
	}
	if r.RequiredRole != people.RoleAdmin {
		return fmt.Errorf("%w: approved by an admin", people.ErrInvalid)
	}
	return nil
}

// applyControlRequest makes an approved set_withdrawal_rules or
// list_market take effect, as the requester's.
func (s *State) applyControlRequest(r people.Request, t int64) error {
	switch r.Kind {
	case KindSetWithdrawalRulesRequest:
		var p SetWithdrawalRulesPayload
		json.Unmarshal(r.Payload, &p)
		_, _, err := s.applyWithdraw(SetWithdrawalRules{Rules: p.Rules, Actor: r.Requester}, t)
		return err
	case KindListMarketRequest:
		var p ListMarketPayload
		json.Unmarshal(r.Payload, &p)
		return s.listMarket(ListMarket{Listing: p.Listing, Actor: r.Requester})
	}
	return nil
}

// checkListing makes listMarket's checks without listing: the assets
// exist, the scale fits the base asset's decimals, and neither the id nor
// the code is taken. An approval that would fail them is refused before
// the request changes.
func (s *State) checkListing(l trading.Listing) error {
	base, ok1 := s.Ledger.Asset(l.Base)
	_, ok2 := s.Ledger.Asset(l.Quote)
	if !ok1 || !ok2 {
		return fmt.Errorf("%w: unknown asset", trading.ErrListing)
	}
	whole := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(base.Decimals)), nil)
	if new(big.Int).Mul(big.NewInt(l.Scale), big.NewInt(l.Unit())).Cmp(whole) != 0 {
		return fmt.Errorf("%w: scale %d × quantity unit %d is not 10^%d", trading.ErrListing, l.Scale, l.Unit(), base.Decimals)
	}
	if _, ok := s.Trading.Market(l.ID); ok {
		return trading.ErrMarketExists
	}
	if _, ok := s.Trading.MarketByCode(l.Code); ok {
		return trading.ErrMarketExists
	}
	return nil
}
