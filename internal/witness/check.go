package witness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"kinko/internal/alert"
	"kinko/internal/journal"
	"kinko/internal/journal/tree"
)

// Pinned is a witness as operators pinned it on the core's host: where it
// serves its heads and the key that signs them.
type Pinned struct {
	URL string
	Key *tree.Verifier
}

// Refusal is why the core refuses to serve: a witness's head, signed with
// its pinned key, that the core's journal is shorter than or inconsistent
// with.
type Refusal struct {
	// Witness is the witness's URL, Origin its key's name.
	Witness, Origin string
	// Size is the size of the witness's head.
	Size uint64
	// Reason is what the journal's check against the head said.
	Reason string
}

// Error says which witness signed which head, and what the journal's check
// against it found.
func (r *Refusal) Error() string {
	return fmt.Sprintf("witness %s (%s) signed a head of %d entries that this journal contradicts: %s", r.Witness, r.Origin, r.Size, r.Reason)
}

// Checker is the core asking its witnesses: at start and every interval it
// fetches each pinned witness's newest head, checks the signature with the
// pinned key and the journal against the head. A contradicted history is
// a Refusal, kept until the core stops (a witness's heads only grow, so
// the contradiction does not go away); a witness that does not answer or
// serves a head that does not verify is only a warning: the core still
// serves, and the head is not trusted.
type Checker struct {
	Witnesses []Pinned
	Journal   *journal.Journal
	HTTP      *http.Client
	Log       *slog.Logger
	Alert     func(alert.Alert)
	Now       func() time.Time

	mu      sync.Mutex
	refusal *Refusal
	last    []Result
}

// Result is the last check of one witness.
type Result struct {
	Witness string `json:"witness"`
	Origin  string `json:"origin,omitempty"`
	Size    uint64 `json:"size,omitempty"`
	// OK: the journal holds the witness's newest head. Otherwise Error
	// says why (unreachable, not verifying, or contradicted).
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// inFlightWait bounds how long a head of an entry being committed (stored,
// its tree not yet updated) is waited for.
const inFlightWait = 2 * time.Second

// checkTimeout bounds one witness's answer.
const checkTimeout = 5 * time.Second

func (c *Checker) alert(sev alert.Severity, key, title, detail string) {
	if c.Log != nil {
		if sev == alert.Critical {
			c.Log.Error("ALERT "+title, "detail", detail)
		} else {
			c.Log.Warn(title, "detail", detail)
		}
	}
	if c.Alert != nil {
		now := time.Now
		if c.Now != nil {
			now = c.Now
		}
		c.Alert(alert.Alert{Key: key, Severity: sev, Title: title, Detail: detail, Time: now()})
	}
}

// Refusal returns why the core refuses to serve, or nil.
func (c *Checker) Refusal() *Refusal {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refusal
}

// Results returns the last check of each witness.
func (c *Checker) Results() []Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Result(nil), c.last...)
}

// Check asks every witness once and returns the refusal, if any. Once
// refused, it asks no more (the refusal stands until the core stops, and
// checking a contradicted journal scans it from its first entry).
func (c *Checker) Check(ctx context.Context) *Refusal {
	if r := c.Refusal(); r != nil {
		return r
	}
	client := c.HTTP
	if client == nil {
		client = &http.Client{Timeout: checkTimeout}
	}
	results := make([]Result, len(c.Witnesses))
	for i, p := range c.Witnesses {
		results[i] = c.checkOne(ctx, client, p)
	}
	c.mu.Lock()
	c.last = results
	r := c.refusal
	c.mu.Unlock()
	return r
}

func (c *Checker) checkOne(ctx context.Context, client *http.Client, p Pinned) Result {
	res := Result{Witness: p.URL, Origin: p.Key.Origin()}
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	note, err := FetchHead(cctx, client, p.URL)
	cancel()
	if err != nil {
		res.Error = "not answering: " + err.Error()
		c.alert(alert.Warning, "witness-unreachable:"+p.URL, "witness not answering; the core serves without its check", fmt.Sprintf("%s: %v", p.URL, err))
		return res
	}
	h, err := p.Key.Verify(note)
	if err != nil {
		res.Error = "head not trusted: " + err.Error()
		c.alert(alert.Warning, "witness-bad-head:"+p.URL, "witness serves a head that does not verify with its pinned key; not trusted", fmt.Sprintf("%s: %v", p.URL, err))
		return res
	}
	res.Size = h.Size
	if err := c.checkHead(ctx, h); err != nil {
		r := &Refusal{Witness: p.URL, Origin: h.Origin, Size: h.Size, Reason: err.Error()}
		res.Error = r.Error()
		c.mu.Lock()
		first := c.refusal == nil
		if first {
			c.refusal = r
		}
		c.mu.Unlock()
		if first {
			c.alert(alert.Critical, "witness-contradicts:"+p.URL, "the journal is not the history a witness signed: the core refuses to serve", r.Error())
		}
		return res
	}
	res.OK = true
	return res
}

// checkHead checks the journal against a verified head, waiting briefly
// for an entry that is stored and whose tree is being updated (the journal
// makes entries readable, then adds them to the tree; a witness may have
// pulled the entry in between).
func (c *Checker) checkHead(ctx context.Context, h tree.Head) error {
	deadline := time.Now().Add(inFlightWait)
	for {
		err := c.Journal.CheckHead(h)
		if err == nil || h.Size <= c.Journal.TreeHead().Size {
			return err
		}
		if _, gerr := c.Journal.Get(h.Size); gerr != nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Run checks every interval until ctx ends.
func (c *Checker) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.Check(ctx)
	}
}

// ErrUnpinned reports witness flags that do not pair.
var ErrUnpinned = errors.New("witness: each --witness needs its --witness-key, in the same order")

// PinAll pairs witness URLs with their verifier keys (the files' contents).
func PinAll(urls []string, keys []string) ([]Pinned, error) {
	if len(urls) != len(keys) {
		return nil, fmt.Errorf("%w: %d witnesses, %d keys", ErrUnpinned, len(urls), len(keys))
	}
	out := make([]Pinned, len(urls))
	for i := range urls {
		v, err := tree.NewVerifier(keys[i])
		if err != nil {
			return nil, fmt.Errorf("witness %s: key: %w", urls[i], err)
		}
		out[i] = Pinned{URL: urls[i], Key: v}
	}
	return out, nil
}
