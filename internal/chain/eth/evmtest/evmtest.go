// Package evmtest assembles, by hand, the tiny contracts tests use to move
// Ether in internal calls: a forwarder that makes one CALL with value per
// entry of its call data and ignores each call's failure, and a relay that
// sends what it is given on to one address and then reverts.
package evmtest

import (
	"math/big"

	"github.com/ethereum/go-ethereum/common"
)

// deploy wraps runtime code in init code that returns it: PUSH1 len DUP1
// PUSH1 11 PUSH1 0 CODECOPY PUSH1 0 RETURN, then the runtime.
func deploy(runtime []byte) []byte {
	if len(runtime) > 255 {
		panic("evmtest: runtime code above 255 bytes")
	}
	init := []byte{0x60, byte(len(runtime)), 0x80, 0x60, 0x0b, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3}
	return append(init, runtime...)
}

// forwarder is the forwarder's runtime (36 bytes). For i = 0, 64, ...
// below CALLDATASIZE: CALL(GAS, calldata[i:i+32] as an address,
// calldata[i+32:i+64] as the value, no data), the success flag dropped.
var forwarder = []byte{
	0x60, 0x00, // 0: PUSH1 0            i
	0x5b,       // 2: JUMPDEST           loop
	0x80,       // 3: DUP1
	0x36,       // 4: CALLDATASIZE
	0x11,       // 5: GT                 size > i
	0x15,       // 6: ISZERO
	0x60, 0x22, // 7: PUSH1 34           end
	0x57,                                           // 9: JUMPI
	0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x60, 0x00, // 10: retSize retOffset argsSize argsOffset
	0x84,       // 18: DUP5              i
	0x60, 0x20, // 19: PUSH1 32
	0x01,       // 21: ADD
	0x35,       // 22: CALLDATALOAD      value
	0x85,       // 23: DUP6              i
	0x35,       // 24: CALLDATALOAD      address
	0x5a,       // 25: GAS
	0xf1,       // 26: CALL
	0x50,       // 27: POP               the failure ignored
	0x60, 0x40, // 28: PUSH1 64
	0x01,       // 30: ADD
	0x60, 0x02, // 31: PUSH1 2
	0x56, // 33: JUMP
	0x5b, // 34: JUMPDEST          end
	0x00, // 35: STOP
}

// ForwarderCode is the forwarder's creation code.
func ForwarderCode() []byte { return deploy(forwarder) }

// ForwarderSize is the length of the forwarder's runtime code.
const ForwarderSize = 36

// Call is one CALL the forwarder makes.
type Call struct {
	To    common.Address
	Value *big.Int
}

// ForwardData is the forwarder's call data for calls, in order.
func ForwardData(calls ...Call) []byte {
	var out []byte
	for _, c := range calls {
		out = append(out, common.LeftPadBytes(c.To.Bytes(), 32)...)
		out = append(out, common.LeftPadBytes(c.Value.Bytes(), 32)...)
	}
	return out
}

// RevertingRelayCode is the creation code of a relay that CALLs to with
// all of its CALLVALUE (which succeeds) and then reverts, undoing it:
// PUSH1 0 x4, CALLVALUE, PUSH20 to, GAS, CALL, POP, PUSH1 0, DUP1, REVERT
// (37 bytes).
func RevertingRelayCode(to common.Address) []byte {
	rt := []byte{0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x34, 0x73}
	rt = append(rt, to.Bytes()...)
	rt = append(rt, 0x5a, 0xf1, 0x50, 0x60, 0x00, 0x80, 0xfd)
	return deploy(rt)
}

// RelaySize is the length of the relay's runtime code.
const RelaySize = 37
