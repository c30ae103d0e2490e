// Package fsutil writes files whole: under a temporary name, then renamed
// into place, so that a reader (or a crash) sees the old file or the new
// one, never a part.
package fsutil

import (
	"os"
	"path/filepath"
)

// WriteFile writes b (mode 0600) to path through a temporary file
// .<base>.tmp in tmpDir ("" for path's own directory; it must be on the
// same file system), synced before the rename when sync is set. A failed
// write leaves path as it was and removes the temporary file.
func WriteFile(path, tmpDir string, b []byte, sync bool) error {
	if tmpDir == "" {
		tmpDir = filepath.Dir(path)
	}
	tmp := filepath.Join(tmpDir, "."+filepath.Base(path)+".tmp")
	err := write(tmp, b, sync)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func write(name string, b []byte, sync bool) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
