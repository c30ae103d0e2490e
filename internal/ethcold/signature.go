package ethcold

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/chain/eth/safe"
)

// ErrSignature reports a signature file that is malformed, of another
// ceremony or SafeTx, or not its owner's.
var ErrSignature = errors.New("ethcold: bad signature")

// SignatureFile is one owner's signature, as the offline machine writes
// it: the ceremony, the Safe and hash it signed, the owner, and r ‖ s ‖ v.
type SignatureFile struct {
	Kind       string `json:"kind"`
	ID         string `json:"id"`
	ChainID    string `json:"chain_id"`
	Safe       string `json:"safe"`
	SafeTxHash string `json:"safe_tx_hash"`
	Owner      string `json:"owner"`
	Signature  string `json:"signature"`
}

// NewSignatureFile makes the file of sig, made by this machine for tx of
// ceremony id.
func NewSignatureFile(id string, tx *Tx, sig safe.Signature) *SignatureFile {
	return &SignatureFile{Kind: KindSignature, ID: id, ChainID: tx.ChainID.String(), Safe: tx.Safe.Hex(),
		SafeTxHash: tx.Hash.Hex(), Owner: sig.Owner.Hex(), Signature: "0x" + hex.EncodeToString(sig.RSV[:])}
}

// ReadSignatureFile reads a signature file strictly.
func ReadSignatureFile(path string) (*SignatureFile, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	var s SignatureFile
	if err := decodeStrict(b, &s); err != nil || s.Kind != KindSignature {
		return nil, fmt.Errorf("%w: %s is not a Safe signature file", ErrSignature, path)
	}
	return &s, nil
}

// Check checks the file against tx: the same Safe, chain and hash,
// and a plain low-s ECDSA signature of that hash recovering to the owner
// the file names.
func (s *SignatureFile) Check(tx *Tx) (safe.Signature, error) {
	var out safe.Signature
	if s.ChainID != tx.ChainID.String() || !strings.EqualFold(s.Safe, tx.Safe.Hex()) {
		return out, fmt.Errorf("%w: signed for Safe %s on chain %s, the request is Safe %s on chain %s", ErrSignature, s.Safe, s.ChainID, tx.Safe.Hex(), tx.ChainID)
	}
	if !strings.EqualFold(s.SafeTxHash, tx.Hash.Hex()) {
		return out, fmt.Errorf("%w: %s signed SafeTx %s, another SafeTx than the request's %s", ErrSignature, s.Owner, s.SafeTxHash, tx.Hash.Hex())
	}
	owner, err := ParseAddress(s.Owner)
	if err != nil {
		return out, fmt.Errorf("%w: owner: %v", ErrSignature, err)
	}
	raw, err := parseData(s.Signature)
	if err != nil || len(raw) != safe.SignatureLen {
		return out, fmt.Errorf("%w: %s's signature is not %d bytes of 0x-hex", ErrSignature, s.Owner, safe.SignatureLen)
	}
	out.Owner = owner
	copy(out.RSV[:], raw)
	// The signature itself, over the hash computed here: the file's
	// hash is only a label.
	if _, err := safe.VerifySignatures(tx.Hash, raw, []common.Address{owner}, 1); err != nil {
		return out, fmt.Errorf("%w: %s's signature is not its signature of SafeTx %s: %v", ErrSignature, s.Owner, tx.Hash.Hex(), err)
	}
	return out, nil
}

// SignedFile is a request with its owners' signatures, combined and sorted by
// owner as the Safe requires: what `kinko cold submit` sends.
type SignedFile struct {
	Kind       string   `json:"kind"`
	Request    *Request `json:"request"`
	Owners     []string `json:"owners"`
	Signatures string   `json:"signatures"`
}

// Combine checks every signature file against req's SafeTx (computed
// here) and returns them combined, sorted by owner.
func Combine(req *Request, files []*SignatureFile) (*SignedFile, error) {
	tx, err := req.Resolve()
	if err != nil {
		return nil, err
	}
	var sigs []safe.Signature
	for _, f := range files {
		if f.ID != req.ID {
			return nil, fmt.Errorf("%w: a signature of ceremony %q, not %q", ErrSignature, f.ID, req.ID)
		}
		s, err := f.Check(tx)
		if err != nil {
			return nil, err
		}
		sigs = append(sigs, s)
	}
	enc, err := safe.EncodeSignatures(tx.Hash, sigs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	out := &SignedFile{Kind: KindSigned, Request: req, Signatures: "0x" + hex.EncodeToString(enc)}
	signers, err := safe.VerifySignatures(tx.Hash, enc, ownersOf(sigs), len(sigs))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	for _, a := range signers {
		out.Owners = append(out.Owners, a.Hex())
	}
	return out, nil
}

func ownersOf(sigs []safe.Signature) []common.Address {
	out := make([]common.Address, len(sigs))
	for i, s := range sigs {
		out[i] = s.Owner
	}
	return out
}

// ReadSignedFile reads a combined file strictly and recomputes its
// SafeTx; the signatures are checked by the submitter against the Safe's
// owners on chain.
func ReadSignedFile(path string) (*SignedFile, *Tx, []byte, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, nil, nil, err
	}
	var s SignedFile
	if err := decodeStrict(b, &s); err != nil || s.Kind != KindSigned || s.Request == nil {
		return nil, nil, nil, fmt.Errorf("%w: %s is not a combined Safe transaction (kinko cold combine)", ErrSignature, path)
	}
	tx, err := s.Request.Resolve()
	if err != nil {
		return nil, nil, nil, err
	}
	sigs, err := parseData(s.Signatures)
	if err != nil || len(sigs) == 0 || len(sigs)%safe.SignatureLen != 0 {
		return nil, nil, nil, fmt.Errorf("%w: %s: signatures are not whole 65-byte signatures in 0x-hex", ErrSignature, path)
	}
	return &s, tx, sigs, nil
}
