package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	_ "embed"

	"kinko/internal/auth"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ethwallet"
	"kinko/internal/ethwallet/book"
	"kinko/internal/journal"
	"kinko/internal/ledger"
	"kinko/internal/passkey"
	"kinko/internal/people"
	"kinko/internal/reserves"
	"kinko/internal/wallet"
)

//go:embed openapi.json
var openapiJSON []byte

// Paging bounds.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

func (s *Server) register() {
	s.handle("GET", "/healthz", true, s.health)
	s.handle("GET", "/v1/openapi.json", true, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openapiJSON)
	})
	s.handle("GET", "/v1/status", true, s.status)
	s.handle("GET", "/v1/journal/head", true, s.head)
	s.handle("GET", "/v1/state/hash", true, s.operatorOnly(s.stateHash))
	s.handle("POST", "/v1/customers", true, s.idempotent(s.signUp))
	s.handle("POST", "/v1/customers/login", true, s.login(people.SessionCustomer))
	s.handle("POST", "/v1/session/logout", true, s.logout)
	s.handle("GET", "/v1/me", true, s.me)
	s.handle("GET", "/v1/me/balances", true, s.myBalances)
	s.handle("GET", "/v1/me/history", true, s.myHistory)
	s.handle("POST", "/v1/me/deposit-addresses", true, s.idempotent(s.newDepositAddress))
	s.handle("GET", "/v1/me/deposits", true, s.myDeposits)
	s.registerWithdrawals()
	s.registerMe()
	s.handle("GET", "/v1/customers", true, s.operatorOnly(s.listCustomers))
	s.handle("POST", "/v1/customers/{id}/kyc", true, s.idempotent(s.setKYC))
	s.handle("GET", "/v1/operators", true, s.operatorOnly(s.listOperators))
	s.handle("GET", "/v1/requests", true, s.operatorOnly(s.listRequests))
	s.handle("POST", "/v1/requests", true, s.idempotent(s.openRequest))
	s.handle("POST", "/v1/requests/{id}/approve", true, s.idempotent(s.decide(true)))
	s.handle("POST", "/v1/requests/{id}/reject", true, s.idempotent(s.decide(false)))
	s.handle("GET", "/v1/assets", true, s.listAssets)
	s.handle("POST", "/v1/assets", true, s.idempotent(s.proposeAsset))
	s.handle("POST", "/v1/assets/{code}/review", true, s.idempotent(s.reviewAsset))
	s.handle("GET", "/v1/journal", true, s.operatorOnly(s.listJournal))
	s.handle("GET", "/v1/journal/verify", true, s.operatorOnly(s.verifyJournal))
	s.handle("GET", "/v1/reserves", true, s.operatorOnly(s.reservesReport))
	s.handle("GET", "/v1/journal/raw", true, s.journalRaw)
	s.handle("GET", "/v1/journal/proof", true, s.journalProof)
	s.handle("GET", "/v1/journal/consistency", true, s.journalConsistency)
	s.handle("GET", "/v1/signer/view", true, s.signerView)
	s.handle("POST", "/v1/signer/commands", true, s.signerCommand)
	s.handle("POST", "/v1/watch/commands", true, s.watchCommand)
	if s.cfg.Metrics != nil {
		s.handle("GET", "/metrics", false, s.cfg.Metrics.Handler().ServeHTTP)
	}
	s.registerControls()
	s.registerIncidents()
	s.registerTrading()
	s.registerReserves()
	s.registerConsole()
	s.registerApp()
	s.registerOperators()
	s.registerCompensation()
	s.registerCeremonies()
	s.registerYen()
	s.registerDeploy()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) stateHash(w http.ResponseWriter, r *http.Request, _ Principal) {
	seq, hash := s.core.StateHash()
	var accounts, transfers int
	s.core.Read(func(st *core.State) { accounts, transfers = st.Ledger.AccountCount(), st.Ledger.TransferCount() })
	writeJSON(w, http.StatusOK, map[string]any{"seq": seq, "state_hash": hash.String(), "accounts": accounts, "transfers": transfers})
}

// StatusView is the public status: what is halted and since when.
type StatusView struct {
	Halts []HaltView `json:"halts"`
	// Resumption is the staged resumption plan being followed, if any:
	// which services come back in which order, and how far it has come.
	Resumption *ResumptionView `json:"resumption,omitempty"`
}

// ResumptionView is the public side of a resumption plan.
type ResumptionView struct {
	Steps []string `json:"steps"`
	Done  int      `json:"done"`
}

// HaltView is one halt as the public sees it.
type HaltView struct {
	Switch string    `json:"switch"`
	Asset  string    `json:"asset,omitempty"`
	Since  time.Time `json:"since"`
	Reason string    `json:"reason"`
}

func (s *Server) statusView() StatusView {
	var v StatusView
	s.core.Read(func(st *core.State) {
		for _, h := range st.Controls.Halted() {
			hv := HaltView{Switch: string(h.Switch.Service), Since: time.Unix(0, h.Since).UTC(), Reason: h.Reason}
			if a, ok := st.Ledger.Asset(h.Switch.Asset); ok {
				hv.Asset = a.Code
			}
			v.Halts = append(v.Halts, hv)
		}
		if p := st.Controls.Following(); p != nil {
			v.Resumption = &ResumptionView{Done: p.Done}
			for _, sw := range p.Steps {
				v.Resumption.Steps = append(v.Resumption.Steps, switchText(st, sw))
			}
		}
	})
	if v.Halts == nil {
		v.Halts = []HaltView{}
	}
	return v
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.statusView())
}

// operatorOnly wraps a read for operators (any role).
func (s *Server) operatorOnly(h func(http.ResponseWriter, *http.Request, Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.principal(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if p.Session.Kind != people.SessionOperator {
			s.fail(w, r, errForbidden)
			return
		}
		h(w, r, p)
	}
}

// operator returns the operator a request acts as.
func (s *Server) operator(r *http.Request) (Principal, error) {
	p, err := s.principal(r)
	if err != nil {
		return p, err
	}
	if p.Session.Kind != people.SessionOperator {
		return p, errForbidden
	}
	return p, nil
}

// customer returns the customer a request acts as.
func (s *Server) customer(r *http.Request) (Principal, error) {
	p, err := s.principal(r)
	if err != nil {
		return p, err
	}
	if p.Session.Kind != people.SessionCustomer {
		return p, errForbidden
	}
	return p, nil
}

// SignUpRequest is the body of POST /v1/customers.
type SignUpRequest struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Password string `json:"password"`
}

// SignUpResponse carries the TOTP seed, shown this once.
type SignUpResponse struct {
	Customer   ledger.OwnerID `json:"customer"`
	TOTPSecret string         `json:"totp_secret"`
	TOTPURI    string         `json:"totp_uri"`
}

// newCustomerID draws a customer id: random, below the house range, so
// ids say nothing about how many customers there are.
func newCustomerID() (ledger.OwnerID, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, err
	}
	return ledger.OwnerID(binary.BigEndian.Uint64(b[:])%(1<<52)) + 1_000_000, nil
}

func (s *Server) signUp(w http.ResponseWriter, r *http.Request, body []byte) {
	var req SignUpRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.now()
	if ok, wait := s.lim.signUpAddr.take(clientAddr(r), now); !ok {
		s.fail(w, r, &errTooMany{What: "sign-ups from this address", Wait: wait})
		return
	}
	if ok, wait := s.lim.signUpAccount.take(people.NormalizeEmail(req.Email), now); !ok {
		s.fail(w, r, &errTooMany{What: "sign-ups of this address", Wait: wait})
		return
	}
	res, err := s.SignUp(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, res)
}

// SignUp registers a customer: the password hashed, the TOTP seed sealed.
func (s *Server) SignUp(ctx context.Context, req SignUpRequest) (SignUpResponse, error) {
	id, err := newCustomerID()
	if err != nil {
		return SignUpResponse{}, err
	}
	return s.SignUpAs(ctx, id, req)
}

// hash hashes a password within the hash gate.
func (s *Server) hash(ctx context.Context, password string) (string, error) {
	var phc string
	var err error
	if gerr := s.gate.do(ctx, func() { phc, err = auth.HashPassword(password, s.cfg.Argon2) }); gerr != nil {
		return "", gerr
	}
	return phc, err
}

// check checks a password within the hash gate.
func (s *Server) check(ctx context.Context, phc, password string) (bool, error) {
	var ok bool
	var err error
	if gerr := s.gate.do(ctx, func() { ok, err = auth.CheckPassword(phc, password) }); gerr != nil {
		return false, gerr
	}
	return ok, err
}

// newTOTP makes a customer's TOTP seed and seals it.
func (s *Server) newTOTP(id ledger.OwnerID, email string) (secret, uri, sealed string, err error) {
	if secret, uri, err = auth.NewTOTP("kinko", people.NormalizeEmail(email)); err != nil {
		return "", "", "", err
	}
	sealed, err = s.sealer.Seal(secret, sealAD(people.SessionCustomer, id, ""))
	return secret, uri, sealed, err
}

// SignUpAs registers a customer with a given id (demos and migrations).
// The journal gets the commitment to the credentials; the credentials go
// to the store on this host (creds.go).
func (s *Server) SignUpAs(ctx context.Context, id ledger.OwnerID, req SignUpRequest) (SignUpResponse, error) {
	if !people.ValidEmail(req.Email) || !people.ValidText(req.Name) {
		return SignUpResponse{}, fmt.Errorf("%w: email or name", people.ErrInvalid)
	}
	if len(req.Password) < auth.MinPassword || len(req.Password) > auth.MaxPassword {
		return SignUpResponse{}, fmt.Errorf("%w: %v", people.ErrInvalid, auth.ErrPasswordPolicy)
	}
	var taken bool
	s.core.Read(func(st *core.State) { _, taken = st.People.CustomerByEmail(req.Email) })
	if taken {
		return SignUpResponse{}, people.ErrEmailTaken
	}
	hash, err := s.hash(ctx, req.Password)
	if err != nil {
		return SignUpResponse{}, err
	}
	secret, uri, sealed, err := s.newTOTP(id, req.Email)
	if err != nil {
		return SignUpResponse{}, err
	}
	commit, err := s.putCreds(id, credRecord{PasswordHash: hash, TOTPSealed: sealed})
	if err != nil {
		return SignUpResponse{}, err
	}
	c := people.Customer{ID: id, Email: req.Email, Name: req.Name, Creds: people.Credentials{Commit: commit}}
	if _, err := s.submit(ctx, core.SignUp{Customer: c}); err != nil {
		return SignUpResponse{}, err
	}
	return SignUpResponse{Customer: id, TOTPSecret: secret, TOTPURI: uri}, nil
}

func sealAD(kind people.SessionKind, id ledger.OwnerID, name string) string {
	if kind == people.SessionCustomer {
		return fmt.Sprintf("customer:%d", id)
	}
	return "operator:" + name
}

// LoginRequest is the body of the login routes. Email for customers, Name
// for operators. Device is an id the client keeps for the device (any
// string up to 128 bytes; the answer gives one to keep when none is
// sent): a login from a device not seen before is told to the customer.
type LoginRequest struct {
	Email    string `json:"email,omitempty"`
	Name     string `json:"name,omitempty"`
	Password string `json:"password"`
	TOTP     string `json:"totp"`
	Device   string `json:"device,omitempty"`
}

// LoginResponse carries the session token, and the device id to send
// with the next logins.
type LoginResponse struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
	Device  string    `json:"device,omitempty"`
}

var errLoginFailed = errors.New("wrong name, password or code")

func (s *Server) login(kind people.SessionKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, err := s.signIn(r, kind, func() (LoginRequest, error) {
			var req LoginRequest
			body, err := readBody(w, r)
			if err == nil {
				err = decodeStrict(body, &req)
			}
			return req, err
		})
		if err == nil {
			writeJSON(w, http.StatusOK, res)
			return
		}
		p, wait := s.loginProblem(r, err)
		writeProblemWait(w, p, wait)
	}
}

// signIn is a customer's sign-in, for the API's login route and the
// customer app's form alike: the address's bucket of attempts, then the
// request (read, the route's own), the account's bucket, then Login.
func (s *Server) signIn(r *http.Request, kind people.SessionKind, read func() (LoginRequest, error)) (LoginResponse, error) {
	now := s.now()
	if ok, wait := s.lim.loginAddr.take(clientAddr(r), now); !ok {
		return LoginResponse{}, &errTooMany{What: "login attempts from this address", Wait: wait}
	}
	req, err := read()
	if err != nil {
		return LoginResponse{}, err
	}
	if ok, wait := s.lim.loginAccount.take(people.NormalizeEmail(req.Email), now); !ok {
		return LoginResponse{}, &errTooMany{What: "login attempts for this account", Wait: wait}
	}
	return s.Login(r.Context(), kind, req)
}

// loginProblem is the answer to a failed sign-in: the same words whichever
// part was wrong, a lock-out with its wait, else as fail answers.
func (s *Server) loginProblem(r *http.Request, err error) (Problem, time.Duration) {
	if errors.Is(err, errLoginFailed) {
		return Problem{Status: http.StatusUnauthorized, Title: "login failed", Detail: err.Error()}, 0
	}
	if errors.Is(err, people.ErrLocked) {
		return Problem{Status: http.StatusTooManyRequests, Title: "locked", Detail: "too many failed attempts: this account is locked for a while"}, time.Duration(people.LockFor)
	}
	return s.problem(r, err)
}

// lockPeriod is people.LockPeriod as a duration.
func lockPeriod(n int) time.Duration { return time.Duration(people.LockPeriod(n)) }

// Login checks a customer's password and TOTP code and opens a session.
// Failures are journaled (they count towards the lock-out); the answer
// never says which part was wrong, and a name that is nobody's gets the
// same answers, after the same work, as a customer's: a hash of the
// configured cost is checked, and its failures lock it out in memory as
// the journal locks a customer (phantoms). Operators sign in with their
// credential instead (BeginLogin, FinishLogin).
func (s *Server) Login(ctx context.Context, kind people.SessionKind, req LoginRequest) (LoginResponse, error) {
	if kind != people.SessionCustomer {
		return LoginResponse{}, errLoginFailed
	}
	if len(req.Device) > 128 {
		return LoginResponse{}, fmt.Errorf("%w: device id over 128 bytes", errBadJSON)
	}
	var cust people.Customer
	var found bool
	s.core.Read(func(st *core.State) { cust, found = st.People.CustomerByEmail(req.Email) })
	now := s.now()
	name := people.NormalizeEmail(req.Email)
	if !found {
		locked := s.ghosts.locked(name, now)
		if _, err := s.check(ctx, s.dummy, req.Password); err != nil {
			return LoginResponse{}, err
		}
		if locked {
			return LoginResponse{}, people.ErrLocked
		}
		s.ghosts.fail(name, now, people.MaxFailed, lockPeriod)
		// Journaled as a customer's failure is (apply refuses it: nobody
		// to count against), so that it takes the same journal write.
		if _, err := s.submit(ctx, core.LoginFailed{Who: kind, Reason: "unknown name"}); err != nil && !errors.Is(err, people.ErrCustomerUnknown) {
			return LoginResponse{}, err
		}
		return LoginResponse{}, errLoginFailed
	}
	creds, err := s.credsOf(cust)
	if err != nil {
		return LoginResponse{}, err
	}
	if cust.Creds.LockedUntil > now.UnixNano() {
		if _, err := s.check(ctx, s.dummy, req.Password); err != nil {
			return LoginResponse{}, err
		}
		return LoginResponse{}, people.ErrLocked
	}
	ok, err := s.check(ctx, creds.PasswordHash, req.Password)
	if err != nil {
		return LoginResponse{}, err
	}
	id := cust.ID
	var step uint64
	if ok {
		secret, err := s.sealer.Open(creds.TOTPSealed, sealAD(kind, id, ""))
		if err != nil {
			return LoginResponse{}, err
		}
		step, ok = auth.CheckTOTP(secret, req.TOTP, now)
	}
	if !ok {
		if _, err := s.submit(ctx, core.LoginFailed{Who: kind, Customer: id, Reason: "wrong password or code"}); err != nil {
			return LoginResponse{}, err
		}
		return LoginResponse{}, errLoginFailed
	}
	tok, h, err := auth.NewToken()
	if err != nil {
		return LoginResponse{}, err
	}
	device := req.Device
	if device == "" {
		if device, _, err = auth.NewToken(); err != nil {
			return LoginResponse{}, err
		}
	}
	exp := now.Add(s.cfg.SessionTTL)
	sess := people.Session{TokenHash: h, Kind: kind, Customer: id, Expires: exp.UnixNano(), Device: people.DeviceHash(device)}
	if _, err := s.submit(ctx, core.Login{Session: sess, Step: step}); err != nil {
		return LoginResponse{}, err
	}
	return LoginResponse{Token: tok, Expires: exp.UTC(), Device: device}, nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	p, err := s.principal(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.submit(r.Context(), core.Logout{TokenHash: p.Token}); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// errCodeWrong is a step-up code that does not match.
var errCodeWrong = fmt.Errorf("%w: a current TOTP code is required in X-TOTP", errForbidden)

// StepUp checks a customer's fresh TOTP code (header X-TOTP) for a
// money-moving request and journals its step, so the code works once.
// Routes that move money call it before they act. A wrong code is
// journaled (StepUpFailed): MaxFailed in a row end the session and lock
// the customer's step-ups for a growing period. Before any code is
// checked, token buckets per source, session and customer bound how fast
// codes may be tried. Operators sign each sensitive action with their
// credential instead.
func (s *Server) StepUp(r *http.Request, p Principal) error {
	return s.stepUp(r, p, r.Header.Get("X-TOTP"))
}

// stepUp is StepUp with the code given: the X-TOTP header of the API, the
// code field of the customer app's forms.
func (s *Server) stepUp(r *http.Request, p Principal, code string) error {
	if p.Session.Kind != people.SessionCustomer {
		return fmt.Errorf("%w: operators sign with their credential", errForbidden)
	}
	now := s.now()
	for _, b := range []struct {
		l    *limiter
		key  string
		what string
	}{
		{s.lim.stepAddr, clientAddr(r), "codes from this address"},
		{s.lim.stepSession, fmt.Sprintf("%x", p.Token), "codes in this session"},
		{s.lim.stepCustomer, strconv.FormatUint(uint64(p.Session.Customer), 10), "codes for this account"},
	} {
		if ok, wait := b.l.take(b.key, now); !ok {
			return &errTooMany{What: b.what, Wait: wait}
		}
	}
	var cust people.Customer
	s.core.Read(func(st *core.State) { cust, _ = st.People.Customer(p.Session.Customer) })
	if until := cust.Creds.StepLockedUntil; until > now.UnixNano() {
		return &errTooMany{What: "wrong codes: step-ups are locked", Wait: time.Duration(until - now.UnixNano())}
	}
	creds, err := s.credsOf(cust)
	if err != nil {
		return err
	}
	secret, err := s.sealer.Open(creds.TOTPSealed, sealAD(p.Session.Kind, p.Session.Customer, p.Session.Operator))
	if err != nil {
		return err
	}
	step, ok := auth.CheckTOTP(secret, code, now)
	if !ok {
		if _, err := s.submit(r.Context(), core.StepUpFailed{TokenHash: p.Token}); err != nil {
			return err
		}
		return errCodeWrong
	}
	_, err = s.submit(r.Context(), core.StepUp{TokenHash: p.Token, Step: step})
	return err
}

// CustomerView is a customer as the API shows it: no credentials.
type CustomerView struct {
	ID      ledger.OwnerID `json:"id"`
	Email   string         `json:"email"`
	Name    string         `json:"name"`
	KYC     people.KYC     `json:"kyc"`
	Created time.Time      `json:"created"`
	Locked  bool           `json:"locked"`
	// Frozen: the customer's withdrawals are frozen.
	Frozen bool `json:"frozen"`
}

func (s *Server) customerView(c people.Customer) CustomerView {
	return CustomerView{ID: c.ID, Email: c.Email, Name: c.Name, KYC: c.KYC, Created: time.Unix(0, c.Created).UTC(), Locked: c.Creds.LockedUntil > s.now().UnixNano(),
		Frozen: c.Frozen != nil}
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	p, err := s.principal(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if p.Session.Kind == people.SessionOperator {
		var o people.Operator
		s.core.Read(func(st *core.State) { o, _ = st.People.Operator(p.Session.Operator) })
		writeJSON(w, http.StatusOK, map[string]any{"operator": o.Name, "roles": o.Roles})
		return
	}
	var c people.Customer
	s.core.Read(func(st *core.State) { c, _ = st.People.Customer(p.Session.Customer) })
	writeJSON(w, http.StatusOK, s.customerView(c))
}

// BalanceView is one balance. Withdrawable is what may leave now: on the
// available balance, the available amount less the deposits not yet final
// (nothing at all while the customer owes from a reversed deposit, or
// traded away deposits not yet final), with the reason when it is less;
// zero on the held and receivable (owed) balances.
type BalanceView struct {
	Asset              string        `json:"asset"`
	Kind               string        `json:"kind"`
	Balance            ledger.Signed `json:"balance"` // "-" before a balance below zero
	Available          ledger.Amount `json:"available"`
	Withdrawable       ledger.Amount `json:"withdrawable"`
	WithdrawableReason string        `json:"withdrawable_reason,omitempty"`
	Decimal            string        `json:"decimal"`
}

func (s *Server) balances(owner ledger.OwnerID) []BalanceView {
	out := []BalanceView{}
	s.core.Read(func(st *core.State) {
		for _, a := range st.Ledger.Assets() {
			for _, k := range []ledger.Kind{ledger.KindAvailable, ledger.KindHeld, ledger.KindReceivable} {
				acc, ok := st.Ledger.Account(ledger.AccountKey{Owner: owner, Asset: a.ID, Kind: k})
				if !ok {
					continue
				}
				v := BalanceView{Asset: a.Code, Kind: k.String(), Balance: acc.SignedBalance(), Available: acc.Available(), Decimal: acc.SignedBalance().FormatDecimal(a.Decimals)}
				if k == ledger.KindAvailable {
					w, why := st.Withdrawable(owner, a.ID)
					v.Withdrawable, v.WithdrawableReason = w.Ledger(), why
				}
				out = append(out, v)
			}
		}
	})
	return out
}

func (s *Server) myBalances(w http.ResponseWriter, r *http.Request) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"balances": s.balances(p.Session.Customer)})
}

// paging reads limit and cursor.
func paging(r *http.Request) (limit, cursor int, err error) {
	limit = DefaultLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > MaxLimit {
			return 0, 0, fmt.Errorf("%w: limit must be 1-%d", errBadJSON, MaxLimit)
		}
	}
	if v := r.URL.Query().Get("cursor"); v != "" {
		if cursor, err = strconv.Atoi(v); err != nil || cursor < 0 {
			return 0, 0, fmt.Errorf("%w: bad cursor", errBadJSON)
		}
	}
	return limit, cursor, nil
}

// Page is a page of a list; Next is the cursor of the next page, empty at
// the end.
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// HistoryItem is one ledger transfer on a customer's accounts.
type HistoryItem struct {
	Time   time.Time     `json:"time"`
	Asset  string        `json:"asset"`
	Amount ledger.Amount `json:"amount"`
	Way    string        `json:"way"` // "in" or "out"
	Code   uint16        `json:"code"`
	State  string        `json:"state"`
}

// maxHistoryScan bounds the transfers one history page reads.
const maxHistoryScan = 1 << 20

func (s *Server) myHistory(w http.ResponseWriter, r *http.Request) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	limit, cursor, err := paging(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page := Page[HistoryItem]{Items: []HistoryItem{}}
	me := p.Session.Customer
	s.core.Read(func(st *core.State) {
		scanned := 0
		st.Ledger.Transfers(cursor, func(i int, t *ledger.TransferRecord) bool {
			if scanned++; scanned > maxHistoryScan {
				page.Next = strconv.Itoa(i)
				return false
			}
			in := t.Credit.Owner == me && t.Credit.Kind.IsCustomer()
			out := t.Debit.Owner == me && t.Debit.Kind.IsCustomer()
			if in == out {
				return true // not ours, or between our own accounts
			}
			if len(page.Items) == limit {
				page.Next = strconv.Itoa(i)
				return false
			}
			a, _ := st.Ledger.Asset(t.Debit.Asset)
			way := "out"
			if in {
				way = "in"
			}
			page.Items = append(page.Items, HistoryItem{Time: time.Unix(0, t.Time).UTC(), Asset: a.Code, Amount: t.Amount, Way: way, Code: t.Code, State: t.State.String()})
			return true
		})
	})
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) listCustomers(w http.ResponseWriter, r *http.Request, _ Principal) {
	limit, cursor, err := paging(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page := Page[CustomerView]{Items: []CustomerView{}}
	s.core.Read(func(st *core.State) {
		for _, c := range st.People.Customers(cursor, limit) {
			page.Items = append(page.Items, s.customerView(c))
		}
		if cursor+limit < st.People.CustomerCount() {
			page.Next = strconv.Itoa(cursor + limit)
		}
	})
	writeJSON(w, http.StatusOK, page)
}

// KYCRequest is the body of POST /v1/customers/{id}/kyc.
type KYCRequest struct {
	KYC    people.KYC `json:"kyc"`
	Reason string     `json:"reason"`
}

func (s *Server) setKYC(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.operator(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		s.fail(w, r, fmt.Errorf("%w: customer id", errBadJSON))
		return
	}
	var req KYCRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.submit(r.Context(), core.SetKYC{Customer: ledger.OwnerID(id), KYC: req.KYC, Actor: p.Session.Operator, Reason: req.Reason}); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"customer": id, "kyc": req.KYC})
}

// OperatorView is an operator as listed: their credentials' public
// side, active and pending, with the fingerprints admins compare.
type OperatorView struct {
	Name      string        `json:"name"`
	Roles     []people.Role `json:"roles"`
	Keys      []KeyView     `json:"keys"`
	Pending   []KeyView     `json:"pending"`
	EnrolOpen bool          `json:"enrol_open"`
	Founder   bool          `json:"founder,omitempty"`
}

// KeyView is a credential as listed.
type KeyView struct {
	Credential  string    `json:"credential"` // base64url id
	Label       string    `json:"label"`
	Fingerprint string    `json:"fingerprint"`
	Counter     uint32    `json:"counter"`
	Added       time.Time `json:"added"`
}

func operatorView(o people.Operator) OperatorView {
	v := OperatorView{Name: o.Name, Roles: o.Roles, Keys: []KeyView{}, Pending: []KeyView{}, EnrolOpen: o.Enrol != nil, Founder: o.Founder}
	kv := func(k people.Key) KeyView {
		return KeyView{Credential: base64.RawURLEncoding.EncodeToString(k.ID), Label: k.Label, Fingerprint: people.Fingerprint(k.PublicKey), Counter: k.Counter, Added: time.Unix(0, k.Added).UTC()}
	}
	for _, k := range o.Keys {
		v.Keys = append(v.Keys, kv(k))
	}
	for _, k := range o.Pending {
		v.Pending = append(v.Pending, kv(k))
	}
	return v
}

func (s *Server) listOperators(w http.ResponseWriter, r *http.Request, _ Principal) {
	out := []OperatorView{}
	s.core.Read(func(st *core.State) {
		for _, o := range st.People.Operators() {
			out = append(out, operatorView(o))
		}
	})
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

// RequestView is a two-person request as the API shows it: what it does in
// words (Summary), its payload in the API's form (a switch as
// "BTC:withdraw", a market by its code, a price as a decimal string; see
// requestPayloadOut), times in RFC 3339.
type RequestView struct {
	ID           string              `json:"id"`
	Kind         people.RequestKind  `json:"kind"`
	Summary      string              `json:"summary"`
	Payload      json.RawMessage     `json:"payload"`
	Requester    string              `json:"requester"`
	Reason       string              `json:"reason"`
	RequiredRole people.Role         `json:"required_role"`
	State        people.RequestState `json:"state"`
	Created      time.Time           `json:"created"`
	Expires      time.Time           `json:"expires"`
	Decider      string              `json:"decider,omitempty"`
	Decision     string              `json:"decision,omitempty"`
	Decided      *time.Time          `json:"decided,omitempty"`
	// OpenedSeq and DecidedSeq are the journal entries that opened and
	// decided it.
	OpenedSeq  uint64 `json:"opened_seq,omitempty"`
	DecidedSeq uint64 `json:"decided_seq,omitempty"`
}

func requestView(st *core.State, q people.Request) RequestView {
	v := RequestView{ID: q.ID, Kind: q.Kind, Summary: describeRequest(st, q), Payload: requestPayloadOut(st, q.Kind, q.Payload), Requester: q.Requester,
		Reason: q.Reason, RequiredRole: q.RequiredRole, State: q.State, Created: time.Unix(0, q.Created).UTC(), Expires: time.Unix(0, q.Expires).UTC(),
		Decider: q.Decider, Decision: q.Decision, OpenedSeq: q.OpenedSeq, DecidedSeq: q.DecidedSeq}
	if q.Decided != 0 {
		d := time.Unix(0, q.Decided).UTC()
		v.Decided = &d
	}
	return v
}

func (s *Server) listRequests(w http.ResponseWriter, r *http.Request, _ Principal) {
	out := []RequestView{}
	s.core.Read(func(st *core.State) {
		for _, q := range st.People.Requests() {
			out = append(out, requestView(st, q))
		}
	})
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

// OpenRequestRequest is the body of POST /v1/requests.
type OpenRequestRequest struct {
	ID           string             `json:"id,omitempty"`
	Kind         people.RequestKind `json:"kind"`
	Payload      json.RawMessage    `json:"payload"`
	Reason       string             `json:"reason"`
	RequiredRole people.Role        `json:"required_role"`
	TTLSeconds   int64              `json:"ttl_seconds,omitempty"`
	// Expires (RFC 3339, to the nanosecond) fixes the expiry: sent back,
	// with ID, from the 428 answer together with the assertion.
	Expires   *Time           `json:"expires,omitempty"`
	Assertion json.RawMessage `json:"assertion,omitempty"`
}

// DefaultRequestTTL is how long a request waits for approval unless told.
const DefaultRequestTTL = 24 * time.Hour

func (s *Server) openRequest(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.operator(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req OpenRequestRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	a, err := ParseAssertion(req.Assertion)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var payload json.RawMessage
	s.core.Read(func(st *core.State) { payload, err = requestPayloadIn(st, req.Kind, nonEmpty(req.Payload)) })
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req.Payload = payload
	cmd, err := s.OpenRequestCommand(p.Session.Operator, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, ok := s.signed(w, r, cmd, a, cmd.Request.ID, cmd.Request.Expires); ok {
		writeJSON(w, http.StatusCreated, map[string]string{"id": cmd.Request.ID})
	}
}

// nonEmpty is an empty payload as an empty object.
func nonEmpty(p json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(p)) == 0 {
		return json.RawMessage("{}")
	}
	return p
}

// OpenRequestCommand builds the command that files a request under the
// two-person rule for actor: an id and an expiry are drawn unless given,
// so that the same body sent again with the assertion is the same command.
// The payload is the journal's encoding (the route turns the API's form
// into it first: requestPayloadIn).
func (s *Server) OpenRequestCommand(actor string, req OpenRequestRequest) (core.OpenRequest, error) {
	if req.ID == "" {
		req.ID = newRequestID()
	}
	var expires int64
	if req.Expires != nil {
		expires = req.Expires.UnixNano()
	} else {
		ttl := DefaultRequestTTL
		if req.TTLSeconds > 0 {
			ttl = time.Duration(req.TTLSeconds) * time.Second
		}
		expires = s.now().Add(ttl).UnixNano()
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, nonEmpty(req.Payload)); err != nil {
		return core.OpenRequest{}, fmt.Errorf("%w: payload", errBadJSON)
	}
	return core.OpenRequest{Request: people.Request{ID: req.ID, Kind: req.Kind, Payload: json.RawMessage(compact.String()), Requester: actor, Reason: req.Reason,
		RequiredRole: req.RequiredRole, Expires: expires}}, nil
}

// OpenRequest files a signed request for actor: the command built from
// req with its assertion.
func (s *Server) OpenRequest(ctx context.Context, actor string, req OpenRequestRequest, a *passkey.Assertion) (string, error) {
	cmd, err := s.OpenRequestCommand(actor, req)
	if err != nil {
		return "", err
	}
	cmd.Assertion = a
	if _, err := s.submit(ctx, cmd); err != nil {
		return "", err
	}
	return cmd.Request.ID, nil
}

// DecideRequest is the body of approve and reject.
type DecideRequest struct {
	Reason    string          `json:"reason"`
	Assertion json.RawMessage `json:"assertion,omitempty"`
}

func (s *Server) decide(approve bool) func(http.ResponseWriter, *http.Request, []byte) {
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		p, err := s.operator(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		var req DecideRequest
		if err := decodeStrict(body, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		a, err := ParseAssertion(req.Assertion)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		cmd := core.DecideRequest{ID: r.PathValue("id"), Decider: p.Session.Operator, Reason: req.Reason, Approve: approve}
		if v, ok := s.signed(w, r, cmd, a, "", 0); ok {
			writeJSON(w, http.StatusOK, v)
		}
	}
}

// AssetView is an asset and its listing state.
type AssetView struct {
	ID       ledger.AssetID `json:"id"`
	Code     string         `json:"code"`
	Decimals uint8          `json:"decimals"`
	Class    string         `json:"class"`
	Enabled  bool           `json:"enabled"`
	// Token is a listed ERC-20 token's contract: what a depositor must
	// send, since any contract can call itself USDC.
	Token *TokenView `json:"token,omitempty"`
}

// TokenView is the contract a token asset is bound to (custody.Token).
type TokenView struct {
	ChainID  uint64 `json:"chain_id"`
	Contract string `json:"contract"`
}

func (s *Server) assetViews() []AssetView {
	out := []AssetView{}
	s.core.Read(func(st *core.State) {
		for _, a := range st.Ledger.Assets() {
			class := "chain"
			if a.Class == ledger.ClassFiat {
				class = "fiat"
			}
			v := AssetView{ID: a.ID, Code: a.Code, Decimals: a.Decimals, Class: class, Enabled: st.People.AssetEnabled(a.ID)}
			if t, ok := st.Custody.Token(a.ID); ok {
				v.Token = &TokenView{ChainID: t.ChainID, Contract: t.Contract}
			}
			out = append(out, v)
		}
	})
	return out
}

func (s *Server) listAssets(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"items": s.assetViews()})
}

// ProposeAssetRequest is the body of POST /v1/assets.
type ProposeAssetRequest struct {
	ID       ledger.AssetID `json:"id"`
	Code     string         `json:"code"`
	Decimals uint8          `json:"decimals"`
	Class    string         `json:"class"`
	Reason   string         `json:"reason"`
	// Assertion is the proposer's signature (428 answers what to sign).
	Assertion json.RawMessage `json:"assertion,omitempty"`
}

func (s *Server) proposeAsset(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.operator(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req ProposeAssetRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	a, err := ParseAssertion(req.Assertion)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cmd, err := ProposeAssetCommand(p.Session.Operator, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, ok := s.signed(w, r, cmd, a, "", 0); ok {
		writeJSON(w, http.StatusCreated, map[string]any{"id": req.ID, "code": req.Code, "enabled": false})
	}
}

// ProposeAssetCommand builds the command that creates an asset awaiting
// listing.
func ProposeAssetCommand(actor string, req ProposeAssetRequest) (core.ProposeAsset, error) {
	class := ledger.ClassChain
	switch req.Class {
	case "chain":
	case "fiat":
		class = ledger.ClassFiat
	default:
		return core.ProposeAsset{}, fmt.Errorf("%w: class must be chain or fiat", people.ErrInvalid)
	}
	return core.ProposeAsset{Asset: ledger.Asset{ID: req.ID, Code: strings.ToUpper(req.Code), Decimals: req.Decimals, Class: class}, Actor: actor, Reason: req.Reason}, nil
}

// ReviewRequest is the body of POST /v1/assets/{code}/review.
type ReviewRequest struct {
	AMLRisk        string `json:"aml_risk"`
	ChainMaturity  string `json:"chain_maturity"`
	Multisig       string `json:"multisig"`
	CustodyPlan    string `json:"custody_plan"`
	Recommendation string `json:"recommendation"`
}

func (s *Server) reviewAsset(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.operator(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req ReviewRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.ReviewAsset(r.Context(), p.Session.Operator, r.PathValue("code"), req); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"asset": r.PathValue("code"), "reviewer": p.Session.Operator})
}

// ReviewAsset records a ciso's review of the asset with code.
func (s *Server) ReviewAsset(ctx context.Context, actor, code string, req ReviewRequest) error {
	var a ledger.Asset
	var ok bool
	s.core.Read(func(st *core.State) { a, ok = st.Ledger.AssetByCode(strings.ToUpper(code)) })
	if !ok {
		return fmt.Errorf("%w: asset %q", people.ErrAssetNotProposed, code)
	}
	_, err := s.submit(ctx, core.ReviewAsset{Review: people.Review{Asset: a.ID, AMLRisk: req.AMLRisk, ChainMaturity: req.ChainMaturity,
		Multisig: req.Multisig, CustodyPlan: req.CustodyPlan, Recommendation: req.Recommendation, Reviewer: actor}})
	return err
}

// EntryView is a journal entry as listed.
type EntryView struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Hash    string    `json:"hash"`
	Summary string    `json:"summary"`
}

// journalPage lists entries from seq from.
func (s *Server) journalPage(from uint64, limit int) (Page[EntryView], error) {
	page := Page[EntryView]{Items: []EntryView{}}
	if head, _, _ := s.core.Journal().Head(); from > head+1 {
		return page, fmt.Errorf("%w: cursor %d is past the journal's end (%d entries)", errBadJSON, from, head)
	}
	err := s.core.Journal().Scan(max(from, 1), func(e journal.Entry) error {
		if len(page.Items) == limit {
			page.Next = strconv.FormatUint(e.Seq, 10)
			return journal.ErrStop
		}
		page.Items = append(page.Items, EntryView{Seq: e.Seq, Time: time.Unix(0, e.Time).UTC(), Kind: core.Kind(e.Kind).String(), Hash: e.Hash.String(), Summary: summarize(e)})
		return nil
	})
	return page, err
}

// summarize describes an entry in a line without secrets.
func summarize(e journal.Entry) string {
	c, err := core.DecodeCommand(e.Kind, e.Payload)
	if err != nil {
		return "does not decode"
	}
	return core.Describe(c)
}

func (s *Server) listJournal(w http.ResponseWriter, r *http.Request, _ Principal) {
	limit, cursor, err := paging(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page, err := s.journalPage(uint64(cursor), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// VerifyView is the answer of a journal verification.
type VerifyView struct {
	OK      bool   `json:"ok"`
	Entries uint64 `json:"entries"`
	Head    string `json:"head,omitempty"`
	BadSeq  uint64 `json:"bad_seq,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

func (s *Server) verify() VerifyView {
	rep, err := s.core.Journal().Verify(core.CheckPayload)
	var bad *journal.BadEntryError
	if errors.As(err, &bad) {
		return VerifyView{Entries: rep.Entries, BadSeq: bad.Seq, Reason: bad.Reason}
	}
	if err != nil {
		return VerifyView{Entries: rep.Entries, Reason: "verification could not complete"}
	}
	return VerifyView{OK: true, Entries: rep.Entries, Head: rep.Head.String()}
}

func (s *Server) verifyJournal(w http.ResponseWriter, r *http.Request, _ Principal) {
	writeJSON(w, http.StatusOK, s.verify())
}

func peopleID(v uint64) ledger.OwnerID { return ledger.OwnerID(v) }

func assetID(v uint64) ledger.AssetID { return ledger.AssetID(v) }

func (s *Server) reserves() (*reserves.Report, error) {
	var rep *reserves.Report
	var err error
	s.core.Read(func(st *core.State) {
		rep, err = reserves.Compute(st.Ledger, st.Custody, reserves.DefaultPolicy, nil, st.Seq(), st.Time())
	})
	return rep, err
}

func (s *Server) reservesReport(w http.ResponseWriter, r *http.Request, _ Principal) {
	if r.URL.Query().Get("format") == "daily-csv" {
		w.Header().Set("Content-Type", "text/csv")
		s.core.Read(func(st *core.State) {
			reserves.WriteDailyCSV(w, st.Ledger, s.now().UTC().Format("2006-01-02"))
		})
		return
	}
	rep, err := s.reserves()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// DepositAddressRequest is the body of POST /v1/me/deposit-addresses.
type DepositAddressRequest struct {
	Asset string `json:"asset"`
}

// DepositAddressView is a deposit address handed to a customer.
type DepositAddressView struct {
	Asset   string `json:"asset"`
	Address string `json:"address"`
	Wallet  uint32 `json:"wallet"`
	Index   uint32 `json:"index"`
}

func (s *Server) newDepositAddress(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req DepositAddressRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.DepositAddress(r.Context(), p.Session.Customer, req.Asset)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

// DepositAddress hands a customer the next address of the asset's cold
// customer wallet: derived from its descriptor, so no private key is online
// for deposits. A listed ERC-20 token's address is the customer's address
// of the first cold customer Safe wallet of the token's chain: the same
// address as their Ether there (custody.Token).
func (s *Server) DepositAddress(ctx context.Context, customer ledger.OwnerID, code string) (DepositAddressView, error) {
	var wl custody.Wallet
	var found bool
	var unlisted error
	s.core.Read(func(st *core.State) {
		a, ok := st.Ledger.AssetByCode(strings.ToUpper(code))
		if !ok {
			return
		}
		if tok, ok := st.Custody.Token(a.ID); ok {
			if !st.People.AssetEnabled(a.ID) {
				unlisted = fmt.Errorf("%w: %s awaits listing", core.ErrAssetNotListed, a.Code)
				return
			}
			wl, found = tokenWallet(st, tok)
			return
		}
		for _, w := range st.Custody.Wallets() {
			if w.Asset == a.ID && w.Kind == custody.ColdCustomer {
				wl, found = w, true
				return
			}
		}
	})
	if unlisted != nil {
		return DepositAddressView{}, unlisted
	}
	if !found {
		return DepositAddressView{}, fmt.Errorf("%w: no deposit wallet for %q", people.ErrInvalid, code)
	}
	if ethwallet.IsSafe(wl.Descriptor) {
		return s.etherDepositAddress(ctx, customer, strings.ToUpper(code), wl)
	}
	d, err := wallet.Parse(wl.Descriptor, s.cfg.Net)
	if err != nil {
		return DepositAddressView{}, err
	}
	v, err := s.submit(ctx, core.AssignAddress{Wallet: wl.ID, Customer: customer})
	if err != nil {
		return DepositAddressView{}, err
	}
	idx := v.(uint32)
	a, _, err := d.Address(0, idx)
	if err != nil {
		return DepositAddressView{}, err
	}
	return DepositAddressView{Asset: strings.ToUpper(code), Address: a.EncodeAddress(), Wallet: wl.ID, Index: idx}, nil
}

// tokenWallet returns the cold customer Safe wallet a token's deposits go
// to: the first registered on the token's chain.
func tokenWallet(st *core.State, tok custody.Token) (custody.Wallet, bool) {
	for _, w := range st.Custody.Wallets() {
		if w.Kind != custody.ColdCustomer || !w.Safe() {
			continue
		}
		if d, err := ethwallet.Parse(w.Descriptor); err == nil && d.ChainID == tok.ChainID {
			return w, true
		}
	}
	return custody.Wallet{}, false
}

// errUnavailable reports what this server cannot do as configured (503).
var errUnavailable = errors.New("unavailable")

// etherDepositAddress hands out the next counterfactual Safe address of
// the Ethereum cold wallet wl. Nothing is assigned unless the address can
// be derived here.
func (s *Server) etherDepositAddress(ctx context.Context, customer ledger.OwnerID, code string, wl custody.Wallet) (DepositAddressView, error) {
	if s.cfg.SafeArtifacts == nil {
		return DepositAddressView{}, fmt.Errorf("%w: %s deposit addresses need the Safe contracts, which this server has not loaded (scripts/install-safe-contracts.sh)", errUnavailable, code)
	}
	d, err := ethwallet.Parse(wl.Descriptor)
	if err != nil {
		return DepositAddressView{}, err
	}
	if _, err := book.Predictor(s.cfg.SafeArtifacts, d); err != nil {
		return DepositAddressView{}, err
	}
	v, err := s.submit(ctx, core.AssignAddress{Wallet: wl.ID, Customer: customer})
	if err != nil {
		return DepositAddressView{}, err
	}
	idx := v.(uint32)
	a, err := book.Derive(s.cfg.SafeArtifacts, d, idx)
	if err != nil {
		return DepositAddressView{}, err
	}
	return DepositAddressView{Asset: code, Address: a.Hex(), Wallet: wl.ID, Index: idx}, nil
}

// depositID is how a deposit's id reads on its chain: txid:vout for
// Bitcoin, 0xhash:index for an Ethereum Safe wallet.
func depositID(st *core.State, walletID uint32, o custody.Outpoint) string {
	if w, ok := st.Custody.Wallet(walletID); ok && ethwallet.IsSafe(w.Descriptor) {
		return o.EtherString()
	}
	return o.String()
}

// DepositView is a deposit as its customer sees it. A credited deposit
// has its confirmations at the journaled chain tip and the depth it needs
// to be withdrawable; Final once it has them.
type DepositView struct {
	// Asset is the deposit's asset code (a token's deposit is to a Safe
	// wallet of the chain's coin); "" for a pending one.
	Asset         string        `json:"asset,omitempty"`
	Outpoint      string        `json:"outpoint"`
	Amount        ledger.Amount `json:"amount"`
	State         string        `json:"state"` // pending, credited, reversed
	Confirmations int32         `json:"confirmations,omitempty"`
	Height        int32         `json:"height,omitempty"`
	Depth         int32         `json:"depth,omitempty"`
	Final         bool          `json:"final,omitempty"`
}

func (s *Server) myDeposits(w http.ResponseWriter, r *http.Request) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	me := p.Session.Customer
	out := []DepositView{}
	if s.cfg.Pending != nil {
		for _, d := range s.cfg.Pending() {
			if d.Customer == me {
				out = append(out, DepositView{Outpoint: d.Outpoint.String(), Amount: ledger.AmountOf(d.Amount), State: "pending", Confirmations: d.Confirmations, Height: d.Height})
			}
		}
	}
	s.core.Read(func(st *core.State) {
		st.Custody.Deposits(func(d *custody.Deposit) bool {
			if d.Customer == me {
				state := "credited"
				if d.State == custody.DepositReversed {
					state = "reversed"
				}
				asset := st.Custody.DepositAsset(d)
				v := DepositView{Asset: assetCode(st, asset), Outpoint: depositID(st, d.Wallet, d.Outpoint), Amount: d.Value(), State: state, Height: d.Height}
				if d.State != custody.DepositReversed {
					v.Confirmations, v.Depth, v.Final = d.Confirmations(st.Checkpoints[asset].Height), d.Depth(), d.Final
				}
				out = append(out, v)
			}
			return true
		})
	})
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}
