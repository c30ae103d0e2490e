package api

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"kinko/internal/core"
	"kinko/internal/incident"
	"kinko/internal/ledger"
)

// BenchmarkHoldingsAtScale measures GET /v1/holdings at the moment of an
// incident among KINKO_HOLDERS customers (default 20,000; Coincheck's
// 1,700,000 and 10,000,000 by the environment), each holding BTC, end to
// end: the request over HTTP, the holdings at the moment (from the balance
// log: its checkpoint before the moment and the records after), and the
// whole body read, in CSV and in JSON; and in CSV at random moments
// (csv-any-moment).
func BenchmarkHoldingsAtScale(b *testing.B) {
	n := 20_000
	if s := os.Getenv("KINKO_HOLDERS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("KINKO_HOLDERS=%q", s)
		}
		n = v
	}
	e := newBenchEnv(b)
	ctx := context.Background()
	must := func(cmd core.Command) {
		o, err := e.core.Submit(ctx, e.clock.Now(), cmd)
		if err == nil {
			err = o.EventErr()
		}
		if err != nil {
			b.Fatalf("%s: %v", cmd.Kind(), err)
		}
	}
	eq := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: btc, Kind: ledger.KindEquity}
	must(core.CreateAccounts{Keys: []ledger.AccountKey{eq}})
	t := time.Now()
	const first = 1 << 32 // above the API's own customers
	for i := 0; i < n; i += ledger.MaxBatch {
		k := min(ledger.MaxBatch, n-i)
		ids := make([]ledger.OwnerID, k)
		keys := make([]ledger.AccountKey, 0, 2*k)
		ts := make([]ledger.Transfer, k)
		for j := range ids {
			c := ledger.OwnerID(first + i + j)
			ids[j] = c
			keys = append(keys, avail(c, btc), ledger.AccountKey{Owner: c, Asset: btc, Kind: ledger.KindHeld})
			ts[j] = ledger.Transfer{ID: ledger.ID{Hi: 19, Lo: uint64(c)}, Debit: eq, Credit: avail(c, btc), Amount: ledger.AmountOf(uint64(c%100_000 + 1))}
		}
		must(core.CreateCustomers{IDs: ids})
		for a := 0; a < len(keys); a += ledger.MaxBatch {
			must(core.CreateAccounts{Keys: keys[a:min(a+ledger.MaxBatch, len(keys))]})
		}
		must(core.CreateTransfers{Transfers: ts})
	}
	var before uint64
	e.core.Read(func(st *core.State) { before = st.Seq() })
	must(e.sign(core.OpenIncident{Incident: incident.Incident{ID: "theft", Asset: "BTC", Detector: "watcher", Reason: "unexplained outflow", TxIDs: []string{"ab"}}}))
	b.Logf("%d holders journaled in %v; the moment is entry %d", n, time.Since(t), before)
	tok := e.loginOperator("kenji")
	head, _, _ := e.core.Journal().Head()
	rng := rand.New(rand.NewPCG(19, 2))
	for _, format := range []string{"csv", "json", "csv-any-moment"} {
		b.Run(format, func(b *testing.B) {
			var size int64
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				at, f := before, format
				if format == "csv-any-moment" {
					// A random entry: between snapshots, while the
					// customers and their deposits were made.
					at, f = rng.Uint64N(head)+1, "csv"
				}
				req, _ := http.NewRequest("GET", e.http.URL+"/v1/holdings?asset=BTC&at="+strconv.FormatUint(at, 10)+"&format="+f, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				r, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				size, err = io.Copy(io.Discard, r.Body)
				r.Body.Close()
				if err != nil || r.StatusCode != 200 {
					b.Fatal(r.StatusCode, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
			b.ReportMetric(float64(size), "body-bytes")
		})
	}
}
