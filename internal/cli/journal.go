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
	"kinko/internal/journal/tree"
)

// maxShowLimit bounds `journal show --limit`.
const maxShowLimit = 100_000

func openJournal(dir string) (*journal.Journal, error) {
	return journal.Open(filepath.Join(dir, "journal"), journal.Options{})
}

func newJournalCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "journal", Short: "inspect and verify the hash-chained journal"}
	var dir, headFile, pubkeyFile string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "check every entry's hash, link and payload and the Merkle tree; with --head, the journal against a head saved earlier; name the first bad entry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return verifyJournal(cmd, dir, headFile, pubkeyFile)
		},
	}
	dataFlag(verify, &dir)
	verify.Flags().StringVar(&headFile, "head", "", "a signed head saved earlier (kinko journal head): the journal must hold its entries unchanged")
	verify.Flags().StringVar(&pubkeyFile, "pubkey", "", "the verifier key of the heads (kinko journal key); default: the data directory's own key")

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
				if asJSON {
					b, err := json.Marshal(row)
					if err != nil {
						return err
					}
					fmt.Fprintln(w, string(b))
					return nil
				}
				fmt.Fprintf(w, "%8d  %s  %-18s %s…  %s\n", row.Seq, row.Time.Format(time.RFC3339Nano), row.Kind, row.Hash[:16], core.Describe(c))
				return nil
			})
		},
	}
	dataFlag(show, &dir)
	show.Flags().Uint64Var(&from, "from", 1, "first sequence number")
	show.Flags().Uint64Var(&limit, "limit", 20, "entries to print")
	show.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	cmd.AddCommand(verify, show)
	cmd.AddCommand(newJournalProofCmds()...)
	return cmd
}

// verifyJournal is `kinko journal verify`: the chain, the payloads, the tree
// against the entries, and, with a head, the journal against it.
func verifyJournal(cmd *cobra.Command, dir, headFile, pubkeyFile string) error {
	w := cmd.OutOrStdout()
	bad := func(err error) error {
		var be *journal.BadEntryError
		var he *journal.HistoryError
		switch {
		case errors.As(err, &be):
			fmt.Fprintf(w, "journal BAD at entry %d: %s\n", be.Seq, be.Reason)
		case errors.As(err, &he):
			fmt.Fprintf(w, "journal BAD: its first %d entries are not the history the head signed: their root is %s, the head's %s; its entries and its tree were both rewritten, so no one entry can be named from this head (a mirror, or an older head that still matches, narrows it)\n", he.Size, he.Root, he.HeadRoot)
		}
		return &exitError{code: 2, err: err}
	}
	var head *tree.Head
	if headFile != "" {
		v, err := headVerifier(dir, pubkeyFile)
		if err != nil {
			return err
		}
		h, err := readHead(headFile, v)
		if err != nil {
			fmt.Fprintf(w, "head REFUSED: %v\n", err)
			return &exitError{code: 2, err: err}
		}
		head = &h
	}
	j, err := openJournal(dir)
	if err != nil {
		return bad(err)
	}
	defer j.Close()
	start := time.Now()
	r, err := j.Verify(core.CheckPayload)
	if err != nil {
		return bad(err)
	}
	if head != nil {
		if err := j.CheckHead(*head); err != nil {
			return bad(err)
		}
	}
	th := j.TreeHead()
	fmt.Fprintf(w, "journal OK: %d entries, head %s, tree root %s (%s)\n", r.Entries, r.Head, th.Root, time.Since(start).Round(time.Millisecond))
	if head != nil {
		fmt.Fprintf(w, "holds the head of %s at %d entries (root %s) unchanged\n", head.Origin, head.Size, head.Root)
	}
	return nil
}

type entryView struct {
	Seq     uint64       `json:"seq"`
	Time    time.Time    `json:"time"`
	Kind    string       `json:"kind"`
	Prev    string       `json:"prev"`
	Hash    string       `json:"hash"`
	Command core.Command `json:"command,omitempty"`
	Error   string       `json:"error,omitempty"`
}
