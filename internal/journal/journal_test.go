package journal_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"kinko/internal/journal"
	"kinko/internal/journal/journaltest"
)

func appendN(t *testing.T, j *journal.Journal, n int) []journal.Entry {
	t.Helper()
	var out []journal.Entry
	for i := 0; i < n; i++ {
		e, err := j.Append(int64(1000+i), 7, []byte{byte(i), 1, 2, 3})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func open(t *testing.T, dir string) *journal.Journal {
	t.Helper()
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestSealDecodeRoundTrip(t *testing.T) {
	var prev journal.Hash
	prev[0] = 9
	payload := []byte("hello")
	buf := make([]byte, journal.EncodedSize(len(payload)))
	e := journal.Seal(buf, prev, 42, -5, 3, payload)
	d, err := journal.Decode(buf)
	if err != nil {
		t.Fatal(err)
	}
	if d.Seq != 42 || d.Time != -5 || d.Kind != 3 || !bytes.Equal(d.Payload, payload) || d.Prev != prev || d.Hash != e.Hash {
		t.Fatalf("Decode(Seal(...)) = %+v; want %+v", d, e)
	}
	if !bytes.Equal(d.Encode(), buf) {
		t.Fatal("Encode(Decode(b)) != b")
	}
}

func TestChainAndReopen(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir)
	es := appendN(t, j, 10)
	for i := 1; i < len(es); i++ {
		if es[i].Prev != es[i-1].Hash {
			t.Fatalf("entry %d does not link to %d", es[i].Seq, es[i-1].Seq)
		}
	}
	j.Close()
	j = open(t, dir)
	defer j.Close()
	seq, h, tm := j.Head()
	if seq != 10 || h != es[9].Hash || tm != es[9].Time {
		t.Fatalf("Head() after reopen = %d %s %d", seq, h, tm)
	}
	r, err := j.Verify(nil)
	if err != nil || r.Entries != 10 {
		t.Fatalf("Verify() = %+v, %v", r, err)
	}
	// Time search.
	for _, c := range []struct {
		t    int64
		want uint64
	}{{999, 0}, {1000, 1}, {1004, 5}, {5000, 10}} {
		if got, err := j.SeqAtTime(c.t); err != nil || got != c.want {
			t.Errorf("SeqAtTime(%d) = %d, %v; want %d", c.t, got, err, c.want)
		}
	}
}

func TestVerifyNamesBadEntry(t *testing.T) {
	cases := []struct {
		name   string
		damage func(dir string) error
		seq    uint64
	}{
		{"flipped payload bit", func(dir string) error { return journaltest.FlipBit(dir, 4, 8*25) }, 4},
		{"flipped hash bit", func(dir string) error { return journaltest.FlipBit(dir, 6, -1+8*(journal.EncodedSize(4))) }, 6},
		{"truncated middle", func(dir string) error { return journaltest.Delete(dir, 5) }, 5},
		{"garbage", func(dir string) error { return journaltest.Replace(dir, 3, []byte{1, 2, 3}) }, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			j := open(t, dir)
			appendN(t, j, 8)
			j.Close()
			if err := c.damage(dir); err != nil {
				t.Fatal(err)
			}
			// The damaged entry is among the newest 255, from which Open
			// rebuilds the tree's edge: Open or Verify names it.
			j, err := journal.Open(dir, journal.Options{})
			if err == nil {
				defer j.Close()
				_, err = j.Verify(nil)
			}
			var bad *journal.BadEntryError
			if !errors.As(err, &bad) || bad.Seq != c.seq {
				t.Fatalf("Open() or Verify() = %v; want bad entry %d", err, c.seq)
			}
		})
	}
}

func TestVerifyRejectsRelinkedEntry(t *testing.T) {
	// An attacker rewrites entry 3 and recomputes its own hash: entry 4
	// no longer links to it.
	dir := t.TempDir()
	j := open(t, dir)
	es := appendN(t, j, 6)
	j.Close()
	buf := make([]byte, journal.EncodedSize(4))
	journal.Seal(buf, es[1].Hash, 3, es[2].Time, 7, []byte{9, 9, 9, 9})
	if err := journaltest.Replace(dir, 3, buf); err != nil {
		t.Fatal(err)
	}
	j = open(t, dir)
	defer j.Close()
	_, err := j.Verify(nil)
	var bad *journal.BadEntryError
	if !errors.As(err, &bad) || bad.Seq != 4 {
		t.Fatalf("Verify() = %v; want entry 4 named", err)
	}
}

func TestVerifyChecksPayload(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir)
	defer j.Close()
	appendN(t, j, 5)
	_, err := j.Verify(func(kind uint16, p []byte) error {
		if p[0] == 2 {
			return errors.New("nope")
		}
		return nil
	})
	var bad *journal.BadEntryError
	if !errors.As(err, &bad) || bad.Seq != 3 {
		t.Fatalf("Verify() = %v; want entry 3", err)
	}
}

func TestNewestEntryDamagedRefusesOpen(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir)
	appendN(t, j, 3)
	j.Close()
	if err := journaltest.FlipBit(dir, 3, 30); err != nil {
		t.Fatal(err)
	}
	_, err := journal.Open(dir, journal.Options{})
	var bad *journal.BadEntryError
	if !errors.As(err, &bad) || bad.Seq != 3 {
		t.Fatalf("Open() = %v; want bad entry 3", err)
	}
}

// TestTornFinalBatchDropped cuts the tail of the write-ahead log, as a crash
// in the middle of the last write would: the last batch (never
// acknowledged) is gone, everything before it is intact and verifies.
func TestTornFinalBatchDropped(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir)
	appendN(t, j, 5)
	big := bytes.Repeat([]byte{7}, 64<<10)
	if _, err := j.Append(2000, 7, big); err != nil {
		t.Fatal(err)
	}
	j.Close()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(logs) == 0 {
		t.Fatal("no WAL file found")
	}
	sort.Strings(logs)
	wal := logs[len(logs)-1]
	st, err := os.Stat(wal)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(wal, st.Size()-(32<<10)); err != nil {
		t.Fatal(err)
	}
	j, err = journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatalf("Open() after a torn tail = %v", err)
	}
	defer j.Close()
	if seq, _, _ := j.Head(); seq != 5 {
		t.Fatalf("head after torn tail = %d; want 5", seq)
	}
	if r, err := j.Verify(nil); err != nil || r.Entries != 5 {
		t.Fatalf("Verify() = %+v, %v", r, err)
	}
	// The journal continues from the intact head.
	if e, err := j.Append(3000, 7, []byte{1}); err != nil || e.Seq != 6 {
		t.Fatalf("Append after recovery = %d, %v", e.Seq, err)
	}
}

func FuzzDecode(f *testing.F) {
	buf := make([]byte, journal.EncodedSize(3))
	journal.Seal(buf, journal.Hash{}, 1, 2, 3, []byte{4, 5, 6})
	f.Add(buf)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := journal.Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Encode(), b) {
			t.Fatal("Encode(Decode(b)) != b")
		}
	})
}

// BenchmarkScan measures reading and checking the chain: entries/s.
func BenchmarkScan(b *testing.B) {
	dir := b.TempDir()
	j, err := journal.Open(dir, journal.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	const n = 1_000_000
	payload := make([]byte, 90)
	for done := 0; done < n; {
		seq, prev, _ := j.Head()
		batch := j.NewBatch()
		for i := 0; i < 4096 && done < n; i++ {
			e, err := batch.Add(prev, seq+1, 1, 4, payload)
			if err != nil {
				b.Fatal(err)
			}
			seq, prev = e.Seq, e.Hash
			done++
		}
		if err := j.Commit(batch); err != nil {
			b.Fatal(err)
		}
		batch.Close()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		count := 0
		if err := j.Scan(1, func(journal.Entry) error { count++; return nil }); err != nil || count != n {
			b.Fatal(err, count)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "entries/s")
	j.Close()
}
