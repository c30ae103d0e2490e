// Package sumtree is the liabilities side of kinko's proof of reserves: a
// Merkle sum tree over every customer's balance of one asset at one
// journaled moment, from whose root each customer checks, with nothing but
// SHA-256 and 128-bit integer addition, that their balance is counted in
// the total the exchange publishes.
//
// The tree follows Maxwell's summation Merkle tree (2014) with the fix of
// Hu, Zhang and Guo ("Breaking the Binding", ePrint 2018/1139): an internal
// node commits to each child's hash AND each child's sum separately,
//
//	node = SHA-256(0x01 || h_l || s_l || h_r || s_r),  sum = s_l + s_r,
//
// so that the prover cannot show the left child's customer one sibling sum
// and the right child's another (in Maxwell's original the node committed
// to s_l + s_r only, and a node could carry max(s_l, s_r) with each side
// shown a fitting sibling sum). Sums are unsigned 128-bit integers and
// every addition is checked: a sum that overflows is refused by the builder
// and by the verifier, so a "negative" balance (a value that wraps the sum
// around, as in schemes that add modulo a group order; cf. Provisions,
// Dagher et al., CCS 2015) cannot offset a customer's balance on the path
// that customer checks. A leaf is
//
//	leaf = SHA-256(0x00 || salt || account || balance)
//
// with a per-customer, per-tree salt (derived by the exchange from a secret
// key; see internal/reserves), so that neither a leaf nor a sibling hash
// tells anyone else who the customer is or lets them guess a balance. The
// leaves are ordered by salt, which reshuffles them at every tree: a
// customer's neighbours change from one publication to the next. The tree
// is padded to the next power of two with padding leaves
// (SHA-256(0x02), sum 0), and its root hash binds the asset, the journal
// sequence number and time, and the number of customers:
//
//	root = SHA-256(0x03 || len(asset) || asset || seq || time || size || h_top || s_top)
//
// docs/reserves.md gives every byte of these encodings and of the proof,
// so that a customer can check a proof with another tool.
package sumtree

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"sync"

	"kinko/internal/ledger"
)

// Domain tags: the first byte of every hashed encoding, so that a leaf, an
// internal node, a padding leaf and a root can never be taken for one
// another.
const (
	TagLeaf = 0x00
	TagNode = 0x01
	TagPad  = 0x02
	TagRoot = 0x03
)

// Bounds of a tree.
const (
	// MaxLeaves bounds the customers of one tree, and so a proof's depth
	// (at most MaxDepth) and a leaf's position (32 bits while sorting).
	MaxLeaves = 1 << 31
	// MaxDepth is the depth of a tree of MaxLeaves leaves.
	MaxDepth = 31
	// MaxAssetCode bounds an asset code, as the ledger does.
	MaxAssetCode = ledger.MaxAssetCode
)

// Errors callers can test.
var (
	// ErrOverflow reports a sum above 2^128-1: refused, never wrapped.
	ErrOverflow = errors.New("sumtree: sum overflows 128 bits")
	// ErrTooLarge reports more leaves than MaxLeaves.
	ErrTooLarge = errors.New("sumtree: too many leaves")
	// ErrDuplicate reports two identical leaves (salt and account).
	ErrDuplicate = errors.New("sumtree: two leaves for one account")
	// ErrAsset reports an asset code that is not 1 to 10 of A-Z and 0-9.
	ErrAsset = errors.New("sumtree: asset code invalid")
	// ErrIndex reports a leaf index outside the tree.
	ErrIndex = errors.New("sumtree: leaf index outside the tree")
)

// Hash is a SHA-256 digest. Its text form is lower-case hex.
type Hash [32]byte

// String returns the hash in hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText encodes the hash in hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes 64 hex digits.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParseHash parses 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("sumtree: hash %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("sumtree: hash %q: %w", s, err)
	}
	return h, nil
}

// Node is a node of the tree: its hash and the sum of the balances below
// it.
type Node struct {
	Hash Hash
	Sum  ledger.Amount
}

var be = binary.BigEndian

func put128(b []byte, a ledger.Amount) {
	be.PutUint64(b, a.Hi)
	be.PutUint64(b[8:], a.Lo)
}

func get128(b []byte) ledger.Amount { return ledger.Amount{Hi: be.Uint64(b), Lo: be.Uint64(b[8:])} }

// Leaf is one customer's entry: the salt that hides it, the account (the
// customer's id) and the balance owed to them, in base units.
type Leaf struct {
	Salt    [32]byte
	Account uint64
	Balance ledger.Amount
}

// leafLen is the length of a leaf's hashed encoding.
const leafLen = 1 + 32 + 8 + 16

// Node returns the leaf as a node: SHA-256(0x00 || salt || account ||
// balance), account as 8 bytes and balance as 16 bytes, big-endian; its
// sum is the balance.
func (l *Leaf) Node() Node {
	var b [leafLen]byte
	b[0] = TagLeaf
	copy(b[1:33], l.Salt[:])
	be.PutUint64(b[33:], l.Account)
	put128(b[41:], l.Balance)
	return Node{Hash: sha256.Sum256(b[:]), Sum: l.Balance}
}

// nodeLen is the length of an internal node's hashed encoding.
const nodeLen = 1 + 32 + 16 + 32 + 16

// Parent returns the node over l and r: SHA-256(0x01 || h_l || s_l || h_r
// || s_r), sums as 16 bytes big-endian, and the sum s_l + s_r. A sum that
// overflows 128 bits is ErrOverflow.
func Parent(l, r Node) (Node, error) {
	s, over := l.Sum.Add(r.Sum)
	if over {
		return Node{}, ErrOverflow
	}
	var b [nodeLen]byte
	b[0] = TagNode
	copy(b[1:33], l.Hash[:])
	put128(b[33:49], l.Sum)
	copy(b[49:81], r.Hash[:])
	put128(b[81:97], r.Sum)
	return Node{Hash: sha256.Sum256(b[:]), Sum: s}, nil
}

// PadLeaf is the leaf that fills the tree up to a power of two:
// SHA-256(0x02), sum 0.
var PadLeaf = Node{Hash: sha256.Sum256([]byte{TagPad})}

// pads[k] is the node over 2^k padding leaves.
var pads = func() [MaxDepth + 1]Node {
	var p [MaxDepth + 1]Node
	p[0] = PadLeaf
	for k := 1; k <= MaxDepth; k++ {
		p[k], _ = Parent(p[k-1], p[k-1])
	}
	return p
}()

// Depth returns the depth of a tree of size leaves: the number of
// siblings in a proof, ceil(log2(size)), and 0 for 0 or 1 leaf.
func Depth(size uint64) int {
	if size <= 1 {
		return 0
	}
	return bits.Len64(size - 1)
}

// ValidAsset reports whether code is an asset code the ledger accepts: 1 to
// 10 of A-Z and 0-9.
func ValidAsset(code string) bool {
	if len(code) == 0 || len(code) > MaxAssetCode {
		return false
	}
	for i := 0; i < len(code); i++ {
		if c := code[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// RootHash returns the root hash that binds the top node to its tree:
// SHA-256(0x03 || len(asset) as 1 byte || asset || seq (8 bytes) || time
// (8 bytes, two's complement) || size (8 bytes) || h_top || s_top (16
// bytes)), all big-endian.
func RootHash(asset string, seq uint64, t int64, size uint64, top Node) Hash {
	b := make([]byte, 0, 2+len(asset)+24+48)
	b = append(b, TagRoot, byte(len(asset)))
	b = append(b, asset...)
	b = be.AppendUint64(b, seq)
	b = be.AppendUint64(b, uint64(t))
	b = be.AppendUint64(b, size)
	b = append(b, top.Hash[:]...)
	b = be.AppendUint64(b, top.Sum.Hi)
	b = be.AppendUint64(b, top.Sum.Lo)
	return sha256.Sum256(b)
}

// Root is what the exchange publishes of a tree, and journals: the asset,
// the journal entry whose state the tree is of (Seq) and that entry's time
// (unix nanoseconds), the number of customers, the root hash, and the
// total owed (the top node's sum).
type Root struct {
	Asset string        `json:"asset"`
	Seq   uint64        `json:"seq"`
	Time  int64         `json:"time"`
	Size  uint64        `json:"size"`
	Hash  Hash          `json:"hash"`
	Total ledger.Amount `json:"total"`
}

// Tree is a built tree, kept to make proofs. It keeps the leaves and the
// internal levels; leaf hashes are recomputed when a proof needs one.
//
// INVARIANT: leaves are in ascending order of (salt, account), and
// levels[k] (k >= 1) holds the nodes of level k over at least one leaf:
// len(levels[k]) == ceil(len(levels[k-1]) / 2), level 0 being the leaves.
type Tree struct {
	leaves []Leaf   // in tree order
	levels [][]Node // levels[0] is nil: the leaves stand for it
	top    Node
	root   Root
}

// Root returns the tree's published root.
func (t *Tree) Root() Root { return t.root }

// Size returns the number of leaves.
func (t *Tree) Size() int { return len(t.leaves) }

// Leaf returns leaf i, in tree order.
func (t *Tree) Leaf(i int) Leaf { return t.leaves[i] }

func (t *Tree) leaf(i uint64) *Leaf { return &t.leaves[i] }

// cmpLeaf orders leaves: salt, then account.
func cmpLeaf(a, b *Leaf) int {
	if c := bytes.Compare(a.Salt[:], b.Salt[:]); c != 0 {
		return c
	}
	switch {
	case a.Account < b.Account:
		return -1
	case a.Account > b.Account:
		return 1
	}
	return 0
}

// sortKey is a leaf's place in the sort: the first 8 bytes of its salt,
// and its position before the sort.
type sortKey struct {
	prefix uint64
	at     uint32
}

// treeOrder returns the leaves' tree order: order[i] is the position in
// leaves of the i-th leaf of the tree. It radix-sorts the salts' first 8
// bytes (four passes of 16 bits over 16-byte keys, rather than
// comparisons that would move 56-byte leaves about), then sorts the rare
// runs of equal prefixes by the whole salt and account.
func treeOrder(leaves []Leaf) []uint32 {
	n := len(leaves)
	keys := make([]sortKey, n)
	for i := range leaves {
		keys[i] = sortKey{prefix: be.Uint64(leaves[i].Salt[:8]), at: uint32(i)}
	}
	if n > 1 {
		tmp := make([]sortKey, n)
		var count [1 << 16]int
		for shift := 0; shift < 64; shift += 16 {
			clear(count[:])
			for i := range keys {
				count[(keys[i].prefix>>shift)&0xffff]++
			}
			pos := 0
			for d := range count {
				c := count[d]
				count[d] = pos
				pos += c
			}
			for i := range keys {
				d := (keys[i].prefix >> shift) & 0xffff
				tmp[count[d]] = keys[i]
				count[d]++
			}
			keys, tmp = tmp, keys
		}
		for lo := 0; lo < n; {
			hi := lo + 1
			for hi < n && keys[hi].prefix == keys[lo].prefix {
				hi++
			}
			if hi-lo > 1 {
				slices.SortFunc(keys[lo:hi], func(a, b sortKey) int { return cmpLeaf(&leaves[a.at], &leaves[b.at]) })
			}
			lo = hi
		}
	}
	order := make([]uint32, n)
	for i := range keys {
		order[i] = keys[i].at
	}
	return order
}

// workers returns how many goroutines share a level of n nodes.
func workers(n int) int {
	const minChunk = 1 << 14
	w := min(runtime.GOMAXPROCS(0), (n+minChunk-1)/minChunk)
	return max(w, 1)
}

// parallel runs fn over [0, n) in w chunks and returns the first error.
// Each goroutine ends when its chunk is done.
func parallel(n int, fn func(lo, hi int) error) error {
	w := workers(n)
	if w == 1 {
		return fn(0, n)
	}
	errs := make([]error, w)
	var wg sync.WaitGroup
	for i := 0; i < w; i++ {
		lo, hi := n*i/w, n*(i+1)/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(lo, hi)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Build builds the tree of asset at journal entry seq (time t) over
// leaves, in tree order (ascending salt, then account): it sorts a copy,
// which it keeps, so that hashing reads the leaves in order. The caller gives each account one leaf (the salt is
// derived from the account, so two leaves of one account are the same
// leaf, ErrDuplicate); a sum above 2^128-1 is ErrOverflow. Build uses every processor: it runs
// outside the core's apply, never inside it.
func Build(leaves []Leaf, asset string, seq uint64, t int64) (*Tree, error) {
	if !ValidAsset(asset) {
		return nil, fmt.Errorf("%w: %q", ErrAsset, asset)
	}
	if uint64(len(leaves)) > MaxLeaves {
		return nil, fmt.Errorf("%w: %d > %d", ErrTooLarge, len(leaves), uint64(MaxLeaves))
	}
	order := treeOrder(leaves)
	sorted := make([]Leaf, len(leaves))
	parallel(len(sorted), func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			sorted[i] = leaves[order[i]]
		}
		return nil
	})
	for i := 1; i < len(sorted); i++ {
		if cmpLeaf(&sorted[i-1], &sorted[i]) == 0 {
			return nil, fmt.Errorf("%w: account %d", ErrDuplicate, sorted[i].Account)
		}
	}
	leaves = sorted
	n := uint64(len(leaves))
	d := Depth(n)
	tr := &Tree{leaves: leaves, levels: make([][]Node, d+1)}
	switch n {
	case 0:
		tr.top = PadLeaf
	case 1:
		tr.top = tr.leaf(0).Node()
	default:
		// Level 1 straight from the leaves: a leaf's hash is computed
		// once, here, and again only for a proof that needs it.
		l1 := make([]Node, (n+1)/2)
		err := parallel(len(l1), func(lo, hi int) error {
			for i := lo; i < hi; i++ {
				r := PadLeaf
				if 2*i+1 < len(leaves) {
					r = tr.leaf(uint64(2*i + 1)).Node()
				}
				var err error
				if l1[i], err = Parent(tr.leaf(uint64(2*i)).Node(), r); err != nil {
					return fmt.Errorf("%w: above leaf %d", err, 2*i)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		tr.levels[1] = l1
		for k := 2; k <= d; k++ {
			below := tr.levels[k-1]
			lk := make([]Node, (len(below)+1)/2)
			err := parallel(len(lk), func(lo, hi int) error {
				for i := lo; i < hi; i++ {
					r := pads[k-1]
					if 2*i+1 < len(below) {
						r = below[2*i+1]
					}
					var err error
					if lk[i], err = Parent(below[2*i], r); err != nil {
						return fmt.Errorf("%w: at level %d", err, k)
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			tr.levels[k] = lk
		}
		tr.top = tr.levels[d][0]
	}
	tr.root = Root{Asset: asset, Seq: seq, Time: t, Size: n, Hash: RootHash(asset, seq, t, n, tr.top), Total: tr.top.Sum}
	return tr, nil
}

// Find returns the index of the leaf of account with salt, if the tree
// holds it.
func (t *Tree) Find(salt [32]byte, account uint64) (uint64, bool) {
	key := Leaf{Salt: salt, Account: account}
	i, ok := slices.BinarySearchFunc(t.leaves, &key, func(l Leaf, k *Leaf) int { return cmpLeaf(&l, k) })
	return uint64(i), ok
}

// node returns the node at level k, index i: a real one, or the padding
// of that level.
func (t *Tree) node(k int, i uint64) Node {
	if k == 0 {
		if i < uint64(len(t.leaves)) {
			return t.leaf(i).Node()
		}
		return pads[0]
	}
	if i < uint64(len(t.levels[k])) {
		return t.levels[k][i]
	}
	return pads[k]
}

// Prove returns the proof of leaf i: the leaf, the siblings from the
// leaf's up to the top's children, and the root.
func (t *Tree) Prove(i uint64) (*Proof, error) {
	if i >= uint64(len(t.leaves)) {
		return nil, fmt.Errorf("%w: %d of %d", ErrIndex, i, len(t.leaves))
	}
	d := len(t.levels) - 1
	p := &Proof{Root: t.root, Index: i, Leaf: *t.leaf(i), Path: make([]Node, d)}
	for k := 0; k < d; k++ {
		p.Path[k] = t.node(k, (i>>k)^1)
	}
	return p, nil
}
