package drill

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestCoincheckDrill runs the drill at a small scale on btcd and checks
// what it reports against what the issue asks: the attacker gets at most
// the hot wallet, the halt is journaled within a second of the broadcast
// with no person, every holder at the theft is paid once, and services
// resume in stages.
func TestCoincheckDrill(t *testing.T) {
	var out bytes.Buffer
	res, err := Coincheck(context.Background(), Options{Dir: t.TempDir(), Customers: 300, RateYen: 10_000_000, Seed: 7}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if res.StolenSat > res.HotSat || res.HotSat*100 > res.TotalSat*5 {
		t.Errorf("stolen %d of hot %d of %d", res.StolenSat, res.HotSat, res.TotalSat)
	}
	if res.HaltAfter <= 0 || res.HaltAfter > time.Second {
		t.Errorf("halt after %v", res.HaltAfter)
	}
	if res.Affected != 300 || res.Plan.Count != 300 || res.Plan.Total == 0 {
		t.Errorf("affected %d, plan %+v", res.Affected, res.Plan)
	}
	// 10,000,000 yen a coin: the total is the holdings' total / 10, less
	// at most one yen a holder for the rounding down.
	if want := uint64(res.TotalSat / 10); res.Plan.Total > want || res.Plan.Total < want-300 {
		t.Errorf("plan total %d; holdings %d sat", res.Plan.Total, res.TotalSat)
	}
	if strings.Join(res.Resumed, ",") != "BTC:trade,BTC:deposit,BTC:withdraw" {
		t.Errorf("resumed %v", res.Resumed)
	}
	var md bytes.Buffer
	res.Report.WriteMarkdown(&md)
	for _, want := range []string{res.TheftTx, "| drill-coincheck | fixed_rate | 10000000 JPY per BTC | down to the yen |", "| done | drill-aiko | drill-kenji |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
	t.Logf("\n%s", out.String())
	// Bad scales are refused before anything starts.
	if _, err := Coincheck(context.Background(), Options{Customers: 0, RateYen: 1}, &out); err == nil {
		t.Error("zero customers accepted")
	}
	if _, err := Coincheck(context.Background(), Options{Customers: 10, RateYen: 0}, &out); err == nil {
		t.Error("a zero rate accepted")
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
	var md bytes.Buffer
	res.Report.WriteMarkdown(&md)
	if !strings.Contains(md.String(), "| drill-bitpoint | suspension_fills | the difference to the mid at resumption, in JPY |") {
		t.Errorf("report:\n%s", md.String())
	}
	t.Logf("\n%s", out.String())
}
