// Package auth holds the secrets work the API does outside the core's
// apply: argon2id password hashes, TOTP seeds sealed with the host's key,
// TOTP codes checked against the clock, and session tokens of which only a
// hash is kept.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// Argon2 are argon2id parameters.
type Argon2 struct {
	Time    uint32
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultArgon2 follows RFC 9106's second recommendation (64 MiB, 3 passes).
var DefaultArgon2 = Argon2{Time: 3, Memory: 64 * 1024, Threads: 2}

// TestArgon2 is cheap, for tests only.
var TestArgon2 = Argon2{Time: 1, Memory: 64, Threads: 1}

// Bounds on secrets from outside.
const (
	MinPassword = 10
	MaxPassword = 256
)

// Errors.
var (
	ErrPasswordPolicy = fmt.Errorf("password must be %d-%d characters", MinPassword, MaxPassword)
	ErrBadHash        = errors.New("auth: stored hash malformed")
	ErrSealed         = errors.New("auth: sealed secret does not open")
)

// HashPassword returns the argon2id PHC string of password.
func HashPassword(password string, p Argon2) (string, error) {
	if len(password) < MinPassword || len(password) > MaxPassword {
		return "", ErrPasswordPolicy
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches the PHC string, in
// constant time.
func CheckPassword(phc, password string) (bool, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v=19" {
		return false, ErrBadHash
	}
	var p Argon2
	var threads uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &threads); err != nil || threads == 0 || threads > 255 || p.Memory > 4<<20 || p.Time > 64 {
		return false, ErrBadHash
	}
	p.Threads = uint8(threads)
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) != 32 {
		return false, ErrBadHash
	}
	if len(password) > MaxPassword {
		return false, nil
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, 32)
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// Sealer seals and opens TOTP seeds with a key kept on the API's host, so
// the journal holds them only sealed.
type Sealer struct{ key []byte }

// LoadOrCreateSealer reads the key file, or creates it (0600) when missing.
func LoadOrCreateSealer(path string) (*Sealer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, chacha20poly1305.KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("auth: create key: %w", err)
		}
		if _, err := f.Write([]byte(hex.EncodeToString(key))); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		return &Sealer{key: key}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth: read key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != chacha20poly1305.KeySize {
		return nil, fmt.Errorf("auth: key file %s is malformed", path)
	}
	return &Sealer{key: key}, nil
}

// Key returns the sealer's key, for deriving other secrets from it.
func (s *Sealer) Key() []byte { return s.key }

// Seal encrypts secret with associated data ad (the owner's name), so a
// sealed seed cannot be moved to another account.
func (s *Sealer) Seal(secret, ad string) (string, error) {
	aead, err := chacha20poly1305.NewX(s.key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := aead.Seal(nonce, nonce, []byte(secret), []byte(ad))
	return base64.RawStdEncoding.EncodeToString(out), nil
}

// Open decrypts a sealed secret.
func (s *Sealer) Open(sealed, ad string) (string, error) {
	b, err := base64.RawStdEncoding.DecodeString(sealed)
	aead, err2 := chacha20poly1305.NewX(s.key)
	if err != nil || err2 != nil || len(b) < aead.NonceSize()+aead.Overhead() {
		return "", ErrSealed
	}
	pt, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], []byte(ad))
	if err != nil {
		return "", ErrSealed
	}
	return string(pt), nil
}

// TOTP step length and the steps of clock skew accepted either side.
const (
	Period = 30
	Skew   = 1
)

// NewTOTP returns a fresh TOTP seed (base32) and its otpauth URI.
func NewTOTP(issuer, account string) (secret, uri string, err error) {
	k, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Period: Period, Algorithm: otp.AlgorithmSHA1, Digits: otp.DigitsSix})
	if err != nil {
		return "", "", err
	}
	return k.Secret(), k.URL(), nil
}

// CheckTOTP checks code against secret at now and returns the time step it
// matched. The core refuses a step at or below the last one used, so a code
// is good once.
func CheckTOTP(secret, code string, now time.Time) (uint64, bool) {
	if len(code) != 6 {
		return 0, false
	}
	if _, err := strconv.Atoi(code); err != nil {
		return 0, false
	}
	step := uint64(now.Unix()) / Period
	for d := -Skew; d <= Skew; d++ {
		s := step + uint64(int64(d))
		want, err := totp.GenerateCodeCustom(secret, time.Unix(int64(s*Period), 0), totp.ValidateOpts{Period: Period, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}

// Code returns the TOTP code of secret at t: for demos and tests acting as
// a person with an authenticator.
func Code(secret string, t time.Time) string {
	c, err := totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: Period, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return ""
	}
	return c
}

// NewToken returns a fresh session token (given to the client) and its
// SHA-256 (kept).
func NewToken() (string, [32]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", [32]byte{}, err
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	return tok, HashToken(tok), nil
}

// HashToken returns the SHA-256 of a token.
func HashToken(tok string) [32]byte { return sha256.Sum256([]byte(tok)) }
