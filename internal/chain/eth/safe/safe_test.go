package safe

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/devnet"
)

// artifacts loads the installed Safe contracts or fails the test with the
// loader's error, which names the script that installs them.
func artifacts(t testing.TB) *Artifacts {
	t.Helper()
	a, err := LoadInstalled()
	if err != nil {
		t.Fatalf("%v", err)
	}
	return a
}

// ether returns n ether in wei, n/100 precise: ether(125) is 1.25 ETH.
func ether(centi int64) *big.Int {
	return new(big.Int).Mul(big.NewInt(centi), big.NewInt(1e16))
}

func addrOf(k *ecdsa.PrivateKey) common.Address { return crypto.PubkeyToAddress(k.PublicKey) }

// bench is the shared world of the on-chain tests: one node, one
// deployment, a 2-of-3 Safe and a gas account that sends every
// transaction.
type bench struct {
	t      *testing.T
	ctx    context.Context
	node   *devnet.Node
	c      *eth.Client
	art    *Artifacts
	d      *Deployment
	gas    *ecdsa.PrivateKey // pays for every transaction
	owners []*ecdsa.PrivateKey
	cfg    Config
}

func newBench(t *testing.T) *bench {
	art := artifacts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	n := devnet.New(t, devnet.Options{})
	b := &bench{t: t, ctx: ctx, node: n, c: n.Client(), art: art}
	var err error
	if b.gas, err = n.NewKey(ctx, ether(100_00)); err != nil {
		t.Fatal(err)
	}
	if b.d, err = Deploy(ctx, b.c, b.gas, art, L2); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		k, _ := crypto.GenerateKey()
		b.owners = append(b.owners, k)
		b.cfg.Owners = append(b.cfg.Owners, addrOf(k))
	}
	b.cfg.Threshold = 2
	return b
}

func (b *bench) balance(a common.Address) *big.Int {
	b.t.Helper()
	v, err := b.c.Balance(b.ctx, a)
	if err != nil {
		b.t.Fatal(err)
	}
	return v
}

func (b *bench) nonce(safe common.Address) *big.Int {
	b.t.Helper()
	v, err := Nonce(b.ctx, b.c, safe)
	if err != nil {
		b.t.Fatal(err)
	}
	return v
}

// newSafe creates a Safe of d with cfg at salt nonce salt, funded with
// wei before it exists.
func (b *bench) newSafe(d *Deployment, cfg Config, salt int64, wei *big.Int) common.Address {
	b.t.Helper()
	init, err := d.Initializer(cfg)
	if err != nil {
		b.t.Fatal(err)
	}
	want, err := d.Predictor(init).Address(big.NewInt(salt))
	if err != nil {
		b.t.Fatal(err)
	}
	if wei != nil {
		if _, err := b.node.Fund(b.ctx, want, wei); err != nil {
			b.t.Fatal(err)
		}
	}
	got, _, err := d.CreateProxy(b.ctx, b.c, b.gas, init, big.NewInt(salt))
	if err != nil {
		b.t.Fatal(err)
	}
	if got != want {
		b.t.Fatalf("CreateProxy deployed at %s; predicted %s", got, want)
	}
	return got
}

// sign has the owners at idx sign tx for safe and returns the encoded
// signatures.
func (b *bench) sign(safe common.Address, tx *SafeTx, idx ...int) []byte {
	b.t.Helper()
	h, err := tx.Hash(b.d.ChainID, safe)
	if err != nil {
		b.t.Fatal(err)
	}
	var sigs []Signature
	for _, i := range idx {
		s, err := Sign(h, b.owners[i])
		if err != nil {
			b.t.Fatal(err)
		}
		sigs = append(sigs, s)
	}
	enc, err := EncodeSignatures(h, sigs)
	if err != nil {
		b.t.Fatal(err)
	}
	return enc
}

// TestOnDevnet runs the Safe contracts on a real geth --dev node: the
// deployment, a counterfactual 2-of-3 Safe funded before it exists, the
// transaction hash against the contract's, a transfer signed by two of
// three owners, the attacks that must fail, and batching's gas.
func TestOnDevnet(t *testing.T) {
	b := newBench(t)
	ctx, c, d := b.ctx, b.c, b.d

	t.Run("Deploy", func(t *testing.T) {
		code, err := call(ctx, c, d.ProxyFactory, "proxyCreationCode")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(code[0].([]byte), b.art.Proxy.Bytecode) {
			t.Fatal("the factory's proxyCreationCode is not SafeProxy's creation code from the artifacts")
		}
		v, err := call(ctx, c, d.Singleton, "VERSION")
		if err != nil || v[0].(string) != Version {
			t.Fatalf("VERSION = %v, %v; want %s", v, err, Version)
		}
		// A deployment told to trust another contract's address is refused.
		wrong := NewDeployment(b.art, L2, d.ChainID, Addresses{
			Singleton: d.Singleton, ProxyFactory: d.ProxyFactory,
			MultiSendCallOnly: d.FallbackHandler, FallbackHandler: d.FallbackHandler,
		})
		if err := wrong.Verify(ctx, c); !errors.Is(err, ErrWrongCode) {
			t.Fatalf("Verify with the handler as MultiSend = %v; want ErrWrongCode", err)
		}
		if err := NewDeployment(b.art, L1, d.ChainID, d.Addresses).Verify(ctx, c); !errors.Is(err, ErrWrongCode) {
			t.Fatalf("Verify of SafeL2's code as Safe = %v; want ErrWrongCode", err)
		}
	})

	var safe common.Address
	t.Run("Counterfactual", func(t *testing.T) {
		init, err := d.Initializer(b.cfg)
		if err != nil {
			t.Fatal(err)
		}
		p := d.Predictor(init)
		want, _ := p.Address(big.NewInt(7))
		if other, _ := p.Address(big.NewInt(8)); other == want {
			t.Fatal("two salt nonces predict one address")
		}
		// Ether sent before the Safe exists: a deposit to an address
		// with no code yet.
		deposit := ether(3_00)
		if _, err := b.node.Fund(ctx, want, deposit); err != nil {
			t.Fatal(err)
		}
		if code, _ := c.Code(ctx, want); len(code) != 0 {
			t.Fatalf("code at %s before the proxy is deployed", want)
		}
		// Someone else's Safe (their own owners) with the same salt nonce
		// lands elsewhere: whoever deploys first cannot take ours.
		thief := slices.Clone(b.cfg.Owners)
		thief[0] = common.HexToAddress("0x00000000000000000000000000000000000000ee")
		tinit, _ := d.Initializer(Config{Owners: thief, Threshold: 1})
		taddr, _, err := d.CreateProxy(ctx, c, b.gas, tinit, big.NewInt(7))
		if err != nil {
			t.Fatal(err)
		}
		if taddr == want {
			t.Fatal("a Safe with other owners took the predicted address")
		}
		got, r, err := d.CreateProxy(ctx, c, b.gas, init, big.NewInt(7))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("deployed at %s; predicted %s", got, want)
		}
		t.Logf("a 2-of-3 Safe proxy deployed on an address holding a deposit: %d gas", r.GasUsed)
		if bal := b.balance(got); bal.Cmp(deposit) != 0 {
			t.Fatalf("the Safe holds %s wei; want the %s sent before it existed", bal, deposit)
		}
		onChain, err := Owners(ctx, c, got)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(onChain.Owners, b.cfg.Owners) || onChain.Threshold != 2 {
			t.Fatalf("owners = %v %d-of; want %v 2-of", onChain.Owners, onChain.Threshold, b.cfg.Owners)
		}
		// The same Safe twice: CREATE2 cannot deploy on an address in use.
		if _, _, err := d.CreateProxy(ctx, c, b.gas, init, big.NewInt(7)); err == nil {
			t.Fatal("a second proxy at the same address was created")
		}
		safe = got
	})
	if safe == (common.Address{}) {
		t.FailNow()
	}

	t.Run("HashMatchesContract", func(t *testing.T) {
		ds, _ := DomainSeparator(d.ChainID, safe)
		v, err := call(ctx, c, safe, "domainSeparator")
		if err != nil || common.Hash(v[0].([32]byte)) != ds {
			t.Fatalf("domainSeparator = %v, %v; want %s", v, err, ds)
		}
		big1, _ := new(big.Int).SetString("115792089237316195423570985008687907853269984665640564039457584007913129639935", 10) // 2^256-1
		for i, tx := range []*SafeTx{
			{To: addrOf(b.owners[0]), Value: ether(1), Nonce: big.NewInt(0)},
			{},
			{To: d.MultiSendCallOnly, Data: []byte{1, 2, 3}, Operation: OpDelegateCall, SafeTxGas: big.NewInt(100_000),
				BaseGas: big.NewInt(21_000), GasPrice: big.NewInt(1e9), GasToken: d.FallbackHandler,
				RefundReceiver: addrOf(b.owners[1]), Nonce: big.NewInt(41)},
			{To: safe, Value: big1, Data: bytes.Repeat([]byte{0xab}, 1000), SafeTxGas: big1, BaseGas: big1, GasPrice: big1, Nonce: big1},
		} {
			ours, err := tx.Hash(d.ChainID, safe)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := ContractHash(ctx, c, safe, tx)
			if err != nil {
				t.Fatal(err)
			}
			if ours != theirs {
				t.Errorf("tx %d: Hash = %s; getTransactionHash = %s", i, ours, theirs)
			}
		}
	})

	recipient := common.HexToAddress("0x0000000000000000000000000000000000c0ffee")
	t.Run("Transfer2of3", func(t *testing.T) {
		value := ether(1_25)
		tx := Transfer(recipient, value, b.nonce(safe))
		sigs := b.sign(safe, tx, 2, 0) // any order in: EncodeSignatures sorts
		h, _ := tx.Hash(d.ChainID, safe)
		signers, err := VerifySignatures(h, sigs, b.cfg.Owners, b.cfg.Threshold)
		if err != nil {
			t.Fatal(err)
		}
		if len(signers) != 2 {
			t.Fatalf("signers = %v", signers)
		}
		safeBefore, gasBefore, rcptBefore := b.balance(safe), b.balance(addrOf(b.gas)), b.balance(recipient)
		r, err := d.Exec(ctx, c, b.gas, safe, tx, sigs, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := b.balance(recipient), new(big.Int).Add(rcptBefore, value); got.Cmp(want) != 0 {
			t.Errorf("recipient = %s wei; want %s", got, want)
		}
		if got, want := b.balance(safe), new(big.Int).Sub(safeBefore, value); got.Cmp(want) != 0 {
			t.Errorf("Safe = %s wei; want %s", got, want)
		}
		if got, want := b.balance(addrOf(b.gas)), new(big.Int).Sub(gasBefore, eth.Fee(r)); got.Cmp(want) != 0 {
			t.Errorf("gas account = %s wei; want %s (before %s, fee %s)", got, want, gasBefore, eth.Fee(r))
		}
		if n := b.nonce(safe); n.Cmp(new(big.Int).Add(tx.Nonce, big.NewInt(1))) != 0 {
			t.Errorf("nonce = %s after one execution from %s", n, tx.Nonce)
		}
		t.Logf("2-of-3 transfer to an empty account: %d gas", r.GasUsed)

		// The same transaction again, signatures and all: the Safe's
		// nonce moved on, so the hash it checks is another.
		t.Run("Replay", func(t *testing.T) {
			b.attack(t, safe, tx, sigs, recipient, ErrNotOwner, "GS026")
		})
	})

	t.Run("Attacks", func(t *testing.T) {
		thief := common.HexToAddress("0x00000000000000000000000000000000000bad00")
		n := b.nonce(safe)
		honest := &SafeTx{To: recipient, Value: ether(1), Nonce: n}
		for _, a := range []struct {
			name    string
			signed  *SafeTx // what the owners signed
			sent    *SafeTx // what is submitted with their signatures
			signers []int
			sigs    func([]byte) []byte
			ours    error
			code    string
		}{
			{"OneSignature", honest, honest, []int{1}, nil, ErrTooFewSignatures, "GS020"},
			{"OtherValue", &SafeTx{To: thief, Value: big.NewInt(1), Nonce: n}, &SafeTx{To: thief, Value: ether(2_00), Nonce: n}, []int{0, 1}, nil, ErrNotOwner, "GS026"},
			{"OtherTo", &SafeTx{To: recipient, Value: ether(1), Nonce: n}, &SafeTx{To: thief, Value: ether(1), Nonce: n}, []int{0, 1}, nil, ErrNotOwner, "GS026"},
			{"OtherNonce", &SafeTx{To: thief, Value: ether(1), Nonce: new(big.Int).Add(n, big.NewInt(5))}, &SafeTx{To: thief, Value: ether(1), Nonce: n}, []int{0, 1}, nil, ErrNotOwner, "GS026"},
			{"Unsorted", &SafeTx{To: thief, Value: ether(1), Nonce: n}, &SafeTx{To: thief, Value: ether(1), Nonce: n}, []int{0, 1}, func(s []byte) []byte {
				return append(slices.Clone(s[SignatureLen:]), s[:SignatureLen]...)
			}, ErrUnsorted, "GS026"},
			{"OneOwnerTwice", &SafeTx{To: thief, Value: ether(1), Nonce: n}, &SafeTx{To: thief, Value: ether(1), Nonce: n}, []int{0}, func(s []byte) []byte {
				return append(slices.Clone(s), s...)
			}, ErrUnsorted, "GS026"},
		} {
			t.Run(a.name, func(t *testing.T) {
				sigs := b.sign(safe, a.signed, a.signers...)
				if a.sigs != nil {
					sigs = a.sigs(sigs)
				}
				to := a.sent.To
				b.attack(t, safe, a.sent, sigs, to, a.ours, a.code)
			})
		}
	})

	// What Calls refuses, and why: owners who sign a DELEGATECALL they
	// did not build (Bybit 2025: the interface showed a plain call) hand
	// the Safe to its target's code. Here it is 34 bytes that send the
	// Safe's whole balance to a thief, with value 0 and no data in the
	// SafeTx the owners sign.
	t.Run("SignedDelegateCallDrains", func(t *testing.T) {
		thief := common.HexToAddress("0x00000000000000000000000000000000000bad01")
		runtime := append(append([]byte{0x60, 0, 0x60, 0, 0x60, 0, 0x60, 0, 0x47, 0x73}, thief[:]...), 0x5a, 0xf1, 0x50, 0x00)
		initCode := append([]byte{0x60, byte(len(runtime)), 0x80, 0x60, 0x0b, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3}, runtime...)
		r, err := c.Send(ctx, b.gas, eth.Tx{Data: initCode})
		if err != nil {
			t.Fatal(err)
		}
		drainer := r.ContractAddress
		victim := b.newSafe(d, b.cfg, 2, ether(4_00))
		tx := &SafeTx{To: drainer, Operation: OpDelegateCall, Nonce: b.nonce(victim)}
		if _, err := Calls(tx, d.MultiSendCallOnly); !errors.Is(err, ErrDelegateCall) {
			t.Fatalf("Calls = %v; want ErrDelegateCall", err)
		}
		if _, err := d.Exec(ctx, c, b.gas, victim, tx, b.signFor(d, victim, tx), 0); err != nil {
			t.Fatal(err)
		}
		if got := b.balance(thief); got.Cmp(ether(4_00)) != 0 {
			t.Fatalf("the thief got %s wei; want the Safe's 4 ETH", got)
		}
		if got := b.balance(victim); got.Sign() != 0 {
			t.Fatalf("the Safe kept %s wei", got)
		}
	})

	t.Run("BatchGas", func(t *testing.T) { b.batchGas(t, safe) })
}

// attack submits tx with sigs to safe as an attacker would, and checks
// that kinko's check refuses it with ours, that the Safe refuses it with
// code, and that once sent and mined it moved nothing: the target's and
// the Safe's balances and the Safe's nonce are as before.
func (b *bench) attack(t *testing.T, safe common.Address, tx *SafeTx, sigs []byte, target common.Address, ours error, code string) {
	t.Helper()
	cur := b.nonce(safe)
	// kinko's check: the hash of what is submitted, at the Safe's nonce.
	at := *tx
	at.Nonce = cur
	h, err := at.Hash(b.d.ChainID, safe)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifySignatures(h, sigs, b.cfg.Owners, b.cfg.Threshold); !errors.Is(err, ours) {
		t.Errorf("VerifySignatures = %v; want %v", err, ours)
	}
	// The chain's check, as a call first.
	err = Simulate(b.ctx, b.c, addrOf(b.gas), safe, &at, sigs)
	if err == nil || !strings.Contains(err.Error(), code) {
		t.Errorf("Simulate = %v; want the Safe's %s", err, code)
	}
	// Then sent for real with a fixed gas limit, so it is mined.
	targetBefore, safeBefore := b.balance(target), b.balance(safe)
	r, err := b.d.Exec(b.ctx, b.c, b.gas, safe, &at, sigs, 400_000)
	if !errors.Is(err, eth.ErrReverted) || r == nil || r.Status != types.ReceiptStatusFailed {
		t.Fatalf("Exec = %v; want a mined, reverted transaction", err)
	}
	if got := b.balance(target); got.Cmp(targetBefore) != 0 {
		t.Errorf("the target got %s wei", new(big.Int).Sub(got, targetBefore))
	}
	if got := b.balance(safe); got.Cmp(safeBefore) != 0 {
		t.Errorf("the Safe lost %s wei", new(big.Int).Sub(safeBefore, got))
	}
	if n := b.nonce(safe); n.Cmp(cur) != 0 {
		t.Errorf("nonce moved from %s to %s", cur, n)
	}
}

// batchGas pays N withdrawals from a Safe once as one Safe transaction
// through MultiSendCallOnly and once as N Safe transactions, on both
// singletons, to fresh accounts (a transfer that creates the account, the
// dearer case) and to accounts that exist, and reports the gas per
// withdrawal. A batch of ten or more must cost less per withdrawal.
func (b *bench) batchGas(t *testing.T, l2Safe common.Address) {
	l1, err := Deploy(b.ctx, b.c, b.gas, b.art, L1)
	if err != nil {
		t.Fatal(err)
	}
	l1Safe := b.newSafe(l1, b.cfg, 1, ether(50_00))
	if _, err := b.node.Fund(b.ctx, l2Safe, ether(50_00)); err != nil {
		t.Fatal(err)
	}
	next := uint64(0x10000)
	const separate = 10
	batches := []int{1, 10, 50}
	need := separate
	for _, n := range batches {
		need += n
	}
	for _, v := range []struct {
		d    *Deployment
		safe common.Address
	}{{b.d, l2Safe}, {l1, l1Safe}} {
		for _, existing := range []bool{false, true} {
			kind := "new accounts"
			if existing {
				kind = "existing accounts"
			}
			addrs := make([]common.Address, need)
			for i := range addrs {
				next++
				addrs[i] = common.BigToAddress(new(big.Int).SetUint64(next))
			}
			before := map[common.Address]*big.Int{}
			if existing { // one wei each, in one batch, makes them exist
				calls := make([]Call, len(addrs))
				for i, a := range addrs {
					calls[i] = Call{To: a, Value: big.NewInt(1)}
				}
				b.execBatch(t, v.d, v.safe, calls)
			}
			for _, a := range addrs {
				before[a] = b.balance(a)
			}
			var sepGas uint64
			for i := range separate {
				to := addrs[i]
				tx := Transfer(to, big.NewInt(int64(1e15+i)), b.nonce(v.safe))
				r, err := v.d.Exec(b.ctx, b.c, b.gas, v.safe, tx, b.signFor(v.d, v.safe, tx), 0)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := b.balance(to), new(big.Int).Add(before[to], tx.Value); got.Cmp(want) != 0 {
					t.Fatalf("recipient %s = %s; want %s", to, got, want)
				}
				sepGas += r.GasUsed
			}
			perSeparate := sepGas / separate
			t.Logf("%s, %s: one Safe transaction per withdrawal: %d gas per withdrawal (mean of %d)", v.d.Variant, kind, perSeparate, separate)
			rest := addrs[separate:]
			for _, n := range batches {
				calls := make([]Call, n)
				for i := range calls {
					calls[i] = Call{To: rest[i], Value: big.NewInt(int64(2e15 + i))}
				}
				rest = rest[n:]
				r := b.execBatch(t, v.d, v.safe, calls)
				for _, call := range calls {
					if got, want := b.balance(call.To), new(big.Int).Add(before[call.To], call.Value); got.Cmp(want) != 0 {
						t.Fatalf("batch recipient %s = %s; want %s", call.To, got, want)
					}
				}
				per := r.GasUsed / uint64(n)
				t.Logf("%s, %s: batch of %d through MultiSendCallOnly: %d gas, %d per withdrawal", v.d.Variant, kind, n, r.GasUsed, per)
				if n >= 10 && per >= perSeparate {
					t.Errorf("%s: a batch of %d costs %d gas per withdrawal, not less than %d one by one", v.d.Variant, n, per, perSeparate)
				}
			}
		}
	}
}

// execBatch pays calls from safe in one Safe transaction through the
// deployment's MultiSendCallOnly, signed by two owners, and checks that
// the Safe paid exactly their sum.
func (b *bench) execBatch(t *testing.T, d *Deployment, safe common.Address, calls []Call) *types.Receipt {
	t.Helper()
	tx, err := Batch(d.MultiSendCallOnly, calls, b.nonce(safe))
	if err != nil {
		t.Fatal(err)
	}
	// What the signers would check: the batch reads back as these calls,
	// through the pinned MultiSendCallOnly only.
	back, err := Calls(tx, d.MultiSendCallOnly)
	if err != nil || len(back) != len(calls) {
		t.Fatalf("Calls = %d calls, %v; want %d", len(back), err, len(calls))
	}
	safeBefore := b.balance(safe)
	r, err := d.Exec(b.ctx, b.c, b.gas, safe, tx, b.signFor(d, safe, tx), 0)
	if err != nil {
		t.Fatal(err)
	}
	total := new(big.Int)
	for _, c := range calls {
		total.Add(total, c.Value)
	}
	if got, want := b.balance(safe), new(big.Int).Sub(safeBefore, total); got.Cmp(want) != 0 {
		t.Fatalf("Safe after the batch = %s; want %s", got, want)
	}
	return r
}

// signFor has owners 0 and 1 sign tx for a Safe of deployment d.
func (b *bench) signFor(d *Deployment, safe common.Address, tx *SafeTx) []byte {
	b.t.Helper()
	h, err := tx.Hash(d.ChainID, safe)
	if err != nil {
		b.t.Fatal(err)
	}
	var sigs []Signature
	for _, k := range b.owners[:2] {
		s, _ := Sign(h, k)
		sigs = append(sigs, s)
	}
	enc, err := EncodeSignatures(h, sigs)
	if err != nil {
		b.t.Fatal(err)
	}
	return enc
}
