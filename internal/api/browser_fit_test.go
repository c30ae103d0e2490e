package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"kinko/internal/core"
	"kinko/internal/incident"
	"kinko/internal/people"
	"kinko/internal/withdraw"
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
	needChromium(t)
	e := newEnv(t)
	taker, _ := e.trader("taker@example.jp", 100_000_000, 0)
	e.seedBTCJPY(taker)
	aiko, kenji, sora := e.loginOperator("aiko"), e.loginOperator("kenji"), e.loginOperator("sora")
	if r := e.do("POST", "/v1/halts", kenji, HaltRequest{Switch: "BTC:withdraw", Reason: "unexplained outflow under investigation"}); r.status != 201 {
		t.Fatalf("halt = %d %s", r.status, r.body)
	}
	e.submit(core.OpenIncident{Incident: incident.Incident{ID: "outflow-BTC-1", Asset: "BTC", Detector: "watcher", Reason: "an output of ours spent by a transaction nobody journaled", TxIDs: []string{strings.Repeat("ab", 32)}, Loss: withdraw.AmountOf(18_994_932)}})
	lift := e.do("POST", "/v1/requests", aiko, OpenRequestRequest{Kind: core.KindLiftHalt, Payload: json.RawMessage(`{"switch":"BTC:withdraw"}`), Reason: "cause found", RequiredRole: people.RoleApprover})
	var liftReq struct{ ID string }
	lift.json(t, &liftReq)
	if lift.status != 201 {
		t.Fatalf("lift request = %d %s", lift.status, lift.body)
	}

	tab := newTab(t, chromedp.Flag("hide-scrollbars", true), chromedp.WindowSize(1366, 900))
	if err := chromedp.Do(tab, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	do := steps(t, tab, nil)
	as := func(tok string) chromedp.Action[chromedp.Void] { return withCookie(cookieName, tok, e.http.URL, "/") }
	look := func(who, path string, width int64) fit {
		t.Helper()
		var m fit
		name := fmt.Sprintf("fit-%d-%s-%s.png", width, who, strings.NewReplacer("/console/", "", "/", "-", "?", "-", "=", "-", "&", "-").Replace(path))
		if strings.HasSuffix(name, "-.png") {
			name = strings.TrimSuffix(name, "-.png") + "-home.png"
		}
		do("look at "+path, chromedp.EmulateViewport(width, 900), chromedp.Navigate(e.http.URL+path), chromedp.WaitVisible(chromedp.CSS("main h1")), measureFit(&m), screenshotTo(name))
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
