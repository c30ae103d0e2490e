package wallet

import (
	"crypto/sha256"
	"sync"
)

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// Book maps output scripts to (wallet, branch, index) for the addresses our
// wallets have handed out, recomputed from their descriptors. It answers the
// watcher's question "is this ours?" without trusting anything but the
// descriptors. Safe for concurrent use.
type Book struct {
	mu      sync.RWMutex
	scripts map[string]Place
}

// Place is where a script sits in a wallet.
type Place struct {
	Wallet uint32
	Branch uint32
	Index  uint32
}

// NewBook returns an empty book.
func NewBook() *Book { return &Book{scripts: map[string]Place{}} }

// Add derives and adds the scripts of wallet at branch, indexes [from, to).
func (b *Book) Add(wallet uint32, d *Descriptor, branch, from, to uint32) error {
	add := make(map[string]Place, to-from)
	for i := from; i < to; i++ {
		s, err := d.PkScript(branch, i)
		if err != nil {
			return err
		}
		add[string(s)] = Place{Wallet: wallet, Branch: branch, Index: i}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, v := range add {
		b.scripts[k] = v
	}
	return nil
}

// Find returns where script sits, if it is ours.
func (b *Book) Find(script []byte) (Place, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	p, ok := b.scripts[string(script)]
	return p, ok
}

// Lookup answers the deposit watcher: receive addresses only.
func (b *Book) Lookup(script []byte) (wallet, index uint32, ok bool) {
	p, ok := b.Find(script)
	if !ok || p.Branch != 0 {
		return 0, 0, false
	}
	return p.Wallet, p.Index, true
}

// Len returns the number of scripts in the book.
func (b *Book) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.scripts)
}
