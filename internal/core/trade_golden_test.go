package core

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
)

// goldenMixOps is how many operations of the benchmark's mix the golden
// test runs.
const goldenMixOps = 300_000

// goldenMixDigest is the digest of every outcome of goldenMixOps of the
// mix and of the ledger and trading state after them, as the code gave it
// before the hot path was tuned: an optimisation must leave it unchanged.
const goldenMixDigest = "5673ae8ffd7e82816e20f898b0f2b861bd754b1347ae5575d1e2be057fbda31e"

// TestTradingMixGolden runs BenchmarkTradingMix's stream through the same
// functions the benchmark calls and compares a digest of every result
// (order, filled, resting, cancelled, each trade record, each error) and
// of the final ledger and trading state's encodings with the golden
// value.
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
	// The ledger's encoding (every account and transfer) and the trading
	// state's (markets, books, open orders, trades); not the entry
	// header, whose hash follows the signed setup entries.
	bw := bufio.NewWriter(h)
	if err := st.Ledger.Encode(bw); err != nil {
		t.Fatal(err)
	}
	bw.Flush()
	tj, err := json.Marshal(st.Trading.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	h.Write(tj)
	got := hex.EncodeToString(h.Sum(nil))
	t.Logf("%d operations, %d fills, %d refused, %d transfers", goldenMixOps, fills, refused, st.Ledger.TransferCount())
	if fills == 0 {
		t.Fatal("the mix made no fill")
	}
	if got != goldenMixDigest {
		t.Fatalf("digest of the mix's outcomes and state %s, want %s", got, goldenMixDigest)
	}
}
