package trace_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/chain/btcchain"
	"kinko/internal/trace"
)

// thief is a key of the thief's and its P2WPKH address.
type thief struct {
	key  *btcec.PrivateKey
	addr btcutil.Address
	pk   []byte
}

func newThief(t *testing.T) thief {
	k, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	a, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(k.PubKey().SerializeCompressed()), regtest.Net)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := txscript.PayToAddrScript(a)
	return thief{k, a, pk}
}

// spend signs a transaction spending op (value, paying from) to outs.
func spend(t *testing.T, from thief, op wire.OutPoint, value int64, outs ...*wire.TxOut) *wire.MsgTx {
	t.Helper()
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&op, nil, nil))
	for _, o := range outs {
		tx.AddTxOut(o)
	}
	fetcher := txscript.NewCannedPrevOutputFetcher(from.pk, value)
	w, err := txscript.WitnessSignature(tx, txscript.NewTxSigHashes(tx, fetcher), 0, value, from.pk, txscript.SigHashAll, from.key, true)
	if err != nil {
		t.Fatal(err)
	}
	tx.TxIn[0].Witness = w
	return tx
}

// TestTraceSameBlockHops: the stolen coins hop twice within one block
// (the theft's output spent, and that spend's output spent again, all
// mined together), then once more in the next block, beside a payment of
// nobody's that is not traced. Tracing through chain.Backend finds every
// hop in its block, with the edges along the path, and stops at the
// hops asked for.
func TestTraceSameBlockHops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	node := regtest.New(t, regtest.Options{})
	a, b, c, d := newThief(t), newThief(t), newThief(t), newThief(t)
	_, tipBefore, err := node.Client().BestBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	theft, err := node.SendTo(ctx, map[string]btcutil.Amount{a.addr.EncodeAddress(): 10_000_000})
	if err != nil {
		t.Fatal(err)
	}
	var op wire.OutPoint
	for i, o := range theft.TxOut {
		if string(o.PkScript) == string(a.pk) {
			op = wire.OutPoint{Hash: theft.TxHash(), Index: uint32(i)}
		}
	}
	hop1 := spend(t, a, op, 10_000_000, wire.NewTxOut(9_990_000, b.pk))
	hop2 := spend(t, b, wire.OutPoint{Hash: hop1.TxHash()}, 9_990_000, wire.NewTxOut(4_000_000, c.pk), wire.NewTxOut(5_980_000, d.pk))
	for _, tx := range []*wire.MsgTx{hop1, hop2} {
		if _, err := node.Client().Broadcast(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
	stranger := newThief(t)
	if _, err := node.SendTo(ctx, map[string]btcutil.Amount{stranger.addr.EncodeAddress(): 1_000_000}); err != nil {
		t.Fatal(err)
	}
	if _, err := node.Generate(ctx, 1); err != nil {
		t.Fatal(err)
	}
	hop3 := spend(t, c, wire.OutPoint{Hash: hop2.TxHash()}, 4_000_000, wire.NewTxOut(3_990_000, a.pk))
	if _, err := node.Client().Broadcast(ctx, hop3); err != nil {
		t.Fatal(err)
	}
	if _, err := node.Generate(ctx, 1); err != nil {
		t.Fatal(err)
	}
	b0 := btcchain.New(node.Client(), node.Config(), 0)
	g, err := trace.Trace(ctx, b0, node.Client(), []chainhash.Hash{theft.TxHash()}, trace.Options{Hops: 3, FromHeight: tipBefore, Net: regtest.Net})
	if err != nil {
		t.Fatal(err)
	}
	mined := tipBefore + 1
	want := []trace.Tx{{TxID: theft.TxHash().String(), Hop: 0, Height: mined}, {TxID: hop1.TxHash().String(), Hop: 1, Height: mined},
		{TxID: hop2.TxHash().String(), Hop: 2, Height: mined}, {TxID: hop3.TxHash().String(), Hop: 3, Height: mined + 1}}
	if len(g.Txs) != len(want) {
		t.Fatalf("traced %+v; want %+v", g.Txs, want)
	}
	for i := range want {
		if g.Txs[i] != want[i] {
			t.Fatalf("traced %+v; want %+v", g.Txs, want)
		}
	}
	edges := []trace.Edge{{From: theft.TxHash().String(), Vout: op.Index, To: hop1.TxHash().String(), Value: 10_000_000, Address: a.addr.EncodeAddress()},
		{From: hop1.TxHash().String(), Vout: 0, To: hop2.TxHash().String(), Value: 9_990_000, Address: b.addr.EncodeAddress()},
		{From: hop2.TxHash().String(), Vout: 0, To: hop3.TxHash().String(), Value: 4_000_000, Address: c.addr.EncodeAddress()}}
	if len(g.Edges) != len(edges) {
		t.Fatalf("edges %+v; want %+v", g.Edges, edges)
	}
	for i := range edges {
		if g.Edges[i] != edges[i] {
			t.Fatalf("edges %+v; want %+v", g.Edges, edges)
		}
	}
	list := strings.Join(g.AddressList(), " ")
	for _, th := range []thief{a, b, c, d} {
		if !strings.Contains(list, th.addr.EncodeAddress()) {
			t.Errorf("addresses %s lack %s", list, th.addr)
		}
	}
	if strings.Contains(list, stranger.addr.EncodeAddress()) {
		t.Errorf("addresses %s hold the stranger's %s", list, stranger.addr)
	}
	// Two hops: hop2 is listed, its outputs not followed.
	g2, err := trace.Trace(ctx, b0, node.Client(), []chainhash.Hash{theft.TxHash()}, trace.Options{Hops: 2, FromHeight: tipBefore, Net: regtest.Net})
	if err != nil {
		t.Fatal(err)
	}
	if len(g2.Txs) != 3 || g2.Txs[2].TxID != hop2.TxHash().String() || len(g2.Edges) != 2 {
		t.Fatalf("two hops: %+v", g2)
	}
}
