package cosigner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"kinko/internal/mtls"
	"kinko/internal/stream"
	"kinko/internal/wallet"
)

// Follower reads the core's journal stream and feeds the co-signer.
type Follower struct {
	URL   string // the core's base URL
	Token string // the stream token
	HTTP  *http.Client
	C     *Cosigner
	Log   *slog.Logger
}

// Poll reads what the journal has after the co-signer's last entry and
// ingests it. A broken chain stops the co-signer for good.
func (f *Follower) Poll(ctx context.Context) (int, error) {
	return stream.Pull(ctx, f.HTTP, f.URL, f.Token, f.C.Seq()+1, f.C.Ingest)
}

// Run polls until ctx ends.
func (f *Follower) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := f.Poll(ctx); err != nil && ctx.Err() == nil {
			f.Log.Warn("journal stream", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Handler serves POST /cosign: a base64 PSBT in, the co-signed PSBT out, or
// 403 with the reason. Mount it behind mutual TLS.
func (c *Cosigner) Handler(log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /halt", func(w http.ResponseWriter, r *http.Request) {
		if !peerIs(r, mtls.WatcherName) {
			http.Error(w, "only the watcher's certificate may halt", http.StatusForbidden)
			return
		}
		var req HaltRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || req.Asset == "" || req.Reason == "" {
			http.Error(w, "want {\"asset\": code, \"reason\": text}", http.StatusBadRequest)
			return
		}
		c.Halt(strings.ToUpper(req.Asset), req.Reason)
		log.Error("HALTED by the watcher", "asset", req.Asset, "reason", req.Reason)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /cosign", func(w http.ResponseWriter, r *http.Request) {
		if !peerIs(r, mtls.SignerName) {
			http.Error(w, "only the hot signer's certificate may ask for signatures", http.StatusForbidden)
			return
		}
		p, err := wallet.Read(http.MaxBytesReader(w, r.Body, 4<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		paid, err := c.Sign(p)
		if err != nil {
			log.Warn("refused to co-sign", "tx", p.UnsignedTx.TxHash(), "err", err)
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		if err := c.persist(p.UnsignedTx.TxHash(), paid); err != nil {
			log.Error("could not record a signature", "err", err)
			http.Error(w, "co-signer cannot record what it signs", http.StatusServiceUnavailable)
			return
		}
		s, _ := wallet.Encode(p)
		log.Info("co-signed", "tx", p.UnsignedTx.TxHash(), "withdrawals", paid)
		io.WriteString(w, s)
	})
	return mux
}

// HaltRequest is the body of POST /halt.
type HaltRequest struct {
	Asset  string `json:"asset"`
	Reason string `json:"reason"`
}

// peerIs tells whether the request's client certificate (verified by the
// TLS layer against the CA) names who. Without TLS — a handler mounted
// in a test — there is no peer to check.
func peerIs(r *http.Request, who string) bool {
	if r.TLS == nil {
		return true
	}
	return len(r.TLS.PeerCertificates) > 0 && r.TLS.PeerCertificates[0].Subject.CommonName == who
}

// signedRecord is one line of the co-signer's log of what it signed.
type signedRecord struct {
	Time        time.Time `json:"time"`
	TxID        string    `json:"txid"`
	Withdrawals []string  `json:"withdrawals"`
}

// SetStateDir makes the co-signer keep a log of what it signs in dir and
// reloads it, so that a restart neither signs twice nor forgets the hour's
// velocity.
func (c *Cosigner) SetStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stateDir = dir
	b, err := os.ReadFile(filepath.Join(dir, "signed.log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" {
			continue
		}
		var r signedRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return fmt.Errorf("cosigner: signed.log: %w", err)
		}
		for _, id := range r.Withdrawals {
			c.signed[id] = true
		}
		c.restored = append(c.restored, r)
	}
	return nil
}

func (c *Cosigner) persist(txid [32]byte, paid []string) error {
	c.mu.Lock()
	dir := c.stateDir
	now := c.now()
	c.mu.Unlock()
	if dir == "" {
		return nil
	}
	b, _ := json.Marshal(signedRecord{Time: now, TxID: fmt.Sprintf("%x", txid), Withdrawals: paid})
	f, err := os.OpenFile(filepath.Join(dir, "signed.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
