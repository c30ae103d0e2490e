package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The browser tests' parts: Chromium started as each of them starts it,
// their steps, screenshots, cookies and the measure of a page's fit.

// needChromium stops the test when Debian's chromium is missing (the
// browser tests never skip), and makes the screenshots' folder.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Fatalf("%s not found: run scripts/install-chromium.sh (make test does)", chromiumPath)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
}

// newTab starts a headless Chromium on a fresh profile, with the flags
// every browser test gives and extra ones, and returns its tab; the
// browser stops when the test ends. The tab's first action starts it, and
// gets no deadline (a deadline on it would stop the browser).
func newTab(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath), chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-background-networking", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), append(opts, extra...)...)
	t.Cleanup(cancel)
	tab, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	return tab
}

// screenshotTo saves the page's full screenshot as artifacts/browser/file.
func screenshotTo(file string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		buf, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return chromedp.Void{}, err
		}
		return chromedp.Void{}, os.WriteFile(filepath.Join(artifacts, file), buf, 0o644)
	}
}

// steps returns a test's run: the actions of each call done within 20 s;
// on a failure, failed (a screenshot; nil for none) and the test stops.
func steps(t *testing.T, tab context.Context, failed chromedp.Action[chromedp.Void]) func(what string, actions ...chromedp.Action[chromedp.Void]) {
	return func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, 20*time.Second)
		defer cancel()
		err := chromedp.Do(ctx, actions...)
		if err == nil {
			return
		}
		if failed == nil {
			t.Fatalf("%s: %v", what, err)
		}
		sctx, cancel := context.WithTimeout(tab, 5*time.Second)
		defer cancel()
		chromedp.Do(sctx, failed)
		t.Fatalf("%s: %v (see artifacts/browser)", what, err)
	}
}

// withCookie sets a cookie in the browser for the server at base, HttpOnly
// and SameSite=Strict as the server sets its own.
func withCookie(name, value, base, path string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		yes := true
		_, err := cdp.Call(ctx, tg, network.SetCookie, network.SetCookieParams{Name: name, Value: value, URL: base, Path: path, HTTPOnly: &yes, SameSite: network.CookieSameSiteStrict})
		return err
	})
}

// fit is what a page measures in the browser: its width against the
// window's, how many rows its header takes, its main text and its first
// table's.
type fit struct {
	ScrollWidth, InnerWidth int
	HeaderRows              int
	Text, Table             string
}

// measureFit measures the page into m.
func measureFit(m *fit) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		s, err := chromedp.Evaluate[string](`JSON.stringify({ScrollWidth: document.documentElement.scrollWidth, InnerWidth: window.innerWidth,
			HeaderRows: new Set([...document.querySelectorAll("header > *, header nav a")].map(x => Math.round(x.getBoundingClientRect().top + x.getBoundingClientRect().height/2))).size,
			Text: document.querySelector("main").innerText, Table: (document.querySelector("main table") || {innerText: ""}).innerText})`)(ctx, tg)
		if err != nil {
			return err
		}
		return json.Unmarshal([]byte(s), m)
	})
}

// crossSiteAnswer serves form from another port of this host, on a page
// that posts it the moment it loads, opens that page in the tab and
// returns the answer the browser shows (the server's problem document).
func crossSiteAnswer(t *testing.T, tab context.Context, form string) string {
	t.Helper()
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><body onload="document.forms[0].submit()">%s</body>`, form)
	}))
	defer evil.Close()
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	var body string
	err := chromedp.Do(ctx, chromedp.Navigate(evil.URL))
	if err == nil {
		// The form posts on load: wait for the answer page.
		for i := 0; i < 200; i++ {
			body, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			if err == nil && strings.Contains(body, "status") {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return body
}
