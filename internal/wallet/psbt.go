package wallet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
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
}

// Virtual sizes for fees: a 2-of-3 P2WSH input, a P2WSH output, the rest.
const (
	vbytesInput    = 105
	vbytesOutput   = 43
	vbytesOverhead = 11
	// DustLimit is the smallest output worth making.
	DustLimit = 546
)

// Build makes an unsigned PSBT spending utxos to outputs, with change (if
// above dust) to change wallet's change branch at changeIndex, at feeRate
// satoshi per vbyte. Every input carries its witness utxo, witness script
// and the BIP32 derivations of its keys; the change output carries its
// derivations, so signers recognise it.
func Build(utxos []UTXO, outputs []*wire.TxOut, change *Named, changeIndex uint32, feeRate int64) (*psbt.Packet, error) {
	var in int64
	ops := make([]*wire.OutPoint, len(utxos))
	for i := range utxos {
		in += utxos[i].Value
		ops[i] = &utxos[i].OutPoint
	}
	var out int64
	for _, o := range outputs {
		out += o.Value
	}
	fee := feeRate * int64(vbytesOverhead+vbytesInput*len(utxos)+vbytesOutput*(len(outputs)+1))
	if in < out+fee {
		return nil, fmt.Errorf("%w: %d in, %d out, fee %d", ErrFunds, in, out, fee)
	}
	outs := append([]*wire.TxOut(nil), outputs...)
	changeAt := -1
	if rest := in - out - fee; rest > DustLimit && change != nil {
		pk, err := change.desc.PkScript(1, changeIndex)
		if err != nil {
			return nil, err
		}
		outs = append(outs, wire.NewTxOut(rest, pk))
		changeAt = len(outs) - 1
	}
	seq := make([]uint32, len(ops))
	for i := range seq {
		seq[i] = wire.MaxTxInSequenceNum - 2 // replaceable (BIP125)
	}
	p, err := psbt.New(ops, outs, 2, 0, seq)
	if err != nil {
		return nil, err
	}
	u, err := psbt.NewUpdater(p)
	if err != nil {
		return nil, err
	}
	for i, x := range utxos {
		d := x.Wallet.desc
		ws, err := d.WitnessScript(x.Branch, x.Index)
		if err != nil {
			return nil, err
		}
		pk, _ := d.PkScript(x.Branch, x.Index)
		if err := u.AddInWitnessUtxo(wire.NewTxOut(x.Value, pk), i); err != nil {
			return nil, err
		}
		if err := u.AddInWitnessScript(ws, i); err != nil {
			return nil, err
		}
		if err := addDerivations(d, x.Branch, x.Index, func(fp uint32, path []uint32, pub []byte) error {
			return u.AddInBip32Derivation(fp, path, pub, i)
		}); err != nil {
			return nil, err
		}
	}
	if changeAt >= 0 {
		if err := addDerivations(change.desc, 1, changeIndex, func(fp uint32, path []uint32, pub []byte) error {
			return u.AddOutBip32Derivation(fp, path, pub, changeAt)
		}); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// AddInput gives input i of p what Build gives each input: the witness
// utxo of d's script at (branch, index) worth value, its witness script,
// and the BIP32 derivations of its keys, so that Sign and other signers
// find it. For PSBTs made elsewhere, such as BIP-322's to_sign.
func AddInput(p *psbt.Packet, i int, d *Descriptor, branch, index uint32, value int64) error {
	ws, err := d.WitnessScript(branch, index)
	if err != nil {
		return err
	}
	pk, err := d.PkScript(branch, index)
	if err != nil {
		return err
	}
	u, err := psbt.NewUpdater(p)
	if err != nil {
		return err
	}
	if err := u.AddInWitnessUtxo(wire.NewTxOut(value, pk), i); err != nil {
		return err
	}
	if err := u.AddInWitnessScript(ws, i); err != nil {
		return err
	}
	return addDerivations(d, branch, index, func(fp uint32, path []uint32, pub []byte) error {
		return u.AddInBip32Derivation(fp, path, pub, i)
	})
}

func addDerivations(d *Descriptor, branch, index uint32, add func(fp uint32, path []uint32, pub []byte) error) error {
	bks, err := d.branchKeys(branch)
	if err != nil {
		return err
	}
	for i, k := range d.Keys {
		c, err := bks[i].Derive(index)
		if err != nil {
			return err
		}
		pub, err := c.ECPubKey()
		if err != nil {
			return err
		}
		path := append(append([]uint32(nil), k.Path...), branch, index)
		fp := uint32(k.Fingerprint[0]) | uint32(k.Fingerprint[1])<<8 | uint32(k.Fingerprint[2])<<16 | uint32(k.Fingerprint[3])<<24
		if err := add(fp, path, pub.SerializeCompressed()); err != nil {
			return err
		}
	}
	return nil
}

// Read parses a PSBT (binary or base64). The psbt library panics on some
// malformed key data (found by FuzzReadPSBT; the crasher is kept in
// testdata): Read turns such a panic into ErrPSBT, since its input comes
// from outside.
func Read(r io.Reader) (p *psbt.Packet, err error) {
	defer func() {
		if v := recover(); v != nil {
			p, err = nil, fmt.Errorf("%w: %v", ErrPSBT, v)
		}
	}()
	return read(r)
}

func read(r io.Reader) (*psbt.Packet, error) {
	b, err := io.ReadAll(io.LimitReader(r, 4<<20))
	if err != nil {
		return nil, err
	}
	b64 := !bytes.HasPrefix(b, []byte("psbt\xff"))
	if b64 {
		b = bytes.TrimSpace(b)
	}
	p, err := psbt.NewFromRawBytes(bytes.NewReader(b), b64)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPSBT, err)
	}
	if err := p.SanityCheck(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPSBT, err)
	}
	return p, nil
}

// Encode returns the PSBT in base64.
func Encode(p *psbt.Packet) (string, error) { return p.B64Encode() }

// Line is one input or output in plain words.
type Line struct {
	Amount  btcutil.Amount
	Address string
	Ours    string // "cold-main (cold-customer) receive #3", or "" if not ours
}

// Description is what a signer is shown: every input and output, recomputed
// from the descriptors, the amount leaving to outside addresses, the fee,
// and why the signer refuses the transaction, if it does.
type Description struct {
	Inputs, Outputs []Line
	Outside         btcutil.Amount // paid to scripts of no wallet in the set
	Fee             btcutil.Amount
	FeeRate         float64 // satoshi per vbyte, for display only
	Refused         []error
}

// Refusal returns why the transaction must not be signed, or nil.
func (d *Description) Refusal() error { return errors.Join(d.Refused...) }

// Describe reads a PSBT against our wallets. An input is ours only if its
// script is one of our wallets'; an output likewise, and every other
// output is a payment to an outside address. claims (may be nil) holds the
// wallets another machine says are ours, never believed: an output that is
// not ours but is claimed as ours or as change (a change-branch script of
// a claimed wallet, a claimed wallet naming one of our keys, BIP32
// derivations naming one of our keys, a witness script) is a refusal, as
// is an input that is not ours or an output of ours whose PSBT scripts
// differ from the descriptor's.
func (s *Set) Describe(p *psbt.Packet, claims *Set) (*Description, error) {
	d := &Description{}
	var in, out int64
	for i, pin := range p.Inputs {
		if pin.WitnessUtxo == nil {
			return nil, fmt.Errorf("%w: input %d", ErrNoUtxo, i)
		}
		in += pin.WitnessUtxo.Value
		l := s.line(pin.WitnessUtxo, pin.Bip32Derivation)
		if l.Ours == "" {
			d.Refused = append(d.Refused, fmt.Errorf("%w: input %d is of no wallet registered here", ErrNotOurs, i+1))
		}
		d.Inputs = append(d.Inputs, l)
	}
	for i, o := range p.UnsignedTx.TxOut {
		out += o.Value
		var po psbt.POutput
		if i < len(p.Outputs) {
			po = p.Outputs[i]
		}
		l := s.line(o, po.Bip32Derivation)
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
	vsize := vbytesOverhead + vbytesInput*len(p.Inputs) + vbytesOutput*len(p.UnsignedTx.TxOut)
	d.FeeRate = float64(d.Fee) / float64(vsize)
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
	if claims == nil {
		return ""
	}
	w, p, ok := claims.Locate(script, po.Bip32Derivation)
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
// scripts other than the descriptor's (ours are native P2WSH).
func (s *Set) checkOutputScripts(script []byte, po *psbt.POutput) error {
	if len(po.RedeemScript) > 0 {
		return fmt.Errorf("%w: a redeem script on a native P2WSH output", ErrScriptChanged)
	}
	if len(po.WitnessScript) == 0 {
		return nil
	}
	w, p, _ := s.Locate(script, po.Bip32Derivation)
	ws, err := w.desc.WitnessScript(p.Branch, p.Index)
	if err != nil {
		return err
	}
	if !bytes.Equal(ws, po.WitnessScript) {
		return ErrScriptChanged
	}
	return nil
}

func (s *Set) line(o *wire.TxOut, hints []*psbt.Bip32Derivation) Line {
	l := Line{Amount: btcutil.Amount(o.Value), Address: "(non-standard script)"}
	_, addrs, _, err := txscript.ExtractPkScriptAddrs(o.PkScript, s.net)
	if err == nil && len(addrs) == 1 {
		l.Address = addrs[0].EncodeAddress()
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
	w := func(title, notOurs string, ls []Line) {
		fmt.Fprintf(&b, "%s:\n", title)
		for i, l := range ls {
			ours := notOurs
			if l.Ours != "" {
				ours = "ours: " + l.Ours
			}
			fmt.Fprintf(&b, "  %d. %16s BTC  %s  [%s]\n", i+1, formatBTC(int64(l.Amount)), l.Address, ours)
		}
	}
	w("inputs", "NOT OURS: no wallet registered here", d.Inputs)
	w("outputs", "payment to an outside address", d.Outputs)
	fmt.Fprintf(&b, "paid to outside addresses: %s BTC\n", formatBTC(int64(d.Outside)))
	fmt.Fprintf(&b, "fee: %d sat (about %.1f sat/vB)\n", int64(d.Fee), d.FeeRate)
	return b.String()
}

// Sign signs every input of p that belongs to one of our wallets of which
// account (a BIP48 account private key with master fingerprint fp) is a
// key. It finds each input's wallet and place by recomputing its script
// from the descriptors (Locate: the PSBT's derivations are hints, checked
// against the descriptor), and refuses the PSBT if an input is not ours or
// its witness script differs from the descriptor's. It computes the BIP143
// sighash itself. It returns the number of inputs signed.
func (s *Set) Sign(p *psbt.Packet, account *hdkeychain.ExtendedKey, fp [4]byte) (int, error) {
	accPub, err := account.Neuter()
	if err != nil {
		return 0, err
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
		priv   *hdkeychain.ExtendedKey
		branch uint32
		index  uint32
	}
	var jobs []job
	// Check every input before signing any: a PSBT is signed whole or not.
	coin := hdkeychain.HardenedKeyStart + CoinType(s.net)
	for i, pin := range p.Inputs {
		for _, d := range pin.Bip32Derivation {
			if len(d.Bip32Path) >= 2 && d.Bip32Path[0] == hdkeychain.HardenedKeyStart+purposeBIP48 && d.Bip32Path[1] != coin {
				return 0, fmt.Errorf("%w: input %d is derived for coin type %d", ErrNetwork, i, d.Bip32Path[1]-hdkeychain.HardenedKeyStart)
			}
		}
		w, place, ok := s.Locate(pin.WitnessUtxo.PkScript, pin.Bip32Derivation)
		if !ok {
			return 0, fmt.Errorf("%w: input %d", ErrNotOurs, i)
		}
		ws, err := w.desc.WitnessScript(place.Branch, place.Index)
		if err != nil {
			return 0, err
		}
		if !bytes.Equal(ws, pin.WitnessScript) {
			return 0, fmt.Errorf("%w: input %d", ErrScriptChanged, i)
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
		jobs = append(jobs, job{i: i, ws: ws, branch: place.Branch, index: place.Index})
	}
	if len(jobs) == 0 {
		return 0, ErrNothingToSign
	}
	u, err := psbt.NewUpdater(p)
	if err != nil {
		return 0, err
	}
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
		sig, err := txscript.RawTxInWitnessSignature(p.UnsignedTx, hashes, j.i, p.Inputs[j.i].WitnessUtxo.Value, j.ws, txscript.SigHashAll, priv)
		if err != nil {
			return 0, err
		}
		if _, err := u.Sign(j.i, sig, priv.PubKey().SerializeCompressed(), nil, nil); err != nil {
			return 0, fmt.Errorf("wallet: add signature to input %d: %w", j.i, err)
		}
	}
	return len(jobs), nil
}

// Combine merges the signatures of b into a; both must be of the same
// unsigned transaction.
func Combine(a, b *psbt.Packet) error {
	if a.UnsignedTx.TxHash() != b.UnsignedTx.TxHash() || len(a.Inputs) != len(b.Inputs) {
		return ErrMismatch
	}
	for i := range a.Inputs {
	next:
		for _, ps := range b.Inputs[i].PartialSigs {
			for _, have := range a.Inputs[i].PartialSigs {
				if bytes.Equal(have.PubKey, ps.PubKey) {
					continue next
				}
			}
			a.Inputs[i].PartialSigs = append(a.Inputs[i].PartialSigs, ps)
		}
	}
	return nil
}

// Finalize finalizes every input and extracts the signed transaction.
func Finalize(p *psbt.Packet) (*wire.MsgTx, error) {
	if err := psbt.MaybeFinalizeAll(p); err != nil {
		return nil, fmt.Errorf("wallet: finalize: %w", err)
	}
	return psbt.Extract(p)
}

// formatBTC formats satoshi as BTC with integer arithmetic.
func formatBTC(sat int64) string {
	sign := ""
	if sat < 0 {
		sign, sat = "-", -sat
	}
	return fmt.Sprintf("%s%d.%08d", sign, sat/1e8, sat%1e8)
}
