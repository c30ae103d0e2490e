package safe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
)

// ifaceJSON is the part of the Safe contracts' interface kinko calls,
// written from the contracts' signatures (Safe.sol, SafeProxyFactory.sol,
// MultiSendCallOnly.sol); the tests check each method against the
// installed artifacts' ABI.
const ifaceJSON = `[
{"type":"function","name":"setup","inputs":[{"name":"_owners","type":"address[]"},{"name":"_threshold","type":"uint256"},{"name":"to","type":"address"},{"name":"data","type":"bytes"},{"name":"fallbackHandler","type":"address"},{"name":"paymentToken","type":"address"},{"name":"payment","type":"uint256"},{"name":"paymentReceiver","type":"address"}],"outputs":[]},
{"type":"function","name":"execTransaction","inputs":[{"name":"to","type":"address"},{"name":"value","type":"uint256"},{"name":"data","type":"bytes"},{"name":"operation","type":"uint8"},{"name":"safeTxGas","type":"uint256"},{"name":"baseGas","type":"uint256"},{"name":"gasPrice","type":"uint256"},{"name":"gasToken","type":"address"},{"name":"refundReceiver","type":"address"},{"name":"signatures","type":"bytes"}],"outputs":[{"name":"success","type":"bool"}]},
{"type":"function","name":"getTransactionHash","inputs":[{"name":"to","type":"address"},{"name":"value","type":"uint256"},{"name":"data","type":"bytes"},{"name":"operation","type":"uint8"},{"name":"safeTxGas","type":"uint256"},{"name":"baseGas","type":"uint256"},{"name":"gasPrice","type":"uint256"},{"name":"gasToken","type":"address"},{"name":"refundReceiver","type":"address"},{"name":"_nonce","type":"uint256"}],"outputs":[{"name":"","type":"bytes32"}]},
{"type":"function","name":"domainSeparator","inputs":[],"outputs":[{"name":"","type":"bytes32"}]},
{"type":"function","name":"nonce","inputs":[],"outputs":[{"name":"","type":"uint256"}]},
{"type":"function","name":"getOwners","inputs":[],"outputs":[{"name":"","type":"address[]"}]},
{"type":"function","name":"getThreshold","inputs":[],"outputs":[{"name":"","type":"uint256"}]},
{"type":"function","name":"VERSION","inputs":[],"outputs":[{"name":"","type":"string"}]},
{"type":"function","name":"createProxyWithNonce","inputs":[{"name":"_singleton","type":"address"},{"name":"initializer","type":"bytes"},{"name":"saltNonce","type":"uint256"}],"outputs":[{"name":"proxy","type":"address"}]},
{"type":"function","name":"proxyCreationCode","inputs":[],"outputs":[{"name":"","type":"bytes"}]},
{"type":"function","name":"multiSend","inputs":[{"name":"transactions","type":"bytes"}],"outputs":[]},
{"type":"event","name":"ProxyCreation","inputs":[{"name":"proxy","type":"address","indexed":true},{"name":"singleton","type":"address","indexed":false}]},
{"type":"event","name":"ExecutionSuccess","inputs":[{"name":"txHash","type":"bytes32","indexed":true},{"name":"payment","type":"uint256","indexed":false}]},
{"type":"event","name":"ExecutionFailure","inputs":[{"name":"txHash","type":"bytes32","indexed":true},{"name":"payment","type":"uint256","indexed":false}]}
]`

// iface is ifaceJSON parsed.
var iface = func() abi.ABI {
	a, err := abi.JSON(strings.NewReader(ifaceJSON))
	if err != nil {
		panic("safe: interface: " + err.Error())
	}
	return a
}()

// The topics of the Safe's execution events: ExecutionSuccess(bytes32
// indexed txHash, uint256 payment) and ExecutionFailure (the same), the
// SafeTx's EIP-712 hash their second topic.
var (
	EventExecutionSuccess = iface.Events["ExecutionSuccess"].ID
	EventExecutionFailure = iface.Events["ExecutionFailure"].ID
)

// Errors of the decoder.
var (
	// ErrNotExecTransaction: calldata that is not a call of execTransaction.
	ErrNotExecTransaction = errors.New("safe: not an execTransaction call")
	// ErrNotMultiSend: calldata that is not a call of multiSend.
	ErrNotMultiSend = errors.New("safe: not a multiSend call")
	// ErrNonCanonical: an ABI encoding other than the one encoder's
	// (offsets elsewhere, dirty padding, trailing bytes): the same call
	// written two ways is refused rather than read one way.
	ErrNonCanonical = errors.New("safe: calldata not in canonical ABI encoding")
	// ErrBatch: a MultiSend batch that does not parse into whole calls.
	ErrBatch = errors.New("safe: malformed MultiSend batch")
	// ErrDelegateCall: a DELEGATECALL kinko did not pin (anything but
	// its MultiSendCallOnly), or one inside a batch.
	ErrDelegateCall = errors.New("safe: delegatecall refused")
	// ErrRefund: a SafeTx that pays a gas refund (gasPrice, baseGas,
	// gasToken or refundReceiver set): the Safe pays it from its own
	// balance to a receiver the calls do not show.
	ErrRefund = errors.New("safe: gas refund refused")
)

// Call is one call a Safe transaction makes: value in wei to To, with
// calldata Data (empty for a plain Ether transfer).
type Call struct {
	To    common.Address
	Value *big.Int
	Data  []byte
}

// ExecCalldata returns the calldata of execTransaction for tx with the
// encoded signatures. The nonce is not in it: the Safe uses its own.
func ExecCalldata(tx *SafeTx, sigs []byte) ([]byte, error) {
	if _, err := tx.StructHash(); err != nil { // every field in range
		return nil, err
	}
	b, err := iface.Pack("execTransaction", tx.To, orZero(tx.Value), nonNil(tx.Data), uint8(tx.Operation),
		orZero(tx.SafeTxGas), orZero(tx.BaseGas), orZero(tx.GasPrice), tx.GasToken, tx.RefundReceiver, nonNil(sigs))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrField, err)
	}
	return b, nil
}

func orZero(x *big.Int) *big.Int {
	if x == nil {
		return new(big.Int)
	}
	return x
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// DecodeExecTransaction reads calldata of execTransaction back into the
// SafeTx (its Nonce nil: the calldata does not carry it) and the
// signatures. Only the canonical encoding is accepted.
func DecodeExecTransaction(calldata []byte) (*SafeTx, []byte, error) {
	m := iface.Methods["execTransaction"]
	if len(calldata) < 4 || !bytes.Equal(calldata[:4], m.ID) {
		return nil, nil, ErrNotExecTransaction
	}
	vals, err := m.Inputs.Unpack(calldata[4:])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNotExecTransaction, err)
	}
	tx := &SafeTx{
		To: vals[0].(common.Address), Value: vals[1].(*big.Int), Data: vals[2].([]byte),
		SafeTxGas: vals[4].(*big.Int), BaseGas: vals[5].(*big.Int), GasPrice: vals[6].(*big.Int),
		GasToken: vals[7].(common.Address), RefundReceiver: vals[8].(common.Address),
	}
	op := vals[3].(uint8)
	if op > uint8(OpDelegateCall) {
		return nil, nil, fmt.Errorf("%w: operation %d", ErrField, op)
	}
	tx.Operation = Operation(op)
	sigs := vals[9].([]byte)
	again, err := ExecCalldata(tx, sigs)
	if err != nil || !bytes.Equal(again, calldata) {
		return nil, nil, ErrNonCanonical
	}
	return tx, sigs, nil
}

// MaxBatch bounds the calls of one MultiSend batch kinko builds or reads.
const MaxBatch = 1024

// maxCallData bounds one call's data inside a batch (a block's gas buys
// far less calldata than this).
const maxCallData = 1 << 20

// batchHeader is a packed batch entry's fixed part: operation (1 byte),
// to (20), value (32), data length (32).
const batchHeader = 1 + 20 + 32 + 32

// EncodeMultiSend returns the calldata of MultiSendCallOnly's multiSend
// for calls, every one a CALL (operation 0), packed as the contract reads
// them: operation ‖ to ‖ value ‖ len(data) ‖ data.
func EncodeMultiSend(calls []Call) ([]byte, error) {
	if len(calls) == 0 || len(calls) > MaxBatch {
		return nil, fmt.Errorf("%w: %d calls (1 to %d)", ErrBatch, len(calls), MaxBatch)
	}
	var packed []byte
	for i, c := range calls {
		if len(c.Data) > maxCallData {
			return nil, fmt.Errorf("%w: call %d: %d bytes of data", ErrBatch, i, len(c.Data))
		}
		var h [batchHeader]byte
		h[0] = byte(OpCall)
		copy(h[1:21], c.To[:])
		if err := word(h[21:], c.Value, "value"); err != nil {
			return nil, fmt.Errorf("call %d: %w", i, err)
		}
		binary.BigEndian.PutUint64(h[batchHeader-8:], uint64(len(c.Data)))
		packed = append(packed, h[:]...)
		packed = append(packed, c.Data...)
	}
	b, err := iface.Pack("multiSend", packed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBatch, err)
	}
	return b, nil
}

// CallGas is the safeTxGas a SafeTx kinko builds names for each call it
// makes. With gasPrice 0 the Safe pays no refund and hands the call all
// the gas left anyway, so safeTxGas moves no money; what it changes is a
// failing call. With safeTxGas 0 the Safe reverts the whole transaction
// (GS013): its nonce does not move, and the SafeTx, its owners'
// signatures published in the reverted transaction's calldata, stays
// executable by anyone once the call would succeed (a payee contract
// that refuses ether and later accepts it would be paid twice: once on
// chain, once by the refund of the failed withdrawal). With safeTxGas
// above 0 a failing call ends the SafeTx with ExecutionFailure and uses
// its nonce, so a failed SafeTx can never execute. 40,000 gas a call
// covers a transfer to a new account in a MultiSendCallOnly batch (about
// 37,000 measured, docs/ethereum.md), and the Safe's GS010 check makes
// every submitter leave at least that for the calls: a front-runner
// cannot make a withdrawal fail by sending it with too little gas.
const CallGas = 40_000

// SafeTxGasFor is the safeTxGas of a SafeTx of calls calls: CallGas each.
func SafeTxGasFor(calls int) *big.Int {
	return new(big.Int).Mul(big.NewInt(int64(max(calls, 1))), big.NewInt(CallGas))
}

// ExecGasFor is the least gas limit of an execTransaction of a SafeTx of
// calls calls that passes the Safe's GS010 check: the safeTxGas with the
// 1/64 that EIP-150 keeps back, the Safe's own 3,000 around the call,
// and execOverhead for the transaction, its calldata and two owners'
// signatures.
func ExecGasFor(calls int) uint64 {
	g := SafeTxGasFor(calls).Uint64()
	return g*64/63 + 3_000 + execOverhead
}

// execOverhead bounds what an execTransaction of two signatures costs
// before its call: the transaction's 21,000, its calldata, the nonce's
// storage write and two ecrecovers (about 60,000 measured for a batch of
// ten; more is left for longer batches' calldata).
const execOverhead = 80_000

// Transfer returns the SafeTx that pays wei to to at the Safe's nonce:
// a CALL with no data and no refund, safeTxGas for one call (CallGas),
// as kinko builds every withdrawal of Ether.
func Transfer(to common.Address, wei, nonce *big.Int) *SafeTx {
	return &SafeTx{To: to, Value: new(big.Int).Set(orZero(wei)), SafeTxGas: SafeTxGasFor(1), Nonce: new(big.Int).Set(orZero(nonce))}
}

// Batch returns the SafeTx that makes calls in one Safe transaction at the
// Safe's nonce: a DELEGATECALL to multiSend, the pinned MultiSendCallOnly,
// with the batch as data, no value, no refund, and safeTxGas for its
// calls (CallGas each).
func Batch(multiSend common.Address, calls []Call, nonce *big.Int) (*SafeTx, error) {
	data, err := EncodeMultiSend(calls)
	if err != nil {
		return nil, err
	}
	return &SafeTx{To: multiSend, Data: data, Operation: OpDelegateCall, SafeTxGas: SafeTxGasFor(len(calls)), Nonce: new(big.Int).Set(orZero(nonce))}, nil
}

// DecodeMultiSend reads multiSend calldata back into its calls. It is
// stricter than the contract: the entries must tile the batch exactly
// (the contract ignores a short tail and reads past the end of a long
// one), every operation must be CALL (MultiSendCallOnly reverts on
// anything else), lengths are bounded, and the ABI encoding must be the
// canonical one.
func DecodeMultiSend(calldata []byte) ([]Call, error) {
	m := iface.Methods["multiSend"]
	if len(calldata) < 4 || !bytes.Equal(calldata[:4], m.ID) {
		return nil, ErrNotMultiSend
	}
	vals, err := m.Inputs.Unpack(calldata[4:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotMultiSend, err)
	}
	packed := vals[0].([]byte)
	again, err := iface.Pack("multiSend", packed)
	if err != nil || !bytes.Equal(again, calldata) {
		return nil, ErrNonCanonical
	}
	var calls []Call
	for off := 0; off < len(packed); {
		if len(calls) == MaxBatch {
			return nil, fmt.Errorf("%w: more than %d calls", ErrBatch, MaxBatch)
		}
		if len(packed)-off < batchHeader {
			return nil, fmt.Errorf("%w: %d bytes left at %d, an entry needs %d", ErrBatch, len(packed)-off, off, batchHeader)
		}
		e := packed[off:]
		if op := Operation(e[0]); op != OpCall {
			return nil, fmt.Errorf("%w: entry %d has %s", ErrDelegateCall, len(calls), op)
		}
		lw := e[batchHeader-32 : batchHeader]
		if !allZero(lw[:24]) || binary.BigEndian.Uint64(lw[24:]) > maxCallData {
			return nil, fmt.Errorf("%w: entry %d: data length %x", ErrBatch, len(calls), lw)
		}
		n := int(binary.BigEndian.Uint64(lw[24:]))
		if len(e)-batchHeader < n {
			return nil, fmt.Errorf("%w: entry %d: data of %d bytes, %d left", ErrBatch, len(calls), n, len(e)-batchHeader)
		}
		calls = append(calls, Call{
			To:    common.BytesToAddress(e[1:21]),
			Value: new(big.Int).SetBytes(e[21:53]),
			Data:  bytes.Clone(e[batchHeader : batchHeader+n]),
		})
		off += batchHeader + n
	}
	if len(calls) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBatch)
	}
	return calls, nil
}

func isZero(x *big.Int) bool { return x == nil || x.Sign() == 0 }

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// Calls returns what tx makes its Safe do, for checking before anyone
// signs: a CALL is the one call it says; a DELEGATECALL is accepted only
// to multiSend, the MultiSendCallOnly pinned by the caller, with no value,
// and is the batch's calls. Every other DELEGATECALL is refused: it would
// run code of the target's choosing as the Safe. So is any gas refund,
// which would move value the calls do not show; kinko's gas account pays
// the gas itself.
func Calls(tx *SafeTx, multiSend common.Address) ([]Call, error) {
	if !isZero(tx.GasPrice) || !isZero(tx.BaseGas) || tx.GasToken != (common.Address{}) || tx.RefundReceiver != (common.Address{}) {
		return nil, fmt.Errorf("%w: gasPrice %v, baseGas %v, gasToken %s, refundReceiver %s", ErrRefund, tx.GasPrice, tx.BaseGas, tx.GasToken, tx.RefundReceiver)
	}
	switch tx.Operation {
	case OpCall:
		return []Call{{To: tx.To, Value: orZero(tx.Value), Data: bytes.Clone(tx.Data)}}, nil
	case OpDelegateCall:
		if tx.To != multiSend || multiSend == (common.Address{}) {
			return nil, fmt.Errorf("%w: to %s, not the pinned MultiSendCallOnly %s", ErrDelegateCall, tx.To, multiSend)
		}
		if tx.Value != nil && tx.Value.Sign() != 0 {
			return nil, fmt.Errorf("%w: a batch carries value %s itself", ErrDelegateCall, tx.Value)
		}
		return DecodeMultiSend(tx.Data)
	}
	return nil, fmt.Errorf("%w: operation %d", ErrField, tx.Operation)
}
