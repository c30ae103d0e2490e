package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"kinko/internal/compensation"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/incident"
	"kinko/internal/ledger"
	"kinko/internal/market"
	"kinko/internal/people"
	"kinko/internal/trading"
	"kinko/internal/withdraw"
)

// Problem is an RFC 9457 problem document. Code names the kind of error
// in a word that never changes (a client branches on it, never on the
// title or the detail); Type is the same as a URN. A refusal for a bound
// names the input (Field), the bound (Limit) and what was asked (Value),
// as decimal text.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail,omitempty"`
	Field  string `json:"field,omitempty"`
	Limit  string `json:"limit,omitempty"`
	Value  string `json:"value,omitempty"`
}

// problemType is the type URI of a problem code.
func problemType(code string) string { return "urn:kinko:problem:" + code }

// codeOf is the code of a title: its words joined by underscores.
func codeOf(title string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '_'
	}, strings.TrimSpace(title))
}

func writeProblem(w http.ResponseWriter, status int, title, detail string) {
	writeProblemDoc(w, Problem{Title: title, Status: status, Code: codeOf(title), Detail: detail})
}

// writeProblemDoc writes p, its type from its code and its detail clean.
func writeProblemDoc(w http.ResponseWriter, p Problem) {
	if p.Code == "" {
		p.Code = codeOf(p.Title)
	}
	p.Type, p.Detail = problemType(p.Code), cleanDetail(p.Detail)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

// packagePrefix matches the package names errors from below start their
// text with ("people: ", "controls: ..."), at the start or after a colon.
var packagePrefix = regexp.MustCompile(`(^|: )(?:api|auth|ceremony|compensation|controls|core|custody|drill|incident|journal|ledger|market|passkey|people|reserves|secrets|signer|trading|wallet|watch|withdraw|yen|zengin): `)

// cleanDetail drops the package names from an error's text: they say
// where in kinko the error was made, which is no business of the reader.
func cleanDetail(s string) string {
	for {
		t := packagePrefix.ReplaceAllString(s, "$1")
		if t == s {
			return s
		}
		s = t
	}
}

// kind is one kind of error the API knows: its status, title and code,
// and the errors (errors.Is) that are of it.
type kind struct {
	status      int
	title, code string
	errs        []error
}

// kinds are the errors from below the API answers, in the order they are
// tried (a wrapped error may be of several: the first wins).
var kinds = []kind{
	{http.StatusServiceUnavailable, "halted", "halted", []error{controls.ErrHalted}},
	{http.StatusUnprocessableEntity, "order refused", "order_too_large", []error{trading.ErrOrderTooLarge}},
	{http.StatusUnprocessableEntity, "order refused", "outside_band", []error{market.ErrOutsideBand}},
	{http.StatusUnprocessableEntity, "order refused", "no_reference_price", []error{market.ErrNoReference, trading.ErrNoReference}},
	{http.StatusUnprocessableEntity, "order refused", "insufficient_funds", []error{trading.ErrInsufficient}},
	{http.StatusUnprocessableEntity, "order refused", "not_verified", []error{trading.ErrNotVerified, core.ErrNotVerified}},
	{http.StatusUnprocessableEntity, "order refused", "dealer_exposure", []error{trading.ErrExposure}},
	{http.StatusUnprocessableEntity, "order refused", "dealer_disabled", []error{trading.ErrDealerDisabled}},
	{http.StatusUnprocessableEntity, "order refused", "quote_expired", []error{trading.ErrQuoteExpired}},
	{http.StatusForbidden, "a second operator must approve this", "needs_approval", []error{trading.ErrNeedsApproval}},
	{http.StatusConflict, "conflict", "client_order_id_used", []error{trading.ErrClientID}},
	{http.StatusConflict, "conflict", "quote_used", []error{trading.ErrQuoteUsed}},
	{http.StatusConflict, "conflict", "quote_stale", []error{trading.ErrQuoteStale}},
	{http.StatusConflict, "conflict", "market_exists", []error{trading.ErrMarketExists}},
	{http.StatusUnprocessableEntity, "invalid request", "listing_invalid", []error{trading.ErrListing}},
	{http.StatusNotFound, "not found", "market_unknown", []error{trading.ErrUnknownMarket}},
	{http.StatusNotFound, "not found", "order_unknown", []error{trading.ErrUnknownOrder}},
	{http.StatusNotFound, "not found", "quote_unknown", []error{trading.ErrQuoteUnknown}},
	{http.StatusForbidden, "forbidden", "not_your_order", []error{trading.ErrNotOwner}},

	{http.StatusUnprocessableEntity, "withdrawal refused", "intent_signature", []error{withdraw.ErrBadSignature, withdraw.ErrIntent}},
	{http.StatusUnprocessableEntity, "withdrawal refused", "intent_key_unknown", []error{withdraw.ErrKeyUnknown}},
	{http.StatusUnprocessableEntity, "withdrawal refused", "intent_key_cooling", []error{withdraw.ErrKeyCooling}},
	{http.StatusUnprocessableEntity, "withdrawal refused", "address_unknown", []error{withdraw.ErrAddressUnknown}},
	{http.StatusUnprocessableEntity, "withdrawal refused", "address_cooling", []error{withdraw.ErrAddressCooling}},
	{http.StatusUnprocessableEntity, "withdrawal refused", "intent_expired", []error{withdraw.ErrExpired}},
	{http.StatusUnprocessableEntity, "withdrawal refused", "asset_not_listed", []error{core.ErrAssetNotListed, custody.ErrAssetUnknown}},
	{http.StatusUnprocessableEntity, "withdrawal refused", "token_withdrawal", []error{core.ErrTokenWithdrawal}},
	{http.StatusUnprocessableEntity, "withdrawal refused", "credentials_cooling", []error{core.ErrCredsCooling}},
	{http.StatusUnprocessableEntity, "withdrawal refused", "over_bound", []error{withdraw.ErrBound}},
	{http.StatusConflict, "conflict", "request_id_used", []error{withdraw.ErrDuplicateRequest}},
	{http.StatusConflict, "conflict", "intent_key_exists", []error{withdraw.ErrKeyExists}},
	{http.StatusConflict, "conflict", "address_exists", []error{withdraw.ErrAddressExists}},
	{http.StatusConflict, "conflict", "not_awaiting_approval", []error{withdraw.ErrNotAwaiting}},
	{http.StatusNotFound, "not found", "withdrawal_unknown", []error{withdraw.ErrUnknown}},

	{http.StatusForbidden, "withdrawals frozen", "frozen", []error{people.ErrFrozen}},
	{http.StatusForbidden, "log in again", "not_fresh", []error{people.ErrNotFresh}},
	{http.StatusTooManyRequests, "locked", "locked", []error{people.ErrLocked}},
	{http.StatusForbidden, "forbidden", "self_approval", []error{people.ErrSelfApproval, controls.ErrSelfApproval}},
	{http.StatusForbidden, "forbidden", "wrong_role", []error{people.ErrWrongRole}},
	{http.StatusForbidden, "forbidden", "not_authorized", []error{people.ErrNotAuthorized}},
	{http.StatusForbidden, "forbidden", "subject", []error{people.ErrSubject}},
	{http.StatusForbidden, "forbidden", "two_person", []error{core.ErrTwoPerson}},
	{http.StatusForbidden, "forbidden", "enrolment_code", []error{people.ErrEnrolCode}},
	{http.StatusForbidden, "signature refused", "signature_refused", []error{people.ErrAssertion, people.ErrKeyUnknown, people.ErrNoKey, errSignatureRequired}},
	{http.StatusConflict, "conflict", "replayed", []error{people.ErrReplayed, people.ErrTOTPReplayed}},
	{http.StatusConflict, "conflict", "exists", []error{people.ErrKeyExists, people.ErrEmailTaken, people.ErrCustomerExists, people.ErrOperatorExists, people.ErrRequestExists}},
	{http.StatusConflict, "conflict", "bootstrap", []error{people.ErrBootstrapped, people.ErrNotBootstrapped}},
	{http.StatusConflict, "conflict", "not_frozen", []error{people.ErrNotFrozen}},
	{http.StatusConflict, "conflict", "notice_unknown", []error{people.ErrNoticeUnknown}},
	{http.StatusConflict, "conflict", "request_closed", []error{people.ErrRequestClosed, people.ErrRequestExpired}},
	{http.StatusConflict, "conflict", "asset_not_proposed", []error{people.ErrAssetNotProposed, people.ErrReviewMissing}},
	{http.StatusConflict, "conflict", "not_halted", []error{controls.ErrNotHalted}},
	{http.StatusConflict, "conflict", "out_of_plan", []error{controls.ErrOutOfPlan, controls.ErrPlanActive}},
	{http.StatusNotFound, "not found", "session_unknown", []error{people.ErrSessionUnknown}},
	{http.StatusNotFound, "not found", "customer_unknown", []error{people.ErrCustomerUnknown}},
	{http.StatusNotFound, "not found", "operator_unknown", []error{people.ErrOperatorUnknown}},
	{http.StatusNotFound, "not found", "request_unknown", []error{people.ErrRequestUnknown}},
	{http.StatusNotFound, "not found", "wallet_unknown", []error{custody.ErrWalletUnknown}},
	{http.StatusNotFound, "not found", "plan_unknown", []error{compensation.ErrUnknown}},
	{http.StatusNotFound, "not found", "incident_unknown", []error{incident.ErrUnknown}},
	{http.StatusConflict, "conflict", "plan_state", []error{compensation.ErrExists, compensation.ErrNotDraft, compensation.ErrNotApproved, compensation.ErrExecuted, compensation.ErrOutOfOrder}},
	{http.StatusUnprocessableEntity, "invalid request", "plan_invalid", []error{compensation.ErrInvalid, compensation.ErrIncomplete, compensation.ErrRateAbsurd, compensation.ErrPayoutsOrder}},
	{http.StatusUnprocessableEntity, "invalid request", "switch_invalid", []error{controls.ErrSwitchInvalid, errSwitchText}},
	{http.StatusUnprocessableEntity, "invalid request", "plan_invalid", []error{controls.ErrPlanInvalid}},
	{http.StatusUnprocessableEntity, "invalid request", "reason_required", []error{controls.ErrNoReason, controls.ErrNoActor}},
	{http.StatusUnprocessableEntity, "invalid request", "point_in_time", []error{core.ErrFuture, core.ErrBeforeJournal}},
	{http.StatusUnprocessableEntity, "invalid request", "token_invalid", []error{custody.ErrTokenInvalid, custody.ErrTokenAsset}},
	{http.StatusConflict, "conflict", "token_registered", []error{custody.ErrTokenRegistered}},
	{http.StatusConflict, "conflict", "gas_account_registered", []error{core.ErrGasAccountExists}},
	{http.StatusUnprocessableEntity, "invalid request", "invalid_request", []error{core.ErrCommandInvalid, people.ErrInvalid}},
}

// classify maps an error from below to the problem fit for the outside.
// Errors it does not know are internal: their detail stays in the log
// (Vault's ConvertToExternalError).
func classify(err error) (Problem, bool) {
	var p Problem
	known := false
	for _, k := range kinds {
		for _, e := range k.errs {
			if errors.Is(err, e) {
				p, known = Problem{Status: k.status, Title: k.title, Code: k.code}, true
				break
			}
		}
		if known {
			break
		}
	}
	if !known {
		var le *ledger.EventError
		var code ledger.Code
		var mc market.Code
		switch {
		case errors.As(err, &mc):
			p, known = Problem{Status: http.StatusUnprocessableEntity, Title: "order refused", Code: "order_" + codeOf(mc.Error())}, true
		case errors.As(err, &le), errors.As(err, &code):
			p, known = Problem{Status: http.StatusUnprocessableEntity, Title: "invalid request", Code: "ledger_refused"}, true
		case errors.Is(err, core.ErrClosed), errors.Is(err, core.ErrJournalFailed):
			return Problem{Status: http.StatusServiceUnavailable, Title: "unavailable", Code: "unavailable"}, false
		default:
			return Problem{Status: http.StatusInternalServerError, Title: "internal error", Code: "internal_error"}, false
		}
	}
	p.Detail = err.Error()
	var lim interface {
		LimitBroken() (field, limit, value string)
	}
	if errors.As(err, &lim) {
		p.Field, p.Limit, p.Value = lim.LimitBroken()
	}
	return p, true
}

// statusOf is classify's status and title, and whether it knows err.
func statusOf(err error) (int, string, bool) {
	p, known := classify(err)
	return p.Status, p.Title, known
}

// haltDetail says what is halted, since when and why, with the asset's
// code, and never who halted it: a customer is shown this (the console and
// GET /v1/controls say who).
func (s *Server) haltDetail(h controls.Halt) string {
	var sw string
	s.core.Read(func(st *core.State) { sw = switchText(st, h.Switch) })
	if h.Switch.Service == controls.Global {
		sw = "everything"
	}
	return fmt.Sprintf("%s is halted since %s: %s", sw, time.Unix(0, h.Since).UTC().Format(time.RFC3339), h.Reason)
}

// limitError is a refusal of the API's own for a bound.
type limitError struct {
	err                 error
	field, limit, value string
}

func (e *limitError) Error() string { return e.err.Error() }
func (e *limitError) Unwrap() error { return e.err }

// LimitBroken names the input, the bound and the value.
func (e *limitError) LimitBroken() (field, limit, value string) { return e.field, e.limit, e.value }
