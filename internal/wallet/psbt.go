package wallet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Errors of the PSBT ceremony.
var (
	ErrPSBT          = errors.New("wallet: PSBT malformed or truncated")
	ErrNotOurs       = errors.New("wallet: input does not belong to one of our wallets")
	ErrNotThisKey    = errors.New("wallet: input's wallet has no key of this signer")
	ErrScriptChanged = errors.New("wallet: input's witness script or output differs from the descriptor's")
	ErrNoUtxo        = errors.New("wallet: input lacks its witness utxo")
	ErrNothingToSign = errors.New("wallet: no input of this PSBT is for this key")
	ErrMismatch      = errors.New("wallet: PSBTs are of different transactions")
	ErrFunds         = errors.New("wallet: inputs do not cover outputs and fee")
	// ErrUnregistered is an output the PSBT's maker or the request claims
	// as ours (change, or a wallet of our keys) that is not the script of
	// a wallet the signer holds: the claim is a lie or a mistake, and the
	// signer refuses the whole transaction.
	ErrUnregistered = errors.New("wallet: refuses change to an unregistered wallet")
)

// Named is a wallet the ceremony knows: id, kind and descriptor, and the
// name its operators registered it under on an offline machine.
type Named struct {
	ID         uint32 `json:"id"`
	Name       string `json:"name,omitempty"`
	Kind       string `json:"kind"`
	Descriptor string `json:"descriptor"`
	desc       *Descriptor
}

// Desc returns the parsed descriptor.
func (n *Named) Desc() *Descriptor { return n.desc }

// Label returns the wallet's registered name, or "wallet ID" without one.
func (n *Named) Label() string {
	if n.Name != "" {
		return n.Name
	}
	return fmt.Sprintf("wallet %d", n.ID)
}

// Set is the wallets a ceremony checks against, with the scripts of their
// first Gap indexes on both branches, recomputed from the descriptors.
type Set struct {
	Wallets []*Named
	book    *Book
	net     *chaincfg.Params
}

// Gap bounds how far into each branch a Set looks for our scripts by
// itself; further indexes are found from a PSBT's BIP32 derivations, once
// the descriptor's script there is checked (Locate).
const Gap = 1000

// maxHints bounds the places one input's or output's BIP32 derivations
// make Locate derive.
const maxHints = MaxKeys

// NewSet parses the descriptors and derives their scripts, for d0's
// network.
func NewSet(ws []Named, d0 *Descriptor) (*Set, error) { return NewSetFor(d0.Net, ws) }

// NewSetFor is NewSet for a network: a set may be empty (a request that
// claims no wallet).
func NewSetFor(net *chaincfg.Params, ws []Named) (*Set, error) {
	s := &Set{book: NewBook(), net: net}
	for i := range ws {
		w := ws[i]
		d, err := Parse(w.Descriptor, net)
		if err != nil {
			return nil, fmt.Errorf("wallet %d: %w", w.ID, err)
		}
		w.desc = d
		for _, br := range []uint32{0, 1} {
			if err := s.book.Add(w.ID, d, br, 0, Gap); err != nil {
				return nil, err
			}
		}
		s.Wallets = append(s.Wallets, &w)
	}
	return s, nil
}

func (s *Set) wallet(id uint32) *Named {
	for _, w := range s.Wallets {
		if w.ID == id {
			return w
		}
	}
	return nil
}

// Owner says which of our wallets a script belongs to.
func (s *Set) Owner(script []byte) (*Named, Place, bool) {
	p, ok := s.book.Find(script)
	if !ok {
		return nil, p, false
	}
	w := s.wallet(p.Wallet)
	return w, p, w != nil
}

// Locate says which of our wallets script belongs to: among the scripts
// the set derived, else at a place one of hints (a PSBT's BIP32
// derivations) names under one of a wallet's keys, believed only if the
// wallet's descriptor gives script there. A hint alone proves nothing.
func (s *Set) Locate(script []byte, hints []*psbt.Bip32Derivation) (*Named, Place, bool) {
	if w, p, ok := s.Owner(script); ok {
		return w, p, true
	}
	tried := map[Place]bool{}
	for _, h := range hints {
		fp := fingerprintBytes(h.MasterKeyFingerprint)
		for _, w := range s.Wallets {
			for i := range w.desc.Keys {
				branch, index, ok := w.desc.Keys[i].child(fp, h.Bip32Path)
				if !ok {
					continue
				}
				p := Place{Wallet: w.ID, Branch: branch, Index: index}
				if tried[p] {
					continue
				}
				if len(tried) == maxHints {
					return nil, Place{}, false
				}
				tried[p] = true
				if pk, err := w.desc.PkScript(branch, index); err == nil && bytes.Equal(pk, script) {
					return w, p, true
				}
			}
		}
	}
	return nil, Place{}, false
}

// child returns the branch and index a BIP32 path names under k, if the
// path is k's origin followed by an unhardened branch (0 or 1) and index.
func (k *Key) child(fp [4]byte, path []uint32) (branch, index uint32, ok bool) {
	n := len(k.Path)
	if fp != k.Fingerprint || len(path) != n+2 {
		return 0, 0, false
	}
	for i, e := range k.Path {
		if path[i] != e {
			return 0, 0, false
		}
	}
	branch, index = path[n], path[n+1]
	if branch > 1 || index >= hdkeychain.HardenedKeyStart {
		return 0, 0, false
	}
	return branch, index, true
}

// fingerprintBytes returns the fingerprint a PSBT holds as a little-endian
// uint32 as its four bytes.
func fingerprintBytes(v uint32) [4]byte {
	return [4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
}

// hasKey reports whether one of the set's wallets has a key with
// fingerprint fp, or (if xpub is not empty) with that xpub.
func (s *Set) hasKey(fp [4]byte, xpub string) bool {
	for _, w := range s.Wallets {
		for i := range w.desc.Keys {
			if k := &w.desc.Keys[i]; k.Fingerprint == fp || (xpub != "" && k.XPub.String() == xpub) {
				return true
			}
		}
	}
	return false
}

// UTXO is an output of one of our wallets to spend.
type UTXO struct {
	OutPoint wire.OutPoint
	Value    int64
	Wallet   *Named
	Branch   uint32
	Index    uint32
	// PrevTx is the transaction that made the output, for the input's
	// non_witness_utxo: hardware wallets (Trezor since 1.9.1/2.3.1)
	// refuse a segwit v0 input without it, since BIP143 alone lets a
	// maker lie about one input's amount per signing session. Nil: the
	// input carries its witness utxo only (AttachPrevTxs adds it later).
	PrevTx *wire.MsgTx
}

// BuildOptions are what Build takes beyond coins and payments.
type BuildOptions struct {
	// LockTime is the transaction's locktime: AntiFeeSniping of the tip
	// height, as Core sets it; 0 for none.
	LockTime uint32
}

// Build makes an unsigned PSBT spending utxos to outputs, with change
// (when above its dust threshold) to change wallet's change branch at
// changeIndex, at feeRate satoshi per vbyte of the transaction's exact
// size once signed (Spend). Every input carries what Bitcoin Core's
// walletprocesspsbt gives it: witness utxo, non_witness_utxo (from
// UTXO.PrevTx), witness script and the BIP32 derivations of its keys (for
// tr() the BIP371 fields instead of the last two); the change output its
// witness script and derivations; the global section every key's xpub
// with its origin (PSBT_GLOBAL_XPUB), so that signers check change.
func Build(utxos []UTXO, outputs []*wire.TxOut, change *Named, changeIndex uint32, feeRate int64) (*psbt.Packet, error) {
	return BuildWith(utxos, outputs, change, changeIndex, feeRate, BuildOptions{})
}

// SpendFee is the fee Build pays at feeRate for spending utxos to outputs
// with no change output: the transaction's exact size once signed. Only
// the outputs' scripts count, not their values.
func SpendFee(utxos []UTXO, outputs []*wire.TxOut, feeRate int64) (int64, error) {
	witness := make([]int, len(utxos))
	for i := range utxos {
		d := utxos[i].Wallet.desc
		ws, err := d.WitnessScript(utxos[i].Branch, utxos[i].Index)
		if err != nil {
			return 0, err
		}
		witness[i] = d.spendWitnessBytes(ws, false)
	}
	scripts := make([][]byte, 0, len(outputs))
	for _, o := range outputs {
		scripts = append(scripts, o.PkScript)
	}
	return feeRate * vsize(weight(witness, scripts)), nil
}

// BuildWith is Build with options.
func BuildWith(utxos []UTXO, outputs []*wire.TxOut, change *Named, changeIndex uint32, feeRate int64, o BuildOptions) (*psbt.Packet, error) {
	var in int64
	ops := make([]*wire.OutPoint, len(utxos))
	witness := make([]int, len(utxos))
	for i := range utxos {
		in += utxos[i].Value
		ops[i] = &utxos[i].OutPoint
		d := utxos[i].Wallet.desc
		ws, err := d.WitnessScript(utxos[i].Branch, utxos[i].Index)
		if err != nil {
			return nil, err
		}
		witness[i] = d.spendWitnessBytes(ws, false)
	}
	var out int64
	scripts := make([][]byte, 0, len(outputs)+1)
	for _, o := range outputs {
		out += o.Value
		scripts = append(scripts, o.PkScript)
		if o.Value < Dust(o.PkScript) {
			return nil, fmt.Errorf("%w: an output of %d sat is below its dust threshold of %d", ErrDust, o.Value, Dust(o.PkScript))
		}
	}
	fee := feeRate * vsize(weight(witness, scripts))
	if in < out+fee {
		return nil, fmt.Errorf("%w: %d in, %d out, fee %d", ErrFunds, in, out, fee)
	}
	outs := append([]*wire.TxOut(nil), outputs...)
	changeAt := -1
	if change != nil {
		pk, err := change.desc.PkScript(1, changeIndex)
		if err != nil {
			return nil, err
		}
		feeChange := feeRate * vsize(weight(witness, append(scripts, pk)))
		if rest := in - out - feeChange; rest >= Dust(pk) {
			outs = append(outs, wire.NewTxOut(rest, pk))
			changeAt = len(outs) - 1
		}
	}
	seq := make([]uint32, len(ops))
	for i := range seq {
		seq[i] = wire.MaxTxInSequenceNum - 2 // replaceable (BIP125), locktime enforced
	}
	p, err := psbt.New(ops, outs, 2, o.LockTime, seq)
	if err != nil {
		return nil, err
	}
	for i, x := range utxos {
		if err := fillInput(p, i, x.Wallet.desc, x.Branch, x.Index, x.Value, x.PrevTx); err != nil {
			return nil, err
		}
	}
	wallets := make([]*Descriptor, 0, len(utxos)+1)
	for _, x := range utxos {
		wallets = append(wallets, x.Wallet.desc)
	}
	if changeAt >= 0 {
		if err := fillOutput(&p.Outputs[changeAt], change.desc, 1, changeIndex); err != nil {
			return nil, err
		}
		wallets = append(wallets, change.desc)
	}
	AddGlobalXPubs(p, wallets...)
	return p, nil
}

// ErrDust reports an output below its dust threshold (Dust).
var ErrDust = errors.New("wallet: output below its dust threshold")

// AddInput gives input i of p what Build gives each input: the witness
// utxo of d's script at (branch, index) worth value, its witness script
// (tr: leaf script, control block, internal key, merkle root), and the
// BIP32 derivations of its keys, so that Sign and other signers find it.
// For PSBTs made elsewhere, such as BIP-322's to_sign.
func AddInput(p *psbt.Packet, i int, d *Descriptor, branch, index uint32, value int64) error {
	return fillInput(p, i, d, branch, index, value, nil)
}

func fillInput(p *psbt.Packet, i int, d *Descriptor, branch, index uint32, value int64, prev *wire.MsgTx) error {
	ws, err := d.WitnessScript(branch, index)
	if err != nil {
		return err
	}
	pk, err := d.PkScript(branch, index)
	if err != nil {
		return err
	}
	pin := &p.Inputs[i]
	pin.WitnessUtxo = wire.NewTxOut(value, pk)
	if prev != nil {
		op := p.UnsignedTx.TxIn[i].PreviousOutPoint
		if err := checkPrevTx(prev, op, pin.WitnessUtxo); err != nil {
			return fmt.Errorf("input %d: %w", i, err)
		}
		pin.NonWitnessUtxo = prev
	}
	if d.Type == TR {
		_, cb, err := tapOutput(ws)
		if err != nil {
			return err
		}
		lh := leafHash(ws)
		pin.TaprootLeafScript = []*psbt.TaprootTapLeafScript{{ControlBlock: cb, Script: ws, LeafVersion: txscript.BaseLeafVersion}}
		pin.TaprootInternalKey = schnorr.SerializePubKey(numsKey)
		pin.TaprootMerkleRoot = lh[:]
		return addDerivations(d, branch, index, func(fp uint32, path []uint32, pub []byte) error {
			pin.TaprootBip32Derivation = append(pin.TaprootBip32Derivation, &psbt.TaprootBip32Derivation{XOnlyPubKey: pub[1:], LeafHashes: [][]byte{lh[:]}, MasterKeyFingerprint: fp, Bip32Path: path})
			return nil
		})
	}
	pin.WitnessScript = ws
	return addDerivations(d, branch, index, func(fp uint32, path []uint32, pub []byte) error {
		pin.Bip32Derivation = append(pin.Bip32Derivation, &psbt.Bip32Derivation{PubKey: pub, MasterKeyFingerprint: fp, Bip32Path: path})
		return nil
	})
}

// fillOutput gives an output of ours what Core gives change: its witness
// script and BIP32 derivations, or for tr() its internal key, tap tree
// and tap derivations (BIP371).
func fillOutput(po *psbt.POutput, d *Descriptor, branch, index uint32) error {
	ws, err := d.WitnessScript(branch, index)
	if err != nil {
		return err
	}
	if d.Type == TR {
		lh := leafHash(ws)
		po.TaprootInternalKey = schnorr.SerializePubKey(numsKey)
		po.TaprootTapTree = tapTree(ws)
		return addDerivations(d, branch, index, func(fp uint32, path []uint32, pub []byte) error {
			po.TaprootBip32Derivation = append(po.TaprootBip32Derivation, &psbt.TaprootBip32Derivation{XOnlyPubKey: pub[1:], LeafHashes: [][]byte{lh[:]}, MasterKeyFingerprint: fp, Bip32Path: path})
			return nil
		})
	}
	po.WitnessScript = ws
	return addDerivations(d, branch, index, func(fp uint32, path []uint32, pub []byte) error {
		po.Bip32Derivation = append(po.Bip32Derivation, &psbt.Bip32Derivation{PubKey: pub, MasterKeyFingerprint: fp, Bip32Path: path})
		return nil
	})
}

// tapTree encodes a tree of one leaf as PSBT_OUT_TAP_TREE: depth 0, leaf
// version, compact size, script.
func tapTree(leaf []byte) []byte {
	var b bytes.Buffer
	b.WriteByte(0)
	b.WriteByte(byte(txscript.BaseLeafVersion))
	wire.WriteVarBytes(&b, 0, leaf)
	return b.Bytes()
}

// AddGlobalXPubs adds PSBT_GLOBAL_XPUB for every key of the wallets (each
// once): the xpub's 78 bytes, and its master fingerprint and path.
func AddGlobalXPubs(p *psbt.Packet, ds ...*Descriptor) {
	have := map[string]bool{}
	for _, u := range p.Unknowns {
		have[string(u.Key)] = true
	}
	for _, d := range ds {
		for i := range d.Keys {
			k := &d.Keys[i]
			key := append([]byte{byte(psbt.XpubType)}, serializeXPub(k.XPub)...)
			if have[string(key)] {
				continue
			}
			have[string(key)] = true
			val := append([]byte(nil), k.Fingerprint[:]...)
			for _, e := range k.Path {
				val = binary.LittleEndian.AppendUint32(val, e)
			}
			p.Unknowns = append(p.Unknowns, &psbt.Unknown{Key: key, Value: val})
		}
	}
}

// serializeXPub returns BIP32's 78-byte serialization of an extended key.
func serializeXPub(k *hdkeychain.ExtendedKey) []byte {
	return base58.Decode(k.String())[:78]
}

// ErrPrevTx reports an input whose non_witness_utxo is not the
// transaction it spends from, or disagrees with its witness utxo.
var ErrPrevTx = errors.New("wallet: input's previous transaction does not match")

func checkPrevTx(prev *wire.MsgTx, op wire.OutPoint, wu *wire.TxOut) error {
	if prev.TxHash() != op.Hash {
		return fmt.Errorf("%w: it is %s, the input spends %s", ErrPrevTx, prev.TxHash(), op.Hash)
	}
	if int(op.Index) >= len(prev.TxOut) {
		return fmt.Errorf("%w: it has no output %d", ErrPrevTx, op.Index)
	}
	if wu != nil {
		o := prev.TxOut[op.Index]
		if o.Value != wu.Value || !bytes.Equal(o.PkScript, wu.PkScript) {
			return fmt.Errorf("%w: its output %d is %d sat to %x, the witness utxo says %d sat to %x", ErrPrevTx, op.Index, o.Value, o.PkScript, wu.Value, wu.PkScript)
		}
	}
	return nil
}

// AttachPrevTxs gives every input of p lacking it its non_witness_utxo,
// from get (a node's getrawtransaction), each checked against the
// outpoint and the input's witness utxo. Nothing changes on an error.
func AttachPrevTxs(p *psbt.Packet, get func(chainhash.Hash) (*wire.MsgTx, error)) error {
	prevs := make([]*wire.MsgTx, len(p.Inputs))
	for i := range p.Inputs {
		if p.Inputs[i].NonWitnessUtxo != nil {
			continue
		}
		op := p.UnsignedTx.TxIn[i].PreviousOutPoint
		tx, err := get(op.Hash)
		if err != nil {
			return fmt.Errorf("wallet: previous transaction of input %d (%s): %w", i, op.Hash, err)
		}
		if err := checkPrevTx(tx, op, p.Inputs[i].WitnessUtxo); err != nil {
			return fmt.Errorf("input %d: %w", i, err)
		}
		prevs[i] = tx
	}
	for i, tx := range prevs {
		if tx != nil {
			p.Inputs[i].NonWitnessUtxo = tx
		}
	}
	return nil
}

// FillWitnessUtxos gives every input of p that has its non_witness_utxo
// but no witness_utxo (BIP174 lets a maker give only the former) the
// output it spends, read from that previous transaction once its txid is
// the outpoint's. Nothing changes on an error.
func FillWitnessUtxos(p *psbt.Packet) error {
	if len(p.Inputs) != len(p.UnsignedTx.TxIn) {
		return fmt.Errorf("%w: inputs", ErrPSBT)
	}
	outs := make([]*wire.TxOut, len(p.Inputs))
	for i := range p.Inputs {
		pin := &p.Inputs[i]
		if pin.WitnessUtxo != nil || pin.NonWitnessUtxo == nil {
			continue
		}
		op := p.UnsignedTx.TxIn[i].PreviousOutPoint
		if err := checkPrevTx(pin.NonWitnessUtxo, op, nil); err != nil {
			return fmt.Errorf("input %d: %w", i+1, err)
		}
		o := pin.NonWitnessUtxo.TxOut[op.Index]
		outs[i] = wire.NewTxOut(o.Value, append([]byte(nil), o.PkScript...))
	}
	for i, o := range outs {
		if o != nil {
			p.Inputs[i].WitnessUtxo = o
		}
	}
	return nil
}

func addDerivations(d *Descriptor, branch, index uint32, add func(fp uint32, path []uint32, pub []byte) error) error {
	pks, err := d.childKeys(branch, index)
	if err != nil {
		return err
	}
	for i, k := range d.Keys {
		path := append(append([]uint32(nil), k.Path...), branch, index)
		if err := add(fingerprintUint(k.Fingerprint), path, pks[i].SerializeCompressed()); err != nil {
			return err
		}
	}
	return nil
}

// fingerprintUint returns a fingerprint as the little-endian uint32 the
// psbt package holds.
func fingerprintUint(fp [4]byte) uint32 { return binary.LittleEndian.Uint32(fp[:]) }

// Read parses a PSBT (binary or base64) of version 0 or 2 (BIP370: a
// v2 PSBT is read as the v0 packet of the same transaction). The psbt
// library panics on some malformed key data (found by FuzzReadPSBT; the
// crasher is kept in testdata): Read turns such a panic into ErrPSBT,
// since its input comes from outside.
func Read(r io.Reader) (*psbt.Packet, error) {
	p, _, _, err := ReadVersioned(r)
	return p, err
}

// Encode returns the PSBT in base64.
func Encode(p *psbt.Packet) (string, error) { return p.B64Encode() }

// Line is one input or output in plain words.
type Line struct {
	Amount  btcutil.Amount
	Address string
	Ours    string // "cold-main (cold-customer) receive #3", or "" if not ours
	// Proved, for an input, is whether its amount is proved by its
	// previous transaction (non_witness_utxo) or by a taproot sighash
	// (BIP341 signs every input's amount), rather than claimed.
	Proved bool
	// Sighash, for an input, is the sighash type it asks for, if not
	// SIGHASH_ALL (or taproot's default).
	Sighash string
}

// Description is what a signer is shown: every input and output, recomputed
// from the descriptors, the amount leaving to outside addresses, the fee,
// and why the signer refuses the transaction, if it does.
type Description struct {
	Inputs, Outputs []Line
	Outside         btcutil.Amount // paid to scripts of no wallet in the set
	Fee             btcutil.Amount
	// VSize is the transaction's virtual size once signed, counted from
	// its real scripts (our inputs with M low-R signatures).
	VSize   int64
	FeeRate float64 // satoshi per vbyte, for display only
	// LockTime is the transaction's locktime (a block height below
	// 500000000, else a time).
	LockTime uint32
	// Unproved counts the segwit v0 inputs whose amount only the PSBT
	// claims (no non_witness_utxo).
	Unproved int
	Refused  []error
}

// Refusal returns why the transaction must not be signed, or nil.
func (d *Description) Refusal() error { return errors.Join(d.Refused...) }

// ErrSighash reports a sighash type a signer will not sign with.
var ErrSighash = errors.New("wallet: sighash type refused")

// sighashFor returns the sighash type to sign input pin with: the type it
// asks for, which must be one whose meaning the description shows truly.
// SIGHASH_ALL (taproot: also DEFAULT) signs the whole transaction;
// ALL|ANYONECANPAY signs every output and this input, so what it shows of
// the outputs stays true whatever inputs others add. NONE lets anyone
// redirect every output and SINGLE all but one: what the signer was shown
// would not be what it signed, so they are refused, as is any other value.
func sighashFor(pin *psbt.PInput, taproot bool) (txscript.SigHashType, error) {
	t := pin.SighashType
	switch {
	case t == 0 && taproot:
		return txscript.SigHashDefault, nil
	case t == 0:
		return txscript.SigHashAll, nil
	case t == txscript.SigHashAll, t == txscript.SigHashAll|txscript.SigHashAnyOneCanPay:
		return t, nil
	}
	return 0, fmt.Errorf("%w: %s signs less than every output the signer is shown", ErrSighash, sighashName(t))
}

func sighashName(t txscript.SigHashType) string {
	names := map[txscript.SigHashType]string{0: "SIGHASH_DEFAULT", 1: "SIGHASH_ALL", 2: "SIGHASH_NONE", 3: "SIGHASH_SINGLE"}
	n, ok := names[t&^txscript.SigHashAnyOneCanPay]
	if !ok || t&^(txscript.SigHashAnyOneCanPay|3) != 0 {
		return fmt.Sprintf("sighash type %#x", uint32(t))
	}
	if t&txscript.SigHashAnyOneCanPay != 0 {
		n += "|ANYONECANPAY"
	}
	return n
}

// hints returns the places an input's or output's derivations name, tap
// derivations included, for Locate.
func hints(bip32 []*psbt.Bip32Derivation, tap []*psbt.TaprootBip32Derivation) []*psbt.Bip32Derivation {
	if len(tap) == 0 {
		return bip32
	}
	out := append([]*psbt.Bip32Derivation(nil), bip32...)
	for _, t := range tap {
		out = append(out, &psbt.Bip32Derivation{MasterKeyFingerprint: t.MasterKeyFingerprint, Bip32Path: t.Bip32Path})
	}
	return out
}

// Describe reads a PSBT against our wallets. An input is ours only if its
// script is one of our wallets'; an output likewise, and every other
// output is a payment to an outside address. claims (may be nil) holds the
// wallets another machine says are ours, never believed: an output that is
// not ours but is claimed as ours or as change (a change-branch script of
// a claimed wallet, a claimed wallet naming one of our keys, BIP32
// derivations naming one of our keys, a witness script) is a refusal, as
// is an input that is not ours, an input whose previous transaction
// contradicts it, a sighash type that signs less than all outputs, and an
// output of ours whose PSBT scripts differ from the descriptor's.
func (s *Set) Describe(p *psbt.Packet, claims *Set) (*Description, error) {
	d := &Description{LockTime: p.UnsignedTx.LockTime}
	var in, out int64
	witness := make([]int, len(p.Inputs))
	for i := range p.Inputs {
		pin := &p.Inputs[i]
		if pin.WitnessUtxo == nil {
			return nil, fmt.Errorf("%w: input %d", ErrNoUtxo, i)
		}
		if pin.WitnessUtxo.Value < 0 || in+pin.WitnessUtxo.Value < in {
			return nil, fmt.Errorf("%w: input %d value", ErrPSBT, i)
		}
		in += pin.WitnessUtxo.Value
		h := hints(pin.Bip32Derivation, pin.TaprootBip32Derivation)
		l := s.line(pin.WitnessUtxo, h)
		w, place, ours := s.Locate(pin.WitnessUtxo.PkScript, h)
		taproot := txscript.IsPayToTaproot(pin.WitnessUtxo.PkScript)
		if !ours {
			d.Refused = append(d.Refused, fmt.Errorf("%w: input %d is of no wallet registered here", ErrNotOurs, i+1))
		} else if ws, err := w.desc.WitnessScript(place.Branch, place.Index); err == nil {
			witness[i] = w.desc.spendWitnessBytes(ws, pin.SighashType != 0)
		}
		if ht, err := sighashFor(pin, taproot); err != nil {
			d.Refused = append(d.Refused, fmt.Errorf("input %d: %w", i+1, err))
			l.Sighash = sighashName(pin.SighashType)
		} else if ht&txscript.SigHashAnyOneCanPay != 0 {
			l.Sighash = sighashName(ht)
		}
		switch {
		case pin.NonWitnessUtxo != nil:
			if err := checkPrevTx(pin.NonWitnessUtxo, p.UnsignedTx.TxIn[i].PreviousOutPoint, pin.WitnessUtxo); err != nil {
				d.Refused = append(d.Refused, fmt.Errorf("input %d: %w", i+1, err))
			} else {
				l.Proved = true
			}
		case taproot:
			l.Proved = true
		default:
			d.Unproved++
		}
		d.Inputs = append(d.Inputs, l)
	}
	scripts := make([][]byte, len(p.UnsignedTx.TxOut))
	for i, o := range p.UnsignedTx.TxOut {
		if o.Value < 0 || out+o.Value < out {
			return nil, fmt.Errorf("%w: output %d value", ErrPSBT, i)
		}
		out += o.Value
		scripts[i] = o.PkScript
		var po psbt.POutput
		if i < len(p.Outputs) {
			po = p.Outputs[i]
		}
		h := hints(po.Bip32Derivation, po.TaprootBip32Derivation)
		l := s.line(o, h)
		if l.Ours == "" {
			d.Outside += btcutil.Amount(o.Value)
			if why := s.claimed(o.PkScript, &po, claims); why != "" {
				d.Refused = append(d.Refused, fmt.Errorf("%w: output %d %s, but it is not a script of a wallet registered here", ErrUnregistered, i+1, why))
			}
		} else if err := s.checkOutputScripts(o.PkScript, &po); err != nil {
			d.Refused = append(d.Refused, fmt.Errorf("%w: output %d", err, i+1))
		}
		d.Outputs = append(d.Outputs, l)
	}
	d.Fee = btcutil.Amount(in - out)
	if d.Fee < 0 {
		return nil, fmt.Errorf("%w: outputs exceed inputs", ErrFunds)
	}
	d.VSize = vsize(weight(witness, scripts))
	d.FeeRate = float64(d.Fee) / float64(d.VSize)
	return d, nil
}

// claimed says how the PSBT or the claimed wallets present an output that
// is none of ours as ours, or returns "".
func (s *Set) claimed(script []byte, po *psbt.POutput, claims *Set) string {
	for _, h := range po.Bip32Derivation {
		if fp := fingerprintBytes(h.MasterKeyFingerprint); s.hasKey(fp, "") {
			return fmt.Sprintf("carries a BIP32 derivation of our key %x, as change does", fp)
		}
	}
	for _, h := range po.TaprootBip32Derivation {
		if fp := fingerprintBytes(h.MasterKeyFingerprint); s.hasKey(fp, "") {
			return fmt.Sprintf("carries a BIP32 derivation of our key %x, as change does", fp)
		}
	}
	if len(po.WitnessScript) > 0 || len(po.RedeemScript) > 0 {
		return "carries its witness script, as change does"
	}
	if len(po.TaprootTapTree) > 0 || len(po.TaprootInternalKey) > 0 {
		return "carries its taproot tree, as change does"
	}
	if claims == nil {
		return ""
	}
	w, p, ok := claims.Locate(script, hints(po.Bip32Derivation, po.TaprootBip32Derivation))
	if !ok {
		return ""
	}
	if p.Branch == 1 {
		return fmt.Sprintf("is listed by the request as change #%d of %s (%s)", p.Index, w.Label(), w.Kind)
	}
	for i := range w.desc.Keys {
		if k := &w.desc.Keys[i]; s.hasKey(k.Fingerprint, k.XPub.String()) {
			return fmt.Sprintf("is listed by the request as %s (%s), a wallet naming our key %x", w.Label(), w.Kind, k.Fingerprint)
		}
	}
	return ""
}

// checkOutputScripts refuses an output of ours whose PSBT fields give
// scripts or keys other than the descriptor's.
func (s *Set) checkOutputScripts(script []byte, po *psbt.POutput) error {
	if len(po.RedeemScript) > 0 {
		return fmt.Errorf("%w: a redeem script on a native segwit output", ErrScriptChanged)
	}
	w, p, _ := s.Locate(script, hints(po.Bip32Derivation, po.TaprootBip32Derivation))
	ws, err := w.desc.WitnessScript(p.Branch, p.Index)
	if err != nil {
		return err
	}
	if w.desc.Type == TR {
		if len(po.WitnessScript) > 0 || len(po.Bip32Derivation) > 0 {
			return fmt.Errorf("%w: segwit v0 fields on a taproot output", ErrScriptChanged)
		}
		if len(po.TaprootInternalKey) > 0 && !bytes.Equal(po.TaprootInternalKey, schnorr.SerializePubKey(numsKey)) {
			return fmt.Errorf("%w: another internal key", ErrScriptChanged)
		}
		if len(po.TaprootTapTree) > 0 && !bytes.Equal(po.TaprootTapTree, tapTree(ws)) {
			return fmt.Errorf("%w: another tap tree", ErrScriptChanged)
		}
		return checkDerivations(w.desc, p, nil, po.TaprootBip32Derivation)
	}
	if len(po.WitnessScript) > 0 && !bytes.Equal(ws, po.WitnessScript) {
		return ErrScriptChanged
	}
	return checkDerivations(w.desc, p, po.Bip32Derivation, nil)
}

// ErrDerivation reports a PSBT's BIP32 derivation that does not say what
// the descriptor says of its key: another path for one of the script's
// keys, or a path of one of the wallet's keys to a key not in the script.
var ErrDerivation = errors.New("wallet: a BIP32 derivation contradicts the descriptor")

// checkDerivations checks a PSBT's derivations of a script of d at p: each
// of the script's keys must carry its own origin and path, and no path of
// d's keys may name another key.
func checkDerivations(d *Descriptor, p Place, bip32 []*psbt.Bip32Derivation, tap []*psbt.TaprootBip32Derivation) error {
	want := map[string]*psbt.Bip32Derivation{}
	if err := addDerivations(d, p.Branch, p.Index, func(fp uint32, path []uint32, pub []byte) error {
		want[string(pub[1:])] = &psbt.Bip32Derivation{MasterKeyFingerprint: fp, Bip32Path: path}
		return nil
	}); err != nil {
		return err
	}
	check := func(xonly []byte, fp uint32, path []uint32) error {
		if w, ok := want[string(xonly)]; ok {
			if w.MasterKeyFingerprint != fp || !slices.Equal(w.Bip32Path, path) {
				return fmt.Errorf("%w: key %x is given the path %s of %x", ErrDerivation, xonly, pathString(path), fingerprintBytes(fp))
			}
			return nil
		}
		for i := range d.Keys {
			if fingerprintUint(d.Keys[i].Fingerprint) == fp {
				return fmt.Errorf("%w: a path of our key %x names key %x, not in the script", ErrDerivation, d.Keys[i].Fingerprint, xonly)
			}
		}
		return nil
	}
	for _, h := range bip32 {
		if len(h.PubKey) != 33 {
			return fmt.Errorf("%w: a key of %d bytes", ErrDerivation, len(h.PubKey))
		}
		if err := check(h.PubKey[1:], h.MasterKeyFingerprint, h.Bip32Path); err != nil {
			return err
		}
	}
	for _, h := range tap {
		if err := check(h.XOnlyPubKey, h.MasterKeyFingerprint, h.Bip32Path); err != nil {
			return err
		}
	}
	return nil
}

func pathString(path []uint32) string {
	k := Key{Path: path}
	return k.Derivation()
}

func (s *Set) line(o *wire.TxOut, hints []*psbt.Bip32Derivation) Line {
	l := Line{Amount: btcutil.Amount(o.Value), Address: "(non-standard script)"}
	_, addrs, _, err := txscript.ExtractPkScriptAddrs(o.PkScript, s.net)
	if err == nil && len(addrs) == 1 {
		l.Address = addrs[0].EncodeAddress()
	} else if txscript.IsNullData(o.PkScript) {
		l.Address = fmt.Sprintf("OP_RETURN %x", o.PkScript[min(2, len(o.PkScript)):])
	}
	if w, p, ok := s.Locate(o.PkScript, hints); ok {
		br := "receive"
		if p.Branch == 1 {
			br = "change"
		}
		l.Ours = fmt.Sprintf("%s (%s) %s #%d", w.Label(), w.Kind, br, p.Index)
	}
	return l
}

// String formats the description for an operator.
func (d *Description) String() string {
	var b strings.Builder
	w := func(title, notOurs string, ls []Line, inputs bool) {
		fmt.Fprintf(&b, "%s:\n", title)
		for i, l := range ls {
			ours := notOurs
			if l.Ours != "" {
				ours = "ours: " + l.Ours
			}
			fmt.Fprintf(&b, "  %d. %16s BTC  %s  [%s]", i+1, formatBTC(int64(l.Amount)), l.Address, ours)
			if inputs && !l.Proved {
				b.WriteString("  (amount as the PSBT claims it: no previous transaction)")
			}
			if l.Sighash != "" {
				fmt.Fprintf(&b, "  (asks for %s)", l.Sighash)
			}
			b.WriteString("\n")
		}
	}
	w("inputs", "NOT OURS: no wallet registered here", d.Inputs, true)
	w("outputs", "payment to an outside address", d.Outputs, false)
	fmt.Fprintf(&b, "paid to outside addresses: %s BTC\n", formatBTC(int64(d.Outside)))
	fmt.Fprintf(&b, "fee: %d sat (%.1f sat/vB over %d vB once signed)\n", int64(d.Fee), d.FeeRate, d.VSize)
	switch {
	case d.LockTime == 0:
		b.WriteString("locktime: none\n")
	case d.LockTime < txscript.LockTimeThreshold:
		fmt.Fprintf(&b, "locktime: block %d\n", d.LockTime)
	default:
		fmt.Fprintf(&b, "locktime: time %d\n", d.LockTime)
	}
	return b.String()
}

// Sign signs every input of p that belongs to one of our wallets of which
// account (a BIP48 account private key with master fingerprint fp) is a
// key. It finds each input's wallet and place by recomputing its script
// from the descriptors (Locate: the PSBT's derivations are hints, checked
// against the descriptor, and any that contradicts it is a refusal), and
// refuses the PSBT if an input is not ours, its scripts or previous
// transaction differ from the descriptor's and its outpoint, or it asks
// for a sighash type Describe cannot show truly (sighashFor). It computes
// the sighash itself (BIP143; BIP341 for tr()), with the type the input
// asks for, and signs with low-R ECDSA (signLowR) or BIP340 Schnorr, both
// deterministic. It returns the number of inputs signed.
func (s *Set) Sign(p *psbt.Packet, account *hdkeychain.ExtendedKey, fp [4]byte) (int, error) {
	accPub, err := account.Neuter()
	if err != nil {
		return 0, err
	}
	if len(p.Inputs) != len(p.UnsignedTx.TxIn) {
		return 0, fmt.Errorf("%w: inputs", ErrPSBT)
	}
	prevs := map[wire.OutPoint]*wire.TxOut{}
	for i, pin := range p.Inputs {
		if pin.WitnessUtxo == nil {
			return 0, fmt.Errorf("%w: input %d", ErrNoUtxo, i)
		}
		prevs[p.UnsignedTx.TxIn[i].PreviousOutPoint] = pin.WitnessUtxo
	}
	fetcher := txscript.NewMultiPrevOutFetcher(prevs)
	hashes := txscript.NewTxSigHashes(p.UnsignedTx, fetcher)
	type job struct {
		i      int
		ws     []byte
		tr     bool
		ht     txscript.SigHashType
		branch uint32
		index  uint32
	}
	var jobs []job
	// Check every input before signing any: a PSBT is signed whole or not.
	coin := hdkeychain.HardenedKeyStart + CoinType(s.net)
	for i := range p.Inputs {
		pin := &p.Inputs[i]
		h := hints(pin.Bip32Derivation, pin.TaprootBip32Derivation)
		for _, d := range h {
			if len(d.Bip32Path) >= 2 && d.Bip32Path[0] == hdkeychain.HardenedKeyStart+purposeBIP48 && d.Bip32Path[1] != coin {
				return 0, fmt.Errorf("%w: input %d is derived for coin type %d", ErrNetwork, i, d.Bip32Path[1]-hdkeychain.HardenedKeyStart)
			}
		}
		w, place, ok := s.Locate(pin.WitnessUtxo.PkScript, h)
		if !ok {
			return 0, fmt.Errorf("%w: input %d", ErrNotOurs, i)
		}
		if pin.NonWitnessUtxo != nil {
			if err := checkPrevTx(pin.NonWitnessUtxo, p.UnsignedTx.TxIn[i].PreviousOutPoint, pin.WitnessUtxo); err != nil {
				return 0, fmt.Errorf("input %d: %w", i, err)
			}
		}
		ws, err := w.desc.WitnessScript(place.Branch, place.Index)
		if err != nil {
			return 0, err
		}
		tr := w.desc.Type == TR
		if err := checkInputScripts(pin, ws, tr); err != nil {
			return 0, fmt.Errorf("input %d: %w", i, err)
		}
		if err := checkDerivations(w.desc, place, pin.Bip32Derivation, pin.TaprootBip32Derivation); err != nil {
			return 0, fmt.Errorf("input %d: %w", i, err)
		}
		ht, err := sighashFor(pin, tr)
		if err != nil {
			return 0, fmt.Errorf("input %d: %w", i, err)
		}
		mine := false
		for _, k := range w.desc.Keys {
			if k.Fingerprint == fp && k.XPub.String() == accPub.String() {
				mine = true
			}
		}
		if !mine {
			continue
		}
		jobs = append(jobs, job{i: i, ws: ws, tr: tr, ht: ht, branch: place.Branch, index: place.Index})
	}
	if len(jobs) == 0 {
		return 0, ErrNothingToSign
	}
	type sig struct {
		i   int
		pub *btcec.PublicKey
		sig []byte
		tap *psbt.TaprootScriptSpendSig
	}
	sigs := make([]sig, 0, len(jobs))
	for _, j := range jobs {
		c, err := account.Derive(j.branch)
		if err == nil {
			c, err = c.Derive(j.index)
		}
		if err != nil {
			return 0, err
		}
		priv, err := c.ECPrivKey()
		if err != nil {
			return 0, err
		}
		if j.tr {
			leaf := txscript.NewBaseTapLeaf(j.ws)
			h, err := txscript.CalcTapscriptSignaturehash(hashes, j.ht, p.UnsignedTx, j.i, fetcher, leaf)
			if err != nil {
				return 0, fmt.Errorf("wallet: sighash of input %d: %w", j.i, err)
			}
			sg, err := schnorr.Sign(priv, h)
			if err != nil {
				return 0, err
			}
			lh := leaf.TapHash()
			sigs = append(sigs, sig{i: j.i, tap: &psbt.TaprootScriptSpendSig{XOnlyPubKey: schnorr.SerializePubKey(priv.PubKey()), LeafHash: lh[:], Signature: sg.Serialize(), SigHash: j.ht}})
			continue
		}
		h, err := txscript.CalcWitnessSigHash(j.ws, hashes, j.ht, p.UnsignedTx, j.i, p.Inputs[j.i].WitnessUtxo.Value)
		if err != nil {
			return 0, fmt.Errorf("wallet: sighash of input %d: %w", j.i, err)
		}
		sigs = append(sigs, sig{i: j.i, pub: priv.PubKey(), sig: append(signLowR(priv, h).Serialize(), byte(j.ht))})
	}
	for _, sg := range sigs {
		pin := &p.Inputs[sg.i]
		if sg.tap != nil {
			pin.TaprootScriptSpendSig = slices.DeleteFunc(pin.TaprootScriptSpendSig, func(o *psbt.TaprootScriptSpendSig) bool { return o.EqualKey(sg.tap) })
			pin.TaprootScriptSpendSig = append(pin.TaprootScriptSpendSig, sg.tap)
			continue
		}
		pub := sg.pub.SerializeCompressed()
		pin.PartialSigs = slices.DeleteFunc(pin.PartialSigs, func(o *psbt.PartialSig) bool { return bytes.Equal(o.PubKey, pub) })
		pin.PartialSigs = append(pin.PartialSigs, &psbt.PartialSig{PubKey: pub, Signature: sg.sig})
	}
	return len(jobs), nil
}

// checkInputScripts checks an input's PSBT scripts against ours: the
// witness script (wsh), or the leaf, internal key and merkle root (tr).
func checkInputScripts(pin *psbt.PInput, ws []byte, tr bool) error {
	if len(pin.RedeemScript) > 0 {
		return fmt.Errorf("%w: a redeem script on a native segwit input", ErrScriptChanged)
	}
	if !tr {
		if !bytes.Equal(ws, pin.WitnessScript) {
			return ErrScriptChanged
		}
		return nil
	}
	if len(pin.WitnessScript) > 0 || len(pin.TaprootKeySpendSig) > 0 {
		return fmt.Errorf("%w: segwit v0 or key-path fields on a script-path input", ErrScriptChanged)
	}
	if len(pin.TaprootInternalKey) > 0 && !bytes.Equal(pin.TaprootInternalKey, schnorr.SerializePubKey(numsKey)) {
		return fmt.Errorf("%w: another internal key", ErrScriptChanged)
	}
	lh := leafHash(ws)
	if len(pin.TaprootMerkleRoot) > 0 && !bytes.Equal(pin.TaprootMerkleRoot, lh[:]) {
		return fmt.Errorf("%w: another merkle root", ErrScriptChanged)
	}
	for _, l := range pin.TaprootLeafScript {
		if !bytes.Equal(l.Script, ws) {
			return fmt.Errorf("%w: another leaf script", ErrScriptChanged)
		}
	}
	return nil
}

// Combine merges the signatures of b into a; both must be of the same
// unsigned transaction. Previous transactions a lacks are taken from b.
func Combine(a, b *psbt.Packet) error {
	if a.UnsignedTx.TxHash() != b.UnsignedTx.TxHash() || len(a.Inputs) != len(b.Inputs) {
		return ErrMismatch
	}
	for i := range a.Inputs {
		ai, bi := &a.Inputs[i], &b.Inputs[i]
	next:
		for _, ps := range bi.PartialSigs {
			for _, have := range ai.PartialSigs {
				if bytes.Equal(have.PubKey, ps.PubKey) {
					continue next
				}
			}
			ai.PartialSigs = append(ai.PartialSigs, ps)
		}
	nextTap:
		for _, ps := range bi.TaprootScriptSpendSig {
			for _, have := range ai.TaprootScriptSpendSig {
				if have.EqualKey(ps) {
					continue nextTap
				}
			}
			ai.TaprootScriptSpendSig = append(ai.TaprootScriptSpendSig, ps)
		}
		if ai.NonWitnessUtxo == nil && bi.NonWitnessUtxo != nil {
			if err := checkPrevTx(bi.NonWitnessUtxo, a.UnsignedTx.TxIn[i].PreviousOutPoint, ai.WitnessUtxo); err != nil {
				return fmt.Errorf("input %d: %w", i, err)
			}
			ai.NonWitnessUtxo = bi.NonWitnessUtxo
		}
	}
	return nil
}

// formatBTC formats satoshi as BTC with integer arithmetic.
func formatBTC(sat int64) string {
	sign := ""
	if sat < 0 {
		sign, sat = "-", -sat
	}
	return fmt.Sprintf("%s%d.%08d", sign, sat/1e8, sat%1e8)
}
