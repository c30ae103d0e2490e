package watch

import (
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/chain"
	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/chain/eth/safe/safetest"
	"kinko/internal/chain/ethchain"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
)

// TestTokenReconOnDevnet: a listed token (the Safe package's ERC20Token,
// TT) deposited at customer 1's and 2's deposit Safes is credited by the
// token watcher that EtherWatch runs, and the token reconciliation's
// difference is 0 at every block: at the watchers' depth (the one
// EtherWatch makes), at depth 1 (the deposits seen and not yet credited
// in flight) and at depth 6 (the deposits credited above the block in
// flight). A sweep of customer 1's TT into the cold Safe signed by two
// cold owners keeps it 0. Then thieves of two cold keys move customer
// 2's TT out of its deposit Safe, with no execution watcher to see it:
// the token reconciliation finds exactly the amount taken at the block of
// the theft, opens mismatch-TT-<cold wallet> and halts TT's and ETH's
// withdrawals.
func TestTokenReconOnDevnet(t *testing.T) {
	w := newEthWorld(t, milliETH(1_000))
	cold := w.safe(t, w.coldKeys, sweepColdSalt, milliETH(1_000))
	w.book(t, ewCold, w.customer(3), milliETH(1_000))
	issuer, err := w.n.NewKey(w.ctx, milliETH(1_000))
	if err != nil {
		t.Fatal(err)
	}
	token, err := safetest.DeployERC20(w.ctx, w.c, issuer)
	if err != nil {
		t.Fatal(err)
	}
	chainID := w.c.ChainID().Uint64()
	w.submit(t, time.Now(), core.CreateAssets{Assets: []ledger.Asset{{ID: ttAsset, Code: "TT", Decimals: 18, Class: ledger.ClassChain}}})
	safes, err := MatchWallets(w.ctx, w.k, w.c, ethAsset, []WatchedSafe{{Name: "hot-eth", Address: w.hot, Kind: custody.HotCustomer},
		{Name: "cold-eth", Address: cold, Kind: custody.ColdCustomer}})
	if err != nil {
		t.Fatal(err)
	}
	for c := ledger.OwnerID(1); c <= 2; c++ {
		w.submit(t, time.Now(), core.AssignAddress{Wallet: ewCold, Customer: c})
	}
	tip, err := w.c.BlockNumber(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	x, err := NewEthExec(w.k, w.c, EthExecConfig{Asset: ethAsset, Safes: safes, MultiSend: w.d.MultiSendCallOnly, StartBlock: tip + 1})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewEthRecon(w.k, ethchain.New(w.c, "", nil), w.c, w.art, EthReconConfig{Asset: ethAsset, ChainID: chainID, Confirmations: 3, StartBlock: tip, Safes: safes})
	if err != nil {
		t.Fatal(err)
	}
	tokens := NewTokenDeposits(w.k, w.art, func(contract string) chain.Backend {
		return ethchain.New(w.c, "", []common.Address{common.HexToAddress(contract)})
	}, EtherConfig{ChainID: chainID, Confirmations: 3})
	ew := &EtherWatch{Exec: x, Tokens: tokens, Recon: r}
	near, far := NewTokenRecon(r, tokens, TokenReconConfig{Confirmations: 1}), NewTokenRecon(r, tokens, TokenReconConfig{Confirmations: 6})
	var inFlight, creditedAbove bool
	step := func(what string, wantDiff int64) {
		t.Helper()
		if err := ew.Step(w.ctx); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		for _, tr := range []*TokenRecon{ew.TokenRecon, near, far} {
			if tr == nil {
				continue
			}
			if err := tr.Step(w.ctx); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			bs, _ := tr.Balances(ttAsset)
			for _, b := range bs {
				if d := b.Difference(); d.Sign() != 0 && (b.Wallet != ewCold || d.Int64() != wantDiff) {
					t.Fatalf("%s: wallet %d's TT differs by %s at block %d: %+v", what, b.Wallet, d, b.Block, b)
				}
				inFlight = inFlight || !b.Deposits.IsZero()
				creditedAbove = creditedAbove || !b.Credited.IsZero()
			}
		}
		if _, err := w.n.Mine(w.ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		step("the start", 0)
	}
	// Listed while the watch runs.
	if err := submit(t, w.k, w.team.RegisterTokens(time.Now(), custody.Token{Asset: ttAsset, ChainID: chainID, Contract: token.Hex()})...); err != nil {
		t.Fatal(err)
	}
	step("listed", 0)
	coldInit, _ := w.d.Initializer(safe.Config{Owners: safetest.Owners(w.coldKeys...), Threshold: 2})
	dep0, dep1 := w.d.Predictor(coldInit).AddressIndex(0), w.d.Predictor(coldInit).AddressIndex(1)
	amount, stolen := big.NewInt(123_456_789), big.NewInt(1_000)
	for _, p := range []struct {
		to  common.Address
		amt *big.Int
	}{{dep0, amount}, {dep1, stolen}} {
		if _, err := w.c.Send(w.ctx, issuer, eth.Tx{To: &token, Data: safetest.TransferCall(p.to, p.amt), Gas: 100_000}); err != nil {
			t.Fatal(err)
		}
		step("a deposit", 0)
	}
	for range 8 {
		step("crediting", 0)
	}
	if b1, b2 := tokenBalance(w.k, 1, ttAsset), tokenBalance(w.k, 2, ttAsset); b1 != ledger.AmountOf(123_456_789) || b2 != ledger.AmountOf(1_000) {
		t.Fatalf("customers' TT %s %s", b1, b2)
	}
	if !inFlight || !creditedAbove {
		t.Fatalf("deposits seen in flight %v, credited above the block %v: the in-flight terms were not exercised", inFlight, creditedAbove)
	}
	// The journaled sweep of customer 1's TT into the cold Safe.
	amt, _ := ledgerAmount(amount)
	call := func(to common.Address, a *big.Int) *safe.SafeTx {
		return &safe.SafeTx{To: token, Value: new(big.Int), Data: core.TokenTransferData(to, a), SafeTxGas: safe.SafeTxGasFor(1), BaseGas: new(big.Int), GasPrice: new(big.Int), Nonce: new(big.Int)}
	}
	good := w.safeCeremony(t, "sweep-tt-d0", custody.Sweep, ewCold, dep0, call(cold, amount), custody.SafePayment{Wallet: ewCold, Address: cold.Hex(), Amount: amt})
	good.Deposit = &custody.DepositSweep{Index: 0, SafeSalt: sweepColdSalt, Asset: ttAsset}
	w.submit(t, time.Now(), core.PrepareCeremony{Ceremony: good})
	if _, _, err := w.d.CreateProxy(w.ctx, w.c, w.gas, coldInit, big.NewInt(0)); err != nil {
		t.Fatal(err)
	}
	step("deployed", 0)
	if rc := w.send(t, w.execOn(t, dep0, call(cold, amount), w.coldKeys[1], w.coldKeys[2])); rc.Status != 1 {
		t.Fatal("the token sweep reverted")
	}
	for range 8 {
		step("swept", 0)
	}
	w.k.Read(func(s *core.State) {
		if cer, _ := s.Custody.Ceremony("sweep-tt-d0"); cer.State != custody.CeremonyConfirmed {
			t.Fatalf("the token sweep is %s", cer.State)
		}
		if len(s.Incidents.List()) != 0 {
			t.Fatalf("incidents: %+v", s.Incidents.List())
		}
	})
	if w.haltedETH() {
		t.Fatal("ETH halted before the theft")
	}
	// The thieves of two cold keys take customer 2's TT; the execution
	// watcher is not running, nor the reconciliations at other depths.
	ew.Exec, near, far = nil, nil, nil
	if _, _, err := w.d.CreateProxy(w.ctx, w.c, w.gas, coldInit, big.NewInt(1)); err != nil {
		t.Fatal(err)
	}
	thief := common.HexToAddress("0xbad0000000000000000000000000000000000bad")
	rc := w.send(t, w.execOn(t, dep1, call(thief, stolen), w.coldKeys[0], w.coldKeys[1]))
	if rc.Status != 1 {
		t.Fatal("the theft reverted")
	}
	theftAt := rc.BlockNumber.Uint64()
	halted := func() (tt, eth bool) {
		w.k.Read(func(s *core.State) {
			tt = s.Controls.Allowed(ttAsset, controls.Withdraw) != nil
			eth = s.Controls.Allowed(ethAsset, controls.Withdraw) != nil
		})
		return
	}
	for range 10 {
		_, at := ew.TokenRecon.Balances(ttAsset)
		if at >= theftAt {
			break
		}
		if tt, e := halted(); tt || e {
			t.Fatalf("halted (TT %v, ETH %v) before the reconciled block reached the theft's %d (at %d)", tt, e, theftAt, at)
		}
		step("the theft", stolen.Int64()) // 0 below the theft's block, exactly the amount at it
	}
	bs, at := ew.TokenRecon.Balances(ttAsset)
	if at < theftAt {
		t.Fatalf("the token reconciliation never reached the theft's block %d", theftAt)
	}
	var found bool
	for _, b := range bs {
		if b.Wallet == ewCold {
			found = true
			if d := b.Difference(); d.Cmp(stolen) != 0 {
				t.Fatalf("the cold wallet's TT differs by %s at block %d; want exactly the %s taken", d, b.Block, stolen)
			}
		}
	}
	if !found {
		t.Fatal("the cold wallet not reconciled")
	}
	if tt, e := halted(); !tt || !e {
		t.Fatalf("after the theft: TT halted %v, ETH halted %v", tt, e)
	}
	w.k.Read(func(s *core.State) {
		var ids []string
		for _, in := range s.Incidents.List() {
			ids = append(ids, in.ID)
		}
		if len(ids) == 0 || !containsID(ids, "mismatch-TT-12") {
			t.Fatalf("incidents %v; want mismatch-TT-12", ids)
		}
	})
}

func containsID(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
