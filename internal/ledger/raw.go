package ledger

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"unsafe"
)

// The raw form is the ledger's memory image, for snapshots that load at
// memory speed: a small header (the assets, the counts and the shape of
// each index) and the big arrays as they lie in memory (customers,
// accounts, transfers, and the hash tables and sorted id arrays that index
// them), so that loading is reading the bytes into place, with no
// per-record work and no index to rebuild. The image is of this machine's
// layout: the header records the record sizes and byte order, and a
// header that does not match is refused (the caller then replays).
// Integrity is the caller's: the snapshot file authenticates every byte
// (internal/core).

const rawMagic = "KNKLRAW1"

// rawLayout names this build's layout: byte order, and the sizes of the
// records kept raw.
func rawLayout() [4]uint32 {
	var one uint16 = 1
	little := uint32(*(*byte)(unsafe.Pointer(&one)))
	return [4]uint32{little, uint32(unsafe.Sizeof(Account{})), uint32(unsafe.Sizeof(TransferRecord{})), uint32(unsafe.Sizeof(ID{}))}
}

func bytesOf[T any](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), uintptr(len(s))*unsafe.Sizeof(s[0]))
}

// AppendRawHeader appends the raw form's header.
func (l *Ledger) AppendRawHeader(b []byte) []byte {
	b = append(b, rawMagic...)
	for _, v := range rawLayout() {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(l.assets)))
	for _, a := range l.assets {
		b = binary.LittleEndian.AppendUint32(b, uint32(a.ID))
		b = append(b, byte(len(a.Code)))
		b = append(b, a.Code...)
		b = append(b, a.Decimals, byte(a.Class))
	}
	for _, v := range []uint64{
		uint64(len(l.customers)), uint64(len(l.customerIdx.slots)), uint64(l.customerIdx.n),
		uint64(len(l.accounts)), uint64(len(l.accountIdx.slots)), uint64(l.accountIdx.n),
		uint64(l.transfers.len()), uint64(l.transferIdx.asc.len()),
		uint64(len(l.transferIdx.other.slots)), uint64(l.transferIdx.other.n),
	} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

// RawBlobs returns the raw form's arrays, in order, as views of the
// ledger's memory: valid until the ledger next changes.
func (l *Ledger) RawBlobs() [][]byte {
	out := [][]byte{bytesOf(l.customers), bytesOf(l.customerIdx.slots), bytesOf(l.accounts), bytesOf(l.accountIdx.slots)}
	out = appendChunkBlobs(out, &l.transfers)
	out = appendChunkBlobs(out, &l.transferIdx.asc)
	out = appendChunkBlobs(out, &l.transferIdx.ascPos)
	return append(out, bytesOf(l.transferIdx.other.slots))
}

func appendChunkBlobs[T any](out [][]byte, c *chunked[T]) [][]byte {
	for i := 0; i*chunkLen < c.n; i++ {
		out = append(out, bytesOf(c.chunks[i][:min(chunkLen, c.n-i*chunkLen)]))
	}
	return out
}

// maxRawCount bounds the counts in a raw header.
const maxRawCount = 1 << 32

// DecodeRawHeader reads a raw form's header from the start of b and returns
// a ledger with its arrays allocated but not filled, the arrays to fill (in
// the order RawBlobs gives them, of the sizes they will have), and the
// header's length. The caller checks the blobs' total size against what it
// holds before filling them, reads them into place, then calls FinishRaw.
// size is the most the blobs may total: nothing larger is allocated.
func DecodeRawHeader(b []byte, size int64) (*Ledger, [][]byte, int, error) {
	r := rawReader{b: b}
	if string(r.next(len(rawMagic))) != rawMagic {
		return nil, nil, 0, fmt.Errorf("%w: raw: bad magic", ErrCorrupt)
	}
	for _, v := range rawLayout() {
		if r.u32() != v {
			return nil, nil, 0, fmt.Errorf("%w: raw: written with another memory layout", ErrCorrupt)
		}
	}
	l := New()
	na := r.u32()
	if na > 1<<16 {
		return nil, nil, 0, fmt.Errorf("%w: raw: %d assets", ErrCorrupt, na)
	}
	for i := uint32(0); i < na && r.err == nil; i++ {
		a := Asset{ID: AssetID(r.u32())}
		cl := int(r.u8())
		if cl > MaxAssetCode {
			return nil, nil, 0, fmt.Errorf("%w: raw: asset code length %d", ErrCorrupt, cl)
		}
		a.Code = string(r.next(cl))
		a.Decimals, a.Class = r.u8(), AssetClass(r.u8())
		if r.err == nil {
			if c := l.createAsset(&a); c != OK {
				return nil, nil, 0, fmt.Errorf("%w: raw: asset %d: %v", ErrCorrupt, a.ID, c)
			}
		}
	}
	var n [10]uint64
	for i := range n {
		n[i] = r.u64()
	}
	if r.err != nil {
		return nil, nil, 0, r.err
	}
	for _, v := range n {
		if v > maxRawCount {
			return nil, nil, 0, fmt.Errorf("%w: raw: count %d", ErrCorrupt, v)
		}
	}
	nCust, custSlots, custN, nAcct, acctSlots, acctN, nTr, nAsc, otherSlots, otherN := n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7], n[8], n[9]
	if custN != nCust || acctN != nAcct || nAsc+otherN != nTr {
		return nil, nil, 0, fmt.Errorf("%w: raw: index counts do not match", ErrCorrupt)
	}
	lay := rawLayout()
	need := nCust*8 + custSlots*8 + nAcct*uint64(lay[1]) + acctSlots*8 + nTr*uint64(lay[2]) + nAsc*(uint64(lay[3])+4) + otherSlots*8
	if int64(need) > size {
		return nil, nil, 0, fmt.Errorf("%w: raw: %d bytes of arrays in %d", ErrCorrupt, need, size)
	}
	var blobs [][]byte
	l.customers = make([]OwnerID, nCust)
	blobs = append(blobs, bytesOf(l.customers))
	if err := rawTable(&l.customerIdx, custSlots, custN, nCust); err != nil {
		return nil, nil, 0, err
	}
	blobs = append(blobs, bytesOf(l.customerIdx.slots))
	l.accounts = make([]Account, nAcct)
	blobs = append(blobs, bytesOf(l.accounts))
	if err := rawTable(&l.accountIdx, acctSlots, acctN, nAcct); err != nil {
		return nil, nil, 0, err
	}
	blobs = append(blobs, bytesOf(l.accountIdx.slots))
	blobs = allocChunks(blobs, &l.transfers, int(nTr))
	blobs = allocChunks(blobs, &l.transferIdx.asc, int(nAsc))
	blobs = allocChunks(blobs, &l.transferIdx.ascPos, int(nAsc))
	if err := rawTable(&l.transferIdx.other, otherSlots, otherN, nTr); err != nil {
		return nil, nil, 0, err
	}
	blobs = append(blobs, bytesOf(l.transferIdx.other.slots))
	return l, blobs, r.off, nil
}

// rawTable shapes a hash table of slots slots holding n positions below max.
func rawTable(x *posTable, slots, n, max uint64) error {
	if slots == 0 {
		if n != 0 {
			return fmt.Errorf("%w: raw: %d keys in an empty table", ErrCorrupt, n)
		}
		return nil
	}
	if slots&(slots-1) != 0 || slots < posTableMin || 2*n > slots || n > max {
		return fmt.Errorf("%w: raw: a table of %d slots for %d keys", ErrCorrupt, slots, n)
	}
	x.slots = make([]uint64, slots)
	x.mask = slots - 1
	x.shift = uint(32 - bits.TrailingZeros64(slots))
	x.n = int(n)
	return nil
}

func allocChunks[T any](blobs [][]byte, c *chunked[T], n int) [][]byte {
	for i := 0; i*chunkLen < n; i++ {
		ch := make([]T, chunkLen)
		c.chunks = append(c.chunks, ch)
		blobs = append(blobs, bytesOf(ch[:min(chunkLen, n-i*chunkLen)]))
	}
	c.n = n
	return blobs
}

// FinishRaw checks a ledger whose raw arrays have been filled: that every
// index slot points inside its array and the ascending ids ascend. It
// reads each index once; the records themselves are as written (the
// snapshot authenticated them).
func (l *Ledger) FinishRaw() error {
	for _, t := range []struct {
		x   *posTable
		max int
	}{{&l.customerIdx, len(l.customers)}, {&l.accountIdx, len(l.accounts)}, {&l.transferIdx.other, l.transfers.len()}} {
		n := 0
		for _, s := range t.x.slots {
			if s != 0 {
				if int(uint32(s)) > t.max || uint32(s) == 0 {
					return fmt.Errorf("%w: raw: index slot out of range", ErrCorrupt)
				}
				n++
			}
		}
		if n != t.x.n {
			return fmt.Errorf("%w: raw: index holds %d keys, says %d", ErrCorrupt, n, t.x.n)
		}
	}
	x := &l.transferIdx
	for i := 1; i < x.asc.len(); i++ {
		if !x.asc.at(i - 1).less(*x.asc.at(i)) {
			return fmt.Errorf("%w: raw: transfer ids out of order at %d", ErrCorrupt, i)
		}
	}
	for i := 0; i < x.ascPos.len(); i++ {
		if int(*x.ascPos.at(i)) >= l.transfers.len() {
			return fmt.Errorf("%w: raw: transfer position out of range", ErrCorrupt)
		}
	}
	return nil
}

type rawReader struct {
	b   []byte
	off int
	err error
}

func (r *rawReader) next(n int) []byte {
	if r.err != nil || n > len(r.b)-r.off {
		if r.err == nil {
			r.err = fmt.Errorf("%w: raw: header too short", ErrCorrupt)
		}
		return make([]byte, n)
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v
}

func (r *rawReader) u8() byte    { return r.next(1)[0] }
func (r *rawReader) u32() uint32 { return binary.LittleEndian.Uint32(r.next(4)) }
func (r *rawReader) u64() uint64 { return binary.LittleEndian.Uint64(r.next(8)) }
