// Package ledger is kinko's book of record: a double-entry ledger after
// TigerBeetle's model, held in memory and changed only by the core's
// deterministic apply.
//
// Accounts are named by (owner, asset, kind). The kinds keep customer
// liabilities (available, held) apart from the house's own accounts (自己口)
// and from wallet accounts, which stand for the assets we hold (a cold or hot
// wallet, a bank account). Segregation and reserves are therefore queries.
//
// Transfers move an Amount from a debit account to a credit account of the
// same asset. A transfer may be pending (a hold), later posted, in whole or in
// part, or voided. Transfers in a batch may be linked: a chain succeeds or
// fails as one.
//
// INVARIANT: for every asset, the sum over its accounts of credits minus
// debits is zero, both for posted and for pending amounts.
// INVARIANT: customer and house accounts never owe more than they hold:
// debits posted + debits pending <= credits posted; wallet and receivable
// accounts the mirror image.
// INVARIANT: an account's pending amounts equal the sum of the open pending
// transfers on it, and a posted or voided transfer never changes again.
//
// Nothing in this package reads a clock, draws randomness, starts a goroutine
// or does I/O: time comes in with each command.
package ledger

import "slices"

// AssetID names an asset in the registry.
type AssetID uint32

// AssetClass says whether an asset lives on a chain or in a bank.
type AssetClass uint8

// Asset classes.
const (
	ClassChain AssetClass = 1
	ClassFiat  AssetClass = 2
)

// Asset is a registry entry: code such as BTC, XEM or JPY, and the number of
// decimals of its base unit (8 for BTC's satoshi, 18 for wei, 0 for yen).
type Asset struct {
	ID       AssetID
	Code     string
	Decimals uint8
	Class    AssetClass
}

// MaxAssetCode bounds an asset code's length.
const MaxAssetCode = 10

// MaxDecimals bounds an asset's decimals.
const MaxDecimals = 30

// OwnerID names who an account belongs to: a customer, the house, or a
// wallet. Customer ids are registered; owners at or above OwnerHouseMin are
// the exchange's own (house, wallets, equity) and can never be customers, so
// a customer's account and a house account can never share an owner.
type OwnerID uint64

// OwnerHouseMin is the first owner id reserved for the exchange itself.
const OwnerHouseMin OwnerID = 1 << 63

// Well-known owners of the exchange's own accounts.
const (
	// OwnerHouse owns the house (自己口) accounts.
	OwnerHouse = OwnerHouseMin + 1
	// OwnerEquity owns the equity accounts: opening balances, losses and
	// write-offs.
	OwnerEquity = OwnerHouseMin + 2
)

// Kind separates what an account stands for.
type Kind uint8

// Account kinds.
const (
	// KindAvailable is a customer's liability account: what we owe the
	// customer and the customer may use.
	KindAvailable Kind = 1
	// KindHeld is a customer's liability account for amounts set aside
	// (orders, withdrawals in flight).
	KindHeld Kind = 2
	// KindHouse is a house (自己口) account: the exchange's own holding.
	KindHouse Kind = 3
	// KindWallet is an asset-side account: coins in one of our wallets or
	// yen in one of our bank accounts. Debit-normal.
	KindWallet Kind = 4
	// KindEquity is the house's equity and loss account: opening balances
	// and write-offs. Unconstrained.
	KindEquity Kind = 5
	// KindReceivable is what a customer owes the exchange: a deposit
	// reversed after the customer had traded it away. It belongs to the
	// customer but is asset-side (debit-normal, never below zero), so an
	// amount owed is never a negative liability.
	KindReceivable Kind = 6
	kindMax             = KindReceivable
)

var kindNames = [...]string{"", "available", "held", "house", "wallet", "equity", "receivable"}

// String returns the kind's name.
func (k Kind) String() string {
	if k >= 1 && k <= kindMax {
		return kindNames[k]
	}
	return "invalid"
}

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, bool) {
	for k := KindAvailable; k <= kindMax; k++ {
		if kindNames[k] == s {
			return k, true
		}
	}
	return 0, false
}

// IsCustomer reports whether accounts of kind k are customer liabilities.
func (k Kind) IsCustomer() bool { return k == KindAvailable || k == KindHeld }

// CustomerOwned reports whether accounts of kind k belong to a registered
// customer: the liabilities and what the customer owes.
func (k Kind) CustomerOwned() bool { return k.IsCustomer() || k == KindReceivable }

// debitNormal reports kinds whose credits may never exceed their debits.
func (k Kind) debitNormal() bool { return k == KindWallet || k == KindReceivable }

// creditNormal reports kinds whose debits may never exceed their credits.
func (k Kind) creditNormal() bool { return k == KindAvailable || k == KindHeld || k == KindHouse }

// AccountKey names an account: one per (owner, asset, kind).
type AccountKey struct {
	Owner OwnerID
	Asset AssetID
	Kind  Kind
}

// packed returns the key as a 16-byte map key without padding, so the map
// hashes it as plain memory.
func (k AccountKey) packed() acctKey {
	return acctKey{owner: uint64(k.Owner), rest: uint64(k.Asset)<<8 | uint64(k.Kind)}
}

type acctKey struct{ owner, rest uint64 }

func (p acctKey) key() AccountKey {
	return AccountKey{Owner: OwnerID(p.owner), Asset: AssetID(p.rest >> 8), Kind: Kind(p.rest)}
}

// Account is an account's balances. For credit-normal kinds the balance is
// CreditsPosted - DebitsPosted, of which DebitsPending is held back.
type Account struct {
	Key            AccountKey
	DebitsPending  Amount
	DebitsPosted   Amount
	CreditsPending Amount
	CreditsPosted  Amount
}

// Balance returns the posted balance on the account's normal side.
func (a *Account) Balance() Amount {
	if a.Key.Kind.debitNormal() {
		v, _ := a.DebitsPosted.Sub(a.CreditsPosted)
		return v
	}
	v, _ := a.CreditsPosted.Sub(a.DebitsPosted)
	return v
}

// SignedBalance returns the posted balance on the account's normal side,
// with its sign: below zero when the other side is larger (a house account
// that paid out more than it took in).
func (a *Account) SignedBalance() Signed {
	pos, neg := a.CreditsPosted, a.DebitsPosted
	if a.Key.Kind.debitNormal() {
		pos, neg = neg, pos
	}
	if pos.Cmp(neg) >= 0 {
		v, _ := pos.Sub(neg)
		return Signed{Abs: v}
	}
	v, _ := neg.Sub(pos)
	return Signed{Neg: true, Abs: v}
}

// Available returns what the account may still give: the posted balance
// less what pending transfers hold.
func (a *Account) Available() Amount {
	b := a.Balance()
	held := a.DebitsPending
	if a.Key.Kind.debitNormal() {
		held = a.CreditsPending
	}
	v, _ := b.Sub(held)
	return v
}

// ID is a 128-bit event id chosen by the submitter, so that a retry can be
// recognised.
type ID struct{ Hi, Lo uint64 }

// IsZero reports whether id is zero.
func (id ID) IsZero() bool { return id.Hi == 0 && id.Lo == 0 }

// TransferFlags modify a transfer.
type TransferFlags uint16

// Transfer flags.
const (
	// FlagLinked links this transfer to the next in the batch: all of a
	// chain succeed or none does.
	FlagLinked TransferFlags = 1 << iota
	// FlagPending makes the transfer a hold, to be posted or voided later.
	FlagPending
	// FlagPostPending posts the pending transfer named by PendingID, in
	// whole (Amount zero) or in part; the rest is released.
	FlagPostPending
	// FlagVoidPending voids the pending transfer named by PendingID.
	FlagVoidPending
	flagsKnown = FlagLinked | FlagPending | FlagPostPending | FlagVoidPending
)

// Transfer is one movement of value, as submitted.
type Transfer struct {
	ID        ID
	Debit     AccountKey
	Credit    AccountKey
	Amount    Amount
	PendingID ID
	Ref       uint64 // the submitter's reference: a withdrawal, order or plan
	Code      uint16 // why: deposit, withdrawal, trade, fee, compensation ...
	Flags     TransferFlags
}

// TransferState is where a transfer stands.
type TransferState uint8

// Transfer states.
const (
	StatePosted  TransferState = 1
	StatePending TransferState = 2
	// StatePendingPosted and StatePendingVoided are final: the transfer
	// never changes again.
	StatePendingPosted TransferState = 3
	StatePendingVoided TransferState = 4
)

var stateNames = [...]string{"", "posted", "pending", "pending_posted", "pending_voided"}

// String returns the state's name.
func (s TransferState) String() string {
	if int(s) < len(stateNames) && s != 0 {
		return stateNames[s]
	}
	return "invalid"
}

// TransferRecord is a transfer as the ledger keeps it.
type TransferRecord struct {
	Transfer
	Time  int64 // unix nanoseconds of the journal entry that applied it
	State TransferState
	// Posted is, for a pending transfer that was posted, the amount posted.
	Posted Amount
}

// Customer is a customer in the ledger's registry. The people subsystem
// keeps the rest of what is known of a customer.
type Customer struct {
	ID OwnerID
}

// Ledger is the ledger's state. The zero value is not usable; use New.
type Ledger struct {
	assets      []Asset
	assetIndex  map[AssetID]int32
	assetCodes  map[string]AssetID
	customers   []OwnerID
	customerIdx ownerTable // positions in customers
	accounts    []Account
	accountIdx  posTable
	hints       batchHints // of the batch being applied (hint.go)
	transfers   chunked[TransferRecord]
	transferIdx transferIndex
	undo        undoLog
	// track and changed are the changed customer accounts
	// (DrainChanges): not state, never encoded.
	track   bool
	changed []uint32
}

// New returns an empty ledger.
func New() *Ledger {
	return &Ledger{
		assetIndex: make(map[AssetID]int32),
		assetCodes: make(map[string]AssetID),
	}
}

// Reserve sizes the ledger's tables for the given counts, so that a large
// load does not grow them step by step.
func (l *Ledger) Reserve(accounts, transfers int) {
	if accounts > len(l.accounts) {
		na := make([]Account, len(l.accounts), accounts)
		copy(na, l.accounts)
		l.accounts = na
		if 2*accounts > len(l.accountIdx.slots) {
			l.accountIdx.resize(accounts)
		}
	}
	l.transfers.reserve(transfers)
	l.transferIdx.reserve(transfers)
	if 2*transfers > len(l.transferIdx.other.slots) {
		// Room for out-of-order ids too, up to a tenth of the rest.
		l.transferIdx.other.resize(transfers / 10)
	}
}

// Asset returns the asset with id.
func (l *Ledger) Asset(id AssetID) (Asset, bool) {
	i, ok := l.assetIndex[id]
	if !ok {
		return Asset{}, false
	}
	return l.assets[i], true
}

// AssetByCode returns the asset with the given code.
func (l *Ledger) AssetByCode(code string) (Asset, bool) {
	id, ok := l.assetCodes[code]
	if !ok {
		return Asset{}, false
	}
	return l.Asset(id)
}

// Assets returns the registry in the order assets were created.
func (l *Ledger) Assets() []Asset { return append([]Asset(nil), l.assets...) }

// HasCustomer reports whether id is a registered customer.
func (l *Ledger) HasCustomer(id OwnerID) bool {
	_, ok := l.customerIdx.find(id, l.customers)
	return ok
}

// Customers returns the registered customers in ascending order.
func (l *Ledger) Customers() []OwnerID {
	out := slices.Clone(l.customers)
	slices.Sort(out)
	return out
}

// CustomerCount returns the number of registered customers.
func (l *Ledger) CustomerCount() int { return len(l.customers) }

// Account returns the account named by key.
func (l *Ledger) Account(key AccountKey) (Account, bool) {
	i, ok := l.accountIndex(key.packed())
	if !ok {
		return Account{}, false
	}
	return l.accounts[i], true
}

// AccountCount returns the number of accounts.
func (l *Ledger) AccountCount() int { return len(l.accounts) }

// Accounts calls fn for each account in creation order until fn returns
// false. fn must not keep the pointer.
func (l *Ledger) Accounts(fn func(*Account) bool) {
	for i := range l.accounts {
		if !fn(&l.accounts[i]) {
			return
		}
	}
}

// Transfer returns the transfer with id.
func (l *Ledger) Transfer(id ID) (TransferRecord, bool) {
	i, ok := l.transferIndex(id)
	if !ok {
		return TransferRecord{}, false
	}
	return *l.transfers.at(int(i)), true
}

// TransferCount returns the number of transfers in effect.
func (l *Ledger) TransferCount() int { return l.transfers.len() }

// Transfers calls fn for each transfer in the order applied, from index
// start, until fn returns false. fn must not keep the pointer.
func (l *Ledger) Transfers(start int, fn func(int, *TransferRecord) bool) {
	for i := start; i < l.transfers.len(); i++ {
		if !fn(i, l.transfers.at(i)) {
			return
		}
	}
}
