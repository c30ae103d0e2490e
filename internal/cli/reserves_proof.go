package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/reserves"
	"kinko/internal/reserves/attest"
	"kinko/internal/reserves/sumtree"
)

// resolveAt turns --at (empty: the journal's head; a sequence number; an
// RFC 3339 time) into a journal entry of c.
func resolveAt(cmd *cobra.Command, c *core.Core, at string) (uint64, error) {
	if at == "" {
		head, _, _ := c.Journal().Head()
		return head, nil
	}
	seq, t, isTime, err := parseAt(at)
	if err != nil {
		return 0, err
	}
	if !isTime {
		if head, _, _ := c.Journal().Head(); seq > head {
			return 0, fmt.Errorf("%w: %d > %d", core.ErrFuture, seq, head)
		}
		return seq, nil
	}
	st, err := c.StateAtTime(cmd.Context(), t, time.Now())
	if err != nil {
		return 0, err
	}
	return st.Seq(), nil
}

func newReservesPublishCmd() *cobra.Command {
	var dir, at, actor string
	var assets []string
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "build every asset's liabilities tree at a journal entry and journal the roots (a stopped core)",
		Long: "Builds, per asset, the Merkle sum tree of what the ledger owes each customer at the entry (--at: a sequence\n" +
			"number or an RFC 3339 time; default the journal's head), salted with the key in the data directory\n" +
			"(" + reserves.KeyFile + ", made if missing: keep it with the data), and journals the roots in one\n" +
			"publish_liabilities entry. docs/reserves.md tells how customers check them.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := core.Open(cmd.Context(), core.Config{Dir: dir})
			if err != nil {
				return err
			}
			defer c.Close()
			seq, err := resolveAt(cmd, c, at)
			if err != nil {
				return err
			}
			if seq == 0 {
				return fmt.Errorf("the journal is empty: nothing to publish")
			}
			key, err := reserves.LoadOrCreateKey(dir)
			if err != nil {
				return err
			}
			recs, err := attest.Publish(cmd.Context(), c, key, actor, seq, assets, time.Now())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, r := range recs {
				fmt.Fprintf(w, "%s liabilities at entry %d: root %s, %d customers, total %s base units (journal entry %d)\n", r.Asset, r.Seq, r.Hash, r.Size, r.Total, r.PublishedSeq)
			}
			return nil
		},
	}
	dataFlag(cmd, &dir)
	cmd.Flags().StringVar(&at, "at", "", "the journal entry the trees are of: a sequence number or an RFC 3339 time (default: the head)")
	cmd.Flags().StringVar(&actor, "actor", "", "operator publishing")
	cmd.Flags().StringSliceVar(&assets, "asset", nil, "only these assets (default: every listed asset)")
	cmd.MarkFlagRequired("actor")
	return cmd
}

func newReservesProofCmd() *cobra.Command {
	var dir, asset, out string
	var customer uint64
	cmd := &cobra.Command{
		Use:   "proof",
		Short: "write a customer's inclusion proof in the asset's last published liabilities tree (what GET /v1/me/reserves/proof answers)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := core.Open(cmd.Context(), core.Config{Dir: dir})
			if err != nil {
				return err
			}
			defer c.Close()
			code := strings.ToUpper(asset)
			var pub core.PublishedRoot
			var ok bool
			c.Read(func(st *core.State) { pub, ok = st.PublishedLiabilities(code) })
			if !ok {
				return fmt.Errorf("%w: %s (kinko reserves publish)", attest.ErrNotPublished, code)
			}
			key, err := reserves.LoadKey(dir)
			if err != nil {
				return err
			}
			p, err := attest.NewProver(key, c.StateAt).Proof(cmd.Context(), pub, ledger.OwnerID(customer))
			if err != nil {
				return err
			}
			b, _ := json.MarshalIndent(p, "", "  ")
			b = append(b, '\n')
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			return os.WriteFile(out, b, 0o600)
		},
	}
	dataFlag(cmd, &dir)
	cmd.Flags().StringVar(&asset, "asset", "BTC", "asset code")
	cmd.Flags().Uint64Var(&customer, "customer", 0, "customer id")
	cmd.Flags().StringVar(&out, "out", "", "file to write (default: standard output)")
	cmd.MarkFlagRequired("customer")
	return cmd
}

// maxLiabilitiesProofFile bounds a proof file: the JSON form of the deepest proof
// is under 8 KiB.
const maxLiabilitiesProofFile = 1 << 16

func newVerifyProofCmd() *cobra.Command {
	var file, rootHex, balance string
	var account uint64
	cmd := &cobra.Command{
		Use:   "verify-proof --proof FILE [--root HASH] [--account ID --balance N]",
		Short: "check an inclusion proof in a liabilities tree with nothing but the proof: the leaf, the path, the sums, the root",
		Long: "Reads a proof (the answer of GET /v1/me/reserves/proof, its \"proof\" object, the binary encoding or its hex),\n" +
			"recomputes the leaf hash, climbs the path adding the sibling sums with overflow refused, and checks the\n" +
			"total and the root hash. With --root, the root must be that one (the hash the exchange published); with\n" +
			"--account and --balance, the leaf must be yours. docs/reserves.md gives the algorithm step by step.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := os.Open(file)
			if err != nil {
				return err
			}
			defer f.Close()
			b, err := io.ReadAll(io.LimitReader(f, maxLiabilitiesProofFile+1))
			if err != nil {
				return err
			}
			if len(b) > maxLiabilitiesProofFile {
				return fmt.Errorf("%s is larger than %d bytes: not a proof", file, maxLiabilitiesProofFile)
			}
			p, err := sumtree.ReadProof(b)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			w := cmd.OutOrStdout()
			r := p.Root
			fmt.Fprintf(w, "tree: %s liabilities at journal entry %d (%s), %d customers, depth %d\n", r.Asset, r.Seq, time.Unix(0, r.Time).UTC().Format(time.RFC3339Nano), r.Size, len(p.Path))
			fmt.Fprintf(w, "leaf %d: account %d, balance %s base units, salt %x\n", p.Index, p.Leaf.Account, p.Leaf.Balance, p.Leaf.Salt)
			fmt.Fprintf(w, "root: %s, total %s base units\n", r.Hash, r.Total)
			if err := p.Verify(); err != nil {
				return fmt.Errorf("proof FAILS: %w", err)
			}
			fmt.Fprintln(w, "path: the leaf and its siblings hash to the root, and the sums add up to the total")
			if rootHex != "" {
				want, err := sumtree.ParseHash(strings.TrimSpace(rootHex))
				if err != nil {
					return err
				}
				if err := p.VerifyRoot(want); err != nil {
					return fmt.Errorf("proof FAILS: %w", err)
				}
				fmt.Fprintln(w, "root: the one published")
			} else {
				fmt.Fprintln(w, "root: compare it with the root the exchange published (GET /v1/reserves/roots, the attestation report), or pass --root")
			}
			if balance != "" || account != 0 {
				if balance == "" || account == 0 {
					return errors.New("--account and --balance go together")
				}
				want, err := ledger.ParseAmount(balance)
				if err != nil {
					return fmt.Errorf("--balance: %w", err)
				}
				if err := p.Check(account, want); err != nil {
					return fmt.Errorf("proof FAILS: %w", err)
				}
				fmt.Fprintln(w, "leaf: your account and balance")
			}
			fmt.Fprintln(w, "proof OK")
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "proof", "", "the proof file")
	cmd.Flags().StringVar(&rootHex, "root", "", "the published root hash the proof must lead to")
	cmd.Flags().Uint64Var(&account, "account", 0, "your customer id: the leaf must be yours")
	cmd.Flags().StringVar(&balance, "balance", "", "your balance at the tree's entry, in base units: the leaf must carry it")
	cmd.MarkFlagRequired("proof")
	return cmd
}
