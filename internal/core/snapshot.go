package core

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Snapshots are files snapshots/<seq>.snap in the data directory: the
// state's encoding followed by its SHA-256. They are a cache of the journal,
// never a source of truth: start checks a snapshot's seq and entry hash
// against the journal before it trusts it, and a bad one is passed over.

const snapDir = "snapshots"

// snapshotPath returns the path of the snapshot at seq.
func snapshotPath(dir string, seq uint64) string {
	return filepath.Join(dir, snapDir, fmt.Sprintf("%020d.snap", seq))
}

// writeSnapshot writes s durably: a temporary file, fsync, rename, fsync of
// the directory.
func writeSnapshot(dir string, s *State) error {
	d := filepath.Join(dir, snapDir)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	f, err := os.CreateTemp(d, "tmp-*")
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	if err := s.Encode(io.MultiWriter(f, h)); err != nil {
		f.Close()
		return fmt.Errorf("snapshot: write: %w", err)
	}
	if _, err := f.Write(h.Sum(nil)); err != nil {
		f.Close()
		return fmt.Errorf("snapshot: write: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("snapshot: sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := os.Rename(f.Name(), snapshotPath(dir, s.seq)); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	df, err := os.Open(d)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer df.Close()
	return df.Sync()
}

// snapshotSeqs lists the snapshots in dir, newest first.
func snapshotSeqs(dir string) ([]uint64, error) {
	names, err := os.ReadDir(filepath.Join(dir, snapDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	var seqs []uint64
	for _, n := range names {
		base, ok := strings.CutSuffix(n.Name(), ".snap")
		if !ok {
			continue
		}
		if v, err := strconv.ParseUint(base, 10, 64); err == nil {
			seqs = append(seqs, v)
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] > seqs[j] })
	return seqs, nil
}

// ErrSnapshotCorrupt reports a snapshot file whose checksum or contents are
// wrong.
var ErrSnapshotCorrupt = errors.New("snapshot corrupt")

// readSnapshot reads and checks the snapshot at seq.
func readSnapshot(dir string, seq uint64) (*State, error) {
	b, err := os.ReadFile(snapshotPath(dir, seq))
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if len(b) < sha256.Size {
		return nil, fmt.Errorf("%w: %d: too short", ErrSnapshotCorrupt, seq)
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("%w: %d: checksum", ErrSnapshotCorrupt, seq)
	}
	s, err := DecodeState(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %d: %v", ErrSnapshotCorrupt, seq, err)
	}
	if s.seq != seq {
		return nil, fmt.Errorf("%w: file %d holds seq %d", ErrSnapshotCorrupt, seq, s.seq)
	}
	return s, nil
}

// pruneSnapshots keeps the newest keep snapshots.
func pruneSnapshots(dir string, keep int) error {
	seqs, err := snapshotSeqs(dir)
	if err != nil {
		return err
	}
	for i := keep; i < len(seqs); i++ {
		if err := os.Remove(snapshotPath(dir, seqs[i])); err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
	}
	return nil
}
