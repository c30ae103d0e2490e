package journal_test

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"kinko/internal/journal"
	"kinko/internal/journal/tree"
)

// appendBatches appends n entries in batches of random size, as the core's
// committer does.
func appendBatches(t testing.TB, j *journal.Journal, n int, rng *rand.Rand) {
	t.Helper()
	for done := 0; done < n; {
		seq, prev, tm := j.Head()
		b := j.NewBatch()
		for k := rng.IntN(600) + 1; k > 0 && done < n; k-- {
			e, err := b.Add(prev, seq+1, tm+1, 7, []byte{byte(seq), byte(seq >> 8), 1, 2})
			if err != nil {
				t.Fatal(err)
			}
			seq, prev, tm = e.Seq, e.Hash, e.Time
			done++
		}
		if err := j.Commit(b); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
}

// refRoot is RFC 6962's MTH over the entries' leaves, by its definition.
func refRoot(leaves []tree.Hash) tree.Hash {
	switch len(leaves) {
	case 0:
		return tree.EmptyRoot
	case 1:
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return tree.NodeHash(refRoot(leaves[:k]), refRoot(leaves[k:]))
}

func entryLeaves(t testing.TB, j *journal.Journal) []tree.Hash {
	var out []tree.Hash
	if err := j.Scan(1, func(e journal.Entry) error {
		out = append(out, tree.LeafHash(e.Hash[:]))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func headAt(t testing.TB, j *journal.Journal, size uint64) tree.Head {
	t.Helper()
	root, err := j.RootAt(size)
	if err != nil {
		t.Fatal(err)
	}
	h := tree.Head{Origin: "test", Size: size, Root: root}
	if size > 0 {
		e, err := j.Get(size)
		if err != nil {
			t.Fatal(err)
		}
		h.Time = e.Time
	}
	return h
}

// TestJournalTreeProofs checks, for every size from 1 to 300, the tree's
// root against RFC 6962's definition over the entries, the inclusion proof
// of every entry and the consistency proof from every smaller size, and
// that they survive a reopen.
func TestJournalTreeProofs(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir)
	rng := rand.New(rand.NewPCG(1, 1))
	appendBatches(t, j, 300, rng)
	j.Close()
	j = open(t, dir)
	defer j.Close()
	leaves := entryLeaves(t, j)
	if h := j.TreeHead(); h.Size != 300 || h.Root != refRoot(leaves) {
		t.Fatalf("TreeHead() = %d %s; want 300 %s", h.Size, h.Root, refRoot(leaves))
	}
	for size := uint64(1); size <= 300; size++ {
		h := headAt(t, j, size)
		if h.Root != refRoot(leaves[:size]) {
			t.Fatalf("RootAt(%d) differs from RFC 6962's", size)
		}
		for seq := uint64(1); seq <= size; seq++ {
			p, err := j.InclusionProof(seq, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Verify(h); err != nil {
				t.Fatalf("inclusion of %d in %d: %v", seq, size, err)
			}
		}
		for from := uint64(0); from <= size; from++ {
			p, err := j.ConsistencyProof(from, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Verify(headAt(t, j, from), h); err != nil {
				t.Fatalf("consistency %d -> %d: %v", from, size, err)
			}
		}
	}
}

// TestJournalTreeLarge grows a journal past two tile levels, reopening it
// between runs, and checks roots and proofs at sizes around the tile
// boundaries.
func TestJournalTreeLarge(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(2, 2))
	const n = 1<<16 + 2*256 + 3
	for done := 0; done < n; {
		j, err := journal.Open(dir, journal.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		k := min(n-done, rng.IntN(30000)+1)
		appendBatches(t, j, k, rng)
		done += k
		j.Close()
	}
	j, err := journal.Open(dir, journal.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, err := j.Verify(nil); err != nil {
		t.Fatal(err)
	}
	leaves := entryLeaves(t, j)
	last := headAt(t, j, n)
	if last.Root != refRoot(leaves) {
		t.Fatal("root differs from RFC 6962's")
	}
	for _, size := range []uint64{1, 255, 256, 257, 65535, 65536, 65537, n - 1, n} {
		h := headAt(t, j, size)
		if h.Root != refRoot(leaves[:size]) {
			t.Fatalf("RootAt(%d) differs from RFC 6962's", size)
		}
		for k := 0; k < 30; k++ {
			seq := uint64(rng.IntN(int(size))) + 1
			p, err := j.InclusionProof(seq, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Verify(h); err != nil {
				t.Fatalf("inclusion of %d in %d: %v", seq, size, err)
			}
		}
		p, err := j.ConsistencyProof(size, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Verify(h, last); err != nil {
			t.Fatalf("consistency %d -> %d: %v", size, n, err)
		}
	}
}

// TestJournalTreeBuiltForOldJournal opens a journal kept before the tree
// existed (no tiles, no marker): the tree is built from its entries.
func TestJournalTreeBuiltForOldJournal(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	appendBatches(t, j, 70000, rand.New(rand.NewPCG(3, 3)))
	want := j.TreeHead()
	j.Close()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteRange([]byte{'m'}, []byte{'u'}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	j = open(t, dir)
	defer j.Close()
	if got := j.TreeHead(); got != want {
		t.Fatalf("rebuilt tree head = %+v; want %+v", got, want)
	}
	if _, err := j.Verify(nil); err != nil {
		t.Fatal(err)
	}
}

// TestTreeTilesDamaged changes and removes stored tiles: Open or Verify
// names the first entry the damaged tile covers.
func TestTreeTilesDamaged(t *testing.T) {
	cases := []struct {
		name   string
		damage func(db *pebble.DB) error
		seq    uint64
	}{
		{"leaf changed", func(db *pebble.DB) error { return flipTileByte(db, 0, 1, 5*32+3) }, 256 + 6},
		{"hash over 256 changed", func(db *pebble.DB) error { return flipTileByte(db, 1, 0, 2*32) }, 2*256 + 1},
		{"newest full tile gone", func(db *pebble.DB) error { return db.Delete(tileKeyForTest(0, 3), pebble.Sync) }, 3*256 + 1},
		// The tree is checked a few thousand entries behind the chain:
		// its finding, the earlier, is the one named.
		{"leaf changed before a missing entry", func(db *pebble.DB) error {
			if err := flipTileByte(db, 0, 0, 4*32); err != nil {
				return err
			}
			return db.Delete(journal.Key(200), pebble.Sync)
		}, 5},
		{"leaf changed far before a missing entry", func(db *pebble.DB) error {
			if err := flipTileByte(db, 0, 0, 4*32); err != nil {
				return err
			}
			return db.Delete(journal.Key(60000), pebble.Sync)
		}, 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			j := open(t, dir)
			appendBatches(t, j, 1<<16+4*256+9, rand.New(rand.NewPCG(4, 4)))
			j.Close()
			db, err := pebble.Open(dir, &pebble.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.damage(db); err != nil {
				t.Fatal(err)
			}
			db.Close()
			j, err = journal.Open(dir, journal.Options{})
			if err == nil {
				defer j.Close()
				_, err = j.Verify(nil)
			}
			var bad *journal.BadEntryError
			if !errors.As(err, &bad) || bad.Seq != c.seq {
				t.Fatalf("Open() or Verify() = %v; want entry %d named", err, c.seq)
			}
		})
	}
}

func tileKeyForTest(level byte, index uint64) []byte {
	k := []byte{'t', level, 0, 0, 0, 0, 0, 0, 0, 0}
	for i := 0; i < 8; i++ {
		k[9-i] = byte(index >> (8 * i))
	}
	return k
}

func flipTileByte(db *pebble.DB, level byte, index uint64, off int) error {
	v, c, err := db.Get(tileKeyForTest(level, index))
	if err != nil {
		return err
	}
	b := append([]byte(nil), v...)
	c.Close()
	b[off] ^= 1
	return db.Set(tileKeyForTest(level, index), b, pebble.Sync)
}

// proofFixture is a journal of 300 entries with the proof of entry 123 and
// the consistency proof from 200, against heads at 200 and 300.
type proofFixture struct {
	incl     []byte
	cons     []byte
	old, new tree.Head
	entry123 []byte
}

func newProofFixture(t testing.TB) *proofFixture {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	appendBatches(t, j, 300, rand.New(rand.NewPCG(9, 9)))
	p, err := j.InclusionProof(123, 300)
	if err != nil {
		t.Fatal(err)
	}
	c, err := j.ConsistencyProof(200, 300)
	if err != nil {
		t.Fatal(err)
	}
	f := &proofFixture{old: headAt(t, j, 200), new: headAt(t, j, 300), entry123: p.Entry}
	f.incl, _ = json.Marshal(p)
	f.cons, _ = json.Marshal(c)
	return f
}

// checkMutated decodes a changed proof: one that decodes to anything but
// the genuine proof must not verify. (Without its entry, a proof claims
// less and is still true: the genuine proof without its entry.)
func (f *proofFixture) checkMutated(t testing.TB, incl, cons []byte) {
	var genuine journal.InclusionProof
	json.Unmarshal(f.incl, &genuine)
	var p journal.InclusionProof
	if json.Unmarshal(incl, &p) == nil && p.Entry == nil {
		genuine.Entry = nil
	}
	if json.Unmarshal(incl, &p) == nil && !reflect.DeepEqual(p, genuine) && p.Verify(f.new) == nil {
		t.Fatalf("a changed inclusion proof verified: %s", incl)
	}
	var genuineC tree.ConsistencyProof
	json.Unmarshal(f.cons, &genuineC)
	var c tree.ConsistencyProof
	if json.Unmarshal(cons, &c) == nil && !reflect.DeepEqual(c, genuineC) && c.Verify(f.old, f.new) == nil {
		t.Fatalf("a changed consistency proof verified: %s", cons)
	}
}

// TestProofEveryByteChanged changes every byte of an inclusion proof's JSON,
// of the entry it carries and of a consistency proof, each in several ways.
func TestProofEveryByteChanged(t *testing.T) {
	f := newProofFixture(t)
	var p journal.InclusionProof
	if err := json.Unmarshal(f.incl, &p); err != nil || p.Verify(f.new) != nil {
		t.Fatalf("genuine proof: %v", err)
	}
	var c tree.ConsistencyProof
	if err := json.Unmarshal(f.cons, &c); err != nil || c.Verify(f.old, f.new) != nil {
		t.Fatalf("genuine consistency proof: %v", err)
	}
	xors := []byte{1, 2, 4, 8, 0x10, 0x20, 0x40, 0x80}
	for i := range f.incl {
		for _, x := range xors {
			b := append([]byte(nil), f.incl...)
			b[i] ^= x
			f.checkMutated(t, b, f.cons)
		}
	}
	for i := range f.cons {
		for _, x := range xors {
			b := append([]byte(nil), f.cons...)
			b[i] ^= x
			f.checkMutated(t, f.incl, b)
		}
	}
	for i := range p.Entry {
		for _, x := range xors {
			q := p
			q.Entry = append([]byte(nil), p.Entry...)
			q.Entry[i] ^= x
			if q.Verify(f.new) == nil {
				t.Fatalf("entry byte %d ^ %#x verified", i, x)
			}
		}
	}
	// The proof checks against its head only: not the older head, nor a
	// head with any byte of its root changed, nor another time for the
	// newest entry.
	if p.Verify(f.old) == nil {
		t.Fatal("the proof verified against another head")
	}
	for i := 0; i < tree.HashSize; i++ {
		h := f.new
		h.Root[i] ^= 1
		if p.Verify(h) == nil || c.Verify(f.old, h) == nil {
			t.Fatalf("a proof verified against a head with root byte %d changed", i)
		}
	}
}

// FuzzProofJSON changes inclusion and consistency proofs as bytes: none
// that decodes to another proof verifies.
func FuzzProofJSON(f *testing.F) {
	fx := newProofFixture(f)
	f.Add(uint16(10), uint8(1), uint16(0), uint8(0))
	f.Add(uint16(200), uint8(0x20), uint16(30), uint8(4))
	f.Add(uint16(2), uint8(1), uint16(3), uint8(1))
	f.Fuzz(func(t *testing.T, i uint16, x uint8, k uint16, y uint8) {
		incl := append([]byte(nil), fx.incl...)
		cons := append([]byte(nil), fx.cons...)
		incl[int(i)%len(incl)] ^= x
		incl[int(k)%len(incl)] ^= y
		cons[int(i)%len(cons)] ^= x
		cons[int(k)%len(cons)] ^= y
		fx.checkMutated(t, incl, cons)
	})
}

// TestTreeReadsWhileAppending reads heads, roots and proofs while the
// journal grows (run it with -race): every proof verifies against the root
// at its size.
func TestTreeReadsWhileAppending(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	appendBatches(t, j, 10, rand.New(rand.NewPCG(1, 9)))
	done := make(chan struct{})
	errc := make(chan error, 3)
	for r := 0; r < 3; r++ {
		go func(r int) {
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			for {
				select {
				case <-done:
					errc <- nil
					return
				default:
				}
				h := j.TreeHead()
				h.Origin = "test"
				seq := rng.Uint64N(h.Size) + 1
				p, err := j.InclusionProof(seq, h.Size)
				if err == nil {
					err = p.Verify(h)
				}
				var c *tree.ConsistencyProof
				if err == nil {
					c, err = j.ConsistencyProof(seq, h.Size)
				}
				old := tree.Head{Origin: "test", Size: seq}
				if err == nil {
					old.Root, err = j.RootAt(seq)
				}
				if err == nil {
					err = c.Verify(old, h)
				}
				if err == nil && r == 0 {
					err = j.Scan(1, func(journal.Entry) error { return nil })
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}(r)
	}
	appendBatches(t, j, 20000, rand.New(rand.NewPCG(2, 9)))
	close(done)
	for r := 0; r < 3; r++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}
