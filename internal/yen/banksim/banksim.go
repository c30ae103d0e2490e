// Package banksim is a bank for tests and demonstrations, run as its own
// process (`kinko bank-sim`), as btcd regtest stands in for the Bitcoin
// network: it keeps the trust account (with its virtual accounts) and the
// operating account, takes transfers in, pays the transfer files (総合振込)
// kinko drops in the outbox and carries out its signed instructions,
// writes result files and statements (入出金取引明細) in the inbox, and
// sends kinko a signed JSON notice of every movement over HTTPS, retried
// until accepted. It speaks only the formats a real bank does; its
// control endpoint (plain HTTP on loopback) is what a customer's or
// another bank's transfer would be.
package banksim

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"kinko/internal/alert"
	"kinko/internal/fsutil"
	"kinko/internal/yen"
	"kinko/internal/yen/zengin"
)

// Config configures the bank.
type Config struct {
	Drop          string
	Key           []byte
	NotifyURL     string
	Client        *http.Client
	Trust         zengin.Account
	Operating     zengin.Account
	VirtualBranch string
	// Operating's opening balance.
	OperatingBalance int64
	// State, if set, is the file the bank keeps its books in (balances,
	// movements since the last statement, notices not yet accepted, the
	// files it paid, the senders' references): Open resumes from it, and
	// every change is written to it before it is answered, so a bank
	// restarted never reuses a transaction id nor takes a transfer twice.
	State  string
	Logger *slog.Logger
}

// Payee is an account at another bank the bank can pay: a transfer to an
// account it does not know is 振込不能; one marked Returns is paid and
// returned (組戻し).
type Payee struct {
	Account zengin.Account `json:"account"`
	Returns bool           `json:"returns,omitempty"`
}

// Bank is the simulated bank.
type Bank struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	trust     int64
	opening   int64
	operating int64
	ref       uint64
	entries   []zengin.Entry
	payees    map[string]Payee
	processed map[string]bool // hashes of files paid or carried out
	notices   [][]byte
	// pending are the notices not yet accepted, oldest first; wake tells
	// the delivery loop there is one.
	pending   [][]byte
	wake      chan struct{}
	statement int
	// refs are the transfers taken by the sender's reference.
	refs map[string]taken
}

// taken is a transfer taken in under a sender's reference.
type taken struct {
	Transfer Transfer `json:"transfer"`
	TxID     string   `json:"txid"`
}

// books is the bank's state as its State file keeps it.
type books struct {
	Trust     int64            `json:"trust"`
	Opening   int64            `json:"opening"`
	Operating int64            `json:"operating"`
	Ref       uint64           `json:"ref"`
	Entries   []zengin.Entry   `json:"entries"`
	Payees    []Payee          `json:"payees"`
	Processed []string         `json:"processed"`
	Notices   []string         `json:"notices"`
	Pending   []string         `json:"pending"`
	Statement int              `json:"statement"`
	Refs      map[string]taken `json:"refs"`
}

// New returns a bank with empty books (cfg.State is not read: see Open).
func New(cfg Config) *Bank {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Client == nil {
		cfg.Client = http.DefaultClient
	}
	return &Bank{cfg: cfg, log: cfg.Logger, operating: cfg.OperatingBalance, payees: map[string]Payee{}, processed: map[string]bool{},
		wake: make(chan struct{}, 1), refs: map[string]taken{}}
}

// Open returns a bank that keeps its books in cfg.State, resuming from
// the file if it exists (the configured opening balance then counts for
// nothing: the books say what the accounts hold). It makes the drop
// directory's folders.
func Open(cfg Config) (*Bank, error) {
	b := New(cfg)
	if cfg.Drop != "" {
		for _, d := range []string{"outbox/processed", "inbox"} {
			if err := os.MkdirAll(filepath.Join(cfg.Drop, d), 0o700); err != nil {
				return nil, err
			}
		}
	}
	if cfg.State == "" {
		return b, nil
	}
	raw, err := os.ReadFile(cfg.State)
	if errors.Is(err, os.ErrNotExist) {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b, b.saveLocked()
	}
	if err != nil {
		return nil, err
	}
	var k books
	if err := json.Unmarshal(raw, &k); err != nil {
		return nil, fmt.Errorf("banksim: %s: %w", cfg.State, err)
	}
	b.trust, b.opening, b.operating, b.ref, b.entries, b.statement = k.Trust, k.Opening, k.Operating, k.Ref, k.Entries, k.Statement
	for _, p := range k.Payees {
		b.payees[p.Account.Key()] = p
	}
	for _, h := range k.Processed {
		b.processed[h] = true
	}
	for _, n := range k.Notices {
		b.notices = append(b.notices, []byte(n))
	}
	for _, n := range k.Pending {
		b.pending = append(b.pending, []byte(n))
	}
	for r, t := range k.Refs {
		b.refs[r] = t
	}
	if len(b.pending) > 0 {
		b.wake <- struct{}{}
	}
	return b, nil
}

// saveLocked writes the books to the State file (none: nothing), synced
// and renamed into place.
func (b *Bank) saveLocked() error {
	if b.cfg.State == "" {
		return nil
	}
	k := books{Trust: b.trust, Opening: b.opening, Operating: b.operating, Ref: b.ref, Entries: b.entries, Statement: b.statement, Refs: b.refs}
	for _, p := range b.payees {
		k.Payees = append(k.Payees, p)
	}
	sort.Slice(k.Payees, func(i, j int) bool { return k.Payees[i].Account.Key() < k.Payees[j].Account.Key() })
	for h := range b.processed {
		k.Processed = append(k.Processed, h)
	}
	sort.Strings(k.Processed)
	for _, n := range b.notices {
		k.Notices = append(k.Notices, string(n))
	}
	for _, n := range b.pending {
		k.Pending = append(k.Pending, string(n))
	}
	raw, err := json.Marshal(k)
	if err != nil {
		return err
	}
	return fsutil.WriteFile(b.cfg.State, "", raw, true)
}

// saveOrLog is saveLocked for callers that changed the books: a failure is
// logged (the bank's books are then only in memory until the next save).
func (b *Bank) saveOrLog() {
	if err := b.saveLocked(); err != nil {
		b.log.Warn("the bank's books could not be written", "file", b.cfg.State, "err", err)
	}
}

func today() zengin.Date { return zengin.DateOf(time.Now()) }

// entryLocked records a movement of the trust account and queues its
// notice.
func (b *Bank) entryLocked(credit bool, amount uint64, sender, memo, edi string) string {
	b.ref++
	d := today()
	e := zengin.Entry{Ref: b.ref, Date: d, ValueDate: d, Credit: credit, Kind: zengin.TxTransfer, Amount: amount, Sender: sender, Memo: memo, EDI: edi}
	b.entries = append(b.entries, e)
	if credit {
		b.trust += int64(amount)
	} else {
		b.trust -= int64(amount)
	}
	txid := fmt.Sprintf("%s-%d", b.cfg.Trust.Number, b.ref)
	body, _ := json.Marshal(yen.BankNotice{Type: "deposit", TxID: txid, Memo: memo, EDI: edi, Credit: credit, Amount: amount, Sender: sender, Date: d.String()})
	b.notifyLocked(body)
	return txid
}

func (b *Bank) notifyLocked(body []byte) {
	b.notices = append(b.notices, body)
	b.queueLocked(body)
}

func (b *Bank) queueLocked(body []byte) {
	b.pending = append(b.pending, body)
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// deliver sends the pending notices in order, each until accepted (or
// refused for good), and returns when ctx ends; a notice being sent then
// stays pending, in the books, for the next start.
func (b *Bank) deliver(ctx context.Context) {
	for {
		b.mu.Lock()
		var body []byte
		if len(b.pending) > 0 {
			body = b.pending[0]
		}
		b.mu.Unlock()
		if body == nil {
			select {
			case <-ctx.Done():
				return
			case <-b.wake:
			}
			continue
		}
		if b.cfg.NotifyURL != "" {
			out, err := yen.Deliver(ctx, b.cfg.Client, b.cfg.NotifyURL, b.cfg.Key, body)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				b.log.Warn("notice refused", "err", err, "answer", string(out))
			}
		}
		b.mu.Lock()
		b.pending = b.pending[1:]
		b.saveOrLog()
		b.mu.Unlock()
	}
}

// Transfer is money sent to one of the bank's accounts.
type Transfer struct {
	Branch string `json:"branch"`
	Number string `json:"number"`
	Amount uint64 `json:"amount"`
	Sender string `json:"sender"`
	EDI    string `json:"edi,omitempty"`
	// Ref is the sender's own reference of the transfer, if any: the same
	// reference again is the same transfer, taken once (its transaction
	// id answered again), as a sending bank does not send a transfer
	// twice.
	Ref string `json:"ref,omitempty"`
}

// In takes a transfer in: to a virtual account or the trust account (a
// movement of the trust account), or to the operating account. It
// answers the movement's transaction id.
func (b *Bank) In(t Transfer) (string, error) {
	if t.Amount == 0 {
		return "", errors.New("banksim: amount of zero")
	}
	if _, err := zengin.Encode(t.Sender); err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.Ref != "" {
		if x, ok := b.refs[t.Ref]; ok {
			if x.Transfer != t {
				return "", fmt.Errorf("banksim: reference %q was a transfer of %d to %s-%s", t.Ref, x.Transfer.Amount, x.Transfer.Branch, x.Transfer.Number)
			}
			return x.TxID, nil
		}
	}
	var id string
	switch {
	case t.Branch == b.cfg.VirtualBranch:
		id = b.entryLocked(true, t.Amount, t.Sender, t.Branch+t.Number, t.EDI)
	case t.Number == b.cfg.Trust.Number:
		id = b.entryLocked(true, t.Amount, t.Sender, "", t.EDI)
	case t.Number == b.cfg.Operating.Number:
		b.operating += int64(t.Amount)
		id = "operating"
	default:
		return "", fmt.Errorf("banksim: no account %s-%s", t.Branch, t.Number)
	}
	if t.Ref != "" {
		b.refs[t.Ref] = taken{Transfer: t, TxID: id}
	}
	if err := b.saveLocked(); err != nil {
		return "", fmt.Errorf("banksim: the books: %w", err)
	}
	return id, nil
}

// Fee takes a fee from the trust account without a notice (as a bank's
// charge kinko has not booked).
func (b *Bank) Fee(amount uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ref++
	d := today()
	b.entries = append(b.entries, zengin.Entry{Ref: b.ref, Date: d, ValueDate: d, Kind: zengin.TxOther, Amount: amount, Memo: "ﾃｽｳﾘﾖｳ"})
	b.trust -= int64(amount)
	b.saveOrLog()
}

// AddPayee makes an account at another bank payable.
func (b *Bank) AddPayee(p Payee) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.payees[p.Account.Key()] = p
	b.saveOrLog()
}

// Close writes the statement of the trust account since the last one to
// the inbox and returns its name.
func (b *Bank) Close() (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := today()
	st := &zengin.Statement{Groups: []zengin.StatementGroup{{Created: d, From: d, To: d, Account: b.cfg.Trust, Passbook: 1, Opening: b.opening, Closing: b.trust, Entries: b.entries}}}
	out, err := zengin.AppendStatement(nil, st)
	if err != nil {
		return "", err
	}
	b.statement++
	name := fmt.Sprintf("statement-%s-%04d.txt", strings.ReplaceAll(d.String(), "-", ""), b.statement)
	if err := writeAtomic(filepath.Join(b.cfg.Drop, "inbox", name), out); err != nil {
		return "", err
	}
	b.opening, b.entries = b.trust, nil
	b.saveOrLog()
	return name, nil
}

// writeAtomic writes a file of the inbox whole, through a temporary file
// beside the inbox (kinko never sees a part of it).
func writeAtomic(path string, b []byte) error {
	return fsutil.WriteFile(path, filepath.Dir(filepath.Dir(path)), b, false)
}

// Scan pays every new transfer file and carries out every new
// instruction in the outbox, moving each to outbox/processed/. A file the
// bank has processed before (the same bytes) is not paid again.
func (b *Bank) Scan() error {
	dir := filepath.Join(b.cfg.Drop, "outbox")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasSuffix(e.Name(), ".sig") && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		p := filepath.Join(dir, n)
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		h := sha256.Sum256(data)
		key := hex.EncodeToString(h[:])
		b.mu.Lock()
		seen := b.processed[key]
		b.mu.Unlock()
		if !seen {
			switch {
			case strings.HasSuffix(n, ".txt"):
				err = b.pay(n, data)
			case strings.HasPrefix(n, "instr-") && strings.HasSuffix(n, ".json"):
				err = b.instruct(p, data)
			default:
				err = fmt.Errorf("banksim: %s: not a transfer file or an instruction", n)
			}
			if err != nil {
				b.log.Warn("outbox file refused", "file", n, "err", err)
				errs = append(errs, fmt.Errorf("%s: %w", n, err))
				continue
			}
			b.mu.Lock()
			b.processed[key] = true
			b.saveOrLog()
			b.mu.Unlock()
		}
		os.Rename(p, filepath.Join(dir, "processed", n))
		if _, err := os.Stat(p + ".sig"); err == nil {
			os.Rename(p+".sig", filepath.Join(dir, "processed", n+".sig"))
		}
	}
	return errors.Join(errs...)
}

// pay pays a transfer file: each payment to a payee the bank knows in the
// payee's name is paid (one that returns is paid and returned); any
// other is 振込不能. It writes the result file and sends the results.
func (b *Bank) pay(name string, data []byte) error {
	f, err := zengin.ParseTransferFile(data)
	if err != nil {
		return err
	}
	if f.From.Key() != func() string { a := b.cfg.Trust; a.Name = ""; return a.Key() }() {
		return fmt.Errorf("banksim: the file pays from %s, not the trust account", f.From.Key())
	}
	_, total := f.Total()
	b.mu.Lock()
	defer b.mu.Unlock()
	if int64(total) > b.trust {
		return fmt.Errorf("banksim: the file's %d yen exceed the trust account's %d", total, b.trust)
	}
	var n yen.BankNotice
	n.Type, n.File = "result", name
	for i := range f.Payments {
		p := &f.Payments[i]
		payee, ok := b.payees[p.To.Key()]
		edi := fmt.Sprintf("P%d", p.Code1)
		switch {
		case !ok || !zengin.SameName(payee.Account.Name, p.To.Name):
			p.Result = zengin.ResultRejected
		case payee.Returns:
			p.Result = zengin.ResultReturned
			b.entryLocked(false, p.Amount, "", "ﾌﾘｺﾐ", edi)
			b.entryLocked(true, p.Amount, p.To.Name, "ｸﾐﾓﾄﾞｼ", edi)
		default:
			p.Result = zengin.ResultDone
			b.entryLocked(false, p.Amount, "", "ﾌﾘｺﾐ", edi)
		}
		res := map[byte]string{zengin.ResultDone: "done", zengin.ResultRejected: "rejected", zengin.ResultReturned: "returned"}[p.Result]
		n.Results = append(n.Results, struct {
			Code1  uint64 `json:"code1"`
			Result string `json:"result"`
		}{p.Code1, res})
	}
	out, err := zengin.AppendTransferFile(nil, f)
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(b.cfg.Drop, "inbox", "result-"+name), out); err != nil {
		return err
	}
	body, _ := json.Marshal(n)
	b.notifyLocked(body)
	return nil
}

// Instruction is kinko's instruction file (bankconn.Instruction).
type Instruction struct {
	ID      string         `json:"id"`
	Kind    string         `json:"kind"`
	Amount  uint64         `json:"amount"`
	Deposit string         `json:"deposit,omitempty"`
	From    zengin.Account `json:"from"`
	To      zengin.Account `json:"to,omitzero"`
}

func (b *Bank) instruct(path string, data []byte) error {
	sig, err := os.ReadFile(path + ".sig")
	if err != nil {
		return fmt.Errorf("banksim: instruction without its signature: %w", err)
	}
	if !hmac.Equal([]byte(alert.Sign(b.cfg.Key, data)), []byte(strings.TrimSpace(string(sig)))) {
		return errors.New("banksim: instruction signature does not verify")
	}
	var in Instruction
	if err := yen.DecodeStrict(data, &in); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch in.Kind {
	case yen.InstrFundTrust:
		if in.From.Number != b.cfg.Operating.Number || in.To.Number != b.cfg.Trust.Number {
			return errors.New("banksim: fund_trust moves from the operating account to the trust account")
		}
		if b.operating < int64(in.Amount) {
			return fmt.Errorf("banksim: the operating account holds %d, not %d", b.operating, in.Amount)
		}
		b.operating -= int64(in.Amount)
		b.entryLocked(true, in.Amount, b.cfg.Operating.Name, "ﾌﾘｶｴ", in.ID)
	case yen.InstrReturn:
		if int64(in.Amount) > b.trust {
			return errors.New("banksim: the trust account cannot pay the return")
		}
		b.entryLocked(false, in.Amount, "", "ｸﾐﾓﾄﾞｼ", in.ID)
	default:
		return fmt.Errorf("banksim: instruction kind %q", in.Kind)
	}
	return nil
}

// Replay sends the i-th notice again (negative: from the end).
func (b *Bank) Replay(i int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i < 0 {
		i += len(b.notices)
	}
	if i < 0 || i >= len(b.notices) {
		return errors.New("banksim: no such notice")
	}
	b.queueLocked(b.notices[i])
	b.saveOrLog()
	return nil
}

// Balances are the bank's balances.
type Balances struct {
	Trust     int64 `json:"trust"`
	Operating int64 `json:"operating"`
	Notices   int   `json:"notices"`
	Pending   int   `json:"pending"`
}

// Balances returns the balances.
func (b *Bank) Balances() Balances {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Balances{Trust: b.trust, Operating: b.operating, Notices: len(b.notices), Pending: len(b.pending)}
}

// Control answers one call of a simulator's control endpoint (the bank's
// and the provider's): the JSON body read into v (none when v is nil),
// then fn's answer as JSON, 400 for a body that does not read, 409 for
// fn's error.
func Control(w http.ResponseWriter, r *http.Request, v any, fn func() (any, error)) {
	if v != nil {
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	out, err := fn()
	if err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// Handler is the control endpoint.
func (b *Bank) Handler() http.Handler {
	mux := http.NewServeMux()
	do := Control
	mux.HandleFunc("POST /transfer", func(w http.ResponseWriter, r *http.Request) {
		var t Transfer
		do(w, r, &t, func() (any, error) { id, err := b.In(t); return map[string]string{"txid": id}, err })
	})
	mux.HandleFunc("POST /fee", func(w http.ResponseWriter, r *http.Request) {
		var v struct{ Amount uint64 }
		do(w, r, &v, func() (any, error) { b.Fee(v.Amount); return "ok", nil })
	})
	mux.HandleFunc("POST /payee", func(w http.ResponseWriter, r *http.Request) {
		var p Payee
		do(w, r, &p, func() (any, error) { b.AddPayee(p); return "ok", nil })
	})
	mux.HandleFunc("POST /close", func(w http.ResponseWriter, r *http.Request) {
		do(w, r, nil, func() (any, error) { n, err := b.Close(); return map[string]string{"statement": n}, err })
	})
	mux.HandleFunc("POST /scan", func(w http.ResponseWriter, r *http.Request) {
		do(w, r, nil, func() (any, error) { return "ok", b.Scan() })
	})
	mux.HandleFunc("POST /replay", func(w http.ResponseWriter, r *http.Request) {
		var v struct{ Index int }
		do(w, r, &v, func() (any, error) { return "ok", b.Replay(v.Index) })
	})
	mux.HandleFunc("GET /balances", func(w http.ResponseWriter, r *http.Request) {
		do(w, r, nil, func() (any, error) { return b.Balances(), nil })
	})
	return mux
}

// Run serves the control endpoint on ln, scans the outbox every period
// and delivers notices, until ctx ends.
func (b *Bank) Run(ctx context.Context, ln net.Listener, every time.Duration) error {
	srv := &http.Server{Handler: b.Handler(), ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	// Both end with ctx; Run waits for them, so that nothing of this run
	// writes the books after it returns.
	wg.Add(2)
	go func() { defer wg.Done(); b.deliver(ctx) }()
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				b.Scan()
			}
		}
	}()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	err := srv.Serve(ln)
	if !errors.Is(err, http.ErrServerClosed) {
		ln.Close()
		return err
	}
	wg.Wait()
	return nil
}

// TLSClient returns an HTTPS client that trusts the CA certificates in
// the PEM file caFile (empty: the system's).
func TLSClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return &http.Client{Timeout: 15 * time.Second}, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("banksim: %s holds no certificate", caFile)
	}
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p, MinVersion: tls.VersionTLS12}}}, nil
}

// Main runs the bank from command-line arguments: kinko bank-sim --drop D
// --key-file K --notify URL --ca CA --listen ADDR --addr-file F --config C
// [--state FILE].
// The config file is JSON: {"trust": Account, "operating": Account,
// "virtual_branch": "200", "operating_balance": N, "payees": [Payee]}.
func Main(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("bank-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	drop := fs.String("drop", "", "the drop directory shared with kinko")
	keyFile := fs.String("key-file", "", "the HMAC key shared with kinko")
	notify := fs.String("notify", "", "kinko's notice endpoint (https://...)")
	ca := fs.String("ca", "", "PEM file of the CA that signed kinko's TLS certificate")
	listen := fs.String("listen", "127.0.0.1:0", "the control endpoint's address")
	addrFile := fs.String("addr-file", "", "write the control endpoint's address here")
	conf := fs.String("config", "", "the bank's accounts (JSON)")
	state := fs.String("state", "", "the file the bank keeps its books in (none: in memory only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var c struct {
		Trust            zengin.Account `json:"trust"`
		Operating        zengin.Account `json:"operating"`
		VirtualBranch    string         `json:"virtual_branch"`
		OperatingBalance int64          `json:"operating_balance"`
		Payees           []Payee        `json:"payees"`
	}
	b, err := os.ReadFile(*conf)
	if err != nil {
		return err
	}
	if err := yen.DecodeStrict(b, &c); err != nil {
		return err
	}
	key, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	client, err := TLSClient(*ca)
	if err != nil {
		return err
	}
	if *drop == "" {
		return errors.New("bank-sim: --drop is required")
	}
	for _, d := range []string{"outbox/processed", "inbox"} {
		if err := os.MkdirAll(filepath.Join(*drop, d), 0o700); err != nil {
			return err
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("role", "bank-sim")
	bank, err := Open(Config{Drop: *drop, Key: []byte(strings.TrimSpace(string(key))), NotifyURL: *notify, Client: client, Trust: c.Trust, Operating: c.Operating,
		VirtualBranch: c.VirtualBranch, OperatingBalance: c.OperatingBalance, State: *state, Logger: log})
	if err != nil {
		return err
	}
	for _, p := range c.Payees {
		bank.AddPayee(p)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile+".tmp", []byte(ln.Addr().String()), 0o600); err != nil {
			return err
		}
		if err := os.Rename(*addrFile+".tmp", *addrFile); err != nil {
			return err
		}
	}
	log.Info("bank-sim listening", "addr", ln.Addr().String())
	return bank.Run(ctx, ln, 100*time.Millisecond)
}
