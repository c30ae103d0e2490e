package cosigner

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"kinko/internal/withdraw"
)

// TestSignedRecordWide: what the co-signer recorded when its counters were
// 64-bit (JSON numbers) reads back the same, and a record above 2^64 wei
// round-trips exactly; the window sums it in 128 bits.
func TestSignedRecordWide(t *testing.T) {
	old := []byte(`{"time":"2026-01-02T03:04:05Z","txid":"ab","asset":"ETH","withdrawals":["1:r"],"customers":{"1":18446744073709551615},"out":18446744073709551615,"fee":5000,"psbt":""}`)
	var r Signed
	if err := json.Unmarshal(old, &r); err != nil || r.Customers[1] != withdraw.AmountOf(1<<64-1) || r.Out != withdraw.AmountOf(1<<64-1) || r.Fee != withdraw.AmountOf(5000) {
		t.Fatalf("an old record = %+v, %v", r, err)
	}
	b, _ := json.Marshal(r)
	if !strings.Contains(string(b), `"customers":{"1":18446744073709551615},"out":18446744073709551615,"fee":5000`) {
		t.Errorf("re-encoded: %s", b)
	}
	// Two such records in the window: 2^65-2 + fees, above 2^64.
	c := &Cosigner{policy: &Policy{Limits: map[string]Limits{"ETH": {YenPerCoin: 1, Decimals: 18}}}, txs: map[[32]byte]*Signed{}}
	now := time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC)
	for i := range 2 {
		x := r
		c.txs[[32]byte{byte(i)}] = &x
	}
	u := c.window("ETH", now.Add(-time.Hour))
	if u.asset.String() != "36893488147419113230" || u.cust[1].String() != "36893488147419103230" || u.fee.String() != "10000" {
		t.Errorf("window = asset %s, customer %s, fee %s", u.asset, u.cust[1], u.fee)
	}
}
