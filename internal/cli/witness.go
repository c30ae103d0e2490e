package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/alert"
	"kinko/internal/api"
	"kinko/internal/journal"
	"kinko/internal/witness"
)

// witnessServeFlags are the flags of a role that serves its witness heads
// (the co-signer, the watcher).
type witnessServeFlags struct {
	listen, cert, key string
	headEvery         time.Duration
}

func (f *witnessServeFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "witness-listen", "", "address to serve this host's signed heads of its mirror on, read-only (GET /witness/head, /witness/heads?from=SIZE), e.g. 127.0.0.1:8445; heads are signed and public, so plain HTTP is safe; none: not served (still signed and kept)")
	fl.StringVar(&f.cert, "witness-tls-cert", "", "with --witness-listen: serve TLS with this certificate (PEM)")
	fl.StringVar(&f.key, "witness-tls-key", "", "with --witness-tls-cert: its private key (PEM)")
	fl.DurationVar(&f.headEvery, "head-every", 5*time.Second, "how often the core's signed head is checked against this host's mirror (0: never)")
}

// serve starts the witness listener, if asked; stop closes it.
func (f *witnessServeFlags) serve(out io.Writer, w *witness.Witness, log *slog.Logger) (stop func(), err error) {
	if f.listen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return nil, fmt.Errorf("--witness-listen: %w", err)
	}
	scheme := "http"
	if f.cert != "" || f.key != "" {
		kp, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("--witness-tls-cert/--witness-tls-key: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	srv := &http.Server{Handler: w.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) // ends when closed
	fmt.Fprintf(out, "witness heads at %s://%s/witness/head (key %s)\n", scheme, ln.Addr(), w.VerifierKey())
	logListen(log, "witness", ln.Addr(), scheme)
	log.Info("serving witness heads", "addr", ln.Addr().String(), "origin", w.Origin())
	return func() { srv.Close() }, nil
}

// every returns the head-check interval as the follower takes it.
func (f *witnessServeFlags) every() time.Duration {
	if f.headEvery <= 0 {
		return -1
	}
	return f.headEvery
}

// newWitnessKeyCmd is `kinko <role> witness-key --state DIR`: the public key
// of the role's witness, made at its first start (or now), for operators to
// pin on the core's host.
func newWitnessKeyCmd(role, defaultState string) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "witness-key",
		Short: "print the public key of this host's witness (made at the first start), for operators to pin on the core's host (--witness-key)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			s, err := witness.LoadSigner(dir, role)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), s.VerifierKey())
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "state", defaultState, "the "+role+"'s state directory")
	return cmd
}

// coreWitnessFlags are the core's pinned witnesses.
type coreWitnessFlags struct {
	urls, keys []string
	every      time.Duration
	ca         string
}

func (f *coreWitnessFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.urls, "witness", nil, "a witness's URL (the co-signer's or the watcher's --witness-listen), repeatable: its newest head is checked against the journal at start and every --witness-every; a head the journal contradicts stops the core serving")
	fl.StringArrayVar(&f.keys, "witness-key", nil, "the file with a witness's public key (kinko cosigner|watch witness-key), one per --witness, in the same order")
	fl.DurationVar(&f.every, "witness-every", 30*time.Second, "how often the witnesses are asked")
	fl.StringVar(&f.ca, "witness-ca", "", "CA certificates (PEM) of witnesses served over TLS (default: the system's)")
}

// start pins the witnesses, asks each once, and keeps asking in the
// background until ctx ends. With none, it returns nil.
func (f *coreWitnessFlags) start(ctx context.Context, out io.Writer, j *journal.Journal, log *slog.Logger, send func(alert.Alert)) (*witness.Checker, error) {
	if len(f.urls) == 0 && len(f.keys) == 0 {
		return nil, nil
	}
	var keys []string
	for _, path := range f.keys {
		b, err := readSmall(path)
		if err != nil {
			return nil, fmt.Errorf("--witness-key: %w", err)
		}
		keys = append(keys, string(b))
	}
	pinned, err := witness.PinAll(f.urls, keys)
	if err != nil {
		return nil, err
	}
	if f.every <= 0 {
		return nil, errors.New("--witness-every must be positive")
	}
	client := &http.Client{Timeout: 5 * time.Second}
	if f.ca != "" {
		pem, err := readSmall(f.ca)
		if err != nil {
			return nil, fmt.Errorf("--witness-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--witness-ca %s: no certificate in it", f.ca)
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	c := &witness.Checker{Witnesses: pinned, Journal: j, HTTP: client, Log: log, Alert: send}
	if r := c.Check(ctx); r != nil {
		fmt.Fprintf(out, "REFUSING to serve: %v\n", r)
	}
	for _, res := range c.Results() {
		switch {
		case res.OK:
			fmt.Fprintf(out, "witness %s (%s): holds its head of %d entries\n", res.Witness, res.Origin, res.Size)
		default:
			fmt.Fprintf(out, "witness %s (%s): %s\n", res.Witness, res.Origin, res.Error)
		}
	}
	go c.Run(ctx, f.every) // ends with ctx
	return c, nil
}

// refuse is the API's view of the checker's refusal.
func refuse(c *witness.Checker) func() *api.Refusal {
	if c == nil {
		return nil
	}
	return func() *api.Refusal {
		r := c.Refusal()
		if r == nil {
			return nil
		}
		return &api.Refusal{Witness: r.Witness, Origin: r.Origin, Size: r.Size, Detail: r.Error()}
	}
}
