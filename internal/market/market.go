// Package market matches orders for one market, such as BTC/JPY, in a limit
// order book with price-time priority.
//
// # Units
//
// Quantities and prices are integers. Qty is in base units of the base asset
// (satoshi for BTC); an order's Qty is a multiple of LotSize between MinQty
// and MaxQty. Price is a multiple of TickSize in (0, MaxPrice]. The book only
// compares prices and never multiplies a price by a quantity, so what one
// price unit means (for example yen per whole bitcoin) is fixed by the
// market's listing, and notional arithmetic, holds and settlement are the
// caller's.
//
// # Matching
//
// An incoming order (the taker) trades against resting orders on the other
// side (the makers): best price first and, at one price, oldest first, for as
// long as the maker's price is at or inside the taker's limit. Every fill is
// at the maker's price. What is left of the taker then rests (Limit,
// PostOnly) or is cancelled (IOC, Market); FOK either fills in full or is
// refused. Every order carries a limit Price, a Market order too: there it is
// the worst price the customer accepts (the protection price), from which the
// caller sizes the hold of a market buy. A Market order differs from an IOC in
// one way: if it could trade nothing at all it is refused with ErrNoLiquidity
// rather than cancelled.
//
// # Self-trade prevention
//
// An order never trades with a resting order of the same Owner. When the
// taker meets one while matching, the resting order is cancelled (expire
// maker, also called cancel oldest) and matching goes on with the next maker;
// the taker is never cut short by it. Cancelled makers are listed in
// Result.Expired so the caller can release their holds. Refusal checks count
// only other owners' orders: a FOK is fillable when other owners' quantity
// within its limit covers it, and a Market order is refused when no other
// owner's order is within its limit. A refused order expires nothing. A
// PostOnly order that would cross is refused even if it would cross only its
// owner's orders.
//
// # Replace
//
// Replace changes a resting order's price and open quantity. Keeping the
// price and not raising the open quantity keeps the order's place in its
// queue; any other change cancels the order and enters it again with the
// same id, at the back of its new price's queue, where it may trade as a
// taker like a new order (exchange-core's move and reduce).
//
// # Determinism and cost
//
// Nothing here reads a clock, draws randomness, starts a goroutine or does
// I/O, and no output depends on map iteration: the same calls on the same
// Config give the same fills, results and book. A Book is not safe for
// concurrent use. Orders and price levels live in pools of structs with
// free lists, each level is an intrusive FIFO list, each side's levels are
// kept sorted best last in a slice, and order ids and level prices are
// found through open-addressing tables. Once these have grown to the book's
// working size, Place, Cancel and Replace allocate nothing, provided the
// caller's fills slice has room. An operation costs O(1) plus O(1) for each
// resting order it fills, expires or, for a FOK or Market order's check,
// looks at; adding or dropping a price level also moves the levels behind
// it in the sorted slice. A book spread over very many prices (orders far
// from the market, placed to hold many levels) is therefore slower, and the
// caller should bound how far from the market an order may rest (a price
// collar).
//
// # Price band
//
// A Config with BandBps bounds prices around the book's reference price:
// its index (an operator's price, SetIndex) if one is set, or else the
// price of its last fill. The band runs from the reference less BandBps
// basis points, rounded up to the tick, to the reference plus BandBps,
// rounded down. Then a Limit, IOC, FOK or PostOnly order (or a Replace)
// priced outside the band is refused with ErrOutsideBand, and a Market
// order's protection price is clamped to the band's edge on its side, so
// that no order can trade beyond it: a stolen session's sell at a
// thousandth of the market, or a fat finger, trades at most at the edge.
// Until the book has a reference (no fill and no index) nothing may trade:
// Market, IOC and FOK orders are refused with ErrNoReference, and so is a
// Limit order that would cross; orders that would only rest are taken.
//
// Fills are at makers' prices, so the band also keeps resting orders from
// standing where a fill would be outside it. A fill moves the reference
// (when no index is set); the remainder of a Limit order whose price is
// outside the band its own fills moved to is cancelled rather than left
// resting (Result.Cancelled), and SetIndex cancels the resting orders its
// new band leaves beyond its edge on the side where they would fill
// outside it (asks below the floor, bids above the ceiling). No other
// order can be there: after a fill every ask is at or above the fill's
// price and every bid below it.
//
// # Snapshots
//
// Orders yields the resting orders in priority order and Restore puts them
// back into an empty book, which rebuilds the same book; Reference and
// RestoreReference carry the last fill's price and the index.
//
// # Invariants
//
// INVARIANT: after every call the book is not crossed: best bid < best ask.
// INVARIANT: every resting order has 0 < Qty <= MaxQty, a multiple of
// LotSize, and a Price on the tick in (0, MaxPrice]; only Limit and PostOnly
// orders rest.
// INVARIANT: a call that returns an error changes nothing and appends no
// fills.
// INVARIANT: for every successful Place or Replace, Filled + Resting +
// Cancelled equals the order's Qty.
// INVARIANT: with a band and a reference, no ask rests below the band's
// floor and no bid above its ceiling, and every fill is within the band
// as it stood when its taker arrived.
//
// CheckInvariants verifies the structure behind these in full.
package market

import (
	"fmt"
	"math"
	"math/bits"
)

// Side says whether an order buys or sells the base asset. The zero Side is
// invalid, so an unset field is refused rather than read as a buy.
type Side uint8

// Sides.
const (
	Buy  Side = 1
	Sell Side = 2
)

// Opposite returns the side an order of side s trades against.
func (s Side) Opposite() Side { return 3 - s }

// String returns "buy" or "sell".
func (s Side) String() string {
	switch s {
	case Buy:
		return "buy"
	case Sell:
		return "sell"
	}
	return fmt.Sprintf("side(%d)", uint8(s))
}

// Kind says what happens to the part of an order that does not trade on
// arrival. The zero Kind is invalid.
type Kind uint8

// Order kinds.
const (
	// Limit rests until filled or cancelled (good till cancelled).
	Limit Kind = 1 + iota
	// Market trades what it can within its protection price and cancels the
	// rest; it is refused (ErrNoLiquidity) if it can trade nothing.
	Market
	// IOC (immediate or cancel) trades what it can and cancels the rest.
	IOC
	// FOK (fill or kill) trades its whole quantity at once or is refused
	// (ErrFOKUnfilled).
	FOK
	// PostOnly rests without trading; it is refused (ErrWouldCross) if it
	// would trade on arrival.
	PostOnly
)

var kindText = [...]string{Limit: "limit", Market: "market", IOC: "ioc", FOK: "fok", PostOnly: "post-only"}

// String returns the kind's name.
func (k Kind) String() string {
	if k >= Limit && int(k) < len(kindText) {
		return kindText[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// rests reports whether what is left of an order of kind k rests.
func (k Kind) rests() bool { return k == Limit || k == PostOnly }

// OrderID names an order. The caller assigns ids; the book refuses an id
// that is resting, but cannot know ids that are gone, so the caller keeps
// them unique for the life of the market.
type OrderID uint64

// Owner names the customer an order belongs to. Orders of one Owner never
// trade with each other.
type Owner uint64

// Order is an order as placed, or a resting order with Qty its open
// (unfilled) quantity.
type Order struct {
	ID    OrderID
	Owner Owner
	Side  Side
	Kind  Kind
	// Price is the limit: the highest price a buy pays, the lowest a sell
	// takes. For a Market order it is the protection price.
	Price int64
	Qty   int64
}

// Fill is one trade between a taker and a resting maker, at the maker's
// price.
type Fill struct {
	Maker, Taker           OrderID
	MakerOwner, TakerOwner Owner
	TakerSide              Side
	Price, Qty             int64
	// MakerDone reports that the maker is filled in full and left the book.
	MakerDone bool
}

// Result is what became of the quantity of a placed (or replaced) order:
// Filled + Resting + Cancelled is its Qty.
type Result struct {
	// Filled is the quantity traded on arrival.
	Filled int64
	// Resting is the quantity left on the book (Limit, PostOnly).
	Resting int64
	// Cancelled is the quantity of an IOC or Market order for which no
	// other owner's order remained within its price.
	Cancelled int64
	// Expired lists the taker's owner's resting orders that self-trade
	// prevention cancelled, in the order met, each as it stood just before
	// (Qty is what was still open). It shares the Book's buffer: it is valid
	// until the next call to Place or Replace; copy it to keep it.
	Expired []Order
}

// Level is one price of one side of the book: the quantity resting there and
// in how many orders.
type Level struct {
	Price  int64
	Qty    int64
	Orders int
}

// MaxOrdersLimit bounds Config.MaxOrders: pool slots are indexed by int32.
const MaxOrdersLimit = math.MaxInt32 - 1

// Config is one market's trading rules.
type Config struct {
	// TickSize is the price increment; every price is a multiple of it.
	TickSize int64
	// LotSize is the quantity increment; every quantity is a multiple of it.
	LotSize int64
	// MinQty and MaxQty bound an order's quantity. MinQty is a multiple of
	// LotSize. A partly filled resting order may hold less than MinQty.
	MinQty int64
	MaxQty int64
	// MaxPrice bounds a price; it is a multiple of TickSize.
	MaxPrice int64
	// MaxOrders bounds the resting orders, and with them the book's memory.
	// MaxOrders * MaxQty must fit an int64, so a level's total never
	// overflows.
	MaxOrders int
	// BandBps, if not zero, is the price band's half-width in basis points
	// of the reference price (see Price band), below MaxBandBps. Zero
	// means no band: the book then trades without a reference.
	BandBps uint32
}

// MaxBandBps bounds Config.BandBps: a band of 100% or more would reach
// zero and bound nothing below.
const MaxBandBps = 10_000

// Validate reports whether the rules are usable, with ErrConfig wrapped in
// the error.
func (c Config) Validate() error {
	switch {
	case c.TickSize <= 0:
		return fmt.Errorf("%w: tick size %d must be positive", ErrConfig, c.TickSize)
	case c.LotSize <= 0:
		return fmt.Errorf("%w: lot size %d must be positive", ErrConfig, c.LotSize)
	case c.MinQty < c.LotSize || c.MinQty%c.LotSize != 0:
		return fmt.Errorf("%w: min qty %d must be a positive multiple of lot size %d", ErrConfig, c.MinQty, c.LotSize)
	case c.MaxQty < c.MinQty:
		return fmt.Errorf("%w: max qty %d is below min qty %d", ErrConfig, c.MaxQty, c.MinQty)
	case c.MaxPrice < c.TickSize || c.MaxPrice%c.TickSize != 0:
		return fmt.Errorf("%w: max price %d must be a positive multiple of tick size %d", ErrConfig, c.MaxPrice, c.TickSize)
	case c.MaxOrders <= 0 || c.MaxOrders > MaxOrdersLimit:
		return fmt.Errorf("%w: max orders %d must be in [1, %d]", ErrConfig, c.MaxOrders, MaxOrdersLimit)
	case c.MaxQty > math.MaxInt64/int64(c.MaxOrders):
		return fmt.Errorf("%w: max qty %d times max orders %d overflows int64", ErrConfig, c.MaxQty, c.MaxOrders)
	case c.BandBps >= MaxBandBps:
		return fmt.Errorf("%w: band %d bps must be below %d", ErrConfig, c.BandBps, MaxBandBps)
	}
	return nil
}

// bandOf returns the band around ref, a price on the tick: ref less
// BandBps rounded up to the tick (at least one tick), ref plus BandBps
// rounded down (at most MaxPrice). lo <= ref <= hi.
func (c *Config) bandOf(ref int64) (lo, hi int64) {
	wh, wl := bits.Mul64(uint64(ref), uint64(c.BandBps))
	q, _ := bits.Div64(wh, wl, 10_000) // wh < 10,000: ref < 2^63, bps < 10^4
	off := int64(q)
	lo = ref - off
	if r := lo % c.TickSize; r != 0 {
		lo += c.TickSize - r
	}
	lo = max(lo, c.TickSize)
	if off >= c.MaxPrice-ref {
		return lo, c.MaxPrice
	}
	hi = ref + off
	return lo, hi - hi%c.TickSize
}

// checkPrice returns the error for a limit price outside the rules.
func (c *Config) checkPrice(p int64) error {
	if p <= 0 || p > c.MaxPrice {
		return ErrPrice
	}
	if p%c.TickSize != 0 {
		return ErrOffTick
	}
	return nil
}

// checkQty returns the error for an order quantity outside the rules.
func (c *Config) checkQty(q int64) error {
	switch {
	case q < c.MinQty:
		return ErrBelowMin
	case q > c.MaxQty:
		return ErrAboveMax
	case q%c.LotSize != 0:
		return ErrOffLot
	}
	return nil
}
