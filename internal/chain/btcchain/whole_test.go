package btcchain_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"

	"kinko/internal/chain"
	"kinko/internal/chain/btc/regtest"
	"kinko/internal/chain/btcchain"
)

// scripts is a RawSet of output scripts, counting how it is asked.
type scripts struct {
	mu         sync.Mutex
	set        [][]byte
	raw, typed int
}

func (s *scripts) HasRaw(pk []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raw++
	return slices.ContainsFunc(s.set, func(p []byte) bool { return bytes.Equal(p, pk) })
}

func (s *scripts) Has(addr string) bool {
	pk, err := btcchain.Script(addr, regtest.Net)
	s.mu.Lock()
	s.typed++
	s.mu.Unlock()
	return err == nil && s.HasRaw(pk)
}

// TestWholeTransactions: with WatchAllSpends a block and a pending
// transaction tell every input (a coinbase's none), by poll and by push,
// each transaction's transfers and spends together; a transaction that
// leaves the pool is told gone; Sources gives the addresses its inputs
// spent; a Watch of books of scripts is asked with the script alone.
func TestWholeTransactions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := regtest.New(t, regtest.Options{})
	b := n.Chain()
	addr, err := btcutil.DecodeAddress("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", regtest.Net)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := txscript.PayToAddrScript(addr)
	set := &scripts{set: [][]byte{pk}}
	w := chain.NewWatch()
	w.WatchAllSpends()
	w.AddSet(set)
	pushed := make(chan chain.PendingTx, 16)
	sub, err := b.SubscribeTxs(ctx, w, func() {}, func(p chain.PendingTx) { pushed <- p })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for !sub.Connected() {
		if ctx.Err() != nil {
			t.Fatal("the node's websocket never connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tx, err := n.SendTo(ctx, map[string]btcutil.Amount{addr.EncodeAddress(): 1_2345_6789})
	if err != nil {
		t.Fatal(err)
	}
	txid := chain.NewID(chain.Bitcoin, tx.TxHash())
	var wantSpends []chain.Spend
	for i, in := range tx.TxIn {
		wantSpends = append(wantSpends, chain.Spend{Tx: txid, Input: uint32(i), Prev: chain.Outpoint{Tx: chain.NewID(chain.Bitcoin, in.PreviousOutPoint.Hash), Index: in.PreviousOutPoint.Index}})
	}
	var wantTransfers []chain.Transfer
	for i, o := range tx.TxOut {
		if bytes.Equal(o.PkScript, pk) {
			wantTransfers = append(wantTransfers, chain.Transfer{Tx: txid, Index: uint32(i), To: addr.EncodeAddress(), Amount: chain.Amount{Lo: 1_2345_6789}})
		}
	}
	whole := func(what string, p chain.PendingTx) {
		t.Helper()
		if p.Tx != txid || !slices.Equal(p.Spends, wantSpends) || !slices.Equal(p.Transfers, wantTransfers) {
			t.Fatalf("%s: %+v; want %s with spends %+v and transfers %+v", what, p, txid, wantSpends, wantTransfers)
		}
	}
	select {
	case p := <-pushed:
		whole("pushed", p)
	case <-time.After(10 * time.Second):
		t.Fatal("the pending transaction was not pushed")
	}
	txs, gone, err := b.PollPendingTxs(ctx, w)
	if err != nil || len(txs) != 1 || len(gone) != 0 {
		t.Fatalf("polled %+v, gone %v, %v; want the one transaction", txs, gone, err)
	}
	whole("polled", txs[0])
	if again, _, err := b.PollPendingTxs(ctx, w); err != nil || len(again) != 0 {
		t.Fatalf("polled again: %+v, %v; want nothing new", again, err)
	}
	// Where its coins came from: the addresses its inputs' outputs paid.
	var wantFrom []string
	for _, in := range tx.TxIn {
		prev, err := n.Client().Tx(ctx, in.PreviousOutPoint.Hash)
		if err != nil {
			t.Fatal(err)
		}
		_, as, _, _ := txscript.ExtractPkScriptAddrs(prev.TxOut[in.PreviousOutPoint.Index].PkScript, regtest.Net)
		for _, a := range as {
			wantFrom = append(wantFrom, a.EncodeAddress())
		}
	}
	if from, err := b.Sources(ctx, txid); err != nil || len(from) == 0 || !slices.Equal(from, wantFrom) {
		t.Fatalf("Sources = %v, %v; want %v", from, err, wantFrom)
	}
	hs, err := n.Generate(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, gone, err := b.PollPendingTxs(ctx, w); err != nil || !slices.Equal(gone, []chain.ID{txid}) {
		t.Fatalf("after mining: gone %v, %v; want [%s]", gone, err, txid)
	}
	blk, err := b.Block(ctx, chain.NewID(chain.Bitcoin, *hs[0]), w)
	if err != nil {
		t.Fatal(err)
	}
	if len(blk.TxIDs) != 2 || blk.TxIDs[1] != txid {
		t.Fatalf("block txs %v; want the coinbase and %s", blk.TxIDs, txid)
	}
	if !slices.Equal(blk.Spends, wantSpends) || !slices.Equal(blk.Transfers, wantTransfers) {
		t.Fatalf("block spends %+v, transfers %+v; want %+v, %+v (none for the coinbase)", blk.Spends, blk.Transfers, wantSpends, wantTransfers)
	}
	set.mu.Lock()
	raw, typed := set.raw, set.typed
	set.mu.Unlock()
	if raw == 0 || typed != 0 {
		t.Fatalf("the book was asked %d times by script, %d by address; want scripts only", raw, typed)
	}
	// Without WatchAllSpends, only watched outputs' spends are told.
	plain := chain.NewWatch()
	plain.AddSet(set)
	blk, err = b.Block(ctx, chain.NewID(chain.Bitcoin, *hs[0]), plain)
	if err != nil || len(blk.Spends) != 0 || !slices.Equal(blk.Transfers, wantTransfers) {
		t.Fatalf("block for a plain watch: %+v, %v; want the transfer and no spends", blk, err)
	}
}
