package custody

import (
	"math/rand/v2"
	"testing"

	"kinko/internal/ledger"
)

// TestGapUnderManyRequests replays a seeded stream of deposit-address
// requests and deposits from many customers: each customer holds at most
// one unused address, every address handed out is unused unless none
// remains, the wallet's trailing run of unused indexes never exceeds the
// customers holding one, and the same stream gives the same indexes.
func TestGapUnderManyRequests(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		a := gapRun(t, seed)
		b := gapRun(t, seed)
		if len(a) != len(b) {
			t.Fatalf("seed %d: replay handed %d addresses, then %d", seed, len(a), len(b))
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("seed %d: request %d got index %d, then %d", seed, i, a[i], b[i])
			}
		}
	}
}

func gapRun(t *testing.T, seed uint64) []uint32 {
	l := ledger.New()
	l.CreateAssets([]ledger.Asset{{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}, nil)
	var ids []ledger.OwnerID
	for c := ledger.OwnerID(1); c <= 40; c++ {
		ids = append(ids, c)
	}
	l.CreateCustomers(ids, nil)
	s := New()
	const w = 1
	if err := s.RegisterWallet(l, Wallet{ID: w, Kind: ColdCustomer, Asset: 2, Descriptor: "cold", Owner: ledger.OwnerHouseMin + 100}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	const customers = 40
	var handed []uint32
	var vout uint32
	for step := 0; step < 3000; step++ {
		c := ledger.OwnerID(1 + rng.IntN(customers))
		idx, err := s.AssignAddress(l, w, c)
		if err != nil {
			t.Fatal(err)
		}
		handed = append(handed, idx)
		if s.Used(w, idx) {
			t.Fatalf("seed %d step %d: customer %d was handed used address %d", seed, step, c, idx)
		}
		if owner, _ := s.AddressOwner(w, idx); owner != c {
			t.Fatalf("seed %d step %d: address %d belongs to %d, handed to %d", seed, step, idx, owner, c)
		}
		if rng.IntN(4) == 0 { // a quarter of requests are paid
			vout++
			if res := s.CreditDeposits(l, []Seen{{Outpoint: Outpoint{TxID: [32]byte{byte(seed), byte(vout >> 8), byte(vout)}, Vout: vout}, Wallet: w, Index: idx, Amount: 1000, Height: 1}}, 0, depth); len(res) > 0 {
				t.Fatalf("credit: %v", res[0].Err)
			}
		}
		holding := 0
		for cust := ledger.OwnerID(1); cust <= customers; cust++ {
			unused := 0
			for _, a := range s.Addresses(cust) {
				if !s.Used(a[0], a[1]) {
					unused++
				}
			}
			if unused > 1 {
				t.Fatalf("seed %d step %d: customer %d holds %d unused addresses", seed, step, cust, unused)
			}
			holding += unused
		}
		r, _ := s.Gap(w)
		if int(r.Trailing) > holding || int(r.Longest) > customers {
			t.Fatalf("seed %d step %d: trailing gap %d, longest %d, with %d customers holding an unused address", seed, step, r.Trailing, r.Longest, holding)
		}
	}
	r, _ := s.Gap(w)
	t.Logf("seed %d: 3000 requests from %d customers took %d indexes; longest unused run %d, trailing %d", seed, customers, r.NextIndex, r.Longest, r.Trailing)
	return handed
}
