package signer

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/core"
	"kinko/internal/cosigner"
	"kinko/internal/ledger"
	"kinko/internal/mtls"
	"kinko/internal/withdraw"
)

// BenchmarkWithdrawals measures request -> broadcast on loopback with each
// role behind its boundary (the signer over the core's API, the co-signer
// fed by the journal stream and reached over mutual TLS), with a real node:
// b.N withdrawals requested in rounds of up to 100, each round one batch.
// It reports p50/p99 latency from the request's acknowledgement to its
// batch's broadcast, withdrawals per second (requests, signing, co-signing,
// journaling and broadcasting; mining excluded), and withdrawals per
// transaction.
func BenchmarkWithdrawals(b *testing.B) {
	e := setup(b)
	srv, coreURL := serveAPI(b, e.c)
	var offset atomic.Int64
	cs := e.openCosigner(b, policy(b, e.hotD, e.coldD, "1s", 100000000000, 100000000000, 1000000), &offset)
	f := &cosigner.Follower{URL: coreURL, Token: srv.StreamToken(), HTTP: http.DefaultClient, C: cs, Log: slog.New(slog.DiscardHandler)}
	csURL, tdir := serveCosigner(b, cs)
	ccfg, _ := mtls.Client(tdir)
	f.Poll(e.ctx)
	offset.Store(int64(time.Hour)) // the customers' keys: known an hour by the co-signer's clock
	s := New(Config{Backend: API{URL: coreURL, Token: srv.SignerToken(), HTTP: http.DefaultClient}, Chain: btcChain(e.node), PrevTxs: e.node.Client(), Net: regtest.Net,
		Account: e.hotK[0].a, FP: e.hotK[0].fp, CoSigner: followThen{f, NewRemote(csURL, ccfg)}})
	// The two queued withdrawals of the setup go first, unmeasured.
	if _, err := s.Step(e.ctx); err != nil {
		b.Fatal(err)
	}
	e.mineAndWatch()

	lat := make([]time.Duration, 0, b.N)
	txs := 0
	b.ResetTimer()
	start := time.Now()
	for done := 0; done < b.N; {
		n := min(withdraw.MaxBatchOutputs, b.N-done)
		reqAt := make([]time.Time, n)
		for i := 0; i < n; i++ {
			cust := ledger.OwnerID(1 + (done+i)%2)
			in := withdraw.Intent{RequestID: fmt.Sprintf("bench-%d", done+i), Asset: "BTC", Address: payee(byte(cust)), Amount: withdraw.AmountOf(1000), Expiry: time.Now().Add(3 * time.Hour).Unix()}
			sig, _ := in.Sign(e.intent[cust])
			o, err := e.c.Submit(e.ctx, time.Now().Add(2*time.Second), core.RequestWithdrawal{Customer: cust, Intent: in, PubKey: [32]byte(e.intent[cust].Public().(ed25519.PublicKey)), Sig: sig})
			if err != nil || o.Err != nil || o.Value.(withdraw.Withdrawal).Status != withdraw.StatusQueued {
				b.Fatalf("request: %v %v %+v", err, o.Err, o.Value)
			}
			reqAt[i] = time.Now()
		}
		sent, err := s.Step(e.ctx)
		if err != nil || len(sent) != 1 {
			b.Fatalf("step = %v, %v", sent, err)
		}
		at := time.Now()
		for _, t := range reqAt {
			lat = append(lat, at.Sub(t))
		}
		txs++
		done += n
		b.StopTimer()
		e.mineAndWatch()
		b.StartTimer()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(b.N)/float64(txs), "withdrawals/tx")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "withdrawals/s")
}
