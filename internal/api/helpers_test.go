package api

import (
	"bytes"
	"context"
	"encoding/base64"
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
	"kinko/internal/custody"
	"kinko/internal/journal"
	"kinko/internal/ledger"
	"kinko/internal/operators"
	"kinko/internal/passkey"
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
	secrets map[string]string // customer email -> TOTP secret
	// team are the operators with their software credentials; who maps
	// an operator's session token to their name, so that do signs what
	// the core asks them to sign.
	team *operators.Team
	who  map[string]string
	// listers ask for and approve the test market (default aiko, ren).
	listers [2]string
	// noSpec leaves the openapi.json check out (spec_test.go).
	noSpec bool
	// loginRate is the server's sign-in limit (benchmarks lift it).
	loginRate int
	// fast leaves the core's invariant check after every apply off, as
	// production runs: for benchmarks.
	fast bool
	// mail, if set, sends notices through this SMTP server.
	mail MailConfig
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

// newEnvEmpty is a core with the assets and no operator: the test
// bootstraps its own.
func newEnvEmpty(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), clock: &clock{t: time.Date(2026, 1, 26, 0, 2, 0, 0, time.UTC)}, logs: &bytes.Buffer{}, secrets: map[string]string{}, who: map[string]string{}}
	e.start()
	o, err := e.core.Submit(context.Background(), e.clock.Now(), core.CreateAssets{Assets: []ledger.Asset{{ID: 1, Code: "JPY", Class: ledger.ClassFiat}, {ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}})
	if err != nil || o.EventErr() != nil {
		t.Fatal(err, o.EventErr())
	}
	return e
}

func newEnvWith(t testing.TB, fast bool) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), clock: &clock{t: time.Date(2026, 1, 26, 0, 2, 0, 0, time.UTC)}, logs: &bytes.Buffer{}, secrets: map[string]string{}, fast: fast,
		who: map[string]string{}}
	if fast {
		e.loginRate = 1 << 20
	}
	e.start()
	ctx := context.Background()
	o, err := e.core.Submit(ctx, e.clock.Now(), core.CreateAssets{Assets: []ledger.Asset{{ID: 1, Code: "JPY", Class: ledger.ClassFiat}, {ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}})
	if err != nil || o.EventErr() != nil {
		t.Fatal(err, o.EventErr())
	}
	var members []operators.Member
	for _, op := range testOperators {
		members = append(members, operators.Member{Name: op.name, Roles: op.roles})
	}
	e.team = operators.New(passkey.RP{ID: "localhost", Origins: []string{e.http.URL}}, "api test", members...)
	for _, cmd := range e.team.Bootstrap(e.clock.Now()) {
		if o, err := e.core.Submit(ctx, e.clock.Now(), cmd); err != nil || o.Err != nil {
			t.Fatal(cmd.Kind(), err, o.Err)
		}
	}
	return e
}

// sign returns cmd signed by its signer's key.
func (e *env) sign(cmd core.Command) core.Command {
	e.t.Helper()
	c, err := e.team.Sign(cmd)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// twoPerson journals a request of kind asked by requester and approved
// by approver, each signed.
func (e *env) twoPerson(kind people.RequestKind, payload any, requester, approver string, role people.Role) {
	e.t.Helper()
	for _, cmd := range e.team.Approved(kind, payload, requester, approver, role, "test", e.clock.Now()) {
		if o, err := e.core.Submit(context.Background(), e.clock.Now(), cmd); err != nil || o.Err != nil {
			e.t.Fatal(cmd.Kind(), err, o.Err)
		}
	}
}

// registerWallet registers w as two admins do: aiko asks, ren approves.
func (e *env) registerWallet(w custody.Wallet) {
	e.t.Helper()
	e.twoPerson(core.KindRegisterWalletRequest, core.RegisterWalletPayload{Wallet: w}, "aiko", "ren", people.RoleAdmin)
}

func (e *env) start() {
	c, err := core.Open(context.Background(), core.Config{Dir: e.dir, CheckInvariants: !e.fast})
	if err != nil {
		e.t.Fatal(err)
	}
	srv, err := New(Config{Core: c, DataDir: e.dir, Argon2: auth.TestArgon2, Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), InsecureCookies: true, LoginRate: e.loginRate,
		Mail: e.mail, PublicURL: "http://kinko.test"})
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

// do sends a request with an optional bearer token and headers. When the
// core asks an operator's session to sign (428), do signs the challenge
// with that operator's key and sends the body again with the assertion
// and the values the answer gave, as the console's script and the CLI do.
func (e *env) do(method, path, token string, body any, headers ...string) resp {
	e.t.Helper()
	r := e.raw(method, path, token, body, headers...)
	name, ok := e.who[token]
	if r.status != http.StatusPreconditionRequired || !ok {
		return r
	}
	var ch SignatureRequired
	r.json(e.t, &ch)
	d, err := base64.RawURLEncoding.DecodeString(ch.Challenge)
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := e.team.Get(name).Key.Assert(ch.RPID, ch.Origin, d)
	if err != nil {
		e.t.Fatal(err)
	}
	m := map[string]json.RawMessage{}
	if body != nil {
		j, _ := json.Marshal(body)
		json.Unmarshal(j, &m)
	}
	m["assertion"] = AssertionJSON(a)
	if ch.ID != "" {
		m["id"], _ = json.Marshal(ch.ID)
	}
	if ch.Expires != nil {
		m["expires"], _ = json.Marshal(ch.Expires)
	}
	return e.raw(method, path, token, m, headers...)
}

// raw sends a request as given.
func (e *env) raw(method, path, token string, body any, headers ...string) resp {
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
	var sent []byte
	if rd != nil {
		sent, _ = io.ReadAll(rd)
		rd = bytes.NewReader(sent)
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
	if !e.noSpec {
		for _, bad := range e.checkSpec(req, sent, res.StatusCode, res.Header.Get("Content-Type"), b) {
			e.t.Errorf("openapi.json: %s", bad)
		}
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// loginOperator signs an operator in with their key and returns the
// token.
func (e *env) loginOperator(name string) string {
	e.t.Helper()
	r := e.raw("POST", "/v1/operators/login/begin", "", BeginRequest{Operator: name})
	if r.status != 200 {
		e.t.Fatalf("login %s begin = %d %s", name, r.status, r.body)
	}
	var begin struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			RPID      string `json:"rpId"`
		} `json:"public_key"`
		Origin string `json:"origin"`
	}
	r.json(e.t, &begin)
	ch, _ := base64.RawURLEncoding.DecodeString(begin.PublicKey.Challenge)
	a, err := e.team.Get(name).Key.Assert(begin.PublicKey.RPID, begin.Origin, ch)
	if err != nil {
		e.t.Fatal(err)
	}
	r = e.raw("POST", "/v1/operators/login/finish", "", FinishRequest{Operator: name, Credential: AssertionJSON(a)})
	if r.status != 200 {
		e.t.Fatalf("login %s finish = %d %s", name, r.status, r.body)
	}
	var lr LoginResponse
	r.json(e.t, &lr)
	e.who[lr.Token] = name
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
