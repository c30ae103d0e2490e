package watch

import (
	"context"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"kinko/internal/chain/btc"
	"kinko/internal/wallet"
)

// Holdings is what our wallets of an asset held on chain at one block of
// the node's best chain: the reconciliation's chain view (our outputs,
// recomputed from the descriptors, less those spent) built from the
// blocks from a start height up to that block. The proof of reserves
// reports it beside the liabilities.
type Holdings struct {
	Height int32
	Hash   chainhash.Hash
	// Wallets is each wallet's total, in satoshi, by wallet id; UTXOs its
	// number of unspent outputs.
	Wallets map[uint32]int64
	UTXOs   map[uint32]int
}

// ScanHoldings builds the chain view of owned's scripts over the best
// chain's blocks from..to and returns what each wallet holds at to. from
// must be at or before the wallets' first output (their birth height);
// to at or below the node's tip.
func ScanHoldings(ctx context.Context, src btc.Source, owned *wallet.Book, from, to int32) (*Holdings, error) {
	if from < 0 || to < from {
		return nil, fmt.Errorf("watch: holdings from height %d to %d", from, to)
	}
	if _, tip, err := src.BestBlock(ctx); err != nil {
		return nil, err
	} else if to > tip {
		return nil, fmt.Errorf("watch: holdings at height %d, above the node's tip %d", to, tip)
	}
	v := newChainView(from)
	find := func(script []byte) (uint32, bool) {
		p, ok := owned.Find(script)
		return p.Wallet, ok
	}
	var hash, prev chainhash.Hash
	for h := from; h <= to; h++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var err error
		if hash, err = src.BlockHash(ctx, h); err != nil {
			return nil, fmt.Errorf("watch: holdings: block %d: %w", h, err)
		}
		b, err := src.Block(ctx, hash)
		if err != nil {
			return nil, fmt.Errorf("watch: holdings: block %d: %w", h, err)
		}
		if b.BlockHash() != hash || h > from && b.Header.PrevBlock != prev {
			return nil, fmt.Errorf("watch: holdings: block %d does not follow block %d (a reorg during the scan): scan again", h, h-1)
		}
		prev = hash
		v.applyBlock(b, find)
		v.applied = h
	}
	// The tip may have moved while scanning: the block at to must still
	// be the one scanned.
	if again, err := src.BlockHash(ctx, to); err != nil {
		return nil, err
	} else if again != hash {
		return nil, fmt.Errorf("watch: holdings: block %d changed during the scan (a reorg): scan again", to)
	}
	out := &Holdings{Height: to, Hash: hash, Wallets: v.balances(), UTXOs: map[uint32]int{}}
	for _, o := range v.utxos {
		out.UTXOs[o.wallet]++
	}
	return out, nil
}
