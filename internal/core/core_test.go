package core

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"kinko/internal/controls"
	"kinko/internal/custody"
	"kinko/internal/journal"
	"kinko/internal/journal/journaltest"
	"kinko/internal/ledger"
	"kinko/internal/people"
	"kinko/internal/withdraw"
)

var (
	t0      = time.Date(2018, 1, 26, 0, 0, 0, 0, time.UTC)
	xemWall = ledger.AccountKey{Owner: ledger.OwnerHouseMin + 100, Asset: 4, Kind: ledger.KindWallet}
)

func custXEM(n uint64) ledger.AccountKey {
	return ledger.AccountKey{Owner: ledger.OwnerID(n), Asset: 4, Kind: ledger.KindAvailable}
}

func openCore(t *testing.T, dir string, snapEvery uint64) *Core {
	t.Helper()
	c, err := Open(context.Background(), Config{Dir: dir, SnapshotEvery: snapEvery, CheckInvariants: true})
	if err != nil {
		t.Fatalf("Open(%s) = %v", dir, err)
	}
	return c
}

func submit(t *testing.T, c *Core, at time.Time, cmd Command) Outcome {
	t.Helper()
	o, err := c.Submit(context.Background(), at, signed(cmd))
	if err != nil {
		t.Fatalf("Submit(%s) = %v", cmd.Kind(), err)
	}
	if err := o.EventErr(); err != nil {
		t.Fatalf("Submit(%s) events: %v", cmd.Kind(), err)
	}
	return o
}

// setupXEM registers XEM, n customers with accounts and the XEM wallet.
func setupXEM(t *testing.T, c *Core, n int) {
	t.Helper()
	submit(t, c, t0, CreateAssets{Assets: []ledger.Asset{{ID: 4, Code: "XEM", Decimals: 6, Class: ledger.ClassChain}}})
	ids := make([]ledger.OwnerID, n)
	keys := []ledger.AccountKey{xemWall}
	for i := range ids {
		ids[i] = ledger.OwnerID(i + 1)
		keys = append(keys, custXEM(uint64(i+1)))
	}
	submit(t, c, t0, CreateCustomers{IDs: ids})
	submit(t, c, t0, CreateAccounts{Keys: keys})
}

func deposit(id uint64, cust uint64, amount uint64) ledger.Transfer {
	return ledger.Transfer{ID: ledger.ID{Lo: id}, Debit: xemWall, Credit: custXEM(cust), Amount: ledger.AmountOf(amount), Code: 1}
}

func TestRestartRebuildsSameState(t *testing.T) {
	for _, snapEvery := range []uint64{1_000_000, 7} {
		dir := t.TempDir()
		c := openCore(t, dir, snapEvery)
		setupXEM(t, c, 10)
		for i := uint64(1); i <= 40; i++ {
			submit(t, c, t0.Add(time.Duration(i)*time.Minute), CreateTransfers{Transfers: []ledger.Transfer{deposit(i, i%10+1, i*100)}})
		}
		seq, want := c.StateHash()
		c.Close()
		if snaps, _ := snapshotFiles(dir); len(snaps) == 0 || snaps[0].seq != seq {
			t.Fatalf("snapshot every %d: snapshots %v; want one at close, at %d", snapEvery, snaps, seq)
		}
		if snapEvery == 1_000_000 {
			// Without the one at close: a replay from the first entry.
			removeSnapshotFiles(t, dir)
		}
		c = openCore(t, dir, snapEvery)
		seq2, got := c.StateHash()
		if seq2 != seq || got != want {
			t.Fatalf("after restart (snapshot every %d): seq %d state %s; want %d %s", snapEvery, seq2, got, seq, want)
		}
		// The core goes on from where it was.
		submit(t, c, t0.Add(time.Hour), CreateTransfers{Transfers: []ledger.Transfer{deposit(1000, 1, 5)}})
		c.Close()
	}
}

func TestCorruptSnapshotPassedOver(t *testing.T) {
	dir := t.TempDir()
	c := openCore(t, dir, 5)
	setupXEM(t, c, 3)
	for i := uint64(1); i <= 12; i++ {
		submit(t, c, t0, CreateTransfers{Transfers: []ledger.Transfer{deposit(i, 1, 1)}})
	}
	_, want := c.StateHash()
	c.Close()
	seqs, _ := snapshotFiles(dir)
	if len(seqs) == 0 {
		t.Fatal("no snapshots written")
	}
	p := seqs[0].path(dir)
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 0x40
	os.WriteFile(p, b, 0o600)
	c = openCore(t, dir, 5)
	defer c.Close()
	if _, got := c.StateHash(); got != want {
		t.Fatalf("state after a corrupt snapshot = %s; want %s", got, want)
	}
}

func TestRefusesToStartOnBadJournal(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(dir string) error
	}{
		{"flipped bit", func(dir string) error { return journaltest.FlipBit(dir, 5, 200) }},
		{"truncated middle", func(dir string) error { return journaltest.Delete(dir, 5) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := openCore(t, dir, 3) // snapshots beyond the damage too
			setupXEM(t, c, 3)
			for i := uint64(1); i <= 8; i++ {
				submit(t, c, t0, CreateTransfers{Transfers: []ledger.Transfer{deposit(i, 1, 1)}})
			}
			c.Close()
			if err := tc.damage(filepath.Join(dir, "journal")); err != nil {
				t.Fatal(err)
			}
			// Refused at start, or (a start from the snapshot beyond
			// the damage) by the verification below the snapshot, after
			// which the core acknowledges nothing.
			c, err := Open(context.Background(), Config{Dir: dir})
			if err == nil {
				defer c.Close()
				err = c.Verified(context.Background())
				if _, serr := c.Submit(context.Background(), t0, CreateTransfers{Transfers: []ledger.Transfer{deposit(100, 1, 1)}}); !errors.Is(serr, ErrJournalFailed) {
					t.Fatalf("Submit on a core whose journal does not verify = %v", serr)
				}
			}
			var bad *journal.BadEntryError
			if !errors.As(err, &bad) || bad.Seq != 5 {
				t.Fatalf("Open() on a damaged journal = %v; want entry 5 named", err)
			}
		})
	}
}

func TestPointInTime(t *testing.T) {
	dir := t.TempDir()
	c := openCore(t, dir, 4)
	defer c.Close()
	setupXEM(t, c, 2) // entries 1-3 at t0
	// Entry 3+i at t0+i hours deposits i*1000 to customer 1.
	for i := uint64(1); i <= 6; i++ {
		submit(t, c, t0.Add(time.Duration(i)*time.Hour), CreateTransfers{Transfers: []ledger.Transfer{deposit(i, 1, i*1000)}})
	}
	ctx := context.Background()
	bal := func(st *State) uint64 {
		a, _ := st.Ledger.Account(custXEM(1))
		v, _ := a.Balance().Uint64()
		return v
	}
	for _, tc := range []struct {
		seq  uint64
		want uint64
	}{{3, 0}, {4, 1000}, {6, 6000}, {9, 21000}} {
		st, err := c.StateAt(ctx, tc.seq)
		if err != nil {
			t.Fatal(err)
		}
		if got := bal(st); got != tc.want || st.Seq() != tc.seq {
			t.Errorf("StateAt(%d): balance %d at seq %d; want %d", tc.seq, got, st.Seq(), tc.want)
		}
	}
	now := t0.Add(24 * time.Hour)
	for _, tc := range []struct {
		at   time.Time
		want uint64
	}{{t0, 0}, {t0.Add(2*time.Hour - 1), 1000}, {t0.Add(2 * time.Hour), 3000}, {now, 21000}} {
		st, err := c.StateAtTime(ctx, tc.at, now)
		if err != nil {
			t.Fatal(err)
		}
		if got := bal(st); got != tc.want {
			t.Errorf("StateAtTime(%s) = %d; want %d", tc.at, got, tc.want)
		}
	}
	if _, err := c.StateAt(ctx, 100); !errors.Is(err, ErrFuture) {
		t.Errorf("StateAt(100) = %v; want ErrFuture", err)
	}
	if _, err := c.StateAtTime(ctx, now.Add(time.Second), now); !errors.Is(err, ErrFuture) {
		t.Errorf("StateAtTime(future) = %v; want ErrFuture", err)
	}
	if _, err := c.StateAtTime(ctx, t0.Add(-time.Second), now); !errors.Is(err, ErrBeforeJournal) {
		t.Errorf("StateAtTime(before) = %v; want ErrBeforeJournal", err)
	}
}

func TestInvalidCommandNeverJournaled(t *testing.T) {
	dir := t.TempDir()
	c := openCore(t, dir, 0)
	defer c.Close()
	setupXEM(t, c, 1)
	head, _, _ := c.Journal().Head()
	ctx := context.Background()
	for _, tc := range []struct {
		kind    Kind
		payload []byte
	}{
		{KindCreateTransfers, []byte{1, 0, 0, 0, 9}},
		{KindCreateTransfers, []byte{0, 0, 0, 0}},
		{KindCreateTransfers, []byte{0xff, 0xff, 0, 0}},
		{KindCreateAssets, []byte{1, 0, 0, 0, 1}},
		{KindCreateAccounts, nil},
		{999, []byte{1}},
	} {
		if _, err := c.SubmitRaw(ctx, 1, tc.kind, tc.payload); !errors.Is(err, ErrCommandInvalid) {
			t.Errorf("SubmitRaw(%v, %x) = %v; want ErrCommandInvalid", tc.kind, tc.payload, err)
		}
	}
	if h, _, _ := c.Journal().Head(); h != head {
		t.Fatalf("head moved from %d to %d on invalid commands", head, h)
	}
}

func TestFailedEventsChangeNothingAndRetriesAreIdempotent(t *testing.T) {
	c := openCore(t, t.TempDir(), 0)
	defer c.Close()
	setupXEM(t, c, 2)
	submit(t, c, t0, CreateTransfers{Transfers: []ledger.Transfer{deposit(1, 1, 500)}})
	o, err := c.Submit(context.Background(), t0, CreateTransfers{Transfers: []ledger.Transfer{
		{ID: ledger.ID{Lo: 2}, Debit: custXEM(1), Credit: custXEM(2), Amount: ledger.AmountOf(501)},
	}})
	if err != nil || !errors.Is(o.EventErr(), ledger.ErrExceedsCredits) {
		t.Fatalf("overdraft = %v, %v", o.EventErr(), err)
	}
	// The same id retried with the same fields: the first result.
	o = submit(t, c, t0, CreateTransfers{Transfers: []ledger.Transfer{deposit(1, 1, 500)}})
	if len(o.Events) != 1 || o.Events[0].Code != ledger.Exists {
		t.Fatalf("retry = %v; want exists", o.Events)
	}
	o, _ = c.Submit(context.Background(), t0, CreateTransfers{Transfers: []ledger.Transfer{deposit(1, 1, 501)}})
	if !errors.Is(o.EventErr(), ledger.ErrExistsWithDifferentFields) {
		t.Fatalf("same id other fields = %v", o.EventErr())
	}
	c.Read(func(s *State) {
		a, _ := s.Ledger.Account(custXEM(1))
		if v, _ := a.Balance().Uint64(); v != 500 {
			t.Errorf("balance = %d; want 500", v)
		}
	})
}

func TestConcurrentSubmitsGroupCommit(t *testing.T) {
	c := openCore(t, t.TempDir(), 0)
	setupXEM(t, c, 1)
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id := uint64(w*each + i + 1)
				if _, err := c.Submit(context.Background(), time.Now(), CreateTransfers{Transfers: []ledger.Transfer{deposit(id, 1, 1)}}); err != nil {
					t.Error(err)
				}
			}
		}(w)
	}
	wg.Wait()
	c.Read(func(s *State) {
		if n := s.Ledger.TransferCount(); n != workers*each {
			t.Errorf("transfers = %d; want %d", n, workers*each)
		}
	})
	c.Close()
	if _, err := c.Submit(context.Background(), time.Now(), CreateTransfers{Transfers: []ledger.Transfer{deposit(9999, 1, 1)}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Close = %v; want ErrClosed", err)
	}
}

func FuzzDecodeCommand(f *testing.F) {
	for _, c := range []Command{
		CreateAssets{Assets: []ledger.Asset{{ID: 1, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}},
		CreateCustomers{IDs: []ledger.OwnerID{1, 2}},
		CreateAccounts{Keys: []ledger.AccountKey{xemWall}},
		CreateTransfers{Transfers: []ledger.Transfer{deposit(1, 1, 1)}},
		RegisterWallet{Wallet: coldWallet},
		AssignAddress{Wallet: 1, Customer: 1},
		CreditDeposits{Deposits: []custody.Seen{{Wallet: 1, Amount: 5}}},
		ReverseDeposits{Actor: "w", Reason: "r"},
		Halt{Switch: controls.Switch{Service: controls.Global}, Actor: "a", Reason: "b"},
		Lift{Switch: controls.Switch{Asset: 2, Service: controls.Trade}, Requester: "a", Approver: "b", Reason: "c"},
		WatchCheckpoint{Asset: 2, Height: 5, Hashes: [][32]byte{{1}}},
		RegisterIntentKey{Customer: 1, PubKey: [32]byte{1}},
		WhitelistAddress{Customer: 1, Asset: "BTC", Address: "bcrt1q"},
		RequestWithdrawal{Customer: 1, Intent: withdraw.Intent{RequestID: "r", Asset: "BTC", Address: "a", Amount: withdraw.AmountOf(5), Expiry: 9}, Sig: []byte{1}},
		SetWithdrawalRules{Actor: "a", Rules: withdraw.Rules{CoolDownSeconds: 5}},
		founding(t0)[0],
		founding(t0)[1],
		signed(OpenRequest{Request: people.Request{ID: "r", Kind: KindLiftHalt, Payload: []byte(`{}`), Requester: "aiko", Reason: "x", RequiredRole: people.RoleApprover, Expires: 5}}),
		signed(DecideRequest{ID: "r", Decider: "kenji", Reason: "x", Approve: true}),
		signed(OperatorLogin{Session: people.Session{Kind: people.SessionOperator, Operator: "aiko", Expires: 9}}),
	} {
		f.Add(uint16(c.Kind()), c.AppendPayload(nil))
	}
	f.Fuzz(func(t *testing.T, kind uint16, p []byte) {
		c, err := DecodeCommand(kind, p)
		if err != nil {
			if !errors.Is(err, ErrCommandInvalid) {
				t.Fatalf("DecodeCommand error %v is not ErrCommandInvalid", err)
			}
			return
		}
		if got := c.AppendPayload(nil); !bytes.Equal(got, p) {
			t.Fatalf("re-encoding differs: %x vs %x", got, p)
		}
		// Applying any decodable command keeps the invariants.
		st := NewState()
		var mj memJournal
		for _, setup := range (&sim{}).setup() {
			e := mj.seal(0, setup)
			st.Apply(&e)
		}
		e := mj.seal(1, c)
		st.Apply(&e)
		if err := st.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzReplica feeds arbitrary bytes to a replica, after a valid entry:
// nothing may panic; a bad entry breaks it for good and changes nothing.
func FuzzReplica(f *testing.F) {
	payload := CreateAssets{Assets: []ledger.Asset{{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}}.AppendPayload(nil)
	good := journal.Seal(make([]byte, journal.EncodedSize(len(payload))), journal.Hash{}, 1, 1, uint16(KindCreateAssets), payload)
	f.Add(good.Encode())
	f.Add([]byte{})
	f.Add(append(good.Encode()[:10], 0xFF))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReplica()
		_, _, _, err := r.Ingest(b)
		if err != nil {
			if r.State().Seq() != 0 || r.Broken() == nil {
				t.Fatalf("refused entry left seq %d, broken %v", r.State().Seq(), r.Broken())
			}
			if _, _, _, err2 := r.Ingest(good.Encode()); err2 == nil {
				t.Fatal("a broken replica took another entry")
			}
			return
		}
		if r.State().Seq() != 1 {
			t.Fatalf("accepted entry, seq %d", r.State().Seq())
		}
	})
}

func removeSnapshotFiles(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(dir, snapDir)); err != nil {
		t.Fatal(err)
	}
}
