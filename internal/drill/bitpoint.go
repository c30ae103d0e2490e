package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"kinko/internal/compensation"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/market"
	"kinko/internal/trading"
)

// traderCount is how many customers trade during the suspension.
const traderCount = 200

// drillMarket is BTC/JPY: yen per bitcoin on a 1,000 yen tick, lots of
// 0.001 BTC, a 12 bps taker fee.
var drillMarket = trading.Listing{ID: 1, Code: "BTC/JPY", Base: 2, Quote: 1, Scale: 100_000_000, TickSize: 1_000, LotSize: 100_000, MinQty: 100_000,
	MaxQty: 100_0000_0000, MaxPrice: 1_000_000_000, MaxOrders: 1 << 20, TakerFeeBps: 12}

// drillIndex is the index price the drill's market trades around.
const drillIndex = 10_300_000

// openMarket lists BTC/JPY if it is not, sets its index, and gives every
// drill customer 10,000,000 yen, paid in through the yen trust account.
func openMarket(r *runner, customers int, trust ledger.AccountKey) error {
	var listed bool
	r.c.Read(func(st *core.State) { _, listed = st.Trading.Market(drillMarket.ID) })
	if !listed {
		payload, _ := json.Marshal(core.ListMarketPayload{Listing: drillMarket})
		if err := r.twoPersonAdmin("list-btcjpy"+r.tag, core.KindListMarketRequest, string(payload), "drill: the market"); err != nil {
			return err
		}
	}
	// The market trades around the suspension's prices: two operators set
	// its index there (a market that never traded has no other reference,
	// and the circuit breaker measures the run-up from it).
	var index int64
	r.c.Read(func(st *core.State) {
		m, _ := st.Trading.Market(drillMarket.ID)
		_, index = m.Book.Reference()
	})
	if index != drillIndex {
		if err := r.twoPerson("drill-index"+r.tag, core.KindIndexPrice, fmt.Sprintf(`{"market":%d,"price":%d}`, drillMarket.ID, drillIndex), "drill: the market's index"); err != nil {
			return err
		}
	}
	for i := 0; i < customers; i += ledger.MaxBatch {
		n := min(ledger.MaxBatch, customers-i)
		ts := make([]ledger.Transfer, n)
		for j := range ts {
			id := r.first + ledger.OwnerID(i+j)
			ts[j] = ledger.Transfer{ID: ledger.ID{Hi: 0xD2, Lo: uint64(id)}, Debit: trust, Credit: ledger.AccountKey{Owner: id, Asset: 1, Kind: ledger.KindAvailable},
				Amount: ledger.AmountOf(10_000_000), Code: 1}
		}
		if _, err := r.do(core.CreateTransfers{Transfers: ts}); err != nil {
			return err
		}
	}
	return nil
}

// bitpointRest plays the suspension, the resumption and the plan.
func bitpointRest(ctx context.Context, r *runner, env *Env, res *Result, incidentID string, o Options, say func(string, ...any)) (*Result, error) {
	var start uint64
	r.c.Read(func(st *core.State) { start = st.Seq() })
	// During the suspension the price runs away from the world's: buyers
	// chase it from 10,300,000 up, sellers meet them.
	traders := min(o.Customers, traderCount) / 2
	fills := 0
	for i := 0; i < traders; i++ {
		price := int64(10_300_000 + (i%30)*10_000)
		seller, buyer := r.first+ledger.OwnerID(2*i), r.first+ledger.OwnerID(2*i+1)
		qty := int64(100_000 * (1 + i%3))
		if _, err := r.do(core.PlaceOrder{Customer: seller, Market: 1, Side: market.Sell, Type: market.Limit, Price: price, Qty: qty}); err != nil {
			return nil, err
		}
		ov, err := r.do(core.PlaceOrder{Customer: buyer, Market: 1, Side: market.Buy, Type: market.Limit, Price: price, Qty: qty})
		if err != nil {
			return nil, err
		}
		fills += len(ov.Value.(*core.PlaceResult).Trades)
	}
	// Resumption: what rests from the suspension is cancelled, and the
	// book reopens around the world's price: mid 10,000,000.
	if _, err := r.do(core.CancelMarketOrders{Market: 1, Actor: r.ops[0], Reason: "drill: suspension orders cancelled before resumption"}); err != nil {
		return nil, err
	}
	for _, p := range []core.PlaceOrder{
		{Customer: r.first, Market: 1, Side: market.Buy, Type: market.Limit, Price: 9_990_000, Qty: 100_000},
		{Customer: r.first + 1, Market: 1, Side: market.Sell, Type: market.Limit, Price: 10_010_000, Qty: 100_000},
	} {
		if _, err := r.do(p); err != nil {
			return nil, err
		}
	}
	var resume uint64
	var mid int64
	r.c.Read(func(st *core.State) {
		resume = st.Seq()
		m, _ := st.Trading.Market(1)
		mid = m.Mid()
	})
	say("during the suspension (entries %d-%d) %d fills at 10,300,000-10,590,000 yen; mid at resumption %d", start+1, resume, fills, mid)
	t0 := time.Now()
	trades, err := core.FillsBetween(ctx, env.CoreDir, r.c.Journal(), 1, start, resume)
	if err != nil {
		return nil, err
	}
	var listing trading.Listing
	r.c.Read(func(st *core.State) { m, _ := st.Trading.Market(1); listing = m.Listing })
	ps := core.SuspensionPayouts(listing, trades, mid)
	res.Affected = len(ps)
	plan := compensation.Plan{ID: "drill-bitpoint" + r.tag, Incident: incidentID, Rule: compensation.SuspensionFills, Asset: 2, PayAsset: 1, At: resume,
		Rounding: "down to the yen", Reason: "fills during the suspension worse than the mid at resumption", Requester: r.ops[0]}
	if err := r.writeAndApprove(&plan, ps); err != nil {
		return nil, err
	}
	res.PlanTime = time.Since(t0)
	res.Plan = compensation.Summarize(ps)
	say("affected: %d customers bought above the mid during the suspension; plan %s: %d yen in all, largest %d yen (customer %d); written and approved in %v",
		res.Affected, plan.ID, res.Plan.Total, res.Plan.Largest.Pay, res.Plan.Largest.Customer, res.PlanTime.Round(time.Microsecond))
	if err := r.fundYen(res.Plan.Total, plan.ID, say); err != nil {
		return nil, err
	}
	t1 := time.Now()
	if err := r.execute(plan.ID, len(ps), o); err != nil {
		return nil, err
	}
	res.ExecuteTime = time.Since(t1)
	res.YenPaid += res.Plan.Total
	say("executed in %v: %d customers paid, each once", res.ExecuteTime.Round(time.Microsecond), len(ps))
	// Yen first, receiving crypto last.
	if res.Resumed, err = r.resume([]controls.Switch{{Service: controls.Bank}, {Asset: 2, Service: controls.Withdraw}, {Asset: 2, Service: controls.Deposit}},
		"drill: yen first, receiving crypto last"); err != nil {
		return nil, err
	}
	say("resumed in stages, each lift approved by a second operator: %s", strings.Join(res.Resumed, " → "))
	if err := r.checkSides(res, say); err != nil {
		return nil, err
	}
	if err := r.closeIncidents(incidentID, say); err != nil {
		return nil, err
	}
	rep, err := report(r.c, incidentID)
	if err != nil {
		return nil, err
	}
	res.Report = rep
	return res, nil
}
