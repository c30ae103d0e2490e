package watch

import (
	"bytes"
	"context"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"

	"kinko/internal/chain"
	"kinko/internal/ledger"
	"kinko/internal/wallet"
)

// OwnedAddresses returns, by wallet id, the addresses of asset's wallets
// that Books's owned book holds (the same receive and change ranges,
// derived from the descriptors in c's state), encoded for net: what a
// chain backend is asked the holdings of. Each address pays exactly the
// script derived, or the wallet is refused.
func OwnedAddresses(c Core, asset ledger.AssetID, net *chaincfg.Params) (map[uint32][]string, error) {
	k := &keeper{c: c, asset: asset, net: net, gap: wallet.Gap}
	out := map[uint32][]string{}
	for _, w := range k.wallets() {
		d, err := wallet.Parse(w.Descriptor, net)
		if err != nil {
			return nil, fmt.Errorf("watch: wallet %d: %w", w.ID, err)
		}
		recv, change := k.ahead(w)
		for branch, end := range [2]uint32{recv, change} {
			scripts, err := wallet.Derive(d, uint32(branch), 0, end)
			if err != nil {
				return nil, fmt.Errorf("watch: wallet %d: %w", w.ID, err)
			}
			for i, pk := range scripts {
				_, addrs, _, err := txscript.ExtractPkScriptAddrs(pk, net)
				if err != nil || len(addrs) != 1 {
					return nil, fmt.Errorf("watch: wallet %d: script %d/%d has no single address", w.ID, branch, i)
				}
				if again, err := txscript.PayToAddrScript(addrs[0]); err != nil || !bytes.Equal(again, pk) {
					return nil, fmt.Errorf("watch: wallet %d: address %s of %d/%d pays another script", w.ID, addrs[0], branch, i)
				}
				out[w.ID] = append(out[w.ID], addrs[0].EncodeAddress())
			}
		}
	}
	return out, nil
}

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
func ScanHoldings(ctx context.Context, c Chain, owned *wallet.Book, from, to int32) (*Holdings, error) {
	if from < 0 || to < from {
		return nil, fmt.Errorf("watch: holdings from height %d to %d", from, to)
	}
	if tip, err := c.Tip(ctx); err != nil {
		return nil, err
	} else if uint64(to) > tip.Height {
		return nil, fmt.Errorf("watch: holdings at height %d, above the node's tip %d", to, tip.Height)
	}
	w := chain.NewWatch()
	w.WatchAllSpends()
	w.AddSet(scriptSet{c: c, find: func(script []byte) bool { _, ok := owned.Find(script); return ok }})
	v := newChainView(from)
	find := func(addr string) (uint32, bool) {
		script, err := c.Script(addr)
		if err != nil {
			return 0, false
		}
		p, ok := owned.Find(script)
		return p.Wallet, ok
	}
	var hash, prev chain.ID
	for h := from; h <= to; h++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var err error
		if hash, err = c.HashAt(ctx, uint64(h)); err != nil {
			return nil, fmt.Errorf("watch: holdings: block %d: %w", h, err)
		}
		b, err := c.Block(ctx, hash, w)
		if err != nil {
			return nil, fmt.Errorf("watch: holdings: block %d: %w", h, err)
		}
		if b.Ref.Hash != hash || h > from && b.Parent != prev {
			return nil, fmt.Errorf("watch: holdings: block %d does not follow block %d (a reorg during the scan): scan again", h, h-1)
		}
		prev = hash
		v.applyBlock(txsOf(b), find)
		v.applied = h
	}
	// The tip may have moved while scanning: the block at to must still
	// be the one scanned.
	if again, err := c.HashAt(ctx, uint64(to)); err != nil {
		return nil, err
	} else if again != hash {
		return nil, fmt.Errorf("watch: holdings: block %d changed during the scan (a reorg): scan again", to)
	}
	out := &Holdings{Height: to, Hash: chainhash.Hash(hash.Bytes()), Wallets: v.balances(), UTXOs: map[uint32]int{}}
	for _, o := range v.utxos {
		out.UTXOs[o.wallet]++
	}
	return out, nil
}
