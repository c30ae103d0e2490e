package withdraw

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"

	"kinko/internal/ledger"
)

// Amount is a withdrawal's quantity in base units (satoshi, wei, yen) in
// 128 bits, as the ledger holds balances: 2^64-1 wei is only 18.4 ether.
// It is ledger.Amount with a JSON encoding of its own: a bare JSON number
// of any size ("5000", "50000000000000000000"), so that the journaled
// commands, rules and snapshots written when amounts were uint64 decode
// and re-encode to the same bytes. It decodes a JSON number or a decimal
// string of base units; nothing else (no sign, fraction or exponent).
type Amount ledger.Amount

// ErrAmount reports an amount that is not a whole number of base units
// below 2^128.
var ErrAmount = errors.New("withdraw: amount is not a whole number of base units below 2^128")

// AmountOf returns v base units as an Amount.
func AmountOf(v uint64) Amount { return Amount{Lo: v} }

// MaxAmount is 2^128-1 base units, the largest Amount.
var MaxAmount = Amount{Hi: ^uint64(0), Lo: ^uint64(0)}

// ParseAmount parses a decimal integer of base units below 2^128.
func ParseAmount(s string) (Amount, error) {
	v, err := ledger.ParseAmount(s)
	if err != nil {
		return Amount{}, fmt.Errorf("%w: %q", ErrAmount, short(s))
	}
	return Amount(v), nil
}

// AmountFromBig returns v as an Amount, or an error if v is negative or
// does not fit in 128 bits.
func AmountFromBig(v *big.Int) (Amount, error) {
	if v == nil || v.Sign() < 0 || v.BitLen() > 128 {
		return Amount{}, fmt.Errorf("%w: %v", ErrAmount, v)
	}
	lo := new(big.Int).And(v, new(big.Int).SetUint64(^uint64(0)))
	return Amount{Hi: new(big.Int).Rsh(v, 64).Uint64(), Lo: lo.Uint64()}, nil
}

// short bounds an input echoed in an error.
func short(s string) string {
	if len(s) > 48 {
		return s[:48] + "…"
	}
	return s
}

// Ledger returns a as the ledger's Amount.
func (a Amount) Ledger() ledger.Amount { return ledger.Amount(a) }

// IsZero reports whether a is zero (and lets `omitzero` leave it out).
func (a Amount) IsZero() bool { return a.Hi == 0 && a.Lo == 0 }

// Cmp returns -1, 0 or +1 as a is less than, equal to or greater than b.
func (a Amount) Cmp(b Amount) int { return ledger.Amount(a).Cmp(ledger.Amount(b)) }

// Add returns a+b and whether the sum overflowed 128 bits.
func (a Amount) Add(b Amount) (Amount, bool) {
	s, over := ledger.Amount(a).Add(ledger.Amount(b))
	return Amount(s), over
}

// AddSat returns a+b, or MaxAmount if that overflows: for sums that are
// only compared with a limit.
func (a Amount) AddSat(b Amount) Amount {
	s, over := a.Add(b)
	if over {
		return MaxAmount
	}
	return s
}

// Sub returns a-b and whether it borrowed (b was greater than a).
func (a Amount) Sub(b Amount) (Amount, bool) {
	d, br := ledger.Amount(a).Sub(ledger.Amount(b))
	return Amount(d), br
}

// Uint64 returns a as a uint64 and whether it fits.
func (a Amount) Uint64() (uint64, bool) { return a.Lo, a.Hi == 0 }

// Int64 returns a as an int64 and whether it fits (is below 2^63): what a
// Bitcoin output's value can hold.
func (a Amount) Int64() (int64, bool) { return int64(a.Lo), a.Hi == 0 && a.Lo < 1<<63 }

// Big returns a as a big.Int.
func (a Amount) Big() *big.Int { return ledger.Amount(a).Big() }

// String formats a as a decimal integer of base units.
func (a Amount) String() string { return ledger.Amount(a).String() }

// FormatDecimal formats a with the asset's decimals.
func (a Amount) FormatDecimal(decimals uint8) string {
	return ledger.Amount(a).FormatDecimal(decimals)
}

// MarshalJSON encodes a as a bare JSON number of base units.
func (a Amount) MarshalJSON() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalJSON decodes a JSON number or a decimal string of base units.
// JSON null leaves a as it is, as for any other Go value.
func (a *Amount) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := ParseAmount(s)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// sumOver reports whether a + b exceeds m, an overflow counting as over.
func sumOver(a, b, m Amount) bool {
	s, over := a.Add(b)
	return over || s.Cmp(m) > 0
}
