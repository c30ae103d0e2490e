package cosigner

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/mirror"
	"kinko/internal/passkey"
	"kinko/internal/people"
)

// The co-signer honours signed lifts. Its own halt of an asset is lifted
// on its host (Lift), or by a lift_halt of that asset's withdrawals in the
// journal it replays whose request and approval carry valid WebAuthn
// assertions by two distinct operators pinned in its policy file, checked
// here against the pinned public keys and relying party: the journal's
// word alone, or the core's list of operators, never lifts it.

// Lifter is an operator pinned in the policy file whose signed lift_halt
// requests and approvals the co-signer honours.
type Lifter struct {
	Name string      `json:"name"`
	Role people.Role `json:"role"` // approver or admin may approve; any role may ask
	// PublicKey is the credential's public key: a PEM "PUBLIC KEY"
	// (Ed25519 or P-256), or the COSE_Key in base64.
	PublicKey string `json:"public_key"`

	cose []byte
}

// maxLifters bounds the pinned operators; maxPendingLifts the lift
// requests the co-signer follows at once.
const (
	maxLifters      = 64
	maxPendingLifts = 1024
)

// checkLifters parses the pinned operators and relying party.
func checkLifters(p *Policy) error {
	if len(p.Lifters) == 0 {
		return nil
	}
	if len(p.Lifters) > maxLifters {
		return fmt.Errorf("%w: at most %d lifters", ErrPolicy, maxLifters)
	}
	if p.LiftRP == nil {
		return fmt.Errorf("%w: lifters need lift_rp, the console's relying party (id and origins) their assertions are for", ErrPolicy)
	}
	if err := p.LiftRP.Check(); err != nil {
		return fmt.Errorf("%w: lift_rp: %w", ErrPolicy, err)
	}
	names := map[string]bool{}
	for i := range p.Lifters {
		l := &p.Lifters[i]
		if l.Name == "" || names[l.Name] {
			return fmt.Errorf("%w: lifter %d: a unique name is needed", ErrPolicy, i+1)
		}
		names[l.Name] = true
		if !people.ValidRole(l.Role) {
			return fmt.Errorf("%w: lifter %s: role %q", ErrPolicy, l.Name, l.Role)
		}
		var err error
		if strings.Contains(l.PublicKey, "BEGIN PUBLIC KEY") {
			l.cose, err = passkey.ParsePublicKeyPEM(l.PublicKey)
		} else if l.cose, err = base64.StdEncoding.DecodeString(l.PublicKey); err == nil {
			_, err = passkey.ParseKey(l.cose)
		}
		if err != nil {
			return fmt.Errorf("%w: lifter %s: public key: %v", ErrPolicy, l.Name, err)
		}
		for _, o := range p.Lifters[:i] {
			if string(o.cose) == string(l.cose) {
				return fmt.Errorf("%w: lifters %s and %s pin the same key", ErrPolicy, o.Name, l.Name)
			}
		}
	}
	return nil
}

// pendingLift is a lift_halt request whose requester's signature verified
// against a pinned key.
type pendingLift struct {
	sw        controls.Switch
	requester string
}

// signedBy tells whether a pinned lifter named name signed c.
func (c *Cosigner) signedBy(name string, cmd core.Command, a *passkey.Assertion) (*Lifter, bool) {
	if a == nil || c.policy.LiftRP == nil {
		return nil, false
	}
	_, digest, ok := core.SignedDigest(cmd)
	if !ok {
		return nil, false
	}
	for i := range c.policy.Lifters {
		l := &c.policy.Lifters[i]
		if l.Name != name {
			continue
		}
		// The sign counter is the core's to keep (any counter passes
		// against zero); what counts here is a signature over this
		// request's exact bytes, for the pinned relying party, with user
		// presence and verification, by the pinned key.
		if _, err := passkey.Verify(*c.policy.LiftRP, l.cose, 0, digest[:], *a); err == nil {
			return l, true
		}
	}
	return nil, false
}

// followLifts watches the journal's lift_halt requests and approvals.
func (c *Cosigner) followLifts(a mirror.Applied) {
	if len(c.policy.Lifters) == 0 || a.Outcome.Err != nil {
		return
	}
	switch x := a.Command.(type) {
	case core.OpenRequest:
		if x.Request.Kind != core.KindLiftHalt || len(c.lifts) >= maxPendingLifts {
			return
		}
		var p core.LiftHaltPayload
		if json.Unmarshal(x.Request.Payload, &p) != nil || p.Switch.Service != controls.Withdraw || p.Switch.Asset == 0 {
			return
		}
		if _, ok := c.signedBy(x.Request.Requester, x, x.Assertion); !ok {
			c.cfg.Log.Warn("lift request not signed by a pinned operator: it will not lift the co-signer's halt", "request", x.Request.ID, "requester", x.Request.Requester)
			return
		}
		c.lifts[x.Request.ID] = pendingLift{sw: p.Switch, requester: x.Request.Requester}
	case core.DecideRequest:
		pl, ok := c.lifts[x.ID]
		if !ok {
			return
		}
		delete(c.lifts, x.ID)
		if !x.Approve || x.Decider == pl.requester {
			return
		}
		l, ok := c.signedBy(x.Decider, x, x.Assertion)
		if !ok || (l.Role != people.RoleApprover && l.Role != people.RoleAdmin) {
			c.cfg.Log.Warn("lift approval not signed by a pinned approver: the co-signer's halt stays", "request", x.ID, "decider", x.Decider)
			return
		}
		if a.Replayed {
			return // acted on before the restart, if it was to be
		}
		asset, ok := c.m.State().Ledger.Asset(pl.sw.Asset)
		if !ok {
			return
		}
		if _, halted := c.halts[asset.Code]; !halted {
			return
		}
		if err := c.st.deleteHalt(asset.Code); err != nil {
			c.cfg.Log.Error("could not lift the co-signer's halt", "asset", asset.Code, "err", err)
			return
		}
		delete(c.halts, asset.Code)
		c.cfg.Log.Warn("co-signer halt lifted by two pinned operators' signed approvals", "asset", asset.Code, "request", x.ID, "requester", pl.requester, "approver", x.Decider)
	}
}
