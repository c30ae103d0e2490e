package api

import (
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"

	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/people"
	"kinko/internal/wallet"
)

// TestRegisterWalletPayloadInAPIForm: a register_wallet request is taken
// and shown as the rest of the API writes things (snake_case, the kind in
// words, the asset by its code, the ledger owner as a decimal string); the
// core's own encoding is refused, and so is an unknown asset, naming the
// field.
func TestRegisterWalletPayloadInAPIForm(t *testing.T) {
	e := newEnv(t)
	aiko := e.loginOperator("aiko")
	desc := "wsh(sortedmulti(2,[fee1fc19/48h/1h/0h/2h]tpubDEQGLGHLa6g756NXby6QirvHMkxKw19wsAtUaZuGzsPaQRPRPH1Twd468TyyAtZpF2Sp2d9HRz9b1vwTM5128tNg3mmSv8iKEqtgdkmjbbU/0/*,[6964116e/48h/1h/0h/2h]tpubDEHEMt8yShUzTxkbpDdFYKHaRoGqekYZcwfVUX3FxLcTTHS227rryUt4AuqisHcfwgoXgC2aT2aEbcyasU8whHVLMKzUndTxXfFUoiTWMPv/0/*,[dce0ec91/48h/1h/0h/2h]tpubDEqV3zs1XHLPCkym9RVb7PkE1KfhvwbnLuAchvFQqGyTCiKZSc5u3QM3yCz3NXNSnbEMmEvjizLx31GqH76assDU2bBPChie6pq42BtKjaz/0/*))#sw2cr4g2"
	d, err := wallet.Parse(desc, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := d.Address(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var fps []string
	for _, k := range d.Keys {
		fps = append(fps, hex.EncodeToString(k.Fingerprint[:]))
	}
	payload := RegisterWalletPayload{Wallet: WalletPayload{ID: 7, Kind: "cold-customer", Asset: "btc", Descriptor: d.String(), Owner: strconv.FormatUint(uint64(custody.WalletOwner(7)), 10)},
		Name: "cold customer 7", Addresses: []string{a.EncodeAddress()}, Fingerprints: fps}
	open := func(p any) resp {
		b, _ := json.Marshal(p)
		return e.do("POST", "/v1/requests", aiko, OpenRequestRequest{Kind: core.KindRegisterWalletRequest, Payload: b, Reason: "new cold wallet", RequiredRole: people.RoleAdmin})
	}
	// The core's encoding and an unknown asset are refused.
	coreForm := core.RegisterWalletPayload{Name: "x", Addresses: payload.Addresses, Fingerprints: fps}
	coreForm.Wallet.ID, coreForm.Wallet.Descriptor = 7, d.String()
	if r := open(coreForm); r.status != 400 {
		t.Errorf("the core's encoding = %d %s", r.status, r.body)
	}
	bad := payload
	bad.Wallet.Asset = "DOGE"
	if r := open(bad); r.status != 400 || !strings.Contains(string(r.body), "payload.wallet.asset") {
		t.Errorf("an unknown asset = %d %s", r.status, r.body)
	}
	r := open(payload)
	if r.status != 201 {
		t.Fatalf("register_wallet request = %d %s", r.status, r.body)
	}
	var list struct{ Items []RequestView }
	e.do("GET", "/v1/requests", aiko, nil).json(t, &list)
	var got *RequestView
	for i := range list.Items {
		if list.Items[i].Kind == core.KindRegisterWalletRequest {
			got = &list.Items[i]
		}
	}
	if got == nil {
		t.Fatal("the request is not listed")
	}
	want := `{"wallet":{"id":7,"kind":"cold-customer","asset":"BTC","descriptor":"` + d.String() + `","owner":"` + strconv.FormatUint(uint64(custody.WalletOwner(7)), 10) + `"},"name":"cold customer 7","addresses":["` + a.EncodeAddress() + `"],"fingerprints":["` + strings.Join(fps, `","`) + `"]}`
	if string(got.Payload) != want {
		t.Fatalf("payload shown\n%s\nwant\n%s", got.Payload, want)
	}
}
