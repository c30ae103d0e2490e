package core

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"kinko/internal/controls"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/people"
	"kinko/internal/withdraw"
)

// Command kinds of withdrawals.
const (
	KindSetWithdrawalRules Kind = 40
	KindRegisterIntentKey  Kind = 41
	KindWhitelistAddress   Kind = 42
	KindRequestWithdrawal  Kind = 43
	KindRevokeIntentKey    Kind = 55
	KindRemoveAddress      Kind = 56
)

func init() {
	kindNames[KindSetWithdrawalRules] = "set_withdrawal_rules"
	kindNames[KindRegisterIntentKey] = "register_intent_key"
	kindNames[KindWhitelistAddress] = "whitelist_address"
	kindNames[KindRequestWithdrawal] = "request_withdrawal"
	kindNames[KindRevokeIntentKey] = "revoke_intent_key"
	kindNames[KindRemoveAddress] = "remove_address"
}

// RevokeIntentKey removes a customer's intent key on their word: the core
// and the co-signer refuse what it signs from the entry on.
type RevokeIntentKey struct {
	Customer ledger.OwnerID
	PubKey   [32]byte
}

// RemoveAddress takes an address off a customer's whitelist: the core and
// the co-signer refuse to pay it from the entry on.
type RemoveAddress struct {
	Customer ledger.OwnerID
	Asset    string
	Address  string
}

func (RevokeIntentKey) Kind() Kind { return KindRevokeIntentKey }
func (RemoveAddress) Kind() Kind   { return KindRemoveAddress }

func (c RevokeIntentKey) AppendPayload(b []byte) []byte { return appendJSON(b, c) }
func (c RemoveAddress) AppendPayload(b []byte) []byte   { return appendJSON(b, c) }

// SetWithdrawalRules replaces the withdrawal policy's rules; an admin does
// it, and it is journaled like everything else.
type SetWithdrawalRules struct {
	Rules withdraw.Rules
	Actor string
}

// RegisterIntentKey records a customer's ed25519 intent key; it is usable
// after the cool-down.
type RegisterIntentKey struct {
	Customer ledger.OwnerID
	PubKey   [32]byte
}

// WhitelistAddress adds a withdrawal address for a customer; usable after
// the cool-down.
type WhitelistAddress struct {
	Customer ledger.OwnerID
	Asset    string
	Address  string
}

// RequestWithdrawal is a customer's signed withdrawal intent. The Outcome's
// Value is the withdrawal record (withdraw.Withdrawal): queued, awaiting
// approval, or rejected by the policy with its reason.
type RequestWithdrawal struct {
	Customer ledger.OwnerID
	Intent   withdraw.Intent
	PubKey   [32]byte
	Sig      []byte
}

// KindApproveWithdrawal is the request kind that releases a withdrawal the
// policy sent to two operators.
const KindApproveWithdrawal people.RequestKind = "approve_withdrawal"

// ApproveWithdrawalPayload is its payload.
type ApproveWithdrawalPayload struct {
	Withdrawal string `json:"withdrawal"`
}

func (SetWithdrawalRules) Kind() Kind { return KindSetWithdrawalRules }
func (RegisterIntentKey) Kind() Kind  { return KindRegisterIntentKey }
func (WhitelistAddress) Kind() Kind   { return KindWhitelistAddress }
func (RequestWithdrawal) Kind() Kind  { return KindRequestWithdrawal }

func (c SetWithdrawalRules) AppendPayload(b []byte) []byte { return appendJSON(b, c) }
func (c RegisterIntentKey) AppendPayload(b []byte) []byte  { return appendJSON(b, c) }
func (c WhitelistAddress) AppendPayload(b []byte) []byte   { return appendJSON(b, c) }
func (c RequestWithdrawal) AppendPayload(b []byte) []byte  { return appendJSON(b, c) }

func decodeWithdraw(kind Kind, p []byte) (Command, bool, error) {
	var c Command
	var err error
	switch kind {
	case KindSetWithdrawalRules:
		c, err = decodeJSON[SetWithdrawalRules](p)
	case KindRegisterIntentKey:
		c, err = decodeJSON[RegisterIntentKey](p)
	case KindWhitelistAddress:
		c, err = decodeJSON[WhitelistAddress](p)
	case KindRequestWithdrawal:
		c, err = decodeJSON[RequestWithdrawal](p)
	case KindRevokeIntentKey:
		c, err = decodeJSON[RevokeIntentKey](p)
	case KindRemoveAddress:
		c, err = decodeJSON[RemoveAddress](p)
	default:
		return nil, false, nil
	}
	return c, true, err
}

// Errors of withdrawal requests beyond the withdraw package's.
var (
	ErrNotVerified = errors.New("withdraw: customer's KYC is not verified")
	// ErrCredsCooling refuses a withdrawal within the cool-down after the
	// customer's password or second factor changed.
	ErrCredsCooling = errors.New("withdraw: the password or second factor changed within the cool-down")
)

// keyText is an intent key as a notice names it: its first 8 bytes, hex.
func keyText(pub [32]byte) string { return fmt.Sprintf("%x…", pub[:8]) }

// withdrawView is the policy's read-only view of the state.
type withdrawView struct{ s *State }

func (v withdrawView) Halted(asset string) error {
	a, ok := v.s.Ledger.AssetByCode(asset)
	if !ok {
		return fmt.Errorf("asset %s unknown", asset)
	}
	return v.s.Controls.Allowed(a.ID, controls.Withdraw)
}
func (v withdrawView) CustomerSince(c uint64, asset string, since int64) withdraw.Amount {
	return v.s.Withdraw.CustomerSince(c, asset, since)
}
func (v withdrawView) AssetSince(asset string, since int64) withdraw.Amount {
	return v.s.Withdraw.AssetSince(asset, since)
}
func (v withdrawView) Denied(address string) string {
	if d, ok := v.s.AML[address]; ok {
		return d.Reason
	}
	return ""
}
func (v withdrawView) Available(c uint64, asset string) withdraw.Amount {
	a, ok := v.s.Ledger.AssetByCode(asset)
	if !ok {
		return withdraw.Amount{}
	}
	return v.s.available(ledger.OwnerID(c), a.ID)
}
func (v withdrawView) Finality(c uint64) withdraw.Finality { return v.s.Finality(ledger.OwnerID(c)) }

// holdID is the ledger id of a withdrawal's hold.
func holdID(id string) ledger.ID {
	h := sha256.Sum256([]byte("withdrawal-hold:" + id))
	return ledger.ID{Hi: 0xB1<<56 | binary.BigEndian.Uint64(h[:8])>>8, Lo: binary.BigEndian.Uint64(h[8:16])}
}

func (s *State) applyWithdraw(cmd Command, t int64) (handled bool, v any, err error) {
	w := s.Withdraw
	switch c := cmd.(type) {
	case SetWithdrawalRules:
		o, ok := s.People.Operator(c.Actor)
		if !ok || !o.HasRole(people.RoleAdmin) {
			return true, nil, people.ErrNotAuthorized
		}
		if err := c.Rules.Check(); err != nil {
			return true, nil, fmt.Errorf("%w: %w", ErrCommandInvalid, err)
		}
		if err := s.checkFinalityRules(c.Rules); err != nil {
			return true, nil, fmt.Errorf("%w: %w", ErrCommandInvalid, err)
		}
		w.Rules = c.Rules
		// New tiers apply to the deposits not yet final, at once.
		s.Custody.Refinalize(s.finalityDepth)
		for _, a := range s.Ledger.Assets() {
			s.finalizeAt(a.ID)
		}
		return true, nil, nil
	case RegisterIntentKey:
		if _, ok := s.People.Customer(c.Customer); !ok {
			return true, nil, people.ErrCustomerUnknown
		}
		if err := w.RegisterKey(uint64(c.Customer), c.PubKey, t); err != nil {
			return true, nil, err
		}
		s.People.Notify(c.Customer, people.NoticeIntentKey, "a new intent key "+keyText(c.PubKey)+" was registered", t, s.seq)
		return true, nil, nil
	case WhitelistAddress:
		if _, ok := s.People.Customer(c.Customer); !ok {
			return true, nil, people.ErrCustomerUnknown
		}
		if _, ok := s.Ledger.AssetByCode(c.Asset); !ok {
			return true, nil, custody.ErrAssetUnknown
		}
		if err := w.AddAddress(uint64(c.Customer), c.Asset, c.Address, t); err != nil {
			return true, nil, err
		}
		s.People.Notify(c.Customer, people.NoticeAddress, "a new "+c.Asset+" withdrawal address "+c.Address+" was whitelisted", t, s.seq)
		return true, nil, nil
	case RevokeIntentKey:
		if err := w.RevokeKey(uint64(c.Customer), c.PubKey); err != nil {
			return true, nil, err
		}
		s.rejectWaiting(c.Customer, func(wd withdraw.Withdrawal) bool { return wd.PubKey == c.PubKey }, "its intent key was revoked", t)
		s.People.Notify(c.Customer, people.NoticeIntentKeyGone, "the intent key "+keyText(c.PubKey)+" was revoked", t, s.seq)
		return true, nil, nil
	case RemoveAddress:
		if err := w.RemoveAddress(uint64(c.Customer), c.Asset, c.Address); err != nil {
			return true, nil, err
		}
		s.rejectWaiting(c.Customer, func(wd withdraw.Withdrawal) bool {
			return wd.Intent.Asset == c.Asset && wd.Intent.Address == c.Address
		}, "its address was taken off the whitelist", t)
		s.People.Notify(c.Customer, people.NoticeAddressGone, "the "+c.Asset+" address "+c.Address+" was taken off the whitelist", t, s.seq)
		return true, nil, nil
	case RequestWithdrawal:
		rec, err := s.requestWithdrawal(c, t)
		return true, rec, err
	}
	return false, nil, nil
}

// requestWithdrawal checks a signed intent, holds the amount, and asks the
// policy. A request that fails a check changes nothing; one the policy
// denies (deposits not yet final among them) is recorded as rejected with
// its reason, and holds nothing.
func (s *State) requestWithdrawal(c RequestWithdrawal, t int64) (withdraw.Withdrawal, error) {
	w := s.Withdraw
	if !s.People.CanTrade(c.Customer) {
		return withdraw.Withdrawal{}, ErrNotVerified
	}
	if f := s.People.Frozen(c.Customer); f != nil {
		return withdraw.Withdrawal{}, fmt.Errorf("%w since entry %d (%s)", people.ErrFrozen, f.Seq, f.By)
	}
	if cu, _ := s.People.Customer(c.Customer); cu.Creds.Changed != 0 && t < cu.Creds.Changed+w.CoolDown() {
		return withdraw.Withdrawal{}, ErrCredsCooling
	}
	a, ok := s.Ledger.AssetByCode(c.Intent.Asset)
	if !ok {
		return withdraw.Withdrawal{}, custody.ErrAssetUnknown
	}
	if !s.People.AssetEnabled(a.ID) {
		return withdraw.Withdrawal{}, ErrAssetNotListed
	}
	if _, ok := s.Custody.Token(a.ID); ok {
		// No wallet pays a token yet: refused, nothing held.
		return withdraw.Withdrawal{}, fmt.Errorf("%w: %s is an ERC-20 token, deposits only", ErrTokenWithdrawal, a.Code)
	}
	if err := w.Check(uint64(c.Customer), c.Intent, c.PubKey, c.Sig, t); err != nil {
		return withdraw.Withdrawal{}, err
	}
	rec := withdraw.Withdrawal{ID: fmt.Sprintf("%d:%s", c.Customer, c.Intent.RequestID), Customer: uint64(c.Customer), Intent: c.Intent,
		PubKey: c.PubKey, Sig: c.Sig, Time: t}
	fee := w.Rules.WithdrawalFee[c.Intent.Asset]
	total, over := c.Intent.Amount.Add(fee)
	if over {
		return withdraw.Withdrawal{}, fmt.Errorf("%w: the amount %s and the withdrawal fee %s overflow 128 bits", ErrCommandInvalid, c.Intent.Amount, fee)
	}
	decision, reason := w.Rules.Evaluate(withdraw.Request{Customer: uint64(c.Customer), Asset: c.Intent.Asset, Address: c.Intent.Address, Amount: c.Intent.Amount, Fee: fee, Time: t,
		Decimals: a.Decimals, Fiat: a.Class == ledger.ClassFiat}, withdrawView{s})
	if decision == withdraw.Deny {
		rec.Status, rec.Reason = withdraw.StatusRejected, reason
		w.Add(rec)
		return rec, nil
	}
	// The hold moves the amount and the withdrawal fee, pending, from the
	// customer's available account to their held account; which wallet
	// pays is decided when a batch is confirmed, and the fee is the
	// house's then.
	id := holdID(rec.ID)
	held := ledger.AccountKey{Owner: c.Customer, Asset: a.ID, Kind: ledger.KindHeld}
	s.Ledger.CreateAccounts([]ledger.AccountKey{held}, nil)
	hold := ledger.Transfer{ID: id, Debit: ledger.AccountKey{Owner: c.Customer, Asset: a.ID, Kind: ledger.KindAvailable}, Credit: held,
		Amount: total.Ledger(), Flags: ledger.FlagPending, Code: CodeWithdrawal}
	if res := s.Ledger.CreateTransfers([]ledger.Transfer{hold}, t, nil); len(res) > 0 && !res[0].Code.Succeeded() {
		return withdraw.Withdrawal{}, &ledger.EventError{Index: 0, Code: res[0].Code}
	}
	rec.HoldHi, rec.HoldLo, rec.Fee = id.Hi, id.Lo, fee
	rec.Status = withdraw.StatusQueued
	if decision == withdraw.NeedsApproval {
		rec.Status, rec.Reason = withdraw.StatusAwaitingApproval, reason
	}
	w.Add(rec)
	return rec, nil
}

// CodeWithdrawal is the ledger code of withdrawal holds and their posting.
const CodeWithdrawal = 30

func (s *State) checkApproveWithdrawal(r people.Request) error {
	var p ApproveWithdrawalPayload
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		return fmt.Errorf("%w: payload: %v", people.ErrInvalid, err)
	}
	wd, ok := s.Withdraw.Get(p.Withdrawal)
	if !ok {
		return withdraw.ErrUnknown
	}
	if wd.Status != withdraw.StatusAwaitingApproval {
		return withdraw.ErrNotAwaiting
	}
	if r.RequiredRole != people.RoleApprover {
		return fmt.Errorf("%w: withdrawals are approved by an approver", people.ErrInvalid)
	}
	return nil
}

func (s *State) applyApproveWithdrawal(r people.Request) error {
	var p ApproveWithdrawalPayload
	json.Unmarshal(r.Payload, &p)
	wd, ok := s.Withdraw.Get(p.Withdrawal)
	if !ok || wd.Status != withdraw.StatusAwaitingApproval {
		return withdraw.ErrNotAwaiting
	}
	return s.Withdraw.SetStatus(wd.ID, withdraw.StatusQueued, "approved by "+r.Decider)
}
