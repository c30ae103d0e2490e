// Package btcchain is the Bitcoin backend of the chain interface
// (internal/chain) over kinko's btcd client (internal/chain/btc): blocks
// and the outputs paying watched addresses, the mempool by websocket push
// and by polling, confirmations through the node's transaction index,
// balances as the sum of a watched address's unspent outputs at a block,
// broadcast and the fee estimate.
package btcchain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/chain"
	"kinko/internal/chain/btc"
)

// MaxBalanceScan bounds the blocks one Balance reads: the backend has no
// address index, so a balance is the outputs paying the address from the
// Birth height to the block, less those spent on the way.
const MaxBalanceScan = 10_000

// maxMempoolSeen bounds the mempool ids PollPending remembers.
const maxMempoolSeen = 1 << 17

// ErrScanTooLong reports a Balance that would read more than
// MaxBalanceScan blocks.
var ErrScanTooLong = fmt.Errorf("btcchain: balance would scan more than %d blocks", MaxBalanceScan)

var _ chain.Holder = (*Backend)(nil)

// Backend is the Bitcoin chain.Backend. Safe for concurrent use.
type Backend struct {
	node  *btc.Node
	cfg   btc.Config
	birth uint64

	mu   sync.Mutex
	seen map[chainhash.Hash]struct{} // mempool ids PollPending has read
}

// New returns the backend over node (reached with cfg, for the websocket
// subscription). birth is the height from which watched addresses may
// hold coins: Balance sums outputs from there.
func New(node *btc.Node, cfg btc.Config, birth uint64) *Backend {
	return &Backend{node: node, cfg: cfg, birth: birth, seen: make(map[chainhash.Hash]struct{})}
}

// Family is chain.Bitcoin.
func (b *Backend) Family() chain.Family { return chain.Bitcoin }

func id(h chainhash.Hash) chain.ID { return chain.NewID(chain.Bitcoin, h) }

func hash(i chain.ID) (chainhash.Hash, error) {
	if i.Family() != chain.Bitcoin {
		return chainhash.Hash{}, fmt.Errorf("btcchain: %s id %s is not a bitcoin id", i.Family(), i)
	}
	return chainhash.Hash(i.Bytes()), nil
}

// ParseAddress decodes s for the node's network and returns its encoding.
func (b *Backend) ParseAddress(s string) (string, error) {
	a, err := btcutil.DecodeAddress(s, b.node.Net())
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", chain.ErrBadAddress, s, err)
	}
	if !a.IsForNet(b.node.Net()) {
		return "", fmt.Errorf("%w: %q is not for %s", chain.ErrBadAddress, s, b.node.Net().Name)
	}
	return a.EncodeAddress(), nil
}

// Tip returns the best block.
func (b *Backend) Tip(ctx context.Context) (chain.BlockRef, error) {
	h, height, err := b.node.BestBlock(ctx)
	if err != nil {
		return chain.BlockRef{}, err
	}
	return chain.BlockRef{Height: uint64(height), Hash: id(h)}, nil
}

// HashAt returns the best chain's block hash at height.
func (b *Backend) HashAt(ctx context.Context, height uint64) (chain.ID, error) {
	if height > 1<<31-1 {
		return chain.ID{}, fmt.Errorf("btcchain: height %d out of range", height)
	}
	h, err := b.node.BlockHash(ctx, int32(height))
	if err != nil {
		return chain.ID{}, err
	}
	return id(h), nil
}

// outputAddr returns the address an output pays, if it has one.
func (b *Backend) outputAddr(pk []byte) (string, bool) {
	_, addrs, _, err := txscript.ExtractPkScriptAddrs(pk, b.node.Net())
	if err != nil || len(addrs) != 1 {
		return "", false
	}
	return addrs[0].EncodeAddress(), true
}

// credits returns the outputs of tx paying addresses in w.
func (b *Backend) credits(tx *wire.MsgTx, w *chain.Watch) []chain.Transfer {
	var out []chain.Transfer
	txid := id(tx.TxHash())
	for i, o := range tx.TxOut {
		if o.Value <= 0 {
			continue
		}
		a, ok := b.outputAddr(o.PkScript)
		if !ok || !w.Has(a) {
			continue
		}
		out = append(out, chain.Transfer{Tx: txid, Index: uint32(i), To: a, Amount: chain.Amount{Lo: uint64(o.Value)}})
	}
	return out
}

// spends returns the inputs of tx spending outputs watched in w.
func spends(tx *wire.MsgTx, w *chain.Watch) []chain.Spend {
	var out []chain.Spend
	for i, in := range tx.TxIn {
		prev := chain.Outpoint{Tx: id(in.PreviousOutPoint.Hash), Index: in.PreviousOutPoint.Index}
		if w.HasOutput(prev) {
			out = append(out, chain.Spend{Tx: id(tx.TxHash()), Input: uint32(i), Prev: prev})
		}
	}
	return out
}

// Block returns the block with hash h; its transfers are the outputs
// paying addresses in w, its spends the inputs spending outputs watched in
// w (an input spending an unwatched output of a watched address is not
// resolved: that needs every input's previous output).
func (b *Backend) Block(ctx context.Context, h chain.ID, w *chain.Watch) (*chain.Block, error) {
	hh, err := hash(h)
	if err != nil {
		return nil, err
	}
	mb, err := b.node.Block(ctx, hh)
	if err != nil {
		return nil, err
	}
	height, _, _, err := b.node.BlockInfo(ctx, hh)
	if err != nil {
		return nil, err
	}
	blk := &chain.Block{Ref: chain.BlockRef{Height: uint64(height), Hash: h}, Parent: id(mb.Header.PrevBlock)}
	for _, tx := range mb.Transactions {
		blk.TxIDs = append(blk.TxIDs, id(tx.TxHash()))
		blk.Transfers = append(blk.Transfers, b.credits(tx, w)...)
		blk.Spends = append(blk.Spends, spends(tx, w)...)
	}
	return blk, nil
}

// TxBlock returns the block holding txid, through the node's index.
func (b *Backend) TxBlock(ctx context.Context, txid chain.ID) (chain.ID, bool, error) {
	hh, err := hash(txid)
	if err != nil {
		return chain.ID{}, false, err
	}
	bh, mined, err := b.node.TxBlock(ctx, hh)
	if err != nil {
		var rerr *btcjson.RPCError
		if errors.As(err, &rerr) && rerr.Code == btcjson.ErrRPCNoTxInfo {
			return chain.ID{}, false, nil
		}
		return chain.ID{}, false, err
	}
	if !mined {
		return chain.ID{}, false, nil
	}
	_, _, best, err := b.node.BlockInfo(ctx, bh)
	if err != nil {
		return chain.ID{}, false, err
	}
	return id(bh), best, nil
}

// PollPending reads the mempool and returns the watched outputs of the
// transactions it has not read before.
func (b *Backend) PollPending(ctx context.Context, w *chain.Watch) ([]chain.Transfer, error) {
	ts, _, err := b.PollPendingSpends(ctx, w)
	return ts, err
}

var _ chain.PendingSpender = (*Backend)(nil)

// PollPendingSpends is PollPending with the inputs of the same mempool
// transactions spending outputs watched in w.
func (b *Backend) PollPendingSpends(ctx context.Context, w *chain.Watch) ([]chain.Transfer, []chain.Spend, error) {
	ids, err := b.node.MempoolTxids(ctx)
	if err != nil {
		return nil, nil, err
	}
	inPool := make(map[chainhash.Hash]struct{}, len(ids))
	var out []chain.Transfer
	var sp []chain.Spend
	for _, h := range ids {
		inPool[h] = struct{}{}
		b.mu.Lock()
		_, done := b.seen[h]
		b.mu.Unlock()
		if done {
			continue
		}
		tx, err := b.node.Tx(ctx, h)
		if err != nil {
			continue // mined or evicted since: the block tells
		}
		out = append(out, b.credits(tx, w)...)
		sp = append(sp, spends(tx, w)...)
		b.mu.Lock()
		if len(b.seen) < maxMempoolSeen {
			b.seen[h] = struct{}{}
		}
		b.mu.Unlock()
	}
	b.mu.Lock()
	for h := range b.seen {
		if _, ok := inPool[h]; !ok {
			delete(b.seen, h) // left the pool: back in it after a reorg is news
		}
	}
	b.mu.Unlock()
	return out, sp, nil
}

// Subscribe connects to btcd's websocket: every transaction accepted to
// its mempool and every block connected.
func (b *Backend) Subscribe(ctx context.Context, w *chain.Watch, onBlock func(), onPending func(chain.Transfer)) (io.Closer, error) {
	s, err := btc.Subscribe(b.cfg, func(tx *wire.MsgTx) {
		for _, t := range b.credits(tx, w) {
			onPending(t)
		}
	}, func(chainhash.Hash, int32) { onBlock() })
	if err != nil {
		return nil, err
	}
	return closer{s}, nil
}

type closer struct{ s *btc.Subscription }

func (c closer) Close() error { c.s.Close(); return nil }

// Balance sums the outputs paying addr in the chain ending at the block
// at, from the Birth height, that no later transaction of that chain
// spends.
func (b *Backend) Balance(ctx context.Context, addr, asset string, at chain.ID) (chain.Amount, error) {
	if asset != "" {
		return chain.Amount{}, fmt.Errorf("%w: %q", chain.ErrUnknownAsset, asset)
	}
	a, err := b.ParseAddress(addr)
	if err != nil {
		return chain.Amount{}, err
	}
	h, err := hash(at)
	if err != nil {
		return chain.Amount{}, err
	}
	// Walk back from at by parent hashes (right also for a block off the
	// best chain), then forward.
	height, err := b.heightOf(ctx, h)
	if err != nil {
		return chain.Amount{}, err
	}
	var blocks []*wire.MsgBlock
	for ; height >= 0 && uint64(height) >= b.birth; height-- {
		if len(blocks) >= MaxBalanceScan {
			return chain.Amount{}, ErrScanTooLong
		}
		mb, err := b.node.Block(ctx, h)
		if err != nil {
			return chain.Amount{}, err
		}
		blocks = append(blocks, mb)
		h = mb.Header.PrevBlock
	}
	utxo := make(map[wire.OutPoint]int64)
	for i := len(blocks) - 1; i >= 0; i-- {
		for _, tx := range blocks[i].Transactions {
			for _, in := range tx.TxIn {
				delete(utxo, in.PreviousOutPoint)
			}
			txid := tx.TxHash()
			for j, o := range tx.TxOut {
				if got, ok := b.outputAddr(o.PkScript); ok && got == a && o.Value > 0 {
					utxo[wire.OutPoint{Hash: txid, Index: uint32(j)}] = o.Value
				}
			}
		}
	}
	var sum chain.Amount
	for _, v := range utxo {
		sum, _ = sum.Add(chain.Amount{Lo: uint64(v)}) // 21e14 satoshi fits
	}
	return sum, nil
}

// Holdings returns what each of addrs holds at the block at, the sum of
// its unspent outputs as Balance counts them, read in one pass for all of
// them: the best chain block by block from the birth height to the last
// block it shares with at, then the blocks off it that lead to at (at
// most 288). Unlike Balance it reads any number of blocks, holding only
// the outputs paying addrs: it is a reserves attestation's scan from the
// wallets' birth. A block of the best chain replaced during the read is
// an error: read again.
func (b *Backend) Holdings(ctx context.Context, addrs []string, asset string, at chain.ID) ([]chain.Holding, error) {
	if asset != "" {
		return nil, fmt.Errorf("%w: %q", chain.ErrUnknownAsset, asset)
	}
	pos := make(map[string][]int, len(addrs))
	for i, a := range addrs {
		c, err := b.ParseAddress(a)
		if err != nil {
			return nil, err
		}
		pos[c] = append(pos[c], i)
	}
	h, err := hash(at)
	if err != nil {
		return nil, err
	}
	if b.birth > 1<<31-1 {
		return nil, fmt.Errorf("btcchain: birth height %d out of range", b.birth)
	}
	// The blocks off the best chain leading to at, newest first, down to
	// the fork: the last block at shares with the best chain.
	var stale []*wire.MsgBlock
	fork := h
	var forkHeight int32
	for {
		height, _, best, err := b.node.BlockInfo(ctx, fork)
		if err == nil && best {
			forkHeight = height
			break
		}
		if errors.Is(err, btc.ErrNodeDown) || ctx.Err() != nil {
			return nil, err
		}
		if len(stale) >= maxStale {
			return nil, fmt.Errorf("btcchain: block %s is more than %d blocks off the best chain", at, maxStale)
		}
		mb, berr := b.node.Block(ctx, fork)
		if berr != nil {
			return nil, fmt.Errorf("%w: block %s: %w", chain.ErrNotFound, fork, berr)
		}
		stale = append(stale, mb)
		fork = mb.Header.PrevBlock
	}
	type out struct {
		addr  string
		value int64
	}
	utxo := make(map[wire.OutPoint]out)
	apply := func(mb *wire.MsgBlock) {
		for _, tx := range mb.Transactions {
			for _, in := range tx.TxIn {
				delete(utxo, in.PreviousOutPoint)
			}
			txid := tx.TxHash()
			for j, o := range tx.TxOut {
				if o.Value <= 0 {
					continue
				}
				if a, ok := b.outputAddr(o.PkScript); ok {
					if _, watched := pos[a]; watched {
						utxo[wire.OutPoint{Hash: txid, Index: uint32(j)}] = out{a, o.Value}
					}
				}
			}
		}
	}
	birth := int32(b.birth)
	var prev chainhash.Hash
	for height := birth; height <= forkHeight; height++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		bh, err := b.node.BlockHash(ctx, height)
		if err != nil {
			return nil, err
		}
		mb, err := b.node.Block(ctx, bh)
		if err != nil {
			return nil, err
		}
		if mb.BlockHash() != bh || height > birth && mb.Header.PrevBlock != prev {
			return nil, fmt.Errorf("btcchain: block %d does not follow block %d (a reorg during the read): read again", height, height-1)
		}
		prev = bh
		apply(mb)
	}
	if forkHeight >= birth && prev != fork {
		return nil, fmt.Errorf("btcchain: block %d changed during the read (a reorg): read again", forkHeight)
	}
	for i := len(stale) - 1; i >= 0; i-- {
		if forkHeight+int32(len(stale)-i) >= birth {
			apply(stale[i])
		}
	}
	res := make([]chain.Holding, len(addrs))
	for _, o := range utxo {
		for _, i := range pos[o.addr] {
			res[i].Amount, _ = res[i].Amount.Add(chain.Amount{Lo: uint64(o.value)}) // 21e14 satoshi fits
			res[i].Outputs++
		}
	}
	return res, nil
}

// maxStale bounds the blocks off the best chain heightOf walks through.
const maxStale = 288

// heightOf returns the height of the block h, also of one off the best
// chain (btcd places only best-chain blocks): its height is that of the
// first ancestor on the best chain plus the steps to it.
func (b *Backend) heightOf(ctx context.Context, h chainhash.Hash) (int32, error) {
	cur := h
	for steps := int32(0); ; steps++ {
		height, _, best, err := b.node.BlockInfo(ctx, cur)
		if err == nil && best {
			return height + steps, nil
		}
		if errors.Is(err, btc.ErrNodeDown) || ctx.Err() != nil {
			return 0, err
		}
		if steps >= maxStale {
			return 0, fmt.Errorf("btcchain: block %s is more than %d blocks off the best chain", h, maxStale)
		}
		mb, berr := b.node.Block(ctx, cur)
		if berr != nil {
			return 0, fmt.Errorf("%w: block %s: %w", chain.ErrNotFound, cur, berr)
		}
		cur = mb.Header.PrevBlock
	}
}

// Broadcast decodes raw as a transaction and sends it. A transaction the
// node has already (mempool or chain) is its id and no error.
func (b *Backend) Broadcast(ctx context.Context, raw []byte) (chain.ID, error) {
	tx := wire.NewMsgTx(2)
	r := bytes.NewReader(raw)
	if err := tx.Deserialize(r); err != nil {
		return chain.ID{}, fmt.Errorf("%w: %w", chain.ErrMalformed, err)
	}
	if r.Len() != 0 {
		return chain.ID{}, fmt.Errorf("%w: %d bytes after the transaction", chain.ErrMalformed, r.Len())
	}
	if len(tx.TxIn) == 0 || len(tx.TxOut) == 0 {
		return chain.ID{}, fmt.Errorf("%w: no inputs or no outputs", chain.ErrMalformed)
	}
	h, err := b.node.Broadcast(ctx, tx)
	if err != nil {
		if errors.Is(err, btc.ErrNodeDown) || ctx.Err() != nil {
			return id(h), err
		}
		// A transaction mined and no longer in the mempool is refused
		// as spending spent outputs by btcd: its index tells.
		if _, mined, e := b.node.TxBlock(ctx, h); e == nil && mined {
			return id(h), nil
		}
		if strings.Contains(err.Error(), "already") {
			return id(h), nil
		}
		return id(h), fmt.Errorf("%w: %w", chain.ErrRejected, err)
	}
	return id(h), nil
}

// FeeEstimate is the node's estimate for six blocks in satoshi per
// virtual byte, or btc.FallbackFeeRate.
func (b *Backend) FeeEstimate(ctx context.Context) (chain.Fee, error) {
	r := b.node.FeeRate(ctx, 6)
	return chain.Fee{Rate: chain.Amount{Lo: uint64(r)}, Unit: "sat/vB"}, nil
}
