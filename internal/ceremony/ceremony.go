// Package ceremony prepares the offline signing ceremonies that move coins
// between kinko's wallets: a refill of the hot wallet from cold when the hot
// share falls below its target, a sweep to cold when it rises above the cap.
// It builds the standard BIP174 PSBT and the journal command that registers
// it (reserving its inputs) before anyone signs.
package ceremony

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/reserves"
	"kinko/internal/wallet"
	"kinko/internal/withdraw"
)

// Errors of planning.
var (
	// ErrNothingToDo reports tiers already within their bounds.
	ErrNothingToDo = errors.New("ceremony: hot wallet is within its target and cap")
	// ErrInFlight reports a ceremony prepared and not yet confirmed.
	ErrInFlight = errors.New("ceremony: a ceremony between these wallets is already in flight")
	// ErrNoCoins reports a paying wallet without enough available outputs.
	ErrNoCoins = errors.New("ceremony: not enough available outputs to pay from")
)

// Plan is a prepared ceremony: the command to journal and the PSBT to sign.
type Plan struct {
	Command core.PrepareCeremony
	PSBT    *psbt.Packet
	Amount  uint64
}

// walletOf returns the first wallet of a kind for an asset.
func walletOf(st *core.State, set *wallet.Set, kind custody.WalletKind) (custody.Wallet, *wallet.Named, error) {
	for _, w := range st.Custody.Wallets() {
		if w.Kind != kind {
			continue
		}
		for _, n := range set.Wallets {
			if n.ID == w.ID {
				return w, n, nil
			}
		}
	}
	return custody.Wallet{}, nil, fmt.Errorf("ceremony: no %s wallet with a descriptor", kind)
}

// Tiers prepares the ceremony that brings the hot customer wallet back to
// its target share: a refill from cold below the target, a sweep to cold
// above the cap. feeRate is in satoshi per vbyte.
func Tiers(st *core.State, set *wallet.Set, p reserves.Policy, feeRate int64, id, actor string) (*Plan, error) {
	cold, coldN, err := walletOf(st, set, custody.ColdCustomer)
	if err != nil {
		return nil, err
	}
	hot, hotN, err := walletOf(st, set, custody.HotCustomer)
	if err != nil {
		return nil, err
	}
	rep, err := reserves.Compute(st.Ledger, st.Custody, p, nil, st.Seq(), st.Time())
	if err != nil {
		return nil, err
	}
	var row *reserves.Row
	a, _ := st.Ledger.Asset(cold.Asset)
	for i := range rep.Rows {
		if rep.Rows[i].Asset == a.Code {
			row = &rep.Rows[i]
		}
	}
	if row == nil {
		return nil, fmt.Errorf("ceremony: no reserves row for %s", a.Code)
	}
	from, fromN, to, toN, purpose := cold, coldN, hot, hotN, custody.Refill
	amount, fits := row.Refill.Uint64()
	if row.Refill.IsZero() {
		from, fromN, to, toN, purpose = hot, hotN, cold, coldN, custody.Sweep
		amount, fits = row.Sweep.Uint64()
	}
	if !fits || amount == 0 {
		return nil, ErrNothingToDo
	}
	for _, c := range st.Custody.Ceremonies() {
		// An Ethereum ceremony (a SafeTx) spends no output of ours.
		if c.State == custody.CeremonyPrepared && c.Safe == nil {
			return nil, fmt.Errorf("%w: %s", ErrInFlight, c.ID)
		}
	}
	// Coins to spend: the oldest available outputs of the paying wallet
	// until they cover the amount and a fee.
	utxos, inputs := Coins(st.Custody.UTXOs(from.ID, custody.UTXOAvailable), fromN, int64(amount), feeRate, 2)
	var total uint64
	for _, u := range utxos {
		total += uint64(u.Value)
	}
	reserve := uint64(feeRate) * 400
	if total <= reserve {
		return nil, ErrNoCoins
	}
	if total < amount+reserve {
		// Move what there is: the ledger may count coins still arriving.
		amount = total - reserve
	}
	pk, err := toN.Desc().PkScript(0, to.NextIndex)
	if err != nil {
		return nil, err
	}
	pkt, err := wallet.BuildWith(utxos, []*wire.TxOut{wire.NewTxOut(int64(amount), pk)}, fromN, from.NextChange, feeRate, buildOptions(st, from.Asset))
	if err != nil {
		return nil, err
	}
	b64, err := wallet.Encode(pkt)
	if err != nil {
		return nil, err
	}
	c := custody.Ceremony{ID: id, Purpose: purpose, TxID: pkt.UnsignedTx.TxHash(), Inputs: inputs, PSBT: b64, Actor: actor,
		Outputs: []custody.CeremonyOutput{{Vout: 0, Wallet: to.ID, Branch: 0, Index: to.NextIndex, Amount: amount}}}
	if len(pkt.UnsignedTx.TxOut) == 2 {
		c.Outputs = append(c.Outputs, custody.CeremonyOutput{Vout: 1, Wallet: from.ID, Branch: 1, Index: from.NextChange, Amount: uint64(pkt.UnsignedTx.TxOut[1].Value)})
	}
	return &Plan{Command: core.PrepareCeremony{Ceremony: c}, PSBT: pkt, Amount: amount}, nil
}

// buildOptions sets the locktime of a ceremony's transaction against fee
// sniping, as Core does (wallet.AntiFeeSniping), from the chain tip the
// journal holds for the asset. The previous transactions of the inputs
// are not in the journal (a deposit is journaled by outpoint and amount):
// `kinko ceremony` adds them from a node before writing the request
// (wallet.AttachPrevTxs).
func buildOptions(st *core.State, asset ledger.AssetID) wallet.BuildOptions {
	return wallet.BuildOptions{LockTime: wallet.AntiFeeSniping(st.Checkpoints[asset].Height, rand.IntN)}
}

// ColdWithdrawals prepares the cold path: one transaction from the cold
// customer wallet paying queued withdrawals (all of them, or those named),
// registered as a cold batch with its inputs reserved, for the offline
// ceremony to sign. BITPoint paid customers this way from cold storage while
// its hot wallet was out of service.
func ColdWithdrawals(st *core.State, set *wallet.Set, feeRate int64, id string, only []string) (core.ReserveBatch, *psbt.Packet, error) {
	cold, coldN, err := walletOf(st, set, custody.ColdCustomer)
	if err != nil {
		return core.ReserveBatch{}, nil, err
	}
	a, _ := st.Ledger.Asset(cold.Asset)
	want := map[string]bool{}
	for _, w := range only {
		want[w] = true
	}
	var queued []withdraw.Withdrawal
	for _, w := range st.Withdraw.Withdrawals(0) {
		if w.Status == withdraw.StatusQueued && w.Intent.Asset == a.Code && (len(want) == 0 || want[w.ID]) && len(queued) < withdraw.MaxBatchOutputs {
			queued = append(queued, w)
		}
	}
	outs, ids, need := Payouts(queued, coldN.Desc().Net)
	if len(ids) == 0 {
		return core.ReserveBatch{}, nil, ErrNothingToDo
	}
	utxos, inputs := Coins(st.Custody.UTXOs(cold.ID, custody.UTXOAvailable), coldN, need, feeRate, len(outs))
	p, err := wallet.BuildWith(utxos, outs, coldN, cold.NextChange, feeRate, buildOptions(st, cold.Asset))
	if err != nil {
		return core.ReserveBatch{}, nil, fmt.Errorf("%w: %v", ErrNoCoins, err)
	}
	b64, _ := wallet.Encode(p)
	b := NewBatch(id, a.Code, ids, inputs, p.UnsignedTx, p.UnsignedTx.TxOut, len(outs), b64, cold, true)
	return core.ReserveBatch{Batch: b}, p, nil
}

// Cover prepares a cover ceremony (custody.Cover): amount of the house's
// own coins from a house wallet (the cold house wallet, else the hot one:
// whichever set holds and has available coins) to the cold customer
// wallet, the house paying the fee, so that customers whose coins were
// taken are made whole in kind. When the house wallet holds less than
// amount and the fee, it moves what it holds less the fee: the plan's
// Amount says what customers get, and the rest is for a fixed-rate
// payout (docs/incidents.md). feeRate is in satoshi per vbyte.
func Cover(st *core.State, set *wallet.Set, amount uint64, feeRate int64, id, actor string) (*Plan, error) {
	if amount == 0 {
		return nil, ErrNothingToDo
	}
	to, toN, err := walletOf(st, set, custody.ColdCustomer)
	if err != nil {
		return nil, err
	}
	var from custody.Wallet
	var fromN *wallet.Named
	for _, k := range []custody.WalletKind{custody.ColdHouse, custody.HotHouse} {
		w, n, err := walletOf(st, set, k)
		if err == nil && len(st.Custody.UTXOs(w.ID, custody.UTXOAvailable)) > 0 {
			from, fromN = w, n
			break
		}
	}
	if fromN == nil {
		return nil, fmt.Errorf("%w: no house wallet with available coins", ErrNoCoins)
	}
	utxos, inputs := Coins(st.Custody.UTXOs(from.ID, custody.UTXOAvailable), fromN, int64(amount), feeRate, 2)
	var total uint64
	for _, u := range utxos {
		total += uint64(u.Value)
	}
	// To the cold wallet's change branch: its receive addresses are the
	// customers' deposit addresses, and this is no customer's deposit.
	pk, err := toN.Desc().PkScript(1, to.NextChange)
	if err != nil {
		return nil, err
	}
	// The house pays the fee: what its coins cannot cover after it is
	// left for the caller (a plan in another asset).
	f, err := wallet.SpendFee(utxos, []*wire.TxOut{wire.NewTxOut(0, pk)}, feeRate)
	if err != nil {
		return nil, err
	}
	fee := uint64(f)
	if total <= fee+uint64(wallet.Dust(pk)) {
		return nil, ErrNoCoins
	}
	if total < amount+fee {
		amount = total - fee
	}
	pkt, err := wallet.Build(utxos, []*wire.TxOut{wire.NewTxOut(int64(amount), pk)}, fromN, from.NextChange, feeRate)
	if err != nil {
		return nil, err
	}
	b64, err := wallet.Encode(pkt)
	if err != nil {
		return nil, err
	}
	c := custody.Ceremony{ID: id, Purpose: custody.Cover, TxID: pkt.UnsignedTx.TxHash(), Inputs: inputs, PSBT: b64, Actor: actor,
		Outputs: []custody.CeremonyOutput{{Vout: 0, Wallet: to.ID, Branch: 1, Index: to.NextChange, Amount: amount}}}
	if len(pkt.UnsignedTx.TxOut) == 2 {
		c.Outputs = append(c.Outputs, custody.CeremonyOutput{Vout: 1, Wallet: from.ID, Branch: 1, Index: from.NextChange, Amount: uint64(pkt.UnsignedTx.TxOut[1].Value)})
	}
	return &Plan{Command: core.PrepareCeremony{Ceremony: c}, PSBT: pkt, Amount: amount}, nil
}
