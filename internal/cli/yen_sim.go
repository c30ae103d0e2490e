package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kinko/internal/api"
	"kinko/internal/core"
	"kinko/internal/demo"
	"kinko/internal/people"
	"kinko/internal/yen"
	"kinko/internal/yen/banksim"
	"kinko/internal/yen/zengin"
)

// A simulator's control call: kinko bank-sim VERB / kinko pay-sim VERB,
// each with its own flags, answered by the simulator's control endpoint
// (banksim.Control) as JSON.
type simVerb struct {
	help string
	// body reads the verb's flags (already parsed) into the control
	// call's path and JSON body.
	flags func(fs *flag.FlagSet) func() (string, any, error)
}

// bankVerbs are the calls of the bank simulator's control endpoint:
// what another bank's transfer, the bank's own charges and its day's
// close would be.
var bankVerbs = map[string]simVerb{
	"transfer": {"send yen to one of the bank's accounts (a customer's virtual account: --to NUMBER)", func(fs *flag.FlagSet) func() (string, any, error) {
		var t banksim.Transfer
		fs.StringVar(&t.Number, "to", "", "the account number (a virtual account's, e.g. 2000001)")
		fs.StringVar(&t.Branch, "branch", demo.YenVirtualBranch, "the branch (the virtual accounts' by default)")
		fs.Uint64Var(&t.Amount, "amount", 0, "yen")
		fs.StringVar(&t.Sender, "sender", "", "the sender's name in kana (as their bank writes it, e.g. ﾔﾏﾀﾞ ﾊﾅｺ)")
		fs.StringVar(&t.Ref, "ref", "", "the sender's reference: the same reference again is the same transfer")
		fs.StringVar(&t.EDI, "edi", "", "EDI information")
		return func() (string, any, error) {
			if t.Number == "" || t.Amount == 0 || t.Sender == "" {
				return "", nil, errors.New("--to, --amount and --sender are required")
			}
			n, err := zengin.Normalize(t.Sender)
			if err != nil {
				return "", nil, fmt.Errorf("--sender: %w", err)
			}
			t.Sender = n
			return "/transfer", t, nil
		}
	}},
	"payee": {"make an account at another bank payable (transfers to others are 振込不能)", func(fs *flag.FlagSet) func() (string, any, error) {
		var p banksim.Payee
		fs.StringVar(&p.Account.Bank, "bank", "", "bank code (4 digits)")
		fs.StringVar(&p.Account.Branch, "branch", "", "branch code (3 digits)")
		fs.IntVar(&p.Account.Type, "type", zengin.Ordinary, "account type (普通 1, 当座 2, 貯蓄 4)")
		fs.StringVar(&p.Account.Number, "number", "", "account number (7 digits)")
		fs.StringVar(&p.Account.Name, "name", "", "the holder's name in kana")
		fs.BoolVar(&p.Returns, "returns", false, "transfers to it are paid and then returned (組戻し)")
		return func() (string, any, error) {
			if err := p.Account.CheckCodes(); err != nil {
				return "", nil, err
			}
			n, err := zengin.Normalize(p.Account.Name)
			if err != nil || n == "" {
				return "", nil, fmt.Errorf("--name: in kana: %v", err)
			}
			p.Account.Name = n
			return "/payee", p, nil
		}
	}},
	"close":    {"write the trust account's statement since the last one (the connector imports and reconciles it)", noBody("/close")},
	"scan":     {"pay the transfer files and carry out the instructions in the outbox now", noBody("/scan")},
	"balances": {"the trust and operating accounts' balances and the notices sent and pending", noBody("GET /balances")},
	"replay": {"send a notice again (0: the first, -1: the last)", func(fs *flag.FlagSet) func() (string, any, error) {
		var i int
		fs.IntVar(&i, "index", -1, "which notice")
		return func() (string, any, error) { return "/replay", map[string]int{"Index": i}, nil }
	}},
	"fee": {"take a charge from the trust account with no notice (the next statement then disagrees with the ledger)", func(fs *flag.FlagSet) func() (string, any, error) {
		var a uint64
		fs.Uint64Var(&a, "amount", 0, "yen")
		return func() (string, any, error) { return "/fee", map[string]uint64{"Amount": a}, nil }
	}},
}

// payVerbs are the calls of the payment-provider simulator's control
// endpoint: the customer paying, the card network reversing, the
// provider settling.
var payVerbs = map[string]simVerb{
	"pay":        {"pay a payment request (the customer at the convenience store, pay-easy, the card charge succeeding)", paymentBody("/pay", false)},
	"refunded":   {"refund a card payment (--amount: how much)", paymentBody("/refunded", true)},
	"chargeback": {"charge a card payment back (--amount: how much)", paymentBody("/chargeback", true)},
	"settle": {"settle a channel: its paid payments, notified, then paid into the trust account through the bank", func(fs *flag.FlagSet) func() (string, any, error) {
		var ch string
		fs.StringVar(&ch, "channel", "", "card, pay-easy or convenience-store")
		return func() (string, any, error) { return "/settle", map[string]any{"channel": ch}, nil }
	}},
	"replay": {"send an event's notification again", func(fs *flag.FlagSet) func() (string, any, error) {
		var id string
		fs.StringVar(&id, "event", "", "the event id")
		return func() (string, any, error) { return "/replay", map[string]any{"id": id}, nil }
	}},
}

func noBody(path string) func(fs *flag.FlagSet) func() (string, any, error) {
	return func(*flag.FlagSet) func() (string, any, error) {
		return func() (string, any, error) { return path, nil, nil }
	}
}

func paymentBody(path string, amount bool) func(fs *flag.FlagSet) func() (string, any, error) {
	return func(fs *flag.FlagSet) func() (string, any, error) {
		var id string
		var a uint64
		fs.StringVar(&id, "payment", "", "the payment's id (GET /v1/me/yen lists them)")
		if amount {
			fs.Uint64Var(&a, "amount", 0, "yen")
		}
		return func() (string, any, error) {
			if id == "" {
				return "", nil, errors.New("--payment is required")
			}
			return path, map[string]any{"id": id, "amount": a}, nil
		}
	}
}

// simControl runs one control call: the verb's flags and --data DIR (the
// dev's, whose simulators wrote their addresses there) or --control URL.
func simControl(ctx context.Context, name, addrFile string, verbs map[string]simVerb, args []string, out io.Writer) error {
	verb, ok := verbs[args[0]]
	if !ok {
		return fmt.Errorf("%s: unknown call %q", name, args[0])
	}
	fs := flag.NewFlagSet(name+" "+args[0], flag.ContinueOnError)
	fs.SetOutput(out)
	data := fs.String("data", "./kinko-data", "the data directory of the kinko dev whose simulator to call")
	control := fs.String("control", "", "the simulator's control endpoint (http://ADDR; default: the one kinko dev wrote in DATA/yen/)")
	build := verb.flags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	path, body, err := build()
	if err != nil {
		return fmt.Errorf("%s %s: %w", name, args[0], err)
	}
	base := *control
	if base == "" {
		b, err := os.ReadFile(filepath.Join(*data, devYenDir, addrFile))
		if err != nil {
			return fmt.Errorf("%s %s: no simulator address (is kinko dev running on %s? or give --control URL): %w", name, args[0], *data, err)
		}
		base = strings.TrimSpace(string(b))
	}
	method := "POST"
	if m, p, ok := strings.Cut(path, " "); ok {
		method, path = m, p
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", name, args[0], err)
	}
	defer resp.Body.Close()
	ans, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", name, args[0], resp.Status, strings.TrimSpace(string(ans)))
	}
	_, err = out.Write(ans)
	return err
}

// simHelp lists a simulator's control calls.
func simHelp(verbs map[string]simVerb) string {
	var names []string
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "  %-11s %s\n", n, verbs[n].help)
	}
	return b.String()
}

// newYenBatchCmd is `kinko yen batch`: an operator puts the queued yen
// withdrawals in a transfer file (POST /v1/yen/batches); the connector
// gives it to the bank.
func newYenBatchCmd() *cobra.Command {
	var f coreFlags
	var id, date string
	cmd := &cobra.Command{
		Use:   "batch",
		Short: "put the queued yen withdrawals in a transfer file (総合振込) for the bank, as an operator through the core",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			if id == "" {
				id = "B" + time.Now().UTC().Format("20060102T150405")
			}
			if date == "" {
				date = zengin.DateOf(time.Now()).String()
			}
			var b struct {
				ID    string `json:"id"`
				Count int    `json:"count"`
				Total uint64 `json:"total"`
				Hash  string `json:"hash"`
			}
			if err := c.Post(cmd.Context(), "/v1/yen/batches", api.YenBatchRequest{ID: id, Date: date}, &b, http.StatusCreated); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "batch %s: %d withdrawals, %d yen, file sha256 %s; the connector gives it to the bank\n", b.ID, b.Count, b.Total, b.Hash)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&id, "id", "", "the batch's id (default: B and the time)")
	cmd.Flags().StringVar(&date, "date", "", "the transfer date, YYYY-MM-DD (default: today in Japan)")
	return cmd
}

// newYenMasterCmd files a yen_bank_master request: the bank master
// replaced once a second admin approves.
func newYenMasterCmd() *cobra.Command {
	var f coreFlags
	var file, reason string
	cmd := &cobra.Command{
		Use:   "master",
		Short: "ask for the bank and branch code master to be replaced (a yen_bank_master request): it takes effect when a second admin approves it",
		Long: `kinko yen master reads a bank and branch code master (the CSV of docs/yen.md),
checks it here (every line, and the setup's trust and operating accounts and
virtual branch in it), and files a yen_bank_master request with the master in
its canonical form and its SHA-256. A second admin approves it (kinko requests
approve --id ID); the core checks it again then. Bank accounts already
registered keep the names they were registered with.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("--file: the new master (CSV)")
			}
			m, what, err := loadBankMaster(file)
			if err != nil {
				return err
			}
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			var st struct {
				Config *yen.Config `json:"config"`
			}
			if err := c.Get(cmd.Context(), "/v1/yen", &st); err != nil {
				return err
			}
			if st.Config == nil {
				return yen.ErrNotSetUp
			}
			if err := checkSetupCodes(st.Config, m); err != nil {
				return fmt.Errorf("%w: nothing filed", err)
			}
			rid, err := openRequest(cmd.Context(), c, core.KindYenBankMaster, core.YenBankMasterPayload{Master: string(m.Encode()), SHA256: m.Hash()},
				people.RoleAdmin, reason, 24*time.Hour)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "bank master %s, sha256 %s: replacement requested (%s); a second admin approves it (kinko requests approve --id %s)\n", what, m.Hash(), rid, rid)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&file, "file", "", "the new bank master (CSV)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (journaled)")
	cmd.MarkFlagRequired("reason")
	return cmd
}
