package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"kinko/internal/core"
	"kinko/internal/passkey"
	"kinko/internal/people"
	"kinko/internal/yen"
	"kinko/internal/yen/zengin"
)

// addAuditor adds an operator whose only role is auditor as the console
// does: aiko asks, ren approves, the operator enrols a key with their
// code, and two admins approve the key. It returns their session token.
func (e *env) addAuditor(name string) string {
	e.t.Helper()
	aiko, ren := e.loginOperator("aiko"), e.loginOperator("ren")
	code := name + "-one-time-code-123"
	h := sha256.Sum256([]byte(code))
	payload, _ := json.Marshal(apiAddOperator{Operator: name, Roles: []people.Role{people.RoleAuditor}, Code: hex.EncodeToString(h[:]), CodeExpires: Time{e.clock.Now().Add(48 * time.Hour)}})
	var opened map[string]string
	r := e.do("POST", "/v1/requests", aiko, OpenRequestRequest{Kind: people.KindAddOperator, Payload: payload, Reason: "new auditor", RequiredRole: people.RoleAdmin})
	if r.status != 201 {
		e.t.Fatalf("add_operator = %d %s", r.status, r.body)
	}
	r.json(e.t, &opened)
	if r := e.do("POST", "/v1/requests/"+opened["id"]+"/approve", ren, DecideRequest{Reason: "agreed"}); r.status != 200 {
		e.t.Fatalf("approve add_operator = %d %s", r.status, r.body)
	}
	k, _ := passkey.NewSoftKey(passkey.AlgES256)
	r = e.raw("POST", "/v1/operators/enrol/key", "", EnrolKeyRequest{Operator: name, Code: code, PublicKey: k.PublicKey(), Label: name + "'s key"})
	if r.status != 201 {
		e.t.Fatalf("enrol = %d %s", r.status, r.body)
	}
	var er EnrolResponse
	r.json(e.t, &er)
	cred, _ := json.Marshal(people.CredentialPayload{Operator: name, Credential: k.ID(), Fingerprint: er.Fingerprint})
	r = e.do("POST", "/v1/requests", ren, OpenRequestRequest{Kind: people.KindEnrolCredential, Payload: cred, Reason: "fingerprint read out in person", RequiredRole: people.RoleAdmin})
	if r.status != 201 {
		e.t.Fatalf("enrol_credential = %d %s", r.status, r.body)
	}
	r.json(e.t, &opened)
	if r := e.do("POST", "/v1/requests/"+opened["id"]+"/approve", aiko, DecideRequest{Reason: "compared"}); r.status != 200 {
		e.t.Fatalf("approve enrol_credential = %d %s", r.status, r.body)
	}
	e.team = teamWith(e, name, k)
	return e.loginOperator(name)
}

var postForm = regexp.MustCompile(`(?is)<form[^>]*method="post"[^>]*>`)

// TestConsoleFormsByRole: every console page is fetched by an auditor,
// who is sent no form that writes, and by operators of other roles, who
// are sent the forms their roles may use and only those. Hiding a form
// with CSS is not enough: the page's HTML is what is measured.
func TestConsoleFormsByRole(t *testing.T) {
	e := newEnv(t)
	e.listBTCJPY()
	mio := e.addAuditor("mio")
	aiko, kenji, sora := e.loginOperator("aiko"), e.loginOperator("kenji"), e.loginOperator("sora")
	e.signUp("kyc@example.jp")
	// Something on every page that has a form: two halts, one with its
	// lift asked (pending on Approvals), an open incident, a market.
	for _, sw := range []string{"BTC:withdraw", "JPY:deposit"} {
		if r := e.do("POST", "/v1/halts", kenji, HaltRequest{Switch: sw, Reason: "drill"}); r.status != 201 {
			t.Fatalf("halt %s = %d %s", sw, r.status, r.body)
		}
	}
	if r := e.do("POST", "/v1/requests", kenji, OpenRequestRequest{Kind: core.KindLiftHalt, Payload: json.RawMessage(`{"switch":"JPY:deposit"}`), Reason: "drill over", RequiredRole: people.RoleAdmin}); r.status != 201 {
		t.Fatalf("lift request = %d %s", r.status, r.body)
	}
	// Yen set up, with a transfer to an account no customer holds held
	// for review.
	e.submitCore(core.YenSetup{Config: yen.Config{Asset: "JPY", Trust: zengin.Account{Bank: "0397", Branch: "100", Type: 1, Number: "1000001", Name: "ｷﾝｺ ｼﾝﾀｸ"},
		Operating: zengin.Account{Bank: "0397", Branch: "100", Type: 1, Number: "1000002"}, RequesterCode: "1234567890", Requester: "ｶ)ｷﾝｺ",
		VirtualBranch: "200", VirtualFirst: 2000001, VirtualCount: 10, Fee: 110, DepositMax: 1_000_000, PaymentMax: 300_000, ReviewTwoPersonAbove: 500_000}})
	e.submitCore(core.YenBankCredits{Items: []core.BankCredit{{TxID: "forms-1", Account: "2000009", Amount: 5_000, Sender: "ﾀﾆﾝ", Source: "notice"}}})
	inc := core.OpenIncident{Incident: incidentOf("inc-forms", "kenji")}
	if r := e.raw("POST", "/v1/commands", kenji, CommandRequest{Kind: inc.Kind().String(), Payload: inc.AppendPayload(nil)}); r.status != 200 {
		t.Fatalf("open incident = %d %s", r.status, r.body)
	}

	// The pages of loadPages but login and enrol, which are before a
	// session and write nothing of an operator's.
	pages := map[string]string{
		"home": "/console/", "customers": "/console/customers", "operators": "/console/operators", "approvals": "/console/approvals",
		"assets": "/console/assets", "journal": "/console/journal", "incidents": "/console/incidents", "status": "/status",
		"reserves": "/console/reserves", "withdrawals": "/console/withdrawals", "controls": "/console/controls",
		"incident": "/console/incidents/inc-forms", "markets": "/console/markets", "market": "/console/markets/BTC-JPY", "dealer": "/console/dealer", "yen": "/console/yen",
	}
	p, err := loadPages()
	if err != nil {
		t.Fatal(err)
	}
	for name := range p.t {
		if _, ok := pages[name]; !ok && name != "login" && name != "enrol" {
			t.Errorf("page %s is not checked", name)
		}
	}
	forms := func(tok, path string) []string {
		t.Helper()
		req, _ := http.NewRequest("GET", e.http.URL+path, nil)
		req.AddCookie(&http.Cookie{Name: cookieName, Value: tok})
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		html := string(b)
		if res.StatusCode != 200 || !strings.Contains(html, "<main>") {
			t.Fatalf("GET %s = %d %.300s", path, res.StatusCode, html)
		}
		main := html[strings.Index(html, "<main>"):]
		if i := strings.Index(main, "</main>"); i >= 0 {
			main = main[:i]
		}
		var actions []string
		for _, f := range postForm.FindAllString(main, -1) {
			a := regexp.MustCompile(`action="([^"]*)"`).FindStringSubmatch(f)
			if a == nil {
				actions = append(actions, f)
				continue
			}
			actions = append(actions, a[1])
		}
		return actions
	}
	has := func(actions []string, part string) bool {
		for _, a := range actions {
			if strings.Contains(a, part) {
				return true
			}
		}
		return false
	}

	// The auditor: no form that writes on any page.
	for name, path := range pages {
		if got := forms(mio, path); len(got) > 0 {
			t.Errorf("the auditor's %s page (%s) has write forms: %v", name, path, got)
		}
	}
	// An admin: the forms of their pages are there.
	want := map[string][]string{
		"customers": {"/kyc"},
		"operators": {"/console/operators/add", "/console/operators/roles", "/console/operators/remove_credential"},
		"approvals": {"/approve"},
		"assets":    {"/console/assets"},
		"incidents": {"/console/incidents/inc-forms/close"},
		"controls":  {"/console/controls/halt", "/console/controls/lift", "/console/controls/plan"},
		"markets":   {"/console/markets/BTC-JPY/index", "/console/markets/BTC-JPY/cancel-all"},
		"yen":       {"/console/yen/review"},
	}
	for name, parts := range want {
		got := forms(aiko, pages[name])
		for _, part := range parts {
			if !has(got, part) {
				t.Errorf("the admin's %s page lacks the form %s: %v", name, part, got)
			}
		}
	}
	// The other roles: only the forms they may use.
	if got := forms(kenji, "/console/operators"); len(got) > 0 {
		t.Errorf("an operator and approver (no admin) is shown the operators' forms: %v", got)
	}
	if got := forms(kenji, "/console/controls"); !has(got, "/halt") || !has(got, "/plan") {
		t.Errorf("an operator lacks the halt and plan forms: %v", got)
	}
	if got := forms(kenji, "/console/customers"); !has(got, "/kyc") {
		t.Errorf("an operator lacks the KYC form: %v", got)
	}
	for _, path := range []string{"/console/markets", "/console/customers", "/console/operators"} {
		if got := forms(sora, path); len(got) > 0 {
			t.Errorf("the ciso is shown forms on %s they may not use: %v", path, got)
		}
	}
	if got := forms(sora, "/console/assets"); !has(got, "/console/assets/review") {
		t.Errorf("the ciso lacks the review form: %v", got)
	}
	if got := forms(kenji, "/console/assets"); has(got, "/console/assets/review") {
		t.Errorf("a non-ciso is shown the review form: %v", got)
	}
}
