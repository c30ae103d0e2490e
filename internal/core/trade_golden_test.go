package core

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"
)

// goldenMixOps is how many operations of the benchmark's mix the golden
// test runs.
const goldenMixOps = 300_000

// goldenMixDigest is the digest of every outcome of goldenMixOps of the
// mix and of the state after them (its Hash), as the code gave it before
// the hot path was tuned: an optimisation must leave it unchanged.
const goldenMixDigest = "c8fdca1bbdad5e1e54ff97d851581896c52caf168d3f57fa6c7bf7ae4a64a289"

// TestTradingMixGolden runs BenchmarkTradingMix's stream through the same
// functions the benchmark calls and compares a digest of every result
// (order, filled, resting, cancelled, each trade record, each error) and
// of the final state's hash with the golden value.
func TestTradingMixGolden(t *testing.T) {
	e, g := newBenchTrading(t, goldenMixOps)
	st := e.st
	h := sha256.New()
	var buf []byte
	put := func(vs ...int64) {
		for _, v := range vs {
			buf = binary.BigEndian.AppendUint64(buf, uint64(v))
		}
	}
	var fills, refused int
	for i := 0; i < goldenMixOps; i++ {
		buf = buf[:0]
		var r *PlaceResult
		var err error
		switch c := g.nextOp(); c.kind {
		case KindPlaceOrder:
			r, err = st.placeOrder(c.place, e.now)
		case KindCancelOrder:
			err = st.cancelOrder(c.cancel)
		default:
			r, err = st.replaceOrder(c.replace, e.now)
		}
		put(int64(i))
		if err != nil {
			refused++
			buf = append(buf, err.Error()...)
		}
		if r != nil {
			put(int64(r.Order), r.Filled, r.Resting, r.Cancelled, int64(len(r.Trades)))
			for _, tr := range r.Trades {
				buf = fmt.Appendf(buf, "%+v", tr)
			}
			fills += len(r.Trades)
			if r.Resting > 0 {
				g.live = append(g.live, r.Order)
			}
		}
		h.Write(buf)
	}
	if err := st.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	sh := st.Hash()
	h.Write(sh[:])
	got := hex.EncodeToString(h.Sum(nil))
	t.Logf("%d operations, %d fills, %d refused, %d transfers, state hash %v", goldenMixOps, fills, refused, st.Ledger.TransferCount(), sh)
	if fills == 0 {
		t.Fatal("the mix made no fill")
	}
	if got != goldenMixDigest {
		t.Fatalf("digest of the mix's outcomes and state %s, want %s", got, goldenMixDigest)
	}
}
