package attest

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"kinko/internal/chain"
	"kinko/internal/watch"
)

// WalletHoldings is what each wallet of an asset holds on chain at one
// block, read through the chain interface.
type WalletHoldings struct {
	At chain.BlockRef
	// Wallets is each wallet's total and, on Bitcoin, its number of
	// unspent outputs, by wallet id.
	Wallets map[uint32]chain.Holding
}

// Holdings reads what each wallet holds of asset ("" for the chain's
// coin) at the block at, through b: the sum over the wallet's addresses
// (a Bitcoin wallet's derived addresses, an Ethereum wallet's Safes) of
// chain.Holdings at the block's hash. The block must still be the best
// chain's at its height once read: a reorg during the read is an error,
// read again. An address listed for two wallets is refused.
func Holdings(ctx context.Context, b chain.Backend, wallets map[uint32][]string, asset string, at chain.BlockRef) (*WalletHoldings, error) {
	ids := make([]uint32, 0, len(wallets))
	for id := range wallets {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var addrs []string
	var owner []uint32
	seen := map[string]uint32{}
	for _, id := range ids {
		for _, a := range wallets[id] {
			c, err := b.ParseAddress(a)
			if err != nil {
				return nil, fmt.Errorf("attest: wallet %d: %w", id, err)
			}
			if other, dup := seen[c]; dup {
				return nil, fmt.Errorf("attest: address %s is listed for wallets %d and %d", c, other, id)
			}
			seen[c] = id
			addrs, owner = append(addrs, c), append(owner, id)
		}
	}
	hs, err := chain.Holdings(ctx, b, addrs, asset, at.Hash)
	if err != nil {
		return nil, fmt.Errorf("attest: holdings at block %d %s: %w", at.Height, at.Hash, err)
	}
	out := &WalletHoldings{At: at, Wallets: make(map[uint32]chain.Holding, len(ids))}
	for _, id := range ids {
		out.Wallets[id] = chain.Holding{}
	}
	for i, h := range hs {
		w := out.Wallets[owner[i]]
		sum, overflow := w.Amount.Add(h.Amount)
		if overflow {
			return nil, fmt.Errorf("attest: wallet %d holds more than 2^128 base units", owner[i])
		}
		w.Amount, w.Outputs = sum, w.Outputs+h.Outputs
		out.Wallets[owner[i]] = w
	}
	again, err := b.HashAt(ctx, at.Height)
	if err != nil {
		return nil, fmt.Errorf("attest: block %d: %w", at.Height, err)
	}
	if again != at.Hash {
		return nil, fmt.Errorf("attest: block %d is %s now, not %s (a reorg during the read): read again", at.Height, again, at.Hash)
	}
	return out, nil
}

// BitcoinHoldings is Holdings of a Bitcoin backend's coin, in the form the
// report takes (watch.Holdings: satoshi and unspent outputs by wallet).
func BitcoinHoldings(ctx context.Context, b chain.Backend, wallets map[uint32][]string, at chain.BlockRef) (*watch.Holdings, error) {
	if f := b.Family(); f != chain.Bitcoin {
		return nil, fmt.Errorf("attest: a %s backend for bitcoin holdings", f)
	}
	if at.Height > math.MaxInt32 {
		return nil, fmt.Errorf("attest: block height %d out of range", at.Height)
	}
	wh, err := Holdings(ctx, b, wallets, "", at)
	if err != nil {
		return nil, err
	}
	out := &watch.Holdings{Height: int32(at.Height), Hash: chainhash.Hash(at.Hash.Bytes()), Wallets: map[uint32]int64{}, UTXOs: map[uint32]int{}}
	for id, h := range wh.Wallets {
		v, ok := h.Amount.Uint64()
		if !ok || v > math.MaxInt64 {
			return nil, fmt.Errorf("attest: wallet %d holds %s satoshi", id, h.Amount)
		}
		if v == 0 && h.Outputs == 0 {
			continue // as the chain view: a wallet with nothing has no entry
		}
		out.Wallets[id], out.UTXOs[id] = int64(v), h.Outputs
	}
	return out, nil
}
