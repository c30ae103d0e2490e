package market

import (
	"errors"
	"math"
	"slices"
	"testing"
)

// testConfig is a market with round numbers: ticks of 10, lots of 100.
var testConfig = Config{TickSize: 10, LotSize: 100, MinQty: 100, MaxQty: 1_000_000, MaxPrice: 100_000, MaxOrders: 1000}

func lim(id OrderID, owner Owner, side Side, price, qty int64) Order {
	return Order{ID: id, Owner: owner, Side: side, Kind: Limit, Price: price, Qty: qty}
}

func with(o Order, k Kind) Order {
	o.Kind = k
	return o
}

// bookOf returns a book with orders placed, failing the test if any does
// not simply rest.
func bookOf(t *testing.T, cfg Config, orders ...Order) *Book {
	t.Helper()
	b := New(cfg, 16)
	for _, o := range orders {
		if _, res, err := b.Place(o, nil); err != nil || res.Resting != o.Qty {
			t.Fatalf("Place(%+v) = %+v, %v; want it resting", o, res, err)
		}
	}
	return b
}

func restingIDs(b *Book) []OrderID {
	var ids []OrderID
	for o := range b.Orders() {
		ids = append(ids, o.ID)
	}
	return ids
}

func TestConfigValidate(t *testing.T) {
	ok := testConfig
	tests := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"valid", func(*Config) {}, true},
		{"tick zero", func(c *Config) { c.TickSize = 0 }, false},
		{"lot negative", func(c *Config) { c.LotSize = -1 }, false},
		{"min below lot", func(c *Config) { c.MinQty = 50 }, false},
		{"min off lot", func(c *Config) { c.MinQty = 150 }, false},
		{"max below min", func(c *Config) { c.MaxQty = 99 }, false},
		{"max price off tick", func(c *Config) { c.MaxPrice = 100_005 }, false},
		{"max price below tick", func(c *Config) { c.MaxPrice = 0 }, false},
		{"no orders", func(c *Config) { c.MaxOrders = 0 }, false},
		{"too many orders", func(c *Config) { c.MaxOrders = MaxOrdersLimit + 1 }, false},
		{"level total overflows", func(c *Config) { c.MaxQty = math.MaxInt64 / 999 }, false},
		{"level total fits", func(c *Config) { c.MaxQty = math.MaxInt64 / 1000 }, true},
		{"band below 100%", func(c *Config) { c.BandBps = MaxBandBps - 1 }, true},
		{"band of 100%", func(c *Config) { c.BandBps = MaxBandBps }, false},
	}
	for _, tt := range tests {
		c := ok
		tt.edit(&c)
		err := c.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrConfig)) {
			t.Errorf("%s: Validate() = %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestNewPanicsOnBadConfig(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New(bad config) did not panic")
		}
	}()
	New(Config{}, 0)
}

// TestRefused checks every refusal: the code, and that the book and the
// caller's fills are untouched.
func TestRefused(t *testing.T) {
	small := testConfig
	small.MaxOrders = 2
	ask := lim(1, 7, Sell, 1000, 200)
	bid := lim(2, 7, Buy, 900, 200)
	tests := []struct {
		name  string
		cfg   Config
		setup []Order
		call  func(b *Book, fills []Fill) ([]Fill, error)
		want  Code
	}{
		{name: "side zero", call: place(Order{ID: 9, Owner: 1, Kind: Limit, Price: 1000, Qty: 100}), want: ErrSide},
		{name: "side three", call: place(Order{ID: 9, Owner: 1, Side: 3, Kind: Limit, Price: 1000, Qty: 100}), want: ErrSide},
		{name: "kind zero", call: place(Order{ID: 9, Owner: 1, Side: Buy, Price: 1000, Qty: 100}), want: ErrKind},
		{name: "kind six", call: place(with(lim(9, 1, Buy, 1000, 100), 6)), want: ErrKind},
		{name: "price zero", call: place(lim(9, 1, Buy, 0, 100)), want: ErrPrice},
		{name: "price negative", call: place(lim(9, 1, Sell, -10, 100)), want: ErrPrice},
		{name: "price above max", call: place(lim(9, 1, Buy, 100_010, 100)), want: ErrPrice},
		{name: "price off tick", call: place(lim(9, 1, Buy, 1005, 100)), want: ErrOffTick},
		{name: "market price off tick", call: place(with(lim(9, 1, Buy, 1001, 100), Market)), want: ErrOffTick},
		{name: "qty zero", call: place(lim(9, 1, Buy, 1000, 0)), want: ErrBelowMin},
		{name: "qty negative", call: place(lim(9, 1, Buy, 1000, -100)), want: ErrBelowMin},
		{name: "qty above max", call: place(lim(9, 1, Buy, 1000, 1_000_100)), want: ErrAboveMax},
		{name: "qty off lot", call: place(lim(9, 1, Buy, 1000, 150)), want: ErrOffLot},
		{name: "duplicate id", setup: []Order{ask}, call: place(lim(1, 2, Buy, 900, 100)), want: ErrDuplicateID},
		{name: "post-only crosses", setup: []Order{ask}, call: place(with(lim(9, 1, Buy, 1000, 100), PostOnly)), want: ErrWouldCross},
		{name: "post-only crosses own order", setup: []Order{ask}, call: place(with(lim(9, 7, Buy, 1010, 100), PostOnly)), want: ErrWouldCross},
		{name: "market into empty side", setup: []Order{bid}, call: place(with(lim(9, 1, Buy, 5000, 100), Market)), want: ErrNoLiquidity},
		{name: "market against own order only", setup: []Order{ask}, call: place(with(lim(9, 7, Buy, 5000, 100), Market)), want: ErrNoLiquidity},
		{name: "market beyond protection", setup: []Order{ask}, call: place(with(lim(9, 1, Buy, 990, 100), Market)), want: ErrNoLiquidity},
		{name: "fok short", setup: []Order{ask}, call: place(with(lim(9, 1, Buy, 1000, 300), FOK)), want: ErrFOKUnfilled},
		{name: "fok beyond limit", setup: []Order{ask}, call: place(with(lim(9, 1, Buy, 990, 100), FOK)), want: ErrFOKUnfilled},
		{name: "fok needs own order", setup: []Order{ask, lim(3, 8, Sell, 1000, 100)}, call: place(with(lim(9, 7, Buy, 1000, 200), FOK)), want: ErrFOKUnfilled},
		{name: "limit into full book", cfg: small, setup: []Order{ask, bid}, call: place(lim(9, 1, Buy, 1000, 300)), want: ErrBookFull},
		{name: "post-only into full book", cfg: small, setup: []Order{ask, bid}, call: place(with(lim(9, 1, Buy, 950, 100), PostOnly)), want: ErrBookFull},
		{name: "cancel unknown", setup: []Order{ask}, call: cancel(2, 7), want: ErrUnknownOrder},
		{name: "cancel not owner", setup: []Order{ask}, call: cancel(1, 8), want: ErrNotOwner},
		{name: "replace unknown", setup: []Order{ask}, call: replace(2, 7, 1000, 100), want: ErrUnknownOrder},
		{name: "replace not owner", setup: []Order{ask}, call: replace(1, 8, 1000, 100), want: ErrNotOwner},
		{name: "replace price off tick", setup: []Order{ask}, call: replace(1, 7, 1001, 100), want: ErrOffTick},
		{name: "replace price zero", setup: []Order{ask}, call: replace(1, 7, 0, 100), want: ErrPrice},
		{name: "replace qty below min", setup: []Order{ask}, call: replace(1, 7, 1000, 0), want: ErrBelowMin},
		{name: "replace qty off lot", setup: []Order{ask}, call: replace(1, 7, 1000, 150), want: ErrOffLot},
		{name: "replace post-only across", setup: []Order{ask, with(lim(3, 8, Buy, 900, 100), PostOnly)}, call: replace(3, 8, 1000, 100), want: ErrWouldCross},
	}
	for _, tt := range tests {
		cfg := tt.cfg
		if cfg == (Config{}) {
			cfg = testConfig
		}
		b := bookOf(t, cfg, tt.setup...)
		before := dumpBook(b)
		fills, err := tt.call(b, []Fill{sentinel})
		if err != tt.want {
			t.Errorf("%s: error %v; want %v", tt.name, err, tt.want)
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: errors.Is(%v, %v) = false", tt.name, err, tt.want)
		}
		if len(fills) != 1 || fills[0] != sentinel {
			t.Errorf("%s: fills = %+v; want the caller's slice untouched", tt.name, fills)
		}
		if after := dumpBook(b); after != before {
			t.Errorf("%s: book changed:\n%s\nto\n%s", tt.name, before, after)
		}
		if err := b.CheckInvariants(); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

func place(o Order) func(*Book, []Fill) ([]Fill, error) {
	return func(b *Book, fills []Fill) ([]Fill, error) {
		fills, res, err := b.Place(o, fills)
		if err != nil && (res.Filled != 0 || res.Resting != 0 || res.Cancelled != 0 || res.Expired != nil) {
			return nil, errors.New("refusal with a non-zero result")
		}
		return fills, err
	}
}

func cancel(id OrderID, owner Owner) func(*Book, []Fill) ([]Fill, error) {
	return func(b *Book, fills []Fill) ([]Fill, error) {
		o, err := b.Cancel(id, owner)
		if err != nil && o != (Order{}) {
			return nil, errors.New("refusal returned an order")
		}
		return fills, err
	}
}

func replace(id OrderID, owner Owner, price, qty int64) func(*Book, []Fill) ([]Fill, error) {
	return func(b *Book, fills []Fill) ([]Fill, error) {
		fills, _, err := b.Replace(id, owner, price, qty, fills)
		return fills, err
	}
}

// TestPriceTimePriority sweeps asks placed out of price order: better
// prices trade first, and at one price the older order first, each at its
// own price.
func TestPriceTimePriority(t *testing.T) {
	b := bookOf(t, testConfig,
		lim(1, 1, Sell, 1010, 100),
		lim(2, 2, Sell, 1000, 100),
		lim(3, 3, Sell, 1000, 200),
		lim(4, 4, Sell, 1020, 100),
	)
	fills, res, err := b.Place(lim(10, 9, Buy, 1010, 500), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Fill{
		{Maker: 2, Taker: 10, MakerOwner: 2, TakerOwner: 9, TakerSide: Buy, Price: 1000, Qty: 100, MakerDone: true},
		{Maker: 3, Taker: 10, MakerOwner: 3, TakerOwner: 9, TakerSide: Buy, Price: 1000, Qty: 200, MakerDone: true},
		{Maker: 1, Taker: 10, MakerOwner: 1, TakerOwner: 9, TakerSide: Buy, Price: 1010, Qty: 100, MakerDone: true},
	}
	if !slices.Equal(fills, want) {
		t.Errorf("fills = %+v; want %+v", fills, want)
	}
	if want := (Result{Filled: 400, Resting: 100}); res.Filled != want.Filled || res.Resting != want.Resting || res.Cancelled != 0 {
		t.Errorf("result = %+v; want %+v", res, want)
	}
	if bid, ask := b.Best(); bid != 1010 || ask != 1020 {
		t.Errorf("Best() = %d, %d; want 1010, 1020", bid, ask)
	}
	if o, ok := b.Resting(10); !ok || o.Qty != 100 || o.Price != 1010 {
		t.Errorf("Resting(10) = %+v, %v; want 100 at 1010", o, ok)
	}
}

// TestKinds places one order of each kind against the same asks.
func TestKinds(t *testing.T) {
	asks := []Order{lim(1, 1, Sell, 1000, 100), lim(2, 2, Sell, 1010, 100), lim(3, 3, Sell, 1030, 100)}
	tests := []struct {
		order     Order
		want      Result
		fills     int
		remaining []OrderID
	}{
		{lim(9, 9, Buy, 1010, 300), Result{Filled: 200, Resting: 100}, 2, []OrderID{9, 3}},
		{lim(9, 9, Buy, 990, 300), Result{Resting: 300}, 0, []OrderID{9, 1, 2, 3}},
		{with(lim(9, 9, Buy, 1010, 300), IOC), Result{Filled: 200, Cancelled: 100}, 2, []OrderID{3}},
		{with(lim(9, 9, Buy, 990, 300), IOC), Result{Cancelled: 300}, 0, []OrderID{1, 2, 3}},
		{with(lim(9, 9, Buy, 1030, 300), FOK), Result{Filled: 300}, 3, nil},
		{with(lim(9, 9, Buy, 1030, 200), FOK), Result{Filled: 200}, 2, []OrderID{3}},
		{with(lim(9, 9, Buy, 1010, 300), Market), Result{Filled: 200, Cancelled: 100}, 2, []OrderID{3}},
		{with(lim(9, 9, Buy, 100_000, 500), Market), Result{Filled: 300, Cancelled: 200}, 3, nil},
		{with(lim(9, 9, Buy, 990, 300), PostOnly), Result{Resting: 300}, 0, []OrderID{9, 1, 2, 3}},
		{with(lim(9, 9, Sell, 1040, 300), PostOnly), Result{Resting: 300}, 0, []OrderID{1, 2, 3, 9}},
	}
	for _, tt := range tests {
		b := bookOf(t, testConfig, asks...)
		fills, res, err := b.Place(tt.order, nil)
		if err != nil {
			t.Errorf("Place(%+v) error %v", tt.order, err)
			continue
		}
		if res.Filled != tt.want.Filled || res.Resting != tt.want.Resting || res.Cancelled != tt.want.Cancelled || len(fills) != tt.fills {
			t.Errorf("Place(%+v) = %+v with %d fills; want %+v with %d", tt.order, res, len(fills), tt.want, tt.fills)
		}
		if got := restingIDs(b); !slices.Equal(got, tt.remaining) {
			t.Errorf("Place(%+v): resting %v; want %v", tt.order, got, tt.remaining)
		}
		if err := b.CheckInvariants(); err != nil {
			t.Errorf("Place(%+v): %v", tt.order, err)
		}
	}
}

// TestSelfTradePrevention: the taker cancels its owner's makers as it meets
// them and trades on with the rest.
func TestSelfTradePrevention(t *testing.T) {
	asks := []Order{
		lim(1, 7, Sell, 1000, 100),
		lim(2, 8, Sell, 1000, 100),
		lim(3, 7, Sell, 1010, 300),
		lim(4, 8, Sell, 1010, 100),
		lim(5, 7, Sell, 1010, 100),
	}
	b := bookOf(t, testConfig, asks...)
	fills, res, err := b.Place(lim(9, 7, Buy, 1010, 200), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantFills := []Fill{
		{Maker: 2, Taker: 9, MakerOwner: 8, TakerOwner: 7, TakerSide: Buy, Price: 1000, Qty: 100, MakerDone: true},
		{Maker: 4, Taker: 9, MakerOwner: 8, TakerOwner: 7, TakerSide: Buy, Price: 1010, Qty: 100, MakerDone: true},
	}
	if !slices.Equal(fills, wantFills) {
		t.Errorf("fills = %+v; want %+v", fills, wantFills)
	}
	if !slices.Equal(res.Expired, []Order{asks[0], asks[2]}) {
		t.Errorf("expired = %+v; want orders 1 and 3", res.Expired)
	}
	if res.Filled != 200 || res.Resting != 0 || res.Cancelled != 0 {
		t.Errorf("result = %+v; want filled 200", res)
	}
	// Matching stopped when the taker was filled: order 5 was not met.
	if got := restingIDs(b); !slices.Equal(got, []OrderID{5}) {
		t.Errorf("resting %v; want [5]", got)
	}

	// A FOK counts only other owners' quantity, and expires the own orders
	// in its way when it trades.
	b = bookOf(t, testConfig, asks[:2]...)
	if _, _, err := b.Place(with(lim(9, 7, Buy, 1000, 200), FOK), nil); err != ErrFOKUnfilled {
		t.Errorf("FOK over own order: error %v; want %v", err, ErrFOKUnfilled)
	}
	fills, res, err = b.Place(with(lim(9, 7, Buy, 1000, 100), FOK), nil)
	if err != nil || len(fills) != 1 || fills[0].Maker != 2 || len(res.Expired) != 1 || res.Expired[0].ID != 1 || b.Len() != 0 {
		t.Errorf("FOK = %+v, %+v, %v; want a fill of 2 and 1 expired", fills, res, err)
	}

	// Expired is reset by the next call.
	b = bookOf(t, testConfig, asks[0], lim(2, 8, Buy, 900, 100))
	if _, res, _ := b.Place(lim(9, 7, Buy, 1000, 100), nil); len(res.Expired) != 1 {
		t.Fatalf("expired = %+v; want order 1", res.Expired)
	}
	if _, res, _ := b.Place(lim(10, 8, Sell, 1100, 100), nil); res.Expired != nil {
		t.Errorf("expired = %+v after a call that expired nothing", res.Expired)
	}
}

func TestCancel(t *testing.T) {
	b := bookOf(t, testConfig, lim(1, 1, Sell, 1000, 500), lim(2, 2, Sell, 1000, 100))
	if _, _, err := b.Place(with(lim(3, 3, Buy, 1000, 200), IOC), nil); err != nil {
		t.Fatal(err)
	}
	got, err := b.Cancel(1, 1)
	if want := lim(1, 1, Sell, 1000, 300); err != nil || got != want {
		t.Errorf("Cancel(1, 1) = %+v, %v; want %+v", got, err, want)
	}
	if _, err := b.Cancel(1, 1); err != ErrUnknownOrder {
		t.Errorf("second Cancel(1, 1) error %v; want %v", err, ErrUnknownOrder)
	}
	if d := b.Depth(Sell, 10, nil); !slices.Equal(d, []Level{{Price: 1000, Qty: 100, Orders: 1}}) {
		t.Errorf("Depth(Sell) = %+v", d)
	}
	if _, err := b.Cancel(2, 2); err != nil || b.Len() != 0 {
		t.Errorf("Cancel(2, 2) = %v, Len %d", err, b.Len())
	}
	if bid, ask := b.Best(); bid != 0 || ask != 0 {
		t.Errorf("Best() of empty book = %d, %d; want 0, 0", bid, ask)
	}
}

func TestReplace(t *testing.T) {
	bids := []Order{lim(1, 1, Buy, 1000, 300), lim(2, 2, Buy, 1000, 300), lim(3, 3, Buy, 990, 300)}
	tests := []struct {
		name         string
		id           OrderID
		owner        Owner
		price, qty   int64
		want         Result
		order        []OrderID
		fills        int
		resting      int64
		restingPrice int64
	}{
		{name: "reduce keeps priority", id: 1, owner: 1, price: 1000, qty: 100, want: Result{Resting: 100}, order: []OrderID{1, 2, 3, 7}},
		{name: "same keeps priority", id: 1, owner: 1, price: 1000, qty: 300, want: Result{Resting: 300}, order: []OrderID{1, 2, 3, 7}},
		{name: "increase loses priority", id: 1, owner: 1, price: 1000, qty: 400, want: Result{Resting: 400}, order: []OrderID{2, 1, 3, 7}},
		{name: "move down", id: 1, owner: 1, price: 990, qty: 300, want: Result{Resting: 300}, order: []OrderID{2, 3, 1, 7}},
		{name: "move up", id: 3, owner: 3, price: 1000, qty: 100, want: Result{Resting: 100}, order: []OrderID{1, 2, 3, 7}},
		{name: "move across trades", id: 2, owner: 2, price: 1100, qty: 300, want: Result{Filled: 100, Resting: 200}, order: []OrderID{2, 1, 3}, fills: 1},
	}
	for _, tt := range tests {
		b := bookOf(t, testConfig, append(slices.Clone(bids), lim(7, 7, Sell, 1100, 100))...)
		fills, res, err := b.Replace(tt.id, tt.owner, tt.price, tt.qty, nil)
		if err != nil || res.Filled != tt.want.Filled || res.Resting != tt.want.Resting || res.Cancelled != 0 || len(fills) != tt.fills {
			t.Errorf("%s: Replace = %+v, %d fills, %v; want %+v, %d fills", tt.name, res, len(fills), err, tt.want, tt.fills)
		}
		if got := restingIDs(b); !slices.Equal(got, tt.order) {
			t.Errorf("%s: order %v; want %v", tt.name, got, tt.order)
		}
		if o, ok := b.Resting(tt.id); !ok || o.Qty != tt.want.Resting || o.Price != tt.price || o.Kind != Limit || o.Owner != tt.owner {
			t.Errorf("%s: Resting(%d) = %+v, %v", tt.name, tt.id, o, ok)
		}
		if err := b.CheckInvariants(); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}

	// A replaced PostOnly stays PostOnly and moves where it does not cross.
	b := bookOf(t, testConfig, with(lim(1, 1, Buy, 900, 100), PostOnly), lim(2, 2, Sell, 1000, 100))
	if _, res, err := b.Replace(1, 1, 990, 200, nil); err != nil || res.Resting != 200 {
		t.Errorf("Replace(PostOnly) = %+v, %v", res, err)
	}
	if o, _ := b.Resting(1); o.Kind != PostOnly || o.Price != 990 {
		t.Errorf("Resting(1) = %+v; want post-only at 990", o)
	}
}

func TestDepthAndOrders(t *testing.T) {
	b := bookOf(t, testConfig,
		lim(1, 1, Buy, 900, 100), lim(2, 1, Buy, 950, 200), lim(3, 2, Buy, 900, 300),
		lim(4, 1, Sell, 1000, 100), lim(5, 2, Sell, 1100, 100), lim(6, 3, Sell, 1000, 100),
	)
	if got, want := b.Depth(Buy, 10, nil), []Level{{950, 200, 1}, {900, 400, 2}}; !slices.Equal(got, want) {
		t.Errorf("Depth(Buy) = %+v; want %+v", got, want)
	}
	if got, want := b.Depth(Sell, 1, nil), []Level{{1000, 200, 2}}; !slices.Equal(got, want) {
		t.Errorf("Depth(Sell, 1) = %+v; want %+v", got, want)
	}
	if got, want := restingIDs(b), []OrderID{2, 1, 3, 4, 6, 5}; !slices.Equal(got, want) {
		t.Errorf("Orders() = %v; want %v", got, want)
	}
	if b.Len() != 6 {
		t.Errorf("Len() = %d; want 6", b.Len())
	}
	if _, ok := b.Resting(99); ok {
		t.Error("Resting(99) found an order")
	}
	n := 0
	for range b.Orders() {
		if n++; n == 2 {
			break
		}
	}
}

// TestSteadyStateAllocs checks that placing, trading, replacing and
// cancelling allocate nothing once the book has grown to its working size.
func TestSteadyStateAllocs(t *testing.T) {
	b := New(testConfig, 256)
	for i := range 100 {
		for _, side := range []Side{Buy, Sell} {
			price := int64(1000 - 10*(i%20))
			if side == Sell {
				price = int64(1010 + 10*(i%20))
			}
			if _, _, err := b.Place(lim(OrderID(2*i+int(side)), Owner(i%7+1), side, price, 1000), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	fills := make([]Fill, 0, 64)
	id := OrderID(1000)
	cycle := func() {
		id++
		fills, _, _ = b.Place(lim(id, 99, Buy, 1020, 1000), fills[:0]) // crosses and rests
		fills, _, _ = b.Replace(id, 99, 1000, 500, fills[:0])
		fills, _, _ = b.Replace(id, 99, 980, 500, fills[:0])
		fills, _, _ = b.Replace(id, 99, 980, 300, fills[:0])
		b.Cancel(id, 99)
		id++
		fills, _, _ = b.Place(with(lim(id, 98, Sell, 990, 2000), IOC), fills[:0])
		id++
		fills, _, _ = b.Place(lim(id, 97, Buy, 990, 1000), fills[:0]) // refill what the IOC took
		id++
		fills, _, _ = b.Place(lim(id, 97, Sell, 1010, 1000), fills[:0])
	}
	for range 1000 {
		cycle()
	}
	if allocs := testing.AllocsPerRun(1000, cycle); allocs != 0 {
		t.Errorf("allocations per cycle = %v; want 0", allocs)
	}
	if err := b.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

// TestIndexChurn drives the id table through growth and long runs of
// deletes with colliding home slots.
func TestIndexChurn(t *testing.T) {
	x := newIndex(0)
	want := map[uint64]int32{}
	var live []uint64
	for i := range 20000 {
		if i%3 == 2 {
			j := (i * 7) % len(live)
			x.del(live[j])
			delete(want, live[j])
			live[j] = live[len(live)-1]
			live = live[:len(live)-1]
			continue
		}
		id := uint64(i * 1021)
		x.put(id, int32(i))
		want[id] = int32(i)
		live = append(live, id)
	}
	if x.n != len(want) {
		t.Fatalf("n = %d; want %d", x.n, len(want))
	}
	for id, ref := range want {
		if got, ok := x.get(id); !ok || got != ref {
			t.Fatalf("get(%d) = %d, %v; want %d", id, got, ok, ref)
		}
	}
	if _, ok := x.get(7); ok {
		t.Error("get(7) found an absent id")
	}
}

// TestFullBook: at MaxOrders an order that would rest is refused, one that
// fills in full from other owners is taken.
func TestFullBook(t *testing.T) {
	cfg := testConfig
	cfg.MaxOrders = 2
	setup := []Order{lim(1, 1, Sell, 1000, 200), lim(2, 2, Buy, 900, 100)}
	tests := []struct {
		order Order
		want  error
	}{
		{lim(9, 3, Buy, 1000, 200), nil},
		{lim(9, 3, Buy, 1000, 100), nil},
		{lim(9, 3, Buy, 1000, 300), ErrBookFull},
		{lim(9, 1, Buy, 1000, 100), ErrBookFull}, // only its owner's order to take
		{lim(9, 3, Buy, 890, 100), ErrBookFull},
		{with(lim(9, 3, Buy, 1000, 300), IOC), nil},
		{with(lim(9, 3, Buy, 890, 100), PostOnly), ErrBookFull},
	}
	for _, tt := range tests {
		b := bookOf(t, cfg, setup...)
		if _, _, err := b.Place(tt.order, nil); err != tt.want {
			t.Errorf("Place(%+v) error %v; want %v", tt.order, err, tt.want)
		}
		if err := b.CheckInvariants(); err != nil {
			t.Error(err)
		}
	}
	b := bookOf(t, cfg, setup...)
	if _, err := b.Cancel(2, 2); err != nil {
		t.Fatal(err)
	}
	if _, res, err := b.Place(lim(9, 3, Buy, 890, 100), nil); err != nil || res.Resting != 100 {
		t.Errorf("Place after a cancel = %+v, %v; want resting", res, err)
	}
}

func TestRestore(t *testing.T) {
	cfg := testConfig
	cfg.MaxOrders = 3
	setup := []Order{lim(1, 1, Sell, 1000, 100), lim(2, 2, Buy, 900, 100)}
	tests := []struct {
		order Order
		want  error
	}{
		{lim(9, 3, Buy, 900, 100), nil},
		{with(lim(9, 3, Sell, 1010, 100), PostOnly), nil},
		{lim(9, 3, Buy, 990, 100), nil},
		{Order{ID: 9, Owner: 3, Kind: Limit, Price: 900, Qty: 100}, ErrSide},
		{with(lim(9, 3, Buy, 900, 100), IOC), ErrKind},
		{with(lim(9, 3, Buy, 900, 100), FOK), ErrKind},
		{with(lim(9, 3, Buy, 900, 100), Market), ErrKind},
		{lim(9, 3, Buy, 0, 100), ErrPrice},
		{lim(9, 3, Buy, 905, 100), ErrOffTick},
		{lim(9, 3, Buy, 900, 0), ErrBelowMin},
		{lim(9, 3, Buy, 900, 1_000_100), ErrAboveMax},
		{lim(9, 3, Buy, 900, 150), ErrOffLot},
		{lim(2, 3, Buy, 900, 100), ErrDuplicateID},
		{lim(9, 3, Buy, 1000, 100), ErrWouldCross},
		{lim(9, 3, Sell, 900, 100), ErrWouldCross},
	}
	for _, tt := range tests {
		b := bookOf(t, cfg, setup...)
		before := dumpBook(b)
		err := b.Restore(tt.order)
		if err != tt.want {
			t.Errorf("Restore(%+v) = %v; want %v", tt.order, err, tt.want)
		}
		if err != nil && dumpBook(b) != before {
			t.Errorf("Restore(%+v) refused but changed the book", tt.order)
		}
		if err := b.CheckInvariants(); err != nil {
			t.Error(err)
		}
	}
	b := bookOf(t, cfg, setup...)
	if err := b.Restore(lim(9, 3, Buy, 900, 100)); err != nil {
		t.Fatal(err)
	}
	if err := b.Restore(lim(10, 3, Buy, 900, 100)); err != ErrBookFull {
		t.Errorf("Restore into a full book = %v; want %v", err, ErrBookFull)
	}
	if got := restingIDs(b); !slices.Equal(got, []OrderID{2, 9, 1}) {
		t.Errorf("resting %v; want [2 9 1]", got)
	}
}

func TestCodeText(t *testing.T) {
	for c := ErrSide; c < codeEnd; c++ {
		if codeText[c] == "" {
			t.Errorf("code %d has no text", c)
		}
	}
	if got := Code(200).Error(); got != "market code 200" {
		t.Errorf("Code(200).Error() = %q", got)
	}
}
