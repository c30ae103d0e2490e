// Package cosigner is kinko's independent co-signer: it holds the second
// hot key and signs a withdrawal transaction only after checking, itself,
// everything that makes it legitimate. It trusts no machine: it follows the
// core's journal and verifies the hash chain entry by entry (and stops
// signing at any break), re-verifies each customer's intent signature, times
// cool-downs with its own clock from when it first saw a key or address,
// counts its own velocity limits, and recomputes from the descriptors which
// outputs go back to our hot wallet. Its policy is a file on its own host,
// changed only there (reloaded on SIGHUP); there is no network route to
// change it. What it signs is what it checked: it computes every sighash
// from the PSBT itself.
package cosigner

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// Policy is the co-signer's own limits, from its file.
type Policy struct {
	// CoolDown is how long a key or address must have been known to the
	// co-signer, by its own clock, before it is trusted.
	CoolDown Duration `json:"cooldown"`
	// PerCustomerHour, PerAssetHour: most the co-signer signs away in any
	// hour, per customer and asset, and per asset across all customers,
	// in base units by asset code. An asset missing here is never signed.
	PerCustomerHour map[string]uint64 `json:"per_customer_hour"`
	PerAssetHour    map[string]uint64 `json:"per_asset_hour"`
	// FeeMax is the largest fee of one transaction, in base units.
	FeeMax map[string]uint64 `json:"fee_max"`
}

// Duration is a time.Duration written as "24h" in the file.
type Duration struct{ time.Duration }

// UnmarshalJSON reads "24h".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes "24h0m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// LoadPolicy reads and checks a policy file.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cosigner: policy: %w", err)
	}
	return ParsePolicy(b)
}

// ParsePolicy parses a policy strictly.
func ParsePolicy(b []byte) (*Policy, error) {
	var p Policy
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	if err := d.Decode(&p); err != nil {
		return nil, fmt.Errorf("cosigner: policy: %w", err)
	}
	if p.CoolDown.Duration <= 0 {
		return nil, fmt.Errorf("cosigner: policy: cool-down must be positive")
	}
	return &p, nil
}
