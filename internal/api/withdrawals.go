package api

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil"

	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/people"
	"kinko/internal/withdraw"
)

func (s *Server) registerWithdrawals() {
	s.handle("POST", "/v1/me/intent-keys", true, s.idempotent(s.addIntentKey))
	s.handle("POST", "/v1/me/whitelist", true, s.idempotent(s.addWhitelist))
	s.handle("POST", "/v1/me/withdrawals", true, s.idempotent(s.requestWithdrawal))
	s.handle("GET", "/v1/me/withdrawals", true, s.myWithdrawals)
	s.handle("GET", "/v1/withdrawals", true, s.operatorOnly(s.allWithdrawals))
}

// moneyMove checks that a customer acts with a fresh TOTP code.
func (s *Server) moneyMove(w http.ResponseWriter, r *http.Request) (Principal, bool) {
	p, err := s.apiAsker(r)(true)
	if err != nil {
		s.fail(w, r, err)
		return p, false
	}
	return p, true
}

// IntentKeyRequest registers an ed25519 public key (hex).
type IntentKeyRequest struct {
	PublicKey string `json:"public_key"`
}

func decodeHex(s string, n int, what string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || (n > 0 && len(b) != n) {
		return nil, fmt.Errorf("%w: %s must be %d bytes of hex", errBadJSON, what, n)
	}
	return b, nil
}

func (s *Server) addIntentKey(w http.ResponseWriter, r *http.Request, body []byte) {
	var req IntentKeyRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	pub, err := decodeHex(req.PublicKey, 32, "public_key")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, ok := s.moneyMove(w, r)
	if !ok {
		return
	}
	if _, err := s.submit(r.Context(), core.RegisterIntentKey{Customer: p.Session.Customer, PubKey: [32]byte(pub)}); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"public_key": req.PublicKey, "usable_after": "the cool-down (24 hours by default)"})
}

// WhitelistRequest adds a withdrawal address.
type WhitelistRequest struct {
	Asset   string `json:"asset"`
	Address string `json:"address"`
}

func (s *Server) addWhitelist(w http.ResponseWriter, r *http.Request, body []byte) {
	var req WhitelistRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	req.Asset = strings.ToUpper(req.Asset)
	if req.Asset == "BTC" {
		a, err := btcutil.DecodeAddress(req.Address, s.cfg.Net)
		if err != nil || !a.IsForNet(s.cfg.Net) {
			s.fail(w, r, fmt.Errorf("%w: %q is not a %s address", people.ErrInvalid, req.Address, s.cfg.Net.Name))
			return
		}
	}
	p, ok := s.moneyMove(w, r)
	if !ok {
		return
	}
	if _, err := s.submit(r.Context(), core.WhitelistAddress{Customer: p.Session.Customer, Asset: req.Asset, Address: req.Address}); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, req)
}

// WithdrawalRequest is a signed intent. Amount is a decimal string of base
// units, up to 2^128-1 (wei); Expiry an RFC 3339 time in whole seconds (the intent the
// customer signs carries its unix seconds: withdraw.Intent).
type WithdrawalRequest struct {
	RequestID string    `json:"request_id"`
	Asset     string    `json:"asset"`
	Address   string    `json:"address"`
	Amount    WideUnits `json:"amount"`
	Expiry    Time      `json:"expiry"`
	PublicKey string    `json:"public_key"`
	Signature string    `json:"signature"`
}

// WithdrawalView is a withdrawal as shown.
type WithdrawalView struct {
	ID        string        `json:"id"`
	RequestID string        `json:"request_id"`
	Asset     string        `json:"asset"`
	Address   string        `json:"address"`
	Amount    ledger.Amount `json:"amount"`
	Expiry    time.Time     `json:"expiry"`
	Status    string        `json:"status"`
	Reason    string        `json:"reason,omitempty"`
}

func viewOf(w withdraw.Withdrawal) WithdrawalView {
	return WithdrawalView{ID: w.ID, RequestID: w.Intent.RequestID, Asset: w.Intent.Asset, Address: w.Intent.Address,
		Amount: w.Intent.Amount.Ledger(), Expiry: time.Unix(w.Intent.Expiry, 0).UTC(), Status: string(w.Status), Reason: w.Reason}
}

func (s *Server) requestWithdrawal(w http.ResponseWriter, r *http.Request, body []byte) {
	var req WithdrawalRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	v := withdraw.Amount(req.Amount)
	if v.IsZero() {
		s.fail(w, r, &fieldError{field: "amount", want: "a positive whole number of base units", got: "0"})
		return
	}
	var fee withdraw.Amount
	s.core.Read(func(st *core.State) { fee = st.Withdraw.Rules.WithdrawalFee[strings.ToUpper(req.Asset)] })
	if _, over := v.Add(fee); over {
		s.fail(w, r, &fieldError{field: "amount", want: "an amount that with the withdrawal fee of " + fee.String() + " stays below 2^128 base units", got: v.String()})
		return
	}
	if req.Expiry.Nanosecond() != 0 || req.Expiry.IsZero() {
		s.fail(w, r, &fieldError{field: "expiry", want: "an RFC 3339 time in whole seconds (the signed intent carries its unix seconds)", got: req.Expiry.Format(time.RFC3339Nano)})
		return
	}
	pub, err := decodeHex(req.PublicKey, 32, "public_key")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sig, err := decodeHex(req.Signature, 64, "signature")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, ok := s.moneyMove(w, r)
	if !ok {
		return
	}
	in := withdraw.Intent{RequestID: req.RequestID, Asset: strings.ToUpper(req.Asset), Address: req.Address, Amount: v, Expiry: req.Expiry.Unix()}
	rec, err := s.submit(r.Context(), core.RequestWithdrawal{Customer: p.Session.Customer, Intent: in, PubKey: [32]byte(pub), Sig: sig})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, viewOf(rec.(withdraw.Withdrawal)))
}

func (s *Server) myWithdrawals(w http.ResponseWriter, r *http.Request) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := []WithdrawalView{}
	s.core.Read(func(st *core.State) {
		for _, wd := range st.Withdraw.Withdrawals(uint64(p.Session.Customer)) {
			out = append(out, viewOf(wd))
		}
	})
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (s *Server) allWithdrawals(w http.ResponseWriter, r *http.Request, _ Principal) {
	out := []WithdrawalView{}
	s.core.Read(func(st *core.State) {
		for _, wd := range st.Withdraw.Withdrawals(0) {
			out = append(out, viewOf(wd))
		}
	})
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}
