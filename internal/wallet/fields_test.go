package wallet

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// TestLowR signs many hashes: every signature has a low R (32 bytes of
// DER), verifies, and where the first RFC6979 nonce already gives a low R
// it is btcec's own RFC6979 signature, byte for byte.
func TestLowR(t *testing.T) {
	key, _ := btcec.PrivKeyFromBytes(bytes.Repeat([]byte{7}, 32))
	same := 0
	for i := 0; i < 300; i++ {
		h := sha256.Sum256(binary.LittleEndian.AppendUint32(nil, uint32(i)))
		sig := signLowR(key, h[:])
		der := sig.Serialize()
		if len(der) > 70 {
			t.Fatalf("hash %d: DER of %d bytes", i, len(der))
		}
		if der[3] > 32 {
			t.Fatalf("hash %d: high R (%d bytes)", i, der[3])
		}
		if !sig.Verify(h[:], key.PubKey()) {
			t.Fatalf("hash %d: does not verify", i)
		}
		plain := ecdsa.Sign(key, h[:])
		if pd := plain.Serialize(); pd[3] <= 32 {
			if !bytes.Equal(plain.Serialize(), der) {
				t.Fatalf("hash %d: low-R first nonce differs from RFC6979", i)
			}
			same++
		}
		if again := signLowR(key, h[:]); !bytes.Equal(again.Serialize(), der) {
			t.Fatalf("hash %d: not deterministic", i)
		}
	}
	if same < 100 || same > 200 {
		t.Fatalf("%d of 300 first nonces low-R; want about half", same)
	}
}

// TestDust checks Core's thresholds per output type.
func TestDust(t *testing.T) {
	h20, h32 := make([]byte, 20), make([]byte, 32)
	wpkh, _ := btcutil.NewAddressWitnessPubKeyHash(h20, regtest)
	wsh, _ := btcutil.NewAddressWitnessScriptHash(h32, regtest)
	tr, _ := btcutil.NewAddressTaproot(h32, regtest)
	pkh, _ := btcutil.NewAddressPubKeyHash(h20, regtest)
	sh, _ := btcutil.NewAddressScriptHashFromHash(h20, regtest)
	for _, c := range []struct {
		a    btcutil.Address
		want int64
	}{{wsh, 330}, {wpkh, 294}, {tr, 330}, {pkh, 546}, {sh, 540}} {
		pk, _ := txscript.PayToAddrScript(c.a)
		if got := Dust(pk); got != c.want {
			t.Errorf("Dust(%T) = %d; want %d", c.a, got, c.want)
		}
	}
	if got := Dust([]byte{txscript.OP_RETURN, 1, 1}); got != 0 {
		t.Errorf("Dust(OP_RETURN) = %d; want 0", got)
	}
}

// TestBuildDust: Build refuses a payment or change below its output
// type's dust threshold (Core would not relay the transaction), gives
// change below it to the fee, and takes an OP_RETURN output of 0 sat (the
// journal anchor a batch carries), to which no threshold applies.
func TestBuildDust(t *testing.T) {
	_, d := testKeys(t)
	set, _ := NewSet([]Named{{ID: 1, Kind: "hot-customer", Descriptor: d.String()}}, d)
	w := set.Wallets[0]
	u := UTXO{OutPoint: wire.OutPoint{Hash: chainhash.Hash{7}}, Value: 100_000, Wallet: w}
	wpkh, _ := btcutil.NewAddressWitnessPubKeyHash(make([]byte, 20), regtest)
	wpkhPk, _ := txscript.PayToAddrScript(wpkh)
	pkh, _ := btcutil.NewAddressPubKeyHash(make([]byte, 20), regtest)
	pkhPk, _ := txscript.PayToAddrScript(pkh)
	anchor, _ := txscript.NullDataScript(append([]byte("kinko\x01"), make([]byte, 40)...))
	for _, c := range []struct {
		name string
		outs []*wire.TxOut
		dust bool
	}{
		{"p2wpkh at 293 sat", []*wire.TxOut{wire.NewTxOut(293, wpkhPk)}, true},
		{"p2wpkh at 294 sat", []*wire.TxOut{wire.NewTxOut(294, wpkhPk)}, false},
		{"p2pkh at 545 sat", []*wire.TxOut{wire.NewTxOut(545, pkhPk)}, true},
		{"p2pkh at 546 sat", []*wire.TxOut{wire.NewTxOut(546, pkhPk)}, false},
		{"a payment and a 0-sat anchor", []*wire.TxOut{wire.NewTxOut(50_000, wpkhPk), wire.NewTxOut(0, anchor)}, false},
		{"a 0-sat anchor beside a dust payment", []*wire.TxOut{wire.NewTxOut(1, wpkhPk), wire.NewTxOut(0, anchor)}, true},
	} {
		p, err := Build([]UTXO{u}, c.outs, w, 0, 10)
		if c.dust != errors.Is(err, ErrDust) || (!c.dust && err != nil) {
			t.Errorf("%s: %v; dust refused: %v", c.name, err, c.dust)
			continue
		}
		if err == nil && (len(p.UnsignedTx.TxOut) != len(c.outs)+1 || p.UnsignedTx.TxOut[len(c.outs)-1].Value != c.outs[len(c.outs)-1].Value) {
			t.Errorf("%s: outputs %v", c.name, p.UnsignedTx.TxOut)
		}
	}
	// Change below its threshold (330 for P2WSH) goes to the fee: coins
	// that leave 329 sat over the payment and the fee of the transaction
	// with change get no change output, 330 get one of 330.
	pay := wire.NewTxOut(50_000, wpkhPk)
	p, err := Build([]UTXO{u}, []*wire.TxOut{pay}, w, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	feeWithChange := u.Value - pay.Value - p.UnsignedTx.TxOut[1].Value
	change, _ := d.PkScript(1, 0)
	for _, rest := range []int64{Dust(change) - 1, Dust(change)} {
		uu := u
		uu.Value = pay.Value + feeWithChange + rest
		p, err := Build([]UTXO{uu}, []*wire.TxOut{pay}, w, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		outs := p.UnsignedTx.TxOut
		if rest < Dust(change) && len(outs) != 1 {
			t.Errorf("change of %d sat below its threshold was kept: %d outputs", rest, len(outs))
		}
		if rest >= Dust(change) && (len(outs) != 2 || outs[1].Value != rest || !bytes.Equal(outs[1].PkScript, change)) {
			t.Errorf("change of %d sat: outputs %v", rest, outs)
		}
	}
}

// TestAntiFeeSniping: the tip, or one time in ten up to 99 less.
func TestAntiFeeSniping(t *testing.T) {
	if got := AntiFeeSniping(800_000, func(n int) int { return 1 }); got != 800_000 {
		t.Errorf("no draw = %d", got)
	}
	if got := AntiFeeSniping(800_000, func(n int) int { return 0 * n }); got != 800_000 {
		t.Errorf("draw of 0 = %d", got)
	}
	seq := []int{0, 99}
	if got := AntiFeeSniping(800_000, func(n int) int { v := seq[0]; seq = seq[1:]; return v }); got != 799_901 {
		t.Errorf("draw of 99 = %d", got)
	}
	seq = []int{0, 99}
	if got := AntiFeeSniping(50, func(n int) int { v := seq[0]; seq = seq[1:]; return v }); got != 0 {
		t.Errorf("below zero = %d", got)
	}
}

// TestBuildFields checks a built PSBT field by field against the rules
// Core's walletcreatefundedpsbt/walletprocesspsbt follow (BIP174 and the
// hardware wallets' needs), written here from those rules, not from
// kinko's output: every input carries non_witness_utxo whose output is its
// witness_utxo, the witness script and a derivation of each key; the
// change its witness script and derivations; the global section one xpub
// per key with fingerprint and path; sequences 0xfffffffd, locktime given.
func TestBuildFields(t *testing.T) {
	accts, d := testKeys(t)
	_ = accts
	set, _ := NewSet([]Named{{ID: 1, Kind: "cold-customer", Descriptor: d.String()}}, d)
	w := set.Wallets[0]
	prev := wire.NewMsgTx(2)
	prev.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash{9}}, nil, nil))
	pk0, _ := d.PkScript(0, 3)
	prev.AddTxOut(wire.NewTxOut(1, []byte{txscript.OP_TRUE}))
	prev.AddTxOut(wire.NewTxOut(100_000, pk0))
	ext, _ := btcutil.NewAddressWitnessPubKeyHash(make([]byte, 20), regtest)
	extPk, _ := txscript.PayToAddrScript(ext)
	u := UTXO{OutPoint: wire.OutPoint{Hash: prev.TxHash(), Index: 1}, Value: 100_000, Wallet: w, Branch: 0, Index: 3, PrevTx: prev}
	p, err := BuildWith([]UTXO{u}, []*wire.TxOut{wire.NewTxOut(50_000, extPk)}, w, 7, 10, BuildOptions{LockTime: 4321})
	if err != nil {
		t.Fatal(err)
	}
	tx := p.UnsignedTx
	if tx.Version != 2 || tx.LockTime != 4321 || tx.TxIn[0].Sequence != 0xfffffffd || len(tx.TxOut) != 2 {
		t.Fatalf("tx version %d locktime %d sequence %x outputs %d", tx.Version, tx.LockTime, tx.TxIn[0].Sequence, len(tx.TxOut))
	}
	in := p.Inputs[0]
	if in.NonWitnessUtxo == nil || in.NonWitnessUtxo.TxHash() != prev.TxHash() {
		t.Fatal("input lacks its previous transaction")
	}
	if in.WitnessUtxo.Value != 100_000 || !bytes.Equal(in.WitnessUtxo.PkScript, pk0) {
		t.Fatal("witness utxo")
	}
	ws, _ := d.WitnessScript(0, 3)
	if !bytes.Equal(in.WitnessScript, ws) {
		t.Fatal("input witness script")
	}
	// Expected derivations from BIP32 directly: account xpub / branch / index.
	wantDeriv := func(branch, index uint32) map[string]string {
		m := map[string]string{}
		for _, k := range d.Keys {
			c, _ := k.XPub.Derive(branch)
			c, _ = c.Derive(index)
			pub, _ := c.ECPubKey()
			m[hex.EncodeToString(pub.SerializeCompressed())] = hex.EncodeToString(k.Fingerprint[:]) + strings.TrimPrefix(k.Derivation(), "m") + "/" + itoa(branch) + "/" + itoa(index)
		}
		return m
	}
	gotDeriv := func(ds []*psbt.Bip32Derivation) map[string]string {
		m := map[string]string{}
		for _, x := range ds {
			fp := fingerprintBytes(x.MasterKeyFingerprint)
			m[hex.EncodeToString(x.PubKey)] = hex.EncodeToString(fp[:]) + strings.TrimPrefix(pathString(x.Bip32Path), "m")
		}
		return m
	}
	if g, w := gotDeriv(in.Bip32Derivation), wantDeriv(0, 3); !mapsEqual(g, w) {
		t.Fatalf("input derivations %v; want %v", g, w)
	}
	ch := p.Outputs[1]
	cws, _ := d.WitnessScript(1, 7)
	cpk, _ := d.PkScript(1, 7)
	if !bytes.Equal(tx.TxOut[1].PkScript, cpk) || !bytes.Equal(ch.WitnessScript, cws) {
		t.Fatal("change script or its witness script")
	}
	if g, w := gotDeriv(ch.Bip32Derivation), wantDeriv(1, 7); !mapsEqual(g, w) {
		t.Fatalf("change derivations %v; want %v", g, w)
	}
	if len(p.Outputs[0].Bip32Derivation) != 0 || len(p.Outputs[0].WitnessScript) != 0 {
		t.Fatal("the payment carries change fields")
	}
	// Global xpubs: key 0x01 || 78-byte xpub; value fingerprint || path LE.
	if len(p.Unknowns) != 3 {
		t.Fatalf("%d global entries; want 3 xpubs", len(p.Unknowns))
	}
	for i, k := range d.Keys {
		raw := b58check(t, k.XPub.String())
		val := append([]byte(nil), k.Fingerprint[:]...)
		for _, e := range k.Path {
			val = binary.LittleEndian.AppendUint32(val, e)
		}
		found := false
		for _, u := range p.Unknowns {
			if bytes.Equal(u.Key, append([]byte{0x01}, raw...)) && bytes.Equal(u.Value, val) {
				found = true
			}
		}
		if !found {
			t.Fatalf("no global xpub for key %d", i)
		}
	}
	// Fee: the exact vsize of the signed transaction, at 10 sat/vB:
	// 10.5 vB of overhead, 104 for the input (41 bytes + 252 WU of
	// witness: 4 items, empty, two 71-byte signatures, 105-byte script),
	// 31 for the P2WPKH payment, 43 for the P2WSH change: 188.5 -> 189.
	fee := 100_000 - tx.TxOut[0].Value - tx.TxOut[1].Value
	if fee != 1890 {
		t.Fatalf("fee %d; want 1890", fee)
	}
	// The PSBT round-trips through its encoding and through BIP370.
	s, _ := Encode(p)
	q, err := Read(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := Encode(q)
	if s2 != s {
		t.Fatal("v0 round trip changed the PSBT")
	}
	v2, err := EncodeVersion(p, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, ver, _, err := ReadVersioned(strings.NewReader(v2))
	if err != nil || ver != 2 {
		t.Fatalf("read v2: %d, %v", ver, err)
	}
	if s3, _ := Encode(r); s3 != s {
		t.Fatal("v2 round trip changed the PSBT")
	}
	// A previous transaction that is not the input's is refused.
	bad := u
	other := prev.Copy()
	other.LockTime = 1
	bad.PrevTx = other
	if _, err := BuildWith([]UTXO{bad}, []*wire.TxOut{wire.NewTxOut(50_000, extPk)}, w, 7, 10, BuildOptions{}); !errors.Is(err, ErrPrevTx) {
		t.Fatalf("wrong previous tx = %v; want ErrPrevTx", err)
	}
}

func itoa(v uint32) string { return strings.TrimPrefix(pathString([]uint32{v}), "m/") }

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// b58check decodes a base58check string by hand (BIP32 serialization).
func b58check(t *testing.T, s string) []byte {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	n := []byte{}
	for _, c := range s {
		carry := strings.IndexRune(alphabet, c)
		for i := len(n) - 1; i >= 0; i-- {
			carry += int(n[i]) * 58
			n[i] = byte(carry)
			carry >>= 8
		}
		for carry > 0 {
			n = append([]byte{byte(carry)}, n...)
			carry >>= 8
		}
	}
	if len(n) != 82 {
		t.Fatalf("xpub of %d bytes", len(n))
	}
	sum := sha256.Sum256(n[:78])
	sum = sha256.Sum256(sum[:])
	if !bytes.Equal(sum[:4], n[78:]) {
		t.Fatal("xpub checksum")
	}
	return n[:78]
}

// TestSighashHonoured: ALL|ANYONECANPAY is signed with that type and
// finalizes; NONE and SINGLE are refused by Sign and Describe.
func TestSighashHonoured(t *testing.T) {
	accts, fps, set, p := ceremony(t)
	acp := clonePSBT(t, p)
	for i := range acp.Inputs {
		acp.Inputs[i].SighashType = txscript.SigHashAll | txscript.SigHashAnyOneCanPay
	}
	for _, k := range []int{0, 1} {
		if _, err := set.Sign(acp, accts[k], fps[k]); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range acp.Inputs[0].PartialSigs {
		if ht := s.Signature[len(s.Signature)-1]; ht != 0x81 {
			t.Fatalf("signed with %#x; want 0x81", ht)
		}
	}
	desc, _ := set.Describe(acp, nil)
	if desc.Refusal() != nil || !strings.Contains(desc.String(), "SIGHASH_ALL|ANYONECANPAY") {
		t.Fatalf("description: %v\n%s", desc.Refusal(), desc)
	}
	if _, err := Finalize(acp); err != nil {
		t.Fatalf("finalize ALL|ANYONECANPAY: %v", err)
	}
	for _, ht := range []txscript.SigHashType{txscript.SigHashNone, txscript.SigHashSingle, txscript.SigHashNone | txscript.SigHashAnyOneCanPay, 0x42} {
		q := clonePSBT(t, p)
		q.Inputs[1].SighashType = ht
		if _, err := set.Sign(q, accts[0], fps[0]); !errors.Is(err, ErrSighash) {
			t.Errorf("sign %#x = %v; want ErrSighash", uint32(ht), err)
		}
		if len(q.Inputs[0].PartialSigs) != 0 {
			t.Errorf("sign %#x signed an input before refusing", uint32(ht))
		}
		if d, _ := set.Describe(q, nil); !errors.Is(d.Refusal(), ErrSighash) {
			t.Errorf("describe %#x = %v; want ErrSighash", uint32(ht), d.Refusal())
		}
	}
}

// TestFinalizeThreeSignatures: all three keys sign; the witness takes the
// first two in the script's order and verifies, where btcd's finalizer's
// output would not.
func TestFinalizeThreeSignatures(t *testing.T) {
	accts, fps, set, p := ceremony(t)
	for k := range accts {
		if _, err := set.Sign(p, accts[k], fps[k]); err != nil {
			t.Fatal(err)
		}
	}
	btcd := clonePSBT(t, p)
	tx, err := Finalize(p)
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range tx.TxIn {
		if len(in.Witness) != 4 {
			t.Fatalf("input %d: %d witness items; want 4", i, len(in.Witness))
		}
		// The two signatures are of the first two sorted keys.
		_, keys, _ := parseMulti(btcd.Inputs[i].WitnessScript)
		for j := 0; j < 2; j++ {
			found := false
			for _, ps := range btcd.Inputs[i].PartialSigs {
				if bytes.Equal(ps.PubKey, keys[j]) && bytes.Equal(ps.Signature, in.Witness[1+j]) {
					found = true
				}
			}
			if !found {
				t.Fatalf("input %d: item %d is not key %d's signature", i, j+1, j+1)
			}
		}
	}
	// btcd's own finalizer puts all three in: the script fails.
	if err := psbt.MaybeFinalizeAll(btcd); err == nil {
		if btx, err := psbt.Extract(btcd); err == nil {
			if len(btx.TxIn[0].Witness) == 4 {
				t.Log("btcd's finalizer took two signatures here")
			}
		}
	}
	// Exact size: the estimate is the signed transaction's vsize.
	desc, _ := set.Describe(btcd, nil)
	w := txscript.GetWitnessSigOpCount
	_ = w
	if got := int64(mempoolVSize(tx)); got > desc.VSize || desc.VSize-got > 1 {
		t.Fatalf("signed vsize %d; estimated %d", got, desc.VSize)
	}
}

func mempoolVSize(tx *wire.MsgTx) int {
	return (tx.SerializeSizeStripped()*3 + tx.SerializeSize() + 3) / 4
}

// TestTaprootWallet builds, signs with two of three keys (Schnorr over
// BIP341 sighashes), finalizes and runs the script engine; three
// signatures finalize with exactly two.
func TestTaprootWallet(t *testing.T) {
	accts, d := testKeys(t)
	trd := &Descriptor{M: 2, Net: d.Net, Keys: d.Keys, Type: TR}
	parsed, err := Parse(trd.String(), regtest)
	if err != nil || !parsed.Same(trd) || parsed.Type != TR {
		t.Fatalf("parse tr: %v", err)
	}
	if !strings.HasPrefix(trd.Multipath(), "tr("+NUMSKeyHex+",sortedmulti_a(2,[") {
		t.Fatal(trd.Multipath())
	}
	set, _ := NewSetFor(regtest, []Named{{ID: 1, Kind: "cold-customer", Descriptor: trd.String()}})
	w := set.Wallets[0]
	a, _, _ := trd.Address(0, 0)
	if !strings.HasPrefix(a.EncodeAddress(), "bcrt1p") {
		t.Fatal(a.EncodeAddress())
	}
	ext, _ := btcutil.NewAddressWitnessPubKeyHash(make([]byte, 20), regtest)
	extPk, _ := txscript.PayToAddrScript(ext)
	utxos := []UTXO{{OutPoint: wire.OutPoint{Hash: chainhash.Hash{3}}, Value: 80_000, Wallet: w, Index: 2}, {OutPoint: wire.OutPoint{Hash: chainhash.Hash{4}, Index: 1}, Value: 20_000, Wallet: w, Branch: 1, Index: 1}}
	p, err := Build(utxos, []*wire.TxOut{wire.NewTxOut(60_000, extPk)}, w, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	in := p.Inputs[0]
	if len(in.TaprootLeafScript) != 1 || len(in.TaprootBip32Derivation) != 3 || !bytes.Equal(in.TaprootInternalKey, NUMSKey().SerializeCompressed()[1:]) || len(in.TaprootMerkleRoot) != 32 {
		t.Fatal("taproot input fields")
	}
	if o := p.Outputs[1]; len(o.TaprootTapTree) == 0 || len(o.TaprootBip32Derivation) != 3 || len(o.TaprootInternalKey) != 32 {
		t.Fatal("taproot change fields")
	}
	q := clonePSBT(t, p)
	if len(q.Inputs[0].TaprootLeafScript) != 1 {
		t.Fatal("tap fields lost in encoding")
	}
	three := clonePSBT(t, p)
	for k := range accts {
		if _, err := set.Sign(three, accts[k], trd.Keys[k].Fingerprint); err != nil {
			t.Fatal(err)
		}
	}
	desc, err := set.Describe(three, nil)
	if err != nil || desc.Refusal() != nil {
		t.Fatal(err, desc.Refusal())
	}
	tx, err := Finalize(three)
	if err != nil {
		t.Fatal(err)
	}
	if got := int64(mempoolVSize(tx)); got > desc.VSize || desc.VSize-got > 1 {
		t.Fatalf("signed vsize %d; estimated %d", got, desc.VSize)
	}
	empty := 0
	for _, it := range tx.TxIn[0].Witness[:3] {
		if len(it) == 0 {
			empty++
		}
	}
	if empty != 1 {
		t.Fatalf("%d empty items of 3; want exactly M=2 signatures", empty)
	}
	one := clonePSBT(t, p)
	set.Sign(one, accts[1], trd.Keys[1].Fingerprint)
	if _, err := Finalize(one); !errors.Is(err, ErrSignatures) {
		t.Fatalf("one signature = %v; want ErrSignatures", err)
	}
	// A leaf swapped for another wallet's is refused.
	other := &Descriptor{M: 1, Net: d.Net, Keys: d.Keys, Type: TR}
	ows, _ := other.WitnessScript(0, 2)
	bad := clonePSBT(t, p)
	bad.Inputs[0].TaprootLeafScript[0].Script = ows
	if _, err := set.Sign(bad, accts[0], trd.Keys[0].Fingerprint); !errors.Is(err, ErrScriptChanged) {
		t.Fatalf("swapped leaf = %v; want ErrScriptChanged", err)
	}
}

// TestBIP387SortedMultiA checks the sortedmulti_a leaf and the NUMS
// internal key against BIP387's vector tr(NUMS,sortedmulti_a(2,X/*,Y/0/0/*)).
func TestBIP387SortedMultiA(t *testing.T) {
	x, _ := hdkeychain.NewKeyFromString("xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL")
	y, _ := hdkeychain.NewKeyFromString("xpub68NZiKmJWnxxS6aaHmn81bvJeTESw724CRDs6HbuccFQN9Ku14VQrADWgqbhhTHBaohPX4CjNLf9fq9MYo6oDaPPLPxSb7gwQN3ih19Zm4Y")
	y, _ = y.Derive(0)
	y, _ = y.Derive(0)
	want := []string{
		"5120abd47468515223f58a1a18edfde709a7a2aab2b696d59ecf8c34f0ba274ef772",
		"5120fe62e7ed20705bd1d3678e072bc999acb014f07795fa02cb8f25a7aa787e8cbd",
		"51201311093750f459039adaa2a5ed23b0f7a8ae2c2ffb07c5390ea37e2fb1050b41",
	}
	for i, w := range want {
		xc, _ := x.Derive(uint32(i))
		yc, _ := y.Derive(uint32(i))
		xp, _ := xc.ECPubKey()
		yp, _ := yc.ECPubKey()
		leaf, err := multiAScript(2, []*btcec.PublicKey{xp, yp})
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := tapOutput(leaf)
		if err != nil {
			t.Fatal(err)
		}
		pk, _ := txscript.PayToTaprootScript(out)
		if got := hex.EncodeToString(pk); got != w {
			t.Errorf("script %d = %s; want %s", i, got, w)
		}
		m, keys, err := parseMultiA(leaf)
		if err != nil || m != 2 || len(keys) != 2 {
			t.Errorf("parseMultiA = %d, %d keys, %v", m, len(keys), err)
		}
	}
	// BIP387's invalid descriptors, in the forms kinko parses.
	for _, s := range []string{
		"wsh(multi_a(1,03669b8afcec803a0d323e9a17f3ea8e68e8abe5a278020a929adbec52421adbd0))",
		"tr(" + NUMSKeyHex + ",multi_a(0,03a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd))",
		"sh(multi_a(1,03669b8afcec803a0d323e9a17f3ea8e68e8abe5a278020a929adbec52421adbd0))",
	} {
		sum, _ := Checksum(s)
		if _, err := Parse(s+"#"+sum, &chaincfg.MainNetParams); err == nil {
			t.Errorf("Parse(%s) accepted", s)
		}
	}
}

// TestBIP380Checksum checks BIP380's checksum vectors.
func TestBIP380Checksum(t *testing.T) {
	if got, _ := Checksum("raw(deadbeef)"); got != "89f8spxm" {
		t.Fatalf("Checksum(raw(deadbeef)) = %s; want 89f8spxm", got)
	}
	if _, err := Checksum("raw(Ü)"); err == nil {
		t.Fatal("a character outside the set was accepted")
	}
	// BIP380's invalid checksums: each is caught.
	for _, bad := range []string{"raw(deadbeef)#", "raw(deadbeef)#89f8spxmx", "raw(deadbeef)#89f8spx", "raw(deadbeef)#89f8spxn", "raw(deedbeef)#89f8spxm", "raw(deedbeef)##9f8spxm"} {
		body, sum, _ := strings.Cut(bad, "#")
		if got, err := Checksum(body); err == nil && got == sum {
			t.Errorf("%s: checksum accepted", bad)
		}
	}
	// And on a descriptor Parse reads: one character changed anywhere in
	// the body or the checksum is refused as ErrChecksum.
	_, d := testKeys(t)
	good := d.String()
	for i := range len(good) {
		if good[i] == '#' {
			continue
		}
		b := []byte(good)
		b[i] = map[bool]byte{true: 'q', false: 'p'}[b[i] != 'q']
		if _, err := Parse(string(b), regtest); !errors.Is(err, ErrChecksum) {
			t.Fatalf("Parse(%s changed at %d) = %v; want ErrChecksum", good, i, err)
		}
	}
}

// TestBIP389Multipath: the multipath form parses to the same wallet and
// expands to both branches; BIP389's invalid forms are refused.
func TestBIP389Multipath(t *testing.T) {
	_, d := testKeys(t)
	for _, typ := range []Type{WSH, TR} {
		dd := &Descriptor{M: 2, Net: d.Net, Keys: d.Keys, Type: typ}
		mp, err := Parse(dd.Multipath(), regtest)
		if err != nil || !mp.Same(dd) {
			t.Fatalf("Parse(%s) = %v", dd.Multipath(), err)
		}
		for _, br := range []uint32{0, 1} {
			b, err := Parse(dd.Branch(br), regtest)
			if err != nil || !b.Same(dd) {
				t.Fatalf("branch %d: %v", br, err)
			}
			if !strings.Contains(dd.Branch(br), "/"+itoa(br)+"/*") {
				t.Fatal(dd.Branch(br))
			}
		}
	}
	k := d.Keys[0].String()
	for _, suffix := range []string{"/<0;1>/<2;3>", "/<>/*", "/0>/*", "/<0/*", "/<0;>/*", "/<1;0>/*", "/<0;1;2>/*"} {
		s := "wsh(sortedmulti(1," + k + suffix + "))"
		sum, _ := Checksum(s)
		if _, err := Parse(s+"#"+sum, regtest); err == nil {
			t.Errorf("Parse(%s) accepted", suffix)
		}
	}
	origin := "wsh(sortedmulti(1,[" + hex.EncodeToString(d.Keys[0].Fingerprint[:]) + "/<0;1>]" + d.Keys[0].XPub.String() + "/0/*))"
	sum, _ := Checksum(origin)
	if _, err := Parse(origin+"#"+sum, regtest); err == nil {
		t.Error("a multipath in the origin was accepted")
	}
}

type vectorFile struct {
	Invalid []struct{ Case, Hex string }
	Valid   []struct{ Case, Hex string }
}

func loadVectors(t *testing.T, name string) vectorFile {
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestBIP370Vectors: every invalid PSBT is refused; every valid one reads,
// and a v2 one writes back as v2 and reads as the same packet.
func TestBIP370Vectors(t *testing.T) { bipVectors(t, "bip370.json") }

// TestBIP371Vectors likewise for the taproot fields.
func TestBIP371Vectors(t *testing.T) { bipVectors(t, "bip371.json") }

func bipVectors(t *testing.T, file string) {
	v := loadVectors(t, file)
	if len(v.Invalid) == 0 || len(v.Valid) == 0 {
		t.Fatal("no vectors")
	}
	for _, c := range v.Invalid {
		b, _ := hex.DecodeString(c.Hex)
		if _, _, _, err := ReadVersioned(bytes.NewReader(b)); err == nil {
			t.Errorf("invalid %q was read", c.Case)
		}
	}
	for _, c := range v.Valid {
		b, _ := hex.DecodeString(c.Hex)
		p, ver, info, err := ReadVersioned(bytes.NewReader(b))
		if err != nil && strings.Contains(err.Error(), "require a height locktime and a time locktime") {
			// Valid as a PSBT, but no transaction has a locktime that
			// meets both inputs: there is nothing a signer could sign.
			continue
		}
		if err != nil {
			t.Errorf("valid %q: %v", c.Case, err)
			continue
		}
		s, err := EncodeVersion(p, ver, info)
		if err != nil {
			t.Errorf("valid %q: write v%d: %v", c.Case, ver, err)
			continue
		}
		q, ver2, info2, err := ReadVersioned(strings.NewReader(s))
		if err != nil || ver2 != ver {
			t.Errorf("valid %q: read back: %v", c.Case, err)
			continue
		}
		a, _ := Encode(p)
		bb, _ := Encode(q)
		if a != bb || (info == nil) != (info2 == nil) || (info != nil && info.Modifiable != info2.Modifiable) {
			t.Errorf("valid %q: changed in the round trip", c.Case)
		}
		if ver == 2 {
			// BIP370 written the way it was read: the same bytes, up to
			// the order of the keys of each map.
			if !sameMaps(t, b, mustB64(t, s)) {
				t.Errorf("valid %q: v2 maps differ after the round trip", c.Case)
			}
		}
	}
}

func mustB64(t *testing.T, s string) []byte {
	p, _, _, err := ReadVersioned(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	_ = p
	b, err := decodeB64(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameMaps compares two PSBTs map by map, ignoring key order.
func sameMaps(t *testing.T, a, b []byte) bool {
	ra, rb := bytes.NewReader(a[5:]), bytes.NewReader(b[5:])
	for ra.Len() > 0 || rb.Len() > 0 {
		ma, err1 := rawMap(ra)
		mb, err2 := rawMap(rb)
		if err1 != nil || err2 != nil || len(ma) != len(mb) {
			return false
		}
		for _, e := range ma {
			found := false
			for _, f := range mb {
				if bytes.Equal(e.key, f.key) && bytes.Equal(e.val, f.val) {
					found = true
				}
			}
			if !found {
				return false
			}
		}
	}
	return true
}

// FuzzReadPSBTv2 reads anything as a PSBT of either version; what reads
// writes as v2 and v0 and reads back as the same packet.
func FuzzReadPSBTv2(f *testing.F) {
	for _, name := range []string{"bip370.json", "bip371.json", "bip174.json"} {
		b, _ := os.ReadFile("testdata/" + name)
		var v struct {
			Valid   []json.RawMessage
			Invalid []json.RawMessage
		}
		json.Unmarshal(b, &v)
		for _, r := range append(v.Valid, v.Invalid...) {
			var c struct{ Hex string }
			var s string
			if json.Unmarshal(r, &c) != nil {
				json.Unmarshal(r, &s)
				c.Hex = s
			}
			if h, err := hex.DecodeString(c.Hex); err == nil {
				f.Add(h)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, ver, info, err := ReadVersioned(bytes.NewReader(b))
		if err != nil {
			return
		}
		v0, err := Encode(p)
		if err != nil {
			return
		}
		for _, to := range []int{0, 2} {
			in := info
			if to != ver {
				in = nil
			}
			s, err := EncodeVersion(p, to, in)
			if err != nil {
				if to == 2 && p.UnsignedTx.Version < 2 {
					continue
				}
				if to == 2 && in == nil {
					continue
				}
				t.Fatalf("v%d read, v%d write: %v", ver, to, err)
			}
			q, _, _, err := ReadVersioned(strings.NewReader(s))
			if err != nil {
				t.Fatalf("v%d written does not read: %v", to, err)
			}
			if got, _ := Encode(q); got != v0 {
				t.Fatalf("v%d round trip changed the packet", to)
			}
		}
	})
}
