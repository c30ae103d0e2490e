package withdraw

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestFinalityTiers(t *testing.T) {
	r, err := ParseRules([]byte(`{"finality": {"BTC": [{"up_to": 100000000, "depth": 6}, {"up_to": 1000000000, "depth": 20}, {"depth": 100}], "XEM": [{"depth": 30}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		asset    string
		decimals uint8
		amount   uint64
		want     int32
	}{
		{"BTC", 8, 1, 6},
		{"BTC", 8, 1_0000_0000, 6}, // bounds are inclusive
		{"BTC", 8, 1_0000_0001, 20},
		{"BTC", 8, 10_0000_0000, 20},
		{"BTC", 8, 10_0000_0001, 100},
		{"BTC", 8, ^uint64(0), 100},
		{"XEM", 6, ^uint64(0), 30},
		// Not in the rules: the default tiers by whole coins.
		{"LTC", 8, 1_0000_0000, DefaultDepthSmall},
		{"LTC", 8, 5_0000_0000, DefaultDepthMedium},
		{"LTC", 8, 11_0000_0000, DefaultDepthLarge},
		{"ETH", 18, 2_000_000_000_000_000_000, DefaultDepthMedium},
		{"ETH", 18, 11_000_000_000_000_000_000, DefaultDepthLarge},
		{"BIG", 19, ^uint64(0), DefaultDepthMedium}, // ten coins do not fit in 64 bits
		{"HUGE", 30, ^uint64(0), DefaultDepthSmall},
	}
	for _, c := range cases {
		if got := r.FinalityDepth(c.asset, c.decimals, AmountOf(c.amount)); got != c.want {
			t.Errorf("FinalityDepth(%s, %d) = %d; want %d", c.asset, c.amount, got, c.want)
		}
	}
	// No rules at all: still the defaults, never no finality.
	var none Rules
	if got := none.FinalityDepth("BTC", 8, AmountOf(1)); got != DefaultDepthSmall {
		t.Errorf("FinalityDepth without rules = %d; want %d", got, DefaultDepthSmall)
	}
	for _, d := range []uint8{0, 8, 18, 19, 20, 30} {
		ts := DefaultFinality(d)
		if err := CheckTiers("X", ts); err != nil {
			t.Errorf("DefaultFinality(%d) = %+v: %v", d, ts, err)
		}
		// The depth computed without the tiers is the tiers' depth.
		given := Rules{Finality: map[string][]Tier{"X": ts}}
		for _, a := range []uint64{0, 1, 9, 10, 11, 999, 1000, 1001, 1_0000_0000, 1_0000_0001, 10_0000_0000, 10_0000_0001, 1e18, 1e18 + 1, 1e19, 1e19 + 1, ^uint64(0)} {
			if got, want := none.FinalityDepth("X", d, AmountOf(a)), given.FinalityDepth("X", d, AmountOf(a)); got != want {
				t.Errorf("default depth of %d at %d decimals = %d; the default tiers say %d", a, d, got, want)
			}
		}
	}
}

func TestFinalityRulesRefused(t *testing.T) {
	many := make([]string, MaxFinalityTiers+1)
	for i := range many {
		many[i] = fmt.Sprintf(`{"up_to": %d, "depth": %d}`, i+1, i+1)
	}
	many[len(many)-1] = fmt.Sprintf(`{"depth": %d}`, len(many))
	cases := []struct{ name, finality, want string }{
		{"no tiers", `{"BTC": []}`, "no tiers"},
		{"zero depth", `{"BTC": [{"depth": 0}]}`, "at least 1"},
		{"negative depth", `{"BTC": [{"depth": -3}]}`, "at least 1"},
		{"too deep", `{"BTC": [{"depth": 10001}]}`, "at most 10000"},
		{"depths not increasing", `{"BTC": [{"up_to": 5, "depth": 6}, {"depth": 6}]}`, "not deeper"},
		{"depths decreasing", `{"BTC": [{"up_to": 5, "depth": 20}, {"depth": 6}]}`, "not deeper"},
		{"bound on the last tier", `{"BTC": [{"up_to": 5, "depth": 6}, {"up_to": 9, "depth": 20}]}`, "last tier"},
		{"a middle tier without a bound", `{"BTC": [{"depth": 6}, {"depth": 20}]}`, "needs a bound"},
		{"bounds not increasing", `{"BTC": [{"up_to": 5, "depth": 6}, {"up_to": 5, "depth": 7}, {"depth": 8}]}`, "not above"},
		{"too many tiers", `{"BTC": [` + strings.Join(many, ",") + `]}`, "at most 16"},
		{"empty code", `{"": [{"depth": 6}]}`, "empty asset code"},
		{"misspelt field", `{"BTC": [{"upto": 5, "depth": 6}, {"depth": 7}]}`, "unknown field"},
		{"depth as text", `{"BTC": [{"depth": "6"}]}`, "cannot unmarshal"},
		{"negative bound", `{"BTC": [{"up_to": -1, "depth": 6}, {"depth": 7}]}`, "whole number of base units"},
		{"fractional bound", `{"BTC": [{"up_to": 1.5, "depth": 6}, {"depth": 7}]}`, "whole number of base units"},
		{"bound of 2^128", `{"BTC": [{"up_to": 340282366920938463463374607431768211456, "depth": 6}, {"depth": 7}]}`, "below 2^128"},
	}
	for _, c := range cases {
		_, err := ParseRules([]byte(`{"finality": ` + c.finality + `}`))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: ParseRules = %v; want an error containing %q", c.name, err, c.want)
		}
	}
	// The journaled form is checked too, not only files.
	r := Rules{CoolDownSeconds: 1, Finality: map[string][]Tier{"BTC": {{UpTo: AmountOf(10), Depth: 3}, {Depth: 2}}}}
	if err := r.Check(); !errors.Is(err, ErrFinalityRules) {
		t.Errorf("Check(%+v) = %v; want %v", r.Finality, err, ErrFinalityRules)
	}
}

// view is the policy's view for these unit tests: fixed facts.
type view struct {
	avail map[string]Amount
	fin   Finality
}

func (v view) Halted(string) error                        { return nil }
func (v view) CustomerSince(uint64, string, int64) Amount { return Amount{} }
func (v view) AssetSince(string, int64) Amount            { return Amount{} }
func (v view) Denied(string) string                       { return "" }
func (v view) Available(_ uint64, a string) Amount        { return v.avail[a] }
func (v view) Finality(uint64) Finality                   { return v.fin }

func TestEvaluateFinality(t *testing.T) {
	r := Rules{CoolDownSeconds: 1}
	dep := Unfinal{Asset: "BTC", Amount: AmountOf(40), Count: 1, Deposit: "ab:0", DepositAmount: AmountOf(40), Confirmations: 3, Depth: 6}
	cases := []struct {
		name   string
		v      view
		asset  string
		amount uint64
		deny   string // "" allowed
	}{
		{"nothing pending", view{avail: map[string]Amount{"BTC": AmountOf(100)}}, "BTC", 100, ""},
		{"what was final before", func() view {
			d := dep
			d.Available = AmountOf(100)
			return view{avail: map[string]Amount{"BTC": AmountOf(100)}, fin: Finality{Unfinal: []Unfinal{d}}}
		}(), "BTC", 60, ""},
		{"into the deposit", func() view {
			d := dep
			d.Available = AmountOf(100)
			return view{avail: map[string]Amount{"BTC": AmountOf(100)}, fin: Finality{Unfinal: []Unfinal{d}}}
		}(), "BTC", 61, "deposit ab:0 of 40 BTC has 3 of the 6 confirmations it needs"},
		{"traded away blocks other assets", func() view {
			d := dep
			d.Available = AmountOf(10)
			return view{avail: map[string]Amount{"BTC": AmountOf(10), "JPY": AmountOf(5_000_000)}, fin: Finality{Unfinal: []Unfinal{d}}}
		}(), "JPY", 1, "no withdrawal of any asset"},
		{"owed blocks everything", view{avail: map[string]Amount{"JPY": AmountOf(5_000_000)}, fin: Finality{Owed: []Owed{{Asset: "BTC", Amount: AmountOf(30)}}}}, "JPY", 1, "owes 30 BTC"},
	}
	for _, c := range cases {
		req := Request{Customer: 1, Asset: c.asset, Address: "a", Amount: AmountOf(c.amount), Decimals: 8}
		if c.asset == "JPY" {
			req.Decimals, req.Fiat = 0, true
		}
		d, why := r.Evaluate(req, c.v)
		if c.deny == "" {
			if d != Allow {
				t.Errorf("%s: %v %q; want allowed", c.name, d, why)
			}
			continue
		}
		if d != Deny || !strings.Contains(why, c.deny) {
			t.Errorf("%s: %v %q; want denied with %q", c.name, d, why, c.deny)
		}
	}
	// What the API shows: withdrawable beside available.
	d := dep
	d.Available = AmountOf(100)
	if got, why := Withdrawable("BTC", AmountOf(100), Finality{Unfinal: []Unfinal{d}}); got != AmountOf(60) || why == "" {
		t.Errorf("Withdrawable = %s %q; want 60 with a reason", got, why)
	}
	if got, why := Withdrawable("JPY", AmountOf(7), Finality{Unfinal: []Unfinal{d}}); got != AmountOf(7) || why != "" {
		t.Errorf("Withdrawable(JPY) = %s %q; want 7", got, why)
	}
}
