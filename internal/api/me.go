package api

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"kinko/internal/auth"
	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/people"
)

// A customer sees and stops what is done in their name: they list and
// revoke their intent keys, whitelisted addresses and sessions, change
// their password, enrol a new second factor (withdrawals wait the
// cool-down after either), read their notices, and freeze their
// withdrawals (from a notice's link, without logging in, or from a
// session). Lifting a freeze takes a fresh login and a step-up, or an
// operator's signed word.

func (s *Server) registerMe() {
	s.handle("GET", "/v1/me/intent-keys", true, s.myIntentKeys)
	s.handle("POST", "/v1/me/intent-keys/{key}/revoke", true, s.idempotent(s.revokeIntentKey))
	s.handle("GET", "/v1/me/whitelist", true, s.myWhitelist)
	s.handle("POST", "/v1/me/whitelist/remove", true, s.idempotent(s.removeAddress))
	s.handle("GET", "/v1/me/sessions", true, s.mySessions)
	s.handle("POST", "/v1/me/sessions/{id}/revoke", true, s.idempotent(s.revokeSession))
	s.handle("POST", "/v1/me/password", true, s.idempotent(s.changePassword))
	s.handle("POST", "/v1/me/totp", true, s.idempotent(s.reenrolTOTP))
	s.handle("GET", "/v1/me/notices", true, s.myNotices)
	s.handle("POST", "/v1/me/freeze", true, s.idempotent(s.freezeMine))
	s.handle("POST", "/v1/me/unfreeze", true, s.idempotent(s.unfreezeMine))
	s.handle("GET", "/v1/freeze", true, s.freezeLink)
	s.handle("POST", "/v1/freeze", true, s.freezeLink)
	s.handle("POST", "/v1/customers/{id}/freeze", true, s.idempotent(s.operatorFreeze(true)))
	s.handle("POST", "/v1/customers/{id}/unfreeze", true, s.idempotent(s.operatorFreeze(false)))
}

// IntentKeyView is an intent key as its customer sees it.
type IntentKeyView struct {
	PublicKey  string    `json:"public_key"`
	Registered time.Time `json:"registered"`
	UsableFrom time.Time `json:"usable_from"`
}

func (s *Server) myIntentKeys(w http.ResponseWriter, r *http.Request) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := []IntentKeyView{}
	s.core.Read(func(st *core.State) {
		cool := st.Withdraw.CoolDown()
		for _, k := range st.Withdraw.Keys(uint64(p.Session.Customer)) {
			out = append(out, IntentKeyView{PublicKey: hex.EncodeToString(k.PubKey[:]), Registered: time.Unix(0, k.Registered).UTC(), UsableFrom: time.Unix(0, k.Registered+cool).UTC()})
		}
	})
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (s *Server) revokeIntentKey(w http.ResponseWriter, r *http.Request, _ []byte) {
	s.revokeOwn(w, r, "key", "public_key", "the key in the path", func(c ledger.OwnerID, h [32]byte) core.Command {
		return core.RevokeIntentKey{Customer: c, PubKey: h}
	})
}

// revokeOwn revokes what the path's 32-byte hex value names (param) of the
// signed-in customer with the command cmd makes, and answers it under
// name with "revoked": true.
func (s *Server) revokeOwn(w http.ResponseWriter, r *http.Request, param, name, what string, cmd func(ledger.OwnerID, [32]byte) core.Command) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h, err := decodeHex(r.PathValue(param), 32, what)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.submit(r.Context(), cmd(p.Session.Customer, [32]byte(h))); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{name: r.PathValue(param), "revoked": true})
}

// AddressView is a whitelisted address as its customer sees it.
type AddressView struct {
	Asset      string    `json:"asset"`
	Address    string    `json:"address"`
	Added      time.Time `json:"added"`
	UsableFrom time.Time `json:"usable_from"`
}

func (s *Server) myWhitelist(w http.ResponseWriter, r *http.Request) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := []AddressView{}
	s.core.Read(func(st *core.State) {
		cool := st.Withdraw.CoolDown()
		for _, a := range st.Withdraw.Addresses(uint64(p.Session.Customer)) {
			out = append(out, AddressView{Asset: a.Asset, Address: a.Address, Added: time.Unix(0, a.Added).UTC(), UsableFrom: time.Unix(0, a.Added+cool).UTC()})
		}
	})
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (s *Server) removeAddress(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req WhitelistRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	req.Asset = strings.ToUpper(req.Asset)
	if _, err := s.submit(r.Context(), core.RemoveAddress{Customer: p.Session.Customer, Asset: req.Asset, Address: req.Address}); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"asset": req.Asset, "address": req.Address, "removed": true})
}

// SessionView is a session as its customer sees it. ID is the SHA-256 of
// its token (hex): what revoking names.
type SessionView struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Current bool      `json:"current"`
	Device  string    `json:"device,omitempty"` // the first 8 hex digits of the device's hash
}

// maxSessionsListed bounds the sessions one answer lists.
const maxSessionsListed = 100

func (s *Server) mySessions(w http.ResponseWriter, r *http.Request) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := []SessionView{}
	s.core.Read(func(st *core.State) {
		for _, ss := range st.People.CustomerSessions(p.Session.Customer, s.now().UnixNano(), maxSessionsListed) {
			v := SessionView{ID: hex.EncodeToString(ss.TokenHash[:]), Created: time.Unix(0, ss.Created).UTC(), Expires: time.Unix(0, ss.Expires).UTC(), Current: ss.TokenHash == p.Token}
			if len(ss.Device) >= 8 {
				v.Device = ss.Device[:8]
			}
			out = append(out, v)
		}
	})
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request, _ []byte) {
	s.revokeOwn(w, r, "id", "id", "the session id in the path", func(c ledger.OwnerID, h [32]byte) core.Command {
		return core.RevokeSession{Customer: c, TokenHash: h}
	})
}

// PasswordRequest is the body of POST /v1/me/password.
type PasswordRequest struct {
	Password    string `json:"password"`
	NewPassword string `json:"new_password"`
}

// TOTPRequest is the body of POST /v1/me/totp.
type TOTPRequest struct {
	Password string `json:"password"`
}

// errPasswordWrong is a wrong current password on a credential change.
var errPasswordWrong = fmt.Errorf("%w: the current password is wrong", errForbidden)

// changeCreds checks the current password and a step-up code, then
// journals the new commitment; other sessions end.
func (s *Server) changeCreds(w http.ResponseWriter, r *http.Request, password string, change func(people.Customer, credRecord) (credRecord, error)) (people.Customer, bool) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return people.Customer{}, false
	}
	var cust people.Customer
	s.core.Read(func(st *core.State) { cust, _ = st.People.Customer(p.Session.Customer) })
	creds, err := s.credsOf(cust)
	if err != nil {
		s.fail(w, r, err)
		return cust, false
	}
	ok, err := s.check(r.Context(), creds.PasswordHash, password)
	if err == nil && !ok {
		// A wrong password here counts as a failed login.
		if _, err = s.submit(r.Context(), core.LoginFailed{Who: people.SessionCustomer, Customer: cust.ID, Reason: "wrong password on a credential change"}); err == nil {
			err = errPasswordWrong
		}
	}
	if err == nil {
		err = s.StepUp(r, p)
	}
	var next credRecord
	if err == nil {
		next, err = change(cust, creds)
	}
	var commit string
	if err == nil {
		commit, err = s.putCreds(cust.ID, next)
	}
	if err == nil {
		what := people.ChangePassword
		if next.PasswordHash == creds.PasswordHash {
			what = people.ChangeSecondFactor
		}
		_, err = s.submit(r.Context(), core.ChangeCredentials{Customer: cust.ID, Change: what, Commit: commit, Keep: p.Token})
	}
	if err != nil {
		s.fail(w, r, err)
		return cust, false
	}
	return cust, true
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, body []byte) {
	var req PasswordRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if len(req.NewPassword) < auth.MinPassword || len(req.NewPassword) > auth.MaxPassword {
		s.fail(w, r, fmt.Errorf("%w: %v", people.ErrInvalid, auth.ErrPasswordPolicy))
		return
	}
	if _, ok := s.changeCreds(w, r, req.Password, func(_ people.Customer, old credRecord) (credRecord, error) {
		h, err := s.hash(r.Context(), req.NewPassword)
		return credRecord{PasswordHash: h, TOTPSealed: old.TOTPSealed}, err
	}); ok {
		writeJSON(w, http.StatusOK, map[string]any{"changed": "password", "withdrawals_wait": "the cool-down"})
	}
}

// TOTPResponse carries a newly enrolled TOTP seed, shown this once.
type TOTPResponse struct {
	TOTPSecret string `json:"totp_secret"`
	TOTPURI    string `json:"totp_uri"`
}

func (s *Server) reenrolTOTP(w http.ResponseWriter, r *http.Request, body []byte) {
	var req TOTPRequest
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	var secret, uri string
	if _, ok := s.changeCreds(w, r, req.Password, func(c people.Customer, old credRecord) (credRecord, error) {
		var sealed string
		var err error
		secret, uri, sealed, err = s.newTOTP(c.ID, c.Email)
		return credRecord{PasswordHash: old.PasswordHash, TOTPSealed: sealed}, err
	}); ok {
		writeJSON(w, http.StatusOK, TOTPResponse{TOTPSecret: secret, TOTPURI: uri})
	}
}

// NoticeView is a notice as its customer sees it, with its freeze link.
type NoticeView struct {
	Seq       uint64    `json:"seq"`
	Kind      string    `json:"kind"`
	Title     string    `json:"title"`
	Detail    string    `json:"detail"`
	Time      time.Time `json:"time"`
	FreezeURL string    `json:"freeze_url,omitempty"`
}

func (s *Server) myNotices(w http.ResponseWriter, r *http.Request) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	limit, _, err := paging(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := []NoticeView{}
	s.core.Read(func(st *core.State) {
		for _, n := range st.People.NoticesOf(p.Session.Customer, limit) {
			v := NoticeView{Seq: n.Seq, Kind: string(n.Kind), Title: noticeTitle(n.Kind), Detail: n.Detail, Time: time.Unix(0, n.Time).UTC()}
			if !n.FreezeUsed && n.Kind != people.NoticeFrozen {
				v.FreezeURL = s.freezeURL(n)
			}
			out = append(out, v)
		}
	})
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

// FreezeRequest is the body of the freeze routes; Token only for
// POST /v1/freeze (GET takes it in ?token=).
type FreezeRequest struct {
	Token  string `json:"token,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func (s *Server) freezeMine(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req FreezeRequest
	if len(body) > 0 {
		if err := decodeStrict(body, &req); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if req.Reason == "" {
		req.Reason = "asked by the customer"
	}
	if _, err := s.submit(r.Context(), core.FreezeWithdrawals{Customer: p.Session.Customer, By: "customer", Reason: req.Reason}); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"frozen": true})
}

func (s *Server) unfreezeMine(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := s.customer(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req FreezeRequest
	if len(body) > 0 {
		if err := decodeStrict(body, &req); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if req.Reason == "" {
		req.Reason = "lifted by the customer"
	}
	if s.now().UnixNano()-p.Session.Created > people.FreshLogin {
		s.fail(w, r, people.ErrNotFresh)
		return
	}
	if err := s.StepUp(r, p); err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.submit(r.Context(), core.UnfreezeWithdrawals{Customer: p.Session.Customer, By: "customer", Session: p.Token, Reason: req.Reason}); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"frozen": false})
}

// freezeLink follows a notice's freeze link: no login, the token is the
// authority, and works once.
func (s *Server) freezeLink(w http.ResponseWriter, r *http.Request) {
	if ok, wait := s.lim.loginAddr.take(clientAddr(r), s.now()); !ok {
		s.fail(w, r, &errTooMany{What: "freeze links from this address", Wait: wait})
		return
	}
	tok := r.URL.Query().Get("token")
	if r.Method == http.MethodPost {
		body, err := readBody(w, r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		var req FreezeRequest
		if err := decodeStrict(body, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		tok = req.Token
	}
	c, seq, err := s.parseFreezeToken(tok)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.submit(r.Context(), core.FreezeWithdrawals{Customer: c, By: "notice link", Notice: seq, Reason: fmt.Sprintf("the freeze link of notice %d", seq)}); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"frozen": true, "detail": "your withdrawals are frozen; lifting the freeze takes a fresh login and a code from your authenticator, or our support"})
}

// OperatorFreezeRequest is the body of an operator's freeze or unfreeze.
type OperatorFreezeRequest struct {
	Reason    string          `json:"reason"`
	Assertion json.RawMessage `json:"assertion,omitempty"`
}

func (s *Server) operatorFreeze(freeze bool) func(http.ResponseWriter, *http.Request, []byte) {
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		p, err := s.operator(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if err := s.writer(p); err != nil {
			s.fail(w, r, err)
			return
		}
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
		if err != nil {
			s.fail(w, r, fmt.Errorf("%w: customer id", errBadJSON))
			return
		}
		var req OperatorFreezeRequest
		if err := decodeStrict(body, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		a, err := ParseAssertion(req.Assertion)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		var cmd core.Command = core.UnfreezeWithdrawals{Customer: ledger.OwnerID(id), By: p.Session.Operator, Reason: req.Reason}
		if freeze {
			cmd = core.FreezeWithdrawals{Customer: ledger.OwnerID(id), By: p.Session.Operator, Reason: req.Reason}
		}
		if _, ok := s.signed(w, r, cmd, a, "", 0); ok {
			writeJSON(w, http.StatusOK, map[string]any{"customer": id, "frozen": freeze})
		}
	}
}
