package alert

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func TestWebhookSignsRetriesAndDeduplicates(t *testing.T) {
	secret := []byte("shared secret")
	var mu sync.Mutex
	var got []Alert
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 2 {
			w.WriteHeader(503) // the receiver is down twice: retried
			return
		}
		if r.Header.Get(SignatureHeader) != Sign(secret, body) {
			t.Errorf("bad signature")
		}
		var a Alert
		json.Unmarshal(body, &a)
		got = append(got, a)
	}))
	defer srv.Close()
	w := &Webhook{URL: srv.URL, Secret: secret, Backoff: time.Millisecond}
	w.Start()
	now := time.Now()
	w.Send(Alert{Key: "outflow:tx1", Severity: Critical, Title: "unexplained outflow", Time: now})
	w.Send(Alert{Key: "outflow:tx1", Severity: Critical, Title: "unexplained outflow", Time: now.Add(time.Second)}) // duplicate
	w.Send(Alert{Key: "node-down", Severity: Warning, Title: "node not answering", Time: now})
	w.Stop()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Key != "outflow:tx1" || got[1].Key != "node-down" || calls != 4 {
		t.Fatalf("delivered %+v in %d calls; want 2 alerts after 2 failures", got, calls)
	}
}
