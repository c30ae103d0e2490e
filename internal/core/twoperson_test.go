package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"kinko/internal/controls"
	"kinko/internal/ledger"
	"kinko/internal/passkey"
	"kinko/internal/people"
	"kinko/internal/withdraw"
)

// tpEnv is a core with the crew founded.
type tpEnv struct {
	t   *testing.T
	c   *Core
	now time.Time
}

func newTPEnv(t *testing.T) *tpEnv {
	e := &tpEnv{t: t, c: openCore(t, t.TempDir(), 0), now: t0}
	t.Cleanup(func() { e.c.Close() })
	e.ok(CreateAssets{Assets: []ledger.Asset{{ID: 1, Code: "JPY", Class: ledger.ClassFiat}, {ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}})
	for _, c := range founding(e.now) {
		e.ok(c)
	}
	return e
}

// raw submits cmd exactly as given: no signing.
func (e *tpEnv) raw(cmd Command) Outcome {
	e.t.Helper()
	e.now = e.now.Add(time.Second)
	o, err := e.c.Submit(context.Background(), e.now, cmd)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

func (e *tpEnv) ok(cmd Command) any {
	e.t.Helper()
	o := e.raw(signed(cmd))
	if err := o.EventErr(); err != nil {
		e.t.Fatalf("%s: %v", cmd.Kind(), err)
	}
	return o.Value
}

func (e *tpEnv) refused(what string, cmd Command, want error) {
	e.t.Helper()
	if o := e.raw(cmd); !errors.Is(o.Err, want) {
		e.t.Fatalf("%s: %v; want %v", what, o.Err, want)
	}
}

func (e *tpEnv) open(id string, kind people.RequestKind, payload any, requester string, role people.Role) OpenRequest {
	p, _ := json.Marshal(payload)
	return OpenRequest{Request: people.Request{ID: id, Kind: kind, Payload: p, Requester: requester, Reason: "test", RequiredRole: role, Expires: e.now.Add(time.Hour).UnixNano()}}
}

func (e *tpEnv) operator(name string) (people.Operator, bool) {
	var o people.Operator
	var ok bool
	e.c.Read(func(s *State) { o, ok = s.People.Operator(name) })
	return o, ok
}

func codeHash(code string) string {
	h := sha256.Sum256([]byte(code))
	return hex.EncodeToString(h[:])
}

// TestBootstrapOnlyOnAnEmptyJournal: the founding set is made once; after
// that, no command adds an operator on one person's word.
func TestBootstrapOnlyOnAnEmptyJournal(t *testing.T) {
	e := newTPEnv(t)
	e.refused("a second bootstrap", founding(e.now)[0], people.ErrBootstrapped)
	e.refused("create_operator", CreateOperator{Operator: people.Operator{Name: "eve", Roles: people.AllRoles}, Actor: "aiko"}, people.ErrBootstrapped)
	if _, ok := e.operator("eve"); ok {
		t.Fatal("eve exists")
	}
	// A founding set must hold two admins.
	c := openCore(t, t.TempDir(), 0)
	defer c.Close()
	b := founding(t0)[0].(Bootstrap)
	for i := range b.Founders {
		if b.Founders[i].Name != "aiko" {
			b.Founders[i].Roles = []people.Role{people.RoleApprover}
		}
	}
	if o, _ := c.Submit(context.Background(), t0, b); !errors.Is(o.Err, people.ErrInvalid) {
		t.Fatalf("bootstrap with one admin = %v", o.Err)
	}
	// A founder's code works once.
	f := founding(t0)
	submit(t, c, t0, f[0])
	submit(t, c, t0, f[1])
	if o, _ := c.Submit(context.Background(), t0, f[1]); !errors.Is(o.Err, people.ErrEnrolCode) {
		t.Fatalf("code used twice = %v", o.Err)
	}
	wrong := f[2].(EnrolCredential)
	wrong.Code = "guess"
	if o, _ := c.Submit(context.Background(), t0, wrong); !errors.Is(o.Err, people.ErrEnrolCode) {
		t.Fatalf("a wrong code = %v", o.Err)
	}
	if o, _ := c.Submit(context.Background(), t0.Add(25*time.Hour), f[2]); !errors.Is(o.Err, people.ErrEnrolCode) {
		t.Fatalf("an expired code = %v", o.Err)
	}
}

// TestOneAdminCannotActAlone is the 2018 attack: one admin adds an
// operator with every role and approves their own requests through it.
// Every single-person path is refused; only a second admin makes the new
// operator, and only a second admin makes their credential count.
func TestOneAdminCannotActAlone(t *testing.T) {
	e := newTPEnv(t)
	code := "one-time-code-for-eve"
	add := e.open("add-eve", people.KindAddOperator, people.AddOperatorPayload{Operator: "eve", Roles: people.AllRoles, Code: codeHash(code), CodeExpires: e.now.Add(48 * time.Hour).UnixNano()}, "aiko", people.RoleAdmin)
	e.ok(add)
	e.refused("aiko approves her own add_operator", signed(DecideRequest{ID: "add-eve", Decider: "aiko", Reason: "mine", Approve: true}), people.ErrSelfApproval)
	e.refused("an approver approves it", signed(DecideRequest{ID: "add-eve", Decider: "kenji", Reason: "ok", Approve: true}), people.ErrWrongRole)
	if _, ok := e.operator("eve"); ok {
		t.Fatal("eve exists without a second admin")
	}
	// Suppose ren approves (two people agreed to add eve)...
	e.ok(DecideRequest{ID: "add-eve", Decider: "ren", Reason: "agreed", Approve: true})
	// ...aiko, holding eve's code, registers her own second key as eve's.
	evil := passkey.SoftKeyFromSeed([32]byte{0xE7})
	active := e.ok(EnrolCredential{Operator: "eve", Code: code, Key: people.Key{ID: evil.ID(), PublicKey: evil.PublicKey(), Label: "aiko's spare key"}})
	if active.(bool) {
		t.Fatal("a non-founder's credential is active without approval")
	}
	// eve cannot sign anything: her credential is pending.
	req := e.open("roles-1", people.KindSetRoles, people.SetRolesPayload{Operator: "kenji", Roles: []people.Role{people.RoleOperator}}, "aiko", people.RoleAdmin)
	e.ok(req)
	d := DecideRequest{ID: "roles-1", Decider: "eve", Reason: "ok", Approve: true}
	dig := func(c Command) [32]byte { _, x, _ := SignedDigest(c); return x }(d)
	a, _ := evil.Assert(testRP.ID, testRP.Origins[0], dig[:])
	e.refused("eve approves with a pending credential", WithAssertion(d, &a), people.ErrNoKey)
	// aiko asks for eve's credential and approves it herself: refused.
	o, _ := e.operator("eve")
	cp := people.CredentialPayload{Operator: "eve", Credential: evil.ID(), Fingerprint: people.Fingerprint(evil.PublicKey())}
	e.ok(e.open("enrol-eve", people.KindEnrolCredential, cp, "aiko", people.RoleAdmin))
	e.refused("aiko approves eve's credential", signed(DecideRequest{ID: "enrol-eve", Decider: "aiko", Reason: "mine", Approve: true}), people.ErrSelfApproval)
	if len(o.Keys) != 0 {
		t.Fatal("eve has an active key")
	}
	// A wrong fingerprint is refused when the request is made.
	bad := cp
	bad.Fingerprint = "0000000000000000"
	e.refused("a wrong fingerprint", signed(e.open("enrol-eve-2", people.KindEnrolCredential, bad, "aiko", people.RoleAdmin)), people.ErrInvalid)
	// The role change is still pending: nothing was approved by one person.
	e.c.Read(func(s *State) {
		if r, _ := s.People.Request("roles-1"); r.State != people.RequestPending {
			t.Fatalf("roles-1 %s", r.State)
		}
		if k, _ := s.People.Operator("kenji"); len(k.Roles) != 2 {
			t.Fatalf("kenji's roles changed: %v", k.Roles)
		}
	})
}

// TestSignatureAttacks: an approval without an assertion, with one over
// other bytes, by another operator's key, replayed, or with a counter
// that went back, is refused and changes nothing.
func TestSignatureAttacks(t *testing.T) {
	e := newTPEnv(t)
	e.ok(e.open("roles-1", people.KindSetRoles, people.SetRolesPayload{Operator: "kenji", Roles: []people.Role{people.RoleApprover}}, "aiko", people.RoleAdmin))
	approve := DecideRequest{ID: "roles-1", Decider: "ren", Reason: "ok", Approve: true}
	e.refused("no assertion", approve, people.ErrAssertion)
	// ren's assertion over another request's approval.
	other := signed(DecideRequest{ID: "roles-2", Decider: "ren", Reason: "ok", Approve: true})
	e.refused("over other bytes", WithAssertion(approve, assertionOf(other)), passkey.ErrChallenge)
	// The right bytes, signed with aiko's key, presented as ren's.
	_, dig, _ := SignedDigest(approve)
	a, _ := crew["aiko"].key.Assert(testRP.ID, testRP.Origins[0], dig[:])
	e.refused("another operator's key", WithAssertion(approve, &a), people.ErrKeyUnknown)
	// A key that is not enrolled at all, claiming ren's credential id.
	forger := passkey.SoftKeyFromSeed([32]byte{0xF0})
	fa, _ := forger.Assert(testRP.ID, testRP.Origins[0], dig[:])
	fa.Credential = crew["ren"].key.ID()
	e.refused("a forged signature", WithAssertion(approve, &fa), passkey.ErrSignature)
	// An assertion for another relying party or origin.
	pa, _ := crew["ren"].key.Assert("evil.example", testRP.Origins[0], dig[:])
	e.refused("another relying party", WithAssertion(approve, &pa), passkey.ErrRPID)
	oa, _ := crew["ren"].key.Assert(testRP.ID, "https://evil.example", dig[:])
	e.refused("another origin", WithAssertion(approve, &oa), passkey.ErrOrigin)
	e.c.Read(func(s *State) {
		if r, _ := s.People.Request("roles-1"); r.State != people.RequestPending {
			t.Fatalf("roles-1 %s after refused approvals", r.State)
		}
	})
	// The real approval, then the same bytes again.
	good := signed(approve)
	e.ok(good)
	e.refused("replayed approval", good, people.ErrReplayed)
	// A replayed request: same bytes, refused before the id is looked at.
	open := signed(e.open("roles-3", people.KindSetRoles, people.SetRolesPayload{Operator: "kenji", Roles: []people.Role{people.RoleOperator, people.RoleApprover}}, "aiko", people.RoleAdmin))
	e.ok(open)
	e.refused("replayed request", open, people.ErrReplayed)
	e.c.Read(func(s *State) {
		if k, _ := s.People.Operator("kenji"); len(k.Roles) != 1 || k.Roles[0] != people.RoleApprover {
			t.Fatalf("kenji's roles %v", k.Roles)
		}
	})
}

// TestSignCounterMustGrow: a counting credential whose counter goes back
// (a clone of it used after the original) is refused.
func TestSignCounterMustGrow(t *testing.T) {
	e := newTPEnv(t)
	// Give kenji a counting key: registered signed with his key, approved
	// by two admins.
	counting := passkey.SoftKeyFromSeed([32]byte{0xC0})
	counting.Counter = 100
	e.ok(AddCredential{Operator: "kenji", Key: people.Key{ID: counting.ID(), PublicKey: counting.PublicKey(), Label: "security key"}})
	cp := people.CredentialPayload{Operator: "kenji", Credential: counting.ID(), Fingerprint: people.Fingerprint(counting.PublicKey())}
	e.ok(e.open("enrol-k", people.KindEnrolCredential, cp, "aiko", people.RoleAdmin))
	e.refused("kenji approves his own credential", signed(DecideRequest{ID: "enrol-k", Decider: "kenji", Reason: "mine", Approve: true}), people.ErrSubject)
	e.ok(DecideRequest{ID: "enrol-k", Decider: "ren", Reason: "fingerprint compared in person", Approve: true})
	sign := func(c Command) Command {
		_, d, _ := SignedDigest(c)
		a, _ := counting.Assert(testRP.ID, testRP.Origins[0], d[:])
		return WithAssertion(c, &a)
	}
	e.ok(Halt{Switch: controls.Switch{Asset: 2, Service: controls.Withdraw}, Actor: "watcher", Reason: "outflow"})
	lift := LiftHaltPayload{Switch: controls.Switch{Asset: 2, Service: controls.Withdraw}}
	first := sign(e.open("l1", KindLiftHalt, lift, "kenji", people.RoleApprover))  // counter 101
	second := sign(e.open("l2", KindLiftHalt, lift, "kenji", people.RoleApprover)) // counter 102
	e.ok(second)
	e.refused("counter went back", first, passkey.ErrCounter)
	third := sign(e.open("l3", KindLiftHalt, lift, "kenji", people.RoleApprover)) // counter 103
	e.ok(third)
}

// TestSetRolesNotBySubject: a role change is approved by an admin who is
// neither its proposer nor the operator it changes.
func TestSetRolesNotBySubject(t *testing.T) {
	e := newTPEnv(t)
	e.ok(e.open("ren-all", people.KindSetRoles, people.SetRolesPayload{Operator: "ren", Roles: people.AllRoles}, "aiko", people.RoleAdmin))
	e.refused("ren approves his own roles", signed(DecideRequest{ID: "ren-all", Decider: "ren", Reason: "mine", Approve: true}), people.ErrSubject)
	e.ok(e.open("aiko-all", people.KindSetRoles, people.SetRolesPayload{Operator: "aiko", Roles: people.AllRoles}, "aiko", people.RoleAdmin))
	e.refused("aiko approves her own request for herself", signed(DecideRequest{ID: "aiko-all", Decider: "aiko", Reason: "mine", Approve: true}), people.ErrSelfApproval)
	e.ok(DecideRequest{ID: "aiko-all", Decider: "ren", Reason: "agreed", Approve: true})
	if o, _ := e.operator("aiko"); len(o.Roles) != len(people.AllRoles) {
		t.Fatalf("aiko's roles %v", o.Roles)
	}
}

// TestCredentialRemoved: a removed credential signs nothing more.
func TestCredentialRemoved(t *testing.T) {
	e := newTPEnv(t)
	k := crew["kenji"].key
	e.ok(e.open("rm-k", people.KindRemoveCredential, people.CredentialPayload{Operator: "kenji", Credential: k.ID(), Fingerprint: people.Fingerprint(k.PublicKey())}, "aiko", people.RoleAdmin))
	e.ok(DecideRequest{ID: "rm-k", Decider: "ren", Reason: "key lost", Approve: true})
	e.refused("a removed key", signed(e.open("x", KindApproveWithdrawal, ApproveWithdrawalPayload{Withdrawal: "none"}, "kenji", people.RoleApprover)), people.ErrNoKey)
}

// TestControlsNeedTwoPeople: rules, listings and lifts given directly are
// refused whatever the actor; through a request they need a second admin.
func TestControlsNeedTwoPeople(t *testing.T) {
	e := newTPEnv(t)
	lax := withdraw.Rules{CoolDownSeconds: 5}
	e.refused("rules set directly", SetWithdrawalRules{Rules: lax, Actor: "aiko"}, ErrTwoPerson)
	e.refused("market listed directly", ListMarket{Listing: btcJPY, Actor: "aiko"}, ErrTwoPerson)
	e.ok(e.open("rules", KindSetWithdrawalRulesRequest, SetWithdrawalRulesPayload{Rules: lax}, "aiko", people.RoleAdmin))
	e.refused("self-approved rules", signed(DecideRequest{ID: "rules", Decider: "aiko", Reason: "mine", Approve: true}), people.ErrSelfApproval)
	e.refused("rules approved by an approver", signed(DecideRequest{ID: "rules", Decider: "kenji", Reason: "ok", Approve: true}), people.ErrWrongRole)
	e.c.Read(func(s *State) {
		if s.Withdraw.Rules.CoolDownSeconds == 5 {
			t.Fatal("cool-down lowered by one person")
		}
	})
	e.ok(DecideRequest{ID: "rules", Decider: "ren", Reason: "agreed", Approve: true})
	e.c.Read(func(s *State) {
		if s.Withdraw.Rules.CoolDownSeconds != 5 {
			t.Fatal("approved rules not in force")
		}
	})
	e.ok(e.open("list", KindListMarketRequest, ListMarketPayload{Listing: btcJPY}, "aiko", people.RoleAdmin))
	e.ok(DecideRequest{ID: "list", Decider: "ren", Reason: "agreed", Approve: true})
	e.c.Read(func(s *State) {
		if _, ok := s.Trading.Market(btcJPY.ID); !ok {
			t.Fatal("approved market not listed")
		}
	})
	// The state, with its counters and used digests, survives a restart.
	_, want := e.c.StateHash()
	dir := e.c.cfg.Dir
	e.c.Close()
	e.c = openCore(t, dir, 0)
	if _, got := e.c.StateHash(); got != want {
		t.Fatal("state differs after restart")
	}
	e.refused("replay after restart", signed(DecideRequest{ID: "rules", Decider: "ren", Reason: "agreed", Approve: true}), people.ErrReplayed)
}

// TestRefusedAssetProposalLeavesNoAsset: an approver's or auditor's
// proposal is refused before the asset is made.
func TestRefusedAssetProposalLeavesNoAsset(t *testing.T) {
	e := newTPEnv(t)
	code := "code-of-mio"
	e.ok(e.open("add-mio", people.KindAddOperator, people.AddOperatorPayload{Operator: "mio", Roles: []people.Role{people.RoleAuditor}, Code: codeHash(code), CodeExpires: e.now.Add(48 * time.Hour).UnixNano()}, "aiko", people.RoleAdmin))
	e.ok(DecideRequest{ID: "add-mio", Decider: "ren", Reason: "new auditor", Approve: true})
	mio := passkey.SoftKeyFromSeed([32]byte{0x31})
	e.ok(EnrolCredential{Operator: "mio", Code: code, Key: people.Key{ID: mio.ID(), PublicKey: mio.PublicKey(), Label: "key"}})
	e.ok(e.open("enrol-mio", people.KindEnrolCredential, people.CredentialPayload{Operator: "mio", Credential: mio.ID(), Fingerprint: people.Fingerprint(mio.PublicKey())}, "ren", people.RoleAdmin))
	e.ok(DecideRequest{ID: "enrol-mio", Decider: "aiko", Reason: "fingerprint compared", Approve: true})
	// kenji (operator and approver) may propose; take operator away first.
	e.ok(e.open("k-approver", people.KindSetRoles, people.SetRolesPayload{Operator: "kenji", Roles: []people.Role{people.RoleApprover}}, "aiko", people.RoleAdmin))
	e.ok(DecideRequest{ID: "k-approver", Decider: "ren", Reason: "ok", Approve: true})
	for i, who := range []string{"kenji", "mio"} {
		id := ledger.AssetID(20 + i)
		p := ProposeAsset{Asset: ledger.Asset{ID: id, Code: "XM" + string(rune('A'+i)), Decimals: 6, Class: ledger.ClassChain}, Actor: who, Reason: "demand"}
		_, d, _ := SignedDigest(p)
		k := crew["kenji"].key
		if who == "mio" {
			k = mio
		}
		a, _ := k.Assert(testRP.ID, testRP.Origins[0], d[:])
		e.refused(who+" proposes an asset", WithAssertion(p, &a), people.ErrNotAuthorized)
		e.c.Read(func(s *State) {
			if _, ok := s.Ledger.Asset(id); ok {
				t.Fatalf("%s's refused proposal left asset %d in the ledger", who, id)
			}
			if _, ok := s.Ledger.AssetByCode(p.Asset.Code); ok {
				t.Fatalf("%s's refused proposal left %s in the ledger", who, p.Asset.Code)
			}
		})
	}
	// An operator's proposal makes the asset, disabled.
	e.ok(ProposeAsset{Asset: ledger.Asset{ID: 30, Code: "XEM", Decimals: 6, Class: ledger.ClassChain}, Actor: "aiko", Reason: "demand"})
	e.c.Read(func(s *State) {
		if _, ok := s.Ledger.Asset(30); !ok || s.People.AssetEnabled(30) {
			t.Fatal("a proposed asset is missing or enabled")
		}
	})
	// Unsigned, it is refused.
	e.refused("unsigned proposal", ProposeAsset{Asset: ledger.Asset{ID: 31, Code: "XEN", Decimals: 6, Class: ledger.ClassChain}, Actor: "aiko", Reason: "demand"}, people.ErrAssertion)
}
