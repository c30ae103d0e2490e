package ceremony

import (
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/anchor"
	"kinko/internal/custody"
	"kinko/internal/wallet"
	"kinko/internal/withdraw"
)

// Payouts turns withdrawals into transaction outputs, skipping any whose
// address is not of net or whose amount no Bitcoin output holds. It returns the outputs, the ids they pay and their
// total.
func Payouts(ws []withdraw.Withdrawal, net *chaincfg.Params) ([]*wire.TxOut, []string, int64) {
	var outs []*wire.TxOut
	var ids []string
	var total int64
	for _, w := range ws {
		a, err := btcutil.DecodeAddress(w.Intent.Address, net)
		if err != nil || !a.IsForNet(net) {
			continue
		}
		v, fits := w.Intent.Amount.Int64()
		if !fits || total+v < total {
			continue // no Bitcoin output holds it
		}
		pk, _ := txscript.PayToAddrScript(a)
		outs = append(outs, wire.NewTxOut(v, pk))
		ids = append(ids, w.ID)
		total += v
	}
	return outs, ids, total
}

// WithAnchor adds the anchor of a head of the journal's tree after the
// payouts (before any change): an OP_RETURN output of 0 sat. It returns the
// outputs and the batch's record of the anchor.
func WithAnchor(outs []*wire.TxOut, a anchor.Anchor) ([]*wire.TxOut, *withdraw.Anchor) {
	rec := &withdraw.Anchor{Vout: uint32(len(outs)), Size: a.Size, Root: a.Root}
	return append(outs, a.Output()), rec
}

// Coins picks available outputs of a wallet, in the given order, until
// they cover need and about the fee of a transaction with nOuts outputs
// (Build then computes the exact fee from the real scripts).
func Coins(utxos []custody.UTXO, w *wallet.Named, need, feeRate int64, nOuts int) ([]wallet.UTXO, []custody.Outpoint) {
	var ins []wallet.UTXO
	var ops []custody.Outpoint
	var have int64
	for _, u := range utxos {
		if have >= need+feeRate*int64(200+43*nOuts) || len(ins) == custody.MaxCeremonyInputs {
			break
		}
		ins = append(ins, wallet.UTXO{OutPoint: wire.OutPoint{Hash: chainhash.Hash(u.Outpoint.TxID), Index: u.Outpoint.Vout}, Value: int64(u.Amount), Wallet: w, Branch: u.Branch, Index: u.Index})
		ops = append(ops, u.Outpoint)
		have += int64(u.Amount)
	}
	return ins, ops
}

// NewBatch makes the batch record of a built PSBT paying ids, with the
// change (if any, the last output) to payer's next change index.
func NewBatch(id, asset string, ids []string, inputs []custody.Outpoint, p interface {
	TxHash() chainhash.Hash
}, outs []*wire.TxOut, nPay int, b64 string, payer custody.Wallet, cold bool) withdraw.Batch {
	b := withdraw.Batch{ID: id, Asset: asset, Withdrawals: ids, Inputs: inputs, TxID: p.TxHash(), PSBT: b64, Cold: cold}
	if n := len(outs); n == nPay+1 {
		b.Change = &custody.CeremonyOutput{Vout: uint32(n - 1), Wallet: payer.ID, Branch: 1, Index: payer.NextChange, Amount: uint64(outs[n-1].Value)}
	}
	return b
}
