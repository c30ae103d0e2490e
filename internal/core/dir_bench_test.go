package core

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"kinko/internal/journal"
	"kinko/internal/ledger"
)

// benchDir is a data directory named by KINKO_BENCH_DIR (a copy of one a
// drill made: `kinko drill coincheck --customers 1700000 --data D`, then
// D/core); benchmarks that need it skip without it, so `make test` never
// builds large journals.
func benchDir(b *testing.B) string {
	d := os.Getenv("KINKO_BENCH_DIR")
	if d == "" {
		b.Skip("KINKO_BENCH_DIR is not set")
	}
	return d
}

// benchAt is the entry KINKO_BENCH_AT names (default: the head).
func benchAt(b *testing.B, j *journal.Journal) uint64 {
	head, _, _ := j.Head()
	if s := os.Getenv("KINKO_BENCH_AT"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	return head
}

// BenchmarkStateAtDir rebuilds the state at KINKO_BENCH_AT in the data
// directory KINKO_BENCH_DIR and takes the holdings of asset 2 (BTC in a
// drill's exchange): what `kinko holdings` does before it writes.
func BenchmarkStateAtDir(b *testing.B) {
	dir := benchDir(b)
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	at := benchAt(b, j)
	holders := 0
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		st, err := StateAt(context.Background(), dir, j, at)
		if err != nil {
			b.Fatal(err)
		}
		holders = len(st.Holdings(2))
	}
	b.ReportMetric(float64(holders), "holders")
}

// BenchmarkOpenDir starts a core on a copy of a data directory named by
// KINKO_BENCH_DIR (it writes there: use a copy) and reports the time to
// serve (ms/start: the newest snapshot and the tail, whose length is
// tail-entries) and, apart, the background verification of the whole
// journal (verify-ms). Every start is the same one: the snapshot each
// close writes is removed after it, as if the core had been killed
// (a copy with its newest snapshots removed is a start after a crash
// there).
func BenchmarkOpenDir(b *testing.B) {
	dir := benchDir(b)
	ctx := context.Background()
	var verify time.Duration
	var tail uint64
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		before := snapshotSet(b, dir)
		var log strings.Builder
		c, err := Open(ctx, Config{Dir: dir, Logger: startLogger(&log)})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.Log(startLine(&log))
		head, _, _ := c.Journal().Head()
		tail = head - c.lastSnap
		t := time.Now()
		if err := c.Verified(ctx); err != nil {
			b.Fatal(err)
		}
		verify += time.Since(t)
		c.Close()
		removeSnapshotsBut(b, dir, before)
		runtime.GC()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/start")
	b.ReportMetric(float64(verify.Milliseconds())/float64(b.N), "verify-ms")
	b.ReportMetric(float64(tail), "tail-entries")
}

// startLogger logs a core's start to w (the phases "core started"
// names).
func startLogger(w *strings.Builder) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// startLine is the "core started" line of a start's log.
func startLine(w *strings.Builder) string {
	for _, l := range strings.Split(w.String(), "\n") {
		if strings.Contains(l, "core started") {
			_, rest, _ := strings.Cut(l, "seq=")
			return "seq=" + rest
		}
	}
	return "no \"core started\" logged"
}

// snapshotSet is the set of snapshot files in dir.
func snapshotSet(b *testing.B, dir string) map[snapshotFile]bool {
	fs, err := snapshotFiles(dir)
	if err != nil {
		b.Fatal(err)
	}
	set := make(map[snapshotFile]bool, len(fs))
	for _, f := range fs {
		set[f] = true
	}
	return set
}

// removeSnapshotsBut removes the snapshots in dir that are not in keep:
// those a close wrote, so that the next start is the one after a crash.
func removeSnapshotsBut(b *testing.B, dir string, keep map[snapshotFile]bool) {
	fs, err := snapshotFiles(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range fs {
		if !keep[f] {
			if err := os.Remove(f.path(dir)); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// envInt is the integer environment variable name, or def.
func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		b.Fatalf("%s=%q: a positive integer", name, s)
	}
	return v
}

// appendTransfers appends n one-transfer entries between random accounts
// straight to the journal in dir (batches of 4,096, no fsync), ids
// ascending from first.
func appendTransfers(b *testing.B, dir string, keys []ledger.AccountKey, n int, first uint64) {
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	rng := rand.New(rand.NewPCG(first, 5))
	seq, prev, t := j.Head()
	id := first
	for done := 0; done < n; {
		bt := j.NewBatch()
		for k := 0; k < 4096 && done < n; k++ {
			d := rng.IntN(len(keys))
			cr := (d + 1 + rng.IntN(len(keys)-1)) % len(keys)
			p := CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 3, Lo: id}, Debit: keys[d], Credit: keys[cr], Amount: ledger.AmountOf(uint64(rng.IntN(1000) + 1)), Code: 7}}}.AppendPayload(nil)
			seq++
			e, err := bt.Add(prev, seq, t, uint16(KindCreateTransfers), p)
			if err != nil {
				b.Fatal(err)
			}
			prev = e.Hash
			id++
			done++
		}
		if err := j.Commit(bt); err != nil {
			b.Fatal(err)
		}
		bt.Close()
	}
}

// BenchmarkStartFromSnapshot builds a journal of KINKO_START_ENTRIES
// one-transfer entries (default 200,000; the size is 10,000,000)
// among 100,000 accounts, a snapshot at all but the newest
// KINKO_START_TAIL entries (default 1% of them), and measures a start
// after a crash at the head: the snapshot loaded, the tail replayed
// (ms/start; the snapshot each close writes is removed); the background
// verification of the whole journal is reported apart (verify-ms, and its
// rate, verify-entries/s).
func BenchmarkStartFromSnapshot(b *testing.B) {
	n := envInt(b, "KINKO_START_ENTRIES", 200_000)
	tail := envInt(b, "KINKO_START_TAIL", max(n/100, 1))
	dir := b.TempDir()
	c, keys := benchSetup(b, dir, true, 0)
	c.Close()
	t := time.Now()
	appendTransfers(b, dir, keys, n-tail, 1)
	b.Logf("%d entries appended in %v", n-tail, time.Since(t))
	ctx := context.Background()
	t = time.Now()
	c, err := Open(ctx, Config{Dir: dir, NoSync: true, SnapshotEvery: 1 << 62, SnapshotBytes: 1 << 62, SnapshotApplyTime: 1 << 62})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("replayed in %v", time.Since(t))
	t = time.Now()
	if err := c.Snapshot(); err != nil {
		b.Fatal(err)
	}
	b.Logf("snapshot written in %v", time.Since(t))
	at, _ := c.StateHash()
	c.Close()
	appendTransfers(b, dir, keys, tail, uint64(n))
	head := uint64(0)
	var verify time.Duration
	keep := snapshotSet(b, dir)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var log strings.Builder
		c, err := Open(ctx, Config{Dir: dir, SnapshotEvery: 1 << 62, SnapshotBytes: 1 << 62, SnapshotApplyTime: 1 << 62, Logger: startLogger(&log)})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.Log(startLine(&log))
		if c.lastSnap != at {
			c.Close()
			b.Fatalf("the start began at %d, not at the snapshot at %d", c.lastSnap, at)
		}
		head, _, _ = c.Journal().Head()
		vt := time.Now()
		if err := c.Verified(ctx); err != nil {
			b.Fatal(err)
		}
		verify += time.Since(vt)
		c.Close()
		// The close's snapshot removed: every start replays the tail,
		// as after a crash at the head.
		removeSnapshotsBut(b, dir, keep)
		runtime.GC()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/start")
	b.ReportMetric(float64(verify.Milliseconds())/float64(b.N), "verify-ms")
	b.ReportMetric(float64(head)/(verify.Seconds()/float64(b.N)), "verify-entries/s")
}
