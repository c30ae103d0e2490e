package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/spf13/cobra"

	"kinko/internal/cosigner"
	"kinko/internal/mtls"
	"kinko/internal/signer"
)

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func newTLSCmd() *cobra.Command {
	var dir string
	var hosts mtls.Hosts
	cmd := &cobra.Command{Use: "tls", Short: "certificates of a deployment: the core's API, the co-signer, the hot signer and the watcher"}
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "make a private CA, the core's and the co-signer's server certificates and the signer's and the watcher's client certificates",
		Long: `kinko tls init makes, in --dir, a private CA (ca.pem; its key is not
kept, so nothing more can be issued under it: a new certificate means a
new CA for every host) and the certificates of a deployment. Run it on a
machine you trust, hand each host only its files (docs/deploy.md), then
delete the directory:

  core host      ca.pem core.pem core.key        (kinko core --tls-cert --tls-key)
  co-signer      ca.pem cosigner.pem cosigner.key
  hot signer     ca.pem signer.pem signer.key
  watcher        ca.pem watcher.pem watcher.key
  operators' PCs ca.pem                          (--core-ca)

Server certificates name loopback and the names given with --core-host
and --cosigner-host (DNS names or IP addresses, repeatable): how the
other hosts reach them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := mtls.InitHosts(dir, hosts); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "certificates in %s; give each host only its own files, then delete this directory:\n", dir)
			fmt.Fprintf(out, "  core:       %s %s %s\n", mtls.CAFile, mtls.CoreCertFile, mtls.CoreKeyFile)
			fmt.Fprintf(out, "  co-signer:  %s %s %s\n", mtls.CAFile, mtls.ServerCertFile, mtls.ServerKeyFile)
			fmt.Fprintf(out, "  signer:     %s %s %s\n", mtls.CAFile, mtls.ClientCertFile, mtls.ClientKeyFile)
			fmt.Fprintf(out, "  watcher:    %s %s %s\n", mtls.CAFile, mtls.WatcherCertFile, mtls.WatcherKeyFile)
			fmt.Fprintf(out, "  operators:  %s (--core-ca)\n", mtls.CAFile)
			return nil
		},
	}
	initCmd.Flags().StringVar(&dir, "dir", "tls", "directory to write")
	initCmd.Flags().StringArrayVar(&hosts.Core, "core-host", nil, "a name (DNS or IP) the core's certificate names besides loopback (repeatable)")
	initCmd.Flags().StringArrayVar(&hosts.Cosigner, "cosigner-host", nil, "a name (DNS or IP) the co-signer's certificate names besides loopback (repeatable)")
	cmd.AddCommand(initCmd)
	return cmd
}

func newCosignerCmd() *cobra.Command {
	var keyFile, passFile, policyFile, stateDir, coreURL, coreCA, tokenFile, listen, tlsDir, netName string
	var account uint32
	var af alertFlags
	var wf witnessServeFlags
	var rf roleFlags
	var ef ethCosignerFlags
	cmd := &cobra.Command{
		Use:   "cosigner",
		Short: "run the independent co-signer: follows and verifies the journal, signs only what it checked itself",
		Long: `kinko cosigner runs the co-signer on its own host. Everything it decides
rests on what is on this host: the pinned wallets and limits of its policy
file (--policy, reloaded on SIGHUP), and its state directory (--state): its
mirror of the journal as far as it verified it, when it first saw each key
and address, what it signed, and its halts. A journal that is shorter than
or differs from what it verified halts it with a critical alert; so does
the watcher, directly. Halts are lifted on this host:
kinko cosigner lift --state DIR --asset BTC --by NAME --reason TEXT, or by a
journaled lift of an asset's withdrawals asked and approved by two operators
pinned in the policy file (lifters), their signatures checked here against
the pinned keys (docs/controls.md).

It is also a witness of the journal: after each pull it signs the head of
its mirror at every new size with a key of its own (<state>/witness.key;
kinko cosigner witness-key prints the public half for the core's host),
keeps the heads in <state>/witness and serves them read-only on
--witness-listen. A core whose signed head its mirror contradicts halts
it as a shorter or different journal does.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := ef.check(); err != nil {
				return err
			}
			log, err := rf.logger(cmd.ErrOrStderr(), "cosigner")
			if err != nil {
				return err
			}
			defer newStopClock(cmd.Context()).line(cmd.OutOrStdout(), "cosigner")
			client, err := coreHTTP(coreURL, coreCA, time.Minute)
			if err != nil {
				return err
			}
			in := bufio.NewReader(cmd.InOrStdin())
			net_, ak, acct, err := loadAccount(cmd, in, netName, keyFile, passFile, account)
			if err != nil {
				return err
			}
			pol, err := cosigner.LoadPolicy(policyFile, net_)
			if err != nil {
				return err
			}
			ethKey, ethNode, err := ef.open(cmd, in, netName, passFile, pol, log)
			if err != nil {
				return err
			}
			if ethNode != nil {
				defer ethNode.Close()
			}
			token, err := readToken(tokenFile)
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
			scfg, err := mtls.Server(tlsDir)
			if err != nil {
				return err
			}
			cs, err := cosigner.Open(cosigner.Config{Net: net_, Account: acct, FP: ak.Fingerprint, Policy: pol, Now: time.Now, StateDir: stateDir, Alert: send, Log: log,
				EthKey: ethKey, EthNode: ethNode})
			if err != nil {
				return err
			}
			defer cs.Close()
			if ethNode != nil {
				if err := ef.verify(cmd.Context(), cs); err != nil {
					return err
				}
				log.Info("ethereum", "node", ef.node, "owner", crypto.PubkeyToAddress(ethKey.PublicKey).Hex(), "safes", len(pol.Safes))
			}
			ctx, stop := context.WithCancel(cmd.Context())
			defer stop()
			// The policy changes only by editing its file on this host.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() { // exits when ctx ends
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						p, err := cosigner.LoadPolicy(policyFile, net_)
						if err == nil {
							err = cs.SetPolicy(p)
						}
						if err != nil {
							log.Error("policy reload failed; keeping the old one", "err", err)
						} else {
							log.Info("policy reloaded")
						}
					}
				}
			}()
			admin, err := cosigner.ListenAdmin(stateDir)
			if err != nil {
				return err
			}
			asrv := &http.Server{Handler: cs.AdminHandler(log), ReadHeaderTimeout: 5 * time.Second}
			go asrv.Serve(admin) // ends when closed below
			defer asrv.Close()
			stopWitness, err := wf.serve(cmd.OutOrStdout(), cs.Witness(), log)
			if err != nil {
				return err
			}
			defer stopWitness()
			f := &cosigner.Follower{URL: coreURL, Token: token, HTTP: client, C: cs, Log: log, HeadEvery: wf.every()}
			followed := make(chan struct{})
			go func() { defer close(followed); f.Run(ctx, 200*time.Millisecond) }()
			ln, err := tls.Listen("tcp", listen, scfg)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: cs.Handler(log), ReadHeaderTimeout: 5 * time.Second}
			go func() { <-ctx.Done(); srv.Close() }()
			seq := cs.Seq()
			logListen(log, "cosigner", ln.Addr(), "https (mutual TLS)")
			log.Info("listening", "listener", "admin", "addr", filepath.Join(stateDir, cosigner.AdminSocket), "scheme", "unix socket")
			fmt.Fprintf(cmd.OutOrStdout(), "co-signer listening on https://%s (mutual TLS), following %s from entry %d; admin socket %s\n",
				ln.Addr(), coreURL, seq, filepath.Join(stateDir, cosigner.AdminSocket))
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			log.Info("stopping")
			stop()
			<-followed // the follower's last pull ends with ctx
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyFile, "key", "", "key file of hot key #2")
	f.StringVar(&passFile, "passphrase-file", "", "passphrase file (default: standard input)")
	f.Uint32Var(&account, "account", 0, "BIP48 account")
	f.StringVar(&policyFile, "policy", "cosigner-policy.json", "the co-signer's own policy file: pinned wallets and limits (reloaded on SIGHUP)")
	f.StringVar(&stateDir, "state", "cosigner-state", "the co-signer's state directory (its mirror of the journal, what it saw and signed, its halts)")
	f.StringVar(&coreURL, "core", "http://127.0.0.1:8080", "the core's URL (for the journal stream): https://host:port across hosts")
	f.StringVar(&coreCA, "core-ca", "", "with an https:// --core: the CA certificate (PEM) the core's certificate is checked against (kinko tls init's ca.pem; default: the system's roots)")
	f.StringVar(&tokenFile, "stream-token-file", "", "the journal stream token (the core's secrets directory, CORE-DATA.secrets/stream.token)")
	f.StringVar(&listen, "listen", "127.0.0.1:8444", "HTTPS address, mutual TLS (loopback by default; the signer's and the watcher's hosts reach it across hosts)")
	f.StringVar(&tlsDir, "tls", "tls", "directory with ca.pem, cosigner.pem, cosigner.key")
	f.StringVar(&netName, "net", "regtest", "network")
	af.add(cmd)
	wf.add(cmd)
	ef.add(cmd)
	rf.add(cmd)
	for _, n := range []string{"key", "stream-token-file"} {
		cmd.MarkFlagRequired(n)
	}
	cmd.AddCommand(newCosignerStatusCmd(), newCosignerLiftCmd(), newWitnessKeyCmd("cosigner", "cosigner-state"))
	return cmd
}

func newCosignerStatusCmd() *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "show a running co-signer's halts, journal checkpoint, disagreements and use of its limits (on its host)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st cosigner.Status
			if err := cosigner.AdminDo(stateDir, "GET", "/status", nil, &st); err != nil {
				return err
			}
			b, _ := json.MarshalIndent(st, "", "  ")
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state", "cosigner-state", "the co-signer's state directory")
	return cmd
}

func newCosignerLiftCmd() *cobra.Command {
	var stateDir, asset, by, reason string
	cmd := &cobra.Command{
		Use:   "lift",
		Short: "lift one of a running co-signer's own halts, on its host (asset code, or * for a halt of everything)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, _ := json.Marshal(cosigner.LiftRequest{Asset: asset, By: by, Reason: reason})
			if err := cosigner.AdminDo(stateDir, "POST", "/lift", bytes.NewReader(body), nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "co-signer halt of %s lifted by %s\n", asset, by)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&stateDir, "state", "cosigner-state", "the co-signer's state directory")
	f.StringVar(&asset, "asset", "", "asset code, or * for the halt of everything")
	f.StringVar(&by, "by", "", "who lifts it")
	f.StringVar(&reason, "reason", "", "why")
	for _, n := range []string{"asset", "by", "reason"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

func newSignerCmd() *cobra.Command {
	var keyFile, passFile, coreURL, coreCA, tokenFile, cosignerURL, tlsDir, asset string
	var account uint32
	var anchorEvery time.Duration
	var nf nodeFlags
	var rf roleFlags
	var ef ethSignerFlags
	cmd := &cobra.Command{
		Use:   "signer",
		Short: "run the hot signer: batches queued withdrawals, signs, asks the co-signer, broadcasts",
		Long: `kinko signer runs the hot signer of one asset. On Bitcoin (the default) it
holds hot key #1 of the hot wallet and reaches the node with --rpc. With
--eth-node it is the hot signer of a Safe (docs/ethereum.md): --key's
Ethereum key (BIP-44, kinko keys eth-address) is hot owner key #1, the
hot Safe, its chain id and the MultiSendCallOnly are pinned by --safe,
--chain-id and --multisend, and the house gas account's key (--gas-key)
sends each execTransaction; it confirms or fails its own Ether batches
through the core's signer route.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := rf.logger(cmd.ErrOrStderr(), "signer")
			if err != nil {
				return err
			}
			defer newStopClock(cmd.Context()).line(cmd.OutOrStdout(), "signer")
			client, err := coreHTTP(coreURL, coreCA, time.Minute)
			if err != nil {
				return err
			}
			if ef.node != "" {
				if !cmd.Flags().Changed("asset") {
					asset = "ETH"
				}
				if _, _, _, err := ef.check(); err != nil {
					return err
				}
				token, err := readToken(tokenFile)
				if err != nil {
					return err
				}
				ccfg, err := mtls.Client(tlsDir)
				if err != nil {
					return err
				}
				s, closeNode, err := ef.signer(cmd, bufio.NewReader(cmd.InOrStdin()), nf.net, keyFile, passFile, strings.ToUpper(asset),
					signer.API{URL: coreURL, Token: token, HTTP: client}, signer.NewRemote(cosignerURL, ccfg), log)
				if err != nil {
					return err
				}
				defer closeNode()
				log.Info("running", "core", coreURL, "cosigner", cosignerURL, "asset", strings.ToUpper(asset), "safe", ef.safe, "chain", ef.chainID)
				fmt.Fprintf(cmd.OutOrStdout(), "hot signer running: core %s, co-signer %s, %s Safe %s on chain %d\n", coreURL, cosignerURL, strings.ToUpper(asset), ef.safe, ef.chainID)
				s.Run(cmd.Context(), time.Second)
				log.Info("stopping")
				return nil
			}
			net_, ak, acct, err := loadAccount(cmd, bufio.NewReader(cmd.InOrStdin()), nf.net, keyFile, passFile, account)
			if err != nil {
				return err
			}
			token, err := readToken(tokenFile)
			if err != nil {
				return err
			}
			ccfg, err := mtls.Client(tlsDir)
			if err != nil {
				return err
			}
			bc, node, _, err := nf.backend(0)
			if err != nil {
				return err
			}
			defer node.Close()
			if anchorEvery <= 0 {
				anchorEvery = -1 // never
			}
			s := signer.New(signer.Config{Backend: signer.API{URL: coreURL, Token: token, HTTP: client},
				Chain: bc, PrevTxs: node, Net: net_, Account: acct, FP: ak.Fingerprint, CoSigner: signer.NewRemote(cosignerURL, ccfg), Asset: asset, Logger: log,
				AnchorEvery: anchorEvery})
			log.Info("running", "core", coreURL, "cosigner", cosignerURL, "asset", asset)
			fmt.Fprintf(cmd.OutOrStdout(), "hot signer running: core %s, co-signer %s\n", coreURL, cosignerURL)
			s.Run(cmd.Context(), time.Second)
			log.Info("stopping")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyFile, "key", "", "key file of hot key #1")
	f.StringVar(&passFile, "passphrase-file", "", "passphrase file (default: standard input)")
	f.Uint32Var(&account, "account", 0, "BIP48 account")
	f.StringVar(&coreURL, "core", "http://127.0.0.1:8080", "the core's URL: https://host:port across hosts")
	f.StringVar(&coreCA, "core-ca", "", "with an https:// --core: the CA certificate (PEM) the core's certificate is checked against (default: the system's roots)")
	f.StringVar(&tokenFile, "signer-token-file", "", "the signer token (the core's secrets directory, CORE-DATA.secrets/signer.token)")
	f.StringVar(&cosignerURL, "cosigner", "https://127.0.0.1:8444", "the co-signer's URL")
	f.StringVar(&tlsDir, "tls", "tls", "directory with ca.pem, signer.pem, signer.key")
	nf.add(cmd)
	f.StringVar(&asset, "asset", "BTC", "asset")
	f.DurationVar(&anchorEvery, "anchor-every", signer.DefaultAnchorEvery, "anchor the journal's head on chain (an OP_RETURN output of the next withdrawal batch) when the last anchor is older than this; 0: never")
	ef.add(cmd)
	rf.add(cmd)
	for _, n := range []string{"key", "signer-token-file"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}
