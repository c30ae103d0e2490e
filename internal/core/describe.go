package core

import (
	"fmt"
	"strconv"
	"strings"

	"kinko/internal/ledger"
	"kinko/internal/passkey"
	"kinko/internal/people"
)

// signedStr says whether a command carries its signer's assertion.
func signedStr(a *passkey.Assertion) string {
	if a == nil {
		return " (unsigned)"
	}
	return " (signed)"
}

// signedIf is signedStr for commands that an operator signs and a
// customer does not.
func signedIf(operator bool, a *passkey.Assertion) string {
	if !operator {
		return ""
	}
	return signedStr(a)
}

// Describe says in one line what a command asks, for journal listings. It
// never shows credentials or token hashes. A journaled command is an attempt:
// whether it took effect is for the state to say (a refused self-approval is
// journaled too).
func Describe(c Command) string {
	switch c := c.(type) {
	case CreateAssets:
		var codes []string
		for _, a := range c.Assets {
			codes = append(codes, a.Code)
		}
		return fmt.Sprintf("%d assets: %s", len(c.Assets), strings.Join(codes, ", "))
	case CreateCustomers:
		return fmt.Sprintf("%d customers", len(c.IDs))
	case CreateAccounts:
		return fmt.Sprintf("%d accounts", len(c.Keys))
	case CreateTransfers:
		if len(c.Transfers) == 1 {
			t := c.Transfers[0]
			return fmt.Sprintf("transfer %v -> %v amount %s", t.Debit, t.Credit, t.Amount)
		}
		return fmt.Sprintf("%d transfers", len(c.Transfers))
	case SignUp:
		return fmt.Sprintf("customer %d signed up", c.Customer.ID)
	case CreateOperator:
		return fmt.Sprintf("operator %s %v added by %q (refused: operators are added by two admins)", c.Operator.Name, c.Operator.Roles, c.Actor)
	case Bootstrap:
		var names []string
		for _, f := range c.Founders {
			names = append(names, f.Name)
		}
		return fmt.Sprintf("founding operators %s for %s", strings.Join(names, ", "), c.RP.ID)
	case EnrolCredential:
		return fmt.Sprintf("%s enrols credential %s (%s) with a one-time code", c.Operator, people.Fingerprint(c.Key.PublicKey), c.Key.Label)
	case AddCredential:
		return fmt.Sprintf("%s registers credential %s (%s)%s", c.Operator, people.Fingerprint(c.Key.PublicKey), c.Key.Label, signedStr(c.Assertion))
	case OperatorLogin:
		return fmt.Sprintf("operator sign-in %s%s", c.Session.Operator, signedStr(c.Assertion))
	case Login:
		return fmt.Sprintf("%s login %s%s", c.Session.Kind, c.Session.Operator, idStr(c.Session.Customer))
	case LoginFailed:
		return fmt.Sprintf("failed %s login %s%s", c.Who, c.Operator, idStr(c.Customer))
	case Logout:
		return "logout"
	case SetKYC:
		return fmt.Sprintf("KYC of %d set to %s by %s: %s", c.Customer, c.KYC, c.Actor, c.Reason)
	case ProposeAsset:
		return fmt.Sprintf("%s proposes asset %s: %s%s", c.Actor, c.Asset.Code, c.Reason, signedStr(c.Assertion))
	case ReviewAsset:
		return fmt.Sprintf("%s reviews asset %d: %s", c.Review.Reviewer, c.Review.Asset, c.Review.Recommendation)
	case OpenRequest:
		return fmt.Sprintf("%s asks %s: %s%s", c.Request.Requester, c.Request.Kind, c.Request.Reason, signedStr(c.Assertion))
	case DecideRequest:
		verb := "reject"
		if c.Approve {
			verb = "approve"
		}
		return fmt.Sprintf("%s decides %s %s: %s%s", c.Decider, verb, c.ID, c.Reason, signedStr(c.Assertion))
	case Halt:
		return fmt.Sprintf("halt %s by %s: %s", c.Switch, c.Actor, c.Reason)
	case Lift:
		return fmt.Sprintf("lift %s asked by %s, approved by %s: %s", c.Switch, c.Requester, c.Approver, c.Reason)
	case CreditDeposits:
		return fmt.Sprintf("%d deposits", len(c.Deposits))
	case ReverseDeposits:
		return fmt.Sprintf("%d deposits reversed by %s: %s", len(c.Outpoints), c.Actor, c.Reason)
	case PrepareCeremony:
		return fmt.Sprintf("%s ceremony %s prepared by %s: %d inputs reserved", c.Ceremony.Purpose, c.Ceremony.ID, c.Ceremony.Actor, len(c.Ceremony.Inputs))
	case ConfirmCeremony:
		return fmt.Sprintf("ceremony transaction confirmed at height %d", c.Height)
	case FundHouse:
		return fmt.Sprintf("house wallet %d funded with %d base units (its backing)", c.Funding.Wallet, c.Funding.Amount)
	case RegisterGasAccount:
		return fmt.Sprintf("%s gas account %s registered", c.Asset, c.Address)
	case FundGasAccount:
		return fmt.Sprintf("%s gas account funded with %s base units by %s", c.Asset, c.Amount, c.TxHash)
	case SetWithdrawalRules:
		return fmt.Sprintf("withdrawal rules set by %s", c.Actor)
	case RegisterIntentKey:
		return fmt.Sprintf("customer %d registers an intent key", c.Customer)
	case RevokeIntentKey:
		return fmt.Sprintf("customer %d revokes the intent key %s", c.Customer, keyText(c.PubKey))
	case RemoveAddress:
		return fmt.Sprintf("customer %d takes the %s address %s off the whitelist", c.Customer, c.Asset, c.Address)
	case StepUpFailed:
		return "a wrong step-up code"
	case RevokeSession:
		return fmt.Sprintf("customer %d ends a session", c.Customer)
	case ChangeCredentials:
		return fmt.Sprintf("customer %d changes their %s", c.Customer, strings.ReplaceAll(c.Change, "_", " "))
	case FreezeWithdrawals:
		return fmt.Sprintf("customer %d's withdrawals frozen by %s%s", c.Customer, c.By, signedIf(c.By != "customer" && c.By != "notice link", c.Assertion))
	case UnfreezeWithdrawals:
		return fmt.Sprintf("customer %d's withdrawals unfrozen by %s%s", c.Customer, c.By, signedIf(c.By != "customer", c.Assertion))
	case WhitelistAddress:
		return fmt.Sprintf("customer %d whitelists a %s address %s", c.Customer, c.Asset, c.Address)
	case RequestWithdrawal:
		return fmt.Sprintf("customer %d asks to withdraw %s %s to %s (request %s)", c.Customer, c.Intent.Amount, c.Intent.Asset, c.Intent.Address, c.Intent.RequestID)
	case nil:
		return "(does not decode)"
	}
	if d, ok := describeOwed(c); ok {
		return d
	}
	if d, ok := describeReserves(c); ok {
		return d
	}
	return c.Kind().String()
}

func idStr(id ledger.OwnerID) string {
	if id == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(id), 10)
}
