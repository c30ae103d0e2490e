package cli

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"kinko/internal/core"
	"kinko/internal/incident"
)

func newIncidentCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "incident", Short: "incident records and timelines"}
	var dir string
	var from uint64
	var asJSON bool
	timeline := &cobra.Command{
		Use:   "timeline",
		Short: "every detection, halt, lift, plan, approval, reversal and failure with its time and actor, from the journal",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			j, err := openJournal(dir)
			if err != nil {
				return err
			}
			defer j.Close()
			head, _, _ := j.Head()
			st, err := core.StateAt(cmd.Context(), dir, j, head)
			if err != nil {
				return err
			}
			evs, err := core.Timeline(j, from, core.Applied(st))
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(evs)
			}
			return incident.WriteMarkdown(cmd.OutOrStdout(), evs)
		},
	}
	dataFlag(timeline, &dir)
	timeline.Flags().Uint64Var(&from, "from", 1, "first journal entry")
	timeline.Flags().BoolVar(&asJSON, "json", false, "JSON output")
	cmd.AddCommand(timeline)
	return cmd
}
