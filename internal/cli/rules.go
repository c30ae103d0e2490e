package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/core"
	"kinko/internal/withdraw"
)

func newRulesCmd() *cobra.Command {
	var dir, file, actor string
	cmd := &cobra.Command{Use: "rules", Short: "the withdrawal policy's rules"}
	set := &cobra.Command{
		Use:   "set",
		Short: "journal the withdrawal rules from a file (an admin); the co-signer keeps its own limits in its own file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := withdraw.LoadRules(file)
			if err != nil {
				return err
			}
			c, err := core.Open(cmd.Context(), core.Config{Dir: dir})
			if err != nil {
				return err
			}
			defer c.Close()
			o, err := c.Submit(cmd.Context(), time.Now(), core.SetWithdrawalRules{Rules: *r, Actor: actor})
			if err == nil {
				err = o.Err
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "withdrawal rules set (journal entry %d)\n", o.Seq)
			return nil
		},
	}
	dataFlag(set, &dir)
	set.Flags().StringVar(&file, "file", "withdrawal-rules.json", "rules file")
	set.Flags().StringVar(&actor, "actor", "", "admin setting them")
	set.MarkFlagRequired("actor")
	cmd.AddCommand(set)
	return cmd
}
