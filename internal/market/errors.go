package market

import "fmt"

// Code is why the book refused a call. Every Code is an error value callers
// test with errors.Is, in the manner of btcd's txscript.ErrorCode; the
// methods return them bare, so a refusal allocates nothing.
type Code uint8

// Refusal codes. Place checks in this order and returns the first that
// applies: side, kind, price (ErrPrice, ErrOffTick), quantity (ErrBelowMin,
// ErrAboveMax, ErrOffLot), ErrDuplicateID, the price band (ErrNoReference,
// ErrOutsideBand), then the kind's own check (ErrWouldCross,
// ErrNoLiquidity, ErrFOKUnfilled) and last ErrBookFull. The codes are
// numbered in the order they were added.
const (
	// ErrSide means the side is neither Buy nor Sell.
	ErrSide Code = 1 + iota
	// ErrKind means the kind is not one of the order kinds.
	ErrKind
	// ErrPrice means the price is not in (0, MaxPrice].
	ErrPrice
	// ErrOffTick means the price is not a multiple of TickSize.
	ErrOffTick
	// ErrBelowMin means the quantity is below MinQty.
	ErrBelowMin
	// ErrAboveMax means the quantity is above MaxQty.
	ErrAboveMax
	// ErrOffLot means the quantity is not a multiple of LotSize.
	ErrOffLot
	// ErrDuplicateID means an order with this id is resting.
	ErrDuplicateID
	// ErrUnknownOrder means no order with this id is resting.
	ErrUnknownOrder
	// ErrNotOwner means the resting order belongs to another owner.
	ErrNotOwner
	// ErrWouldCross means a PostOnly order would trade on arrival.
	ErrWouldCross
	// ErrFOKUnfilled means a FOK order cannot fill in full from other
	// owners' orders within its price.
	ErrFOKUnfilled
	// ErrNoLiquidity means a Market order would trade nothing: no other
	// owner's order is within its protection price.
	ErrNoLiquidity
	// ErrBookFull means the order would rest but MaxOrders orders already
	// do. A Limit order that would fill in full is still taken.
	ErrBookFull
	// ErrConfig means a Config breaks a rule; Validate wraps it with detail.
	ErrConfig
	// ErrOutsideBand means the price is outside the price band around the
	// book's reference.
	ErrOutsideBand
	// ErrNoReference means the book has a band but no reference price yet
	// (no fill, no index), and the order would trade.
	ErrNoReference
	codeEnd
)

var codeText = [...]string{
	ErrSide:         "side invalid",
	ErrKind:         "order kind invalid",
	ErrPrice:        "price out of range",
	ErrOffTick:      "price not a multiple of the tick size",
	ErrBelowMin:     "quantity below the minimum",
	ErrAboveMax:     "quantity above the maximum",
	ErrOffLot:       "quantity not a multiple of the lot size",
	ErrDuplicateID:  "order id already resting",
	ErrUnknownOrder: "order unknown",
	ErrNotOwner:     "order belongs to another owner",
	ErrWouldCross:   "post-only order would trade",
	ErrFOKUnfilled:  "fill-or-kill order cannot fill in full",
	ErrNoLiquidity:  "market order has no liquidity within its price",
	ErrBookFull:     "book full",
	ErrConfig:       "market config invalid",
	ErrOutsideBand:  "price outside the price band",
	ErrNoReference:  "no reference price yet: the market does not trade until it has one",
}

// Error returns the code's text.
func (c Code) Error() string {
	if c > 0 && c < codeEnd {
		return codeText[c]
	}
	return fmt.Sprintf("market code %d", uint8(c))
}

// String returns the code's text.
func (c Code) String() string { return c.Error() }
