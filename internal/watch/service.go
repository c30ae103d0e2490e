package watch

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/wallet"
)

// Lookahead is how far past the last index handed out the books derive a
// wallet's scripts on the branches customers do not pay (change, and the
// receive addresses of every wallet but the cold customer one, which
// looks ahead by wallet.Gap).
const Lookahead = 100

// Books derives, from the descriptors of asset's wallets in the state, the
// deposit book (the cold customer wallets' receive addresses handed out,
// and wallet.Gap more) and the book of every script of every wallet on
// both branches, with which the watcher reconciles. Nothing but the
// descriptors is trusted.
func Books(c Core, asset ledger.AssetID, net *chaincfg.Params) (deposits, owned *wallet.Book, err error) {
	return BooksGap(c, asset, net, wallet.Gap)
}

// MaxGap bounds the gap a watcher scans past a deposit wallet's last
// index handed out: the book holds NextIndex+gap scripts per wallet.
const MaxGap = 100_000

// BooksGap is Books with the gap the deposit book scans past the deposit
// wallets' last index handed out (which is past the last used one: a
// deposit credits only an address handed out): gap unused addresses, as a
// wallet restore scans its gap limit. Zero means wallet.Gap; more than
// MaxGap is refused.
func BooksGap(c Core, asset ledger.AssetID, net *chaincfg.Params, gap uint32) (deposits, owned *wallet.Book, err error) {
	k, err := newKeeperGap(c, asset, net, gap)
	if err != nil {
		return nil, nil, err
	}
	return k.deposits, k.owned, nil
}

// keeper keeps the books ahead of the indexes the journal hands out: a
// long-running watcher sees addresses assigned after it started.
type keeper struct {
	c        Core
	asset    ledger.AssetID
	net      *chaincfg.Params
	deposits *wallet.Book
	owned    *wallet.Book
	covered  map[uint32][2]uint32 // wallet -> receive and change ends derived
	descs    map[uint32]*wallet.Descriptor
	gap      uint32 // deposit addresses scanned past NextIndex
}

func (k *keeper) ahead(w custody.Wallet) (recv, change uint32) {
	if w.Kind == custody.ColdCustomer {
		return w.NextIndex + k.gap, w.NextChange + Lookahead
	}
	return w.NextIndex + Lookahead, w.NextChange + Lookahead
}

func newKeeperGap(c Core, asset ledger.AssetID, net *chaincfg.Params, gap uint32) (*keeper, error) {
	if gap == 0 {
		gap = wallet.Gap
	}
	if gap > MaxGap {
		return nil, fmt.Errorf("watch: a gap of %d addresses is more than %d", gap, MaxGap)
	}
	k := &keeper{c: c, asset: asset, net: net, covered: map[uint32][2]uint32{}, descs: map[uint32]*wallet.Descriptor{}, gap: gap}
	ws := k.wallets()
	var nDep, nOwned int
	for _, w := range ws {
		recv, change := k.ahead(w)
		if w.Kind == custody.ColdCustomer {
			nDep += int(recv)
		}
		nOwned += int(recv + change)
	}
	k.deposits, k.owned = wallet.NewBookSize(nDep), wallet.NewBookSize(nOwned)
	return k, k.grow()
}

func (k *keeper) wallets() []custody.Wallet {
	var ws []custody.Wallet
	k.c.Read(func(s *core.State) {
		for _, w := range s.Custody.Wallets() {
			if w.Asset == k.asset {
				ws = append(ws, w)
			}
		}
	})
	return ws
}

// grow derives what the wallets' indexes now call for and the books lack:
// new wallets, and addresses handed out since.
func (k *keeper) grow() error {
	for _, w := range k.wallets() {
		d, ok := k.descs[w.ID]
		if !ok {
			var err error
			if d, err = wallet.Parse(w.Descriptor, k.net); err != nil {
				return fmt.Errorf("watch: wallet %d: %w", w.ID, err)
			}
			k.descs[w.ID] = d
		}
		have := k.covered[w.ID]
		recv, change := k.ahead(w)
		if recv > have[0] {
			scripts, err := wallet.Derive(d, 0, have[0], recv)
			if err != nil {
				return err
			}
			if w.Kind == custody.ColdCustomer {
				k.deposits.AddDerived(w.ID, 0, have[0], scripts)
			}
			k.owned.AddDerived(w.ID, 0, have[0], scripts)
			have[0] = recv
		}
		if change > have[1] {
			if err := k.owned.Add(w.ID, d, 1, have[1], change); err != nil {
				return err
			}
			have[1] = change
		}
		k.covered[w.ID] = have
	}
	return nil
}

// ForAsset starts a watcher of the asset with the given code: the asset's
// books derived from its wallets' descriptors (deposits, and every script
// for reconciliation) and kept ahead of the addresses handed out, cfg for
// the rest.
func ForAsset(ctx context.Context, c Core, chain Chain, net *chaincfg.Params, code string, cfg DepositConfig) (*Deposits, error) {
	c.Read(func(s *core.State) {
		if a, ok := s.Ledger.AssetByCode(code); ok {
			cfg.Asset = a.ID
		}
	})
	if cfg.Asset == 0 {
		return nil, fmt.Errorf("watch: asset %q is not listed in the core", code)
	}
	k, err := newKeeperGap(c, cfg.Asset, net, cfg.Gap)
	if err != nil {
		return nil, err
	}
	cfg.Owned = k.owned
	d, err := NewDeposits(ctx, c, chain, k.deposits, cfg)
	if err != nil {
		return nil, err
	}
	d.grow = k.grow
	return d, nil
}

// Alarm tells co-signers in other processes to stop signing an asset,
// directly over mutual TLS with the watcher's certificate: it needs
// neither the core nor the journal, so a core that is down or lying does
// not delay it. Each co-signer is tried in the background until it
// answers (its halts are durable and idempotent) or the alarm stops.
type Alarm struct {
	URLs []string
	HTTP *http.Client
	Log  *slog.Logger
	wg   sync.WaitGroup
	once sync.Once
	quit chan struct{}
}

// NewAlarm returns an alarm for the co-signers at urls.
func NewAlarm(urls []string, tlsCfg *tls.Config, log *slog.Logger) *Alarm {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Alarm{URLs: urls, HTTP: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}, Log: log, quit: make(chan struct{})}
}

// alarmBackoffMax bounds the wait between tries of one co-signer.
const alarmBackoffMax = 2 * time.Second

// Halt tells every co-signer to halt asset (a code, or "*" for
// everything), without waiting.
func (a *Alarm) Halt(asset, reason string) { a.HaltTx(asset, "", reason) }

// HaltTx is Halt for one transaction the watcher could not explain, named
// by tx (a Bitcoin txid as shown): a co-signer that signed that very
// transaction itself declines (409), and is not asked again.
func (a *Alarm) HaltTx(asset, tx, reason string) {
	req := map[string]string{"asset": asset, "reason": reason}
	if tx != "" {
		req["tx"] = tx
	}
	body, _ := json.Marshal(req)
	for _, u := range a.URLs {
		a.wg.Add(1)
		// Each goroutine ends when the co-signer answers or the alarm
		// stops.
		go func() {
			defer a.wg.Done()
			delay := 50 * time.Millisecond
			for i := 1; ; i++ {
				res, err := a.HTTP.Post(u+"/halt", "application/json", bytes.NewReader(body))
				if err == nil {
					res.Body.Close()
					if res.StatusCode == http.StatusNoContent {
						a.Log.Info("co-signer halted", "cosigner", u, "asset", asset)
						return
					}
					if res.StatusCode == http.StatusConflict {
						// Final: it signed the transaction itself. The core's
						// journal, once read, says whether it is ours.
						a.Log.Warn("co-signer declined the halt: it signed this transaction itself", "cosigner", u, "asset", asset, "tx", tx)
						return
					}
					err = fmt.Errorf("answered %s", res.Status)
				}
				a.Log.Error("could not halt a co-signer", "cosigner", u, "attempt", i, "err", err)
				select {
				case <-a.quit:
					return
				case <-time.After(delay):
				}
				delay = min(2*delay, alarmBackoffMax)
			}
		}()
	}
}

// Stop ends the tries under way and waits for them.
func (a *Alarm) Stop() {
	a.once.Do(func() { close(a.quit) })
	a.wg.Wait()
}

// Syncer is a core that must be brought up to date before each step (a
// Remote).
type Syncer interface {
	Sync(ctx context.Context) error
}
