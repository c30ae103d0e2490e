package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
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
	cmd := &cobra.Command{
		Use:   "cosigner",
		Short: "run the independent co-signer: follows and verifies the journal, signs only what it checked itself",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)).With("sub", "cosigner")
			net_, ak, acct, err := loadAccount(cmd, bufio.NewReader(cmd.InOrStdin()), netName, keyFile, passFile, account)
			if err != nil {
				return err
			}
			pol, err := cosigner.LoadPolicy(policyFile)
			if err != nil {
				return err
			}
			token, err := readToken(tokenFile)
			if err != nil {
				return err
			}
			cs := cosigner.New(net_, acct, ak.Fingerprint, pol, time.Now)
			if err := cs.SetStateDir(stateDir); err != nil {
				return err
			}
			scfg, err := mtls.Server(tlsDir)
			if err != nil {
				return err
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
						if p, err := cosigner.LoadPolicy(policyFile); err != nil {
							log.Error("policy reload failed; keeping the old one", "err", err)
						} else {
							cs.SetPolicy(p)
							log.Info("policy reloaded")
						}
					}
				}
			}()
			f := &cosigner.Follower{URL: coreURL, Token: token, HTTP: &http.Client{Timeout: time.Minute}, C: cs, Log: log}
			go f.Run(ctx, 200*time.Millisecond)
			ln, err := tls.Listen("tcp", listen, scfg)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: cs.Handler(log), ReadHeaderTimeout: 5 * time.Second}
			go func() { <-ctx.Done(); srv.Close() }()
			fmt.Fprintf(cmd.OutOrStdout(), "co-signer listening on https://%s (mutual TLS), following %s\n", ln.Addr(), coreURL)
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
	f.StringVar(&policyFile, "policy", "cosigner-policy.json", "the co-signer's own policy file (reloaded on SIGHUP)")
	f.StringVar(&stateDir, "state", "cosigner-state", "the co-signer's state directory")
	f.StringVar(&coreURL, "core", "http://127.0.0.1:8080", "the core's URL (for the journal stream)")
	f.StringVar(&tokenFile, "stream-token-file", "", "the journal stream token (<core data>/secrets/stream.token)")
	f.StringVar(&listen, "listen", "127.0.0.1:8444", "HTTPS address (loopback)")
	f.StringVar(&tlsDir, "tls", "tls", "directory with ca.pem, cosigner.pem, cosigner.key")
	f.StringVar(&netName, "net", "regtest", "network")
	for _, n := range []string{"key", "stream-token-file"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

func newSignerCmd() *cobra.Command {
	var keyFile, passFile, coreURL, tokenFile, cosignerURL, tlsDir, asset string
	var account uint32
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
			s := signer.New(signer.Config{Backend: signer.API{URL: coreURL, Token: token, HTTP: &http.Client{Timeout: time.Minute}},
				Node: node, Net: net_, Account: acct, FP: ak.Fingerprint, CoSigner: signer.NewRemote(cosignerURL, ccfg), Asset: asset, Logger: log})
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
	f.StringVar(&tokenFile, "signer-token-file", "", "the signer token (<core data>/secrets/signer.token)")
	f.StringVar(&cosignerURL, "cosigner", "https://127.0.0.1:8444", "the co-signer's URL")
	f.StringVar(&tlsDir, "tls", "tls", "directory with ca.pem, signer.pem, signer.key")
	nf.add(cmd)
	f.StringVar(&asset, "asset", "BTC", "asset")
	for _, n := range []string{"key", "signer-token-file"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}
