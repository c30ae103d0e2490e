package watch

import (
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/chain/eth/safe/safetest"
	"kinko/internal/chain/ethchain"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
)

// sweepColdSalt is the salt nonce of the cold wallet's own Safe in the
// sweep test (its deposit addresses are the salt nonces 0, 1, 2, …).
const sweepColdSalt = 1000

// TestDepositSweepOnDevnet: customer 1's deposit of 0.7 ETH + 5 wei to
// its counterfactual deposit Safe is credited by the deposit watcher,
// then swept into the cold wallet's own Safe by a ceremony journaled
// before anyone signs (bad sweeps refused first, nothing journaled), the
// deposit proxy deployed by the gas account and the SafeTx signed by two
// cold owners: the cold Safe gains exactly that, the deposit Safe holds
// 0, nothing halts, the ceremony is confirmed, no ledger account moves
// and the reconciliation finds no difference at any block. Then thieves
// of two cold keys execute a SafeTx of another deposit Safe paying
// themselves: the watcher halts ETH and an incident names it (the
// deposit Safes were not watched before: it moved nothing in the
// journal); one in the node's pool for a deposit Safe not yet deployed
// opens its incident before any block.
func TestDepositSweepOnDevnet(t *testing.T) {
	w := newEthWorld(t, milliETH(1_000))
	cold := w.safe(t, w.coldKeys, sweepColdSalt, milliETH(1_000))
	w.book(t, ewCold, w.customer(3), milliETH(1_000))
	safes, err := MatchWallets(w.ctx, w.k, w.c, ethAsset, []WatchedSafe{{Name: "hot-eth", Address: w.hot, Kind: custody.HotCustomer},
		{Name: "cold-eth", Address: cold, Kind: custody.ColdCustomer}})
	if err != nil {
		t.Fatal(err)
	}
	for c := ledger.OwnerID(1); c <= 3; c++ {
		w.submit(t, time.Now(), core.AssignAddress{Wallet: ewCold, Customer: c})
	}
	var dep [3]common.Address
	w.k.Read(func(s *core.State) {
		for i := range dep {
			if dep[i], err = core.DepositSafe(s, ewCold, uint64(i)); err != nil {
				t.Fatal(err)
			}
		}
		if c, _ := core.DepositSafe(s, ewCold, sweepColdSalt); c != cold {
			t.Fatalf("the cold Safe at salt %d is %s, derived %s", sweepColdSalt, cold, c)
		}
	})
	coldInit, err := w.d.Initializer(safe.Config{Owners: safetest.Owners(w.coldKeys...), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	if p := w.d.Predictor(coldInit).AddressIndex(0); p != dep[0] {
		t.Fatalf("the core derives deposit 0 at %s, the deployment's predictor at %s", dep[0], p)
	}
	tip, err := w.c.BlockNumber(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	chainID := w.c.ChainID().Uint64()
	deps, err := NewEtherDeposits(w.ctx, w.k, ethchain.New(w.c, "", nil), w.art, EtherConfig{Asset: ethAsset, ChainID: chainID, Confirmations: 3})
	if err != nil {
		t.Fatal(err)
	}
	x, err := NewEthExec(w.k, w.c, EthExecConfig{Asset: ethAsset, Safes: safes, MultiSend: w.d.MultiSendCallOnly, StartBlock: tip + 1})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewEthRecon(w.k, ethchain.New(w.c, "", nil), w.c, w.art, EthReconConfig{Asset: ethAsset, ChainID: chainID, Confirmations: 3,
		StartBlock: tip, Safes: safes, Deposits: deps})
	if err != nil {
		t.Fatal(err)
	}
	recon := func(what string) {
		t.Helper()
		if _, err := r.Step(w.ctx); err != nil {
			t.Fatalf("%s: reconciliation: %v", what, err)
		}
		bs, at := r.Balances()
		if len(bs) != 2 {
			t.Fatalf("%s: %d wallets reconciled", what, len(bs))
		}
		for _, b := range bs {
			if d := b.Difference(); d.Sign() != 0 {
				t.Fatalf("%s: wallet %d differs by %s wei at block %d: %+v", what, b.Wallet, d, at, b)
			}
		}
		if w.haltedETH() {
			t.Fatalf("%s: ETH halted", what)
		}
	}
	step := func(what string) {
		t.Helper()
		if err := deps.Step(w.ctx); err != nil {
			t.Fatalf("%s: deposits: %v", what, err)
		}
		if _, err := x.Step(w.ctx); err != nil {
			t.Fatalf("%s: executions: %v", what, err)
		}
		recon(what)
	}
	mine := func(n int) {
		t.Helper()
		if _, err := w.n.Mine(w.ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	mine(3)
	step("the start")

	// The deposits: 0.7 ETH + 5 wei from customer 1, 0.3 ETH from
	// customer 2, 0.1 ETH from customer 3, each credited at 3
	// confirmations.
	amount := new(big.Int).Add(milliETH(700), big.NewInt(5))
	before := w.customerBalance(1)
	payer, err := w.n.NewKey(w.ctx, milliETH(2_000))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []*big.Int{amount, milliETH(300), milliETH(100)} {
		if _, err := w.c.Send(w.ctx, payer, eth.Tx{To: &dep[i], Value: v}); err != nil {
			t.Fatal(err)
		}
		step("deposit sent")
	}
	for range 3 {
		mine(1)
		step("deposits confirming")
	}
	if d := new(big.Int).Sub(w.customerBalance(1), before); d.Cmp(amount) != 0 {
		t.Fatalf("customer 1 was credited %s wei; want %s", d, amount)
	}
	cold0, cust0 := w.walletBalance(ewCold), w.customerBalance(1)
	if want := new(big.Int).Add(milliETH(1_400), amount); cold0.Cmp(want) != 0 {
		t.Fatalf("the cold wallet's account holds %s wei; want %s", cold0, want)
	}

	amt, _ := ledgerAmount(amount)
	sweepTx := safe.Transfer(cold, amount, big.NewInt(0))
	sweep := func(id string, from common.Address, tx *safe.SafeTx, d custody.DepositSweep, pay custody.SafePayment) custody.Ceremony {
		c := w.safeCeremony(t, id, custody.Sweep, ewCold, from, tx, pay)
		c.Deposit = &d
		return c
	}
	toCold := custody.SafePayment{Wallet: ewCold, Address: cold.Hex(), Amount: amt}
	good := sweep("sweep-eth-d0", dep[0], sweepTx, custody.DepositSweep{Index: 0, SafeSalt: sweepColdSalt}, toCold)

	// Bad sweeps: each refused, nothing journaled.
	attacker := common.HexToAddress("0xbad0000000000000000000000000000000000bad")
	toAttacker := safe.Transfer(attacker, amount, big.NewInt(0))
	houseInit, _ := w.d.Initializer(safe.Config{Owners: safetest.Owners(w.houseKeys...), Threshold: 2})
	otherDeposit := w.d.Predictor(houseInit).AddressIndex(0)
	house := w.d.Predictor(houseInit).AddressIndex(1) // the house's Safe, at salt nonce 1
	five := w.d.Predictor(coldInit).AddressIndex(5)
	delegate, err := safe.Batch(attacker, []safe.Call{{To: cold, Value: amount}}, big.NewInt(0))
	if err != nil {
		t.Fatal(err)
	}
	delegate.Value = new(big.Int)
	half := new(big.Int).Rsh(amount, 1)
	split, err := safe.Batch(w.d.MultiSendCallOnly, []safe.Call{{To: cold, Value: half}, {To: cold, Value: new(big.Int).Sub(amount, half)}}, big.NewInt(0))
	if err != nil {
		t.Fatal(err)
	}
	split.Value = new(big.Int)
	half128, _ := ledgerAmount(half)
	rest128, _ := ledgerAmount(new(big.Int).Sub(amount, half))
	bads := map[string]custody.Ceremony{
		"a SafeTx paying the attacker, named as the cold Safe": sweep("bad", dep[0], toAttacker, custody.DepositSweep{Index: 0, SafeSalt: sweepColdSalt},
			custody.SafePayment{Wallet: ewCold, Address: attacker.Hex(), Amount: amt}),
		"a SafeTx paying the attacker, the payment the cold Safe": sweep("bad", dep[0], toAttacker, custody.DepositSweep{Index: 0, SafeSalt: sweepColdSalt}, toCold),
		"the cold Safe named at another salt nonce":               sweep("bad", dep[0], sweepTx, custody.DepositSweep{Index: 0, SafeSalt: 999}, toCold),
		"a deposit index never handed out":                        sweep("bad", five, safe.Transfer(cold, amount, big.NewInt(0)), custody.DepositSweep{Index: 5, SafeSalt: sweepColdSalt}, toCold),
		"another wallet's deposit Safe":                           sweep("bad", otherDeposit, sweepTx, custody.DepositSweep{Index: 0, SafeSalt: sweepColdSalt}, toCold),
		"the deposit Safe named as index 1":                       sweep("bad", dep[0], sweepTx, custody.DepositSweep{Index: 1, SafeSalt: sweepColdSalt}, toCold),
		"customers' coins to the house's wallet": sweep("bad", dep[0], safe.Transfer(house, amount, big.NewInt(0)), custody.DepositSweep{Index: 0, SafeSalt: 1},
			custody.SafePayment{Wallet: ewHouse, Address: house.Hex(), Amount: amt}),
		"a DELEGATECALL to a contract not the MultiSendCallOnly": sweep("bad", dep[0], delegate, custody.DepositSweep{Index: 0, SafeSalt: sweepColdSalt}, toCold),
		"the payment's amount not the SafeTx's":                  sweep("bad", dep[0], safe.Transfer(cold, milliETH(700), big.NewInt(0)), custody.DepositSweep{Index: 0, SafeSalt: sweepColdSalt}, toCold),
	}
	c := sweep("bad", dep[0], split, custody.DepositSweep{Index: 0, SafeSalt: sweepColdSalt}, custody.SafePayment{Wallet: ewCold, Address: cold.Hex(), Amount: half128})
	c.Pays = append(c.Pays, custody.SafePayment{Wallet: ewCold, Address: cold.Hex(), Amount: rest128})
	bads["a MultiSendCallOnly batch of two payments to the cold Safe"] = c
	c = good
	c.Purpose = custody.Refill
	bads["a deposit Safe's refill"] = c
	c = good
	c.Deposit = nil
	bads["a deposit Safe's sweep without its index"] = c
	for why, bc := range bads {
		o, err := w.k.Submit(w.ctx, time.Now(), core.PrepareCeremony{Ceremony: bc})
		if err != nil {
			t.Fatal(err)
		}
		if o.Err == nil {
			t.Fatalf("%s: journaled", why)
		}
		t.Logf("%s: refused: %v", why, o.Err)
	}
	w.k.Read(func(s *core.State) {
		if n := len(s.Custody.Ceremonies()); n != 0 {
			t.Fatalf("%d ceremonies after the refusals", n)
		}
	})

	w.submit(t, time.Now(), core.PrepareCeremony{Ceremony: good})
	// The deposit proxy, deployed by the gas account (anyone may): the
	// setup and salt of the address, nothing moved.
	got, _, err := w.d.CreateProxy(w.ctx, w.c, w.gas, coldInit, big.NewInt(0))
	if err != nil || got != dep[0] {
		t.Fatalf("deposit proxy at %s, want %s: %v", got, dep[0], err)
	}
	step("deployed")
	coldSafe0 := w.balance(t, cold)
	exec := w.execOn(t, dep[0], sweepTx, w.coldKeys[0], w.coldKeys[2])
	if err := x.CheckPending(w.ctx, exec); err != nil || w.haltedETH() {
		t.Fatalf("the journaled sweep pending: %v, halted %v", err, w.haltedETH())
	}
	w.send(t, exec)
	if d := new(big.Int).Sub(w.balance(t, cold), coldSafe0); d.Cmp(amount) != 0 {
		t.Fatalf("the cold Safe gained %s wei; want %s", d, amount)
	}
	if b := w.balance(t, dep[0]); b.Sign() != 0 {
		t.Fatalf("the deposit Safe holds %s wei after the sweep", b)
	}
	// Executed and not confirmed: reconciled at each block.
	for range 3 {
		if err := deps.Step(w.ctx); err != nil {
			t.Fatal(err)
		}
		recon("executed, not confirmed")
		mine(1)
	}
	for range 4 {
		step("confirmed")
		mine(1)
	}
	w.k.Read(func(s *core.State) {
		cer, _ := s.Custody.Ceremony("sweep-eth-d0")
		if cer.State != custody.CeremonyConfirmed || cer.Height == 0 {
			t.Fatalf("ceremony %s at %d", cer.State, cer.Height)
		}
		if len(s.Incidents.List()) != 0 {
			t.Fatalf("incidents: %+v", s.Incidents.List())
		}
	})
	if w.walletBalance(ewCold).Cmp(cold0) != 0 || w.customerBalance(1).Cmp(cust0) != 0 {
		t.Fatalf("the sweep moved customer money: cold wallet %s → %s, customer 1 %s → %s", cold0, w.walletBalance(ewCold), cust0, w.customerBalance(1))
	}

	// The thieves of two cold keys: deposit Safe 1 deployed (anyone may)
	// and its 0.3 ETH paid to them, nothing journaled.
	if _, _, err := w.d.CreateProxy(w.ctx, w.c, w.gas, coldInit, big.NewInt(1)); err != nil {
		t.Fatal(err)
	}
	theft := safe.Transfer(attacker, milliETH(300), big.NewInt(0))
	th, _ := theft.Hash(w.d.ChainID, dep[1])
	w.send(t, w.execOn(t, dep[1], theft, w.coldKeys[0], w.coldKeys[1]))
	if _, err := x.Step(w.ctx); err != nil {
		t.Fatal(err)
	}
	if !w.haltedETH() {
		t.Fatal("a deposit Safe's unexplained execution halted nothing")
	}
	w.k.Read(func(s *core.State) {
		if !s.Incidents.Names(th.Hex()) {
			t.Fatalf("no incident names %s: %+v", th.Hex(), s.Incidents.List())
		}
	})
	if got := w.balance(t, attacker); got.Cmp(milliETH(300)) != 0 {
		t.Fatalf("the attacker got %s wei", got)
	}

	// Deposit Safe 2, not deployed: the thieves' execTransaction in the
	// node's pool, signed by two of the descriptor's owners, opens its
	// incident before any block.
	theft2 := safe.Transfer(attacker, milliETH(100), big.NewInt(0))
	th2, _ := theft2.Hash(w.d.ChainID, dep[2])
	if err := x.CheckPending(w.ctx, w.execOn(t, dep[2], theft2, w.coldKeys[1], w.coldKeys[2])); err != nil {
		t.Fatal(err)
	}
	w.k.Read(func(s *core.State) {
		if !s.Incidents.Names(th2.Hex()) {
			t.Fatalf("no incident names the pending theft %s: %+v", th2.Hex(), s.Incidents.List())
		}
	})
}

func (w *ethWorld) customerBalance(c ledger.OwnerID) *big.Int {
	var v *big.Int
	w.k.Read(func(s *core.State) {
		a, _ := s.Ledger.Account(w.customer(c))
		v = a.Balance().Big()
	})
	return v
}

// TestDepositTokenSweepOnDevnet: a listed token's deposit (the Safe
// package's ERC20Token, TT) at customer 1's deposit Safe is swept into
// the cold wallet's Safe by a journaled ceremony calling the token's
// transfer: bad sweeps refused first (paying the attacker, another
// contract, another amount, Ether's asset named as a token, value sent
// along), the proxy deployed and the SafeTx of two cold owners executed:
// the cold Safe holds exactly the deposit's TT, the deposit Safe none,
// nothing halted, the ceremony confirmed, the ETH reconciliation at 0.
// The thieves of two cold keys moving customer 2's TT out of its deposit
// Safe halt ETH and open an incident.
func TestDepositTokenSweepOnDevnet(t *testing.T) {
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
	impostor, err := safetest.DeployERC20(w.ctx, w.c, issuer) // the same code, not the listed contract
	if err != nil {
		t.Fatal(err)
	}
	chainID := w.c.ChainID().Uint64()
	w.submit(t, time.Now(), core.CreateAssets{Assets: []ledger.Asset{{ID: ttAsset, Code: "TT", Decimals: 18, Class: ledger.ClassChain}}})
	if err := submit(t, w.k, w.team.RegisterTokens(time.Now(), custody.Token{Asset: ttAsset, ChainID: chainID, Contract: token.Hex()})...); err != nil {
		t.Fatal(err)
	}
	safes, err := MatchWallets(w.ctx, w.k, w.c, ethAsset, []WatchedSafe{{Name: "hot-eth", Address: w.hot, Kind: custody.HotCustomer},
		{Name: "cold-eth", Address: cold, Kind: custody.ColdCustomer}})
	if err != nil {
		t.Fatal(err)
	}
	for c := ledger.OwnerID(1); c <= 2; c++ {
		w.submit(t, time.Now(), core.AssignAddress{Wallet: ewCold, Customer: c})
	}
	coldInit, _ := w.d.Initializer(safe.Config{Owners: safetest.Owners(w.coldKeys...), Threshold: 2})
	dep0, dep1 := w.d.Predictor(coldInit).AddressIndex(0), w.d.Predictor(coldInit).AddressIndex(1)
	balanceOf := func(holder common.Address) *big.Int {
		t.Helper()
		out, err := w.c.Call(w.ctx, holder, token, append(common.FromHex("0x70a08231"), common.LeftPadBytes(holder.Bytes(), 32)...))
		if err != nil {
			t.Fatal(err)
		}
		return new(big.Int).SetBytes(out)
	}
	amount := big.NewInt(123_456_789)
	for _, p := range []struct {
		to  common.Address
		amt *big.Int
	}{{dep0, amount}, {dep1, big.NewInt(1_000)}} {
		if _, err := w.c.Send(w.ctx, issuer, eth.Tx{To: &token, Data: safetest.TransferCall(p.to, p.amt), Gas: 100_000}); err != nil {
			t.Fatal(err)
		}
	}
	if balanceOf(dep0).Cmp(amount) != 0 {
		t.Fatalf("deposit Safe 0 holds %s TT", balanceOf(dep0))
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
	step := func(what string) {
		t.Helper()
		if _, err := x.Step(w.ctx); err != nil {
			t.Fatalf("%s: executions: %v", what, err)
		}
		if _, err := r.Step(w.ctx); err != nil {
			t.Fatalf("%s: reconciliation: %v", what, err)
		}
		bs, _ := r.Balances()
		for _, b := range bs {
			if d := b.Difference(); d.Sign() != 0 {
				t.Fatalf("%s: wallet %d differs by %s wei: %+v", what, b.Wallet, d, b)
			}
		}
		if w.haltedETH() {
			t.Fatalf("%s: ETH halted", what)
		}
		if _, err := w.n.Mine(w.ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		step("the start")
	}
	amt, _ := ledgerAmount(amount)
	call := func(contract, to common.Address, a *big.Int) *safe.SafeTx {
		return &safe.SafeTx{To: contract, Value: new(big.Int), Data: core.TokenTransferData(to, a), SafeTxGas: safe.SafeTxGasFor(1), BaseGas: new(big.Int), GasPrice: new(big.Int), Nonce: new(big.Int)}
	}
	sweep := func(id string, asset ledger.AssetID, tx *safe.SafeTx, pay custody.SafePayment) custody.Ceremony {
		c := w.safeCeremony(t, id, custody.Sweep, ewCold, dep0, tx, pay)
		c.Deposit = &custody.DepositSweep{Index: 0, SafeSalt: sweepColdSalt, Asset: asset}
		return c
	}
	toCold := custody.SafePayment{Wallet: ewCold, Address: cold.Hex(), Amount: amt}
	good := sweep("sweep-tt-d0", ttAsset, call(token, cold, amount), toCold)
	attacker := common.HexToAddress("0xbad0000000000000000000000000000000000bad")
	withValue := call(token, cold, amount)
	withValue.Value = big.NewInt(1)
	delegate := call(token, cold, amount)
	delegate.Operation = safe.OpDelegateCall
	one, _ := ledgerAmount(big.NewInt(1))
	for why, bc := range map[string]custody.Ceremony{
		"a transfer to the attacker":              sweep("bad", ttAsset, call(token, attacker, amount), toCold),
		"the attacker named as the cold Safe":     sweep("bad", ttAsset, call(token, attacker, amount), custody.SafePayment{Wallet: ewCold, Address: attacker.Hex(), Amount: amt}),
		"another contract's transfer":             sweep("bad", ttAsset, call(impostor, cold, amount), toCold),
		"another amount than the payment's":       sweep("bad", ttAsset, call(token, cold, big.NewInt(1)), toCold),
		"Ether's asset named as a token":          sweep("bad", ethAsset, call(token, cold, amount), toCold),
		"value sent along":                        sweep("bad", ttAsset, withValue, toCold),
		"a DELEGATECALL of the token":             sweep("bad", ttAsset, delegate, toCold),
		"the token's transfer as an Ether sweep":  sweep("bad", 0, call(token, cold, amount), toCold),
		"a token sweep paying 1 wei of Ether too": sweep("bad", ttAsset, safe.Transfer(cold, big.NewInt(1), big.NewInt(0)), custody.SafePayment{Wallet: ewCold, Address: cold.Hex(), Amount: one}),
	} {
		o, err := w.k.Submit(w.ctx, time.Now(), core.PrepareCeremony{Ceremony: bc})
		if err != nil {
			t.Fatal(err)
		}
		if o.Err == nil {
			t.Fatalf("%s: journaled", why)
		}
		t.Logf("%s: refused: %v", why, o.Err)
	}
	w.submit(t, time.Now(), core.PrepareCeremony{Ceremony: good})
	if _, _, err := w.d.CreateProxy(w.ctx, w.c, w.gas, coldInit, big.NewInt(0)); err != nil {
		t.Fatal(err)
	}
	step("deployed")
	exec := w.execOn(t, dep0, call(token, cold, amount), w.coldKeys[1], w.coldKeys[2])
	if err := x.CheckPending(w.ctx, exec); err != nil || w.haltedETH() {
		t.Fatalf("the journaled token sweep pending: %v, halted %v", err, w.haltedETH())
	}
	if rc := w.send(t, exec); rc.Status != 1 {
		t.Fatal("the token sweep reverted")
	}
	if got := balanceOf(cold); got.Cmp(amount) != 0 {
		t.Fatalf("the cold Safe holds %s TT; want %s", got, amount)
	}
	if got := balanceOf(dep0); got.Sign() != 0 {
		t.Fatalf("deposit Safe 0 holds %s TT after the sweep", got)
	}
	for range 4 {
		step("swept")
	}
	w.k.Read(func(s *core.State) {
		cer, _ := s.Custody.Ceremony("sweep-tt-d0")
		if cer.State != custody.CeremonyConfirmed {
			t.Fatalf("the token sweep is %s", cer.State)
		}
		if len(s.Incidents.List()) != 0 {
			t.Fatalf("incidents: %+v", s.Incidents.List())
		}
	})
	// The thieves of two cold keys: customer 2's TT moved to them.
	if _, _, err := w.d.CreateProxy(w.ctx, w.c, w.gas, coldInit, big.NewInt(1)); err != nil {
		t.Fatal(err)
	}
	theft := call(token, attacker, big.NewInt(1_000))
	th, _ := theft.Hash(w.d.ChainID, dep1)
	w.send(t, w.execOn(t, dep1, theft, w.coldKeys[0], w.coldKeys[1]))
	if _, err := x.Step(w.ctx); err != nil {
		t.Fatal(err)
	}
	if !w.haltedETH() {
		t.Fatal("a deposit Safe's unexplained token transfer halted nothing")
	}
	w.k.Read(func(s *core.State) {
		if !s.Incidents.Names(th.Hex()) {
			t.Fatalf("no incident names %s", th.Hex())
		}
	})
	if got := balanceOf(attacker); got.Int64() != 1_000 {
		t.Fatalf("the attacker holds %s TT", got)
	}
}
