package attest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ethwallet"
	"kinko/internal/ledger"
	"kinko/internal/operators"
	"kinko/internal/watch"
)

// TestReserveAttestWithSafeWallets: an exchange that also holds Ether in
// Safe wallets still gets its report (the Safe descriptors, which are not
// Bitcoin descriptors, once made the report and the message requests fail
// as a whole). Bitcoin is attested as before; ETH is reported from the
// ledger with what is not attested said, never attested (OK), and asks for no
// BIP-322 proof.
func TestReserveAttestWithSafeWallets(t *testing.T) {
	cold, hot, house := makeKeys(t, 1, 2, 3), makeKeys(t, 4, 5, 6), makeKeys(t, 7, 8, 9)
	c, _, key := attestCore(t, cold, hot, house)
	a := func(b byte) ethwallet.Address { var x ethwallet.Address; x[0], x[19] = 0xb0, b; return x }
	desc := ethwallet.Descriptor{ChainID: 1337, Singleton: a(1), Factory: a(2), Fallback: a(3), Threshold: 2, Owners: []ethwallet.Address{a(10), a(11), a(12)}}
	safeW := custody.Wallet{ID: 9, Kind: custody.ColdCustomer, Asset: 3, Descriptor: desc.String(), Owner: ledger.OwnerHouseMin + 109}
	team := operators.Crew("attest test")
	at := t0.Add(time.Hour)
	cmds := []core.Command{core.CreateAssets{Assets: []ledger.Asset{{ID: 3, Code: "ETH", Decimals: 18, Class: ledger.ClassChain}}}}
	cmds = append(cmds, team.RegisterWallets(at, safeW)...)
	cmds = append(cmds, core.CreateAccounts{Keys: []ledger.AccountKey{{Owner: 1, Asset: 3, Kind: ledger.KindAvailable}}},
		core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Lo: 90}, Debit: safeW.Account(), Credit: ledger.AccountKey{Owner: 1, Asset: 3, Kind: ledger.KindAvailable},
			Amount: ledger.Amount{Hi: 1, Lo: 7}}}})
	for i, cmd := range cmds {
		if _, err := c.Do(context.Background(), at.Add(time.Duration(i)*time.Second), cmd); err != nil {
			t.Fatalf("%s: %v", cmd.Kind(), err)
		}
	}
	seq, _, _ := c.Journal().Head()
	if _, err := Publish(context.Background(), c, key, "aiko", seq, nil, at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	head, _, _ := c.Journal().Head()
	headState, err := c.StateAt(context.Background(), head)
	if err != nil {
		t.Fatal(err)
	}
	trees, err := c.StateAt(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	block := chainhash.DoubleHashH([]byte("block 500"))
	reqs, err := MessageRequests(headState, seq, "Kinko Exchange", net, 500, block)
	if err != nil {
		t.Fatalf("message requests with a Safe wallet registered: %v", err)
	}
	for _, r := range reqs {
		if r.Asset != "BTC" {
			t.Fatalf("a message request for %s wallet %d", r.Asset, r.Wallet.ID)
		}
	}
	rep, err := Build(Input{Exchange: "Kinko Exchange", Trees: trees, Head: headState, Key: key, Net: net,
		Chain:     map[string]*watch.Holdings{"BTC": {Height: 500, Hash: block, Wallets: map[uint32]int64{1: 175_000_000, 2: 5_000_000, 3: 10_000_000}}},
		Generated: at.Add(2 * time.Minute)})
	if err != nil {
		t.Fatalf("the report with a Safe wallet registered: %v", err)
	}
	var eth, btc *AssetReport
	for i := range rep.Assets {
		switch rep.Assets[i].Asset {
		case "ETH":
			eth = &rep.Assets[i]
		case "BTC":
			btc = &rep.Assets[i]
		}
	}
	if btc == nil || btc.Block == nil || btc.HoldingsFrom != "chain" {
		t.Fatalf("BTC: %+v", btc)
	}
	if eth == nil || eth.Block != nil || eth.HoldingsFrom != "ledger" || eth.OK || eth.Signed ||
		eth.Holdings != (ledger.Amount{Hi: 1, Lo: 7}) || !strings.Contains(eth.Note, "not attested") || len(eth.Wallets) != 1 || eth.Wallets[0].Address != "" {
		t.Fatalf("ETH: %+v", eth)
	}
}
