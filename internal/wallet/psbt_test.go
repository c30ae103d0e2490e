package wallet

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// ceremony returns the three account keys and fingerprints, a Set with the
// 2-of-3 wallet, and an unsigned PSBT spending two of its outputs.
func ceremony(t testing.TB) ([]*hdkeychain.ExtendedKey, [][4]byte, *Set, *psbt.Packet) {
	accts, d := testKeys(t)
	var fps [][4]byte
	for _, k := range d.Keys {
		fps = append(fps, k.Fingerprint)
	}
	set, err := NewSet([]Named{{ID: 1, Kind: "cold-customer", Descriptor: d.String()}}, d)
	if err != nil {
		t.Fatal(err)
	}
	w := set.Wallets[0]
	utxos := []UTXO{
		{OutPoint: wire.OutPoint{Hash: chainhash.Hash{1}, Index: 0}, Value: 60_000, Wallet: w, Branch: 0, Index: 3},
		{OutPoint: wire.OutPoint{Hash: chainhash.Hash{2}, Index: 1}, Value: 40_000, Wallet: w, Branch: 1, Index: 0},
	}
	ext, _ := btcutil.NewAddressWitnessPubKeyHash(make([]byte, 20), regtest)
	pk, _ := txscript.PayToAddrScript(ext)
	p, err := Build(utxos, []*wire.TxOut{wire.NewTxOut(70_000, pk)}, w, 5, 10)
	if err != nil {
		t.Fatal(err)
	}
	return accts, fps, set, p
}

func clonePSBT(t testing.TB, p *psbt.Packet) *psbt.Packet {
	s, err := Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := Read(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestCeremonyTwoOfThree signs a PSBT with two keys separately, combines,
// finalizes, and runs btcd's script engine over every input.
func TestCeremonyTwoOfThree(t *testing.T) {
	accts, fps, set, p := ceremony(t)
	desc, err := set.Describe(p, nil)
	if err != nil || desc.Refusal() != nil {
		t.Fatal(err, desc.Refusal())
	}
	text := desc.String()
	if !strings.Contains(text, "ours: wallet 1 (cold-customer) receive #3") || !strings.Contains(text, "[payment to an outside address]") || !strings.Contains(text, "change #5") {
		t.Fatalf("description:\n%s", text)
	}
	a, b := clonePSBT(t, p), clonePSBT(t, p)
	if n, err := set.Sign(a, accts[0], fps[0]); err != nil || n != 2 {
		t.Fatalf("sign with key 1 = %d, %v", n, err)
	}
	if n, err := set.Sign(b, accts[2], fps[2]); err != nil || n != 2 {
		t.Fatalf("sign with key 3 = %d, %v", n, err)
	}
	if _, err := Finalize(clonePSBT(t, a)); err == nil {
		t.Fatal("one signature finalized a 2-of-3 PSBT")
	}
	if err := Combine(a, b); err != nil {
		t.Fatal(err)
	}
	tx, err := Finalize(a)
	if err != nil {
		t.Fatal(err)
	}
	prevs := map[wire.OutPoint]*wire.TxOut{}
	for i, in := range p.Inputs {
		prevs[tx.TxIn[i].PreviousOutPoint] = in.WitnessUtxo
	}
	fetcher := txscript.NewMultiPrevOutFetcher(prevs)
	for i := range tx.TxIn {
		prev := prevs[tx.TxIn[i].PreviousOutPoint]
		vm, err := txscript.NewEngine(prev.PkScript, tx, i, txscript.StandardVerifyFlags, nil, txscript.NewTxSigHashes(tx, fetcher), prev.Value, fetcher)
		if err != nil {
			t.Fatal(err)
		}
		if err := vm.Execute(); err != nil {
			t.Fatalf("input %d does not verify: %v", i, err)
		}
	}
}

func TestCeremonyBadInput(t *testing.T) {
	accts, fps, set, p := ceremony(t)
	enc, _ := Encode(p)
	raw, _ := psbt.NewFromRawBytes(strings.NewReader(enc), true)
	var bin bytes.Buffer
	raw.Serialize(&bin)
	for _, bad := range [][]byte{bin.Bytes()[:bin.Len()/2], []byte("psbt\xff"), []byte("not a psbt"), nil} {
		if _, err := Read(bytes.NewReader(bad)); !errors.Is(err, ErrPSBT) {
			t.Errorf("Read(%q...) = %v; want ErrPSBT", bad[:min(len(bad), 8)], err)
		}
	}
	// A key of another wallet signs nothing.
	other, _ := hdkeychain.NewMaster(bytes.Repeat([]byte{9}, 32), regtest)
	ok, oacct, _ := AccountKey(other, regtest, 0)
	if _, err := set.Sign(clonePSBT(t, p), oacct, ok.Fingerprint); !errors.Is(err, ErrNothingToSign) {
		t.Errorf("sign with a stranger's key = %v", err)
	}
	// A witness script swapped for another: refused, nothing signed.
	q := clonePSBT(t, p)
	q.Inputs[0].WitnessScript = append([]byte(nil), q.Inputs[1].WitnessScript...)
	if _, err := set.Sign(q, accts[0], fps[0]); !errors.Is(err, ErrScriptChanged) {
		t.Errorf("changed witness script = %v", err)
	}
	if len(q.Inputs[1].PartialSigs) != 0 {
		t.Error("a refused PSBT got a signature")
	}
	// An input that is not ours (a mainnet-style stranger's output).
	q = clonePSBT(t, p)
	q.Inputs[0].WitnessUtxo = wire.NewTxOut(60_000, []byte{txscript.OP_0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	if _, err := set.Sign(q, accts[0], fps[0]); !errors.Is(err, ErrNotOurs) {
		t.Errorf("input not ours = %v", err)
	}
	// A PSBT for another network: its derivations say mainnet (coin 0).
	q = clonePSBT(t, p)
	q.Inputs[0].Bip32Derivation[0].Bip32Path[1] = hdkeychain.HardenedKeyStart
	if _, err := set.Sign(q, accts[0], fps[0]); !errors.Is(err, ErrNetwork) {
		t.Errorf("PSBT for another network = %v", err)
	}
	// Combining PSBTs of different transactions.
	r := clonePSBT(t, p)
	r.UnsignedTx.TxOut[0].Value--
	if err := Combine(clonePSBT(t, p), r); !errors.Is(err, ErrMismatch) {
		t.Errorf("combine different txs = %v", err)
	}
}

func FuzzReadPSBT(f *testing.F) {
	_, _, _, p := ceremony(f)
	enc, _ := Encode(p)
	f.Add([]byte(enc))
	f.Add([]byte("cHNidP8BAAoCAAAAAAAAAAAAAA=="))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := Read(bytes.NewReader(b))
		if err != nil {
			return
		}
		if _, err := Encode(q); err != nil {
			t.Fatalf("a PSBT that reads does not encode: %v", err)
		}
	})
}

// TestBIP174Vectors reads BIP174's valid and invalid test vectors: every
// valid one reads and re-encodes; every invalid one is a clear error.
func TestBIP174Vectors(t *testing.T) {
	b, err := os.ReadFile("testdata/bip174.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Valid, Invalid []string
	}
	if err := json.Unmarshal(b, &v); err != nil || len(v.Valid) == 0 || len(v.Invalid) == 0 {
		t.Fatalf("vectors: %v", err)
	}
	for i, h := range v.Valid {
		raw, _ := hex.DecodeString(h)
		p, err := Read(bytes.NewReader(raw))
		if err != nil {
			t.Errorf("valid vector %d: %v", i, err)
			continue
		}
		var out bytes.Buffer
		if err := p.Serialize(&out); err != nil {
			t.Errorf("valid vector %d does not serialize: %v", i, err)
		}
	}
	for i, h := range v.Invalid {
		raw, _ := hex.DecodeString(h)
		if _, err := Read(bytes.NewReader(raw)); !errors.Is(err, ErrPSBT) {
			t.Errorf("invalid vector %d = %v; want ErrPSBT", i, err)
		}
	}
}
