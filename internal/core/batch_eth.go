package core

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"kinko/internal/chain/eth/safe"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/withdraw"
)

// maxSafeData bounds a journaled SafeTx's calldata (hex): a batch of
// MaxBatchOutputs transfers is 85 bytes an entry.
const maxSafeData = 64 << 10

// maxEthTx bounds a journaled signed Ethereum transaction (hex).
const maxEthTx = 256 << 10

// SafeTxOf returns the SafeTx a journaled Ether batch describes, with the
// chain id and Safe address of its EIP-712 domain.
func SafeTxOf(sb *withdraw.SafeBatch) (*safe.SafeTx, *big.Int, common.Address, error) {
	bad := func(why string) error { return fmt.Errorf("%w: SafeTx: %s", ErrCommandInvalid, why) }
	addr := func(s string) (common.Address, bool) {
		if len(s) != 42 || !strings.HasPrefix(s, "0x") || !common.IsHexAddress(s) {
			return common.Address{}, false
		}
		a := common.HexToAddress(s)
		return a, a != (common.Address{})
	}
	sa, ok := addr(sb.Safe)
	if !ok {
		return nil, nil, common.Address{}, bad("the Safe's address")
	}
	to, ok := addr(sb.To)
	if !ok {
		return nil, nil, common.Address{}, bad("to")
	}
	v, ok := new(big.Int).SetString(sb.Value, 10)
	if !ok || v.Sign() < 0 || v.BitLen() > 256 || v.String() != sb.Value {
		return nil, nil, common.Address{}, bad("value")
	}
	if len(sb.Data) > maxSafeData || !strings.HasPrefix(sb.Data, "0x") {
		return nil, nil, common.Address{}, bad("data")
	}
	data, err := hex.DecodeString(sb.Data[2:])
	if err != nil {
		return nil, nil, common.Address{}, bad("data")
	}
	if sb.ChainID == 0 || sb.Operation > uint8(safe.OpDelegateCall) {
		return nil, nil, common.Address{}, bad("chain id or operation")
	}
	// safeTxGas is not journaled: it is the rule's for the SafeTx's calls
	// (safe.CallGas each), so that a failing call uses the Safe's nonce.
	calls := 1
	if sb.Operation == uint8(safe.OpDelegateCall) {
		cs, err := safe.DecodeMultiSend(data)
		if err != nil {
			return nil, nil, common.Address{}, bad("data: " + err.Error())
		}
		calls = len(cs)
	}
	tx := &safe.SafeTx{To: to, Value: v, Data: data, Operation: safe.Operation(sb.Operation),
		SafeTxGas: safe.SafeTxGasFor(calls), BaseGas: new(big.Int), GasPrice: new(big.Int), Nonce: new(big.Int).SetUint64(sb.Nonce)}
	return tx, new(big.Int).SetUint64(sb.ChainID), sa, nil
}

// checkSafeBatch checks an Ether batch against its own SafeTx: no inputs,
// change, anchor or PSBT; its TxID the SafeTx's EIP-712 hash; and what the
// SafeTx makes the Safe do exactly the batch's withdrawals, in order, each
// a plain transfer of its amount to its address (a DELEGATECALL only to a
// MultiSendCallOnly batch of such CALLs; safe.Calls). The Safe and the
// MultiSendCallOnly are not ours to check here (the state has no chain):
// the hot signer and the co-signer pin them.
func (s *State) checkSafeBatch(b withdraw.Batch) error {
	bad := func(why string) error { return fmt.Errorf("%w: batch %s: %s", ErrCommandInvalid, b.ID, why) }
	if len(b.Inputs) != 0 || b.Change != nil || b.Anchor != nil || b.PSBT != "" || b.Cold {
		return bad("an Ether batch has no inputs, change, anchor, PSBT or cold path")
	}
	tx, chainID, sa, err := SafeTxOf(b.Safe)
	if err != nil {
		return err
	}
	if _, err := gasBound(b.Safe); err != nil {
		return bad(err.Error())
	}
	h, err := tx.Hash(chainID, sa)
	if err != nil || [32]byte(h) != b.TxID {
		return bad("its txid is not the SafeTx's hash")
	}
	calls, err := safe.Calls(tx, tx.To)
	if err != nil {
		return bad(err.Error())
	}
	if len(calls) != len(b.Withdrawals) || (len(calls) > 1) != (tx.Operation == safe.OpDelegateCall) {
		return bad(fmt.Sprintf("the SafeTx makes %d calls for %d withdrawals", len(calls), len(b.Withdrawals)))
	}
	if need := safe.ExecGasFor(len(calls)); b.Safe.GasLimit < need {
		return bad(fmt.Sprintf("gas limit %d is below the %d its execTransaction needs to pass the Safe's check (GS010)", b.Safe.GasLimit, need))
	}
	for i, id := range b.Withdrawals {
		wd, ok := s.Withdraw.Get(id)
		if !ok {
			return fmt.Errorf("%w: %s", withdraw.ErrNotQueued, id)
		}
		to, err := hexAddress(wd.Intent.Address)
		c := calls[i]
		if err != nil || c.To != to || len(c.Data) != 0 || c.Value.Cmp(wd.Intent.Amount.Big()) != 0 {
			return bad(fmt.Sprintf("call %d is not withdrawal %s's payment", i, id))
		}
	}
	return nil
}

// maxGasLimit bounds a journaled gas limit: far above any block's.
const maxGasLimit = 1 << 40

// gasBound checks an Ether batch's journaled gas limit and max fee per
// gas and returns their product, the most gas the batch may spend, wei.
func gasBound(sb *withdraw.SafeBatch) (*big.Int, error) {
	if sb.GasLimit < intrinsicGas || sb.GasLimit > maxGasLimit {
		return nil, fmt.Errorf("gas limit %d is not between %d and %d", sb.GasLimit, intrinsicGas, uint64(maxGasLimit))
	}
	fee, ok := decimal(sb.MaxFeePerGas)
	if !ok || fee.Sign() == 0 {
		return nil, fmt.Errorf("max fee per gas %q is not a positive decimal number of wei", sb.MaxFeePerGas)
	}
	bound := new(big.Int).Mul(new(big.Int).SetUint64(sb.GasLimit), fee)
	if bound.BitLen() > 128 {
		return nil, fmt.Errorf("gas limit × max fee per gas %s wei passes 2^128", bound)
	}
	return bound, nil
}

// hexAddress reads a 0x address of a withdrawal intent.
func hexAddress(s string) (common.Address, error) {
	if len(s) != 42 || !strings.HasPrefix(s, "0x") || !common.IsHexAddress(s) {
		return common.Address{}, fmt.Errorf("%q is not an Ethereum address", s)
	}
	return common.HexToAddress(s), nil
}

// checkSafeSigned checks that raw (hex) is a signed Ethereum transaction
// on the batch's chain calling execTransaction of the batch's SafeTx on
// its Safe, and returns its hash.
func checkSafeSigned(b *withdraw.Batch, raw string) (common.Hash, error) {
	bad := fmt.Errorf("%w: the signed transaction is not the batch's execTransaction", ErrCommandInvalid)
	if len(raw) > maxEthTx {
		return common.Hash{}, bad
	}
	bin, err := hex.DecodeString(raw)
	if err != nil {
		return common.Hash{}, bad
	}
	var tx types.Transaction
	if err := tx.UnmarshalBinary(bin); err != nil || tx.To() == nil {
		return common.Hash{}, bad
	}
	_, chainID, sa, err := SafeTxOf(b.Safe)
	if err != nil {
		return common.Hash{}, err
	}
	if *tx.To() != sa || tx.ChainId().Cmp(chainID) != 0 || tx.Value().Sign() != 0 {
		return common.Hash{}, bad
	}
	if tx.Gas() != b.Safe.GasLimit || tx.GasFeeCap().String() != b.Safe.MaxFeePerGas || tx.GasTipCap().Cmp(tx.GasFeeCap()) > 0 {
		return common.Hash{}, fmt.Errorf("%w: it is sent with gas %d at most %s wei a gas, the batch journaled gas %d at most %s", bad, tx.Gas(), tx.GasFeeCap(), b.Safe.GasLimit, b.Safe.MaxFeePerGas)
	}
	got, _, err := safe.DecodeExecTransaction(tx.Data())
	if err != nil {
		return common.Hash{}, fmt.Errorf("%w: %w", bad, err)
	}
	// execTransaction carries no nonce: the Safe executes at its own.
	got.Nonce = new(big.Int).SetUint64(b.Safe.Nonce)
	if h, err := got.Hash(chainID, sa); err != nil || [32]byte(h) != b.TxID {
		return common.Hash{}, fmt.Errorf("%w: it executes SafeTx %s, the batch's is %x (%v)", bad, h, b.TxID, err)
	}
	if _, err := types.Sender(types.LatestSignerForChainID(chainID), &tx); err != nil {
		return common.Hash{}, bad
	}
	return tx.Hash(), nil
}

// hotWalletOf returns the hot-customer wallet registered for an asset.
func (s *State) hotWalletOf(code string) (custody.Wallet, bool) {
	a, ok := s.Ledger.AssetByCode(code)
	if !ok {
		return custody.Wallet{}, false
	}
	for _, w := range s.Custody.Wallets() {
		if w.Asset == a.ID && w.Kind == custody.HotCustomer {
			return w, true
		}
	}
	return custody.Wallet{}, false
}

// reserveSafeBatch registers an Ether batch before anyone signs its
// SafeTx: the withdrawals queued and of its asset, the SafeTx paying
// exactly them, a hot wallet of the asset registered to pay from.
func (s *State) reserveSafeBatch(b withdraw.Batch) error {
	w := s.Withdraw
	if _, ok := w.Batch(b.ID); ok {
		return withdraw.ErrBatchExists
	}
	if _, ok := w.BatchByTx(b.TxID); ok {
		return fmt.Errorf("%w: batch %s: another batch has its SafeTx", ErrCommandInvalid, b.ID)
	}
	if _, ok := s.hotWalletOf(b.Asset); !ok {
		return fmt.Errorf("%w: batch %s: no hot wallet of %s", ErrCommandInvalid, b.ID, b.Asset)
	}
	seen := map[string]bool{}
	for _, id := range b.Withdrawals {
		wd, ok := w.Get(id)
		if !ok || wd.Status != withdraw.StatusQueued || wd.Intent.Asset != b.Asset || seen[id] {
			return fmt.Errorf("%w: %s", withdraw.ErrNotQueued, id)
		}
		seen[id] = true
	}
	if err := s.checkSafeBatch(b); err != nil {
		return err
	}
	for _, id := range b.Withdrawals {
		w.SetStatus(id, withdraw.StatusSigning, "in batch "+b.ID)
	}
	sb := *b.Safe
	b.Safe = &sb
	b.Status, b.RawTx, b.Reason = withdraw.BatchSigning, "", ""
	w.AddBatch(b)
	return nil
}

// confirmSafeBatch records an Ether batch's SafeTx executed: each hold
// posted, the held amount leaving with the hot wallet's ether, each
// withdrawal fee to the house; and, when reported, the gas its
// execTransaction spent leaving the house gas account, charged to equity
// (checked against the journaled transaction's gas limit × fee cap). All
// of it is one linked chain: nothing is half-done.
func (s *State) confirmSafeBatch(b *withdraw.Batch, c ConfirmBatch, t int64) error {
	hot, ok := s.hotWalletOf(b.Asset)
	if !ok {
		return fmt.Errorf("%w: no hot wallet of %s", ErrCommandInvalid, b.Asset)
	}
	ts, _, err := s.gasTransfers(b, c.Gas)
	if err != nil {
		return err
	}
	for _, id := range b.Withdrawals {
		wd, _ := s.Withdraw.Get(id)
		hr, _ := s.Ledger.Transfer(ledger.ID{Hi: wd.HoldHi, Lo: wd.HoldLo})
		ts = append(ts, s.payTransfers(wd, hr.Credit, hot.Account())...)
	}
	if err := s.applyTransfers(ts, t); err != nil {
		return err
	}
	for _, id := range b.Withdrawals {
		s.Withdraw.SetStatus(id, withdraw.StatusDone, fmt.Sprintf("executed in block %d", c.Height))
	}
	b.Status, b.Height = withdraw.BatchConfirmed, c.Height
	if c.Gas != nil {
		g := *c.Gas
		b.Gas = &g
	}
	return nil
}
