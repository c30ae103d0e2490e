package api

import (
	"context"
	"fmt"
	"testing"

	"kinko/internal/chain/eth/safe"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ethwallet"
	"kinko/internal/ethwallet/book"
	"kinko/internal/ledger"
)

// TestEtherDepositAddressesAndDeposits: a customer asking for an ETH
// deposit address gets the counterfactual Safe address of the cold
// wallet's next index, as the Safe contracts compute it; a server without
// the contracts refuses (503) and assigns nothing; a credited deposit of
// over 2^64 wei is shown whole, with its transaction hash in 0x form.
func TestEtherDepositAddressesAndDeposits(t *testing.T) {
	art, err := safe.LoadInstalled()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	ctx := context.Background()
	if o, err := e.core.Submit(ctx, e.clock.Now(), core.CreateAssets{Assets: []ledger.Asset{{ID: 3, Code: "ETH", Decimals: 18, Class: ledger.ClassChain}}}); err != nil || o.EventErr() != nil {
		t.Fatal(err, o.EventErr())
	}
	addr := func(b byte) ethwallet.Address {
		var a ethwallet.Address
		a[0], a[19] = b, b
		return a
	}
	d := ethwallet.Descriptor{ChainID: 1337, Singleton: addr(0x41), Factory: addr(0x42), Fallback: addr(0x43), Threshold: 2,
		Owners: []ethwallet.Address{addr(0x51), addr(0x52), addr(0x53)}}
	e.registerWallet(custody.Wallet{ID: 7, Kind: custody.ColdCustomer, Asset: 3, Descriptor: d.String(), Owner: ledger.OwnerHouseMin + 107})
	_, tok := e.signUp("ether@example.jp")

	next := func() uint32 {
		var n uint32
		e.core.Read(func(st *core.State) { w, _ := st.Custody.Wallet(7); n = w.NextIndex })
		return n
	}
	if r := e.do("POST", "/v1/me/deposit-addresses", tok, DepositAddressRequest{Asset: "eth"}); r.status != 503 || next() != 0 {
		t.Fatalf("without the Safe contracts = %d %s, next index %d; want 503 and nothing assigned", r.status, r.body, next())
	}
	e.srv.cfg.SafeArtifacts = art
	for i := uint32(0); i < 2; i++ {
		who := tok
		if i > 0 {
			_, who = e.signUp(fmt.Sprintf("ether%d@example.jp", i))
		}
		r := e.do("POST", "/v1/me/deposit-addresses", who, DepositAddressRequest{Asset: "eth"})
		var v DepositAddressView
		r.json(t, &v)
		want, err := book.Derive(art, d, i)
		if err != nil {
			t.Fatal(err)
		}
		if r.status != 201 || v.Address != want.Hex() || v.Index != i || v.Asset != "ETH" {
			t.Fatalf("address %d = %d %+v; want %s", i, r.status, v, want.Hex())
		}
	}

	// 20 ETH, over 2^64 wei, credited to index 0.
	twenty, _ := ledger.ParseAmount("20000000000000000000")
	op := custody.Outpoint{TxID: [32]byte{0xab, 0xcd}, Vout: custody.EtherIndex}
	o, err := e.core.Submit(ctx, e.clock.Now(), core.CreditDeposits{Deposits: []custody.Seen{{Outpoint: op, Wallet: 7, Index: 0,
		Amount: twenty.Lo, AmountHi: twenty.Hi, BlockHash: [32]byte{1}, Height: 10}}})
	if err != nil || o.EventErr() != nil {
		t.Fatal(err, o.EventErr())
	}
	r := e.do("GET", "/v1/me/deposits", tok, nil)
	var v struct {
		Items []DepositView `json:"items"`
	}
	r.json(t, &v)
	wantID := fmt.Sprintf("0xabcd%060x:0", 0)
	if r.status != 200 || len(v.Items) != 1 || v.Items[0].Outpoint != wantID || v.Items[0].Amount != twenty || v.Items[0].State != "credited" {
		t.Fatalf("deposits = %d %s; want %s of %s wei", r.status, r.body, wantID, twenty)
	}
}
