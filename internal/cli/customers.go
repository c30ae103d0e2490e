package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/api"
)

// newCustomersCmd is what an operator does for a customer through the
// core's API: freeze their withdrawals at once, or lift a freeze (after
// checking who asks), each signed with the operator's key.
func newCustomersCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "customers", Short: "a customer's withdrawals through the core's API: freeze, unfreeze (signed with your key)"}
	cmd.AddCommand(freezeCmd(true), freezeCmd(false))
	return cmd
}

func freezeCmd(freeze bool) *cobra.Command {
	var f coreFlags
	var customer uint64
	var reason string
	verb := map[bool]string{true: "freeze", false: "unfreeze"}[freeze]
	short := map[bool]string{true: "freeze a customer's withdrawals at once (their waiting withdrawals are rejected)",
		false: "lift a customer's freeze (check who asks first: a freeze may be theirs against a thief)"}[freeze]
	c := &cobra.Command{
		Use:   verb,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			body := &api.OperatorFreezeRequest{Reason: reason}
			path := "/v1/customers/" + strconv.FormatUint(customer, 10) + "/" + verb
			if err := c.Signed(cmd.Context(), path, body, func(a json.RawMessage, _ string, _ *time.Time) { body.Assertion = a }, nil, 200); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "customer %d: withdrawals %s by %s\n", customer, map[bool]string{true: "frozen", false: "unfrozen"}[freeze], c.Operator)
			return nil
		},
	}
	f.add(c)
	c.Flags().Uint64Var(&customer, "customer", 0, "the customer's id")
	c.Flags().StringVar(&reason, "reason", "", "why")
	c.MarkFlagRequired("customer")
	c.MarkFlagRequired("reason")
	return c
}
