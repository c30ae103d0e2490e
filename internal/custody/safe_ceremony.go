package custody

import (
	"fmt"
	"strings"

	"kinko/internal/ethwallet"
	"kinko/internal/ledger"
)

// SafeTx is the Safe transaction of an Ethereum ceremony, as journaled:
// the chain id and Safe address of its EIP-712 domain and the SafeTx's
// fields. safeTxGas is not journaled (it is the rule's, one
// safe.CallGas a call: core.SafeTxOf), nor baseGas, gasPrice, gas token
// and refund receiver (all zero).
type SafeTx struct {
	ChainID   uint64 `json:"chain_id"`
	Safe      string `json:"safe"`      // 0x address of the paying Safe
	To        string `json:"to"`        // 0x address
	Value     string `json:"value"`     // wei, decimal
	Data      string `json:"data"`      // 0x hex
	Operation uint8  `json:"operation"` // 0 CALL, 1 DELEGATECALL
	Nonce     uint64 `json:"nonce"`
}

// SafePayment is one payment of an Ethereum ceremony to a Safe wallet of
// ours: the wallet's id and the address the operator names for it (the
// core has no chain: the watcher pins the wallets' Safes and explains an
// execution only if every address is the pinned Safe of its wallet), in
// wei.
type SafePayment struct {
	Wallet  uint32        `json:"wallet"`
	Address string        `json:"address"`
	Amount  ledger.Amount `json:"amount"`
}

// MaxSafePayments bounds the payments of an Ethereum ceremony.
const MaxSafePayments = 100

// prepareSafe registers an Ethereum ceremony before anyone signs it: a
// refill or sweep paid by the Safe wallet Source, each payment to another
// Safe wallet of the same asset and chain (a refill only to hot
// wallets; customers' coins only to customer wallets, the house's only
// to the house's). Nothing is reserved: the Safe's nonce orders its
// transactions. Whether Safe's SafeTx makes exactly the payments and
// has the hash TxID is the core's check (core.State.checkSafeCeremony),
// made before this.
func (s *State) prepareSafe(c Ceremony, t int64) error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: ceremony %s: %s", ErrCeremonyInvalid, c.ID, fmt.Sprintf(f, a...))
	}
	if c.ID == "" || len(c.ID) > 64 {
		return ErrCeremonyInvalid
	}
	if c.Purpose != Refill && c.Purpose != Sweep {
		return bad("purpose %q: an Ethereum ceremony is a refill or a sweep", c.Purpose)
	}
	if _, ok := s.cerIdx[c.ID]; ok {
		return ErrCeremonyExists
	}
	if c.Safe == nil || len(c.Inputs) != 0 || len(c.Outputs) != 0 || c.PSBT != "" || c.Height != 0 {
		return bad("an Ethereum ceremony has a SafeTx and no inputs, outputs or PSBT")
	}
	if c.TxID == ([32]byte{}) {
		return bad("no SafeTx hash")
	}
	if _, ok := s.cerTx[c.TxID]; ok {
		return bad("another ceremony has its SafeTx")
	}
	if len(c.Pays) == 0 || len(c.Pays) > MaxSafePayments {
		return bad("%d payments (1 to %d)", len(c.Pays), MaxSafePayments)
	}
	src, err := s.safeWallet(c.Source, c.Safe.ChainID)
	if err != nil {
		return bad("source: %v", err)
	}
	if !validAddress(c.Safe.Safe) {
		return bad("the Safe's address %q", c.Safe.Safe)
	}
	if c.Purpose == Refill && src.Kind.Hot() {
		return bad("a refill is paid by a cold wallet, not the hot wallet %d", src.ID)
	}
	if c.Deposit != nil {
		switch {
		case c.Purpose != Sweep:
			return bad("a deposit Safe is swept, not paid in a %s", c.Purpose)
		case src.Kind != ColdCustomer:
			return bad("wallet %d (%s) has no deposit addresses", src.ID, src.Kind)
		case c.Deposit.Index >= src.NextIndex:
			return bad("deposit address %d of wallet %d was never handed out (the next is %d)", c.Deposit.Index, src.ID, src.NextIndex)
		case c.Deposit.SafeSalt == uint64(c.Deposit.Index):
			return bad("deposit Safe %d swept into itself", c.Deposit.Index)
		case len(c.Pays) != 1 || c.Pays[0].Wallet != src.ID:
			return bad("a deposit Safe's sweep pays its own wallet's Safe, once")
		}
		if a := c.Deposit.Asset; a != 0 {
			if tok, ok := s.Token(a); !ok || tok.ChainID != c.Safe.ChainID {
				return bad("asset %d is not a token bound on chain %d", a, c.Safe.ChainID)
			}
		}
	}
	seen := map[uint32]bool{}
	var total ledger.Amount
	for i, p := range c.Pays {
		w, err := s.safeWallet(p.Wallet, c.Safe.ChainID)
		if err != nil {
			return bad("payment %d: %v", i, err)
		}
		switch {
		case (w.ID == src.ID && c.Deposit == nil) || seen[w.ID]:
			return bad("payment %d: wallet %d is the source or paid twice", i, w.ID)
		case w.Asset != src.Asset:
			return bad("payment %d: wallet %d is of asset %d, the source of %d", i, w.ID, w.Asset, src.Asset)
		case w.Kind.Customer() != src.Kind.Customer():
			return bad("payment %d: wallet %d (%s) and the source (%s) are not both customers' or both the house's", i, w.ID, w.Kind, src.Kind)
		case c.Purpose == Refill && w.Kind != HotCustomer && w.Kind != HotHouse:
			return bad("payment %d: a refill pays a hot wallet, not wallet %d (%s)", i, w.ID, w.Kind)
		case !validAddress(p.Address) || strings.EqualFold(p.Address, c.Safe.Safe):
			return bad("payment %d: address %q", i, p.Address)
		case p.Amount.IsZero():
			return bad("payment %d pays nothing", i)
		}
		for _, q := range c.Pays[:i] {
			if strings.EqualFold(q.Address, p.Address) {
				return bad("payment %d: address %s paid twice", i, p.Address)
			}
		}
		seen[w.ID] = true
		var over bool
		if total, over = total.Add(p.Amount); over {
			return bad("the payments pass 2^128 wei")
		}
	}
	st := *c.Safe
	c.Safe = &st
	c.Pays = append([]SafePayment(nil), c.Pays...)
	if c.Deposit != nil {
		d := *c.Deposit
		c.Deposit = &d
	}
	c.State, c.Created = CeremonyPrepared, t
	s.cerIdx[c.ID] = len(s.ceremonies)
	s.cerTx[c.TxID] = c.ID
	s.ceremonies = append(s.ceremonies, c)
	return nil
}

// safeWallet returns a registered Safe wallet on chainID.
func (s *State) safeWallet(id uint32, chainID uint64) (Wallet, error) {
	i, ok := s.walletIdx[id]
	if !ok {
		return Wallet{}, fmt.Errorf("wallet %d: %w", id, ErrWalletUnknown)
	}
	w := s.wallets[i]
	if !w.Safe() {
		return Wallet{}, fmt.Errorf("wallet %d is not a Safe wallet", id)
	}
	d, err := ethwallet.Parse(w.Descriptor)
	if err != nil {
		return Wallet{}, fmt.Errorf("wallet %d: %w", id, err)
	}
	if d.ChainID != chainID {
		return Wallet{}, fmt.Errorf("wallet %d is on chain %d, the SafeTx on %d", id, d.ChainID, chainID)
	}
	return w, nil
}

// validAddress reports a 0x-prefixed 20-byte hex address other than zero.
func validAddress(a string) bool {
	if len(a) != 42 || !strings.HasPrefix(a, "0x") || strings.Trim(a[2:], "0") == "" {
		return false
	}
	for _, r := range a[2:] {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

// confirmSafe records an Ethereum ceremony's SafeTx executed (its
// Safe's ExecutionSuccess): each payment leaves the source wallet's
// account for its wallet's, one linked chain of transfers. A payment to
// the source wallet itself (a deposit Safe's sweep into its wallet's
// Safe) moves no money between accounts: both addresses are the
// wallet's. The gas of execTransaction is paid by whoever sent it, not
// by the Safe.
func (s *State) confirmSafe(l *ledger.Ledger, c *Ceremony, height int32, t int64) error {
	src := s.wallets[s.walletIdx[c.Source]]
	ts := make([]ledger.Transfer, 0, len(c.Pays))
	for i, p := range c.Pays {
		if p.Wallet == c.Source {
			continue
		}
		w := s.wallets[s.walletIdx[p.Wallet]]
		ts = append(ts, ledger.Transfer{ID: ceremonyTransferID(c.TxID, uint64(i+1)), Debit: w.Account(), Credit: src.Account(), Amount: p.Amount, Code: CodeCeremony})
	}
	for i := 0; i < len(ts)-1; i++ {
		ts[i].Flags |= ledger.FlagLinked
	}
	if len(ts) > 0 {
		if res := l.CreateTransfers(ts, t, nil); len(res) > 0 && !res[len(res)-1].Code.Succeeded() {
			return res[len(res)-1].Code
		}
	}
	c.State, c.Height = CeremonyConfirmed, height
	return nil
}
