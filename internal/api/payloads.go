package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/people"
	"kinko/internal/trading"
)

// A request's payload as the API takes and shows it is written as the
// rest of the API is: a switch as "BTC:withdraw", "bank" or "global";
// a market by its code ("XEM/JPY") and a price as a decimal string; an
// asset by its code; a time in RFC 3339; a wallet's kind in words and its
// ledger owner as a decimal string (register_wallet). The journal keeps the core's
// encoding (asset and market ids, integers, unix nanoseconds): the API
// turns one into the other both ways (requestPayloadIn, requestPayloadOut),
// so what an operator sends, reads and signs in the console names things
// as the halt matrix does. Kinds not listed here (approve_withdrawal,
// approve_compensation, write_off_owed, set_roles, enrol_credential,
// remove_credential) carry no id, money or time to write otherwise; the
// market listing and the withdrawal rules are the documents `kinko market
// add` and `kinko rules set` read (docs/trading.md, docs/withdrawals.md).

// apiLiftHalt is lift_halt's payload in the API.
type apiLiftHalt struct {
	Switch string `json:"switch"`
}

// apiResumptionPlan is resumption_plan's payload in the API.
type apiResumptionPlan struct {
	ID    string   `json:"id"`
	Steps []string `json:"steps"`
}

// apiMarketPrice is index_price's and dealer_reference's payload in the
// API.
type apiMarketPrice struct {
	Market string `json:"market"`
	Price  Units  `json:"price"`
}

// RegisterTokenPayload is register_token's payload in the API: the
// token asset's code, the EIP-155 chain id and the contract's EIP-55
// address (checked strictly by custody when the request is filed).
type RegisterTokenPayload struct {
	Asset    string `json:"asset"`
	ChainID  uint64 `json:"chain_id"`
	Contract string `json:"contract"`
}

// apiListAsset is list_asset's payload in the API.
type apiListAsset struct {
	Asset string `json:"asset"`
}

// apiAddOperator is add_operator's and issue_enrolment's payload in the
// API.
type apiAddOperator struct {
	Operator    string        `json:"operator"`
	Roles       []people.Role `json:"roles,omitempty"`
	Code        string        `json:"code"`
	CodeExpires Time          `json:"code_expires"`
}

// WalletPayload is a wallet in register_wallet's payload as the API
// takes and shows it: its kind in words, its asset by code, its ledger
// owner as a decimal string.
type WalletPayload struct {
	ID         uint32 `json:"id"`
	Kind       string `json:"kind"`
	Asset      string `json:"asset"`
	Descriptor string `json:"descriptor"`
	Owner      string `json:"owner"`
	NextIndex  uint32 `json:"next_index,omitempty"`
	NextChange uint32 `json:"next_change,omitempty"`
}

// RegisterWalletPayload is register_wallet's payload in the API: the
// wallet, and what the approver compares with the offline machines.
type RegisterWalletPayload struct {
	Wallet       WalletPayload `json:"wallet"`
	Name         string        `json:"name,omitempty"`
	Addresses    []string      `json:"addresses,omitempty"`
	Fingerprints []string      `json:"fingerprints,omitempty"`
}

// payloadError is a request payload that does not read.
func payloadError(kind people.RequestKind, err error) error {
	var fe *fieldError
	if e, ok := err.(*fieldError); ok {
		fe = e
		fe.field = "payload." + fe.field
		return fe
	}
	return fmt.Errorf("%w: payload of %s: %v", errBadJSON, kind, err)
}

// requestPayloadIn turns a payload as the API takes it into the journal's
// encoding.
func requestPayloadIn(st *core.State, kind people.RequestKind, raw json.RawMessage) (json.RawMessage, error) {
	var v any
	switch kind {
	case core.KindLiftHalt:
		var p apiLiftHalt
		if err := decodeStrict(raw, &p); err != nil {
			return nil, payloadError(kind, err)
		}
		sw, err := parseSwitch(st, p.Switch)
		if err != nil {
			return nil, err
		}
		v = core.LiftHaltPayload{Switch: sw}
	case core.KindResumptionPlan:
		var p apiResumptionPlan
		if err := decodeStrict(raw, &p); err != nil {
			return nil, payloadError(kind, err)
		}
		out := core.ResumptionPlanPayload{ID: p.ID}
		for _, t := range p.Steps {
			sw, err := parseSwitch(st, t)
			if err != nil {
				return nil, err
			}
			out.Steps = append(out.Steps, sw)
		}
		v = out
	case core.KindIndexPrice, core.KindDealerReference:
		var p apiMarketPrice
		if err := decodeStrict(raw, &p); err != nil {
			return nil, payloadError(kind, err)
		}
		m, err := lookupMarket(st, p.Market)
		if err != nil {
			return nil, err
		}
		v = core.MarketPricePayload{Market: m.Listing.ID, Price: int64(p.Price)}
	case people.KindListAsset:
		var p apiListAsset
		if err := decodeStrict(raw, &p); err != nil {
			return nil, payloadError(kind, err)
		}
		a, ok := st.Ledger.AssetByCode(strings.ToUpper(strings.TrimSpace(p.Asset)))
		if !ok {
			return nil, fmt.Errorf("%w: asset %q", people.ErrAssetNotProposed, p.Asset)
		}
		v = people.ListAssetPayload{Asset: a.ID}
	case people.KindAddOperator, people.KindIssueEnrolment:
		var p apiAddOperator
		if err := decodeStrict(raw, &p); err != nil {
			return nil, payloadError(kind, err)
		}
		v = people.AddOperatorPayload{Operator: p.Operator, Roles: p.Roles, Code: p.Code, CodeExpires: p.CodeExpires.UnixNano()}
	case core.KindRegisterWalletRequest:
		var p RegisterWalletPayload
		if err := decodeStrict(raw, &p); err != nil {
			return nil, payloadError(kind, err)
		}
		k, ok := custody.ParseWalletKind(p.Wallet.Kind)
		if !ok {
			return nil, &fieldError{field: "payload.wallet.kind", want: "cold-customer, hot-customer, cold-house or hot-house", got: strconv.Quote(p.Wallet.Kind)}
		}
		a, ok := st.Ledger.AssetByCode(strings.ToUpper(strings.TrimSpace(p.Wallet.Asset)))
		if !ok {
			return nil, &fieldError{field: "payload.wallet.asset", want: "a listed asset's code", got: strconv.Quote(p.Wallet.Asset)}
		}
		owner, err := strconv.ParseUint(p.Wallet.Owner, 10, 64)
		if err != nil {
			return nil, &fieldError{field: "payload.wallet.owner", want: "a ledger owner as a decimal string", got: strconv.Quote(p.Wallet.Owner)}
		}
		v = core.RegisterWalletPayload{Wallet: custody.Wallet{ID: p.Wallet.ID, Kind: k, Asset: a.ID, Descriptor: p.Wallet.Descriptor, Owner: ledger.OwnerID(owner),
			NextIndex: p.Wallet.NextIndex, NextChange: p.Wallet.NextChange}, Name: p.Name, Addresses: p.Addresses, Fingerprints: p.Fingerprints}
	case core.KindRegisterTokenRequest:
		var p RegisterTokenPayload
		if err := decodeStrict(raw, &p); err != nil {
			return nil, payloadError(kind, err)
		}
		a, ok := st.Ledger.AssetByCode(strings.ToUpper(strings.TrimSpace(p.Asset)))
		if !ok {
			return nil, &fieldError{field: "payload.asset", want: "a registered asset's code", got: strconv.Quote(p.Asset)}
		}
		v = core.RegisterTokenPayload{Token: custody.Token{Asset: a.ID, ChainID: p.ChainID, Contract: p.Contract}}
	case core.KindRegisterGasAccountRequest:
		var p core.RegisterGasAccountPayload
		if err := decodeStrict(raw, &p); err != nil {
			return nil, payloadError(kind, err)
		}
		p.Asset = strings.ToUpper(strings.TrimSpace(p.Asset))
		if err := st.CheckRegisterGasAccount(p); err != nil {
			return nil, err
		}
		v = p
	default:
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return nil, fmt.Errorf("%w: payload", errBadJSON)
		}
		return json.RawMessage(compact.String()), nil
	}
	b, err := json.Marshal(v)
	return json.RawMessage(b), err
}

// requestPayloadOut turns a journaled payload into the API's form; one
// that does not decode is shown as journaled.
func requestPayloadOut(st *core.State, kind people.RequestKind, raw json.RawMessage) json.RawMessage {
	var v any
	switch kind {
	case core.KindLiftHalt:
		var p core.LiftHaltPayload
		if json.Unmarshal(raw, &p) != nil {
			return raw
		}
		v = apiLiftHalt{Switch: switchText(st, p.Switch)}
	case core.KindResumptionPlan:
		var p core.ResumptionPlanPayload
		if json.Unmarshal(raw, &p) != nil {
			return raw
		}
		out := apiResumptionPlan{ID: p.ID, Steps: []string{}}
		for _, sw := range p.Steps {
			out.Steps = append(out.Steps, switchText(st, sw))
		}
		v = out
	case core.KindIndexPrice, core.KindDealerReference:
		var p core.MarketPricePayload
		if json.Unmarshal(raw, &p) != nil {
			return raw
		}
		code := strconv.Itoa(int(p.Market))
		if m, ok := st.Trading.Market(p.Market); ok {
			code = m.Listing.Code
		}
		v = apiMarketPrice{Market: code, Price: Units(p.Price)}
	case people.KindListAsset:
		var p people.ListAssetPayload
		if json.Unmarshal(raw, &p) != nil {
			return raw
		}
		v = apiListAsset{Asset: assetCode(st, p.Asset)}
	case people.KindAddOperator, people.KindIssueEnrolment:
		var p people.AddOperatorPayload
		if json.Unmarshal(raw, &p) != nil {
			return raw
		}
		v = apiAddOperator{Operator: p.Operator, Roles: p.Roles, Code: p.Code, CodeExpires: Time{time.Unix(0, p.CodeExpires).UTC()}}
	case core.KindRegisterWalletRequest:
		p, err := core.DecodeRegisterWallet(raw)
		if err != nil {
			return raw
		}
		w := p.Wallet
		v = RegisterWalletPayload{Wallet: WalletPayload{ID: w.ID, Kind: w.Kind.String(), Asset: assetCode(st, w.Asset), Descriptor: w.Descriptor,
			Owner: strconv.FormatUint(uint64(w.Owner), 10), NextIndex: w.NextIndex, NextChange: w.NextChange}, Name: p.Name, Addresses: p.Addresses, Fingerprints: p.Fingerprints}
	case core.KindRegisterTokenRequest:
		p, err := core.DecodeRegisterToken(raw)
		if err != nil {
			return raw
		}
		v = RegisterTokenPayload{Asset: assetCode(st, p.Token.Asset), ChainID: p.Token.ChainID, Contract: p.Token.Contract}
	default:
		return raw
	}
	b, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return b
}

// assetCode is an asset's code, or its id in words when unknown.
func assetCode(st *core.State, id ledger.AssetID) string {
	if a, ok := st.Ledger.Asset(id); ok {
		return a.Code
	}
	return fmt.Sprintf("asset #%d", id)
}

// serviceWords name the services in a sentence.
var serviceWords = map[controls.Service]string{
	controls.Deposit: "deposits", controls.Withdraw: "withdrawals", controls.Trade: "trading", controls.Dealer: "dealer desk",
	controls.Bank: "bank transfers (yen)", controls.Card: "card payments (yen)", controls.PayEasy: "pay-easy payments (yen)",
	controls.Convenience: "convenience-store payments (yen)", controls.Global: "everything (the global switch)",
}

// switchWords names a switch in words: "BTC withdrawals", "bank transfers
// (yen)".
func switchWords(st *core.State, sw controls.Switch) string {
	w, ok := serviceWords[sw.Service]
	if !ok {
		w = string(sw.Service)
	}
	if sw.Asset == 0 {
		return w
	}
	return assetCode(st, sw.Asset) + " " + w
}

// describeRequest says what a request does when approved, in words.
func describeRequest(st *core.State, q people.Request) string {
	switch q.Kind {
	case core.KindLiftHalt:
		var p core.LiftHaltPayload
		if json.Unmarshal(q.Payload, &p) == nil {
			return "lift " + switchWords(st, p.Switch)
		}
	case core.KindResumptionPlan:
		var p core.ResumptionPlanPayload
		if json.Unmarshal(q.Payload, &p) == nil {
			var steps []string
			for _, sw := range p.Steps {
				steps = append(steps, switchWords(st, sw))
			}
			return fmt.Sprintf("adopt resumption plan %s: lift %s, in this order", p.ID, strings.Join(steps, ", then "))
		}
	case core.KindIndexPrice, core.KindDealerReference:
		var p core.MarketPricePayload
		if json.Unmarshal(q.Payload, &p) == nil {
			what := "set the index price of"
			if q.Kind == core.KindDealerReference {
				what = "set the dealer desk's reference price of"
			}
			if m, ok := st.Trading.Market(p.Market); ok {
				u := unitsOf(st, &m.Listing)
				return fmt.Sprintf("%s %s to %s %s", what, m.Listing.Code, u.price(p.Price), u.quoteCode)
			}
			return fmt.Sprintf("%s market #%d to %d", what, p.Market, p.Price)
		}
	case core.KindListMarketRequest:
		var p core.ListMarketPayload
		if json.Unmarshal(q.Payload, &p) == nil {
			return "list market " + p.Listing.Code + describeListing(st, p.Listing)
		}
	case people.KindListAsset:
		var p people.ListAssetPayload
		if json.Unmarshal(q.Payload, &p) == nil {
			return "list asset " + assetCode(st, p.Asset) + ": deposits and trading open"
		}
	case people.KindSetRoles:
		var p people.SetRolesPayload
		if json.Unmarshal(q.Payload, &p) == nil {
			return fmt.Sprintf("give %s the roles %s", p.Operator, rolesText(p.Roles))
		}
	case people.KindAddOperator:
		var p people.AddOperatorPayload
		if json.Unmarshal(q.Payload, &p) == nil {
			return fmt.Sprintf("add operator %s with the roles %s (enrolment code valid until %s)", p.Operator, rolesText(p.Roles),
				time.Unix(0, p.CodeExpires).UTC().Format("2006-01-02 15:04 UTC"))
		}
	case people.KindIssueEnrolment:
		var p people.AddOperatorPayload
		if json.Unmarshal(q.Payload, &p) == nil {
			return fmt.Sprintf("issue %s a new enrolment code, valid until %s", p.Operator, time.Unix(0, p.CodeExpires).UTC().Format("2006-01-02 15:04 UTC"))
		}
	case people.KindEnrolCredential, people.KindRemoveCredential:
		var p people.CredentialPayload
		if json.Unmarshal(q.Payload, &p) == nil {
			verb := "activate"
			if q.Kind == people.KindRemoveCredential {
				verb = "remove"
			}
			return fmt.Sprintf("%s %s's credential %s (fingerprint %s)", verb, p.Operator, shortID(p.Credential), p.Fingerprint)
		}
	case core.KindApproveWithdrawal:
		var p core.ApproveWithdrawalPayload
		if json.Unmarshal(q.Payload, &p) == nil {
			if w, ok := st.Withdraw.Get(p.Withdrawal); ok {
				if a, ok := st.Ledger.AssetByCode(w.Intent.Asset); ok {
					return fmt.Sprintf("approve withdrawal %s: %s %s to %s", p.Withdrawal, w.Intent.Amount.FormatDecimal(a.Decimals), a.Code, w.Intent.Address)
				}
			}
			return "approve withdrawal " + p.Withdrawal
		}
	case core.KindApproveCompensation:
		var p core.ApproveCompensationPayload
		if json.Unmarshal(q.Payload, &p) == nil {
			if pl, ok := st.Compensation.Get(p.Plan); ok {
				a, _ := st.Ledger.Asset(pl.PayAsset)
				return fmt.Sprintf("approve compensation plan %s: %s %s to %s customers, funded from equity", p.Plan,
					groupDigits(ledger.AmountOf(pl.Total).FormatDecimal(a.Decimals)), a.Code, groupDigits(strconv.Itoa(pl.Count)))
			}
			return "approve compensation plan " + p.Plan
		}
	case core.KindWriteOffOwed:
		var p core.WriteOffOwedPayload
		if json.Unmarshal(q.Payload, &p) == nil {
			return fmt.Sprintf("write off what customer %d owes in %s, to house equity", p.Customer, p.Asset)
		}
	case core.KindSetWithdrawalRulesRequest:
		return "replace the withdrawal rules (limits, cool-down, deny list, finality tiers)"
	}
	return string(q.Kind)
}

// describeListing says a listing's main terms.
func describeListing(st *core.State, l trading.Listing) string {
	u := unitsOf(st, &l)
	if u.baseCode == "" || u.quoteCode == "" {
		return ""
	}
	s := fmt.Sprintf(": tick %s, lot %s, fees %d / %d bps", u.money(l.TickSize), u.qty(l.LotSize), l.MakerFeeBps, l.TakerFeeBps)
	if l.DealerSpreadBps > 0 {
		s += fmt.Sprintf(", dealer desk at %d bps", l.DealerSpreadBps)
	}
	return s
}

func rolesText(rs []people.Role) string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// shortID is a credential id's first characters, base64url.
func shortID(id []byte) string {
	s := base64.RawURLEncoding.EncodeToString(id)
	if len(s) > 12 {
		s = s[:12] + "…"
	}
	return s
}
