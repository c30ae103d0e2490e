package wallet_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/wallet"
)

// TestRegtestSpends funds a wsh(sortedmulti) and a tr(sortedmulti_a)
// 2-of-3 output on a real btcd regtest node (taproot is active there
// after regtest.SegwitHeight: its BIP9 deployment starts at once and
// locks in with the same signalling), signs each spend with all three
// keys, finalizes with exactly two, and has the node accept and mine
// both. It logs the measured virtual sizes (docs/custody.md, fees).
func TestRegtestSpends(t *testing.T) {
	node := regtest.New(t, regtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var accts []*hdkeychain.ExtendedKey
	var keys []wallet.Key
	for s := byte(0x51); s < 0x54; s++ {
		m, _ := hdkeychain.NewMaster(bytes.Repeat([]byte{s}, 32), regtest.Net)
		k, acct, err := wallet.AccountKey(m, regtest.Net, 0)
		if err != nil {
			t.Fatal(err)
		}
		keys, accts = append(keys, k), append(accts, acct)
	}
	ext, _ := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{7}, 20), regtest.Net)
	extPk, _ := txscript.PayToAddrScript(ext)
	sizes := map[wallet.Type]int64{}
	for _, typ := range []wallet.Type{wallet.WSH, wallet.TR} {
		d := &wallet.Descriptor{M: 2, Net: regtest.Net, Keys: keys, Type: typ}
		set, err := wallet.NewSetFor(regtest.Net, []wallet.Named{{ID: 1, Kind: "cold-customer", Descriptor: d.String()}})
		if err != nil {
			t.Fatal(err)
		}
		addr, _, _ := d.Address(0, 4)
		fund, err := node.SendTo(ctx, map[string]btcutil.Amount{addr.EncodeAddress(): 1_000_000})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := node.Generate(ctx, 1); err != nil {
			t.Fatal(err)
		}
		pk, _ := d.PkScript(0, 4)
		vout := -1
		for i, o := range fund.TxOut {
			if bytes.Equal(o.PkScript, pk) {
				vout = i
			}
		}
		_, height, _ := node.Client().BestBlock(ctx)
		u := wallet.UTXO{OutPoint: wire.OutPoint{Hash: fund.TxHash(), Index: uint32(vout)}, Value: 1_000_000, Wallet: set.Wallets[0], Index: 4, PrevTx: fund}
		p, err := wallet.BuildWith([]wallet.UTXO{u}, []*wire.TxOut{wire.NewTxOut(400_000, extPk)}, set.Wallets[0], 0, 2, wallet.BuildOptions{LockTime: uint32(height)})
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range accts {
			if _, err := set.Sign(p, a, keys[i].Fingerprint); err != nil {
				t.Fatal(err)
			}
		}
		desc, err := set.Describe(p, nil)
		if err != nil || desc.Refusal() != nil {
			t.Fatal(err, desc.Refusal())
		}
		tx, err := wallet.Finalize(p)
		if err != nil {
			t.Fatalf("%s: finalize with three signatures: %v", d.TypeName(), err)
		}
		id, err := node.Client().Broadcast(ctx, tx)
		if err != nil {
			t.Fatalf("%s: the node refused the spend: %v", d.TypeName(), err)
		}
		if _, err := node.Generate(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := node.Client().TxBlock(ctx, id); err != nil || !ok {
			t.Fatalf("%s: spend %s not mined: %v", d.TypeName(), id, err)
		}
		vs := int64((tx.SerializeSizeStripped()*3 + tx.SerializeSize() + 3) / 4)
		if vs > desc.VSize || desc.VSize-vs > 1 {
			t.Fatalf("%s: vsize %d, estimated %d", d.TypeName(), vs, desc.VSize)
		}
		sizes[typ] = vs
		t.Logf("%s: 1-input 2-output spend, %d vB measured (%d estimated), fee %d sat", d.TypeName(), vs, desc.VSize, desc.Fee)
	}
	if sizes[wallet.TR] <= sizes[wallet.WSH] {
		t.Logf("taproot script path is not larger than P2WSH here: %d vs %d", sizes[wallet.TR], sizes[wallet.WSH])
	}
}
