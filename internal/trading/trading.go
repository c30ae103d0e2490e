// Package trading is the exchange's order books as the core's state
// machine keeps them: the markets listed, one market.Book each, every open
// order with the funds it holds, recent trades and the dealer desk's
// quotes. It decides nothing about money by itself: the core's apply turns
// each placement, fill, cancel and quote into ledger transfers in the same
// entry (internal/core/trade_cmd.go), so a fill and its settlement are one
// step.
//
// # Prices and amounts
//
// A market's price is in the quote asset's base units per one whole unit
// of the base asset (yen per bitcoin); quantities are in the base asset's
// base units (satoshi). A listing's tick times its lot must be a multiple
// of the base asset's 10^decimals, so every fill's notional,
// price × qty / 10^decimals, is an exact integer.
//
// # Protections
//
// Every bound below is a field of the journaled listing; a listing that
// leaves one out gets the named default (WithDefaults) when it is listed,
// and none can be switched off.
//
//   - The price band (BandBps, default DefaultBandBps): the book refuses an
//     order priced more than this from the market's reference (its index
//     price if operators set one, else its last trade), clamps a market
//     order's protection price to it, and trades nothing before it has a
//     reference (see market.Book).
//   - The largest order (MaxQty and MaxOrderNotional): a customer's order
//     above either is refused.
//   - The circuit breaker (BreakerBps over BreakerWindowNs): a trade more
//     than BreakerBps from the price in force a window earlier halts the
//     market's base asset's trading (Breaker; the core journals the halt).
//   - Operators' prices, the dealer desk's reference and the index
//     (ReferenceChangeBps a change, ReferenceDayBps a day): one operator may
//     move either only this far (CheckMove); further takes a second
//     operator's approval.
package trading

import (
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"sort"
	"strings"

	"kinko/internal/ledger"
	"kinko/internal/market"
)

// Errors of trading commands. Each leaves nothing held or filled.
var (
	ErrUnknownMarket  = errors.New("trading: unknown market")
	ErrMarketExists   = errors.New("trading: market exists")
	ErrListing        = errors.New("trading: invalid market listing")
	ErrInsufficient   = errors.New("trading: insufficient funds")
	ErrClientID       = errors.New("trading: client order id already used")
	ErrNotVerified    = errors.New("trading: customer is not verified to trade")
	ErrUnknownOrder   = errors.New("trading: unknown order")
	ErrNotOwner       = errors.New("trading: not your order")
	ErrQuoteUnknown   = errors.New("trading: unknown quote")
	ErrQuoteExpired   = errors.New("trading: quote expired")
	ErrQuoteUsed      = errors.New("trading: quote already executed")
	ErrNoReference    = errors.New("trading: no reference price for the dealer")
	ErrExposure       = errors.New("trading: dealer exposure limit")
	ErrDealerDisabled = errors.New("trading: dealer desk not configured for this market")
	ErrOrderTooLarge  = errors.New("trading: order larger than the market's largest order")
	ErrNeedsApproval  = errors.New("trading: a price move this large needs a second operator's approval")
	ErrQuoteStale     = errors.New("trading: the dealer's reference changed since the quote")
)

// LimitError is a refusal for a bound: which input (Field), the bound
// (Limit) and what was asked (Value), as decimal text, beside the error it
// is (errors.Is sees Err). The API shows the three to the customer.
type LimitError struct {
	Err                 error
	Field, Limit, Value string
	// Detail says it in words; Err's text when empty.
	Detail string
}

func (e *LimitError) Error() string {
	if e.Detail != "" {
		return e.Err.Error() + ": " + e.Detail
	}
	return e.Err.Error()
}

// Unwrap returns the error the limit refusal is.
func (e *LimitError) Unwrap() error { return e.Err }

// LimitBroken names the input, the bound and the value.
func (e *LimitError) LimitBroken() (field, limit, value string) { return e.Field, e.Limit, e.Value }

// Defaults and bounds of a listing's protections (see Protections). The
// band bounds one order's damage to a tenth of the reference; the breaker
// stops a walk of the price at half of that within five minutes, which
// bitcoin has moved only in a handful of crashes and which deserves a
// human's look; one operator may follow a market by 5% a change and 10% a
// day, and an index or reference moved further (88 yen to 1) takes two.
const (
	DefaultBandBps            = 1_000
	MaxBandBps                = 5_000
	DefaultBreakerBps         = 500
	MaxBreakerBps             = 5_000
	DefaultBreakerWindowNs    = int64(5 * 60 * 1e9)
	MinBreakerWindowNs        = int64(1e9)
	MaxBreakerWindowNs        = int64(24 * 3600 * 1e9)
	DefaultReferenceChangeBps = 500
	DefaultReferenceDayBps    = 1_000
	MaxReferenceBps           = 5_000
	// DefaultMaxOrderFiat is the largest order's notional in whole units
	// of a fiat quote (10,000,000 yen), DefaultMaxOrderCoins in whole
	// coins of a chain quote.
	DefaultMaxOrderFiat  = 10_000_000
	DefaultMaxOrderCoins = 10
)

// Listing is a market's configuration.
type Listing struct {
	ID    uint16         `json:"id"`
	Code  string         `json:"code"` // "BTC/JPY"
	Base  ledger.AssetID `json:"base"`
	Quote ledger.AssetID `json:"quote"`
	// QtyUnit is how many of the base asset's base units one unit of the
	// market's quantity is (1 if zero): ether trades in gwei (1e9 wei), as
	// a wei quantity would not fit 64 bits past 9.2 ETH.
	QtyUnit int64 `json:"qty_unit,omitempty"`
	// Scale is how many quantity units make one whole base unit
	// (10^decimals / QtyUnit): price × qty / Scale is the notional in
	// quote base units.
	Scale    int64 `json:"scale"`
	TickSize int64 `json:"tick_size"`
	LotSize  int64 `json:"lot_size"`
	MinQty   int64 `json:"min_qty"`
	MaxQty   int64 `json:"max_qty"`
	MaxPrice int64 `json:"max_price"`
	// MaxOrders bounds the resting orders of the book.
	MaxOrders int `json:"max_orders"`
	// Fees in basis points of the notional, charged in the quote asset.
	MakerFeeBps uint32 `json:"maker_fee_bps"`
	TakerFeeBps uint32 `json:"taker_fee_bps"`
	// The dealer desk: a spread around the reference price (the book's mid,
	// or Reference if set), how long a quote stands, and how much base the
	// house may be long or short.
	DealerSpreadBps uint32 `json:"dealer_spread_bps,omitempty"`
	QuoteValidityNs int64  `json:"quote_validity_ns,omitempty"`
	DealerMaxLong   int64  `json:"dealer_max_long,omitempty"`
	DealerMaxShort  int64  `json:"dealer_max_short,omitempty"`
	// BandBps is the price band's half-width in basis points of the
	// reference; MaxOrderNotional the largest order's notional in quote
	// base units (MaxQty is its quantity); BreakerBps over BreakerWindowNs
	// the circuit breaker; ReferenceChangeBps and ReferenceDayBps how far
	// one operator may move the index or the dealer's reference. Zero
	// takes the default when listed (WithDefaults).
	BandBps            uint32 `json:"band_bps,omitempty"`
	MaxOrderNotional   int64  `json:"max_order_notional,omitempty"`
	BreakerBps         uint32 `json:"breaker_bps,omitempty"`
	BreakerWindowNs    int64  `json:"breaker_window_ns,omitempty"`
	ReferenceChangeBps uint32 `json:"reference_change_bps,omitempty"`
	ReferenceDayBps    uint32 `json:"reference_day_bps,omitempty"`
}

// WithDefaults returns the listing with every protection left at zero set
// to its default. The largest order's notional is scaled to the quote
// asset: DefaultMaxOrderFiat whole units of a fiat quote, or
// DefaultMaxOrderCoins whole coins of a chain quote, with quoteDecimals
// its decimals.
func (l Listing) WithDefaults(quoteDecimals uint8, quoteFiat bool) Listing {
	if l.BandBps == 0 {
		l.BandBps = DefaultBandBps
	}
	if l.BreakerBps == 0 {
		l.BreakerBps = DefaultBreakerBps
	}
	if l.BreakerWindowNs == 0 {
		l.BreakerWindowNs = DefaultBreakerWindowNs
	}
	if l.ReferenceChangeBps == 0 {
		l.ReferenceChangeBps = DefaultReferenceChangeBps
	}
	if l.ReferenceDayBps == 0 {
		l.ReferenceDayBps = DefaultReferenceDayBps
	}
	if l.MaxOrderNotional == 0 {
		units := big.NewInt(DefaultMaxOrderCoins)
		if quoteFiat {
			units = big.NewInt(DefaultMaxOrderFiat)
		}
		n := units.Mul(units, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(quoteDecimals)), nil))
		if n.BitLen() > 62 {
			n = big.NewInt(1 << 62)
		}
		l.MaxOrderNotional = n.Int64()
	}
	return l
}

// Validate checks a listing against its assets' decimals (scale).
func (l Listing) Validate() error {
	if l.ID == 0 || l.Base == 0 || l.Quote == 0 || l.Base == l.Quote || !strings.Contains(l.Code, "/") || len(l.Code) > 21 {
		return fmt.Errorf("%w: id, code and two different assets", ErrListing)
	}
	if l.Scale <= 0 || l.QtyUnit < 0 {
		return fmt.Errorf("%w: scale and quantity unit", ErrListing)
	}
	if err := l.bookConfig().Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrListing, err)
	}
	// tick × lot a multiple of the scale, without overflow.
	p := new(big.Int).Mul(big.NewInt(l.TickSize), big.NewInt(l.LotSize))
	if p.BitLen() > 62 || new(big.Int).Mod(p, big.NewInt(l.Scale)).Sign() != 0 {
		return fmt.Errorf("%w: tick × lot (%s) is not a multiple of the base unit scale %d: notionals would not be whole", ErrListing, p, l.Scale)
	}
	// The largest notional must fit: MaxPrice × MaxQty / Scale, and fees on it.
	n := new(big.Int).Mul(big.NewInt(l.MaxPrice), big.NewInt(l.MaxQty))
	n.Quo(n, big.NewInt(l.Scale))
	if n.BitLen() > 62 {
		return fmt.Errorf("%w: max price × max qty overflows", ErrListing)
	}
	if l.MakerFeeBps > 1000 || l.TakerFeeBps > 1000 || l.DealerSpreadBps > 5000 {
		return fmt.Errorf("%w: fee above 10%% or spread above 50%%", ErrListing)
	}
	if l.DealerMaxLong < 0 || l.DealerMaxShort < 0 || l.QuoteValidityNs < 0 {
		return fmt.Errorf("%w: dealer limits", ErrListing)
	}
	switch {
	case l.BandBps == 0 || l.BandBps > MaxBandBps:
		return fmt.Errorf("%w: price band %d bps must be in [1, %d] (unset takes %d)", ErrListing, l.BandBps, MaxBandBps, DefaultBandBps)
	case l.MaxOrderNotional <= 0:
		return fmt.Errorf("%w: largest order notional %d must be positive", ErrListing, l.MaxOrderNotional)
	case l.BreakerBps == 0 || l.BreakerBps > MaxBreakerBps:
		return fmt.Errorf("%w: circuit breaker %d bps must be in [1, %d] (unset takes %d)", ErrListing, l.BreakerBps, MaxBreakerBps, DefaultBreakerBps)
	case l.BreakerWindowNs < MinBreakerWindowNs || l.BreakerWindowNs > MaxBreakerWindowNs:
		return fmt.Errorf("%w: circuit breaker window %d ns must be in [%d, %d]", ErrListing, l.BreakerWindowNs, MinBreakerWindowNs, MaxBreakerWindowNs)
	case l.ReferenceChangeBps == 0 || l.ReferenceChangeBps > MaxReferenceBps || l.ReferenceDayBps == 0 || l.ReferenceDayBps > MaxReferenceBps:
		return fmt.Errorf("%w: an operator's price moves (%d bps a change, %d a day) must be in [1, %d]", ErrListing, l.ReferenceChangeBps, l.ReferenceDayBps, MaxReferenceBps)
	}
	return nil
}

func (l Listing) bookConfig() market.Config {
	return market.Config{TickSize: l.TickSize, LotSize: l.LotSize, MinQty: l.MinQty, MaxQty: l.MaxQty, MaxPrice: l.MaxPrice, MaxOrders: l.MaxOrders, BandBps: l.BandBps}
}

// Unit returns the base units of one quantity unit.
func (l *Listing) Unit() int64 { return max(1, l.QtyUnit) }

// Notional is price × qty / Scale, exact by the listing's rule for a
// price on the tick and a quantity on the lot, rounded down otherwise.
// For price ≤ MaxPrice and qty ≤ MaxQty it is below 2^62 (Validate); for
// positive inputs beyond them whose notional would not fit, it is 2^62.
func (l *Listing) Notional(price, qty int64) int64 {
	// One 128-bit product and one division: this is on every order's path.
	hi, lo := bits.Mul64(uint64(price), uint64(qty))
	if hi >= uint64(l.Scale) {
		return 1 << 62
	}
	q, _ := bits.Div64(hi, lo, uint64(l.Scale))
	return int64(min(q, 1<<62))
}

// Fee is bps of the notional, rounded down (the customer keeps the
// fraction).
func Fee(notional int64, bps uint32) int64 {
	return notional/10_000*int64(bps) + notional%10_000*int64(bps)/10_000
}

// Order is an open order and what it holds.
type Order struct {
	ID     market.OrderID `json:"id"`
	Market uint16         `json:"market"`
	// AvailHint and HeldHint are the ledger's hints of the customer's
	// available and held accounts of the asset the order holds, kept by
	// the core so its transfers skip the look-ups (0: not yet known; not
	// part of the state). They sit in the record's padding.
	AvailHint ledger.AccountHint `json:"-"`
	Customer  ledger.OwnerID     `json:"customer"`
	ClientID  string             `json:"client_id"`
	Side      market.Side        `json:"side"`
	Kind      market.Kind        `json:"kind"`
	HeldHint  ledger.AccountHint `json:"-"`
	Price     int64              `json:"price"`
	Qty       int64              `json:"qty"` // as placed or last replaced
	Filled    int64              `json:"filled"`
	// Held is what the order still holds in the customer's held account:
	// quote (notional and taker fee at the limit) for a buy, base for a
	// sell.
	Held    int64 `json:"held"`
	Created int64 `json:"created"`
}

// Trade is one fill as recorded: its time, the entry that made it, and the
// market's state then (BITPoint had to decide about fills made during a
// suspension: the record says what was halted).
type Trade struct {
	Seq       uint64         `json:"seq"` // the trade's number in the market
	Entry     uint64         `json:"entry"`
	Time      int64          `json:"time"`
	Market    uint16         `json:"market"`
	Price     int64          `json:"price"`
	Qty       int64          `json:"qty"`
	TakerSide market.Side    `json:"taker_side"`
	Maker     market.OrderID `json:"maker"`
	Taker     market.OrderID `json:"taker"`
	MakerOwn  ledger.OwnerID `json:"maker_owner"`
	TakerOwn  ledger.OwnerID `json:"taker_owner"`
	MakerFee  int64          `json:"maker_fee"`
	TakerFee  int64          `json:"taker_fee"`
	// Halted lists the switches of the market's assets halted at the fill
	// (deposit, withdraw, dealer: trading itself stops matching).
	Halted string `json:"halted,omitempty"`
	// Dealer marks a dealer desk execution (the house is the counterparty).
	Dealer bool `json:"dealer,omitempty"`
}

// Quote is a dealer desk quote: a firm price for a customer, side and
// quantity until Expires.
type Quote struct {
	ID       uint64         `json:"id"`
	Market   uint16         `json:"market"`
	Customer ledger.OwnerID `json:"customer"`
	Side     market.Side    `json:"side"` // the customer's side
	Qty      int64          `json:"qty"`
	Price    int64          `json:"price"`
	Mid      int64          `json:"mid"`
	Expires  int64          `json:"expires"`
	Used     bool           `json:"used,omitempty"`
}

// RecentTrades is how many trades each market keeps for market data.
const RecentTrades = 4096

// Market is one listed market.
type Market struct {
	Listing Listing
	Book    *market.Book
	// Halted is not kept: the core's halt matrix is the only truth.
	trades []Trade // ring of the last RecentTrades
	next   int
	count  uint64 // trades ever
	// Reference is the dealer desk's reference price, as operators set it
	// (0: none, and the desk does not quote). The book's index price, the
	// band's reference, is the book's (Book.Reference).
	Reference int64
	// RefHistory and IndexHistory are the changes of the reference and of
	// the index within the last day, for the per-day bound (CheckMove).
	RefHistory   []PricePoint
	IndexHistory []PricePoint
	// Inventory is the house's net base position from dealer executions,
	// and Profit the spread it earned, in quote units.
	Inventory int64
	Profit    int64
	// samples are the circuit breaker's (see Breaker).
	samples []BreakerSample
	// capHi and capLo are MaxOrderNotional × Scale, 128 bits: the largest
	// order is checked without a division (AboveLargest).
	capHi, capLo uint64
}

// AboveLargest reports whether an order of qty at price has a notional
// above the listing's MaxOrderNotional: price × qty > MaxOrderNotional ×
// Scale, compared in 128 bits.
func (m *Market) AboveLargest(price, qty int64) bool {
	hi, lo := bits.Mul64(uint64(price), uint64(qty))
	return hi > m.capHi || (hi == m.capHi && lo > m.capLo)
}

// PricePoint is a change of an operator's price: the price from Time on.
type PricePoint struct {
	Time  int64 `json:"time"`
	Price int64 `json:"price"`
}

// PriceDay is how far back the per-day bound of an operator's price
// looks.
const PriceDay = int64(24 * 3600 * 1e9)

// MaxPriceChanges bounds the changes one operator may make to one price
// within a day, and with it the history kept.
const MaxPriceChanges = 288

// withinBps reports whether x is within bps basis points of ref (> 0).
func withinBps(x, ref int64, bps uint32) bool {
	d := x - ref
	if d < 0 {
		d = -d
	}
	dh, dl := bits.Mul64(uint64(d), 10_000)
	rh, rl := bits.Mul64(uint64(ref), uint64(bps))
	return dh < rh || (dh == rh && dl <= rl)
}

// pctText writes a move from ref to x in percent with two decimals.
func pctText(x, ref int64) string {
	d := new(big.Int).Mul(big.NewInt(x-ref), big.NewInt(10_000))
	d.Quo(d, big.NewInt(ref))
	v := d.Int64()
	sign := "+"
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d%%", sign, v/100, v%100)
}

// bpsText writes basis points as a percentage.
func bpsText(bps uint32) string { return fmt.Sprintf("%d.%02d%%", bps/100, bps%100) }

// dayAnchor returns the price in force a day before t by history: the
// last change at or before t-PriceDay, else the earliest change (the
// price was first set, or approved, within the day); 0 with no history.
func dayAnchor(history []PricePoint, t int64) int64 {
	anchor := int64(0)
	for i, p := range history {
		if i == 0 || p.Time <= t-PriceDay {
			anchor = p.Price
		}
	}
	return anchor
}

// CheckMove tells whether one operator alone may move an operator's
// price (what names it), now cur with its recent changes in history, to
// target (not 0) at time t: within changeBps of cur (of base, the
// market's other reference, when cur is 0), and within dayBps of the
// price in force a day before, at most MaxPriceChanges times a day. A
// price with nothing to measure a move against (cur and base 0) takes
// two operators. The error, wrapping ErrNeedsApproval, says which bound
// the move breaks.
func CheckMove(what string, cur, base, target int64, history []PricePoint, t int64, changeBps, dayBps uint32) error {
	from := cur
	if from == 0 {
		from = base
	}
	if from <= 0 {
		return fmt.Errorf("%w: %s %d: there is no price to measure the move against", ErrNeedsApproval, what, target)
	}
	if !withinBps(target, from, changeBps) {
		return fmt.Errorf("%w: %s %d -> %d moves %s, beyond ±%s a change", ErrNeedsApproval, what, from, target, pctText(target, from), bpsText(changeBps))
	}
	if anchor := dayAnchor(history, t); anchor > 0 && !withinBps(target, anchor, dayBps) {
		return fmt.Errorf("%w: %s %d -> %d moves %s from %d a day earlier, beyond ±%s a day", ErrNeedsApproval, what, from, target, pctText(target, anchor), anchor, bpsText(dayBps))
	}
	n := 0
	for _, p := range history {
		if p.Time > t-PriceDay {
			n++
		}
	}
	if n >= MaxPriceChanges {
		return fmt.Errorf("%w: %s changed %d times within a day", ErrNeedsApproval, what, n)
	}
	return nil
}

// RecordMove returns history with a change to price at t by one operator,
// dropping the changes the day no longer needs (all but the last at or
// before t-PriceDay).
func RecordMove(history []PricePoint, price, t int64) []PricePoint {
	for len(history) >= 2 && history[1].Time <= t-PriceDay {
		history = history[1:]
	}
	return append(history, PricePoint{Time: t, Price: price})
}

// RecordApproved returns the history of a price two operators set at t:
// that price alone, the anchor of the day that follows.
func RecordApproved(price, t int64) []PricePoint { return []PricePoint{{Time: t, Price: price}} }

// BreakerSample is the price in force at the start of one of the circuit
// breaker's buckets (an eighth of its window) in which the market traded.
type BreakerSample struct {
	Bucket int64 `json:"bucket"`
	Price  int64 `json:"price"`
}

// breakerBuckets is how many buckets the breaker's window is cut into.
const breakerBuckets = 8

// Breaker records a book command at time t whose fills moved the last
// trade price from before to after, and reports whether after is more
// than BreakerBps from the window's reference: the price in force at the
// start of the bucket a window before t's (so the window is between one
// and one and an eighth windows long). Times are entry times; a time
// earlier than the last recorded counts in the last bucket.
//
// INVARIANT: samples' buckets strictly grow and span at most
// breakerBuckets+1 buckets.
func (m *Market) Breaker(t, before, after int64) (ref int64, trip bool) {
	w := max(1, m.Listing.BreakerWindowNs/breakerBuckets)
	b := t / w
	if t < 0 && t%w != 0 {
		b--
	}
	n := len(m.samples)
	if n > 0 && b < m.samples[n-1].Bucket {
		b = m.samples[n-1].Bucket
	}
	if n == 0 || m.samples[n-1].Bucket != b {
		m.samples = append(m.samples, BreakerSample{Bucket: b, Price: before})
	}
	for len(m.samples) > 1 && m.samples[0].Bucket < b-breakerBuckets {
		m.samples = m.samples[1:]
	}
	ref = m.samples[0].Price
	return ref, ref > 0 && !withinBps(after, ref, m.Listing.BreakerBps)
}

// BreakerText says why the breaker tripped, for the halt's reason.
func (m *Market) BreakerText(ref, after int64) string {
	return fmt.Sprintf("circuit breaker: %s traded at %d, %s from %d within %ds (breaker ±%s)", m.Listing.Code, after, pctText(after, ref), ref,
		m.Listing.BreakerWindowNs/1e9, bpsText(m.Listing.BreakerBps))
}

// BandText describes the book's price band for a refusal.
func (m *Market) BandText() string {
	lo, hi := m.Book.Band()
	last, index := m.Book.Reference()
	switch {
	case hi == 0:
		return "the market has no reference price yet (no trade, no index): orders may rest but not trade"
	case index != 0:
		return fmt.Sprintf("the band is %d-%d (±%s of the index price %d)", lo, hi, bpsText(m.Listing.BandBps), index)
	}
	return fmt.Sprintf("the band is %d-%d (±%s of the last trade price %d)", lo, hi, bpsText(m.Listing.BandBps), last)
}

// Trades returns up to n of the most recent trades, newest first.
func (m *Market) Trades(n int) []Trade {
	k := min(n, len(m.trades))
	out := make([]Trade, 0, k)
	for i := 0; i < k; i++ {
		j := (m.next - 1 - i + 2*len(m.trades)) % len(m.trades)
		out = append(out, m.trades[j])
	}
	return out
}

// Count returns how many trades the market has ever made.
func (m *Market) Count() uint64 { return m.count }

// Record appends a trade, numbering it.
func (m *Market) Record(t Trade) Trade {
	m.count++
	t.Seq = m.count
	if m.trades == nil {
		// The whole ring at the first trade: growing it by appends
		// would copy it a dozen times on the trading path.
		m.trades = make([]Trade, 0, RecentTrades)
	}
	if len(m.trades) < RecentTrades {
		m.trades = append(m.trades, t)
		m.next = len(m.trades) % RecentTrades
		return t
	}
	m.trades[m.next] = t
	m.next = (m.next + 1) % RecentTrades
	return t
}

// Mid returns the book's mid price (0 when a side is empty).
func (m *Market) Mid() int64 {
	bid, ask := m.Book.Best()
	if bid == 0 || ask == 0 {
		return 0
	}
	return (bid + ask) / 2
}

type clientKey struct {
	customer ledger.OwnerID
	id       string
}

// State is every market, open order and quote.
type State struct {
	markets map[uint16]*Market
	// byID is markets by id, for the hot path's look-up without hashing.
	byID    []*Market
	byCode  map[string]uint16
	orders  orderIndex
	clients map[clientKey]market.OrderID
	quotes  map[uint64]*Quote
	// NextOrder and NextTransfer number orders and trading's ledger
	// transfers; NextQuote the dealer's quotes.
	NextOrder    uint64
	NextTransfer uint64
	NextQuote    uint64
	// Fills is scratch the apply reuses, so the hot path allocates nothing.
	Fills []market.Fill
	slab  []Order // new orders are cut from here, a chunk at a time
}

// orderChunk is how many orders one allocation makes room for.
const orderChunk = 1024

// NewOrder returns a zeroed order record. Records come from chunks, so
// opening an order does not allocate each time; a chunk is freed when none
// of its orders is referenced any more.
func (s *State) NewOrder() *Order {
	if len(s.slab) == 0 {
		s.slab = make([]Order, orderChunk)
	}
	o := &s.slab[0]
	s.slab = s.slab[1:]
	return o
}

// openOrdersHint is the open orders the state makes room for at the
// start, and ListOrdersHint the resting orders a market's book at its
// listing: a first run of a few thousand orders does not grow them.
const (
	openOrdersHint = 4096
	ListOrdersHint = 4096
)

// New returns a state with no market.
func New() *State {
	return &State{markets: map[uint16]*Market{}, byCode: map[string]uint16{}, orders: newOrderIndex(openOrdersHint),
		clients: map[clientKey]market.OrderID{}, quotes: map[uint64]*Quote{}}
}

// List adds a market.
func (s *State) List(l Listing, capacityHint int) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if _, ok := s.markets[l.ID]; ok {
		return ErrMarketExists
	}
	if _, ok := s.byCode[l.Code]; ok {
		return ErrMarketExists
	}
	m := &Market{Listing: l, Book: market.New(l.bookConfig(), capacityHint)}
	m.capHi, m.capLo = bits.Mul64(uint64(l.MaxOrderNotional), uint64(l.Scale))
	s.markets[l.ID] = m
	if int(l.ID) >= len(s.byID) {
		s.byID = append(s.byID, make([]*Market, int(l.ID)+1-len(s.byID))...)
	}
	s.byID[l.ID] = m
	s.byCode[l.Code] = l.ID
	return nil
}

// Market returns a market by id.
func (s *State) Market(id uint16) (*Market, bool) {
	if int(id) >= len(s.byID) || s.byID[id] == nil {
		return nil, false
	}
	return s.byID[id], true
}

// MarketByCode returns a market by code ("BTC/JPY").
func (s *State) MarketByCode(code string) (*Market, bool) {
	id, ok := s.byCode[strings.ToUpper(code)]
	if !ok {
		return nil, false
	}
	return s.markets[id], true
}

// Markets returns the markets by id.
func (s *State) Markets() []*Market {
	out := make([]*Market, 0, len(s.markets))
	for _, m := range s.markets {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Listing.ID < out[j].Listing.ID })
	return out
}

// Order returns an open order.
func (s *State) Order(id market.OrderID) (*Order, bool) {
	return s.orders.get(id)
}

// MustOrder returns an open order that must exist (a maker the book just
// filled).
func (s *State) MustOrder(id market.OrderID) *Order {
	o, ok := s.orders.get(id)
	if !ok {
		panic(fmt.Sprintf("trading: order %d rests in a book but is not open", id))
	}
	return o
}

// ClientUsed tells whether a customer has used a client order id.
func (s *State) ClientUsed(c ledger.OwnerID, id string) bool {
	_, ok := s.clients[clientKey{c, id}]
	return ok
}

// Open records a new order.
func (s *State) Open(o *Order) {
	s.orders.put(o)
	if o.ClientID != "" {
		s.clients[clientKey{o.Customer, o.ClientID}] = o.ID
	}
}

// UseClientID records the client id of an order that never rested (it
// filled or was cancelled on entry): used, whatever the order's fate.
func (s *State) UseClientID(o *Order) {
	if o.ClientID != "" {
		s.clients[clientKey{o.Customer, o.ClientID}] = o.ID
	}
}

// Close forgets an order that no longer rests (its client id stays used).
func (s *State) Close(id market.OrderID) { s.orders.del(id) }

// OpenOrders returns a customer's open orders (all customers' if 0), by id.
func (s *State) OpenOrders(customer ledger.OwnerID) []Order {
	var out []Order
	s.orders.each(func(o *Order) {
		if customer == 0 || o.Customer == customer {
			out = append(out, *o)
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// AddQuote stores a quote.
func (s *State) AddQuote(q *Quote) { s.quotes[q.ID] = q }

// Quote returns a quote.
func (s *State) Quote(id uint64) (*Quote, bool) {
	q, ok := s.quotes[id]
	return q, ok
}

// DropQuotesBefore forgets quotes that expired before t (they can no
// longer be executed), bounding the state.
func (s *State) DropQuotesBefore(t int64) {
	for id, q := range s.quotes {
		if q.Expires < t {
			delete(s.quotes, id)
		}
	}
}

// CheckInvariants checks that every open order rests in its book with the
// same quantity left and holds something positive, and every book is
// uncrossed.
func (s *State) CheckInvariants() error {
	rest := 0
	for _, m := range s.markets {
		if err := m.Book.CheckInvariants(); err != nil {
			return fmt.Errorf("trading: %s: %w", m.Listing.Code, err)
		}
		rest += m.Book.Len()
	}
	if rest != s.orders.len() {
		return fmt.Errorf("trading: %d orders rest in books, %d open", rest, s.orders.len())
	}
	if !s.orders.check() {
		return errors.New("trading: the open orders' index is broken")
	}
	for _, m := range s.markets {
		if err := m.checkProtections(); err != nil {
			return fmt.Errorf("trading: %s: %w", m.Listing.Code, err)
		}
	}
	for _, o := range s.orders.slots {
		if o == nil {
			continue
		}
		id := o.ID
		m, ok := s.markets[o.Market]
		if !ok {
			return fmt.Errorf("trading: order %d in unknown market %d", id, o.Market)
		}
		r, ok := m.Book.Resting(id)
		if !ok || r.Qty != o.Qty-o.Filled || r.Owner != market.Owner(o.Customer) {
			return fmt.Errorf("trading: order %d: book %+v, state %+v", id, r, o)
		}
		if o.Held <= 0 {
			return fmt.Errorf("trading: order %d holds %d", id, o.Held)
		}
	}
	return nil
}

// checkProtections checks the breaker's samples (buckets strictly
// growing, within breakerBuckets+1 of each other), the operators' price
// histories (in time order, bounded) and the largest order's bound.
func (m *Market) checkProtections() error {
	for i := 1; i < len(m.samples); i++ {
		if m.samples[i].Bucket <= m.samples[i-1].Bucket {
			return fmt.Errorf("breaker samples out of order: %+v", m.samples)
		}
	}
	if n := len(m.samples); n > 0 && m.samples[n-1].Bucket-m.samples[0].Bucket > breakerBuckets {
		return fmt.Errorf("breaker samples span %d buckets", m.samples[n-1].Bucket-m.samples[0].Bucket)
	}
	for _, h := range [][]PricePoint{m.RefHistory, m.IndexHistory} {
		if len(h) > MaxPriceChanges+2 {
			return fmt.Errorf("price history of %d changes", len(h))
		}
		for i := 1; i < len(h); i++ {
			if h[i].Time < h[i-1].Time {
				return fmt.Errorf("price history out of order: %+v", h)
			}
		}
	}
	if hi, lo := bits.Mul64(uint64(m.Listing.MaxOrderNotional), uint64(m.Listing.Scale)); hi != m.capHi || lo != m.capLo {
		return fmt.Errorf("largest order bound %d:%d, listing gives %d:%d", m.capHi, m.capLo, hi, lo)
	}
	return nil
}

// Snapshot is the state's deterministic encoding: every slice in a fixed
// order, resting orders in each book's priority order.
type Snapshot struct {
	Markets      []MarketSnapshot `json:"markets"`
	Orders       []Order          `json:"orders"`
	Clients      []ClientID       `json:"clients"`
	Quotes       []Quote          `json:"quotes"`
	NextOrder    uint64           `json:"next_order"`
	NextTransfer uint64           `json:"next_transfer"`
	NextQuote    uint64           `json:"next_quote"`
}

// MarketSnapshot is one market.
type MarketSnapshot struct {
	Listing   Listing        `json:"listing"`
	Resting   []market.Order `json:"resting"`
	Trades    []Trade        `json:"trades"` // oldest first
	Count     uint64         `json:"count"`
	Reference int64          `json:"reference"`
	Inventory int64          `json:"inventory"`
	Profit    int64          `json:"profit"`
	// Last and Index are the book's reference prices (Book.Reference).
	Last         int64           `json:"last,omitempty"`
	Index        int64           `json:"index,omitempty"`
	RefHistory   []PricePoint    `json:"ref_history,omitempty"`
	IndexHistory []PricePoint    `json:"index_history,omitempty"`
	Breaker      []BreakerSample `json:"breaker,omitempty"`
}

// ClientID is a used client order id.
type ClientID struct {
	Customer ledger.OwnerID `json:"customer"`
	ID       string         `json:"id"`
	Order    market.OrderID `json:"order"`
}

// Snapshot returns the state's encoding (nil with no market).
func (s *State) Snapshot() *Snapshot {
	if len(s.markets) == 0 {
		return nil
	}
	sn := &Snapshot{NextOrder: s.NextOrder, NextTransfer: s.NextTransfer, NextQuote: s.NextQuote, Orders: s.OpenOrders(0)}
	for _, m := range s.Markets() {
		ms := MarketSnapshot{Listing: m.Listing, Count: m.count, Reference: m.Reference, Inventory: m.Inventory, Profit: m.Profit,
			RefHistory: m.RefHistory, IndexHistory: m.IndexHistory, Breaker: m.samples}
		ms.Last, ms.Index = m.Book.Reference()
		for o := range m.Book.Orders() {
			ms.Resting = append(ms.Resting, o)
		}
		trades := m.Trades(len(m.trades))
		for i := len(trades) - 1; i >= 0; i-- {
			ms.Trades = append(ms.Trades, trades[i])
		}
		sn.Markets = append(sn.Markets, ms)
	}
	for k, id := range s.clients {
		sn.Clients = append(sn.Clients, ClientID{Customer: k.customer, ID: k.id, Order: id})
	}
	sort.Slice(sn.Clients, func(i, j int) bool {
		if sn.Clients[i].Customer != sn.Clients[j].Customer {
			return sn.Clients[i].Customer < sn.Clients[j].Customer
		}
		return sn.Clients[i].ID < sn.Clients[j].ID
	})
	for _, q := range s.quotes {
		sn.Quotes = append(sn.Quotes, *q)
	}
	sort.Slice(sn.Quotes, func(i, j int) bool { return sn.Quotes[i].ID < sn.Quotes[j].ID })
	return sn
}

// Restore rebuilds a state from its snapshot (nil: no market).
func Restore(sn *Snapshot) (*State, error) {
	s := New()
	if sn == nil {
		return s, nil
	}
	s.NextOrder, s.NextTransfer, s.NextQuote = sn.NextOrder, sn.NextTransfer, sn.NextQuote
	for _, ms := range sn.Markets {
		if err := s.List(ms.Listing, len(ms.Resting)); err != nil {
			return nil, err
		}
		m := s.markets[ms.Listing.ID]
		if err := m.Book.RestoreReference(ms.Last, ms.Index); err != nil {
			return nil, fmt.Errorf("trading: restore %s's reference: %w", ms.Listing.Code, err)
		}
		m.RefHistory, m.IndexHistory, m.samples = ms.RefHistory, ms.IndexHistory, ms.Breaker
		for _, o := range ms.Resting {
			if err := m.Book.Restore(o); err != nil {
				return nil, fmt.Errorf("trading: restore order %d: %w", o.ID, err)
			}
		}
		for _, t := range ms.Trades {
			m.Record(t)
		}
		m.count, m.Reference, m.Inventory, m.Profit = ms.Count, ms.Reference, ms.Inventory, ms.Profit
	}
	for i := range sn.Orders {
		o := s.NewOrder()
		*o = sn.Orders[i]
		s.orders.put(o)
	}
	for _, c := range sn.Clients {
		s.clients[clientKey{c.Customer, c.ID}] = c.Order
	}
	for i := range sn.Quotes {
		q := sn.Quotes[i]
		s.quotes[q.ID] = &q
	}
	return s, s.CheckInvariants()
}
