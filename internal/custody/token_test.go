package custody

import (
	"bytes"
	"encoding/json"
	"testing"

	"kinko/internal/ethwallet"
	"kinko/internal/ledger"
)

// FuzzCheckToken: whatever binding is offered, one that passes names a
// chain, a nonzero contract in its one EIP-55 spelling and a chain asset
// without wallets; registering it changes nothing else, a second one like
// it is refused, and the state encodes and decodes to the same bytes.
func FuzzCheckToken(f *testing.F) {
	f.Add(uint32(7), uint64(1337), "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
	f.Add(uint32(7), uint64(0), "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
	f.Add(uint32(7), uint64(1), "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")
	f.Add(uint32(8), uint64(1), "0x0000000000000000000000000000000000000000")
	f.Add(uint32(9), uint64(1), "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359")
	f.Fuzz(func(t *testing.T, asset uint32, chain uint64, contract string) {
		l := ledger.New()
		l.CreateAssets([]ledger.Asset{{ID: 7, Code: "TT", Decimals: 18, Class: ledger.ClassChain}, {ID: 8, Code: "YEN", Class: ledger.ClassFiat}}, nil)
		s := New()
		tok := Token{Asset: ledger.AssetID(asset), ChainID: chain, Contract: contract}
		before, _ := s.MarshalJSON()
		if err := s.RegisterToken(l, tok); err != nil {
			if after, _ := s.MarshalJSON(); !bytes.Equal(before, after) {
				t.Fatalf("refused %+v (%v) and changed the state", tok, err)
			}
			return
		}
		a, err := ethwallet.ParseAddress(contract)
		if err != nil || a.String() != contract || a == (ethwallet.Address{}) || chain == 0 || asset != 7 {
			t.Fatalf("registered %+v", tok)
		}
		if err := s.RegisterToken(l, tok); err == nil {
			t.Fatalf("registered %+v twice", tok)
		}
		enc, _ := s.MarshalJSON()
		back, err := Decode(enc)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := back.MarshalJSON()
		var v struct{ Tokens []Token }
		if !bytes.Equal(enc, again) || json.Unmarshal(enc, &v) != nil || len(v.Tokens) != 1 || v.Tokens[0] != tok {
			t.Fatalf("encoding %s, decoded %s", enc, again)
		}
	})
}
