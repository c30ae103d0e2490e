package signer

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/chain"
	"kinko/internal/chain/btc/regtest"
	"kinko/internal/chain/btcchain"
	"kinko/internal/core"
	"kinko/internal/signer/view"
	"kinko/internal/wallet"
	"kinko/internal/withdraw"
)

// btcChain is the chain interface's Bitcoin backend over the test's node.
func btcChain(n *regtest.Node) *btcchain.Backend {
	return btcchain.New(n.Client(), n.Config(), 0)
}

// crashed runs a signer that dies between journaling the signed batch and
// broadcasting it, and returns the batch and its transaction.
func crashed(t *testing.T, e *e2e) (withdraw.Batch, *wire.MsgTx) {
	t.Helper()
	crash := errors.New("killed between journaling and broadcasting")
	s := New(Config{Backend: InProcess{Core: e.c}, Chain: btcChain(e.node), PrevTxs: e.node.Client(), Net: regtest.Net,
		Account: e.hotK[0].a, FP: e.hotK[0].fp, CoSigner: e.local, beforeBroadcast: func() error { return crash }})
	if _, err := s.Step(e.ctx); !errors.Is(err, crash) {
		t.Fatalf("first step = %v", err)
	}
	var b withdraw.Batch
	e.c.Read(func(st *core.State) { b = st.Withdraw.Batches()[0] })
	if b.Status != withdraw.BatchBroadcast {
		t.Fatalf("batch after the crash is %s", b.Status)
	}
	raw, err := hex.DecodeString(b.RawTx)
	if err != nil {
		t.Fatal(err)
	}
	tx := wire.NewMsgTx(2)
	if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	return b, tx
}

// TestBroadcastResendMined: the signer died after the node had its batch
// (here sent by hand) and the batch was mined before the watcher saw it.
// The restarted signer sends it again through chain.Backend: btcd refuses a
// transaction whose inputs are spent, the backend finds it mined, and the
// signer takes that as sent, with the same id; it builds nothing new.
func TestBroadcastResendMined(t *testing.T) {
	e := setup(t)
	b, tx := crashed(t, e)
	if _, err := e.node.Client().Broadcast(e.ctx, tx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.node.Generate(e.ctx, 1); err != nil {
		t.Fatal(err)
	}
	if ids, _ := e.node.Client().MempoolTxids(e.ctx); len(ids) != 0 {
		t.Fatalf("mempool after mining = %v", ids)
	}
	s := New(Config{Backend: InProcess{Core: e.c}, Chain: btcChain(e.node), PrevTxs: e.node.Client(), Net: regtest.Net,
		Account: e.hotK[0].a, FP: e.hotK[0].fp, CoSigner: e.local})
	if sent, err := s.Step(e.ctx); err != nil || len(sent) != 1 || sent[0] != b.ID {
		t.Fatalf("step after the batch was mined = %v, %v", sent, err)
	}
	if ids, _ := e.node.Client().MempoolTxids(e.ctx); len(ids) != 0 {
		t.Fatalf("mempool after the resend = %v; a mined transaction is not sent twice", ids)
	}
	if err := e.w.Step(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.c.Read(func(st *core.State) {
		if n := len(st.Withdraw.Batches()); n != 1 {
			t.Fatalf("%d batches; want 1", n)
		}
		for _, wd := range st.Withdraw.Withdrawals(0) {
			if wd.Status != withdraw.StatusDone {
				t.Errorf("withdrawal %s is %s", wd.ID, wd.Status)
			}
		}
	})
}

// TestBroadcastRejectedDoubleSpend: between journaling the signed batch
// and sending it, two hot keys spend its input elsewhere (outside kinko)
// and the node has that transaction. The signer's broadcast is refused as
// chain.ErrRejected, the node keeps the other transaction only, and once
// that is mined the watcher fails the batch.
func TestBroadcastRejectedDoubleSpend(t *testing.T) {
	e := setup(t)
	b, tx := crashed(t, e)
	var v view.View
	e.c.Read(func(st *core.State) { v = view.Of(st, "BTC") })
	p, err := wallet.Read(strings.NewReader(b.PSBT))
	if err != nil {
		t.Fatal(err)
	}
	p.UnsignedTx.TxOut = p.UnsignedTx.TxOut[:1]
	p.Outputs = p.Outputs[:1]
	p.UnsignedTx.TxOut[0].Value = 3_000_000
	set, _ := wallet.NewSet([]wallet.Named{{ID: v.Hot.ID, Kind: "hot-customer", Descriptor: v.Hot.Descriptor}}, mustParse(t, v.Hot.Descriptor))
	for _, k := range e.hotK[:2] {
		if _, err := set.Sign(p, k.a, k.fp); err != nil {
			t.Fatal(err)
		}
	}
	theft, err := wallet.Finalize(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.node.Client().Broadcast(e.ctx, theft); err != nil {
		t.Fatal(err)
	}
	s := New(Config{Backend: InProcess{Core: e.c}, Chain: btcChain(e.node), PrevTxs: e.node.Client(), Net: regtest.Net,
		Account: e.hotK[0].a, FP: e.hotK[0].fp, CoSigner: e.local})
	_, err = s.Step(e.ctx)
	if !errors.Is(err, chain.ErrRejected) || !strings.Contains(err.Error(), tx.TxHash().String()) {
		t.Fatalf("step with the batch's input spent = %v; want chain.ErrRejected naming %s", err, tx.TxHash())
	}
	ids, _ := e.node.Client().MempoolTxids(e.ctx)
	if len(ids) != 1 || ids[0] != theft.TxHash() {
		t.Fatalf("mempool = %v; want only the other spend %s", ids, theft.TxHash())
	}
	e.mineAndWatch()
	e.c.Read(func(st *core.State) {
		nb, _ := st.Withdraw.Batch(b.ID)
		if nb.Status != withdraw.BatchFailed || !strings.Contains(nb.Reason, "spent by") {
			t.Fatalf("batch after the double spend = %s %q", nb.Status, nb.Reason)
		}
	})
}

// lyingNode gives, for every previous transaction asked, another one the
// node has: a node (or a man in the middle) that would have the PSBT state
// other amounts than the inputs spend.
type lyingNode struct {
	PrevTxs
	other chainhash.Hash
}

func (l lyingNode) Tx(ctx context.Context, _ chainhash.Hash) (*wire.MsgTx, error) {
	return l.PrevTxs.Tx(ctx, l.other)
}

// feeBackend is the real backend with another fee estimate, and another
// family when set.
type feeBackend struct {
	*btcchain.Backend
	fee    chain.Fee
	family chain.Family
}

func (f feeBackend) FeeEstimate(context.Context) (chain.Fee, error) { return f.fee, nil }

func (f feeBackend) Family() chain.Family {
	if f.family != 0 {
		return f.family
	}
	return f.Backend.Family()
}

// TestSignerRefusesBadChainAnswers: a previous transaction that is not the
// one asked, a fee estimate in another unit, of zero or beyond any real
// one, and a backend of another chain family: the signer refuses each
// before it journals a batch.
func TestSignerRefusesBadChainAnswers(t *testing.T) {
	e := setup(t)
	base := Config{Backend: InProcess{Core: e.c}, Chain: btcChain(e.node), PrevTxs: e.node.Client(), Net: regtest.Net,
		Account: e.hotK[0].a, FP: e.hotK[0].fp, CoSigner: e.local}
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"previous transaction not the one asked", func(c *Config) { c.PrevTxs = lyingNode{e.node.Client(), e.refill.TxIn[0].PreviousOutPoint.Hash} }, "given"},
		{"fee in wei/gas", func(c *Config) {
			c.Chain = feeBackend{Backend: btcChain(e.node), fee: chain.Fee{Rate: chain.Amount{Lo: 5}, Unit: "wei/gas"}}
		}, "not sat/vB"},
		{"fee of zero", func(c *Config) {
			c.Chain = feeBackend{Backend: btcChain(e.node), fee: chain.Fee{Unit: "sat/vB"}}
		}, "outside 1 to"},
		{"fee beyond 64 bits", func(c *Config) {
			c.Chain = feeBackend{Backend: btcChain(e.node), fee: chain.Fee{Rate: chain.Amount{Hi: 1, Lo: 5}, Unit: "sat/vB"}}
		}, "outside 1 to"},
		{"fee beyond every bitcoin", func(c *Config) {
			c.Chain = feeBackend{Backend: btcChain(e.node), fee: chain.Fee{Rate: chain.Amount{Lo: maxFeeRate + 1}, Unit: "sat/vB"}}
		}, "outside 1 to"},
		{"an ethereum backend", func(c *Config) {
			c.Chain = feeBackend{Backend: btcChain(e.node), fee: chain.Fee{Rate: chain.Amount{Lo: 5}, Unit: "sat/vB"}, family: chain.Ethereum}
		}, "not bitcoin's"},
		{"no chain", func(c *Config) { c.Chain = nil }, "no chain backend"},
		{"no previous transactions", func(c *Config) { c.PrevTxs = nil }, "previous transactions"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			sent, err := New(cfg).Step(e.ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) || len(sent) != 0 {
				t.Fatalf("step = %v, %v; want an error with %q", sent, err, tc.want)
			}
			e.c.Read(func(st *core.State) {
				if n := len(st.Withdraw.Batches()); n != 0 {
					t.Fatalf("%d batches journaled", n)
				}
			})
		})
	}
	// The same signer with the node's own answers batches and sends.
	if sent, err := New(base).Step(e.ctx); err != nil || len(sent) != 1 {
		t.Fatalf("step = %v, %v", sent, err)
	}
}
