package ethcold

import (
	"encoding/json"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"kinko/internal/chain/eth/safe"
)

var (
	testSafe = common.HexToAddress("0x1111111111111111111111111111111111111111")
	testHot  = common.HexToAddress("0x2222222222222222222222222222222222222222")
)

// TestTypedDataMatchesGeth hands the request's typed data, as JSON, to
// go-ethereum's own EIP-712 implementation (what geth's
// eth_signTypedData_v4 signs): its hash must be the one safe.SafeTx.Hash
// computes, for a transfer and for a SafeTx with every field set.
func TestTypedDataMatchesGeth(t *testing.T) {
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	for _, tx := range []*safe.SafeTx{
		safe.Transfer(testHot, big.NewInt(5e18), big.NewInt(7)),
		{To: testHot, Value: max, Data: []byte{1, 2, 3, 4, 5}, Operation: safe.OpDelegateCall, SafeTxGas: big.NewInt(1),
			BaseGas: big.NewInt(2), GasPrice: big.NewInt(3), GasToken: testSafe, RefundReceiver: testHot, Nonce: max},
	} {
		r, err := NewRequest("r-1", Refill, big.NewInt(1337), testSafe, tx)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(r.TypedData)
		var td apitypes.TypedData
		if err := json.Unmarshal(b, &td); err != nil {
			t.Fatal(err)
		}
		h, _, err := apitypes.TypedDataAndHash(td)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := tx.Hash(big.NewInt(1337), testSafe)
		if common.BytesToHash(h) != want || r.SafeTxHash != want.Hex() {
			t.Fatalf("geth hashes the typed data to %x; safe.Hash %s, the request says %s", h, want, r.SafeTxHash)
		}
		got, err := r.Resolve()
		if err != nil || got.Hash != want || got.Safe != testSafe || got.ChainID.Int64() != 1337 {
			t.Fatalf("Resolve = %+v, %v", got, err)
		}
	}
}

// TestTypedDataStrict: every malformed field is refused with
// ErrTypedData, and a hash in the file other than the computed one with
// ErrHashMismatch.
func TestTypedDataStrict(t *testing.T) {
	base, _ := NewRequest("r-1", Refill, big.NewInt(1337), testSafe, safe.Transfer(testHot, big.NewInt(5e18), big.NewInt(0)))
	for name, edit := range map[string]func(r *Request){
		"primary type": func(r *Request) { r.TypedData.PrimaryType = "SafeMessage" },
		"extra type":   func(r *Request) { r.TypedData.Types["Mail"] = []Field{{"x", "uint256"}} },
		"field type":   func(r *Request) { r.TypedData.Types["SafeTx"][3].Type = "uint256" },
		"field order":  func(r *Request) { f := r.TypedData.Types["SafeTx"]; f[0], f[1] = f[1], f[0] },
		"domain name": func(r *Request) {
			r.TypedData.Types["EIP712Domain"] = append(r.TypedData.Types["EIP712Domain"], Field{"name", "string"})
		},
		"chain id 0":      func(r *Request) { r.TypedData.Domain.ChainID = "0" },
		"chain id hex":    func(r *Request) { r.TypedData.Domain.ChainID = "0x539" },
		"value sign":      func(r *Request) { r.TypedData.Message.Value = "-1" },
		"value zeros":     func(r *Request) { r.TypedData.Message.Value = "05" },
		"value hex":       func(r *Request) { r.TypedData.Message.Value = "0x10" },
		"value 2^256":     func(r *Request) { r.TypedData.Message.Value = new(big.Int).Lsh(big.NewInt(1), 256).String() },
		"nonce empty":     func(r *Request) { r.TypedData.Message.Nonce = "" },
		"to short":        func(r *Request) { r.TypedData.Message.To = "0x1234" },
		"to checksum":     func(r *Request) { r.TypedData.Message.To = strings.Replace(testHot.Hex(), "0x", "0X", 1) },
		"data odd":        func(r *Request) { r.TypedData.Message.Data = "0x123" },
		"data no 0x":      func(r *Request) { r.TypedData.Message.Data = "12" },
		"operation 2":     func(r *Request) { r.TypedData.Message.Operation = "2" },
		"operation float": func(r *Request) { r.TypedData.Message.Operation = "0.0" },
	} {
		r := *base
		r.TypedData.Types = map[string][]Field{}
		for k, v := range base.TypedData.Types {
			r.TypedData.Types[k] = append([]Field(nil), v...)
		}
		edit(&r)
		if _, err := r.Resolve(); !errors.Is(err, ErrTypedData) {
			t.Errorf("%s: Resolve = %v, want ErrTypedData", name, err)
		}
	}
	r := *base
	r.SafeTxHash = common.Hash{1}.Hex()
	if _, err := r.Resolve(); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("another hash: %v", err)
	}
	r = *base
	r.Purpose = "withdrawal"
	if _, err := r.Resolve(); err == nil {
		t.Fatal("an unknown purpose was read")
	}
	// A mixed-case address with a wrong checksum.
	if _, err := ParseAddress("0xAbCdEf0000000000000000000000000000000000"); err == nil {
		t.Fatal("a wrong EIP-55 checksum was read")
	}
}

func TestEther(t *testing.T) {
	for s, want := range map[string]string{"5": "5000000000000000000", "0.25": "250000000000000000", "1.000000000000000001": "1000000000000000001", "0": "0"} {
		got, err := ParseEther(s)
		if err != nil || got.String() != want {
			t.Errorf("ParseEther(%q) = %v, %v; want %s", s, got, err, want)
		}
		if back, _ := ParseEther(strings.TrimSuffix(FormatEther(got), " ETH")); back.Cmp(got) != 0 {
			t.Errorf("FormatEther(%s) = %s does not read back", got, FormatEther(got))
		}
	}
	for _, s := range []string{"", "1.", ".5", "1.0000000000000000001", "-1", "1e18", "01", "1,5", " 1"} {
		if _, err := ParseEther(s); err == nil {
			t.Errorf("ParseEther(%q) read", s)
		}
	}
	if got := FormatEther(big.NewInt(1)); got != "0.000000000000000001 ETH" {
		t.Fatal(got)
	}
}

// TestRegistryNonces: the same SafeTx again is signed again, another at a
// nonce signed is never, a nonce below the next is never, a nonce ahead
// only when named, and all this survives saving.
func TestRegistryNonces(t *testing.T) {
	k, _ := crypto.GenerateKey()
	me := crypto.PubkeyToAddress(k.PublicKey)
	owners := []string{me.Hex(), testHot.Hex(), "0x3333333333333333333333333333333333333333"}
	reg := NewRegistry()
	if _, err := reg.Register(Entry{Name: "cold", Kind: "cold-customer", ChainID: 1337, Address: testSafe.Hex(), Owners: owners, Threshold: 2, NextNonce: 3}, me); err != nil {
		t.Fatal(err)
	}
	if added, err := reg.Register(Entry{Name: "cold", Kind: "cold-customer", ChainID: 1337, Address: testSafe.Hex(), Owners: owners, Threshold: 2, NextNonce: 3}, me); added || err != nil {
		t.Fatalf("again = %v, %v", added, err)
	}
	if _, err := reg.Register(Entry{Name: "cold-b", Kind: "cold-customer", ChainID: 1337, Address: testSafe.Hex(), Owners: owners, Threshold: 3}, me); !errors.Is(err, ErrRegister) {
		t.Fatalf("the same Safe with another setup: %v", err)
	}
	e := reg.Lookup(big.NewInt(1337), testSafe)
	h1, h2 := common.Hash{1}, common.Hash{2}
	five := uint64(5)
	for _, c := range []struct {
		nonce  int64
		hash   common.Hash
		expect *uint64
		want   error
	}{{2, h1, nil, ErrNonce}, {4, h1, nil, ErrNonce}, {5, h1, &five, nil}, {4, h1, &five, ErrNonce}, {3, h1, nil, nil}} {
		if err := e.CheckNonce(big.NewInt(c.nonce), c.hash, c.expect); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Fatalf("CheckNonce(%d) = %v, want %v", c.nonce, err, c.want)
		}
	}
	e.RecordSigned(3, h1, "r-1")
	path := filepath.Join(t.TempDir(), "safes")
	if err := reg.Save(path); err != nil {
		t.Fatal(err)
	}
	reg, err := LoadRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	e = reg.Lookup(big.NewInt(1337), testSafe)
	if err := e.CheckNonce(big.NewInt(3), h1, nil); err != nil {
		t.Fatalf("the same SafeTx again: %v", err)
	}
	if err := e.CheckNonce(big.NewInt(3), h2, nil); !errors.Is(err, ErrNonceSigned) {
		t.Fatalf("another SafeTx at a signed nonce: %v", err)
	}
	if err := e.CheckNonce(big.NewInt(4), h2, nil); err != nil {
		t.Fatalf("the next nonce: %v", err)
	}
	if reg.Lookup(big.NewInt(1), testSafe) != nil {
		t.Fatal("found on another chain")
	}
}
