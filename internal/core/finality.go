package core

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/people"
	"kinko/internal/withdraw"
)

// Finality before withdrawal. A deposit is credited for trading at the
// watcher's confirmations, and becomes withdrawable only when the asset's
// journaled chain tip (the watcher's checkpoint height, never a clock)
// reaches the depth of its amount's finality tier (withdraw.Rules.Finality,
// or the defaults): tip - height + 1 >= depth. Until then a withdrawal may
// not take the customer's available balance of the asset below those
// deposits, and if the balance is already below them (the coins were
// traded away) no withdrawal of any asset is allowed. A reversed deposit
// the customer no longer holds is owed by them (a receivable account),
// which blocks their withdrawals until it is repaid or written off.

// Command kinds of what customers owe.
const (
	KindRepayOwed Kind = 34
)

func init() {
	kindNames[KindRepayOwed] = "repay_owed"
}

// RepayOwed repays what a customer owes in an asset from a reversed
// deposit out of their available balance of it, as far as it goes (after
// they bought the coins back, say). An operator asks it. The Outcome's
// Value is the amount repaid (uint64). Deposits of the asset repay it by
// themselves as they are credited.
type RepayOwed struct {
	Customer ledger.OwnerID
	Asset    string
	Actor    string
}

func (RepayOwed) Kind() Kind                      { return KindRepayOwed }
func (c RepayOwed) AppendPayload(b []byte) []byte { return appendJSON(b, c) }

// KindWriteOffOwed is the request kind that writes off, to house equity,
// what a customer owes in an asset, once a second operator approves.
const KindWriteOffOwed people.RequestKind = "write_off_owed"

// WriteOffOwedPayload is the payload of a write_off_owed request.
type WriteOffOwedPayload struct {
	Customer ledger.OwnerID `json:"customer"`
	Asset    string         `json:"asset"`
}

func decodeOwed(kind Kind, p []byte) (Command, bool, error) {
	switch kind {
	case KindRepayOwed:
		c, err := decodeJSON[RepayOwed](p)
		return c, true, err
	}
	return nil, false, nil
}

// owedID is the ledger id of a repayment or write-off journaled at seq.
func owedID(ns byte, seq uint64) ledger.ID {
	var b [9]byte
	b[0] = ns
	binary.BigEndian.PutUint64(b[1:], seq)
	h := sha256.Sum256(append([]byte("owed:"), b[:]...))
	return ledger.ID{Hi: uint64(ns)<<56 | binary.BigEndian.Uint64(h[:8])>>8, Lo: binary.BigEndian.Uint64(h[8:16])}
}

// Namespaces (top byte) of the ledger ids of repayments and write-offs.
const (
	nsRepayOwed    = 0xD6
	nsWriteOffOwed = 0xD7
)

func (s *State) applyOwed(cmd Command, t int64) (bool, any, error) {
	switch c := cmd.(type) {
	case RepayOwed:
		if _, ok := s.Operator(c.Actor); !ok {
			return true, nil, people.ErrOperatorUnknown
		}
		a, ok := s.Ledger.AssetByCode(c.Asset)
		if !ok {
			return true, nil, fmt.Errorf("%w: %q", custody.ErrAssetUnknown, c.Asset)
		}
		n, err := s.Custody.RepayOwed(s.Ledger, c.Customer, a.ID, owedID(nsRepayOwed, s.seq), t)
		return true, n, err
	}
	return false, nil, nil
}

func (s *State) checkWriteOffOwed(r people.Request) error {
	var p WriteOffOwedPayload
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		return fmt.Errorf("%w: payload: %v", people.ErrInvalid, err)
	}
	if r.RequiredRole != people.RoleApprover && r.RequiredRole != people.RoleAdmin {
		return fmt.Errorf("%w: write-offs are approved by an approver", people.ErrInvalid)
	}
	return s.checkOwed(p)
}

func (s *State) checkOwed(p WriteOffOwedPayload) error {
	a, ok := s.Ledger.AssetByCode(p.Asset)
	if !ok {
		return fmt.Errorf("%w: %q", custody.ErrAssetUnknown, p.Asset)
	}
	if custody.Owed(s.Ledger, p.Customer, a.ID) == 0 {
		return custody.ErrNothingOwed
	}
	return nil
}

func (s *State) applyWriteOffOwed(r people.Request, t int64) error {
	var p WriteOffOwedPayload
	json.Unmarshal(r.Payload, &p)
	a, ok := s.Ledger.AssetByCode(p.Asset)
	if !ok {
		return custody.ErrAssetUnknown
	}
	_, err := s.Custody.WriteOffOwed(s.Ledger, p.Customer, a.ID, ledger.OwnerEquity, owedID(nsWriteOffOwed, s.seq), t)
	return err
}

// finalityDepth is the depth a deposit of amount of asset needs, by the
// journaled withdrawal rules.
func (s *State) finalityDepth(asset ledger.AssetID, amount ledger.Amount) int32 {
	a, _ := s.Ledger.Asset(asset)
	return s.Withdraw.Rules.FinalityDepth(a.Code, a.Decimals, withdraw.Amount(amount))
}

// finalizeAt marks final the deposits of asset that the asset's journaled
// checkpoint makes final.
func (s *State) finalizeAt(asset ledger.AssetID) {
	cp, ok := s.Checkpoints[asset]
	if !ok {
		return
	}
	s.Custody.Finalize(asset, cp.Height, cp.Hashes)
}

// checkFinalityRules checks that every asset the finality tiers name is a
// registered chain asset.
func (s *State) checkFinalityRules(r withdraw.Rules) error {
	for _, code := range slices.Sorted(maps.Keys(r.Finality)) {
		a, ok := s.Ledger.AssetByCode(code)
		if !ok {
			return fmt.Errorf("%w: %s: asset unknown", withdraw.ErrFinalityRules, code)
		}
		if a.Class != ledger.ClassChain {
			return fmt.Errorf("%w: %s: not a chain asset (only chain deposits have confirmations)", withdraw.ErrFinalityRules, code)
		}
	}
	return nil
}

// tip returns the journaled chain tip of asset (0 before any checkpoint).
func (s *State) tip(asset ledger.AssetID) int32 { return s.Checkpoints[asset].Height }

// Finality returns what the withdrawal policy knows of a customer's
// deposits not yet final and of what they owe, by asset.
func (s *State) Finality(customer ledger.OwnerID) withdraw.Finality {
	var f withdraw.Finality
	for _, u := range s.Custody.Unfinal(customer) {
		a, _ := s.Ledger.Asset(u.Asset)
		f.Unfinal = append(f.Unfinal, withdraw.Unfinal{
			Asset: a.Code, Amount: withdraw.Amount(u.Amount), Available: s.available(customer, u.Asset), Count: u.Count,
			Deposit: u.First.Outpoint.String(), DepositAmount: withdraw.Amount(u.First.Value()),
			Confirmations: u.First.Confirmations(s.tip(u.Asset)), Depth: u.First.Depth(),
		})
	}
	for _, a := range s.Ledger.Assets() {
		if n := custody.OwedAmount(s.Ledger, customer, a.ID); !n.IsZero() {
			f.Owed = append(f.Owed, withdraw.Owed{Asset: a.Code, Amount: withdraw.Amount(n)})
		}
	}
	return f
}

// available returns the customer's available balance of asset.
func (s *State) available(customer ledger.OwnerID, asset ledger.AssetID) withdraw.Amount {
	acc, ok := s.Ledger.Account(ledger.AccountKey{Owner: customer, Asset: asset, Kind: ledger.KindAvailable})
	if !ok {
		return withdraw.Amount{}
	}
	return withdraw.Amount(acc.Available())
}

// Withdrawable returns how much of asset the customer may withdraw now:
// their available balance less their deposits of it not yet final, or
// nothing while they owe from a reversed deposit or traded away deposits
// not yet final; and why, when it is less than the available balance.
func (s *State) Withdrawable(customer ledger.OwnerID, asset ledger.AssetID) (withdraw.Amount, string) {
	a, ok := s.Ledger.Asset(asset)
	if !ok {
		return withdraw.Amount{}, "asset unknown"
	}
	return withdraw.Withdrawable(a.Code, s.available(customer, asset), s.Finality(customer))
}

// describeOwed says what a repay_owed command asks.
func describeOwed(c Command) (string, bool) {
	switch c := c.(type) {
	case RepayOwed:
		return fmt.Sprintf("%s repays what customer %d owes in %s from their available balance", c.Actor, c.Customer, c.Asset), true
	}
	return "", false
}
