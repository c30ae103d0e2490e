package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
)

// TestOwedRepay: a customer who traded away a deposit later reversed owes
// it; once they hold the coins again, `kinko owed repay` repays the debt
// from their available balance, through the core's API, and refuses an
// operator whose key is not theirs.
func TestOwedRepay(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	c, err := core.Open(ctx, core.Config{Dir: dir, CheckInvariants: true})
	if err != nil {
		t.Fatal(err)
	}
	av := func(o ledger.OwnerID) ledger.AccountKey {
		return ledger.AccountKey{Owner: o, Asset: 2, Kind: ledger.KindAvailable}
	}
	op := custody.Outpoint{TxID: [32]byte{1}}
	keyOf := foundCrew(t, c, t.TempDir())
	for _, cmd := range []core.Command{
		core.CreateAssets{Assets: []ledger.Asset{{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}},
		core.CreateCustomers{IDs: []ledger.OwnerID{1, 2}},
	} {
		if o, err := c.Submit(ctx, time.Now(), cmd); err != nil || o.Err != nil || o.EventErr() != nil {
			t.Fatal(cmd.Kind(), err, o.Err, o.EventErr())
		}
	}
	registerWallets(t, c, custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: 2, Descriptor: "cold", Owner: ledger.OwnerHouseMin + 100})
	for _, cmd := range []core.Command{
		core.AssignAddress{Wallet: 1, Customer: 1},
		core.CreateAccounts{Keys: []ledger.AccountKey{av(2)}},
		core.CreditDeposits{Deposits: []custody.Seen{{Outpoint: op, Wallet: 1, Index: 0, Amount: 9000, Height: 5}}},
		core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Lo: 1}, Debit: av(1), Credit: av(2), Amount: ledger.AmountOf(9000)}}},
		core.ReverseDeposits{Outpoints: []custody.Outpoint{op}, Actor: "watcher", Reason: "reorg"},
		core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Lo: 2}, Debit: av(2), Credit: av(1), Amount: ledger.AmountOf(4000)}}},
	} {
		if o, err := c.Submit(ctx, time.Now(), cmd); err != nil || o.Err != nil || o.EventErr() != nil {
			t.Fatal(cmd.Kind(), err, o.Err, o.EventErr())
		}
	}
	c.Close()
	base, stop := serveCore(t, dir)
	if out, code := run(t, "owed", "repay", "--core", base, "--customer", "1", "--operator", "mallory", "--key", keyOf("aiko")); code == 0 || !strings.Contains(out, "sign in") {
		t.Fatalf("repay by an unknown operator = %d %s", code, out)
	}
	if out, code := run(t, "owed", "repay", "--core", base, "--customer", "1", "--operator", "kenji", "--key", keyOf("aiko")); code == 0 || !strings.Contains(out, "sign in") {
		t.Fatalf("repay with another operator's key = %d %s", code, out)
	}
	if out, code := run(t, "owed", "repay", "--core", base, "--customer", "1", "--asset", "btc", "--operator", "aiko", "--key", keyOf("aiko")); code != 0 || !strings.Contains(out, "repaid 4000 base units of BTC") {
		t.Fatalf("repay = %d %s", code, out)
	}
	stop()
	st, err := loadState(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if owed := custody.Owed(st.Ledger, 1, 2); owed != 5000 {
		t.Fatalf("owed after repaying 4000 of 9000 = %d", owed)
	}
}
