package tree

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// memStore keeps tiles in memory, as the journal keeps them in Pebble.
type memStore map[[2]uint64][]Hash

func (m memStore) ReadTile(level int, index uint64, _ []Hash) ([]Hash, error) {
	hs, ok := m[[2]uint64{uint64(level), index}]
	if !ok {
		return nil, fmt.Errorf("%w: %d/%d", ErrNoTile, level, index)
	}
	return hs, nil
}

func (m memStore) put(ts []Tile) {
	for _, t := range ts {
		hs, err := DecodeTile(t.Encode(), nil)
		if err != nil {
			panic(err)
		}
		m[[2]uint64{uint64(t.Level), t.Index}] = hs
	}
}

func leafOf(i uint64) Hash {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	return LeafHash(sha256.New().Sum(b[:]))
}

// refRoot is RFC 6962's MTH, computed by its recursive definition.
func refRoot(leaves []Hash) Hash {
	switch len(leaves) {
	case 0:
		return EmptyRoot
	case 1:
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return NodeHash(refRoot(leaves[:k]), refRoot(leaves[k:]))
}

// grow appends leaves n..m-1 to t in runs of random length, storing tiles.
func grow(t *testing.T, tr *Tree, st memStore, from, to uint64, rng *rand.Rand) {
	t.Helper()
	for i := from; i < to; {
		p := tr.Begin()
		run := min(to-i, uint64(rng.IntN(700)+1))
		for k := uint64(0); k < run; k++ {
			p.Append(leafOf(i))
			i++
		}
		if err := p.Err(); err != nil {
			t.Fatal(err)
		}
		st.put(p.Tiles())
		if err := tr.Commit(p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRootsAndProofs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	st := memStore{}
	tr := Empty(st)
	const n = 300
	var leaves []Hash
	for i := uint64(0); i < n; i++ {
		leaves = append(leaves, leafOf(i))
	}
	grow(t, tr, st, 0, n, rng)
	for size := uint64(0); size <= n; size++ {
		want := refRoot(leaves[:size])
		got, err := tr.RootAt(size)
		if err != nil || got != want {
			t.Fatalf("RootAt(%d) = %s, %v; want %s", size, got, err, want)
		}
		for i := uint64(0); i < size; i++ {
			path, err := tr.InclusionPath(i, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(i, size, leaves[i], path, want); err != nil {
				t.Fatalf("inclusion %d in %d: %v", i, size, err)
			}
			if i+1 < size {
				if VerifyInclusion(i+1, size, leaves[i], path, want) == nil {
					t.Fatalf("inclusion of leaf %d verified at index %d", i, i+1)
				}
			}
		}
		for from := uint64(0); from <= size; from++ {
			path, err := tr.ConsistencyPath(from, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(from, size, path, refRoot(leaves[:from]), want); err != nil {
				t.Fatalf("consistency %d -> %d: %v", from, size, err)
			}
		}
	}
	if s, r := tr.Root(); s != n || r != refRoot(leaves) {
		t.Fatalf("Root() = %d %s", s, r)
	}
}

// TestLargeTreeAndReopen grows trees past several tile levels, reopens
// them from their tiles at many sizes, and checks roots and proofs against
// the reference.
func TestLargeTreeAndReopen(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 1<<16 + 3*256 + 5
	leaves := make([]Hash, n)
	for i := range leaves {
		leaves[i] = leafOf(uint64(i))
	}
	st := memStore{}
	tr := Empty(st)
	grow(t, tr, st, 0, n, rng)
	sizes := []uint64{1, 255, 256, 257, 511, 512, 4097, 1<<16 - 1, 1 << 16, 1<<16 + 1, n}
	for k := 0; k < 10; k++ {
		sizes = append(sizes, uint64(rng.IntN(n)+1))
	}
	full := refRoot(leaves)
	for _, size := range sizes {
		want := refRoot(leaves[:size])
		got, err := tr.RootAt(size)
		if err != nil || got != want {
			t.Fatalf("RootAt(%d) = %s, %v", size, got, err)
		}
		for k := 0; k < 20; k++ {
			i := uint64(rng.IntN(int(size)))
			path, err := tr.InclusionPath(i, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(i, size, leaves[i], path, want); err != nil {
				t.Fatalf("inclusion %d in %d: %v", i, size, err)
			}
		}
		path, err := tr.ConsistencyPath(size, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyConsistency(size, n, path, want, full); err != nil {
			t.Fatalf("consistency %d -> %d: %v", size, n, err)
		}
		// Reopen a tree of this size from the tiles it would have had.
		sub := memStore{}
		for key, hs := range st {
			if (key[1]+1)<<(TileHeight*(key[0]+1)) <= size {
				sub[key] = hs
			}
		}
		re, err := Open(size, sub, func(from, to uint64) ([]Hash, error) { return leaves[from:to], nil })
		if err != nil {
			t.Fatalf("Open(%d): %v", size, err)
		}
		if _, r := re.Root(); r != want {
			t.Fatalf("reopened root at %d = %s; want %s", size, r, want)
		}
		// And it keeps growing to the same tree.
		grow(t, re, sub, size, min(size+1000, n), rng)
		if _, r := re.Root(); r != refRoot(leaves[:min(size+1000, n)]) {
			t.Fatalf("reopened tree grown from %d has another root", size)
		}
	}
}

func TestTreeOpenRefusesExtraOrMissingTiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	st := memStore{}
	tr := Empty(st)
	const n = 3*256 + 10
	grow(t, tr, st, 0, n, rng)
	leaves := func(from, to uint64) ([]Hash, error) {
		var out []Hash
		for i := from; i < to; i++ {
			out = append(out, leafOf(i))
		}
		return out, nil
	}
	// Opened shorter than its tiles: the journal was cut.
	_, err := Open(2*256+7, st, leaves)
	var mm *MismatchError
	if !errors.As(err, &mm) || mm.Leaf != 2*256+7 {
		t.Fatalf("Open shorter than the tiles = %v; want a mismatch at leaf %d", err, 2*256+7)
	}
	// The newest full tile gone.
	delete(st, [2]uint64{0, 2})
	_, err = Open(n, st, leaves)
	if !errors.As(err, &mm) || mm.Leaf != 2*256 {
		t.Fatalf("Open without tile 0/2 = %v; want a mismatch at leaf 512", err)
	}
}

func TestTreeCheckerNamesFirstBadLeaf(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	st := memStore{}
	tr := Empty(st)
	const n = 1<<16 + 700
	grow(t, tr, st, 0, n, rng)
	check := func() error {
		c := tr.NewChecker()
		for i := uint64(0); i < n; i++ {
			if _, err := c.Add(leafOf(i)); err != nil {
				return err
			}
		}
		if c.Checked() != n {
			t.Fatalf("checked %d of %d", c.Checked(), n)
		}
		return nil
	}
	if err := check(); err != nil {
		t.Fatal(err)
	}
	// A stored leaf changed: named.
	bad := st[[2]uint64{0, 7}]
	bad[9][0] ^= 1
	var mm *MismatchError
	if err := check(); !errors.As(err, &mm) || mm.Leaf != 7*256+9 {
		t.Fatalf("check = %v; want leaf %d", err, 7*256+9)
	}
	bad[9][0] ^= 1
	// A stored hash of 256 leaves changed: the first leaf under it named.
	st[[2]uint64{1, 0}][3][5] ^= 1
	if err := check(); !errors.As(err, &mm) || mm.Leaf != 3*256 {
		t.Fatalf("check = %v; want leaf %d", err, 3*256)
	}
}

// TestTreeCheckerStopsPastTheTree feeds the checker a leaf the tree does not
// hold yet (durable, not yet committed): it and every later leaf go
// unchecked, even once the tree has grown past them.
func TestTreeCheckerStopsPastTheTree(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	st := memStore{}
	tr := Empty(st)
	grow(t, tr, st, 0, 300, rng)
	c := tr.NewChecker()
	for i := uint64(0); i < 300; i++ {
		if ok, err := c.Add(leafOf(i)); !ok || err != nil {
			t.Fatalf("leaf %d: %v %v", i, ok, err)
		}
	}
	if ok, err := c.Add(leafOf(300)); ok || err != nil {
		t.Fatalf("leaf past the tree: %v %v", ok, err)
	}
	grow(t, tr, st, 300, 400, rng)
	if ok, err := c.Add(leafOf(301)); ok || err != nil {
		t.Fatalf("leaf after one past the tree: %v %v", ok, err)
	}
	if c.Checked() != 300 {
		t.Fatalf("checked %d", c.Checked())
	}
}
