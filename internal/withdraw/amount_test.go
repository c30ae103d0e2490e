package withdraw

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
)

// The signed bytes and signatures of intents below 2^64 as the uint64
// encoding made them (computed with the code before amounts were 128-bit,
// the key from the seed 1, 2, …, 32): existing signatures, and what the
// console and `kinko intent sign` signed, still verify.
var intentGolden = []struct {
	in         Intent
	bytes, sig string
}{
	{Intent{RequestID: "r-1", Asset: "BTC", Address: "bcrt1qexample", Amount: AmountOf(5000), Expiry: 1_800_000_000},
		"001a6b696e6b6f2f7769746864726177616c2d696e74656e742f76310003722d310003425443000d6263727431716578616d706c65000435303030000a31383030303030303030",
		"6a264405f2d579fe364733cebaaefeaad75a0879783fabcda89f93dd8d6d8165ba2c8a74798521fa0193e1a14288b11a5288826ceee833deb47c767e7264140e"},
	{Intent{RequestID: "eth-7", Asset: "ETH", Address: "0x00000000000000000000000000000000000000E1", Amount: AmountOf(1<<64 - 1), Expiry: 1_800_000_000},
		"001a6b696e6b6f2f7769746864726177616c2d696e74656e742f763100056574682d370003455448002a30783030303030303030303030303030303030303030303030303030303030303030303030303030453100143138343436373434303733373039353531363135000a31383030303030303030",
		"c6747cd7ed66b8fc6ea50a6d6e4f02f26ee0303749025e896b5a90aa4756c9a3d41381596854d186f2db0ce3cf23d58505b2620c491ebddcd1be4d8ca64ff606"},
}

func goldenKey() ed25519.PrivateKey {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	return ed25519.NewKeyFromSeed(seed)
}

func TestIntentGolden(t *testing.T) {
	k := goldenKey()
	if got := hex.EncodeToString(k.Public().(ed25519.PublicKey)); got != "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664" {
		t.Fatalf("golden key = %s", got)
	}
	for _, g := range intentGolden {
		b, err := g.in.Bytes()
		if err != nil || hex.EncodeToString(b) != g.bytes {
			t.Errorf("Bytes(%+v) = %x, %v; want %s", g.in, b, err, g.bytes)
		}
		sig, _ := hex.DecodeString(g.sig)
		if !g.in.Verify(k.Public().(ed25519.PublicKey), sig) {
			t.Errorf("the signature made before 128-bit amounts does not verify for %+v", g.in)
		}
	}
	// Above 2^64 the amount is its decimal digits, as below.
	wide := intentGolden[1].in
	wide.Amount = Amount{Hi: 2, Lo: 7} // 2·2^64 + 7
	b, _ := wide.Bytes()
	if !bytes.Contains(b, []byte("\x00\x1436893488147419103239")) {
		t.Errorf("a wide amount's field in %x", b)
	}
	if wide.Verify(k.Public().(ed25519.PublicKey), mustHex(intentGolden[1].sig)) {
		t.Error("the signature of 2^64-1 wei verifies for 2·2^64+7")
	}
}

func mustHex(s string) []byte { b, _ := hex.DecodeString(s); return b }

// TestAmountJSON: an amount is a bare JSON number of any size below 2^128,
// as uint64 wrote it; it decodes a number or a decimal string and refuses
// everything else with an error naming what it takes.
func TestAmountJSON(t *testing.T) {
	for _, c := range []struct {
		in   Amount
		want string
	}{{Amount{}, "0"}, {AmountOf(5000), "5000"}, {AmountOf(1<<64 - 1), "18446744073709551615"}, {Amount{Hi: 1}, "18446744073709551616"},
		{MaxAmount, "340282366920938463463374607431768211455"}} {
		b, err := json.Marshal(c.in)
		if err != nil || string(b) != c.want {
			t.Errorf("Marshal(%v) = %s, %v; want %s", c.in, b, err, c.want)
		}
		var back Amount
		if err := json.Unmarshal(b, &back); err != nil || back != c.in {
			t.Errorf("Unmarshal(%s) = %v, %v", b, back, err)
		}
		if err := json.Unmarshal([]byte(`"`+c.want+`"`), &back); err != nil || back != c.in {
			t.Errorf("Unmarshal(%q) = %v, %v", c.want, back, err)
		}
	}
	for _, bad := range []string{`-1`, `1.5`, `1e3`, `"1e3"`, `""`, `"0x10"`, `" 5"`, `"+5"`, `true`, `{}`, `[]`,
		`340282366920938463463374607431768211456`, `"` + strings.Repeat("9", 40) + `"`} {
		var a Amount
		if err := json.Unmarshal([]byte(bad), &a); err == nil {
			t.Errorf("Unmarshal(%s) = %v; want an error", bad, a)
		} else if !errors.Is(err, ErrAmount) && !strings.Contains(err.Error(), "invalid") {
			t.Logf("Unmarshal(%s): %v", bad, err)
		}
	}
	// A withdrawal's record with no fee encodes as it did (no "fee").
	b, _ := json.Marshal(Withdrawal{ID: "1:r"})
	if bytes.Contains(b, []byte(`"fee"`)) {
		t.Errorf("a record without a fee: %s", b)
	}
	// A rules file of JSON numbers, as before, and of decimal strings
	// above 2^64.
	r, err := ParseRules([]byte(`{"per_withdrawal_max":{"BTC":100000000,"ETH":"50000000000000000000"},"withdrawal_fee":{"ETH":1000000000000000},"dust_limit":{"ETH":340282366920938463463374607431768211455}}`))
	if err != nil || r.PerWithdrawalMax["BTC"] != AmountOf(1_0000_0000) || r.PerWithdrawalMax["ETH"].String() != "50000000000000000000" || r.DustLimit["ETH"] != MaxAmount {
		t.Fatalf("ParseRules = %+v, %v", r, err)
	}
	if _, err := ParseRules([]byte(`{"per_withdrawal_max":{"ETH":340282366920938463463374607431768211456}}`)); !errors.Is(err, ErrAmount) {
		t.Errorf("a limit of 2^128: %v; want %v", err, ErrAmount)
	}
}

// TestLimitsAboveUint64: the policy's limits hold to the wei above 2^64:
// 1 wei over a per-withdrawal maximum of 2^64+5 is denied, the maximum
// allowed; a customer's day of 2^65 is reached by 1 wei over what is
// left of it; an approval bound above 2^64 sends 1 wei more to two
// operators; the dust limit and finality bound work at 128 bits.
func TestLimitsAboveUint64(t *testing.T) {
	two64 := new(big.Int).Lsh(big.NewInt(1), 64)
	amt := func(delta int64) Amount {
		a, err := AmountFromBig(new(big.Int).Add(two64, big.NewInt(delta)))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	day, _ := AmountFromBig(new(big.Int).Lsh(big.NewInt(1), 65))
	big200 := Amount{Hi: 100}
	r := Rules{CoolDownSeconds: 1, PerWithdrawalMax: map[string]Amount{"ETH": amt(5)}, PerCustomerDay: map[string]Amount{"ETH": day},
		PerAssetHour: map[string]Amount{"ETH": big200}, ApprovalAbove: map[string]Amount{"ETH": amt(2)}, DustLimit: map[string]Amount{"ETH": amt(-1)}}
	rich := view{avail: map[string]Amount{"ETH": MaxAmount}}
	spent := sinceWide{view: rich, customer: amt(0)} // 2^64 of the 2^65 day spent
	for _, c := range []struct {
		name   string
		v      View
		amount Amount
		want   Decision
		why    string
	}{
		{"1 wei over the maximum", rich, amt(6), Deny, "per-withdrawal maximum 18446744073709551621"},
		{"2^65+1, whose low 64 bits are below the maximum's", rich, Amount{Hi: 2, Lo: 1}, Deny, "per-withdrawal maximum"},
		{"6 wei, below the dust limit of 2^64-1", rich, AmountOf(6), Deny, "dust limit 18446744073709551615"},
		{"the maximum", rich, amt(5), NeedsApproval, "over 18446744073709551618"},
		{"at the approval bound", rich, amt(2), Allow, ""},
		{"1 wei below the dust limit", rich, amt(-2), Deny, "dust limit 18446744073709551615"},
		{"what is left of the day", spent, amt(0), Allow, ""},
		{"1 wei over the day", spent, amt(1), Deny, "24-hour limit 36893488147419103232"},
	} {
		d, why := r.Evaluate(Request{Customer: 1, Asset: "ETH", Address: "0xa", Amount: c.amount, Decimals: 18}, c.v)
		if d != c.want || !strings.Contains(why, c.why) {
			t.Errorf("%s: %v %q; want %v with %q", c.name, d, why, c.want, c.why)
		}
	}
	// Not yet final: the fee counts with the amount, above 2^64.
	fin := view{avail: map[string]Amount{"ETH": amt(10)}, fin: Finality{Unfinal: []Unfinal{{Asset: "ETH", Amount: AmountOf(4), Available: amt(10), Count: 1, DepositAmount: AmountOf(4), Depth: 6}}}}
	r.PerWithdrawalMax["ETH"] = MaxAmount
	if d, why := r.Evaluate(Request{Customer: 1, Asset: "ETH", Address: "0xa", Amount: amt(5), Fee: AmountOf(1), Decimals: 18}, fin); d == Deny {
		t.Errorf("2^64+5 and a fee of 1 of 2^64+6 final: %v %q", d, why)
	}
	if d, why := r.Evaluate(Request{Customer: 1, Asset: "ETH", Address: "0xa", Amount: amt(5), Fee: AmountOf(2), Decimals: 18}, fin); d != Deny || !strings.Contains(why, "at most 18446744073709551622") {
		t.Errorf("2^64+5 and a fee of 2 of 2^64+6 final: %v %q; want denied", d, why)
	}
	// A finality tier bound above 2^64.
	fr := Rules{Finality: map[string][]Tier{"ETH": {{UpTo: amt(0), Depth: 6}, {Depth: 30}}}}
	if d := fr.FinalityDepth("ETH", 18, amt(0)); d != 6 {
		t.Errorf("depth of 2^64 = %d; want 6", d)
	}
	if d := fr.FinalityDepth("ETH", 18, amt(1)); d != 30 {
		t.Errorf("depth of 2^64+1 = %d; want 30", d)
	}
}

// sinceWide is a view whose customer total is fixed, at any width.
type sinceWide struct {
	view
	customer Amount
}

func (v sinceWide) CustomerSince(uint64, string, int64) Amount { return v.customer }

// FuzzAmountJSON: every JSON value decodes to an amount that re-encodes
// to the canonical number, and back to the same amount; what decodes
// agrees with math/big on the digits.
func FuzzAmountJSON(f *testing.F) {
	for _, s := range []string{`0`, `5000`, `18446744073709551616`, `"42"`, `-1`, `1.5`, `"0x1"`, `340282366920938463463374607431768211455`,
		`340282366920938463463374607431768211456`, `null`, `"007"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var a Amount
		if err := json.Unmarshal(b, &a); err != nil {
			return
		}
		out, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		var back Amount
		if err := json.Unmarshal(out, &back); err != nil || back != a {
			t.Fatalf("%s -> %v -> %s -> %v, %v", b, a, out, back, err)
		}
		if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
			return
		}
		s := strings.Trim(strings.TrimSpace(string(b)), `"`)
		if v, ok := new(big.Int).SetString(s, 10); !ok || v.Cmp(a.Big()) != 0 {
			t.Fatalf("%s decoded to %v", b, a)
		}
	})
}

// FuzzIntentJSON: an intent decoded from any JSON either has signed bytes
// that carry its amount's canonical digits or is refused; re-encoding it
// gives an intent with the same signed bytes.
func FuzzIntentJSON(f *testing.F) {
	f.Add([]byte(`{"RequestID":"r","Asset":"ETH","Address":"0xa","Amount":50000000000000000000,"Expiry":9}`))
	f.Add([]byte(`{"RequestID":"r","Asset":"BTC","Address":"a","Amount":0,"Expiry":9}`))
	f.Add([]byte(`{"RequestID":"r","Asset":"BTC","Address":"a","Amount":"12","Expiry":9}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var in Intent
		if json.Unmarshal(b, &in) != nil {
			return
		}
		sb, err := in.Bytes()
		if err != nil {
			if !errors.Is(err, ErrIntent) {
				t.Fatalf("Bytes: %v", err)
			}
			return
		}
		if !bytes.Contains(sb, []byte(in.Amount.String())) {
			t.Fatalf("signed bytes %x without the amount %s", sb, in.Amount)
		}
		out, _ := json.Marshal(in)
		var back Intent
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		if bb, err := back.Bytes(); err != nil || !bytes.Equal(bb, sb) {
			t.Fatalf("%s re-encoded as %s signs other bytes", b, out)
		}
	})
}

// oldSnapshot is a withdrawal state encoded by the code before amounts
// were 128-bit (JSON numbers; a fee of 0 left out).
const oldSnapshot = `{"Rules":{"cooldown_seconds":60,"per_withdrawal_max":{"BTC":100000000,"ETH":18000000000000000000},"per_customer_day":null,"per_asset_hour":null,"approval_above":null,"deny_list":null,"dust_limit":{"BTC":546},"withdrawal_fee":{"ETH":1000000000000000},"finality":{"BTC":[{"up_to":100000000,"depth":6},{"depth":20}]}},"Keys":null,"Addresses":null,"Withdrawals":[{"id":"1:a","customer":1,"intent":{"RequestID":"a","Asset":"ETH","Address":"0xE1","Amount":18446744073709551615,"Expiry":9},"pubkey":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"sig":null,"status":"queued","time":5,"HoldHi":1,"HoldLo":2,"fee":1000000000000000},{"id":"1:b","customer":1,"intent":{"RequestID":"b","Asset":"BTC","Address":"bc","Amount":5000,"Expiry":9},"pubkey":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"sig":null,"status":"rejected","reason":"x","time":6,"HoldHi":0,"HoldLo":0}],"Batches":null}`

// TestSnapshotCompatible: a state encoded when amounts were uint64
// restores, and encodes again to the same bytes.
func TestSnapshotCompatible(t *testing.T) {
	s, err := Restore([]byte(oldSnapshot), func(b []byte, v any) error { return json.Unmarshal(b, v) })
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := s.Get("1:a"); w.Intent.Amount != AmountOf(1<<64-1) || w.Fee != AmountOf(1_000_000_000_000_000) {
		t.Fatalf("restored %+v", w)
	}
	if s.Rules.PerWithdrawalMax["ETH"] != AmountOf(18_000_000_000_000_000_000) || s.Rules.Finality["BTC"][0].UpTo != AmountOf(1_0000_0000) {
		t.Fatalf("restored rules %+v", s.Rules)
	}
	b, _ := json.Marshal(s.Snapshot())
	if string(b) != oldSnapshot {
		t.Fatalf("re-encoded:\n%s\nwas:\n%s", b, oldSnapshot)
	}
}
