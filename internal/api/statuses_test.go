package api

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"kinko/internal/people"
)

// declaredStatuses reads, per "METHOD path" of openapi.json, the statuses
// it declares.
func declaredStatuses(t *testing.T) map[string]map[int]bool {
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[int]bool{}
	for p, ops := range doc.Paths {
		for m, op := range ops {
			set := map[int]bool{}
			for code := range op.Responses {
				n, err := strconv.Atoi(code)
				if err != nil {
					t.Fatalf("%s %s declares response %q", m, p, code)
				}
				set[n] = true
			}
			out[strings.ToUpper(m)+" "+p] = set
		}
	}
	return out
}

// badPaths fills a route's path parameters with values no route knows.
func badPaths(path string) []string {
	out := []string{path}
	for _, sub := range []string{"nope", "424242", strings.Repeat("0", 64)} {
		p := path
		for {
			i := strings.IndexByte(p, '{')
			if i < 0 {
				break
			}
			j := strings.IndexByte(p[i:], '}')
			p = p[:i] + sub + p[i+j+1:]
		}
		out = append(out, p)
	}
	return out[1:]
}

// TestEveryStatusDeclared drives every route of the JSON API with bad
// input (no session, a customer's or an operator's where the other is
// needed, bodies that are not JSON, not the route's, empty; path values
// nobody has; query values out of range; a wrong step-up code) and checks
// that what it answers is a status openapi.json declares for it, and
// never a 500.
func TestEveryStatusDeclared(t *testing.T) {
	e := newEnv(t)
	declared := declaredStatuses(t)
	_, ctok := e.signUp("bad@example.jp")
	otok := e.loginOperator("kenji")
	atok := e.loginOperator("aiko")
	// Bodies that are not JSON, not any route's, and the shapes of
	// several routes' own bodies with values that are wrong (so that a
	// route gets past decoding to its checks: a step-up with a wrong
	// code, an operator nobody is, a password that is not theirs).
	bodies := []string{"", "{", `{"nope":1}`, `[]`, `{}`, `{"reason":"x","kind":"nope","payload":{}}`,
		`{"public_key":"` + strings.Repeat("00", 32) + `"}`, `{"asset":"BTC","address":"bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"}`,
		`{"asset":"NOPE","address":"x"}`, `{"password":"wrong password","new_password":"0123456789ab"}`, `{"password":"wrong password"}`,
		`{"kyc":"verified","reason":"x"}`, `{"operator":""}`, `{"operator":"nobody","code":"x"}`, `{"reason":"x"}`, `{"token":"nope"}`,
		`{"email":"x@example.jp","password":"wrong password","totp":"000000"}`, `{"email":"new@example.jp","name":"N","password":"0123456789ab"}`,
		`{"market":"NOPE","side":"buy","type":"limit","price":"1","qty":"1"}`, `{"request_id":"r","asset":"BTC","address":"x","amount":"1","expiry":"2026-01-01T00:00:00Z","public_key":"` + strings.Repeat("00", 32) + `","signature":"` + strings.Repeat("00", 64) + `"}`}
	queries := []string{"", "?limit=0", "?limit=99999", "?cursor=-1", "?cursor=99999999", "?from=0", "?from=99999999", "?token=nope", "?seq=nope", "?size=nope&old=1"}
	var undeclared, fivehundreds []string
	seen := map[string]map[int]bool{}
	requests := 0
	for _, rt := range e.srv.Routes() {
		if !rt.api || strings.HasSuffix(rt.Path, "/stream") {
			continue // the market stream is long-lived; its bad inputs are tested in trading_test
		}
		key := rt.Method + " " + rt.Path
		ok := declared[key]
		if ok == nil {
			t.Errorf("%s is not in openapi.json", key)
			continue
		}
		for _, p := range badPaths(rt.Path) {
			for _, tok := range []string{"", ctok, otok, atok} {
				var variants []string
				if rt.Method == "GET" {
					variants = queries
				} else {
					variants = bodies
				}
				for _, v := range variants {
					path, body := p, ""
					if rt.Method == "GET" {
						path += v
					} else {
						body = v
					}
					headers := []string{}
					if tok == ctok {
						headers = append(headers, "X-TOTP", "000000")
					}
					r := e.raw(rt.Method, path, tok, body, headers...)
					requests++
					if seen[key] == nil {
						seen[key] = map[int]bool{}
					}
					seen[key][r.status] = true
					if r.status >= 500 {
						fivehundreds = append(fivehundreds, fmt.Sprintf("%s %s body %q: %d %s", rt.Method, path, body, r.status, r.body))
					}
					if !ok[r.status] {
						undeclared = append(undeclared, fmt.Sprintf("%s: %d (%s %s %q)", key, r.status, rt.Method, path, body))
					}
				}
			}
		}
	}
	sort.Strings(undeclared)
	for _, u := range dedupe(undeclared) {
		t.Errorf("undeclared status %s", u)
	}
	for _, f := range fivehundreds {
		t.Errorf("500: %s", f)
	}
	t.Logf("%d requests to %d routes", requests, len(seen))
	if requests < 1000 {
		t.Fatalf("%d requests: the test drove too little", requests)
	}
}

func dedupe(xs []string) []string {
	var out []string
	last := ""
	for _, x := range xs {
		k := x[:strings.Index(x, " (")]
		if k != last {
			out = append(out, x)
		}
		last = k
	}
	return out
}

// TestFourBadInputs: the four inputs that answered 500 answer a clear
// 4xx problem: an empty operator name (sign-in and a request naming
// one), approving a withdrawal or a plan nobody has, a cursor past the
// journal's end.
func TestFourBadInputs(t *testing.T) {
	e := newEnv(t)
	aiko := e.loginOperator("aiko")
	kenji := e.loginOperator("kenji")
	for _, c := range []struct {
		name, method, path, tok string
		body                    any
		want                    int
	}{
		{"empty operator name at sign-in", "POST", "/v1/operators/login/begin", "", BeginRequest{Operator: ""}, 401},
		{"empty operator name in a request", "POST", "/v1/requests", aiko, OpenRequestRequest{Kind: people.KindSetRoles, Payload: json.RawMessage(`{"operator":"","roles":["auditor"]}`), Reason: "x", RequiredRole: people.RoleAdmin}, 404},
		{"approving an unknown withdrawal", "POST", "/v1/requests", kenji, OpenRequestRequest{Kind: "approve_withdrawal", Payload: json.RawMessage(`{"withdrawal":"nope"}`), Reason: "x", RequiredRole: people.RoleApprover}, 404},
		{"approving an unknown plan", "POST", "/v1/requests", kenji, OpenRequestRequest{Kind: "approve_compensation", Payload: json.RawMessage(`{"plan":"nope"}`), Reason: "x", RequiredRole: people.RoleApprover}, 404},
		{"approving an unknown request", "POST", "/v1/requests/nope/approve", kenji, DecideRequest{Reason: "x"}, 404},
		{"a cursor past the journal", "GET", "/v1/journal?cursor=99999", kenji, nil, 400},
	} {
		r := e.do(c.method, c.path, c.tok, c.body)
		if r.status != c.want || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s; want %d problem+json", c.name, r.status, r.body, c.want)
		}
	}
}
