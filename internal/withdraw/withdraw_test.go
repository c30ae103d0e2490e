package withdraw

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"
)

func TestIntentSignVerify(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	in := Intent{RequestID: "r1", Asset: "BTC", Address: "bcrt1qx", Amount: AmountOf(5000), Expiry: 1_800_000_000}
	sig, err := in.Sign(priv)
	if err != nil || !in.Verify(pub, sig) {
		t.Fatalf("sign/verify: %v", err)
	}
	for _, m := range []func(*Intent){
		func(i *Intent) { i.Amount.Lo++ },
		func(i *Intent) { i.Amount.Hi++ },
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
	if _, err := (&Intent{Asset: "BTC", Address: "a", Amount: AmountOf(1), Expiry: 1}).Bytes(); err == nil {
		t.Error("an intent without a request id encodes")
	}
}

// FuzzIntentBytes: two different intents never have the same signed bytes
// (fields are length-prefixed), so a signature cannot be moved between them.
func FuzzIntentBytes(f *testing.F) {
	f.Add("r", "BTC", "ab", uint64(0), uint64(1), int64(2), "r", "BTC", "a", uint64(0), uint64(1), int64(2))
	f.Add("ab", "BTC", "c", uint64(0), uint64(10), int64(2), "a", "BTC", "bc", uint64(0), uint64(10), int64(2))
	f.Add("r", "ETH", "a", uint64(1), uint64(0), int64(2), "r", "ETH", "a", uint64(0), uint64(1<<63), int64(2))
	f.Fuzz(func(t *testing.T, r1, a1, d1 string, h1, m1 uint64, e1 int64, r2, a2, d2 string, h2, m2 uint64, e2 int64) {
		x := Intent{RequestID: r1, Asset: a1, Address: d1, Amount: Amount{Hi: h1, Lo: m1}, Expiry: e1}
		y := Intent{RequestID: r2, Asset: a2, Address: d2, Amount: Amount{Hi: h2, Lo: m2}, Expiry: e2}
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

// since is a view whose customer and asset totals are fixed.
type since struct {
	view
	customer, asset uint64
}

func (v since) CustomerSince(uint64, string, int64) Amount { return AmountOf(v.customer) }
func (v since) AssetSince(string, int64) Amount            { return AmountOf(v.asset) }

// TestDefaultLimits: rules that name no limit for an asset still bound it:
// a bitcoin withdrawal over one coin is denied, over half a coin waits for
// two operators, a customer's day is two coins and all customers' hour
// ten; scaled by decimals, yen's in whole yen; an explicit value wins.
func TestDefaultLimits(t *testing.T) {
	const coin = 1_0000_0000
	r := Rules{CoolDownSeconds: 1}
	rich := view{avail: map[string]Amount{"BTC": AmountOf(100 * coin), "ETH": AmountOf(1 << 63), "JPY": AmountOf(1 << 40), "XEM": AmountOf(1 << 40)}}
	cases := []struct {
		name   string
		v      View
		asset  string
		dec    uint8
		fiat   bool
		amount uint64
		want   Decision
		why    string
	}{
		{"half a coin", rich, "BTC", 8, false, coin / 2, Allow, ""},
		{"above half a coin", rich, "BTC", 8, false, coin/2 + 1, NeedsApproval, "over 50000000"},
		{"one coin", rich, "BTC", 8, false, coin, NeedsApproval, ""},
		{"above one coin", rich, "BTC", 8, false, coin + 1, Deny, "per-withdrawal maximum 100000000"},
		{"the customer's day", since{rich, 3 * coin / 2, 0}, "BTC", 8, false, coin/2 + 1, Deny, "24-hour limit 200000000"},
		{"all customers' hour", since{rich, 0, 19 * coin / 2}, "BTC", 8, false, coin/2 + 1, Deny, "hourly limit 1000000000"},
		{"ether, 18 decimals", rich, "ETH", 18, false, 1_000_000_000_000_000_001, Deny, "1000000000000000000"},
		{"yen within", rich, "JPY", 0, true, 5_000_000, Allow, ""},
		{"yen to two operators", rich, "JPY", 0, true, 5_000_001, NeedsApproval, ""},
		{"yen above", rich, "JPY", 0, true, 10_000_001, Deny, "10000000"},
	}
	for _, c := range cases {
		d, why := r.Evaluate(Request{Customer: 1, Asset: c.asset, Address: "a", Amount: AmountOf(c.amount), Decimals: c.dec, Fiat: c.fiat}, c.v)
		if d != c.want || !strings.Contains(why, c.why) {
			t.Errorf("%s: %v %q; want %v with %q", c.name, d, why, c.want, c.why)
		}
	}
	// Explicit values replace the defaults, one by one.
	r.PerWithdrawalMax = map[string]Amount{"BTC": AmountOf(5 * coin)}
	r.ApprovalAbove = map[string]Amount{"XEM": AmountOf(1 << 62)}
	if l := r.LimitsFor("BTC", 8, false); l != (Limits{PerWithdrawalMax: AmountOf(5 * coin), PerCustomerDay: AmountOf(2 * coin), PerAssetHour: AmountOf(10 * coin), ApprovalAbove: AmountOf(coin / 2)}) {
		t.Errorf("LimitsFor(BTC) = %+v", l)
	}
	if l := r.LimitsFor("XEM", 6, false); l.ApprovalAbove != AmountOf(1<<62) || l.PerWithdrawalMax != AmountOf(1_000_000) {
		t.Errorf("LimitsFor(XEM) = %+v", l)
	}
	// Decimals past 64 bits: the default is exact to 128 bits, then
	// saturates rather than wraps.
	if l := DefaultLimits(30, false); l.PerWithdrawalMax.String() != "1000000000000000000000000000000" {
		t.Errorf("DefaultLimits(30) = %+v", l)
	}
	if l := DefaultLimits(40, false); l.PerWithdrawalMax != MaxAmount {
		t.Errorf("DefaultLimits(40) = %+v", l)
	}
	if l := DefaultLimits(0, false); !l.ApprovalAbove.IsZero() || l.PerWithdrawalMax != AmountOf(1) {
		t.Errorf("DefaultLimits(0) = %+v", l)
	}
}
