package api

import (
	"strings"

	"kinko/internal/core"
	"kinko/internal/ledger"
)

// How the console writes numbers: digits grouped by thousands, a coin with
// all its decimals (BTC with 8: "1,234.50000000 BTC"), yen whole
// ("1,000,000 JPY"), the asset's code after the amount.

// groupDigits puts a comma between each three digits of a decimal number's
// whole part ("1234567.5" → "1,234,567.5"); a sign stays in front.
func groupDigits(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "−") {
		_, size := firstRune(s)
		sign, s = "−", s[size:]
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if hasFrac {
		return sign + b.String() + "." + frac
	}
	return sign + b.String()
}

func firstRune(s string) (rune, int) {
	for i, r := range s {
		if i == 0 {
			return r, len(string(r))
		}
	}
	return 0, 0
}

// fixedDecimal writes base units a with all of decimals shown.
func fixedDecimal(a ledger.Amount, decimals uint8) string {
	s := a.String()
	if decimals == 0 {
		return s
	}
	d := int(decimals)
	for len(s) <= d {
		s = "0" + s
	}
	return s[:len(s)-d] + "." + s[len(s)-d:]
}

// amountText writes base units of an asset as the console shows them:
// grouped, every decimal, the code after.
func amountText(a ledger.Amount, decimals uint8, code string) string {
	return groupDigits(fixedDecimal(a, decimals)) + " " + code
}

// signedText is amountText for a balance that may be below zero.
func signedText(v ledger.Signed, decimals uint8, code string) string {
	s := amountText(v.Abs, decimals, code)
	if v.Neg && !v.Abs.IsZero() {
		return "−" + s
	}
	return s
}

// int64Text is amountText for a signed 64-bit count of base units.
func int64Text(v int64, decimals uint8, code string) string {
	if v < 0 {
		return signedText(ledger.Signed{Neg: true, Abs: ledger.AmountOf(uint64(-(v + 1)) + 1)}, decimals, code)
	}
	return amountText(ledger.AmountOf(uint64(v)), decimals, code)
}

// assetAmount writes base units of the asset with id as the console shows
// them.
func assetAmount(st *core.State, id ledger.AssetID, a ledger.Amount) string {
	as, ok := st.Ledger.Asset(id)
	if !ok {
		return groupDigits(a.String())
	}
	return amountText(a, as.Decimals, as.Code)
}

// countText groups a count's digits.
func countText[T ~int | ~int64 | ~uint64 | ~uint32](n T) string {
	if n < 0 {
		return "−" + groupDigits(ledger.AmountOf(absU(int64(n))).String())
	}
	return groupDigits(ledger.AmountOf(uint64(n)).String())
}

func absU(v int64) uint64 {
	if v < 0 {
		return uint64(-(v + 1)) + 1
	}
	return uint64(v)
}
