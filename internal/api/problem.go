package api

import (
	"encoding/json"
	"errors"
	"net/http"

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

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func writeProblem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(Problem{Type: "about:blank", Title: title, Status: status, Detail: detail})
}

// statusOf maps an error from below to an HTTP status and a title fit for
// the outside. Errors it does not know are internal: their detail stays in
// the log (Vault's ConvertToExternalError).
func statusOf(err error) (int, string, bool) {
	var le *ledger.EventError
	var code ledger.Code
	switch {
	case errors.Is(err, core.ErrCommandInvalid), errors.Is(err, people.ErrInvalid), errors.As(err, &le), errors.As(err, &code):
		return http.StatusUnprocessableEntity, "invalid request", true
	case errors.Is(err, withdraw.ErrBadSignature), errors.Is(err, withdraw.ErrKeyUnknown), errors.Is(err, withdraw.ErrKeyCooling),
		errors.Is(err, withdraw.ErrAddressUnknown), errors.Is(err, withdraw.ErrAddressCooling), errors.Is(err, withdraw.ErrExpired),
		errors.Is(err, withdraw.ErrIntent), errors.Is(err, core.ErrNotVerified),
		errors.Is(err, core.ErrAssetNotListed), errors.Is(err, custody.ErrAssetUnknown):
		return http.StatusUnprocessableEntity, "withdrawal refused", true
	case errors.Is(err, withdraw.ErrDuplicateRequest), errors.Is(err, withdraw.ErrKeyExists), errors.Is(err, withdraw.ErrAddressExists):
		return http.StatusConflict, "conflict", true
	case errors.Is(err, people.ErrNotAuthorized), errors.Is(err, people.ErrWrongRole), errors.Is(err, people.ErrSelfApproval),
		errors.Is(err, people.ErrSubject), errors.Is(err, core.ErrTwoPerson), errors.Is(err, people.ErrEnrolCode):
		return http.StatusForbidden, "forbidden", true
	case errors.Is(err, people.ErrAssertion), errors.Is(err, people.ErrKeyUnknown), errors.Is(err, people.ErrNoKey), errors.Is(err, errSignatureRequired):
		return http.StatusForbidden, "signature refused", true
	case errors.Is(err, compensation.ErrUnknown):
		return http.StatusNotFound, "not found", true
	case errors.Is(err, compensation.ErrExists), errors.Is(err, compensation.ErrNotDraft), errors.Is(err, compensation.ErrNotApproved),
		errors.Is(err, compensation.ErrExecuted), errors.Is(err, compensation.ErrOutOfOrder):
		return http.StatusConflict, "conflict", true
	case errors.Is(err, compensation.ErrInvalid), errors.Is(err, compensation.ErrIncomplete), errors.Is(err, compensation.ErrRateAbsurd),
		errors.Is(err, compensation.ErrPayoutsOrder):
		return http.StatusUnprocessableEntity, "invalid request", true
	case errors.Is(err, people.ErrReplayed), errors.Is(err, people.ErrKeyExists), errors.Is(err, people.ErrBootstrapped), errors.Is(err, people.ErrNotBootstrapped):
		return http.StatusConflict, "conflict", true
	case errors.Is(err, people.ErrLocked):
		return http.StatusTooManyRequests, "locked", true
	case errors.Is(err, people.ErrFrozen):
		return http.StatusForbidden, "withdrawals frozen", true
	case errors.Is(err, people.ErrNotFresh):
		return http.StatusForbidden, "log in again", true
	case errors.Is(err, people.ErrNotFrozen), errors.Is(err, people.ErrNoticeUnknown), errors.Is(err, withdraw.ErrNotAwaiting):
		return http.StatusConflict, "conflict", true
	case errors.Is(err, core.ErrCredsCooling), errors.Is(err, withdraw.ErrBound):
		return http.StatusUnprocessableEntity, "withdrawal refused", true
	case errors.Is(err, withdraw.ErrUnknown), errors.Is(err, people.ErrSessionUnknown):
		return http.StatusNotFound, "not found", true
	case errors.Is(err, people.ErrEmailTaken), errors.Is(err, people.ErrCustomerExists), errors.Is(err, people.ErrOperatorExists),
		errors.Is(err, people.ErrRequestExists), errors.Is(err, people.ErrRequestClosed), errors.Is(err, people.ErrRequestExpired),
		errors.Is(err, people.ErrTOTPReplayed), errors.Is(err, controls.ErrNotHalted), errors.Is(err, people.ErrAssetNotProposed),
		errors.Is(err, people.ErrReviewMissing), errors.Is(err, controls.ErrOutOfPlan), errors.Is(err, controls.ErrPlanActive):
		return http.StatusConflict, "conflict", true
	case errors.Is(err, controls.ErrSwitchInvalid), errors.Is(err, controls.ErrPlanInvalid), errors.Is(err, controls.ErrNoReason),
		errors.Is(err, controls.ErrNoActor), errors.Is(err, errSwitchText):
		return http.StatusUnprocessableEntity, "invalid request", true
	case errors.Is(err, controls.ErrSelfApproval):
		return http.StatusForbidden, "forbidden", true
	case errors.Is(err, people.ErrCustomerUnknown), errors.Is(err, people.ErrOperatorUnknown), errors.Is(err, people.ErrRequestUnknown),
		errors.Is(err, custody.ErrWalletUnknown):
		return http.StatusNotFound, "not found", true
	case errors.Is(err, trading.ErrUnknownMarket), errors.Is(err, trading.ErrUnknownOrder), errors.Is(err, trading.ErrQuoteUnknown):
		return http.StatusNotFound, "not found", true
	case errors.Is(err, trading.ErrNotOwner):
		return http.StatusForbidden, "forbidden", true
	case errors.Is(err, trading.ErrInsufficient), errors.Is(err, trading.ErrNotVerified), errors.Is(err, trading.ErrExposure),
		errors.Is(err, trading.ErrNoReference), errors.Is(err, trading.ErrDealerDisabled), errors.Is(err, trading.ErrQuoteExpired),
		errors.Is(err, trading.ErrOrderTooLarge), errors.As(err, new(market.Code)):
		return http.StatusUnprocessableEntity, "order refused", true
	case errors.Is(err, trading.ErrNeedsApproval):
		return http.StatusForbidden, "a second operator must approve this", true
	case errors.Is(err, trading.ErrClientID), errors.Is(err, trading.ErrQuoteUsed), errors.Is(err, trading.ErrMarketExists),
		errors.Is(err, trading.ErrQuoteStale):
		return http.StatusConflict, "conflict", true
	case errors.Is(err, trading.ErrListing):
		return http.StatusUnprocessableEntity, "invalid request", true
	case errors.Is(err, incident.ErrUnknown):
		return http.StatusNotFound, "not found", true
	case errors.Is(err, core.ErrFuture), errors.Is(err, core.ErrBeforeJournal):
		return http.StatusUnprocessableEntity, "invalid request", true
	case errors.Is(err, controls.ErrHalted):
		return http.StatusServiceUnavailable, "halted", true
	case errors.Is(err, core.ErrClosed), errors.Is(err, core.ErrJournalFailed):
		return http.StatusServiceUnavailable, "unavailable", false
	}
	if st, title, ok := yenStatusOf(err); ok {
		return st, title, true
	}
	return http.StatusInternalServerError, "internal error", false
}
