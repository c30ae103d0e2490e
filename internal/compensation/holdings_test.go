package compensation

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"testing"

	"kinko/internal/ledger"
)

// csvReference is WriteCSV as first written, with encoding/csv row by row.
func csvReference(r HoldingsReport) []byte {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	cw.Write([]string{"customer", "available", "held", "total", "asset", "seq"})
	seq := strconv.FormatUint(r.Seq, 10)
	for _, h := range r.Holdings {
		cw.Write([]string{strconv.FormatUint(uint64(h.Customer), 10), strconv.FormatUint(h.Available, 10), strconv.FormatUint(h.Held, 10), strconv.FormatUint(h.Total, 10), r.Asset, seq})
	}
	cw.Write([]string{"total", "", "", strconv.FormatUint(r.Total, 10), r.Asset, seq})
	cw.Flush()
	return b.Bytes()
}

// TestHoldingsCSV: the CSV and the JSON are byte for byte what
// encoding/csv and encoding/json write, for reports of every size (past the
// writers' buffers) and asset codes that need quoting.
func TestHoldingsCSV(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 7, 60_000} {
		for _, code := range []string{"BTC", `X,"Y`} {
			hs := make([]Holding, n)
			for i := range hs {
				a, h := rng.Uint64()>>rng.IntN(64), rng.Uint64N(1000)
				hs[i] = Holding{Customer: ledger.OwnerID(i + 1), Available: a, Held: h, Total: a + h}
			}
			r := NewHoldingsReport(code, 8, rng.Uint64(), 5, hs)
			var got bytes.Buffer
			if err := r.WriteCSV(&got); err != nil {
				t.Fatal(err)
			}
			if want := csvReference(r); !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("%d holders of %q: the CSV differs from encoding/csv's", n, code)
			}
			got.Reset()
			if err := r.WriteJSON(&got); err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			json.NewEncoder(&want).Encode(r)
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Fatalf("%d holders of %q: the JSON differs from encoding/json's:\n%.300s\n%.300s", n, code, got.Bytes(), want.Bytes())
			}
		}
	}
}
