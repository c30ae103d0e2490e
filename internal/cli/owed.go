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
	var asset string
	var f coreFlags
	var customer uint64
	repay := &cobra.Command{
		Use:   "repay",
		Short: "repay what a customer owes in an asset from their available balance, as far as it goes (through the core's API)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			v, err := c.Command(cmd.Context(), core.RepayOwed{Customer: ledger.OwnerID(customer), Asset: strings.ToUpper(asset), Actor: c.Operator})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "repaid %s base units of %s\n", v, strings.ToUpper(asset))
			return nil
		},
	}
	f.add(repay)
	repay.Flags().Uint64Var(&customer, "customer", 0, "customer id")
	repay.Flags().StringVar(&asset, "asset", "BTC", "asset code")
	repay.MarkFlagRequired("customer")
	cmd.AddCommand(repay)
	return cmd
}
