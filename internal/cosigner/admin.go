package cosigner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"kinko/internal/withdraw"
)

// AdminSocket is the name, in the state directory, of the unix socket on
// which the co-signer is administered from its own host: its status, and
// lifting its halts. Only who can open the state directory can use it.
const AdminSocket = "admin.sock"

// Status is what the co-signer reports of itself.
type Status struct {
	Seq           uint64   `json:"seq"`
	Head          string   `json:"head"`
	Broken        string   `json:"broken,omitempty"`
	Halts         []Halt   `json:"halts"`
	Disagreements []string `json:"disagreements"`
	Signed        int      `json:"signed"`
	// Hour and Day are what was signed in the last hour and day, by asset:
	// what left, fees included, and the fees.
	Hour map[string]Usage `json:"hour"`
	Day  map[string]Usage `json:"day"`
	// Witness is the origin of the co-signer's witness key and
	// WitnessHead the size of the newest head it signed of its mirror.
	Witness     string `json:"witness"`
	WitnessHead uint64 `json:"witness_head"`
}

// Usage is what an asset used of its limits in a window.
type Usage struct {
	Leaving withdraw.Amount `json:"leaving"`
	Fees    withdraw.Amount `json:"fees"`
	Txs     uint64          `json:"txs"`
}

// Status returns the co-signer's status.
func (c *Cosigner) Status() Status {
	c.mu.Lock()
	seq, head := c.m.Head()
	st := Status{Seq: seq, Head: head.String(), Signed: len(c.txs), Hour: map[string]Usage{}, Day: map[string]Usage{}}
	if err := c.m.Broken(); err != nil {
		st.Broken = err.Error()
	}
	now := c.cfg.Now()
	for code := range c.policy.Limits {
		h, d := c.window(code, now.Add(-time.Hour)), c.window(code, now.Add(-24*time.Hour))
		st.Hour[code] = Usage{Leaving: h.asset, Fees: h.fee, Txs: h.tx}
		st.Day[code] = Usage{Leaving: d.asset, Fees: d.fee, Txs: d.tx}
	}
	c.mu.Unlock()
	st.Witness = c.w.Origin()
	if _, size, err := c.w.Newest(); err == nil {
		st.WitnessHead = size
	}
	st.Halts = c.Halts()
	st.Disagreements = c.Disagreements()
	return st
}

// LiftRequest is the body of POST /lift on the admin socket.
type LiftRequest struct {
	Asset  string `json:"asset"`
	By     string `json:"by"`
	Reason string `json:"reason"`
}

// AdminHandler serves the admin socket: GET /status, POST /lift.
func (c *Cosigner) AdminHandler(log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(c.Status())
	})
	mux.HandleFunc("POST /lift", func(w http.ResponseWriter, r *http.Request) {
		var req LiftRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || req.Asset == "" || req.By == "" || req.Reason == "" {
			http.Error(w, `want {"asset": code or "*", "by": name, "reason": text}`, http.StatusBadRequest)
			return
		}
		if err := c.Lift(strings.ToUpper(req.Asset), req.By, req.Reason); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		log.Warn("halt lifted on the co-signer's host", "asset", req.Asset, "by", req.By, "reason", req.Reason)
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// ListenAdmin listens on the admin socket in dir, readable only by its
// owner. A socket left by a killed co-signer is replaced.
func ListenAdmin(dir string) (net.Listener, error) {
	path := filepath.Join(dir, AdminSocket)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// AdminClient talks to a co-signer's admin socket in dir.
func AdminClient(dir string) *http.Client {
	path := filepath.Join(dir, AdminSocket)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}}
}

// AdminDo sends one request to the admin socket in dir and decodes a JSON
// answer into out (if not nil).
func AdminDo(dir, method, path string, body io.Reader, out any) error {
	req, err := http.NewRequest(method, "http://cosigner"+path, body)
	if err != nil {
		return err
	}
	res, err := AdminClient(dir).Do(req)
	if err != nil {
		return fmt.Errorf("cosigner: admin socket in %s: %w (is the co-signer running?)", dir, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode >= 300 {
		return fmt.Errorf("cosigner: %s", strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
