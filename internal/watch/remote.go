package watch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"kinko/internal/core"
	"kinko/internal/mirror"
)

// Core is the core as the watcher reaches it: in the same process
// (*core.Core) or in another (Remote).
type Core interface {
	Read(fn func(s *core.State))
	Submit(ctx context.Context, at time.Time, cmd core.Command) (core.Outcome, error)
}

// Remote is the core of another process, for `kinko watch`: the watcher
// keeps its own replica of the state from the journal stream, checking
// every entry, in a mirror of the journal on its own host (internal/mirror:
// a restart resumes from it, even with the core down, and a shorter or
// rewritten journal is refused), and journals its commands over the API
// with its own token (POST /v1/watch/commands), which accepts only the
// watcher's kinds.
type Remote struct {
	URL         string // the core's base URL
	StreamToken string
	Token       string // the watcher's token
	HTTP        *http.Client
	// OnSync, if set, is called after a sync that read new entries, with
	// them durable in the mirror (the watcher's witness signs their heads).
	OnSync func()

	mu     sync.RWMutex // guards the mirror's state for readers
	syncMu sync.Mutex   // one sync at a time
	m      *mirror.Mirror
	recent map[uint64]core.Outcome
}

// ErrHistory reports a core whose journal the watcher can no longer
// follow: a broken chain, or a history shorter than or different from what
// its mirror verified.
var ErrHistory = errors.New("watch: the core's journal is not the history this watcher verified")

// WatchCommand is the body of POST /v1/watch/commands.
type WatchCommand struct {
	Kind    string          `json:"kind"`
	Payload json.RawMessage `json:"payload"`
}

// WatchAccepted is its answer: the entry the command became.
type WatchAccepted struct {
	Seq uint64 `json:"seq"`
}

// WatcherKinds are the commands a watcher journals.
var WatcherKinds = map[string]core.Kind{}

func init() {
	for _, k := range []core.Kind{core.KindCreditDeposits, core.KindReverseDeposits, core.KindHalt, core.KindWatchCheckpoint,
		core.KindConfirmCeremony, core.KindOpenIncident, core.KindConfirmBatch, core.KindFailBatch, core.KindFundGasAccount} {
		WatcherKinds[k.String()] = k
	}
}

// NewRemote returns a remote core whose replica is kept in the mirror m
// (opened on the watcher's host); Sync brings it up to date.
func NewRemote(url, streamToken, token string, client *http.Client, m *mirror.Mirror) *Remote {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &Remote{URL: url, StreamToken: streamToken, Token: token, HTTP: client, m: m, recent: map[uint64]core.Outcome{}}
}

// Read runs fn on the replica's state.
func (r *Remote) Read(fn func(s *core.State)) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	fn(r.m.State())
}

// Broken returns why the replica stopped following the core (a broken
// chain, or a history shorter than or different from what it verified).
func (r *Remote) Broken() error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.m.Broken()
}

// recentOutcomes bounds the outcomes kept for Submit to pick up.
const recentOutcomes = 256

// Sync reads the journal's new entries into the replica until it has
// them all. A broken chain, or a journal shorter than or different from
// what the mirror verified, stops the replica for good (ErrHistory).
func (r *Remote) Sync(ctx context.Context) error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	read := 0
	defer func() {
		if read > 0 && r.OnSync != nil {
			r.OnSync()
		}
	}()
	for {
		n, err := r.m.Pull(ctx, r.HTTP, r.URL, r.StreamToken, &r.mu, func(a mirror.Applied) error {
			r.recent[a.Entry.Seq] = a.Outcome
			delete(r.recent, a.Entry.Seq-recentOutcomes)
			return nil
		})
		read += n
		if err != nil {
			if r.Broken() != nil {
				return fmt.Errorf("%w: %w", ErrHistory, err)
			}
			return fmt.Errorf("watch: follow the core: %w", err)
		}
		if n == 0 {
			return nil
		}
	}
}

// Submit journals cmd through the core's API, then follows the journal to
// the entry it became and returns the replica's outcome of it: the
// watcher reads its own state, never the core's word for it.
func (r *Remote) Submit(ctx context.Context, _ time.Time, cmd core.Command) (core.Outcome, error) {
	body, err := json.Marshal(WatchCommand{Kind: cmd.Kind().String(), Payload: cmd.AppendPayload(nil)})
	if err != nil {
		return core.Outcome{}, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", r.URL+"/v1/watch/commands", bytes.NewReader(body))
	if err != nil {
		return core.Outcome{}, err
	}
	req.Header.Set("Authorization", "Bearer "+r.Token)
	req.Header.Set("Content-Type", "application/json")
	res, err := r.HTTP.Do(req)
	if err != nil {
		return core.Outcome{}, fmt.Errorf("watch: core: %w", err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		return core.Outcome{}, fmt.Errorf("watch: core: %s: %s", res.Status, bytes.TrimSpace(data))
	}
	var acc WatchAccepted
	if err := json.Unmarshal(data, &acc); err != nil || acc.Seq == 0 {
		return core.Outcome{}, fmt.Errorf("watch: core: answer %q", data)
	}
	if err := r.Sync(ctx); err != nil {
		return core.Outcome{}, err
	}
	r.mu.RLock()
	o, ok := r.recent[acc.Seq]
	r.mu.RUnlock()
	if !ok {
		return core.Outcome{}, errors.New("watch: the core's journal does not hold the entry it acknowledged")
	}
	return o, nil
}
