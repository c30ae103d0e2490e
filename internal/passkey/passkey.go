// Package passkey verifies operators' WebAuthn assertions without a clock,
// randomness or I/O, so that the core's deterministic apply can check them.
//
// An operator's credential is a WebAuthn public key credential: a security
// key or a passkey enrolled through the console, or a software "CLI key"
// (SoftKey) that the operator holds as a file. Either one signs the same
// thing, a WebAuthn assertion:
//
//	signature over authenticatorData || SHA-256(clientDataJSON)
//
// whose clientDataJSON names the type "webauthn.get", the challenge and the
// origin, and whose authenticatorData starts with SHA-256(rp id), the flags
// (user present and user verified required) and a sign counter. What is
// signed is the digest of the exact request (Digest): the challenge of an
// approval is the request itself, not a random number, so an assertion is
// a signature over the request that anyone holding the credential's public
// key can check again later — the core in apply, the co-signer on its own
// host, an auditor from the journal.
//
// Supported algorithms are the two every current authenticator offers:
// ES256 (ECDSA P-256 with SHA-256, COSE -7) and EdDSA (Ed25519, COSE -8).
package passkey

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// COSE algorithm identifiers (RFC 9053).
const (
	AlgES256 = -7
	AlgEdDSA = -8
)

// Flags of authenticatorData (WebAuthn §6.1).
const (
	FlagUserPresent  = 0x01
	FlagUserVerified = 0x04
	FlagAttested     = 0x40
	FlagExtensions   = 0x80
)

// Bounds on what an assertion may hold, checked before anything is parsed.
const (
	MaxCredentialID      = 1023 // WebAuthn's own bound
	MaxAuthenticatorData = 1024
	MaxClientDataJSON    = 2048
	MaxSignature         = 128
	MaxPublicKey         = 256
	MaxOrigins           = 8
	MaxRPID              = 253
	MaxOrigin            = 512
)

// Errors of verification; callers test them with errors.Is.
var (
	ErrMalformed = errors.New("passkey: assertion malformed")
	ErrKey       = errors.New("passkey: public key malformed or unsupported")
	ErrType      = errors.New("passkey: client data is not of a webauthn.get")
	ErrChallenge = errors.New("passkey: assertion is over other bytes than this request")
	ErrOrigin    = errors.New("passkey: origin is not the relying party's")
	ErrRPID      = errors.New("passkey: assertion is for another relying party")
	ErrFlags     = errors.New("passkey: user presence and verification are required")
	ErrCounter   = errors.New("passkey: sign counter did not grow (a cloned or replayed credential)")
	ErrSignature = errors.New("passkey: signature does not verify")
	ErrRP        = errors.New("passkey: relying party configuration invalid")
)

// RP is the relying party: its id (a domain, such as "kinko.example" or
// "localhost") and the origins its console is served from. It is journaled
// configuration, so verification reads nothing from the host.
type RP struct {
	ID      string   `json:"id"`
	Origins []string `json:"origins"`
}

// Check reports whether the configuration is usable.
func (rp RP) Check() error {
	if rp.ID == "" || len(rp.ID) > MaxRPID || len(rp.Origins) == 0 || len(rp.Origins) > MaxOrigins {
		return fmt.Errorf("%w: an id and 1-%d origins", ErrRP, MaxOrigins)
	}
	for _, o := range rp.Origins {
		if o == "" || len(o) > MaxOrigin {
			return fmt.Errorf("%w: origin %q", ErrRP, o)
		}
	}
	return nil
}

// Assertion is what an authenticator returns from navigator.credentials.get,
// as journaled beside the command it signs.
type Assertion struct {
	Credential        []byte `json:"credential"`
	AuthenticatorData []byte `json:"authenticator_data"`
	ClientDataJSON    []byte `json:"client_data_json"`
	Signature         []byte `json:"signature"`
}

// CheckSize reports whether every part of a is within its bound.
func (a *Assertion) CheckSize() error {
	if len(a.Credential) == 0 || len(a.Credential) > MaxCredentialID || len(a.AuthenticatorData) < 37 ||
		len(a.AuthenticatorData) > MaxAuthenticatorData || len(a.ClientDataJSON) == 0 || len(a.ClientDataJSON) > MaxClientDataJSON ||
		len(a.Signature) == 0 || len(a.Signature) > MaxSignature {
		return fmt.Errorf("%w: a part is missing or too long", ErrMalformed)
	}
	return nil
}

// AuthData is the fixed part of authenticatorData.
type AuthData struct {
	RPIDHash [32]byte
	Flags    byte
	Counter  uint32
}

// ParseAuthData reads the fixed part of authenticatorData; what follows
// (attested credential data, extensions) is not read by an assertion's
// verification.
func ParseAuthData(b []byte) (AuthData, error) {
	if len(b) < 37 || len(b) > MaxAuthenticatorData {
		return AuthData{}, fmt.Errorf("%w: authenticator data of %d bytes", ErrMalformed, len(b))
	}
	var d AuthData
	copy(d.RPIDHash[:], b[:32])
	d.Flags = b[32]
	d.Counter = binary.BigEndian.Uint32(b[33:37])
	if len(b) > 37 && d.Flags&(FlagAttested|FlagExtensions) == 0 {
		return AuthData{}, fmt.Errorf("%w: %d trailing bytes in authenticator data", ErrMalformed, len(b)-37)
	}
	return d, nil
}

// ClientData is the part of clientDataJSON that verification reads.
type ClientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
	TopOrigin   string `json:"topOrigin"`
}

// ParseClientData decodes clientDataJSON.
func ParseClientData(b []byte) (ClientData, error) {
	var c ClientData
	if len(b) == 0 || len(b) > MaxClientDataJSON {
		return c, fmt.Errorf("%w: client data of %d bytes", ErrMalformed, len(b))
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%w: client data: %v", ErrMalformed, err)
	}
	return c, nil
}

// Verify checks an assertion made with the credential whose COSE public
// key is publicKey, over challenge, for the relying party rp, after a last
// seen sign counter of counter. It returns the assertion's counter, which
// the caller records. Verify is deterministic: the same inputs always give
// the same answer.
//
// The counter rule: an authenticator that counts (a non-zero counter) must
// show a counter above the last one; one that went back, or dropped to
// zero after counting, is refused as cloned or replayed. Authenticators
// that never count (counter zero, as many passkeys) rely on the challenge:
// every request's digest is signed once, which the caller enforces.
func Verify(rp RP, publicKey []byte, counter uint32, challenge []byte, a Assertion) (uint32, error) {
	if err := a.CheckSize(); err != nil {
		return 0, err
	}
	key, err := ParseKey(publicKey)
	if err != nil {
		return 0, err
	}
	d, err := ParseAuthData(a.AuthenticatorData)
	if err != nil {
		return 0, err
	}
	c, err := ParseClientData(a.ClientDataJSON)
	if err != nil {
		return 0, err
	}
	if c.Type != "webauthn.get" {
		return 0, ErrType
	}
	got, err := base64.RawURLEncoding.DecodeString(c.Challenge)
	if err != nil || !bytes.Equal(got, challenge) {
		return 0, ErrChallenge
	}
	if !originOK(rp, c.Origin) || c.CrossOrigin || c.TopOrigin != "" {
		return 0, ErrOrigin
	}
	if d.RPIDHash != sha256.Sum256([]byte(rp.ID)) {
		return 0, ErrRPID
	}
	if d.Flags&FlagUserPresent == 0 || d.Flags&FlagUserVerified == 0 {
		return 0, ErrFlags
	}
	if (d.Counter != 0 || counter != 0) && d.Counter <= counter {
		return 0, ErrCounter
	}
	if !key.verify(signedData(a), a.Signature) {
		return 0, ErrSignature
	}
	return d.Counter, nil
}

func originOK(rp RP, origin string) bool {
	for _, o := range rp.Origins {
		if o == origin {
			return true
		}
	}
	return false
}

// signedData is authenticatorData || SHA-256(clientDataJSON).
func signedData(a Assertion) []byte {
	h := sha256.Sum256(a.ClientDataJSON)
	out := make([]byte, 0, len(a.AuthenticatorData)+32)
	return append(append(out, a.AuthenticatorData...), h[:]...)
}

// Key is a parsed credential public key.
type Key struct {
	Alg int
	ec  *ecdsa.PublicKey
	ed  ed25519.PublicKey
}

func (k Key) verify(data, sig []byte) bool {
	switch k.Alg {
	case AlgES256:
		h := sha256.Sum256(data)
		return ecdsa.VerifyASN1(k.ec, h[:], sig)
	case AlgEdDSA:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.ed, data, sig)
	}
	return false
}

// VerifySignature checks only the signature of an assertion with a COSE
// public key: what a test vector made without user verification can show.
func VerifySignature(publicKey []byte, a Assertion) error {
	key, err := ParseKey(publicKey)
	if err != nil {
		return err
	}
	if !key.verify(signedData(a), a.Signature) {
		return ErrSignature
	}
	return nil
}

// ParseKey decodes a COSE_Key (RFC 9052 §7) of an ES256 P-256 or EdDSA
// Ed25519 credential, as authenticators encode it: a CBOR map of small
// integer labels to integers and byte strings.
func ParseKey(b []byte) (Key, error) {
	if len(b) == 0 || len(b) > MaxPublicKey {
		return Key{}, fmt.Errorf("%w: %d bytes", ErrKey, len(b))
	}
	m, err := decodeCOSEMap(b)
	if err != nil {
		return Key{}, err
	}
	kty, alg, crv := m.ints[1], m.ints[3], m.ints[-1]
	x, y := m.bytes[-2], m.bytes[-3]
	switch {
	case kty == 2 && alg == AlgES256 && crv == 1:
		if len(x) != 32 || len(y) != 32 {
			return Key{}, fmt.Errorf("%w: P-256 coordinates", ErrKey)
		}
		pt := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
		if err != nil {
			return Key{}, fmt.Errorf("%w: %v", ErrKey, err)
		}
		return Key{Alg: AlgES256, ec: pub}, nil
	case kty == 1 && alg == AlgEdDSA && crv == 6:
		if len(x) != ed25519.PublicKeySize {
			return Key{}, fmt.Errorf("%w: Ed25519 key length", ErrKey)
		}
		return Key{Alg: AlgEdDSA, ed: ed25519.PublicKey(bytes.Clone(x))}, nil
	}
	return Key{}, fmt.Errorf("%w: kty %d alg %d crv %d (ES256 P-256 or EdDSA Ed25519)", ErrKey, kty, alg, crv)
}

// EncodeEd25519 returns the COSE_Key of an Ed25519 public key.
func EncodeEd25519(pub ed25519.PublicKey) []byte {
	b := []byte{0xa4, 0x01, 0x01, 0x03, 0x27, 0x20, 0x06, 0x21, 0x58, 0x20}
	return append(b, pub...)
}

// EncodeP256 returns the COSE_Key of a P-256 public key.
func EncodeP256(pub *ecdsa.PublicKey) ([]byte, error) {
	raw, err := pub.Bytes()
	if err != nil || len(raw) != 65 {
		return nil, fmt.Errorf("%w: not a P-256 key", ErrKey)
	}
	b := []byte{0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20}
	b = append(b, raw[1:33]...)
	b = append(b, 0x22, 0x58, 0x20)
	return append(b, raw[33:]...), nil
}

// coseMap is a decoded COSE_Key: integer labels to integers or bytes.
type coseMap struct {
	ints  map[int64]int64
	bytes map[int64][]byte
}

// maxCOSEEntries bounds the map a COSE_Key may be.
const maxCOSEEntries = 16

// decodeCOSEMap decodes a definite-length CBOR map whose keys are integers
// and whose values are integers, byte strings or text strings (the last
// read and dropped). Anything else — nesting, indefinite lengths, floats,
// tags, duplicate labels, trailing bytes — is refused.
func decodeCOSEMap(b []byte) (coseMap, error) {
	m := coseMap{ints: map[int64]int64{}, bytes: map[int64][]byte{}}
	r := cborReader{b: b}
	major, n, err := r.head()
	if err != nil {
		return m, err
	}
	if major != 5 || n == 0 || n > maxCOSEEntries {
		return m, fmt.Errorf("%w: not a COSE map", ErrKey)
	}
	seen := map[int64]bool{}
	for i := uint64(0); i < n; i++ {
		label, err := r.int()
		if err != nil {
			return m, err
		}
		if seen[label] {
			return m, fmt.Errorf("%w: label %d twice", ErrKey, label)
		}
		seen[label] = true
		major, v, err := r.head()
		if err != nil {
			return m, err
		}
		switch major {
		case 0:
			if v > 1<<62 {
				return m, fmt.Errorf("%w: integer too large", ErrKey)
			}
			m.ints[label] = int64(v)
		case 1:
			if v > 1<<62 {
				return m, fmt.Errorf("%w: integer too large", ErrKey)
			}
			m.ints[label] = -1 - int64(v)
		case 2, 3:
			s, err := r.take(v)
			if err != nil {
				return m, err
			}
			if major == 2 {
				m.bytes[label] = s
			}
		default:
			return m, fmt.Errorf("%w: value of major type %d", ErrKey, major)
		}
	}
	if r.i != len(b) {
		return m, fmt.Errorf("%w: %d trailing bytes", ErrKey, len(b)-r.i)
	}
	return m, nil
}

type cborReader struct {
	b []byte
	i int
}

// head reads a data item's head: its major type and argument.
func (r *cborReader) head() (byte, uint64, error) {
	if r.i >= len(r.b) {
		return 0, 0, fmt.Errorf("%w: truncated", ErrKey)
	}
	ib := r.b[r.i]
	r.i++
	major, info := ib>>5, ib&0x1f
	switch {
	case info < 24:
		return major, uint64(info), nil
	case info <= 27:
		n := 1 << (info - 24)
		if len(r.b)-r.i < n {
			return 0, 0, fmt.Errorf("%w: truncated", ErrKey)
		}
		var v uint64
		for _, c := range r.b[r.i : r.i+n] {
			v = v<<8 | uint64(c)
		}
		r.i += n
		return major, v, nil
	}
	return 0, 0, fmt.Errorf("%w: indefinite or reserved length", ErrKey)
}

func (r *cborReader) int() (int64, error) {
	major, v, err := r.head()
	if err != nil {
		return 0, err
	}
	if v > 1<<62 {
		return 0, fmt.Errorf("%w: label too large", ErrKey)
	}
	switch major {
	case 0:
		return int64(v), nil
	case 1:
		return -1 - int64(v), nil
	}
	return 0, fmt.Errorf("%w: label of major type %d", ErrKey, major)
}

func (r *cborReader) take(n uint64) ([]byte, error) {
	if n > uint64(len(r.b)-r.i) {
		return nil, fmt.Errorf("%w: truncated string", ErrKey)
	}
	s := r.b[r.i : r.i+int(n)]
	r.i += int(n)
	return s, nil
}

// digestDomain separates kinko's signed requests from anything else a
// credential might sign.
const digestDomain = "kinko signed request v1\n"

// Digest is the challenge of a signed request: SHA-256 over the canonical
// bytes
//
//	"kinko signed request v1\n"
//	|| u32be(len(kind)) || kind
//	|| u32be(len(id)) || id
//	|| u32be(len(payload)) || payload
//
// kind names what is done (the core command kind's name, such as
// "open_request" or "decide_request"), id is the request's id (a request
// id, or the action id of a command that is not a request), and payload is
// the command's canonical JSON without its assertion (core.SignedBytes).
// Lengths are big-endian; nothing is ambiguous, so two different requests
// never share a digest.
func Digest(kind, id string, payload []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(digestDomain))
	var n [4]byte
	for _, part := range [][]byte{[]byte(kind), []byte(id), payload} {
		binary.BigEndian.PutUint32(n[:], uint32(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
