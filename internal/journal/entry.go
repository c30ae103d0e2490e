// Package journal is kinko's append-only, hash-chained journal of commands:
// the book of record and the audit log. Each entry carries its sequence
// number, the time its submitter gave, the command's kind and payload, the
// previous entry's hash and its own SHA-256 hash over all of that. Entries are
// stored in Pebble and never rewritten or deleted. Over them the journal
// keeps an RFC 6962 Merkle tree (package tree: leaf i is entry i+1, its leaf
// data the entry's hash), for signed tree heads and inclusion and
// consistency proofs (docs/journal.md).
package journal

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// HashSize is the size of an entry hash.
const HashSize = sha256.Size

// Hash is an entry's SHA-256 hash.
type Hash [HashSize]byte

// String returns the hash in hex.
func (h Hash) String() string { return fmt.Sprintf("%x", h[:]) }

// entryVersion is the encoding's version byte.
const entryVersion = 1

// headerSize is version, seq, time, kind and payload length.
const headerSize = 1 + 8 + 8 + 2 + 4

// MaxPayload bounds one entry's payload. A command larger than this is
// refused before it reaches the journal.
const MaxPayload = 4 << 20

// Entry is one journal entry.
type Entry struct {
	Seq     uint64
	Time    int64 // unix nanoseconds, as given by the submitter, never decreasing
	Kind    uint16
	Payload []byte
	Prev    Hash
	Hash    Hash
}

// ErrDecode reports bytes that are not an entry.
var ErrDecode = errors.New("journal: entry does not decode")

// EncodedSize returns the size of an entry with a payload of n bytes.
func EncodedSize(n int) int { return headerSize + n + 2*HashSize }

// Seal encodes an entry continuing the chain after prev into dst, which must
// be EncodedSize(len(payload)) bytes, computes its hash and returns the entry.
// The returned entry's Payload aliases dst.
func Seal(dst []byte, prev Hash, seq uint64, t int64, kind uint16, payload []byte) Entry {
	n := len(payload)
	_ = dst[EncodedSize(n)-1]
	dst[0] = entryVersion
	binary.BigEndian.PutUint64(dst[1:], seq)
	binary.BigEndian.PutUint64(dst[9:], uint64(t))
	binary.BigEndian.PutUint16(dst[17:], kind)
	binary.BigEndian.PutUint32(dst[19:], uint32(n))
	copy(dst[headerSize:], payload)
	copy(dst[headerSize+n:], prev[:])
	h := Hash(sha256.Sum256(dst[:headerSize+n+HashSize]))
	copy(dst[headerSize+n+HashSize:], h[:])
	return Entry{Seq: seq, Time: t, Kind: kind, Payload: dst[headerSize : headerSize+n], Prev: prev, Hash: h}
}

// Encode returns the entry's encoding, with the hash it carries.
func (e *Entry) Encode() []byte {
	n := len(e.Payload)
	b := make([]byte, EncodedSize(n))
	b[0] = entryVersion
	binary.BigEndian.PutUint64(b[1:], e.Seq)
	binary.BigEndian.PutUint64(b[9:], uint64(e.Time))
	binary.BigEndian.PutUint16(b[17:], e.Kind)
	binary.BigEndian.PutUint32(b[19:], uint32(n))
	copy(b[headerSize:], e.Payload)
	copy(b[headerSize+n:], e.Prev[:])
	copy(b[headerSize+n+HashSize:], e.Hash[:])
	return b
}

// Decode decodes an entry. The payload aliases b. It does not check the
// hash: see Check.
func Decode(b []byte) (Entry, error) {
	if len(b) < headerSize+2*HashSize {
		return Entry{}, fmt.Errorf("%w: %d bytes is too short", ErrDecode, len(b))
	}
	if b[0] != entryVersion {
		return Entry{}, fmt.Errorf("%w: version %d", ErrDecode, b[0])
	}
	n := binary.BigEndian.Uint32(b[19:])
	if n > MaxPayload || int(n) != len(b)-headerSize-2*HashSize {
		return Entry{}, fmt.Errorf("%w: payload length %d in %d bytes", ErrDecode, n, len(b))
	}
	e := Entry{
		Seq:     binary.BigEndian.Uint64(b[1:]),
		Time:    int64(binary.BigEndian.Uint64(b[9:])),
		Kind:    binary.BigEndian.Uint16(b[17:]),
		Payload: b[headerSize : headerSize+int(n)],
	}
	copy(e.Prev[:], b[headerSize+int(n):])
	copy(e.Hash[:], b[headerSize+int(n)+HashSize:])
	return e, nil
}

// checkHash reports whether the hash stored in the encoded entry b matches
// its contents.
func checkHash(b []byte) bool {
	n := len(b) - HashSize
	return sha256.Sum256(b[:n]) == Hash(b[n:])
}

// DecodeChecked decodes an entry and checks its hash against its contents:
// what a reader that trusts nothing (the co-signer) does with every entry.
func DecodeChecked(b []byte) (Entry, error) {
	e, err := Decode(b)
	if err != nil {
		return Entry{}, err
	}
	if !checkHash(b) {
		return Entry{}, &BadEntryError{Seq: e.Seq, Reason: "hash does not match its contents"}
	}
	return e, nil
}
