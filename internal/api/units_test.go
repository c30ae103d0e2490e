package api

import (
	"errors"
	"strings"
	"testing"

	"kinko/internal/ledger"
)

// TestWideUnits: a withdrawal's amount is a decimal string of base units
// up to 2^128-1 (20 ETH is above 2^64 wei); a JSON number, a sign, a
// fraction, an exponent, a space or 2^128 is a bad_field naming "amount".
func TestWideUnits(t *testing.T) {
	for _, ok := range []string{"1", "20000000000000000000", "340282366920938463463374607431768211455"} {
		var req WithdrawalRequest
		if err := decodeStrict([]byte(`{"amount":"`+ok+`"}`), &req); err != nil || ledger.Amount(req.Amount).String() != ok {
			t.Errorf("amount %s = %v, %v", ok, ledger.Amount(req.Amount), err)
		}
	}
	for _, bad := range []string{`20000`, `"-1"`, `"1.5"`, `"1e3"`, `" 5"`, `""`, `"340282366920938463463374607431768211456"`, `true`} {
		var req WithdrawalRequest
		err := decodeStrict([]byte(`{"amount":`+bad+`}`), &req)
		var fe *fieldError
		if !errors.As(err, &fe) || fe.field != "amount" || !strings.Contains(fe.want, "decimal string") {
			t.Errorf("amount %s: %v; want a bad field naming amount", bad, err)
		}
	}
	b, _ := WideUnits(ledger.Amount{Hi: 1}).MarshalText()
	if string(b) != "18446744073709551616" {
		t.Errorf("MarshalText(2^64) = %s", b)
	}
}
