package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ethwallet"
	"kinko/internal/ledger"
	"kinko/internal/operators"
	"kinko/internal/reserves"
)

// weiOfMilli is m thousandths of one ether in wei, as a 128-bit amount.
func weiOfMilli(m uint64) ledger.Amount {
	hi, lo := mul64(m, 1_000_000_000_000_000)
	return ledger.Amount{Hi: hi, Lo: lo}
}

func mul64(a, b uint64) (hi, lo uint64) {
	const mask = 1<<32 - 1
	a0, a1, b0, b1 := a&mask, a>>32, b&mask, b>>32
	w0 := a0 * b0
	t := a1*b0 + w0>>32
	w1, w2 := t&mask, t>>32
	w1 += a0 * b1
	return a1*b1 + w2 + w1>>32, a * b
}

// TestReservesETH: `kinko reserves` reports ETH as it does BTC, in wei
// beyond 64 bits: a cold customer Safe wallet holding 95 ETH, the hot one
// 5.5 ETH and the house's cold Safe 5 ETH. The hot share is 547 basis
// points, above the 5% cap, with the sweep to the 2% target (3.49 ETH);
// the house holds 0.5 ETH less than the hot customer holdings it must
// match.
func TestReservesETH(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	c, err := core.Open(context.Background(), core.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	addr := func(b byte) ethwallet.Address {
		var a ethwallet.Address
		a[0], a[19] = 0xc0, b
		return a
	}
	desc := func(o byte) string {
		return ethwallet.Descriptor{ChainID: 1, Singleton: addr(1), Factory: addr(2), Fallback: addr(3), Threshold: 2,
			Owners: []ethwallet.Address{addr(o), addr(o + 1), addr(o + 2)}}.String()
	}
	const eth ledger.AssetID = 3
	team := operators.Crew("ether reserves test")
	now := time.Now()
	cmds := append([]core.Command{core.CreateAssets{Assets: []ledger.Asset{{ID: eth, Code: "ETH", Decimals: 18, Class: ledger.ClassChain}}},
		core.CreateCustomers{IDs: []ledger.OwnerID{1, 2}}}, team.Bootstrap(now)...)
	cmds = append(cmds, team.RegisterWallets(now,
		custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: eth, Descriptor: desc(10), Owner: custody.WalletOwner(1)},
		custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: eth, Descriptor: desc(20), Owner: custody.WalletOwner(2)},
		custody.Wallet{ID: 3, Kind: custody.ColdHouse, Asset: eth, Descriptor: desc(30), Owner: custody.WalletOwner(3)})...)
	av := func(o ledger.OwnerID) ledger.AccountKey {
		return ledger.AccountKey{Owner: o, Asset: eth, Kind: ledger.KindAvailable}
	}
	wal := func(id uint32) ledger.AccountKey {
		return ledger.AccountKey{Owner: custody.WalletOwner(id), Asset: eth, Kind: ledger.KindWallet}
	}
	equity := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: eth, Kind: ledger.KindEquity}
	cmds = append(cmds, core.CreateAccounts{Keys: []ledger.AccountKey{av(1), av(2), equity}},
		core.CreateTransfers{Transfers: []ledger.Transfer{
			{ID: ledger.ID{Lo: 1}, Debit: wal(1), Credit: av(1), Amount: weiOfMilli(95_000)},
			{ID: ledger.ID{Lo: 2}, Debit: wal(2), Credit: av(2), Amount: weiOfMilli(5_500)},
			{ID: ledger.ID{Lo: 3}, Debit: wal(3), Credit: equity, Amount: weiOfMilli(5_000)},
		}})
	for _, cmd := range cmds {
		_, err := c.Do(context.Background(), now, cmd)
		if err != nil {
			t.Fatalf("%s: %v", cmd.Kind(), err)
		}
	}
	c.Close()

	out, code := run(t, "reserves", "--data", dir)
	line := regexp.MustCompile(`(?m)^ETH\s+100\.5\s+95\s+5\.5\s+5\.47%\s+yes\s+5\.5\s+5\s+NO\s+0\s+3\.49\s*$`)
	if code != 0 || !line.MatchString(out) {
		t.Fatalf("kinko reserves = %d:\n%s\nwant the ETH row matching %s", code, out, line)
	}
	out, code = run(t, "reserves", "--data", dir, "--json")
	var rep reserves.Report
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || len(rep.Rows) != 1 {
		t.Fatalf("kinko reserves --json = %d, %v:\n%s", code, err, out)
	}
	r := rep.Rows[0]
	if r.Asset != "ETH" || r.CustomerLiabilities != weiOfMilli(100_500) || r.HotShareBps != 547 || !r.HotOverCap || r.Sweep != weiOfMilli(3_490) ||
		r.HouseRequired != weiOfMilli(5_500) || r.HouseHeld != weiOfMilli(5_000) || r.HouseBacked || r.HouseShortfall != weiOfMilli(500) || !r.Segregated {
		t.Fatalf("ETH row %+v", r)
	}
}
