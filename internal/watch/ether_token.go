package watch

import (
	"fmt"
	"math"

	"kinko/internal/chain"
	"kinko/internal/custody"
	"kinko/internal/ledger"
)

// An EtherDeposits watcher of an asset bound to an ERC-20 contract
// (custody.Token, a register_token request) credits that contract's
// Transfer logs instead of Ether, by the same code: the same blocks
// followed from the asset's own checkpoint, the same deposit addresses
// (the counterfactual Safes of the cold customer Safe wallets of the
// token's chain: a customer's token address is their Ether address), the
// same confirmations, credit once per (transaction hash, TokenIndex(log
// index)), and the same reversal and halt of the asset's deposits when a
// credited block leaves the best chain. Only logs whose emitting contract
// is the bound one count: any contract can emit a Transfer event naming
// our addresses. The backend must follow the contract
// (ethchain.New(..., tokens)); the watcher does not trust it to filter.

// ours reports whether a block's transfer is of the watched asset: a top
// level Ether transfer for Ether, a Transfer log of the bound contract for
// a token.
func (d *EtherDeposits) ours(t chain.Transfer) bool {
	if d.token == nil {
		return t.Asset == ""
	}
	return t.Asset == d.token.Contract
}

// outpoint returns the deposit id of one of the asset's transfers to a
// deposit address, and whether it is a deposit at all: a token's Transfer
// of zero is not (anyone may log one, to any address), an Ether transfer
// of zero or with a log index contradicts the backend, and so does a log
// index whose TokenIndex would wrap onto EtherIndex.
func (d *EtherDeposits) outpoint(t chain.Transfer) (custody.Outpoint, bool, error) {
	if d.token == nil {
		if t.Index != 0 || t.Amount.IsZero() {
			return custody.Outpoint{}, false, fmt.Errorf("Ether transfer %s index %d of %s wei", t.Tx, t.Index, t.Amount)
		}
		return custody.Outpoint{TxID: t.Tx.Bytes(), Vout: custody.EtherIndex}, true, nil
	}
	if t.Index == math.MaxUint32 {
		return custody.Outpoint{}, false, fmt.Errorf("token log %s at index %d", t.Tx, t.Index)
	}
	if t.Amount.IsZero() {
		return custody.Outpoint{}, false, nil
	}
	return custody.Outpoint{TxID: t.Tx.Bytes(), Vout: custody.TokenIndex(t.Index)}, true, nil
}

// seenAsset is the asset a deposit names in credit_deposits: the token's,
// or 0 (the wallet's own) for Ether.
func (d *EtherDeposits) seenAsset() ledger.AssetID {
	if d.token == nil {
		return 0
	}
	return d.token.Asset
}

// Token returns the ERC-20 binding the watcher credits, if its asset is a
// listed token.
func (d *EtherDeposits) Token() (custody.Token, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.token == nil {
		return custody.Token{}, false
	}
	return *d.token, true
}
