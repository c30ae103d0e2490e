// Package cli holds kinko's commands; cmd/kinko only wires them.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Main runs the kinko command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root := NewRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "kinko:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

// NewRoot returns the root command with every subcommand.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "kinko",
		Short:         "kinko (金庫) — custody and operations core of a crypto-asset exchange",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newDevCmd(), newCoreCmd(), newJournalCmd(), newLedgerCmd(), newStateCmd(), newTOTPCmd(), newKeysCmd(), newDescriptorCmd(), newReservesCmd(), newColdCmd(), newCeremonyCmd(), newIntentCmd(), newTLSCmd(), newCosignerCmd(), newSignerCmd(), newRulesCmd(), newOwedCmd(), newIncidentCmd(), newWatchCmd(), newHoldingsCmd(), newCompensationCmd(), newTraceCmd(), newMarketCmd(), newDrillCmd(), newOperatorsCmd(), newRequestsCmd(), newInitCmd(), newWalletCmd(), newCustomersCmd())
	return root
}

// dataFlag adds the --data flag every command that opens a data directory
// shares.
func dataFlag(cmd *cobra.Command, dir *string) {
	cmd.Flags().StringVar(dir, "data", "./kinko-data", "data directory (journal and snapshots)")
}
