// Package wallet holds kinko's multisig wallets as output descriptors
// (BIP380-389): 2-of-3 P2WSH sortedmulti over BIP48 account keys, or a
// taproot tr() wallet whose single script leaf is sortedmulti_a (BIP386,
// BIP387), so that Bitcoin Core, Sparrow or a hardware wallet can import
// the same wallet. It
// derives addresses and witness scripts, and tells whether a script belongs
// to one of our wallets by recomputing it from the descriptor, never by
// trusting what a file or a peer says.
package wallet

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
)

// Errors of descriptor parsing, testable with errors.Is.
var (
	ErrChecksum    = errors.New("wallet: descriptor checksum does not match")
	ErrNoChecksum  = errors.New("wallet: descriptor has no checksum")
	ErrDescriptor  = errors.New("wallet: descriptor malformed")
	ErrUnsupported = errors.New("wallet: only wsh(sortedmulti(...)) and tr(NUMS,sortedmulti_a(...)) descriptors are supported")
	ErrNetwork     = errors.New("wallet: key is for another network")
)

// Bounds on descriptors.
const (
	MaxDescriptorLen = 4096
	MaxKeys          = 15 // P2WSH multisig's standard limit
)

const (
	inputCharset    = "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ "
	checksumCharset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
)

func polymod(c uint64, val uint64) uint64 {
	c0 := c >> 35
	c = (c&0x7ffffffff)<<5 ^ val
	if c0&1 != 0 {
		c ^= 0xf5dee51989
	}
	if c0&2 != 0 {
		c ^= 0xa9fdca3312
	}
	if c0&4 != 0 {
		c ^= 0x1bab10e32d
	}
	if c0&8 != 0 {
		c ^= 0x3706b1677a
	}
	if c0&16 != 0 {
		c ^= 0x644d626ffd
	}
	return c
}

// Checksum returns the BIP380 checksum of a descriptor without one.
func Checksum(desc string) (string, error) {
	c := uint64(1)
	cls, clsCount := uint64(0), 0
	for i := 0; i < len(desc); i++ {
		pos := strings.IndexByte(inputCharset, desc[i])
		if pos < 0 {
			return "", fmt.Errorf("%w: character %q", ErrDescriptor, desc[i])
		}
		c = polymod(c, uint64(pos&31))
		cls = cls*3 + uint64(pos>>5)
		if clsCount++; clsCount == 3 {
			c = polymod(c, cls)
			cls, clsCount = 0, 0
		}
	}
	if clsCount > 0 {
		c = polymod(c, cls)
	}
	for j := 0; j < 8; j++ {
		c = polymod(c, 0)
	}
	c ^= 1
	var out [8]byte
	for j := 0; j < 8; j++ {
		out[j] = checksumCharset[(c>>(5*(7-j)))&31]
	}
	return string(out[:]), nil
}

// Key is one key of a multisig descriptor: an account xpub with its origin.
type Key struct {
	Fingerprint [4]byte
	Path        []uint32 // the origin path, hardened indexes with the high bit
	XPub        *hdkeychain.ExtendedKey
}

// Origin returns the key origin in descriptor form: [fp/48h/1h/0h/2h].
func (k *Key) Origin() string {
	return "[" + hex.EncodeToString(k.Fingerprint[:]) + strings.TrimPrefix(k.Derivation(), "m") + "]"
}

// Derivation returns the key's path from its master: m/48h/1h/0h/2h.
func (k *Key) Derivation() string {
	var b strings.Builder
	b.WriteString("m")
	for _, p := range k.Path {
		if p >= hdkeychain.HardenedKeyStart {
			fmt.Fprintf(&b, "/%dh", p-hdkeychain.HardenedKeyStart)
		} else {
			fmt.Fprintf(&b, "/%d", p)
		}
	}
	return b.String()
}

// String returns the key as a descriptor key without branch:
// [fp/48h/1h/0h/2h]tpub..., as `kinko keys xpub` prints it.
func (k *Key) String() string { return k.Origin() + k.XPub.String() }

// Equal reports whether k and o are the same key with the same origin.
func (k *Key) Equal(o *Key) bool { return k.String() == o.String() }

// ParseKey parses a descriptor key without branch ([fp/path]xpub).
func ParseKey(s string, net *chaincfg.Params) (Key, error) {
	if strings.Contains(s[strings.IndexByte(s, ']')+1:], "/") {
		return Key{}, fmt.Errorf("%w: key %q has a branch", ErrDescriptor, s)
	}
	return parseKey(s+"/0/*", net)
}

// Has reports whether k (origin and xpub) is one of d's keys.
func (d *Descriptor) Has(k *Key) bool {
	for i := range d.Keys {
		if d.Keys[i].Equal(k) {
			return true
		}
	}
	return false
}

// Same reports whether d and o are one wallet: the same threshold over the
// same keys, in whatever order (sortedmulti orders them at each index).
func (d *Descriptor) Same(o *Descriptor) bool {
	if d.M != o.M || d.Type != o.Type || d.Net.Name != o.Net.Name || len(d.Keys) != len(o.Keys) {
		return false
	}
	a, b := make([]string, len(d.Keys)), make([]string, len(o.Keys))
	for i := range d.Keys {
		a[i], b[i] = d.Keys[i].String(), o.Keys[i].String()
	}
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

// Type is the script type of a wallet.
type Type uint8

// Wallet script types.
const (
	// WSH is wsh(sortedmulti(M,...)): P2WSH, BIP67-sorted CHECKMULTISIG.
	WSH Type = 0
	// TR is tr(NUMS,sortedmulti_a(M,...)): P2TR whose internal key is
	// BIP341's unspendable NUMS point and whose one leaf is the x-only
	// keys, sorted, in a CHECKSIG/CHECKSIGADD/NUMEQUAL script (BIP387).
	TR Type = 1
)

// Descriptor is wsh(sortedmulti(M, key/<branch>/*...)), or with Type TR
// tr(NUMS,sortedmulti_a(M, key/<branch>/*...)): receive addresses on
// branch 0, change on branch 1.
type Descriptor struct {
	M    int
	Keys []Key
	Net  *chaincfg.Params
	Type Type

	mu       sync.Mutex
	branches map[uint32][]*hdkeychain.ExtendedKey // per branch, each key's /branch child
}

// branchKeys returns each key's child at branch, derived once.
func (d *Descriptor) branchKeys(branch uint32) ([]*hdkeychain.ExtendedKey, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ks, ok := d.branches[branch]; ok {
		return ks, nil
	}
	ks := make([]*hdkeychain.ExtendedKey, len(d.Keys))
	for i := range d.Keys {
		b, err := d.Keys[i].XPub.Derive(branch)
		if err != nil {
			return nil, err
		}
		ks[i] = b
	}
	if d.branches == nil {
		d.branches = map[uint32][]*hdkeychain.ExtendedKey{}
	}
	d.branches[branch] = ks
	return ks, nil
}

// String formats the descriptor of the receive branch with its checksum:
// the form kinko journals and registers.
func (d *Descriptor) String() string { return d.Branch(0) }

// Branch formats the descriptor of one branch (0 receive, 1 change) with
// its checksum, as Bitcoin Core's importdescriptors takes it.
func (d *Descriptor) Branch(branch uint32) string {
	return d.format(strconv.FormatUint(uint64(branch), 10))
}

// Multipath formats the descriptor of both branches in BIP389's form,
// key/<0;1>/*, with its checksum.
func (d *Descriptor) Multipath() string { return d.format("<0;1>") }

func (d *Descriptor) format(branch string) string {
	var b strings.Builder
	if d.Type == TR {
		fmt.Fprintf(&b, "tr(%s,sortedmulti_a(%d", NUMSKeyHex, d.M)
	} else {
		fmt.Fprintf(&b, "wsh(sortedmulti(%d", d.M)
	}
	for i := range d.Keys {
		fmt.Fprintf(&b, ",%s%s/%s/*", d.Keys[i].Origin(), d.Keys[i].XPub.String(), branch)
	}
	b.WriteString("))")
	sum, _ := Checksum(b.String())
	return b.String() + "#" + sum
}

// TypeName names the wallet's script type as operators read it.
func (d *Descriptor) TypeName() string {
	if d.Type == TR {
		return "P2TR multisig (tr sortedmulti_a, unspendable internal key)"
	}
	return "P2WSH multisig (wsh sortedmulti)"
}

// Parse parses a wsh(sortedmulti(...)) or tr(NUMS,sortedmulti_a(...))
// descriptor whose keys all end /0/*, all /1/* or all /<0;1>/* (BIP389).
// The checksum is required, and must match. Hardened steps may be written
// h or '.
func Parse(s string, net *chaincfg.Params) (*Descriptor, error) {
	if len(s) > MaxDescriptorLen {
		return nil, fmt.Errorf("%w: longer than %d", ErrDescriptor, MaxDescriptorLen)
	}
	body, sum, ok := strings.Cut(s, "#")
	if !ok {
		return nil, ErrNoChecksum
	}
	want, err := Checksum(body)
	if err != nil {
		return nil, err
	}
	if sum != want {
		return nil, ErrChecksum
	}
	typ := WSH
	inner, ok := strings.CutPrefix(body, "wsh(sortedmulti(")
	if !ok {
		rest, isTR := strings.CutPrefix(body, "tr(")
		internal, rest, _ := strings.Cut(rest, ",")
		if !isTR || !strings.EqualFold(internal, NUMSKeyHex) {
			return nil, ErrUnsupported
		}
		if inner, ok = strings.CutPrefix(rest, "sortedmulti_a("); !ok {
			return nil, ErrUnsupported
		}
		typ = TR
	}
	inner, ok = strings.CutSuffix(inner, "))")
	if !ok {
		return nil, fmt.Errorf("%w: unbalanced", ErrDescriptor)
	}
	parts := strings.Split(inner, ",")
	if len(parts) < 2 || len(parts)-1 > MaxKeys {
		return nil, fmt.Errorf("%w: need 1 to %d keys", ErrDescriptor, MaxKeys)
	}
	if strings.ContainsAny(inner, "()") {
		return nil, fmt.Errorf("%w: nested expressions", ErrUnsupported)
	}
	m, err := strconv.Atoi(parts[0])
	if err != nil || m < 1 || m > len(parts)-1 {
		return nil, fmt.Errorf("%w: threshold %q of %d keys", ErrDescriptor, parts[0], len(parts)-1)
	}
	d := &Descriptor{M: m, Net: net, Type: typ}
	var branch string
	seen := map[string]bool{}
	for i, p := range parts[1:] {
		k, b, err := parseBranchKey(p, net)
		if err != nil {
			return nil, err
		}
		if i > 0 && b != branch {
			return nil, fmt.Errorf("%w: keys end in different branches", ErrDescriptor)
		}
		branch = b
		if seen[k.XPub.String()] {
			return nil, fmt.Errorf("%w: a key appears twice", ErrDescriptor)
		}
		seen[k.XPub.String()] = true
		d.Keys = append(d.Keys, k)
	}
	return d, nil
}

func parseKey(s string, net *chaincfg.Params) (Key, error) {
	k, _, err := parseBranchKey(s, net)
	return k, err
}

// parseBranchKey parses [fp/path]xpub/BRANCH/* and returns the key and
// BRANCH: "0", "1" or "<0;1>".
func parseBranchKey(s string, net *chaincfg.Params) (Key, string, error) {
	k, suffix, err := parseKeyOrigin(s, net)
	return k, strings.TrimSuffix(suffix, "/*"), err
}

func parseKeyOrigin(s string, net *chaincfg.Params) (Key, string, error) {
	var k Key
	if !strings.HasPrefix(s, "[") {
		return k, "", fmt.Errorf("%w: key without origin", ErrDescriptor)
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return k, "", fmt.Errorf("%w: origin not closed", ErrDescriptor)
	}
	origin := strings.Split(s[1:end], "/")
	fp, err := hex.DecodeString(origin[0])
	if err != nil || len(fp) != 4 {
		return k, "", fmt.Errorf("%w: fingerprint %q", ErrDescriptor, origin[0])
	}
	copy(k.Fingerprint[:], fp)
	for _, e := range origin[1:] {
		v, err := parseIndex(e)
		if err != nil {
			return k, "", err
		}
		k.Path = append(k.Path, v)
	}
	rest := s[end+1:]
	xpub, suffix, ok := strings.Cut(rest, "/")
	if !ok || (suffix != "0/*" && suffix != "1/*" && suffix != "<0;1>/*") {
		return k, "", fmt.Errorf("%w: key must end /0/*, /1/* or /<0;1>/*", ErrUnsupported)
	}
	ek, err := hdkeychain.NewKeyFromString(xpub)
	if err != nil {
		return k, "", fmt.Errorf("%w: %v", ErrDescriptor, err)
	}
	if ek.IsPrivate() {
		return k, "", fmt.Errorf("%w: a private key in a descriptor", ErrDescriptor)
	}
	if !ek.IsForNet(net) {
		return k, "", ErrNetwork
	}
	k.XPub = ek
	return k, suffix, nil
}

func parseIndex(e string) (uint32, error) {
	hard := strings.HasSuffix(e, "h") || strings.HasSuffix(e, "'")
	if hard {
		e = e[:len(e)-1]
	}
	v, err := strconv.ParseUint(e, 10, 31)
	if err != nil {
		return 0, fmt.Errorf("%w: path element %q", ErrDescriptor, e)
	}
	if hard {
		v += uint64(hdkeychain.HardenedKeyStart)
	}
	return uint32(v), nil
}

// childKeys returns the public keys of d's keys at branch/index, in the
// descriptor's order.
func (d *Descriptor) childKeys(branch, index uint32) ([]*btcec.PublicKey, error) {
	bks, err := d.branchKeys(branch)
	if err != nil {
		return nil, err
	}
	keys := make([]*btcec.PublicKey, len(d.Keys))
	for i, b := range bks {
		c, err := b.Derive(index)
		if err != nil {
			return nil, err
		}
		if keys[i], err = c.ECPubKey(); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// WitnessScript returns the script at branch/index: for WSH the keys
// derived there, sorted (BIP67), in an m-of-n CHECKMULTISIG; for TR the
// leaf script of sortedmulti_a (the x-only keys sorted).
func (d *Descriptor) WitnessScript(branch, index uint32) ([]byte, error) {
	pks, err := d.childKeys(branch, index)
	if err != nil {
		return nil, err
	}
	if d.Type == TR {
		return multiAScript(d.M, pks)
	}
	keys := make([][]byte, len(pks))
	for i, pk := range pks {
		keys[i] = pk.SerializeCompressed()
	}
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 })
	sb := txscript.NewScriptBuilder().AddInt64(int64(d.M))
	for _, k := range keys {
		sb.AddData(k)
	}
	return sb.AddInt64(int64(len(keys))).AddOp(txscript.OP_CHECKMULTISIG).Script()
}

// Address returns the address at branch/index (P2WSH, or P2TR) and the
// script it commits to (the witness script, or the tapscript leaf).
func (d *Descriptor) Address(branch, index uint32) (btcutil.Address, []byte, error) {
	ws, err := d.WitnessScript(branch, index)
	if err != nil {
		return nil, nil, err
	}
	if d.Type == TR {
		out, _, err := tapOutput(ws)
		if err != nil {
			return nil, nil, err
		}
		a, err := btcutil.NewAddressTaproot(schnorr.SerializePubKey(out), d.Net)
		return a, ws, err
	}
	h := sha256Sum(ws)
	a, err := btcutil.NewAddressWitnessScriptHash(h[:], d.Net)
	return a, ws, err
}

// PkScript returns the output script at branch/index.
func (d *Descriptor) PkScript(branch, index uint32) ([]byte, error) {
	a, _, err := d.Address(branch, index)
	if err != nil {
		return nil, err
	}
	return txscript.PayToAddrScript(a)
}
