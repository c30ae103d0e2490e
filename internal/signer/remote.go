package signer

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil/psbt"

	"kinko/internal/wallet"
)

// Remote is the co-signer in its own process, reached over loopback HTTPS
// with mutual TLS.
type Remote struct {
	URL  string
	HTTP *http.Client
}

// NewRemote returns a client for the co-signer at url with the signer's TLS
// config (mtls.Client).
func NewRemote(url string, tlsCfg *tls.Config) *Remote {
	return &Remote{URL: url, HTTP: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}}
}

// CoSign sends the PSBT and returns the co-signed one, or the refusal.
func (r *Remote) CoSign(ctx context.Context, p *psbt.Packet) (*psbt.Packet, error) {
	s, err := wallet.Encode(p)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", r.URL+"/cosign", strings.NewReader(s))
	if err != nil {
		return nil, err
	}
	res, err := r.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if res.StatusCode != 200 {
		return nil, fmt.Errorf("co-signer: %s: %s", res.Status, bytes.TrimSpace(b))
	}
	return wallet.Read(bytes.NewReader(b))
}
