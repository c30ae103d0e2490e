package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kinko/internal/core"
	"kinko/internal/people"
	"kinko/internal/yen"
	"kinko/internal/yen/bankconn"
	"kinko/internal/yen/paysim"
	"kinko/internal/yen/zengin"
)

func (e *env) submitCore(cmd core.Command) any {
	e.t.Helper()
	o, err := e.core.Submit(context.Background(), e.clock.Now(), cmd)
	if err == nil {
		err = o.EventErr()
	}
	if err != nil {
		e.t.Fatalf("%s: %v", cmd.Kind(), err)
	}
	return o.Value
}

func TestYenRoutes(t *testing.T) {
	e := newEnv(t)
	e.submitCore(core.YenSetup{Config: yen.Config{Asset: "JPY", Trust: zengin.Account{Bank: "0397", Branch: "100", Type: 1, Number: "1000001", Name: "ｷﾝｺ ｼﾝﾀｸ"},
		Operating: zengin.Account{Bank: "0397", Branch: "100", Type: 1, Number: "1000002"}, RequesterCode: "1234567890", Requester: "ｶ)ｷﾝｺ",
		VirtualBranch: "200", VirtualFirst: 2000001, VirtualCount: 10, Fee: 110, DepositMax: 1_000_000, PaymentMax: 300_000, ReviewTwoPersonAbove: 500_000}})
	email := "yen@example.jp"
	id, tok := e.signUp(email)
	// Not verified yet: no virtual account.
	if r := e.do("POST", "/v1/me/yen/virtual-account", tok, map[string]any{}); r.status != http.StatusForbidden && r.status != http.StatusUnprocessableEntity {
		t.Fatalf("virtual account before KYC = %d %s", r.status, r.body)
	}
	e.submitCore(core.SetKYC{Customer: id, KYC: people.KYCVerified, Actor: "kenji", Reason: "documents"})
	e.submitCore(core.YenSetKana{Customer: id, Name: "テスト カスタマー", Actor: "kenji", Reason: "KYC"})
	var va struct{ Number string }
	r := e.do("POST", "/v1/me/yen/virtual-account", tok, map[string]any{})
	if r.status != 201 {
		t.Fatalf("virtual account = %d %s", r.status, r.body)
	}
	r.json(t, &va)
	if va.Number != "2000001" {
		t.Fatalf("virtual account %q", va.Number)
	}
	e.submitCore(core.YenBankCredits{Items: []core.BankCredit{{TxID: "1000001-1", Account: va.Number, Amount: 100_000, Sender: "ﾃｽﾄ ｶｽﾀﾏｰ", Source: "notice"},
		{TxID: "1000001-2", Account: va.Number, Amount: 5_000, Sender: "ﾀﾆﾝ", Source: "notice"}}})
	acct := BankAccountRequest{Bank: "0005", Branch: "135", Type: 1, Number: "0123456", Name: "ﾃｽﾄ ｶｽﾀﾏｰ"}
	if r := e.do("POST", "/v1/me/yen/bank-accounts", tok, acct); r.status != http.StatusUnauthorized && r.status != http.StatusForbidden {
		t.Errorf("bank account without a TOTP code = %d %s", r.status, r.body)
	}
	for _, c := range []struct {
		acct BankAccountRequest
		want int
	}{
		{BankAccountRequest{Bank: "0005", Branch: "135", Type: 1, Number: "0123456", Name: "山田"}, 422},
		{BankAccountRequest{Bank: "05", Branch: "135", Type: 1, Number: "0123456", Name: "ﾃｽﾄ ｶｽﾀﾏｰ"}, 422},
		{BankAccountRequest{Bank: "0005", Branch: "135", Type: 1, Number: "0123456", Name: "ﾍﾞﾂﾉ ﾋﾄ"}, 422},
	} {
		if r := e.do("POST", "/v1/me/yen/bank-accounts", tok, c.acct, "X-TOTP", e.code(email)); r.status != c.want {
			t.Errorf("bank account %+v = %d %s; want %d", c.acct, r.status, r.body, c.want)
		}
	}
	if r := e.do("POST", "/v1/me/yen/bank-accounts", tok, acct, "X-TOTP", e.code(email)); r.status != 201 {
		t.Fatalf("bank account = %d %s", r.status, r.body)
	}
	key := "0005-135-1-0123456"
	if r := e.do("POST", "/v1/me/yen/withdrawals", tok, YenWithdrawalRequest{RequestID: "y1", Account: key, Amount: "10000"}, "X-TOTP", e.code(email)); r.status != 422 {
		t.Errorf("withdrawal within the cool-down = %d %s", r.status, r.body)
	}
	e.clock.Add(25 * time.Hour)
	// The session ended meanwhile: log in again.
	r = e.do("POST", "/v1/customers/login", "", LoginRequest{Email: email, Password: testPassword, TOTP: e.code(email)})
	var lr LoginResponse
	r.json(t, &lr)
	tok = lr.Token
	if r := e.do("POST", "/v1/me/yen/withdrawals", tok, YenWithdrawalRequest{RequestID: "y1", Account: key, Amount: "0"}, "X-TOTP", e.code(email)); r.status != 400 {
		t.Errorf("withdrawal of zero = %d %s", r.status, r.body)
	}
	r = e.do("POST", "/v1/me/yen/withdrawals", tok, YenWithdrawalRequest{RequestID: "y1", Account: key, Amount: "10000"}, "X-TOTP", e.code(email))
	if r.status != 201 {
		t.Fatalf("withdrawal = %d %s", r.status, r.body)
	}
	var me struct {
		VirtualAccount map[string]any `json:"virtual_account"`
		Deposits       []yen.Deposit  `json:"deposits"`
		Withdrawals    []YenWithdrawalView
		BankAccounts   []YenAccountView `json:"bank_accounts"`
	}
	r = e.do("GET", "/v1/me/yen", tok, nil)
	r.json(t, &me)
	if me.VirtualAccount["number"] != "2000001" || len(me.Deposits) != 2 || len(me.Withdrawals) != 1 || me.Withdrawals[0].Status != "queued" || len(me.BankAccounts) != 1 {
		t.Errorf("GET /v1/me/yen = %s", r.body)
	}
	// No connector: payments are unavailable, clearly.
	if r := e.do("POST", "/v1/me/yen/payments", tok, YenPaymentRequest{Method: "card", Amount: "1000"}); r.status != 503 {
		t.Errorf("payment without a connector = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/me/yen/payments", tok, YenPaymentRequest{Method: "cash", Amount: "1000"}); r.status != 400 {
		t.Errorf("payment by cash = %d %s", r.status, r.body)
	}
	op := e.loginOperator("kenji")
	var ov struct {
		Held []yen.Deposit `json:"held"`
	}
	r = e.do("GET", "/v1/yen", op, nil)
	r.json(t, &ov)
	if len(ov.Held) != 1 || ov.Held[0].Hold != yen.HoldThirdParty {
		t.Errorf("GET /v1/yen held = %s", r.body)
	}
	if r := e.do("GET", "/console/yen", op, nil); r.status != 200 || !strings.Contains(string(r.body), "1000001-2") || !strings.Contains(string(r.body), "third_party") {
		t.Errorf("console yen page = %d %s", r.status, r.body)
	}
	if r := e.raw("POST", "/console/yen/review", op, "txid=1000001-2&action=credit&reason=x"); r.status != http.StatusForbidden && r.status != http.StatusBadRequest {
		t.Errorf("a review without the form's CSRF token = %d", r.status)
	}
	if r := e.do("GET", "/v1/yen", tok, nil); r.status != http.StatusForbidden && r.status != http.StatusUnauthorized {
		t.Errorf("a customer reads the operators' yen = %d", r.status)
	}
	if r := e.do("DELETE", "/v1/me/yen/bank-accounts/"+key, tok, nil); r.status != 200 {
		t.Errorf("remove = %d %s", r.status, r.body)
	}
	r = e.do("GET", "/v1/me/yen", tok, nil)
	r.json(t, &me)
	if me.Withdrawals[0].Status != "rejected" {
		t.Errorf("the waiting withdrawal after the account's removal: %s", fmt.Sprint(me.Withdrawals[0]))
	}

	// With the connector: a card payment asked of the provider, and a
	// batch file of a queued withdrawal written to the bank's drop
	// directory.
	provider := paysim.New(paysim.Config{Key: []byte("provider key of the yen route test")})
	ps := httptest.NewTLSServer(provider.API())
	t.Cleanup(ps.Close)
	drop := t.TempDir()
	conn, err := bankconn.New(bankconn.Config{Core: e.core, Drop: drop, BankKey: []byte("bank key of the yen route test"), ProviderKey: []byte("provider key of the yen route test"),
		ProviderURL: ps.URL, ProviderClient: ps.Client(), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.SetYen(conn)
	r = e.do("POST", "/v1/me/yen/payments", tok, YenPaymentRequest{Method: "card", Amount: "1000"})
	var pay yen.Payment
	r.json(t, &pay)
	if r.status != 201 || pay.ID == "" || pay.Amount != 1000 {
		t.Fatalf("card payment = %d %s", r.status, r.body)
	}
	acct2 := acct
	acct2.Number = "0123457"
	if r := e.do("POST", "/v1/me/yen/bank-accounts", tok, acct2, "X-TOTP", e.code(email)); r.status != 201 {
		t.Fatalf("second bank account = %d %s", r.status, r.body)
	}
	e.clock.Add(25 * time.Hour)
	r = e.do("POST", "/v1/customers/login", "", LoginRequest{Email: email, Password: testPassword, TOTP: e.code(email)})
	r.json(t, &lr)
	tok = lr.Token
	if r := e.do("POST", "/v1/me/yen/withdrawals", tok, YenWithdrawalRequest{RequestID: "y2", Account: "0005-135-1-0123457", Amount: "20000"}, "X-TOTP", e.code(email)); r.status != 201 {
		t.Fatalf("second withdrawal = %d %s", r.status, r.body)
	}
	op = e.loginOperator("kenji")
	r = e.do("POST", "/v1/yen/batches", op, YenBatchRequest{ID: "b1", Date: "2026-12-02"})
	if r.status != 201 {
		t.Fatalf("batch = %d %s", r.status, r.body)
	}
	files, _ := filepath.Glob(filepath.Join(drop, "outbox", "*"))
	if len(files) == 0 {
		t.Fatalf("no batch file in the drop directory: %s", r.body)
	}
}
