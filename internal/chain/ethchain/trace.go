package ethchain

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"kinko/internal/chain"
)

// Internal transfers: Ether a contract sends in a transaction is in no
// block's transactions; the node's call traces (debug_traceBlockByHash
// with geth's callTracer) tell it. Every frame below the transaction's
// own (which is the transaction's value, read from the block) that moves
// value to a watched address is a transfer: a CALL, a CREATE or CREATE2
// (to the new contract) or a SELFDESTRUCT (to its beneficiary), kept only
// if neither it nor any frame above it up to the transaction's reverted
// (its error set) and the transaction succeeded. DELEGATECALL and
// CALLCODE move no value to their target, STATICCALL none at all.

// maxTraceFrames bounds the frames one block's traces may hold (a block of
// 60M gas holds at most 60M/100 calls).
const maxTraceFrames = 1 << 20

// callFrame is one frame of geth's callTracer.
type callFrame struct {
	Type  string          `json:"type"`
	From  *common.Address `json:"from"`
	To    *common.Address `json:"to"`
	Value *hexutil.Big    `json:"value"`
	Error string          `json:"error"`
	Calls []callFrame     `json:"calls"`
}

// txTrace is one transaction's entry in debug_traceBlockByHash's answer.
type txTrace struct {
	TxHash *common.Hash `json:"txHash"`
	Result *callFrame   `json:"result"`
	Error  string       `json:"error"`
}

// TxInternal is what a transaction's call trace tells: whether the
// transaction failed (its own frame reverted) and the internal transfers
// to watched addresses it made if not.
type TxInternal struct {
	Tx        common.Hash
	Failed    bool
	Transfers []chain.Transfer
}

// DecodeTraces decodes a debug_traceBlockByHash answer (callTracer) for
// the block whose transactions are txs, in order, and returns each
// transaction's internal transfers to an address watched reports. Strict:
// an answer that is not one entry per transaction with its hash, a frame
// with bad hex, without from or to, of more than 2^128-1 wei, or of an
// unknown type with value, or more than maxTraceFrames frames, is an
// error wrapping chain.ErrChainData (ErrAmountRange too for the amount),
// and nothing is returned. A transaction the tracer could not trace is an
// error of the node, not of the chain.
func DecodeTraces(raw []byte, txs []common.Hash, watched func(string) bool) ([]TxInternal, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, fmt.Errorf("%w: no call traces", chain.ErrChainData)
	}
	var ts []txTrace
	if err := json.Unmarshal(raw, &ts); err != nil {
		return nil, fmt.Errorf("%w: call traces: %w", chain.ErrChainData, err)
	}
	if len(ts) != len(txs) {
		return nil, fmt.Errorf("%w: %d call traces for %d transactions", chain.ErrChainData, len(ts), len(txs))
	}
	out := make([]TxInternal, len(ts))
	frames := 0
	for i, t := range ts {
		if t.TxHash == nil || *t.TxHash != txs[i] {
			return nil, fmt.Errorf("%w: call trace %d is of transaction %v, not %s", chain.ErrChainData, i, t.TxHash, txs[i])
		}
		if t.Error != "" {
			return nil, fmt.Errorf("ethchain: node could not trace %s: %s", txs[i], t.Error)
		}
		if t.Result == nil {
			return nil, fmt.Errorf("%w: call trace of %s has no frame", chain.ErrChainData, txs[i])
		}
		out[i].Tx = txs[i]
		out[i].Failed = t.Result.Error != ""
		var n uint32
		for j := range t.Result.Calls {
			if err := walk(&t.Result.Calls[j], txs[i], !out[i].Failed, watched, &n, &frames, &out[i].Transfers); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// walk numbers f and its frames depth first from *n+1 and appends the
// value transfers to watched addresses of those that did not revert, ok
// false once a frame above has.
func walk(f *callFrame, tx common.Hash, ok bool, watched func(string) bool, n *uint32, frames *int, out *[]chain.Transfer) error {
	*frames++
	if *frames > maxTraceFrames || *n >= chain.MaxInternal {
		return fmt.Errorf("%w: call trace of %s: more than %d frames", chain.ErrChainData, tx, min(maxTraceFrames, chain.MaxInternal))
	}
	*n++
	idx := *n
	if f.From == nil || f.To == nil {
		return fmt.Errorf("%w: call trace of %s: frame %d (%s) without from or to", chain.ErrChainData, tx, idx, f.Type)
	}
	var v chain.Amount
	if f.Value != nil {
		a, err := chain.AmountFromBig(f.Value.ToInt())
		if err != nil {
			return fmt.Errorf("%w: call trace of %s: frame %d: %w", chain.ErrChainData, tx, idx, err)
		}
		v = a
	}
	ok = ok && f.Error == ""
	moves := false
	switch f.Type {
	case "CALL", "CREATE", "CREATE2", "SELFDESTRUCT":
		moves = true
	case "DELEGATECALL", "CALLCODE", "STATICCALL":
	default:
		if !v.IsZero() {
			return fmt.Errorf("%w: call trace of %s: frame %d of type %q with value", chain.ErrChainData, tx, idx, f.Type)
		}
	}
	if moves && ok && !v.IsZero() {
		if to := f.To.Hex(); watched(to) {
			*out = append(*out, chain.Transfer{Tx: id(tx), Index: chain.InternalIndex(idx), From: f.From.Hex(), To: to, Amount: v})
		}
	}
	for j := range f.Calls {
		if err := walk(&f.Calls[j], tx, ok, watched, n, frames, out); err != nil {
			return err
		}
	}
	return nil
}

// readTraces returns the internal transfers to addresses in w of the block
// hh whose transactions are txs, by transaction.
func (b *Backend) readTraces(ctx context.Context, hh common.Hash, txs []common.Hash, w *chain.Watch) ([]TxInternal, error) {
	cctx, cancel := b.ctx(ctx)
	defer cancel()
	var raw json.RawMessage
	if err := b.c.RPC().CallContext(cctx, &raw, "debug_traceBlockByHash", hh, map[string]any{"tracer": "callTracer"}); err != nil {
		return nil, fmt.Errorf("ethchain: debug_traceBlockByHash %s (a node without the debug API: run without traces): %w", hh, err)
	}
	return DecodeTraces(raw, txs, w.Has)
}
