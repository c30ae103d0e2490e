package market

import (
	"errors"
	"math"
	"slices"
	"testing"
)

// bandConfig is testConfig with a 10% band.
var bandConfig = func() Config { c := testConfig; c.BandBps = 1000; return c }()

// bandBook returns a book of bandConfig with its index at 10,000: the band
// is 9,000-11,000.
func bandBook(t *testing.T, orders ...Order) *Book {
	t.Helper()
	b := bookOf(t, bandConfig)
	if _, err := b.SetIndex(10_000); err != nil {
		t.Fatal(err)
	}
	for _, o := range orders {
		if _, res, err := b.Place(o, nil); err != nil || res.Resting != o.Qty {
			t.Fatalf("Place(%+v) = %+v, %v; want it resting", o, res, err)
		}
	}
	return b
}

func TestBandOf(t *testing.T) {
	tests := []struct {
		cfg      Config
		ref      int64
		lo, hi   int64
		describe string
	}{
		{bandConfig, 10_000, 9_000, 11_000, "on the tick"},
		{bandConfig, 10_010, 9_010, 11_010, "edges rounded inward: 9,009 up, 11,011 down"},
		{bandConfig, 10, 10, 10, "a band narrower than the tick is the reference"},
		{bandConfig, 100_000, 90_000, 100_000, "capped at the max price"},
		{func() Config { c := bandConfig; c.BandBps = 9_999; return c }(), 10_000, 10, 19_990, "never below one tick"},
		{func() Config { c := bandConfig; c.MaxPrice = math.MaxInt64 / 10 * 10; return c }(), math.MaxInt64 / 10 * 10, math.MaxInt64/10*10 - math.MaxInt64/10*10/10, math.MaxInt64 / 10 * 10, "no overflow near the top"},
	}
	for _, tt := range tests {
		lo, hi := tt.cfg.bandOf(tt.ref)
		if lo != tt.lo || hi != tt.hi {
			t.Errorf("%s: bandOf(%d) = %d-%d; want %d-%d", tt.describe, tt.ref, lo, hi, tt.lo, tt.hi)
		}
	}
}

// TestBandEdges: a limit order at either edge of the band is taken, one
// tick beyond is refused with ErrOutsideBand, and nothing changes.
func TestBandEdges(t *testing.T) {
	for _, tt := range []struct {
		o    Order
		want error
	}{
		{lim(1, 1, Buy, 9_000, 100), nil},
		{lim(1, 1, Buy, 8_990, 100), ErrOutsideBand},
		{lim(1, 1, Sell, 11_000, 100), nil},
		{lim(1, 1, Sell, 11_010, 100), ErrOutsideBand},
		{lim(1, 1, Buy, 11_010, 100), ErrOutsideBand},
		{with(lim(1, 1, Sell, 8_990, 100), PostOnly), ErrOutsideBand},
		{with(lim(1, 1, Buy, 11_010, 100), IOC), ErrOutsideBand},
		{with(lim(1, 1, Buy, 11_010, 100), FOK), ErrOutsideBand},
	} {
		b := bandBook(t)
		_, _, err := b.Place(tt.o, nil)
		if err != tt.want {
			t.Errorf("Place(%+v) = %v; want %v", tt.o, err, tt.want)
		}
		if err != nil && b.Len() != 0 {
			t.Errorf("refused %+v left %d orders", tt.o, b.Len())
		}
	}
	// Replace to a price beyond the band is refused; in place it is not.
	b := bandBook(t, lim(1, 1, Buy, 9_500, 500))
	if _, _, err := b.Replace(1, 1, 8_000, 500, nil); err != ErrOutsideBand {
		t.Errorf("Replace beyond the band = %v", err)
	}
	if _, res, err := b.Replace(1, 1, 9_500, 200, nil); err != nil || res.Resting != 200 {
		t.Errorf("Replace in place = %+v, %v", res, err)
	}
}

// TestMarketOrderClamped: a market sell whose protection price is 10 fills
// only down to the band's floor, and the rest is cancelled: the bid below
// the band is never reached.
func TestMarketOrderClamped(t *testing.T) {
	b := bandBook(t, lim(1, 1, Buy, 9_500, 100), lim(2, 1, Buy, 9_000, 100))
	// A bid below the band rests (it cannot trade there): placed under the
	// old band, kept by SetIndex because it is below, not above.
	b.SetIndex(9_000) // band 8,100-9,900
	if _, res, err := b.Place(lim(3, 2, Buy, 8_100, 100), nil); err != nil || res.Resting != 100 {
		t.Fatalf("bid at the floor: %+v %v", res, err)
	}
	b.SetIndex(10_000) // back to 9,000-11,000: the bid at 8,100 stays below
	fills, res, err := b.Place(Order{ID: 4, Owner: 3, Side: Sell, Kind: Market, Price: 10, Qty: 1_000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Filled != 200 || res.Cancelled != 800 || len(fills) != 2 || fills[1].Price != 9_000 {
		t.Fatalf("market sell = %+v, fills %+v", res, fills)
	}
	for _, f := range fills {
		if f.Price < 9_000 {
			t.Errorf("fill %+v below the band", f)
		}
	}
	if bid, _ := b.Best(); bid != 8_100 {
		t.Errorf("best bid %d; the bid below the band should rest untouched", bid)
	}
	if p, err := b.CheckBand(Sell, Market, 10); err != nil || p != 9_000 {
		t.Errorf("CheckBand(sell market at 10) = %d, %v; want 9,000", p, err)
	}
	if p, err := b.CheckBand(Buy, Market, math.MaxInt64); err != nil || p != 11_000 {
		t.Errorf("CheckBand(buy market at max) = %d, %v; want 11,000", p, err)
	}
	if _, _, err := b.Place(Order{ID: 5, Owner: 3, Side: Sell, Kind: Market, Price: 10, Qty: 100}, nil); err != ErrNoLiquidity {
		t.Errorf("market sell with only a bid below the band = %v; want ErrNoLiquidity", err)
	}
}

// TestNoReference: a banded book with no fill and no index takes orders
// that rest and refuses every order that would trade.
func TestNoReference(t *testing.T) {
	b := bookOf(t, bandConfig, lim(1, 1, Buy, 1_000, 100), lim(2, 2, Sell, 90_000, 100))
	if lo, hi := b.Band(); lo != 0 || hi != 0 {
		t.Fatalf("band %d-%d with no reference", lo, hi)
	}
	for _, o := range []Order{
		lim(3, 3, Sell, 1_000, 100),
		{ID: 3, Owner: 3, Side: Sell, Kind: Market, Price: 10, Qty: 100},
		with(lim(3, 3, Sell, 50_000, 100), IOC),
		with(lim(3, 3, Sell, 50_000, 100), FOK),
	} {
		if _, _, err := b.Place(o, nil); err != ErrNoReference {
			t.Errorf("Place(%+v) = %v; want ErrNoReference", o, err)
		}
	}
	if _, _, err := b.Replace(1, 1, 90_000, 100, nil); err != ErrNoReference {
		t.Errorf("Replace to a crossing price = %v; want ErrNoReference", err)
	}
	if _, _, err := b.Place(with(lim(3, 3, Sell, 1_000, 100), PostOnly), nil); err != ErrWouldCross {
		t.Errorf("crossing post-only = %v; want ErrWouldCross", err)
	}
	// An index opens the market. The ask at 90,000 is far above the band
	// and stays; the bid at 1,000 far below and stays.
	gone, err := b.SetIndex(10_000)
	if err != nil || len(gone) != 0 || b.Len() != 2 {
		t.Fatalf("SetIndex = %v, %v, %d resting", gone, err, b.Len())
	}
	if err := b.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

// TestSetIndexSweeps: moving the index cancels what would fill outside the
// new band (asks below its floor, bids above its ceiling), best first; a
// price off the rules changes nothing; clearing it leaves the last fill as
// the reference.
func TestSetIndexSweeps(t *testing.T) {
	b := bandBook(t, lim(1, 1, Sell, 10_500, 100), lim(2, 1, Sell, 10_200, 100), lim(3, 2, Sell, 10_200, 100), lim(4, 2, Buy, 9_800, 100))
	gone, err := b.SetIndex(12_000) // 10,800-13,200
	if err != nil {
		t.Fatal(err)
	}
	if ids := []OrderID{gone[0].ID, gone[1].ID, gone[2].ID}; len(gone) != 3 || !slices.Equal(ids, []OrderID{2, 3, 1}) {
		t.Fatalf("swept %+v; want asks 2, 3, 1", gone)
	}
	if b.Len() != 1 {
		t.Fatalf("%d resting; the bid below the band stays", b.Len())
	}
	if _, err := b.SetIndex(12_005); !errors.Is(err, ErrOffTick) {
		t.Errorf("SetIndex off the tick = %v", err)
	}
	if lo, hi := b.Band(); lo != 10_800 || hi != 13_200 {
		t.Errorf("band after a refused index %d-%d", lo, hi)
	}
	// A fill in index mode leaves the band where the index is.
	b = bandBook(t, lim(1, 1, Sell, 10_500, 100))
	if _, res, err := b.Place(lim(2, 2, Buy, 10_500, 100), nil); err != nil || res.Filled != 100 {
		t.Fatalf("buy: %+v %v", res, err)
	}
	if lo, hi := b.Band(); lo != 9_000 || hi != 11_000 {
		t.Errorf("band after a fill with an index: %d-%d", lo, hi)
	}
	// Cleared: the last fill, 10,500, is the reference.
	if _, err := b.SetIndex(0); err != nil {
		t.Fatal(err)
	}
	if lo, hi := b.Band(); lo != 9_450 || hi != 11_550 {
		t.Errorf("band after clearing the index: %d-%d; want 9,450-11,550", lo, hi)
	}
	if err := b.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

// TestRemainderBeyondMovedBand: a limit buy that fills far below its
// price moves the band down with its fill; its remainder, now above the
// ceiling, is cancelled rather than left where a sell would fill it
// outside the band.
func TestRemainderBeyondMovedBand(t *testing.T) {
	b := bandBook(t, lim(1, 1, Sell, 9_000, 100))
	b.SetIndex(0) // the band follows the last fill from now on; none yet
	if _, res, err := b.Place(lim(2, 2, Buy, 9_000, 100), nil); err != ErrNoReference {
		t.Fatalf("trade with no reference = %+v, %v", res, err)
	}
	b.SetIndex(10_000)
	if _, res, err := b.Place(lim(2, 2, Buy, 10_000, 100), nil); err != nil || res.Filled != 100 {
		t.Fatalf("opening trade: %+v %v", res, err)
	}
	b.SetIndex(0) // last fill 9,000: band 8,100-9,900
	if _, res, err := b.Place(lim(3, 1, Sell, 8_500, 100), nil); err != nil || res.Resting != 100 {
		t.Fatalf("ask: %+v %v", res, err)
	}
	// A buy at 9,900 fills 8,500 (band now 7,650-9,350): 9,900 is above.
	fills, res, err := b.Place(lim(4, 2, Buy, 9_900, 300), nil)
	if err != nil || res.Filled != 100 || res.Cancelled != 200 || res.Resting != 0 || fills[0].Price != 8_500 {
		t.Fatalf("buy = %+v, %v, %+v", res, err, fills)
	}
	if lo, hi := b.Band(); lo != 7_650 || hi != 9_350 {
		t.Errorf("band %d-%d", lo, hi)
	}
	if err := b.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreReference: the reference goes back before the orders, an
// order beyond the band is refused, and a book with orders keeps its own.
func TestRestoreReference(t *testing.T) {
	b := bookOf(t, bandConfig)
	if err := b.RestoreReference(10_000, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Restore(lim(1, 1, Buy, 11_500, 100)); err != ErrOutsideBand {
		t.Errorf("Restore of a bid above the band = %v", err)
	}
	if err := b.Restore(lim(1, 1, Buy, 5_000, 100)); err != nil {
		t.Errorf("Restore of a bid below the band = %v", err)
	}
	if err := b.RestoreReference(9_000, 0); err != ErrConfig {
		t.Errorf("RestoreReference with orders = %v", err)
	}
	if err := bookOf(t, bandConfig).RestoreReference(10_005, 0); err != ErrOffTick {
		t.Errorf("RestoreReference off the tick = %v", err)
	}
}
