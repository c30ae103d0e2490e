package api

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"

	"kinko/internal/chain"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
)

// SafeCeremonyRequest is an Ethereum ceremony (CeremonyRequest purpose
// "safe"): a refill or sweep from a Safe wallet, its SafeTx as `kinko
// ceremony safe` built it at the Safe's nonce, and each payment to a Safe
// wallet of ours, by wallet id and the address the operator names for
// it. The core recomputes the hash and the calls; the watcher of Safe
// executions checks the addresses against its pinned Safes.
type SafeCeremonyRequest struct {
	Purpose    string           `json:"purpose"` // refill or sweep
	Wallet     uint32           `json:"wallet"`  // the paying Safe wallet
	SafeTx     custody.SafeTx   `json:"safe_tx"`
	SafeTxHash string           `json:"safe_tx_hash"` // 0x hex
	Pays       []SafePayRequest `json:"pays"`
	// Deposit, on the sweep of a deposit Safe, is the index of the
	// paying wallet's deposit address whose Safe pays (safe_tx.safe) and
	// the salt nonce of the wallet's own Safe its one payment goes to.
	Deposit *DepositSweepRequest `json:"deposit,omitempty"`
}

// DepositSweepRequest names a deposit Safe's sweep (custody.DepositSweep).
type DepositSweepRequest struct {
	Index    uint32 `json:"index"`
	SafeSalt uint64 `json:"safe_salt"`
	// Asset, if set, is the code of a listed token: the sweep calls its
	// transfer; the payment's amount is in its base units.
	Asset string `json:"asset,omitempty"`
}

// SafePayRequest is one payment of a SafeCeremonyRequest: wei in decimal.
type SafePayRequest struct {
	Wallet  uint32 `json:"wallet"`
	Address string `json:"address"`
	Amount  string `json:"amount"`
}

// prepareSafeCeremony journals an Ethereum ceremony as operator.
func (s *Server) prepareSafeCeremony(r *http.Request, operator string, req CeremonyRequest) (CeremonyView, error) {
	sr := req.Safe
	if sr == nil || req.ID == "" || req.FeeRate != 0 || len(req.Withdrawals) != 0 {
		return CeremonyView{}, fmt.Errorf("%w: a Safe ceremony has an id and safe, no fee rate or withdrawals", errBadJSON)
	}
	h := strings.TrimPrefix(sr.SafeTxHash, "0x")
	hb, err := hex.DecodeString(h)
	if err != nil || len(hb) != 32 || len(sr.SafeTxHash) != 66 {
		return CeremonyView{}, fmt.Errorf("%w: safe_tx_hash is 0x and 32 bytes in hex", errBadJSON)
	}
	c := custody.Ceremony{ID: req.ID, Purpose: custody.Purpose(sr.Purpose), TxID: [32]byte(hb), Actor: operator, Source: sr.Wallet}
	if sr.Deposit != nil {
		c.Deposit = &custody.DepositSweep{Index: sr.Deposit.Index, SafeSalt: sr.Deposit.SafeSalt}
		if sr.Deposit.Asset != "" {
			var ok bool
			s.core.Read(func(st *core.State) {
				var a ledger.Asset
				a, ok = st.Ledger.AssetByCode(sr.Deposit.Asset)
				c.Deposit.Asset = a.ID
			})
			if !ok {
				return CeremonyView{}, fmt.Errorf("%w: deposit.asset %q is not a listed asset", errBadJSON, sr.Deposit.Asset)
			}
		}
	}
	st := sr.SafeTx
	c.Safe = &st
	for i, p := range sr.Pays {
		v, ok := new(big.Int).SetString(p.Amount, 10)
		a, err := chain.AmountFromBig(v)
		if !ok || err != nil || v.Sign() == 0 || v.String() != p.Amount {
			return CeremonyView{}, fmt.Errorf("%w: payment %d: amount is a positive decimal number of wei below 2^128", errBadJSON, i)
		}
		c.Pays = append(c.Pays, custody.SafePayment{Wallet: p.Wallet, Address: p.Address, Amount: a})
	}
	if _, err := s.submit(r.Context(), core.PrepareCeremony{Ceremony: c}); err != nil {
		if errors.Is(err, custody.ErrCeremonyInvalid) || errors.Is(err, custody.ErrCeremonyExists) || errors.Is(err, core.ErrCommandInvalid) {
			return CeremonyView{}, fmt.Errorf("%w: %w", errCeremonyRefused, err)
		}
		return CeremonyView{}, err
	}
	total := new(big.Int)
	for _, p := range c.Pays {
		total.Add(total, p.Amount.Big())
	}
	from := fmt.Sprintf("wallet %d", sr.Wallet)
	if sr.Deposit != nil {
		from = fmt.Sprintf("deposit Safe %s (index %d of wallet %d)", st.Safe, sr.Deposit.Index, sr.Wallet)
	}
	unit := "wei"
	if sr.Deposit != nil && sr.Deposit.Asset != "" {
		unit = sr.Deposit.Asset + " base units"
	}
	return CeremonyView{ID: c.ID, Purpose: sr.Purpose, TxID: "0x" + h,
		Summary: fmt.Sprintf("%s %s of %s %s from %s in %d payment(s), SafeTx 0x%s at nonce %d", sr.Purpose, c.ID, total, unit, from, len(c.Pays), h, st.Nonce)}, nil
}
