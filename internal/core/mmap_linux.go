//go:build linux

package core

import (
	"fmt"
	"os"
	"syscall"
)

// mapSnapshot maps the snapshot file f of size bytes privately: its pages
// are the page cache's until written, when they are copied (so the file
// never changes). The mapping is populated at once, read-only, then made
// writable. release unmaps it.
func mapSnapshot(f *os.File, size int64) (data []byte, release func(), err error) {
	if size <= 0 || int64(int(size)) != size {
		return nil, nil, fmt.Errorf("snapshot: %d bytes", size)
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_PRIVATE|syscall.MAP_POPULATE)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot: map: %w", err)
	}
	if err := syscall.Mprotect(b, syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
		syscall.Munmap(b)
		return nil, nil, fmt.Errorf("snapshot: map: %w", err)
	}
	return b, func() { syscall.Munmap(b) }, nil
}
