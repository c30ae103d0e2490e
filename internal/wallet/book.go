package wallet

import (
	"crypto/sha256"
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync"
)

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// Book maps output scripts to (wallet, branch, index) for the addresses our
// wallets have handed out, recomputed from their descriptors. It answers the
// watcher's question "is this ours?" without trusting anything but the
// descriptors. Pay-to-witness-script-hash outputs (all of ours) are kept
// by their 32-byte witness program in an open-addressing table of 40-byte
// slots held between 60% and 85% full, so a million watched addresses
// take about 60 MB (a Go map of the same entries, whose power-of-two
// tables can stand half empty, took 100 bytes an address). Safe for
// concurrent use.
type Book struct {
	mu    sync.RWMutex
	wsh   progTable
	other map[string]packed
}

// Place is where a script sits in a wallet.
type Place struct {
	Wallet uint32
	Branch uint32 // 0 receive, 1 change
	Index  uint32 // below 2^31, as every unhardened index
}

// packed is a Place in 8 bytes: the branch in the index's top bit.
type packed struct{ wallet, branchIndex uint32 }

func pack(p Place) packed { return packed{p.Wallet, p.Branch<<31 | p.Index} }

func (p packed) place() Place {
	return Place{Wallet: p.wallet, Branch: p.branchIndex >> 31, Index: p.branchIndex &^ (1 << 31)}
}

// NewBook returns an empty book.
func NewBook() *Book { return NewBookSize(0) }

// NewBookSize returns an empty book with room for n scripts: a map grown
// one insert at a time may stand half empty, and a watcher knows from the
// descriptors' indexes how many it will hold.
func NewBookSize(n int) *Book {
	b := &Book{other: map[string]packed{}}
	b.wsh.seed = maphash.MakeSeed()
	b.wsh.resize(n * 5 / 4)
	return b
}

// witnessProgram returns the program of a version-0 32-byte witness
// script (OP_0 PUSH32 <program>).
func witnessProgram(script []byte) ([32]byte, bool) {
	if len(script) != 34 || script[0] != 0x00 || script[1] != 0x20 {
		return [32]byte{}, false
	}
	return [32]byte(script[2:]), true
}

// Add derives and adds the scripts of wallet at branch, indexes [from, to).
func (b *Book) Add(wallet uint32, d *Descriptor, branch, from, to uint32) error {
	scripts, err := Derive(d, branch, from, to)
	if err != nil {
		return err
	}
	b.AddDerived(wallet, branch, from, scripts)
	return nil
}

// Derive returns the output scripts of d at branch, indexes [from, to):
// derive once, add to several books.
func Derive(d *Descriptor, branch, from, to uint32) ([][]byte, error) {
	if branch > 1 || to > 1<<31 || from > to {
		return nil, fmt.Errorf("wallet: book: branch %d, indexes [%d, %d)", branch, from, to)
	}
	scripts := make([][]byte, 0, to-from)
	for i := from; i < to; i++ {
		s, err := d.PkScript(branch, i)
		if err != nil {
			return nil, err
		}
		scripts = append(scripts, s)
	}
	return scripts, nil
}

// AddDerived adds scripts Derive returned for wallet at branch from index
// from on.
func (b *Book) AddDerived(wallet, branch, from uint32, scripts [][]byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, s := range scripts {
		b.put(s, Place{Wallet: wallet, Branch: branch, Index: from + uint32(i)})
	}
}

// AddScript adds one script at p, as Add does for derived ones: for
// scripts known another way (an import, a benchmark's million).
func (b *Book) AddScript(script []byte, p Place) error {
	if p.Branch > 1 || p.Index >= 1<<31 {
		return fmt.Errorf("wallet: book: branch %d index %d", p.Branch, p.Index)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.put(script, p)
	return nil
}

func (b *Book) put(script []byte, p Place) {
	if k, ok := witnessProgram(script); ok {
		b.wsh.put(k, pack(p))
		return
	}
	b.other[string(script)] = pack(p)
}

// Find returns where script sits, if it is ours.
func (b *Book) Find(script []byte) (Place, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var p packed
	var ok bool
	if k, wsh := witnessProgram(script); wsh {
		p, ok = b.wsh.get(k)
	} else {
		p, ok = b.other[string(script)]
	}
	return p.place(), ok
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
	return b.wsh.n + len(b.other)
}

// progTable maps witness programs to places: linear probing over slots
// found by a keyed hash (outputs are chosen by payers, so the slot of a
// program must not be), a bitmap of used slots beside them.
type progTable struct {
	seed maphash.Seed
	keys [][32]byte
	vals []packed
	used []uint64
	n    int
}

func (t *progTable) slot(k [32]byte) int {
	hi, _ := bits.Mul64(maphash.Comparable(t.seed, k), uint64(len(t.keys)))
	return int(hi)
}

func (t *progTable) isUsed(i int) bool { return t.used[i/64]&(1<<(i%64)) != 0 }

func (t *progTable) get(k [32]byte) (packed, bool) {
	if len(t.keys) == 0 {
		return packed{}, false
	}
	for i := t.slot(k); t.isUsed(i); i = (i + 1) % len(t.keys) {
		if t.keys[i] == k {
			return t.vals[i], true
		}
	}
	return packed{}, false
}

func (t *progTable) put(k [32]byte, v packed) {
	if (t.n+1)*20 > len(t.keys)*17 { // above 85% full
		t.resize(max(64, (t.n+1)*5/3))
	}
	i := t.slot(k)
	for ; t.isUsed(i); i = (i + 1) % len(t.keys) {
		if t.keys[i] == k {
			t.vals[i] = v
			return
		}
	}
	t.keys[i], t.vals[i] = k, v
	t.used[i/64] |= 1 << (i % 64)
	t.n++
}

func (t *progTable) resize(capacity int) {
	if capacity < t.n || capacity == 0 {
		return
	}
	old := *t
	t.keys, t.vals, t.used, t.n = make([][32]byte, capacity), make([]packed, capacity), make([]uint64, (capacity+63)/64), 0
	for i := range old.keys {
		if old.isUsed(i) {
			t.put(old.keys[i], old.vals[i])
		}
	}
}
