package core

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"kinko/internal/journal"
)

// benchDir is a data directory named by KINKO_BENCH_DIR (a copy of one a
// drill made: `kinko drill coincheck --customers 1700000 --data D`, then
// D/core); benchmarks that need it skip without it, so `make test` never
// builds large journals.
func benchDir(b *testing.B) string {
	d := os.Getenv("KINKO_BENCH_DIR")
	if d == "" {
		b.Skip("KINKO_BENCH_DIR is not set")
	}
	return d
}

// benchAt is the entry KINKO_BENCH_AT names (default: the head).
func benchAt(b *testing.B, j *journal.Journal) uint64 {
	head, _, _ := j.Head()
	if s := os.Getenv("KINKO_BENCH_AT"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	return head
}

// BenchmarkStateAtDir rebuilds the state at KINKO_BENCH_AT in the data
// directory KINKO_BENCH_DIR and takes the holdings of asset 2 (BTC in a
// drill's exchange): what `kinko holdings` does before it writes.
func BenchmarkStateAtDir(b *testing.B) {
	dir := benchDir(b)
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	at := benchAt(b, j)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		st, err := StateAt(context.Background(), dir, j, at)
		if err != nil {
			b.Fatal(err)
		}
		if len(st.Holdings(2)) == 0 {
			b.Fatal("no holders")
		}
	}
}
