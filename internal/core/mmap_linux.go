//go:build linux

package core

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"syscall"
)

// mapSnapshot reads the snapshot file f of size bytes into anonymous
// memory of its own, outside Go's heap, in parallel. A mapping of the
// file itself, even a private one, would show later writes to the file in
// every page the core has not written: someone who can write the data
// directory could then change the state after it was authenticated. The
// copy is what is authenticated and used. release unmaps it.
func mapSnapshot(f *os.File, size int64) (data []byte, release func(), err error) {
	if size <= 0 || int64(int(size)) != size {
		return nil, nil, fmt.Errorf("snapshot: %d bytes", size)
	}
	b, err := syscall.Mmap(-1, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot: map: %w", err)
	}
	release = func() { syscall.Munmap(b) }
	// Pieces of 8 MiB, read by one reader a core.
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
				end := min(off+piece, size)
				if _, err := f.ReadAt(b[off:end], off); err != nil {
					if err == io.EOF {
						err = io.ErrUnexpectedEOF // the file shrank under us
					}
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
		return nil, nil, fmt.Errorf("snapshot: read: %w", rerr)
	}
	return b, release, nil
}
