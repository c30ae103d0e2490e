package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/core"
	"kinko/internal/ledger"
)

// parseAt reads a point in time: a sequence number or an RFC 3339 time.
func parseAt(s string) (seq uint64, t time.Time, isTime bool, err error) {
	if v, err := strconv.ParseUint(s, 10, 64); err == nil {
		return v, time.Time{}, false, nil
	}
	t, err = time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, time.Time{}, false, fmt.Errorf("--at %q is neither a sequence number nor an RFC 3339 time", s)
	}
	return 0, t, true, nil
}

// loadState opens the data directory read-only in effect and returns the
// state at the point named by at ("" for the newest).
func loadState(ctx context.Context, dir, at string) (*core.State, error) {
	j, err := openJournal(dir)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	if at == "" {
		head, _, _ := j.Head()
		return core.StateAt(ctx, dir, j, head)
	}
	seq, t, isTime, err := parseAt(at)
	if err != nil {
		return nil, err
	}
	if isTime {
		return core.StateAtTime(ctx, dir, j, t, time.Now())
	}
	return core.StateAt(ctx, dir, j, seq)
}

func newLedgerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "ledger", Short: "read the ledger"}
	var dir, at string
	var f balanceFilter
	var asJSON bool
	bal := &cobra.Command{
		Use:   "balances",
		Short: "print account balances, now or at a point in time (--at seq|RFC3339), filtered by asset, customer, owner side and kind",
		Long: `kinko ledger balances prints every account's balance, or those the filters
keep: --asset BTC, --customer 42 (repeatable), --side customer|house,
--kind available|held|wallet|... (repeatable), --nonzero. It reads the
data directory, a running core's too (a copy of its journal as it is now).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			st, err := loadState(cmd.Context(), dir, at)
			if err != nil {
				return err
			}
			return printBalances(cmd.OutOrStdout(), st, f, asJSON)
		},
	}
	dataFlag(bal, &dir)
	bal.Flags().StringVar(&at, "at", "", "point in time: a sequence number or an RFC 3339 time")
	bal.Flags().StringVar(&f.asset, "asset", "", "only this asset (code)")
	bal.Flags().UintSliceVar(&f.customers, "customer", nil, "only this customer's accounts (repeatable)")
	bal.Flags().StringVar(&f.side, "side", "", "only customer or house accounts")
	bal.Flags().StringSliceVar(&f.kinds, "kind", nil, "only accounts of this kind (available, held, wallet, house, equity, receivable, ...; repeatable)")
	bal.Flags().BoolVar(&f.nonzero, "nonzero", false, "leave out accounts whose balance and pending amounts are zero")
	bal.Flags().BoolVar(&asJSON, "json", false, "JSON output")
	cmd.AddCommand(bal)
	return cmd
}

// balanceFilter is what `ledger balances` keeps.
type balanceFilter struct {
	asset     string
	customers []uint
	side      string
	kinds     []string
	nonzero   bool
	kindSet   map[ledger.Kind]bool
}

func (f *balanceFilter) check() error {
	f.asset = strings.ToUpper(f.asset)
	if f.side != "" && f.side != "customer" && f.side != "house" {
		return fmt.Errorf("--side %q: customer or house", f.side)
	}
	for _, c := range f.customers {
		if c == 0 || ledger.OwnerID(c) >= ledger.OwnerHouseMin {
			return fmt.Errorf("--customer %d is no customer id", c)
		}
	}
	f.kindSet = map[ledger.Kind]bool{}
	for _, k := range f.kinds {
		kind, ok := ledger.ParseKind(strings.ToLower(strings.TrimSpace(k)))
		if !ok {
			return fmt.Errorf("--kind %q is no account kind", k)
		}
		f.kindSet[kind] = true
	}
	return nil
}

func (f *balanceFilter) keep(a *ledger.Account, only ledger.AssetID) bool {
	if only != 0 && a.Key.Asset != only {
		return false
	}
	if len(f.customers) > 0 && !slices.Contains(f.customers, uint(a.Key.Owner)) {
		return false
	}
	house := a.Key.Owner >= ledger.OwnerHouseMin
	if f.side == "customer" && house || f.side == "house" && !house {
		return false
	}
	if len(f.kindSet) > 0 && !f.kindSet[a.Key.Kind] {
		return false
	}
	if f.nonzero && a.SignedBalance().Abs.IsZero() && a.DebitsPending.IsZero() && a.CreditsPending.IsZero() {
		return false
	}
	return true
}

// BalanceRow is one account's balances as printed and served.
type BalanceRow struct {
	Owner          ledger.OwnerID `json:"owner"`
	Asset          string         `json:"asset"`
	Kind           string         `json:"kind"`
	Balance        ledger.Signed  `json:"balance"`
	Available      ledger.Amount  `json:"available"`
	DebitsPending  ledger.Amount  `json:"debits_pending"`
	CreditsPending ledger.Amount  `json:"credits_pending"`
}

func printBalances(w io.Writer, st *core.State, f balanceFilter, asJSON bool) error {
	var only ledger.AssetID
	if f.asset != "" {
		a, ok := st.Ledger.AssetByCode(f.asset)
		if !ok {
			return fmt.Errorf("asset %q unknown", f.asset)
		}
		only = a.ID
	}
	rows := []BalanceRow{}
	dec := map[ledger.AssetID]ledger.Asset{}
	decimals := map[string]uint8{}
	for _, a := range st.Ledger.Assets() {
		dec[a.ID] = a
		decimals[a.Code] = a.Decimals
	}
	st.Ledger.Accounts(func(a *ledger.Account) bool {
		if !f.keep(a, only) {
			return true
		}
		rows = append(rows, BalanceRow{Owner: a.Key.Owner, Asset: dec[a.Key.Asset].Code, Kind: a.Key.Kind.String(),
			Balance: a.SignedBalance(), Available: a.Available(), DebitsPending: a.DebitsPending, CreditsPending: a.CreditsPending})
		return true
	})
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Seq      uint64       `json:"seq"`
			Time     time.Time    `json:"time"`
			Accounts []BalanceRow `json:"accounts"`
		}{st.Seq(), time.Unix(0, st.Time()).UTC(), rows})
	}
	fmt.Fprintf(w, "as of entry %d (%s): %d accounts\n", st.Seq(), time.Unix(0, st.Time()).UTC().Format(time.RFC3339Nano), len(rows))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "owner\tasset\tkind\tbalance\tavailable\t")
	for _, r := range rows {
		d := decimals[r.Asset]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", ownerName(r.Owner), r.Asset, r.Kind, r.Balance.FormatDecimal(d), r.Available.FormatDecimal(d))
	}
	return tw.Flush()
}

func ownerName(o ledger.OwnerID) string {
	if o >= ledger.OwnerHouseMin {
		return fmt.Sprintf("house+%d", uint64(o-ledger.OwnerHouseMin))
	}
	return fmt.Sprintf("customer %d", uint64(o))
}

func newStateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "state", Short: "the state machine"}
	var dir, at string
	hash := &cobra.Command{
		Use:   "hash",
		Short: "print the state hash (same journal, same hash), now or --at a point in time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := loadState(cmd.Context(), dir, at)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "seq %d state %s\n", st.Seq(), st.Hash())
			return nil
		},
	}
	dataFlag(hash, &dir)
	hash.Flags().StringVar(&at, "at", "", "point in time: a sequence number or an RFC 3339 time")
	cmd.AddCommand(hash)
	return cmd
}
