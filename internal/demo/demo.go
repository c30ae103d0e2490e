// Package demo seeds a fresh kinko with the assets, house and wallet
// accounts, operators and demo customers that `kinko dev` shows.
package demo

import (
	"context"
	"fmt"
	"time"

	"kinko/internal/api"
	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/market"
	"kinko/internal/people"
	"kinko/internal/trading"
)

// Owners of the demo's wallet and bank accounts.
const (
	OwnerColdCustomer = ledger.OwnerHouseMin + 100
	OwnerHotCustomer  = ledger.OwnerHouseMin + 101
	OwnerColdHouse    = ledger.OwnerHouseMin + 102
	OwnerHotHouse     = ledger.OwnerHouseMin + 103
	OwnerBank         = ledger.OwnerHouseMin + 110
)

// Assets are the demo's registry.
var Assets = []ledger.Asset{
	{ID: 1, Code: "JPY", Decimals: 0, Class: ledger.ClassFiat},
	{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain},
	{ID: 3, Code: "ETH", Decimals: 18, Class: ledger.ClassChain},
	{ID: 4, Code: "XEM", Decimals: 6, Class: ledger.ClassChain},
}

// Person is a demo login.
type Person struct {
	Name, Email, Password string
	Roles                 []people.Role
	Customer              ledger.OwnerID
	TOTPSecret, TOTPURI   string
}

// Operators are the demo operators: an admin, an approver who is also an
// operator, and a CISO, so that every two-person flow can be tried.
var Operators = []Person{
	{Name: "aiko", Password: "kinko-demo-aiko", Roles: []people.Role{people.RoleAdmin}},
	{Name: "kenji", Password: "kinko-demo-kenji", Roles: []people.Role{people.RoleOperator, people.RoleApprover}},
	{Name: "sora", Password: "kinko-demo-sora", Roles: []people.Role{people.RoleCISO, people.RoleAuditor}},
}

// Customers are the demo customers.
var Customers = []Person{
	{Name: "Hanako Yamada", Email: "hanako@example.jp", Password: "kinko-demo-hanako", Customer: 1001},
	{Name: "Taro Suzuki", Email: "taro@example.jp", Password: "kinko-demo-taro", Customer: 1002},
	{Name: "Yuki Tanaka", Email: "yuki@example.jp", Password: "kinko-demo-yuki", Customer: 1003},
}

// Seed writes the demo's opening state into an empty core and returns the
// logins with their TOTP seeds (shown once, for the demo only).
// With onChain, customers' bitcoin comes later as real deposits (see
// StartChain) rather than as opening ledger balances.
func Seed(ctx context.Context, c *core.Core, srv *api.Server, now time.Time, onChain bool) ([]Person, error) {
	submit := func(cmd core.Command) error {
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
		if a.Class == ledger.ClassFiat {
			keys = append(keys, ledger.AccountKey{Owner: OwnerBank, Asset: a.ID, Kind: ledger.KindWallet})
		} else {
			for _, w := range []ledger.OwnerID{OwnerColdCustomer, OwnerHotCustomer, OwnerColdHouse, OwnerHotHouse} {
				keys = append(keys, ledger.AccountKey{Owner: w, Asset: a.ID, Kind: ledger.KindWallet})
			}
		}
	}
	if err := submit(core.CreateAccounts{Keys: keys}); err != nil {
		return nil, err
	}
	var out []Person
	for i, o := range Operators {
		actor := ""
		if i > 0 {
			actor = Operators[0].Name
		}
		res, err := srv.CreateOperator(ctx, actor, api.CreateOperatorRequest{Name: o.Name, Roles: o.Roles, Password: o.Password})
		if err != nil {
			return nil, fmt.Errorf("demo: operator %s: %w", o.Name, err)
		}
		o.TOTPSecret, o.TOTPURI = res.TOTPSecret, res.TOTPURI
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
	if err := submit(core.SetKYC{Customer: Customers[0].Customer, KYC: people.KYCVerified, Actor: "kenji", Reason: "demo: documents checked"}); err != nil {
		return nil, err
	}
	// Opening balances: customers' yen came in through the bank; their
	// coins sit in the cold customer wallet.
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
		deposit(p.Customer, 1, OwnerBank, 1_000_000*k)
		if !onChain {
			deposit(p.Customer, 2, OwnerColdCustomer, 50_000_000*k)
		}
		deposit(p.Customer, 4, OwnerColdCustomer, 1_000_000_000*k)
	}
	// The house's own inventory, for the dealer desk.
	ts = append(ts, ledger.Transfer{ID: ledger.ID{Hi: 0xde30, Lo: id}, Debit: ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: 1, Kind: ledger.KindEquity},
		Credit: ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: 1, Kind: ledger.KindHouse}, Amount: ledger.AmountOf(100_000_000), Code: 1},
		ledger.Transfer{ID: ledger.ID{Hi: 0xde30, Lo: id + 1}, Debit: ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: 4, Kind: ledger.KindEquity},
			Credit: ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: 4, Kind: ledger.KindHouse}, Amount: ledger.AmountOf(1_000_000_000_000), Code: 1})
	if err := submit(core.CreateTransfers{Transfers: ts}); err != nil {
		return nil, err
	}
	for _, l := range Markets {
		if err := submit(core.ListMarket{Listing: l, Actor: "aiko"}); err != nil {
			return nil, err
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
