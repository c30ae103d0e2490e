package cosigner

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kinko/internal/api"
	"kinko/internal/auth"
	"kinko/internal/mtls"
	"kinko/internal/wallet"
)

// TestCosignerProcessParts: the co-signer follows the core's journal over
// the read-only stream, answers only clients with a certificate of its CA,
// refuses with its reason, and keeps a log of what it signed that a restart
// reads back.
func TestCosignerProcessParts(t *testing.T) {
	w := newWorld(t)
	w.withdraw(1, "w1", 30_000_000, t0.Add(25*time.Hour))
	// The core's API, serving the stream.
	srv, err := api.New(api.Config{Core: w.c, DataDir: t.TempDir(), Argon2: auth.TestArgon2})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	core := &http.Server{Handler: srv}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go core.Serve(ln)
	defer core.Close()
	token := streamToken(t, srv)
	f := &Follower{URL: "http://" + ln.Addr().String(), Token: "wrong", HTTP: http.DefaultClient, C: w.cs, Log: slog.New(slog.DiscardHandler)}
	if _, err := f.Poll(context.Background()); err == nil {
		t.Fatal("the stream answered a wrong token")
	}
	f.Token = token
	n, err := f.Poll(context.Background())
	if err != nil || n == 0 || w.cs.Seq() == 0 {
		t.Fatalf("poll = %d, %v", n, err)
	}
	// Mutual TLS in front of the co-signer.
	tdir := filepath.Join(dir, "tls")
	if err := mtls.Init(tdir); err != nil {
		t.Fatal(err)
	}
	if err := mtls.Init(tdir); err == nil {
		t.Fatal("certificates overwritten")
	}
	if err := w.cs.SetStateDir(filepath.Join(dir, "state")); err != nil {
		t.Fatal(err)
	}
	scfg, _ := mtls.Server(tdir)
	cln, _ := tls.Listen("tcp", "127.0.0.1:0", scfg)
	cs := &http.Server{Handler: w.cs.Handler(slog.New(slog.DiscardHandler))}
	go cs.Serve(cln)
	defer cs.Close()
	url := "https://" + cln.Addr().String() + "/cosign"
	// No client certificate: the handshake fails.
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if _, err := noCert.Post(url, "text/plain", strings.NewReader("x")); err == nil {
		t.Fatal("a client without a certificate was answered")
	}
	ccfg, _ := mtls.Client(tdir)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: ccfg}}
	w.clock = t0.Add(26 * time.Hour)
	// A PSBT paying a stranger: refused with the reason.
	p := w.psbtPaying(pay(2, 12345))
	s, _ := wallet.Encode(p)
	res, err := client.Post(url, "text/plain", strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 403 || !strings.Contains(string(body), "neither a journaled withdrawal") {
		t.Fatalf("stranger = %d %s", res.StatusCode, body)
	}
	// The real one: co-signed, and recorded.
	s, _ = wallet.Encode(w.psbtPaying(pay(1, 30_000_000)))
	res, err = client.Post(url, "text/plain", strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("co-sign = %d %s", res.StatusCode, body)
	}
	// A restarted co-signer reads its log and will not sign w1 again.
	w2 := New(regnet, w.keys[1].acct, w.keys[1].fp, w.cs.policy, func() time.Time { return w.clock })
	if err := w2.SetStateDir(filepath.Join(dir, "state")); err != nil {
		t.Fatal(err)
	}
	(&Follower{URL: f.URL, Token: token, HTTP: http.DefaultClient, C: w2, Log: f.Log}).Poll(context.Background())
	w.clock = t0.Add(60 * time.Hour) // its first-seen times are new: wait out the cool-down again
	if _, err := w2.Sign(w.psbtPaying(pay(1, 30_000_000))); err == nil || !strings.Contains(err.Error(), "already signed") {
		t.Fatalf("restarted co-signer = %v", err)
	}
}

func streamToken(t *testing.T, s *api.Server) string { return s.StreamToken() }

// TestHaltEndpoint: the watcher's direct halt takes an asset and a reason,
// refuses anything else with 400, and holds until the co-signer restarts.
func TestHaltEndpoint(t *testing.T) {
	w := newWorld(t)
	h := w.cs.Handler(slog.New(slog.DiscardHandler))
	post := func(body string) int {
		rec := httptest.NewRecorder()
		req, _ := http.NewRequest("POST", "/halt", strings.NewReader(body))
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for _, bad := range []string{``, `{}`, `{"asset":"BTC"}`, `{"reason":"x"}`, `{"asset":"BTC","reason":"x","extra":1}`, `[1]`, strings.Repeat("x", 70<<10)} {
		if code := post(bad); code != http.StatusBadRequest {
			t.Errorf("halt %q = %d; want 400", bad[:min(len(bad), 40)], code)
		}
	}
	if code := post(`{"asset":"btc","reason":"unexplained outflow"}`); code != http.StatusNoContent {
		t.Fatalf("halt = %d", code)
	}
	w.cs.mu.Lock()
	why := w.cs.halted["BTC"]
	w.cs.mu.Unlock()
	if why != "unexplained outflow" {
		t.Fatalf("halted = %q", why)
	}
}
