package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/core"
	"kinko/internal/incident"
	"kinko/internal/people"
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
			evs, err := core.Timeline(j, from, core.Applied(st), core.NamesOf(st))
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

// journalThroughCore gives one command through the core's API as the
// signed-in operator (build names them) and prints what it journaled.
func journalThroughCore(cmd *cobra.Command, f *coreFlags, build func(operator string) core.Command) error {
	c, err := f.client(cmd.Context())
	if err != nil {
		return err
	}
	x := build(c.Operator)
	if _, err := c.Command(cmd.Context(), x); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s journaled by %s\n", x.Kind(), c.Operator)
	return nil
}

func newIncidentOpenCmd() *cobra.Command {
	var id, asset, reason string
	var f coreFlags
	var txs []string
	c := &cobra.Command{
		Use:   "open",
		Short: "open an incident by hand (detectors open theirs themselves); again adds transactions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return journalThroughCore(cmd, &f, func(op string) core.Command {
				return core.OpenIncident{Incident: incident.Incident{ID: id, Asset: strings.ToUpper(asset), Detector: op, Reason: reason, TxIDs: txs}}
			})
		},
	}
	f.add(c)
	c.Flags().StringVar(&id, "id", "", "incident id")
	c.Flags().StringVar(&asset, "asset", "", "asset")
	c.Flags().StringVar(&reason, "reason", "", "what happened")
	c.Flags().StringSliceVar(&txs, "tx", nil, "an offending transaction (repeatable)")
	for _, n := range []string{"id", "reason"} {
		c.MarkFlagRequired(n)
	}
	return c
}

func newIncidentNoteCmd() *cobra.Command {
	var id, text string
	var f coreFlags
	c := &cobra.Command{
		Use:   "note",
		Short: "add a note to an incident",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return journalThroughCore(cmd, &f, func(op string) core.Command { return core.NoteIncident{ID: id, Actor: op, Text: text} })
		},
	}
	f.add(c)
	c.Flags().StringVar(&id, "id", "", "incident id")
	c.Flags().StringVar(&text, "text", "", "the note")
	for _, n := range []string{"id", "text"} {
		c.MarkFlagRequired(n)
	}
	return c
}

func newIncidentCloseCmd() *cobra.Command {
	var id, reason string
	var f coreFlags
	c := &cobra.Command{
		Use:   "close",
		Short: "ask to close an incident with its reason; a second operator (approver or admin) approves, and the approval closes it",
		Long: `kinko incident close files a close_incident request: closing an incident
takes two people, as lifting a halt does. A second operator with the
approver or admin role approves it (kinko requests approve --id ..., or
Approve on the console's Approvals page); the approval closes the incident
in its own journal entry, with both names.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			rid, err := openRequest(cmd.Context(), c, core.KindCloseIncident, core.CloseIncidentPayload{Incident: id}, people.RoleApprover, reason, 24*time.Hour)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "close of incident %s requested by %s (%s); a second operator approves: kinko requests approve --id %s\n", id, c.Operator, rid, rid)
			return nil
		},
	}
	f.add(c)
	c.Flags().StringVar(&id, "id", "", "incident id")
	c.Flags().StringVar(&reason, "reason", "", "why it is closed")
	for _, n := range []string{"id", "reason"} {
		c.MarkFlagRequired(n)
	}
	return c
}

// buildReport gathers an incident's record, timeline and plans from the
// journal of a stopped data directory.
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
	return core.IncidentReport(st, j, id)
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
