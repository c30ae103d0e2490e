package wallet

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// PSBT version 2 (BIP370). btcutil/psbt reads and writes version 0 only,
// so a v2 PSBT is turned into the v0 PSBT of the same transaction (its
// unsigned transaction built from the v2 fields, every other field kept
// as it is) and back: the key-value maps are moved as raw bytes, so that
// whatever btcutil/psbt parses in v0 it parses the same in v2.

// Key types BIP370 adds, and the v0 field it removes.
const (
	globalUnsignedTx       = 0x00
	globalTxVersion        = 0x02
	globalFallbackLocktime = 0x03
	globalInputCount       = 0x04
	globalOutputCount      = 0x05
	globalTxModifiable     = 0x06
	globalVersion          = 0xfb
	inPreviousTxid         = 0x0e
	inOutputIndex          = 0x0f
	inSequence             = 0x10
	inRequiredTime         = 0x11
	inRequiredHeight       = 0x12
	outAmount              = 0x03
	outScript              = 0x04
)

// V2Info is what a v2 PSBT says that its v0 form cannot: the fallback
// locktime, the modifiable flags, and each input's required locktimes (0
// for none). EncodeVersion writes them back.
type V2Info struct {
	FallbackLocktime uint32
	HasFallback      bool
	Modifiable       byte
	HasModifiable    bool
	RequiredTime     []uint32
	RequiredHeight   []uint32
	// Sequence says which inputs carried PSBT_IN_SEQUENCE (optional,
	// 0xffffffff without); written back as read.
	Sequence []bool
}

type kv struct{ key, val []byte }

// rawMap reads one key-value map up to its separator.
func rawMap(r *bytes.Reader) ([]kv, error) {
	var m []kv
	seen := map[string]bool{}
	for {
		kl, err := wire.ReadVarInt(r, 0)
		if err != nil {
			return nil, err
		}
		if kl == 0 {
			return m, nil
		}
		if kl > uint64(r.Len()) {
			return nil, io.ErrUnexpectedEOF
		}
		k := make([]byte, kl)
		io.ReadFull(r, k)
		v, err := wire.ReadVarBytes(r, 0, psbt.MaxPsbtValueLength, "PSBT value")
		if err != nil {
			return nil, err
		}
		if seen[string(k)] {
			return nil, fmt.Errorf("duplicate key %x", k)
		}
		seen[string(k)] = true
		m = append(m, kv{k, v})
	}
}

func writeMap(w *bytes.Buffer, m []kv) {
	for _, e := range m {
		wire.WriteVarBytes(w, 0, e.key)
		wire.WriteVarBytes(w, 0, e.val)
	}
	w.WriteByte(0)
}

// field returns the value of the key of type t without key data.
func field(m []kv, t byte) ([]byte, bool) {
	for _, e := range m {
		if len(e.key) == 1 && e.key[0] == t {
			return e.val, true
		}
	}
	return nil, false
}

// hasType reports whether m holds a key of one of types without key data
// (the form of every field BIP370 adds or removes).
func hasType(m []kv, types ...byte) (byte, bool) {
	for _, e := range m {
		if len(e.key) == 1 && slices.Contains(types, e.key[0]) {
			return e.key[0], true
		}
	}
	return 0, false
}

func without(m []kv, types ...byte) []kv {
	return slices.DeleteFunc(slices.Clone(m), func(e kv) bool { return len(e.key) == 1 && slices.Contains(types, e.key[0]) })
}

func u32(v []byte, ok bool, what string) (uint32, error) {
	if !ok {
		return 0, fmt.Errorf("no %s", what)
	}
	if len(v) != 4 {
		return 0, fmt.Errorf("%s of %d bytes", what, len(v))
	}
	return binary.LittleEndian.Uint32(v), nil
}

func compact(v []byte, ok bool, what string, max int) (int, error) {
	if !ok {
		return 0, fmt.Errorf("no %s", what)
	}
	r := bytes.NewReader(v)
	n, err := wire.ReadVarInt(r, 0)
	if err != nil || r.Len() != 0 {
		return 0, fmt.Errorf("%s malformed", what)
	}
	if n > uint64(max) {
		return 0, fmt.Errorf("%s %d larger than the PSBT", what, n)
	}
	return int(n), nil
}

// psbtVersion returns the PSBT_GLOBAL_VERSION of a global map (0 without).
func psbtVersion(g []kv) (uint32, error) {
	v, ok := field(g, globalVersion)
	if !ok {
		return 0, nil
	}
	return u32(v, true, "version")
}

// readAny parses a binary PSBT of version 0 or 2 and returns it as a v0
// packet with its version and, for v2, what v0 cannot hold.
func readAny(b []byte) (*psbt.Packet, int, *V2Info, error) {
	r := bytes.NewReader(b)
	var magic [5]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil || string(magic[:]) != "psbt\xff" {
		return nil, 0, nil, fmt.Errorf("%w: no PSBT magic", ErrPSBT)
	}
	g, err := rawMap(r)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%w: global map: %v", ErrPSBT, err)
	}
	ver, err := psbtVersion(g)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%w: %v", ErrPSBT, err)
	}
	switch ver {
	case 0:
		if t, ok := hasType(g, globalTxVersion, globalFallbackLocktime, globalInputCount, globalOutputCount, globalTxModifiable); ok {
			return nil, 0, nil, fmt.Errorf("%w: version 0 with the v2 global field %#x", ErrPSBT, t)
		}
		p, err := psbt.NewFromRawBytes(bytes.NewReader(b), false)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("%w: %v", ErrPSBT, err)
		}
		for i := range p.Inputs {
			if t, ok := unknownType(p.Inputs[i].Unknowns, inPreviousTxid, inOutputIndex, inSequence, inRequiredTime, inRequiredHeight); ok {
				return nil, 0, nil, fmt.Errorf("%w: version 0 with the v2 input field %#x", ErrPSBT, t)
			}
		}
		for i := range p.Outputs {
			if t, ok := unknownType(p.Outputs[i].Unknowns, outAmount, outScript); ok {
				return nil, 0, nil, fmt.Errorf("%w: version 0 with the v2 output field %#x", ErrPSBT, t)
			}
		}
		return p, 0, nil, nil
	case 2:
		p, info, err := fromV2(g, r)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("%w: version 2: %v", ErrPSBT, err)
		}
		return p, 2, info, nil
	}
	return nil, 0, nil, fmt.Errorf("%w: PSBT version %d", ErrPSBT, ver)
}

func unknownType(us []*psbt.Unknown, types ...byte) (byte, bool) {
	for _, u := range us {
		if len(u.Key) == 1 && slices.Contains(types, u.Key[0]) {
			return u.Key[0], true
		}
	}
	return 0, false
}

// fromV2 builds the v0 packet of a v2 PSBT whose global map is g and whose
// input and output maps follow in r.
func fromV2(g []kv, r *bytes.Reader) (*psbt.Packet, *V2Info, error) {
	if _, ok := hasType(g, globalUnsignedTx); ok {
		return nil, nil, fmt.Errorf("an unsigned transaction")
	}
	tv, ok := field(g, globalTxVersion)
	txVersion, err := u32(tv, ok, "transaction version")
	if err != nil {
		return nil, nil, err
	}
	if txVersion < 2 {
		return nil, nil, fmt.Errorf("transaction version %d, below 2", txVersion)
	}
	nIn, err := compact2(g, globalInputCount, "input count", r.Len())
	if err != nil {
		return nil, nil, err
	}
	nOut, err := compact2(g, globalOutputCount, "output count", r.Len())
	if err != nil {
		return nil, nil, err
	}
	info := &V2Info{RequiredTime: make([]uint32, nIn), RequiredHeight: make([]uint32, nIn), Sequence: make([]bool, nIn)}
	if v, ok := field(g, globalFallbackLocktime); ok {
		if info.FallbackLocktime, err = u32(v, true, "fallback locktime"); err != nil {
			return nil, nil, err
		}
		info.HasFallback = true
	}
	if v, ok := field(g, globalTxModifiable); ok {
		if len(v) != 1 {
			return nil, nil, fmt.Errorf("modifiable flags of %d bytes", len(v))
		}
		info.Modifiable, info.HasModifiable = v[0], true
	}
	tx := wire.NewMsgTx(int32(txVersion))
	ins := make([][]kv, nIn)
	for i := range ins {
		m, err := rawMap(r)
		if err != nil {
			return nil, nil, fmt.Errorf("input %d: %v", i, err)
		}
		txid, ok := field(m, inPreviousTxid)
		if !ok || len(txid) != 32 {
			return nil, nil, fmt.Errorf("input %d: no previous txid of 32 bytes", i)
		}
		ov, ok := field(m, inOutputIndex)
		vout, err := u32(ov, ok, "output index")
		if err != nil {
			return nil, nil, fmt.Errorf("input %d: %v", i, err)
		}
		seq := uint32(wire.MaxTxInSequenceNum)
		if v, ok := field(m, inSequence); ok {
			if seq, err = u32(v, true, "sequence"); err != nil {
				return nil, nil, fmt.Errorf("input %d: %v", i, err)
			}
			info.Sequence[i] = true
		}
		if v, ok := field(m, inRequiredTime); ok {
			t, err := u32(v, true, "required time locktime")
			if err != nil || t < txscript.LockTimeThreshold {
				return nil, nil, fmt.Errorf("input %d: required time locktime malformed or below 500000000", i)
			}
			info.RequiredTime[i] = t
		}
		if v, ok := field(m, inRequiredHeight); ok {
			h, err := u32(v, true, "required height locktime")
			if err != nil || h == 0 || h >= txscript.LockTimeThreshold {
				return nil, nil, fmt.Errorf("input %d: required height locktime malformed or not a height", i)
			}
			info.RequiredHeight[i] = h
		}
		var op wire.OutPoint
		copy(op.Hash[:], txid)
		op.Index = vout
		tx.AddTxIn(&wire.TxIn{PreviousOutPoint: op, Sequence: seq})
		ins[i] = without(m, inPreviousTxid, inOutputIndex, inSequence, inRequiredTime, inRequiredHeight)
	}
	outs := make([][]kv, nOut)
	for i := range outs {
		m, err := rawMap(r)
		if err != nil {
			return nil, nil, fmt.Errorf("output %d: %v", i, err)
		}
		amt, ok := field(m, outAmount)
		if !ok || len(amt) != 8 {
			return nil, nil, fmt.Errorf("output %d: no amount of 8 bytes", i)
		}
		script, ok := field(m, outScript)
		if !ok {
			return nil, nil, fmt.Errorf("output %d: no script", i)
		}
		tx.AddTxOut(wire.NewTxOut(int64(binary.LittleEndian.Uint64(amt)), script))
		outs[i] = without(m, outAmount, outScript)
	}
	if r.Len() != 0 {
		return nil, nil, fmt.Errorf("%d bytes after the last output", r.Len())
	}
	lt, err := info.locktime()
	if err != nil {
		return nil, nil, err
	}
	tx.LockTime = lt
	var txb bytes.Buffer
	if err := tx.SerializeNoWitness(&txb); err != nil {
		return nil, nil, err
	}
	var b bytes.Buffer
	b.WriteString("psbt\xff")
	writeMap(&b, append([]kv{{[]byte{globalUnsignedTx}, txb.Bytes()}}, without(g, globalTxVersion, globalFallbackLocktime, globalInputCount, globalOutputCount, globalTxModifiable, globalVersion)...))
	for _, m := range ins {
		writeMap(&b, m)
	}
	for _, m := range outs {
		writeMap(&b, m)
	}
	p, err := psbt.NewFromRawBytes(&b, false)
	if err != nil {
		return nil, nil, err
	}
	return p, info, nil
}

func compact2(g []kv, t byte, what string, max int) (int, error) {
	v, ok := field(g, t)
	return compact(v, ok, what, max)
}

// locktime determines the transaction's locktime from the inputs'
// requirements, as BIP370 says: none, the fallback (default 0); else the
// largest of one kind, heights when every input with a requirement can
// take one, times when they all can take a time, and no transaction when
// one input needs a height and another a time.
func (v *V2Info) locktime() (uint32, error) {
	any, allHeight, allTime := false, true, true
	var height, time uint32
	for i := range v.RequiredHeight {
		h, t := v.RequiredHeight[i], v.RequiredTime[i]
		if h == 0 && t == 0 {
			continue
		}
		any = true
		allHeight = allHeight && h != 0
		allTime = allTime && t != 0
		height, time = max(height, h), max(time, t)
	}
	switch {
	case !any:
		return v.FallbackLocktime, nil
	case allHeight:
		return height, nil
	case allTime:
		return time, nil
	}
	return 0, fmt.Errorf("inputs require a height locktime and a time locktime")
}

// toV2 writes p as a v2 PSBT: the unsigned transaction's fields moved into
// the v2 fields, with info's fallback locktime, flags and requirements
// (nil: the transaction's locktime as fallback and no requirement).
// Signatures present clear the modifiable flags their sighash types
// forbid (BIP370's Signer).
func toV2(p *psbt.Packet, info *V2Info) ([]byte, error) {
	var v0 bytes.Buffer
	if err := p.Serialize(&v0); err != nil {
		return nil, err
	}
	r := bytes.NewReader(v0.Bytes()[5:])
	g, err := rawMap(r)
	if err != nil {
		return nil, err
	}
	tx := p.UnsignedTx
	if tx.Version < 2 {
		return nil, fmt.Errorf("wallet: a version 2 PSBT needs transaction version 2, not %d", tx.Version)
	}
	if info == nil {
		info = &V2Info{FallbackLocktime: tx.LockTime, HasFallback: true}
	}
	if len(info.RequiredTime) != 0 && (len(info.RequiredTime) != len(tx.TxIn) || len(info.RequiredHeight) != len(tx.TxIn)) {
		return nil, fmt.Errorf("wallet: locktime requirements for %d inputs, not %d", len(info.RequiredTime), len(tx.TxIn))
	}
	if lt, err := info.locktime(); err != nil || lt != tx.LockTime {
		return nil, fmt.Errorf("wallet: the v2 fields give another locktime than the transaction's %d", tx.LockTime)
	}
	le32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	cs := func(n int) []byte {
		var b bytes.Buffer
		wire.WriteVarInt(&b, 0, uint64(n))
		return b.Bytes()
	}
	ng := []kv{{[]byte{globalTxVersion}, le32(uint32(tx.Version))}}
	if info.HasFallback {
		ng = append(ng, kv{[]byte{globalFallbackLocktime}, le32(info.FallbackLocktime)})
	}
	ng = append(ng, kv{[]byte{globalInputCount}, cs(len(tx.TxIn))}, kv{[]byte{globalOutputCount}, cs(len(tx.TxOut))})
	if flags, ok := info.signedFlags(p); ok {
		ng = append(ng, kv{[]byte{globalTxModifiable}, []byte{flags}})
	}
	ng = append(ng, without(g, globalUnsignedTx)...)
	ng = append(ng, kv{[]byte{globalVersion}, le32(2)})
	var b bytes.Buffer
	b.WriteString("psbt\xff")
	writeMap(&b, ng)
	for i, in := range tx.TxIn {
		m, err := rawMap(r)
		if err != nil {
			return nil, err
		}
		txid := in.PreviousOutPoint.Hash
		nm := []kv{{[]byte{inPreviousTxid}, txid[:]}, {[]byte{inOutputIndex}, le32(in.PreviousOutPoint.Index)}}
		if in.Sequence != wire.MaxTxInSequenceNum || (i < len(info.Sequence) && info.Sequence[i]) {
			nm = append(nm, kv{[]byte{inSequence}, le32(in.Sequence)})
		}
		if len(info.RequiredTime) > 0 && info.RequiredTime[i] != 0 {
			nm = append(nm, kv{[]byte{inRequiredTime}, le32(info.RequiredTime[i])})
		}
		if len(info.RequiredHeight) > 0 && info.RequiredHeight[i] != 0 {
			nm = append(nm, kv{[]byte{inRequiredHeight}, le32(info.RequiredHeight[i])})
		}
		writeMap(&b, append(m, nm...))
	}
	for _, o := range tx.TxOut {
		m, err := rawMap(r)
		if err != nil {
			return nil, err
		}
		writeMap(&b, append(m, kv{[]byte{outAmount}, binary.LittleEndian.AppendUint64(nil, uint64(o.Value))}, kv{[]byte{outScript}, o.PkScript}))
	}
	return b.Bytes(), nil
}

// signedFlags returns the modifiable flags to write: info's, with bit 0
// (inputs modifiable) cleared by any signature without ANYONECANPAY, bit
// 1 (outputs modifiable) by any not SIGHASH_NONE, and bit 2 (has
// SIGHASH_SINGLE) set by a SINGLE one.
func (v *V2Info) signedFlags(p *psbt.Packet) (byte, bool) {
	f, ok := v.Modifiable, v.HasModifiable
	seen := func(t txscript.SigHashType) {
		if t == txscript.SigHashDefault {
			t = txscript.SigHashAll
		}
		if t&txscript.SigHashAnyOneCanPay == 0 {
			f &^= 1
		}
		if t&^txscript.SigHashAnyOneCanPay != txscript.SigHashNone {
			f &^= 2
		}
		if t&^txscript.SigHashAnyOneCanPay == txscript.SigHashSingle {
			f |= 4
		}
	}
	if !ok {
		return 0, false
	}
	for _, in := range p.Inputs {
		for _, s := range in.PartialSigs {
			if len(s.Signature) > 0 {
				seen(txscript.SigHashType(s.Signature[len(s.Signature)-1]))
			}
		}
		for _, s := range in.TaprootScriptSpendSig {
			seen(s.SigHash)
		}
	}
	return f, true
}

// ReadVersioned parses a PSBT (binary or base64) of version 0 or 2
// (BIP370). It returns the packet as version 0, the version read, and for
// version 2 what the v0 form cannot hold (EncodeVersion writes it back).
// Malformed input is ErrPSBT, never a panic.
func ReadVersioned(r io.Reader) (p *psbt.Packet, version int, info *V2Info, err error) {
	defer func() {
		if v := recover(); v != nil {
			p, version, info, err = nil, 0, nil, fmt.Errorf("%w: %v", ErrPSBT, v)
		}
	}()
	b, err := io.ReadAll(io.LimitReader(r, maxPSBTBytes+1))
	if err != nil {
		return nil, 0, nil, err
	}
	if len(b) > maxPSBTBytes {
		return nil, 0, nil, fmt.Errorf("%w: larger than %d bytes", ErrPSBT, maxPSBTBytes)
	}
	if !bytes.HasPrefix(b, []byte("psbt\xff")) {
		dec, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
		if err != nil {
			return nil, 0, nil, fmt.Errorf("%w: neither binary nor base64", ErrPSBT)
		}
		b = dec
	}
	p, version, info, err = readAny(b)
	if err != nil {
		return nil, 0, nil, err
	}
	if err := p.SanityCheck(); err != nil {
		return nil, 0, nil, fmt.Errorf("%w: %v", ErrPSBT, err)
	}
	return p, version, info, nil
}

// maxPSBTBytes bounds a PSBT read.
const maxPSBTBytes = 4 << 20

// EncodeVersion returns p in base64 as a PSBT of version 0 or 2; info (may
// be nil) is what ReadVersioned returned for a v2 PSBT.
func EncodeVersion(p *psbt.Packet, version int, info *V2Info) (string, error) {
	switch version {
	case 0:
		return p.B64Encode()
	case 2:
		b, err := toV2(p, info)
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(b), nil
	}
	return "", fmt.Errorf("wallet: PSBT version %d: only 0 and 2", version)
}

func decodeB64(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.TrimSpace(s))
}
