package banksim

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"kinko/internal/yen"
	"kinko/internal/yen/zengin"
)

// notices is kinko's side: it refuses notices while busy and records the
// ones it accepts.
type notices struct {
	mu   sync.Mutex
	busy bool
	got  []yen.BankNotice
}

func (n *notices) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.busy {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	var v yen.BankNotice
	json.NewDecoder(r.Body).Decode(&v)
	n.got = append(n.got, v)
}

// ids are the transaction ids accepted, each once in the order first
// accepted: delivery is at least once (a notice whose answer was lost is
// sent again), and kinko takes a transaction id once.
func (n *notices) ids() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	seen := map[string]bool{}
	for _, v := range n.got {
		if !seen[v.TxID] {
			seen[v.TxID] = true
			out = append(out, v.TxID)
		}
	}
	return out
}

func (n *notices) setBusy(b bool) { n.mu.Lock(); n.busy = b; n.mu.Unlock() }

// run runs the bank until the returned stop.
func run(t *testing.T, b *Bank) func() {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx, ln, 10*time.Millisecond) }()
	return func() { cancel(); <-done }
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	// A wait, not a timing check: generous for a loaded machine.
	for range 3000 {
		if f() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestBooksAndReferences: a bank that keeps its books resumes from them:
// its balances, its next transaction id, the notices kinko had not yet
// accepted (delivered after the restart), and the transfers taken by the
// sender's reference (the same reference again is answered with the same
// id and moves nothing; another transfer under it is refused).
func TestBooksAndReferences(t *testing.T) {
	n := &notices{}
	srv := httptest.NewTLSServer(n)
	defer srv.Close()
	cfg := Config{Drop: t.TempDir(), Key: []byte("a bank key of some length"), NotifyURL: srv.URL, Client: srv.Client(),
		Trust:         zengin.Account{Bank: "0038", Branch: "106", Type: 1, Number: "1000001", Name: "ｷﾝｺ ｼﾝﾀｸ"},
		Operating:     zengin.Account{Bank: "0005", Branch: "001", Type: 1, Number: "1000002", Name: "ｶ)ｷﾝｺ"},
		VirtualBranch: "101", OperatingBalance: 5_000, State: filepath.Join(t.TempDir(), "bank.json")}
	b, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, b)
	open := Transfer{Branch: "101", Number: "2000001", Amount: 1_000_000, Sender: "ﾔﾏﾀﾞ ﾊﾅｺ", Ref: "opening-1001"}
	id1, err := b.In(open)
	if err != nil || id1 != "1000001-1" {
		t.Fatalf("In = %q, %v", id1, err)
	}
	if again, err := b.In(open); err != nil || again != id1 {
		t.Fatalf("In with the same reference = %q, %v; want %q", again, err, id1)
	}
	other := open
	other.Amount = 2
	if _, err := b.In(other); err == nil {
		t.Fatal("another transfer under a used reference was taken")
	}
	waitFor(t, "the first notice", func() bool { return len(n.ids()) == 1 })
	// kinko is busy: the next notice stays pending when the bank stops.
	n.setBusy(true)
	id2, err := b.In(Transfer{Branch: "101", Number: "2000002", Amount: 2_000, Sender: "ｽｽﾞｷ ﾀﾛｳ"})
	if err != nil || id2 != "1000001-2" {
		t.Fatalf("In = %q, %v", id2, err)
	}
	time.Sleep(50 * time.Millisecond)
	stop()
	if got := b.Balances(); got.Trust != 1_002_000 || got.Pending != 1 || got.Operating != 5_000 {
		t.Fatalf("balances before the restart = %+v", got)
	}

	// Restarted on its books, with another opening balance configured.
	cfg.OperatingBalance = 9_999
	b, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Balances(); got.Trust != 1_002_000 || got.Operating != 5_000 || got.Pending != 1 || got.Notices != 2 {
		t.Fatalf("balances after the restart = %+v; want the books'", got)
	}
	n.setBusy(false)
	stop = run(t, b)
	defer stop()
	waitFor(t, "the pending notice after the restart", func() bool { return len(n.ids()) == 2 })
	if again, err := b.In(open); err != nil || again != id1 {
		t.Fatalf("In with the opening's reference after the restart = %q, %v; want %q", again, err, id1)
	}
	id3, err := b.In(Transfer{Branch: "101", Number: "2000003", Amount: 3_000, Sender: "ﾀﾅｶ ﾕｷ"})
	if err != nil || id3 != "1000001-3" {
		t.Fatalf("the first transfer after the restart = %q, %v; want the next id", id3, err)
	}
	waitFor(t, "the third notice", func() bool { return len(n.ids()) == 3 })
	if ids := n.ids(); ids[0] != id1 || ids[1] != id2 || ids[2] != id3 {
		t.Fatalf("notices %v", ids)
	}
	if got := b.Balances(); got.Trust != 1_005_000 {
		t.Fatalf("trust = %d; want each transfer once", got.Trust)
	}
	// The statement carries every movement since the last one, once.
	name, err := b.Close()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(cfg.Drop, "inbox", name))
	st, err := zengin.ParseStatement(raw)
	if err != nil || len(st.Groups[0].Entries) != 3 || st.Groups[0].Closing != 1_005_000 {
		t.Fatalf("statement = %+v, %v", st, err)
	}
}
