package api

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/people"
	"kinko/internal/withdraw"
	"kinko/internal/yen"
	"kinko/internal/yen/zengin"
)

// The customer app (/app/): customers sign in with their e-mail, password
// and TOTP code through the API's own sign-in (signIn: the same buckets,
// lock-outs and journaled failures), and see and move their yen through
// the same bodies of logic as the JSON routes (yenOf, assignVirtual,
// addBankAccount, removeBankAccount, withdrawYen, requestPayment), with
// the form's code as the step-up. Its session cookie is its own
// (appCookie, sent only to /app/), apart from the console's: an
// operator's session does not open it, nor a customer's the console.
const (
	appCookie    = "kinko_app"
	appPreCookie = "kinko_app_csrf"
	appDevice    = "kinko_app_device"
	appPath      = "/app/"
)

// appNotices are the notices a page shows after an action: the query
// names one, the text is the server's (nothing from the address is shown).
var appNotices = map[string]string{
	"virtual":    "Your virtual account is ready: send yen to it by bank transfer from an account in your own name.",
	"bank":       "Bank account registered: it is usable for withdrawals once its cool-down is over.",
	"removed":    "Bank account removed; withdrawals waiting to it are cancelled and their yen is back in your balance.",
	"withdrawal": "Withdrawal requested: the amount and the fee are held until the bank pays it.",
	"approval":   "Withdrawal requested: it is above the threshold, so two of our staff approve it first; the amount and the fee are held.",
	"payment":    "Payment requested: pay with the number below before it expires.",
	"card":       "Card payment requested: it is credited when the card charge goes through.",
}

func (s *Server) registerApp() {
	s.handle("GET", "/app/{$}", false, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/app/yen", http.StatusSeeOther)
	})
	s.handle("GET", "/app/login", false, func(w http.ResponseWriter, r *http.Request) {
		s.appLoginPage(w, http.StatusOK, "")
	})
	s.handle("POST", "/app/login", false, s.appLogin)
	s.handle("POST", "/app/logout", false, func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.formPost(w, r, people.SessionCustomer, s.appPrincipal)
		if !ok {
			return
		}
		s.submit(r.Context(), core.Logout{TokenHash: p.Token})
		http.SetCookie(w, s.cookieAt(appCookie, "", appPath, -1))
		http.Redirect(w, r, "/app/login", http.StatusSeeOther)
	})
	s.handle("GET", "/app/yen", false, func(w http.ResponseWriter, r *http.Request) {
		p, err := s.appPrincipal(r)
		if err != nil {
			http.Redirect(w, r, "/app/login", http.StatusSeeOther)
			return
		}
		s.appYenPage(w, r, p, http.StatusOK, "", appNotices[r.URL.Query().Get("ok")], nil)
	})
	s.handle("POST", "/app/yen/virtual-account", false, s.appAction("Virtual account not given", func(r *http.Request, ask asker) (string, error) {
		_, err := s.assignVirtual(r.Context(), ask)
		return "virtual", err
	}))
	s.handle("POST", "/app/yen/bank-accounts", false, s.appAction("Bank account not registered", func(r *http.Request, ask asker) (string, error) {
		f := r.PostForm
		typ, err := strconv.Atoi(f.Get("type"))
		if err != nil {
			return "", fmt.Errorf("%w: account type: ordinary 1, current 2 or savings 4", errBadJSON)
		}
		_, err = s.addBankAccount(r.Context(), ask, BankAccountRequest{Bank: f.Get("bank"), BankName: f.Get("bank_name"), Branch: f.Get("branch"),
			BranchName: f.Get("branch_name"), Type: typ, Number: f.Get("number"), Name: f.Get("name")})
		return "bank", err
	}))
	s.handle("POST", "/app/yen/bank-accounts/remove", false, s.appAction("Bank account not removed", func(r *http.Request, ask asker) (string, error) {
		return "removed", s.removeBankAccount(r.Context(), ask, r.PostForm.Get("key"))
	}))
	s.handle("POST", "/app/yen/withdrawals", false, s.appAction("Withdrawal refused", func(r *http.Request, ask asker) (string, error) {
		f := r.PostForm
		wd, err := s.withdrawYen(r.Context(), ask, YenWithdrawalRequest{RequestID: f.Get("request_id"), Account: f.Get("account"), Amount: f.Get("amount")})
		switch {
		case err != nil:
			return "", err
		case wd.Status == withdraw.StatusRejected:
			return "", &refusedError{wd.Reason}
		case wd.Status == withdraw.StatusAwaitingApproval:
			return "approval", nil
		}
		return "withdrawal", nil
	}))
	s.handle("POST", "/app/yen/payments", false, s.appAction("Payment not requested", func(r *http.Request, ask asker) (string, error) {
		f := r.PostForm
		_, err := s.requestPayment(r.Context(), ask, YenPaymentRequest{Method: f.Get("method"), Amount: f.Get("amount")}, f.Get("ref"))
		if f.Get("method") == "card" {
			return "card", err
		}
		return "payment", err
	}))
}

// refusedError is a withdrawal the policy refused: journaled as rejected
// with its reason, nothing held.
type refusedError struct{ reason string }

func (e *refusedError) Error() string { return e.reason }

// appPrincipal is the customer of a request to the app: its own cookie,
// a customer's live session.
func (s *Server) appPrincipal(r *http.Request) (Principal, error) {
	c, err := r.Cookie(appCookie)
	if err != nil {
		return Principal{}, errUnauthenticated
	}
	p, err := s.sessionOf(c.Value)
	if err == nil && p.Session.Kind != people.SessionCustomer {
		return Principal{}, errForbidden
	}
	return p, err
}

// appAction is a form of the yen page: a customer's post with the form's
// CSRF token, its code (the form's "code") as the step-up where money
// moves. Done, it goes back to the page with the notice do names; refused,
// the page again with the refusal in words and the problem's status, and
// nothing done.
func (s *Server) appAction(what string, do func(r *http.Request, ask asker) (string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.formPost(w, r, people.SessionCustomer, s.appPrincipal)
		if !ok {
			return
		}
		ask := func(step bool) (Principal, error) {
			if step {
				return p, s.stepUp(r, p, strings.TrimSpace(r.PostForm.Get("code")))
			}
			return p, nil
		}
		notice, err := do(r, ask)
		if err != nil {
			status, msg := s.appRefusal(r, err)
			s.appYenPage(w, r, p, status, what+": "+msg, "", r.PostForm)
			return
		}
		http.Redirect(w, r, "/app/yen?ok="+notice, http.StatusSeeOther)
	}
}

// appRefusal is a refusal in the customer's words: the problem the API
// answers (its status, its text without the API's wording), a wrong code
// and a policy's refusal said plainly.
func (s *Server) appRefusal(r *http.Request, err error) (int, string) {
	var re *refusedError
	switch {
	case errors.As(err, &re):
		return http.StatusUnprocessableEntity, re.reason
	case errors.Is(err, errCodeWrong):
		return http.StatusForbidden, "the code from your authenticator app is wrong or was used already: enter the current one"
	case errors.Is(err, yen.ErrBankCooling):
		return http.StatusUnprocessableEntity, "this bank account is still in its cool-down: it is usable from the time shown under Bank accounts"
	}
	p, _ := s.problem(r, err)
	detail := cleanDetail(strings.TrimPrefix(p.Detail, errBadJSON.Error()+": "))
	if detail == "" {
		detail = p.Title
	}
	return p.Status, detail
}

func (s *Server) appLoginPage(w http.ResponseWriter, status int, msg string) {
	tok := s.preSession(w, appPreCookie, appPath)
	s.renderFrom(w, s.pages.app, "login", status, view{Title: "Sign in", CSRF: tok, Error: msg})
}

func (s *Server) appLogin(w http.ResponseWriter, r *http.Request) {
	if !s.preChecked(w, r, appPreCookie) {
		return
	}
	f := r.PostForm
	// The device id of this browser's last sign-in, as an API client
	// sends it: a sign-in from it is not a new device's.
	var device string
	if c, err := r.Cookie(appDevice); err == nil {
		device = c.Value
	}
	res, err := s.signIn(r, people.SessionCustomer, func() (LoginRequest, error) {
		return LoginRequest{Email: f.Get("email"), Password: f.Get("password"), TOTP: strings.TrimSpace(f.Get("totp")), Device: device}, nil
	})
	if err != nil {
		p, _ := s.loginProblem(r, err)
		msg := cleanDetail(p.Detail)
		if msg == "" {
			msg = p.Title
		}
		s.appLoginPage(w, p.Status, msg)
		return
	}
	http.SetCookie(w, s.cookieAt(appPreCookie, "", appPath, -1))
	http.SetCookie(w, s.cookieAt(appCookie, res.Token, appPath, int(s.cfg.SessionTTL.Seconds())))
	http.SetCookie(w, s.cookieAt(appDevice, res.Device, appPath, 400*24*3600))
	http.Redirect(w, r, "/app/yen", http.StatusSeeOther)
}

// appAccount is a registered bank account on the page.
type appAccount struct {
	YenAccountView
	TypeText, UsableText string
	Usable               bool
}

// appEntry is a line of the yen history.
type appEntry struct {
	time              int64
	When, What, Where string
	Amount, Fee       string
	State, Tag        string
}

// appPayment is a payment request on the page.
type appPayment struct {
	Method, Amount, Number, Expires, State, Tag string
}

// appYen is what the yen page shows.
type appYen struct {
	SetUp, Verified, Payments         bool
	KYC                               string
	Available, Held, Owed             string
	Virtual                           *YenVirtualView
	VirtualType                       string
	Accounts                          []appAccount
	History                           []appEntry
	Requests                          []appPayment
	Fee, MaxWithdrawal, ApprovalAbove string
	RequestID, Ref                    string
	Form                              url.Values
}

var accountTypes = map[int]string{zengin.Ordinary: "ordinary (普通)", zengin.Current: "current (当座)", zengin.Savings: "savings (貯蓄)"}

func yenText(v uint64) string { return amountText(ledger.AmountOf(v), 0, "JPY") }

func when(ns int64) string { return time.Unix(0, ns).UTC().Format("2006-01-02 15:04 UTC") }

// appYenPage writes the yen page of customer p, with a refusal (msg) or a
// notice, and the form values given back to the form that was refused.
func (s *Server) appYenPage(w http.ResponseWriter, r *http.Request, p Principal, status int, msg, notice string, form url.Values) {
	c := p.Session.Customer
	d := appYen{Form: form, RequestID: randomID(), Ref: randomID(), Payments: s.cfg.Yen != nil}
	if d.Form == nil {
		d.Form = url.Values{}
	}
	var email string
	mine, err := s.yenOf(c)
	d.SetUp = err == nil
	now := s.now().UnixNano()
	s.core.Read(func(st *core.State) {
		cu, _ := st.People.Customer(c)
		email, d.KYC, d.Verified = cu.Email, string(cu.KYC), st.People.CanTrade(c)
		if st.Yen.Config == nil {
			return
		}
		cfg := st.Yen.Config
		d.Fee = yenText(cfg.Fee)
		a, _ := st.Ledger.AssetByCode(cfg.Asset)
		lim := st.Withdraw.Rules.LimitsFor(a.Code, a.Decimals, true)
		d.MaxWithdrawal, d.ApprovalAbove = amountText(lim.PerWithdrawalMax.Ledger(), 0, "JPY"), amountText(lim.ApprovalAbove.Ledger(), 0, "JPY")
		// Available less what withdrawals hold (pending), and the held
		// account with its pending credits: what is on its way out.
		book := func(k ledger.Kind) ledger.Account {
			acc, _ := st.Ledger.Account(ledger.AccountKey{Owner: c, Asset: a.ID, Kind: k})
			return acc
		}
		avail, held, owed := book(ledger.KindAvailable), book(ledger.KindHeld), book(ledger.KindReceivable)
		d.Available = amountText(avail.Available(), 0, cfg.Asset)
		h, _ := held.Balance().Add(held.CreditsPending)
		d.Held = amountText(h, 0, cfg.Asset)
		if !owed.Balance().IsZero() {
			d.Owed = amountText(owed.Balance(), 0, cfg.Asset)
		}
	})
	if d.SetUp {
		d.Virtual = mine.VirtualAccount
		if d.Virtual != nil {
			d.VirtualType = accountTypes[d.Virtual.Type]
		}
		for _, a := range mine.BankAccounts {
			usable := !a.UsableFrom.After(time.Unix(0, now))
			txt := "usable"
			if !usable {
				txt = "cooling down: usable from " + a.UsableFrom.Format("2006-01-02 15:04 UTC")
			}
			d.Accounts = append(d.Accounts, appAccount{YenAccountView: a, TypeText: accountTypes[a.Type], UsableText: txt, Usable: usable})
		}
		for _, dep := range mine.Deposits {
			d.History = append(d.History, depositEntry(dep))
		}
		for _, wd := range mine.Withdrawals {
			d.History = append(d.History, withdrawalEntry(wd))
		}
		slices.SortStableFunc(d.History, func(a, b appEntry) int { return cmp.Compare(b.time, a.time) }) // newest first
		for _, py := range mine.Payments {
			d.Requests = append(d.Requests, paymentRow(py, now))
		}
		slices.Reverse(d.Requests)
	}
	v := view{Title: "Yen", Nav: "yen", Customer: email, CSRF: s.csrfFor(p.Token), Error: msg, Notice: notice, Data: d}
	s.renderFrom(w, s.pages.app, "yen", status, v)
}

var holdWords = map[string]string{
	yen.HoldThirdParty:     "sent from an account in another name than yours",
	yen.HoldUnknownAccount: "sent to an account number that is not yours",
	yen.HoldOverLimit:      "above the limit of a single deposit",
	yen.HoldHalted:         "bank deposits are paused; credited when they resume",
}

var channelWords = map[string]string{"bank": "Bank transfer", "card": "Card payment", "pay-easy": "Pay-easy payment", "convenience-store": "Convenience-store payment"}

func depositEntry(d yen.Deposit) appEntry {
	e := appEntry{time: d.Time, When: when(d.Time), What: "Deposit · " + channelWords[string(d.Channel)], Amount: yenText(d.Amount)}
	if d.Sender != "" {
		e.Where = "from " + d.Sender
	}
	switch d.Status {
	case yen.DepositCredited:
		e.State, e.Tag = "credited to your balance", "ok"
	case yen.DepositHeld:
		e.State, e.Tag = "held for review: "+holdWords[d.Hold], "pending"
	case yen.DepositReturning:
		e.State, e.Tag = "being returned to the sender", "pending"
	case yen.DepositReturned:
		e.State, e.Tag = "returned to the sender", "bad"
	default:
		e.State = string(d.Status)
	}
	return e
}

func withdrawalEntry(wd YenWithdrawalView) appEntry {
	e := appEntry{time: wd.Time.UnixNano(), When: wd.Time.Format("2006-01-02 15:04 UTC"), What: "Withdrawal to your bank account", Where: "to " + wd.To,
		Amount: groupDigits(wd.Amount.String()) + " JPY"}
	if fee, err := strconv.ParseUint(wd.Fee, 10, 64); err == nil {
		e.Fee = yenText(fee)
	}
	switch withdraw.Status(wd.Status) {
	case withdraw.StatusAwaitingApproval:
		e.State, e.Tag = "held: two of our staff approve it first", "pending"
	case withdraw.StatusQueued:
		e.State, e.Tag = "held: waiting for the next transfer to the bank", "pending"
	case withdraw.StatusDone:
		e.State, e.Tag = "paid to your bank account", "ok"
	case withdraw.StatusRejected:
		e.State, e.Tag = "refused: "+wd.Reason+"; nothing was taken", "bad"
	case withdraw.StatusFailed:
		e.State, e.Tag = "returned by the bank: the amount and the fee are back in your balance", "bad"
		if wd.Result == "rejected" {
			e.State = "not paid by the bank (振込不能): the amount and the fee are back in your balance"
		}
		if wd.Refunded {
			e.State = "paid, then returned by the bank (組戻し): the amount is back in your balance"
		}
	default:
		e.State, e.Tag = "in a transfer file given to the bank ("+wd.Batch+")", "pending"
	}
	return e
}

func paymentRow(p yen.Payment, now int64) appPayment {
	row := appPayment{Method: channelWords[string(p.Method)], Amount: yenText(p.Amount), Number: p.Number}
	if p.Expires != 0 {
		row.Expires = when(p.Expires)
	}
	switch {
	case p.Status == yen.PaymentOpen && p.Expires != 0 && p.Expires < now:
		row.State, row.Tag = "expired", "bad"
	case p.Status == yen.PaymentOpen:
		row.State, row.Tag = "waiting for your payment", "pending"
	case p.Status == yen.PaymentReversed:
		row.State, row.Tag = "refunded or charged back", "bad"
	case p.Credited:
		row.State, row.Tag = "paid: credited to your balance", "ok"
	default:
		row.State, row.Tag = "paid: held for review", "pending"
	}
	return row
}

// randomID is a fresh id for a form: a withdrawal's request id (a form
// posted twice is one withdrawal), a payment's reference.
func randomID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
