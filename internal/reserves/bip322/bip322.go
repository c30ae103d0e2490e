// Package bip322 signs and verifies messages with Bitcoin scripts after
// BIP-322 (Generic Signed Message Format), in its "full" format: the
// signature is the whole virtual to_sign transaction, spending the
// virtual to_spend transaction that commits to the message and pays the
// address being proven. A message is signed as any transaction is, so the
// offline machines sign it as a PSBT with the ceremony's own flow, and it
// is verified by btcd's script engine (txscript) with the standard flags.
//
// kinko proves control of its cold wallets (2-of-3 P2WSH multisig) this
// way; P2WPKH is supported too, for BIP-322's test vectors. Proofs of
// funds (extra inputs), time locks and other script types are refused.
package bip322

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Tag is BIP-322's tag of the message hash.
const Tag = "BIP0322-signed-message"

// MaxMessage bounds a message and MaxSignature a full signature's bytes.
const (
	MaxMessage   = 1 << 16
	MaxSignature = 1 << 16
)

// Errors callers can test.
var (
	// ErrInvalid reports a signature that does not prove the message for
	// the address: malformed, not of BIP-322's form, or failing the script.
	ErrInvalid = errors.New("bip322: signature invalid")
	// ErrUnsupported reports a signature of a form this verifier does not
	// check (proof of funds, time locks, script types other than P2WPKH
	// and P2WSH): BIP-322's "inconclusive".
	ErrUnsupported = errors.New("bip322: signature inconclusive here")
)

// MessageHash returns BIP-322's message hash: the BIP-340 tagged hash
// SHA-256(SHA-256(tag) || SHA-256(tag) || message).
func MessageHash(msg []byte) chainhash.Hash {
	return *chainhash.TaggedHash([]byte(Tag), msg)
}

// ToSpend returns the virtual transaction that commits to msg and pays
// challenge (the scriptPubKey of the address proven): version 0, one input
// spending 000...000:ffffffff with sequence 0 and scriptSig OP_0
// PUSH32[message hash], one output of 0 paying challenge, lock time 0.
func ToSpend(challenge, msg []byte) *wire.MsgTx {
	h := MessageHash(msg)
	sig := append([]byte{txscript.OP_0, txscript.OP_DATA_32}, h[:]...)
	tx := wire.NewMsgTx(0)
	tx.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: 0xffffffff}, SignatureScript: sig, Sequence: 0})
	tx.AddTxOut(wire.NewTxOut(0, challenge))
	return tx
}

// ToSign returns the unsigned virtual transaction that spends ToSpend's
// output: version 0, one input (to_spend:0, sequence 0), one output of 0
// paying OP_RETURN, lock time 0.
func ToSign(challenge, msg []byte) *wire.MsgTx {
	tx := wire.NewMsgTx(0)
	tx.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: ToSpend(challenge, msg).TxHash(), Index: 0}, Sequence: 0})
	tx.AddTxOut(wire.NewTxOut(0, []byte{txscript.OP_RETURN}))
	return tx
}

// NewPSBT returns to_sign as a PSBT whose one input carries to_spend's
// output as its witness utxo; the caller adds what its signers need (the
// witness script and BIP32 derivations: wallet.AddInput). psbt.New
// refuses version 0, so the packet is made from the transaction.
func NewPSBT(challenge, msg []byte) (*psbt.Packet, error) {
	p, err := psbt.NewFromUnsignedTx(ToSign(challenge, msg))
	if err != nil {
		return nil, err
	}
	p.Inputs[0].WitnessUtxo = wire.NewTxOut(0, challenge)
	return p, nil
}

// IsToSign reports whether tx is exactly the unsigned to_sign of msg for
// challenge: a signer checks this before it signs a message request, so
// that what it signs can move nothing.
func IsToSign(tx *wire.MsgTx, challenge, msg []byte) bool {
	want := ToSign(challenge, msg)
	var a, b bytes.Buffer
	if tx.SerializeNoWitness(&a) != nil || want.SerializeNoWitness(&b) != nil {
		return false
	}
	return bytes.Equal(a.Bytes(), b.Bytes())
}

// EncodeFull returns the full-format signature of a signed to_sign: its
// network serialization (with witness) in base64.
func EncodeFull(tx *wire.MsgTx) (string, error) {
	var b bytes.Buffer
	if err := tx.Serialize(&b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b.Bytes()), nil
}

// DecodeFull decodes a full-format signature (base64 of the signed
// to_sign), every byte consumed.
func DecodeFull(sig string) (*wire.MsgTx, error) {
	if len(sig) > MaxSignature*4/3+4 {
		return nil, fmt.Errorf("%w: signature of %d characters", ErrInvalid, len(sig))
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrInvalid)
	}
	tx := wire.NewMsgTx(0)
	r := bytes.NewReader(raw)
	if err := tx.Deserialize(r); err != nil {
		return nil, fmt.Errorf("%w: not a transaction: %v", ErrInvalid, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the transaction", ErrInvalid, r.Len())
	}
	return tx, nil
}

// SimpleToFull turns a "simple" signature (a witness stack, consensus
// encoded, base64) into the full to_sign it stands for.
func SimpleToFull(challenge, msg []byte, simple string) (*wire.MsgTx, error) {
	raw, err := base64.StdEncoding.DecodeString(simple)
	if err != nil || len(raw) > MaxSignature {
		return nil, fmt.Errorf("%w: not base64", ErrInvalid)
	}
	r := bytes.NewReader(raw)
	n, err := wire.ReadVarInt(r, 0)
	if err != nil || n > 1000 {
		return nil, fmt.Errorf("%w: witness stack", ErrInvalid)
	}
	var w wire.TxWitness
	for i := uint64(0); i < n; i++ {
		item, err := wire.ReadVarBytes(r, 0, MaxSignature, "witness item")
		if err != nil {
			return nil, fmt.Errorf("%w: witness item %d", ErrInvalid, i)
		}
		w = append(w, item)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: bytes after the witness stack", ErrInvalid)
	}
	tx := ToSign(challenge, msg)
	tx.TxIn[0].Witness = w
	return tx, nil
}

// Verify checks that toSign, a full-format signature decoded, proves msg
// for challenge: to_sign is of BIP-322's form for this message and
// address (one input spending to_spend:0, one OP_RETURN output of 0,
// version 0 or 2; no time locks, no proof-of-funds inputs here), every
// signature is SIGHASH_ALL, no OP_CODESEPARATOR, and btcd's script engine
// accepts the input with the standard verification flags (which hold
// BIP-322's required rules: strict DER, low S, NULLFAIL, minimal data and
// IF, clean stack, witness public key type).
func Verify(challenge, msg []byte, toSign *wire.MsgTx) error {
	if len(msg) > MaxMessage {
		return fmt.Errorf("%w: message of %d bytes", ErrInvalid, len(msg))
	}
	class := txscript.GetScriptClass(challenge)
	if class != txscript.WitnessV0PubKeyHashTy && class != txscript.WitnessV0ScriptHashTy {
		return fmt.Errorf("%w: %s addresses", ErrUnsupported, class)
	}
	toSpend := ToSpend(challenge, msg)
	switch {
	case len(toSign.TxIn) == 0 || toSign.TxIn[0].PreviousOutPoint != (wire.OutPoint{Hash: toSpend.TxHash(), Index: 0}):
		return fmt.Errorf("%w: to_sign does not spend this message's to_spend", ErrInvalid)
	case len(toSign.TxOut) != 1 || toSign.TxOut[0].Value != 0 || !bytes.Equal(toSign.TxOut[0].PkScript, []byte{txscript.OP_RETURN}):
		return fmt.Errorf("%w: to_sign must have one output of 0 paying OP_RETURN", ErrInvalid)
	case len(toSign.TxIn) > 1:
		return fmt.Errorf("%w: proof of funds (inputs beyond to_spend)", ErrUnsupported)
	case toSign.Version != 0 && toSign.Version != 2:
		return fmt.Errorf("%w: to_sign version %d", ErrUnsupported, toSign.Version)
	case toSign.LockTime != 0 || toSign.TxIn[0].Sequence != 0:
		return fmt.Errorf("%w: time locks", ErrUnsupported)
	case len(toSign.TxIn[0].SignatureScript) != 0:
		return fmt.Errorf("%w: a scriptSig on a native segwit input", ErrInvalid)
	}
	w := toSign.TxIn[0].Witness
	if len(w) == 0 {
		return fmt.Errorf("%w: no witness", ErrInvalid)
	}
	sigs := w[:len(w)-1] // P2WPKH: the signature; P2WSH: what the script takes
	if class == txscript.WitnessV0ScriptHashTy {
		tok := txscript.MakeScriptTokenizer(0, w[len(w)-1])
		for tok.Next() {
			if tok.Opcode() == txscript.OP_CODESEPARATOR {
				return fmt.Errorf("%w: OP_CODESEPARATOR", ErrInvalid)
			}
		}
	}
	for i, s := range sigs {
		if len(s) > 0 && txscript.SigHashType(s[len(s)-1]) != txscript.SigHashAll {
			return fmt.Errorf("%w: witness item %d is not SIGHASH_ALL", ErrInvalid, i)
		}
	}
	prev := txscript.NewCannedPrevOutputFetcher(challenge, 0)
	hashes := txscript.NewTxSigHashes(toSign, prev)
	vm, err := txscript.NewEngine(challenge, toSign, 0, txscript.StandardVerifyFlags, nil, hashes, 0, prev)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := vm.Execute(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// VerifyFull decodes a full-format signature and verifies it.
func VerifyFull(challenge, msg []byte, sig string) error {
	tx, err := DecodeFull(sig)
	if err != nil {
		return err
	}
	return Verify(challenge, msg, tx)
}

// Assemble returns the signed to_sign of a PSBT the offline machines
// signed and combined, its witness made from the partial signatures: for
// a P2WSH multisig input, the dummy, the signatures in the witness
// script's key order (as many as the script takes: btcd's PSBT finalizer
// would put every one in, and a 2-of-3 signed by three keys would then
// fail), and the script; for P2WPKH, the signature and key. A PSBT short
// of signatures is assembled all the same, so that Verify gives the
// script's own verdict. p is not changed.
func Assemble(p *psbt.Packet) (*wire.MsgTx, error) {
	if len(p.Inputs) != 1 || len(p.UnsignedTx.TxIn) != 1 {
		return nil, fmt.Errorf("%w: a message PSBT has one input", ErrInvalid)
	}
	in := p.Inputs[0]
	if len(in.PartialSigs) == 0 {
		return nil, fmt.Errorf("%w: the PSBT carries no signature", ErrInvalid)
	}
	var w wire.TxWitness
	if len(in.WitnessScript) == 0 {
		if len(in.PartialSigs) != 1 {
			return nil, fmt.Errorf("%w: %d signatures for a single-key input", ErrInvalid, len(in.PartialSigs))
		}
		w = wire.TxWitness{in.PartialSigs[0].Signature, in.PartialSigs[0].PubKey}
	} else {
		_, need, err := txscript.CalcMultiSigStats(in.WitnessScript)
		if err != nil {
			return nil, fmt.Errorf("%w: the witness script is not a multisig script", ErrUnsupported)
		}
		w = wire.TxWitness{nil}
		tok := txscript.MakeScriptTokenizer(0, in.WitnessScript)
		for tok.Next() && len(w) <= need {
			if len(tok.Data()) != 33 {
				continue
			}
			for _, ps := range in.PartialSigs {
				if bytes.Equal(ps.PubKey, tok.Data()) {
					w = append(w, ps.Signature)
					break
				}
			}
		}
		w = append(w, in.WitnessScript)
	}
	tx := p.UnsignedTx.Copy()
	tx.TxIn[0].Witness = w
	return tx, nil
}
