package passkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// SoftKey is a software credential: a "CLI key" that an operator holds as
// a file and enrols through the same two-person flow as a security key.
// It makes the same WebAuthn assertions a security key makes, so the core
// verifies both alike. Its user-verified flag means what holding the file
// means: keep it where only its operator can read it.
type SoftKey struct {
	signer crypto.Signer
	alg    int
	cose   []byte
	// Counter is the sign counter. Zero: the key does not count (replays
	// are refused by the challenge alone, as for most passkeys); above
	// zero, each assertion counts one up first.
	Counter uint32
}

// ErrKeyFile reports a key file that is not a PKCS#8 Ed25519 or P-256 key.
var ErrKeyFile = errors.New("passkey: key file is not a PKCS#8 Ed25519 or P-256 private key")

// NewSoftKey makes a software credential of alg (AlgEdDSA or AlgES256).
func NewSoftKey(alg int) (*SoftKey, error) {
	switch alg {
	case AlgEdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return softFrom(priv)
	case AlgES256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return softFrom(priv)
	}
	return nil, fmt.Errorf("%w: algorithm %d", ErrKey, alg)
}

// SoftKeyFromSeed makes an Ed25519 software credential from a 32-byte
// seed: deterministic keys for demos and tests.
func SoftKeyFromSeed(seed [32]byte) *SoftKey {
	k, _ := softFrom(ed25519.NewKeyFromSeed(seed[:]))
	return k
}

func softFrom(priv crypto.Signer) (*SoftKey, error) {
	k := &SoftKey{signer: priv}
	var err error
	switch p := priv.(type) {
	case ed25519.PrivateKey:
		k.alg, k.cose = AlgEdDSA, EncodeEd25519(p.Public().(ed25519.PublicKey))
	case *ecdsa.PrivateKey:
		if p.Curve != elliptic.P256() {
			return nil, ErrKeyFile
		}
		k.alg = AlgES256
		if k.cose, err = EncodeP256(&p.PublicKey); err != nil {
			return nil, err
		}
	default:
		return nil, ErrKeyFile
	}
	return k, nil
}

// PublicKey returns the credential's COSE public key, what is enrolled.
func (k *SoftKey) PublicKey() []byte { return append([]byte(nil), k.cose...) }

// ID returns the credential id: SHA-256 of the COSE public key.
func (k *SoftKey) ID() []byte {
	h := sha256.Sum256(k.cose)
	return h[:]
}

// Assert signs challenge for rp as an assertion made at origin.
func (k *SoftKey) Assert(rpID, origin string, challenge []byte) (Assertion, error) {
	if k.Counter > 0 {
		k.Counter++
	}
	cd, err := json.Marshal(ClientData{Type: "webauthn.get", Challenge: base64.RawURLEncoding.EncodeToString(challenge), Origin: origin})
	if err != nil {
		return Assertion{}, err
	}
	h := sha256.Sum256([]byte(rpID))
	ad := append(h[:], FlagUserPresent|FlagUserVerified)
	ad = binary.BigEndian.AppendUint32(ad, k.Counter)
	a := Assertion{Credential: k.ID(), AuthenticatorData: ad, ClientDataJSON: cd}
	data := signedData(a)
	switch k.alg {
	case AlgEdDSA:
		a.Signature = ed25519.Sign(k.signer.(ed25519.PrivateKey), data)
	default:
		d := sha256.Sum256(data)
		if a.Signature, err = ecdsa.SignASN1(rand.Reader, k.signer.(*ecdsa.PrivateKey), d[:]); err != nil {
			return Assertion{}, err
		}
	}
	return a, nil
}

// MarshalPEM returns the key as a PKCS#8 PEM block, the key file's format.
func (k *SoftKey) MarshalPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.signer)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseSoftKey reads a key file's PEM.
func ParseSoftKey(b []byte) (*SoftKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, ErrKeyFile
	}
	priv, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyFile, err)
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, ErrKeyFile
	}
	return softFrom(s)
}

// LoadSoftKey reads a key file.
func LoadSoftKey(path string) (*SoftKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParseSoftKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// SaveSoftKey writes a new key file (0600); an existing file is never
// overwritten.
func SaveSoftKey(path string, k *SoftKey) error {
	b, err := k.MarshalPEM()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// PublicKeyPEM returns a COSE public key as a PEM "PUBLIC KEY" (PKIX), the
// form a co-signer's policy file may pin.
func PublicKeyPEM(cose []byte) (string, error) {
	k, err := ParseKey(cose)
	if err != nil {
		return "", err
	}
	var pub any = k.ed
	if k.Alg == AlgES256 {
		pub = k.ec
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// ParsePublicKeyPEM reads a PEM "PUBLIC KEY" of an Ed25519 or P-256 key
// and returns its COSE encoding.
func ParsePublicKeyPEM(s string) ([]byte, error) {
	blk, _ := pem.Decode([]byte(s))
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%w: not a PEM public key", ErrKey)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	switch p := pub.(type) {
	case ed25519.PublicKey:
		return EncodeEd25519(p), nil
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: not P-256", ErrKey)
		}
		return EncodeP256(p)
	}
	return nil, fmt.Errorf("%w: not Ed25519 or P-256", ErrKey)
}
