package witness_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"kinko/internal/alert"
	"kinko/internal/journal"
	"kinko/internal/journal/journaltest"
	"kinko/internal/journal/tree"
	"kinko/internal/witness"
)

// src is a journal as a witness's source (a mirror is one).
type src struct{ *journal.Journal }

func (s src) EntryTime(seq uint64) (int64, error) {
	e, err := s.Get(seq)
	return e.Time, err
}

// appendN appends entries from seq+1 to n, in batches of up to 500, each
// at a time of its own, payloads a function of seq and tag.
func appendN(t testing.TB, j *journal.Journal, n uint64, tag byte) {
	t.Helper()
	for {
		seq, prev, _ := j.Head()
		if seq >= n {
			return
		}
		b := j.NewBatch()
		for k := 0; k < 500 && seq < n; k++ {
			e, err := b.Add(prev, seq+1, int64(1_700_000_000_000_000_000+seq+1), 7, []byte{byte(seq), byte(seq >> 8), byte(seq >> 16), tag})
			if err != nil {
				t.Fatal(err)
			}
			seq, prev = e.Seq, e.Hash
		}
		if err := j.Commit(b); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
}

func openJ(t testing.TB, dir string) *journal.Journal {
	t.Helper()
	j, err := journal.Open(dir, journal.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestWitnessSignsEveryHead: a witness signs the head of its mirror at
// every size it holds, each verifying with its key and agreeing with the
// mirror's own tree; it keeps them across a restart, and signs at reopen
// what the mirror gained while it was not there.
func TestWitnessSignsEveryHead(t *testing.T) {
	dir := t.TempDir()
	j := openJ(t, filepath.Join(dir, "journal"))
	defer j.Close()
	appendN(t, j, 40, 0)
	w, err := witness.Open(dir, "cosigner", src{j}, true)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, witness.KeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("witness key: %v %v", st, err)
	}
	if !strings.HasPrefix(w.Origin(), "kinko.witness/cosigner/") {
		t.Fatalf("origin = %q", w.Origin())
	}
	v, err := tree.NewVerifier(w.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, j, 75, 0)
	if err := w.Sign(); err != nil {
		t.Fatal(err)
	}
	notes, next, err := w.Heads(1, 1000)
	if err != nil || next != 0 || len(notes) != 75 {
		t.Fatalf("heads = %d, next %d, %v; want 75", len(notes), next, err)
	}
	for i, n := range notes {
		h, err := v.Verify(n)
		if err != nil {
			t.Fatal(err)
		}
		root, _ := j.RootAt(uint64(i + 1))
		e, _ := j.Get(uint64(i + 1))
		if h.Size != uint64(i+1) || h.Root != root || h.Time != e.Time {
			t.Fatalf("head %d = %+v; want size %d root %s time %d", i, h, i+1, root, e.Time)
		}
	}
	// Restarted with the mirror further on: the heads it kept, and the
	// sizes it missed signed at open.
	w.Close()
	appendN(t, j, 90, 0)
	w2, err := witness.Open(dir, "cosigner", src{j}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if w2.VerifierKey() != w.VerifierKey() {
		t.Fatal("the witness key changed across a restart")
	}
	if n, _ := w2.Count(); n != 90 {
		t.Fatalf("%d heads after the restart; want 90", n)
	}
	note, size, err := w2.Newest()
	if h, verr := v.Verify(note); err != nil || verr != nil || size != 90 || h.Size != 90 {
		t.Fatalf("newest = %d %v %v", size, err, verr)
	}
	// Another key does not verify the witness's heads.
	other, _ := tree.GenerateKey(w.Origin())
	os, _ := tree.NewSigner(other)
	ov, _ := tree.NewVerifier(os.VerifierKey())
	if _, err := ov.Verify(note); !errors.Is(err, tree.ErrHeadSignature) {
		t.Fatalf("a head checked with another key of the same name = %v; want ErrHeadSignature", err)
	}
}

// TestWitnessRetention: beyond the dense window only every SparseEvery-th
// head is kept, the window itself whole; what is served pages through
// them in order.
func TestWitnessRetention(t *testing.T) {
	if testing.Short() {
		t.Skip("signs 66,000 heads")
	}
	dir := t.TempDir()
	j := openJ(t, filepath.Join(dir, "journal"))
	defer j.Close()
	const first = witness.DenseHeads - 100
	appendN(t, j, first, 0)
	w, err := witness.Open(dir, "watcher", src{j}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const n = witness.DenseHeads + 3*witness.SparseEvery + 17
	appendN(t, j, n, 0)
	if err := w.Sign(); err != nil {
		t.Fatal(err)
	}
	var sizes []uint64
	for from := uint64(1); from != 0; {
		notes, next, err := w.Heads(from, witness.MaxPage)
		if err != nil {
			t.Fatal(err)
		}
		for _, note := range notes {
			h, err := tree.ParseHead(note)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, h.Size)
		}
		from = next
	}
	var want []uint64
	for s := uint64(1); s <= n; s++ {
		if witness.Keep(s, n) {
			want = append(want, s)
		}
	}
	if len(sizes) != len(want) {
		t.Fatalf("%d heads kept; want %d (dense %d + sparse)", len(sizes), len(want), witness.DenseHeads)
	}
	for i := range want {
		if sizes[i] != want[i] {
			t.Fatalf("head %d is of size %d; want %d", i, sizes[i], want[i])
		}
	}
	if sizes[0] != witness.SparseEvery || sizes[len(sizes)-witness.DenseHeads] != n-witness.DenseHeads+1 {
		t.Fatalf("first kept %d, window starts %d", sizes[0], sizes[len(sizes)-witness.DenseHeads])
	}
}

// pair is a core's journal and a witness of it with its own copy of the
// entries, served over HTTP.
type pair struct {
	coreDir string
	core    *journal.Journal
	mirror  *journal.Journal
	w       *witness.Witness
	srv     *httptest.Server
}

func newPair(t *testing.T, n uint64) *pair {
	t.Helper()
	p := &pair{coreDir: filepath.Join(t.TempDir(), "journal")}
	p.core = openJ(t, p.coreDir)
	wdir := t.TempDir()
	p.mirror = openJ(t, filepath.Join(wdir, "journal"))
	appendN(t, p.core, n, 0)
	appendN(t, p.mirror, n, 0)
	var err error
	if p.w, err = witness.Open(wdir, "cosigner", src{p.mirror}, true); err != nil {
		t.Fatal(err)
	}
	p.srv = httptest.NewServer(p.w.Handler())
	t.Cleanup(func() {
		p.srv.Close()
		p.w.Close()
		p.mirror.Close()
		if p.core != nil {
			p.core.Close()
		}
	})
	return p
}

// reopen closes the core's journal, damages it, and opens it again.
func (p *pair) reopen(t *testing.T, damage func(dir string) error) {
	t.Helper()
	p.core.Close()
	p.core = nil
	if err := damage(p.coreDir); err != nil {
		t.Fatal(err)
	}
	p.core = openJ(t, p.coreDir)
}

type alerts struct {
	mu sync.Mutex
	as []alert.Alert
}

func (a *alerts) send(x alert.Alert) { a.mu.Lock(); a.as = append(a.as, x); a.mu.Unlock() }
func (a *alerts) severities() map[alert.Severity]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := map[alert.Severity]int{}
	for _, x := range a.as {
		m[x.Severity]++
	}
	return m
}

func reseal(_ uint64, _ uint16, p []byte) []byte { return append(append([]byte(nil), p...), 'x') }

// TestCheckerRefusesContradictedHistory: the core asks its witness; a
// journal cut short, or rewritten with every later hash and its tree
// recomputed, is refused with a critical alert naming the witness and the
// size; the journal as it was is served.
func TestCheckerRefusesContradictedHistory(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(dir string) error
		want   string
	}{
		{"intact", nil, ""},
		{"truncated", func(d string) error { return journaltest.Truncate(d, 3) }, "missing: the journal ends at 297"},
		{"rewritten with its tree", func(d string) error {
			if err := journaltest.Rewrite(d, 10, reseal); err != nil {
				return err
			}
			return journaltest.DropTree(d)
		}, "not the history the head signed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, 300)
			if tc.damage != nil {
				p.reopen(t, tc.damage)
			}
			pinned, err := witness.PinAll([]string{p.srv.URL}, []string{p.w.VerifierKey()})
			if err != nil {
				t.Fatal(err)
			}
			var al alerts
			c := &witness.Checker{Witnesses: pinned, Journal: p.core, Alert: al.send}
			r := c.Check(context.Background())
			if tc.want == "" {
				if r != nil || !c.Results()[0].OK || c.Results()[0].Size != 300 {
					t.Fatalf("intact journal: refusal %v, results %+v", r, c.Results())
				}
				return
			}
			if r == nil || r.Witness != p.srv.URL || r.Size != 300 || !strings.Contains(r.Reason, tc.want) {
				t.Fatalf("refusal = %v; want one naming %s, size 300, %q", r, p.srv.URL, tc.want)
			}
			if got := al.severities(); got[alert.Critical] != 1 {
				t.Fatalf("alerts = %v; want one critical", got)
			}
			// It stays refused.
			if c.Check(context.Background()) == nil || c.Refusal() == nil {
				t.Fatal("the refusal went away")
			}
		})
	}
}

// TestCheckerDistrustsBadWitness: a witness that does not answer, that
// serves a head signed with another key, or a head that does not parse,
// is a warning: nothing is refused, and its head is not trusted (a head
// of a history the journal does not hold, signed with another key, does
// not stop the core).
func TestCheckerDistrustsBadWitness(t *testing.T) {
	p := newPair(t, 50)
	// An impostor signs a head of 1,000 entries under the witness's name.
	other, _ := tree.GenerateKey(p.w.Origin())
	os, _ := tree.NewSigner(other)
	forged, _ := os.Sign(tree.Head{Size: 1000, Root: tree.Hash{1}})
	serve := func(body []byte) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
		t.Cleanup(s.Close)
		return s.URL
	}
	down := httptest.NewServer(nil)
	down.Close()
	for _, tc := range []struct{ name, url, want string }{
		{"not answering", down.URL, "not answering"},
		{"another key", serve(forged), "head not trusted"},
		{"not a head", serve([]byte("hello\n")), "head not trusted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pinned, _ := witness.PinAll([]string{tc.url}, []string{p.w.VerifierKey()})
			var al alerts
			c := &witness.Checker{Witnesses: pinned, Journal: p.core, Alert: al.send}
			if r := c.Check(context.Background()); r != nil {
				t.Fatalf("refused on a witness not trusted: %v", r)
			}
			res := c.Results()[0]
			if res.OK || !strings.Contains(res.Error, tc.want) {
				t.Fatalf("result = %+v; want %q", res, tc.want)
			}
			if got := al.severities(); got[alert.Warning] != 1 || got[alert.Critical] != 0 {
				t.Fatalf("alerts = %v; want one warning", got)
			}
		})
	}
}

// TestCheckCoreFork: a witness checks the core's signed head against its
// own mirror: the same history agrees (at its size, and ahead of it by a
// consistency proof); a head of a rewritten journal at a size the mirror
// holds, or ahead of it, is a fork.
func TestCheckCoreFork(t *testing.T) {
	coreHead := func(j *journal.Journal, s *tree.Signer) http.Handler {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /v1/journal/head", func(w http.ResponseWriter, r *http.Request) {
			note, _ := s.Sign(j.TreeHead())
			json.NewEncoder(w).Encode(map[string]string{"signed_head": string(note)})
		})
		mux.HandleFunc("GET /v1/journal/consistency", func(w http.ResponseWriter, r *http.Request) {
			var from, to uint64
			json.Unmarshal([]byte(r.URL.Query().Get("from")), &from)
			json.Unmarshal([]byte(r.URL.Query().Get("to")), &to)
			p, err := j.ConsistencyProof(from, to)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			json.NewEncoder(w).Encode(p)
		})
		return mux
	}
	skey, _ := tree.GenerateKey("kinko.journal/0000000000000001")
	s, _ := tree.NewSigner(skey)
	for _, tc := range []struct {
		name   string
		more   uint64 // entries the core has beyond the mirror
		damage func(string) error
		fork   bool
	}{
		{"same history", 0, nil, false},
		{"ahead on the same history", 20, nil, false},
		{"rewritten, same size", 0, func(d string) error {
			if err := journaltest.Rewrite(d, 10, reseal); err != nil {
				return err
			}
			return journaltest.DropTree(d)
		}, true},
		{"rewritten and ahead", 20, func(d string) error {
			if err := journaltest.Rewrite(d, 10, reseal); err != nil {
				return err
			}
			return journaltest.DropTree(d)
		}, true},
		{"cut short", 0, func(d string) error { return journaltest.Truncate(d, 5) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, 300)
			appendN(t, p.core, 300+tc.more, 0)
			if tc.damage != nil {
				p.reopen(t, tc.damage)
			}
			srv := httptest.NewServer(coreHead(p.core, s))
			defer srv.Close()
			err := witness.CheckCore(context.Background(), srv.Client(), srv.URL, src{p.mirror})
			var fe *witness.ForkError
			if tc.fork != errors.As(err, &fe) {
				t.Fatalf("CheckCore = %v; want a fork: %v", err, tc.fork)
			}
			if !tc.fork && err != nil {
				t.Fatalf("CheckCore = %v", err)
			}
		})
	}
}

// TestHeadsFile: pages saved from a witness, one after another, or one
// head, read back; anything else refused.
func TestHeadsFile(t *testing.T) {
	p := newPair(t, 10)
	notes, err := witness.FetchHeads(context.Background(), p.srv.Client(), p.srv.URL, 1)
	if err != nil || len(notes) != 10 {
		t.Fatalf("fetched %d heads, %v", len(notes), err)
	}
	page := func(from uint64) string {
		res, err := http.Get(fmt.Sprintf("%s/witness/heads?from=%d", p.srv.URL, from))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	got, err := witness.ParseHeadsFile([]byte(page(1) + page(5)))
	if err != nil || len(got) != 10+6 {
		t.Fatalf("two pages = %d heads, %v", len(got), err)
	}
	newest, _, _ := p.w.Newest()
	if got, err := witness.ParseHeadsFile(newest); err != nil || len(got) != 1 {
		t.Fatalf("one head = %d, %v", len(got), err)
	}
	for _, bad := range []string{"", "{}", `{"heads":["x"],"extra":1}`, "not a head\n"} {
		if _, err := witness.ParseHeadsFile([]byte(bad)); err == nil {
			t.Errorf("ParseHeadsFile(%q) accepted", bad)
		}
	}
}
