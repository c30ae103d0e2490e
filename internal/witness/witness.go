// Package witness makes the co-signer and the watcher witnesses of the
// core's journal, and the core a log that asks its witnesses before it
// serves.
//
// A witness keeps, on its own host, a mirror of the journal holding only
// entries it verified itself (internal/mirror). The mirror is a
// journal.Journal with its own Merkle tree, so the witness computes the
// root of any size it holds without trusting the core. After each pull it
// signs the head of its mirror at every new size (size, root from its own
// tree, the time of the entry at that size) with a key of its own, in the
// tree package's note format under its own origin
// ("kinko.witness/<role>/<16 hex digits>"), keeps every head durably
// (retention: Keep) and serves them read-only: GET /witness/head and GET
// /witness/heads?from=SIZE. Heads are public (hashes and sizes only) and
// signed: whoever relays them can withhold or delay them, never forge one,
// so plain HTTP is as safe as TLS for them.
//
// The core (Checker) fetches each pinned witness's newest head, checks the
// signature with the key pinned on its host and its own journal against it
// (journal.CheckHead): a head it is shorter than or inconsistent with means
// a history the witness contradicts, and the core refuses to serve.
//
// A witness also checks the core's own signed head (CheckCore) against its
// mirror: a core that signs a head its mirror contradicts is a fork.
package witness

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"kinko/internal/journal/tree"
)

// Files of a witness in its role's state directory.
const (
	// KeyFile is the witness's signing key (signed-note private key form),
	// made at the role's first start, mode 0600.
	KeyFile = "witness.key"
	// HeadsDir is the Pebble DB of the heads it signed.
	HeadsDir = "witness"
)

// OriginPrefix starts every witness's origin (and key name).
const OriginPrefix = "kinko.witness/"

// LoadSigner returns the signer of the witness heads of a role whose state
// directory is dir, making its key (origin "kinko.witness/<role>/" and 16
// random hex digits) if there is none yet.
func LoadSigner(dir, role string) (*tree.Signer, error) {
	path := filepath.Join(dir, KeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b, err = createKey(path, role)
	}
	if err != nil {
		return nil, fmt.Errorf("witness: key: %w", err)
	}
	s, err := tree.NewSigner(string(b))
	if err != nil {
		return nil, fmt.Errorf("witness: key %s: %w", path, err)
	}
	return s, nil
}

func createKey(path, role string) ([]byte, error) {
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	skey, err := tree.GenerateKey(OriginPrefix + role + "/" + hex.EncodeToString(id[:]))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return os.ReadFile(path) // made by another process meanwhile
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(skey + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return []byte(skey), f.Close()
}

// Source is the witness's own mirror of the journal: what it verified and
// keeps durably. Its reads may run concurrently with the mirror's writer.
type Source interface {
	// TreeHead is the mirror's tree now (Origin empty): only entries
	// durably kept.
	TreeHead() tree.Head
	// RootAt is the root of the mirror's tree of the first size entries.
	RootAt(size uint64) (tree.Hash, error)
	// EntryTime is the time of the mirror's entry seq.
	EntryTime(seq uint64) (int64, error)
}

// Witness signs and keeps the heads of one mirror.
type Witness struct {
	signer *tree.Signer
	store  *store
	src    Source
	mu     sync.Mutex // one Sign at a time
}

// signChunk bounds the heads of one write.
const signChunk = 4096

// Open opens the witness of a role (its key and heads in the state
// directory dir) over its mirror src, and signs the heads of every size the
// mirror holds and the witness has not signed yet (a restart after a crash
// between the two).
func Open(dir, role string, src Source, noSync bool) (*Witness, error) {
	s, err := LoadSigner(dir, role)
	if err != nil {
		return nil, err
	}
	st, err := openStore(filepath.Join(dir, HeadsDir), noSync)
	if err != nil {
		return nil, err
	}
	w := &Witness{signer: s, store: st, src: src}
	if err := w.Sign(); err != nil {
		st.close()
		return nil, err
	}
	return w, nil
}

// Close closes the heads' store.
func (w *Witness) Close() error { return w.store.close() }

// Origin is the witness's origin, its key's name.
func (w *Witness) Origin() string { return w.signer.Origin() }

// VerifierKey is the witness's public key, for operators to pin on the
// core's host and auditors to check its heads with.
func (w *Witness) VerifierKey() string { return w.signer.VerifierKey() }

// Sign signs the head of every size the mirror gained since the newest
// head (those retention keeps) and stores them durably. A mirror shorter
// than the heads signed is an error: this host's own record is damaged.
func (w *Witness) Sign() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, have := w.store.newestHead()
	th := w.src.TreeHead()
	if th.Size < have {
		return fmt.Errorf("witness: the mirror holds %d entries but heads of %d were signed", th.Size, have)
	}
	var batch []signedHead
	for size := have + 1; size <= th.Size; size++ {
		if !Keep(size, th.Size) {
			// Skip to the next size kept: a multiple of SparseEvery or
			// the dense window.
			next := (size/SparseEvery + 1) * SparseEvery
			if th.Size >= DenseHeads {
				next = min(next, th.Size-DenseHeads+1)
			}
			size = next - 1
			continue
		}
		h := tree.Head{Origin: w.signer.Origin(), Size: size}
		if size == th.Size {
			h.Root, h.Time = th.Root, th.Time
		} else {
			var err error
			if h.Root, err = w.src.RootAt(size); err != nil {
				return fmt.Errorf("witness: root of %d: %w", size, err)
			}
			if h.Time, err = w.src.EntryTime(size); err != nil {
				return fmt.Errorf("witness: entry %d: %w", size, err)
			}
		}
		note, err := w.signer.Sign(h)
		if err != nil {
			return err
		}
		batch = append(batch, signedHead{size, note})
		if len(batch) == signChunk {
			if err := w.store.put(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return w.store.put(batch)
}

// Newest returns the newest head signed (a signed note) and its size, or
// ErrNoHead.
func (w *Witness) Newest() ([]byte, uint64, error) {
	note, size := w.store.newestHead()
	if note == nil {
		return nil, 0, ErrNoHead
	}
	return note, size, nil
}

// Heads returns up to limit heads from size from on, and the size to ask
// from next (0: no more).
func (w *Witness) Heads(from uint64, limit int) ([][]byte, uint64, error) {
	return w.store.from(from, limit)
}

// Count returns how many heads are kept.
func (w *Witness) Count() (int, error) { return w.store.count() }
