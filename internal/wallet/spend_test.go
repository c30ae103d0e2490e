package wallet

import (
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

type wireOutput struct {
	value    int64
	pkScript []byte
}

// spendOf returns a transaction spending prev (a made-up outpoint) and a
// fetcher that knows prev.
func spendOf(prev *wireOutput) (*wire.MsgTx, txscript.PrevOutputFetcher) {
	op := wire.OutPoint{Hash: chainhash.Hash{1, 2, 3}, Index: 0}
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&op, nil, nil))
	tx.AddTxOut(wire.NewTxOut(prev.value-1000, []byte{txscript.OP_TRUE}))
	return tx, txscript.NewCannedPrevOutputFetcher(prev.pkScript, prev.value)
}
