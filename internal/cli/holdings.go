package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"kinko/internal/compensation"
)

func newHoldingsCmd() *cobra.Command {
	var dir, at, asset, format string
	cmd := &cobra.Command{
		Use:   "holdings",
		Short: "who held how much of an asset at a point in time (--at seq|RFC3339), from the journal",
		Long: `kinko holdings rebuilds the state at the point in time from the newest
snapshot before it and the journal, and lists every customer holding the
asset then (available and held, in base units), with the total. Affected
customers of an incident are the holders at its moment:

  kinko holdings --asset XEM --at 2018-01-26T00:02:00+09:00 --format csv

Stop the core first (the data directory has one writer), or run it against
a copy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "csv" && format != "json" && format != "table" {
				return fmt.Errorf("--format %q: csv, json or table", format)
			}
			st, err := loadState(cmd.Context(), dir, at)
			if err != nil {
				return err
			}
			a, ok := st.Ledger.AssetByCode(strings.ToUpper(asset))
			if !ok {
				return fmt.Errorf("unknown asset %q", asset)
			}
			r := compensation.NewHoldingsReport(a.Code, a.Decimals, st.Seq(), st.Time(), st.Holdings(a.ID))
			out := cmd.OutOrStdout()
			switch format {
			case "csv":
				return r.WriteCSV(out)
			case "json":
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			fmt.Fprintf(out, "%s holdings at entry %d: %d holders, total %d base units\n", r.Asset, r.Seq, r.Holders, r.Total)
			for _, h := range r.Holdings {
				fmt.Fprintf(out, "  customer %-10d %20d (available %d, held %d)\n", h.Customer, h.Total, h.Available, h.Held)
			}
			return nil
		},
	}
	dataFlag(cmd, &dir)
	cmd.Flags().StringVar(&at, "at", "", "point in time: a sequence number or an RFC 3339 time (default: now)")
	cmd.Flags().StringVar(&asset, "asset", "", "asset code")
	cmd.Flags().StringVar(&format, "format", "table", "csv, json or table")
	cmd.MarkFlagRequired("asset")
	return cmd
}
