package safe

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// Operation is how a Safe makes its call: Call runs the target in its own
// context; DelegateCall runs the target's code in the Safe's own storage
// and balance, so whoever chooses that target controls the Safe (Bybit
// 2025). kinko makes a DelegateCall only to the MultiSendCallOnly it
// deployed and pins (see Calls).
type Operation uint8

const (
	// OpCall is the Safe's operation 0.
	OpCall Operation = 0
	// OpDelegateCall is the Safe's operation 1.
	OpDelegateCall Operation = 1
)

// String names the operation.
func (o Operation) String() string {
	switch o {
	case OpCall:
		return "CALL"
	case OpDelegateCall:
		return "DELEGATECALL"
	}
	return fmt.Sprintf("operation(%d)", uint8(o))
}

// The EIP-712 type strings of Safe 1.4.1 (Safe.sol): the typehashes are
// their keccaks, computed here and checked against the contract's
// constants in the tests.
const (
	domainType = "EIP712Domain(uint256 chainId,address verifyingContract)"
	safeTxType = "SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 baseGas,uint256 gasPrice,address gasToken,address refundReceiver,uint256 nonce)"
)

var (
	domainTypeHash = crypto.Keccak256Hash([]byte(domainType))
	safeTxTypeHash = crypto.Keccak256Hash([]byte(safeTxType))
)

// SafeTx is a Safe transaction: what the owners sign and execTransaction
// runs. The uint256 fields are *big.Int (nil is zero); gas fields in gas
// units, value and gas price in wei.
type SafeTx struct {
	To             common.Address
	Value          *big.Int
	Data           []byte
	Operation      Operation
	SafeTxGas      *big.Int
	BaseGas        *big.Int
	GasPrice       *big.Int // 0: no refund; the sender of execTransaction pays the gas
	GasToken       common.Address
	RefundReceiver common.Address
	Nonce          *big.Int
}

// ErrField reports a SafeTx field the Safe cannot hold (a negative
// number, one above 2^256-1, an operation other than 0 and 1).
var ErrField = errors.New("safe: bad SafeTx field")

// word writes x as a 32-byte big-endian word into dst, or fails for a
// value outside uint256.
func word(dst []byte, x *big.Int, name string) error {
	if x == nil {
		clear(dst[:32])
		return nil
	}
	if x.Sign() < 0 || x.BitLen() > 256 {
		return fmt.Errorf("%w: %s %s outside uint256", ErrField, name, x)
	}
	x.FillBytes(dst[:32])
	return nil
}

// addrWord writes a as a 32-byte word (left-padded with zeros).
func addrWord(dst []byte, a common.Address) {
	clear(dst[:12])
	copy(dst[12:32], a[:])
}

// StructHash returns the EIP-712 hashStruct of the SafeTx: keccak of the
// typehash and the fields, abi-encoded, with data as its keccak.
func (tx *SafeTx) StructHash() (common.Hash, error) {
	if tx.Operation > OpDelegateCall {
		return common.Hash{}, fmt.Errorf("%w: operation %d", ErrField, tx.Operation)
	}
	var buf [11 * 32]byte
	copy(buf[0:32], safeTxTypeHash[:])
	addrWord(buf[32:], tx.To)
	if err := word(buf[64:], tx.Value, "value"); err != nil {
		return common.Hash{}, err
	}
	dh := crypto.Keccak256Hash(tx.Data)
	copy(buf[96:128], dh[:])
	buf[159] = byte(tx.Operation)
	for i, f := range []struct {
		x    *big.Int
		name string
	}{{tx.SafeTxGas, "safeTxGas"}, {tx.BaseGas, "baseGas"}, {tx.GasPrice, "gasPrice"}} {
		if err := word(buf[160+32*i:], f.x, f.name); err != nil {
			return common.Hash{}, err
		}
	}
	addrWord(buf[256:], tx.GasToken)
	addrWord(buf[288:], tx.RefundReceiver)
	if err := word(buf[320:], tx.Nonce, "nonce"); err != nil {
		return common.Hash{}, err
	}
	return crypto.Keccak256Hash(buf[:]), nil
}

// DomainSeparator returns the EIP-712 domain separator of the Safe at
// safe on chain chainID: the signature of one Safe is worthless on
// another Safe or another chain.
func DomainSeparator(chainID *big.Int, safe common.Address) (common.Hash, error) {
	var buf [3 * 32]byte
	copy(buf[:32], domainTypeHash[:])
	if err := word(buf[32:], chainID, "chain id"); err != nil {
		return common.Hash{}, err
	}
	addrWord(buf[64:], safe)
	return crypto.Keccak256Hash(buf[:]), nil
}

// Hash returns the hash the owners sign for tx on the Safe at safe, chain
// chainID: keccak(0x19 0x01 ‖ domainSeparator ‖ hashStruct(tx)), as the
// Safe's getTransactionHash computes it.
func (tx *SafeTx) Hash(chainID *big.Int, safe common.Address) (common.Hash, error) {
	ds, err := DomainSeparator(chainID, safe)
	if err != nil {
		return common.Hash{}, err
	}
	sh, err := tx.StructHash()
	if err != nil {
		return common.Hash{}, err
	}
	var buf [2 + 32 + 32]byte
	buf[0], buf[1] = 0x19, 0x01
	copy(buf[2:34], ds[:])
	copy(buf[34:], sh[:])
	return crypto.Keccak256Hash(buf[:]), nil
}

// SignatureLen is the length of one owner's signature as the Safe reads
// it: r (32 bytes), s (32 bytes), v (1 byte).
const SignatureLen = 65

// Signature is one owner's ECDSA signature of a Safe transaction hash, in
// the Safe's layout r ‖ s ‖ v with v 27 or 28.
type Signature struct {
	Owner common.Address
	RSV   [SignatureLen]byte
}

// Sign signs hash with an owner's key.
func Sign(hash common.Hash, key *ecdsa.PrivateKey) (Signature, error) {
	sig, err := crypto.Sign(hash[:], key) // r ‖ s ‖ v, v 0 or 1, s low
	if err != nil {
		return Signature{}, fmt.Errorf("safe: sign: %w", err)
	}
	var s Signature
	s.Owner = crypto.PubkeyToAddress(key.PublicKey)
	copy(s.RSV[:], sig)
	s.RSV[64] += 27
	return s, nil
}

// Errors of the signature checks, matching what the Safe refuses
// (GS020, GS026) and what kinko refuses beyond it.
var (
	// ErrTooFewSignatures: fewer signatures than the threshold (GS020).
	ErrTooFewSignatures = errors.New("safe: fewer signatures than the threshold")
	// ErrNotOwner: a signature recovers to an address that is not an
	// owner, as one over other fields does (GS026).
	ErrNotOwner = errors.New("safe: signature is not an owner's")
	// ErrUnsorted: signatures not in strictly ascending owner order, or
	// one owner twice (GS026).
	ErrUnsorted = errors.New("safe: signatures not sorted by owner, or an owner twice")
	// ErrSignatureKind: a contract signature, an approved hash or an
	// eth_sign signature (v 0, 1 or above 30), which kinko's owners never
	// make; or a signature that does not recover.
	ErrSignatureKind = errors.New("safe: not a plain ECDSA owner signature")
	// ErrHighS: a malleable signature (s above half the curve order).
	ErrHighS = errors.New("safe: signature s is high")
	// ErrExtraSignatures: more bytes than threshold signatures.
	ErrExtraSignatures = errors.New("safe: more signature bytes than the threshold needs")
)

// EncodeSignatures concatenates the signatures sorted by owner address,
// ascending, as the Safe requires. It checks that each signature recovers
// to the owner it names and that no owner signs twice.
func EncodeSignatures(hash common.Hash, sigs []Signature) ([]byte, error) {
	s := slices.Clone(sigs)
	for _, x := range s {
		got, err := recoverSigner(hash, x.RSV[:])
		if err != nil {
			return nil, err
		}
		if got != x.Owner {
			return nil, fmt.Errorf("%w: signature named %s recovers to %s", ErrNotOwner, x.Owner, got)
		}
	}
	slices.SortFunc(s, func(a, b Signature) int { return bytes.Compare(a.Owner[:], b.Owner[:]) })
	out := make([]byte, 0, len(s)*SignatureLen)
	for i, x := range s {
		if i > 0 && x.Owner == s[i-1].Owner {
			return nil, fmt.Errorf("%w: %s", ErrUnsorted, x.Owner)
		}
		out = append(out, x.RSV[:]...)
	}
	return out, nil
}

// secp256k1N is the curve order; halfN bounds a low s.
var (
	secp256k1N = crypto.S256().Params().N
	halfN      = new(big.Int).Rsh(secp256k1N, 1)
)

// recoverSigner returns the address whose key made the Safe-layout
// signature rsv of hash.
func recoverSigner(hash common.Hash, rsv []byte) (common.Address, error) {
	v := rsv[64]
	if v != 27 && v != 28 {
		return common.Address{}, fmt.Errorf("%w: v = %d", ErrSignatureKind, v)
	}
	s := new(big.Int).SetBytes(rsv[32:64])
	if s.Cmp(halfN) > 0 {
		return common.Address{}, ErrHighS
	}
	sig := make([]byte, SignatureLen)
	copy(sig, rsv[:64])
	sig[64] = v - 27
	pub, err := crypto.SigToPub(hash[:], sig)
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: %v", ErrSignatureKind, err)
	}
	return crypto.PubkeyToAddress(*pub), nil
}

// VerifySignatures checks signatures for hash as the Safe would and
// stricter: exactly threshold plain ECDSA signatures (v 27 or 28, low s),
// each an owner's, in strictly ascending owner order. It returns the
// signers. The Safe accepts trailing bytes, high-s signatures and other
// signature kinds; kinko's own checks refuse them, so that what passes
// here is one encoding of one approval.
func VerifySignatures(hash common.Hash, sigs []byte, owners []common.Address, threshold int) ([]common.Address, error) {
	if threshold < 1 {
		return nil, fmt.Errorf("safe: threshold %d", threshold)
	}
	if len(sigs) < threshold*SignatureLen {
		return nil, fmt.Errorf("%w: %d bytes, %d signatures needed", ErrTooFewSignatures, len(sigs), threshold)
	}
	if len(sigs) > threshold*SignatureLen {
		return nil, fmt.Errorf("%w: %d bytes for %d signatures", ErrExtraSignatures, len(sigs), threshold)
	}
	var signers []common.Address
	var last common.Address
	for i := range threshold {
		a, err := recoverSigner(hash, sigs[i*SignatureLen:(i+1)*SignatureLen])
		if err != nil {
			return nil, fmt.Errorf("signature %d: %w", i, err)
		}
		if !slices.Contains(owners, a) {
			return nil, fmt.Errorf("signature %d: %w: %s", i, ErrNotOwner, a)
		}
		if bytes.Compare(a[:], last[:]) <= 0 {
			return nil, fmt.Errorf("signature %d: %w: %s after %s", i, ErrUnsorted, a, last)
		}
		last = a
		signers = append(signers, a)
	}
	return signers, nil
}
