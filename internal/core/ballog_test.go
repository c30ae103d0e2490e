package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"kinko/internal/compensation"
	"kinko/internal/journal"
)

// holdingsCodes are the asset codes the checks ask for: the simulation's,
// one it registers only sometimes, and one it never does.
var holdingsCodes = []string{"BTC", "JPY", "ETH", "XEM", "NOPE"}

// sameHoldings compares holdings from the balance log with the holdings
// query over the state a full replay rebuilds at the same entry.
func sameHoldings(t *testing.T, what string, got IndexedHoldings, gotErr error, want IndexedHoldings, wantErr error) {
	t.Helper()
	if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && errors.Is(gotErr, ErrAssetUnknown) != errors.Is(wantErr, ErrAssetUnknown)) {
		t.Fatalf("%s: error %v; the replay's %v", what, gotErr, wantErr)
	}
	if gotErr != nil {
		return
	}
	norm := func(h []compensation.Holding) []compensation.Holding {
		if len(h) == 0 {
			return nil
		}
		return h
	}
	if got.Asset != want.Asset || got.Seq != want.Seq || got.Time != want.Time || !reflect.DeepEqual(norm(got.Holdings), norm(want.Holdings)) {
		t.Fatalf("%s: from the log %v at %d (time %d), %d holders %v\nthe replay's %v at %d (time %d), %d holders %v",
			what, got.Asset, got.Seq, got.Time, len(got.Holdings), head(got.Holdings), want.Asset, want.Seq, want.Time, len(want.Holdings), head(want.Holdings))
	}
}

func head(h []compensation.Holding) []compensation.Holding { return h[:min(len(h), 8)] }

// checkHoldings compares, at n random entries (and the first and last),
// holdings of every code from ask with a full replay's. With mustIndex the
// balance log must have answered every one.
func checkHoldings(t *testing.T, rng *rand.Rand, dir string, j *journal.Journal, n int, mustIndex bool, ask func(code string, seq uint64) (IndexedHoldings, error)) (fromIndex int) {
	t.Helper()
	hd, _, _ := j.Head()
	seqs := []uint64{0, hd}
	for range n {
		seqs = append(seqs, rng.Uint64N(hd+1))
	}
	for _, seq := range seqs {
		for _, code := range holdingsCodes {
			got, err := ask(code, seq)
			want, werr := holdingsByReplay(context.Background(), dir, nil, j, code, seq)
			sameHoldings(t, fmt.Sprintf("%s at %d", code, seq), got, err, want, werr)
			if err == nil && got.FromIndex {
				fromIndex++
			} else if err == nil && mustIndex {
				_, why := holdingsFromLog(dir, balanceAEAD(readKey(dir)), j, code, seq)
				t.Fatalf("%s at %d: answered by replay (%v); the balance log should cover it", code, seq, why)
			}
		}
	}
	return fromIndex
}

// simCore runs the seeded simulation's stream through a core in dir.
func simCore(t *testing.T, dir string, seed uint64, steps int) {
	t.Helper()
	c, err := Open(context.Background(), Config{Dir: dir, NoSync: true, SnapshotEvery: 150})
	if err != nil {
		t.Fatal(err)
	}
	s := newSim(seed)
	cmds := s.setup()
	for range steps {
		cmds = append(cmds, s.next())
	}
	for i, cmd := range cmds {
		c.Submit(context.Background(), t0.Add(time.Duration(i)*time.Millisecond), cmd) // invalid ones are refused: part of the stream
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func withCheckpointsEvery(t *testing.T, n uint64) {
	old, oldF, oldI := ckptRecords, ckptFraction, ckptInline
	ckptRecords, ckptFraction, ckptInline = n, 1<<62, true
	t.Cleanup(func() { ckptRecords, ckptFraction, ckptInline = old, oldF, oldI })
}

func openCoreT(t *testing.T, dir string) *Core {
	t.Helper()
	c, err := Open(context.Background(), Config{Dir: dir, NoSync: true, SnapshotEvery: 150})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.balanceLogReady():
	case <-time.After(2 * time.Minute):
		t.Fatal("the balance log was not rebuilt")
	}
	return c
}

// TestBalanceLogHoldings checks holdings from the balance log against a
// full replay's on the seeded simulation's random streams, at random
// moments: as written, after a restart, after the log's tail is torn,
// after a byte of it is changed, and with the log removed.
func TestBalanceLogHoldings(t *testing.T) {
	steps, every := 1500, uint64(40)
	if testing.Short() {
		steps, every = 400, 12
	}
	for _, seed := range simSeeds(t, 3) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			withCheckpointsEvery(t, every)
			dir := t.TempDir()
			rng := rand.New(rand.NewPCG(seed, 77))
			simCore(t, dir, seed, steps)
			if cks := ckptSeqs(dir); len(cks) < 3 {
				t.Fatalf("%d checkpoints: the test would not read past one", len(cks))
			}
			live := func(c *Core) func(string, uint64) (IndexedHoldings, error) {
				return func(code string, seq uint64) (IndexedHoldings, error) {
					return c.HoldingsAt(context.Background(), code, seq)
				}
			}
			stopped := func(j *journal.Journal) func(string, uint64) (IndexedHoldings, error) {
				return func(code string, seq uint64) (IndexedHoldings, error) {
					return HoldingsAt(context.Background(), dir, j, code, seq)
				}
			}
			// A restarted core: the log as it was written.
			c := openCoreT(t, dir)
			checkHoldings(t, rng, dir, c.Journal(), 30, true, live(c))
			c.Close()

			logPath := filepath.Join(balDir(dir), balLogName)
			// A torn tail (a crash in the middle of a write): cut into
			// the last chunks, and leave garbage after.
			fi, err := os.Stat(logPath)
			if err != nil {
				t.Fatal(err)
			}
			cut := fi.Size() - 1 - rng.Int64N(min(fi.Size()-1, 4096))
			if err := os.Truncate(logPath, cut); err != nil {
				t.Fatal(err)
			}
			f, _ := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
			f.Write([]byte("torn write"))
			f.Close()
			j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			// Stopped, on the torn log: what the log has, else replay.
			checkHoldings(t, rng, dir, j, 20, false, stopped(j))
			j.Close()
			// The start cuts the tail and rebuilds what is missing.
			c = openCoreT(t, dir)
			checkHoldings(t, rng, dir, c.Journal(), 20, true, live(c))
			c.Close()

			// One byte changed (an attacker without the key, or rot):
			// never a wrong answer.
			b, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatal(err)
			}
			at := rng.IntN(len(b))
			b[at] ^= 1 << rng.IntN(8)
			if err := os.WriteFile(logPath, b, 0o600); err != nil {
				t.Fatal(err)
			}
			j, err = journal.Open(filepath.Join(dir, "journal"), journal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			n := checkHoldings(t, rng, dir, j, 30, false, stopped(j))
			t.Logf("byte %d of %d changed: %d answers still from the log", at, len(b), n)
			j.Close()
			// A changed checkpoint is passed over too.
			cks := ckptSeqs(dir)
			part := filepath.Join(balDir(dir), ckptPartName(cks[len(cks)/2], 1))
			if pb, err := os.ReadFile(part); err == nil && len(pb) > balPartHdr+balTagSize {
				pb[balPartHdr] ^= 1
				os.WriteFile(part, pb, 0o600)
			}
			j, err = journal.Open(filepath.Join(dir, "journal"), journal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkHoldings(t, rng, dir, j, 30, false, stopped(j))
			j.Close()

			// No log at all: rebuilt from the journal at start.
			if err := os.RemoveAll(balDir(dir)); err != nil {
				t.Fatal(err)
			}
			c = openCoreT(t, dir)
			checkHoldings(t, rng, dir, c.Journal(), 30, true, live(c))
			c.Close()
			// Without the head key the log is not trusted: replay.
			j, err = journal.Open(filepath.Join(dir, "journal"), journal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			if n := checkHoldings(t, rng, dir, j, 5, false, func(code string, seq uint64) (IndexedHoldings, error) {
				return holdingsAt(context.Background(), dir, nil, nil, j, code, seq)
			}); n != 0 {
				t.Fatalf("%d answers from the log without the key", n)
			}
		})
	}
}

// TestBalanceLogHoldingsTrading: the balance log follows trading too
// (holds, fills, fees, releases, replaces through the hinted ledger path):
// holdings from the log equal a full replay's at random moments of the
// trading mix run through a core.
func TestBalanceLogHoldingsTrading(t *testing.T) {
	ops, moments := 6000, 25
	if testing.Short() {
		// Still over three checkpoints.
		ops, moments = 1300, 6
	}
	withCheckpointsEvery(t, 400)
	dir := t.TempDir()
	c, err := Open(context.Background(), Config{Dir: dir, NoSync: true, SnapshotEvery: 1000})
	if err != nil {
		t.Fatal(err)
	}
	src, g := newBenchTrading(t, 0)
	for i := range src.entries {
		if _, err := c.SubmitRaw(context.Background(), src.entries[i].Time, Kind(src.entries[i].Kind), src.entries[i].Payload); err != nil {
			t.Fatal(err)
		}
	}
	for range ops {
		cmd := g.next()
		_, v, _ := src.st.applyTrading(cmd, src.now)
		g.note(v)
		if _, err := c.SubmitRaw(context.Background(), src.now, cmd.Kind(), cmd.AppendPayload(nil)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if cks := ckptSeqs(dir); len(cks) < 3 {
		t.Fatalf("%d checkpoints: the test would not read past one", len(cks))
	}
	c = openCoreT(t, dir)
	defer c.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	if n := checkHoldings(t, rng, dir, c.Journal(), moments, true, func(code string, seq uint64) (IndexedHoldings, error) {
		return c.HoldingsAt(context.Background(), code, seq)
	}); n == 0 {
		t.Fatal("no answer came from the balance log")
	}
}

// TestBalanceLogReachesSnapshots checks that once a snapshot is in place
// the balance log on disk reaches its entry, and that a start after a
// crash just then (the log as it was on disk, no later snapshot) begins
// at that snapshot and appends to the log, instead of rebuilding it from
// the journal's first entry, with holdings from the log equal to a full
// replay's.
func TestBalanceLogReachesSnapshots(t *testing.T) {
	ctx := context.Background()
	withCheckpointsEvery(t, 40)
	dir := t.TempDir()
	c, err := Open(ctx, Config{Dir: dir, NoSync: true, SnapshotEvery: 37})
	if err != nil {
		t.Fatal(err)
	}
	type cut struct {
		seq  uint64
		size int64
	}
	var cuts []cut
	snapshotWritten = func(seq uint64) {
		f, err := os.Open(filepath.Join(balDir(dir), balLogName))
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		r := &balReader{f: f, aead: c.baead}
		for err == nil {
			_, err = r.next()
		}
		if err != io.EOF || r.lastSeq < seq {
			t.Errorf("snapshot at %d: the balance log on disk ends at %d (%v)", seq, r.lastSeq, err)
		}
		cuts = append(cuts, cut{seq, r.off})
	}
	t.Cleanup(func() { snapshotWritten = nil })
	s := newSim(5)
	cmds := s.setup()
	for range 600 {
		cmds = append(cmds, s.next())
	}
	for i, cmd := range cmds {
		c.Submit(ctx, t0.Add(time.Duration(i)*time.Millisecond), cmd) // invalid ones are refused: part of the stream
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	snapshotWritten = nil
	if len(cuts) < 4 {
		t.Fatalf("%d snapshots: too few to crash after one", len(cuts))
	}
	// The crash: just after a snapshot before the last ones (and still
	// kept). The journal holds more (the committer had made later
	// batches durable).
	fs, err := snapshotFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	kept := map[uint64]bool{}
	for _, f := range fs {
		kept[f.seq] = true
	}
	var k cut
	for i := len(cuts) - 3; i >= 0 && k.seq == 0; i-- {
		if kept[cuts[i].seq] {
			k = cuts[i]
		}
	}
	if k.seq == 0 {
		t.Fatal("no snapshot kept before the last ones")
	}
	for _, f := range fs {
		if f.seq > k.seq {
			if err := os.Remove(f.path(dir)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Truncate(filepath.Join(balDir(dir), balLogName), k.size); err != nil {
		t.Fatal(err)
	}
	c, err = Open(ctx, Config{Dir: dir, NoSync: true, SnapshotEvery: 37})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.mu.RLock()
	from, live := c.lastSnap, c.blog != nil
	c.mu.RUnlock()
	if from != k.seq {
		t.Fatalf("the start began at %d, not at the snapshot at %d", from, k.seq)
	}
	if !live {
		t.Fatalf("the start after a crash just after the snapshot at %d rebuilds the balance log from the first entry", k.seq)
	}
	n := checkHoldings(t, rand.New(rand.NewPCG(5, 9)), dir, c.Journal(), 12, true, func(code string, seq uint64) (IndexedHoldings, error) {
		return c.HoldingsAt(ctx, code, seq)
	})
	if n == 0 {
		t.Fatal("no holdings came from the balance log")
	}
}

// TestBalanceLogStartRecord checks the start record: a stop leaves one at
// the log's end that holds; a last chunk changed under it (a torn write
// that left the log as long, or an attacker without the key) makes the
// start pass it over and check the log from the newest checkpoint as
// before, cutting the bad chunk off, with holdings from the log equal to a
// full replay's after that start.
func TestBalanceLogStartRecord(t *testing.T) {
	withCheckpointsEvery(t, 40)
	dir := t.TempDir()
	simCore(t, dir, 11, 500)
	logPath := filepath.Join(balDir(dir), balLogName)
	record := func() (startRecord, bool, int64) {
		t.Helper()
		j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		f, err := os.Open(logPath)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		head, _, _ := j.Head()
		sr, ok := readStartRecord(dir, balanceAEAD(readKey(dir)), f, j, head, fi.Size())
		return sr, ok, fi.Size()
	}
	sr, ok, size := record()
	if !ok || sr.off != size {
		t.Fatalf("after a stop: start record %+v (holds: %v), the log %d bytes", sr, ok, size)
	}
	if cks := ckptSeqs(dir); len(cks) == 0 || cks[0] >= sr.seq {
		t.Fatalf("checkpoints %v: the record at %d would not be further on than the newest", cks, sr.seq)
	}
	// The last chunk's last bytes changed, the log as long.
	f, err := os.OpenFile(logPath, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("torn write"), size-10); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if sr, ok, _ := record(); ok {
		t.Fatalf("the record %+v holds over a changed chunk", sr)
	}
	c := openCoreT(t, dir)
	defer c.Close()
	c.mu.RLock()
	end := c.blog.off
	c.mu.RUnlock()
	if end == size {
		t.Fatal("the start kept the changed chunk")
	}
	checkHoldings(t, rand.New(rand.NewPCG(11, 3)), dir, c.Journal(), 30, true, func(code string, seq uint64) (IndexedHoldings, error) {
		return c.HoldingsAt(context.Background(), code, seq)
	})
}
