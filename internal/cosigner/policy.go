// Package cosigner is kinko's independent co-signer: it holds the second
// hot key and signs a withdrawal transaction only after checking, itself,
// everything that makes it legitimate. Every input of its decisions has its
// root of trust on its own host:
//
//   - which wallets are ours: the descriptors pinned in its policy file,
//     never a journal entry;
//   - how much may leave, fees and payments to our own wallets included:
//     the limits in its policy file, counted by its own clock, the counters
//     kept in its state directory;
//   - that a withdrawal was asked for: the customer's intent signature, by a
//     key and to an address the co-signer itself has known for the
//     cool-down (first-seen times kept in its state directory, started only
//     by registrations that took effect in its own replay);
//   - the history: the journal as far as it verified it, mirrored in its
//     state directory (internal/mirror); a shorter or rewritten journal is
//     refused with a critical alert;
//   - halts: its own durable halts, set by the watcher directly and lifted
//     on its host, or by a lift_halt of the asset's withdrawals that two
//     operators pinned in its policy file asked for and approved, each
//     WebAuthn assertion verified here against the pinned key (lifts.go).
//
// The policy file is changed only on its host (reloaded on SIGHUP); there
// is no network route to change it. What it signs is what it checked: it
// computes every sighash from the PSBT itself, SIGHASH_ALL only.
package cosigner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"kinko/internal/custody"
	"kinko/internal/ethwallet"
	"kinko/internal/passkey"
	"kinko/internal/wallet"
	"kinko/internal/withdraw"
)

// Policy is the co-signer's own limits and wallets, from its file.
type Policy struct {
	// CoolDown is how long a key or address must have been known to the
	// co-signer, by its own clock, before it is trusted.
	CoolDown Duration `json:"cooldown"`
	// Wallets are our own wallets, pinned here: the co-signer signs inputs
	// only of the pinned hot wallets holding its key, and treats an output
	// as ours only if it pays a pinned wallet.
	Wallets []PinnedWallet `json:"wallets"`
	// Safes are our Safe multisig wallets on Ethereum chains, pinned
	// here as the Bitcoin wallets are: the co-signer signs only for the
	// pinned hot Safe of an asset, with the chain id and address written
	// here, and batches only through the MultiSendCallOnly pinned with it.
	Safes []PinnedSafe `json:"safes,omitempty"`
	// Limits are per asset code. An asset missing here is never signed.
	Limits map[string]Limits `json:"limits"`
	// AllAssets bounds what leaves across every asset.
	AllAssets AllLimits `json:"all_assets"`
	// Lifters are the operators whose signed lift_halt of an asset's
	// withdrawals, asked by one and approved by another, lifts the
	// co-signer's own halt of that asset; LiftRP is the relying party
	// (console domain and origins) their assertions are made for. Without
	// lifters, halts are lifted on this host only.
	Lifters []Lifter    `json:"lifters,omitempty"`
	LiftRP  *passkey.RP `json:"lift_rp,omitempty"`
}

// PinnedWallet is one of our wallets as its key holders wrote it on the
// co-signer's host.
type PinnedWallet struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"` // cold-customer, hot-customer, cold-house, hot-house
	Asset      string `json:"asset"`
	Descriptor string `json:"descriptor"`
}

// PinnedSafe is one of our Safe multisig wallets as its key holders
// wrote it on the co-signer's host: what a SafeTx's EIP-712 domain (chain
// id, Safe address) is computed from, never a request's word.
type PinnedSafe struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"` // cold-customer, hot-customer, cold-house, hot-house
	Asset string `json:"asset"`
	// ChainID is the chain the Safe lives on (EIP-155).
	ChainID uint64 `json:"chain_id"`
	// Address is the Safe's address; MultiSend the MultiSendCallOnly the
	// hot signer's batches go through, the only target of a DELEGATECALL
	// the co-signer signs.
	Address   string `json:"address"`
	MultiSend string `json:"multisend"`
	// Descriptor, if set, is the Safe's custody descriptor as the wallet
	// is registered in the journal (internal/ethwallet): a registered
	// Safe wallet is ours only if it is pinned here by its descriptor,
	// and VerifySafes checks a hot Safe's owners and threshold on chain
	// against it. Without it every Safe wallet the journal registers is
	// alerted on as not pinned here.
	Descriptor string `json:"descriptor,omitempty"`
}

// Limits bound one asset, in its base units, by the co-signer's clock.
// What leaves a hot wallet is everything but the change back to it:
// withdrawals, payments to our other wallets, and the network fee. The
// amounts are 128-bit (wei: 2^64 is only 18.4 ether), written as JSON
// numbers of any size or decimal strings.
type Limits struct {
	// PerCustomerHour, PerCustomerDay bound one customer's withdrawals.
	PerCustomerHour withdraw.Amount `json:"per_customer_hour"`
	PerCustomerDay  withdraw.Amount `json:"per_customer_day"`
	// PerAssetHour, PerAssetDay bound everything that leaves, fees
	// included.
	PerAssetHour withdraw.Amount `json:"per_asset_hour"`
	PerAssetDay  withdraw.Amount `json:"per_asset_day"`
	// FeeMax bounds one transaction's fee; FeeHour and FeeDay all fees.
	FeeMax  withdraw.Amount `json:"fee_max"`
	FeeHour withdraw.Amount `json:"fee_hour"`
	FeeDay  withdraw.Amount `json:"fee_day"`
	// TxHour and TxDay bound the transactions signed.
	TxHour uint64 `json:"tx_hour"`
	TxDay  uint64 `json:"tx_day"`
	// YenPerCoin and Decimals value the asset for the all-asset limits:
	// one coin (10^Decimals base units) is worth YenPerCoin yen. Set it at
	// or above the market: it only bounds.
	YenPerCoin uint64 `json:"yen_per_coin"`
	Decimals   uint8  `json:"decimals"`
}

// AllLimits bound every asset together.
type AllLimits struct {
	// YenHour, YenDay bound the value of everything that leaves, valued
	// at each asset's YenPerCoin.
	YenHour uint64 `json:"yen_hour"`
	YenDay  uint64 `json:"yen_day"`
	TxHour  uint64 `json:"tx_hour"`
	TxDay   uint64 `json:"tx_day"`
}

// yen values amount base units of an asset, rounded up.
func (l Limits) yen(amount withdraw.Amount) *big.Int {
	v := new(big.Int).Mul(amount.Big(), new(big.Int).SetUint64(l.YenPerCoin))
	d := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(l.Decimals)), nil)
	q, r := new(big.Int).QuoRem(v, d, new(big.Int))
	if r.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	return q
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

// ErrPolicy reports a policy file that is not usable.
var ErrPolicy = errors.New("cosigner: policy")

// LoadPolicy reads and checks a policy file.
func LoadPolicy(path string, net *chaincfg.Params) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	return ParsePolicy(b, net)
}

// ParsePolicy parses a policy strictly: unknown fields, a bad descriptor,
// a wallet without its asset's limits, a zero limit or a limit the day
// cannot hold are refused.
func ParsePolicy(b []byte, net *chaincfg.Params) (*Policy, error) {
	var p Policy
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrPolicy)
	}
	if p.CoolDown.Duration <= 0 {
		return nil, fmt.Errorf("%w: cooldown must be positive", ErrPolicy)
	}
	if err := checkLifters(&p); err != nil {
		return nil, err
	}
	names := map[string]bool{}
	hot := 0
	for i, w := range p.Wallets {
		k, ok := custody.ParseWalletKind(w.Kind)
		if !ok {
			return nil, fmt.Errorf("%w: wallet %d: kind %q is not one of cold-customer, hot-customer, cold-house, hot-house", ErrPolicy, i+1, w.Kind)
		}
		if w.Name == "" || names[w.Name] {
			return nil, fmt.Errorf("%w: wallet %d: a unique name is needed", ErrPolicy, i+1)
		}
		names[w.Name] = true
		if _, err := wallet.Parse(w.Descriptor, net); err != nil {
			return nil, fmt.Errorf("%w: wallet %s: %w", ErrPolicy, w.Name, err)
		}
		if _, ok := p.Limits[w.Asset]; !ok {
			return nil, fmt.Errorf("%w: wallet %s: asset %q has no limits", ErrPolicy, w.Name, w.Asset)
		}
		if k == custody.HotCustomer {
			hot++
		}
	}
	hotSafe, descs := map[string]bool{}, map[string]bool{}
	for i, sf := range p.Safes {
		k, ok := custody.ParseWalletKind(sf.Kind)
		if !ok {
			return nil, fmt.Errorf("%w: safe %d: kind %q is not one of cold-customer, hot-customer, cold-house, hot-house", ErrPolicy, i+1, sf.Kind)
		}
		if sf.Name == "" || names[sf.Name] {
			return nil, fmt.Errorf("%w: safe %d: a unique name is needed", ErrPolicy, i+1)
		}
		names[sf.Name] = true
		if sf.ChainID == 0 {
			return nil, fmt.Errorf("%w: safe %s: chain_id must be set", ErrPolicy, sf.Name)
		}
		a, err := parseEthAddress(sf.Address)
		if err != nil {
			return nil, fmt.Errorf("%w: safe %s: address: %w", ErrPolicy, sf.Name, err)
		}
		m, err := parseEthAddress(sf.MultiSend)
		if err != nil {
			return nil, fmt.Errorf("%w: safe %s: multisend: %w", ErrPolicy, sf.Name, err)
		}
		if a == m {
			return nil, fmt.Errorf("%w: safe %s: the Safe and its MultiSendCallOnly are one address", ErrPolicy, sf.Name)
		}
		if _, ok := p.Limits[sf.Asset]; !ok {
			return nil, fmt.Errorf("%w: safe %s: asset %q has no limits", ErrPolicy, sf.Name, sf.Asset)
		}
		if sf.Descriptor != "" {
			d, err := ethwallet.Parse(sf.Descriptor)
			if err != nil {
				return nil, fmt.Errorf("%w: safe %s: descriptor: %w", ErrPolicy, sf.Name, err)
			}
			if d.ChainID != sf.ChainID {
				return nil, fmt.Errorf("%w: safe %s: the descriptor is of chain %d, the Safe pinned on %d", ErrPolicy, sf.Name, d.ChainID, sf.ChainID)
			}
			if descs[sf.Descriptor] {
				return nil, fmt.Errorf("%w: safe %s: the descriptor of another Safe", ErrPolicy, sf.Name)
			}
			descs[sf.Descriptor] = true
		}
		if k == custody.HotCustomer {
			if hotSafe[sf.Asset] {
				return nil, fmt.Errorf("%w: safe %s: a second hot-customer Safe of %s", ErrPolicy, sf.Name, sf.Asset)
			}
			hotSafe[sf.Asset] = true
			hot++
		}
	}
	if hot == 0 {
		return nil, fmt.Errorf("%w: no hot-customer wallet or Safe pinned: nothing could be signed", ErrPolicy)
	}
	for code, l := range p.Limits {
		for _, f := range []struct {
			name string
			v    withdraw.Amount
		}{{"per_customer_hour", l.PerCustomerHour}, {"per_customer_day", l.PerCustomerDay}, {"per_asset_hour", l.PerAssetHour},
			{"per_asset_day", l.PerAssetDay}, {"fee_max", l.FeeMax}, {"fee_hour", l.FeeHour}, {"fee_day", l.FeeDay},
			{"tx_hour", withdraw.AmountOf(l.TxHour)}, {"tx_day", withdraw.AmountOf(l.TxDay)}, {"yen_per_coin", withdraw.AmountOf(l.YenPerCoin)}} {
			if f.v.IsZero() {
				return nil, fmt.Errorf("%w: limits of %s: %s must be set and positive", ErrPolicy, code, f.name)
			}
		}
		if l.Decimals > 18 {
			return nil, fmt.Errorf("%w: limits of %s: decimals %d", ErrPolicy, code, l.Decimals)
		}
		if l.PerCustomerDay.Cmp(l.PerCustomerHour) < 0 || l.PerAssetDay.Cmp(l.PerAssetHour) < 0 || l.FeeDay.Cmp(l.FeeHour) < 0 || l.TxDay < l.TxHour ||
			l.FeeHour.Cmp(l.FeeMax) < 0 || l.PerAssetHour.Cmp(l.PerCustomerHour) < 0 {
			return nil, fmt.Errorf("%w: limits of %s: a day's limit below the hour's, the fee budget below one fee, or a customer's hour above the asset's", ErrPolicy, code)
		}
	}
	a := p.AllAssets
	if a.YenHour == 0 || a.YenDay < a.YenHour || a.TxHour == 0 || a.TxDay < a.TxHour {
		return nil, fmt.Errorf("%w: all_assets needs yen_hour, yen_day, tx_hour and tx_day, the day's at least the hour's", ErrPolicy)
	}
	return &p, nil
}
