package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"kinko/internal/auth"
	"kinko/internal/core"
	"kinko/internal/journal"
	"kinko/internal/ledger"
	"kinko/internal/people"
)

// clock is a test clock that moves only when told, so that each TOTP code
// falls in a known step.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a core, an API server on loopback, and the people in it.
type env struct {
	t       testing.TB
	dir     string
	core    *core.Core
	srv     *Server
	http    *httptest.Server
	clock   *clock
	logs    *bytes.Buffer
	secrets map[string]string // operator name or customer email -> TOTP secret
	// fast leaves the core's invariant check after every apply off, as
	// production runs: for benchmarks.
	fast bool
}

var testOperators = []struct {
	name  string
	roles []people.Role
}{
	{"aiko", []people.Role{people.RoleAdmin}},
	{"ren", []people.Role{people.RoleAdmin}},
	{"kenji", []people.Role{people.RoleOperator, people.RoleApprover}},
	{"sora", []people.Role{people.RoleCISO}},
}

const testPassword = "correct horse battery staple"

func newEnv(t testing.TB) *env { return newEnvWith(t, false) }

// newBenchEnv is newEnv with the core as production runs it.
func newBenchEnv(t testing.TB) *env { return newEnvWith(t, true) }

func newEnvWith(t testing.TB, fast bool) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), clock: &clock{t: time.Date(2026, 1, 26, 0, 2, 0, 0, time.UTC)}, logs: &bytes.Buffer{}, secrets: map[string]string{}, fast: fast}
	e.start()
	ctx := context.Background()
	o, err := e.core.Submit(ctx, e.clock.Now(), core.CreateAssets{Assets: []ledger.Asset{{ID: 1, Code: "JPY", Class: ledger.ClassFiat}, {ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}})
	if err != nil || o.EventErr() != nil {
		t.Fatal(err, o.EventErr())
	}
	for i, op := range testOperators {
		actor := ""
		if i > 0 {
			actor = "aiko"
		}
		res, err := e.srv.CreateOperator(ctx, actor, CreateOperatorRequest{Name: op.name, Roles: op.roles, Password: testPassword})
		if err != nil {
			t.Fatalf("operator %s: %v", op.name, err)
		}
		e.secrets[op.name] = res.TOTPSecret
	}
	return e
}

func (e *env) start() {
	c, err := core.Open(context.Background(), core.Config{Dir: e.dir, CheckInvariants: !e.fast})
	if err != nil {
		e.t.Fatal(err)
	}
	srv, err := New(Config{Core: c, DataDir: e.dir, Argon2: auth.TestArgon2, Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), InsecureCookies: true})
	if err != nil {
		e.t.Fatal(err)
	}
	e.core, e.srv, e.http = c, srv, httptest.NewServer(srv)
	e.t.Cleanup(e.stop)
}

func (e *env) stop() {
	if e.http == nil {
		return
	}
	e.http.Close()
	e.srv.Close()
	e.core.Close()
	e.http = nil
}

func (e *env) restart() { e.stop(); e.start() }

// code returns a TOTP code for who at the current test time, after moving
// the clock one step so that codes never repeat.
func (e *env) code(who string) string {
	e.clock.Add(auth.Period * time.Second)
	return auth.Code(e.secrets[who], e.clock.Now())
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %d %s: %v", r.status, r.body, err)
	}
}

// do sends a request with an optional bearer token and headers.
func (e *env) do(method, path, token string, body any, headers ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.http.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// loginOperator logs an operator in and returns the token.
func (e *env) loginOperator(name string) string {
	e.t.Helper()
	r := e.do("POST", "/v1/operators/login", "", LoginRequest{Name: name, Password: testPassword, TOTP: e.code(name)})
	if r.status != 200 {
		e.t.Fatalf("login %s = %d %s", name, r.status, r.body)
	}
	var lr LoginResponse
	r.json(e.t, &lr)
	return lr.Token
}

// signUp signs a customer up and logs them in.
func (e *env) signUp(email string) (ledger.OwnerID, string) {
	e.t.Helper()
	r := e.do("POST", "/v1/customers", "", SignUpRequest{Email: email, Name: "Test Customer", Password: testPassword})
	if r.status != 201 {
		e.t.Fatalf("sign up = %d %s", r.status, r.body)
	}
	var sr SignUpResponse
	r.json(e.t, &sr)
	e.secrets[email] = sr.TOTPSecret
	r = e.do("POST", "/v1/customers/login", "", LoginRequest{Email: email, Password: testPassword, TOTP: e.code(email)})
	if r.status != 200 {
		e.t.Fatalf("customer login = %d %s", r.status, r.body)
	}
	var lr LoginResponse
	r.json(e.t, &lr)
	return sr.Customer, lr.Token
}

// journalBytes returns every journal entry's stored encoding.
func (e *env) journalBytes() []byte {
	var all bytes.Buffer
	if err := e.core.Journal().Scan(1, func(en journal.Entry) error { all.Write(en.Encode()); return nil }); err != nil {
		e.t.Fatal(err)
	}
	return all.Bytes()
}
