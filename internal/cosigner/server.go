package cosigner

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"kinko/internal/mtls"
	"kinko/internal/wallet"
	"kinko/internal/witness"
)

// Follower reads the core's journal stream and feeds the co-signer.
type Follower struct {
	URL   string // the core's base URL
	Token string // the stream token
	HTTP  *http.Client
	C     *Cosigner
	Log   *slog.Logger
	// HeadEvery is how often the core's signed head is checked against
	// the co-signer's mirror (default 5 s; negative: never).
	HeadEvery time.Duration
}

// Poll reads what the journal has after the co-signer's last entry, after
// checking that the core still serves that entry as the co-signer verified
// it, and ingests it. A shorter or different history, or a broken chain,
// halts the co-signer for good (until lifted on its host) with a critical
// alert.
func (f *Follower) Poll(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := f.C.pull(ctx, f.HTTP, f.URL, f.Token)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// DefaultHeadEvery is how often a follower checks the core's signed head.
const DefaultHeadEvery = 5 * time.Second

// Run polls until ctx ends, and checks the core's signed head against the
// co-signer's mirror every HeadEvery on a goroutine of its own (which ends
// with ctx, or at the first fork, which halts everything).
func (f *Follower) Run(ctx context.Context, every time.Duration) {
	if f.HeadEvery >= 0 {
		hevery := f.HeadEvery
		if hevery == 0 {
			hevery = DefaultHeadEvery
		}
		// The follower's transport: the same TLS roots as the stream.
		client := &http.Client{Timeout: 5 * time.Second}
		if f.HTTP != nil {
			client.Transport = f.HTTP.Transport
		}
		go witness.WatchCore(ctx, client, f.URL, f.C.m, hevery, f.C.Forked)
	}
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
// 403 with the reason; POST /cosign/safetx: a SafeTxBody in, a
// SafeTxAnswer out, 400 for a malformed body, 403 with the reason for a
// refusal; and the watcher's POST /halt (a HaltRequest: 204 halted, 409
// declined for a transaction it signed itself, 400 malformed). Mount it
// behind mutual TLS.
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
		var err error
		if req.Tx != "" {
			err = c.HaltFor(strings.ToUpper(req.Asset), req.Tx, "watcher", req.Reason)
		} else {
			err = c.Halt(strings.ToUpper(req.Asset), "watcher", req.Reason)
		}
		switch {
		case errors.Is(err, ErrSignedHere):
			http.Error(w, err.Error(), http.StatusConflict)
			return
		case errors.Is(err, ErrBadTxName):
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err != nil {
			log.Error("could not record a halt", "err", err)
			http.Error(w, "co-signer cannot record the halt", http.StatusServiceUnavailable)
			return
		}
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
		s, _ := wallet.Encode(p)
		log.Info("co-signed", "tx", p.UnsignedTx.TxHash(), "withdrawals", paid)
		io.WriteString(w, s)
	})
	mux.HandleFunc("POST /cosign/safetx", func(w http.ResponseWriter, r *http.Request) {
		if !peerIs(r, mtls.SignerName) {
			http.Error(w, "only the hot signer's certificate may ask for signatures", http.StatusForbidden)
			return
		}
		var body SafeTxBody
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			http.Error(w, "cosigner: malformed SafeTx request: "+err.Error(), http.StatusBadRequest)
			return
		}
		req, err := body.Request()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sig, err := c.SignSafeTx(r.Context(), req)
		if err != nil {
			log.Warn("refused to co-sign a SafeTx", "hash", req.Hash, "withdrawals", req.Withdrawals, "err", err)
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		log.Info("co-signed a SafeTx", "hash", sig.Hash, "withdrawals", sig.Withdrawals)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(SafeTxAnswer{Hash: sig.Hash.Hex(), Owner: sig.Signature.Owner.Hex(),
			Signature: "0x" + hex.EncodeToString(sig.Signature.RSV[:]), Withdrawals: sig.Withdrawals})
	})
	return mux
}

// HaltRequest is the body of POST /halt.
type HaltRequest struct {
	Asset  string `json:"asset"`
	Reason string `json:"reason"`
	// Tx, if set, names the transaction the halt is for (HaltFor): the
	// co-signer answers 409 Conflict, and does not halt, if it signed
	// that transaction itself.
	Tx string `json:"tx,omitempty"`
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

// pull is one request of the journal stream through the mirror.
func (c *Cosigner) pull(ctx context.Context, client *http.Client, url, token string) (int, error) {
	n, err := c.m.Pull(ctx, client, url, token, &c.mu, c.applied)
	if n > 0 {
		c.signHeads()
	}
	if err != nil {
		c.mu.Lock()
		if c.m.Broken() != nil {
			err = c.brokenHistory(err)
		}
		c.mu.Unlock()
	}
	return n, err
}
