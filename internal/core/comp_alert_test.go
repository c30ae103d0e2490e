package core

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"kinko/internal/alert"
)

// TestCompensationShortfallAlert: a running core that executes a plan
// leaving the customers' yen short raises a critical alert, delivered by
// the alert package's webhook sender (as `kinko core` and `kinko dev`
// wire it) to a receiver that checks its signature; the same plan funded
// raises none, and nothing before the execution alerts.
func TestCompensationShortfallAlert(t *testing.T) {
	secret := []byte("shortfall-alert-secret")
	for _, funded := range []bool{false, true} {
		var (
			mu  sync.Mutex
			got []alert.Alert
			bad []string
		)
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			defer mu.Unlock()
			if r.Header.Get(alert.SignatureHeader) != alert.Sign(secret, b) {
				bad = append(bad, "signature of "+string(b))
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			var a alert.Alert
			if err := json.Unmarshal(b, &a); err != nil {
				bad = append(bad, err.Error())
			}
			got = append(got, a)
		}))
		hook := &alert.Webhook{URL: recv.URL, Secret: secret}
		hook.Start()
		c, err := Open(context.Background(), Config{Dir: t.TempDir(), CheckInvariants: true, Alert: hook.Send})
		if err != nil {
			t.Fatal(err)
		}
		e, _ := newCompEnvOn(t, 3, c)
		r, total := shortfallPlan(e, funded)
		var open bool
		c.Read(func(st *State) { _, open = st.Incidents.Get("shortfall-JPY-p") })
		// The core raises the alerts of an entry after answering it:
		// closing it waits for them; stopping the sender delivers them.
		c.Close()
		hook.Stop()
		recv.Close()
		mu.Lock()
		if len(bad) > 0 {
			t.Fatalf("funded %v: receiver refused %v", funded, bad)
		}
		if funded {
			if len(got) != 0 {
				t.Fatalf("a funded plan (shortfalls %+v) raised alerts %+v", r.Shortfalls, got)
			}
			mu.Unlock()
			continue
		}
		if len(got) != 1 {
			t.Fatalf("an unfunded plan of %d yen raised %d alerts %+v; want one", total, len(got), got)
		}
		a := got[0]
		if a.Severity != alert.Critical || a.Key != "shortfall:shortfall-JPY-p" || !strings.Contains(a.Detail, "JPY") ||
			!strings.Contains(a.Detail, r.Shortfalls[0].Short.String()) || !strings.Contains(a.Detail, "incident shortfall-JPY-p") {
			t.Fatalf("alert %+v; want a critical one naming JPY, the shortfall %s and its incident", a, r.Shortfalls[0].Short)
		}
		if !open {
			t.Fatal("the alert's incident is not open in the core")
		}
		mu.Unlock()
	}
}

// TestSnapshotAfterCompensation: the core takes a snapshot just after the
// entry that pays a plan's last part, so that a start after a crash loads
// the state after the compensation instead of replaying its execution.
func TestSnapshotAfterCompensation(t *testing.T) {
	dir := t.TempDir()
	c, err := Open(context.Background(), Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e, _ := newCompEnvOn(t, 3, c)
	if r, _ := shortfallPlan(e, true); !r.Done {
		t.Fatalf("the plan is not done: %+v", r)
	}
	var seq uint64
	c.Read(func(st *State) { seq = st.seq })
	files, err := snapshotFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, f := range files {
		seqs = append(seqs, f.seq)
	}
	if len(seqs) != 1 || seqs[0] != seq {
		t.Fatalf("snapshots at %v; want one, at the execution's last part (entry %d)", seqs, seq)
	}
}
