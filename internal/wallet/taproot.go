package wallet

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
)

// NUMSKeyHex is the x coordinate of BIP341's "nothing up my sleeve" point
// H = lift_x(SHA256(G)): no one knows its discrete logarithm, so a tr()
// wallet with it as internal key can be spent only by its script leaf.
//
// kinko's tr() wallets use it rather than a key path of the cold keys: a
// key path for 2-of-3 needs an aggregate key (MuSig2) and its two rounds
// of nonces between the offline machines, one more trip each way per
// ceremony, and a nonce reused across those trips leaks the key. The
// script path keeps every signer independent and offline, as in
// wsh(sortedmulti): each signs once, in any order. The cost is the script
// and control block in every spend (docs/custody.md, fees).
const NUMSKeyHex = "50929b74c1a04954b78b4b6035e97a5e078a5a0f28ec96d547bfee9ace803ac0"

// ErrTapscript reports a tapscript leaf that is not a multi_a of a wallet.
var ErrTapscript = errors.New("wallet: tapscript leaf is not a multi_a script")

var numsKey = func() *btcec.PublicKey {
	b, _ := hex.DecodeString(NUMSKeyHex)
	k, err := schnorr.ParsePubKey(b)
	if err != nil {
		panic(err)
	}
	return k
}()

// NUMSKey returns the unspendable internal key of tr() wallets.
func NUMSKey() *btcec.PublicKey { return numsKey }

// multiAScript returns sortedmulti_a's leaf (BIP387): the x-only keys
// sorted, <k1> CHECKSIG <k2> CHECKSIGADD ... <m> NUMEQUAL.
func multiAScript(m int, pks []*btcec.PublicKey) ([]byte, error) {
	keys := make([][]byte, len(pks))
	for i, pk := range pks {
		keys[i] = schnorr.SerializePubKey(pk)
	}
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 })
	sb := txscript.NewScriptBuilder()
	for i, k := range keys {
		sb.AddData(k)
		if i == 0 {
			sb.AddOp(txscript.OP_CHECKSIG)
		} else {
			sb.AddOp(txscript.OP_CHECKSIGADD)
		}
	}
	return sb.AddInt64(int64(m)).AddOp(txscript.OP_NUMEQUAL).Script()
}

// parseMultiA returns the threshold and x-only keys of a multi_a leaf,
// checking it is exactly that script.
func parseMultiA(script []byte) (int, [][]byte, error) {
	tok := txscript.MakeScriptTokenizer(0, script)
	var keys [][]byte
	m := -1
	for tok.Next() {
		op, data := tok.Opcode(), tok.Data()
		switch {
		case op == txscript.OP_DATA_32:
			keys = append(keys, data)
			if !tok.Next() {
				return 0, nil, ErrTapscript
			}
			want := byte(txscript.OP_CHECKSIGADD)
			if len(keys) == 1 {
				want = txscript.OP_CHECKSIG
			}
			if tok.Opcode() != want {
				return 0, nil, ErrTapscript
			}
		case m < 0 && len(keys) > 0 && op >= txscript.OP_1 && op <= txscript.OP_16:
			m = int(op-txscript.OP_1) + 1
			if !tok.Next() || tok.Opcode() != txscript.OP_NUMEQUAL || tok.Next() {
				return 0, nil, ErrTapscript
			}
		default:
			return 0, nil, ErrTapscript
		}
	}
	if tok.Err() != nil || m < 1 || m > len(keys) {
		return 0, nil, ErrTapscript
	}
	return m, keys, nil
}

// tapOutput returns the output key of a tr() wallet whose one leaf is
// leaf, and the leaf's control block.
func tapOutput(leaf []byte) (*btcec.PublicKey, []byte, error) {
	h := txscript.NewBaseTapLeaf(leaf).TapHash()
	out := txscript.ComputeTaprootOutputKey(numsKey, h[:])
	cb := txscript.ControlBlock{InternalKey: numsKey, OutputKeyYIsOdd: out.SerializeCompressed()[0] == 0x03, LeafVersion: txscript.BaseLeafVersion}
	b, err := cb.ToBytes()
	if err != nil {
		return nil, nil, fmt.Errorf("wallet: control block: %w", err)
	}
	return out, b, nil
}

// leafHash returns the TapLeaf hash of a base-version leaf.
func leafHash(leaf []byte) chainhash.Hash { return txscript.NewBaseTapLeaf(leaf).TapHash() }
