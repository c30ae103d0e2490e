package ledger

import "fmt"

// Code is the result of one event (an asset, account or transfer) in a
// command. Every non-OK code is also an error value callers can test with
// errors.Is, in the manner of btcd's txscript.ErrorCode.
type Code uint8

// Result codes. The order is part of the journal's meaning: a code is decided
// by apply and never stored, so renumbering is safe, but the checks that
// produce them run in the order listed in apply.go.
const (
	OK Code = iota
	// Exists means the event was already applied with the same fields: a
	// retry, answered with the first result.
	Exists
	ErrLinkedEventFailed
	ErrLinkedEventChainOpen
	ErrIDZero
	ErrExistsWithDifferentFields
	ErrFlagsInvalid
	ErrAssetUnknown
	ErrAssetCodeInvalid
	ErrAssetCodeTaken
	ErrAssetDecimalsInvalid
	ErrAssetClassInvalid
	ErrAssetDisabled
	ErrCustomerUnknown
	ErrOwnerInvalid
	ErrKindInvalid
	ErrDebitAccountUnknown
	ErrCreditAccountUnknown
	ErrAccountsSame
	ErrAssetMismatch
	ErrAmountZero
	ErrOverflow
	ErrExceedsCredits
	ErrExceedsDebits
	ErrPendingUnknown
	ErrPendingNotPending
	ErrPendingAlreadyPosted
	ErrPendingAlreadyVoided
	ErrPendingAccountsDiffer
	ErrPostExceedsPending
	ErrBatchTooLarge
	ErrBatchEmpty
	codeCount
)

var codeText = [...]string{
	OK:                           "ok",
	Exists:                       "exists",
	ErrLinkedEventFailed:         "linked event failed",
	ErrLinkedEventChainOpen:      "linked event chain open at the end of the batch",
	ErrIDZero:                    "id must not be zero",
	ErrExistsWithDifferentFields: "id exists with different fields",
	ErrFlagsInvalid:              "flags invalid",
	ErrAssetUnknown:              "asset unknown",
	ErrAssetCodeInvalid:          "asset code must be 1-10 characters A-Z 0-9",
	ErrAssetCodeTaken:            "asset code taken by another asset",
	ErrAssetDecimalsInvalid:      "asset decimals must be 0-30",
	ErrAssetClassInvalid:         "asset class invalid",
	ErrAssetDisabled:             "asset not enabled",
	ErrCustomerUnknown:           "customer unknown",
	ErrOwnerInvalid:              "owner invalid for the account kind",
	ErrKindInvalid:               "account kind invalid",
	ErrDebitAccountUnknown:       "debit account unknown",
	ErrCreditAccountUnknown:      "credit account unknown",
	ErrAccountsSame:              "debit and credit accounts are the same",
	ErrAssetMismatch:             "accounts hold different assets",
	ErrAmountZero:                "amount must be positive",
	ErrOverflow:                  "amount overflows 128 bits",
	ErrExceedsCredits:            "debit would exceed the account's credits (overdraft)",
	ErrExceedsDebits:             "credit would exceed the wallet or receivable account's debits",
	ErrPendingUnknown:            "pending transfer unknown",
	ErrPendingNotPending:         "referenced transfer is not pending",
	ErrPendingAlreadyPosted:      "pending transfer already posted",
	ErrPendingAlreadyVoided:      "pending transfer already voided",
	ErrPendingAccountsDiffer:     "accounts or asset differ from the pending transfer",
	ErrPostExceedsPending:        "posted amount exceeds the pending amount",
	ErrBatchTooLarge:             "batch too large",
	ErrBatchEmpty:                "batch empty",
}

// Error returns the code's text.
func (c Code) Error() string {
	if int(c) < len(codeText) {
		return codeText[c]
	}
	return fmt.Sprintf("ledger code %d", uint8(c))
}

// String returns the code's text.
func (c Code) String() string { return c.Error() }

// Succeeded reports whether the event is in effect: applied now or before.
func (c Code) Succeeded() bool { return c == OK || c == Exists }

// Result is the outcome of one event of a batch that did not simply succeed.
// Batch results list only these, in index order, as TigerBeetle does.
type Result struct {
	Index uint32
	Code  Code
}

// EventError is one event's failure as an error with its place in the batch.
type EventError struct {
	Index uint32
	Code  Code
}

func (e *EventError) Error() string { return fmt.Sprintf("event %d: %s", e.Index, e.Code) }

// Unwrap lets errors.Is match the Code.
func (e *EventError) Unwrap() error { return e.Code }
