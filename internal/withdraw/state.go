package withdraw

import (
	"crypto/ed25519"
	"errors"
	"fmt"
)

// KeyRecord is a customer's intent key.
type KeyRecord struct {
	Customer   uint64   `json:"customer"`
	PubKey     [32]byte `json:"pubkey"`
	Registered int64    `json:"registered"` // unix ns of the journal entry
}

// AddressRecord is a whitelisted withdrawal address.
type AddressRecord struct {
	Customer uint64 `json:"customer"`
	Asset    string `json:"asset"`
	Address  string `json:"address"`
	Added    int64  `json:"added"`
}

// Status is where a withdrawal stands.
type Status string

// Withdrawal states: requested -> held -> (awaiting_approval ->) queued ->
// signing -> broadcast -> confirming -> done | rejected | failed.
const (
	StatusAwaitingApproval Status = "awaiting_approval"
	StatusQueued           Status = "queued"
	StatusRejected         Status = "rejected"
	StatusFailed           Status = "failed"
	StatusDone             Status = "done"
)

// Withdrawal is a customer's withdrawal and everything the co-signer needs
// to check it for itself: the intent and its signature.
type Withdrawal struct {
	ID       string   `json:"id"` // customer:request id
	Customer uint64   `json:"customer"`
	Intent   Intent   `json:"intent"`
	PubKey   [32]byte `json:"pubkey"`
	Sig      []byte   `json:"sig"`
	Status   Status   `json:"status"`
	Reason   string   `json:"reason,omitempty"`
	Time     int64    `json:"time"`
	// HoldHi and HoldLo are the ledger id of the hold (a pending transfer)
	// of the amount and the fee.
	HoldHi, HoldLo uint64
	// Fee is the withdrawal fee held with the amount (Rules.WithdrawalFee
	// at the request), the house's once the withdrawal is paid.
	Fee Amount `json:"fee,omitzero"`
}

// GasAccount is the house's gas account of an account-model asset: the
// externally owned account that sends the Safe's execTransaction and pays
// its gas in the asset (Ether), registered by its address.
type GasAccount struct {
	Asset      string `json:"asset"`
	Address    string `json:"address"` // 0x, EIP-55
	Registered int64  `json:"registered"`
	// Fundings are the transactions that paid into it, recorded
	// (fund_gas_account), in the order recorded.
	Fundings []GasFunding `json:"fundings,omitempty"`
}

// GasFunding is one recorded payment into a gas account: its
// transaction, the wei and, when known, the block height it was mined in
// (0 when whoever recorded it did not give it).
type GasFunding struct {
	Tx     string `json:"tx"`
	Amount Amount `json:"amount"`
	Height int32  `json:"height,omitempty"`
}

// Errors of withdrawal commands.
var (
	ErrKeyExists        = errors.New("withdraw: intent key already registered")
	ErrKeyUnknown       = errors.New("withdraw: signed with a key not registered for this customer")
	ErrKeyCooling       = errors.New("withdraw: intent key still in its cool-down")
	ErrAddressUnknown   = errors.New("withdraw: address not on the customer's whitelist")
	ErrAddressCooling   = errors.New("withdraw: whitelisted address still in its cool-down")
	ErrAddressExists    = errors.New("withdraw: address already whitelisted")
	ErrBadSignature     = errors.New("withdraw: intent signature does not verify")
	ErrExpired          = errors.New("withdraw: intent expired")
	ErrDuplicateRequest = errors.New("withdraw: request id already used")
	ErrUnknown          = errors.New("withdraw: withdrawal unknown")
	ErrNotAwaiting      = errors.New("withdraw: withdrawal is not awaiting approval")
	ErrBound            = errors.New("withdraw: over a bound")
)

// Bounds.
const (
	MaxKeysPerCustomer      = 16
	MaxAddressesPerCustomer = 256
)

// State is the withdrawal state.
type State struct {
	Rules       Rules
	keys        []KeyRecord
	addrs       []AddressRecord
	withdrawals []Withdrawal
	wIdx        map[string]int
	batches     []Batch
	bIdx        map[string]int
	gas         []GasAccount
}

// New returns an empty state with default rules.
func New() *State {
	return &State{Rules: Rules{CoolDownSeconds: DefaultCoolDown}, wIdx: map[string]int{}}
}

// RegisterKey records a customer's intent key at time t.
func (s *State) RegisterKey(customer uint64, pub [32]byte, t int64) error {
	n := 0
	for _, k := range s.keys {
		if k.Customer == customer {
			n++
			if k.PubKey == pub {
				return ErrKeyExists
			}
		}
	}
	if n >= MaxKeysPerCustomer {
		return fmt.Errorf("%w: at most %d keys", ErrBound, MaxKeysPerCustomer)
	}
	s.keys = append(s.keys, KeyRecord{Customer: customer, PubKey: pub, Registered: t})
	return nil
}

// AddAddress whitelists an address for a customer at time t.
func (s *State) AddAddress(customer uint64, asset, addr string, t int64) error {
	n := 0
	for _, a := range s.addrs {
		if a.Customer == customer {
			n++
			if a.Asset == asset && a.Address == addr {
				return ErrAddressExists
			}
		}
	}
	if n >= MaxAddressesPerCustomer || addr == "" || len(addr) > MaxAddress {
		return fmt.Errorf("%w: address invalid or too many (at most %d)", ErrBound, MaxAddressesPerCustomer)
	}
	s.addrs = append(s.addrs, AddressRecord{Customer: customer, Asset: asset, Address: addr, Added: t})
	return nil
}

// RevokeKey removes a customer's intent key: what it signs is refused
// from then on, and registering it again starts a new cool-down.
func (s *State) RevokeKey(customer uint64, pub [32]byte) error {
	for i, k := range s.keys {
		if k.Customer == customer && k.PubKey == pub {
			s.keys = append(s.keys[:i:i], s.keys[i+1:]...)
			return nil
		}
	}
	return ErrKeyUnknown
}

// RemoveAddress takes an address off a customer's whitelist.
func (s *State) RemoveAddress(customer uint64, asset, addr string) error {
	for i, a := range s.addrs {
		if a.Customer == customer && a.Asset == asset && a.Address == addr {
			s.addrs = append(s.addrs[:i:i], s.addrs[i+1:]...)
			return nil
		}
	}
	return ErrAddressUnknown
}

// Keys returns a customer's intent keys, oldest first.
func (s *State) Keys(customer uint64) []KeyRecord {
	var out []KeyRecord
	for _, k := range s.keys {
		if k.Customer == customer {
			out = append(out, k)
		}
	}
	return out
}

// Addresses returns a customer's whitelisted addresses, oldest first.
func (s *State) Addresses(customer uint64) []AddressRecord {
	var out []AddressRecord
	for _, a := range s.addrs {
		if a.Customer == customer {
			out = append(out, a)
		}
	}
	return out
}

// CoolDown is the cool-down of new keys, addresses and credentials, in
// nanoseconds.
func (s *State) CoolDown() int64 { return s.coolDown() }

func (s *State) coolDown() int64 { return s.Rules.CoolDownSeconds * 1e9 }

// Check verifies what only the customer can vouch for, at entry time t: a
// registered, cooled key that signed exactly this intent before its expiry,
// to a whitelisted, cooled address, with a request id not used before.
func (s *State) Check(customer uint64, in Intent, pub [32]byte, sig []byte, t int64) error {
	if _, dup := s.wIdx[fmt.Sprintf("%d:%s", customer, in.RequestID)]; dup {
		return ErrDuplicateRequest
	}
	var key *KeyRecord
	for i := range s.keys {
		if s.keys[i].Customer == customer && s.keys[i].PubKey == pub {
			key = &s.keys[i]
		}
	}
	if key == nil {
		return ErrKeyUnknown
	}
	if t < key.Registered+s.coolDown() {
		return ErrKeyCooling
	}
	if _, err := in.Bytes(); err != nil {
		return err
	}
	if !in.Verify(pub[:], sig) {
		return ErrBadSignature
	}
	if t/1e9 >= in.Expiry {
		return ErrExpired
	}
	var addr *AddressRecord
	for i := range s.addrs {
		a := &s.addrs[i]
		if a.Customer == customer && a.Asset == in.Asset && a.Address == in.Address {
			addr = a
		}
	}
	if addr == nil {
		return ErrAddressUnknown
	}
	if t < addr.Added+s.coolDown() {
		return ErrAddressCooling
	}
	return nil
}

// Add records a withdrawal that passed Check and the policy.
func (s *State) Add(w Withdrawal) {
	s.wIdx[w.ID] = len(s.withdrawals)
	s.withdrawals = append(s.withdrawals, w)
}

// Get returns a withdrawal by id.
func (s *State) Get(id string) (Withdrawal, bool) {
	i, ok := s.wIdx[id]
	if !ok {
		return Withdrawal{}, false
	}
	return s.withdrawals[i], true
}

// SetStatus moves a withdrawal to a new status with a reason.
func (s *State) SetStatus(id string, st Status, reason string) error {
	i, ok := s.wIdx[id]
	if !ok {
		return ErrUnknown
	}
	s.withdrawals[i].Status, s.withdrawals[i].Reason = st, reason
	return nil
}

// Withdrawals returns a customer's withdrawals (all customers for 0),
// oldest first.
func (s *State) Withdrawals(customer uint64) []Withdrawal {
	var out []Withdrawal
	for _, w := range s.withdrawals {
		if customer == 0 || w.Customer == customer {
			out = append(out, w)
		}
	}
	return out
}

// counts reports whether a withdrawal counts toward velocity limits.
func (w *Withdrawal) counts() bool { return w.Status != StatusRejected && w.Status != StatusFailed }

// CustomerSince sums a customer's withdrawals of asset since t.
func (s *State) CustomerSince(customer uint64, asset string, since int64) Amount {
	var n Amount
	for i := range s.withdrawals {
		w := &s.withdrawals[i]
		if w.Customer == customer && w.Intent.Asset == asset && w.Time >= since && w.counts() {
			n = n.AddSat(w.Intent.Amount)
		}
	}
	return n
}

// AssetSince sums all withdrawals of asset since t.
func (s *State) AssetSince(asset string, since int64) Amount {
	var n Amount
	for i := range s.withdrawals {
		w := &s.withdrawals[i]
		if w.Intent.Asset == asset && w.Time >= since && w.counts() {
			n = n.AddSat(w.Intent.Amount)
		}
	}
	return n
}

// snapshot is the deterministic encoding.
type snapshot struct {
	Rules       Rules
	Keys        []KeyRecord
	Addresses   []AddressRecord
	Withdrawals []Withdrawal
	Batches     []Batch
	Gas         []GasAccount `json:",omitempty"`
}

// Snapshot returns the state for encoding; map fields of Rules encode in
// key order.
func (s *State) Snapshot() any {
	return snapshot{Rules: s.Rules, Keys: s.keys, Addresses: s.addrs, Withdrawals: s.withdrawals, Batches: s.batches, Gas: s.gas}
}

// Restore rebuilds a state from its encoding.
func Restore(b []byte, decode func([]byte, any) error) (*State, error) {
	var snap snapshot
	s := New()
	if len(b) == 0 {
		return s, nil
	}
	if err := decode(b, &snap); err != nil {
		return nil, err
	}
	s.Rules, s.keys, s.addrs, s.gas = snap.Rules, snap.Keys, snap.Addresses, snap.Gas
	for _, w := range snap.Withdrawals {
		s.Add(w)
	}
	for _, b := range snap.Batches {
		s.AddBatch(b)
	}
	return s, nil
}

// ErrGasAccountExists refuses a second gas account of an asset.
var ErrGasAccountExists = errors.New("withdraw: the asset has a gas account registered")

// AddGasAccount registers an asset's gas account; an asset has one.
func (s *State) AddGasAccount(g GasAccount) error {
	if _, ok := s.GasAccountOf(g.Asset); ok {
		return fmt.Errorf("%w: %s", ErrGasAccountExists, g.Asset)
	}
	s.gas = append(s.gas, g)
	return nil
}

// AddGasFunding records a funding of an asset's gas account.
func (s *State) AddGasFunding(asset string, f GasFunding) {
	for i := range s.gas {
		if s.gas[i].Asset == asset {
			s.gas[i].Fundings = append(s.gas[i].Fundings, f)
		}
	}
}

// GasAccountOf returns the gas account registered for an asset.
func (s *State) GasAccountOf(asset string) (GasAccount, bool) {
	for _, g := range s.gas {
		if g.Asset == asset {
			return g, true
		}
	}
	return GasAccount{}, false
}

// NewKey makes an intent key pair for a customer's device.
func NewKey() (ed25519.PublicKey, ed25519.PrivateKey, error) { return ed25519.GenerateKey(nil) }
