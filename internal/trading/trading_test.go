package trading

import (
	"errors"
	"strings"
	"testing"
)

// listing is a BTC/JPY listing with every protection left to its default.
var listing = Listing{ID: 1, Code: "BTC/JPY", Base: 2, Quote: 1, Scale: 1_0000_0000, TickSize: 1_000, LotSize: 100_000,
	MinQty: 100_000, MaxQty: 100_0000_0000, MaxPrice: 100_000_000_000, MaxOrders: 1 << 10}

func TestWithDefaults(t *testing.T) {
	l := listing.WithDefaults(0, true)
	if l.BandBps != DefaultBandBps || l.BreakerBps != DefaultBreakerBps || l.BreakerWindowNs != DefaultBreakerWindowNs ||
		l.ReferenceChangeBps != DefaultReferenceChangeBps || l.ReferenceDayBps != DefaultReferenceDayBps || l.MaxOrderNotional != 10_000_000 {
		t.Fatalf("defaults of a yen market: %+v", l)
	}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	if n := listing.WithDefaults(8, false).MaxOrderNotional; n != 10_0000_0000 {
		t.Errorf("largest order of a bitcoin-quoted market = %d; want 10 BTC", n)
	}
	explicit := listing
	explicit.BandBps, explicit.MaxOrderNotional = 300, 5
	if l := explicit.WithDefaults(0, true); l.BandBps != 300 || l.MaxOrderNotional != 5 {
		t.Errorf("explicit values overridden: %+v", l)
	}
	// A listing without defaults, or with bounds off their range, is refused.
	for name, edit := range map[string]func(*Listing){
		"no band":         func(l *Listing) { l.BandBps = 0 },
		"band above 50%":  func(l *Listing) { l.BandBps = MaxBandBps + 1 },
		"no largest":      func(l *Listing) { l.MaxOrderNotional = 0 },
		"no breaker":      func(l *Listing) { l.BreakerBps = 0 },
		"window too long": func(l *Listing) { l.BreakerWindowNs = MaxBreakerWindowNs + 1 },
		"window too short": func(l *Listing) {
			l.BreakerWindowNs = MinBreakerWindowNs - 1
		},
		"no operator bound": func(l *Listing) { l.ReferenceDayBps = 0 },
	} {
		bad := listing.WithDefaults(0, true)
		edit(&bad)
		if err := bad.Validate(); !errors.Is(err, ErrListing) {
			t.Errorf("%s: Validate() = %v; want ErrListing", name, err)
		}
	}
}

func TestNotional(t *testing.T) {
	l := listing
	for _, c := range []struct{ price, qty, want int64 }{
		{10_000_000, 1_0000_0000, 10_000_000},
		{10_000_000, 100_000, 10_000},
		{100_000_000_000, 100_0000_0000, 10_000_000_000_000},
		{1 << 62, 1 << 62, 1 << 62},
	} {
		if got := l.Notional(c.price, c.qty); got != c.want {
			t.Errorf("Notional(%d, %d) = %d; want %d", c.price, c.qty, got, c.want)
		}
	}
}

// TestCheckMove: one operator moves a price within the change and day
// bounds; beyond either, or with nothing to measure against, it takes two.
func TestCheckMove(t *testing.T) {
	const day = PriceDay
	const t0 = int64(1_700_000_000e9)
	h := RecordApproved(88, t0)
	tests := []struct {
		name    string
		cur     int64
		base    int64
		target  int64
		history []PricePoint
		at      int64
		ok      bool
		why     string
	}{
		{"within 5%", 88, 0, 92, h, t0 + 1, true, ""},
		{"just beyond 5%", 88, 0, 93, h, t0 + 1, false, "a change"},
		{"88 to 1", 88, 0, 1, h, t0 + 1, false, "-98.86%"},
		{"first price, nothing to measure", 0, 0, 88, nil, t0, false, "no price to measure"},
		{"first price against the market's", 0, 90, 88, nil, t0, true, ""},
		{"5% twice in a day is 10.25%", 92, 0, 96, RecordMove(h, 92, t0+1), t0 + 2, true, ""},
		{"a third step breaks the day", 96, 0, 100, RecordMove(RecordMove(h, 92, t0+1), 96, t0+2), t0 + 3, false, "a day"},
		{"a day later it is anchored anew", 96, 0, 100, RecordMove(RecordMove(h, 92, t0+1), 96, t0+2), t0 + 2 + day, true, ""},
	}
	for _, tt := range tests {
		err := CheckMove("reference", tt.cur, tt.base, tt.target, tt.history, tt.at, 500, 1000)
		if (err == nil) != tt.ok || (err != nil && (!errors.Is(err, ErrNeedsApproval) || !strings.Contains(err.Error(), tt.why))) {
			t.Errorf("%s: CheckMove = %v; want ok=%v (%q)", tt.name, err, tt.ok, tt.why)
		}
	}
	// Many small moves within a day are bounded in number.
	hist := RecordApproved(1_000_000, t0)
	for i := 1; i < MaxPriceChanges; i++ {
		hist = RecordMove(hist, 1_000_000+int64(i%2), t0+int64(i))
	}
	if err := CheckMove("reference", 1_000_000, 0, 1_000_001, hist, t0+MaxPriceChanges, 500, 1000); !errors.Is(err, ErrNeedsApproval) {
		t.Errorf("change number %d within a day = %v", MaxPriceChanges+1, err)
	}
	// The day's changes are pruned: what is kept is bounded.
	for i := 0; i < 3*MaxPriceChanges; i++ {
		hist = RecordMove(hist, 1_000_000, t0+day*int64(i))
	}
	if len(hist) > 3 {
		t.Errorf("history of %d points after changes a day apart", len(hist))
	}
}

// TestBreaker: a move beyond BreakerBps from the price a window earlier
// trips; the same move spread over more than a window does not.
func TestBreaker(t *testing.T) {
	m := &Market{Listing: listing.WithDefaults(0, true)}
	const t0 = int64(1_700_000_000e9)
	w := m.Listing.BreakerWindowNs
	steps := []struct {
		at, before, after int64
		trip              bool
	}{
		{t0, 10_000_000, 10_200_000, false},
		{t0 + w/4, 10_200_000, 10_400_000, false},
		{t0 + w/2, 10_400_000, 10_500_000, false},        // +5.00%: at the bound
		{t0 + w/2 + 1, 10_500_000, 10_501_000, true},     // beyond
		{t0 + 2*w, 10_501_000, 10_600_000, false},        // a window later: from 10,501,000
		{t0 + 2*w + 1, 10_600_000, 9_900_000, true},      // -5.72% down
		{t0 + 4*w, 9_900_000, 10_300_000, false},         // +4.04%
		{t0 + 4*w - 10*w, 10_300_000, 10_310_000, false}, // a time going back counts now
	}
	for i, s := range steps {
		if _, trip := m.Breaker(s.at, s.before, s.after); trip != s.trip {
			t.Errorf("step %d: Breaker(%d, %d, %d) trip = %v; want %v", i, s.at-t0, s.before, s.after, trip, s.trip)
		}
		if len(m.samples) > breakerBuckets+1 {
			t.Fatalf("step %d: %d samples kept", i, len(m.samples))
		}
	}
	if got := m.BreakerText(10_000_000, 10_501_000); !strings.Contains(got, "+5.01%") || !strings.Contains(got, "300s") {
		t.Errorf("BreakerText = %q", got)
	}
}

// TestAboveLargest: the largest order's check in 128 bits, exact at the
// boundary (a satoshi over is over, though its notional rounds down to the
// limit) and far beyond it.
func TestAboveLargest(t *testing.T) {
	s := New()
	l := listing.WithDefaults(0, true) // 10,000,000 yen
	if err := s.List(l, 0); err != nil {
		t.Fatal(err)
	}
	m, _ := s.Market(1)
	for _, c := range []struct {
		price, qty int64
		above      bool
	}{
		{10_000_000, 1_0000_0000, false},
		{10_000_000, 1_0000_0001, true},
		{10_001_000, 1_0000_0000, true},
		{100_000_000_000, 100_0000_0000, true},
		{1_000, 100_000, false},
	} {
		if got := m.AboveLargest(c.price, c.qty); got != c.above {
			t.Errorf("AboveLargest(%d, %d) = %v; want %v", c.price, c.qty, got, c.above)
		}
	}
}
