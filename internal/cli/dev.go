package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ethereum/go-ethereum/common"
	"github.com/spf13/cobra"

	"kinko/internal/alert"
	"kinko/internal/api"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/core"
	"kinko/internal/cosigner"
	"kinko/internal/demo"
	"kinko/internal/ledger"
	"kinko/internal/metrics"
	"kinko/internal/operators"
	"kinko/internal/passkey"
	"kinko/internal/secrets"
	"kinko/internal/watch"
)

// serveOptions are the flags of the roles that run the core.
type serveOptions struct {
	dir             string
	secrets         string
	addr            string
	tlsCert, tlsKey string
	snapshotEvery   uint64
	checkInvariants bool
	seed            bool
	chain           bool
	eth             bool
	coolDown        time.Duration
	readyAge        time.Duration
	readyBlocks     int32
	readyNodeAge    time.Duration
	accessLog       string
	auditLog        string
	backupDir       string
	backupEvery     time.Duration
	alerts          alertFlags
	witnesses       coreWitnessFlags
	role            roleFlags
	mail            mailFlags
	publicURL       string
	signUpPerMinute int
	loginPerMinute  int
	stepUpPerMinute int
	yen             yenFlags
	verifyAtStart   bool
}

func (o *serveOptions) flags(cmd *cobra.Command, addr string) {
	dataFlag(cmd, &o.dir)
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", addr, "listen address of the API, the console and /metrics (loopback by default; any other address needs --tls-cert)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM; kinko tls init makes core.pem)")
	f.StringVar(&o.tlsKey, "tls-key", "", "with --tls-cert: its private key (PEM; core.key)")
	f.Uint64Var(&o.snapshotEvery, "snapshot-every", core.DefaultSnapshotEvery, "entries between snapshots")
	f.BoolVar(&o.checkInvariants, "check-invariants", false, "check every ledger invariant after every apply (slow)")
	f.BoolVar(&o.verifyAtStart, "verify-at-start", false, "verify the whole journal before serving (by default the core serves from its newest snapshot and verifies the journal meanwhile, stopping if it does not verify)")
	f.StringVar(&o.secrets, "secrets", "", "the host's secrets directory: TOTP sealing key, tokens, the journal head key (default DATA.secrets, outside the data directory; keys still in DATA/secrets are read there with a warning)")
	f.StringVar(&o.publicURL, "public-url", "", "the API's address as customers reach it, for the freeze links of notices (default SCHEME://ADDR)")
	f.IntVar(&o.signUpPerMinute, "signup-per-minute", 0, "sign-ups a minute from one address (default 3, a burst of 5)")
	f.IntVar(&o.loginPerMinute, "login-per-minute", 0, "customer logins a minute from one address (default 20)")
	f.IntVar(&o.stepUpPerMinute, "stepup-per-minute", 0, "second-factor step-ups a minute from one address, across its customers (default 30); a customer's own and a session's limits stay")
	f.DurationVar(&o.readyAge, "ready-watcher-age", DefaultReadyWatcherAge, "/readyz fails when an asset with wallets has had no watcher checkpoint journaled for this long (0: not checked)")
	f.DurationVar(&o.readyNodeAge, "ready-node-age", 0, "/readyz fails when the node's tip the watcher reports has not moved for this long: the node may be cut off from the network (e.g. 2h on mainnet; 0: not checked)")
	f.Int32Var(&o.readyBlocks, "ready-blocks", DefaultReadyBlocks, "/readyz fails when the watcher's checkpoint is more than this many blocks behind the node's tip it reported (-1: not checked)")
	f.StringVar(&o.accessLog, "access-log", "", "file the access log is appended to (default: the log)")
	f.StringVar(&o.auditLog, "audit-log", "", "file the audit log of journaled commands is appended to (default: the log)")
	f.StringVar(&o.backupDir, "backup-dir", "", "keep a consistent copy of the API's store (customers' sealed credential records, idempotency records) in DIR/api, on another disk: what a restore takes with the journal from a witness (docs/deploy.md)")
	f.DurationVar(&o.backupEvery, "backup-every", 5*time.Minute, "with --backup-dir: how often the copy is taken (and once more at a stop)")
	o.alerts.add(cmd)
	o.witnesses.add(cmd)
	o.mail.add(cmd)
	o.yen.add(cmd)
	o.role.add(cmd)
}

// logTo returns log, or a logger of the same level and format appending
// to path (0600) when path is set; close it when done.
func (o *serveOptions) logTo(path string, log *slog.Logger, sub string) (*slog.Logger, func(), error) {
	if path == "" {
		return log.With("sub", sub), func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	l, err := o.role.logger(f, sub)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return l, func() { f.Close() }, nil
}

// mailFlags configure the SMTP client that sends customers' notices.
type mailFlags struct {
	addr, from, user, passwordFile string
	requireTLS                     bool
}

func (m *mailFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&m.addr, "smtp", "", "SMTP server (host:port) that notices are sent through; none: notices only in the API")
	cmd.Flags().StringVar(&m.from, "smtp-from", "kinko@localhost", "sender address of notices")
	cmd.Flags().StringVar(&m.user, "smtp-user", "", "SMTP user (PLAIN, over TLS)")
	cmd.Flags().StringVar(&m.passwordFile, "smtp-password-file", "", "file with the SMTP password")
	cmd.Flags().BoolVar(&m.requireTLS, "smtp-require-tls", false, "refuse an SMTP server without STARTTLS")
}

func (m *mailFlags) config() (api.MailConfig, error) {
	c := api.MailConfig{Addr: m.addr, From: m.from, Username: m.user, RequireTLS: m.requireTLS}
	if m.passwordFile != "" {
		b, err := readSmall(m.passwordFile)
		if err != nil {
			return c, fmt.Errorf("--smtp-password-file: %w", err)
		}
		c.Password = strings.TrimSpace(string(b))
	}
	return c, nil
}

func newDevCmd() *cobra.Command {
	o := &serveOptions{seed: true}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "run every role in one process on 127.0.0.1, with demo data",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return serve(cmd, o) },
	}
	o.flags(cmd, "127.0.0.1:8080")
	cmd.Flags().BoolVar(&o.chain, "btc", true, "start a btcd regtest node with the demo wallets")
	cmd.Flags().BoolVar(&o.eth, "eth", true, "start a geth --dev node with the Safe contracts, the demo's cold and hot Safes and the Ether watchers (off, with a note, where geth or the Safe contracts are missing)")
	cmd.AddCommand(newDevPayCmd(), newDevMineCmd())
	cmd.Flags().DurationVar(&o.coolDown, "cool-down", demo.CoolDown, "cool-down of new intent keys and addresses (the core's rules at the first start; the co-signer's by its clock)")
	return cmd
}

func newCoreCmd() *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "core",
		Short: "run the core: journal, state machine and HTTP API",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return serve(cmd, o) },
	}
	o.flags(cmd, "127.0.0.1:8080")
	return cmd
}

// serve starts the core and its HTTP API and runs until the context ends.
// On a failed start it stops what started, in reverse.
func serve(cmd *cobra.Command, o *serveOptions) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	// stopping is when a stop began; said once every deferred stop ran.
	var stopping time.Time
	defer func() {
		if !stopping.IsZero() {
			fmt.Fprintf(out, "kinko stopped in %v\n", time.Since(stopping).Round(time.Millisecond))
		}
	}()
	log, err := o.role.logger(cmd.ErrOrStderr(), "")
	if err != nil {
		return err
	}
	accessLogger, closeAccess, err := o.logTo(o.accessLog, log, "access")
	if err != nil {
		return fmt.Errorf("--access-log: %w", err)
	}
	defer closeAccess()
	auditLogger, closeAudit, err := o.logTo(o.auditLog, log, "audit")
	if err != nil {
		return fmt.Errorf("--audit-log: %w", err)
	}
	defer closeAudit()
	var tlsCfg *tls.Config
	if o.tlsCert != "" || o.tlsKey != "" {
		kp, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}
	}
	core.TuneGC()
	mail, err := o.mail.config()
	if err != nil {
		return err
	}
	sec, err := secrets.Open(o.secrets, o.dir, log)
	if err != nil {
		return err
	}
	for _, old := range sec.Legacies() {
		log.Warn("a host key is inside the data directory, where a backup of the data carries it: move it to the secrets directory", "key", old, "secrets", sec.Path)
	}
	// The readiness follows the audit records from the first entry on.
	var ready atomic.Pointer[readiness]
	audit := auditLog(auditLogger)
	bar := newProgress(cmd.ErrOrStderr())
	// What an applied entry found wrong (a compensation plan that left
	// the customer side short) goes to the alert sinks (which log it)
	// once they run.
	var alertTo atomic.Pointer[func(alert.Alert)]
	c, err := core.Open(ctx, core.Config{Dir: o.dir, SecretsDir: sec.Path, SnapshotEvery: o.snapshotEvery, VerifyAtStart: o.verifyAtStart, CheckInvariants: o.checkInvariants, Logger: log.With("sub", "core"),
		Audit: func(r core.AuditRecord) {
			audit(r)
			if rd := ready.Load(); rd != nil {
				rd.audit(r)
			}
		},
		Alert: func(a alert.Alert) {
			if f := alertTo.Load(); f != nil {
				(*f)(a)
			}
		},
		Progress: func(done, total uint64) { bar.set("replaying the journal", done, total) }})
	bar.finish()
	if err != nil {
		return fmt.Errorf("core refuses to start: %w", err)
	}
	defer c.Close()
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", o.addr, err)
	}
	loopback := isLoopback(ln.Addr())
	if !loopback && tlsCfg == nil {
		ln.Close()
		return fmt.Errorf("listen %s: an address other than loopback is served only over TLS (--tls-cert, --tls-key: kinko tls init makes them)", o.addr)
	}
	scheme := "http"
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
		scheme = "https"
	}
	send, hook, err := o.alerts.start(log.With("sub", "alert"))
	if err != nil {
		ln.Close()
		return err
	}
	alertTo.Store(&send)
	if hook != nil {
		defer hook.Stop()
	}
	// The witnesses pinned on this host are asked before anything is
	// served: a history they contradict is not served.
	checker, err := o.witnesses.start(ctx, out, c.Journal(), log.With("sub", "witness"), send)
	if err != nil {
		ln.Close()
		return err
	}
	rd := newReadiness(c, o.dir, checker, o.readyAge, o.readyBlocks, o.readyNodeAge)
	ready.Store(rd)
	m := metrics.New(c)
	m.Watcher, m.Ready = rd.lags, rd.reasons
	public := o.publicURL
	if public == "" {
		public = scheme + "://" + ln.Addr().String()
	}
	limits := api.Limits{}
	if o.stepUpPerMinute > 0 {
		limits.StepUpAddr = api.PerMinute(o.stepUpPerMinute)
	}
	if o.signUpPerMinute > 0 {
		limits.SignUpAddr = api.PerMinute(o.signUpPerMinute)
		limits.SignUpAccount = api.PerMinute(o.signUpPerMinute)
	}
	h, err := api.New(api.Config{Core: c, DataDir: o.dir, SecretsDir: sec.Path, Logger: log.With("sub", "api"), InsecureCookies: o.seed && loopback && tlsCfg == nil, Metrics: m,
		Mail: mail, PublicURL: public, Limits: limits, LoginRate: o.loginPerMinute, Refuse: refuse(checker), Ready: rd.reasons})
	if err != nil {
		ln.Close()
		return err
	}
	defer h.Close()
	if o.seed && o.yen.drop != "" {
		ln.Close()
		return errors.New("kinko dev runs its own bank and payment-provider simulators: --yen-drop and the other --yen flags are kinko core's")
	}
	yenConn, stopYen, err := o.yen.start(ctx, c, log.With("sub", "yen"))
	if err != nil {
		ln.Close()
		return err
	}
	defer stopYen()
	if yenConn != nil {
		h.SetYen(yenConn)
	}
	// The dev's yen: the bank and provider simulators beside the core,
	// and the connector between them.
	var dy *devYen
	if o.seed {
		if dy, err = startDevYen(ctx, c, o.dir, sec.Path, log); err != nil {
			ln.Close()
			return fmt.Errorf("dev yen: %w", err)
		}
		defer dy.Stop()
		h.SetYen(dy.conn)
	}
	var logins []demo.Person
	var team *operators.Team
	if o.seed {
		// The demo's operators sign with software credentials it keeps in
		// the data directory (dev only). The console's relying party is
		// localhost: WebAuthn needs a domain, not an address.
		port := ln.Addr().(*net.TCPAddr).Port
		rp := passkey.RP{ID: "localhost", Origins: []string{fmt.Sprintf("http://localhost:%d", port), fmt.Sprintf("http://127.0.0.1:%d", port)}}
		if team, err = demo.Team(o.dir, rp); err != nil {
			ln.Close()
			return err
		}
		if head, _, _ := c.Journal().Head(); head == 0 {
			if logins, err = demo.Seed(ctx, c, h, time.Now(), o.chain, o.coolDown, team, o.dir, dy.bank); err != nil {
				ln.Close()
				return err
			}
		}
		// The demo approves, with two of its admins, any credential a
		// demo operator enrols in the console. Ends with ctx.
		go demo.AutoApprove(ctx, c, team, log.With("sub", "demo"))
	}
	var chain *demo.Chain
	var signers *demo.Signers
	// The watchers tell the dev's co-signer directly, as they tell a
	// co-signer of their own host over mutual TLS.
	var cs atomic.Pointer[cosigner.Cosigner]
	var ethd *demo.Eth
	if o.seed && o.eth {
		start := time.Now()
		fmt.Fprintln(out, "starting a geth --dev node (go tool geth), the Safe contracts and the Ether watchers...")
		onExec := func(_ ledger.AssetID, _ common.Hash, why string) {
			if c := cs.Load(); c != nil {
				c.Halt("ETH", "watcher", why)
			}
		}
		say := func(f string, a ...any) { fmt.Fprintf(out, "  "+f+"\n", a...) }
		ethd, err = demo.StartEth(ctx, c, o.dir, team, demo.EthOptions{Logger: log.With("sub", "watch"), Alert: send, OnUnexplained: onExec}, say)
		switch {
		case errors.Is(err, demo.ErrEthUnavailable):
			fmt.Fprintf(out, "Ethereum is off in this dev: %v\n  everything else runs; start kinko dev again once it is there (or --eth=false to say nothing).\n", err)
			ethd = nil
		case err != nil:
			ln.Close()
			return fmt.Errorf("demo ethereum: %w", err)
		default:
			defer ethd.Stop()
			h.SetSafeArtifacts(ethd.Artifacts)
			log.Info("ethereum dev node started", "rpc", ethd.Node.HTTPURL(), "took", time.Since(start).Round(time.Millisecond))
		}
	} else if art, err := safe.LoadInstalled(); err == nil {
		// kinko core: Ether deposit addresses where the Safe contracts are
		// installed (a 503 that says so where not).
		h.SetSafeArtifacts(art)
	}
	if o.seed && o.chain {
		fmt.Fprintln(out, "starting a btcd regtest node (go tool btcd) and the demo wallets...")
		onOutflow := func(_ ledger.AssetID, txid chainhash.Hash, why string) {
			if c := cs.Load(); c != nil {
				if err := c.HaltFor("BTC", txid.String(), "watcher", why); err != nil {
					log.Warn("co-signer not halted", "tx", txid, "err", err)
				}
			}
		}
		if chain, err = demo.StartChain(ctx, c, o.dir, watch.DepositConfig{Logger: log.With("sub", "watch"), Alert: send, Detected: m.Detected, OnUnexplained: onOutflow}, team); err != nil {
			ln.Close()
			return fmt.Errorf("demo chain: %w", err)
		}
		defer chain.Stop()
		if signers, err = demo.StartSigners(ctx, c, chain, o.dir, o.coolDown, send, log, &cs, ethd); err != nil {
			ln.Close()
			return fmt.Errorf("demo signers: %w", err)
		}
		defer signers.Stop()
		h.SetPending(chain.Pending)
		m.Mismatch = chain.Watcher().Differences
		h.SetReconciliation(chain.Watcher().Differences)
	}
	var handler http.Handler = h
	if chain != nil || ethd != nil {
		tok, err := devDrillToken(sec)
		if err != nil {
			ln.Close()
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/", h)
		if chain != nil {
			// Drills run inside the dev, on its exchange (kinko drill --dev).
			mux.HandleFunc("POST /dev/drill/{name}", devDrillHandler(c, chain, signers, o.dir, tok, team, log.With("sub", "drill")))
			devChainRoutes(mux, chain, tok)
		}
		if ethd != nil {
			devEthRoutes(mux, ethd, tok)
		}
		handler = mux
	}
	if o.backupDir != "" {
		if o.backupEvery <= 0 {
			ln.Close()
			return fmt.Errorf("--backup-every %v: it must be positive", o.backupEvery)
		}
		if err := backupStore(h, o.backupDir, log); err != nil {
			ln.Close()
			return err
		}
		// Ends with ctx; the last copy is taken after the API stops.
		go func() {
			t := time.NewTicker(o.backupEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if err := backupStore(h, o.backupDir, log); err != nil {
						send(alert.Alert{Key: alertStoreBackup, Severity: alert.Warning, Title: "the API store's backup failed", Detail: err.Error(), Time: time.Now()})
					}
				}
			}
		}()
	}
	handler = accessLog(handler, accessLogger, m, h.Who)
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.With("sub", "http").Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	// The server goroutine exits when Shutdown is called below.
	go func() { errc <- srv.Serve(ln) }()
	logListen(log, "api", ln.Addr(), scheme)
	// The journal's head, not the state's hash: hashing the state's whole
	// encoding takes seconds at millions of customers (kinko state hash
	// prints it).
	seq, hash, _ := c.Journal().Head()
	abs, err := filepath.Abs(o.dir)
	if err != nil {
		abs = o.dir
	}
	console := ln.Addr().String()
	if t, ok := ln.Addr().(*net.TCPAddr); ok && t.IP.IsLoopback() {
		console = fmt.Sprintf("localhost:%d", t.Port)
	}
	fmt.Fprintf(out, "kinko is running\n  data      %s\n  secrets   %s\n  journal   %d entries, head %s\n  console   %s://%s/console/login\n  status    %s://%s/status\n  api       %s://%s/v1/openapi.json\n  health    %s://%s/healthz\n  ready     %s://%s/readyz\n  metrics   %s://%s/metrics\n",
		abs, sec.Path, seq, hash, scheme, console, scheme, ln.Addr(), scheme, ln.Addr(), scheme, ln.Addr(), scheme, ln.Addr(), scheme, ln.Addr())
	printLogins(out, logins, console)
	if dy != nil {
		printDevYen(out, c, dy, abs, scheme+"://"+ln.Addr().String())
	}
	var founded bool
	c.Read(func(st *core.State) { founded = st.People.Bootstrapped() })
	if !founded {
		fmt.Fprintf(out, "\nNo operators yet: stop the core and found them on this host (docs/deploy.md):\n  kinko init --data %s --rp-id DOMAIN --origin https://DOMAIN --name A --name B --name C --asset 2:BTC:8:chain\n  (or, on a journal with its assets: kinko operators bootstrap --data %s --rp-id DOMAIN --origin https://DOMAIN --name A --name B --name C)\n", abs, abs)
	}
	if chain != nil {
		cfg := chain.Node.Config()
		fmt.Fprintf(out, "\nBitcoin regtest node: RPC %s (user %s, password %s, no TLS)\n  wallets: see the console's Reserves page; demo key files in %s (passphrase %q)\n",
			cfg.Host, cfg.User, cfg.Pass, chain.KeyDir, demo.KeyPassphrase)
		fmt.Fprintf(out, "  pay an address from this node: kinko dev pay --data %s --dev http://%s --address ADDR --amount SATOSHI; mine: kinko dev mine --data %s --dev http://%s (%d blocks credit a deposit)\n",
			o.dir, ln.Addr(), o.dir, ln.Addr(), demo.Confirmations)
		fmt.Fprintf(out, "  withdrawals: the hot signer and the co-signer run in this process (co-signer state in %s);\n  new intent keys and addresses are usable after %s here (the dev's cool-down; 24 hours in a real deployment)\n",
			filepath.Join(abs, "cosigner-state"), o.coolDown)
	}
	if ethd != nil {
		printDevEth(out, c, ethd, o.dir, ln.Addr().String())
	}
	fmt.Fprintln(out, "Ctrl-C stops it.")
	// The core started from its newest snapshot; the journal below it is
	// verified meanwhile, and if it does not verify the core (failed
	// closed already) is stopped.
	verified := make(chan error, 1)
	go func() { verified <- c.Verified(ctx) }()
	var bad error
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case err := <-verified:
		if err != nil && ctx.Err() == nil {
			bad = fmt.Errorf("core refuses to start: the journal below the snapshot it started from does not verify: %w", err)
			log.Error("journal does not verify; stopping", "err", err)
			break
		}
		select {
		case <-ctx.Done():
		case err := <-errc:
			if !errors.Is(err, http.ErrServerClosed) {
				return err
			}
		}
	}
	stopping = time.Now()
	log.Info("stopping")
	fmt.Fprintln(out, "stopping: the API, then the signers, the watcher and the node, then the bank and provider simulators, then the core...")
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close() // requests still running after a second are cut
	}
	if o.backupDir != "" {
		if err := backupStore(h, o.backupDir, log); err != nil {
			log.Error("the API store's last backup failed", "err", err)
		}
	}
	return bad
}

// alertStoreBackup keys the alert of a failed backup of the API's store.
const alertStoreBackup = "store-backup"

// backupStore copies the API's store into dir (api.Server.BackupStore).
func backupStore(h *api.Server, dir string, log *slog.Logger) error {
	start := time.Now()
	if err := h.BackupStore(dir); err != nil {
		return fmt.Errorf("--backup-dir: %w", err)
	}
	log.Info("store backed up", "sub", "backup", "dir", filepath.Join(dir, api.StoreBackupName), "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

func isLoopback(a net.Addr) bool {
	t, ok := a.(*net.TCPAddr)
	return ok && t.IP.IsLoopback()
}

// printLogins prints the demo logins of a freshly seeded data directory:
// customers' passwords and TOTP seeds, and operators' enrolment links,
// exist in clear only here, for the demo.
func printLogins(w io.Writer, logins []demo.Person, console string) {
	if len(logins) == 0 {
		return
	}
	fmt.Fprintf(w, "\nOperators sign in and sign every approval with a credential (WebAuthn), never a password.\n"+
		"  Console: open an operator's enrolment link below (at http://%s, not 127.0.0.1), register a security key or\n"+
		"  passkey, then sign in at http://%s/console/login; in dev two demo admins approve the new credential for you.\n"+
		"  CLI: each operator also has a CLI key (dev only), e.g.\n"+
		"    kinko requests list --core http://%s --operator aiko --key %s\n", console, console, console, logins[0].KeyFile)
	for _, p := range logins {
		if p.Email != "" {
			continue
		}
		what := ""
		for i, r := range p.Roles {
			if i > 0 {
				what += ","
			}
			what += string(r)
		}
		fmt.Fprintf(w, "  %-6s %-22s key %s\n         enrol %s\n", p.Name, what, p.KeyFile, p.EnrolURL)
	}
	fmt.Fprintln(w, "\nDemo customers (shown once; `kinko totp --secret S` prints a current code):")
	for _, p := range logins {
		if p.Email == "" {
			continue
		}
		fmt.Fprintf(w, "  %-18s customer %-8d password %-18s TOTP secret %s\n", p.Email, p.Customer, p.Password, p.TOTPSecret)
	}
}
