// Package ethcold is the offline ceremony for Ether held in Safe
// multisig wallets: refills (cold Safe to hot Safe) and sweeps from cold
// as EIP-712 typed data. The online side writes a request holding the
// SafeTx in eth_signTypedData_v4 form; the offline machine reads it
// against its own registry of Safes, recomputes the EIP-712 hash itself,
// says in plain words what the Safe would do, and signs with its owner
// key; the owners' signatures are combined, sorted, and submitted with
// execTransaction from a gas account. Nothing in a request is believed:
// the hash it carries is only compared with the one computed here, and
// what is ours is only what the offline registry says.
package ethcold

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/chain/eth/safe"
)

// ErrTypedData reports typed data that is not exactly a Safe 1.4.1 SafeTx
// in eth_signTypedData_v4 form: other types, another primary type, a
// domain with other fields, a field missing, malformed or out of range.
var ErrTypedData = errors.New("ethcold: not the typed data of a Safe transaction")

// Field is one member of an EIP-712 struct type.
type Field struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Domain is the EIP-712 domain of a Safe 1.4.1: its chain and its
// address, nothing else (no name, version or salt).
type Domain struct {
	ChainID           json.Number `json:"chainId"`
	VerifyingContract string      `json:"verifyingContract"`
}

// Message is a SafeTx as eth_signTypedData_v4 carries it: addresses in
// EIP-55 hex, uint256 as decimal strings, data as 0x-hex, the operation
// as a number.
type Message struct {
	To             string      `json:"to"`
	Value          string      `json:"value"`
	Data           string      `json:"data"`
	Operation      json.Number `json:"operation"`
	SafeTxGas      string      `json:"safeTxGas"`
	BaseGas        string      `json:"baseGas"`
	GasPrice       string      `json:"gasPrice"`
	GasToken       string      `json:"gasToken"`
	RefundReceiver string      `json:"refundReceiver"`
	Nonce          string      `json:"nonce"`
}

// TypedData is the eth_signTypedData_v4 payload of a SafeTx.
type TypedData struct {
	Types       map[string][]Field `json:"types"`
	PrimaryType string             `json:"primaryType"`
	Domain      Domain             `json:"domain"`
	Message     Message            `json:"message"`
}

// safeTypes are the EIP-712 types of Safe 1.4.1 (Safe.sol's
// DOMAIN_SEPARATOR_TYPEHASH and SAFE_TX_TYPEHASH).
func safeTypes() map[string][]Field {
	return map[string][]Field{
		"EIP712Domain": {{"chainId", "uint256"}, {"verifyingContract", "address"}},
		"SafeTx": {{"to", "address"}, {"value", "uint256"}, {"data", "bytes"}, {"operation", "uint8"},
			{"safeTxGas", "uint256"}, {"baseGas", "uint256"}, {"gasPrice", "uint256"},
			{"gasToken", "address"}, {"refundReceiver", "address"}, {"nonce", "uint256"}},
	}
}

func dec(x *big.Int) string {
	if x == nil {
		return "0"
	}
	return x.String()
}

// NewTypedData writes tx for the Safe at addr on chain chainID as typed
// data.
func NewTypedData(chainID *big.Int, addr common.Address, tx *safe.SafeTx) TypedData {
	return TypedData{
		Types:       safeTypes(),
		PrimaryType: "SafeTx",
		Domain:      Domain{ChainID: json.Number(dec(chainID)), VerifyingContract: addr.Hex()},
		Message: Message{
			To: tx.To.Hex(), Value: dec(tx.Value), Data: "0x" + hex.EncodeToString(tx.Data),
			Operation: json.Number(fmt.Sprint(uint8(tx.Operation))),
			SafeTxGas: dec(tx.SafeTxGas), BaseGas: dec(tx.BaseGas), GasPrice: dec(tx.GasPrice),
			GasToken: tx.GasToken.Hex(), RefundReceiver: tx.RefundReceiver.Hex(), Nonce: dec(tx.Nonce),
		},
	}
}

// ParseUint256 reads a decimal uint256 written canonically: digits only,
// no sign, no leading zero, at most 2^256-1.
func ParseUint256(s string) (*big.Int, error) {
	if s == "" || len(s) > 78 || (len(s) > 1 && s[0] == '0') {
		return nil, fmt.Errorf("%q is not a decimal uint256", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil, fmt.Errorf("%q is not a decimal uint256", s)
		}
	}
	x, _ := new(big.Int).SetString(s, 10)
	if x.BitLen() > 256 {
		return nil, fmt.Errorf("%s is above 2^256-1", s)
	}
	return x, nil
}

// ParseAddress reads a 0x-hex address; one in mixed case must carry its
// EIP-55 checksum.
func ParseAddress(s string) (common.Address, error) {
	if !common.IsHexAddress(s) || !strings.HasPrefix(s, "0x") {
		return common.Address{}, fmt.Errorf("%q is not a 0x-hex address", s)
	}
	a := common.HexToAddress(s)
	body := s[2:]
	if body != strings.ToLower(body) && body != strings.ToUpper(body) && a.Hex() != s {
		return common.Address{}, fmt.Errorf("%s has a wrong EIP-55 checksum (%s)", s, a.Hex())
	}
	return a, nil
}

func parseData(s string) ([]byte, error) {
	if !strings.HasPrefix(s, "0x") || len(s)%2 != 0 {
		return nil, fmt.Errorf("data %.20q is not 0x-hex", s)
	}
	b, err := hex.DecodeString(s[2:])
	if err != nil {
		return nil, fmt.Errorf("data is not 0x-hex: %v", err)
	}
	return b, nil
}

func sameTypes(a, b map[string][]Field) bool {
	if len(a) != len(b) {
		return false
	}
	for k, fa := range a {
		fb, ok := b[k]
		if !ok || len(fa) != len(fb) {
			return false
		}
		for i := range fa {
			if fa[i] != fb[i] {
				return false
			}
		}
	}
	return true
}

// SafeTx reads the typed data back: the chain, the Safe and the SafeTx.
// The types must be exactly Safe 1.4.1's and every field well formed; the
// hash is not taken from anywhere: compute it with SafeTx.Hash.
func (td *TypedData) SafeTx() (*big.Int, common.Address, *safe.SafeTx, error) {
	fail := func(format string, a ...any) (*big.Int, common.Address, *safe.SafeTx, error) {
		return nil, common.Address{}, nil, fmt.Errorf("%w: %s", ErrTypedData, fmt.Sprintf(format, a...))
	}
	if td.PrimaryType != "SafeTx" {
		return fail("primary type %q, not SafeTx", td.PrimaryType)
	}
	if !sameTypes(td.Types, safeTypes()) {
		return fail("its types are not Safe 1.4.1's EIP712Domain(uint256 chainId,address verifyingContract) and SafeTx(...)")
	}
	chainID, err := ParseUint256(string(td.Domain.ChainID))
	if err != nil || chainID.Sign() == 0 {
		return fail("domain chainId %q", td.Domain.ChainID)
	}
	addr, err := ParseAddress(td.Domain.VerifyingContract)
	if err != nil {
		return fail("domain verifyingContract: %v", err)
	}
	m := &td.Message
	tx := &safe.SafeTx{}
	if tx.To, err = ParseAddress(m.To); err != nil {
		return fail("to: %v", err)
	}
	if tx.GasToken, err = ParseAddress(m.GasToken); err != nil {
		return fail("gasToken: %v", err)
	}
	if tx.RefundReceiver, err = ParseAddress(m.RefundReceiver); err != nil {
		return fail("refundReceiver: %v", err)
	}
	for _, f := range []struct {
		dst  **big.Int
		s    string
		name string
	}{{&tx.Value, m.Value, "value"}, {&tx.SafeTxGas, m.SafeTxGas, "safeTxGas"}, {&tx.BaseGas, m.BaseGas, "baseGas"},
		{&tx.GasPrice, m.GasPrice, "gasPrice"}, {&tx.Nonce, m.Nonce, "nonce"}} {
		if *f.dst, err = ParseUint256(f.s); err != nil {
			return fail("%s: %v", f.name, err)
		}
	}
	if tx.Data, err = parseData(m.Data); err != nil {
		return fail("%v", err)
	}
	switch m.Operation {
	case "0":
		tx.Operation = safe.OpCall
	case "1":
		tx.Operation = safe.OpDelegateCall
	default:
		return fail("operation %q (0 CALL or 1 DELEGATECALL)", m.Operation)
	}
	return chainID, addr, tx, nil
}

// decodeStrict decodes b into v refusing unknown fields and trailing
// values.
func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}
