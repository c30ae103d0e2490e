package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/api"
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
		Short: "ask for the markets of a JSON file (an array of listings: code, base, quote, scale, tick, lot, min, max, fees, dealer, protections)",
		Long: `kinko market add files, through the core's API and signed with your key, a
list_market request for each listing of the file, its protections' defaults
filled in so the journal says every bound the market runs with; each market
is listed when a second admin approves its request. A listing's fields are
trading.Listing's JSON, for example:

  [{"id": 1, "code": "BTC/JPY", "base": 2, "quote": 1, "scale": 100000000,
    "tick_size": 1000, "lot_size": 100000, "min_qty": 100000,
    "max_qty": 10000000000, "max_price": 1000000000, "max_orders": 262144,
    "maker_fee_bps": 0, "taker_fee_bps": 12,
    "band_bps": 1000, "max_order_notional": 10000000,
    "breaker_bps": 500, "breaker_window_ns": 300000000000,
    "reference_change_bps": 500, "reference_day_bps": 1000}]

The protections can be left out: band_bps (the price band, ±10% of the
market's reference), max_order_notional (the largest order, 10,000,000 of a
fiat quote's whole units or 10 coins of a chain quote; max_qty is its
quantity), breaker_bps over breaker_window_ns (the circuit breaker, 5% in
five minutes) and reference_change_bps and reference_day_bps (how far one
operator may move the index or the dealer's reference: 5% a change, 10% a
day) take these defaults, written into the journaled listing and printed.
None can be switched off. A listing is refused unless tick × lot makes
every notional a whole number of the quote's base units (docs/trading.md).
A new market trades nothing until two operators give it an index price
(an index_price request).`,
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
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			var assets struct {
				Items []api.AssetView `json:"items"`
			}
			if err := c.Get(cmd.Context(), "/v1/assets", &assets); err != nil {
				return err
			}
			// The defaults go into the journaled listing, so the journal
			// says every bound the market runs with.
			for i := range ls {
				l := &ls[i]
				var quote *api.AssetView
				for j := range assets.Items {
					if assets.Items[j].ID == l.Quote {
						quote = &assets.Items[j]
					}
				}
				if quote == nil {
					return fmt.Errorf("%s: %w: quote asset %d unknown", l.Code, trading.ErrListing, l.Quote)
				}
				*l = l.WithDefaults(quote.Decimals, quote.Class == "fiat")
				if err := l.Validate(); err != nil {
					return fmt.Errorf("%s: %w", l.Code, err)
				}
			}
			for _, l := range ls {
				id, err := openRequest(cmd.Context(), c, core.KindListMarketRequest, core.ListMarketPayload{Listing: l}, people.RoleAdmin, reason, 24*time.Hour)
				if err != nil {
					return fmt.Errorf("%s: %w", l.Code, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s requested (%s): listed when a second admin approves it; band ±%d bps, largest order %d (notional) and %d (quantity), breaker %d bps in %v, one operator moves a price %d bps a change and %d a day\n",
					l.Code, id, l.BandBps, l.MaxOrderNotional, l.MaxQty, l.BreakerBps, time.Duration(l.BreakerWindowNs), l.ReferenceChangeBps, l.ReferenceDayBps)
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
