package core

import (
	"testing"
	"time"

	"kinko/internal/compensation"
	"kinko/internal/ledger"
	"kinko/internal/people"
)

// compBenchState is a state with n customers holding XEM (every one) and
// yen accounts, an admin and an approver: Coincheck's size at 1,700,000.
func compBenchState(b *testing.B, n int) (*State, *memJournal) {
	st := NewState()
	mj := &memJournal{}
	st.Ledger.Reserve(3*n+16, 2*n+16)
	apply := func(cmd Command) Outcome {
		e := mj.seal(1, signed(cmd))
		o := st.Apply(&e)
		if err := o.EventErr(); err != nil {
			b.Fatalf("%s: %v", cmd.Kind(), err)
		}
		return o
	}
	apply(CreateAssets{Assets: []ledger.Asset{{ID: jpy, Code: "JPY", Class: ledger.ClassFiat}, {ID: xem, Code: "XEM", Decimals: 6, Class: ledger.ClassChain}}})
	for _, c := range founding(time.Unix(0, 1)) {
		apply(c)
	}
	eq := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: xem, Kind: ledger.KindEquity}
	apply(CreateAccounts{Keys: []ledger.AccountKey{eq}})
	seedHolders(func(c Command) { apply(c) }, n, xem, jpy, eq, 11, 1_000_000)
	return st, mj
}

// seedHolders creates customers 1 to n, each with available and held
// accounts of coin and an available yen account, and credits each
// (id mod 100,000 + 1) × unit of coin from eq, in batches of the
// ledger's size; transfer ids are {hi, customer}.
func seedHolders(apply func(Command), n int, coin, yen ledger.AssetID, eq ledger.AccountKey, hi, unit uint64) {
	for i := 0; i < n; i += ledger.MaxBatch {
		k := min(ledger.MaxBatch, n-i)
		ids := make([]ledger.OwnerID, k)
		keys := make([]ledger.AccountKey, 0, 3*k)
		ts := make([]ledger.Transfer, k)
		for j := range ids {
			c := ledger.OwnerID(i + j + 1)
			ids[j] = c
			keys = append(keys, avail(c, coin), held(c, coin), avail(c, yen))
			ts[j] = ledger.Transfer{ID: ledger.ID{Hi: hi, Lo: uint64(c)}, Debit: eq, Credit: avail(c, coin), Amount: ledger.AmountOf(uint64(c%100_000+1) * unit)}
		}
		apply(CreateCustomers{IDs: ids})
		for a := 0; a < len(keys); a += ledger.MaxBatch {
			apply(CreateAccounts{Keys: keys[a:min(a+ledger.MaxBatch, len(keys))]})
		}
		apply(CreateTransfers{Transfers: ts})
	}
}

// BenchmarkHoldings measures who held how much XEM among 1,700,000
// customers (Coincheck's size), from a state at the moment: the query
// behind `kinko holdings` once the state is rebuilt.
func BenchmarkHoldings(b *testing.B) {
	const n = 1_700_000
	st, _ := compBenchState(b, n)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if hs := st.Holdings(xem); len(hs) != n {
			b.Fatalf("%d holders", len(hs))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
}

// BenchmarkCompensation measures a fixed-rate plan for 260,000 holders
// from its holdings to the last payment: payouts computed, the plan
// written and its payouts added in parts, approved (funding), and executed
// in parts — every command through the state machine's apply, journal
// entries sealed (hashed) in memory.
func BenchmarkCompensation(b *testing.B) {
	const n = 260_000
	for range b.N {
		b.StopTimer()
		st, mj := compBenchState(b, n)
		apply := func(cmd Command) Outcome {
			e := mj.seal(2, signed(cmd))
			o := st.Apply(&e)
			if err := o.EventErr(); err != nil {
				b.Fatalf("%s: %v", cmd.Kind(), err)
			}
			return o
		}
		at := st.Seq()
		b.StartTimer()
		ps, err := compensation.FixedRatePayouts(st.Holdings(xem), coincheckNum, coincheckDen)
		if err != nil {
			b.Fatal(err)
		}
		plan := compensation.Plan{ID: "bench", Rule: compensation.FixedRate, Asset: xem, PayAsset: jpy, At: at, RateNum: coincheckNum, RateDen: coincheckDen,
			Rounding: "down to the yen", WriteOff: true, Reason: "bench", Requester: "aiko"}
		plan.Header(ps)
		apply(WriteCompensation{Plan: plan})
		for i := 0; i < len(ps); i += compensation.ChunkSize {
			apply(AddPayouts{Plan: plan.ID, Payouts: ps[i:min(i+compensation.ChunkSize, len(ps))]})
		}
		apply(OpenRequest{Request: people.Request{ID: "approve", Kind: KindApproveCompensation, Payload: []byte(`{"plan":"bench"}`), Requester: "aiko", Reason: "ok",
			RequiredRole: people.RoleApprover, Expires: 2 + 3600e9}})
		apply(DecideRequest{ID: "approve", Decider: "kenji", Reason: "ok", Approve: true})
		for i := 0; i < len(ps); i += compensation.ChunkSize {
			apply(ExecuteCompensation{Plan: plan.ID, From: i, Count: min(compensation.ChunkSize, len(ps)-i), Actor: "aiko"})
		}
		b.StopTimer()
		if p, _ := st.Compensation.Get(plan.ID); p.Status != compensation.Done || len(ps) != n {
			b.Fatalf("plan %s with %d payouts", p.Status, len(ps))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/plan")
}
