package watch

import (
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"kinko/internal/chain"
	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/evmtest"
	"kinko/internal/chain/ethchain"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
)

// internalRun is what one run of the internal-deposit scenario measured.
type internalRun struct {
	got1, got2 *big.Int // what customers 1 and 2 were credited
	deposits   int
	diffs      map[uint64]*big.Int // the cold wallet's difference by block reconciled
	halted     bool
	reconErr   error
}

// runInternalDeposits: on geth --dev, customers 1 and 2 are handed deposit
// addresses 0 and 1 of the cold Safe wallet; one transaction calls a
// forwarder contract with 0.6 ETH + 7 wei, which sends 0.3 ETH + 7 wei to
// customer 1's address and 0.2 ETH to customer 2's in two internal
// calls, 0.1 ETH to a relay that pays it on to customer 1's address and
// then reverts (the forwarder ignores the failure), and 10^30 wei it has
// not to customer 2's (a failed frame with value). The deposit watcher
// (three confirmations) and the reconciliation step at every block, over
// a backend reading call traces or not.
func runInternalDeposits(t *testing.T, traces bool) internalRun {
	w := newEthWorld(t, milliETH(5_000))
	cold := w.safe(t, w.coldKeys, 1000, milliETH(1_000))
	w.book(t, ewCold, w.customer(3), milliETH(1_000))
	w.submit(t, time.Now(), core.AssignAddress{Wallet: ewCold, Customer: 1})
	w.submit(t, time.Now(), core.AssignAddress{Wallet: ewCold, Customer: 2})
	backend := ethchain.New(w.c, "", nil, ethchain.WithTraces(traces))
	tip, err := w.c.BlockNumber(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	chainID := w.c.ChainID().Uint64()
	cfg := EtherConfig{Asset: ethAsset, ChainID: chainID, Confirmations: 3, StartHeight: int32(tip) + 1}
	dep, err := NewEtherDeposits(w.ctx, w.k, backend, w.art, cfg)
	if err != nil {
		t.Fatal(err)
	}
	safes, err := MatchWallets(w.ctx, w.k, w.c, ethAsset, []WatchedSafe{{Name: "hot-eth", Address: w.hot, Kind: custody.HotCustomer},
		{Name: "cold-eth", Address: cold, Kind: custody.ColdCustomer}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewEthRecon(w.k, backend, w.c, w.art, EthReconConfig{Asset: ethAsset, ChainID: chainID, Confirmations: 3,
		Tolerance: ledger.AmountOf(milliETH(1).Uint64()), Deposits: dep, StartBlock: tip, Safes: safes})
	if err != nil {
		t.Fatal(err)
	}
	addr1, _ := dep.Address(ewCold, 0)
	addr2, _ := dep.Address(ewCold, 1)
	deploy := func(code []byte) common.Address {
		rc, err := w.c.Send(w.ctx, w.gas, eth.Tx{Data: code, Gas: 200_000})
		if err != nil {
			t.Fatal(err)
		}
		return rc.ContractAddress
	}
	fwd := deploy(evmtest.ForwarderCode())
	relay := deploy(evmtest.RevertingRelayCode(addr1))
	before1, before2 := w.customerBalance(1), w.customerBalance(2)
	out := internalRun{diffs: map[uint64]*big.Int{}}
	step := func() {
		t.Helper()
		if err := dep.Step(w.ctx); err != nil {
			t.Fatalf("deposit watcher: %v", err)
		}
		at, err := r.Step(w.ctx)
		if err != nil && out.reconErr == nil {
			out.reconErr = err
		}
		bs, _ := r.Balances()
		for _, b := range bs {
			if b.Wallet == ewCold && at > 0 {
				out.diffs[b.Block] = b.Difference()
			}
		}
	}
	huge, _ := new(big.Int).SetString("1000000000000000000000000000000", 10)
	data := evmtest.ForwardData(evmtest.Call{To: addr1, Value: weiPlus(milliETH(300), 7)}, evmtest.Call{To: addr2, Value: milliETH(200)},
		evmtest.Call{To: relay, Value: milliETH(100)}, evmtest.Call{To: addr2, Value: huge})
	step()
	rc, err := w.c.Send(w.ctx, w.gas, eth.Tx{To: &fwd, Value: weiPlus(milliETH(600), 7), Data: data, Gas: 400_000})
	if err != nil || rc.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("the forwarding transaction: %v, %v", rc, err)
	}
	at := rc.BlockNumber.Uint64()
	if b := w.balance(t, addr1); b.Cmp(weiPlus(milliETH(300), 7)) != 0 {
		t.Fatalf("customer 1's address holds %s wei on chain; want 0.3 ETH + 7 wei", b)
	}
	// Step at every block until the deposit block is reconciled and two
	// blocks past it.
	for {
		step()
		if _, ok := out.diffs[at+2]; ok {
			break
		}
		if n, _ := w.c.BlockNumber(w.ctx); n > at+10 {
			t.Fatalf("block %d not reconciled by tip %d: %v", at+2, n, out.diffs)
		}
		if _, err := w.n.Mine(w.ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	out.got1 = new(big.Int).Sub(w.customerBalance(1), before1)
	out.got2 = new(big.Int).Sub(w.customerBalance(2), before2)
	w.k.Read(func(s *core.State) {
		s.Custody.Deposits(func(d *custody.Deposit) bool {
			if d.Wallet == ewCold {
				out.deposits++
				if _, internal := chain.IsInternal(d.Outpoint.Vout); !internal || d.Outpoint.TxID != rc.TxHash {
					t.Errorf("deposit %s: want an internal transfer of %s", d.Outpoint.EtherString(), rc.TxHash)
				}
			}
			return true
		})
	})
	out.halted = w.haltedETH()
	if traces {
		// A restart, from the same journal: nothing twice.
		dep2, err := NewEtherDeposits(w.ctx, w.k, ethchain.New(w.c, "", nil, ethchain.WithTraces(true)), w.art, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.n.Mine(w.ctx, 2); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := dep2.Step(w.ctx); err != nil {
				t.Fatal(err)
			}
		}
		if g1, g2 := new(big.Int).Sub(w.customerBalance(1), before1), new(big.Int).Sub(w.customerBalance(2), before2); g1.Cmp(out.got1) != 0 || g2.Cmp(out.got2) != 0 {
			t.Fatalf("after a restart customers got %s and %s; before it %s and %s", g1, g2, out.got1, out.got2)
		}
	}
	return out
}

func weiPlus(v *big.Int, wei int64) *big.Int { return new(big.Int).Add(v, big.NewInt(wei)) }

// TestInternalDepositsOnDevnet: with call traces read, customer 1 is
// credited exactly 0.3 ETH + 7 wei and customer 2 exactly 0.2 ETH, once
// each, after three confirmations (nothing from the reverted relay or
// the failed call), a restart credits nothing twice, and the cold
// wallet's reconciliation difference is 0 at every block, nothing halted.
// Without traces nothing is credited and the same deposit is a
// difference of -(0.5 ETH + 7 wei) (the chain holds more than the
// ledger): ETH withdrawals halt. That is the failure traces remove.
func TestInternalDepositsOnDevnet(t *testing.T) {
	on := runInternalDeposits(t, true)
	want1, want2 := weiPlus(milliETH(300), 7), milliETH(200)
	if on.got1.Cmp(want1) != 0 || on.got2.Cmp(want2) != 0 || on.deposits != 2 {
		t.Fatalf("with traces: customers credited %s and %s wei in %d deposits; want %s and %s in 2", on.got1, on.got2, on.deposits, want1, want2)
	}
	for b, d := range on.diffs {
		if d.Sign() != 0 {
			t.Errorf("with traces: block %d: cold wallet difference %s wei; want 0", b, d)
		}
	}
	if on.halted || on.reconErr != nil {
		t.Fatalf("with traces: halted %v, reconciliation %v", on.halted, on.reconErr)
	}
	t.Logf("with traces: %d blocks reconciled, every difference 0", len(on.diffs))

	off := runInternalDeposits(t, false)
	if off.got1.Sign() != 0 || off.got2.Sign() != 0 || off.deposits != 0 {
		t.Fatalf("without traces: customers credited %s and %s in %d deposits; want nothing", off.got1, off.got2, off.deposits)
	}
	missed := new(big.Int).Neg(weiPlus(milliETH(500), 7))
	var worst *big.Int
	for _, d := range off.diffs {
		if worst == nil || d.Cmp(worst) < 0 {
			worst = d
		}
	}
	if worst == nil || worst.Cmp(missed) != 0 || !off.halted {
		t.Fatalf("without traces: largest difference %v, halted %v; want %s and halted", worst, off.halted, missed)
	}
	t.Logf("without traces: cold wallet difference %s wei, ETH withdrawals halted (%v)", worst, off.reconErr)
}
