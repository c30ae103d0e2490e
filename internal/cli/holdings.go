package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/compensation"
	"kinko/internal/core"
)

// loadHoldings returns the holdings of the asset code at the point named
// by at ("" for the newest) in the data directory.
func loadHoldings(ctx context.Context, dir, at, code string) (core.IndexedHoldings, error) {
	j, err := openJournal(dir)
	if err != nil {
		return core.IndexedHoldings{}, err
	}
	defer j.Close()
	if at == "" {
		head, _, _ := j.Head()
		return core.HoldingsAt(ctx, dir, j, code, head)
	}
	seq, t, isTime, err := parseAt(at)
	if err != nil {
		return core.IndexedHoldings{}, err
	}
	if isTime {
		return core.HoldingsAtTime(ctx, dir, j, code, t, time.Now())
	}
	return core.HoldingsAt(ctx, dir, j, code, seq)
}

func newHoldingsCmd() *cobra.Command {
	var dir, at, asset, format string
	cmd := &cobra.Command{
		Use:   "holdings",
		Short: "who held how much of an asset at a point in time (--at seq|RFC3339), from the journal",
		Long: `kinko holdings lists every customer holding the asset at the point in
time (available and held, in base units), with the total: from the balance
log the core writes beside the journal (the newest holdings checkpoint
before the point and the log's records up to it), or, where the log cannot
answer (missing, behind, not authentic), from the state rebuilt there (the
newest snapshot before it and the journal). Affected customers of an
incident are the holders at its moment:

  kinko holdings --asset XEM --at 2018-01-26T00:02:00+09:00 --format csv

Stop the core first (the data directory has one writer), or run it against
a copy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "csv" && format != "json" && format != "table" {
				return fmt.Errorf("--format %q: csv, json or table", format)
			}
			h, err := loadHoldings(cmd.Context(), dir, at, strings.ToUpper(asset))
			if errors.Is(err, core.ErrAssetUnknown) {
				return fmt.Errorf("unknown asset %q", asset)
			}
			if err != nil {
				return err
			}
			r := compensation.NewHoldingsReport(h.Asset.Code, h.Asset.Decimals, h.Seq, h.Time, h.Holdings)
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
