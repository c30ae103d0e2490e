// Package secrets says where a host's key files live: the TOTP sealing
// key, the tokens the other roles present, the key that signs the
// journal's tree heads. They live in a secrets directory of their own,
// outside the data directory (`--secrets DIR`; by default DATA.secrets,
// the data directory's sibling), so that a copy or backup of the data
// directory carries no key. A data directory made before keeps its keys
// in DATA/secrets: they are still read from there, with a warning, until
// the operator moves them.
package secrets

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// LegacyDir is where data directories made before kept their keys,
// under the data directory.
const LegacyDir = "secrets"

// Default returns the secrets directory of a data directory when none is
// named: its sibling DATA.secrets.
func Default(dataDir string) string {
	return filepath.Clean(dataDir) + ".secrets"
}

// Dir is a host's secrets directory.
type Dir struct {
	// Path is the secrets directory; Legacy the old one inside the data
	// directory, read when a key is only there.
	Path, Legacy string
	log          *slog.Logger
	warned       *sync.Map
}

// Open returns the secrets directory dir (Default(dataDir) when empty)
// of the data directory dataDir. It refuses a secrets directory inside
// the data directory: a backup of the data would carry the keys.
func Open(dir, dataDir string, log *slog.Logger) (Dir, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if dir == "" {
		dir = Default(dataDir)
	}
	d := Dir{Path: filepath.Clean(dir), log: log, warned: &sync.Map{}}
	if dataDir != "" {
		d.Legacy = filepath.Join(dataDir, LegacyDir)
		if inside(d.Path, dataDir) {
			return Dir{}, fmt.Errorf("secrets: %s is inside the data directory %s: a copy of the data would carry the keys; name a directory outside it", d.Path, dataDir)
		}
	}
	return d, nil
}

func inside(p, dir string) bool {
	ap, err1 := filepath.Abs(p)
	ad, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(ad, ap)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// File returns the path of key file name: in the secrets directory, or,
// when it is only in the legacy directory, there (with a warning, once).
// A file that is in neither is made in the secrets directory.
func (d Dir) File(name string) string {
	p := filepath.Join(d.Path, name)
	if _, err := os.Stat(p); err == nil || d.Legacy == "" {
		return p
	}
	old := filepath.Join(d.Legacy, name)
	if _, err := os.Stat(old); err == nil {
		if _, done := d.warned.LoadOrStore(name, true); !done {
			d.log.Warn("a host key is read from inside the data directory, where a backup of the data carries it: move it to the secrets directory",
				"key", old, "move_to", p)
		}
		return old
	}
	return p
}

// Legacies returns the key files still in the legacy directory.
func (d Dir) Legacies() []string {
	if d.Legacy == "" {
		return nil
	}
	es, err := os.ReadDir(d.Legacy)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range es {
		if !e.IsDir() {
			out = append(out, filepath.Join(d.Legacy, e.Name()))
		}
	}
	return out
}

// Ensure makes the secrets directory (0700) if it is missing.
func (d Dir) Ensure() error {
	if err := os.MkdirAll(d.Path, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("secrets: %w", err)
	}
	return nil
}
