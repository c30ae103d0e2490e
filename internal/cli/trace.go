package cli

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/spf13/cobra"

	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/trace"
	"kinko/internal/wallet"
	"kinko/internal/watch"
)

func newTraceCmd() *cobra.Command {
	var txs []string
	var hops int
	var from int32
	var jsonOut, svgOut, dir, incidentID string
	var deny bool
	var nf nodeFlags
	var cf coreFlags
	cmd := &cobra.Command{
		Use:   "trace",
		Short: "follow stolen coins through the node for N hops; export the graph (JSON, SVG); put the addresses on the AML deny list",
		Long: `kinko trace starts from the unauthorized transactions (--tx, repeatable),
scans the node's blocks from --from-height to the tip, and follows every
output they paid and every transaction that spent one, up to --hops. With
--deny it journals the addresses found on the AML deny list through the
core's API as --operator (--data, a copy of the journal, leaves our own
wallets' addresses out): deposits from them are then held for review and
withdrawals to them refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var roots []chainhash.Hash
			for _, s := range txs {
				h, err := chainhash.NewHashFromStr(s)
				if err != nil {
					return fmt.Errorf("--tx %q: %w", s, err)
				}
				roots = append(roots, *h)
			}
			b, node, params, err := nf.backend(0)
			if err != nil {
				return err
			}
			defer node.Close()
			opts := trace.Options{Hops: hops, FromHeight: from, Net: params}
			var c *core.Core
			if deny && dir != "" {
				// Our own wallets are left out of the trace: read from a
				// data directory (a copy of the journal while the core
				// runs); the deny list is written through the core.
				if c, err = core.Open(cmd.Context(), core.Config{Dir: dir}); err != nil {
					return err
				}
				defer c.Close()
				var chainAssets []ledger.AssetID
				c.Read(func(st *core.State) {
					seen := map[ledger.AssetID]bool{}
					for _, w := range st.Custody.Wallets() {
						if !seen[w.Asset] {
							seen[w.Asset] = true
							chainAssets = append(chainAssets, w.Asset)
						}
					}
				})
				var books []*wallet.Book
				for _, a := range chainAssets {
					_, owned, err := watch.Books(c, a, params)
					if err != nil {
						return err
					}
					books = append(books, owned)
				}
				opts.Ours = func(script []byte) bool {
					for _, b := range books {
						if _, ok := b.Find(script); ok {
							return true
						}
					}
					return false
				}
			}
			g, err := trace.Trace(cmd.Context(), b, node, roots, opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "traced %d transactions, %d addresses, blocks %d-%d\n", len(g.Txs), len(g.Addresses), g.From, g.To)
			for _, a := range g.Addresses {
				fmt.Fprintf(out, "  hop %d  %s  %d\n", a.Hop, a.Address, a.Value)
			}
			if jsonOut != "" {
				b, _ := json.MarshalIndent(g, "", "  ")
				if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
					return err
				}
			}
			if svgOut != "" {
				f, err := os.Create(svgOut)
				if err != nil {
					return err
				}
				if err := g.WriteSVG(f); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
			}
			if deny && len(g.Addresses) > 0 {
				oc, err := cf.client(cmd.Context())
				if err != nil {
					return err
				}
				v, err := oc.Command(cmd.Context(), core.DenyAddresses{Addresses: g.AddressList(), Incident: incidentID, Actor: oc.Operator,
					Reason: fmt.Sprintf("traced %d hops from %s", hops, txs[0])})
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s addresses added to the deny list by %s\n", v, oc.Operator)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&txs, "tx", nil, "an unauthorized transaction (repeatable)")
	f.IntVar(&hops, "hops", 3, "how many hops to follow")
	f.Int32Var(&from, "from-height", 0, "first block to scan (the theft's, or before)")
	f.StringVar(&jsonOut, "json", "", "write the graph as JSON here")
	f.StringVar(&svgOut, "svg", "", "write the graph as an SVG picture here")
	f.BoolVar(&deny, "deny", false, "journal the addresses on the AML deny list")
	f.StringVar(&incidentID, "incident", "", "the incident (with --deny)")
	f.StringVar(&dir, "data", "", "a data directory whose wallets are left out (with --deny)")
	cf.addOptional(cmd)
	nf.add(cmd)
	cmd.MarkFlagRequired("tx")
	return cmd
}
