package cli

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/spf13/cobra"

	"kinko/internal/alert"
	"kinko/internal/chain/btc"
	"kinko/internal/chain/btcchain"
	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/metrics"
	"kinko/internal/mirror"
	"kinko/internal/mtls"
	"kinko/internal/wallet"
	"kinko/internal/watch"
	"kinko/internal/witness"
)

// nodeFlags reach a Bitcoin node's RPC.
type nodeFlags struct {
	host, user, pass, net string
	noTLS                 bool
}

func (n *nodeFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&n.host, "rpc", "127.0.0.1:18334", "node RPC host:port")
	f.StringVar(&n.user, "rpcuser", "", "node RPC user")
	f.StringVar(&n.pass, "rpcpass", "", "node RPC password")
	f.BoolVar(&n.noTLS, "notls", false, "plain HTTP to a node on loopback")
	f.StringVar(&n.net, "net", "regtest", "network")
}

func (n *nodeFlags) config() (btc.Config, error) {
	params, err := netByName(n.net)
	if err != nil {
		return btc.Config{}, err
	}
	return btc.Config{Host: n.host, User: n.user, Pass: n.pass, DisableTLS: n.noTLS, Net: params}, nil
}

func (n *nodeFlags) dial() (*btc.Node, *chaincfg.Params, error) {
	cfg, err := n.config()
	if err != nil {
		return nil, nil, err
	}
	node, err := btc.Dial(cfg)
	return node, cfg.Net, err
}

// backend dials the node and returns it with the chain interface's
// Bitcoin backend over it, whose balances are read from block birth on.
func (n *nodeFlags) backend(birth uint64) (*btcchain.Backend, *btc.Node, *chaincfg.Params, error) {
	cfg, err := n.config()
	if err != nil {
		return nil, nil, nil, err
	}
	node, err := btc.Dial(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	return btcchain.New(node, cfg, birth), node, cfg.Net, nil
}

// watcherLink is what a watcher reaches the core with: the HTTP client
// for coreURL (checked against coreCA when given) and the journal stream
// and watcher tokens read from their files.
func watcherLink(coreURL, coreCA, streamTokenFile, tokenFile string) (*http.Client, string, string, error) {
	client, err := coreHTTP(coreURL, coreCA, 30*time.Second)
	if err != nil {
		return nil, "", "", err
	}
	streamToken, err := readToken(streamTokenFile)
	if err != nil {
		return nil, "", "", err
	}
	token, err := readToken(tokenFile)
	if err != nil {
		return nil, "", "", err
	}
	return client, streamToken, token, nil
}

// alertFlags configure the alert webhook.
type alertFlags struct{ url, secretFile string }

func (a *alertFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.url, "alert-webhook", "", "URL that receives alerts (JSON, HMAC-SHA256 in "+alert.SignatureHeader+")")
	cmd.Flags().StringVar(&a.secretFile, "alert-secret-file", "", "file with the webhook's shared secret")
}

// start returns the alert sink: the webhook if configured, and always the
// log. Stop the webhook when done (nil if none).
func (a *alertFlags) start(log *slog.Logger) (func(alert.Alert), *alert.Webhook, error) {
	logIt := func(x alert.Alert) {
		log.Error("ALERT", "severity", x.Severity, "title", x.Title, "detail", x.Detail, "key", x.Key)
	}
	if a.url == "" {
		return logIt, nil, nil
	}
	if a.secretFile == "" {
		return nil, nil, errors.New("--alert-webhook needs --alert-secret-file: receivers check the signature")
	}
	secret, err := os.ReadFile(a.secretFile)
	if err != nil {
		return nil, nil, err
	}
	if len(strings.TrimSpace(string(secret))) < 16 {
		return nil, nil, fmt.Errorf("%s: the secret must be at least 16 characters", a.secretFile)
	}
	w := &alert.Webhook{URL: a.url, Secret: []byte(strings.TrimSpace(string(secret))), Log: log}
	w.Start()
	return func(x alert.Alert) { logIt(x); w.Send(x) }, w, nil
}

func newWatchCmd() *cobra.Command {
	var coreURL, coreCA, streamTokenFile, tokenFile, tlsDir, asset, metricsAddr, metricsCert, metricsKey, stateDir string
	var cosigners []string
	var confs, start int32
	var tolerance int64
	var gap uint32
	var notify bool
	var checkpointEvery time.Duration
	var nf nodeFlags
	var af alertFlags
	var wf witnessServeFlags
	var rf roleFlags
	var ef ethWatchFlags
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "run the watcher in its own process: follows the node and the core's journal, halts by itself on any outflow nobody authorized",
		Long: `kinko watch follows the chain (blocks and the mempool) for every script of
every wallet of the asset, recomputed from the descriptors in the journal,
and the core's journal (checking every entry, keeping its own replica of the
state). An outflow that no journaled withdrawal batch or ceremony explains:
the co-signers are told at once over mutual TLS (--cosigner, repeatable),
then the asset's withdrawals are halted and an incident opened through the
core's API with the watcher token. It reconciles each wallet's ledger
account with the chain at every block, credits deposits, and raises alerts
(webhook and log), including a node or core that stops answering.

It is also a witness of the journal: after each sync it signs the head of
its mirror at every new size with a key of its own (<state>/witness.key;
kinko watch witness-key prints the public half for the core's host), keeps
the heads in <state>/witness and serves them read-only on --witness-listen.
A core whose signed head its mirror contradicts is alerted and the
co-signers told to halt, as for a shorter or different journal.

With --eth-node it watches Ethereum instead (docs/ethereum.md): Ether
deposits to the counterfactual Safe addresses of the asset's cold Safe
wallets, credited after --confirmations blocks (default 12 there), and
every execution of the Safes pinned by --hot-safe and --cold-safe: one no
journaled batch holds halts the co-signers (--cosigner) at once, then
the asset's withdrawals in the core, with an incident.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if gap == 0 || gap > watch.MaxGap {
				return fmt.Errorf("--gap is 1 to %d addresses, not %d", watch.MaxGap, gap)
			}
			if ef.node != "" {
				if !cmd.Flags().Changed("asset") {
					asset = "ETH"
				}
				if !cmd.Flags().Changed("confirmations") {
					confs = 0 // the Ether watcher's default
				}
				if metricsAddr != "" {
					return errors.New("--metrics is served by the Bitcoin watcher only, not with --eth-node")
				}
				if _, _, err := ef.check(); err != nil {
					return err
				}
			}
			log, err := rf.logger(cmd.ErrOrStderr(), "watch")
			if err != nil {
				return err
			}
			defer newStopClock(ctx).line(cmd.OutOrStdout(), "watch")
			client, streamToken, token, err := watcherLink(coreURL, coreCA, streamTokenFile, tokenFile)
			if err != nil {
				return err
			}
			send, hook, err := af.start(log)
			if err != nil {
				return err
			}
			if hook != nil {
				defer hook.Stop()
			}
			var node *btc.Node
			var backend *btcchain.Backend
			var params *chaincfg.Params
			if ef.node == "" {
				if backend, node, params, err = nf.backend(uint64(max(start, 0))); err != nil {
					return err
				}
				defer node.Close()
			}
			mir, err := mirror.Open(filepath.Join(stateDir, "journal"), false, nil)
			if err != nil {
				return err
			}
			defer mir.Close()
			wit, err := witness.Open(stateDir, "watcher", mir, false)
			if err != nil {
				return err
			}
			defer wit.Close()
			remote := watch.NewRemote(strings.TrimRight(coreURL, "/"), streamToken, token, client, mir)
			remote.OnSync = func() {
				if err := wit.Sign(); err != nil {
					log.Error("witness: could not sign the mirror's heads", "err", err)
				}
			}
			if err := remote.Sync(ctx); err != nil {
				// With the history it verified before, the watcher watches
				// the chain and tells the co-signers even with the core
				// down; with none, it cannot know our wallets.
				var seq uint64
				remote.Read(func(s *core.State) { seq = s.Seq() })
				if seq == 0 {
					return err
				}
				log.Warn("core not answering at start; watching from the journal as verified here", "seq", seq, "err", err)
			}
			var alarm *watch.Alarm
			if len(cosigners) > 0 {
				tcfg, err := mtls.Watcher(tlsDir)
				if err != nil {
					return err
				}
				alarm = watch.NewAlarm(cosigners, tcfg, log)
				defer alarm.Stop()
			}
			stopWitness, err := wf.serve(cmd.OutOrStdout(), wit, log)
			if err != nil {
				return err
			}
			defer stopWitness()
			if every := wf.every(); every > 0 {
				// Ends with ctx, or at the first fork.
				go witness.WatchCore(ctx, &http.Client{Timeout: 5 * time.Second, Transport: client.Transport}, strings.TrimRight(coreURL, "/"), mir, every, func(fe *witness.ForkError) {
					send(alert.Alert{Key: "watcher-fork", Severity: alert.Critical, Title: "the core signed a head the watcher's mirror contradicts", Detail: fe.Error(), Time: time.Now()})
					if alarm != nil {
						alarm.Halt("*", "the core's journal is not the history the watcher verified: "+fe.Error())
					}
				})
			}
			code := strings.ToUpper(asset)
			if ef.node != "" {
				return ef.run(ctx, cmd.OutOrStdout(), log, remote, code, coreURL, len(cosigners), confs, start, gap, tolerance, send, func(asset, tx, why string) {
					if alarm != nil {
						alarm.HaltTx(asset, tx, why)
					}
				})
			}
			m := metrics.New(remote)
			d, err := watch.ForAsset(ctx, remote, backend, params, code, watch.DepositConfig{Confirmations: confs, StartHeight: start, Tolerance: tolerance, Gap: gap,
				Logger: log, Alert: send, Detected: m.Detected, StateDir: stateDir, CheckpointEvery: checkpointEvery,
				OnUnexplained: func(_ ledger.AssetID, txid chainhash.Hash, why string) {
					if alarm != nil {
						alarm.HaltTx(code, txid.String(), why)
					}
				},
				OnHistory: func(why string) {
					if alarm != nil {
						alarm.Halt("*", "the core's journal is not the history the watcher verified: "+why)
					}
				}})
			if err != nil {
				return err
			}
			m.Mismatch = d.Differences
			if notify {
				// The node pushes its mempool and blocks over its websocket;
				// polling covers what a gap misses.
				if err := d.Subscribe(ctx); err != nil {
					log.Warn("node notifications unavailable; polling only", "err", err)
				} else {
					defer d.Unsubscribe()
				}
			}
			if metricsAddr != "" {
				ln, err := net.Listen("tcp", metricsAddr)
				if err != nil {
					return err
				}
				scheme := "http"
				if metricsCert != "" || metricsKey != "" {
					kp, err := tls.LoadX509KeyPair(metricsCert, metricsKey)
					if err != nil {
						ln.Close()
						return fmt.Errorf("--metrics-tls-cert/--metrics-tls-key: %w", err)
					}
					ln, scheme = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}), "https"
				}
				mux := http.NewServeMux()
				mux.Handle("GET /metrics", m.Handler())
				srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
				go srv.Serve(ln) // ends when closed
				defer srv.Close()
				logListen(log, "metrics", ln.Addr(), scheme)
				fmt.Fprintf(cmd.OutOrStdout(), "metrics at %s://%s/metrics\n", scheme, ln.Addr())
			}
			log.Info("watching", "asset", code, "node", nf.host, "core", coreURL, "cosigners", len(cosigners))
			fmt.Fprintf(cmd.OutOrStdout(), "watching %s on %s: core %s, %d co-signer(s)\n", code, nf.host, coreURL, len(cosigners))
			d.Run(ctx)
			log.Info("stopping")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&coreURL, "core", "http://127.0.0.1:8080", "the core's URL: https://host:port across hosts")
	f.StringVar(&coreCA, "core-ca", "", "with an https:// --core: the CA certificate (PEM) the core's certificate is checked against (default: the system's roots)")
	f.DurationVar(&checkpointEvery, "checkpoint-every", watch.DefaultCheckpointEvery, "journal a checkpoint at least this often when no block comes, so the core knows the watcher runs (its /readyz); 0: only at blocks")
	f.StringVar(&stateDir, "state", "watcher-state", "the watcher's state directory: its mirror of the journal and the halts not yet journaled")
	f.StringVar(&streamTokenFile, "stream-token-file", "", "the journal stream token (the core's secrets directory, CORE-DATA.secrets/stream.token)")
	f.StringVar(&tokenFile, "watcher-token-file", "", "the watcher token (the core's secrets directory, CORE-DATA.secrets/watcher.token)")
	f.StringSliceVar(&cosigners, "cosigner", nil, "a co-signer's URL to halt directly (repeatable)")
	f.StringVar(&tlsDir, "tls", "tls", "directory with ca.pem, watcher.pem, watcher.key")
	f.StringVar(&asset, "asset", "BTC", "asset")
	f.Int32Var(&confs, "confirmations", 6, "confirmations before a deposit is credited and a block reconciled")
	f.Int32Var(&start, "start-height", 1, "first block to scan when nothing is journaled")
	f.Uint32Var(&gap, "gap", wallet.Gap, "receive addresses of each deposit wallet watched past the last one handed out, as a restore's gap limit (at most 100000)")
	f.Int64Var(&tolerance, "tolerance", 0, "difference between ledger and chain, in base units, that reconciliation accepts")
	f.StringVar(&metricsAddr, "metrics", "", "address to serve Prometheus metrics on (e.g. 127.0.0.1:9464; plain HTTP unless --metrics-tls-cert: keep it on loopback or a monitoring network); none: not served")
	f.StringVar(&metricsCert, "metrics-tls-cert", "", "with --metrics: serve HTTPS with this certificate (PEM)")
	f.StringVar(&metricsKey, "metrics-tls-key", "", "with --metrics-tls-cert: its private key (PEM)")
	f.BoolVar(&notify, "notify", true, "subscribe to the node's transactions and blocks over its websocket (btcd), polling as a fallback")
	nf.add(cmd)
	ef.add(cmd)
	af.add(cmd)
	wf.add(cmd)
	rf.add(cmd)
	for _, n := range []string{"stream-token-file", "watcher-token-file"} {
		cmd.MarkFlagRequired(n)
	}
	cmd.AddCommand(newWitnessKeyCmd("watcher", "watcher-state"))
	cmd.AddCommand(newWatchRecoverCmd())
	return cmd
}
