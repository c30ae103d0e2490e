package core

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"kinko/internal/journal"
	"kinko/internal/ledger"
)

const benchAccounts = 100_000

// benchSetup opens a core with benchAccounts funded customer accounts.
func benchSetup(b *testing.B, dir string, noSync bool, transfers int) (*Core, []ledger.AccountKey) {
	c, err := Open(context.Background(), Config{Dir: dir, NoSync: noSync, SnapshotEvery: 1 << 62, SnapshotBytes: 1 << 62, SnapshotApplyTime: 1 << 62,
		ReserveAccounts: benchAccounts + 1, ReserveTransfers: transfers + benchAccounts})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	sub := func(cmd Command) {
		o, err := c.Submit(ctx, t0, cmd)
		if err != nil || o.EventErr() != nil {
			b.Fatal(err, o.EventErr())
		}
	}
	sub(CreateAssets{Assets: []ledger.Asset{{ID: 4, Code: "XEM", Decimals: 6, Class: ledger.ClassChain}}})
	keys := make([]ledger.AccountKey, benchAccounts)
	for i := 0; i < benchAccounts; i += ledger.MaxBatch {
		n := min(ledger.MaxBatch, benchAccounts-i)
		ids := make([]ledger.OwnerID, n)
		for j := range ids {
			ids[j] = ledger.OwnerID(i + j + 1)
			keys[i+j] = custXEM(uint64(i + j + 1))
		}
		sub(CreateCustomers{IDs: ids})
		sub(CreateAccounts{Keys: keys[i : i+n]})
	}
	sub(CreateAccounts{Keys: []ledger.AccountKey{xemWall}})
	for i := 0; i < benchAccounts; i += ledger.MaxBatch {
		n := min(ledger.MaxBatch, benchAccounts-i)
		ts := make([]ledger.Transfer, n)
		for j := range ts {
			ts[j] = ledger.Transfer{ID: ledger.ID{Hi: 1, Lo: uint64(i + j)}, Debit: xemWall, Credit: keys[i+j], Amount: ledger.AmountOf(1 << 40)}
		}
		sub(CreateTransfers{Transfers: ts})
	}
	return c, keys
}

// transferPayloads returns n encoded batches of size transfers each between
// random accounts, with ascending ids from first.
func transferPayloads(keys []ledger.AccountKey, batches, size int, first uint64) [][]byte {
	rng := rand.New(rand.NewPCG(3, 4))
	out := make([][]byte, batches)
	id := first
	for i := range out {
		ts := make([]ledger.Transfer, size)
		for j := range ts {
			d := rng.IntN(len(keys))
			cr := (d + 1 + rng.IntN(len(keys)-1)) % len(keys)
			ts[j] = ledger.Transfer{ID: ledger.ID{Hi: 2, Lo: id}, Debit: keys[d], Credit: keys[cr], Amount: ledger.AmountOf(uint64(rng.IntN(1000) + 1)), Code: 7}
			id++
		}
		out[i] = CreateTransfers{Transfers: ts}.AppendPayload(nil)
	}
	return out
}

// BenchmarkDurableTransfers measures transfers made durable (journaled with
// fsync, hash-chained, applied and acknowledged) per second, in commands of
// 8,192 transfers from 4 concurrent submitters.
func BenchmarkDurableTransfers(b *testing.B) {
	c, keys := benchSetup(b, b.TempDir(), false, b.N+ledger.MaxBatch)
	defer c.Close()
	const size = ledger.MaxBatch
	batches := (b.N + size - 1) / size
	payloads := transferPayloads(keys, batches, size, 1)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	work := make(chan []byte)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				o, err := c.SubmitRaw(ctx, time.Now().UnixNano(), KindCreateTransfers, p)
				if err != nil || len(o.Events) > 0 {
					b.Error(err, o.Events)
					return
				}
			}
		}()
	}
	for _, p := range payloads {
		work <- p
	}
	close(work)
	wg.Wait()
	b.StopTimer()
	n := batches * size
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "transfers/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/transfer")
}

// BenchmarkApplyEntries measures the state machine alone: decode and apply
// journal entries of 8,192 transfers, in memory (no journal I/O).
func BenchmarkApplyEntries(b *testing.B) {
	st := NewState()
	var mj memJournal
	keys := make([]ledger.AccountKey, benchAccounts)
	ids := make([]ledger.OwnerID, benchAccounts)
	for i := range keys {
		ids[i] = ledger.OwnerID(i + 1)
		keys[i] = custXEM(uint64(i + 1))
	}
	st.Ledger.Reserve(benchAccounts+1, b.N+benchAccounts)
	apply := func(cmd Command) {
		e := mj.seal(0, cmd)
		if o := st.Apply(&e); o.EventErr() != nil {
			b.Fatal(o.EventErr())
		}
	}
	apply(CreateAssets{Assets: []ledger.Asset{{ID: 4, Code: "XEM", Decimals: 6, Class: ledger.ClassChain}}})
	apply(CreateAccounts{Keys: []ledger.AccountKey{xemWall}})
	for i := 0; i < benchAccounts; i += ledger.MaxBatch {
		n := min(ledger.MaxBatch, benchAccounts-i)
		apply(CreateCustomers{IDs: ids[i : i+n]})
		apply(CreateAccounts{Keys: keys[i : i+n]})
		ts := make([]ledger.Transfer, n)
		for j := range ts {
			ts[j] = ledger.Transfer{ID: ledger.ID{Hi: 1, Lo: uint64(i + j)}, Debit: xemWall, Credit: keys[i+j], Amount: ledger.AmountOf(1 << 40)}
		}
		apply(CreateTransfers{Transfers: ts})
	}
	const size = ledger.MaxBatch
	batches := (b.N + size - 1) / size
	payloads := transferPayloads(keys, batches, size, 1)
	entries := make([]journal.Entry, batches)
	for i, p := range payloads {
		buf := make([]byte, journal.EncodedSize(len(p)))
		mj.seq++
		entries[i] = journal.Seal(buf, mj.prev, mj.seq, 1, uint16(KindCreateTransfers), p)
		mj.prev = entries[i].Hash
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range entries {
		if o := st.Apply(&entries[i]); len(o.Events) > 0 || o.Err != nil {
			b.Fatal(o.Err, o.Events)
		}
	}
	b.StopTimer()
	n := batches * size
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "transfers/s")
}

// benchReplay journals entries of size transfers each (n transfers in all)
// from the given number of concurrent submitters (one submitter keeps the
// ids ascending; several interleave them), then measures a cold start: open,
// verify the whole chain, replay.
func benchReplay(b *testing.B, size, submitters int) {
	dir := b.TempDir()
	total := 1_000_000
	c, keys := benchSetup(b, dir, true, total)
	ctx := context.Background()
	payloads := transferPayloads(keys, total/size, size, 1)
	var wg sync.WaitGroup
	work := make(chan []byte)
	for w := 0; w < submitters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				if _, err := c.SubmitRaw(ctx, 1, KindCreateTransfers, p); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for _, p := range payloads {
		work <- p
	}
	close(work)
	wg.Wait()
	head, _, _ := c.Journal().Head()
	c.Close()
	// The snapshot the close wrote is removed before every start: each
	// start replays the journal from its first entry.
	none := map[snapshotFile]bool{}
	removeSnapshotsBut(b, dir, none)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := Open(ctx, Config{Dir: dir, SnapshotEvery: 1 << 62, SnapshotBytes: 1 << 62, SnapshotApplyTime: 1 << 62, VerifyAtStart: true, ReserveAccounts: benchAccounts + 1, ReserveTransfers: total + benchAccounts})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if c.lastSnap != 0 {
			b.Fatalf("started from the snapshot at %d; want a replay from the first entry", c.lastSnap)
		}
		c.Close()
		removeSnapshotsBut(b, dir, none)
		b.StartTimer()
	}
	b.StopTimer()
	per := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(head)/per, "entries/s")
	b.ReportMetric(float64(total)/per, "transfers/s")
}

// BenchmarkReplay1 replays a journal of one-transfer entries with ascending
// ids from its first entry (no snapshot), verifying it: the entry rate.
func BenchmarkReplay1(b *testing.B) { benchReplay(b, 1, 1) }

// BenchmarkReplay1Interleaved replays one-transfer entries written by eight
// concurrent submitters, so that ids arrive out of order.
func BenchmarkReplay1Interleaved(b *testing.B) { benchReplay(b, 1, 8) }

// BenchmarkReplay8192 replays a journal of 8,192-transfer entries.
func BenchmarkReplay8192(b *testing.B) { benchReplay(b, ledger.MaxBatch, 4) }
