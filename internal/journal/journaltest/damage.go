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

// Truncate removes the newest n entries: a journal cut short.
func Truncate(dir string, n int) error {
	return withDB(dir, func(db *pebble.DB) error {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{'j'}, UpperBound: []byte{'k'}})
		if err != nil {
			return err
		}
		var keys [][]byte
		for valid := it.Last(); valid && len(keys) < n; valid = it.Prev() {
			keys = append(keys, append([]byte(nil), it.Key()...))
		}
		if err := it.Close(); err != nil {
			return err
		}
		b := db.NewBatch()
		defer b.Close()
		for _, k := range keys {
			if err := b.Delete(k, nil); err != nil {
				return err
			}
		}
		return db.Apply(b, pebble.Sync)
	})
}

// Rewrite rewrites every entry from seq from to the newest, as an operator
// who holds the core's host would: change gives each entry's new payload
// (from its seq, kind and old payload), and every entry from from on is
// sealed again, so that the hash chain is whole and every hash is right.
// The Merkle tree is left as it was (see DropTree).
func Rewrite(dir string, from uint64, change func(seq uint64, kind uint16, payload []byte) []byte) error {
	return withDB(dir, func(db *pebble.DB) error {
		var prev journal.Hash
		if from > 1 {
			v, c, err := db.Get(journal.Key(from - 1))
			if err != nil {
				return fmt.Errorf("journaltest: get %d: %w", from-1, err)
			}
			e, err := journal.Decode(v)
			prev = e.Hash
			c.Close()
			if err != nil {
				return err
			}
		}
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: journal.Key(from), UpperBound: []byte{'k'}})
		if err != nil {
			return err
		}
		b := db.NewBatch()
		defer b.Close()
		for valid := it.First(); valid; valid = it.Next() {
			e, err := journal.Decode(append([]byte(nil), it.Value()...))
			if err != nil {
				it.Close()
				return err
			}
			p := change(e.Seq, e.Kind, e.Payload)
			buf := make([]byte, journal.EncodedSize(len(p)))
			ne := journal.Seal(buf, prev, e.Seq, e.Time, e.Kind, p)
			if err := b.Set(journal.Key(e.Seq), buf, nil); err != nil {
				it.Close()
				return err
			}
			prev = ne.Hash
		}
		if err := it.Close(); err != nil {
			return err
		}
		return db.Apply(b, pebble.Sync)
	})
}

// DropTree deletes the journal's Merkle tree (its tiles and its marker),
// so that the next open builds it again from the entries: what an operator
// who rewrote the entries does to make the tree agree with them.
func DropTree(dir string) error {
	return withDB(dir, func(db *pebble.DB) error {
		if err := db.DeleteRange([]byte("m"), []byte("mu"), pebble.Sync); err != nil {
			return err
		}
		return db.DeleteRange([]byte{'t'}, []byte{'u'}, pebble.Sync)
	})
}
