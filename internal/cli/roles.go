package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

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
	cmd := &cobra.Command{Use: "tls", Short: "certificates for the hot signer and the co-signer"}
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "make a private CA, the co-signer's server certificate and the signer's client certificate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := mtls.Init(dir); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "certificates in %s: give the co-signer %s, %s, %s and the signer %s, %s, %s\n", dir,
				mtls.CAFile, mtls.ServerCertFile, mtls.ServerKeyFile, mtls.CAFile, mtls.ClientCertFile, mtls.ClientKeyFile)
			return nil
		},
	}
	initCmd.Flags().StringVar(&dir, "dir", "tls", "directory to write")
	cmd.AddCommand(initCmd)
	return cmd
}

func newCosignerCmd() *cobra.Command {
	var keyFile, passFile, policyFile, stateDir, coreURL, tokenFile, listen, tlsDir, netName string
	var account uint32
	var af alertFlags
	var wf witnessServeFlags
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
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)).With("sub", "cosigner")
			net_, ak, acct, err := loadAccount(cmd, bufio.NewReader(cmd.InOrStdin()), netName, keyFile, passFile, account)
			if err != nil {
				return err
			}
			pol, err := cosigner.LoadPolicy(policyFile, net_)
			if err != nil {
				return err
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
			cs, err := cosigner.Open(cosigner.Config{Net: net_, Account: acct, FP: ak.Fingerprint, Policy: pol, Now: time.Now, StateDir: stateDir, Alert: send, Log: log})
			if err != nil {
				return err
			}
			defer cs.Close()
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
			f := &cosigner.Follower{URL: coreURL, Token: token, HTTP: &http.Client{Timeout: time.Minute}, C: cs, Log: log, HeadEvery: wf.every()}
			go f.Run(ctx, 200*time.Millisecond)
			ln, err := tls.Listen("tcp", listen, scfg)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: cs.Handler(log), ReadHeaderTimeout: 5 * time.Second}
			go func() { <-ctx.Done(); srv.Close() }()
			seq := cs.Seq()
			fmt.Fprintf(cmd.OutOrStdout(), "co-signer listening on https://%s (mutual TLS), following %s from entry %d; admin socket %s\n",
				ln.Addr(), coreURL, seq, filepath.Join(stateDir, cosigner.AdminSocket))
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyFile, "key", "", "key file of hot key #2")
	f.StringVar(&passFile, "passphrase-file", "", "passphrase file (default: standard input)")
	f.Uint32Var(&account, "account", 0, "BIP48 account")
	f.StringVar(&policyFile, "policy", "cosigner-policy.json", "the co-signer's own policy file: pinned wallets and limits (reloaded on SIGHUP)")
	f.StringVar(&stateDir, "state", "cosigner-state", "the co-signer's state directory (its mirror of the journal, what it saw and signed, its halts)")
	f.StringVar(&coreURL, "core", "http://127.0.0.1:8080", "the core's URL (for the journal stream)")
	f.StringVar(&tokenFile, "stream-token-file", "", "the journal stream token (the core's secrets directory, CORE-DATA.secrets/stream.token)")
	f.StringVar(&listen, "listen", "127.0.0.1:8444", "HTTPS address (loopback)")
	f.StringVar(&tlsDir, "tls", "tls", "directory with ca.pem, cosigner.pem, cosigner.key")
	f.StringVar(&netName, "net", "regtest", "network")
	af.add(cmd)
	wf.add(cmd)
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
	var keyFile, passFile, coreURL, tokenFile, cosignerURL, tlsDir, asset string
	var account uint32
	var anchorEvery time.Duration
	var nf nodeFlags
	cmd := &cobra.Command{
		Use:   "signer",
		Short: "run the hot signer: batches queued withdrawals, signs, asks the co-signer, broadcasts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)).With("sub", "signer")
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
			node, _, err := nf.dial()
			if err != nil {
				return err
			}
			defer node.Close()
			if anchorEvery <= 0 {
				anchorEvery = -1 // never
			}
			s := signer.New(signer.Config{Backend: signer.API{URL: coreURL, Token: token, HTTP: &http.Client{Timeout: time.Minute}},
				Node: node, Net: net_, Account: acct, FP: ak.Fingerprint, CoSigner: signer.NewRemote(cosignerURL, ccfg), Asset: asset, Logger: log,
				AnchorEvery: anchorEvery})
			fmt.Fprintf(cmd.OutOrStdout(), "hot signer running: core %s, co-signer %s\n", coreURL, cosignerURL)
			s.Run(cmd.Context(), time.Second)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyFile, "key", "", "key file of hot key #1")
	f.StringVar(&passFile, "passphrase-file", "", "passphrase file (default: standard input)")
	f.Uint32Var(&account, "account", 0, "BIP48 account")
	f.StringVar(&coreURL, "core", "http://127.0.0.1:8080", "the core's URL")
	f.StringVar(&tokenFile, "signer-token-file", "", "the signer token (the core's secrets directory, CORE-DATA.secrets/signer.token)")
	f.StringVar(&cosignerURL, "cosigner", "https://127.0.0.1:8444", "the co-signer's URL")
	f.StringVar(&tlsDir, "tls", "tls", "directory with ca.pem, signer.pem, signer.key")
	nf.add(cmd)
	f.StringVar(&asset, "asset", "BTC", "asset")
	f.DurationVar(&anchorEvery, "anchor-every", signer.DefaultAnchorEvery, "anchor the journal's head on chain (an OP_RETURN output of the next withdrawal batch) when the last anchor is older than this; 0: never")
	for _, n := range []string{"key", "signer-token-file"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}
