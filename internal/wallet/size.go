package wallet

import (
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Sizes for fees, counted from the real scripts as Bitcoin Core counts
// them (weight units; a virtual byte is four).
const (
	// txinBaseBytes is an input's outpoint, empty scriptSig and sequence.
	txinBaseBytes = 32 + 4 + 1 + 4
	// ecdsaSigBytes is a low-R ECDSA signature in DER with its sighash
	// byte, at most: low R and low S fit 32 bytes each (70 bytes of DER).
	// kinko grinds R (signLowR), so its signatures never exceed this.
	ecdsaSigBytes = 71
	// schnorrSigBytes is a BIP340 signature; one more with a sighash
	// byte other than SIGHASH_DEFAULT.
	schnorrSigBytes = 64
	// controlBlockBytes is the control block of a tree of one leaf.
	controlBlockBytes = 33
	// dustRelayFee is Core's default -dustrelayfee, satoshi per kvB.
	dustRelayFee = 3000
	// maxScriptSize is the consensus bound above which an output is
	// unspendable.
	maxScriptSize = 10000
)

// varIntSize returns the size of a compact size integer.
func varIntSize(n int) int { return wire.VarIntSerializeSize(uint64(n)) }

// outputBytes returns the serialized size of an output of script.
func outputBytes(script []byte) int { return 8 + varIntSize(len(script)) + len(script) }

// Dust returns Bitcoin Core's dust threshold for an output paying script
// (GetDustThreshold at the default dust relay fee, 3 sat/vB): what the
// output and a later input spending it would cost. P2WSH and P2TR 330,
// P2WPKH 294, P2SH 540, P2PKH 546; an unspendable output (OP_RETURN) 0.
func Dust(script []byte) int64 {
	if (len(script) > 0 && script[0] == txscript.OP_RETURN) || len(script) > maxScriptSize {
		return 0
	}
	n := outputBytes(script)
	if txscript.IsWitnessProgram(script) {
		n += 32 + 4 + 1 + 107/4 + 4
	} else {
		n += 32 + 4 + 1 + 107 + 4
	}
	return int64(n) * dustRelayFee / 1000
}

// spendWitnessBytes returns the largest witness that spends d's script
// ws with M signatures: for WSH the empty item CHECKMULTISIG pops, M
// signatures and the script; for TR one item per key (M signatures,
// empty items for the rest), the leaf and its control block.
func (d *Descriptor) spendWitnessBytes(ws []byte, sighashByte bool) int {
	if d.Type == TR {
		sig := schnorrSigBytes
		if sighashByte {
			sig++
		}
		n := len(d.Keys)
		return varIntSize(n+2) + d.M*(varIntSize(sig)+sig) + (n - d.M) + varIntSize(len(ws)) + len(ws) + varIntSize(controlBlockBytes) + controlBlockBytes
	}
	return varIntSize(d.M+2) + 1 + d.M*(varIntSize(ecdsaSigBytes)+ecdsaSigBytes) + varIntSize(len(ws)) + len(ws)
}

// weight returns the weight of a segwit transaction whose inputs have
// the witnesses sizes given and whose outputs pay scripts.
func weight(witness []int, scripts [][]byte) int {
	base := 4 + varIntSize(len(witness)) + len(witness)*txinBaseBytes + varIntSize(len(scripts)) + 4
	for _, s := range scripts {
		base += outputBytes(s)
	}
	w := base*4 + 2 // marker and flag
	for _, n := range witness {
		w += n
	}
	return w
}

// vsize returns a weight's virtual size, rounded up.
func vsize(weight int) int64 { return int64((weight + 3) / 4) }

// AntiFeeSniping returns the locktime Bitcoin Core gives a transaction
// built at chain tip height (DiscourageFeeSniping): the tip, so that the
// transaction cannot be mined in a block that rewrites the tip, and one
// time in ten a random 0 to 99 blocks less, so that transactions whose
// signing took a while do not stand out. intn(n) returns a uniform
// integer in [0, n). The inputs' sequences must not be final (Build's
// are 0xfffffffd).
func AntiFeeSniping(height int32, intn func(int) int) uint32 {
	if height <= 0 {
		return 0
	}
	lt := int64(height)
	if intn(10) == 0 {
		lt = max(0, lt-int64(intn(100)))
	}
	return uint32(lt)
}
