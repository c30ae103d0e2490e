package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/api"
	"kinko/internal/compensation"
	"kinko/internal/core"
)

// parseRate reads a decimal rate of pay units per whole held unit ("88.549"
// yen per XEM) exactly, as pay base units per held base unit: num/den.
func parseRate(s string, heldDecimals, payDecimals uint8) (num, den uint64, err error) {
	r, ok := new(big.Rat).SetString(strings.TrimSpace(s))
	if !ok || strings.ContainsAny(s, "eE/") {
		return 0, 0, fmt.Errorf("--rate %q is not a decimal number", s)
	}
	if r.Sign() <= 0 {
		return 0, 0, fmt.Errorf("%w: --rate %s", compensation.ErrRateAbsurd, s)
	}
	r.Mul(r, new(big.Rat).SetFrac(pow10(payDecimals), pow10(heldDecimals)))
	if !r.Num().IsUint64() || !r.Denom().IsUint64() || r.Num().Uint64()/r.Denom().Uint64() > compensation.MaxRate {
		return 0, 0, fmt.Errorf("%w: --rate %s", compensation.ErrRateAbsurd, s)
	}
	return r.Num().Uint64(), r.Denom().Uint64(), nil
}

func pow10(n uint8) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }

func printSummary(w io.Writer, p *compensation.Plan, sum compensation.Summary, payCode string) {
	fmt.Fprintf(w, "plan %s (%s): %d customers, total %d %s base units, largest %d to customer %d\n", p.ID, p.Rule, sum.Count, sum.Total, payCode, sum.Largest.Pay, sum.Largest.Customer)
	for _, b := range sum.Distribution {
		fmt.Fprintf(w, "  %12d - %-14d %8d customers  %16d\n", b.From, b.To, b.Count, b.Total)
	}
	if p.Status != "" {
		fmt.Fprintf(w, "status %s; paid %d of %d; digest %x\n", p.Status, p.Paid, p.Count, p.Digest)
	}
}

func newCompensationCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "compensation", Short: "compensation plans: dry run, write, execute (approval is a two-person request in the console or API)"}
	var dir, id, asset, payAsset, at, rate, rounding, reason, incidentID string
	var writeOff, dryRun, asJSON bool
	var pf coreFlags
	plan := &cobra.Command{
		Use:   "plan",
		Short: "a fixed-rate plan from the holdings at a point in time: dry run, or write it into the journal",
		Long: `kinko compensation plan computes, from the journal, who held the asset at the
point in time and what each is owed at the rate (pay asset per whole held
coin, exact decimal), rounded down; prints the dry run (count, total,
distribution, largest) and, without --dry-run, writes the plan and its
payouts into the journal as a draft, through the core's API as --operator
(--data is read only: a copy of the journal, such as a replica or a backup,
while the core runs). A second operator approves it (request kind
approve_compensation); then kinko compensation execute pays it.

  kinko compensation plan --data copy/ --asset XEM --pay JPY --rate 88.549 --at 2018-01-26T00:02:00+09:00 \
    --id nem-2018 --reason "NEM theft" --write-off --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if at == "" {
				return errors.New("--at is required: the moment the holdings are taken at")
			}
			st, err := loadState(cmd.Context(), dir, at)
			if err != nil {
				return err
			}
			held, ok1 := st.Ledger.AssetByCode(strings.ToUpper(asset))
			pay, ok2 := st.Ledger.AssetByCode(strings.ToUpper(payAsset))
			if !ok1 || !ok2 {
				return fmt.Errorf("unknown asset %q or %q", asset, payAsset)
			}
			num, den, err := parseRate(rate, held.Decimals, pay.Decimals)
			if err != nil {
				return err
			}
			ps, err := compensation.FixedRatePayouts(st.Holdings(held.ID), num, den)
			if err != nil {
				return err
			}
			if len(ps) == 0 {
				return fmt.Errorf("nobody held %s at entry %d", held.Code, st.Seq())
			}
			p := compensation.Plan{ID: id, Incident: incidentID, Rule: compensation.FixedRate, Asset: held.ID, PayAsset: pay.ID, At: st.Seq(),
				RateNum: num, RateDen: den, Rounding: rounding, WriteOff: writeOff, Reason: reason, Requester: requesterOf(pf, dryRun)}
			p.Header(ps)
			if err := p.Check(); err != nil {
				return err
			}
			sum := compensation.Summarize(ps)
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(map[string]any{"plan": p, "summary": sum}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(out, "holdings of %s at entry %d (%s), %s %s per whole %s, rounded down\n", held.Code, st.Seq(), time.Unix(0, st.Time()).UTC().Format(time.RFC3339), rate, pay.Code, held.Code)
				printSummary(out, &p, sum, pay.Code)
			}
			if dryRun {
				return nil
			}
			return writePlan(cmd, &pf, &p, ps)
		},
	}
	dataFlag(plan, &dir)
	pf.addOptional(plan)
	f := plan.Flags()
	f.StringVar(&id, "id", "", "plan id")
	f.StringVar(&asset, "asset", "", "the asset held (and stolen)")
	f.StringVar(&payAsset, "pay", "JPY", "the asset paid in")
	f.StringVar(&at, "at", "", "the moment: a sequence number or an RFC 3339 time")
	f.StringVar(&rate, "rate", "", "pay asset per whole held coin, a decimal (88.549)")
	f.StringVar(&rounding, "rounding", "down to the pay asset's base unit", "the rounding, stated in the plan (payments always round down)")
	f.StringVar(&reason, "reason", "", "why")
	f.StringVar(&incidentID, "incident", "", "the incident it answers")
	f.BoolVar(&writeOff, "write-off", false, "write off each customer's holding of the asset, up to what was held, when paying")
	f.BoolVar(&dryRun, "dry-run", false, "print the dry run only")
	f.BoolVar(&asJSON, "json", false, "JSON output")
	for _, n := range []string{"id", "asset", "rate", "reason"} {
		plan.MarkFlagRequired(n)
	}

	var exID string
	var ef coreFlags
	execute := &cobra.Command{
		Use:   "execute",
		Short: "pay an approved plan, part by part, through the core's API, each part signed with your key (again pays nobody twice)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := ef.client(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			run := newRequestID("run")
			bar := newProgress(cmd.ErrOrStderr())
			defer bar.finish()
			for {
				var p api.CompensationView
				if err := c.Get(cmd.Context(), "/v1/compensation/"+url.PathEscape(exID), &p); err != nil {
					return err
				}
				if p.Status == compensation.Done && p.Paid == p.Count {
					fmt.Fprintf(out, "plan %s: all %d paid\n", p.ID, p.Count)
					return nil
				}
				n := min(compensation.ChunkSize, p.Count-p.Paid)
				v, err := c.Command(cmd.Context(), core.ExecuteCompensation{Plan: exID, From: p.Paid, Count: n, Actor: c.Operator, Run: run})
				if err != nil {
					return err
				}
				var r core.ExecutionResult
				if err := json.Unmarshal(v, &r); err != nil {
					return err
				}
				bar.set("paying "+p.ID, uint64(p.Paid+n), uint64(p.Count))
				fmt.Fprintf(out, "paid %d customers (%d already paid), %d base units; %d of %d done\n", r.Paid, r.Already, r.Amount, p.Paid+n, p.Count)
				for _, sf := range r.Shortfalls {
					fmt.Fprintf(out, "ALERT: after this plan the customer side of %s is short by %s base units (customer liabilities %s, customer-side holdings %s); incident %s is open\n",
						sf.Asset, sf.Short, sf.Liabilities, sf.Holdings, sf.Incident)
				}
			}
		},
	}
	ef.add(execute)
	execute.Flags().StringVar(&exID, "id", "", "plan id")
	execute.MarkFlagRequired("id")

	var shID, shDir string
	show := &cobra.Command{
		Use:   "show",
		Short: "a plan's rule, dry run and progress",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := loadState(cmd.Context(), shDir, "")
			if err != nil {
				return err
			}
			p, ok := st.Compensation.Get(shID)
			if !ok {
				return compensation.ErrUnknown
			}
			code := fmt.Sprint(p.PayAsset)
			if a, ok := st.Ledger.Asset(p.PayAsset); ok {
				code = a.Code
			}
			printSummary(cmd.OutOrStdout(), p, compensation.Summarize(p.Payouts), code)
			return nil
		},
	}
	dataFlag(show, &shDir)
	show.Flags().StringVar(&shID, "id", "", "plan id")
	show.MarkFlagRequired("id")
	var fDir, fID, fMarket, fFrom, fResume, fReason, fIncident string
	var fDry bool
	var ff2 coreFlags
	fills := &cobra.Command{
		Use:   "fills",
		Short: "a suspension-fills plan (BITPoint's rule): fills in (--from, --resume] worse than the mid at resumption, the difference in the quote asset",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			j, err := openJournal(fDir)
			if err != nil {
				return err
			}
			seqOf := func(at string) (uint64, error) {
				seq, t, isTime, err := parseAt(at)
				if err != nil || !isTime {
					return seq, err
				}
				st, err := core.StateAtTime(cmd.Context(), fDir, j, t, time.Now())
				if err != nil {
					return 0, err
				}
				return st.Seq(), nil
			}
			from, err := seqOf(fFrom)
			if err != nil {
				j.Close()
				return err
			}
			resume, err := seqOf(fResume)
			if err != nil {
				j.Close()
				return err
			}
			st, err := core.StateAt(cmd.Context(), fDir, j, resume)
			if err != nil {
				j.Close()
				return err
			}
			m, ok := st.Trading.MarketByCode(fMarket)
			if !ok {
				j.Close()
				return fmt.Errorf("unknown market %q", fMarket)
			}
			mid := m.Mid()
			if mid == 0 {
				j.Close()
				return fmt.Errorf("market %s has no mid at entry %d (a side is empty)", m.Listing.Code, resume)
			}
			trades, err := core.FillsBetween(cmd.Context(), fDir, j, m.Listing.ID, from, resume)
			j.Close()
			if err != nil {
				return err
			}
			ps := core.SuspensionPayouts(m.Listing, trades, mid)
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: %d fills in entries (%d, %d], mid at resumption %d\n", m.Listing.Code, len(trades), from, resume, mid)
			if len(ps) == 0 {
				fmt.Fprintln(out, "nobody traded worse than the mid: nothing to pay")
				return nil
			}
			p := compensation.Plan{ID: fID, Incident: fIncident, Rule: compensation.SuspensionFills, Asset: m.Listing.Base, PayAsset: m.Listing.Quote, At: resume,
				Rounding: "down to the quote asset's base unit", Reason: fReason, Requester: requesterOf(ff2, fDry)}
			p.Header(ps)
			if err := p.Check(); err != nil {
				return err
			}
			code := fmt.Sprint(m.Listing.Quote)
			if a, ok := st.Ledger.Asset(m.Listing.Quote); ok {
				code = a.Code
			}
			printSummary(out, &p, compensation.Summarize(ps), code)
			if fDry {
				return nil
			}
			return writePlan(cmd, &ff2, &p, ps)
		},
	}
	dataFlag(fills, &fDir)
	ff2.addOptional(fills)
	ff := fills.Flags()
	ff.StringVar(&fID, "id", "", "plan id")
	ff.StringVar(&fMarket, "market", "", "market (BTC/JPY)")
	ff.StringVar(&fFrom, "from", "", "the suspension's start: a sequence number or an RFC 3339 time")
	ff.StringVar(&fResume, "resume", "", "the resumption: a sequence number or an RFC 3339 time")
	ff.StringVar(&fReason, "reason", "", "why")
	ff.StringVar(&fIncident, "incident", "", "the incident it answers")
	ff.BoolVar(&fDry, "dry-run", false, "print the dry run only")
	for _, n := range []string{"id", "market", "from", "resume", "reason"} {
		fills.MarkFlagRequired(n)
	}
	cmd.AddCommand(plan, execute, show, fills)
	return cmd
}

// writePlan journals a plan and its payouts, in parts, as a draft,
// through the core's API as the plan's writer.
func writePlan(cmd *cobra.Command, f *coreFlags, p *compensation.Plan, ps []compensation.Payout) error {
	if f.operator == "" || f.key == "" {
		return errors.New("writing a plan goes through the core: --core, --operator and --key (or --dry-run)")
	}
	c, err := f.client(cmd.Context())
	if err != nil {
		return err
	}
	if _, err := c.Command(cmd.Context(), core.WriteCompensation{Plan: *p}); err != nil {
		return err
	}
	for i := 0; i < len(ps); i += compensation.ChunkSize {
		if _, err := c.Command(cmd.Context(), core.AddPayouts{Plan: p.ID, Payouts: ps[i:min(i+compensation.ChunkSize, len(ps))]}); err != nil {
			return err
		}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "plan %s written as a draft; a second operator approves it (request kind %s)\n", p.ID, core.KindApproveCompensation)
	return nil
}

// requesterOf is who writes a plan: the operator, or nobody for a dry run.
func requesterOf(f coreFlags, dry bool) string {
	if f.operator == "" && dry {
		return "dry-run"
	}
	return f.operator
}
