package custody

import (
	"errors"
	"fmt"

	"kinko/internal/ledger"
)

// Cover is a ceremony purpose: the house's own coins (a cold or hot house
// wallet, 履行保証暗号資産) moved to a customer wallet after a loss of
// customers' coins, so that customers are made whole in kind. The house's
// backing exists for this: it holds as much as the hot customer wallet,
// which is what a theft of the hot keys can take.
const Cover Purpose = "cover"

// HouseFunding is coins the house put into one of its wallets from
// outside (its own purchase, its own reserves): an output paying the
// wallet's next receive address, recorded so that the house's backing is
// in the journal's coins (a cover ceremony spends it) and on the ledger
// (the house wallet's account, against equity). Reconciliation checks it
// against the chain like every wallet.
type HouseFunding struct {
	Wallet   uint32   `json:"wallet"`
	Outpoint Outpoint `json:"outpoint"`
	Index    uint32   `json:"index"`
	Amount   uint64   `json:"amount"`
}

// Errors of house funding.
var (
	ErrNotHouseWallet = errors.New("custody: not a house wallet")
	ErrFundingExists  = errors.New("custody: that output is recorded already")
)

// CodeHouseFunding marks the ledger transfer of a house funding.
const CodeHouseFunding = 22

// FundHouse records a house funding: a new available output of the house
// wallet at its next receive index (which advances), and the ledger
// transfer from equity to the wallet's account.
func (s *State) FundHouse(l *ledger.Ledger, f HouseFunding, equity ledger.OwnerID, t int64) error {
	wi, ok := s.walletIdx[f.Wallet]
	if !ok {
		return ErrWalletUnknown
	}
	w := &s.wallets[wi]
	if w.Kind != ColdHouse && w.Kind != HotHouse {
		return fmt.Errorf("%w: wallet %d is %s", ErrNotHouseWallet, f.Wallet, w.Kind)
	}
	if f.Amount == 0 {
		return ErrAmountZero
	}
	if _, ok := s.utxoIdx[f.Outpoint]; ok {
		return ErrFundingExists
	}
	if f.Index != w.NextIndex {
		return fmt.Errorf("%w: wallet %d index %d, next %d", ErrIndexNotNext, f.Wallet, f.Index, w.NextIndex)
	}
	eq := ledger.AccountKey{Owner: equity, Asset: w.Asset, Kind: ledger.KindEquity}
	l.CreateAccounts([]ledger.AccountKey{eq, w.Account()}, nil)
	id := depositLegID(f.Outpoint, 5)
	id.Hi = 0xC2<<56 | id.Hi&(1<<56-1)
	if res := l.CreateTransfers([]ledger.Transfer{{ID: id, Debit: w.Account(), Credit: eq, Amount: ledger.AmountOf(f.Amount), Code: CodeHouseFunding}}, t, nil); len(res) > 0 {
		return res[0].Code
	}
	w.NextIndex++
	s.addUTXO(UTXO{Outpoint: f.Outpoint, Wallet: f.Wallet, Branch: 0, Index: f.Index, Amount: f.Amount, State: UTXOAvailable})
	return nil
}

// checkCover checks a cover ceremony: every input is of one house wallet,
// every output pays a customer wallet of its asset or is change to that
// house wallet.
func (s *State) checkCover(c Ceremony) error {
	var payer *Wallet
	for _, o := range c.Inputs {
		u := s.utxos[s.utxoIdx[o]]
		w := &s.wallets[s.walletIdx[u.Wallet]]
		if w.Kind != ColdHouse && w.Kind != HotHouse {
			return fmt.Errorf("%w: a cover spends the house's coins, not wallet %d's (%s)", ErrCeremonyInvalid, w.ID, w.Kind)
		}
		if payer != nil && payer.ID != w.ID {
			return fmt.Errorf("%w: a cover spends one house wallet", ErrCeremonyInvalid)
		}
		payer = w
	}
	toCustomers := false
	for _, o := range c.Outputs {
		w := s.wallets[s.walletIdx[o.Wallet]]
		switch {
		case w.ID == payer.ID && o.Branch == 1:
		case w.Kind.Customer() && w.Asset == payer.Asset:
			toCustomers = true
		default:
			return fmt.Errorf("%w: a cover pays customer wallets (and change to the house wallet), not wallet %d (%s)", ErrCeremonyInvalid, w.ID, w.Kind)
		}
	}
	if !toCustomers {
		return fmt.Errorf("%w: a cover pays a customer wallet", ErrCeremonyInvalid)
	}
	return nil
}
