package itest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kinko/internal/api"
	"kinko/internal/chain/btc/regtest"
)

// TestWatcherRecoversFromDeepReorg: the watcher, its own process, is down
// while its node reorganises below every block the watcher journaled
// (its window: the confirmations and 16). A customer's deposit was
// credited on the branch that lost. Started again, the watcher cannot
// unwind that far: it halts BTC deposits and follows no further. kinko
// watch recover-reorg, run beside it with the watcher's tokens, prints
// the deposit whose block left and, with --yes, reverses it and
// journals a checkpoint on the best chain; the watcher restarted from it
// follows the new branch (the deposit both branches hold stays credited
// and counts its confirmations on the new chain again), and deposits stay
// halted for two operators to lift.
func TestWatcherRecoversFromDeepReorg(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	d := Deploy(t, Options{})
	c, err := d.NewCustomer(ctx, "yui@example.jp")
	if err != nil {
		t.Fatal(err)
	}
	both, err := d.Fund(ctx, c, 10_000_000)
	if err != nil {
		t.Fatal(err)
	}
	// A second node shares the chain so far, then parts: it mines the
	// branch that will win.
	other := regtest.New(t, regtest.Options{MatureBlocks: -1})
	if err := other.Connect(ctx, d.Node); err != nil {
		t.Fatal(err)
	}
	if err := regtest.WaitSynced(ctx, d.Node, other); err != nil {
		t.Fatal(err)
	}
	d.Node.Disconnect(ctx)
	other.Disconnect(ctx)
	lost, err := d.Fund(ctx, c, 30_000_000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Chain.Mine(ctx, 25); err != nil {
		t.Fatal(err)
	}
	_, tip, err := d.Node.Client().BestBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The watcher has journaled the tip: the deposit is below its window.
	if err := d.wait(ctx, "the watcher at the tip", func() (bool, error) {
		dep, err := depositOf(ctx, c, lost.String())
		return err == nil && dep.Height+dep.Confirmations-1 == tip, err
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.Watcher.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Generate(ctx, 40); err != nil {
		t.Fatal(err)
	}
	if err := other.Connect(ctx, d.Node); err != nil {
		t.Fatal(err)
	}
	if err := regtest.WaitSynced(ctx, d.Node, other); err != nil {
		t.Fatal(err)
	}

	// Started again, it halts deposits and says why.
	if err := d.Watcher.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.wait(ctx, "BTC deposits halted for the deep reorg", func() (bool, error) {
		st, err := d.Operator.Status(ctx)
		if err != nil {
			return false, err
		}
		for _, h := range st.Halts {
			if h.Asset == "BTC" && h.Switch == "deposit" && strings.Contains(h.Reason, "reorg deeper") {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, d.Watcher.LogTail(3000))
	}

	args := append([]string{"watch", "recover-reorg", "--core", d.CoreURL, "--stream-token-file", filepath.Join(d.WatcherDir, "stream.token"),
		"--watcher-token-file", filepath.Join(d.WatcherDir, "watcher.token"), "--state", filepath.Join(d.WatcherDir, "recover-state"), "--actor", "aiko"}, d.nodeArgs()...)
	out, err := d.Kinko(ctx, d.WatcherDir, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kinko watch recover-reorg:\n%s", out)
	for _, want := range []string{"is not on the node's best chain", "1 credited deposit(s) whose blocks left the best chain, 0.3 BTC", lost.String(), "nothing journaled"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the recovery's plan lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, both.String()) {
		t.Fatalf("the plan reverses the deposit both branches hold:\n%s", out)
	}
	if dep, err := depositOf(ctx, c, lost.String()); err != nil || dep.State != "credited" {
		t.Fatalf("the lost deposit after the plan alone: %+v, %v; want still credited", dep, err)
	}
	out, err = d.Kinko(ctx, d.WatcherDir, append(args, "--yes")...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "journaled: 1 deposit(s) reversed") {
		t.Fatalf("recover-reorg --yes:\n%s", out)
	}
	if dep, err := depositOf(ctx, c, lost.String()); err != nil || dep.State != "reversed" {
		t.Fatalf("the lost deposit after the recovery: %+v, %v; want reversed", dep, err)
	}
	if v, err := c.Available(ctx); err != nil || v != 10_000_000 {
		t.Fatalf("available after the recovery: %d, %v; want 10,000,000", v, err)
	}
	if out, err := d.Kinko(ctx, d.WatcherDir, append(args, "--yes")...); err == nil {
		t.Fatalf("a second recovery journaled:\n%s", out)
	}

	// Restarted on the new checkpoint, it follows the new branch.
	if err := d.Watcher.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Generate(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := regtest.WaitSynced(ctx, d.Node, other); err != nil {
		t.Fatal(err)
	}
	_, tip, err = d.Node.Client().BestBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.wait(ctx, fmt.Sprintf("the restarted watcher at the new tip %d", tip), func() (bool, error) {
		dep, err := depositOf(ctx, c, both.String())
		return err == nil && dep.State == "credited" && dep.Height+dep.Confirmations-1 == tip, err
	}); err != nil {
		t.Fatalf("%v\n%s", err, d.Watcher.LogTail(3000))
	}
	st, err := d.Operator.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	halted := false
	for _, h := range st.Halts {
		halted = halted || (h.Asset == "BTC" && h.Switch == "deposit")
	}
	if !halted {
		t.Fatal("BTC deposits resumed with nobody's approval")
	}
	if err := d.Check(); err != nil {
		t.Fatal(err)
	}
}

// depositOf returns the customer's deposit of outpoint op, an error if
// there is none.
func depositOf(ctx context.Context, c *Customer, op string) (api.DepositView, error) {
	dep, found, err := c.Deposit(ctx, op)
	if err == nil && !found {
		err = fmt.Errorf("itest: no deposit %s", op)
	}
	return dep, err
}
