package core

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"kinko/internal/journal/tree"
	"kinko/internal/secrets"
)

// HeadKeyName is the file name of the key that signs the journal's tree
// heads: made at the core's first start, 0600, in the core's secrets
// directory (internal/secrets) beside the API's tokens, outside the data
// directory.
const HeadKeyName = "journal-head.key"

// HeadKeyPath returns the head key's file of data directory dir with
// secrets directory sec (empty: the default, DATA.secrets); a data
// directory made before still has it in DATA/secrets, read from there.
func HeadKeyPath(sec, dir string) (string, error) {
	d, err := secrets.Open(sec, dir, nil)
	if err != nil {
		return "", err
	}
	return d.File(HeadKeyName), nil
}

// LoadHeadSigner returns the signer of the tree heads of the journal in
// data directory dir, its key in the default secrets directory.
func LoadHeadSigner(dir string) (*tree.Signer, error) { return LoadHeadSignerIn("", dir) }

// LoadHeadSignerIn returns the signer of the tree heads of the journal in
// data directory dir, making its key (and the log's origin,
// "kinko.journal/" and 16 random hex digits) in secrets directory sec if
// there is none yet.
func LoadHeadSignerIn(sec, dir string) (*tree.Signer, error) {
	path, err := HeadKeyPath(sec, dir)
	if err != nil {
		return nil, fmt.Errorf("core: head key: %w", err)
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if b, err = createHeadKey(path); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("core: head key: %w", err)
	}
	s, err := tree.NewSigner(string(b))
	if err != nil {
		return nil, fmt.Errorf("core: head key %s: %w", path, err)
	}
	return s, nil
}

func createHeadKey(path string) ([]byte, error) {
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("core: head key: %w", err)
	}
	skey, err := tree.GenerateKey("kinko.journal/" + hex.EncodeToString(id[:]))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("core: head key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		// Made by another process meanwhile: use that one.
		return os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("core: head key: %w", err)
	}
	if _, err := f.WriteString(skey + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("core: head key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("core: head key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("core: head key: %w", err)
	}
	return []byte(skey), nil
}

// SignedHead signs the journal's tree head now: its size, root and the
// newest entry's time, as a C2SP checkpoint. A head already signed at this
// size is given again (ed25519 signatures are deterministic: the same);
// callers must not change the note.
func (c *Core) SignedHead() ([]byte, tree.Head, error) {
	h := c.j.TreeHead()
	h.Origin = c.heads.Origin()
	c.headMu.Lock()
	defer c.headMu.Unlock()
	if c.lastHead == h && c.lastNote != nil {
		return c.lastNote, h, nil
	}
	note, err := c.heads.Sign(h)
	if err != nil {
		return nil, tree.Head{}, err
	}
	c.lastHead, c.lastNote = h, note
	return note, h, nil
}

// HeadVerifierKey returns the public key that verifies the core's heads, in
// the signed-note verifier key form.
func (c *Core) HeadVerifierKey() string { return c.heads.VerifierKey() }
