// Package journaltest damages a closed journal the way a failing disk or a
// tampering operator would, for tests of verification and start-up.
package journaltest

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"kinko/internal/journal"
)

func withDB(dir string, fn func(db *pebble.DB) error) error {
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		return fmt.Errorf("journaltest: open %s: %w", dir, err)
	}
	if err := fn(db); err != nil {
		db.Close()
		return err
	}
	return db.Close()
}

// FlipBit flips one bit of entry seq's stored bytes.
func FlipBit(dir string, seq uint64, bit int) error {
	return withDB(dir, func(db *pebble.DB) error {
		v, c, err := db.Get(journal.Key(seq))
		if err != nil {
			return fmt.Errorf("journaltest: get %d: %w", seq, err)
		}
		b := append([]byte(nil), v...)
		c.Close()
		b[(bit/8)%len(b)] ^= 1 << (bit % 8)
		return db.Set(journal.Key(seq), b, pebble.Sync)
	})
}

// Replace overwrites entry seq with the given bytes.
func Replace(dir string, seq uint64, b []byte) error {
	return withDB(dir, func(db *pebble.DB) error { return db.Set(journal.Key(seq), b, pebble.Sync) })
}

// Delete removes entry seq: a journal with a truncated middle.
func Delete(dir string, seq uint64) error {
	return withDB(dir, func(db *pebble.DB) error { return db.Delete(journal.Key(seq), pebble.Sync) })
}
