// Package drill replays the incidents kinko was built against, at scale,
// on a real regtest node, and reports what happened: what the attacker got,
// how long the halt took, who was affected, the compensation plan and its
// execution, and the staged resumption. Users run them to convince
// themselves and their regulator (`kinko drill coincheck`).
package drill

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/chain/btcchain"
	"kinko/internal/compensation"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/incident"
	"kinko/internal/ledger"
	"kinko/internal/operators"
	"kinko/internal/passkey"
	"kinko/internal/people"
	"kinko/internal/reserves"
	"kinko/internal/wallet"
	"kinko/internal/watch"
)

// Options scale a drill.
type Options struct {
	Dir       string // a fresh data directory: the core and the node live there
	Customers int    // holders of the coin (Coincheck: about 260,000)
	// RateYen is what the plan pays per whole coin held at the theft.
	RateYen uint64
	Seed    uint64
	Log     *slog.Logger
	// BackingBps is the share of the required backing (the hot customer
	// holdings) the house holds when the theft comes: 10,000 (all of it,
	// kinko's rule) unless set; less plays a house that fell behind, and
	// more of the loss is paid in yen.
	BackingBps uint32
	// Progress, if set, is told how far a long step has come (customers
	// opened, deposits paid, payouts made): kinko drill draws a bar on a
	// terminal.
	Progress func(step string, done, total int)
	// bitpoint plays BITPoint's July 2019 instead: trading goes on during
	// the suspension, and the plan pays the fills worse than the mid at
	// resumption.
	bitpoint bool
}

// progress tells o.Progress, if set.
func (o *Options) progress(step string, done, total int) {
	if o.Progress != nil {
		o.Progress(step, done, total)
	}
}

// BitPoint replays July 2019: hot keys leak and the hot wallet is drained;
// withdrawals and deposits stop, but trading goes on during the suspension
// and fills at prices the market no longer backs; at resumption each fill
// worse for a customer than the mid is paid the difference in yen
// (BITPoint's rule); services resume yen first and receiving crypto last.
func BitPoint(ctx context.Context, o Options, out io.Writer) (*Result, error) {
	o.bitpoint = true
	if o.RateYen == 0 {
		o.RateYen = 10_000_000
	}
	return Coincheck(ctx, o, out)
}

// Result is what the drill saw.
type Result struct {
	Customers int
	TotalSat  int64 // customers' coins
	HotSat    int64 // in the hot wallet at the theft
	StolenSat int64 // what the attacker's transaction took
	// BackingSat is the house's backing in its own wallet at the theft;
	// ShortSat what the customer side lacked after it (the theft, and
	// fees the customer wallets paid); CoveredSat what the house's coins
	// made up in kind (CoverTx); UncoveredSat the rest, paid in yen
	// (YenPaid, the fixed-rate plan; BITPoint's fills plan besides).
	BackingSat, ShortSat, CoveredSat, UncoveredSat int64
	CoverTx                                        string
	YenPaid                                        uint64
	TheftTx                                        string
	HaltAfter                                      time.Duration // broadcast to halt journaled
	Halts                                          []controls.Halt
	Affected                                       int
	Plan                                           compensation.Summary
	PlanTime                                       time.Duration // holdings to a written, approved plan
	ExecuteTime                                    time.Duration
	Resumed                                        []string // the lifts, in order
	Report                                         *incident.Report
	// After are the BTC and JPY rows of the reserves when the drill is
	// done: each side segregated unless the drill says otherwise.
	After []reserves.Row
}

// writeAndApprove journals a plan with its payouts and approves it as the
// second operator.
func (r *runner) writeAndApprove(plan *compensation.Plan, ps []compensation.Payout) error {
	plan.Header(ps)
	if _, err := r.do(core.WriteCompensation{Plan: *plan}); err != nil {
		return err
	}
	for i := 0; i < len(ps); i += compensation.ChunkSize {
		if _, err := r.do(core.AddPayouts{Plan: plan.ID, Payouts: ps[i:min(i+compensation.ChunkSize, len(ps))]}); err != nil {
			return err
		}
	}
	return r.twoPerson("approve-"+plan.ID+r.tag, core.KindApproveCompensation, `{"plan":"`+plan.ID+`"}`, "drill: dry run checked")
}

// execute pays a plan of n payouts, part by part.
func (r *runner) execute(plan string, n int, o Options) error {
	for from := 0; from < n; from += compensation.ChunkSize {
		if _, err := r.do(core.ExecuteCompensation{Plan: plan, From: from, Count: min(compensation.ChunkSize, n-from), Actor: r.ops[0]}); err != nil {
			return err
		}
		o.progress("paying "+plan, min(from+compensation.ChunkSize, n), n)
	}
	return nil
}

// resume adopts a staged resumption plan of steps and lifts them in order,
// each approved by the second operator; it returns the lifts made.
func (r *runner) resume(steps []controls.Switch, why string) ([]string, error) {
	var stepJSON []string
	for _, s := range steps {
		stepJSON = append(stepJSON, fmt.Sprintf(`{"asset":%d,"service":%q}`, s.Asset, s.Service))
	}
	if err := r.twoPerson("plan-resume"+r.tag, core.KindResumptionPlan, `{"id":"resume-drill`+r.tag+`","steps":[`+strings.Join(stepJSON, ",")+`]}`, why); err != nil {
		return nil, err
	}
	var done []string
	for i, s := range steps {
		name := string(s.Service)
		if s.Asset != 0 {
			var code string
			r.c.Read(func(st *core.State) { a, _ := st.Ledger.Asset(s.Asset); code = a.Code })
			name = code + ":" + name
		}
		var halted bool
		r.c.Read(func(st *core.State) { halted = st.Controls.Allowed(s.Asset, s.Service) != nil })
		if !halted {
			continue
		}
		if err := r.twoPerson(fmt.Sprintf("lift-%d%s", i, r.tag), core.KindLiftHalt, fmt.Sprintf(`{"switch":{"asset":%d,"service":%q}}`, s.Asset, s.Service), "drill: resume "+name); err != nil {
			return nil, err
		}
		done = append(done, name)
	}
	return done, nil
}

// drillOperators are a fresh exchange's operators: the drill plays every
// person of every two-person step, each signing with their own software
// credential: two admins and an approver.
var drillOperators = [2]string{"drill-aiko", "drill-kenji"}

const drillAdmin = "drill-ren"

// drillTeam is a fresh exchange's founding operators.
func drillTeam() *operators.Team {
	return operators.New(passkey.RP{ID: "localhost", Origins: []string{"http://localhost"}}, "drill",
		operators.Member{Name: drillOperators[0], Roles: []people.Role{people.RoleAdmin, people.RoleOperator}},
		operators.Member{Name: drillAdmin, Roles: []people.Role{people.RoleAdmin}},
		operators.Member{Name: drillOperators[1], Roles: []people.Role{people.RoleApprover, people.RoleOperator}})
}

type runner struct {
	ctx   context.Context
	c     *core.Core
	now   func() time.Time
	ops   [2]string // the requester and the approver
	admin string    // the admin who approves what an admin must
	team  *operators.Team
	tag   string         // makes request and plan ids unique to this run
	first ledger.OwnerID // the drill's first customer
}

// do signs cmd, when it is signed, with its signer's credential, and
// submits it.
func (r *runner) do(cmd core.Command) (core.Outcome, error) {
	cmd, err := r.team.Sign(cmd)
	if err != nil {
		return core.Outcome{}, err
	}
	o, err := r.c.Submit(r.ctx, r.now(), cmd)
	if err == nil {
		err = o.Err
	}
	if err == nil {
		err = o.EventErr()
	}
	if err != nil {
		return o, fmt.Errorf("drill: %s: %w", cmd.Kind(), err)
	}
	return o, nil
}

// twoPerson files a request as the first operator and approves it as the
// second.
func (r *runner) twoPerson(id string, kind people.RequestKind, payload, reason string) error {
	return r.twoPersonBy(id, kind, payload, reason, people.RoleApprover, r.ops[1])
}

// twoPersonAdmin files a request as the first operator and approves it as
// the second admin.
func (r *runner) twoPersonAdmin(id string, kind people.RequestKind, payload, reason string) error {
	return r.twoPersonBy(id, kind, payload, reason, people.RoleAdmin, r.admin)
}

func (r *runner) twoPersonBy(id string, kind people.RequestKind, payload, reason string, role people.Role, approver string) error {
	if _, err := r.do(core.OpenRequest{Request: people.Request{ID: id, Kind: kind, Payload: []byte(payload), Requester: r.ops[0], Reason: reason,
		RequiredRole: role, Expires: r.now().Add(time.Hour).UnixNano()}}); err != nil {
		return err
	}
	_, err := r.do(core.DecideRequest{ID: id, Decider: approver, Reason: "drill: checked", Approve: true})
	return err
}

type keyset struct {
	d    *wallet.Descriptor
	acct []*hdkeychain.ExtendedKey
	fp   [][4]byte
}

func newKeys() (keyset, error) {
	k := keyset{d: &wallet.Descriptor{M: 2, Net: regtest.Net}}
	for range 3 {
		var seed [32]byte
		rand.Read(seed[:])
		m, err := hdkeychain.NewMaster(seed[:], regtest.Net)
		if err != nil {
			return k, err
		}
		key, a, err := wallet.AccountKey(m, regtest.Net, 0)
		if err != nil {
			return k, err
		}
		k.d.Keys = append(k.d.Keys, key)
		k.acct, k.fp = append(k.acct, a), append(k.fp, key.Fingerprint)
	}
	return k, nil
}

// Coincheck replays January 2018: the coin sits 98% in the cold wallet and
// 2% in a 2-of-3 hot wallet; two hot keys leak; the attacker drains the
// hot wallet straight to the node. kinko halts by itself; the holders at
// the theft are compensated in yen at a fixed rate, their coin written off
// (as Coincheck paid 88.549 yen per XEM); services resume in stages. It
// builds a fresh exchange in o.Dir; Play runs it on a running one.
func Coincheck(ctx context.Context, o Options, out io.Writer) (*Result, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	node, err := regtest.Start(ctx, regtest.Options{Dir: filepath.Join(o.Dir, "btcd")})
	if err != nil {
		return nil, err
	}
	defer node.Stop()
	c, err := openFresh(ctx, o.Dir)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return Play(ctx, &Env{Core: c, CoreDir: filepath.Join(o.Dir, "core"), Node: node}, o, out)
}

// openFresh opens the drill's core in dir/core, which must hold no
// journal yet: a drill starts fresh.
func openFresh(ctx context.Context, dir string) (*core.Core, error) {
	c, err := core.Open(ctx, core.Config{Dir: filepath.Join(dir, "core")})
	if err != nil {
		return nil, err
	}
	if head, _, _ := c.Journal().Head(); head != 0 {
		c.Close()
		return nil, fmt.Errorf("drill: %s holds a journal already; a drill starts fresh", dir)
	}
	return c, nil
}

// awaitWatcherHalt waits, 10 s at most, for the watcher's own record of a
// theft: the incident it opened naming txid (withdrawals halted already
// for another reason do not count). It then checks that withdrawals of
// asset (what names them in an error) are halted.
func awaitWatcherHalt(c *core.Core, asset ledger.AssetID, txid, what string) (incident.Incident, error) {
	start := time.Now()
	for {
		var found *incident.Incident
		c.Read(func(st *core.State) {
			for _, in := range st.Incidents.List() {
				if in.Detector == "watcher" && slices.Contains(in.TxIDs, txid) {
					found = &in
					return
				}
			}
		})
		if found != nil {
			var err error
			c.Read(func(st *core.State) {
				if st.Controls.Allowed(asset, controls.Withdraw) == nil {
					err = fmt.Errorf("drill: %s not halted after the theft", what)
				}
			})
			return *found, err
		}
		if time.Since(start) > 10*time.Second {
			return incident.Incident{}, fmt.Errorf("drill: the watcher recorded no incident 10 s after the theft")
		}
		time.Sleep(time.Millisecond)
	}
}

func (o *Options) check() error {
	if o.Customers <= 0 || o.Customers > 2_000_000 {
		return fmt.Errorf("drill: 1 to 2,000,000 customers")
	}
	if o.RateYen == 0 || o.RateYen > 1_000_000_000_000 {
		return fmt.Errorf("drill: a rate of 1 to 10^12 yen per coin")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.BackingBps == 0 {
		o.BackingBps = 10_000
	}
	if o.BackingBps > 10_000 {
		return fmt.Errorf("drill: the house's backing is at most the whole requirement (10,000 bps)")
	}
	return nil
}

// Env is the exchange a drill plays on: a fresh one (Coincheck, BitPoint
// make it), or a running kinko dev (KeyDir set): its wallets, the demo's
// key files (two hot keys leak from there), its operators, its watcher.
type Env struct {
	Core    *core.Core
	CoreDir string
	Node    *regtest.Node
	// KeyDir and Passphrase name the running exchange's key files; empty
	// for a fresh exchange.
	KeyDir, Passphrase string
	// Operators of a running exchange: an admin and an approver; Admin a
	// second admin; Team their software credentials.
	Operators [2]string
	Admin     string
	Team      *operators.Team
	// Confirmations its watcher waits for (1 for a fresh exchange).
	Confirmations int

	stopWatcher func() // a fresh exchange's own watcher
}

// hotSide is what the theft needs: the hot wallet's coins and two keys.
type hotSide struct {
	set     *wallet.Set
	utxos   []wallet.UTXO
	acct    []*hdkeychain.ExtendedKey
	fp      [][4]byte
	account ledger.AccountKey
}

// Play runs a drill on env.
func Play(ctx context.Context, env *Env, o Options, out io.Writer) (*Result, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	c, node := env.Core, env.Node
	r := &runner{ctx: ctx, c: c, now: time.Now, ops: drillOperators, admin: drillAdmin, team: drillTeam()}
	attached := env.KeyDir != ""
	if attached {
		r.ops, r.admin, r.team, r.tag = env.Operators, env.Admin, env.Team, fmt.Sprintf("-%d", time.Now().UnixNano()%1e9)
	}
	confs := max(env.Confirmations, 1)
	res := &Result{Customers: o.Customers}
	const jpy, btc ledger.AssetID = 1, 2
	eq := func(a ledger.AssetID) ledger.AccountKey {
		return ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: a, Kind: ledger.KindEquity}
	}
	if o.bitpoint {
		say("== kinko drill: BITPoint, July 2019, with %d customers ==", o.Customers)
	} else {
		say("== kinko drill: Coincheck, January 2018, with %d holders ==", o.Customers)
	}
	var hot *hotSide
	var house *houseSide
	var err error
	if attached {
		hot, house, err = fundRunning(ctx, r, env, o, res, say)
	} else {
		hot, house, err = fundFresh(ctx, r, env, o, res, say)
	}
	if env.stopWatcher != nil {
		defer env.stopWatcher()
	}
	if err != nil {
		return nil, err
	}
	if err := r.backHouse(ctx, env, house, o, res, say); err != nil {
		return nil, err
	}
	// The theft: hot keys 1 and 2 leaked; everything in the hot wallet to
	// the attacker, straight to the node.
	set := hot.set
	var attackerKey [20]byte
	rand.Read(attackerKey[:])
	attacker, _ := btcutil.NewAddressWitnessPubKeyHash(attackerKey[:], regtest.Net)
	attackerScript, _ := txscript.PayToAddrScript(attacker)
	var inHot int64
	for _, u := range hot.utxos {
		inHot += u.Value
	}
	res.HotSat = inHot
	p, err := wallet.Build(hot.utxos, []*wire.TxOut{wire.NewTxOut(inHot-20_000, attackerScript)}, nil, 0, 10)
	if err != nil {
		return nil, err
	}
	for i := 0; i < 2; i++ {
		if _, err := set.Sign(p, hot.acct[i], hot.fp[i]); err != nil {
			return nil, err
		}
	}
	theft, err := wallet.Finalize(p)
	if err != nil {
		return nil, err
	}
	var before uint64
	c.Read(func(st *core.State) { before = st.Seq() })
	start := time.Now()
	if _, err := node.Client().Broadcast(ctx, theft); err != nil {
		return nil, err
	}
	res.TheftTx, res.StolenSat = theft.TxHash().String(), theft.TxOut[0].Value
	// Wait for the watcher's own record of this theft: the halt and the
	// incident naming the transaction (withdrawals may have been halted
	// already for another reason; that does not count).
	in, err := awaitWatcherHalt(c, btc, res.TheftTx, "withdrawals")
	if err != nil {
		return nil, err
	}
	res.HaltAfter = time.Unix(0, in.Opened).Sub(start)
	say("attacker broadcast %s taking %s (the hot wallet; %.2f%% of customers' coins)", res.TheftTx, btcutil.Amount(res.StolenSat).Format(btcutil.AmountBTC),
		float64(res.StolenSat)*100/float64(res.TotalSat))
	say("halt and incident journaled %v after the broadcast, by the watcher, with no person", res.HaltAfter.Round(time.Microsecond))
	// The operators stop the rest of the coin's services by hand (at
	// BITPoint, trading went on).
	stopped := []controls.Switch{{Asset: btc, Service: controls.Deposit}, {Asset: btc, Service: controls.Trade}}
	if o.bitpoint {
		stopped = []controls.Switch{{Asset: btc, Service: controls.Deposit}, {Service: controls.Bank}}
	}
	for _, sw := range stopped {
		if _, err := r.do(core.Halt{Switch: sw, Actor: r.ops[0], Reason: "drill: theft under investigation"}); err != nil {
			return nil, err
		}
	}
	// The theft is mined; the loss is recorded: the hot wallet's account
	// follows the chain.
	if _, err := node.Generate(ctx, uint32(confs)); err != nil {
		return nil, err
	}
	if _, err := r.do(core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 0xD1, Lo: uint64(time.Now().UnixNano())}, Debit: eq(btc), Credit: hot.account, Amount: ledger.AmountOf(uint64(res.HotSat)), Code: 3}}}); err != nil {
		return nil, err
	}
	time.Sleep(500 * time.Millisecond) // the watcher's next polls see the loss recorded
	var names core.Names
	c.Read(func(st *core.State) { res.Halts, names = st.Controls.Halted(), core.NamesOf(st) })
	for _, h := range res.Halts {
		say("  halted: %-22s by %-14s %s", names.Switch(h.Switch), h.Actor, h.Reason)
	}
	var incidentID string
	c.Read(func(st *core.State) {
		for _, in := range st.Incidents.List() {
			for _, tx := range in.TxIDs {
				if tx == res.TheftTx {
					incidentID = in.ID
				}
			}
		}
	})
	if incidentID == "" {
		return nil, fmt.Errorf("drill: no incident names the theft")
	}

	// The house's backing makes customers whole in kind; only what it
	// cannot cover is paid in yen.
	uncovered, err := r.coverInKind(ctx, env, house, res, say)
	if err != nil {
		return nil, err
	}
	if o.bitpoint {
		if err := r.payUncovered("drill-bitpoint-uncovered", uncovered, before, incidentID, o, res, say); err != nil {
			return nil, err
		}
		return bitpointRest(ctx, r, env, res, incidentID, o, say)
	}
	if err := r.payUncovered("drill-coincheck", uncovered, before, incidentID, o, res, say); err != nil {
		return nil, err
	}
	if err := r.checkSides(res, say); err != nil {
		return nil, err
	}

	// Staged resumption: trading first, then deposits, withdrawals last.
	if res.Resumed, err = r.resume([]controls.Switch{{Asset: btc, Service: controls.Trade}, {Asset: btc, Service: controls.Deposit}, {Asset: btc, Service: controls.Withdraw}},
		"drill: keys rotated, customers paid"); err != nil {
		return nil, err
	}
	say("resumed in stages, each lift approved by a second operator: %s", strings.Join(res.Resumed, " → "))
	if err := r.closeIncidents(incidentID, say); err != nil {
		return nil, err
	}
	rep, err := report(c, incidentID)
	if err != nil {
		return nil, err
	}
	res.Report = rep
	return res, nil
}

// closeIncidents closes the theft's incident and the reconciliation's
// record of the shortfall it caused, now made whole, each by two people
// (a close_incident request approved by the second operator).
func (r *runner) closeIncidents(theft string, say func(string, ...any)) error {
	var ids []string
	r.c.Read(func(st *core.State) {
		for _, in := range st.Incidents.List() {
			if in.Closed == 0 && (in.ID == theft || in.ID == "segregation-BTC") {
				ids = append(ids, in.ID)
			}
		}
	})
	for i, id := range ids {
		if err := r.twoPerson(fmt.Sprintf("close-%d%s", i, r.tag), core.KindCloseIncident, `{"incident":"`+id+`"}`, "drill: customers made whole, services resumed"); err != nil {
			return err
		}
	}
	if len(ids) > 0 {
		say("closed by two people: %s", strings.Join(ids, ", "))
	}
	return nil
}

// report gathers an incident's report from a running core.
func report(c *core.Core, id string) (*incident.Report, error) {
	var r *incident.Report
	var err error
	c.Read(func(st *core.State) { r, err = core.IncidentReport(st, c.Journal(), id) })
	return r, err
}

// fundFresh builds a fresh exchange: assets, operators, wallets, customers
// with their coins on chain (98% cold, 2% hot), and its own watcher.
func fundFresh(ctx context.Context, r *runner, env *Env, o Options, res *Result, say func(string, ...any)) (*hotSide, *houseSide, error) {
	c, node := env.Core, env.Node
	const jpy, btc ledger.AssetID = 1, 2
	eq := func(a ledger.AssetID) ledger.AccountKey {
		return ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: a, Kind: ledger.KindEquity}
	}
	r.first = 1
	// The exchange: assets, two operators, the customers and their accounts.
	if _, err := r.do(core.CreateAssets{Assets: []ledger.Asset{{ID: jpy, Code: "JPY", Class: ledger.ClassFiat}, {ID: btc, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}}); err != nil {
		return nil, nil, err
	}
	for _, cmd := range r.team.Bootstrap(r.now()) {
		if _, err := r.do(cmd); err != nil {
			return nil, nil, err
		}
	}
	cold, err := newKeys()
	if err != nil {
		return nil, nil, err
	}
	hot, err := newKeys()
	if err != nil {
		return nil, nil, err
	}
	houseKeys, err := newKeys()
	if err != nil {
		return nil, nil, err
	}
	coldW := custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: btc, Descriptor: cold.d.String(), Owner: ledger.OwnerHouseMin + 100}
	hotW := custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: btc, Descriptor: hot.d.String(), Owner: ledger.OwnerHouseMin + 101}
	// The house's own cold wallet, separate keys (自己口): its backing.
	houseW := custody.Wallet{ID: coldHouseWallet, Kind: custody.ColdHouse, Asset: btc, Descriptor: houseKeys.d.String(), Owner: ledger.OwnerHouseMin + 102}
	for _, cmd := range r.team.RegisterWallets(r.now(), coldW, hotW, houseW) {
		if _, err := r.do(cmd); err != nil {
			return nil, nil, err
		}
	}
	// The customers' yen trust account (顧客区分管理信託): their yen is there.
	trust := ledger.AccountKey{Owner: yenTrustOwner, Asset: jpy, Kind: ledger.KindWallet}
	if _, err := r.do(core.CreateAccounts{Keys: []ledger.AccountKey{eq(jpy), eq(btc), trust}}); err != nil {
		return nil, nil, err
	}
	if err := signUpTraders(r, o); err != nil {
		return nil, nil, err
	}
	amounts, total := holdings(o)
	res.TotalSat, res.HotSat = total, total*2/100
	if err := r.openCustomers(o.Customers, o); err != nil {
		return nil, nil, err
	}
	// Their coins came into the cold wallet.
	for i := 0; i < o.Customers; i += ledger.MaxBatch {
		ts := make([]ledger.Transfer, min(ledger.MaxBatch, o.Customers-i))
		for j := range ts {
			id := r.first + ledger.OwnerID(i+j)
			ts[j] = ledger.Transfer{ID: ledger.ID{Hi: 0xD0, Lo: uint64(id)}, Debit: coldW.Account(), Credit: avail(id, btc), Amount: ledger.AmountOf(uint64(amounts[i+j])), Code: 1}
		}
		if _, err := r.do(core.CreateTransfers{Transfers: ts}); err != nil {
			return nil, nil, err
		}
	}
	// On chain: the cold wallet and the hot wallet's 2%; the ledger moves
	// the hot share from the cold wallet's account to the hot wallet's.
	coldAddr, _, _ := cold.d.Address(0, 0)
	hotAddr, _, _ := hot.d.Address(0, 0)
	hotScript, err := hot.d.PkScript(0, 0)
	if err != nil {
		return nil, nil, err
	}
	fund, err := node.SendTo(ctx, map[string]btcutil.Amount{coldAddr.EncodeAddress(): btcutil.Amount(res.TotalSat - res.HotSat), hotAddr.EncodeAddress(): btcutil.Amount(res.HotSat)})
	if err != nil {
		return nil, nil, err
	}
	if _, err := r.do(core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 0xD1, Lo: 1}, Debit: hotW.Account(), Credit: coldW.Account(), Amount: ledger.AmountOf(uint64(res.HotSat)), Code: 2}}}); err != nil {
		return nil, nil, err
	}
	if _, err := node.Generate(ctx, 1); err != nil {
		return nil, nil, err
	}
	say("holders: %d, %s in all; cold wallet %s, hot wallet %s (2%%, under the 5%% cap)", o.Customers, btcutil.Amount(res.TotalSat).Format(btcutil.AmountBTC),
		btcutil.Amount(res.TotalSat-res.HotSat).Format(btcutil.AmountBTC), btcutil.Amount(res.HotSat).Format(btcutil.AmountBTC))

	// The watcher, as kinko dev and kinko watch run it.
	w, err := watch.ForAsset(ctx, c, btcchain.New(node.Client(), node.Config(), regtest.SegwitHeight), regtest.Net, "BTC", watch.DepositConfig{Confirmations: 1, StartHeight: regtest.SegwitHeight, Logger: o.Log})
	if err != nil {
		return nil, nil, err
	}
	if err := w.Step(ctx); err != nil {
		return nil, nil, err
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	// The watcher polls until the drill ends.
	go func() { defer close(done); w.Run(wctx) }()
	env.stopWatcher = func() { stop(); <-done }
	if o.bitpoint {
		if err := openMarket(r, o.Customers, trust); err != nil {
			return nil, nil, err
		}
	}
	hotIdx := -1
	for i, out := range fund.TxOut {
		if string(out.PkScript) == string(hotScript) {
			hotIdx = i
		}
	}
	if hotIdx < 0 {
		return nil, nil, fmt.Errorf("drill: the funding transaction does not pay the hot wallet")
	}
	set, err := wallet.NewSet([]wallet.Named{{ID: 2, Kind: "hot-customer", Descriptor: hot.d.String()}}, hot.d)
	if err != nil {
		return nil, nil, err
	}
	return &hotSide{set: set, utxos: []wallet.UTXO{{OutPoint: wire.OutPoint{Hash: fund.TxHash(), Index: uint32(hotIdx)}, Value: res.HotSat, Wallet: set.Wallets[0], Branch: 0, Index: 0}},
		acct: hot.acct[:2], fp: hot.fp[:2], account: hotW.Account()}, &houseSide{w: houseW, keys: &keyset{d: houseKeys.d, acct: houseKeys.acct[:2], fp: houseKeys.fp[:2]}}, nil
}

// signUpTraders signs up and verifies (KYC) the customers who trade in the
// BITPoint drill: the first traderCount from r.first.
func signUpTraders(r *runner, o Options) error {
	if !o.bitpoint {
		return nil
	}
	creds := people.Credentials{PasswordHash: strings.Repeat("-", 32), TOTPSealed: strings.Repeat("-", 32)}
	for i := 0; i < min(o.Customers, traderCount); i++ {
		id := r.first + ledger.OwnerID(i)
		if _, err := r.do(core.SignUp{Customer: people.Customer{ID: id, Email: fmt.Sprintf("trader%d@drill.example", id), Name: "drill trader", Creds: creds}}); err != nil {
			return err
		}
		if _, err := r.do(core.SetKYC{Customer: id, KYC: people.KYCVerified, Actor: r.ops[0], Reason: "drill"}); err != nil {
			return err
		}
	}
	return nil
}

// openCustomers registers n customers from r.first, with their available
// and held accounts of BTC and JPY.
func (r *runner) openCustomers(n int, o Options) error {
	const jpy, btc ledger.AssetID = 1, 2
	for i := 0; i < n; i += ledger.MaxBatch {
		ids := make([]ledger.OwnerID, min(ledger.MaxBatch, n-i))
		var ks []ledger.AccountKey
		for j := range ids {
			id := r.first + ledger.OwnerID(i+j)
			ids[j] = id
			ks = append(ks, avail(id, btc), held(id, btc), avail(id, jpy), held(id, jpy))
		}
		if _, err := r.do(core.CreateCustomers{IDs: ids}); err != nil {
			return err
		}
		for a := 0; a < len(ks); a += ledger.MaxBatch {
			if _, err := r.do(core.CreateAccounts{Keys: ks[a:min(a+ledger.MaxBatch, len(ks))]}); err != nil {
				return err
			}
		}
		o.progress("opening customers", i+len(ids), n)
	}
	return nil
}

// holdings draws the customers' coins, and their total: spread over three
// orders of magnitude, about 10 BTC in all; traders get enough to sell a
// few lots.
func holdings(o Options) ([]int64, int64) {
	rng := mrand.New(mrand.NewPCG(o.Seed, 2018))
	amounts, total := make([]int64, o.Customers), int64(0)
	per := max(int64(10_0000_0000)/int64(o.Customers), 1_000)
	for i := range amounts {
		amounts[i] = per/4 + rng.Int64N(per*3/2+1)
		if o.bitpoint && i < traderCount {
			amounts[i] = max(amounts[i], 1_000_000)
		}
		total += amounts[i]
	}
	return amounts, total
}

// PlayBitPoint runs the BITPoint drill on env.
func PlayBitPoint(ctx context.Context, env *Env, o Options, out io.Writer) (*Result, error) {
	o.bitpoint = true
	if o.RateYen == 0 {
		o.RateYen = 10_000_000
	}
	return Play(ctx, env, o, out)
}
