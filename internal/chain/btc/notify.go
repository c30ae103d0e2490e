package btc

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/wire"
)

// Subscription is a websocket connection to a btcd node that pushes every
// transaction its mempool accepts and every block it connects
// (notifynewtransactions, notifyblocks), so a watcher sees a spend the
// moment the node does instead of at its next poll. The client reconnects
// by itself and registers the notifications again; Connected tells whether
// it is up, for a poll that covers the gaps.
type Subscription struct {
	rpc *rpcclient.Client
}

// maxNotifiedTx bounds the hex of one notified transaction decoded.
const maxNotifiedTx = 8 << 20

// Subscribe connects to the node's websocket endpoint (/ws on its RPC
// address) and calls onTx with each transaction accepted to its mempool
// and onBlock with each block connected. The callbacks run on the client's
// notification goroutine, one at a time, in the node's order: they must
// not block for long.
func Subscribe(cfg Config, onTx func(*wire.MsgTx), onBlock func(chainhash.Hash, int32)) (*Subscription, error) {
	if cfg.Net == nil {
		return nil, errors.New("btc: network not set")
	}
	h := &rpcclient.NotificationHandlers{
		OnTxAcceptedVerbose: func(d *btcjson.TxRawResult) {
			if onTx == nil || len(d.Hex) > maxNotifiedTx {
				return
			}
			raw, err := hex.DecodeString(d.Hex)
			if err != nil {
				return
			}
			tx := wire.NewMsgTx(2)
			if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
				return
			}
			onTx(tx)
		},
		OnBlockConnected: func(hash *chainhash.Hash, height int32, _ time.Time) {
			if onBlock != nil {
				onBlock(*hash, height)
			}
		},
	}
	rpc, err := rpcclient.New(&rpcclient.ConnConfig{Host: cfg.Host, Endpoint: "ws", User: cfg.User, Pass: cfg.Pass, DisableTLS: cfg.DisableTLS}, h)
	if err != nil {
		return nil, fmt.Errorf("btc: subscribe: %w", err)
	}
	if err := rpc.NotifyNewTransactions(true); err != nil {
		rpc.Shutdown()
		return nil, fmt.Errorf("btc: notifynewtransactions: %w", err)
	}
	if err := rpc.NotifyBlocks(); err != nil {
		rpc.Shutdown()
		return nil, fmt.Errorf("btc: notifyblocks: %w", err)
	}
	return &Subscription{rpc: rpc}, nil
}

// Connected reports whether the websocket is up now.
func (s *Subscription) Connected() bool { return !s.rpc.Disconnected() }

// closeWait bounds how long Close waits for the websocket client's
// goroutines.
const closeWait = 500 * time.Millisecond

// Close ends the subscription. It waits for the websocket client's
// goroutines at most closeWait: with the node gone, rpcclient's reconnect
// loop sleeps between attempts without looking at its shutdown (5 s after
// the first failure, growing to a minute), and a role stopping on Ctrl-C
// does not wait for that; the loop sees the shutdown and ends when its
// sleep does.
func (s *Subscription) Close() {
	s.rpc.Shutdown()
	done := make(chan struct{})
	// Ends when rpcclient's goroutines have.
	go func() { s.rpc.WaitForShutdown(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeWait):
	}
}
