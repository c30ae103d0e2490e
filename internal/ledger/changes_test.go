package ledger

import (
	"slices"
	"testing"
)

func TestDrainChanges(t *testing.T) {
	l := newTestLedger(t)
	if got := l.DrainChanges(nil); len(got) != 0 {
		t.Fatalf("tracking off: %v", got)
	}
	l.TrackChanges(true)
	// A posted transfer: alice's available and bob's; a pending one
	// changes no posted balance until it is posted.
	must(t, l.CreateTransfers([]Transfer{
		{ID: id(10), Debit: alice, Credit: bob, Amount: AmountOf(100)},
		{ID: id(11), Debit: alice, Credit: bob, Amount: AmountOf(50), Flags: FlagPending},
	}, 2, nil))
	want := []BalanceChange{{Key: alice, Balance: AmountOf(900)}, {Key: bob, Balance: AmountOf(100)}}
	if got := l.DrainChanges(nil); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	must(t, l.CreateTransfers([]Transfer{{ID: id(12), PendingID: id(11), Flags: FlagPostPending}}, 3, nil))
	want = []BalanceChange{{Key: alice, Balance: AmountOf(850)}, {Key: bob, Balance: AmountOf(150)}}
	if got := l.DrainChanges(nil); !slices.Equal(got, want) {
		t.Fatalf("after the post: got %v, want %v", got, want)
	}
	// The house's accounts are not listed; a chain that fails leaves the
	// accounts it touched at their balances before it.
	must(t, l.CreateTransfers([]Transfer{{ID: id(13), Debit: wallet, Credit: alice, Amount: AmountOf(5)}}, 4, nil))
	res := l.CreateTransfers([]Transfer{
		{ID: id(14), Debit: alice, Credit: bob, Amount: AmountOf(1), Flags: FlagLinked},
		{ID: id(15), Debit: bob, Credit: alice, Amount: AmountOf(1 << 40)},
	}, 5, nil)
	if len(res) != 2 {
		t.Fatalf("the chain should fail: %v", res)
	}
	want = []BalanceChange{{Key: alice, Balance: AmountOf(855)}, {Key: bob, Balance: AmountOf(150)}} // alice twice in a row: once
	if got := l.DrainChanges(nil); !slices.Equal(got, want) {
		t.Fatalf("after a failed chain: got %v, want %v", got, want)
	}
	l.TrackChanges(false)
	must(t, l.CreateTransfers([]Transfer{{ID: id(16), Debit: alice, Credit: bob, Amount: AmountOf(1)}}, 6, nil))
	if got := l.DrainChanges(nil); len(got) != 0 {
		t.Fatalf("tracking off again: %v", got)
	}
}

// TestDrainChangesAllocs: noting and draining the changed accounts
// allocates nothing once the slices have grown.
func TestDrainChangesAllocs(t *testing.T) {
	l := newTestLedger(t)
	l.TrackChanges(true)
	ts := []Transfer{{Debit: alice, Credit: bob, Amount: AmountOf(1)}, {Debit: bob, Credit: alice, Amount: AmountOf(1)}}
	n := uint64(100)
	dst := make([]BalanceChange, 0, 16)
	var res []Result
	l.Reserve(8, 10_000)
	allocs := testing.AllocsPerRun(1000, func() {
		for i := range ts {
			n++
			ts[i].ID = id(n)
		}
		res = l.CreateTransfers(ts, 7, res[:0])
		dst = l.DrainChanges(dst[:0])
	})
	if allocs != 0 || len(dst) != 3 || len(res) != 0 { // alice, bob (twice in a row: once), alice
		t.Fatalf("%v allocs per entry; drained %v, results %v", allocs, dst, res)
	}
}
