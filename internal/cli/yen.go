package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/reserves"
	"kinko/internal/yen"
	"kinko/internal/yen/bankcode"
	"kinko/internal/yen/bankconn"
	"kinko/internal/yen/banksim"
	"kinko/internal/yen/paysim"
	"kinko/internal/yen/zengin"
)

// yenFlags configure the bank and provider connector of `kinko core`.
type yenFlags struct {
	drop, listen, cert, key string
	bankKey, providerKey    string
	providerURL, providerCA string
	every                   time.Duration
}

func (f *yenFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.drop, "yen-drop", "", "the drop directory shared with the bank (statements, result files, transfer files, instructions); none: no yen connector")
	cmd.Flags().StringVar(&f.listen, "yen-listen", "127.0.0.1:8446", "the HTTPS address of the bank's and the provider's notices (/yen/bank, /yen/provider)")
	cmd.Flags().StringVar(&f.cert, "yen-tls-cert", "", "the notice endpoint's TLS certificate (PEM)")
	cmd.Flags().StringVar(&f.key, "yen-tls-key", "", "the notice endpoint's TLS key (PEM)")
	cmd.Flags().StringVar(&f.bankKey, "yen-bank-key-file", "", "the HMAC key shared with the bank")
	cmd.Flags().StringVar(&f.providerKey, "yen-provider-key-file", "", "the HMAC key shared with the payment provider")
	cmd.Flags().StringVar(&f.providerURL, "yen-provider-url", "", "the payment provider's API (https://...)")
	cmd.Flags().StringVar(&f.providerCA, "yen-provider-ca", "", "PEM file of the CA of the provider's certificate (default: the system's)")
	cmd.Flags().DurationVar(&f.every, "yen-every", 2*time.Second, "how often the drop directory is read and written")
}

func readKey(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return []byte(strings.TrimSpace(string(b))), nil
}

// start starts the connector: its notice endpoint and its loop over the
// drop directory. It returns nil, nil when no drop directory is set. The
// returned stop ends both.
func (f *yenFlags) start(ctx context.Context, c *core.Core, log *slog.Logger) (*bankconn.Connector, func(), error) {
	if f.drop == "" {
		return nil, func() {}, nil
	}
	bk, err := readKey(f.bankKey)
	if err != nil {
		return nil, nil, err
	}
	pk, err := readKey(f.providerKey)
	if err != nil {
		return nil, nil, err
	}
	client, err := banksim.TLSClient(f.providerCA)
	if err != nil {
		return nil, nil, err
	}
	conn, err := bankconn.New(bankconn.Config{Core: c, Drop: f.drop, BankKey: bk, ProviderKey: pk, ProviderURL: f.providerURL, ProviderClient: client, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	if f.cert == "" || f.key == "" {
		return nil, nil, errors.New("yen: --yen-tls-cert and --yen-tls-key are required: notices come over HTTPS")
	}
	pair, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, nil, err
	}
	ln, err := tls.Listen("tcp", f.listen, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /yen/bank", conn.BankHandler())
	if len(pk) > 0 {
		mux.Handle("POST /yen/provider", conn.ProviderHandler())
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	// The server ends at stop; the loop when ctx ends.
	go srv.Serve(ln)
	go func() { defer close(done); conn.Run(ctx, f.every) }()
	log.Info("yen connector", "drop", f.drop, "notices", ln.Addr().String())
	return conn, func() { cancel(); srv.Close(); <-done }, nil
}

func newYenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "yen", Short: "customers' yen: the bank and provider setup, Zengin files, status"}
	var dir, conf, masterFile string
	setup := &cobra.Command{
		Use:   "setup",
		Short: "journal the yen setup (trust and operating bank accounts, virtual accounts, fee, thresholds, the bank master) on the core's host, core stopped",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := os.ReadFile(conf)
			if err != nil {
				return err
			}
			var f yenSetupFile
			if err := yen.DecodeStrict(b, &f); err != nil {
				return err
			}
			cfg := f.Config
			if err := cfg.Check(); err != nil {
				return err
			}
			path := masterFile
			if path == "" && f.BankMaster != "" {
				path = f.BankMaster
				if !filepath.IsAbs(path) {
					path = filepath.Join(filepath.Dir(conf), path)
				}
			}
			m, what, err := loadBankMaster(path)
			if err != nil {
				return err
			}
			if err := checkSetupCodes(&cfg, m); err != nil {
				return err
			}
			cfg.BankMasterSHA256 = m.Hash()
			c, err := core.Open(cmd.Context(), core.Config{Dir: dir})
			if err != nil {
				return err
			}
			defer c.Close()
			o, err := c.Submit(cmd.Context(), time.Now(), core.YenSetup{Config: cfg, Master: string(m.Encode())})
			if err == nil {
				err = o.Err
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "yen set up at entry %d: trust %s at %s, operating %s at %s, virtual accounts %s-%07d..%07d\n", o.Seq,
				cfg.Trust.Key(), m.Describe(cfg.Trust.Bank, cfg.Trust.Branch), cfg.Operating.Key(), m.Describe(cfg.Operating.Bank, cfg.Operating.Branch),
				cfg.VirtualBranch, cfg.VirtualFirst, cfg.VirtualFirst+cfg.VirtualCount-1)
			fmt.Fprintf(w, "bank master: %s, sha256 %s\n", what, cfg.BankMasterSHA256)
			if path == "" {
				fmt.Fprintln(w, "  the built-in sample holds a few banks only: customers' accounts elsewhere are refused; load the full master with --bank-master FILE (docs/yen.md)")
			}
			return nil
		},
	}
	dataFlag(setup, &dir)
	setup.Flags().StringVar(&conf, "config", "yen.json", "the yen setup (JSON, yen.Config; \"bank_master\": a master file's path, relative to this file)")
	setup.Flags().StringVar(&masterFile, "bank-master", "", "the bank and branch code master (CSV, docs/yen.md); default: the setup's bank_master, else the built-in sample")

	var checkMaster string
	check := &cobra.Command{
		Use:   "check [FILE]",
		Short: "read a Zengin file (a statement 入出金取引明細, a transfer or result file 総合振込) or a bank master (--bank-master) and print it, or say what is wrong",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			if checkMaster != "" {
				_, what, err := loadBankMaster(checkMaster)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "bank master %s\n", what)
			}
			if len(args) == 0 {
				if checkMaster == "" {
					return errors.New("yen check: give a Zengin file, --bank-master FILE, or both")
				}
				return nil
			}
			b, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			if len(b) > 3 && string(b[1:3]) == zengin.TypeStatement {
				st, err := zengin.ParseStatement(b)
				if err != nil {
					return err
				}
				for _, g := range st.Groups {
					nc, nd, tc, td := g.Totals()
					fmt.Fprintf(w, "statement of %s %s, %s to %s: opening %d, %d credits of %d, %d debits of %d, closing %d\n", g.Account.Key(), g.Account.Name, g.From, g.To, g.Opening, nc, tc, nd, td, g.Closing)
				}
				return nil
			}
			f, err := zengin.ParseTransferFile(b)
			if err != nil {
				return err
			}
			n, total := f.Total()
			fmt.Fprintf(w, "transfer file of %s (%s), from %s, on %02d-%02d: %d payments of %d yen\n", f.Requester, f.RequesterCode, f.From.Key(), f.Month, f.Day, n, total)
			return nil
		},
	}
	check.Flags().StringVar(&checkMaster, "bank-master", "", "a bank and branch code master file (CSV) to check")
	var at string
	status := &cobra.Command{
		Use:   "status",
		Short: "held deposits, batches and the last reconciliations (reads a data directory)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := loadState(cmd.Context(), dir, at)
			if err != nil {
				return err
			}
			printYenStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	dataFlag(status, &dir)
	status.Flags().StringVar(&at, "at", "", "point in time: a sequence number or an RFC 3339 time")
	cmd.AddCommand(setup, check, status, newYenBatchCmd(), newYenMasterCmd())
	return cmd
}

func printYenStatus(w io.Writer, st *core.State) {
	y := st.Yen
	if y.Config == nil {
		fmt.Fprintln(w, "yen is not set up (kinko yen setup)")
		return
	}
	fmt.Fprintf(w, "trust %s, operating %s\n", y.Config.Trust.Key(), y.Config.Operating.Key())
	if m := y.Master; m != nil {
		banks, branches := m.Count()
		fmt.Fprintf(w, "  trust at %s, operating at %s\nbank master: %d banks, %d branches, sha256 %s\n", m.Describe(y.Config.Trust.Bank, y.Config.Trust.Branch),
			m.Describe(y.Config.Operating.Bank, y.Config.Operating.Branch), banks, branches, y.Config.BankMasterSHA256)
	} else {
		fmt.Fprintln(w, "no bank master: bank and branch codes are checked for form only")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "held deposit\tchannel\tcustomer\taccount\tamount\tsender\treason")
	for _, d := range y.Deposits(func(d *yen.Deposit) bool { return d.Status == yen.DepositHeld }, 200) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\n", d.TxID, d.Channel, d.Customer, d.Account, d.Amount, d.Sender, d.Hold)
	}
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "bank account\tcustomer\tholder\tbank and branch")
	for _, a := range y.AllBankAccounts(200) {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", a.Account.Key(), a.Customer, a.Account.Name, describeBank(y, a.Account))
	}
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "batch\tpayouts\ttotal\tdate\twritten\tsettled\thash")
	for _, b := range y.Batches() {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%02d-%02d\t%v\t%d\t%s\n", b.ID, b.Count, b.Total, b.Month, b.Day, b.Written, b.Settled, b.Hash[:16])
	}
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "reconciliation\tchannel\toutside\tledger\tdifference\thalted\tincident")
	for _, r := range y.Reconciliations(20) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%v\t%s\n", r.What, r.Channel, r.Outside, r.Ledger, r.Diff, r.Halted, r.Incident)
	}
	tw.Flush()
}

// yenSetupFile is the file `kinko yen setup` reads: the configuration
// and the path of a bank master file (not journaled: the master itself
// is).
type yenSetupFile struct {
	yen.Config
	BankMaster string `json:"bank_master,omitempty"`
}

// loadBankMaster reads a master file, or the built-in sample for "", and
// says what it holds.
func loadBankMaster(path string) (*bankcode.Master, string, error) {
	m := bankcode.Builtin()
	what := "the built-in sample"
	if path != "" {
		b, err := readSmallN(path, bankcode.MaxFileBytes)
		if err != nil {
			return nil, "", fmt.Errorf("--bank-master: %w", err)
		}
		if m, err = bankcode.Parse(b); err != nil {
			return nil, "", fmt.Errorf("--bank-master %s: %w", path, err)
		}
		what = path
	}
	banks, branches := m.Count()
	return m, fmt.Sprintf("%s: %d banks, %d branches", what, banks, branches), nil
}

// checkSetupCodes checks the setup's accounts, virtual branch and bank
// list against the master before anything is journaled (apply checks
// them again, against the master in the journal).
func checkSetupCodes(cfg *yen.Config, m *bankcode.Master) error {
	for _, x := range []struct {
		what         string
		bank, branch string
	}{{"trust account", cfg.Trust.Bank, cfg.Trust.Branch}, {"operating account", cfg.Operating.Bank, cfg.Operating.Branch}, {"virtual branch", cfg.Trust.Bank, cfg.VirtualBranch}} {
		if _, _, err := m.Lookup(x.bank, x.branch); err != nil {
			return fmt.Errorf("yen setup: %s: %w", x.what, err)
		}
	}
	for _, code := range cfg.Banks {
		if _, ok := m.Bank(code); !ok {
			return fmt.Errorf("yen setup: banks: %w: bank %q", bankcode.ErrUnknownBank, code)
		}
	}
	return nil
}

// describeBank names an account's bank and branch in plain words from
// the journaled master, or by their kana names without one.
func describeBank(y *yen.State, a zengin.Account) string {
	if y.Master != nil {
		return y.Master.Describe(a.Bank, a.Branch)
	}
	return strings.TrimSpace(a.BankName+" "+a.BranchName) + " (" + a.Bank + "-" + a.Branch + ")"
}

// printYenSegregation prints, for each asset with yen bank accounts, the
// trust account against customers' yen, the house's own apart.
func printYenSegregation(w io.Writer, rep *reserves.Report) {
	for _, r := range rep.Rows {
		if r.HouseBank.IsZero() && r.InTransit.IsZero() && r.OtherLedger.IsZero() {
			continue
		}
		f := func(a ledger.Amount) string { return a.FormatDecimal(r.Decimals) }
		state := "covered"
		if !r.Segregated {
			short, _ := r.CustomerLiabilities.Sub(r.OtherLedger)
			state = "SHORT by " + f(short)
		}
		fmt.Fprintf(w, "%s: customers are owed %s; the trust (bank) holds %s: %s; in transit at the provider %s; the house's own at its operating account %s\n",
			r.Asset, f(r.CustomerLiabilities), f(r.OtherLedger), state, f(r.InTransit), f(r.HouseBank))
	}
}

func newBankSimCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "bank-sim [CALL]",
		Short: "a bank for tests and demonstrations: Zengin files through a drop directory, signed notices over HTTPS (docs/yen.md)",
		Long: "kinko bank-sim --drop D --key-file K --notify URL --config C [--state FILE] runs the bank.\n" +
			"kinko bank-sim CALL [--data DIR | --control URL] [flags] calls a running one (kinko dev's by default):\n" + simHelp(bankVerbs),
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
				return simControl(cmd.Context(), "bank-sim", devBankAddrFile, bankVerbs, args, cmd.OutOrStdout())
			}
			return banksim.Main(cmd.Context(), args, cmd.ErrOrStderr())
		},
	}
}

func newPaySimCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pay-sim [CALL]",
		Short: "a payment provider for tests and demonstrations: card, pay-easy and convenience-store payments, signed notices over HTTPS (docs/yen.md)",
		Long: "kinko pay-sim --key-file K --notify URL ... runs the provider.\n" +
			"kinko pay-sim CALL [--data DIR | --control URL] [flags] calls a running one (kinko dev's by default):\n" + simHelp(payVerbs),
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
				return simControl(cmd.Context(), "pay-sim", devPayAddrFile, payVerbs, args, cmd.OutOrStdout())
			}
			return paysim.Main(cmd.Context(), args, cmd.ErrOrStderr())
		},
	}
}
