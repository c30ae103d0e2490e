package api

import (
	"encoding/json"
	"strings"
	"testing"

	"kinko/internal/core"
	"kinko/internal/people"
)

// TestGasAccountRequest: the Ether house gas account registered through
// the API under the two-person rule (a register_gas_account request,
// /v1/requests). Each bad request is refused when filed, with nothing
// journaled, no request open and no gas account: the zero address, a
// lower-cased and a mis-checksummed address, an asset that is not a chain
// asset (JPY), an unknown asset, an unknown field; one filed by an
// operator who is not an admin is refused by the core. The admin who filed a good one cannot approve it alone; a
// second admin's approval registers it, its ledger account opened; a
// second request for the asset is 409 gas_account_registered.
func TestGasAccountRequest(t *testing.T) {
	e, _, _ := etherEnv(t)
	aiko, ren, kenji := e.loginOperator("aiko"), e.loginOperator("ren"), e.loginOperator("kenji")
	const addr = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
	state := func() (seq uint64, requests int, gas string) {
		seq, _ = e.core.StateHash()
		e.core.Read(func(st *core.State) {
			for _, r := range st.People.Requests() {
				if r.Kind == core.KindRegisterGasAccountRequest {
					requests++
				}
			}
			g, _ := st.Withdraw.GasAccountOf("ETH")
			gas = g.Address
		})
		return seq, requests, gas
	}
	open := func(id, payload string) OpenRequestRequest {
		return OpenRequestRequest{ID: id, Kind: core.KindRegisterGasAccountRequest, Reason: "the hot signer's gas key", RequiredRole: people.RoleAdmin,
			Payload: json.RawMessage(payload)}
	}
	seq0, _, _ := state()
	for _, c := range []struct {
		what, token, payload, want string
		status                     int
	}{
		{"the zero address", aiko, `{"asset":"ETH","address":"0x0000000000000000000000000000000000000000"}`, "EIP-55", 422},
		{"a lower-cased address", aiko, `{"asset":"ETH","address":"` + strings.ToLower(addr) + `"}`, "EIP-55", 422},
		{"a bad checksum", aiko, `{"asset":"ETH","address":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"}`, "EIP-55", 422},
		{"a short address", aiko, `{"asset":"ETH","address":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA"}`, "EIP-55", 422},
		{"a non-chain asset", aiko, `{"asset":"JPY","address":"` + addr + `"}`, "not a chain asset", 422},
		{"an unknown asset", aiko, `{"asset":"XYZ","address":"` + addr + `"}`, "XYZ", 422},
		{"an unknown field", aiko, `{"asset":"ETH","address":"` + addr + `","amount":"1"}`, "amount", 400},
	} {
		r := e.do("POST", "/v1/requests", c.token, open("gas-bad", c.payload))
		seq, n, gas := state()
		if r.status != c.status || !strings.Contains(string(r.body), c.want) || n != 0 || gas != "" || seq != seq0 {
			t.Errorf("%s = %d %s; journal %d → %d, %d requests, gas account %q; want %d with %q, nothing journaled", c.what, r.status, r.body, seq0, seq, n, gas, c.status, c.want)
		}
	}
	// An operator who is not an admin: refused by the core (the signed
	// entry is journaled, as every refused request is), nothing opened.
	if r := e.do("POST", "/v1/requests", kenji, open("gas-kenji", `{"asset":"ETH","address":"`+addr+`"}`)); r.status != 403 {
		t.Fatalf("filed by an operator who is not an admin = %d %s; want 403", r.status, r.body)
	}
	if _, n, gas := state(); n != 0 || gas != "" {
		t.Fatalf("after a non-admin's request: %d requests, gas account %q", n, gas)
	}
	if r := e.do("POST", "/v1/requests", aiko, open("gas-eth", `{"asset":"eth","address":"`+addr+`"}`)); r.status != 201 {
		t.Fatalf("open register_gas_account = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/requests/gas-eth/approve", aiko, DecideRequest{Reason: "mine"}); r.status != 403 {
		t.Fatalf("approved by its own requester = %d %s; want 403", r.status, r.body)
	}
	if _, _, gas := state(); gas != "" {
		t.Fatalf("one admin alone registered the gas account %s", gas)
	}
	if r := e.do("POST", "/v1/requests/gas-eth/approve", ren, DecideRequest{Reason: "address read off the signer's key"}); r.status != 200 {
		t.Fatalf("approve register_gas_account = %d %s", r.status, r.body)
	}
	e.core.Read(func(st *core.State) {
		g, ok := st.Withdraw.GasAccountOf("ETH")
		_, acct := st.Ledger.Account(core.GasAccountKey(3))
		if !ok || g.Address != addr || !acct {
			t.Fatalf("the gas account %+v (%v), ledger account %v; want %s", g, ok, acct, addr)
		}
	})
	other := "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
	if r := e.do("POST", "/v1/requests", aiko, open("gas-eth-2", `{"asset":"ETH","address":"`+other+`"}`)); r.status != 409 || !strings.Contains(string(r.body), "gas_account_registered") {
		t.Fatalf("a second gas account = %d %s; want 409 gas_account_registered", r.status, r.body)
	}
}
