package itest

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/chain/eth/safe"
	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/withdraw"
)

// TestEthDeployment runs kinko on Ethereum as an operator deploys it:
// geth --dev, a hot Safe of 5 ETH (2-of-3: the hot signer's, the
// co-signer's and the offline backup's Ethereum keys) and a cold Safe of
// 95 ETH, and the core, the co-signer, the hot signer and the watcher each
// its own kinko process.
//
// The co-signer, restarted with the cold Safe pinned as its hot Safe,
// refuses to start (VerifySafes on its node), and starts again with its
// policy; it finds the journal's Safe wallets pinned by descriptor.
//
//  1. A customer's withdrawal of 0.3 ETH, requested through the API, is
//     batched by the signer process, co-signed by the co-signer process
//     over mutual TLS, executed on the node and confirmed through the
//     core's signer route before any watcher runs: exact in wei on chain
//     and in the ledger.
//  2. Another customer's withdrawal to a contract that refuses ether
//     reverts on chain and the signer process fails it through the same
//     route: the customer's balance comes back exactly.
//  3. The watcher process starts and reads both Safes' executions from
//     block 1 (the journaled one halts nothing). Then an attacker with two
//     leaked hot owner keys (the hot signer's key file and the offline
//     backup's) drains the hot Safe straight on the node, never asking the
//     co-signer: the watcher halts ETH in the core and in the co-signer;
//     what the attacker got is measured against the hot Safe's share, and
//     a withdrawal after the halt is refused.
func TestEthDeployment(t *testing.T) {
	balances := []*big.Int{Milli(1_500), Milli(1_500), Milli(2_000)}
	d := DeployEth(t, EthOptions{Hot: Milli(5_000), Cold: Milli(95_000), Balances: balances})
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	wei := func(a common.Address) *big.Int {
		t.Helper()
		v, err := d.Wei(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	avail := func(c *Customer) *big.Int {
		t.Helper()
		v, err := AvailableWei(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	nonce := func() *big.Int {
		t.Helper()
		n, err := safe.Nonce(ctx, d.C, d.Hot)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	eq := func(what string, got, want *big.Int) {
		t.Helper()
		if got.Cmp(want) != 0 {
			t.Errorf("%s = %s wei; want %s", what, got, want)
		}
	}
	for i, c := range d.Customers {
		eq(fmt.Sprintf("customer %d's balance at the start", i+1), avail(c), balances[i])
		if err := d.WaitCoolDown(ctx, c); err != nil {
			t.Fatal(err)
		}
	}

	// The co-signer refuses to start when a pinned Safe is not as pinned
	// on its node: the cold Safe pinned as the hot one (its key is no
	// owner there).
	if err := d.Cosigner.Stop(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(d.policyFile())
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(good), `"address": "`+d.Hot.Hex()+`"`, `"address": "`+d.Cold.Hex()+`"`, 1)
	if bad == string(good) {
		t.Fatal("the policy names no hot Safe to replace")
	}
	if err := os.WriteFile(d.policyFile(), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Cosigner.Start(ctx); err == nil || !strings.Contains(err.Error(), "not starting") {
		t.Fatalf("the co-signer with the cold Safe pinned as hot: %v", err)
	}
	if err := os.WriteFile(d.policyFile(), good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Cosigner.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// The co-signer found the journal's Safe wallets pinned on its host.
	if err := d.WaitCosignerCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := d.CosignerStatus(); err != nil || len(st.Disagreements) != 0 {
		t.Fatalf("the co-signer's disagreements with the journal: %v, %v", st.Disagreements, err)
	}

	// 1. A withdrawal: requested, executed, confirmed by the signer.
	c1, amount := d.Customers[0], Milli(300)
	hot0, cold0, payee0, n0 := wei(d.Hot), wei(d.Cold), wei(d.Payees[0]), nonce()
	w, err := c1.WithdrawAsset(ctx, "ETH", "eth-1", d.Payees[0].Hex(), amount.Uint64())
	if err != nil || w.Status != string(withdraw.StatusQueued) {
		t.Fatalf("withdrawal: %+v, %v", w, err)
	}
	if _, err := d.WaitWithdrawal(ctx, w.ID, withdraw.StatusDone); err != nil {
		t.Fatal(err)
	}
	eq("the payee's gain", new(big.Int).Sub(wei(d.Payees[0]), payee0), amount)
	eq("the hot Safe's loss", new(big.Int).Sub(hot0, wei(d.Hot)), amount)
	eq("customer 1's balance", avail(c1), new(big.Int).Sub(balances[0], amount))
	eq("the hot Safe's nonce", nonce(), new(big.Int).Add(n0, big.NewInt(1)))

	// 2. A withdrawal that reverts on chain: failed by the signer.
	c3 := d.Customers[2]
	hot1, n1 := wei(d.Hot), nonce()
	w2, err := c3.WithdrawAsset(ctx, "ETH", "eth-2", d.Reverter.Hex(), Milli(100).Uint64())
	if err != nil || w2.Status != string(withdraw.StatusQueued) {
		t.Fatalf("withdrawal to the reverter: %+v, %v", w2, err)
	}
	if got, err := d.WaitWithdrawal(ctx, w2.ID, withdraw.StatusFailed); err != nil || !strings.Contains(got.Reason, "reverted") {
		t.Fatalf("the reverted withdrawal: %+v, %v", got, err)
	}
	eq("customer 3's balance after the revert", avail(c3), balances[2])
	eq("the hot Safe after the revert", wei(d.Hot), hot1)
	eq("the hot Safe's nonce after the revert", nonce(), n1)

	// 3. The watcher, then the drain by two leaked owner keys.
	if err := d.Watcher.Start(ctx); err != nil {
		t.Fatal(err)
	}
	k1, err := d.LeakedKey(0) // the hot signer's key file
	if err != nil {
		t.Fatal(err)
	}
	kb, err := d.LeakedKey(2) // the offline backup's
	if err != nil {
		t.Fatal(err)
	}
	attacker, err := d.Eth.NewKey(ctx, Milli(1_000))
	if err != nil {
		t.Fatal(err)
	}
	thief := common.HexToAddress("0x7e1ef000000000000000000000000000000000ba")
	hotBefore, coldBefore := wei(d.Hot), wei(d.Cold)
	tx := safe.Transfer(thief, hotBefore, nonce())
	h, err := tx.Hash(d.Contracts.ChainID, d.Hot)
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := safe.Sign(h, k1)
	s2, _ := safe.Sign(h, kb)
	sigs, err := safe.EncodeSignatures(h, []safe.Signature{s1, s2})
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.Contracts.Exec(ctx, d.C, attacker, d.Hot, tx, sigs, 0)
	if err != nil {
		t.Fatal(err)
	}
	took := wei(thief)
	eq("the attacker's take", took, hotBefore)
	eq("the cold Safe after the drain", wei(d.Cold), coldBefore)
	eq("the cold Safe through the test", wei(d.Cold), cold0)

	// The watcher process halts ETH in the core and in the co-signer.
	if err := d.wait(ctx, "ETH withdrawals halted in the core", func() (bool, error) {
		st, err := d.Operator.Status(ctx)
		if err != nil {
			return false, err
		}
		for _, hv := range st.Halts {
			if hv.Asset == "ETH" && hv.Switch == "withdraw" {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.wait(ctx, "the co-signer halted on ETH", func() (bool, error) {
		st, err := d.CosignerStatus()
		if err != nil {
			return false, err
		}
		for _, hv := range st.Halts {
			if hv.Asset == "ETH" {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}

	// A withdrawal after the halt is refused.
	c2 := d.Customers[1]
	w3, err := c2.WithdrawAsset(ctx, "ETH", "eth-3", d.Payees[1].Hex(), Milli(100).Uint64())
	if err == nil && w3.Status == string(withdraw.StatusQueued) {
		t.Fatalf("a withdrawal after the halt is queued: %+v", w3)
	}
	t.Logf("a withdrawal after the halt: %v (status %q, %s)", err, w3.Status, w3.Reason)
	eq("customer 2's balance after the refused withdrawal", avail(c2), balances[1])

	// The core's journal, read with the core stopped: one incident, of the
	// drain, with what it took; the hot Safe's ledger account against its
	// chain balance before the drain.
	if err := d.Signer.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := d.Watcher.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := d.Core.Stop(); err != nil {
		t.Fatal(err)
	}
	c, err := core.Open(ctx, core.Config{Dir: d.CoreDir, SecretsDir: d.SecretsDir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var hotLedger ledger.Amount
	var incidents []string
	var loss uint64
	var named bool
	c.Read(func(s *core.State) {
		if a, ok := s.Ledger.Account(ledger.AccountKey{Owner: ownerEthHot, Asset: ETH.ID, Kind: ledger.KindWallet}); ok {
			hotLedger = a.Balance()
		}
		for _, in := range s.Incidents.List() {
			incidents = append(incidents, in.ID+" ("+in.Detector+")")
			loss = in.Loss
		}
		named = s.Incidents.Names(h.Hex())
	})
	eq("the hot Safe's ledger account against its chain balance before the drain", amountWei(hotLedger), hotBefore)
	if len(incidents) != 1 || !named || new(big.Int).SetUint64(loss).Cmp(took) != 0 {
		t.Fatalf("incidents %v (the drain's SafeTx named: %v), loss %d wei; want one, of the drain, %s wei", incidents, named, loss, took)
	}
	total := new(big.Int).Add(hotBefore, coldBefore)
	bps := new(big.Int).Div(new(big.Int).Mul(took, big.NewInt(10_000)), total)
	t.Logf("drain by two leaked hot owner keys: the attacker took %s wei, the hot Safe's whole balance, %s basis points of the %s wei held (the hot share), in one execution of %d gas; the cold Safe's %s wei did not move; the watcher process halted ETH in the core (incident %s) and in the co-signer",
		took, bps, total, r.GasUsed, coldBefore, incidents[0])
}
