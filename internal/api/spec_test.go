package api

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"kinko/internal/core"
	"kinko/internal/incident"
	"kinko/internal/people"
)

// The spec check: every request a test of this package sends through
// env.raw to a JSON API route is checked against openapi.json, the body
// it sent (when the route took it, 2xx) against the route's requestBody
// schema and the answer against the schema declared for its status and
// content type. A field the code writes or takes that the document does
// not declare, a declared required field missing, a value of another type
// than declared (a number where a decimal string is declared), an answer
// whose content type is not declared: each fails the test that made the
// request. So openapi.json is kept true by every test, over every route
// they drive; TestSpecCoversEveryRoute makes sure that is every route.

// specDoc is openapi.json, parsed once.
var specDoc = sync.OnceValue(func() map[string]any {
	var d map[string]any
	if err := json.Unmarshal(openapiJSON, &d); err != nil {
		panic(err)
	}
	return d
})

// specRoutes are the JSON API's routes, from the first server a test
// made.
var (
	specRoutes     []string
	specRoutesOnce sync.Once
)

// specUnreached are routes whose 2xx answer no test of this package
// reaches, with why and where they are driven instead.
var specUnreached = map[string]string{
	"GET /v1/markets/{code}/stream":   "an event stream that stays open; its events are tested in trading_test",
	"GET /v1/freeze":                  "the e-mailed freeze link, opened as a browser does (notice_test, http.Get)",
	"POST /v1/freeze":                 "the freeze link's form, posted as a browser does (notice_test)",
	"GET /v1/signer/view":             "the signer's token: internal/signer's tests",
	"POST /v1/signer/commands":        "the signer's token: internal/signer's tests",
	"POST /v1/watch/commands":         "the watcher's token: internal/watch's tests",
	"POST /v1/ceremonies":             "a PSBT of registered wallets on a chain: internal/cli's ceremony tests",
	"POST /v1/me/credentials":         "a WebAuthn registration by a browser: browser_test",
	"POST /v1/operators/enrol/begin":  "a WebAuthn registration by a browser: browser_test",
	"POST /v1/operators/enrol/finish": "a WebAuthn registration by a browser: browser_test",
	"GET /v1/compensation/{id}":       "a plan written and approved: internal/cli's compensation tests",
}

// specChecked records which "METHOD path" had a 2xx answer checked
// against a declared schema, for TestSpecCoversEveryRoute.
var specChecked sync.Map

// specOp is the operation of key ("GET /v1/me"), nil if undeclared.
func specOp(key string) map[string]any {
	method, path, _ := strings.Cut(key, " ")
	paths, _ := specDoc()["paths"].(map[string]any)
	ops, _ := paths[path].(map[string]any)
	op, _ := ops[strings.ToLower(method)].(map[string]any)
	return op
}

// checkSpec checks one exchange against the spec; it returns what is
// wrong, nothing when all is as declared.
func (e *env) checkSpec(req *http.Request, sent []byte, status int, contentType string, body []byte) (bad []string) {
	specRoutesOnce.Do(func() {
		for _, r := range e.srv.Routes() {
			if r.api {
				specRoutes = append(specRoutes, r.Method+" "+r.Path)
			}
		}
	})
	_, pattern := e.srv.mux.Handler(req)
	if !slices.Contains(specRoutes, pattern) {
		return nil // the console, /metrics, unrouted paths
	}
	key := pattern
	op := specOp(key)
	if op == nil {
		return []string{key + " is not in openapi.json"}
	}
	defer func() {
		if status/100 == 2 && len(bad) == 0 {
			specChecked.Store(key, true)
		}
	}()
	if status/100 == 2 && len(bytes.TrimSpace(sent)) > 0 {
		if rb, ok := op["requestBody"].(map[string]any); ok {
			if sch := contentSchema(rb, "application/json"); sch != nil {
				var v any
				if json.Unmarshal(sent, &v) == nil {
					for _, p := range validate(sch, v, "request") {
						bad = append(bad, key+" "+p)
					}
				}
			}
		} else {
			bad = append(bad, key+" took a body and declares none")
		}
	}
	resps, _ := op["responses"].(map[string]any)
	r, ok := resps[strconv.Itoa(status)].(map[string]any)
	if !ok {
		return append(bad, fmt.Sprintf("%s answered %d, not declared", key, status))
	}
	ct, _, _ := strings.Cut(contentType, ";")
	content, _ := r["content"].(map[string]any)
	if len(body) == 0 || ct == "" || strings.HasPrefix(ct, "text/event-stream") {
		return bad
	}
	if content == nil {
		return append(bad, fmt.Sprintf("%s %d answered %s and declares no content", key, status, ct))
	}
	sch := contentSchema(r, ct)
	if sch == nil {
		if _, declared := content[ct]; !declared {
			return append(bad, fmt.Sprintf("%s %d answered %s; declared: %v", key, status, ct, keys(content)))
		}
		return bad
	}
	if ct != "application/json" && ct != "application/problem+json" {
		return bad
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return append(bad, fmt.Sprintf("%s %d: not JSON: %v", key, status, err))
	}
	for _, p := range validate(sch, v, "answer") {
		bad = append(bad, fmt.Sprintf("%s %d %s", key, status, p))
	}
	return bad
}

func contentSchema(holder map[string]any, ct string) map[string]any {
	content, _ := holder["content"].(map[string]any)
	c, _ := content[ct].(map[string]any)
	s, _ := c["schema"].(map[string]any)
	return s
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// resolve follows a $ref into components.
func resolve(s map[string]any) map[string]any {
	for {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		comps, _ := specDoc()["components"].(map[string]any)
		schemas, _ := comps["schemas"].(map[string]any)
		next, ok := schemas[name].(map[string]any)
		if !ok {
			return map[string]any{}
		}
		s = next
	}
}

// validate checks v against the schema subset openapi.json uses: type,
// properties (no field beyond them unless additionalProperties says so),
// required, items, enum, oneOf/anyOf, nullable.
func validate(s map[string]any, v any, at string) []string {
	s = resolve(s)
	if alts, ok := s["oneOf"].([]any); ok {
		return validateAny(alts, v, at)
	}
	if alts, ok := s["anyOf"].([]any); ok {
		return validateAny(alts, v, at)
	}
	if v == nil {
		if s["nullable"] == true || s["type"] == nil {
			return nil
		}
		return []string{at + ": null where " + fmt.Sprint(s["type"]) + " is declared"}
	}
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, x := range enum {
			if fmt.Sprint(x) == fmt.Sprint(v) {
				found = true
			}
		}
		if !found {
			return []string{fmt.Sprintf("%s: %v is not one of %v", at, v, enum)}
		}
	}
	switch s["type"] {
	case "object":
		o, ok := v.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T where an object is declared", at, v)}
		}
		var bad []string
		props, _ := s["properties"].(map[string]any)
		extra, extraOK := s["additionalProperties"]
		for _, r := range asList(s["required"]) {
			if _, ok := o[r]; !ok {
				bad = append(bad, at+"."+r+": required, missing")
			}
		}
		for k, x := range o {
			if ps, ok := props[k].(map[string]any); ok {
				bad = append(bad, validate(ps, x, at+"."+k)...)
				continue
			}
			switch es := extra.(type) {
			case map[string]any:
				bad = append(bad, validate(es, x, at+"."+k)...)
			case bool:
				if !es {
					bad = append(bad, at+"."+k+": not declared")
				}
			default:
				if !extraOK && props != nil {
					bad = append(bad, at+"."+k+": not declared")
				}
			}
		}
		return bad
	case "array":
		a, ok := v.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T where an array is declared", at, v)}
		}
		items, _ := s["items"].(map[string]any)
		var bad []string
		for i, x := range a {
			if items != nil {
				bad = append(bad, validate(items, x, fmt.Sprintf("%s[%d]", at, i))...)
			}
			if len(bad) > 0 {
				return bad // one bad item says it
			}
		}
		return nil
	case "string":
		if _, ok := v.(string); !ok {
			return []string{fmt.Sprintf("%s: %T %v where a string is declared", at, v, v)}
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != float64(int64(f)) {
			return []string{fmt.Sprintf("%s: %T %v where an integer is declared", at, v, v)}
		}
	case "number":
		if _, ok := v.(float64); !ok {
			return []string{fmt.Sprintf("%s: %T %v where a number is declared", at, v, v)}
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return []string{fmt.Sprintf("%s: %T %v where a boolean is declared", at, v, v)}
		}
	}
	return nil
}

func validateAny(alts []any, v any, at string) []string {
	var all []string
	for _, a := range alts {
		s, _ := a.(map[string]any)
		bad := validate(s, v, at)
		if len(bad) == 0 {
			return nil
		}
		all = append(all, bad...)
	}
	return []string{at + ": matches none of its alternatives: " + strings.Join(all, "; ")}
}

func asList(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			out = append(out, fmt.Sprint(x))
		}
	}
	return out
}

// TestSpecValidatorBites: the check refuses what it is for: an undeclared
// field, a number where a decimal string is declared, a missing required
// field, a wrong enum value; and passes what is declared.
func TestSpecValidatorBites(t *testing.T) {
	s := map[string]any{"type": "object", "required": []any{"amount"}, "properties": map[string]any{
		"amount": map[string]any{"type": "string"}, "kind": map[string]any{"type": "string", "enum": []any{"a", "b"}}}}
	for _, c := range []struct {
		v    string
		fail bool
	}{
		{`{"amount":"100"}`, false},
		{`{"amount":"100","kind":"a"}`, false},
		{`{"amount":100}`, true},
		{`{"amount":"100","Amount":"1"}`, true},
		{`{"kind":"a"}`, true},
		{`{"amount":"1","kind":"c"}`, true},
	} {
		var v any
		json.Unmarshal([]byte(c.v), &v)
		if bad := validate(s, v, "x"); (len(bad) > 0) != c.fail {
			t.Errorf("%s: %v; want failure %v", c.v, bad, c.fail)
		}
	}
}

// TestMain runs the package's tests; when all of them ran (no -run), it
// then checks that every JSON API route answered 2xx at least once with
// its answer checked against openapi.json (specChecked), so the document
// is kept true over every route, not only those some test happened to
// drive. Routes whose success no test of this package can reach are listed
// in specUnreached with the test elsewhere that drives them.
func TestMain(m *testing.M) {
	code := m.Run()
	if f := flag.Lookup("test.run"); code == 0 && f != nil && f.Value.String() == "" && !testing.Short() {
		var missing []string
		seen := map[string]bool{}
		for _, key := range specRoutes {
			if _, ok := specChecked.Load(key); !ok && !seen[key] && specUnreached[key] == "" {
				missing = append(missing, key)
			}
			seen[key] = true
		}
		if len(specRoutes) == 0 {
			missing = append(missing, "(no route at all: no test sent a request)")
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "openapi.json: no test answered these routes with 2xx, so their answers were never checked against the document:\n  %s\n", strings.Join(missing, "\n  "))
			code = 1
		}
	}
	os.Exit(code)
}

// TestSpecWalk drives to success the routes the other tests reach only
// with bad input or through other clients, so that their answers are
// checked against openapi.json too (env.raw checks every one).
func TestSpecWalk(t *testing.T) {
	e := newEnv(t)
	id, tok := e.signUp("walk@example.jp")
	kenji, aiko := e.loginOperator("kenji"), e.loginOperator("aiko")
	ok := func(r resp, what string) resp {
		t.Helper()
		if r.status/100 != 2 {
			t.Fatalf("%s = %d %s", what, r.status, r.body)
		}
		return r
	}
	for _, p := range []string{"/v1/me/sessions", "/v1/me/intent-keys", "/v1/me/whitelist"} {
		ok(e.do("GET", p, tok, nil), p)
	}
	e.submit(core.OpenIncident{Incident: incident.Incident{ID: "walk-1", Asset: "BTC", Detector: "watcher", Reason: "a drill"}})
	for _, p := range []string{"/v1/customers", "/v1/incidents", "/v1/operators", "/v1/requests", "/v1/withdrawals", "/v1/wallets"} {
		ok(e.do("GET", p, kenji, nil), p)
	}
	ok(e.do("GET", "/v1/journal/raw?from=1", e.srv.StreamToken(), nil), "journal stream")
	ok(e.do("GET", "/v1/journal/proof?seq=1", e.srv.StreamToken(), nil), "inclusion proof")
	// A request, rejected.
	ok(e.do("POST", "/v1/halts", kenji, HaltRequest{Switch: "BTC:trade", Reason: "walk"}), "halt")
	r := ok(e.do("POST", "/v1/requests", aiko, OpenRequestRequest{Kind: core.KindLiftHalt, Payload: json.RawMessage(`{"switch":"BTC:trade"}`), Reason: "resume", RequiredRole: people.RoleApprover}), "lift request")
	var opened struct{ ID string }
	r.json(t, &opened)
	ok(e.do("GET", "/v1/requests", kenji, nil), "requests")
	ok(e.do("POST", "/v1/requests/"+opened.ID+"/reject", kenji, DecideRequest{Reason: "not yet"}), "reject")
	// Freezes: the customer's own, and an operator's on the customer.
	ok(e.do("POST", "/v1/me/freeze", tok, FreezeRequest{Reason: "lost my phone"}), "freeze mine")
	ok(e.do("POST", fmt.Sprintf("/v1/customers/%d/freeze", id), kenji, OperatorFreezeRequest{Reason: "fraud report"}), "operator freeze")
	ok(e.do("POST", fmt.Sprintf("/v1/customers/%d/unfreeze", id), kenji, OperatorFreezeRequest{Reason: "checked"}), "operator unfreeze")
	// A session revoked.
	var sessions struct {
		Items []struct {
			ID      string `json:"id"`
			Current bool   `json:"current"`
		} `json:"items"`
	}
	e.clock.Add(31 * time.Second) // a fresh one-time code
	ok(e.do("POST", "/v1/customers/login", "", LoginRequest{Email: "walk@example.jp", Password: testPassword, TOTP: e.code("walk@example.jp")}), "second login")
	ok(e.do("GET", "/v1/me/sessions", tok, nil), "sessions").json(t, &sessions)
	for _, s := range sessions.Items {
		if !s.Current {
			ok(e.do("POST", "/v1/me/sessions/"+s.ID+"/revoke", tok, nil), "revoke")
			break
		}
	}
}
