package cosigner

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/passkey"
	"kinko/internal/people"
)

// liftPolicy is the test policy pinning lifters: name, role and the COSE
// public key (base64) or a PEM.
func (w *world) liftPolicy(lifters ...Lifter) *Policy {
	w.t.Helper()
	base := testPolicy("24h", w.hot, w.cold)
	ls, _ := json.Marshal(lifters)
	rp, _ := json.Marshal(w.team.RP)
	b := strings.TrimSuffix(base, "}") + fmt.Sprintf(`,"lifters":%s,"lift_rp":%s}`, ls, rp)
	p, err := ParsePolicy([]byte(b), regnet)
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *world) halted(asset string) bool {
	for _, h := range w.cs.Halts() {
		if h.Asset == asset {
			return true
		}
	}
	return false
}

// askLift halts BTC withdrawals in the journal, and files and decides a
// lift of them: asked by requester, approved by approver, each signed
// with their journaled credential.
func (w *world) askLift(id, requester, approver string, role people.Role) {
	w.t.Helper()
	w.clock = w.clock.Add(time.Minute)
	sw := controls.Switch{Asset: 2, Service: controls.Withdraw}
	if o := w.submit(w.clock, core.Halt{Switch: sw, Actor: "watcher", Reason: "outflow"}); o.Err != nil {
		w.t.Fatal(o.Err)
	}
	for _, c := range []core.Command{
		w.team.Open(id, core.KindLiftHalt, core.LiftHaltPayload{Switch: sw}, requester, role, "outflow explained", w.clock.Add(time.Hour)),
		w.team.Decide(id, approver, "checked", true),
	} {
		if o := w.submit(w.clock, c); o.Err != nil {
			w.t.Fatalf("%s: %v", c.Kind(), o.Err)
		}
	}
	if err := w.feed(); err != nil {
		w.t.Fatal(err)
	}
}

// TestCosignerHonoursSignedLifts: the co-signer lifts its own halt of an
// asset when the journal holds a lift of its withdrawals asked and
// approved by two operators pinned in its policy, each assertion verified
// against the pinned key; an approval by an operator it does not pin, or
// with a key other than the pinned one, lifts nothing, however valid it is
// in the journal.
func TestCosignerHonoursSignedLifts(t *testing.T) {
	w := newWorld(t)
	aiko, ren, kenji := w.team.Get("aiko"), w.team.Get("ren"), w.team.Get("kenji")
	aikoPEM, err := passkey.PublicKeyPEM(aiko.Key.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	// kenji as pinned: an old key, not the one the journal holds for him.
	old := passkey.SoftKeyFromSeed([32]byte{0x01, 0xD})
	w.pol = w.liftPolicy(Lifter{Name: "aiko", Role: people.RoleAdmin, PublicKey: aikoPEM},
		Lifter{Name: "kenji", Role: people.RoleApprover, PublicKey: base64.StdEncoding.EncodeToString(old.PublicKey())})
	w.restart()
	if err := w.cs.Halt("BTC", "watcher", "unexplained outflow"); err != nil {
		t.Fatal(err)
	}
	// An admin the journal knows but the co-signer does not pin.
	_ = ren
	w.askLift("lift-1", "aiko", "ren", people.RoleAdmin)
	if !w.halted("BTC") {
		t.Fatal("a lift approved by an unpinned operator lifted the co-signer's halt")
	}
	// kenji's approval is valid in the journal, but not by his pinned key:
	// a forged approval, as far as the co-signer knows.
	w.askLift("lift-2", "aiko", "kenji", people.RoleApprover)
	if !w.halted("BTC") {
		t.Fatal("an approval by a key other than the pinned one lifted the co-signer's halt")
	}
	// The journal is replayed on restart: still halted.
	w.restart()
	if !w.halted("BTC") {
		t.Fatal("halt gone after a restart")
	}
	// With kenji's real key pinned on the host, two pinned operators'
	// signed request and approval lift it.
	w.pol = w.liftPolicy(Lifter{Name: "aiko", Role: people.RoleAdmin, PublicKey: aikoPEM},
		Lifter{Name: "kenji", Role: people.RoleApprover, PublicKey: base64.StdEncoding.EncodeToString(kenji.Key.PublicKey())})
	if err := w.cs.SetPolicy(w.pol); err != nil {
		t.Fatal(err)
	}
	w.askLift("lift-3", "aiko", "kenji", people.RoleApprover)
	if w.halted("BTC") {
		t.Fatal("a lift asked and approved by two pinned operators did not lift the co-signer's halt")
	}
	// A later halt stays across a restart whose replay holds that lift.
	if err := w.cs.Halt("BTC", "watcher", "another outflow"); err != nil {
		t.Fatal(err)
	}
	w.restart()
	if !w.halted("BTC") {
		t.Fatal("replaying an old signed lift lifted a newer halt")
	}
	// A halt of everything (a broken history) is never lifted this way.
	if err := w.cs.Halt(AllAssets, "co-signer", "journal history"); err != nil {
		t.Fatal(err)
	}
	w.askLift("lift-4", "aiko", "kenji", people.RoleApprover)
	if !w.halted(AllAssets) || w.halted("BTC") {
		t.Fatalf("halts after a signed lift: %+v", w.cs.Halts())
	}
}

// TestParseLifters: pinned lifters need a relying party, unique names,
// roles and keys that parse.
func TestParseLifters(t *testing.T) {
	w := newWorld(t)
	good := base64.StdEncoding.EncodeToString(w.team.Get("aiko").Key.PublicKey())
	base := strings.TrimSuffix(testPolicy("24h", w.hot, w.cold), "}")
	for name, extra := range map[string]string{
		"no rp":      fmt.Sprintf(`,"lifters":[{"name":"aiko","role":"admin","public_key":%q}]}`, good),
		"bad key":    `,"lifters":[{"name":"aiko","role":"admin","public_key":"AAAA"}],"lift_rp":{"id":"localhost","origins":["http://localhost"]}}`,
		"bad role":   fmt.Sprintf(`,"lifters":[{"name":"aiko","role":"boss","public_key":%q}],"lift_rp":{"id":"localhost","origins":["http://localhost"]}}`, good),
		"same twice": fmt.Sprintf(`,"lifters":[{"name":"aiko","role":"admin","public_key":%q},{"name":"ren","role":"admin","public_key":%q}],"lift_rp":{"id":"localhost","origins":["http://localhost"]}}`, good, good),
	} {
		if _, err := ParsePolicy([]byte(base+extra), regnet); err == nil {
			t.Errorf("%s: policy accepted", name)
		}
	}
}
