package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/spf13/cobra"

	"kinko/internal/ceremony"
	"kinko/internal/core"
	"kinko/internal/reserves"
	"kinko/internal/wallet"
)

// walletsOf returns the registered wallets as the ceremony knows them.
func walletsOf(st *core.State) []wallet.Named {
	var ws []wallet.Named
	for _, w := range st.Custody.Wallets() {
		ws = append(ws, wallet.Named{ID: w.ID, Kind: w.Kind.String(), Descriptor: w.Descriptor})
	}
	return ws
}

func newCeremonyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "ceremony", Short: "prepare the offline ceremonies that move coins between our wallets"}
	var dir, id, actor, out, netName string
	var feeRate int64
	tiers := &cobra.Command{
		Use:   "tiers",
		Short: "prepare the refill (hot below target) or sweep (hot above cap), journal it with its inputs reserved, and write the request for the offline signers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return prepareCeremony(cmd, dir, netName, out, func(st *core.State, set *wallet.Set) (*planned, error) {
				plan, err := ceremony.Tiers(st, set, reserves.DefaultPolicy, feeRate, id, actor)
				if err != nil {
					return nil, err
				}
				c := plan.Command.Ceremony
				return &planned{cmd: plan.Command, psbt: plan.PSBT, id: c.ID, purpose: string(c.Purpose),
					summary: fmt.Sprintf("%s %s of %d base units (%d inputs reserved)", c.Purpose, c.ID, plan.Amount, len(c.Inputs))}, nil
			})
		},
	}
	dataFlag(tiers, &dir)
	tiers.Flags().StringVar(&id, "id", "", "ceremony id")
	tiers.Flags().StringVar(&actor, "actor", "", "operator preparing it")
	tiers.Flags().StringVar(&out, "out", "ceremony.json", "request file to write")
	tiers.Flags().Int64Var(&feeRate, "fee-rate", 10, "fee rate, satoshi per vbyte")
	tiers.Flags().StringVar(&netName, "net", "regtest", "network")
	tiers.MarkFlagRequired("id")
	tiers.MarkFlagRequired("actor")
	var only []string
	coldW := &cobra.Command{
		Use:   "cold-withdrawals",
		Short: "the cold path: prepare one transaction from the cold wallet paying queued withdrawals, journal it with its inputs reserved, and write the request for the offline signers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return prepareCeremony(cmd, dir, netName, out, func(st *core.State, set *wallet.Set) (*planned, error) {
				rb, p, err := ceremony.ColdWithdrawals(st, set, feeRate, id, only)
				if err != nil {
					return nil, err
				}
				return &planned{cmd: rb, psbt: p, id: rb.Batch.ID, purpose: "withdraw",
					summary: fmt.Sprintf("cold batch %s paying %d withdrawals (%d inputs reserved)", rb.Batch.ID, len(rb.Batch.Withdrawals), len(rb.Batch.Inputs))}, nil
			})
		},
	}
	dataFlag(coldW, &dir)
	coldW.Flags().StringVar(&id, "id", "", "batch id")
	coldW.Flags().StringVar(&out, "out", "cold-withdrawals.json", "request file to write")
	coldW.Flags().Int64Var(&feeRate, "fee-rate", 10, "fee rate, satoshi per vbyte")
	coldW.Flags().StringVar(&netName, "net", "regtest", "network")
	coldW.Flags().StringSliceVar(&only, "withdrawal", nil, "only these withdrawals (default: every queued one)")
	coldW.MarkFlagRequired("id")
	cmd.AddCommand(tiers, coldW)
	return cmd
}

// planned is what a ceremony preparation journals and hands the offline
// signers.
type planned struct {
	cmd     core.Command
	psbt    *psbt.Packet
	id      string
	purpose string
	summary string
}

// prepareCeremony opens the data directory, plans with the registered
// wallets, journals the plan (its inputs reserved), and writes the request
// file for `kinko cold sign`.
func prepareCeremony(cmd *cobra.Command, dir, netName, out string, plan func(*core.State, *wallet.Set) (*planned, error)) error {
	net, err := netByName(netName)
	if err != nil {
		return err
	}
	c, err := core.Open(cmd.Context(), core.Config{Dir: dir})
	if err != nil {
		return err
	}
	defer c.Close()
	var p *planned
	var ws []wallet.Named
	c.Read(func(st *core.State) {
		ws = walletsOf(st)
		if len(ws) == 0 {
			err = fmt.Errorf("no wallets registered")
			return
		}
		var first *wallet.Descriptor
		if first, err = wallet.Parse(ws[0].Descriptor, net); err != nil {
			return
		}
		var set *wallet.Set
		if set, err = wallet.NewSet(ws, first); err != nil {
			return
		}
		p, err = plan(st, set)
	})
	if err != nil {
		return err
	}
	o, err := c.Submit(cmd.Context(), time.Now(), p.cmd)
	if err == nil {
		err = o.Err
	}
	if err != nil {
		return err
	}
	b64, _ := wallet.Encode(p.psbt)
	req := Request{ID: p.id, Purpose: p.purpose, TxID: p.psbt.UnsignedTx.TxHash().String(), PSBT: b64, Wallets: ws}
	b, _ := json.MarshalIndent(req, "", "  ")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s prepared (journal entry %d); request written to %s\n", p.summary, o.Seq, out)
	return nil
}
