package core

import (
	"errors"

	"kinko/internal/custody"
	"kinko/internal/people"
)

// KindRegisterTokenRequest is the request kind that lists an ERC-20 token
// as an asset's deposits once approved: asked by an admin, approved by
// another admin, each signed, as a wallet is (KindRegisterWalletRequest).
// Its payload binds a registered chain asset (its own code and decimals,
// created as any asset is) to one contract on one EIP-155 chain
// (custody.Token); custody checks it strictly when the request is filed,
// when it is approved and when it applies, and refuses a bad one with
// nothing registered. The deposit watcher of the token asset credits only
// Transfer logs of that contract, to the deposit addresses of the Safe
// wallets of that chain (docs/ethereum.md).
//
// A token bound to the wrong contract would credit what anyone can mint:
// so it takes two people, and only the journal's binding is read by the
// watcher and the API.
const KindRegisterTokenRequest people.RequestKind = "register_token"

// ErrTokenWithdrawal refuses a withdrawal of a token asset: tokens are
// credited from deposits, and no batch pays them out yet.
var ErrTokenWithdrawal = errors.New("token withdrawals are not built")

// RegisterTokenPayload is the payload of a register_token request.
type RegisterTokenPayload struct {
	Token custody.Token `json:"token"`
}

// DecodeRegisterToken decodes a register_token request's payload
// strictly: no unknown fields, nothing after it.
func DecodeRegisterToken(payload []byte) (RegisterTokenPayload, error) {
	var p RegisterTokenPayload
	err := decodePayload(payload, &p)
	return p, err
}

// checkRegisterToken checks a register_token request when it is filed
// and again when it is approved: two admins, a payload that decodes, and
// a token that can be registered now.
func (s *State) checkRegisterToken(r people.Request) error {
	if err := s.authorizeAdminRequest(r); err != nil {
		return err
	}
	p, err := DecodeRegisterToken(r.Payload)
	if err != nil {
		return err
	}
	return s.Custody.CheckToken(s.Ledger, p.Token)
}

// applyRegisterToken registers an approved request's token.
func (s *State) applyRegisterToken(r people.Request) error {
	p, err := DecodeRegisterToken(r.Payload)
	if err != nil {
		return err // cannot happen: checked when filed and when approved
	}
	return s.Custody.RegisterToken(s.Ledger, p.Token)
}
