//go:build !linux

package core

import (
	"fmt"
	"os"
)

// mapSnapshot reads the snapshot file f of size bytes into memory (where
// there is no private mapping to use).
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
