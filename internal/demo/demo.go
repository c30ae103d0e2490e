// Package demo seeds a fresh kinko with the assets, house and wallet
// accounts, operators and demo customers that `kinko dev` shows.
package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"kinko/internal/api"
	"kinko/internal/auth"
	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/market"
	"kinko/internal/operators"
	"kinko/internal/passkey"
	"kinko/internal/people"
	"kinko/internal/trading"
	"kinko/internal/withdraw"
	"kinko/internal/yen"
)

// Owners of the demo's wallet accounts (its yen accounts are yen's:
// yen.OwnerTrust, yen.OwnerOperating).
const (
	OwnerColdCustomer = ledger.OwnerHouseMin + 100
	OwnerHotCustomer  = ledger.OwnerHouseMin + 101
	OwnerColdHouse    = ledger.OwnerHouseMin + 102
	OwnerHotHouse     = ledger.OwnerHouseMin + 103
)

// Assets are the demo's registry.
var Assets = []ledger.Asset{
	{ID: 1, Code: "JPY", Decimals: 0, Class: ledger.ClassFiat},
	{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain},
	{ID: 3, Code: "ETH", Decimals: 18, Class: ledger.ClassChain},
	{ID: 4, Code: "XEM", Decimals: 6, Class: ledger.ClassChain},
}

// Person is a demo login. Customers have a password and a TOTP seed;
// operators a software credential (KeyFile, a CLI key) and a one-time
// link to enrol a security key or passkey of their own in the console.
type Person struct {
	Name, Email, Password string
	Roles                 []people.Role
	Customer              ledger.OwnerID
	TOTPSecret, TOTPURI   string
	KeyFile, EnrolURL     string
}

// Operators are the demo operators: three admins (a credential change
// needs an admin who is neither its proposer nor its subject), an approver
// who is also an operator, and a CISO, so that every two-person flow can
// be tried.
var Operators = []Person{
	{Name: "aiko", Roles: []people.Role{people.RoleAdmin}},
	{Name: "kenji", Roles: []people.Role{people.RoleOperator, people.RoleApprover}},
	{Name: "sora", Roles: []people.Role{people.RoleCISO, people.RoleAuditor}},
	{Name: "ren", Roles: []people.Role{people.RoleAdmin}},
	{Name: "yui", Roles: []people.Role{people.RoleAdmin}},
}

// Team loads the demo operators' software credentials from dir (the data
// directory's operators/), making them on first use. Dev only: in service
// each operator makes and keeps their own.
func Team(dir string, rp passkey.RP) (*operators.Team, error) {
	kd := filepath.Join(dir, "operators")
	if err := os.MkdirAll(kd, 0o700); err != nil {
		return nil, err
	}
	var ops []*operators.Operator
	for _, p := range Operators {
		path := filepath.Join(kd, p.Name+".key")
		k, err := passkey.LoadSoftKey(path)
		if errors.Is(err, os.ErrNotExist) {
			if k, err = passkey.NewSoftKey(passkey.AlgEdDSA); err == nil {
				err = passkey.SaveSoftKey(path, k)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("demo: operator key %s: %w", path, err)
		}
		ops = append(ops, &operators.Operator{Name: p.Name, Roles: p.Roles, Key: k})
	}
	return operators.NewWithKeys(rp, ops...), nil
}

// KeyFile is where the demo keeps an operator's software credential.
func KeyFile(dir, name string) string { return filepath.Join(dir, "operators", name+".key") }

// admins returns two admins who are not subject: the proposer and the
// approver of a change to subject.
func admins(subject string) (string, string) {
	var out []string
	for _, p := range Operators {
		if p.Name != subject && len(p.Roles) > 0 && p.Roles[0] == people.RoleAdmin {
			out = append(out, p.Name)
		}
	}
	return out[0], out[1]
}

// AutoApprove approves, with the demo operators' own software
// credentials, every pending credential a demo operator enrols in the
// console: two admins who are neither the operator nor each other. Dev
// only, so that a person trying kinko can sign with a security key or
// passkey at once; it returns when ctx ends.
func AutoApprove(ctx context.Context, c *core.Core, team *operators.Team, log *slog.Logger) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var todo []people.CredentialPayload
		c.Read(func(st *core.State) {
			for _, o := range st.People.Operators() {
				for _, k := range o.Pending {
					todo = append(todo, people.CredentialPayload{Operator: o.Name, Credential: k.ID, Fingerprint: people.Fingerprint(k.PublicKey)})
				}
			}
		})
		for _, p := range todo {
			if team.Get(p.Operator) == nil {
				continue
			}
			a, b := admins(p.Operator)
			n++
			now := time.Now()
			cmds := []core.Command{
				team.Open(fmt.Sprintf("dev-enrol-%d-%d", now.UnixNano(), n), people.KindEnrolCredential, p, a, people.RoleAdmin, "dev: credential enrolled in the console", now.Add(time.Hour)),
			}
			cmds = append(cmds, team.Decide(fmt.Sprintf("dev-enrol-%d-%d", now.UnixNano(), n), b, "dev: approved by the demo", true))
			for _, cmd := range cmds {
				if o, err := c.Submit(ctx, now, cmd); err != nil || o.Err != nil {
					log.Warn("dev: could not approve a credential", "operator", p.Operator, "err", errors.Join(err, o.Err))
					break
				}
			}
			log.Info("dev: credential approved by two demo admins", "operator", p.Operator, "fingerprint", p.Fingerprint)
		}
	}
}

// Customers are the demo customers.
var Customers = []Person{
	{Name: "Hanako Yamada", Email: "hanako@example.jp", Password: "kinko-demo-hanako", Customer: 1001},
	{Name: "Taro Suzuki", Email: "taro@example.jp", Password: "kinko-demo-taro", Customer: 1002},
	{Name: "Yuki Tanaka", Email: "yuki@example.jp", Password: "kinko-demo-yuki", Customer: 1003},
}

// Rules are the dev's withdrawal rules: the dev's short cool-down (the
// co-signer waits as long by its own clock), limits, a second operator
// above 0.5 BTC, and deposits final at the watcher's six confirmations.
func Rules(coolDown time.Duration) withdraw.Rules {
	return withdraw.Rules{
		CoolDownSeconds:  int64((coolDown + time.Second - 1) / time.Second),
		DustLimit:        map[string]withdraw.Amount{"BTC": withdraw.AmountOf(546)},
		PerWithdrawalMax: map[string]withdraw.Amount{"BTC": withdraw.AmountOf(1_0000_0000)},
		PerCustomerDay:   map[string]withdraw.Amount{"BTC": withdraw.AmountOf(2_0000_0000)},
		PerAssetHour:     map[string]withdraw.Amount{"BTC": withdraw.AmountOf(5_0000_0000)},
		ApprovalAbove:    map[string]withdraw.Amount{"BTC": withdraw.AmountOf(5000_0000)},
		Finality:         map[string][]withdraw.Tier{"BTC": {{Depth: Confirmations}}},
	}
}

// Seed writes the demo's opening state into an empty core and returns the
// logins with their TOTP seeds (shown once, for the demo only).
// With onChain, customers' bitcoin comes later as real deposits (see
// StartChain) rather than as opening ledger balances.
//
// coolDown is the cool-down of new intent keys and addresses (CoolDown in
// kinko dev).
//
// Yen is set up as an exchange sets it up (YenConfig, with the built-in
// bank master): the customers are verified, their names in kana recorded
// and each given a virtual account; their opening yen then comes in as
// transfers through bank (the bank simulator, whose notices the running
// connector imports and credits into the trust account), and the day's
// statement is written. The house's own yen is at the operating account.
func Seed(ctx context.Context, c *core.Core, srv *api.Server, now time.Time, onChain bool, coolDown time.Duration, team *operators.Team, dir string, bank YenBank) ([]Person, error) {
	submit := func(cmd core.Command) error {
		cmd, err := team.Sign(cmd)
		if err != nil {
			return err
		}
		o, err := c.Submit(ctx, now, cmd)
		if err == nil {
			err = o.Err
		}
		if err == nil {
			err = o.EventErr()
		}
		if err != nil {
			return fmt.Errorf("demo: %s: %w", cmd.Kind(), err)
		}
		return nil
	}
	if err := submit(core.CreateAssets{Assets: Assets}); err != nil {
		return nil, err
	}
	var keys []ledger.AccountKey
	for _, a := range Assets {
		keys = append(keys,
			ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: a.ID, Kind: ledger.KindHouse},
			ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: a.ID, Kind: ledger.KindEquity})
		if a.Class != ledger.ClassFiat {
			for _, w := range []ledger.OwnerID{OwnerColdCustomer, OwnerHotCustomer, OwnerColdHouse, OwnerHotHouse} {
				keys = append(keys, ledger.AccountKey{Owner: w, Asset: a.ID, Kind: ledger.KindWallet})
			}
		}
	}
	if err := submit(core.CreateAccounts{Keys: keys}); err != nil {
		return nil, err
	}
	var out []Person
	for _, cmd := range team.Bootstrap(now) {
		if err := submit(cmd); err != nil {
			return nil, err
		}
	}
	// Each operator gets a one-time code to enrol a credential of their
	// own in the console, issued by two admins.
	for i, o := range Operators {
		code, _, err := auth.NewToken()
		if err != nil {
			return nil, err
		}
		h := sha256.Sum256([]byte(code))
		a, b := admins(o.Name)
		id := fmt.Sprintf("dev-enrolment-%d", i)
		payload := people.AddOperatorPayload{Operator: o.Name, Code: hex.EncodeToString(h[:]), CodeExpires: now.Add(7 * 24 * time.Hour).UnixNano()}
		if err := submit(team.Open(id, people.KindIssueEnrolment, payload, a, people.RoleAdmin, "dev: enrolment link", now.Add(time.Hour))); err != nil {
			return nil, err
		}
		if err := submit(team.Decide(id, b, "dev: enrolment link", true)); err != nil {
			return nil, err
		}
		o.KeyFile = KeyFile(dir, o.Name)
		o.EnrolURL = team.Origin + "/console/enrol?" + url.Values{"operator": {o.Name}, "code": {code}}.Encode()
		out = append(out, o)
	}
	for _, p := range Customers {
		res, err := srv.SignUpAs(ctx, p.Customer, api.SignUpRequest{Email: p.Email, Name: p.Name, Password: p.Password})
		if err != nil {
			return nil, fmt.Errorf("demo: customer %s: %w", p.Email, err)
		}
		p.TOTPSecret, p.TOTPURI = res.TOTPSecret, res.TOTPURI
		out = append(out, p)
	}
	for _, p := range Customers {
		if err := submit(core.SetKYC{Customer: p.Customer, KYC: people.KYCVerified, Actor: "kenji", Reason: "demo: documents checked"}); err != nil {
			return nil, err
		}
	}
	if err := seedYen(submit); err != nil {
		return nil, err
	}
	// Opening balances: customers' coins sit in the cold customer wallet
	// (their yen comes through the bank, below).
	var ts []ledger.Transfer
	id := uint64(1)
	deposit := func(cu ledger.OwnerID, asset ledger.AssetID, wallet ledger.OwnerID, amount uint64) {
		ts = append(ts, ledger.Transfer{
			ID:     ledger.ID{Hi: 0xde30, Lo: id},
			Debit:  ledger.AccountKey{Owner: wallet, Asset: asset, Kind: ledger.KindWallet},
			Credit: ledger.AccountKey{Owner: cu, Asset: asset, Kind: ledger.KindAvailable},
			Amount: ledger.AmountOf(amount), Code: 1,
		})
		id++
	}
	for i, p := range Customers {
		k := uint64(i + 1)
		if !onChain {
			deposit(p.Customer, 2, OwnerColdCustomer, 50_000_000*k)
		}
		deposit(p.Customer, 4, OwnerColdCustomer, 1_000_000_000*k)
	}
	// The house's own inventory, for the dealer desk: its yen at its
	// operating account (the bank simulator opens it with as much).
	ts = append(ts, ledger.Transfer{ID: ledger.ID{Hi: 0xde30, Lo: id}, Debit: ledger.AccountKey{Owner: yen.OwnerOperating, Asset: 1, Kind: ledger.KindWallet},
		Credit: ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: 1, Kind: ledger.KindHouse}, Amount: ledger.AmountOf(HouseYen), Code: 1},
		ledger.Transfer{ID: ledger.ID{Hi: 0xde30, Lo: id + 1}, Debit: ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: 4, Kind: ledger.KindEquity},
			Credit: ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: 4, Kind: ledger.KindHouse}, Amount: ledger.AmountOf(1_000_000_000_000), Code: 1})
	if err := submit(core.CreateTransfers{Transfers: ts}); err != nil {
		return nil, err
	}
	if _, err := SendOpeningYen(ctx, c, bank); err != nil {
		return nil, err
	}
	// The day's statement: the same transfers again (each credited once,
	// by the bank's id) and the trust account reconciled.
	if _, err := bank.Close(); err != nil {
		return nil, fmt.Errorf("demo: the bank's statement: %w", err)
	}
	for _, l := range Markets {
		for _, cmd := range team.Approved(core.KindListMarketRequest, core.ListMarketPayload{Listing: l}, "aiko", "ren", people.RoleAdmin, "demo market", now) {
			if err := submit(cmd); err != nil {
				return nil, err
			}
		}
	}
	// A market that never traded has no reference price and trades
	// nothing: two operators give each its index, aiko asking and kenji
	// approving. Then aiko alone may set the XEM desk's reference, within
	// 5% of the index.
	for _, ix := range Indexes {
		id := fmt.Sprintf("demo-index-%d", ix.Market)
		payload := fmt.Sprintf(`{"market":%d,"price":%d}`, ix.Market, ix.Price)
		if err := submit(core.OpenRequest{Request: people.Request{ID: id, Kind: core.KindIndexPrice, Payload: []byte(payload), Requester: "aiko",
			Reason: "demo: opening price", RequiredRole: people.RoleApprover, Expires: now.Add(time.Hour).UnixNano()}}); err != nil {
			return nil, err
		}
		if err := submit(core.DecideRequest{ID: id, Decider: "kenji", Reason: "demo: checked against the market", Approve: true}); err != nil {
			return nil, err
		}
	}
	if err := submit(core.SetReferencePrice{Market: 2, Price: 88, Actor: "aiko"}); err != nil {
		return nil, err
	}
	for _, cmd := range team.Approved(core.KindSetWithdrawalRulesRequest, core.SetWithdrawalRulesPayload{Rules: Rules(coolDown)}, "aiko", "ren", people.RoleAdmin, "dev withdrawal rules", now) {
		if err := submit(cmd); err != nil {
			return nil, err
		}
	}
	// A few resting orders of the verified demo customer, so the books
	// and the dealer's reference are not empty.
	for _, o := range []core.PlaceOrder{
		{Customer: Customers[0].Customer, Market: 2, Side: market.Sell, Type: market.Limit, Price: 90, Qty: 100_000_000},
		{Customer: Customers[0].Customer, Market: 2, Side: market.Buy, Type: market.Limit, Price: 87, Qty: 100_000_000},
		{Customer: Customers[0].Customer, Market: 1, Side: market.Buy, Type: market.Limit, Price: 9_000_000, Qty: 1_000_000},
	} {
		if err := submit(o); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Indexes are the demo markets' opening index prices, yen per coin.
var Indexes = []struct {
	Market uint16
	Price  int64
}{{1, 10_000_000}, {3, 500_000}, {2, 88}}

// Markets are the demo's markets: bitcoin against yen (an order book) and
// ether against yen (in gwei: wei would not fit 64-bit quantities past
// 9.2 ETH), XEM against yen (an order book and the dealer desk). Prices are
// yen per whole coin.
var Markets = []trading.Listing{
	{ID: 1, Code: "BTC/JPY", Base: 2, Quote: 1, Scale: 100_000_000, TickSize: 1_000, LotSize: 100_000, MinQty: 100_000, MaxQty: 100_0000_0000,
		MaxPrice: 1_000_000_000, MaxOrders: 1 << 18, MakerFeeBps: 0, TakerFeeBps: 12},
	{ID: 3, Code: "ETH/JPY", Base: 3, Quote: 1, QtyUnit: 1_000_000_000, Scale: 1_000_000_000, TickSize: 1_000, LotSize: 1_000_000, MinQty: 1_000_000,
		MaxQty: 1_000_000_000_000, MaxPrice: 1_000_000_000, MaxOrders: 1 << 18, MakerFeeBps: 0, TakerFeeBps: 12},
	{ID: 2, Code: "XEM/JPY", Base: 4, Quote: 1, Scale: 1_000_000, TickSize: 1, LotSize: 1_000_000, MinQty: 1_000_000, MaxQty: 1_000_000_000_000,
		MaxPrice: 1_000_000, MaxOrders: 1 << 20, MakerFeeBps: 0, TakerFeeBps: 12, DealerSpreadBps: 200, QuoteValidityNs: int64(10 * time.Second),
		DealerMaxLong: 500_000_000_000, DealerMaxShort: 500_000_000_000},
}
