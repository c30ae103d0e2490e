package signer

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/alert"
	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/chain/ethchain"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/watch"
	"kinko/internal/withdraw"
)

// settleHook is the core in process, with a hook run before the signer's
// confirm_batch or fail_batch is journaled: the batch's execTransaction
// is mined then, its settlement not yet in the ledger.
type settleHook struct {
	InProcess
	before func(cmd core.Command)
}

func (b settleHook) Submit(ctx context.Context, cmd core.Command) error {
	switch cmd.(type) {
	case core.ConfirmBatch, core.FailBatch:
		if b.before != nil {
			b.before(cmd)
		}
	}
	return b.InProcess.Submit(ctx, cmd)
}

// TestEthGasReconcileOnDevnet: the house gas account reconciled with its
// ledger account at every block, three deep, with a tolerance of 0 wei,
// beside the hot Safe, on geth --dev with the hot signer and the
// co-signer in process. The difference is 0 at every block through: a
// funding of 0.25 ETH from an outsider, found in its block by the
// reconciliation, counted in flight and journaled once (fund_gas_account
// with its block); a funding of 0.1 ETH journaled by hand before its
// block is reconciled (above the block); a batch of two withdrawals
// executed and its confirmation held back until its block is reconciled
// (the gas spent on chain, not yet in the ledger); a batch confirmed at
// once (its gas in the ledger, its block above the reconciled one); a
// failed batch (ExecutionFailure) held back the same way, then failed
// with its gas. Then an attacker holding the leaked gas key sends 0.5
// ETH of the gas account to itself: nothing moves until that block is
// reconciled, then ETH withdrawals halt with a difference of exactly
// what left (0.5 ETH and the theft's own gas), the incident
// mismatch-ETH-gas names it, one critical alert, the hot Safe still
// reconciled to the wei; the leaked key paying 0.1 ETH to the gas
// account itself is no funding: the difference grows by its gas alone.
func TestEthGasReconcileOnDevnet(t *testing.T) {
	e := newEthE2E(t)
	art, err := safe.LoadInstalled()
	if err != nil {
		t.Fatal(err)
	}
	gasAddr := crypto.PubkeyToAddress(e.exec.PublicKey)
	tip, err := e.c.BlockNumber(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var alerts []alert.Alert
	r, err := watch.NewEthRecon(e.core, ethchain.New(e.c, "", nil), e.c, art, watch.EthReconConfig{Asset: ethAsset, ChainID: e.d.ChainID.Uint64(),
		Confirmations: 3, StartBlock: tip, Safes: []watch.WatchedSafe{{Name: "hot-eth", Address: e.hot, Kind: custody.HotCustomer, Wallet: 11}},
		Alert: func(a alert.Alert) { mu.Lock(); alerts = append(alerts, a); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	// step reconciles at the node's tip and checks the gas account and
	// the hot Safe are reconciled to the wei, nothing halted.
	step := func(what string) *watch.EthGasBalance {
		t.Helper()
		if _, err := r.Step(e.ctx); err != nil {
			t.Fatalf("%s: reconciliation: %v", what, err)
		}
		steps++
		g := r.GasBalance()
		if g == nil {
			t.Fatalf("%s: the gas account is not reconciled", what)
		}
		if d := g.Difference(); d.Sign() != 0 {
			t.Fatalf("%s: the gas account's difference is %s wei: %+v", what, d, *g)
		}
		bs, _ := r.Balances()
		if len(bs) != 1 || bs[0].Difference().Sign() != 0 {
			t.Fatalf("%s: the hot Safe: %+v", what, bs)
		}
		if e.haltedETH() {
			t.Fatalf("%s: ETH withdrawals halted", what)
		}
		return g
	}
	// mine seals blocks until the reconciled block (two below the tip)
	// reaches height, stepping at every block.
	mine := func(what string, height uint64, each func(*watch.EthGasBalance)) {
		t.Helper()
		for {
			n, err := e.c.BlockNumber(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			g := step(fmt.Sprintf("%s, tip %d", what, n))
			if each != nil {
				each(g)
			}
			if n >= height+2 {
				return
			}
			if _, err := e.node.Mine(e.ctx, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	wei := func(a ledger.Amount) *big.Int { return a.Big() }
	fundings := func() []withdraw.GasFunding {
		var fs []withdraw.GasFunding
		e.core.Read(func(s *core.State) { g, _ := s.Withdraw.GasAccountOf("ETH"); fs = g.Fundings })
		return fs
	}

	// The start: the harness's funding (1 ETH, journaled without its
	// block) placed by its receipt.
	mine("start", tip, nil)
	eq(t, "the gas account's ledger account at the start", e.gasLedger(), milli(1_000))

	// A funding from an outsider: found, in flight, journaled once.
	outsider, err := e.node.NewKey(e.ctx, milli(1_000))
	if err != nil {
		t.Fatal(err)
	}
	rf, err := e.c.Send(e.ctx, outsider, eth.Tx{To: &gasAddr, Value: milli(250), Gas: 21_000})
	if err != nil || rf.Status != 1 {
		t.Fatalf("the funding: %v", err)
	}
	inFlight := false
	mine("funding", rf.BlockNumber.Uint64()+1, func(g *watch.EthGasBalance) {
		inFlight = inFlight || wei(g.Unjournaled).Cmp(milli(250)) == 0
	})
	fs := fundings()
	if !inFlight || len(fs) != 2 || fs[1].Tx != rf.TxHash.Hex() || fs[1].Height != int32(rf.BlockNumber.Uint64()) || fs[1].Amount.Ledger().Big().Cmp(milli(250)) != 0 {
		t.Fatalf("the outsider's funding: counted in flight %v, recorded %+v", inFlight, fs)
	}
	eq(t, "the gas account's ledger account after the funding", e.gasLedger(), milli(1_250))

	// A funding journaled by hand before its block is reconciled.
	rh, err := e.node.Fund(e.ctx, gasAddr, milli(100))
	if err != nil {
		t.Fatal(err)
	}
	e.submit(t, time.Now(), core.FundGasAccount{Asset: "ETH", TxHash: rh.TxHash.Hex(), Amount: weiAmount(t, milli(100)), Height: int32(rh.BlockNumber.Uint64())})
	above := false
	mine("funding journaled by hand", rh.BlockNumber.Uint64()+1, func(g *watch.EthGasBalance) {
		above = above || wei(g.FundedAbove).Cmp(milli(100)) == 0
	})
	if !above || len(fundings()) != 3 {
		t.Fatalf("the hand-journaled funding: above the block %v, fundings %+v", above, fundings())
	}

	// A batch executed, its confirmation held back until its block is
	// reconciled: the gas spent on chain and not yet in the ledger.
	var held *big.Int // the gas the held-back settlement spent, seen in flight
	hook := func(cmd core.Command) {
		var g *withdraw.GasSpent
		switch c := cmd.(type) {
		case core.ConfirmBatch:
			g = c.Gas
		case core.FailBatch:
			g = c.Gas
		}
		if g == nil {
			t.Errorf("a settlement without gas: %+v", cmd)
			return
		}
		rc, err := e.c.Eth().TransactionReceipt(e.ctx, common.HexToHash(g.Tx))
		if err != nil {
			t.Errorf("the batch's receipt: %v", err)
			return
		}
		mine("batch executed, not settled", rc.BlockNumber.Uint64(), func(gb *watch.EthGasBalance) {
			if gb.Block >= rc.BlockNumber.Uint64() {
				held = new(big.Int).Sub(wei(gb.Spent), wei(gb.Recorded))
			}
		})
	}
	sig := func(before func(core.Command)) *EthSigner {
		s, err := NewEth(EthConfig{Backend: settleHook{InProcess{Core: e.core}, before}, Node: e.c, ChainID: e.d.ChainID.Uint64(), Safe: e.hot,
			MultiSend: e.d.MultiSendCallOnly, Key: e.hotKey, Gas: e.exec, CoSigner: e.co, GasLimit: 500_000, MaxFeePerGas: big.NewInt(10_000_000_000)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	id1 := e.withdraw(t, 1, ethPayee(1), milli(300))
	e.withdraw(t, 2, ethPayee(2), milli(200))
	gasBefore := e.gasLedger()
	if done, err := sig(hook).Step(e.ctx); err != nil || len(done) != 1 {
		t.Fatalf("the batch: %v, %v", done, err)
	}
	b1 := e.batch(t, id1)
	if b1.Status != withdraw.BatchConfirmed || b1.Gas == nil || len(b1.Withdrawals) != 2 {
		t.Fatalf("the batch: %+v", b1)
	}
	spent1, _ := new(big.Int).SetString(b1.Gas.Wei, 10)
	if held == nil || held.Cmp(spent1) != 0 {
		t.Fatalf("the executed batch's gas in flight %v; want %s", held, spent1)
	}
	eq(t, "the gas account's ledger loss for the batch", new(big.Int).Sub(gasBefore, e.gasLedger()), spent1)
	step("batch confirmed")

	// A batch confirmed at once: its gas in the ledger above the block.
	id2 := e.withdraw(t, 3, ethPayee(3), milli(250))
	if done, err := sig(nil).Step(e.ctx); err != nil || len(done) != 1 {
		t.Fatalf("the second batch: %v, %v", done, err)
	}
	b2 := e.batch(t, id2)
	if b2.Status != withdraw.BatchConfirmed || b2.Gas == nil {
		t.Fatalf("the second batch: %+v", b2)
	}
	spent2, _ := new(big.Int).SetString(b2.Gas.Wei, 10)
	n2, _ := e.c.BlockNumber(e.ctx)
	ahead := false
	mine("batch confirmed above the block", n2, func(g *watch.EthGasBalance) {
		if d := new(big.Int).Sub(wei(g.Recorded), wei(g.Spent)); d.Cmp(spent2) == 0 {
			ahead = true
		}
	})
	if !ahead {
		t.Fatal("the confirmed batch's gas was never counted above the reconciled block")
	}

	// A failed batch (the payee refuses ether), its failure held back.
	held = nil
	id3 := e.withdraw(t, 3, e.reverter, milli(100))
	if _, err := sig(hook).Step(e.ctx); err != nil {
		t.Fatal(err)
	}
	b3 := e.batch(t, id3)
	if b3.Status != withdraw.BatchFailed || b3.Gas == nil {
		t.Fatalf("the failed batch: %+v", b3)
	}
	spent3, _ := new(big.Int).SetString(b3.Gas.Wei, 10)
	if held == nil || held.Cmp(spent3) != 0 {
		t.Fatalf("the failed batch's gas in flight %v; want %s", held, spent3)
	}
	n3, _ := e.c.BlockNumber(e.ctx)
	mine("batch failed", n3, nil)
	eq(t, "the gas account's ledger account against its chain balance", e.gasLedger(), e.gasChain(t))

	// The theft: the leaked gas key sends 0.5 ETH to the attacker.
	attacker := common.HexToAddress("0xa77ac4e200000000000000000000000000000bad")
	rt, err := e.c.Send(e.ctx, e.exec, eth.Tx{To: &attacker, Value: milli(500), Gas: 21_000})
	if err != nil || rt.Status != 1 {
		t.Fatalf("the theft: %v", err)
	}
	took := new(big.Int).Add(milli(500), eth.Fee(rt))
	mine("theft below the reconciled block", rt.BlockNumber.Uint64()-1, nil)
	for {
		n, _ := e.c.BlockNumber(e.ctx)
		if n >= rt.BlockNumber.Uint64()+2 {
			break
		}
		if _, err := e.node.Mine(e.ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	at, err := r.Step(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !e.haltedETH() {
		t.Fatal("ETH withdrawals not halted once the theft's block is reconciled")
	}
	g := r.GasBalance()
	if g.Block != at || at != rt.BlockNumber.Uint64() || g.Difference().Cmp(took) != 0 {
		t.Fatalf("the gas account at block %d: %+v, difference %s; want %s at block %d (0.5 ETH and the theft's gas)", at, *g, g.Difference(), took, rt.BlockNumber)
	}
	if bs, _ := r.Balances(); len(bs) != 1 || bs[0].Difference().Sign() != 0 {
		t.Fatalf("the hot Safe after the theft: %+v", bs)
	}
	// One more block: nothing raised twice.
	if _, err := e.node.Mine(e.ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Step(e.ctx); err != nil {
		t.Fatal(err)
	}
	var ids []string
	var reason string
	e.core.Read(func(s *core.State) {
		for _, in := range s.Incidents.List() {
			ids = append(ids, in.ID)
			if in.ID == "mismatch-ETH-gas" {
				reason = in.Reason
			}
		}
	})
	if !slices.Contains(ids, "mismatch-ETH-gas") || slices.Contains(ids, "mismatch-ETH-11") {
		t.Fatalf("incidents %v; want mismatch-ETH-gas and no mismatch of the hot Safe", ids)
	}
	if want := "difference " + took.String() + " wei"; !strings.Contains(reason, want) || !strings.Contains(reason, gasAddr.Hex()) {
		t.Fatalf("the incident's reason %q; want the gas address and %q", reason, want)
	}
	n := 0
	mu.Lock()
	for _, a := range alerts {
		if a.Severity == alert.Critical && strings.HasPrefix(a.Key, "mismatch:ETH:gas:") {
			n++
		}
	}
	mu.Unlock()
	if n != 1 {
		t.Fatalf("%d gas mismatch alerts; want 1: %+v", n, alerts)
	}
	// The leaked key pays 0.1 ETH to the gas account itself: no funding
	// (nothing journaled), the difference grows by its gas alone.
	rs, err := e.c.Send(e.ctx, e.exec, eth.Tx{To: &gasAddr, Value: milli(100), Gas: 21_000})
	if err != nil || rs.Status != 1 {
		t.Fatalf("the self-payment: %v", err)
	}
	for {
		n, _ := e.c.BlockNumber(e.ctx)
		if n >= rs.BlockNumber.Uint64()+2 {
			break
		}
		if _, err := e.node.Mine(e.ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Step(e.ctx); err != nil {
		t.Fatal(err)
	}
	g = r.GasBalance()
	if want := new(big.Int).Add(took, eth.Fee(rs)); g.Difference().Cmp(want) != 0 || len(fundings()) != 3 {
		t.Fatalf("after the self-payment: difference %s, %d fundings; want %s (the theft and the self-payment's gas), 3", g.Difference(), len(fundings()), want)
	}
	t.Logf("gas account reconciled at %d steps, 3 deep, tolerance 0: fundings of 0.25 ETH (found) and 0.1 ETH (journaled by hand), batches' gas %s, %s and failed %s wei, each 0 to the wei; the theft of %s wei (0.5 ETH + %s gas) halted ETH at block %d",
		steps, spent1, spent2, spent3, took, eth.Fee(rt), at)
}
