package ceremony

import (
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"

	"kinko/internal/withdraw"
)

// TestPayoutsBitcoinRange: a withdrawal whose amount no Bitcoin output
// holds (2^63 satoshi and above, 128-bit amounts included), or that would
// take the total past 2^63-1, is left out of the payouts (the hot signer
// warns and leaves it queued); the total is the others' exactly.
func TestPayoutsBitcoinRange(t *testing.T) {
	net := &chaincfg.RegressionNetParams
	a, err := btcutil.NewAddressWitnessPubKeyHash(make([]byte, 20), net)
	if err != nil {
		t.Fatal(err)
	}
	ws := []withdraw.Withdrawal{
		{ID: "1:ok", Intent: withdraw.Intent{Address: a.EncodeAddress(), Amount: withdraw.AmountOf(5000)}},
		{ID: "1:big", Intent: withdraw.Intent{Address: a.EncodeAddress(), Amount: withdraw.AmountOf(1 << 63)}},
		{ID: "1:wide", Intent: withdraw.Intent{Address: a.EncodeAddress(), Amount: withdraw.Amount{Hi: 1, Lo: 5000}}},
		{ID: "1:rest", Intent: withdraw.Intent{Address: a.EncodeAddress(), Amount: withdraw.AmountOf(1<<63 - 1 - 5000)}},
		{ID: "1:one-more", Intent: withdraw.Intent{Address: a.EncodeAddress(), Amount: withdraw.AmountOf(1)}}, // the total would pass 2^63-1
	}
	outs, ids, total := Payouts(ws, net)
	if len(outs) != 2 || len(ids) != 2 || ids[0] != "1:ok" || ids[1] != "1:rest" || outs[0].Value != 5000 || outs[1].Value != 1<<63-1-5000 || total != 1<<63-1 {
		t.Fatalf("Payouts = %d outputs %v, total %d", len(outs), ids, total)
	}
}
