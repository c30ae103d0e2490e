package core

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"kinko/internal/compensation"
	"kinko/internal/journal"
	"kinko/internal/journal/tree"
	"kinko/internal/ledger"
)

// Snapshots are files snapshots/<seq>.snap in the data directory (and
// <seq>.incident.snap, the state just before a halt or an incident, which
// pruning keeps). They are a cache of the journal, never a source of
// truth, laid out to load at memory speed:
//
//	"KNKSNAP2" | nonce (12) | meta length (8) | meta | blobs ... | tag (16)
//
// The meta holds the state's seq, time and entry hash, the journal's
// Merkle root at that size, the ledger's raw header, the payouts' counts
// and the rest of the state as JSON; the blobs are the ledger's arrays as
// they lie in memory (ledger.RawBlobs) and the compensation plans'
// payouts. Loading reads each blob straight into its array, the pieces in
// parallel. Every byte is authenticated with AES-GMAC under a key derived
// from the journal's head key (in the secrets directory, outside the data
// directory): the meta and each blob in pieces of at most 16 MiB, each
// piece's tag under its own nonce, then the tags and the file's length
// under one more. A snapshot is trusted only if its tag verifies and its
// entry hash and Merkle root are the journal's at its seq; anything else
// is passed over and the journal replayed. Without the key (a copy of the
// data directory read elsewhere) no snapshot is trusted.

const (
	snapDir      = "snapshots"
	snapMagic    = "KNKSNAP2"
	snapNonce    = 12
	snapTag      = 16
	snapPiece    = 16 << 20
	snapMaxMeta  = 1 << 30
	snapPre      = 8 + snapNonce + 8 // magic, nonce, meta length
	incidentSnap = ".incident"
)

// ErrSnapshotCorrupt reports a snapshot file whose tag or contents are
// wrong.
var ErrSnapshotCorrupt = errors.New("snapshot corrupt")

// errNoSnapshotKey reports a data directory read without its head key.
var errNoSnapshotKey = errors.New("snapshot: no head key, so no snapshot can be authenticated")

// snapshotKey derives the snapshots' key from the head key of data
// directory dir with secrets directory sec; a missing head key is
// errNoSnapshotKey.
func snapshotKey(sec, dir string) ([]byte, error) {
	path, err := HeadKeyPath(sec, dir)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoSnapshotKey
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot: head key: %w", err)
	}
	m := hmac.New(sha256.New, b)
	m.Write([]byte("kinko snapshot authentication key v1"))
	return m.Sum(nil), nil
}

// snapshotFile is one snapshot file.
type snapshotFile struct {
	seq      uint64
	incident bool
}

func (f snapshotFile) path(dir string) string {
	suffix := ".snap"
	if f.incident {
		suffix = incidentSnap + ".snap"
	}
	return filepath.Join(dir, snapDir, fmt.Sprintf("%020d%s", f.seq, suffix))
}

// snapshotFiles lists the snapshots in dir, newest first.
func snapshotFiles(dir string) ([]snapshotFile, error) {
	names, err := os.ReadDir(filepath.Join(dir, snapDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	var out []snapshotFile
	for _, n := range names {
		base, ok := strings.CutSuffix(n.Name(), ".snap")
		if !ok {
			continue
		}
		base, inc := strings.CutSuffix(base, incidentSnap)
		if v, err := strconv.ParseUint(base, 10, 64); err == nil {
			out = append(out, snapshotFile{seq: v, incident: inc})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].seq != out[j].seq {
			return out[i].seq > out[j].seq
		}
		return out[i].incident && !out[j].incident
	})
	return out, nil
}

// snapMAC computes the tags of a snapshot's pieces.
type snapMAC struct {
	aead  cipher.AEAD
	nonce [snapNonce]byte
}

func newSnapMAC(key []byte, nonce []byte) (*snapMAC, error) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	aead, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	m := &snapMAC{aead: aead}
	copy(m.nonce[:], nonce)
	return m, nil
}

// tag is piece i's GMAC (i = -1 for the final tag over the pieces' tags).
func (m *snapMAC) tag(dst []byte, i int, data []byte) {
	n := m.nonce
	binary.BigEndian.PutUint32(n[8:], binary.BigEndian.Uint32(n[8:])^uint32(i+1))
	m.aead.Seal(dst[:0], n[:], nil, data)
}

// pieces splits blobs into pieces of at most snapPiece bytes.
func pieces(blobs [][]byte) [][]byte {
	var out [][]byte
	for _, b := range blobs {
		for len(b) > snapPiece {
			out = append(out, b[:snapPiece])
			b = b[snapPiece:]
		}
		if len(b) > 0 {
			out = append(out, b)
		}
	}
	return out
}

// snapMeta is the JSON part of a snapshot's meta.
type snapMeta struct {
	Ext     json.RawMessage `json:"ext"`
	Payouts []int           `json:"payouts"` // each plan's number of payouts, in the blob
}

// encodeSnapshot returns the meta (everything before the blobs, after the
// length) and the blobs of s at root.
func encodeSnapshot(s *State, root tree.Hash) ([]byte, [][]byte, error) {
	meta := make([]byte, 0, 1<<16)
	meta = binary.LittleEndian.AppendUint64(meta, s.seq)
	meta = binary.LittleEndian.AppendUint64(meta, uint64(s.time))
	meta = append(meta, s.hash[:]...)
	meta = append(meta, root[:]...)
	meta = s.Ledger.AppendRawHeader(meta)
	ext := s.extension()
	var sm snapMeta
	var payouts []compensation.Payout
	for i := range ext.Compensation {
		p := &ext.Compensation[i]
		sm.Payouts = append(sm.Payouts, len(p.Payouts))
		payouts = append(payouts, p.Payouts...)
		p.Payouts = nil
	}
	var err error
	if sm.Ext, err = json.Marshal(ext); err != nil {
		return nil, nil, err
	}
	js, err := json.Marshal(sm)
	if err != nil {
		return nil, nil, err
	}
	meta = binary.LittleEndian.AppendUint64(meta, uint64(len(js)))
	meta = append(meta, js...)
	// Zeros to a multiple of 8 after the file's 28-byte start, so that
	// every array begins aligned.
	for (snapPre+len(meta))%8 != 0 {
		meta = append(meta, 0)
	}
	blobs := append(s.Ledger.RawBlobs(), payoutBytes(payouts))
	return meta, blobs, nil
}

func payoutBytes(ps []compensation.Payout) []byte {
	if len(ps) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&ps[0])), uintptr(len(ps))*unsafe.Sizeof(ps[0]))
}

// writeSnapshot writes s durably under key and returns the file's size: a
// temporary file, fsync, rename, fsync of the directory.
func writeSnapshot(dir string, key []byte, s *State, root tree.Hash, incident bool) (int64, error) {
	if key == nil {
		return 0, errNoSnapshotKey
	}
	d := filepath.Join(dir, snapDir)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	meta, blobs, err := encodeSnapshot(s, root)
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	head := make([]byte, 0, snapPre+len(meta))
	head = append(head, snapMagic...)
	var nonce [snapNonce]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	head = append(head, nonce[:]...)
	head = binary.LittleEndian.AppendUint64(head, uint64(len(meta)))
	head = append(head, meta...)
	m, err := newSnapMAC(key, nonce[:])
	if err != nil {
		return 0, err
	}
	ps := append([][]byte{head}, pieces(blobs)...)
	tags := make([]byte, snapTag*len(ps), snapTag*len(ps)+8)
	var size int64
	for i, p := range ps {
		m.tag(tags[i*snapTag:], i, p)
		size += int64(len(p))
	}
	size += snapTag
	tags = binary.LittleEndian.AppendUint64(tags, uint64(size))
	final := make([]byte, snapTag)
	m.tag(final, -1, tags)

	f, err := os.CreateTemp(d, "tmp-*")
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	defer os.Remove(f.Name())
	for _, p := range append(ps, final) {
		if _, err := f.Write(p); err != nil {
			f.Close()
			return 0, fmt.Errorf("snapshot: write: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, fmt.Errorf("snapshot: sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	if err := os.Rename(f.Name(), snapshotFile{seq: s.seq, incident: incident}.path(dir)); err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	df, err := os.Open(d)
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	defer df.Close()
	return size, df.Sync()
}

// readSnapshot reads the snapshot file sf, authenticates every byte under
// key, and returns its state and the Merkle root it records. The file is
// copied into memory of the core's own (mapSnapshot), so that nothing
// written to the file later reaches the state; the ledger's arrays are
// used where they lie in that copy, which is released when the ledger is
// no longer reachable; the pieces are authenticated in parallel.
func readSnapshot(dir string, key []byte, sf snapshotFile) (*State, tree.Hash, error) {
	var root tree.Hash
	if key == nil {
		return nil, root, errNoSnapshotKey
	}
	seq := sf.seq
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %d: %s", ErrSnapshotCorrupt, seq, fmt.Sprintf(format, a...))
	}
	f, err := os.Open(sf.path(dir))
	if err != nil {
		return nil, root, fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, root, fmt.Errorf("snapshot: %w", err)
	}
	size := fi.Size()
	if size < snapPre+snapTag {
		return nil, root, bad("too short")
	}
	data, fill, release, err := snapshotMemory(f, size)
	if err != nil {
		return nil, root, err
	}
	st, root, err := decodeSnapshot(data, fill, key, seq, bad)
	if err != nil {
		release()
		return nil, root, err
	}
	runtime.AddCleanup(st.Ledger, func(release func()) { release() }, release)
	return st, root, nil
}

// decodeSnapshot authenticates and decodes a snapshot file's bytes.
// data is filled part by part with fill, each part before it is read: the
// pieces by the authenticating workers, each just before its tag.
func decodeSnapshot(data []byte, fill func([]byte) error, key []byte, seq uint64, bad func(string, ...any) error) (*State, tree.Hash, error) {
	var root tree.Hash
	size := int64(len(data))
	if err := fill(data[:snapPre]); err != nil {
		return nil, root, err
	}
	if string(data[:len(snapMagic)]) != snapMagic {
		return nil, root, bad("not this encoding")
	}
	metaLen := binary.LittleEndian.Uint64(data[len(snapMagic)+snapNonce:])
	if metaLen > snapMaxMeta || int64(metaLen) > size-snapPre-snapTag {
		return nil, root, bad("meta of %d bytes in %d", metaLen, size)
	}
	head := data[:snapPre+int(metaLen)]
	meta := head[snapPre:]
	if err := fill(meta); err != nil {
		return nil, root, err
	}
	if err := fill(data[size-snapTag:]); err != nil {
		return nil, root, err
	}
	if len(meta) < 16+2*journal.HashSize {
		return nil, root, bad("meta too short")
	}
	st := &State{seq: binary.LittleEndian.Uint64(meta), time: int64(binary.LittleEndian.Uint64(meta[8:]))}
	copy(st.hash[:], meta[16:])
	copy(root[:], meta[16+journal.HashSize:])
	if st.seq != seq {
		return nil, root, bad("file holds seq %d", st.seq)
	}
	rest := meta[16+2*journal.HashSize:]
	layout, n, err := ledger.DecodeRawHeader(rest)
	if err != nil {
		return nil, root, bad("%v", err)
	}
	rest = rest[n:]
	if len(rest) < 8 {
		return nil, root, bad("meta's JSON length")
	}
	jsonLen := binary.LittleEndian.Uint64(rest)
	if jsonLen > uint64(len(rest)-8) || uint64(len(rest)-8)-jsonLen >= 8 {
		return nil, root, bad("meta's JSON length")
	}
	var sm snapMeta
	if err := json.Unmarshal(rest[8:8+jsonLen], &sm); err != nil {
		return nil, root, bad("%v", err)
	}
	blobSpace := size - int64(len(head)) - snapTag
	var nPayouts int64
	for _, c := range sm.Payouts {
		if c < 0 || int64(c) > blobSpace {
			return nil, root, bad("payouts")
		}
		nPayouts += int64(c)
	}
	var used int64
	for _, s := range layout.Sizes() {
		used += int64(s)
	}
	if used+nPayouts*compensation.PayoutSize != blobSpace {
		return nil, root, bad("%d bytes of arrays, %d in the file", used+nPayouts*compensation.PayoutSize, blobSpace)
	}
	if unsafe.Sizeof(compensation.Payout{}) != compensation.PayoutSize {
		return nil, root, bad("payout layout")
	}
	blobs := make([][]byte, 0, len(layout.Sizes())+1)
	off := int64(len(head))
	for _, s := range append(layout.Sizes(), int(nPayouts*compensation.PayoutSize)) {
		blobs = append(blobs, data[off:off+int64(s)])
		off += int64(s)
	}

	nonce := data[len(snapMagic) : len(snapMagic)+snapNonce]
	ps := append([][]byte{head}, pieces(blobs)...)
	tags := make([]byte, snapTag*len(ps), snapTag*len(ps)+8)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, runtime.GOMAXPROCS(0))
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := newSnapMAC(key, nonce)
			if err != nil {
				errs[w] = err
				return
			}
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ps) {
					return
				}
				if i > 0 { // the head is read
					if err := fill(ps[i]); err != nil {
						errs[w] = err
						return
					}
				}
				m.tag(tags[i*snapTag:], i, ps[i])
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, root, err
		}
	}
	m, err := newSnapMAC(key, nonce)
	if err != nil {
		return nil, root, err
	}
	tags = binary.LittleEndian.AppendUint64(tags, uint64(size))
	final := make([]byte, snapTag)
	m.tag(final, -1, tags)
	if subtle.ConstantTimeCompare(final, data[size-snapTag:]) != 1 {
		return nil, root, bad("its authentication tag does not verify: changed, or written under another key")
	}
	// Authenticated: the contents are what the core wrote.
	l, err := layout.Attach(blobs[:len(blobs)-1])
	if err != nil {
		return nil, root, bad("%v", err)
	}
	// The payouts are copied out of the mapping: plans outlive ledgers.
	payouts := make([]compensation.Payout, nPayouts)
	copy(payoutBytes(payouts), blobs[len(blobs)-1])
	st.Ledger = l
	if err := st.restoreExtensionWith(sm.Ext, sm.Payouts, payouts); err != nil {
		return nil, root, bad("%v", err)
	}
	return st, root, nil
}

// pruneSnapshots keeps the newest keep snapshots, and every snapshot taken
// before a halt or an incident.
func pruneSnapshots(dir string, keep int) error {
	fs, err := snapshotFiles(dir)
	if err != nil {
		return err
	}
	n := 0
	for _, f := range fs {
		if f.incident {
			continue
		}
		if n++; n > keep {
			if err := os.Remove(f.path(dir)); err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
		}
	}
	return nil
}
