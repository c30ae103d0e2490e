// Package operators runs operators with software credentials (CLI keys)
// the way `kinko dev`, the drills and tests need them: a founding set
// bootstrapped and enrolled, and every approval signed, so that they go
// through exactly the checks a person with a security key goes through.
// Production operators bootstrap with `kinko operators bootstrap` and
// enrol their own credentials in the console.
package operators

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/passkey"
	"kinko/internal/people"
)

// Operator is a named operator and the software credential they sign with.
type Operator struct {
	Name  string
	Roles []people.Role
	Key   *passkey.SoftKey
}

// Team is a set of operators of one relying party.
type Team struct {
	RP     passkey.RP
	Origin string
	ops    []*Operator
	byName map[string]*Operator
	n      int
}

// Member names an operator and their roles.
type Member struct {
	Name  string
	Roles []people.Role
}

// New makes a team whose keys derive from seed and each name: the same
// seed gives the same keys, so a restarted demo signs with the keys it
// enrolled.
func New(rp passkey.RP, seed string, members ...Member) *Team {
	t := &Team{RP: rp, Origin: rp.Origins[0], byName: map[string]*Operator{}}
	for _, m := range members {
		k := passkey.SoftKeyFromSeed(sha256.Sum256([]byte("kinko operator key\x00" + seed + "\x00" + m.Name)))
		o := &Operator{Name: m.Name, Roles: m.Roles, Key: k}
		t.ops = append(t.ops, o)
		t.byName[m.Name] = o
	}
	return t
}

// Get returns the named operator.
func (t *Team) Get(name string) *Operator { return t.byName[name] }

// Operators returns the team in order.
func (t *Team) Operators() []*Operator { return t.ops }

// code is the enrolment code of a team member: derived, so that the
// commands are the same every time.
func (t *Team) code(name string) string {
	h := sha256.Sum256(append(t.byName[name].Key.PublicKey(), []byte("enrol")...))
	return hex.EncodeToString(h[:16])
}

// Bootstrap returns the commands that found the team on an empty
// journal: Bootstrap with every member a founder, then each member's
// credential enrolled with their code.
func (t *Team) Bootstrap(now time.Time) []core.Command {
	b := core.Bootstrap{RP: t.RP, Expires: now.Add(24 * time.Hour).UnixNano()}
	for _, o := range t.ops {
		b.Founders = append(b.Founders, people.Founder{Name: o.Name, Roles: o.Roles, Code: sha256.Sum256([]byte(t.code(o.Name)))})
	}
	cmds := []core.Command{b}
	for _, o := range t.ops {
		cmds = append(cmds, core.EnrolCredential{Operator: o.Name, Code: t.code(o.Name), Key: people.Key{ID: o.Key.ID(), PublicKey: o.Key.PublicKey(), Label: "cli key"}})
	}
	return cmds
}

// Sign returns c signed by its signer, who must be in the team.
func (t *Team) Sign(c core.Command) (core.Command, error) {
	signer, digest, ok := core.SignedDigest(c)
	if !ok {
		return c, nil
	}
	o := t.byName[signer]
	if o == nil {
		return nil, fmt.Errorf("operators: %q is not in the team", signer)
	}
	a, err := o.Key.Assert(t.RP.ID, t.Origin, digest[:])
	if err != nil {
		return nil, err
	}
	return core.WithAssertion(c, &a), nil
}

// MustSign is Sign for commands whose signer is known to be in the team.
func (t *Team) MustSign(c core.Command) core.Command {
	s, err := t.Sign(c)
	if err != nil {
		panic(err)
	}
	return s
}

// Open returns a signed request of kind by requester.
func (t *Team) Open(id string, kind people.RequestKind, payload any, requester string, role people.Role, reason string, expires time.Time) core.Command {
	p, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	return t.MustSign(core.OpenRequest{Request: people.Request{ID: id, Kind: kind, Payload: p, Requester: requester, Reason: reason,
		RequiredRole: role, Expires: expires.UnixNano()}})
}

// Decide returns a signed decision of a request.
func (t *Team) Decide(id, decider, reason string, approve bool) core.Command {
	return t.MustSign(core.DecideRequest{ID: id, Decider: decider, Reason: reason, Approve: approve})
}

// Approved returns the two signed commands by which requester asks for
// kind and approver approves it, with an id of its own.
func (t *Team) Approved(kind people.RequestKind, payload any, requester, approver string, role people.Role, reason string, now time.Time) []core.Command {
	t.n++
	id := fmt.Sprintf("%s-%d-%d", kind, now.UnixNano(), t.n)
	return []core.Command{t.Open(id, kind, payload, requester, role, reason, now.Add(time.Hour)), t.Decide(id, approver, reason, true)}
}

// NewWithKeys makes a team of operators whose keys are given.
func NewWithKeys(rp passkey.RP, ops ...*Operator) *Team {
	t := &Team{RP: rp, Origin: rp.Origins[0], byName: map[string]*Operator{}}
	for _, o := range ops {
		t.ops = append(t.ops, o)
		t.byName[o.Name] = o
	}
	return t
}

// Crew is the team the tests and drills of other packages found: aiko
// and ren admins, kenji operator and approver, sora ciso, their keys
// derived from seed, for the relying party localhost.
func Crew(seed string) *Team {
	return New(passkey.RP{ID: "localhost", Origins: []string{"http://localhost"}}, seed,
		Member{Name: "aiko", Roles: []people.Role{people.RoleAdmin}},
		Member{Name: "ren", Roles: []people.Role{people.RoleAdmin}},
		Member{Name: "kenji", Roles: []people.Role{people.RoleOperator, people.RoleApprover}},
		Member{Name: "sora", Roles: []people.Role{people.RoleCISO}})
}

// Admins returns the team's first two admins: who asks for and who
// approves what needs two admins.
func (t *Team) Admins() (string, string) {
	var out []string
	for _, o := range t.ops {
		for _, r := range o.Roles {
			if r == people.RoleAdmin {
				out = append(out, o.Name)
				break
			}
		}
	}
	if len(out) < 2 {
		panic("operators: the team has fewer than two admins")
	}
	return out[0], out[1]
}

// RegisterTokens returns the signed commands by which the team's first
// admin asks to list each ERC-20 token (a register_token request) and its
// second approves it.
func (t *Team) RegisterTokens(now time.Time, ts ...custody.Token) []core.Command {
	a, b := t.Admins()
	var cmds []core.Command
	for _, tok := range ts {
		cmds = append(cmds, t.Approved(core.KindRegisterTokenRequest, core.RegisterTokenPayload{Token: tok}, a, b, people.RoleAdmin,
			fmt.Sprintf("token %d (%s on chain %d)", tok.Asset, tok.Contract, tok.ChainID), now)...)
	}
	return cmds
}

// RegisterWallets returns the signed commands by which the team's first
// admin asks for each wallet (a register_wallet request) and its second
// approves it: the only way a wallet enters the journal.
func (t *Team) RegisterWallets(now time.Time, ws ...custody.Wallet) []core.Command {
	a, b := t.Admins()
	var cmds []core.Command
	for _, w := range ws {
		cmds = append(cmds, t.Approved(core.KindRegisterWalletRequest, core.RegisterWalletPayload{Wallet: w}, a, b, people.RoleAdmin,
			fmt.Sprintf("wallet %d (%s)", w.ID, w.Kind), now)...)
	}
	return cmds
}
