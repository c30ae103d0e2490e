package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"kinko/internal/drill"
	"kinko/internal/incident"
)

func newDrillCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "drill", Short: "replay the incidents kinko was built against, on a regtest node, and report"}
	cmd.AddCommand(drillCmd("coincheck", drill.Coincheck), drillCmd("bitpoint", drill.BitPoint))
	return cmd
}

var drillDocs = map[string][2]string{
	"coincheck": {"January 2018: two hot keys leak, the hot wallet is drained; halt, affected holders, compensation in yen, staged resumption", `kinko drill coincheck builds a fresh exchange in --data (a btcd regtest
node and a core), gives --customers holders about 10 BTC in all, 98% in a
2-of-3 cold wallet and 2% in a 2-of-3 hot wallet, leaks two hot keys to an
attacker who drains the hot wallet straight to the node, and then does what
the operators would: finds the holders at the theft, writes a fixed-rate
plan (--rate yen per BTC, rounded down, the coin written off, as Coincheck
paid 88.549 yen per XEM), approves it as a second operator, executes it,
and resumes in stages. The drill plays both operators of every two-person
step. It prints what happened and saves the incident report (--report).

Coincheck's size is about 260,000 holders: --customers 260000.

With --asset ETH the same theft on Ethereum: a geth --dev node with the
Safe contracts 1.4.1, the holders' Ether about 5 ETH in all, 98% at the
cold 2-of-3 Safe wallet's counterfactual address and 2% in the hot 2-of-3
Safe (hot signer, co-signer, offline backup). The hot signer's and the
backup's keys leak; the attacker signs a SafeTx paying itself the hot
Safe's whole balance and executes it from its own account, never asking
the co-signer. The watcher of Safe executions halts ETH withdrawals and
opens the incident; the plan pays each holder's share of the loss in yen
(--rate yen per ETH, default 500,000). Up to 100,000 holders.`},
	"bitpoint": {"July 2019: the hot wallet is drained, withdrawals stop but trading goes on; fills worse than the mid at resumption are paid the difference", `kinko drill bitpoint builds the same exchange with a BTC/JPY market,
drains the hot wallet as the Coincheck drill does, halts withdrawals (the
watcher), deposits and the yen bank channel (the operators) but lets
trading go on, as BITPoint did. Prices run away during the suspension; at
resumption the book reopens around the world's price, and every customer
whose fill was worse than the mid at resumption is paid the difference in
yen (BITPoint's rule), approved by a second operator. Services resume yen
first and receiving crypto last.`},
}

func drillCmd(name string, play func(context.Context, drill.Options, io.Writer) (*drill.Result, error)) *cobra.Command {
	var dir, reportFile, devURL, asset string
	var customers int
	var rate uint64
	var seed uint64
	var backing uint32
	coincheck := &cobra.Command{
		Use:   name,
		Short: drillDocs[name][0],
		Long:  drillDocs[name][1],
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if reportFile == "" {
				reportFile = filepath.Join(dir, "drill-"+name+".md")
			}
			if asset != "BTC" && asset != "ETH" {
				return fmt.Errorf("--asset %q: BTC or ETH", asset)
			}
			if asset == "ETH" {
				switch {
				case name != "coincheck":
					return fmt.Errorf("--asset ETH: only the coincheck drill runs on Ethereum")
				case devURL != "":
					return fmt.Errorf("--asset ETH runs on a fresh exchange of its own, not on a running kinko dev (--dev)")
				case cmd.Flags().Changed("backing-bps"):
					return fmt.Errorf("--backing-bps: the Ether drill has no house backing in ETH; the whole loss is paid in yen")
				}
				if !cmd.Flags().Changed("rate") {
					rate = drill.DefaultEtherRateYen
				}
			}
			if devURL != "" {
				return drillOnDev(cmd, devURL, dir, name, customers, rate, seed, reportFile)
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				return fmt.Errorf("--data %s is not empty: a drill starts fresh", dir)
			}
			var out bytes.Buffer
			w := io.MultiWriter(cmd.OutOrStdout(), &out)
			bar := newProgress(cmd.ErrOrStderr())
			if asset == "ETH" {
				res, err := drill.CoincheckEther(cmd.Context(), drill.Options{Dir: dir, Customers: customers, RateYen: rate, Seed: seed,
					Log: slog.New(slog.DiscardHandler), Progress: func(step string, done, total int) { bar.set(step, uint64(done), uint64(total)) }}, w)
				bar.finish()
				if err != nil {
					return err
				}
				return saveDrillReport(cmd, &out, res.Report, reportFile)
			}
			res, err := play(cmd.Context(), drill.Options{Dir: dir, Customers: customers, RateYen: rate, Seed: seed, BackingBps: backing,
				Log: slog.New(slog.DiscardHandler), Progress: func(step string, done, total int) { bar.set(step, uint64(done), uint64(total)) }}, w)
			bar.finish()
			if err != nil {
				return err
			}
			return saveDrillReport(cmd, &out, res.Report, reportFile)
		},
	}
	dataFlag(coincheck, &dir)
	coincheck.Flags().IntVar(&customers, "customers", 10_000, "holders of the stolen coin")
	coincheck.Flags().Uint64Var(&rate, "rate", 10_000_000, "yen paid per whole coin held at the theft (with --asset ETH: 500,000 a whole ETH unless given)")
	coincheck.Flags().Uint64Var(&seed, "seed", 1, "seed of the holdings' spread")
	coincheck.Flags().Uint32Var(&backing, "backing-bps", 10_000, "the house's backing (履行保証暗号資産) at the theft, in bps of what the tiers require (the hot customer holdings); below 10,000 more of the loss is paid in yen (a fresh exchange only)")
	coincheck.Flags().StringVar(&reportFile, "report", "", "where to save the report (default: in the data directory)")
	coincheck.Flags().StringVar(&asset, "asset", "BTC", "the coin stolen: BTC (btcd regtest) or ETH (geth --dev, Safe wallets; coincheck only)")
	coincheck.Flags().StringVar(&devURL, "dev", "", "run on a running kinko dev at this URL instead (its --data directory holds the drill token)")
	return coincheck
}

// saveDrillReport appends the incident's report and the draft customer
// notice to what the drill printed and saves it all to path.
func saveDrillReport(cmd *cobra.Command, out *bytes.Buffer, rep *incident.Report, path string) error {
	out.WriteString("\n")
	if err := rep.WriteMarkdown(out); err != nil {
		return err
	}
	out.WriteString("\n## Customer notice (draft)\n\n")
	if err := rep.WriteNotice(out); err != nil {
		return err
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "report saved to %s\n", path)
	return nil
}

// drillOnDev asks a running kinko dev to run the drill on its exchange and
// streams what happens; the report is saved when it succeeds.
func drillOnDev(cmd *cobra.Command, devURL, dir, name string, customers int, rate, seed uint64, reportFile string) error {
	tok, err := readDevToken(dir)
	if err != nil {
		return fmt.Errorf("the running dev's drill token: %w (is --data the dev's data directory?)", err)
	}
	url := fmt.Sprintf("%s/dev/drill/%s?customers=%d&rate=%d&seed=%d", strings.TrimRight(devURL, "/"), name, customers, rate, seed)
	req, err := http.NewRequestWithContext(cmd.Context(), "POST", url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return fmt.Errorf("kinko dev: %s: %s", res.Status, strings.TrimSpace(string(b)))
	}
	var all bytes.Buffer
	if _, err := io.Copy(io.MultiWriter(cmd.OutOrStdout(), &all), res.Body); err != nil {
		return err
	}
	if !strings.HasSuffix(strings.TrimSpace(all.String()), drillDone) {
		return fmt.Errorf("the drill did not finish (see above)")
	}
	if err := os.WriteFile(reportFile, all.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "report saved to %s\n", reportFile)
	return nil
}
