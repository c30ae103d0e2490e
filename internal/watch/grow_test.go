package watch

import (
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/core"
	"kinko/internal/custody"
)

// TestBooksGrow: addresses handed out after the watcher started, beyond
// its first look-ahead, are still watched.
func TestBooksGrow(t *testing.T) {
	ctx := context.Background()
	e := newDepositEnv(t)
	w, err := ForAsset(ctx, e.core, e.node.Client(), regtest.Net, "BTC", DepositConfig{Confirmations: 1, StartHeight: regtest.SegwitHeight})
	if err != nil {
		t.Fatal(err)
	}
	e.step(w)
	var last uint32
	for range 1200 {
		o, err := e.core.Submit(ctx, time.Now(), core.AssignAddress{Wallet: 1, Customer: 1})
		if err != nil || o.Err != nil {
			t.Fatal(err, o.Err)
		}
		last = o.Value.(uint32)
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
	w, err := ForAsset(ctx, e.core, e.node.Client(), regtest.Net, "BTC", DepositConfig{Confirmations: 6, StartHeight: regtest.SegwitHeight})
	if err != nil {
		t.Fatal(err)
	}
	e.step(w)
	pay := map[string]btcutil.Amount{}
	for i := range 2500 {
		o, err := e.core.Submit(ctx, time.Now(), core.AssignAddress{Wallet: 1, Customer: 1})
		if err != nil || o.Err != nil {
			t.Fatal(err, o.Err)
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
	e.core.Read(func(s *core.State) { s.Custody.Deposits(func(d *custody.Deposit) bool { n++; return true }) })
	if n != 2500 {
		t.Fatalf("%d deposits credited; want 2500", n)
	}
}
