// Package metrics exposes kinko's state to Prometheus at /metrics: wallet
// balances, the hot share, halts, the withdrawal queue, reconciliation
// differences, the journal's head, and how fast outflows are detected.
// Everything but the latency histogram is read from the state at scrape
// time, so it is never stale.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"kinko/internal/core"
	"kinko/internal/reserves"
)

// Metrics is the registry of one core.
type Metrics struct {
	reg    *prometheus.Registry
	detect prometheus.Histogram
	// Mismatch, if set, returns the reconciliation differences per wallet
	// (the chain watcher's).
	Mismatch func() map[uint32]int64
}

var (
	descBalance = prometheus.NewDesc("kinko_wallet_balance_base_units", "Ledger balance of each wallet account.", []string{"asset", "wallet", "kind"}, nil)
	descHot     = prometheus.NewDesc("kinko_hot_share_bps", "Hot customer wallet share of customer wallets, basis points.", []string{"asset"}, nil)
	descBacked  = prometheus.NewDesc("kinko_house_backed", "1 when the house holds at least the hot customer holdings.", []string{"asset"}, nil)
	descHalt    = prometheus.NewDesc("kinko_halted", "1 for each switch of the halt matrix that is off.", []string{"asset", "service"}, nil)
	descQueue   = prometheus.NewDesc("kinko_withdrawals", "Withdrawals by status.", []string{"status"}, nil)
	descSeq     = prometheus.NewDesc("kinko_journal_seq", "Sequence number of the newest applied journal entry.", nil, nil)
	descDiff    = prometheus.NewDesc("kinko_reconciliation_difference_base_units", "Ledger minus chain, per wallet.", []string{"wallet"}, nil)
)

// State is what the metrics read: the core (*core.Core) or a replica of
// it kept by another process.
type State interface {
	Read(fn func(s *core.State))
}

type collector struct {
	c State
	m *Metrics
}

func (x collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBalance, descHot, descBacked, descHalt, descQueue, descSeq, descDiff} {
		ch <- d
	}
}

func (x collector) Collect(ch chan<- prometheus.Metric) {
	x.c.Read(func(st *core.State) {
		ch <- prometheus.MustNewConstMetric(descSeq, prometheus.GaugeValue, float64(st.Seq()))
		for _, w := range st.Custody.Wallets() {
			a, _ := st.Ledger.Asset(w.Asset)
			acct, _ := st.Ledger.Account(w.Account())
			v, _ := acct.Balance().Uint64()
			ch <- prometheus.MustNewConstMetric(descBalance, prometheus.GaugeValue, float64(v), a.Code, strconv.Itoa(int(w.ID)), w.Kind.String())
		}
		if rep, err := reserves.Compute(st.Ledger, st.Custody, reserves.DefaultPolicy, nil, st.Seq(), st.Time()); err == nil {
			for _, r := range rep.Rows {
				ch <- prometheus.MustNewConstMetric(descHot, prometheus.GaugeValue, float64(r.HotShareBps), r.Asset)
				b := 0.0
				if r.HouseBacked {
					b = 1
				}
				ch <- prometheus.MustNewConstMetric(descBacked, prometheus.GaugeValue, b, r.Asset)
			}
		}
		for _, h := range st.Controls.Halted() {
			code := ""
			if a, ok := st.Ledger.Asset(h.Switch.Asset); ok {
				code = a.Code
			}
			ch <- prometheus.MustNewConstMetric(descHalt, prometheus.GaugeValue, 1, code, string(h.Switch.Service))
		}
		counts := map[string]int{}
		for _, w := range st.Withdraw.Withdrawals(0) {
			counts[string(w.Status)]++
		}
		for s, n := range counts {
			ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(n), s)
		}
	})
	if x.m.Mismatch != nil {
		for w, d := range x.m.Mismatch() {
			ch <- prometheus.MustNewConstMetric(descDiff, prometheus.GaugeValue, float64(d), strconv.Itoa(int(w)))
		}
	}
}

// New returns the metrics of c.
func New(c State) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.detect = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kinko_detection_latency_seconds",
		Help:    "From first sight of an unexplained outflow to its halt being journaled.",
		Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5},
	})
	m.reg.MustRegister(collector{c: c, m: m}, m.detect)
	return m
}

// Detected records one detection's latency.
func (m *Metrics) Detected(d time.Duration) { m.detect.Observe(d.Seconds()) }

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }
