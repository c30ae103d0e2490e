package witness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"kinko/internal/journal/tree"
)

// ForkError reports a core whose signed head its witness's mirror
// contradicts: another root at a size the mirror holds, another time of
// that entry, or a newer head that does not extend the mirror's tree.
type ForkError struct {
	// Head is the core's signed head as it served it.
	Head     []byte
	Size     uint64
	CoreRoot tree.Hash
	// MirrorSize and MirrorRoot are the witness's own tree it compared.
	MirrorSize uint64
	MirrorRoot tree.Hash
	Reason     string
}

// Error says what the core signed and what the mirror holds instead.
func (e *ForkError) Error() string {
	return fmt.Sprintf("the core signed a head of %d entries (root %s) that this host's mirror contradicts: %s (the mirror's tree of %d entries has root %s)",
		e.Size, e.CoreRoot, e.Reason, e.MirrorSize, e.MirrorRoot)
}

// ErrFork is wrapped by ForkError.
var ErrFork = errors.New("witness: the core forked its history")

// Unwrap makes errors.Is(err, ErrFork) hold.
func (e *ForkError) Unwrap() error { return ErrFork }

// coreHead is the part of GET /v1/journal/head a witness reads.
type coreHead struct {
	SignedHead string `json:"signed_head"`
}

// CheckCore fetches the core's signed head (GET /v1/journal/head at base)
// and checks it against the mirror src: at a size the mirror holds, the
// same root and entry time; at a larger size, a consistency proof from the
// mirror's tree (GET /v1/journal/consistency). A contradiction is a
// *ForkError; a core that does not answer, or answers something that is
// not a head, only an error. The head's signature is not checked here: a
// head the witness contradicts is a fork whoever signed it, and a head that
// agrees is not trusted for anything.
func CheckCore(ctx context.Context, client *http.Client, base string, src Source) error {
	b, err := get(ctx, client, base, "/v1/journal/head", 2*tree.MaxNoteSize)
	if err != nil {
		return fmt.Errorf("witness: the core's head: %w", err)
	}
	var v coreHead
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("witness: the core's head: %w", err)
	}
	h, err := tree.ParseHead([]byte(v.SignedHead))
	if err != nil {
		return fmt.Errorf("witness: the core's head: %w", err)
	}
	mine := src.TreeHead()
	fork := func(size uint64, root tree.Hash, why string) error {
		return &ForkError{Head: []byte(v.SignedHead), Size: h.Size, CoreRoot: h.Root, MirrorSize: size, MirrorRoot: root, Reason: why}
	}
	if h.Size <= mine.Size {
		root, err := src.RootAt(h.Size)
		if err != nil {
			return fmt.Errorf("witness: the mirror's root at %d: %w", h.Size, err)
		}
		if root != h.Root {
			return fork(h.Size, root, "another root at that size")
		}
		if h.Size > 0 {
			t, err := src.EntryTime(h.Size)
			if err != nil {
				return fmt.Errorf("witness: the mirror's entry %d: %w", h.Size, err)
			}
			if t != h.Time {
				return fork(h.Size, root, fmt.Sprintf("its entry %d has time %d, the head says %d", h.Size, t, h.Time))
			}
		}
		return nil
	}
	if mine.Size == 0 {
		return nil // every tree extends the empty one
	}
	q := url.Values{"from": {strconv.FormatUint(mine.Size, 10)}, "to": {strconv.FormatUint(h.Size, 10)}}
	b, err = get(ctx, client, base, "/v1/journal/consistency?"+q.Encode(), 1<<20)
	if err != nil {
		return fmt.Errorf("witness: the core's consistency proof: %w", err)
	}
	var p tree.ConsistencyProof
	if err := json.Unmarshal(b, &p); err != nil || p.From != mine.Size || p.To != h.Size {
		return fmt.Errorf("witness: the core's consistency proof from %d to %d does not parse (%v)", mine.Size, h.Size, err)
	}
	if err := tree.VerifyConsistency(p.From, p.To, p.Path, mine.Root, h.Root); err != nil {
		return fork(mine.Size, mine.Root, "it does not extend the mirror's tree: "+err.Error())
	}
	return nil
}

// WatchCore checks the core's signed head every interval until ctx ends,
// calling onFork (once) with the first *ForkError; a core that does not
// answer is left to the journal stream's own alerts.
func WatchCore(ctx context.Context, client *http.Client, base string, src Source, every time.Duration, onFork func(*ForkError)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		err := CheckCore(cctx, client, base, src)
		cancel()
		var fe *ForkError
		if errors.As(err, &fe) {
			onFork(fe)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
