package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"kinko/internal/chain"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/core"
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
// of zero or with an index neither EtherIndex nor an internal call's
// (custody.InternalIndex) contradicts the backend, and so does a log
// index whose TokenIndex would reach the internal calls' (no block holds
// 2^31 logs).
func (d *EtherDeposits) outpoint(t chain.Transfer) (custody.Outpoint, bool, error) {
	if d.token == nil {
		if _, internal := chain.IsInternal(t.Index); (t.Index != custody.EtherIndex && !internal) || t.Amount.IsZero() {
			return custody.Outpoint{}, false, fmt.Errorf("Ether transfer %s index %d of %s wei", t.Tx, t.Index, t.Amount)
		}
		return custody.Outpoint{TxID: t.Tx.Bytes(), Vout: t.Index}, true, nil
	}
	if t.Index >= chain.InternalBase-1 {
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

// TokenDeposits runs a deposit watcher (EtherDeposits) for each ERC-20
// token the journal lists on one chain, each over a backend following that
// contract alone, so that a contract's logs can stop no other token's
// watcher. A token listed while it runs is watched from its next Step.
type TokenDeposits struct {
	core    Core
	art     *safe.Artifacts
	backend func(contract string) chain.Backend
	cfg     EtherConfig

	mu    sync.Mutex // held by Step
	ws    map[ledger.AssetID]*EtherDeposits
	order []ledger.AssetID // in listing order
}

// NewTokenDeposits returns the token watchers of chain cfg.ChainID; cfg
// is each one's configuration but its Asset, and backend makes a token's
// backend from its contract's EIP-55 address.
func NewTokenDeposits(c Core, art *safe.Artifacts, backend func(contract string) chain.Backend, cfg EtherConfig) *TokenDeposits {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &TokenDeposits{core: c, art: art, backend: backend, cfg: cfg, ws: map[ledger.AssetID]*EtherDeposits{}}
}

// Step starts a watcher for each token newly listed on the chain, then
// steps every watcher in listing order. A watcher that cannot start or
// step does not keep the others from stepping; the errors are joined.
func (t *TokenDeposits) Step(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var fresh []custody.Token
	t.core.Read(func(s *core.State) {
		for _, tok := range s.Custody.Tokens() {
			if tok.ChainID == t.cfg.ChainID && t.ws[tok.Asset] == nil {
				fresh = append(fresh, tok)
			}
		}
	})
	var errs []error
	for _, tok := range fresh {
		cfg := t.cfg
		cfg.Asset = tok.Asset
		w, err := NewEtherDeposits(ctx, t.core, t.backend(tok.Contract), t.art, cfg)
		if err != nil {
			errs = append(errs, fmt.Errorf("watch: token %s (asset %d): %w", tok.Contract, tok.Asset, err))
			continue
		}
		t.cfg.Logger.Info("watching token deposits", "asset", tok.Asset, "contract", tok.Contract)
		t.ws[tok.Asset] = w
		t.order = append(t.order, tok.Asset)
	}
	for _, a := range t.order {
		if err := t.ws[a].Step(ctx); err != nil {
			errs = append(errs, fmt.Errorf("watch: token asset %d: %w", a, err))
		}
	}
	return errors.Join(errs...)
}

// Watcher returns the watcher of a token asset, once started.
func (t *TokenDeposits) Watcher(asset ledger.AssetID) (*EtherDeposits, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w, ok := t.ws[asset]
	return w, ok
}
