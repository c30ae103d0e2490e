package reserves

import (
	"bytes"
	"testing"

	"kinko/internal/custody"
	"kinko/internal/ledger"
)

func TestReportAddsUp(t *testing.T) {
	l := ledger.New()
	c := custody.New()
	l.CreateAssets([]ledger.Asset{{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}, nil)
	l.CreateCustomers([]ledger.OwnerID{1, 2}, nil)
	ws := []custody.Wallet{
		{ID: 1, Kind: custody.ColdCustomer, Asset: 2, Descriptor: "d1", Owner: ledger.OwnerHouseMin + 100},
		{ID: 2, Kind: custody.HotCustomer, Asset: 2, Descriptor: "d2", Owner: ledger.OwnerHouseMin + 101},
		{ID: 3, Kind: custody.ColdHouse, Asset: 2, Descriptor: "d3", Owner: ledger.OwnerHouseMin + 102},
	}
	for _, w := range ws {
		if err := c.RegisterWallet(l, w); err != nil {
			t.Fatal(err)
		}
	}
	house := ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: 2, Kind: ledger.KindHouse}
	c1 := ledger.AccountKey{Owner: 1, Asset: 2, Kind: ledger.KindAvailable}
	c2 := ledger.AccountKey{Owner: 2, Asset: 2, Kind: ledger.KindAvailable}
	l.CreateAccounts([]ledger.AccountKey{house, c1, c2}, nil)
	tr := func(id uint64, d, cr ledger.AccountKey, v uint64) ledger.Transfer {
		return ledger.Transfer{ID: ledger.ID{Lo: id}, Debit: d, Credit: cr, Amount: ledger.AmountOf(v)}
	}
	// 9,000 + 1,000 owed to customers; 9,400 cold, 600 hot (6%: over the
	// cap); the house holds 500 in its cold wallet: short of the 600.
	res := l.CreateTransfers([]ledger.Transfer{
		tr(1, ws[0].Account(), c1, 9000),
		tr(2, ws[0].Account(), c2, 1000),
		tr(3, ws[1].Account(), ws[0].Account(), 600),
		tr(4, ws[2].Account(), house, 500),
	}, 1, nil)
	if len(res) != 0 {
		t.Fatal(res)
	}
	rep, err := Compute(l, c, DefaultPolicy, nil, 7, 1)
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Rows[0]
	if r.CustomerLiabilities != ledger.AmountOf(10000) || r.CustomerWallets != ledger.AmountOf(10000) || !r.Segregated {
		t.Errorf("liabilities %v wallets %v segregated %v", r.CustomerLiabilities, r.CustomerWallets, r.Segregated)
	}
	if r.HotShareBps != 600 || !r.HotOverCap || r.Sweep != ledger.AmountOf(400) || !r.Refill.IsZero() {
		t.Errorf("hot share %d over cap %v sweep %v refill %v; want 600 true 400 0", r.HotShareBps, r.HotOverCap, r.Sweep, r.Refill)
	}
	if r.HouseRequired != ledger.AmountOf(600) || r.HouseHeld != ledger.AmountOf(500) || r.HouseBacked {
		t.Errorf("house required %v held %v backed %v", r.HouseRequired, r.HouseHeld, r.HouseBacked)
	}
	if rep.OK() {
		t.Error("report OK despite the cap and the backing")
	}
	// The chain says the customer wallets hold less than the ledger: not
	// segregated.
	rep, _ = Compute(l, c, DefaultPolicy, map[uint32]ledger.Amount{1: ledger.AmountOf(9000), 2: ledger.AmountOf(600)}, 7, 1)
	if rep.Rows[0].Segregated || *rep.Rows[0].OnChainCustomer != ledger.AmountOf(9600) {
		t.Errorf("on-chain shortfall not seen: %+v", rep.Rows[0])
	}
	// Below target: a refill from cold.
	l.CreateTransfers([]ledger.Transfer{tr(5, ws[0].Account(), ws[1].Account(), 500)}, 2, nil)
	rep, _ = Compute(l, c, DefaultPolicy, nil, 8, 2)
	if r := rep.Rows[0]; r.HotShareBps != 100 || r.Refill != ledger.AmountOf(100) || !r.Sweep.IsZero() {
		t.Errorf("below target: share %d refill %v sweep %v; want 100 100 0", r.HotShareBps, r.Refill, r.Sweep)
	}
	if err := (Policy{HotTargetBps: 200, HotCapBps: 600}).Validate(); err == nil {
		t.Error("a cap above 5% validated")
	}
	var buf bytes.Buffer
	if err := WriteDailyCSV(&buf, l, "2026-11-22"); err != nil {
		t.Fatal(err)
	}
	want := "date,customer,asset,quantity,base_units\n2026-11-22,1,BTC,0.00009,9000\n2026-11-22,2,BTC,0.00001,1000\n"
	if got := buf.String(); got != want {
		t.Errorf("daily CSV:\n%s\nwant:\n%s", got, want)
	}
}
