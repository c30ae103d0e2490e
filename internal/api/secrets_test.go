package api

import (
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kinko/internal/core"
	"kinko/internal/people"
)

// customerSecrets are the secrets of a test customer that must never be
// at rest in clear, nor leave the core's host: the TOTP seed, its sealed
// form, the password's hash and the password.
func (e *env) customerSecrets(email string) map[string]string {
	e.t.Helper()
	var c people.Customer
	e.core.Read(func(st *core.State) { c, _ = st.People.CustomerByEmail(email) })
	cr, err := e.srv.credsOf(c)
	if err != nil {
		e.t.Fatal(err)
	}
	return map[string]string{"TOTP seed of " + email: e.secrets[email], "sealed seed of " + email: cr.TOTPSealed,
		"password hash of " + email: cr.PasswordHash, "the argon2 digest of " + email: cr.PasswordHash[strings.LastIndexByte(cr.PasswordHash, '$')+1:]}
}

func findAny(t *testing.T, where string, b []byte, secrets map[string]string) {
	t.Helper()
	for what, s := range secrets {
		if len(s) < 8 {
			t.Fatalf("%s is too short to look for: %q", what, s)
		}
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("%s found in %s", what, where)
		}
	}
}

// TestStreamCarriesNoCredentials: the journal stream the co-signer and
// the watcher follow (GET /v1/journal/raw) carries no TOTP seed, sealed
// or not, and no password hash of any customer, from sign-up through a
// password change and a new second factor; the journal keeps only the
// commitments, and the co-signer's replica still verifies every entry's
// hash.
func TestStreamCarriesNoCredentials(t *testing.T) {
	e := newEnv(t)
	_, tok := e.signUp("hanako@example.jp")
	e.signUp("taro@example.jp")
	secrets := map[string]string{"password": testPassword}
	for k, v := range e.customerSecrets("hanako@example.jp") {
		secrets[k] = v
	}
	for k, v := range e.customerSecrets("taro@example.jp") {
		secrets[k] = v
	}
	// A new password and a new second factor for hanako.
	const next = "another long passphrase"
	if r := e.do("POST", "/v1/me/password", tok, PasswordRequest{Password: testPassword, NewPassword: next}, "X-TOTP", e.code("hanako@example.jp")); r.status != 200 {
		t.Fatalf("password change = %d %s", r.status, r.body)
	}
	secrets["new password"] = next
	r := e.do("POST", "/v1/me/totp", tok, TOTPRequest{Password: next}, "X-TOTP", e.code("hanako@example.jp"), "Idempotency-Key", "totp-1")
	if r.status != 200 {
		t.Fatalf("re-enrol = %d %s", r.status, r.body)
	}
	var tr TOTPResponse
	r.json(t, &tr)
	e.secrets["hanako@example.jp"] = tr.TOTPSecret
	for k, v := range e.customerSecrets("hanako@example.jp") {
		secrets["new "+k] = v
	}
	req, _ := http.NewRequest("GET", e.http.URL+"/v1/journal/raw?from=1", nil)
	req.Header.Set("Authorization", "Bearer "+e.srv.StreamToken())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	stream, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || len(stream) < 1000 {
		t.Fatalf("stream = %d, %d bytes", res.StatusCode, len(stream))
	}
	findAny(t, "the journal stream", stream, secrets)
	if !bytes.Contains(stream, []byte(`"commit":"`)) {
		t.Fatal("the stream holds no credential commitment: the test looked at the wrong thing")
	}
	t.Logf("journal stream of %d bytes scanned for %d secrets: none found", len(stream), len(secrets))
	// Every entry verifies as the followers verify it.
	if v := e.srv.verify(); !v.OK {
		t.Fatalf("journal verify: %+v", v)
	}
}

// TestNoSecretInTheDataDirectory: nothing in the data directory (journal,
// snapshots, the API's store with its idempotency records and
// credentials) holds a TOTP seed, a password hash, a password or a
// session token in clear, and no host key is in it: a copy of the data
// directory (a backup) carries none. The host keys are in the secrets
// directory beside it.
func TestNoSecretInTheDataDirectory(t *testing.T) {
	e := newEnv(t)
	// The sign-up answer (with the TOTP seed) is kept for its
	// idempotency key, and given again.
	r := e.do("POST", "/v1/customers", "", SignUpRequest{Email: "idem@example.jp", Name: "I", Password: testPassword}, "Idempotency-Key", "signup-1")
	var sr SignUpResponse
	r.json(t, &sr)
	if r.status != 201 || sr.TOTPSecret == "" {
		t.Fatalf("sign-up = %d %s", r.status, r.body)
	}
	e.secrets["idem@example.jp"] = sr.TOTPSecret
	again := e.do("POST", "/v1/customers", "", SignUpRequest{Email: "idem@example.jp", Name: "I", Password: testPassword}, "Idempotency-Key", "signup-1")
	if again.status != 201 || !bytes.Equal(again.body, r.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replayed sign-up = %d %s", again.status, again.body)
	}
	tok := e.loginCustomer("idem@example.jp")
	_, tok2 := e.signUp("other@example.jp")
	e.srv.core.Snapshot()
	secrets := map[string]string{"password": testPassword, "session token": tok, "other session token": tok2}
	for _, who := range []string{"idem@example.jp", "other@example.jp"} {
		for k, v := range e.customerSecrets(who) {
			secrets[k] = v
		}
	}
	// The host keys and tokens.
	sec := e.dir + ".secrets"
	keys, err := os.ReadDir(sec)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		b, _ := os.ReadFile(filepath.Join(sec, k.Name()))
		secrets["host key "+k.Name()] = strings.TrimSpace(string(b))
	}
	if len(keys) < 7 {
		t.Fatalf("%d host keys in %s; want the TOTP, CSRF, idempotency and freeze keys, three tokens and the head key", len(keys), sec)
	}
	// A backup: a copy of the data directory, taken while the API's
	// store is closed (so that everything is on disk).
	e.stop()
	backup := t.TempDir()
	n := 0
	err = filepath.WalkDir(e.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(e.dir, p)
		if strings.HasSuffix(d.Name(), ".key") || strings.HasSuffix(d.Name(), ".token") {
			t.Errorf("host key file %s in the data directory", rel)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n += len(b)
		findAny(t, rel, b, secrets)
		if err := os.MkdirAll(filepath.Dir(filepath.Join(backup, rel)), 0o700); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(backup, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("data directory of %d bytes scanned for %d secrets and host keys: none found", n, len(secrets))
	// The journal's and the store's records, read through Pebble as well
	// (its tables compress: a byte scan alone could miss a secret).
	e.start()
	it, err := e.srv.idem.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	records := 0
	for ok := it.First(); ok; ok = it.Next() {
		records++
		findAny(t, "the API store's record "+string(it.Key()[:min(5, len(it.Key()))]), it.Value(), secrets)
	}
	it.Close()
	findAny(t, "the journal", e.journalBytes(), secrets)
	if records < 3 {
		t.Fatalf("%d records in the API store: the test looked at nothing", records)
	}
	// The backup alone (no secrets directory) opens no credential.
	e.stop()
	e2 := &env{t: t, dir: backup, clock: e.clock, logs: &bytes.Buffer{}, secrets: map[string]string{}, who: map[string]string{}}
	e2.start()
	var c people.Customer
	e2.core.Read(func(st *core.State) { c, _ = st.People.CustomerByEmail("idem@example.jp") })
	if _, err := e2.srv.credsOf(c); err == nil {
		t.Fatal("a copy of the data directory without its secrets directory opens a customer's credentials")
	}
}

// TestLegacySecretsRead: a data directory made before keeps its keys in
// DATA/secrets; they are still read there (the customers' sealed seeds
// open, the stream token is the same), with a warning.
func TestLegacySecretsRead(t *testing.T) {
	e := newEnv(t)
	e.signUp("old@example.jp")
	stream := e.srv.StreamToken()
	e.stop()
	if err := os.Rename(e.dir+".secrets", filepath.Join(e.dir, "secrets")); err != nil {
		t.Fatal(err)
	}
	e.start()
	if e.srv.StreamToken() != stream {
		t.Fatal("the stream token changed: the old key files were not read")
	}
	e.loginCustomer("old@example.jp")
	if !strings.Contains(e.logs.String(), "move it to the secrets directory") {
		t.Fatalf("no warning in the log:\n%s", e.logs)
	}
}
