package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"kinko/internal/core"
	"kinko/internal/journal"
	"kinko/internal/journal/journaltest"
	"kinko/internal/journal/tree"
	"kinko/internal/ledger"
)

// journalWith makes a data directory whose journal holds n entries, each
// opening a customer, written by the core.
func journalWith(t *testing.T, dir string, from, n int) {
	t.Helper()
	c, err := core.Open(context.Background(), core.Config{Dir: dir, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := from; i < from+n; i++ {
		if _, err := c.Submit(context.Background(), time.Unix(1_700_000_000+int64(i), 0), core.CreateCustomers{IDs: []ledger.OwnerID{ledger.OwnerID(5000 + i)}}); err != nil {
			t.Fatal(err)
		}
	}
}

// save runs a command that prints a file's content and writes it there.
func save(t *testing.T, path string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := Main(args, &out, &errb); code != 0 {
		t.Fatalf("%v = %d %s%s", args, code, out.String(), errb.String())
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestJournalProofCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	files := t.TempDir()
	f := func(name string) string { return filepath.Join(files, name) }
	journalWith(t, dir, 0, 300)
	// The core made its head key at first start, in its secrets
	// directory outside the data directory, 0600.
	st, err := os.Stat(dir + ".secrets/" + core.HeadKeyName)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("head key: %v %v", st, err)
	}
	save(t, f("pub"), "journal", "key", "--data", dir)
	head := save(t, f("head1"), "journal", "head", "--data", dir)
	if !regexp.MustCompile(`^kinko\.journal/[0-9a-f]{16}\n300\n[A-Za-z0-9+/]{43}=\ntime 1700000299000000000\n\n\x{2014} kinko\.journal/[0-9a-f]{16} \S+\n$`).MatchString(head) {
		t.Fatalf("journal head printed:\n%s", head)
	}
	// An inclusion proof, checked with only the proof, the head and the key.
	save(t, f("proof"), "journal", "prove", "--data", dir, "--seq", "123")
	out, code := run(t, "journal", "check-proof", "--head", f("head1"), "--proof", f("proof"), "--pubkey", f("pub"))
	if code != 0 || !strings.Contains(out, "proof OK: entry 123") || !strings.Contains(out, "create_customers") || strings.Contains(out, "NOT checked") {
		t.Fatalf("check-proof = %d %q", code, out)
	}
	out, code = run(t, "journal", "check-proof", "--head", f("head1"), "--proof", f("proof"))
	if code != 0 || !strings.Contains(out, "signature was NOT checked") {
		t.Fatalf("check-proof without a key = %d %q", code, out)
	}
	// The newest entry's proof also checks the head's time.
	save(t, f("proof300"), "journal", "prove", "--data", dir, "--seq", "300", "--size", "300")
	if out, code = run(t, "journal", "check-proof", "--head", f("head1"), "--proof", f("proof300"), "--pubkey", f("pub")); code != 0 {
		t.Fatalf("check-proof of the newest = %d %q", code, out)
	}
	// A proof with any byte of its entry changed, or any hash of its path,
	// is refused.
	var p journal.InclusionProof
	b, _ := os.ReadFile(f("proof"))
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	for _, mutate := range []func(p *journal.InclusionProof){
		func(p *journal.InclusionProof) { p.Entry[30] ^= 1 },
		func(p *journal.InclusionProof) { p.Path[3][7] ^= 0x80 },
		func(p *journal.InclusionProof) { p.Seq, p.Index = 124, 123 },
		func(p *journal.InclusionProof) { p.Size = 299 },
		func(p *journal.InclusionProof) { p.Path = p.Path[1:] },
	} {
		q := p
		q.Entry = append([]byte(nil), p.Entry...)
		q.Path = append([]tree.Hash(nil), p.Path...)
		mutate(&q)
		mb, _ := json.Marshal(q)
		os.WriteFile(f("bad"), mb, 0o644)
		if out, code := run(t, "journal", "check-proof", "--head", f("head1"), "--proof", f("bad"), "--pubkey", f("pub")); code != 2 || !strings.Contains(out, "proof BAD") {
			t.Errorf("changed proof = %d %q", code, out)
		}
	}
	// The journal grows; the newer head extends the older.
	journalWith(t, dir, 300, 77)
	save(t, f("head2"), "journal", "head", "--data", dir)
	save(t, f("cons"), "journal", "consistency", "--data", dir, "--from", "300")
	out, code = run(t, "journal", "check-consistency", "--old", f("head1"), "--new", f("head2"), "--proof", f("cons"), "--pubkey", f("pub"))
	if code != 0 || !strings.Contains(out, "proof OK: the head of kinko.journal/") || !strings.Contains(out, "at 377 entries") {
		t.Fatalf("check-consistency = %d %q", code, out)
	}
	// ... and not the other way round, nor with a proof between other sizes.
	if out, code = run(t, "journal", "check-consistency", "--old", f("head2"), "--new", f("head1"), "--proof", f("cons"), "--pubkey", f("pub")); code != 2 {
		t.Fatalf("check-consistency reversed = %d %q", code, out)
	}
	save(t, f("cons2"), "journal", "consistency", "--data", dir, "--from", "299", "--to", "377")
	if out, code = run(t, "journal", "check-consistency", "--old", f("head1"), "--new", f("head2"), "--proof", f("cons2"), "--pubkey", f("pub")); code != 2 {
		t.Fatalf("check-consistency with another proof = %d %q", code, out)
	}
	// The old proof of entry 123 checks against the old head only.
	if out, code = run(t, "journal", "check-proof", "--head", f("head2"), "--proof", f("proof"), "--pubkey", f("pub")); code != 2 {
		t.Fatalf("check-proof against another head = %d %q", code, out)
	}
	// A head signed with another key, and one for another origin signed
	// with this key, are refused.
	other := filepath.Join(t.TempDir(), "other")
	journalWith(t, other, 0, 300)
	save(t, f("otherhead"), "journal", "head", "--data", other)
	for _, args := range [][]string{
		{"journal", "check-proof", "--head", f("otherhead"), "--proof", f("proof"), "--pubkey", f("pub")},
		{"journal", "verify", "--data", dir, "--head", f("otherhead")},
	} {
		if out, code := run(t, args...); code != 2 || !strings.Contains(out, "head REFUSED") || !strings.Contains(out, "not signed by the log's key") {
			t.Errorf("%v = %d %q", args, code, out)
		}
	}
	s, err := core.LoadHeadSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	hd, _ := tree.ParseHead([]byte(head))
	hd.Origin = "kinko.journal/elsewhere"
	note, err := s.SignText(hd.Text())
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(f("elsewhere"), note, 0o644)
	if out, code := run(t, "journal", "check-proof", "--head", f("elsewhere"), "--proof", f("proof"), "--pubkey", f("pub")); code != 2 || !strings.Contains(out, "head is for another log") {
		t.Errorf("head of another origin = %d %q", code, out)
	}
	// verify --head: the journal holds the older head unchanged.
	out, code = run(t, "journal", "verify", "--data", dir, "--head", f("head1"), "--pubkey", f("pub"))
	if code != 0 || !strings.Contains(out, "journal OK: 377 entries") || !strings.Contains(out, "at 300 entries") {
		t.Fatalf("verify --head = %d %q", code, out)
	}
	// Bad requests.
	for _, bad := range [][]string{
		{"journal", "prove", "--data", dir, "--seq", "0"},
		{"journal", "prove", "--data", dir, "--seq", "378"},
		{"journal", "prove", "--data", dir, "--seq", "10", "--size", "5"},
		{"journal", "consistency", "--data", dir, "--from", "9", "--to", "8"},
		{"journal", "consistency", "--data", dir, "--from", "1", "--to", "400"},
		{"journal", "check-proof", "--head", f("head1"), "--proof", f("head1")},
		{"journal", "check-proof", "--head", f("proof"), "--proof", f("proof")},
	} {
		if out, code := run(t, bad...); code == 0 {
			t.Errorf("%v = 0 %q", bad, out)
		}
	}
}

// TestJournalVerifyHeadAttacks takes a signed head, then attacks the
// journal as an operator holding the core's host would; verify --head
// against the earlier head catches each and names the entry.
func TestJournalVerifyHeadAttacks(t *testing.T) {
	reseal := func(seq uint64, kind uint16, p []byte) []byte {
		if seq != 10 {
			return p
		}
		return core.CreateCustomers{IDs: []ledger.OwnerID{ledger.OwnerID(777777)}}.AppendPayload(nil)
	}
	cases := []struct {
		name    string
		entries int
		attack  func(jdir string) error
		want    string
		plainOK bool // a plain verify (no head) passes
	}{
		{"newest three truncated", 300, func(d string) error { return journaltest.Truncate(d, 3) }, "journal BAD at entry 298: missing", true},
		{"newest three truncated across a tile", 258, func(d string) error { return journaltest.Truncate(d, 3) }, "journal BAD at entry 256", false},
		{"middle entry deleted", 300, func(d string) error { return journaltest.Delete(d, 150) }, "journal BAD at entry 150", false},
		{"byte flipped", 300, func(d string) error { return journaltest.FlipBit(d, 77, 8*30+2) }, "journal BAD at entry 77", false},
		{"rewritten from entry 10, every later hash recomputed", 300, func(d string) error { return journaltest.Rewrite(d, 10, reseal) }, "journal BAD at entry 10: does not match the journal's Merkle tree", false},
		{"rewritten from entry 10 and the tree rebuilt", 300, func(d string) error {
			if err := journaltest.Rewrite(d, 10, reseal); err != nil {
				return err
			}
			return journaltest.DropTree(d)
		}, "journal BAD: its first 300 entries are not the history the head signed", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			journalWith(t, dir, 0, c.entries)
			headFile := filepath.Join(t.TempDir(), "head")
			save(t, headFile, "journal", "head", "--data", dir)
			pub := filepath.Join(t.TempDir(), "pub")
			save(t, pub, "journal", "key", "--data", dir)
			if out, code := run(t, "journal", "verify", "--data", dir, "--head", headFile, "--pubkey", pub); code != 0 {
				t.Fatalf("verify --head before the attack = %d %q", code, out)
			}
			if err := c.attack(filepath.Join(dir, "journal")); err != nil {
				t.Fatal(err)
			}
			out, code := run(t, "journal", "verify", "--data", dir, "--head", headFile, "--pubkey", pub)
			t.Logf("verify --head: %s", out)
			if code != 2 || !strings.Contains(out, c.want) {
				t.Fatalf("verify --head after the attack = %d %q; want %q", code, out, c.want)
			}
			out, code = run(t, "journal", "verify", "--data", dir)
			if (code == 0) != c.plainOK {
				t.Fatalf("plain verify after the attack = %d %q", code, out)
			}
		})
	}
	// Rewritten with the tree rebuilt: heads saved along the way narrow the
	// first entry changed, down to the entry when two heads bracket it.
	dir := filepath.Join(t.TempDir(), "data")
	files := t.TempDir()
	var heads []string
	for i, n := range []int{5, 4, 1, 290} {
		journalWith(t, dir, 5+len(heads)*100, n)
		heads = append(heads, filepath.Join(files, strconv.Itoa(i)))
		save(t, heads[i], "journal", "head", "--data", dir)
	}
	// Heads at 5, 9, 10 and 300 entries.
	if err := journaltest.Rewrite(filepath.Join(dir, "journal"), 10, reseal); err != nil {
		t.Fatal(err)
	}
	if err := journaltest.DropTree(filepath.Join(dir, "journal")); err != nil {
		t.Fatal(err)
	}
	out, code := run(t, "journal", "verify", "--data", dir, "--head", heads[3], "--head", heads[0])
	if code != 2 || !strings.Contains(out, "while its first 5 are the head of 5's: the first entry changed is one of 6 to 300") {
		t.Fatalf("verify with heads at 5 and 300 = %d %q", code, out)
	}
	out, code = run(t, "journal", "verify", "--data", dir, "--head", heads[3], "--head", heads[0], "--head", heads[1], "--head", heads[2])
	if code != 2 || !strings.Contains(out, "journal BAD at entry 10: it is not the entry the head of 10 entries signed (the head of 9 still matches)") {
		t.Fatalf("verify with heads at 5, 9, 10 and 300 = %d %q", code, out)
	}
}

// TestJournalHeadRefusesBadTree changes a stored hash of the tree: no head
// is signed over it, and the entry it covers is named.
func TestJournalHeadRefusesBadTree(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	journalWith(t, dir, 0, 300)
	db, err := pebble.Open(filepath.Join(dir, "journal"), &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key := []byte{'t', 0, 0, 0, 0, 0, 0, 0, 0, 0} // tile 0/0: the leaves of entries 1-256
	v, c, err := db.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	b := append([]byte(nil), v...)
	c.Close()
	b[41*32] ^= 1 // entry 42's leaf
	if err := db.Set(key, b, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out, code := run(t, "journal", "head", "--data", dir)
	if code != 2 || !strings.Contains(out, "journal BAD at entry 42") || !strings.Contains(out, "no head signed") || strings.Contains(out, "\u2014") {
		t.Fatalf("journal head over a changed tree = %d %q", code, out)
	}
}

// startCore runs `kinko core` on a free port and returns its base URL; it
// stops when the test ends.
func startCore(t *testing.T, dir string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	root := NewRoot()
	root.SetArgs([]string{"core", "--data", dir, "--addr", "127.0.0.1:0"})
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
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			go io.Copy(io.Discard, pr)
			return "http://" + m[1]
		}
	}
	t.Fatal("kinko core printed no address")
	return ""
}

// TestJournalReadsWhileCoreRuns reads a running core's head and proofs,
// from its data directory (a copy of the journal it keeps locked) and
// through its API.
func TestJournalReadsWhileCoreRuns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	files := t.TempDir()
	f := func(name string) string { return filepath.Join(files, name) }
	journalWith(t, dir, 0, 40)
	save(t, f("pub"), "journal", "key", "--data", dir)
	save(t, f("old"), "journal", "head", "--data", dir)
	base := startCore(t, dir)
	// The data directory reads too while the core runs (a copy of its
	// journal): the same head as the core's.
	local := save(t, f("local-head"), "journal", "head", "--data", dir)
	head := save(t, f("head"), "journal", "head", "--core", base)
	if lh, err := tree.ParseHead([]byte(local)); err != nil || lh.Size != 40 {
		t.Fatalf("head from the running core's directory = %q %v", local, err)
	}
	if h, err := tree.ParseHead([]byte(head)); err != nil || h.Size != 40 {
		t.Fatalf("head from the core = %q %v", head, err)
	}
	tok := filepath.Join(dir+".secrets", "stream.token")
	save(t, f("proof"), "journal", "prove", "--core", base, "--seq", "7", "--stream-token-file", tok)
	if out, code := run(t, "journal", "check-proof", "--head", f("head"), "--proof", f("proof"), "--pubkey", f("pub")); code != 0 || !strings.Contains(out, "proof OK: entry 7") {
		t.Fatalf("check-proof of the core's proof = %d %q", code, out)
	}
	if out, code := run(t, "journal", "prove", "--core", base, "--seq", "7"); code == 0 || !strings.Contains(out, "401") {
		t.Fatalf("prove without the stream token = %d %q", code, out)
	}
	if out, code := run(t, "journal", "prove", "--core", base, "--seq", "41", "--stream-token-file", tok); code == 0 || !strings.Contains(out, "400") {
		t.Fatalf("prove beyond the journal = %d %q", code, out)
	}
	save(t, f("cons"), "journal", "consistency", "--core", base, "--from", "0", "--to", "40")
	if out, code := run(t, "journal", "check-consistency", "--old", f("old"), "--new", f("head"), "--proof", f("cons"), "--pubkey", f("pub")); code != 2 {
		t.Fatalf("a proof from 0 against a head of 40 = %d %q", code, out)
	}
	save(t, f("cons"), "journal", "consistency", "--core", base, "--from", "40")
	if out, code := run(t, "journal", "check-consistency", "--old", f("old"), "--new", f("head"), "--proof", f("cons"), "--pubkey", f("pub")); code != 0 {
		t.Fatalf("check-consistency of the core's heads = %d %q", code, out)
	}
	if out, code := run(t, "journal", "consistency", "--core", base, "--from", strconv.Itoa(41)); code == 0 {
		t.Fatalf("consistency beyond the journal = %d %q", code, out)
	}
}
