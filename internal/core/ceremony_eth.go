package core

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/chain/eth/safe"
	"kinko/internal/custody"
	"kinko/internal/ethwallet"
	"kinko/internal/ethwallet/book"
	"kinko/internal/withdraw"
)

// SafeCeremonyTx returns the SafeTx an Ethereum ceremony journals, with
// the chain id and Safe address of its EIP-712 domain, read as SafeTxOf
// reads a batch's (safeTxGas the rule's).
func SafeCeremonyTx(c *custody.Ceremony) (*safe.SafeTx, *big.Int, common.Address, error) {
	if c.Safe == nil {
		return nil, nil, common.Address{}, fmt.Errorf("%w: ceremony %s has no SafeTx", ErrCommandInvalid, c.ID)
	}
	st := c.Safe
	return SafeTxOf(&withdraw.SafeBatch{ChainID: st.ChainID, Safe: st.Safe, To: st.To, Value: st.Value, Data: st.Data, Operation: st.Operation, Nonce: st.Nonce})
}

// checkSafeCeremony checks an Ethereum ceremony against its own SafeTx,
// recomputed here: its TxID the SafeTx's EIP-712 hash, and what the
// SafeTx makes the Safe do exactly the ceremony's payments, in order,
// each a plain transfer of its amount to its address (a DELEGATECALL
// only to a MultiSendCallOnly batch of such CALLs; safe.Calls). As for
// batches, the MultiSendCallOnly and the Safes' addresses are not the
// state's to check: the offline signers and the watcher pin them. The
// one address the state can check is a deposit Safe's (Ceremony.Deposit
// set): the counterfactual address of that index of the source wallet's
// descriptor, derived here from the descriptor and the SafeProxy code
// pinned in the safe package, which must be the SafeTx's domain; and
// its one payment must be to the wallet's Safe at the salt nonce named
// (the same derivation), so no other address is paid.
func checkSafeCeremony(s *State, c *custody.Ceremony) error {
	bad := func(why string) error { return fmt.Errorf("%w: ceremony %s: %s", ErrCommandInvalid, c.ID, why) }
	tx, chainID, sa, err := SafeCeremonyTx(c)
	if err != nil {
		return err
	}
	if c.Deposit != nil {
		from, err := DepositSafe(s, c.Source, uint64(c.Deposit.Index))
		if err != nil {
			return bad(err.Error())
		}
		into, _ := DepositSafe(s, c.Source, c.Deposit.SafeSalt)
		if from != sa {
			return bad(fmt.Sprintf("the SafeTx's Safe %s is not deposit address %d of wallet %d (%s)", sa.Hex(), c.Deposit.Index, c.Source, from.Hex()))
		}
		if len(c.Pays) != 1 || !strings.EqualFold(c.Pays[0].Address, into.Hex()) {
			return bad(fmt.Sprintf("a deposit Safe's sweep pays wallet %d's Safe at salt nonce %d (%s) and nothing else", c.Source, c.Deposit.SafeSalt, into.Hex()))
		}
	}
	h, err := tx.Hash(chainID, sa)
	if err != nil || [32]byte(h) != c.TxID {
		return bad("its txid is not the SafeTx's EIP-712 hash")
	}
	if c.Deposit != nil && c.Deposit.Asset != 0 {
		return checkTokenSweep(s, c, tx)
	}
	calls, err := safe.Calls(tx, tx.To)
	if err != nil {
		return bad(err.Error())
	}
	if len(calls) != len(c.Pays) || (len(calls) > 1) != (tx.Operation == safe.OpDelegateCall) {
		return bad(fmt.Sprintf("the SafeTx makes %d calls for %d payments", len(calls), len(c.Pays)))
	}
	for i, p := range c.Pays {
		to, err := hexAddress(p.Address)
		cl := calls[i]
		if err != nil || cl.To != to || len(cl.Data) != 0 || cl.Value.Cmp(p.Amount.Big()) != 0 {
			return bad(fmt.Sprintf("call %d is not payment %d (%s wei to wallet %d at %s)", i, i, p.Amount, p.Wallet, p.Address))
		}
	}
	return nil
}

// DepositSafe returns the counterfactual Safe address of the Safe
// wallet id at salt nonce salt (a deposit address's index), derived from
// its custody descriptor and the SafeProxy creation code pinned in the
// safe package, without the chain or any file (safe.ProxyArtifacts).
func DepositSafe(s *State, id uint32, salt uint64) (common.Address, error) {
	w, ok := s.Custody.Wallet(id)
	if !ok || !w.Safe() {
		return common.Address{}, fmt.Errorf("wallet %d is not a Safe wallet", id)
	}
	d, err := ethwallet.Parse(w.Descriptor)
	if err != nil {
		return common.Address{}, fmt.Errorf("wallet %d: %w", id, err)
	}
	p, err := book.Predictor(safe.ProxyArtifacts(), d)
	if err != nil {
		return common.Address{}, err
	}
	return p.AddressIndex(salt), nil
}

// transferSelector is ERC-20 transfer(address,uint256)'s.
var transferSelector = []byte{0xa9, 0x05, 0x9c, 0xbb}

// TokenTransferData is the calldata of ERC-20 transfer(to, amount), in
// its one canonical encoding.
func TokenTransferData(to common.Address, amount *big.Int) []byte {
	data := append([]byte{}, transferSelector...)
	data = append(data, common.LeftPadBytes(to.Bytes(), 32)...)
	return append(data, common.LeftPadBytes(amount.Bytes(), 32)...)
}

// checkTokenSweep checks a deposit Safe's token sweep: one CALL of no
// value to the contract bound to the token on the SafeTx's chain, its
// data exactly transfer(the payment's address, the payment's amount).
func checkTokenSweep(s *State, c *custody.Ceremony, tx *safe.SafeTx) error {
	bad := func(why string) error { return fmt.Errorf("%w: ceremony %s: %s", ErrCommandInvalid, c.ID, why) }
	tok, ok := s.Custody.Token(c.Deposit.Asset)
	if !ok || tok.ChainID != c.Safe.ChainID {
		return bad(fmt.Sprintf("asset %d is not a token bound on chain %d", c.Deposit.Asset, c.Safe.ChainID))
	}
	to, err := hexAddress(c.Pays[0].Address)
	if err != nil {
		return bad("the payment's address")
	}
	want := TokenTransferData(to, c.Pays[0].Amount.Big())
	if tx.Operation != safe.OpCall || !strings.EqualFold(tx.To.Hex(), tok.Contract) || (tx.Value != nil && tx.Value.Sign() != 0) || string(tx.Data) != string(want) {
		return bad(fmt.Sprintf("the SafeTx is not one call of %s's transfer(%s, %s)", tok.Contract, to.Hex(), c.Pays[0].Amount))
	}
	return nil
}
