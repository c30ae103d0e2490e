package core

import (
	"errors"
	"strings"
	"testing"

	"kinko/internal/ledger"
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
