package core

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"kinko/internal/compensation"
	"kinko/internal/controls"
	"kinko/internal/ledger"
	"kinko/internal/market"
	"kinko/internal/people"
	"kinko/internal/trading"
	"kinko/internal/withdraw"
)

const xem ledger.AssetID = 4

// coincheckRate is 88.549 yen per XEM, per micro-XEM (the base unit).
const coincheckNum, coincheckDen = 88_549, 1_000 * 1_000_000

// newCompEnv: the trade env's customers with XEM, an approver, and the
// journal entry at which the theft happened.
func newCompEnv(t *testing.T, holders int) (*tradeEnv, uint64) { return newCompEnvOn(t, holders, nil) }

// newCompEnvOn is newCompEnv that gives every command to c as well.
func newCompEnvOn(t *testing.T, holders int, c *Core) (*tradeEnv, uint64) {
	e := newTradeEnvOn(t, holders, c)
	e.must(CreateAssets{Assets: []ledger.Asset{{ID: xem, Code: "XEM", Decimals: 6, Class: ledger.ClassChain}}})
	eq := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: xem, Kind: ledger.KindEquity}
	keys := []ledger.AccountKey{eq}
	var ts []ledger.Transfer
	for i := ledger.OwnerID(1); i <= ledger.OwnerID(holders); i++ {
		keys = append(keys, avail(i, xem), held(i, xem))
		// Customer i holds i × 1,000.5 XEM.
		ts = append(ts, ledger.Transfer{ID: ledger.ID{Hi: 11, Lo: uint64(i)}, Debit: eq, Credit: avail(i, xem), Amount: ledger.AmountOf(uint64(i) * 1_000_500_000)})
	}
	e.must(CreateAccounts{Keys: keys})
	e.must(CreateTransfers{Transfers: ts})
	return e, e.st.Seq()
}

// stateAt replays the env's journal up to seq.
func (e *tradeEnv) stateAt(seq uint64) *State {
	st := NewState()
	for i := range e.entries[:seq] {
		st.Apply(&e.entries[i])
	}
	return st
}

func (e *tradeEnv) approve(id, plan, requester, decider string) Outcome {
	e.t.Helper()
	payload, _ := json.Marshal(ApproveCompensationPayload{Plan: plan})
	if o := e.do(OpenRequest{Request: people.Request{ID: id, Kind: KindApproveCompensation, Payload: payload, Requester: requester, Reason: "dry run checked",
		RequiredRole: people.RoleApprover, Expires: e.now + int64(time.Hour)}}); o.Err != nil {
		return o
	}
	return e.do(DecideRequest{ID: id, Decider: decider, Reason: "agreed", Approve: true})
}

// TestCompensationFixedRate: Coincheck's rule — XEM held at the moment of
// the theft × 88.549 yen, rounded down to the yen, the XEM written off —
// dry-run, approved by a second person, executed in parts, run again
// without paying anyone twice.
func TestCompensationFixedRate(t *testing.T) {
	e, theft := newCompEnv(t, 5)
	// After the theft customer 5 moves XEM away: the plan pays holdings
	// at the theft, not now.
	e.must(CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 12, Lo: 1}, Debit: avail(5, xem), Credit: avail(1, xem), Amount: ledger.AmountOf(1_000_000_000)}}})
	hs := e.stateAt(theft).Holdings(xem)
	if len(hs) != 5 || hs[4].Total != 5_002_500_000 {
		t.Fatalf("holdings at the theft = %+v", hs)
	}
	ps, err := compensation.FixedRatePayouts(hs, coincheckNum, coincheckDen)
	if err != nil {
		t.Fatal(err)
	}
	// 1,000.5 XEM × 88.549 = 88,593.2745 yen: 88,593.
	if ps[0].Pay != 88_593 || ps[4].Pay != 442_966 {
		t.Fatalf("payouts %+v", ps)
	}
	sum := compensation.Summarize(ps)
	if sum.Count != 5 || sum.Largest.Customer != 5 || sum.Total != 88_593+177_186+265_779+354_373+442_966 {
		t.Fatalf("dry run %+v", sum)
	}
	plan := compensation.Plan{ID: "xem-2018", Rule: compensation.FixedRate, Asset: xem, PayAsset: jpy, At: theft, RateNum: coincheckNum, RateDen: coincheckDen,
		Rounding: "down to the yen", WriteOff: true, Reason: "NEM theft", Requester: "kenji"}
	plan.Header(ps)
	e.must(WriteCompensation{Plan: plan})
	// Bad input: each refused, nothing changed.
	bad := []struct {
		name string
		cmd  Command
		want error
	}{
		{"zero rate", WriteCompensation{Plan: func() compensation.Plan { p := plan; p.ID = "z"; p.RateNum = 0; return p }()}, compensation.ErrRateAbsurd},
		{"absurd rate", WriteCompensation{Plan: func() compensation.Plan { p := plan; p.ID = "a"; p.RateNum, p.RateDen = 1<<62, 1; return p }()}, compensation.ErrRateAbsurd},
		{"unknown asset", WriteCompensation{Plan: func() compensation.Plan { p := plan; p.ID = "u"; p.Asset = 99; return p }()}, compensation.ErrInvalid},
		{"moment in the future", WriteCompensation{Plan: func() compensation.Plan { p := plan; p.ID = "f"; p.At = 1 << 40; return p }()}, compensation.ErrInvalid},
		{"same id", WriteCompensation{Plan: plan}, compensation.ErrExists},
		{"a payment the rule does not give", AddPayouts{Plan: plan.ID, Payouts: append([]compensation.Payout{{Customer: 1, Basis: ps[0].Basis, Pay: ps[0].Pay + 1}}, ps[1:]...)}, compensation.ErrInvalid},
		{"customers out of order", AddPayouts{Plan: plan.ID, Payouts: []compensation.Payout{ps[1], ps[0], ps[2], ps[3], ps[4]}}, compensation.ErrPayoutsOrder},
		{"executing a draft", ExecuteCompensation{Plan: plan.ID, From: 0, Count: 1, Actor: "aiko"}, compensation.ErrNotApproved},
	}
	for _, b := range bad {
		before := e.digest()
		if o := e.do(b.cmd); !errors.Is(o.Err, b.want) {
			t.Errorf("%s: %v; want %v", b.name, o.Err, b.want)
		}
		if e.digest() != before {
			t.Errorf("%s changed the state", b.name)
		}
	}
	// Approval before the payouts are in: refused; a short part before
	// the last too (the digest chains whole parts).
	if o := e.approve("early", plan.ID, "aiko", "kenji"); !errors.Is(o.Err, compensation.ErrIncomplete) {
		t.Fatalf("approving a plan without payouts = %v", o.Err)
	}
	if o := e.do(AddPayouts{Plan: plan.ID, Payouts: ps[:3]}); !errors.Is(o.Err, compensation.ErrInvalid) {
		t.Fatalf("a short part = %v", o.Err)
	}
	e.must(AddPayouts{Plan: plan.ID, Payouts: ps})
	// The plan's writer cannot approve it, even on another's request.
	if o := e.approve("self", plan.ID, "aiko", "kenji"); !errors.Is(o.Err, people.ErrSelfApproval) {
		t.Fatalf("writer approving = %v", o.Err)
	}
	plan2 := plan
	plan2.ID, plan2.Requester = "xem-2018b", "aiko"
	e.must(WriteCompensation{Plan: plan2})
	e.must(AddPayouts{Plan: plan2.ID, Payouts: ps})
	if o := e.approve("ok", plan2.ID, "aiko", "kenji"); o.Err != nil {
		t.Fatalf("approval: %v", o.Err)
	}
	comp := ledger.AccountKey{Owner: OwnerCompensation, Asset: jpy, Kind: ledger.KindHouse}
	if e.bal(comp) != int64(sum.Total) {
		t.Fatalf("compensation account %d; want %d", e.bal(comp), sum.Total)
	}
	// Execute in parts; the first part again pays nobody twice. The
	// same signed command replayed is refused; the part run again by
	// another operator pays nothing.
	jpyBefore := []int64{0, e.bal(avail(1, jpy)), e.bal(avail(2, jpy))}
	first := signed(ExecuteCompensation{Plan: plan2.ID, From: 0, Count: 2, Actor: "aiko"})
	r1 := e.must(first).(*ExecutionResult)
	if o := e.do(first); !errors.Is(o.Err, people.ErrReplayed) {
		t.Fatalf("replayed execution = %v; want ErrReplayed", o.Err)
	}
	if o := e.do(ExecuteCompensation{Plan: plan2.ID, From: 0, Count: 2, Actor: "sora"}); !errors.Is(o.Err, people.ErrNotAuthorized) {
		t.Fatalf("execution by a ciso = %v; want ErrNotAuthorized", o.Err)
	}
	again := e.must(ExecuteCompensation{Plan: plan2.ID, From: 0, Count: 2, Actor: "kenji"}).(*ExecutionResult)
	if r1.Paid != 2 || again.Paid != 0 || again.Already != 2 || e.bal(avail(1, jpy)) != jpyBefore[1]+88_593 || e.bal(avail(2, jpy)) != jpyBefore[2]+177_186 {
		t.Fatalf("first part %+v, again %+v", r1, again)
	}
	if o := e.do(ExecuteCompensation{Plan: plan2.ID, From: 3, Count: 2, Actor: "aiko"}); !errors.Is(o.Err, compensation.ErrOutOfOrder) {
		t.Fatalf("a gap = %v", o.Err)
	}
	r2 := e.must(ExecuteCompensation{Plan: plan2.ID, From: 2, Count: 3, Actor: "aiko"}).(*ExecutionResult)
	if !r2.Done || e.bal(comp) != 0 {
		t.Fatalf("last part %+v, compensation account left %d", r2, e.bal(comp))
	}
	if o := e.do(ExecuteCompensation{Plan: plan2.ID, From: 0, Count: 5, Actor: "aiko"}); !errors.Is(o.Err, compensation.ErrExecuted) {
		t.Fatalf("executing a done plan = %v", o.Err)
	}
	// The XEM is written off up to what each held at the theft: customer 1
	// received 1,000 XEM after it and keeps that.
	if e.bal(avail(1, xem)) != 1_000_000_000 || e.bal(avail(2, xem)) != 0 || e.bal(avail(5, xem)) != 0 {
		t.Fatalf("XEM after the write-off: %d %d %d", e.bal(avail(1, xem)), e.bal(avail(2, xem)), e.bal(avail(5, xem)))
	}
}

// TestCompensationResumesAfterACrash: the core stops in the middle of an
// execution; after a restart the plan resumes where it stopped, the part
// run twice pays nobody twice, and every customer is paid exactly once.
func TestCompensationResumesAfterACrash(t *testing.T) {
	e, theft := newCompEnv(t, 6)
	ps, _ := compensation.FixedRatePayouts(e.stateAt(theft).Holdings(xem), coincheckNum, coincheckDen)
	plan := compensation.Plan{ID: "p", Rule: compensation.FixedRate, Asset: xem, PayAsset: jpy, At: theft, RateNum: coincheckNum, RateDen: coincheckDen,
		Rounding: "down to the yen", Reason: "theft", Requester: "aiko"}
	plan.Header(ps)
	e.must(WriteCompensation{Plan: plan})
	e.must(AddPayouts{Plan: plan.ID, Payouts: ps})
	if o := e.approve("ok", plan.ID, "aiko", "kenji"); o.Err != nil {
		t.Fatal(o.Err)
	}
	// The same journal in a durable core.
	dir := t.TempDir()
	c := openCore(t, dir, 0)
	for i := range e.entries {
		if _, err := c.SubmitRaw(context.Background(), e.entries[i].Time, Kind(e.entries[i].Kind), e.entries[i].Payload); err != nil {
			t.Fatal(err)
		}
	}
	submit(t, c, time.Unix(0, e.now), ExecuteCompensation{Plan: plan.ID, From: 0, Count: 4, Actor: "aiko"})
	c.Close() // the crash: the operator's tool was running the next part
	c = openCore(t, dir, 0)
	defer c.Close()
	var from int
	c.Read(func(st *State) { p, _ := st.Compensation.Get(plan.ID); from = p.Paid })
	if from != 4 {
		t.Fatalf("resumes at %d; want 4", from)
	}
	submit(t, c, time.Unix(0, e.now), ExecuteCompensation{Plan: plan.ID, From: 2, Count: 4, Actor: "aiko"}) // overlaps what was paid
	c.Read(func(st *State) {
		for _, po := range ps {
			a, _ := st.Ledger.Account(avail(po.Customer, jpy))
			v, _ := a.Balance().Uint64()
			if int64(v) != 100_000_000+int64(po.Pay) {
				t.Errorf("customer %d has %d yen; want %d", po.Customer, v, 100_000_000+po.Pay)
			}
		}
		if p, _ := st.Compensation.Get(plan.ID); p.Status != compensation.Done {
			t.Fatalf("plan %s", p.Status)
		}
	})
}

// TestSuspensionFills: BITPoint's rule. While withdrawals were suspended,
// trading went on; fills worse for a customer than the mid at resumption
// are owed the difference in yen. Computed from the journal by replaying
// the window, then written, approved and executed as a plan.
func TestSuspensionFills(t *testing.T) {
	e := newTradeEnv(t, 4)
	e.must(Halt{Switch: controlsSwitch(btc, "withdraw"), Actor: "aiko", Reason: "suspension"})
	start := e.st.Seq()
	// During the suspension: 1 sells 0.1 BTC at 10,100,000 to 2; 3 sells
	// 0.2 BTC at 9,800,000 to 4.
	e.must(place(1, market.Sell, market.Limit, 10_100_000, 1000_0000))
	e.must(place(2, market.Buy, market.Limit, 10_100_000, 1000_0000))
	e.must(place(4, market.Buy, market.Limit, 9_800_000, 2000_0000))
	e.must(place(3, market.Sell, market.Limit, 9_800_000, 2000_0000))
	if o := e.lift(controlsSwitch(btc, "withdraw"), "aiko", "kenji"); o.Err != nil {
		t.Fatal(o.Err)
	}
	// At resumption the book is 9,950,000 / 10,050,000: mid 10,000,000.
	e.must(place(1, market.Buy, market.Limit, 9_950_000, 1000_0000))
	e.must(place(3, market.Sell, market.Limit, 10_050_000, 1000_0000))
	resume := e.st.Seq()
	dir := t.TempDir()
	c := openCore(t, dir, 0)
	defer c.Close()
	for i := range e.entries {
		if _, err := c.SubmitRaw(context.Background(), e.entries[i].Time, Kind(e.entries[i].Kind), e.entries[i].Payload); err != nil {
			t.Fatal(err)
		}
	}
	fills, err := FillsBetween(context.Background(), dir, c.Journal(), 1, start, resume)
	if err != nil || len(fills) != 2 {
		t.Fatalf("fills %+v, %v", fills, err)
	}
	if fills[0].Halted != "BTC:withdraw" {
		t.Fatalf("the fill does not record the suspension: %+v", fills[0])
	}
	var mid int64
	c.Read(func(st *State) { m, _ := st.Trading.Market(1); mid = m.Mid() })
	if mid != 10_000_000 {
		t.Fatalf("mid %d", mid)
	}
	ps := SuspensionPayouts(btcJPY, fills, mid)
	// Buyer 2 paid 100,000 above the mid on 0.1 BTC: 10,000 yen; seller 3
	// sold 200,000 below it on 0.2 BTC: 40,000 yen; 1 and 4 did better.
	if len(ps) != 2 || ps[0] != (compensation.Payout{Customer: 2, Basis: 10_000, Pay: 10_000}) || ps[1] != (compensation.Payout{Customer: 3, Basis: 40_000, Pay: 40_000}) {
		t.Fatalf("payouts %+v", ps)
	}
	if _, err := FillsBetween(context.Background(), dir, c.Journal(), 1, resume, start); err == nil {
		t.Fatal("a window ending before it starts accepted")
	}
	if _, err := FillsBetween(context.Background(), dir, c.Journal(), 9, start, resume); !errors.Is(err, trading.ErrUnknownMarket) {
		t.Fatalf("unknown market = %v", err)
	}
	plan := compensation.Plan{ID: "susp", Rule: compensation.SuspensionFills, Asset: btc, PayAsset: jpy, At: resume, Rounding: "down to the yen", Reason: "fills during the suspension", Requester: "aiko"}
	plan.Header(ps)
	submit(t, c, time.Unix(0, e.now), WriteCompensation{Plan: plan})
	submit(t, c, time.Unix(0, e.now), AddPayouts{Plan: plan.ID, Payouts: ps})
	payload, _ := json.Marshal(ApproveCompensationPayload{Plan: plan.ID})
	submit(t, c, time.Unix(0, e.now), OpenRequest{Request: people.Request{ID: "a", Kind: KindApproveCompensation, Payload: payload, Requester: "aiko", Reason: "ok", RequiredRole: people.RoleApprover, Expires: e.now + int64(time.Hour)}})
	submit(t, c, time.Unix(0, e.now), DecideRequest{ID: "a", Decider: "kenji", Reason: "ok", Approve: true})
	submit(t, c, time.Unix(0, e.now), ExecuteCompensation{Plan: plan.ID, From: 0, Count: 2, Actor: "aiko"})
	c.Read(func(st *State) {
		if p, _ := st.Compensation.Get(plan.ID); p.Status != compensation.Done {
			t.Fatalf("plan %s", p.Status)
		}
	})
}

func controlsSwitch(a ledger.AssetID, svc string) controls.Switch {
	return controls.Switch{Asset: a, Service: controls.Service(svc)}
}

// TestCompensationShortfall: a plan that pays yen the customers' trust
// account does not hold leaves the yen side short; the entry that finishes
// the plan opens an incident for it, its loss the shortfall, and says so in
// its result. The same plan with its yen paid into the trust first leaves
// nothing short and opens nothing.
func TestCompensationShortfall(t *testing.T) {
	for _, funded := range []bool{false, true} {
		e, _ := newCompEnv(t, 3)
		r, total := shortfallPlan(e, funded)
		in, open := e.st.Incidents.Get("shortfall-JPY-p")
		if funded {
			if len(r.Shortfalls) != 0 || open {
				t.Fatalf("funded plan: shortfalls %+v, incident %v", r.Shortfalls, open)
			}
			continue
		}
		if !r.Done || len(r.Shortfalls) != 1 || r.Shortfalls[0].Asset != "JPY" || r.Shortfalls[0].Short != ledger.AmountOf(total) {
			t.Fatalf("unfunded plan of %d yen: %+v", total, r.Shortfalls)
		}
		if !open || in.Loss != withdraw.AmountOf(total) || in.Closed != 0 || in.Detector != ShortfallDetector {
			t.Fatalf("incident %+v (open %v); want loss %d", in, open, total)
		}
	}
}

// shortfallPlan runs Coincheck's plan "p" on the env's XEM holders, paid
// in yen, its yen paid into the customers' trust first if funded, and
// returns the result of its execution and its total in yen.
func shortfallPlan(e *tradeEnv, funded bool) (*ExecutionResult, uint64) {
	t := e.t
	theft := e.st.Seq()
	trust := ledger.AccountKey{Owner: ledger.OwnerHouseMin + 110, Asset: jpy, Kind: ledger.KindWallet}
	eq := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: jpy, Kind: ledger.KindEquity}
	e.must(CreateAccounts{Keys: []ledger.AccountKey{trust}})
	// The customers' yen is in the trust, to the yen.
	e.must(CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 13, Lo: 1}, Debit: trust, Credit: eq, Amount: ledger.AmountOf(3 * 100_000_000)}}})
	ps, err := compensation.FixedRatePayouts(e.stateAt(theft).Holdings(xem), coincheckNum, coincheckDen)
	if err != nil {
		t.Fatal(err)
	}
	sum := compensation.Summarize(ps)
	plan := compensation.Plan{ID: "p", Rule: compensation.FixedRate, Asset: xem, PayAsset: jpy, At: theft, RateNum: coincheckNum, RateDen: coincheckDen,
		Rounding: "down to the yen", WriteOff: true, Reason: "theft", Requester: "aiko"}
	plan.Header(ps)
	e.must(WriteCompensation{Plan: plan})
	e.must(AddPayouts{Plan: plan.ID, Payouts: ps})
	if o := e.approve("ok", plan.ID, "aiko", "kenji"); o.Err != nil {
		t.Fatal(o.Err)
	}
	if funded {
		e.must(CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 13, Lo: 2}, Debit: trust, Credit: eq, Amount: ledger.AmountOf(sum.Total)}}})
	}
	return e.must(ExecuteCompensation{Plan: plan.ID, From: 0, Count: len(ps), Actor: "aiko"}).(*ExecutionResult), sum.Total
}
