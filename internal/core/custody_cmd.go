package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"kinko/internal/controls"
	"kinko/internal/custody"
	"kinko/internal/incident"
	"kinko/internal/ledger"
	"kinko/internal/people"
)

// Command kinds of custody and the halt matrix.
const (
	KindRegisterWallet   Kind = 20
	KindAssignAddress    Kind = 21
	KindCreditDeposits   Kind = 22
	KindReverseDeposits  Kind = 23
	KindHalt             Kind = 24
	KindLift             Kind = 25
	KindWatchCheckpoint  Kind = 26
	KindPrepareCeremony  Kind = 27
	KindConfirmCeremony  Kind = 28
	KindOpenIncident     Kind = 29
	KindNoteIncident     Kind = 30
	KindCloseIncidentCmd Kind = 31
	KindFundHouse        Kind = 35
)

func init() {
	kindNames[KindRegisterWallet] = "register_wallet"
	kindNames[KindAssignAddress] = "assign_address"
	kindNames[KindCreditDeposits] = "credit_deposits"
	kindNames[KindReverseDeposits] = "reverse_deposits"
	kindNames[KindHalt] = "halt"
	kindNames[KindLift] = "lift"
	kindNames[KindWatchCheckpoint] = "watch_checkpoint"
	kindNames[KindPrepareCeremony] = "prepare_ceremony"
	kindNames[KindConfirmCeremony] = "confirm_ceremony"
	kindNames[KindOpenIncident] = "open_incident"
	kindNames[KindNoteIncident] = "note_incident"
	kindNames[KindCloseIncidentCmd] = "close_incident"
	kindNames[KindFundHouse] = "fund_house"
}

// FundHouse records coins the house put into one of its wallets (its
// backing, 履行保証暗号資産): given by the core's host, as opening
// balances are, never from the API; reconciliation holds it against the
// chain.
type FundHouse struct{ Funding custody.HouseFunding }

func (FundHouse) Kind() Kind                      { return KindFundHouse }
func (c FundHouse) AppendPayload(b []byte) []byte { return appendJSON(b, c) }

// OpenIncident opens (or adds transactions to) an incident record.
type OpenIncident struct{ Incident incident.Incident }

// NoteIncident adds an operator's note to an incident.
type NoteIncident struct {
	ID, Actor, Text string
}

// CloseIncident was how one operator closed an incident. It is refused now:
// closing takes two people (a close_incident request, KindCloseIncident).
type CloseIncident struct {
	ID, Actor, Reason string
}

func (NoteIncident) Kind() Kind                       { return KindNoteIncident }
func (CloseIncident) Kind() Kind                      { return KindCloseIncidentCmd }
func (c NoteIncident) AppendPayload(b []byte) []byte  { return appendJSON(b, c) }
func (c CloseIncident) AppendPayload(b []byte) []byte { return appendJSON(b, c) }

func (OpenIncident) Kind() Kind                      { return KindOpenIncident }
func (c OpenIncident) AppendPayload(b []byte) []byte { return appendJSON(b, c) }

// PrepareCeremony registers an offline-signed transaction between our
// wallets and reserves its inputs, before anyone signs it. An Ethereum
// ceremony (Ceremony.Safe set) journals its SafeTx and payments instead:
// the core recomputes the SafeTx's hash and checks its calls are exactly
// the payments (checkSafeCeremony); ConfirmCeremony with that hash moves
// the payments between the wallets' accounts.
type PrepareCeremony struct{ Ceremony custody.Ceremony }

// ConfirmCeremony records a ceremony's transaction in a block.
type ConfirmCeremony struct {
	TxID   [32]byte
	Height int32
}

func (PrepareCeremony) Kind() Kind { return KindPrepareCeremony }
func (ConfirmCeremony) Kind() Kind { return KindConfirmCeremony }

func (c PrepareCeremony) AppendPayload(b []byte) []byte { return appendJSON(b, c) }
func (c ConfirmCeremony) AppendPayload(b []byte) []byte { return appendJSON(b, c) }

// ErrAssetNotListed reports a deposit or address of an asset whose listing
// has not been approved.
var ErrAssetNotListed = errors.New("asset not listed")

// RegisterWallet registers a wallet and opens its ledger account.
type RegisterWallet struct{ Wallet custody.Wallet }

// AssignAddress hands the next deposit address of a cold customer wallet
// to a customer; the Outcome's Value is the index (uint32).
type AssignAddress struct {
	Wallet   uint32
	Customer ledger.OwnerID
}

// CreditDeposits credits confirmed deposits; the Outcome's Value lists the
// ones that did not credit now ([]custody.Result).
type CreditDeposits struct{ Deposits []custody.Seen }

// ReverseDeposits reverses credited deposits whose block left the best
// chain, and halts deposits of their asset. The Outcome's Value lists, per
// deposit, the shortfall the customer now owes ([]uint64).
type ReverseDeposits struct {
	Outpoints []custody.Outpoint
	Actor     string
	Reason    string
}

// Halt turns a switch of the halt matrix off.
type Halt struct {
	Switch controls.Switch
	Actor  string
	Reason string
}

// Lift turns a halted switch back on; requester and approver differ.
type Lift struct {
	Switch    controls.Switch
	Requester string
	Approver  string
	Reason    string
}

// WatchCheckpoint records where a chain watcher stands, so that it resumes
// there after a restart. Its height is also the chain tip that finality
// counts confirmations against: credited deposits whose depth it reaches
// become withdrawable.
//
// The watcher journals one after every block it follows and, with no new
// block, at least every few minutes: the core's readiness reads its age
// and how far Height is behind Tip.
type WatchCheckpoint struct {
	Asset  ledger.AssetID
	Height int32
	Hashes [][32]byte
	// Tip is the best height the watcher's node had when it was
	// journaled (0: not said, as in checkpoints journaled before it was).
	Tip int32 `json:",omitempty"`
	// Held is the lowest height of a deposit the watcher has seen in a
	// block and not yet credited (kept while the asset's deposits are
	// halted), 0 for none: a restarted watcher reads the blocks from
	// there again, so that a deposit kept through a long halt is credited
	// after the lift however often the watcher restarts.
	Held int32 `json:",omitempty"`
}

func (RegisterWallet) Kind() Kind  { return KindRegisterWallet }
func (AssignAddress) Kind() Kind   { return KindAssignAddress }
func (CreditDeposits) Kind() Kind  { return KindCreditDeposits }
func (ReverseDeposits) Kind() Kind { return KindReverseDeposits }
func (Halt) Kind() Kind            { return KindHalt }
func (Lift) Kind() Kind            { return KindLift }
func (WatchCheckpoint) Kind() Kind { return KindWatchCheckpoint }

func appendJSON(b []byte, v any) []byte {
	j, err := json.Marshal(v)
	if err != nil {
		panic(err) // these types always marshal
	}
	return append(b, j...)
}

func (c RegisterWallet) AppendPayload(b []byte) []byte  { return appendJSON(b, c) }
func (c AssignAddress) AppendPayload(b []byte) []byte   { return appendJSON(b, c) }
func (c CreditDeposits) AppendPayload(b []byte) []byte  { return appendJSON(b, c) }
func (c ReverseDeposits) AppendPayload(b []byte) []byte { return appendJSON(b, c) }
func (c Halt) AppendPayload(b []byte) []byte            { return appendJSON(b, c) }
func (c Lift) AppendPayload(b []byte) []byte            { return appendJSON(b, c) }
func (c WatchCheckpoint) AppendPayload(b []byte) []byte { return appendJSON(b, c) }

// decodeJSON decodes a JSON payload strictly: no unknown fields, nothing
// after the value, and it must re-encode to the same bytes, so one command
// has one encoding.
func decodeJSON[T Command](p []byte) (Command, error) {
	var c T
	d := json.NewDecoder(bytes.NewReader(p))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return nil, invalid("%T: %v", c, err)
	}
	if d.More() {
		return nil, invalid("%T: trailing data", c)
	}
	if !bytes.Equal(c.AppendPayload(nil), p) {
		return nil, invalid("%T: not in canonical form", c)
	}
	return c, nil
}

// decodeCustody decodes the custody and control kinds.
func decodeCustody(kind Kind, p []byte) (Command, bool, error) {
	var c Command
	var err error
	switch kind {
	case KindRegisterWallet:
		c, err = decodeJSON[RegisterWallet](p)
	case KindAssignAddress:
		c, err = decodeJSON[AssignAddress](p)
	case KindCreditDeposits:
		c, err = decodeJSON[CreditDeposits](p)
		if err == nil && len(c.(CreditDeposits).Deposits) > custody.MaxBatch {
			err = invalid("%d deposits exceed %d", len(c.(CreditDeposits).Deposits), custody.MaxBatch)
		}
	case KindReverseDeposits:
		c, err = decodeJSON[ReverseDeposits](p)
	case KindHalt:
		c, err = decodeJSON[Halt](p)
	case KindLift:
		c, err = decodeJSON[Lift](p)
	case KindWatchCheckpoint:
		c, err = decodeJSON[WatchCheckpoint](p)
	case KindPrepareCeremony:
		c, err = decodeJSON[PrepareCeremony](p)
	case KindConfirmCeremony:
		c, err = decodeJSON[ConfirmCeremony](p)
	case KindOpenIncident:
		c, err = decodeJSON[OpenIncident](p)
	case KindNoteIncident:
		c, err = decodeJSON[NoteIncident](p)
	case KindCloseIncidentCmd:
		c, err = decodeJSON[CloseIncident](p)
	case KindFundHouse:
		c, err = decodeJSON[FundHouse](p)
	default:
		return nil, false, nil
	}
	return c, true, err
}

// applyCustody applies the custody and control kinds.
// seenAsset is the asset a deposit seen for wallet w names: a token's, or
// w's own (Asset 0).
func seenAsset(w custody.Wallet, d custody.Seen) ledger.AssetID {
	if d.Asset != 0 {
		return d.Asset
	}
	return w.Asset
}

func (s *State) applyCustody(cmd Command, t int64) (handled bool, v any, err error) {
	switch c := cmd.(type) {
	case RegisterWallet:
		return true, nil, s.Custody.RegisterWallet(s.Ledger, c.Wallet)
	case AssignAddress:
		if w, ok := s.Custody.Wallet(c.Wallet); ok && !s.People.AssetEnabled(w.Asset) {
			return true, nil, fmt.Errorf("%w: asset %d awaits listing", ErrAssetNotListed, w.Asset)
		}
		idx, err := s.Custody.AssignAddress(s.Ledger, c.Wallet, c.Customer)
		return true, idx, err
	case CreditDeposits:
		var halted []custody.Result
		ok := c.Deposits[:0:0]
		for i, d := range c.Deposits {
			w, found := s.Custody.Wallet(d.Wallet)
			if found {
				asset := seenAsset(w, d)
				err := s.Controls.Allowed(asset, controls.Deposit)
				if err == nil && !s.People.AssetEnabled(asset) {
					err = fmt.Errorf("%w: asset %d awaits listing", ErrAssetNotListed, asset)
				}
				if err != nil {
					halted = append(halted, custody.Result{Index: uint32(i), Err: err})
					continue
				}
			}
			ok = append(ok, d)
		}
		res := s.Custody.CreditDeposits(s.Ledger, ok, t, s.finalityDepth)
		if len(halted) > 0 && len(res) > 0 {
			// The results name the command's deposits, not ok's: ok's
			// j-th is the j-th of those not halted.
			at := make([]uint32, 0, len(ok))
			for i, k := 0, 0; i < len(c.Deposits); i++ {
				if k < len(halted) && halted[k].Index == uint32(i) {
					k++
					continue
				}
				at = append(at, uint32(i))
			}
			for j := range res {
				if int(res[j].Index) < len(at) {
					res[j].Index = at[res[j].Index]
				}
			}
		}
		// A deposit credited after the journaled tip already passed its
		// depth is final at once.
		var assets []ledger.AssetID
		for _, d := range ok {
			if w, found := s.Custody.Wallet(d.Wallet); found && !slices.Contains(assets, seenAsset(w, d)) {
				assets = append(assets, seenAsset(w, d))
			}
		}
		slices.Sort(assets)
		for _, a := range assets {
			s.finalizeAt(a)
		}
		return true, append(halted, res...), nil
	case ReverseDeposits:
		// Check every outpoint first: a batch reverses whole or not at all.
		for _, o := range c.Outpoints {
			if _, found := s.Custody.Deposit(o); !found {
				return true, nil, fmt.Errorf("%w: %s", custody.ErrDepositUnknown, o)
			}
		}
		var shortfalls []uint64
		for _, o := range c.Outpoints {
			d, found := s.Custody.Deposit(o)
			short, err := s.Custody.ReverseDeposit(s.Ledger, o, t)
			if err != nil {
				return true, shortfalls, err
			}
			shortfalls = append(shortfalls, short)
			if _, ok := s.Custody.Wallet(d.Wallet); found && ok {
				s.Controls.HaltSwitch(controls.Switch{Asset: s.Custody.DepositAsset(&d), Service: controls.Deposit}, c.Actor,
					fmt.Sprintf("deposit %s reversed: %s", o, c.Reason), t, s.seq)
			}
		}
		return true, shortfalls, nil
	case Halt:
		if c.Switch.Asset != 0 {
			if _, ok := s.Ledger.Asset(c.Switch.Asset); !ok {
				return true, false, fmt.Errorf("%w: asset %d is not listed", controls.ErrSwitchInvalid, c.Switch.Asset)
			}
		}
		changed, err := s.Controls.HaltSwitch(c.Switch, c.Actor, c.Reason, t, s.seq)
		return true, changed, err
	case Lift:
		return true, nil, s.Controls.LiftSwitch(c.Switch, c.Requester, c.Approver, c.Reason, t, s.seq)
	case PrepareCeremony:
		if c.Ceremony.Safe != nil {
			if err := checkSafeCeremony(s, &c.Ceremony); err != nil {
				return true, nil, err
			}
		}
		return true, nil, s.Custody.Prepare(c.Ceremony, t)
	case FundHouse:
		return true, nil, s.Custody.FundHouse(s.Ledger, c.Funding, ledger.OwnerEquity, t)
	case ConfirmCeremony:
		return true, nil, s.Custody.ConfirmCeremony(s.Ledger, c.TxID, c.Height, ledger.OwnerEquity, t)
	case OpenIncident:
		return true, nil, s.Incidents.Open(c.Incident, t, s.seq)
	case NoteIncident:
		if _, ok := s.Operator(c.Actor); !ok {
			return true, nil, people.ErrOperatorUnknown
		}
		return true, nil, s.Incidents.AddNote(c.ID, c.Actor, c.Text, t, s.seq)
	case CloseIncident:
		// Two people close an incident: a close_incident request.
		return true, nil, fmt.Errorf("%w: request kind %s", ErrTwoPerson, KindCloseIncident)
	case WatchCheckpoint:
		if s.Checkpoints == nil {
			s.Checkpoints = map[ledger.AssetID]WatchCheckpoint{}
		}
		s.Checkpoints[c.Asset] = c
		// The journaled tip is the clock of finality.
		s.finalizeAt(c.Asset)
		return true, nil, nil
	}
	return false, nil, nil
}
