package people

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"testing"

	"kinko/internal/passkey"
)

var rp = passkey.RP{ID: "localhost", Origins: []string{"http://localhost"}}

func founders(names ...string) []Founder {
	var fs []Founder
	for _, n := range names {
		fs = append(fs, Founder{Name: n, Roles: []Role{RoleAdmin}, Code: sha256.Sum256([]byte("code-" + n))})
	}
	return fs
}

func TestBootstrapChecks(t *testing.T) {
	const t0, exp = int64(1e18), int64(1e18 + 3600e9)
	for name, c := range map[string]struct {
		rp      passkey.RP
		fs      []Founder
		expires int64
	}{
		"one founder":    {rp, founders("aiko"), exp},
		"no origin":      {passkey.RP{ID: "localhost"}, founders("aiko", "ren"), exp},
		"expired codes":  {rp, founders("aiko", "ren"), t0},
		"codes too long": {rp, founders("aiko", "ren"), t0 + MaxEnrolTTL + 1},
		"same name":      {rp, founders("aiko", "aiko"), exp},
		"bad name":       {rp, founders("aiko", "Ren!"), exp},
		"one admin": {rp, func() []Founder {
			f := founders("aiko", "ren")
			f[1].Roles = []Role{RoleApprover}
			return f
		}(), exp},
	} {
		if err := New().Bootstrap(c.rp, c.fs, c.expires, t0); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Bootstrap = %v; want ErrInvalid", name, err)
		}
	}
	s := New()
	if err := s.Bootstrap(rp, founders("aiko", "ren"), exp, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Bootstrap(rp, founders("yui", "mio"), exp, t0); !errors.Is(err, ErrBootstrapped) {
		t.Fatalf("second bootstrap = %v", err)
	}
}

// TestSignaturesAndCodec: a signature counts once, moves the counter, and
// survives the encoding; a key belongs to one operator.
func TestSignaturesAndCodec(t *testing.T) {
	const t0 = int64(1e18)
	s := New()
	if err := s.Bootstrap(rp, founders("aiko", "ren"), t0+3600e9, t0); err != nil {
		t.Fatal(err)
	}
	k := passkey.SoftKeyFromSeed([32]byte{7})
	k.Counter = 5
	key := Key{ID: k.ID(), PublicKey: k.PublicKey(), Label: "key"}
	if active, err := s.EnrolWithCode("aiko", "code-aiko", key, t0, 2); err != nil || !active {
		t.Fatalf("founder enrolment = %v, %v", active, err)
	}
	if _, err := s.EnrolWithCode("ren", "code-ren", key, t0, 3); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("the same key for another operator = %v", err)
	}
	d := passkey.Digest("k", "id", []byte("x"))
	a, _ := k.Assert(rp.ID, rp.Origins[0], d[:])
	sig, err := s.CheckSignature("aiko", d, &a)
	if err != nil || sig.Counter != 6 {
		t.Fatalf("CheckSignature = %+v, %v", sig, err)
	}
	if _, err := s.CheckSignature("ren", d, &a); !errors.Is(err, ErrNoKey) {
		t.Fatalf("as ren = %v", err)
	}
	s.Record(sig)
	if _, err := s.CheckSignature("aiko", d, &a); !errors.Is(err, ErrReplayed) {
		t.Fatalf("again = %v", err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(s2)
	if string(b) != string(b2) {
		t.Fatal("encoding differs after a round trip")
	}
	if _, err := s2.CheckSignature("aiko", d, &a); !errors.Is(err, ErrReplayed) {
		t.Fatalf("after decode = %v", err)
	}
	if o, _ := s2.Operator("aiko"); o.Keys[0].Counter != 6 || s2.RP().ID != "localhost" {
		t.Fatalf("decoded %+v %+v", o.Keys, s2.RP())
	}
}
