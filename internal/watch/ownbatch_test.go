package watch

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
)

// lagCore is the core as a separate watcher sees it: a replica of the
// journal, brought up to date only by Sync, and a core that may stop
// answering (down) between an entry and the watcher's read of it.
type lagCore struct {
	src  *core.Core
	mu   sync.Mutex
	rep  *core.Replica
	down atomic.Bool
}

func (l *lagCore) Read(fn func(s *core.State)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fn(l.rep.State())
}

func (l *lagCore) Submit(ctx context.Context, at time.Time, cmd core.Command) (core.Outcome, error) {
	if l.down.Load() {
		return core.Outcome{}, errors.New("connection refused")
	}
	o, err := l.src.Submit(ctx, at, cmd)
	if err == nil {
		err = l.Sync(ctx)
	}
	return o, err
}

func (l *lagCore) Sync(ctx context.Context) error {
	if l.down.Load() {
		return errors.New("connection refused")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	from := l.rep.State().Seq() + 1
	for seq := from; ; seq++ {
		e, err := l.src.Journal().Get(seq)
		if err != nil {
			return nil // past the head
		}
		if _, _, _, err := l.rep.Ingest(e.Encode()); err != nil {
			return err
		}
	}
}

// TestOwnTransactionWhileCoreDown: a transaction of ours (here a sweep
// ceremony, as a batch would be) is journaled and broadcast, and the core
// dies before the watcher reads that entry: the watcher, unable to ask,
// calls the spend unexplained and tells the co-signer (who declines for a
// transaction it signed itself, TestHaltForOwnTransaction). When the core
// answers, the journal explains the spend: nothing is halted or recorded,
// and a warning says so. A theft found the same way is still halted and
// recorded once the core answers.
func TestOwnTransactionWhileCoreDown(t *testing.T) {
	ctx := context.Background()
	e := newDepositEnv(t)
	if _, err := e.node.SendTo(ctx, map[string]btcutil.Amount{e.addr: 10_000_000}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.node.SendTo(ctx, map[string]btcutil.Amount{e.addr: 20_000_000}); err != nil {
		t.Fatal(err)
	}
	lag := &lagCore{src: e.core, rep: core.NewReplica()}
	if err := lag.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got := &alerts{}
	var told []string
	var tmu sync.Mutex
	d, err := NewDeposits(ctx, lag, e.node.Chain(), e.book, DepositConfig{Asset: btcAsset, Confirmations: 1, StartHeight: regtest.SegwitHeight, Alert: got.send,
		StateDir: t.TempDir(), OnUnexplained: func(_ ledger.AssetID, txid chainhash.Hash, _ string) {
			tmu.Lock()
			told = append(told, txid.String())
			tmu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	utxos := e.credited(d, 2)
	// Ours: the ceremony is journaled with the transaction's id, then the
	// core dies before the watcher reads it, then it is broadcast.
	own := e.steal(utxos[0])
	var next uint32
	e.core.Read(func(s *core.State) {
		w, _ := s.Custody.Wallet(1)
		next = w.NextChange
	})
	e.must(core.PrepareCeremony{Ceremony: custody.Ceremony{ID: "sweep-1", Purpose: custody.Sweep, TxID: [32]byte(own.TxHash()), Inputs: []custody.Outpoint{utxos[0].Outpoint},
		Outputs: []custody.CeremonyOutput{{Vout: 0, Wallet: 1, Branch: 1, Index: next, Amount: utxos[0].Amount - 10_000}}, Actor: "aiko"}})
	lag.down.Store(true)
	theft := e.steal(utxos[1])
	for _, tx := range []*wire.MsgTx{own, theft} {
		if _, err := e.node.Client().Broadcast(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Step(ctx); !errors.Is(err, ErrCoreDown) {
		t.Fatalf("step with the core down = %v; want ErrCoreDown", err)
	}
	tmu.Lock()
	n := len(told)
	tmu.Unlock()
	if n != 2 {
		t.Fatalf("co-signer told of %d spends with the core down; want 2 (ours and the theft: it cannot tell them apart)", n)
	}
	lag.down.Store(false)
	e.step(d)
	if n := e.incidentsNaming(own); n != 0 {
		t.Fatalf("our own transaction recorded as an incident %d times", n)
	}
	if n := e.incidentsNaming(theft); n != 1 {
		t.Fatalf("the theft recorded %d times; want 1", n)
	}
	e.core.Read(func(s *core.State) {
		if s.Controls.Allowed(btcAsset, controls.Withdraw) == nil {
			t.Error("withdrawals not halted for the theft")
		}
	})
	if c := got.count("outflow:" + own.TxHash().String()); c != 2 {
		t.Fatalf("%d alerts for our transaction; want 2 (unexplained, then explained)", c)
	}
	warned := false
	got.mu.Lock()
	for _, a := range got.list {
		if a.Key == "outflow:"+own.TxHash().String() && a.Severity == "warning" {
			warned = true
		}
	}
	got.mu.Unlock()
	if !warned {
		t.Fatalf("no warning that our transaction was explained: %+v", got.list)
	}
	if d.outflows.len() != 0 {
		t.Fatalf("%d outflows still kept", d.outflows.len())
	}
}
