package sumtree

import (
	"bytes"
	"testing"
)

// FuzzProofDecode feeds ReadProof and ParseProof arbitrary bytes: they
// never panic, and whatever ParseProof accepts encodes back to the same
// bytes (the encoding is canonical: one proof, one encoding).
func FuzzProofDecode(f *testing.F) {
	for _, n := range []int{1, 2, 7, 300} {
		_, b := validProof(f, n, uint64(n/2))
		f.Add(b)
	}
	f.Add([]byte(ProofMagic))
	f.Add([]byte(`{"proof":{"version":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ReadProof(b)
		p, err := ParseProof(b)
		if err != nil {
			return
		}
		out, err := p.MarshalBinary()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("ParseProof accepted bytes it does not encode back to (%v)", err)
		}
		p.Verify()
	})
}

// FuzzProofMutation changes one byte of a true proof to another value:
// the result never verifies.
func FuzzProofMutation(f *testing.F) {
	_, b := validProof(f, 37, 20)
	f.Add(uint16(0), byte(1))
	f.Add(uint16(50), byte(0xff))
	f.Add(uint16(len(b)-1), byte(0))
	f.Fuzz(func(t *testing.T, pos uint16, v byte) {
		i := int(pos) % len(b)
		if b[i] == v {
			return
		}
		x := append([]byte(nil), b...)
		x[i] = v
		if p, err := ParseProof(x); err == nil && p.Verify() == nil {
			t.Fatalf("byte %d changed from %#x to %#x: the proof verifies", i, b[i], v)
		}
	})
}
