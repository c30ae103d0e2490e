package signer

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/anchor"
	"kinko/internal/chain/btc/regtest"
	"kinko/internal/core"
	"kinko/internal/journal/tree"
	"kinko/internal/ledger"
	"kinko/internal/withdraw"
)

// minedTx returns a batch's transaction from the block the node mined it
// in: what anyone with a node reads.
func (e *e2e) minedTx(t *testing.T, txid [32]byte) *wire.MsgTx {
	t.Helper()
	bh, mined, err := e.node.Client().TxBlock(e.ctx, chainhash.Hash(txid))
	if err != nil || !mined {
		t.Fatalf("batch %x not mined: %v", txid, err)
	}
	blk, err := e.node.Client().Block(e.ctx, bh)
	if err != nil {
		t.Fatal(err)
	}
	for _, tx := range blk.Transactions {
		if tx.TxHash() == chainhash.Hash(txid) {
			return tx
		}
	}
	t.Fatalf("block %s does not hold %x", bh, txid)
	return nil
}

// request journals one more withdrawal of customer cust.
func (e *e2e) request(t *testing.T, cust ledger.OwnerID, id string, amount uint64) {
	t.Helper()
	at := time.Now()
	in := withdraw.Intent{RequestID: id, Asset: "BTC", Address: payee(byte(cust)), Amount: withdraw.AmountOf(amount), Expiry: at.Add(time.Hour).Unix()}
	sig, _ := in.Sign(e.intent[cust])
	o, err := e.c.Submit(e.ctx, at, core.RequestWithdrawal{Customer: cust, Intent: in, PubKey: [32]byte(e.intent[cust].Public().(ed25519.PublicKey)), Sig: sig})
	if err != nil || o.Err != nil || o.Value.(withdraw.Withdrawal).Status != withdraw.StatusQueued {
		t.Fatalf("withdrawal %s: %v %v %+v", id, err, o.Err, o.Value)
	}
}

// TestBatchAnchorsHead: the hot signer's first batch carries the journal's
// head in an OP_RETURN output; the co-signer (checking it against its own
// mirror) co-signs it, btcd mines it, the journal records it; from the
// block alone the size and root are read back and an entry's inclusion
// proof checks against them. A batch within the interval carries none; the
// first after it anchors again.
func TestBatchAnchorsHead(t *testing.T) {
	e := setup(t)
	var skew atomic.Int64
	s := New(Config{Backend: InProcess{Core: e.c}, Chain: btcChain(e.node), PrevTxs: e.node.Client(), Net: regtest.Net, Account: e.hotK[0].a, FP: e.hotK[0].fp,
		CoSigner: e.local, AnchorEvery: time.Hour, Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	before := e.c.Journal().TreeHead()
	if sent, err := s.Step(e.ctx); err != nil || len(sent) != 1 {
		t.Fatalf("step = %v, %v", sent, err)
	}
	e.mineAndWatch()
	var b withdraw.Batch
	e.c.Read(func(st *core.State) { b = st.Withdraw.Batches()[0] })
	if b.Anchor == nil || b.Status != withdraw.BatchConfirmed || b.Height == 0 {
		t.Fatalf("first batch: anchor %+v, %s at %d", b.Anchor, b.Status, b.Height)
	}
	if b.Anchor.Size != before.Size || b.Anchor.Root != before.Root || b.Anchor.Time == 0 {
		t.Fatalf("batch anchor %+v; want the head of %d entries %s", b.Anchor, before.Size, before.Root)
	}
	// From the chain alone: the block's transaction, its anchor.
	tx := e.minedTx(t, b.TxID)
	a, vout, err := anchor.Find(tx)
	if err != nil || vout != b.Anchor.Vout || tx.TxOut[vout].Value != 0 {
		t.Fatalf("mined anchor at %d, %v", vout, err)
	}
	if a.Size != before.Size || a.Root != before.Root {
		t.Fatalf("mined anchor %d %s; want %d %s", a.Size, a.Root, before.Size, before.Root)
	}
	// Every entry of the anchored tree proves against the chain's root;
	// a proof against another root does not.
	last, _ := e.c.Journal().Get(a.Size)
	for _, seq := range []uint64{1, a.Size / 2, a.Size} {
		p, err := e.c.Journal().InclusionProof(seq, a.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Verify(tree.Head{Size: a.Size, Root: a.Root, Time: last.Time}); err != nil {
			t.Fatalf("entry %d against the mined anchor: %v", seq, err)
		}
		wrong := a.Root
		wrong[31] ^= 1
		if err := p.Verify(tree.Head{Size: a.Size, Root: wrong, Time: last.Time}); err == nil {
			t.Fatalf("entry %d verified against another root", seq)
		}
	}

	// Within the hour: no anchor.
	e.request(t, 1, "w2", 100_000)
	if sent, err := s.Step(e.ctx); err != nil || len(sent) != 1 {
		t.Fatalf("second step = %v, %v", sent, err)
	}
	e.mineAndWatch()
	e.c.Read(func(st *core.State) { b = st.Withdraw.Batches()[1] })
	if b.Anchor != nil || b.Status != withdraw.BatchConfirmed {
		t.Fatalf("second batch within the hour: anchor %+v, %s", b.Anchor, b.Status)
	}
	if _, _, err := anchor.Find(e.minedTx(t, b.TxID)); err == nil {
		t.Fatal("the second batch's transaction carries an anchor")
	}
	// An hour later by the signer's clock: anchored again, at the head now.
	skew.Store(int64(61 * time.Minute))
	e.request(t, 2, "w3", 100_000)
	now := e.c.Journal().TreeHead()
	if sent, err := s.Step(e.ctx); err != nil || len(sent) != 1 {
		t.Fatalf("third step = %v, %v", sent, err)
	}
	e.mineAndWatch()
	e.c.Read(func(st *core.State) { b = st.Withdraw.Batches()[2] })
	if b.Anchor == nil || b.Anchor.Size != now.Size || b.Anchor.Root != now.Root {
		t.Fatalf("third batch after the hour: anchor %+v; want %d %s", b.Anchor, now.Size, now.Root)
	}
	if a, _, err := anchor.Find(e.minedTx(t, b.TxID)); err != nil || a.Size != now.Size {
		t.Fatalf("third batch mined anchor %+v, %v", a, err)
	}
}

// TestReserveRefusesFalseAnchor: the state machine refuses (reserving
// nothing) a batch whose recorded anchor is not its transaction's: another
// size, another root or another output.
func TestReserveRefusesFalseAnchor(t *testing.T) {
	e := setup(t)
	// A real batch, built by a signer whose backend only records it.
	rec := &recording{InProcess: InProcess{Core: e.c}}
	s := New(Config{Backend: rec, Chain: btcChain(e.node), PrevTxs: e.node.Client(), Net: regtest.Net, Account: e.hotK[0].a, FP: e.hotK[0].fp, CoSigner: e.local})
	s.Step(e.ctx)
	if rec.batch == nil || rec.batch.Anchor == nil {
		t.Fatalf("no anchored batch built: %+v", rec.batch)
	}
	built := *rec.batch
	for _, tc := range []struct {
		name string
		edit func(a *withdraw.Anchor)
	}{
		{"another size", func(a *withdraw.Anchor) { a.Size-- }},
		{"another root", func(a *withdraw.Anchor) { a.Root[0] ^= 1 }},
		{"another output", func(a *withdraw.Anchor) { a.Vout = 0 }},
	} {
		b := built
		a := *b.Anchor
		tc.edit(&a)
		b.Anchor = &a
		o, err := e.c.Submit(e.ctx, time.Now(), core.ReserveBatch{Batch: b})
		if err != nil || o.Err == nil {
			t.Errorf("%s: reserve = %v, %v; want refused", tc.name, err, o.Err)
		}
	}
	e.c.Read(func(st *core.State) {
		if n := len(st.Withdraw.Batches()); n != 0 {
			t.Fatalf("%d batches reserved by refused commands", n)
		}
		for _, wd := range st.Withdraw.Withdrawals(0) {
			if wd.Status != withdraw.StatusQueued {
				t.Fatalf("withdrawal %s is %s after refusals", wd.ID, wd.Status)
			}
		}
	})
	// The batch as built is reserved.
	if o, err := e.c.Submit(e.ctx, time.Now(), core.ReserveBatch{Batch: built}); err != nil || o.Err != nil {
		t.Fatalf("the true batch: %v %v", err, o.Err)
	}
}

// recording journals nothing: it keeps the batch the signer would reserve.
type recording struct {
	InProcess
	batch *withdraw.Batch
}

func (r *recording) Submit(_ context.Context, cmd core.Command) error {
	if rb, ok := cmd.(core.ReserveBatch); ok {
		b := rb.Batch
		r.batch = &b
	}
	return fmt.Errorf("not journaled")
}
