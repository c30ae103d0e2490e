// Package yen is the journaled state of customers' yen as it comes in and
// goes out: the bank accounts of the trust (顧客区分管理信託) and of the
// house, each customer's virtual account (振込入金口座), the deposits the
// bank and the payment provider told of, the bank accounts customers
// registered, the payouts batched into transfer files (総合振込), the
// provider's payment requests, the bank instructions kinko gave, and every
// reconciliation. It is part of the core's state: it changes only in the
// core's deterministic apply (internal/core, yen_cmd.go), which also moves
// the ledger; this package keeps the records and their indexes, and never
// ranges over a map.
package yen

import (
	"errors"
	"fmt"

	"kinko/internal/controls"
	"kinko/internal/ledger"
	"kinko/internal/yen/bankcode"
	"kinko/internal/yen/zengin"
)

// Owners of the exchange's yen accounts in the ledger.
const (
	// OwnerTrust owns the wallet account of the trust bank account:
	// customers' yen at the bank, apart from the house's.
	OwnerTrust = ledger.OwnerHouseMin + 200
	// OwnerOperating owns the wallet account of the house's operating
	// bank account: the house's own yen.
	OwnerOperating = ledger.OwnerHouseMin + 201
	// OwnerSuspense owns the house account of yen received and not yet
	// anyone's: deposits held for review (a third party's, an unknown
	// virtual account's, past the limit) or waiting for a halt's lift.
	OwnerSuspense = ledger.OwnerHouseMin + 202
	// OwnerProvider + i owns the wallet account of what the payment
	// provider holds for us on channel i of ProviderChannels (paid by
	// customers, not yet settled into the trust account).
	OwnerProvider = ledger.OwnerHouseMin + 210
)

// ProviderChannels are the channels of the payment provider.
var ProviderChannels = []controls.Service{controls.Card, controls.PayEasy, controls.Convenience}

// ProviderOwner returns the owner of a provider channel's wallet account.
func ProviderOwner(ch controls.Service) (ledger.OwnerID, bool) {
	for i, c := range ProviderChannels {
		if c == ch {
			return OwnerProvider + ledger.OwnerID(i), true
		}
	}
	return 0, false
}

// Errors of yen commands.
var (
	ErrNotSetUp         = errors.New("yen: the bank accounts are not set up")
	ErrSetUp            = errors.New("yen: the bank accounts are already set up")
	ErrInvalid          = errors.New("yen: invalid")
	ErrAccountUnknown   = errors.New("yen: unknown virtual account")
	ErrBankAccount      = errors.New("yen: bank account refused")
	ErrBankUnknown      = errors.New("yen: bank account not registered")
	ErrBankCooling      = errors.New("yen: bank account still in its cool-down")
	ErrNameMismatch     = errors.New("yen: the account holder's name is not the customer's registered name")
	ErrNoKana           = errors.New("yen: the customer has no registered name in kana (an operator records it at KYC)")
	ErrDepositUnknown   = errors.New("yen: deposit unknown")
	ErrNotHeld          = errors.New("yen: deposit is not held for review")
	ErrPaymentUnknown   = errors.New("yen: payment unknown")
	ErrPaymentState     = errors.New("yen: payment cannot take this event")
	ErrBatchUnknown     = errors.New("yen: batch unknown")
	ErrNothingQueued    = errors.New("yen: no yen withdrawal is queued")
	ErrExists           = errors.New("yen: id already used with other fields")
	ErrBound            = errors.New("yen: over a bound")
	ErrInstruction      = errors.New("yen: bank instruction refused")
	ErrAmount           = errors.New("yen: amount must be positive and within the limit")
	ErrVirtualExhausted = errors.New("yen: no virtual account number left")
)

// Bounds.
const (
	// MaxItems bounds the items of one command (deposits, events,
	// results), as a ledger batch.
	MaxItems = ledger.MaxBatch / 2
	// MaxBankAccounts bounds a customer's registered bank accounts.
	MaxBankAccounts = 8
	// MaxBatch bounds the payouts of one transfer file.
	MaxBatch = 100_000
	// MaxText bounds free text.
	MaxText = 256
)

// Config is the yen setup, journaled once by the core's host: the bank
// accounts and the numbers kinko works with.
type Config struct {
	// Asset is the ledger asset of yen, "JPY".
	Asset string `json:"asset"`
	// Trust is the trust bank account; Operating the house's account.
	Trust     zengin.Account `json:"trust"`
	Operating zengin.Account `json:"operating"`
	// RequesterCode and Requester are the 振込依頼人コード and name the
	// bank gave kinko for transfer files.
	RequesterCode string `json:"requester_code"`
	Requester     string `json:"requester"`
	// VirtualBranch, VirtualFirst and VirtualCount are the branch and
	// the range of numbers of the virtual accounts the bank assigned.
	VirtualBranch string `json:"virtual_branch"`
	VirtualFirst  uint64 `json:"virtual_first"`
	VirtualCount  uint64 `json:"virtual_count"`
	// Fee is the fee of one yen withdrawal (振込手数料), to the house.
	Fee uint64 `json:"fee"`
	// DepositMax: a single deposit above it is held for review.
	DepositMax uint64 `json:"deposit_max"`
	// PaymentMax bounds a card, pay-easy or convenience-store payment.
	PaymentMax uint64 `json:"payment_max"`
	// ReviewTwoPersonAbove: releasing or returning a held deposit above
	// it is a two-person request (yen_review_deposit).
	ReviewTwoPersonAbove uint64 `json:"review_two_person_above"`
	// Tolerance is the difference a reconciliation lets pass.
	Tolerance uint64 `json:"tolerance"`
	// Banks, if not empty, lists the bank codes a customer's account may
	// be at (of the bank master's, if there is one).
	Banks []string `json:"banks,omitempty"`
	// BankMasterSHA256 is the hex SHA-256 of the canonical encoding of
	// the bank master (bankcode.Master.Hash) journaled with the setup
	// (core.YenSetup.Master); empty: no master, codes checked for form
	// only.
	BankMasterSHA256 string `json:"bank_master_sha256,omitempty"`
}

// Check checks a configuration.
func (c *Config) Check() error {
	if c.Asset == "" {
		return fmt.Errorf("%w: asset", ErrInvalid)
	}
	for _, a := range []zengin.Account{c.Trust, c.Operating} {
		if err := a.CheckCodes(); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	if c.Trust.Key() == c.Operating.Key() {
		return fmt.Errorf("%w: the trust account and the operating account must differ", ErrInvalid)
	}
	if len(c.RequesterCode) != 10 {
		return fmt.Errorf("%w: requester code must be 10 digits", ErrInvalid)
	}
	if _, err := zengin.Encode(c.Requester); err != nil || c.Requester == "" || len(c.Requester) > 80 {
		return fmt.Errorf("%w: requester name: in Zengin characters, up to 40", ErrInvalid)
	}
	if len(c.VirtualBranch) != 3 || c.VirtualCount == 0 || c.VirtualFirst+c.VirtualCount > 10_000_000 {
		return fmt.Errorf("%w: virtual account range", ErrInvalid)
	}
	if c.DepositMax == 0 || c.PaymentMax == 0 || c.ReviewTwoPersonAbove == 0 {
		return fmt.Errorf("%w: deposit_max, payment_max and review_two_person_above must be set", ErrInvalid)
	}
	return nil
}

// DepositStatus is where an incoming payment stands.
type DepositStatus string

// Deposit states.
const (
	DepositCredited  DepositStatus = "credited"
	DepositHeld      DepositStatus = "held"
	DepositReturning DepositStatus = "returning"
	DepositReturned  DepositStatus = "returned"
)

// Reasons a deposit is held.
const (
	HoldThirdParty     = "third_party"     // 第三者入金: the sender is not the customer
	HoldUnknownAccount = "unknown_account" // no customer has the virtual account
	HoldOverLimit      = "over_limit"      // above DepositMax
	HoldHalted         = "halted"          // the channel was halted when it came
)

// Deposit is yen that came in: a bank transfer to a virtual account, or a
// provider's payment. TxID is the bank's or provider's id, so each is
// credited once.
type Deposit struct {
	TxID     string           `json:"txid"`
	Channel  controls.Service `json:"channel"`
	Account  string           `json:"account,omitempty"` // the virtual account number
	Customer uint64           `json:"customer,omitempty"`
	Amount   uint64           `json:"amount"`
	Sender   string           `json:"sender,omitempty"`
	Source   string           `json:"source"` // "statement", "notice", "provider"
	Time     int64            `json:"time"`
	Seq      uint64           `json:"seq"`
	Status   DepositStatus    `json:"status"`
	Hold     string           `json:"hold,omitempty"`
	// Reviewer and Note say who released or returned it, and why.
	Reviewer string `json:"reviewer,omitempty"`
	Note     string `json:"note,omitempty"`
}

// BankAccount is a customer's registered bank account.
type BankAccount struct {
	Customer uint64         `json:"customer"`
	Account  zengin.Account `json:"account"`
	Added    int64          `json:"added"`
}

// Payout is the yen side of a withdrawal: where it goes and its fee. Its
// Number is the 顧客コード1 of its transfer record.
type Payout struct {
	Withdrawal string         `json:"withdrawal"`
	Number     uint64         `json:"number"`
	Customer   uint64         `json:"customer"`
	To         zengin.Account `json:"to"`
	Amount     uint64         `json:"amount"`
	Fee        uint64         `json:"fee"`
	Batch      string         `json:"batch,omitempty"`
	// Result is the bank's result (zengin.Result*), 0 before it.
	Result byte `json:"result,omitempty"`
	// Refunded: a 組戻し after it was paid credited it back.
	Refunded bool `json:"refunded,omitempty"`
}

// Batch is a transfer file: payouts journaled together, written once.
type Batch struct {
	ID      string   `json:"id"`
	Payouts []uint64 `json:"payouts"`
	Count   int      `json:"count"`
	Total   uint64   `json:"total"`
	Month   int      `json:"month"`
	Day     int      `json:"day"`
	// Hash is the hex SHA-256 of the file's bytes, computed in apply from
	// the journaled batch: a file that differs is not this batch's.
	Hash    string `json:"hash"`
	Time    int64  `json:"time"`
	Written bool   `json:"written,omitempty"`
	Settled int    `json:"settled"`
}

// PaymentStatus is where a provider payment stands.
type PaymentStatus string

// Payment states.
const (
	PaymentOpen     PaymentStatus = "open"
	PaymentPaid     PaymentStatus = "paid"
	PaymentSettled  PaymentStatus = "settled"
	PaymentReversed PaymentStatus = "reversed" // refunded or charged back in full
)

// Payment is a customer's card, pay-easy or convenience-store payment
// request at the provider.
type Payment struct {
	ID       string           `json:"id"`
	Customer uint64           `json:"customer"`
	Method   controls.Service `json:"method"`
	Amount   uint64           `json:"amount"`
	// Number is the payment number the customer pays with (pay-easy,
	// convenience store), Expires its end (unix ns); a card charge has the
	// provider's charge id.
	Number   string        `json:"number"`
	Expires  int64         `json:"expires"`
	Created  int64         `json:"created"`
	Status   PaymentStatus `json:"status"`
	Credited bool          `json:"credited,omitempty"`
	Reversed uint64        `json:"reversed,omitempty"`
	// Owed is what a reversal took beyond the customer's balance: a
	// receivable on them.
	Owed       uint64 `json:"owed,omitempty"`
	Settlement string `json:"settlement,omitempty"`
}

// Net is what the payment leaves credited.
func (p *Payment) Net() uint64 {
	if !p.Credited {
		return 0
	}
	return p.Amount - p.Reversed
}

// Instruction is a bank instruction kinko gave: yen from one of its
// accounts to another (house yen into the trust), a held deposit sent
// back, or a provider's settlement awaited. Its ledger transfer is pending
// until the trust account's statement shows it (EDI information = ID).
type Instruction struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"` // "fund_trust", "return_deposit", "settlement"
	Amount uint64 `json:"amount"`
	// Excess is the part of a settlement beyond what the provider held
	// for us: it goes to suspense.
	Excess  uint64 `json:"excess,omitempty"`
	Deposit string `json:"deposit,omitempty"`
	Channel string `json:"channel,omitempty"`
	Reason  string `json:"reason"`
	Actor   string `json:"actor"`
	Time    int64  `json:"time"`
	Seq     uint64 `json:"seq"`
	Done    bool   `json:"done,omitempty"`
	DoneSeq uint64 `json:"done_seq,omitempty"`
	// Sent: the bank was given it (by the bank connector).
	Sent bool `json:"sent,omitempty"`
}

// Instruction kinds.
const (
	InstrFundTrust  = "fund_trust"
	InstrReturn     = "return_deposit"
	InstrSettlement = "settlement"
)

// Reconciliation is one check of the bank or the provider against the
// ledger.
type Reconciliation struct {
	Seq     uint64           `json:"seq"`
	Time    int64            `json:"time"`
	Channel controls.Service `json:"channel"`
	What    string           `json:"what"` // "statement <date>", "settlement <id>"
	Outside int64            `json:"outside"`
	Ledger  int64            `json:"ledger"`
	Diff    int64            `json:"diff"`
	Halted  bool             `json:"halted,omitempty"`
	// Incident is the incident opened for a difference.
	Incident string `json:"incident,omitempty"`
}

// State is the yen state.
type State struct {
	Config *Config
	// Master is the bank and branch code master journaled with the
	// setup, nil if none was.
	Master  *bankcode.Master
	kana    []Kana
	kanaIdx map[uint64]int
	virtual []Virtual
	vByCust map[uint64]int
	vByNum  map[string]int
	// deposits are kept in chunks of depositChunk that never move, so
	// that growth never copies them and pointers into them stay valid.
	deposits [][]Deposit
	nDeposit int
	dIdx     map[string]int
	accounts []BankAccount
	payouts  []Payout
	pByNum   map[uint64]int
	pByWd    map[string]int
	batches  []Batch
	bIdx     map[string]int
	payments []Payment
	payIdx   map[string]int
	events   []string
	evIdx    map[string]bool
	instrs   []Instruction
	iIdx     map[string]int
	recons   []Reconciliation
}

// Kana is a customer's name in kana as KYC verified it.
type Kana struct {
	Customer uint64 `json:"customer"`
	Name     string `json:"name"` // Zengin form (zengin.Normalize)
	Actor    string `json:"actor"`
}

// Virtual is a customer's virtual account.
type Virtual struct {
	Customer uint64 `json:"customer"`
	Number   string `json:"number"`
}

// New returns an empty state.
func New() *State {
	return &State{kanaIdx: map[uint64]int{}, vByCust: map[uint64]int{}, vByNum: map[string]int{}, dIdx: map[string]int{},
		pByNum: map[uint64]int{}, pByWd: map[string]int{}, bIdx: map[string]int{}, payIdx: map[string]int{}, evIdx: map[string]bool{}, iIdx: map[string]int{}}
}

// SetKana records a customer's kana name.
func (s *State) SetKana(k Kana) {
	if i, ok := s.kanaIdx[k.Customer]; ok {
		s.kana[i] = k
		return
	}
	s.kanaIdx[k.Customer] = len(s.kana)
	s.kana = append(s.kana, k)
}

// KanaOf returns a customer's kana name.
func (s *State) KanaOf(c uint64) (string, bool) {
	i, ok := s.kanaIdx[c]
	if !ok {
		return "", false
	}
	return s.kana[i].Name, true
}

// VirtualOf returns a customer's virtual account number.
func (s *State) VirtualOf(c uint64) (string, bool) {
	i, ok := s.vByCust[c]
	if !ok {
		return "", false
	}
	return s.virtual[i].Number, true
}

// Owner returns the customer of a virtual account number.
func (s *State) Owner(number string) (uint64, bool) {
	i, ok := s.vByNum[number]
	if !ok {
		return 0, false
	}
	return s.virtual[i].Customer, true
}

// AssignVirtual gives a customer the next virtual account number, or the
// one they have.
func (s *State) AssignVirtual(c uint64) (string, error) {
	if n, ok := s.VirtualOf(c); ok {
		return n, nil
	}
	if uint64(len(s.virtual)) >= s.Config.VirtualCount {
		return "", ErrVirtualExhausted
	}
	n := fmt.Sprintf("%07d", s.Config.VirtualFirst+uint64(len(s.virtual)))
	s.vByCust[c], s.vByNum[n] = len(s.virtual), len(s.virtual)
	s.virtual = append(s.virtual, Virtual{Customer: c, Number: n})
	return n, nil
}

// depositChunk is the size of a chunk of deposits.
const depositChunk = 1 << 14

// Deposit returns a deposit by its id.
func (s *State) Deposit(txid string) (*Deposit, bool) {
	i, ok := s.dIdx[txid]
	if !ok {
		return nil, false
	}
	return &s.deposits[i/depositChunk][i%depositChunk], true
}

// AddDeposit records a deposit.
func (s *State) AddDeposit(d Deposit) {
	if s.nDeposit%depositChunk == 0 {
		s.deposits = append(s.deposits, make([]Deposit, 0, depositChunk))
	}
	s.dIdx[d.TxID] = s.nDeposit
	last := len(s.deposits) - 1
	s.deposits[last] = append(s.deposits[last], d)
	s.nDeposit++
}

// Deposits returns deposits that match (all for nil), oldest first, at
// most n (0: all).
func (s *State) Deposits(match func(*Deposit) bool, n int) []Deposit {
	var out []Deposit
	for _, ch := range s.deposits {
		for i := range ch {
			if match == nil || match(&ch[i]) {
				out = append(out, ch[i])
				if n > 0 && len(out) >= n {
					return out
				}
			}
		}
	}
	return out
}

// BankAccounts returns a customer's registered accounts, oldest first.
func (s *State) BankAccounts(c uint64) []BankAccount {
	var out []BankAccount
	for _, a := range s.accounts {
		if a.Customer == c {
			out = append(out, a)
		}
	}
	return out
}

// AllBankAccounts returns the registered accounts of all customers,
// oldest first, at most n (0: all).
func (s *State) AllBankAccounts(n int) []BankAccount {
	if n > 0 && len(s.accounts) > n {
		return append([]BankAccount(nil), s.accounts[:n]...)
	}
	return append([]BankAccount(nil), s.accounts...)
}

// BankAccount returns a customer's registered account by its key.
func (s *State) BankAccount(c uint64, key string) (BankAccount, bool) {
	for _, a := range s.accounts {
		if a.Customer == c && a.Account.Key() == key {
			return a, true
		}
	}
	return BankAccount{}, false
}

// AddBankAccount registers an account.
func (s *State) AddBankAccount(a BankAccount) error {
	n := 0
	for _, b := range s.accounts {
		if b.Customer == a.Customer {
			n++
			if b.Account.Key() == a.Account.Key() {
				return fmt.Errorf("%w: already registered", ErrBankAccount)
			}
		}
	}
	if n >= MaxBankAccounts {
		return fmt.Errorf("%w: at most %d accounts", ErrBound, MaxBankAccounts)
	}
	s.accounts = append(s.accounts, a)
	return nil
}

// RemoveBankAccount removes a registered account.
func (s *State) RemoveBankAccount(c uint64, key string) error {
	for i, a := range s.accounts {
		if a.Customer == c && a.Account.Key() == key {
			s.accounts = append(s.accounts[:i:i], s.accounts[i+1:]...)
			return nil
		}
	}
	return ErrBankUnknown
}

// AddPayout records a payout; its number is the next.
func (s *State) AddPayout(p Payout) Payout {
	p.Number = uint64(len(s.payouts)) + 1
	s.pByNum[p.Number], s.pByWd[p.Withdrawal] = len(s.payouts), len(s.payouts)
	s.payouts = append(s.payouts, p)
	return p
}

// Payout returns a payout by number.
func (s *State) Payout(n uint64) (*Payout, bool) {
	i, ok := s.pByNum[n]
	if !ok {
		return nil, false
	}
	return &s.payouts[i], true
}

// PayoutOf returns the payout of a withdrawal.
func (s *State) PayoutOf(wd string) (*Payout, bool) {
	i, ok := s.pByWd[wd]
	if !ok {
		return nil, false
	}
	return &s.payouts[i], true
}

// Payouts returns the payouts that match, oldest first, at most n (0:
// all).
func (s *State) Payouts(match func(*Payout) bool, n int) []Payout {
	var out []Payout
	for i := range s.payouts {
		if match == nil || match(&s.payouts[i]) {
			out = append(out, s.payouts[i])
			if n > 0 && len(out) >= n {
				break
			}
		}
	}
	return out
}

// EachPayout calls fn for every payout in order until it returns false.
func (s *State) EachPayout(fn func(*Payout) bool) {
	for i := range s.payouts {
		if !fn(&s.payouts[i]) {
			return
		}
	}
}

// AddBatch records a batch.
func (s *State) AddBatch(b Batch) {
	s.bIdx[b.ID] = len(s.batches)
	s.batches = append(s.batches, b)
}

// Batch returns a batch.
func (s *State) Batch(id string) (*Batch, bool) {
	i, ok := s.bIdx[id]
	if !ok {
		return nil, false
	}
	return &s.batches[i], true
}

// Batches returns the batches, oldest first.
func (s *State) Batches() []Batch { return append([]Batch(nil), s.batches...) }

// AddPayment records a payment request.
func (s *State) AddPayment(p Payment) {
	s.payIdx[p.ID] = len(s.payments)
	s.payments = append(s.payments, p)
}

// Payment returns a payment request.
func (s *State) Payment(id string) (*Payment, bool) {
	i, ok := s.payIdx[id]
	if !ok {
		return nil, false
	}
	return &s.payments[i], true
}

// Payments returns a customer's payments (all for 0), oldest first.
func (s *State) Payments(c uint64) []Payment {
	var out []Payment
	for _, p := range s.payments {
		if c == 0 || p.Customer == c {
			out = append(out, p)
		}
	}
	return out
}

// SeenEvent reports whether a provider event id was applied.
func (s *State) SeenEvent(id string) bool { return s.evIdx[id] }

// AddEvent records a provider event id as applied.
func (s *State) AddEvent(id string) {
	s.evIdx[id] = true
	s.events = append(s.events, id)
}

// AddInstruction records a bank instruction.
func (s *State) AddInstruction(in Instruction) {
	s.iIdx[in.ID] = len(s.instrs)
	s.instrs = append(s.instrs, in)
}

// Instruction returns a bank instruction.
func (s *State) Instruction(id string) (*Instruction, bool) {
	i, ok := s.iIdx[id]
	if !ok {
		return nil, false
	}
	return &s.instrs[i], true
}

// Instructions returns the instructions, oldest first.
func (s *State) Instructions() []Instruction { return append([]Instruction(nil), s.instrs...) }

// AddReconciliation records a reconciliation.
func (s *State) AddReconciliation(r Reconciliation) { s.recons = append(s.recons, r) }

// Reconciliations returns the last n reconciliations (0: all), oldest
// first.
func (s *State) Reconciliations(n int) []Reconciliation {
	if n > 0 && len(s.recons) > n {
		return append([]Reconciliation(nil), s.recons[len(s.recons)-n:]...)
	}
	return append([]Reconciliation(nil), s.recons...)
}

// Snapshot is the state's deterministic encoding.
type Snapshot struct {
	Config          *Config          `json:"config,omitempty"`
	Master          *bankcode.Master `json:"master,omitempty"`
	Kana            []Kana           `json:"kana,omitempty"`
	Virtual         []Virtual        `json:"virtual,omitempty"`
	Deposits        []Deposit        `json:"deposits,omitempty"`
	Accounts        []BankAccount    `json:"accounts,omitempty"`
	Payouts         []Payout         `json:"payouts,omitempty"`
	Batches         []Batch          `json:"batches,omitempty"`
	Payments        []Payment        `json:"payments,omitempty"`
	Events          []string         `json:"events,omitempty"`
	Instructions    []Instruction    `json:"instructions,omitempty"`
	Reconciliations []Reconciliation `json:"reconciliations,omitempty"`
}

// Snapshot returns the state for encoding, or nil for an empty state.
func (s *State) Snapshot() *Snapshot {
	if s.Config == nil && len(s.kana) == 0 {
		return nil
	}
	return &Snapshot{Config: s.Config, Master: s.Master, Kana: s.kana, Virtual: s.virtual, Deposits: s.Deposits(nil, 0), Accounts: s.accounts, Payouts: s.payouts,
		Batches: s.batches, Payments: s.payments, Events: s.events, Instructions: s.instrs, Reconciliations: s.recons}
}

// Restore rebuilds a state from its snapshot (nil: empty).
func Restore(snap *Snapshot) *State {
	s := New()
	if snap == nil {
		return s
	}
	s.Config, s.Master = snap.Config, snap.Master
	for _, k := range snap.Kana {
		s.SetKana(k)
	}
	for i, v := range snap.Virtual {
		s.vByCust[v.Customer], s.vByNum[v.Number] = i, i
	}
	s.virtual = snap.Virtual
	for _, d := range snap.Deposits {
		s.AddDeposit(d)
	}
	s.accounts = snap.Accounts
	for i, p := range snap.Payouts {
		s.pByNum[p.Number], s.pByWd[p.Withdrawal] = i, i
	}
	s.payouts = snap.Payouts
	for _, b := range snap.Batches {
		s.AddBatch(b)
	}
	for _, p := range snap.Payments {
		s.AddPayment(p)
	}
	for _, e := range snap.Events {
		s.AddEvent(e)
	}
	for _, in := range snap.Instructions {
		s.AddInstruction(in)
	}
	s.recons = snap.Reconciliations
	return s
}
