package cosigner

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/people"
)

// TestCosignerHonoursFreezeAndRevocations: the co-signer replays the
// customers' own stops. A customer's freeze (from a notice's link) makes
// it refuse their queued withdrawal; a revoked intent key or a removed
// address makes it refuse what the key signed or what pays the address,
// and, registered again, they cool down anew by its own clock, across a
// restart (its first-seen records are forgotten with the revocation); a
// new password holds the customer's withdrawals for the cool-down by its
// clock.
func TestCosignerHonoursFreezeAndRevocations(t *testing.T) {
	w := newWorld(t)
	at := t0.Add(25 * time.Hour)
	w.withdraw(1, "f1", 10_000_000, at)
	w.withdraw(2, "k1", 10_000_000, at)
	w.withdraw(3, "a1", 10_000_000, at)
	if err := w.feed(); err != nil {
		t.Fatal(err)
	}
	w.clock = at
	var n people.Notice
	w.c.Read(func(st *core.State) { n = st.People.NoticesOf(1, 1)[0] })
	w.submit(at, core.FreezeWithdrawals{Customer: 1, By: "notice link", Notice: n.Seq, Reason: "the freeze link of a notice"})
	w.submit(at, core.RevokeIntentKey{Customer: 2, PubKey: [32]byte(w.cust[2].Public().(ed25519.PublicKey))})
	w.submit(at, core.RemoveAddress{Customer: 3, Asset: "BTC", Address: payee(3)})
	if err := w.feed(); err != nil {
		t.Fatal(err)
	}
	// Its own records refuse, before what the core's replay says (the
	// core rejected the three withdrawals as well).
	for _, c := range []struct {
		cust int64
		what string
		want error
	}{{1, "frozen", ErrFrozen}, {2, "revoked key", ErrCooling}, {3, "removed address", ErrCooling}} {
		_, err := w.cs.Sign(w.psbtPaying(pay(ledger.OwnerID(c.cust), 10_000_000)))
		if !errors.Is(err, c.want) {
			t.Fatalf("%s: %v; want %v", c.what, err, c.want)
		}
		t.Logf("%s: %v", c.what, err)
	}
	// The key and the address registered again: the co-signer's clock
	// starts their cool-down anew, even after a restart replays the
	// registration, the revocation and the registration again.
	w.submit(at, core.RegisterIntentKey{Customer: 2, PubKey: [32]byte(w.cust[2].Public().(ed25519.PublicKey))})
	w.submit(at, core.WhitelistAddress{Customer: 3, Asset: "BTC", Address: payee(3)})
	later := at.Add(25 * time.Hour)
	w.withdraw(2, "k2", 11_000_000, later)
	w.withdraw(3, "a2", 11_000_000, later)
	w.feed()
	w.restart()
	w.clock = at.Add(time.Hour)
	for _, c := range []int64{2, 3} {
		if _, err := w.cs.Sign(w.psbtPaying(pay(ledger.OwnerID(c), 11_000_000))); !errors.Is(err, ErrCooling) {
			t.Fatalf("customer %d an hour after registering again = %v; want ErrCooling", c, err)
		}
	}
	w.clock = at.Add(24*time.Hour + time.Minute)
	for _, c := range []int64{2, 3} {
		if _, err := w.cs.Sign(w.psbtPaying(pay(ledger.OwnerID(c), 11_000_000))); err != nil {
			t.Fatalf("customer %d after the new cool-down = %v", c, err)
		}
	}
	// The freeze holds over the co-signer's restart.
	if _, err := w.cs.Sign(w.psbtPaying(pay(1, 10_000_000))); !errors.Is(err, ErrFrozen) {
		t.Fatalf("the frozen customer after the restart = %v; want ErrFrozen", err)
	}

	// A new password: the core holds withdrawals for its cool-down; so
	// does the co-signer, by its own clock from when it saw the change.
	s := people.Session{TokenHash: [32]byte{7}, Kind: people.SessionCustomer, Customer: 2, Expires: later.Add(time.Hour).UnixNano()}
	w.submit(later, core.Login{Session: s, Step: 1})
	commit := strings.Repeat("ab", 32)
	if o := w.submit(later, core.ChangeCredentials{Customer: 2, Change: people.ChangePassword, Commit: commit, Keep: s.TokenHash}); o.Err != nil {
		t.Fatal(o.Err)
	}
	// The core's cool-down counts from the entry; the journal is made to
	// say it was long ago, as an attacker holding the core would.
	w.withdraw(2, "k3", 12_000_000, later.Add(25*time.Hour))
	w.clock = later.Add(time.Minute)
	w.feed()
	if _, err := w.cs.Sign(w.psbtPaying(pay(2, 12_000_000))); !errors.Is(err, ErrCooling) {
		t.Fatalf("right after a new password by the co-signer's clock = %v; want ErrCooling", err)
	}
	w.restart()
	w.clock = later.Add(24*time.Hour + 2*time.Minute)
	if _, err := w.cs.Sign(w.psbtPaying(pay(2, 12_000_000))); err != nil {
		t.Fatalf("after the cool-down = %v", err)
	}
}
