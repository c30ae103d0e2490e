package watch

import (
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
)

// moreCustomers creates customers 2 to n+1 beside newDepositEnv's
// customer 1 and returns their ids: a customer asking again for a
// deposit address gets their unused one back (custody.AssignAddress), so
// the wallet's index grows only with customers who each ask once.
func moreCustomers(t *testing.T, e *depositEnv, n int) []ledger.OwnerID {
	t.Helper()
	ids := make([]ledger.OwnerID, n)
	for i := range ids {
		ids[i] = ledger.OwnerID(2 + i)
	}
	if o, err := e.core.Submit(context.Background(), time.Now(), core.CreateCustomers{IDs: ids}); err != nil || o.Err != nil {
		t.Fatal(err, o.Err)
	}
	return ids
}

// TestBooksGrow: addresses handed out after the watcher started, beyond
// its first look-ahead, are still watched.
func TestBooksGrow(t *testing.T) {
	ctx := context.Background()
	e := newDepositEnv(t)
	custs := moreCustomers(t, e, 1200)
	w, err := ForAsset(ctx, e.core, e.node.Chain(), regtest.Net, "BTC", DepositConfig{Confirmations: 1, StartHeight: regtest.SegwitHeight})
	if err != nil {
		t.Fatal(err)
	}
	e.step(w)
	var last uint32
	for _, c := range custs {
		o, err := e.core.Submit(ctx, time.Now(), core.AssignAddress{Wallet: 1, Customer: c})
		if err != nil || o.Err != nil {
			t.Fatal(err, o.Err)
		}
		last = o.Value.(uint32)
	}
	// Customer 1 holds index 0; the others one each after it, far past
	// the look-ahead the watcher started with.
	if last != uint32(len(custs)) {
		t.Fatalf("the last of %d customers got index %d; want %d", len(custs), last, len(custs))
	}
	a, _, _ := e.desc.Address(0, last)
	if _, err := e.node.SendTo(ctx, map[string]btcutil.Amount{a.EncodeAddress(): 1_000_000}); err != nil {
		t.Fatal(err)
	}
	e.step(w)
	e.node.Generate(ctx, 1)
	e.step(w)
	var n int
	e.core.Read(func(s *core.State) { s.Custody.Deposits(func(d *custody.Deposit) bool { n++; return true }) })
	if n != 1 {
		t.Fatalf("%d deposits credited to index %d; want 1", n, last)
	}
}

// TestBooksGrowMany: thousands of addresses handed out while the watcher
// runs, paid in large transactions, all credited.
func TestBooksGrowMany(t *testing.T) {
	ctx := context.Background()
	e := newDepositEnv(t)
	custs := moreCustomers(t, e, 2500)
	w, err := ForAsset(ctx, e.core, e.node.Chain(), regtest.Net, "BTC", DepositConfig{Confirmations: 6, StartHeight: regtest.SegwitHeight})
	if err != nil {
		t.Fatal(err)
	}
	e.step(w)
	pay := map[string]btcutil.Amount{}
	for i, c := range custs {
		o, err := e.core.Submit(ctx, time.Now(), core.AssignAddress{Wallet: 1, Customer: c})
		if err != nil || o.Err != nil {
			t.Fatal(err, o.Err)
		}
		if idx := o.Value.(uint32); idx != uint32(1+i) {
			t.Fatalf("customer %d got index %d; want %d (one new address each)", c, idx, 1+i)
		}
		a, _, _ := e.desc.Address(0, o.Value.(uint32))
		pay[a.EncodeAddress()] = 10_000
		if len(pay) == 1000 || i == 2499 {
			if _, err := e.node.SendTo(ctx, pay); err != nil {
				t.Fatal(err)
			}
			pay = map[string]btcutil.Amount{}
			e.step(w)
		}
	}
	e.node.Generate(ctx, 6)
	e.step(w)
	e.step(w)
	var n int
	credited := map[ledger.OwnerID]bool{}
	e.core.Read(func(s *core.State) {
		s.Custody.Deposits(func(d *custody.Deposit) bool { n++; credited[d.Customer] = true; return true })
	})
	if n != 2500 || len(credited) != 2500 || credited[1] {
		t.Fatalf("%d deposits credited to %d customers (customer 1 among them: %v); want 2500 to customers 2 to 2501", n, len(credited), credited[1])
	}
}
