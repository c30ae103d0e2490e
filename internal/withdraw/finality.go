package withdraw

import (
	"errors"
	"fmt"
	"math/big"
	"sort"
)

// Finality: a chain deposit is credited for trading after the watcher's
// confirmations, but becomes withdrawable only at a deeper depth that grows
// with its amount, so that a reorganisation deeper than the crediting
// confirmations and shallower than that depth takes back coins that never
// left. The tiers are rules like the limits: journaled with
// set_withdrawal_rules, judged in apply.

// Tier is one finality tier: a deposit of at most UpTo base units (the
// last tier: any amount) is final once its block has Depth confirmations,
// counting the block itself.
type Tier struct {
	// UpTo is the tier's inclusive bound in base units; zero on the last
	// tier, which has no bound.
	UpTo Amount `json:"up_to,omitzero"`
	// Depth is the confirmations needed, at least 1.
	Depth int32 `json:"depth"`
}

// Bounds of finality rules.
const (
	// MaxFinalityTiers bounds the tiers of one asset.
	MaxFinalityTiers = 16
	// MaxFinalityDepth bounds a tier's depth: about 70 days of Bitcoin
	// blocks, beyond which a deposit would be locked in effect for good.
	MaxFinalityDepth = 10_000
	// maxFinalityAssets bounds the assets of one finality rule set.
	maxFinalityAssets = 256
)

// The default tiers, for a chain asset the rules give none for: a deposit
// of up to one whole coin (10^decimals base units) is final at 6
// confirmations, up to ten coins at 20, above that at 100.
const (
	DefaultDepthSmall  = 6
	DefaultDepthMedium = 20
	DefaultDepthLarge  = 100
)

// ErrFinalityRules reports finality tiers that are not valid.
var ErrFinalityRules = errors.New("withdraw: rules: finality")

// DefaultFinality returns the default tiers of a chain asset with the given
// decimals. A bound that does not fit in 128 bits is left out: no amount
// of base units reaches it, so the tier below covers every amount.
func DefaultFinality(decimals uint8) []Tier {
	unit, ok := pow10(decimals)
	if !ok {
		return []Tier{{Depth: DefaultDepthSmall}}
	}
	ten, ok := pow10(decimals + 1)
	if !ok {
		return []Tier{{UpTo: unit, Depth: DefaultDepthSmall}, {Depth: DefaultDepthMedium}}
	}
	return []Tier{{UpTo: unit, Depth: DefaultDepthSmall}, {UpTo: ten, Depth: DefaultDepthMedium}, {Depth: DefaultDepthLarge}}
}

// defaultDepth is the depth of amount by DefaultFinality(decimals),
// without building the tiers (it runs at every deposit credited).
func defaultDepth(decimals uint8, amount Amount) int32 {
	if unit, ok := pow10(decimals); !ok || amount.Cmp(unit) <= 0 {
		return DefaultDepthSmall
	}
	if ten, ok := pow10(decimals + 1); !ok || amount.Cmp(ten) <= 0 {
		return DefaultDepthMedium
	}
	return DefaultDepthLarge
}

// pow10 returns 10^n if it fits in 128 bits.
func pow10(n uint8) (Amount, bool) {
	v, err := AmountFromBig(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil))
	return v, err == nil
}

// CheckTiers checks one asset's tiers: one to MaxFinalityTiers of them,
// bounds strictly increasing, the last without a bound, depths from 1 to
// MaxFinalityDepth and strictly increasing.
func CheckTiers(asset string, ts []Tier) error {
	if len(ts) == 0 {
		return fmt.Errorf("%w: %s: no tiers (leave the asset out for the default tiers)", ErrFinalityRules, asset)
	}
	if len(ts) > MaxFinalityTiers {
		return fmt.Errorf("%w: %s: %d tiers; at most %d", ErrFinalityRules, asset, len(ts), MaxFinalityTiers)
	}
	for i, t := range ts {
		last := i == len(ts)-1
		switch {
		case t.Depth < 1:
			return fmt.Errorf("%w: %s: tier %d: depth %d; at least 1", ErrFinalityRules, asset, i+1, t.Depth)
		case t.Depth > MaxFinalityDepth:
			return fmt.Errorf("%w: %s: tier %d: depth %d; at most %d", ErrFinalityRules, asset, i+1, t.Depth, MaxFinalityDepth)
		case i > 0 && t.Depth <= ts[i-1].Depth:
			return fmt.Errorf("%w: %s: tier %d: depth %d is not deeper than tier %d's %d", ErrFinalityRules, asset, i+1, t.Depth, i, ts[i-1].Depth)
		case last && !t.UpTo.IsZero():
			return fmt.Errorf("%w: %s: the last tier (%d) has no bound: drop its up_to %s or add a tier after it", ErrFinalityRules, asset, i+1, t.UpTo)
		case !last && t.UpTo.IsZero():
			return fmt.Errorf("%w: %s: tier %d needs a bound (up_to, base units above 0): only the last tier has none", ErrFinalityRules, asset, i+1)
		case !last && i > 0 && t.UpTo.Cmp(ts[i-1].UpTo) <= 0:
			return fmt.Errorf("%w: %s: tier %d: bound %s is not above tier %d's %s", ErrFinalityRules, asset, i+1, t.UpTo, i, ts[i-1].UpTo)
		}
	}
	return nil
}

// checkFinality checks every asset's tiers, in code order so that the
// same rules always give the same error.
func (r *Rules) checkFinality() error {
	if len(r.Finality) > maxFinalityAssets {
		return fmt.Errorf("%w: %d assets; at most %d", ErrFinalityRules, len(r.Finality), maxFinalityAssets)
	}
	codes := make([]string, 0, len(r.Finality))
	for c := range r.Finality {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		if c == "" {
			return fmt.Errorf("%w: an empty asset code", ErrFinalityRules)
		}
		if err := CheckTiers(c, r.Finality[c]); err != nil {
			return err
		}
	}
	return nil
}

// Tiers returns the finality tiers of an asset: the rules' own, or the
// default tiers for its decimals.
func (r *Rules) Tiers(asset string, decimals uint8) []Tier {
	if ts, ok := r.Finality[asset]; ok && len(ts) > 0 {
		return ts
	}
	return DefaultFinality(decimals)
}

// FinalityDepth returns the confirmations a deposit of amount base units
// of asset needs before it may be withdrawn: the depth of the first tier
// whose bound it does not exceed.
func (r *Rules) FinalityDepth(asset string, decimals uint8, amount Amount) int32 {
	ts, ok := r.Finality[asset]
	if !ok || len(ts) == 0 {
		return defaultDepth(decimals, amount)
	}
	for _, t := range ts {
		if t.UpTo.IsZero() || amount.Cmp(t.UpTo) <= 0 {
			return t.Depth
		}
	}
	// Unreachable for checked tiers (the last has no bound); the deepest
	// depth is the safe answer.
	return ts[len(ts)-1].Depth
}

// Unfinal is one asset's deposits of a customer that are credited but not
// yet final, as the core's state knows them.
type Unfinal struct {
	Asset string
	// Amount is the sum of those deposits credited to the available
	// balance (a deposit held for review counts once released).
	Amount Amount
	// Available is the customer's available balance of the asset.
	Available Amount
	// Count is how many deposits make up Amount.
	Count int
	// Deposit, DepositAmount, Confirmations and Depth describe the one of
	// them that becomes final first: its outpoint (txid:vout), its amount,
	// its confirmations at the journaled chain tip and the depth it needs.
	Deposit       string
	DepositAmount Amount
	Confirmations int32
	Depth         int32
}

// Owed is what a customer owes from a reversed deposit, in one asset.
type Owed struct {
	Asset  string
	Amount Amount
}

// Finality is what the policy knows of a customer's deposits that are not
// final and of what they owe, in a stable order (by asset).
type Finality struct {
	Unfinal []Unfinal
	Owed    []Owed
}

// describe names the deposit that becomes final first.
func (u *Unfinal) describe() string {
	s := fmt.Sprintf("deposit %s of %s %s has %d of the %d confirmations it needs", u.Deposit, u.DepositAmount, u.Asset, u.Confirmations, u.Depth)
	if u.Count > 1 {
		s += fmt.Sprintf(" (%d deposits of %s not yet final)", u.Count, u.Asset)
	}
	return s
}

// Withdrawable returns how much of its available balance of asset the
// customer may withdraw now, given what the core knows of their deposits,
// and, when that is less than the available balance, why:
//
//   - nothing while they owe anything from a reversed deposit;
//   - nothing of any asset while their available balance of some asset is
//     below their not-yet-final deposits of it (they traded some away:
//     what they bought with it could leave in its place);
//   - otherwise the available balance less the not-yet-final deposits.
func Withdrawable(asset string, available Amount, f Finality) (Amount, string) {
	for _, o := range f.Owed {
		if !o.Amount.IsZero() {
			return Amount{}, fmt.Sprintf("the customer owes %s %s from a deposit reversed after it was traded away: no withdrawals until it is repaid", o.Amount, o.Asset)
		}
	}
	for i := range f.Unfinal {
		u := &f.Unfinal[i]
		if !u.Amount.IsZero() && u.Available.Cmp(u.Amount) < 0 {
			return Amount{}, fmt.Sprintf("%s, and the customer's available %s (%s) is below their deposits not yet final (%s): no withdrawal of any asset until they are final", u.describe(), u.Asset, u.Available, u.Amount)
		}
	}
	for i := range f.Unfinal {
		u := &f.Unfinal[i]
		if u.Asset == asset && !u.Amount.IsZero() {
			left, short := available.Sub(u.Amount)
			if short {
				left = Amount{}
			}
			return left, fmt.Sprintf("%s: %s of the available %s %s is not yet final", u.describe(), u.Amount, available, asset)
		}
	}
	return available, ""
}
