package anchor

import (
	"bytes"
	"errors"
	"testing"

	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/journal/tree"
)

func TestAnchorFormat(t *testing.T) {
	a := Anchor{Size: 1234567, Root: tree.Hash{0xCA, 0xFE, 31: 0x01}}
	s := a.Script()
	if len(s) != ScriptSize || ScriptSize > 2+80 || s[0] != txscript.OP_RETURN || !bytes.Equal(s[2:7], []byte("kinko")) || s[7] != Version {
		t.Fatalf("script = %x", s)
	}
	if c := txscript.GetScriptClass(s); c != txscript.NullDataTy {
		t.Fatalf("script class = %v; want a standard null data output", c)
	}
	if got, err := Parse(s); err != nil || got != a {
		t.Fatalf("Parse(Script()) = %+v, %v", got, err)
	}
	// Strict: every other length, push, prefix, version, the empty tree, a
	// value, are not anchors.
	bad := map[string][]byte{
		"short":         s[:len(s)-1],
		"long":          append(append([]byte(nil), s...), 0),
		"another push":  append([]byte{txscript.OP_RETURN, txscript.OP_PUSHDATA1, byte(DataSize)}, s[2:]...),
		"not OP_RETURN": append([]byte{txscript.OP_NOP}, s[1:]...),
	}
	for i, name := range []string{"prefix", "version"} {
		b := append([]byte(nil), s...)
		b[2+i*len(Prefix)]++
		bad[name] = b
	}
	bad["empty tree"] = Anchor{Size: 0}.Script()
	for name, b := range bad {
		if _, err := Parse(b); !errors.Is(err, ErrNotAnchor) {
			t.Errorf("Parse(%s) = %v; want ErrNotAnchor", name, err)
		}
	}
	if _, err := ParseOutput(wire.NewTxOut(1, s)); !errors.Is(err, ErrNotAnchor) {
		t.Errorf("an anchor carrying a satoshi = %v; want ErrNotAnchor", err)
	}
	// Find: exactly one OP_RETURN output, and it an anchor.
	pay := wire.NewTxOut(5000, []byte{txscript.OP_0, txscript.OP_DATA_20, 19: 0})
	hello, _ := txscript.NullDataScript([]byte("hello"))
	for _, tc := range []struct {
		name string
		outs []*wire.TxOut
		vout int
	}{
		{"one anchor", []*wire.TxOut{pay, a.Output(), pay}, 1},
		{"none", []*wire.TxOut{pay}, -1},
		{"two", []*wire.TxOut{a.Output(), a.Output()}, -1},
		{"another OP_RETURN beside it", []*wire.TxOut{a.Output(), wire.NewTxOut(0, hello)}, -1},
	} {
		tx := wire.NewMsgTx(2)
		tx.TxOut = tc.outs
		got, vout, err := Find(tx)
		if tc.vout < 0 {
			if err == nil {
				t.Errorf("Find(%s) = %d; want refused", tc.name, vout)
			}
			continue
		}
		if err != nil || int(vout) != tc.vout || got != a {
			t.Errorf("Find(%s) = %+v at %d, %v", tc.name, got, vout, err)
		}
	}
}

// FuzzAnchor: whatever parses is an anchor's own script (one encoding),
// and every anchor round-trips.
func FuzzAnchor(f *testing.F) {
	f.Add(Anchor{Size: 1, Root: tree.Hash{1}}.Script())
	f.Add([]byte{txscript.OP_RETURN})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := Parse(b)
		if err != nil {
			return
		}
		if !bytes.Equal(a.Script(), b) {
			t.Fatalf("Parse(%x) = %+v, whose script is %x", b, a, a.Script())
		}
	})
}
