package ethcold

import (
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/chain/eth/safe"
	"kinko/internal/ethwallet"
	"kinko/internal/ethwallet/book"
)

// RegistryFormat names a registry of Safes: a Bitcoin wallet registry is
// another file.
const RegistryFormat = "kinko safe registry v1"

// MaxSigned bounds the signed SafeTxs a registry keeps per Safe.
const MaxSigned = 256

// Kinds a Safe is registered as, as kinko's wallets.
var Kinds = []string{"cold-customer", "hot-customer", "cold-house", "hot-house"}

// Errors of the registry.
var (
	// ErrRegistry: a registry file that is missing, malformed or of
	// another format.
	ErrRegistry = errors.New("ethcold: bad Safe registry")
	// ErrRegister: a Safe the registry refuses.
	ErrRegister = errors.New("ethcold: Safe not registered")
	// ErrNonce: a nonce this machine will not sign at.
	ErrNonce = errors.New("ethcold: nonce refused")
	// ErrNonceSigned: another SafeTx at a nonce this machine signed.
	ErrNonceSigned = errors.New("ethcold: this machine signed another SafeTx at this nonce")
)

// Signed is a SafeTx this machine signed: its nonce, hash and ceremony.
type Signed struct {
	Nonce uint64 `json:"nonce"`
	Hash  string `json:"hash"`
	ID    string `json:"id"`
}

// Entry is one Safe registered on the offline machine. A Safe whose
// owners include this machine's owner key is signed for; a destination
// holds none of its keys and is only shown as ours when paid.
type Entry struct {
	Name        string   `json:"name"`
	Kind        string   `json:"kind"`
	ChainID     uint64   `json:"chain_id"`
	Address     string   `json:"address"`
	Owners      []string `json:"owners"`
	Threshold   int      `json:"threshold"`
	MultiSend   string   `json:"multisend,omitempty"`
	Destination bool     `json:"destination,omitempty"`
	// Owner is this machine's owner address (empty for a destination).
	Owner string `json:"owner,omitempty"`
	// NextNonce is the lowest nonce this machine will sign at without
	// being told otherwise: the one given at registration, then one past
	// the highest it signed.
	NextNonce uint64   `json:"next_nonce"`
	Signed    []Signed `json:"signed,omitempty"`
	// Descriptor, if set, is the custody descriptor of the Safe's wallet
	// (internal/ethwallet: the contracts, owners and threshold its
	// counterfactual addresses commit to), carried to the machine as the
	// setup is: with it this machine derives the wallet's deposit Safes
	// itself and signs their sweeps into this Safe (DescribeDeposit). Its
	// chain, owners and threshold must be the entry's.
	Descriptor string `json:"descriptor,omitempty"`
	// DepositsSigned are the deposit Safes' SafeTxs this machine signed.
	DepositsSigned []DepositSigned `json:"deposits_signed,omitempty"`
	// Tokens are the ERC-20 contracts whose balances at the deposit
	// Safes this machine sweeps into this Safe (with a descriptor only).
	Tokens []Token `json:"tokens,omitempty"`
}

// Token is an ERC-20 contract registered on the offline machine: its
// symbol and decimals as the machine shows amounts, and its address.
type Token struct {
	Symbol   string `json:"symbol"`
	Decimals uint8  `json:"decimals"`
	Contract string `json:"contract"`
}

// ParseToken reads SYMBOL:DECIMALS:0xCONTRACT.
func ParseToken(s string) (Token, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return Token{}, fmt.Errorf("token %q: SYMBOL:DECIMALS:0xCONTRACT", s)
	}
	d, err := strconv.ParseUint(parts[1], 10, 8)
	if err != nil || d > 77 {
		return Token{}, fmt.Errorf("token %q: decimals 0 to 77", s)
	}
	return Token{Symbol: parts[0], Decimals: uint8(d), Contract: parts[2]}, nil
}

// token returns the entry's registered token at a, or nil.
func (e *Entry) token(a common.Address) *Token {
	for i := range e.Tokens {
		if common.HexToAddress(e.Tokens[i].Contract) == a {
			return &e.Tokens[i]
		}
	}
	return nil
}

// DepositSigned is a deposit Safe's SafeTx this machine signed: the
// deposit index (each deposit Safe has its own nonces), nonce, hash and
// ceremony.
type DepositSigned struct {
	Index uint32 `json:"index"`
	Signed
}

// Registry is the offline machine's Safes.
type Registry struct {
	Format string  `json:"format"`
	Safes  []Entry `json:"safes"`
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{Format: RegistryFormat} }

// LoadRegistry reads a registry file; a missing one is os.ErrNotExist.
func LoadRegistry(path string) (*Registry, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	var r Registry
	if err := decodeStrict(b, &r); err != nil || r.Format != RegistryFormat {
		return nil, fmt.Errorf("%w: %s is not a registry of Safes (%q): a Bitcoin wallet registry is another file", ErrRegistry, path, RegistryFormat)
	}
	for i := range r.Safes {
		if err := r.Safes[i].validate(); err != nil {
			return nil, fmt.Errorf("%w: %s: Safe %d: %v", ErrRegistry, path, i+1, err)
		}
	}
	return &r, nil
}

// Save writes the registry to path atomically (mode 0600).
func (r *Registry) Save(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".registry-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	tmp.Close()
	os.Remove(name)
	if err := WriteNew(name, r, 0o600); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return err
	}
	return nil
}

// OwnerAddresses returns the entry's owners.
func (e *Entry) OwnerAddresses() []common.Address {
	out := make([]common.Address, len(e.Owners))
	for i, o := range e.Owners {
		out[i] = common.HexToAddress(o)
	}
	return out
}

// SafeAddress returns the entry's Safe address.
func (e *Entry) SafeAddress() common.Address { return common.HexToAddress(e.Address) }

// MultiSendAddress returns the MultiSendCallOnly pinned for the entry, or
// the zero address (every DELEGATECALL refused).
func (e *Entry) MultiSendAddress() common.Address {
	if e.MultiSend == "" {
		return common.Address{}
	}
	return common.HexToAddress(e.MultiSend)
}

// Label is "name (kind)".
func (e *Entry) Label() string { return e.Name + " (" + e.Kind + ")" }

func (e *Entry) validate() error {
	if e.Name == "" || !plain(e.Name) {
		return fmt.Errorf("name %q: printable ASCII without spaces", e.Name)
	}
	if !slices.Contains(Kinds, e.Kind) {
		return fmt.Errorf("unknown kind %q (cold-customer, hot-customer, cold-house, hot-house)", e.Kind)
	}
	if e.ChainID == 0 {
		return errors.New("chain id 0")
	}
	a, err := ParseAddress(e.Address)
	if err != nil || a == (common.Address{}) {
		return fmt.Errorf("Safe address %q", e.Address)
	}
	cfg := safe.Config{Threshold: e.Threshold}
	for _, o := range e.Owners {
		oa, err := ParseAddress(o)
		if err != nil {
			return fmt.Errorf("owner: %v", err)
		}
		cfg.Owners = append(cfg.Owners, oa)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if e.MultiSend != "" {
		m, err := ParseAddress(e.MultiSend)
		if err != nil || m == (common.Address{}) || m == a {
			return fmt.Errorf("MultiSendCallOnly %q", e.MultiSend)
		}
	}
	if e.Destination != (e.Owner == "") {
		return errors.New("a destination names no owner of this machine, a Safe signed for names one")
	}
	if e.Owner != "" {
		o, err := ParseAddress(e.Owner)
		if err != nil || !slices.Contains(cfg.Owners, o) {
			return fmt.Errorf("this machine's key %s is not an owner", e.Owner)
		}
	}
	if e.Descriptor != "" {
		if e.Destination || e.Kind != "cold-customer" {
			return errors.New("only a cold customer Safe signed for has deposit Safes (a descriptor)")
		}
		d, err := ethwallet.Parse(e.Descriptor)
		if err != nil {
			return fmt.Errorf("descriptor: %v", err)
		}
		if d.ChainID != e.ChainID || d.Threshold != e.Threshold || len(d.Owners) != len(cfg.Owners) {
			return fmt.Errorf("the descriptor names chain %d and %d-of-%d, the Safe chain %d and %d-of-%d", d.ChainID, d.Threshold, len(d.Owners), e.ChainID, e.Threshold, len(cfg.Owners))
		}
		for i, o := range d.Owners {
			if common.Address(o) != cfg.Owners[i] {
				return fmt.Errorf("the descriptor's owner %d is %s, the Safe's %s", i+1, common.Address(o).Hex(), cfg.Owners[i].Hex())
			}
		}
	}
	if len(e.Tokens) > 0 && e.Descriptor == "" {
		return errors.New("tokens are swept from deposit Safes: register the descriptor too")
	}
	if len(e.Tokens) > MaxTokens {
		return fmt.Errorf("%d tokens (at most %d)", len(e.Tokens), MaxTokens)
	}
	for i, t := range e.Tokens {
		c, err := ParseAddress(t.Contract)
		if err != nil || c == (common.Address{}) || c == a {
			return fmt.Errorf("token %q: contract %q", t.Symbol, t.Contract)
		}
		if t.Symbol == "" || !plain(t.Symbol) || len(t.Symbol) > 16 || t.Decimals > 77 {
			return fmt.Errorf("token %q: a symbol of printable ASCII without spaces (at most 16), decimals 0 to 77", t.Symbol)
		}
		for _, u := range e.Tokens[:i] {
			if u.Symbol == t.Symbol || common.HexToAddress(u.Contract) == c {
				return fmt.Errorf("token %s (%s) registered twice", t.Symbol, t.Contract)
			}
		}
	}
	return nil
}

// MaxTokens bounds the tokens registered with one Safe.
const MaxTokens = 64

// DepositSafe returns the counterfactual Safe of deposit index of the
// entry's wallet, derived on this machine from its descriptor and the
// SafeProxy code pinned in the safe package.
func (e *Entry) DepositSafe(index uint32) (common.Address, error) {
	if e.Descriptor == "" {
		return common.Address{}, fmt.Errorf("%s has no descriptor registered: no deposit Safe derives from it", e.Label())
	}
	d, err := ethwallet.Parse(e.Descriptor)
	if err != nil {
		return common.Address{}, err
	}
	return book.Derive(safe.ProxyArtifacts(), d, index)
}

// CheckDepositNonce says whether this machine signs hash at nonce for
// the deposit Safe of index: never another SafeTx at a (deposit, nonce)
// it signed (ErrNonceSigned). A deposit Safe's nonce is read from the
// chain by the online side; the Safe refuses any but its next.
func (e *Entry) CheckDepositNonce(index uint32, nonce *big.Int, hash common.Hash) error {
	if !nonce.IsUint64() {
		return fmt.Errorf("%w: nonce %s", ErrNonce, nonce)
	}
	for _, s := range e.DepositsSigned {
		if s.Index == index && s.Nonce == nonce.Uint64() && s.Hash != hash.Hex() {
			return fmt.Errorf("%w: deposit Safe %d, nonce %d, SafeTx %s of ceremony %s; this one is %s", ErrNonceSigned, index, s.Nonce, s.Hash, s.ID, hash.Hex())
		}
	}
	return nil
}

// RecordDepositSigned notes that this machine signs hash at nonce for the
// deposit Safe of index, ceremony id, before the signature is written.
func (e *Entry) RecordDepositSigned(index uint32, nonce uint64, hash common.Hash, id string) {
	for _, s := range e.DepositsSigned {
		if s.Index == index && s.Nonce == nonce && s.Hash == hash.Hex() {
			return
		}
	}
	e.DepositsSigned = append(e.DepositsSigned, DepositSigned{Index: index, Signed: Signed{Nonce: nonce, Hash: hash.Hex(), ID: id}})
	if len(e.DepositsSigned) > MaxDepositsSigned {
		e.DepositsSigned = e.DepositsSigned[len(e.DepositsSigned)-MaxDepositsSigned:]
	}
}

// MaxDepositsSigned bounds the deposit Safes' SafeTxs a registry keeps
// per Safe.
const MaxDepositsSigned = 16384

// canonical rewrites the entry's addresses in EIP-55 form.
func (e *Entry) canonical() {
	e.Address = common.HexToAddress(e.Address).Hex()
	for i, o := range e.Owners {
		e.Owners[i] = common.HexToAddress(o).Hex()
	}
	if e.MultiSend != "" {
		e.MultiSend = common.HexToAddress(e.MultiSend).Hex()
	}
	if e.Owner != "" {
		e.Owner = common.HexToAddress(e.Owner).Hex()
	}
	for i := range e.Tokens {
		e.Tokens[i].Contract = common.HexToAddress(e.Tokens[i].Contract).Hex()
	}
}

func (e *Entry) sameSetup(o *Entry) bool {
	return e.Name == o.Name && e.Kind == o.Kind && e.ChainID == o.ChainID && e.Address == o.Address &&
		slices.Equal(e.Owners, o.Owners) && e.Threshold == o.Threshold && e.MultiSend == o.MultiSend &&
		e.Destination == o.Destination && e.Owner == o.Owner && e.Descriptor == o.Descriptor && slices.Equal(e.Tokens, o.Tokens)
}

// Register adds e for this machine's owner address me: me must be among
// the owners of a Safe signed for, and among none of a destination's. The
// same entry registered again is no change (false); another Safe under a
// registered name, or the same Safe with another setup, is refused.
func (r *Registry) Register(e Entry, me common.Address) (bool, error) {
	e.Signed, e.DepositsSigned = nil, nil
	if !e.Destination {
		e.Owner = me.Hex()
	} else {
		e.Owner = ""
	}
	if err := e.validate(); err != nil {
		return false, fmt.Errorf("%w: %v", ErrRegister, err)
	}
	e.canonical()
	if e.Destination && slices.Contains(e.OwnerAddresses(), me) {
		return false, fmt.Errorf("%w: the destination %s holds this machine's key %s: register it as a Safe signed for, without --destination", ErrRegister, e.Address, me.Hex())
	}
	for i := range r.Safes {
		x := &r.Safes[i]
		if x.Name != e.Name && (x.ChainID != e.ChainID || x.Address != e.Address) {
			continue
		}
		if x.sameSetup(&e) {
			return false, nil
		}
		return false, fmt.Errorf("%w: %s is registered already as %s, Safe %s on chain %d, with another setup", ErrRegister, e.Name, x.Label(), x.Address, x.ChainID)
	}
	r.Safes = append(r.Safes, e)
	return true, nil
}

// Lookup returns the Safe registered at addr on chain chainID, or nil.
func (r *Registry) Lookup(chainID *big.Int, addr common.Address) *Entry {
	if !chainID.IsUint64() {
		return nil
	}
	for i := range r.Safes {
		e := &r.Safes[i]
		if e.ChainID == chainID.Uint64() && e.SafeAddress() == addr {
			return e
		}
	}
	return nil
}

// OnChain returns the Safes registered on chain chainID.
func (r *Registry) OnChain(chainID *big.Int) []*Entry {
	var out []*Entry
	for i := range r.Safes {
		if chainID.IsUint64() && r.Safes[i].ChainID == chainID.Uint64() {
			out = append(out, &r.Safes[i])
		}
	}
	return out
}

// CheckNonce says whether this machine signs hash at nonce for e: the
// same SafeTx again, yes; another SafeTx at a nonce it signed, never
// (ErrNonceSigned); below NextNonce, never (used or signed already); above
// it only when the operator names that nonce (expect, nil if not given),
// having signed the nonces between on other machines.
func (e *Entry) CheckNonce(nonce *big.Int, hash common.Hash, expect *uint64) error {
	if !nonce.IsUint64() {
		return fmt.Errorf("%w: nonce %s", ErrNonce, nonce)
	}
	n := nonce.Uint64()
	if expect != nil && *expect != n {
		return fmt.Errorf("%w: the SafeTx is at nonce %d, and you said --nonce %d", ErrNonce, n, *expect)
	}
	for _, s := range e.Signed {
		if s.Nonce != n {
			continue
		}
		if s.Hash == hash.Hex() {
			return nil
		}
		return fmt.Errorf("%w: nonce %d, SafeTx %s of ceremony %s; this one is %s", ErrNonceSigned, n, s.Hash, s.ID, hash.Hex())
	}
	if n < e.NextNonce {
		return fmt.Errorf("%w: nonce %d is below %d, the next this machine knows of for %s: that nonce is used or was signed already", ErrNonce, n, e.NextNonce, e.Label())
	}
	if n > e.NextNonce && expect == nil {
		return fmt.Errorf("%w: nonce %d skips ahead of %d, the next this machine knows of for %s; if the nonces between were signed on other machines, say so with --nonce %d", ErrNonce, n, e.NextNonce, e.Label(), n)
	}
	return nil
}

// RecordSigned notes that this machine signs hash at nonce for ceremony
// id, before the signature is written.
func (e *Entry) RecordSigned(nonce uint64, hash common.Hash, id string) {
	for _, s := range e.Signed {
		if s.Nonce == nonce && s.Hash == hash.Hex() {
			return
		}
	}
	e.Signed = append(e.Signed, Signed{Nonce: nonce, Hash: hash.Hex(), ID: id})
	if len(e.Signed) > MaxSigned {
		e.Signed = e.Signed[len(e.Signed)-MaxSigned:]
	}
	if nonce+1 > e.NextNonce {
		e.NextNonce = nonce + 1
	}
}
