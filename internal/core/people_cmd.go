package core

import (
	"encoding/json"
	"fmt"

	"kinko/internal/controls"
	"kinko/internal/ledger"
	"kinko/internal/passkey"
	"kinko/internal/people"
	"kinko/internal/withdraw"
)

// Command kinds of people: customers, operators, sessions, approvals and
// asset listing.
const (
	KindSignUp         Kind = 100
	KindCreateOperator Kind = 101
	KindLogin          Kind = 102
	KindLoginFailed    Kind = 103
	KindLogout         Kind = 104
	KindStepUp         Kind = 105
	KindSetKYC         Kind = 106
	KindProposeAsset   Kind = 107
	KindReviewAsset    Kind = 108
	KindOpenRequest    Kind = 109
	KindDecideRequest  Kind = 110
	// The customers' own guards: failed step-ups, their sessions, their
	// credentials, and the freeze of their withdrawals.
	KindStepUpFailed        Kind = 120
	KindRevokeSession       Kind = 121
	KindChangeCredentials   Kind = 122
	KindFreezeWithdrawals   Kind = 123
	KindUnfreezeWithdrawals Kind = 124
)

func init() {
	for k, n := range map[Kind]string{
		KindSignUp: "sign_up", KindCreateOperator: "create_operator", KindLogin: "login",
		KindLoginFailed: "login_failed", KindLogout: "logout", KindStepUp: "step_up",
		KindSetKYC: "set_kyc", KindProposeAsset: "propose_asset", KindReviewAsset: "review_asset",
		KindOpenRequest: "open_request", KindDecideRequest: "decide_request",
		KindStepUpFailed: "step_up_failed", KindRevokeSession: "revoke_session", KindChangeCredentials: "change_credentials",
		KindFreezeWithdrawals: "freeze_withdrawals", KindUnfreezeWithdrawals: "unfreeze_withdrawals",
	} {
		kindNames[k] = n
	}
}

// SignUp registers a customer in the ledger and in people, and opens their
// accounts for every asset.
type SignUp struct{ Customer people.Customer }

// CreateOperator adds an operator; Actor is the admin who does it (empty
// for the first, bootstrap admin).
type CreateOperator struct {
	Operator people.Operator
	Actor    string
}

// Login records a verified login and opens a session.
type Login struct {
	Session people.Session
	Step    uint64
}

// LoginFailed records a failed login attempt.
type LoginFailed struct {
	Who      people.SessionKind
	Customer ledger.OwnerID
	Operator string
	Reason   string
}

// Logout revokes a session.
type Logout struct{ TokenHash [32]byte }

// StepUp records a fresh TOTP code for a money-moving action.
type StepUp struct {
	TokenHash [32]byte
	Step      uint64
}

// StepUpFailed records a wrong step-up code in a session: counted per
// session and per customer, towards their lock-outs.
type StepUpFailed struct{ TokenHash [32]byte }

// RevokeSession ends one of a customer's sessions on their word.
type RevokeSession struct {
	Customer  ledger.OwnerID
	TokenHash [32]byte
}

// ChangeCredentials replaces a customer's credential commitment (a new
// password, or a new TOTP seed): Change says which, Commit is the new
// commitment, Keep the session that asked (every other ends).
type ChangeCredentials struct {
	Customer ledger.OwnerID
	Change   string
	Commit   string
	Keep     [32]byte
}

// FreezeWithdrawals halts a customer's withdrawals at once: By is "notice
// link" (Notice is the seq of the notice whose link was followed),
// "customer", or an operator, who signs it. Their withdrawals not yet
// signed are rejected and their holds voided.
type FreezeWithdrawals struct {
	Customer  ledger.OwnerID
	By        string
	Notice    uint64 `json:",omitempty"`
	Reason    string
	Assertion *passkey.Assertion `json:",omitempty"`
}

// UnfreezeWithdrawals lifts a customer's freeze: By is "customer" (the
// session Session, fresh and stepped up) or an operator, who signs it.
type UnfreezeWithdrawals struct {
	Customer  ledger.OwnerID
	By        string
	Session   [32]byte `json:",omitempty"`
	Reason    string
	Assertion *passkey.Assertion `json:",omitempty"`
}

// SetKYC sets a customer's KYC state.
type SetKYC struct {
	Customer ledger.OwnerID
	KYC      people.KYC
	Actor    string
	Reason   string
}

// ProposeAsset creates an asset in the registry, disabled until its
// listing is approved.
type ProposeAsset struct {
	Asset     ledger.Asset
	Actor     string
	Reason    string
	Assertion *passkey.Assertion `json:",omitempty"`
}

// ReviewAsset records a ciso's risk review.
type ReviewAsset struct{ Review people.Review }

// OpenRequest files a request under the two-person rule, signed by its
// requester.
type OpenRequest struct {
	Request   people.Request
	Assertion *passkey.Assertion `json:",omitempty"`
}

// DecideRequest approves or rejects a request, signed by the decider; an
// approval applies it.
type DecideRequest struct {
	ID        string
	Decider   string
	Reason    string
	Approve   bool
	Assertion *passkey.Assertion `json:",omitempty"`
}

// KindLiftHalt is the request kind that lifts a halt once approved.
const KindLiftHalt people.RequestKind = "lift_halt"

// KindResumptionPlan is the request kind that adopts a staged resumption
// plan once approved.
const KindResumptionPlan people.RequestKind = "resumption_plan"

// ResumptionPlanPayload is the payload of a resumption_plan request.
type ResumptionPlanPayload struct {
	ID    string            `json:"id"`
	Steps []controls.Switch `json:"steps"`
}

// LiftHaltPayload is the payload of a lift_halt request.
type LiftHaltPayload struct {
	Switch controls.Switch `json:"switch"`
}

func (SignUp) Kind() Kind         { return KindSignUp }
func (CreateOperator) Kind() Kind { return KindCreateOperator }
func (Login) Kind() Kind          { return KindLogin }
func (LoginFailed) Kind() Kind    { return KindLoginFailed }
func (Logout) Kind() Kind         { return KindLogout }
func (StepUp) Kind() Kind         { return KindStepUp }
func (SetKYC) Kind() Kind         { return KindSetKYC }
func (ProposeAsset) Kind() Kind   { return KindProposeAsset }
func (ReviewAsset) Kind() Kind    { return KindReviewAsset }
func (OpenRequest) Kind() Kind    { return KindOpenRequest }
func (DecideRequest) Kind() Kind  { return KindDecideRequest }

func (StepUpFailed) Kind() Kind        { return KindStepUpFailed }
func (RevokeSession) Kind() Kind       { return KindRevokeSession }
func (ChangeCredentials) Kind() Kind   { return KindChangeCredentials }
func (FreezeWithdrawals) Kind() Kind   { return KindFreezeWithdrawals }
func (UnfreezeWithdrawals) Kind() Kind { return KindUnfreezeWithdrawals }

func (c StepUpFailed) AppendPayload(b []byte) []byte        { return appendJSON(b, c) }
func (c RevokeSession) AppendPayload(b []byte) []byte       { return appendJSON(b, c) }
func (c ChangeCredentials) AppendPayload(b []byte) []byte   { return appendJSON(b, c) }
func (c FreezeWithdrawals) AppendPayload(b []byte) []byte   { return appendJSON(b, c) }
func (c UnfreezeWithdrawals) AppendPayload(b []byte) []byte { return appendJSON(b, c) }

func (c SignUp) AppendPayload(b []byte) []byte         { return appendJSON(b, c) }
func (c CreateOperator) AppendPayload(b []byte) []byte { return appendJSON(b, c) }
func (c Login) AppendPayload(b []byte) []byte          { return appendJSON(b, c) }
func (c LoginFailed) AppendPayload(b []byte) []byte    { return appendJSON(b, c) }
func (c Logout) AppendPayload(b []byte) []byte         { return appendJSON(b, c) }
func (c StepUp) AppendPayload(b []byte) []byte         { return appendJSON(b, c) }
func (c SetKYC) AppendPayload(b []byte) []byte         { return appendJSON(b, c) }
func (c ProposeAsset) AppendPayload(b []byte) []byte   { return appendJSON(b, c) }
func (c ReviewAsset) AppendPayload(b []byte) []byte    { return appendJSON(b, c) }
func (c OpenRequest) AppendPayload(b []byte) []byte    { return appendJSON(b, c) }
func (c DecideRequest) AppendPayload(b []byte) []byte  { return appendJSON(b, c) }

func decodePeople(kind Kind, p []byte) (Command, bool, error) {
	var c Command
	var err error
	switch kind {
	case KindSignUp:
		c, err = decodeJSON[SignUp](p)
	case KindCreateOperator:
		c, err = decodeJSON[CreateOperator](p)
	case KindLogin:
		c, err = decodeJSON[Login](p)
	case KindLoginFailed:
		c, err = decodeJSON[LoginFailed](p)
	case KindLogout:
		c, err = decodeJSON[Logout](p)
	case KindStepUp:
		c, err = decodeJSON[StepUp](p)
	case KindSetKYC:
		c, err = decodeJSON[SetKYC](p)
	case KindProposeAsset:
		c, err = decodeJSON[ProposeAsset](p)
	case KindReviewAsset:
		c, err = decodeJSON[ReviewAsset](p)
	case KindOpenRequest:
		c, err = decodeJSON[OpenRequest](p)
	case KindDecideRequest:
		c, err = decodeJSON[DecideRequest](p)
	case KindStepUpFailed:
		c, err = decodeJSON[StepUpFailed](p)
	case KindRevokeSession:
		c, err = decodeJSON[RevokeSession](p)
	case KindChangeCredentials:
		c, err = decodeJSON[ChangeCredentials](p)
	case KindFreezeWithdrawals:
		c, err = decodeJSON[FreezeWithdrawals](p)
	case KindUnfreezeWithdrawals:
		c, err = decodeJSON[UnfreezeWithdrawals](p)
	default:
		return nil, false, nil
	}
	return c, true, err
}

// checkRequest checks the request kinds that belong to other subsystems
// than people.
func (s *State) checkRequest(r people.Request) error {
	switch r.Kind {
	case KindApproveWithdrawal:
		return s.checkApproveWithdrawal(r)
	case KindLiftHalt:
		var p LiftHaltPayload
		if err := json.Unmarshal(r.Payload, &p); err != nil {
			return fmt.Errorf("%w: payload: %v", people.ErrInvalid, err)
		}
		if err := s.Controls.Allowed(p.Switch.Asset, p.Switch.Service); err == nil && p.Switch.Service != controls.Global {
			return controls.ErrNotHalted
		}
		if r.RequiredRole != people.RoleApprover && r.RequiredRole != people.RoleAdmin {
			return fmt.Errorf("%w: lifts are approved by an approver", people.ErrInvalid)
		}
		return nil
	case KindResumptionPlan:
		var p ResumptionPlanPayload
		if err := json.Unmarshal(r.Payload, &p); err != nil {
			return fmt.Errorf("%w: payload: %v", people.ErrInvalid, err)
		}
		if r.RequiredRole != people.RoleApprover && r.RequiredRole != people.RoleAdmin {
			return fmt.Errorf("%w: resumption plans are approved by an approver", people.ErrInvalid)
		}
		return s.Controls.CheckPlan(controls.Plan{ID: p.ID, Steps: p.Steps, Reason: r.Reason})
	case KindApproveCompensation:
		var p ApproveCompensationPayload
		if err := json.Unmarshal(r.Payload, &p); err != nil {
			return fmt.Errorf("%w: payload: %v", people.ErrInvalid, err)
		}
		if r.RequiredRole != people.RoleApprover && r.RequiredRole != people.RoleAdmin {
			return fmt.Errorf("%w: compensation plans are approved by an approver", people.ErrInvalid)
		}
		return s.checkCompensationApproval(p.Plan, "")
	case KindWriteOffOwed:
		return s.checkWriteOffOwed(r)
	case KindSetWithdrawalRulesRequest:
		return s.checkSetWithdrawalRules(r)
	case KindListMarketRequest:
		return s.checkListMarket(r)
	case KindDealerReference, KindIndexPrice:
		return s.checkPriceRequest(r)
	case KindYenReview:
		return s.checkYenReview(r)
	case KindYenBankMaster:
		return s.checkYenBankMaster(r)
	case KindCloseIncident:
		return s.checkCloseIncident(r)
	case KindRegisterWalletRequest:
		return s.checkRegisterWallet(r)
	case KindRegisterTokenRequest:
		return s.checkRegisterToken(r)
	case KindRegisterGasAccountRequest:
		return s.checkRegisterGasAccountRequest(r)
	}
	return fmt.Errorf("%w: request kind %q", people.ErrInvalid, r.Kind)
}

// checkEffect tells whether approving r now would take effect.
func (s *State) checkEffect(r people.Request, decider string) error {
	switch r.Kind {
	case KindApproveWithdrawal:
		var p ApproveWithdrawalPayload
		json.Unmarshal(r.Payload, &p)
		if wd, ok := s.Withdraw.Get(p.Withdrawal); !ok || wd.Status != withdraw.StatusAwaitingApproval {
			return withdraw.ErrNotAwaiting
		}
	case KindLiftHalt:
		var lp LiftHaltPayload
		json.Unmarshal(r.Payload, &lp)
		return s.Controls.CheckLift(lp.Switch)
	case KindResumptionPlan:
		var pp ResumptionPlanPayload
		json.Unmarshal(r.Payload, &pp)
		return s.Controls.CheckPlan(controls.Plan{ID: pp.ID, Steps: pp.Steps, Reason: r.Reason})
	case KindApproveCompensation:
		var pp ApproveCompensationPayload
		json.Unmarshal(r.Payload, &pp)
		return s.checkCompensationApproval(pp.Plan, decider)
	case KindWriteOffOwed:
		var wp WriteOffOwedPayload
		json.Unmarshal(r.Payload, &wp)
		return s.checkOwed(wp)
	case KindSetWithdrawalRulesRequest:
		return s.checkSetWithdrawalRules(r)
	case KindListMarketRequest:
		if err := s.checkListMarket(r); err != nil {
			return err
		}
		var lp ListMarketPayload
		json.Unmarshal(r.Payload, &lp)
		return s.checkListing(lp.Listing)
	case KindDealerReference, KindIndexPrice:
		return s.checkPriceRequest(r)
	case KindYenReview:
		return s.checkYenReview(r)
	case KindYenBankMaster:
		return s.checkYenBankMaster(r)
	case KindCloseIncident:
		return s.checkCloseIncident(r)
	case KindRegisterWalletRequest:
		return s.checkRegisterWallet(r)
	case KindRegisterTokenRequest:
		return s.checkRegisterToken(r)
	case KindRegisterGasAccountRequest:
		return s.checkRegisterGasAccountRequest(r)
	}
	return nil
}

func (s *State) applyPeople(cmd Command, t int64) (handled bool, v any, err error) {
	p := s.People
	switch c := cmd.(type) {
	case SignUp:
		if s.Ledger.HasCustomer(c.Customer.ID) {
			return true, nil, people.ErrCustomerExists
		}
		if _, taken := p.CustomerByEmail(c.Customer.Email); taken {
			return true, nil, people.ErrEmailTaken
		}
		if err := p.SignUp(c.Customer, t); err != nil {
			return true, nil, err
		}
		s.Ledger.CreateCustomers([]ledger.OwnerID{c.Customer.ID}, nil)
		var keys []ledger.AccountKey
		for _, a := range s.Ledger.Assets() {
			keys = append(keys, ledger.AccountKey{Owner: c.Customer.ID, Asset: a.ID, Kind: ledger.KindAvailable},
				ledger.AccountKey{Owner: c.Customer.ID, Asset: a.ID, Kind: ledger.KindHeld})
		}
		s.Ledger.CreateAccounts(keys, nil)
		return true, c.Customer.ID, nil
	case CreateOperator:
		return true, nil, p.CreateOperator(c.Operator, c.Actor, t) // refused: see people.CreateOperator
	case Login:
		return true, nil, p.Login(c.Session, c.Step, t, s.seq)
	case LoginFailed:
		return true, nil, p.LoginFailed(c.Who, c.Customer, c.Operator, t)
	case Logout:
		return true, nil, p.Logout(c.TokenHash)
	case StepUp:
		return true, nil, p.StepUp(c.TokenHash, c.Step, t)
	case StepUpFailed:
		return true, nil, p.StepUpFailed(c.TokenHash, t)
	case RevokeSession:
		return true, nil, p.RevokeSession(c.Customer, c.TokenHash, t, s.seq)
	case ChangeCredentials:
		return true, nil, p.ChangeCredentials(c.Customer, c.Change, c.Commit, c.Keep, t, s.seq)
	case FreezeWithdrawals:
		return true, nil, s.freezeWithdrawals(c, t)
	case UnfreezeWithdrawals:
		return true, nil, p.Unfreeze(c.Customer, c.By, c.Session, c.Reason, t, s.seq)
	case SetKYC:
		return true, nil, p.SetKYC(c.Customer, c.KYC, c.Actor, c.Reason)
	case ProposeAsset:
		if !people.ValidText(c.Reason) {
			return true, nil, fmt.Errorf("%w: reason", people.ErrInvalid)
		}
		// Who may propose is checked before the asset is created: a
		// refused proposal leaves no asset behind.
		if err := p.CanPropose(c.Actor); err != nil {
			return true, nil, err
		}
		if res := s.Ledger.CreateAssets([]ledger.Asset{c.Asset}, nil); len(res) > 0 {
			return true, nil, res[0].Code
		}
		if err := p.Propose(c.Asset.ID, c.Actor); err != nil {
			return true, nil, err // cannot happen after the check above
		}
		return true, nil, nil
	case ReviewAsset:
		return true, nil, p.RecordReview(c.Review, t)
	case OpenRequest:
		return true, nil, p.Open(c.Request, t, s.seq, s.checkRequest)
	case DecideRequest:
		// An approval whose effect cannot happen is refused before the
		// request changes: nothing is approved and left undone.
		if r, ok := p.Request(c.ID); ok && c.Approve && r.State == people.RequestPending {
			if err := s.checkEffect(r, c.Decider); err != nil {
				return true, r, err
			}
		}
		r, err := p.Decide(c.ID, c.Decider, c.Reason, c.Approve, t, s.seq)
		if err != nil || r.State != people.RequestApproved {
			return true, r, err
		}
		switch r.Kind {
		case KindApproveWithdrawal:
			if err := s.applyApproveWithdrawal(r); err != nil {
				return true, r, err
			}
		case KindLiftHalt:
			var lp LiftHaltPayload
			json.Unmarshal(r.Payload, &lp)
			if err := s.Controls.LiftSwitch(lp.Switch, r.Requester, c.Decider, r.Reason, t, s.seq); err != nil {
				return true, r, err
			}
			s.yenAfterLift(lp.Switch, t)
		case KindResumptionPlan:
			var pp ResumptionPlanPayload
			json.Unmarshal(r.Payload, &pp)
			plan := controls.Plan{ID: pp.ID, Steps: pp.Steps, Reason: r.Reason, Requester: r.Requester, Approver: c.Decider, Time: t, Seq: s.seq}
			if err := s.Controls.AdoptPlan(plan); err != nil {
				return true, r, err
			}
		case KindApproveCompensation:
			if err := s.approveCompensation(r, c.Decider); err != nil {
				return true, r, err
			}
		case KindWriteOffOwed:
			if err := s.applyWriteOffOwed(r, t); err != nil {
				return true, r, err
			}
		case KindSetWithdrawalRulesRequest, KindListMarketRequest:
			if err := s.applyControlRequest(r, t); err != nil {
				return true, r, err
			}
		case KindDealerReference, KindIndexPrice:
			if err := s.applyPriceRequest(r, t); err != nil {
				return true, r, err
			}
		case KindCloseIncident:
			if err := s.applyCloseIncident(r, c.Decider, t); err != nil {
				return true, r, err
			}
		case KindRegisterWalletRequest:
			if err := s.applyRegisterWallet(r, t); err != nil {
				return true, r, err
			}
		case KindRegisterTokenRequest:
			if err := s.applyRegisterToken(r); err != nil {
				return true, r, err
			}
		case KindRegisterGasAccountRequest:
			if err := s.applyRegisterGasAccountRequest(r, t); err != nil {
				return true, r, err
			}
		case KindYenReview:
			if err := s.applyYenReview(r, t); err != nil {
				return true, r, err
			}
		case KindYenBankMaster:
			if err := s.applyYenBankMaster(r); err != nil {
				return true, r, err
			}
		}
		return true, r, nil
	}
	return false, nil, nil
}

// Operator returns an operator by name.
func (s *State) Operator(name string) (people.Operator, bool) { return s.People.Operator(name) }

// freezeWithdrawals freezes a customer's withdrawals and rejects those of
// theirs not yet in a batch: nothing of theirs leaves after the entry.
// Those already in a batch the co-signer refuses (it honours the freeze
// in its replay).
func (s *State) freezeWithdrawals(c FreezeWithdrawals, t int64) error {
	if err := s.People.FreezeWithdrawals(c.Customer, c.By, c.Notice, c.Reason, t, s.seq); err != nil {
		return err
	}
	s.rejectWaiting(c.Customer, func(withdraw.Withdrawal) bool { return true }, "frozen: "+c.Reason, t)
	return nil
}

// rejectWaiting rejects a customer's withdrawals not yet in a batch
// (queued or awaiting approval) that match, voiding their holds.
func (s *State) rejectWaiting(customer ledger.OwnerID, match func(withdraw.Withdrawal) bool, reason string, t int64) {
	var ts []ledger.Transfer
	var ids []string
	for _, wd := range s.Withdraw.Withdrawals(uint64(customer)) {
		if (wd.Status != withdraw.StatusQueued && wd.Status != withdraw.StatusAwaitingApproval) || !match(wd) {
			continue
		}
		ts = append(ts, ledger.Transfer{ID: holdID("void:" + wd.ID), PendingID: ledger.ID{Hi: wd.HoldHi, Lo: wd.HoldLo}, Flags: ledger.FlagVoidPending, Code: CodeWithdrawal})
		ids = append(ids, wd.ID)
	}
	if len(ts) > 0 {
		if res := s.Ledger.CreateTransfers(ts, t, nil); len(res) > 0 && !res[0].Code.Succeeded() {
			// INVARIANT: a waiting withdrawal's hold is pending; voiding
			// it cannot fail.
			panic(fmt.Sprintf("core: void of the hold of %s failed: %v", ids[res[0].Index], res[0].Code))
		}
	}
	for _, id := range ids {
		s.Withdraw.SetStatus(id, withdraw.StatusRejected, reason)
	}
}
