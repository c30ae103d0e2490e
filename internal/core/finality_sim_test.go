package core

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"kinko/internal/controls"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/withdraw"
)

// TestFinalitySimulation drives deposits, checkpoints, reorganisations
// (shallow and, rarely, deeper than finality), trades, repayments, rule
// changes and withdrawal requests from a seed, and checks after every step
// that the policy refuses exactly what the finality rule says it must:
// an accepted withdrawal never leaves a customer owing, nor below their
// deposits not yet final in any asset; a refusal for finality is one the
// rule demands. The house's equity never pays for a reversal, the tracked
// sums equal a scan of every deposit, and replay from a snapshot equals
// replay from zero. KINKO_SIM_SEED=n replays one seed.
func TestFinalitySimulation(t *testing.T) {
	steps := 1500
	if testing.Short() {
		steps = 300
	}
	for _, seed := range simSeeds(t, 3) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runFinalitySim(t, seed, steps) })
	}
}

func runFinalitySim(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, seed^0x51))
	e := newFinEnv(t)
	custs := []ledger.OwnerID{1, 2, attacker}
	assets := map[string]ledger.AssetID{"BTC": btc, "JPY": jpy}
	e.checkpoint(100)
	equity := equityBTC(e)
	var deposits []custody.Outpoint
	nDep, nReq := 0, 0
	var accepted, refusedFinal, reversed, owedSeen, released int
	mid := steps / 2
	var snap []byte
	var snapEntries int
	for step := 0; step < steps; step++ {
		switch r := rng.IntN(100); {
		case r < 22: // a deposit credited at the watcher's confirmations
			if err := e.st.Controls.Allowed(btc, controls.Deposit); err != nil {
				e.liftDeposits()
			}
			c := custs[rng.IntN(len(custs))]
			var amount uint64
			switch rng.IntN(3) {
			case 0:
				amount = rng.Uint64N(1_0000_0000) + 1
			case 1:
				amount = rng.Uint64N(10_0000_0000) + 1
			default:
				amount = rng.Uint64N(40_0000_0000) + 1
			}
			nDep++
			op := custody.Outpoint{TxID: [32]byte{0xDE, byte(nDep), byte(nDep >> 8)}, Vout: uint32(nDep)}
			h := e.tip - int32(rng.IntN(3)) + 1
			review := rng.IntN(8) == 0 // from a denied address: held for review
			e.must(CreditDeposits{Deposits: []custody.Seen{{Outpoint: op, Wallet: 1, Index: uint32(c - 1), Amount: amount, BlockHash: e.blockHash(h), Height: h, Review: review}}})
			deposits = append(deposits, op)
		case r < 25 && len(deposits) > 0: // an operator releases a deposit held for review
			var held []custody.Outpoint
			for _, op := range deposits {
				if d, _ := e.st.Custody.Deposit(op); d.State == custody.DepositReview {
					held = append(held, op)
				}
			}
			if len(held) > 0 {
				e.must(ReleaseDeposit{Outpoint: held[rng.IntN(len(held))], Actor: "aiko", Reason: "checked"})
				released++
			}
		case r < 40: // the chain grows
			e.checkpoint(e.tip + int32(rng.IntN(4)))
		case r < 46 && len(deposits) > 0: // a reorganisation takes a deposit's block
			op := deposits[rng.IntN(len(deposits))]
			d, _ := e.st.Custody.Deposit(op)
			if d.State == custody.DepositReversed || (d.Final && rng.IntN(10) != 0) {
				break // deeper than finality only rarely
			}
			e.must(ReverseDeposits{Outpoints: []custody.Outpoint{op}, Actor: "watcher", Reason: "reorg"})
			reversed++
		case r < 62: // a trade: BTC for yen between two customers
			a, b := custs[rng.IntN(len(custs))], custs[rng.IntN(len(custs))]
			if a == b {
				break
			}
			x := min(availU(e.st, a, btc), rng.Uint64N(5_0000_0000)+1)
			y := min(availU(e.st, b, jpy), rng.Uint64N(10_000_000)+1)
			if x == 0 || y == 0 {
				break
			}
			nReq++
			e.do(CreateTransfers{Transfers: []ledger.Transfer{
				{ID: ledger.ID{Hi: 0x5A, Lo: uint64(2 * nReq)}, Debit: avail(a, btc), Credit: avail(b, btc), Amount: ledger.AmountOf(x), Flags: ledger.FlagLinked},
				{ID: ledger.ID{Hi: 0x5A, Lo: uint64(2*nReq + 1)}, Debit: avail(b, jpy), Credit: avail(a, jpy), Amount: ledger.AmountOf(y)},
			}})
		case r < 65: // an operator repays what a customer owes
			e.must(RepayOwed{Customer: custs[rng.IntN(len(custs))], Asset: "BTC", Actor: "aiko"})
		case r < 67: // the finality tiers change
			d1 := int32(rng.IntN(8) + 1)
			d2 := d1 + int32(rng.IntN(20)+1)
			rules := openLimits(withdraw.Rules{CoolDownSeconds: 1, Finality: map[string][]withdraw.Tier{"BTC": {{UpTo: withdraw.AmountOf(rng.Uint64N(5_0000_0000) + 1), Depth: d1}, {Depth: d2}}}})
			if rng.IntN(4) == 0 {
				rules.Finality = nil // the defaults
			}
			if o := e.setRules(rules); o.Err != nil {
				t.Fatal(o.Err)
			}
		default: // a withdrawal request
			c := custs[rng.IntN(len(custs))]
			code := []string{"BTC", "JPY"}[rng.IntN(2)]
			avail := availU(e.st, c, assets[code])
			if avail == 0 {
				break
			}
			amount := rng.Uint64N(avail) + 1
			// What the rule demands, from a scan of every deposit.
			owed, unfinal := scanFinality(e.st)
			mustRefuse := owed[c] > 0
			for _, a := range []ledger.AssetID{btc, jpy} {
				if u := unfinal[custAsset{c, a}]; u > 0 && availU(e.st, c, a) < u {
					mustRefuse = true
				}
			}
			if u := unfinal[custAsset{c, assets[code]}]; avail-amount < u {
				mustRefuse = true
			}
			nReq++
			w := e.withdraw(c, fmt.Sprintf("r%d", nReq), code, amount)
			switch {
			case w.Status == withdraw.StatusQueued:
				accepted++
				if mustRefuse {
					t.Fatalf("seed %d step %d: customer %d withdrew %d %s though the rule refuses it (owed %d, not final %v)", seed, step, c, amount, code, owed[c], unfinal)
				}
			case w.Status == withdraw.StatusRejected && strings.HasPrefix(w.Reason, "not final:"):
				refusedFinal++
				if !mustRefuse {
					t.Fatalf("seed %d step %d: customer %d refused %d %s: %s; the rule allows it", seed, step, c, amount, code, w.Reason)
				}
			default:
				t.Fatalf("seed %d step %d: withdrawal %+v", seed, step, w)
			}
		}
		checkFinalitySim(t, seed, step, e)
		if got := equityBTC(e); got != equity {
			t.Fatalf("seed %d step %d: house BTC equity %d; was %d", seed, step, got, equity)
		}
		if _, owed := scanFinality(e.st); len(owed) > 0 {
			owedSeen++
		}
		if step == mid {
			var b bytes.Buffer
			if err := e.st.Encode(&b); err != nil {
				t.Fatal(err)
			}
			snap, snapEntries = b.Bytes(), len(e.entries)
		}
	}
	if accepted == 0 || refusedFinal == 0 || reversed == 0 || owedSeen == 0 || released == 0 {
		t.Fatalf("seed %d: %d accepted, %d refused for finality, %d reversals, %d steps owing, %d released: the generator tests too little", seed, accepted, refusedFinal, reversed, owedSeen, released)
	}
	t.Logf("seed %d: %d entries, %d deposits (%d released from review), %d reversals, %d withdrawals accepted, %d refused for finality", seed, len(e.entries), nDep, released, reversed, accepted, refusedFinal)
	fromSnap, err := DecodeState(bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	for i := snapEntries; i < len(e.entries); i++ {
		fromSnap.Apply(&e.entries[i])
	}
	if fromSnap.Hash() != e.st.Hash() {
		t.Fatalf("seed %d: replay from the snapshot at entry %d differs from the live state", seed, snapEntries)
	}
	if e.stateAt(e.st.Seq()).Hash() != e.st.Hash() {
		t.Fatalf("seed %d: replay from zero differs from the live state", seed)
	}
}

// custAsset names a customer's holding of an asset, for the scans.
type custAsset struct {
	c ledger.OwnerID
	a ledger.AssetID
}

// scanFinality computes from every deposit and account what the
// finality rule reads: per customer what they owe, per customer and asset
// their deposits credited to available and not final.
func scanFinality(st *State) (owed map[ledger.OwnerID]uint64, unfinal map[custAsset]uint64) {
	owed, unfinal = map[ledger.OwnerID]uint64{}, map[custAsset]uint64{}
	st.Custody.Deposits(func(d *custody.Deposit) bool {
		if d.State == custody.DepositCredited && !d.Final {
			w, _ := st.Custody.Wallet(d.Wallet)
			unfinal[custAsset{d.Customer, w.Asset}] += d.Amount
		}
		return true
	})
	st.Ledger.Accounts(func(a *ledger.Account) bool {
		if a.Key.Kind == ledger.KindReceivable {
			if v, _ := a.Balance().Uint64(); v > 0 {
				owed[a.Key.Owner] += v
			}
		}
		return true
	})
	return owed, unfinal
}

// checkFinalitySim checks that the tracked sums equal the scan, and that no
// deposit is left waiting that the journaled tip and the rules in force
// make final.
func checkFinalitySim(t *testing.T, seed uint64, step int, e *finEnv) {
	t.Helper()
	_, unfinal := scanFinality(e.st)
	for _, c := range []ledger.OwnerID{1, 2, attacker} {
		if got, want := e.st.Custody.UnfinalAmount(c, btc), ledger.AmountOf(unfinal[custAsset{c, btc}]); got != want {
			t.Fatalf("seed %d step %d: customer %d: tracked %d not final; the deposits give %d", seed, step, c, got, want)
		}
	}
	e.st.Custody.Deposits(func(d *custody.Deposit) bool {
		if d.Final || d.State == custody.DepositReversed {
			return true
		}
		if want := d.Height + e.st.finalityDepth(btc, d.Value()) - 1; d.FinalAt != want {
			t.Fatalf("seed %d step %d: deposit %s final at %d; the rules in force say %d", seed, step, d.Outpoint, d.FinalAt, want)
		}
		if d.FinalAt <= e.tip {
			t.Fatalf("seed %d step %d: deposit %s final at %d, tip %d, not final", seed, step, d.Outpoint, d.FinalAt, e.tip)
		}
		return true
	})
}

// availU is the customer's available balance as a uint64 (this
// simulation's amounts are far below 2^64).
func availU(st *State, c ledger.OwnerID, a ledger.AssetID) uint64 {
	v, _ := st.available(c, a).Uint64()
	return v
}
