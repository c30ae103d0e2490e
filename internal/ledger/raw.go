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
// ledger's memory: valid until the ledger next changes. Each is a multiple
// of 8 bytes long (the customers' table has at least 1,024 four-byte
// slots, a power of two), so that arrays laid end to end stay aligned.
func (l *Ledger) RawBlobs() [][]byte {
	out := [][]byte{bytesOf(l.customers), bytesOf(l.customerIdx.slots), bytesOf(l.accounts), bytesOf(l.accountIdx.slots)}
	out = appendChunkBlobs(out, &l.transfers, 1)
	out = appendChunkBlobs(out, &l.transferIdx.asc, 1)
	out = appendChunkBlobs(out, &l.transferIdx.ascPos, 2) // 4-byte positions, in pairs
	return append(out, bytesOf(l.transferIdx.other.slots))
}

// appendChunkBlobs appends the used part of each chunk, rounded up to a
// multiple of round elements (the chunk's unused elements are zero).
func appendChunkBlobs[T any](out [][]byte, c *chunked[T], round int) [][]byte {
	for i := 0; i*chunkLen < c.n; i++ {
		n := min(chunkLen, c.n-i*chunkLen)
		n = (n + round - 1) / round * round
		out = append(out, bytesOf(c.chunks[i][:n]))
	}
	return out
}

// maxRawCount bounds the counts in a raw header.
const maxRawCount = 1 << 32

// RawLayout is a raw header read: the ledger's assets and the sizes of
// its arrays, to be attached.
type RawLayout struct {
	l      *Ledger
	counts [10]uint64
	sizes  []int
}

// Sizes returns the byte sizes of the arrays that follow the header, in
// the order RawBlobs gives them.
func (r *RawLayout) Sizes() []int { return r.sizes }

// DecodeRawHeader reads a raw form's header from the start of b and
// returns the layout of the arrays that follow it and the header's length.
// It allocates nothing for the arrays: the caller checks Sizes against
// what it holds, then Attach.
func DecodeRawHeader(b []byte) (*RawLayout, int, error) {
	r := rawReader{b: b}
	if string(r.next(len(rawMagic))) != rawMagic {
		return nil, 0, fmt.Errorf("%w: raw: bad magic", ErrCorrupt)
	}
	for _, v := range rawLayout() {
		if r.u32() != v {
			return nil, 0, fmt.Errorf("%w: raw: written with another memory layout", ErrCorrupt)
		}
	}
	l := New()
	na := r.u32()
	if na > 1<<16 {
		return nil, 0, fmt.Errorf("%w: raw: %d assets", ErrCorrupt, na)
	}
	for i := uint32(0); i < na && r.err == nil; i++ {
		a := Asset{ID: AssetID(r.u32())}
		cl := int(r.u8())
		if cl > MaxAssetCode {
			return nil, 0, fmt.Errorf("%w: raw: asset code length %d", ErrCorrupt, cl)
		}
		a.Code = string(r.next(cl))
		a.Decimals, a.Class = r.u8(), AssetClass(r.u8())
		if r.err == nil {
			if c := l.createAsset(&a); c != OK {
				return nil, 0, fmt.Errorf("%w: raw: asset %d: %v", ErrCorrupt, a.ID, c)
			}
		}
	}
	rl := &RawLayout{l: l}
	for i := range rl.counts {
		rl.counts[i] = r.u64()
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	for _, v := range rl.counts {
		if v > maxRawCount {
			return nil, 0, fmt.Errorf("%w: raw: count %d", ErrCorrupt, v)
		}
	}
	n := rl.counts
	nCust, custSlots, custN, nAcct, acctSlots, acctN, nTr, nAsc, otherSlots, otherN := n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7], n[8], n[9]
	if custN != nCust || acctN != nAcct || nAsc+otherN != nTr {
		return nil, 0, fmt.Errorf("%w: raw: index counts do not match", ErrCorrupt)
	}
	for _, t := range [][3]uint64{{custSlots, custN, nCust}, {acctSlots, acctN, nAcct}, {otherSlots, otherN, nTr}} {
		if err := checkTable(t[0], t[1], t[2]); err != nil {
			return nil, 0, err
		}
	}
	lay := rawLayout()
	rl.sizes = []int{int(nCust) * 8, int(custSlots) * 4, int(nAcct) * int(lay[1]), int(acctSlots) * 8}
	rl.sizes = chunkSizes(rl.sizes, int(nTr), int(lay[2]), 1)
	rl.sizes = chunkSizes(rl.sizes, int(nAsc), int(lay[3]), 1)
	rl.sizes = chunkSizes(rl.sizes, int(nAsc), 4, 2)
	rl.sizes = append(rl.sizes, int(otherSlots)*8)
	return rl, r.off, nil
}

func chunkSizes(out []int, n, size, round int) []int {
	for i := 0; i*chunkLen < n; i++ {
		k := min(chunkLen, n-i*chunkLen)
		out = append(out, (k+round-1)/round*round*size)
	}
	return out
}

func checkTable(slots, n, max uint64) error {
	if slots == 0 && n == 0 {
		return nil
	}
	if slots&(slots-1) != 0 || slots < posTableMin || 2*n > slots || n > max {
		return fmt.Errorf("%w: raw: a table of %d slots for %d keys", ErrCorrupt, slots, n)
	}
	return nil
}

// castOrCopy returns b as a []T of n elements: b itself when it is aligned
// for T, else a copy.
func castOrCopy[T any](b []byte, n int) []T {
	if n == 0 {
		return nil
	}
	var zero T
	if uintptr(unsafe.Pointer(&b[0]))%unsafe.Alignof(zero) == 0 {
		return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), n)
	}
	out := make([]T, n)
	copy(bytesOf(out), b)
	return out
}

// Attach returns the ledger whose arrays are blobs (of the sizes Sizes
// gave), which it uses in place where it can: the memory must stay valid
// and unchanged by anyone else for as long as the ledger lives (a private
// mapping of a snapshot file, or memory read for it). The last, partly
// filled chunk of each list is copied, so that appending never writes
// past a blob. The arrays are not checked record by record: the caller
// has authenticated them as the ones a ledger wrote (RawBlobs), and the
// header's shapes were checked by DecodeRawHeader.
func (r *RawLayout) Attach(blobs [][]byte) (*Ledger, error) {
	if len(blobs) != len(r.sizes) {
		return nil, fmt.Errorf("%w: raw: %d arrays for %d", ErrCorrupt, len(blobs), len(r.sizes))
	}
	for i, b := range blobs {
		if len(b) != r.sizes[i] {
			return nil, fmt.Errorf("%w: raw: array %d of %d bytes, not %d", ErrCorrupt, i, len(b), r.sizes[i])
		}
	}
	l, n := r.l, r.counts
	l.customers = castOrCopy[OwnerID](blobs[0], int(n[0]))
	if n[1] > 0 {
		x := &l.customerIdx
		x.slots = castOrCopy[uint32](blobs[1], int(n[1]))
		x.mask = n[1] - 1
		x.shift = uint(64 - bits.TrailingZeros64(n[1]))
		x.n = int(n[2])
	}
	l.accounts = castOrCopy[Account](blobs[2], int(n[3]))
	attachTable(&l.accountIdx, blobs[3], n[4], n[5])
	blobs = blobs[4:]
	blobs = attachChunks(&l.transfers, blobs, int(n[6]))
	blobs = attachChunks(&l.transferIdx.asc, blobs, int(n[7]))
	blobs = attachChunks(&l.transferIdx.ascPos, blobs, int(n[7]))
	attachTable(&l.transferIdx.other, blobs[0], n[8], n[9])
	return l, nil
}

func attachTable(x *posTable, b []byte, slots, n uint64) {
	if slots == 0 {
		return
	}
	x.slots = castOrCopy[uint64](b, int(slots))
	x.mask = slots - 1
	x.shift = uint(32 - bits.TrailingZeros64(slots))
	x.n = int(n)
}

func attachChunks[T any](c *chunked[T], blobs [][]byte, n int) [][]byte {
	var zero T
	size := int(unsafe.Sizeof(zero))
	for i := 0; i*chunkLen < n; i++ {
		k := min(chunkLen, n-i*chunkLen)
		var ch []T
		if k == chunkLen {
			ch = castOrCopy[T](blobs[0], chunkLen)
		} else {
			ch = make([]T, chunkLen)
			copy(bytesOf(ch), blobs[0][:k*size])
		}
		c.chunks = append(c.chunks, ch)
		blobs = blobs[1:]
	}
	c.n = n
	return blobs
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

// CustomerBalance is a customer account's posted balance.
type CustomerBalance struct {
	Owner   OwnerID
	Kind    Kind
	Balance uint64
}

// CustomerBalances appends the nonzero posted balances (up to 2^64-1; a
// larger one is cut to its low 64 bits, as Amount.Uint64 gives it) of the
// customer liability accounts (available and held) of asset among the
// accounts at positions [from, to) in creation order, and returns the
// slice. Callers may read disjoint ranges at once.
func (l *Ledger) CustomerBalances(asset AssetID, from, to int, dst []CustomerBalance) []CustomerBalance {
	to = min(to, len(l.accounts))
	for i := from; i < to; i++ {
		a := &l.accounts[i]
		if a.Key.Asset != asset || !a.Key.Kind.IsCustomer() {
			continue
		}
		v, _ := a.Balance().Uint64()
		if v != 0 {
			dst = append(dst, CustomerBalance{Owner: a.Key.Owner, Kind: a.Key.Kind, Balance: v})
		}
	}
	return dst
}
