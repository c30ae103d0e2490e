package api

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/people"
	"kinko/internal/withdraw"
)

// TestOpenAPIBalanceSchema: the Balance schema in openapi.json names
// exactly the fields GET /v1/me/balances returns.
func TestOpenAPIBalanceSchema(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
				Required   []string                   `json:"required"`
			} `json:"schemas"`
		} `json:"components"`
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Content map[string]struct {
					Schema json.RawMessage `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		t.Fatal(err)
	}
	schema, ok := doc.Components.Schemas["Balance"]
	if !ok {
		t.Fatal("openapi.json has no Balance schema")
	}
	var spec, served []string
	for p := range schema.Properties {
		spec = append(spec, p)
	}
	bt := reflect.TypeFor[BalanceView]()
	for i := range bt.NumField() {
		name, opts, _ := strings.Cut(bt.Field(i).Tag.Get("json"), ",")
		served = append(served, name)
		if opts != "omitempty" && !slices.Contains(schema.Required, name) {
			t.Errorf("field %s is always present but not required in the schema", name)
		}
	}
	slices.Sort(spec)
	slices.Sort(served)
	if !slices.Equal(spec, served) {
		t.Fatalf("Balance schema has %v; BalanceView serves %v", spec, served)
	}
	got := string(doc.Paths["/v1/me/balances"]["get"].Responses["200"].Content["application/json"].Schema)
	if !strings.Contains(got, "#/components/schemas/Balance") {
		t.Fatalf("GET /v1/me/balances does not answer with Balance items: %s", got)
	}
}

// TestBalancesWithdrawable: a customer's deposit credited at the watcher's
// confirmations shows as available at once and as withdrawable only once
// the journaled chain tip passes its depth; the API refuses the withdrawal
// before, naming the deposit, and accepts it after.
func TestBalancesWithdrawable(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id, tok := e.signUp("dep@example.jp")
	addr := "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
	pub, priv, _ := ed25519.GenerateKey(nil)
	op := custody.Outpoint{TxID: [32]byte{0xD0}}
	hash := func(h int32) [32]byte { return [32]byte{byte(h), 0xB1} }
	checkpoint := func(h int32) core.WatchCheckpoint {
		cp := core.WatchCheckpoint{Asset: 2, Height: h}
		for k := h - 5; k <= h; k++ {
			cp.Hashes = append(cp.Hashes, hash(k))
		}
		return cp
	}
	e.twoPerson(core.KindSetWithdrawalRulesRequest, core.SetWithdrawalRulesPayload{Rules: withdraw.Rules{CoolDownSeconds: 60}}, "aiko", "ren", people.RoleAdmin)
	e.registerWallet(custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: 2, Descriptor: "cold", Owner: ledger.OwnerHouseMin + 100})
	for _, cmd := range []core.Command{
		core.SetKYC{Customer: id, KYC: people.KYCVerified, Actor: "aiko", Reason: "checked"},
		core.AssignAddress{Wallet: 1, Customer: id},
		core.RegisterIntentKey{Customer: id, PubKey: [32]byte(pub)},
		core.WhitelistAddress{Customer: id, Asset: "BTC", Address: addr},
		checkpoint(100),
		core.CreditDeposits{Deposits: []custody.Seen{{Outpoint: op, Wallet: 1, Index: 0, Amount: 5000_0000, BlockHash: hash(99), Height: 99}}},
	} {
		if o, err := e.core.Submit(ctx, e.clock.Now(), cmd); err != nil || o.Err != nil || o.EventErr() != nil {
			t.Fatal(cmd.Kind(), err, o.Err, o.EventErr())
		}
	}
	e.clock.Add(2 * time.Minute)
	balance := func() BalanceView {
		t.Helper()
		var b struct {
			Balances []BalanceView `json:"balances"`
		}
		e.do("GET", "/v1/me/balances", tok, nil).json(t, &b)
		for _, v := range b.Balances {
			if v.Asset == "BTC" && v.Kind == "available" {
				return v
			}
		}
		t.Fatalf("no BTC available balance in %+v", b)
		return BalanceView{}
	}
	v := balance()
	if v.Available != ledger.AmountOf(5000_0000) || !v.Withdrawable.IsZero() || !strings.Contains(v.WithdrawableReason, "has 2 of the 6 confirmations") {
		t.Fatalf("balance at 2 confirmations = %+v", v)
	}
	ask := func(reqID string) WithdrawalView {
		in := withdraw.Intent{RequestID: reqID, Asset: "BTC", Address: addr, Amount: withdraw.AmountOf(1000_0000), Expiry: e.clock.Now().Add(time.Hour).Unix()}
		sig, _ := in.Sign(priv)
		r := e.do("POST", "/v1/me/withdrawals", tok, WithdrawalRequest{RequestID: reqID, Asset: "BTC", Address: addr, Amount: WideUnits(in.Amount), Expiry: Time{time.Unix(in.Expiry, 0).UTC()},
			PublicKey: hex.EncodeToString(pub), Signature: hex.EncodeToString(sig)}, "X-TOTP", e.code("dep@example.jp"))
		var w WithdrawalView
		r.json(t, &w)
		if r.status != 201 {
			t.Fatalf("withdrawal %s = %d %s", reqID, r.status, r.body)
		}
		return w
	}
	deposit := func() DepositView {
		t.Helper()
		var v struct {
			Items []DepositView `json:"items"`
		}
		e.do("GET", "/v1/me/deposits", tok, nil).json(t, &v)
		if len(v.Items) != 1 {
			t.Fatalf("deposits = %+v", v.Items)
		}
		return v.Items[0]
	}
	if d := deposit(); d.State != "credited" || d.Confirmations != 2 || d.Depth != 6 || d.Final {
		t.Fatalf("deposit at 2 confirmations = %+v", d)
	}
	if w := ask("early"); w.Status != "rejected" || !strings.Contains(w.Reason, op.String()) || !strings.Contains(w.Reason, "2 of the 6") {
		t.Fatalf("withdrawal before finality = %+v", w)
	}
	if o, err := e.core.Submit(ctx, e.clock.Now(), checkpoint(104)); err != nil || o.Err != nil {
		t.Fatal(err, o.Err)
	}
	if v := balance(); v.Withdrawable != ledger.AmountOf(5000_0000) || v.WithdrawableReason != "" {
		t.Fatalf("balance at 6 confirmations = %+v", v)
	}
	if d := deposit(); d.Confirmations != 6 || !d.Final {
		t.Fatalf("deposit at 6 confirmations = %+v", d)
	}
	if w := ask("final"); w.Status != "queued" {
		t.Fatalf("withdrawal after finality = %+v", w)
	}
	if v := balance(); v.Available != ledger.AmountOf(4000_0000) || v.Withdrawable != ledger.AmountOf(4000_0000) {
		t.Fatalf("balance after the withdrawal = %+v", v)
	}
}
