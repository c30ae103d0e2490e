package wallet

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// ErrSignatures reports an input without enough valid signatures.
var ErrSignatures = errors.New("wallet: not enough valid signatures")

// Finalize finalizes every input and extracts the signed transaction,
// checked by the script engine. A multisig input takes exactly M valid
// signatures, in the script's key order: for wsh(sortedmulti) the dummy
// item, then the signatures of the first M keys of the sorted script that
// signed (a 2-of-3 signed by all three is finalized with two: btcd's
// finalizer puts every partial signature in, and CHECKMULTISIG fails);
// for tr(sortedmulti_a) one item per key, in reverse script order (the
// first key's on top), the signatures of the first M keys that signed and
// empty items for the rest, since NUMEQUAL wants exactly M. A signature
// is used only if it verifies over the sighash of its own type and that
// type is the one the input asks for; an input already final is kept.
// Finalized inputs lose their signing fields, as BIP174 says.
func Finalize(p *psbt.Packet) (*wire.MsgTx, error) {
	if len(p.Inputs) != len(p.UnsignedTx.TxIn) {
		return nil, fmt.Errorf("%w: inputs", ErrPSBT)
	}
	prevs := map[wire.OutPoint]*wire.TxOut{}
	for i, pin := range p.Inputs {
		if pin.WitnessUtxo == nil {
			return nil, fmt.Errorf("%w: input %d", ErrNoUtxo, i)
		}
		prevs[p.UnsignedTx.TxIn[i].PreviousOutPoint] = pin.WitnessUtxo
	}
	fetcher := txscript.NewMultiPrevOutFetcher(prevs)
	hashes := txscript.NewTxSigHashes(p.UnsignedTx, fetcher)
	wits := make([][][]byte, len(p.Inputs))
	for i := range p.Inputs {
		pin := &p.Inputs[i]
		if pin.FinalScriptWitness != nil || pin.FinalScriptSig != nil {
			continue
		}
		var err error
		switch {
		case len(pin.WitnessScript) > 0:
			wits[i], err = finalizeWSH(p, i, hashes)
		case len(pin.TaprootLeafScript) > 0:
			wits[i], err = finalizeTR(p, i, hashes, fetcher)
		default:
			err = fmt.Errorf("wallet: input %d is neither a P2WSH multisig nor a tapscript spend", i)
		}
		if err != nil {
			return nil, err
		}
	}
	// Every input verified: now change the packet.
	for i, w := range wits {
		if w == nil {
			continue
		}
		var b bytes.Buffer
		if err := psbt.WriteTxWitness(&b, w); err != nil {
			return nil, err
		}
		pin := &p.Inputs[i]
		*pin = psbt.PInput{NonWitnessUtxo: pin.NonWitnessUtxo, WitnessUtxo: pin.WitnessUtxo, FinalScriptWitness: b.Bytes(), Unknowns: pin.Unknowns}
	}
	tx, err := psbt.Extract(p)
	if err != nil {
		return nil, fmt.Errorf("wallet: finalize: %w", err)
	}
	hashes = txscript.NewTxSigHashes(tx, fetcher)
	for i, in := range tx.TxIn {
		prev := prevs[in.PreviousOutPoint]
		vm, err := txscript.NewEngine(prev.PkScript, tx, i, txscript.StandardVerifyFlags, nil, hashes, prev.Value, fetcher)
		if err == nil {
			err = vm.Execute()
		}
		if err != nil {
			return nil, fmt.Errorf("wallet: finalized input %d does not verify: %w", i, err)
		}
	}
	return tx, nil
}

// parseMulti returns the threshold and keys of a CHECKMULTISIG script.
func parseMulti(script []byte) (int, [][]byte, error) {
	tok := txscript.MakeScriptTokenizer(0, script)
	var ops []byte
	var keys [][]byte
	for tok.Next() {
		ops = append(ops, tok.Opcode())
		if tok.Opcode() == txscript.OP_DATA_33 {
			keys = append(keys, tok.Data())
		}
	}
	n := len(keys)
	bad := fmt.Errorf("wallet: the witness script is not a multisig script")
	if tok.Err() != nil || n == 0 || len(ops) != n+3 || ops[len(ops)-1] != txscript.OP_CHECKMULTISIG {
		return 0, nil, bad
	}
	m := int(ops[0]) - int(txscript.OP_1) + 1
	if ops[0] < txscript.OP_1 || ops[0] > txscript.OP_16 || m > n || int(ops[n+1])-int(txscript.OP_1)+1 != n {
		return 0, nil, bad
	}
	return m, keys, nil
}

func finalizeWSH(p *psbt.Packet, i int, hashes *txscript.TxSigHashes) ([][]byte, error) {
	pin := &p.Inputs[i]
	h := sha256Sum(pin.WitnessScript)
	if want := append([]byte{txscript.OP_0, txscript.OP_DATA_32}, h[:]...); !bytes.Equal(want, pin.WitnessUtxo.PkScript) {
		return nil, fmt.Errorf("input %d: %w", i, ErrScriptChanged)
	}
	m, keys, err := parseMulti(pin.WitnessScript)
	if err != nil {
		return nil, fmt.Errorf("input %d: %w", i, err)
	}
	wit := [][]byte{nil}
	for _, k := range keys {
		if len(wit) == m+1 {
			break
		}
		for _, ps := range pin.PartialSigs {
			if !bytes.Equal(ps.PubKey, k) || len(ps.Signature) < 2 {
				continue
			}
			ht := txscript.SigHashType(ps.Signature[len(ps.Signature)-1])
			if pin.SighashType != 0 && ht != pin.SighashType {
				continue
			}
			sig, err := ecdsa.ParseDERSignature(ps.Signature[:len(ps.Signature)-1])
			if err != nil {
				continue
			}
			pub, err := btcec.ParsePubKey(k)
			if err != nil {
				continue
			}
			hash, err := txscript.CalcWitnessSigHash(pin.WitnessScript, hashes, ht, p.UnsignedTx, i, pin.WitnessUtxo.Value)
			if err != nil || !sig.Verify(hash, pub) {
				continue
			}
			wit = append(wit, ps.Signature)
			break
		}
	}
	if len(wit) != m+1 {
		return nil, fmt.Errorf("%w: input %d has %d of the %d needed", ErrSignatures, i, len(wit)-1, m)
	}
	return append(wit, pin.WitnessScript), nil
}

func finalizeTR(p *psbt.Packet, i int, hashes *txscript.TxSigHashes, fetcher txscript.PrevOutputFetcher) ([][]byte, error) {
	pin := &p.Inputs[i]
	pk := pin.WitnessUtxo.PkScript
	if !txscript.IsPayToTaproot(pk) {
		return nil, fmt.Errorf("input %d: a tapscript leaf on a non-taproot output", i)
	}
	for _, l := range pin.TaprootLeafScript {
		cb, err := txscript.ParseControlBlock(l.ControlBlock)
		if err != nil || l.LeafVersion != txscript.BaseLeafVersion {
			continue
		}
		if txscript.VerifyTaprootLeafCommitment(cb, pk[2:], l.Script) != nil {
			continue
		}
		m, keys, err := parseMultiA(l.Script)
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		leaf := txscript.NewBaseTapLeaf(l.Script)
		lh := leaf.TapHash()
		items := make([][]byte, len(keys))
		n := 0
		for j, k := range keys {
			if n == m {
				break
			}
			for _, ss := range pin.TaprootScriptSpendSig {
				if !bytes.Equal(ss.XOnlyPubKey, k) || !bytes.Equal(ss.LeafHash, lh[:]) {
					continue
				}
				if want := pin.SighashType; want != 0 && ss.SigHash != want || want == 0 && ss.SigHash != txscript.SigHashDefault {
					continue
				}
				sig, err := schnorr.ParseSignature(ss.Signature)
				if err != nil {
					continue
				}
				pub, err := schnorr.ParsePubKey(k)
				if err != nil {
					continue
				}
				hash, err := txscript.CalcTapscriptSignaturehash(hashes, ss.SigHash, p.UnsignedTx, i, fetcher, leaf)
				if err != nil || !sig.Verify(hash, pub) {
					continue
				}
				items[j] = append([]byte(nil), ss.Signature...)
				if ss.SigHash != txscript.SigHashDefault {
					items[j] = append(items[j], byte(ss.SigHash))
				}
				n++
				break
			}
		}
		if n != m {
			return nil, fmt.Errorf("%w: input %d has %d of the %d needed", ErrSignatures, i, n, m)
		}
		wit := make([][]byte, 0, len(keys)+2)
		for j := len(keys) - 1; j >= 0; j-- {
			wit = append(wit, items[j])
		}
		return append(wit, l.Script, l.ControlBlock), nil
	}
	return nil, fmt.Errorf("input %d: no leaf script commits to its output key", i)
}
