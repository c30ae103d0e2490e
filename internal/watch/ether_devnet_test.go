package watch

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/devnet"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/chain/eth/safe/safetest"
	"kinko/internal/chain/ethchain"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ethwallet"
	"kinko/internal/ledger"
)

func weiOf(a ledger.Amount) *big.Int { return a.Big() }

// safeDescriptor describes a 2-of-3 Safe of dep with fresh owner keys
// (kept nowhere: the test never spends from it).
func safeDescriptor(t testing.TB, dep *safe.Deployment) ethwallet.Descriptor {
	var keys []*ecdsa.PrivateKey
	for range 3 {
		k, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return safetest.Descriptor(dep, safetest.Owners(keys...))
}

func safeConfig(d ethwallet.Descriptor) safe.Config {
	cfg := safe.Config{Threshold: d.Threshold}
	for _, o := range d.Owners {
		cfg.Owners = append(cfg.Owners, common.Address(o))
	}
	return cfg
}

// TestEtherDepositsOnDevnet: on geth --dev under mainnet's rules, with the
// Safe contracts deployed, customers 1 and 2 are handed the counterfactual
// Safe addresses 0 and 1 of the cold wallet; an outside key sends them 20
// ETH (above 2^64 wei) and 0.5 ETH, and also sends Ether to an address
// that is no one's, to the hot wallet's Safe address, to an index of the
// cold wallet handed to no one, and to an attacker's Safe at the same salt.
// Nothing is credited below three confirmations; at three, exactly 20 ETH
// and 0.5 ETH and nothing else; a restarted watcher and a second one
// credit nothing more; forged credit_deposits commands credit nothing.
func TestEtherDepositsOnDevnet(t *testing.T) {
	art := artifacts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n := devnet.New(t, devnet.Options{})
	c := n.Client()
	gas, err := n.NewKey(ctx, new(big.Int).Mul(big.NewInt(10), big.NewInt(1e18)))
	if err != nil {
		t.Fatal(err)
	}
	dep, err := safe.Deploy(ctx, c, gas, art, safe.L2)
	if err != nil {
		t.Fatal(err)
	}
	cold, hot := safeDescriptor(t, dep), safeDescriptor(t, dep)
	attacker := safeDescriptor(t, dep)
	k := etherCore(t, cold, hot)
	backend := ethchain.New(c, "", nil)
	cfg := EtherConfig{Asset: ethAsset, ChainID: c.ChainID().Uint64(), Confirmations: 3}
	w, err := NewEtherDeposits(ctx, k, backend, art, cfg)
	if err != nil {
		t.Fatal(err)
	}
	predict := func(d ethwallet.Descriptor, i uint64) common.Address {
		init, err := dep.Initializer(safeConfig(d))
		if err != nil {
			t.Fatal(err)
		}
		return dep.Predictor(init).AddressIndex(i)
	}
	addr0, _ := w.Address(1, 0)
	addr1, _ := w.Address(1, 1)
	unassigned, _ := w.Address(1, 5) // followed (the gap), handed to no one
	if addr0 != predict(cold, 0) || addr1 != predict(cold, 1) || unassigned != predict(cold, 5) {
		t.Fatalf("deposit addresses %s %s %s; want the counterfactual Safes %s %s %s", addr0, addr1, unassigned, predict(cold, 0), predict(cold, 1), predict(cold, 5))
	}
	k.Read(func(s *core.State) {
		c1, _ := s.Custody.AddressOwner(1, 0)
		c2, _ := s.Custody.AddressOwner(1, 1)
		if c1 != 1 || c2 != 2 {
			t.Fatalf("addresses 0 and 1 owned by %d and %d; want customers 1 and 2", c1, c2)
		}
	})
	// The outside payer.
	payer, err := n.NewKey(ctx, new(big.Int).Mul(big.NewInt(30), big.NewInt(1e18)))
	if err != nil {
		t.Fatal(err)
	}
	send := func(to common.Address, wei *big.Int) uint64 {
		t.Helper()
		r, err := c.Send(ctx, payer, eth.Tx{To: &to, Value: wei})
		if err != nil {
			t.Fatal(err)
		}
		return r.BlockNumber.Uint64()
	}
	halfETH := ledger.AmountOf(500_000_000_000_000_000)
	oneETH := big.NewInt(1e18)
	nobody := common.HexToAddress("0x00000000000000000000000000000000000D00D0")
	// The others first, then the customers' deposits, each in its block.
	var last uint64
	for _, p := range []struct {
		to  common.Address
		wei *big.Int
	}{
		{nobody, oneETH}, {predict(hot, 0), oneETH}, {unassigned, oneETH}, {predict(attacker, 0), oneETH},
	} {
		last = max(last, send(p.to, p.wei))
	}
	at2 := send(addr1, weiOf(halfETH))
	at1 := send(addr0, weiOf(twentyETH))
	if bal, err := c.Balance(ctx, addr0); err != nil || bal.Cmp(weiOf(twentyETH)) != 0 {
		t.Fatalf("chain balance of address 0 = %v, %v; want 20 ETH", bal, err)
	}
	if code, err := c.Code(ctx, addr0); err != nil || len(code) != 0 {
		t.Fatalf("code at address 0: %d bytes, %v; want none (counterfactual)", len(code), err)
	}
	var walletBefore ledger.Signed
	k.Read(func(s *core.State) {
		wl, _ := s.Custody.Wallet(1)
		a, _ := s.Ledger.Account(wl.Account())
		walletBefore = a.SignedBalance()
	})
	// Step block by block: nothing credits below three confirmations.
	stepUntilCredited(ctx, t, n, w,
		awaited{"customer 1", int32(at1), twentyETH, func() ledger.Amount { return ethBalance(k, 1) }},
		awaited{"customer 2", int32(at2), halfETH, func() ledger.Amount { return ethBalance(k, 2) }})
	deposits := func() (n int, sum ledger.Amount) {
		k.Read(func(s *core.State) {
			s.Custody.Deposits(func(d *custody.Deposit) bool {
				n++
				sum, _ = sum.Add(d.Value())
				return true
			})
		})
		return n, sum
	}
	total, _ := twentyETH.Add(halfETH)
	if n, sum := deposits(); n != 2 || sum != total {
		t.Fatalf("%d deposits of %s in all; want 2 of %s (nothing to the other addresses)", n, sum, total)
	}
	k.Read(func(s *core.State) {
		wl, _ := s.Custody.Wallet(1)
		a, _ := s.Ledger.Account(wl.Account())
		got := a.SignedBalance()
		if !walletBefore.Abs.IsZero() || got.Neg || got.Abs != total {
			t.Fatalf("cold wallet account %s → %s; want 0 → %s (what it holds on chain)", walletBefore, got, total)
		}
	})
	// A restart, and a second watcher beside it: nothing twice.
	w2, err := NewEtherDeposits(ctx, k, backend, art, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w3, err := NewEtherDeposits(ctx, k, ethchain.New(c, "", nil), art, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Mine(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for _, x := range []*EtherDeposits{w2, w3, w2} {
		if err := x.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if b1, b2 := ethBalance(k, 1), ethBalance(k, 2); b1 != twentyETH || b2 != halfETH {
		t.Fatalf("after a restart: %s and %s; want %s and %s", b1, b2, twentyETH, halfETH)
	}
	if n, _ := deposits(); n != 2 {
		t.Fatalf("%d deposits after a restart; want 2", n)
	}
	// Forged credit_deposits, as an attacker holding the watcher's token
	// would journal them, naming real transactions.
	var real custody.Deposit
	k.Read(func(s *core.State) {
		s.Custody.Deposits(func(d *custody.Deposit) bool { real = *d; return d.Customer != 1 })
	})
	forged := []struct {
		name string
		seen custody.Seen
		want error
	}{
		{"the hot wallet's address", custody.Seen{Outpoint: custody.Outpoint{TxID: [32]byte{0xf0}}, Wallet: 2, Index: 0, Amount: 1e18, Height: int32(last)}, custody.ErrNotDepositWallet},
		{"an index handed to no one", custody.Seen{Outpoint: custody.Outpoint{TxID: [32]byte{0xf1}}, Wallet: 1, Index: 5, Amount: 1e18, Height: int32(last)}, custody.ErrAddressUnassigned},
		{"a credited transaction again, to customer 2, for more", custody.Seen{Outpoint: real.Outpoint, Wallet: 1, Index: 1, Amount: 0, AmountHi: 7, Height: real.Height}, custody.ErrDepositExists},
		{"a wallet that does not exist", custody.Seen{Outpoint: custody.Outpoint{TxID: [32]byte{0xf2}}, Wallet: 9, Index: 0, Amount: 1, Height: int32(last)}, custody.ErrWalletUnknown},
		{"zero wei", custody.Seen{Outpoint: custody.Outpoint{TxID: [32]byte{0xf3}}, Wallet: 1, Index: 1, Height: int32(last)}, custody.ErrAmountZero},
	}
	for _, f := range forged {
		o, err := k.Submit(ctx, time.Now(), core.CreditDeposits{Deposits: []custody.Seen{f.seen}})
		if err != nil || o.Err != nil {
			t.Fatalf("%s: %v %v", f.name, err, o.Err)
		}
		res, _ := o.Value.([]custody.Result)
		if len(res) != 1 || !errors.Is(res[0].Err, f.want) {
			t.Errorf("%s: results %v; want %v", f.name, res, f.want)
		}
	}
	if b1, b2, b3 := ethBalance(k, 1), ethBalance(k, 2), ethBalance(k, 3); b1 != twentyETH || b2 != halfETH || !b3.IsZero() {
		t.Fatalf("after the forgeries: %s, %s, %s; want %s, %s, 0", b1, b2, b3, twentyETH, halfETH)
	}
	// Customer 1's address is used: the next one asked for is new.
	o, err := k.Submit(ctx, time.Now(), core.AssignAddress{Wallet: 1, Customer: 1})
	if err != nil || o.Err != nil {
		t.Fatal(err, o.Err)
	}
	if idx, _ := o.Value.(uint32); idx != 2 {
		t.Fatalf("customer 1's next address = %d; want 2", idx)
	}
}
