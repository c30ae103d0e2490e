package core

import (
	"bytes"
	"cmp"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"kinko/internal/compensation"
	"kinko/internal/fsutil"
	"kinko/internal/journal"
	"kinko/internal/ledger"
)

// The balance log is the balance-history index behind holdings at any
// moment (docs/core.md "Balance log"): after each entry applies, outside
// the deterministic apply, the applier appends the new posted balance of
// every customer account (available and held) the entry changed, and the
// assets it registered, to <data>/balances/log. Holdings of an asset at
// entry T are the newest holdings checkpoint at or before T (every
// customer's balances of each asset, sorted) and a sequential read of the
// log from there to T.
//
// The log is derived data: the journal is the record. It is written in
// chunks (one an applier's batch), each authenticated with AES-GMAC under a
// key derived from the snapshot key and chained to the one before (its tag
// covers the previous tag), and each names the last entry it covers and
// that entry's hash. A reader uses a chunk only if its tag verifies in the
// chain from a checkpoint (or the first chunk), and the hash of the last
// entry it used is the journal's: anything else is ErrNoIndex and the
// caller replays the journal instead. Never a wrong answer.
//
// Chunk: bodyLen u32 | nonce [12] | lastSeq u64 | lastHash [32] | body |
// tag [16]; the tag is GMAC over prevTag | header | body.
// Body: frames, each seq u64 | assets u16 | records u32 | pad u16, then
// the assets (24 bytes: id u32, decimals u8, class u8, code length u8,
// code [10], pad), then the records (32 bytes: owner u64, asset u32, kind
// u8, pad [3], balance lo u64, hi u64).

// ErrNoIndex reports that the balance log cannot answer for the moment
// asked (missing, behind, torn, not this journal's, or no key): callers
// replay the journal instead.
var ErrNoIndex = errors.New("core: balance log cannot answer")

// ErrAssetUnknown reports an asset code that no asset had at the moment.
var ErrAssetUnknown = errors.New("core: unknown asset")

const (
	balDirName    = "balances"
	balLogName    = "log"
	balChunkHdr   = 56
	balTagSize    = 16
	balFrameHdr   = 16
	balAssetSize  = 24
	balRecordSize = 32
	balCkptMagic  = "KNKBCKP1"
	balMetaHdr    = 8 + 12 + 8 + 8 + 16 + 32 + 4 + 4 // magic nonce seq offset chain hash assets pad
	balPartHdr    = 8 + 12 + 8 + 8 + 16 + 4 + 4 + 8  // magic nonce seq offset chain asset pad rows
	// balChunkBytes is the body size after which a chunk is sealed while
	// the start's replay or a rebuild writes.
	balChunkBytes = 4 << 20
	// balMaxBody bounds a chunk's body on read: a longer one is torn.
	balMaxBody = 1 << 30
)

// Checkpoint spacing: a checkpoint once the log holds max(ckptRecords,
// rows of the last checkpoint / ckptFraction) records after the last one,
// so that a query reads at most that many records past a checkpoint and
// checkpoints write at most ckptFraction times the log's own bytes.
// (Variables for tests.)
var (
	ckptRecords  uint64 = 1 << 20
	ckptFraction uint64 = 4
)

// balRow is a customer account's balance in a checkpoint or a log record.
type balRow struct {
	owner  uint64
	asset  ledger.AssetID
	kind   ledger.Kind
	lo, hi uint64
}

func (r *balRow) put(b []byte) {
	binary.LittleEndian.PutUint64(b, r.owner)
	binary.LittleEndian.PutUint32(b[8:], uint32(r.asset))
	b[12], b[13], b[14], b[15] = byte(r.kind), 0, 0, 0
	binary.LittleEndian.PutUint64(b[16:], r.lo)
	binary.LittleEndian.PutUint64(b[24:], r.hi)
}

func putAsset(b []byte, a ledger.Asset) {
	clear(b[:balAssetSize])
	binary.LittleEndian.PutUint32(b, uint32(a.ID))
	b[4], b[5], b[6] = a.Decimals, byte(a.Class), byte(len(a.Code))
	copy(b[7:17], a.Code)
}

func getAsset(b []byte) (ledger.Asset, bool) {
	n := int(b[6])
	if n == 0 || n > ledger.MaxAssetCode {
		return ledger.Asset{}, false
	}
	return ledger.Asset{ID: ledger.AssetID(binary.LittleEndian.Uint32(b)), Decimals: b[4], Class: ledger.AssetClass(b[5]), Code: string(b[7 : 7+n])}, true
}

// balanceAEAD returns the balance log's authenticator: AES-256-GCM (used
// with no plaintext: GMAC) under a key derived from the snapshot key.
func balanceAEAD(snapKey []byte) cipher.AEAD {
	if snapKey == nil {
		return nil
	}
	m := hmac.New(sha256.New, snapKey)
	m.Write([]byte("kinko balance log authentication key v1"))
	blk, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		panic(err)
	}
	return g
}

func balDir(dir string) string { return filepath.Join(dir, balDirName) }

// balWriter appends to the balance log. It is the applier's (or, while
// the log is rebuilt, the rebuild's) alone.
type balWriter struct {
	f       *os.File
	path    string
	aead    cipher.AEAD
	off     int64    // bytes written and sealed
	prevTag [16]byte // tag of the last chunk
	lastSeq uint64   // the last entry the sealed chunks cover
	// lastHash is that entry's hash; lastOff and lastPrev are where
	// the last sealed chunk begins and the tag before it (what a start
	// record names, so that a start checks that chunk).
	lastHash journal.Hash
	lastOff  int64
	lastPrev [16]byte
	// pendSeq and pendHash are the last entry added to the open chunk.
	pendSeq  uint64
	pendHash journal.Hash
	buf      []byte // prevTag | header | body of the open chunk
	assets   int    // assets of the ledger written so far
	record   func(*ledger.AccountKey, ledger.Amount)
	records  uint64 // records written since the last checkpoint
	tag      [balTagSize]byte
	err      error
}

func newBalWriter(f *os.File, path string, aead cipher.AEAD, off int64, prevTag [16]byte, lastSeq uint64, assets int) *balWriter {
	w := &balWriter{f: f, path: path, aead: aead, off: off, prevTag: prevTag, lastSeq: lastSeq, pendSeq: lastSeq, assets: assets, buf: make([]byte, 16+balChunkHdr, 1<<20)}
	w.record = w.appendRecord // bound once: no allocation per entry
	return w
}

// add notes entry e, just applied to st: its changed customer accounts
// and new assets go into the open chunk. Entries at or before the log's
// end (a start's replay over what the log has) are drained and dropped.
func (w *balWriter) add(st *State, e *journal.Entry) {
	l := st.Ledger
	if e.Seq <= w.lastSeq {
		l.DrainChangesTo(func(*ledger.AccountKey, ledger.Amount) {})
		w.assets = l.AssetCount()
		return
	}
	na := l.AssetCount() - w.assets
	if l.ChangesPending() > 0 || na > 0 {
		// The frame's header is filled in once its records are counted.
		n := len(w.buf)
		w.buf = slices.Grow(w.buf, balFrameHdr+na*balAssetSize+l.ChangesPending()*balRecordSize)
		w.buf = w.buf[:n+balFrameHdr+na*balAssetSize]
		b := w.buf[n+balFrameHdr:]
		for i := 0; i < na; i++ {
			putAsset(b, l.AssetAt(w.assets+i))
			b = b[balAssetSize:]
		}
		recs := len(w.buf)
		l.DrainChangesTo(w.record)
		h := w.buf[n:]
		nr := (len(w.buf) - recs) / balRecordSize
		binary.LittleEndian.PutUint64(h, e.Seq)
		binary.LittleEndian.PutUint16(h[8:], uint16(na))
		binary.LittleEndian.PutUint32(h[10:], uint32(nr))
		h[14], h[15] = 0, 0
		w.records += uint64(nr)
		w.assets += na
	}
	w.pendSeq, w.pendHash = e.Seq, e.Hash
}

// appendRecord appends a record to the open frame (room was made for it).
func (w *balWriter) appendRecord(k *ledger.AccountKey, bal ledger.Amount) {
	n := len(w.buf)
	w.buf = w.buf[:n+balRecordSize]
	b := w.buf[n:]
	binary.LittleEndian.PutUint64(b, uint64(k.Owner))
	binary.LittleEndian.PutUint32(b[8:], uint32(k.Asset))
	b[12], b[13], b[14], b[15] = byte(k.Kind), 0, 0, 0
	binary.LittleEndian.PutUint64(b[16:], bal.Lo)
	binary.LittleEndian.PutUint64(b[24:], bal.Hi)
}

// flush seals the open chunk and writes it. A failed write stops the log
// (the readers see it end there and replay instead).
func (w *balWriter) flush() error {
	if w.err != nil || w.pendSeq <= w.lastSeq {
		return w.err
	}
	b := w.buf
	copy(b[:16], w.prevTag[:])
	h := b[16:]
	binary.LittleEndian.PutUint32(h, uint32(len(b)-16-balChunkHdr))
	if _, err := rand.Read(h[4:16]); err != nil {
		w.err = err
		return err
	}
	binary.LittleEndian.PutUint64(h[16:], w.pendSeq)
	copy(h[24:56], w.pendHash[:])
	tag := w.aead.Seal(w.tag[:0], h[4:16], nil, b)
	w.buf = append(w.buf, tag...)
	b = w.buf
	if _, err := w.f.WriteAt(b[16:], w.off); err != nil {
		w.err = fmt.Errorf("balance log: %w", err)
		return w.err
	}
	w.lastOff, w.lastPrev = w.off, w.prevTag
	w.off += int64(len(b) - 16)
	copy(w.prevTag[:], tag)
	w.lastSeq, w.lastHash = w.pendSeq, w.pendHash
	w.buf = w.buf[:16+balChunkHdr]
	return nil
}

// full reports an open chunk large enough to seal.
func (w *balWriter) full() bool { return len(w.buf) >= balChunkBytes }

func (w *balWriter) close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// balChunk is a verified chunk.
type balChunk struct {
	off, end int64 // its bytes in the file
	lastSeq  uint64
	lastHash journal.Hash
	tag      [16]byte
	body     []byte // valid until the next chunk is read
}

// balReader reads the log's chunks in order, verifying each in the chain.
type balReader struct {
	f       *os.File
	aead    cipher.AEAD
	off     int64
	prevTag [16]byte
	lastSeq uint64
	buf     []byte
}

// next reads and verifies the chunk at the reader's offset. io.EOF at a
// clean end; errTorn for a chunk that is short, too long or does not
// verify (the end of what may be used).
func (r *balReader) next() (balChunk, error) {
	if cap(r.buf) < 16+balChunkHdr {
		r.buf = make([]byte, 16+balChunkHdr, 1<<20)
	}
	b := r.buf[:16+balChunkHdr]
	copy(b, r.prevTag[:])
	n, err := r.f.ReadAt(b[16:], r.off)
	if n == 0 && err == io.EOF {
		return balChunk{}, io.EOF
	}
	if n < balChunkHdr {
		return balChunk{}, errTorn
	}
	body := int64(binary.LittleEndian.Uint32(b[16:]))
	if body > balMaxBody {
		return balChunk{}, errTorn
	}
	total := 16 + balChunkHdr + int(body) + balTagSize
	if cap(b) < total {
		nb := make([]byte, total, total+total/4)
		copy(nb, b)
		r.buf = nb
	}
	b = r.buf[:total]
	if n, _ := r.f.ReadAt(b[16+balChunkHdr:], r.off+balChunkHdr); n < int(body)+balTagSize {
		return balChunk{}, errTorn
	}
	h := b[16:]
	data, tag := b[:total-balTagSize], b[total-balTagSize:]
	if _, err := r.aead.Open(nil, h[4:16], tag, data); err != nil {
		return balChunk{}, errTorn
	}
	c := balChunk{off: r.off, end: r.off + int64(total-16), lastSeq: binary.LittleEndian.Uint64(h[16:]), body: b[16+balChunkHdr : total-balTagSize]}
	copy(c.lastHash[:], h[24:56])
	copy(c.tag[:], tag)
	if c.lastSeq <= r.lastSeq {
		return balChunk{}, errTorn
	}
	r.off, r.prevTag, r.lastSeq = c.end, c.tag, c.lastSeq
	return c, nil
}

var errTorn = errors.New("balance log: torn or not authentic")

// frames calls fn for each frame of a chunk's body, in order: its seq,
// assets and records (raw). It fails on a body that does not parse.
func frames(body []byte, after uint64, last uint64, fn func(seq uint64, assets, records []byte) bool) error {
	prev := after
	for len(body) > 0 {
		if len(body) < balFrameHdr {
			return errTorn
		}
		seq := binary.LittleEndian.Uint64(body)
		na := int(binary.LittleEndian.Uint16(body[8:]))
		nr := int(binary.LittleEndian.Uint32(body[10:]))
		size := balFrameHdr + na*balAssetSize + nr*balRecordSize
		if seq <= prev || seq > last || len(body) < size {
			return errTorn
		}
		prev = seq
		a := body[balFrameHdr : balFrameHdr+na*balAssetSize]
		if !fn(seq, a, body[balFrameHdr+na*balAssetSize:size]) {
			return nil
		}
		body = body[size:]
	}
	return nil
}

// balCkpt is a checkpoint's meta: the log's position and the assets.
type balCkpt struct {
	seq      uint64
	off      int64
	tag      [16]byte
	lastHash journal.Hash
	assets   []ledger.Asset
}

func ckptName(seq uint64) string { return fmt.Sprintf("%020d.ckpt", seq) }
func ckptPartName(seq uint64, a ledger.AssetID) string {
	return fmt.Sprintf("%020d.%d.part", seq, a)
}

// ckptSeqs lists the checkpoints' seqs in the directory, newest first.
func ckptSeqs(dir string) []uint64 {
	ents, _ := os.ReadDir(balDir(dir))
	var out []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".ckpt")
		if !ok {
			continue
		}
		if s, err := strconv.ParseUint(name, 10, 64); err == nil {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out
}

// partHeader starts a checkpoint's part for asset a, with room for n
// bytes of rows.
func partHeader(m balCkpt, a ledger.AssetID, n int) []byte {
	b := make([]byte, balPartHdr, balPartHdr+n+balTagSize)
	copy(b, balCkptMagic)
	binary.LittleEndian.PutUint64(b[20:], m.seq)
	binary.LittleEndian.PutUint64(b[28:], uint64(m.off))
	copy(b[36:52], m.tag[:])
	binary.LittleEndian.PutUint32(b[52:], uint32(a))
	return b
}

// writePart seals and writes a part that partHeader began and the rows
// (sorted by owner and kind) follow.
func writePart(dir string, aead cipher.AEAD, m balCkpt, a ledger.AssetID, b []byte) error {
	binary.LittleEndian.PutUint64(b[60:], uint64((len(b)-balPartHdr)/balRecordSize))
	if _, err := rand.Read(b[8:20]); err != nil {
		return err
	}
	b = append(b, aead.Seal(nil, b[8:20], nil, b)...)
	return writeFileAtomic(filepath.Join(balDir(dir), ckptPartName(m.seq, a)), b)
}

// writeMeta writes a checkpoint's meta, after its parts: a checkpoint
// with a meta has its parts.
func writeMeta(dir string, aead cipher.AEAD, m balCkpt) error {
	b := make([]byte, balMetaHdr, balMetaHdr+len(m.assets)*balAssetSize+balTagSize)
	copy(b, balCkptMagic)
	if _, err := rand.Read(b[8:20]); err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(b[20:], m.seq)
	binary.LittleEndian.PutUint64(b[28:], uint64(m.off))
	copy(b[36:52], m.tag[:])
	copy(b[52:84], m.lastHash[:])
	binary.LittleEndian.PutUint32(b[84:], uint32(len(m.assets)))
	b = b[:balMetaHdr+len(m.assets)*balAssetSize]
	for i, a := range m.assets {
		putAsset(b[balMetaHdr+i*balAssetSize:], a)
	}
	b = append(b, aead.Seal(nil, b[8:20], nil, b)...)
	return writeFileAtomic(filepath.Join(balDir(dir), ckptName(m.seq)), b)
}

func writeFileAtomic(path string, b []byte) error {
	if err := fsutil.WriteFile(path, "", b, false); err != nil {
		return fmt.Errorf("balance checkpoint: %w", err)
	}
	return nil
}

// readCkpt reads and verifies a checkpoint's meta.
func readCkpt(dir string, aead cipher.AEAD, seq uint64) (balCkpt, error) {
	b, err := os.ReadFile(filepath.Join(balDir(dir), ckptName(seq)))
	if err != nil {
		return balCkpt{}, err
	}
	if len(b) < balMetaHdr+balTagSize || string(b[:8]) != balCkptMagic {
		return balCkpt{}, errTorn
	}
	data, tag := b[:len(b)-balTagSize], b[len(b)-balTagSize:]
	if _, err := aead.Open(nil, b[8:20], tag, data); err != nil {
		return balCkpt{}, errTorn
	}
	m := balCkpt{seq: binary.LittleEndian.Uint64(b[20:]), off: int64(binary.LittleEndian.Uint64(b[28:]))}
	copy(m.tag[:], b[36:52])
	copy(m.lastHash[:], b[52:84])
	na := int(binary.LittleEndian.Uint32(b[84:]))
	if m.seq != seq || len(data) != balMetaHdr+na*balAssetSize {
		return balCkpt{}, errTorn
	}
	for i := 0; i < na; i++ {
		a, ok := getAsset(data[balMetaHdr+i*balAssetSize:])
		if !ok {
			return balCkpt{}, errTorn
		}
		m.assets = append(m.assets, a)
	}
	return m, nil
}

// readPart maps and verifies a checkpoint's part for asset a: its rows,
// raw (balRecordSize each, sorted by owner and kind), valid until release.
func readPart(dir string, aead cipher.AEAD, m balCkpt, a ledger.AssetID) (rows []byte, release func(), err error) {
	f, err := os.Open(filepath.Join(balDir(dir), ckptPartName(m.seq, a)))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi.Size() < balPartHdr+balTagSize {
		return nil, nil, errTorn
	}
	b, release, err := mapSnapshot(f, fi.Size())
	if err != nil {
		return nil, nil, err
	}
	data, tag := b[:len(b)-balTagSize], b[len(b)-balTagSize:]
	n := binary.LittleEndian.Uint64(b[60:])
	if string(b[:8]) != balCkptMagic || binary.LittleEndian.Uint64(b[20:]) != m.seq || int64(binary.LittleEndian.Uint64(b[28:])) != m.off || !bytes.Equal(b[36:52], m.tag[:]) ||
		ledger.AssetID(binary.LittleEndian.Uint32(b[52:])) != a || uint64(len(data)-balPartHdr) != n*balRecordSize {
		release()
		return nil, nil, errTorn
	}
	if _, err := aead.Open(nil, b[8:20], tag, data); err != nil {
		release()
		return nil, nil, errTorn
	}
	return data[balPartHdr:], release, nil
}

// balStart is where a read of the log begins: a checkpoint (or the log's
// first byte, with no checkpoint).
func balStart(dir string, aead cipher.AEAD, j *journal.Journal, at uint64) (balCkpt, bool) {
	return balStartWithin(dir, aead, j, at, 1<<62)
}

// balStartWithin is balStart among the checkpoints at or before offset
// size of the log.
func balStartWithin(dir string, aead cipher.AEAD, j *journal.Journal, at uint64, size int64) (balCkpt, bool) {
	for _, s := range ckptSeqs(dir) {
		if s > at {
			continue
		}
		m, err := readCkpt(dir, aead, s)
		if err != nil || m.off > size {
			continue
		}
		if s > 0 {
			e, err := j.Get(s)
			if err != nil || e.Hash != m.lastHash {
				continue
			}
		}
		return m, true
	}
	return balCkpt{}, false
}

// delta is a log record of one asset: the account as a sort key (owner
// and kind: customers' owners are below 2^63) and its balance.
type delta struct {
	key    uint64
	lo, hi uint64
}

func deltaKey(owner uint64, kind ledger.Kind) uint64 {
	return owner<<1 | uint64(kind-ledger.KindAvailable)&1
}

func deltaOf(rec []byte) delta {
	return delta{key: deltaKey(binary.LittleEndian.Uint64(rec), ledger.Kind(rec[12])), lo: binary.LittleEndian.Uint64(rec[16:]), hi: binary.LittleEndian.Uint64(rec[24:])}
}

// sortDeltas sorts ds by key, stably (of one account's records, the
// log's order is kept: the last is its balance), by radix: the keys are
// the accounts' owners, a few bytes wide.
func sortDeltas(ds []delta) []delta {
	var top uint64
	for i := range ds {
		top |= ds[i].key
	}
	if len(ds) < 2 || top == 0 {
		return ds
	}
	const digit = 11
	tmp := make([]delta, len(ds))
	var count [1 << digit]int
	for shift := uint(0); shift < 64 && top>>shift != 0; shift += digit {
		clear(count[:])
		for i := range ds {
			count[ds[i].key>>shift&(1<<digit-1)]++
		}
		sum := 0
		for i := range count {
			sum, count[i] = sum+count[i], sum
		}
		for i := range ds {
			d := ds[i].key >> shift & (1<<digit - 1)
			tmp[count[d]] = ds[i]
			count[d]++
		}
		ds, tmp = tmp, ds
	}
	return ds
}

// mergeRows calls emit with the rows of one asset's checkpoint part (raw,
// sorted by owner and kind) with the deltas (sorted by sortDeltas)
// applied, in order, zero balances left out.
func mergeRows(base []byte, ds []delta, emit func(key, lo, hi uint64)) {
	i, k := 0, 0
	nb := len(base) / balRecordSize
	var bk uint64
	load := func() {
		if i < nb {
			r := base[i*balRecordSize:]
			bk = deltaKey(binary.LittleEndian.Uint64(r), ledger.Kind(r[12]))
		}
	}
	load()
	for i < nb || k < len(ds) {
		if k < len(ds) {
			// The last delta of a key wins.
			for k+1 < len(ds) && ds[k].key == ds[k+1].key {
				k++
			}
		}
		var key, lo, hi uint64
		if k < len(ds) && (i >= nb || ds[k].key <= bk) {
			key, lo, hi = ds[k].key, ds[k].lo, ds[k].hi
			if i < nb && bk == key {
				i++
				load()
			}
			k++
		} else {
			r := base[i*balRecordSize:]
			key, lo, hi = bk, binary.LittleEndian.Uint64(r[16:]), binary.LittleEndian.Uint64(r[24:])
			i++
			load()
		}
		if lo != 0 || hi != 0 {
			emit(key, lo, hi)
		}
	}
}

// IndexedHoldings is holdings of an asset at an entry, from the balance
// log or from the state there.
type IndexedHoldings struct {
	Asset    ledger.Asset
	Seq      uint64
	Time     int64 // the entry's time, unix nanoseconds (0 at seq 0)
	Holdings []compensation.Holding
	// FromIndex reports an answer from the balance log (false: from the
	// state rebuilt there).
	FromIndex bool
}

// holdingsFromLog answers holdings of the asset named code at entry at
// from the balance log, or ErrNoIndex.
func holdingsFromLog(dir string, aead cipher.AEAD, j *journal.Journal, code string, at uint64) (IndexedHoldings, error) {
	if aead == nil {
		return IndexedHoldings{}, ErrNoIndex
	}
	m, _ := balStart(dir, aead, j, at)
	var asset ledger.Asset
	found := false
	for _, a := range m.assets {
		if a.Code == code {
			asset, found = a, true
		}
	}
	var base []byte
	if found {
		var release func()
		var err error
		if base, release, err = readPart(dir, aead, m, asset.ID); err != nil {
			return IndexedHoldings{}, fmt.Errorf("%w: checkpoint %d: %v", ErrNoIndex, m.seq, err)
		}
		defer release()
	}
	f, err := os.Open(filepath.Join(balDir(dir), balLogName))
	if err != nil {
		return IndexedHoldings{}, fmt.Errorf("%w: %v", ErrNoIndex, err)
	}
	defer f.Close()
	r := &balReader{f: f, aead: aead, off: m.off, prevTag: m.tag, lastSeq: m.seq}
	ds := make([]delta, 0, recordsUpTo(f, m.off, at))
	covered := m.seq
	var lastHash journal.Hash = m.lastHash
	for covered < at {
		c, err := r.next()
		if err != nil {
			return IndexedHoldings{}, fmt.Errorf("%w: the log ends at entry %d", ErrNoIndex, covered)
		}
		err = frames(c.body, covered, c.lastSeq, func(seq uint64, as, recs []byte) bool {
			if seq > at {
				return false
			}
			for len(as) > 0 {
				if a, ok := getAsset(as); ok && a.Code == code {
					asset, found = a, true
				}
				as = as[balAssetSize:]
			}
			if !found {
				return true
			}
			for ; len(recs) > 0; recs = recs[balRecordSize:] {
				if ledger.AssetID(binary.LittleEndian.Uint32(recs[8:])) == asset.ID {
					ds = append(ds, deltaOf(recs))
				}
			}
			return true
		})
		if err != nil {
			return IndexedHoldings{}, fmt.Errorf("%w: %v", ErrNoIndex, err)
		}
		covered, lastHash = c.lastSeq, c.lastHash
	}
	// The log is this journal's: the last entry it covers is the
	// journal's (and with it, by the chain, every entry before).
	var t int64
	if covered > 0 {
		e, err := j.Get(covered)
		if err != nil || e.Hash != lastHash {
			return IndexedHoldings{}, fmt.Errorf("%w: the log differs from the journal at entry %d", ErrNoIndex, covered)
		}
		if covered == at {
			t = e.Time
		}
	}
	if at > 0 && covered != at {
		e, err := j.Get(at)
		if err != nil {
			return IndexedHoldings{}, err
		}
		t = e.Time
	}
	if !found {
		return IndexedHoldings{}, fmt.Errorf("%w %q", ErrAssetUnknown, code)
	}
	out := IndexedHoldings{Asset: asset, Seq: at, Time: t, FromIndex: true}
	// At most a holder a row: room at once, not by doubling.
	out.Holdings = make([]compensation.Holding, 0, len(base)/balRecordSize+len(ds))
	mergeRows(base, sortDeltas(ds), func(key, lo, _ uint64) {
		if lo == 0 { // the holdings query reads the low 64 bits
			return
		}
		owner := ledger.OwnerID(key >> 1)
		if k := len(out.Holdings); k == 0 || out.Holdings[k-1].Customer != owner {
			out.Holdings = append(out.Holdings, compensation.Holding{Customer: owner})
		}
		h := &out.Holdings[len(out.Holdings)-1]
		if key&1 == 0 {
			h.Available = lo
		} else {
			h.Held = lo
		}
		h.Total = h.Available + h.Held
	})
	return out, nil
}

// recordsUpTo bounds the records of the chunks from offset off to the
// first that covers entry at, from their headers alone: the room a query
// makes for its records at once, not by doubling (at 10 million holders a
// few hundred megabytes).
func recordsUpTo(f *os.File, off int64, at uint64) int {
	var h [balChunkHdr]byte
	n := 0
	for {
		if k, _ := f.ReadAt(h[:], off); k < balChunkHdr {
			return n
		}
		body := int64(binary.LittleEndian.Uint32(h[:]))
		if body > balMaxBody {
			return n
		}
		n += int(body / balRecordSize)
		if binary.LittleEndian.Uint64(h[16:]) >= at {
			return n
		}
		off += balChunkHdr + body + balTagSize
	}
}

// ckptJob is a checkpoint to write: its meta and each asset's customer
// balances (available and held, nonzero) as the state had them at the
// meta's entry, in the order of the ledger's accounts.
type ckptJob struct {
	m      balCkpt
	parts  map[ledger.AssetID][]delta
	copied time.Duration // the applier's time to copy the rows
}

// extractCkpt copies a checkpoint's rows out of the state at the end of
// the log w wrote (the caller holds the state still): one sequential read
// of the accounts, 24 bytes a customer account kept; sorting and writing
// are writeCkpt's, off the applier.
func extractCkpt(st *State, w *balWriter) ckptJob {
	l := st.Ledger
	j := ckptJob{m: balCkpt{seq: st.seq, off: w.off, tag: w.prevTag, lastHash: st.hash, assets: l.Assets()}, parts: map[ledger.AssetID][]delta{}}
	curA, cur := ledger.AssetID(0), []delta(nil)
	l.Accounts(func(a *ledger.Account) bool {
		if !a.Key.Kind.IsCustomer() {
			return true
		}
		b := a.Balance()
		if b.IsZero() {
			return true
		}
		if a.Key.Asset != curA || cur == nil {
			if cur != nil {
				j.parts[curA] = cur
			}
			curA, cur = a.Key.Asset, j.parts[a.Key.Asset]
			if cur == nil {
				cur = make([]delta, 0, 1024)
			}
		}
		cur = append(cur, delta{key: deltaKey(uint64(a.Key.Owner), a.Key.Kind), lo: b.Lo, hi: b.Hi})
		return true
	})
	if cur != nil {
		j.parts[curA] = cur
	}
	return j
}

// writeCkpt sorts a checkpoint's rows and writes its parts, then its meta.
// It returns the rows written.
func writeCkpt(dir string, aead cipher.AEAD, j ckptJob, stop <-chan struct{}) (int, error) {
	rows := 0
	for _, a := range j.m.assets {
		select {
		case <-stop:
			return 0, ErrClosed
		default:
		}
		ds := j.parts[a.ID]
		if !slices.IsSortedFunc(ds, func(x, y delta) int { return cmp.Compare(x.key, y.key) }) {
			ds = sortDeltas(ds) // keys are unique: an account once
		}
		b := partHeader(j.m, a.ID, len(ds)*balRecordSize)
		b = b[:balPartHdr+len(ds)*balRecordSize]
		for i := range ds {
			r := balRow{owner: ds[i].key >> 1, asset: a.ID, kind: ledger.KindAvailable + ledger.Kind(ds[i].key&1), lo: ds[i].lo, hi: ds[i].hi}
			r.put(b[balPartHdr+i*balRecordSize:])
		}
		rows += len(ds)
		if err := writePart(dir, aead, j.m, a.ID, b); err != nil {
			return 0, err
		}
		delete(j.parts, a.ID)
	}
	if len(j.parts) > 0 {
		return 0, fmt.Errorf("balance checkpoint: accounts of an asset not in the ledger's table")
	}
	if err := writeMeta(dir, aead, j.m); err != nil {
		return 0, err
	}
	return rows, nil
}
