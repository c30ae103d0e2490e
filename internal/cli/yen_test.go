package cli

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/mtls"
	"kinko/internal/yen"
	"kinko/internal/yen/bankcode"
	"kinko/internal/yen/banksim"
)

func TestYenSetupCheckStatus(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	conf := filepath.Join(dir, "yen.json")
	setup := func(trust, master string) string {
		return `{"asset":"JPY","trust":{` + trust + `,"type":1,"number":"1000001","name":"ｷﾝｺ ｼﾝﾀｸ"},
"operating":{"bank":"0005","branch":"001","type":1,"number":"1000002"},"requester_code":"1234567890","requester":"ｶ)ｷﾝｺ",
"virtual_branch":"101","virtual_first":2000001,"virtual_count":100,"fee":110,"deposit_max":1000000,"payment_max":300000,
"review_two_person_above":500000,"tolerance":0` + master + `}`
	}
	good := `"bank":"0038","branch":"106"`
	os.WriteFile(conf, []byte(setup(good, "")), 0o600)
	// Without the asset the setup is refused, and nothing is journaled.
	if out, code := run(t, "yen", "setup", "--data", data, "--config", conf); code == 0 || !strings.Contains(out, "not a fiat asset") {
		t.Fatalf("setup without JPY: %d %s", code, out)
	}
	if out, code := run(t, "yen", "status", "--data", data); code != 0 || !strings.Contains(out, "not set up") {
		t.Fatalf("status: %d %s", code, out)
	}
	// The bank master: a file with a bad line is refused naming the line;
	// accounts at banks or branches the master lacks are refused naming
	// which, before anything is journaled.
	master := filepath.Join(dir, "master.csv")
	os.WriteFile(master, []byte("0038,106,ｽﾐｼﾝｴｽﾋﾞ-ｱｲﾈﾂﾄ,ﾎｳｼﾞﾝﾀﾞｲｲﾁ,住信ＳＢＩネット,法人第一\n0038,101,ｽﾐｼﾝｴｽﾋﾞ-ｱｲﾈﾂﾄ,ｲﾁｺﾞ,住信ＳＢＩネット,イチゴ\n0005,001,ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ,ﾎﾝﾃﾝ,三菱ＵＦＪ,本店\n0005,01,ﾐﾂﾋﾞｼ,ｼﾌﾞﾔ,三菱ＵＦＪ,渋谷\n"), 0o600)
	if out, code := run(t, "yen", "check", "--bank-master", master); code == 0 || !strings.Contains(out, `line 4: branch code "01" is not 3 digits`) {
		t.Errorf("yen check of a bad master: %d %s", code, out)
	}
	if out, code := run(t, "yen", "setup", "--data", data, "--config", conf, "--bank-master", master); code == 0 || !strings.Contains(out, "line 4") {
		t.Errorf("yen setup with a bad master: %d %s", code, out)
	}
	b, _ := os.ReadFile(master)
	os.WriteFile(master, b[:strings.LastIndex(string(b[:len(b)-1]), "\n")+1], 0o600)
	if out, code := run(t, "yen", "check", "--bank-master", master); code != 0 || !strings.Contains(out, "2 banks, 3 branches") {
		t.Errorf("yen check of a good master: %d %s", code, out)
	}
	for _, c := range []struct{ trust, master, want string }{
		{`"bank":"0397","branch":"100"`, "", `trust account: bankcode: bank code not in the bank master: bank "0397"`},
		{`"bank":"0038","branch":"999"`, "", `trust account: bankcode: branch code not in the bank master: branch "999" of bank 0038`},
		{`"bank":"0005","branch":"001"`, `,"bank_master":"master.csv"`, `virtual branch: bankcode: branch code not in the bank master: branch "101" of bank 0005`},
	} {
		os.WriteFile(conf, []byte(setup(c.trust, c.master)), 0o600)
		if out, code := run(t, "yen", "setup", "--data", data, "--config", conf); code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("yen setup with trust %s: %d %s; want %s", c.trust, code, out, c.want)
		}
	}
	c, err := core.Open(context.Background(), core.Config{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	// The setup without the asset reached the core (refused by apply);
	// those the master refused never reached the journal.
	if head, _, _ := c.Journal().Head(); head != 1 {
		t.Errorf("the journal holds %d entries; want the one setup refused by apply", head)
	}
	if _, err := c.Submit(context.Background(), time.Now(), core.CreateAssets{Assets: []ledger.Asset{{ID: 1, Code: "JPY", Class: ledger.ClassFiat}}}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// The master named in the setup file, relative to it, is journaled.
	os.WriteFile(conf, []byte(setup(good, `,"bank_master":"master.csv"`)), 0o600)
	if out, code := run(t, "yen", "setup", "--data", data, "--config", conf); code != 0 || !strings.Contains(out, "trust 0038-106-1-1000001 at 住信ＳＢＩネット 法人第一 (0038-106)") || !strings.Contains(out, "2 banks, 3 branches") {
		t.Fatalf("yen setup: %d %s", code, out)
	}
	if out, code := run(t, "yen", "status", "--data", data); code != 0 || !strings.Contains(out, "operating at 三菱ＵＦＪ 本店 (0005-001)") || !strings.Contains(out, "bank master: 2 banks, 3 branches") {
		t.Errorf("yen status: %d %s", code, out)
	}
	for _, c := range []struct{ file, want string }{
		{"statement.golden", "opening 1000000, 2 credits of 170000, 1 debits of 30000, closing 1140000"},
		{"transfer.golden", "2 payments of 10000024999 yen"},
	} {
		out, code := run(t, "yen", "check", filepath.Join("..", "yen", "zengin", "testdata", c.file))
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("yen check %s: %d %s", c.file, code, out)
		}
	}
	b, _ = os.ReadFile(filepath.Join("..", "yen", "zengin", "testdata", "transfer.golden"))
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, b[:len(b)-122], 0o600)
	if out, code := run(t, "yen", "check", bad); code == 0 || !strings.Contains(out, "malformed") {
		t.Errorf("yen check of a truncated file: %d %s", code, out)
	}
}

// TestCoreRunsTheYenConnector starts `kinko core` with a drop directory
// and sends its HTTPS notice endpoint a signed notice and a forged one.
func TestCoreRunsTheYenConnector(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	c, err := core.Open(context.Background(), core.Config{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	if o, err := c.Submit(context.Background(), time.Now(), core.CreateAssets{Assets: []ledger.Asset{{ID: 1, Code: "JPY", Class: ledger.ClassFiat}}}); err != nil || o.EventErr() != nil {
		t.Fatal(err, o.EventErr())
	}
	c.Close()
	conf := filepath.Join(dir, "yen.json")
	os.WriteFile(conf, []byte(`{"asset":"JPY","trust":{"bank":"0038","branch":"106","type":1,"number":"1000001","name":"ｷﾝｺ ｼﾝﾀｸ"},
"operating":{"bank":"0005","branch":"001","type":1,"number":"1000002"},"requester_code":"1234567890","requester":"ｶ)ｷﾝｺ",
"virtual_branch":"101","virtual_first":2000001,"virtual_count":100,"fee":110,"deposit_max":1000000,"payment_max":300000,
"review_two_person_above":500000,"tolerance":0}`), 0o600)
	if out, code := run(t, "yen", "setup", "--data", data, "--config", conf); code != 0 {
		t.Fatalf("yen setup: %d %s", code, out)
	}
	tlsDir := filepath.Join(dir, "tls")
	if err := mtls.Init(tlsDir); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "bank.key")
	os.WriteFile(key, []byte("a bank key of some length\n"), 0o600)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	startCore(t, data, "--yen-drop", filepath.Join(dir, "drop"), "--yen-listen", addr, "--yen-tls-cert", filepath.Join(tlsDir, mtls.ServerCertFile),
		"--yen-tls-key", filepath.Join(tlsDir, mtls.ServerKeyFile), "--yen-bank-key-file", key)
	client, err := banksim.TLSClient(filepath.Join(tlsDir, mtls.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"deposit","txid":"1000001-1","memo":"1012000099","credit":true,"amount":5000,"sender":"ﾀﾞﾚｶ"}`)
	var out []byte
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, out, err = yen.Post(context.Background(), client, "https://"+addr+"/yen/bank", []byte("a bank key of some length"), body)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || !strings.Contains(string(out), "held: unknown_account") {
		t.Fatalf("a signed notice: %v %s", err, out)
	}
	var se *yen.StatusError
	if _, _, err := yen.Post(context.Background(), client, "https://"+addr+"/yen/bank", []byte("not the bank's key"), body); !errors.As(err, &se) || se.Code != 401 {
		t.Errorf("a forged notice: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "drop", "inbox", "done")); err != nil {
		t.Errorf("the drop directory was not made: %v", err)
	}
}

// TestSimControlRefuses: a simulator call with missing or bad flags, an
// unknown call, or no simulator to call says so and sends nothing.
func TestSimControlRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bank-sim", "transfer", "--data", dir, "--to", "2000001"}, "--to, --amount and --sender are required"},
		{[]string{"bank-sim", "transfer", "--data", dir, "--to", "2000001", "--amount", "5", "--sender", "山田"}, "--sender"},
		{[]string{"bank-sim", "payee", "--data", dir, "--bank", "05", "--branch", "001", "--number", "1234567", "--name", "ﾔﾏﾀﾞ"}, "bank code"},
		{[]string{"bank-sim", "withdraw", "--data", dir}, `unknown call "withdraw"`},
		{[]string{"pay-sim", "pay", "--data", dir}, "--payment is required"},
		{[]string{"bank-sim", "balances", "--data", dir}, "no simulator address (is kinko dev running on"},
	} {
		if out, code := run(t, c.args...); code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("kinko %s = %d %q; want an error with %q", strings.Join(c.args, " "), code, out, c.want)
		}
	}
}

// TestYenMasterTwoPerson: kinko yen master files the replacement of the
// bank master through the core; a master without the setup's own
// accounts is refused here with nothing filed; the admin who asked
// cannot approve it; a second admin's approval puts it in the setup.
func TestYenMasterTwoPerson(t *testing.T) {
	dir, codes := initData(t)
	conf := filepath.Join(t.TempDir(), "yen.json")
	os.WriteFile(conf, []byte(`{"asset":"JPY","trust":{"bank":"0038","branch":"106","type":1,"number":"1000001","name":"ｷﾝｺ ｼﾝﾀｸ"},
"operating":{"bank":"0005","branch":"001","type":1,"number":"1000002"},"requester_code":"1234567890","requester":"ｶ)ｷﾝｺ",
"virtual_branch":"101","virtual_first":2000001,"virtual_count":100,"fee":110,"deposit_max":1000000,"payment_max":300000,
"review_two_person_above":500000,"tolerance":0}`), 0o600)
	if out, code := run(t, "yen", "setup", "--data", dir, "--config", conf); code != 0 {
		t.Fatalf("yen setup: %d %s", code, out)
	}
	base, stop := serveCore(t, dir)
	keys := t.TempDir()
	key := func(n string) string { return filepath.Join(keys, n+".key") }
	for _, n := range []string{"aiko", "ren"} {
		run(t, "operators", "key", "--out", key(n))
		if out, code := run(t, "operators", "enrol", "--core", base, "--operator", n, "--key", key(n), "--code", codes[n]); code != 0 {
			t.Fatalf("enrol %s = %d %s", n, code, out)
		}
	}
	as := func(n string, args ...string) (string, int) {
		return run(t, append(args, "--core", base, "--operator", n, "--key", key(n))...)
	}
	files := t.TempDir()
	short := filepath.Join(files, "short.csv")
	os.WriteFile(short, []byte("0005,001,ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ,ﾎﾝﾃﾝ,三菱ＵＦＪ,本店\n"), 0o600)
	if out, code := as("aiko", "yen", "master", "--file", short, "--reason", "no trust bank"); code == 0 || !strings.Contains(out, "trust account") || !strings.Contains(out, "nothing filed") {
		t.Fatalf("a master without the trust bank = %d:\n%s", code, out)
	}
	next := bankcode.Builtin().Encode()
	next = append(next, "1234,001,ｷﾝｺｼﾝｷﾝ,ﾎﾝﾃﾝ,金庫信金,本店\n"...)
	full := filepath.Join(files, "next.csv")
	os.WriteFile(full, next, 0o600)
	m, err := bankcode.Parse(next)
	if err != nil {
		t.Fatal(err)
	}
	out, code := as("aiko", "yen", "master", "--file", full, "--reason", "a new bank")
	rid := regexp.MustCompile(`requested \(([^)]+)\)`).FindStringSubmatch(out)
	if code != 0 || rid == nil || !strings.Contains(out, m.Hash()) {
		t.Fatalf("yen master = %d:\n%s", code, out)
	}
	if out, code := as("aiko", "requests", "approve", "--id", rid[1], "--reason", "mine"); code == 0 {
		t.Fatalf("the requester's own approval = %d:\n%s", code, out)
	}
	if out, code := as("ren", "requests", "approve", "--id", rid[1], "--reason", "compared with the bank's file"); code != 0 {
		t.Fatalf("ren approves = %d:\n%s", code, out)
	}
	stop()
	if out, code := run(t, "yen", "status", "--data", dir); code != 0 || !strings.Contains(out, "sha256 "+m.Hash()) {
		t.Fatalf("yen status after the approval = %d:\n%s", code, out)
	}
}
