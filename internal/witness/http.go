package witness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"kinko/internal/journal/tree"
)

// Bounds of the heads' routes.
const (
	// MaxPage bounds the heads of one GET /witness/heads answer.
	MaxPage = 1024
	// MaxFetch bounds the heads a client fetches from one witness: the
	// dense window and the sparse heads of 2^30 entries.
	MaxFetch = DenseHeads + 1<<20
	// maxPageBytes bounds one page's encoding.
	maxPageBytes = MaxPage*(tree.MaxNoteSize/64) + 4096
)

// HeadsPage is the answer of GET /witness/heads: heads of the witness
// (origin), signed notes in increasing size, and the size to ask from next
// (0 when there are no more).
type HeadsPage struct {
	Origin string   `json:"origin"`
	Heads  []string `json:"heads"`
	Next   uint64   `json:"next"`
}

// Handler serves the witness's heads, read-only:
//
//	GET /witness/head               the newest head, a signed note (text/plain)
//	GET /witness/heads?from=SIZE    HeadsPage, up to MaxPage heads from SIZE on
//
// Both are public: heads are signed, so whoever relays them can withhold
// them but not forge one.
func (w *Witness) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /witness/head", func(rw http.ResponseWriter, r *http.Request) {
		note, _, err := w.Newest()
		if err != nil {
			http.Error(rw, err.Error(), http.StatusServiceUnavailable)
			return
		}
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.Header().Set("Cache-Control", "no-store")
		rw.Write(note)
	})
	mux.HandleFunc("GET /witness/heads", func(rw http.ResponseWriter, r *http.Request) {
		from := uint64(1)
		if v := r.URL.Query().Get("from"); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n == 0 {
				http.Error(rw, "from must be a tree size >= 1", http.StatusBadRequest)
				return
			}
			from = n
		}
		notes, next, err := w.Heads(from, MaxPage)
		if err != nil {
			http.Error(rw, "cannot read the heads", http.StatusInternalServerError)
			return
		}
		p := HeadsPage{Origin: w.Origin(), Heads: make([]string, len(notes)), Next: next}
		for i, n := range notes {
			p.Heads[i] = string(n)
		}
		rw.Header().Set("Content-Type", "application/json")
		rw.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(rw).Encode(p)
	})
	return mux
}

// get fetches one route of a witness, bounded to max bytes.
func get(ctx context.Context, client *http.Client, base, path string, max int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("GET %s: the answer exceeds %d bytes", path, max)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, res.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

// FetchHead returns a witness's newest head as it serves it (not checked).
func FetchHead(ctx context.Context, client *http.Client, base string) ([]byte, error) {
	return get(ctx, client, base, "/witness/head", tree.MaxNoteSize)
}

// FetchHeads returns every head a witness serves from size from on, page
// by page (not checked), at most MaxFetch.
func FetchHeads(ctx context.Context, client *http.Client, base string, from uint64) ([][]byte, error) {
	var out [][]byte
	for {
		b, err := get(ctx, client, base, "/witness/heads?from="+url.QueryEscape(strconv.FormatUint(from, 10)), maxPageBytes)
		if err != nil {
			return nil, err
		}
		var p HeadsPage
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("witness %s: heads: %w", base, err)
		}
		for _, h := range p.Heads {
			out = append(out, []byte(h))
		}
		if len(out) > MaxFetch {
			return nil, fmt.Errorf("witness %s serves more than %d heads", base, MaxFetch)
		}
		if p.Next == 0 {
			return out, nil
		}
		if p.Next <= from || len(p.Heads) == 0 {
			return nil, fmt.Errorf("witness %s: page from %d says next %d", base, from, p.Next)
		}
		from = p.Next
	}
}

// ErrHeadsFile reports a file that holds no heads in a form kinko reads.
var ErrHeadsFile = errors.New("witness: not a file of heads")

// ParseHeadsFile reads heads saved from a witness: one or more HeadsPage
// JSON documents one after another (GET /witness/heads, page by page), or
// one signed head (GET /witness/head). The heads are not checked here.
func ParseHeadsFile(b []byte) ([][]byte, error) {
	t := bytes.TrimLeft(b, " \t\r\n")
	if len(t) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrHeadsFile)
	}
	if t[0] != '{' {
		if _, err := tree.ParseHead(b); err != nil {
			return nil, fmt.Errorf("%w: neither JSON pages of heads nor a signed head: %v", ErrHeadsFile, err)
		}
		return [][]byte{b}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.DisallowUnknownFields()
	var out [][]byte
	for {
		var p HeadsPage
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrHeadsFile, err)
		}
		for _, h := range p.Heads {
			out = append(out, []byte(h))
		}
		if len(out) > MaxFetch {
			return nil, fmt.Errorf("%w: more than %d heads", ErrHeadsFile, MaxFetch)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no heads in it", ErrHeadsFile)
	}
	return out, nil
}
