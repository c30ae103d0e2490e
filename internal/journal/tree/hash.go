// Package tree is the verifiable layer over kinko's journal: an RFC 6962
// Merkle tree over the entries, kept in tiles so that appends cost O(log n)
// and proofs read a few tiles; signed tree heads in the C2SP checkpoint
// format; inclusion and consistency proofs and their verification.
//
// The package knows nothing of Pebble or of the entry encoding: the journal
// stores the tiles and feeds the leaves, a verifier needs only this package,
// a head, a proof and the log's public key.
//
// Leaves. Leaf i (0-based) is journal entry i+1. Its leaf data is the
// entry's 32-byte SHA-256 hash (which covers every byte of the entry's
// encoding), so leaf hash = SHA-256(0x00 || entry hash) and a node is
// SHA-256(0x01 || left || right), as RFC 6962 section 2.1 defines.
package tree

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// HashSize is the size of a tree hash.
const HashSize = sha256.Size

// Hash is a node, leaf or root hash of the tree.
type Hash [HashSize]byte

// String returns the hash in hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText encodes the hash in lower-case hex.
func (h Hash) MarshalText() ([]byte, error) {
	b := make([]byte, 2*HashSize)
	hex.Encode(b, h[:])
	return b, nil
}

// UnmarshalText decodes a hash of exactly 64 lower-case hex digits.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != 2*HashSize {
		return fmt.Errorf("tree: a hash is %d hex digits, not %d", 2*HashSize, len(b))
	}
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("tree: a hash is lower-case hex")
		}
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// Domain separation prefixes of RFC 6962.
const (
	leafPrefix = 0
	nodePrefix = 1
)

// LeafHash returns SHA-256(0x00 || data).
func LeafHash(data []byte) Hash {
	var buf [1 + 64]byte
	if len(data) <= 64 {
		buf[0] = leafPrefix
		n := copy(buf[1:], data)
		return sha256.Sum256(buf[:1+n])
	}
	h := sha256.New()
	h.Write([]byte{leafPrefix})
	h.Write(data)
	var out Hash
	h.Sum(out[:0])
	return out
}

// NodeHash returns SHA-256(0x01 || l || r).
func NodeHash(l, r Hash) Hash {
	var buf [1 + 2*HashSize]byte
	buf[0] = nodePrefix
	copy(buf[1:], l[:])
	copy(buf[1+HashSize:], r[:])
	return sha256.Sum256(buf[:])
}

// EmptyRoot is the root of the empty tree, SHA-256 of nothing.
var EmptyRoot = Hash(sha256.Sum256(nil))

// hashUp returns the root of the perfect subtree whose leaves (at whatever
// level) are hs; len(hs) is a power of two. scratch, if large enough, is
// used for the intermediate levels.
func hashUp(hs []Hash, scratch []Hash) Hash {
	n := len(hs)
	if n == 1 {
		return hs[0]
	}
	if cap(scratch) < n/2 {
		scratch = make([]Hash, n/2)
	}
	s := scratch[:n/2]
	for i := range s {
		s[i] = NodeHash(hs[2*i], hs[2*i+1])
	}
	for n = len(s); n > 1; n /= 2 {
		for i := 0; i < n/2; i++ {
			s[i] = NodeHash(s[2*i], s[2*i+1])
		}
	}
	return s[0]
}
