//go:build linux

package core

import (
	"fmt"
	"os"
	"syscall"
)

// mapSnapshot maps the snapshot file f of size bytes privately: its pages
// are the page cache's until written, when they are copied (so the file
// never changes). The mapping is not populated at once: the pages are
// mapped as the authentication reads them, on both cores (populating
// first was one core's work of 70-100 ms for a 1.5 GB snapshot before the
// authentication began; a read fault maps the page cache's page, as the
// populating did, and a write copies it). release unmaps it.
func mapSnapshot(f *os.File, size int64) (data []byte, release func(), err error) {
	if size <= 0 || int64(int(size)) != size {
		return nil, nil, fmt.Errorf("snapshot: %d bytes", size)
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot: map: %w", err)
	}
	return b, func() { syscall.Munmap(b) }, nil
}
