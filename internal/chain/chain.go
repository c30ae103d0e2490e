// Package chain is what kinko needs from a blockchain, in terms that hold
// for Bitcoin's UTXO model and Ethereum's account model alike: the best
// block, the transfers of a block that touch watched addresses, pending
// transfers, balances of watched addresses at a block, broadcast of a
// signed transaction and a fee estimate. A Backend says it for one chain
// (internal/chain/btcchain over internal/chain/btc, internal/chain/ethchain
// over internal/chain/eth); a Notifier, written once here on top of any
// Backend, follows the best chain by parent hash, tells of connected and
// disconnected blocks and pending transfers, and counts a transaction's
// confirmations, reporting a transaction that leaves the best chain (a
// negative confirmation, as lnd's chainntnfs does). One conformance suite,
// internal/chain/chaintest, runs against every backend on a real node.
//
// Amounts are ledger.Amount: 128-bit unsigned integers of base units
// (satoshi, wei), never floats. Block and transaction ids are 32 bytes
// with the chain's own string form.
package chain

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"

	"kinko/internal/ledger"
)

// Amount is a quantity in the chain's base units (satoshi, wei).
type Amount = ledger.Amount

// ErrAmountRange reports a chain amount outside 0 ≤ v < 2^128.
var ErrAmountRange = errors.New("chain: amount outside 0 to 2^128-1 base units")

// AmountFromBig converts v to an Amount, refusing a negative one or one of
// more than 128 bits.
func AmountFromBig(v *big.Int) (Amount, error) {
	if v == nil || v.Sign() < 0 || v.BitLen() > 128 {
		return Amount{}, fmt.Errorf("%w: %v", ErrAmountRange, v)
	}
	lo := new(big.Int).And(v, new(big.Int).SetUint64(^uint64(0))).Uint64()
	return Amount{Hi: new(big.Int).Rsh(v, 64).Uint64(), Lo: lo}, nil
}

// Family is a chain family: how its ids and addresses are written.
type Family uint8

const (
	// Bitcoin ids are shown byte-reversed in hex, as bitcoind does;
	// addresses are base58 or bech32.
	Bitcoin Family = iota + 1
	// Ethereum ids are 0x and hex in byte order; addresses are EIP-55.
	Ethereum
)

// String names the family.
func (f Family) String() string {
	switch f {
	case Bitcoin:
		return "bitcoin"
	case Ethereum:
		return "ethereum"
	}
	return fmt.Sprintf("family(%d)", uint8(f))
}

// ID is a block hash or transaction id: 32 bytes in the chain's internal
// order (for Bitcoin, chainhash's order) and the family that says how it
// is written. IDs are comparable and can key a map.
type ID struct {
	family Family
	b      [32]byte
}

// NewID returns the id of family f with bytes b.
func NewID(f Family, b [32]byte) ID { return ID{family: f, b: b} }

// Bytes returns the id's bytes in the chain's internal order.
func (id ID) Bytes() [32]byte { return id.b }

// Family returns the id's chain family.
func (id ID) Family() Family { return id.family }

// IsZero reports whether id is the zero value.
func (id ID) IsZero() bool { return id == ID{} }

// String writes the id as its chain does.
func (id ID) String() string {
	switch id.family {
	case Bitcoin:
		var r [32]byte
		for i := range id.b {
			r[i] = id.b[31-i]
		}
		return hex.EncodeToString(r[:])
	case Ethereum:
		return "0x" + hex.EncodeToString(id.b[:])
	}
	return hex.EncodeToString(id.b[:])
}

// BlockRef names a block: its height and hash.
type BlockRef struct {
	Height uint64
	Hash   ID
}

// Transfer is a movement of value that touches a watched address: a
// Bitcoin output paying one (From empty: the inputs are not resolved), an
// Ethereum transaction's value from or to one, Ether a contract sends to
// one in an internal call of a successful transaction (a call trace's
// CALL, CREATE, CREATE2 or SELFDESTRUCT frame with value, none of its
// frames up to the transaction's reverted; read only by a backend that
// reads traces), or an ERC-20 Transfer log of a listed token from or to
// one. (Tx, Asset, Index) is unique: the output index for Bitcoin; for
// Ether 0 for the transaction's own value and InternalIndex(n) for the
// internal call that is the n-th nested frame of its trace (n ≥ 1, the
// frames numbered depth first in call order); the log's index in its
// block for a token.
type Transfer struct {
	Tx     ID
	Asset  string // "" for the chain's coin; the token's address for ERC-20
	Index  uint32
	From   string // canonical address; "" when not known
	To     string // canonical address
	Amount Amount
}

// InternalBase is the Index of an internal Ether transfer less its
// frame's number: the high bit, so it meets neither the transaction's own
// value (0) nor a token log's index plus one (a block cannot hold 2^31
// logs: each costs 375 gas or more).
const InternalBase = 1 << 31

// MaxInternal bounds the frame number of an internal transfer.
const MaxInternal = 1<<31 - 1

// InternalIndex returns the Index of the internal Ether transfer made by
// the n-th nested frame of its transaction's call trace (1 ≤ n ≤
// MaxInternal).
func InternalIndex(n uint32) uint32 { return InternalBase | n }

// IsInternal reports whether an Ether transfer's Index is an internal
// call's, and returns the frame's number.
func IsInternal(index uint32) (uint32, bool) {
	return index &^ InternalBase, index&InternalBase != 0 && index != InternalBase
}

// Outpoint is an output of a transaction, on a chain of outputs
// (Bitcoin): the transaction's id and the output's index.
type Outpoint struct {
	Tx    ID
	Index uint32
}

// Spend is an input of a transaction spending a watched output: the
// transaction, the input's index in it and the output it spends. Only a
// chain of outputs (Bitcoin) has them; on an account chain what leaves a
// watched address is a Transfer from it.
type Spend struct {
	Tx    ID
	Input uint32
	Prev  Outpoint
}

// Block is a block of the best chain as a Backend reads it: its place, its
// parent, every transaction id in it (for confirmations), the transfers
// touching the watched addresses and the spends of the watched outputs.
type Block struct {
	Ref       BlockRef
	Parent    ID
	TxIDs     []ID
	Transfers []Transfer
	Spends    []Spend
}

// Fee is a fee estimate: Rate base units per Unit ("sat/vB" for Bitcoin;
// "wei/gas" for Ethereum: the fee cap an EIP-1559 transaction would offer,
// twice the base fee plus the tip).
type Fee struct {
	Rate Amount
	Unit string
}

// Errors every backend returns the same way, so callers test them with
// errors.Is whatever the chain.
var (
	// ErrMalformed reports bytes that are not a transaction of the chain.
	ErrMalformed = errors.New("chain: malformed transaction")
	// ErrRejected reports a well-formed transaction the node refused
	// (invalid signature, spent inputs, nonce too low, fee too low).
	ErrRejected = errors.New("chain: transaction rejected by the node")
	// ErrBadAddress reports an address that is not one of the chain's.
	ErrBadAddress = errors.New("chain: not an address of this chain")
	// ErrUnknownAsset reports an asset the backend does not follow.
	ErrUnknownAsset = errors.New("chain: asset not followed by this backend")
	// ErrChainData reports data from the node that no valid chain has
	// (a call trace with bad hex, a frame without its address, a value of
	// 2^128 or more): the block is refused whole.
	ErrChainData = errors.New("chain: malformed chain data from the node")
	// ErrNotFound reports a block or transaction the node does not have.
	ErrNotFound = errors.New("chain: not found")
)

// Backend is one chain's node, in chain-neutral terms. Its methods are safe
// for concurrent use. A Backend reads; a Notifier follows.
type Backend interface {
	// Family is the chain family of the backend's ids and addresses.
	Family() Family
	// ParseAddress checks s and returns its canonical form, the one
	// transfers carry, or an error wrapping ErrBadAddress.
	ParseAddress(s string) (string, error)
	// Tip returns the node's best block.
	Tip(ctx context.Context) (BlockRef, error)
	// HashAt returns the hash of the best chain's block at height.
	HashAt(ctx context.Context, height uint64) (ID, error)
	// Block returns the block with hash h, with its transfers touching w.
	Block(ctx context.Context, h ID, w *Watch) (*Block, error)
	// TxBlock returns the hash of the best-chain block holding txid and
	// true, or false while it is not mined (or unknown).
	TxBlock(ctx context.Context, txid ID) (ID, bool, error)
	// PollPending returns the pending transfers touching w that the
	// backend has seen since its last call (some may repeat: callers
	// deduplicate by transfer). It is the polling path beside Subscribe.
	// Where it stands is the backend's own state: one Notifier per
	// Backend.
	PollPending(ctx context.Context, w *Watch) ([]Transfer, error)
	// Subscribe asks the node to push new blocks (onBlock, a hint to
	// poll) and pending transfers touching w (onPending). The callbacks
	// must not block for long. An error means no push: poll instead.
	Subscribe(ctx context.Context, w *Watch, onBlock func(), onPending func(Transfer)) (io.Closer, error)
	// Balance returns what addr holds of asset ("" for the coin) at the
	// block with hash at: for Bitcoin the sum of its unspent outputs, for
	// Ethereum its account balance (eth_getBalance, or the token's
	// balanceOf, at that block).
	Balance(ctx context.Context, addr, asset string, at ID) (Amount, error)
	// Broadcast sends a signed transaction and returns the id the chain
	// knows it by. Sending one the node already has (in its pool or
	// mined) returns the same id and no error; bytes that are not a
	// transaction give ErrMalformed, a refused one ErrRejected.
	Broadcast(ctx context.Context, raw []byte) (ID, error)
	// FeeEstimate returns the node's fee estimate.
	FeeEstimate(ctx context.Context) (Fee, error)
}

// PendingTx is one pending transaction as a PendingSpender tells it: its
// transfers touching the watched addresses and its spends of the watched
// outputs (of every output, with Watch.AllSpends).
type PendingTx struct {
	Tx        ID
	Transfers []Transfer
	Spends    []Spend
}

// PendingSpender is a Backend of a chain of outputs that also tells the
// pending spends of watched outputs, a transaction at a time. A Notifier
// over one polls it in place of PollPending and tells each spend in a
// Pending event (Event.Spends); the Bitcoin deposit watcher reads it
// directly, to judge each spend of ours with its transaction's others.
type PendingSpender interface {
	// PollPendingTxs is PollPending a transaction at a time: the pending
	// transactions not told before that touch w (pays a watched address or
	// spends a watched output), and the ids told before that have left the
	// pool since (mined, replaced or evicted).
	PollPendingTxs(ctx context.Context, w *Watch) (txs []PendingTx, gone []ID, err error)
	// SubscribeTxs is Subscribe a transaction at a time, each pushed
	// transaction touching w with its transfers and spends together.
	// The Closer also reports, as Connected() bool, whether the push is
	// up at the moment.
	SubscribeTxs(ctx context.Context, w *Watch, onBlock func(), onTx func(PendingTx)) (Subscription, error)
}

// Subscription is a node's push, as SubscribeTxs returns it.
type Subscription interface {
	io.Closer
	// Connected reports whether the push is up now (a dropped connection
	// is redialled; while it is down, poll).
	Connected() bool
}

// SourceReader is a Backend that can tell where a transaction's coins came
// from: the addresses the outputs its inputs spent paid (Bitcoin), for the
// AML deny list. An account chain's Transfer.From says it already.
type SourceReader interface {
	Sources(ctx context.Context, tx ID) ([]string, error)
}

// AddressSet is a set of watched addresses kept outside the Watch (a
// wallet's book of scripts, say): Has is told a canonical address.
type AddressSet interface {
	Has(canonical string) bool
}

// RawSet is an AddressSet that a backend can also ask in the chain's raw
// form of an address (Bitcoin: the output script), before it writes the
// address out: most outputs of a block pay no address of ours, and
// writing each out to look it up would cost more than the rest of the
// scan.
type RawSet interface {
	AddressSet
	HasRaw(raw []byte) bool
}

// MaxWatched bounds the addresses of one Watch.
const MaxWatched = 1 << 20

// ErrTooManyWatched reports a Watch at MaxWatched addresses.
var ErrTooManyWatched = fmt.Errorf("chain: more than %d watched addresses", MaxWatched)

// Watch is a set of watched addresses in a backend's canonical form and,
// on a chain of outputs, of watched outputs whose spends a block tells. It
// is safe for concurrent use; what is added is seen by the next block or
// pending transaction a backend reads.
type Watch struct {
	mu    sync.RWMutex
	addrs map[string]struct{}
	outs  map[Outpoint]struct{}
	sets  []AddressSet
	// all: every input is a spend to tell (AllSpends).
	all bool
}

// AddSet watches every address of s besides those added one by one.
func (w *Watch) AddSet(s AddressSet) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sets = append(w.sets, s)
}

// WatchAllSpends has a backend of a chain of outputs tell every input of a
// block or pending transaction as a spend, watched or not: for a caller
// that judges each input against its own records, so that no output of
// its can be spent unseen for want of having been added.
func (w *Watch) WatchAllSpends() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all = true
}

// HasRaw reports whether raw, the chain's raw form of an address, is in
// one of w's RawSets, and whether that decides it: false when w also has
// addresses added one by one or sets that are not RawSets, which only the
// canonical form can be checked against (Has).
func (w *Watch) HasRaw(raw []byte) (has, decided bool) {
	if w == nil {
		return false, true
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	decided = len(w.addrs) == 0
	for _, s := range w.sets {
		r, ok := s.(RawSet)
		if !ok {
			decided = false
			continue
		}
		if r.HasRaw(raw) {
			return true, true
		}
	}
	return false, decided
}

// AllSpends reports whether every input is to be told (WatchAllSpends).
func (w *Watch) AllSpends() bool {
	if w == nil {
		return false
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.all
}

// NewWatch returns an empty set.
func NewWatch() *Watch {
	return &Watch{addrs: make(map[string]struct{}), outs: make(map[Outpoint]struct{})}
}

// AddOutput watches op: a block spending it tells so (Block.Spends). The
// outputs are bounded by MaxWatched like the addresses.
func (w *Watch) AddOutput(op Outpoint) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.outs[op]; !ok && len(w.outs) >= MaxWatched {
		return ErrTooManyWatched
	}
	w.outs[op] = struct{}{}
	return nil
}

// RemoveOutput stops watching op (spent, and beyond any reorg).
func (w *Watch) RemoveOutput(op Outpoint) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.outs, op)
}

// HasOutput reports whether op is watched.
func (w *Watch) HasOutput(op Outpoint) bool {
	if w == nil {
		return false
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.all {
		return true
	}
	_, ok := w.outs[op]
	return ok
}

// Add parses addr with b and adds its canonical form.
func (w *Watch) Add(b Backend, addr string) (string, error) {
	c, err := b.ParseAddress(addr)
	if err != nil {
		return "", err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.addrs[c]; !ok && len(w.addrs) >= MaxWatched {
		return "", ErrTooManyWatched
	}
	w.addrs[c] = struct{}{}
	return c, nil
}

// Has reports whether the canonical address c is watched.
func (w *Watch) Has(c string) bool {
	if w == nil {
		return false
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if _, ok := w.addrs[c]; ok {
		return true
	}
	for _, s := range w.sets {
		if s.Has(c) {
			return true
		}
	}
	return false
}
