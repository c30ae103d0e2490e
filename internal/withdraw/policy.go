package withdraw

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Rules are the policy's limits, from a file. Amounts are base units of
// each asset, by asset code.
type Rules struct {
	// CoolDownSeconds is how long a new intent key or whitelisted
	// address waits before it may be used; default 24 hours.
	CoolDownSeconds int64 `json:"cooldown_seconds"`
	// PerWithdrawalMax, PerCustomerDay and PerAssetHour bound amounts:
	// one withdrawal, one customer over 24 hours, all customers over an
	// hour (Binance 2019 lost 7,000 BTC through many accounts at once).
	PerWithdrawalMax map[string]uint64 `json:"per_withdrawal_max"`
	PerCustomerDay   map[string]uint64 `json:"per_customer_day"`
	PerAssetHour     map[string]uint64 `json:"per_asset_hour"`
	// ApprovalAbove sends larger withdrawals to two operators.
	ApprovalAbove map[string]uint64 `json:"approval_above"`
	// DenyList holds addresses withdrawals may never pay (AML).
	DenyList []string `json:"deny_list"`
	// DustLimit is the smallest amount worth an output.
	DustLimit map[string]uint64 `json:"dust_limit"`
	// Finality holds, by asset code, the tiers of confirmations a credited
	// deposit needs before it may be withdrawn (see Tier). A chain asset
	// left out gets DefaultFinality; there is no way to ask for none.
	Finality map[string][]Tier `json:"finality,omitempty"`
}

// DefaultCoolDown is 24 hours.
const DefaultCoolDown = 24 * 3600

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
// command): a positive cool-down and valid finality tiers.
func (r *Rules) Check() error {
	if r.CoolDownSeconds <= 0 {
		return fmt.Errorf("withdraw: rules: cool-down must be positive")
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
	Amount   uint64
	Time     int64 // unix ns of the request's journal entry
}

// View is the read-only facts the policy needs, from the core's state.
type View interface {
	// Halted answers whether withdrawals of the asset are halted.
	Halted(asset string) error
	// CustomerSince returns what the customer withdrew (requested and not
	// failed) since t (unix ns).
	CustomerSince(customer uint64, asset string, since int64) uint64
	// AssetSince returns what all customers withdrew of asset since t.
	AssetSince(asset string, since int64) uint64
	// Denied answers why an address is on the journal's AML deny list
	// (traced from an incident), or "".
	Denied(address string) string
	// Available returns the customer's available balance of asset.
	Available(customer uint64, asset string) uint64
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
	if d := r.DustLimit[req.Asset]; req.Amount < d {
		return Deny, fmt.Sprintf("amount below the dust limit %d", d)
	}
	if m, ok := r.PerWithdrawalMax[req.Asset]; ok && req.Amount > m {
		return Deny, fmt.Sprintf("amount over the per-withdrawal maximum %d", m)
	}
	// Deposits not yet final cannot leave, nor what was bought with them.
	if most, why := Withdrawable(req.Asset, v.Available(req.Customer, req.Asset), v.Finality(req.Customer)); why != "" && req.Amount > most {
		return Deny, fmt.Sprintf("not final: %s; at most %d may be withdrawn now", why, most)
	}
	const hour, day = int64(3600e9), int64(86400e9)
	if m, ok := r.PerCustomerDay[req.Asset]; ok && v.CustomerSince(req.Customer, req.Asset, req.Time-day)+req.Amount > m {
		return Deny, fmt.Sprintf("customer's 24-hour limit %d reached", m)
	}
	if m, ok := r.PerAssetHour[req.Asset]; ok && v.AssetSince(req.Asset, req.Time-hour)+req.Amount > m {
		return Deny, fmt.Sprintf("hourly limit %d for %s across all customers reached", m, req.Asset)
	}
	if m, ok := r.ApprovalAbove[req.Asset]; ok && req.Amount > m {
		return NeedsApproval, fmt.Sprintf("over %d: two operators approve", m)
	}
	return Allow, ""
}
