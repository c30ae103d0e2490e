package cli

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/spf13/cobra"

	"kinko/internal/reserves/bip322"
	"kinko/internal/wallet"
)

// plainMessage reports whether a message shows on a terminal as it is
// signed: printable ASCII and line breaks only (no escape sequences that
// could hide a line, no look-alike characters).
func plainMessage(m string) bool {
	if m == "" || len(m) > bip322.MaxMessage {
		return false
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; c != '\n' && (c < 0x20 || c > 0x7e) {
			return false
		}
	}
	return true
}

// checkMessagePSBT checks that p is exactly BIP-322's to_sign of msg for
// an address of a wallet registered here, and returns the wallet and
// where the address sits in it.
func checkMessagePSBT(set *wallet.Set, p *psbt.Packet, msg, txid string) (*wallet.Named, wallet.Place, error) {
	if len(p.Inputs) != 1 || p.Inputs[0].WitnessUtxo == nil {
		return nil, wallet.Place{}, fmt.Errorf("the PSBT is not a message's to_sign (one input with its witness utxo)")
	}
	in := p.Inputs[0]
	w, place, ok := set.Locate(in.WitnessUtxo.PkScript, in.Bip32Derivation)
	if !ok {
		return nil, place, fmt.Errorf("%w: the address to prove is of no wallet registered here", wallet.ErrNotOurs)
	}
	if in.WitnessUtxo.Value != 0 || !bip322.IsToSign(p.UnsignedTx, in.WitnessUtxo.PkScript, []byte(msg)) {
		return nil, place, fmt.Errorf("the PSBT is not BIP-322's to_sign of this message for this address")
	}
	if got := p.UnsignedTx.TxHash().String(); got != txid {
		return nil, place, fmt.Errorf("the PSBT's transaction %s is not the request's %s", got, txid)
	}
	if in.SighashType != 0 && in.SighashType != 1 {
		return nil, place, fmt.Errorf("the PSBT asks for sighash type %d; a message is signed with SIGHASH_ALL", in.SighashType)
	}
	return w, place, nil
}

func newColdSignMessageCmd() *cobra.Command {
	var keyFile, passFile, in, out, reqFile, regFile, netName string
	var account uint32
	var yes bool
	cmd := &cobra.Command{
		Use:   "sign-message",
		Short: "show a BIP-322 message (proof of reserves) in plain words with the wallet and address it proves, and sign it after you confirm",
		Long: "The request (kinko reserves message) holds a message and its BIP-322 to_sign as a PSBT. The signer\n" +
			"recomputes to_sign from the message and the address, which must be of a wallet registered on this\n" +
			"machine, refuses anything else, shows the message exactly as signed, and signs with this machine's key.\n" +
			"to_sign spends a virtual output of 0 and pays 0 to OP_RETURN: it moves no coins and can never be mined.\n" +
			"Combine the signed PSBTs of the wallet's machines with kinko cold combine.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			net, err := netByName(netName)
			if err != nil {
				return err
			}
			reg, err := loadRegistry(regFile, net)
			if err != nil {
				return err
			}
			set, err := reg.Set()
			if err != nil {
				return err
			}
			req, err := readRequest(reqFile)
			if err != nil {
				return err
			}
			if req.Message == "" {
				return fmt.Errorf("request %s is a transaction, not a message: use kinko cold sign", reqFile)
			}
			if !plainMessage(req.Message) {
				return fmt.Errorf("the message of request %s holds characters that do not show plainly (only printable ASCII and line breaks): not signed", reqFile)
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
			wl, place, err := checkMessagePSBT(set, p, req.Message, req.TxID)
			if err != nil {
				return fmt.Errorf("%w: not signed, nothing written", err)
			}
			addr, _, err := wl.Desc().Address(place.Branch, place.Index)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			branch := "receive"
			if place.Branch == 1 {
				branch = "change"
			}
			fmt.Fprintf(w, "BIP-322 message %s (%s)\n", req.ID, req.Purpose)
			fmt.Fprintf(w, "proves control of: %s (%s) %s #%d, address %s\n", wl.Label(), wl.Kind, branch, place.Index, addr.EncodeAddress())
			fmt.Fprintln(w, "message, exactly as signed:")
			for _, line := range strings.Split(req.Message, "\n") {
				fmt.Fprintf(w, "  | %s\n", line)
			}
			fmt.Fprintln(w, "this moves no coins: to_sign spends a virtual output of 0 committing to the message, and pays 0 to OP_RETURN")
			stdin := bufio.NewReader(cmd.InOrStdin())
			_, ak, acct, err := loadAccount(cmd, stdin, netName, keyFile, passFile, account)
			if err != nil {
				return err
			}
			if !yes && !confirm(w, stdin, "sign this message") {
				return fmt.Errorf("not confirmed: nothing signed")
			}
			n, err := set.Sign(p, acct, ak.Fingerprint)
			if err != nil {
				return err
			}
			if err := writePSBTFile(out, p); err != nil {
				return err
			}
			fmt.Fprintf(w, "signed the message with key %x (%d input); written to %s\n", ak.Fingerprint, n, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "key file")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "read the passphrase from this file (default: standard input)")
	cmd.Flags().StringVar(&reqFile, "request", "", "the message request (kinko reserves message)")
	cmd.Flags().StringVar(&regFile, "registry", "", "this machine's wallet registry (kinko cold register)")
	cmd.Flags().StringVar(&in, "psbt", "", "PSBT to sign (default: the request's)")
	cmd.Flags().StringVar(&out, "out", "", "signed PSBT to write")
	cmd.Flags().BoolVar(&yes, "yes", false, "sign without asking (scripts and tests)")
	cmd.Flags().Uint32Var(&account, "account", 0, "BIP48 account")
	cmd.Flags().StringVar(&netName, "net", "regtest", "network")
	for _, f := range []string{"key", "request", "registry", "out"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}
