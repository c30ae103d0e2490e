package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/spf13/cobra"

	"kinko/internal/anchor"
	"kinko/internal/core"
	"kinko/internal/journal"
	"kinko/internal/journal/tree"
	"kinko/internal/withdraw"
)

// anchorView is one anchor as `kinko journal anchors --json` prints it.
type anchorView struct {
	TxID     string    `json:"txid"`
	Vout     uint32    `json:"vout"`
	Batch    string    `json:"batch"`
	Status   string    `json:"status"`
	Height   int32     `json:"height,omitempty"`
	Size     uint64    `json:"size"`
	Root     tree.Hash `json:"root"`
	Reserved time.Time `json:"reserved"`
}

func newJournalAnchorCmds() []*cobra.Command {
	var dir string
	var asJSON bool
	anchors := &cobra.Command{
		Use:   "anchors",
		Short: "list the journal's heads anchored on chain: each batch's transaction, its block, and the tree size and root it carries",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			j, err := openJournal(dir)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			defer j.Close()
			head, _, _ := j.Head()
			st, err := core.StateAt(cmd.Context(), dir, j, head)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			w := cmd.OutOrStdout()
			n := 0
			for _, b := range st.Withdraw.Batches() {
				if b.Anchor == nil {
					continue
				}
				n++
				v := anchorView{TxID: chainhash.Hash(b.TxID).String(), Vout: b.Anchor.Vout, Batch: b.ID, Status: string(b.Status), Size: b.Anchor.Size, Root: b.Anchor.Root,
					Reserved: time.Unix(0, b.Anchor.Time).UTC()}
				if b.Status == withdraw.BatchConfirmed {
					v.Height = b.Height
				}
				if asJSON {
					if err := writeJSONLine(w, v); err != nil {
						return err
					}
					continue
				}
				block := "not mined yet"
				switch {
				case v.Height > 0:
					block = fmt.Sprintf("block %d", v.Height)
				case b.Status == withdraw.BatchFailed:
					block = "failed: never mined"
				}
				fmt.Fprintf(w, "%s:%d  %-14s size %d  root %s  (%s, reserved %s)\n", v.TxID, v.Vout, block, v.Size, v.Root, v.Batch, v.Reserved.Format(time.RFC3339))
			}
			if n == 0 && !asJSON {
				fmt.Fprintln(w, "no anchors yet: the hot signer anchors the head in its next withdrawal batch after --anchor-every")
			}
			return nil
		},
	}
	dataFlag(anchors, &dir)
	anchors.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")

	var txid, block, data, copyDir string
	var seq uint64
	var nf nodeFlags
	check := &cobra.Command{
		Use:   "check-anchor",
		Short: "prove from a node and a copy of the journal alone that entry --seq stood unaltered at an anchor: the transaction's block, the size and root it carries, the entry's inclusion proof against that root",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			w := cmd.OutOrStdout()
			if seq == 0 {
				return errors.New("--seq must be a sequence number >= 1")
			}
			if (data == "") == (copyDir == "") {
				return errors.New("give one of --data (a stopped core's data directory) or --journal-copy (a journal directory: a copy, or a witness's mirror)")
			}
			id, err := chainhash.NewHashFromStr(txid)
			if err != nil || len(txid) != 64 {
				return fmt.Errorf("--tx %q is not a transaction id", txid)
			}
			node, _, err := nf.dial()
			if err != nil {
				return err
			}
			defer node.Close()
			// The block: given, or the node's transaction index.
			var bh chainhash.Hash
			if block != "" {
				h, err := chainhash.NewHashFromStr(block)
				if err != nil || len(block) != 64 {
					return fmt.Errorf("--block %q is not a block hash", block)
				}
				bh = *h
			} else {
				h, mined, err := node.TxBlock(ctx, *id)
				if err != nil {
					return fmt.Errorf("the node does not know transaction %s (a node without a transaction index needs --block): %w", id, err)
				}
				if !mined {
					fmt.Fprintf(w, "anchor BAD: transaction %s is not mined yet\n", id)
					return &exitError{code: 2, err: errors.New("not mined")}
				}
				bh = h
			}
			blk, err := node.Block(ctx, bh)
			if err != nil {
				return err
			}
			var tx *wire.MsgTx
			for _, t := range blk.Transactions {
				if t.TxHash() == *id {
					tx = t
					break
				}
			}
			if tx == nil {
				fmt.Fprintf(w, "anchor BAD: block %s does not hold transaction %s\n", bh, id)
				return &exitError{code: 2, err: errors.New("not in the block")}
			}
			height, confs, best, err := node.BlockInfo(ctx, bh)
			if err != nil {
				return err
			}
			if !best {
				fmt.Fprintf(w, "anchor BAD: block %s (height %d) is not in the node's best chain\n", bh, height)
				return &exitError{code: 2, err: errors.New("not in the best chain")}
			}
			a, vout, err := anchor.Find(tx)
			if err != nil {
				fmt.Fprintf(w, "anchor BAD: transaction %s: %v\n", id, err)
				return &exitError{code: 2, err: err}
			}
			jdir := copyDir
			if data != "" {
				jdir = filepath.Join(data, "journal")
			}
			j, err := journal.Open(jdir, journal.Options{})
			if err != nil {
				if strings.Contains(err.Error(), "lock") {
					err = fmt.Errorf("%w (is a process using %s? check a copy)", err, jdir)
				}
				return &exitError{code: 2, err: err}
			}
			defer j.Close()
			fmt.Fprintf(w, "anchor: transaction %s output %d, block %s at height %d (confirmations: %d): the journal's tree of %d entries, root %s\n", id, vout, bh, height, confs, a.Size, a.Root)
			if n := j.TreeHead().Size; n < a.Size {
				err := fmt.Errorf("the journal holds %d entries; the anchor names %d", n, a.Size)
				fmt.Fprintf(w, "anchor BAD: %v\n", err)
				return &exitError{code: 2, err: err}
			}
			if seq > a.Size {
				return fmt.Errorf("--seq %d is after the anchored tree of %d entries: a later anchor covers it", seq, a.Size)
			}
			root, err := j.RootAt(a.Size)
			if err != nil {
				fmt.Fprintf(w, "anchor BAD: %v\n", err)
				return &exitError{code: 2, err: err}
			}
			if root != a.Root {
				err := fmt.Errorf("the journal's first %d entries are not the anchored history: their root is %s, the chain's %s", a.Size, root, a.Root)
				fmt.Fprintf(w, "anchor BAD: %v\n", err)
				return &exitError{code: 2, err: err}
			}
			p, err := j.InclusionProof(seq, a.Size)
			if err != nil {
				fmt.Fprintf(w, "anchor BAD: %v\n", err)
				return &exitError{code: 2, err: err}
			}
			last, err := j.Get(a.Size)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			// The root from the chain; the time is the anchored tree's
			// newest entry's, which the root commits to.
			if err := p.Verify(tree.Head{Size: a.Size, Root: a.Root, Time: last.Time}); err != nil {
				fmt.Fprintf(w, "anchor BAD: entry %d: %v\n", seq, err)
				return &exitError{code: 2, err: err}
			}
			e, _ := journal.Decode(p.Entry)
			fmt.Fprintf(w, "anchor OK: entry %d (hash %s, %s at %s) is entry %d of the %d anchored in %s (confirmations: %d)\n",
				seq, p.EntryHash, core.Kind(e.Kind), time.Unix(0, e.Time).UTC().Format(time.RFC3339Nano), seq, a.Size, id, confs)
			return nil
		},
	}
	check.Flags().StringVar(&txid, "tx", "", "the anchoring transaction (kinko journal anchors)")
	check.Flags().StringVar(&block, "block", "", "the block holding it (default: asked of the node's transaction index)")
	check.Flags().StringVar(&data, "data", "", "a stopped core's data directory")
	check.Flags().StringVar(&copyDir, "journal-copy", "", "a journal directory: a copy of <data>/journal, or a witness's mirror (<state>/journal)")
	check.Flags().Uint64Var(&seq, "seq", 0, "the entry to prove")
	nf.add(check)
	check.MarkFlagRequired("tx")
	check.MarkFlagRequired("seq")
	return []*cobra.Command{anchors, check}
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
