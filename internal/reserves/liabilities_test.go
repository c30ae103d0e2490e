package reserves

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"kinko/internal/custody"
	"kinko/internal/ledger"
)

// liabLedger returns a ledger of n customers of BTC (asset 2) and JPY
// (asset 3): every customer has an available BTC account funded from the
// cold wallet, one in five part of it held (a withdrawal in flight), one in
// seven a JPY account; the house has its own BTC.
func liabLedger(tb testing.TB, n int) (*ledger.Ledger, *custody.State) {
	l := ledger.New()
	l.Reserve(2*n+8, 2*n+8)
	c := custody.New()
	l.CreateAssets([]ledger.Asset{{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}, {ID: 3, Code: "JPY", Class: ledger.ClassFiat}}, nil)
	cold := custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: 2, Descriptor: "d1", Owner: ledger.OwnerHouseMin + 100}
	if err := c.RegisterWallet(l, cold); err != nil {
		tb.Fatal(err)
	}
	bank := ledger.AccountKey{Owner: ledger.OwnerHouseMin + 200, Asset: 3, Kind: ledger.KindWallet}
	house := ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: 2, Kind: ledger.KindHouse}
	l.CreateAccounts([]ledger.AccountKey{bank, house}, nil)
	r := rand.New(rand.NewPCG(uint64(n), 3))
	var ids []ledger.OwnerID
	var keys []ledger.AccountKey
	var ts []ledger.Transfer
	next := uint64(1)
	flush := func(force bool) {
		if len(ids) >= ledger.MaxBatch || force && len(ids) > 0 {
			if res := l.CreateCustomers(ids, nil); len(res) > 0 {
				tb.Fatal(res)
			}
			ids = ids[:0]
		}
		for len(keys) >= ledger.MaxBatch || force && len(keys) > 0 {
			k := min(len(keys), ledger.MaxBatch)
			if res := l.CreateAccounts(keys[:k], nil); len(res) > 0 {
				tb.Fatal(res)
			}
			keys = keys[k:]
		}
		for len(ts) >= ledger.MaxBatch || force && len(ts) > 0 {
			k := min(len(ts), ledger.MaxBatch)
			if res := l.CreateTransfers(ts[:k], 1, nil); len(res) > 0 {
				tb.Fatal(res)
			}
			ts = ts[k:]
		}
	}
	for i := 0; i < n; i++ {
		id := ledger.OwnerID(1_000_000 + i*3)
		ids = append(ids, id)
		avail := ledger.AccountKey{Owner: id, Asset: 2, Kind: ledger.KindAvailable}
		keys = append(keys, avail)
		amt := r.Uint64N(100_000_000) + 1
		ts = append(ts, ledger.Transfer{ID: ledger.ID{Lo: next}, Debit: cold.Account(), Credit: avail, Amount: ledger.AmountOf(amt)})
		next++
		if i%5 == 0 && amt >= 3 {
			held := ledger.AccountKey{Owner: id, Asset: 2, Kind: ledger.KindHeld}
			keys = append(keys, held)
			ts = append(ts, ledger.Transfer{ID: ledger.ID{Lo: next}, Debit: avail, Credit: held, Amount: ledger.AmountOf(amt / 3)})
			next++
		}
		if i%7 == 0 {
			jpy := ledger.AccountKey{Owner: id, Asset: 3, Kind: ledger.KindAvailable}
			keys = append(keys, jpy)
			ts = append(ts, ledger.Transfer{ID: ledger.ID{Lo: next}, Debit: bank, Credit: jpy, Amount: ledger.AmountOf(r.Uint64N(1_000_000) + 1)})
			next++
		}
		// The accounts must exist before their transfers.
		if len(ids) >= ledger.MaxBatch {
			flush(false)
		}
	}
	flush(true)
	if res := l.CreateTransfers([]ledger.Transfer{{ID: ledger.ID{Hi: 9}, Debit: cold.Account(), Credit: house, Amount: ledger.AmountOf(777)}}, 1, nil); len(res) > 0 {
		tb.Fatal(res)
	}
	return l, c
}

// TestLiabilitiesFromLedger: the tree counts every customer with a BTC
// account at available plus held, nothing of the house or the wallets,
// and its total is Compute's customer liabilities; each customer's proof
// verifies and names their balance; salts differ by tree and asset; a
// customer without an account has no proof; a different key gives a
// different root.
func TestLiabilitiesFromLedger(t *testing.T) {
	l, c := liabLedger(t, 500)
	key := bytes.Repeat([]byte{7}, KeySize)
	btc, _ := l.AssetByCode("BTC")
	lb, err := BuildLiabilities(l, btc, key, 40, 1234)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Compute(l, c, DefaultPolicy, nil, 40, 1234)
	if err != nil {
		t.Fatal(err)
	}
	root := lb.Root()
	if root.Total != rep.Rows[0].CustomerLiabilities || root.Size != 500 || root.Asset != "BTC" || root.Seq != 40 || root.Time != 1234 {
		t.Fatalf("root %+v; want total %s over 500 customers", root, rep.Rows[0].CustomerLiabilities)
	}
	for _, id := range l.Customers() {
		var want ledger.Amount
		for _, k := range []ledger.Kind{ledger.KindAvailable, ledger.KindHeld} {
			a, _ := l.Account(ledger.AccountKey{Owner: id, Asset: 2, Kind: k})
			want, _ = want.Add(a.Balance())
		}
		p, err := lb.Proof(id)
		if err != nil {
			t.Fatalf("Proof(%d) = %v", id, err)
		}
		if err := p.VerifyRoot(root.Hash); err != nil {
			t.Fatalf("customer %d: %v", id, err)
		}
		if err := p.Check(uint64(id), want); err != nil {
			t.Fatalf("customer %d: %v", id, err)
		}
		if p.Leaf.Salt != Salt(key, "BTC", id, 40) {
			t.Fatalf("customer %d: salt is not HMAC(key, BTC, id, 40)", id)
		}
	}
	if _, err := lb.Proof(ledger.OwnerHouse); !errors.Is(err, ErrNotInTree) {
		t.Fatalf("Proof(house) = %v; want ErrNotInTree", err)
	}
	if Salt(key, "BTC", 1_000_000, 40) == Salt(key, "BTC", 1_000_000, 41) || Salt(key, "BTC", 1_000_000, 40) == Salt(key, "JPY", 1_000_000, 40) {
		t.Fatal("salts repeat across trees or assets")
	}
	jpy, _ := l.AssetByCode("JPY")
	lj, err := BuildLiabilities(l, jpy, key, 40, 1234)
	if err != nil {
		t.Fatal(err)
	}
	if lj.Root().Size != 72 || lj.Root().Total != rep.Rows[1].CustomerLiabilities {
		t.Fatalf("JPY root %+v; want 72 customers, total %s", lj.Root(), rep.Rows[1].CustomerLiabilities)
	}
	if _, err := lj.Proof(1_000_003); !errors.Is(err, ErrNotInTree) {
		t.Fatalf("JPY proof of a customer without JPY = %v; want ErrNotInTree", err)
	}
	other, _ := BuildLiabilities(l, btc, bytes.Repeat([]byte{8}, KeySize), 40, 1234)
	if other.Root().Hash == root.Hash || other.Root().Total != root.Total {
		t.Fatal("another key gives the same root, or another total")
	}
	again, _ := BuildLiabilities(l, btc, key, 40, 1234)
	if again.Root() != root {
		t.Fatal("the same ledger, key and entry give another root")
	}
	if _, err := BuildLiabilities(l, btc, key[:16], 40, 1234); err == nil {
		t.Fatal("a 16-byte key accepted")
	}
}

// TestLiabilitiesKeyFile: made once, 0600, read back the same; a damaged
// file is an error, a missing one ErrNoKey.
func TestLiabilitiesKeyFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadKey(dir); !errors.Is(err, ErrNoKey) {
		t.Fatalf("LoadKey(empty dir) = %v; want ErrNoKey", err)
	}
	k1, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKey(dir)
	if err != nil || !bytes.Equal(k1, k2) || len(k1) != KeySize {
		t.Fatalf("key made again or changed: %v", err)
	}
	path := filepath.Join(dir, KeyFile)
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode().Perm())
	}
	os.WriteFile(path, []byte("abcd\n"), 0o600)
	if _, err := LoadKey(dir); err == nil || errors.Is(err, ErrNoKey) {
		t.Fatalf("LoadKey(damaged) = %v", err)
	}
	if _, err := LoadOrCreateKey(dir); err == nil {
		t.Fatal("LoadOrCreateKey replaced a damaged key")
	}
}

// cpuTime returns the process's user and system time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLiabilitiesLedger builds the BTC tree of a ledger of 1.7
// million customers: balances gathered from the ledger, 1.7 million salts,
// the tree.
func BenchmarkLiabilitiesLedger(b *testing.B) {
	l, _ := liabLedger(b, 1_700_000)
	btc, _ := l.AssetByCode("BTC")
	key := bytes.Repeat([]byte{7}, KeySize)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		lb, err := BuildLiabilities(l, btc, key, 40, 1234)
		if err != nil {
			b.Fatal(err)
		}
		if lb.Root().Size != 1_700_000 {
			b.Fatal(lb.Root().Size)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu).Milliseconds())/float64(b.N), "cpu-ms/tree")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/tree")
}

// BenchmarkProofCustomer finds a customer's leaf (their salt, a binary
// search) and makes their proof in the 1.7-million-customer tree.
func BenchmarkProofCustomer(b *testing.B) {
	l, _ := liabLedger(b, 1_700_000)
	btc, _ := l.AssetByCode("BTC")
	lb, err := BuildLiabilities(l, btc, bytes.Repeat([]byte{7}, KeySize), 40, 1234)
	if err != nil {
		b.Fatal(err)
	}
	ids := l.Customers()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := lb.Proof(ids[(i*7919)%len(ids)]); err != nil {
			b.Fatal(err)
		}
	}
}
