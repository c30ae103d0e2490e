package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"kinko/internal/controls"
	"kinko/internal/core"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics = %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// TestMetricsFollowTheState: a halt and a detection show at the next scrape.
func TestMetricsFollowTheState(t *testing.T) {
	ctx := context.Background()
	c, err := core.Open(ctx, core.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := New(c)
	m.Mismatch = func() map[uint32]int64 { return map[uint32]int64{7: -500} }
	before := scrape(t, m)
	if strings.Contains(before, "kinko_halted{") {
		t.Fatalf("halted before any halt:\n%s", before)
	}
	o, err := c.Submit(ctx, time.Now(), core.Halt{Switch: controls.Switch{Service: controls.Global}, Actor: "ops", Reason: "drill"})
	if err != nil || o.Err != nil {
		t.Fatal(err, o.Err)
	}
	m.Detected(40 * time.Millisecond)
	after := scrape(t, m)
	for _, want := range []string{
		`kinko_journal_seq 1`,
		`kinko_halted{asset="",service="global"} 1`,
		`kinko_detection_latency_seconds_bucket{le="0.05"} 1`,
		`kinko_detection_latency_seconds_bucket{le="0.01"} 0`,
		`kinko_reconciliation_difference_base_units{wallet="7"} -500`,
	} {
		if !strings.Contains(after, want) {
			t.Errorf("missing %q in\n%s", want, after)
		}
	}
}

// TestMetricsOfEverySubsystem: the HTTP API's requests by route and
// status with their latency, the watcher's lag, readiness, open
// incidents, and the Go runtime, at one scrape.
func TestMetricsOfEverySubsystem(t *testing.T) {
	c, err := core.Open(context.Background(), core.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := New(c)
	m.Request("/v1/me/withdrawals", "POST", 201, 3*time.Millisecond)
	m.Request("/v1/me/withdrawals", "POST", 201, 30*time.Millisecond)
	m.Request("", "BREW", 404, time.Millisecond)
	m.Request(strings.Repeat("/x", 100), "GET", 200, time.Millisecond)
	m.Watcher = func() []WatcherLag { return []WatcherLag{{Asset: "BTC", Height: 100, Tip: 103, Age: 90 * time.Second}} }
	reasons := []string{"watcher: behind"}
	m.Ready = func() []string { return reasons }
	got := scrape(t, m)
	for _, want := range []string{
		`kinko_http_requests_total{method="POST",route="/v1/me/withdrawals",status="201"} 2`,
		`kinko_http_requests_total{method="other",route="unmatched",status="404"} 1`,
		`kinko_http_request_duration_seconds_bucket{route="/v1/me/withdrawals",le="0.005"} 1`,
		`kinko_http_request_duration_seconds_count{route="/v1/me/withdrawals"} 2`,
		`kinko_watcher_checkpoint_height{asset="BTC"} 100`,
		`kinko_watcher_blocks_behind{asset="BTC"} 3`,
		`kinko_watcher_checkpoint_age_seconds{asset="BTC"} 90`,
		`kinko_ready 0`,
		`kinko_incidents_open 0`,
		`go_goroutines `,
		`go_memstats_heap_alloc_bytes `,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(got, strings.Repeat("/x", 50)) {
		t.Error("a route longer than MaxRoute is a label")
	}
	reasons = nil
	if got := scrape(t, m); !strings.Contains(got, "kinko_ready 1") {
		t.Error("kinko_ready is not 1 with no reason")
	}
}
