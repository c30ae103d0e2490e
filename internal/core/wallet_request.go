package core

import (
	"bytes"
	"encoding/json"
	"fmt"

	"kinko/internal/custody"
	"kinko/internal/people"
)

// KindRegisterWalletRequest is the request kind that registers a wallet
// once approved: asked by an admin, approved by another admin, each
// signed. It is the only way a wallet enters the journal: the direct
// register_wallet command is refused (ErrTwoPerson), as direct rules,
// listings and lifts are. On approval the wallet is registered by the
// register_wallet effect itself (custody.State.RegisterWallet): its ledger
// wallet account opens, deposits and batches may use it.
//
// What the journal calls a wallet is evidence, never authority, to the
// signers: the co-signer and the cold machines sign only for wallets
// pinned on their own hosts, and the co-signer alerts on a registered
// wallet it does not pin (docs/withdrawals.md).
const KindRegisterWalletRequest people.RequestKind = "register_wallet"

// Bounds of a register_wallet request's payload.
const (
	// MaxWalletAddresses bounds the addresses a request shows.
	MaxWalletAddresses = 10
	// maxWalletFingerprints bounds the key fingerprints it shows (a
	// descriptor holds at most 15 keys).
	maxWalletFingerprints = 15
	// maxWalletShown bounds the length of each shown string.
	maxWalletShown = 128
)

// RegisterWalletPayload is the payload of a register_wallet request: the
// wallet exactly as it will be registered, and what the requester's CLI
// derived from its descriptor for the approver to compare with what the
// key holders read on their offline machines (`kinko cold register`
// prints the same): the first receive addresses and every key's master
// fingerprint. Apply cannot derive addresses (it knows no network): the
// API requires them and checks them against the descriptor when the
// request is filed through it, and `kinko requests approve` derives them
// again on the approver's machine.
type RegisterWalletPayload struct {
	Wallet custody.Wallet `json:"wallet"`
	// Name is the wallet's name as the offline machines register it.
	Name string `json:"name,omitempty"`
	// Addresses are the first receive addresses (branch 0, index 0...).
	Addresses []string `json:"addresses,omitempty"`
	// Fingerprints are the keys' master fingerprints (hex), in the
	// descriptor's order.
	Fingerprints []string `json:"fingerprints,omitempty"`
}

// DecodeRegisterWallet decodes a register_wallet request's payload
// strictly: no unknown fields, nothing after it, bounded lists.
func DecodeRegisterWallet(payload []byte) (RegisterWalletPayload, error) {
	var p RegisterWalletPayload
	if err := decodePayload(payload, &p); err != nil {
		return p, err
	}
	if len(p.Addresses) > MaxWalletAddresses {
		return p, fmt.Errorf("%w: payload: more than %d addresses", people.ErrInvalid, MaxWalletAddresses)
	}
	if len(p.Fingerprints) > maxWalletFingerprints {
		return p, fmt.Errorf("%w: payload: more than %d fingerprints", people.ErrInvalid, maxWalletFingerprints)
	}
	for _, s := range append(append([]string{p.Name}, p.Addresses...), p.Fingerprints...) {
		if len(s) > maxWalletShown {
			return p, fmt.Errorf("%w: payload: a shown value is longer than %d", people.ErrInvalid, maxWalletShown)
		}
	}
	if p.Name != "" && !people.ValidText(p.Name) {
		return p, fmt.Errorf("%w: payload: name", people.ErrInvalid)
	}
	return p, nil
}

// decodePayload decodes a request's JSON payload into v strictly: no
// unknown fields, nothing after it.
func decodePayload(payload []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(payload))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: payload: %v", people.ErrInvalid, err)
	}
	if d.More() {
		return fmt.Errorf("%w: payload: trailing data", people.ErrInvalid)
	}
	return nil
}

// checkRegisterWallet checks a register_wallet request when it is filed
// and again when it is approved: two admins, a payload that decodes, and
// a wallet that can be registered now.
func (s *State) checkRegisterWallet(r people.Request) error {
	if err := s.authorizeAdminRequest(r); err != nil {
		return err
	}
	p, err := DecodeRegisterWallet(r.Payload)
	if err != nil {
		return err
	}
	return s.Custody.CheckNew(s.Ledger, p.Wallet)
}

// applyRegisterWallet registers an approved request's wallet with the
// register_wallet effect.
func (s *State) applyRegisterWallet(r people.Request, t int64) error {
	p, err := DecodeRegisterWallet(r.Payload)
	if err != nil {
		return err // cannot happen: checked when filed and when approved
	}
	_, _, err = s.applyCustody(RegisterWallet{Wallet: p.Wallet}, t)
	return err
}
