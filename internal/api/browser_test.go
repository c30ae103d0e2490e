package api

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"kinko/internal/core"
	"kinko/internal/incident"
	"kinko/internal/people"
)

// chromiumPath is Debian's chromium, which scripts/install-chromium.sh
// installs.
const chromiumPath = "/usr/bin/chromium"

// artifacts is where the browser test saves its screenshots.
var artifacts = filepath.Join("..", "..", "artifacts", "browser")

// TestConsoleInBrowser drives the console in a real headless Chromium: an
// operator logs in with TOTP and sets a customer's KYC and proposes an
// asset; the CISO reviews it and requests its listing; the operator, now as
// the second person, approves it. Screenshots go to artifacts/browser.
func TestConsoleInBrowser(t *testing.T) {
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Fatalf("%s not found: run scripts/install-chromium.sh (make test does)", chromiumPath)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	id, _ := e.signUp("browser@example.jp")
	// The browser's clock is real: run the server on real time from here.
	e.clock.mu.Lock()
	e.clock.t = time.Now().Add(2 * time.Minute)
	e.clock.mu.Unlock()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	tab, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first action starts the browser; it gets no deadline (a deadline
	// on it would stop the browser). Every later step gets its own.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	shot := 0
	screenshot := func(name string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			buf, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return chromedp.Void{}, err
			}
			shot++
			return chromedp.Void{}, os.WriteFile(filepath.Join(artifacts, fmt.Sprintf("%02d-%s.png", shot, name)), buf, 0o644)
		}
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			sctx, cancel := context.WithTimeout(tab, 5*time.Second)
			defer cancel()
			chromedp.Do(sctx, screenshot("failed"))
			t.Fatalf("%s: %v (see artifacts/browser)", what, err)
		}
	}
	login := func(name string) {
		t.Helper()
		run("login page", chromedp.Navigate(e.http.URL+"/console/login"), chromedp.WaitVisible(chromedp.ID("#login")))
		e.clock.Add(31 * time.Second) // a fresh TOTP step for each login
		code := e.code(name)
		run("log in as "+name,
			chromedp.SendKeys(chromedp.ID("#name"), name),
			chromedp.SendKeys(chromedp.ID("#password"), testPassword),
			chromedp.SendKeys(chromedp.ID("#totp"), code),
			screenshot("login-"+name),
			chromedp.Click(chromedp.ID("#login")),
			chromedp.WaitVisible(chromedp.CSS("header .who")),
		)
	}
	logout := func() {
		run("log out", chromedp.Click(chromedp.CSS("header .who button")), chromedp.WaitVisible(chromedp.ID("#login")))
	}

	// The public status page needs no login.
	run("status", chromedp.Navigate(e.http.URL+"/status"), chromedp.WaitVisible(chromedp.ID("#all-ok")), screenshot("status"))

	// An operator logs in with TOTP and verifies a customer.
	login("kenji")
	row := fmt.Sprintf(`tr[data-customer="%d"]`, id)
	run("set KYC",
		chromedp.Click(chromedp.CSS(`a[href="/console/customers"]`)),
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.SetValue(chromedp.CSS(row+` select[name="kyc"]`), "verified"),
		chromedp.SendKeys(chromedp.CSS(row+` input[name="reason"]`), "passport and address checked"),
		chromedp.Click(chromedp.CSS(row+` button`)),
		chromedp.WaitVisible(chromedp.CSS(row+` .tag.verified`)),
		screenshot("kyc-verified"),
	)
	e.core.Read(func(s *core.State) {
		if !s.People.CanTrade(id) {
			t.Fatal("KYC set in the browser did not reach the core")
		}
	})
	// The operator proposes a new asset: it stays disabled.
	run("propose asset",
		chromedp.Click(chromedp.CSS(`a[href="/console/assets"]`)),
		chromedp.WaitVisible(chromedp.ID("#propose")),
		chromedp.SendKeys(chromedp.CSS(`form[action="/console/assets"] input[name="id"]`), "9"),
		chromedp.SendKeys(chromedp.CSS(`form[action="/console/assets"] input[name="code"]`), "XEM"),
		chromedp.SendKeys(chromedp.CSS(`form[action="/console/assets"] input[name="decimals"]`), "6"),
		chromedp.SendKeys(chromedp.CSS(`form[action="/console/assets"] input[name="reason"]`), "customer demand"),
		chromedp.Click(chromedp.ID("#propose")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-asset="XEM"] .tag.pending`)),
		screenshot("asset-proposed"),
	)
	logout()

	// The CISO records the risk review and requests the listing.
	login("sora")
	run("review and request listing",
		chromedp.Navigate(e.http.URL+"/console/assets"),
		chromedp.WaitVisible(chromedp.ID("#review")),
		chromedp.SendKeys(chromedp.CSS(`form[action="/console/assets/review"] input[name="code"]`), "XEM"),
		chromedp.SendKeys(chromedp.CSS(`input[name="aml_risk"]`), "medium: no privacy features"),
		chromedp.SendKeys(chromedp.CSS(`input[name="chain_maturity"]`), "mainnet since 2015"),
		chromedp.SendKeys(chromedp.CSS(`input[name="multisig"]`), "native m-of-n multisig accounts"),
		chromedp.SendKeys(chromedp.CSS(`input[name="custody_plan"]`), "98% cold 2-of-3, hot 2% under the co-signer"),
		chromedp.Click(chromedp.ID("#review")),
		chromedp.WaitVisible(chromedp.CSS(`#flash.ok`)),
		screenshot("reviewed"),
		chromedp.SendKeys(chromedp.CSS(`tr[data-asset="XEM"] input[name="reason"]`), "review recommends listing"),
		chromedp.Click(chromedp.CSS(`tr[data-asset="XEM"] .request-listing`)),
		chromedp.WaitVisible(chromedp.ID("#requests")),
		screenshot("listing-requested"),
	)
	var reqID string
	e.core.Read(func(s *core.State) {
		for _, r := range s.People.Requests() {
			if r.Kind == people.KindListAsset {
				reqID = r.ID
			}
		}
	})
	if reqID == "" {
		t.Fatal("no listing request in the core")
	}
	// The requester cannot approve her own request.
	rrow := fmt.Sprintf(`tr[data-request="%s"]`, reqID)
	run("self-approval refused",
		chromedp.SendKeys(chromedp.CSS(rrow+` input[name="reason"]`), "mine"),
		chromedp.Click(chromedp.CSS(rrow+` .approve`)),
		chromedp.WaitVisible(chromedp.CSS(`#flash.err`)),
		screenshot("self-approval-refused"),
	)
	flash, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("flash")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(flash, "own request") {
		t.Fatalf("self-approval flash = %q", flash)
	}
	logout()

	// The second operator approves it, and the asset is enabled.
	login("kenji")
	run("approve",
		chromedp.Navigate(e.http.URL+"/console/approvals"),
		chromedp.WaitVisible(chromedp.CSS(rrow)),
		chromedp.SendKeys(chromedp.CSS(rrow+` input[name="reason"]`), "risk committee agreed"),
		chromedp.Click(chromedp.CSS(rrow+` .approve`)),
		chromedp.WaitVisible(chromedp.CSS(rrow+` .tag.approved`)),
		screenshot("listing-approved"),
		chromedp.Navigate(e.http.URL+"/console/assets"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-asset="XEM"] .tag.enabled`)),
		screenshot("asset-enabled"),
		chromedp.Navigate(e.http.URL+"/console/withdrawals"),
		chromedp.WaitVisible(chromedp.CSS("main h1")),
		screenshot("withdrawals"),
		chromedp.Navigate(e.http.URL+"/console/reserves"),
		chromedp.WaitVisible(chromedp.ID("reserves")),
		screenshot("reserves"),
		chromedp.Navigate(e.http.URL+"/console/journal?verify=1"),
		chromedp.WaitVisible(chromedp.ID("#verify-result")),
		screenshot("journal-verified"),
	)
	e.core.Read(func(s *core.State) {
		a, _ := s.Ledger.AssetByCode("XEM")
		if !s.People.AssetEnabled(a.ID) {
			t.Fatal("asset not enabled in the core")
		}
	})

	// The halt matrix: one operator halts BTC withdrawals with a button; the
	// public status page shows it; lifting takes a request and a second
	// operator's approval.
	cell := `td[data-switch="BTC:withdraw"]`
	run("halt from the matrix",
		chromedp.Click(chromedp.CSS(`a[href="/console/controls"]`)),
		chromedp.WaitVisible(chromedp.ID("#matrix")),
		chromedp.SendKeys(chromedp.CSS(cell+` form.halt input[name="reason"]`), "drill: suspicious outflow"),
		chromedp.Click(chromedp.CSS(cell+` form.halt button`)),
		chromedp.WaitVisible(chromedp.CSS(cell+`.halted`)),
		screenshot("controls-halted"),
		chromedp.Navigate(e.http.URL+"/status"),
		chromedp.WaitVisible(chromedp.ID("#halts")),
		screenshot("status-halted"),
	)
	logout()
	login("aiko")
	run("request the lift",
		chromedp.Navigate(e.http.URL+"/console/controls"),
		chromedp.WaitVisible(chromedp.CSS(cell+` form.lift`)),
		chromedp.SendKeys(chromedp.CSS(cell+` form.lift input[name="reason"]`), "cause found and fixed"),
		chromedp.Click(chromedp.CSS(cell+` form.lift button`)),
		chromedp.WaitVisible(chromedp.CSS(`#flash.ok`)),
		chromedp.WaitVisible(chromedp.CSS(cell+` a[href="/console/approvals"]`)),
		screenshot("lift-requested"),
	)
	var liftID string
	e.core.Read(func(s *core.State) {
		if err := s.Controls.Allowed(2, "withdraw"); err == nil {
			t.Fatal("the halt from the browser did not reach the core")
		}
		for _, r := range s.People.Requests() {
			if r.Kind == core.KindLiftHalt {
				liftID = r.ID
			}
		}
	})
	logout()
	login("kenji")
	lrow := fmt.Sprintf(`tr[data-request="%s"]`, liftID)
	run("approve the lift",
		chromedp.Navigate(e.http.URL+"/console/approvals"),
		chromedp.WaitVisible(chromedp.CSS(lrow)),
		chromedp.SendKeys(chromedp.CSS(lrow+` input[name="reason"]`), "verified the fix"),
		chromedp.Click(chromedp.CSS(lrow+` .approve`)),
		chromedp.WaitVisible(chromedp.CSS(lrow+` .tag.approved`)),
		chromedp.Navigate(e.http.URL+"/console/controls"),
		chromedp.WaitVisible(chromedp.CSS(cell+`.running`)),
		chromedp.WaitVisible(chromedp.ID("#timeline")),
		screenshot("controls-lifted"),
	)
	e.core.Read(func(s *core.State) {
		if err := s.Controls.Allowed(2, "withdraw"); err != nil {
			t.Fatalf("after the approved lift: %v", err)
		}
	})

	// Markets: BTC/JPY with a book and two trades, one filled while BTC
	// deposits were halted. The operator sets the dealer desk's reference
	// price, reads the book, the trades and the desk, and empties the book.
	e.seedBTCJPY(id)
	actions := `tr[data-market-actions="BTC/JPY"]`
	run("markets",
		chromedp.Click(chromedp.CSS(`a[href="/console/markets"]`)),
		chromedp.WaitVisible(chromedp.ID("#markets")),
		screenshot("markets"),
		chromedp.SendKeys(chromedp.CSS(actions+` form.reference input[name="price"]`), "10000000"),
		chromedp.Click(chromedp.CSS(actions+` form.reference button`)),
		chromedp.WaitVisible(chromedp.CSS(`#flash.ok`)),
	)
	e.core.Read(func(s *core.State) {
		if m, _ := s.Trading.MarketByCode("BTC/JPY"); m.Reference != 10_000_000 {
			t.Fatalf("reference set in the browser = %d", m.Reference)
		}
	})
	e.dealerBuy(id, 2000_0000)
	run("market book and trades",
		chromedp.Click(chromedp.CSS(`tr[data-market="BTC/JPY"] a`)),
		chromedp.WaitVisible(chromedp.ID("#bids")),
		chromedp.WaitVisible(chromedp.ID("#asks")),
		chromedp.WaitVisible(chromedp.CSS(`#trades tr[data-trade="2"] .tag.halted`)),
		screenshot("market-book"),
	)
	run("dealer desk",
		chromedp.Click(chromedp.CSS(`a[href="/console/dealer"]`)),
		chromedp.WaitVisible(chromedp.ID("#dealer")),
		screenshot("dealer"),
	)
	run("cancel every resting order",
		chromedp.Click(chromedp.CSS(`a[href="/console/markets"]`)),
		chromedp.WaitVisible(chromedp.ID("#markets")),
		chromedp.SendKeys(chromedp.CSS(actions+` form.cancel-all input[name="reason"]`), "drill: empty the book"),
		chromedp.Click(chromedp.CSS(actions+` form.cancel-all button`)),
		chromedp.WaitVisible(chromedp.CSS(`#flash.ok`)),
		screenshot("markets-emptied"),
	)
	e.core.Read(func(s *core.State) {
		if m, _ := s.Trading.MarketByCode("BTC/JPY"); m.Book.Len() != 0 || len(s.Trading.OpenOrders(0)) != 0 {
			t.Fatalf("after cancel-all in the browser: %d resting", m.Book.Len())
		}
	})

	// An incident's page: its timeline picture, plans and notice draft.
	e.submit(core.OpenIncident{Incident: incident.Incident{ID: "drill-1", Asset: "BTC", Detector: "watcher", Reason: "unexplained outflow", TxIDs: []string{"ab12cd34"}}})
	run("incident page",
		chromedp.Navigate(e.http.URL+"/console/incidents/drill-1"),
		chromedp.WaitVisible(chromedp.ID("#incident-timeline")),
		chromedp.WaitVisible(chromedp.ID("#notice")),
		screenshot("incident"),
	)
}
