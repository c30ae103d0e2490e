package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/core"
	"kinko/internal/people"
	"kinko/internal/trading"
)

func newMarketCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "market", Short: "markets: list them from a configuration file"}
	var file, reason string
	var f coreFlags
	add := &cobra.Command{
		Use:   "add",
		Short: "ask for the markets of a JSON file (an array of listings: code, base, quote, scale, tick, lot, min, max, fees, dealer)",
		Long: `kinko market add files, through the core's API and signed with your key, a
list_market request for each listing of the file; each market is listed when
a second admin approves its request. A listing's fields are trading.Listing's
JSON, for example:

  [{"id": 1, "code": "BTC/JPY", "base": 2, "quote": 1, "scale": 100000000,
    "tick_size": 1000, "lot_size": 100000, "min_qty": 100000,
    "max_qty": 10000000000, "max_price": 1000000000, "max_orders": 262144,
    "maker_fee_bps": 0, "taker_fee_bps": 12}]

A listing is refused unless tick × lot makes every notional a whole number
of the quote's base units (docs/trading.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			var ls []trading.Listing
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ls); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if len(ls) == 0 {
				return fmt.Errorf("%s lists no market", file)
			}
			for _, l := range ls {
				if err := l.Validate(); err != nil {
					return fmt.Errorf("%s: %w", l.Code, err)
				}
			}
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			for _, l := range ls {
				id, err := openRequest(cmd.Context(), c, core.KindListMarketRequest, core.ListMarketPayload{Listing: l}, people.RoleAdmin, reason, 24*time.Hour)
				if err != nil {
					return fmt.Errorf("%s: %w", l.Code, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s requested (%s): listed when a second admin approves it\n", l.Code, id)
			}
			return nil
		},
	}
	f.add(add)
	add.Flags().StringVar(&file, "file", "markets.json", "the listings")
	add.Flags().StringVar(&reason, "reason", "", "why")
	add.MarkFlagRequired("reason")
	cmd.AddCommand(add)
	return cmd
}
