package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/core"
	"kinko/internal/people"
	"kinko/internal/withdraw"
)

func newRulesCmd() *cobra.Command {
	var file, reason string
	var f coreFlags
	cmd := &cobra.Command{Use: "rules", Short: "the withdrawal policy's rules"}
	set := &cobra.Command{
		Use:   "set",
		Short: "ask for the withdrawal rules of a file (a set_withdrawal_rules request, signed): they take effect when a second admin approves; the co-signer keeps its own limits in its own file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := withdraw.LoadRules(file)
			if err != nil {
				return err
			}
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			id, err := openRequest(cmd.Context(), c, core.KindSetWithdrawalRulesRequest, core.SetWithdrawalRulesPayload{Rules: *r}, people.RoleAdmin, reason, 24*time.Hour)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "withdrawal rules requested (%s): a second admin approves them (kinko requests approve --id %s)\n", id, id)
			return nil
		},
	}
	f.add(set)
	set.Flags().StringVar(&file, "file", "withdrawal-rules.json", "rules file")
	set.Flags().StringVar(&reason, "reason", "", "why the rules change")
	set.MarkFlagRequired("reason")
	cmd.AddCommand(set)
	return cmd
}
