package passkey

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

type vector struct {
	Name              string `json:"name"`
	Credential        string `json:"credential"`
	AuthenticatorData string `json:"authenticator_data"`
	ClientDataJSON    string `json:"client_data_json"`
	Signature         string `json:"signature"`
	Challenge         string `json:"challenge"`
	PublicKey         string `json:"public_key"`
	Flags             int    `json:"flags"`
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var specRP = RP{ID: "example.org", Origins: []string{"https://example.org"}}

// TestW3CVectors verifies the assertions of the WebAuthn Level 3
// specification's test vectors: made by real authenticator code, not by
// kinko's.
func TestW3CVectors(t *testing.T) {
	b, err := os.ReadFile("testdata/w3c-assertions.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			a := Assertion{Credential: unhex(t, v.Credential), AuthenticatorData: unhex(t, v.AuthenticatorData),
				ClientDataJSON: unhex(t, v.ClientDataJSON), Signature: unhex(t, v.Signature)}
			key := unhex(t, v.PublicKey)
			ch := unhex(t, v.Challenge)
			if err := VerifySignature(key, a); err != nil {
				t.Fatalf("VerifySignature = %v; want nil", err)
			}
			_, err := Verify(specRP, key, 0, ch, a)
			if v.Flags&FlagUserVerified != 0 {
				if err != nil {
					t.Fatalf("Verify = %v; want nil", err)
				}
			} else if !errors.Is(err, ErrFlags) {
				t.Fatalf("Verify without user verification = %v; want ErrFlags", err)
			}
			// The same assertion over other bytes, at another relying
			// party, or with a flipped signature bit, is refused.
			other := sha256.Sum256(ch)
			if _, err := Verify(specRP, key, 0, other[:], a); !errors.Is(err, ErrChallenge) {
				t.Errorf("other challenge: %v; want ErrChallenge", err)
			}
			if _, err := Verify(RP{ID: "example.com", Origins: specRP.Origins}, key, 0, ch, a); v.Flags&FlagUserVerified != 0 && !errors.Is(err, ErrRPID) {
				t.Errorf("other rp id: %v; want ErrRPID", err)
			}
			bad := a
			bad.Signature = bytes.Clone(a.Signature)
			bad.Signature[len(bad.Signature)-1] ^= 1
			if err := VerifySignature(key, bad); !errors.Is(err, ErrSignature) {
				t.Errorf("flipped signature: %v; want ErrSignature", err)
			}
		})
	}
}

// goWebAuthnVerify checks an assertion with go-webauthn's own verifier.
func goWebAuthnVerify(t *testing.T, rp RP, key []byte, challenge []byte, a Assertion) error {
	t.Helper()
	id := base64.RawURLEncoding.EncodeToString(a.Credential)
	body, _ := json.Marshal(map[string]any{"id": id, "rawId": id, "type": "public-key", "response": map[string]string{
		"authenticatorData": base64.RawURLEncoding.EncodeToString(a.AuthenticatorData),
		"clientDataJSON":    base64.RawURLEncoding.EncodeToString(a.ClientDataJSON),
		"signature":         base64.RawURLEncoding.EncodeToString(a.Signature)}})
	par, err := protocol.ParseCredentialRequestResponseBody(bytes.NewReader(body))
	if err != nil {
		return err
	}
	return par.Verify(base64.RawURLEncoding.EncodeToString(challenge), rp.ID, "", rp.Origins, nil, nil, protocol.TopOriginDefaultVerificationMode,
		false, true, true, key, protocol.SignaturePolicy{})
}

// TestSoftKeyAgreesWithGoWebAuthn: a software credential's assertions pass
// go-webauthn's verifier and kinko's alike, and its COSE keys parse the
// same in both.
func TestSoftKeyAgreesWithGoWebAuthn(t *testing.T) {
	rp := RP{ID: "localhost", Origins: []string{"http://localhost:8080"}}
	for _, alg := range []int{AlgEdDSA, AlgES256} {
		k, err := NewSoftKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		k.Counter = 7
		d := Digest("open_request", "req-1", []byte(`{"x":1}`))
		a, err := k.Assert(rp.ID, rp.Origins[0], d[:])
		if err != nil {
			t.Fatal(err)
		}
		if err := goWebAuthnVerify(t, rp, k.PublicKey(), d[:], a); err != nil {
			t.Fatalf("alg %d: go-webauthn refuses kinko's assertion: %v", alg, err)
		}
		n, err := Verify(rp, k.PublicKey(), 7, d[:], a)
		if err != nil || n != 8 {
			t.Fatalf("alg %d: Verify = %d, %v; want 8, nil", alg, n, err)
		}
		if _, err := webauthncose.ParsePublicKey(k.PublicKey()); err != nil {
			t.Fatalf("alg %d: go-webauthn does not parse the COSE key: %v", alg, err)
		}
		// Round trip through PEM, as a co-signer pins it.
		p, err := PublicKeyPEM(k.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParsePublicKeyPEM(p)
		if err != nil || !bytes.Equal(back, k.PublicKey()) {
			t.Fatalf("alg %d: PEM round trip = %x, %v", alg, back, err)
		}
		pemKey, _ := k.MarshalPEM()
		k2, err := ParseSoftKey(pemKey)
		if err != nil || !bytes.Equal(k2.PublicKey(), k.PublicKey()) {
			t.Fatalf("alg %d: key file round trip: %v", alg, err)
		}
	}
}

func TestVerifyRefusals(t *testing.T) {
	rp := RP{ID: "kinko.example", Origins: []string{"https://kinko.example"}}
	k := SoftKeyFromSeed([32]byte{1})
	k.Counter = 10
	d := Digest("decide_request", "req-9", []byte(`{"approve":true}`))
	good, _ := k.Assert(rp.ID, rp.Origins[0], d[:])
	pub := k.PublicKey()
	if n, err := Verify(rp, pub, 10, d[:], good); err != nil || n != 11 {
		t.Fatalf("Verify(good) = %d, %v", n, err)
	}
	resign := func(a Assertion) Assertion {
		// What an attacker holding the key could sign: a correct
		// signature over the altered parts.
		a.Signature = nil
		data := signedData(a)
		a.Signature = signWith(k, data)
		return a
	}
	withCD := func(cd ClientData) Assertion {
		a := good
		a.ClientDataJSON, _ = json.Marshal(cd)
		return resign(a)
	}
	withAD := func(flags byte, counter uint32, rpID string) Assertion {
		a := good
		h := sha256.Sum256([]byte(rpID))
		a.AuthenticatorData = binary.BigEndian.AppendUint32(append(h[:], flags), counter)
		return resign(a)
	}
	b64 := base64.RawURLEncoding.EncodeToString(d[:])
	other := Digest("decide_request", "req-10", []byte(`{"approve":true}`))
	cases := []struct {
		name    string
		a       Assertion
		counter uint32
		want    error
	}{
		{"over other bytes", good, 0, nil},
		{"type create", withCD(ClientData{Type: "webauthn.create", Challenge: b64, Origin: rp.Origins[0]}), 0, ErrType},
		{"other origin", withCD(ClientData{Type: "webauthn.get", Challenge: b64, Origin: "https://evil.example"}), 0, ErrOrigin},
		{"cross origin", withCD(ClientData{Type: "webauthn.get", Challenge: b64, Origin: rp.Origins[0], CrossOrigin: true}), 0, ErrOrigin},
		{"other rp", withAD(FlagUserPresent|FlagUserVerified, 50, "evil.example"), 0, ErrRPID},
		{"not verified", withAD(FlagUserPresent, 50, rp.ID), 0, ErrFlags},
		{"not present", withAD(FlagUserVerified, 50, rp.ID), 0, ErrFlags},
		{"counter went back", withAD(FlagUserPresent|FlagUserVerified, 9, rp.ID), 10, ErrCounter},
		{"counter same", withAD(FlagUserPresent|FlagUserVerified, 10, rp.ID), 10, ErrCounter},
		{"counter dropped to zero", withAD(FlagUserPresent|FlagUserVerified, 0, rp.ID), 10, ErrCounter},
		{"forged signature", func() Assertion { a := good; a.Signature = bytes.Repeat([]byte{1}, 64); return a }(), 0, ErrSignature},
		{"no signature", func() Assertion { a := good; a.Signature = nil; return a }(), 0, ErrMalformed},
	}
	for _, c := range cases {
		ch := d[:]
		want := c.want
		if c.name == "over other bytes" {
			ch, want = other[:], ErrChallenge
		}
		if _, err := Verify(rp, pub, c.counter, ch, c.a); !errors.Is(err, want) {
			t.Errorf("%s: Verify = %v; want %v", c.name, err, want)
		}
	}
	// Another key's assertion does not verify with this key.
	k2 := SoftKeyFromSeed([32]byte{2})
	a2, _ := k2.Assert(rp.ID, rp.Origins[0], d[:])
	if _, err := Verify(rp, pub, 0, d[:], a2); !errors.Is(err, ErrSignature) {
		t.Errorf("other key: %v; want ErrSignature", err)
	}
	// Counter zero throughout is allowed: the challenge guards replays.
	k3 := SoftKeyFromSeed([32]byte{3})
	a3, _ := k3.Assert(rp.ID, rp.Origins[0], d[:])
	if n, err := Verify(rp, k3.PublicKey(), 0, d[:], a3); err != nil || n != 0 {
		t.Errorf("non-counting key: %d, %v", n, err)
	}
}

func signWith(k *SoftKey, data []byte) []byte {
	return ed25519.Sign(k.signer.(ed25519.PrivateKey), data)
}

func TestDigestUnambiguous(t *testing.T) {
	a := Digest("ab", "c", []byte("d"))
	b := Digest("a", "bc", []byte("d"))
	c := Digest("a", "b", []byte("cd"))
	if a == b || b == c || a == c {
		t.Fatal("digests of different parts collide")
	}
	if Digest("a", "b", nil) != Digest("a", "b", []byte{}) {
		t.Fatal("empty payloads differ")
	}
}

func TestParseKeyRefusals(t *testing.T) {
	ed := EncodeEd25519(make([]byte, 32))
	for name, b := range map[string][]byte{
		"empty":          nil,
		"not a map":      {0x01},
		"trailing":       append(bytes.Clone(ed), 0),
		"truncated":      ed[:len(ed)-1],
		"duplicate":      {0xa2, 0x01, 0x01, 0x01, 0x02},
		"indefinite map": {0xbf, 0x01, 0x01, 0xff},
		"rs256":          {0xa3, 0x01, 0x03, 0x03, 0x39, 0x01, 0x00, 0x20, 0x41, 0x00},
		"nested":         {0xa1, 0x01, 0xa0},
	} {
		if _, err := ParseKey(b); !errors.Is(err, ErrKey) {
			t.Errorf("%s: ParseKey = %v; want ErrKey", name, err)
		}
	}
	// A P-256 point off the curve.
	bad := []byte{0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20}
	bad = append(bad, bytes.Repeat([]byte{1}, 32)...)
	bad = append(bad, 0x22, 0x58, 0x20)
	bad = append(bad, bytes.Repeat([]byte{2}, 32)...)
	if _, err := ParseKey(bad); !errors.Is(err, ErrKey) {
		t.Errorf("off-curve point: %v; want ErrKey", err)
	}
}

func TestSoftKeyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "op.key")
	k, _ := NewSoftKey(AlgEdDSA)
	if err := SaveSoftKey(p, k); err != nil {
		t.Fatal(err)
	}
	if err := SaveSoftKey(p, k); err == nil {
		t.Fatal("an existing key file was overwritten")
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v; want 0600", fi.Mode().Perm())
	}
	k2, err := LoadSoftKey(p)
	if err != nil || !bytes.Equal(k2.ID(), k.ID()) {
		t.Fatalf("LoadSoftKey = %v", err)
	}
	os.WriteFile(p+"x", []byte("not a key"), 0o600)
	if _, err := LoadSoftKey(p + "x"); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("garbage key file: %v", err)
	}
}

// FuzzDecode feeds the decoders arbitrary bytes: they never panic, and a
// COSE key they accept re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	k := SoftKeyFromSeed([32]byte{9})
	p256, _ := NewSoftKey(AlgES256)
	d := Digest("k", "i", nil)
	a, _ := k.Assert("localhost", "http://localhost", d[:])
	f.Add(k.PublicKey(), a.AuthenticatorData, a.ClientDataJSON, a.Signature)
	f.Add(p256.PublicKey(), []byte{}, []byte("{}"), []byte{1})
	f.Fuzz(func(t *testing.T, key, ad, cd, sig []byte) {
		if kk, err := ParseKey(key); err == nil {
			var re []byte
			switch kk.Alg {
			case AlgEdDSA:
				re = EncodeEd25519(kk.ed)
			case AlgES256:
				re, _ = EncodeP256(kk.ec)
			}
			if k2, err := ParseKey(re); err != nil || k2.Alg != kk.Alg {
				t.Fatalf("re-encoded key does not parse: %v", err)
			}
		}
		ParseAuthData(ad)
		ParseClientData(cd)
		Verify(RP{ID: "localhost", Origins: []string{"http://localhost"}}, key, 0, d[:], Assertion{Credential: []byte{1}, AuthenticatorData: ad, ClientDataJSON: cd, Signature: sig})
	})
}

func BenchmarkVerifyES256(b *testing.B) { benchVerify(b, AlgES256) }
func BenchmarkVerifyEdDSA(b *testing.B) { benchVerify(b, AlgEdDSA) }

func benchVerify(b *testing.B, alg int) {
	rp := RP{ID: "localhost", Origins: []string{"http://localhost:8080"}}
	k, _ := NewSoftKey(alg)
	d := Digest("decide_request", "req-1", []byte(`{"id":"req-1","decider":"ren","reason":"ok","approve":true}`))
	a, _ := k.Assert(rp.ID, rp.Origins[0], d[:])
	pub := k.PublicKey()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(rp, pub, 0, d[:], a); err != nil {
			b.Fatal(err)
		}
	}
}
