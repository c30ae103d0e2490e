package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"kinko/internal/core"
	"kinko/internal/ledger"
)

// newOwedCmd is what customers owe from deposits reversed after they
// traded them away (their receivable accounts; `kinko ledger balances`
// lists them). Deposits repay it as they are credited; an operator repays
// it from the customer's available balance here; a write-off to house
// equity goes through the two-person rule (request kind write_off_owed).
func newOwedCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "owed", Short: "what customers owe from reversed deposits"}
	var dir, asset, actor string
	var customer uint64
	repay := &cobra.Command{
		Use:   "repay",
		Short: "repay what a customer owes in an asset from their available balance, as far as it goes (a stopped core)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := core.Open(cmd.Context(), core.Config{Dir: dir})
			if err != nil {
				return err
			}
			defer k.Close()
			o, err := submitCmd(cmd, k, core.RepayOwed{Customer: ledger.OwnerID(customer), Asset: strings.ToUpper(asset), Actor: actor})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "repaid %d base units of %s (journal entry %d)\n", o.Value, strings.ToUpper(asset), o.Seq)
			return nil
		},
	}
	dataFlag(repay, &dir)
	repay.Flags().Uint64Var(&customer, "customer", 0, "customer id")
	repay.Flags().StringVar(&asset, "asset", "BTC", "asset code")
	repay.Flags().StringVar(&actor, "actor", "", "operator asking")
	repay.MarkFlagRequired("customer")
	repay.MarkFlagRequired("actor")
	cmd.AddCommand(repay)
	return cmd
}
