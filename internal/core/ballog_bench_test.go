package core

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"kinko/internal/journal"
	"kinko/internal/ledger"
)

// benchHolders is KINKO_HOLDERS (default 20,000: the CI's runs stay small;
// Coincheck's 1,700,000 and 10,000,000 by the environment).
func benchHolders(b *testing.B) int {
	n := 20_000
	if s := os.Getenv("KINKO_HOLDERS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("KINKO_HOLDERS=%q", s)
		}
		n = v
	}
	return n
}

// BenchmarkHoldingsAnyMoment measures holdings of BTC at random moments
// among KINKO_HOLDERS customers, through a running core's HoldingsAt (what
// GET /v1/holdings calls): the newest balance checkpoint before the
// moment and the balance log up to it. The journal is built through the
// core as an exchange's would be: customers, their BTC and yen accounts
// and a BTC deposit each in entries of 8,192; then transfers between
// customers and holds (half as many as customers); then a yen payment to
// every customer (a compensation's execution, in entries of 8,192).
// Snapshots are off: the log needs none. The sub-benchmark "worst" asks
// for the entry before each checkpoint, the longest read of the log.
func BenchmarkHoldingsAnyMoment(b *testing.B) {
	n := benchHolders(b)
	dir := b.TempDir()
	if d := os.Getenv("KINKO_BENCH_TMP"); d != "" {
		dir = filepath.Join(d, "holdings-bench")
		os.RemoveAll(dir)
		defer os.RemoveAll(dir)
	}
	c, err := Open(context.Background(), Config{Dir: dir, NoSync: true, SnapshotEvery: 1 << 62, SnapshotBytes: 1 << 62, SnapshotApplyTime: 1 << 62,
		ReserveAccounts: 3*n + 16, ReserveTransfers: 5*n/2 + 16})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	must := func(cmd Command) {
		o, err := c.Submit(ctx, t0, cmd)
		if err == nil {
			err = o.EventErr()
		}
		if err != nil {
			b.Fatalf("%s: %v", cmd.Kind(), err)
		}
	}
	const btcID, jpyID = 1, 2
	must(CreateAssets{Assets: []ledger.Asset{{ID: btcID, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}, {ID: jpyID, Code: "JPY", Class: ledger.ClassFiat}}})
	eqB := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: btcID, Kind: ledger.KindEquity}
	eqJ := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: jpyID, Kind: ledger.KindEquity}
	must(CreateAccounts{Keys: []ledger.AccountKey{eqB, eqJ}})
	began := time.Now()
	seedHolders(must, n, btcID, jpyID, eqB, 1, 1000)
	rng := rand.New(rand.NewPCG(19, 1))
	for i := 0; i < n/2; i += ledger.MaxBatch {
		ts := make([]ledger.Transfer, min(ledger.MaxBatch, n/2-i))
		for j := range ts {
			from := ledger.OwnerID(rng.IntN(n) + 1)
			to := ledger.OwnerID(rng.IntN(n) + 1)
			if j%4 == 0 {
				to = from // a hold: available to held
			}
			cr := avail(to, btcID)
			if to == from {
				cr = held(to, btcID)
			}
			ts[j] = ledger.Transfer{ID: ledger.ID{Hi: 2, Lo: uint64(i + j)}, Debit: avail(from, btcID), Credit: cr, Amount: ledger.AmountOf(uint64(rng.IntN(500) + 1))}
		}
		must(CreateTransfers{Transfers: ts})
	}
	for i := 0; i < n; i += ledger.MaxBatch {
		ts := make([]ledger.Transfer, min(ledger.MaxBatch, n-i))
		for j := range ts {
			cu := ledger.OwnerID(i + j + 1)
			ts[j] = ledger.Transfer{ID: ledger.ID{Hi: 3, Lo: uint64(cu)}, Debit: eqJ, Credit: avail(cu, jpyID), Amount: ledger.AmountOf(uint64(cu%1000 + 1))}
		}
		must(CreateTransfers{Transfers: ts})
	}
	head, _, _ := c.Journal().Head()
	// The checkpoints are written in the background: wait for the last.
	for c.ckptRows.Load() == 0 && len(ckptSeqs(dir)) == 0 && time.Since(began) < time.Hour && n > int(ckptRecords) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	cks := ckptSeqs(dir)
	b.Logf("%d holders: %d entries journaled and applied in %v; %d balance checkpoints %v; the applier copied the last one's rows in %v",
		n, head, time.Since(began), len(cks), cks, time.Duration(c.lastCkptCopy.Load()))
	defer c.Close()
	query := func(b *testing.B, at func(i int) uint64) {
		holders := 0
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			h, err := c.HoldingsAt(ctx, "BTC", at(i))
			if err != nil || !h.FromIndex {
				b.Fatal(err, h.FromIndex)
			}
			holders = max(holders, len(h.Holdings))
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
		b.ReportMetric(float64(holders), "holders")
	}
	b.Run("random", func(b *testing.B) {
		r := rand.New(rand.NewPCG(1, 2))
		query(b, func(int) uint64 { return r.Uint64N(head) + 1 })
	})
	b.Run("worst", func(b *testing.B) {
		// The entry before each checkpoint, and the head.
		var seqs []uint64
		for _, s := range cks {
			seqs = append(seqs, s-1)
		}
		seqs = append(seqs, head)
		query(b, func(i int) uint64 { return seqs[i%len(seqs)] })
	})
}

// BenchmarkHoldingsDir takes holdings of BTC at KINKO_BENCH_AT (or, with
// KINKO_BENCH_AT unset, at random entries) in the data directory
// KINKO_BENCH_DIR (a drill's D/core) through HoldingsAt: what `kinko
// holdings` does before it writes.
func BenchmarkHoldingsDir(b *testing.B) {
	dir := benchDir(b)
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	head, _, _ := j.Head()
	r := rand.New(rand.NewPCG(3, 4))
	holders, indexed := 0, 0
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		at := r.Uint64N(head) + 1
		if os.Getenv("KINKO_BENCH_AT") != "" {
			at = benchAt(b, j)
		}
		h, err := HoldingsAt(context.Background(), dir, j, "BTC", at)
		if err != nil {
			b.Fatal(err)
		}
		holders = max(holders, len(h.Holdings))
		if h.FromIndex {
			indexed++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
	b.ReportMetric(float64(holders), "max-holders")
	b.ReportMetric(float64(indexed)/float64(b.N), "from-log")
}
