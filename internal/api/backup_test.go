package api

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestBackupStoreRestores copies the API's store while it serves, loses
// it, and puts a copy back as a restore does: with the store lost no
// customer logs in; from a copy taken between two sign-ups the first
// customer logs in with their password and TOTP and the second cannot
// (their record is not in it, as docs/deploy.md says); from the latest
// copy both do. A copy replaces the previous one and leaves no partial
// one behind.
func TestBackupStoreRestores(t *testing.T) {
	e := newEnv(t)
	e.signUp("hanako@example.jp")
	bk := filepath.Join(t.TempDir(), "backup")
	if err := e.srv.BackupStore(bk); err != nil {
		t.Fatal(err)
	}
	first := filepath.Join(t.TempDir(), "first")
	if err := os.CopyFS(first, os.DirFS(filepath.Join(bk, StoreBackupName))); err != nil {
		t.Fatal(err)
	}
	e.signUp("taro@example.jp")
	if err := e.srv.BackupStore(bk); err != nil {
		t.Fatal(err)
	}
	for _, left := range []string{StoreBackupName + ".new", StoreBackupName + ".old"} {
		if _, err := os.Stat(filepath.Join(bk, left)); err == nil {
			t.Errorf("%s left in the backup directory", left)
		}
	}
	restore := func(from string) {
		t.Helper()
		e.stop()
		if err := os.RemoveAll(filepath.Join(e.dir, "api")); err != nil {
			t.Fatal(err)
		}
		if from != "" {
			if err := os.CopyFS(filepath.Join(e.dir, "api"), os.DirFS(from)); err != nil {
				t.Fatal(err)
			}
		}
		e.start()
	}
	logsIn := func(email string) bool {
		t.Helper()
		e.clock.Add(time.Minute) // a fresh TOTP code
		r := e.do("POST", "/v1/customers/login", "", LoginRequest{Email: email, Password: testPassword, TOTP: e.code(email)})
		return r.status == 200
	}
	restore("")
	if logsIn("hanako@example.jp") {
		t.Fatal("a customer logs in with the store lost")
	}
	restore(first)
	if !logsIn("hanako@example.jp") {
		t.Error("hanako cannot log in on the store restored from the copy taken after her sign-up")
	}
	if logsIn("taro@example.jp") {
		t.Error("taro logs in on a copy taken before his sign-up")
	}
	restore(filepath.Join(bk, StoreBackupName))
	for _, c := range []string{"hanako@example.jp", "taro@example.jp"} {
		if !logsIn(c) {
			t.Errorf("%s cannot log in on the store restored from the latest copy", c)
		}
	}
}
