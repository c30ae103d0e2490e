package core

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/core/types"

	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/withdraw"
)

// Command kinds of the house gas account.
const (
	KindRegisterGasAccount Kind = 48
	KindFundGasAccount     Kind = 49
)

func init() {
	kindNames[KindRegisterGasAccount] = "register_gas_account"
	kindNames[KindFundGasAccount] = "fund_gas_account"
}

// OwnerGas owns the house gas accounts: one wallet account (debit-normal,
// the asset side) an account-model asset, standing for the Ether in the
// externally owned account that sends the Safe's execTransaction and pays
// its gas. It is the house's own money, not customers': the reserves list
// it with the house's other ledger holdings, never as backing.
const OwnerGas = ledger.OwnerHouseMin + 5

// GasAccountKey is the ledger account of an asset's house gas account.
func GasAccountKey(asset ledger.AssetID) ledger.AccountKey {
	return ledger.AccountKey{Owner: OwnerGas, Asset: asset, Kind: ledger.KindWallet}
}

// RegisterGasAccount registers the house's gas account of an
// account-model asset (ETH) by its address: the only sender whose gas the
// ledger takes from it. Given by the core's host, as house fundings are.
type RegisterGasAccount struct {
	Asset   string
	Address string // 0x, EIP-55 checksummed
}

// FundGasAccount records Ether the house paid into its gas account from
// outside (its own funds), by the transaction that paid it: the gas
// account's ledger account is debited against equity, once a
// transaction. Given by the core's host.
type FundGasAccount struct {
	Asset  string
	TxHash string        // 0x, 32 bytes, lower-case hex
	Amount ledger.Amount // wei
	// Height is the block the transaction was mined in, when the
	// recorder knows it (the watcher does): the reconciliation places the
	// funding against the block it compares by it. 0: not given.
	Height int32 `json:",omitempty"`
}

func (RegisterGasAccount) Kind() Kind { return KindRegisterGasAccount }
func (FundGasAccount) Kind() Kind     { return KindFundGasAccount }

func (c RegisterGasAccount) AppendPayload(b []byte) []byte { return appendJSON(b, c) }
func (c FundGasAccount) AppendPayload(b []byte) []byte     { return appendJSON(b, c) }

func decodeGas(kind Kind, p []byte) (Command, bool, error) {
	var c Command
	var err error
	switch kind {
	case KindRegisterGasAccount:
		c, err = decodeJSON[RegisterGasAccount](p)
	case KindFundGasAccount:
		c, err = decodeJSON[FundGasAccount](p)
	default:
		return nil, false, nil
	}
	return c, true, err
}

// Errors of the gas account.
var (
	// ErrGasAccountUnknown refuses gas, or a funding, of an asset without
	// a registered gas account.
	ErrGasAccountUnknown = errors.New("core: no gas account is registered for the asset")
	// ErrGasInvalid refuses a gas figure that is malformed, negative, not
	// the product it claims, above the journaled bound, or of another
	// transaction than the batch's journaled one.
	ErrGasInvalid = errors.New("core: gas")
	// ErrGasAccountExists refuses a second gas account of an asset.
	ErrGasAccountExists = withdraw.ErrGasAccountExists
	// ErrGasFundingExists refuses a funding transaction recorded already.
	ErrGasFundingExists = errors.New("core: that gas account funding is recorded already")
)

func (s *State) applyGas(cmd Command, t int64) (handled bool, v any, err error) {
	switch c := cmd.(type) {
	case RegisterGasAccount:
		return true, nil, s.registerGasAccount(c, t)
	case FundGasAccount:
		return true, nil, s.fundGasAccount(c, t)
	}
	return false, nil, nil
}

func (s *State) registerGasAccount(c RegisterGasAccount, t int64) error {
	a, err := s.checkGasAccount(c)
	if err != nil {
		return err
	}
	if err := s.Withdraw.AddGasAccount(withdraw.GasAccount{Asset: c.Asset, Address: c.Address, Registered: t}); err != nil {
		return err
	}
	s.Ledger.CreateAccounts([]ledger.AccountKey{GasAccountKey(a.ID)}, nil)
	return nil
}

// gasFundingID is the ledger id of a gas account's funding by a
// transaction.
func gasFundingID(asset, tx string) ledger.ID {
	id := holdID("gas-funding:" + asset + ":" + tx)
	id.Hi = 0xC3<<56 | id.Hi&(1<<56-1)
	return id
}

func (s *State) fundGasAccount(c FundGasAccount, t int64) error {
	a, ok := s.Ledger.AssetByCode(c.Asset)
	if !ok {
		return custody.ErrAssetUnknown
	}
	if _, ok := s.Withdraw.GasAccountOf(c.Asset); !ok {
		return fmt.Errorf("%w: %s", ErrGasAccountUnknown, c.Asset)
	}
	if !isTxHash(c.TxHash) {
		return fmt.Errorf("%w: funding transaction %q: a 0x hash of 64 lower-case hex digits", ErrCommandInvalid, c.TxHash)
	}
	if c.Amount.IsZero() {
		return fmt.Errorf("%w: a gas account funding of 0 wei", ErrCommandInvalid)
	}
	if c.Height < 0 {
		return fmt.Errorf("%w: a gas account funding at block %d", ErrCommandInvalid, c.Height)
	}
	id := gasFundingID(c.Asset, c.TxHash)
	if _, ok := s.Ledger.Transfer(id); ok {
		return fmt.Errorf("%w: %s", ErrGasFundingExists, c.TxHash)
	}
	eq := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: a.ID, Kind: ledger.KindEquity}
	s.Ledger.CreateAccounts([]ledger.AccountKey{eq, GasAccountKey(a.ID)}, nil)
	tr := ledger.Transfer{ID: id, Debit: GasAccountKey(a.ID), Credit: eq, Amount: c.Amount, Code: custody.CodeHouseFunding}
	if res := s.Ledger.CreateTransfers([]ledger.Transfer{tr}, t, nil); len(res) > 0 && !res[0].Code.Succeeded() {
		return &ledger.EventError{Index: 0, Code: res[0].Code}
	}
	s.Withdraw.AddGasFunding(c.Asset, withdraw.GasFunding{Tx: c.TxHash, Amount: withdraw.Amount(c.Amount), Height: c.Height})
	return nil
}

// isTxHash reports a 0x hash of 64 lower-case hex digits.
func isTxHash(s string) bool {
	if len(s) != 66 || !strings.HasPrefix(s, "0x") {
		return false
	}
	for _, r := range s[2:] {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// decimal reads a canonical decimal integer: digits only, no sign, no
// leading zero, at most 256 bits.
func decimal(s string) (*big.Int, bool) {
	if s == "" || len(s) > 78 || (len(s) > 1 && s[0] == '0') {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil, false
		}
	}
	v, ok := new(big.Int).SetString(s, 10)
	return v, ok && v.BitLen() <= 256
}

// intrinsicGas is the least gas any Ethereum transaction uses.
const intrinsicGas = 21_000

// checkGas checks the gas an Ether batch's execution spent, as reported
// from its receipt, against what the batch journaled: the receipt is of
// the batch's journaled execTransaction, sent from the asset's registered
// gas account; the gas used is at most the journaled gas limit and the
// price at most the journaled max fee per gas (those the transaction is
// sent with, checked at RecordSigned), so the wei are at most their
// product, what the co-signer counted as the fee; the wei are exactly gas
// used × price. It returns the wei and the gas account.
func (s *State) checkGas(b *withdraw.Batch, g withdraw.GasSpent) (ledger.Amount, ledger.AccountKey, error) {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: batch %s: %s", ErrGasInvalid, b.ID, fmt.Sprintf(f, a...))
	}
	if b.Safe == nil {
		return ledger.Amount{}, ledger.AccountKey{}, bad("gas is recorded for an Ether batch only")
	}
	if b.RawTx == "" {
		return ledger.Amount{}, ledger.AccountKey{}, bad("no execTransaction is journaled to have spent it")
	}
	ga, ok := s.Withdraw.GasAccountOf(b.Asset)
	a, aok := s.Ledger.AssetByCode(b.Asset)
	if !ok || !aok {
		return ledger.Amount{}, ledger.AccountKey{}, fmt.Errorf("%w: %s (batch %s)", ErrGasAccountUnknown, b.Asset, b.ID)
	}
	bin, err := hex.DecodeString(b.RawTx)
	var tx types.Transaction
	if err == nil {
		err = tx.UnmarshalBinary(bin)
	}
	if err != nil {
		return ledger.Amount{}, ledger.AccountKey{}, bad("the journaled transaction does not decode")
	}
	from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), &tx)
	if err != nil || from.Hex() != ga.Address {
		return ledger.Amount{}, ledger.AccountKey{}, bad("the journaled transaction is sent by %s, not the gas account %s", from.Hex(), ga.Address)
	}
	if !isTxHash(g.Tx) || g.Tx != tx.Hash().Hex() {
		return ledger.Amount{}, ledger.AccountKey{}, bad("transaction %q is not the journaled execTransaction %s", g.Tx, tx.Hash().Hex())
	}
	if g.GasUsed < intrinsicGas || g.GasUsed > tx.Gas() {
		return ledger.Amount{}, ledger.AccountKey{}, bad("gas used %d is outside %d to the journaled gas limit %d", g.GasUsed, intrinsicGas, tx.Gas())
	}
	price, ok := decimal(g.Price)
	if !ok {
		return ledger.Amount{}, ledger.AccountKey{}, bad("price %q is not a decimal number of wei (digits, no sign)", g.Price)
	}
	if price.Cmp(tx.GasFeeCap()) > 0 {
		return ledger.Amount{}, ledger.AccountKey{}, bad("price %s wei is above the journaled max fee per gas %s", price, tx.GasFeeCap())
	}
	wei, ok := decimal(g.Wei)
	if !ok {
		return ledger.Amount{}, ledger.AccountKey{}, bad("wei %q is not a decimal number of wei (digits, no sign)", g.Wei)
	}
	if want := new(big.Int).Mul(new(big.Int).SetUint64(g.GasUsed), price); wei.Cmp(want) != 0 {
		return ledger.Amount{}, ledger.AccountKey{}, bad("wei %s is not gas used %d × price %s = %s", wei, g.GasUsed, price, want)
	}
	bound, err := gasBound(b.Safe)
	if err != nil {
		return ledger.Amount{}, ledger.AccountKey{}, bad("%v", err)
	}
	if wei.Cmp(bound) > 0 || wei.BitLen() > 128 {
		return ledger.Amount{}, ledger.AccountKey{}, bad("%s wei is above the journaled bound %s (gas limit × max fee per gas)", wei, bound)
	}
	amt, err := ledger.ParseAmount(wei.String())
	if err != nil {
		return ledger.Amount{}, ledger.AccountKey{}, bad("%s wei: %v", wei, err)
	}
	return amt, GasAccountKey(a.ID), nil
}

// gasTransfers returns the ledger transfer of an Ether batch's gas, the
// wei leaving the house gas account charged to equity as a Bitcoin
// transaction's network fee is, or nothing when no gas is reported. A
// batch whose gas is recorded already takes the same figures again as a
// no-op (done) and refuses others.
func (s *State) gasTransfers(b *withdraw.Batch, g *withdraw.GasSpent) (ts []ledger.Transfer, done bool, err error) {
	if g == nil {
		return nil, false, nil
	}
	if b.Gas != nil {
		if *b.Gas == *g {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("%w: batch %s: its gas is recorded already (%s wei by %s)", ErrGasInvalid, b.ID, b.Gas.Wei, b.Gas.Tx)
	}
	wei, acct, err := s.checkGas(b, *g)
	if err != nil {
		return nil, false, err
	}
	eq := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: acct.Asset, Kind: ledger.KindEquity}
	s.Ledger.CreateAccounts([]ledger.AccountKey{eq, acct}, nil)
	if have, ok := s.Ledger.AvailableOf(acct); ok && have.Cmp(wei) < 0 {
		return nil, false, fmt.Errorf("%w: batch %s: the gas account holds %s wei in the ledger, the batch's gas is %s: record its funding (fund_gas_account) first", ErrGasInvalid, b.ID, have, wei)
	}
	return []ledger.Transfer{{ID: holdID("gas:" + b.ID), Debit: eq, Credit: acct, Amount: wei, Code: custody.CodeNetworkFee}}, false, nil
}

// applyTransfers creates transfers linked as one chain: all or none.
func (s *State) applyTransfers(ts []ledger.Transfer, t int64) error {
	if len(ts) == 0 {
		return nil
	}
	for i := range ts {
		ts[i].Flags |= ledger.FlagLinked
	}
	ts[len(ts)-1].Flags &^= ledger.FlagLinked
	for _, r := range s.Ledger.CreateTransfers(ts, t, nil) {
		if !r.Code.Succeeded() {
			return &ledger.EventError{Index: r.Index, Code: r.Code}
		}
	}
	return nil
}
