package watch

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/alert"
	"kinko/internal/chain/btc"
	"kinko/internal/chain/btc/regtest"
	"kinko/internal/chain/btcchain"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/wallet"
)

// alerts collects what a watcher raises.
type alerts struct {
	mu   sync.Mutex
	list []alert.Alert
}

func (a *alerts) send(x alert.Alert) { a.mu.Lock(); a.list = append(a.list, x); a.mu.Unlock() }

func (a *alerts) count(prefix string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, x := range a.list {
		if strings.HasPrefix(x.Key, prefix) {
			n++
		}
	}
	return n
}

// steal spends our credited output u with two of the cold wallet's three
// keys, as a thief holding them would, to an address of the thief's.
func (e *depositEnv) steal(u custody.UTXO) *wire.MsgTx {
	e.t.Helper()
	set, err := wallet.NewSet([]wallet.Named{{ID: 1, Kind: "cold-customer", Descriptor: e.desc.String()}}, e.desc)
	if err != nil {
		e.t.Fatal(err)
	}
	thief, _ := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{0xEE}, 20), regtest.Net)
	pk, _ := txscript.PayToAddrScript(thief)
	in := wallet.UTXO{OutPoint: wire.OutPoint{Hash: chainhash.Hash(u.Outpoint.TxID), Index: u.Outpoint.Vout}, Value: int64(u.Amount), Wallet: set.Wallets[0], Branch: u.Branch, Index: u.Index}
	p, err := wallet.Build([]wallet.UTXO{in}, []*wire.TxOut{wire.NewTxOut(int64(u.Amount)-10_000, pk)}, nil, 0, 10)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := byte(1); i <= 2; i++ {
		m, _ := hdkeychain.NewMaster(bytes.Repeat([]byte{i}, 32), regtest.Net)
		k, a, _ := wallet.AccountKey(m, regtest.Net, 0)
		if _, err := set.Sign(p, a, k.Fingerprint); err != nil {
			e.t.Fatal(err)
		}
	}
	tx, err := wallet.Finalize(p)
	if err != nil {
		e.t.Fatal(err)
	}
	return tx
}

// credited steps d over the deposits sent, mines a block and steps again,
// and returns wallet 1's credited outputs, of which there must be n.
func (e *depositEnv) credited(d *Deposits, n int) []custody.UTXO {
	e.t.Helper()
	e.step(d)
	e.node.Generate(context.Background(), 1)
	e.step(d)
	var utxos []custody.UTXO
	e.core.Read(func(s *core.State) { utxos = s.Custody.UTXOs(1, custody.UTXOAvailable) })
	if len(utxos) != n {
		e.t.Fatalf("%d credited outputs; want %d", len(utxos), n)
	}
	return utxos
}

func (e *depositEnv) incidentsNaming(tx *wire.MsgTx) int {
	n := 0
	e.core.Read(func(s *core.State) {
		for _, in := range s.Incidents.List() {
			for _, id := range in.TxIDs {
				if id == tx.TxHash().String() {
					n++
				}
			}
		}
	})
	return n
}

// TestWatcherFaults: duplicate notifications, a watcher restarted after it
// journaled a theft, a theft mined while no watcher ran, a node that stops
// answering and comes back: no outflow is missed, none is recorded or
// alerted twice, and the dead node is itself an alert.
func TestWatcherFaults(t *testing.T) {
	ctx := context.Background()
	e := newDepositEnv(t)
	for range 3 {
		if _, err := e.node.SendTo(ctx, map[string]btcutil.Amount{e.addr: 10_000_000}); err != nil {
			t.Fatal(err)
		}
	}
	var got alerts
	// The watcher's own client of the node's RPC address: it outlives the
	// node's restarts, as a service's would.
	cfg := e.node.Config()
	client, err := btc.Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	start := func() *Deposits {
		d, err := NewDeposits(ctx, e.core, btcchain.New(client, cfg, regtest.SegwitHeight), e.book, DepositConfig{Asset: btcAsset, Confirmations: 1, StartHeight: regtest.SegwitHeight, Alert: got.send, Poll: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	w := start()
	utxos := e.credited(w, 3)

	// 1. Duplicate notifications: the theft seen at every step, then in
	// its block: one halt, one incident, one alert.
	theft1 := e.steal(utxos[0])
	if _, err := client.Broadcast(ctx, theft1); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		e.step(w)
	}
	e.node.Generate(ctx, 1)
	e.step(w)
	e.step(w)
	if n := e.incidentsNaming(theft1); n != 1 || got.count("outflow:") != 1 {
		t.Fatalf("after duplicate sightings: %d incidents, %d alerts", n, got.count("outflow:"))
	}

	// 2. Restarted after it journaled the theft: the new watcher rescans
	// the block from its journaled height and records nothing again.
	w = start()
	e.step(w)
	if n := e.incidentsNaming(theft1); n != 1 || got.count("outflow:") != 1 {
		t.Fatalf("after a restart: %d incidents, %d alerts", n, got.count("outflow:"))
	}

	// 3. A theft mined while no watcher runs: the next one finds it in
	// the blocks after its journaled height.
	theft2 := e.steal(utxos[1])
	if _, err := client.Broadcast(ctx, theft2); err != nil {
		t.Fatal(err)
	}
	e.node.Generate(ctx, 2)
	w = start()
	e.step(w)
	if n := e.incidentsNaming(theft2); n != 1 || got.count("outflow:") != 2 {
		t.Fatalf("a theft mined while the watcher was down: %d incidents, %d alerts", n, got.count("outflow:"))
	}

	// 4. The node stops answering: the running watcher raises one alert
	// however long it lasts; when the node is back (same address), a theft
	// made meanwhile is caught.
	// A peer keeps the chain: btcd wipes a regtest database at start, so
	// the restarted node comes back empty and resyncs from it, as a node
	// rebuilt from scratch would. Meanwhile the watcher waits for it
	// (behind is not a reorg) and unwinds nothing.
	peer := regtest.New(t, regtest.Options{MatureBlocks: -1})
	if err := peer.Connect(ctx, e.node); err != nil {
		t.Fatal(err)
	}
	if err := regtest.WaitSynced(ctx, e.node, peer); err != nil {
		t.Fatal(err)
	}
	var credited int
	e.core.Read(func(s *core.State) { credited = len(s.Custody.UTXOs(1, custody.UTXOAvailable)) })
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(rctx) }()
	e.node.Stop()
	for deadline := time.Now().Add(10 * time.Second); got.count("node-down:") == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // ten more failed polls
	if n := got.count("node-down:"); n != 1 {
		cancel()
		<-done
		t.Fatalf("%d node-down alerts; want 1", n)
	}
	if err := e.node.Restart(ctx); err != nil {
		cancel()
		<-done
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); got.count("node-behind:") == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if got.count("node-behind:") != 1 {
		cancel()
		<-done
		t.Fatal("no alert for the empty node")
	}
	if err := e.node.Connect(ctx, peer); err != nil {
		t.Fatal(err)
	}
	if err := regtest.WaitSynced(ctx, e.node, peer); err != nil {
		t.Fatal(err)
	}
	theft3 := e.steal(utxos[2])
	if _, err := e.node.Client().Broadcast(ctx, theft3); err != nil {
		cancel()
		<-done
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); e.incidentsNaming(theft3) == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if n := e.incidentsNaming(theft3); n != 1 {
		t.Fatalf("theft after the node came back: %d incidents", n)
	}
	e.core.Read(func(s *core.State) {
		if err := s.Controls.Allowed(btcAsset, controls.Withdraw); !errors.Is(err, controls.ErrHalted) {
			t.Fatalf("withdrawals not halted: %v", err)
		}
		if n := len(s.Custody.UTXOs(1, custody.UTXOAvailable)); n != credited {
			t.Fatalf("%d credited outputs after the resync; %d before: the restart was taken for a reorg", n, credited)
		}
		if n := len(s.Incidents.List()); n != 3 {
			t.Fatalf("%d incidents; want one per theft: %+v", n, s.Incidents.List())
		}
	})
}

// TestReservesChecks: at each reconciled block the watcher compares the
// customer liabilities with the customer wallets, the hot share with its
// cap and the house's backing with the hot customer coins. A shortfall of
// the customer wallets halts withdrawals and opens an incident; the others
// alert; each is raised once while it lasts.
func TestReservesChecks(t *testing.T) {
	ctx := context.Background()
	e := newDepositEnv(t)
	hotD := &wallet.Descriptor{M: 2, Net: regtest.Net}
	for i := byte(7); i <= 9; i++ {
		m, _ := hdkeychain.NewMaster(bytes.Repeat([]byte{i}, 32), regtest.Net)
		k, _, _ := wallet.AccountKey(m, regtest.Net, 0)
		hotD.Keys = append(hotD.Keys, k)
	}
	hot := custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: btcAsset, Descriptor: hotD.String(), Owner: ledger.OwnerHouseMin + 101}
	for _, cmd := range e.team.RegisterWallets(time.Now(), hot) {
		if o, err := e.core.Submit(ctx, time.Now(), cmd); err != nil || o.Err != nil {
			t.Fatal(err, o.Err)
		}
	}
	if _, err := e.node.SendTo(ctx, map[string]btcutil.Amount{e.addr: 10_000_000}); err != nil {
		t.Fatal(err)
	}
	var got alerts
	w, err := ForAsset(ctx, e.core, e.node.Chain(), regtest.Net, "BTC", DepositConfig{Confirmations: 1, StartHeight: regtest.SegwitHeight, Alert: got.send})
	if err != nil {
		t.Fatal(err)
	}
	block := func() {
		t.Helper()
		e.node.Generate(ctx, 1)
		e.step(w)
	}
	e.step(w)
	block()
	if e.balance() != 10_000_000 || len(got.list) != 0 {
		t.Fatalf("balance %d, alerts %+v", e.balance(), got.list)
	}
	transfer := func(id uint64, debit, credit ledger.AccountKey, amt uint64) {
		t.Helper()
		o, err := e.core.Submit(ctx, time.Now(), core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 7, Lo: id}, Debit: debit, Credit: credit, Amount: ledger.AmountOf(amt)}}})
		if err != nil || o.EventErr() != nil {
			t.Fatal(err, o.EventErr())
		}
	}
	// A customer credited 1,000,000 with no coins behind it.
	equity := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: btcAsset, Kind: ledger.KindEquity}
	if o, err := e.core.Submit(ctx, time.Now(), core.CreateAccounts{Keys: []ledger.AccountKey{equity}}); err != nil || o.EventErr() != nil {
		t.Fatal(err, o.EventErr())
	}
	transfer(1, equity, custAcct, 1_000_000)
	block()
	block()
	if n := got.count("segregation:"); n != 1 {
		t.Fatalf("%d segregation alerts; want 1: %+v", n, got.list)
	}
	e.core.Read(func(s *core.State) {
		if err := s.Controls.Allowed(btcAsset, controls.Withdraw); !errors.Is(err, controls.ErrHalted) || !strings.Contains(err.Error(), "liabilities 11000000, customer wallets 10000000") {
			t.Fatalf("withdrawals: %v", err)
		}
		if in, ok := s.Incidents.Get("segregation-BTC"); !ok || in.Detector != "reconciliation" {
			t.Fatalf("incident %+v", in)
		}
	})
	// A restarted watcher does not raise it again while the incident is open.
	w, err = ForAsset(ctx, e.core, e.node.Chain(), regtest.Net, "BTC", DepositConfig{Confirmations: 1, StartHeight: regtest.SegwitHeight, Alert: got.send})
	if err != nil {
		t.Fatal(err)
	}
	block()
	if n := got.count("segregation:"); n != 1 {
		t.Fatalf("after a restart: %d segregation alerts", n)
	}
	// A quarter of the customer coins moved to the hot wallet in the
	// ledger: over the 5% cap, and the house holds nothing behind them.
	transfer(2, hot.Account(), ledger.AccountKey{Owner: ledger.OwnerHouseMin + 100, Asset: btcAsset, Kind: ledger.KindWallet}, 2_500_000)
	block()
	block()
	if got.count("hot-over-cap:") != 1 || got.count("house-short:") != 1 {
		t.Fatalf("alerts = %+v", got.list)
	}
}

// TestNotifiedOutflow: with the node's notifications subscribed and no
// poll running at all, a theft broadcast to the node is halted and
// recorded from the notification alone, and the co-signer is told.
func TestNotifiedOutflow(t *testing.T) {
	ctx := context.Background()
	e := newDepositEnv(t)
	if _, err := e.node.SendTo(ctx, map[string]btcutil.Amount{e.addr: 10_000_000}); err != nil {
		t.Fatal(err)
	}
	var told atomic.Int32
	d, err := NewDeposits(ctx, e.core, e.node.Chain(), e.book, DepositConfig{Asset: btcAsset, Confirmations: 1, StartHeight: regtest.SegwitHeight,
		OnUnexplained: func(ledger.AssetID, chainhash.Hash, string) { told.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	utxos := e.credited(d, 1)
	if err := d.Subscribe(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.Unsubscribe()
	theft := e.steal(utxos[0])
	if _, err := e.node.Client().Broadcast(ctx, theft); err != nil {
		t.Fatal(err)
	}
	// No Step runs: only the notification can record it.
	deadline := time.Now().Add(10 * time.Second)
	for e.incidentsNaming(theft) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the notified theft was not recorded")
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.core.Read(func(s *core.State) {
		if s.Controls.Allowed(btcAsset, controls.Withdraw) == nil {
			t.Error("withdrawals not halted")
		}
	})
	if told.Load() != 1 {
		t.Fatalf("co-signer told %d times; want 1", told.Load())
	}
}
