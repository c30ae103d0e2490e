// Package alert sends alerts to a webhook: JSON, signed with HMAC-SHA256,
// retried with exponential back-off, and deduplicated so a detector that
// sees the same thing at every step pages once.
package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Severity of an alert.
type Severity string

// Severities.
const (
	Critical Severity = "critical"
	Warning  Severity = "warning"
)

// Alert is one alert. Key identifies what it is about, for deduplication.
type Alert struct {
	Key      string    `json:"key"`
	Severity Severity  `json:"severity"`
	Title    string    `json:"title"`
	Detail   string    `json:"detail"`
	Time     time.Time `json:"time"`
}

// SignatureHeader carries the hex HMAC-SHA256 of the body with the shared
// secret: the receiver checks it before it trusts the alert.
const SignatureHeader = "X-Kinko-Signature"

// Bounds of the sender.
const (
	queueLen    = 1024
	maxAttempts = 8
	dedupWindow = time.Hour
)

// Webhook sends alerts to a URL. Start it, Send to it, Stop it.
type Webhook struct {
	URL     string
	Secret  []byte
	HTTP    *http.Client
	Log     *slog.Logger
	Backoff time.Duration // first retry delay; default 200ms, doubling

	mu   sync.Mutex
	seen map[string]time.Time
	q    chan Alert
	done chan struct{}
}

// Start starts the sender; its goroutine exits when Stop is called.
func (w *Webhook) Start() {
	if w.HTTP == nil {
		w.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if w.Log == nil {
		w.Log = slog.New(slog.DiscardHandler)
	}
	if w.Backoff == 0 {
		w.Backoff = 200 * time.Millisecond
	}
	w.seen = map[string]time.Time{}
	w.q = make(chan Alert, queueLen)
	w.done = make(chan struct{})
	go w.run()
}

// Send queues an alert unless the same key was sent within the window. It
// never blocks the detector: a full queue drops (and logs) the alert.
func (w *Webhook) Send(a Alert) {
	w.mu.Lock()
	if t, ok := w.seen[a.Key]; ok && a.Time.Sub(t) < dedupWindow {
		w.mu.Unlock()
		return
	}
	w.seen[a.Key] = a.Time
	w.mu.Unlock()
	select {
	case w.q <- a:
	default:
		w.Log.Error("alert queue full; alert dropped", "key", a.Key)
	}
}

// Stop sends what is queued (one attempt each) and stops.
func (w *Webhook) Stop() {
	close(w.q)
	<-w.done
}

func (w *Webhook) run() {
	defer close(w.done)
	for a := range w.q {
		w.deliver(a)
	}
}

// Sign returns the signature of body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func (w *Webhook) deliver(a Alert) {
	body, _ := json.Marshal(a)
	delay := w.Backoff
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		err := w.post(body)
		if err == nil {
			return
		}
		w.Log.Warn("alert delivery failed", "key", a.Key, "attempt", attempt, "err", err)
		time.Sleep(delay)
		delay *= 2
	}
	w.Log.Error("alert not delivered", "key", a.Key, "title", a.Title)
}

func (w *Webhook) post(body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(w.Secret, body))
	res, err := w.HTTP.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode >= 300 {
		return fmt.Errorf("webhook answered %s", res.Status)
	}
	return nil
}
