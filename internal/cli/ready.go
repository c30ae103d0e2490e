package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/metrics"
	"kinko/internal/witness"
)

// Defaults of the core's readiness.
const (
	// DefaultReadyWatcherAge is how old the watcher's last journaled
	// checkpoint may be (it journals one at least every
	// watch.DefaultCheckpointEvery).
	DefaultReadyWatcherAge = 10 * time.Minute
	// DefaultReadyBlocks is how far the watcher's checkpoint may be
	// behind the node's tip it reported.
	DefaultReadyBlocks = 6
	// probeEvery is how often the data directory is written to check it.
	probeEvery = 5 * time.Second
)

// readiness says why a core is not ready to serve (GET /readyz, the
// kinko_ready metric): the journal cannot be written (the core failed
// closed, or a file cannot be written and synced in its data directory),
// a witness contradicts the journal, or the watcher of an asset with
// registered wallets is behind: its last journaled checkpoint older than
// maxAge, or more than maxBlocks below the node's tip it reported.
type readiness struct {
	c       *core.Core
	dir     string
	checker *witness.Checker // nil without witnesses
	started time.Time
	maxAge  time.Duration // 0: not checked
	blocks  int32         // <0: not checked

	mu     sync.Mutex
	seen   map[ledger.AssetID]seenCheckpoint // journaled since the start
	probed time.Time
	probe  error
}

// seenCheckpoint is a watch checkpoint the core applied.
type seenCheckpoint struct {
	at          time.Time
	height, tip int32
}

func newReadiness(c *core.Core, dir string, checker *witness.Checker, maxAge time.Duration, blocks int32) *readiness {
	return &readiness{c: c, dir: dir, checker: checker, started: time.Now(), maxAge: maxAge, blocks: blocks, seen: map[ledger.AssetID]seenCheckpoint{}}
}

// audit takes the audit records: a checkpoint that applied is where its
// watcher stands.
func (r *readiness) audit(rec core.AuditRecord) {
	cp, ok := rec.Command.(core.WatchCheckpoint)
	if !ok || rec.Err != nil {
		return
	}
	r.mu.Lock()
	r.seen[cp.Asset] = seenCheckpoint{at: time.Unix(0, rec.Time), height: cp.Height, tip: cp.Tip}
	r.mu.Unlock()
}

// lags returns where each watched asset's watcher stands: every chain
// asset with a registered wallet.
func (r *readiness) lags() []metrics.WatcherLag {
	type watched struct {
		id     ledger.AssetID
		code   string
		height int32
		tip    int32
	}
	var ws []watched
	r.c.Read(func(st *core.State) {
		seen := map[ledger.AssetID]bool{}
		for _, w := range st.Custody.Wallets() {
			a, ok := st.Ledger.Asset(w.Asset)
			if !ok || a.Class != ledger.ClassChain || seen[w.Asset] {
				continue
			}
			seen[w.Asset] = true
			cp := st.Checkpoints[w.Asset]
			ws = append(ws, watched{id: w.Asset, code: a.Code, height: cp.Height, tip: cp.Tip})
		}
	})
	sort.Slice(ws, func(i, j int) bool { return ws[i].id < ws[j].id })
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]metrics.WatcherLag, 0, len(ws))
	for _, w := range ws {
		l := metrics.WatcherLag{Asset: w.code, Height: w.height, Tip: w.tip, Age: now.Sub(r.started)}
		if s, ok := r.seen[w.id]; ok {
			l.Age = now.Sub(s.at)
		}
		out = append(out, l)
	}
	return out
}

// reasons says why the core is not ready; none when it is.
func (r *readiness) reasons() []string {
	var out []string
	if err := r.c.Err(); err != nil {
		out = append(out, "journal: "+err.Error())
	} else if err := r.writable(); err != nil {
		out = append(out, "journal: the data directory cannot be written: "+err.Error())
	}
	if r.checker != nil {
		if ref := r.checker.Refusal(); ref != nil {
			out = append(out, "witness: "+ref.Error())
		}
	}
	for _, l := range r.lags() {
		if r.maxAge > 0 && l.Age > r.maxAge {
			out = append(out, fmt.Sprintf("watcher: no %s checkpoint journaled for %v (more than %v)", l.Asset, l.Age.Round(100*time.Millisecond), r.maxAge))
		}
		if r.blocks >= 0 && l.Tip-l.Height > r.blocks {
			out = append(out, fmt.Sprintf("watcher: %s checkpoint at %d, %d blocks behind the node's tip %d (more than %d)", l.Asset, l.Height, l.Tip-l.Height, l.Tip, r.blocks))
		}
	}
	return out
}

// writable writes, syncs and removes a small file in the data directory,
// at most every probeEvery: a full or read-only disk shows here before
// the next command fails.
func (r *readiness) writable() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.probed) < probeEvery && !r.probed.IsZero() {
		return r.probe
	}
	r.probed = time.Now()
	path := filepath.Join(r.dir, ".readyz-probe")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err == nil {
		_, err = f.Write([]byte("kinko readiness probe\n"))
		if serr := f.Sync(); err == nil {
			err = serr
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if rerr := os.Remove(path); err == nil {
			err = rerr
		}
	}
	r.probe = err
	return err
}
