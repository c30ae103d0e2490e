package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"kinko/internal/custody"
)

// newWalletGapCmd is `kinko wallet gap`: the runs of unused deposit
// addresses of each cold customer wallet, against the gap limit a
// watch-only wallet restored from its descriptor would scan.
func newWalletGapCmd() *cobra.Command {
	var dir, at string
	var limit uint32
	cmd := &cobra.Command{
		Use:   "gap",
		Short: "report each deposit wallet's unused addresses: the last used index, the unused run after it and the longest run, against a restore's gap limit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// A report reads a journal; it never makes one where a
			// mistyped --data names nothing.
			if _, err := os.Stat(filepath.Join(dir, "journal")); err != nil {
				return fmt.Errorf("no journal in %s: %w", dir, err)
			}
			st, err := loadState(cmd.Context(), dir, at)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			over, n := 0, 0
			for _, wl := range st.Custody.Wallets() {
				if wl.Kind != custody.ColdCustomer {
					continue
				}
				n++
				r, _ := st.Custody.Gap(wl.ID)
				last := "none"
				if r.LastUsed >= 0 {
					last = fmt.Sprint(r.LastUsed)
				}
				verdict := "within"
				if r.Longest > limit {
					verdict, over = "OVER", over+1
				}
				fmt.Fprintf(w, "wallet %d (%s): %d addresses handed out, %d used, last used %s; %d unused after it; longest unused run %d (from index %d): %s a gap limit of %d\n",
					wl.ID, wl.Kind, r.NextIndex, r.Used, last, r.Trailing, r.Longest, r.LongestFrom, verdict, limit)
			}
			if n == 0 {
				fmt.Fprintln(w, "no cold customer wallet: no deposit addresses to report")
			}
			if over > 0 {
				fmt.Fprintf(w, "a watch-only wallet restored with a gap limit of %d would miss deposits after the longest run: restore with a larger one (Core: importdescriptors range, kinko descriptor --core --range)\n", limit)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data", "data", "the core's data directory")
	cmd.Flags().StringVar(&at, "at", "", "the state at a sequence number or RFC 3339 time (default: newest)")
	cmd.Flags().Uint32Var(&limit, "limit", 20, "the gap limit a restore scans (Core and Sparrow default to 20)")
	return cmd
}
