// Package metrics exposes kinko's state to Prometheus at /metrics: wallet
// balances, the hot share, segregation and house backing per asset,
// halts, the withdrawal queue by status, pending two-person requests, open
// incidents, reconciliation differences, the journal's head, where the
// watcher stands, how fast outflows are detected, the HTTP API's requests
// and latency, and the Go runtime and process. Everything but the
// histograms and counters is read from the state at scrape time, so it is
// never stale.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"kinko/internal/core"
	"kinko/internal/people"
	"kinko/internal/reserves"
)

// Metrics is the registry of one core (or of a replica of it).
type Metrics struct {
	reg      *prometheus.Registry
	detect   prometheus.Histogram
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// Mismatch, if set, returns the reconciliation differences per wallet
	// (the chain watcher's).
	Mismatch func() map[uint32]int64
	// Watcher, if set, returns where each asset's watcher stands as the
	// core's readiness sees it (its journaled checkpoints).
	Watcher func() []WatcherLag
	// Ready, if set, returns why the core is not ready (none: ready).
	Ready func() []string
}

// WatcherLag is where an asset's watcher stands: its last journaled
// checkpoint's height, the node's tip it reported, and how long ago.
type WatcherLag struct {
	Asset  string
	Height int32
	Tip    int32
	Age    time.Duration
}

var (
	descBalance = prometheus.NewDesc("kinko_wallet_balance_base_units", "Ledger balance of each wallet account.", []string{"asset", "wallet", "kind"}, nil)
	descHot     = prometheus.NewDesc("kinko_hot_share_bps", "Hot customer wallet share of customer wallets, basis points.", []string{"asset"}, nil)
	descBacked  = prometheus.NewDesc("kinko_house_backed", "1 when the house holds at least the hot customer holdings.", []string{"asset"}, nil)
	descHalt    = prometheus.NewDesc("kinko_halted", "1 for each switch of the halt matrix that is off.", []string{"asset", "service"}, nil)
	descQueue   = prometheus.NewDesc("kinko_withdrawals", "Withdrawals by status.", []string{"status"}, nil)
	descSeq     = prometheus.NewDesc("kinko_journal_seq", "Sequence number of the newest applied journal entry.", nil, nil)
	descDiff    = prometheus.NewDesc("kinko_reconciliation_difference_base_units", "Ledger minus chain, per wallet.", []string{"wallet"}, nil)
	descLiab    = prometheus.NewDesc("kinko_customer_liabilities_base_units", "What the ledger owes customers, per asset.", []string{"asset"}, nil)
	descCustW   = prometheus.NewDesc("kinko_customer_wallets_base_units", "What the customer wallets hold (ledger), per asset.", []string{"asset"}, nil)
	descSeg     = prometheus.NewDesc("kinko_segregated", "1 when the customer wallets cover the customer liabilities.", []string{"asset"}, nil)
	descReqs    = prometheus.NewDesc("kinko_requests_pending", "Two-person requests waiting for a decision (not expired), by kind.", []string{"kind"}, nil)
	descInc     = prometheus.NewDesc("kinko_incidents_open", "Incidents open.", nil, nil)
	descWHeight = prometheus.NewDesc("kinko_watcher_checkpoint_height", "Height of the watcher's last journaled checkpoint, per asset.", []string{"asset"}, nil)
	descWBehind = prometheus.NewDesc("kinko_watcher_blocks_behind", "Blocks between the node's tip the watcher reported and its checkpoint, per asset.", []string{"asset"}, nil)
	descWAge    = prometheus.NewDesc("kinko_watcher_checkpoint_age_seconds", "Time since the watcher's last journaled checkpoint (since the core started, if none since), per asset.", []string{"asset"}, nil)
	descReady   = prometheus.NewDesc("kinko_ready", "1 when the core is ready (GET /readyz answers 200).", nil, nil)
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
	for _, d := range []*prometheus.Desc{descBalance, descHot, descBacked, descHalt, descQueue, descSeq, descDiff, descLiab, descCustW, descSeg, descReqs, descInc,
		descWHeight, descWBehind, descWAge, descReady} {
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
				seg := 0.0
				if r.Segregated {
					seg = 1
				}
				ch <- prometheus.MustNewConstMetric(descSeg, prometheus.GaugeValue, seg, r.Asset)
				liab, _ := r.CustomerLiabilities.Uint64()
				held, _ := r.CustomerWallets.Uint64()
				ch <- prometheus.MustNewConstMetric(descLiab, prometheus.GaugeValue, float64(liab), r.Asset)
				ch <- prometheus.MustNewConstMetric(descCustW, prometheus.GaugeValue, float64(held), r.Asset)
			}
		}
		now := time.Now().UnixNano()
		pending := map[string]int{}
		for _, r := range st.People.Requests() {
			if r.State == people.RequestPending && r.Expires > now {
				pending[string(r.Kind)]++
			}
		}
		for k, n := range pending {
			ch <- prometheus.MustNewConstMetric(descReqs, prometheus.GaugeValue, float64(n), k)
		}
		open := 0
		for _, in := range st.Incidents.List() {
			if in.Closed == 0 {
				open++
			}
		}
		ch <- prometheus.MustNewConstMetric(descInc, prometheus.GaugeValue, float64(open))
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
	if x.m.Watcher != nil {
		for _, l := range x.m.Watcher() {
			ch <- prometheus.MustNewConstMetric(descWHeight, prometheus.GaugeValue, float64(l.Height), l.Asset)
			ch <- prometheus.MustNewConstMetric(descWBehind, prometheus.GaugeValue, float64(max(l.Tip-l.Height, 0)), l.Asset)
			ch <- prometheus.MustNewConstMetric(descWAge, prometheus.GaugeValue, l.Age.Seconds(), l.Asset)
		}
	}
	if x.m.Ready != nil {
		r := 1.0
		if len(x.m.Ready()) > 0 {
			r = 0
		}
		ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, r)
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
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kinko_http_requests_total",
		Help: "HTTP requests answered, by route (the matched pattern), method and status.",
	}, []string{"route", "method", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kinko_http_request_duration_seconds",
		Help:    "HTTP request latency, by route (the matched pattern).",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	}, []string{"route"})
	m.reg.MustRegister(collector{c: c, m: m}, m.detect, m.requests, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Detected records one detection's latency.
func (m *Metrics) Detected(d time.Duration) { m.detect.Observe(d.Seconds()) }

// MaxRoute bounds a route label: routes are the API's patterns, never
// the request's path, so the labels are bounded.
const MaxRoute = 96

// Request records one HTTP request: route is the matched pattern (""
// when none matched, counted as "unmatched").
func (m *Metrics) Request(route, method string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	if len(route) > MaxRoute {
		route = route[:MaxRoute]
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions:
	default:
		method = "other"
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }
