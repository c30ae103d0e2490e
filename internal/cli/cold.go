package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/wire"
	"github.com/spf13/cobra"

	"kinko/internal/wallet"
)

// Request is what the core hands the offline ceremony: which ceremony, the
// transaction it registered, and the PSBT.
type Request struct {
	ID      string         `json:"id"`
	Purpose string         `json:"purpose"`
	TxID    string         `json:"txid"`
	PSBT    string         `json:"psbt"`
	Wallets []wallet.Named `json:"wallets"`
}

func readPSBTFile(path string) (*psbt.Packet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return wallet.Read(f)
}

func writePSBTFile(path string, p *psbt.Packet) error {
	s, err := wallet.Encode(p)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func newColdCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cold", Short: "the offline ceremony: sign, combine, finalize and broadcast PSBTs"}
	var keyFile, passFile, in, out, reqFile, netName string
	var account uint32
	var yes bool
	sign := &cobra.Command{
		Use:   "sign",
		Short: "show a PSBT in plain words, recomputed from the wallets' descriptors, and sign it after you confirm",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			net, err := netByName(netName)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(reqFile)
			if err != nil {
				return err
			}
			var req Request
			if err := json.Unmarshal(b, &req); err != nil || len(req.Wallets) == 0 {
				return fmt.Errorf("request %s is not a ceremony request", reqFile)
			}
			var p *psbt.Packet
			if in != "" {
				p, err = readPSBTFile(in)
			} else {
				p, err = wallet.Read(strings.NewReader(req.PSBT))
			}
			if err != nil {
				return err
			}
			if got := p.UnsignedTx.TxHash().String(); got != req.TxID {
				return fmt.Errorf("the PSBT's transaction %s is not the one the ceremony %s registered (%s): not signed", got, req.ID, req.TxID)
			}
			first, err := wallet.Parse(req.Wallets[0].Descriptor, net)
			if err != nil {
				return err
			}
			set, err := wallet.NewSet(req.Wallets, first)
			if err != nil {
				return err
			}
			desc, err := set.Describe(p)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "ceremony %s (%s), transaction %s\n%s", req.ID, req.Purpose, req.TxID, desc)
			// One reader for the passphrase and the confirmation: both
			// lines come from the same standard input.
			stdin := bufio.NewReader(cmd.InOrStdin())
			_, ak, acct, err := loadAccount(cmd, stdin, netName, keyFile, passFile, account)
			if err != nil {
				return err
			}
			if !yes {
				fmt.Fprint(w, "sign this transaction? type yes: ")
				line, _ := stdin.ReadString('\n')
				if strings.TrimSpace(line) != "yes" {
					return fmt.Errorf("not confirmed: nothing signed")
				}
			}
			n, err := set.Sign(p, acct, ak.Fingerprint)
			if err != nil {
				return err
			}
			if err := writePSBTFile(out, p); err != nil {
				return err
			}
			fmt.Fprintf(w, "signed %d input(s) with key %x; written to %s\n", n, ak.Fingerprint, out)
			return nil
		},
	}
	sign.Flags().StringVar(&keyFile, "key", "", "key file")
	sign.Flags().StringVar(&passFile, "passphrase-file", "", "read the passphrase from this file (default: standard input)")
	sign.Flags().StringVar(&reqFile, "request", "", "the ceremony request from the core (wallets and the registered transaction)")
	sign.Flags().StringVar(&in, "psbt", "", "PSBT to sign (default: the request's)")
	sign.Flags().StringVar(&out, "out", "", "signed PSBT to write")
	sign.Flags().BoolVar(&yes, "yes", false, "sign without asking (scripts and tests)")
	sign.Flags().Uint32Var(&account, "account", 0, "BIP48 account")
	sign.Flags().StringVar(&netName, "net", "regtest", "network")
	for _, f := range []string{"key", "request", "out"} {
		sign.MarkFlagRequired(f)
	}

	var combineOut string
	combine := &cobra.Command{
		Use:   "combine --out FILE PSBT PSBT...",
		Short: "merge the signatures of PSBTs of the same transaction",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := readPSBTFile(args[0])
			if err != nil {
				return err
			}
			for _, f := range args[1:] {
				b, err := readPSBTFile(f)
				if err != nil {
					return err
				}
				if err := wallet.Combine(a, b); err != nil {
					return err
				}
			}
			return writePSBTFile(combineOut, a)
		},
	}
	combine.Flags().StringVar(&combineOut, "out", "", "combined PSBT to write")
	combine.MarkFlagRequired("out")

	var finIn, finOut string
	finalize := &cobra.Command{
		Use:   "finalize",
		Short: "finalize a fully signed PSBT and write the raw transaction (hex)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := readPSBTFile(finIn)
			if err != nil {
				return err
			}
			tx, err := wallet.Finalize(p)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			tx.Serialize(&buf)
			if err := os.WriteFile(finOut, []byte(hex.EncodeToString(buf.Bytes())+"\n"), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "transaction %s written to %s\n", tx.TxHash(), finOut)
			return nil
		},
	}
	finalize.Flags().StringVar(&finIn, "psbt", "", "signed PSBT")
	finalize.Flags().StringVar(&finOut, "out", "", "raw transaction file to write")
	finalize.MarkFlagRequired("psbt")
	finalize.MarkFlagRequired("out")

	var txFile string
	var nf nodeFlags
	broadcast := &cobra.Command{
		Use:   "broadcast",
		Short: "send a finalized transaction to a node (again is harmless)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := os.ReadFile(txFile)
			if err != nil {
				return err
			}
			raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
			if err != nil {
				return fmt.Errorf("%s is not a hex transaction", txFile)
			}
			tx := wire.NewMsgTx(2)
			if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
				return fmt.Errorf("%s does not decode as a transaction: %w", txFile, err)
			}
			n, _, err := nf.dial()
			if err != nil {
				return err
			}
			defer n.Close()
			id, err := n.Broadcast(context.Background(), tx)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "broadcast %s\n", id)
			return nil
		},
	}
	broadcast.Flags().StringVar(&txFile, "tx", "", "raw transaction file (hex)")
	nf.add(broadcast)
	broadcast.MarkFlagRequired("tx")
	cmd.AddCommand(sign, combine, finalize, broadcast)
	return cmd
}
