package wallet

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
)

var regtest = &chaincfg.RegressionNetParams

// TestChecksumVector is BIP380's checksum test vector.
func TestChecksumVector(t *testing.T) {
	if got, _ := Checksum("raw(deadbeef)"); got != "89f8spxm" {
		t.Fatalf("Checksum(raw(deadbeef)) = %s; want 89f8spxm", got)
	}
}

// TestBIP32Vector1 checks the key derivation the wallets stand on against
// BIP32's first test vector (seed 000102...0f, chain m and m/0H).
func TestBIP32Vector1(t *testing.T) {
	seed := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	m, err := hdkeychain.NewMaster(seed, &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := m.Neuter()
	if got := pub.String(); got != "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8" {
		t.Fatalf("m/ xpub = %s", got)
	}
	if got := m.String(); got != "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi" {
		t.Fatalf("m/ xprv = %s", got)
	}
	c, _ := m.Derive(hdkeychain.HardenedKeyStart)
	cp, _ := c.Neuter()
	if got := cp.String(); got != "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw" {
		t.Fatalf("m/0H xpub = %s", got)
	}
}

// testKeys returns three masters from fixed seeds and the 2-of-3 descriptor
// over their BIP48 account keys.
func testKeys(t testing.TB) ([]*hdkeychain.ExtendedKey, *Descriptor) {
	t.Helper()
	var accounts []*hdkeychain.ExtendedKey
	d := &Descriptor{M: 2, Net: regtest}
	for i := byte(1); i <= 3; i++ {
		m, err := hdkeychain.NewMaster(bytes.Repeat([]byte{i}, 32), regtest)
		if err != nil {
			t.Fatal(err)
		}
		k, acct, err := AccountKey(m, regtest, 0)
		if err != nil {
			t.Fatal(err)
		}
		d.Keys = append(d.Keys, k)
		accounts = append(accounts, acct)
	}
	return accounts, d
}

func TestDescriptorRoundTrip(t *testing.T) {
	_, d := testKeys(t)
	s := d.String()
	if !strings.HasPrefix(s, "wsh(sortedmulti(2,[") || !strings.Contains(s, "/48h/1h/0h/2h]tpub") || !strings.HasSuffix(s[:len(s)-9], "/0/*))") {
		t.Fatalf("descriptor = %s", s)
	}
	p, err := Parse(s, regtest)
	if err != nil {
		t.Fatal(err)
	}
	if p.String() != s {
		t.Fatalf("Parse(s).String() = %s; want %s", p.String(), s)
	}
	// The first addresses are the same whichever way the descriptor came.
	for i := uint32(0); i < 5; i++ {
		a1, ws, _ := d.Address(0, i)
		a2, _, _ := p.Address(0, i)
		if a1.String() != a2.String() || !strings.HasPrefix(a1.String(), "bcrt1q") {
			t.Fatalf("address %d = %s / %s", i, a1, a2)
		}
		h := sha256.Sum256(ws)
		if !bytes.Equal(a1.(*btcutil.AddressWitnessScriptHash).WitnessProgram(), h[:]) {
			t.Fatalf("address %d does not commit to its witness script", i)
		}
	}
}

func TestDescriptorBadInput(t *testing.T) {
	_, d := testKeys(t)
	s := d.String()
	flipped := []byte(s)
	flipped[len(flipped)-1] ^= 1
	mainKey, _ := hdkeychain.NewMaster(bytes.Repeat([]byte{9}, 32), &chaincfg.MainNetParams)
	mk, _, _ := AccountKey(mainKey, &chaincfg.MainNetParams, 0)
	mainDesc := (&Descriptor{M: 1, Keys: []Key{mk}, Net: &chaincfg.MainNetParams}).String()
	body := func(x string) string { c, _ := Checksum(x); return x + "#" + c }
	cases := []struct {
		in   string
		want error
	}{
		{string(flipped), ErrChecksum},
		{strings.SplitN(s, "#", 2)[0], ErrNoChecksum},
		{mainDesc, ErrNetwork},
		{body("wpkh([00000000/84h/1h/0h]tpubD/0/*)"), ErrUnsupported},
		{body("wsh(sortedmulti(4," + strings.SplitN(strings.TrimPrefix(s, "wsh(sortedmulti(2,"), "#", 2)[0]), ErrDescriptor},
		{body("wsh(sortedmulti(0,[00000000]x/0/*))"), ErrDescriptor},
		{strings.Repeat("a", MaxDescriptorLen+1), ErrDescriptor},
	}
	for _, c := range cases {
		if _, err := Parse(c.in, regtest); !errors.Is(err, c.want) {
			t.Errorf("Parse(%.60s...) = %v; want %v", c.in, err, c.want)
		}
	}
}

// TestTwoOfThreeSpends proves the witness script and keys: two of the three
// account keys sign a spend of an output at the descriptor's address, and
// btcd's script engine accepts it; one signature is not enough.
func TestTwoOfThreeSpends(t *testing.T) {
	accts, d := testKeys(t)
	addr, ws, err := d.Address(0, 3)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := txscript.PayToAddrScript(addr)
	prev := &wireOutput{value: 50_000, pkScript: pk}
	tx, fetcher := spendOf(prev)
	sigs := func(n int) [][]byte {
		hashes := txscript.NewTxSigHashes(tx, fetcher)
		var out [][]byte
		for _, a := range accts[:n] {
			child, _ := a.Derive(0)
			child, _ = child.Derive(3)
			priv, _ := child.ECPrivKey()
			sig, err := txscript.RawTxInWitnessSignature(tx, hashes, 0, prev.value, ws, txscript.SigHashAll, priv)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, sig)
		}
		return out
	}
	// CHECKMULTISIG wants the signatures in key order: order them by
	// trying both orders.
	try := func(s [][]byte) error {
		tx.TxIn[0].Witness = append(append([][]byte{nil}, s...), ws)
		vm, err := txscript.NewEngine(prev.pkScript, tx, 0, txscript.StandardVerifyFlags, nil, txscript.NewTxSigHashes(tx, fetcher), prev.value, fetcher)
		if err != nil {
			return err
		}
		return vm.Execute()
	}
	two := sigs(2)
	if err := try(two); err != nil {
		if err2 := try([][]byte{two[1], two[0]}); err2 != nil {
			t.Fatalf("2-of-3 spend rejected: %v / %v", err, err2)
		}
	}
	if err := try(sigs(1)); err == nil {
		t.Fatal("one signature spent a 2-of-3 output")
	}

}

func TestBook(t *testing.T) {
	_, d := testKeys(t)
	b := NewBook()
	if err := b.Add(7, d, 0, 0, 20); err != nil {
		t.Fatal(err)
	}
	b.Add(7, d, 1, 0, 5)
	s, _ := d.PkScript(0, 13)
	if w, i, ok := b.Lookup(s); !ok || w != 7 || i != 13 {
		t.Fatalf("Lookup = %d %d %v", w, i, ok)
	}
	change, _ := d.PkScript(1, 2)
	if _, _, ok := b.Lookup(change); ok {
		t.Fatal("a change script counted as a deposit address")
	}
	if p, ok := b.Find(change); !ok || p.Branch != 1 {
		t.Fatal("change script not ours")
	}
}

func FuzzParse(f *testing.F) {
	_, d := testKeys(f)
	f.Add(d.String())
	f.Add("raw(deadbeef)#89f8spxm")
	f.Add("wsh(sortedmulti(1,[00000000/48h]tpub/0/*))#aaaaaaaa")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s, regtest)
		if err != nil {
			return
		}
		if p.String() != s && !strings.Contains(s, "'") && !strings.Contains(s, "/1/*") {
			t.Fatalf("Parse(%q).String() = %q", s, p.String())
		}
	})
}

// BenchmarkDeriveAddress derives 2-of-3 P2WSH receive addresses.
func BenchmarkDeriveAddress(b *testing.B) {
	_, d := testKeys(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := d.Address(0, uint32(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "addresses/s")
}
