package ceremony

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/operators"
	"kinko/internal/reserves"
	"kinko/internal/wallet"
	"kinko/internal/watch"
)

const btcAsset ledger.AssetID = 2

// signer is an offline key: its BIP48 account key and fingerprint.
type signer struct {
	acct *hdkeychain.ExtendedKey
	fp   [4]byte
}

// walletOfSeeds returns a 2-of-3 descriptor and its signers.
func walletOfSeeds(t *testing.T, seeds ...byte) (*wallet.Descriptor, []signer) {
	d := &wallet.Descriptor{M: 2, Net: regtest.Net}
	var ss []signer
	for _, s := range seeds {
		m, _ := hdkeychain.NewMaster(bytes.Repeat([]byte{s}, 32), regtest.Net)
		k, acct, err := wallet.AccountKey(m, regtest.Net, 0)
		if err != nil {
			t.Fatal(err)
		}
		d.Keys = append(d.Keys, k)
		ss = append(ss, signer{acct: acct, fp: k.Fingerprint})
	}
	return d, ss
}

// TestRefillCeremony runs the refill of the hot wallet end to end on a
// real node: a deposit lands in cold, the reserves ask for a refill, the
// PSBT is registered (inputs reserved), two of the three offline keys sign
// it separately, it is combined, finalized and broadcast, and the watcher
// records it when mined: the ledger moves the coins and the reserves add up.
func TestRefillCeremony(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	node := regtest.New(t, regtest.Options{})
	c, err := core.Open(ctx, core.Config{Dir: t.TempDir(), CheckInvariants: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	coldD, coldKeys := walletOfSeeds(t, 1, 2, 3)
	hotD, _ := walletOfSeeds(t, 4, 5, 6)
	sub := func(cmd core.Command) any {
		t.Helper()
		o, err := c.Submit(ctx, time.Now(), cmd)
		if err == nil {
			err = o.Err
		}
		if err == nil {
			err = o.EventErr()
		}
		if err != nil {
			t.Fatalf("%s: %v", cmd.Kind(), err)
		}
		return o.Value
	}
	sub(core.CreateAssets{Assets: []ledger.Asset{{ID: btcAsset, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}})
	sub(core.CreateCustomers{IDs: []ledger.OwnerID{1}})
	// The wallets are registered by two admins' approved requests.
	team := operators.Crew("ceremony test")
	for _, cmd := range append(team.Bootstrap(time.Now()), team.RegisterWallets(time.Now(),
		custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: btcAsset, Descriptor: coldD.String(), Owner: ledger.OwnerHouseMin + 100},
		custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: btcAsset, Descriptor: hotD.String(), Owner: ledger.OwnerHouseMin + 101})...) {
		sub(cmd)
	}
	sub(core.AssignAddress{Wallet: 1, Customer: 1})
	book := wallet.NewBook()
	book.Add(1, coldD, 0, 0, 20)
	w, err := watch.NewDeposits(ctx, c, node.Chain(), book, watch.DepositConfig{Asset: btcAsset, Confirmations: 1, StartHeight: regtest.SegwitHeight})
	if err != nil {
		t.Fatal(err)
	}
	addr, _, _ := coldD.Address(0, 0)
	if _, err := node.SendTo(ctx, map[string]btcutil.Amount{addr.EncodeAddress(): 1_0000_0000}); err != nil {
		t.Fatal(err)
	}
	node.Generate(ctx, 1)
	if err := w.Step(ctx); err != nil {
		t.Fatal(err)
	}

	set, err := wallet.NewSet([]wallet.Named{{ID: 1, Kind: "cold-customer", Descriptor: coldD.String()}, {ID: 2, Kind: "hot-customer", Descriptor: hotD.String()}}, coldD)
	if err != nil {
		t.Fatal(err)
	}
	var plan *Plan
	c.Read(func(st *core.State) {
		plan, err = Tiers(st, set, reserves.DefaultPolicy, 10, "refill-1", "aiko")
	})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Command.Ceremony.Purpose != custody.Refill || plan.Amount != 2_000_000 {
		t.Fatalf("plan = %s of %d; want a refill of 2%% (2,000,000 sat)", plan.Command.Ceremony.Purpose, plan.Amount)
	}
	sub(plan.Command)
	// The reserved coin cannot be planned twice.
	c.Read(func(st *core.State) { _, err = Tiers(st, set, reserves.DefaultPolicy, 10, "refill-2", "aiko") })
	if err == nil {
		t.Fatal("a second refill was planned from reserved coins")
	}

	// Offline: the PSBT travels as base64 text; two keys sign separately.
	text, _ := wallet.Encode(plan.PSBT)
	desc, err := set.Describe(plan.PSBT, nil)
	if err != nil || !strings.Contains(desc.String(), "wallet 2 (hot-customer) receive #0") {
		t.Fatalf("description: %v\n%s", err, desc)
	}
	var signed []string
	for _, k := range []signer{coldKeys[0], coldKeys[2]} {
		p, err := wallet.Read(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		if n, err := set.Sign(p, k.acct, k.fp); err != nil || n != 1 {
			t.Fatalf("sign = %d, %v", n, err)
		}
		s, _ := wallet.Encode(p)
		signed = append(signed, s)
	}
	a, _ := wallet.Read(strings.NewReader(signed[0]))
	b, _ := wallet.Read(strings.NewReader(signed[1]))
	if err := wallet.Combine(a, b); err != nil {
		t.Fatal(err)
	}
	tx, err := wallet.Finalize(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.Client().Broadcast(ctx, tx); err != nil {
		t.Fatal(err)
	}
	// Broadcasting the same transaction again is harmless.
	if _, err := node.Client().Broadcast(ctx, tx); err != nil {
		t.Fatalf("second broadcast: %v", err)
	}
	node.Generate(ctx, 1)
	if err := w.Step(ctx); err != nil {
		t.Fatal(err)
	}
	c.Read(func(st *core.State) {
		cer, _ := st.Custody.Ceremony("refill-1")
		if cer.State != custody.CeremonyConfirmed {
			t.Fatalf("ceremony state %s", cer.State)
		}
		rep, err := reserves.Compute(st.Ledger, st.Custody, reserves.DefaultPolicy, nil, st.Seq(), st.Time())
		if err != nil {
			t.Fatal(err)
		}
		r := rep.Rows[0]
		fee := uint64(1_0000_0000) - mustU(r.CustomerWallets)
		if mustU(r.HotCustomerLedger) != 2_000_000 || r.HotShareBps != 200 || r.HotOverCap {
			t.Fatalf("hot %v share %d", r.HotCustomerLedger, r.HotShareBps)
		}
		// The network fee left the customer wallets; the house bears it
		// in equity, and the segregation shortfall is exactly the fee,
		// for the house to top up.
		if fee == 0 || fee > 10_000 || mustU(r.CustomerLiabilities) != 1_0000_0000 || r.Segregated {
			t.Fatalf("fee %d liabilities %v segregated %v", fee, r.CustomerLiabilities, r.Segregated)
		}
		eq, _ := st.Ledger.Account(ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: btcAsset, Kind: ledger.KindEquity})
		if eq.DebitsPosted != ledger.AmountOf(fee) {
			t.Fatalf("equity charged %v; want the fee %d", eq.DebitsPosted, fee)
		}
		if hot := st.Custody.UTXOs(2, custody.UTXOAvailable); len(hot) != 1 || hot[0].Amount != 2_000_000 {
			t.Fatalf("hot wallet outputs = %+v", hot)
		}
		if err := st.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	})
	// With a tighter cap the hot wallet is now over it: the plan is a
	// sweep back to cold, paid from the hot wallet's own coins, with no
	// cold key needed to receive.
	c.Read(func(st *core.State) {
		plan, err = Tiers(st, set, reserves.Policy{HotTargetBps: 50, HotCapBps: 100}, 10, "sweep-1", "aiko")
	})
	if err != nil {
		t.Fatal(err)
	}
	cer := plan.Command.Ceremony
	if cer.Purpose != custody.Sweep || cer.Outputs[0].Wallet != 1 || plan.PSBT.Inputs[0].WitnessUtxo.Value != 2_000_000 {
		t.Fatalf("sweep plan = %s to wallet %d", cer.Purpose, cer.Outputs[0].Wallet)
	}
	// Target 0.5% of what the customer wallets hold after the fee.
	if plan.Amount < 1_490_000 || plan.Amount > 1_510_000 {
		t.Fatalf("sweep amount = %d; want about 1,500,000", plan.Amount)
	}
}

func mustU(a ledger.Amount) uint64 {
	v, _ := a.Uint64()
	return v
}
