package watch

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"sync"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/chain"
	"kinko/internal/chain/eth"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/incident"
	"kinko/internal/ledger"
)

// TokenBalance is one Ether wallet's reconciliation of one listed ERC-20
// token at one block. Ledger is the wallet's account of the token asset
// now; Expected what the chain should hold at the block:
//
//	Expected = Ledger + Deposits - Credited
//
// where Deposits are the deposits at or below the block to the wallet's
// handed-out addresses that the token's deposit watcher has seen and
// custody has not yet credited, and Credited the token deposits credited
// whose block is above it. Chain is the sum of the token's balanceOf of
// the wallet's addresses (its pinned Safes and handed-out deposit
// addresses, as the Ether reconciliation's) at the block's hash. A sweep
// of a deposit Safe's tokens into the wallet's own Safe moves nothing
// between accounts and both Safes are summed in the wallet: it is no
// difference.
type TokenBalance struct {
	Asset     ledger.AssetID
	Code      string
	Contract  string
	Wallet    uint32
	Block     uint64
	Addresses int
	Ledger    ledger.Amount
	Deposits  ledger.Amount
	Credited  ledger.Amount
	Expected  ledger.Amount
	Chain     ledger.Amount
}

// Difference is Expected less Chain, in base units: positive when the
// chain holds less than the ledger says.
func (b TokenBalance) Difference() *big.Int {
	return new(big.Int).Sub(b.Expected.Big(), b.Chain.Big())
}

// TokenReconConfig configures a TokenRecon.
type TokenReconConfig struct {
	// Confirmations is the depth reconciled (default each token
	// watcher's): the block Confirmations-1 below the node's tip and
	// below the token watcher's journaled checkpoint. What is in flight
	// is counted exactly at any depth.
	Confirmations int32
	// Tolerance is the difference, in the token's base units, either
	// way, that halts nothing.
	Tolerance ledger.Amount
}

// TokenRecon reconciles, at every block, each ERC-20 token listed on the
// node's chain (one per watcher of TokenDeposits, a token listed while it
// runs from its next Step) over the Ether reconciliation's wallets and
// addresses: the token's balanceOf, on the token watcher's backend, at
// the reconciled block, against each wallet's ledger account of the token
// asset with what is in flight (TokenBalance). A difference beyond the
// tolerance opens an incident (mismatch-<TOKEN>-<wallet>), alerts and
// halts the withdrawals of the token asset and of Ether (a token leaving
// the Safes unjournaled means cold keys are in someone's hands), once
// while it lasts.
type TokenRecon struct {
	eth    *EthRecon
	tokens *TokenDeposits
	cfg    TokenReconConfig

	mu         sync.Mutex
	at         map[ledger.AssetID]uint64
	last       map[ledger.AssetID][]TokenBalance
	mismatched mismatches
}

// NewTokenRecon returns the reconciliation of the tokens tokens watches
// over eth's wallets and addresses (its pinned Safes, its chain id, its
// alerts, clock and logger).
func NewTokenRecon(eth *EthRecon, tokens *TokenDeposits, cfg TokenReconConfig) *TokenRecon {
	return &TokenRecon{eth: eth, tokens: tokens, cfg: cfg, at: map[ledger.AssetID]uint64{}, last: map[ledger.AssetID][]TokenBalance{}, mismatched: map[string]bool{}}
}

// watchers returns the token watchers started, in listing order.
func (t *TokenDeposits) watchers() []*EtherDeposits {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*EtherDeposits, 0, len(t.order))
	for _, a := range t.order {
		out = append(out, t.ws[a])
	}
	return out
}

// Step reconciles each token watched at its block, if not yet; a token
// that fails does not keep the others from theirs. It returns the errors
// joined.
func (r *TokenRecon) Step(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, w := range r.tokens.watchers() {
		if err := r.step(ctx, w); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("watch: token reconciliation: %w", errors.Join(errs...))
}

// tokenSnap is what one token's reconciliation reads from the state.
type tokenSnap struct {
	code    string
	wallets []reconWallet // the Ether wallets, bal their token account
	depositSide
	checkpoint int32
}

func (r *TokenRecon) read(tok custody.Token, pend []EtherPending) tokenSnap {
	sn := tokenSnap{checkpoint: -1}
	r.eth.core.Read(func(s *core.State) {
		if cp, ok := s.Checkpoints[tok.Asset]; ok {
			sn.checkpoint = cp.Height
		}
		a, ok := s.Ledger.Asset(tok.Asset)
		if !ok {
			return
		}
		sn.code = a.Code
		ours := map[uint32]bool{}
		for _, w := range s.Custody.Wallets() {
			if w.Asset != r.eth.cfg.Asset {
				continue
			}
			acct, _ := s.Ledger.Account(ledger.AccountKey{Owner: w.Owner, Asset: tok.Asset, Kind: ledger.KindWallet})
			sn.wallets = append(sn.wallets, reconWallet{w: w, bal: acct.Balance(), next: w.NextIndex})
			ours[w.ID] = true
		}
		sn.depositSide = readDeposits(s, pend, ours, tok.Asset)
	})
	return sn
}

func (r *TokenRecon) step(ctx context.Context, w *EtherDeposits) error {
	tok, ok := w.Token()
	if !ok {
		return nil
	}
	pend := w.Pending() // before the state: a deposit credited since is then in both, and counted once
	sn := r.read(tok, pend)
	if sn.code == "" {
		return fmt.Errorf("token asset %d not in the ledger", tok.Asset)
	}
	confs := r.cfg.Confirmations
	if confs <= 0 {
		confs = w.cfg.Confirmations
	}
	depth := uint64(confs) - 1
	tip, err := w.b.Tip(ctx)
	if err != nil {
		return err
	}
	if tip.Height < depth+1 || sn.checkpoint < 0 || uint64(sn.checkpoint) < depth+1 {
		return nil
	}
	at := min(tip.Height, uint64(sn.checkpoint)) - depth
	if at == r.at[tok.Asset] {
		return nil
	}
	hash, err := w.b.HashAt(ctx, at)
	if err != nil {
		return err
	}
	addrs, err := r.eth.addresses(snapshot{wallets: sn.wallets})
	if err != nil {
		return err
	}
	// Below the contract's creation nobody holds the token (balanceOf of
	// an account with no code answers nothing).
	cctx, cancel := context.WithTimeout(ctx, eth.CallTimeout)
	code, err := r.eth.node.Eth().CodeAtHash(cctx, common.HexToAddress(tok.Contract), common.Hash(hash.Bytes()))
	cancel()
	if err != nil {
		return fmt.Errorf("the code of %s at block %d: %w", tok.Contract, at, err)
	}
	exists := len(code) > 0
	var out []TokenBalance
	for _, rw := range sn.wallets {
		as := addrs[rw.w.ID]
		if len(as) == 0 {
			continue
		}
		e := TokenBalance{Asset: tok.Asset, Code: sn.code, Contract: tok.Contract, Wallet: rw.w.ID, Block: at, Addresses: len(as), Ledger: rw.bal}
		for _, a := range as {
			if !exists {
				break
			}
			v, err := w.b.Balance(ctx, a.Hex(), tok.Contract, hash)
			if err != nil {
				return fmt.Errorf("%s of wallet %d: %w", sn.code, rw.w.ID, err)
			}
			e.Chain = sum(e.Chain, v)
		}
		e.Deposits, e.Credited = sn.inFlight(pend, rw.w.ID, rw.next, at)
		exp := new(big.Int).Add(e.Ledger.Big(), e.Deposits.Big())
		exp.Sub(exp, e.Credited.Big())
		if exp.Sign() < 0 {
			exp.SetInt64(0)
		}
		if e.Expected, err = chain.AmountFromBig(exp); err != nil {
			return err
		}
		out = append(out, e)
	}
	r.at[tok.Asset], r.last[tok.Asset] = at, out
	r.eth.log.Info("token reconciled", "asset", sn.code, "contract", tok.Contract, "block", at, "wallets", len(out), "largest_difference", largestDifference(out).String())
	return r.halt(ctx, out)
}

// halt halts and records each difference beyond the tolerance, once
// while it lasts.
func (r *TokenRecon) halt(ctx context.Context, bs []TokenBalance) error {
	for _, e := range bs {
		d := e.Difference()
		why := fmt.Sprintf("wallet %d: ledger %s %s (%s with what is in flight: deposits not yet credited %s, credited above the block %s), chain %s (balanceOf of %s) in %d addresses at block %d; difference %s (tolerance %s)",
			e.Wallet, e.Ledger, e.Code, e.Expected, e.Deposits, e.Credited, e.Chain, e.Contract, e.Addresses, e.Block, d, r.cfg.Tolerance)
		if err := r.mismatched.raise(ctx, r.eth.core, r.eth.cfg.Now(), r.eth.log, r.eth.cfg.Alert, r.cfg.Tolerance.Big(), mismatch{
			Scope: fmt.Sprintf("%d:%d", e.Asset, e.Wallet), Figures: e.Expected.String() + ":" + e.Chain.String(), Diff: d, Code: e.Code,
			Title: "ledger and chain differ in a token", Why: why,
			Log: "TOKEN RECONCILIATION MISMATCH", LogAttrs: []any{"asset", e.Code, "wallet", e.Wallet, "expected", e.Expected.String(), "chain", e.Chain.String(), "block", e.Block},
			// Ether first: a token leaving the Safes unjournaled means
			// cold keys are in someone's hands.
			Halt:     []ledger.AssetID{r.eth.cfg.Asset, e.Asset},
			Incident: incident.Incident{ID: fmt.Sprintf("mismatch-%s-%d", e.Code, e.Wallet), Asset: e.Code, Detector: "reconciliation", Reason: why},
		}); err != nil {
			return err
		}
	}
	return nil
}

// Balances returns the last reconciliation of a token asset, by wallet,
// and the block it was at (0 before one).
func (r *TokenRecon) Balances(asset ledger.AssetID) ([]TokenBalance, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]TokenBalance(nil), r.last[asset]...)
	sort.Slice(out, func(i, j int) bool { return out[i].Wallet < out[j].Wallet })
	return out, r.at[asset]
}
