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

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
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

// Script returns the output script the address s pays.
func (b *Backend) Script(s string) ([]byte, error) { return Script(s, b.node.Net()) }

// Script returns the output script the address s of net pays.
func Script(s string, net *chaincfg.Params) ([]byte, error) {
	a, err := btcutil.DecodeAddress(s, net)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", chain.ErrBadAddress, s, err)
	}
	if !a.IsForNet(net) {
		return nil, fmt.Errorf("%w: %q is not for %s", chain.ErrBadAddress, s, net.Name)
	}
	script, err := txscript.PayToAddrScript(a)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", chain.ErrBadAddress, s, err)
	}
	return script, nil
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
func (b *Backend) outputAddr(pk []byte) (string, bool) { return outputAddr(pk, b.node.Net()) }

func outputAddr(pk []byte, net *chaincfg.Params) (string, bool) {
	_, addrs, _, err := txscript.ExtractPkScriptAddrs(pk, net)
	if err != nil || len(addrs) != 1 {
		return "", false
	}
	return addrs[0].EncodeAddress(), true
}

// credits returns the outputs of tx paying addresses in w.
func (b *Backend) credits(tx *wire.MsgTx, w *chain.Watch) []chain.Transfer {
	return appendCredits(nil, tx, id(tx.TxHash()), b.node.Net(), w)
}

func appendCredits(out []chain.Transfer, tx *wire.MsgTx, txid chain.ID, net *chaincfg.Params, w *chain.Watch) []chain.Transfer {
	for i, o := range tx.TxOut {
		if o.Value <= 0 {
			continue
		}
		has, decided := w.HasRaw(o.PkScript)
		if decided && !has {
			continue // the script alone says it is not watched
		}
		a, ok := outputAddr(o.PkScript, net)
		if !ok || !has && !w.Has(a) {
			continue
		}
		out = append(out, chain.Transfer{Tx: txid, Index: uint32(i), To: a, Amount: chain.Amount{Lo: uint64(o.Value)}})
	}
	return out
}

// spends returns the inputs of tx spending outputs watched in w (every
// input but a coinbase's, with w.AllSpends).
func spends(tx *wire.MsgTx, w *chain.Watch) []chain.Spend {
	return appendSpends(nil, tx, id(tx.TxHash()), w)
}

func appendSpends(out []chain.Spend, tx *wire.MsgTx, txid chain.ID, w *chain.Watch) []chain.Spend {
	if blockchain.IsCoinBaseTx(tx) {
		return out
	}
	all := w.AllSpends()
	for i, in := range tx.TxIn {
		prev := chain.Outpoint{Tx: id(in.PreviousOutPoint.Hash), Index: in.PreviousOutPoint.Index}
		if all || w.HasOutput(prev) {
			out = append(out, chain.Spend{Tx: txid, Input: uint32(i), Prev: prev})
		}
	}
	return out
}

// pendingTx returns what tx tells w, and whether it touches w at all.
func (b *Backend) pendingTx(tx *wire.MsgTx, w *chain.Watch) (chain.PendingTx, bool) {
	p := chain.PendingTx{Tx: id(tx.TxHash()), Transfers: b.credits(tx, w), Spends: spends(tx, w)}
	return p, len(p.Transfers) > 0 || len(p.Spends) > 0
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
	return BlockOf(mb, uint64(height), b.node.Net(), w), nil
}

// BlockOf reads mb, the block at height of net, as the chain interface
// tells it for w.
func BlockOf(mb *wire.MsgBlock, height uint64, net *chaincfg.Params, w *chain.Watch) *chain.Block {
	blk := &chain.Block{Ref: chain.BlockRef{Height: height, Hash: id(mb.BlockHash())}, Parent: id(mb.Header.PrevBlock),
		TxIDs: make([]chain.ID, 0, len(mb.Transactions))}
	for _, tx := range mb.Transactions {
		txid := id(tx.TxHash())
		blk.TxIDs = append(blk.TxIDs, txid)
		blk.Transfers = appendCredits(blk.Transfers, tx, txid, net, w)
		blk.Spends = appendSpends(blk.Spends, tx, txid, w)
	}
	return blk
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
	txs, _, err := b.PollPendingTxs(ctx, w)
	var out []chain.Transfer
	for _, tx := range txs {
		out = append(out, tx.Transfers...)
	}
	return out, err
}

var _ chain.PendingSpender = (*Backend)(nil)

// PollPendingTxs reads the mempool: the transactions not read before that
// pay a watched address or spend a watched output, each with its
// transfers and spends, and those read before that have left it.
func (b *Backend) PollPendingTxs(ctx context.Context, w *chain.Watch) ([]chain.PendingTx, []chain.ID, error) {
	ids, err := b.node.MempoolTxids(ctx)
	if err != nil {
		return nil, nil, err
	}
	inPool := make(map[chainhash.Hash]struct{}, len(ids))
	var out []chain.PendingTx
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
		if p, ok := b.pendingTx(tx, w); ok {
			out = append(out, p)
		}
		b.mu.Lock()
		if len(b.seen) < maxMempoolSeen {
			b.seen[h] = struct{}{}
		}
		b.mu.Unlock()
	}
	var gone []chain.ID
	b.mu.Lock()
	for h := range b.seen {
		if _, ok := inPool[h]; !ok {
			delete(b.seen, h) // left the pool: back in it after a reorg is news
			gone = append(gone, id(h))
		}
	}
	b.mu.Unlock()
	return out, gone, nil
}

// Subscribe connects to btcd's websocket: every transaction accepted to
// its mempool and every block connected.
func (b *Backend) Subscribe(ctx context.Context, w *chain.Watch, onBlock func(), onPending func(chain.Transfer)) (io.Closer, error) {
	return b.SubscribeTxs(ctx, w, onBlock, func(p chain.PendingTx) {
		for _, t := range p.Transfers {
			onPending(t)
		}
	})
}

// SubscribeTxs connects to btcd's websocket: each transaction accepted to
// its mempool that touches w, with its transfers and spends, and every
// block connected.
func (b *Backend) SubscribeTxs(ctx context.Context, w *chain.Watch, onBlock func(), onTx func(chain.PendingTx)) (chain.Subscription, error) {
	s, err := btc.Subscribe(b.cfg, func(tx *wire.MsgTx) {
		if p, ok := b.pendingTx(tx, w); ok {
			onTx(p)
		}
	}, func(chainhash.Hash, int32) { onBlock() })
	if err != nil {
		return nil, err
	}
	return closer{s}, nil
}

type closer struct{ s *btc.Subscription }

func (c closer) Close() error    { c.s.Close(); return nil }
func (c closer) Connected() bool { return c.s.Connected() }

var _ chain.SourceReader = (*Backend)(nil)

// Sources returns the addresses paid by the outputs that the inputs of
// transaction tx spend, through the node's transaction index: where its
// coins came from.
func (b *Backend) Sources(ctx context.Context, txid chain.ID) ([]string, error) {
	h, err := hash(txid)
	if err != nil {
		return nil, err
	}
	tx, err := b.node.Tx(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("btcchain: transaction %s: %w", txid, err)
	}
	if blockchain.IsCoinBaseTx(tx) {
		return nil, nil
	}
	var out []string
	for _, in := range tx.TxIn {
		prev, err := b.node.Tx(ctx, in.PreviousOutPoint.Hash)
		if err != nil {
			return nil, fmt.Errorf("btcchain: input of %s: %w", txid, err)
		}
		if int(in.PreviousOutPoint.Index) >= len(prev.TxOut) {
			return nil, fmt.Errorf("%w: %s spends output %d of %s, which has %d", chain.ErrChainData, txid, in.PreviousOutPoint.Index, in.PreviousOutPoint.Hash, len(prev.TxOut))
		}
		_, addrs, _, _ := txscript.ExtractPkScriptAddrs(prev.TxOut[in.PreviousOutPoint.Index].PkScript, b.node.Net())
		for _, a := range addrs {
			out = append(out, a.EncodeAddress())
		}
	}
	return out, nil
}

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
