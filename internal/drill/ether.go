package drill

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"io"
	"math/big"
	"math/bits"
	mrand "math/rand/v2"
	"path/filepath"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain/eth/devnet"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/compensation"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ethwallet"
	"kinko/internal/incident"
	"kinko/internal/ledger"
	"kinko/internal/watch"
	"kinko/internal/withdraw"
)

// weiPerEther is 10^18.
const weiPerEther = 1_000_000_000_000_000_000

// DefaultEtherRateYen is the Ether drill's default fixed rate, yen per
// whole ETH (the demo's index price).
const DefaultEtherRateYen = 500_000

// EtherResult is what the Ether drill saw; amounts in wei.
type EtherResult struct {
	Customers int
	// TotalWei is the customers' Ether; HotWei what the hot Safe held at
	// the theft; StolenWei what the attacker's execution took; ColdAfter
	// what the cold Safe's address holds after it.
	TotalWei, HotWei, StolenWei, ColdWei, ColdAfterWei uint64
	// TheftTx is the attacker's transaction, SafeTx the Safe transaction
	// it executed; Gas what it used.
	TheftTx, SafeTx string
	Gas             uint64
	// HaltAfter is from the attacker's transaction sent to the watcher's
	// incident journaled (the block is sealed on arrival: geth --dev,
	// period 0).
	HaltAfter   time.Duration
	Halts       []controls.Halt
	Affected    int
	Plan        compensation.Summary
	PlanTime    time.Duration
	ExecuteTime time.Duration
	YenPaid     uint64
	Resumed     []string
	// Loss is the incident's loss as the watcher measured it.
	Loss   withdraw.Amount
	Report *incident.Report
}

// ether formats wei as ETH with every digit.
func ether(wei uint64) string {
	v := new(big.Int).SetUint64(wei)
	q, r := new(big.Int).QuoRem(v, big.NewInt(weiPerEther), new(big.Int))
	if r.Sign() == 0 {
		return q.String() + " ETH"
	}
	frac := strings.TrimRight(fmt.Sprintf("%018s", r.String()), "0")
	return q.String() + "." + frac + " ETH"
}

// bps is part in basis points of whole, rounded down, without overflow.
func bps(part, whole uint64) uint64 {
	if whole == 0 {
		return 0
	}
	hi, lo := bits.Mul64(part, 10_000)
	if hi >= whole {
		return ^uint64(0)
	}
	q, _ := bits.Div64(hi, lo, whole)
	return q
}

// etherHoldings draws the customers' wei, about 5 ETH in all, spread over
// an order of magnitude.
func etherHoldings(o Options) ([]uint64, uint64) {
	rng := mrand.New(mrand.NewPCG(o.Seed, 2018))
	amounts, total := make([]uint64, o.Customers), uint64(0)
	per := max(uint64(5*weiPerEther)/uint64(o.Customers), 1_000_000_000_000)
	for i := range amounts {
		amounts[i] = per/4 + rng.Uint64N(per*3/2+1)
		total += amounts[i]
	}
	return amounts, total
}

// CoincheckEther replays January 2018 on Ethereum, on a fresh exchange in
// o.Dir: a geth --dev node with the Safe contracts, a core with ETH, the
// customers' Ether in a cold 2-of-3 Safe wallet (98%) and a hot 2-of-3
// Safe (2%), and the watcher of the hot Safe's executions. Two of the hot
// Safe's three owner keys (the hot signer's and the offline backup's)
// leak; the attacker signs a SafeTx paying itself the hot Safe's whole
// balance and executes it from its own account, never asking the
// co-signer. The watcher halts ETH withdrawals and opens the incident;
// the operators stop the rest of ETH, find the holders at the theft,
// write a fixed-rate plan in yen (o.RateYen per whole ETH), approve it as
// a second operator, execute it and resume in stages.
func CoincheckEther(ctx context.Context, o Options, out io.Writer) (*EtherResult, error) {
	if o.RateYen == 0 {
		o.RateYen = DefaultEtherRateYen
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.Customers > 100_000 {
		return nil, fmt.Errorf("drill: the Ether drill takes 1 to 100,000 customers (their wei must sum within 64 bits)")
	}
	art, err := safe.LoadInstalled()
	if err != nil {
		return nil, err
	}
	node, err := devnet.Start(ctx, devnet.Options{Dir: filepath.Join(o.Dir, "geth")})
	if err != nil {
		return nil, err
	}
	defer node.Stop()
	c, err := openFresh(ctx, o.Dir)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return playEther(ctx, c, node, art, o, out)
}

// etherKeys are three fresh owner keys.
func etherKeys() ([]*ecdsa.PrivateKey, []common.Address, error) {
	var ks []*ecdsa.PrivateKey
	var as []common.Address
	for range 3 {
		k, err := crypto.GenerateKey()
		if err != nil {
			return nil, nil, err
		}
		ks, as = append(ks, k), append(as, crypto.PubkeyToAddress(k.PublicKey))
	}
	return ks, as, nil
}

func safeDescriptor(d *safe.Deployment, owners []common.Address) string {
	desc := ethwallet.Descriptor{ChainID: d.ChainID.Uint64(), Singleton: ethwallet.Address(d.Singleton), Factory: ethwallet.Address(d.ProxyFactory),
		Fallback: ethwallet.Address(d.FallbackHandler), Threshold: 2}
	for _, o := range owners {
		desc.Owners = append(desc.Owners, ethwallet.Address(o))
	}
	return desc.String()
}

func playEther(ctx context.Context, c *core.Core, node *devnet.Node, art *safe.Artifacts, o Options, out io.Writer) (*EtherResult, error) {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	r := &runner{ctx: ctx, c: c, now: time.Now, ops: drillOperators, admin: drillAdmin, team: drillTeam(), first: 1}
	res := &EtherResult{Customers: o.Customers}
	const jpy, eth ledger.AssetID = 1, 3
	eq := func(a ledger.AssetID) ledger.AccountKey {
		return ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: a, Kind: ledger.KindEquity}
	}
	say("== kinko drill: Coincheck, January 2018, on Ethereum (geth --dev, Safe multisig wallets), with %d holders ==", o.Customers)
	cl := node.Client()
	gas, err := node.NewKey(ctx, new(big.Int).Mul(big.NewInt(100), big.NewInt(weiPerEther)))
	if err != nil {
		return nil, err
	}
	dep, err := safe.Deploy(ctx, cl, gas, art, safe.L2)
	if err != nil {
		return nil, err
	}
	hotKeys, hotOwners, err := etherKeys()
	if err != nil {
		return nil, err
	}
	_, coldOwners, err := etherKeys()
	if err != nil {
		return nil, err
	}
	init, err := dep.Initializer(safe.Config{Owners: hotOwners, Threshold: 2})
	if err != nil {
		return nil, err
	}
	hotSafe, _, err := dep.CreateProxy(ctx, cl, gas, init, new(big.Int))
	if err != nil {
		return nil, err
	}
	coldInit, err := dep.Initializer(safe.Config{Owners: coldOwners, Threshold: 2})
	if err != nil {
		return nil, err
	}
	// The customers' cold Ether sits at the cold wallet's first
	// counterfactual Safe: no code there, no online key can move it.
	coldAddr := dep.Predictor(coldInit).AddressIndex(0)

	// The exchange: assets, operators, the two Safe wallets, customers.
	if _, err := r.do(core.CreateAssets{Assets: []ledger.Asset{{ID: jpy, Code: "JPY", Class: ledger.ClassFiat}, {ID: eth, Code: "ETH", Decimals: 18, Class: ledger.ClassChain}}}); err != nil {
		return nil, err
	}
	for _, cmd := range r.team.Bootstrap(r.now()) {
		if _, err := r.do(cmd); err != nil {
			return nil, err
		}
	}
	coldW := custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: eth, Descriptor: safeDescriptor(dep, coldOwners), Owner: ledger.OwnerHouseMin + 100}
	hotW := custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: eth, Descriptor: safeDescriptor(dep, hotOwners), Owner: ledger.OwnerHouseMin + 101}
	for _, cmd := range r.team.RegisterWallets(r.now(), coldW, hotW) {
		if _, err := r.do(cmd); err != nil {
			return nil, err
		}
	}
	if _, err := r.do(core.CreateAccounts{Keys: []ledger.AccountKey{eq(jpy), eq(eth)}}); err != nil {
		return nil, err
	}
	amounts, total := etherHoldings(o)
	res.TotalWei, res.HotWei = total, total/50
	res.ColdWei = total - res.HotWei
	for i := 0; i < o.Customers; i += ledger.MaxBatch {
		ids := make([]ledger.OwnerID, min(ledger.MaxBatch, o.Customers-i))
		var ks []ledger.AccountKey
		for j := range ids {
			ids[j] = r.first + ledger.OwnerID(i+j)
			ks = append(ks, avail(ids[j], eth), held(ids[j], eth), avail(ids[j], jpy), held(ids[j], jpy))
		}
		if _, err := r.do(core.CreateCustomers{IDs: ids}); err != nil {
			return nil, err
		}
		for a := 0; a < len(ks); a += ledger.MaxBatch {
			if _, err := r.do(core.CreateAccounts{Keys: ks[a:min(a+ledger.MaxBatch, len(ks))]}); err != nil {
				return nil, err
			}
		}
		ts := make([]ledger.Transfer, len(ids))
		for j, id := range ids {
			ts[j] = ledger.Transfer{ID: ledger.ID{Hi: 0xE0, Lo: uint64(id)}, Debit: coldW.Account(), Credit: avail(id, eth), Amount: ledger.AmountOf(amounts[i+j]), Code: 1}
		}
		if _, err := r.do(core.CreateTransfers{Transfers: ts}); err != nil {
			return nil, err
		}
		o.progress("opening customers", i+len(ids), o.Customers)
	}
	// On chain: the cold Safe's address and the hot Safe's 2%; the ledger
	// moves the hot share from the cold wallet's account to the hot's.
	if _, err := node.Fund(ctx, coldAddr, new(big.Int).SetUint64(res.ColdWei)); err != nil {
		return nil, err
	}
	if _, err := node.Fund(ctx, hotSafe, new(big.Int).SetUint64(res.HotWei)); err != nil {
		return nil, err
	}
	if _, err := r.do(core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 0xE1, Lo: 1}, Debit: hotW.Account(), Credit: coldW.Account(), Amount: ledger.AmountOf(res.HotWei), Code: 2}}}); err != nil {
		return nil, err
	}
	say("holders: %d, %s in all; the cold Safe wallet %s (%s, counterfactual: no code, no online key), the hot Safe %s holds %s (2%%, under the 5%% cap)",
		o.Customers, ether(res.TotalWei), coldAddr.Hex(), ether(res.ColdWei), hotSafe.Hex(), ether(res.HotWei))

	// The watcher of the hot Safe's executions, as kinko dev runs it.
	start, err := cl.BlockNumber(ctx)
	if err != nil {
		return nil, err
	}
	w, err := watch.NewEthExec(c, cl, watch.EthExecConfig{Asset: eth, MultiSend: dep.MultiSendCallOnly, StartBlock: start + 1, Logger: o.Log,
		Safes: []watch.WatchedSafe{{Name: "hot-eth", Address: hotSafe, Kind: custody.HotCustomer}}})
	if err != nil {
		return nil, err
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	// The watcher polls until the drill ends.
	go func() { defer close(done); w.Run(wctx, 20*time.Millisecond) }()
	defer func() { stop(); <-done }()

	// The theft: the hot signer's key and the offline backup's leaked;
	// the attacker signs the hot Safe's whole balance to itself and
	// executes it from its own account, never asking the co-signer.
	attackerKey, err := node.NewKey(ctx, big.NewInt(weiPerEther/10))
	if err != nil {
		return nil, err
	}
	thief := common.BytesToAddress(crypto.Keccak256([]byte(fmt.Sprintf("drill thief %d", time.Now().UnixNano())))[12:])
	hotBal, err := cl.Balance(ctx, hotSafe)
	if err != nil {
		return nil, err
	}
	nonce, err := safe.Nonce(ctx, cl, hotSafe)
	if err != nil {
		return nil, err
	}
	tx := safe.Transfer(thief, hotBal, nonce)
	h, err := tx.Hash(dep.ChainID, hotSafe)
	if err != nil {
		return nil, err
	}
	s1, err := safe.Sign(h, hotKeys[0])
	if err != nil {
		return nil, err
	}
	s3, err := safe.Sign(h, hotKeys[2])
	if err != nil {
		return nil, err
	}
	sigs, err := safe.EncodeSignatures(h, []safe.Signature{s1, s3})
	if err != nil {
		return nil, err
	}
	var before uint64
	c.Read(func(st *core.State) { before = st.Seq() })
	t0 := time.Now()
	rc, err := dep.Exec(ctx, cl, attackerKey, hotSafe, tx, sigs, 0)
	if err != nil {
		return nil, err
	}
	res.TheftTx, res.SafeTx, res.Gas = rc.TxHash.Hex(), h.Hex(), rc.GasUsed
	took, err := cl.Balance(ctx, thief)
	if err != nil {
		return nil, err
	}
	if !took.IsUint64() {
		return nil, fmt.Errorf("drill: the thief holds %s wei", took)
	}
	res.StolenWei = took.Uint64()
	// The watcher's own record of this theft: the incident naming the
	// SafeTx, opened by the watcher.
	in, err := awaitWatcherHalt(c, eth, h.Hex(), "ETH withdrawals")
	if err != nil {
		return nil, err
	}
	incidentID := in.ID
	res.HaltAfter, res.Loss = time.Unix(0, in.Opened).Sub(t0), in.Loss
	coldAfter, err := cl.Balance(ctx, coldAddr)
	if err != nil {
		return nil, err
	}
	res.ColdAfterWei = coldAfter.Uint64()
	say("attacker executed SafeTx %s in %s (%d gas) taking %s: the hot Safe's whole balance, %d bps of customers' Ether; the cold Safe still holds %s",
		res.SafeTx, res.TheftTx, res.Gas, ether(res.StolenWei), bps(res.StolenWei, res.TotalWei), ether(res.ColdAfterWei))
	say("halt and incident journaled %v after the attacker's transaction was sent (the block sealed on arrival), by the watcher, with no person",
		res.HaltAfter.Round(time.Microsecond))
	for _, sw := range []controls.Switch{{Asset: eth, Service: controls.Deposit}, {Asset: eth, Service: controls.Trade}} {
		if _, err := r.do(core.Halt{Switch: sw, Actor: r.ops[0], Reason: "drill: theft under investigation"}); err != nil {
			return nil, err
		}
	}
	// The loss is recorded: the hot Safe's account follows the chain.
	if _, err := r.do(core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 0xE1, Lo: 2}, Debit: eq(eth), Credit: hotW.Account(), Amount: ledger.AmountOf(res.StolenWei), Code: 3}}}); err != nil {
		return nil, err
	}
	var names core.Names
	c.Read(func(st *core.State) { res.Halts, names = st.Controls.Halted(), core.NamesOf(st) })
	for _, hl := range res.Halts {
		say("  halted: %-22s by %-14s %s", names.Switch(hl.Switch), hl.Actor, hl.Reason)
	}

	// The plan: every holder at the theft paid in yen for their share of
	// the loss, at a fixed rate, rounded down; the stolen share written
	// off.
	tp := time.Now()
	st, err := c.StateAt(ctx, before)
	if err != nil {
		return nil, err
	}
	hs := st.Holdings(eth)
	res.Affected = len(hs)
	num, den := o.RateYen, uint64(weiPerEther)
	ps, err := compensation.FixedRatePayouts(compensation.ShareOf(hs, res.StolenWei, num, den), num, den)
	if err != nil {
		return nil, err
	}
	plan := compensation.Plan{ID: "drill-coincheck-eth", Incident: incidentID, Rule: compensation.FixedRate, Asset: eth, PayAsset: jpy, At: before, RateNum: num, RateDen: den,
		Rounding: "down to the yen", WriteOff: true, Requester: r.ops[0],
		Reason: fmt.Sprintf("the %s taken from the hot Safe, paid in yen at a fixed rate, each holder for their share", ether(res.StolenWei))}
	if err := r.writeAndApprove(&plan, ps); err != nil {
		return nil, err
	}
	res.PlanTime = time.Since(tp)
	res.Plan = compensation.Summarize(ps)
	say("holders at the theft: %d at entry %d; plan %s: %d yen in all, largest %d yen (customer %d), %d JPY per ETH, rounded down; written and approved in %v",
		res.Affected, before, plan.ID, res.Plan.Total, res.Plan.Largest.Pay, res.Plan.Largest.Customer, o.RateYen, res.PlanTime.Round(time.Microsecond))
	if err := r.fundYen(res.Plan.Total, plan.ID, say); err != nil {
		return nil, err
	}
	te := time.Now()
	if err := r.execute(plan.ID, len(ps), o); err != nil {
		return nil, err
	}
	again, err := r.team.Sign(core.ExecuteCompensation{Plan: plan.ID, From: 0, Count: min(compensation.ChunkSize, len(ps)), Actor: r.ops[1]})
	if err != nil {
		return nil, err
	}
	if oc, err := c.Submit(ctx, r.now(), again); err != nil || oc.Err == nil {
		return nil, fmt.Errorf("drill: executing a done plan again was not refused")
	}
	res.ExecuteTime = time.Since(te)
	res.YenPaid = res.Plan.Total
	say("executed in %v: %d customers paid, each once (a second run is refused)", res.ExecuteTime.Round(time.Microsecond), len(ps))
	if res.Resumed, err = r.resume([]controls.Switch{{Asset: eth, Service: controls.Trade}, {Asset: eth, Service: controls.Deposit}, {Asset: eth, Service: controls.Withdraw}},
		"drill: hot Safe owners replaced, customers paid"); err != nil {
		return nil, err
	}
	say("resumed in stages, each lift approved by a second operator: %s", strings.Join(res.Resumed, " → "))
	if err := r.closeIncidents(incidentID, say); err != nil {
		return nil, err
	}
	say("the attacker got %s; the hot share was %s (%d bps of customers' Ether); the cold Safe's %s did not move",
		ether(res.StolenWei), ether(res.HotWei), bps(res.HotWei, res.TotalWei), ether(res.ColdAfterWei))
	rep, err := report(c, incidentID)
	if err != nil {
		return nil, err
	}
	res.Report = rep
	return res, nil
}
