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
	cmd.AddCommand(newCmd, xpub, newKeysEthAddressCmd())
	return cmd
}

func newDescriptorCmd() *cobra.Command {
	var m, rangeEnd, nextReceive, nextChange int
	var netName, coldcard, sparrow string
	var core, tr bool
	var timestamp int64
	cmd := &cobra.Command{
		Use:   "descriptor [flags] KEY...",
		Short: "print the wallet of account keys ([fp/48h/1h/0h/2h]tpub...): receive and change descriptors with checksums, the BIP389 multipath form, and files for Bitcoin Core, Sparrow and Coldcard",
		Args:  cobra.RangeArgs(1, wallet.MaxKeys),
		RunE: func(cmd *cobra.Command, args []string) error {
			net, err := netByName(netName)
			if err != nil {
				return err
			}
			typ := wallet.WSH
			if tr {
				typ = wallet.TR
			}
			d, err := descriptorOf(m, args, net, typ)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch {
			case core:
				if rangeEnd < 0 || nextReceive < 0 || nextChange < 0 || nextReceive > rangeEnd+1 || nextChange > rangeEnd+1 {
					return fmt.Errorf("--range %d must cover --next-index %d and --next-change %d", rangeEnd, nextReceive, nextChange)
				}
				fmt.Fprintln(w, d.CoreJSON(rangeEnd, nextReceive, nextChange, timestamp))
				return nil
			case coldcard != "":
				text, err := d.Coldcard(coldcard)
				if err != nil {
					return err
				}
				fmt.Fprint(w, text)
				return nil
			case sparrow != "":
				fmt.Fprint(w, d.Sparrow(sparrow))
				return nil
			}
			a, _, err := d.Address(0, 0)
			if err != nil {
				return err
			}
			c, _, err := d.Address(1, 0)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%s\nchange: %s\nmultipath (BIP389): %s\nfirst receive address: %s\nfirst change address: %s\n", d.String(), d.Branch(1), d.Multipath(), a.EncodeAddress(), c.EncodeAddress())
			return nil
		},
	}
	cmd.Flags().IntVar(&m, "m", 2, "signatures required")
	cmd.Flags().StringVar(&netName, "net", "regtest", "network")
	cmd.Flags().BoolVar(&tr, "tr", false, "a taproot wallet: tr(NUMS,sortedmulti_a(...)) instead of wsh(sortedmulti(...))")
	cmd.Flags().BoolVar(&core, "core", false, "print the JSON for Bitcoin Core's importdescriptors (into a wallet made with createwallet disable_private_keys=true blank=true)")
	cmd.Flags().IntVar(&rangeEnd, "range", wallet.Gap-1, "with --core: the last index Core derives on each chain")
	cmd.Flags().IntVar(&nextReceive, "next-index", 0, "with --core: the next receive index (the wallet's NextIndex)")
	cmd.Flags().IntVar(&nextChange, "next-change", 0, "with --core: the next change index")
	cmd.Flags().Int64Var(&timestamp, "timestamp", 0, "with --core: rescan from this Unix time (the wallet's birth; 0 rescans the whole chain)")
	cmd.Flags().StringVar(&coldcard, "coldcard", "", "print Coldcard's multisig setup file for a wallet of this name (at most 20 characters)")
	cmd.Flags().StringVar(&sparrow, "sparrow", "", "print Sparrow's output descriptor file for a wallet of this name")
	cmd.MarkFlagsMutuallyExclusive("core", "coldcard", "sparrow")
	return cmd
}

// descriptorOf builds the m-of-n wsh(sortedmulti) descriptor, or with typ
// TR the tr(NUMS,sortedmulti_a) one, of account keys
// ([fp/48h/1h/0h/2h]tpub...), parsed back from its text so that every check
// Parse makes holds: what `kinko descriptor` prints and `kinko wallet
// register --xpub` registers.
func descriptorOf(m int, keys []string, net *chaincfg.Params, typ wallet.Type) (*wallet.Descriptor, error) {
	if len(keys) == 0 || len(keys) > wallet.MaxKeys {
		return nil, fmt.Errorf("1 to %d account keys", wallet.MaxKeys)
	}
	d := &wallet.Descriptor{M: m, Net: net, Type: typ}
	for _, a := range keys {
		k, err := wallet.ParseKey(strings.TrimSpace(a), net)
		if err != nil {
			return nil, err
		}
		d.Keys = append(d.Keys, k)
	}
	return wallet.Parse(d.String(), net)
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
