package core

import (
	"encoding/binary"
	"os"
	"strconv"
	"testing"

	"kinko/internal/ledger"
	"kinko/internal/market"
)

// mixRecord is one operation of the mix as TestTradingMixCount stores it:
// kind, side, type, then customer, order, price and qty, big-endian.
const mixRecord = 3 + 4*8

// TestTradingMixCount supports counting the instructions of the trading
// apply alone (docs/benchmarks.md, Trading). With KINKO_MIX_WRITE=file and
// KINKO_MIX_OPS=n it writes the first n operations of BenchmarkTradingMix's
// stream to file; with KINKO_MIX_READ=file it applies them to the
// benchmark's starting state with nothing else in the loop (no generator,
// no clock, no checks), so a run under valgrind --tool=cachegrind of two
// lengths differs only by the apply. Without either it is skipped.
func TestTradingMixCount(t *testing.T) {
	if path := os.Getenv("KINKO_MIX_WRITE"); path != "" {
		n, err := strconv.Atoi(os.Getenv("KINKO_MIX_OPS"))
		if err != nil || n <= 0 {
			t.Fatalf("KINKO_MIX_OPS: %q", os.Getenv("KINKO_MIX_OPS"))
		}
		e, g := newBenchTrading(t, n)
		buf := make([]byte, 0, n*mixRecord)
		for i := 0; i < n; i++ {
			var r *PlaceResult
			c := g.nextOp()
			var side market.Side
			var typ market.Kind
			var cust ledger.OwnerID
			var order market.OrderID
			var price, qty int64
			switch c.kind {
			case KindPlaceOrder:
				r, _ = e.st.placeOrder(c.place, e.now)
				side, typ, cust, price, qty = c.place.Side, c.place.Type, c.place.Customer, c.place.Price, c.place.Qty
			case KindCancelOrder:
				e.st.cancelOrder(c.cancel)
				cust, order = c.cancel.Customer, c.cancel.Order
			default:
				r, _ = e.st.replaceOrder(c.replace, e.now)
				cust, order, price, qty = c.replace.Customer, c.replace.Order, c.replace.Price, c.replace.Qty
			}
			if r != nil && r.Resting > 0 {
				g.live = append(g.live, r.Order)
			}
			buf = append(buf, byte(c.kind), byte(side), byte(typ))
			buf = binary.BigEndian.AppendUint64(buf, uint64(cust))
			buf = binary.BigEndian.AppendUint64(buf, uint64(order))
			buf = binary.BigEndian.AppendUint64(buf, uint64(price))
			buf = binary.BigEndian.AppendUint64(buf, uint64(qty))
		}
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	path := os.Getenv("KINKO_MIX_READ")
	if path == "" {
		t.Skip("KINKO_MIX_WRITE or KINKO_MIX_READ not set")
	}
	buf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := len(buf) / mixRecord
	e, _ := newBenchTrading(t, n)
	st, now := e.st, e.now
	fills := 0
	for p := buf; len(p) >= mixRecord; p = p[mixRecord:] {
		cust := ledger.OwnerID(binary.BigEndian.Uint64(p[3:]))
		order := market.OrderID(binary.BigEndian.Uint64(p[11:]))
		price, qty := int64(binary.BigEndian.Uint64(p[19:])), int64(binary.BigEndian.Uint64(p[27:]))
		var r *PlaceResult
		switch Kind(p[0]) {
		case KindPlaceOrder:
			r, err = st.placeOrder(PlaceOrder{Customer: cust, Market: 1, Side: market.Side(p[1]), Type: market.Kind(p[2]), Price: price, Qty: qty}, now)
		case KindCancelOrder:
			err = st.cancelOrder(CancelOrder{Customer: cust, Order: order})
		default:
			r, err = st.replaceOrder(ReplaceOrder{Customer: cust, Order: order, Price: price, Qty: qty}, now)
		}
		if err != nil {
			t.Fatal(err)
		}
		if r != nil {
			fills += len(r.Trades)
		}
	}
	t.Logf("%d operations, %d fills", n, fills)
}
