// Package keys makes and keeps kinko's signing keys: a BIP32 master from
// fresh entropy, shown once as a BIP39 mnemonic for the paper backup, and
// stored on its machine only encrypted with a passphrase (argon2id and
// XChaCha20-Poly1305). A key file never leaves its machine; what leaves is
// the account xpub (see wallet.AccountKey).
package keys

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/tyler-smith/go-bip39"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// Errors callers can test.
var (
	ErrWrongPassphrase = errors.New("keys: wrong passphrase")
	ErrCorrupt         = errors.New("keys: key file is corrupt or truncated")
	ErrMnemonic        = errors.New("keys: mnemonic is not a valid BIP39 phrase")
	ErrExists          = errors.New("keys: key file exists; refusing to overwrite it")
)

// EntropyBits is the strength of a new key: 256 bits, 24 words.
const EntropyBits = 256

// Key is a master key with its mnemonic.
type Key struct {
	Mnemonic string
	Master   *hdkeychain.ExtendedKey
}

// New makes a key from fresh entropy read from r (crypto/rand.Reader in
// service).
func New(r io.Reader, net *chaincfg.Params) (*Key, error) {
	ent := make([]byte, EntropyBits/8)
	if _, err := io.ReadFull(r, ent); err != nil {
		return nil, fmt.Errorf("keys: entropy: %w", err)
	}
	m, err := bip39.NewMnemonic(ent)
	if err != nil {
		return nil, err
	}
	return FromMnemonic(m, net)
}

// FromMnemonic rebuilds a key from its mnemonic (no BIP39 passphrase).
func FromMnemonic(mnemonic string, net *chaincfg.Params) (*Key, error) {
	seed, err := bip39.NewSeedWithErrorChecking(mnemonic, "")
	if err != nil {
		return nil, ErrMnemonic
	}
	master, err := hdkeychain.NewMaster(seed, net)
	if err != nil {
		return nil, err
	}
	return &Key{Mnemonic: mnemonic, Master: master}, nil
}

// KDF are the argon2id parameters of a key file.
type KDF struct {
	Time    uint32 `json:"time"`
	Memory  uint32 `json:"memory_kib"`
	Threads uint8  `json:"threads"`
}

// DefaultKDF is for service: 256 MiB, 4 passes (an offline machine has the
// time).
var DefaultKDF = KDF{Time: 4, Memory: 256 * 1024, Threads: 2}

// TestKDF is cheap, for tests only.
var TestKDF = KDF{Time: 1, Memory: 64, Threads: 1}

// file is the key file's format. The mnemonic is what is sealed; the
// header is the AEAD's associated data, so it cannot be changed either.
type file struct {
	Version int    `json:"version"`
	Net     string `json:"net"`
	KDF     KDF    `json:"kdf"`
	Salt    []byte `json:"salt"`
	Nonce   []byte `json:"nonce"`
	Sealed  []byte `json:"sealed"`
}

const fileVersion = 1

// Bounds on a key file read from disk.
const (
	maxFileSize  = 16 << 10
	maxKDFMemory = 1 << 20 // KiB: 1 GiB
	maxKDFTime   = 16
)

func (f *file) ad() []byte {
	return []byte(fmt.Sprintf("kinko key file v%d net=%s kdf=%d/%d/%d", f.Version, f.Net, f.KDF.Time, f.KDF.Memory, f.KDF.Threads))
}

// Save writes k encrypted with passphrase to path (mode 0600). It never
// overwrites an existing file.
func (k *Key) Save(path, passphrase string, kdf KDF, net *chaincfg.Params) error {
	f := file{Version: fileVersion, Net: net.Name, KDF: kdf, Salt: make([]byte, 16), Nonce: make([]byte, chacha20poly1305.NonceSizeX)}
	if _, err := rand.Read(f.Salt); err != nil {
		return err
	}
	if _, err := rand.Read(f.Nonce); err != nil {
		return err
	}
	aead, err := chacha20poly1305.NewX(argon2.IDKey([]byte(passphrase), f.Salt, kdf.Time, kdf.Memory, kdf.Threads, chacha20poly1305.KeySize))
	if err != nil {
		return err
	}
	f.Sealed = aead.Seal(nil, f.Nonce, []byte(k.Mnemonic), f.ad())
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if _, err := out.Write(b); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Load reads and decrypts a key file.
func Load(path, passphrase string, net *chaincfg.Params) (*Key, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if st.Size() > maxFileSize {
		return nil, ErrCorrupt
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return Decode(b, passphrase, net)
}

// Decode decrypts a key file's bytes.
func Decode(b []byte, passphrase string, net *chaincfg.Params) (*Key, error) {
	var f file
	if len(b) > maxFileSize || json.Unmarshal(b, &f) != nil || f.Version != fileVersion || len(f.Salt) < 16 ||
		len(f.Nonce) != chacha20poly1305.NonceSizeX || len(f.Sealed) < chacha20poly1305.Overhead ||
		f.KDF.Time == 0 || f.KDF.Time > maxKDFTime || f.KDF.Memory == 0 || f.KDF.Memory > maxKDFMemory || f.KDF.Threads == 0 {
		return nil, ErrCorrupt
	}
	if f.Net != net.Name {
		return nil, fmt.Errorf("keys: key file is for %s, not %s", f.Net, net.Name)
	}
	aead, err := chacha20poly1305.NewX(argon2.IDKey([]byte(passphrase), f.Salt, f.KDF.Time, f.KDF.Memory, f.KDF.Threads, chacha20poly1305.KeySize))
	if err != nil {
		return nil, err
	}
	m, err := aead.Open(nil, f.Nonce, f.Sealed, f.ad())
	if err != nil {
		// A wrong passphrase and a tampered file look the same to an
		// AEAD; the header's checks above catch the corrupt files.
		return nil, ErrWrongPassphrase
	}
	return FromMnemonic(string(m), net)
}

// EthereumPath is the BIP-44 path of a key file's Ethereum owner key:
// purpose 44', coin type 60' (Ether, also on test chains), account 0',
// external branch 0, address index 0, as MetaMask and Ledger derive an
// account's first address. The same 24 words then restore the owner in any
// BIP-44 wallet.
const EthereumPath = "m/44'/60'/0'/0/0"

// EthereumKey derives the Ethereum owner key of the master at EthereumPath:
// a secp256k1 private key whose address is a Safe owner.
func (k *Key) EthereumKey() (*ecdsa.PrivateKey, error) {
	h := uint32(hdkeychain.HardenedKeyStart)
	x := k.Master
	for _, i := range []uint32{h + 44, h + 60, h + 0, 0, 0} {
		var err error
		if x, err = x.Derive(i); err != nil {
			return nil, fmt.Errorf("keys: ethereum key: %w", err)
		}
	}
	priv, err := x.ECPrivKey()
	if err != nil {
		return nil, fmt.Errorf("keys: ethereum key: %w", err)
	}
	return priv.ToECDSA(), nil
}
