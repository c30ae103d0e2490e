package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/operators"
	"kinko/internal/passkey"
	"kinko/internal/people"
)

// journalHead returns the number of entries of dir's journal.
func journalHead(t *testing.T, dir string) uint64 {
	t.Helper()
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	h, _, _ := j.Head()
	return h
}

var codeLine = regexp.MustCompile(`(?m)^\s+(\w+)\s+code ([0-9a-f]{32})$`)

// initData runs kinko init on a fresh directory for aiko, ren and yui
// with JPY and BTC, and returns it with each founder's code.
func initData(t *testing.T) (string, map[string]string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "core")
	out, code := run(t, "init", "--data", dir, "--rp-id", "localhost", "--origin", "https://localhost:8443",
		"--name", "aiko", "--name", "ren", "--name", "yui", "--asset", "1:JPY:0:fiat", "--asset", "2:BTC:8:chain")
	if code != 0 {
		t.Fatalf("kinko init = %d:\n%s", code, out)
	}
	codes := map[string]string{}
	for _, m := range codeLine.FindAllStringSubmatch(out, -1) {
		codes[m[1]] = m[2]
	}
	if len(codes) != 3 {
		t.Fatalf("kinko init printed codes %v:\n%s", codes, out)
	}
	return dir, codes
}

// TestInitFoundsOnce: kinko init founds an empty data directory in three
// entries (founders, assets, house accounts) with the core's secrets in
// the secrets directory beside it (none inside the data directory, which
// a backup copies), and refuses it ever after, changing nothing; a
// refused init writes nothing at all.
func TestInitFoundsOnce(t *testing.T) {
	dir, _ := initData(t)
	if h := journalHead(t, dir); h != 3 {
		t.Fatalf("journal after init = %d entries; want 3", h)
	}
	for _, f := range []string{"stream.token", "signer.token", "watcher.token", "totp.key", core.HeadKeyName} {
		if _, err := os.Stat(filepath.Join(dir+".secrets", f)); err != nil {
			t.Errorf("secret %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "secrets")); err == nil {
		t.Errorf("kinko init wrote secrets inside the data directory")
	}
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := core.StateAt(context.Background(), dir, j, 3)
	j.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Ledger.Assets()) != 2 || !st.People.Bootstrapped() || len(st.People.Operators()) != 3 {
		t.Fatalf("after init: %d assets, bootstrapped %v, %d operators", len(st.Ledger.Assets()), st.People.Bootstrapped(), len(st.People.Operators()))
	}
	if out, code := run(t, "init", "--data", dir, "--origin", "https://x", "--name", "eve", "--name", "mallory", "--asset", "3:ETH:18:chain"); code == 0 || !strings.Contains(out, "changed nothing") {
		t.Fatalf("a second init = %d:\n%s", code, out)
	}
	if h := journalHead(t, dir); h != 3 {
		t.Fatalf("journal after a refused init = %d entries", h)
	}
	for _, args := range [][]string{
		{"--name", "aiko", "--asset", "2:BTC:8:chain"},                                               // one founder
		{"--name", "aiko", "--name", "ren", "--asset", "2:BTC:8:coin"},                               // no such class
		{"--name", "aiko", "--name", "ren", "--asset", "2:btc:8:chain"},                              // the ledger's code rule
		{"--name", "aiko", "--name", "ren", "--asset", "2:BTC:8:chain", "--asset", "2:ETH:18:chain"}, // one id twice
		{"--name", "aiko", "--name", "ren"},                                                          // no asset
	} {
		fresh := filepath.Join(t.TempDir(), "core")
		if out, code := run(t, append([]string{"init", "--data", fresh, "--origin", "https://x"}, args...)...); code == 0 {
			t.Errorf("init %v = 0:\n%s", args, out)
		}
		if _, err := os.Stat(filepath.Join(fresh, "journal")); err == nil {
			t.Errorf("init %v refused but wrote a journal", args)
		}
	}
}

// TestWalletRegisterTwoPerson registers a wallet from its xpubs through
// the core's API as operators do: an admin files the request, showing the
// descriptor's fingerprints and addresses; the requester cannot approve
// it; a second admin's kinko requests approve derives them again and
// approves. A request that shows addresses other than its descriptor's is
// refused by the API, and by the approver's CLI when it is in the journal
// anyway.
func TestWalletRegisterTwoPerson(t *testing.T) {
	dir, codes := initData(t)
	base, stop := serveCore(t, dir)
	keys := t.TempDir()
	key := func(n string) string { return filepath.Join(keys, n+".key") }
	for _, n := range []string{"aiko", "ren", "yui"} {
		run(t, "operators", "key", "--out", key(n))
		if out, code := run(t, "operators", "enrol", "--core", base, "--operator", n, "--key", key(n), "--code", codes[n]); code != 0 || !strings.Contains(out, "active") {
			t.Fatalf("enrol %s = %d %s", n, code, out)
		}
	}
	as := func(n string, args ...string) (string, int) {
		return run(t, append(args, "--core", base, "--operator", n, "--key", key(n))...)
	}
	d := madeKeys(t, 1, 2, 3)
	var xpubs []string
	for _, k := range d.Keys {
		xpubs = append(xpubs, "--xpub", k.String())
	}
	out, code := as("aiko", append([]string{"wallet", "register", "--kind", "cold-customer", "--name", "cold", "--reason", "the cold wallet"}, xpubs...)...)
	m := regexp.MustCompile(`requested \((register-wallet-[0-9a-f]+)\)`).FindStringSubmatch(out)
	first, _, _ := d.Address(0, 0)
	if code != 0 || m == nil || !strings.Contains(out, first.EncodeAddress()) || !strings.Contains(out, d.String()) {
		t.Fatalf("wallet register = %d:\n%s", code, out)
	}
	id := m[1]
	if out, code := as("aiko", "requests", "approve", "--id", id, "--reason", "mine"); code == 0 || !strings.Contains(out, "approve") {
		t.Fatalf("the requester's own approval = %d:\n%s", code, out)
	}
	out, code = as("ren", "requests", "approve", "--id", id, "--reason", "fingerprints and addresses read on the three offline machines")
	if code != 0 || !strings.Contains(out, "derived on this machine") || !strings.Contains(out, first.EncodeAddress()) {
		t.Fatalf("ren approves = %d:\n%s", code, out)
	}
	out, code = as("yui", "wallet", "list")
	if code != 0 || !strings.Contains(out, "wallet 1 BTC cold-customer") || !strings.Contains(out, d.String()) {
		t.Fatalf("wallet list = %d:\n%s", code, out)
	}
	if out, code := as("aiko", "wallet", "register", "--kind", "cold-customer", "--descriptor", d.String(), "--reason", "again"); code == 0 || !strings.Contains(out, "nothing filed") {
		t.Fatalf("a registered descriptor again = %d:\n%s", code, out)
	}

	// A request whose shown addresses are not its descriptor's: the API
	// refuses to file it.
	hot := madeKeys(t, 4, 5, 6)
	other, _, _ := madeKeys(t, 7, 8, 9).Address(0, 0)
	bad := core.RegisterWalletPayload{Wallet: custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: 2, Descriptor: hot.String(), Owner: custody.WalletOwner(2)},
		Addresses: []string{other.EncodeAddress()}, Fingerprints: []string{"00000000", "00000000", "00000000"}}
	payload, _ := json.Marshal(bad)
	if out, code := as("aiko", "requests", "open", "--kind", "register_wallet", "--role", "admin", "--payload", string(payload), "--reason", "tampered"); code == 0 || !strings.Contains(out, "shown address") {
		t.Fatalf("a request showing another wallet's address = %d:\n%s", code, out)
	}
	// Written into the journal on the core's host, it is there; the
	// approver's CLI derives the truth and does not approve.
	stop()
	c, err := core.Open(context.Background(), core.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	k, err := passkey.LoadSoftKey(key("aiko"))
	if err != nil {
		t.Fatal(err)
	}
	team := operators.NewWithKeys(passkey.RP{ID: "localhost", Origins: []string{"https://localhost:8443"}}, &operators.Operator{Name: "aiko", Roles: []people.Role{people.RoleAdmin}, Key: k})
	forged := team.Open("forged-wallet", core.KindRegisterWalletRequest, bad, "aiko", people.RoleAdmin, "tampered", time.Now().Add(time.Hour))
	if o, err := c.Submit(context.Background(), time.Now(), forged); err != nil || o.Err != nil {
		t.Fatal(err, o.Err)
	}
	c.Close()
	base, _ = serveCore(t, dir)
	if out, code := run(t, "requests", "approve", "--id", "forged-wallet", "--reason", "x", "--core", base, "--operator", "ren", "--key", key("ren")); code == 0 || !strings.Contains(out, "not approved") {
		t.Fatalf("approving a request that shows another wallet = %d:\n%s", code, out)
	}
}
