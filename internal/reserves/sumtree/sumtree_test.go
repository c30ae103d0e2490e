package sumtree

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"kinko/internal/ledger"
)

// randomLeaves returns n leaves with salts and balances drawn from seed;
// one balance in sixteen is zero, one in sixteen above 2^64.
func randomLeaves(n int, seed uint64) []Leaf {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]Leaf, n)
	for i := range out {
		for j := 0; j < 32; j += 8 {
			binary.BigEndian.PutUint64(out[i].Salt[j:], r.Uint64())
		}
		out[i].Account = 1_000_000 + uint64(i)
		switch r.IntN(16) {
		case 0:
		case 1:
			out[i].Balance = ledger.Amount{Hi: r.Uint64N(1 << 20), Lo: r.Uint64()}
		default:
			out[i].Balance = ledger.AmountOf(r.Uint64N(1e12))
		}
	}
	return out
}

// refTop is the tree's top computed the plain way: the leaves in tree
// order, padded to a power of two, paired level by level.
func refTop(t *testing.T, tr *Tree) Node {
	t.Helper()
	n := tr.Size()
	if n == 0 {
		return PadLeaf
	}
	level := make([]Node, 1<<Depth(uint64(n)))
	for i := range level {
		level[i] = PadLeaf
		if i < n {
			l := tr.Leaf(i)
			level[i] = l.Node()
		}
	}
	for len(level) > 1 {
		next := make([]Node, len(level)/2)
		for i := range next {
			var err error
			if next[i], err = Parent(level[2*i], level[2*i+1]); err != nil {
				t.Fatal(err)
			}
		}
		level = next
	}
	return level[0]
}

func sum(t *testing.T, ls []Leaf) ledger.Amount {
	var s ledger.Amount
	for _, l := range ls {
		var o bool
		if s, o = s.Add(l.Balance); o {
			t.Fatal("test sum overflows")
		}
	}
	return s
}

// TestLiabilitiesTreeSizes builds trees of every size from 1 to 300 and a
// few large ones: the root is the plain computation's, the total the sum
// of the balances, the leaves in salt order; every leaf's proof verifies,
// round-trips through both encodings and names its leaf.
func TestLiabilitiesTreeSizes(t *testing.T) {
	sizes := []int{}
	for n := 1; n <= 300; n++ {
		sizes = append(sizes, n)
	}
	sizes = append(sizes, 1023, 1024, 1025, 4097)
	for _, n := range sizes {
		leaves := randomLeaves(n, uint64(n))
		want := sum(t, leaves)
		tr, err := Build(leaves, "BTC", 42, 1_700_000_000_123_456_789)
		if err != nil {
			t.Fatalf("Build(%d) = %v", n, err)
		}
		root := tr.Root()
		top := refTop(t, tr)
		if root.Total != want || top.Sum != want || root.Size != uint64(n) || root.Hash != RootHash("BTC", 42, 1_700_000_000_123_456_789, uint64(n), top) {
			t.Fatalf("Build(%d): root %+v; want total %s and hash over %s", n, root, want, top.Hash)
		}
		for i := 1; i < n; i++ {
			a, b := tr.Leaf(i-1), tr.Leaf(i)
			if bytes.Compare(a.Salt[:], b.Salt[:]) >= 0 {
				t.Fatalf("Build(%d): leaves %d and %d out of salt order", n, i-1, i)
			}
		}
		step := 1
		if n > 100 {
			step = 13
		}
		for i := 0; i < n; i += step {
			l := tr.Leaf(i)
			idx, ok := tr.Find(l.Salt, l.Account)
			if !ok || idx != uint64(i) {
				t.Fatalf("Find(leaf %d) = %d, %v", i, idx, ok)
			}
			p, err := tr.Prove(uint64(i))
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Path) != Depth(uint64(n)) {
				t.Fatalf("n=%d: proof of %d siblings; want %d", n, len(p.Path), Depth(uint64(n)))
			}
			if err := p.VerifyRoot(root.Hash); err != nil {
				t.Fatalf("n=%d leaf %d: VerifyRoot = %v", n, i, err)
			}
			if err := p.Check(l.Account, l.Balance); err != nil {
				t.Fatalf("n=%d leaf %d: Check = %v", n, i, err)
			}
			b, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			q, err := ParseProof(b)
			if err != nil {
				t.Fatalf("n=%d leaf %d: ParseProof = %v", n, i, err)
			}
			if err := q.VerifyRoot(root.Hash); err != nil {
				t.Fatalf("n=%d leaf %d: decoded proof: %v", n, i, err)
			}
			j, err := p.JSON()
			if err != nil {
				t.Fatal(err)
			}
			js, _ := json.Marshal(j)
			r, err := ReadProof(js)
			if err != nil {
				t.Fatalf("n=%d leaf %d: ReadProof(JSON) = %v", n, i, err)
			}
			if rb, _ := r.MarshalBinary(); !bytes.Equal(rb, b) {
				t.Fatalf("n=%d leaf %d: JSON round trip changed the proof", n, i)
			}
		}
		if _, err := tr.Prove(uint64(n)); !errors.Is(err, ErrIndex) {
			t.Fatalf("Prove(%d) of %d leaves = %v; want ErrIndex", n, n, err)
		}
	}
}

// TestLiabilitiesTreeEdges: the empty tree, an invalid asset, identical
// leaves, a total that overflows.
func TestLiabilitiesTreeEdges(t *testing.T) {
	tr, err := Build(nil, "JPY", 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if r := tr.Root(); r.Size != 0 || !r.Total.IsZero() || r.Hash != RootHash("JPY", 1, 2, 0, PadLeaf) {
		t.Fatalf("empty tree root %+v", r)
	}
	for _, code := range []string{"", "btc", "TOOLONGCODE", "B-C"} {
		if _, err := Build(nil, code, 1, 2); !errors.Is(err, ErrAsset) {
			t.Errorf("Build(asset %q) = %v; want ErrAsset", code, err)
		}
	}
	ls := randomLeaves(3, 1)
	ls[2] = ls[0]
	if _, err := Build(ls, "BTC", 1, 2); !errors.Is(err, ErrDuplicate) {
		t.Errorf("Build(identical leaves) = %v; want ErrDuplicate", err)
	}
	max := ledger.Amount{Hi: ^uint64(0), Lo: ^uint64(0)}
	ls = randomLeaves(5, 2)
	ls[3].Balance = max
	if _, err := Build(ls, "BTC", 1, 2); !errors.Is(err, ErrOverflow) {
		t.Errorf("Build(total above 2^128) = %v; want ErrOverflow", err)
	}
}

// TestLiabilitiesEncodingVectors pins the encodings with values computed
// by hand from their definitions, so that another implementation can be
// checked against them (docs/reserves.md quotes them).
func TestLiabilitiesEncodingVectors(t *testing.T) {
	var salt [32]byte
	for i := range salt {
		salt[i] = byte(i)
	}
	l := Leaf{Salt: salt, Account: 1_000_001, Balance: ledger.AmountOf(150_000_000)}
	enc, _ := hex.DecodeString("00" + "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" + "00000000000f4241" + "00000000000000000000000008f0d180")
	if got, want := l.Node().Hash, Hash(sha256.Sum256(enc)); got != want {
		t.Fatalf("leaf hash %s; want %s", got, want)
	}
	r := Node{Hash: Hash(sha256.Sum256([]byte("r"))), Sum: ledger.AmountOf(50_000_000)}
	p, err := Parent(l.Node(), r)
	if err != nil {
		t.Fatal(err)
	}
	lh := l.Node().Hash
	enc = append([]byte{0x01}, lh[:]...)
	enc = append(enc, make([]byte, 12)...)
	enc = binary.BigEndian.AppendUint32(enc, 150_000_000)
	enc = append(enc, r.Hash[:]...)
	enc = append(enc, make([]byte, 12)...)
	enc = binary.BigEndian.AppendUint32(enc, 50_000_000)
	if want := Hash(sha256.Sum256(enc)); p.Hash != want || p.Sum != ledger.AmountOf(200_000_000) {
		t.Fatalf("node %s sum %s; want %s 200000000", p.Hash, p.Sum, want)
	}
	if want := Hash(sha256.Sum256([]byte{0x02})); PadLeaf.Hash != want || !PadLeaf.Sum.IsZero() {
		t.Fatalf("padding leaf %v", PadLeaf)
	}
	enc = []byte{0x03, 3, 'B', 'T', 'C', 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 2}
	enc = append(enc, p.Hash[:]...)
	enc = append(enc, make([]byte, 12)...)
	enc = binary.BigEndian.AppendUint32(enc, 200_000_000)
	if got, want := RootHash("BTC", 42, 7, 2, p), Hash(sha256.Sum256(enc)); got != want {
		t.Fatalf("root hash %s; want %s", got, want)
	}
	// The same two-leaf tree through Build: the leaf order depends on the
	// salts only.
	other := Leaf{Salt: [32]byte{0xff}, Account: 5, Balance: ledger.AmountOf(50_000_000)}
	tr, err := Build([]Leaf{other, l}, "BTC", 42, 7)
	if err != nil {
		t.Fatal(err)
	}
	top, _ := Parent(l.Node(), other.Node())
	if tr.Root().Hash != RootHash("BTC", 42, 7, 2, top) {
		t.Fatalf("two-leaf tree root %s", tr.Root().Hash)
	}
	// The same values as computed with Python's hashlib (docs/reserves.md).
	for _, c := range []struct{ got, want string }{
		{l.Node().Hash.String(), "c18df5e112478e1623f1bc1e7d803c26e8d874480221c32012d1f74e26a0ffd4"},
		{p.Hash.String(), "450925de274d80336b5ace06553bfd3fc0dcc6300361f25e71db69cb5619724d"},
		{RootHash("BTC", 42, 7, 2, p).String(), "cd1e6526235d52ee8e3d3bdb1c246d3e686ff8065d98cce550c7d5ac93b8e83b"},
	} {
		if c.got != c.want {
			t.Errorf("vector %s; want %s", c.got, c.want)
		}
	}
}

// validProof returns a proof of a tree of n leaves, its encoding and root.
func validProof(t testing.TB, n int, i uint64) (*Proof, []byte) {
	tr, err := Build(randomLeaves(n, uint64(n)*31), "BTC", 9, 1_700_000_000_000_000_000)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tr.Prove(i)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return p, b
}

// TestProofEveryByteChanged changes every byte of proofs of several tree
// sizes to several other values, cuts them at every length and appends a
// byte: not one altered proof decodes and verifies.
func TestProofEveryByteChanged(t *testing.T) {
	for _, c := range []struct {
		n int
		i uint64
	}{{1, 0}, {2, 1}, {3, 2}, {5, 0}, {8, 5}, {300, 137}} {
		_, b := validProof(t, c.n, c.i)
		accepts := func(x []byte) bool {
			p, err := ParseProof(x)
			return err == nil && p.Verify() == nil
		}
		if !accepts(b) {
			t.Fatalf("n=%d: the true proof fails", c.n)
		}
		x := make([]byte, len(b))
		for pos := range b {
			for _, v := range []byte{b[pos] ^ 0x01, b[pos] ^ 0x80, b[pos] + 1, b[pos] - 1, 0x00, 0xff} {
				if v == b[pos] {
					continue
				}
				copy(x, b)
				x[pos] = v
				if accepts(x) {
					t.Fatalf("n=%d: byte %d changed from %#x to %#x, and the proof still verifies", c.n, pos, b[pos], v)
				}
			}
		}
		for cut := 0; cut < len(b); cut++ {
			if accepts(b[:cut]) {
				t.Fatalf("n=%d: cut to %d bytes, the proof verifies", c.n, cut)
			}
		}
		if accepts(append(append([]byte(nil), b...), 0)) {
			t.Fatalf("n=%d: a byte appended, the proof verifies", c.n)
		}
	}
}

// TestProofJSONForm: the readable fields must match the encoded proof;
// without the encoding they are the proof; both forms and the hex are
// read; a wrong root hash, account or balance is refused.
func TestProofJSONForm(t *testing.T) {
	p, b := validProof(t, 7, 3)
	j, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*ProofJSON){
		"balance": func(j *ProofJSON) { j.Leaf.Balance, _ = j.Leaf.Balance.Add(ledger.AmountOf(1)) },
		"account": func(j *ProofJSON) { j.Leaf.Account++ },
		"sum":     func(j *ProofJSON) { j.Path[1].Sum = ledger.AmountOf(0) },
		"total":   func(j *ProofJSON) { j.Root.Total = ledger.AmountOf(1) },
		"time":    func(j *ProofJSON) { j.Time = "2030-01-01T00:00:00Z" },
	} {
		k := *j
		k.Path = append([]NodeJSON(nil), j.Path...)
		edit(&k)
		js, _ := json.Marshal(&k)
		if _, err := ReadProof(js); !errors.Is(err, ErrProofMalformed) || !strings.Contains(err.Error(), "readable fields differ") {
			t.Errorf("%s edited beside the encoding: ReadProof = %v", name, err)
		}
		// Without the encoding the edited fields are the proof: it fails
		// to verify.
		k.Encoded = ""
		js, _ = json.Marshal(&k)
		if q, err := ReadProof(js); err == nil && q.Verify() == nil && q.Check(p.Leaf.Account, p.Leaf.Balance) == nil {
			t.Errorf("%s edited, no encoding: the proof verifies and names the customer's balance", name)
		}
	}
	api, _ := json.Marshal(map[string]any{"proof": j, "published_seq": 10})
	hexForm := []byte(hex.EncodeToString(b) + "\n")
	for name, in := range map[string][]byte{"api": api, "hex": hexForm, "binary": b} {
		q, err := ReadProof(in)
		if err != nil || q.VerifyRoot(p.Root.Hash) != nil {
			t.Errorf("ReadProof(%s) = %v", name, err)
		}
	}
	if err := p.VerifyRoot(Hash{1}); !errors.Is(err, ErrProofRoot) {
		t.Errorf("VerifyRoot(other root) = %v; want ErrProofRoot", err)
	}
	if err := p.Check(p.Leaf.Account, ledger.AmountOf(1)); !errors.Is(err, ErrProofLeaf) {
		t.Errorf("Check(other balance) = %v; want ErrProofLeaf", err)
	}
	if err := p.Check(p.Leaf.Account+1, p.Leaf.Balance); !errors.Is(err, ErrProofLeaf) {
		t.Errorf("Check(other account) = %v; want ErrProofLeaf", err)
	}
	if _, err := ReadProof([]byte("not a proof")); !errors.Is(err, ErrProofMalformed) {
		t.Errorf("ReadProof(garbage) = %v", err)
	}
}
