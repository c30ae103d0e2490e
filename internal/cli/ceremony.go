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
			net, err := netByName(netName)
			if err != nil {
				return err
			}
			c, err := core.Open(cmd.Context(), core.Config{Dir: dir})
			if err != nil {
				return err
			}
			defer c.Close()
			var plan *ceremony.Plan
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
				plan, err = ceremony.Tiers(st, set, reserves.DefaultPolicy, feeRate, id, actor)
			})
			if err != nil {
				return err
			}
			o, err := c.Submit(cmd.Context(), time.Now(), plan.Command)
			if err == nil {
				err = o.Err
			}
			if err != nil {
				return err
			}
			cer := plan.Command.Ceremony
			req := Request{ID: cer.ID, Purpose: string(cer.Purpose), TxID: plan.PSBT.UnsignedTx.TxHash().String(), PSBT: cer.PSBT, Wallets: ws}
			b, _ := json.MarshalIndent(req, "", "  ")
			if err := os.WriteFile(out, b, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s of %d base units prepared (journal entry %d, %d inputs reserved); request written to %s\n",
				cer.Purpose, cer.ID, plan.Amount, o.Seq, len(cer.Inputs), out)
			return nil
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
			net, err := netByName(netName)
			if err != nil {
				return err
			}
			c, err := core.Open(cmd.Context(), core.Config{Dir: dir})
			if err != nil {
				return err
			}
			defer c.Close()
			var rb core.ReserveBatch
			var ws []wallet.Named
			var pk *psbt.Packet
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
				rb, pk, err = ceremony.ColdWithdrawals(st, set, feeRate, id, only)
			})
			if err != nil {
				return err
			}
			o, err := c.Submit(cmd.Context(), time.Now(), rb)
			if err == nil {
				err = o.Err
			}
			if err != nil {
				return err
			}
			req := Request{ID: rb.Batch.ID, Purpose: "withdraw", TxID: pk.UnsignedTx.TxHash().String(), PSBT: rb.Batch.PSBT, Wallets: ws}
			b, _ := json.MarshalIndent(req, "", "  ")
			if err := os.WriteFile(out, b, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cold batch %s paying %d withdrawals prepared (journal entry %d, %d inputs reserved); request written to %s\n",
				rb.Batch.ID, len(rb.Batch.Withdrawals), o.Seq, len(rb.Batch.Inputs), out)
			return nil
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
