package compensation

import (
	"testing"

	"kinko/internal/ledger"
)

// TestShareOf: the bases cover the part still owed, none is above its
// holding, and none is paid a fraction of a yen (what a plan rounding down
// would neither pay nor write off).
func TestShareOf(t *testing.T) {
	var hs []Holding
	var total uint64
	for i := 1; i <= 300; i++ {
		h := uint64(i*7919%1_000_000 + 5)
		hs = append(hs, Holding{Customer: ledger.OwnerID(i), Total: h})
		total += h
	}
	const num, den = 10_000_000, 1_0000_0000 // 0.1 yen a satoshi
	for _, part := range []uint64{1, 403, 4_000, total / 2, total - 1, total, total + 5} {
		bs := ShareOf(hs, part, num, den)
		var sum uint64
		for i, b := range bs {
			var held uint64
			for _, h := range hs {
				if h.Customer == b.Customer {
					held = h.Total
				}
			}
			if b.Total > held {
				t.Fatalf("part %d: basis %d above holding %d", part, b.Total, held)
			}
			if b.Total < held && b.Total*num%den != 0 {
				t.Errorf("part %d: basis %d of customer %d is paid a fraction of a yen", part, b.Total, bs[i].Customer)
			}
			sum += b.Total
		}
		if sum < min(part, total) {
			t.Errorf("part %d: bases sum to %d", part, sum)
		}
		if part >= total && sum != total {
			t.Errorf("part %d at or above the holdings %d: bases %d", part, total, sum)
		}
	}
}
