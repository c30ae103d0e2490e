package withdraw

import (
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"strings"
)

// Rules are the policy's limits, from a file. Amounts are base units of
// each asset, by asset code, up to 2^128-1 (a JSON number of any size or
// a decimal string; see Amount). An asset the four amount limits do not name
// gets the defaults (see LimitsFor): there is no way to ask for no limit
// but to write a value that high.
type Rules struct {
	// CoolDownSeconds is how long a new intent key or whitelisted
	// address waits before it may be used; default 24 hours.
	CoolDownSeconds int64 `json:"cooldown_seconds"`
	// PerWithdrawalMax, PerCustomerDay and PerAssetHour bound amounts:
	// one withdrawal, one customer over 24 hours, all customers over an
	// hour (Binance 2019 lost 7,000 BTC through many accounts at once).
	PerWithdrawalMax map[string]Amount `json:"per_withdrawal_max"`
	PerCustomerDay   map[string]Amount `json:"per_customer_day"`
	PerAssetHour     map[string]Amount `json:"per_asset_hour"`
	// ApprovalAbove sends larger withdrawals to two operators.
	ApprovalAbove map[string]Amount `json:"approval_above"`
	// DenyList holds addresses withdrawals may never pay (AML).
	DenyList []string `json:"deny_list"`
	// DustLimit is the smallest amount worth an output.
	DustLimit map[string]Amount `json:"dust_limit"`
	// WithdrawalFee is, by asset code, the fee in base units the customer
	// pays on every withdrawal of a chain asset (satoshi for BTC, wei for
	// ETH), held with the amount at the request and credited to the
	// house's fee revenue when the withdrawal is paid on chain (nothing
	// is charged for one that fails). An asset it does not name costs
	// nothing. The network's fee itself (a Bitcoin transaction's fee, an
	// Ether batch's gas) is the house's, charged to equity.
	WithdrawalFee map[string]Amount `json:"withdrawal_fee,omitempty"`
	// Finality holds, by asset code, the tiers of confirmations a credited
	// deposit needs before it may be withdrawn (see Tier). A chain asset
	// left out gets DefaultFinality; there is no way to ask for none.
	Finality map[string][]Tier `json:"finality,omitempty"`
}

// DefaultCoolDown is 24 hours.
const DefaultCoolDown = 24 * 3600

// The default amount limits of a chain asset the rules name no value for,
// in thousandths of one whole coin (10^decimals base units). They are sized
// for bitcoin, the most valuable coin held: one withdrawal at most one
// coin, a customer at most two coins a day, all customers together at most
// ten coins an hour (the bound on a theft through many accounts at once,
// as Binance's 7,000 BTC in 2019), and two operators above half a coin.
// For any cheaper coin these are less in value, so an asset nobody
// configured errs on the tight side.
const (
	DefaultPerWithdrawalMilli  = 1_000
	DefaultPerCustomerDayMilli = 2_000
	DefaultPerAssetHourMilli   = 10_000
	DefaultApprovalAboveMilli  = 500
)

// The default amount limits of a fiat asset the rules name no value for,
// in whole units of the currency (yen): 10,000,000 a withdrawal,
// 20,000,000 a customer a day, 100,000,000 for all customers an hour, two
// operators above 5,000,000. They are sized for yen; another currency
// should carry its own values.
const (
	DefaultFiatPerWithdrawal  = 10_000_000
	DefaultFiatPerCustomerDay = 20_000_000
	DefaultFiatPerAssetHour   = 100_000_000
	DefaultFiatApprovalAbove  = 5_000_000
)

// Limits are one asset's amount limits in its base units.
type Limits struct {
	PerWithdrawalMax Amount `json:"per_withdrawal_max"`
	PerCustomerDay   Amount `json:"per_customer_day"`
	PerAssetHour     Amount `json:"per_asset_hour"`
	ApprovalAbove    Amount `json:"approval_above"`
}

// scaled is units whole units of an asset of decimals (divided by per),
// in base units, at most MaxAmount.
func scaled(units int64, per int64, decimals uint8) Amount {
	n := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(decimals)), nil)
	n.Mul(n, big.NewInt(units)).Quo(n, big.NewInt(per))
	a, err := AmountFromBig(n)
	if err != nil {
		return MaxAmount
	}
	return a
}

// DefaultLimits returns the default limits of an asset with decimals, of
// the fiat class or a chain's.
func DefaultLimits(decimals uint8, fiat bool) Limits {
	if fiat {
		return Limits{PerWithdrawalMax: scaled(DefaultFiatPerWithdrawal, 1, decimals), PerCustomerDay: scaled(DefaultFiatPerCustomerDay, 1, decimals),
			PerAssetHour: scaled(DefaultFiatPerAssetHour, 1, decimals), ApprovalAbove: scaled(DefaultFiatApprovalAbove, 1, decimals)}
	}
	return Limits{PerWithdrawalMax: scaled(DefaultPerWithdrawalMilli, 1000, decimals), PerCustomerDay: scaled(DefaultPerCustomerDayMilli, 1000, decimals),
		PerAssetHour: scaled(DefaultPerAssetHourMilli, 1000, decimals), ApprovalAbove: scaled(DefaultApprovalAboveMilli, 1000, decimals)}
}

// LimitsFor returns the amount limits of asset: each the rules' value if
// they name one, else the default for its decimals and class.
func (r *Rules) LimitsFor(asset string, decimals uint8, fiat bool) Limits {
	l := DefaultLimits(decimals, fiat)
	for _, f := range []struct {
		m   map[string]Amount
		dst *Amount
	}{{r.PerWithdrawalMax, &l.PerWithdrawalMax}, {r.PerCustomerDay, &l.PerCustomerDay}, {r.PerAssetHour, &l.PerAssetHour}, {r.ApprovalAbove, &l.ApprovalAbove}} {
		if v, ok := f.m[asset]; ok {
			*f.dst = v
		}
	}
	return l
}

// LoadRules reads and checks a rules file.
func LoadRules(path string) (*Rules, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseRules(b)
}

// ParseRules parses rules strictly.
func ParseRules(b []byte) (*Rules, error) {
	var r Rules
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		return nil, fmt.Errorf("withdraw: rules: %w", err)
	}
	if r.CoolDownSeconds == 0 {
		r.CoolDownSeconds = DefaultCoolDown
	}
	if d.More() {
		return nil, fmt.Errorf("withdraw: rules: trailing data after the rules")
	}
	if err := r.Check(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Check checks rules that came from outside (a file or a journaled
// command): a positive cool-down, withdrawal fees of named assets, and
// valid finality tiers.
func (r *Rules) Check() error {
	if r.CoolDownSeconds <= 0 {
		return fmt.Errorf("withdraw: rules: cool-down must be positive")
	}
	for a := range r.WithdrawalFee {
		if a == "" || len(a) > 10 {
			return fmt.Errorf("withdraw: rules: withdrawal fee of asset %q", a)
		}
	}
	return r.checkFinality()
}

// Decision is the policy's answer.
type Decision int

// Decisions.
const (
	Allow Decision = iota
	NeedsApproval
	Deny
)

// Request is what the policy judges.
type Request struct {
	Customer uint64
	Asset    string
	Address  string
	Amount   Amount
	// Fee is the withdrawal fee charged with it (Rules.WithdrawalFee).
	Fee  Amount
	Time int64 // unix ns of the request's journal entry
	// Decimals and Fiat are the asset's, for the default limits.
	Decimals uint8
	Fiat     bool
}

// View is the read-only facts the policy needs, from the core's state.
type View interface {
	// Halted answers whether withdrawals of the asset are halted.
	Halted(asset string) error
	// CustomerSince returns what the customer withdrew (requested and not
	// failed) since t (unix ns).
	CustomerSince(customer uint64, asset string, since int64) Amount
	// AssetSince returns what all customers withdrew of asset since t.
	AssetSince(asset string, since int64) Amount
	// Denied answers why an address is on the journal's AML deny list
	// (traced from an incident), or "".
	Denied(address string) string
	// Available returns the customer's available balance of asset.
	Available(customer uint64, asset string) Amount
	// Finality returns the customer's deposits not yet final and what
	// they owe from reversed deposits.
	Finality(customer uint64) Finality
}

// Evaluate judges a request: a pure function of the request, the view and
// the rules. It returns the decision and, unless Allow, why.
func (r *Rules) Evaluate(req Request, v View) (Decision, string) {
	if err := v.Halted(req.Asset); err != nil {
		return Deny, err.Error()
	}
	for _, a := range r.DenyList {
		if a == req.Address {
			return Deny, "address on the AML deny list"
		}
	}
	if why := v.Denied(req.Address); why != "" {
		return Deny, "address on the AML deny list: " + why
	}
	if d := r.DustLimit[req.Asset]; req.Amount.Cmp(d) < 0 {
		return Deny, fmt.Sprintf("amount below the dust limit %s", d)
	}
	lim := r.LimitsFor(req.Asset, req.Decimals, req.Fiat)
	if req.Amount.Cmp(lim.PerWithdrawalMax) > 0 {
		return Deny, fmt.Sprintf("amount over the per-withdrawal maximum %s", lim.PerWithdrawalMax)
	}
	// Deposits not yet final cannot leave, nor what was bought with them.
	if most, why := Withdrawable(req.Asset, v.Available(req.Customer, req.Asset), v.Finality(req.Customer)); why != "" && sumOver(req.Amount, req.Fee, most) {
		return Deny, fmt.Sprintf("not final: %s; at most %s may be withdrawn now", why, most)
	}
	const hour, day = int64(3600e9), int64(86400e9)
	if m := lim.PerCustomerDay; sumOver(v.CustomerSince(req.Customer, req.Asset, req.Time-day), req.Amount, m) {
		return Deny, fmt.Sprintf("customer's 24-hour limit %s reached", m)
	}
	if m := lim.PerAssetHour; sumOver(v.AssetSince(req.Asset, req.Time-hour), req.Amount, m) {
		return Deny, fmt.Sprintf("hourly limit %s for %s across all customers reached", m, req.Asset)
	}
	if m := lim.ApprovalAbove; req.Amount.Cmp(m) > 0 {
		return NeedsApproval, fmt.Sprintf("over %s: two operators approve", m)
	}
	return Allow, ""
}
