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
