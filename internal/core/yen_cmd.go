package core

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"kinko/internal/controls"
	"kinko/internal/custody"
	"kinko/internal/incident"
	"kinko/internal/ledger"
	"kinko/internal/people"
	"kinko/internal/withdraw"
	"kinko/internal/yen"
	"kinko/internal/yen/bankcode"
	"kinko/internal/yen/zengin"
)

// Command kinds of yen (docs/yen.md).
const (
	KindYenSetup             Kind = 160
	KindYenSetKana           Kind = 161
	KindYenAssignVirtual     Kind = 162
	KindYenBankCredits       Kind = 163
	KindYenReviewDeposit     Kind = 164
	KindYenRegisterAccount   Kind = 165
	KindYenRemoveAccount     Kind = 166
	KindYenRequestWithdrawal Kind = 167
	KindYenWriteBatch        Kind = 168
	KindYenBatchWritten      Kind = 169
	KindYenSettle            Kind = 170
	KindYenPaymentRequest    Kind = 171
	KindYenPaymentEvents     Kind = 172
	KindYenSettlement        Kind = 173
	KindYenReconcile         Kind = 174
	KindYenFundTrust         Kind = 175
	KindYenInstructionSent   Kind = 176
)

func init() {
	for k, n := range map[Kind]string{
		KindYenSetup: "yen_setup", KindYenSetKana: "yen_set_kana", KindYenAssignVirtual: "yen_assign_virtual", KindYenBankCredits: "yen_bank_credits",
		KindYenReviewDeposit: "yen_review_deposit", KindYenRegisterAccount: "yen_register_bank_account", KindYenRemoveAccount: "yen_remove_bank_account",
		KindYenRequestWithdrawal: "yen_request_withdrawal", KindYenWriteBatch: "yen_write_batch", KindYenBatchWritten: "yen_batch_written",
		KindYenSettle: "yen_settle", KindYenPaymentRequest: "yen_payment_request", KindYenPaymentEvents: "yen_payment_events",
		KindYenSettlement: "yen_settlement", KindYenReconcile: "yen_reconcile", KindYenFundTrust: "yen_fund_trust", KindYenInstructionSent: "yen_instruction_sent",
	} {
		kindNames[k] = n
	}
}

// YenSetup journals the yen configuration once (the core's host): the
// trust and operating bank accounts, the virtual account range, the fee
// and the thresholds. It opens the ledger's yen accounts.
//
// Master, if not empty, is the bank and branch code master's canonical
// encoding (bankcode.Master.Encode), whose hash is the Config's
// BankMasterSHA256: apply checks the trust and operating accounts, the
// virtual branch and every customer's bank account against it. It is in
// the journal, not read from a file, so that a replay checks against the
// master the setup was given.
type YenSetup struct {
	Config yen.Config
	Master string `json:",omitempty"`
}

// YenSetKana records a customer's name in kana as KYC verified it; an
// operator gives it. Bank accounts and senders are compared with it.
type YenSetKana struct {
	Customer ledger.OwnerID
	Name     string
	Actor    string
	Reason   string
}

// YenAssignVirtual gives a verified customer their virtual account number
// (振込入金口座). The Outcome's Value is the number (string).
type YenAssignVirtual struct{ Customer ledger.OwnerID }

// BankCredit is one movement of the trust account the bank told of: a
// transfer to a virtual account, or (Instruction set) the bank carrying
// out an instruction kinko gave.
type BankCredit struct {
	// TxID is the bank's id of the movement: "<account>-<照会番号>".
	TxID string
	// Account is the virtual account number the transfer was sent to.
	Account string `json:",omitempty"`
	Amount  uint64
	Sender  string `json:",omitempty"`
	// Source is "statement" or "notice".
	Source string
	// Instruction names the instruction this movement carries out.
	Instruction string `json:",omitempty"`
}

// YenBankCredits records movements of the trust account from the bank's
// statement or notices, each once by its TxID: a transfer to a customer's
// virtual account from the customer's own name is credited; one from
// another name (第三者入金), to an unknown virtual account, past the
// deposit limit, or while bank deposits are halted, is held (recorded in
// suspense) for review or the lift. The Outcome's Value is []string, each
// item's result.
type YenBankCredits struct{ Items []BankCredit }

// YenReviewDeposit releases a held deposit to its customer ("credit") or
// sends it back to the sender ("return"). An operator gives it directly up
// to the configured threshold; above it, only an approved
// yen_review_deposit request does.
type YenReviewDeposit struct {
	TxID   string
	Action string // "credit" or "return"
	Actor  string
	Reason string
}

// YenRegisterAccount registers a customer's own bank account for yen
// withdrawals, usable after the cool-down.
type YenRegisterAccount struct {
	Customer ledger.OwnerID
	Account  zengin.Account
}

// YenRemoveAccount removes a registered bank account; withdrawals waiting
// to it are rejected.
type YenRemoveAccount struct {
	Customer ledger.OwnerID
	Key      string
}

// YenRequestWithdrawal asks for yen to the customer's registered account.
// It goes through the withdrawal policy (withdraw.Rules) as a crypto
// withdrawal does. The Outcome's Value is the withdraw.Withdrawal.
type YenRequestWithdrawal struct {
	Customer  ledger.OwnerID
	RequestID string
	Account   string // the registered account's key
	Amount    uint64
}

// YenWriteBatch puts the queued yen withdrawals (at most Max, 0 for
// yen.MaxBatch) into one transfer file for the given transfer date. The
// Outcome's Value is the *yen.Batch with the file's hash.
type YenWriteBatch struct {
	ID         string
	Month, Day int
	Max        int `json:",omitempty"`
}

// YenBatchWritten records that a batch's file was written to the bank's
// drop directory, with its hash; a second one is refused, so a file is
// given to the bank once.
type YenBatchWritten struct {
	ID   string
	Hash string
}

// PayoutResult is the bank's result of one payout.
type PayoutResult struct {
	Number uint64
	Result string // "done", "rejected" (振込不能), "returned" (組戻し)
}

// YenSettle applies the bank's results of a batch (the result file or
// notices): done posts the hold; rejected voids it; returned voids it or,
// if it was paid, credits it back. The customer is told. The Outcome's
// Value is []string, each result's outcome.
type YenSettle struct {
	Batch   string
	Results []PayoutResult
}

// YenPaymentRequest records a payment request the provider issued for a
// customer (a pay-easy or convenience-store number with its expiry, or a
// card charge).
type YenPaymentRequest struct{ Payment yen.Payment }

// ProviderEvent is one of the provider's notifications.
type ProviderEvent struct {
	ID      string // the provider's event id: each is applied once
	Payment string
	Type    string // "paid", "refunded", "chargeback", "expired"
	Amount  uint64
}

// YenPaymentEvents applies the provider's notifications. The Outcome's
// Value is []string, each event's outcome.
type YenPaymentEvents struct{ Events []ProviderEvent }

// YenSettlement is the provider's settlement of a channel: the payments it
// pays into the trust account and their total. The total is reconciled
// against what was credited for them: a difference past the tolerance
// halts the channel and opens an incident. The payment into the trust
// account is awaited as an instruction (posted when the statement shows
// it).
type YenSettlement struct {
	ID       string
	Channel  controls.Service
	Payments []string
	Total    uint64
}

// YenReconcile reconciles a statement of the trust account: the bank's
// closing balance against the trust account's posted balance in the
// ledger. A difference past the tolerance halts bank deposits and opens an
// incident. The Outcome's Value is the yen.Reconciliation.
type YenReconcile struct {
	Statement string // the statement's name: account and dates
	Closing   int64
}

// YenFundTrust journals a bank instruction moving house yen from the
// operating account into the trust account (compensation in yen does it
// by itself at the plan's approval). An operator gives it.
type YenFundTrust struct {
	ID     string
	Amount uint64
	Actor  string
	Reason string
}

// YenInstructionSent records that the bank connector gave the bank an
// instruction.
type YenInstructionSent struct{ ID string }

func (YenSetup) Kind() Kind             { return KindYenSetup }
func (YenSetKana) Kind() Kind           { return KindYenSetKana }
func (YenAssignVirtual) Kind() Kind     { return KindYenAssignVirtual }
func (YenBankCredits) Kind() Kind       { return KindYenBankCredits }
func (YenReviewDeposit) Kind() Kind     { return KindYenReviewDeposit }
func (YenRegisterAccount) Kind() Kind   { return KindYenRegisterAccount }
func (YenRemoveAccount) Kind() Kind     { return KindYenRemoveAccount }
func (YenRequestWithdrawal) Kind() Kind { return KindYenRequestWithdrawal }
func (YenWriteBatch) Kind() Kind        { return KindYenWriteBatch }
func (YenBatchWritten) Kind() Kind      { return KindYenBatchWritten }
func (YenSettle) Kind() Kind            { return KindYenSettle }
func (YenPaymentRequest) Kind() Kind    { return KindYenPaymentRequest }
func (YenPaymentEvents) Kind() Kind     { return KindYenPaymentEvents }
func (YenSettlement) Kind() Kind        { return KindYenSettlement }
func (YenReconcile) Kind() Kind         { return KindYenReconcile }
func (YenFundTrust) Kind() Kind         { return KindYenFundTrust }
func (YenInstructionSent) Kind() Kind   { return KindYenInstructionSent }

func (c YenSetup) AppendPayload(b []byte) []byte             { return appendJSON(b, c) }
func (c YenSetKana) AppendPayload(b []byte) []byte           { return appendJSON(b, c) }
func (c YenAssignVirtual) AppendPayload(b []byte) []byte     { return appendJSON(b, c) }
func (c YenReviewDeposit) AppendPayload(b []byte) []byte     { return appendJSON(b, c) }
func (c YenRegisterAccount) AppendPayload(b []byte) []byte   { return appendJSON(b, c) }
func (c YenRemoveAccount) AppendPayload(b []byte) []byte     { return appendJSON(b, c) }
func (c YenRequestWithdrawal) AppendPayload(b []byte) []byte { return appendJSON(b, c) }
func (c YenWriteBatch) AppendPayload(b []byte) []byte        { return appendJSON(b, c) }
func (c YenBatchWritten) AppendPayload(b []byte) []byte      { return appendJSON(b, c) }
func (c YenSettle) AppendPayload(b []byte) []byte            { return appendJSON(b, c) }
func (c YenPaymentRequest) AppendPayload(b []byte) []byte    { return appendJSON(b, c) }
func (c YenPaymentEvents) AppendPayload(b []byte) []byte     { return appendJSON(b, c) }
func (c YenSettlement) AppendPayload(b []byte) []byte        { return appendJSON(b, c) }
func (c YenReconcile) AppendPayload(b []byte) []byte         { return appendJSON(b, c) }
func (c YenFundTrust) AppendPayload(b []byte) []byte         { return appendJSON(b, c) }
func (c YenInstructionSent) AppendPayload(b []byte) []byte   { return appendJSON(b, c) }

func decodeYen(kind Kind, p []byte) (Command, bool, error) {
	var c Command
	var err error
	switch kind {
	case KindYenSetup:
		c, err = decodeJSON[YenSetup](p)
	case KindYenSetKana:
		c, err = decodeJSON[YenSetKana](p)
	case KindYenAssignVirtual:
		c, err = decodeJSON[YenAssignVirtual](p)
	case KindYenBankCredits:
		var bc YenBankCredits
		bc, err = decodeCredits(p)
		if err == nil {
			err = checkCredits(bc)
		}
		c = bc
	case KindYenReviewDeposit:
		c, err = decodeJSON[YenReviewDeposit](p)
	case KindYenRegisterAccount:
		c, err = decodeJSON[YenRegisterAccount](p)
	case KindYenRemoveAccount:
		c, err = decodeJSON[YenRemoveAccount](p)
	case KindYenRequestWithdrawal:
		c, err = decodeJSON[YenRequestWithdrawal](p)
	case KindYenWriteBatch:
		c, err = decodeJSON[YenWriteBatch](p)
	case KindYenBatchWritten:
		c, err = decodeJSON[YenBatchWritten](p)
	case KindYenSettle:
		c, err = decodeJSON[YenSettle](p)
		if err == nil && (len(c.(YenSettle).Results) == 0 || len(c.(YenSettle).Results) > yen.MaxItems) {
			err = invalid("yen_settle: 1 to %d results", yen.MaxItems)
		}
	case KindYenPaymentRequest:
		c, err = decodeJSON[YenPaymentRequest](p)
	case KindYenPaymentEvents:
		c, err = decodeJSON[YenPaymentEvents](p)
		if err == nil && (len(c.(YenPaymentEvents).Events) == 0 || len(c.(YenPaymentEvents).Events) > yen.MaxItems) {
			err = invalid("yen_payment_events: 1 to %d events", yen.MaxItems)
		}
	case KindYenSettlement:
		c, err = decodeJSON[YenSettlement](p)
	case KindYenReconcile:
		c, err = decodeJSON[YenReconcile](p)
	case KindYenFundTrust:
		c, err = decodeJSON[YenFundTrust](p)
	case KindYenInstructionSent:
		c, err = decodeJSON[YenInstructionSent](p)
	default:
		return nil, false, nil
	}
	return c, true, err
}

// AppendPayload encodes the credits compactly (statements carry up to
// hundreds of thousands): u32 count, then per item a flag byte (bit 0 a
// notice, else a statement), the amount (u64) and four strings, each u16
// length and bytes: TxID, Account, Sender, Instruction. The encoding is
// canonical: a payload decodes only if it re-encodes to itself.
func (c YenBankCredits) AppendPayload(b []byte) []byte {
	b = le.AppendUint32(b, uint32(len(c.Items)))
	for _, it := range c.Items {
		var f byte
		if it.Source == "notice" {
			f = 1
		}
		b = append(b, f)
		b = le.AppendUint64(b, it.Amount)
		for _, s := range []string{it.TxID, it.Account, it.Sender, it.Instruction} {
			b = le.AppendUint16(b, uint16(len(s)))
			b = append(b, s...)
		}
	}
	return b
}

func decodeCredits(p []byte) (YenBankCredits, error) {
	if len(p) < 4 {
		return YenBankCredits{}, invalid("yen_bank_credits: no count")
	}
	n := int(le.Uint32(p))
	p = p[4:]
	if n == 0 || n > yen.MaxItems || len(p) < n*(1+8+8) {
		return YenBankCredits{}, invalid("yen_bank_credits: %d items (1 to %d) in %d bytes", n, yen.MaxItems, len(p))
	}
	c := YenBankCredits{Items: make([]BankCredit, n)}
	// One string holds every field: the items' strings are slices of it
	// (one allocation a command, not four an item).
	all := string(p)
	off := 0
	for i := range c.Items {
		if len(p) < 9 {
			return YenBankCredits{}, invalid("yen_bank_credits: item %d truncated", i)
		}
		it := &c.Items[i]
		switch p[0] {
		case 0:
			it.Source = "statement"
		case 1:
			it.Source = "notice"
		default:
			return YenBankCredits{}, invalid("yen_bank_credits: item %d: flags %d", i, p[0])
		}
		it.Amount = le.Uint64(p[1:])
		p, off = p[9:], off+9
		for _, dst := range []*string{&it.TxID, &it.Account, &it.Sender, &it.Instruction} {
			if len(p) < 2 || len(p) < 2+int(le.Uint16(p)) {
				return YenBankCredits{}, invalid("yen_bank_credits: item %d truncated", i)
			}
			l := int(le.Uint16(p))
			if l > yen.MaxText || !utf8.Valid(p[2:2+l]) {
				return YenBankCredits{}, invalid("yen_bank_credits: item %d: a field too long or not UTF-8", i)
			}
			*dst = all[off+2 : off+2+l]
			p, off = p[2+l:], off+2+l
		}
	}
	if len(p) != 0 {
		return YenBankCredits{}, invalid("yen_bank_credits: %d trailing bytes", len(p))
	}
	return c, nil
}

// checkCredits refuses, before the journal, a credits command that could
// never apply: no items, too many, an amount of zero, an id or text out of
// bounds.
func checkCredits(c YenBankCredits) error {
	if len(c.Items) == 0 || len(c.Items) > yen.MaxItems {
		return invalid("yen_bank_credits: 1 to %d items", yen.MaxItems)
	}
	for i, it := range c.Items {
		switch {
		case it.TxID == "" || len(it.TxID) > yen.MaxText:
			return invalid("yen_bank_credits: item %d: transaction id", i)
		case it.Amount == 0:
			return invalid("yen_bank_credits: item %d: amount of zero", i)
		case it.Source != "statement" && it.Source != "notice":
			return invalid("yen_bank_credits: item %d: source %q", i, it.Source)
		case len(it.Sender) > yen.MaxText || len(it.Account) > 16 || len(it.Instruction) > yen.MaxText:
			return invalid("yen_bank_credits: item %d: field too long", i)
		}
	}
	return nil
}

// Ledger codes of yen movements.
const (
	CodeYenDeposit     = 160 // trust <- a customer's transfer
	CodeYenSuspense    = 161 // trust <- a held deposit; suspense -> customer at release
	CodeYenReturn      = 162 // suspense -> trust, back to the sender
	CodeYenWithdrawal  = 163 // held -> trust at a payout's result
	CodeYenFee         = 164 // held -> house, the withdrawal fee
	CodeYenRefund      = 165 // trust -> customer, a 組戻し after payment
	CodeYenProvider    = 166 // provider -> customer, a paid payment
	CodeYenReversal    = 167 // customer (or receivable) -> provider, a refund or chargeback
	CodeYenSettlement  = 168 // trust <- provider
	CodeYenInstruction = 169 // trust <- operating
)

// yenID is the ledger id of a yen movement named by tag.
func yenID(tag string) ledger.ID {
	h := sha256.Sum256([]byte("yen:" + tag))
	return ledger.ID{Hi: 0xE0<<56 | binary.BigEndian.Uint64(h[:8])>>8, Lo: binary.BigEndian.Uint64(h[8:16])}
}

// yenNotice kinds: what customers are told about their yen.
const (
	NoticeYenBankAccount     people.NoticeKind = "yen_bank_account"
	NoticeYenBankAccountGone people.NoticeKind = "yen_bank_account_removed"
	NoticeYenHeld            people.NoticeKind = "yen_deposit_held"
	NoticeYenWithdrawal      people.NoticeKind = "yen_withdrawal"
	NoticeYenReversal        people.NoticeKind = "yen_payment_reversed"
)

// KindYenReview is the request kind that releases or returns a held
// deposit above the two-person threshold.
const KindYenReview people.RequestKind = "yen_review_deposit"

// YenReviewPayload is its payload.
type YenReviewPayload struct {
	TxID   string `json:"txid"`
	Action string `json:"action"`
}

// Errors of yen commands beyond the yen package's.
var (
	ErrYenTwoPerson = errors.New("yen: above the threshold a deposit is released or returned through a two-person request")
)

type yenAccounts struct {
	asset                      ledger.Asset
	trust, operating, suspense ledger.AccountKey
}

func (s *State) yenAccts() (yenAccounts, error) {
	cfg := s.Yen.Config
	if cfg == nil {
		return yenAccounts{}, yen.ErrNotSetUp
	}
	a, _ := s.Ledger.AssetByCode(cfg.Asset)
	return yenAccounts{asset: a,
		trust:     ledger.AccountKey{Owner: yen.OwnerTrust, Asset: a.ID, Kind: ledger.KindWallet},
		operating: ledger.AccountKey{Owner: yen.OwnerOperating, Asset: a.ID, Kind: ledger.KindWallet},
		suspense:  ledger.AccountKey{Owner: yen.OwnerSuspense, Asset: a.ID, Kind: ledger.KindHouse},
	}, nil
}

func (y yenAccounts) provider(ch controls.Service) ledger.AccountKey {
	o, _ := yen.ProviderOwner(ch)
	return ledger.AccountKey{Owner: o, Asset: y.asset.ID, Kind: ledger.KindWallet}
}

// yenTransfers applies transfers that cannot fail unless an invariant is
// broken, or returns the first failure.
func (s *State) yenTransfers(ts []ledger.Transfer, t int64) error {
	for len(ts) > 0 {
		n := min(len(ts), ledger.MaxBatch)
		// A linked chain is never split: cut before its start.
		for n < len(ts) && n > 0 && ts[n-1].Flags&ledger.FlagLinked != 0 {
			n--
		}
		res := s.Ledger.CreateTransfers(ts[:n], t, nil)
		for _, r := range res {
			if !r.Code.Succeeded() {
				return &ledger.EventError{Index: r.Index, Code: r.Code}
			}
		}
		ts = ts[n:]
	}
	return nil
}

func (s *State) isOperator(name string) bool {
	_, ok := s.People.Operator(name)
	return ok
}

func (s *State) applyYen(cmd Command, t int64) (bool, any, error) {
	switch c := cmd.(type) {
	case YenSetup:
		return true, nil, s.yenSetup(c)
	case YenSetKana:
		if !s.isOperator(c.Actor) {
			return true, nil, people.ErrOperatorUnknown
		}
		if _, ok := s.People.Customer(c.Customer); !ok {
			return true, nil, people.ErrCustomerUnknown
		}
		n, err := zengin.Normalize(c.Name)
		if err != nil || n == "" || len(n) > 90 {
			return true, nil, fmt.Errorf("%w: kana name: %v", yen.ErrInvalid, err)
		}
		if b, _ := zengin.Encode(n); len(b) > 30 {
			return true, nil, fmt.Errorf("%w: kana name longer than the 30 characters of a transfer record", yen.ErrInvalid)
		}
		s.Yen.SetKana(yen.Kana{Customer: uint64(c.Customer), Name: n, Actor: c.Actor})
		return true, nil, nil
	case YenAssignVirtual:
		if s.Yen.Config == nil {
			return true, nil, yen.ErrNotSetUp
		}
		if !s.People.CanTrade(c.Customer) {
			return true, nil, ErrNotVerified
		}
		n, err := s.Yen.AssignVirtual(uint64(c.Customer))
		return true, n, err
	case YenBankCredits:
		v, err := s.yenBankCredits(c, t)
		return true, v, err
	case YenReviewDeposit:
		if !s.isOperator(c.Actor) {
			return true, nil, people.ErrOperatorUnknown
		}
		d, ok := s.Yen.Deposit(c.TxID)
		if ok && s.Yen.Config != nil && d.Amount > s.Yen.Config.ReviewTwoPersonAbove {
			return true, nil, ErrYenTwoPerson
		}
		return true, nil, s.yenReview(c.TxID, c.Action, c.Actor, c.Reason, t)
	case YenRegisterAccount:
		return true, nil, s.yenRegister(c, t)
	case YenRemoveAccount:
		if err := s.Yen.RemoveBankAccount(uint64(c.Customer), c.Key); err != nil {
			return true, nil, err
		}
		s.rejectWaiting(c.Customer, func(wd withdraw.Withdrawal) bool { return wd.Intent.Address == "bank:"+c.Key }, "its bank account was removed", t)
		s.People.Notify(c.Customer, NoticeYenBankAccountGone, "the bank account "+c.Key+" was removed", t, s.seq)
		return true, nil, nil
	case YenRequestWithdrawal:
		rec, err := s.yenWithdrawal(c, t)
		return true, rec, err
	case YenWriteBatch:
		b, err := s.yenWriteBatch(c, t)
		return true, b, err
	case YenBatchWritten:
		b, ok := s.Yen.Batch(c.ID)
		if !ok {
			return true, nil, yen.ErrBatchUnknown
		}
		if b.Written {
			return true, nil, fmt.Errorf("%w: batch %s's file was already given to the bank", yen.ErrExists, c.ID)
		}
		if b.Hash != c.Hash {
			return true, nil, fmt.Errorf("%w: file hash %s is not batch %s's %s", yen.ErrInvalid, c.Hash, c.ID, b.Hash)
		}
		b.Written = true
		return true, nil, nil
	case YenSettle:
		v, err := s.yenSettle(c, t)
		return true, v, err
	case YenPaymentRequest:
		return true, nil, s.yenPaymentRequest(c.Payment, t)
	case YenPaymentEvents:
		v, err := s.yenPaymentEvents(c, t)
		return true, v, err
	case YenSettlement:
		v, err := s.yenSettlement(c, t)
		return true, v, err
	case YenReconcile:
		v, err := s.yenReconcile(c, t)
		return true, v, err
	case YenFundTrust:
		if !s.isOperator(c.Actor) {
			return true, nil, people.ErrOperatorUnknown
		}
		return true, nil, s.yenFundTrust(c.ID, c.Amount, c.Actor, c.Reason, t)
	case YenInstructionSent:
		in, ok := s.Yen.Instruction(c.ID)
		if !ok {
			return true, nil, fmt.Errorf("%w: unknown instruction %s", yen.ErrInstruction, c.ID)
		}
		in.Sent = true
		return true, nil, nil
	}
	return false, nil, nil
}

func (s *State) yenSetup(c YenSetup) error {
	if s.Yen.Config != nil {
		return yen.ErrSetUp
	}
	if err := c.Config.Check(); err != nil {
		return err
	}
	a, ok := s.Ledger.AssetByCode(c.Config.Asset)
	if !ok || a.Class != ledger.ClassFiat {
		return fmt.Errorf("%w: %s is not a fiat asset of the ledger", yen.ErrInvalid, c.Config.Asset)
	}
	cfg := c.Config
	m, err := yenMaster(&cfg, c.Master)
	if err != nil {
		return err
	}
	s.Yen.Config, s.Yen.Master = &cfg, m
	y, _ := s.yenAccts()
	keys := []ledger.AccountKey{y.trust, y.operating, y.suspense, {Owner: ledger.OwnerHouse, Asset: a.ID, Kind: ledger.KindHouse}}
	for _, ch := range yen.ProviderChannels {
		keys = append(keys, y.provider(ch))
	}
	s.ensureAccounts(keys...)
	return nil
}

// yenMaster reads the setup's bank master and checks the setup's own
// accounts, virtual branch and bank list against it, filling the
// accounts' bank and branch names in kana from it where empty. No master
// (both empty) is nil.
func yenMaster(cfg *yen.Config, enc string) (*bankcode.Master, error) {
	if enc == "" && cfg.BankMasterSHA256 == "" {
		return nil, nil
	}
	m, err := bankcode.Parse([]byte(enc))
	if err != nil {
		return nil, fmt.Errorf("%w: bank master: %w", yen.ErrInvalid, err)
	}
	if string(m.Encode()) != enc {
		return nil, fmt.Errorf("%w: bank master: not in its canonical encoding", yen.ErrInvalid)
	}
	if h := m.Hash(); h != cfg.BankMasterSHA256 {
		return nil, fmt.Errorf("%w: bank master: its SHA-256 is %s, the setup names %q", yen.ErrInvalid, h, cfg.BankMasterSHA256)
	}
	for _, x := range []struct {
		what string
		a    *zengin.Account
	}{{"trust account", &cfg.Trust}, {"operating account", &cfg.Operating}} {
		b, br, err := m.Lookup(x.a.Bank, x.a.Branch)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", yen.ErrInvalid, x.what, err)
		}
		if x.a.BankName == "" {
			x.a.BankName = b.Kana
		}
		if x.a.BranchName == "" {
			x.a.BranchName = br.Kana
		}
	}
	if _, _, err := m.Lookup(cfg.Trust.Bank, cfg.VirtualBranch); err != nil {
		return nil, fmt.Errorf("%w: virtual branch: %w", yen.ErrInvalid, err)
	}
	for _, code := range cfg.Banks {
		if _, ok := m.Bank(code); !ok {
			return nil, fmt.Errorf("%w: banks: %w: bank %q", yen.ErrInvalid, bankcode.ErrUnknownBank, code)
		}
	}
	return m, nil
}

// senderMatches tells whether a transfer's sender is the customer: the
// name registered at KYC, in Zengin form, spaces ignored. Banks may put
// the sender's customer code or the virtual account before the name; only
// the name is compared.
func (s *State) senderMatches(customer uint64, sender string) bool {
	k, ok := s.Yen.KanaOf(customer)
	if !ok {
		return false
	}
	if sender == k {
		return true // already in Zengin form, as banks write it
	}
	return zengin.SameName(k, sender)
}

func (s *State) yenBankCredits(c YenBankCredits, t int64) ([]string, error) {
	y, err := s.yenAccts()
	if err != nil {
		return nil, err
	}
	cfg := s.Yen.Config
	halted := s.Controls.Allowed(0, controls.Bank) != nil || s.Controls.Allowed(y.asset.ID, controls.Deposit) != nil
	out := make([]string, len(c.Items))
	ts := s.out[:0]
	var credited []uint64
	for i, it := range c.Items {
		if it.Instruction != "" {
			out[i] = s.yenConfirmInstruction(it, &ts)
			continue
		}
		if d, ok := s.Yen.Deposit(it.TxID); ok {
			if d.Amount != it.Amount || d.Account != it.Account || d.Channel != controls.Bank {
				out[i] = "conflict: id already recorded with other fields"
			} else {
				out[i] = "duplicate"
			}
			continue
		}
		d := yen.Deposit{TxID: it.TxID, Channel: controls.Bank, Account: it.Account, Amount: it.Amount, Sender: it.Sender, Source: it.Source, Time: t, Seq: s.seq}
		cust, known := s.Yen.Owner(it.Account)
		switch {
		case !known:
			d.Status, d.Hold = yen.DepositHeld, yen.HoldUnknownAccount
		case halted:
			d.Customer, d.Status, d.Hold = cust, yen.DepositHeld, yen.HoldHalted
		case it.Amount > cfg.DepositMax:
			d.Customer, d.Status, d.Hold = cust, yen.DepositHeld, yen.HoldOverLimit
		case !s.senderMatches(cust, it.Sender):
			d.Customer, d.Status, d.Hold = cust, yen.DepositHeld, yen.HoldThirdParty
		default:
			d.Customer, d.Status = cust, yen.DepositCredited
		}
		credit := y.suspense
		code := uint16(CodeYenSuspense)
		if d.Status == yen.DepositCredited {
			credit = ledger.AccountKey{Owner: ledger.OwnerID(cust), Asset: y.asset.ID, Kind: ledger.KindAvailable}
			code = CodeYenDeposit
			credited = append(credited, cust)
			out[i] = "credited"
		} else {
			out[i] = "held: " + d.Hold
		}
		ts = append(ts, ledger.Transfer{ID: yenID("deposit:" + it.TxID), Debit: y.trust, Credit: credit, Amount: ledger.AmountOf(it.Amount), Code: code})
		s.Yen.AddDeposit(d)
		if d.Status == yen.DepositHeld && d.Customer != 0 && d.Hold != yen.HoldHalted {
			s.People.Notify(ledger.OwnerID(d.Customer), NoticeYenHeld, fmt.Sprintf("a bank transfer of %d yen from %q is held for review (%s)", d.Amount, d.Sender, d.Hold), t, s.seq)
		}
	}
	s.yenEnsureCustomers(credited, y.asset.ID)
	err = s.yenTransfers(ts, t)
	s.out = ts[:0]
	if err != nil {
		// INVARIANT: a debit of the trust wallet and a credit of a
		// liability cannot fail.
		panic(fmt.Sprintf("core: yen credits failed: %v", err))
	}
	s.yenRepay(credited, y.asset.ID, t)
	return out, nil
}

// yenEnsureCustomers opens the yen accounts of customers credited.
func (s *State) yenEnsureCustomers(cs []uint64, asset ledger.AssetID) {
	for _, c := range cs {
		k := ledger.AccountKey{Owner: ledger.OwnerID(c), Asset: asset, Kind: ledger.KindAvailable}
		if _, ok := s.Ledger.Account(k); !ok {
			s.Ledger.CreateAccounts([]ledger.AccountKey{k, {Owner: ledger.OwnerID(c), Asset: asset, Kind: ledger.KindHeld}}, nil)
		}
	}
}

// yenRepay repays, from yen just credited, what the customers owe in yen
// (a charged-back card payment), as crypto deposits repay what is owed.
func (s *State) yenRepay(cs []uint64, asset ledger.AssetID, t int64) {
	for _, c := range cs {
		if custody.Owed(s.Ledger, ledger.OwnerID(c), asset) > 0 {
			s.Custody.RepayOwed(s.Ledger, ledger.OwnerID(c), asset, yenID(fmt.Sprintf("repay:%d:%d", s.seq, c)), t)
		}
	}
}

// yenConfirmInstruction posts the pending transfer of an instruction the
// bank carried out.
func (s *State) yenConfirmInstruction(it BankCredit, ts *[]ledger.Transfer) string {
	in, ok := s.Yen.Instruction(it.Instruction)
	switch {
	case !ok:
		return "conflict: unknown instruction " + it.Instruction
	case in.Done:
		return "duplicate"
	case in.Amount != it.Amount:
		return fmt.Sprintf("conflict: instruction %s is of %d yen, the bank moved %d", in.ID, in.Amount, it.Amount)
	}
	in.Done, in.DoneSeq = true, s.seq
	if in.Amount > in.Excess {
		*ts = append(*ts, ledger.Transfer{ID: yenID("instr-post:" + in.ID), PendingID: yenID("instr:" + in.ID), Flags: ledger.FlagPostPending, Code: CodeYenInstruction})
	}
	if in.Excess > 0 {
		*ts = append(*ts, ledger.Transfer{ID: yenID("instr-excess-post:" + in.ID), PendingID: yenID("instr-excess:" + in.ID), Flags: ledger.FlagPostPending, Code: CodeYenInstruction})
	}
	if in.Kind == yen.InstrReturn {
		if d, ok := s.Yen.Deposit(in.Deposit); ok {
			d.Status = yen.DepositReturned
		}
	}
	return "instruction " + in.ID + " done"
}

// yenInstruct journals an instruction and its pending ledger transfer.
func (s *State) yenInstruct(in yen.Instruction, debit, credit ledger.AccountKey, t int64) error {
	if in.ID == "" || len(in.ID) > 20 || strings.ToUpper(in.ID) != in.ID {
		return fmt.Errorf("%w: id must be 1 to 20 capital letters, digits or dashes (it travels in the EDI field)", yen.ErrInstruction)
	}
	if _, err := zengin.Encode(in.ID); err != nil {
		return fmt.Errorf("%w: id: %w", yen.ErrInstruction, err)
	}
	if _, ok := s.Yen.Instruction(in.ID); ok {
		return fmt.Errorf("%w: id %s is taken", yen.ErrInstruction, in.ID)
	}
	if in.Amount == 0 {
		return yen.ErrAmount
	}
	var ts []ledger.Transfer
	if main := in.Amount - in.Excess; main > 0 {
		ts = append(ts, ledger.Transfer{ID: yenID("instr:" + in.ID), Debit: debit, Credit: credit, Amount: ledger.AmountOf(main), Flags: ledger.FlagPending, Code: CodeYenInstruction})
	}
	if in.Excess > 0 {
		// More than the other side holds for us: received, and nobody's
		// until someone looks (the reconciliation has flagged it).
		y, _ := s.yenAccts()
		ts = append(ts, ledger.Transfer{ID: yenID("instr-excess:" + in.ID), Debit: debit, Credit: y.suspense, Amount: ledger.AmountOf(in.Excess), Flags: ledger.FlagPending, Code: CodeYenInstruction})
	}
	if err := s.yenTransfers(ts, t); err != nil {
		return fmt.Errorf("%w: %w", yen.ErrInstruction, err)
	}
	in.Time, in.Seq = t, s.seq
	s.Yen.AddInstruction(in)
	return nil
}

func (s *State) yenFundTrust(id string, amount uint64, actor, reason string, t int64) error {
	y, err := s.yenAccts()
	if err != nil {
		return err
	}
	if a, ok := s.Ledger.Account(y.operating); !ok || a.Available().Cmp(ledger.AmountOf(amount)) < 0 {
		have := ledger.Amount{}
		if ok {
			have = a.Available()
		}
		return fmt.Errorf("%w: the operating account holds %s yen, %d are to move into the trust", yen.ErrInstruction, have, amount)
	}
	return s.yenInstruct(yen.Instruction{ID: id, Kind: yen.InstrFundTrust, Amount: amount, Reason: reason, Actor: actor}, y.trust, y.operating, t)
}

// yenReview releases or returns a held deposit.
func (s *State) yenReview(txid, action, actor, reason string, t int64) error {
	y, err := s.yenAccts()
	if err != nil {
		return err
	}
	d, ok := s.Yen.Deposit(txid)
	if !ok {
		return yen.ErrDepositUnknown
	}
	if d.Status != yen.DepositHeld {
		return yen.ErrNotHeld
	}
	if !people.ValidText(reason) {
		return fmt.Errorf("%w: reason", yen.ErrInvalid)
	}
	switch action {
	case "credit":
		if d.Customer == 0 {
			return fmt.Errorf("%w: a deposit to an unknown virtual account can only be returned", yen.ErrInvalid)
		}
		if err := s.yenRelease(d, y, t); err != nil {
			return err
		}
	case "return":
		id := fmt.Sprintf("R%d", s.seq)
		if err := s.yenInstruct(yen.Instruction{ID: id, Kind: yen.InstrReturn, Amount: d.Amount, Deposit: d.TxID, Reason: reason, Actor: actor}, y.suspense, y.trust, t); err != nil {
			return err
		}
		d.Status = yen.DepositReturning
	default:
		return fmt.Errorf("%w: action %q (credit or return)", yen.ErrInvalid, action)
	}
	d.Reviewer, d.Note = actor, reason
	return nil
}

func (s *State) yenRelease(d *yen.Deposit, y yenAccounts, t int64) error {
	s.yenEnsureCustomers([]uint64{d.Customer}, y.asset.ID)
	from := y.suspense
	if d.Channel != controls.Bank {
		from = y.provider(d.Channel)
	}
	tr := ledger.Transfer{ID: yenID("release:" + d.TxID), Debit: from, Credit: ledger.AccountKey{Owner: ledger.OwnerID(d.Customer), Asset: y.asset.ID, Kind: ledger.KindAvailable},
		Amount: ledger.AmountOf(d.Amount), Code: CodeYenSuspense}
	if d.Channel != controls.Bank {
		tr.Code = CodeYenProvider
		if p, ok := s.Yen.Payment(d.TxID); ok {
			p.Credited = true
		}
	}
	if err := s.yenTransfers([]ledger.Transfer{tr}, t); err != nil {
		return err
	}
	d.Status = yen.DepositCredited
	s.yenRepay([]uint64{d.Customer}, y.asset.ID, t)
	return nil
}

// yenAfterLift credits what waited for a lifted channel: bank deposits
// that arrived while bank deposits were halted, or provider payments of
// the channel.
func (s *State) yenAfterLift(sw controls.Switch, t int64) {
	y, err := s.yenAccts()
	if err != nil {
		return
	}
	if s.Controls.Allowed(y.asset.ID, controls.Deposit) != nil {
		return
	}
	for _, d := range s.Yen.Deposits(func(d *yen.Deposit) bool { return d.Status == yen.DepositHeld && d.Hold == yen.HoldHalted }, 0) {
		if s.Controls.Allowed(0, d.Channel) != nil {
			continue
		}
		dp, _ := s.Yen.Deposit(d.TxID)
		if d.Channel == controls.Bank && !s.senderMatches(d.Customer, d.Sender) {
			dp.Hold = yen.HoldThirdParty
			continue
		}
		if d.Channel == controls.Bank && d.Amount > s.Yen.Config.DepositMax {
			dp.Hold = yen.HoldOverLimit
			continue
		}
		if err := s.yenRelease(dp, y, t); err != nil {
			panic(fmt.Sprintf("core: crediting deposit %s after the lift: %v", d.TxID, err))
		}
	}
}

func (s *State) yenRegister(c YenRegisterAccount, t int64) error {
	cfg := s.Yen.Config
	if cfg == nil {
		return yen.ErrNotSetUp
	}
	if !s.People.CanTrade(c.Customer) {
		return ErrNotVerified
	}
	a := c.Account
	if err := a.CheckCodes(); err != nil {
		return fmt.Errorf("%w: %w", yen.ErrBankAccount, err)
	}
	if a.Type != zengin.Ordinary && a.Type != zengin.Current && a.Type != zengin.Savings {
		return fmt.Errorf("%w: account type %d (普通 1, 当座 2, 貯蓄 4)", yen.ErrBankAccount, a.Type)
	}
	if m := s.Yen.Master; m != nil {
		b, br, err := m.Lookup(a.Bank, a.Branch)
		if err != nil {
			return fmt.Errorf("%w: %w", yen.ErrBankAccount, err)
		}
		// The master's names, as the transfer file writes them.
		a.BankName, a.BranchName = b.Kana, br.Kana
	}
	if len(cfg.Banks) > 0 {
		known := false
		for _, b := range cfg.Banks {
			known = known || b == a.Bank
		}
		if !known {
			return fmt.Errorf("%w: bank code %s is not in the bank directory", yen.ErrBankAccount, a.Bank)
		}
	}
	for _, f := range []struct{ name, v string }{{"bank name", a.BankName}, {"branch name", a.BranchName}} {
		if b, err := zengin.Encode(f.v); err != nil || len(b) > 15 {
			return fmt.Errorf("%w: %s %q: Zengin characters, at most 15", yen.ErrBankAccount, f.name, f.v)
		}
	}
	name, err := zengin.Normalize(a.Name)
	if err != nil {
		return fmt.Errorf("%w: holder name %q: %w", yen.ErrBankAccount, a.Name, err)
	}
	if b, _ := zengin.Encode(name); len(b) == 0 || len(b) > 30 {
		return fmt.Errorf("%w: holder name: 1 to 30 characters in half-width kana", yen.ErrBankAccount)
	}
	k, ok := s.Yen.KanaOf(uint64(c.Customer))
	if !ok {
		return yen.ErrNoKana
	}
	if !zengin.SameName(k, name) {
		return fmt.Errorf("%w: %q is not %q", yen.ErrNameMismatch, name, k)
	}
	a.Name = name
	if err := s.Yen.AddBankAccount(yen.BankAccount{Customer: uint64(c.Customer), Account: a, Added: t}); err != nil {
		return err
	}
	s.People.Notify(c.Customer, NoticeYenBankAccount, "a bank account for yen withdrawals "+a.Key()+" ("+name+") was registered", t, s.seq)
	return nil
}

// yenInFile is the withdrawal status of a yen withdrawal in a transfer
// file given to the bank: no longer waiting, so a freeze or removal no
// longer voids it.
const yenInFile withdraw.Status = "in_bank_file"

func (s *State) yenWithdrawal(c YenRequestWithdrawal, t int64) (withdraw.Withdrawal, error) {
	w := s.Withdraw
	y, err := s.yenAccts()
	if err != nil {
		return withdraw.Withdrawal{}, err
	}
	cfg := s.Yen.Config
	if !s.People.CanTrade(c.Customer) {
		return withdraw.Withdrawal{}, ErrNotVerified
	}
	if f := s.People.Frozen(c.Customer); f != nil {
		return withdraw.Withdrawal{}, fmt.Errorf("%w since entry %d (%s)", people.ErrFrozen, f.Seq, f.By)
	}
	if cu, _ := s.People.Customer(c.Customer); cu.Creds.Changed != 0 && t < cu.Creds.Changed+w.CoolDown() {
		return withdraw.Withdrawal{}, ErrCredsCooling
	}
	if c.RequestID == "" || len(c.RequestID) > withdraw.MaxRequestID {
		return withdraw.Withdrawal{}, fmt.Errorf("%w: request id", yen.ErrInvalid)
	}
	id := fmt.Sprintf("%d:%s", c.Customer, c.RequestID)
	if _, dup := w.Get(id); dup {
		return withdraw.Withdrawal{}, withdraw.ErrDuplicateRequest
	}
	acct, ok := s.Yen.BankAccount(uint64(c.Customer), c.Account)
	if !ok {
		return withdraw.Withdrawal{}, yen.ErrBankUnknown
	}
	if t < acct.Added+w.CoolDown() {
		return withdraw.Withdrawal{}, yen.ErrBankCooling
	}
	if c.Amount == 0 || c.Amount > zengin.MaxTransferAmount {
		return withdraw.Withdrawal{}, yen.ErrAmount
	}
	rec := withdraw.Withdrawal{ID: id, Customer: uint64(c.Customer), Time: t,
		Intent: withdraw.Intent{RequestID: c.RequestID, Asset: cfg.Asset, Address: "bank:" + c.Account, Amount: withdraw.AmountOf(c.Amount)}}
	decision, reason := w.Rules.Evaluate(withdraw.Request{Customer: uint64(c.Customer), Asset: cfg.Asset, Address: rec.Intent.Address, Amount: withdraw.AmountOf(c.Amount), Time: t,
		Decimals: y.asset.Decimals, Fiat: true}, withdrawView{s})
	if decision == withdraw.Deny {
		rec.Status, rec.Reason = withdraw.StatusRejected, reason
		w.Add(rec)
		return rec, nil
	}
	total := c.Amount + cfg.Fee
	hid := holdID(rec.ID)
	held := ledger.AccountKey{Owner: c.Customer, Asset: y.asset.ID, Kind: ledger.KindHeld}
	s.yenEnsureCustomers([]uint64{uint64(c.Customer)}, y.asset.ID)
	hold := ledger.Transfer{ID: hid, Debit: ledger.AccountKey{Owner: c.Customer, Asset: y.asset.ID, Kind: ledger.KindAvailable}, Credit: held,
		Amount: ledger.AmountOf(total), Flags: ledger.FlagPending, Code: CodeWithdrawal}
	if res := s.Ledger.CreateTransfers([]ledger.Transfer{hold}, t, nil); len(res) > 0 && !res[0].Code.Succeeded() {
		return withdraw.Withdrawal{}, fmt.Errorf("yen: %d yen and the fee of %d: %w", c.Amount, cfg.Fee, &ledger.EventError{Index: 0, Code: res[0].Code})
	}
	rec.HoldHi, rec.HoldLo = hid.Hi, hid.Lo
	rec.Status = withdraw.StatusQueued
	if decision == withdraw.NeedsApproval {
		rec.Status, rec.Reason = withdraw.StatusAwaitingApproval, reason
	}
	w.Add(rec)
	s.Yen.AddPayout(yen.Payout{Withdrawal: rec.ID, Customer: uint64(c.Customer), To: acct.Account, Amount: c.Amount, Fee: cfg.Fee})
	return rec, nil
}

func (s *State) yenWriteBatch(c YenWriteBatch, t int64) (*yen.Batch, error) {
	y, err := s.yenAccts()
	if err != nil {
		return nil, err
	}
	if err := s.Controls.Allowed(0, controls.Bank); err != nil {
		return nil, fmt.Errorf("yen: bank transfers wait: %w", err)
	}
	if err := s.Controls.Allowed(y.asset.ID, controls.Withdraw); err != nil {
		return nil, fmt.Errorf("yen: withdrawals wait: %w", err)
	}
	if c.ID == "" || len(c.ID) > 64 {
		return nil, fmt.Errorf("%w: batch id", yen.ErrInvalid)
	}
	if _, ok := s.Yen.Batch(c.ID); ok {
		return nil, fmt.Errorf("%w: batch %s", yen.ErrExists, c.ID)
	}
	if !(zengin.Date{Year: 2000, Month: c.Month, Day: c.Day}).Valid() {
		return nil, fmt.Errorf("%w: transfer date %02d%02d", yen.ErrInvalid, c.Month, c.Day)
	}
	max := c.Max
	if max <= 0 || max > yen.MaxBatch {
		max = yen.MaxBatch
	}
	b := yen.Batch{ID: c.ID, Month: c.Month, Day: c.Day, Time: t}
	var ids []string
	s.Yen.EachPayout(func(p *yen.Payout) bool {
		if p.Batch != "" {
			return true
		}
		wd, ok := s.Withdraw.Get(p.Withdrawal)
		if !ok || wd.Status != withdraw.StatusQueued {
			return true
		}
		if b.Total+p.Amount > zengin.MaxTransferTotal {
			return false
		}
		b.Payouts = append(b.Payouts, p.Number)
		b.Total += p.Amount
		ids = append(ids, p.Withdrawal)
		return len(b.Payouts) < max
	})
	if len(b.Payouts) == 0 {
		return nil, yen.ErrNothingQueued
	}
	b.Count = len(b.Payouts)
	_, hash, err := s.Yen.FileBytes(&b, nil)
	if err != nil {
		return nil, err
	}
	b.Hash = hash
	for i, n := range b.Payouts {
		p, _ := s.Yen.Payout(n)
		p.Batch = c.ID
		s.Withdraw.SetStatus(ids[i], yenInFile, "in transfer file "+c.ID)
	}
	s.Yen.AddBatch(b)
	nb, _ := s.Yen.Batch(c.ID)
	return nb, nil
}

func (s *State) yenSettle(c YenSettle, t int64) ([]string, error) {
	y, err := s.yenAccts()
	if err != nil {
		return nil, err
	}
	b, ok := s.Yen.Batch(c.Batch)
	if !ok {
		return nil, yen.ErrBatchUnknown
	}
	out := make([]string, len(c.Results))
	var ts []ledger.Transfer
	house := ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: y.asset.ID, Kind: ledger.KindHouse}
	for i, r := range c.Results {
		p, ok := s.Yen.Payout(r.Number)
		if !ok || p.Batch != c.Batch {
			out[i] = fmt.Sprintf("conflict: payout %d is not in batch %s", r.Number, c.Batch)
			continue
		}
		wd, _ := s.Withdraw.Get(p.Withdrawal)
		held := ledger.AccountKey{Owner: ledger.OwnerID(p.Customer), Asset: y.asset.ID, Kind: ledger.KindHeld}
		avail := ledger.AccountKey{Owner: ledger.OwnerID(p.Customer), Asset: y.asset.ID, Kind: ledger.KindAvailable}
		pending := ledger.ID{Hi: wd.HoldHi, Lo: wd.HoldLo}
		switch {
		case r.Result == "done" && p.Result == 0:
			ts = append(ts,
				ledger.Transfer{ID: yenID("post:" + p.Withdrawal), PendingID: pending, Flags: ledger.FlagPostPending | ledger.FlagLinked, Code: CodeWithdrawal},
				ledger.Transfer{ID: yenID("pay:" + p.Withdrawal), Debit: held, Credit: y.trust, Amount: ledger.AmountOf(p.Amount), Flags: ledger.FlagLinked, Code: CodeYenWithdrawal},
				ledger.Transfer{ID: yenID("fee:" + p.Withdrawal), Debit: held, Credit: house, Amount: ledger.AmountOf(p.Fee), Code: CodeYenFee})
			if p.Fee == 0 {
				ts = ts[:len(ts)-1]
				ts[len(ts)-1].Flags &^= ledger.FlagLinked
			}
			p.Result, b.Settled = zengin.ResultDone, b.Settled+1
			s.Withdraw.SetStatus(p.Withdrawal, withdraw.StatusDone, "paid by the bank")
			s.People.Notify(ledger.OwnerID(p.Customer), NoticeYenWithdrawal, fmt.Sprintf("%d yen were paid to %s", p.Amount, p.To.Key()), t, s.seq)
			out[i] = "done"
		case (r.Result == "rejected" || r.Result == "returned") && p.Result == 0:
			ts = append(ts, ledger.Transfer{ID: yenID("void:" + p.Withdrawal), PendingID: pending, Flags: ledger.FlagVoidPending, Code: CodeWithdrawal})
			p.Result, b.Settled = zengin.ResultRejected, b.Settled+1
			why := "the bank could not pay it (振込不能)"
			if r.Result == "returned" {
				p.Result, why = zengin.ResultReturned, "the bank returned it (組戻し)"
			}
			s.Withdraw.SetStatus(p.Withdrawal, withdraw.StatusFailed, why)
			s.People.Notify(ledger.OwnerID(p.Customer), NoticeYenWithdrawal, fmt.Sprintf("the withdrawal of %d yen to %s failed: %s; the yen is back in your balance", p.Amount, p.To.Key(), why), t, s.seq)
			out[i] = r.Result
		case r.Result == "returned" && p.Result == zengin.ResultDone && !p.Refunded:
			ts = append(ts, ledger.Transfer{ID: yenID("refund:" + p.Withdrawal), Debit: y.trust, Credit: avail, Amount: ledger.AmountOf(p.Amount), Code: CodeYenRefund})
			p.Refunded = true
			s.Withdraw.SetStatus(p.Withdrawal, withdraw.StatusFailed, "paid, then returned by the bank (組戻し)")
			s.People.Notify(ledger.OwnerID(p.Customer), NoticeYenWithdrawal, fmt.Sprintf("the %d yen paid to %s came back (組戻し) and are in your balance", p.Amount, p.To.Key()), t, s.seq)
			out[i] = "returned after payment"
		case (r.Result == "done" && p.Result == zengin.ResultDone) || (r.Result == "returned" && p.Refunded) ||
			(r.Result == "rejected" && p.Result == zengin.ResultRejected) || (r.Result == "returned" && p.Result == zengin.ResultReturned):
			out[i] = "duplicate"
		case r.Result != "done" && r.Result != "rejected" && r.Result != "returned":
			out[i] = fmt.Sprintf("conflict: result %q", r.Result)
		default:
			out[i] = fmt.Sprintf("conflict: payout %d already settled", r.Number)
		}
	}
	if err := s.yenTransfers(ts, t); err != nil {
		panic(fmt.Sprintf("core: settling batch %s: %v", c.Batch, err))
	}
	return out, nil
}

func (s *State) yenPaymentRequest(p yen.Payment, t int64) error {
	if _, err := s.yenAccts(); err != nil {
		return err
	}
	if _, ok := yen.ProviderOwner(p.Method); !ok {
		return fmt.Errorf("%w: method %q", yen.ErrInvalid, p.Method)
	}
	if err := s.Controls.Allowed(0, p.Method); err != nil {
		return err
	}
	if !s.People.CanTrade(ledger.OwnerID(p.Customer)) {
		return ErrNotVerified
	}
	if p.ID == "" || len(p.ID) > 64 || p.Number == "" || len(p.Number) > 64 {
		return fmt.Errorf("%w: payment id and number", yen.ErrInvalid)
	}
	if _, ok := s.Yen.Payment(p.ID); ok {
		return fmt.Errorf("%w: payment %s", yen.ErrExists, p.ID)
	}
	if p.Amount == 0 || p.Amount > s.Yen.Config.PaymentMax {
		return fmt.Errorf("%w: %d yen (1 to %d)", yen.ErrAmount, p.Amount, s.Yen.Config.PaymentMax)
	}
	if p.Expires <= t {
		return fmt.Errorf("%w: expiry in the past", yen.ErrInvalid)
	}
	p.Created, p.Status, p.Credited, p.Reversed, p.Owed, p.Settlement = t, yen.PaymentOpen, false, 0, 0, ""
	s.Yen.AddPayment(p)
	return nil
}

func (s *State) yenPaymentEvents(c YenPaymentEvents, t int64) ([]string, error) {
	y, err := s.yenAccts()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(c.Events))
	for i, ev := range c.Events {
		if ev.ID == "" || len(ev.ID) > yen.MaxText {
			out[i] = "conflict: event id"
			continue
		}
		if s.Yen.SeenEvent(ev.ID) {
			out[i] = "duplicate"
			continue
		}
		r, err := s.yenPaymentEvent(ev, y, t)
		if err != nil {
			out[i] = "conflict: " + err.Error()
			continue
		}
		s.Yen.AddEvent(ev.ID)
		out[i] = r
	}
	return out, nil
}

func (s *State) yenPaymentEvent(ev ProviderEvent, y yenAccounts, t int64) (string, error) {
	p, ok := s.Yen.Payment(ev.Payment)
	if !ok {
		return "", yen.ErrPaymentUnknown
	}
	prov := y.provider(p.Method)
	avail := ledger.AccountKey{Owner: ledger.OwnerID(p.Customer), Asset: y.asset.ID, Kind: ledger.KindAvailable}
	switch ev.Type {
	case "paid":
		if p.Status != yen.PaymentOpen {
			return "", fmt.Errorf("%w: %s is %s", yen.ErrPaymentState, p.ID, p.Status)
		}
		if ev.Amount != p.Amount {
			return "", fmt.Errorf("%w: paid %d, the request is of %d", yen.ErrAmount, ev.Amount, p.Amount)
		}
		p.Status = yen.PaymentPaid
		d := yen.Deposit{TxID: p.ID, Channel: p.Method, Customer: p.Customer, Amount: p.Amount, Source: "provider", Time: t, Seq: s.seq, Status: yen.DepositCredited}
		if s.Controls.Allowed(0, p.Method) != nil || s.Controls.Allowed(y.asset.ID, controls.Deposit) != nil {
			d.Status, d.Hold = yen.DepositHeld, yen.HoldHalted
			s.Yen.AddDeposit(d)
			return "held: " + yen.HoldHalted, nil
		}
		s.yenEnsureCustomers([]uint64{p.Customer}, y.asset.ID)
		if err := s.yenTransfers([]ledger.Transfer{{ID: yenID("paid:" + p.ID), Debit: prov, Credit: avail, Amount: ledger.AmountOf(p.Amount), Code: CodeYenProvider}}, t); err != nil {
			panic(fmt.Sprintf("core: crediting payment %s: %v", p.ID, err))
		}
		p.Credited = true
		s.Yen.AddDeposit(d)
		s.yenRepay([]uint64{p.Customer}, y.asset.ID, t)
		return "credited", nil
	case "expired":
		if p.Status != yen.PaymentOpen {
			return "", fmt.Errorf("%w: %s is %s", yen.ErrPaymentState, p.ID, p.Status)
		}
		p.Status = yen.PaymentReversed
		return "expired", nil
	case "refunded", "chargeback":
		if p.Method != controls.Card {
			return "", fmt.Errorf("%w: %s of a %s payment", yen.ErrPaymentState, ev.Type, p.Method)
		}
		if p.Status != yen.PaymentPaid && p.Status != yen.PaymentSettled {
			return "", fmt.Errorf("%w: %s is %s", yen.ErrPaymentState, p.ID, p.Status)
		}
		if ev.Amount == 0 || ev.Amount > p.Amount-p.Reversed {
			return "", fmt.Errorf("%w: %s of %d, %d left", yen.ErrAmount, ev.Type, ev.Amount, p.Amount-p.Reversed)
		}
		if !p.Credited {
			// Paid while halted, never credited: the reversal takes
			// nothing from the customer.
			if d, ok := s.Yen.Deposit(p.ID); ok && d.Status == yen.DepositHeld {
				d.Amount -= ev.Amount
				p.Reversed += ev.Amount
				if d.Amount == 0 {
					d.Status, p.Status = yen.DepositReturned, yen.PaymentReversed
				}
				return ev.Type + " of a payment not yet credited", nil
			}
		}
		// From the customer's available balance as far as it goes; the
		// rest is a receivable on the customer, never a negative balance.
		var have uint64
		if a, ok := s.Ledger.Account(avail); ok {
			have, _ = a.Available().Uint64()
		}
		take := min(have, ev.Amount)
		owed := ev.Amount - take
		var ts []ledger.Transfer
		if take > 0 {
			ts = append(ts, ledger.Transfer{ID: yenID(ev.Type + ":" + ev.ID), Debit: avail, Credit: prov, Amount: ledger.AmountOf(take), Code: CodeYenReversal})
		}
		if owed > 0 {
			recv := custody.ReceivableAccount(ledger.OwnerID(p.Customer), y.asset.ID)
			s.ensureAccounts(recv)
			ts = append(ts, ledger.Transfer{ID: yenID(ev.Type + "-owed:" + ev.ID), Debit: recv, Credit: prov, Amount: ledger.AmountOf(owed), Code: custody.CodeDepositOwed})
		}
		if err := s.yenTransfers(ts, t); err != nil {
			return "", err
		}
		p.Reversed += ev.Amount
		p.Owed += owed
		if p.Reversed == p.Amount {
			p.Status = yen.PaymentReversed
		}
		msg := fmt.Sprintf("the card payment %s of %d yen was %s: %d yen taken back", p.ID, p.Amount, map[bool]string{true: "charged back", false: "refunded"}[ev.Type == "chargeback"], ev.Amount)
		if owed > 0 {
			msg += fmt.Sprintf("; %d yen of it beyond your balance is owed", owed)
		}
		s.People.Notify(ledger.OwnerID(p.Customer), NoticeYenReversal, msg, t, s.seq)
		if owed > 0 {
			return fmt.Sprintf("%s: %d owed", ev.Type, owed), nil
		}
		return ev.Type, nil
	}
	return "", fmt.Errorf("%w: event type %q", yen.ErrInvalid, ev.Type)
}

// yenIncident halts a switch and opens an incident for a reconciliation
// difference.
func (s *State) yenIncident(rec *yen.Reconciliation, sw controls.Switch, t int64) {
	reason := fmt.Sprintf("yen reconciliation of %s (%s): outside %d, ledger %d, difference %d past the tolerance %d",
		rec.Channel, rec.What, rec.Outside, rec.Ledger, rec.Diff, s.Yen.Config.Tolerance)
	if changed, err := s.Controls.HaltSwitch(sw, "reconciliation", reason, t, s.seq); err == nil {
		rec.Halted = changed || s.Controls.Allowed(sw.Asset, sw.Service) != nil
	}
	id := fmt.Sprintf("yen-recon-%d", s.seq)
	if err := s.Incidents.Open(incident.Incident{ID: id, Asset: s.Yen.Config.Asset, Detector: "reconciliation", Reason: reason}, t, s.seq); err == nil {
		rec.Incident = id
	}
}

func absDiff(a, b int64) uint64 {
	if a > b {
		return uint64(a - b)
	}
	return uint64(b - a)
}

func (s *State) yenReconcile(c YenReconcile, t int64) (yen.Reconciliation, error) {
	y, err := s.yenAccts()
	if err != nil {
		return yen.Reconciliation{}, err
	}
	if c.Statement == "" || len(c.Statement) > yen.MaxText {
		return yen.Reconciliation{}, fmt.Errorf("%w: statement name", yen.ErrInvalid)
	}
	var bal int64
	if a, ok := s.Ledger.Account(y.trust); ok {
		v, _ := a.Balance().Uint64()
		bal = int64(v)
	}
	rec := yen.Reconciliation{Seq: s.seq, Time: t, Channel: controls.Bank, What: "statement " + c.Statement, Outside: c.Closing, Ledger: bal, Diff: c.Closing - bal}
	if absDiff(c.Closing, bal) > s.Yen.Config.Tolerance {
		s.yenIncident(&rec, controls.Switch{Service: controls.Bank}, t)
	}
	s.Yen.AddReconciliation(rec)
	return rec, nil
}

func (s *State) yenSettlement(c YenSettlement, t int64) (yen.Reconciliation, error) {
	y, err := s.yenAccts()
	if err != nil {
		return yen.Reconciliation{}, err
	}
	if _, ok := yen.ProviderOwner(c.Channel); !ok {
		return yen.Reconciliation{}, fmt.Errorf("%w: channel %q", yen.ErrInvalid, c.Channel)
	}
	if len(c.Payments) == 0 || len(c.Payments) > yen.MaxItems {
		return yen.Reconciliation{}, fmt.Errorf("%w: 1 to %d payments", yen.ErrInvalid, yen.MaxItems)
	}
	var credited uint64
	for _, id := range c.Payments {
		p, ok := s.Yen.Payment(id)
		if !ok || p.Method != c.Channel {
			return yen.Reconciliation{}, fmt.Errorf("%w: %s on %s", yen.ErrPaymentUnknown, id, c.Channel)
		}
		if p.Settlement != "" {
			return yen.Reconciliation{}, fmt.Errorf("%w: payment %s was settled in %s", yen.ErrExists, id, p.Settlement)
		}
		credited += p.Net()
	}
	rec := yen.Reconciliation{Seq: s.seq, Time: t, Channel: c.Channel, What: "settlement " + c.ID, Outside: int64(c.Total), Ledger: int64(credited), Diff: int64(c.Total) - int64(credited)}
	// What the provider pays into the trust account is awaited as an
	// instruction; the provider's wallet gives what it says it pays, at
	// most what it holds.
	if c.Total > 0 {
		amount := c.Total
		if a, ok := s.Ledger.Account(y.provider(c.Channel)); ok {
			if v, _ := a.Available().Uint64(); v < amount {
				amount = v
			}
		} else {
			amount = 0
		}
		in := yen.Instruction{ID: c.ID, Kind: yen.InstrSettlement, Amount: c.Total, Excess: c.Total - amount, Channel: string(c.Channel), Reason: "provider settlement", Actor: "provider"}
		if err := s.yenInstruct(in, y.trust, y.provider(c.Channel), t); err != nil {
			return yen.Reconciliation{}, err
		}
	}
	for _, id := range c.Payments {
		p, _ := s.Yen.Payment(id)
		p.Settlement = c.ID
		if p.Status == yen.PaymentPaid {
			p.Status = yen.PaymentSettled
		}
	}
	if absDiff(int64(c.Total), int64(credited)) > s.Yen.Config.Tolerance {
		s.yenIncident(&rec, controls.Switch{Service: c.Channel}, t)
	}
	s.Yen.AddReconciliation(rec)
	return rec, nil
}

// checkYenReview checks a yen_review_deposit request.
func (s *State) checkYenReview(r people.Request) error {
	var p YenReviewPayload
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		return fmt.Errorf("%w: payload: %v", people.ErrInvalid, err)
	}
	if r.RequiredRole != people.RoleApprover && r.RequiredRole != people.RoleAdmin {
		return fmt.Errorf("%w: held deposits are reviewed by an approver", people.ErrInvalid)
	}
	d, ok := s.Yen.Deposit(p.TxID)
	if !ok {
		return yen.ErrDepositUnknown
	}
	if d.Status != yen.DepositHeld {
		return yen.ErrNotHeld
	}
	if p.Action != "credit" && p.Action != "return" {
		return fmt.Errorf("%w: action %q", people.ErrInvalid, p.Action)
	}
	return nil
}

func (s *State) applyYenReview(r people.Request, t int64) error {
	var p YenReviewPayload
	json.Unmarshal(r.Payload, &p)
	return s.yenReview(p.TxID, p.Action, r.Requester+"+"+r.Decider, r.Reason, t)
}

// yenFundCompensation moves a yen plan's total from the operating account
// into the trust account, as a bank instruction, when the plan is
// approved: the yen behind the customers' new liabilities goes where
// customers' yen is kept.
func (s *State) yenFundCompensation(planID string, asset ledger.AssetID, total uint64, actor string, t int64) error {
	if s.Yen.Config == nil || total == 0 {
		return nil
	}
	y, _ := s.yenAccts()
	if y.asset.ID != asset {
		return nil
	}
	id := fmt.Sprintf("C%d", s.seq)
	return s.yenFundTrust(id, total, actor, "compensation plan "+planID, t)
}

// yenCanFund tells whether a yen plan's total can move from the operating
// account into the trust account now.
func (s *State) yenCanFund(asset ledger.AssetID, total uint64) error {
	if s.Yen.Config == nil || total == 0 {
		return nil
	}
	y, _ := s.yenAccts()
	if y.asset.ID != asset {
		return nil
	}
	if a, ok := s.Ledger.Account(y.operating); !ok || a.Available().Cmp(ledger.AmountOf(total)) < 0 {
		return fmt.Errorf("%w: the operating account does not hold the %d yen the plan pays", yen.ErrInstruction, total)
	}
	return nil
}

// KindYenBankMaster is the request kind that replaces the bank and branch
// code master of the yen setup (a bank opened or merged, a branch opened
// or closed): an admin asks with the new master, a second admin approves.
const KindYenBankMaster people.RequestKind = "yen_bank_master"

// YenBankMasterPayload is its payload: the new master in its canonical
// encoding (bankcode.Master.Encode) and that encoding's SHA-256, so that
// the approver signs the hash the requester saw.
type YenBankMasterPayload struct {
	Master string `json:"master"`
	SHA256 string `json:"sha256"`
}

// yenMasterOf checks a replacement master against the setup: canonical,
// of the hash named, and holding the trust and operating accounts, the
// virtual branch and the setup's banks. It answers the new master and
// the config that names it.
func (s *State) yenMasterOf(r people.Request) (*bankcode.Master, *yen.Config, error) {
	var p YenBankMasterPayload
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		return nil, nil, fmt.Errorf("%w: payload: %v", people.ErrInvalid, err)
	}
	if r.RequiredRole != people.RoleAdmin {
		return nil, nil, fmt.Errorf("%w: the bank master is replaced by two admins", people.ErrInvalid)
	}
	if s.Yen.Config == nil {
		return nil, nil, yen.ErrNotSetUp
	}
	if p.Master == "" {
		return nil, nil, fmt.Errorf("%w: bank master: empty", yen.ErrInvalid)
	}
	cfg := *s.Yen.Config
	cfg.BankMasterSHA256 = p.SHA256
	m, err := yenMaster(&cfg, p.Master)
	if err != nil {
		return nil, nil, err
	}
	return m, &cfg, nil
}

func (s *State) checkYenBankMaster(r people.Request) error {
	_, _, err := s.yenMasterOf(r)
	return err
}

// applyYenBankMaster replaces the master. Customers' bank accounts
// already registered stay as they were registered; new ones are checked
// against the new master.
func (s *State) applyYenBankMaster(r people.Request) error {
	m, cfg, err := s.yenMasterOf(r)
	if err != nil {
		return err
	}
	s.Yen.Config, s.Yen.Master = cfg, m
	return nil
}
