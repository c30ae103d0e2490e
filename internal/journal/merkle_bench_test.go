package journal_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"kinko/internal/journal"
)

// BenchmarkProofs10M builds a journal of 10,000,000 small entries (16-byte
// payloads, batches of 4,096, NoSync) once, then measures generating proofs
// at that size: an inclusion proof of a random entry in the whole tree
// (entry read and checked, audit path from the tiles), a consistency proof
// from a random older size, and the root at a random older size.
func BenchmarkProofs10M(b *testing.B) {
	const n = 10_000_000
	dir := b.TempDir()
	j, err := journal.Open(dir, journal.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { j.Close() }()
	payload := make([]byte, 16)
	start := time.Now()
	for done := 0; done < n; {
		seq, prev, _ := j.Head()
		batch := j.NewBatch()
		for i := 0; i < 4096 && done < n; i++ {
			e, err := batch.Add(prev, seq+1, int64(seq+1), 4, payload)
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
	b.Logf("built %d entries in %s (%.0f entries/s with the tree)", n, time.Since(start).Round(time.Millisecond), n/time.Since(start).Seconds())
	head := j.TreeHead()
	if head.Size != n {
		b.Fatalf("tree of %d", head.Size)
	}
	b.Run("inclusion", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		b.ReportAllocs()
		for b.Loop() {
			seq := rng.Uint64N(n) + 1
			p, err := j.InclusionProof(seq, n)
			if err != nil {
				b.Fatal(err)
			}
			if len(p.Path) == 0 {
				b.Fatalf("path of %d", len(p.Path))
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/proof")
	})
	b.Run("inclusion-verified", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(3, 4))
		for b.Loop() {
			p, err := j.InclusionProof(rng.Uint64N(n)+1, n)
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Verify(head); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/proof")
	})
	b.Run("consistency", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(5, 6))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := j.ConsistencyProof(rng.Uint64N(n)+1, n); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/proof")
	})
	b.Run("root", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(7, 8))
		for b.Loop() {
			if _, err := j.RootAt(rng.Uint64N(n) + 1); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/root")
	})
	// Open of the 10 M-entry journal: the tree's right edge rebuilt from
	// the stored tiles and the newest entries. Timed a few times, not per
	// b.N.
	j.Close()
	for k := 0; k < 3; k++ {
		t0 := time.Now()
		j, err = journal.Open(dir, journal.Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		if j.TreeHead() != head {
			b.Fatal("reopened tree differs")
		}
		b.Logf("open of %d entries: %s", n, time.Since(t0).Round(time.Microsecond))
		if k < 2 {
			j.Close()
		}
	}
}
