package cosigner

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"kinko/internal/api"
	"kinko/internal/auth"
	"kinko/internal/journal"
	"kinko/internal/mtls"
	"kinko/internal/stream"
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
	// A restarted co-signer resumes from its own mirror and will not
	// sign w1 in another transaction.
	w.restart()
	if n, err := (&Follower{URL: f.URL, Token: token, HTTP: http.DefaultClient, C: w.cs, Log: f.Log}).Poll(context.Background()); err != nil || n != 0 {
		t.Fatalf("restarted poll = %d, %v; want nothing new", n, err)
	}
	if _, err := w.cs.Sign(w.psbtPaying(pay(1, 30_000_000))); !errors.Is(err, ErrAlreadySigned) {
		t.Fatalf("restarted co-signer = %v", err)
	}
}

func streamToken(t *testing.T, s *api.Server) string { return s.StreamToken() }

// TestHaltEndpoint: the watcher's direct halt takes an asset and a reason,
// refuses anything else with 400, and holds until lifted on the host.
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
	if hs := w.cs.Halts(); len(hs) != 1 || hs[0].Asset != "BTC" || hs[0].Reason != "unexplained outflow" || hs[0].By != "watcher" {
		t.Fatalf("halts = %+v", hs)
	}
}

// serveFrames serves the core's journal stream from raws (entry i+1 at
// raws[i]), as a core whose journal was edited would.
func serveFrames(t *testing.T, raws [][]byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		from, _ := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
		for i := from; i >= 1 && i <= uint64(len(raws)); i++ {
			stream.WriteFrame(w, raws[i-1])
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// rewritten is the journal with entry k's time changed and every later
// entry re-hashed onto it: a full rewrite by whoever holds the core's host.
func rewritten(raws [][]byte, k int) [][]byte {
	out := make([][]byte, len(raws))
	var prev journal.Hash
	for i, raw := range raws {
		e, _ := journal.Decode(raw)
		if i+1 == k {
			e.Time++
		}
		if i+1 >= k {
			buf := make([]byte, journal.EncodedSize(len(e.Payload)))
			e = journal.Seal(buf, prev, e.Seq, e.Time, e.Kind, e.Payload)
		}
		out[i] = e.Encode()
		prev = e.Hash
	}
	return out
}

// TestCosignerRefusesShorterOrRewrittenHistory: the core's journal is cut
// short, or rewritten from entry 10 with every later hash recomputed. The
// co-signer, running or restarted, refuses both with a critical alert and
// signs nothing until lifted on its host.
func TestCosignerRefusesShorterOrRewrittenHistory(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func([][]byte) [][]byte
	}{
		{"truncated", func(r [][]byte) [][]byte { return r[:len(r)-3] }},
		{"rewritten", func(r [][]byte) [][]byte { return rewritten(r, 10) }},
		{"middle entry deleted", func(r [][]byte) [][]byte {
			return append(append([][]byte(nil), r[:9]...), rewritten(r[10:], 1)...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.withdraw(1, "w1", 30_000_000, t0.Add(25*time.Hour))
			var raws [][]byte
			w.c.Journal().Scan(1, func(e journal.Entry) error { raws = append(raws, e.Encode()); return nil })
			f := &Follower{URL: serveFrames(t, raws), HTTP: http.DefaultClient, C: w.cs, Log: slog.New(slog.DiscardHandler)}
			if n, err := f.Poll(context.Background()); err != nil || n != len(raws) {
				t.Fatalf("poll = %d, %v", n, err)
			}
			edited := tc.edit(raws)
			for round := 0; round < 2; round++ { // running, then restarted
				f.URL = serveFrames(t, edited)
				if _, err := f.Poll(context.Background()); !errors.Is(err, ErrChainBroken) {
					t.Fatalf("round %d: poll of an edited journal = %v; want ErrChainBroken", round, err)
				}
				w.clock = t0.Add(25 * time.Hour)
				if _, err := w.cs.Sign(w.psbtPaying(pay(1, 30_000_000))); !errors.Is(err, ErrChainBroken) && !errors.Is(err, ErrHalted) {
					t.Fatalf("round %d: sign = %v; want a refusal", round, err)
				}
				if !w.alerted("cosigner-halt:*") {
					t.Fatalf("round %d: no critical alert", round)
				}
				if seq := w.cs.Seq(); seq != uint64(len(raws)) {
					t.Fatalf("round %d: the co-signer's checkpoint moved to %d", round, seq)
				}
				w.alerts = nil
				w.restart()
				f.C = w.cs
			}
			// Lifted on the host, it signs again on the history it kept.
			if err := w.cs.Lift(AllAssets, "aiko", "journal restored from the witnesses"); err != nil {
				t.Fatal(err)
			}
			f.URL = serveFrames(t, raws)
			if _, err := f.Poll(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := w.cs.Sign(w.psbtPaying(pay(1, 30_000_000))); err != nil {
				t.Fatalf("after the lift on the true history = %v", err)
			}
		})
	}
}

// TestHaltForOwnTransaction: the watcher's halt for a transaction the
// co-signer signed itself (the watcher saw it broadcast before it could
// read the journal's entry of it) is declined with 409 and halts nothing;
// one for any other transaction halts, the asset must match, and a
// transaction named in no readable form is refused with 400. Restarted,
// the co-signer still knows what it signed.
func TestHaltForOwnTransaction(t *testing.T) {
	w := newWorld(t)
	w.withdraw(1, "w1", 30_000_000, t0.Add(25*time.Hour))
	if err := w.feed(); err != nil {
		t.Fatal(err)
	}
	w.clock = t0.Add(25 * time.Hour)
	p := w.psbtPaying(pay(1, 30_000_000))
	if _, err := w.cs.Sign(p); err != nil {
		t.Fatal(err)
	}
	own := p.UnsignedTx.TxHash().String()
	post := func(body string) (int, string) {
		rec := httptest.NewRecorder()
		req, _ := http.NewRequest("POST", "/halt", strings.NewReader(body))
		w.cs.Handler(slog.New(slog.DiscardHandler)).ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	for _, bad := range []string{"abc", strings.Repeat("z", 64), "0x1234", "0x" + strings.Repeat("g", 64)} {
		if code, _ := post(`{"asset":"BTC","reason":"x","tx":"` + bad + `"}`); code != http.StatusBadRequest {
			t.Errorf("halt for tx %q = %d; want 400", bad, code)
		}
	}
	if code, body := post(`{"asset":"BTC","reason":"unexplained outflow","tx":"` + own + `"}`); code != http.StatusConflict || !strings.Contains(body, "1:w1") {
		t.Fatalf("halt for its own transaction = %d %q; want 409 naming the withdrawal", code, body)
	}
	if hs := w.cs.Halts(); len(hs) != 0 {
		t.Fatalf("halted for its own transaction: %+v", hs)
	}
	w.restart()
	if err := w.cs.HaltFor("BTC", own, "watcher", "again"); !errors.Is(err, ErrSignedHere) {
		t.Fatalf("restarted, halt for its own transaction = %v; want ErrSignedHere", err)
	}
	// The same id for another asset is not the transaction it signed.
	if err := w.cs.HaltFor("ETH", own, "watcher", "other asset"); err != nil {
		t.Fatal(err)
	}
	other := strings.Repeat("ab", 32)
	if code, _ := post(`{"asset":"BTC","reason":"theft","tx":"` + other + `"}`); code != http.StatusNoContent {
		t.Fatalf("halt for another transaction = %d; want 204", code)
	}
	if hs := w.cs.Halts(); len(hs) != 2 || hs[0].Asset != "BTC" || hs[0].Reason != "theft" || hs[1].Asset != "ETH" {
		t.Fatalf("halts = %+v", hs)
	}
	if _, err := w.cs.Sign(w.psbtPaying(pay(1, 30_000_000))); !errors.Is(err, ErrHalted) {
		t.Fatalf("after the halt for another transaction, Sign = %v; want ErrHalted", err)
	}
}
