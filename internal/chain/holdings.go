package chain

import (
	"context"
	"fmt"
)

// Holding is what one address holds of an asset at a block: the amount
// and, on a chain of outputs (Bitcoin), how many unspent outputs make it
// up; 0 on an account chain, where an address holds a balance.
type Holding struct {
	Amount  Amount
	Outputs int
}

// Holder is a Backend that reads the holdings of many addresses at one
// block in one pass: Bitcoin's backend, which has no address index and
// would otherwise read the blocks again for every address.
type Holder interface {
	// Holdings returns, in the order of addrs, what each holds of asset
	// ("" for the coin) at the block with hash at; the same amounts as
	// Balance.
	Holdings(ctx context.Context, addrs []string, asset string, at ID) ([]Holding, error)
}

// MaxHoldings bounds the addresses of one Holdings call.
const MaxHoldings = MaxWatched

// Holdings returns, in the order of addrs, what each address holds of
// asset at the block with hash at: through the backend's own Holdings if
// it is a Holder, else one Balance an address (Outputs 0).
func Holdings(ctx context.Context, b Backend, addrs []string, asset string, at ID) ([]Holding, error) {
	if len(addrs) > MaxHoldings {
		return nil, fmt.Errorf("chain: holdings of %d addresses, more than %d", len(addrs), MaxHoldings)
	}
	if h, ok := b.(Holder); ok {
		out, err := h.Holdings(ctx, addrs, asset, at)
		if err != nil {
			return nil, err
		}
		if len(out) != len(addrs) {
			return nil, fmt.Errorf("chain: the backend gave %d holdings for %d addresses", len(out), len(addrs))
		}
		return out, nil
	}
	out := make([]Holding, len(addrs))
	for i, a := range addrs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		v, err := b.Balance(ctx, a, asset, at)
		if err != nil {
			return nil, fmt.Errorf("chain: balance of %s at %s: %w", a, at, err)
		}
		out[i] = Holding{Amount: v}
	}
	return out, nil
}
