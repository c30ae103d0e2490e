package drill

import (
	"bytes"
	"context"
	"math/big"
	"strings"
	"testing"
	"time"

	"kinko/internal/withdraw"
)

// TestCoincheckDrill runs the drill at a small scale on btcd and checks
// what it reports against what the issue asks: the attacker gets at most
// the hot wallet, the halt is journaled within a second of the broadcast
// with no person, the house's backing makes the loss up in kind first and
// only the rest is paid in yen, every holder at the theft is paid once,
// both sides are whole at the end, services resume in stages and the
// notice says what the state is.
func TestCoincheckDrill(t *testing.T) {
	for _, c := range []struct {
		name    string
		backing uint32
	}{{"full backing", 0}, {"half backing", 5_000}} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			last := map[string][2]int{}
			progress := func(step string, done, total int) { last[step] = [2]int{done, total} }
			res, err := Coincheck(context.Background(), Options{Dir: t.TempDir(), Customers: 300, RateYen: 10_000_000, Seed: 7, BackingBps: c.backing, Progress: progress}, &out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			// The long steps said how far they were, to the end.
			for _, step := range []string{"opening customers", "paying drill-coincheck"} {
				if p := last[step]; p[0] == 0 || p[0] != p[1] {
					t.Errorf("progress of %q ended at %v (all: %v)", step, p, last)
				}
			}
			t.Logf("\n%s", out.String())
			if res.StolenSat > res.HotSat || res.HotSat*100 > res.TotalSat*5 {
				t.Errorf("stolen %d of hot %d of %d", res.StolenSat, res.HotSat, res.TotalSat)
			}
			if res.HaltAfter <= 0 || res.HaltAfter > time.Second {
				t.Errorf("halt after %v", res.HaltAfter)
			}
			// What the customer side lacked is what the house covered in
			// kind and what was paid in yen, nothing else.
			if res.ShortSat < res.StolenSat || res.CoveredSat+res.UncoveredSat != res.ShortSat || res.CoverTx == "" {
				t.Errorf("short %d (stolen %d): covered %d in kind (tx %q), %d uncovered", res.ShortSat, res.StolenSat, res.CoveredSat, res.CoverTx, res.UncoveredSat)
			}
			if c.backing == 0 {
				// The backing is the hot customer part: it covers all but
				// the cover's own fee.
				if res.BackingSat != res.HotSat || res.UncoveredSat <= 0 || res.UncoveredSat > 10_000 {
					t.Errorf("backing %d of hot %d; uncovered %d", res.BackingSat, res.HotSat, res.UncoveredSat)
				}
			} else if res.BackingSat != res.HotSat/2 || res.UncoveredSat < res.ShortSat/2-10_000 {
				t.Errorf("half backing %d of hot %d; uncovered %d of short %d", res.BackingSat, res.HotSat, res.UncoveredSat, res.ShortSat)
			}
			// 10,000,000 yen a coin: the uncovered part / 10 in yen, at most
			// a yen a holder more (shares rounded up to a whole yen).
			if want := uint64(res.UncoveredSat / 10); res.Affected != 300 || res.YenPaid != res.Plan.Total || res.Plan.Total < want || res.Plan.Total > want+300 {
				t.Errorf("affected %d; paid %d yen, plan %+v; uncovered %d sat", res.Affected, res.YenPaid, res.Plan, res.UncoveredSat)
			}
			if len(res.After) != 2 {
				t.Fatalf("after: %+v", res.After)
			}
			for _, row := range res.After {
				if !row.Segregated || !row.Shortfall.IsZero() {
					t.Errorf("after the drill %s is short by %s", row.Asset, row.Shortfall)
				}
			}
			if strings.Join(res.Resumed, ",") != "BTC:trade,BTC:deposit,BTC:withdraw" {
				t.Errorf("resumed %v", res.Resumed)
			}
			var md, notice bytes.Buffer
			res.Report.WriteMarkdown(&md)
			for _, want := range []string{res.TheftTx, res.CoverTx, "## Covered in kind", "| drill-coincheck | fixed_rate | 10000000 JPY per BTC | down to the yen |", "| done | drill-aiko | drill-kenji |", "- closed: "} {
				if !strings.Contains(md.String(), want) {
					t.Errorf("report lacks %q:\n%s", want, md.String())
				}
			}
			res.Report.WriteNotice(&notice)
			for _, want := range []string{"all BTC services have resumed", "from its own coins", res.CoverTx} {
				if !strings.Contains(notice.String(), want) {
					t.Errorf("notice lacks %q:\n%s", want, notice.String())
				}
			}
			if strings.Contains(notice.String(), "remain suspended") {
				t.Errorf("notice says withdrawals remain suspended after they resumed:\n%s", notice.String())
			}
		})
	}
	var out bytes.Buffer
	// Bad scales are refused before anything starts.
	if _, err := Coincheck(context.Background(), Options{Customers: 0, RateYen: 1}, &out); err == nil {
		t.Error("zero customers accepted")
	}
	if _, err := Coincheck(context.Background(), Options{Customers: 10, RateYen: 0}, &out); err == nil {
		t.Error("a zero rate accepted")
	}
	if _, err := Coincheck(context.Background(), Options{Customers: 10, RateYen: 1, BackingBps: 10_001}, &out); err == nil {
		t.Error("a backing above the requirement accepted")
	}
}

// TestBitPointDrill: trading goes on during the suspension; each buyer who
// paid above the mid at resumption is paid the difference once; services
// resume yen first and receiving crypto last.
func TestBitPointDrill(t *testing.T) {
	var out bytes.Buffer
	res, err := BitPoint(context.Background(), Options{Dir: t.TempDir(), Customers: 300, Seed: 7}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if res.HaltAfter <= 0 || res.HaltAfter > time.Second {
		t.Errorf("halt after %v", res.HaltAfter)
	}
	// 100 fills, each 300,000-590,000 yen above the mid on 1-3 lots of
	// 0.001 BTC: 300-1,770 yen each.
	if res.Affected != 100 || res.Plan.Total < 100*300 || res.Plan.Total > 100*1_770 || res.Plan.Largest.Pay > 1_770 {
		t.Errorf("affected %d, plan %+v", res.Affected, res.Plan)
	}
	if strings.Join(res.Resumed, ",") != "bank,BTC:withdraw,BTC:deposit" {
		t.Errorf("resumed %v", res.Resumed)
	}
	if res.CoveredSat <= 0 || res.CoveredSat+res.UncoveredSat != res.ShortSat {
		t.Errorf("short %d: covered %d in kind, %d uncovered", res.ShortSat, res.CoveredSat, res.UncoveredSat)
	}
	for _, row := range res.After {
		if !row.Segregated {
			t.Errorf("after the drill %s is short by %s", row.Asset, row.Shortfall)
		}
	}
	var md bytes.Buffer
	res.Report.WriteMarkdown(&md)
	if !strings.Contains(md.String(), "| drill-bitpoint | suspension_fills | the difference to the mid at resumption, in JPY |") {
		t.Errorf("report:\n%s", md.String())
	}
	t.Logf("\n%s", out.String())
}

// TestCoincheckEtherDrill runs the Ether drill at a small scale on geth
// --dev: two leaked hot owner keys drain the hot Safe straight on the
// node; the attacker gets exactly the hot Safe's balance (the hot share,
// at most 5% of customers' Ether), the cold Safe's Ether does not move,
// the watcher halts ETH withdrawals and opens the incident with the loss
// it measured, every holder at the theft is paid once in yen for their
// share, and services resume in stages.
func TestCoincheckEtherDrill(t *testing.T) {
	var out bytes.Buffer
	res, err := CoincheckEther(context.Background(), Options{Dir: t.TempDir(), Customers: 40, Seed: 7}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	if res.StolenWei != res.HotWei || res.HotWei == 0 || res.HotWei*20 > res.TotalWei {
		t.Errorf("stolen %d wei of the hot Safe's %d of %d", res.StolenWei, res.HotWei, res.TotalWei)
	}
	if res.ColdAfterWei != res.ColdWei || res.ColdWei+res.HotWei != res.TotalWei {
		t.Errorf("the cold Safe holds %d wei after the theft; it held %d", res.ColdAfterWei, res.ColdWei)
	}
	if res.Loss != withdraw.AmountOf(res.StolenWei) || res.HaltAfter <= 0 {
		t.Errorf("the incident's loss %d wei (stolen %d), opened %v after the theft", res.Loss, res.StolenWei, res.HaltAfter)
	}
	halted := map[string]bool{}
	for _, h := range res.Halts {
		halted[h.Actor+":"+string(h.Switch.Service)] = true
	}
	if !halted["watcher:withdraw"] {
		t.Errorf("halts %+v: ETH withdrawals not halted by the watcher", res.Halts)
	}
	// 500,000 yen an ETH: the stolen wei × rate / 10^18, at most a yen a
	// holder more (shares rounded up to a whole yen).
	want := new(big.Int).Div(new(big.Int).Mul(new(big.Int).SetUint64(res.StolenWei), big.NewInt(DefaultEtherRateYen)), big.NewInt(weiPerEther)).Uint64()
	if res.Affected != 40 || res.YenPaid != res.Plan.Total || res.Plan.Total < want || res.Plan.Total > want+40 {
		t.Errorf("affected %d; paid %d yen, plan %+v; stolen %d wei (%d yen)", res.Affected, res.YenPaid, res.Plan, res.StolenWei, want)
	}
	if strings.Join(res.Resumed, ",") != "ETH:trade,ETH:deposit,ETH:withdraw" {
		t.Errorf("resumed %v", res.Resumed)
	}
	var md bytes.Buffer
	res.Report.WriteMarkdown(&md)
	for _, want := range []string{res.SafeTx, res.TheftTx, "| drill-coincheck-eth | fixed_rate |", "- closed: "} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
	// Bad scales are refused before anything starts.
	if _, err := CoincheckEther(context.Background(), Options{Customers: 0}, &out); err == nil {
		t.Error("zero customers accepted")
	}
}
