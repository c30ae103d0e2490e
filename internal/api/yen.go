package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

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
	s.handle("POST", "/v1/me/yen/bank-accounts", true, s.idempotent(s.addBankAccount))
	s.handle("DELETE", "/v1/me/yen/bank-accounts/{key}", true, s.removeBankAccount)
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

// YenAccountView is a bank account as the API shows it.
type YenAccountView struct {
	Key        string `json:"key"`
	Bank       string `json:"bank"`
	BankName   string `json:"bank_name,omitempty"`
	Branch     string `json:"branch"`
	BranchName string `json:"branch_name,omitempty"`
	Type       int    `json:"type"`
	Number     string `json:"number"`
	Name       string `json:"name"`
	// BankLabel and BranchLabel name the bank and branch in plain words
	// (e.g. 三菱ＵＦＪ, 渋谷), from the bank master of the yen setup.
	BankLabel   string `json:"bank_label,omitempty"`
	BranchLabel string `json:"branch_label,omitempty"`
}

// accountView shows an account, its bank and branch named from the
// master (m may be nil).
func accountView(m *bankcode.Master, a zengin.Account) YenAccountView {
	v := YenAccountView{Key: a.Key(), Bank: a.Bank, BankName: a.BankName, Branch: a.Branch, BranchName: a.BranchName, Type: a.Type, Number: a.Number, Name: a.Name}
	if m != nil {
		if b, br, _ := m.Lookup(a.Bank, a.Branch); b != nil {
			v.BankLabel = b.Name
			if br != nil {
				v.BranchLabel = br.Name
			}
		}
	}
	return v
}

// YenWithdrawalView is a yen withdrawal with where it goes and its fee.
type YenWithdrawalView struct {
	WithdrawalView
	To    string `json:"to"`
	Fee   string `json:"fee"`
	Batch string `json:"batch,omitempty"`
}

func (s *Server) myYen(w http.ResponseWriter, r *http.Request) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c := uint64(p.Session.Customer)
	out := map[string]any{}
	s.core.Read(func(st *core.State) {
		y := st.Yen
		if y.Config == nil {
			err = yen.ErrNotSetUp
			return
		}
		if n, ok := y.VirtualOf(c); ok {
			va := accountView(y.Master, zengin.Account{Bank: y.Config.Trust.Bank, BankName: y.Config.Trust.BankName, Branch: y.Config.VirtualBranch})
			out["virtual_account"] = map[string]any{"bank": va.Bank, "bank_name": va.BankName, "bank_label": va.BankLabel, "branch": va.Branch, "branch_label": va.BranchLabel,
				"type": zengin.Ordinary, "number": n, "name": y.Config.Trust.Name, "send_from": "an account in your own name: a transfer from anyone else is held for review"}
		}
		accts := []YenAccountView{}
		for _, a := range y.BankAccounts(c) {
			accts = append(accts, accountView(y.Master, a.Account))
		}
		out["bank_accounts"] = accts
		out["deposits"] = y.Deposits(func(d *yen.Deposit) bool { return d.Customer == c }, MaxLimit)
		out["payments"] = y.Payments(c)
		wds := []YenWithdrawalView{}
		for _, po := range y.Payouts(func(po *yen.Payout) bool { return po.Customer == c }, MaxLimit) {
			wd, _ := st.Withdraw.Get(po.Withdrawal)
			wds = append(wds, YenWithdrawalView{WithdrawalView: viewOf(wd), To: po.To.Key(), Fee: strconv.FormatUint(po.Fee, 10), Batch: po.Batch})
		}
		out["withdrawals"] = wds
		out["fee"] = strconv.FormatUint(y.Config.Fee, 10)
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) myVirtualAccount(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.submit(r.Context(), core.YenAssignVirtual{Customer: p.Session.Customer})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"number": v})
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

func (s *Server) addBankAccount(w http.ResponseWriter, r *http.Request, body []byte) {
	var req BankAccountRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	a := zengin.Account{Bank: req.Bank, BankName: req.BankName, Branch: req.Branch, BranchName: req.BranchName, Type: req.Type, Number: req.Number, Name: req.Name}
	if err := a.CheckCodes(); err != nil {
		s.fail(w, r, fmt.Errorf("%w: %w", yen.ErrBankAccount, err))
		return
	}
	p, ok := s.moneyMove(w, r)
	if !ok {
		return
	}
	if _, err := s.submit(r.Context(), core.YenRegisterAccount{Customer: p.Session.Customer, Account: a}); err != nil {
		s.fail(w, r, err)
		return
	}
	var v YenAccountView
	s.core.Read(func(st *core.State) {
		// As registered: the holder's name normalized, the bank's and
		// branch's names the master's.
		if got, ok := st.Yen.BankAccount(uint64(p.Session.Customer), a.Key()); ok {
			v = accountView(st.Yen.Master, got.Account)
		}
	})
	writeJSON(w, http.StatusCreated, map[string]any{"account": v, "usable_after": "the cool-down (24 hours by default)"})
}

func (s *Server) removeBankAccount(w http.ResponseWriter, r *http.Request) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	key := r.PathValue("key")
	if _, err := s.submit(r.Context(), core.YenRemoveAccount{Customer: p.Session.Customer, Key: key}); err != nil {
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

func (s *Server) yenWithdrawal(w http.ResponseWriter, r *http.Request, body []byte) {
	var req YenWithdrawalRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	amount, err := strconv.ParseUint(req.Amount, 10, 64)
	if err != nil || amount == 0 {
		s.fail(w, r, fmt.Errorf("%w: amount must be a positive whole number of yen", errBadJSON))
		return
	}
	p, ok := s.moneyMove(w, r)
	if !ok {
		return
	}
	v, err := s.submit(r.Context(), core.YenRequestWithdrawal{Customer: p.Session.Customer, RequestID: req.RequestID, Account: req.Account, Amount: amount})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, viewOf(v.(withdraw.Withdrawal)))
}

// YenPaymentRequest asks for a card charge, a pay-easy or a
// convenience-store payment number.
type YenPaymentRequest struct {
	Method string `json:"method"` // card, pay-easy, convenience-store
	Amount string `json:"amount"`
}

func (s *Server) yenPayment(w http.ResponseWriter, r *http.Request, body []byte) {
	var req YenPaymentRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	amount, err := strconv.ParseUint(req.Amount, 10, 64)
	if err != nil || amount == 0 {
		s.fail(w, r, fmt.Errorf("%w: amount must be a positive whole number of yen", errBadJSON))
		return
	}
	if _, ok := yen.ProviderOwner(controls.Service(req.Method)); !ok {
		s.fail(w, r, fmt.Errorf("%w: method %q (card, pay-easy, convenience-store)", errBadJSON, req.Method))
		return
	}
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if s.cfg.Yen == nil {
		s.fail(w, r, errNoConnector)
		return
	}
	pay, err := s.cfg.Yen.RequestPayment(r.Context(), p.Session.Customer, controls.Service(req.Method), amount, r.Header.Get("Idempotency-Key"))
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
