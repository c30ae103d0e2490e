package core

import (
	"fmt"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/people"
)

// KindRegisterGasAccountRequest is the request kind that registers an
// account-model asset's house gas account once approved: asked by an
// admin, approved by another admin, each signed, as a wallet or a token
// is (KindRegisterTokenRequest). The gas account is the only sender whose
// gas the ledger takes, and its fundings are journaled from the chain by
// the watcher: an address bound wrongly would let its holder's spending
// pass as the house's gas, so it takes two people. The payload is checked
// when the request is filed, when it is approved and when it applies
// (the same checks as RegisterGasAccount), and a bad one registers
// nothing.
const KindRegisterGasAccountRequest people.RequestKind = "register_gas_account"

// RegisterGasAccountPayload is the payload of a register_gas_account
// request: the asset's code and the account's EIP-55 address.
type RegisterGasAccountPayload struct {
	Asset   string `json:"asset"`
	Address string `json:"address"`
}

// DecodeRegisterGasAccount decodes a register_gas_account request's
// payload strictly: no unknown fields, nothing after it.
func DecodeRegisterGasAccount(payload []byte) (RegisterGasAccountPayload, error) {
	var p RegisterGasAccountPayload
	err := decodePayload(payload, &p)
	return p, err
}

// checkRegisterGasAccountRequest checks a register_gas_account request
// when it is filed and again when it is approved: an admin asked, the
// payload decodes, and the gas account can be registered now.
func (s *State) checkRegisterGasAccountRequest(r people.Request) error {
	if err := s.authorizeAdminRequest(r); err != nil {
		return err
	}
	p, err := DecodeRegisterGasAccount(r.Payload)
	if err != nil {
		return err
	}
	_, err = s.checkGasAccount(RegisterGasAccount{Asset: p.Asset, Address: p.Address})
	return err
}

// applyRegisterGasAccountRequest registers an approved request's gas
// account.
func (s *State) applyRegisterGasAccountRequest(r people.Request, t int64) error {
	p, err := DecodeRegisterGasAccount(r.Payload)
	if err != nil {
		return err // cannot happen: checked when filed and when approved
	}
	return s.registerGasAccount(RegisterGasAccount{Asset: p.Asset, Address: p.Address}, t)
}

// checkGasAccount checks a gas account can be registered now, changing
// nothing: a chain asset in the ledger without a gas account, an EIP-55
// checksummed address other than zero, a ledger account no wallet holds.
func (s *State) checkGasAccount(c RegisterGasAccount) (ledger.Asset, error) {
	a, ok := s.Ledger.AssetByCode(c.Asset)
	if !ok {
		return ledger.Asset{}, fmt.Errorf("%w: %q", custody.ErrAssetUnknown, c.Asset)
	}
	if a.Class != ledger.ClassChain {
		return ledger.Asset{}, fmt.Errorf("%w: %s is not a chain asset", ErrCommandInvalid, c.Asset)
	}
	addr, err := hexAddress(c.Address)
	if err != nil || addr == (common.Address{}) || addr.Hex() != c.Address {
		return ledger.Asset{}, fmt.Errorf("%w: gas account address %q: an EIP-55 checksummed 0x address, not zero", ErrCommandInvalid, c.Address)
	}
	if g, ok := s.Withdraw.GasAccountOf(c.Asset); ok {
		return ledger.Asset{}, fmt.Errorf("%w: %s has the gas account %s", ErrGasAccountExists, c.Asset, g.Address)
	}
	if w, ok := s.walletByAccount(GasAccountKey(a.ID)); ok {
		return ledger.Asset{}, fmt.Errorf("%w: wallet %d already has the gas account's ledger account (owner %d)", ErrCommandInvalid, w.ID, OwnerGas)
	}
	return a, nil
}

// CheckRegisterGasAccount checks, changing nothing, that a gas account
// of asset at address can be registered now: what the API asks before it
// files a register_gas_account request, so that a bad one is refused
// with nothing journaled.
func (s *State) CheckRegisterGasAccount(p RegisterGasAccountPayload) error {
	_, err := s.checkGasAccount(RegisterGasAccount{Asset: p.Asset, Address: p.Address})
	return err
}
