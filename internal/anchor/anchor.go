// Package anchor is the format of the journal's anchors on the Bitcoin
// chain: a head of the journal's Merkle tree (its size and root) written
// into an OP_RETURN output of a withdrawal batch the exchange sends anyway.
// Once the batch is mined, anyone with a node can read the head from the
// chain and check any entry's inclusion proof against it: the history up
// to that size stood as it is by the block's time, whoever holds the
// core's host later.
//
// The output is exactly
//
//	OP_RETURN OP_DATA_46 "kinko" 0x01 size(8, big-endian) root(32)
//
// 48 bytes of script, 46 of data (Bitcoin's standard limit is 80), of value
// 0. Parsing is strict: any other script, version, length or value is not
// an anchor, so one anchor has one encoding.
package anchor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/journal/tree"
)

// Prefix starts every anchor's data: the project's name.
const Prefix = "kinko"

// Version is the anchor format's version, the byte after the prefix.
const Version = 1

// DataSize is the size of an anchor's data: prefix, version, size, root.
const DataSize = len(Prefix) + 1 + 8 + tree.HashSize

// ScriptSize is the size of an anchor's output script.
const ScriptSize = 2 + DataSize

// ErrNotAnchor reports an output that is not an anchor in this format.
var ErrNotAnchor = errors.New("anchor: not a kinko anchor")

// Anchor is a tree head as the chain carries it: the size and root of the
// journal's tree (the time and signature stay off chain).
type Anchor struct {
	Size uint64
	Root tree.Hash
}

// Data returns the anchor's data: prefix, version, size and root.
func (a Anchor) Data() []byte {
	b := make([]byte, 0, DataSize)
	b = append(b, Prefix...)
	b = append(b, Version)
	b = binary.BigEndian.AppendUint64(b, a.Size)
	return append(b, a.Root[:]...)
}

// Script returns the anchor's output script: OP_RETURN and one push of its
// data.
func (a Anchor) Script() []byte {
	s, err := txscript.NullDataScript(a.Data())
	if err != nil {
		// DataSize is a constant below the 80-byte limit.
		panic(fmt.Sprintf("anchor: %v", err))
	}
	return s
}

// Output returns the anchor's transaction output, of value 0.
func (a Anchor) Output() *wire.TxOut { return wire.NewTxOut(0, a.Script()) }

// IsNullData tells whether script is an OP_RETURN output script (in any
// format): what a co-signer must account for as a non-paying output.
func IsNullData(script []byte) bool {
	return len(script) > 0 && script[0] == txscript.OP_RETURN
}

// Parse reads an anchor from an output script, strictly.
func Parse(script []byte) (Anchor, error) {
	if len(script) != ScriptSize || script[0] != txscript.OP_RETURN || int(script[1]) != txscript.OP_DATA_1+DataSize-1 {
		return Anchor{}, fmt.Errorf("%w: the script is not OP_RETURN and one push of %d bytes", ErrNotAnchor, DataSize)
	}
	d := script[2:]
	if !bytes.HasPrefix(d, []byte(Prefix)) {
		return Anchor{}, fmt.Errorf("%w: no %q prefix", ErrNotAnchor, Prefix)
	}
	if v := d[len(Prefix)]; v != Version {
		return Anchor{}, fmt.Errorf("%w: version %d, this kinko reads %d", ErrNotAnchor, v, Version)
	}
	var a Anchor
	a.Size = binary.BigEndian.Uint64(d[len(Prefix)+1:])
	copy(a.Root[:], d[len(Prefix)+9:])
	if a.Size == 0 {
		return Anchor{}, fmt.Errorf("%w: the empty tree is not anchored", ErrNotAnchor)
	}
	return a, nil
}

// ParseOutput reads an anchor from a transaction output: its script, and a
// value of 0.
func ParseOutput(o *wire.TxOut) (Anchor, error) {
	a, err := Parse(o.PkScript)
	if err != nil {
		return Anchor{}, err
	}
	if o.Value != 0 {
		return Anchor{}, fmt.Errorf("%w: the output carries %d sat; an anchor carries none", ErrNotAnchor, o.Value)
	}
	return a, nil
}

// Find returns the anchor of a transaction and its output index: exactly
// one output in the format, and no other OP_RETURN output.
func Find(tx *wire.MsgTx) (Anchor, uint32, error) {
	var found Anchor
	at := -1
	for i, o := range tx.TxOut {
		if !IsNullData(o.PkScript) {
			continue
		}
		a, err := ParseOutput(o)
		if err != nil {
			return Anchor{}, 0, fmt.Errorf("output %d: %w", i, err)
		}
		if at >= 0 {
			return Anchor{}, 0, fmt.Errorf("%w: outputs %d and %d are both anchors", ErrNotAnchor, at, i)
		}
		found, at = a, i
	}
	if at < 0 {
		return Anchor{}, 0, fmt.Errorf("%w: the transaction has no OP_RETURN output", ErrNotAnchor)
	}
	return found, uint32(at), nil
}
