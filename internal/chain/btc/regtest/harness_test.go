package regtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

func TestNodeMinesAndSends(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := New(t, Options{})
	_, h, err := n.Client().BestBlock(ctx)
	if err != nil || h != SegwitHeight {
		t.Fatalf("best block = %d, %v; want %d", h, err, SegwitHeight)
	}
	to, _ := btcutil.NewAddressWitnessPubKeyHash(make([]byte, 20), Net)
	tx, err := n.SendTo(ctx, map[string]btcutil.Amount{to.EncodeAddress(): 1_0000_0000})
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := n.Client().MempoolTxids(ctx)
	if len(ids) != 1 || ids[0] != tx.TxHash() {
		t.Fatalf("mempool = %v; want %s", ids, tx.TxHash())
	}
	hashes, err := n.Generate(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := n.Client().Block(ctx, *hashes[0])
	if len(b.Transactions) != 2 || b.Transactions[1].TxHash() != tx.TxHash() {
		t.Fatal("the transaction is not in the next block")
	}
	n.Stop()
	n.Stop() // idempotent
	select {
	case <-n.exited:
	default:
		t.Fatal("process still running after Stop")
	}
}

// TestReorg mines apart on two nodes and joins them: the shorter chain
// gives way.
func TestReorg(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := New(t, Options{})
	b := New(t, Options{MatureBlocks: -1})
	if err := b.Connect(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := WaitSynced(ctx, a, b); err != nil {
		t.Fatal(err)
	}
	if err := a.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	b.Disconnect(ctx)
	to, _ := btcutil.NewAddressWitnessPubKeyHash(make([]byte, 20), Net)
	tx, err := a.SendTo(ctx, map[string]btcutil.Amount{to.EncodeAddress(): 5_000_000})
	if err != nil {
		t.Fatal(err)
	}
	aBlocks, _ := a.Generate(ctx, 2)
	if _, err := b.Generate(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := WaitSynced(ctx, a, b); err != nil {
		t.Fatal(err)
	}
	_, h, _ := a.Client().BestBlock(ctx)
	if h != SegwitHeight+3 {
		t.Fatalf("height after the reorg = %d; want %d", h, SegwitHeight+3)
	}
	at, _ := a.Client().BlockHash(ctx, SegwitHeight+1)
	if at == *aBlocks[0] {
		t.Fatal("node a kept its own block 102: no reorg")
	}
	// The transaction of the lost blocks is back in a's mempool.
	ids, _ := a.Client().MempoolTxids(ctx)
	found := false
	for _, id := range ids {
		found = found || id == tx.TxHash()
	}
	if !found {
		t.Logf("mempool after reorg: %v (tx %s)", ids, chainhash.Hash(tx.TxHash()))
		t.Fatal("the reorged-out transaction is not back in the mempool")
	}
}

// TestKeptChainSurvivesRestart: a node started with Keep stops and starts
// again on the same directory with the same chain (btcd itself wipes a
// regtest chain at start): the same best block, the harness's coins
// still spendable, the ones it spent not offered again.
func TestKeptChainSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	n, err := Start(ctx, Options{Dir: dir, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	to, _ := btcutil.NewAddressWitnessPubKeyHash(make([]byte, 20), Net)
	paid, err := n.SendTo(ctx, map[string]btcutil.Amount{to.EncodeAddress(): 1_0000_0000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Generate(ctx, 2); err != nil {
		t.Fatal(err)
	}
	best, height, _ := n.Client().BestBlock(ctx)
	n.Stop()

	n2, err := Start(ctx, Options{Dir: dir, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Stop()
	best2, height2, err := n2.Client().BestBlock(ctx)
	if err != nil || best2 != best || height2 != height {
		t.Fatalf("after the restart: best %s at %d (%v); want %s at %d", best2, height2, err, best, height)
	}
	if got, err := n2.Client().Tx(ctx, paid.TxHash()); err != nil || got.TxHash() != paid.TxHash() {
		t.Fatalf("the payment before the restart: %v", err)
	}
	// The harness spends again, never an output it spent before.
	tx, err := n2.SendTo(ctx, map[string]btcutil.Amount{to.EncodeAddress(): 2_0000_0000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n2.Generate(ctx, 1); err != nil {
		t.Fatalf("mining the new payment: %v", err)
	}
	if _, err := n2.Client().Tx(ctx, tx.TxHash()); err != nil {
		t.Fatal(err)
	}
}

// TestStopInterruptedNode: a node that got Ctrl-C itself (the signal
// reaches a terminal's whole process group) is stopped as one that did
// not, its kept chain too: Stop does not wait on an RPC the exiting node
// refuses, which the RPC client retries for half a minute.
func TestStopInterruptedNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := Start(ctx, Options{Dir: t.TempDir(), Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Generate(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { n.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Stop of an interrupted node still waiting after 20 s")
	}
}
