// Package ethwallet describes kinko's Ethereum wallets: Safe multisig
// wallets of version 1.4.1, each registered in custody by a descriptor
// that names everything its addresses commit to (the chain id, the pinned
// Safe singleton, proxy factory and fallback handler, the owners and the
// threshold). The descriptor is parsed strictly and has one spelling, so
// the journal holds one string per wallet and custody can refuse a bad one
// at registration without the chain. It is pure (no I/O, no clock): the
// core's apply calls it.
//
// A wallet's receive address of index i is the counterfactual address of
// the Safe proxy the factory's createProxyWithNonce(singleton,
// setup(owners, threshold, fallback handler), i) deploys (internal/chain/
// eth/safe Predictor.AddressIndex; internal/ethwallet/book derives them):
// money sent there is held by the owners before the proxy exists, and no
// online key can move it.
package ethwallet

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/sha3"
)

// Prefix starts every Safe descriptor: the contracts' version is part of
// what the addresses commit to (the proxy's creation code).
const Prefix = "safe-1.4.1("

// Bounds of a descriptor.
const (
	// MaxOwners bounds a Safe's owners (as internal/chain/eth/safe does).
	MaxOwners = 16
	// MinThreshold is the fewest signatures a registered Safe may need:
	// kinko's wallets are multisig, so no one key moves their coins.
	MinThreshold = 2
	// MaxLen bounds a descriptor's length: the prefix, five addresses'
	// fields, 16 owners.
	MaxLen = 2048
)

// ErrDescriptor reports a Safe descriptor that does not parse or that
// names a Safe kinko does not register.
var ErrDescriptor = errors.New("ethwallet: bad Safe descriptor")

// Address is an Ethereum account address.
type Address [20]byte

// String returns the address in its EIP-55 mixed-case form.
func (a Address) String() string {
	h := hex.EncodeToString(a[:])
	k := sha3.NewLegacyKeccak256()
	k.Write([]byte(h))
	sum := k.Sum(nil)
	b := []byte(h)
	for i := range b {
		nib := sum[i/2] >> 4
		if i%2 == 1 {
			nib = sum[i/2] & 0xf
		}
		if b[i] >= 'a' && nib >= 8 {
			b[i] -= 'a' - 'A'
		}
	}
	return "0x" + string(b)
}

// ParseAddress parses an address in its EIP-55 form only: 0x, forty hex
// digits, the letters' case the checksum's. All-lower or all-upper forms
// carry no checksum and are refused, so a mistyped address in a
// descriptor never registers.
func ParseAddress(s string) (Address, error) {
	var a Address
	if len(s) != 42 || s[:2] != "0x" {
		return a, fmt.Errorf("%w: address %q is not 0x and 40 hex digits", ErrDescriptor, s)
	}
	if _, err := hex.Decode(a[:], []byte(s[2:])); err != nil {
		return a, fmt.Errorf("%w: address %q is not 0x and 40 hex digits", ErrDescriptor, s)
	}
	if a.String() != s {
		return a, fmt.Errorf("%w: address %q is not in its EIP-55 checksum form (%s)", ErrDescriptor, s, a)
	}
	return a, nil
}

// sentinel is the Safe's owner-list sentinel (address 1), never an owner.
var sentinel = Address{19: 1}

// Descriptor is a Safe wallet as custody registers it.
//
// INVARIANT (of a parsed one): ChainID > 0; Singleton, Factory and
// Fallback are distinct and not zero; 2 ≤ Threshold ≤ len(Owners) ≤
// MaxOwners; the owners are distinct, none zero, the sentinel or a pinned
// contract.
type Descriptor struct {
	// ChainID is the EIP-155 chain the Safe lives on (1 mainnet).
	ChainID uint64
	// Singleton is the pinned Safe (or SafeL2) 1.4.1 singleton.
	Singleton Address
	// Factory is the pinned SafeProxyFactory 1.4.1.
	Factory Address
	// Fallback is the fallback handler the setup installs.
	Fallback Address
	// Threshold is how many owners must sign.
	Threshold int
	// Owners in the order setup lists them: the order is part of the
	// initializer, so of the addresses.
	Owners []Address
}

// String returns the descriptor's one spelling:
//
//	safe-1.4.1(chain=1;singleton=0x…;factory=0x…;fallback=0x…;threshold=2;owners=0x…,0x…,0x…)
func (d Descriptor) String() string {
	var b strings.Builder
	b.WriteString(Prefix)
	fmt.Fprintf(&b, "chain=%d;singleton=%s;factory=%s;fallback=%s;threshold=%d;owners=", d.ChainID, d.Singleton, d.Factory, d.Fallback, d.Threshold)
	for i, o := range d.Owners {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(o.String())
	}
	b.WriteByte(')')
	return b.String()
}

// IsSafe reports whether s is meant as a Safe descriptor (it starts with
// the prefix): such a string must parse, whatever follows.
func IsSafe(s string) bool { return strings.HasPrefix(s, "safe") }

// fields are the descriptor's keys, in their one order.
var fields = [...]string{"chain", "singleton", "factory", "fallback", "threshold", "owners"}

// Parse parses a descriptor in its one spelling (String's) and checks it:
// every field present once, in order, no spaces, numbers without sign or
// leading zeros, EIP-55 addresses, and the invariant of Descriptor. The
// error names what is wrong.
func Parse(s string) (Descriptor, error) {
	var d Descriptor
	if len(s) > MaxLen {
		return d, fmt.Errorf("%w: %d bytes, more than %d", ErrDescriptor, len(s), MaxLen)
	}
	body, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return d, fmt.Errorf("%w: it must start with %q", ErrDescriptor, Prefix)
	}
	body, ok = strings.CutSuffix(body, ")")
	if !ok {
		return d, fmt.Errorf("%w: it must end with \")\"", ErrDescriptor)
	}
	parts := strings.Split(body, ";")
	if len(parts) != len(fields) {
		return d, fmt.Errorf("%w: %d fields; want %s, in that order", ErrDescriptor, len(parts), strings.Join(fields[:], ", "))
	}
	vals := make([]string, len(fields))
	for i, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k != fields[i] {
			return d, fmt.Errorf("%w: field %d is %q; want %s=…", ErrDescriptor, i+1, p, fields[i])
		}
		vals[i] = v
	}
	var err error
	if d.ChainID, err = parseUint(vals[0], "chain"); err != nil {
		return d, err
	}
	if d.ChainID == 0 {
		return d, fmt.Errorf("%w: chain id 0", ErrDescriptor)
	}
	for i, dst := range []*Address{&d.Singleton, &d.Factory, &d.Fallback} {
		if *dst, err = ParseAddress(vals[1+i]); err != nil {
			return d, fmt.Errorf("%s: %w", fields[1+i], err)
		}
		if *dst == (Address{}) {
			return d, fmt.Errorf("%w: %s is the zero address", ErrDescriptor, fields[1+i])
		}
	}
	if d.Singleton == d.Factory || d.Singleton == d.Fallback || d.Factory == d.Fallback {
		return d, fmt.Errorf("%w: singleton, factory and fallback must be three contracts", ErrDescriptor)
	}
	th, err := parseUint(vals[4], "threshold")
	if err != nil {
		return d, err
	}
	owners := strings.Split(vals[5], ",")
	if len(owners) > MaxOwners {
		return d, fmt.Errorf("%w: %d owners, more than %d", ErrDescriptor, len(owners), MaxOwners)
	}
	for _, o := range owners {
		a, err := ParseAddress(o)
		if err != nil {
			return d, fmt.Errorf("owner: %w", err)
		}
		switch {
		case a == (Address{}) || a == sentinel:
			return d, fmt.Errorf("%w: owner %s cannot own a Safe", ErrDescriptor, a)
		case a == d.Singleton || a == d.Factory || a == d.Fallback:
			return d, fmt.Errorf("%w: owner %s is a pinned contract", ErrDescriptor, a)
		}
		for _, b := range d.Owners {
			if a == b {
				return d, fmt.Errorf("%w: owner %s twice", ErrDescriptor, a)
			}
		}
		d.Owners = append(d.Owners, a)
	}
	if th < MinThreshold || th > uint64(len(d.Owners)) {
		return d, fmt.Errorf("%w: threshold %d of %d owners (at least %d, at most the owners)", ErrDescriptor, th, len(d.Owners), MinThreshold)
	}
	d.Threshold = int(th)
	if d.String() != s {
		return d, fmt.Errorf("%w: not in its one spelling", ErrDescriptor) // cannot happen: every field was checked
	}
	return d, nil
}

// parseUint parses a decimal uint64 without sign or leading zeros.
func parseUint(s, name string) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%w: %s %q is not a decimal number without leading zeros", ErrDescriptor, name, s)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q is above 2^64-1", ErrDescriptor, name, s)
	}
	return v, nil
}
