package api

import (
	"net/http"
	"strings"
	"testing"

	"kinko/internal/core"
	"kinko/internal/people"
	"kinko/internal/yen"
	"kinko/internal/yen/bankcode"
	"kinko/internal/yen/zengin"
)

// TestYenBankMasterRoutes: with the bank master in the setup, an account
// at a bank or a branch the master lacks is refused with a code and a
// detail naming which; a registered account and the virtual account are
// shown with their bank and branch in plain words.
func TestYenBankMasterRoutes(t *testing.T) {
	e := newEnv(t)
	m := bankcode.Builtin()
	e.submitCore(core.YenSetup{Config: yen.Config{Asset: "JPY", Trust: zengin.Account{Bank: "0038", Branch: "106", Type: 1, Number: "1000001", Name: "ｷﾝｺ ｼﾝﾀｸ"},
		Operating: zengin.Account{Bank: "0005", Branch: "001", Type: 1, Number: "1000002"}, RequesterCode: "1234567890", Requester: "ｶ)ｷﾝｺ",
		VirtualBranch: "101", VirtualFirst: 2000001, VirtualCount: 10, Fee: 110, DepositMax: 1_000_000, PaymentMax: 300_000, ReviewTwoPersonAbove: 500_000,
		BankMasterSHA256: m.Hash()}, Master: string(m.Encode())})
	email := "master@example.jp"
	id, tok := e.signUp(email)
	e.submitCore(core.SetKYC{Customer: id, KYC: people.KYCVerified, Actor: "kenji", Reason: "documents"})
	e.submitCore(core.YenSetKana{Customer: id, Name: "テスト カスタマー", Actor: "kenji", Reason: "KYC"})
	if r := e.do("POST", "/v1/me/yen/virtual-account", tok, map[string]any{}); r.status != 201 {
		t.Fatalf("virtual account = %d %s", r.status, r.body)
	}
	for _, c := range []struct {
		acct       BankAccountRequest
		code, says string
	}{
		{BankAccountRequest{Bank: "0397", Branch: "400", Type: 1, Number: "0123456", Name: "ﾃｽﾄ ｶｽﾀﾏｰ"}, "bank_code_unknown", `bank \"0397\"`},
		{BankAccountRequest{Bank: "0005", Branch: "999", Type: 1, Number: "0123456", Name: "ﾃｽﾄ ｶｽﾀﾏｰ"}, "branch_code_unknown", `branch \"999\" of bank 0005`},
	} {
		r := e.do("POST", "/v1/me/yen/bank-accounts", tok, c.acct, "X-TOTP", e.code(email))
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), `"`+c.code+`"`) || !strings.Contains(string(r.body), c.says) {
			t.Errorf("bank account %s-%s = %d %s; want 422 %s naming %s", c.acct.Bank, c.acct.Branch, r.status, r.body, c.code, c.says)
		}
	}
	r := e.do("POST", "/v1/me/yen/bank-accounts", tok, BankAccountRequest{Bank: "0005", Branch: "135", Type: 1, Number: "0123456", Name: "てすと かすたまー"}, "X-TOTP", e.code(email))
	var added struct{ Account YenAccountView }
	r.json(t, &added)
	if r.status != 201 || added.Account.BankLabel != "三菱ＵＦＪ" || added.Account.BranchLabel != "渋谷" || added.Account.BranchName != "ｼﾌﾞﾔ" || added.Account.Name != "ﾃｽﾄ ｶｽﾀﾏ-" && added.Account.Name != "ﾃｽﾄ ｶｽﾀﾏｰ" {
		t.Fatalf("bank account = %d %s; want it named 三菱ＵＦＪ 渋谷", r.status, r.body)
	}
	var me struct {
		VirtualAccount map[string]any   `json:"virtual_account"`
		BankAccounts   []YenAccountView `json:"bank_accounts"`
	}
	r = e.do("GET", "/v1/me/yen", tok, nil)
	r.json(t, &me)
	if len(me.BankAccounts) != 1 || me.BankAccounts[0].BankLabel != "三菱ＵＦＪ" || me.VirtualAccount["bank_label"] != "住信ＳＢＩネット" || me.VirtualAccount["branch_label"] != "イチゴ" {
		t.Errorf("GET /v1/me/yen = %s", r.body)
	}
}
