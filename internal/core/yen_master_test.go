package core

import (
	"errors"
	"strings"
	"testing"

	"kinko/internal/ledger"
	"kinko/internal/people"
	"kinko/internal/yen"
	"kinko/internal/yen/bankcode"
	"kinko/internal/yen/zengin"
)

// masterConfig is yenConfig at banks of the built-in master: the trust
// at 住信ＳＢＩネット 法人第一 with its virtual accounts at イチゴ, the
// operating account at 三菱ＵＦＪ 本店.
func masterConfig(m *bankcode.Master) yen.Config {
	cfg := yenConfig
	cfg.Trust = zengin.Account{Bank: "0038", Branch: "106", Type: zengin.Ordinary, Number: "1000001", Name: "ｷﾝｺ ｼﾝﾀｸ"}
	cfg.Operating = zengin.Account{Bank: "0005", Branch: "001", Type: zengin.Ordinary, Number: "1000002", Name: "ｶ)ｷﾝｺ"}
	cfg.VirtualBranch = "101"
	cfg.Banks = nil
	cfg.BankMasterSHA256 = m.Hash()
	return cfg
}

// TestYenBankMaster: the setup journals the master and is refused when
// its own accounts or the master do not check; a customer's account at a
// bank or branch the master lacks is refused naming which; a registered
// account takes the master's names; a replay gives the same state.
func TestYenBankMaster(t *testing.T) {
	e := &yenEnv{newWdEnv(t)}
	e.must(CreateAssets{Assets: []ledger.Asset{{ID: 1, Code: "JPY", Class: ledger.ClassFiat}}})
	m := bankcode.Builtin()
	enc := string(m.Encode())
	bad := func(name string, f func(*yen.Config) string, want string) {
		t.Helper()
		cfg := masterConfig(m)
		master := f(&cfg)
		err := e.fail(YenSetup{Config: cfg, Master: master})
		if !errors.Is(err, yen.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("setup with %s: %v; want ErrInvalid with %q", name, err, want)
		}
	}
	bad("a trust bank not in the master", func(c *yen.Config) string { c.Trust.Bank = "0397"; return enc }, `trust account: bankcode: bank code not in the bank master: bank "0397"`)
	bad("an operating branch not in the master", func(c *yen.Config) string { c.Operating.Branch = "999"; return enc }, `operating account: bankcode: branch code not in the bank master: branch "999" of bank 0005`)
	bad("a virtual branch not the trust bank's", func(c *yen.Config) string { c.VirtualBranch = "200"; return enc }, "virtual branch")
	bad("a bank list beyond the master", func(c *yen.Config) string { c.Banks = []string{"0005", "0397"}; return enc }, `banks: bankcode: bank code not in the bank master: bank "0397"`)
	bad("another master than the hash", func(c *yen.Config) string { return strings.Replace(enc, "ﾎﾝﾃﾝ", "ﾎﾝﾃﾝﾃﾝ", 1) }, "SHA-256")
	bad("a hash and no master", func(c *yen.Config) string { return "" }, "bank master")
	bad("a master not canonical", func(c *yen.Config) string { return bankcode.Header + "\n" + enc }, "canonical")
	bad("a malformed master", func(c *yen.Config) string { return enc + "0005,1,x,y,z,w\n" }, "line 31")

	e.must(YenSetup{Config: masterConfig(m), Master: enc})
	e.c.Read(func(s *State) {
		if s.Yen.Master == nil || s.Yen.Master.Hash() != m.Hash() {
			t.Fatal("the setup did not keep its master")
		}
		if tr := s.Yen.Config.Trust; tr.BankName != "ｽﾐｼﾝｴｽﾋﾞ-ｱｲﾈﾂﾄ" || tr.BranchName != "ﾎｳｼﾞﾝﾀﾞｲｲﾁ" {
			t.Errorf("trust account's names = %q %q; want the master's", tr.BankName, tr.BranchName)
		}
	})
	e.must(YenSetKana{Customer: 1, Name: "ヤマダ タロウ", Actor: "kenji", Reason: "KYC documents"})
	for _, c := range []struct {
		name       string
		bank, br   string
		want, says string
	}{
		{"unknown bank", "0397", "400", "bank code not in the bank master", `bank "0397"`},
		{"unknown branch", "0005", "999", "branch code not in the bank master", `branch "999" of bank 0005 (三菱ＵＦＪ)`},
	} {
		err := e.fail(YenRegisterAccount{Customer: 1, Account: zengin.Account{Bank: c.bank, Branch: c.br, Type: 1, Number: "0123456", Name: "ﾔﾏﾀﾞ ﾀﾛｳ"}})
		if !errors.Is(err, yen.ErrBankAccount) || !errors.Is(err, map[bool]error{true: bankcode.ErrUnknownBank, false: bankcode.ErrUnknownBranch}[c.name == "unknown bank"]) ||
			!strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v; want %s naming %s", c.name, err, c.want, c.says)
		}
	}
	// The customer's own names for the bank are replaced by the master's.
	e.must(YenRegisterAccount{Customer: 1, Account: zengin.Account{Bank: "0005", BankName: "ﾍﾝﾅ", Branch: "135", Type: 1, Number: "0123456", Name: "ﾔﾏﾀﾞ ﾀﾛｳ"}})
	e.c.Read(func(s *State) {
		a := s.Yen.BankAccounts(1)
		if len(a) != 1 || a[0].Account.BankName != "ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ" || a[0].Account.BranchName != "ｼﾌﾞﾔ" {
			t.Errorf("registered account = %+v; want the master's names", a)
		}
	})
	e.checkReplay()
}

// TestYenBankMasterReplaced: a new master takes two admins; the one who
// asks cannot approve; a master without the setup's own accounts, or of
// another hash than it names, is refused and changes nothing; once
// approved, a bank the old master lacked is accepted and the accounts
// registered before keep their names; a replay gives the same state.
func TestYenBankMasterReplaced(t *testing.T) {
	e := &yenEnv{newWdEnv(t)}
	e.must(CreateAssets{Assets: []ledger.Asset{{ID: 1, Code: "JPY", Class: ledger.ClassFiat}}})
	old := bankcode.Builtin()
	e.must(YenSetup{Config: masterConfig(old), Master: string(old.Encode())})
	e.must(YenSetKana{Customer: 1, Name: "ヤマダ タロウ", Actor: "kenji", Reason: "KYC documents"})
	e.must(YenRegisterAccount{Customer: 1, Account: zengin.Account{Bank: "0005", Branch: "135", Type: 1, Number: "0123456", Name: "ﾔﾏﾀﾞ ﾀﾛｳ"}})
	shinkin := zengin.Account{Bank: "1234", Branch: "001", Type: 1, Number: "7654321", Name: "ﾔﾏﾀﾞ ﾀﾛｳ"}
	if err := e.fail(YenRegisterAccount{Customer: 1, Account: shinkin}); !errors.Is(err, bankcode.ErrUnknownBank) {
		t.Fatalf("an account at a bank the master lacks: %v", err)
	}
	next, err := bankcode.Parse([]byte(string(old.Encode()) + "1234,001,ｷﾝｺｼﾝｷﾝ,ﾎﾝﾃﾝ,金庫信金,本店\n"))
	if err != nil {
		t.Fatal(err)
	}
	payload := YenBankMasterPayload{Master: string(next.Encode()), SHA256: next.Hash()}
	decide := func(p YenBankMasterPayload, requester, approver string) error {
		t.Helper()
		cmds := twoPersonBy(KindYenBankMaster, p, requester, approver, people.RoleAdmin, e.now)
		if o := e.do(cmds[0]); o.Err != nil {
			return o.Err
		}
		return e.do(cmds[1]).Err
	}
	unchanged := func(what string) {
		t.Helper()
		e.c.Read(func(s *State) {
			if s.Yen.Master.Hash() != old.Hash() || s.Yen.Config.BankMasterSHA256 != old.Hash() {
				t.Errorf("%s: the master changed", what)
			}
		})
	}
	if err := decide(payload, "aiko", "aiko"); !errors.Is(err, people.ErrSelfApproval) {
		t.Errorf("one admin asking and approving: %v", err)
	}
	unchanged("self-approval")
	// Without the trust bank's branch of the virtual accounts.
	var lines []string
	for _, l := range strings.Split(string(next.Encode()), "\n") {
		if !strings.HasPrefix(l, "0038,101,") {
			lines = append(lines, l)
		}
	}
	short, err := bankcode.Parse([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if err := decide(YenBankMasterPayload{Master: string(short.Encode()), SHA256: short.Hash()}, "aiko", "ren"); !errors.Is(err, yen.ErrInvalid) || !strings.Contains(err.Error(), "virtual branch") {
		t.Errorf("a master without the virtual branch: %v", err)
	}
	unchanged("a master without the virtual branch")
	if err := decide(YenBankMasterPayload{Master: payload.Master, SHA256: old.Hash()}, "aiko", "ren"); !errors.Is(err, yen.ErrInvalid) || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("a master of another hash than named: %v", err)
	}
	unchanged("another hash")
	if err := decide(payload, "aiko", "ren"); err != nil {
		t.Fatalf("two admins: %v", err)
	}
	e.c.Read(func(s *State) {
		if s.Yen.Master.Hash() != next.Hash() || s.Yen.Config.BankMasterSHA256 != next.Hash() {
			t.Error("the approved master is not the setup's")
		}
		if a := s.Yen.BankAccounts(1); len(a) != 1 || a[0].Account.BankName != "ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ" {
			t.Errorf("the account registered before = %+v", a)
		}
	})
	e.must(YenRegisterAccount{Customer: 1, Account: shinkin})
	e.checkReplay()
}
