// Package safe holds kinko's Ether in Safe multisig wallets (the audited
// Safe contracts, v1.4.1): it loads the contracts' compiled artifacts as
// npm publishes them, deploys the singleton, the proxy factory,
// MultiSendCallOnly and the fallback handler, computes a Safe's setup
// initializer and its counterfactual CREATE2 address without asking the
// chain, builds Safe transactions and computes their EIP-712 hash itself,
// encodes owners' signatures as the Safe checks them and executes. Its
// decoder reads an execTransaction's calldata and a MultiSend batch back
// into the calls they make, strictly (one encoding for one meaning), so
// that what a transaction does can be checked before anyone signs it.
//
// The code is kinko's own; the contracts are not vendored:
// scripts/install-safe-contracts.sh fetches them from npm and checks the
// tarball's pinned integrity, and Load checks every creation code against
// its keccak pinned here.
package safe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
)

// Version is the Safe contracts' version kinko uses.
const Version = "1.4.1"

// installScript is what a machine without the artifacts must run.
const installScript = "scripts/install-test-deps.sh (or scripts/install-safe-contracts.sh)"

// ErrNoArtifacts reports a machine where the Safe contracts' artifacts
// were not installed.
var ErrNoArtifacts = errors.New("safe: the Safe contracts " + Version + " are not installed: run " + installScript)

// ErrArtifactChanged reports an artifact whose creation code is not the
// one published in @safe-global/safe-contracts@1.4.1.
var ErrArtifactChanged = errors.New("safe: artifact differs from the published Safe contracts " + Version)

// Contract is one compiled contract: its ABI, the code that creates it and
// the code it leaves on chain.
type Contract struct {
	Name             string
	ABI              abi.ABI
	Bytecode         []byte // creation code
	DeployedBytecode []byte // runtime code, as eth_getCode returns it
}

// Artifacts are the contracts kinko deploys and reads.
type Artifacts struct {
	Safe              *Contract // the singleton without events per execution
	SafeL2            *Contract // the singleton that logs every execution
	ProxyFactory      *Contract
	Proxy             *Contract // SafeProxy: its creation code makes the CREATE2 address
	MultiSendCallOnly *Contract
	FallbackHandler   *Contract // CompatibilityFallbackHandler
}

// artifact names a file under build/artifacts/contracts and the keccak of
// its creation code in @safe-global/safe-contracts@1.4.1.
type artifact struct {
	path     string
	codeHash string
}

var (
	artSafe         = artifact{"Safe.sol/Safe.json", "0xbdd9e3833a8bdf0f6b4312e07bc851afc298d53690a00a28cade5de8b6ac0f36"}
	artSafeL2       = artifact{"SafeL2.sol/SafeL2.json", "0x3555bd3ee95b1c6605c602740d71efaf200068e0395ccd701ac82ab8e42307bd"}
	artFactory      = artifact{"proxies/SafeProxyFactory.sol/SafeProxyFactory.json", "0x596f87ec561ad5ea1c13253af5c91247a713253499b74a5d594537cae42eaaa9"}
	artProxy        = artifact{"proxies/SafeProxy.sol/SafeProxy.json", "0x1856e0ee08399d74e0ea0b03adca210aeade6f748969ac023cdcb4dd62dcaf5f"}
	artMultiSend    = artifact{"libraries/MultiSendCallOnly.sol/MultiSendCallOnly.json", "0xa7934433f19155c708af2674b14c6c8b591fedbed7b01ce8cf64014f307468a0"}
	artFallbackHand = artifact{"handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler.json", "0x5a63128db658d8601220c014848acd6c27b855a0427f0181eb3ba8c25e2d3e95"}
)

// ArtifactsDir returns the directory of the installed artifacts
// (package/build/artifacts/contracts of the npm tarball):
// $KINKO_SAFE_CONTRACTS if set, else kinko/safe-contracts-1.4.1 in the
// user's cache directory, where scripts/install-safe-contracts.sh puts
// them.
func ArtifactsDir() (string, error) {
	root := os.Getenv("KINKO_SAFE_CONTRACTS")
	if root == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("%w (no cache directory: %v)", ErrNoArtifacts, err)
		}
		root = filepath.Join(cache, "kinko", "safe-contracts-"+Version)
	}
	dir := filepath.Join(root, "package", "build", "artifacts", "contracts")
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("%w (looked in %s)", ErrNoArtifacts, root)
	}
	return dir, nil
}

// LoadInstalled loads the artifacts from ArtifactsDir.
func LoadInstalled() (*Artifacts, error) {
	dir, err := ArtifactsDir()
	if err != nil {
		return nil, err
	}
	return Load(dir)
}

// Load reads the artifacts from dir (build/artifacts/contracts of the
// npm package) and checks each creation code against its pinned keccak.
func Load(dir string) (*Artifacts, error) {
	var a Artifacts
	for _, x := range []struct {
		art artifact
		dst **Contract
	}{
		{artSafe, &a.Safe}, {artSafeL2, &a.SafeL2}, {artFactory, &a.ProxyFactory}, {artProxy, &a.Proxy},
		{artMultiSend, &a.MultiSendCallOnly}, {artFallbackHand, &a.FallbackHandler},
	} {
		c, err := loadContract(dir, x.art)
		if err != nil {
			return nil, err
		}
		*x.dst = c
	}
	if !bytes.Equal(a.Proxy.Bytecode, proxyCreationCode) {
		return nil, fmt.Errorf("%w: %s: not the SafeProxy creation code pinned in this package", ErrArtifactChanged, artProxy.path)
	}
	return &a, nil
}

// maxArtifactBytes bounds one artifact file (the largest, SafeL2.json, is
// about 130 kB).
const maxArtifactBytes = 4 << 20

func loadContract(dir string, art artifact) (*Contract, error) {
	p := filepath.Join(dir, filepath.FromSlash(art.path))
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w (%s is missing)", ErrNoArtifacts, p)
		}
		return nil, fmt.Errorf("safe: %w", err)
	}
	if st.Size() > maxArtifactBytes {
		return nil, fmt.Errorf("safe: %s: %d bytes, more than %d", p, st.Size(), maxArtifactBytes)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("safe: %w", err)
	}
	var f struct {
		ContractName     string          `json:"contractName"`
		ABI              json.RawMessage `json:"abi"`
		Bytecode         string          `json:"bytecode"`
		DeployedBytecode string          `json:"deployedBytecode"`
		LinkReferences   map[string]any  `json:"linkReferences"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("safe: %s: %w", p, err)
	}
	if len(f.LinkReferences) != 0 {
		return nil, fmt.Errorf("safe: %s: needs libraries linked", p)
	}
	c := &Contract{Name: f.ContractName}
	if c.ABI, err = abi.JSON(strings.NewReader(string(f.ABI))); err != nil {
		return nil, fmt.Errorf("safe: %s: abi: %w", p, err)
	}
	if c.Bytecode, err = hexutil.Decode(f.Bytecode); err != nil {
		return nil, fmt.Errorf("safe: %s: bytecode: %w", p, err)
	}
	if c.DeployedBytecode, err = hexutil.Decode(f.DeployedBytecode); err != nil {
		return nil, fmt.Errorf("safe: %s: deployed bytecode: %w", p, err)
	}
	if got := crypto.Keccak256Hash(c.Bytecode); got != common.HexToHash(art.codeHash) {
		return nil, fmt.Errorf("%w: %s: creation code keccak %s, want %s", ErrArtifactChanged, art.path, got, art.codeHash)
	}
	return c, nil
}
