package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"kinko/internal/auth"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/journal"
	"kinko/internal/ledger"
	"kinko/internal/people"
	"kinko/internal/wallet"
	"kinko/internal/watch"
	"kinko/internal/withdraw"
)

// TestOpenAPIInStep checks the spec and the routes both ways: every API
// route is in openapi.json and every path and method there is served.
func TestOpenAPIInStep(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapiJSON, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json: %v %q", err, doc.OpenAPI)
	}
	spec := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			spec[strings.ToUpper(m)+" "+p] = true
		}
	}
	served := map[string]bool{}
	for _, r := range e.srv.Routes() {
		if r.api {
			served[r.Method+" "+r.Path] = true
		}
	}
	var missing, extra []string
	for k := range served {
		if !spec[k] {
			missing = append(missing, k)
		}
	}
	for k := range spec {
		if !served[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("routes not in openapi.json: %v; in openapi.json but not served: %v", missing, extra)
	}
}

func TestCustomerLoginAndSessions(t *testing.T) {
	e := newEnv(t)
	id, tok := e.signUp("hanako@example.jp")
	r := e.do("GET", "/v1/me", tok, nil)
	var me CustomerView
	r.json(t, &me)
	if r.status != 200 || me.ID != id || me.KYC != people.KYCPending {
		t.Fatalf("GET /v1/me = %d %+v", r.status, me)
	}
	r = e.do("GET", "/v1/me/balances", tok, nil)
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"asset":"BTC"`)) {
		t.Fatalf("balances = %d %s", r.status, r.body)
	}
	// The same email again.
	if r := e.do("POST", "/v1/customers", "", SignUpRequest{Email: "HANAKO@example.jp ", Name: "x", Password: testPassword}); r.status != 409 {
		t.Fatalf("duplicate sign-up = %d %s", r.status, r.body)
	}
	// Wrong password, wrong code, replayed code: refused, said the same way.
	good := e.code("hanako@example.jp")
	bad := []LoginRequest{
		{Email: "hanako@example.jp", Password: "wrong password!", TOTP: good},
		{Email: "hanako@example.jp", Password: testPassword, TOTP: "000000"},
		{Email: "nobody@example.jp", Password: testPassword, TOTP: good},
	}
	for _, b := range bad {
		if r := e.do("POST", "/v1/customers/login", "", b); r.status != 401 {
			t.Errorf("login %+v = %d %s", b, r.status, r.body)
		}
	}
	if r := e.do("POST", "/v1/customers/login", "", LoginRequest{Email: "hanako@example.jp", Password: testPassword, TOTP: good}); r.status != 200 {
		t.Fatalf("good login = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/customers/login", "", LoginRequest{Email: "hanako@example.jp", Password: testPassword, TOTP: good}); r.status != 409 {
		t.Fatalf("replayed TOTP = %d %s; want 409", r.status, r.body)
	}
	// The failed attempts are journaled.
	if n := bytes.Count(e.journalBytes(), []byte(`"Who":"customer"`)); n < 2 {
		t.Errorf("%d failed logins journaled; want at least 2", n)
	}
	// Logout revokes; an expired session is refused.
	if r := e.do("POST", "/v1/session/logout", tok, nil); r.status != 204 {
		t.Fatalf("logout = %d", r.status)
	}
	if r := e.do("GET", "/v1/me", tok, nil); r.status != 401 {
		t.Fatalf("after logout = %d", r.status)
	}
	_, tok2 := e.signUp("taro@example.jp")
	e.clock.Add(9 * time.Hour)
	if r := e.do("GET", "/v1/me", tok2, nil); r.status != 401 {
		t.Fatalf("expired session = %d", r.status)
	}
	// A customer cannot act as an operator.
	if r := e.do("GET", "/v1/customers", tok2, nil); r.status != 401 && r.status != 403 {
		t.Fatalf("customer listing customers = %d", r.status)
	}
}

func TestLockOutAndRateLimit(t *testing.T) {
	e := newEnv(t)
	e.signUp("yuki@example.jp")
	for i := 0; i < people.MaxFailed; i++ {
		e.do("POST", "/v1/customers/login", "", LoginRequest{Email: "yuki@example.jp", Password: "not the password", TOTP: "123456"})
	}
	r := e.do("POST", "/v1/customers/login", "", LoginRequest{Email: "yuki@example.jp", Password: testPassword, TOTP: e.code("yuki@example.jp")})
	if r.status != 429 {
		t.Fatalf("login while locked = %d %s; want 429", r.status, r.body)
	}
	e.clock.Add(16 * time.Minute)
	if r := e.do("POST", "/v1/customers/login", "", LoginRequest{Email: "yuki@example.jp", Password: testPassword, TOTP: e.code("yuki@example.jp")}); r.status != 200 {
		t.Fatalf("login after the lock = %d %s", r.status, r.body)
	}
	// Rate limit by address: 20 attempts a minute.
	got429 := false
	for i := 0; i < 25; i++ {
		if r := e.do("POST", "/v1/operators/login/begin", "", BeginRequest{Operator: "nobody"}); r.status == 429 {
			got429 = true
		}
	}
	if !got429 {
		t.Fatal("no rate limit after 25 attempts")
	}
}

func TestStrictDecodingAndProblems(t *testing.T) {
	e := newEnv(t)
	tok := e.loginOperator("kenji")
	cases := []struct {
		name, body string
		want       int
	}{
		{"unknown field", `{"email":"a@b.jp","name":"n","password":"0123456789x","admin":true}`, 400},
		{"trailing data", `{"email":"a@b.jp","name":"n","password":"0123456789x"} {}`, 400},
		{"not JSON", `{"email":`, 400},
		{"wrong type", `{"email":5}`, 400},
		{"huge", `{"email":"` + strings.Repeat("a", MaxBody) + `"}`, 400},
		{"bad email", `{"email":"nope","name":"n","password":"0123456789x"}`, 422},
		{"short password", `{"email":"a@b.jp","name":"n","password":"short"}`, 422},
	}
	head, _, _ := e.core.Journal().Head()
	for _, c := range cases {
		r := e.do("POST", "/v1/customers", "", c.body)
		if r.status != c.want || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s; want %d problem+json", c.name, r.status, r.header.Get("Content-Type"), c.want)
		}
	}
	if h, _, _ := e.core.Journal().Head(); h != head {
		t.Errorf("bad requests journaled %d entries", h-head)
	}
	if r := e.do("GET", "/v1/customers?limit=100000", tok, nil); r.status != 400 {
		t.Errorf("limit over the bound = %d", r.status)
	}
	// Every answer carries the security headers.
	r := e.do("GET", "/v1/status", "", nil)
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP = %q", csp)
	}
}

func TestIdempotencyKeys(t *testing.T) {
	e := newEnv(t)
	body := SignUpRequest{Email: "idem@example.jp", Name: "I", Password: testPassword}
	r1 := e.do("POST", "/v1/customers", "", body, "Idempotency-Key", "k1")
	r2 := e.do("POST", "/v1/customers", "", body, "Idempotency-Key", "k1")
	if r1.status != 201 || r2.status != 201 || !bytes.Equal(r1.body, r2.body) || r2.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("same key, same body: %d %s / %d %s", r1.status, r1.body, r2.status, r2.body)
	}
	body.Name = "Other"
	if r := e.do("POST", "/v1/customers", "", body, "Idempotency-Key", "k1"); r.status != 409 {
		t.Fatalf("same key, other body = %d", r.status)
	}
	// Remembered across a restart.
	e.restart()
	body.Name = "I"
	if r := e.do("POST", "/v1/customers", "", body, "Idempotency-Key", "k1"); r.status != 201 || !bytes.Equal(r.body, r1.body) {
		t.Fatalf("after restart = %d %s", r.status, r.body)
	}
	var n int
	e.core.Read(func(s *core.State) { n = s.People.CustomerCount() })
	if n != 1 {
		t.Fatalf("%d customers; want 1", n)
	}
}

func TestKYCAndTwoPersonRoles(t *testing.T) {
	e := newEnv(t)
	id, ctok := e.signUp("kyc@example.jp")
	kenji, aiko, ren, sora := e.loginOperator("kenji"), e.loginOperator("aiko"), e.loginOperator("ren"), e.loginOperator("sora")
	path := fmt.Sprintf("/v1/customers/%d/kyc", id)
	if r := e.do("POST", path, ctok, KYCRequest{KYC: people.KYCVerified, Reason: "me"}); r.status != 403 {
		t.Fatalf("customer sets own KYC = %d", r.status)
	}
	if r := e.do("POST", path, sora, KYCRequest{KYC: people.KYCVerified, Reason: "ciso"}); r.status != 403 {
		t.Fatalf("ciso sets KYC = %d %s", r.status, r.body)
	}
	if r := e.do("POST", path, kenji, KYCRequest{KYC: people.KYCVerified, Reason: "passport checked"}); r.status != 200 {
		t.Fatalf("operator sets KYC = %d %s", r.status, r.body)
	}
	e.core.Read(func(s *core.State) {
		if !s.People.CanTrade(id) {
			t.Error("verified customer cannot trade")
		}
	})
	// Role change: requested by an admin, approved by another admin only.
	req := OpenRequestRequest{ID: "roles-1", Kind: people.KindSetRoles, Payload: json.RawMessage(`{"operator":"kenji","roles":["operator"]}`), Reason: "kenji moves team", RequiredRole: people.RoleAdmin}
	if r := e.do("POST", "/v1/requests", kenji, req); r.status != 403 {
		t.Fatalf("non-admin asks a role change = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/requests", aiko, req); r.status != 201 {
		t.Fatalf("open request = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/requests/roles-1/approve", aiko, DecideRequest{Reason: "mine"}); r.status != 403 {
		t.Fatalf("self-approval = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/requests/roles-1/approve", kenji, DecideRequest{Reason: "sure"}); r.status != 403 {
		t.Fatalf("approval by the wrong role = %d %s", r.status, r.body)
	}
	e.core.Read(func(s *core.State) {
		if o, _ := s.People.Operator("kenji"); !o.HasRole(people.RoleApprover) {
			t.Fatal("roles changed before approval")
		}
	})
	if r := e.do("POST", "/v1/requests/roles-1/approve", ren, DecideRequest{Reason: "agreed in the committee"}); r.status != 200 {
		t.Fatalf("approval = %d %s", r.status, r.body)
	}
	e.core.Read(func(s *core.State) {
		if o, _ := s.People.Operator("kenji"); o.HasRole(people.RoleApprover) || !o.HasRole(people.RoleOperator) {
			t.Fatalf("roles after approval = %v", o.Roles)
		}
	})
	if r := e.do("POST", "/v1/requests/roles-1/approve", ren, DecideRequest{Reason: "again"}); r.status != 409 {
		t.Fatalf("approving twice = %d", r.status)
	}
	// Approvals expire.
	req.ID, req.TTLSeconds = "roles-2", 60
	if r := e.do("POST", "/v1/requests", aiko, req); r.status != 201 {
		t.Fatalf("open = %d %s", r.status, r.body)
	}
	e.clock.Add(2 * time.Minute)
	if r := e.do("POST", "/v1/requests/roles-2/approve", ren, DecideRequest{Reason: "late"}); r.status != 409 {
		t.Fatalf("expired approval = %d %s", r.status, r.body)
	}
}

func TestAssetListingGovernance(t *testing.T) {
	e := newEnv(t)
	kenji, sora := e.loginOperator("kenji"), e.loginOperator("sora")
	if r := e.do("POST", "/v1/assets", kenji, ProposeAssetRequest{ID: 9, Code: "XMR", Decimals: 12, Class: "chain", Reason: "customer demand"}); r.status != 201 {
		t.Fatalf("propose = %d %s", r.status, r.body)
	}
	enabled := func() bool {
		var ok bool
		e.core.Read(func(s *core.State) { ok = s.People.AssetEnabled(9) })
		return ok
	}
	if enabled() {
		t.Fatal("a proposed asset is enabled")
	}
	listing := OpenRequestRequest{ID: "list-xmr", Kind: people.KindListAsset, Payload: json.RawMessage(`{"asset":"XMR"}`), Reason: "list XMR", RequiredRole: people.RoleApprover}
	if r := e.do("POST", "/v1/requests", sora, listing); r.status != 409 {
		t.Fatalf("listing before review = %d %s", r.status, r.body)
	}
	review := ReviewRequest{AMLRisk: "high: privacy coin, amounts hidden", ChainMaturity: "mainnet since 2014", Multisig: "native multisig, immature tooling", CustodyPlan: "cold 98%, 2-of-3", Recommendation: "list"}
	if r := e.do("POST", "/v1/assets/XMR/review", kenji, review); r.status != 403 {
		t.Fatalf("review by a non-ciso = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/assets/XMR/review", sora, review); r.status != 201 {
		t.Fatalf("review = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/requests", sora, listing); r.status != 201 {
		t.Fatalf("listing request = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/requests/list-xmr/approve", sora, DecideRequest{Reason: "mine"}); r.status != 403 {
		t.Fatalf("self-approval = %d", r.status)
	}
	if r := e.do("POST", "/v1/requests/list-xmr/approve", kenji, DecideRequest{Reason: "committee approved"}); r.status != 200 {
		t.Fatalf("approval = %d %s", r.status, r.body)
	}
	if !enabled() {
		t.Fatal("asset not enabled after approval")
	}
}

// TestNoSecretsInJournalOrLogs signs up, logs in and fails logins, then
// looks for the password, TOTP seeds and session tokens in the journal's
// bytes and the logs.
func TestNoSecretsInJournalOrLogs(t *testing.T) {
	e := newEnv(t)
	_, tok := e.signUp("secret@example.jp")
	e.do("POST", "/v1/customers/login", "", LoginRequest{Email: "secret@example.jp", Password: "wrong wrong wrong", TOTP: "111111"})
	otok := e.loginOperator("aiko")
	j := e.journalBytes()
	logs := e.logs.Bytes()
	needles := map[string]string{"password": testPassword, "customer token": tok, "operator token": otok}
	for who, s := range e.secrets {
		needles["TOTP seed of "+who] = s
	}
	for what, s := range needles {
		if bytes.Contains(j, []byte(s)) {
			t.Errorf("%s found in the journal in clear", what)
		}
		if bytes.Contains(logs, []byte(s)) {
			t.Errorf("%s found in the logs in clear", what)
		}
	}
	if len(j) < 1000 {
		t.Fatalf("journal of %d bytes: the test looked at nothing", len(j))
	}
}

func TestConsoleCSRFAndLogin(t *testing.T) {
	e := newEnv(t)
	tok := e.loginOperator("kenji")
	post := func(path, form string, cookies ...*http.Cookie) *http.Response {
		req, _ := http.NewRequest("POST", e.http.URL+path, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range cookies {
			req.AddCookie(c)
		}
		cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	sess := &http.Cookie{Name: cookieName, Value: tok}
	id, _ := e.signUp("form@example.jp")
	form := fmt.Sprintf("kyc=verified&reason=ok")
	if res := post(fmt.Sprintf("/console/customers/%d/kyc", id), form, sess); res.StatusCode != 403 {
		t.Fatalf("form post without CSRF = %d", res.StatusCode)
	}
	if res := post(fmt.Sprintf("/console/customers/%d/kyc", id), form+"&csrf=deadbeef", sess); res.StatusCode != 403 {
		t.Fatalf("form post with a wrong CSRF token = %d", res.StatusCode)
	}
	var p Principal
	req, _ := http.NewRequest("GET", "/", nil)
	req.AddCookie(sess)
	p, _ = e.srv.principal(req)
	if res := post(fmt.Sprintf("/console/customers/%d/kyc", id), form+"&csrf="+e.srv.csrfFor(p.Token), sess); res.StatusCode != 303 {
		t.Fatalf("form post with CSRF = %d", res.StatusCode)
	}
	e.core.Read(func(s *core.State) {
		if !s.People.CanTrade(id) {
			t.Error("KYC not set by the form")
		}
	})
	// The login form needs its double-submit token too.
	if res := post("/console/login", "name=kenji&password=x&totp=123456"); res.StatusCode != 403 {
		t.Fatalf("login form without CSRF = %d", res.StatusCode)
	}
	// The console sets a hardened cookie.
	e.srv.cfg.InsecureCookies = false
	c := e.srv.cookie(cookieName, "v", 10)
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie = %+v", c)
	}
}

func TestJournalRoutes(t *testing.T) {
	e := newEnv(t)
	tok := e.loginOperator("sora")
	r := e.do("GET", "/v1/journal?limit=2", tok, nil)
	var page struct {
		Items []EntryView `json:"items"`
		Next  string      `json:"next"`
	}
	r.json(t, &page)
	if r.status != 200 || len(page.Items) != 2 || page.Next != "3" {
		t.Fatalf("journal page = %d %+v", r.status, page)
	}
	r = e.do("GET", "/v1/journal/verify", tok, nil)
	var v VerifyView
	r.json(t, &v)
	if !v.OK || v.Entries < 5 || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(v.Head) {
		t.Fatalf("verify = %+v", v)
	}
	if r := e.do("GET", "/v1/journal", "", nil); r.status != 401 {
		t.Fatalf("journal without login = %d", r.status)
	}
	r = e.do("GET", "/v1/reserves", tok, nil)
	var rep struct {
		Rows []struct {
			Asset      string `json:"asset"`
			Segregated bool   `json:"segregated"`
		} `json:"rows"`
	}
	r.json(t, &rep)
	if r.status != 200 || len(rep.Rows) != 2 || rep.Rows[1].Asset != "BTC" || !rep.Rows[1].Segregated {
		t.Fatalf("reserves = %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/reserves?format=daily-csv", tok, nil); r.status != 200 || !bytes.HasPrefix(r.body, []byte("date,customer,asset,quantity")) {
		t.Fatalf("daily CSV = %d %s", r.status, r.body)
	}
	_ = journal.HashSize
}

// TestStepUpForMoneyMoves checks the fresh-TOTP check that routes moving
// money call: a current code passes once; a replayed, stale or missing code
// does not.
func TestStepUpForMoneyMoves(t *testing.T) {
	e := newEnv(t)
	_, tok := e.signUp("step@example.jp")
	req := func(code string) *http.Request {
		r, _ := http.NewRequest("POST", "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		if code != "" {
			r.Header.Set("X-TOTP", code)
		}
		return r
	}
	p, err := e.srv.principal(req(""))
	if err != nil {
		t.Fatal(err)
	}
	code := e.code("step@example.jp")
	if err := e.srv.StepUp(req(code), p); err != nil {
		t.Fatalf("StepUp(fresh code) = %v", err)
	}
	if err := e.srv.StepUp(req(code), p); !errors.Is(err, people.ErrTOTPReplayed) {
		t.Fatalf("StepUp(same code again) = %v; want ErrTOTPReplayed", err)
	}
	if err := e.srv.StepUp(req(""), p); !errors.Is(err, errForbidden) {
		t.Fatalf("StepUp(no code) = %v", err)
	}
	stale := auth.Code(e.secrets["step@example.jp"], e.clock.Now().Add(-10*time.Minute))
	if err := e.srv.StepUp(req(stale), p); !errors.Is(err, errForbidden) {
		t.Fatalf("StepUp(stale code) = %v", err)
	}
}

func TestHistoryPaging(t *testing.T) {
	e := newEnv(t)
	id, tok := e.signUp("hist@example.jp")
	bank := ledger.AccountKey{Owner: ledger.OwnerHouseMin + 110, Asset: 1, Kind: ledger.KindWallet}
	mine := ledger.AccountKey{Owner: id, Asset: 1, Kind: ledger.KindAvailable}
	var ts []ledger.Transfer
	for i := uint64(1); i <= 7; i++ {
		ts = append(ts, ledger.Transfer{ID: ledger.ID{Lo: i}, Debit: bank, Credit: mine, Amount: ledger.AmountOf(i * 1000), Code: 1})
	}
	for _, cmd := range []core.Command{core.CreateAccounts{Keys: []ledger.AccountKey{bank}}, core.CreateTransfers{Transfers: ts}} {
		if o, err := e.core.Submit(context.Background(), e.clock.Now(), cmd); err != nil || o.EventErr() != nil {
			t.Fatal(err, o.EventErr())
		}
	}
	var all []HistoryItem
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		r := e.do("GET", "/v1/me/history?limit=3"+cursor, tok, nil)
		var page struct {
			Items []HistoryItem `json:"items"`
			Next  string        `json:"next"`
		}
		r.json(t, &page)
		if r.status != 200 || len(page.Items) > 3 {
			t.Fatalf("history = %d %s", r.status, r.body)
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			break
		}
		cursor = "&cursor=" + page.Next
	}
	if len(all) != 7 || all[0].Amount != ledger.AmountOf(1000) || all[6].Amount != ledger.AmountOf(7000) || all[0].Way != "in" {
		t.Fatalf("history = %+v", all)
	}
	if r := e.do("GET", "/v1/me/balances", tok, nil); !bytes.Contains(r.body, []byte(`"balance":"28000"`)) {
		t.Fatalf("balances = %s", r.body)
	}
}

// TestDepositAddressesMatchDescriptor: the addresses handed to customers
// are the descriptor's first receive addresses, in order, as any wallet
// importing the descriptor computes them.
func TestDepositAddressesMatchDescriptor(t *testing.T) {
	e := newEnv(t)
	desc := "wsh(sortedmulti(2,[fee1fc19/48h/1h/0h/2h]tpubDEQGLGHLa6g756NXby6QirvHMkxKw19wsAtUaZuGzsPaQRPRPH1Twd468TyyAtZpF2Sp2d9HRz9b1vwTM5128tNg3mmSv8iKEqtgdkmjbbU/0/*,[6964116e/48h/1h/0h/2h]tpubDEHEMt8yShUzTxkbpDdFYKHaRoGqekYZcwfVUX3FxLcTTHS227rryUt4AuqisHcfwgoXgC2aT2aEbcyasU8whHVLMKzUndTxXfFUoiTWMPv/0/*,[dce0ec91/48h/1h/0h/2h]tpubDEqV3zs1XHLPCkym9RVb7PkE1KfhvwbnLuAchvFQqGyTCiKZSc5u3QM3yCz3NXNSnbEMmEvjizLx31GqH76assDU2bBPChie6pq42BtKjaz/0/*))#sw2cr4g2"
	e.registerWallet(custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: 2, Descriptor: desc, Owner: ledger.OwnerHouseMin + 100})
	d, err := wallet.Parse(desc, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		_, tok := e.signUp(fmt.Sprintf("dep%d@example.jp", i))
		r := e.do("POST", "/v1/me/deposit-addresses", tok, DepositAddressRequest{Asset: "btc"})
		var v DepositAddressView
		r.json(t, &v)
		want, _, _ := d.Address(0, uint32(i))
		if r.status != 201 || v.Address != want.EncodeAddress() || v.Index != uint32(i) {
			t.Fatalf("address %d = %d %+v; want %s", i, r.status, v, want)
		}
	}
	_, tok := e.signUp("nodeposit@example.jp")
	if r := e.do("POST", "/v1/me/deposit-addresses", tok, DepositAddressRequest{Asset: "XMR"}); r.status != 422 {
		t.Fatalf("address of an unknown asset = %d %s", r.status, r.body)
	}
}

// TestMyDeposits shows a customer their pending deposits (from the chain
// watcher, whose own tests run on btcd) and their credited ones.
func TestMyDeposits(t *testing.T) {
	e := newEnv(t)
	id, tok := e.signUp("pend@example.jp")
	_, other := e.signUp("other@example.jp")
	e.srv.SetPending(func() []watch.Pending {
		return []watch.Pending{{Outpoint: custody.Outpoint{TxID: [32]byte{1}}, Customer: id, Amount: 5000, Confirmations: 2}}
	})
	r := e.do("GET", "/v1/me/deposits", tok, nil)
	var v struct {
		Items []DepositView `json:"items"`
	}
	r.json(t, &v)
	if r.status != 200 || len(v.Items) != 1 || v.Items[0].State != "pending" || v.Items[0].Confirmations != 2 {
		t.Fatalf("deposits = %d %s", r.status, r.body)
	}
	r = e.do("GET", "/v1/me/deposits", other, nil)
	r.json(t, &v)
	if len(v.Items) != 0 {
		t.Fatalf("another customer sees %+v", v.Items)
	}
}

// TestWithdrawalFlow: a customer registers an intent key and an address
// with fresh TOTP codes, waits out the cool-down, and asks for a signed
// withdrawal, which is held and queued; the bad inputs are refused with
// nothing held.
func TestWithdrawalFlow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id, tok := e.signUp("wd@example.jp")
	hot := ledger.AccountKey{Owner: ledger.OwnerHouseMin + 101, Asset: 2, Kind: ledger.KindWallet}
	e.registerWallet(custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: 2, Descriptor: "hot", Owner: hot.Owner})
	for _, cmd := range []core.Command{
		core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Lo: 1}, Debit: hot, Credit: ledger.AccountKey{Owner: id, Asset: 2, Kind: ledger.KindAvailable}, Amount: ledger.AmountOf(1_000_000)}}},
		core.SetKYC{Customer: id, KYC: people.KYCVerified, Actor: "aiko", Reason: "checked"},
	} {
		if o, err := e.core.Submit(ctx, e.clock.Now(), cmd); err != nil || o.Err != nil || o.EventErr() != nil {
			t.Fatal(err, o.Err, o.EventErr())
		}
	}
	pub, priv, _ := ed25519.GenerateKey(nil)
	code := func() string { return e.code("wd@example.jp") }
	if r := e.do("POST", "/v1/me/intent-keys", tok, IntentKeyRequest{PublicKey: hex.EncodeToString(pub)}); r.status != 403 {
		t.Fatalf("key without a TOTP code = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/me/intent-keys", tok, IntentKeyRequest{PublicKey: hex.EncodeToString(pub)}, "X-TOTP", code()); r.status != 201 {
		t.Fatalf("register key = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/me/whitelist", tok, WhitelistRequest{Asset: "BTC", Address: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"}, "X-TOTP", code()); r.status != 422 {
		t.Fatalf("mainnet address on regtest = %d %s", r.status, r.body)
	}
	addr := "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
	if r := e.do("POST", "/v1/me/whitelist", tok, WhitelistRequest{Asset: "BTC", Address: addr}, "X-TOTP", code()); r.status != 201 {
		t.Fatalf("whitelist = %d %s", r.status, r.body)
	}
	sign := func(reqID string, amount uint64, expiry time.Time) WithdrawalRequest {
		in := withdraw.Intent{RequestID: reqID, Asset: "BTC", Address: addr, Amount: withdraw.AmountOf(amount), Expiry: expiry.Unix()}
		sig, _ := in.Sign(priv)
		return WithdrawalRequest{RequestID: reqID, Asset: "BTC", Address: addr, Amount: WideUnits(ledger.AmountOf(amount)), Expiry: Time{time.Unix(in.Expiry, 0).UTC()}, PublicKey: hex.EncodeToString(pub), Signature: hex.EncodeToString(sig)}
	}
	// Still cooling down.
	if r := e.do("POST", "/v1/me/withdrawals", tok, sign("w1", 100_000, e.clock.Now().Add(time.Hour)), "X-TOTP", code()); r.status != 422 || !bytes.Contains(r.body, []byte("cool-down")) {
		t.Fatalf("during the cool-down = %d %s", r.status, r.body)
	}
	e.clock.Add(25 * time.Hour)
	lr := e.do("POST", "/v1/customers/login", "", LoginRequest{Email: "wd@example.jp", Password: testPassword, TOTP: code()})
	var login LoginResponse
	lr.json(t, &login)
	tok = login.Token
	bad := sign("w2", 100_000, e.clock.Now().Add(time.Hour))
	bad.Amount = WideUnits(ledger.AmountOf(200000)) // not what was signed
	if r := e.do("POST", "/v1/me/withdrawals", tok, bad, "X-TOTP", code()); r.status != 422 || !bytes.Contains(r.body, []byte("signature")) {
		t.Fatalf("changed amount = %d %s", r.status, r.body)
	}
	for _, amt := range []any{"-5", "1.5", "0", "x", 100000, "1e5", " 100000", "340282366920938463463374607431768211456"} {
		raw, _ := json.Marshal(sign("w3", 100_000, e.clock.Now().Add(time.Hour)))
		var b map[string]any
		json.Unmarshal(raw, &b)
		b["amount"] = amt
		if r := e.do("POST", "/v1/me/withdrawals", tok, b, "X-TOTP", code()); r.status != 400 || !bytes.Contains(r.body, []byte(`"field":"amount"`)) {
			t.Errorf("amount %q = %d", amt, r.status)
		}
	}
	if r := e.do("POST", "/v1/me/withdrawals", tok, sign("w4", 5_000_000, e.clock.Now().Add(time.Hour)), "X-TOTP", code()); r.status != 422 {
		t.Fatalf("above balance = %d %s", r.status, r.body)
	}
	r := e.do("POST", "/v1/me/withdrawals", tok, sign("w5", 300_000, e.clock.Now().Add(time.Hour)), "X-TOTP", code())
	var v WithdrawalView
	r.json(t, &v)
	if r.status != 201 || v.Status != "queued" {
		t.Fatalf("withdrawal = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/me/withdrawals", tok, sign("w5", 300_000, e.clock.Now().Add(time.Hour)), "X-TOTP", code()); r.status != 409 {
		t.Fatalf("same request id again = %d %s", r.status, r.body)
	}
	r = e.do("GET", "/v1/me/balances", tok, nil)
	if !bytes.Contains(r.body, []byte(`"available":"700000"`)) {
		t.Fatalf("balances after the hold = %s", r.body)
	}
	r = e.do("GET", "/v1/me/withdrawals", tok, nil)
	if !bytes.Contains(r.body, []byte(`"status":"queued"`)) {
		t.Fatalf("my withdrawals = %s", r.body)
	}
	// With a withdrawal fee, an amount the fee would take past 2^128-1 is
	// refused naming the field, and nothing is journaled.
	e.twoPerson(core.KindSetWithdrawalRulesRequest, core.SetWithdrawalRulesPayload{Rules: withdraw.Rules{CoolDownSeconds: 60,
		WithdrawalFee: map[string]withdraw.Amount{"BTC": withdraw.AmountOf(10)}}}, "aiko", "ren", people.RoleAdmin)
	in := withdraw.Intent{RequestID: "w6", Asset: "BTC", Address: addr, Amount: withdraw.MaxAmount, Expiry: e.clock.Now().Add(time.Hour).Unix()}
	sig, _ := in.Sign(priv)
	head, _, _ := e.core.Journal().Head()
	if r := e.do("POST", "/v1/me/withdrawals", tok, WithdrawalRequest{RequestID: "w6", Asset: "BTC", Address: addr, Amount: WideUnits(in.Amount), Expiry: Time{time.Unix(in.Expiry, 0).UTC()},
		PublicKey: hex.EncodeToString(pub), Signature: hex.EncodeToString(sig)}, "X-TOTP", code()); r.status != 400 || !bytes.Contains(r.body, []byte(`"field":"amount"`)) || !bytes.Contains(r.body, []byte("2^128")) {
		t.Fatalf("2^128-1 with a fee = %d %s", r.status, r.body)
	}
	if h, _, _ := e.core.Journal().Head(); h != head {
		t.Fatalf("the refused amount was journaled: head %d, was %d", h, head)
	}
}
