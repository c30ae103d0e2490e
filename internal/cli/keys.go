package cli

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/spf13/cobra"

	"kinko/internal/keys"
	"kinko/internal/wallet"
)

// netByName returns the chain parameters of a network name.
func netByName(name string) (*chaincfg.Params, error) {
	switch name {
	case "regtest":
		return &chaincfg.RegressionNetParams, nil
	case "testnet", "testnet3":
		return &chaincfg.TestNet3Params, nil
	case "signet":
		return &chaincfg.SigNetParams, nil
	case "mainnet":
		return &chaincfg.MainNetParams, nil
	}
	return nil, fmt.Errorf("unknown network %q (regtest, testnet, signet, mainnet)", name)
}

// readPassphrase reads the passphrase from a file, or from the next line
// of in (standard input).
func readPassphrase(cmd *cobra.Command, in *bufio.Reader, file string) (string, error) {
	var line string
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		line = string(b)
	} else {
		fmt.Fprint(cmd.ErrOrStderr(), "passphrase: ")
		l, err := in.ReadString('\n')
		if err != nil && err != io.EOF {
			return "", err
		}
		line = l
	}
	p := strings.TrimRight(line, "\r\n")
	if len(p) < 12 {
		return "", fmt.Errorf("passphrase must be at least 12 characters")
	}
	return p, nil
}

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "make and read offline signing keys"}
	var out, netName, passFile string
	var account uint32
	var testKDF bool
	newCmd := &cobra.Command{
		Use:   "new",
		Short: "make a key from fresh entropy; print its mnemonic once and its BIP48 account xpub",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			net, err := netByName(netName)
			if err != nil {
				return err
			}
			pass, err := readPassphrase(cmd, bufio.NewReader(cmd.InOrStdin()), passFile)
			if err != nil {
				return err
			}
			k, err := keys.New(rand.Reader, net)
			if err != nil {
				return err
			}
			kdf := keys.DefaultKDF
			if testKDF {
				kdf = keys.TestKDF
			}
			if err := k.Save(out, pass, kdf, net); err != nil {
				return err
			}
			ak, _, err := wallet.AccountKey(k.Master, net, account)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "key written to %s (encrypted)\n\nWrite these %d words on paper, in order; they are shown this once:\n\n  %s\n\n", out, len(strings.Fields(k.Mnemonic)), k.Mnemonic)
			fmt.Fprintf(w, "account key for descriptors:\n  %s%s\n", ak.Origin(), ak.XPub.String())
			return nil
		},
	}
	newCmd.Flags().StringVar(&out, "out", "", "key file to write (never overwritten)")
	newCmd.Flags().BoolVar(&testKDF, "cheap-kdf", false, "cheap argon2 parameters (tests and demos only)")
	newCmd.MarkFlagRequired("out")

	var keyFile string
	xpub := &cobra.Command{
		Use:   "xpub",
		Short: "print the BIP48 P2WSH account xpub of a key file, with its fingerprint and path",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, ak, _, err := loadAccount(cmd, bufio.NewReader(cmd.InOrStdin()), netName, keyFile, passFile, account)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s%s\n", ak.Origin(), ak.XPub.String())
			return nil
		},
	}
	xpub.Flags().StringVar(&keyFile, "key", "", "key file")
	xpub.MarkFlagRequired("key")
	for _, c := range []*cobra.Command{newCmd, xpub} {
		c.Flags().StringVar(&netName, "net", "regtest", "network: regtest, testnet, signet, mainnet")
		c.Flags().StringVar(&passFile, "passphrase-file", "", "read the passphrase from this file (default: standard input)")
		c.Flags().Uint32Var(&account, "account", 0, "BIP48 account")
	}
	cmd.AddCommand(newCmd, xpub)
	return cmd
}

func newDescriptorCmd() *cobra.Command {
	var m int
	var netName string
	cmd := &cobra.Command{
		Use:   "descriptor [flags] KEY...",
		Short: "print the wsh(sortedmulti) descriptor, with checksum, of account keys ([fp/48h/1h/0h/2h]tpub...)",
		Args:  cobra.RangeArgs(1, wallet.MaxKeys),
		RunE: func(cmd *cobra.Command, args []string) error {
			net, err := netByName(netName)
			if err != nil {
				return err
			}
			d, err := descriptorOf(m, args, net)
			if err != nil {
				return err
			}
			a, _, err := d.Address(0, 0)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\nfirst receive address: %s\n", d.String(), a.EncodeAddress())
			return nil
		},
	}
	cmd.Flags().IntVar(&m, "m", 2, "signatures required")
	cmd.Flags().StringVar(&netName, "net", "regtest", "network")
	return cmd
}

// descriptorOf builds the m-of-n wsh(sortedmulti) descriptor, with its
// checksum, of account keys ([fp/48h/1h/0h/2h]tpub...): what `kinko
// descriptor` prints and `kinko wallet register --xpub` registers.
func descriptorOf(m int, keys []string, net *chaincfg.Params) (*wallet.Descriptor, error) {
	if len(keys) == 0 || len(keys) > wallet.MaxKeys {
		return nil, fmt.Errorf("1 to %d account keys", wallet.MaxKeys)
	}
	body := fmt.Sprintf("wsh(sortedmulti(%d", m)
	for _, k := range keys {
		body += "," + strings.TrimSpace(k) + "/0/*"
	}
	body += "))"
	sum, err := wallet.Checksum(body)
	if err != nil {
		return nil, err
	}
	return wallet.Parse(body+"#"+sum, net)
}

// loadAccount opens a key file (passphrase from passFile or in) and returns
// the network, the account's descriptor key and its private key.
func loadAccount(cmd *cobra.Command, in *bufio.Reader, netName, keyFile, passFile string, account uint32) (*chaincfg.Params, wallet.Key, *hdkeychain.ExtendedKey, error) {
	net, err := netByName(netName)
	if err != nil {
		return nil, wallet.Key{}, nil, err
	}
	pass, err := readPassphrase(cmd, in, passFile)
	if err != nil {
		return nil, wallet.Key{}, nil, err
	}
	k, err := keys.Load(keyFile, pass, net)
	if err != nil {
		return nil, wallet.Key{}, nil, err
	}
	ak, acct, err := wallet.AccountKey(k.Master, net, account)
	return net, ak, acct, err
}
