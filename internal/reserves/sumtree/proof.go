package sumtree

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"kinko/internal/ledger"
)

// Errors of a proof, testable with errors.Is.
var (
	// ErrProofMalformed reports bytes that are not a proof in the one
	// encoding a proof has.
	ErrProofMalformed = errors.New("sumtree: proof malformed")
	// ErrProofRoot reports a proof whose path does not lead to its root
	// hash (or to the root hash the customer expected).
	ErrProofRoot = errors.New("sumtree: proof does not lead to the root")
	// ErrProofTotal reports a path whose sum is not the root's total.
	ErrProofTotal = errors.New("sumtree: proof's sums do not add up to the root's total")
	// ErrProofLeaf reports a proof of another account or balance than the
	// customer's.
	ErrProofLeaf = errors.New("sumtree: proof is not of the customer's account and balance")
)

// Proof is one customer's inclusion proof: their leaf and its index, the
// sibling of each node on the way up (Path[0] is the leaf's sibling), and
// the root they lead to.
type Proof struct {
	Root  Root
	Index uint64
	Leaf  Leaf
	Path  []Node
}

// ProofMagic starts a proof's binary encoding; ProofVersion follows it.
const (
	ProofMagic   = "KPOR"
	ProofVersion = 1
)

// fixed parts of the encoding: magic, version, asset length; seq, time,
// size, index; salt, account, balance; depth; root hash, total.
const proofFixed = 4 + 1 + 1 + 8*4 + 32 + 8 + 16 + 1 + 32 + 16

// MaxProofBytes bounds a proof's encoding.
const MaxProofBytes = proofFixed + MaxAssetCode + MaxDepth*48

// MarshalBinary returns the proof's one encoding, every integer
// big-endian:
//
//	"KPOR" | version (1) | asset length (1) | asset | seq (8) | time (8) |
//	size (8) | index (8) | salt (32) | account (8) | balance (16) |
//	depth (1) | depth x (sibling hash (32) | sibling sum (16)) |
//	root hash (32) | total (16)
func (p *Proof) MarshalBinary() ([]byte, error) {
	if !ValidAsset(p.Root.Asset) || len(p.Path) > MaxDepth {
		return nil, fmt.Errorf("%w: asset %q, depth %d", ErrProofMalformed, p.Root.Asset, len(p.Path))
	}
	b := make([]byte, 0, proofFixed+len(p.Root.Asset)+48*len(p.Path))
	b = append(b, ProofMagic...)
	b = append(b, ProofVersion, byte(len(p.Root.Asset)))
	b = append(b, p.Root.Asset...)
	b = be.AppendUint64(b, p.Root.Seq)
	b = be.AppendUint64(b, uint64(p.Root.Time))
	b = be.AppendUint64(b, p.Root.Size)
	b = be.AppendUint64(b, p.Index)
	b = append(b, p.Leaf.Salt[:]...)
	b = be.AppendUint64(b, p.Leaf.Account)
	b = be.AppendUint64(b, p.Leaf.Balance.Hi)
	b = be.AppendUint64(b, p.Leaf.Balance.Lo)
	b = append(b, byte(len(p.Path)))
	for _, n := range p.Path {
		b = append(b, n.Hash[:]...)
		b = be.AppendUint64(b, n.Sum.Hi)
		b = be.AppendUint64(b, n.Sum.Lo)
	}
	b = append(b, p.Root.Hash[:]...)
	b = be.AppendUint64(b, p.Root.Total.Hi)
	b = be.AppendUint64(b, p.Root.Total.Lo)
	return b, nil
}

// ParseProof decodes a proof's binary encoding, strictly: the magic and
// version, an asset code the ledger accepts, a tree of 1 to MaxLeaves
// leaves, an index inside it, exactly Depth(size) siblings, and nothing
// after. It checks the form only; Verify checks the hashes and sums.
func ParseProof(b []byte) (*Proof, error) {
	bad := func(format string, args ...any) (*Proof, error) {
		return nil, fmt.Errorf("%w: %s", ErrProofMalformed, fmt.Sprintf(format, args...))
	}
	if len(b) > MaxProofBytes {
		return bad("%d bytes, more than %d", len(b), MaxProofBytes)
	}
	if len(b) < proofFixed || string(b[:4]) != ProofMagic {
		return bad("not a proof (no %q header)", ProofMagic)
	}
	if b[4] != ProofVersion {
		return bad("version %d, not %d", b[4], ProofVersion)
	}
	n := int(b[5])
	if len(b) < proofFixed+n {
		return bad("truncated")
	}
	p := &Proof{}
	p.Root.Asset = string(b[6 : 6+n])
	if !ValidAsset(p.Root.Asset) {
		return bad("asset code %q", p.Root.Asset)
	}
	r := b[6+n:]
	p.Root.Seq = be.Uint64(r)
	p.Root.Time = int64(be.Uint64(r[8:]))
	p.Root.Size = be.Uint64(r[16:])
	p.Index = be.Uint64(r[24:])
	copy(p.Leaf.Salt[:], r[32:64])
	p.Leaf.Account = be.Uint64(r[64:])
	p.Leaf.Balance = get128(r[72:])
	depth := int(r[88])
	r = r[89:]
	if p.Root.Size == 0 || p.Root.Size > MaxLeaves {
		return bad("tree of %d leaves", p.Root.Size)
	}
	if p.Index >= p.Root.Size {
		return bad("index %d in a tree of %d leaves", p.Index, p.Root.Size)
	}
	if want := Depth(p.Root.Size); depth != want {
		return bad("%d siblings for a tree of %d leaves, which has depth %d", depth, p.Root.Size, want)
	}
	if len(r) != depth*48+48 {
		return bad("%d bytes after the leaf; %d siblings and the root need %d", len(r), depth, depth*48+48)
	}
	p.Path = make([]Node, depth)
	for k := range p.Path {
		copy(p.Path[k].Hash[:], r[:32])
		p.Path[k].Sum = get128(r[32:48])
		r = r[48:]
	}
	copy(p.Root.Hash[:], r[:32])
	p.Root.Total = get128(r[32:48])
	return p, nil
}

// Verify checks the proof by itself: it hashes the leaf, climbs the path
// (the index's bit k says whether the node at level k is the right child:
// 0 left, 1 right), adding each sibling's sum with overflow refused, and
// checks that the top's sum is the root's total and that the root hash
// over the top and the tree's header is the proof's root hash. A customer
// also checks that the leaf's account and balance are theirs and that
// the root hash is the one published (VerifyRoot).
func (p *Proof) Verify() error {
	if !ValidAsset(p.Root.Asset) || p.Root.Size == 0 || p.Root.Size > MaxLeaves || p.Index >= p.Root.Size || len(p.Path) != Depth(p.Root.Size) {
		return fmt.Errorf("%w: asset %q, index %d of %d, %d siblings", ErrProofMalformed, p.Root.Asset, p.Index, p.Root.Size, len(p.Path))
	}
	n := p.Leaf.Node()
	for k, sib := range p.Path {
		var err error
		if (p.Index>>k)&1 == 0 {
			n, err = Parent(n, sib)
		} else {
			n, err = Parent(sib, n)
		}
		if err != nil {
			return fmt.Errorf("%w: adding the sibling at level %d (sum %s)", err, k, sib.Sum)
		}
	}
	if n.Sum != p.Root.Total {
		return fmt.Errorf("%w: the path adds up to %s, the root says %s", ErrProofTotal, n.Sum, p.Root.Total)
	}
	if h := RootHash(p.Root.Asset, p.Root.Seq, p.Root.Time, p.Root.Size, n); h != p.Root.Hash {
		return fmt.Errorf("%w: the path leads to %s, the proof's root is %s", ErrProofRoot, h, p.Root.Hash)
	}
	return nil
}

// VerifyRoot is Verify, and checks that the root hash is want: the one
// the exchange published (in the journal, the attestation report, or the
// public list of roots).
func (p *Proof) VerifyRoot(want Hash) error {
	if err := p.Verify(); err != nil {
		return err
	}
	if p.Root.Hash != want {
		return fmt.Errorf("%w: the proof's root %s is not the published %s", ErrProofRoot, p.Root.Hash, want)
	}
	return nil
}

// Check reports whether the proof's leaf is account's with balance: what
// the customer knows their balance was at the tree's journal entry. A
// proof of a smaller balance is the exchange counting less than it owes.
func (p *Proof) Check(account uint64, balance ledger.Amount) error {
	if p.Leaf.Account != account || p.Leaf.Balance != balance {
		return fmt.Errorf("%w: the proof is of account %d with %s, not account %d with %s", ErrProofLeaf, p.Leaf.Account, p.Leaf.Balance, account, balance)
	}
	return nil
}

// ProofJSON is a proof as the API serves it and `kinko reserves
// verify-proof` reads it: every field readable, and Encoded, the binary
// encoding in hex, which is what is checked; a reader refuses readable
// fields that differ from it.
type ProofJSON struct {
	Version int        `json:"version"`
	Asset   string     `json:"asset"`
	Seq     uint64     `json:"seq"`
	Time    string     `json:"time"` // the entry's time, RFC 3339 with nanoseconds, UTC
	Size    uint64     `json:"size"`
	Index   uint64     `json:"index"`
	Leaf    LeafJSON   `json:"leaf"`
	Path    []NodeJSON `json:"path"`
	Root    RootJSON   `json:"root"`
	Encoded string     `json:"encoded"`
}

// LeafJSON is a leaf: salt in hex, account, balance in base units as a
// decimal string.
type LeafJSON struct {
	Salt    Hash          `json:"salt"`
	Account uint64        `json:"account"`
	Balance ledger.Amount `json:"balance"`
}

// NodeJSON is a sibling on the path.
type NodeJSON struct {
	Hash Hash          `json:"hash"`
	Sum  ledger.Amount `json:"sum"`
}

// RootJSON is the root hash and total.
type RootJSON struct {
	Hash  Hash          `json:"hash"`
	Total ledger.Amount `json:"total"`
}

// JSON returns the proof in its JSON form.
func (p *Proof) JSON() (*ProofJSON, error) {
	enc, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	j := &ProofJSON{Version: ProofVersion, Asset: p.Root.Asset, Seq: p.Root.Seq, Time: time.Unix(0, p.Root.Time).UTC().Format(time.RFC3339Nano),
		Size: p.Root.Size, Index: p.Index, Leaf: LeafJSON{Salt: p.Leaf.Salt, Account: p.Leaf.Account, Balance: p.Leaf.Balance},
		Path: make([]NodeJSON, len(p.Path)), Root: RootJSON{Hash: p.Root.Hash, Total: p.Root.Total}, Encoded: hex.EncodeToString(enc)}
	for i, n := range p.Path {
		j.Path[i] = NodeJSON(n)
	}
	return j, nil
}

// Proof returns the proof the JSON form holds: its Encoded bytes, decoded
// strictly, which every readable field must match; without Encoded, the
// readable fields.
func (j *ProofJSON) Proof() (*Proof, error) {
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return nil, fmt.Errorf("%w: time %q", ErrProofMalformed, j.Time)
	}
	fields := &Proof{Root: Root{Asset: j.Asset, Seq: j.Seq, Time: t.UnixNano(), Size: j.Size, Hash: j.Root.Hash, Total: j.Root.Total},
		Index: j.Index, Leaf: Leaf{Salt: j.Leaf.Salt, Account: j.Leaf.Account, Balance: j.Leaf.Balance}, Path: make([]Node, len(j.Path))}
	for i, n := range j.Path {
		fields.Path[i] = Node(n)
	}
	if j.Version != ProofVersion {
		return nil, fmt.Errorf("%w: version %d, not %d", ErrProofMalformed, j.Version, ProofVersion)
	}
	if j.Encoded == "" {
		b, err := fields.MarshalBinary()
		if err != nil {
			return nil, err
		}
		return ParseProof(b)
	}
	b, err := hex.DecodeString(j.Encoded)
	if err != nil {
		return nil, fmt.Errorf("%w: encoded is not hex", ErrProofMalformed)
	}
	p, err := ParseProof(b)
	if err != nil {
		return nil, err
	}
	if fb, err := fields.MarshalBinary(); err != nil || !bytes.Equal(fb, b) {
		return nil, fmt.Errorf("%w: the readable fields differ from the encoded proof", ErrProofMalformed)
	}
	return p, nil
}

// ReadProof reads a proof from a file's bytes: the binary encoding, its
// hex, the JSON form, or an API answer holding the JSON form under
// "proof".
func ReadProof(b []byte) (*Proof, error) {
	if bytes.HasPrefix(b, []byte(ProofMagic)) {
		return ParseProof(b)
	}
	t := bytes.TrimSpace(b)
	if len(t) > 0 && t[0] == '{' {
		var wrapper struct {
			Proof *json.RawMessage `json:"proof"`
		}
		if err := json.Unmarshal(t, &wrapper); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrProofMalformed, err)
		}
		if wrapper.Proof != nil {
			t = *wrapper.Proof
		}
		var j ProofJSON
		d := json.NewDecoder(bytes.NewReader(t))
		d.DisallowUnknownFields()
		if err := d.Decode(&j); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrProofMalformed, err)
		}
		return j.Proof()
	}
	raw, err := hex.DecodeString(string(t))
	if err != nil {
		return nil, fmt.Errorf("%w: neither a proof, its hex, nor its JSON form", ErrProofMalformed)
	}
	return ParseProof(raw)
}
