package keys

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/tyler-smith/go-bip39"
)

var regtest = &chaincfg.RegressionNetParams

// TestBIP39Vector is the first vector of the BIP39 reference list (Trezor's
// python-mnemonic vectors.json, MIT): entropy of zeros, passphrase "TREZOR".
func TestBIP39Vector(t *testing.T) {
	ent := make([]byte, 16)
	m, err := bip39.NewMnemonic(ent)
	if err != nil || m != "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about" {
		t.Fatalf("mnemonic = %q, %v", m, err)
	}
	seed := bip39.NewSeed(m, "TREZOR")
	want := "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04"
	if hex.EncodeToString(seed) != want {
		t.Fatalf("seed = %x", seed)
	}
	mk, _ := hdkeychain.NewMaster(seed, &chaincfg.MainNetParams)
	if mk.String() != "xprv9s21ZrQH143K3h3fDYiay8mocZ3afhfULfb5GX8kCBdno77K4HiA15Tg23wpbeF1pLfs1c5SPmYHrEpTuuRhxMwvKDwqdKiGJS9XFKzUsAF" {
		t.Fatalf("master = %s", mk)
	}
}

func TestNewSaveLoad(t *testing.T) {
	k, err := New(bytes.NewReader(bytes.Repeat([]byte{7}, 32)), regtest)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(bytes.Fields([]byte(k.Mnemonic))); n != 24 {
		t.Fatalf("mnemonic of %d words", n)
	}
	path := filepath.Join(t.TempDir(), "cold-1.key")
	if err := k.Save(path, "long passphrase here", TestKDF, regtest); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	if err := k.Save(path, "x", TestKDF, regtest); !errors.Is(err, ErrExists) {
		t.Fatalf("second Save = %v; want ErrExists", err)
	}
	k2, err := Load(path, "long passphrase here", regtest)
	if err != nil || k2.Master.String() != k.Master.String() {
		t.Fatalf("Load = %v", err)
	}
	if _, err := Load(path, "wrong passphrase", regtest); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase = %v", err)
	}
	if _, err := Load(path, "long passphrase here", &chaincfg.MainNetParams); err == nil {
		t.Fatal("a regtest key loaded for mainnet")
	}
	b, _ := os.ReadFile(path)
	for _, bad := range [][]byte{b[:len(b)/2], []byte("{}"), append([]byte(nil), bytes.ReplaceAll(b, []byte(`"time": 1`), []byte(`"time": 999`))...)} {
		if _, err := Decode(bad, "long passphrase here", regtest); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Decode(corrupt) = %v; want ErrCorrupt", err)
		}
	}
	if bytes.Contains(b, []byte(k.Mnemonic[:20])) {
		t.Fatal("mnemonic in clear in the key file")
	}
	if _, err := FromMnemonic("abandon abandon", regtest); !errors.Is(err, ErrMnemonic) {
		t.Fatalf("bad mnemonic = %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	k, _ := New(bytes.NewReader(bytes.Repeat([]byte{7}, 32)), regtest)
	path := filepath.Join(f.TempDir(), "k")
	k.Save(path, "p", TestKDF, regtest)
	b, _ := os.ReadFile(path)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		Decode(b, "p", regtest) // must not panic or hang
	})
}

// TestEthereumKey checks the owner key's derivation against the published
// BIP-44 vector of the all-"abandon" mnemonic (MetaMask's and Ledger's
// first Ethereum address of that phrase), and that the network of the key
// file does not change it.
func TestEthereumKey(t *testing.T) {
	const m = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
	for _, net := range []*chaincfg.Params{&chaincfg.MainNetParams, &chaincfg.RegressionNetParams} {
		k, err := FromMnemonic(m, net)
		if err != nil {
			t.Fatal(err)
		}
		priv, err := k.EthereumKey()
		if err != nil {
			t.Fatal(err)
		}
		if got := crypto.PubkeyToAddress(priv.PublicKey).Hex(); got != "0x9858EfFD232B4033E47d90003D41EC34EcaEda94" {
			t.Fatalf("%s: %s at %s; the BIP-44 vector is 0x9858EfFD232B4033E47d90003D41EC34EcaEda94", net.Name, got, EthereumPath)
		}
	}
}
