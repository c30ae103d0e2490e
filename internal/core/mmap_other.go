//go:build !linux

package core

import (
	"fmt"
	"os"
)

// mapSnapshot reads the file f of size bytes into memory of its own, so
// that nothing written to the file later reaches what was authenticated.
func mapSnapshot(f *os.File, size int64) (data []byte, release func(), err error) {
	if size <= 0 || int64(int(size)) != size {
		return nil, nil, fmt.Errorf("snapshot: %d bytes", size)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, nil, fmt.Errorf("snapshot: read: %w", err)
	}
	return b, func() {}, nil
}

// snapshotMemory reads the whole file here; fill has nothing left to do.
func snapshotMemory(f *os.File, size int64) (data []byte, fill func([]byte) error, release func(), err error) {
	data, release, err = mapSnapshot(f, size)
	return data, func([]byte) error { return nil }, release, err
}
