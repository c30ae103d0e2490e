package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/keys"
	"kinko/internal/ledger"
	"kinko/internal/wallet"
)

// TestDescriptorExports: kinko descriptor prints both chains and the
// multipath form, --core the importdescriptors JSON with the range, next
// indexes and timestamp asked for, --coldcard and --sparrow their files,
// --tr the taproot wallet; a range that does not cover the next index,
// and a Coldcard file of a taproot wallet, are refused.
func TestDescriptorExports(t *testing.T) {
	d := madeKeys(t, 0x41, 0x42, 0x43)
	args := []string{"descriptor"}
	for i := range d.Keys {
		args = append(args, d.Keys[i].String())
	}
	out, code := run(t, args...)
	a, _, _ := d.Address(0, 0)
	c, _, _ := d.Address(1, 0)
	want := fmt.Sprintf("%s\nchange: %s\nmultipath (BIP389): %s\nfirst receive address: %s\nfirst change address: %s\n", d.Branch(0), d.Branch(1), d.Multipath(), a, c)
	if code != 0 || out != want {
		t.Fatalf("descriptor = %d\n%s\nwant\n%s", code, out, want)
	}

	out, code = run(t, append(args, "--core", "--range", "2999", "--next-index", "25", "--next-change", "4", "--timestamp", "1700000000")...)
	var reqs []wallet.CoreImport
	if code != 0 || json.Unmarshal([]byte(out), &reqs) != nil || len(reqs) != 2 {
		t.Fatalf("descriptor --core = %d\n%s", code, out)
	}
	for i, w := range []wallet.CoreImport{
		{Desc: d.Branch(0), Active: true, Range: [2]int{0, 2999}, NextIndex: 25, Timestamp: 1_700_000_000},
		{Desc: d.Branch(1), Active: true, Range: [2]int{0, 2999}, NextIndex: 4, Timestamp: 1_700_000_000, Internal: true},
	} {
		if reqs[i] != w {
			t.Errorf("--core request %d = %+v; want %+v", i, reqs[i], w)
		}
	}
	for _, bad := range [][]string{{"--range", "19", "--next-index", "21"}, {"--next-change", "-1"}} {
		if out, code := run(t, append(append(args, "--core"), bad...)...); code == 0 || !strings.Contains(out, "must cover") {
			t.Errorf("descriptor --core %v = %d\n%s", bad, code, out)
		}
	}

	out, code = run(t, append(args, "--coldcard", "kinko-cold")...)
	if text, _ := d.Coldcard("kinko-cold"); code != 0 || out != text || !strings.Contains(out, "Format: P2WSH\n") {
		t.Fatalf("descriptor --coldcard = %d\n%s", code, out)
	}
	out, code = run(t, append(args, "--sparrow", "kinko-cold")...)
	if code != 0 || out != d.Sparrow("kinko-cold") {
		t.Fatalf("descriptor --sparrow = %d\n%s", code, out)
	}

	tr := &wallet.Descriptor{M: 2, Net: regtest.Net, Keys: d.Keys, Type: wallet.TR}
	out, code = run(t, append(args, "--tr")...)
	ta, _, _ := tr.Address(0, 0)
	if code != 0 || !strings.HasPrefix(out, tr.Branch(0)+"\n") || !strings.HasPrefix(tr.Branch(0), "tr("+wallet.NUMSKeyHex+",sortedmulti_a(2,") ||
		!strings.Contains(out, "first receive address: "+ta.EncodeAddress()+"\n") || !strings.HasPrefix(ta.EncodeAddress(), "bcrt1p") {
		t.Fatalf("descriptor --tr = %d\n%s", code, out)
	}
	if out, code := run(t, append(args, "--tr", "--coldcard", "x")...); code == 0 || !strings.Contains(out, "P2WSH") {
		t.Fatalf("descriptor --tr --coldcard = %d\n%s", code, out)
	}
}

// madeElsewhere is a PSBT as Bitcoin Core's walletcreatefundedpsbt makes it
// for a watch-only copy of wallet d (BIP174's fields written here by
// hand, not by kinko's builder): it spends the 1,000,000 sat at receive
// index 5, pays 400,000 sat to an outside P2WPKH address and the rest
// less a 2,000 sat fee to change index 2, with nVersion 2, an
// anti-fee-sniping locktime and RBF sequence, and on the input the
// previous transaction, the witness utxo, the witness script and every
// key's BIP32 derivation, on the change its witness script and
// derivations.
func madeElsewhere(t *testing.T, d *wallet.Descriptor) (*psbt.Packet, btcutil.Address) {
	t.Helper()
	in, _ := d.PkScript(0, 5)
	prev := wire.NewMsgTx(2)
	prev.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash{0x77}, Index: 3}, nil, nil))
	prev.AddTxOut(wire.NewTxOut(5_000_000, []byte{txscript.OP_0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}))
	prev.AddTxOut(wire.NewTxOut(1_000_000, in))
	outside, _ := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{0xee}, 20), regtest.Net)
	pay, _ := txscript.PayToAddrScript(outside)
	chg, _ := d.PkScript(1, 2)
	p, err := psbt.New([]*wire.OutPoint{{Hash: prev.TxHash(), Index: 1}}, []*wire.TxOut{wire.NewTxOut(400_000, pay), wire.NewTxOut(1_000_000-400_000-2_000, chg)}, 2, 812, []uint32{wire.MaxTxInSequenceNum - 2})
	if err != nil {
		t.Fatal(err)
	}
	derivs := func(branch, index uint32) []*psbt.Bip32Derivation {
		var out []*psbt.Bip32Derivation
		for i := range d.Keys {
			k := &d.Keys[i]
			b, _ := k.XPub.Derive(branch)
			c, _ := b.Derive(index)
			pub, _ := c.ECPubKey()
			f := k.Fingerprint
			out = append(out, &psbt.Bip32Derivation{PubKey: pub.SerializeCompressed(),
				MasterKeyFingerprint: uint32(f[0]) | uint32(f[1])<<8 | uint32(f[2])<<16 | uint32(f[3])<<24,
				Bip32Path:            append(append([]uint32(nil), k.Path...), branch, index)})
		}
		return out
	}
	inWS, _ := d.WitnessScript(0, 5)
	chgWS, _ := d.WitnessScript(1, 2)
	p.Inputs[0] = psbt.PInput{NonWitnessUtxo: prev, WitnessUtxo: prev.TxOut[1], WitnessScript: inWS, Bip32Derivation: derivs(0, 5)}
	p.Outputs[1] = psbt.POutput{WitnessScript: chgWS, Bip32Derivation: derivs(1, 2)}
	return p, outside
}

func writePSBT(t *testing.T, path string, p *psbt.Packet) {
	t.Helper()
	s, err := wallet.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestColdSignElsewhere: kinko cold sign --psbt, with no kinko ceremony,
// signs a PSBT Core would make for a wallet registered on the offline
// machine, after showing it in the same plain words (the outside payment,
// ours and change recomputed from the descriptor, the fee and size); the
// signature verifies against BIP143's sighash computed here, SIGHASH_ALL
// and low-R; version 2 is written when asked; a PSBT giving only the
// previous transaction signs the same. It refuses, writing nothing, a
// PSBT whose input amount it cannot prove (no previous transaction,
// unless --allow-unproved-amounts), whose previous transaction disagrees
// with the amount it claims (the fee an attacker hides), and one for a
// wallet not registered here.
func TestColdSignElsewhere(t *testing.T) {
	tmp := t.TempDir()
	pass := filepath.Join(tmp, "pass")
	os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600)
	key := filepath.Join(tmp, "a.key")
	if out, code := run(t, "keys", "new", "--out", key, "--passphrase-file", pass, "--cheap-kdf"); code != 0 {
		t.Fatalf("keys new: %s", out)
	}
	k, err := keys.Load(key, "correct horse battery staple", regtest.Net)
	if err != nil {
		t.Fatal(err)
	}
	ak, _, _ := wallet.AccountKey(k.Master, regtest.Net, 0)
	others := madeKeys(t, 0x51, 0x52)
	d := &wallet.Descriptor{M: 2, Net: regtest.Net, Keys: []wallet.Key{others.Keys[0], ak, others.Keys[1]}}
	reg := filepath.Join(tmp, "registry.json")
	if out, code := run(t, "cold", "register", "--key", key, "--passphrase-file", pass, "--registry", reg, "--name", "vault", "--kind", "cold-house", "--descriptor", d.String(), "--yes"); code != 0 {
		t.Fatalf("register: %s", out)
	}
	sign := func(name string, p *psbt.Packet, extra ...string) (string, int, string) {
		t.Helper()
		in, out := filepath.Join(tmp, name+".psbt"), filepath.Join(tmp, name+"-signed.psbt")
		writePSBT(t, in, p)
		text, code := run(t, append([]string{"cold", "sign", "--key", key, "--passphrase-file", pass, "--registry", reg, "--psbt", in, "--out", out, "--yes"}, extra...)...)
		return text, code, out
	}
	noFile := func(name, f string) {
		t.Helper()
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s: a refused PSBT was written (%v)", name, err)
		}
	}

	p, outside := madeElsewhere(t, d)
	txid := p.UnsignedTx.TxHash()
	in5, _, _ := d.Address(0, 5)
	chg2, _, _ := d.Address(1, 2)
	text, code, out := sign("core", p)
	for _, w := range []string{
		fmt.Sprintf("(made elsewhere: no kinko ceremony), transaction %s\n", txid),
		fmt.Sprintf("inputs:\n  1.       0.01000000 BTC  %s  [ours: vault (cold-house) receive #5]\n", in5),
		fmt.Sprintf("outputs:\n  1.       0.00400000 BTC  %s  [payment to an outside address]\n", outside),
		fmt.Sprintf("  2.       0.00598000 BTC  %s  [ours: vault (cold-house) change #2]\n", chg2),
		"paid to outside addresses: 0.00400000 BTC\n",
		"fee: 2000 sat (",
		"locktime: block 812\n",
		fmt.Sprintf("signed 1 input(s) with key %x; written to %s (PSBT version 0)\n", ak.Fingerprint, out),
	} {
		if !strings.Contains(text, w) {
			t.Errorf("sign of Core's PSBT = %d; lacks %q\n%s", code, w, text)
		}
	}
	if code != 0 || strings.Contains(text, "amount as the PSBT claims") {
		t.Fatalf("sign of Core's PSBT = %d\n%s", code, text)
	}
	signed, err := readPSBTFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if signed.UnsignedTx.TxHash() != txid {
		t.Fatalf("the signed PSBT is of transaction %s; want %s", signed.UnsignedTx.TxHash(), txid)
	}
	ps := signed.Inputs[0].PartialSigs
	mine := findDerivation(t, p.Inputs[0].Bip32Derivation, ak.Fingerprint)
	if len(ps) != 1 || !bytes.Equal(ps[0].PubKey, mine) {
		t.Fatalf("partial signatures %d, by %x; want one by this machine's key %x", len(ps), ps[0].PubKey, mine)
	}
	verifySig(t, p, ps[0].Signature, ps[0].PubKey)

	// Version 2 on request: the same transaction, the same signature.
	text, code, out = sign("core-v2", p, "--psbt-version", "2")
	f, _ := os.Open(out)
	v2, ver, _, err := wallet.ReadVersioned(f)
	f.Close()
	if code != 0 || err != nil || ver != 2 || v2.UnsignedTx.TxHash() != txid || len(v2.Inputs[0].PartialSigs) != 1 || !bytes.Equal(v2.Inputs[0].PartialSigs[0].Signature, ps[0].Signature) {
		t.Fatalf("sign --psbt-version 2 = %d, read %v, version %d\n%s", code, err, ver, text)
	}

	// Only the previous transaction (BIP174 allows it): the witness utxo
	// is read from it.
	only := clone(t, p)
	only.Inputs[0].WitnessUtxo = nil
	if text, code, _ := sign("prev-only", only); code != 0 || !strings.Contains(text, "signed 1 input(s)") {
		t.Fatalf("sign with only the previous transaction = %d\n%s", code, text)
	}

	// No previous transaction: the amount is only what the PSBT says.
	bare := clone(t, p)
	bare.Inputs[0].NonWitnessUtxo = nil
	text, code, out = sign("unproved", bare)
	if code == 0 || !strings.Contains(text, "(amount as the PSBT claims it: no previous transaction)") ||
		!strings.Contains(text, "1 segwit v0 input(s) without their previous transaction") || !strings.Contains(text, "not signed, nothing written") {
		t.Fatalf("sign without the previous transaction = %d\n%s", code, text)
	}
	noFile("unproved", out)
	if text, code, _ := sign("unproved-allowed", bare, "--allow-unproved-amounts"); code != 0 || !strings.Contains(text, "signed 1 input(s)") {
		t.Fatalf("sign --allow-unproved-amounts = %d\n%s", code, text)
	}

	// A witness utxo the previous transaction contradicts (the amount
	// BIP143 signs but does not prove, with which two signing rounds over
	// two inputs can be made to pay a fee nobody was shown): refused.
	lie := clone(t, p)
	lie.Inputs[0].WitnessUtxo = wire.NewTxOut(1_300_000, lie.Inputs[0].WitnessUtxo.PkScript)
	text, code, out = sign("lie", lie)
	if code == 0 || !strings.Contains(text, "input's previous transaction does not match: its output 1 is 1000000 sat") || !strings.Contains(text, "not signed, nothing written") {
		t.Fatalf("sign with a witness utxo the previous transaction contradicts = %d\n%s", code, text)
	}
	noFile("lie", out)
	// A previous transaction that is not the one spent.
	swapped := clone(t, p)
	other := swapped.Inputs[0].NonWitnessUtxo.Copy()
	other.LockTime++
	swapped.Inputs[0].NonWitnessUtxo = other
	swapped.Inputs[0].WitnessUtxo = nil
	text, code, out = sign("swapped", swapped)
	if code == 0 || !strings.Contains(text, "input's previous transaction does not match") || !strings.Contains(text, "not signed") {
		t.Fatalf("sign with another previous transaction = %d\n%s", code, text)
	}
	noFile("swapped", out)

	// A wallet not registered here (its keys without ours).
	theirs := madeKeys(t, 0x53, 0x54, 0x55)
	tp, _ := madeElsewhere(t, theirs)
	text, code, out = sign("theirs", tp)
	if code == 0 || !strings.Contains(text, "input 1 is of no wallet registered here") || !strings.Contains(text, "not signed, nothing written") {
		t.Fatalf("sign of another wallet's PSBT = %d\n%s", code, text)
	}
	noFile("theirs", out)
}

func clone(t *testing.T, p *psbt.Packet) *psbt.Packet {
	t.Helper()
	s, err := wallet.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	c, err := wallet.Read(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func findDerivation(t *testing.T, ds []*psbt.Bip32Derivation, fp [4]byte) []byte {
	t.Helper()
	want := uint32(fp[0]) | uint32(fp[1])<<8 | uint32(fp[2])<<16 | uint32(fp[3])<<24
	for _, d := range ds {
		if d.MasterKeyFingerprint == want {
			return d.PubKey
		}
	}
	t.Fatalf("no derivation of key %x", fp)
	return nil
}

// verifySig checks a P2WSH signature of input 0 against BIP143's sighash,
// computed here from the PSBT's witness script and amount: SIGHASH_ALL,
// DER with a low (32-byte) R.
func verifySig(t *testing.T, p *psbt.Packet, sig, pub []byte) {
	t.Helper()
	if len(sig) < 9 || sig[len(sig)-1] != byte(txscript.SigHashAll) {
		t.Fatalf("signature %x is not SIGHASH_ALL", sig)
	}
	der := sig[:len(sig)-1]
	if der[3] != 32 || der[4] >= 0x80 {
		t.Errorf("signature %x: R is not low (%d bytes)", sig, der[3])
	}
	s, err := ecdsa.ParseDERSignature(der)
	if err != nil {
		t.Fatal(err)
	}
	pin := p.Inputs[0]
	fetch := txscript.NewCannedPrevOutputFetcher(pin.WitnessUtxo.PkScript, pin.WitnessUtxo.Value)
	hash, err := txscript.CalcWitnessSigHash(pin.WitnessScript, txscript.NewTxSigHashes(p.UnsignedTx, fetch), txscript.SigHashAll, p.UnsignedTx, 0, pin.WitnessUtxo.Value)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := btcec.ParsePubKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Verify(hash, pk) {
		t.Fatal("the signature does not verify against BIP143's sighash")
	}
}

// TestWalletGap: kinko wallet gap reports, for each cold customer wallet,
// the addresses handed out, those used, the last used, the unused run
// after it and the longest, and says OVER when the longest run exceeds
// the restore's gap limit; a customer asking again for an address is
// handed their unused one, so asking does not grow the run; --at reads an
// earlier state.
func TestWalletGap(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	c, err := core.Open(ctx, core.Config{Dir: dir, CheckInvariants: true})
	if err != nil {
		t.Fatal(err)
	}
	submit := func(cmd core.Command) core.Outcome {
		t.Helper()
		o, err := c.Submit(ctx, time.Now(), cmd)
		if err != nil || o.Err != nil || o.EventErr() != nil {
			t.Fatal(cmd.Kind(), err, o.Err, o.EventErr())
		}
		return o
	}
	var ids []ledger.OwnerID
	for i := 1; i <= 30; i++ {
		ids = append(ids, ledger.OwnerID(i))
	}
	submit(core.CreateAssets{Assets: []ledger.Asset{{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}})
	submit(core.CreateCustomers{IDs: ids})
	foundCrew(t, c, t.TempDir())
	registerWallets(t, c, custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: 2, Descriptor: "cold", Owner: ledger.OwnerHouseMin + 100},
		custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: 2, Descriptor: "hot", Owner: ledger.OwnerHouseMin + 101})
	// Customers 1 to 25 take indexes 0 to 24; each asks four times more.
	for _, id := range ids[:25] {
		for range 5 {
			if o := submit(core.AssignAddress{Wallet: 1, Customer: id}); o.Value.(uint32) != uint32(id-1) {
				t.Fatalf("customer %d got index %d; want %d", id, o.Value, id-1)
			}
		}
	}
	// Deposits to indexes 0 and 3.
	for i, idx := range []uint32{0, 3} {
		submit(core.CreditDeposits{Deposits: []custody.Seen{{Outpoint: custody.Outpoint{TxID: [32]byte{byte(1 + i)}}, Wallet: 1, Index: idx, Amount: 10_000, Height: 5}}})
	}
	var before uint64
	c.Read(func(s *core.State) { before = s.Seq() })
	// Customer 4 (index 3, used) asks again: a new index, 25.
	if o := submit(core.AssignAddress{Wallet: 1, Customer: 4}); o.Value.(uint32) != 25 {
		t.Fatalf("customer 4, whose address was paid, got index %d; want 25", o.Value)
	}
	c.Close()

	out, code := run(t, "wallet", "gap", "--data", dir)
	want := "wallet 1 (cold-customer): 26 addresses handed out, 2 used, last used 3; 22 unused after it; longest unused run 22 (from index 4): OVER a gap limit of 20\n" +
		"a watch-only wallet restored with a gap limit of 20 would miss deposits after the longest run: restore with a larger one (Core: importdescriptors range, kinko descriptor --core --range)\n"
	if code != 0 || out != want {
		t.Fatalf("wallet gap = %d\n%s\nwant\n%s", code, out, want)
	}
	out, code = run(t, "wallet", "gap", "--data", dir, "--limit", "22")
	if code != 0 || out != "wallet 1 (cold-customer): 26 addresses handed out, 2 used, last used 3; 22 unused after it; longest unused run 22 (from index 4): within a gap limit of 22\n" {
		t.Fatalf("wallet gap --limit 22 = %d\n%s", code, out)
	}
	out, code = run(t, "wallet", "gap", "--data", dir, "--at", fmt.Sprint(before))
	if code != 0 || !strings.HasPrefix(out, "wallet 1 (cold-customer): 25 addresses handed out, 2 used, last used 3; 21 unused after it; longest unused run 21 (from index 4): OVER") {
		t.Fatalf("wallet gap --at %d = %d\n%s", before, code, out)
	}
	missing := filepath.Join(dir, "missing")
	if out, code := run(t, "wallet", "gap", "--data", missing); code == 0 || !strings.Contains(out, "kinko: no journal in "+missing) {
		t.Fatalf("wallet gap of a missing data directory = %d\n%s", code, out)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("wallet gap made the missing data directory (%v)", err)
	}
}
