package wallet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/btcsuite/btcd/chaincfg"
)

// Errors of the offline machine's wallet registry, testable with errors.Is.
var (
	ErrRegistry       = errors.New("wallet: registry malformed")
	ErrNotThisMachine = errors.New("wallet: the descriptor does not contain this machine's key")
	ErrNameTaken      = errors.New("wallet: the name is registered to another wallet")
	ErrRegisteredAs   = errors.New("wallet: this wallet is already registered under another name")
	ErrName           = errors.New("wallet: name or kind invalid")
)

// Bounds on a registry.
const (
	// RegistryVersion is the version of the registry file this code writes
	// and reads.
	RegistryVersion = 1
	// MaxRegistered bounds the wallets of one registry.
	MaxRegistered = 64
	// MaxRegistryBytes bounds a registry file, checked before parsing.
	MaxRegistryBytes = 1 << 20
	// MaxNameLen bounds a wallet's name and its kind.
	MaxNameLen = 64
)

// Registry is the wallets the operators of an offline machine registered
// on it: the cold signer's root of trust for "this output is ours"
// (docs/custody.md, Roots of trust). Nothing the online side writes enters
// it: `kinko cold register` shows a wallet in full, checks that it holds
// this machine's key, and adds it only after the operator confirms. Its
// file is JSON, 0600, replaced atomically (Save).
//
// INVARIANT: every descriptor parses, with its checksum, for Net; each
// entry's Key is one of its descriptor's keys; names are unique; no two
// entries are the same wallet (Descriptor.Same).
type Registry struct {
	Version int          `json:"version"`
	Net     string       `json:"net"`
	Wallets []Registered `json:"wallets"`

	net   *chaincfg.Params
	descs []*Descriptor // by entry
}

// Registered is one registered wallet: its name on this machine, its kind,
// its descriptor with checksum, and this machine's key in it, as
// `kinko keys xpub` prints it. A destination holds none of this machine's
// keys (the hot wallet a refill pays, seen from a cold machine): outputs
// to it are shown as ours, its inputs are never signed here, and it has
// no Key.
type Registered struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Descriptor  string `json:"descriptor"`
	Key         string `json:"key,omitempty"`
	Destination bool   `json:"destination,omitempty"`
}

// NewRegistry returns an empty registry for net.
func NewRegistry(net *chaincfg.Params) *Registry {
	return &Registry{Version: RegistryVersion, Net: net.Name, net: net}
}

// ParseRegistry parses a registry file for net, checking every entry as
// Register would. Unknown fields and trailing data are errors.
func ParseRegistry(b []byte, net *chaincfg.Params) (*Registry, error) {
	if len(b) > MaxRegistryBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrRegistry, MaxRegistryBytes)
	}
	var f Registry
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRegistry, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the registry", ErrRegistry)
	}
	if f.Version != RegistryVersion {
		return nil, fmt.Errorf("%w: version %d, not %d", ErrRegistry, f.Version, RegistryVersion)
	}
	if f.Net != net.Name {
		return nil, fmt.Errorf("%w: for network %q, not %q", ErrRegistry, f.Net, net.Name)
	}
	if len(f.Wallets) > MaxRegistered {
		return nil, fmt.Errorf("%w: more than %d wallets", ErrRegistry, MaxRegistered)
	}
	r := NewRegistry(net)
	for i, w := range f.Wallets {
		d, err := Parse(w.Descriptor, net)
		if err != nil {
			return nil, fmt.Errorf("%w: wallet %d (%q): %w", ErrRegistry, i+1, w.Name, err)
		}
		var mine *Key
		if !w.Destination {
			k, err := ParseKey(w.Key, net)
			if err != nil {
				return nil, fmt.Errorf("%w: wallet %d (%q): key: %w", ErrRegistry, i+1, w.Name, err)
			}
			mine = &k
		} else if w.Key != "" {
			return nil, fmt.Errorf("%w: wallet %d (%q): a destination has no key of this machine", ErrRegistry, i+1, w.Name)
		}
		if err := r.check(w.Name, w.Kind, d, mine); err != nil {
			return nil, fmt.Errorf("%w: wallet %d (%q): %w", ErrRegistry, i+1, w.Name, err)
		}
		r.Wallets = append(r.Wallets, w)
		r.descs = append(r.descs, d)
	}
	return r, nil
}

// Marshal returns the registry file's bytes.
func (r *Registry) Marshal() []byte {
	out := struct {
		Version int          `json:"version"`
		Net     string       `json:"net"`
		Wallets []Registered `json:"wallets"`
	}{RegistryVersion, r.Net, r.Wallets}
	if out.Wallets == nil {
		out.Wallets = []Registered{}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		panic(err) // strings only: cannot fail
	}
	return append(b, '\n')
}

// Find returns the wallet registered as name and its parsed descriptor.
func (r *Registry) Find(name string) (Registered, *Descriptor, bool) {
	for i, w := range r.Wallets {
		if w.Name == name {
			return w, r.descs[i], true
		}
	}
	return Registered{}, nil, false
}

// Descriptor returns entry i's parsed descriptor.
func (r *Registry) Descriptor(i int) *Descriptor { return r.descs[i] }

// Register adds wallet d as name of kind, mine being this machine's key in
// it. Registering the same wallet under the same name and kind again
// changes nothing and returns false. A descriptor without mine, a name
// taken by another wallet or kind, or a wallet registered under another
// name is an error, and the registry is left as it was.
func (r *Registry) Register(name, kind string, d *Descriptor, mine *Key) (bool, error) {
	if !d.Has(mine) {
		return false, fmt.Errorf("%w (%s)", ErrNotThisMachine, mine.String())
	}
	return r.add(name, kind, d, mine)
}

// ErrHoldsThisKey reports a destination that holds this machine's key: it
// is registered as a wallet of this machine instead.
var ErrHoldsThisKey = errors.New("wallet: the wallet holds this machine's key; register it as this machine's, not as a destination")

// RegisterDestination adds wallet d as a destination: one that holds none
// of this machine's keys (this), which outputs may pay as ours (the hot
// wallet a refill fills) and whose inputs this machine never signs.
func (r *Registry) RegisterDestination(name, kind string, d *Descriptor, this *Key) (bool, error) {
	if d.Has(this) {
		return false, ErrHoldsThisKey
	}
	return r.add(name, kind, d, nil)
}

func (r *Registry) add(name, kind string, d *Descriptor, mine *Key) (bool, error) {
	if w, have, ok := r.Find(name); ok {
		if !have.Same(d) {
			return false, fmt.Errorf("%w: %q is %s", ErrNameTaken, name, w.Descriptor)
		}
		if w.Kind != kind {
			return false, fmt.Errorf("%w: %q is registered as %s, not %s", ErrNameTaken, name, w.Kind, kind)
		}
		return false, nil
	}
	if err := r.check(name, kind, d, mine); err != nil {
		return false, err
	}
	if len(r.Wallets) == MaxRegistered {
		return false, fmt.Errorf("%w: already %d wallets", ErrRegistry, MaxRegistered)
	}
	e := Registered{Name: name, Kind: kind, Descriptor: d.String(), Destination: mine == nil}
	if mine != nil {
		e.Key = mine.String()
	}
	r.Wallets = append(r.Wallets, e)
	r.descs = append(r.descs, d)
	return true, nil
}

// check says whether (name, kind, d, mine) may join the registry.
func (r *Registry) check(name, kind string, d *Descriptor, mine *Key) error {
	if err := checkName("name", name, true); err != nil {
		return err
	}
	if err := checkName("kind", kind, false); err != nil {
		return err
	}
	if d.Net.Name != r.net.Name {
		return ErrNetwork
	}
	if mine != nil && !d.Has(mine) {
		return fmt.Errorf("%w (%s)", ErrNotThisMachine, mine.String())
	}
	for i, w := range r.Wallets {
		if w.Name == name {
			return fmt.Errorf("%w: %q", ErrNameTaken, name)
		}
		if r.descs[i].Same(d) {
			return fmt.Errorf("%w: %q", ErrRegisteredAs, w.Name)
		}
	}
	return nil
}

// checkName accepts 1 to MaxNameLen characters: letters, digits and '-',
// and for names also '.' and '_'.
func checkName(what, s string, name bool) error {
	if s == "" || len(s) > MaxNameLen {
		return fmt.Errorf("%w: %s must be 1 to %d characters", ErrName, what, MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
		if name {
			ok = ok || c >= 'A' && c <= 'Z' || c == '.' || c == '_'
		}
		if !ok {
			return fmt.Errorf("%w: %s %q has the character %q", ErrName, what, s, c)
		}
	}
	return nil
}

// Set returns the registered wallets as a Set, numbered from 1 in the
// order they were registered.
func (r *Registry) Set() (*Set, error) {
	ws := make([]Named, len(r.Wallets))
	for i, w := range r.Wallets {
		ws[i] = Named{ID: uint32(i + 1), Name: w.Name, Kind: w.Kind, Descriptor: w.Descriptor}
	}
	return NewSetFor(r.net, ws)
}

// LoadRegistry reads and parses the registry file at path. A missing file
// is an error wrapping os.ErrNotExist.
func LoadRegistry(path string, net *chaincfg.Params) (*Registry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("wallet: registry: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxRegistryBytes+1))
	if err != nil {
		return nil, fmt.Errorf("wallet: registry %s: %w", path, err)
	}
	r, err := ParseRegistry(b, net)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", path, err)
	}
	return r, nil
}

// Save writes the registry to path atomically: a temporary file in the
// same directory (0600), synced, renamed over path, and the directory
// synced, so that a crash leaves the old file or the new one, never part
// of one.
func (r *Registry) Save(path string) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("wallet: registry: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("wallet: registry: %w", err)
	}
	if _, err := f.Write(r.Marshal()); err != nil {
		return fmt.Errorf("wallet: registry: write: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wallet: registry: sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("wallet: registry: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("wallet: registry: %w", err)
	}
	df, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("wallet: registry: %w", err)
	}
	defer df.Close()
	if err := df.Sync(); err != nil {
		return fmt.Errorf("wallet: registry: sync %s: %w", dir, err)
	}
	return nil
}
