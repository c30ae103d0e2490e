package cli

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/compensation"
	"kinko/internal/core"
	"kinko/internal/incident"
	"kinko/internal/ledger"
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
	cmd.AddCommand(timeline, newIncidentOpenCmd(), newIncidentNoteCmd(), newIncidentCloseCmd(), newIncidentReportCmd("show"), newIncidentReportCmd("report"), newIncidentReportCmd("notice"))
	return cmd
}

// journalOffline submits one command to the core of a stopped data
// directory and prints its entry.
func journalOffline(cmd *cobra.Command, dir string, c core.Command) error {
	k, err := core.Open(cmd.Context(), core.Config{Dir: dir})
	if err != nil {
		return err
	}
	defer k.Close()
	o, err := k.Submit(cmd.Context(), time.Now(), c)
	if err == nil {
		err = o.Err
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s journaled as entry %d\n", c.Kind(), o.Seq)
	return nil
}

func newIncidentOpenCmd() *cobra.Command {
	var dir, id, asset, reason, actor string
	var txs []string
	c := &cobra.Command{
		Use:   "open",
		Short: "open an incident by hand (detectors open theirs themselves); again adds transactions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return journalOffline(cmd, dir, core.OpenIncident{Incident: incident.Incident{ID: id, Asset: strings.ToUpper(asset), Detector: actor, Reason: reason, TxIDs: txs}})
		},
	}
	dataFlag(c, &dir)
	c.Flags().StringVar(&id, "id", "", "incident id")
	c.Flags().StringVar(&asset, "asset", "", "asset")
	c.Flags().StringVar(&reason, "reason", "", "what happened")
	c.Flags().StringVar(&actor, "actor", "", "the operator opening it")
	c.Flags().StringSliceVar(&txs, "tx", nil, "an offending transaction (repeatable)")
	for _, n := range []string{"id", "reason", "actor"} {
		c.MarkFlagRequired(n)
	}
	return c
}

func newIncidentNoteCmd() *cobra.Command {
	var dir, id, text, actor string
	c := &cobra.Command{
		Use:   "note",
		Short: "add a note to an incident",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return journalOffline(cmd, dir, core.NoteIncident{ID: id, Actor: actor, Text: text})
		},
	}
	dataFlag(c, &dir)
	c.Flags().StringVar(&id, "id", "", "incident id")
	c.Flags().StringVar(&text, "text", "", "the note")
	c.Flags().StringVar(&actor, "actor", "", "the operator")
	for _, n := range []string{"id", "text", "actor"} {
		c.MarkFlagRequired(n)
	}
	return c
}

func newIncidentCloseCmd() *cobra.Command {
	var dir, id, reason, actor string
	c := &cobra.Command{
		Use:   "close",
		Short: "close an incident with its reason",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return journalOffline(cmd, dir, core.CloseIncident{ID: id, Actor: actor, Reason: reason})
		},
	}
	dataFlag(c, &dir)
	c.Flags().StringVar(&id, "id", "", "incident id")
	c.Flags().StringVar(&reason, "reason", "", "why it is closed")
	c.Flags().StringVar(&actor, "actor", "", "the operator")
	for _, n := range []string{"id", "reason", "actor"} {
		c.MarkFlagRequired(n)
	}
	return c
}

// buildReport gathers an incident's record, timeline and plans from the
// journal.
func buildReport(cmd *cobra.Command, dir, id string) (*incident.Report, error) {
	j, err := openJournal(dir)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	head, _, _ := j.Head()
	st, err := core.StateAt(cmd.Context(), dir, j, head)
	if err != nil {
		return nil, err
	}
	in, ok := st.Incidents.Get(id)
	if !ok {
		return nil, fmt.Errorf("%w: %q", incident.ErrUnknown, id)
	}
	// The detector halts just before it opens the record: start a little
	// earlier.
	from := uint64(1)
	if in.Seq > 10 {
		from = in.Seq - 10
	}
	evs, err := core.Timeline(j, from, core.Applied(st))
	if err != nil {
		return nil, err
	}
	r := &incident.Report{Incident: in, Asset: in.Asset, Events: evs, Zone: time.FixedZone("JST", 9*3600)}
	for _, p := range st.Compensation.List() {
		if p.Incident != id {
			continue
		}
		held, _ := st.Ledger.Asset(p.Asset)
		pay, _ := st.Ledger.Asset(p.PayAsset)
		sum := compensation.Summarize(p.Payouts)
		line := incident.PlanLine{ID: p.ID, Rule: string(p.Rule), Rounding: p.Rounding, Customers: p.Count, Status: string(p.Status),
			Requester: p.Requester, Approver: p.Approver, Total: money(p.Total, pay), Largest: money(sum.Largest.Pay, pay)}
		if e, err := j.Get(p.At); err == nil {
			line.At = time.Unix(0, e.Time)
		}
		if p.Rule == compensation.FixedRate {
			r := new(big.Rat).SetFrac(new(big.Int).SetUint64(p.RateNum), new(big.Int).SetUint64(p.RateDen))
			r.Mul(r, new(big.Rat).SetFrac(pow10(held.Decimals), pow10(pay.Decimals)))
			line.Rate = strings.TrimRight(strings.TrimRight(r.FloatString(int(pay.Decimals)+6), "0"), ".") + " " + pay.Code + " per " + held.Code
		} else {
			line.Rate = "the difference to the mid at resumption, in " + pay.Code
		}
		r.Plans = append(r.Plans, line)
	}
	return r, nil
}

// money formats base units of asset a with its decimals and code.
func money(v uint64, a ledger.Asset) string {
	return ledger.AmountOf(v).FormatDecimal(a.Decimals) + " " + a.Code
}

func newIncidentReportCmd(what string) *cobra.Command {
	var dir, id, format string
	short := map[string]string{
		"show":   "an incident: its record, offending transactions, notes, plans and timeline (Markdown)",
		"report": "an incident's report as Markdown or HTML (with a timeline picture)",
		"notice": "a draft customer notice with the incident's facts filled in",
	}[what]
	c := &cobra.Command{
		Use:   what,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := buildReport(cmd, dir, id)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case what == "notice":
				return r.WriteNotice(out)
			case format == "html":
				return r.WriteHTML(out)
			case format == "md" || format == "":
				return r.WriteMarkdown(out)
			}
			return fmt.Errorf("--format %q: md or html", format)
		},
	}
	dataFlag(c, &dir)
	c.Flags().StringVar(&id, "id", "", "incident id")
	if what == "report" {
		c.Flags().StringVar(&format, "format", "md", "md or html")
	}
	c.MarkFlagRequired("id")
	return c
}
