package cli

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/chain"
	"kinko/internal/chain/btc/regtest"
	"kinko/internal/chain/btcchain"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/reserves/attest"
	"kinko/internal/wallet"
	"kinko/internal/watch"
)

// holdingsKeys is a 2-of-3 descriptor of keys from seeds and their
// account keys for signing.
func holdingsKeys(t *testing.T, seeds ...byte) (*wallet.Descriptor, []*hdkeychain.ExtendedKey, [][4]byte) {
	t.Helper()
	d := &wallet.Descriptor{M: 2, Net: regtest.Net}
	var accts []*hdkeychain.ExtendedKey
	var fps [][4]byte
	for _, s := range seeds {
		m, err := hdkeychain.NewMaster(bytes.Repeat([]byte{s}, 32), regtest.Net)
		if err != nil {
			t.Fatal(err)
		}
		k, a, err := wallet.AccountKey(m, regtest.Net, 0)
		if err != nil {
			t.Fatal(err)
		}
		d.Keys = append(d.Keys, k)
		accts, fps = append(accts, a), append(fps, k.Fingerprint)
	}
	return d, accts, fps
}

// TestReservesHoldingsBothPaths: four wallets of four kinds are paid on a
// btcd regtest node at receive and change addresses, then outputs of two
// of them are spent (to a stranger and back to a third wallet's change),
// then paid again. At every block from the wallets' birth, what each
// wallet holds as the attestation now reads it (attest.BitcoinHoldings
// through chain.Backend, one scan for all the wallets' addresses) equals
// the old scan's (watch.ScanHoldings over the owned book) and the test's
// own count of the outputs it made and spent, satoshi and outputs alike.
func TestReservesHoldingsBothPaths(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	node := regtest.New(t, regtest.Options{})
	c, err := core.Open(ctx, core.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	foundCrew(t, c, t.TempDir())
	if o, err := c.Submit(ctx, time.Now(), core.CreateAssets{Assets: []ledger.Asset{{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}}); err != nil || o.Err != nil {
		t.Fatal(err, o.Err)
	}
	type w struct {
		id    uint32
		kind  custody.WalletKind
		d     *wallet.Descriptor
		accts []*hdkeychain.ExtendedKey
		fps   [][4]byte
	}
	var ws []w
	var reg []custody.Wallet
	for i, kind := range []custody.WalletKind{custody.ColdCustomer, custody.HotCustomer, custody.ColdHouse, custody.HotHouse} {
		s := byte(10 * (i + 1))
		d, accts, fps := holdingsKeys(t, s, s+1, s+2)
		ws = append(ws, w{uint32(i + 1), kind, d, accts, fps})
		reg = append(reg, custody.Wallet{ID: uint32(i + 1), Kind: kind, Asset: 2, Descriptor: d.String(), Owner: ledger.OwnerHouseMin + 100 + ledger.OwnerID(i)})
	}
	registerWallets(t, c, reg...)
	_, tip, err := node.Client().BestBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	from := tip - 5 // a few blocks before the first output

	// The test's own count: every output it makes to a wallet, less
	// those it spends.
	type mine struct {
		wallet        uint32
		branch, index uint32
		value         int64
	}
	utxos := map[wire.OutPoint]mine{}
	type place struct{ wallet, branch, index uint32 }
	scriptOf := map[string]place{}
	addrOf := func(p place) string {
		a, _, err := ws[p.wallet-1].d.Address(p.branch, p.index)
		if err != nil {
			t.Fatal(err)
		}
		pk, _ := ws[p.wallet-1].d.PkScript(p.branch, p.index)
		scriptOf[string(pk)] = p
		return a.EncodeAddress()
	}
	record := func(tx *wire.MsgTx) {
		for _, in := range tx.TxIn {
			delete(utxos, in.PreviousOutPoint)
		}
		for i, o := range tx.TxOut {
			if p, ok := scriptOf[string(o.PkScript)]; ok {
				utxos[wire.OutPoint{Hash: tx.TxHash(), Index: uint32(i)}] = mine{p.wallet, p.branch, p.index, o.Value}
			}
		}
	}
	var heights []int32
	mineBlock := func() {
		t.Helper()
		if _, err := node.Generate(ctx, 1); err != nil {
			t.Fatal(err)
		}
		_, h, err := node.Client().BestBlock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		heights = append(heights, h)
	}
	pay := func(to map[place]btcutil.Amount) {
		t.Helper()
		out := map[string]btcutil.Amount{}
		for p, v := range to {
			out[addrOf(p)] = v
		}
		tx, err := node.SendTo(ctx, out)
		if err != nil {
			t.Fatal(err)
		}
		record(tx)
	}
	// Block 1: every wallet paid, at receive and change addresses, one
	// of them twice to the same address in two transactions.
	pay(map[place]btcutil.Amount{{1, 0, 0}: 50_000_000, {1, 0, 7}: 30_000_000, {2, 0, 0}: 20_000_000, {2, 1, 3}: 4_000_000, {3, 0, 2}: 70_000_000})
	pay(map[place]btcutil.Amount{{4, 0, 0}: 9_000_000, {1, 0, 0}: 1_000_000})
	mineBlock()
	// Block 2: the hot customer wallet spends both its outputs and the
	// cold customer wallet one of its own, to a stranger and to the hot
	// house wallet's change, with change to the hot customer wallet.
	set, err := wallet.NewSet([]wallet.Named{{ID: 1, Kind: "cold-customer", Descriptor: ws[0].d.String()}, {ID: 2, Kind: "hot-customer", Descriptor: ws[1].d.String()}}, ws[0].d)
	if err != nil {
		t.Fatal(err)
	}
	var ins []wallet.UTXO
	for op, m := range utxos {
		if m.wallet == 2 || m.wallet == 1 && m.index == 7 {
			ins = append(ins, wallet.UTXO{OutPoint: op, Value: m.value, Wallet: set.Wallets[m.wallet-1], Branch: m.branch, Index: m.index})
		}
	}
	if len(ins) != 3 {
		t.Fatalf("%d coins to spend; want 3", len(ins))
	}
	stranger, _ := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{9}, 20), regtest.Net)
	strangerPK, _ := txscript.PayToAddrScript(stranger)
	addrOf(place{4, 1, 0})
	housePK, _ := ws[3].d.PkScript(1, 0)
	addrOf(place{2, 1, 5})
	p, err := wallet.Build(ins, []*wire.TxOut{{Value: 25_000_000, PkScript: strangerPK}, {Value: 6_000_000, PkScript: housePK}}, set.Wallets[1], 5, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, wi := range []int{0, 1} {
		for k := range 2 {
			if _, err := set.Sign(p, ws[wi].accts[k], ws[wi].fps[k]); err != nil {
				t.Fatal(err)
			}
		}
	}
	spend, err := wallet.Finalize(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.Client().Broadcast(ctx, spend); err != nil {
		t.Fatal(err)
	}
	record(spend)
	mineBlock()
	// Block 3: paid again, one of them at the change address spent from.
	pay(map[place]btcutil.Amount{{2, 0, 0}: 3_000_000, {3, 1, 0}: 2_500_000})
	mineBlock()
	if len(utxos) < 7 {
		t.Fatalf("%d outputs left; the test spends too much", len(utxos))
	}

	var owned *wallet.Book
	if _, owned, err = watch.Books(c, 2, regtest.Net); err != nil {
		t.Fatal(err)
	}
	addrs, err := watch.OwnedAddresses(c, 2, regtest.Net)
	if err != nil {
		t.Fatal(err)
	}
	b := btcchain.New(node.Client(), node.Config(), uint64(from))
	// The test's own count only holds at the last block; the two paths
	// are compared at each.
	for i, h := range heights {
		old, err := watch.ScanHoldings(ctx, node.Chain(), owned, from, h)
		if err != nil {
			t.Fatal(err)
		}
		hash, err := b.HashAt(ctx, uint64(h))
		if err != nil {
			t.Fatal(err)
		}
		got, err := attest.BitcoinHoldings(ctx, b, addrs, chain.BlockRef{Height: uint64(h), Hash: hash})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, old) {
			t.Fatalf("block %d: through chain.Backend %+v; the old scan %+v", h, got, old)
		}
		if len(got.Wallets) < 3 {
			t.Fatalf("block %d: %d wallets hold anything: %+v", h, len(got.Wallets), got)
		}
		if i < len(heights)-1 {
			continue
		}
		want := &watch.Holdings{Height: h, Hash: old.Hash, Wallets: map[uint32]int64{}, UTXOs: map[uint32]int{}}
		for _, m := range utxos {
			want.Wallets[m.wallet] += m.value
			want.UTXOs[m.wallet]++
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("block %d: through chain.Backend %+v; the outputs made and spent %+v", h, got, want)
		}
	}
	// From a birth after the first outputs, both paths miss them alike:
	// --from-height must be at or before the wallets' first output.
	late := heights[0] + 1
	old, err := watch.ScanHoldings(ctx, node.Chain(), owned, late, heights[2])
	if err != nil {
		t.Fatal(err)
	}
	got, err := attest.BitcoinHoldings(ctx, btcchain.New(node.Client(), node.Config(), uint64(late)), addrs, chain.BlockRef{Height: uint64(heights[2]), Hash: chain.NewID(chain.Bitcoin, old.Hash)})
	if err != nil || !reflect.DeepEqual(got, old) {
		t.Fatalf("from block %d: through chain.Backend %+v, %v; the old scan %+v", late, got, err, old)
	}
	// A block that is not the one at its height is refused.
	if _, err := attest.BitcoinHoldings(ctx, b, addrs, chain.BlockRef{Height: uint64(heights[1]), Hash: chain.NewID(chain.Bitcoin, old.Hash)}); err == nil {
		t.Fatal("holdings at a block named by another block's hash: no error")
	}
}
