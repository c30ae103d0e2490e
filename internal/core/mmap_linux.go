//go:build linux

package core

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"syscall"
	"unsafe"
)

// A mapping of the file itself, even a private one, would show later
// writes to the file in every page the core has not written: someone who
// can write the data directory could then change a state after it was
// authenticated. So snapshots and checkpoints are read into anonymous
// memory of the core's own, outside Go's heap, and what is authenticated
// and used is that copy.

// privateMemory returns size bytes of anonymous memory and its release.
func privateMemory(size int64) ([]byte, func(), error) {
	if size <= 0 || int64(int(size)) != size {
		return nil, nil, fmt.Errorf("snapshot: %d bytes", size)
	}
	b, err := syscall.Mmap(-1, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot: map: %w", err)
	}
	return b, func() { syscall.Munmap(b) }, nil
}

// snapshotMemory returns memory for the file f of size bytes and fill,
// which reads into a part of that memory the file's bytes at the same
// offset: the caller fills each part just before it authenticates it, so
// that the bytes are read once from the file and once, still in cache,
// by the authentication.
func snapshotMemory(f *os.File, size int64) (data []byte, fill func([]byte) error, release func(), err error) {
	data, release, err = privateMemory(size)
	if err != nil {
		return nil, nil, nil, err
	}
	base := uintptr(unsafe.Pointer(&data[0]))
	fill = func(b []byte) error {
		if len(b) == 0 {
			return nil
		}
		off := int64(uintptr(unsafe.Pointer(&b[0])) - base)
		if _, err := f.ReadAt(b, off); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // the file shrank under us
			}
			return fmt.Errorf("snapshot: read: %w", err)
		}
		return nil
	}
	return data, fill, release, nil
}

// mapSnapshot reads the file f of size bytes into memory of its own, in
// pieces of 8 MiB read by one reader a core. release unmaps it.
func mapSnapshot(f *os.File, size int64) (data []byte, release func(), err error) {
	data, fill, release, err := snapshotMemory(f, size)
	if err != nil {
		return nil, nil, err
	}
	const piece = 8 << 20
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next int64
		rerr error
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				off := next
				next += piece
				failed := rerr != nil
				mu.Unlock()
				if off >= size || failed {
					return
				}
				if err := fill(data[off:min(off+piece, size)]); err != nil {
					mu.Lock()
					rerr = err
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if rerr != nil {
		release()
		return nil, nil, rerr
	}
	return data, release, nil
}
