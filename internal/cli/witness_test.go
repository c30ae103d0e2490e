package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"kinko/internal/core"
	"kinko/internal/journal"
	"kinko/internal/journal/journaltest"
	"kinko/internal/journal/tree"
	"kinko/internal/ledger"
	"kinko/internal/mirror"
	"kinko/internal/witness"
)

// witnessOf is a witness of the journal in data directory dir, as the
// co-signer's host keeps one: a mirror of every entry, verified and
// replayed, its heads signed at every size, served over HTTP. It returns
// the witness's URL, the file with its public key, and the file of its
// heads saved from GET /witness/heads.
func witnessOf(t *testing.T, dir string) (url, pub, saved string) {
	t.Helper()
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	m, err := mirror.Open(filepath.Join(state, "journal"), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Scan(1, func(e journal.Entry) error { _, err := m.Ingest(e.Encode()); return err }); err != nil {
		t.Fatal(err)
	}
	j.Close()
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	w, err := witness.Open(state, "cosigner", m, true)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(func() { srv.Close(); w.Close(); m.Close() })
	files := t.TempDir()
	pub = filepath.Join(files, "witness.pub")
	if err := os.WriteFile(pub, []byte(w.VerifierKey()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(srv.URL + "/witness/heads?from=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	saved = filepath.Join(files, "heads.json")
	if err := os.WriteFile(saved, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return srv.URL, pub, saved
}

// TestJournalVerifyWitness: the journal checked against the heads its
// witness kept, fetched from the witness or from a file saved from it:
// each attack by whoever holds the core's host is named to the entry,
// the last one (entries and tree both rewritten) only by the witness's
// heads; heads checked with another key are refused.
func TestJournalVerifyWitness(t *testing.T) {
	reseal := func(seq uint64, kind uint16, p []byte) []byte {
		if seq != 10 {
			return p
		}
		return core.CreateCustomers{IDs: []ledger.OwnerID{ledger.OwnerID(777777)}}.AppendPayload(nil)
	}
	for _, c := range []struct {
		name   string
		attack func(jdir string) error
		want   string
	}{
		{"intact", nil, "holds the 300 heads of kinko.witness/cosigner/"},
		{"newest three truncated", func(d string) error { return journaltest.Truncate(d, 3) }, "journal BAD at entry 298: missing: the journal ends at 297, the head has 298 entries"},
		{"middle entry deleted", func(d string) error { return journaltest.Delete(d, 150) }, "journal BAD at entry 150"},
		{"byte flipped", func(d string) error { return journaltest.FlipBit(d, 77, 8*30+2) }, "journal BAD at entry 77"},
		{"rewritten from entry 10", func(d string) error { return journaltest.Rewrite(d, 10, reseal) }, "journal BAD at entry 10: does not match the journal's Merkle tree"},
		{"rewritten from entry 10 and the tree rebuilt", func(d string) error {
			if err := journaltest.Rewrite(d, 10, reseal); err != nil {
				return err
			}
			return journaltest.DropTree(d)
		}, "journal BAD at entry 10: it is not the entry the head of 10 entries signed (the head of 9 still matches)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			journalWith(t, dir, 0, 300)
			url, pub, saved := witnessOf(t, dir)
			if c.attack != nil {
				if err := c.attack(filepath.Join(dir, "journal")); err != nil {
					t.Fatal(err)
				}
			}
			for _, src := range []string{url, saved} {
				out, code := run(t, "journal", "verify", "--data", dir, "--witness", src, "--witness-key", pub)
				wantCode := 2
				if c.attack == nil {
					wantCode = 0
				}
				if code != wantCode || !strings.Contains(out, c.want) || strings.Contains(out, "NOT checked") {
					t.Fatalf("verify --witness %s = %d %q; want %d %q", src, code, out, wantCode, c.want)
				}
			}
		})
	}
	// Heads checked with another key (of the same name) are refused; none
	// given, the output says the signatures were not checked.
	dir := filepath.Join(t.TempDir(), "data")
	journalWith(t, dir, 0, 20)
	url, pub, _ := witnessOf(t, dir)
	b, _ := os.ReadFile(pub)
	name, _, _ := strings.Cut(strings.TrimSpace(string(b)), "+")
	skey, _ := tree.GenerateKey(name)
	s, _ := tree.NewSigner(skey)
	other := filepath.Join(t.TempDir(), "other.pub")
	os.WriteFile(other, []byte(s.VerifierKey()), 0o644)
	if out, code := run(t, "journal", "verify", "--data", dir, "--witness", url, "--witness-key", other); code != 2 || !strings.Contains(out, "REFUSED") {
		t.Fatalf("verify with another key = %d %q", code, out)
	}
	if out, code := run(t, "journal", "verify", "--data", dir, "--witness", url); code != 0 || !strings.Contains(out, "NOT checked") {
		t.Fatalf("verify without a key = %d %q", code, out)
	}
	if out, code := run(t, "journal", "verify", "--data", dir, "--witness", url, "--witness", url, "--witness-key", pub); code == 0 || !strings.Contains(out, "--witness-key") {
		t.Fatalf("two witnesses, one key = %d %q", code, out)
	}
}

// startCoreWith runs `kinko core` with extra flags and returns its base URL
// and what it printed before it was running.
func startCoreWith(t *testing.T, dir string, flags ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	root := NewRoot()
	root.SetArgs(append([]string{"core", "--data", dir, "--addr", "127.0.0.1:0"}, flags...))
	root.SetOut(pw)
	root.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx); pw.Close() }()
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("kinko core: %v", err)
			}
		})
	})
	sc := bufio.NewScanner(pr)
	re := regexp.MustCompile(`http://(127\.0\.0\.1:\d+)/healthz`)
	var said strings.Builder
	for sc.Scan() {
		said.WriteString(sc.Text() + "\n")
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			go io.Copy(io.Discard, pr)
			return "http://" + m[1], said.String()
		}
	}
	t.Fatalf("kinko core printed no address:\n%s", said.String())
	return "", ""
}

func getStatus(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v map[string]any
	json.NewDecoder(res.Body).Decode(&v)
	return res.StatusCode, v
}

// TestWitnessCoreRefuses: a core started with its witness pinned serves
// the journal the witness signed; cut short by three entries, it refuses
// to serve (503, problem+json naming the witness and the head's size;
// /healthz fails) but still shows the evidence (its head); a witness whose
// head does not verify with the pinned key is a warning, and the core
// serves.
func TestWitnessCoreRefuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	journalWith(t, dir, 0, 40)
	url, pub, _ := witnessOf(t, dir)

	base, said := startCoreWith(t, dir, "--witness", url, "--witness-key", pub)
	if !strings.Contains(said, "holds its head of 40 entries") {
		t.Fatalf("core with an agreeing witness said:\n%s", said)
	}
	if code, _ := getStatus(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz with an agreeing witness = %d", code)
	}

	// Another data directory, cut short by three entries.
	cut := filepath.Join(t.TempDir(), "cut")
	journalWith(t, cut, 0, 40)
	url2, pub2, _ := witnessOf(t, cut)
	if err := journaltest.Truncate(filepath.Join(cut, "journal"), 3); err != nil {
		t.Fatal(err)
	}
	base, said = startCoreWith(t, cut, "--witness", url2, "--witness-key", pub2)
	if !strings.Contains(said, "REFUSING to serve") || !strings.Contains(said, url2) {
		t.Fatalf("core on a cut journal said:\n%s", said)
	}
	for _, path := range []string{"/healthz", "/v1/status", "/v1/assets"} {
		code, p := getStatus(t, base+path)
		if code != http.StatusServiceUnavailable || p["witness"] != url2 || p["size"] != float64(40) || !strings.Contains(p["detail"].(string), "missing") {
			t.Fatalf("GET %s on a contradicted journal = %d %v", path, code, p)
		}
	}
	if code, p := getStatus(t, base+"/v1/journal/head"); code != http.StatusOK || p["size"] != float64(37) {
		t.Fatalf("the journal's head (evidence) = %d %v", code, p)
	}

	// The same cut journal, its witness pinned with another key: the
	// witness is not trusted, and the core serves with a warning.
	skey, _ := tree.GenerateKey("kinko.witness/cosigner/0000000000000000")
	s, _ := tree.NewSigner(skey)
	other := filepath.Join(t.TempDir(), "other.pub")
	os.WriteFile(other, []byte(s.VerifierKey()), 0o644)
	cut2 := filepath.Join(t.TempDir(), "cut2")
	journalWith(t, cut2, 0, 40)
	url3, _, _ := witnessOf(t, cut2)
	if err := journaltest.Truncate(filepath.Join(cut2, "journal"), 3); err != nil {
		t.Fatal(err)
	}
	base, said = startCoreWith(t, cut2, "--witness", url3, "--witness-key", other)
	if !strings.Contains(said, "head not trusted") || strings.Contains(said, "REFUSING") {
		t.Fatalf("core with a witness of another key said:\n%s", said)
	}
	if code, _ := getStatus(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz with an untrusted witness = %d", code)
	}
}
