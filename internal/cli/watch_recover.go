package cli

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/chain"
	"kinko/internal/chain/ethchain"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/mirror"
	"kinko/internal/watch"
)

// newWatchRecoverCmd is kinko watch recover-reorg: the way out of the stop
// a reorg below the watcher's kept blocks makes.
func newWatchRecoverCmd() *cobra.Command {
	var coreURL, coreCA, streamTokenFile, tokenFile, stateDir, asset, ethNode, actor string
	var chainID uint64
	var yes bool
	var nf nodeFlags
	cmd := &cobra.Command{
		Use:   "recover-reorg",
		Short: "after a reorg below the watcher's kept blocks: reverse the deposits whose blocks left the best chain and journal a checkpoint on it",
		Long: `A reorg deeper than the blocks the watcher keeps stops it: it halts the
asset's deposits ("reorg deeper than the blocks kept") and follows no
further, since what it credited below its window may be gone. It still
reads the pool and new blocks for outflows.

kinko watch recover-reorg asks the node, for every deposit of the asset
the journal holds as credited (or held for review), whether its block is
still on the best chain at its height, and prints what it would journal:
the deposits whose blocks left (reversed), and a checkpoint on the best
chain below them and below the stopped window. With --yes it journals
both with the watcher's token. Then restart kinko watch: it reads every
block of the new branch from that checkpoint (what they hold is credited
again, a reversed outpoint refused again, outflows judged). Deposits stay
halted until two operators lift them (kinko ... lift, or the console).

Run it with a --state of its own while the stopped watcher runs on:
it keeps its own mirror of the journal there, checked entry by entry.
It refuses (nothing journaled) when the journaled checkpoint still meets
the node's best chain: the watcher then unwinds the reorg by itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			if strings.TrimSpace(actor) == "" {
				return errors.New("--actor: who runs the recovery, for the journal")
			}
			client, streamToken, token, err := watcherLink(coreURL, coreCA, streamTokenFile, tokenFile)
			if err != nil {
				return err
			}
			var b chain.Backend
			if ethNode != "" {
				if !cmd.Flags().Changed("asset") {
					asset = "ETH"
				}
				node, err := dialEth(ctx, "eth-node", ethNode, chainID)
				if err != nil {
					return err
				}
				defer node.Close()
				b = ethchain.New(node, "", nil)
			} else {
				backend, node, _, err := nf.backend(0)
				if err != nil {
					return err
				}
				defer node.Close()
				b = backend
			}
			mir, err := mirror.Open(filepath.Join(stateDir, "journal"), false, nil)
			if err != nil {
				return fmt.Errorf("--state %s: %w (give the recovery a directory of its own, not the running watcher's)", stateDir, err)
			}
			defer mir.Close()
			remote := watch.NewRemote(strings.TrimRight(coreURL, "/"), streamToken, token, client, mir)
			if err := remote.Sync(ctx); err != nil {
				return fmt.Errorf("the core's journal: %w", err)
			}
			code := strings.ToUpper(asset)
			var id ledger.AssetID
			var decimals uint8
			remote.Read(func(s *core.State) {
				if a, ok := s.Ledger.AssetByCode(code); ok {
					id, decimals = a.ID, a.Decimals
				}
			})
			if id == 0 {
				return fmt.Errorf("--asset %s: no such asset in the journal", code)
			}
			plan, err := watch.PlanReorgRecovery(ctx, remote, b, id)
			if err != nil {
				return err
			}
			printRecovery(out, code, decimals, plan)
			if !yes {
				fmt.Fprintln(out, "nothing journaled: run again with --yes to journal it")
				return nil
			}
			if err := watch.RecoverReorg(ctx, remote, time.Now(), plan, actor); err != nil {
				return err
			}
			fmt.Fprintf(out, "journaled: %d deposit(s) reversed, the checkpoint at height %d. Restart kinko watch for %s; its deposits stay halted until two operators lift them.\n",
				len(plan.Gone), plan.From.Height, code)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&coreURL, "core", "http://127.0.0.1:8080", "the core's URL")
	f.StringVar(&coreCA, "core-ca", "", "with an https:// --core: the CA certificate (PEM) the core's certificate is checked against")
	f.StringVar(&stateDir, "state", "watcher-recover-state", "a directory of its own for the mirror of the journal (not the running watcher's)")
	f.StringVar(&streamTokenFile, "stream-token-file", "", "the journal stream token")
	f.StringVar(&tokenFile, "watcher-token-file", "", "the watcher token")
	f.StringVar(&asset, "asset", "BTC", "asset")
	f.StringVar(&actor, "actor", "", "who runs the recovery (recorded with the reversal)")
	f.BoolVar(&yes, "yes", false, "journal the recovery (without it: print it only)")
	f.StringVar(&ethNode, "eth-node", "", "an Ethereum asset: the node's JSON-RPC URL (then --chain-id, and --asset defaults to ETH)")
	f.Uint64Var(&chainID, "chain-id", 0, "with --eth-node: the chain (EIP-155) the node must be on")
	nf.add(cmd)
	for _, n := range []string{"stream-token-file", "watcher-token-file", "actor"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

// printRecovery says a recovery plan in plain words.
func printRecovery(w io.Writer, code string, decimals uint8, p *watch.ReorgRecovery) {
	base := p.Stopped.Height - int32(len(p.Stopped.Hashes)) + 1
	fmt.Fprintf(w, "%s: the journaled checkpoint (blocks %d to %d) is not on the node's best chain (tip %d %s).\n", code, base, p.Stopped.Height, p.Tip.Height, p.Tip.Hash)
	if len(p.Gone) == 0 {
		fmt.Fprintln(w, "  every credited deposit's block is still on the best chain: none to reverse")
	} else {
		var total ledger.Amount
		for _, d := range p.Gone {
			total, _ = total.Add(d.Value())
		}
		fmt.Fprintf(w, "  %d credited deposit(s) whose blocks left the best chain, %s %s in all, to reverse:\n", len(p.Gone), total.FormatDecimal(decimals), code)
		for _, d := range p.Gone {
			state := "credited"
			if d.State == custody.DepositReview {
				state = "held for review"
			}
			fmt.Fprintf(w, "    %s  customer %d  %s %s  block %d (%s)\n", d.Outpoint, d.Customer, d.Value().FormatDecimal(decimals), code, d.Height, state)
		}
	}
	fmt.Fprintf(w, "  new checkpoint: height %d, block %s (the watcher reads every block after it again)\n", p.From.Height, p.From.Hash)
}
