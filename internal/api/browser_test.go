package api

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"kinko/internal/core"
	"kinko/internal/incident"
	"kinko/internal/journal"
	"kinko/internal/operators"
	"kinko/internal/passkey"
	"kinko/internal/people"
)

// chromiumPath is Debian's chromium, which scripts/install-chromium.sh
// installs.
const chromiumPath = "/usr/bin/chromium"

// artifacts is where the browser test saves its screenshots.
var artifacts = filepath.Join("..", "..", "artifacts", "browser")

// TestConsoleInBrowser drives the console in a real headless Chromium
// with its virtual authenticator: the founders enrol their credentials
// with their one-time codes; an operator signs in with hers and sets a
// customer's KYC and proposes an asset (signed); the CISO reviews it and
// requests its listing; her own approval is refused; the operator, as the
// second person, approves it; a halt's lift is asked by one admin and
// approved by another, each approval signed by the authenticator over the
// request's digest and verified by the core. Screenshots go to
// artifacts/browser.
func TestConsoleInBrowser(t *testing.T) {
	needChromium(t)
	// Founders on an empty journal, as `kinko operators bootstrap` makes
	// them: aiko, kenji and sora enrol a credential in the browser's
	// virtual authenticator; ren and yui hold CLI keys.
	e := newEnvEmpty(t)
	// The browser's clock is real: run the server on real time from here.
	e.clock.mu.Lock()
	e.clock.t = time.Now().Add(2 * time.Minute)
	e.clock.mu.Unlock()
	base := strings.Replace(e.http.URL, "127.0.0.1", "localhost", 1) // WebAuthn needs a domain
	rp := passkey.RP{ID: "localhost", Origins: []string{base}}
	codes := map[string]string{}
	b := core.Bootstrap{RP: rp, Expires: e.clock.Now().Add(time.Hour).UnixNano()}
	for _, f := range []struct {
		name  string
		roles []people.Role
	}{{"aiko", []people.Role{people.RoleAdmin}}, {"kenji", []people.Role{people.RoleOperator, people.RoleApprover}}, {"sora", []people.Role{people.RoleCISO}},
		{"ren", []people.Role{people.RoleAdmin}}, {"yui", []people.Role{people.RoleAdmin}}} {
		codes[f.name] = "code-of-" + f.name + "-0123456789"
		b.Founders = append(b.Founders, people.Founder{Name: f.name, Roles: f.roles, Code: sha256.Sum256([]byte(codes[f.name]))})
	}
	e.submit(b)
	e.team = operators.New(rp, "browser", operators.Member{Name: "ren", Roles: []people.Role{people.RoleAdmin}}, operators.Member{Name: "yui", Roles: []people.Role{people.RoleAdmin}})
	for _, o := range e.team.Operators() {
		e.submit(core.EnrolCredential{Operator: o.Name, Code: codes[o.Name], Key: people.Key{ID: o.Key.ID(), PublicKey: o.Key.PublicKey(), Label: "cli key"}})
	}
	e.listers = [2]string{"ren", "yui"}
	id, _ := e.signUp("browser@example.jp")

	tab := newTab(t, chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900))
	// The first action starts the browser; it gets no deadline (a deadline
	// on it would stop the browser). Every later step gets its own. The
	// tab gets Chromium's virtual authenticator (CTAP2, with user
	// verification), which holds the operators' credentials.
	if err := chromedp.Do(tab, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{Options: &cdpwebauthn.VirtualAuthenticatorOptions{
			Protocol: cdpwebauthn.AuthenticatorProtocolCtap2, Ctap2version: cdpwebauthn.Ctap2versionCtap21, Transport: cdpwebauthn.AuthenticatorTransportUsb,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}})
		return err
	})); err != nil {
		t.Fatalf("start chromium with a virtual authenticator: %v", err)
	}

	shot := 0
	screenshot := func(name string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			shot++
			return screenshotTo(fmt.Sprintf("%02d-%s.png", shot, name))(ctx, tg)
		}
	}
	run := steps(t, tab, screenshot("failed"))
	// Each founder opens their enrolment link and registers a credential:
	// a founder's first is active at once.
	for _, name := range []string{"aiko", "kenji", "sora"} {
		run("enrol "+name,
			chromedp.Navigate(base+"/console/enrol?"+url.Values{"operator": {name}, "code": {codes[name]}}.Encode()),
			chromedp.WaitVisible(chromedp.ID("#enrol")),
			chromedp.Click(chromedp.ID("#enrol")),
			chromedp.WaitVisible(chromedp.CSS(`form[data-enrolled="active"]`)),
			screenshot("enrolled-"+name),
		)
		if o, _ := e.srv.operatorOf(name); len(o.Keys) != 1 {
			t.Fatalf("%s enrolled in the browser has %d credentials", name, len(o.Keys))
		}
	}
	// An enrolment code works once.
	run("code used twice",
		chromedp.Navigate(base+"/console/enrol?"+url.Values{"operator": {"aiko"}, "code": {codes["aiko"]}}.Encode()),
		chromedp.WaitVisible(chromedp.ID("#enrol")),
		chromedp.Click(chromedp.ID("#enrol")),
		chromedp.WaitVisible(chromedp.CSS(`.sign-status.err`)),
	)
	login := func(name string) {
		t.Helper()
		run("log in as "+name,
			chromedp.Navigate(base+"/console/login"),
			chromedp.WaitVisible(chromedp.ID("#login")),
			chromedp.SendKeys(chromedp.ID("#name"), name),
			screenshot("login-"+name),
			chromedp.Click(chromedp.ID("#login")),
			chromedp.WaitVisible(chromedp.CSS("header .who")),
		)
	}
	logout := func() {
		run("log out", chromedp.Click(chromedp.CSS("header .who button")), chromedp.WaitVisible(chromedp.ID("#login")))
	}

	// The public status page needs no login.
	run("status", chromedp.Navigate(base+"/status"), chromedp.WaitVisible(chromedp.ID("#all-ok")), screenshot("status"))

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
		chromedp.Navigate(base+"/console/assets"),
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
	// The requester is not offered Approve on her own request (the core
	// refuses it anyway: people.ErrSelfApproval), only Withdraw.
	rrow := fmt.Sprintf(`tr[data-request="%s"]`, reqID)
	var approves int
	var withdraw string
	run("no self-approval offered",
		chromedp.Navigate(base+"/console/approvals"),
		chromedp.WaitVisible(chromedp.CSS(rrow)),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			var err error
			if approves, err = chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll('%s .approve').length`, rrow))(ctx, tg); err != nil {
				return err
			}
			withdraw, err = chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector('%s button.danger').innerText`, rrow))(ctx, tg)
			return err
		}),
		screenshot("self-approval-not-offered"),
	)
	if approves != 0 || withdraw != "Withdraw" {
		t.Fatalf("the requester is offered %d Approve buttons on her own request, and %q", approves, withdraw)
	}
	logout()

	// The second operator approves it, and the asset is enabled.
	login("kenji")
	run("approve",
		chromedp.Navigate(base+"/console/approvals"),
		chromedp.WaitVisible(chromedp.CSS(rrow)),
		chromedp.SendKeys(chromedp.CSS(rrow+` input[name="reason"]`), "risk committee agreed"),
		chromedp.Click(chromedp.CSS(rrow+` .approve`)),
		chromedp.WaitVisible(chromedp.CSS(rrow+` .tag.approved`)),
		screenshot("listing-approved"),
		chromedp.Navigate(base+"/console/assets"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-asset="XEM"] .tag.enabled`)),
		screenshot("asset-enabled"),
		chromedp.Navigate(base+"/console/withdrawals"),
		chromedp.WaitVisible(chromedp.CSS("main h1")),
		screenshot("withdrawals"),
		chromedp.Navigate(base+"/console/reserves"),
		chromedp.WaitVisible(chromedp.ID("reserves")),
		screenshot("reserves"),
		chromedp.Navigate(base+"/console/journal?verify=1"),
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
		chromedp.Navigate(base+"/status"),
		chromedp.WaitVisible(chromedp.ID("#halts")),
		screenshot("status-halted"),
	)
	logout()
	login("aiko")
	run("request the lift",
		chromedp.Navigate(base+"/console/controls"),
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
		chromedp.Navigate(base+"/console/approvals"),
		chromedp.WaitVisible(chromedp.CSS(lrow)),
		chromedp.SendKeys(chromedp.CSS(lrow+` input[name="reason"]`), "verified the fix"),
		chromedp.Click(chromedp.CSS(lrow+` .approve`)),
		chromedp.WaitVisible(chromedp.CSS(lrow+` .tag.approved`)),
		chromedp.Navigate(base+"/console/controls"),
		chromedp.WaitVisible(chromedp.CSS(cell+`.running`)),
		chromedp.WaitVisible(chromedp.ID("#timeline")),
		screenshot("controls-lifted"),
	)
	e.core.Read(func(s *core.State) {
		if err := s.Controls.Allowed(2, "withdraw"); err != nil {
			t.Fatalf("after the approved lift: %v", err)
		}
	})
	// The approval in the journal carries Chromium's assertion over the
	// request's digest, made by kenji's credential: it verifies again
	// here, and over any other bytes it does not.
	var signed int
	e.core.Journal().Scan(1, func(en journal.Entry) error {
		c, _ := core.DecodeCommand(en.Kind, en.Payload)
		d, ok := c.(core.DecideRequest)
		if !ok || d.ID != liftID || d.Decider != "kenji" || d.Assertion == nil {
			return nil
		}
		o, _ := e.srv.operatorOf("kenji")
		_, dg, _ := core.SignedDigest(d)
		if _, err := passkey.Verify(rp, o.Keys[0].PublicKey, 0, dg[:], *d.Assertion); err != nil {
			t.Errorf("the journaled approval does not verify: %v", err)
		}
		other := sha256.Sum256(dg[:])
		if _, err := passkey.Verify(rp, o.Keys[0].PublicKey, 0, other[:], *d.Assertion); err == nil {
			t.Error("the journaled approval verifies over other bytes")
		}
		signed++
		return nil
	})
	if signed != 1 {
		t.Fatalf("%d signed approvals of the lift in the journal", signed)
	}

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
		chromedp.Navigate(base+"/console/incidents/drill-1"),
		chromedp.WaitVisible(chromedp.ID("#incident-timeline")),
		chromedp.WaitVisible(chromedp.ID("#notice")),
		screenshot("incident"),
	)
}
