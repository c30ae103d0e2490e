package api

import (
	"encoding/json"
	"reflect"
	"strconv"
	"time"

	"kinko/internal/ledger"
)

// WideUnits is a whole number of base units up to 2^128-1, for amounts
// that do not fit in Units (a withdrawal of wei: 2^63 wei is only 9.2
// ether), written in JSON as a decimal string like Units, in and out. A
// JSON number, a sign, a fraction or 2^128 and above is refused, naming
// the field (decodeStrict).
type WideUnits ledger.Amount

// MarshalText writes the decimal digits.
func (u WideUnits) MarshalText() ([]byte, error) { return []byte(ledger.Amount(u).String()), nil }

// UnmarshalText reads decimal digits below 2^128, nothing else.
func (u *WideUnits) UnmarshalText(b []byte) error {
	v, err := ledger.ParseAmount(string(b))
	if err != nil {
		return &json.UnmarshalTypeError{Value: "string " + strconv.Quote(string(b)), Type: typeWideUnits}
	}
	*u = WideUnits(v)
	return nil
}

var typeWideUnits = reflect.TypeFor[WideUnits]()

// Units is a whole number of base units (satoshi, yen), quote base units
// per whole coin (a price) or quantity units, written in JSON as a
// decimal string ("100000000"), in and out: money is never a JSON number,
// which a client may read as a float and round. A JSON number where Units
// is taken is refused, naming the field (decodeStrict).
type Units int64

// MarshalText writes the decimal digits.
func (u Units) MarshalText() ([]byte, error) { return strconv.AppendInt(nil, int64(u), 10), nil }

// UnmarshalText reads an optional minus sign and decimal digits, nothing
// else (no sign "+", no spaces, no fraction, no exponent).
func (u *Units) UnmarshalText(b []byte) error {
	ok := len(b) > 0 && len(b) <= 20
	for i, c := range b {
		if !(c >= '0' && c <= '9' || c == '-' && i == 0 && len(b) > 1) {
			ok = false
		}
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if !ok || err != nil {
		return &json.UnmarshalTypeError{Value: "string " + strconv.Quote(string(b)), Type: typeUnits}
	}
	*u = Units(v)
	return nil
}

// Time is a time as the API takes it in a body: an RFC 3339 string
// ("2026-01-26T09:00:00Z", with nanoseconds when they matter). A JSON
// number (unix seconds or nanoseconds) is refused, naming the field.
// Answers carry time.Time, which writes the same form.
type Time struct{ time.Time }

// MarshalText writes RFC 3339 with nanoseconds.
func (t Time) MarshalText() ([]byte, error) { return []byte(t.UTC().Format(time.RFC3339Nano)), nil }

// UnmarshalText reads RFC 3339.
func (t *Time) UnmarshalText(b []byte) error {
	v, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return &json.UnmarshalTypeError{Value: "string " + strconv.Quote(string(b)), Type: typeTime}
	}
	t.Time = v
	return nil
}

var typeTime = reflect.TypeFor[Time]()
