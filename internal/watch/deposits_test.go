package watch

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"

	"kinko/internal/chain"
	"kinko/internal/chain/btc/regtest"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/operators"
	"kinko/internal/people"
	"kinko/internal/wallet"
)

const btcAsset ledger.AssetID = 2

var custAcct = ledger.AccountKey{Owner: 1, Asset: btcAsset, Kind: ledger.KindAvailable}

// coldDescriptor is the 2-of-3 cold customer wallet of the tests, from
// fixed seeds.
func coldDescriptor(t testing.TB) *wallet.Descriptor {
	d := &wallet.Descriptor{M: 2, Net: regtest.Net}
	for i := byte(1); i <= 3; i++ {
		m, err := hdkeychain.NewMaster(bytes.Repeat([]byte{i}, 32), regtest.Net)
		if err != nil {
			t.Fatal(err)
		}
		k, _, err := wallet.AccountKey(m, regtest.Net, 0)
		if err != nil {
			t.Fatal(err)
		}
		d.Keys = append(d.Keys, k)
	}
	return d
}

type depositEnv struct {
	t    testing.TB
	team *operators.Team
	core *core.Core
	node *regtest.Node
	book *wallet.Book
	addr string
	desc *wallet.Descriptor
}

// newDepositEnv starts btcd and a core with a cold customer wallet whose
// first address is handed to customer 1.
func newDepositEnv(t testing.TB) *depositEnv {
	ctx := context.Background()
	e := &depositEnv{t: t, node: regtest.New(t, regtest.Options{}), book: wallet.NewBook(), desc: coldDescriptor(t)}
	c, err := core.Open(ctx, core.Config{Dir: t.TempDir(), CheckInvariants: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e.core = c
	w := custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: btcAsset, Descriptor: e.desc.String(), Owner: ledger.OwnerHouseMin + 100}
	// Wallets are registered by two admins' approved requests.
	e.team = operators.Crew("deposit test")
	cmds := append([]core.Command{core.CreateAssets{Assets: []ledger.Asset{{ID: btcAsset, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}},
		core.CreateCustomers{IDs: []ledger.OwnerID{1}}}, e.team.Bootstrap(time.Now())...)
	cmds = append(cmds, e.team.RegisterWallets(time.Now(), w)...)
	for _, cmd := range append(cmds, core.AssignAddress{Wallet: 1, Customer: 1}) {
		if o, err := c.Submit(ctx, time.Now(), cmd); err != nil || o.Err != nil || o.EventErr() != nil {
			t.Fatal(err, o.Err, o.EventErr())
		}
	}
	if err := e.book.Add(1, e.desc, 0, 0, 20); err != nil {
		t.Fatal(err)
	}
	a, _, _ := e.desc.Address(0, 0)
	e.addr = a.EncodeAddress()
	return e
}

// fork starts a second node, lets it sync from the first, and parts them:
// each can now mine its own branch, and joining them reorganises the
// shorter.
func (e *depositEnv) fork(ctx context.Context) *regtest.Node {
	e.t.Helper()
	other := regtest.New(e.t, regtest.Options{MatureBlocks: -1})
	if err := other.Connect(ctx, e.node); err != nil {
		e.t.Fatal(err)
	}
	if err := regtest.WaitSynced(ctx, e.node, other); err != nil {
		e.t.Fatal(err)
	}
	e.node.Disconnect(ctx)
	other.Disconnect(ctx)
	return other
}

func (e *depositEnv) watcher(confs int32) *Deposits {
	d, err := NewDeposits(context.Background(), e.core, e.node.Chain(), e.book, DepositConfig{Asset: btcAsset, Confirmations: confs, StartHeight: regtest.SegwitHeight})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func (e *depositEnv) balance() uint64 {
	var v uint64
	e.core.Read(func(s *core.State) {
		a, _ := s.Ledger.Account(custAcct)
		v, _ = a.Balance().Uint64()
	})
	return v
}

// creditedThenReorged has d credit a deposit of 30,000,000 at one
// confirmation on the watcher's node, then joins other, whose longer
// branch (3 blocks) lacks it: the deposit's block leaves the best chain.
func (e *depositEnv) creditedThenReorged(ctx context.Context, d *Deposits, other *regtest.Node) {
	e.t.Helper()
	if _, err := e.node.SendTo(ctx, map[string]btcutil.Amount{e.addr: 30_000_000}); err != nil {
		e.t.Fatal(err)
	}
	e.node.Generate(ctx, 1)
	e.step(d)
	if got := e.balance(); got != 30_000_000 {
		e.t.Fatalf("balance after 1 confirmation = %d", got)
	}
	other.Generate(ctx, 3)
	other.Connect(ctx, e.node)
	if err := regtest.WaitSynced(ctx, e.node, other); err != nil {
		e.t.Fatal(err)
	}
}

// reversedOnce checks that one deposit is reversed, and the state's
// invariants.
func (e *depositEnv) reversedOnce() {
	e.t.Helper()
	e.core.Read(func(s *core.State) {
		n := 0
		s.Custody.Deposits(func(dep *custody.Deposit) bool {
			if dep.State == custody.DepositReversed {
				n++
			}
			return true
		})
		if n != 1 {
			e.t.Errorf("%d reversed deposits; want 1", n)
		}
		if err := s.CheckInvariants(); err != nil {
			e.t.Error(err)
		}
	})
}

func (e *depositEnv) step(d *Deposits) {
	e.t.Helper()
	if err := d.Step(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func TestDepositCreditedAfterConfirmations(t *testing.T) {
	ctx := context.Background()
	e := newDepositEnv(t)
	d := e.watcher(3)
	e.step(d)
	tx, err := e.node.SendTo(ctx, map[string]btcutil.Amount{e.addr: 50_000_000})
	if err != nil {
		t.Fatal(err)
	}
	e.step(d)
	p := d.Pending()
	if len(p) != 1 || p[0].Confirmations != 0 || p[0].Amount != 50_000_000 || p[0].Customer != 1 || p[0].Outpoint.TxID != tx.TxHash() {
		t.Fatalf("pending from the mempool = %+v", p)
	}
	for confs := int32(1); confs <= 2; confs++ {
		e.node.Generate(ctx, 1)
		e.step(d)
		if p := d.Pending(); len(p) != 1 || p[0].Confirmations != confs {
			t.Fatalf("pending at %d confirmations = %+v", confs, p)
		}
		if e.balance() != 0 {
			t.Fatalf("credited at %d confirmations", confs)
		}
	}
	e.node.Generate(ctx, 1)
	e.step(d)
	if got := e.balance(); got != 50_000_000 {
		t.Fatalf("balance after 3 confirmations = %d", got)
	}
	if p := d.Pending(); len(p) != 0 {
		t.Fatalf("still pending: %+v", p)
	}
	// A restarted watcher resumes from its journaled checkpoint and does
	// not credit twice.
	d2 := e.watcher(3)
	e.node.Generate(ctx, 2)
	e.step(d2)
	if got := e.balance(); got != 50_000_000 {
		t.Fatalf("balance after restart = %d", got)
	}
	var cp core.WatchCheckpoint
	e.core.Read(func(s *core.State) { cp = s.Checkpoints[btcAsset] })
	if _, h, _ := e.node.Client().BestBlock(ctx); cp.Height != h {
		t.Fatalf("checkpoint at %d; tip %d", cp.Height, h)
	}
}

// TestDepositReorgBeforeCredit: the deposit's block leaves the best chain
// before it has its confirmations: it is never credited on its strength.
func TestDepositReorgBeforeCredit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := newDepositEnv(t)
	other := e.fork(ctx)
	d := e.watcher(2)
	tx, err := e.node.SendTo(ctx, map[string]btcutil.Amount{e.addr: 20_000_000})
	if err != nil {
		t.Fatal(err)
	}
	e.node.Generate(ctx, 1)
	e.step(d)
	if p := d.Pending(); len(p) != 1 || p[0].Confirmations != 1 {
		t.Fatalf("pending = %+v", p)
	}
	other.Generate(ctx, 3)
	other.Connect(ctx, e.node)
	regtest.WaitSynced(ctx, e.node, other)
	e.step(d)
	if e.balance() != 0 {
		t.Fatal("credited from a block that left the chain")
	}
	for _, p := range d.Pending() {
		if p.Outpoint.TxID == tx.TxHash() && p.Confirmations != 0 {
			t.Fatalf("still counted as confirmed after the reorg: %+v", p)
		}
	}
}

// TestDepositReorgAfterCredit: a credited deposit whose block leaves the
// best chain is reversed, and deposits of the asset are halted.
func TestDepositReorgAfterCredit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := newDepositEnv(t)
	other := e.fork(ctx)
	d := e.watcher(1)
	e.creditedThenReorged(ctx, d, other)
	e.step(d)
	if got := e.balance(); got != 0 {
		t.Fatalf("balance after the reorg = %d; want 0 (reversed)", got)
	}
	e.core.Read(func(s *core.State) {
		if err := s.Controls.Allowed(btcAsset, controls.Deposit); !errors.Is(err, controls.ErrHalted) {
			t.Errorf("deposits not halted after a reversal: %v", err)
		}
	})
	e.reversedOnce()
}

// TestDepositKeptThroughHalt: a deposit that gets its confirmations
// while the asset's deposits are halted is kept, not dropped: through
// blocks far past the journaled window and a restart of the watcher (its
// checkpoint holds the lowest kept deposit's height, and the restarted
// one reads the blocks from there again), and credited once two
// operators lift the halt.
func TestDepositKeptThroughHalt(t *testing.T) {
	ctx := context.Background()
	e := newDepositEnv(t)
	d := e.watcher(3)
	e.step(d)
	if o, err := e.core.Submit(ctx, time.Now(), core.Halt{Switch: controls.Switch{Asset: btcAsset, Service: controls.Deposit}, Actor: "kenji", Reason: "drill"}); err != nil || o.Err != nil {
		t.Fatal(err, o.Err)
	}
	if _, err := e.node.SendTo(ctx, map[string]btcutil.Amount{e.addr: 25_000_000}); err != nil {
		t.Fatal(err)
	}
	e.node.Generate(ctx, 3)
	e.step(d)
	e.node.Generate(ctx, 40) // far past the journaled window (3 + 16)
	e.step(d)
	if p := d.Pending(); len(p) != 1 || p[0].Amount != 25_000_000 {
		t.Fatalf("pending while halted: %+v; want the deposit kept", p)
	}
	var cp core.WatchCheckpoint
	e.core.Read(func(s *core.State) { cp = s.Checkpoints[btcAsset] })
	if cp.Held == 0 || cp.Held >= cp.Height-int32(len(cp.Hashes)) {
		t.Fatalf("checkpoint at %d (%d hashes) holds %d; want the kept deposit's height, below its window", cp.Height, len(cp.Hashes), cp.Held)
	}
	d2 := e.watcher(3)
	e.step(d2)
	if p := d2.Pending(); len(p) != 1 || p[0].Amount != 25_000_000 {
		t.Fatalf("pending after a restart while halted: %+v; want the deposit kept", p)
	}
	if got := e.balance(); got != 0 {
		t.Fatalf("balance while halted = %d", got)
	}
	for _, cmd := range e.team.Approved(core.KindLiftHalt, core.LiftHaltPayload{Switch: controls.Switch{Asset: btcAsset, Service: controls.Deposit}}, "aiko", "kenji", people.RoleApprover, "drill over", time.Now()) {
		if o, err := e.core.Submit(ctx, time.Now(), cmd); err != nil || o.Err != nil {
			t.Fatal(err, o.Err)
		}
	}
	e.step(d2)
	if got := e.balance(); got != 25_000_000 {
		t.Fatalf("balance after the lift = %d; want 25,000,000", got)
	}
	e.node.Generate(ctx, 1)
	e.step(d2)
	e.core.Read(func(s *core.State) { cp = s.Checkpoints[btcAsset] })
	if got := e.balance(); got != 25_000_000 || cp.Held != 0 || len(d2.Pending()) != 0 {
		t.Fatalf("after the credit: balance %d, checkpoint holds %d, %d pending; want 25,000,000, 0, 0", got, cp.Held, len(d2.Pending()))
	}
}

// haltFirst is a core whose deposits an operator halts just before the
// watcher's first credit command reaches it.
type haltFirst struct {
	Core
	done bool
}

func (h *haltFirst) Submit(ctx context.Context, at time.Time, cmd core.Command) (core.Outcome, error) {
	if _, ok := cmd.(core.CreditDeposits); ok && !h.done {
		h.done = true
		if o, err := h.Core.Submit(ctx, at, core.Halt{Switch: controls.Switch{Asset: btcAsset, Service: controls.Deposit}, Actor: "kenji", Reason: "drill"}); err != nil || o.Err != nil {
			return o, errors.Join(err, o.Err)
		}
	}
	return h.Core.Submit(ctx, at, cmd)
}

// TestDepositKeptWhenHaltedMeanwhile: deposits halted between the
// watcher's look and its credit command: the core refuses the deposit, and
// the watcher keeps it and credits it after the lift.
func TestDepositKeptWhenHaltedMeanwhile(t *testing.T) {
	ctx := context.Background()
	e := newDepositEnv(t)
	link := &haltFirst{Core: e.core}
	d, err := NewDeposits(ctx, link, e.node.Chain(), e.book, DepositConfig{Asset: btcAsset, Confirmations: 1, StartHeight: regtest.SegwitHeight})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.node.SendTo(ctx, map[string]btcutil.Amount{e.addr: 15_000_000}); err != nil {
		t.Fatal(err)
	}
	e.node.Generate(ctx, 1)
	e.step(d)
	if p := d.Pending(); !link.done || len(p) != 1 || e.balance() != 0 {
		t.Fatalf("halted meanwhile: pending %+v, balance %d; want the deposit kept, not credited", p, e.balance())
	}
	for _, cmd := range e.team.Approved(core.KindLiftHalt, core.LiftHaltPayload{Switch: controls.Switch{Asset: btcAsset, Service: controls.Deposit}}, "aiko", "kenji", people.RoleApprover, "drill over", time.Now()) {
		if o, err := e.core.Submit(ctx, time.Now(), cmd); err != nil || o.Err != nil {
			t.Fatal(err, o.Err)
		}
	}
	e.step(d)
	if got := e.balance(); got != 15_000_000 || len(d.Pending()) != 0 {
		t.Fatalf("after the lift: balance %d, %d pending; want 15,000,000, 0", got, len(d.Pending()))
	}
}

// refuseReversal is a core whose link fails once for a reversal of
// deposits, as a core across the network does when the connection drops:
// the command is not journaled.
type refuseReversal struct {
	Core
	refused int
}

func (r *refuseReversal) Submit(ctx context.Context, at time.Time, cmd core.Command) (core.Outcome, error) {
	if _, ok := cmd.(core.ReverseDeposits); ok && r.refused == 0 {
		r.refused++
		return core.Outcome{}, errors.New("connection reset by peer")
	}
	return r.Core.Submit(ctx, at, cmd)
}

// TestDepositReorgReversalRefused: the credited deposit's block leaves the
// best chain while the core does not take the reversal (the watcher's link
// to it drops). The step fails and the next one unwinds the block again:
// the deposit is reversed once, not left credited on a block that is gone.
func TestDepositReorgReversalRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := newDepositEnv(t)
	other := e.fork(ctx)
	link := &refuseReversal{Core: e.core}
	d, err := NewDeposits(ctx, link, e.node.Chain(), e.book, DepositConfig{Asset: btcAsset, Confirmations: 1, StartHeight: regtest.SegwitHeight})
	if err != nil {
		t.Fatal(err)
	}
	e.creditedThenReorged(ctx, d, other)
	if err := d.Step(ctx); err == nil || link.refused != 1 {
		t.Fatalf("step with the reversal refused: %v (%d refused); want its error", err, link.refused)
	}
	if got := e.balance(); got != 30_000_000 {
		t.Fatalf("balance with the reversal refused = %d; want still 30,000,000", got)
	}
	e.step(d)
	e.step(d)
	if got := e.balance(); got != 0 {
		t.Fatalf("balance after the next steps = %d; want 0 (reversed once the core took it)", got)
	}
	e.reversedOnce()
}

// TestDepositReorgBelowKept: a reorg reaching below every block hash the
// watcher keeps (a restarted watcher keeps its journaled window, the
// confirmations and 16) cannot be unwound: what it credited below may be
// gone. The watcher halts the asset's deposits, says why, and stays
// stopped rather than follow the new chain on from below; the journaled
// checkpoint stays where it was. The recovery (PlanReorgRecovery,
// RecoverReorg: what kinko watch recover-reorg journals) reverses the
// deposit whose block left, keeps the one on both branches, and journals a
// checkpoint on the best chain below it, from which a restarted watcher
// follows the new branch, crediting nothing while deposits stay halted.
func TestDepositReorgBelowKept(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := newDepositEnv(t)
	d := e.watcher(1)
	// A deposit on both branches, then one on the branch that will lose.
	if _, err := e.node.SendTo(ctx, map[string]btcutil.Amount{e.addr: 10_000_000}); err != nil {
		t.Fatal(err)
	}
	e.node.Generate(ctx, 1)
	e.step(d)
	var both []custody.UTXO
	e.core.Read(func(s *core.State) { both = s.Custody.UTXOs(1, custody.UTXOAvailable) })
	if len(both) != 1 {
		t.Fatalf("%d outputs credited; want 1", len(both))
	}
	other := e.fork(ctx)
	if _, err := e.node.SendTo(ctx, map[string]btcutil.Amount{e.addr: 30_000_000}); err != nil {
		t.Fatal(err)
	}
	e.node.Generate(ctx, 1)
	e.step(d)
	e.node.Generate(ctx, 20)
	e.step(d)
	if got := e.balance(); got != 40_000_000 {
		t.Fatalf("balance = %d; want both deposits credited", got)
	}
	var before core.WatchCheckpoint
	e.core.Read(func(s *core.State) { before = s.Checkpoints[btcAsset] })
	if len(before.Hashes) != 17 {
		t.Fatalf("journaled window of %d hashes; want 17", len(before.Hashes))
	}
	if _, err := PlanReorgRecovery(ctx, e.core, e.node.Chain(), btcAsset); !errors.Is(err, ErrNoDeepReorg) {
		t.Fatalf("recovery planned with the checkpoint on the best chain: %v; want ErrNoDeepReorg", err)
	}
	// Restarted: it keeps the 17 journaled hashes, all above the deposit.
	d2 := e.watcher(1)
	other.Generate(ctx, 30)
	other.Connect(ctx, e.node)
	if err := regtest.WaitSynced(ctx, e.node, other); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := d2.Step(ctx); !errors.Is(err, chain.ErrReorgTooDeep) {
			t.Fatalf("step %d after a reorg below the kept blocks: %v; want ErrReorgTooDeep", i+1, err)
		}
	}
	// One started only now, on blocks its node no longer has on its
	// main chain, starts and stops the same way.
	late, err := NewDeposits(ctx, e.core, e.node.Chain(), e.book, DepositConfig{Asset: btcAsset, Confirmations: 1, StartHeight: regtest.SegwitHeight})
	if err != nil {
		t.Fatalf("a watcher started after the reorg: %v", err)
	}
	if err := late.Step(ctx); !errors.Is(err, chain.ErrReorgTooDeep) {
		t.Fatalf("a watcher started after the reorg, its first step: %v; want ErrReorgTooDeep", err)
	}
	e.core.Read(func(s *core.State) {
		err := s.Controls.Allowed(btcAsset, controls.Deposit)
		if !errors.Is(err, controls.ErrHalted) || !strings.Contains(err.Error(), "reorg deeper") {
			t.Errorf("deposits after the deep reorg: %v; want halted for it", err)
		}
		if after := s.Checkpoints[btcAsset]; after.Height != before.Height || len(after.Hashes) != len(before.Hashes) || after.Hashes[0] != before.Hashes[0] {
			t.Errorf("checkpoint moved to %d (%d hashes); want it left at %d", after.Height, len(after.Hashes), before.Height)
		}
	})
	// Stopped, it still watches: two cold keys spend the output both
	// branches hold, mined where the watcher's node never had it in its
	// pool, and the block alone tells.
	e.node.Disconnect(ctx)
	other.Disconnect(ctx)
	theft := e.steal(both[0])
	if _, err := other.Client().Broadcast(ctx, theft); err != nil {
		t.Fatal(err)
	}
	other.Generate(ctx, 1)
	other.Connect(ctx, e.node)
	if err := regtest.WaitSynced(ctx, e.node, other); err != nil {
		t.Fatal(err)
	}
	if err := d2.Step(ctx); !errors.Is(err, chain.ErrReorgTooDeep) {
		t.Fatalf("step after the theft: %v; want ErrReorgTooDeep still", err)
	}
	if n := e.incidentsNaming(theft); n != 1 {
		t.Fatalf("%d incidents name the theft mined after the deep reorg; want 1", n)
	}
	e.core.Read(func(s *core.State) {
		if err := s.Controls.Allowed(btcAsset, controls.Withdraw); !errors.Is(err, controls.ErrHalted) {
			t.Errorf("withdrawals after the theft: %v; want halted", err)
		}
	})

	// The recovery: the 30,000,000 deposit's block is gone, the
	// 10,000,000 one's is on both branches.
	plan, err := PlanReorgRecovery(ctx, e.core, e.node.Chain(), btcAsset)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Gone) != 1 || plan.Gone[0].Amount != 30_000_000 {
		t.Fatalf("deposits gone: %+v; want the 30,000,000 one alone", plan.Gone)
	}
	if int32(plan.From.Height) != plan.Gone[0].Height-1 {
		t.Fatalf("recovered to %d; want the block below the gone deposit's, %d", plan.From.Height, plan.Gone[0].Height-1)
	}
	if h, err := e.node.Chain().HashAt(ctx, plan.From.Height); err != nil || h != plan.From.Hash {
		t.Fatalf("recovered to %s, not the best chain's block at %d (%s, %v)", plan.From.Hash, plan.From.Height, h, err)
	}
	if err := RecoverReorg(ctx, e.core, time.Now(), plan, "op-a"); err != nil {
		t.Fatal(err)
	}
	if got := e.balance(); got != 10_000_000 {
		t.Fatalf("balance after the recovery = %d; want 10,000,000 (the gone deposit reversed)", got)
	}
	if err := RecoverReorg(ctx, e.core, time.Now(), plan, "op-a"); err == nil {
		t.Fatal("the same plan journaled twice")
	}
	// Restarted on the new checkpoint, the watcher follows the new
	// branch; a deposit there is seen and kept, not credited, while
	// deposits are halted.
	d3 := e.watcher(1)
	e.step(d3)
	if _, err := e.node.SendTo(ctx, map[string]btcutil.Amount{e.addr: 5_000_000}); err != nil {
		t.Fatal(err)
	}
	e.node.Generate(ctx, 2)
	e.step(d3)
	if p := d3.Pending(); len(p) != 1 || p[0].Amount != 5_000_000 {
		var deps []custody.Deposit
		e.core.Read(func(s *core.State) {
			s.Custody.Deposits(func(d *custody.Deposit) bool { deps = append(deps, *d); return true })
		})
		t.Fatalf("pending after the recovery: %+v; want the new deposit kept (balance %d, deposits %+v)", p, e.balance(), deps)
	}
	if got := e.balance(); got != 10_000_000 {
		t.Fatalf("balance with deposits halted = %d; want 10,000,000", got)
	}
	var after core.WatchCheckpoint
	e.core.Read(func(s *core.State) {
		after = s.Checkpoints[btcAsset]
		if err := s.CheckInvariants(); err != nil {
			t.Error(err)
		}
	})
	if _, tip, _ := e.node.Client().BestBlock(ctx); after.Height != tip {
		t.Fatalf("the restarted watcher's checkpoint at %d; tip %d", after.Height, tip)
	}
}
