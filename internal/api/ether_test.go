package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"kinko/internal/chain/eth/safe"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ethwallet"
	"kinko/internal/ethwallet/book"
	"kinko/internal/ledger"
	"kinko/internal/people"
	"kinko/internal/withdraw"
)

// etherEnv is an API over a core with ETH (asset 3) and the other
// assets, and the cold customer Safe wallet 7 of chain 1337 it returns the
// descriptor of; the Safe contracts are loaded but not given to the
// server.
func etherEnv(t *testing.T, assets ...ledger.Asset) (*env, *safe.Artifacts, ethwallet.Descriptor) {
	t.Helper()
	art, err := safe.LoadInstalled()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	assets = append([]ledger.Asset{{ID: 3, Code: "ETH", Decimals: 18, Class: ledger.ClassChain}}, assets...)
	if o, err := e.core.Submit(context.Background(), e.clock.Now(), core.CreateAssets{Assets: assets}); err != nil || o.EventErr() != nil {
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
	return e, art, d
}

// TestEtherDepositAddressesAndDeposits: a customer asking for an ETH
// deposit address gets the counterfactual Safe address of the cold
// wallet's next index, as the Safe contracts compute it; a server without
// the contracts refuses (503) and assigns nothing; a credited deposit of
// over 2^64 wei is shown whole, with its transaction hash in 0x form.
func TestEtherDepositAddressesAndDeposits(t *testing.T) {
	e, art, d := etherEnv(t)
	ctx := context.Background()
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

// TestTokenDepositAddress: two admins list the token TT (a register_token
// request through the API: a lower-cased contract is refused when filed,
// nothing registered); a customer asking for a TT deposit address gets
// their Ether address of the chain's cold Safe wallet, the same index;
// a credited TT deposit is shown with its asset; a token of a chain with
// no Safe wallet has no address to hand out.
func TestTokenDepositAddress(t *testing.T) {
	e, art, d := etherEnv(t, ledger.Asset{ID: 4, Code: "TT", Decimals: 18, Class: ledger.ClassChain}, ledger.Asset{ID: 5, Code: "USDX", Decimals: 6, Class: ledger.ClassChain})
	ctx := context.Background()
	e.srv.cfg.SafeArtifacts = art
	aiko, ren := e.loginOperator("aiko"), e.loginOperator("ren")
	contract := "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
	tokens := func() int {
		var n int
		e.core.Read(func(st *core.State) { n = len(st.Custody.Tokens()) })
		return n
	}
	bad := OpenRequestRequest{ID: "token-bad", Kind: core.KindRegisterTokenRequest, Reason: "list TT", RequiredRole: people.RoleAdmin,
		Payload: json.RawMessage(`{"asset":"TT","chain_id":1337,"contract":"` + strings.ToLower(contract) + `"}`)}
	if r := e.do("POST", "/v1/requests", aiko, bad); r.status != 422 || !strings.Contains(string(r.body), "EIP-55") || tokens() != 0 {
		t.Fatalf("a lower-cased contract = %d %s, %d tokens; want refused, none", r.status, r.body, tokens())
	}
	good := bad
	good.ID, good.Payload = "token-tt", json.RawMessage(`{"asset":"tt","chain_id":1337,"contract":"`+contract+`"}`)
	if r := e.do("POST", "/v1/requests", aiko, good); r.status != 201 {
		t.Fatalf("open register_token = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/requests/token-tt/approve", ren, DecideRequest{Reason: "contract checked against the issuer's"}); r.status != 200 {
		t.Fatalf("approve register_token = %d %s", r.status, r.body)
	}
	e.core.Read(func(st *core.State) {
		if tok, ok := st.Custody.Token(4); !ok || tok.Contract != contract || tok.ChainID != 1337 {
			t.Fatalf("token TT = %+v, %v; want %s on 1337", tok, ok, contract)
		}
	})
	var assets struct {
		Items []AssetView `json:"items"`
	}
	e.do("GET", "/v1/assets", aiko, nil).json(t, &assets)
	for _, a := range assets.Items {
		if (a.Code == "TT") != (a.Token != nil) || (a.Token != nil && (a.Token.Contract != contract || a.Token.ChainID != 1337)) {
			t.Fatalf("GET /v1/assets: %s's token = %+v; want %s on 1337 for TT only", a.Code, a.Token, contract)
		}
	}
	cust, tok := e.signUp("token@example.jp")
	var tt, eth DepositAddressView
	e.do("POST", "/v1/me/deposit-addresses", tok, DepositAddressRequest{Asset: "tt"}).json(t, &tt)
	e.do("POST", "/v1/me/deposit-addresses", tok, DepositAddressRequest{Asset: "eth"}).json(t, &eth)
	want, err := book.Derive(art, d, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tt.Asset != "TT" || tt.Address != want.Hex() || tt.Wallet != 7 || tt.Index != 0 || eth.Address != tt.Address {
		t.Fatalf("TT address %+v, ETH address %+v; want both %s (wallet 7, index 0)", tt, eth, want.Hex())
	}
	// A token of a chain without a Safe wallet has no address.
	e.twoPerson(core.KindRegisterTokenRequest, core.RegisterTokenPayload{Token: custody.Token{Asset: 5, ChainID: 1, Contract: contract}}, "aiko", "ren", people.RoleAdmin)
	if r := e.do("POST", "/v1/me/deposit-addresses", tok, DepositAddressRequest{Asset: "usdx"}); r.status == 201 {
		t.Fatalf("USDX of chain 1 = %d %s; want refused", r.status, r.body)
	}
	// A TT deposit is shown as TT.
	op := custody.Outpoint{TxID: [32]byte{0xab}, Vout: custody.TokenIndex(3)}
	o, err := e.core.Submit(ctx, e.clock.Now(), core.CreditDeposits{Deposits: []custody.Seen{{Outpoint: op, Wallet: 7, Index: 0, Amount: 77, Asset: 4, BlockHash: [32]byte{1}, Height: 10}}})
	if err != nil || o.EventErr() != nil {
		t.Fatal(err, o.EventErr())
	}
	var v struct {
		Items []DepositView `json:"items"`
	}
	e.do("GET", "/v1/me/deposits", tok, nil).json(t, &v)
	if len(v.Items) != 1 || v.Items[0].Asset != "TT" || v.Items[0].Amount != ledger.AmountOf(77) || v.Items[0].Outpoint != op.EtherString() {
		t.Fatalf("deposits = %+v; want 77 TT at %s", v.Items, op.EtherString())
	}
	// A TT withdrawal is refused, nothing held: no wallet pays tokens yet.
	if o, err := e.core.Submit(ctx, e.clock.Now(), core.SetKYC{Customer: cust, KYC: people.KYCVerified, Actor: "kenji", Reason: "passport checked"}); err != nil || o.Err != nil {
		t.Fatal(err, o.Err)
	}
	o, err = e.core.Submit(ctx, e.clock.Now(), core.RequestWithdrawal{Customer: cust, Intent: withdraw.Intent{RequestID: "tt-1", Asset: "TT",
		Address: contract, Amount: withdraw.AmountOf(5), Expiry: e.clock.Now().Add(time.Hour).Unix()}})
	var held ledger.Amount
	e.core.Read(func(st *core.State) {
		a, _ := st.Ledger.Account(ledger.AccountKey{Owner: cust, Asset: 4, Kind: ledger.KindHeld})
		held = a.Balance()
	})
	if err != nil || !errors.Is(o.Err, core.ErrTokenWithdrawal) || !held.IsZero() {
		t.Fatalf("a TT withdrawal: %v %v, held %s; want ErrTokenWithdrawal, nothing held", err, o.Err, held)
	}
}
