// Package paysim is a payment provider for tests and demonstrations, run
// as its own process (`kinko pay-sim`): card charges, pay-easy (ペイジー)
// and convenience-store payment numbers, asked for by kinko over HTTPS
// with a signed JSON body; signed notifications of every payment event
// and settlement sent to kinko over HTTPS and retried until accepted; and
// each settlement paid into kinko's trust account at the bank (through
// the bank's control endpoint, as the provider's own bank transfer). Its
// control endpoint (plain HTTP on loopback) is where the customer pays or
// the card network charges back.
package paysim

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"kinko/internal/yen"
	"kinko/internal/yen/banksim"
)

// Config configures the provider.
type Config struct {
	Key       []byte
	NotifyURL string
	Client    *http.Client
	// BankControl is the bank's control endpoint, TrustBranch and
	// TrustNumber the trust account settlements are paid into.
	BankControl string
	TrustBranch string
	TrustNumber string
	Logger      *slog.Logger
}

type payment struct {
	ID       string
	Customer uint64
	Method   string
	Amount   uint64
	Number   string
	Expires  int64
	Paid     bool
	Reversed uint64
	Settled  bool
}

// Provider is the simulated provider.
type Provider struct {
	cfg      Config
	log      *slog.Logger
	mu       sync.Mutex
	payments map[string]*payment
	order    []string
	n        int
	events   map[string][]byte
	queue    chan []byte
}

// New returns a provider.
func New(cfg Config) *Provider {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Client == nil {
		cfg.Client = http.DefaultClient
	}
	return &Provider{cfg: cfg, log: cfg.Logger, payments: map[string]*payment{}, events: map[string][]byte{}, queue: make(chan []byte, 1<<14)}
}

// api is kinko's side: POST /v1/payments.
func (p *Provider) api(w http.ResponseWriter, r *http.Request) {
	body, err := yen.ReadSigned(r, p.cfg.Key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var req struct {
		Reference string `json:"reference"`
		Customer  uint64 `json:"customer"`
		Method    string `json:"method"`
		Amount    uint64 `json:"amount"`
	}
	if err := yen.DecodeStrict(body, &req); err != nil || req.Amount == 0 {
		http.Error(w, "malformed payment request", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	p.n++
	pm := &payment{ID: fmt.Sprintf("pay-%d", p.n), Customer: req.Customer, Method: req.Method, Amount: req.Amount, Expires: time.Now().Add(72 * time.Hour).Unix()}
	switch req.Method {
	case "card":
		pm.Number = fmt.Sprintf("ch_%08d", p.n)
	case "pay-easy":
		pm.Number = fmt.Sprintf("58091-%012d", p.n) // 収納機関番号-お客様番号
	case "convenience-store":
		pm.Number = fmt.Sprintf("KC%010d", p.n)
	default:
		p.mu.Unlock()
		http.Error(w, "unknown method", http.StatusBadRequest)
		return
	}
	p.payments[pm.ID] = pm
	p.order = append(p.order, pm.ID)
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"id": pm.ID, "number": pm.Number, "expires": pm.Expires})
}

func (p *Provider) eventLocked(pm *payment, kind string, amount uint64) string {
	p.n++
	id := fmt.Sprintf("ev-%d", p.n)
	body, _ := json.Marshal(yen.ProviderNotice{Type: "event", ID: id, Payment: pm.ID, Kind: kind, Amount: amount})
	p.events[id] = body
	p.queue <- body
	return id
}

// Pay is the customer paying (or the card charge succeeding).
func (p *Provider) Pay(id string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pm, ok := p.payments[id]
	if !ok || pm.Paid {
		return "", errors.New("paysim: no such open payment")
	}
	pm.Paid = true
	return p.eventLocked(pm, "paid", pm.Amount), nil
}

// Reverse refunds or charges back part of a card payment.
func (p *Provider) Reverse(id, kind string, amount uint64) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pm, ok := p.payments[id]
	if !ok || !pm.Paid || pm.Method != "card" || amount == 0 || amount > pm.Amount-pm.Reversed {
		return "", errors.New("paysim: nothing to reverse")
	}
	pm.Reversed += amount
	return p.eventLocked(pm, kind, amount), nil
}

// Settle settles a channel: the paid payments not yet settled, their net
// total (plus extra, to show a provider paying wrongly), notified, then
// paid into the trust account.
func (p *Provider) Settle(ctx context.Context, channel string, extra int64) (string, error) {
	p.mu.Lock()
	var ids []string
	var total int64
	for _, id := range p.order {
		pm := p.payments[id]
		if pm.Method == channel && pm.Paid && !pm.Settled {
			pm.Settled = true
			ids = append(ids, id)
			total += int64(pm.Amount - pm.Reversed)
		}
	}
	p.n++
	sid := fmt.Sprintf("S%d", p.n)
	p.mu.Unlock()
	if len(ids) == 0 {
		return "", errors.New("paysim: nothing to settle")
	}
	total += extra
	body, _ := json.Marshal(yen.ProviderNotice{Type: "settlement", ID: sid, Channel: channel, Payments: ids, Total: uint64(total)})
	if out, err := yen.Deliver(ctx, p.cfg.Client, p.cfg.NotifyURL, p.cfg.Key, body); err != nil {
		return "", fmt.Errorf("paysim: settlement notice: %w (%s)", err, out)
	}
	t, _ := json.Marshal(banksim.Transfer{Branch: p.cfg.TrustBranch, Number: p.cfg.TrustNumber, Amount: uint64(total), Sender: "ｼﾕｳﾉｳﾀﾞｲｺｳ", EDI: sid})
	resp, err := http.Post(p.cfg.BankControl+"/transfer", "application/json", strings.NewReader(string(t)))
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("paysim: the bank refused the settlement transfer: %s", resp.Status)
	}
	return sid, nil
}

// Replay sends an event's notification again.
func (p *Provider) Replay(id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.events[id]
	if !ok {
		return errors.New("paysim: no such event")
	}
	p.queue <- b
	return nil
}

func (p *Provider) deliver(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case body := <-p.queue:
			if out, err := yen.Deliver(ctx, p.cfg.Client, p.cfg.NotifyURL, p.cfg.Key, body); err != nil {
				p.log.Warn("notification refused", "err", err, "answer", string(out))
			}
		}
	}
}

// Control is the control endpoint.
func (p *Provider) Control(ctx context.Context) http.Handler {
	mux := http.NewServeMux()
	do := banksim.Control
	var v struct {
		ID      string `json:"id"`
		Amount  uint64 `json:"amount"`
		Channel string `json:"channel"`
		Extra   int64  `json:"extra"`
	}
	mux.HandleFunc("POST /pay", func(w http.ResponseWriter, r *http.Request) {
		v := v
		do(w, r, &v, func() (any, error) { id, err := p.Pay(v.ID); return map[string]string{"event": id}, err })
	})
	for _, k := range []string{"refunded", "chargeback"} {
		mux.HandleFunc("POST /"+k, func(w http.ResponseWriter, r *http.Request) {
			v := v
			do(w, r, &v, func() (any, error) {
				id, err := p.Reverse(v.ID, k, v.Amount)
				return map[string]string{"event": id}, err
			})
		})
	}
	mux.HandleFunc("POST /settle", func(w http.ResponseWriter, r *http.Request) {
		v := v
		do(w, r, &v, func() (any, error) {
			id, err := p.Settle(ctx, v.Channel, v.Extra)
			return map[string]string{"settlement": id}, err
		})
	})
	mux.HandleFunc("POST /replay", func(w http.ResponseWriter, r *http.Request) {
		v := v
		do(w, r, &v, func() (any, error) { return "ok", p.Replay(v.ID) })
	})
	return mux
}

// Main runs the provider: kinko pay-sim --key-file K --notify URL --ca CA
// --cert C --tls-key K --listen ADDR --control ADDR --addr-file F
// --bank URL --trust BRANCH-NUMBER. The address file gets two lines: the
// API's address and the control endpoint's.
func Main(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("pay-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyFile := fs.String("key-file", "", "the HMAC key shared with kinko")
	notify := fs.String("notify", "", "kinko's notification endpoint (https://...)")
	ca := fs.String("ca", "", "PEM file of the CA that signed kinko's TLS certificate")
	cert := fs.String("cert", "", "the API's TLS certificate (PEM)")
	tkey := fs.String("tls-key", "", "the API's TLS key (PEM)")
	listen := fs.String("listen", "127.0.0.1:0", "the API's address (HTTPS)")
	control := fs.String("control", "127.0.0.1:0", "the control endpoint's address")
	addrFile := fs.String("addr-file", "", "write the addresses here")
	bank := fs.String("bank", "", "the bank's control endpoint (http://...)")
	trust := fs.String("trust", "", "the trust account settlements are paid into: BRANCH-NUMBER")
	if err := fs.Parse(args); err != nil {
		return err
	}
	key, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	client, err := banksim.TLSClient(*ca)
	if err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(*cert, *tkey)
	if err != nil {
		return err
	}
	br, num, _ := strings.Cut(*trust, "-")
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("role", "pay-sim")
	p := New(Config{Key: []byte(strings.TrimSpace(string(key))), NotifyURL: *notify, Client: client, BankControl: *bank, TrustBranch: br, TrustNumber: num, Logger: log})
	apiLn, err := tls.Listen("tcp", *listen, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return err
	}
	ctlLn, err := net.Listen("tcp", *control)
	if err != nil {
		return err
	}
	if *addrFile != "" {
		os.WriteFile(*addrFile+".tmp", []byte(apiLn.Addr().String()+"\n"+ctlLn.Addr().String()), 0o600)
		os.Rename(*addrFile+".tmp", *addrFile)
	}
	log.Info("pay-sim listening", "api", apiLn.Addr().String(), "control", ctlLn.Addr().String())
	return p.Run(ctx, apiLn, ctlLn)
}

// Run serves kinko's side (API, on apiLn, which should be TLS) and the
// control endpoint (on ctlLn) and delivers notifications, until ctx
// ends; it returns once all three stopped.
func (p *Provider) Run(ctx context.Context, apiLn, ctlLn net.Listener) error {
	s1 := &http.Server{Handler: p.API(), ReadHeaderTimeout: 5 * time.Second}
	s2 := &http.Server{Handler: p.Control(ctx), ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	// Each ends with ctx (the servers when closed below).
	wg.Add(2)
	go func() { defer wg.Done(); p.deliver(ctx) }()
	go func() { defer wg.Done(); s2.Serve(ctlLn) }()
	go func() {
		<-ctx.Done()
		s1.Close()
		s2.Close()
	}()
	err := s1.Serve(apiLn)
	if !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	wg.Wait()
	return nil
}

// API is kinko's side of the provider: POST /v1/payments.
func (p *Provider) API() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/payments", p.api)
	return mux
}
