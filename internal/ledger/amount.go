package ledger

import (
	"errors"
	"math/big"
	"math/bits"
	"strconv"
)

// Amount is a non-negative quantity of an asset in its base units (satoshi,
// wei, yen) held in 128 bits, because wei balances do not fit in 64. Money in
// kinko is never a float.
type Amount struct {
	Hi, Lo uint64
}

// ErrAmountSyntax reports a decimal amount string that is not a whole number
// of base units in range.
var ErrAmountSyntax = errors.New("amount is not a whole number of base units below 2^128")

// AmountOf returns v base units as an Amount.
func AmountOf(v uint64) Amount { return Amount{Lo: v} }

// IsZero reports whether a is zero.
func (a Amount) IsZero() bool { return a.Hi == 0 && a.Lo == 0 }

// Cmp returns -1, 0 or +1 as a is less than, equal to or greater than b.
func (a Amount) Cmp(b Amount) int {
	switch {
	case a.Hi < b.Hi:
		return -1
	case a.Hi > b.Hi:
		return 1
	case a.Lo < b.Lo:
		return -1
	case a.Lo > b.Lo:
		return 1
	}
	return 0
}

// Add returns a+b and whether the sum overflowed 128 bits.
func (a Amount) Add(b Amount) (Amount, bool) {
	lo, c := bits.Add64(a.Lo, b.Lo, 0)
	hi, c2 := bits.Add64(a.Hi, b.Hi, c)
	return Amount{Hi: hi, Lo: lo}, c2 != 0
}

// Sub returns a-b and whether it borrowed (b was greater than a).
func (a Amount) Sub(b Amount) (Amount, bool) {
	lo, br := bits.Sub64(a.Lo, b.Lo, 0)
	hi, br2 := bits.Sub64(a.Hi, b.Hi, br)
	return Amount{Hi: hi, Lo: lo}, br2 != 0
}

// Uint64 returns a as a uint64 and whether it fits.
func (a Amount) Uint64() (uint64, bool) { return a.Lo, a.Hi == 0 }

// Big returns a as a big.Int, for reports and formatting outside hot paths.
func (a Amount) Big() *big.Int {
	v := new(big.Int).SetUint64(a.Hi)
	v.Lsh(v, 64)
	return v.Or(v, new(big.Int).SetUint64(a.Lo))
}

// String formats a as a decimal integer of base units.
func (a Amount) String() string {
	if a.Hi == 0 {
		return strconv.FormatUint(a.Lo, 10)
	}
	return a.Big().String()
}

// ParseAmount parses a decimal integer of base units.
func ParseAmount(s string) (Amount, error) {
	if s == "" || len(s) > 39 {
		return Amount{}, ErrAmountSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return Amount{}, ErrAmountSyntax
		}
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.BitLen() > 128 {
		return Amount{}, ErrAmountSyntax
	}
	lo := new(big.Int).And(v, new(big.Int).SetUint64(^uint64(0)))
	return Amount{Hi: new(big.Int).Rsh(v, 64).Uint64(), Lo: lo.Uint64()}, nil
}

// MarshalText encodes a as a decimal string, so JSON never sees a float.
func (a Amount) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText decodes a decimal string.
func (a *Amount) UnmarshalText(b []byte) error {
	v, err := ParseAmount(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// FormatDecimal formats a with the asset's decimals ("1.5" for 150000000 sat
// at 8 decimals), with integer arithmetic only.
func (a Amount) FormatDecimal(decimals uint8) string {
	s := a.String()
	if decimals == 0 {
		return s
	}
	d := int(decimals)
	for len(s) <= d {
		s = "0" + s
	}
	whole, frac := s[:len(s)-d], s[len(s)-d:]
	for len(frac) > 0 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}

// Signed is a balance that may be below zero, as a house or equity account
// can be (what the house owes or has spent): a sign and a magnitude, never
// the 128-bit wrap-around.
type Signed struct {
	Neg bool
	Abs Amount
}

// String formats s as a decimal integer of base units, "-" before a
// negative one.
func (s Signed) String() string {
	if s.Neg && !s.Abs.IsZero() {
		return "-" + s.Abs.String()
	}
	return s.Abs.String()
}

// FormatDecimal formats s with the asset's decimals.
func (s Signed) FormatDecimal(decimals uint8) string {
	if s.Neg && !s.Abs.IsZero() {
		return "-" + s.Abs.FormatDecimal(decimals)
	}
	return s.Abs.FormatDecimal(decimals)
}

// MarshalText encodes s as a decimal string.
func (s Signed) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a decimal string, "-" before a negative one.
func (s *Signed) UnmarshalText(b []byte) error {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	v, err := ParseAmount(string(b))
	if err != nil {
		return err
	}
	*s = Signed{Neg: neg && !v.IsZero(), Abs: v}
	return nil
}
