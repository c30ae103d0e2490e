package journal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// OpenSnapshot opens the journal in dir for reading: the journal itself
// when no process holds it, or else (a running core keeps its journal
// locked) a copy of it as it is now, made in a temporary directory and
// removed on Close. The copy's table files are hard links where the file
// system allows (they never change once written), the rest is copied; a
// copy caught in the middle of the core's compaction fails to open (Open
// checks the newest entry's hash; a replay checks every link it reads) and
// is made again, a few times. Nothing is ever written to dir.
// A caller appends nothing to what OpenSnapshot opens.
func OpenSnapshot(dir string) (*Journal, error) {
	j, err := Open(dir, Options{})
	if err == nil || !locked(dir, err) {
		return j, err
	}
	var last error
	for range 5 {
		var j *Journal
		if j, last = openCopy(dir); last == nil {
			return j, nil
		}
	}
	return nil, fmt.Errorf("journal: %s is in use and no consistent copy could be read: %w", dir, last)
}

// locked tells whether err is Open's failure to take dir's lock.
func locked(dir string, err error) bool {
	if _, serr := os.Stat(filepath.Join(dir, "LOCK")); serr != nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "lock") || strings.Contains(msg, "resource temporarily unavailable")
}

func openCopy(dir string) (*Journal, error) {
	tmp, err := os.MkdirTemp("", "kinko-journal-")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Journal, error) { os.RemoveAll(tmp); return nil, err }
	names, err := os.ReadDir(dir)
	if err != nil {
		return fail(err)
	}
	// The manifest and its markers first: the tables they name exist
	// now; a table deleted before it is linked makes this copy fail.
	order := func(n string) int {
		switch {
		case strings.HasPrefix(n, "MANIFEST") || strings.HasPrefix(n, "marker.") || n == "CURRENT":
			return 0
		case strings.HasSuffix(n, ".sst") || strings.HasSuffix(n, ".blob"):
			return 1
		}
		return 2
	}
	for pass := 0; pass < 3; pass++ {
		for _, e := range names {
			n := e.Name()
			if e.IsDir() || n == "LOCK" || order(n) != pass {
				continue
			}
			src, dst := filepath.Join(dir, n), filepath.Join(tmp, n)
			if pass == 1 {
				if err := os.Link(src, dst); err == nil {
					continue
				}
			}
			if err := copyFile(src, dst); err != nil {
				if errors.Is(err, os.ErrNotExist) && pass == 2 {
					continue // a log the core recycled meanwhile
				}
				return fail(err)
			}
		}
	}
	j, err := Open(tmp, Options{})
	if err != nil {
		return fail(err)
	}
	j.cleanup = func() { os.RemoveAll(tmp) }
	return j, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
