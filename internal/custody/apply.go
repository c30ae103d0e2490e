package custody

import (
	"errors"
	"fmt"

	"kinko/internal/ethwallet"
	"kinko/internal/ledger"
)

// Errors of custody commands. Apply returns them; callers test them with
// errors.Is.
var (
	ErrWalletExists      = errors.New("custody: wallet id exists with other fields")
	ErrWalletUnknown     = errors.New("custody: wallet unknown")
	ErrWalletKind        = errors.New("custody: wallet kind invalid")
	ErrDescriptorEmpty   = errors.New("custody: descriptor empty or too long")
	ErrAssetUnknown      = errors.New("custody: asset unknown")
	ErrOwnerInvalid      = errors.New("custody: wallet owner must be a house owner")
	ErrCustomerUnknown   = errors.New("custody: customer unknown")
	ErrNotDepositWallet  = errors.New("custody: deposits go to the cold customer wallet")
	ErrAddressUnassigned = errors.New("custody: address was never handed to a customer")
	ErrAmountZero        = errors.New("custody: amount must be positive")
	ErrDepositUnknown    = errors.New("custody: deposit unknown")
	ErrBatchTooLarge     = errors.New("custody: batch too large")
	// ErrDepositExists is a retry: the outpoint was credited before.
	ErrDepositExists = errors.New("custody: deposit already credited")
	// ErrDepositReversed: the outpoint was credited and later reversed.
	ErrDepositReversed = errors.New("custody: deposit was reversed")
	// ErrDescriptorInvalid reports a descriptor that claims a format
	// (a Safe's) and does not parse as one.
	ErrDescriptorInvalid = errors.New("custody: descriptor invalid")
	// ErrAmountRange reports an amount of 64 bits or more for a wallet
	// whose outputs hold 64 (Bitcoin's).
	ErrAmountRange = errors.New("custody: amount beyond 64 bits for a Bitcoin wallet")
)

// checkDescriptor parses a Safe descriptor strictly (a Bitcoin one is
// parsed by the callers, who know the network).
func checkDescriptor(desc string) error {
	if !ethwallet.IsSafe(desc) {
		return nil
	}
	if _, err := ethwallet.Parse(desc); err != nil {
		return fmt.Errorf("%w: %w", ErrDescriptorInvalid, err)
	}
	return nil
}

// MaxDescriptor bounds a descriptor's length.
const MaxDescriptor = 4096

// MaxBatch bounds the deposits of one command.
const MaxBatch = 8192

// RegisterWallet registers w and opens its ledger wallet account. The same
// wallet registered again is a retry and changes nothing.
func (s *State) RegisterWallet(l *ledger.Ledger, w Wallet) error {
	switch {
	case w.ID == 0:
		return ErrWalletUnknown
	case w.Kind < ColdCustomer || w.Kind > HotHouse:
		return ErrWalletKind
	case w.Descriptor == "" || len(w.Descriptor) > MaxDescriptor:
		return ErrDescriptorEmpty
	case w.Owner < ledger.OwnerHouseMin:
		return ErrOwnerInvalid
	}
	if _, ok := l.Asset(w.Asset); !ok {
		return ErrAssetUnknown
	}
	if t, ok := s.Token(w.Asset); ok {
		return fmt.Errorf("%w: asset %d is a token of %s on chain %d: its deposits go to the chain's Safe wallets", ErrTokenAsset, t.Asset, t.Contract, t.ChainID)
	}
	if err := checkDescriptor(w.Descriptor); err != nil {
		return err
	}
	w.NextIndex, w.NextChange = 0, 0
	if i, ok := s.walletIdx[w.ID]; ok {
		cur := s.wallets[i]
		cur.NextIndex, cur.NextChange = 0, 0
		if cur == w {
			return nil
		}
		return ErrWalletExists
	}
	if res := l.CreateAccounts([]ledger.AccountKey{w.Account()}, nil); len(res) > 0 && !res[0].Code.Succeeded() {
		return res[0].Code
	}
	s.walletIdx[w.ID] = len(s.wallets)
	s.wallets = append(s.wallets, w)
	return nil
}

// AssignAddress hands a receive address of the cold customer wallet to
// customer and returns its index: the customer's latest address in the
// wallet again if no deposit was ever credited to it, else the next index.
// A customer who asks again and again without paying holds one unused
// address, not a run of them, so that the wallet's unused run stays
// bounded by the customers who asked once and never paid (GapReport), and
// a watch-only copy restored with a gap limit finds the deposits after.
// Deterministic: it reads only the state.
func (s *State) AssignAddress(l *ledger.Ledger, wallet uint32, customer ledger.OwnerID) (uint32, error) {
	i, ok := s.walletIdx[wallet]
	if !ok {
		return 0, ErrWalletUnknown
	}
	w := &s.wallets[i]
	if w.Kind != ColdCustomer {
		return 0, ErrNotDepositWallet
	}
	if !l.HasCustomer(customer) {
		return 0, ErrCustomerUnknown
	}
	// The customer's account for the asset, so that a credit cannot fail
	// for want of it.
	l.CreateAccounts([]ledger.AccountKey{{Owner: customer, Asset: w.Asset, Kind: ledger.KindAvailable}}, nil)
	held := s.byCust[customer]
	for i := len(held) - 1; i >= 0; i-- {
		if held[i].wallet != wallet {
			continue
		}
		if !s.used[held[i]] {
			return held[i].index, nil
		}
		break
	}
	k := addrKey{wallet, w.NextIndex}
	w.NextIndex++
	s.assign(Assignment{Customer: customer, Wallet: wallet, Index: k.index})
	return k.index, nil
}

// Seen is a deposit output seen on chain with enough confirmations (for
// Ethereum: a transfer to a deposit address, Outpoint its transaction hash
// and index).
type Seen struct {
	Outpoint Outpoint
	Wallet   uint32
	Index    uint32
	// Amount is the low 64 bits of the amount in base units, AmountHi the
	// high 64 (only a Safe wallet's deposit may have them).
	Amount   uint64
	AmountHi uint64 `json:",omitempty"`
	// Asset is the token asset of a token deposit (a Token bound on the
	// chain of the wallet's Safe); 0 for the wallet's own asset.
	Asset     ledger.AssetID `json:",omitempty"`
	BlockHash [32]byte
	Height    int32
	// Review marks a deposit from an address on the AML deny list: it is
	// credited to the held account, for review.
	Review bool `json:",omitempty"`
}

// Value returns the amount seen in base units, all 128 bits.
func (d *Seen) Value() ledger.Amount { return ledger.Amount{Hi: d.AmountHi, Lo: d.Amount} }

// Result is one deposit's outcome in a batch; Err nil is success.
type Result struct {
	Index uint32
	Err   error
}

// CreditDeposits credits each deposit to the customer who owns its address,
// once per outpoint, with a ledger transfer from the wallet's account, and
// notes the height at which it becomes final by depth. What the customer
// owes from a reversed deposit of the asset is repaid from the credit.
// Results list the deposits that did not credit now (retries included).
// The caller finalizes what the asset's chain tip already makes final.
func (s *State) CreditDeposits(l *ledger.Ledger, deps []Seen, t int64, depth DepthFunc) []Result {
	if len(deps) > MaxBatch {
		return []Result{{0, ErrBatchTooLarge}}
	}
	var res []Result
	for i := range deps {
		if err := s.credit(l, &deps[i], t, depth); err != nil {
			res = append(res, Result{uint32(i), err})
		}
	}
	return res
}

func (s *State) credit(l *ledger.Ledger, d *Seen, t int64, depth DepthFunc) error {
	if j, ok := s.depIdx[d.Outpoint]; ok {
		if s.deposits[j].State == DepositReversed {
			return ErrDepositReversed
		}
		return ErrDepositExists
	}
	wi, ok := s.walletIdx[d.Wallet]
	if !ok {
		return ErrWalletUnknown
	}
	w := &s.wallets[wi]
	if w.Kind != ColdCustomer {
		return ErrNotDepositWallet
	}
	cust, ok := s.owners[addrKey{d.Wallet, d.Index}]
	if !ok {
		return ErrAddressUnassigned
	}
	amount := d.Value()
	if amount.IsZero() {
		return ErrAmountZero
	}
	safe := w.Safe()
	if d.AmountHi != 0 && !safe {
		return ErrAmountRange
	}
	asset, err := s.seenAsset(w, d.Asset)
	if err != nil {
		return err
	}
	kind, state := ledger.KindAvailable, DepositCredited
	if d.Review {
		kind, state = ledger.KindHeld, DepositReview
	}
	// A token's accounts open at its first deposit; the wallet's own
	// opened at registration and assignment.
	for _, k := range []ledger.AccountKey{walletAccount(w, asset), {Owner: cust, Asset: asset, Kind: kind}} {
		if !accountExists(l, k) {
			l.CreateAccounts([]ledger.AccountKey{k}, nil)
		}
	}
	tr := ledger.Transfer{
		ID:     DepositTransferID(d.Outpoint, false),
		Debit:  walletAccount(w, asset),
		Credit: ledger.AccountKey{Owner: cust, Asset: asset, Kind: kind},
		Amount: amount,
		Code:   CodeDeposit,
	}
	if res := l.CreateTransfers([]ledger.Transfer{tr}, t, nil); len(res) > 0 && !res[0].Code.Succeeded() {
		return res[0].Code
	}
	if !safe {
		// A Safe's deposit is a balance at its address, not an output.
		s.addUTXO(UTXO{Outpoint: d.Outpoint, Wallet: d.Wallet, Branch: 0, Index: d.Index, Amount: d.Amount, State: UTXOAvailable})
	}
	s.depIdx[d.Outpoint] = len(s.deposits)
	s.used[addrKey{d.Wallet, d.Index}] = true
	dep := Deposit{
		Outpoint: d.Outpoint, Wallet: d.Wallet, Index: d.Index, Customer: cust, Amount: d.Amount, AmountHi: d.AmountHi,
		BlockHash: d.BlockHash, Height: d.Height, State: state, Time: t,
		FinalAt: finalAt(d.Height, depth(asset, amount)),
	}
	if asset != w.Asset {
		dep.Asset = asset
	}
	s.deposits = append(s.deposits, dep)
	s.track(len(s.deposits) - 1)
	if state == DepositCredited {
		if _, err := s.repay(l, cust, asset, depositLegID(d.Outpoint, 3), t); err != nil {
			return err
		}
	}
	return nil
}

// ReverseDeposit takes back a credited deposit whose block left the best
// chain. What the customer still has is taken back from their available
// balance (from held, for a deposit held for review); any shortfall
// (already traded or withdrawn) is recorded as owed by the customer, on
// their receivable account, and reported (at most 2^64-1 here; the ledger
// holds it exactly, and ReverseDepositAmount reports all of it). The house
// pays nothing. The deposit is marked reversed.
func (s *State) ReverseDeposit(l *ledger.Ledger, o Outpoint, t int64) (shortfall uint64, err error) {
	short, err := s.ReverseDepositAmount(l, o, t)
	return saturate(short), err
}

// ReverseDepositAmount is ReverseDeposit with the shortfall in all its
// 128 bits (ReverseDeposit's saturates at 2^64-1; the ledger holds it
// exactly either way).
func (s *State) ReverseDepositAmount(l *ledger.Ledger, o Outpoint, t int64) (shortfall ledger.Amount, err error) {
	j, ok := s.depIdx[o]
	if !ok {
		return ledger.Amount{}, ErrDepositUnknown
	}
	d := &s.deposits[j]
	if d.State == DepositReversed {
		return ledger.Amount{}, nil
	}
	w := s.wallets[s.walletIdx[d.Wallet]]
	asset := s.DepositAsset(d)
	kind := ledger.KindAvailable
	if d.State == DepositReview {
		kind = ledger.KindHeld
	}
	cust := ledger.AccountKey{Owner: d.Customer, Asset: asset, Kind: kind}
	take := d.Value()
	if a, ok := l.Account(cust); ok {
		if avail := a.Available(); avail.Cmp(take) < 0 {
			take = avail
		}
	} else {
		take = ledger.Amount{}
	}
	shortfall, _ = d.Value().Sub(take) // take ≤ the deposit
	id := DepositTransferID(o, true)
	var ts []ledger.Transfer
	if !take.IsZero() {
		ts = append(ts, ledger.Transfer{ID: id, Debit: cust, Credit: walletAccount(&w, asset), Amount: take, Code: CodeDepositReversal})
	}
	if !shortfall.IsZero() {
		owes := ReceivableAccount(d.Customer, asset)
		l.CreateAccounts([]ledger.AccountKey{owes}, nil)
		id.Lo ^= 1
		ts = append(ts, ledger.Transfer{ID: id, Debit: owes, Credit: walletAccount(&w, asset), Amount: shortfall, Code: CodeDepositOwed})
	}
	for i := range ts[:len(ts)-1] {
		ts[i].Flags |= ledger.FlagLinked
	}
	if res := l.CreateTransfers(ts, t, nil); len(res) > 0 && !res[0].Code.Succeeded() {
		return ledger.Amount{}, res[0].Code
	}
	if tracked(d) {
		s.untrack(j, true)
	}
	d.State = DepositReversed
	if i, ok := s.utxoIdx[o]; ok && s.utxos[i].State == UTXOAvailable {
		s.utxos[i].State = UTXOSpent // it never existed on the best chain
	}
	return shortfall, nil
}

// saturate returns a as a uint64, 2^64-1 if it does not fit.
func saturate(a ledger.Amount) uint64 {
	if v, ok := a.Uint64(); ok {
		return v
	}
	return ^uint64(0)
}

// ReceivableAccount returns the account of what customer owes in asset.
func ReceivableAccount(customer ledger.OwnerID, asset ledger.AssetID) ledger.AccountKey {
	return ledger.AccountKey{Owner: customer, Asset: asset, Kind: ledger.KindReceivable}
}

// Owed returns what customer owes in asset from reversed deposits (at
// most 2^64-1: OwedAmount has all 128 bits).
func Owed(l *ledger.Ledger, customer ledger.OwnerID, asset ledger.AssetID) uint64 {
	return saturate(OwedAmount(l, customer, asset))
}

// OwedAmount returns what customer owes in asset from reversed deposits.
func OwedAmount(l *ledger.Ledger, customer ledger.OwnerID, asset ledger.AssetID) ledger.Amount {
	a, ok := l.Account(ReceivableAccount(customer, asset))
	if !ok {
		return ledger.Amount{}
	}
	return a.Balance()
}

// repay repays what customer owes in asset from their available balance,
// as far as it goes, with a transfer of id. It returns the amount repaid.
func (s *State) repay(l *ledger.Ledger, customer ledger.OwnerID, asset ledger.AssetID, id ledger.ID, t int64) (uint64, error) {
	owed := OwedAmount(l, customer, asset)
	if owed.IsZero() {
		return 0, nil
	}
	avail := ledger.AccountKey{Owner: customer, Asset: asset, Kind: ledger.KindAvailable}
	a, ok := l.Account(avail)
	if !ok {
		return 0, nil
	}
	n := a.Available()
	if owed.Cmp(n) < 0 {
		n = owed
	}
	if n.IsZero() {
		return 0, nil
	}
	tr := ledger.Transfer{ID: id, Debit: avail, Credit: ReceivableAccount(customer, asset), Amount: n, Code: CodeOwedRepaid}
	if res := l.CreateTransfers([]ledger.Transfer{tr}, t, nil); len(res) > 0 && !res[0].Code.Succeeded() {
		return 0, res[0].Code
	}
	return saturate(n), nil
}

// RepayOwed repays what customer owes in asset from their available
// balance, as far as it goes, with a transfer of id (unique per repayment).
// It returns the amount repaid; zero if nothing is owed or available.
func (s *State) RepayOwed(l *ledger.Ledger, customer ledger.OwnerID, asset ledger.AssetID, id ledger.ID, t int64) (uint64, error) {
	if !l.HasCustomer(customer) {
		return 0, ErrCustomerUnknown
	}
	if _, ok := l.Asset(asset); !ok {
		return 0, ErrAssetUnknown
	}
	return s.repay(l, customer, asset, id, t)
}

// ErrNothingOwed reports a write-off of a customer who owes nothing.
var ErrNothingOwed = errors.New("custody: the customer owes nothing in the asset")

// WriteOffOwed writes off everything customer owes in asset to the house
// equity account of equity, with a transfer of id. It returns the amount.
func (s *State) WriteOffOwed(l *ledger.Ledger, customer ledger.OwnerID, asset ledger.AssetID, equity ledger.OwnerID, id ledger.ID, t int64) (uint64, error) {
	owed := OwedAmount(l, customer, asset)
	if owed.IsZero() {
		return 0, ErrNothingOwed
	}
	eq := ledger.AccountKey{Owner: equity, Asset: asset, Kind: ledger.KindEquity}
	l.CreateAccounts([]ledger.AccountKey{eq}, nil)
	tr := ledger.Transfer{ID: id, Debit: eq, Credit: ReceivableAccount(customer, asset), Amount: owed, Code: CodeOwedWrittenOff}
	if res := l.CreateTransfers([]ledger.Transfer{tr}, t, nil); len(res) > 0 && !res[0].Code.Succeeded() {
		return 0, res[0].Code
	}
	return saturate(owed), nil
}

func (s *State) assign(a Assignment) {
	k := addrKey{a.Wallet, a.Index}
	s.assigned = append(s.assigned, a)
	s.owners[k] = a.Customer
	s.byCust[a.Customer] = append(s.byCust[a.Customer], k)
}

// ReleaseDeposit releases a deposit held for review: held to available.
func (s *State) ReleaseDeposit(l *ledger.Ledger, o Outpoint, t int64) error {
	j, ok := s.depIdx[o]
	if !ok {
		return ErrDepositUnknown
	}
	d := &s.deposits[j]
	if d.State != DepositReview {
		return fmt.Errorf("%w: deposit %s is not held for review", ErrDepositExists, o)
	}
	asset := s.DepositAsset(d)
	tr := ledger.Transfer{ID: releaseID(o), Debit: ledger.AccountKey{Owner: d.Customer, Asset: asset, Kind: ledger.KindHeld},
		Credit: ledger.AccountKey{Owner: d.Customer, Asset: asset, Kind: ledger.KindAvailable}, Amount: d.Value(), Code: CodeDeposit}
	if res := l.CreateTransfers([]ledger.Transfer{tr}, t, nil); len(res) > 0 && !res[0].Code.Succeeded() {
		return res[0].Code
	}
	d.State = DepositCredited
	if !d.Final {
		s.released(j) // available now, and not final
	}
	_, err := s.repay(l, d.Customer, asset, depositLegID(o, 4), t)
	return err
}

func releaseID(o Outpoint) ledger.ID { return depositLegID(o, 2) }

func accountExists(l *ledger.Ledger, k ledger.AccountKey) bool {
	_, ok := l.Account(k)
	return ok
}

// Errors of a wallet asked for by a register_wallet request.
var (
	// ErrWalletRegistered refuses a new wallet whose id is registered.
	ErrWalletRegistered = errors.New("custody: wallet id registered")
	// ErrDescriptorRegistered refuses a new wallet whose descriptor a
	// registered wallet has.
	ErrDescriptorRegistered = errors.New("custody: descriptor registered under another wallet")
	// ErrAccountInUse refuses a new wallet whose ledger account is a
	// registered wallet's.
	ErrAccountInUse = errors.New("custody: the ledger account is another wallet's")
)

// WalletOwnerBase is the first ledger owner of the wallets registered by
// request: WalletOwner(id) is far from the house's own owners (house,
// equity, compensation, the demo's).
const WalletOwnerBase = ledger.OwnerHouseMin + 1<<32

// WalletOwner is the ledger owner of wallet id's account, as
// `kinko wallet register` chooses it.
func WalletOwner(id uint32) ledger.OwnerID { return WalletOwnerBase + ledger.OwnerID(id) }

// CheckNew tells whether w can be registered as a new wallet: what
// RegisterWallet checks, and that neither its id, its descriptor nor its
// ledger account is another wallet's, and that it starts at index 0. It
// changes nothing.
func (s *State) CheckNew(l *ledger.Ledger, w Wallet) error {
	switch {
	case w.ID == 0:
		return ErrWalletUnknown
	case w.Kind < ColdCustomer || w.Kind > HotHouse:
		return ErrWalletKind
	case w.Descriptor == "" || len(w.Descriptor) > MaxDescriptor:
		return ErrDescriptorEmpty
	case w.Owner < ledger.OwnerHouseMin:
		return ErrOwnerInvalid
	case w.NextIndex != 0 || w.NextChange != 0:
		return fmt.Errorf("%w: a new wallet starts at index 0", ErrWalletKind)
	}
	if _, ok := l.Asset(w.Asset); !ok {
		return ErrAssetUnknown
	}
	if t, ok := s.Token(w.Asset); ok {
		return fmt.Errorf("%w: asset %d is a token of %s on chain %d: its deposits go to the chain's Safe wallets", ErrTokenAsset, t.Asset, t.Contract, t.ChainID)
	}
	if err := checkDescriptor(w.Descriptor); err != nil {
		return err
	}
	if _, ok := s.walletIdx[w.ID]; ok {
		return fmt.Errorf("%w: %d", ErrWalletRegistered, w.ID)
	}
	for _, o := range s.wallets {
		if o.Descriptor == w.Descriptor {
			return fmt.Errorf("%w: wallet %d", ErrDescriptorRegistered, o.ID)
		}
		if o.Account() == w.Account() {
			return fmt.Errorf("%w: wallet %d's", ErrAccountInUse, o.ID)
		}
	}
	return nil
}
