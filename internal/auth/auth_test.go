package auth

import (
	"path/filepath"
	"testing"
	"time"
)

func TestPassword(t *testing.T) {
	h, err := HashPassword("correct horse battery", TestArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := CheckPassword(h, "correct horse battery"); !ok || err != nil {
		t.Fatalf("CheckPassword(right) = %v, %v", ok, err)
	}
	if ok, _ := CheckPassword(h, "correct horse batterx"); ok {
		t.Fatal("CheckPassword(wrong) = true")
	}
	if _, err := HashPassword("short", TestArgon2); err == nil {
		t.Fatal("short password accepted")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=99999999,t=1,p=1$AAAA$AAAA"} {
		if _, err := CheckPassword(bad, "x"); err == nil {
			t.Errorf("CheckPassword(%q) accepted a malformed hash", bad)
		}
	}
}

func TestSealAndTOTP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k", "totp.key")
	s, err := LoadOrCreateSealer(path)
	if err != nil {
		t.Fatal(err)
	}
	secret, uri, err := NewTOTP("kinko", "alice@example.com")
	if err != nil || uri == "" {
		t.Fatal(err)
	}
	sealed, _ := s.Seal(secret, "customer:1")
	s2, err := LoadOrCreateSealer(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s2.Open(sealed, "customer:1"); err != nil || got != secret {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := s2.Open(sealed, "customer:2"); err == nil {
		t.Fatal("a seed sealed for one account opened for another")
	}
	now := time.Unix(1_800_000_000, 0)
	step, ok := CheckTOTP(secret, Code(secret, now), now)
	if !ok || step != uint64(now.Unix())/Period {
		t.Fatalf("CheckTOTP(now) = %d, %v", step, ok)
	}
	if _, ok := CheckTOTP(secret, Code(secret, now.Add(-5*time.Minute)), now); ok {
		t.Fatal("a five-minute-old code accepted")
	}
	if _, ok := CheckTOTP(secret, "12345x", now); ok {
		t.Fatal("malformed code accepted")
	}
}
