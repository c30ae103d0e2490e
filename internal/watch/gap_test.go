package watch

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/wallet"
)

// TestWatcherGap: the deposit book of a watcher started with Gap g holds
// the receive addresses below NextIndex+g and none after, follows
// NextIndex as addresses are handed out, and still credits a deposit to
// the last one handed out; no gap means wallet.Gap; a gap over MaxGap is
// refused; BooksGap derives the same bound.
func TestWatcherGap(t *testing.T) {
	ctx := context.Background()
	e := newDepositEnv(t) // customer 1 holds index 0: NextIndex 1
	has := func(book AddressBook, index uint32) bool {
		t.Helper()
		s, err := e.desc.PkScript(0, index)
		if err != nil {
			t.Fatal(err)
		}
		w, i, ok := book.Lookup(s)
		return ok && w == 1 && i == index
	}
	edge := func(name string, book AddressBook, next, gap uint32) {
		t.Helper()
		if !has(book, next+gap-1) || has(book, next+gap) {
			t.Errorf("%s: index %d watched %v, index %d watched %v; want the first only (NextIndex %d, gap %d)",
				name, next+gap-1, has(book, next+gap-1), next+gap, has(book, next+gap), next, gap)
		}
	}

	const gap = 3
	d, err := ForAsset(ctx, e.core, e.node.Chain(), regtest.Net, "BTC", DepositConfig{Confirmations: 1, StartHeight: regtest.SegwitHeight, Gap: gap})
	if err != nil {
		t.Fatal(err)
	}
	e.step(d)
	edge("gap 3", d.book, 1, gap)

	// Ten more customers, each a new address: far past the first gap.
	custs := moreCustomers(t, e, 10)
	var last uint32
	for _, c := range custs {
		o, err := e.core.Submit(ctx, time.Now(), core.AssignAddress{Wallet: 1, Customer: c})
		if err != nil || o.Err != nil {
			t.Fatal(err, o.Err)
		}
		last = o.Value.(uint32)
	}
	if last != 10 {
		t.Fatalf("the tenth new customer got index %d; want 10", last)
	}
	a, _, _ := e.desc.Address(0, last)
	if _, err := e.node.SendTo(ctx, map[string]btcutil.Amount{a.EncodeAddress(): 70_000}); err != nil {
		t.Fatal(err)
	}
	e.node.Generate(ctx, 1)
	e.step(d)
	edge("gap 3 after ten addresses", d.book, 11, gap)
	var credited uint64
	e.core.Read(func(s *core.State) {
		s.Custody.Deposits(func(x *custody.Deposit) bool {
			if x.Index == last && x.Customer == custs[len(custs)-1] {
				credited += x.Amount
			}
			return true
		})
	})
	if credited != 70_000 {
		t.Fatalf("the deposit to index %d credited %d; want 70000", last, credited)
	}

	// The default, and BooksGap.
	d0, err := ForAsset(ctx, e.core, e.node.Chain(), regtest.Net, "BTC", DepositConfig{Confirmations: 1, StartHeight: regtest.SegwitHeight})
	if err != nil {
		t.Fatal(err)
	}
	edge("no gap given", d0.book, 11, wallet.Gap)
	deps, owned, err := BooksGap(e.core, btcAsset, regtest.Net, 7)
	if err != nil {
		t.Fatal(err)
	}
	edge("BooksGap 7", deps, 11, 7)
	edge("BooksGap 7, owned", owned, 11, 7)

	_, err = ForAsset(ctx, e.core, e.node.Chain(), regtest.Net, "BTC", DepositConfig{Gap: MaxGap + 1})
	if err == nil || !strings.Contains(err.Error(), "more than 100000") {
		t.Fatalf("ForAsset with a gap over MaxGap = %v; want refused", err)
	}
}
