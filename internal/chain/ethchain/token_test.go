package ethchain_test

import (
	"context"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain"
	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/safe/safetest"
	"kinko/internal/chain/ethchain"
)

// TestTokenTransfers: the Transfer logs of a listed token to a watched
// address are reported, pending (from the call's data) and mined (from
// the log, with its index); those of a token not listed are not.
func TestTokenTransfers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := newHarness(t)
	c := h.n.Client()
	deploy := func() common.Address {
		r, err := c.Send(ctx, h.key, eth.Tx{Data: safetest.LogEmitterCode()})
		if err != nil {
			t.Fatal(err)
		}
		if code, err := c.Code(ctx, r.ContractAddress); err != nil || len(code) != 49 {
			t.Fatalf("token code = %d bytes, %v; want 49", len(code), err)
		}
		return r.ContractAddress
	}
	listed, unlisted := deploy(), deploy()
	b := ethchain.New(c, h.n.WSURL(), []common.Address{listed})
	w := chain.NewWatch()
	toKey, _ := crypto.GenerateKey()
	to := crypto.PubkeyToAddress(toKey.PublicKey)
	if _, err := w.Add(b, to.Hex()); err != nil {
		t.Fatal(err)
	}
	n := chain.NewNotifier(b, w, chain.Options{PollInterval: 100 * time.Millisecond})
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer n.Stop()

	send := func(token common.Address, amount int64) chain.ID {
		tx, err := c.Sign(ctx, h.key, eth.Tx{To: &token, Data: safetest.TransferCall(to, big.NewInt(amount)), Gas: 60_000})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := tx.MarshalBinary()
		id, err := b.Broadcast(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	strange := send(unlisted, 7)
	ours := send(listed, 5_000_000)
	from := crypto.PubkeyToAddress(h.key.PublicKey).Hex()
	var pending, mined *chain.Transfer
	for pending == nil || mined == nil {
		select {
		case e := <-n.Events():
			for _, tr := range e.Transfers {
				if tr.Tx == strange {
					t.Fatalf("%s: the unlisted token's transfer is reported: %+v", e.Kind, tr)
				}
				if tr.Tx != ours {
					continue
				}
				if tr.Asset != listed.Hex() || tr.From != from || tr.To != to.Hex() || tr.Amount != (chain.Amount{Lo: 5_000_000}) {
					t.Fatalf("%s transfer = %+v; want 5000000 of %s from %s to %s", e.Kind, tr, listed, from, to)
				}
				tr := tr
				switch e.Kind {
				case chain.Pending:
					pending = &tr
				case chain.Connected:
					mined = &tr
				}
			}
		case <-ctx.Done():
			t.Fatalf("pending %v, mined %v: %v", pending, mined, ctx.Err())
		}
	}
	r, err := c.Eth().TransactionReceipt(ctx, common.Hash(ours.Bytes()))
	if err != nil || len(r.Logs) != 1 {
		t.Fatalf("receipt: %v, %v", r, err)
	}
	if mined.Index != uint32(r.Logs[0].Index) {
		t.Fatalf("mined transfer index = %d; want the log's %d", mined.Index, r.Logs[0].Index)
	}
	// The unlisted token's transfer was mined first (its nonce is lower),
	// so its block was connected, and told nothing, before ours.
	if _, mined, err := b.TxBlock(ctx, strange); err != nil || !mined {
		t.Fatalf("TxBlock(unlisted transfer) = %v, %v; want mined", mined, err)
	}
	if _, err := b.Balance(ctx, to.Hex(), unlisted.Hex(), chain.NewID(chain.Ethereum, r.BlockHash)); !errors.Is(err, chain.ErrUnknownAsset) {
		t.Fatalf("Balance of an unlisted token: %v; want ErrUnknownAsset", err)
	}
}
