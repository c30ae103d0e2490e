package attest

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/keys"
	"kinko/internal/ledger"
	"kinko/internal/operators"
	"kinko/internal/reserves/bip322"
	"kinko/internal/wallet"
	"kinko/internal/watch"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/reserves/attest -run Golden -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n%s", name, got)
	}
}

var net = &chaincfg.RegressionNetParams

// keyring is three offline keys and the 2-of-3 descriptor over them.
type keyring struct {
	desc *wallet.Descriptor
	ak   []wallet.Key
	k    []*keys.Key
}

func makeKeys(t *testing.T, seeds ...byte) *keyring {
	t.Helper()
	r := &keyring{desc: &wallet.Descriptor{M: 2, Net: net}}
	for _, s := range seeds {
		k, err := keys.New(bytes.NewReader(bytes.Repeat([]byte{s}, 32)), net)
		if err != nil {
			t.Fatal(err)
		}
		ak, _, _ := wallet.AccountKey(k.Master, net, 0)
		r.desc.Keys = append(r.desc.Keys, ak)
		r.ak, r.k = append(r.ak, ak), append(r.k, k)
	}
	d, err := wallet.Parse(r.desc.String(), net)
	if err != nil {
		t.Fatal(err)
	}
	r.desc = d
	return r
}

// sign signs a message request with the keys named, as each offline
// machine does, and combines.
func (r *keyring) sign(t *testing.T, req MessageRequest, who ...int) *psbt.Packet {
	t.Helper()
	set, err := wallet.NewSetFor(net, []wallet.Named{{ID: 1, Name: "w", Kind: req.Wallet.Kind.String(), Descriptor: r.desc.String()}})
	if err != nil {
		t.Fatal(err)
	}
	var acc *psbt.Packet
	for _, i := range who {
		var buf bytes.Buffer
		req.PSBT.Serialize(&buf)
		p, err := psbt.NewFromRawBytes(&buf, false)
		if err != nil {
			t.Fatal(err)
		}
		_, acct, _ := wallet.AccountKey(r.k[i].Master, net, 0)
		if n, err := set.Sign(p, acct, r.ak[i].Fingerprint); err != nil || n != 1 {
			t.Fatalf("sign with key %d: %d %v", i, n, err)
		}
		if acc == nil {
			acc = p
		} else if err := wallet.Combine(acc, p); err != nil {
			t.Fatal(err)
		}
	}
	return acc
}

var t0 = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

// attestCore makes a data directory: BTC and JPY; a cold and a hot
// customer wallet and a cold house wallet; customers 1 to 3 owed 1.5, 0.25
// and 0.05 BTC, customer 1 owed 120,000 yen; the liabilities of every
// asset published after them.
func attestCore(t *testing.T, cold, hot, house *keyring) (*core.Core, uint64, []byte) {
	t.Helper()
	c, err := core.Open(context.Background(), core.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ws := []custody.Wallet{
		{ID: 1, Kind: custody.ColdCustomer, Asset: 2, Descriptor: cold.desc.String(), Owner: ledger.OwnerHouseMin + 100},
		{ID: 2, Kind: custody.HotCustomer, Asset: 2, Descriptor: hot.desc.String(), Owner: ledger.OwnerHouseMin + 101},
		{ID: 3, Kind: custody.ColdHouse, Asset: 2, Descriptor: house.desc.String(), Owner: ledger.OwnerHouseMin + 102},
	}
	bank := ledger.AccountKey{Owner: ledger.OwnerHouseMin + 200, Asset: 1, Kind: ledger.KindWallet}
	houseAcct := ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: 2, Kind: ledger.KindHouse}
	av := func(o ledger.OwnerID, a ledger.AssetID) ledger.AccountKey {
		return ledger.AccountKey{Owner: o, Asset: a, Kind: ledger.KindAvailable}
	}
	tr := func(id uint64, d, cr ledger.AccountKey, v uint64) ledger.Transfer {
		return ledger.Transfer{ID: ledger.ID{Lo: id}, Debit: d, Credit: cr, Amount: ledger.AmountOf(v)}
	}
	// Founded by the crew; its two admins register the wallets.
	team := operators.Crew("attest test")
	cmds := []core.Command{core.CreateAssets{Assets: []ledger.Asset{{ID: 1, Code: "JPY", Class: ledger.ClassFiat}, {ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}}}
	cmds = append(cmds, team.Bootstrap(t0)...)
	cmds = append(cmds, team.RegisterWallets(t0, ws...)...)
	cmds = append(cmds, []core.Command{
		core.CreateCustomers{IDs: []ledger.OwnerID{1, 2, 3}},
		core.CreateAccounts{Keys: []ledger.AccountKey{bank, houseAcct, av(1, 2), av(2, 2), av(3, 2), av(1, 1)}},
		core.CreateTransfers{Transfers: []ledger.Transfer{
			tr(1, ws[0].Account(), av(1, 2), 150_000_000), tr(2, ws[0].Account(), av(2, 2), 25_000_000), tr(3, ws[1].Account(), av(3, 2), 5_000_000),
			tr(4, ws[2].Account(), houseAcct, 10_000_000), tr(5, bank, av(1, 1), 120_000),
		}},
	}...)
	for i, cmd := range cmds {
		o, err := c.Submit(context.Background(), t0.Add(time.Duration(i)*time.Second), cmd)
		if err == nil {
			err = o.EventErr()
		}
		if err != nil {
			t.Fatalf("%s: %v", cmd.Kind(), err)
		}
	}
	head, _, _ := c.Journal().Head()
	key := bytes.Repeat([]byte{0x5a}, 32)
	if _, err := Publish(context.Background(), c, key, "aiko", head, nil, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	return c, head, key
}

// TestReserveAttestGolden builds the report of a fixed history against a
// fixed chain view: BTC covered on chain, the cold customer wallet's proof
// signed by two keys (verifies), the cold house wallet's by one (does
// not), a signature of another block matching nothing; JPY from the
// ledger. The JSON and the HTML page are compared with reviewed golden
// files.
func TestReserveAttestGolden(t *testing.T) {
	cold, hot, house := makeKeys(t, 1, 2, 3), makeKeys(t, 4, 5, 6), makeKeys(t, 7, 8, 9)
	c, seq, key := attestCore(t, cold, hot, house)
	headState, err := c.StateAt(context.Background(), func() uint64 { h, _, _ := c.Journal().Head(); return h }())
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
		t.Fatal(err)
	}
	if len(reqs) != 2 || reqs[0].Wallet.ID != 1 || reqs[1].Wallet.ID != 3 {
		t.Fatalf("message requests %+v", reqs)
	}
	two, err := bip322.Assemble(cold.sign(t, reqs[0], 0, 2))
	if err != nil {
		t.Fatal(err)
	}
	one, err := bip322.Assemble(house.sign(t, reqs[1], 1))
	if err != nil {
		t.Fatal(err)
	}
	stale, err := MessageRequests(headState, seq, "Kinko Exchange", net, 499, chainhash.DoubleHashH([]byte("block 499")))
	if err != nil {
		t.Fatal(err)
	}
	old, _ := bip322.Assemble(cold.sign(t, stale[0], 0, 1))
	in := Input{Exchange: "Kinko Exchange", Trees: trees, Head: headState, Key: key, Net: net,
		Chain: map[string]*watch.Holdings{"BTC": {Height: 500, Hash: block,
			Wallets: map[uint32]int64{1: 175_000_000, 2: 5_000_000, 3: 10_000_000}, UTXOs: map[uint32]int{1: 2, 2: 1, 3: 1}}},
		Signed:    []Signed{{Source: "house-one-key.psbt", Tx: one}, {Source: "cold-499.psbt", Tx: old}, {Source: "cold.psbt", Tx: two}},
		Generated: t0.Add(time.Hour)}
	rep, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	btc := rep.Assets[1]
	if btc.Asset != "BTC" || btc.Holdings != ledger.AmountOf(180_000_000) || btc.Liabilities.Root.Total != ledger.AmountOf(180_000_000) ||
		!btc.Covered || *btc.CoverageBps != 10000 || !btc.Liabilities.Published.Matches {
		t.Fatalf("BTC row %+v", btc)
	}
	if s := btc.Wallets[0].Signature; !s.Verifies || s.Source != "cold.psbt" {
		t.Fatalf("cold customer wallet's proof %+v", s)
	}
	if s := btc.Wallets[2].Signature; s.Verifies || s.Source != "house-one-key.psbt" || !strings.Contains(s.Reason, "signature invalid") {
		t.Fatalf("cold house wallet's proof by one key %+v", s)
	}
	if len(rep.Unmatched) != 1 || rep.Unmatched[0].Source != "cold-499.psbt" || rep.OK || btc.OK || btc.Signed {
		t.Fatalf("unmatched %+v, ok %v", rep.Unmatched, rep.OK)
	}
	if jpy := rep.Assets[0]; jpy.HoldingsFrom != "ledger" || jpy.Holdings != ledger.AmountOf(120_000) || !jpy.OK {
		t.Fatalf("JPY row %+v", jpy)
	}
	var js, page bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	golden(t, "attestation.json", js.Bytes())
	golden(t, "attestation.html", page.Bytes())
	h := page.String()
	for _, bad := range []string{"<script", "src=", "href=", "@import", "url("} {
		if strings.Contains(h, bad) {
			t.Errorf("the page refers to something outside it: %q", bad)
		}
	}

	// Short on chain: the coverage says so and the picture's bar is red.
	in.Chain["BTC"].Wallets[1] = 100_000_000
	in.Signed = []Signed{{Source: "cold.psbt", Tx: two}}
	rep, err = Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if btc := rep.Assets[1]; btc.Covered || btc.Coverage != "58.33%" || rep.OK {
		t.Fatalf("short: %+v", btc)
	}
	page.Reset()
	rep.WriteHTML(&page)
	if !strings.Contains(page.String(), `class="short"`) || !strings.Contains(page.String(), "holdings SHORT of liabilities") {
		t.Fatal("the page does not show the shortfall")
	}
}
