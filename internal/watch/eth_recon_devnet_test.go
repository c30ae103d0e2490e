package watch

import (
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/alert"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/chain/ethchain"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/reserves"
	"kinko/internal/withdraw"
)

// TestEthReconcileOnDevnet: on geth --dev, the hot Safe (5 ETH), the cold
// Safe (90 ETH, more than 2^64 wei) and a deposit address of the cold
// customer wallet, and the house's Safe (5 ETH) reconciled with their
// ledger accounts at every block, three confirmations deep, against a
// tolerance of 0.001 ETH. Every difference is zero, to the wei, while
// things are in flight: a 20 ETH deposit seen and kept uncredited (ETH
// deposits halted), a journaled batch executed and not yet confirmed, a
// batch confirmed by the ledger above the reconciled block; an
// outsider's gift of 10^12 wei to the hot Safe stays within the
// tolerance. The hot share above the 5% cap alerts at the first block, with
// the sweep to bring it to the 2% target. Then two leaked hot owner keys
// drain the hot Safe, with no watcher of executions running: the block
// the drain is reconciled at halts ETH withdrawals and opens the
// mismatch incident with the difference the ledger's hot account less
// what is left, and the customer wallets short of the liabilities by it;
// not before that block, and each once.
func TestEthReconcileOnDevnet(t *testing.T) {
	w := newEthWorld(t, milliETH(5_000))
	cold := w.safe(t, w.coldKeys, 1000, milliETH(90_000))
	house := w.safe(t, w.houseKeys, 1, milliETH(5_000))
	equity := ledger.AccountKey{Owner: ledger.OwnerHouseMin + 500, Asset: ethAsset, Kind: ledger.KindEquity}
	w.submit(t, time.Now(), core.CreateAccounts{Keys: []ledger.AccountKey{equity}})
	w.book(t, ewCold, w.customer(3), milliETH(90_000))
	w.book(t, ewHouse, equity, milliETH(5_000))
	w.submit(t, time.Now(), core.AssignAddress{Wallet: ewCold, Customer: 1})

	backend := ethchain.New(w.c, "", nil)
	tip, err := w.c.BlockNumber(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	chainID := w.c.ChainID().Uint64()
	dep, err := NewEtherDeposits(w.ctx, w.k, backend, w.art, EtherConfig{Asset: ethAsset, ChainID: chainID, Confirmations: 3, StartHeight: int32(tip) + 1})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var alerts []alert.Alert
	tol := ledger.AmountOf(milliETH(1).Uint64())
	// The pinned Safes, matched to their wallets by their owners on chain
	// (a Safe of strangers to none).
	stranger := w.safe(t, keys3(t), 7, big.NewInt(1))
	safes, err := MatchWallets(w.ctx, w.k, w.c, ethAsset, []WatchedSafe{{Name: "hot-eth", Address: w.hot, Kind: custody.HotCustomer},
		{Name: "cold-eth", Address: cold, Kind: custody.ColdCustomer}, {Name: "house-eth", Address: house, Kind: custody.ColdHouse},
		{Name: "stranger", Address: stranger, Kind: custody.ColdCustomer}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []uint32{ewHot, ewCold, ewHouse, 0} {
		if safes[i].Wallet != want {
			t.Fatalf("the %s Safe matched wallet %d; want %d", safes[i].Name, safes[i].Wallet, want)
		}
	}
	r, err := NewEthRecon(w.k, backend, w.c, w.art, EthReconConfig{Asset: ethAsset, ChainID: chainID, Confirmations: 3, Tolerance: tol,
		Deposits: dep, StartBlock: tip, Alert: func(a alert.Alert) { mu.Lock(); alerts = append(alerts, a); mu.Unlock() }, Safes: safes})
	if err != nil {
		t.Fatal(err)
	}
	gift := big.NewInt(1_000_000_000_000)
	gifted := false
	// step steps the deposit watcher and the reconciliation at the
	// node's tip and checks every wallet is reconciled to the wei (the
	// hot Safe off by the gift once it is given), nothing halted.
	step := func(what string) map[uint32]EthBalance {
		t.Helper()
		if err := dep.Step(w.ctx); err != nil {
			t.Fatalf("%s: deposit watcher: %v", what, err)
		}
		if _, err := r.Step(w.ctx); err != nil {
			t.Fatalf("%s: reconciliation: %v", what, err)
		}
		bs, _ := r.Balances()
		out := map[uint32]EthBalance{}
		for _, b := range bs {
			out[b.Wallet] = b
			want := new(big.Int)
			if b.Wallet == ewHot && gifted && b.Chain.Cmp(b.Expected) > 0 {
				want.Neg(gift)
			}
			if d := b.Difference(); d.Cmp(want) != 0 {
				t.Errorf("%s: wallet %d: difference %s wei (%+v); want %s", what, b.Wallet, d, b, want)
			}
		}
		if len(out) != 3 {
			t.Fatalf("%s: %d wallets reconciled; want 3", what, len(out))
		}
		if w.haltedETH() {
			t.Fatalf("%s: ETH withdrawals halted: %+v", what, out)
		}
		return out
	}
	// mine seals blocks until the reconciled block (two below the tip)
	// reaches height, stepping at every block.
	mine := func(what string, height uint64, each func(map[uint32]EthBalance)) {
		t.Helper()
		for {
			n, err := w.c.BlockNumber(w.ctx)
			if err != nil {
				t.Fatal(err)
			}
			bs := step(fmt.Sprintf("%s, tip %d", what, n))
			if each != nil {
				each(bs)
			}
			if n >= height+2 {
				return
			}
			if _, err := w.n.Mine(w.ctx, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	eth := func(m int64) ledger.Amount { a, _ := ledgerAmount(milliETH(m)); return a }

	// The start: everything equal; the hot share (5 of 95 ETH, 526 bps)
	// above the 5% cap alerts, once, with the sweep to the 2% target.
	// (The ledger was booked as the Safes were funded: the reconciliation
	// starts once those blocks are at its depth.)
	now, err := w.n.Mine(w.ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	mine("start", now-2, nil)
	bs := step("start again")
	if bs[ewCold].Addresses != 2 || bs[ewCold].Chain.Cmp(eth(90_000)) != 0 || bs[ewHot].Chain.Cmp(eth(5_000)) != 0 || bs[ewHouse].Chain.Cmp(eth(5_000)) != 0 {
		t.Fatalf("the start: %+v", bs)
	}
	row, _ := reserveRow(w.k, ethAsset, reserves.DefaultPolicy, nil)
	if row.HotShareBps != 526 || !row.HotOverCap || !row.HouseBacked || row.Sweep.Cmp(eth(3_100)) != 0 {
		t.Fatalf("ETH row: hot share %d bps, over cap %v, backed %v, sweep %s; want 526, true, true, 3.1 ETH", row.HotShareBps, row.HotOverCap, row.HouseBacked, row.Sweep)
	}
	count := func(prefix string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, a := range alerts {
			if strings.HasPrefix(a.Key, prefix) {
				n++
			}
		}
		return n
	}
	if n := count("hot-over-cap:ETH:"); n != 1 || count("house-short:") != 0 || count("segregation:") != 0 {
		t.Fatalf("alerts at the start: %+v; want one hot-over-cap of ETH", alerts)
	}

	// A deposit in flight: 20 ETH to customer 1's address while ETH
	// deposits are halted, seen at its depth and kept, not credited.
	w.submit(t, time.Now(), core.Halt{Switch: controls.Switch{Asset: ethAsset, Service: controls.Deposit}, Actor: "aiko", Reason: "test"})
	addr, ok := dep.Address(ewCold, 0)
	if !ok {
		t.Fatal("customer 1's deposit address is not followed")
	}
	rc, err := w.n.Fund(w.ctx, addr, milliETH(20_000))
	if err != nil {
		t.Fatal(err)
	}
	inFlight, before := false, ethBalance(w.k, 1)
	mine("deposit kept", rc.BlockNumber.Uint64(), func(bs map[uint32]EthBalance) {
		inFlight = inFlight || bs[ewCold].Deposits.Cmp(eth(20_000)) == 0
	})
	if !inFlight || ethBalance(w.k, 1) != before {
		t.Fatalf("the kept deposit: counted in flight %v, customer 1's balance %s", inFlight, ethBalance(w.k, 1))
	}

	// A batch executed, its confirmation not yet journaled.
	id := w.withdraw(t, 1, milliETH(300))
	tx1, h1 := w.batch(t, id, payee(1), milliETH(300))
	r1 := w.send(t, tx1)
	executed := false
	mine("batch executed, not confirmed", r1.BlockNumber.Uint64(), func(bs map[uint32]EthBalance) {
		executed = executed || bs[ewHot].Executed.Cmp(eth(300)) == 0
	})
	if !executed {
		t.Fatal("the executed batch was never in flight")
	}
	w.submit(t, time.Now(), core.ConfirmBatch{TxID: h1, Height: int32(r1.BlockNumber.Uint64())})
	step("batch confirmed")

	// A batch confirmed at once, its block above the reconciled one.
	id = w.withdraw(t, 2, milliETH(200))
	tx2, h2 := w.batch(t, id, payee(2), milliETH(200))
	r2 := w.send(t, tx2)
	w.submit(t, time.Now(), core.ConfirmBatch{TxID: h2, Height: int32(r2.BlockNumber.Uint64())})
	confirmed := false
	mine("batch confirmed above the block", r2.BlockNumber.Uint64(), func(bs map[uint32]EthBalance) {
		confirmed = confirmed || bs[ewHot].Confirmed.Cmp(eth(200)) == 0
	})
	if !confirmed {
		t.Fatal("the confirmed batch was never counted above the reconciled block")
	}

	// An outsider's gift to the hot Safe, within the tolerance.
	rg, err := w.n.Fund(w.ctx, w.hot, gift)
	if err != nil {
		t.Fatal(err)
	}
	gifted = true
	mine("gift", rg.BlockNumber.Uint64(), nil)

	// The drain: two leaked hot owner keys, the whole hot Safe.
	hotBefore := w.balance(t, w.hot)
	nonce, _ := safe.Nonce(w.ctx, w.c, w.hot)
	thief := common.HexToAddress("0x7e1ef000000000000000000000000000000000ba")
	attacker, err := w.n.NewKey(w.ctx, milliETH(1_000))
	if err != nil {
		t.Fatal(err)
	}
	drain := safe.Transfer(thief, hotBefore, nonce)
	dh, _ := drain.Hash(w.d.ChainID, w.hot)
	rd := w.send(t, w.exec(t, attacker, drain, dh, w.hotKey, w.backupKey))
	if rd.Status != 1 {
		t.Fatal("the drain reverted")
	}
	took := w.balance(t, thief)
	mine("drain below the reconciled block", rd.BlockNumber.Uint64()-1, nil)
	// The drain's block reconciled: halted.
	for {
		n, _ := w.c.BlockNumber(w.ctx)
		if n >= rd.BlockNumber.Uint64()+2 {
			break
		}
		if _, err := w.n.Mine(w.ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := dep.Step(w.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Step(w.ctx); err != nil {
		t.Fatal(err)
	}
	if !w.haltedETH() {
		t.Fatal("ETH withdrawals not halted once the drain's block is reconciled")
	}
	bs2, at := r.Balances()
	var hot EthBalance
	for _, b := range bs2 {
		if b.Wallet == ewHot {
			hot = b
		}
	}
	wantDiff := new(big.Int).Sub(took, gift)
	if hot.Block != at || at < rd.BlockNumber.Uint64() || !hot.Chain.IsZero() || hot.Difference().Cmp(wantDiff) != 0 || hot.Difference().Cmp(hot.Ledger.Big()) != 0 {
		t.Fatalf("the hot Safe at block %d: %+v, difference %s; want %s (the take less the gift), the ledger's", at, hot, hot.Difference(), wantDiff)
	}
	// One more block: nothing raised twice.
	if _, err := w.n.Mine(w.ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Step(w.ctx); err != nil {
		t.Fatal(err)
	}
	var ids []string
	w.k.Read(func(s *core.State) {
		for _, in := range s.Incidents.List() {
			ids = append(ids, in.ID)
			if in.Detector != "reconciliation" {
				t.Errorf("incident %+v", in)
			}
		}
	})
	if strings.Join(ids, ",") != "mismatch-ETH-11,segregation-ETH" {
		t.Fatalf("incidents %v; want the hot wallet's mismatch and the segregation shortfall", ids)
	}
	if count("mismatch:ETH:11:") != 1 || count("segregation:ETH:") != 1 {
		t.Fatalf("alerts %+v; want one mismatch and one segregation", alerts)
	}
	t.Logf("reconciled at every block 3 deep, tolerance %s wei: deposit in flight, batch executed and not confirmed, batch confirmed above the block, a gift of %s wei: all zero to the wei; the drain of %s wei halted ETH at block %d (drain in block %d), difference %s wei",
		tol, gift, took, at, rd.BlockNumber, hot.Difference())
}

// TestEthReconcileForgedConfirmation: whoever holds the watcher's or the
// signer's token journals confirm_batch for a batch that was reserved and
// signed and never sent: the withdrawal is done and its customer debited,
// the hot Safe's ledger account paid out, and the Ether never left (the
// core cannot read the chain). The reconciliation counts the forged
// confirmation's block as in flight while it is above the reconciled
// one, then finds the chain holding more than the ledger by exactly the
// amount: ETH withdrawals halted, the mismatch incident opened.
func TestEthReconcileForgedConfirmation(t *testing.T) {
	w := newEthWorld(t, milliETH(5_000))
	backend := ethchain.New(w.c, "", nil)
	tip, err := w.c.BlockNumber(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	safes, err := MatchWallets(w.ctx, w.k, w.c, ethAsset, []WatchedSafe{{Name: "hot-eth", Address: w.hot, Kind: custody.HotCustomer}})
	if err != nil || safes[0].Wallet != ewHot {
		t.Fatalf("the hot Safe matched %+v, %v", safes, err)
	}
	r, err := NewEthRecon(w.k, backend, w.c, w.art, EthReconConfig{Asset: ethAsset, ChainID: w.c.ChainID().Uint64(), Confirmations: 3,
		Tolerance: ledger.AmountOf(milliETH(1).Uint64()), StartBlock: tip, Safes: safes})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.n.Mine(w.ctx, 2); err != nil {
		t.Fatal(err)
	}
	before := ethBalance(w.k, 1)
	id := w.withdraw(t, 1, milliETH(300))
	_, h := w.batch(t, id, payee(1), milliETH(300)) // signed, never sent
	forged, err := w.c.BlockNumber(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.submit(t, time.Now(), core.ConfirmBatch{TxID: h, Height: int32(forged)})
	var st withdraw.Status
	w.k.Read(func(s *core.State) { wd, _ := s.Withdraw.Get(id); st = wd.Status })
	if st != withdraw.StatusDone || ethBalance(w.k, 1) == before || w.balance(t, payee(1)).Sign() != 0 {
		t.Fatalf("the forged confirmation: withdrawal %s, customer 1's balance %s (was %s), the payee's %s wei", st, ethBalance(w.k, 1), before, w.balance(t, payee(1)))
	}
	below := 0
	for {
		at, err := r.Step(w.ctx)
		if err != nil {
			t.Fatal(err)
		}
		bs, _ := r.Balances()
		if at >= forged {
			want := new(big.Int).Neg(milliETH(300))
			if len(bs) != 1 || bs[0].Difference().Cmp(want) != 0 || !w.haltedETH() {
				t.Fatalf("at block %d, the forged confirmation's: %+v, halted %v; want a difference of %s wei and ETH halted", at, bs, w.haltedETH(), want)
			}
			break
		}
		if len(bs) != 1 || bs[0].Difference().Sign() != 0 || bs[0].Confirmed.Cmp(ledger.AmountOf(milliETH(300).Uint64())) != 0 || w.haltedETH() {
			t.Fatalf("at block %d, below the forged confirmation's %d: %+v, halted %v; want it in flight, no difference", at, forged, bs, w.haltedETH())
		}
		below++
		if _, err := w.n.Mine(w.ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	w.k.Read(func(s *core.State) {
		for _, in := range s.Incidents.List() {
			ids = append(ids, in.ID)
		}
	})
	if below != 2 {
		t.Errorf("%d blocks reconciled below the forged confirmation's; want 2", below)
	}
	if len(ids) != 1 || ids[0] != "mismatch-ETH-11" {
		t.Fatalf("incidents %v; want the hot wallet's mismatch", ids)
	}
	t.Logf("a forged confirmation of 0.3 ETH never sent: the chain held %s wei more than the ledger at block %d; ETH halted", milliETH(300), forged)
}

// TestEthReconcileWideInFlight: a batch of 20 ETH (2·10^19 wei, above
// 2^64) executed on the hot Safe and not yet confirmed in the core is
// counted in flight to the wei by the reconciliation (a tolerance of 1
// wei), then, confirmed, in the ledger: never a difference, never a halt;
// the payee got exactly 20 ETH.
func TestEthReconcileWideInFlight(t *testing.T) {
	w := newEthWorldMax(t, milliETH(60_000), milliETH(30_000))
	backend := ethchain.New(w.c, "", nil)
	tip, err := w.c.BlockNumber(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	safes, err := MatchWallets(w.ctx, w.k, w.c, ethAsset, []WatchedSafe{{Name: "hot-eth", Address: w.hot, Kind: custody.HotCustomer}})
	if err != nil || safes[0].Wallet != ewHot {
		t.Fatalf("the hot Safe matched %+v, %v", safes, err)
	}
	r, err := NewEthRecon(w.k, backend, w.c, w.art, EthReconConfig{Asset: ethAsset, ChainID: w.c.ChainID().Uint64(), Confirmations: 3,
		Tolerance: ledger.AmountOf(1), StartBlock: tip, Safes: safes})
	if err != nil {
		t.Fatal(err)
	}
	twenty := milliETH(20_000)
	wide, err := ledgerAmount(twenty)
	if err != nil || wide.Hi == 0 {
		t.Fatalf("20 ETH as a ledger amount: %v, %v", wide, err)
	}
	id := w.withdraw(t, 1, twenty)
	tx, h := w.batch(t, id, payee(1), twenty)
	rc := w.send(t, tx)
	if rc.Status != 1 {
		t.Fatal("the batch reverted")
	}
	check := func(what string, until uint64, counted func(EthBalance) bool) {
		t.Helper()
		seen := false
		for {
			at, err := r.Step(w.ctx)
			if err != nil {
				t.Fatal(err)
			}
			bs, _ := r.Balances()
			if len(bs) != 1 || bs[0].Difference().Sign() != 0 || w.haltedETH() {
				t.Fatalf("%s, at block %d: %+v, halted %v; want no difference", what, at, bs, w.haltedETH())
			}
			seen = seen || counted(bs[0])
			if at >= until {
				break
			}
			if _, err := w.n.Mine(w.ctx, 1); err != nil {
				t.Fatal(err)
			}
		}
		if !seen {
			t.Fatalf("%s: never counted as it should be", what)
		}
	}
	block := rc.BlockNumber.Uint64()
	check("executed, not confirmed", block, func(b EthBalance) bool { return b.Executed == wide })
	w.submit(t, time.Now(), core.ConfirmBatch{TxID: h, Height: int32(block)})
	check("confirmed", block+2, func(b EthBalance) bool { return b.Executed.IsZero() && b.Confirmed.IsZero() })
	if got := w.balance(t, payee(1)); got.Cmp(twenty) != 0 {
		t.Fatalf("the payee has %s wei; want %s", got, twenty)
	}
}
