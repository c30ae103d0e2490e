// Package custody is the journaled state of kinko's wallets: the wallet
// registry (each a multisig output descriptor of a kind), the deposit
// addresses handed to customers, and the deposits credited from the chain.
// Like the ledger it changes only through the core's deterministic apply:
// descriptors are parsed and addresses derived outside, by the callers.
package custody

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"

	"kinko/internal/ethwallet"
	"kinko/internal/ledger"
)

// WalletKind says whose coins a wallet holds and how close to the network
// its keys are. Customer (預かり口) and house (自己口) wallets are separate
// key sets.
type WalletKind uint8

// Wallet kinds.
const (
	ColdCustomer WalletKind = 1
	HotCustomer  WalletKind = 2
	ColdHouse    WalletKind = 3
	HotHouse     WalletKind = 4
)

var walletKindNames = [...]string{"", "cold-customer", "hot-customer", "cold-house", "hot-house"}

// String returns the kind's name.
func (k WalletKind) String() string {
	if k >= ColdCustomer && k <= HotHouse {
		return walletKindNames[k]
	}
	return "invalid"
}

// ParseWalletKind returns the kind named s.
func ParseWalletKind(s string) (WalletKind, bool) {
	for k := ColdCustomer; k <= HotHouse; k++ {
		if walletKindNames[k] == s {
			return k, true
		}
	}
	return 0, false
}

// Customer reports whether the wallet holds customers' coins.
func (k WalletKind) Customer() bool { return k == ColdCustomer || k == HotCustomer }

// Hot reports whether the wallet has keys online.
func (k WalletKind) Hot() bool { return k == HotCustomer || k == HotHouse }

// Wallet is a registered wallet. Its ledger account is (Owner, Asset,
// KindWallet).
type Wallet struct {
	ID    uint32
	Kind  WalletKind
	Asset ledger.AssetID
	// Descriptor is the wallet's descriptor: for Bitcoin the output
	// descriptor with its checksum; for Ethereum a Safe descriptor
	// (internal/ethwallet), parsed strictly at registration.
	Descriptor string
	Owner      ledger.OwnerID
	// NextIndex is the next receive index to hand out; NextChange the next
	// change index.
	NextIndex  uint32
	NextChange uint32
}

// Safe reports whether the wallet is an Ethereum Safe (its descriptor an
// ethwallet one): an account-model wallet, whose deposits are balances at
// addresses, not outputs.
func (w *Wallet) Safe() bool { return ethwallet.IsSafe(w.Descriptor) }

// Account returns the wallet's ledger account.
func (w *Wallet) Account() ledger.AccountKey {
	return ledger.AccountKey{Owner: w.Owner, Asset: w.Asset, Kind: ledger.KindWallet}
}

// Outpoint names a transaction output; for an Ethereum deposit, the
// transaction's hash and the transfer's index in it (EtherIndex for the
// transaction's own value, InternalIndex for Ether a contract sent in an
// internal call, TokenIndex for a token's Transfer log), so that
// (transaction hash, index) credits once.
type Outpoint struct {
	TxID [32]byte
	Vout uint32
}

// String formats the outpoint as txid:vout, the txid in the usual
// byte-reversed hex.
func (o Outpoint) String() string {
	var rev [32]byte
	for i := range rev {
		rev[i] = o.TxID[31-i]
	}
	return fmt.Sprintf("%x:%d", rev, o.Vout)
}

// EtherString formats an Ethereum deposit's id: the transaction hash in
// its usual 0x form (not byte-reversed) and the index.
func (o Outpoint) EtherString() string {
	return "0x" + hex.EncodeToString(o.TxID[:]) + ":" + strconv.FormatUint(uint64(o.Vout), 10)
}

// EtherIndex is the Vout of an Ethereum deposit made by a transaction's
// own value (a top-level Ether transfer).
const EtherIndex = 0

// TokenIndex returns the Vout of an Ethereum deposit made by the ERC-20
// Transfer log at logIndex in its block: above EtherIndex and, for a log
// index below 2^31-1 (the watcher refuses others; a block's gas holds far
// fewer logs), below every InternalIndex, so none of them meet in one
// transaction.
func TokenIndex(logIndex uint32) uint32 { return logIndex + 1 }

// InternalIndex returns the Vout of an Ethereum deposit made by an
// internal call with value, the n-th nested frame (1 ≤ n < 2^31) of its
// transaction's call trace: n with the high bit set (chain.InternalIndex;
// custody does not import chain), above every TokenIndex.
func InternalIndex(n uint32) uint32 { return 1<<31 | n }

// DepositState is where a credited deposit stands.
type DepositState uint8

// Deposit states.
const (
	DepositCredited DepositState = 1
	// DepositReversed: its block left the best chain after it was credited.
	DepositReversed DepositState = 2
	// DepositReview: it came from an address on the AML deny list; it is
	// credited to the customer's held account until an operator releases
	// it.
	DepositReview DepositState = 3
)

// Deposit is a deposit seen on chain, credited to a customer.
type Deposit struct {
	Outpoint Outpoint
	Wallet   uint32
	Index    uint32
	Customer ledger.OwnerID
	// Amount is the low 64 bits of the amount in base units, AmountHi
	// the high 64 (wei beyond 18.4 ETH): Value is the whole. Bitcoin's
	// are always below 2^64.
	Amount   uint64
	AmountHi uint64 `json:",omitempty"`
	// Asset is the token asset a token deposit credited (a Token bound
	// on the chain of the wallet's Safe); 0 for the wallet's own asset.
	Asset     ledger.AssetID `json:",omitempty"`
	BlockHash [32]byte
	Height    int32
	State     DepositState
	Time      int64
	// FinalAt is the chain height at which the deposit becomes final and
	// may be withdrawn: its height plus the depth its amount needs (the
	// withdrawal rules' finality tiers), less one. Final is set when the
	// asset's journaled chain tip reaches it.
	FinalAt int32 `json:",omitempty"`
	Final   bool  `json:",omitempty"`
}

// Value returns the deposit's amount in base units, all 128 bits.
func (d *Deposit) Value() ledger.Amount { return ledger.Amount{Hi: d.AmountHi, Lo: d.Amount} }

// Confirmations returns the deposit's confirmations at chain tip, counting
// its own block; zero if tip is below it.
func (d *Deposit) Confirmations(tip int32) int32 { return max(0, tip-d.Height+1) }

// Depth returns the confirmations the deposit needs to be final.
func (d *Deposit) Depth() int32 { return d.FinalAt - d.Height + 1 }

// addrKey is a deposit address: a receive index of a wallet.
type addrKey struct {
	wallet uint32
	index  uint32
}

// Assignment is a deposit address handed to a customer.
type Assignment struct {
	Customer ledger.OwnerID
	Wallet   uint32
	Index    uint32
}

// State is the custody state.
//
// INVARIANT: every handed-out address belongs to exactly one customer and
// is below its wallet's NextIndex; every deposit credits the customer who
// owns its address, once per outpoint.
type State struct {
	wallets   []Wallet
	walletIdx map[uint32]int
	assigned  []Assignment // in the order handed out
	owners    map[addrKey]ledger.OwnerID
	byCust    map[ledger.OwnerID][]addrKey
	deposits  []Deposit
	depIdx    map[Outpoint]int
	// used holds the addresses a deposit was credited to (derived from
	// deposits): an address not in it is unused, and handed again to its
	// customer rather than a new one (AssignAddress).
	used map[addrKey]bool

	utxos      []UTXO
	utxoIdx    map[Outpoint]int
	ceremonies []Ceremony
	cerIdx     map[string]int
	cerTx      map[[32]byte]string
	// tokens are the listed ERC-20 tokens, in registration order.
	tokens []Token

	// fin tracks the deposits not yet final; derived from deposits.
	fin finality
}

// New returns an empty custody state.
func New() *State {
	return &State{
		walletIdx: map[uint32]int{},
		owners:    map[addrKey]ledger.OwnerID{},
		byCust:    map[ledger.OwnerID][]addrKey{},
		depIdx:    map[Outpoint]int{},
		used:      map[addrKey]bool{},
		utxoIdx:   map[Outpoint]int{},
		cerIdx:    map[string]int{},
		cerTx:     map[[32]byte]string{},
		fin:       newFinality(),
	}
}

// Wallets returns the registered wallets in registration order.
func (s *State) Wallets() []Wallet { return append([]Wallet(nil), s.wallets...) }

// Wallet returns the wallet with id.
func (s *State) Wallet(id uint32) (Wallet, bool) {
	i, ok := s.walletIdx[id]
	if !ok {
		return Wallet{}, false
	}
	return s.wallets[i], true
}

// AddressOwner returns the customer a deposit address was handed to.
func (s *State) AddressOwner(wallet, index uint32) (ledger.OwnerID, bool) {
	c, ok := s.owners[addrKey{wallet, index}]
	return c, ok
}

// Addresses returns the (wallet, index) pairs handed to customer, oldest
// first.
func (s *State) Addresses(customer ledger.OwnerID) [][2]uint32 {
	var out [][2]uint32
	for _, k := range s.byCust[customer] {
		out = append(out, [2]uint32{k.wallet, k.index})
	}
	return out
}

// Used reports whether a deposit was ever credited to the address.
func (s *State) Used(wallet, index uint32) bool { return s.used[addrKey{wallet, index}] }

// GapReport describes the unused receive addresses of a wallet, as a
// watch-only wallet restored from the descriptor meets them: it derives a
// gap limit (Core and Sparrow 20 by default, Core's keypool 1000) past the
// last used index and finds nothing beyond a longer run of unused ones.
type GapReport struct {
	Wallet    uint32
	NextIndex uint32
	// LastUsed is the highest index a deposit was credited to; -1 none.
	LastUsed int64
	// Trailing is the unused indexes after LastUsed, below NextIndex.
	Trailing uint32
	// Longest is the longest run of consecutive unused indexes below
	// NextIndex, and LongestFrom where it starts.
	Longest, LongestFrom uint32
	// Used counts the indexes a deposit was credited to.
	Used uint32
}

// Gap reports the gaps of the wallet's receive addresses (outside apply:
// it walks every index handed out).
func (s *State) Gap(wallet uint32) (GapReport, bool) {
	w, ok := s.Wallet(wallet)
	if !ok {
		return GapReport{}, false
	}
	r := GapReport{Wallet: wallet, NextIndex: w.NextIndex, LastUsed: -1}
	var run, from uint32
	for i := uint32(0); i < w.NextIndex; i++ {
		if s.used[addrKey{wallet, i}] {
			r.Used++
			r.LastUsed = int64(i)
			run = 0
			continue
		}
		if run == 0 {
			from = i
		}
		run++
		if run > r.Longest {
			r.Longest, r.LongestFrom = run, from
		}
	}
	r.Trailing = uint32(int64(w.NextIndex) - 1 - r.LastUsed)
	return r, true
}

// Deposit returns the deposit credited from outpoint.
func (s *State) Deposit(o Outpoint) (Deposit, bool) {
	i, ok := s.depIdx[o]
	if !ok {
		return Deposit{}, false
	}
	return s.deposits[i], true
}

// Deposits calls fn for each deposit in the order credited.
func (s *State) Deposits(fn func(*Deposit) bool) {
	for i := range s.deposits {
		if !fn(&s.deposits[i]) {
			return
		}
	}
}

// DepositTransferID returns the ledger transfer id of the credit of o. The
// top byte names the kind of transfer so ids of different subsystems never
// meet.
func DepositTransferID(o Outpoint, reversal bool) ledger.ID {
	if reversal {
		return depositLegID(o, 1)
	}
	return depositLegID(o, 0)
}

// depositLegID numbers a deposit's transfers: 0 the credit, 1 its
// reversal (and, with the low bit flipped, what the customer owes), 2 its
// release from review, 3 and 4 the repayment of what the customer owed
// from the credit or the release.
func depositLegID(o Outpoint, leg byte) ledger.ID {
	var b [37]byte
	copy(b[:], o.TxID[:])
	binary.BigEndian.PutUint32(b[32:], o.Vout)
	b[36] = leg
	h := sha256.Sum256(b[:])
	ns := uint64(0xD1) + uint64(leg)
	return ledger.ID{Hi: ns<<56 | binary.BigEndian.Uint64(h[:8])>>8, Lo: binary.BigEndian.Uint64(h[8:16])}
}

// Transfer codes of custody's ledger transfers.
const (
	CodeDeposit         = 10
	CodeDepositReversal = 11
	// CodeDepositLoss charged a reversal's shortfall to house equity; a
	// shortfall is now owed by the customer (CodeDepositOwed). Kept for the
	// journals that hold it.
	CodeDepositLoss = 12
	// CodeDepositOwed records a reversal's shortfall as owed by the
	// customer (their receivable account).
	CodeDepositOwed = 13
	// CodeOwedRepaid repays what a customer owes from their available
	// balance.
	CodeOwedRepaid = 14
	// CodeOwedWrittenOff writes off what a customer owes to house equity,
	// approved by two operators.
	CodeOwedWrittenOff = 15
)

// walletSorted returns wallet ids in ascending order, for deterministic
// iteration where a map would otherwise decide the order.
func (s *State) walletSorted() []uint32 {
	ids := make([]uint32, 0, len(s.wallets))
	for _, w := range s.wallets {
		ids = append(ids, w.ID)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}
