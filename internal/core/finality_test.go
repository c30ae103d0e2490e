package core

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"maps"
	"math/big"
	"strings"
	"testing"
	"time"

	"kinko/internal/chain"
	"kinko/internal/controls"
	"kinko/internal/custody"
	"kinko/internal/ethwallet"
	"kinko/internal/ledger"
	"kinko/internal/market"
	"kinko/internal/people"
	"kinko/internal/withdraw"
)

// attacker is the customer of the finality tests: signed up and verified,
// nothing but what they deposit.
const attacker ledger.OwnerID = 3

// finEnv is a tradeEnv (customers 1 and 2 with 10 BTC and 100,000,000 yen
// each, final: not from deposits) with a cold customer wallet, the
// attacker (customer 3) with a deposit address, intent keys and
// whitelisted BTC and JPY addresses for all, two operators, and the
// withdrawal rules with BTC's tiers 6/20/100 at 1 and 10 BTC.
type finEnv struct {
	*tradeEnv
	keys map[ledger.OwnerID]ed25519.PrivateKey
	tip  int32
	// fork, when set, is the height from which the journaled chain differs
	// from the one deposits were seen on.
	fork int32
}

var finRules = openLimits(withdraw.Rules{CoolDownSeconds: 1, Finality: map[string][]withdraw.Tier{
	"BTC": {{UpTo: withdraw.AmountOf(1_0000_0000), Depth: 6}, {UpTo: withdraw.AmountOf(10_0000_0000), Depth: 20}, {Depth: 100}}}})

// openLimits gives rules explicit amount limits for BTC and JPY far above
// anything the finality tests move: they test finality, not the amount
// limits, whose defaults would stop them (withdraw.DefaultLimits).
func openLimits(r withdraw.Rules) withdraw.Rules {
	open := func() map[string]withdraw.Amount {
		return map[string]withdraw.Amount{"BTC": withdraw.AmountOf(1 << 62), "JPY": withdraw.AmountOf(1 << 62)}
	}
	r.PerWithdrawalMax, r.PerCustomerDay, r.PerAssetHour, r.ApprovalAbove = open(), open(), open(), open()
	return r
}

func newFinEnv(t testing.TB) *finEnv {
	e := &finEnv{tradeEnv: newTradeEnv(t, 2), keys: map[ledger.OwnerID]ed25519.PrivateKey{}}
	creds := people.Credentials{PasswordHash: strings.Repeat("h", 30), TOTPSealed: strings.Repeat("s", 30)}
	e.must(SignUp{Customer: people.Customer{ID: attacker, Email: "c3@example.jp", Name: "c", Creds: creds}})
	e.must(SetKYC{Customer: attacker, KYC: people.KYCVerified, Actor: "aiko", Reason: "ok"})
	for _, cmd := range walletRegistered(custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: btc, Descriptor: "cold", Owner: ledger.OwnerHouseMin + 100}, time.Unix(0, e.now)) {
		e.must(cmd)
	}
	for c := ledger.OwnerID(1); c <= attacker; c++ {
		if idx := e.must(AssignAddress{Wallet: 1, Customer: c}).(uint32); idx != uint32(c-1) {
			t.Fatalf("address index %d for customer %d", idx, c)
		}
		priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(c)}, 32))
		e.keys[c] = priv
		e.must(RegisterIntentKey{Customer: c, PubKey: [32]byte(priv.Public().(ed25519.PublicKey))})
		e.must(WhitelistAddress{Customer: c, Asset: "BTC", Address: "bcrt1qmine"})
		e.must(WhitelistAddress{Customer: c, Asset: "JPY", Address: "bank:0001-001-1234567"})
	}
	e.mustRules(finRules)
	e.now += 2e9 // past the cool-down
	return e
}

// blockHash is the hash of the block at height h of the test's chain: the
// best chain below the fork, another one from it.
func (e *finEnv) blockHash(h int32) [32]byte {
	b := [32]byte{byte(h), byte(h >> 8), byte(h >> 16), 0xB1}
	if e.fork != 0 && h >= e.fork {
		b[31] = 0xF0
	}
	return b
}

// deposit credits amount to customer c from outpoint (txid n, vout 0) seen
// at height h, and returns the outpoint.
func (e *finEnv) deposit(c ledger.OwnerID, n byte, amount uint64, h int32) custody.Outpoint {
	e.t.Helper()
	op := custody.Outpoint{TxID: [32]byte{0xDE, n}}
	res := e.must(CreditDeposits{Deposits: []custody.Seen{{Outpoint: op, Wallet: 1, Index: uint32(c - 1), Amount: amount, BlockHash: e.blockHash(h), Height: h}}}).([]custody.Result)
	if len(res) != 0 {
		e.t.Fatalf("deposit %d: %+v", n, res)
	}
	return op
}

// checkpoint journals the watcher's checkpoint at tip h with the last 16
// block hashes.
func (e *finEnv) checkpoint(h int32) {
	e.t.Helper()
	cp := WatchCheckpoint{Asset: btc, Height: h}
	for k := max(1, h-15); k <= h; k++ {
		cp.Hashes = append(cp.Hashes, e.blockHash(k))
	}
	e.must(cp)
	e.tip = h
}

// withdraw asks for a withdrawal of amount of asset and returns the record.
func (e *finEnv) withdraw(c ledger.OwnerID, id, asset string, amount uint64) withdraw.Withdrawal {
	e.t.Helper()
	addr := "bcrt1qmine"
	if asset == "JPY" {
		addr = "bank:0001-001-1234567"
	}
	in := withdraw.Intent{RequestID: id, Asset: asset, Address: addr, Amount: withdraw.AmountOf(amount), Expiry: e.now/1e9 + 3600}
	sig, err := in.Sign(e.keys[c])
	if err != nil {
		e.t.Fatal(err)
	}
	o := e.do(RequestWithdrawal{Customer: c, Intent: in, PubKey: [32]byte(e.keys[c].Public().(ed25519.PublicKey)), Sig: sig})
	if o.Err != nil {
		e.t.Fatalf("withdrawal %s: %v", id, o.Err)
	}
	return o.Value.(withdraw.Withdrawal)
}

// refused checks that a withdrawal was rejected with a reason containing
// each of want, and held nothing.
func (e *finEnv) refused(w withdraw.Withdrawal, want ...string) {
	e.t.Helper()
	if w.Status != withdraw.StatusRejected || w.HoldHi != 0 || w.HoldLo != 0 {
		e.t.Fatalf("withdrawal %s = %s (%s); want rejected, nothing held", w.ID, w.Status, w.Reason)
	}
	for _, s := range want {
		if !strings.Contains(w.Reason, s) {
			e.t.Fatalf("withdrawal %s refused with %q; want it to say %q", w.ID, w.Reason, s)
		}
	}
}

func (e *finEnv) accepted(w withdraw.Withdrawal) {
	e.t.Helper()
	if w.Status != withdraw.StatusQueued {
		e.t.Fatalf("withdrawal %s = %s (%s); want queued", w.ID, w.Status, w.Reason)
	}
}

// mustRules sets withdrawal rules through the two-person request.
func (e *finEnv) mustRules(r withdraw.Rules) {
	e.t.Helper()
	if o := e.setRules(r); o.Err != nil {
		e.t.Fatal(o.Err)
	}
}

// liftDeposits lifts the halt of BTC deposits a reversal set, as two
// operators do.
func (e *finEnv) liftDeposits() {
	e.t.Helper()
	if o := e.lift(controls.Switch{Asset: btc, Service: controls.Deposit}, "aiko", "kenji"); o.Err != nil {
		e.t.Fatal(o.Err)
	}
}

func equityBTC(e *finEnv) int64 {
	a, _ := e.st.Ledger.Account(ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: btc, Kind: ledger.KindEquity})
	v, _ := a.DebitsPosted.Uint64()
	w, _ := a.CreditsPosted.Uint64()
	return int64(w) - int64(v)
}

// TestFinalityTiersByAmount: the depth a deposit needs grows with its
// amount, and the journaled tip (never a clock) makes it final.
func TestFinalityTiersByAmount(t *testing.T) {
	e := newFinEnv(t)
	small := e.deposit(attacker, 1, 1_0000_0000, 100)  // at most 1 BTC: 6
	medium := e.deposit(attacker, 2, 5_0000_0000, 100) // at most 10 BTC: 20
	large := e.deposit(attacker, 3, 50_0000_0000, 100) // above: 100
	for op, want := range map[custody.Outpoint]int32{small: 6, medium: 20, large: 100} {
		if d, _ := e.st.Custody.Deposit(op); d.Depth() != want || d.Final {
			t.Errorf("deposit %s of %d: depth %d final %v; want %d, not final", op, d.Amount, d.Depth(), d.Final, want)
		}
	}
	steps := []struct {
		tip     int32
		unfinal uint64
	}{
		{101, 56_0000_0000}, {104, 56_0000_0000}, {105, 55_0000_0000}, {118, 55_0000_0000},
		{119, 50_0000_0000}, {198, 50_0000_0000}, {199, 0},
	}
	for _, s := range steps {
		e.checkpoint(s.tip)
		if got := e.st.Custody.UnfinalAmount(attacker, btc); got != ledger.AmountOf(s.unfinal) {
			t.Fatalf("at tip %d: %d not final; want %d", s.tip, got, s.unfinal)
		}
	}
	// A deposit seen after the tip already passed its depth is final at
	// once.
	late := e.deposit(attacker, 4, 1000, 150)
	if d, _ := e.st.Custody.Deposit(late); !d.Final || !e.st.Custody.UnfinalAmount(attacker, btc).IsZero() {
		t.Fatalf("a deposit 50 blocks deep is not final: %+v", d)
	}
}

// TestWithdrawalWaitsForFinality: credited at the watcher's confirmations,
// a deposit can be traded but not withdrawn before its depth; what was
// final before stays withdrawable; once the journaled tip passes the depth,
// the same request is accepted.
func TestWithdrawalWaitsForFinality(t *testing.T) {
	e := newFinEnv(t)
	e.checkpoint(100)
	op := e.deposit(attacker, 1, 5000_0000, 99) // credited at 2 confirmations
	w := e.withdraw(attacker, "w1", "BTC", 1000_0000)
	e.refused(w, "not final", "deposit "+op.String()+" of 50000000 BTC has 2 of the 6 confirmations it needs", "at most 0 may be withdrawn now")
	if e.bal(avail(attacker, btc)) != 5000_0000 || e.bal(held(attacker, btc)) != 0 {
		t.Fatalf("a refused withdrawal moved funds: available %d held %d", e.bal(avail(attacker, btc)), e.bal(held(attacker, btc)))
	}
	if got, why := e.st.Withdrawable(attacker, btc); !got.IsZero() || !strings.Contains(why, "2 of the 6") {
		t.Fatalf("withdrawable = %d %q", got, why)
	}
	e.checkpoint(103) // 5 confirmations
	e.refused(e.withdraw(attacker, "w2", "BTC", 1000_0000), "has 5 of the 6 confirmations")
	e.checkpoint(104) // 6
	e.accepted(e.withdraw(attacker, "w3", "BTC", 1000_0000))
	if got := e.st.available(attacker, btc); got != withdraw.AmountOf(4000_0000) {
		t.Fatalf("available after the accepted withdrawal = %d", got)
	}

	// Customer 1 has 10 BTC that were final before and deposits 1 BTC: the
	// 10 may leave, not the new one.
	op1 := e.deposit(1, 2, 1_0000_0000, 104)
	e.accepted(e.withdraw(1, "a", "BTC", 4_0000_0000))
	e.refused(e.withdraw(1, "b", "BTC", 6_0000_0001), "deposit "+op1.String(), "has 1 of the 6", "at most 600000000")
	e.accepted(e.withdraw(1, "c", "BTC", 6_0000_0000))
	if got, _ := e.st.Withdrawable(1, btc); !got.IsZero() {
		t.Fatalf("customer 1 withdrawable = %d; want 0", got)
	}
	// Yen is untouched by the BTC deposit: the customer still holds it.
	e.accepted(e.withdraw(1, "d", "JPY", 1_000_000))
}

// TestTradedAwayBlocksEveryAsset: the attacker sells a credited deposit for
// yen at once (allowed) and asks to withdraw the yen: refused until the
// deposit is final. The deposit is reorganised out: the shortfall is owed
// by the attacker, not paid by the house, and blocks their withdrawals; a
// later deposit repays it, and once that one is final they may withdraw.
func TestTradedAwayBlocksEveryAsset(t *testing.T) {
	e := newFinEnv(t)
	e.checkpoint(100)
	equity := equityBTC(e)
	op := e.deposit(attacker, 1, 1_0000_0000, 99)
	// Trading with credited coins is allowed.
	e.must(place(2, market.Buy, market.Limit, 10_000_000, 1_0000_0000))
	r := e.must(place(attacker, market.Sell, market.Limit, 10_000_000, 1_0000_0000)).(*PlaceResult)
	if r.Filled != 1_0000_0000 {
		t.Fatalf("the sale of the deposit = %+v", r)
	}
	yen := uint64(e.bal(avail(attacker, jpy)))
	if yen == 0 || e.bal(avail(attacker, btc)) != 0 {
		t.Fatalf("after the sale: %d yen, %d BTC", yen, e.bal(avail(attacker, btc)))
	}
	e.refused(e.withdraw(attacker, "yen-1", "JPY", yen), "deposit "+op.String(), "2 of the 6", "no withdrawal of any asset")
	e.refused(e.withdraw(attacker, "yen-2", "JPY", 1), "no withdrawal of any asset")
	if got, _ := e.st.Withdrawable(attacker, jpy); !got.IsZero() {
		t.Fatalf("yen withdrawable = %d; want 0", got)
	}

	// A reorganisation deeper than the crediting confirmations takes the
	// deposit's block: reversed, the attacker owes the coin.
	short := e.must(ReverseDeposits{Outpoints: []custody.Outpoint{op}, Actor: "watcher", Reason: "block left the best chain"}).([]uint64)
	if len(short) != 1 || short[0] != 1_0000_0000 {
		t.Fatalf("shortfall = %v", short)
	}
	if got := equityBTC(e); got != equity {
		t.Fatalf("house equity %d after the reversal; was %d: the house paid", got, equity)
	}
	owes := custody.ReceivableAccount(attacker, btc)
	if e.bal(owes) != 1_0000_0000 || e.bal(avail(attacker, btc)) != 0 {
		t.Fatalf("owed %d, available %d", e.bal(owes), e.bal(avail(attacker, btc)))
	}
	if !e.st.Custody.UnfinalAmount(attacker, btc).IsZero() {
		t.Fatal("a reversed deposit still counts as not final")
	}
	e.checkpoint(300) // long past any depth: the debt still blocks
	e.refused(e.withdraw(attacker, "yen-3", "JPY", 1), "owes 100000000 BTC")
	if got, why := e.st.Withdrawable(attacker, jpy); !got.IsZero() || !strings.Contains(why, "owes") {
		t.Fatalf("withdrawable while owing = %d %q", got, why)
	}

	e.liftDeposits()
	// A new deposit of 3 BTC repays the debt as it is credited; 2 BTC is
	// left, not final, and the available balance (2) is below the deposit
	// (3): still nothing may leave until it is final at 20.
	op2 := e.deposit(attacker, 2, 3_0000_0000, 300)
	if e.bal(owes) != 0 || e.bal(avail(attacker, btc)) != 2_0000_0000 {
		t.Fatalf("after the repaying deposit: owed %d, available %d", e.bal(owes), e.bal(avail(attacker, btc)))
	}
	e.refused(e.withdraw(attacker, "yen-4", "JPY", 1), "deposit "+op2.String(), "1 of the 20", "no withdrawal of any asset")
	e.checkpoint(319)
	e.accepted(e.withdraw(attacker, "yen-5", "JPY", yen))
	e.accepted(e.withdraw(attacker, "btc-1", "BTC", 2_0000_0000))
	if err := e.st.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

// TestReorgOfHeldDepositCostsNothing: the deposit reorganised out while the
// customer still holds it is simply taken back: nothing owed, nothing paid.
func TestReorgOfHeldDepositCostsNothing(t *testing.T) {
	e := newFinEnv(t)
	e.checkpoint(100)
	equity := equityBTC(e)
	op := e.deposit(attacker, 1, 40_0000_0000, 99)
	e.refused(e.withdraw(attacker, "w", "BTC", 40_0000_0000), "2 of the 100")
	short := e.must(ReverseDeposits{Outpoints: []custody.Outpoint{op}, Actor: "watcher", Reason: "reorg"}).([]uint64)
	if short[0] != 0 || e.bal(avail(attacker, btc)) != 0 || e.bal(custody.ReceivableAccount(attacker, btc)) != 0 || equityBTC(e) != equity {
		t.Fatalf("shortfall %v, available %d, owed %d, equity %d (was %d)", short, e.bal(avail(attacker, btc)),
			e.bal(custody.ReceivableAccount(attacker, btc)), equityBTC(e), equity)
	}
}

// TestFinalityStaleCheckpoint: a checkpoint whose chain holds another block
// at the deposit's height does not make the deposit final: the block left
// the best chain, and only its reversal is due.
func TestFinalityStaleCheckpoint(t *testing.T) {
	e := newFinEnv(t)
	e.checkpoint(100)
	op := e.deposit(attacker, 1, 1000, 99)
	e.fork = 99
	e.checkpoint(110)
	if d, _ := e.st.Custody.Deposit(op); d.Final {
		t.Fatal("final on a chain without its block")
	}
	e.refused(e.withdraw(attacker, "w", "BTC", 1000), "not final")
	e.fork = 0
	e.checkpoint(111)
	if d, _ := e.st.Custody.Deposit(op); !d.Final {
		t.Fatal("not final once its block is back on the journaled chain")
	}
}

// TestFinalityRulesChange: new tiers apply at once to the deposits not yet
// final; deposits already final stay final.
func TestFinalityRulesChange(t *testing.T) {
	e := newFinEnv(t)
	e.checkpoint(100)
	a := e.deposit(attacker, 1, 5_0000_0000, 95) // 6 confirmations of 20
	b := e.deposit(1, 2, 1000, 95)               // final at 100
	if d, _ := e.st.Custody.Deposit(b); !d.Final {
		t.Fatal("small deposit not final at 6 confirmations")
	}
	e.mustRules(openLimits(withdraw.Rules{CoolDownSeconds: 1, Finality: map[string][]withdraw.Tier{"BTC": {{Depth: 3}}}}))
	if d, _ := e.st.Custody.Deposit(a); !d.Final {
		t.Fatalf("deposit not final under the looser tiers: %+v", d)
	}
	e.mustRules(openLimits(withdraw.Rules{CoolDownSeconds: 1, Finality: map[string][]withdraw.Tier{"BTC": {{Depth: 50}}}}))
	c := e.deposit(attacker, 3, 1000, 100)
	if d, _ := e.st.Custody.Deposit(c); d.Depth() != 50 {
		t.Fatalf("depth under the new tiers = %d", d.Depth())
	}
	for _, op := range []custody.Outpoint{a, b} {
		if d, _ := e.st.Custody.Deposit(op); !d.Final {
			t.Fatalf("a final deposit became not final: %+v", d)
		}
	}
	// Rules without tiers: the defaults, never no finality.
	e.mustRules(openLimits(withdraw.Rules{CoolDownSeconds: 1}))
	if d, _ := e.st.Custody.Deposit(c); d.Depth() != withdraw.DefaultDepthSmall || d.Final {
		t.Fatalf("under the default tiers: %+v", d)
	}
}

// TestFinalityRulesRefused: bad tiers are refused whole with a clear error,
// and the rules in force stay.
func TestFinalityRulesRefused(t *testing.T) {
	e := newFinEnv(t)
	for _, c := range []struct {
		name string
		fin  map[string][]withdraw.Tier
		want string
	}{
		{"no tiers", map[string][]withdraw.Tier{"BTC": {}}, "no tiers"},
		{"zero depth", map[string][]withdraw.Tier{"BTC": {{Depth: 0}}}, "at least 1"},
		{"shallower", map[string][]withdraw.Tier{"BTC": {{UpTo: withdraw.AmountOf(5), Depth: 6}, {Depth: 5}}}, "not deeper"},
		{"bounds", map[string][]withdraw.Tier{"BTC": {{UpTo: withdraw.AmountOf(5), Depth: 6}, {UpTo: withdraw.AmountOf(4), Depth: 7}, {Depth: 8}}}, "not above"},
		{"bounded last", map[string][]withdraw.Tier{"BTC": {{UpTo: withdraw.AmountOf(5), Depth: 6}}}, "last tier"},
		{"unknown asset", map[string][]withdraw.Tier{"DOGE": {{Depth: 6}}}, "DOGE: asset unknown"},
		{"fiat", map[string][]withdraw.Tier{"JPY": {{Depth: 6}}}, "not a chain asset"},
	} {
		o := e.setRules(openLimits(withdraw.Rules{CoolDownSeconds: 1, Finality: c.fin}))
		if !errors.Is(o.Err, ErrCommandInvalid) || !errors.Is(o.Err, withdraw.ErrFinalityRules) || !strings.Contains(o.Err.Error(), c.want) {
			t.Errorf("%s: %v; want a finality error with %q", c.name, o.Err, c.want)
		}
	}
	if o := e.twoPerson(KindSetWithdrawalRulesRequest, SetWithdrawalRulesPayload{Rules: finRules}, "kenji", "aiko", people.RoleAdmin); !errors.Is(o.Err, people.ErrNotAuthorized) {
		t.Errorf("rules set by an approver: %v", o.Err)
	}
	if got := e.st.Withdraw.Rules.FinalityDepth("BTC", 8, withdraw.AmountOf(50_0000_0000)); got != 100 {
		t.Fatalf("rules in force changed by refused commands: depth %d", got)
	}
	// The journaled form must be canonical: a zero bound spelt out is not.
	p := []byte(`{"Rules":{"cooldown_seconds":1,"per_withdrawal_max":null,"per_customer_day":null,"per_asset_hour":null,"approval_above":null,"deny_list":null,"dust_limit":null,"finality":{"BTC":[{"up_to":0,"depth":6}]}},"Actor":"aiko"}`)
	if _, err := DecodeCommand(uint16(KindSetWithdrawalRules), p); !errors.Is(err, ErrCommandInvalid) {
		t.Fatalf("non-canonical rules decode: %v", err)
	}
}

// TestOwedWrittenOff: what a customer owes is written off only with a
// second operator's approval, from house equity; then they may withdraw
// again.
func TestOwedWrittenOff(t *testing.T) {
	e := newFinEnv(t)
	e.checkpoint(100)
	op := e.deposit(attacker, 1, 1_0000_0000, 99)
	e.must(place(2, market.Buy, market.Limit, 10_000_000, 5000_0000))
	e.must(place(attacker, market.Sell, market.Limit, 10_000_000, 5000_0000))
	e.must(ReverseDeposits{Outpoints: []custody.Outpoint{op}, Actor: "watcher", Reason: "reorg"})
	owes := custody.ReceivableAccount(attacker, btc)
	if e.bal(owes) != 5000_0000 || e.bal(avail(attacker, btc)) != 0 {
		t.Fatalf("owed %d, available %d", e.bal(owes), e.bal(avail(attacker, btc)))
	}
	// Repaying from an empty balance repays nothing.
	if n := e.must(RepayOwed{Customer: attacker, Asset: "BTC", Actor: "aiko"}).(uint64); n != 0 {
		t.Fatalf("repaid %d from nothing", n)
	}
	equity := equityBTC(e)
	payload, _ := json.Marshal(WriteOffOwedPayload{Customer: attacker, Asset: "BTC"})
	req := people.Request{ID: "wo-1", Kind: KindWriteOffOwed, Payload: payload, Requester: "aiko", Reason: "customer unreachable", RequiredRole: people.RoleApprover, Expires: e.now + int64(time.Hour)}
	e.must(OpenRequest{Request: req})
	if o := e.do(DecideRequest{ID: "wo-1", Decider: "aiko", Reason: "mine", Approve: true}); !errors.Is(o.Err, people.ErrSelfApproval) {
		t.Fatalf("self-approved write-off = %v", o.Err)
	}
	e.must(DecideRequest{ID: "wo-1", Decider: "kenji", Reason: "agreed", Approve: true})
	if e.bal(owes) != 0 || equityBTC(e) != equity-5000_0000 {
		t.Fatalf("after the write-off: owed %d, equity %d (was %d)", e.bal(owes), equityBTC(e), equity)
	}
	e.accepted(e.withdraw(attacker, "yen", "JPY", 1000))
	// Nothing left to write off.
	req.ID = "wo-2"
	if o := e.do(OpenRequest{Request: req}); !errors.Is(o.Err, custody.ErrNothingOwed) {
		t.Fatalf("write-off of nothing = %v", o.Err)
	}
}

// TestReviewDepositFinality: a deposit held for review counts as not final
// once released, until its depth.
func TestReviewDepositFinality(t *testing.T) {
	e := newFinEnv(t)
	e.checkpoint(100)
	op := custody.Outpoint{TxID: [32]byte{0xEE}}
	e.must(CreditDeposits{Deposits: []custody.Seen{{Outpoint: op, Wallet: 1, Index: uint32(attacker - 1), Amount: 7000, BlockHash: e.blockHash(99), Height: 99, Review: true}}})
	if !e.st.Custody.UnfinalAmount(attacker, btc).IsZero() || e.bal(held(attacker, btc)) != 7000 {
		t.Fatal("a deposit held for review counts as available")
	}
	later := e.deposit(attacker, 2, 500, 100) // credited after it, released before it
	e.must(ReleaseDeposit{Outpoint: op, Actor: "aiko", Reason: "checked"})
	if e.st.Custody.UnfinalAmount(attacker, btc) != ledger.AmountOf(7500) {
		t.Fatal("a released deposit does not count as not final")
	}
	e.refused(e.withdraw(attacker, "w", "BTC", 7000), "deposit "+op.String(), "2 of the 6", "2 deposits of BTC not yet final")
	e.checkpoint(104)
	e.refused(e.withdraw(attacker, "w1", "BTC", 7500), "deposit "+later.String(), "5 of the 6")
	e.accepted(e.withdraw(attacker, "w2", "BTC", 7000))
}

// TestFinalitySnapshotAndReplay: the finality state survives a snapshot
// and a replay of the journal, byte for byte and in what it does next.
func TestFinalitySnapshotAndReplay(t *testing.T) {
	e := newFinEnv(t)
	e.checkpoint(100)
	e.deposit(attacker, 1, 1_0000_0000, 99)
	e.deposit(attacker, 2, 5_0000_0000, 100)
	e.deposit(1, 3, 3000, 98)
	lost := e.deposit(2, 4, 2_0000_0000, 100)
	e.must(place(1, market.Buy, market.Limit, 10_000_000, 5000_0000))
	e.must(place(attacker, market.Sell, market.Limit, 10_000_000, 5000_0000))
	e.checkpoint(104)

	var buf bytes.Buffer
	if err := e.st.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	fromSnap, err := DecodeState(&buf)
	if err != nil {
		t.Fatal(err)
	}
	replayed := e.stateAt(e.st.Seq())
	for name, st := range map[string]*State{"snapshot": fromSnap, "replay": replayed} {
		if st.Hash() != e.st.Hash() {
			t.Fatalf("%s: state hash differs", name)
		}
		if err := st.CheckInvariants(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// What comes next does the same on all three.
	from := len(e.entries)
	e.checkpoint(105)
	e.must(ReverseDeposits{Outpoints: []custody.Outpoint{lost}, Actor: "watcher", Reason: "reorg"})
	e.withdraw(attacker, "w1", "BTC", 1000)
	e.checkpoint(120)
	e.withdraw(attacker, "w2", "BTC", 1000)
	e.withdraw(1, "w3", "BTC", 1000)
	e.liftDeposits()
	e.deposit(attacker, 5, 1000, 121)
	for name, st := range map[string]*State{"snapshot": fromSnap, "replay": replayed} {
		for i := from; i < len(e.entries); i++ {
			st.Apply(&e.entries[i])
			if err := st.CheckInvariants(); err != nil {
				t.Fatalf("%s: entry %d: %v", name, i, err)
			}
		}
		if st.Hash() != e.st.Hash() {
			t.Fatalf("%s: state hash differs after the same entries", name)
		}
		for _, c := range []ledger.OwnerID{1, 2, attacker} {
			if a, b := st.Custody.Unfinal(c), e.st.Custody.Unfinal(c); !equalUnfinal(a, b) {
				t.Fatalf("%s: customer %d not final %+v; live %+v", name, c, a, b)
			}
		}
	}
}

func equalUnfinal(a, b []custody.Unfinal) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestWideUnfinalNotWithdrawable: withdrawals are 128-bit, so an Ether
// deposit not yet final must count in full above 2^64 wei (18.4 ETH). An
// attacker holds 1 ETH, final, and has a deposit of 100 ETH credited and
// not final; the most they may withdraw is the 1 ETH. Asking for 50 ETH,
// as an attacker would while the deposit's total read as 2^64 − 1 wei (and
// 81.6 ETH of it withdrawable), is refused with nothing held. A deposit
// above a tier bound beyond 2^64 takes the deeper tier.
func TestWideUnfinalNotWithdrawable(t *testing.T) {
	e := newFinEnv(t)
	const eth ledger.AssetID = 9
	e.must(CreateAssets{Assets: []ledger.Asset{{ID: eth, Code: "ETH", Decimals: 18, Class: ledger.ClassChain}}})
	a := func(b byte) ethwallet.Address { var x ethwallet.Address; x[0], x[19] = 0xb0, b; return x }
	desc := ethwallet.Descriptor{ChainID: 1337, Singleton: a(1), Factory: a(2), Fallback: a(3), Threshold: 2, Owners: []ethwallet.Address{a(10), a(11), a(12)}}
	for _, cmd := range walletRegistered(custody.Wallet{ID: 2, Kind: custody.ColdCustomer, Asset: eth, Descriptor: desc.String(), Owner: ledger.OwnerHouseMin + 101}, time.Unix(0, e.now)) {
		e.must(cmd)
	}
	idx := e.must(AssignAddress{Wallet: 2, Customer: attacker}).(uint32)
	payee := "0x" + strings.Repeat("ab", 20)
	e.must(WhitelistAddress{Customer: attacker, Asset: "ETH", Address: payee})
	ether := func(n uint64) ledger.Amount {
		v, err := chain.AmountFromBig(new(big.Int).Mul(new(big.Int).SetUint64(n), big.NewInt(1e18)))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	balance := func(k ledger.AccountKey) ledger.Amount { a, _ := e.st.Ledger.Account(k); return a.Balance() }
	lots := withdraw.Amount(ether(1_000))
	r := finRules
	r.PerWithdrawalMax, r.PerCustomerDay, r.PerAssetHour, r.ApprovalAbove = maps.Clone(r.PerWithdrawalMax), maps.Clone(r.PerCustomerDay), maps.Clone(r.PerAssetHour), maps.Clone(r.ApprovalAbove)
	r.PerWithdrawalMax["ETH"], r.PerCustomerDay["ETH"], r.PerAssetHour["ETH"], r.ApprovalAbove["ETH"] = lots, lots, lots, lots
	r.Finality = maps.Clone(r.Finality)
	r.Finality["ETH"] = []withdraw.Tier{{UpTo: withdraw.Amount(ether(50)), Depth: 12}, {Depth: 64}}
	e.mustRules(r)
	e.now += 2e9 // past the whitelist's cool-down
	cp := WatchCheckpoint{Asset: eth, Height: 100}
	for k := int32(85); k <= 100; k++ {
		cp.Hashes = append(cp.Hashes, e.blockHash(k))
	}
	e.must(cp)
	credit := func(n byte, v ledger.Amount, h int32) custody.Outpoint {
		op := custody.Outpoint{TxID: [32]byte{0xE7, n}, Vout: custody.EtherIndex}
		if res := e.must(CreditDeposits{Deposits: []custody.Seen{{Outpoint: op, Wallet: 2, Index: idx, Amount: v.Lo, AmountHi: v.Hi, BlockHash: e.blockHash(h), Height: h}}}).([]custody.Result); len(res) != 0 {
			t.Fatalf("deposit %d: %+v", n, res)
		}
		return op
	}
	ask := func(id string, v ledger.Amount) withdraw.Withdrawal {
		in := withdraw.Intent{RequestID: id, Asset: "ETH", Address: payee, Amount: withdraw.Amount(v), Expiry: e.now/1e9 + 3600}
		sig, err := in.Sign(e.keys[attacker])
		if err != nil {
			t.Fatal(err)
		}
		o := e.do(RequestWithdrawal{Customer: attacker, Intent: in, PubKey: [32]byte(e.keys[attacker].Public().(ed25519.PublicKey)), Sig: sig})
		if o.Err != nil {
			t.Fatalf("withdrawal %s: %v", id, o.Err)
		}
		return o.Value.(withdraw.Withdrawal)
	}
	credit(1, ether(1), 86) // 15 confirmations: final
	wide := credit(2, ether(100), 100)
	if got := e.st.Custody.UnfinalAmount(attacker, eth); got != ether(100) {
		t.Fatalf("not final: %s; want all of %s", got, ether(100))
	}
	if d, _ := e.st.Custody.Deposit(wide); d.Depth() != 64 {
		t.Fatalf("a deposit of 100 ETH needs %d confirmations; want 64 (the tier above 50 ETH, 2.7·2^64 wei)", d.Depth())
	}
	if got, why := e.st.Withdrawable(attacker, eth); got != withdraw.Amount(ether(1)) {
		t.Fatalf("withdrawable = %s (%s); want the 1 ETH that is final", got, why)
	}
	before := balance(avail(attacker, eth))
	e.refused(ask("w-wide", ether(50)), "not yet final")
	if balance(avail(attacker, eth)) != before || !balance(held(attacker, eth)).IsZero() {
		t.Fatal("a refused withdrawal moved funds")
	}
	e.accepted(ask("w-final", ether(1)))
}
