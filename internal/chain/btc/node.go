// Package btc connects kinko to a Bitcoin node (btcd or Bitcoin Core) over
// JSON-RPC: it follows the best chain and the mempool, fetches
// transactions, estimates fees and broadcasts.
package btc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/wire"
)

// Config says how to reach a node.
type Config struct {
	Host string // host:port of the node's RPC
	User string
	Pass string
	// TLS is off only for a node on loopback (regtest in development and
	// tests); a node elsewhere must speak TLS.
	DisableTLS bool
	Net        *chaincfg.Params
}

// Node is a connection to a node. Its methods are safe for concurrent use.
type Node struct {
	rpc *rpcclient.Client
	net *chaincfg.Params
}

// CallTimeout bounds one call to the node: the RPC client retries a node
// that refuses connections for over twenty seconds, and a watcher must
// say much sooner that its node is gone.
var CallTimeout = 5 * time.Second

// ErrNodeDown reports a node that does not answer.
var ErrNodeDown = errors.New("btc: node does not answer")

// Dial returns a client for the node. It does not wait for the node: the
// first call tells whether it answers.
func Dial(cfg Config) (*Node, error) {
	if cfg.Net == nil {
		return nil, errors.New("btc: network not set")
	}
	rpc, err := rpcclient.New(&rpcclient.ConnConfig{
		Host: cfg.Host, User: cfg.User, Pass: cfg.Pass,
		HTTPPostMode: true, DisableTLS: cfg.DisableTLS,
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("btc: %w", err)
	}
	return &Node{rpc: rpc, net: cfg.Net}, nil
}

// Net returns the node's network.
func (n *Node) Net() *chaincfg.Params { return n.net }

// RPC returns the underlying client, for tools and tests.
func (n *Node) RPC() *rpcclient.Client { return n.rpc }

// Close releases the client.
func (n *Node) Close() { n.rpc.Shutdown() }

// call runs fn, which may block on the network, unless ctx ends first; the
// call itself then ends with the HTTP client's own timeout.
func call[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	type res struct {
		v   T
		err error
	}
	ch := make(chan res, 1)
	// The goroutine exits when fn returns; rpcclient's HTTP client bounds
	// how long that can take.
	go func() {
		v, err := fn()
		ch <- res{v, err}
	}()
	timer := time.NewTimer(CallTimeout)
	defer timer.Stop()
	select {
	case <-timer.C:
		var zero T
		return zero, fmt.Errorf("%w: no answer within %v", ErrNodeDown, CallTimeout)
	case r := <-ch:
		var rerr *btcjson.RPCError
		if errors.As(r.err, &rerr) {
			// The node answered, with a refusal.
			return r.v, fmt.Errorf("btc: node refused: %w", r.err)
		}
		if r.err != nil {
			return r.v, fmt.Errorf("%w: %w", ErrNodeDown, r.err)
		}
		return r.v, nil
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// BestBlock returns the hash and height of the node's best block.
func (n *Node) BestBlock(ctx context.Context) (chainhash.Hash, int32, error) {
	type hh struct {
		h *chainhash.Hash
		n int32
	}
	r, err := call(ctx, func() (hh, error) {
		h, height, err := n.rpc.GetBestBlock()
		return hh{h, height}, err
	})
	if err != nil {
		return chainhash.Hash{}, 0, err
	}
	return *r.h, r.n, nil
}

// BlockHash returns the hash of the best chain's block at height.
func (n *Node) BlockHash(ctx context.Context, height int32) (chainhash.Hash, error) {
	h, err := call(ctx, func() (*chainhash.Hash, error) { return n.rpc.GetBlockHash(int64(height)) })
	if err != nil {
		return chainhash.Hash{}, err
	}
	return *h, nil
}

// Block returns the block with hash h.
func (n *Node) Block(ctx context.Context, h chainhash.Hash) (*wire.MsgBlock, error) {
	return call(ctx, func() (*wire.MsgBlock, error) { return n.rpc.GetBlock(&h) })
}

// MempoolTxids returns the ids of the transactions in the node's mempool.
func (n *Node) MempoolTxids(ctx context.Context) ([]chainhash.Hash, error) {
	ids, err := call(ctx, n.rpc.GetRawMempool)
	if err != nil {
		return nil, err
	}
	out := make([]chainhash.Hash, len(ids))
	for i, id := range ids {
		out[i] = *id
	}
	return out, nil
}

// Tx returns a transaction from the mempool or, with a transaction index,
// from the chain.
func (n *Node) Tx(ctx context.Context, txid chainhash.Hash) (*wire.MsgTx, error) {
	tx, err := call(ctx, func() (*btcutil.Tx, error) { return n.rpc.GetRawTransaction(&txid) })
	if err != nil {
		return nil, err
	}
	return tx.MsgTx(), nil
}

// Broadcast sends tx to the node. A transaction the node already has is not
// an error: broadcasting again after a crash must be safe.
func (n *Node) Broadcast(ctx context.Context, tx *wire.MsgTx) (chainhash.Hash, error) {
	txid := tx.TxHash()
	_, err := call(ctx, func() (*chainhash.Hash, error) { return n.rpc.SendRawTransaction(tx, false) })
	if err != nil {
		var rerr *btcjson.RPCError
		if errors.As(err, &rerr) && (rerr.Code == btcjson.ErrRPCTxAlreadyInChain || rerr.Code == btcjson.ErrRPCVerifyAlreadyInChain) {
			return txid, nil
		}
		// btcd answers a transaction already in its mempool with the
		// generic rejection code; the text tells.
		if strings.Contains(err.Error(), "already have transaction") {
			return txid, nil
		}
		return txid, fmt.Errorf("btc: broadcast %s: %w", txid, err)
	}
	return txid, nil
}

// FallbackFeeRate is the fee rate, in satoshi per virtual byte, used when
// the node cannot estimate one (regtest, a fresh node).
const FallbackFeeRate = 10

// FeeRate returns the node's estimate for confirmation within target
// blocks, in satoshi per virtual byte, or FallbackFeeRate.
func (n *Node) FeeRate(ctx context.Context, target int64) int64 {
	r, err := call(ctx, func() (*btcjson.EstimateSmartFeeResult, error) { return n.rpc.EstimateSmartFee(target, nil) })
	if err != nil || r == nil || r.FeeRate == nil || *r.FeeRate <= 0 {
		return FallbackFeeRate
	}
	// BTC per kvB to sat per vB, rounding up; the node's float is turned
	// into integer satoshi once, here at the edge.
	satPerKvB := int64(*r.FeeRate*1e8 + 0.5)
	return max(1, (satPerKvB+999)/1000)
}

// TxBlock returns the hash of the block holding a mined transaction, and
// false for one not mined yet (the node needs a transaction index for
// transactions not in its mempool).
func (n *Node) TxBlock(ctx context.Context, txid chainhash.Hash) (chainhash.Hash, bool, error) {
	r, err := call(ctx, func() (*btcjson.TxRawResult, error) { return n.rpc.GetRawTransactionVerbose(&txid) })
	if err != nil {
		return chainhash.Hash{}, false, err
	}
	if r.BlockHash == "" {
		return chainhash.Hash{}, false, nil
	}
	h, err := chainhash.NewHashFromStr(r.BlockHash)
	if err != nil {
		return chainhash.Hash{}, false, fmt.Errorf("btc: node answered block hash %q: %w", r.BlockHash, err)
	}
	return *h, true, nil
}

// BlockInfo returns a block's height and its confirmations as the node
// counts them (the block itself included), and whether it is in the
// node's best chain.
func (n *Node) BlockInfo(ctx context.Context, h chainhash.Hash) (height int32, confirmations int64, best bool, err error) {
	r, err := call(ctx, func() (*btcjson.GetBlockHeaderVerboseResult, error) { return n.rpc.GetBlockHeaderVerbose(&h) })
	if err != nil {
		return 0, 0, false, err
	}
	at, err := n.BlockHash(ctx, r.Height)
	if err != nil {
		return 0, 0, false, err
	}
	return r.Height, r.Confirmations, at == h, nil
}
