// Package api is kinko's HTTP API and operator console, served by the core:
// JSON under /v1 (the OpenAPI document is openapi.json beside this file and
// is served at /v1/openapi.json), problem+json errors, idempotency keys on
// every state-changing POST, strict decoding, paging; server-rendered
// console pages under /console and the public status page at /status.
package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"kinko/internal/auth"
	"kinko/internal/core"
	"kinko/internal/metrics"
	"kinko/internal/people"
	"kinko/internal/watch"
)

// Config configures the API.
type Config struct {
	Core    *core.Core
	DataDir string // secrets/ and api/ (idempotency records) live here
	Argon2  auth.Argon2
	Logger  *slog.Logger
	Now     func() time.Time
	// SessionTTL is how long a login lasts; default 8 hours.
	SessionTTL time.Duration
	// InsecureCookies drops the Secure flag so the console works over plain
	// HTTP on loopback in development. Never in service.
	InsecureCookies bool
	// LoginRate bounds login attempts per client address per minute;
	// default 20.
	LoginRate int
	// Net is the Bitcoin network of the wallets; default regtest.
	Net *chaincfg.Params
	// Pending, if set, lists the deposits the chain watcher has seen and
	// not yet credited (in the mempool or below the confirmations).
	Pending func() []watch.Pending
	// Metrics, if set, is served at /metrics.
	Metrics *metrics.Metrics
	// Refuse, if set, says whether the core refuses to serve (its
	// witnesses contradict its journal): every route but the journal's
	// evidence then answers 503, /healthz and /readyz included.
	Refuse func() *Refusal
	// Ready, if set, says why the core is not ready to serve (GET /readyz
	// answers 503 with them), nothing when it is.
	Ready func() []string
}

// Server serves the API and console.
type Server struct {
	cfg    Config
	core   *core.Core
	log    *slog.Logger
	now    func() time.Time
	sealer *auth.Sealer
	csrf   []byte
	idem   *idemStore
	limit  *limiter
	mux    *http.ServeMux
	routes []Route
	pages  *pages
	// streamToken guards the raw journal stream the co-signer reads;
	// signerToken the hot signer's routes; watcherToken a separate
	// watcher's.
	streamToken, signerToken, watcherToken string
	// reconciled returns the chain watcher's differences per wallet.
	reconciled func() map[uint32]int64
	// cer are the WebAuthn ceremonies in flight.
	cer ceremonies
}

// Route is one registered route, for the OpenAPI check and the docs.
type Route struct {
	Method, Path string
	api          bool // part of the JSON API (and so of openapi.json)
}

// New returns a server. Close releases its store.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.Argon2.Time == 0 {
		cfg.Argon2 = auth.DefaultArgon2
	}
	if cfg.LoginRate <= 0 {
		cfg.LoginRate = 20
	}
	if cfg.Net == nil {
		cfg.Net = &chaincfg.RegressionNetParams
	}
	sealer, err := auth.LoadOrCreateSealer(filepath.Join(cfg.DataDir, "secrets", "totp.key"))
	if err != nil {
		return nil, err
	}
	csrf, err := auth.LoadOrCreateSealer(filepath.Join(cfg.DataDir, "secrets", "csrf.key"))
	if err != nil {
		return nil, err
	}
	tok, err := loadOrCreateToken(filepath.Join(cfg.DataDir, "secrets", "stream.token"))
	if err != nil {
		return nil, err
	}
	stok, err := loadOrCreateToken(filepath.Join(cfg.DataDir, "secrets", "signer.token"))
	if err != nil {
		return nil, err
	}
	wtok, err := loadOrCreateToken(filepath.Join(cfg.DataDir, "secrets", "watcher.token"))
	if err != nil {
		return nil, err
	}
	idem, err := openIdem(filepath.Join(cfg.DataDir, "api"))
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, core: cfg.Core, log: cfg.Logger, now: cfg.Now, sealer: sealer, csrf: csrf.Key(),
		idem: idem, limit: newLimiter(cfg.LoginRate, time.Minute), mux: http.NewServeMux(), streamToken: tok, signerToken: stok, watcherToken: wtok}
	if s.pages, err = loadPages(); err != nil {
		idem.Close()
		return nil, err
	}
	s.register()
	return s, nil
}

// SetPending sets where pending deposits come from (the chain watcher,
// which may start after the server). Call it before serving.
func (s *Server) SetPending(f func() []watch.Pending) { s.cfg.Pending = f }

// Close releases the server's store.
func (s *Server) Close() error { return s.idem.Close() }

// Routes returns the registered routes.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

func (s *Server) handle(method, path string, api bool, h http.HandlerFunc) {
	s.routes = append(s.routes, Route{Method: method, Path: path, api: api})
	s.mux.HandleFunc(method+" "+path, h)
}

// ServeHTTP serves a request with the security headers every answer
// carries, and turns a panic into a generic 500.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	if s.refused(w, r) {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panic", "path", r.URL.Path, "panic", fmt.Sprint(v))
			writeProblem(w, http.StatusInternalServerError, "internal error", "")
		}
	}()
	s.mux.ServeHTTP(w, r)
}

// Principal is who a request acts as.
type Principal struct {
	Session people.Session
	Token   [32]byte
}

var errUnauthenticated = errors.New("not logged in or session ended")

// principal finds the session of a request: a bearer token, or the
// console's cookie.
func (s *Server) principal(r *http.Request) (Principal, error) {
	tok := ""
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		tok = strings.TrimPrefix(a, "Bearer ")
	} else if c, err := r.Cookie(cookieName); err == nil {
		tok = c.Value
	}
	if tok == "" || len(tok) > 128 {
		return Principal{}, errUnauthenticated
	}
	h := auth.HashToken(tok)
	var ss people.Session
	var ok bool
	s.core.Read(func(st *core.State) { ss, ok = st.People.Session(h) })
	if !ok || !ss.Valid(s.now().UnixNano()) {
		return Principal{}, errUnauthenticated
	}
	return Principal{Session: ss, Token: h}, nil
}

// submit journals a command and returns its outcome's value, or the error
// the command or the core gave.
func (s *Server) submit(ctx context.Context, cmd core.Command) (any, error) {
	o, err := s.core.Submit(ctx, s.now(), cmd)
	if err != nil {
		return nil, err
	}
	if o.Err != nil {
		return o.Value, o.Err
	}
	return o.Value, o.EventErr()
}

// fail writes the problem for err: a known error with its text, an
// unknown one as a generic 500 whose detail only the log sees.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errBadJSON):
		writeProblem(w, http.StatusBadRequest, "malformed request", err.Error())
		return
	case errors.Is(err, errUnauthenticated):
		writeProblem(w, http.StatusUnauthorized, "unauthenticated", err.Error())
		return
	case errors.Is(err, errForbidden):
		writeProblem(w, http.StatusForbidden, "forbidden", err.Error())
		return
	}
	status, title, known := statusOf(err)
	if !known {
		s.log.Error("request failed", "path", r.URL.Path, "err", err)
		writeProblem(w, status, title, "")
		return
	}
	writeProblem(w, status, title, err.Error())
}

var errForbidden = errors.New("your role does not allow this")

// clientAddr is the address rate limits count by.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limiter counts attempts per key in fixed windows.
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	counts map[string]*window
}

type window struct {
	start time.Time
	n     int
}

// maxLimiterKeys bounds the keys a limiter tracks.
const maxLimiterKeys = 100_000

func newLimiter(max int, w time.Duration) *limiter {
	return &limiter{max: max, window: w, counts: map[string]*window{}}
}

// allow counts an attempt by key and reports whether it is within the limit.
func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.counts[key]
	if !ok || now.Sub(w.start) >= l.window {
		if !ok && len(l.counts) >= maxLimiterKeys {
			for k, v := range l.counts {
				if now.Sub(v.start) >= l.window {
					delete(l.counts, k)
				}
			}
			if len(l.counts) >= maxLimiterKeys {
				return false
			}
		}
		w = &window{start: now}
		l.counts[key] = w
	}
	w.n++
	return w.n <= l.max
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// loadOrCreateToken reads a token file, or makes one (0600).
func loadOrCreateToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	tok, _, err := auth.NewToken()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	return tok, nil
}
