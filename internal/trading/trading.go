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
package trading

import (
	"errors"
	"fmt"
	"math/big"
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
	return nil
}

func (l Listing) bookConfig() market.Config {
	return market.Config{TickSize: l.TickSize, LotSize: l.LotSize, MinQty: l.MinQty, MaxQty: l.MaxQty, MaxPrice: l.MaxPrice, MaxOrders: l.MaxOrders}
}

// Unit returns the base units of one quantity unit.
func (l Listing) Unit() int64 { return max(1, l.QtyUnit) }

// Notional is price × qty / Scale, exact by the listing's rule.
func (l Listing) Notional(price, qty int64) int64 {
	// price ≤ MaxPrice and qty ≤ MaxQty with their product/Scale < 2^62;
	// split to avoid the intermediate overflow: qty = a·lot.
	lots := qty / l.LotSize
	perLot := price / l.TickSize * (l.TickSize * l.LotSize / l.Scale)
	return lots * perLot
}

// Fee is bps of the notional, rounded down (the customer keeps the
// fraction).
func Fee(notional int64, bps uint32) int64 {
	return notional/10_000*int64(bps) + notional%10_000*int64(bps)/10_000
}

// Order is an open order and what it holds.
type Order struct {
	ID       market.OrderID `json:"id"`
	Market   uint16         `json:"market"`
	Customer ledger.OwnerID `json:"customer"`
	ClientID string         `json:"client_id"`
	Side     market.Side    `json:"side"`
	Kind     market.Kind    `json:"kind"`
	Price    int64          `json:"price"`
	Qty      int64          `json:"qty"` // as placed or last replaced
	Filled   int64          `json:"filled"`
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
	// Reference is the dealer desk's configured reference price (0: the
	// book's mid).
	Reference int64
	// Inventory is the house's net base position from dealer executions,
	// and Profit the spread it earned, in quote units.
	Inventory int64
	Profit    int64
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
	byCode  map[string]uint16
	orders  map[market.OrderID]*Order
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

// New returns a state with no market.
func New() *State {
	return &State{markets: map[uint16]*Market{}, byCode: map[string]uint16{}, orders: map[market.OrderID]*Order{},
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
	s.markets[l.ID] = &Market{Listing: l, Book: market.New(l.bookConfig(), capacityHint)}
	s.byCode[l.Code] = l.ID
	return nil
}

// Market returns a market by id.
func (s *State) Market(id uint16) (*Market, bool) {
	m, ok := s.markets[id]
	return m, ok
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
	o, ok := s.orders[id]
	return o, ok
}

// MustOrder returns an open order that must exist (a maker the book just
// filled).
func (s *State) MustOrder(id market.OrderID) *Order {
	o, ok := s.orders[id]
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
	s.orders[o.ID] = o
	if o.ClientID != "" {
		s.clients[clientKey{o.Customer, o.ClientID}] = o.ID
	}
}

// Close forgets an order that no longer rests (its client id stays used).
func (s *State) Close(id market.OrderID) { delete(s.orders, id) }

// OpenOrders returns a customer's open orders (all customers' if 0), by id.
func (s *State) OpenOrders(customer ledger.OwnerID) []Order {
	var out []Order
	for _, o := range s.orders {
		if customer == 0 || o.Customer == customer {
			out = append(out, *o)
		}
	}
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
	if rest != len(s.orders) {
		return fmt.Errorf("trading: %d orders rest in books, %d open", rest, len(s.orders))
	}
	for id, o := range s.orders {
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
		ms := MarketSnapshot{Listing: m.Listing, Count: m.count, Reference: m.Reference, Inventory: m.Inventory, Profit: m.Profit}
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
		s.orders[o.ID] = o
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
