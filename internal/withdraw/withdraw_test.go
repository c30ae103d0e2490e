package withdraw

import (
	"bytes"
	"crypto/ed25519"
	"testing"
)

func TestIntentSignVerify(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	in := Intent{RequestID: "r1", Asset: "BTC", Address: "bcrt1qx", Amount: 5000, Expiry: 1_800_000_000}
	sig, err := in.Sign(priv)
	if err != nil || !in.Verify(pub, sig) {
		t.Fatalf("sign/verify: %v", err)
	}
	for _, m := range []func(*Intent){
		func(i *Intent) { i.Amount++ },
		func(i *Intent) { i.Address = "bcrt1qy" },
		func(i *Intent) { i.Asset = "ETH" },
		func(i *Intent) { i.RequestID = "r2" },
		func(i *Intent) { i.Expiry++ },
	} {
		x := in
		m(&x)
		if x.Verify(pub, sig) {
			t.Errorf("a changed intent %+v verifies", x)
		}
	}
	if _, err := (&Intent{Asset: "BTC", Address: "a", Amount: 1, Expiry: 1}).Bytes(); err == nil {
		t.Error("an intent without a request id encodes")
	}
}

// FuzzIntentBytes: two different intents never have the same signed bytes
// (fields are length-prefixed), so a signature cannot be moved between them.
func FuzzIntentBytes(f *testing.F) {
	f.Add("r", "BTC", "ab", uint64(1), int64(2), "r", "BTC", "a", uint64(1), int64(2))
	f.Add("ab", "BTC", "c", uint64(10), int64(2), "a", "BTC", "bc", uint64(10), int64(2))
	f.Fuzz(func(t *testing.T, r1, a1, d1 string, m1 uint64, e1 int64, r2, a2, d2 string, m2 uint64, e2 int64) {
		x := Intent{RequestID: r1, Asset: a1, Address: d1, Amount: m1, Expiry: e1}
		y := Intent{RequestID: r2, Asset: a2, Address: d2, Amount: m2, Expiry: e2}
		bx, err1 := x.Bytes()
		by, err2 := y.Bytes()
		if err1 != nil || err2 != nil || x == y {
			return
		}
		if bytes.Equal(bx, by) {
			t.Fatalf("%+v and %+v encode the same", x, y)
		}
	})
}

func TestParseRules(t *testing.T) {
	r, err := ParseRules([]byte(`{"per_withdrawal_max":{"BTC":5}}`))
	if err != nil || r.CoolDownSeconds != DefaultCoolDown {
		t.Fatalf("rules = %+v, %v", r, err)
	}
	for _, bad := range []string{`{"cooldown_seconds":-1}`, `{"unknown":1}`, `[`} {
		if _, err := ParseRules([]byte(bad)); err == nil {
			t.Errorf("ParseRules(%s) succeeded", bad)
		}
	}
}
