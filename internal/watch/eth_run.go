package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// EtherWatch is the watch of one Ether asset on one node as `kinko watch
// --eth-node` and `kinko dev` run it: the deposit watcher, the watcher of
// the pinned Safes' executions (subscribed to the node's pool when its
// WSURL is set), the deposit watchers of the ERC-20 tokens listed on the
// chain, and the reconciliation of every wallet at every block (Ether's,
// then each token's: TokenRecon), stepped
// in that order so that the reconciliation reads a block the others have
// read. Any of them but Exec may be nil.
type EtherWatch struct {
	Deposits *EtherDeposits
	Exec     *EthExec
	Tokens   *TokenDeposits
	Recon    *EthRecon
	// TokenRecon reconciles the tokens Tokens watches over Recon's
	// wallets; when nil and both are set, Step makes one with the token
	// watchers' depth and no tolerance.
	TokenRecon *TokenRecon
	Logger     *slog.Logger
}

// Step steps each watcher once. A watcher that fails is logged and does
// not keep the others from their step; the failures come back joined.
func (w *EtherWatch) Step(ctx context.Context) error {
	log := w.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	step := func(what string, f func() error) {
		if err := f(); err != nil && ctx.Err() == nil {
			log.Warn(what+" step failed", "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	if w.Deposits != nil {
		step("Ether deposit watcher", func() error { return w.Deposits.Step(ctx) })
	}
	if w.Exec != nil {
		step("Safe execution watcher", func() error { _, err := w.Exec.Step(ctx); return err })
	}
	if w.Tokens != nil {
		step("token deposit watcher", func() error { return w.Tokens.Step(ctx) })
	}
	if w.Recon != nil {
		step("Ether reconciliation", func() error { _, err := w.Recon.Step(ctx); return err })
	}
	if w.TokenRecon == nil && w.Tokens != nil && w.Recon != nil {
		w.TokenRecon = NewTokenRecon(w.Recon, w.Tokens, TokenReconConfig{})
	}
	if w.TokenRecon != nil {
		step("token reconciliation", func() error { return w.TokenRecon.Step(ctx) })
	}
	return errors.Join(errs...)
}

// Run steps every poll until ctx ends. When the execution watcher has a
// WebSocket URL it keeps a subscription to the node's pending
// transactions, subscribing again at the next step when it drops; blocks
// stay the fallback.
func (w *EtherWatch) Run(ctx context.Context, poll time.Duration) {
	t := time.NewTicker(poll)
	defer t.Stop()
	var sub *PendingSubscription
	defer func() {
		if sub != nil {
			sub.Close()
		}
	}()
	for {
		if w.Exec != nil && w.Exec.cfg.WSURL != "" && (sub == nil || sub.Dropped()) {
			if sub != nil {
				sub.Close()
			}
			var err error
			if sub, err = w.Exec.Subscribe(ctx); err != nil && ctx.Err() == nil && w.Logger != nil {
				w.Logger.Warn("pending transactions not pushed; blocks only", "ws", w.Exec.cfg.WSURL, "err", err)
			}
		}
		_ = w.Step(ctx) // each failure is logged; the next step tries again
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
