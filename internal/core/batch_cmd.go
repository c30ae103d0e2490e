package core

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/anchor"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/withdraw"
)

// Command kinds of withdrawal batches.
const (
	KindReserveBatch Kind = 44
	KindRecordSigned Kind = 45
	KindConfirmBatch Kind = 46
	KindFailBatch    Kind = 47
)

func init() {
	kindNames[KindReserveBatch] = "reserve_batch"
	kindNames[KindRecordSigned] = "record_signed"
	kindNames[KindConfirmBatch] = "confirm_batch"
	kindNames[KindFailBatch] = "fail_batch"
}

// ReserveBatch registers a transaction paying queued withdrawals and
// reserves its inputs, before anyone signs it.
type ReserveBatch struct{ Batch withdraw.Batch }

// RecordSigned journals a batch's fully signed transaction before it is
// broadcast, so a crash re-sends the same transaction.
type RecordSigned struct {
	Batch string
	RawTx string // hex
}

// ConfirmBatch records a batch's transaction in a block: holds posted,
// withdrawals done, their withdrawal fees the house's. For an Ether batch,
// Gas, when given, is what its journaled execTransaction spent from the
// house gas account (its receipt's gas used × effective gas price, exact
// wei), charged to equity with the confirmation, or alone if the batch
// was confirmed already without it (the watcher of Safe executions
// confirms without gas).
type ConfirmBatch struct {
	TxID   [32]byte
	Height int32
	Gas    *withdraw.GasSpent `json:",omitempty"`
}

// FailBatch gives up a batch whose transaction was dropped or double-spent:
// holds voided (withdrawal fees included), inputs released, withdrawals
// failed. For an Ether batch whose execTransaction was mined and reverted,
// Gas is the gas it spent all the same, recorded as ConfirmBatch's is.
type FailBatch struct {
	Batch  string
	Reason string
	Gas    *withdraw.GasSpent `json:",omitempty"`
}

func (ReserveBatch) Kind() Kind { return KindReserveBatch }
func (RecordSigned) Kind() Kind { return KindRecordSigned }
func (ConfirmBatch) Kind() Kind { return KindConfirmBatch }
func (FailBatch) Kind() Kind    { return KindFailBatch }

func (c ReserveBatch) AppendPayload(b []byte) []byte { return appendJSON(b, c) }
func (c RecordSigned) AppendPayload(b []byte) []byte { return appendJSON(b, c) }
func (c ConfirmBatch) AppendPayload(b []byte) []byte { return appendJSON(b, c) }
func (c FailBatch) AppendPayload(b []byte) []byte    { return appendJSON(b, c) }

func decodeBatch(kind Kind, p []byte) (Command, bool, error) {
	var c Command
	var err error
	switch kind {
	case KindReserveBatch:
		c, err = decodeJSON[ReserveBatch](p)
	case KindRecordSigned:
		c, err = decodeJSON[RecordSigned](p)
	case KindConfirmBatch:
		c, err = decodeJSON[ConfirmBatch](p)
	case KindFailBatch:
		c, err = decodeJSON[FailBatch](p)
	default:
		return nil, false, nil
	}
	return c, true, err
}

func (s *State) applyBatch(cmd Command, t int64) (handled bool, v any, err error) {
	switch c := cmd.(type) {
	case ReserveBatch:
		return true, nil, s.reserveBatch(c.Batch, t)
	case RecordSigned:
		return true, nil, s.recordSigned(c)
	case ConfirmBatch:
		return true, nil, s.confirmBatch(c, t)
	case FailBatch:
		return true, nil, s.failBatch(c, t)
	}
	return false, nil, nil
}

func (s *State) reserveBatch(b withdraw.Batch, t int64) error {
	w := s.Withdraw
	if b.ID == "" || len(b.ID) > 64 || len(b.Withdrawals) == 0 || len(b.Withdrawals) > withdraw.MaxBatchOutputs || (b.Safe == nil && len(b.Inputs) == 0) || len(b.Inputs) > custody.MaxCeremonyInputs {
		return fmt.Errorf("%w: batch bounds", ErrCommandInvalid)
	}
	if b.Safe != nil {
		return s.reserveSafeBatch(b)
	}
	if b.Anchor != nil {
		if err := s.checkAnchor(b); err != nil {
			return err
		}
		a := *b.Anchor
		a.Time = t
		b.Anchor = &a
	}
	if _, ok := w.Batch(b.ID); ok {
		return withdraw.ErrBatchExists
	}
	var pay uint64
	seen := map[string]bool{}
	for _, id := range b.Withdrawals {
		wd, ok := w.Get(id)
		if !ok || wd.Status != withdraw.StatusQueued || wd.Intent.Asset != b.Asset || seen[id] {
			return fmt.Errorf("%w: %s", withdraw.ErrNotQueued, id)
		}
		seen[id] = true
		// A Bitcoin output holds at most 2^63-1 satoshi: a withdrawal
		// above that (a policy that let one through) is refused here,
		// before any input is reserved.
		v, fits := wd.Intent.Amount.Uint64()
		if !fits || v >= 1<<63 || pay+v >= 1<<63 {
			return fmt.Errorf("%w: withdrawal %s: %s base units do not fit a Bitcoin transaction's outputs (below 2^63 in all)", ErrCommandInvalid, id, wd.Intent.Amount)
		}
		pay += v
	}
	in, ok := s.Custody.InputTotal(b.Inputs)
	change := uint64(0)
	if b.Change != nil {
		change = b.Change.Amount
	}
	if !ok || in < pay+change {
		return fmt.Errorf("%w: inputs %d do not cover %d", ErrCommandInvalid, in, pay+change)
	}
	// All inputs from one wallet: the hot one, or for the cold path
	// (paid by the offline ceremony) the cold one.
	want := custody.HotCustomer
	if b.Cold {
		want = custody.ColdCustomer
	}
	var payer uint32
	for _, o := range b.Inputs {
		u, _ := s.Custody.UTXO(o)
		wl, ok := s.Custody.Wallet(u.Wallet)
		if !ok || wl.Kind != want || (payer != 0 && u.Wallet != payer) {
			return fmt.Errorf("%w: input %s is not the %s wallet's", ErrCommandInvalid, o, want)
		}
		payer = u.Wallet
	}
	if err := s.Custody.Reserve(b.Inputs, "batch:"+b.ID); err != nil {
		return err
	}
	if b.Change != nil {
		if err := s.Custody.TakeChange(b.Change.Wallet, b.Change.Index); err != nil {
			s.Custody.Release(b.Inputs)
			return err
		}
	}
	for _, id := range b.Withdrawals {
		w.SetStatus(id, withdraw.StatusSigning, "in batch "+b.ID)
	}
	b.Status, b.RawTx, b.Reason = withdraw.BatchSigning, "", ""
	w.AddBatch(b)
	return nil
}

// checkAnchor checks a batch's anchor against its own transaction: the
// batch's PSBT is its transaction, whose one OP_RETURN output is the
// anchor at Vout, in the anchor format, naming a tree before this entry.
// The root is the co-signer's to check against its own mirror: the state
// machine has no tree.
func (s *State) checkAnchor(b withdraw.Batch) error {
	bad := func(why string) error { return fmt.Errorf("%w: batch %s: anchor: %s", ErrCommandInvalid, b.ID, why) }
	if len(b.PSBT) > maxBatchPSBT {
		return bad("the PSBT is too large")
	}
	p, err := psbt.NewFromRawBytes(strings.NewReader(b.PSBT), true)
	if err != nil {
		return bad("the PSBT does not decode")
	}
	if [32]byte(p.UnsignedTx.TxHash()) != b.TxID {
		return bad("the PSBT is not the batch's transaction")
	}
	a, vout, err := anchor.Find(p.UnsignedTx)
	if err != nil {
		return bad(err.Error())
	}
	if vout != b.Anchor.Vout || a.Size != b.Anchor.Size || a.Root != b.Anchor.Root {
		return bad(fmt.Sprintf("the transaction anchors %d entries at output %d, the batch says %d at output %d", a.Size, vout, b.Anchor.Size, b.Anchor.Vout))
	}
	if a.Size >= s.seq {
		return bad(fmt.Sprintf("it names %d entries; the journal had %d before this batch", a.Size, s.seq-1))
	}
	return nil
}

// maxBatchPSBT bounds a batch's PSBT (base64) that apply decodes.
const maxBatchPSBT = 4 << 20

func (s *State) recordSigned(c RecordSigned) error {
	b, ok := s.Withdraw.Batch(c.Batch)
	if !ok {
		return withdraw.ErrBatchUnknown
	}
	if b.Status != withdraw.BatchSigning && b.Status != withdraw.BatchBroadcast {
		return withdraw.ErrBatchState
	}
	if b.Safe != nil {
		h, err := checkSafeSigned(b, c.RawTx)
		if err != nil {
			return err
		}
		b.RawTx, b.Status = c.RawTx, withdraw.BatchBroadcast
		for _, id := range b.Withdrawals {
			s.Withdraw.SetStatus(id, withdraw.StatusBroadcast, "transaction "+h.Hex())
		}
		return nil
	}
	raw, err := hex.DecodeString(c.RawTx)
	tx := wire.NewMsgTx(2)
	if err == nil {
		err = tx.Deserialize(bytes.NewReader(raw))
	}
	if err != nil || [32]byte(tx.TxHash()) != b.TxID {
		return fmt.Errorf("%w: the signed transaction is not the batch's", ErrCommandInvalid)
	}
	b.RawTx, b.Status = c.RawTx, withdraw.BatchBroadcast
	for _, id := range b.Withdrawals {
		s.Withdraw.SetStatus(id, withdraw.StatusBroadcast, "transaction "+tx.TxHash().String())
	}
	return nil
}

func (s *State) confirmBatch(c ConfirmBatch, t int64) error {
	b, ok := s.Withdraw.BatchByTx(c.TxID)
	if !ok {
		return withdraw.ErrBatchUnknown
	}
	if b.Status == withdraw.BatchConfirmed {
		// Confirmed again: only an Ether batch's gas not yet recorded.
		return s.recordGasOnly(b, c.Gas, t)
	}
	if b.Status == withdraw.BatchFailed {
		return withdraw.ErrBatchState
	}
	if b.Safe != nil {
		return s.confirmSafeBatch(b, c, t)
	}
	if c.Gas != nil {
		return fmt.Errorf("%w: batch %s: gas is recorded for an Ether batch only", ErrGasInvalid, b.ID)
	}
	in, _ := s.Custody.InputTotal(b.Inputs)
	var pay, change uint64
	var ts []ledger.Transfer
	u, _ := s.Custody.UTXO(b.Inputs[0])
	payer, _ := s.Custody.Wallet(u.Wallet)
	for _, id := range b.Withdrawals {
		wd, _ := s.Withdraw.Get(id)
		v, _ := wd.Intent.Amount.Uint64() // below 2^63 in all: checked at the reserve
		pay += v
		hr, _ := s.Ledger.Transfer(ledger.ID{Hi: wd.HoldHi, Lo: wd.HoldLo})
		// The hold is posted (available -> held), then the held amount
		// leaves with the paying wallet's coins.
		ts = append(ts, s.payTransfers(wd, hr.Credit, payer.Account())...)
	}
	hot := payer
	var outs []custody.UTXO
	if b.Change != nil {
		change = b.Change.Amount
		outs = append(outs, custody.UTXO{Outpoint: custody.Outpoint{TxID: b.TxID, Vout: b.Change.Vout}, Wallet: b.Change.Wallet, Branch: 1, Index: b.Change.Index, Amount: change, State: custody.UTXOAvailable})
	}
	if fee := in - pay - change; fee > 0 {
		eq := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: hot.Asset, Kind: ledger.KindEquity}
		s.Ledger.CreateAccounts([]ledger.AccountKey{eq}, nil)
		ts = append(ts, ledger.Transfer{ID: holdID("fee:" + b.ID), Debit: eq, Credit: hot.Account(), Amount: ledger.AmountOf(fee), Code: custody.CodeNetworkFee})
	}
	ts[len(ts)-1].Flags &^= ledger.FlagLinked
	if res := s.Ledger.CreateTransfers(ts, t, nil); len(res) > 0 {
		for _, r := range res {
			if !r.Code.Succeeded() {
				return &ledger.EventError{Index: r.Index, Code: r.Code}
			}
		}
	}
	s.Custody.Spend(b.Inputs, outs)
	for _, id := range b.Withdrawals {
		s.Withdraw.SetStatus(id, withdraw.StatusDone, fmt.Sprintf("confirmed at height %d", c.Height))
	}
	b.Status, b.Height = withdraw.BatchConfirmed, c.Height
	return nil
}

func (s *State) failBatch(c FailBatch, t int64) error {
	id, reason := c.Batch, c.Reason
	b, ok := s.Withdraw.Batch(id)
	if !ok {
		return withdraw.ErrBatchUnknown
	}
	if b.Status == withdraw.BatchFailed && c.Gas != nil {
		// Failed already: only an Ether batch's gas not yet recorded.
		return s.recordGasOnly(b, c.Gas, t)
	}
	if b.Status == withdraw.BatchConfirmed || b.Status == withdraw.BatchFailed {
		return withdraw.ErrBatchState
	}
	gas, _, err := s.gasTransfers(b, c.Gas)
	if err != nil {
		return err
	}
	if len(gas) > 0 {
		// The gas spent and the holds voided are one chain: all or none.
		ts := gas
		for _, wid := range b.Withdrawals {
			wd, _ := s.Withdraw.Get(wid)
			ts = append(ts, ledger.Transfer{ID: holdID("void:" + wid), PendingID: ledger.ID{Hi: wd.HoldHi, Lo: wd.HoldLo}, Flags: ledger.FlagVoidPending, Code: CodeWithdrawal})
		}
		if err := s.applyTransfers(ts, t); err != nil {
			return err
		}
		for _, wid := range b.Withdrawals {
			s.Withdraw.SetStatus(wid, withdraw.StatusFailed, reason)
		}
		g := *c.Gas
		b.Status, b.Reason, b.Gas = withdraw.BatchFailed, reason, &g
		return nil
	}
	var ts []ledger.Transfer
	for _, wid := range b.Withdrawals {
		wd, _ := s.Withdraw.Get(wid)
		ts = append(ts, ledger.Transfer{ID: holdID("void:" + wid), PendingID: ledger.ID{Hi: wd.HoldHi, Lo: wd.HoldLo}, Flags: ledger.FlagVoidPending, Code: CodeWithdrawal})
	}
	if res := s.Ledger.CreateTransfers(ts, t, nil); len(res) > 0 && !res[0].Code.Succeeded() {
		return &ledger.EventError{Index: res[0].Index, Code: res[0].Code}
	}
	s.Custody.Release(b.Inputs)
	for _, wid := range b.Withdrawals {
		s.Withdraw.SetStatus(wid, withdraw.StatusFailed, reason)
	}
	b.Status, b.Reason = withdraw.BatchFailed, reason
	return nil
}

// recordGasOnly records the gas of an Ether batch settled already (a
// repeated settlement with gas): nothing when none is given or the same
// is recorded, the gas transfer alone otherwise.
func (s *State) recordGasOnly(b *withdraw.Batch, g *withdraw.GasSpent, t int64) error {
	ts, _, err := s.gasTransfers(b, g)
	if err != nil || len(ts) == 0 {
		return err
	}
	if err := s.applyTransfers(ts, t); err != nil {
		return err
	}
	gg := *g
	b.Gas = &gg
	return nil
}

// CodeWithdrawalFee marks the ledger transfer of a withdrawal's fee from
// the customer's held account to the house's (its fee revenue).
const CodeWithdrawalFee = 31

// payTransfers are a paid withdrawal's ledger transfers: its hold (the
// amount and the fee) posted, the amount leaving with the paying
// wallet's coins, the fee to the house's account of the asset.
func (s *State) payTransfers(wd withdraw.Withdrawal, held, wallet ledger.AccountKey) []ledger.Transfer {
	ts := []ledger.Transfer{
		{ID: holdID("post:" + wd.ID), PendingID: ledger.ID{Hi: wd.HoldHi, Lo: wd.HoldLo}, Flags: ledger.FlagPostPending | ledger.FlagLinked, Code: CodeWithdrawal},
		{ID: holdID("pay:" + wd.ID), Debit: held, Credit: wallet, Amount: wd.Intent.Amount.Ledger(), Flags: ledger.FlagLinked, Code: CodeWithdrawal}}
	if !wd.Fee.IsZero() {
		h := house(wallet.Asset)
		s.Ledger.CreateAccounts([]ledger.AccountKey{h}, nil)
		ts = append(ts, ledger.Transfer{ID: holdID("withdrawal-fee:" + wd.ID), Debit: held, Credit: h, Amount: wd.Fee.Ledger(), Flags: ledger.FlagLinked, Code: CodeWithdrawalFee})
	}
	return ts
}

// walletByAccount returns the registered wallet of a ledger account.
func (s *State) walletByAccount(k ledger.AccountKey) (custody.Wallet, bool) {
	for _, w := range s.Custody.Wallets() {
		if w.Account() == k {
			return w, true
		}
	}
	return custody.Wallet{}, false
}
