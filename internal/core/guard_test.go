package core

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"kinko/internal/ledger"
	"kinko/internal/people"
	"kinko/internal/withdraw"
)

// ask journals customer c's withdrawal of amount to addr with their
// key and returns the outcome.
func (e *wdEnv) ask(c ledger.OwnerID, id, addr string, amount uint64) Outcome {
	e.t.Helper()
	in := withdraw.Intent{RequestID: id, Asset: "BTC", Address: addr, Amount: withdraw.AmountOf(amount), Expiry: e.now.Add(time.Hour).Unix()}
	sig, _ := in.Sign(e.keys[c])
	return e.do(RequestWithdrawal{Customer: c, Intent: in, PubKey: [32]byte(e.keys[c].Public().(ed25519.PublicKey)), Sig: sig})
}

func (e *wdEnv) status(id string) withdraw.Status {
	var st withdraw.Status
	e.c.Read(func(s *State) {
		w, _ := s.Withdraw.Get(id)
		st = w.Status
	})
	return st
}

// TestFreezeRevokeRemove: a customer's freeze rejects their waiting
// withdrawals (holds voided) and refuses new ones until an operator's
// signed lift or a fresh, stepped-up session of theirs; a revoked key or
// a removed address rejects the withdrawals it signed or pays and refuses
// new ones; a new password or second factor holds withdrawals for the
// cool-down. Every one is a notice.
func TestFreezeRevokeRemove(t *testing.T) {
	e := newWdEnv(t)
	if o := e.ask(1, "w1", "bcrt1qexample", 30_000_000); o.Err != nil || e.status("1:w1") != withdraw.StatusQueued {
		t.Fatalf("w1 = %v %s", o.Err, e.status("1:w1"))
	}
	if got := e.available(1); got != 70_000_000 {
		t.Fatalf("available with w1 held = %d", got)
	}
	e.must(FreezeWithdrawals{Customer: 1, By: "customer", Reason: "not me"})
	if st := e.status("1:w1"); st != withdraw.StatusRejected {
		t.Fatalf("w1 after the freeze = %s; want rejected", st)
	}
	if got := e.available(1); got != 1_0000_0000 {
		t.Fatalf("available after the freeze = %d; want the hold voided", got)
	}
	if o := e.ask(1, "w2", "bcrt1qexample", 10_000_000); !errors.Is(o.Err, people.ErrFrozen) {
		t.Fatalf("a withdrawal while frozen = %v; want ErrFrozen", o.Err)
	}
	// A notice's link works once, and only a notice of that customer's.
	var n people.Notice
	e.c.Read(func(s *State) { n = s.People.NoticesOf(2, 1)[0] })
	if o := e.do(FreezeWithdrawals{Customer: 1, By: "notice link", Notice: n.Seq, Reason: "link"}); !errors.Is(o.Err, people.ErrNoticeUnknown) {
		t.Fatalf("customer 2's notice freezing customer 1 = %v", o.Err)
	}
	e.must(FreezeWithdrawals{Customer: 2, By: "notice link", Notice: n.Seq, Reason: "link"})
	if o := e.do(FreezeWithdrawals{Customer: 2, By: "notice link", Notice: n.Seq, Reason: "link"}); !errors.Is(o.Err, people.ErrNoticeUnknown) {
		t.Fatalf("a freeze link used twice = %v", o.Err)
	}
	// Lifting: not by the customer without a fresh, stepped-up session;
	// not by an operator unsigned; by a signed operator, yes.
	sess := people.Session{TokenHash: [32]byte{1}, Kind: people.SessionCustomer, Customer: 1, Expires: e.now.Add(time.Hour).UnixNano()}
	e.must(Login{Session: sess, Step: 1})
	if o := e.do(UnfreezeWithdrawals{Customer: 1, By: "customer", Session: sess.TokenHash, Reason: "me"}); !errors.Is(o.Err, people.ErrNotFresh) {
		t.Fatalf("lift without a step-up = %v; want ErrNotFresh", o.Err)
	}
	e.must(StepUp{TokenHash: sess.TokenHash, Step: 2})
	e.now = e.now.Add(11 * time.Minute)
	if o := e.do(UnfreezeWithdrawals{Customer: 1, By: "customer", Session: sess.TokenHash, Reason: "me"}); !errors.Is(o.Err, people.ErrNotFresh) {
		t.Fatalf("lift from a session 11 minutes old = %v; want ErrNotFresh", o.Err)
	}
	o, err := e.c.Submit(t.Context(), e.now, UnfreezeWithdrawals{Customer: 1, By: "kenji", Reason: "customer called"})
	if err != nil || o.Err == nil {
		t.Fatalf("an unsigned operator lift = %v %v; want refused", err, o.Err)
	}
	e.must(UnfreezeWithdrawals{Customer: 1, By: "kenji", Reason: "customer called, identity checked"})
	if o := e.ask(1, "w3", "bcrt1qexample", 10_000_000); o.Err != nil {
		t.Fatalf("after the lift = %v", o.Err)
	}
	// The customer's own session lifts customer 2's freeze when fresh and
	// stepped up.
	s2 := people.Session{TokenHash: [32]byte{2}, Kind: people.SessionCustomer, Customer: 2, Expires: e.now.Add(time.Hour).UnixNano()}
	e.must(Login{Session: s2, Step: 10})
	e.must(StepUp{TokenHash: s2.TokenHash, Step: 11})
	e.must(UnfreezeWithdrawals{Customer: 2, By: "customer", Session: s2.TokenHash, Reason: "me"})

	// A revoked key: what it signed and waits is rejected; new ones
	// refused.
	if o := e.ask(2, "k1", "bcrt1qexample", 10_000_000); o.Err != nil {
		t.Fatal(o.Err)
	}
	e.must(RevokeIntentKey{Customer: 2, PubKey: [32]byte(e.keys[2].Public().(ed25519.PublicKey))})
	if st := e.status("2:k1"); st != withdraw.StatusRejected {
		t.Fatalf("k1 after its key's revocation = %s", st)
	}
	if o := e.ask(2, "k2", "bcrt1qexample", 10_000_000); !errors.Is(o.Err, withdraw.ErrKeyUnknown) {
		t.Fatalf("signed with a revoked key = %v; want ErrKeyUnknown", o.Err)
	}
	// Registered again, the key cools down anew.
	e.must(RegisterIntentKey{Customer: 2, PubKey: [32]byte(e.keys[2].Public().(ed25519.PublicKey))})
	if o := e.ask(2, "k3", "bcrt1qexample", 10_000_000); !errors.Is(o.Err, withdraw.ErrKeyCooling) {
		t.Fatalf("a key registered again = %v; want ErrKeyCooling", o.Err)
	}
	// A removed address likewise.
	if o := e.ask(3, "a1", "bcrt1qexample", 10_000_000); o.Err != nil {
		t.Fatal(o.Err)
	}
	e.must(RemoveAddress{Customer: 3, Asset: "BTC", Address: "bcrt1qexample"})
	if st := e.status("3:a1"); st != withdraw.StatusRejected {
		t.Fatalf("a1 after its address was removed = %s", st)
	}
	if o := e.ask(3, "a2", "bcrt1qexample", 10_000_000); !errors.Is(o.Err, withdraw.ErrAddressUnknown) {
		t.Fatalf("to a removed address = %v; want ErrAddressUnknown", o.Err)
	}
	// A new password holds withdrawals for the cool-down.
	e.must(ChangeCredentials{Customer: 1, Change: people.ChangePassword, Commit: "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", Keep: sess.TokenHash})
	if o := e.ask(1, "c1", "bcrt1qexample", 10_000_000); !errors.Is(o.Err, ErrCredsCooling) {
		t.Fatalf("right after a new password = %v; want ErrCredsCooling", o.Err)
	}
	var ended bool
	e.c.Read(func(s *State) { ss, _ := s.People.Session([32]byte{1}); ended = !ss.Valid(e.now.UnixNano()) })
	if ended {
		t.Fatal("the session that changed the password ended")
	}
	e.now = e.now.Add(24*time.Hour + time.Second)
	if o := e.ask(1, "c2", "bcrt1qexample", 10_000_000); o.Err != nil {
		t.Fatalf("after the cool-down = %v", o.Err)
	}
	// Every change was told.
	var kinds []people.NoticeKind
	e.c.Read(func(s *State) {
		for _, n := range s.People.NoticesOf(1, 100) {
			kinds = append(kinds, n.Kind)
		}
	})
	for _, k := range []people.NoticeKind{people.NoticeFrozen, people.NoticeUnfrozen, people.NoticePassword, people.NoticeIntentKey, people.NoticeAddress, people.NoticeNewDevice} {
		found := false
		for _, g := range kinds {
			found = found || g == k
		}
		if !found {
			t.Errorf("no %s notice for customer 1 in %v", k, kinds)
		}
	}
}

// TestStepUpFailuresLock: MaxFailed wrong step-up codes in a row end the
// session and lock every session's step-ups for LockPeriod, growing.
func TestStepUpFailuresLock(t *testing.T) {
	e := newWdEnv(t)
	login := func(h byte) [32]byte {
		s := people.Session{TokenHash: [32]byte{h}, Kind: people.SessionCustomer, Customer: 1, Expires: e.now.Add(48 * time.Hour).UnixNano()}
		e.must(Login{Session: s, Step: uint64(h)})
		return s.TokenHash
	}
	a := login(1)
	for i := 0; i < people.MaxFailed; i++ {
		e.must(StepUpFailed{TokenHash: a})
	}
	if o := e.do(StepUpFailed{TokenHash: a}); !errors.Is(o.Err, people.ErrSessionUnknown) {
		t.Fatalf("after %d failures the session = %v; want ended", people.MaxFailed, o.Err)
	}
	b := login(2)
	if o := e.do(StepUp{TokenHash: b, Step: 100}); !errors.Is(o.Err, people.ErrLocked) {
		t.Fatalf("a step-up in another session while locked = %v; want ErrLocked", o.Err)
	}
	e.now = e.now.Add(time.Duration(people.LockFor))
	for i := 0; i < people.MaxFailed; i++ {
		e.must(StepUpFailed{TokenHash: b})
	}
	c := login(3)
	e.now = e.now.Add(time.Duration(people.LockFor))
	if o := e.do(StepUp{TokenHash: c, Step: 101}); !errors.Is(o.Err, people.ErrLocked) {
		t.Fatalf("the second lock-out ended after LockFor (%v); it lasts twice that", o.Err)
	}
	e.now = e.now.Add(time.Duration(people.LockFor))
	e.must(StepUp{TokenHash: c, Step: 102})
	if got := people.LockPeriod(10); got != people.LockFor<<people.MaxLockShift {
		t.Fatalf("LockPeriod(10) = %d", got)
	}
}
