package journal

import (
	"path/filepath"
	"testing"
)

// TestOpenSnapshotWhileOpen: a journal another holder keeps open (as a
// running core does) is read through a copy with the same head, which
// later appends to the original do not change; the original is read
// directly when free.
func TestOpenSnapshotWhileOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	w, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 50 {
		if _, err := w.Append(int64(i+1), 1, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("a second Open of a held journal succeeded; the test means nothing")
	}
	r, err := OpenSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	seq, hash, _ := r.Head()
	ws, wh, _ := w.Head()
	if seq != 50 || seq != ws || hash != wh {
		t.Fatalf("copy's head %d %x; the journal's %d %x", seq, hash, ws, wh)
	}
	n := 0
	if err := r.Scan(1, func(e Entry) error { n++; return nil }); err != nil || n != 50 {
		t.Fatalf("scan of the copy: %d entries, %v", n, err)
	}
	if _, err := w.Append(51, 1, nil); err != nil {
		t.Fatal(err)
	}
	if s, _, _ := r.Head(); s != 50 {
		t.Fatalf("the copy moved to %d", s)
	}
	r.Close()
	w.Close()
	f, err := OpenSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.cleanup != nil {
		t.Fatal("a free journal was copied")
	}
	if s, _, _ := f.Head(); s != 51 {
		t.Fatalf("free journal head %d", s)
	}
}
