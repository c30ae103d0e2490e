package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"

	"kinko/internal/ceremony"
	"kinko/internal/chain/btc/regtest"
	"kinko/internal/compensation"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/reserves"
	"kinko/internal/wallet"
)

// How a drill answers a hot-wallet loss, as kinko's tiers mean it to be
// answered (docs/custody.md, docs/incidents.md):
//
//  1. The house holds its backing (履行保証暗号資産: as much of the coin as the
//     hot customer wallet holds) in its own cold wallet, paid in from
//     outside and journaled by the watcher (fund_house) before the theft.
//  2. After the theft the customer side is short by what was taken; a
//     cover ceremony moves that much of the house's coins, signed by two
//     house keys, to the customers' cold wallet: customers are made whole
//     in kind, and their coin stays theirs.
//  3. Only what the backing could not cover (a house that held less, the
//     cover's network fee) is paid in yen at the fixed rate, each holder
//     for their share of it, that much coin written off; the yen paid is
//     put into the customers' yen trust account before the plan pays, so
//     the yen side is never short.

// coldHouseWallet is the wallet id a fresh exchange registers its house
// backing under (kinko dev's cold house wallet has the same id).
const coldHouseWallet = 3

// yenTrustOwner owns the customers' yen trust account (顧客区分管理信託) on a
// fresh exchange: kinko dev's bank account has the same owner.
const yenTrustOwner = ledger.OwnerHouseMin + 110

// houseSide is the house's backing wallet and what signs for it.
type houseSide struct {
	w custody.Wallet
	// keys, on a fresh exchange, are two of its three keys; a running
	// exchange signs with the demo's cold-house key files, each against
	// the wallet registered on its machine.
	keys *keyset
}

// btcRow is the BTC row of the reserves by the ledger now.
func btcRow(c *core.Core) (reserves.Row, error) {
	var row reserves.Row
	var err error
	c.Read(func(st *core.State) {
		var rep *reserves.Report
		if rep, err = reserves.Compute(st.Ledger, st.Custody, reserves.DefaultPolicy, nil, st.Seq(), st.Time()); err != nil {
			return
		}
		for _, r := range rep.Rows {
			if r.Asset == "BTC" {
				row = r
			}
		}
	})
	return row, err
}

// backHouse brings the house's backing up to what the tiers require, as
// the house would: it buys coins and pays them into its cold wallet's next
// receive address; the watcher journals them (fund_house) at its
// confirmations. o.BackingBps below 10,000 holds only that share of the
// requirement (a house that fell behind).
func (r *runner) backHouse(ctx context.Context, env *Env, h *houseSide, o Options, res *Result, say func(string, ...any)) error {
	row, err := btcRow(r.c)
	if err != nil {
		return err
	}
	req, _ := row.HouseRequired.Uint64()
	want := req * uint64(o.BackingBps) / 10_000
	held, _ := row.HouseHeld.Uint64()
	res.BackingSat = int64(held)
	if want <= held {
		say("house backing: %s held in its own wallets, %s required (the hot customer holdings)", btc(int64(held)), btc(int64(req)))
		return nil
	}
	d, err := wallet.Parse(h.w.Descriptor, regtest.Net)
	if err != nil {
		return err
	}
	var next uint32
	r.c.Read(func(st *core.State) { w, _ := st.Custody.Wallet(h.w.ID); next = w.NextIndex })
	addr, _, err := d.Address(0, next)
	if err != nil {
		return err
	}
	if _, err := env.Node.SendTo(ctx, map[string]btcutil.Amount{addr.EncodeAddress(): btcutil.Amount(want - held)}); err != nil {
		return err
	}
	if err := mineAll(ctx, env.Node, uint32(max(env.Confirmations, 1))); err != nil {
		return err
	}
	if err := waitFor("the house's coins journaled by the watcher", 2*time.Minute, func() bool {
		var sum uint64
		r.c.Read(func(st *core.State) {
			for _, u := range st.Custody.UTXOs(h.w.ID, custody.UTXOAvailable) {
				sum += u.Amount
			}
		})
		return sum >= want-held
	}); err != nil {
		return err
	}
	res.BackingSat = int64(want)
	say("house backing: the house paid %s into its cold wallet (journaled by the watcher as fund_house); it holds %s against %s required",
		btc(int64(want-held)), btc(int64(want)), btc(int64(req)))
	return nil
}

// coverInKind moves the house's coins to the customers' cold wallet to
// make up what the customer side lacks now (the theft, and any fee the
// customer wallets paid before), as far as the backing goes. It returns
// what is still uncovered.
func (r *runner) coverInKind(ctx context.Context, env *Env, h *houseSide, res *Result, say func(string, ...any)) (uint64, error) {
	row, err := btcRow(r.c)
	if err != nil {
		return 0, err
	}
	short, _ := row.Shortfall.Uint64()
	res.ShortSat = int64(short)
	if short == 0 {
		return 0, nil
	}
	var cold custody.Wallet
	r.c.Read(func(st *core.State) {
		for _, w := range st.Custody.Wallets() {
			if w.Asset == 2 && w.Kind == custody.ColdCustomer && cold.ID == 0 {
				cold = w
			}
		}
	})
	coldD, err := wallet.Parse(cold.Descriptor, regtest.Net)
	if err != nil {
		return 0, err
	}
	set, err := wallet.NewSet([]wallet.Named{{ID: h.w.ID, Kind: h.w.Kind.String(), Descriptor: h.w.Descriptor}, {ID: cold.ID, Kind: cold.Kind.String(), Descriptor: cold.Descriptor}}, coldD)
	if err != nil {
		return 0, err
	}
	var plan *ceremony.Plan
	r.c.Read(func(st *core.State) { plan, err = ceremony.Cover(st, set, short, 10, "drill-cover"+r.tag, r.ops[0]) })
	if err != nil {
		say("no cover in kind: %v", err)
		return short, nil
	}
	if _, err := r.do(plan.Command); err != nil {
		return 0, err
	}
	if err := r.signHouse(env, h, set, plan.PSBT); err != nil {
		return 0, err
	}
	tx, err := wallet.Finalize(plan.PSBT)
	if err != nil {
		return 0, err
	}
	if _, err := env.Node.Client().Broadcast(ctx, tx); err != nil {
		return 0, err
	}
	if err := mineAll(ctx, env.Node, uint32(max(env.Confirmations, 1))); err != nil {
		return 0, err
	}
	id := plan.Command.Ceremony.ID
	if err := waitFor("the cover ceremony confirmed by the watcher", 2*time.Minute, func() bool {
		var done bool
		r.c.Read(func(st *core.State) {
			c, ok := st.Custody.Ceremony(id)
			done = ok && c.State == custody.CeremonyConfirmed
		})
		return done
	}); err != nil {
		return 0, err
	}
	res.CoveredSat, res.CoverTx = int64(plan.Amount), tx.TxHash().String()
	fee := int64(0)
	for _, in := range plan.PSBT.Inputs {
		fee += in.WitnessUtxo.Value
	}
	for _, out := range tx.TxOut {
		fee -= out.Value
	}
	say("covered in kind: cover ceremony %s (two house keys) moved %s of the house's own coins to the customers' cold wallet, the house paying the %s fee (tx %s)",
		id, btc(res.CoveredSat), btc(fee), res.CoverTx)
	return short - plan.Amount, nil
}

// signHouse signs a cover with two house keys: a fresh exchange's own, or
// the demo's cold-house key files, each against the house wallet
// registered on its offline machine.
func (r *runner) signHouse(env *Env, h *houseSide, set *wallet.Set, p *psbt.Packet) error {
	if h.keys != nil {
		for i := 0; i < 2; i++ {
			if _, err := set.Sign(p, h.keys.acct[i], h.keys.fp[i]); err != nil {
				return err
			}
		}
		return nil
	}
	for _, name := range []string{"cold-house-1.key", "cold-house-2.key"} {
		if err := coldSign(env, name, h.w, p); err != nil {
			return err
		}
	}
	return nil
}

// payUncovered pays, in yen at the fixed rate, what the house's backing
// could not cover: each holder at the theft their share of it, rounded up
// in coin (written off) and down in yen. The yen goes into the customers'
// trust account first. It returns the plan's summary (none when nothing
// is uncovered).
func (r *runner) payUncovered(id string, uncovered uint64, before uint64, incidentID string, o Options, res *Result, say func(string, ...any)) error {
	res.UncoveredSat = int64(uncovered)
	if uncovered == 0 {
		say("nothing left to pay in yen: the house's backing covered the whole loss in kind")
		return nil
	}
	t0 := time.Now()
	st, err := r.c.StateAt(r.ctx, before)
	if err != nil {
		return err
	}
	hs := st.Holdings(2)
	res.Affected = len(hs)
	num, den := o.RateYen, uint64(1_0000_0000) // yen per satoshi = rate / 1e8
	ps, err := compensation.FixedRatePayouts(compensation.ShareOf(hs, uncovered, num, den), num, den)
	if err != nil {
		return err
	}
	plan := compensation.Plan{ID: id + r.tag, Incident: incidentID, Rule: compensation.FixedRate, Asset: 2, PayAsset: 1, At: before, RateNum: num, RateDen: den,
		Rounding: "down to the yen", WriteOff: true, Requester: r.ops[0],
		Reason: fmt.Sprintf("the %s of the theft the house's backing could not cover in kind, paid in yen at a fixed rate, each holder for their share", btc(int64(uncovered)))}
	if err := r.writeAndApprove(&plan, ps); err != nil {
		return err
	}
	res.PlanTime = time.Since(t0)
	res.Plan = compensation.Summarize(ps)
	say("uncovered: %s, paid in yen: %d holders at entry %d; plan %s: %d yen in all, largest %d yen (customer %d), %d JPY per BTC, rounded down; written and approved in %v",
		btc(int64(uncovered)), res.Affected, before, plan.ID, res.Plan.Total, res.Plan.Largest.Pay, res.Plan.Largest.Customer, o.RateYen, res.PlanTime.Round(time.Microsecond))
	if err := r.fundYen(res.Plan.Total, plan.ID, say); err != nil {
		return err
	}
	t1 := time.Now()
	if err := r.execute(plan.ID, len(ps), o); err != nil {
		return err
	}
	// Run again: nobody is paid twice.
	again, err := r.team.Sign(core.ExecuteCompensation{Plan: plan.ID, From: 0, Count: min(compensation.ChunkSize, len(ps)), Actor: r.ops[1]})
	if err != nil {
		return err
	}
	if o, err := r.c.Submit(r.ctx, r.now(), again); err != nil || o.Err == nil {
		return fmt.Errorf("drill: executing a done plan again was not refused")
	}
	res.ExecuteTime = time.Since(t1)
	res.YenPaid += res.Plan.Total
	say("executed in %v: %d customers paid, each once (a second run is refused)", res.ExecuteTime.Round(time.Microsecond), len(ps))
	return nil
}

// fundYen puts amount yen into the customers' yen trust account from the
// house's own money (equity), before a plan pays it: the yen a plan
// credits customers must be on the customers' side. The trust account is
// the yen wallet account reserves counts for customers (kinko dev's bank
// account); a fresh exchange has none, and gets one.
func (r *runner) fundYen(amount uint64, plan string, say func(string, ...any)) error {
	if amount == 0 {
		return nil
	}
	trust, made := r.yenTrust()
	if made {
		if _, err := r.do(core.CreateAccounts{Keys: []ledger.AccountKey{trust}}); err != nil {
			return err
		}
		say("the exchange had no yen trust account in the ledger: one is opened (owner %d), the yen side reserves counts", trust.Owner)
	}
	eq := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: 1, Kind: ledger.KindEquity}
	if _, err := r.do(core.CreateAccounts{Keys: []ledger.AccountKey{eq}}); err != nil {
		return err
	}
	id := compensation.TransferID(plan, 0, 3)
	if _, err := r.do(core.CreateTransfers{Transfers: []ledger.Transfer{{ID: id, Debit: trust, Credit: eq, Amount: ledger.AmountOf(amount), Code: codeYenIntoTrust}}}); err != nil {
		return err
	}
	say("the house paid %d yen into the customers' yen trust account before the plan pays it: the yen side stays backed", amount)
	return nil
}

// yenTrust finds the customers' yen trust account: a yen wallet account
// that is no registered wallet's. made says it does not exist yet.
func (r *runner) yenTrust() (ledger.AccountKey, bool) {
	k := ledger.AccountKey{Owner: yenTrustOwner, Asset: 1, Kind: ledger.KindWallet}
	found := false
	r.c.Read(func(st *core.State) {
		registered := map[ledger.AccountKey]bool{}
		for _, w := range st.Custody.Wallets() {
			registered[w.Account()] = true
		}
		st.Ledger.Accounts(func(a *ledger.Account) bool {
			if a.Key.Asset == 1 && a.Key.Kind == ledger.KindWallet && !registered[a.Key] {
				k, found = a.Key, true
				return false
			}
			return true
		})
	})
	return k, !found
}

// codeYenIntoTrust marks the house's yen paid into the customers' trust
// account for a plan.
const codeYenIntoTrust = 61

// btc writes satoshi as bitcoin, every decimal.
func btc(sat int64) string { return btcutil.Amount(sat).Format(btcutil.AmountBTC) }

// checkSides reports, after the drill, whether the customer side of BTC
// and of JPY holds what customers are owed (reserves.Compute by the
// ledger), and keeps the rows in res.After. A side short here was not made
// whole: the drill says so, and the core has opened an incident for it
// when a plan left it short.
func (r *runner) checkSides(res *Result, say func(string, ...any)) error {
	var rep *reserves.Report
	var err error
	r.c.Read(func(st *core.State) {
		rep, err = reserves.Compute(st.Ledger, st.Custody, reserves.DefaultPolicy, nil, st.Seq(), st.Time())
	})
	if err != nil {
		return err
	}
	res.After = nil
	for _, row := range rep.Rows {
		if row.Asset != "BTC" && row.Asset != "JPY" {
			continue
		}
		res.After = append(res.After, row)
		held, _ := row.CustomerLiabilities.Sub(row.Shortfall)
		if row.Segregated {
			held = row.CustomerWallets
			say("after the drill: %s segregated: customer liabilities %s, customer side %s", row.Asset, row.CustomerLiabilities.FormatDecimal(row.Decimals), held.FormatDecimal(row.Decimals))
		} else {
			say("after the drill: %s SHORT by %s: customer liabilities %s, customer side %s", row.Asset, row.Shortfall.FormatDecimal(row.Decimals),
				row.CustomerLiabilities.FormatDecimal(row.Decimals), held.FormatDecimal(row.Decimals))
		}
	}
	return nil
}
