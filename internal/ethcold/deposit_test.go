package ethcold

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/chain/eth/safe"
	"kinko/internal/ethwallet"
	"kinko/internal/ethwallet/book"
)

// depositDescriptor is a cold customer Safe wallet's descriptor on chain
// 1337 with the owners given.
func depositDescriptor(t *testing.T, owners ...common.Address) ethwallet.Descriptor {
	t.Helper()
	d := ethwallet.Descriptor{ChainID: 1337, Threshold: 2,
		Singleton: ethwallet.Address(common.HexToAddress("0x29fcB43b46531BcA003ddC8FCB67FFE91900C762")),
		Factory:   ethwallet.Address(common.HexToAddress("0x4e1DCf7AD4e460CfD30791CCC4F9c8a4f820ec67")),
		Fallback:  ethwallet.Address(common.HexToAddress("0xfd0732Dc9E303f09fCEf3a7388Ad10A83459Ec99"))}
	for _, o := range owners {
		d.Owners = append(d.Owners, ethwallet.Address(o))
	}
	back, err := ethwallet.Parse(d.String())
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// TestDescribeDeposit: a deposit Safe's sweep is described from the
// registry alone: the deposit Safe derived from the registered Safe's
// descriptor, its one CALL into that Safe; refused: an address not
// derived from any registered descriptor (another wallet's, or another
// index), a payment elsewhere, a DELEGATECALL, calldata, a descriptor in
// the request other than the registered one. A registration whose
// descriptor names other owners or another chain is refused.
func TestDescribeDeposit(t *testing.T) {
	owners := []common.Address{common.HexToAddress("0x1000000000000000000000000000000000000001"), common.HexToAddress("0x2000000000000000000000000000000000000002"),
		common.HexToAddress("0x3000000000000000000000000000000000000003")}
	other := []common.Address{owners[0], owners[1], common.HexToAddress("0x4000000000000000000000000000000000000004")}
	d, od := depositDescriptor(t, owners...), depositDescriptor(t, other...)
	ownerHex := []string{owners[0].Hex(), owners[1].Hex(), owners[2].Hex()}
	reg := NewRegistry()
	e := Entry{Name: "cold", Kind: "cold-customer", ChainID: 1337, Address: testSafe.Hex(), Owners: ownerHex, Threshold: 2, Descriptor: d.String()}
	for _, bad := range []struct {
		why  string
		desc string
		kind string
	}{
		{"other owners", od.String(), "cold-customer"},
		{"another chain", strings.Replace(d.String(), "chain=1337", "chain=1", 1), "cold-customer"},
		{"not a descriptor", "safe-1.4.1(x)", "cold-customer"},
		{"a hot Safe", d.String(), "hot-customer"},
	} {
		x := e
		x.Descriptor, x.Kind = bad.desc, bad.kind
		if _, err := reg.Register(x, owners[0]); !errors.Is(err, ErrRegister) {
			t.Fatalf("register with %s = %v", bad.why, err)
		}
	}
	if _, err := reg.Register(e, owners[0]); err != nil {
		t.Fatal(err)
	}
	derive := func(dd ethwallet.Descriptor, i uint32) common.Address {
		a, err := book.Derive(safe.ProxyArtifacts(), dd, i)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	dep3 := derive(d, 3)
	amount := new(big.Int).Add(big.NewInt(7e17), big.NewInt(5))
	ref := &DepositRef{Descriptor: d.String(), Index: 3}
	tx := func(from common.Address, st *safe.SafeTx) *Tx {
		h, err := st.Hash(big.NewInt(1337), from)
		if err != nil {
			t.Fatal(err)
		}
		return &Tx{ChainID: big.NewInt(1337), Safe: from, SafeTx: st, Hash: h}
	}
	good := DescribeDeposit(reg, tx(dep3, safe.Transfer(testSafe, amount, big.NewInt(0))), ref)
	if err := good.Refusal(); err != nil || good.Entry == nil || good.Out.Cmp(amount) != 0 ||
		!strings.Contains(good.Text, "deposit Safe 3 of cold (cold-customer): "+dep3.Hex()+", derived on this machine") ||
		!strings.Contains(good.Text, "[ours: cold (cold-customer)'s own Safe]") {
		t.Fatalf("the sweep = %v\n%s", err, good.Text)
	}
	delegate := safe.Transfer(testSafe, amount, big.NewInt(0))
	delegate.Operation = safe.OpDelegateCall
	withData := safe.Transfer(testSafe, new(big.Int), big.NewInt(0))
	withData.Data = []byte{0xa9, 0x05, 0x9c, 0xbb}
	for _, bad := range []struct {
		why, want string
		tx        *Tx
		ref       *DepositRef
	}{
		{"another wallet's deposit Safe", "is not deposit Safe 3", tx(derive(od, 3), safe.Transfer(testSafe, amount, big.NewInt(0))), &DepositRef{Descriptor: od.String(), Index: 3}},
		{"another index", "is not deposit Safe 4", tx(dep3, safe.Transfer(testSafe, amount, big.NewInt(0))), &DepositRef{Descriptor: d.String(), Index: 4}},
		{"the registered Safe itself", "is not deposit Safe 3", tx(testSafe, safe.Transfer(testHot, amount, big.NewInt(0))), ref},
		{"a payment elsewhere", "not cold (cold-customer)'s own Safe", tx(dep3, safe.Transfer(testHot, amount, big.NewInt(0))), ref},
		{"a DELEGATECALL", "a DELEGATECALL", tx(dep3, delegate), ref},
		{"calldata", "calldata", tx(dep3, withData), ref},
		{"another descriptor in the request", "this machine registered", tx(dep3, safe.Transfer(testSafe, amount, big.NewInt(0))), &DepositRef{Descriptor: od.String(), Index: 3}},
		{"nothing", "pays nothing", tx(dep3, safe.Transfer(testSafe, new(big.Int), big.NewInt(0))), ref},
	} {
		got := DescribeDeposit(reg, bad.tx, bad.ref)
		if err := got.Refusal(); !errors.Is(err, ErrDeposit) || !strings.Contains(err.Error(), bad.want) {
			t.Fatalf("%s = %v", bad.why, err)
		}
	}
	// One SafeTx per deposit Safe and nonce.
	en := reg.Lookup(big.NewInt(1337), testSafe)
	h1 := common.HexToHash("0x01")
	en.RecordDepositSigned(3, 0, h1, "s-1")
	if err := en.CheckDepositNonce(3, big.NewInt(0), h1); err != nil {
		t.Fatalf("the same SafeTx again = %v", err)
	}
	if err := en.CheckDepositNonce(3, big.NewInt(0), common.HexToHash("0x02")); !errors.Is(err, ErrNonceSigned) {
		t.Fatalf("another SafeTx at deposit 3's nonce 0 = %v", err)
	}
	if err := en.CheckDepositNonce(4, big.NewInt(0), common.HexToHash("0x02")); err != nil {
		t.Fatalf("deposit 4's nonce 0 = %v", err)
	}
}

// TestDescribeDepositToken: a deposit Safe's token sweep is signed only
// as one CALL of no value to a token registered with the Safe, its data
// exactly transfer(the Safe, amount); the token needs the descriptor.
func TestDescribeDepositToken(t *testing.T) {
	owners := []common.Address{common.HexToAddress("0x1000000000000000000000000000000000000001"), common.HexToAddress("0x2000000000000000000000000000000000000002"),
		common.HexToAddress("0x3000000000000000000000000000000000000003")}
	d := depositDescriptor(t, owners...)
	tt := common.HexToAddress("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
	other := common.HexToAddress("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359")
	e := Entry{Name: "cold", Kind: "cold-customer", ChainID: 1337, Address: testSafe.Hex(), Threshold: 2,
		Owners: []string{owners[0].Hex(), owners[1].Hex(), owners[2].Hex()}, Tokens: []Token{{Symbol: "TT", Decimals: 6, Contract: tt.Hex()}}}
	reg := NewRegistry()
	if _, err := reg.Register(e, owners[0]); !errors.Is(err, ErrRegister) {
		t.Fatalf("a token without the descriptor = %v", err)
	}
	e.Tokens = append(e.Tokens, Token{Symbol: "TT", Decimals: 6, Contract: other.Hex()})
	e.Descriptor = d.String()
	if _, err := reg.Register(e, owners[0]); !errors.Is(err, ErrRegister) {
		t.Fatalf("a symbol twice = %v", err)
	}
	e.Tokens = e.Tokens[:1]
	if _, err := reg.Register(e, owners[0]); err != nil {
		t.Fatal(err)
	}
	dep, _ := book.Derive(safe.ProxyArtifacts(), d, 2)
	ref := &DepositRef{Descriptor: d.String(), Index: 2}
	transfer := func(to common.Address, amount int64) []byte {
		b := append([]byte{}, transferSelector...)
		b = append(b, common.LeftPadBytes(to.Bytes(), 32)...)
		return append(b, common.LeftPadBytes(big.NewInt(amount).Bytes(), 32)...)
	}
	st := func(contract common.Address, value int64, data []byte) *Tx {
		s := &safe.SafeTx{To: contract, Value: big.NewInt(value), Data: data, SafeTxGas: safe.SafeTxGasFor(1), BaseGas: new(big.Int), GasPrice: new(big.Int), Nonce: new(big.Int)}
		h, _ := s.Hash(big.NewInt(1337), dep)
		return &Tx{ChainID: big.NewInt(1337), Safe: dep, SafeTx: s, Hash: h}
	}
	good := DescribeDeposit(reg, st(tt, 0, transfer(testSafe, 1_500_000)), ref)
	if err := good.Refusal(); err != nil || !strings.Contains(good.Text, "transfer of 1.500000 TT (1500000 base units) of the token TT at "+tt.Hex()+", registered here, to "+testSafe.Hex()+"  [ours: cold (cold-customer)'s own Safe]") {
		t.Fatalf("the token sweep = %v\n%s", err, good.Text)
	}
	long := append(transfer(testSafe, 1), 0)
	dirty := transfer(testSafe, 1)
	dirty[5] = 1 // a high byte in the address word
	for _, bad := range []struct {
		why, want string
		tx        *Tx
	}{
		{"to the attacker", "not cold (cold-customer)'s own Safe", st(tt, 0, transfer(testHot, 1))},
		{"another contract", "not a token registered here", st(other, 0, transfer(testSafe, 1))},
		{"Ether along", "along with the token's transfer", st(tt, 1, transfer(testSafe, 1))},
		{"nothing", "transfers nothing", st(tt, 0, transfer(testSafe, 0))},
		{"a longer encoding", "not one ERC-20 transfer", st(tt, 0, long)},
		{"a dirty address word", "not one ERC-20 transfer", st(tt, 0, dirty)},
		{"approve", "not one ERC-20 transfer", st(tt, 0, append([]byte{0x09, 0x5e, 0xa7, 0xb3}, transfer(testSafe, 1)[4:]...))},
	} {
		got := DescribeDeposit(reg, bad.tx, ref)
		if err := got.Refusal(); !errors.Is(err, ErrDeposit) || !strings.Contains(err.Error(), bad.want) {
			t.Fatalf("%s = %v\n%s", bad.why, err, got.Text)
		}
	}
}
