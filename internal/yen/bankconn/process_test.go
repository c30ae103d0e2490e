package bankconn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kinko/internal/alert"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/mtls"
	"kinko/internal/passkey"
	"kinko/internal/people"
	"kinko/internal/withdraw"
	"kinko/internal/yen"
	"kinko/internal/yen/banksim"
	"kinko/internal/yen/paysim"
	"kinko/internal/yen/zengin"
)

// TestMain runs the bank and the provider when the test binary is started
// as one of them: each is its own process, speaking only files and HTTPS.
func TestMain(m *testing.M) {
	switch os.Getenv("KINKO_YEN_SIM") {
	case "bank":
		if err := banksim.Main(context.Background(), os.Args[1:], os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case "pay":
		if err := paysim.Main(context.Background(), os.Args[1:], os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var (
	trustAcct = zengin.Account{Bank: "0397", BankName: "ｷﾝｺｼﾝﾀｸ", Branch: "100", Type: zengin.Ordinary, Number: "1000001", Name: "ｷﾝｺ ｺｷﾔｸｸﾌﾞﾝｶﾝﾘｼﾝﾀｸ"}
	opAcct    = zengin.Account{Bank: "0397", Branch: "100", Type: zengin.Ordinary, Number: "1000002", Name: "ｶ)ｷﾝｺ"}
	yamada    = zengin.Account{Bank: "0005", Branch: "135", Type: zengin.Ordinary, Number: "0123456", Name: "ﾔﾏﾀﾞ ﾀﾛｳ"}
	suzuki    = zengin.Account{Bank: "0009", Branch: "001", Type: zengin.Ordinary, Number: "7654321", Name: "ｽｽﾞｷ ﾊﾅｺ"}
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type env struct {
	t     *testing.T
	c     *core.Core
	conn  *Connector
	clock *clock
	bank  string // the bank's control endpoint
	pay   string // the provider's control endpoint
	url   string // kinko's notice server
	key   []byte
	fails atomic.Int32 // notices still to answer 503
	hits  atomic.Int32
}

func (e *env) must(cmd core.Command) any {
	e.t.Helper()
	o, err := e.c.Submit(context.Background(), e.clock.Now(), cmd)
	if err == nil {
		err = o.EventErr()
	}
	if err != nil {
		e.t.Fatalf("%s: %v", cmd.Kind(), err)
	}
	return o.Value
}

func (e *env) read(fn func(s *core.State)) { e.c.Read(fn) }

func (e *env) avail(c ledger.OwnerID) uint64 {
	var v uint64
	e.read(func(s *core.State) {
		if a, ok := s.Ledger.Account(ledger.AccountKey{Owner: c, Asset: 1, Kind: ledger.KindAvailable}); ok {
			v, _ = a.Balance().Uint64()
		}
	})
	return v
}

// waitFor polls cond until it holds; the bound is only against a hang.
func (e *env) waitFor(what string, cond func(s *core.State) bool) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := false
		e.read(func(s *core.State) { ok = cond(s) })
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("waiting for %s: never happened", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func control(t *testing.T, base, path string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(base+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s%s: %s %s", base, path, resp.Status, buf.String())
	}
	json.Unmarshal(buf.Bytes(), &out)
	return out
}

func readAddr(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			return string(b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never written", path)
	return ""
}

func startSim(t *testing.T, role string, args ...string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "KINKO_YEN_SIM="+role)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s's log:\n%s", role, stderr.String())
		}
	})
}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	if err := mtls.Init(tlsDir); err != nil {
		t.Fatal(err)
	}
	key := []byte("shared-notice-key-0123456789abcdef")
	keyFile := filepath.Join(dir, "notice.key")
	os.WriteFile(keyFile, key, 0o600)
	c, err := core.Open(context.Background(), core.Config{Dir: filepath.Join(dir, "core"), CheckInvariants: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	clk := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	e := &env{t: t, c: c, clock: clk, key: key}
	rp := passkey.RP{ID: "localhost", Origins: []string{"http://localhost"}}
	var founders []people.Founder
	for _, n := range []string{"aiko", "ren", "mei"} {
		roles := []people.Role{people.RoleAdmin}
		if n == "mei" {
			roles = []people.Role{people.RoleOperator, people.RoleApprover}
		}
		founders = append(founders, people.Founder{Name: n, Roles: roles, Code: sha256.Sum256([]byte(n))})
	}
	e.must(core.Bootstrap{RP: rp, Founders: founders, Expires: clk.Now().Add(time.Hour).UnixNano()})
	e.must(core.CreateAssets{Assets: []ledger.Asset{{ID: 1, Code: "JPY", Class: ledger.ClassFiat}}})
	e.must(core.YenSetup{Config: yen.Config{Asset: "JPY", Trust: trustAcct, Operating: opAcct, RequesterCode: "1234567890", Requester: "ｶ)ｷﾝｺ",
		VirtualBranch: "200", VirtualFirst: 2000001, VirtualCount: 1000, Fee: 110, DepositMax: 5_000_000, PaymentMax: 300_000, ReviewTwoPersonAbove: 1_000_000}})
	for i, n := range []string{"ヤマダ タロウ", "スズキ ハナコ", "サトウ ジロウ"} {
		id := ledger.OwnerID(i + 1)
		e.must(core.SignUp{Customer: people.Customer{ID: id, Email: fmt.Sprintf("c%d@example.jp", id), Name: n, Creds: people.Credentials{Commit: strings.Repeat("ab", 32)}}})
		e.must(core.SetKYC{Customer: id, KYC: people.KYCVerified, Actor: "mei", Reason: "documents checked"})
		e.must(core.YenSetKana{Customer: id, Name: n, Actor: "mei", Reason: "KYC"})
		e.must(core.YenAssignVirtual{Customer: id})
	}
	// The house's own yen at the operating account, as the bank holds it.
	e.must(core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 5, Lo: 1}, Debit: ledger.AccountKey{Owner: yen.OwnerOperating, Asset: 1, Kind: ledger.KindWallet},
		Credit: ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: 1, Kind: ledger.KindHouse}, Amount: ledger.AmountOf(500_000)}}})

	drop := filepath.Join(dir, "drop")
	client, err := banksim.TLSClient(filepath.Join(tlsDir, mtls.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := New(Config{Core: c, Drop: drop, BankKey: key, ProviderKey: key, ProviderClient: client, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.conn = conn
	// kinko's notice server, over HTTPS; it answers 503 to the first
	// notices it is told to, so the senders must retry.
	mux := http.NewServeMux()
	flaky := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			e.hits.Add(1)
			if e.fails.Add(-1) >= 0 {
				http.Error(w, "core busy", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	mux.Handle("/yen/bank", flaky(conn.BankHandler()))
	mux.Handle("/yen/provider", flaky(conn.ProviderHandler()))
	pair, err := tls.LoadX509KeyPair(filepath.Join(tlsDir, mtls.ServerCertFile), filepath.Join(tlsDir, mtls.ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	e.url = "https://" + ln.Addr().String()

	conf, _ := json.Marshal(map[string]any{"trust": trustAcct, "operating": opAcct, "virtual_branch": "200", "operating_balance": 500_000,
		"payees": []banksim.Payee{{Account: yamada}, {Account: zengin.Account{Bank: "0005", Branch: "135", Type: 1, Number: "0000777", Name: "ﾔﾏﾀﾞ ﾀﾛｳ"}, Returns: true}}})
	confFile := filepath.Join(dir, "bank.json")
	os.WriteFile(confFile, conf, 0o600)
	startSim(t, "bank", "--drop", drop, "--key-file", keyFile, "--notify", e.url+"/yen/bank", "--ca", filepath.Join(tlsDir, mtls.CAFile),
		"--addr-file", filepath.Join(dir, "bank.addr"), "--config", confFile)
	e.bank = "http://" + readAddr(t, filepath.Join(dir, "bank.addr"))
	startSim(t, "pay", "--key-file", keyFile, "--notify", e.url+"/yen/provider", "--ca", filepath.Join(tlsDir, mtls.CAFile),
		"--cert", filepath.Join(tlsDir, mtls.ServerCertFile), "--tls-key", filepath.Join(tlsDir, mtls.ServerKeyFile),
		"--addr-file", filepath.Join(dir, "pay.addr"), "--bank", e.bank, "--trust", "100-1000001")
	addrs := strings.Split(readAddr(t, filepath.Join(dir, "pay.addr")), "\n")
	conn.cfg.ProviderURL = "https://" + addrs[0]
	e.pay = "http://" + addrs[1]
	return e
}

func deposit(s *core.State, txid string) *yen.Deposit {
	d, _ := s.Yen.Deposit(txid)
	return d
}

// TestBankAndProviderProcesses runs the bank and the provider as their
// own processes and drives every path through them: deposits by notice
// (retried) and by statement, replays and forged notices, third-party and
// unknown-account deposits, withdrawals in a transfer file paid once,
// 振込不能 and 組戻し, a reconciliation difference that halts bank
// deposits and opens an incident, card and convenience-store payments
// with a chargeback and settlements, and house yen moved into the trust.
func TestBankAndProviderProcesses(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	// A deposit; kinko is busy for the first two tries.
	e.fails.Store(2)
	tx1 := control(t, e.bank, "/transfer", banksim.Transfer{Branch: "200", Number: "2000001", Amount: 50_000, Sender: "ﾔﾏﾀﾞ ﾀﾛｳ"})["txid"].(string)
	e.waitFor("the deposit credited", func(s *core.State) bool { d := deposit(s, tx1); return d != nil && d.Status == yen.DepositCredited })
	if e.hits.Load() < 3 {
		t.Errorf("the notice was delivered in %d tries; kinko refused two", e.hits.Load())
	}
	tx2 := control(t, e.bank, "/transfer", banksim.Transfer{Branch: "200", Number: "2000002", Amount: 70_000, Sender: "ﾀﾅｶ ｲﾁﾛｳ"})["txid"].(string)
	tx3 := control(t, e.bank, "/transfer", banksim.Transfer{Branch: "200", Number: "2000999", Amount: 9_000, Sender: "ﾀﾞﾚｶ"})["txid"].(string)
	e.waitFor("held deposits", func(s *core.State) bool {
		d2, d3 := deposit(s, tx2), deposit(s, tx3)
		return d2 != nil && d3 != nil && d2.Hold == yen.HoldThirdParty && d3.Hold == yen.HoldUnknownAccount
	})
	// The bank sends the first notice again: credited once.
	hits := e.hits.Load()
	control(t, e.bank, "/replay", map[string]int{"Index": 0})
	for deadline := time.Now().Add(30 * time.Second); e.hits.Load() == hits; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the replayed notice never came")
		}
	}
	// A forged notice (the attacker lacks the key), a malformed one, one
	// of zero yen: refused, nothing credited.
	forged, _ := json.Marshal(yen.BankNotice{Type: "deposit", TxID: "1000001-999", Memo: "2002000001", Credit: true, Amount: 1_000_000, Sender: "ﾔﾏﾀﾞ ﾀﾛｳ"})
	for _, c := range []struct {
		body []byte
		key  []byte
		want int
	}{
		{forged, []byte("not the key, but long enough"), http.StatusUnauthorized},
		{append(forged[:len(forged)-1:len(forged)-1], []byte(`,"extra":1}`)...), e.key, http.StatusBadRequest},
		{[]byte(`{"type":"deposit","txid":"1000001-998","memo":"2002000001","credit":true,"amount":0}`), e.key, http.StatusBadRequest},
	} {
		req, _ := http.NewRequest("POST", e.url+"/yen/bank", bytes.NewReader(c.body))
		req.Header.Set(yen.SignatureHeader, alert.Sign(c.key, c.body))
		resp, err := e.conn.cfg.ProviderClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("notice %s: answered %d; want %d", c.body, resp.StatusCode, c.want)
		}
	}
	if got := e.avail(1); got != 50_000 {
		t.Fatalf("customer 1 = %d after a replay and a forgery; want 50000", got)
	}

	// The day's statement: every movement again, the balance reconciled.
	control(t, e.bank, "/close", nil)
	if err := e.conn.ImportInbox(ctx); err != nil {
		t.Fatal(err)
	}
	e.read(func(s *core.State) {
		r := s.Yen.Reconciliations(1)
		if len(r) != 1 || r[0].Diff != 0 || r[0].Outside != 129_000 {
			t.Errorf("reconciliation = %+v", r)
		}
	})
	if got := e.avail(1); got != 50_000 {
		t.Fatalf("customer 1 = %d after the statement; want 50000", got)
	}

	// Withdrawals: customer 1 to their own account, customer 2 (released
	// after review) to an account the bank cannot pay, customer 1 again to
	// one that returns the money.
	e.must(core.YenReviewDeposit{TxID: tx2, Action: "credit", Actor: "mei", Reason: "confirmed with the customer"})
	e.must(core.YenRegisterAccount{Customer: 1, Account: yamada})
	e.must(core.YenRegisterAccount{Customer: 1, Account: zengin.Account{Bank: "0005", Branch: "135", Type: 1, Number: "0000777", Name: "ﾔﾏﾀﾞ ﾀﾛｳ"}})
	e.must(core.YenRegisterAccount{Customer: 2, Account: suzuki})
	e.clock.Add(25 * time.Hour)
	w1 := e.must(core.YenRequestWithdrawal{Customer: 1, RequestID: "w1", Account: yamada.Key(), Amount: 20_000}).(withdraw.Withdrawal)
	w2 := e.must(core.YenRequestWithdrawal{Customer: 2, RequestID: "w2", Account: suzuki.Key(), Amount: 30_000}).(withdraw.Withdrawal)
	w3 := e.must(core.YenRequestWithdrawal{Customer: 1, RequestID: "w3", Account: "0005-135-1-0000777", Amount: 5_000}).(withdraw.Withdrawal)
	b, err := e.conn.WriteBatch(ctx, "B1", zengin.Date{Year: 2026, Month: 12, Day: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.conn.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.conn.WriteBatch(ctx, "B2", zengin.Date{Year: 2026, Month: 12, Day: 2}); !errors.Is(err, yen.ErrNothingQueued) {
		t.Errorf("second batch: %v", err)
	}
	control(t, e.bank, "/scan", nil)
	e.waitFor("the results", func(s *core.State) bool {
		a, _ := s.Withdraw.Get(w1.ID)
		b, _ := s.Withdraw.Get(w2.ID)
		c, _ := s.Withdraw.Get(w3.ID)
		return a.Status == withdraw.StatusDone && b.Status == withdraw.StatusFailed && c.Status == withdraw.StatusFailed
	})
	// The same file dropped again: the bank pays nothing twice.
	before := e.bankBalances()
	processed := filepath.Join(e.conn.cfg.Drop, "outbox", "processed", "B1.txt")
	data, _ := os.ReadFile(processed)
	if bytes.Count(data, []byte("\r\n")) != b.Count+3 {
		t.Fatalf("the file has %d records; want %d", bytes.Count(data, []byte("\r\n")), b.Count+3)
	}
	os.WriteFile(filepath.Join(e.conn.cfg.Drop, "outbox", "B1.txt"), data, 0o600)
	control(t, e.bank, "/scan", nil)
	if after := e.bankBalances(); after.Trust != before.Trust {
		t.Errorf("a second drop of B1 moved the trust account from %d to %d", before.Trust, after.Trust)
	}
	if err := e.conn.ImportInbox(ctx); err != nil { // the result file: duplicates
		t.Fatal(err)
	}
	if got, want := e.avail(1), uint64(50_000-20_000-110); got != want {
		t.Errorf("customer 1 = %d; want %d", got, want)
	}
	if got := e.avail(2); got != 70_000 {
		t.Errorf("customer 2 = %d after 振込不能; want 70000", got)
	}
	control(t, e.bank, "/close", nil)
	if err := e.conn.ImportInbox(ctx); err != nil {
		t.Fatal(err)
	}
	e.read(func(s *core.State) {
		r := s.Yen.Reconciliations(1)[0]
		if r.Diff != 0 || r.Outside != 109_000 {
			t.Errorf("after the payouts: %+v", r)
		}
	})

	// A charge the ledger does not know: the statement disagrees, bank
	// deposits halt, an incident opens; a deposit now waits.
	control(t, e.bank, "/fee", map[string]uint64{"Amount": 500})
	control(t, e.bank, "/close", nil)
	if err := e.conn.ImportInbox(ctx); err != nil {
		t.Fatal(err)
	}
	e.read(func(s *core.State) {
		r := s.Yen.Reconciliations(1)[0]
		if r.Diff != -500 || r.Incident == "" || s.Controls.Allowed(0, controls.Bank) == nil {
			t.Errorf("difference not acted on: %+v", r)
		}
		if in, ok := s.Incidents.Get(r.Incident); !ok || in.Detector != "reconciliation" {
			t.Errorf("incident %+v", in)
		}
	})
	tx4 := control(t, e.bank, "/transfer", banksim.Transfer{Branch: "200", Number: "2000001", Amount: 1_000, Sender: "ﾔﾏﾀﾞ ﾀﾛｳ"})["txid"].(string)
	e.waitFor("a deposit held by the halt", func(s *core.State) bool { d := deposit(s, tx4); return d != nil && d.Hold == yen.HoldHalted })

	// The provider: a card payment and a convenience-store payment.
	p1, err := e.conn.RequestPayment(ctx, 3, controls.Card, 30_000, "r1")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := e.conn.RequestPayment(ctx, 3, controls.Convenience, 5_000, "r2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p2.Number, "KC") {
		t.Errorf("convenience-store number %q", p2.Number)
	}
	ev := control(t, e.pay, "/pay", map[string]string{"id": p1.ID})["event"].(string)
	control(t, e.pay, "/pay", map[string]string{"id": p2.ID})
	e.waitFor("payments credited", func(s *core.State) bool { return e.availIn(s, 3) == 35_000 })
	control(t, e.pay, "/replay", map[string]string{"id": ev})
	control(t, e.pay, "/chargeback", map[string]any{"id": p1.ID, "amount": 10_000})
	e.waitFor("the chargeback", func(s *core.State) bool { p, _ := s.Yen.Payment(p1.ID); return p.Reversed == 10_000 })
	if got := e.avail(3); got != 25_000 {
		t.Errorf("customer 3 = %d after a chargeback and a replay; want 25000", got)
	}
	// The convenience store's settlement pays into the trust account.
	sid := control(t, e.pay, "/settle", map[string]any{"channel": "convenience-store"})["settlement"].(string)
	e.waitFor("the settlement in the trust account", func(s *core.State) bool { in, ok := s.Yen.Instruction(sid); return ok && in.Done })
	// The card settlement claims 100 yen more than was credited: card
	// payments halt, an incident opens.
	control(t, e.pay, "/settle", map[string]any{"channel": "card", "extra": 100})
	e.waitFor("card halted", func(s *core.State) bool { return s.Controls.Allowed(0, controls.Card) != nil })
	if _, err := e.conn.RequestPayment(ctx, 3, controls.Card, 1_000, "r3"); !errors.Is(err, controls.ErrHalted) {
		t.Errorf("a card payment while halted: %v", err)
	}

	// House yen into the trust, by a signed instruction the bank carries
	// out.
	e.must(core.YenFundTrust{ID: "F-1", Amount: 100_000, Actor: "mei", Reason: "compensation top-up"})
	if err := e.conn.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	control(t, e.bank, "/scan", nil)
	e.waitFor("the instruction carried out", func(s *core.State) bool { in, _ := s.Yen.Instruction("F-1"); return in.Done })
	if got := e.bankBalances(); got.Operating != 400_000 {
		t.Errorf("the bank's operating account = %d; want 400000", got.Operating)
	}
	control(t, e.bank, "/close", nil)
	if err := e.conn.ImportInbox(ctx); err != nil {
		t.Fatal(err)
	}
	e.read(func(s *core.State) {
		r := s.Yen.Reconciliations(1)[0]
		if r.Diff != -500 {
			t.Errorf("the last reconciliation = %+v; want only the fee's -500", r)
		}
	})
}

func (e *env) availIn(s *core.State, c ledger.OwnerID) uint64 {
	a, ok := s.Ledger.Account(ledger.AccountKey{Owner: c, Asset: 1, Kind: ledger.KindAvailable})
	if !ok {
		return 0
	}
	v, _ := a.Balance().Uint64()
	return v
}

func (e *env) bankBalances() banksim.Balances {
	resp, err := http.Get(e.bank + "/balances")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b banksim.Balances
	json.NewDecoder(resp.Body).Decode(&b)
	return b
}
