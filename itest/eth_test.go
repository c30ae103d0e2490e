package itest

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/core"
	"kinko/internal/custody"
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
//     fails on chain (ExecutionFailure: the call failed and used the
//     Safe's nonce) and the signer process fails it through the same
//     route: the customer's balance comes back exactly. The customer then
//     switches the contract to accept ether and sends the failed
//     execution's calldata, with both owners' signatures, to the Safe
//     again: it reverts, and nothing is paid twice.
//  3. The watcher process starts and reads both Safes' executions from
//     block 1 (the journaled one halts nothing). A payment on chain to
//     customer 2's counterfactual deposit address (handed out by the API,
//     no code there) is credited by the watcher after its confirmations,
//     exactly in wei, once; customer 2 sells one ether on the ETH/JPY book
//     and customer 1 buys it (ether and yen exact, the taker's fee in
//     yen); customer 1 withdraws the ether bought through the signer and
//     co-signer processes, with the watcher following: nothing halts.
//     A refill of 1 ETH from the cold Safe to the hot one is journaled by
//     `kinko ceremony safe` (an operator signed in to the core), signed by
//     two of the cold Safe's offline owners and executed: the watcher
//     process explains it and journals its confirmation (nothing halts;
//     read at the end, the ceremony is confirmed and the hot wallet's
//     ledger account equals its chain balance, the refill included).
//  4. An attacker with two leaked hot owner keys (the hot signer's key
//     file and the offline backup's) drains the hot Safe straight on the
//     node, never asking the co-signer, first at a fee cap below the base
//     fee so that the drain stays in the node's pool: the watcher process,
//     subscribed to the pool (--eth-ws), halts ETH in the core and in the
//     co-signer while the hot Safe is still whole. The attacker then pays
//     the going fee and the drain is mined: what the attacker got is
//     measured against the hot Safe's share, and a withdrawal after the
//     halt is refused.
//  5. An operator journals a ceremony naming an attacker's address as the
//     hot wallet's; two cold owners sign it and it is executed: the
//     watcher process opens an incident naming its SafeTx and never
//     confirms it, and the reconciliation process finds the hot wallet's
//     ledger account and Safe apart.
func TestEthDeployment(t *testing.T) {
	balances := []*big.Int{Milli(1_500), Milli(1_500), Milli(2_000)}
	d := DeployEth(t, EthOptions{Hot: Milli(5_000), Cold: Milli(95_000), Balances: balances, Yen: []uint64{1_000_000}})
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
	if got, err := d.WaitWithdrawal(ctx, w2.ID, withdraw.StatusFailed); err != nil || !strings.Contains(got.Reason, "ExecutionFailure") {
		t.Fatalf("the reverted withdrawal: %+v, %v", got, err)
	}
	eq("customer 3's balance after the revert", avail(c3), balances[2])
	eq("the hot Safe after the revert", wei(d.Hot), hot1)
	eq("the hot Safe's nonce after the failed call (used: the SafeTx is dead)", nonce(), new(big.Int).Add(n1, big.NewInt(1)))

	// Customer 3, refunded, switches the contract to accept ether and
	// sends the failed execution's calldata (on chain for anyone to read:
	// the SafeTx and both owners' signatures) to the hot Safe again. Had
	// the failure reverted the whole transaction, the nonce would still
	// be the SafeTx's and this would pay the withdrawal a second time.
	failed := lastTxTo(ctx, t, d, d.Hot)
	customer3, err := d.Eth.NewKey(ctx, Milli(100))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.C.Send(ctx, customer3, eth.Tx{To: &d.Reverter, Data: []byte{1}, Gas: 60_000}); err != nil {
		t.Fatalf("switching the payee contract to accept ether: %v", err)
	}
	if _, err := d.C.Send(ctx, customer3, eth.Tx{To: &d.Reverter, Value: big.NewInt(1), Gas: 60_000}); err != nil {
		t.Fatalf("the payee contract refuses ether after the switch: %v", err)
	}
	replay, err := d.C.Send(ctx, customer3, eth.Tx{To: &d.Hot, Data: failed.Data(), Gas: 500_000})
	if !errors.Is(err, eth.ErrReverted) {
		t.Errorf("the failed SafeTx sent again: receipt %+v, %v; want it reverted", replay, err)
	}
	eq("the payee contract after the failed SafeTx was sent again (the attacker's gain beyond the 1 wei test)", wei(d.Reverter), big.NewInt(1))
	eq("the hot Safe after the failed SafeTx was sent again", wei(d.Hot), hot1)
	eq("customer 3's balance after the replay", avail(c3), balances[2])

	// 3. The watcher. A deposit on chain to customer 2's counterfactual
	// address, credited by the watcher process; a trade on the order book;
	// the ether bought withdrawn through both signers.
	if err := d.Watcher.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c2 := d.Customers[1]
	addr, err := c2.DepositAddressOf(ctx, "ETH")
	if err != nil || !common.IsHexAddress(addr) {
		t.Fatalf("customer 2's ether deposit address %q: %v", addr, err)
	}
	if code, err := d.C.Code(ctx, common.HexToAddress(addr)); err != nil || len(code) != 0 {
		t.Fatalf("the deposit address holds %d bytes of code (%v); want none: counterfactual", len(code), err)
	}
	payer, err := d.Eth.NewKey(ctx, Milli(2_000))
	if err != nil {
		t.Fatal(err)
	}
	deposit := new(big.Int).Add(Milli(800), big.NewInt(123)) // 0.8 ETH and 123 wei
	depositAddr := common.HexToAddress(addr)
	dr, err := d.C.Send(ctx, payer, eth.Tx{To: &depositAddr, Value: deposit, Gas: 21_000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Eth.Mine(ctx, 2); err != nil {
		t.Fatal(err)
	}
	c2Before := new(big.Int).Set(balances[1])
	c2Now := new(big.Int).Add(c2Before, deposit)
	if err := d.wait(ctx, "customer 2's deposit credited", func() (bool, error) {
		v, err := AvailableWei(ctx, c2)
		return err == nil && v.Cmp(c2Now) == 0, err
	}); err != nil {
		t.Fatalf("%v: customer 2 has %s wei", err, avail(c2))
	}
	deps, err := c2.Deposits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := dr.TxHash.Hex() + ":0"
	if len(deps) != 1 || !strings.EqualFold(deps[0].Outpoint, want) || amountWei(deps[0].Amount).Cmp(deposit) != 0 || deps[0].State != "credited" {
		t.Fatalf("customer 2's deposits %+v; want one, %s, %s wei, credited", deps, want, deposit)
	}
	eq("the deposit address on chain", wei(common.HexToAddress(addr)), deposit)

	// Customer 2 sells one ether at the index; customer 1 buys it.
	yen1, _, err := c1.JPY(ctx)
	if err != nil {
		t.Fatal(err)
	}
	yen2, _, err := c2.JPY(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c1Before := avail(c1)
	const gwei = 1_000_000_000 // one ether in the market's quantity unit
	if _, err := c2.Order(ctx, EthMarket.Code, "sell", EthIndexPrice, gwei); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Order(ctx, EthMarket.Code, "buy", EthIndexPrice, gwei); err != nil {
		t.Fatal(err)
	}
	one := Milli(1_000)
	eq("customer 1's ether after buying one", avail(c1), new(big.Int).Add(c1Before, one))
	c2Now.Sub(c2Now, one)
	eq("customer 2's ether after selling one", avail(c2), c2Now)
	fee := uint64(EthIndexPrice) * uint64(EthMarket.TakerFeeBps) / 10_000
	if y, _, err := c1.JPY(ctx); err != nil || y != yen1-EthIndexPrice-fee {
		t.Errorf("customer 1's yen after buying = %d (%v); want %d - %d - %d", y, err, yen1, EthIndexPrice, fee)
	}
	if y, _, err := c2.JPY(ctx); err != nil || y != yen2+EthIndexPrice {
		t.Errorf("customer 2's yen after selling = %d (%v); want %d + %d", y, err, yen2, EthIndexPrice)
	}

	// Customer 1 withdraws the ether bought: batched, co-signed,
	// executed; the watcher process, following the hot Safe, halts
	// nothing for this journaled execution.
	hot2, payee2, n2 := wei(d.Hot), wei(d.Payees[0]), nonce()
	w4, err := c1.WithdrawAsset(ctx, "ETH", "eth-4", d.Payees[0].Hex(), one.Uint64())
	if err != nil || w4.Status != string(withdraw.StatusQueued) {
		t.Fatalf("the withdrawal of the ether bought: %+v, %v", w4, err)
	}
	if _, err := d.WaitWithdrawal(ctx, w4.ID, withdraw.StatusDone); err != nil {
		t.Fatal(err)
	}
	eq("the payee's gain from the ether bought", new(big.Int).Sub(wei(d.Payees[0]), payee2), one)
	eq("the hot Safe's loss for the ether bought", new(big.Int).Sub(hot2, wei(d.Hot)), one)
	eq("customer 1's ether after withdrawing it", avail(c1), c1Before)
	eq("the hot Safe's nonce after the second withdrawal", nonce(), new(big.Int).Add(n2, big.NewInt(1)))

	// A refill of the hot Safe from the cold Safe, as operators make it:
	// journaled in the core by `kinko ceremony safe` before anyone signs,
	// signed by two of the cold Safe's offline owners, executed. The
	// watcher process explains it and journals its confirmation: nothing
	// halts, and the ledger moves the ether from the cold wallet's
	// account to the hot wallet's (checked at the end against the chain).
	refill := Milli(1_000)
	req := filepath.Join(d.Root, "refill-eth-1.json")
	out, err := d.Kinko(ctx, d.Root, append([]string{"ceremony", "safe", "--eth-rpc", d.Eth.HTTPURL(), "--safe", d.Cold.Hex(), "--purpose", "refill",
		"--id", "refill-eth-1", "--out", req, "--wallet", strconv.Itoa(int(WalletEthCold)), "--pay", d.Hot.Hex() + "=1", "--dest", d.Hot.Hex() + "=" + strconv.Itoa(int(WalletEthHot))},
		append(d.coreFlags(), "--operator", OperatorName, "--key", d.OperatorKey(OperatorName))...)...)
	if err != nil || !strings.Contains(out, "journaled by "+OperatorName) {
		t.Fatalf("kinko ceremony safe: %v\n%s", err, out)
	}
	coldNonce, err := safe.Nonce(ctx, d.C, d.Cold)
	if err != nil {
		t.Fatal(err)
	}
	rtx := safe.Transfer(d.Hot, refill, coldNonce)
	rh, renc := d.signed(t, d.Cold, rtx, d.coldKeys[:2]...)
	hot3, cold3 := wei(d.Hot), wei(d.Cold)
	row, err := d.Operator.ReservesOf(ctx, "ETH")
	if err != nil {
		t.Fatal(err)
	}
	hotLedger3 := row.HotCustomerLedger.Big()
	if _, err := d.Contracts.Exec(ctx, d.C, payer, d.Cold, rtx, renc, 0); err != nil {
		t.Fatalf("the refill's execution: %v", err)
	}
	eq("the hot Safe after the refill", wei(d.Hot), new(big.Int).Add(hot3, refill))
	eq("the cold Safe after the refill", wei(d.Cold), new(big.Int).Sub(cold3, refill))
	if _, err := d.Eth.Mine(ctx, 2); err != nil {
		t.Fatal(err)
	}
	// The watcher process confirms the refill from its block: the hot
	// wallet's ledger account gains it.
	if err := d.wait(ctx, "the refill confirmed by the watcher", func() (bool, error) {
		row, err := d.Operator.ReservesOf(ctx, "ETH")
		return err == nil && row.HotCustomerLedger.Big().Cmp(new(big.Int).Add(hotLedger3, refill)) == 0, err
	}); err != nil {
		t.Fatal(err)
	}
	if st, err := d.Operator.Status(ctx); err != nil || len(st.Halts) != 0 {
		t.Fatalf("halts after journaled withdrawals, a deposit and a refill: %+v, %v", st.Halts, err)
	}

	// 4. The drain by two leaked owner keys.
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
	h, sigs := d.signed(t, d.Hot, tx, k1, kb)
	// First sent at a fee cap of 1 wei, below the base fee: a valid
	// transaction the node keeps in its pool and no block can hold. The
	// watcher process, subscribed to the node's pending transactions
	// (--eth-ws), must halt ETH in the core and in the co-signer from the
	// pool alone, with the hot Safe still whole.
	data, err := safe.ExecCalldata(tx, sigs)
	if err != nil {
		t.Fatal(err)
	}
	probe, err := d.C.Sign(ctx, attacker, eth.Tx{To: &d.Hot, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	signAt := func(tip, feeCap int64) *types.Transaction {
		return types.MustSignNewTx(attacker, types.LatestSignerForChainID(d.Contracts.ChainID), &types.DynamicFeeTx{ChainID: d.Contracts.ChainID,
			Nonce: probe.Nonce(), GasTipCap: big.NewInt(tip), GasFeeCap: big.NewInt(feeCap), Gas: probe.Gas(), To: &d.Hot, Data: data})
	}
	stuck := signAt(1, 1)
	if err := d.C.SendSigned(ctx, stuck); err != nil {
		t.Fatal(err)
	}
	haltedIn := func(what string, halts func() ([]string, error)) {
		t.Helper()
		if err := d.wait(ctx, what, func() (bool, error) {
			hs, err := halts()
			return slices.Contains(hs, "ETH"), err
		}); err != nil {
			t.Fatal(err)
		}
	}
	haltedIn("ETH withdrawals halted in the core", func() ([]string, error) {
		st, err := d.Operator.Status(ctx)
		var out []string
		for _, hv := range st.Halts {
			if hv.Switch == "withdraw" {
				out = append(out, hv.Asset)
			}
		}
		return out, err
	})
	haltedIn("the co-signer halted on ETH", func() ([]string, error) {
		st, err := d.CosignerStatus()
		var out []string
		for _, hv := range st.Halts {
			out = append(out, hv.Asset)
		}
		return out, err
	})
	if rc, err := d.C.Eth().TransactionReceipt(ctx, stuck.Hash()); err == nil || rc != nil {
		t.Fatalf("the drain below the base fee was mined before the halt was read: %+v", rc)
	}
	eq("the hot Safe while the drain is only in the node's pool", wei(d.Hot), hotBefore)

	// Then the attacker replaces it at the going fee: mined at once.
	fast := signAt(2e9, 100e9)
	if err := d.C.SendSigned(ctx, fast); err != nil {
		t.Fatal(err)
	}
	r, err := d.C.WaitMined(ctx, fast.Hash())
	if err != nil {
		t.Fatal(err)
	}
	took := wei(thief)
	eq("the attacker's take", took, hotBefore)
	eq("the cold Safe after the drain", wei(d.Cold), coldBefore)
	eq("the cold Safe through the test (less the refill)", wei(d.Cold), new(big.Int).Sub(cold0, refill))

	// A withdrawal after the halt is refused.
	w3, err := c2.WithdrawAsset(ctx, "ETH", "eth-3", d.Payees[1].Hex(), Milli(100).Uint64())
	if err == nil && w3.Status == string(withdraw.StatusQueued) {
		t.Fatalf("a withdrawal after the halt is queued: %+v", w3)
	}
	t.Logf("a withdrawal after the halt: %v (status %q, %s)", err, w3.Status, w3.Reason)
	eq("customer 2's balance after the refused withdrawal", avail(c2), c2Now)

	// 5. An operator's lie: a ceremony journaled by `kinko ceremony safe`
	// that names an attacker's address as the hot wallet's, signed by two
	// cold owners (fooled, or their keys stolen) and executed. The core
	// cannot tell (it has no chain); the watcher process, which pins the
	// hot wallet's Safe, does not explain it: it opens an incident naming
	// the SafeTx, and the ceremony stays prepared.
	liar := common.HexToAddress("0xbad000000000000000000000000000000000cafe")
	lieReq := filepath.Join(d.Root, "refill-eth-2.json")
	out, err = d.Kinko(ctx, d.Root, append([]string{"ceremony", "safe", "--eth-rpc", d.Eth.HTTPURL(), "--safe", d.Cold.Hex(), "--purpose", "refill",
		"--id", "refill-eth-2", "--out", lieReq, "--wallet", strconv.Itoa(int(WalletEthCold)), "--pay", liar.Hex() + "=0.5", "--dest", liar.Hex() + "=" + strconv.Itoa(int(WalletEthHot))},
		append(d.coreFlags(), "--operator", OperatorName, "--key", d.OperatorKey(OperatorName))...)...)
	if err != nil || !strings.Contains(out, "journaled by "+OperatorName) {
		t.Fatalf("kinko ceremony safe naming the attacker's address as the hot wallet's: %v\n%s", err, out)
	}
	lieNonce, err := safe.Nonce(ctx, d.C, d.Cold)
	if err != nil {
		t.Fatal(err)
	}
	lie := safe.Transfer(liar, Milli(500), lieNonce)
	lh, lenc := d.signed(t, d.Cold, lie, d.coldKeys[:2]...)
	if _, err := d.Contracts.Exec(ctx, d.C, payer, d.Cold, lie, lenc, 0); err != nil {
		t.Fatalf("the lying ceremony's execution: %v", err)
	}
	eq("the attacker's take by the lying ceremony", wei(liar), Milli(500))
	// Two blocks over it, so that the reconciliation (two confirmations)
	// has read the drain's block and the lie's: the hot wallet's ledger
	// account differs from its Safe by what the drain took (and the lie
	// journaled as paid to it), an incident of its own.
	if _, err := d.Eth.Mine(ctx, 2); err != nil {
		t.Fatal(err)
	}
	recon := fmt.Sprintf("mismatch-ETH-%d", WalletEthHot)
	if err := d.wait(ctx, "an incident for the lying ceremony, and the reconciliation's for the hot wallet", func() (bool, error) {
		ins, err := d.Operator.Incidents(ctx)
		named, short := false, false
		for _, in := range ins {
			named = named || slices.Contains(in.TxIDs, lh.Hex())
			short = short || in.ID == recon
		}
		return named && short, err
	}); err != nil {
		t.Fatal(err)
	}

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
	var loss withdraw.Amount
	var named, fromPool bool
	var refilled custody.Ceremony
	var lied custody.Ceremony
	var lieNamed bool
	var reconWhy string
	c.Read(func(s *core.State) {
		refilled, _ = s.Custody.Ceremony("refill-eth-1")
		lied, _ = s.Custody.Ceremony("refill-eth-2")
		lieNamed = s.Incidents.Names(lh.Hex())
		if a, ok := s.Ledger.Account(ledger.AccountKey{Owner: ownerEthHot, Asset: ETH.ID, Kind: ledger.KindWallet}); ok {
			hotLedger = a.Balance()
		}
		for _, in := range s.Incidents.List() {
			if slices.Contains(in.TxIDs, lh.Hex()) {
				continue // the lying ceremony's (below)
			}
			if in.ID == recon {
				reconWhy = in.Reason // the drain's, seen by the reconciliation (below)
				continue
			}
			incidents = append(incidents, in.ID+" ("+in.Detector+")")
			loss = in.Loss
		}
		named = s.Incidents.Names(h.Hex())
		fromPool = s.Incidents.Names(stuck.Hash().Hex())
	})
	eq("the hot Safe's ledger account against its chain balance before the drain (the refill booked)", amountWei(hotLedger), hotBefore)
	if refilled.State != custody.CeremonyConfirmed || refilled.TxID != [32]byte(rh) {
		t.Errorf("the refill ceremony in the journal: %s, SafeTx %x; want confirmed, %s", refilled.State, refilled.TxID, rh)
	}
	if len(incidents) != 1 || !named || loss.Ledger().Big().Cmp(took) != 0 {
		t.Fatalf("incidents %v (the drain's SafeTx named: %v), loss %s wei; want one, of the drain, %s wei", incidents, named, loss, took)
	}
	if !lieNamed || lied.State != custody.CeremonyPrepared {
		t.Errorf("the lying ceremony: an incident names it %v, its state %s; want an incident, and prepared", lieNamed, lied.State)
	}
	if !strings.HasPrefix(reconWhy, fmt.Sprintf("wallet %d (hot-customer): ", WalletEthHot)) {
		t.Errorf("the reconciliation's incident for the hot wallet: %q", reconWhy)
	}
	t.Logf("the reconciliation process found the drain too: %s", reconWhy)
	if !fromPool {
		t.Errorf("the incident does not name the pending transaction %s the halt was read from", stuck.Hash())
	}
	total := new(big.Int).Add(hotBefore, coldBefore)
	bps := new(big.Int).Div(new(big.Int).Mul(took, big.NewInt(10_000)), total)
	t.Logf("drain by two leaked hot owner keys: the attacker took %s wei, the hot Safe's whole balance, %s basis points of the %s wei held (the hot share), in one execution of %d gas; the cold Safe's %s wei did not move; the watcher process halted ETH in the core (incident %s) and in the co-signer while the drain was in the node's pool, before any block held it",
		took, bps, total, r.GasUsed, coldBefore, incidents[0])
}

// signed returns the hash of tx for the Safe at a and the owners'
// signatures of it, encoded for execTransaction.
func (d *EthDeployment) signed(t *testing.T, a common.Address, tx *safe.SafeTx, owners ...*ecdsa.PrivateKey) (common.Hash, []byte) {
	t.Helper()
	h, err := tx.Hash(d.Contracts.ChainID, a)
	if err != nil {
		t.Fatal(err)
	}
	var sigs []safe.Signature
	for _, k := range owners {
		sg, err := safe.Sign(h, k)
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, sg)
	}
	enc, err := safe.EncodeSignatures(h, sigs)
	if err != nil {
		t.Fatal(err)
	}
	return h, enc
}

// lastTxTo returns the newest transaction sent to addr, from the node's
// blocks: what anyone reading the chain sees.
func lastTxTo(ctx context.Context, t *testing.T, d *EthDeployment, addr common.Address) *types.Transaction {
	t.Helper()
	tip, err := d.C.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for h := int64(tip); h > 0; h-- {
		b, err := d.C.Eth().BlockByNumber(ctx, big.NewInt(h))
		if err != nil {
			t.Fatal(err)
		}
		txs := b.Transactions()
		for i := len(txs) - 1; i >= 0; i-- {
			if to := txs[i].To(); to != nil && *to == addr {
				return txs[i]
			}
		}
	}
	t.Fatalf("no transaction to %s on chain", addr)
	return nil
}
