package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
)

// roleFlags are what every long-running role (core, dev, signer,
// co-signer, watcher) shares: its configuration file and its logs.
type roleFlags struct {
	config    string
	logLevel  string
	logFormat string
}

// add adds --config, --log-level and --log-format to a role's command,
// and loads the configuration file before the command checks its
// required flags and runs.
func (r *roleFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&r.config, "config", "", "configuration file (TOML, or JSON if it ends in .json): every key one of this command's flags; flags given here override it (docs/deploy.md)")
	f.StringVar(&r.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&r.logFormat, "log-format", "text", "log format: text or json")
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		if r.config != "" {
			if err := loadConfig(c, r.config); err != nil {
				return err
			}
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}

// logger returns the role's logger on w, with the configured level and
// format, tagged with the role.
func (r *roleFlags) logger(w io.Writer, role string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(r.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: debug, info, warn or error", r.logLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch r.logFormat {
	case "text", "":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("--log-format %q: text or json", r.logFormat)
	}
	l := slog.New(h)
	if role != "" {
		l = l.With("sub", role)
	}
	return l, nil
}

// logListen logs a listener's line: what it serves, where, and whether
// it is only reachable from this machine.
func logListen(log *slog.Logger, what string, addr net.Addr, scheme string) {
	log.Info("listening", "listener", what, "addr", addr.String(), "scheme", scheme, "loopback", isLoopback(addr))
}

// stopClock records when a role's context ended (its SIGINT or
// SIGTERM): the role's stop line says how long it took from there.
type stopClock struct {
	ctx   context.Context
	at    atomic.Int64
	taken chan struct{} // closed once at is set
}

// newStopClock starts a clock that reads when ctx ends.
func newStopClock(ctx context.Context) *stopClock {
	c := &stopClock{ctx: ctx, taken: make(chan struct{})}
	context.AfterFunc(ctx, func() { c.at.Store(time.Now().UnixNano()); close(c.taken) })
	return c
}

// line prints the role's stop line, if its context ended: every role
// prints one when it ends on a signal. A role that stopped before the
// clock's own goroutine ran still says it.
func (c *stopClock) line(w io.Writer, role string) {
	if c.ctx.Err() == nil {
		return
	}
	<-c.taken
	fmt.Fprintf(w, "kinko %s stopped in %v\n", role, time.Since(time.Unix(0, c.at.Load())).Round(time.Millisecond))
}

// tlsRoots reads the CA certificates of caFile (PEM), or nil for the
// system's roots when caFile is empty.
func tlsRoots(caFile string) (*x509.CertPool, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := readSmall(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificate in it", caFile)
	}
	return pool, nil
}

// coreHTTP returns the client a role or command reaches the core's API
// with: https:// URLs are checked against caFile's certificates (the
// private CA of `kinko tls init`), or the system's roots without it.
func coreHTTP(coreURL, caFile string, timeout time.Duration) (*http.Client, error) {
	pool, err := tlsRoots(caFile)
	if err != nil {
		return nil, fmt.Errorf("--core-ca: %w", err)
	}
	if caFile != "" && !strings.HasPrefix(coreURL, "https://") {
		return nil, fmt.Errorf("--core-ca is for an https:// core; --core is %s", coreURL)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}
