package wallet

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// registered returns the signer's set: testKeys' wallet as "cold-main".
func registered(t *testing.T) ([]*Key, *Set) {
	t.Helper()
	_, d := testKeys(t)
	set, err := NewSetFor(regtest, []Named{{ID: 1, Name: "cold-main", Kind: "cold-customer", Descriptor: d.String()}})
	if err != nil {
		t.Fatal(err)
	}
	var ks []*Key
	for i := range d.Keys {
		ks = append(ks, &d.Keys[i])
	}
	return ks, set
}

// payAttacker builds a PSBT spending our receive #2 to the attacker's
// script and our change #4.
func payAttacker(t *testing.T, set *Set, attacker []byte) *psbt.Packet {
	t.Helper()
	w := set.Wallets[0]
	u := UTXO{OutPoint: wire.OutPoint{Hash: chainhash.Hash{9}, Index: 0}, Value: 1_000_000, Wallet: w, Branch: 0, Index: 2}
	p, err := Build([]UTXO{u}, []*wire.TxOut{wire.NewTxOut(300_000, attacker)}, w, 4, 10)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDescribeClaims: an output that is not a registered wallet's is a
// payment to an outside address, whatever the request calls it; claimed
// as change or as a wallet of our keys, it is a refusal.
func TestDescribeClaims(t *testing.T) {
	ours, set := registered(t)
	attacker := otherKeys(t, 40)
	attackerRecv, _ := attacker.PkScript(0, 0)
	attackerChange, _ := attacker.PkScript(1, 3)
	// The attacker's descriptor with one of our keys in it.
	mixed := &Descriptor{M: 2, Net: regtest, Keys: []Key{attacker.Keys[0], attacker.Keys[1], *ours[1]}}
	mixedRecv, _ := mixed.PkScript(0, 0)
	claim := func(d *Descriptor) *Set {
		s, err := NewSetFor(regtest, []Named{{ID: 9, Kind: "cold-house", Descriptor: d.String()}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ws, _ := attacker.WitnessScript(0, 0)
	for _, c := range []struct {
		name   string
		script []byte
		claims *Set
		edit   func(*psbt.POutput)
		want   string // "" for no refusal
	}{
		{"unclaimed", attackerRecv, nil, nil, ""},
		{"listed, receive", attackerRecv, claim(attacker), nil, ""},
		{"listed as change", attackerChange, claim(attacker), nil, "output 1 is listed by the request as change #3 of wallet 9 (cold-house)"},
		{"listed, names our key", mixedRecv, claim(mixed), nil, "a wallet naming our key " + hexFP(ours[1])},
		{"our fingerprint", attackerRecv, nil, func(o *psbt.POutput) {
			o.Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: make([]byte, 33), MasterKeyFingerprint: fpUint(ours[0]), Bip32Path: append(append([]uint32(nil), ours[0].Path...), 1, 4)}}
		}, "output 1 carries a BIP32 derivation of our key " + hexFP(ours[0])},
		{"witness script", attackerRecv, nil, func(o *psbt.POutput) { o.WitnessScript = ws }, "output 1 carries its witness script"},
	} {
		p := payAttacker(t, set, c.script)
		if c.edit != nil {
			c.edit(&p.Outputs[0])
		}
		d, err := set.Describe(p, c.claims)
		if err != nil {
			t.Fatalf("%s: Describe = %v", c.name, err)
		}
		text := d.String()
		if !strings.Contains(text, "[payment to an outside address]") || strings.Count(text, "ours:") != 2 || !strings.Contains(text, "ours: cold-main (cold-customer) change #4") || !strings.Contains(text, "paid to outside addresses: 0.00300000 BTC") {
			t.Errorf("%s: description:\n%s", c.name, text)
		}
		err = d.Refusal()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: Refusal() = %v; want none", c.name, err)
		case c.want != "" && (!errors.Is(err, ErrUnregistered) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "refuses change to an unregistered wallet")):
			t.Errorf("%s: Refusal() = %v; want ErrUnregistered with %q", c.name, err, c.want)
		}
	}

	// Our own change with another witness script than the descriptor's.
	p := payAttacker(t, set, attackerRecv)
	p.Outputs[1].WitnessScript = ws
	if d, _ := set.Describe(p, nil); !errors.Is(d.Refusal(), ErrScriptChanged) {
		t.Errorf("change with a changed witness script: Refusal() = %v", d.Refusal())
	}
}

// TestLocateHints: an index past Gap is found from the PSBT's derivations
// only when the descriptor gives the same script there.
func TestLocateHints(t *testing.T) {
	accts, _ := testKeys(t)
	ours, set := registered(t)
	w := set.Wallets[0]
	far := UTXO{OutPoint: wire.OutPoint{Hash: chainhash.Hash{7}, Index: 1}, Value: 500_000, Wallet: w, Branch: 0, Index: Gap + 5}
	attacker := otherKeys(t, 40)
	pay, _ := attacker.PkScript(0, 0)
	p, err := Build([]UTXO{far}, []*wire.TxOut{wire.NewTxOut(100_000, pay)}, w, Gap+7, 10)
	if err != nil {
		t.Fatal(err)
	}
	d, err := set.Describe(p, nil)
	if err != nil || d.Refusal() != nil {
		t.Fatal(err, d.Refusal())
	}
	if text := d.String(); !strings.Contains(text, "ours: cold-main (cold-customer) receive #1005") || !strings.Contains(text, "ours: cold-main (cold-customer) change #1007") {
		t.Fatalf("description:\n%s", text)
	}
	if n, err := set.Sign(clonePSBT(t, p), accts[0], ours[0].Fingerprint); err != nil || n != 1 {
		t.Fatalf("Sign(input past Gap) = %d, %v", n, err)
	}
	// The same derivations on a script that is not there: not believed.
	lie := clonePSBT(t, p)
	lie.Inputs[0].WitnessUtxo.PkScript = pay
	if d, _ := set.Describe(lie, nil); !errors.Is(d.Refusal(), ErrNotOurs) {
		t.Errorf("input with lying derivations: Refusal() = %v", d.Refusal())
	}
	if _, err := set.Sign(lie, accts[0], ours[0].Fingerprint); !errors.Is(err, ErrNotOurs) {
		t.Errorf("Sign(input with lying derivations) = %v; want ErrNotOurs", err)
	}
	// Derivations pointing at the right wallet but another index.
	shifted := clonePSBT(t, p)
	for _, h := range shifted.Inputs[0].Bip32Derivation {
		h.Bip32Path[len(h.Bip32Path)-1]++
	}
	if _, err := set.Sign(shifted, accts[0], ours[0].Fingerprint); !errors.Is(err, ErrNotOurs) {
		t.Errorf("Sign(input with shifted derivations) = %v; want ErrNotOurs", err)
	}
}

func fpUint(k *Key) uint32 {
	f := k.Fingerprint
	return uint32(f[0]) | uint32(f[1])<<8 | uint32(f[2])<<16 | uint32(f[3])<<24
}

func hexFP(k *Key) string { return hex.EncodeToString(k.Fingerprint[:]) }
