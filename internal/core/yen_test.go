package core

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"kinko/internal/compensation"
	"kinko/internal/controls"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/people"
	"kinko/internal/reserves"
	"kinko/internal/withdraw"
	"kinko/internal/yen"
	"kinko/internal/yen/zengin"
)

var yenConfig = yen.Config{
	Asset:         "JPY",
	Trust:         zengin.Account{Bank: "0397", BankName: "ｷﾝｺｼﾝﾀｸ", Branch: "100", Type: zengin.Ordinary, Number: "1000001", Name: "ｷﾝｺ ｺｷﾔｸｸﾌﾞﾝｶﾝﾘｼﾝﾀｸ"},
	Operating:     zengin.Account{Bank: "0397", Branch: "100", Type: zengin.Ordinary, Number: "1000002", Name: "ｶ)ｷﾝｺ"},
	RequesterCode: "1234567890", Requester: "ｶ)ｷﾝｺ",
	VirtualBranch: "200", VirtualFirst: 2000001, VirtualCount: 1000,
	Fee: 110, DepositMax: 10_000_000, PaymentMax: 300_000, ReviewTwoPersonAbove: 1_000_000, Tolerance: 0,
	Banks: []string{"0005", "0009", "0397"},
}

type yenEnv struct {
	*wdEnv
}

func (e *yenEnv) fail(cmd Command) error {
	e.t.Helper()
	o := e.do(cmd)
	err := o.EventErr()
	if err == nil {
		e.t.Fatalf("%s applied; want an error", cmd.Kind())
	}
	return err
}

func (e *yenEnv) balance(k ledger.AccountKey) uint64 {
	var v uint64
	e.c.Read(func(s *State) {
		if a, ok := s.Ledger.Account(k); ok {
			v, _ = a.Balance().Uint64()
		}
	})
	return v
}

func jpyAvail(c ledger.OwnerID) ledger.AccountKey {
	return ledger.AccountKey{Owner: c, Asset: 1, Kind: ledger.KindAvailable}
}

var (
	trustKey     = ledger.AccountKey{Owner: yen.OwnerTrust, Asset: 1, Kind: ledger.KindWallet}
	operatingKey = ledger.AccountKey{Owner: yen.OwnerOperating, Asset: 1, Kind: ledger.KindWallet}
	suspenseKey  = ledger.AccountKey{Owner: yen.OwnerSuspense, Asset: 1, Kind: ledger.KindHouse}
)

// newYenEnv: the withdrawal env with JPY, the yen setup, customers 1-3
// with kana names and virtual accounts 2000001-2000003.
func newYenEnv(t *testing.T) *yenEnv {
	e := &yenEnv{newWdEnv(t)}
	e.must(CreateAssets{Assets: []ledger.Asset{{ID: 1, Code: "JPY", Class: ledger.ClassFiat}}})
	e.must(YenSetup{Config: yenConfig})
	for i, n := range []string{"ヤマダ タロウ", "スズキ ハナコ", "サトウ ジロウ"} {
		c := ledger.OwnerID(i + 1)
		e.must(YenSetKana{Customer: c, Name: n, Actor: "kenji", Reason: "KYC documents"})
		if v := e.must(YenAssignVirtual{Customer: c}); v != fmt.Sprintf("%07d", 2000001+i) {
			t.Fatalf("virtual account of %d = %v", c, v)
		}
	}
	e.setRules(withdraw.Rules{CoolDownSeconds: 24 * 3600,
		PerWithdrawalMax: map[string]withdraw.Amount{"BTC": withdraw.AmountOf(50_000_000), "JPY": withdraw.AmountOf(2_000_000)}, PerCustomerDay: map[string]withdraw.Amount{"BTC": withdraw.AmountOf(60_000_000), "JPY": withdraw.AmountOf(3_000_000)},
		PerAssetHour: map[string]withdraw.Amount{"BTC": withdraw.AmountOf(100_000_000), "JPY": withdraw.AmountOf(50_000_000)}, ApprovalAbove: map[string]withdraw.Amount{"BTC": withdraw.AmountOf(40_000_000), "JPY": withdraw.AmountOf(1_000_000)}})
	return e
}

func credits(items ...BankCredit) YenBankCredits { return YenBankCredits{Items: items} }

func TestYenBankDeposits(t *testing.T) {
	e := newYenEnv(t)
	out := e.must(credits(
		BankCredit{TxID: "1000001-1", Account: "2000001", Amount: 50_000, Sender: "ﾔﾏﾀﾞ ﾀﾛｳ", Source: "statement"},
		BankCredit{TxID: "1000001-2", Account: "2000002", Amount: 70_000, Sender: "ﾀﾅｶ ｲﾁﾛｳ", Source: "statement"},
		BankCredit{TxID: "1000001-3", Account: "2999999", Amount: 9_000, Sender: "ﾀﾞﾚｶ", Source: "statement"},
		BankCredit{TxID: "1000001-4", Account: "2000003", Amount: 20_000_000, Sender: "ｻﾄｳ ｼﾞﾛｳ", Source: "notice"},
		BankCredit{TxID: "1000001-5", Account: "2000003", Amount: 2_000_000, Sender: "ﾀﾅｶ ｲﾁﾛｳ", Source: "notice"},
	)).([]string)
	want := []string{"credited", "held: third_party", "held: unknown_account", "held: over_limit", "held: third_party"}
	if strings.Join(out, ",") != strings.Join(want, ",") {
		t.Fatalf("credits = %v; want %v", out, want)
	}
	// The same transfer from the notice and again from the statement:
	// credited once.
	out = e.must(credits(BankCredit{TxID: "1000001-1", Account: "2000001", Amount: 50_000, Sender: "ﾔﾏﾀﾞ ﾀﾛｳ", Source: "notice"},
		BankCredit{TxID: "1000001-1", Account: "2000001", Amount: 60_000, Sender: "ﾔﾏﾀﾞ ﾀﾛｳ", Source: "notice"})).([]string)
	if out[0] != "duplicate" || !strings.HasPrefix(out[1], "conflict") {
		t.Fatalf("replayed = %v", out)
	}
	if got := e.balance(jpyAvail(1)); got != 50_000 {
		t.Errorf("customer 1 = %d; want 50000", got)
	}
	if got, want := e.balance(trustKey), uint64(50_000+70_000+9_000+20_000_000+2_000_000); got != want {
		t.Errorf("trust = %d; want %d", got, want)
	}
	if got := e.balance(suspenseKey); got != 70_000+9_000+20_000_000+2_000_000 {
		t.Errorf("suspense = %d", got)
	}
	// Bad input never reaches the journal.
	if _, err := e.c.Submit(t.Context(), e.now, credits(BankCredit{TxID: "x", Account: "2000001", Amount: 0, Source: "notice"})); !errors.Is(err, ErrCommandInvalid) {
		t.Errorf("zero amount: %v", err)
	}
	// Review: one operator below the threshold.
	e.must(YenReviewDeposit{TxID: "1000001-2", Action: "credit", Actor: "mei", Reason: "the customer's spouse; confirmed by phone"})
	if got := e.balance(jpyAvail(2)); got != 70_000 {
		t.Errorf("customer 2 after review = %d", got)
	}
	if err := e.fail(YenReviewDeposit{TxID: "1000001-2", Action: "credit", Actor: "mei", Reason: "again"}); !errors.Is(err, yen.ErrNotHeld) {
		t.Errorf("second review: %v", err)
	}
	// Unknown account: only returned.
	if err := e.fail(YenReviewDeposit{TxID: "1000001-3", Action: "credit", Actor: "mei", Reason: "x"}); !errors.Is(err, yen.ErrInvalid) {
		t.Errorf("crediting an unknown account's deposit: %v", err)
	}
	// Above the threshold one person cannot; two can.
	if err := e.fail(YenReviewDeposit{TxID: "1000001-5", Action: "credit", Actor: "mei", Reason: "x"}); !errors.Is(err, ErrYenTwoPerson) {
		t.Errorf("one person above the threshold: %v", err)
	}
	for _, c := range twoPersonBy(KindYenReview, YenReviewPayload{TxID: "1000001-5", Action: "return"}, "mei", "mei", people.RoleApprover, e.now) {
		o := e.do(c)
		if c.Kind() == KindDecideRequest && !errors.Is(o.Err, people.ErrSelfApproval) {
			t.Errorf("self-approval: %v", o.Err)
		}
	}
	for _, c := range twoPersonBy(KindYenReview, YenReviewPayload{TxID: "1000001-5", Action: "return"}, "mei", "kenji", people.RoleApprover, e.now) {
		e.must(c)
	}
	var instr yen.Instruction
	e.c.Read(func(s *State) {
		d, _ := s.Yen.Deposit("1000001-5")
		if d.Status != yen.DepositReturning {
			t.Errorf("returned deposit is %s", d.Status)
		}
		ins := s.Yen.Instructions()
		instr = ins[len(ins)-1]
	})
	// The bank carries out the return: the statement shows it.
	e.must(credits(BankCredit{TxID: "1000001-9", Amount: 2_000_000, Source: "statement", Instruction: instr.ID}))
	e.c.Read(func(s *State) {
		if d, _ := s.Yen.Deposit("1000001-5"); d.Status != yen.DepositReturned {
			t.Errorf("after the bank's return: %s", d.Status)
		}
	})
	if got := e.balance(trustKey); got != 50_000+70_000+9_000+20_000_000 {
		t.Errorf("trust after the return = %d", got)
	}
	e.reconcile(int64(50_000+70_000+9_000+20_000_000), false)
	e.reconcile(int64(50_000+70_000+9_000+20_000_000)-1, true)
	// A deposit while bank deposits are halted waits and is credited at
	// the lift; the halt came from the reconciliation.
	e.must(credits(BankCredit{TxID: "1000001-10", Account: "2000001", Amount: 1_000, Sender: "ﾔﾏﾀﾞ ﾀﾛｳ", Source: "notice"}))
	if got := e.balance(jpyAvail(1)); got != 50_000 {
		t.Errorf("credited during a halt: %d", got)
	}
	for _, c := range lifted(controls.Switch{Service: controls.Bank}, "mei", "kenji", e.now) {
		e.must(c)
	}
	if got := e.balance(jpyAvail(1)); got != 51_000 {
		t.Errorf("after the lift = %d; want 51000", got)
	}
	e.checkReplay()
}

func (e *yenEnv) reconcile(closing int64, wantHalt bool) {
	e.t.Helper()
	rec := e.must(YenReconcile{Statement: "1000001 2026-12-01", Closing: closing}).(yen.Reconciliation)
	var halted error
	e.c.Read(func(s *State) { halted = s.Controls.Allowed(0, controls.Bank) })
	if (halted != nil) != wantHalt || (rec.Incident != "") != wantHalt {
		e.t.Errorf("reconcile(%d): halted %v, incident %q; want halt %v", closing, halted, rec.Incident, wantHalt)
	}
}

// checkReplay reopens the journal: the same state hash.
func (e *yenEnv) checkReplay() {
	e.t.Helper()
	_, h1 := e.c.StateHash()
	dir := e.c.cfg.Dir
	e.c.Close()
	e.c = openCore(e.t, dir, 0)
	if _, h2 := e.c.StateHash(); h1 != h2 {
		e.t.Fatalf("replay: state hash %s, was %s", h2, h1)
	}
}

func TestYenBankAccountsAndWithdrawals(t *testing.T) {
	e := newYenEnv(t)
	e.must(credits(BankCredit{TxID: "T-1", Account: "2000001", Amount: 3_000_000, Sender: "ﾔﾏﾀﾞ ﾀﾛｳ", Source: "notice"},
		BankCredit{TxID: "T-2", Account: "2000002", Amount: 100_000, Sender: "ｽｽﾞｷ ﾊﾅｺ", Source: "notice"}))
	good := zengin.Account{Bank: "0005", Branch: "135", Type: zengin.Ordinary, Number: "0123456", Name: "ﾔﾏﾀﾞ ﾀﾛｳ"}
	for _, c := range []struct {
		name string
		acct zengin.Account
		want error
	}{
		{"another's name", zengin.Account{Bank: "0005", Branch: "135", Type: 1, Number: "0123456", Name: "ｽｽﾞｷ ﾊﾅｺ"}, yen.ErrNameMismatch},
		{"kanji name", zengin.Account{Bank: "0005", Branch: "135", Type: 1, Number: "0123456", Name: "山田太郎"}, zengin.ErrCharset},
		{"bank code of 3 digits", zengin.Account{Bank: "005", Branch: "135", Type: 1, Number: "0123456", Name: "ﾔﾏﾀﾞ ﾀﾛｳ"}, zengin.ErrField},
		{"branch code letters", zengin.Account{Bank: "0005", Branch: "1A5", Type: 1, Number: "0123456", Name: "ﾔﾏﾀﾞ ﾀﾛｳ"}, zengin.ErrField},
		{"bank not in the directory", zengin.Account{Bank: "9999", Branch: "135", Type: 1, Number: "0123456", Name: "ﾔﾏﾀﾞ ﾀﾛｳ"}, yen.ErrBankAccount},
		{"type 9", zengin.Account{Bank: "0005", Branch: "135", Type: 9, Number: "0123456", Name: "ﾔﾏﾀﾞ ﾀﾛｳ"}, yen.ErrBankAccount},
	} {
		if err := e.fail(YenRegisterAccount{Customer: 1, Account: c.acct}); !errors.Is(err, c.want) {
			t.Errorf("%s: %v; want %v", c.name, err, c.want)
		}
	}
	full := good
	full.Name = "やまだ　たろう" // full-width hiragana: normalized and compared
	e.must(YenRegisterAccount{Customer: 1, Account: full})
	e.must(YenRegisterAccount{Customer: 2, Account: zengin.Account{Bank: "0009", Branch: "001", Type: zengin.Ordinary, Number: "7654321", Name: "ｽｽﾞｷﾊﾅｺ"}})
	key := good.Key()
	e.c.Read(func(s *State) {
		ns := s.People.NoticesOf(1, 10)
		if len(ns) == 0 || ns[0].Kind != NoticeYenBankAccount {
			t.Errorf("no notice of the registered account: %+v", ns)
		}
	})
	if err := e.fail(YenRequestWithdrawal{Customer: 1, RequestID: "w0", Account: key, Amount: 10_000}); !errors.Is(err, yen.ErrBankCooling) {
		t.Errorf("within the cool-down: %v", err)
	}
	e.now = e.now.Add(25 * time.Hour)
	if err := e.fail(YenRequestWithdrawal{Customer: 1, RequestID: "w0", Account: key, Amount: 0}); !errors.Is(err, yen.ErrAmount) {
		t.Errorf("amount zero: %v", err)
	}
	w := func(c ledger.OwnerID, id string, amount uint64) withdraw.Withdrawal {
		k := key
		if c == 2 {
			k = "0009-001-1-7654321"
		}
		return e.must(YenRequestWithdrawal{Customer: c, RequestID: id, Account: k, Amount: amount}).(withdraw.Withdrawal)
	}
	if wd := w(1, "big", 2_500_000); wd.Status != withdraw.StatusRejected || !strings.Contains(wd.Reason, "per-withdrawal") {
		t.Errorf("past the limit: %+v", wd)
	}
	w1 := w(1, "w1", 100_000)
	w2 := w(1, "w2", 1_500_000) // above the approval threshold
	w3 := w(2, "w3", 50_000)
	if w1.Status != withdraw.StatusQueued || w2.Status != withdraw.StatusAwaitingApproval || w3.Status != withdraw.StatusQueued {
		t.Fatalf("statuses %s %s %s", w1.Status, w2.Status, w3.Status)
	}
	if got := e.balance(jpyAvail(1)); got != 3_000_000 {
		t.Errorf("posted balance moved at the hold: %d", got)
	}
	// Customer 2 cannot withdraw beyond the balance with the fee.
	if err := e.fail(YenRequestWithdrawal{Customer: 2, RequestID: "w4", Account: "0009-001-1-7654321", Amount: 49_900}); err == nil {
		t.Error("overdraft with the fee applied")
	}
	// The bank channel halted: no file is written, withdrawals wait.
	e.must(Halt{Switch: controls.Switch{Service: controls.Bank}, Actor: "mei", Reason: "bank maintenance"})
	if err := e.fail(YenWriteBatch{ID: "B1", Month: 12, Day: 2}); !errors.Is(err, controls.ErrHalted) {
		t.Errorf("batch during a halt: %v", err)
	}
	for _, c := range lifted(controls.Switch{Service: controls.Bank}, "mei", "kenji", e.now) {
		e.must(c)
	}
	// Two operators release the large one.
	for _, c := range twoPersonBy(KindApproveWithdrawal, ApproveWithdrawalPayload{Withdrawal: w2.ID}, "mei", "kenji", people.RoleApprover, e.now) {
		e.must(c)
	}
	b := e.must(YenWriteBatch{ID: "B1", Month: 12, Day: 2}).(*yen.Batch)
	if b.Count != 3 || b.Total != 1_650_000 {
		t.Fatalf("batch = %+v", b)
	}
	if err := e.fail(YenWriteBatch{ID: "B2", Month: 12, Day: 2}); !errors.Is(err, yen.ErrNothingQueued) {
		t.Errorf("second batch: %v", err)
	}
	e.must(YenBatchWritten{ID: "B1", Hash: b.Hash})
	if err := e.fail(YenBatchWritten{ID: "B1", Hash: b.Hash}); !errors.Is(err, yen.ErrExists) {
		t.Errorf("written twice: %v", err)
	}
	// A freeze now does not void what the bank has.
	e.must(FreezeWithdrawals{Customer: 2, By: "customer", Reason: "lost phone"})
	res := e.must(YenSettle{Batch: "B1", Results: []PayoutResult{{Number: b.Payouts[0], Result: "done"}, {Number: b.Payouts[1], Result: "done"}, {Number: b.Payouts[2], Result: "rejected"}}}).([]string)
	if strings.Join(res, ",") != "done,done,rejected" {
		t.Fatalf("settle = %v", res)
	}
	res = e.must(YenSettle{Batch: "B1", Results: []PayoutResult{{Number: b.Payouts[0], Result: "done"}, {Number: b.Payouts[1], Result: "returned"}}}).([]string)
	if res[0] != "duplicate" || res[1] != "returned after payment" {
		t.Fatalf("second settle = %v", res)
	}
	// Customer 1: 3,000,000 - 100,000 - 1,500,000 - 2 fees + 1,500,000 back.
	if got, want := e.balance(jpyAvail(1)), uint64(3_000_000-100_000-1_500_000-220+1_500_000); got != want {
		t.Errorf("customer 1 = %d; want %d", got, want)
	}
	if got := e.balance(jpyAvail(2)); got != 100_000 {
		t.Errorf("customer 2 after 振込不能 = %d; want 100000", got)
	}
	if got := e.balance(ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: 1, Kind: ledger.KindHouse}); got != 220 {
		t.Errorf("house fees = %d", got)
	}
	if got, want := e.balance(trustKey), uint64(3_100_000-100_000); got != want {
		t.Errorf("trust = %d; want %d", got, want)
	}
	e.c.Read(func(s *State) {
		if wd, _ := s.Withdraw.Get(w3.ID); wd.Status != withdraw.StatusFailed {
			t.Errorf("rejected payout's withdrawal: %s", wd.Status)
		}
	})
	e.checkReplay()
}

func TestYenProviderPayments(t *testing.T) {
	e := newYenEnv(t)
	exp := e.now.Add(72 * time.Hour).UnixNano()
	pay := func(id string, m controls.Service, amount uint64) {
		e.must(YenPaymentRequest{Payment: yen.Payment{ID: id, Customer: 1, Method: m, Amount: amount, Number: "N-" + id, Expires: exp}})
	}
	if err := e.fail(YenPaymentRequest{Payment: yen.Payment{ID: "p0", Customer: 1, Method: controls.Card, Amount: 400_000, Number: "x", Expires: exp}}); !errors.Is(err, yen.ErrAmount) {
		t.Errorf("past the limit: %v", err)
	}
	pay("p1", controls.Card, 30_000)
	pay("p2", controls.Convenience, 10_000)
	pay("p3", controls.PayEasy, 5_000)
	out := e.must(YenPaymentEvents{Events: []ProviderEvent{
		{ID: "e1", Payment: "p1", Type: "paid", Amount: 30_000},
		{ID: "e1", Payment: "p1", Type: "paid", Amount: 30_000},
		{ID: "e2", Payment: "p2", Type: "paid", Amount: 9_999},
		{ID: "e3", Payment: "p2", Type: "paid", Amount: 10_000},
		{ID: "e4", Payment: "nope", Type: "paid", Amount: 1},
	}}).([]string)
	if out[0] != "credited" || out[1] != "duplicate" || !strings.HasPrefix(out[2], "conflict") || out[3] != "credited" || !strings.HasPrefix(out[4], "conflict") {
		t.Fatalf("events = %v", out)
	}
	if got := e.balance(jpyAvail(1)); got != 40_000 {
		t.Fatalf("credited = %d", got)
	}
	// The card channel halted: a payment waits, credited at the lift.
	e.must(Halt{Switch: controls.Switch{Service: controls.PayEasy}, Actor: "mei", Reason: "provider incident"})
	if out := e.must(YenPaymentEvents{Events: []ProviderEvent{{ID: "e5", Payment: "p3", Type: "paid", Amount: 5_000}}}).([]string); out[0] != "held: halted" {
		t.Fatalf("paid during a halt: %v", out)
	}
	for _, c := range lifted(controls.Switch{Service: controls.PayEasy}, "mei", "kenji", e.now) {
		e.must(c)
	}
	if got := e.balance(jpyAvail(1)); got != 45_000 {
		t.Fatalf("after the lift = %d", got)
	}
	// The customer spends most of it; a chargeback takes the rest and
	// records a receivable, never a negative balance.
	e.must(CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 9, Lo: 1}, Debit: jpyAvail(1), Credit: ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: 1, Kind: ledger.KindHouse}, Amount: ledger.AmountOf(35_000)}}})
	out = e.must(YenPaymentEvents{Events: []ProviderEvent{{ID: "e6", Payment: "p1", Type: "chargeback", Amount: 30_000}, {ID: "e7", Payment: "p2", Type: "refunded", Amount: 1}}}).([]string)
	if out[0] != "chargeback: 20000 owed" || !strings.HasPrefix(out[1], "conflict") {
		t.Fatalf("reversals = %v", out)
	}
	if got := e.balance(jpyAvail(1)); got != 0 {
		t.Errorf("available after the chargeback = %d", got)
	}
	if got := e.balance(custody.ReceivableAccount(1, 1)); got != 20_000 {
		t.Errorf("receivable = %d; want 20000", got)
	}
	// A bank deposit repays it first.
	e.must(credits(BankCredit{TxID: "T-9", Account: "2000001", Amount: 25_000, Sender: "ﾔﾏﾀﾞﾀﾛｳ", Source: "notice"}))
	if got, owed := e.balance(jpyAvail(1)), e.balance(custody.ReceivableAccount(1, 1)); got != 5_000 || owed != 0 {
		t.Errorf("after a deposit: available %d, owed %d", got, owed)
	}
	// Settlement: the provider pays the convenience store's 10,000; a
	// claim of 10,500 halts the channel and opens an incident.
	rec := e.must(YenSettlement{ID: "S-CVS-1", Channel: controls.Convenience, Payments: []string{"p2"}, Total: 10_500}).(yen.Reconciliation)
	if rec.Diff != 500 || rec.Incident == "" || !rec.Halted {
		t.Errorf("settlement mismatch = %+v", rec)
	}
	if err := e.fail(YenSettlement{ID: "S-CVS-2", Channel: controls.Convenience, Payments: []string{"p2"}, Total: 10_000}); !errors.Is(err, yen.ErrExists) {
		t.Errorf("settled twice: %v", err)
	}
	if err := e.fail(YenPaymentRequest{Payment: yen.Payment{ID: "p9", Customer: 1, Method: controls.Convenience, Amount: 1_000, Number: "x", Expires: exp}}); !errors.Is(err, controls.ErrHalted) {
		t.Errorf("a request on a halted channel: %v", err)
	}
	e.checkReplay()
}

func TestYenCompensationFundsTrust(t *testing.T) {
	e := newYenEnv(t)
	if err := e.fail(YenFundTrust{ID: "F-1", Amount: 1_000, Actor: "mei", Reason: "top-up"}); !errors.Is(err, yen.ErrInstruction) {
		t.Errorf("no house yen: %v", err)
	}
	// The house's own yen at the operating account, and a customer's.
	eq := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: 1, Kind: ledger.KindEquity}
	e.must(CreateAccounts{Keys: []ledger.AccountKey{eq, jpyAvail(2)}})
	e.must(CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 7, Lo: 1}, Debit: operatingKey, Credit: ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: 1, Kind: ledger.KindHouse}, Amount: ledger.AmountOf(500_000)}}})
	e.must(credits(BankCredit{TxID: "T-1", Account: "2000001", Amount: 10_000, Sender: "ﾔﾏﾀﾞ ﾀﾛｳ", Source: "notice"}))
	// A liability with no yen behind it (as compensation credits): the
	// reserves show JPY short until the instruction is carried out.
	e.must(CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 7, Lo: 2}, Debit: eq, Credit: jpyAvail(2), Amount: ledger.AmountOf(200_000)}}})
	row := e.jpyRow()
	if row.Segregated {
		t.Errorf("segregated with 200,000 yen missing: %+v", row)
	}
	e.must(YenFundTrust{ID: "F-1", Amount: 200_000, Actor: "mei", Reason: "compensation"})
	e.must(credits(BankCredit{TxID: "T-2", Amount: 200_000, Source: "statement", Instruction: "F-1"}))
	if row := e.jpyRow(); !row.Segregated || row.OtherLedger.Lo != 210_000 || row.HouseHeld.Lo != 300_000 {
		t.Errorf("after the instruction: %+v", row)
	}
	e.checkReplay()
}

func (e *yenEnv) jpyRow() reserves.Row {
	var rep *reserves.Report
	e.c.Read(func(s *State) {
		rep, _ = reserves.Compute(s.Ledger, s.Custody, reserves.DefaultPolicy, nil, s.Seq(), s.Time())
	})
	for _, r := range rep.Rows {
		if r.Asset == "JPY" {
			return r
		}
	}
	e.t.Fatal("no JPY row")
	return reserves.Row{}
}

// TestYenCompensationPlan: a plan paying yen, approved, moves its total
// from the operating account into the trust account as a bank instruction;
// without the house's yen at the operating account it is not approved.
func TestYenCompensationPlan(t *testing.T) {
	e, theft := newCompEnv(t, 3)
	e.must(YenSetup{Config: yenConfig})
	hs := e.stateAt(theft).Holdings(xem)
	ps, err := compensation.FixedRatePayouts(hs, coincheckNum, coincheckDen)
	if err != nil {
		t.Fatal(err)
	}
	total := compensation.Summarize(ps).Total
	plan := compensation.Plan{ID: "xem-yen", Rule: compensation.FixedRate, Asset: xem, PayAsset: jpy, At: theft, RateNum: coincheckNum, RateDen: coincheckDen,
		Rounding: "down to the yen", WriteOff: true, Reason: "NEM theft", Requester: "aiko"}
	plan.Header(ps)
	e.must(WriteCompensation{Plan: plan})
	e.must(AddPayouts{Plan: plan.ID, Payouts: ps})
	if o := e.approve("r1", plan.ID, "aiko", "kenji"); !errors.Is(o.Err, yen.ErrInstruction) {
		t.Fatalf("approval without house yen at the operating account: %v", o.Err)
	}
	opKey := ledger.AccountKey{Owner: yen.OwnerOperating, Asset: jpy, Kind: ledger.KindWallet}
	e.must(CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 8, Lo: 1}, Debit: opKey, Credit: ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: jpy, Kind: ledger.KindHouse}, Amount: ledger.AmountOf(total + 1_000)}}})
	if o := e.approve("r2", plan.ID, "aiko", "kenji"); o.Err != nil {
		t.Fatalf("approval: %v", o.Err)
	}
	ins := e.st.Yen.Instructions()
	if len(ins) != 1 || ins[0].Kind != yen.InstrFundTrust || ins[0].Amount != total {
		t.Fatalf("instructions = %+v", ins)
	}
	if got := e.st.Ledger; got == nil {
		t.Fatal("no ledger")
	}
	if a, _ := e.st.Ledger.Account(opKey); a.Available().Lo != 1_000 {
		t.Errorf("operating available after the instruction = %s; want 1000", a.Available())
	}
	// The bank carries it out: the trust holds the yen behind the payouts.
	e.must(YenBankCredits{Items: []BankCredit{{TxID: "1000001-1", Amount: total, Source: "statement", Instruction: ins[0].ID}}})
	if got := e.bal(ledger.AccountKey{Owner: yen.OwnerTrust, Asset: jpy, Kind: ledger.KindWallet}); got != int64(total) {
		t.Errorf("trust = %d; want %d", got, total)
	}
	var csv strings.Builder
	reserves.WriteDailyCSV(&csv, e.st.Ledger, "2026-12-01")
	if !strings.Contains(csv.String(), ",JPY,") {
		t.Errorf("the daily record has no yen:\n%s", csv.String())
	}
}

// FuzzYenCommands: any payload of a yen kind either is refused as
// invalid or re-encodes to itself, and applying it to a state with yen
// set up never breaks an invariant.
func FuzzYenCommands(f *testing.F) {
	for _, c := range []Command{
		YenSetup{Config: yenConfig},
		YenSetKana{Customer: 1, Name: "ﾔﾏﾀﾞ", Actor: "a", Reason: "r"},
		YenAssignVirtual{Customer: 1},
		credits(BankCredit{TxID: "1-1", Account: "2000001", Amount: 5, Sender: "ﾔﾏﾀﾞ", Source: "notice"}, BankCredit{TxID: "1-2", Amount: 7, Source: "statement", Instruction: "F-1"}),
		YenReviewDeposit{TxID: "1-1", Action: "return", Actor: "a", Reason: "r"},
		YenRegisterAccount{Customer: 1, Account: zengin.Account{Bank: "0005", Branch: "001", Type: 1, Number: "1234567", Name: "ﾔﾏﾀﾞ"}},
		YenRequestWithdrawal{Customer: 1, RequestID: "r", Account: "0005-001-1-1234567", Amount: 5},
		YenWriteBatch{ID: "B", Month: 1, Day: 2},
		YenSettle{Batch: "B", Results: []PayoutResult{{Number: 1, Result: "done"}}},
		YenPaymentEvents{Events: []ProviderEvent{{ID: "e", Payment: "p", Type: "paid", Amount: 5}}},
		YenSettlement{ID: "S", Channel: controls.Card, Payments: []string{"p"}, Total: 5},
		YenReconcile{Statement: "s", Closing: -5},
		YenFundTrust{ID: "F-1", Amount: 5, Actor: "a", Reason: "r"},
	} {
		f.Add(uint16(c.Kind()), c.AppendPayload(nil))
	}
	f.Fuzz(func(t *testing.T, kind uint16, p []byte) {
		if kind < uint16(KindYenSetup) || kind > uint16(KindYenInstructionSent) {
			return
		}
		c, err := DecodeCommand(kind, p)
		if err != nil {
			if !errors.Is(err, ErrCommandInvalid) {
				t.Fatalf("DecodeCommand error %v is not ErrCommandInvalid", err)
			}
			return
		}
		if got := c.AppendPayload(nil); !bytes.Equal(got, p) {
			t.Fatalf("re-encoding differs: %x vs %x", got, p)
		}
		st := NewState()
		var mj memJournal
		for _, setup := range []Command{CreateAssets{Assets: []ledger.Asset{{ID: 1, Code: "JPY", Class: ledger.ClassFiat}}}, YenSetup{Config: yenConfig},
			CreateCustomers{IDs: []ledger.OwnerID{1}}} {
			e := mj.seal(0, setup)
			st.Apply(&e)
		}
		e := mj.seal(1, c)
		st.Apply(&e)
		if err := st.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestYenResumesFirst: a staged resumption plan brings bank deposits back
// before bitcoin withdrawals (BITPoint resumed yen first); the deposits
// that came during the halt are credited at the bank's lift.
func TestYenResumesFirst(t *testing.T) {
	e := newYenEnv(t)
	bank := controls.Switch{Service: controls.Bank}
	btcOut := controls.Switch{Asset: 2, Service: controls.Withdraw}
	e.must(Halt{Switch: bank, Actor: "mei", Reason: "incident"})
	e.must(Halt{Switch: btcOut, Actor: "mei", Reason: "incident"})
	for _, c := range twoPersonBy(KindResumptionPlan, ResumptionPlanPayload{ID: "yen-first", Steps: []controls.Switch{bank, btcOut}}, "mei", "kenji", people.RoleApprover, e.now) {
		e.must(c)
	}
	e.must(credits(BankCredit{TxID: "T-1", Account: "2000001", Amount: 8_000, Sender: "ﾔﾏﾀﾞ ﾀﾛｳ", Source: "notice"}))
	cmds := lifted(btcOut, "mei", "kenji", e.now)
	e.must(cmds[0])
	if o := e.do(cmds[1]); !errors.Is(o.Err, controls.ErrOutOfPlan) {
		t.Fatalf("bitcoin withdrawals before yen: %v", o.Err)
	}
	for _, c := range lifted(bank, "mei", "kenji", e.now) {
		e.must(c)
	}
	if got := e.balance(jpyAvail(1)); got != 8_000 {
		t.Errorf("the deposit held by the halt = %d after the lift; want 8000", got)
	}
	for _, c := range lifted(btcOut, "mei", "kenji", e.now) {
		e.must(c)
	}
}
