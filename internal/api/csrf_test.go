package api

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"kinko/internal/core"
	"kinko/internal/people"
)

// csrfBody is what a cross-site form with enctype text/plain posts: the
// input's name and value joined by "=", here a JSON body the route takes.
const csrfBody = `{"kyc":"verified","reason":"csrf="}`

// TestCookieCrossSitePostRefused: the console's session cookie goes with
// every request a browser sends to this host, including a form that a
// page on another port of the same host posts (same site: SameSite=Strict
// does not stop it). The JSON API refuses such a post; it takes the cookie
// for a write only with this site's own Origin and the session's
// X-CSRF-Token, and bearer tokens as before.
func TestCookieCrossSitePostRefused(t *testing.T) {
	e := newEnv(t)
	tok := e.loginOperator("kenji")
	id, _ := e.signUp("target@example.jp")
	host := strings.TrimPrefix(e.http.URL, "http://")
	post := func(headers map[string]string, body string) (int, string) {
		req, _ := http.NewRequest("POST", fmt.Sprintf("%s/v1/customers/%d/kyc", e.http.URL, id), strings.NewReader(body))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	verified := func() bool {
		var ok bool
		e.core.Read(func(st *core.State) { ok = st.People.CanTrade(id) })
		return ok
	}
	cookie := cookieName + "=" + tok
	// As Chromium sends a text/plain form posted by a page at another
	// port of this host.
	browser := map[string]string{"Cookie": cookie, "Content-Type": "text/plain", "Origin": "http://127.0.0.1:9", "Sec-Fetch-Site": "same-site",
		"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-User": "?1", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0"}
	for name, h := range map[string]map[string]string{
		"cross-site form":                browser,
		"Origin null (no-referrer page)": {"Cookie": cookie, "Content-Type": "text/plain", "Origin": "null", "Sec-Fetch-Site": "cross-site"},
		"old browser, other Origin":      {"Cookie": cookie, "Content-Type": "text/plain", "Origin": "http://127.0.0.1:9"},
		"own Origin, no CSRF token":      {"Cookie": cookie, "Content-Type": "application/json", "Origin": "http://" + host, "Sec-Fetch-Site": "same-origin"},
		"no Origin at all, cookie only":  {"Cookie": cookie, "Content-Type": "text/plain"},
	} {
		if st, b := post(h, csrfBody); st != 403 || !strings.Contains(b, "cross-site request refused") {
			t.Errorf("%s: %d %s; want 403", name, st, b)
		}
		if verified() {
			t.Fatalf("%s: the KYC was set by a cookie-borne cross-site post", name)
		}
	}
	// The site's own page, with the token: allowed.
	h := csrfToken(tok, e)
	if st, b := post(map[string]string{"Cookie": cookie, "Content-Type": "application/json", "Origin": "http://" + host, "Sec-Fetch-Site": "same-origin", "X-CSRF-Token": h}, csrfBody); st != 200 {
		t.Fatalf("same-origin with the CSRF token: %d %s", st, b)
	}
	// A bearer token needs none of it.
	id2, _ := e.signUp("bearer@example.jp")
	if r := e.do("POST", fmt.Sprintf("/v1/customers/%d/kyc", id2), tok, KYCRequest{KYC: people.KYCVerified, Reason: "bearer"}); r.status != 200 {
		t.Fatalf("bearer = %d %s", r.status, r.body)
	}
	// Reads with the cookie still work (the console's CSV link).
	req, _ := http.NewRequest("GET", e.http.URL+"/v1/customers", nil)
	req.Header.Set("Cookie", cookie)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Fatalf("cookie read = %v %v", res, err)
	}
}

// csrfToken returns the CSRF token of an operator's session.
func csrfToken(tok string, e *env) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: cookieName, Value: tok})
	p, err := e.srv.principal(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.srv.csrfFor(p.Token)
}

// TestCrossSiteFormInBrowser: the same attack from a real Chromium. The
// operator's browser holds the console's cookie for 127.0.0.1 (HttpOnly,
// SameSite=Strict, as the console sets it); a page served from another
// port of 127.0.0.1 posts a text/plain form to the JSON API the moment it
// loads. The browser sends the cookie (same site), and the API refuses.
func TestCrossSiteFormInBrowser(t *testing.T) {
	needChromium(t)
	e := newEnv(t)
	tok := e.loginOperator("kenji")
	id, _ := e.signUp("victim@example.jp")
	name, value, _ := strings.Cut(csrfBody, "=")
	tab := newTab(t)
	if err := chromedp.Do(tab, withCookie(cookieName, tok, e.http.URL, "/")); err != nil {
		t.Fatalf("start chromium and set the cookie: %v", err)
	}
	body := crossSiteAnswer(t, tab, fmt.Sprintf(`<form method="POST" enctype="text/plain" action="%s/v1/customers/%d/kyc"><input name='%s' value='%s'></form>`,
		e.http.URL, id, name, value))
	t.Logf("the API answered the cross-site form: %s", body)
	var verified bool
	e.core.Read(func(st *core.State) { verified = st.People.CanTrade(id) })
	if verified {
		t.Fatal("a cross-site form set the KYC with the operator's cookie")
	}
	// 403 for a cross-site request, not 401: the browser did send the
	// cookie, so this was the attack, refused.
	if !strings.Contains(body, `"status":403`) || !strings.Contains(body, "cross-site request refused") {
		t.Fatalf("answer %q; want 403 cross-site request refused", body)
	}
}
