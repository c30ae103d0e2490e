// Package demo seeds a fresh kinko with the assets, house and wallet
// accounts and demo customers that `kinko dev` shows.
package demo

import (
	"context"
	"fmt"
	"time"

	"kinko/internal/core"
	"kinko/internal/ledger"
)

// Well-known owners of the exchange's own accounts.
const (
	// OwnerHouse owns the house (自己口) accounts.
	OwnerHouse = ledger.OwnerHouse
	// OwnerEquity owns the equity accounts that opening balances come from.
	OwnerEquity = ledger.OwnerEquity
	// OwnerColdCustomer, OwnerHotCustomer, OwnerColdHouse, OwnerHotHouse own
	// the wallet accounts of the four wallets; OwnerBank the yen bank account.
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

// Customers are the demo customers' ids.
var Customers = []ledger.OwnerID{1001, 1002, 1003}

// Seed writes the demo's opening state if the ledger is empty. It is
// idempotent: every event has a fixed id, so a second run changes nothing.
func Seed(ctx context.Context, c *core.Core, now time.Time) error {
	cmds := []core.Command{core.CreateAssets{Assets: Assets}, core.CreateCustomers{IDs: Customers}}
	var keys []ledger.AccountKey
	for _, a := range Assets {
		keys = append(keys,
			ledger.AccountKey{Owner: OwnerHouse, Asset: a.ID, Kind: ledger.KindHouse},
			ledger.AccountKey{Owner: OwnerEquity, Asset: a.ID, Kind: ledger.KindEquity})
		if a.Class == ledger.ClassFiat {
			keys = append(keys, ledger.AccountKey{Owner: OwnerBank, Asset: a.ID, Kind: ledger.KindWallet})
		} else {
			for _, w := range []ledger.OwnerID{OwnerColdCustomer, OwnerHotCustomer, OwnerColdHouse, OwnerHotHouse} {
				keys = append(keys, ledger.AccountKey{Owner: w, Asset: a.ID, Kind: ledger.KindWallet})
			}
		}
		for _, cu := range Customers {
			keys = append(keys,
				ledger.AccountKey{Owner: cu, Asset: a.ID, Kind: ledger.KindAvailable},
				ledger.AccountKey{Owner: cu, Asset: a.ID, Kind: ledger.KindHeld})
		}
	}
	cmds = append(cmds, core.CreateAccounts{Keys: keys})
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
	for i, cu := range Customers {
		k := uint64(i + 1)
		deposit(cu, 1, OwnerBank, 1_000_000*k)
		deposit(cu, 2, OwnerColdCustomer, 50_000_000*k)
		deposit(cu, 4, OwnerColdCustomer, 1_000_000_000*k)
	}
	cmds = append(cmds, core.CreateTransfers{Transfers: ts})
	for _, cmd := range cmds {
		out, err := c.Submit(ctx, now, cmd)
		if err != nil {
			return fmt.Errorf("demo: %s: %w", cmd.Kind(), err)
		}
		if err := out.EventErr(); err != nil {
			return fmt.Errorf("demo: %s: %w", cmd.Kind(), err)
		}
	}
	return nil
}
