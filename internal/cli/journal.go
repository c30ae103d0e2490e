package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/core"
	"kinko/internal/journal"
)

// maxShowLimit bounds `journal show --limit`.
const maxShowLimit = 100_000

func openJournal(dir string) (*journal.Journal, error) {
	return journal.Open(filepath.Join(dir, "journal"), journal.Options{})
}

func newJournalCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "journal", Short: "inspect and verify the hash-chained journal"}
	var dir string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "check every entry's hash, link and payload; name the first bad entry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			j, err := openJournal(dir)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			defer j.Close()
			start := time.Now()
			r, err := j.Verify(core.CheckPayload)
			if err != nil {
				var bad *journal.BadEntryError
				if errors.As(err, &bad) {
					fmt.Fprintf(cmd.OutOrStdout(), "journal BAD at entry %d: %s\n", bad.Seq, bad.Reason)
				}
				return &exitError{code: 2, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "journal OK: %d entries, head %s (%s)\n", r.Entries, r.Head, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	dataFlag(verify, &dir)

	var from, limit uint64
	var asJSON bool
	show := &cobra.Command{
		Use:   "show",
		Short: "print journal entries",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit == 0 || limit > maxShowLimit {
				return fmt.Errorf("--limit must be 1..%d", maxShowLimit)
			}
			j, err := openJournal(dir)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			defer j.Close()
			w := cmd.OutOrStdout()
			// The state before the first entry shown: each entry is applied
			// to it, so a command the state machine refused says so.
			if from == 0 {
				from = 1
			}
			st, err := core.StateAt(cmd.Context(), dir, j, from-1)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			var n uint64
			return j.Scan(from, func(e journal.Entry) error {
				if n++; n > limit {
					return journal.ErrStop
				}
				c, derr := core.DecodeCommand(e.Kind, e.Payload)
				row := entryView{Seq: e.Seq, Time: time.Unix(0, e.Time).UTC(), Kind: core.Kind(e.Kind).String(), Prev: e.Prev.String(), Hash: e.Hash.String(), Command: c}
				if derr != nil {
					row.Error = derr.Error()
				}
				if o := st.Apply(&e); o.Err != nil {
					row.Refused = o.Err.Error()
				}
				if asJSON {
					b, err := json.Marshal(row)
					if err != nil {
						return err
					}
					fmt.Fprintln(w, string(b))
					return nil
				}
				what := core.Describe(c)
				if row.Refused != "" {
					what = "REFUSED (" + row.Refused + "): " + what
				}
				fmt.Fprintf(w, "%8d  %s  %-18s %s…  %s\n", row.Seq, row.Time.Format(time.RFC3339Nano), row.Kind, row.Hash[:16], what)
				return nil
			})
		},
	}
	dataFlag(show, &dir)
	show.Flags().Uint64Var(&from, "from", 1, "first sequence number")
	show.Flags().Uint64Var(&limit, "limit", 20, "entries to print")
	show.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	cmd.AddCommand(verify, show)
	return cmd
}

type entryView struct {
	Seq     uint64       `json:"seq"`
	Time    time.Time    `json:"time"`
	Kind    string       `json:"kind"`
	Prev    string       `json:"prev"`
	Hash    string       `json:"hash"`
	Command core.Command `json:"command,omitempty"`
	Error   string       `json:"error,omitempty"`
	// Refused is why the state machine refused the command: it changed
	// nothing.
	Refused string `json:"refused,omitempty"`
}
