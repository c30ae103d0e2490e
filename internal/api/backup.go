package api

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
)

// StoreBackupName is the directory BackupStore keeps its copy in, under
// the backup directory: a Pebble database that serves as DATA/api when
// copied back.
const StoreBackupName = "api"

// BackupStore writes a consistent copy of the API's store — the
// customers' credential records the journal commits to (sealed with the
// secrets directory's key) and the idempotency records — to
// dir/api, while the core serves. The journal comes back from a
// witness's mirror after a lost disk, but a customer whose record is not
// in the store cannot log in or step up: the store is what this copy
// keeps. The new copy replaces the previous one only once it is complete
// (dir/api.new, then renamed), so a failed or interrupted backup leaves
// the last good one.
func (s *Server) BackupStore(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("api: store backup: %w", err)
	}
	cur := filepath.Join(dir, StoreBackupName)
	tmp, old := cur+".new", cur+".old"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("api: store backup: %w", err)
	}
	if err := s.idem.db.Checkpoint(tmp, pebble.WithFlushedWAL()); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("api: store backup: %w", err)
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("api: store backup: %w", err)
	}
	if err := os.Rename(cur, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("api: store backup: %w", err)
	}
	if err := os.Rename(tmp, cur); err != nil {
		return fmt.Errorf("api: store backup: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("api: store backup: %w", err)
	}
	return os.RemoveAll(old)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
