package safe

import (
	"bytes"
	"encoding/binary"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// callsFrom builds a batch of calls from fuzz bytes: each call takes a
// byte of data length, 20 bytes of address and up to 32 bytes of value.
func callsFrom(b []byte) []Call {
	var calls []Call
	for len(b) > 0 && len(calls) < 64 {
		n := int(b[0]) % 40
		b = b[1:]
		var c Call
		k := copy(c.To[:], b)
		b = b[k:]
		v := min(len(b), 32)
		c.Value = new(big.Int).SetBytes(b[:v])
		b = b[v:]
		d := min(len(b), n)
		c.Data = bytes.Clone(b[:d])
		b = b[d:]
		calls = append(calls, c)
	}
	return calls
}

// FuzzMultiSendRoundTrip: every batch encodes, and decodes back to the
// same calls.
func FuzzMultiSendRoundTrip(f *testing.F) {
	f.Add([]byte{3, 1, 2, 3})
	f.Add(bytes.Repeat([]byte{0xff}, 200))
	f.Add(make([]byte, 90))
	f.Fuzz(func(t *testing.T, b []byte) {
		calls := callsFrom(b)
		enc, err := EncodeMultiSend(calls)
		if len(calls) == 0 {
			if err == nil {
				t.Fatal("an empty batch encoded")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeMultiSend(enc)
		if err != nil {
			t.Fatalf("DecodeMultiSend(EncodeMultiSend(%d calls)) = %v", len(calls), err)
		}
		if len(back) != len(calls) {
			t.Fatalf("%d calls back; want %d", len(back), len(calls))
		}
		for i := range calls {
			if back[i].To != calls[i].To || back[i].Value.Cmp(calls[i].Value) != 0 || !bytes.Equal(back[i].Data, calls[i].Data) {
				t.Fatalf("call %d = %+v; want %+v", i, back[i], calls[i])
			}
		}
	})
}

// FuzzDecodeMultiSend: arbitrary calldata never panics, and whatever
// decodes is the one encoding of its calls (re-encoding gives the same
// bytes), so two readers cannot see two batches in it.
func FuzzDecodeMultiSend(f *testing.F) {
	good, _ := EncodeMultiSend([]Call{{To: common.Address{19: 1}, Value: big.NewInt(5)}, {To: common.Address{19: 2}, Value: big.NewInt(0), Data: []byte{1, 2}}})
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(append(bytes.Clone(good), 0))
	short := bytes.Clone(good)
	binary.BigEndian.PutUint32(short[4+32+28:], 100) // the packed length, shorter than the bytes
	f.Add(short)
	f.Fuzz(func(t *testing.T, data []byte) {
		calls, err := DecodeMultiSend(data)
		if err != nil {
			return
		}
		again, err := EncodeMultiSend(calls)
		if err != nil {
			t.Fatalf("decoded %d calls that do not encode: %v", len(calls), err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("decoded calldata is not the encoding of its calls:\n in  %x\n out %x", data, again)
		}
	})
}

// FuzzDecodeExecTransaction: arbitrary calldata never panics, and what
// decodes re-encodes to the same bytes.
func FuzzDecodeExecTransaction(f *testing.F) {
	tx := &SafeTx{To: common.Address{19: 1}, Value: big.NewInt(1e18), Data: []byte{1, 2, 3}, Operation: OpCall, SafeTxGas: big.NewInt(7)}
	good, _ := ExecCalldata(tx, bytes.Repeat([]byte{0xcc}, 130))
	f.Add(good)
	f.Add(good[:len(good)-5])
	noSigs, _ := ExecCalldata(&SafeTx{}, nil)
	f.Add(noSigs)
	f.Fuzz(func(t *testing.T, data []byte) {
		tx, sigs, err := DecodeExecTransaction(data)
		if err != nil {
			return
		}
		again, err := ExecCalldata(tx, sigs)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("decoded calldata is not the encoding of its SafeTx (%v)", err)
		}
		if tx.Operation > OpDelegateCall {
			t.Fatalf("operation %d decoded", tx.Operation)
		}
	})
}
