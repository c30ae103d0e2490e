package tree

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A signed tree head is a C2SP signed note (c2sp.org/signed-note) whose text
// is a C2SP checkpoint (c2sp.org/tlog-checkpoint) with one extension line,
// the time of the newest entry:
//
//	kinko.journal/3f1c0a9b2d4e5f60        origin: the log's identity
//	1234567                               size: entries in the tree
//	CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=   root: base64 RFC 6962 root
//	time 1733040000123456789              newest entry's time, unix ns
//
//	— kinko.journal/3f1c0a9b2d4e5f60 AAECAz...   ed25519 signature line
//
// The signature line is an em dash, a space, the key name (the origin), a
// space and base64(key ID || ed25519 signature over the text); the key ID is
// the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key). Other
// signature lines (a witness's cosignature) may follow and are ignored by a
// verifier that does not know their key. Every number is canonical decimal
// and every base64 strict, so one head has exactly one encoding.

// Errors of heads.
var (
	// ErrMalformedHead reports bytes that are not a signed head.
	ErrMalformedHead = errors.New("tree: malformed signed head")
	// ErrHeadSignature reports a head not signed by the expected key.
	ErrHeadSignature = errors.New("tree: head not signed by the log's key")
	// ErrHeadOrigin reports a head for another log.
	ErrHeadOrigin = errors.New("tree: head is for another log")
	// ErrMalformedKey reports a key string that does not parse.
	ErrMalformedKey = errors.New("tree: malformed key")
)

// Bounds of a signed note.
const (
	// MaxNoteSize bounds a signed head's encoding.
	MaxNoteSize = 64 << 10
	// MaxSignatures bounds the signature lines of a note.
	MaxSignatures = 64
)

// sigTypeEd25519 is the signed-note signature type of Ed25519.
const sigTypeEd25519 = 0x01

var b64 = base64.StdEncoding.Strict()

// Head is a tree head: the tree's size, its root hash and the time (unix
// nanoseconds) of its newest entry (0 for an empty tree), for the log named
// by Origin.
type Head struct {
	Origin string
	Size   uint64
	Root   Hash
	Time   int64
}

// Text returns the head's checkpoint text, the part a signature covers.
func (h Head) Text() []byte {
	var b bytes.Buffer
	b.WriteString(h.Origin)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatUint(h.Size, 10))
	b.WriteByte('\n')
	b.WriteString(b64.EncodeToString(h.Root[:]))
	b.WriteByte('\n')
	b.WriteString("time ")
	b.WriteString(strconv.FormatInt(h.Time, 10))
	b.WriteByte('\n')
	return b.Bytes()
}

// ParseHeadText parses a head's checkpoint text, strictly.
func ParseHeadText(text []byte) (Head, error) {
	lines := strings.Split(string(text), "\n")
	if len(lines) != 5 || lines[4] != "" {
		return Head{}, fmt.Errorf("%w: the text is not four lines (origin, size, root, time)", ErrMalformedHead)
	}
	var h Head
	if err := checkName(lines[0]); err != nil {
		return Head{}, fmt.Errorf("%w: origin: %v", ErrMalformedHead, err)
	}
	h.Origin = lines[0]
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return Head{}, fmt.Errorf("%w: size %q is not a canonical decimal", ErrMalformedHead, lines[1])
	}
	h.Size = size
	root, err := b64.DecodeString(lines[2])
	if err != nil || len(root) != HashSize {
		return Head{}, fmt.Errorf("%w: root %q is not the base64 of %d bytes", ErrMalformedHead, lines[2], HashSize)
	}
	copy(h.Root[:], root)
	ts, ok := strings.CutPrefix(lines[3], "time ")
	t, err := strconv.ParseInt(ts, 10, 64)
	if !ok || err != nil || strconv.FormatInt(t, 10) != ts {
		return Head{}, fmt.Errorf("%w: %q is not \"time <unix nanoseconds>\"", ErrMalformedHead, lines[3])
	}
	h.Time = t
	return h, nil
}

// checkName checks a key name (and origin): non-empty, valid UTF-8, no
// spaces, no plus, no control characters.
func checkName(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if !utf8.ValidString(s) {
		return errors.New("not UTF-8")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || r == '+' || r < 0x20 || r == 0x7f {
			return fmt.Errorf("%q has a space, a plus or a control character", s)
		}
	}
	return nil
}

// NoteSignature is one signature line of a signed note.
type NoteSignature struct {
	Name  string
	KeyID uint32
	Sig   []byte
}

// Note is a signed note: its text (ending in a newline) and signatures.
type Note struct {
	Text []byte
	Sigs []NoteSignature
}

// sigPrefix starts a signature line: an em dash and a space.
const sigPrefix = "\u2014 "

// Marshal encodes the note.
func (n *Note) Marshal() []byte {
	var b bytes.Buffer
	b.Write(n.Text)
	b.WriteByte('\n')
	for _, s := range n.Sigs {
		id := binary.BigEndian.AppendUint32(nil, s.KeyID)
		b.WriteString(sigPrefix)
		b.WriteString(s.Name)
		b.WriteByte(' ')
		b.WriteString(b64.EncodeToString(append(id, s.Sig...)))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ParseNote parses a signed note without checking any signature.
func ParseNote(b []byte) (*Note, error) {
	if len(b) > MaxNoteSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrMalformedHead, len(b), MaxNoteSize)
	}
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: not UTF-8", ErrMalformedHead)
	}
	for _, c := range b {
		if (c < 0x20 && c != '\n') || c == 0x7f {
			return nil, fmt.Errorf("%w: a control character", ErrMalformedHead)
		}
	}
	i := bytes.LastIndex(b, []byte("\n\n"))
	if i < 0 {
		return nil, fmt.Errorf("%w: no blank line before the signatures", ErrMalformedHead)
	}
	n := &Note{Text: b[:i+1]}
	rest := b[i+2:]
	if len(rest) == 0 || rest[len(rest)-1] != '\n' {
		return nil, fmt.Errorf("%w: no signature line, or the last does not end in a newline", ErrMalformedHead)
	}
	for _, line := range strings.Split(string(rest[:len(rest)-1]), "\n") {
		if len(n.Sigs) == MaxSignatures {
			return nil, fmt.Errorf("%w: more than %d signatures", ErrMalformedHead, MaxSignatures)
		}
		body, ok := strings.CutPrefix(line, sigPrefix)
		name, sig, ok2 := strings.Cut(body, " ")
		if !ok || !ok2 || checkName(name) != nil {
			return nil, fmt.Errorf("%w: signature line %q", ErrMalformedHead, line)
		}
		raw, err := b64.DecodeString(sig)
		if err != nil || len(raw) < 5 {
			return nil, fmt.Errorf("%w: signature of %s is not base64 of a key ID and a signature", ErrMalformedHead, name)
		}
		n.Sigs = append(n.Sigs, NoteSignature{Name: name, KeyID: binary.BigEndian.Uint32(raw), Sig: raw[4:]})
	}
	return n, nil
}

// ParseHead parses a signed head WITHOUT checking its signature: for
// reading what a head says. Verifier.Verify is the check.
func ParseHead(b []byte) (Head, error) {
	n, err := ParseNote(b)
	if err != nil {
		return Head{}, err
	}
	return ParseHeadText(n.Text)
}

// keyID returns the signed-note key ID of an Ed25519 key.
func keyID(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', sigTypeEd25519})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// Signer signs heads of one log: its origin is the key's name.
type Signer struct {
	name string
	id   uint32
	key  ed25519.PrivateKey
}

// GenerateKey returns a new signer key for origin, in the signed-note
// private key form "PRIVATE+KEY+<name>+<key ID hex>+<base64(0x01 || seed)>".
func GenerateKey(origin string) (string, error) {
	if err := checkName(origin); err != nil {
		return "", fmt.Errorf("%w: origin: %v", ErrMalformedKey, err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("tree: %w", err)
	}
	return fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", origin, keyID(origin, pub), b64.EncodeToString(append([]byte{sigTypeEd25519}, priv.Seed()...))), nil
}

// splitKey parses "<name>+<id hex>+<base64(0x01 || key)>".
func splitKey(s string) (name string, id uint32, key []byte, err error) {
	parts := strings.SplitN(s, "+", 3)
	if len(parts) != 3 || checkName(parts[0]) != nil || len(parts[1]) != 8 {
		return "", 0, nil, ErrMalformedKey
	}
	idb, err := hex.DecodeString(parts[1])
	if err != nil || parts[1] != strings.ToLower(parts[1]) {
		return "", 0, nil, ErrMalformedKey
	}
	raw, err := b64.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != sigTypeEd25519 {
		return "", 0, nil, ErrMalformedKey
	}
	return parts[0], binary.BigEndian.Uint32(idb), raw[1:], nil
}

// NewSigner parses a signer key made by GenerateKey.
func NewSigner(skey string) (*Signer, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(skey), "PRIVATE+KEY+")
	if !ok {
		return nil, ErrMalformedKey
	}
	name, id, seed, err := splitKey(rest)
	if err != nil {
		return nil, err
	}
	key := ed25519.NewKeyFromSeed(seed)
	if keyID(name, key.Public().(ed25519.PublicKey)) != id {
		return nil, fmt.Errorf("%w: key ID does not match the key", ErrMalformedKey)
	}
	return &Signer{name: name, id: id, key: key}, nil
}

// Origin returns the log's origin, the key's name.
func (s *Signer) Origin() string { return s.name }

// VerifierKey returns the public key in the signed-note verifier key form
// "<name>+<key ID hex>+<base64(0x01 || public key)>", what a verifier is
// given.
func (s *Signer) VerifierKey() string {
	pub := s.key.Public().(ed25519.PublicKey)
	return fmt.Sprintf("%s+%08x+%s", s.name, s.id, b64.EncodeToString(append([]byte{sigTypeEd25519}, pub...)))
}

// Sign returns the signed head of h, whose origin is the signer's (an
// empty origin is taken as the signer's).
func (s *Signer) Sign(h Head) ([]byte, error) {
	if h.Origin == "" {
		h.Origin = s.name
	}
	if h.Origin != s.name {
		return nil, fmt.Errorf("%w: signer of %s asked to sign a head of %s", ErrHeadOrigin, s.name, h.Origin)
	}
	return s.SignText(h.Text())
}

// SignText signs any note text (ending in a newline) with the log's key:
// the primitive under Sign.
func (s *Signer) SignText(text []byte) ([]byte, error) {
	if len(text) == 0 || text[len(text)-1] != '\n' || bytes.Contains(text, []byte("\n\n")) {
		return nil, fmt.Errorf("%w: note text must be non-empty lines ending in a newline", ErrMalformedHead)
	}
	n := &Note{Text: text, Sigs: []NoteSignature{{Name: s.name, KeyID: s.id, Sig: ed25519.Sign(s.key, text)}}}
	return n.Marshal(), nil
}

// Verifier checks heads of one log: signed by its key, for its origin (the
// key's name).
type Verifier struct {
	name string
	id   uint32
	pub  ed25519.PublicKey
}

// NewVerifier parses a verifier key (Signer.VerifierKey).
func NewVerifier(vkey string) (*Verifier, error) {
	name, id, pub, err := splitKey(strings.TrimSpace(vkey))
	if err != nil {
		return nil, err
	}
	if keyID(name, pub) != id {
		return nil, fmt.Errorf("%w: key ID does not match the key", ErrMalformedKey)
	}
	return &Verifier{name: name, id: id, pub: ed25519.PublicKey(pub)}, nil
}

// Origin returns the origin the verifier accepts.
func (v *Verifier) Origin() string { return v.name }

// Verify parses a signed head and checks it: a signature line by the
// verifier's key (name and key ID) whose signature verifies, no signature by
// that key that fails, and the origin the verifier's. Signatures by other
// keys are ignored.
func (v *Verifier) Verify(b []byte) (Head, error) {
	n, err := ParseNote(b)
	if err != nil {
		return Head{}, err
	}
	good := false
	for _, s := range n.Sigs {
		if s.Name != v.name || s.KeyID != v.id {
			continue
		}
		if len(s.Sig) != ed25519.SignatureSize || !ed25519.Verify(v.pub, n.Text, s.Sig) {
			return Head{}, fmt.Errorf("%w: the signature by %s does not verify", ErrHeadSignature, v.name)
		}
		good = true
	}
	if !good {
		return Head{}, fmt.Errorf("%w: no signature by %s+%08x", ErrHeadSignature, v.name, v.id)
	}
	h, err := ParseHeadText(n.Text)
	if err != nil {
		return Head{}, err
	}
	if h.Origin != v.name {
		return Head{}, fmt.Errorf("%w: the head's origin is %q, this log's %q", ErrHeadOrigin, h.Origin, v.name)
	}
	return h, nil
}
