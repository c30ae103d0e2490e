package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
)

// TestReadinessNodeBehind: a node cut off from the network stops moving
// while its watcher keeps journaling checkpoints at its tip; readiness
// says so once the tip has stayed put longer than the node age allowed,
// and is ready again when the tip moves. The watcher's own age and
// distance from the tip are checked beside it.
func TestReadinessNodeBehind(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c, err := core.Open(ctx, core.Config{Dir: dir, CheckInvariants: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	foundCrew(t, c, t.TempDir())
	if o, err := c.Submit(ctx, time.Now(), core.CreateAssets{Assets: []ledger.Asset{{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}}); err != nil || o.Err != nil {
		t.Fatal(err, o.Err)
	}
	registerWallets(t, c, custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: 2, Descriptor: "cold", Owner: ledger.OwnerHouseMin + 100})

	r := newReadiness(c, dir, nil, time.Hour, 6, 2*time.Hour)
	now := time.Now()
	checkpoint := func(at time.Time, height, tip int32) {
		r.audit(core.AuditRecord{Time: at.UnixNano(), Kind: core.KindWatchCheckpoint, Command: core.WatchCheckpoint{Asset: 2, Height: height, Tip: tip}})
	}
	reasons := func() string { return strings.Join(r.reasons(), "; ") }

	// The tip 800 reported for three hours, the watcher keeping up.
	checkpoint(now.Add(-3*time.Hour), 800, 800)
	checkpoint(now.Add(-90*time.Minute), 800, 800)
	checkpoint(now.Add(-time.Minute), 800, 800)
	if got := reasons(); !strings.Contains(got, "node: the BTC node's tip has stayed at 800 for 3h0m0s (more than 2h0m0s)") {
		t.Fatalf("a node stuck for 3 h: reasons %q", got)
	}
	if l := r.lags(); len(l) != 1 || l[0].TipAge < 3*time.Hour || l[0].Age > 2*time.Minute {
		t.Fatalf("lags %+v", l)
	}
	// The tip moves: ready.
	checkpoint(now, 801, 801)
	if got := reasons(); got != "" {
		t.Fatalf("after the tip moved: reasons %q", got)
	}
	// The watcher falls behind a moving node: its distance is the reason,
	// not the node.
	checkpoint(now, 801, 810)
	if got := reasons(); !strings.Contains(got, "9 blocks behind the node's tip 810") || strings.Contains(got, "node:") {
		t.Fatalf("watcher 9 blocks behind: reasons %q", got)
	}
	// Not checked when the node age is 0.
	r0 := newReadiness(c, dir, nil, 0, -1, 0)
	checkpoint0 := func(at time.Time) {
		r0.audit(core.AuditRecord{Time: at.UnixNano(), Kind: core.KindWatchCheckpoint, Command: core.WatchCheckpoint{Asset: 2, Height: 800, Tip: 800}})
	}
	checkpoint0(now.Add(-10 * time.Hour))
	checkpoint0(now)
	if got := r0.reasons(); len(got) != 0 {
		t.Fatalf("node age not checked: reasons %q", got)
	}
}
