// Package book derives the deposit addresses of kinko's Safe wallets
// (internal/ethwallet descriptors) and finds which wallet and index an
// address is: the counterfactual CREATE2 address of the Safe proxy whose
// setup is the descriptor's owners and threshold, salt nonce the index
// (internal/chain/eth/safe Predictor.AddressIndex). It needs the Safe
// contracts' artifacts (the proxy's creation code), never a key or the
// chain.
package book

import (
	"errors"
	"fmt"
	"math/big"
	"sync"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/chain/eth/safe"
	"kinko/internal/ethwallet"
)

// MaxAddresses bounds the addresses one Book holds (as the chain
// interface's watch set does).
const MaxAddresses = 1 << 20

// ErrFull reports a Book at MaxAddresses.
var ErrFull = fmt.Errorf("book: more than %d addresses", MaxAddresses)

// ErrConflict reports a wallet added again with another descriptor.
var ErrConflict = errors.New("book: wallet added with another descriptor")

// Place is where an address belongs: a wallet and its receive index.
type Place struct {
	Wallet uint32
	Index  uint32
}

type entry struct {
	desc ethwallet.Descriptor
	pred *safe.Predictor
	next uint32 // indexes below it are in the book
}

// Book maps deposit addresses to their wallet and index. Safe for
// concurrent use.
type Book struct {
	art *safe.Artifacts

	mu      sync.RWMutex
	wallets map[uint32]*entry
	places  map[common.Address]Place
}

// New returns an empty book deriving with the installed artifacts art.
func New(art *safe.Artifacts) *Book {
	return &Book{art: art, wallets: map[uint32]*entry{}, places: map[common.Address]Place{}}
}

// Predictor returns the predictor of d's addresses: a deployment of d's
// pinned contracts on d's chain, and d's setup.
func Predictor(art *safe.Artifacts, d ethwallet.Descriptor) (*safe.Predictor, error) {
	dep := safe.NewDeployment(art, safe.L2, new(big.Int).SetUint64(d.ChainID), safe.Addresses{
		Singleton: common.Address(d.Singleton), ProxyFactory: common.Address(d.Factory), FallbackHandler: common.Address(d.Fallback)})
	owners := make([]common.Address, len(d.Owners))
	for i, o := range d.Owners {
		owners[i] = common.Address(o)
	}
	init, err := dep.Initializer(safe.Config{Owners: owners, Threshold: d.Threshold})
	if err != nil {
		return nil, fmt.Errorf("book: %w", err)
	}
	return dep.Predictor(init), nil
}

// Derive returns the receive address of index of the wallet d describes.
func Derive(art *safe.Artifacts, d ethwallet.Descriptor, index uint32) (common.Address, error) {
	p, err := Predictor(art, d)
	if err != nil {
		return common.Address{}, err
	}
	return p.AddressIndex(uint64(index)), nil
}

// Add puts the addresses of wallet's indexes below upTo in the book (those
// already there are kept). The same wallet with another descriptor is
// ErrConflict.
func (b *Book) Add(wallet uint32, d ethwallet.Descriptor, upTo uint32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.wallets[wallet]
	if ok && e.desc.String() != d.String() {
		return fmt.Errorf("%w: %d", ErrConflict, wallet)
	}
	if !ok {
		p, err := Predictor(b.art, d)
		if err != nil {
			return err
		}
		e = &entry{desc: d, pred: p}
		b.wallets[wallet] = e
	}
	if upTo <= e.next {
		return nil
	}
	if len(b.places)+int(upTo-e.next) > MaxAddresses {
		return ErrFull
	}
	for i := e.next; i < upTo; i++ {
		b.places[e.pred.AddressIndex(uint64(i))] = Place{Wallet: wallet, Index: i}
	}
	e.next = upTo
	return nil
}

// Lookup returns the wallet and index of addr.
func (b *Book) Lookup(addr common.Address) (Place, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	p, ok := b.places[addr]
	return p, ok
}

// Address returns the address of wallet's index, if the book holds it.
func (b *Book) Address(wallet, index uint32) (common.Address, bool) {
	b.mu.Lock() // a Predictor is not safe for concurrent use
	defer b.mu.Unlock()
	e, ok := b.wallets[wallet]
	if !ok || index >= e.next {
		return common.Address{}, false
	}
	return e.pred.AddressIndex(uint64(index)), true
}

// Next returns how many of wallet's indexes the book holds.
func (b *Book) Next(wallet uint32) uint32 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if e, ok := b.wallets[wallet]; ok {
		return e.next
	}
	return 0
}

// Len returns how many addresses the book holds.
func (b *Book) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.places)
}
