package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/withdraw"
	"kinko/internal/yen"
	"kinko/internal/yen/bankcode"
	"kinko/internal/yen/zengin"
)

// Customers' yen (docs/yen.md): their virtual account, bank accounts,
// yen withdrawals, card / pay-easy / convenience-store payments and
// history; operators' queues, batches and reconciliations. Reviews of
// held deposits and bank instructions go through /v1/commands (one
// operator) or /v1/requests (two people above the threshold).
func (s *Server) registerYen() {
	s.handle("GET", "/v1/me/yen", true, s.myYen)
	s.handle("POST", "/v1/me/yen/virtual-account", true, s.idempotent(s.myVirtualAccount))
	s.handle("POST", "/v1/me/yen/bank-accounts", true, s.idempotent(s.postBankAccount))
	s.handle("DELETE", "/v1/me/yen/bank-accounts/{key}", true, s.deleteBankAccount)
	s.handle("POST", "/v1/me/yen/withdrawals", true, s.idempotent(s.yenWithdrawal))
	s.handle("POST", "/v1/me/yen/payments", true, s.idempotent(s.yenPayment))
	s.handle("GET", "/v1/yen", true, s.operatorOnly(s.yenOverview))
	s.handle("POST", "/v1/yen/batches", true, s.idempotent(s.yenBatch))
	s.registerConsoleYen()
}

// SetYen sets the bank and provider connector (card, pay-easy and
// convenience-store payment requests, transfer files). Call it before
// serving.
func (s *Server) SetYen(c YenConnector) { s.cfg.Yen = c }

// YenConnector is what the API asks of the bank and provider connector
// (internal/yen/bankconn).
type YenConnector interface {
	RequestPayment(ctx context.Context, customer ledger.OwnerID, method controls.Service, amount uint64, ref string) (yen.Payment, error)
	WriteBatch(ctx context.Context, id string, date zengin.Date) (*yen.Batch, error)
}

var errNoConnector = errors.New("the bank and provider connector is not running")

// yenKinds are the yen errors the API knows, each with its stable code;
// they join the API's kinds at start.
var yenKinds = []kind{
	{http.StatusServiceUnavailable, "yen unavailable", "yen_not_set_up", []error{yen.ErrNotSetUp, errNoConnector}},
	{http.StatusNotFound, "not found", "yen_deposit_unknown", []error{yen.ErrDepositUnknown}},
	{http.StatusNotFound, "not found", "bank_account_unknown", []error{yen.ErrBankUnknown}},
	{http.StatusNotFound, "not found", "yen_batch_unknown", []error{yen.ErrBatchUnknown}},
	{http.StatusNotFound, "not found", "yen_payment_unknown", []error{yen.ErrPaymentUnknown}},
	{http.StatusConflict, "conflict", "yen_exists", []error{yen.ErrExists, yen.ErrSetUp}},
	{http.StatusConflict, "conflict", "yen_not_held", []error{yen.ErrNotHeld}},
	{http.StatusConflict, "conflict", "yen_nothing_queued", []error{yen.ErrNothingQueued}},
	{http.StatusConflict, "conflict", "yen_payment_state", []error{yen.ErrPaymentState}},
	{http.StatusForbidden, "forbidden", "two_person", []error{core.ErrYenTwoPerson}},
	{http.StatusUnprocessableEntity, "invalid request", "bank_code_unknown", []error{bankcode.ErrUnknownBank}},
	{http.StatusUnprocessableEntity, "invalid request", "branch_code_unknown", []error{bankcode.ErrUnknownBranch}},
	{http.StatusUnprocessableEntity, "invalid request", "bank_account_invalid", []error{yen.ErrBankAccount}},
	{http.StatusUnprocessableEntity, "invalid request", "name_mismatch", []error{yen.ErrNameMismatch, yen.ErrNoKana}},
	{http.StatusUnprocessableEntity, "withdrawal refused", "over_bound", []error{yen.ErrBound}},
	{http.StatusUnprocessableEntity, "withdrawal refused", "bank_account_cooling", []error{yen.ErrBankCooling}},
	{http.StatusUnprocessableEntity, "invalid request", "yen_amount", []error{yen.ErrAmount}},
	{http.StatusUnprocessableEntity, "invalid request", "yen_instruction", []error{yen.ErrInstruction}},
	{http.StatusUnprocessableEntity, "invalid request", "virtual_accounts_exhausted", []error{yen.ErrVirtualExhausted}},
	{http.StatusUnprocessableEntity, "invalid request", "kana_charset", []error{zengin.ErrCharset, zengin.ErrField}},
	{http.StatusUnprocessableEntity, "invalid request", "yen_invalid", []error{yen.ErrInvalid}},
}

func init() { kinds = append(kinds, yenKinds...) }

// YenAccountView is a bank account as the API shows it, with when it is
// usable (after the cool-down).
type YenAccountView struct {
	Key        string    `json:"key"`
	Bank       string    `json:"bank"`
	BankName   string    `json:"bank_name,omitempty"`
	Branch     string    `json:"branch"`
	BranchName string    `json:"branch_name,omitempty"`
	Type       int       `json:"type"`
	Number     string    `json:"number"`
	Name       string    `json:"name"`
	UsableFrom time.Time `json:"usable_from"`
	// BankLabel and BranchLabel name the bank and branch in plain words
	// (e.g. 三菱ＵＦＪ, 渋谷), from the bank master of the yen setup.
	BankLabel   string `json:"bank_label,omitempty"`
	BranchLabel string `json:"branch_label,omitempty"`
}

// accountView shows a customer's bank account, usable from the end of
// its cool-down, its bank and branch named from the master (m may be nil).
func accountView(m *bankcode.Master, a yen.BankAccount, coolDown int64) YenAccountView {
	v := zenginView(m, a.Account)
	v.UsableFrom = time.Unix(0, a.Added+coolDown).UTC()
	return v
}

// zenginView shows an account, its bank and branch named from the master
// (m may be nil).
func zenginView(m *bankcode.Master, z zengin.Account) YenAccountView {
	v := YenAccountView{Key: z.Key(), Bank: z.Bank, BankName: z.BankName, Branch: z.Branch, BranchName: z.BranchName, Type: z.Type, Number: z.Number, Name: z.Name}
	if m != nil {
		if b, br, _ := m.Lookup(z.Bank, z.Branch); b != nil {
			v.BankLabel = b.Name
			if br != nil {
				v.BranchLabel = br.Name
			}
		}
	}
	return v
}

// YenWithdrawalView is a yen withdrawal with where it goes, its fee, when
// it was asked, and its transfer file's batch and the bank's result
// (done, rejected, returned) once there are.
type YenWithdrawalView struct {
	WithdrawalView
	To       string    `json:"to"`
	Fee      string    `json:"fee"`
	Batch    string    `json:"batch,omitempty"`
	Time     time.Time `json:"time"`
	Result   string    `json:"result,omitempty"`
	Refunded bool      `json:"refunded,omitempty"`
}

// YenVirtualView is a customer's virtual account: where to send yen.
type YenVirtualView struct {
	Bank     string `json:"bank"`
	BankName string `json:"bank_name"`
	// BankLabel and BranchLabel name the bank and branch in plain words.
	BankLabel   string `json:"bank_label,omitempty"`
	Branch      string `json:"branch"`
	BranchLabel string `json:"branch_label,omitempty"`
	Type        int    `json:"type"`
	Number      string `json:"number"`
	Name        string `json:"name"`
	SendFrom    string `json:"send_from"`
}

// YenMine is a customer's yen as GET /v1/me/yen and the customer app show
// it.
type YenMine struct {
	VirtualAccount *YenVirtualView     `json:"virtual_account,omitempty"`
	BankAccounts   []YenAccountView    `json:"bank_accounts"`
	Deposits       []yen.Deposit       `json:"deposits"`
	Payments       []yen.Payment       `json:"payments"`
	Withdrawals    []YenWithdrawalView `json:"withdrawals"`
	Fee            string              `json:"fee"`
}

var payoutResults = map[byte]string{zengin.ResultDone: "done", zengin.ResultRejected: "rejected", zengin.ResultReturned: "returned"}

// yenOf reads a customer's yen.
func (s *Server) yenOf(c ledger.OwnerID) (YenMine, error) {
	var out YenMine
	var err error
	s.core.Read(func(st *core.State) {
		y := st.Yen
		if y.Config == nil {
			err = yen.ErrNotSetUp
			return
		}
		if n, ok := y.VirtualOf(uint64(c)); ok {
			va := zenginView(y.Master, zengin.Account{Bank: y.Config.Trust.Bank, BankName: y.Config.Trust.BankName, Branch: y.Config.VirtualBranch})
			out.VirtualAccount = &YenVirtualView{Bank: va.Bank, BankName: va.BankName, BankLabel: va.BankLabel, Branch: va.Branch, BranchLabel: va.BranchLabel,
				Type: zengin.Ordinary, Number: n, Name: y.Config.Trust.Name, SendFrom: "an account in your own name: a transfer from anyone else is held for review"}
		}
		out.BankAccounts = []YenAccountView{}
		for _, a := range y.BankAccounts(uint64(c)) {
			out.BankAccounts = append(out.BankAccounts, accountView(y.Master, a, st.Withdraw.CoolDown()))
		}
		out.Deposits = y.Deposits(func(d *yen.Deposit) bool { return d.Customer == uint64(c) }, MaxLimit)
		out.Payments = y.Payments(uint64(c))
		out.Withdrawals = []YenWithdrawalView{}
		for _, po := range y.Payouts(func(po *yen.Payout) bool { return po.Customer == uint64(c) }, MaxLimit) {
			wd, _ := st.Withdraw.Get(po.Withdrawal)
			out.Withdrawals = append(out.Withdrawals, YenWithdrawalView{WithdrawalView: viewOf(wd), To: po.To.Key(), Fee: strconv.FormatUint(po.Fee, 10), Batch: po.Batch,
				Time: time.Unix(0, wd.Time).UTC(), Result: payoutResults[po.Result], Refunded: po.Refunded})
		}
		out.Fee = strconv.FormatUint(y.Config.Fee, 10)
	})
	return out, err
}

// asker is who asks for a customer's action, checked after the request's
// own checks and before anything is done: their session and, where money
// moves (step), a fresh step-up code. The API's asker takes the bearer
// token (or the cookie with its CSRF header) and X-TOTP; the customer
// app's, its own session cookie and the form's code.
type asker func(step bool) (Principal, error)

// apiAsker is the JSON API's asker of a request.
func (s *Server) apiAsker(r *http.Request) asker {
	return func(step bool) (Principal, error) {
		p, err := s.customer(r)
		if err == nil && step {
			err = s.StepUp(r, p)
		}
		return p, err
	}
}

func (s *Server) myYen(w http.ResponseWriter, r *http.Request) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out, err := s.yenOf(p.Session.Customer)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// assignVirtual gives the asker their virtual account number (the same
// one every time).
func (s *Server) assignVirtual(ctx context.Context, ask asker) (string, error) {
	p, err := ask(false)
	if err != nil {
		return "", err
	}
	v, err := s.submit(ctx, core.YenAssignVirtual{Customer: p.Session.Customer})
	if err != nil {
		return "", err
	}
	n, _ := v.(string)
	return n, nil
}

func (s *Server) myVirtualAccount(w http.ResponseWriter, r *http.Request, body []byte) {
	n, err := s.assignVirtual(r.Context(), s.apiAsker(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"number": n})
}

// BankAccountRequest registers a bank account in the customer's own name;
// the holder's name in kana (half-width or full-width) as the bank writes
// it.
type BankAccountRequest struct {
	Bank       string `json:"bank"`
	BankName   string `json:"bank_name"`
	Branch     string `json:"branch"`
	BranchName string `json:"branch_name"`
	Type       int    `json:"type"`
	Number     string `json:"number"`
	Name       string `json:"name"`
}

// addBankAccount registers a bank account of the asker's (a step-up):
// the codes checked first, then the core's checks (the name against
// KYC's, the cool-down begins).
func (s *Server) addBankAccount(ctx context.Context, ask asker, req BankAccountRequest) (YenAccountView, error) {
	a := zengin.Account{Bank: req.Bank, BankName: req.BankName, Branch: req.Branch, BranchName: req.BranchName, Type: req.Type, Number: req.Number, Name: req.Name}
	if err := a.CheckCodes(); err != nil {
		return YenAccountView{}, fmt.Errorf("%w: %w", yen.ErrBankAccount, err)
	}
	p, err := ask(true)
	if err != nil {
		return YenAccountView{}, err
	}
	if _, err := s.submit(ctx, core.YenRegisterAccount{Customer: p.Session.Customer, Account: a}); err != nil {
		return YenAccountView{}, err
	}
	var v YenAccountView
	s.core.Read(func(st *core.State) {
		// As registered: the holder's name normalized, the bank's and
		// branch's names the master's.
		ba, _ := st.Yen.BankAccount(uint64(p.Session.Customer), a.Key())
		v = accountView(st.Yen.Master, ba, st.Withdraw.CoolDown())
	})
	return v, nil
}

func (s *Server) postBankAccount(w http.ResponseWriter, r *http.Request, body []byte) {
	var req BankAccountRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.addBankAccount(r.Context(), s.apiAsker(r), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"account": v, "usable_after": "the cool-down (24 hours by default)"})
}

// removeBankAccount removes a bank account of the asker's, by its key.
func (s *Server) removeBankAccount(ctx context.Context, ask asker, key string) error {
	p, err := ask(false)
	if err != nil {
		return err
	}
	_, err = s.submit(ctx, core.YenRemoveAccount{Customer: p.Session.Customer, Key: key})
	return err
}

func (s *Server) deleteBankAccount(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if err := s.removeBankAccount(r.Context(), s.apiAsker(r), key); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"removed": key})
}

// YenWithdrawalRequest asks for yen to a registered account: Amount a
// decimal string of yen, the fee on top.
type YenWithdrawalRequest struct {
	RequestID string `json:"request_id"`
	Account   string `json:"account"`
	Amount    string `json:"amount"`
}

// errYenAmount refuses an amount that is not a positive whole number of
// yen.
var errYenAmount = fmt.Errorf("%w: amount must be a positive whole number of yen", errBadJSON)

// yenAmount reads a decimal string of yen.
func yenAmount(s string) (uint64, error) {
	amount, err := strconv.ParseUint(s, 10, 64)
	if err != nil || amount == 0 {
		return 0, errYenAmount
	}
	return amount, nil
}

// withdrawYen asks for a yen withdrawal of the asker's (a step-up) through
// the withdrawal policy: held (queued or awaiting two operators), or
// rejected with the reason and nothing held.
func (s *Server) withdrawYen(ctx context.Context, ask asker, req YenWithdrawalRequest) (withdraw.Withdrawal, error) {
	amount, err := yenAmount(req.Amount)
	if err != nil {
		return withdraw.Withdrawal{}, err
	}
	p, err := ask(true)
	if err != nil {
		return withdraw.Withdrawal{}, err
	}
	v, err := s.submit(ctx, core.YenRequestWithdrawal{Customer: p.Session.Customer, RequestID: req.RequestID, Account: req.Account, Amount: amount})
	if err != nil {
		return withdraw.Withdrawal{}, err
	}
	return v.(withdraw.Withdrawal), nil
}

func (s *Server) yenWithdrawal(w http.ResponseWriter, r *http.Request, body []byte) {
	var req YenWithdrawalRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	wd, err := s.withdrawYen(r.Context(), s.apiAsker(r), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, viewOf(wd))
}

// YenPaymentRequest asks for a card charge, a pay-easy or a
// convenience-store payment number.
type YenPaymentRequest struct {
	Method string `json:"method"` // card, pay-easy, convenience-store
	Amount string `json:"amount"`
}

// requestPayment asks the provider, through the connector, for a payment
// request of the asker's; ref is the provider's reference (the request's
// idempotency key).
func (s *Server) requestPayment(ctx context.Context, ask asker, req YenPaymentRequest, ref string) (yen.Payment, error) {
	amount, err := yenAmount(req.Amount)
	if err != nil {
		return yen.Payment{}, err
	}
	if _, ok := yen.ProviderOwner(controls.Service(req.Method)); !ok {
		return yen.Payment{}, fmt.Errorf("%w: method %q (card, pay-easy, convenience-store)", errBadJSON, req.Method)
	}
	p, err := ask(false)
	if err != nil {
		return yen.Payment{}, err
	}
	if s.cfg.Yen == nil {
		return yen.Payment{}, errNoConnector
	}
	return s.cfg.Yen.RequestPayment(ctx, p.Session.Customer, controls.Service(req.Method), amount, ref)
}

func (s *Server) yenPayment(w http.ResponseWriter, r *http.Request, body []byte) {
	var req YenPaymentRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	pay, err := s.requestPayment(r.Context(), s.apiAsker(r), req, r.Header.Get("Idempotency-Key"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, pay)
}

func (s *Server) yenOverview(w http.ResponseWriter, r *http.Request, _ Principal) {
	out := map[string]any{}
	var err error
	s.core.Read(func(st *core.State) {
		y := st.Yen
		if y.Config == nil {
			err = yen.ErrNotSetUp
			return
		}
		out["config"] = y.Config
		out["held"] = y.Deposits(func(d *yen.Deposit) bool { return d.Status == yen.DepositHeld }, MaxLimit)
		out["batches"] = y.Batches()
		out["instructions"] = y.Instructions()
		out["reconciliations"] = y.Reconciliations(DefaultLimit)
		halts := []string{}
		for _, ch := range controls.Channels {
			if st.Controls.Allowed(0, ch) != nil {
				halts = append(halts, string(ch))
			}
		}
		out["halted_channels"] = halts
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// YenBatchRequest writes a transfer file of the queued yen withdrawals.
type YenBatchRequest struct {
	ID   string `json:"id"`
	Date string `json:"date"` // YYYY-MM-DD, the transfer date
}

func (s *Server) yenBatch(w http.ResponseWriter, r *http.Request, body []byte) {
	var req YenBatchRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	var d zengin.Date
	if _, err := fmt.Sscanf(strings.TrimSpace(req.Date), "%4d-%2d-%2d", &d.Year, &d.Month, &d.Day); err != nil || !d.Valid() {
		s.fail(w, r, fmt.Errorf("%w: date must be YYYY-MM-DD", errBadJSON))
		return
	}
	p, err := s.operator(r)
	if err == nil {
		err = s.writer(p)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if s.cfg.Yen == nil {
		s.fail(w, r, errNoConnector)
		return
	}
	b, err := s.cfg.Yen.WriteBatch(r.Context(), req.ID, d)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, b)
}
