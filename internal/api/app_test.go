package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"kinko/internal/auth"
	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/people"
	"kinko/internal/yen"
	"kinko/internal/yen/bankconn"
	"kinko/internal/yen/paysim"
	"kinko/internal/yen/zengin"
)

// yenBook is what a customer has in yen, as the ledger and the yen state
// keep it: available, the pending holds on it, held, payouts, registered
// bank accounts and a virtual account. A refused action leaves it as it
// was.
func (e *env) yenBook(id ledger.OwnerID) string {
	var out string
	e.core.Read(func(st *core.State) {
		a, _ := st.Ledger.AssetByCode("JPY")
		acc := func(k ledger.Kind) ledger.Account {
			x, _ := st.Ledger.Account(ledger.AccountKey{Owner: id, Asset: a.ID, Kind: k})
			return x
		}
		av, held := acc(ledger.KindAvailable), acc(ledger.KindHeld)
		_, virtual := st.Yen.VirtualOf(uint64(id))
		out = fmt.Sprintf("available %s (holds %s), held %s (pending %s), payouts %d, bank accounts %d, virtual %v", av.Balance(), av.DebitsPending, held.Balance(), held.CreditsPending,
			len(st.Yen.Payouts(func(p *yen.Payout) bool { return p.Customer == uint64(id) }, MaxLimit)), len(st.Yen.BankAccounts(uint64(id))), virtual)
	})
	return out
}

// yenCustomer signs a customer up, verifies them and records their name
// in kana, as an operator does at KYC.
func (e *env) yenCustomer(email, kana string, verified bool) (ledger.OwnerID, string) {
	e.t.Helper()
	id, tok := e.signUp(email)
	if verified {
		e.submitCore(core.SetKYC{Customer: id, KYC: people.KYCVerified, Actor: "kenji", Reason: "documents"})
		e.submitCore(core.YenSetKana{Customer: id, Name: kana, Actor: "kenji", Reason: "KYC"})
	}
	return id, tok
}

var testYenConfig = yen.Config{Asset: "JPY", Trust: zengin.Account{Bank: "0397", BankName: "ｷﾝｺｼﾝﾀｸ", Branch: "100", Type: 1, Number: "1000001", Name: "ｷﾝｺ ｼﾝﾀｸ"},
	Operating: zengin.Account{Bank: "0397", Branch: "100", Type: 1, Number: "1000002"}, RequesterCode: "1234567890", Requester: "ｶ)ｷﾝｺ",
	VirtualBranch: "200", VirtualFirst: 2000001, VirtualCount: 10, Fee: 110, DepositMax: 1_000_000, PaymentMax: 300_000, ReviewTwoPersonAbove: 500_000}

// TestCustomerAppInBrowser drives the customer app in a real headless
// Chromium: a customer signs in with e-mail, password and TOTP code, gets
// a virtual account, registers a bank account and sees it cooling down, is
// refused a withdrawal to it, sees a bank deposit credited (and a third
// party's held) in the history and the balance, signs in again when the
// session ended with the cool-down, withdraws yen and sees it held, and
// asks for a pay-easy payment number. Then the attacks: another
// customer's bank-account key put in the forms, a cross-site form from
// another port of the same host, the form's token posted from another
// site, an operator's session on the app and the
// customer's on the console, an unverified customer asking for a virtual
// account, and bad inputs (amounts of zero, past the limit and past the
// balance, a kanji name, a 5-digit branch, an account still cooling, a
// wrong code): each refused with a clear message on the page, and the
// customer's yen as it was. Each page fits at 1366 and 1920 px.
// Screenshots go to artifacts/browser/app-*.png.
func TestCustomerAppInBrowser(t *testing.T) {
	needChromium(t)
	e := newEnv(t)
	e.submitCore(core.YenSetup{Config: testYenConfig})
	provider := paysim.New(paysim.Config{Key: []byte("provider key of the customer app test")})
	ps := httptest.NewTLSServer(provider.API())
	t.Cleanup(ps.Close)
	conn, err := bankconn.New(bankconn.Config{Core: e.core, Drop: t.TempDir(), BankKey: []byte("bank key of the customer app test"), ProviderKey: []byte("provider key of the customer app test"),
		ProviderURL: ps.URL, ProviderClient: ps.Client(), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.SetYen(conn)

	hana := "hana@example.jp"
	id, _ := e.yenCustomer(hana, "ヤマダ ハナ", true)
	// Another customer, with a bank account of her own.
	other := "other@example.jp"
	oid, otok := e.yenCustomer(other, "スズキ イチロウ", true)
	otherKey := "0009-250-1-7654321"
	if r := e.do("POST", "/v1/me/yen/bank-accounts", otok, BankAccountRequest{Bank: "0009", Branch: "250", Type: 1, Number: "7654321", Name: "ｽｽﾞｷ ｲﾁﾛｳ"}, "X-TOTP", e.code(other)); r.status != 201 {
		t.Fatalf("the other customer's bank account = %d %s", r.status, r.body)
	}
	otherBook := e.yenBook(oid)

	tab := newTab(t, chromedp.Flag("hide-scrollbars", true), chromedp.WindowSize(1366, 900))
	if err := chromedp.Do(tab, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	base := e.http.URL
	screenshot := func(name string) chromedp.Action[chromedp.Void] { return screenshotTo("app-" + name + ".png") }
	run := steps(t, tab, screenshot("failed"))
	eval := func(what, js string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, 20*time.Second)
		defer cancel()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return s
	}
	text := func(sel string) string {
		t.Helper()
		return eval("text of "+sel, fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, sel))
	}
	set := func(sel, v string) chromedp.Action[chromedp.Void] { return chromedp.SetValue(chromedp.CSS(sel), v) }
	page := func(then ...chromedp.Action[chromedp.Void]) []chromedp.Action[chromedp.Void] {
		return append([]chromedp.Action[chromedp.Void]{chromedp.Navigate(base + "/app/yen"), chromedp.WaitVisible(chromedp.ID("#balance"))}, then...)
	}
	signIn := func(email string) {
		t.Helper()
		run("sign in as "+email,
			chromedp.Navigate(base+"/app/yen"),
			chromedp.WaitVisible(chromedp.ID("#login")),
			set("#email", email), set("#password", testPassword), set("#totp", e.code(email)),
			chromedp.Click(chromedp.ID("#login")),
			chromedp.WaitVisible(chromedp.ID("#balance")))
		if got := text("#customer"); got != email {
			t.Fatalf("signed in as %q, the page says %q", email, got)
		}
	}
	// refused posts a form of the page and expects the page back with an
	// error that says want, and the customer's yen as it was.
	refused := func(what, want string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		before := e.yenBook(id)
		run(what, append(page(actions...), chromedp.WaitVisible(chromedp.CSS("#flash.err")))...)
		if msg := text("#flash"); !strings.Contains(msg, want) {
			t.Errorf("%s: the page says %q; want %q", what, msg, want)
		}
		if after := e.yenBook(id); after != before {
			t.Errorf("%s changed the customer's yen: %s -> %s", what, before, after)
		}
	}
	done := func(what, want string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		run(what, append(page(actions...), chromedp.WaitVisible(chromedp.CSS("#flash.ok")))...)
		if msg := text("#flash"); !strings.Contains(msg, want) {
			t.Errorf("%s: the page says %q; want %q", what, msg, want)
		}
	}
	fits := func(name string) {
		t.Helper()
		for _, width := range []int64{1366, 1920} {
			var m fit
			run(fmt.Sprintf("%s at %d", name, width), chromedp.EmulateViewport(width, 900), chromedp.WaitVisible(chromedp.CSS("main h1")), measureFit(&m),
				screenshot(fmt.Sprintf("%s-%d", name, width)))
			if m.ScrollWidth > m.InnerWidth {
				t.Errorf("%s at %d px: the page is %d px wide", name, width, m.ScrollWidth)
			}
			if m.HeaderRows != 1 {
				t.Errorf("%s at %d px: the header takes %d rows", name, width, m.HeaderRows)
			}
		}
		run("back to 1366", chromedp.EmulateViewport(1366, 900))
	}

	// Not signed in: the app sends the customer to its sign-in page. A
	// wrong code is refused (and journaled as a failed login).
	run("sign-in page", chromedp.Navigate(base+"/app/yen"), chromedp.WaitVisible(chromedp.ID("#login")))
	fits("login")
	var failedBefore, failedAfter int
	e.core.Read(func(st *core.State) { c, _ := st.People.Customer(id); failedBefore = c.Creds.Failed })
	run("wrong code", chromedp.Navigate(base+"/app/login"), chromedp.WaitVisible(chromedp.ID("#login")), set("#email", hana), set("#password", testPassword), set("#totp", "000000"), chromedp.Click(chromedp.ID("#login")), chromedp.WaitVisible(chromedp.CSS("#flash.err")))
	e.core.Read(func(st *core.State) { c, _ := st.People.Customer(id); failedAfter = c.Creds.Failed })
	if msg := text("#flash"); !strings.Contains(msg, "wrong name, password or code") || failedAfter != failedBefore+1 {
		t.Errorf("a wrong code: the page says %q; failures journaled %d -> %d", msg, failedBefore, failedAfter)
	}
	signIn(hana)
	if text("#available") != "0 JPY" || !strings.Contains(text("#no-virtual"), "Get my virtual account") {
		t.Fatalf("a new customer's page: %s", text("main"))
	}

	// The virtual account.
	done("virtual account", "virtual account is ready", chromedp.Click(chromedp.ID("#get-virtual")))
	var number string
	e.core.Read(func(st *core.State) { number, _ = st.Yen.VirtualOf(uint64(id)) })
	if v := text("#virtual"); number == "" || !strings.Contains(v, number) || !strings.Contains(v, "ｷﾝｺ ｼﾝﾀｸ") || !strings.Contains(v, "200") || !strings.Contains(v, "own name") {
		t.Fatalf("virtual account %q on the page: %s", number, v)
	}

	// A bank account: registered, cooling down.
	key := "0005-135-1-0123456"
	addAccount := func(bank, branch, number, name string) []chromedp.Action[chromedp.Void] {
		return []chromedp.Action[chromedp.Void]{set(`#add-account input[name="bank"]`, bank), set(`#add-account input[name="branch"]`, branch),
			set(`#add-account input[name="number"]`, number), set(`#add-account input[name="name"]`, name), set(`#add-account input[name="code"]`, e.code(hana)),
			chromedp.Click(chromedp.ID("#add-account-button"))}
	}
	done("register a bank account", "Bank account registered", addAccount("0005", "135", "0123456", "ﾔﾏﾀﾞ ﾊﾅ")...)
	row := fmt.Sprintf(`tr[data-account=%q]`, key)
	if s := text(row); !strings.Contains(s, "cooling down: usable from") || !strings.Contains(s, "ﾔﾏﾀﾞ ﾊﾅ") {
		t.Fatalf("the new bank account on the page: %q", s)
	}

	// A deposit through the bank's path: the bank's notice of a transfer
	// to the virtual account from her own name, and one from a third
	// party's, held for review.
	e.submitCore(core.YenBankCredits{Items: []core.BankCredit{{TxID: "1000001-1", Account: number, Amount: 100_000, Sender: "ﾔﾏﾀﾞ ﾊﾅ", Source: "notice"},
		{TxID: "1000001-2", Account: number, Amount: 5_000, Sender: "ﾀﾆﾝ", Source: "notice"}}})
	run("deposit shown", page(chromedp.WaitVisible(chromedp.ID("#history")))...)
	if a, h := text("#available"), text("#history"); a != "100,000 JPY" || !strings.Contains(h, "100,000 JPY") || !strings.Contains(h, "credited to your balance") ||
		!strings.Contains(h, "5,000 JPY") || !strings.Contains(h, "held for review: sent from an account in another name than yours") {
		t.Fatalf("after the deposits: available %q, history:\n%s", a, h)
	}

	// A withdrawal to the account still in its cool-down: refused, nothing
	// held.
	withdraw := func(account, amount string) []chromedp.Action[chromedp.Void] {
		return []chromedp.Action[chromedp.Void]{set(`#withdraw select[name="account"]`, account), set(`#withdraw input[name="amount"]`, amount),
			set(`#withdraw input[name="code"]`, e.code(hana)), chromedp.Click(chromedp.ID("#withdraw-button"))}
	}
	refused("withdraw in the cool-down", "still in its cool-down", withdraw(key, "10000")...)

	// The cool-down passes; the session ended meanwhile (8 hours): the app
	// asks her to sign in again.
	e.clock.Add(25 * time.Hour)
	newDevice := func() (n int) {
		e.core.Read(func(st *core.State) {
			for _, x := range st.People.NoticesOf(id, 1000) {
				if x.Kind == people.NoticeNewDevice {
					n++
				}
			}
		})
		return n
	}
	devices := newDevice()
	signIn(hana)
	if devices == 0 || newDevice() != devices {
		t.Errorf("new-device notices: %d before the second sign-in from this browser, %d after", devices, newDevice())
	}
	if s := text(row); !strings.Contains(s, "usable") || strings.Contains(s, "cooling") {
		t.Fatalf("the bank account after the cool-down: %q", s)
	}
	if !strings.Contains(text("#fee"), "Fee 110 JPY") {
		t.Errorf("the fee is not shown: %q", text("#fee"))
	}
	done("withdraw", "Withdrawal requested", withdraw(key, "10000")...)
	if a, h, hist := text("#available"), text("#held"), text("#history"); a != "89,890 JPY" || h != "10,110 JPY" || !strings.Contains(hist, "held: waiting for the next transfer to the bank") ||
		!strings.Contains(hist, "10,000 JPY") || !strings.Contains(hist, "110 JPY") {
		t.Fatalf("after the withdrawal: available %q held %q history:\n%s", a, h, hist)
	}
	var queued int
	e.core.Read(func(st *core.State) {
		for _, wd := range st.Withdraw.Withdrawals(0) {
			if wd.Customer == uint64(id) && wd.Status == "queued" && wd.Intent.Amount.String() == "10000" {
				queued++
			}
		}
	})
	if queued != 1 {
		t.Fatalf("%d queued withdrawals of 10,000 in the core", queued)
	}

	// A pay-easy payment number with its expiry.
	done("pay-easy", "Payment requested", set(`#pay select[name="method"]`, "pay-easy"), set(`#pay input[name="amount"]`, "5000"), chromedp.Click(chromedp.ID("#pay-button")))
	var pay yen.Payment
	e.core.Read(func(st *core.State) {
		if ps := st.Yen.Payments(uint64(id)); len(ps) == 1 {
			pay = ps[0]
		}
	})
	if p := text("#payments"); pay.Number == "" || !strings.Contains(p, pay.Number) || !strings.Contains(p, when(pay.Expires)) || !strings.Contains(p, "waiting for your payment") {
		t.Fatalf("payment %+v on the page:\n%s", pay, p)
	}
	fits("yen")

	// Attacks. Another customer's bank-account key in the remove form and
	// in the withdrawal form: not hers, refused; the other's account and
	// yen as they were.
	refused("remove another's account", "bank account not registered",
		chromedp.SetAttributeValue(chromedp.CSS(row+` input[name="key"]`), "value", otherKey), chromedp.Click(chromedp.CSS(row+` button`)))
	refused("withdraw to another's account", "bank account not registered",
		append([]chromedp.Action[chromedp.Void]{chromedp.SetAttributeValue(chromedp.CSS(`#withdraw option`), "value", otherKey)}, withdraw(otherKey, "1000")...)...)
	if got := e.yenBook(oid); got != otherBook {
		t.Fatalf("the other customer's yen changed: %s -> %s", otherBook, got)
	}
	// Bad inputs: each a clear message, nothing held or registered.
	refused("amount 0", "amount must be a positive whole number of yen", withdraw(key, "0")...)
	refused("amount not a number", "amount must be a positive whole number of yen", withdraw(key, "1e4")...)
	refused("amount over the limit", "over the per-withdrawal maximum 10000000", withdraw(key, "20000000")...)
	refused("amount past ten digits", "amount must be positive and within the limit", withdraw(key, "10000000000")...)
	refused("amount over the balance", "Withdrawal refused", withdraw(key, "95000")...)
	refused("wrong code", "code from your authenticator app is wrong", set(`#withdraw input[name="amount"]`, "1000"), set(`#withdraw input[name="code"]`, "123456"),
		chromedp.Click(chromedp.ID("#withdraw-button")))
	refused("kanji name", "holder name", addAccount("0005", "135", "0123457", "山田 花子")...)
	refused("another's name", "not the customer's registered name", addAccount("0005", "135", "0123457", "ｽｽﾞｷ ｲﾁﾛｳ")...)
	refused("5-digit branch", "branch", addAccount("0005", "13500", "0123457", "ﾔﾏﾀﾞ ﾊﾅ")...)
	if msg := text("#flash"); !strings.HasPrefix(msg, "Bank account not registered: ") {
		t.Errorf("a 5-digit branch: %q", msg)
	}
	done("second account", "Bank account registered", addAccount("0005", "135", "0123457", "ﾔﾏﾀﾞ ﾊﾅ")...)
	refused("withdraw to the cooling account", "still in its cool-down", withdraw("0005-135-1-0123457", "1000")...)
	refused("payment over the limit", "Payment not requested", set(`#pay input[name="amount"]`, "300001"), chromedp.Click(chromedp.ID("#pay-button")))

	// A cross-site form: a page on another port of this host (the same
	// site, so the browser sends the app's SameSite=Strict cookie) posts a
	// withdrawal the moment it loads, without the CSRF token.
	before := e.yenBook(id)
	body := crossSiteAnswer(t, tab, fmt.Sprintf(`<form method="POST" action="%s/app/yen/withdrawals"><input name="account" value="%s"><input name="amount" value="50000">
<input name="request_id" value="evil-1"><input name="code" value="000000"></form>`, base, key))
	if !strings.Contains(body, `"status":403`) || !strings.Contains(body, "CSRF") {
		t.Errorf("the cross-site form was answered %q; want 403 for the CSRF token", body)
	}
	if after := e.yenBook(id); after != before {
		t.Fatalf("a cross-site form moved the customer's yen: %s -> %s", before, after)
	}

	// Her app session on the console, and on the JSON API: neither takes
	// it. An operator's console session on the app: not a customer's.
	var appTok string
	run("the app's cookie", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/app/yen"}})
		if err != nil {
			return err
		}
		for _, c := range res.Cookies {
			if c.Name == appCookie {
				appTok = c.Value
				if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Path != "/app/" {
					t.Errorf("the app's cookie: httponly %v samesite %s path %s", c.HTTPOnly, c.SameSite, c.Path)
				}
			}
		}
		return nil
	}))
	if appTok == "" {
		t.Fatal("no app cookie in the browser")
	}
	cookie := func(name, value, path string) chromedp.Action[chromedp.Void] {
		return withCookie(name, value, base, path)
	}
	run("the customer's session on the console", cookie(cookieName, appTok, "/"), chromedp.Navigate(base+"/console/"), chromedp.WaitVisible(chromedp.ID("#login-form")))
	if r := e.raw("GET", "/v1/me/yen", "", nil, "Cookie", appCookie+"="+appTok); r.status != http.StatusUnauthorized {
		t.Errorf("the app's cookie on the JSON API = %d %s", r.status, r.body)
	}
	// The form's token from another site's page (a leaked token): the
	// browser says where the post comes from, and it is refused.
	before = e.yenBook(id)
	form := "csrf=" + e.srv.csrfFor(auth.HashToken(appTok)) + "&account=" + key + "&amount=1000&request_id=x1&code=" + e.code(hana)
	for name, h := range map[string][2]string{"another site": {"http://127.0.0.1:9", "same-site"}, "a no-referrer page elsewhere": {"null", "cross-site"}} {
		req, _ := http.NewRequest("POST", base+"/app/yen/withdrawals", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", h[0])
		req.Header.Set("Sec-Fetch-Site", h[1])
		req.AddCookie(&http.Cookie{Name: appCookie, Value: appTok})
		if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusForbidden {
			t.Errorf("a post with the token from %s = %v %v", name, res, err)
		}
	}
	if after := e.yenBook(id); after != before {
		t.Fatalf("a post from another site moved the customer's yen: %s -> %s", before, after)
	}
	kenji := e.loginOperator("kenji")
	run("an operator's session on the app", cookie(appCookie, kenji, "/app/"), chromedp.Navigate(base+"/app/yen"), chromedp.WaitVisible(chromedp.ID("#login")))
	req, _ := http.NewRequest("POST", base+"/app/yen/virtual-account", strings.NewReader("csrf="+e.srv.csrfFor(auth.HashToken(kenji))))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: appCookie, Value: kenji})
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("an operator's post to the app = %v %v", res, err)
	}

	// An unverified customer: the page says why there is no virtual
	// account; her post for one anyway is refused in words.
	run("sign out", append([]chromedp.Action[chromedp.Void]{cookie(appCookie, appTok, "/app/")}, page(chromedp.Click(chromedp.ID("#sign-out")), chromedp.WaitVisible(chromedp.ID("#login")))...)...)
	if r := e.raw("GET", "/app/yen", "", nil, "Cookie", appCookie+"="+appTok); r.status != http.StatusOK || !strings.Contains(string(r.body), `id="login"`) {
		t.Errorf("the session after signing out: %d", r.status)
	}
	newbie := "new@example.jp"
	nid, _ := e.yenCustomer(newbie, "", false)
	signIn(newbie)
	if why := text("#virtual-why"); !strings.Contains(why, "verified") || strings.Contains(text("main"), "Get my virtual account") {
		t.Fatalf("an unverified customer's page: %s", text("main"))
	}
	nbefore := e.yenBook(nid)
	run("an unverified customer asks anyway", chromedp.Evaluate[chromedp.Void](`(() => { const f = document.createElement("form"); f.method = "post"; f.action = "/app/yen/virtual-account";
		const i = document.createElement("input"); i.name = "csrf"; i.value = document.querySelector("input[name=csrf]").value; f.append(i); document.body.append(f); f.submit(); })()`),
		chromedp.WaitVisible(chromedp.CSS("#flash.err")), screenshot("unverified"))
	if msg := text("#flash"); !strings.Contains(msg, "Virtual account not given: customer's KYC is not verified") {
		t.Errorf("an unverified customer's virtual account: %q", msg)
	}
	if after := e.yenBook(nid); after != nbefore {
		t.Errorf("an unverified customer's refused virtual account changed %s -> %s", nbefore, after)
	}

	// The app's sign-in is the API's: wrong passwords in the app count
	// towards the same lock-out, journaled, and the lock holds for the
	// JSON API's login and the app's alike.
	run("sign out the newbie", page(chromedp.Click(chromedp.ID("#sign-out")), chromedp.WaitVisible(chromedp.ID("#login")))...)
	for i := 0; i < people.MaxFailed; i++ {
		run("wrong password", chromedp.Navigate(base+"/app/login"), chromedp.WaitVisible(chromedp.ID("#login")), set("#email", newbie), set("#password", "not her password"), set("#totp", e.code(newbie)), chromedp.Click(chromedp.ID("#login")),
			chromedp.WaitVisible(chromedp.CSS("#flash.err")))
	}
	if r := e.raw("POST", "/v1/customers/login", "", LoginRequest{Email: newbie, Password: testPassword, TOTP: e.code(newbie)}); r.status != http.StatusTooManyRequests {
		t.Errorf("the API's login after %d wrong passwords in the app = %d %s", people.MaxFailed, r.status, r.body)
	}
	run("locked in the app", chromedp.Navigate(base+"/app/login"), chromedp.WaitVisible(chromedp.ID("#login")), set("#email", newbie), set("#password", testPassword), set("#totp", e.code(newbie)), chromedp.Click(chromedp.ID("#login")),
		chromedp.WaitVisible(chromedp.CSS("#flash.err")), screenshot("locked"))
	if msg := text("#flash"); !strings.Contains(msg, "locked") {
		t.Errorf("the app's sign-in of a locked customer: %q", msg)
	}
}
