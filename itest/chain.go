package itest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/chain/btc/regtest"
)

// Chain is what a test does and sees on the deployment's btcd regtest
// node: paying, mining, waiting for transactions, and the coins at an
// address, all from the node's own answers.
type Chain struct {
	Node *regtest.Node

	mu    sync.Mutex
	tip   int32          // the last block scanned into utxos
	tipH  chainhash.Hash // its hash, to notice a reorg
	utxos map[wire.OutPoint]*wire.TxOut
}

// NewChain returns the helpers for node.
func NewChain(node *regtest.Node) *Chain {
	return &Chain{Node: node, utxos: map[wire.OutPoint]*wire.TxOut{}}
}

// Mine mines n blocks to the node's harness address.
func (c *Chain) Mine(ctx context.Context, n uint32) ([]*chainhash.Hash, error) {
	return c.Node.Generate(ctx, n)
}

// Height returns the best block's height.
func (c *Chain) Height(ctx context.Context) (int32, error) {
	_, h, err := c.Node.Client().BestBlock(ctx)
	return h, err
}

// Pay pays amount satoshi to address from the node's mature coins and
// returns the paying output.
func (c *Chain) Pay(ctx context.Context, address string, amount int64) (wire.OutPoint, error) {
	tx, err := c.Node.SendTo(ctx, map[string]btcutil.Amount{address: btcutil.Amount(amount)})
	if err != nil {
		return wire.OutPoint{}, err
	}
	pk, err := scriptOf(address)
	if err != nil {
		return wire.OutPoint{}, err
	}
	for i, o := range tx.TxOut {
		if bytes.Equal(o.PkScript, pk) && o.Value == amount {
			return wire.OutPoint{Hash: tx.TxHash(), Index: uint32(i)}, nil
		}
	}
	return wire.OutPoint{}, fmt.Errorf("itest: the node's transaction %s does not pay %s", tx.TxHash(), address)
}

func scriptOf(address string) ([]byte, error) {
	a, err := btcutil.DecodeAddress(address, regtest.Net)
	if err != nil {
		return nil, fmt.Errorf("itest: address %q: %w", address, err)
	}
	return txscript.PayToAddrScript(a)
}

// poll calls f every pollEvery until it reports done, fails, or ctx ends.
func poll(ctx context.Context, what string, f func() (bool, error)) error {
	for {
		ok, err := f()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("itest: waiting for %s: %w", what, ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}

// inMempool reports whether txid is in the node's mempool.
func (c *Chain) inMempool(ctx context.Context, txid chainhash.Hash) (bool, error) {
	ids, err := c.Node.Client().MempoolTxids(ctx)
	if err != nil {
		return false, err
	}
	for _, id := range ids {
		if id == txid {
			return true, nil
		}
	}
	return false, nil
}

// WaitMempool waits until txid is in the node's mempool.
func (c *Chain) WaitMempool(ctx context.Context, txid chainhash.Hash) error {
	return poll(ctx, fmt.Sprintf("%s in the mempool", txid), func() (bool, error) { return c.inMempool(ctx, txid) })
}

// WaitPaying waits until a transaction in the node's mempool pays address
// and returns its txid: how a test learns the transaction a role
// broadcast.
func (c *Chain) WaitPaying(ctx context.Context, address string) (chainhash.Hash, error) {
	pk, err := scriptOf(address)
	if err != nil {
		return chainhash.Hash{}, err
	}
	var found chainhash.Hash
	err = poll(ctx, "a mempool transaction paying "+address, func() (bool, error) {
		ids, err := c.Node.Client().MempoolTxids(ctx)
		if err != nil {
			return false, err
		}
		for _, id := range ids {
			tx, err := c.Node.Client().Tx(ctx, id)
			if err != nil {
				continue // mined or evicted since the list
			}
			for _, o := range tx.TxOut {
				if bytes.Equal(o.PkScript, pk) {
					found = id
					return true, nil
				}
			}
		}
		return false, nil
	})
	return found, err
}

// Confirmations returns txid's confirmations: 0 in the mempool, an error
// if the node does not know it.
func (c *Chain) Confirmations(ctx context.Context, txid chainhash.Hash) (int64, error) {
	v, err := c.Node.RPC().GetRawTransactionVerbose(&txid)
	if err != nil {
		return 0, fmt.Errorf("itest: transaction %s: %w", txid, err)
	}
	return int64(v.Confirmations), nil
}

// WaitConfirmed waits until txid has at least confs confirmations.
func (c *Chain) WaitConfirmed(ctx context.Context, txid chainhash.Hash, confs int64) error {
	return poll(ctx, fmt.Sprintf("%s confirmed %d times", txid, confs), func() (bool, error) {
		n, err := c.Confirmations(ctx, txid)
		return n >= confs, err
	})
}

// Balance returns the satoshi the best chain holds at address: the sum of
// its unspent outputs in blocks (the mempool does not count). The node's
// address index is off, so the helper scans every block once and keeps
// the unspent outputs; a reorg makes it scan again from the start.
func (c *Chain) Balance(ctx context.Context, address string) (int64, error) {
	pk, err := scriptOf(address)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.scan(ctx); err != nil {
		return 0, err
	}
	var sum int64
	for _, o := range c.utxos {
		if bytes.Equal(o.PkScript, pk) {
			sum += o.Value
		}
	}
	return sum, nil
}

// scan brings utxos up to the best block. Call with mu held.
func (c *Chain) scan(ctx context.Context) error {
	cl := c.Node.Client()
	_, height, err := cl.BestBlock(ctx)
	if err != nil {
		return err
	}
	if c.tip > 0 {
		if h, err := cl.BlockHash(ctx, c.tip); err != nil || h != c.tipH {
			c.tip, c.utxos = 0, map[wire.OutPoint]*wire.TxOut{} // reorged: from the start
		}
	}
	for h := c.tip + 1; h <= height; h++ {
		hash, err := cl.BlockHash(ctx, h)
		if err != nil {
			return err
		}
		b, err := cl.Block(ctx, hash)
		if err != nil {
			return err
		}
		for _, tx := range b.Transactions {
			for _, in := range tx.TxIn {
				delete(c.utxos, in.PreviousOutPoint)
			}
			id := tx.TxHash()
			for i, o := range tx.TxOut {
				c.utxos[wire.OutPoint{Hash: id, Index: uint32(i)}] = o
			}
		}
		c.tip, c.tipH = h, hash
	}
	return nil
}

// Outputs returns the values of the unspent outputs in blocks paying
// address, one per output.
func (c *Chain) Outputs(ctx context.Context, address string) ([]int64, error) {
	pk, err := scriptOf(address)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.scan(ctx); err != nil {
		return nil, err
	}
	var out []int64
	for _, o := range c.utxos {
		if bytes.Equal(o.PkScript, pk) {
			out = append(out, o.Value)
		}
	}
	return out, nil
}
