package watch

import (
	"context"
	"fmt"
	"sort"

	"kinko/internal/alert"
	"kinko/internal/chain"
	"kinko/internal/core"
	"kinko/internal/incident"
	"kinko/internal/ledger"
)

// Reconciliation compares, per wallet, what the chain says it holds with
// its ledger account, continuously. The chain side is the watcher's own
// view, built from every block it follows: outputs paying any script of our
// wallets (recomputed from the descriptors), less those spent. It counts
// blocks only once they have the confirmations the ledger waits for, so both
// sides speak of the same depth. A difference above the tolerance halts the
// asset's withdrawals and opens an incident (Zaif's theft went unnoticed for
// three days; this is checked at every block).

type chainOut struct {
	wallet uint32
	value  int64
}

// chainView is our outputs on chain at the reconciled depth.
type chainView struct {
	utxos   map[chain.Outpoint]chainOut
	pending map[int32][]blockTx // followed, not yet deep enough (txsOf)
	applied int32               // the deepest height applied
}

func newChainView(start int32) *chainView {
	return &chainView{utxos: map[chain.Outpoint]chainOut{}, pending: map[int32][]blockTx{}, applied: start - 1}
}

// applyBlock spends the view's outputs the block's inputs spend and adds
// its outputs paying an owned address, a transaction at a time in the
// block's order (an output may be spent in the block that makes it).
func (v *chainView) applyBlock(txs []blockTx, owned func(addr string) (uint32, bool)) {
	for _, tx := range txs {
		for _, in := range tx.spends {
			delete(v.utxos, in.Prev)
		}
		for _, o := range tx.transfers {
			if w, ok := owned(o.To); ok {
				v.utxos[chain.Outpoint{Tx: o.Tx, Index: o.Index}] = chainOut{wallet: w, value: value(o)}
			}
		}
	}
}

// balances sums the view per wallet.
func (v *chainView) balances() map[uint32]int64 {
	out := map[uint32]int64{}
	for _, o := range v.utxos {
		out[o.wallet] += o.value
	}
	return out
}

// advance applies the followed blocks that now have conf confirmations.
func (d *Deposits) advance(tip int32) {
	d.viewMu.Lock()
	defer d.viewMu.Unlock()
	v := d.view
	for h := v.applied + 1; h <= tip-d.cfg.Confirmations+1; h++ {
		b, ok := v.pending[h]
		if !ok {
			break
		}
		v.applyBlock(b, d.owned)
		delete(v.pending, h)
		v.applied = h
	}
}

func (d *Deposits) owned(addr string) (uint32, bool) {
	script, err := d.chain.Script(addr)
	if err != nil {
		return 0, false
	}
	p, ok := d.cfg.Owned.Find(script)
	return p.Wallet, ok
}

// Mismatch is one wallet whose ledger account and chain differ.
type Mismatch struct {
	Wallet uint32
	Ledger int64
	Chain  int64
}

// Reconcile compares every wallet of the asset with the chain view and
// returns the differences above the tolerance.
func (d *Deposits) Reconcile() []Mismatch {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reconcile()
}

func (d *Deposits) reconcile() []Mismatch {
	var out []Mismatch
	for _, m := range d.balances() {
		if diff := m.Ledger - m.Chain; diff > d.cfg.Tolerance || -diff > d.cfg.Tolerance {
			out = append(out, m)
		}
	}
	return out
}

// balances returns both sides of every wallet of the asset, by wallet id.
func (d *Deposits) balances() []Mismatch {
	if d.view == nil {
		return nil
	}
	chain := d.view.balances()
	var out []Mismatch
	d.core.Read(func(s *core.State) {
		for _, w := range s.Custody.Wallets() {
			if w.Asset != d.cfg.Asset {
				continue
			}
			a, _ := s.Ledger.Account(w.Account())
			l, _ := a.Balance().Uint64()
			out = append(out, Mismatch{Wallet: w.ID, Ledger: int64(l), Chain: chain[w.ID]})
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Wallet < out[j].Wallet })
	return out
}

// Differences returns, per wallet of the asset, its ledger balance less
// the chain's at the reconciled depth; nil without Owned.
func (d *Deposits) Differences() map[uint32]int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out map[uint32]int64
	for _, m := range d.balances() {
		if out == nil {
			out = map[uint32]int64{}
		}
		out[m.Wallet] = m.Ledger - m.Chain
	}
	return out
}

// haltMismatches halts and records each mismatch once.
func (d *Deposits) haltMismatches(ctx context.Context) error {
	if d.view == nil {
		return nil
	}
	var code string
	d.core.Read(func(s *core.State) {
		if a, ok := s.Ledger.Asset(d.cfg.Asset); ok {
			code = a.Code
		}
	})
	for _, m := range d.reconcile() {
		key := fmt.Sprintf("%d:%d:%d", m.Wallet, m.Ledger, m.Chain)
		if d.mismatched[key] {
			continue
		}
		why := fmt.Sprintf("wallet %d: ledger %d, chain %d at height %d (tolerance %d)", m.Wallet, m.Ledger, m.Chain, d.view.applied, d.cfg.Tolerance)
		d.log.Error("RECONCILIATION MISMATCH", "wallet", m.Wallet, "ledger", m.Ledger, "chain", m.Chain)
		d.alert(alert.Alert{Key: "mismatch:" + key, Severity: alert.Critical, Title: "ledger and chain differ", Detail: why, Time: d.cfg.Now()})
		if err := haltAndOpen(ctx, d.core, d.cfg.Now(), d.cfg.Asset, "reconciliation", why,
			incident.Incident{ID: fmt.Sprintf("mismatch-%s-%d", code, m.Wallet), Asset: code, Detector: "reconciliation", Reason: why}); err != nil {
			return err
		}
		d.mismatched[key] = true
	}
	return nil
}

// checkReserves runs at each reconciled block: customer liabilities
// against the customer wallets (by the ledger and by the chain view),
// the hot share against its cap, the house's backing of hot customer
// coins. A shortfall of the customer wallets beyond the tolerance halts
// withdrawals and opens an incident; the others alert. Each condition is
// raised once, and again only after it has cleared.
func (d *Deposits) checkReserves(ctx context.Context) error {
	if d.view == nil || d.view.applied == d.reservesAt {
		return nil
	}
	d.reservesAt = d.view.applied
	onChain := map[uint32]ledger.Amount{}
	for w, v := range d.view.balances() {
		onChain[w] = ledger.AmountOf(uint64(max(v, 0)))
	}
	row, seq := reserveRow(d.core, d.cfg.Asset, d.cfg.Reserves, onChain)
	if row == nil {
		return nil
	}
	rc := reserveCheck{core: d.core, asset: d.cfg.Asset, policy: d.cfg.Reserves, tol: ledger.AmountOf(uint64(max(d.cfg.Tolerance, 0))),
		now: d.cfg.Now, alert: d.alert, log: d.log, flags: d.reserveFlags}
	return rc.check(ctx, row, uint64(d.view.applied), seq)
}
