package watch

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/chain/btcchain"
	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/wallet"
)

// scriptsOnly is a Chain that only says the scripts of regtest addresses:
// the block scan reads nothing else from the node.
type scriptsOnly struct{ Chain }

func (scriptsOnly) Script(addr string) ([]byte, error) { return btcchain.Script(addr, regtest.Net) }

func benchScript(i uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	h := sha256.Sum256(b[:])
	return append([]byte{0x00, 0x20}, h[:]...)
}

// BenchmarkBlockScan measures the watcher's cost per block with 1,000,000
// watched addresses: a block of 2,500 transactions (2 inputs, 2 outputs
// each; ten pay watched addresses) checked for deposits and unexplained
// spends and applied to the reconciliation view. It reports the time per
// block and the memory the address book takes per watched address.
func BenchmarkBlockScan(b *testing.B) {
	const addresses = 1_000_000
	ctx := context.Background()
	c, err := core.Open(ctx, core.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if o, err := c.Submit(ctx, time.Now(), core.CreateAssets{Assets: []ledger.Asset{{ID: btcAsset, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}}); err != nil || o.EventErr() != nil {
		b.Fatal(err, o.EventErr())
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	book := wallet.NewBookSize(addresses)
	for i := uint64(0); i < addresses; i++ {
		book.AddScript(benchScript(i), wallet.Place{Wallet: 1, Index: uint32(i)})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perAddress := float64(after.HeapAlloc-before.HeapAlloc) / addresses
	d, err := NewDeposits(ctx, c, scriptsOnly{}, book, DepositConfig{Asset: btcAsset, StartHeight: 1, Owned: book})
	if err != nil {
		b.Fatal(err)
	}
	blk := &wire.MsgBlock{}
	for i := uint64(0); i < 2500; i++ {
		tx := wire.NewMsgTx(2)
		for j := uint64(0); j < 2; j++ {
			tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash(sha256.Sum256(benchScript(1<<40 + i*2 + j))), Index: uint32(j)}, nil, nil))
		}
		tx.AddTxOut(wire.NewTxOut(50_000, benchScript(1<<41+i)))
		if i%250 == 0 {
			tx.AddTxOut(wire.NewTxOut(70_000, benchScript(i*397%addresses)))
		} else {
			tx.AddTxOut(wire.NewTxOut(70_000, benchScript(1<<42+i)))
		}
		blk.AddTransaction(tx)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		// What the backend makes of the node's block, then the watcher.
		txs := txsOf(btcchain.BlockOf(blk, 100, regtest.Net, d.watch))
		d.scanBlock(txs, blk.BlockHash(), 100)
		d.view.applyBlock(txs, d.owned)
	}
	b.StopTimer()
	if len(d.inBlocks) != 10 {
		b.Fatalf("%d deposits found; want 10", len(d.inBlocks))
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/block")
	b.ReportMetric(perAddress, "B/address")
}

// BenchmarkDrillLatency runs b.N theft drills against a watcher running as
// the service does (polling the node every 200 ms): each drill spends one
// of our credited outputs with two of the wallet's three keys, straight to
// the node, and waits for the halt and the incident naming it to be
// journaled. It reports the latency from the broadcast, p50, p99 and max;
// the broadcasts fall at spread points of the poll cycle.
func BenchmarkDrillLatency(b *testing.B) { drillLatency(b, true) }

// BenchmarkDrillLatencyPolling is BenchmarkDrillLatency with the node's
// notifications off: the 200 ms poll alone.
func BenchmarkDrillLatencyPolling(b *testing.B) { drillLatency(b, false) }

func drillLatency(b *testing.B, notified bool) {
	ctx := context.Background()
	e := newDepositEnv(b)
	for range b.N {
		if _, err := e.node.SendTo(ctx, map[string]btcutil.Amount{e.addr: 1_000_000}); err != nil {
			b.Fatal(err)
		}
	}
	w := e.watcher(1)
	utxos := e.credited(w, b.N)
	thefts := make([]*wire.MsgTx, b.N)
	for i, u := range utxos {
		thefts[i] = e.steal(u)
	}
	rctx, cancel := context.WithCancel(ctx)
	if notified {
		if err := w.Subscribe(rctx); err != nil {
			b.Fatal(err)
		}
		defer w.Unsubscribe()
	}
	done := make(chan struct{})
	go func() { defer close(done); w.Run(rctx) }()
	defer func() { cancel(); <-done }()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i, tx := range thefts {
		// Thefts do not wait for the watcher's poll: each comes at a
		// different point of the 200 ms cycle.
		b.StopTimer()
		time.Sleep(time.Duration(i*37%200) * time.Millisecond)
		b.StartTimer()
		id := tx.TxHash().String()
		start := time.Now()
		if _, err := e.node.Client().Broadcast(ctx, tx); err != nil {
			b.Fatal(err)
		}
		for named := false; !named; {
			if time.Since(start) > 5*time.Second {
				b.Fatalf("theft %s not recorded in 5 s", id)
			}
			time.Sleep(time.Millisecond)
			e.core.Read(func(s *core.State) { named = s.Incidents.Names(id) })
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}
