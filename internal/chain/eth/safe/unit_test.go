package safe

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
)

// TestTypeHashes checks the typehashes computed from the type strings
// against the constants in Safe.sol 1.4.1.
func TestTypeHashes(t *testing.T) {
	if want := common.HexToHash("0x47e79534a245952e8b16893a336b85a3d9ea9fa8c573f3d803afb92a79469218"); domainTypeHash != want {
		t.Errorf("domain typehash = %s; want %s", domainTypeHash, want)
	}
	if want := common.HexToHash("0xbb8310d486368db6bd6f849402fdd73ad53d316b5a4b2644ad6efe0f941286d8"); safeTxTypeHash != want {
		t.Errorf("SafeTx typehash = %s; want %s", safeTxTypeHash, want)
	}
}

// TestInterfaceMatchesArtifacts checks every method and event kinko
// calls against the ABI the installed artifacts publish.
func TestInterfaceMatchesArtifacts(t *testing.T) {
	a := artifacts(t)
	for name, m := range iface.Methods {
		found := false
		for _, c := range []*Contract{a.Safe, a.SafeL2, a.ProxyFactory, a.MultiSendCallOnly} {
			if cm, ok := c.ABI.Methods[name]; ok {
				found = true
				if cm.Sig != m.Sig || !bytes.Equal(cm.ID, m.ID) {
					t.Errorf("%s: %s in %s; ours %s", name, cm.Sig, c.Name, m.Sig)
				}
			}
		}
		if !found {
			t.Errorf("method %s is in no artifact", name)
		}
	}
	for name, e := range iface.Events {
		found := false
		for _, c := range []*Contract{a.Safe, a.SafeL2, a.ProxyFactory} {
			if ce, ok := c.ABI.Events[name]; ok {
				found = true
				if ce.ID != e.ID || ce.Sig != e.Sig {
					t.Errorf("event %s: %s in %s; ours %s", name, ce.Sig, c.Name, e.Sig)
				}
				for i := range ce.Inputs {
					if ce.Inputs[i].Indexed != e.Inputs[i].Indexed {
						t.Errorf("event %s input %d indexed = %v in %s", name, i, ce.Inputs[i].Indexed, c.Name)
					}
				}
			}
		}
		if !found {
			t.Errorf("event %s is in no artifact", name)
		}
	}
}

// TestLoadRefuses changes one byte of an installed artifact's creation
// code and points the loader at an empty directory.
func TestLoadRefuses(t *testing.T) {
	src, err := ArtifactsDir()
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	for _, art := range []artifact{artSafe, artSafeL2, artFactory, artProxy, artMultiSend, artFallbackHand} {
		b, err := os.ReadFile(filepath.Join(src, art.path))
		if err != nil {
			t.Fatal(err)
		}
		if art == artMultiSend {
			// The last byte of the creation code's hex, changed.
			i := bytes.Index(b, []byte(`"bytecode": "0x`))
			if i < 0 {
				t.Fatal("no bytecode field")
			}
			end := i + bytes.IndexByte(b[i+len(`"bytecode": "0x`):], '"') + len(`"bytecode": "0x`) - 1
			if b[end] == '0' {
				b[end] = '1'
			} else {
				b[end] = '0'
			}
		}
		p := filepath.Join(dst, art.path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Load(dst); !errors.Is(err, ErrArtifactChanged) || !strings.Contains(err.Error(), "MultiSendCallOnly") {
		t.Errorf("Load of a changed MultiSendCallOnly = %v; want ErrArtifactChanged naming it", err)
	}
	if _, err := Load(t.TempDir()); !errors.Is(err, ErrNoArtifacts) {
		t.Errorf("Load of an empty directory = %v; want ErrNoArtifacts", err)
	}
	t.Setenv("KINKO_SAFE_CONTRACTS", t.TempDir())
	_, err = LoadInstalled()
	if !errors.Is(err, ErrNoArtifacts) || !strings.Contains(err.Error(), "scripts/install-test-deps.sh") {
		t.Errorf("LoadInstalled without artifacts = %v; want ErrNoArtifacts naming the script", err)
	}
}

// testDeployment is a deployment at fixed addresses, for computations
// that need no chain.
func testDeployment(t testing.TB) *Deployment {
	return NewDeployment(artifacts(t), L2, big.NewInt(1), Addresses{
		Singleton:         common.HexToAddress("0x29fcB43b46531BcA003ddC8FCB67FFE91900C762"),
		ProxyFactory:      common.HexToAddress("0x4e1DCf7AD4e460CfD30791CCC4F9c8a4f820ec67"),
		MultiSendCallOnly: common.HexToAddress("0x9641d764fc13c8B624c04430C7356C1C7C8102e2"),
		FallbackHandler:   common.HexToAddress("0xfd0732Dc9E303f09fCEf3a7388Ad10A83459Ec99"),
	})
}

// TestPredictor checks the counterfactual address against go-ethereum's
// CREATE2 with the salt built as the factory builds it.
func TestPredictor(t *testing.T) {
	d := testDeployment(t)
	init, err := d.Initializer(Config{Owners: []common.Address{{1: 1}, {1: 2}, {1: 3}}, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	p := d.Predictor(init)
	initCode := append(slices.Clone(d.art.Proxy.Bytecode), common.LeftPadBytes(d.Singleton[:], 32)...)
	for _, n := range []uint64{0, 1, 255, 1 << 40, ^uint64(0)} {
		nonce := new(big.Int).SetUint64(n)
		salt := crypto.Keccak256Hash(crypto.Keccak256(init), common.LeftPadBytes(nonce.Bytes(), 32))
		want := crypto.CreateAddress2(d.ProxyFactory, salt, crypto.Keccak256(initCode))
		got, err := p.Address(nonce)
		if err != nil || got != want {
			t.Errorf("Address(%d) = %s, %v; want %s", n, got, err, want)
		}
		if got := p.AddressIndex(n); got != want {
			t.Errorf("AddressIndex(%d) = %s; want %s", n, got, want)
		}
	}
	if _, err := p.Address(new(big.Int).Lsh(big.NewInt(1), 256)); !errors.Is(err, ErrField) {
		t.Errorf("Address(2^256) = %v; want ErrField", err)
	}
	if _, err := p.Address(big.NewInt(-1)); !errors.Is(err, ErrField) {
		t.Errorf("Address(-1) = %v; want ErrField", err)
	}
}

func TestConfigValidate(t *testing.T) {
	a, b, c := common.Address{19: 0xa}, common.Address{19: 0xb}, common.Address{19: 0xc}
	for _, tc := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{[]common.Address{a, b, c}, 2}, true},
		{Config{[]common.Address{a}, 1}, true},
		{Config{[]common.Address{a, b, c}, 0}, false},
		{Config{[]common.Address{a, b, c}, 4}, false},
		{Config{[]common.Address{a, a, c}, 2}, false},
		{Config{[]common.Address{a, {}, c}, 2}, false},
		{Config{[]common.Address{a, SentinelOwners, c}, 2}, false},
		{Config{nil, 1}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%v) = %v; want ok %v", tc.cfg, err, tc.ok)
		}
	}
}

// TestSignatureChecks: the encodings the Safe accepts but kinko does
// not, and the ones neither accepts.
func TestSignatureChecks(t *testing.T) {
	var keys []*ecdsa.PrivateKey
	var owners []common.Address
	for range 3 {
		k, _ := crypto.GenerateKey()
		keys = append(keys, k)
		owners = append(owners, crypto.PubkeyToAddress(k.PublicKey))
	}
	tx := &SafeTx{To: common.Address{19: 1}, Value: big.NewInt(5), Nonce: big.NewInt(3)}
	h, _ := tx.Hash(big.NewInt(1), common.Address{19: 9})
	s0, _ := Sign(h, keys[0])
	s1, _ := Sign(h, keys[1])
	good, err := EncodeSignatures(h, []Signature{s1, s0})
	if err != nil {
		t.Fatal(err)
	}
	signers, err := VerifySignatures(h, good, owners, 2)
	if err != nil || len(signers) != 2 || bytes.Compare(signers[0][:], signers[1][:]) >= 0 {
		t.Fatalf("VerifySignatures = %v, %v; want two signers, ascending", signers, err)
	}

	// The same signature with s mirrored (n - s) and v flipped recovers
	// to the same owner: ecrecover, and so the Safe, accept it.
	hi := slices.Clone(good)
	s := new(big.Int).SetBytes(hi[32:64])
	new(big.Int).Sub(secp256k1N, s).FillBytes(hi[32:64])
	hi[64] = 27 + 28 - hi[64] // 27 <-> 28
	pub, err := crypto.Ecrecover(h[:], append(slices.Clone(hi[:64]), hi[64]-27))
	if err != nil || common.BytesToAddress(crypto.Keccak256(pub[1:])[12:]) != signers[0] {
		t.Fatalf("the mirrored signature does not recover to the signer (%v): the test is wrong", err)
	}

	mut := func(f func([]byte) []byte) []byte { return f(slices.Clone(good)) }
	for _, tc := range []struct {
		name string
		sigs []byte
		want error
	}{
		{"HighS", hi, ErrHighS},
		{"ApprovedHash", mut(func(b []byte) []byte { b[64] = 1; return b }), ErrSignatureKind},
		{"ContractSignature", mut(func(b []byte) []byte { b[64] = 0; return b }), ErrSignatureKind},
		{"EthSign", mut(func(b []byte) []byte { b[64] += 4; return b }), ErrSignatureKind},
		{"Trailing", append(slices.Clone(good), 0), ErrExtraSignatures},
		{"Short", good[:2*SignatureLen-1], ErrTooFewSignatures},
		{"Reversed", append(slices.Clone(good[SignatureLen:]), good[:SignatureLen]...), ErrUnsorted},
		{"OtherHash", func() []byte {
			h2 := h
			h2[0] ^= 1
			a, _ := Sign(h2, keys[0])
			b, _ := Sign(h2, keys[1])
			x, _ := EncodeSignatures(h2, []Signature{a, b})
			return x
		}(), ErrNotOwner},
	} {
		if _, err := VerifySignatures(h, tc.sigs, owners, 2); !errors.Is(err, tc.want) {
			t.Errorf("%s: VerifySignatures = %v; want %v", tc.name, err, tc.want)
		}
	}
	// Owner 0's signature, checked against a Safe of owners 1 and 2 only.
	only0, _ := EncodeSignatures(h, []Signature{s0})
	if _, err := VerifySignatures(h, only0, owners[1:], 1); !errors.Is(err, ErrNotOwner) {
		t.Errorf("a stranger's signature: %v; want ErrNotOwner", err)
	}
	// EncodeSignatures refuses a signature labelled with another owner,
	// and one owner twice.
	lie := s0
	lie.Owner = owners[2]
	if _, err := EncodeSignatures(h, []Signature{lie, s1}); !errors.Is(err, ErrNotOwner) {
		t.Errorf("EncodeSignatures of a mislabelled signature = %v; want ErrNotOwner", err)
	}
	if _, err := EncodeSignatures(h, []Signature{s0, s0}); !errors.Is(err, ErrUnsorted) {
		t.Errorf("EncodeSignatures of one owner twice = %v; want ErrUnsorted", err)
	}
}

// TestCalls: what a SafeTx does, and the DELEGATECALLs refused.
func TestCalls(t *testing.T) {
	ms := common.Address{19: 0x55}
	to := common.Address{19: 0x77}
	calls := []Call{{To: to, Value: big.NewInt(7), Data: []byte{}}, {To: common.Address{19: 0x78}, Value: big.NewInt(0), Data: []byte{0xa9, 0x05, 0x9c, 0xbb}}}
	batch, err := EncodeMultiSend(calls)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Calls(&SafeTx{To: ms, Data: batch, Operation: OpDelegateCall}, ms)
	if err != nil || len(got) != 2 || got[0].To != to || got[0].Value.Int64() != 7 || !bytes.Equal(got[1].Data, calls[1].Data) {
		t.Fatalf("Calls(batch) = %v, %v", got, err)
	}
	if got, err := Calls(&SafeTx{To: to, Value: big.NewInt(9)}, ms); err != nil || len(got) != 1 || got[0].Value.Int64() != 9 {
		t.Fatalf("Calls(call) = %v, %v", got, err)
	}

	// A packed entry with operation 1 (a delegatecall inside the batch),
	// built by hand as an attacker would.
	packed := make([]byte, batchHeader)
	packed[0] = 1
	copy(packed[1:21], to[:])
	inner, _ := iface.Pack("multiSend", packed)
	// Dirty padding after the packed bytes: the same call written another way.
	dirty := slices.Clone(batch)
	dirty[len(dirty)-1] = 1
	// A batch whose entries do not tile it: 40 stray bytes at the end.
	stray, _ := iface.Pack("multiSend", append(slices.Clone(mustUnpack(t, batch)), make([]byte, 40)...))
	for _, tc := range []struct {
		name string
		tx   *SafeTx
		want error
	}{
		{"DelegateCallElsewhere", &SafeTx{To: to, Data: batch, Operation: OpDelegateCall}, ErrDelegateCall},
		{"NoPinnedMultiSend", &SafeTx{To: common.Address{}, Data: batch, Operation: OpDelegateCall}, ErrDelegateCall},
		{"ValueWithBatch", &SafeTx{To: ms, Value: big.NewInt(1), Data: batch, Operation: OpDelegateCall}, ErrDelegateCall},
		{"DelegateCallInBatch", &SafeTx{To: ms, Data: inner, Operation: OpDelegateCall}, ErrDelegateCall},
		{"DirtyPadding", &SafeTx{To: ms, Data: dirty, Operation: OpDelegateCall}, ErrNonCanonical},
		{"StrayBytes", &SafeTx{To: ms, Data: stray, Operation: OpDelegateCall}, ErrBatch},
		{"NotMultiSend", &SafeTx{To: ms, Data: []byte{1, 2, 3, 4}, Operation: OpDelegateCall}, ErrNotMultiSend},
		{"Operation2", &SafeTx{To: ms, Data: batch, Operation: 2}, ErrField},
		{"RefundGasPrice", &SafeTx{To: to, Value: big.NewInt(1), GasPrice: big.NewInt(1)}, ErrRefund},
		{"RefundReceiver", &SafeTx{To: to, Value: big.NewInt(1), RefundReceiver: to}, ErrRefund},
		{"RefundBaseGas", &SafeTx{To: ms, Data: batch, Operation: OpDelegateCall, BaseGas: big.NewInt(21000)}, ErrRefund},
		{"RefundToken", &SafeTx{To: to, GasToken: ms}, ErrRefund},
	} {
		if _, err := Calls(tc.tx, ms); !errors.Is(err, tc.want) {
			t.Errorf("%s: Calls = %v; want %v", tc.name, err, tc.want)
		}
	}
	if _, err := EncodeMultiSend(nil); !errors.Is(err, ErrBatch) {
		t.Errorf("EncodeMultiSend(nil) = %v; want ErrBatch", err)
	}
}

func mustUnpack(t *testing.T, calldata []byte) []byte {
	v, err := iface.Methods["multiSend"].Inputs.Unpack(calldata[4:])
	if err != nil {
		t.Fatal(err)
	}
	return v[0].([]byte)
}

// TestExecCalldata reads execTransaction calldata back, and refuses the
// same call encoded another way.
func TestExecCalldata(t *testing.T) {
	tx := &SafeTx{To: common.Address{19: 1}, Value: big.NewInt(1e18), Data: []byte{1, 2, 3}, Operation: OpDelegateCall,
		SafeTxGas: big.NewInt(1), BaseGas: big.NewInt(2), GasPrice: big.NewInt(3), GasToken: common.Address{19: 4}, RefundReceiver: common.Address{19: 5}}
	sigs := bytes.Repeat([]byte{0xcc}, 130)
	cd, err := ExecCalldata(tx, sigs)
	if err != nil {
		t.Fatal(err)
	}
	back, bsigs, err := DecodeExecTransaction(cd)
	if err != nil {
		t.Fatal(err)
	}
	h1, _ := tx.StructHash()
	h2, _ := back.StructHash()
	if h1 != h2 || !bytes.Equal(bsigs, sigs) {
		t.Fatalf("decoded %+v; want %+v", back, tx)
	}
	// The data's offset word moved past one extra zero word: the ABI
	// decoder would read the same call; kinko refuses it.
	moved := slices.Clone(cd)
	off := new(big.Int).SetBytes(moved[4+2*32 : 4+3*32])
	off.Add(off, big.NewInt(32)).FillBytes(moved[4+2*32 : 4+3*32])
	moved = append(moved, make([]byte, 32)...)
	if _, _, err := DecodeExecTransaction(moved); err == nil {
		t.Error("DecodeExecTransaction accepted a non-canonical encoding")
	}
	if _, _, err := DecodeExecTransaction(append(slices.Clone(cd), 0)); !errors.Is(err, ErrNonCanonical) {
		t.Errorf("trailing byte: %v; want ErrNonCanonical", err)
	}
	if _, _, err := DecodeExecTransaction(hexutil.MustDecode("0x12345678")); !errors.Is(err, ErrNotExecTransaction) {
		t.Errorf("other selector: %v; want ErrNotExecTransaction", err)
	}
	if _, err := ExecCalldata(&SafeTx{Value: big.NewInt(-1)}, nil); !errors.Is(err, ErrField) {
		t.Errorf("negative value: %v; want ErrField", err)
	}
}

// TestProxyCreationCode checks the SafeProxy creation code pinned in
// the package against the keccak the artifacts are checked with, and the
// addresses ProxyArtifacts derives against the installed artifacts'.
func TestProxyCreationCode(t *testing.T) {
	if got := crypto.Keccak256Hash(ProxyArtifacts().Proxy.Bytecode); got != common.HexToHash(artProxy.codeHash) {
		t.Fatalf("keccak(pinned SafeProxy code) = %s; want %s", got, artProxy.codeHash)
	}
	art, err := LoadInstalled()
	if err != nil {
		t.Skip(err)
	}
	a := Addresses{Singleton: common.HexToAddress("0x29fcB43b46531BcA003ddC8FCB67FFE91900C762"), ProxyFactory: common.HexToAddress("0x4e1DCf7AD4e460CfD30791CCC4F9c8a4f820ec67"),
		FallbackHandler: common.HexToAddress("0xfd0732Dc9E303f09fCEf3a7388Ad10A83459Ec99")}
	cfg := Config{Owners: []common.Address{common.HexToAddress("0x1000000000000000000000000000000000000001"), common.HexToAddress("0x2000000000000000000000000000000000000002")}, Threshold: 2}
	full, pinned := NewDeployment(art, L2, big.NewInt(1), a), NewDeployment(ProxyArtifacts(), L2, big.NewInt(1), a)
	i1, err := full.Initializer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	i2, _ := pinned.Initializer(cfg)
	for _, n := range []uint64{0, 1, 7, 1 << 40} {
		if x, y := full.Predictor(i1).AddressIndex(n), pinned.Predictor(i2).AddressIndex(n); x != y {
			t.Fatalf("index %d: %s from the artifacts, %s from the pinned code", n, x, y)
		}
	}
}
