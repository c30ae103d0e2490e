// Package withdraw is the customer side of withdrawals: intent keys,
// whitelisted addresses, the intent a customer signs, the policy rules
// every withdrawal passes, and the journaled state of each withdrawal.
// Apply is deterministic: cool-downs are measured with journal entry times
// here, and again with its own clock by the co-signer.
package withdraw

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// intentDomain separates withdrawal intents from anything else a customer
// key might sign.
const intentDomain = "kinko/withdrawal-intent/v1"

// Intent is what a customer signs to ask for a withdrawal: exactly this
// asset, address and amount, once (the request id), before the expiry.
type Intent struct {
	RequestID string // unique per customer
	Asset     string // asset code
	Address   string
	// Amount is in base units, up to 2^128-1 (wei do not fit in 64
	// bits); it is signed as its decimal digits, so an amount below 2^64
	// has the encoding it had when amounts were uint64.
	Amount Amount
	Expiry int64 // unix seconds
}

// Bounds of an intent's fields.
const (
	MaxRequestID = 64
	MaxAddress   = 128
)

// ErrIntent reports an intent whose fields are out of bounds.
var ErrIntent = errors.New("withdraw: intent fields invalid")

// Bytes returns the canonical, domain-separated bytes that are signed:
// each field length-prefixed, so no two intents share an encoding.
func (in *Intent) Bytes() ([]byte, error) {
	switch {
	case in.RequestID == "" || len(in.RequestID) > MaxRequestID:
		return nil, fmt.Errorf("%w: request id of 1 to %d bytes", ErrIntent, MaxRequestID)
	case in.Asset == "" || len(in.Asset) > 10:
		return nil, fmt.Errorf("%w: asset code of 1 to 10 bytes", ErrIntent)
	case in.Address == "" || len(in.Address) > MaxAddress:
		return nil, fmt.Errorf("%w: address of 1 to %d bytes", ErrIntent, MaxAddress)
	case in.Amount.IsZero():
		return nil, fmt.Errorf("%w: amount 0 (a withdrawal moves at least one base unit)", ErrIntent)
	case in.Expiry <= 0:
		return nil, fmt.Errorf("%w: expiry must be a positive unix time", ErrIntent)
	}
	var b []byte
	field := func(s string) {
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	field(intentDomain)
	field(in.RequestID)
	field(in.Asset)
	field(in.Address)
	field(in.Amount.String())
	field(strconv.FormatInt(in.Expiry, 10))
	return b, nil
}

// Sign signs the intent with a customer's private key: what the customer's
// device (or `kinko intent sign`) does.
func (in *Intent) Sign(key ed25519.PrivateKey) ([]byte, error) {
	b, err := in.Bytes()
	if err != nil {
		return nil, err
	}
	return ed25519.Sign(key, b), nil
}

// Verify reports whether sig is pub's signature of the intent.
func (in *Intent) Verify(pub []byte, sig []byte) bool {
	b, err := in.Bytes()
	if err != nil || len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(ed25519.PublicKey(pub), b, sig)
}
