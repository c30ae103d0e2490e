package tree

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func testSigner(t testing.TB, origin string) *Signer {
	t.Helper()
	skey, err := GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testVerifier(t testing.TB, s *Signer) *Verifier {
	t.Helper()
	v, err := NewVerifier(s.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var sampleHead = Head{Size: 1234567, Root: LeafHash([]byte("root")), Time: 1733040000123456789}

func TestHeadSignVerify(t *testing.T) {
	s := testSigner(t, "kinko.journal/test")
	note, err := s.Sign(sampleHead)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(note), "\n")
	if len(lines) != 7 || lines[0] != "kinko.journal/test" || lines[1] != "1234567" || lines[3] != "time 1733040000123456789" || lines[4] != "" || !strings.HasPrefix(lines[5], "\u2014 kinko.journal/test ") {
		t.Fatalf("signed head:\n%s", note)
	}
	h, err := testVerifier(t, s).Verify(note)
	want := sampleHead
	want.Origin = "kinko.journal/test"
	if err != nil || h != want {
		t.Fatalf("Verify() = %+v, %v; want %+v", h, err, want)
	}
	if p, err := ParseHead(note); err != nil || p != want {
		t.Fatalf("ParseHead() = %+v, %v", p, err)
	}
	n, err := ParseNote(note)
	if err != nil || !bytes.Equal(n.Marshal(), note) {
		t.Fatalf("ParseNote round trip: %v", err)
	}
	// A witness's cosignature (an unknown key) is ignored.
	w := testSigner(t, "witness.example/w1")
	wn, err := w.SignText(n.Text)
	if err != nil {
		t.Fatal(err)
	}
	wsig, _ := ParseNote(wn)
	n.Sigs = append(n.Sigs, wsig.Sigs...)
	if h, err := testVerifier(t, s).Verify(n.Marshal()); err != nil || h != want {
		t.Fatalf("Verify() with a cosignature = %+v, %v", h, err)
	}
	// The empty tree has a head too.
	empty, err := s.Sign(Head{Root: EmptyRoot})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := testVerifier(t, s).Verify(empty); err != nil || h.Size != 0 || h.Root != EmptyRoot {
		t.Fatalf("empty head: %+v, %v", h, err)
	}
}

func TestHeadRefused(t *testing.T) {
	s := testSigner(t, "kinko.journal/test")
	v := testVerifier(t, s)
	note, err := s.Sign(sampleHead)
	if err != nil {
		t.Fatal(err)
	}
	// Signed by another key of the same name.
	other := testSigner(t, "kinko.journal/test")
	forged, _ := other.Sign(sampleHead)
	if _, err := v.Verify(forged); !errors.Is(err, ErrHeadSignature) {
		t.Fatalf("head signed by another key: %v", err)
	}
	// Signed by the log's key, for another origin.
	h := sampleHead
	h.Origin = "kinko.journal/other"
	text := h.Text()
	wrongOrigin, err := s.SignText(text)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(wrongOrigin); !errors.Is(err, ErrHeadOrigin) {
		t.Fatalf("head for another origin: %v", err)
	}
	if _, err := s.Sign(h); !errors.Is(err, ErrHeadOrigin) {
		t.Fatalf("Sign() of another origin's head: %v", err)
	}
	// Signed by the other log's own key: unknown to this verifier.
	o := testSigner(t, "kinko.journal/other")
	oh, _ := o.Sign(Head{Origin: "kinko.journal/other", Size: 3, Root: EmptyRoot})
	if _, err := v.Verify(oh); !errors.Is(err, ErrHeadSignature) {
		t.Fatalf("head of another log: %v", err)
	}
	// A bad signature by the log's key beside a good one.
	n, _ := ParseNote(note)
	bad := append([]byte(nil), n.Sigs[0].Sig...)
	bad[0] ^= 1
	n.Sigs = append(n.Sigs, NoteSignature{Name: n.Sigs[0].Name, KeyID: n.Sigs[0].KeyID, Sig: bad})
	if _, err := v.Verify(n.Marshal()); !errors.Is(err, ErrHeadSignature) {
		t.Fatalf("head with a bad signature by the log's key: %v", err)
	}
}

// TestHeadEveryByteChanged changes every byte of a signed head, each in
// several ways: none verifies.
func TestHeadEveryByteChanged(t *testing.T) {
	s := testSigner(t, "kinko.journal/test")
	v := testVerifier(t, s)
	note, _ := s.Sign(sampleHead)
	for i := range note {
		for _, x := range []byte{1, 2, 4, 8, 0x10, 0x20, 0x40, 0x80, 0xff} {
			b := append([]byte(nil), note...)
			b[i] ^= x
			if h, err := v.Verify(b); err == nil {
				t.Fatalf("byte %d ^ %#x verified: %+v", i, x, h)
			}
		}
	}
	// Cut short anywhere, or with anything appended to a line.
	for i := range note {
		if _, err := v.Verify(note[:i]); err == nil {
			t.Fatalf("head cut to %d bytes verified", i)
		}
	}
}

func TestHeadKeysRefused(t *testing.T) {
	s := testSigner(t, "kinko.journal/test")
	vk := s.VerifierKey()
	for _, k := range []string{"", "a+b", "kinko.journal/test+00000000+" + strings.SplitN(vk, "+", 3)[2], strings.ToUpper(vk), vk + "A"} {
		if _, err := NewVerifier(k); err == nil {
			t.Errorf("NewVerifier(%q) accepted", k)
		}
	}
	if _, err := NewSigner(vk); err == nil {
		t.Error("NewSigner() took a public key")
	}
	if _, err := GenerateKey("has space"); err == nil {
		t.Error("GenerateKey() took an origin with a space")
	}
}

// FuzzHead parses anything as a signed head. Whatever verifies must be the
// genuine head's text (a signature cannot be forged, and one head has one
// encoding), and whatever parses must re-encode to the same bytes.
func FuzzHead(f *testing.F) {
	s := testSigner(f, "kinko.journal/fuzz")
	v := testVerifier(f, s)
	note, _ := s.Sign(sampleHead)
	genuine, _ := ParseNote(note)
	f.Add(note)
	f.Add([]byte("kinko.journal/fuzz\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\ntime 0\n\n\u2014 kinko.journal/fuzz AAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseNote(b)
		if err != nil {
			return
		}
		if !bytes.Equal(n.Marshal(), b) {
			t.Fatalf("ParseNote(%q) re-encodes as %q", b, n.Marshal())
		}
		if h, err := ParseHeadText(n.Text); err == nil && !bytes.Equal(h.Text(), n.Text) {
			t.Fatalf("head text %q re-encodes as %q", n.Text, h.Text())
		}
		h, err := v.Verify(b)
		if err != nil {
			return
		}
		if !bytes.Equal(n.Text, genuine.Text) {
			t.Fatalf("a head other than the signed one verified: %+v", h)
		}
	})
}

// FuzzProofMutation changes a consistency or inclusion proof (a hash of its
// path, its index or leaf, a root): a changed proof never verifies.
func FuzzProofMutation(f *testing.F) {
	st := memStore{}
	tr := Empty(st)
	const n = 1000
	p := tr.Begin()
	var leaves []Hash
	for i := uint64(0); i < n; i++ {
		leaves = append(leaves, leafOf(i))
		p.Append(leaves[i])
	}
	st.put(p.Tiles())
	if err := tr.Commit(p); err != nil {
		f.Fatal(err)
	}
	f.Add(uint16(5), uint16(700), uint8(0), uint16(0), uint8(1))
	f.Add(uint16(999), uint16(1000), uint8(1), uint16(3), uint8(0x80))
	f.Add(uint16(0), uint16(1), uint8(2), uint16(0), uint8(1))
	f.Add(uint16(256), uint16(512), uint8(3), uint16(0), uint8(1))
	f.Fuzz(func(t *testing.T, a, b uint16, what uint8, where uint16, x uint8) {
		from, to := uint64(a)%n, uint64(b)%n+1
		if from > to {
			from, to = to, from
		}
		if x == 0 {
			x = 1
		}
		root1, _ := tr.RootAt(from)
		root2, _ := tr.RootAt(to)
		cons, err := tr.ConsistencyPath(from, to)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyConsistency(from, to, cons, root1, root2); err != nil {
			t.Fatalf("genuine consistency %d -> %d: %v", from, to, err)
		}
		idx := from
		if idx == to {
			idx = to - 1
		}
		incl, err := tr.InclusionPath(idx, to)
		if err != nil {
			t.Fatal(err)
		}
		leaf := leaves[idx]
		switch what % 8 {
		case 0: // a byte of a consistency path hash
			if len(cons) == 0 {
				return
			}
			cons[int(where)%len(cons)][int(where/64)%HashSize] ^= x
			if VerifyConsistency(from, to, cons, root1, root2) == nil {
				t.Fatalf("consistency %d -> %d verified with a changed hash", from, to)
			}
		case 1: // a byte of an inclusion path hash
			if len(incl) == 0 {
				return
			}
			incl[int(where)%len(incl)][int(where/64)%HashSize] ^= x
			if VerifyInclusion(idx, to, leaf, incl, root2) == nil {
				t.Fatalf("inclusion %d in %d verified with a changed hash", idx, to)
			}
		case 2: // the leaf
			leaf[int(where)%HashSize] ^= x
			if VerifyInclusion(idx, to, leaf, incl, root2) == nil {
				t.Fatal("inclusion verified with a changed leaf")
			}
		case 3: // the index
			j := uint64(where) % to
			if j != idx && VerifyInclusion(j, to, leaf, incl, root2) == nil {
				t.Fatalf("leaf %d verified at index %d", idx, j)
			}
		case 4: // the older root of a consistency proof
			r := root1
			r[int(where)%HashSize] ^= x
			if VerifyConsistency(from, to, cons, r, root2) == nil {
				t.Fatal("consistency verified from a changed root")
			}
		case 5: // a hash dropped or added
			if len(cons) > 0 && VerifyConsistency(from, to, cons[:len(cons)-1], root1, root2) == nil {
				t.Fatal("consistency verified with a hash dropped")
			}
			if VerifyInclusion(idx, to, leaf, append(incl, leaf), root2) == nil {
				t.Fatal("inclusion verified with a hash added")
			}
		case 6: // the roots
			r := root2
			r[int(where)%HashSize] ^= x
			// (Every tree extends the empty one: from 0, any newer root
			// is consistent.)
			if VerifyInclusion(idx, to, leaf, incl, r) == nil || (from > 0 && VerifyConsistency(from, to, cons, root1, r) == nil) {
				t.Fatal("a proof verified against a changed root")
			}
		case 7: // the leaf of another index
			// (A proof's size is bound by the signed head it is checked
			// against, not by the path: the path of a leaf in the tree of
			// 466 leaves also "verifies" as one of 467 against the same
			// root. InclusionProof.Verify checks the size against the
			// head's.)
			j := uint64(where) % to
			if leaves[j] != leaf && VerifyInclusion(idx, to, leaves[j], incl, root2) == nil {
				t.Fatalf("leaf %d verified at index %d", j, idx)
			}
		}
	})
}
