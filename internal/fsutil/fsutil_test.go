package fsutil

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFile: the file is replaced whole; a write that cannot happen
// leaves the old file and no temporary file behind.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "books.json")
	for _, s := range []string{"one", "two"} {
		if err := WriteFile(p, "", []byte(s), true); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != s {
			t.Fatalf("file = %q; want %q", b, s)
		}
	}
	if err := WriteFile(p, filepath.Join(dir, "missing"), []byte("three"), false); err == nil {
		t.Fatal("a write through a missing directory succeeded")
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("after a failed write the file = %q", b)
	}
	if err := os.Mkdir(filepath.Join(dir, "dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(dir, "dir"), "", []byte("x"), false); err == nil {
		t.Fatal("renaming over a directory succeeded")
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "books.json" && e.Name() != "dir" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}
