package tree

import (
	"errors"
	"fmt"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
)

// Tiles. The hashes at levels 0, 8, 16, ... of the tree are stored in
// tiles of TileWidth hashes: tile (L, N) holds the hashes at tree level
// L*TileHeight with indexes N*TileWidth to N*TileWidth+255, so tile (0, N)
// holds the leaf hashes of entries 256N+1 to 256N+256. Only full tiles are
// stored, each written once, in the same write as the entry that completes
// it; the partial tile at the right edge of each level is kept in memory and
// rebuilt at open from the tiles below it (and, at level 0, from the newest
// entries). Any node of the tree is the hash of at most 128 hashes of one
// tile.
const (
	TileHeight = 8
	TileWidth  = 1 << TileHeight
	// TileBytes is the size of a stored tile.
	TileBytes = TileWidth * HashSize
	// MaxTileLevel bounds the tile levels of a tree of 2^64 leaves.
	MaxTileLevel = 64 / TileHeight
)

// ErrNoTile reports a tile the store does not hold.
var ErrNoTile = errors.New("tree: no such tile")

// TileReader reads full tiles from where the tree is stored.
type TileReader interface {
	// ReadTile returns the TileWidth hashes of tile (level, index),
	// decoded into dst's memory if it is large enough, or an error
	// wrapping ErrNoTile if the store holds no such tile.
	ReadTile(level int, index uint64, dst []Hash) ([]Hash, error)
}

// Tile is a full tile to be stored.
type Tile struct {
	Level  int
	Index  uint64
	Hashes []Hash
}

// Encode returns the tile's stored form: its hashes, concatenated.
func (t Tile) Encode() []byte {
	b := make([]byte, 0, len(t.Hashes)*HashSize)
	for i := range t.Hashes {
		b = append(b, t.Hashes[i][:]...)
	}
	return b
}

// DecodeTile decodes a stored tile, into dst's memory if it is large
// enough.
func DecodeTile(b []byte, dst []Hash) ([]Hash, error) {
	if len(b) != TileBytes {
		return nil, fmt.Errorf("tree: a tile is %d bytes, not %d", TileBytes, len(b))
	}
	hs := dst[:0:cap(dst)]
	if cap(hs) < TileWidth {
		hs = make([]Hash, TileWidth)
	}
	hs = hs[:TileWidth]
	for i := range hs {
		copy(hs[i][:], b[i*HashSize:])
	}
	return hs, nil
}

// MismatchError reports a tree that does not match its leaves or its store:
// Leaf is the index of the first leaf (entry Leaf+1) that the bad part of the
// tree covers.
type MismatchError struct {
	Leaf   uint64
	Reason string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("tree: leaf %d: %s", e.Leaf, e.Reason)
}

// factory makes the compact ranges of the tree (transparency-dev/merkle).
var factory = &compact.RangeFactory{Hash: func(l, r []byte) []byte {
	h := NodeHash(Hash(l), Hash(r))
	return h[:]
}}

// Tree is a Merkle tree growing at its right edge: the compact range of its
// leaves (O(log n) hashes, for the root), the partial tile of each level in
// memory, the full tiles in a TileReader. It has one writer at a time
// (Begin, Pending.Append, Commit); reads (Root, RootAt, proofs) run
// concurrently with it and see the tree as of the last Commit.
type Tree struct {
	store TileReader

	mu   sync.Mutex // guards size, rng and rows
	size uint64
	rng  *compact.Range
	// rows[l] is the partial tile of level l: rows[l][0] holds the hashes
	// at level l*TileHeight from the tile's start, (size >> (8l)) mod 256
	// of them, and rows[l][r] the complete nodes r levels above them (the
	// compact range reports each as it makes it, so keeping them costs no
	// hashing). Each slice is only ever appended to (its capacity is its
	// full length, so appends never move it); a full one is replaced by a
	// fresh one, after the full tile is stored. So a reader may keep the
	// slice headers and read below their lengths while the writer appends.
	rows [MaxTileLevel]partial

	// cache holds the subtrees of full tiles above the leaves (levels 1
	// and up), which most proofs share: each is read and hashed once.
	cacheMu sync.Mutex
	cache   map[tileID]*subtree

	w writer // the one writer's own
}

// writer is what the one writer reuses from run to run, so that appending
// allocates next to nothing: the Pending, two lists for the compact
// range's hashes (one the committed range's, the other the pending one's)
// and a slab for the leaf and node hashes the range keeps.
type writer struct {
	pend      Pending
	visit     compact.VisitFn
	factory   *compact.RangeFactory
	lists     [2][][]byte
	committed int // the list the committed range uses, or -1
	slab      []Hash
}

// keep copies h into the writer's slab and returns it as a slice.
func (w *writer) keep(h Hash) []byte {
	if len(w.slab) == cap(w.slab) {
		w.slab = make([]Hash, 0, 256)
	}
	w.slab = append(w.slab, h)
	return w.slab[len(w.slab)-1][:]
}

// tileID names a tile.
type tileID struct {
	level int
	index uint64
}

// subtree is every node of a full tile's subtree: [0] the tile's hashes,
// [r] the TileWidth>>r hashes r levels above them, [TileHeight] its root.
type subtree [TileHeight + 1][]Hash

// partial is the partial tile of a level: [0] its hashes, [r] the complete
// nodes r levels above them.
type partial [TileHeight][]Hash

// add appends h at sublevel r, whose next index must be i. It reports
// whether the sublevel's slice filled (and was replaced by a fresh one);
// full is the slice that filled.
func (pt *partial) add(r int, i uint64, h Hash) (full []Hash, err error) {
	s := pt[r]
	if s == nil {
		s = make([]Hash, 0, TileWidth>>r)
	}
	if uint64(len(s)) != i {
		return nil, fmt.Errorf("tree: node at sublevel %d index %d does not follow %d", r, i, len(s))
	}
	s = append(s, h)
	if len(s) == cap(s) {
		pt[r] = nil
		return s, nil
	}
	pt[r] = s
	return nil, nil
}

// complete fills the sublevels above pt[0] from it (at open).
func (pt *partial) complete() {
	for r := 1; r < TileHeight; r++ {
		below := pt[r-1]
		s := make([]Hash, 0, TileWidth>>r)
		for i := 0; i+1 < len(below); i += 2 {
			s = append(s, NodeHash(below[i], below[i+1]))
		}
		pt[r] = s
	}
}

// maxCachedTiles bounds the cache (24 KiB a tile).
const maxCachedTiles = 512

// Empty returns the tree of no leaves over store.
func Empty(store TileReader) *Tree {
	t := &Tree{store: store, rng: factory.NewEmptyRange(0)}
	t.initWriter()
	return t
}

func (t *Tree) initWriter() {
	w := &t.w
	w.committed = -1
	w.factory = &compact.RangeFactory{Hash: func(l, r []byte) []byte { return w.keep(NodeHash(Hash(l), Hash(r))) }}
	w.visit = w.pend.visit
}

// subtreeOf returns the subtree of full tile (l, index), l >= 1.
func (t *Tree) subtreeOf(l int, index uint64) (*subtree, error) {
	id := tileID{l, index}
	t.cacheMu.Lock()
	st, ok := t.cache[id]
	t.cacheMu.Unlock()
	if ok {
		return st, nil
	}
	hs, err := t.store.ReadTile(l, index, nil)
	if err != nil {
		return nil, &MismatchError{Leaf: index << (TileHeight * (l + 1)), Reason: fmt.Sprintf("tile %d/%d: %v", l, index, err)}
	}
	st = new(subtree)
	st[0] = hs
	for r := 1; r <= TileHeight; r++ {
		below := st[r-1]
		st[r] = make([]Hash, len(below)/2)
		for i := range st[r] {
			st[r][i] = NodeHash(below[2*i], below[2*i+1])
		}
	}
	t.cacheMu.Lock()
	if t.cache == nil {
		t.cache = make(map[tileID]*subtree)
	}
	if len(t.cache) >= maxCachedTiles {
		for k := range t.cache {
			delete(t.cache, k)
			break
		}
	}
	t.cache[id] = st
	t.cacheMu.Unlock()
	return st, nil
}

// Open rebuilds the tree of size leaves from its store: the partial tile of
// each level from the full tiles below it, the partial tile of leaves from
// leaves(from, to), which returns the leaf hashes of [from, to) (at most
// TileWidth-1 of them). It checks that every tile the frontier needs is
// there and that no tile lies beyond the tree; a failure is a
// *MismatchError or leaves' own error.
func Open(size uint64, store TileReader, leaves func(from, to uint64) ([]Hash, error)) (*Tree, error) {
	t := &Tree{store: store, size: size}
	for l := 0; l < MaxTileLevel; l++ {
		count := size >> (TileHeight * l)
		full := count >> TileHeight
		if _, err := store.ReadTile(l, full, nil); !errors.Is(err, ErrNoTile) {
			if err != nil {
				return nil, err
			}
			return nil, &MismatchError{Leaf: size, Reason: fmt.Sprintf("the tree holds tile %d/%d, which covers leaves beyond its %d: the journal was longer", l, full, size)}
		}
		if count == 0 {
			continue
		}
		if full > 0 {
			if _, err := store.ReadTile(l, full-1, nil); err != nil {
				return nil, &MismatchError{Leaf: (full - 1) << (TileHeight * (l + 1)), Reason: fmt.Sprintf("tile %d/%d: %v", l, full-1, err)}
			}
		}
		row := make([]Hash, 0, TileWidth)
		if l == 0 {
			hs, err := leaves(full<<TileHeight, size)
			if err != nil {
				return nil, err
			}
			if uint64(len(hs)) != size-full<<TileHeight {
				return nil, fmt.Errorf("tree: %d leaves for [%d, %d)", len(hs), full<<TileHeight, size)
			}
			row = append(row, hs...)
		} else {
			scratch := make([]Hash, TileWidth/2)
			var below []Hash
			for i := full << TileHeight; i < count; i++ {
				var err error
				below, err = store.ReadTile(l-1, i, below)
				if err != nil {
					return nil, &MismatchError{Leaf: i << (TileHeight * l), Reason: fmt.Sprintf("tile %d/%d: %v", l-1, i, err)}
				}
				row = append(row, hashUp(below, scratch))
			}
		}
		t.rows[l][0] = row
		t.rows[l].complete()
	}
	v := t.viewLocked()
	ids := compact.RangeNodes(0, size, nil)
	hs := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := v.node(id.Level, id.Index)
		if err != nil {
			return nil, err
		}
		hs[i] = append([]byte(nil), h[:]...)
	}
	rng, err := factory.NewRange(0, size, hs)
	if err != nil {
		return nil, fmt.Errorf("tree: %w", err)
	}
	t.rng = rng
	t.initWriter()
	return t, nil
}

// Size returns the number of leaves as of the last Commit.
func (t *Tree) Size() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.size
}

// Root returns the size and root hash as of the last Commit.
func (t *Tree) Root() (uint64, Hash) {
	t.mu.Lock()
	size := t.size
	hs := append([][]byte(nil), t.rng.Hashes()...)
	t.mu.Unlock()
	return size, foldRoot(hs)
}

// foldRoot returns the root over a compact range from 0, given its hashes.
func foldRoot(hs [][]byte) Hash {
	if len(hs) == 0 {
		return EmptyRoot
	}
	root := Hash(hs[len(hs)-1])
	for i := len(hs) - 2; i >= 0; i-- {
		root = NodeHash(Hash(hs[i]), root)
	}
	return root
}

// Pending is a run of appends not yet durable: Begin, Append each leaf,
// store Tiles in the same write as the leaves' entries, then Commit (or
// drop the Pending if the write failed).
type Pending struct {
	t     *Tree
	list  int // the writer's hash list the range uses
	size  uint64
	rng   *compact.Range
	rows  [MaxTileLevel]partial
	tiles []Tile
	err   error
}

// Begin starts a run of appends after the last Commit; the Pending of an
// earlier run is not to be used again. There is one writer at a time.
func (t *Tree) Begin() *Pending {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := &t.w
	i := 0
	if w.committed == 0 {
		i = 1
	}
	w.lists[i] = append(w.lists[i][:0], t.rng.Hashes()...)
	rng, err := w.factory.NewRange(0, t.size, w.lists[i])
	w.pend = Pending{t: t, list: i, size: t.size, rng: rng, rows: t.rows, tiles: w.pend.tiles[:0], err: err}
	return &w.pend
}

// Append adds a leaf hash: O(1) hashes amortised, O(log n) at most.
func (p *Pending) Append(leaf Hash) {
	if p.err != nil {
		return
	}
	p.err = p.rng.Append(p.t.w.keep(leaf), p.t.w.visit)
	p.size++
}

// visit keeps each new node in the partial tile of its level; a full row
// of hashes becomes a tile to store.
func (p *Pending) visit(id compact.NodeID, h []byte) {
	if p.err != nil {
		return
	}
	l, r := int(id.Level/TileHeight), int(id.Level%TileHeight)
	full, err := p.rows[l].add(r, id.Index%(TileWidth>>r), Hash(h))
	if err != nil {
		p.err = err
		return
	}
	if full != nil && r == 0 {
		p.tiles = append(p.tiles, Tile{Level: l, Index: id.Index / TileWidth, Hashes: full})
	}
}

// Size returns the tree's size with the pending leaves.
func (p *Pending) Size() uint64 { return p.size }

// Tiles returns the tiles the pending leaves completed, to be stored with
// them.
func (p *Pending) Tiles() []Tile { return p.tiles }

// Err reports an append that failed (a bug or a damaged frontier).
func (p *Pending) Err() error { return p.err }

// Commit makes the pending leaves part of the tree, once they and their
// tiles are durable. It must follow Begin with no other Commit between.
func (t *Tree) Commit(p *Pending) error {
	if p.err != nil {
		return p.err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p.t != t || p.rng.Begin() != 0 || p.rng.End() != p.size {
		return errors.New("tree: commit of a pending run from another tree")
	}
	t.size, t.rng, t.rows = p.size, p.rng, p.rows
	t.w.committed = p.list
	return nil
}

// view is a reader's snapshot of the tree: its size and rows at one
// moment, and the full tiles it has read.
type view struct {
	t       *Tree
	store   TileReader
	size    uint64
	rows    [MaxTileLevel]partial
	cached  [MaxTileLevel]cachedTile
	scratch []Hash
}

type cachedTile struct {
	ok     bool
	index  uint64
	hashes []Hash
}

func (t *Tree) view() *view {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.viewLocked()
}

func (t *Tree) viewLocked() *view {
	return &view{t: t, store: t.store, size: t.size, rows: t.rows, scratch: make([]Hash, TileWidth/2)}
}

// row returns the hashes of tile (l, index): stored if full in this view,
// the in-memory row if it is the partial one.
func (v *view) row(l int, index uint64) ([]Hash, error) {
	full := v.size >> (TileHeight * (l + 1))
	switch {
	case index < full:
		c := &v.cached[l]
		if c.ok && c.index == index {
			return c.hashes, nil
		}
		// The view reads tiles in order (a scan) or few (a proof):
		// the tile it replaces lends its memory.
		hs, err := v.store.ReadTile(l, index, c.hashes)
		if err != nil {
			return nil, &MismatchError{Leaf: index << (TileHeight * (l + 1)), Reason: fmt.Sprintf("tile %d/%d: %v", l, index, err)}
		}
		*c = cachedTile{ok: true, index: index, hashes: hs}
		return hs, nil
	case index == full:
		return v.rows[l][0], nil
	}
	return nil, fmt.Errorf("tree: tile %d/%d is beyond the tree of %d", l, index, v.size)
}

// node returns the hash of the perfect subtree (level, index).
func (v *view) node(level uint, index uint64) (Hash, error) {
	l := int(level / TileHeight)
	r := level % TileHeight
	first := index << r
	if tile := first >> TileHeight; l > 0 && tile < v.size>>(TileHeight*(l+1)) {
		st, err := v.t.subtreeOf(l, tile)
		if err != nil {
			return Hash{}, err
		}
		return st[r][(first%TileWidth)>>r], nil
	}
	if tile := first >> TileHeight; tile == v.size>>(TileHeight*(l+1)) {
		// In the partial tile: kept complete in memory.
		sub := v.rows[l][r]
		if i := (first % TileWidth) >> r; i < uint64(len(sub)) {
			return sub[i], nil
		}
		return Hash{}, fmt.Errorf("tree: node %d/%d is not complete in the tree of %d", level, index, v.size)
	}
	row, err := v.row(l, first>>TileHeight)
	if err != nil {
		return Hash{}, err
	}
	off, n := first%TileWidth, uint64(1)<<r
	if off+n > uint64(len(row)) {
		return Hash{}, fmt.Errorf("tree: node %d/%d is not complete in the tree of %d", level, index, v.size)
	}
	return hashUp(row[off:off+n], v.scratch), nil
}

// hashes returns the hashes of nodes ids.
func (v *view) hashes(ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := v.node(id.Level, id.Index)
		if err != nil {
			return nil, err
		}
		out[i] = append([]byte(nil), h[:]...)
	}
	return out, nil
}

// at returns a view for reading the tree at size, which must not exceed
// the committed size.
func (t *Tree) at(size uint64) (*view, error) {
	v := t.view()
	if size > v.size {
		return nil, fmt.Errorf("tree: size %d is beyond the tree's %d", size, v.size)
	}
	return v, nil
}

// RootAt returns the root hash of the tree's first size leaves.
func (t *Tree) RootAt(size uint64) (Hash, error) {
	v, err := t.at(size)
	if err != nil {
		return Hash{}, err
	}
	hs, err := v.hashes(compact.RangeNodes(0, size, nil))
	if err != nil {
		return Hash{}, err
	}
	return foldRoot(hs), nil
}

// LeafAt returns leaf index's hash.
func (t *Tree) LeafAt(index uint64) (Hash, error) {
	v, err := t.at(index + 1)
	if err != nil {
		return Hash{}, err
	}
	return v.node(0, index)
}

// InclusionPath returns the RFC 6962 audit path of leaf index in the tree
// of size leaves (size at most the tree's).
func (t *Tree) InclusionPath(index, size uint64) ([]Hash, error) {
	v, err := t.at(size)
	if err != nil {
		return nil, err
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("tree: %w", err)
	}
	return v.rehash(nodes)
}

// ConsistencyPath returns the RFC 6962 consistency proof between the
// tree's first from leaves and its first to leaves.
func (t *Tree) ConsistencyPath(from, to uint64) ([]Hash, error) {
	v, err := t.at(to)
	if err != nil {
		return nil, err
	}
	nodes, err := proof.Consistency(from, to)
	if err != nil {
		return nil, fmt.Errorf("tree: %w", err)
	}
	return v.rehash(nodes)
}

func (v *view) rehash(nodes proof.Nodes) ([]Hash, error) {
	hs, err := v.hashes(nodes.IDs)
	if err != nil {
		return nil, err
	}
	hs, err = nodes.Rehash(hs, factory.Hash)
	if err != nil {
		return nil, fmt.Errorf("tree: %w", err)
	}
	out := make([]Hash, len(hs))
	for i := range hs {
		out[i] = Hash(hs[i])
	}
	return out, nil
}

// Checker recomputes the tree from its leaves, in order from leaf 0, and
// compares every hash at a tile level with the tree's: each leaf with the
// stored one, each 256 with the stored hash above them, and so on up. It
// is what a full scan of the journal runs so that a tree that does not
// match its entries names the first entry that differs.
type Checker struct {
	t    *Tree
	v    *view
	next uint64
	// fresh[l] holds the recomputed hashes at level l*8 of the partial
	// tile being filled.
	fresh   [MaxTileLevel][]Hash
	scratch []Hash
	beyond  bool // a leaf was past the tree: checking stopped there
}

// NewChecker starts a check of t from leaf 0.
func (t *Tree) NewChecker() *Checker {
	return &Checker{t: t, v: t.view(), scratch: make([]Hash, TileWidth/2)}
}

// Checked returns the number of leaves checked so far.
func (c *Checker) Checked() uint64 { return c.next }

// Add checks the next leaf (and, when it completes a tile, the hashes above
// it). A leaf the tree does not hold yet (appended and durable, not yet
// committed to the tree) is not checked, nor any leaf after it; Add
// returns false for them.
func (c *Checker) Add(leaf Hash) (bool, error) {
	if c.beyond {
		return false, nil
	}
	i := c.next
	if i >= c.v.size {
		c.v = c.t.view()
		if i >= c.v.size {
			c.beyond = true
			return false, nil
		}
	}
	c.next++
	for l, h := 0, leaf; l < MaxTileLevel; l++ {
		idx := i >> (TileHeight * l)
		got, err := c.v.node(uint(l*TileHeight), idx)
		if err != nil {
			return true, err
		}
		if got != h {
			first := idx << (TileHeight * l)
			if l == 0 {
				return true, &MismatchError{Leaf: first, Reason: "its leaf hash differs from the tree's"}
			}
			return true, &MismatchError{Leaf: first, Reason: fmt.Sprintf("the tree's hash over leaves %d to %d differs from theirs", first, first+1<<(TileHeight*l)-1)}
		}
		if c.fresh[l] == nil {
			c.fresh[l] = make([]Hash, 0, TileWidth)
		}
		c.fresh[l] = append(c.fresh[l], h)
		if len(c.fresh[l]) < TileWidth {
			break
		}
		h = hashUp(c.fresh[l], c.scratch)
		c.fresh[l] = c.fresh[l][:0]
	}
	return true, nil
}
