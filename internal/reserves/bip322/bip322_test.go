package bip322

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/keys"
	"kinko/internal/wallet"
)

type vectors struct {
	PrivateKey string `json:"private_key_wif"`
	Address    string `json:"address"`
	Messages   []struct {
		Message     string   `json:"message"`
		MessageHash string   `json:"message_hash"`
		ToSpend     string   `json:"to_spend"`
		ToSign      string   `json:"to_sign"`
		Signatures  []string `json:"signatures"`
	} `json:"messages"`
}

func loadVectors(t *testing.T) (*vectors, []byte) {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	addr, err := btcutil.DecodeAddress(v.Address, &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := txscript.PayToAddrScript(addr)
	return &v, pk
}

// TestProofBIP322Vectors: BIP-322's vectors — the message hashes, the
// to_spend and to_sign transaction ids, and the P2WPKH signatures, each
// verified as a full signature too; a signature of our own by the
// vectors' key verifies; each signature fails for the other message and
// another address.
func TestProofBIP322Vectors(t *testing.T) {
	v, challenge := loadVectors(t)
	wif, err := btcutil.DecodeWIF(v.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	own, _ := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(wif.PrivKey.PubKey().SerializeCompressed()), &chaincfg.MainNetParams)
	if own.EncodeAddress() != v.Address {
		t.Fatalf("the vectors' key gives %s; want %s", own.EncodeAddress(), v.Address)
	}
	other, _ := txscript.PayToAddrScript(mustAddr(t, "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"))
	for i, m := range v.Messages {
		msg := []byte(m.Message)
		if h := MessageHash(msg); hex.EncodeToString(h[:]) != m.MessageHash {
			t.Errorf("MessageHash(%q) = %x; want %s", m.Message, h, m.MessageHash)
		}
		if got := ToSpend(challenge, msg).TxHash().String(); got != m.ToSpend {
			t.Errorf("to_spend(%q) = %s; want %s", m.Message, got, m.ToSpend)
		}
		if got := ToSign(challenge, msg).TxHash().String(); got != m.ToSign {
			t.Errorf("to_sign(%q) = %s; want %s", m.Message, got, m.ToSign)
		}
		otherMsg := []byte(v.Messages[1-i].Message)
		for _, sig := range m.Signatures {
			tx, err := SimpleToFull(challenge, msg, sig)
			if err != nil {
				t.Fatal(err)
			}
			if err := Verify(challenge, msg, tx); err != nil {
				t.Errorf("vector signature of %q: %v", m.Message, err)
			}
			full, _ := EncodeFull(tx)
			if err := VerifyFull(challenge, msg, full); err != nil {
				t.Errorf("vector signature of %q as a full signature: %v", m.Message, err)
			}
			if tx, _ := SimpleToFull(challenge, otherMsg, sig); Verify(challenge, otherMsg, tx) == nil {
				t.Errorf("the signature of %q verifies for %q", m.Message, otherMsg)
			}
			if tx, _ := SimpleToFull(other, msg, sig); Verify(other, msg, tx) == nil {
				t.Errorf("the signature of %q verifies for another address", m.Message)
			}
		}
		// Our own signature with the vectors' key.
		tx := ToSign(challenge, msg)
		prev := txscript.NewCannedPrevOutputFetcher(challenge, 0)
		w, err := txscript.WitnessSignature(tx, txscript.NewTxSigHashes(tx, prev), 0, 0, challenge, txscript.SigHashAll, wif.PrivKey, true)
		if err != nil {
			t.Fatal(err)
		}
		tx.TxIn[0].Witness = w
		if err := Verify(challenge, msg, tx); err != nil {
			t.Errorf("our signature of %q: %v", m.Message, err)
		}
	}
}

func mustAddr(t *testing.T, s string) btcutil.Address {
	t.Helper()
	a, err := btcutil.DecodeAddress(s, &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestProofBIP322Refusals: a vector signature in a to_sign changed in
// any of the ways BIP-322 forbids is refused, as is malformed input.
func TestProofBIP322Refusals(t *testing.T) {
	v, challenge := loadVectors(t)
	msg := []byte(v.Messages[1].Message)
	good := func() *wire.MsgTx {
		tx, err := SimpleToFull(challenge, msg, v.Messages[1].Signatures[0])
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	for _, c := range []struct {
		name string
		edit func(*wire.MsgTx)
		want error
	}{
		{"output value 1", func(tx *wire.MsgTx) { tx.TxOut[0].Value = 1 }, ErrInvalid},
		{"output paying the address", func(tx *wire.MsgTx) { tx.TxOut[0].PkScript = challenge }, ErrInvalid},
		{"two outputs", func(tx *wire.MsgTx) { tx.AddTxOut(wire.NewTxOut(0, []byte{txscript.OP_RETURN})) }, ErrInvalid},
		{"another prevout", func(tx *wire.MsgTx) { tx.TxIn[0].PreviousOutPoint.Index = 1 }, ErrInvalid},
		{"a second input", func(tx *wire.MsgTx) { tx.AddTxIn(&wire.TxIn{}) }, ErrUnsupported},
		{"version 1", func(tx *wire.MsgTx) { tx.Version = 1 }, ErrUnsupported},
		{"a lock time", func(tx *wire.MsgTx) { tx.LockTime = 5 }, ErrUnsupported},
		{"a scriptSig", func(tx *wire.MsgTx) { tx.TxIn[0].SignatureScript = []byte{txscript.OP_TRUE} }, ErrInvalid},
		{"no witness", func(tx *wire.MsgTx) { tx.TxIn[0].Witness = nil }, ErrInvalid},
		{"SIGHASH_NONE", func(tx *wire.MsgTx) {
			s := tx.TxIn[0].Witness[0]
			s[len(s)-1] = byte(txscript.SigHashNone)
		}, ErrInvalid},
		{"a changed signature", func(tx *wire.MsgTx) { tx.TxIn[0].Witness[0][10] ^= 1 }, ErrInvalid},
		{"an extra witness item", func(tx *wire.MsgTx) { tx.TxIn[0].Witness = append(wire.TxWitness{{1}}, tx.TxIn[0].Witness...) }, ErrInvalid},
	} {
		tx := good()
		c.edit(tx)
		if err := Verify(challenge, msg, tx); !errors.Is(err, c.want) {
			t.Errorf("%s: Verify = %v; want %v", c.name, err, c.want)
		}
	}
	if err := Verify([]byte{txscript.OP_TRUE}, msg, good()); !errors.Is(err, ErrUnsupported) {
		t.Errorf("a bare script challenge: %v; want ErrUnsupported", err)
	}
	full, _ := EncodeFull(good())
	raw, _ := base64.StdEncoding.DecodeString(full)
	for name, sig := range map[string]string{
		"not base64":     "%%%",
		"truncated":      base64.StdEncoding.EncodeToString(raw[:len(raw)-3]),
		"trailing bytes": base64.StdEncoding.EncodeToString(append(raw, 0)),
	} {
		if err := VerifyFull(challenge, msg, sig); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: VerifyFull = %v; want ErrInvalid", name, err)
		}
	}
}

// TestProofBIP322Multisig signs a message for a 2-of-3 P2WSH address as
// the offline machines do (the to_sign PSBT, wallet.Set.Sign with each
// key, combined): two keys verify; one key, or two keys of which one is
// not the wallet's, do not; the PSBT's transaction is exactly to_sign.
func TestProofBIP322Multisig(t *testing.T) {
	net := &chaincfg.RegressionNetParams
	d := &wallet.Descriptor{M: 2, Net: net}
	type signer struct {
		ak wallet.Key
		k  *keys.Key
	}
	var signers []signer
	for _, s := range []byte{1, 2, 3, 9} {
		k, err := keys.New(bytes.NewReader(bytes.Repeat([]byte{s}, 32)), net)
		if err != nil {
			t.Fatal(err)
		}
		ak, _, _ := wallet.AccountKey(k.Master, net, 0)
		signers = append(signers, signer{ak, k})
		if s != 9 {
			d.Keys = append(d.Keys, ak)
		}
	}
	desc, err := wallet.Parse(d.String(), net)
	if err != nil {
		t.Fatal(err)
	}
	set, err := wallet.NewSetFor(net, []wallet.Named{{ID: 1, Name: "cold", Kind: "cold-customer", Descriptor: desc.String()}})
	if err != nil {
		t.Fatal(err)
	}
	challenge, _ := desc.PkScript(0, 0)
	msg := []byte("kinko proof of reserves\nasset: BTC\n")
	request := func() *psbt.Packet {
		p, err := NewPSBT(challenge, msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := wallet.AddInput(p, 0, desc, 0, 0, 0); err != nil {
			t.Fatal(err)
		}
		if !IsToSign(p.UnsignedTx, challenge, msg) {
			t.Fatal("the PSBT's transaction is not to_sign")
		}
		return p
	}
	sign := func(who ...int) *wire.MsgTx {
		var acc *psbt.Packet
		for _, i := range who {
			p := request()
			s := signers[i]
			_, acct, _ := wallet.AccountKey(s.k.Master, net, 0)
			// A key the wallet does not hold signs nothing: the attacker
			// adds his own partial signature by hand.
			if i == 3 {
				tx := p.UnsignedTx
				ws, _ := desc.WitnessScript(0, 0)
				c, _ := acct.Derive(0)
				c, _ = c.Derive(0)
				priv, _ := c.ECPrivKey()
				sig, err := txscript.RawTxInWitnessSignature(tx, txscript.NewTxSigHashes(tx, txscript.NewCannedPrevOutputFetcher(challenge, 0)), 0, 0, ws, txscript.SigHashAll, priv)
				if err != nil {
					t.Fatal(err)
				}
				p.Inputs[0].PartialSigs = append(p.Inputs[0].PartialSigs, &psbt.PartialSig{PubKey: priv.PubKey().SerializeCompressed(), Signature: sig})
			} else if n, err := set.Sign(p, acct, s.ak.Fingerprint); err != nil || n != 1 {
				t.Fatalf("Sign = %d, %v", n, err)
			}
			if acc == nil {
				acc = p
			} else if err := wallet.Combine(acc, p); err != nil {
				t.Fatal(err)
			}
		}
		tx, err := Assemble(acc)
		if err != nil {
			t.Fatalf("Assemble(%v) = %v", who, err)
		}
		return tx
	}
	for _, c := range []struct {
		who []int
		ok  bool
	}{{[]int{0, 2}, true}, {[]int{1, 0}, true}, {[]int{0, 1, 2}, true}, {[]int{1}, false}, {[]int{0, 3}, false}} {
		tx := sign(c.who...)
		err := Verify(challenge, msg, tx)
		if (err == nil) != c.ok {
			t.Errorf("signed by keys %v: Verify = %v; want ok=%v", c.who, err, c.ok)
		}
		if c.ok {
			full, _ := EncodeFull(tx)
			if err := VerifyFull(challenge, append(msg, '!'), full); err == nil {
				t.Errorf("keys %v: the signature verifies for another message", c.who)
			}
			other, _ := desc.PkScript(0, 1)
			if err := VerifyFull(other, msg, full); err == nil {
				t.Errorf("keys %v: the signature verifies for another address of the wallet", c.who)
			}
		}
	}
	if _, err := Assemble(request()); !errors.Is(err, ErrInvalid) {
		t.Errorf("Assemble(unsigned) = %v", err)
	}
}
