package core

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf8"

	"kinko/internal/controls"
	"kinko/internal/ledger"
	"kinko/internal/market"
	"kinko/internal/people"
	"kinko/internal/trading"
)

// Command kinds of trading.
const (
	KindListMarket         Kind = 60
	KindPlaceOrder         Kind = 61
	KindCancelOrder        Kind = 62
	KindReplaceOrder       Kind = 63
	KindCancelMarketOrders Kind = 64
	KindSetReferencePrice  Kind = 65
	KindDealerQuote        Kind = 66
	KindDealerExecute      Kind = 67
	KindSetIndexPrice      Kind = 68
)

func init() {
	kindNames[KindListMarket] = "list_market"
	kindNames[KindPlaceOrder] = "place_order"
	kindNames[KindCancelOrder] = "cancel_order"
	kindNames[KindReplaceOrder] = "replace_order"
	kindNames[KindCancelMarketOrders] = "cancel_market_orders"
	kindNames[KindSetReferencePrice] = "set_reference_price"
	kindNames[KindDealerQuote] = "dealer_quote"
	kindNames[KindDealerExecute] = "dealer_execute"
	kindNames[KindSetIndexPrice] = "set_index_price"
}

// Request kinds of trading, under the two-person rule: an operator's
// price moved further than one operator may move it alone.
const (
	// KindDealerReference sets a market's dealer reference price.
	KindDealerReference people.RequestKind = "dealer_reference"
	// KindIndexPrice sets (or, with price 0, clears) a market's index
	// price.
	KindIndexPrice people.RequestKind = "index_price"
)

// MarketPricePayload is the payload of dealer_reference and index_price
// requests.
type MarketPricePayload struct {
	Market uint16 `json:"market"`
	Price  int64  `json:"price"`
}

// BreakerActor is the actor of the halts the circuit breaker journals.
const BreakerActor = "circuit-breaker"

// CodeTrade and CodeTradeFee mark trading's ledger transfers; CodeHold and
// CodeRelease an order's hold and its release; CodeDealer the dealer desk.
const (
	CodeHold     = 50
	CodeRelease  = 51
	CodeTrade    = 52
	CodeTradeFee = 53
	CodeDealer   = 54
)

// ListMarket lists a market (admin, from configuration). The house's
// accounts of both assets are opened if missing.
type ListMarket struct {
	Listing trading.Listing
	Actor   string
}

// PlaceOrder is a customer's order. ClientID, if set, may be used once per
// customer: a replay is refused with nothing held. The Outcome's Value is a
// PlaceResult.
type PlaceOrder struct {
	Customer ledger.OwnerID
	Market   uint16
	Side     market.Side
	Type     market.Kind // limit, market, IOC, FOK, post-only
	Price    int64
	Qty      int64
	ClientID string
}

// CancelOrder cancels a customer's resting order and releases its hold.
// Allowed during a trade halt: it only takes risk away.
type CancelOrder struct {
	Customer ledger.OwnerID
	Order    market.OrderID
}

// ReplaceOrder changes a resting order's price and open quantity; the hold
// follows. The Outcome's Value is a PlaceResult.
type ReplaceOrder struct {
	Customer ledger.OwnerID
	Order    market.OrderID
	Price    int64
	Qty      int64
}

// CancelMarketOrders cancels every resting order of a market: what an
// operator does to a halted market whose resting orders should not wait.
type CancelMarketOrders struct {
	Market uint16
	Actor  string
	Reason string
}

// SetReferencePrice sets the dealer desk's reference price of a market; 0
// stops the desk quoting. Actor is an operator with the operator or admin
// role, who may move it alone within the listing's ReferenceChangeBps of
// the current reference (of the market's band reference when the desk has
// none) and ReferenceDayBps of the price a day before; further takes a
// dealer_reference request approved by a second operator.
type SetReferencePrice struct {
	Market uint16
	Price  int64
	Actor  string
}

// SetIndexPrice sets a market's index price, the reference of its price
// band while set; 0 clears it, and the band follows the last trade again.
// Actor is an operator with the operator or admin role, who may move the
// band's reference alone within the listing's bounds, as for the dealer
// reference; further (and the first reference of a market that never
// traded) takes an index_price request approved by a second operator.
// Resting orders the new band leaves where a fill would be outside it are
// cancelled and their holds released.
type SetIndexPrice struct {
	Market uint16
	Price  int64
	Actor  string
}

// DealerQuote asks the dealer desk for a firm price. The Outcome's Value is
// the trading.Quote.
type DealerQuote struct {
	Customer ledger.OwnerID
	Market   uint16
	Side     market.Side
	Qty      int64
}

// DealerExecute executes a quote against the house's inventory. The
// Outcome's Value is the trading.Trade.
type DealerExecute struct {
	Customer ledger.OwnerID
	Quote    uint64
}

// resultChunk is how many results one allocation makes room for: the hot
// path hands each command's result to its submitter without allocating
// for it each time. Results are never reused.
const resultChunk = 1024

func (s *State) newResult() *PlaceResult {
	if len(s.placeResults) == 0 {
		s.placeResults = make([]PlaceResult, resultChunk)
	}
	r := &s.placeResults[0]
	s.placeResults = s.placeResults[1:]
	return r
}

// tradeChunk is how many trade records one allocation makes room for, in
// results' trade lists; a command of more fills than a quarter of it gets
// its own.
const tradeChunk = 512

// newTrades returns an empty trade list with room for n (> 0) trades, for
// a result: cut from a chunk, so a fill does not allocate each time. Lists
// are never reused.
func (s *State) newTrades(n int) []trading.Trade {
	if n > tradeChunk/4 {
		return make([]trading.Trade, 0, n)
	}
	if len(s.tradeSlab) < n {
		s.tradeSlab = make([]trading.Trade, tradeChunk)
	}
	t := s.tradeSlab[:0:n]
	s.tradeSlab = s.tradeSlab[n:]
	return t
}

// PlaceResult is what a placement or replacement did.
type PlaceResult struct {
	Order     market.OrderID  `json:"order"`
	Filled    int64           `json:"filled"`
	Resting   int64           `json:"resting"`
	Cancelled int64           `json:"cancelled"`
	Trades    []trading.Trade `json:"trades"`
}

func (ListMarket) Kind() Kind         { return KindListMarket }
func (PlaceOrder) Kind() Kind         { return KindPlaceOrder }
func (CancelOrder) Kind() Kind        { return KindCancelOrder }
func (ReplaceOrder) Kind() Kind       { return KindReplaceOrder }
func (CancelMarketOrders) Kind() Kind { return KindCancelMarketOrders }
func (SetReferencePrice) Kind() Kind  { return KindSetReferencePrice }
func (DealerQuote) Kind() Kind        { return KindDealerQuote }
func (DealerExecute) Kind() Kind      { return KindDealerExecute }
func (SetIndexPrice) Kind() Kind      { return KindSetIndexPrice }

func (c ListMarket) AppendPayload(b []byte) []byte         { return appendJSON(b, c) }
func (c CancelMarketOrders) AppendPayload(b []byte) []byte { return appendJSON(b, c) }
func (c SetReferencePrice) AppendPayload(b []byte) []byte  { return appendJSON(b, c) }
func (c DealerQuote) AppendPayload(b []byte) []byte        { return appendJSON(b, c) }
func (c DealerExecute) AppendPayload(b []byte) []byte      { return appendJSON(b, c) }
func (c SetIndexPrice) AppendPayload(b []byte) []byte      { return appendJSON(b, c) }

// Orders are the hot path: a fixed binary layout, big-endian.
//
//	place:   customer 8 | market 2 | side 1 | kind 1 | price 8 | qty 8 | len 1 | client id
//	cancel:  customer 8 | order 8
//	replace: customer 8 | order 8 | price 8 | qty 8
const (
	placeFixed     = 8 + 2 + 1 + 1 + 8 + 8 + 1
	cancelSize     = 16
	replaceSize    = 32
	maxClientIDLen = 64
)

// AppendPayload appends the order's binary encoding.
func (c PlaceOrder) AppendPayload(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(c.Customer))
	b = binary.BigEndian.AppendUint16(b, c.Market)
	b = append(b, byte(c.Side), byte(c.Type))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Price))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Qty))
	b = append(b, byte(len(c.ClientID)))
	return append(b, c.ClientID...)
}

// AppendPayload appends the cancel's binary encoding.
func (c CancelOrder) AppendPayload(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(c.Customer))
	return binary.BigEndian.AppendUint64(b, uint64(c.Order))
}

// AppendPayload appends the replace's binary encoding.
func (c ReplaceOrder) AppendPayload(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(c.Customer))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Order))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Price))
	return binary.BigEndian.AppendUint64(b, uint64(c.Qty))
}

func decodePlace(p []byte) (PlaceOrder, error) {
	if len(p) < placeFixed {
		return PlaceOrder{}, invalid("place_order: %d bytes", len(p))
	}
	n := int(p[placeFixed-1])
	if n > maxClientIDLen || len(p) != placeFixed+n {
		return PlaceOrder{}, invalid("place_order: client id of %d bytes in a payload of %d", n, len(p))
	}
	id := string(p[placeFixed:])
	if !utf8.ValidString(id) {
		return PlaceOrder{}, invalid("place_order: client id is not UTF-8")
	}
	return PlaceOrder{Customer: ledger.OwnerID(binary.BigEndian.Uint64(p)), Market: binary.BigEndian.Uint16(p[8:]), Side: market.Side(p[10]), Type: market.Kind(p[11]),
		Price: int64(binary.BigEndian.Uint64(p[12:])), Qty: int64(binary.BigEndian.Uint64(p[20:])), ClientID: id}, nil
}

func decodeCancel(p []byte) (Command, error) {
	if len(p) != cancelSize {
		return nil, invalid("cancel_order: %d bytes", len(p))
	}
	return CancelOrder{Customer: ledger.OwnerID(binary.BigEndian.Uint64(p)), Order: market.OrderID(binary.BigEndian.Uint64(p[8:]))}, nil
}

func decodeReplace(p []byte) (Command, error) {
	if len(p) != replaceSize {
		return nil, invalid("replace_order: %d bytes", len(p))
	}
	return ReplaceOrder{Customer: ledger.OwnerID(binary.BigEndian.Uint64(p)), Order: market.OrderID(binary.BigEndian.Uint64(p[8:])),
		Price: int64(binary.BigEndian.Uint64(p[16:])), Qty: int64(binary.BigEndian.Uint64(p[24:]))}, nil
}

func decodeTrading(kind Kind, p []byte) (Command, bool, error) {
	var c Command
	var err error
	switch kind {
	case KindPlaceOrder:
		c, err = decodePlace(p)
	case KindCancelOrder:
		c, err = decodeCancel(p)
	case KindReplaceOrder:
		c, err = decodeReplace(p)
	case KindListMarket:
		c, err = decodeJSON[ListMarket](p)
	case KindCancelMarketOrders:
		c, err = decodeJSON[CancelMarketOrders](p)
	case KindSetReferencePrice:
		c, err = decodeJSON[SetReferencePrice](p)
	case KindDealerQuote:
		c, err = decodeJSON[DealerQuote](p)
	case KindDealerExecute:
		c, err = decodeJSON[DealerExecute](p)
	case KindSetIndexPrice:
		c, err = decodeJSON[SetIndexPrice](p)
	default:
		return nil, false, nil
	}
	return c, true, err
}

// tradingID numbers trading's ledger transfers: its own namespace.
func (s *State) tradingID() ledger.ID {
	s.Trading.NextTransfer++
	return ledger.ID{Hi: 0xC1 << 56, Lo: s.Trading.NextTransfer}
}

func avail(o ledger.OwnerID, a ledger.AssetID) ledger.AccountKey {
	return ledger.AccountKey{Owner: o, Asset: a, Kind: ledger.KindAvailable}
}

func held(o ledger.OwnerID, a ledger.AssetID) ledger.AccountKey {
	return ledger.AccountKey{Owner: o, Asset: a, Kind: ledger.KindHeld}
}

func house(a ledger.AssetID) ledger.AccountKey {
	return ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: a, Kind: ledger.KindHouse}
}

// spendable is what an account can still give (0 if it does not exist).
func (s *State) spendable(k ledger.AccountKey) int64 {
	av, ok := s.Ledger.AvailableOf(k)
	if !ok {
		return 0
	}
	v, ok := av.Uint64()
	if !ok || v > 1<<62 {
		return 1 << 62
	}
	return int64(v)
}

// outTransfer adds a transfer to those the command makes, written in
// place, with the ledger's hints of its accounts (h, zero if not known).
func (s *State) outTransfer(h ledger.TransferHint, debit, credit ledger.AccountKey, amt ledger.Amount, code uint16, ref uint64) {
	if len(s.out) == cap(s.out) {
		s.out = append(s.out, ledger.Transfer{})
	} else {
		s.out = s.out[:len(s.out)+1]
	}
	t := &s.out[len(s.out)-1]
	t.ID, t.Debit, t.Credit, t.Amount, t.PendingID, t.Ref, t.Code, t.Flags = s.tradingID(), debit, credit, amt, ledger.ID{}, ref, code, 0
	s.outHints = append(s.outHints, h)
}

func (s *State) move(debit, credit ledger.AccountKey, amt int64, code uint16, ref uint64) {
	s.moveH(ledger.TransferHint{}, debit, credit, amt, code, ref)
}

// moveH is move with the hints of the accounts.
func (s *State) moveH(h ledger.TransferHint, debit, credit ledger.AccountKey, amt int64, code uint16, ref uint64) {
	if amt > 0 {
		s.outTransfer(h, debit, credit, ledger.AmountOf(uint64(amt)), code, ref)
	}
}

// moveIn moves amt of asset a in the market's units: quantity units for
// the base asset (times its QtyUnit in the ledger), base units for the
// quote.
func (s *State) moveIn(l *trading.Listing, a ledger.AssetID, debit, credit ledger.AccountKey, amt int64, code uint16, ref uint64) {
	s.moveInH(ledger.TransferHint{}, l, a, debit, credit, amt, code, ref)
}

// moveInH is moveIn with the hints of the accounts.
func (s *State) moveInH(h ledger.TransferHint, l *trading.Listing, a ledger.AssetID, debit, credit ledger.AccountKey, amt int64, code uint16, ref uint64) {
	if a != l.Base || l.Unit() == 1 {
		s.moveH(h, debit, credit, amt, code, ref)
		return
	}
	if amt > 0 {
		hi, lo := bits.Mul64(uint64(amt), uint64(l.Unit()))
		s.outTransfer(h, debit, credit, ledger.Amount{Hi: hi, Lo: lo}, code, ref)
	}
}

// heldAsset is the asset an order of side holds in market l.
func heldAsset(l *trading.Listing, side market.Side) ledger.AssetID {
	if side == market.Buy {
		return l.Quote
	}
	return l.Base
}

// orderHints returns the ledger's hints of o's available and held
// accounts of a, the asset it holds, looking them up the first time (a
// restored order has none).
func (s *State) orderHints(o *trading.Order, a ledger.AssetID) (avail, held ledger.AccountHint) {
	if o.AvailHint == 0 || o.HeldHint == 0 {
		o.AvailHint = s.Ledger.AccountHint(ledger.AccountKey{Owner: o.Customer, Asset: a, Kind: ledger.KindAvailable})
		o.HeldHint = s.Ledger.AccountHint(ledger.AccountKey{Owner: o.Customer, Asset: a, Kind: ledger.KindHeld})
	}
	return o.AvailHint, o.HeldHint
}

// spendableIn is spendable in the market's units of asset a.
func (s *State) spendableIn(l *trading.Listing, a ledger.AssetID, k ledger.AccountKey) int64 {
	return s.spendableAt(l, a, k, 0)
}

// spendableAt is spendableIn given the account's hint.
func (s *State) spendableAt(l *trading.Listing, a ledger.AssetID, k ledger.AccountKey, h ledger.AccountHint) int64 {
	if a != l.Base || l.Unit() == 1 {
		av, ok := s.Ledger.AvailableAt(k, h)
		if !ok {
			return 0
		}
		v, ok := av.Uint64()
		if !ok || v > 1<<62 {
			return 1 << 62
		}
		return int64(v)
	}
	v, ok := s.Ledger.AvailableAt(k, h)
	if !ok {
		return 0
	}
	u := uint64(l.Unit())
	if v.Hi >= u {
		return 1 << 62
	}
	q, _ := bits.Div64(v.Hi, v.Lo, u)
	return int64(min(q, 1<<62))
}

// commit applies the transfers trading prepared. They were checked before
// the book changed, so a refusal here is a defect: the apply stops rather
// than leave the book and the ledger apart.
func (s *State) commit(t int64) {
	if len(s.out) == 0 {
		s.outHints = s.outHints[:0]
		return
	}
	s.results = s.Ledger.CreateTransfersHinted(s.out, s.outHints, t, s.results[:0])
	for _, r := range s.results {
		if r.Code != ledger.OK {
			panic(fmt.Sprintf("core: trading transfer %+v refused: %v", s.out[r.Index], r.Code))
		}
	}
	s.results = s.results[:0]
	s.out = s.out[:0]
	s.outHints = s.outHints[:0]
}

// holdFor is what an order of qty at price holds: the notional and the
// larger fee for a buy, the quantity for a sell.
func holdFor(l *trading.Listing, side market.Side, price, qty int64) int64 {
	if side == market.Sell {
		return qty
	}
	n := l.Notional(price, qty)
	return n + trading.Fee(n, max(l.MakerFeeBps, l.TakerFeeBps))
}

// sizeOrder checks a sane order of side and kind at price for qty against
// the band and the largest order, and returns the price it enters at (a
// market order's protection price clamped to the band). An order inside
// the band costs two comparisons here, the largest order a 128-bit
// product: this is every order's path.
func sizeOrder(m *trading.Market, side market.Side, kind market.Kind, price, qty int64) (int64, error) {
	if lo, hi := m.Book.Band(); kind == market.Market || uint64(price-lo) > uint64(hi-lo) {
		p, err := m.Book.CheckBand(side, kind, price)
		if err != nil {
			return 0, bandError(m, err, price)
		}
		price = p
	}
	if m.AboveLargest(price, qty) {
		l := &m.Listing
		if qty > l.MaxQty {
			return 0, &trading.LimitError{Err: trading.ErrOrderTooLarge, Field: "qty", Limit: strconv.FormatInt(l.MaxQty, 10), Value: strconv.FormatInt(qty, 10),
				Detail: fmt.Sprintf("quantity %d is above the largest order's %d", qty, l.MaxQty)}
		}
		n := l.Notional(price, qty)
		return 0, &trading.LimitError{Err: trading.ErrOrderTooLarge, Field: "qty", Limit: strconv.FormatInt(l.MaxOrderNotional, 10), Value: strconv.FormatInt(n, 10),
			Detail: fmt.Sprintf("%d at %d is %d in notional, above the largest order's %d", qty, price, n, l.MaxOrderNotional)}
	}
	return price, nil
}

// bandError names the band in a refusal for the band (the bound is the
// band, low-high); other errors pass.
func bandError(m *trading.Market, err error, price int64) error {
	if errors.Is(err, market.ErrOutsideBand) || errors.Is(err, market.ErrNoReference) {
		lo, hi := m.Book.Band()
		limit := ""
		if hi != 0 {
			limit = strconv.FormatInt(lo, 10) + "-" + strconv.FormatInt(hi, 10)
		}
		return &trading.LimitError{Err: err, Field: "price", Limit: limit, Value: strconv.FormatInt(price, 10), Detail: fmt.Sprintf("price %d: %s", price, m.BandText())}
	}
	return err
}

// bookReference is the price the breaker measures a command's fills from:
// the last trade, or the index before the first.
func bookReference(m *trading.Market) int64 {
	last, index := m.Book.Reference()
	if last == 0 {
		return index
	}
	return last
}

// breaker feeds the circuit breaker a command's fills, which moved the
// last trade from before, and halts the market's base asset's trading if
// it trips: a journaled halt (actor BreakerActor, the move as its
// reason), part of the command's effect; the order's own fills stand.
func (s *State) breaker(m *trading.Market, before, t int64) {
	last, _ := m.Book.Reference()
	if ref, trip := m.Breaker(t, before, last); trip {
		s.Controls.HaltSwitch(controls.Switch{Asset: m.Listing.Base, Service: controls.Trade}, BreakerActor, m.BreakerText(ref, last), t, s.seq)
	}
}

// bandReference is the reference of a market's band: its index, or else
// its last trade (0: none).
func bandReference(m *trading.Market) int64 {
	last, index := m.Book.Reference()
	if index != 0 {
		return index
	}
	return last
}

// mayPrice checks that actor may set a market's prices: an operator with
// the operator or admin role.
func (s *State) mayPrice(actor string) error {
	o, ok := s.People.Operator(actor)
	if !ok {
		return people.ErrOperatorUnknown
	}
	if !o.HasRole(people.RoleOperator) && !o.HasRole(people.RoleAdmin) {
		return fmt.Errorf("%w: market prices are set by the operator or admin role", people.ErrNotAuthorized)
	}
	return nil
}

// setReference sets the dealer desk's reference, alone within the bounds
// or approved by two.
func (s *State) setReference(m *trading.Market, price, t int64, approved bool) error {
	l := &m.Listing
	if price < 0 || price > l.MaxPrice {
		return invalid("dealer reference %d outside [0, %d]", price, l.MaxPrice)
	}
	switch {
	case price == 0:
		m.Reference = 0 // the desk stops quoting: it takes risk away
	case approved:
		m.Reference, m.RefHistory = price, trading.RecordApproved(price, t)
	default:
		if err := trading.CheckMove("dealer reference", m.Reference, bandReference(m), price, m.RefHistory, t, l.ReferenceChangeBps, l.ReferenceDayBps); err != nil {
			return fmt.Errorf("%w; open a %s request for a second operator", err, KindDealerReference)
		}
		m.Reference, m.RefHistory = price, trading.RecordMove(m.RefHistory, price, t)
	}
	return nil
}

// setIndex sets a market's index, alone within the bounds or approved by
// two, and releases the orders the new band cancels. The history keeps
// the band's reference as it is after each change (the last trade when
// the index is cleared), so a clear never hides the day's anchor.
func (s *State) setIndex(m *trading.Market, price, t int64, approved bool) error {
	l := &m.Listing
	if price < 0 || price > l.MaxPrice || price%l.TickSize != 0 {
		return invalid("index price %d: must be 0 or on the tick %d up to %d", price, l.TickSize, l.MaxPrice)
	}
	last, index := m.Book.Reference()
	target := price
	if target == 0 {
		target = last
	}
	if !approved && target != 0 {
		if err := trading.CheckMove("index price", index, last, target, m.IndexHistory, t, l.ReferenceChangeBps, l.ReferenceDayBps); err != nil {
			return fmt.Errorf("%w; open an %s request for a second operator", err, KindIndexPrice)
		}
	}
	swept, err := m.Book.SetIndex(price)
	if err != nil {
		panic(fmt.Sprintf("core: index %d passed the checks but the book refused it: %v", price, err))
	}
	if target != 0 {
		if approved {
			m.IndexHistory = trading.RecordApproved(target, t)
		} else {
			m.IndexHistory = trading.RecordMove(m.IndexHistory, target, t)
		}
	}
	s.expire(m, swept)
	s.commit(t)
	return nil
}

// checkPriceRequest checks a dealer_reference or index_price request: a
// requester who may set prices, an approver or admin to approve, a known
// market and a price in its range.
func (s *State) checkPriceRequest(r people.Request) error {
	var p MarketPricePayload
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		return fmt.Errorf("%w: payload: %v", people.ErrInvalid, err)
	}
	if err := s.mayPrice(r.Requester); err != nil {
		return err
	}
	if r.RequiredRole != people.RoleApprover && r.RequiredRole != people.RoleAdmin {
		return fmt.Errorf("%w: market prices are approved by an approver", people.ErrInvalid)
	}
	m, ok := s.Trading.Market(p.Market)
	if !ok {
		return trading.ErrUnknownMarket
	}
	l := &m.Listing
	if p.Price < 0 || p.Price > l.MaxPrice || (r.Kind == KindIndexPrice && p.Price%l.TickSize != 0) {
		return fmt.Errorf("%w: price %d for %s", people.ErrInvalid, p.Price, l.Code)
	}
	return nil
}

// applyPriceRequest sets the price of an approved request.
func (s *State) applyPriceRequest(r people.Request, t int64) error {
	var p MarketPricePayload
	json.Unmarshal(r.Payload, &p)
	m, ok := s.Trading.Market(p.Market)
	if !ok {
		return trading.ErrUnknownMarket
	}
	if r.Kind == KindIndexPrice {
		return s.setIndex(m, p.Price, t, true)
	}
	return s.setReference(m, p.Price, t, true)
}

// orderSane tells whether price and qty are in the listing's range, so the
// hold can be computed; the book gives the exact refusal otherwise.
func orderSane(l *trading.Listing, price, qty int64) bool {
	return price > 0 && price <= l.MaxPrice && qty > 0 && qty <= l.MaxQty
}

func (s *State) tradeAllowed(m *trading.Market) error {
	if !s.Controls.Any() {
		return nil // the common case: nothing halted, no lookups
	}
	return s.tradeHalted(m)
}

// tradeHalted is tradeAllowed's look-ups, apart so that the common case
// is inlined where it is asked.
func (s *State) tradeHalted(m *trading.Market) error {
	if err := s.Controls.Allowed(m.Listing.Base, controls.Trade); err != nil {
		return err
	}
	return s.Controls.Allowed(m.Listing.Quote, controls.Trade)
}

func (s *State) mayTrade(c ledger.OwnerID, m *trading.Market) error {
	if !s.People.CanTrade(c) {
		return trading.ErrNotVerified
	}
	if !s.People.AssetEnabled(m.Listing.Base) || !s.People.AssetEnabled(m.Listing.Quote) {
		return fmt.Errorf("%w: %s", ErrAssetNotListed, m.Listing.Code)
	}
	return nil
}

// haltedNow names the halted switches of the market's assets, for the
// trade record ("" when nothing is halted, the common case).
func (s *State) haltedNow(m *trading.Market) string {
	if !s.Controls.Any() {
		return ""
	}
	var names []string
	for _, a := range []ledger.AssetID{m.Listing.Base, m.Listing.Quote} {
		for _, svc := range controls.AssetServices {
			if s.Controls.Allowed(a, svc) != nil {
				code := fmt.Sprint(a)
				if as, ok := s.Ledger.Asset(a); ok {
					code = as.Code
				}
				names = append(names, code+":"+string(svc))
			}
		}
	}
	return strings.Join(names, ",")
}

// settle turns the fills of taker into transfers and trade records, and
// closes the makers they finish.
func (s *State) settle(m *trading.Market, taker *trading.Order, fills []market.Fill, t int64, res *PlaceResult) {
	l := &m.Listing
	halted := ""
	if len(fills) > 0 {
		halted = s.haltedNow(m)
		if res != nil && res.Trades == nil {
			res.Trades = s.newTrades(len(fills))
		}
	}
	for _, f := range fills {
		maker := s.Trading.MustOrder(f.Maker)
		buyer, seller := taker, maker
		if f.TakerSide == market.Sell {
			buyer, seller = maker, taker
		}
		n := l.Notional(f.Price, f.Qty)
		makerFee, takerFee := trading.Fee(n, l.MakerFeeBps), trading.Fee(n, l.TakerFeeBps)
		bf, sf := makerFee, takerFee
		if buyer == taker {
			bf, sf = takerFee, makerFee
		}
		_, bh := s.orderHints(buyer, l.Quote)
		_, sh := s.orderHints(seller, l.Base)
		s.moveH(ledger.TransferHint{Debit: bh}, held(buyer.Customer, l.Quote), avail(seller.Customer, l.Quote), n-sf, CodeTrade, uint64(buyer.ID))
		s.moveH(ledger.TransferHint{Debit: bh}, held(buyer.Customer, l.Quote), house(l.Quote), bf+sf, CodeTradeFee, uint64(buyer.ID))
		s.moveInH(ledger.TransferHint{Debit: sh}, l, l.Base, held(seller.Customer, l.Base), avail(buyer.Customer, l.Base), f.Qty, CodeTrade, uint64(seller.ID))
		buyer.Held -= n + bf
		seller.Held -= f.Qty
		buyer.Filled += f.Qty
		seller.Filled += f.Qty
		tr := m.Record(trading.Trade{Entry: s.seq, Time: t, Market: l.ID, Price: f.Price, Qty: f.Qty, TakerSide: f.TakerSide,
			Maker: f.Maker, Taker: f.Taker, MakerOwn: maker.Customer, TakerOwn: taker.Customer, MakerFee: makerFee, TakerFee: takerFee, Halted: halted})
		if res != nil {
			res.Trades = append(res.Trades, tr)
		}
		if f.MakerDone {
			s.release(m, maker)
		}
	}
}

// release returns what a finished order still holds and forgets it.
func (s *State) release(m *trading.Market, o *trading.Order) {
	s.releaseHold(m, o)
	s.Trading.Close(o.ID)
}

// releaseHold returns what an order still holds.
func (s *State) releaseHold(m *trading.Market, o *trading.Order) {
	a := heldAsset(&m.Listing, o.Side)
	if o.Held > 0 {
		ah, hh := s.orderHints(o, a)
		s.moveInH(ledger.TransferHint{Debit: hh, Credit: ah}, &m.Listing, a, held(o.Customer, a), avail(o.Customer, a), o.Held, CodeRelease, uint64(o.ID))
	}
	o.Held = 0
}

func (s *State) applyTrading(cmd Command, t int64) (bool, any, error) {
	switch c := cmd.(type) {
	case PlaceOrder:
		v, err := s.placeOrder(c, t)
		return true, v, err
	case CancelOrder:
		return true, nil, s.cancelOrder(c)
	case ReplaceOrder:
		v, err := s.replaceOrder(c, t)
		return true, v, err
	case ListMarket:
		return true, nil, s.listMarket(c)
	case CancelMarketOrders:
		return true, nil, s.cancelMarketOrders(c)
	case SetReferencePrice:
		m, ok := s.Trading.Market(c.Market)
		if !ok {
			return true, nil, trading.ErrUnknownMarket
		}
		if err := s.mayPrice(c.Actor); err != nil {
			return true, nil, err
		}
		return true, nil, s.setReference(m, c.Price, t, false)
	case SetIndexPrice:
		m, ok := s.Trading.Market(c.Market)
		if !ok {
			return true, nil, trading.ErrUnknownMarket
		}
		if err := s.mayPrice(c.Actor); err != nil {
			return true, nil, err
		}
		return true, nil, s.setIndex(m, c.Price, t, false)
	case DealerQuote:
		v, err := s.dealerQuote(c, t)
		return true, v, err
	case DealerExecute:
		v, err := s.dealerExecute(c, t)
		return true, v, err
	}
	return false, nil, nil
}

func (s *State) listMarket(c ListMarket) error {
	base, ok1 := s.Ledger.Asset(c.Listing.Base)
	quote, ok2 := s.Ledger.Asset(c.Listing.Quote)
	if !ok1 || !ok2 {
		return fmt.Errorf("%w: unknown asset", trading.ErrListing)
	}
	l := c.Listing.WithDefaults(quote.Decimals, quote.Class == ledger.ClassFiat)
	// Scale × QtyUnit must be the base asset's 10^decimals.
	whole := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(base.Decimals)), nil)
	if new(big.Int).Mul(big.NewInt(l.Scale), big.NewInt(l.Unit())).Cmp(whole) != 0 {
		return fmt.Errorf("%w: scale %d × quantity unit %d is not 10^%d", trading.ErrListing, l.Scale, l.Unit(), base.Decimals)
	}
	if strings.TrimSpace(c.Actor) == "" {
		return fmt.Errorf("%w: actor", trading.ErrListing)
	}
	if err := s.Trading.List(l, trading.ListOrdersHint); err != nil {
		return err
	}
	var missing []ledger.AccountKey
	for _, k := range []ledger.AccountKey{house(l.Base), house(l.Quote)} {
		if _, ok := s.Ledger.Account(k); !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		s.results = s.Ledger.CreateAccounts(missing, s.results[:0])
		s.results = s.results[:0]
	}
	return nil
}

func (s *State) placeOrder(c PlaceOrder, t int64) (*PlaceResult, error) {
	m, ok := s.Trading.Market(c.Market)
	if !ok {
		return nil, trading.ErrUnknownMarket
	}
	if err := s.tradeAllowed(m); err != nil {
		return nil, err
	}
	if err := s.mayTrade(c.Customer, m); err != nil {
		return nil, err
	}
	if c.ClientID != "" && s.Trading.ClientUsed(c.Customer, c.ClientID) {
		return nil, fmt.Errorf("%w: %q", trading.ErrClientID, c.ClientID)
	}
	l := &m.Listing
	var hold int64
	var ah ledger.AccountHint
	price := c.Price
	if orderSane(l, c.Price, c.Qty) {
		p, err := sizeOrder(m, c.Side, c.Type, c.Price, c.Qty)
		if err != nil {
			return nil, err
		}
		price = p
		hold = holdFor(l, c.Side, price, c.Qty)
		a := heldAsset(l, c.Side)
		ah = s.Ledger.AccountHint(avail(c.Customer, a))
		if have := s.spendableAt(l, a, avail(c.Customer, a), ah); have < hold {
			return nil, fmt.Errorf("%w: %d needed, %d available", trading.ErrInsufficient, hold, have)
		}
	}
	id := market.OrderID(s.Trading.NextOrder + 1)
	before := bookReference(m)
	fills, br, err := m.Book.Place(market.Order{ID: id, Owner: market.Owner(c.Customer), Side: c.Side, Kind: c.Type, Price: price, Qty: c.Qty}, s.Trading.Fills[:0])
	s.Trading.Fills = fills[:0]
	if err != nil {
		return nil, bandError(m, err, c.Price)
	}
	s.Trading.NextOrder++
	// An order that rests gets its record; one that does not (filled,
	// or the rest of an IOC cancelled) is settled from scratch and never
	// opened: nothing looks it up by id.
	o := &s.taker
	if br.Resting > 0 {
		o = s.Trading.NewOrder()
	}
	*o = trading.Order{ID: id, Market: l.ID, Customer: c.Customer, ClientID: c.ClientID, Side: c.Side, Kind: c.Type, Price: price, Qty: c.Qty, Held: hold, Created: t}
	a := heldAsset(l, c.Side)
	if ah != 0 {
		o.AvailHint, o.HeldHint = ah, s.Ledger.AccountHint(held(c.Customer, a))
	}
	s.moveInH(ledger.TransferHint{Debit: o.AvailHint, Credit: o.HeldHint}, l, a, avail(c.Customer, a), held(c.Customer, a), hold, CodeHold, uint64(id))
	if br.Resting > 0 {
		s.Trading.Open(o) // the client id is used from now, whatever the order's fate
	} else {
		s.Trading.UseClientID(o)
	}
	res := s.newResult()
	*res = PlaceResult{Order: id, Filled: br.Filled, Resting: br.Resting, Cancelled: br.Cancelled}
	if len(fills) > 0 {
		s.settle(m, o, fills, t, res)
	}
	if len(br.Expired) > 0 {
		s.expire(m, br.Expired)
	}
	if br.Resting == 0 {
		s.releaseHold(m, o)
	}
	s.commit(t)
	if br.Filled > 0 {
		s.breaker(m, before, t)
	}
	return res, nil
}

// expire releases the holds of makers self-trade prevention cancelled.
func (s *State) expire(m *trading.Market, expired []market.Order) {
	for _, e := range expired {
		if o, ok := s.Trading.Order(e.ID); ok {
			s.release(m, o)
		}
	}
}

func (s *State) cancelOrder(c CancelOrder) error {
	o, ok := s.Trading.Order(c.Order)
	if !ok {
		return trading.ErrUnknownOrder
	}
	if o.Customer != c.Customer {
		return trading.ErrNotOwner
	}
	m, _ := s.Trading.Market(o.Market)
	if _, err := m.Book.Cancel(c.Order, market.Owner(c.Customer)); err != nil {
		return err
	}
	s.release(m, o)
	s.commit(s.time)
	return nil
}

func (s *State) replaceOrder(c ReplaceOrder, t int64) (*PlaceResult, error) {
	o, ok := s.Trading.Order(c.Order)
	if !ok {
		return nil, trading.ErrUnknownOrder
	}
	if o.Customer != c.Customer {
		return nil, trading.ErrNotOwner
	}
	m, _ := s.Trading.Market(o.Market)
	if err := s.tradeAllowed(m); err != nil {
		return nil, err
	}
	l := &m.Listing
	a := heldAsset(l, o.Side)
	ah, hh := s.orderHints(o, a)
	need := o.Held
	if orderSane(l, c.Price, c.Qty) {
		if c.Price != o.Price || c.Qty > o.Qty-o.Filled { // in place it only shrinks
			if _, err := sizeOrder(m, o.Side, o.Kind, c.Price, c.Qty); err != nil {
				return nil, err
			}
		}
		need = holdFor(l, o.Side, c.Price, c.Qty)
		if more := need - o.Held; more > 0 {
			if have := s.spendableAt(l, a, avail(c.Customer, a), ah); have < more {
				return nil, fmt.Errorf("%w: %d more needed, %d available", trading.ErrInsufficient, more, have)
			}
		}
	}
	before := bookReference(m)
	fills, br, err := m.Book.Replace(c.Order, market.Owner(c.Customer), c.Price, c.Qty, s.Trading.Fills[:0])
	s.Trading.Fills = fills[:0]
	if err != nil {
		return nil, bandError(m, err, c.Price)
	}
	if need > o.Held {
		s.moveInH(ledger.TransferHint{Debit: ah, Credit: hh}, l, a, avail(o.Customer, a), held(o.Customer, a), need-o.Held, CodeHold, uint64(o.ID))
	} else {
		s.moveInH(ledger.TransferHint{Debit: hh, Credit: ah}, l, a, held(o.Customer, a), avail(o.Customer, a), o.Held-need, CodeRelease, uint64(o.ID))
	}
	o.Held, o.Price, o.Qty = need, c.Price, o.Filled+c.Qty
	res := s.newResult()
	*res = PlaceResult{Order: o.ID, Filled: br.Filled, Resting: br.Resting, Cancelled: br.Cancelled}
	if len(fills) > 0 {
		s.settle(m, o, fills, t, res)
	}
	if len(br.Expired) > 0 {
		s.expire(m, br.Expired)
	}
	if br.Resting == 0 {
		s.release(m, o)
	}
	s.commit(t)
	if br.Filled > 0 {
		s.breaker(m, before, t)
	}
	return res, nil
}

func (s *State) cancelMarketOrders(c CancelMarketOrders) error {
	m, ok := s.Trading.Market(c.Market)
	if !ok {
		return trading.ErrUnknownMarket
	}
	if strings.TrimSpace(c.Actor) == "" || strings.TrimSpace(c.Reason) == "" {
		return fmt.Errorf("%w: actor and reason", trading.ErrListing)
	}
	var ids []market.OrderID
	for o := range m.Book.Orders() {
		ids = append(ids, o.ID)
	}
	for _, id := range ids {
		o, _ := s.Trading.Order(id)
		m.Book.Cancel(id, market.Owner(o.Customer))
		s.release(m, o)
	}
	s.commit(s.time)
	return nil
}

// mulDiv returns a × b / d, rounded down, for non-negative a, b and d > 0
// whose result fits.
func mulDiv(a, b, d int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	q, _ := bits.Div64(hi%uint64(d), lo, uint64(d))
	return int64(q)
}

// dealerPrice is the dealer desk's price for a customer's side around
// the reference ref with a spread of bps: for a buy, ref × (10,000 + bps)
// / 10,000 rounded up to the tick; for a sell, ref × (10,000 − bps) /
// 10,000 rounded down to it. 0 when a sell's price rounds to nothing.
func dealerPrice(ref int64, bps uint32, tick int64, side market.Side) int64 {
	if side == market.Buy {
		num := new(big.Int).Mul(big.NewInt(ref), big.NewInt(10_000+int64(bps)))
		den := big.NewInt(10_000 * tick)
		q, r := new(big.Int).QuoRem(num, den, new(big.Int))
		if r.Sign() > 0 {
			q.Add(q, big.NewInt(1))
		}
		if !q.IsInt64() || q.Int64() > math.MaxInt64/tick {
			return 0
		}
		return q.Int64() * tick
	}
	if bps >= 10_000 {
		return 0
	}
	return mulDiv(ref, 10_000-int64(bps), 10_000*tick) * tick
}

func (s *State) dealerQuote(c DealerQuote, t int64) (*trading.Quote, error) {
	m, ok := s.Trading.Market(c.Market)
	if !ok {
		return nil, trading.ErrUnknownMarket
	}
	l := &m.Listing
	if l.DealerSpreadBps == 0 || l.QuoteValidityNs == 0 {
		return nil, trading.ErrDealerDisabled
	}
	if err := s.Controls.Allowed(l.Base, controls.Dealer); err != nil {
		return nil, err
	}
	if err := s.mayTrade(c.Customer, m); err != nil {
		return nil, err
	}
	if (c.Side != market.Buy && c.Side != market.Sell) || c.Qty < l.MinQty || c.Qty > l.MaxQty || c.Qty%l.LotSize != 0 {
		return nil, fmt.Errorf("%w: side %d, qty %d (lot %d, min %d, max %d)", ErrCommandInvalid, c.Side, c.Qty, l.LotSize, l.MinQty, l.MaxQty)
	}
	// Only the reference operators set (alone within its bounds, or two of
	// them): never the book's mid, which a customer's orders can move.
	ref := m.Reference
	if ref == 0 {
		return nil, trading.ErrNoReference
	}
	// The customer buys above the reference and sells below it, on the
	// tick: a buy at reference × (1 + spread) rounded up, a sell at
	// reference × (1 − spread) rounded down, each computed exactly before
	// it is rounded once (88 at 200 bps: 89.76 → 90, 86.24 → 86), so the
	// spread the customer pays is never less than the listing's.
	price := dealerPrice(ref, l.DealerSpreadBps, l.TickSize, c.Side)
	if price <= 0 || price > l.MaxPrice {
		return nil, trading.ErrNoReference
	}
	if err := s.dealerExposure(m, c.Side, c.Qty); err != nil {
		return nil, err
	}
	s.Trading.DropQuotesBefore(t)
	s.Trading.NextQuote++
	q := &trading.Quote{ID: s.Trading.NextQuote, Market: l.ID, Customer: c.Customer, Side: c.Side, Qty: c.Qty, Price: price, Mid: ref, Expires: t + l.QuoteValidityNs}
	s.Trading.AddQuote(q)
	return q, nil
}

// dealerExposure checks the house's position after a customer trade of
// side and qty: a customer buy makes the house shorter.
func (s *State) dealerExposure(m *trading.Market, side market.Side, qty int64) error {
	inv := m.Inventory + qty
	if side == market.Buy {
		inv = m.Inventory - qty
	}
	if inv > m.Listing.DealerMaxLong || -inv > m.Listing.DealerMaxShort {
		limit := m.Listing.DealerMaxLong
		if inv < 0 {
			limit = -m.Listing.DealerMaxShort
		}
		return &trading.LimitError{Err: trading.ErrExposure, Field: "qty", Limit: strconv.FormatInt(limit, 10), Value: strconv.FormatInt(inv, 10),
			Detail: fmt.Sprintf("the house's position would be %d (long limit %d, short limit %d)", inv, m.Listing.DealerMaxLong, m.Listing.DealerMaxShort)}
	}
	return nil
}

func (s *State) dealerExecute(c DealerExecute, t int64) (*trading.Trade, error) {
	q, ok := s.Trading.Quote(c.Quote)
	if !ok {
		return nil, trading.ErrQuoteUnknown
	}
	if q.Customer != c.Customer {
		return nil, trading.ErrNotOwner
	}
	if q.Used {
		return nil, trading.ErrQuoteUsed
	}
	if t > q.Expires {
		return nil, trading.ErrQuoteExpired
	}
	m, _ := s.Trading.Market(q.Market)
	l := &m.Listing
	if err := s.Controls.Allowed(l.Base, controls.Dealer); err != nil {
		return nil, err
	}
	if q.Mid != m.Reference {
		return nil, fmt.Errorf("%w: quoted against %d, the reference is now %d", trading.ErrQuoteStale, q.Mid, m.Reference)
	}
	if err := s.mayTrade(c.Customer, m); err != nil {
		return nil, err
	}
	if err := s.dealerExposure(m, q.Side, q.Qty); err != nil {
		return nil, err
	}
	n := l.Notional(q.Price, q.Qty)
	if q.Side == market.Buy {
		if have := s.spendable(avail(c.Customer, l.Quote)); have < n {
			return nil, fmt.Errorf("%w: %d needed, %d available", trading.ErrInsufficient, n, have)
		}
		if have := s.spendableIn(l, l.Base, house(l.Base)); have < q.Qty {
			return nil, fmt.Errorf("%w: house inventory %d, quote %d", trading.ErrExposure, have, q.Qty)
		}
		s.move(avail(c.Customer, l.Quote), house(l.Quote), n, CodeDealer, q.ID)
		s.moveIn(l, l.Base, house(l.Base), avail(c.Customer, l.Base), q.Qty, CodeDealer, q.ID)
		m.Inventory -= q.Qty
		m.Profit += n - mulDiv(q.Mid, q.Qty, l.Scale)
	} else {
		if have := s.spendableIn(l, l.Base, avail(c.Customer, l.Base)); have < q.Qty {
			return nil, fmt.Errorf("%w: %d needed, %d available", trading.ErrInsufficient, q.Qty, have)
		}
		if have := s.spendable(house(l.Quote)); have < n {
			return nil, fmt.Errorf("%w: house cash %d, quote %d", trading.ErrExposure, have, n)
		}
		s.moveIn(l, l.Base, avail(c.Customer, l.Base), house(l.Base), q.Qty, CodeDealer, q.ID)
		s.move(house(l.Quote), avail(c.Customer, l.Quote), n, CodeDealer, q.ID)
		m.Inventory += q.Qty
		m.Profit += mulDiv(q.Mid, q.Qty, l.Scale) - n
	}
	q.Used = true
	tr := m.Record(trading.Trade{Entry: s.seq, Time: t, Market: l.ID, Price: q.Price, Qty: q.Qty, TakerSide: q.Side, TakerOwn: c.Customer, MakerOwn: ledger.OwnerHouse, Dealer: true, Halted: s.haltedNow(m)})
	s.commit(t)
	return &tr, nil
}
