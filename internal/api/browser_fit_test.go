package api

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"kinko/internal/core"
	"kinko/internal/incident"
	"kinko/internal/people"
)

// TestConsoleFitsInBrowser looks at every console page in headless
// Chromium at 1366 and 1920 px wide, as three operators of different
// roles, with a halt, an incident with its loss, a market and pending
// requests on them: no page is wider than the window, the header is one
// row, numbers carry separators and units, assets and switches are named,
// the journal lists newest first and filters, the incidents page shows
// status and loss and lets an operator ask to close, and Approve is shown
// only to who may approve. Screenshots of each page at each width go to
// artifacts/browser/fit-*.png; the test fails on what it measures in them.
func TestConsoleFitsInBrowser(t *testing.T) {
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Fatalf("%s not found: run scripts/install-chromium.sh (make test does)", chromiumPath)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	taker, _ := e.trader("taker@example.jp", 100_000_000, 0)
	e.seedBTCJPY(taker)
	aiko, kenji, sora := e.loginOperator("aiko"), e.loginOperator("kenji"), e.loginOperator("sora")
	if r := e.do("POST", "/v1/halts", kenji, HaltRequest{Switch: "BTC:withdraw", Reason: "unexplained outflow under investigation"}); r.status != 201 {
		t.Fatalf("halt = %d %s", r.status, r.body)
	}
	e.submit(core.OpenIncident{Incident: incident.Incident{ID: "outflow-BTC-1", Asset: "BTC", Detector: "watcher", Reason: "an output of ours spent by a transaction nobody journaled", TxIDs: []string{strings.Repeat("ab", 32)}, Loss: 18_994_932}})
	lift := e.do("POST", "/v1/requests", aiko, OpenRequestRequest{Kind: core.KindLiftHalt, Payload: json.RawMessage(`{"switch":"BTC:withdraw"}`), Reason: "cause found", RequiredRole: people.RoleApprover})
	var liftReq struct{ ID string }
	lift.json(t, &liftReq)
	if lift.status != 201 {
		t.Fatalf("lift request = %d %s", lift.status, lift.body)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath), chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("hide-scrollbars", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1366, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	tab, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(tab, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	as := func(tok string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, network.SetCookie, network.SetCookieParams{Name: cookieName, Value: tok, URL: e.http.URL, Path: "/"})
			return err
		})
	}
	type measure struct {
		ScrollWidth, InnerWidth int
		HeaderRows              int
		Text, Table             string
	}
	look := func(who, path string, width int64) measure {
		t.Helper()
		var m measure
		do("look at "+path, chromedp.EmulateViewport(width, 900), chromedp.Navigate(e.http.URL+path), chromedp.WaitVisible(chromedp.CSS("main h1")),
			chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				s, err := chromedp.Evaluate[string](`JSON.stringify({ScrollWidth: document.documentElement.scrollWidth, InnerWidth: window.innerWidth,
					HeaderRows: new Set([...document.querySelectorAll("header > *, header nav a")].map(x => Math.round(x.getBoundingClientRect().top + x.getBoundingClientRect().height/2))).size,
					Text: document.querySelector("main").innerText, Table: (document.querySelector("main table") || {innerText: ""}).innerText})`)(ctx, tg)
				if err != nil {
					return err
				}
				return json.Unmarshal([]byte(s), &m)
			}),
			chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				buf, err := chromedp.FullScreenshot(100)(ctx, tg)
				if err != nil {
					return err
				}
				name := fmt.Sprintf("fit-%d-%s-%s.png", width, who, strings.NewReplacer("/console/", "", "/", "-", "?", "-", "=", "-", "&", "-").Replace(path))
				if strings.HasSuffix(name, "-.png") {
					name = strings.TrimSuffix(name, "-.png") + "-home.png"
				}
				return os.WriteFile(filepath.Join(artifacts, name), buf, 0o644)
			}))
		return m
	}
	pages := []string{"/console/", "/console/controls", "/console/markets", "/console/markets/BTC-JPY", "/console/dealer", "/console/customers", "/console/operators",
		"/console/incidents", "/console/incidents/outflow-BTC-1", "/console/approvals", "/console/assets", "/console/reserves", "/console/withdrawals", "/console/journal"}
	for _, op := range []struct{ name, tok string }{{"aiko", aiko}, {"kenji", kenji}, {"sora", sora}} {
		do("sign in as "+op.name, as(op.tok))
		for _, width := range []int64{1366, 1920} {
			for _, p := range pages {
				m := look(op.name, p, width)
				if m.ScrollWidth > m.InnerWidth {
					t.Errorf("%s at %d px as %s: the page is %d px wide", p, width, op.name, m.ScrollWidth)
				}
				if m.HeaderRows != 1 {
					t.Errorf("%s at %d px as %s: the header takes %d rows", p, width, op.name, m.HeaderRows)
				}
			}
		}
	}
	// What the pages say, as kenji (operator and approver) at 1366.
	do("as kenji", as(kenji))
	inc := look("kenji", "/console/incidents", 1366)
	for _, want := range []string{"outflow-BTC-1", "0.18994932 BTC", "open", "Ask to close"} {
		if !strings.Contains(inc.Text, want) {
			t.Errorf("incidents page lacks %q:\n%s", want, inc.Text)
		}
	}
	ctl := look("kenji", "/console/controls", 1366)
	if !strings.Contains(ctl.Text, "BTC") || strings.Contains(ctl.Text, "asset 2") {
		t.Errorf("controls page does not name the asset:\n%s", ctl.Text)
	}
	ap := look("kenji", "/console/approvals", 1366)
	if !strings.Contains(ap.Text, "lift BTC withdrawals") || !strings.Contains(ap.Text, "Approve") || strings.Contains(ap.Text, `{"switch":{"asset"`) {
		t.Errorf("approvals page as kenji:\n%s", ap.Text)
	}
	// The journal, newest first, and filtered by actor.
	jn := look("kenji", "/console/journal", 1366)
	first := strings.Index(jn.Table, "open_request")
	halt := strings.Index(jn.Table, "\thalt\t")
	if first < 0 || halt < 0 || first > halt {
		t.Errorf("journal not newest first (the lift request after the halt):\n%.2000s", jn.Table)
	}
	jf := look("kenji", "/console/journal?actor=aiko&kind=open_request", 1366)
	if !strings.Contains(jf.Table, "open_request") || strings.Contains(jf.Table, "\thalt\t") || strings.Contains(jf.Table, "create_assets") || strings.Contains(jf.Table, "\tren\t") {
		t.Errorf("journal filtered by aiko's open_request:\n%.2000s", jf.Table)
	}
	// The requester is not offered Approve; the CISO, without the
	// approver role, neither.
	for _, op := range []struct{ name, tok string }{{"aiko", aiko}, {"sora", sora}} {
		do("as "+op.name, as(op.tok))
		var n int
		do("approve buttons", chromedp.Navigate(e.http.URL+"/console/approvals"), chromedp.WaitVisible(chromedp.CSS("main h1")),
			chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				var err error
				n, err = chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll('tr[data-request=%q] button.approve').length`, liftReq.ID))(ctx, tg)
				return err
			}))
		if n != 0 {
			t.Errorf("%s is offered Approve on %s", op.name, liftReq.ID)
		}
	}
}
