package api

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchConcurrency is the number of clients sending at once.
const benchConcurrency = 8

// loadTest sends b.N requests from benchConcurrency clients over loopback
// and reports requests/s and the p50 and p99 latency.
func loadTest(b *testing.B, newReq func() *http.Request) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchConcurrency}}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < benchConcurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				res, err := client.Do(newReq())
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode >= 300 {
					failed.Add(1)
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkBalanceRead is a customer reading their balances.
func BenchmarkBalanceRead(b *testing.B) {
	e := newEnv(b)
	_, tok := e.signUp("bench@example.jp")
	url := e.http.URL + "/v1/me/balances"
	loadTest(b, func() *http.Request {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		return req
	})
}

// BenchmarkAuthenticatedPost is an operator setting a customer's KYC: an
// authenticated POST that journals a command (fsync) and applies it.
func BenchmarkAuthenticatedPost(b *testing.B) {
	e := newEnv(b)
	id, _ := e.signUp("bench@example.jp")
	tok := e.loginOperator("kenji")
	url := fmt.Sprintf("%s/v1/customers/%d/kyc", e.http.URL, id)
	body := []byte(`{"kyc":"verified","reason":"benchmark"}`)
	loadTest(b, func() *http.Request {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		return req
	})
}

// BenchmarkPlaceOrder is customers placing limit orders over HTTP: each
// request authenticated, decoded, journaled with fsync (group commit) and
// matched with settlement; 8 customers, buys and sells around a mid so
// that some fill.
func BenchmarkPlaceOrder(b *testing.B) {
	e := newBenchEnv(b)
	e.listBTCJPY()
	toks := make([]string, benchConcurrency)
	for i := range toks {
		_, toks[i] = e.trader(fmt.Sprintf("trader%d@example.jp", i), 1<<50, 1<<50)
	}
	url := e.http.URL + "/v1/me/orders"
	var n atomic.Int64
	loadTest(b, func() *http.Request {
		i := n.Add(1)
		side, price := "buy", 10_000_000-int64(i%50)*1_000
		if i%2 == 0 {
			side, price = "sell", 9_990_000+int64(i%50)*1_000
		}
		body := fmt.Sprintf(`{"market":"BTC/JPY","side":%q,"type":"limit","price":%d,"qty":100000}`, side, price)
		req, _ := http.NewRequest("POST", url, bytes.NewReader([]byte(body)))
		req.Header.Set("Authorization", "Bearer "+toks[i%benchConcurrency])
		req.Header.Set("Content-Type", "application/json")
		return req
	})
}
