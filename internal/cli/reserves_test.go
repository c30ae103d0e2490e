package cli

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/passkey"
	"kinko/internal/people"
	"kinko/internal/reserves/attest"
)

// porData makes a data directory with BTC and JPY, customers 1 to 4 with
// BTC (customer 4 with some held), customer 1 with JPY, and the operator
// aiko; it returns the balances owed in BTC by customer.
func porData(t *testing.T, dir string, extra ...core.Command) map[ledger.OwnerID]uint64 {
	t.Helper()
	c, err := core.Open(context.Background(), core.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eq := func(a ledger.AssetID) ledger.AccountKey {
		return ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: a, Kind: ledger.KindEquity}
	}
	av := func(o ledger.OwnerID, a ledger.AssetID) ledger.AccountKey {
		return ledger.AccountKey{Owner: o, Asset: a, Kind: ledger.KindAvailable}
	}
	held := ledger.AccountKey{Owner: 4, Asset: 2, Kind: ledger.KindHeld}
	owed := map[ledger.OwnerID]uint64{1: 150_000_000, 2: 2_500_000, 3: 0, 4: 70_000_000}
	cmds := []core.Command{
		core.CreateAssets{Assets: []ledger.Asset{{ID: 1, Code: "JPY", Class: ledger.ClassFiat}, {ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}},
		founder(),
		core.CreateCustomers{IDs: []ledger.OwnerID{1, 2, 3, 4}},
		core.CreateAccounts{Keys: []ledger.AccountKey{eq(1), eq(2), av(1, 2), av(2, 2), av(3, 2), av(4, 2), held, av(1, 1)}},
		core.CreateTransfers{Transfers: []ledger.Transfer{
			{ID: ledger.ID{Lo: 1}, Debit: eq(2), Credit: av(1, 2), Amount: ledger.AmountOf(150_000_000)},
			{ID: ledger.ID{Lo: 2}, Debit: eq(2), Credit: av(2, 2), Amount: ledger.AmountOf(2_500_000)},
			{ID: ledger.ID{Lo: 3}, Debit: eq(2), Credit: av(4, 2), Amount: ledger.AmountOf(50_000_000)},
			{ID: ledger.ID{Lo: 4}, Debit: eq(2), Credit: held, Amount: ledger.AmountOf(20_000_000)},
			{ID: ledger.ID{Lo: 5}, Debit: eq(1), Credit: av(1, 1), Amount: ledger.AmountOf(1_000_000)},
		}},
	}
	for _, cmd := range append(cmds, extra...) {
		o, err := c.Submit(context.Background(), time.Now(), cmd)
		if err == nil {
			err = o.EventErr()
		}
		if err != nil {
			t.Fatalf("%s: %v", cmd.Kind(), err)
		}
	}
	return owed
}

// TestReservesPublishProofCLI: publish journals a root per asset; each
// customer's proof, written by `reserves proof`, passes verify-proof
// against the published root with their account and balance; a proof
// edited by one digit, checked against another root or another balance,
// fails; a customer without BTC has no proof; publishing the same entry
// again changes nothing, and a later entry is a new root.
func TestReservesPublishProofCLI(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	owed := porData(t, dir)
	out, code := run(t, "reserves", "publish", "--data", dir, "--actor", "aiko")
	re := regexp.MustCompile(`BTC liabilities at entry (\d+): root ([0-9a-f]{64}), 4 customers, total 222500000 base units \(journal entry (\d+)\)`)
	m := re.FindStringSubmatch(out)
	if code != 0 || m == nil || !strings.Contains(out, "JPY liabilities at entry "+m[1]+": root ") || !strings.Contains(out, ", 1 customers, total 1000000 base units") {
		t.Fatalf("reserves publish = %d\n%s", code, out)
	}
	root := m[2]
	if fi, err := os.Stat(filepath.Join(dir, "secrets", "liabilities.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("salt key: %v", err)
	}
	for id, bal := range owed {
		f := filepath.Join(tmp, fmt.Sprintf("proof-%d.json", id))
		if out, code := run(t, "reserves", "proof", "--data", dir, "--customer", fmt.Sprint(id), "--asset", "btc", "--out", f); code != 0 {
			t.Fatalf("reserves proof %d = %d\n%s", id, code, out)
		}
		out, code := run(t, "reserves", "verify-proof", "--proof", f, "--root", root, "--account", fmt.Sprint(id), "--balance", fmt.Sprint(bal))
		if code != 0 || !strings.Contains(out, fmt.Sprintf("account %d, balance %d base units", id, bal)) || !strings.HasSuffix(out, "leaf: your account and balance\nproof OK\n") {
			t.Fatalf("verify-proof %d = %d\n%s", id, code, out)
		}
	}
	f := filepath.Join(tmp, "proof-4.json")
	b, _ := os.ReadFile(f)
	var cp attest.CustomerProof
	if err := json.Unmarshal(b, &cp); err != nil || cp.Proof.Root.Hash.String() != root || cp.PublishedSeq != mustAtoi(t, m[3]) {
		t.Fatalf("proof file: %v %+v", err, cp)
	}
	// One digit of the encoding changed: fails.
	enc := cp.Proof.Encoded
	i := len(enc) - 40 // inside the root hash
	flip := "0"
	if enc[i] == '0' {
		flip = "1"
	}
	cp.Proof.Encoded = enc[:i] + flip + enc[i+1:]
	edited := filepath.Join(tmp, "edited.json")
	eb, _ := json.Marshal(cp)
	os.WriteFile(edited, eb, 0o600)
	if out, code := run(t, "reserves", "verify-proof", "--proof", edited); code == 0 || !strings.Contains(out, "kinko: ") {
		t.Fatalf("edited proof = %d\n%s", code, out)
	}
	// The readable balance raised beside a true encoding: refused.
	cp.Proof.Encoded = enc
	cp.Proof.Leaf.Balance = ledger.AmountOf(71_000_000)
	eb, _ = json.Marshal(cp)
	os.WriteFile(edited, eb, 0o600)
	if out, code := run(t, "reserves", "verify-proof", "--proof", edited); code == 0 || !strings.Contains(out, "readable fields differ from the encoded proof") {
		t.Fatalf("edited balance = %d\n%s", code, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--root", strings.Repeat("ab", 32)}, "proof FAILS: sumtree: proof does not lead to the root: the proof's root " + root + " is not the published abab"},
		{[]string{"--account", "4", "--balance", "50000000"}, "proof FAILS: sumtree: proof is not of the customer's account and balance: the proof is of account 4 with 70000000, not account 4 with 50000000"},
		{[]string{"--account", "4"}, "--account and --balance go together"},
	} {
		out, code := run(t, append([]string{"reserves", "verify-proof", "--proof", f}, c.args...)...)
		if code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("verify-proof %v = %d\n%s\nwant %q", c.args, code, out, c.want)
		}
	}
	if out, code := run(t, "reserves", "proof", "--data", dir, "--customer", "2", "--asset", "JPY"); code == 0 || !strings.Contains(out, "the customer has no balance in this tree") {
		t.Fatalf("JPY proof of customer 2 = %d\n%s", code, out)
	}
	if out, code := run(t, "reserves", "verify-proof", "--proof", filepath.Join(tmp, "missing.json")); code == 0 || !strings.Contains(out, "no such file") {
		t.Fatalf("verify-proof of a missing file = %d\n%s", code, out)
	}
	// The same entry again: the same roots; a bad asset: nothing journaled.
	if out, code := run(t, "reserves", "publish", "--data", dir, "--actor", "aiko", "--at", m[1]); code != 0 || !strings.Contains(out, "root "+root) || !strings.Contains(out, "(journal entry "+m[3]+")") {
		t.Fatalf("publish again = %d\n%s", code, out)
	}
	if out, code := run(t, "reserves", "publish", "--data", dir, "--actor", "aiko", "--asset", "BTC", "--asset", "XYZ"); code == 0 || !strings.Contains(out, `asset not listed: "XYZ"`) {
		t.Fatalf("publish XYZ = %d\n%s", code, out)
	}
	if out, code := run(t, "reserves", "publish", "--data", dir, "--actor", "mallory"); code == 0 || !strings.Contains(out, "operator") {
		t.Fatalf("publish by an unknown actor = %d\n%s", code, out)
	}
	out, code = run(t, "reserves", "publish", "--data", dir, "--actor", "aiko", "--asset", "btc")
	if code != 0 || strings.Contains(out, "root "+root) || !strings.Contains(out, "4 customers, total 222500000") || strings.Contains(out, "JPY") {
		t.Fatalf("publish at the head = %d\n%s", code, out)
	}
}

func mustAtoi(t *testing.T, s string) uint64 {
	t.Helper()
	var v uint64
	if _, err := fmt.Sscan(s, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// founder founds the operators aiko and ren (admins) on an empty journal.
func founder() core.Command {
	return core.Bootstrap{RP: passkey.RP{ID: "localhost", Origins: []string{"http://localhost"}},
		Founders: []people.Founder{{Name: "aiko", Roles: []people.Role{people.RoleAdmin}, Code: sha256.Sum256([]byte("aiko's code"))},
			{Name: "ren", Roles: []people.Role{people.RoleAdmin}, Code: sha256.Sum256([]byte("ren's code"))}},
		Expires: time.Now().Add(24 * time.Hour).UnixNano()}
}
