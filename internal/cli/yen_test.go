package cli

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/mtls"
	"kinko/internal/yen"
	"kinko/internal/yen/banksim"
)

func TestYenSetupCheckStatus(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	conf := filepath.Join(dir, "yen.json")
	os.WriteFile(conf, []byte(`{"asset":"JPY","trust":{"bank":"0397","branch":"100","type":1,"number":"1000001","name":"ｷﾝｺ ｼﾝﾀｸ"},
"operating":{"bank":"0397","branch":"100","type":1,"number":"1000002"},"requester_code":"1234567890","requester":"ｶ)ｷﾝｺ",
"virtual_branch":"200","virtual_first":2000001,"virtual_count":100,"fee":110,"deposit_max":1000000,"payment_max":300000,
"review_two_person_above":500000,"tolerance":0}`), 0o600)
	// Without the asset the setup is refused, and nothing is journaled.
	if out, code := run(t, "yen", "setup", "--data", data, "--config", conf); code == 0 || !strings.Contains(out, "not a fiat asset") {
		t.Fatalf("setup without JPY: %d %s", code, out)
	}
	if out, code := run(t, "yen", "status", "--data", data); code != 0 || !strings.Contains(out, "not set up") {
		t.Fatalf("status: %d %s", code, out)
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
	b, _ := os.ReadFile(filepath.Join("..", "yen", "zengin", "testdata", "transfer.golden"))
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
	os.WriteFile(conf, []byte(`{"asset":"JPY","trust":{"bank":"0397","branch":"100","type":1,"number":"1000001","name":"ｷﾝｺ ｼﾝﾀｸ"},
"operating":{"bank":"0397","branch":"100","type":1,"number":"1000002"},"requester_code":"1234567890","requester":"ｶ)ｷﾝｺ",
"virtual_branch":"200","virtual_first":2000001,"virtual_count":100,"fee":110,"deposit_max":1000000,"payment_max":300000,
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
	body := []byte(`{"type":"deposit","txid":"1000001-1","memo":"2002000099","credit":true,"amount":5000,"sender":"ﾀﾞﾚｶ"}`)
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
