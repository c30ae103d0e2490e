package core

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"kinko/internal/controls"
	"kinko/internal/custody"
	"kinko/internal/passkey"
	"kinko/internal/people"
	"kinko/internal/trading"
	"kinko/internal/withdraw"
)

// testRP is the relying party of the tests' journals.
var testRP = passkey.RP{ID: "localhost", Origins: []string{"http://localhost:8080"}}

// crew are the tests' operators with software credentials: aiko and ren
// admins, kenji and hana operators and approvers, mei an operator, sora
// ciso.
var crew = func() map[string]*crewMember {
	m := map[string]*crewMember{}
	for _, x := range []struct {
		name  string
		roles []people.Role
	}{
		{"aiko", []people.Role{people.RoleAdmin}},
		{"ren", []people.Role{people.RoleAdmin}},
		{"kenji", []people.Role{people.RoleOperator, people.RoleApprover}},
		{"sora", []people.Role{people.RoleCISO}},
		{"hana", []people.Role{people.RoleOperator, people.RoleApprover}},
		{"mei", []people.Role{people.RoleOperator}},
	} {
		m[x.name] = &crewMember{name: x.name, roles: x.roles, key: passkey.SoftKeyFromSeed(sha256.Sum256([]byte("core test " + x.name)))}
	}
	return m
}()

var crewOrder = []string{"aiko", "ren", "kenji", "sora", "hana", "mei"}

type crewMember struct {
	name  string
	roles []people.Role
	key   *passkey.SoftKey
}

func crewCode(name string) string {
	h := sha256.Sum256([]byte("code " + name))
	return hex.EncodeToString(h[:16])
}

// founding returns the commands that bootstrap the crew and enrol their
// keys.
func founding(now time.Time) []Command {
	b := Bootstrap{RP: testRP, Expires: now.Add(24 * time.Hour).UnixNano()}
	for _, n := range crewOrder {
		b.Founders = append(b.Founders, people.Founder{Name: n, Roles: crew[n].roles, Code: sha256.Sum256([]byte(crewCode(n)))})
	}
	cmds := []Command{b}
	for _, n := range crewOrder {
		k := crew[n].key
		cmds = append(cmds, EnrolCredential{Operator: n, Code: crewCode(n), Key: people.Key{ID: k.ID(), PublicKey: k.PublicKey(), Label: "test key"}})
	}
	return cmds
}

// signed returns c signed by its signer if the signer is one of the crew
// and c carries no assertion yet; anything else unchanged.
func signed(c Command) Command {
	signer, digest, ok := SignedDigest(c)
	if !ok || assertionOf(c) != nil {
		return c
	}
	m := crew[signer]
	if m == nil {
		return c
	}
	a, err := m.key.Assert(testRP.ID, testRP.Origins[0], digest[:])
	if err != nil {
		panic(err)
	}
	return WithAssertion(c, &a)
}

var requestN int

// twoPerson returns a request of kind asked by aiko and approved by ren.
func twoPerson(kind people.RequestKind, payload any, now time.Time) []Command {
	return twoPersonBy(kind, payload, "aiko", "ren", people.RoleAdmin, now)
}

func twoPersonBy(kind people.RequestKind, payload any, requester, approver string, role people.Role, now time.Time) []Command {
	requestN++
	id := fmt.Sprintf("t-%s-%d", kind, requestN)
	p, _ := json.Marshal(payload)
	return []Command{
		signed(OpenRequest{Request: people.Request{ID: id, Kind: kind, Payload: p, Requester: requester, Reason: "test", RequiredRole: role, Expires: now.Add(time.Hour).UnixNano()}}),
		signed(DecideRequest{ID: id, Decider: approver, Reason: "test", Approve: true}),
	}
}

// lifted returns the request and approval that lift sw.
func lifted(sw controls.Switch, requester, approver string, now time.Time) []Command {
	return twoPersonBy(KindLiftHalt, LiftHaltPayload{Switch: sw}, requester, approver, people.RoleApprover, now)
}

// twoPerson asks for kind as requester and approves it as approver; it
// returns the outcome of the request if it failed, else of the approval.
func (e *tradeEnv) twoPerson(kind people.RequestKind, payload any, requester, approver string, role people.Role) Outcome {
	e.t.Helper()
	cmds := twoPersonBy(kind, payload, requester, approver, role, time.Unix(0, e.now))
	if o := e.do(cmds[0]); o.Err != nil {
		return o
	}
	return e.do(cmds[1])
}

// setRules journals withdrawal rules as aiko asks and ren approves.
func (e *tradeEnv) setRules(r withdraw.Rules) Outcome {
	return e.twoPerson(KindSetWithdrawalRulesRequest, SetWithdrawalRulesPayload{Rules: r}, "aiko", "ren", people.RoleAdmin)
}

// listMarket lists a market as aiko asks and ren approves.
func (e *tradeEnv) listMarket(l trading.Listing) Outcome {
	return e.twoPerson(KindListMarketRequest, ListMarketPayload{Listing: l}, "aiko", "ren", people.RoleAdmin)
}

// lift lifts a halt as requester asks and approver approves.
func (e *tradeEnv) lift(sw controls.Switch, requester, approver string) Outcome {
	return e.twoPerson(KindLiftHalt, LiftHaltPayload{Switch: sw}, requester, approver, people.RoleApprover)
}

// walletRegistered returns the register_wallet request aiko asks for w
// and ren's approval.
func walletRegistered(w custody.Wallet, now time.Time) []Command {
	return twoPerson(KindRegisterWalletRequest, RegisterWalletPayload{Wallet: w}, now)
}
