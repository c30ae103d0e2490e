package ledger

import (
	"math/rand/v2"
	"runtime"
	"testing"
)

// benchLedger returns a ledger with n funded customer accounts of one asset.
func benchLedger(b *testing.B, n int, transfers int) (*Ledger, []AccountKey) {
	l := New()
	l.Reserve(n+1, transfers+n)
	l.CreateAssets([]Asset{{ID: 1, Code: "BTC", Decimals: 8, Class: ClassChain}}, nil)
	w := AccountKey{Owner: OwnerHouseMin, Asset: 1, Kind: KindWallet}
	l.CreateAccounts([]AccountKey{w}, nil)
	keys := make([]AccountKey, n)
	ids := make([]OwnerID, 0, MaxBatch)
	for i := range keys {
		keys[i] = AccountKey{Owner: OwnerID(i + 1), Asset: 1, Kind: KindAvailable}
		ids = append(ids, keys[i].Owner)
		if len(ids) == MaxBatch || i == n-1 {
			l.CreateCustomers(ids, nil)
			ids = ids[:0]
		}
	}
	for i := 0; i < n; i += MaxBatch {
		l.CreateAccounts(keys[i:min(i+MaxBatch, n)], nil)
	}
	fund := make([]Transfer, 0, MaxBatch)
	for i, k := range keys {
		fund = append(fund, Transfer{ID: ID{Hi: 1, Lo: uint64(i)}, Debit: w, Credit: k, Amount: AmountOf(1 << 40)})
		if len(fund) == MaxBatch || i == n-1 {
			if res := l.CreateTransfers(fund, 0, nil); len(res) > 0 {
				b.Fatal(res[0].Code)
			}
			fund = fund[:0]
		}
	}
	return l, keys
}

// BenchmarkCreateTransfers measures the ledger's apply of transfers in
// memory, in batches of 8,192 between 100,000 accounts: transfers/s and
// allocations per transfer.
func BenchmarkCreateTransfers(b *testing.B) {
	const accounts = 100_000
	l, keys := benchLedger(b, accounts, b.N)
	rng := rand.New(rand.NewPCG(1, 2))
	batch := make([]Transfer, MaxBatch)
	for i := range batch {
		batch[i] = Transfer{Debit: keys[rng.IntN(accounts)], Credit: keys[rng.IntN(accounts)], Amount: AmountOf(uint64(rng.IntN(1000) + 1)), Code: 7}
		if batch[i].Debit == batch[i].Credit {
			batch[i].Credit = keys[(rng.IntN(accounts-1)+1+int(batch[i].Debit.Owner))%accounts]
		}
	}
	results := make([]Result, 0, MaxBatch)
	next := uint64(1)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(MaxBatch, b.N-done)
		b.StopTimer()
		for i := 0; i < n; i++ {
			batch[i].ID = ID{Hi: 2, Lo: next}
			next++
		}
		b.StartTimer()
		results = l.CreateTransfers(batch[:n], 1, results[:0])
		if len(results) > 0 {
			b.Fatalf("event %d: %v", results[0].Index, results[0].Code)
		}
		done += n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
}

// BenchmarkAccountMemory creates 10,000,000 accounts and reports the heap
// bytes each costs (the account, its index entry, its customer).
func BenchmarkAccountMemory(b *testing.B) {
	const n = 10_000_000
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		l := New()
		l.CreateAssets([]Asset{{ID: 1, Code: "BTC", Decimals: 8, Class: ClassChain}}, nil)
		ids := make([]OwnerID, 0, MaxBatch)
		keys := make([]AccountKey, 0, MaxBatch)
		for c := 1; c <= n; c++ {
			ids = append(ids, OwnerID(c))
			keys = append(keys, AccountKey{Owner: OwnerID(c), Asset: 1, Kind: KindAvailable})
			if len(ids) == MaxBatch || c == n {
				l.CreateCustomers(ids, nil)
				l.CreateAccounts(keys, nil)
				ids, keys = ids[:0], keys[:0]
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if l.AccountCount() != n {
			b.Fatalf("%d accounts", l.AccountCount())
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/account")
		runtime.KeepAlive(l)
	}
}
