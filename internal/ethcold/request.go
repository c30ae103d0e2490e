package ethcold

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/chain/eth/safe"
)

// File kinds: each file of the ceremony names what it is, so that one is
// never read as another.
const (
	KindRequest   = "kinko safe-tx request v1"
	KindSignature = "kinko safe-tx signature v1"
	KindSigned    = "kinko safe-tx signed v1"
)

// Purposes of a Safe ceremony: both move Ether between kinko's own
// wallets only.
const (
	Refill = "refill" // cold Safe to the hot Safe
	Sweep  = "sweep"  // out of a cold Safe to other wallets of ours
)

// MaxFileBytes bounds every file of the ceremony read from disk: a SafeTx's
// data is at most safe's 1 MiB per call, twice that in hex.
const MaxFileBytes = 4 << 20

// Errors of the ceremony's checks.
var (
	// ErrHashMismatch: the hash a file carries is not the EIP-712 hash
	// computed here from its typed data.
	ErrHashMismatch = errors.New("ethcold: the file's hash is not the EIP-712 hash of its SafeTx")
	// ErrNotRequest: a file that is not a Safe ceremony request.
	ErrNotRequest = errors.New("ethcold: not a Safe ceremony request")
)

// Request is what the online side hands the offline signers: the SafeTx
// in eth_signTypedData_v4 form and the hash it computed, which the signer
// only compares with its own.
type Request struct {
	Kind       string    `json:"kind"`
	ID         string    `json:"id"`
	Purpose    string    `json:"purpose"`
	TypedData  TypedData `json:"typed_data"`
	SafeTxHash string    `json:"safe_tx_hash"`
	// Deposit is set on the sweep of a deposit Safe: the Safe of the
	// typed data's domain is then the counterfactual Safe of this index
	// of the wallet Descriptor names. The offline machine believes
	// neither: it derives the address from its own registered Safe's
	// descriptor. `kinko cold submit` deploys the proxy from Descriptor
	// and Index when the address has no code, after checking they give
	// that address.
	Deposit *DepositRef `json:"deposit,omitempty"`
}

// DepositRef names a deposit Safe: its wallet's custody descriptor and
// its index (the proxy's salt nonce).
type DepositRef struct {
	Descriptor string `json:"descriptor"`
	Index      uint32 `json:"index"`
}

// Tx is a request read and recomputed: the chain, the Safe, the SafeTx and
// its EIP-712 hash as computed here.
type Tx struct {
	ChainID *big.Int
	Safe    common.Address
	SafeTx  *safe.SafeTx
	Hash    common.Hash
}

// NewRequest makes the request of tx for the Safe at addr on chain chainID.
func NewRequest(id, purpose string, chainID *big.Int, addr common.Address, tx *safe.SafeTx) (*Request, error) {
	if err := checkPurpose(purpose); err != nil {
		return nil, err
	}
	if id == "" || !plain(id) {
		return nil, fmt.Errorf("ethcold: ceremony id %q: printable ASCII without spaces", id)
	}
	h, err := tx.Hash(chainID, addr)
	if err != nil {
		return nil, err
	}
	return &Request{Kind: KindRequest, ID: id, Purpose: purpose, TypedData: NewTypedData(chainID, addr, tx), SafeTxHash: h.Hex()}, nil
}

func checkPurpose(p string) error {
	if p != Refill && p != Sweep {
		return fmt.Errorf("ethcold: purpose %q: a Safe ceremony is a %s or a %s", p, Refill, Sweep)
	}
	return nil
}

// plain reports whether s shows as it is on a terminal: printable ASCII,
// no spaces, at most 64 bytes.
func plain(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Resolve reads the request's typed data and computes its hash here. A
// hash in the file other than that one is ErrHashMismatch.
func (r *Request) Resolve() (*Tx, error) {
	if r.Kind != KindRequest {
		return nil, fmt.Errorf("%w: kind %q", ErrNotRequest, r.Kind)
	}
	if err := checkPurpose(r.Purpose); err != nil {
		return nil, err
	}
	if r.ID == "" || !plain(r.ID) {
		return nil, fmt.Errorf("ethcold: ceremony id %q: printable ASCII without spaces", r.ID)
	}
	chainID, addr, tx, err := r.TypedData.SafeTx()
	if err != nil {
		return nil, err
	}
	h, err := tx.Hash(chainID, addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTypedData, err)
	}
	if !strings.EqualFold(r.SafeTxHash, h.Hex()) {
		return nil, fmt.Errorf("%w: the file says %s, the typed data hashes to %s", ErrHashMismatch, r.SafeTxHash, h.Hex())
	}
	return &Tx{ChainID: chainID, Safe: addr, SafeTx: tx, Hash: h}, nil
}

// readBounded reads at most MaxFileBytes of path.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, MaxFileBytes)
	}
	return b, nil
}

// kindOf returns the kind a JSON file names, or "".
func kindOf(b []byte) string {
	var k struct {
		Kind string `json:"kind"`
	}
	if json.Unmarshal(b, &k) != nil {
		return ""
	}
	return k.Kind
}

// IsRequestFile reports whether the file at path names itself a Safe
// ceremony request (it may still be malformed: ReadRequest says).
func IsRequestFile(path string) bool {
	b, err := readBounded(path)
	return err == nil && kindOf(b) == KindRequest
}

// ReadRequest reads a request file strictly: no unknown fields.
func ReadRequest(path string) (*Request, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	var r Request
	if err := decodeStrict(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNotRequest, path, err)
	}
	if r.Kind != KindRequest {
		return nil, fmt.Errorf("%w: %s names itself %q", ErrNotRequest, path, r.Kind)
	}
	return &r, nil
}

// WriteNew writes v as indented JSON to path, which must not exist.
func WriteNew(path string, v any, mode os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// weiPerEther is 10^18.
var weiPerEther = new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)

// FormatEther writes wei as Ether with all 18 decimals:
// "1.250000000000000000 ETH".
func FormatEther(wei *big.Int) string {
	if wei == nil {
		wei = new(big.Int)
	}
	q, r := new(big.Int).QuoRem(wei, weiPerEther, new(big.Int))
	return fmt.Sprintf("%s.%018s ETH", q, r)
}

// ParseEther reads an amount of Ether written in decimal ("5", "0.25",
// at most 18 decimals) as wei, exactly.
func ParseEther(s string) (*big.Int, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) > 18 || (strings.Contains(s, ".") && frac == "") {
		return nil, fmt.Errorf("amount %q: Ether with at most 18 decimals", s)
	}
	w, err := ParseUint256(whole)
	if err != nil {
		return nil, fmt.Errorf("amount %q: Ether with at most 18 decimals", s)
	}
	for i := 0; i < len(frac); i++ {
		if frac[i] < '0' || frac[i] > '9' {
			return nil, fmt.Errorf("amount %q: Ether with at most 18 decimals", s)
		}
	}
	f, _ := new(big.Int).SetString(frac+strings.Repeat("0", 18-len(frac)), 10)
	wei := new(big.Int).Add(new(big.Int).Mul(w, weiPerEther), f)
	if wei.BitLen() > 256 {
		return nil, fmt.Errorf("amount %q is above 2^256-1 wei", s)
	}
	return wei, nil
}
