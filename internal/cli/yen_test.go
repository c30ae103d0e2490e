package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
