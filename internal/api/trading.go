package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/market"
	"kinko/internal/people"
	"kinko/internal/trading"
)

// Trading over the API. Public market data needs no login: the markets,
// each book's depth, recent trades, candles and a live stream of
// server-sent events. Customers place, replace and cancel orders and take
// the dealer desk's quotes; operators empty a book, set the dealer's
// reference price and read the desk's position. Every order, cancel,
// replace, quote and execution is one journaled command: the core checks
// funds, KYC, halts and the book's rules, and the API turns its refusals
// into problems. Public answers never carry a customer id, and a
// customer's own fills show only the customer's side. Each market shows
// its protections: the price band and its reference, the largest order,
// the circuit breaker; an order outside the band, above the largest order
// or in a market with no reference yet is refused (422) with the band in
// the detail. Operators set a market's index price and the dealer's
// reference within the listing's bounds alone; further moves answer 403
// and go through a request for a second operator (/v1/requests, kinds
// index_price and dealer_reference).
//
// A market's code is "BTC/JPY"; in a path, where a slash cannot stand, it
// is written "BTC-JPY".

// Bounds of trading's answers and inputs.
const (
	// DefaultDepth and MaxDepth bound the price levels per side of a depth
	// answer.
	DefaultDepth = 20
	MaxDepth     = 500
	// MaxClientOrderID bounds a client order id in bytes (the core's own
	// bound on the journaled command).
	MaxClientOrderID = 64
	// MaxMarketStreams bounds the live market streams served at once.
	MaxMarketStreams = 1024
	// maxMarketCode bounds a market code read from a path or a body (a
	// listing's code is at most this long).
	maxMarketCode = 21
	// consoleTrades is how many trades the console's market page shows.
	consoleTrades = 50
)

// The live stream's rhythm: it looks at the market every streamPoll,
// sends depth events of streamLevels per side, a comment every
// streamKeepalive so that proxies keep the connection, and drops a client
// that has not taken an event within streamWriteTimeout.
const (
	streamPoll         = 100 * time.Millisecond
	streamLevels       = 20
	streamKeepalive    = 15 * time.Second
	streamWriteTimeout = 10 * time.Second
)

var (
	errSideText       = errors.New(`side is "buy" or "sell"`)
	errTypeText       = errors.New(`type is "limit", "market", "ioc", "fok" or "post_only"`)
	errMarketOp       = fmt.Errorf("%w: market actions need the admin or operator role", errForbidden)
	errNoResult       = errors.New("api: trading command answered no result")
	errTooManyStreams = errors.New("too many market streams; try again later")
)

// Side is an order's side as the API spells it: "buy" or "sell".
type Side market.Side

// MarshalText writes "buy" or "sell".
func (s Side) MarshalText() ([]byte, error) { return []byte(market.Side(s).String()), nil }

// UnmarshalText reads "buy" or "sell"; anything else is refused.
func (s *Side) UnmarshalText(b []byte) error {
	switch string(b) {
	case "buy":
		*s = Side(market.Buy)
	case "sell":
		*s = Side(market.Sell)
	default:
		return errSideText
	}
	return nil
}

// OrderType is an order's type as the API spells it: limit (good till
// cancelled), market (with a protection price), ioc, fok or post_only.
type OrderType market.Kind

var typeNames = [...]string{market.Limit: "limit", market.Market: "market", market.IOC: "ioc", market.FOK: "fok", market.PostOnly: "post_only"}

// MarshalText writes the type's name.
func (k OrderType) MarshalText() ([]byte, error) {
	if int(k) > 0 && int(k) < len(typeNames) {
		return []byte(typeNames[k]), nil
	}
	return []byte(market.Kind(k).String()), nil
}

// UnmarshalText reads a type's name; anything else is refused.
func (k *OrderType) UnmarshalText(b []byte) error {
	for i, name := range typeNames {
		if i > 0 && name == string(b) {
			*k = OrderType(i)
			return nil
		}
	}
	return errTypeText
}

// lookupMarket finds a market by its code, "BTC/JPY" or "BTC-JPY".
func lookupMarket(st *core.State, code string) (*trading.Market, error) {
	if len(code) > maxMarketCode {
		return nil, trading.ErrUnknownMarket
	}
	m, ok := st.Trading.MarketByCode(strings.ReplaceAll(code, "-", "/"))
	if !ok {
		return nil, fmt.Errorf("%w: %q", trading.ErrUnknownMarket, code)
	}
	return m, nil
}

// pathCode is a market's code as a path writes it: "BTC-JPY".
func pathCode(code string) string { return strings.ReplaceAll(code, "/", "-") }

// MarketView is a market as the public sees it. Prices are the quote
// asset's base units per whole base coin; quantities are the market's
// quantity units (the base asset's base units, times qty_unit if set).
type MarketView struct {
	ID          uint16 `json:"id"`
	Code        string `json:"code"`
	Base        string `json:"base"`
	Quote       string `json:"quote"`
	Scale       int64  `json:"scale"`
	QtyUnit     int64  `json:"qty_unit"`
	TickSize    Units  `json:"tick_size"`
	LotSize     Units  `json:"lot_size"`
	MinQty      Units  `json:"min_qty"`
	MaxQty      Units  `json:"max_qty"`
	MaxPrice    Units  `json:"max_price"`
	MakerFeeBps uint32 `json:"maker_fee_bps"`
	TakerFeeBps uint32 `json:"taker_fee_bps"`
	// BestBid and BestAsk are 0 for an empty side.
	BestBid Units `json:"best_bid"`
	BestAsk Units `json:"best_ask"`
	// LastPrice is the last book trade's price among the recent ones (0
	// if none): dealer executions are at the house's price, not the
	// market's.
	LastPrice Units `json:"last_price"`
	// Trades counts every trade the market recorded, dealer executions
	// included; Resting counts the orders in the book.
	Trades  uint64 `json:"trades"`
	Resting int    `json:"resting"`
	// Dealer tells whether the dealer desk quotes this market.
	Dealer bool `json:"dealer"`
	// Halted lists the market's halted switches (ASSET:trade on either
	// asset stops orders; ASSET:dealer on the base stops the desk).
	Halted []string `json:"halted"`
	// Band is the price band orders must be priced within, and what it is
	// measured from.
	Band BandView `json:"band"`
	// MaxOrderNotional is the largest order's notional in quote base
	// units (MaxQty its quantity).
	MaxOrderNotional Units `json:"max_order_notional"`
	// BreakerBps and BreakerWindowSeconds are the circuit breaker: a trade
	// this far from the price a window earlier halts the market.
	BreakerBps           uint32 `json:"breaker_bps"`
	BreakerWindowSeconds int64  `json:"breaker_window_seconds"`
	// ReferenceChangeBps and ReferenceDayBps are how far one operator may
	// move the index or the dealer's reference, a change and a day.
	ReferenceChangeBps uint32 `json:"reference_change_bps"`
	ReferenceDayBps    uint32 `json:"reference_day_bps"`
}

// BandView is a market's price band: Low and High inclusive (0 when the
// market has no reference yet and trades nothing), BandBps either side of
// Reference, which is the index price if operators set one, else the last
// trade's price; Source says which ("index", "last_trade" or "none").
type BandView struct {
	BandBps   uint32 `json:"band_bps"`
	Low       Units  `json:"low"`
	High      Units  `json:"high"`
	Reference Units  `json:"reference"`
	Source    string `json:"source"`
	Index     Units  `json:"index"`
	LastTrade Units  `json:"last_trade"`
}

func bandView(m *trading.Market) BandView {
	lo, hi := m.Book.Band()
	last, index := m.Book.Reference()
	v := BandView{BandBps: m.Listing.BandBps, Low: Units(lo), High: Units(hi), Index: Units(index), LastTrade: Units(last), Source: "none"}
	switch {
	case index != 0:
		v.Reference, v.Source = Units(index), "index"
	case last != 0:
		v.Reference, v.Source = Units(last), "last_trade"
	}
	return v
}

func marketView(st *core.State, m *trading.Market) MarketView {
	l := &m.Listing
	base, _ := st.Ledger.Asset(l.Base)
	quote, _ := st.Ledger.Asset(l.Quote)
	bid, ask := m.Book.Best()
	return MarketView{ID: l.ID, Code: l.Code, Base: base.Code, Quote: quote.Code, Scale: l.Scale, QtyUnit: l.Unit(), TickSize: Units(l.TickSize),
		LotSize: Units(l.LotSize), MinQty: Units(l.MinQty), MaxQty: Units(l.MaxQty), MaxPrice: Units(l.MaxPrice), MakerFeeBps: l.MakerFeeBps, TakerFeeBps: l.TakerFeeBps,
		BestBid: Units(bid), BestAsk: Units(ask), LastPrice: Units(lastPrice(m)), Trades: m.Count(), Resting: m.Book.Len(),
		Dealer: l.DealerSpreadBps > 0 && l.QuoteValidityNs > 0, Halted: marketHalts(st, l), Band: bandView(m), MaxOrderNotional: Units(l.MaxOrderNotional),
		BreakerBps: l.BreakerBps, BreakerWindowSeconds: l.BreakerWindowNs / 1e9, ReferenceChangeBps: l.ReferenceChangeBps, ReferenceDayBps: l.ReferenceDayBps}
}

// lastPrice is the price of the market's last book trade among the
// recent ones, or 0. It reads a few trades first: the last is nearly
// always a book trade.
func lastPrice(m *trading.Market) int64 {
	for n := 16; ; n *= 16 {
		ts := m.Trades(n)
		for _, t := range ts {
			if !t.Dealer {
				return t.Price
			}
		}
		if len(ts) < n || n >= trading.RecentTrades {
			return 0
		}
	}
}

// marketHalts names the market's halted switches: trade on either asset,
// dealer on the base (the switches the core checks for it).
func marketHalts(st *core.State, l *trading.Listing) []string {
	out := []string{}
	check := func(a ledger.AssetID, svc controls.Service) {
		if st.Controls.Allowed(a, svc) != nil {
			out = append(out, switchText(st, controls.Switch{Asset: a, Service: svc}))
		}
	}
	check(l.Base, controls.Trade)
	check(l.Quote, controls.Trade)
	check(l.Base, controls.Dealer)
	return out
}

// LevelView is one price level of a book.
type LevelView struct {
	Price  Units `json:"price"`
	Qty    Units `json:"qty"`
	Orders int   `json:"orders"`
}

// DepthView is a book's best levels on both sides, best first, as of a
// journal entry.
type DepthView struct {
	Market string      `json:"market"`
	Seq    uint64      `json:"seq"`
	Bids   []LevelView `json:"bids"`
	Asks   []LevelView `json:"asks"`
}

func levelViews(ls []market.Level) []LevelView {
	out := make([]LevelView, len(ls))
	for i, l := range ls {
		out[i] = LevelView{Price: Units(l.Price), Qty: Units(l.Qty), Orders: l.Orders}
	}
	return out
}

func depthView(st *core.State, m *trading.Market, levels int) DepthView {
	return DepthView{Market: m.Listing.Code, Seq: st.Seq(), Bids: levelViews(m.Book.Depth(market.Buy, levels, nil)),
		Asks: levelViews(m.Book.Depth(market.Sell, levels, nil))}
}

// TradeView is a trade as the public sees it: no order or customer.
type TradeView struct {
	Seq       uint64    `json:"seq"`   // the trade's number in the market
	Entry     uint64    `json:"entry"` // the journal entry that made it
	Time      time.Time `json:"time"`
	Price     Units     `json:"price"`
	Qty       Units     `json:"qty"`
	TakerSide Side      `json:"taker_side"`
	// Dealer marks a dealer desk execution: the house was the
	// counterparty, at its quoted price.
	Dealer bool `json:"dealer,omitempty"`
	// Halted lists the switches of the market's assets halted at the fill.
	Halted []string `json:"halted,omitempty"`
}

func tradeView(t *trading.Trade) TradeView {
	return TradeView{Seq: t.Seq, Entry: t.Entry, Time: time.Unix(0, t.Time).UTC(), Price: Units(t.Price), Qty: Units(t.Qty),
		TakerSide: Side(t.TakerSide), Dealer: t.Dealer, Halted: haltList(t.Halted)}
}

func haltList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// FillView is one of a customer's own fills: the customer's side of the
// trade only.
type FillView struct {
	Seq   uint64    `json:"seq"`
	Entry uint64    `json:"entry"`
	Time  time.Time `json:"time"`
	Price Units     `json:"price"`
	Qty   Units     `json:"qty"`
	Side  Side      `json:"side"` // the customer's
	// Role is "maker" or "taker"; a dealer execution is a taker's.
	Role  string         `json:"role"`
	Order market.OrderID `json:"order,omitempty"`
	// Notional is price × qty / scale in quote base units; Fee is the
	// customer's fee on it.
	Notional Units    `json:"notional"`
	Fee      Units    `json:"fee"`
	Dealer   bool     `json:"dealer,omitempty"`
	Halted   []string `json:"halted,omitempty"`
}

func fillView(l *trading.Listing, t *trading.Trade, me ledger.OwnerID) FillView {
	v := FillView{Seq: t.Seq, Entry: t.Entry, Time: time.Unix(0, t.Time).UTC(), Price: Units(t.Price), Qty: Units(t.Qty), Side: Side(t.TakerSide),
		Role: "taker", Order: t.Taker, Notional: Units(l.Notional(t.Price, t.Qty)), Fee: Units(t.TakerFee), Dealer: t.Dealer, Halted: haltList(t.Halted)}
	if t.MakerOwn == me && !t.Dealer {
		v.Side, v.Role, v.Order, v.Fee = Side(t.TakerSide.Opposite()), "maker", t.Maker, Units(t.MakerFee)
	}
	return v
}

// OrderView is one of a customer's open orders.
type OrderView struct {
	ID            market.OrderID `json:"id"`
	Market        string         `json:"market"`
	ClientOrderID string         `json:"client_order_id,omitempty"`
	Side          Side           `json:"side"`
	Type          OrderType      `json:"type"`
	Price         Units          `json:"price"`
	// Qty is as placed or last replaced; Open is what still rests.
	Qty    Units `json:"qty"`
	Filled Units `json:"filled"`
	Open   Units `json:"open"`
	// Held is what the order holds: quote base units for a buy, the
	// quantity for a sell.
	Held    Units     `json:"held"`
	Created time.Time `json:"created"`
}

func orderView(code string, o *trading.Order) OrderView {
	return OrderView{ID: o.ID, Market: code, ClientOrderID: o.ClientID, Side: Side(o.Side), Type: OrderType(o.Kind), Price: Units(o.Price),
		Qty: Units(o.Qty), Filled: Units(o.Filled), Open: Units(o.Qty - o.Filled), Held: Units(o.Held), Created: time.Unix(0, o.Created).UTC()}
}

// PlaceView is what a placement or replacement did: Filled + Resting +
// Cancelled is the order's quantity.
type PlaceView struct {
	Order         market.OrderID `json:"order"`
	Market        string         `json:"market"`
	ClientOrderID string         `json:"client_order_id,omitempty"`
	Filled        Units          `json:"filled"`
	Resting       Units          `json:"resting"`
	Cancelled     Units          `json:"cancelled"`
	Trades        []FillView     `json:"trades"`
}

func placeView(l *trading.Listing, res *core.PlaceResult, me ledger.OwnerID, clientID string) PlaceView {
	v := PlaceView{Order: res.Order, Market: l.Code, ClientOrderID: clientID, Filled: Units(res.Filled), Resting: Units(res.Resting), Cancelled: Units(res.Cancelled), Trades: []FillView{}}
	for i := range res.Trades {
		v.Trades = append(v.Trades, fillView(l, &res.Trades[i], me))
	}
	return v
}

// CandleView is one interval's prices and volume, from the book's trades
// (dealer executions left out).
type CandleView struct {
	Time   time.Time `json:"time"` // the interval's start
	Open   Units     `json:"open"`
	High   Units     `json:"high"`
	Low    Units     `json:"low"`
	Close  Units     `json:"close"`
	Volume Units     `json:"volume"` // quantity units
	Trades int       `json:"trades"`
}

var candleIntervals = map[string]time.Duration{"1m": time.Minute, "5m": 5 * time.Minute, "1h": time.Hour, "1d": 24 * time.Hour}

// candles groups trades, newest first as Market.Trades gives them, into
// candles of d, oldest first. Trade times never go back (they are the
// core's entry times), so each candle follows the last.
func candles(ts []trading.Trade, d time.Duration) []CandleView {
	out := []CandleView{}
	step := int64(d)
	for i := len(ts) - 1; i >= 0; i-- {
		t := &ts[i]
		if t.Dealer {
			continue
		}
		start := t.Time - t.Time%step
		if n := len(out); n > 0 && out[n-1].Time.UnixNano() == start {
			c := &out[n-1]
			c.High, c.Low, c.Close = max(c.High, Units(t.Price)), min(c.Low, Units(t.Price)), Units(t.Price)
			c.Volume = Units(addCapped(int64(c.Volume), t.Qty))
			c.Trades++
			continue
		}
		out = append(out, CandleView{Time: time.Unix(0, start).UTC(), Open: Units(t.Price), High: Units(t.Price), Low: Units(t.Price), Close: Units(t.Price), Volume: Units(t.Qty), Trades: 1})
	}
	return out
}

// addCapped adds non-negative a and b, stopping at the largest int64
// rather than wrapping.
func addCapped(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// QuoteView is a dealer desk quote: a firm price until Expires.
type QuoteView struct {
	ID     uint64 `json:"id"`
	Market string `json:"market"`
	Side   Side   `json:"side"` // the customer's
	Qty    Units  `json:"qty"`
	Price  Units  `json:"price"`
	// Notional is what the customer pays (buy) or receives (sell), in
	// quote base units.
	Notional Units     `json:"notional"`
	Expires  time.Time `json:"expires"`
}

// HouseBalanceView is one of the house's (自己口) balances.
type HouseBalanceView struct {
	Asset   string        `json:"asset"`
	Balance ledger.Signed `json:"balance"`
	Decimal string        `json:"decimal"`
}

// DealerView is the dealer desk's position in one market.
type DealerView struct {
	Market string `json:"market"`
	// Reference is the operators' reference price, the only price the desk
	// quotes around (0: none, and the desk does not quote); Mid is the
	// book's, for comparison (0 when a side is empty).
	Reference Units `json:"reference"`
	Mid       Units `json:"mid"`
	// Inventory is the house's net position from dealer executions, in
	// quantity units (negative: short); Profit the spread earned against
	// the reference, in quote base units.
	Inventory Units  `json:"inventory"`
	Profit    Units  `json:"profit"`
	SpreadBps uint32 `json:"spread_bps"`
	MaxLong   Units  `json:"max_long"`
	MaxShort  Units  `json:"max_short"`
	// House is the house's ledger balance of the base and the quote asset.
	House []HouseBalanceView `json:"house"`
}

func dealerView(st *core.State, m *trading.Market) DealerView {
	l := &m.Listing
	v := DealerView{Market: l.Code, Reference: Units(m.Reference), Mid: Units(m.Mid()), Inventory: Units(m.Inventory), Profit: Units(m.Profit),
		SpreadBps: l.DealerSpreadBps, MaxLong: Units(l.DealerMaxLong), MaxShort: Units(l.DealerMaxShort), House: []HouseBalanceView{}}
	for _, id := range []ledger.AssetID{l.Base, l.Quote} {
		a, _ := st.Ledger.Asset(id)
		hv := HouseBalanceView{Asset: a.Code, Decimal: "0"}
		if acc, ok := st.Ledger.Account(ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: id, Kind: ledger.KindHouse}); ok {
			hv.Balance, hv.Decimal = acc.SignedBalance(), acc.SignedBalance().FormatDecimal(a.Decimals)
		}
		v.House = append(v.House, hv)
	}
	return v
}

// OrderRequest is the body of POST /v1/me/orders. Price is the limit; for
// a market order, the protection price (the worst accepted).
type OrderRequest struct {
	Market        string    `json:"market"`
	Side          Side      `json:"side"`
	Type          OrderType `json:"type"`
	Price         Units     `json:"price"`
	Qty           Units     `json:"qty"`
	ClientOrderID string    `json:"client_order_id,omitempty"`
}

// ReplaceRequest is the body of POST /v1/me/orders/{id}/replace: the new
// price and open quantity.
type ReplaceRequest struct {
	Price Units `json:"price"`
	Qty   Units `json:"qty"`
}

// QuoteRequest is the body of POST /v1/me/dealer/quotes.
type QuoteRequest struct {
	Market string `json:"market"`
	Side   Side   `json:"side"`
	Qty    Units  `json:"qty"`
}

// CancelAllRequest is the body of POST /v1/markets/{code}/cancel-all.
type CancelAllRequest struct {
	Reason string `json:"reason"`
}

// ReferenceRequest is the body of POST /v1/markets/{code}/reference (the
// dealer's reference price, 0 to stop the desk quoting) and of POST
// /v1/markets/{code}/index (the index price, 0 to clear it).
type ReferenceRequest struct {
	Price Units `json:"price"`
}

func (s *Server) registerTrading() {
	s.handle("GET", "/v1/markets", true, s.listMarkets)
	s.handle("GET", "/v1/markets/{code}/depth", true, s.marketDepth)
	s.handle("GET", "/v1/markets/{code}/trades", true, s.marketTrades)
	s.handle("GET", "/v1/markets/{code}/candles", true, s.marketCandles)
	s.handle("GET", "/v1/markets/{code}/stream", true, s.marketStream(make(chan struct{}, MaxMarketStreams)))
	s.handle("POST", "/v1/markets/{code}/cancel-all", true, s.idempotent(s.postCancelAll))
	s.handle("POST", "/v1/markets/{code}/reference", true, s.idempotent(s.postReference))
	s.handle("POST", "/v1/markets/{code}/index", true, s.idempotent(s.postIndex))
	s.handle("GET", "/v1/me/orders", true, s.myOrders)
	s.handle("POST", "/v1/me/orders", true, s.idempotent(s.postOrder))
	s.handle("POST", "/v1/me/orders/{id}/cancel", true, s.idempotent(s.postCancel))
	s.handle("POST", "/v1/me/orders/{id}/replace", true, s.idempotent(s.postReplace))
	s.handle("POST", "/v1/me/dealer/quotes", true, s.idempotent(s.postQuote))
	s.handle("POST", "/v1/me/dealer/quotes/{id}/execute", true, s.idempotent(s.postExecute))
	s.handle("GET", "/v1/dealer", true, s.operatorOnly(s.getDealer))
	s.registerTradingConsole()
}

func (s *Server) listMarkets(w http.ResponseWriter, r *http.Request) {
	out := []MarketView{}
	s.core.Read(func(st *core.State) {
		for _, m := range st.Trading.Markets() {
			out = append(out, marketView(st, m))
		}
	})
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (s *Server) marketDepth(w http.ResponseWriter, r *http.Request) {
	levels := DefaultDepth
	if v := r.URL.Query().Get("levels"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxDepth {
			s.fail(w, r, fmt.Errorf("%w: levels must be 1-%d", errBadJSON, MaxDepth))
			return
		}
		levels = n
	}
	var v DepthView
	var err error
	s.core.Read(func(st *core.State) {
		var m *trading.Market
		if m, err = lookupMarket(st, r.PathValue("code")); err == nil {
			v = depthView(st, m, levels)
		}
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) marketTrades(w http.ResponseWriter, r *http.Request) {
	limit, _, err := paging(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := []TradeView{}
	s.core.Read(func(st *core.State) {
		var m *trading.Market
		if m, err = lookupMarket(st, r.PathValue("code")); err == nil {
			for _, t := range m.Trades(limit) {
				out = append(out, tradeView(&t))
			}
		}
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (s *Server) marketCandles(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("interval")
	if name == "" {
		name = "1m"
	}
	d, ok := candleIntervals[name]
	if !ok {
		s.fail(w, r, fmt.Errorf("%w: interval is 1m, 5m, 1h or 1d", errBadJSON))
		return
	}
	var ts []trading.Trade
	var code string
	var err error
	s.core.Read(func(st *core.State) {
		var m *trading.Market
		if m, err = lookupMarket(st, r.PathValue("code")); err == nil {
			ts, code = m.Trades(trading.RecentTrades), m.Listing.Code
		}
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"market": code, "interval": name, "items": candles(ts, d)})
}

// marketStream serves a market's live data as server-sent events: a depth
// event on connect, then every streamPoll a trade event for each new trade
// and a depth event when the best streamLevels levels changed. At most
// cap(slots) streams run at once. The loop ends when the client goes away
// or stops reading; it reads the state under the core's read lock and
// writes with the lock released.
func (s *Server) marketStream(slots chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var id uint16
		var code string
		var count, seq uint64
		var bids, asks []market.Level // as last sent
		var err error
		s.core.Read(func(st *core.State) {
			var m *trading.Market
			if m, err = lookupMarket(st, r.PathValue("code")); err == nil {
				id, code, count, seq = m.Listing.ID, m.Listing.Code, m.Count(), st.Seq()
				bids, asks = m.Book.Depth(market.Buy, streamLevels, nil), m.Book.Depth(market.Sell, streamLevels, nil)
			}
		})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			writeProblem(w, http.StatusServiceUnavailable, "unavailable", errTooManyStreams.Error())
			return
		}
		rc := http.NewResponseController(w)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		// write sends an event or a comment and flushes it; false means
		// the client is gone or not reading.
		write := func(text string) bool {
			rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)) // where the connection has deadlines
			if _, err := io.WriteString(w, text); err != nil {
				return false
			}
			return rc.Flush() == nil
		}
		send := func(event string, v any) bool {
			b, err := json.Marshal(v)
			return err == nil && write("event: "+event+"\ndata: "+string(b)+"\n\n")
		}
		depth := func() bool {
			return send("depth", DepthView{Market: code, Seq: seq, Bids: levelViews(bids), Asks: levelViews(asks)})
		}
		if !depth() {
			return
		}
		var bidBuf, askBuf []market.Level
		poll := time.NewTicker(streamPoll)
		defer poll.Stop()
		keep := time.NewTicker(streamKeepalive)
		defer keep.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-keep.C:
				if !write(": keepalive\n\n") {
					return
				}
			case <-poll.C:
				var trades []trading.Trade
				var found bool
				s.core.Read(func(st *core.State) {
					m, ok := st.Trading.Market(id)
					if found = ok; !ok {
						return
					}
					if c := m.Count(); c > count {
						trades, count = m.Trades(int(min(c-count, trading.RecentTrades))), c
					}
					bidBuf = m.Book.Depth(market.Buy, streamLevels, bidBuf[:0])
					askBuf = m.Book.Depth(market.Sell, streamLevels, askBuf[:0])
					seq = st.Seq()
				})
				if !found {
					return
				}
				for i := len(trades) - 1; i >= 0; i-- {
					if !send("trade", tradeView(&trades[i])) {
						return
					}
				}
				if slices.Equal(bidBuf, bids) && slices.Equal(askBuf, asks) {
					continue
				}
				bids, bidBuf = bidBuf, bids
				asks, askBuf = askBuf, asks
				if !depth() {
					return
				}
			}
		}
	}
}

// mayRunMarkets checks that an operator may empty a book or set the
// dealer's reference price: the admin or operator role.
func (s *Server) mayRunMarkets(name string) error {
	var o people.Operator
	var ok bool
	s.core.Read(func(st *core.State) { o, ok = st.People.Operator(name) })
	if !ok || !(o.HasRole(people.RoleAdmin) || o.HasRole(people.RoleOperator)) {
		return errMarketOp
	}
	return nil
}

// marketID finds the id of the market with code.
func (s *Server) marketID(code string) (uint16, error) {
	var id uint16
	var err error
	s.core.Read(func(st *core.State) {
		var m *trading.Market
		if m, err = lookupMarket(st, code); err == nil {
			id = m.Listing.ID
		}
	})
	return id, err
}

// marketNow is the public view of a market after an action.
func (s *Server) marketNow(id uint16) MarketView {
	var v MarketView
	s.core.Read(func(st *core.State) {
		if m, ok := st.Trading.Market(id); ok {
			v = marketView(st, m)
		}
	})
	return v
}

// CancelAll cancels every resting order of a market for an operator,
// releasing their holds: what a halted market's book needs when its
// orders should not wait for the lift.
func (s *Server) CancelAll(ctx context.Context, operator, code, reason string) (MarketView, error) {
	if err := s.mayRunMarkets(operator); err != nil {
		return MarketView{}, err
	}
	id, err := s.marketID(code)
	if err != nil {
		return MarketView{}, err
	}
	if _, err := s.submit(ctx, core.CancelMarketOrders{Market: id, Actor: operator, Reason: reason}); err != nil {
		return MarketView{}, err
	}
	return s.marketNow(id), nil
}

// SetReference sets the dealer desk's reference price of a market for an
// operator (0: the desk stops quoting), within the listing's bounds for
// one operator; beyond them the core refuses (trading.ErrNeedsApproval)
// and a dealer_reference request is the way.
func (s *Server) SetReference(ctx context.Context, operator, code string, price int64) (DealerView, error) {
	if err := s.mayRunMarkets(operator); err != nil {
		return DealerView{}, err
	}
	id, err := s.marketID(code)
	if err != nil {
		return DealerView{}, err
	}
	if _, err := s.submit(ctx, core.SetReferencePrice{Market: id, Price: price, Actor: operator}); err != nil {
		return DealerView{}, err
	}
	var v DealerView
	s.core.Read(func(st *core.State) {
		m, _ := st.Trading.Market(id)
		v = dealerView(st, m)
	})
	return v, nil
}

// SetIndex sets a market's index price, the reference of its price band,
// for an operator (0: the band follows the last trade), within the
// listing's bounds for one operator; beyond them, and for a market's
// first reference, the core refuses (trading.ErrNeedsApproval) and an
// index_price request is the way.
func (s *Server) SetIndex(ctx context.Context, operator, code string, price int64) (MarketView, error) {
	if err := s.mayRunMarkets(operator); err != nil {
		return MarketView{}, err
	}
	id, err := s.marketID(code)
	if err != nil {
		return MarketView{}, err
	}
	if _, err := s.submit(ctx, core.SetIndexPrice{Market: id, Price: price, Actor: operator}); err != nil {
		return MarketView{}, err
	}
	return s.marketNow(id), nil
}

func (s *Server) postIndex(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.operator(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req ReferenceRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.SetIndex(r.Context(), p.Session.Operator, r.PathValue("code"), int64(req.Price))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) postCancelAll(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.operator(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req CancelAllRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.CancelAll(r.Context(), p.Session.Operator, r.PathValue("code"), req.Reason)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) postReference(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.operator(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req ReferenceRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.SetReference(r.Context(), p.Session.Operator, r.PathValue("code"), int64(req.Price))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) getDealer(w http.ResponseWriter, r *http.Request, _ Principal) {
	writeJSON(w, http.StatusOK, map[string]any{"items": s.dealerViews()})
}

func (s *Server) dealerViews() []DealerView {
	out := []DealerView{}
	s.core.Read(func(st *core.State) {
		for _, m := range st.Trading.Markets() {
			out = append(out, dealerView(st, m))
		}
	})
	return out
}

// myOrders lists the customer's open orders by id, a page at a time: the
// cursor is the last id of the previous page.
func (s *Server) myOrders(w http.ResponseWriter, r *http.Request) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	limit, cursor, err := paging(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page := Page[OrderView]{Items: []OrderView{}}
	s.core.Read(func(st *core.State) {
		for _, o := range st.Trading.OpenOrders(p.Session.Customer) {
			if o.ID <= market.OrderID(cursor) {
				continue
			}
			if len(page.Items) == limit {
				page.Next = strconv.FormatUint(uint64(page.Items[limit-1].ID), 10)
				break
			}
			m, _ := st.Trading.Market(o.Market)
			page.Items = append(page.Items, orderView(m.Listing.Code, &o))
		}
	})
	writeJSON(w, http.StatusOK, page)
}

// checkClientID bounds a client order id: printable text, at most
// MaxClientOrderID bytes.
func checkClientID(id string) error {
	if len(id) > MaxClientOrderID || !utf8.ValidString(id) || strings.IndexFunc(id, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return fmt.Errorf("%w: client_order_id is printable text of at most %d bytes", errBadJSON, MaxClientOrderID)
	}
	return nil
}

func (s *Server) postOrder(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req OrderRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.placeOrder(r.Context(), p.Session.Customer, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) placeOrder(ctx context.Context, customer ledger.OwnerID, req OrderRequest) (PlaceView, error) {
	if err := checkClientID(req.ClientOrderID); err != nil {
		return PlaceView{}, err
	}
	var l trading.Listing
	var err error
	s.core.Read(func(st *core.State) {
		var m *trading.Market
		if m, err = lookupMarket(st, req.Market); err == nil {
			l = m.Listing
		}
	})
	if err != nil {
		return PlaceView{}, err
	}
	v, err := s.submit(ctx, core.PlaceOrder{Customer: customer, Market: l.ID, Side: market.Side(req.Side), Type: market.Kind(req.Type),
		Price: int64(req.Price), Qty: int64(req.Qty), ClientID: req.ClientOrderID})
	if err != nil {
		return PlaceView{}, err
	}
	res, ok := v.(*core.PlaceResult)
	if !ok {
		return PlaceView{}, errNoResult
	}
	return placeView(&l, res, customer, req.ClientOrderID), nil
}

// pathID reads the {id} of a path.
func pathID(r *http.Request, what string) (uint64, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s id", errBadJSON, what)
	}
	return id, nil
}

// decodeNone accepts no body or an empty JSON object: for routes whose
// path says everything.
func decodeNone(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return decodeStrict(body, &struct{}{})
}

// ownOrder finds a customer's open order and its market's listing. The
// core checks again when it applies the command; this answers unknown
// and foreign orders without journaling them.
func (s *Server) ownOrder(customer ledger.OwnerID, id market.OrderID) (trading.Listing, error) {
	var l trading.Listing
	err := trading.ErrUnknownOrder
	s.core.Read(func(st *core.State) {
		o, ok := st.Trading.Order(id)
		if !ok {
			return
		}
		if o.Customer != customer {
			err = trading.ErrNotOwner
			return
		}
		m, _ := st.Trading.Market(o.Market)
		l, err = m.Listing, nil
	})
	return l, err
}

func (s *Server) postCancel(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := pathID(r, "order")
	if err == nil {
		err = decodeNone(body)
	}
	if err == nil {
		_, err = s.ownOrder(p.Session.Customer, market.OrderID(id))
	}
	if err == nil {
		_, err = s.submit(r.Context(), core.CancelOrder{Customer: p.Session.Customer, Order: market.OrderID(id)})
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"order": id, "cancelled": true})
}

func (s *Server) postReplace(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := pathID(r, "order")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req ReplaceRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	me := p.Session.Customer
	l, err := s.ownOrder(me, market.OrderID(id))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.submit(r.Context(), core.ReplaceOrder{Customer: me, Order: market.OrderID(id), Price: int64(req.Price), Qty: int64(req.Qty)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, ok := v.(*core.PlaceResult)
	if !ok {
		s.fail(w, r, errNoResult)
		return
	}
	writeJSON(w, http.StatusOK, placeView(&l, res, me, ""))
}

func (s *Server) postQuote(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req QuoteRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	var l trading.Listing
	s.core.Read(func(st *core.State) {
		var m *trading.Market
		if m, err = lookupMarket(st, req.Market); err == nil {
			l = m.Listing
		}
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.submit(r.Context(), core.DealerQuote{Customer: p.Session.Customer, Market: l.ID, Side: market.Side(req.Side), Qty: int64(req.Qty)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q, ok := v.(*trading.Quote)
	if !ok {
		s.fail(w, r, errNoResult)
		return
	}
	writeJSON(w, http.StatusCreated, QuoteView{ID: q.ID, Market: l.Code, Side: Side(q.Side), Qty: Units(q.Qty), Price: Units(q.Price),
		Notional: Units(l.Notional(q.Price, q.Qty)), Expires: time.Unix(0, q.Expires).UTC()})
}

func (s *Server) postExecute(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := pathID(r, "quote")
	if err == nil {
		err = decodeNone(body)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	me := p.Session.Customer
	v, err := s.submit(r.Context(), core.DealerExecute{Customer: me, Quote: id})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	t, ok := v.(*trading.Trade)
	if !ok {
		s.fail(w, r, errNoResult)
		return
	}
	var l trading.Listing
	s.core.Read(func(st *core.State) {
		m, _ := st.Trading.Market(t.Market)
		l = m.Listing
	})
	writeJSON(w, http.StatusCreated, fillView(&l, t, me))
}

// The console's market pages: prices and quantities formatted for people
// (digits grouped, quantities in whole coins).

// consoleMarket is a market as the console lists it.
type consoleMarket struct {
	MarketView
	Path                          string
	Bid, Ask, Last, Reference     string
	TickText, LotText, MinQtyText string
	// BandText says the price band and what it is measured from; Index is
	// the index price.
	BandText, Index string
}

// consoleLevel is one book level as the console shows it.
type consoleLevel struct {
	Price, Qty string
	Orders     int
}

// consoleTrade is a trade as the console shows it.
type consoleTrade struct {
	Seq, Entry       uint64
	Time             time.Time
	Price, Qty, Side string
	Halted           string
	Dealer           bool
}

// consoleDealer is a market's dealer desk as the console shows it.
type consoleDealer struct {
	DealerView
	Path                              string
	Reference, Mid, Inventory, Profit string
	MaxLong, MaxShort                 string
}

// units formats a market's prices and quantities.
type units struct {
	unit                int64
	base, quote         uint8 // decimals
	baseCode, quoteCode string
}

func unitsOf(st *core.State, l *trading.Listing) units {
	b, _ := st.Ledger.Asset(l.Base)
	q, _ := st.Ledger.Asset(l.Quote)
	return units{unit: l.Unit(), base: b.Decimals, quote: q.Decimals, baseCode: b.Code, quoteCode: q.Code}
}

// price formats a price in the quote asset ("—" for 0, none).
func (u units) price(p int64) string {
	if p == 0 {
		return "—"
	}
	return signed(p, 1, u.quote)
}

// money formats quote base units in the quote asset.
func (u units) money(v int64) string { return signed(v, 1, u.quote) + " " + u.quoteCode }

// qty formats quantity units in whole base coins.
func (u units) qty(q int64) string { return signed(q, u.unit, u.base) + " " + u.baseCode }

// signed formats v × unit base units with all of decimals, digits
// grouped (formatting as the rest of the console: format.go).
func signed(v, unit int64, decimals uint8) string {
	sign := ""
	mag := uint64(v)
	if v < 0 {
		sign, mag = "−", uint64(-(v+1))+1
	}
	hi, lo := bits.Mul64(mag, uint64(unit))
	return sign + groupDigits(fixedDecimal(ledger.Amount{Hi: hi, Lo: lo}, decimals))
}

func consoleMarketOf(st *core.State, m *trading.Market) consoleMarket {
	u := unitsOf(st, &m.Listing)
	v := marketView(st, m)
	c := consoleMarket{MarketView: v, Path: pathCode(v.Code), Bid: u.price(int64(v.BestBid)), Ask: u.price(int64(v.BestAsk)),
		Last: u.price(int64(v.LastPrice)), Reference: u.price(m.Reference), TickText: u.money(int64(v.TickSize)), LotText: u.qty(int64(v.LotSize)), MinQtyText: u.qty(int64(v.MinQty)),
		Index: u.price(int64(v.Band.Index))}
	switch v.Band.Source {
	case "none":
		c.BandText = "no reference yet: nothing trades until two operators set an index"
	case "index":
		c.BandText = fmt.Sprintf("%s – %s (±%d bps of the index)", u.price(int64(v.Band.Low)), u.price(int64(v.Band.High)), v.Band.BandBps)
	default:
		c.BandText = fmt.Sprintf("%s – %s (±%d bps of the last trade)", u.price(int64(v.Band.Low)), u.price(int64(v.Band.High)), v.Band.BandBps)
	}
	return c
}

func (s *Server) consoleMarkets() []consoleMarket {
	out := []consoleMarket{}
	s.core.Read(func(st *core.State) {
		for _, m := range st.Trading.Markets() {
			out = append(out, consoleMarketOf(st, m))
		}
	})
	return out
}

func (s *Server) registerTradingConsole() {
	s.handle("GET", "/console/markets", false, func(w http.ResponseWriter, r *http.Request) {
		v, _, ok := s.consoleUser(w, r)
		if !ok {
			return
		}
		v.Title, v.Nav, v.Data = "Markets", "markets", map[string]any{"Markets": s.consoleMarkets()}
		s.render(w, "markets", http.StatusOK, v)
	})
	s.handle("GET", "/console/markets/{code}", false, func(w http.ResponseWriter, r *http.Request) {
		v, _, ok := s.consoleUser(w, r)
		if !ok {
			return
		}
		var d struct {
			Market     consoleMarket
			Bids, Asks []consoleLevel
			Trades     []consoleTrade
		}
		var err error
		s.core.Read(func(st *core.State) {
			var m *trading.Market
			if m, err = lookupMarket(st, r.PathValue("code")); err != nil {
				return
			}
			u := unitsOf(st, &m.Listing)
			d.Market = consoleMarketOf(st, m)
			for _, l := range m.Book.Depth(market.Buy, DefaultDepth, nil) {
				d.Bids = append(d.Bids, consoleLevel{Price: u.price(l.Price), Qty: u.qty(l.Qty), Orders: l.Orders})
			}
			for _, l := range m.Book.Depth(market.Sell, DefaultDepth, nil) {
				d.Asks = append(d.Asks, consoleLevel{Price: u.price(l.Price), Qty: u.qty(l.Qty), Orders: l.Orders})
			}
			for _, t := range m.Trades(consoleTrades) {
				d.Trades = append(d.Trades, consoleTrade{Seq: t.Seq, Entry: t.Entry, Time: time.Unix(0, t.Time).UTC(), Price: u.price(t.Price),
					Qty: u.qty(t.Qty), Side: t.TakerSide.String(), Halted: strings.ReplaceAll(t.Halted, ",", ", "), Dealer: t.Dealer})
			}
		})
		if err != nil {
			v.Title, v.Nav, v.Error = "Market", "markets", publicErr(err).Error()
			s.render(w, "market", http.StatusNotFound, v)
			return
		}
		v.Title, v.Nav, v.Data = d.Market.Code, "markets", d
		s.render(w, "market", http.StatusOK, v)
	})
	s.handle("GET", "/console/dealer", false, func(w http.ResponseWriter, r *http.Request) {
		v, _, ok := s.consoleUser(w, r)
		if !ok {
			return
		}
		var rows []consoleDealer
		s.core.Read(func(st *core.State) {
			for _, m := range st.Trading.Markets() {
				u := unitsOf(st, &m.Listing)
				dv := dealerView(st, m)
				ref := u.price(int64(dv.Reference))
				if dv.Reference == 0 {
					ref = "none: the desk does not quote"
				}
				rows = append(rows, consoleDealer{DealerView: dv, Path: pathCode(dv.Market), Reference: ref, Mid: u.price(int64(dv.Mid)),
					Inventory: u.qty(int64(dv.Inventory)), Profit: u.money(int64(dv.Profit)), MaxLong: u.qty(int64(dv.MaxLong)), MaxShort: u.qty(int64(dv.MaxShort))})
			}
		})
		v.Title, v.Nav, v.Data = "Dealer desk", "dealer", map[string]any{"Markets": rows}
		s.render(w, "dealer", http.StatusOK, v)
	})
	s.handle("POST", "/console/markets/{code}/reference", false, func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.consolePost(w, r)
		if !ok {
			return
		}
		var v DealerView
		price, err := strconv.ParseInt(strings.TrimSpace(r.PostForm.Get("price")), 10, 64)
		if err != nil {
			err = fmt.Errorf("%w: the reference price is a whole number of quote base units", people.ErrInvalid)
		} else {
			v, err = s.SetReference(r.Context(), p.Session.Operator, r.PathValue("code"), price)
		}
		back(w, r, "/console/markets", publicErrOrNil(err), "dealer reference price of "+v.Market+" set")
	})
	s.handle("POST", "/console/markets/{code}/index", false, func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.consolePost(w, r)
		if !ok {
			return
		}
		var v MarketView
		price, err := strconv.ParseInt(strings.TrimSpace(r.PostForm.Get("price")), 10, 64)
		if err != nil {
			err = fmt.Errorf("%w: the index price is a whole number of quote base units", people.ErrInvalid)
		} else {
			v, err = s.SetIndex(r.Context(), p.Session.Operator, r.PathValue("code"), price)
		}
		back(w, r, "/console/markets", publicErrOrNil(err), "index price of "+v.Code+" set")
	})
	s.handle("POST", "/console/markets/{code}/cancel-all", false, func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.consolePost(w, r)
		if !ok {
			return
		}
		v, err := s.CancelAll(r.Context(), p.Session.Operator, r.PathValue("code"), r.PostForm.Get("reason"))
		back(w, r, "/console/markets", publicErrOrNil(err), "every resting order of "+v.Code+" cancelled, holds released")
	})
}
