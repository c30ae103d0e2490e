package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/people"
)

// TestOperatorsFreezeCustomer: an operator freezes a customer's
// withdrawals and lifts the freeze with kinko customers, each signed with
// their key; the freeze is in the journal, and an auditor may do neither.
func TestOperatorsFreezeCustomer(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	c, err := core.Open(ctx, core.Config{Dir: dir, CheckInvariants: true})
	if err != nil {
		t.Fatal(err)
	}
	keyOf := foundCrew(t, c, t.TempDir())
	cu := people.Customer{ID: 7, Email: "c7@example.jp", Name: "C", Creds: people.Credentials{Commit: strings.Repeat("ab", 32)}}
	if o, err := c.Submit(ctx, time.Now(), core.SignUp{Customer: cu}); err != nil || o.Err != nil {
		t.Fatal(err, o.Err)
	}
	c.Close()
	base, stop := serveCore(t, dir)
	args := func(verb, who string) []string {
		return []string{"customers", verb, "--core", base, "--customer", "7", "--operator", who, "--key", keyOf(who), "--reason", "the customer called"}
	}
	if out, code := run(t, args("unfreeze", "kenji")...); code == 0 || !strings.Contains(out, "not frozen") {
		t.Fatalf("unfreeze of a customer not frozen = %d %q", code, out)
	}
	if out, code := run(t, args("freeze", "sora")...); code == 0 {
		t.Fatalf("freeze by a ciso = %d %q", code, out)
	}
	if out, code := run(t, args("freeze", "kenji")...); code != 0 || !strings.Contains(out, "customer 7: withdrawals frozen by kenji") {
		t.Fatalf("freeze = %d %q", code, out)
	}
	stop()
	st, err := loadState(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if f := st.People.Frozen(ledger.OwnerID(7)); f == nil || f.By != "kenji" {
		t.Fatalf("freeze in the journal = %+v", f)
	}
	base, _ = serveCore(t, dir)
	if out, code := run(t, args("unfreeze", "kenji")...); code != 0 || !strings.Contains(out, "unfrozen") {
		t.Fatalf("unfreeze = %d %q", code, out)
	}
}
