package cli

import (
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kinko/internal/withdraw"
)

// TestIntentSignWide: `kinko intent sign` signs an amount above 2^64 (20
// ETH in wei) that the intent key verifies, and writes it in the body as
// its canonical decimal string; 0, a sign, a fraction and 2^128 are
// refused with an error naming --amount.
func TestIntentSignWide(t *testing.T) {
	key := filepath.Join(t.TempDir(), "key.json")
	out, code := run(t, "intent", "keygen", "--out", key)
	if code != 0 {
		t.Fatalf("keygen: %s", out)
	}
	pub, err := hex.DecodeString(strings.TrimSpace(out))
	if err != nil || len(pub) != 32 {
		t.Fatalf("keygen printed %q", out)
	}
	out, code = run(t, "intent", "sign", "--key", key, "--request-id", "r1", "--asset", "eth", "--address", "0x00000000000000000000000000000000000000E1", "--amount", "020000000000000000000")
	if code != 0 {
		t.Fatalf("sign: %s", out)
	}
	var body struct {
		RequestID string `json:"request_id"`
		Asset     string `json:"asset"`
		Address   string `json:"address"`
		Amount    string `json:"amount"`
		Expiry    string `json:"expiry"`
		Signature string `json:"signature"`
	}
	if err := json.Unmarshal([]byte(out), &body); err != nil || body.Amount != "20000000000000000000" {
		t.Fatalf("body %q: %v", out, err)
	}
	amount, _ := withdraw.ParseAmount(body.Amount)
	exp, _ := time.Parse(time.RFC3339, body.Expiry)
	sig, _ := hex.DecodeString(body.Signature)
	in := withdraw.Intent{RequestID: body.RequestID, Asset: body.Asset, Address: body.Address, Amount: amount, Expiry: exp.Unix()}
	if !in.Verify(pub, sig) {
		t.Fatalf("the signed intent %+v does not verify", in)
	}
	for _, bad := range []string{"0", "-1", "1.5", "1e19", "340282366920938463463374607431768211456"} {
		out, code := run(t, "intent", "sign", "--key", key, "--request-id", "r2", "--address", "a", "--amount", bad)
		if code == 0 || !strings.Contains(out, "--amount") {
			t.Errorf("--amount %s: %d %s", bad, code, out)
		}
	}
}
