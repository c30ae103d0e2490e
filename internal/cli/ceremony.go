package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/spf13/cobra"

	"kinko/internal/api"
	"kinko/internal/wallet"
)

func newCeremonyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "ceremony", Short: "prepare, through the core's API, the offline ceremonies that move coins between our wallets"}
	var id, out string
	var feeRate int64
	var f coreFlags
	var nf, cnf nodeFlags
	tiers := &cobra.Command{
		Use:   "tiers",
		Short: "prepare the refill (hot below target) or sweep (hot above cap): the core journals it with its inputs reserved; write the request for the offline signers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return prepareCeremony(cmd, &f, &nf, out, api.CeremonyRequest{Purpose: "tiers", ID: id, FeeRate: feeRate})
		},
	}
	f.add(tiers)
	nf.add(tiers)
	tiers.Flags().StringVar(&id, "id", "", "ceremony id")
	tiers.Flags().StringVar(&out, "out", "ceremony.json", "request file to write")
	tiers.Flags().Int64Var(&feeRate, "fee-rate", 10, "fee rate, satoshi per vbyte")
	tiers.MarkFlagRequired("id")
	var only []string
	var cf coreFlags
	coldW := &cobra.Command{
		Use:   "cold-withdrawals",
		Short: "the cold path: the core prepares one transaction from the cold wallet paying queued withdrawals and journals it with its inputs reserved; write the request for the offline signers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return prepareCeremony(cmd, &cf, &cnf, out, api.CeremonyRequest{Purpose: "cold-withdrawals", ID: id, FeeRate: feeRate, Withdrawals: only})
		},
	}
	cf.add(coldW)
	cnf.add(coldW)
	coldW.Flags().StringVar(&id, "id", "", "batch id")
	coldW.Flags().StringVar(&out, "out", "cold-withdrawals.json", "request file to write")
	coldW.Flags().Int64Var(&feeRate, "fee-rate", 10, "fee rate, satoshi per vbyte")
	coldW.Flags().StringSliceVar(&only, "withdrawal", nil, "only these withdrawals (default: every queued one)")
	coldW.MarkFlagRequired("id")
	cmd.AddCommand(tiers, coldW, newCeremonySafeCmd(), newCeremonySweepDepositsCmd())
	return cmd
}

// prepareCeremony asks the core to plan and journal a ceremony (its inputs
// reserved) and writes the request file for `kinko cold sign`. With a node
// (--rpc given), every input gets its previous transaction, checked against
// its outpoint and amount, before the request is written: the journal has
// deposits by outpoint and amount only, and hardware wallets and `kinko
// cold sign` want the whole transaction. The txid stays the journaled one.
func prepareCeremony(cmd *cobra.Command, f *coreFlags, nf *nodeFlags, out string, req api.CeremonyRequest) error {
	c, err := f.client(cmd.Context())
	if err != nil {
		return err
	}
	var v api.CeremonyView
	if err := c.Post(cmd.Context(), "/v1/ceremonies", req, &v, http.StatusCreated); err != nil {
		return err
	}
	note := ""
	if cmd.Flags().Changed("rpc") {
		if v.PSBT, err = attachPrevTxs(cmd, nf, v.PSBT); err != nil {
			return fmt.Errorf("ceremony %s is journaled, but its request is not written: %w (run again: the core answers with the same ceremony)", v.ID, err)
		}
	} else {
		note = " (without the inputs' previous transactions: give --rpc to add them; kinko cold sign refuses segwit v0 inputs without them)"
	}
	b, _ := json.MarshalIndent(Request{ID: v.ID, Purpose: v.Purpose, TxID: v.TxID, PSBT: v.PSBT, Wallets: v.Wallets}, "", "  ")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s prepared by %s; request written to %s%s\n", v.Summary, c.Operator, out, note)
	return nil
}

// attachPrevTxs adds, from the node, the previous transaction of every
// input of the base64 PSBT b64.
func attachPrevTxs(cmd *cobra.Command, nf *nodeFlags, b64 string) (string, error) {
	p, err := wallet.Read(strings.NewReader(b64))
	if err != nil {
		return "", err
	}
	n, _, err := nf.dial()
	if err != nil {
		return "", err
	}
	defer n.Close()
	if err := wallet.AttachPrevTxs(p, func(h chainhash.Hash) (*wire.MsgTx, error) { return n.Tx(cmd.Context(), h) }); err != nil {
		return "", err
	}
	return wallet.Encode(p)
}
