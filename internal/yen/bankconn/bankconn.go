// Package bankconn connects the core to the bank and the payment
// provider: it reads the bank's statements and result files from the drop
// directory, takes the bank's and the provider's signed JSON notices,
// writes each batch's transfer file once, hands the bank kinko's
// instructions, and asks the provider for payment requests. Everything it
// learns becomes a journaled command; the core's apply decides (matching,
// crediting once, holding, settling, reconciling), so the connector holds
// no state of its own beyond the files.
//
// The drop directory has two folders: outbox/ (kinko to the bank:
// transfer files <batch>.txt, instructions instr-<id>.json with their
// signatures) and inbox/ (the bank to kinko: statement-*.txt, result-*.txt;
// moved to inbox/done/ once imported).
package bankconn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"kinko/internal/alert"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/fsutil"
	"kinko/internal/ledger"
	"kinko/internal/yen"
	"kinko/internal/yen/zengin"
)

// maxInFlight bounds the commands of one import submitted at once.
const maxInFlight = 64

// Config configures a connector.
type Config struct {
	Core *core.Core
	// Drop is the drop directory shared with the bank.
	Drop string
	// BankKey and ProviderKey are the HMAC keys shared with the bank and
	// with the provider.
	BankKey, ProviderKey []byte
	// ProviderURL is the provider's API (HTTPS), ProviderClient the
	// client that trusts it.
	ProviderURL    string
	ProviderClient *http.Client
	Now            func() time.Time
	Logger         *slog.Logger
}

// Connector is the bank and provider connector.
type Connector struct {
	cfg Config
	log *slog.Logger
}

// New returns a connector; it makes the drop directory's folders.
func New(cfg Config) (*Connector, error) {
	if cfg.Core == nil || cfg.Drop == "" || len(cfg.BankKey) < 16 {
		return nil, errors.New("bankconn: a core, a drop directory and a bank key of at least 16 bytes are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ProviderClient == nil {
		cfg.ProviderClient = http.DefaultClient
	}
	for _, d := range []string{"outbox", "outbox/processed", "inbox", "inbox/done"} {
		if err := os.MkdirAll(filepath.Join(cfg.Drop, d), 0o700); err != nil {
			return nil, err
		}
	}
	return &Connector{cfg: cfg, log: cfg.Logger}, nil
}

func (c *Connector) submit(ctx context.Context, cmd core.Command) (core.Outcome, error) {
	o, err := c.cfg.Core.Submit(ctx, c.cfg.Now(), cmd)
	if err != nil {
		return o, err
	}
	return o, o.EventErr()
}

func (c *Connector) config() (yen.Config, error) {
	var cfg *yen.Config
	c.cfg.Core.Read(func(s *core.State) { cfg = s.Yen.Config })
	if cfg == nil {
		return yen.Config{}, yen.ErrNotSetUp
	}
	return *cfg, nil
}

// credit turns a movement of the trust account into a BankCredit: an
// instruction carried out if its EDI names one of kinko's instructions,
// else (a credit) a transfer to the virtual account its memo names; a
// debit that is no instruction (a payout, a fee) is left to the
// reconciliation.
func (c *Connector) credit(cfg yen.Config, txid, memo, edi, sender, source string, credit bool, amount uint64) (core.BankCredit, bool) {
	known, payout := false, false
	if edi != "" {
		c.cfg.Core.Read(func(s *core.State) {
			_, known = s.Yen.Instruction(edi)
			if n, err := strconv.ParseUint(strings.TrimPrefix(edi, "P"), 10, 64); err == nil && strings.HasPrefix(edi, "P") {
				_, payout = s.Yen.Payout(n)
			}
		})
	}
	if known {
		return core.BankCredit{TxID: txid, Amount: amount, Source: source, Instruction: edi}, true
	}
	if payout {
		// A payout paid, or paid and returned (組戻し): the results
		// settle it.
		return core.BankCredit{}, false
	}
	if !credit {
		return core.BankCredit{}, false
	}
	acct := ""
	if len(memo) == 10 && memo[:3] == cfg.VirtualBranch {
		acct = memo[3:]
	}
	return core.BankCredit{TxID: txid, Account: acct, Amount: amount, Sender: sender, Source: source}, true
}

// Report is what an import did.
type Report struct {
	Entries   int                 `json:"entries"`
	Results   map[string]int      `json:"results"`
	Reconcile *yen.Reconciliation `json:"reconciliation,omitempty"`
}

// ImportStatement imports a statement file: every movement of the trust
// account, in chunks of at most yen.MaxItems, then the reconciliation of
// its closing balance. A file that does not parse, or is not the trust
// account's, submits nothing. An import cut short is finished by
// importing again: every movement is applied once, by its id.
func (c *Connector) ImportStatement(ctx context.Context, name string, b []byte) (*Report, error) {
	st, err := zengin.ParseStatement(b)
	if err != nil {
		return nil, err
	}
	return c.ImportParsed(ctx, name, st)
}

// ImportParsed imports a parsed statement (ImportStatement).
func (c *Connector) ImportParsed(ctx context.Context, name string, st *zengin.Statement) (*Report, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	var g *zengin.StatementGroup
	for i := range st.Groups {
		if st.Groups[i].Account.Key() == cfg.Trust.Key() {
			g = &st.Groups[i]
		} else {
			return nil, fmt.Errorf("bankconn: statement %s: account %s is not the trust account %s", name, st.Groups[i].Account.Key(), cfg.Trust.Key())
		}
	}
	rep := &Report{Results: map[string]int{}}
	var chunks [][]core.BankCredit
	items := make([]core.BankCredit, 0, min(len(g.Entries), yen.MaxItems))
	for i := range g.Entries {
		e := &g.Entries[i]
		txid := g.Account.Number + "-" + strconv.FormatUint(e.Ref, 10)
		it, ok := c.credit(cfg, txid, e.Memo, e.EDI, e.Sender, "statement", e.Credit, e.Amount)
		rep.Entries++
		if !ok {
			rep.Results["debit"]++
			continue
		}
		items = append(items, it)
		if len(items) == yen.MaxItems {
			chunks = append(chunks, items)
			items = make([]core.BankCredit, 0, yen.MaxItems)
		}
	}
	if len(items) > 0 {
		chunks = append(chunks, items)
	}
	// The chunks are independent (each movement is applied once, by its
	// id, whatever the order), so they are submitted together and the
	// core journals them in one group commit.
	outs := make([][]string, len(chunks))
	errs := make([]error, len(chunks))
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxInFlight)
	for i, ch := range chunks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			o, err := c.submit(ctx, core.YenBankCredits{Items: ch})
			if err != nil {
				errs[i] = fmt.Errorf("bankconn: statement %s: %w", name, err)
				return
			}
			outs[i] = o.Value.([]string)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return rep, err
	}
	for _, out := range outs {
		for _, r := range out {
			k, _, _ := strings.Cut(r, ":")
			rep.Results[k]++
		}
	}
	o, err := c.submit(ctx, core.YenReconcile{Statement: fmt.Sprintf("%s %s..%s %s", g.Account.Number, g.From, g.To, name), Closing: g.Closing})
	if err != nil {
		return rep, err
	}
	r := o.Value.(yen.Reconciliation)
	rep.Reconcile = &r
	if r.Incident != "" {
		c.log.Warn("yen reconciliation difference: bank deposits halted", "statement", name, "diff", r.Diff, "incident", r.Incident)
	}
	return rep, nil
}

// ImportResults applies a result file (the transfer file returned with
// each payment's result) or results from a notice.
func (c *Connector) ImportResults(ctx context.Context, b []byte) (map[string]int, error) {
	f, err := zengin.ParseTransferFile(b)
	if err != nil {
		return nil, err
	}
	var rs []core.PayoutResult
	for _, p := range f.Payments {
		switch p.Result {
		case zengin.ResultDone:
			rs = append(rs, core.PayoutResult{Number: p.Code1, Result: "done"})
		case zengin.ResultRejected:
			rs = append(rs, core.PayoutResult{Number: p.Code1, Result: "rejected"})
		case zengin.ResultReturned:
			rs = append(rs, core.PayoutResult{Number: p.Code1, Result: "returned"})
		}
	}
	return c.settle(ctx, rs)
}

// settle submits results grouped by batch, in order.
func (c *Connector) settle(ctx context.Context, rs []core.PayoutResult) (map[string]int, error) {
	byBatch := map[string][]core.PayoutResult{}
	var order []string
	c.cfg.Core.Read(func(s *core.State) {
		for _, r := range rs {
			b := ""
			if p, ok := s.Yen.Payout(r.Number); ok {
				b = p.Batch
			}
			if _, seen := byBatch[b]; !seen {
				order = append(order, b)
			}
			byBatch[b] = append(byBatch[b], r)
		}
	})
	out := map[string]int{}
	for _, b := range order {
		if b == "" {
			out["unknown payout"] += len(byBatch[b])
			continue
		}
		list := byBatch[b]
		for len(list) > 0 {
			n := min(len(list), yen.MaxItems)
			o, err := c.submit(ctx, core.YenSettle{Batch: b, Results: list[:n]})
			if err != nil {
				return out, err
			}
			for _, r := range o.Value.([]string) {
				k, _, _ := strings.Cut(r, ":")
				out[k]++
			}
			list = list[n:]
		}
	}
	return out, nil
}

// ImportInbox imports every statement and result file in inbox/, results
// first, in name order, moving each to inbox/done/ once imported. A file
// that fails is left where it is and reported.
func (c *Connector) ImportInbox(ctx context.Context) error {
	dir := filepath.Join(c.cfg.Drop, "inbox")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".txt") {
			names = append(names, e.Name())
		}
	}
	sort.Slice(names, func(i, j int) bool {
		ri, rj := strings.HasPrefix(names[i], "result-"), strings.HasPrefix(names[j], "result-")
		if ri != rj {
			return ri
		}
		return names[i] < names[j]
	})
	var errs []error
	for _, n := range names {
		p := filepath.Join(dir, n)
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case strings.HasPrefix(n, "result-"):
			_, err = c.ImportResults(ctx, b)
		case strings.HasPrefix(n, "statement-"):
			_, err = c.ImportStatement(ctx, n, b)
		default:
			err = fmt.Errorf("bankconn: %s: not a statement or a result file", n)
		}
		if err != nil {
			c.log.Warn("bank file not imported", "file", n, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
			continue
		}
		if err := os.Rename(p, filepath.Join(dir, "done", n)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// WriteBatch journals a batch of the queued yen withdrawals for the given
// transfer date and writes its file.
func (c *Connector) WriteBatch(ctx context.Context, id string, date zengin.Date) (*yen.Batch, error) {
	o, err := c.submit(ctx, core.YenWriteBatch{ID: id, Month: date.Month, Day: date.Day})
	if err != nil {
		return nil, err
	}
	b := o.Value.(*yen.Batch)
	return b, c.Flush(ctx)
}

// Flush writes the file of every batch not yet given to the bank and
// hands it every instruction not yet sent. A batch's file is its
// journaled bytes, checked against the journaled hash; one already in the
// outbox (or processed by the bank) with the same bytes is not written
// again, and one with other bytes is an error: a batch is never paid
// twice or differently.
func (c *Connector) Flush(ctx context.Context) error {
	type job struct {
		b     yen.Batch
		bytes []byte
		hash  string
		err   error
	}
	var jobs []job
	var instrs []yen.Instruction
	c.cfg.Core.Read(func(s *core.State) {
		for _, b := range s.Yen.Batches() {
			if b.Written {
				continue
			}
			out, h, err := s.Yen.FileBytes(&b, nil)
			jobs = append(jobs, job{b: b, bytes: out, hash: h, err: err})
		}
		for _, in := range s.Yen.Instructions() {
			if !in.Sent && (in.Kind == yen.InstrFundTrust || in.Kind == yen.InstrReturn) {
				instrs = append(instrs, in)
			}
		}
	})
	for _, j := range jobs {
		if j.err != nil {
			return j.err
		}
		if j.hash != j.b.Hash {
			return fmt.Errorf("bankconn: batch %s: the file rebuilt from the journal has hash %s, the journal says %s", j.b.ID, j.hash, j.b.Hash)
		}
		if err := c.writeOnce(j.b.ID+".txt", j.bytes); err != nil {
			return err
		}
		if _, err := c.submit(ctx, core.YenBatchWritten{ID: j.b.ID, Hash: j.hash}); err != nil && !errors.Is(err, yen.ErrExists) {
			return err
		}
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	for _, in := range instrs {
		body, _ := json.Marshal(Instruction{ID: in.ID, Kind: in.Kind, Amount: in.Amount, Deposit: in.Deposit, From: cfg.Operating, To: cfg.Trust})
		if in.Kind == yen.InstrReturn {
			body, _ = json.Marshal(Instruction{ID: in.ID, Kind: in.Kind, Amount: in.Amount, Deposit: in.Deposit, From: cfg.Trust})
		}
		name := "instr-" + in.ID + ".json"
		if err := c.writeOnce(name+".sig", []byte(alert.Sign(c.cfg.BankKey, body))); err != nil {
			return err
		}
		if err := c.writeOnce(name, body); err != nil {
			return err
		}
		if _, err := c.submit(ctx, core.YenInstructionSent{ID: in.ID}); err != nil {
			return err
		}
	}
	return nil
}

// Instruction is an instruction file for the bank: move Amount from From
// to To (fund_trust), or send back the deposit Deposit (return_deposit).
// Its signature (hex HMAC-SHA256 with the bank key) is in the file of the
// same name with ".sig" added.
type Instruction struct {
	ID      string         `json:"id"`
	Kind    string         `json:"kind"`
	Amount  uint64         `json:"amount"`
	Deposit string         `json:"deposit,omitempty"`
	From    zengin.Account `json:"from"`
	To      zengin.Account `json:"to,omitzero"`
}

// writeOnce writes name in the outbox unless it (or its processed copy)
// is there with the same bytes; other bytes are an error.
func (c *Connector) writeOnce(name string, b []byte) error {
	for _, p := range []string{filepath.Join(c.cfg.Drop, "outbox", name), filepath.Join(c.cfg.Drop, "outbox", "processed", name)} {
		old, err := os.ReadFile(p)
		if err == nil {
			if sha256.Sum256(old) != sha256.Sum256(b) {
				return fmt.Errorf("bankconn: %s is already in the drop directory with other bytes: not written", p)
			}
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return fsutil.WriteFile(filepath.Join(c.cfg.Drop, "outbox", name), c.cfg.Drop, b, true)
}

// Run imports the inbox and flushes the outbox every period until ctx
// ends.
func (c *Connector) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		// Before the yen setup there is nothing to read or write.
		if err := c.ImportInbox(ctx); err != nil && !errors.Is(err, yen.ErrNotSetUp) {
			c.log.Warn("yen inbox", "err", err)
		}
		if err := c.Flush(ctx); err != nil && !errors.Is(err, yen.ErrNotSetUp) {
			c.log.Warn("yen outbox", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func answer(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// status maps a submission's error to an answer: 503 when the core could
// not take it (the sender retries), 409 when it was refused.
func status(err error) int {
	if errors.Is(err, core.ErrJournalFailed) || errors.Is(err, core.ErrOutcomeUnknown) || errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable
	}
	if errors.Is(err, core.ErrCommandInvalid) {
		return http.StatusBadRequest
	}
	return http.StatusConflict
}

// BankHandler takes the bank's notices (POST, JSON, signed): 200 with the
// outcome (a replay answers "duplicate"), 401 for a bad signature, 400 for
// a malformed notice, 409 for one refused, 503 when the core could not
// take it.
func (c *Connector) BankHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			answer(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST only"})
			return
		}
		body, err := yen.ReadSigned(r, c.cfg.BankKey)
		if errors.Is(err, yen.ErrSignature) {
			answer(w, http.StatusUnauthorized, map[string]string{"error": err.Error()})
			return
		}
		var n yen.BankNotice
		if err == nil {
			err = yen.DecodeStrict(body, &n)
		}
		if err != nil {
			answer(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		res, err := c.bankNotice(r.Context(), n)
		if err != nil {
			answer(w, status(err), map[string]string{"error": err.Error()})
			return
		}
		answer(w, http.StatusOK, map[string]any{"result": res})
	})
}

func (c *Connector) bankNotice(ctx context.Context, n yen.BankNotice) (any, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	switch n.Type {
	case "deposit":
		if n.TxID == "" || n.Amount == 0 {
			return nil, fmt.Errorf("%w: a deposit notice needs a transaction id and an amount above zero", core.ErrCommandInvalid)
		}
		it, ok := c.credit(cfg, n.TxID, n.Memo, n.EDI, n.Sender, "notice", n.Credit, n.Amount)
		if !ok {
			return "debit: left to the statement", nil
		}
		o, err := c.submit(ctx, core.YenBankCredits{Items: []core.BankCredit{it}})
		if err != nil {
			return nil, err
		}
		return o.Value.([]string)[0], nil
	case "result":
		var rs []core.PayoutResult
		for _, r := range n.Results {
			rs = append(rs, core.PayoutResult{Number: r.Code1, Result: r.Result})
		}
		if len(rs) == 0 || len(rs) > yen.MaxItems {
			return nil, fmt.Errorf("%w: 1 to %d results", core.ErrCommandInvalid, yen.MaxItems)
		}
		return c.settle(ctx, rs)
	}
	return nil, fmt.Errorf("%w: notice type %q", core.ErrCommandInvalid, n.Type)
}

// ProviderHandler takes the provider's notifications, answered as
// BankHandler's.
func (c *Connector) ProviderHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			answer(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST only"})
			return
		}
		body, err := yen.ReadSigned(r, c.cfg.ProviderKey)
		if errors.Is(err, yen.ErrSignature) {
			answer(w, http.StatusUnauthorized, map[string]string{"error": err.Error()})
			return
		}
		var n yen.ProviderNotice
		if err == nil {
			err = yen.DecodeStrict(body, &n)
		}
		if err != nil {
			answer(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		res, err := c.providerNotice(r.Context(), n)
		if err != nil {
			answer(w, status(err), map[string]string{"error": err.Error()})
			return
		}
		answer(w, http.StatusOK, map[string]any{"result": res})
	})
}

func (c *Connector) providerNotice(ctx context.Context, n yen.ProviderNotice) (any, error) {
	switch n.Type {
	case "event":
		if n.ID == "" || n.Payment == "" {
			return nil, fmt.Errorf("%w: an event needs an id and a payment", core.ErrCommandInvalid)
		}
		o, err := c.submit(ctx, core.YenPaymentEvents{Events: []core.ProviderEvent{{ID: n.ID, Payment: n.Payment, Type: n.Kind, Amount: n.Amount}}})
		if err != nil {
			return nil, err
		}
		r := o.Value.([]string)[0]
		if strings.HasPrefix(r, "conflict") {
			return nil, fmt.Errorf("yen: %s", r)
		}
		return r, nil
	case "settlement":
		var dup bool
		c.cfg.Core.Read(func(s *core.State) {
			for _, rc := range s.Yen.Reconciliations(0) {
				dup = dup || rc.What == "settlement "+n.ID
			}
		})
		if dup {
			return "duplicate", nil
		}
		o, err := c.submit(ctx, core.YenSettlement{ID: n.ID, Channel: controls.Service(n.Channel), Payments: n.Payments, Total: n.Total})
		if err != nil {
			return nil, err
		}
		return o.Value, nil
	}
	return nil, fmt.Errorf("%w: notification type %q", core.ErrCommandInvalid, n.Type)
}

// PaymentRequest is what kinko asks the provider for.
type PaymentRequest struct {
	Reference string `json:"reference"`
	Customer  uint64 `json:"customer"`
	Method    string `json:"method"`
	Amount    uint64 `json:"amount"`
}

// PaymentAnswer is the provider's answer: its payment id, the number the
// customer pays with and its expiry (unix seconds).
type PaymentAnswer struct {
	ID      string `json:"id"`
	Number  string `json:"number"`
	Expires int64  `json:"expires"`
}

// RequestPayment asks the provider for a payment request for a customer
// and journals it. The checks apply makes are made first, so the provider
// is not asked for what would be refused.
func (c *Connector) RequestPayment(ctx context.Context, customer ledger.OwnerID, method controls.Service, amount uint64, ref string) (yen.Payment, error) {
	var cfg *yen.Config
	var halted error
	c.cfg.Core.Read(func(s *core.State) {
		cfg = s.Yen.Config
		halted = s.Controls.Allowed(0, method)
	})
	if cfg == nil {
		return yen.Payment{}, yen.ErrNotSetUp
	}
	if _, ok := yen.ProviderOwner(method); !ok {
		return yen.Payment{}, fmt.Errorf("%w: method %q", yen.ErrInvalid, method)
	}
	if halted != nil {
		return yen.Payment{}, halted
	}
	if amount == 0 || amount > cfg.PaymentMax {
		return yen.Payment{}, fmt.Errorf("%w: %d yen (1 to %d)", yen.ErrAmount, amount, cfg.PaymentMax)
	}
	body, _ := json.Marshal(PaymentRequest{Reference: ref, Customer: uint64(customer), Method: string(method), Amount: amount})
	_, out, err := yen.Post(ctx, c.cfg.ProviderClient, strings.TrimSuffix(c.cfg.ProviderURL, "/")+"/v1/payments", c.cfg.ProviderKey, body)
	if err != nil {
		return yen.Payment{}, fmt.Errorf("bankconn: the provider: %w", err)
	}
	var a PaymentAnswer
	if err := json.Unmarshal(out, &a); err != nil || a.ID == "" {
		return yen.Payment{}, fmt.Errorf("bankconn: the provider's answer: %q", out)
	}
	p := yen.Payment{ID: a.ID, Customer: uint64(customer), Method: method, Amount: amount, Number: a.Number, Expires: a.Expires * 1e9}
	if _, err := c.submit(ctx, core.YenPaymentRequest{Payment: p}); err != nil {
		return yen.Payment{}, err
	}
	return p, nil
}

// Hash is the hex SHA-256 of b, as batches name their files.
func Hash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
