package core

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"kinko/internal/controls"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/people"
	"kinko/internal/withdraw"
)

type wdEnv struct {
	t    *testing.T
	c    *Core
	now  time.Time
	keys map[ledger.OwnerID]ed25519.PrivateKey
}

func (e *wdEnv) do(cmd Command) Outcome {
	e.t.Helper()
	o, err := e.c.Submit(context.Background(), e.now, signed(cmd))
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

func (e *wdEnv) must(cmd Command) any {
	e.t.Helper()
	o := e.do(cmd)
	if err := o.EventErr(); err != nil {
		e.t.Fatalf("%s: %v", cmd.Kind(), err)
	}
	return o.Value
}

const hotOwner = ledger.OwnerHouseMin + 101

// newWdEnv: BTC with a hot wallet holding 10 BTC, two operators, customers
// 1-3 verified with 1 BTC each, intent keys and whitelisted addresses
// registered at the start, and rules with limits.
func newWdEnv(t *testing.T) *wdEnv {
	e := &wdEnv{t: t, c: openCore(t, t.TempDir(), 0), now: t0, keys: map[ledger.OwnerID]ed25519.PrivateKey{}}
	t.Cleanup(func() { e.c.Close() })
	creds := people.Credentials{PasswordHash: strings.Repeat("h", 30), TOTPSealed: strings.Repeat("s", 30)}
	e.must(CreateAssets{Assets: []ledger.Asset{{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}})
	for _, c := range founding(e.now) {
		e.must(c)
	}
	for _, cmd := range walletRegistered(custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: 2, Descriptor: "hot", Owner: hotOwner}, e.now) {
		e.must(cmd)
	}
	hot := ledger.AccountKey{Owner: hotOwner, Asset: 2, Kind: ledger.KindWallet}
	for i := ledger.OwnerID(1); i <= 3; i++ {
		e.must(SignUp{Customer: people.Customer{ID: i, Email: string(rune('a'+i)) + "@example.jp", Name: "c", Creds: creds}})
		e.must(SetKYC{Customer: i, KYC: people.KYCVerified, Actor: "aiko", Reason: "ok"})
		e.must(CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Lo: uint64(i)}, Debit: hot, Credit: ledger.AccountKey{Owner: i, Asset: 2, Kind: ledger.KindAvailable}, Amount: ledger.AmountOf(1_0000_0000)}}})
		pub, priv, _ := ed25519.GenerateKey(nil)
		e.keys[i] = priv
		e.must(RegisterIntentKey{Customer: i, PubKey: [32]byte(pub)})
		e.must(WhitelistAddress{Customer: i, Asset: "BTC", Address: "bcrt1qexample"})
		e.must(WhitelistAddress{Customer: i, Asset: "BTC", Address: "bcrt1qthief"})
	}
	e.setRules(withdraw.Rules{CoolDownSeconds: 24 * 3600,
		PerWithdrawalMax: map[string]withdraw.Amount{"BTC": withdraw.AmountOf(50_000_000)}, PerCustomerDay: map[string]withdraw.Amount{"BTC": withdraw.AmountOf(60_000_000)},
		PerAssetHour: map[string]withdraw.Amount{"BTC": withdraw.AmountOf(100_000_000)}, ApprovalAbove: map[string]withdraw.Amount{"BTC": withdraw.AmountOf(40_000_000)},
		DenyList: []string{"bcrt1qthief"}, DustLimit: map[string]withdraw.Amount{"BTC": withdraw.AmountOf(546)}})
	e.now = t0.Add(25 * time.Hour)
	return e
}

// setRules journals rules through a set_withdrawal_rules request asked by
// aiko and approved by ren.
func (e *wdEnv) setRules(r withdraw.Rules) {
	e.t.Helper()
	for _, c := range twoPerson(KindSetWithdrawalRulesRequest, SetWithdrawalRulesPayload{Rules: r}, e.now) {
		e.must(c)
	}
}

// request signs and submits an intent.
func (e *wdEnv) request(cust ledger.OwnerID, id string, amount uint64, mutate func(*RequestWithdrawal)) Outcome {
	e.t.Helper()
	in := withdraw.Intent{RequestID: id, Asset: "BTC", Address: "bcrt1qexample", Amount: withdraw.AmountOf(amount), Expiry: e.now.Add(time.Hour).Unix()}
	sig, err := in.Sign(e.keys[cust])
	if err != nil {
		e.t.Fatal(err)
	}
	r := RequestWithdrawal{Customer: cust, Intent: in, PubKey: [32]byte(e.keys[cust].Public().(ed25519.PublicKey)), Sig: sig}
	if mutate != nil {
		mutate(&r)
	}
	return e.do(r)
}

func (e *wdEnv) available(cust ledger.OwnerID) uint64 {
	var v uint64
	e.c.Read(func(s *State) {
		a, _ := s.Ledger.Account(ledger.AccountKey{Owner: cust, Asset: 2, Kind: ledger.KindAvailable})
		v, _ = a.Available().Uint64()
	})
	return v
}

func TestWithdrawalChecks(t *testing.T) {
	e := newWdEnv(t)
	other, _, _ := ed25519.GenerateKey(nil)
	cases := []struct {
		name   string
		mutate func(*RequestWithdrawal)
		want   error
	}{
		{"changed amount", func(r *RequestWithdrawal) { r.Intent.Amount.Lo++ }, withdraw.ErrBadSignature},
		{"changed address", func(r *RequestWithdrawal) { r.Intent.Address = "bcrt1qother" }, withdraw.ErrBadSignature},
		{"no signature", func(r *RequestWithdrawal) { r.Sig = nil }, withdraw.ErrBadSignature},
		{"unregistered key", func(r *RequestWithdrawal) { r.PubKey = [32]byte(other) }, withdraw.ErrKeyUnknown},
		{"expired", func(r *RequestWithdrawal) {
			r.Intent.Expiry = e.now.Add(-time.Minute).Unix()
			r.Sig, _ = r.Intent.Sign(e.keys[1])
		}, withdraw.ErrExpired},
		{"unknown asset", func(r *RequestWithdrawal) {
			r.Intent.Asset = "XYZ"
			r.Sig, _ = r.Intent.Sign(e.keys[1])
		}, custody.ErrAssetUnknown},
	}
	for _, c := range cases {
		if o := e.request(1, "r-"+c.name, 1000, c.mutate); !errors.Is(o.Err, c.want) {
			t.Errorf("%s: %v; want %v", c.name, o.Err, c.want)
		}
	}
	if got := e.available(1); got != 1_0000_0000 {
		t.Fatalf("refused requests held %d", 1_0000_0000-got)
	}
	// A key or address registered a minute ago is still cooling down.
	pub, priv, _ := ed25519.GenerateKey(nil)
	e.must(RegisterIntentKey{Customer: 2, PubKey: [32]byte(pub)})
	e.keys[2] = priv
	if o := e.request(2, "fresh-key", 1000, nil); !errors.Is(o.Err, withdraw.ErrKeyCooling) {
		t.Fatalf("fresh key = %v", o.Err)
	}
	e.must(WhitelistAddress{Customer: 3, Asset: "BTC", Address: "bcrt1qnew"})
	if o := e.request(3, "fresh-addr", 1000, func(r *RequestWithdrawal) {
		r.Intent.Address = "bcrt1qnew"
		r.Sig, _ = r.Intent.Sign(e.keys[3])
	}); !errors.Is(o.Err, withdraw.ErrAddressCooling) {
		t.Fatalf("fresh address = %v", o.Err)
	}
	if o := e.request(3, "not-listed", 1000, func(r *RequestWithdrawal) {
		r.Intent.Address = "bcrt1qelsewhere"
		r.Sig, _ = r.Intent.Sign(e.keys[3])
	}); !errors.Is(o.Err, withdraw.ErrAddressUnknown) {
		t.Fatalf("address not whitelisted = %v", o.Err)
	}
	// A good one is held and queued; the same request id again is refused.
	o := e.request(1, "ok-1", 30_000_000, nil)
	rec, _ := o.Value.(withdraw.Withdrawal)
	if o.Err != nil || rec.Status != withdraw.StatusQueued || e.available(1) != 70_000_000 {
		t.Fatalf("good request = %v %+v, available %d", o.Err, rec, e.available(1))
	}
	if o := e.request(1, "ok-1", 30_000_000, nil); !errors.Is(o.Err, withdraw.ErrDuplicateRequest) {
		t.Fatalf("replayed request = %v", o.Err)
	}
	// Unverified customers cannot withdraw.
	e.must(SetKYC{Customer: 2, KYC: people.KYCRejected, Actor: "aiko", Reason: "documents forged"})
	if o := e.request(2, "unverified", 1000, nil); !errors.Is(o.Err, ErrNotVerified) {
		t.Fatalf("unverified = %v", o.Err)
	}
}

func TestWithdrawalPolicy(t *testing.T) {
	e := newWdEnv(t)
	status := func(o Outcome) (withdraw.Status, string) {
		t.Helper()
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		r := o.Value.(withdraw.Withdrawal)
		return r.Status, r.Reason
	}
	if st, why := status(e.request(1, "big", 60_000_000, nil)); st != withdraw.StatusRejected || !strings.Contains(why, "per-withdrawal") {
		t.Fatalf("over the maximum = %s %s", st, why)
	}
	if e.available(1) != 1_0000_0000 {
		t.Fatal("a rejected withdrawal holds funds")
	}
	if st, _ := status(e.request(1, "a", 30_000_000, nil)); st != withdraw.StatusQueued {
		t.Fatalf("first = %s", st)
	}
	if st, why := status(e.request(1, "b", 35_000_000, nil)); st != withdraw.StatusRejected || !strings.Contains(why, "24-hour") {
		t.Fatalf("over the daily limit = %s %s", st, why)
	}
	// Across customers, the hourly limit of the asset: 30 + 35 + 30 > 100... fits;
	// the next one does not.
	if st, _ := status(e.request(2, "c", 35_000_000, nil)); st != withdraw.StatusQueued {
		t.Fatalf("second customer = %s", st)
	}
	if st, why := status(e.request(3, "d", 39_000_000, nil)); st != withdraw.StatusRejected || !strings.Contains(why, "across all customers") {
		t.Fatalf("over the hourly asset limit = %s %s", st, why)
	}
	// An hour later: above the approval threshold, two operators decide.
	e.now = e.now.Add(2 * time.Hour)
	if st, _ := status(e.request(3, "e", 45_000_000, nil)); st != withdraw.StatusAwaitingApproval {
		t.Fatalf("over the approval threshold = %s", st)
	}
	payload, _ := json.Marshal(ApproveWithdrawalPayload{Withdrawal: "3:e"})
	e.must(OpenRequest{Request: people.Request{ID: "w-3e", Kind: KindApproveWithdrawal, Payload: payload, Requester: "aiko", Reason: "customer called", RequiredRole: people.RoleApprover, Expires: e.now.Add(time.Hour).UnixNano()}})
	if o := e.do(DecideRequest{ID: "w-3e", Decider: "aiko", Reason: "mine", Approve: true}); !errors.Is(o.Err, people.ErrSelfApproval) {
		t.Fatalf("self approval = %v", o.Err)
	}
	e.must(DecideRequest{ID: "w-3e", Decider: "kenji", Reason: "identity confirmed", Approve: true})
	e.c.Read(func(s *State) {
		if w, _ := s.Withdraw.Get("3:e"); w.Status != withdraw.StatusQueued {
			t.Fatalf("after approval: %s", w.Status)
		}
	})
	// Deny list and halts.
	if st, why := status(e.request(2, "thief", 1000, func(r *RequestWithdrawal) {
		r.Intent.Address = "bcrt1qthief"
		r.Sig, _ = r.Intent.Sign(e.keys[2])
	})); st != withdraw.StatusRejected || !strings.Contains(why, "deny list") {
		t.Fatalf("to a denied address = %s %s", st, why)
	}
	// An address traced from an incident, put on the journal's deny list.
	e.must(DenyAddresses{Addresses: []string{"bcrt1qexample"}, Incident: "theft", Actor: "aiko", Reason: "traced from the theft"})
	if st, why := status(e.request(2, "traced", 1000, nil)); st != withdraw.StatusRejected || !strings.Contains(why, "AML deny list: traced from the theft") {
		t.Fatalf("to a traced address = %s %s", st, why)
	}
	if o := e.do(DenyAddresses{Addresses: nil, Actor: "aiko", Reason: "x"}); o.Err == nil {
		t.Fatal("an empty deny list accepted")
	}
	e.must(Halt{Switch: controls.Switch{Asset: 2, Service: controls.Withdraw}, Actor: "watcher", Reason: "unexplained outflow"})
	if st, why := status(e.request(1, "halted", 1000, nil)); st != withdraw.StatusRejected || !strings.Contains(why, "halted") {
		t.Fatalf("while halted = %s %s", st, why)
	}
	e.c.Read(func(s *State) {
		if err := s.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDefaultWithdrawalRules: rules that name no limit for bitcoin (the
// state's defaults, and rules set with only a cool-down) still bound it:
// a withdrawal above one coin is rejected and holds nothing; above half a
// coin it waits for two operators, the requester unable to approve it.
func TestDefaultWithdrawalRules(t *testing.T) {
	e := newWdEnv(t)
	hot := ledger.AccountKey{Owner: hotOwner, Asset: 2, Kind: ledger.KindWallet}
	e.must(CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Lo: 10}, Debit: hot, Credit: ledger.AccountKey{Owner: 1, Asset: 2, Kind: ledger.KindAvailable}, Amount: ledger.AmountOf(4_0000_0000)}}})
	e.setRules(withdraw.Rules{CoolDownSeconds: 24 * 3600})
	e.c.Read(func(s *State) {
		if l := s.Withdraw.Rules.LimitsFor("BTC", 8, false); l != withdraw.DefaultLimits(8, false) || l.PerWithdrawalMax != withdraw.AmountOf(1_0000_0000) || l.ApprovalAbove != withdraw.AmountOf(5000_0000) {
			t.Fatalf("limits %+v", l)
		}
	})
	rec := func(o Outcome) withdraw.Withdrawal {
		t.Helper()
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		return o.Value.(withdraw.Withdrawal)
	}
	if w := rec(e.request(1, "big", 1_5000_0000, nil)); w.Status != withdraw.StatusRejected || !strings.Contains(w.Reason, "per-withdrawal maximum 100000000") {
		t.Fatalf("1.5 BTC with the default rules = %s %s", w.Status, w.Reason)
	}
	if e.available(1) != 5_0000_0000 {
		t.Fatal("a rejected withdrawal holds funds")
	}
	if w := rec(e.request(1, "half", 5000_0000, nil)); w.Status != withdraw.StatusQueued {
		t.Fatalf("0.5 BTC = %s %s", w.Status, w.Reason)
	}
	w := rec(e.request(2, "more", 6000_0000, nil))
	if w.Status != withdraw.StatusAwaitingApproval || !strings.Contains(w.Reason, "two operators") {
		t.Fatalf("0.6 BTC with the default rules = %s %s", w.Status, w.Reason)
	}
	payload, _ := json.Marshal(ApproveWithdrawalPayload{Withdrawal: w.ID})
	e.must(OpenRequest{Request: people.Request{ID: "w-more", Kind: KindApproveWithdrawal, Payload: payload, Requester: "aiko", Reason: "customer called",
		RequiredRole: people.RoleApprover, Expires: e.now.Add(time.Hour).UnixNano()}})
	if o := e.do(DecideRequest{ID: "w-more", Decider: "aiko", Reason: "mine", Approve: true}); !errors.Is(o.Err, people.ErrSelfApproval) {
		t.Fatalf("self approval = %v", o.Err)
	}
	e.c.Read(func(s *State) {
		if w, _ := s.Withdraw.Get(w.ID); w.Status != withdraw.StatusAwaitingApproval {
			t.Fatalf("after a self approval: %s", w.Status)
		}
	})
	e.must(DecideRequest{ID: "w-more", Decider: "kenji", Reason: "identity confirmed", Approve: true})
	e.c.Read(func(s *State) {
		if w, _ := s.Withdraw.Get(w.ID); w.Status != withdraw.StatusQueued {
			t.Fatalf("after approval: %s", w.Status)
		}
	})
	// A fresh state has the same defaults: no limit is never the default.
	if l := NewState().Withdraw.Rules.LimitsFor("BTC", 8, false); l.PerWithdrawalMax != withdraw.AmountOf(1_0000_0000) {
		t.Fatalf("a new state's limits %+v", l)
	}
}
