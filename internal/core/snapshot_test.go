package core

import (
	"context"
	"crypto/sha256"
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
	"kinko/internal/controls"
	"kinko/internal/journal"
	"kinko/internal/journal/journaltest"
	"kinko/internal/journal/tree"
	"kinko/internal/ledger"
)

var testSnapKey = func() []byte { k := sha256.Sum256([]byte("test snapshot key")); return k[:] }()

// holdingsOf returns every asset's holdings in st.
func holdingsOf(st *State) map[ledger.AssetID]any {
	out := map[ledger.AssetID]any{}
	for _, a := range st.Ledger.Assets() {
		out[a.ID] = st.Holdings(a.ID)
	}
	return out
}

// holdingsByLookup is Holdings as it was first written: two account
// look-ups per registered customer, in ascending order.
func holdingsByLookup(s *State, asset ledger.AssetID) []compensation.Holding {
	out := []compensation.Holding{}
	for _, c := range s.Ledger.Customers() {
		var h compensation.Holding
		if a, ok := s.Ledger.Account(avail(c, asset)); ok {
			h.Available, _ = a.Balance().Uint64()
		}
		if a, ok := s.Ledger.Account(held(c, asset)); ok {
			h.Held, _ = a.Balance().Uint64()
		}
		if h.Total = h.Available + h.Held; h.Total > 0 {
			h.Customer = c
			out = append(out, h)
		}
	}
	return out
}

// TestSnapshotSimulation: on the seeded simulation's random streams, a
// state written as a snapshot and read back is the same state, byte for
// byte (its hash); replaying the rest from it gives the same state and the
// same holdings of every asset at every entry as a replay from the first.
func TestSnapshotSimulation(t *testing.T) {
	const steps = 3000
	for _, seed := range simSeeds(t, 3) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			entries, st, _ := runSim(t, seed, steps, -1)
			dir := t.TempDir()
			full := NewState()
			var fromSnap *State
			rng := rand.New(rand.NewPCG(seed, 19))
			for i := range entries {
				full.Apply(&entries[i])
				if fromSnap != nil {
					fromSnap.Apply(&entries[i])
				}
				if i%500 == 250 {
					// A snapshot here, read back; the replay goes on from it.
					root := tree.Hash{byte(i)}
					if _, err := writeSnapshot(dir, testSnapKey, full, root, false); err != nil {
						t.Fatal(err)
					}
					back, gotRoot, err := readSnapshot(dir, testSnapKey, snapshotFile{seq: full.seq})
					if err != nil {
						t.Fatalf("entry %d: %v", i, err)
					}
					if gotRoot != root || back.Hash() != full.Hash() {
						t.Fatalf("entry %d: the snapshot read back is another state", i)
					}
					fromSnap = back
				}
				if fromSnap != nil && (rng.IntN(20) == 0 || i == len(entries)-1) {
					if a, b := holdingsOf(fromSnap), holdingsOf(full); !reflect.DeepEqual(a, b) {
						t.Fatalf("entry %d: holdings from the snapshot differ from the replay's", i)
					}
					for _, a := range full.Ledger.Assets() {
						if got, want := fromSnap.Holdings(a.ID), holdingsByLookup(full, a.ID); !reflect.DeepEqual(got, want) {
							t.Fatalf("entry %d: holdings of asset %d = %v; by look-ups %v", i, a.ID, got, want)
						}
					}
				}
			}
			if fromSnap.Hash() != st.Hash() || full.Hash() != st.Hash() {
				t.Fatal("replay from a snapshot ends in another state")
			}
		})
	}
}

// TestSnapshotTamperedPassedOver: a snapshot changed in any way (a byte of
// its header, of the ledger's arrays, of its tag), or written under another
// key (by someone without the head key: balances of their choosing, a
// valid layout), or read without the head key at all, is passed over and
// the state rebuilt from the journal: the same as a replay.
func TestSnapshotTamperedPassedOver(t *testing.T) {
	dir := t.TempDir()
	c := snapshotTen(t, dir)
	_, want := c.StateHash()
	head, _, _ := c.Journal().Head()
	c.Close()
	fs, _ := snapshotFiles(dir)
	if len(fs) != 1 || fs[0].seq != head {
		t.Fatalf("snapshots %v; want one at %d", fs, head)
	}
	p := fs[0].path(dir)
	orig, _ := os.ReadFile(p)
	key, err := snapshotKey("", dir)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := readSnapshot(dir, key, fs[0])
	if err != nil || st.Hash() != want {
		t.Fatalf("the untouched snapshot: %v", err)
	}
	// The forger's snapshot: customer 1 holds a million more, written
	// under a key of the forger's own, bound to the journal's entry and
	// root as a real one is.
	forged, root, err := readSnapshot(dir, key, fs[0])
	if err != nil {
		t.Fatal(err)
	}
	if res := forged.Ledger.CreateTransfers([]ledger.Transfer{deposit(999, 1, 1_000_000)}, 1, nil); len(res) != 0 {
		t.Fatal(res)
	}
	otherKey := sha256.Sum256([]byte("the forger's key"))
	r := root
	forgedDir := t.TempDir()
	if _, err := writeSnapshot(forgedDir, otherKey[:], forged, r, false); err != nil {
		t.Fatal(err)
	}
	forgedBytes, _ := os.ReadFile(snapshotFile{seq: head}.path(forgedDir))

	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"header byte", flip(orig, 30)},
		{"meta byte", flip(orig, 200)},
		{"array byte", flip(orig, len(orig)/2)},
		{"tag byte", flip(orig, len(orig)-3)},
		{"cut short", orig[:len(orig)-100]},
		{"written under another key", forgedBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(p, tc.b, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, _, err := readSnapshot(dir, key, fs[0]); !errors.Is(err, ErrSnapshotCorrupt) {
				t.Fatalf("readSnapshot = %v; want ErrSnapshotCorrupt", err)
			}
			c := openCore(t, dir, 1_000_000)
			defer c.Close()
			if _, got := c.StateHash(); got != want {
				t.Fatal("the core started from a tampered snapshot")
			}
			if err := c.Verified(context.Background()); err != nil {
				t.Fatal(err)
			}
			hs, err := c.StateAt(context.Background(), head)
			if err != nil || hs.Hash() != want {
				t.Fatalf("StateAt over a tampered snapshot: %v", err)
			}
		})
	}
	// Without the head key (a copy of the data directory), the good
	// snapshot is not trusted either: the journal is replayed.
	os.WriteFile(p, orig, 0o600)
	if _, _, err := readSnapshot(dir, nil, fs[0]); !errors.Is(err, errNoSnapshotKey) {
		t.Fatalf("readSnapshot without a key = %v", err)
	}
}

// snapshotTen opens a core in dir, journals ten deposits among four
// customers and takes a snapshot; the core is left open.
func snapshotTen(t *testing.T, dir string) *Core {
	t.Helper()
	c := openCore(t, dir, 1_000_000)
	setupXEM(t, c, 4)
	for i := uint64(1); i <= 10; i++ {
		submit(t, c, t0, CreateTransfers{Transfers: []ledger.Transfer{deposit(i, i%4+1, 100*i)}})
	}
	if err := c.Snapshot(); err != nil {
		t.Fatal(err)
	}
	return c
}

func flip(b []byte, i int) []byte {
	out := append([]byte(nil), b...)
	out[i] ^= 0x10
	return out
}

// TestHoldingsAtFromSnapshots: holdings at every entry, and at times
// between entries, from snapshots (every 5 entries, and before a halt)
// and the journal, before and after a restart, equal a replay's from the
// first entry.
func TestHoldingsAtFromSnapshots(t *testing.T) {
	defer func(v uint64) { incidentSnapBytes = v }(incidentSnapBytes)
	incidentSnapBytes = 0
	dir := t.TempDir()
	c, err := Open(context.Background(), Config{Dir: dir, SnapshotEvery: 5, SnapshotKeep: 100, CheckInvariants: true})
	if err != nil {
		t.Fatal(err)
	}
	setupXEM(t, c, 6)
	rng := rand.New(rand.NewPCG(19, 1))
	for i := uint64(1); i <= 40; i++ {
		if i == 23 {
			submit(t, c, t0.Add(time.Duration(i)*time.Minute), Halt{Switch: controls.Switch{Service: controls.Global}, Actor: "watcher", Reason: "theft"})
			continue
		}
		submit(t, c, t0.Add(time.Duration(i)*time.Minute), CreateTransfers{Transfers: []ledger.Transfer{deposit(i, uint64(rng.IntN(6)+1), uint64(rng.IntN(1000)+1))}})
	}
	head, _, _ := c.Journal().Head()
	fs, _ := snapshotFiles(dir)
	incident := false
	for _, f := range fs {
		if f.incident {
			incident = true
			if e, err := c.Journal().Get(f.seq + 1); err != nil || Kind(e.Kind) != KindHalt {
				t.Fatalf("incident snapshot at %d is not just before the halt", f.seq)
			}
		}
	}
	if !incident {
		t.Fatalf("no snapshot before the halt: %v", fs)
	}
	check := func(c *Core) {
		t.Helper()
		ctx := context.Background()
		for seq := uint64(1); seq <= head; seq++ {
			got, err := c.StateAt(ctx, seq)
			if err != nil {
				t.Fatal(err)
			}
			want, err := rebuild(ctx, dir, nil, c.Journal(), seq, true, c.log, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.Hash() != want.Hash() || !reflect.DeepEqual(holdingsOf(got), holdingsOf(want)) {
				t.Fatalf("state at %d from snapshots differs from the replay's", seq)
			}
		}
		// Between entries: half a minute after each.
		for i := 1; i <= 40; i++ {
			at := t0.Add(time.Duration(i)*time.Minute + 30*time.Second)
			got, err := c.StateAtTime(ctx, at, t0.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			seq, _ := c.Journal().SeqAtTime(at.UnixNano())
			want, _ := rebuild(ctx, dir, nil, c.Journal(), seq, true, c.log, nil, nil)
			if got.Seq() != seq || !reflect.DeepEqual(holdingsOf(got), holdingsOf(want)) {
				t.Fatalf("holdings at %s differ from the replay's", at)
			}
		}
	}
	check(c)
	_, want := c.StateHash()
	c.Close()
	c, err = Open(context.Background(), Config{Dir: dir, SnapshotEvery: 5, SnapshotKeep: 100, CheckInvariants: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, got := c.StateHash(); got != want {
		t.Fatal("restart from a snapshot gives another state")
	}
	if err := c.Verified(context.Background()); err != nil {
		t.Fatal(err)
	}
	check(c)
	if err := pruneSnapshots(dir, 1); err != nil {
		t.Fatal(err)
	}
	fs, _ = snapshotFiles(dir)
	if len(fs) != 2 || !(fs[0].incident || fs[1].incident) {
		t.Fatalf("after pruning to one: %v; want the newest and the incident's", fs)
	}
}

// TestStartFromSnapshotStillRefusesBadJournal: a start from a snapshot
// replays only the tail, but the journal below it is still verified: a
// flipped byte below the snapshot fails the core closed, naming the
// entry, and it acknowledges nothing more; a journal
// rewritten below it with every later hash recomputed (its tree left
// as it was) no longer matches the snapshot, which is passed over, and
// the replay from the first entry refuses it at start.
func TestStartFromSnapshotStillRefusesBadJournal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damage  func(dir string) error
		atStart bool
	}{
		{"flipped bit", func(dir string) error { return journaltest.FlipBit(dir, 5, 200) }, false},
		{"rewritten", func(dir string) error {
			return journaltest.Rewrite(dir, 5, func(seq uint64, kind uint16, p []byte) []byte {
				if seq == 5 {
					// One more base unit to the depositor.
					p = append([]byte(nil), p...)
					p[len(p)-ledger.TransferSize+42]++
				}
				return p
			})
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// Past the first full tile of the tree (256 leaves), which a
			// rewrite that leaves the tree as it was contradicts.
			c, err := Open(context.Background(), Config{Dir: dir, SnapshotEvery: 200, NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			setupXEM(t, c, 3)
			for i := uint64(1); i <= 300; i++ {
				submit(t, c, t0.Add(time.Duration(i)), CreateTransfers{Transfers: []ledger.Transfer{deposit(i, 1, 1)}})
			}
			c.Close()
			if err := tc.damage(filepath.Join(dir, "journal")); err != nil {
				t.Fatal(err)
			}
			c, err = Open(context.Background(), Config{Dir: dir, SnapshotEvery: 200})
			var bad *journal.BadEntryError
			if tc.atStart {
				if !errors.As(err, &bad) || bad.Seq != 5 {
					t.Fatalf("Open() = %v; want entry 5 named", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open() = %v; want a start from the snapshot at 200", err)
			}
			defer c.Close()
			if err := c.Verified(context.Background()); !errors.As(err, &bad) || bad.Seq != 5 {
				t.Fatalf("Verified() = %v; want entry 5 named", err)
			}
			_, err = c.Submit(context.Background(), t0, CreateTransfers{Transfers: []ledger.Transfer{deposit(100, 1, 1)}})
			if !errors.Is(err, ErrJournalFailed) {
				t.Fatalf("Submit after a failed verification = %v; want ErrJournalFailed", err)
			}
		})
	}
}

// TestSnapshotRewrittenAfterLoad: an attacker who can write the data
// directory rewrites the snapshot file in place after the core has
// authenticated and loaded it; the loaded state does not change.
func TestSnapshotRewrittenAfterLoad(t *testing.T) {
	dir := t.TempDir()
	snapshotTen(t, dir).Close()
	fs, _ := snapshotFiles(dir)
	key, err := snapshotKey("", dir)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := readSnapshot(dir, key, fs[0])
	if err != nil {
		t.Fatal(err)
	}
	balances := func() []ledger.Account {
		var out []ledger.Account
		st.Ledger.Accounts(func(a *ledger.Account) bool { out = append(out, *a); return true })
		return out
	}
	before := balances()
	if len(before) == 0 {
		t.Fatal("no accounts")
	}
	// Every byte after the header flipped, in place (same inode, same
	// size), as a writer with the directory's permissions can.
	f, err := os.OpenFile(fs[0].path(dir), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	for i := 64; i < len(b); i++ {
		b[i] ^= 0xff
	}
	if _, err := f.WriteAt(b[64:], 64); err != nil {
		t.Fatal(err)
	}
	f.Close()
	after := balances()
	if len(after) != len(before) {
		t.Fatalf("%d accounts after the file was rewritten; %d before", len(after), len(before))
	}
	for i := range before {
		if before[i] != after[i] {
			t.Fatalf("account %d changed with the file after the load: %+v, was %+v", i, after[i], before[i])
		}
	}
}
