package ledger

import (
	"math/rand/v2"
	"testing"
)

// TestPosTableAgainstMap adds and removes keys at random and checks every
// lookup against a plain map, across growth and backward-shift deletion.
func TestPosTableAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var keys []uint64 // position -> key
	live := map[uint64]uint32{}
	var x posTable
	for step := 0; step < 200_000; step++ {
		if len(live) > 0 && rng.IntN(3) == 0 {
			// Remove a random live key.
			for k, p := range live {
				x.remove(mix64(k), p)
				delete(live, k)
				break
			}
		} else {
			k := rng.Uint64N(1 << 20) // collisions of home slots are common
			if _, ok := live[k]; ok {
				continue
			}
			keys = append(keys, k)
			p := uint32(len(keys) - 1)
			x.add(mix64(k), p)
			live[k] = p
		}
		if step%1000 == 0 {
			if x.n != len(live) {
				t.Fatalf("step %d: n = %d; want %d", step, x.n, len(live))
			}
			for k, p := range live {
				got, ok := x.find(mix64(k), func(q uint32) bool { return keys[q] == k })
				if !ok || got != p {
					t.Fatalf("step %d: find(%d) = %d, %v; want %d", step, k, got, ok, p)
				}
			}
			for i := 0; i < 100; i++ {
				k := rng.Uint64N(1<<20) + 1<<21
				if _, ok := x.find(mix64(k), func(q uint32) bool { return keys[q] == k }); ok {
					t.Fatalf("step %d: absent key %d found", step, k)
				}
			}
		}
	}
}

// TestOutOfOrderIDsRollback exercises the hash side of the transfer index
// through a failed linked chain of descending ids.
func TestOutOfOrderIDsRollback(t *testing.T) {
	l := newTestLedger(t)
	must(t, l.CreateTransfers([]Transfer{{ID: id(1000), Debit: alice, Credit: bob, Amount: AmountOf(1)}}, 2, nil))
	var ts []Transfer
	for i := uint64(900); i > 800; i-- {
		ts = append(ts, Transfer{ID: id(i), Debit: alice, Credit: bob, Amount: AmountOf(1), Flags: FlagLinked})
	}
	ts = append(ts, Transfer{ID: id(5), Debit: alice, Credit: bob, Amount: AmountOf(100000)})
	if res := l.CreateTransfers(ts, 3, nil); len(res) != len(ts) {
		t.Fatalf("chain results = %d; want %d", len(res), len(ts))
	}
	check(t, l)
	// The rolled-back ids are free again and apply now.
	ts = ts[:len(ts)-1]
	ts[len(ts)-1].Flags = 0
	must(t, l.CreateTransfers(ts, 4, nil))
	for i := uint64(801); i <= 900; i++ {
		if _, ok := l.Transfer(id(i)); !ok {
			t.Fatalf("transfer %d missing", i)
		}
	}
	check(t, l)
}
