package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"kinko/internal/demo"
	"kinko/internal/journal/journaltest"
	"kinko/internal/ledger"
	"kinko/internal/yen/banksim"
)

// run executes the kinko command line in process and returns its output
// and exit code.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return out.String() + errb.String(), code
}

// startDev runs `kinko dev` on a free port and returns its base URL and a
// function that stops it (also called when the test ends).
func startDev(t *testing.T, dir string) (string, func()) {
	base, _, stop := startDevNode(t, dir)
	return base, stop
}

// startDevNode is startDev that also returns the printed line naming the
// regtest node's RPC address and credentials.
func startDevNode(t *testing.T, dir string) (string, string, func()) {
	t.Helper()
	base, nodeLine, _, stop := startDevBanner(t, dir)
	return base, nodeLine, stop
}

// startDevBanner is startDevNode that also returns everything the dev
// printed before its node line: the banner with the demo's logins. The
// Ethereum side is off (each start would cost its geth node and
// contracts); startDevEth turns it on.
func startDevBanner(t *testing.T, dir string) (string, string, string, func()) {
	t.Helper()
	return startDevArgs(t, dir, false)
}

// startDevEth is startDevBanner with the Ethereum side on; the banner
// returned runs to its last line.
func startDevEth(t *testing.T, dir string) (string, string, string, func()) {
	t.Helper()
	return startDevArgs(t, dir, true)
}

func startDevArgs(t *testing.T, dir string, eth bool) (string, string, string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	root := NewRoot()
	root.SetArgs([]string{"dev", "--data", dir, "--addr", "127.0.0.1:0", "--eth=" + strconv.FormatBool(eth)})
	root.SetOut(pw)
	root.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx); pw.Close() }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("kinko dev: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	sc := bufio.NewScanner(pr)
	re := regexp.MustCompile(`http://(127\.0\.0\.1:\d+)/healthz`)
	var base, node string
	var banner strings.Builder
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			base = "http://" + m[1]
		}
		if strings.Contains(sc.Text(), "Bitcoin regtest node: RPC") {
			node = sc.Text()
		}
		banner.WriteString(sc.Text() + "\n")
		if node != "" && (!eth || strings.HasPrefix(sc.Text(), "Ctrl-C stops it.")) {
			go io.Copy(io.Discard, pr)
			return base, node, banner.String(), stop
		}
	}
	t.Fatal("kinko dev printed no address")
	return "", "", "", nil
}

// TestOperatorsBootstrap: the founding operators of an empty journal,
// made on the core's host; each enrols a CLI key with their one-time code
// and then signs in through the core's API; the code works once, and a
// second bootstrap is refused.
func TestOperatorsBootstrap(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if out, code := run(t, "operators", "bootstrap", "--data", dir, "--name", "aiko", "--origin", "http://localhost:8080"); code == 0 {
		t.Fatalf("one founder = %d %q", code, out)
	}
	out, code := run(t, "operators", "bootstrap", "--data", dir, "--name", "aiko", "--name", "ren", "--origin", "http://localhost:8080")
	m := regexp.MustCompile(`aiko\s+code ([0-9a-f]{32})`).FindStringSubmatch(out)
	if code != 0 || m == nil || !strings.Contains(out, "http://localhost:8080/console/enrol?code=") {
		t.Fatalf("bootstrap = %d %q", code, out)
	}
	if out, code := run(t, "operators", "bootstrap", "--data", dir, "--name", "eve", "--name", "mallory", "--origin", "http://localhost:8080"); code == 0 || !strings.Contains(out, "operators exist") {
		t.Fatalf("a second bootstrap = %d %q", code, out)
	}
	key := filepath.Join(t.TempDir(), "aiko.key")
	if out, code := run(t, "operators", "key", "--out", key); code != 0 || !strings.Contains(out, "BEGIN PUBLIC KEY") {
		t.Fatalf("operators key = %d %q", code, out)
	}
	base, _ := serveCore(t, dir)
	if out, code := run(t, "requests", "list", "--core", base, "--operator", "aiko", "--key", key); code == 0 {
		t.Fatalf("sign-in before enrolment = %d %q", code, out)
	}
	if out, code := run(t, "operators", "enrol", "--core", base, "--operator", "aiko", "--key", key, "--code", m[1]); code != 0 || !strings.Contains(out, "active") {
		t.Fatalf("founder enrolment = %d %q", code, out)
	}
	other := filepath.Join(t.TempDir(), "other.key")
	run(t, "operators", "key", "--out", other)
	if out, code := run(t, "operators", "enrol", "--core", base, "--operator", "aiko", "--key", other, "--code", m[1]); code == 0 {
		t.Fatalf("the code used twice = %d %q", code, out)
	}
	if out, code := run(t, "requests", "list", "--core", base, "--operator", "aiko", "--key", key); code != 0 {
		t.Fatalf("requests list as aiko = %d %q", code, out)
	}
	if out, code := run(t, "requests", "list", "--core", base, "--operator", "ren", "--key", key); code == 0 {
		t.Fatalf("aiko's key as ren = %d %q", code, out)
	}
}

func TestDevStartsAndAnswers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	base, _, banner, _ := startDevBanner(t, dir)
	// The banner says how operators sign in: their CLI keys and one-time
	// enrolment links. A credential enrolled with kenji's link is pending,
	// and in dev two demo admins approve it: kenji then signs in with it.
	m := regexp.MustCompile(`enrol (http://localhost:\d+/console/enrol\?code=([^&\s]+)&operator=kenji)`).FindStringSubmatch(banner)
	if m == nil || !strings.Contains(banner, "operators/aiko.key") || !strings.Contains(banner, "/console/login") {
		t.Fatalf("banner without the operators' keys and links:\n%s", banner)
	}
	code, _ := url.QueryUnescape(m[2])
	key := filepath.Join(t.TempDir(), "kenji-2.key")
	run(t, "operators", "key", "--out", key)
	if out, code := run(t, "operators", "enrol", "--core", base, "--operator", "kenji", "--key", key, "--code", code); code != 0 || !strings.Contains(out, "pending") {
		t.Fatalf("enrol with the dev link = %d %q", code, out)
	}
	signedIn := false
	for i := 0; i < 100 && !signedIn; i++ {
		_, c := run(t, "requests", "list", "--core", base, "--operator", "kenji", "--key", key)
		signedIn = c == 0
		if !signedIn {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !signedIn {
		t.Fatal("the dev never approved kenji's new credential")
	}
	resp, err := http.Get(base + "/v1/journal/head")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Seq  uint64 `json:"seq"`
		Hash string `json:"hash"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || body.Seq < 10 || len(body.Hash) != 64 {
		t.Fatalf("GET /v1/journal/head = %d %+v; want the seeded demo", resp.StatusCode, body)
	}
	// The console and the public status page answer too.
	for _, path := range []string{"/console/login", "/status"} {
		r, err := http.Get(base + path)
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("GET %s = %v %v", path, r.StatusCode, err)
		}
		r.Body.Close()
	}
	// The metrics show the demo wallets, reconciled with the chain: the
	// ledger and the node agree to the unit, and nothing is halted.
	r, err := http.Get(base + "/metrics")
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("GET /metrics = %v", err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	for _, want := range []string{`kinko_wallet_balance_base_units{asset="BTC",kind="hot-customer",wallet="2"} 6e+06`, `kinko_reconciliation_difference_base_units{wallet="1"} 0`,
		`kinko_reconciliation_difference_base_units{wallet="2"} 0`, `kinko_hot_share_bps{asset="BTC"}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "kinko_halted{") {
		t.Errorf("the demo halted itself:\n%s", b)
	}
}

// TestDevRestarts: kinko dev stopped and started again on its own data
// directory comes back with its chain (btcd wipes a regtest chain at every
// start; the dev keeps its blocks and submits them again), its journal and
// everything on it: the wallets still reconcile with the chain to the unit
// and nothing halts. Its geth --dev node keeps its chain in the data
// directory: an Ether deposit credited before the stop is credited once,
// the watcher goes on from where it was and credits the next.
func TestDevRestarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	base, _, banner, stop := startDevEth(t, dir)
	hanako := ethDepositAddress(t, banner, "hanako@example.jp")
	const first = "1234567890123456789" // wei: 1.234567890123456789 ETH
	// What the dev's pay route refuses: a fraction, too much, a wrong
	// EIP-55 checksum, a short address.
	flipped := hanako[:2] + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'f' {
			return r - 'a' + 'A'
		}
		if r >= 'A' && r <= 'F' {
			return r - 'A' + 'a'
		}
		return r
	}, hanako[2:])
	for _, bad := range [][2]string{{hanako, "1.5"}, {hanako, "1000000000000000000001"}, {flipped, "1"}, {hanako[:40], "1"}} {
		if out, code := run(t, "dev", "pay", "--data", dir, "--dev", base, "--address", bad[0], "--amount", bad[1]); code == 0 {
			t.Errorf("kinko dev pay %s %s succeeded: %s", bad[0], bad[1], out)
		}
	}
	devPayEth(t, dir, base, hanako, first)
	waitEthBalance(t, dir, "1001", "1.234567890123456789")
	head := func(base string) uint64 {
		t.Helper()
		r, err := http.Get(base + "/v1/journal/head")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var body struct {
			Seq uint64 `json:"seq"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		return body.Seq
	}
	before := head(base)
	stop()
	base, _, banner, _ = startDevEth(t, dir)
	if after := head(base); after < before {
		t.Fatalf("journal head after the restart = %d; was %d", after, before)
	}
	if again := ethDepositAddress(t, banner, "hanako@example.jp"); again != hanako {
		t.Errorf("hanako's ETH deposit address after the restart = %s; was %s", again, hanako)
	}
	// More blocks over the credited deposit, then another customer's
	// deposit: credited, and the first still exactly once.
	if out, code := run(t, "dev", "mine", "--asset", "ETH", "--data", dir, "--dev", base); code != 0 {
		t.Fatalf("kinko dev mine --asset ETH = %d %s", code, out)
	}
	devPayEth(t, dir, base, ethDepositAddress(t, banner, "taro@example.jp"), "500000000000000000")
	waitEthBalance(t, dir, "1002", "0.5")
	waitEthBalance(t, dir, "1001", "1.234567890123456789")
	r, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	for _, want := range []string{`kinko_wallet_balance_base_units{asset="BTC",kind="hot-customer",wallet="2"} 6e+06`, `kinko_reconciliation_difference_base_units{wallet="1"} 0`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics after the restart lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "kinko_halted{") {
		t.Errorf("the restarted dev halted itself:\n%s", b)
	}
	checkDevYenOnce(t, dir)
}

// ethDepositAddress reads a demo customer's ETH deposit address from the
// dev's banner.
func ethDepositAddress(t *testing.T, banner, email string) string {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(email) + `\s+customer \d+\s+(0x[0-9a-fA-F]{40})`).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("kinko dev printed no ETH deposit address for %s:\n%s", email, banner)
	}
	return m[1]
}

// devPayEth pays wei to addr from the dev's geth node and mines the
// blocks that credit it.
func devPayEth(t *testing.T, dir, base, addr, wei string) {
	t.Helper()
	if out, code := run(t, "dev", "pay", "--data", dir, "--dev", base, "--address", addr, "--amount", wei); code != 0 {
		t.Fatalf("kinko dev pay %s %s = %d %s", addr, wei, code, out)
	}
	if out, code := run(t, "dev", "mine", "--asset", "ETH", "--data", dir, "--dev", base); code != 0 {
		t.Fatalf("kinko dev mine --asset ETH = %d %s", code, out)
	}
}

// waitEthBalance waits until customer's available ETH in the journal is
// want (in ETH), and fails if it is ever another non-zero amount.
func waitEthBalance(t *testing.T, dir, customer, want string) {
	t.Helper()
	re := regexp.MustCompile(`customer ` + customer + `\s+ETH\s+available\s+(\S+)\s`)
	var got string
	for range 300 {
		out, code := run(t, "ledger", "balances", "--data", dir, "--asset", "ETH", "--customer", customer)
		if m := re.FindStringSubmatch(out); code == 0 && m != nil {
			got = m[1]
			if got == want {
				return
			}
			if got != "0" {
				t.Fatalf("customer %s holds %s ETH; want %s", customer, got, want)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("customer %s holds %q ETH; want %s", customer, got, want)
}

// checkDevYenOnce: the demo customers' opening yen came in as bank
// transfers, credited into the trust account, and a restarted dev credits
// none of it twice: the opening transfers sent again under their
// references are the same transfers (the same ids), every notice the bank
// sent is sent again, and a statement carrying them all is imported; the
// customers are still owed exactly their opening yen, which the trust
// account holds, and the house's yen is at its operating account.
func checkDevYenOnce(t *testing.T, dir string) {
	t.Helper()
	sim := func(args ...string) string {
		t.Helper()
		out, code := run(t, append([]string{"bank-sim"}, append(args, "--data", dir)...)...)
		if code != 0 {
			t.Fatalf("kinko bank-sim %s: %d %s", strings.Join(args, " "), code, out)
		}
		return out
	}
	var total uint64
	for i, cy := range demo.CustomersYen {
		out := sim("transfer", "--to", fmt.Sprintf("%07d", 2000001+i), "--amount", fmt.Sprint(cy.Opening), "--sender", cy.Kana, "--ref", demo.OpeningRef(cy.Customer))
		if want := fmt.Sprintf(`{"txid":"1000001-%d"}`, i+1); strings.TrimSpace(out) != want {
			t.Errorf("the opening transfer of %d sent again = %s; want the same transfer %s", cy.Customer, out, want)
		}
		total += cy.Opening
	}
	var bal banksim.Balances
	json.Unmarshal([]byte(sim("balances")), &bal)
	if bal.Notices < 3 || bal.Trust != int64(total) {
		t.Fatalf("the bank after the restart: %+v; want the %d opening yen once", bal, total)
	}
	for i := range bal.Notices {
		sim("replay", "--index", fmt.Sprint(i))
	}
	var closed struct{ Statement string }
	json.Unmarshal([]byte(sim("close")), &closed)
	// Imported and reconciled once every notice is taken.
	for i := 0; ; i++ {
		json.Unmarshal([]byte(sim("balances")), &bal)
		st, _ := run(t, "yen", "status", "--data", dir)
		if bal.Pending == 0 && strings.Contains(st, closed.Statement) {
			if !regexp.MustCompile(regexp.QuoteMeta(closed.Statement) + `\s+bank\s+6000000\s+6000000\s+0\s+false`).MatchString(st) {
				t.Fatalf("the statement after the restart did not reconcile:\n%s", st)
			}
			break
		}
		if i == 300 {
			t.Fatalf("the statement %s was never imported (bank %+v):\n%s", closed.Statement, bal, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, code := run(t, "reserves", "--data", dir)
	if want := "JPY: customers are owed 6000000; the trust (bank) holds 6000000: covered; in transit at the provider 0; the house's own at its operating account 100000000"; code != 0 || !strings.Contains(out, want) {
		t.Errorf("kinko reserves after the restart = %d:\n%s\nwant %q", code, out, want)
	}
}

func TestJournalAndLedgerCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	_, stop := startDev(t, dir)
	// The read commands work while the core runs (on a copy of its
	// journal as it is now: the core holds the journal's lock).
	defer stop()
	out, code := run(t, "journal", "verify", "--data", dir)
	m := regexp.MustCompile(`journal OK: (\d+) entries`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("journal verify = %d %q", code, out)
	}
	entries := m[1]
	out, code = run(t, "journal", "show", "--data", dir, "--from", "2", "--limit", "2")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, "create_accounts") || !strings.Contains(out, "20 accounts") || !strings.Contains(out, "bootstrap") {
		t.Fatalf("journal show = %d %q", code, out)
	}
	out, code = run(t, "journal", "show", "--data", dir, "--limit", "1", "--json")
	var row map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &row) != nil || row["kind"] != "create_assets" {
		t.Fatalf("journal show --json = %d %q", code, out)
	}
	out, code = run(t, "ledger", "balances", "--data", dir, "--asset", "BTC")
	if code != 0 || !regexp.MustCompile(`customer 1002\s+BTC\s+available\s+1\s`).MatchString(out) {
		t.Fatalf("ledger balances = %d %q", code, out)
	}
	// Filters: one customer's accounts; the house's wallets.
	out, code = run(t, "ledger", "balances", "--data", dir, "--customer", "1002", "--nonzero")
	if code != 0 || !regexp.MustCompile(`customer 1002\s+BTC\s+available\s+1\s`).MatchString(out) || strings.Contains(out, "customer 1001") || strings.Contains(out, "house+") {
		t.Fatalf("ledger balances --customer 1002 = %d %q", code, out)
	}
	out, code = run(t, "ledger", "balances", "--data", dir, "--side", "house", "--kind", "wallet", "--json")
	var walletRows struct {
		Accounts []BalanceRow `json:"accounts"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &walletRows) != nil || len(walletRows.Accounts) == 0 {
		t.Fatalf("ledger balances --side house --kind wallet = %d %q", code, out)
	}
	for _, r := range walletRows.Accounts {
		if r.Kind != "wallet" || r.Owner < ledger.OwnerHouseMin {
			t.Errorf("--side house --kind wallet kept %+v", r)
		}
	}
	// Before the deposits were credited from the chain, customer 1002 held
	// no bitcoin.
	all, _ := run(t, "journal", "show", "--data", dir, "--limit", "1000")
	cm := regexp.MustCompile(`(?m)^\s*(\d+)\s+\S+\s+credit_deposits`).FindStringSubmatch(all)
	if cm == nil {
		t.Fatalf("no credit_deposits entry in:\n%s", all)
	}
	credit, _ := strconv.Atoi(cm[1])
	prev := strconv.Itoa(credit - 1)
	out, code = run(t, "ledger", "balances", "--data", dir, "--at", prev, "--asset", "BTC")
	if code != 0 || !strings.Contains(out, "as of entry "+prev) || !regexp.MustCompile(`customer 1002\s+BTC\s+available\s+0\s`).MatchString(out) {
		t.Fatalf("ledger balances --at %s = %d %q", prev, code, out)
	}
	for _, bad := range [][]string{
		{"ledger", "balances", "--data", dir, "--at", "yesterday"},
		{"ledger", "balances", "--data", dir, "--at", "9999"},
		{"ledger", "balances", "--data", dir, "--at", "2001-01-01T00:00:00Z"},
		{"ledger", "balances", "--data", dir, "--at", "2999-01-01T00:00:00Z"},
		{"ledger", "balances", "--data", dir, "--asset", "NOPE"},
		{"ledger", "balances", "--data", dir, "--kind", "nope"},
		{"ledger", "balances", "--data", dir, "--side", "both"},
		{"ledger", "balances", "--data", dir, "--customer", "0"},
		{"journal", "show", "--data", dir, "--limit", "0"},
	} {
		if out, code := run(t, bad...); code == 0 {
			t.Errorf("%v = 0 %q; want an error", bad, out)
		}
	}
	// Holdings: XEM now (customer 1001 has 100 XEM held by a resting order),
	// and at the entry before the opening balances, nobody.
	out, code = run(t, "holdings", "--data", dir, "--asset", "XEM", "--format", "csv")
	if code != 0 || !strings.Contains(out, "1001,900000000,100000000,1000000000,XEM,") || !strings.Contains(out, "total,,,6000000000,XEM,") {
		t.Fatalf("holdings = %d %q", code, out)
	}
	out, code = run(t, "holdings", "--data", dir, "--asset", "XEM", "--at", "1", "--format", "json")
	var hr struct {
		Holders int `json:"holders"`
		Seq     int `json:"seq"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &hr) != nil || hr.Holders != 0 || hr.Seq != 1 {
		t.Fatalf("holdings --at 1 = %d %q", code, out)
	}
	for _, bad := range [][]string{
		{"holdings", "--data", dir, "--asset", "NOPE"},
		{"holdings", "--data", dir, "--asset", "XEM", "--at", "2999-01-01T00:00:00Z"},
		{"holdings", "--data", dir, "--asset", "XEM", "--at", "2001-01-01T00:00:00Z"},
		{"holdings", "--data", dir, "--asset", "XEM", "--format", "xml"},
		{"trace", "--tx", "not-a-txid", "--rpc", "127.0.0.1:1", "--notls"},
		{"trace", "--tx", "00000000000000000000000000000000000000000000000000000000000000aa", "--hops", "0", "--rpc", "127.0.0.1:1", "--notls"},
	} {
		if out, code := run(t, bad...); code == 0 {
			t.Errorf("%v = 0 %q; want an error", bad, out)
		}
	}
	// Reads of the journal before the writes, from a copy of the data
	// directory while the core runs: a compensation plan's dry run.
	out, code = run(t, "compensation", "plan", "--data", dir, "--id", "drill", "--asset", "XEM", "--rate", "88.549", "--at", entries,
		"--reason", "drill", "--write-off", "--dry-run")
	if code != 0 || !strings.Contains(out, "3 customers, total 531294 JPY") || !strings.Contains(out, "largest 265647 to customer 1003") {
		t.Fatalf("compensation dry run = %d %q", code, out)
	}
	for _, r := range []string{"-1", "0", "abc", "1e3", "1/3", "99999999999999999999"} {
		if out, code := run(t, "compensation", "plan", "--data", dir, "--id", "x", "--asset", "XEM", "--rate", r, "--at", entries, "--reason", "x", "--dry-run"); code == 0 {
			t.Errorf("rate %q accepted: %q", r, out)
		}
	}
	if out, code = run(t, "compensation", "fills", "--data", dir, "--id", "f", "--market", "XEM/JPY", "--from", "1", "--resume", entries, "--reason", "r", "--dry-run"); code != 0 || !strings.Contains(out, "XEM/JPY: 0 fills") {
		t.Fatalf("compensation fills = %d %q", code, out)
	}
	if out, code = run(t, "compensation", "fills", "--data", dir, "--id", "f", "--market", "DOGE/JPY", "--from", "1", "--resume", entries, "--reason", "r"); code == 0 {
		t.Fatalf("unknown market = %d %q", code, out)
	}
	stop() // the writes below: the data directory has one writer
	copyDir := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(copyDir, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	// The writes go through the running core's API, each operator signed
	// in with their CLI key (the dev keeps them in operators/).
	base, stop := serveCore(t, dir)
	as := func(name string, args ...string) (string, int) {
		return run(t, append(args, "--core", base, "--operator", name, "--key", filepath.Join(dir, "operators", name+".key"))...)
	}
	// A command that writes the journal takes no --actor, and without a key
	// it does not write.
	if out, code := run(t, "incident", "open", "--id", "x", "--reason", "r", "--actor", "aiko"); code == 0 || !strings.Contains(out, "unknown flag: --actor") {
		t.Fatalf("--actor accepted = %d %q", code, out)
	}
	if out, code := run(t, "incident", "open", "--id", "x", "--reason", "r", "--core", base, "--operator", "aiko", "--key", filepath.Join(dir, "operators", "kenji.key")); code == 0 || !strings.Contains(out, "sign in") {
		t.Fatalf("aiko with kenji's key = %d %q", code, out)
	}
	// A market asked for from a file, listed when a second admin approves;
	// asked again, and a bad listing, refused.
	mf := filepath.Join(t.TempDir(), "markets.json")
	os.WriteFile(mf, []byte(`[{"id": 9, "code": "XEM/BTC", "base": 4, "quote": 2, "scale": 1000000, "tick_size": 1, "lot_size": 1000000, "min_qty": 1000000, "max_qty": 1000000000000, "max_price": 100000000, "max_orders": 1024}]`), 0o644)
	out, code = as("aiko", "market", "add", "--file", mf, "--reason", "demand")
	rid := regexp.MustCompile(`\((list-market-[0-9a-f]+)\)`).FindStringSubmatch(out)
	if code != 0 || rid == nil || !strings.Contains(out, "band ±1000 bps, largest order 1000000000 (notional)") || !strings.Contains(out, "breaker 500 bps in 5m0s") {
		t.Fatalf("market add = %d %q", code, out)
	}
	if out, code := as("aiko", "requests", "approve", "--id", rid[1], "--reason", "mine"); code == 0 || !strings.Contains(out, "nobody approves their own request") {
		t.Fatalf("self-approved listing = %d %q", code, out)
	}
	if out, code := as("ren", "requests", "approve", "--id", rid[1], "--reason", "agreed"); code != 0 {
		t.Fatalf("listing approved = %d %q", code, out)
	}
	if out, code = as("aiko", "market", "add", "--file", mf, "--reason", "again"); code == 0 {
		t.Fatalf("listing twice = %d %q", code, out)
	}
	os.WriteFile(mf, []byte(`[{"id": 10, "code": "BTC/JPY2", "base": 2, "quote": 1, "scale": 100000000, "tick_size": 1, "lot_size": 1, "min_qty": 1, "max_qty": 100, "max_price": 100, "max_orders": 10}]`), 0o644)
	if out, code = as("aiko", "market", "add", "--file", mf, "--reason", "x"); code == 0 || !strings.Contains(out, "not a multiple") {
		t.Fatalf("a listing with fractional notionals = %d %q", code, out)
	}
	// Rules lowering the cool-down wait for a second admin.
	rf := filepath.Join(t.TempDir(), "rules.json")
	os.WriteFile(rf, []byte(`{"cooldown_seconds": 5}`), 0o644)
	if out, code = as("aiko", "rules", "set", "--file", rf, "--reason", "faster"); code != 0 || !strings.Contains(out, "a second admin approves them") {
		t.Fatalf("rules set = %d %q", code, out)
	}
	// An incident opened by hand, with a note.
	if out, code = as("aiko", "incident", "open", "--id", "drill-xem", "--asset", "XEM", "--reason", "drill: XEM theft", "--tx", "ab12"); code != 0 {
		t.Fatalf("incident open = %d %q", code, out)
	}
	if out, code = as("aiko", "incident", "note", "--id", "drill-xem", "--text", "keys rotated"); code != 0 {
		t.Fatalf("incident note = %d %q", code, out)
	}
	if out, code = as("aiko", "incident", "note", "--id", "nope", "--text", "x"); code == 0 {
		t.Fatalf("note on an unknown incident = %d %q", code, out)
	}
	// A compensation plan: 88.549 yen per XEM held at entries, computed
	// from the copy, written through the core, approved by a second
	// operator, executed, executed again.
	if out, code = as("aiko", "compensation", "plan", "--data", copyDir, "--id", "drill", "--asset", "XEM", "--rate", "88.549", "--at", entries,
		"--reason", "drill", "--write-off", "--incident", "drill-xem"); code != 0 || !strings.Contains(out, "written as a draft") {
		t.Fatalf("compensation plan = %d %q", code, out)
	}
	if out, code = as("aiko", "compensation", "execute", "--id", "drill"); code == 0 || !strings.Contains(out, "not approved") {
		t.Fatalf("executing a draft = %d %q", code, out)
	}
	out, code = as("aiko", "requests", "open", "--kind", "approve_compensation", "--payload", `{"plan":"drill"}`, "--role", "approver", "--reason", "dry run checked")
	aid := regexp.MustCompile(`request (approve-compensation-[0-9a-f]+) filed`).FindStringSubmatch(out)
	if code != 0 || aid == nil {
		t.Fatalf("approval requested = %d %q", code, out)
	}
	if out, code = as("kenji", "requests", "approve", "--id", aid[1], "--reason", "agreed"); code != 0 {
		t.Fatalf("plan approved = %d %q", code, out)
	}
	if out, code = as("aiko", "compensation", "execute", "--id", "drill"); code != 0 || !strings.Contains(out, "paid 3 customers (0 already paid), 531294") {
		t.Fatalf("compensation execute = %d %q", code, out)
	}
	if out, code = as("aiko", "compensation", "execute", "--id", "drill"); code != 0 || !strings.Contains(out, "all 3 paid") {
		t.Fatalf("compensation execute again = %d %q", code, out)
	}
	// Closing takes two people: aiko asks, aiko cannot approve her own
	// request, kenji does; asked again after, refused.
	out, code = as("aiko", "incident", "close", "--id", "drill-xem", "--reason", "paid")
	cid := regexp.MustCompile(`\((close-incident-[0-9a-f]+)\)`).FindStringSubmatch(out)
	if code != 0 || cid == nil {
		t.Fatalf("incident close = %d %q", code, out)
	}
	if out, code = as("aiko", "requests", "approve", "--id", cid[1], "--reason", "mine"); code == 0 {
		t.Fatalf("the requester approved her own close = %d %q", code, out)
	}
	if out, code = as("kenji", "requests", "approve", "--id", cid[1], "--reason", "agreed"); code != 0 {
		t.Fatalf("close approved = %d %q", code, out)
	}
	if out, code = as("aiko", "incident", "close", "--id", "drill-xem", "--reason", "again"); code == 0 {
		t.Fatalf("closing twice = %d %q", code, out)
	}
	stop()
	if out, code = run(t, "compensation", "show", "--data", dir, "--id", "drill"); code != 0 || !strings.Contains(out, "status done; paid 3 of 3") {
		t.Fatalf("compensation show = %d %q", code, out)
	}
	out, code = run(t, "incident", "report", "--data", dir, "--id", "drill-xem")
	for _, want := range []string{"# Incident drill-xem", "| drill | fixed_rate | 88.549 JPY per XEM |", "| 3 | 531294 JPY | 265647 JPY | done | aiko | kenji |", "keys rotated", "executes compensation plan drill", "- `ab12`"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("incident report lacks %q: %d %s", want, code, out)
		}
	}
	if out, code = run(t, "incident", "report", "--data", dir, "--id", "drill-xem", "--format", "html"); code != 0 || !strings.Contains(out, "<svg") {
		t.Fatalf("incident report --format html = %d", code)
	}
	if out, code = run(t, "incident", "notice", "--data", dir, "--id", "drill-xem"); code != 0 || !strings.Contains(out, "Compensation (drill): 3 customers") {
		t.Fatalf("incident notice = %d %q", code, out)
	}
	// The rules asked for are not in force: nobody approved them.
	st, err := loadState(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if st.Withdraw.Rules.CoolDownSeconds == 5 {
		t.Fatal("the cool-down fell to 5 s on one admin's word")
	}
	// Written off: what was available; the 100 XEM a resting order holds
	// stays until the order is cancelled.
	if out, code := run(t, "holdings", "--data", dir, "--asset", "XEM", "--format", "csv"); code != 0 || !strings.Contains(out, "1001,0,100000000,100000000,XEM") || !strings.Contains(out, "total,,,100000000,XEM") {
		t.Fatalf("XEM after the write-off = %d %q", code, out)
	}
	entries = strings.TrimSpace(func() string {
		o, _ := run(t, "journal", "verify", "--data", dir)
		return regexp.MustCompile(`(\d+) entries`).FindStringSubmatch(o)[1]
	}())
	if out, code := run(t, "incident", "timeline", "--data", dir); code != 0 || !strings.HasPrefix(out, "| entry | time (UTC) | who | what | detail |") {
		t.Fatalf("incident timeline = %d %q", code, out)
	}
	h1, _ := run(t, "state", "hash", "--data", dir)
	h2, _ := run(t, "state", "hash", "--data", dir)
	if h1 != h2 || !strings.HasPrefix(h1, "seq "+entries+" state ") {
		t.Fatalf("state hash = %q then %q", h1, h2)
	}
	// A damaged entry is named, and the core refuses to start.
	if err := journaltest.FlipBit(filepath.Join(dir, "journal"), 2, 100); err != nil {
		t.Fatal(err)
	}
	out, code = run(t, "journal", "verify", "--data", dir)
	if code != 2 || !strings.Contains(out, "journal BAD at entry 2") {
		t.Fatalf("journal verify on damage = %d %q", code, out)
	}
	out, code = run(t, "core", "--data", dir, "--addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(out, "core refuses to start") || !strings.Contains(out, "entry 2") {
		t.Fatalf("core on damage = %d %q", code, out)
	}
}

// TestWatchProcess runs `kinko watch` against a running `kinko dev`: it
// follows the core's journal with the stream token, the node with the
// printed credentials, and serves its metrics; bad flags are refused.
func TestWatchProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	base, nodeLine, _ := startDevNode(t, dir)
	m := regexp.MustCompile(`RPC (\S+) \(user (\S+), password (\S+),`).FindStringSubmatch(nodeLine)
	if m == nil {
		t.Fatalf("node line %q", nodeLine)
	}
	if out, code := run(t, "watch", "--core", base); code == 0 {
		t.Fatalf("watch without tokens = %d %q", code, out)
	}
	if out, code := run(t, "watch", "--core", base, "--stream-token-file", "/nonexistent", "--watcher-token-file", "/nonexistent"); code == 0 {
		t.Fatalf("watch with missing token files = %d %q", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.token")
	os.WriteFile(bad, []byte("wrong"), 0o600)
	if out, code := run(t, "watch", "--core", base, "--stream-token-file", bad, "--watcher-token-file", bad, "--rpc", m[1], "--notls", "--state", filepath.Join(t.TempDir(), "watcher-state")); code == 0 || !strings.Contains(out, "401") {
		t.Fatalf("watch with a wrong token = %d %q", code, out)
	}
	// The recovery from a reorg below the kept blocks refuses when there
	// was none, and an asset the journal does not have; it needs --actor.
	recoverArgs := func(extra ...string) []string {
		return append([]string{"watch", "recover-reorg", "--core", base, "--stream-token-file", filepath.Join(dir+".secrets", "stream.token"), "--watcher-token-file", filepath.Join(dir+".secrets", "watcher.token"),
			"--rpc", m[1], "--rpcuser", m[2], "--rpcpass", m[3], "--notls", "--state", filepath.Join(t.TempDir(), "recover-state")}, extra...)
	}
	if out, code := run(t, recoverArgs("--actor", "aiko", "--yes")...); code == 0 || !strings.Contains(out, "on the node's best chain") {
		t.Fatalf("recover-reorg with the checkpoint on the best chain = %d %q", code, out)
	}
	if out, code := run(t, recoverArgs("--actor", "aiko", "--asset", "NOPE")...); code == 0 || !strings.Contains(out, "no such asset") {
		t.Fatalf("recover-reorg of an unknown asset = %d %q", code, out)
	}
	if out, code := run(t, recoverArgs()...); code == 0 || !strings.Contains(out, "actor") {
		t.Fatalf("recover-reorg without --actor = %d %q", code, out)
	}
	if out, code := run(t, recoverArgs("--actor", "aiko", "--eth-node", "ftp://127.0.0.1:1")...); code == 0 || !strings.Contains(out, "--eth-node") {
		t.Fatalf("recover-reorg with a bad --eth-node = %d %q", code, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	root := NewRoot()
	root.SetArgs([]string{"watch", "--core", base, "--stream-token-file", filepath.Join(dir+".secrets", "stream.token"), "--watcher-token-file", filepath.Join(dir+".secrets", "watcher.token"),
		"--rpc", m[1], "--rpcuser", m[2], "--rpcpass", m[3], "--notls", "--metrics", "127.0.0.1:0", "--confirmations", "6", "--start-height", "432",
		"--state", filepath.Join(t.TempDir(), "watcher-state")})
	root.SetOut(pw)
	root.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx); pw.Close() }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("kinko watch: %v", err)
		}
	}()
	sc := bufio.NewScanner(pr)
	var metricsURL string
	for sc.Scan() {
		if mm := regexp.MustCompile(`metrics at (\S+)`).FindStringSubmatch(sc.Text()); mm != nil {
			metricsURL = mm[1]
		}
		if strings.HasPrefix(sc.Text(), "watching BTC") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if metricsURL == "" {
		t.Fatal("kinko watch printed no metrics address")
	}
	// Its replica follows the core: the journal's head shows in its metrics.
	r, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !regexp.MustCompile(`kinko_journal_seq [1-9]`).Match(b) || !strings.Contains(string(b), `kinko_reconciliation_difference_base_units{wallet="1"} 0`) {
		t.Fatalf("watcher metrics:\n%s", b)
	}
}

// TestDrillOnRunningDev runs both drills inside a running kinko dev: new
// customers deposit on chain and are credited by the dev's own watcher, a
// refill ceremony signed with two cold keys fills the hot wallet, two hot
// keys leak from the demo's key files, and the dev's watcher halts by
// itself; the house's backing covers the loss in kind (a cover ceremony
// the demo's two cold house keys sign), what it cannot is paid in yen,
// both sides are whole after, services resume and the incidents close by
// two people, all in the dev's journal.
func TestDrillOnRunningDev(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	base, _, _ := startDevNode(t, dir)
	out, code := run(t, "drill", "coincheck", "--dev", base, "--data", dir, "--customers", "150")
	for _, want := range []string{"credited by the running watcher", "refill ceremony", "halt and incident journaled", "by the watcher, with no person", "covered in kind: cover ceremony",
		"after the drill: BTC segregated", "after the drill: JPY segregated", "resumed in stages", "closed by two people", "all BTC services have resumed", "report saved to"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("drill coincheck --dev lacks %q (%d):\n%s", want, code, out)
		}
	}
	t.Logf("%s", out[:strings.Index(out, "# Incident")])
	if out, code := run(t, "drill", "coincheck", "--dev", base, "--data", t.TempDir(), "--customers", "10"); code == 0 {
		t.Fatalf("a drill without the dev's token = %d %q", code, out)
	}
	out, code = run(t, "drill", "bitpoint", "--dev", base, "--data", dir, "--customers", "150")
	if code != 0 || !strings.Contains(out, "during the suspension") || !strings.Contains(out, "bank → BTC:withdraw → BTC:deposit") {
		t.Fatalf("drill bitpoint --dev (%d):\n%s", code, out)
	}
	// Both drills resumed everything they halted: nothing is halted now.
	r, err := http.Get(base + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Halts []json.RawMessage `json:"halts"`
	}
	err = json.NewDecoder(r.Body).Decode(&st)
	r.Body.Close()
	if err != nil || len(st.Halts) != 0 {
		t.Fatalf("status after the drills: %v %s", err, st.Halts)
	}
}
