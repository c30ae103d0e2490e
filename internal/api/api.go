// Package api is kinko's HTTP API and operator console, served by the core:
// JSON under /v1 (the OpenAPI document is openapi.json beside this file and
// is served at /v1/openapi.json), problem+json errors, idempotency keys on
// every state-changing POST, strict decoding, paging; server-rendered
// console pages under /console and the public status page at /status.
package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"kinko/internal/auth"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/metrics"
	"kinko/internal/people"
	"kinko/internal/secrets"
	"kinko/internal/watch"
)

// Config configures the API.
type Config struct {
	Core    *core.Core
	DataDir string // api/ (idempotency records, credential store) lives here
	// SecretsDir holds the host's keys and tokens, outside the data
	// directory (empty: DataDir.secrets; internal/secrets). A data
	// directory made before keeps them in DataDir/secrets: read there,
	// with a warning.
	SecretsDir string
	Argon2     auth.Argon2
	Logger     *slog.Logger
	Now        func() time.Time
	// SessionTTL is how long a login lasts; default 8 hours.
	SessionTTL time.Duration
	// InsecureCookies drops the Secure flag so the console works over plain
	// HTTP on loopback in development. Never in service.
	InsecureCookies bool
	// LoginRate bounds login attempts per client address per minute;
	// default 20 (Limits.LoginAddr).
	LoginRate int
	// Limits are the token buckets and the hash gate (DefaultLimits).
	Limits Limits
	// Mail, if its Addr is set, sends every notice by e-mail.
	Mail MailConfig
	// PublicURL is the API's address as customers reach it: the freeze
	// links of notices point there (default http://localhost).
	PublicURL string
	// Net is the Bitcoin network of the wallets; default regtest.
	Net *chaincfg.Params
	// SafeArtifacts, if set, are the installed Safe contracts that derive
	// the deposit addresses of Ethereum Safe wallets (ethwallet/book);
	// without them an Ether deposit address is refused.
	SafeArtifacts *safe.Artifacts
	// Yen, if set, is the bank and provider connector (SetYen).
	Yen YenConnector
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
	limit  *limiter // operators' and the console's sign-in, by address
	// lim are the customers' buckets, gate the argon2id hashes at once,
	// ghosts the lock-outs of names that are nobody's, dummy a hash of
	// the configured cost checked for them.
	lim struct {
		loginAddr, loginAccount, signUpAddr, signUpAccount, stepAddr, stepSession, stepCustomer *limiter
	}
	gate   *hashGate
	ghosts phantoms
	dummy  string
	// idemKey seals the idempotency records' answers; freezeKey signs
	// the notices' freeze links.
	idemKey   *auth.Sealer
	freezeKey []byte
	mailer    *mailer
	mux       *http.ServeMux
	routes    []Route
	pages     *pages
	// streamToken guards the raw journal stream the co-signer reads;
	// signerToken the hot signer's routes; watcherToken a separate
	// watcher's.
	streamToken, signerToken, watcherToken string
	// reconciled returns the chain watcher's differences per wallet.
	reconciled func() map[uint32]int64
	// cer are the WebAuthn ceremonies in flight.
	cer ceremonies
	// por is the proof-of-reserves routes' state.
	por porAPI
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
	cfg.Limits.fill(cfg.LoginRate)
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://localhost"
	}
	sec, err := secrets.Open(cfg.SecretsDir, cfg.DataDir, cfg.Logger)
	if err != nil {
		return nil, err
	}
	sealer, err := auth.LoadOrCreateSealer(sec.File("totp.key"))
	if err != nil {
		return nil, err
	}
	csrf, err := auth.LoadOrCreateSealer(sec.File("csrf.key"))
	if err != nil {
		return nil, err
	}
	idemKey, err := auth.LoadOrCreateSealer(sec.File("idempotency.key"))
	if err != nil {
		return nil, err
	}
	freezeKey, err := auth.LoadOrCreateSealer(sec.File("freeze.key"))
	if err != nil {
		return nil, err
	}
	tok, err := loadOrCreateToken(sec.File("stream.token"))
	if err != nil {
		return nil, err
	}
	stok, err := loadOrCreateToken(sec.File("signer.token"))
	if err != nil {
		return nil, err
	}
	wtok, err := loadOrCreateToken(sec.File("watcher.token"))
	if err != nil {
		return nil, err
	}
	// A hash of the configured cost, checked for names that are nobody's:
	// the same work, so the same time, as for a customer.
	dummyPW, _, err := auth.NewToken()
	if err != nil {
		return nil, err
	}
	dummy, err := auth.HashPassword(dummyPW, cfg.Argon2)
	if err != nil {
		return nil, err
	}
	idem, err := openIdem(filepath.Join(cfg.DataDir, "api"))
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, core: cfg.Core, log: cfg.Logger, now: cfg.Now, sealer: sealer, csrf: csrf.Key(), idemKey: idemKey, freezeKey: freezeKey.Key(),
		idem: idem, limit: newLimiter(PerMinute(cfg.LoginRate)), gate: newHashGate(cfg.Limits), dummy: dummy,
		mux: http.NewServeMux(), streamToken: tok, signerToken: stok, watcherToken: wtok}
	l := cfg.Limits
	s.lim.loginAddr, s.lim.loginAccount = newLimiter(l.LoginAddr), newLimiter(l.LoginAccount)
	s.lim.signUpAddr, s.lim.signUpAccount = newLimiter(l.SignUpAddr), newLimiter(l.SignUpAccount)
	s.lim.stepAddr, s.lim.stepSession, s.lim.stepCustomer = newLimiter(l.StepUpAddr), newLimiter(l.StepUpSession), newLimiter(l.StepUpCustomer)
	if s.pages, err = loadPages(); err != nil {
		idem.Close()
		return nil, err
	}
	if cfg.Mail.Addr != "" {
		if s.mailer, err = s.newMailer(cfg.Mail); err != nil {
			idem.Close()
			return nil, err
		}
	}
	s.register()
	return s, nil
}

// SetPending sets where pending deposits come from (the chain watcher,
// which may start after the server). Call it before serving.
func (s *Server) SetPending(f func() []watch.Pending) { s.cfg.Pending = f }

// SetSafeArtifacts sets the installed Safe contracts that derive Ether
// deposit addresses (Config.SafeArtifacts). Call it before serving.
func (s *Server) SetSafeArtifacts(a *safe.Artifacts) { s.cfg.SafeArtifacts = a }

// Close stops the mailer and releases the server's store.
func (s *Server) Close() error {
	if s.mailer != nil {
		s.mailer.stop()
	}
	return s.idem.Close()
}

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
	if h, pattern := s.mux.Handler(r); pattern == "" {
		s.unrouted(w, r, h)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// unrouted answers a request no route takes: what the mux would do (a
// redirect to the canonical path passes), but a 404 or a 405 (with Allow)
// as a problem like every other error.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request, h http.Handler) {
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	switch {
	case rec.status >= 300 && rec.status < 400:
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
	case rec.status == http.StatusMethodNotAllowed:
		w.Header().Set("Allow", rec.header.Get("Allow"))
		writeProblemDoc(w, Problem{Status: http.StatusMethodNotAllowed, Title: "method not allowed", Code: "method_not_allowed",
			Detail: fmt.Sprintf("%s is not served on %s; allowed: %s", r.Method, r.URL.Path, rec.header.Get("Allow"))})
	default:
		notFound(w, r)
	}
}

// notFound answers 404 as a problem.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeProblemDoc(w, Problem{Status: http.StatusNotFound, Title: "not found", Code: "route_unknown", Detail: "no route serves " + r.URL.Path})
}

// recorder keeps what a handler answers, for unrouted.
type recorder struct {
	header http.Header
	status int
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return len(b), nil
}
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

// Principal is who a request acts as.
type Principal struct {
	Session people.Session
	Token   [32]byte
}

var errUnauthenticated = errors.New("not logged in or session ended")

// principal finds the session of a request: a bearer token, or the
// console's cookie. The JSON API (/v1) takes the cookie only for reads
// (the console's links) or, for anything that writes, with the page's
// own Origin and the session's CSRF token in X-CSRF-Token: a browser
// sends the cookie with a form another site posts, never that header
// (errCSRF).
func (s *Server) principal(r *http.Request) (Principal, error) {
	tok, cookie := "", false
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		tok = strings.TrimPrefix(a, "Bearer ")
	} else if c, err := r.Cookie(cookieName); err == nil {
		tok, cookie = c.Value, true
	}
	p, err := s.sessionOf(tok)
	if err != nil {
		return p, err
	}
	if cookie && strings.HasPrefix(r.URL.Path, "/v1/") && !safeMethod(r.Method) {
		if !s.sameOrigin(r, true) {
			return Principal{}, fmt.Errorf("%w: a cookie-borne request must come from this site's own pages (Origin)", errCSRF)
		}
		if !hmac.Equal([]byte(r.Header.Get("X-CSRF-Token")), []byte(s.csrfFor(p.Token))) {
			return Principal{}, fmt.Errorf("%w: a cookie-borne request needs the session's X-CSRF-Token; API clients send a bearer token", errCSRF)
		}
	}
	return p, nil
}

// sessionOf is the live session of a token, from a bearer header or a
// cookie.
func (s *Server) sessionOf(tok string) (Principal, error) {
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

// errCSRF refuses a cookie-borne write that may come from another site.
var errCSRF = errors.New("cross-site request refused")

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin reports whether a request comes from this server's own
// pages. Browsers say so in Sec-Fetch-Site (a header no page can set):
// "same-origin". Without it, an Origin equal to this server's (scheme,
// host and port as the request reached it). The site's pages send
// "Origin: null" under its Referrer-Policy (no-referrer), so Origin alone
// is not enough for them. A request with neither header passes only when
// need is false: browsers send them with every cross-origin POST and every
// fetch, so their absence means a client that is not another site's page.
func (s *Server) sameOrigin(r *http.Request, need bool) bool {
	o := r.Header.Get("Origin")
	scheme := "https"
	if s.cfg.InsecureCookies && r.TLS == nil {
		scheme = "http"
	}
	if o != "" && o != "null" && o != scheme+"://"+r.Host {
		return false
	}
	if sf := r.Header.Get("Sec-Fetch-Site"); sf != "" {
		return sf == "same-origin"
	}
	if o == "" {
		return !need
	}
	return o != "null"
}

// submit journals a command and returns its outcome's value, or the error
// the command or the core gave.
func (s *Server) submit(ctx context.Context, cmd core.Command) (any, error) {
	o, err := s.core.Submit(ctx, s.now(), cmd)
	if err != nil {
		return nil, err
	}
	s.pokeMailer()
	if o.Err != nil {
		return o.Value, o.Err
	}
	return o.Value, o.EventErr()
}

// fail writes the problem for err: a known error with its code and its
// text (package names dropped; a halt without who halted it), a bound's
// field, limit and value when it names them; an unknown one as a generic
// 500 whose detail only the log sees.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	p, wait := s.problem(r, err)
	writeProblemWait(w, p, wait)
}

// writeProblemWait writes p; a refusal to try now (429) says in
// Retry-After when to try again: wait, at least a second.
func writeProblemWait(w http.ResponseWriter, p Problem, wait time.Duration) {
	if p.Status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.FormatInt(max(int64((wait+time.Second-1)/time.Second), 1), 10))
	}
	writeProblemDoc(w, p)
}

// problem is what fail answers for err: the problem and, for a refusal to
// try now (429), when to try again. The customer app shows the same
// problem's text on its pages.
func (s *Server) problem(r *http.Request, err error) (Problem, time.Duration) {
	var fe *fieldError
	switch {
	case errors.As(err, &fe):
		return Problem{Status: http.StatusBadRequest, Title: "malformed request", Code: "bad_field", Field: fe.field, Detail: fe.Error(), Limit: fe.limit, Value: fe.value}, 0
	case errors.Is(err, errBadJSON):
		p := Problem{Status: http.StatusBadRequest, Title: "malformed request", Code: "malformed_request", Detail: err.Error()}
		var lim interface {
			LimitBroken() (field, limit, value string)
		}
		if errors.As(err, &lim) {
			p.Code = "over_limit"
			p.Field, p.Limit, p.Value = lim.LimitBroken()
		}
		return p, 0
	case errors.Is(err, errUnauthenticated):
		return Problem{Status: http.StatusUnauthorized, Title: "unauthenticated", Detail: err.Error()}, 0
	case errors.Is(err, errCSRF):
		return Problem{Status: http.StatusForbidden, Title: "cross-site request refused", Code: "cross_site", Detail: err.Error()}, 0
	case errors.Is(err, errForbidden):
		return Problem{Status: http.StatusForbidden, Title: "forbidden", Detail: err.Error()}, 0
	case errors.Is(err, errBusy):
		return Problem{Status: http.StatusTooManyRequests, Title: "busy", Detail: err.Error()}, time.Second
	case errors.Is(err, errUnavailable):
		return Problem{Status: http.StatusServiceUnavailable, Title: "unavailable", Code: "unavailable", Detail: strings.TrimPrefix(err.Error(), "unavailable: ")}, 0
	}
	var tm *errTooMany
	if errors.As(err, &tm) {
		return Problem{Status: http.StatusTooManyRequests, Title: "too many attempts", Detail: tm.Error()}, tm.Wait
	}
	p, known := classify(err)
	if !known {
		s.log.Error("request failed", "path", r.URL.Path, "err", err)
		p.Detail = ""
		return p, 0
	}
	var he *controls.HaltedError
	if errors.As(err, &he) {
		p.Detail = s.haltDetail(he.Halt)
	}
	if errors.Is(err, people.ErrFrozen) {
		p.Detail = "withdrawals are frozen; lift the freeze from a fresh login with a step-up code, or ask the exchange"
	}
	return p, 0
}

var errForbidden = errors.New("your role does not allow this")

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
