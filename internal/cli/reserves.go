package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/reserves"
)

func newReservesCmd() *cobra.Command {
	var dir, at, csvDate string
	var asJSON bool
	var target, capBps uint32
	cmd := &cobra.Command{
		Use:   "reserves",
		Short: "segregation and reserves per asset: liabilities vs customer wallets, hot share vs the 5% cap, house backing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := loadState(cmd.Context(), dir, at)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if csvDate != "" {
				return reserves.WriteDailyCSV(w, st.Ledger, csvDate)
			}
			rep, err := reserves.Compute(st.Ledger, st.Custody, reserves.Policy{HotTargetBps: target, HotCapBps: capBps}, nil, st.Seq(), st.Time())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			printReserves(w, st, rep)
			return nil
		},
	}
	dataFlag(cmd, &dir)
	cmd.Flags().StringVar(&at, "at", "", "point in time: a sequence number or an RFC 3339 time")
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON output")
	cmd.Flags().StringVar(&csvDate, "daily-csv", "", "write the daily per-customer record (CSV) for this date instead")
	cmd.Flags().Uint32Var(&target, "hot-target-bps", reserves.DefaultPolicy.HotTargetBps, "hot wallet target share, basis points")
	cmd.Flags().Uint32Var(&capBps, "hot-cap-bps", reserves.DefaultPolicy.HotCapBps, "hot wallet cap, basis points (at most 500)")
	cmd.AddCommand(newReservesPublishCmd(), newReservesProofCmd(), newVerifyProofCmd(), newReservesMessageCmd(), newReservesAttestCmd())
	return cmd
}

func printReserves(w io.Writer, st *core.State, rep *reserves.Report) {
	fmt.Fprintf(w, "as of entry %d (%s); hot target %d.%02d%%, cap %d.%02d%%\n", rep.Seq, time.Unix(0, rep.Time).UTC().Format(time.RFC3339),
		rep.Policy.HotTargetBps/100, rep.Policy.HotTargetBps%100, rep.Policy.HotCapBps/100, rep.Policy.HotCapBps%100)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "asset\tliabilities\tcold\thot\thot share\tsegregated\thouse req.\thouse held\tbacked\trefill\tsweep")
	yn := func(b bool) string {
		if b {
			return "yes"
		}
		return "NO"
	}
	for _, r := range rep.Rows {
		f := func(a ledger.Amount) string { return a.FormatDecimal(r.Decimals) }
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d.%02d%%\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Asset, f(r.CustomerLiabilities), f(r.ColdCustomerLedger), f(r.HotCustomerLedger),
			r.HotShareBps/100, r.HotShareBps%100, yn(r.Segregated), f(r.HouseRequired), f(r.HouseHeld), yn(r.HouseBacked), f(r.Refill), f(r.Sweep))
	}
	tw.Flush()
	printYenSegregation(w, rep)
}
