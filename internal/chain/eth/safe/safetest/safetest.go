// Package safetest makes the Safes of kinko's tests on a geth dev node:
// a Safe funded at its counterfactual address before its proxy exists
// (as a deposit is), then created there, and the custody descriptor of a
// Safe of a deployment. It is for tests and test harnesses only.
package safetest

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain/eth/devnet"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/ethwallet"
)

// Funded funds the 2-of-n Safe of owners at salt with fund wei from the
// node's developer account, at the address the deployment predicts, then
// creates its proxy there from the key from; a proxy made elsewhere is an
// error.
func Funded(ctx context.Context, n *devnet.Node, d *safe.Deployment, from *ecdsa.PrivateKey, salt int64, fund *big.Int, owners []common.Address) (common.Address, error) {
	init, err := d.Initializer(safe.Config{Owners: owners, Threshold: 2})
	if err != nil {
		return common.Address{}, err
	}
	want, err := d.Predictor(init).Address(big.NewInt(salt))
	if err != nil {
		return common.Address{}, err
	}
	if _, err := n.Fund(ctx, want, fund); err != nil {
		return common.Address{}, err
	}
	got, _, err := d.CreateProxy(ctx, n.Client(), from, init, big.NewInt(salt))
	if err != nil || got != want {
		return common.Address{}, fmt.Errorf("safetest: Safe at %s, predicted %s: %v", got, want, err)
	}
	return got, nil
}

// Owners returns the addresses of keys, in order.
func Owners(keys ...*ecdsa.PrivateKey) []common.Address {
	out := make([]common.Address, len(keys))
	for i, k := range keys {
		out[i] = crypto.PubkeyToAddress(k.PublicKey)
	}
	return out
}

// Descriptor returns the custody descriptor of a 2-of-n Safe of d's
// contracts owned by owners.
func Descriptor(d *safe.Deployment, owners []common.Address) ethwallet.Descriptor {
	desc := ethwallet.Descriptor{ChainID: d.ChainID.Uint64(), Singleton: ethwallet.Address(d.Singleton), Factory: ethwallet.Address(d.ProxyFactory),
		Fallback: ethwallet.Address(d.FallbackHandler), Threshold: 2}
	for _, o := range owners {
		desc.Owners = append(desc.Owners, ethwallet.Address(o))
	}
	return desc
}
