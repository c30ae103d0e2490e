package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/core"
	"kinko/internal/journal"
	"kinko/internal/journal/tree"
	"kinko/internal/witness"
)

// maxShowLimit bounds `journal show --limit`.
const maxShowLimit = 100_000

// openJournal opens the data directory's journal to read it, a running
// core's too (then a copy of it as it is now: journal.OpenSnapshot).
func openJournal(dir string) (*journal.Journal, error) {
	return journal.OpenSnapshot(filepath.Join(dir, "journal"))
}

func newJournalCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "journal", Short: "inspect and verify the hash-chained journal, its Merkle tree, signed heads and proofs"}
	var dir, secretsDir, pubkeyFile string
	var headFiles, witnesses, witnessKeys []string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "check every entry's hash, link and payload and the Merkle tree; with --head or --witness, the journal against heads saved earlier or kept by a witness; name the first bad entry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return verifyJournal(cmd, dir, secretsDir, headFiles, pubkeyFile, witnesses, witnessKeys)
		},
	}
	dataFlag(verify, &dir)
	secretsFlag(verify, &secretsDir)
	verify.Flags().StringArrayVar(&headFiles, "head", nil, "a signed head saved earlier (kinko journal head): the journal must hold its entries unchanged; may be given more than once")
	verify.Flags().StringVar(&pubkeyFile, "pubkey", "", "the verifier key of the heads (kinko journal key); default: the data directory's own key")
	verify.Flags().StringArrayVar(&witnesses, "witness", nil, "a witness's URL (its --witness-listen; every head it kept is fetched) or a file of heads saved from it (GET /witness/heads pages, or one head); repeatable")
	verify.Flags().StringArrayVar(&witnessKeys, "witness-key", nil, "the public key file of each --witness, in the same order (kinko cosigner|watch witness-key); without, the witnesses' signatures are not checked")

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
	cmd.AddCommand(newJournalProofCmds()...)
	cmd.AddCommand(newJournalAnchorCmds()...)
	return cmd
}

// verifyJournal is `kinko journal verify`: the chain, the payloads, the tree
// against the entries, and the journal against each head saved earlier.
func verifyJournal(cmd *cobra.Command, dir, secretsDir string, headFiles []string, pubkeyFile string, witnesses, witnessKeys []string) error {
	w := cmd.OutOrStdout()
	bad := func(err error) error {
		var be *journal.BadEntryError
		if errors.As(err, &be) {
			fmt.Fprintf(w, "journal BAD at entry %d: %s\n", be.Seq, be.Reason)
		}
		return &exitError{code: 2, err: err}
	}
	var heads []tree.Head
	if len(headFiles) > 0 {
		v, err := headVerifier(dir, secretsDir, pubkeyFile)
		if err != nil {
			return err
		}
		for _, f := range headFiles {
			h, err := readHead(f, v)
			if err != nil {
				fmt.Fprintf(w, "head %s REFUSED: %v\n", f, err)
				return &exitError{code: 2, err: err}
			}
			heads = append(heads, h)
		}
	}
	wheads, err := witnessHeads(cmd, witnesses, witnessKeys)
	if err != nil {
		return err
	}
	heads = append(heads, wheads...)
	sort.SliceStable(heads, func(a, b int) bool { return heads[a].Size < heads[b].Size })
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
	// The heads in order of size: the first that the journal does not
	// hold, after the last that it does, bounds the first entry changed.
	var good uint64
	for _, h := range heads {
		err := j.CheckHead(h)
		var he *journal.HistoryError
		switch {
		case err == nil:
			good = h.Size
			continue
		case errors.As(err, &he) && he.Size == good+1:
			fmt.Fprintf(w, "journal BAD at entry %d: it is not the entry the head of %d entries signed (the head of %d still matches): entries and tree were rewritten from it\n", he.Size, he.Size, good)
		case errors.As(err, &he):
			since := ""
			if good > 0 {
				since = fmt.Sprintf(", while its first %d are the head of %d's", good, good)
			}
			fmt.Fprintf(w, "journal BAD: its first %d entries are not the history the head signed (their root is %s, the head's %s)%s: the first entry changed is one of %d to %d. Its entries and its tree were both rewritten, so the heads given cannot name it more closely (a mirror, or more heads between, can)\n", he.Size, he.Root, he.HeadRoot, since, good+1, he.Size)
		default:
			return bad(err)
		}
		return &exitError{code: 2, err: err}
	}
	th := j.TreeHead()
	fmt.Fprintf(w, "journal OK: %d entries, head %s, tree root %s (%s)\n", r.Entries, r.Head, th.Root, time.Since(start).Round(time.Millisecond))
	if len(heads) <= maxHeadLines {
		for _, h := range heads {
			fmt.Fprintf(w, "holds the head of %s at %d entries (root %s) unchanged\n", h.Origin, h.Size, h.Root)
		}
		return nil
	}
	// Many heads (a witness's): one line per origin.
	type span struct {
		n        int
		from, to uint64
	}
	var origins []string
	spans := map[string]*span{}
	for _, h := range heads {
		sp, ok := spans[h.Origin]
		if !ok {
			sp = &span{from: h.Size}
			spans[h.Origin] = sp
			origins = append(origins, h.Origin)
		}
		sp.n++
		sp.to = h.Size
	}
	for _, o := range origins {
		sp := spans[o]
		fmt.Fprintf(w, "holds the %d heads of %s, at %d to %d entries, unchanged\n", sp.n, o, sp.from, sp.to)
	}
	return nil
}

// maxHeadLines bounds the heads verify names one by one.
const maxHeadLines = 16

// witnessHeads reads the heads each witness kept (from its URL, or a file
// saved from it) and checks them with its key, if given.
func witnessHeads(cmd *cobra.Command, witnesses, keys []string) ([]tree.Head, error) {
	w := cmd.OutOrStdout()
	if len(keys) > 0 && len(keys) != len(witnesses) {
		return nil, fmt.Errorf("%w: %d witnesses, %d keys", witness.ErrUnpinned, len(witnesses), len(keys))
	}
	var heads []tree.Head
	for i, src := range witnesses {
		var v *tree.Verifier
		if len(keys) > 0 {
			var err error
			if v, err = optionalVerifier(keys[i]); err != nil {
				return nil, err
			}
		}
		var notes [][]byte
		var err error
		if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
			notes, err = witness.FetchHeads(cmd.Context(), &http.Client{Timeout: time.Minute}, src, 1)
		} else {
			var b []byte
			if b, err = readSmall(src); err == nil {
				notes, err = witness.ParseHeadsFile(b)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("witness %s: %w", src, err)
		}
		for _, n := range notes {
			var h tree.Head
			if v != nil {
				h, err = v.Verify(n)
			} else {
				h, err = tree.ParseHead(n)
			}
			if err != nil {
				fmt.Fprintf(w, "witness %s: a head REFUSED: %v\n", src, err)
				return nil, &exitError{code: 2, err: err}
			}
			heads = append(heads, h)
		}
		note := ""
		if v == nil {
			note = " (signatures NOT checked: give --witness-key)"
		}
		fmt.Fprintf(w, "witness %s: %d heads%s\n", src, len(notes), note)
	}
	return heads, nil
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
