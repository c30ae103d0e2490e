package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"kinko/internal/alert"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/incident"
	"kinko/internal/ledger"
	"kinko/internal/reserves"
)

// haltAndOpen journals, in this order, the halt of the asset's
// withdrawals by actor and the incident: what every detector of the
// watcher does on a finding that money may be gone (a mismatch of chain
// and ledger, customer wallets short, an unexplained outflow). Both
// commands are idempotent in the core (halting what is halted keeps the
// first halt; an incident opened again by its id adds only the
// transactions it did not name), so a retry after a failure opens
// nothing twice.
func haltAndOpen(ctx context.Context, c Core, now time.Time, asset ledger.AssetID, actor, reason string, in incident.Incident) error {
	for _, cmd := range []core.Command{
		core.Halt{Switch: controls.Switch{Asset: asset, Service: controls.Withdraw}, Actor: actor, Reason: reason},
		core.OpenIncident{Incident: in},
	} {
		o, err := c.Submit(ctx, now, cmd)
		if err == nil {
			err = o.Err
		}
		if err != nil {
			return fmt.Errorf("watch: %s: %w", cmd.Kind(), err)
		}
	}
	return nil
}

// haltDeposits halts asset's deposits by the watcher, for reason: what a
// deposit watcher does when it can no longer tell which credits stand (a
// reorg below the blocks it keeps).
func haltDeposits(ctx context.Context, c Core, now time.Time, asset ledger.AssetID, reason string) error {
	o, err := c.Submit(ctx, now, core.Halt{Switch: controls.Switch{Asset: asset, Service: controls.Deposit}, Actor: "watcher", Reason: reason})
	if err == nil {
		err = o.Err
	}
	if err != nil {
		return fmt.Errorf("watch: halt deposits: %w", err)
	}
	return nil
}

// depositsStopped tells why asset's deposits cannot be credited now (its
// deposits halted, or the asset awaiting listing), nil when they can. A
// deposit watcher keeps what has its confirmations while they are stopped
// and credits it once they are not: a deposit made during a halt is
// credited after the lift, not dropped.
func depositsStopped(c Core, asset ledger.AssetID) error {
	var stopped error
	c.Read(func(s *core.State) {
		stopped = s.Controls.Allowed(asset, controls.Deposit)
		if stopped == nil && !s.People.AssetEnabled(asset) {
			stopped = fmt.Errorf("%w: asset %d", core.ErrAssetNotListed, asset)
		}
	})
	return stopped
}

// stopsDeposits reports whether err, the core's refusal of a deposit, is
// one depositsStopped would have told: deposits halted, or the asset
// awaiting listing (the deposit is kept, not refused for good).
func stopsDeposits(err error) bool {
	return errors.Is(err, controls.ErrHalted) || errors.Is(err, core.ErrAssetNotListed)
}

// reserveCheck raises the reserves conditions of one asset's row at one
// reconciled block, for the Bitcoin and the Ether reconciliation alike:
// the customer wallets short of customer liabilities (by the ledger or by
// the chain, beyond the tolerance) halts withdrawals and opens an
// incident; the hot share above the cap and the house's backing below the
// hot customer holdings alert. Each condition is raised once, and again
// only after it has cleared (flags holds the raised ones); a shortfall
// whose incident is still open (before a restart) is not raised again.
// All figures are 128-bit base units.
type reserveCheck struct {
	core   Core
	asset  ledger.AssetID
	policy reserves.Policy
	tol    ledger.Amount
	now    func() time.Time
	alert  func(alert.Alert)
	log    *slog.Logger
	flags  map[string]bool
}

// check raises what row calls for at height; seq is the state's sequence
// the row was computed at (it keys the alerts).
func (r *reserveCheck) check(ctx context.Context, row *reserves.Row, height uint64, seq uint64) error {
	chain := row.CustomerWallets
	if row.OnChainCustomer != nil {
		chain = *row.OnChainCustomer
	}
	conds := []struct {
		key, title string
		on         bool
		halt       bool
		detail     string
	}{
		{"segregation", "customer wallets short of customer liabilities", row.Shortfall.Cmp(r.tol) > 0, true,
			fmt.Sprintf("%s: liabilities %s, customer wallets %s by the ledger and %s on chain at height %d (tolerance %s)", row.Asset, row.CustomerLiabilities, row.CustomerWallets, chain, height, r.tol)},
		{"hot-over-cap", "hot wallet share above the cap", row.HotOverCap, false,
			fmt.Sprintf("%s: hot share %d bps, cap %d bps: sweep %s to cold", row.Asset, row.HotShareBps, r.policy.HotCapBps, row.Sweep.String())},
		{"house-short", "house backing below the hot customer holdings", !row.HouseBacked, false,
			fmt.Sprintf("%s: house holds %s, hot customer holdings %s", row.Asset, row.HouseHeld.String(), row.HouseRequired.String())},
	}
	for _, c := range conds {
		if !c.on {
			delete(r.flags, c.key)
			continue
		}
		id := fmt.Sprintf("%s-%s", c.key, row.Asset)
		if c.halt {
			// Recorded before a restart and still open: nothing new.
			r.core.Read(func(s *core.State) {
				if in, ok := s.Incidents.Get(id); ok && in.Closed == 0 {
					r.flags[c.key] = true
				}
			})
		}
		if r.flags[c.key] {
			continue
		}
		sev := alert.Warning
		if c.halt {
			sev = alert.Critical
		}
		r.log.Error("RESERVES", "condition", c.key, "detail", c.detail)
		if r.alert != nil {
			r.alert(alert.Alert{Key: fmt.Sprintf("%s:%s:%d", c.key, row.Asset, seq), Severity: sev, Title: c.title, Detail: c.detail, Time: r.now()})
		}
		if c.halt {
			if err := haltAndOpen(ctx, r.core, r.now(), r.asset, "reconciliation", c.detail,
				incident.Incident{ID: id, Asset: row.Asset, Detector: "reconciliation", Reason: c.detail}); err != nil {
				return err
			}
		}
		r.flags[c.key] = true
	}
	return nil
}

// reserveRow computes the reserves report's row of asset from the state,
// with onChain the chain's figure of each wallet (by id).
func reserveRow(c Core, asset ledger.AssetID, p reserves.Policy, onChain map[uint32]ledger.Amount) (*reserves.Row, uint64) {
	var row *reserves.Row
	var seq uint64
	c.Read(func(s *core.State) {
		rep, err := reserves.Compute(s.Ledger, s.Custody, p, onChain, s.Seq(), s.Time())
		if err != nil {
			return
		}
		a, _ := s.Ledger.Asset(asset)
		for i := range rep.Rows {
			if rep.Rows[i].Asset == a.Code {
				row = &rep.Rows[i]
			}
		}
		seq = s.Seq()
	})
	return row, seq
}

// mismatches are the ledger-against-chain differences a reconciliation
// has raised, by scope (a wallet, the gas account, a token in a wallet)
// and figures (what the ledger expected and the chain held), so that each
// is raised once while it lasts, again when its figures change, and
// forgotten once its scope is back within the tolerance.
type mismatches map[string]bool

// mismatch is one difference of a reconciliation: Diff is Expected less
// Chain; Why says it in full (the halt's reason and the incident's).
type mismatch struct {
	Scope, Figures string
	Diff           *big.Int
	Code           string // the asset code of the alert's key
	Title, Why     string
	// Log is the error line, with its attributes.
	Log      string
	LogAttrs []any
	// Halt are the assets whose withdrawals halt; the incident is opened
	// with the last one's halt.
	Halt     []ledger.AssetID
	Incident incident.Incident
}

// raise raises m unless it is within tol (its scope then forgotten) or
// already raised with these figures: the error line, a critical alert,
// the halts and the incident.
func (ms mismatches) raise(ctx context.Context, c Core, now time.Time, log *slog.Logger, send func(alert.Alert), tol *big.Int, m mismatch) error {
	prefix := m.Scope + ":"
	key := prefix + m.Figures
	if new(big.Int).Abs(m.Diff).Cmp(tol) <= 0 {
		for k := range ms {
			if strings.HasPrefix(k, prefix) {
				delete(ms, k)
			}
		}
		return nil
	}
	if ms[key] {
		return nil
	}
	log.Error(m.Log, m.LogAttrs...)
	if send != nil {
		send(alert.Alert{Key: "mismatch:" + m.Code + ":" + key, Severity: alert.Critical, Title: m.Title, Detail: m.Why, Time: now})
	}
	last := len(m.Halt) - 1
	for _, a := range m.Halt[:last] {
		o, err := c.Submit(ctx, now, core.Halt{Switch: controls.Switch{Asset: a, Service: controls.Withdraw}, Actor: "reconciliation", Reason: m.Why})
		if err == nil {
			err = o.Err
		}
		if err != nil {
			return fmt.Errorf("watch: halt asset %d: %w", a, err)
		}
	}
	if err := haltAndOpen(ctx, c, now, m.Halt[last], "reconciliation", m.Why, m.Incident); err != nil {
		return err
	}
	ms[key] = true
	return nil
}

// largestDifference returns the largest difference, either way, of a
// reconciliation's balances (0 for none).
func largestDifference[B interface{ Difference() *big.Int }](bs []B) *big.Int {
	worst := new(big.Int)
	for _, b := range bs {
		if d := new(big.Int).Abs(b.Difference()); d.Cmp(worst) > 0 {
			worst = d
		}
	}
	return worst
}
