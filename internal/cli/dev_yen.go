package cli

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"kinko/internal/core"
	"kinko/internal/demo"
	"kinko/internal/fsutil"
	"kinko/internal/mtls"
	"kinko/internal/yen/bankconn"
	"kinko/internal/yen/banksim"
	"kinko/internal/yen/paysim"
)

// Files of the dev's yen in its data directory (DATA/yen/): the drop
// directory shared by the connector and the bank simulator, the bank's
// books, the notice endpoint's TLS certificates, and the simulators'
// control addresses (read by kinko bank-sim / pay-sim --data).
const (
	devYenDir          = "yen"
	devBankAddrFile    = "bank-sim.addr"
	devPayAddrFile     = "pay-sim.addr"
	devBankBooksFile   = "bank-books.json"
	devBankKeyFile     = "yen-bank.key"
	devProviderKeyFile = "yen-provider.key"
)

// devYen is the dev's yen: the bank simulator and the payment-provider
// simulator run in the dev's process (as its signers do), and the
// connector between them and the core, speaking to each other as they
// would across hosts: Zengin files through the drop directory, signed
// notices over HTTPS.
type devYen struct {
	conn     *bankconn.Connector
	bank     *banksim.Bank
	bankCtl  string // the bank's control endpoint, http://ADDR
	payCtl   string // the provider's control endpoint, http://ADDR
	notices  string // the connector's notice endpoint, https://ADDR
	drop     string
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closeAll func()
}

// startDevYen starts the dev's yen (see devYen); Stop ends it. On a
// failed start it stops what started.
func startDevYen(ctx context.Context, c *core.Core, dir, secretsDir string, log *slog.Logger) (_ *devYen, err error) {
	yd := filepath.Join(dir, devYenDir)
	tlsDir := filepath.Join(yd, "tls")
	if err := os.MkdirAll(yd, 0o700); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(tlsDir, mtls.CAFile)); errors.Is(err, os.ErrNotExist) {
		if err := mtls.Init(tlsDir); err != nil {
			return nil, fmt.Errorf("dev yen: TLS: %w", err)
		}
	}
	bankKey, err := devKey(filepath.Join(secretsDir, devBankKeyFile))
	if err != nil {
		return nil, err
	}
	provKey, err := devKey(filepath.Join(secretsDir, devProviderKeyFile))
	if err != nil {
		return nil, err
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(tlsDir, mtls.ServerCertFile), filepath.Join(tlsDir, mtls.ServerKeyFile))
	if err != nil {
		return nil, fmt.Errorf("dev yen: TLS: %w", err)
	}
	client, err := banksim.TLSClient(filepath.Join(tlsDir, mtls.CAFile))
	if err != nil {
		return nil, err
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	var lns []net.Listener
	listen := func(secure bool) (net.Listener, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		if secure {
			return tls.NewListener(ln, tlsCfg), nil
		}
		return ln, nil
	}
	defer func() {
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
		}
	}()
	noticeLn, err := listen(true)
	if err != nil {
		return nil, err
	}
	bankLn, err := listen(false)
	if err != nil {
		return nil, err
	}
	payLn, err := listen(true)
	if err != nil {
		return nil, err
	}
	payCtlLn, err := listen(false)
	if err != nil {
		return nil, err
	}
	y := &devYen{drop: filepath.Join(yd, "drop"), notices: "https://" + noticeLn.Addr().String(),
		bankCtl: "http://" + bankLn.Addr().String(), payCtl: "http://" + payCtlLn.Addr().String()}
	if y.conn, err = bankconn.New(bankconn.Config{Core: c, Drop: y.drop, BankKey: bankKey, ProviderKey: provKey,
		ProviderURL: "https://" + payLn.Addr().String(), ProviderClient: client, Logger: log.With("sub", "yen")}); err != nil {
		return nil, err
	}
	if y.bank, err = banksim.Open(banksim.Config{Drop: y.drop, Key: bankKey, NotifyURL: y.notices + "/yen/bank", Client: client,
		Trust: demo.YenTrust, Operating: demo.YenOperating, VirtualBranch: demo.YenVirtualBranch, OperatingBalance: demo.HouseYen,
		State: filepath.Join(yd, devBankBooksFile), Logger: log.With("sub", "bank-sim")}); err != nil {
		return nil, fmt.Errorf("dev yen: the bank simulator: %w", err)
	}
	for _, p := range demo.Payees() {
		y.bank.AddPayee(p)
	}
	prov := paysim.New(paysim.Config{Key: provKey, NotifyURL: y.notices + "/yen/provider", Client: client, BankControl: y.bankCtl,
		TrustBranch: demo.YenTrust.Branch, TrustNumber: demo.YenTrust.Number, Logger: log.With("sub", "pay-sim")})
	for name, addr := range map[string]string{devBankAddrFile: y.bankCtl, devPayAddrFile: y.payCtl} {
		if err := writeFileAtomic(filepath.Join(yd, name), []byte(addr+"\n")); err != nil {
			return nil, err
		}
	}
	mux := http.NewServeMux()
	mux.Handle("POST /yen/bank", y.conn.BankHandler())
	mux.Handle("POST /yen/provider", y.conn.ProviderHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.With("sub", "yen").Handler(), slog.LevelWarn)}
	ctx, y.cancel = context.WithCancel(ctx)
	// Each goroutine ends with ctx (the notice server when closed in
	// Stop); Stop waits for all.
	y.wg.Add(4)
	go func() { defer y.wg.Done(); srv.Serve(noticeLn) }()
	go func() { defer y.wg.Done(); y.bank.Run(ctx, bankLn, 200*time.Millisecond) }()
	go func() { defer y.wg.Done(); prov.Run(ctx, payLn, payCtlLn) }()
	go func() { defer y.wg.Done(); y.conn.Run(ctx, time.Second) }()
	y.closeAll = func() { srv.Close() }
	log.Info("dev yen", "bank-sim", y.bankCtl, "pay-sim", y.payCtl, "notices", y.notices, "drop", y.drop)
	return y, nil
}

// Stop stops the simulators, the connector and its notice endpoint, and
// waits for them.
func (y *devYen) Stop() {
	y.cancel()
	y.closeAll()
	y.wg.Wait()
}

// devKey reads a dev HMAC key file, or makes one (0600).
func devKey(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil {
		return []byte(strings.TrimSpace(string(b))), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var k [32]byte
	rand.Read(k[:])
	s := hex.EncodeToString(k[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, []byte(s+"\n")); err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// writeFileAtomic writes a small file (0600) under a temporary name and
// renames it into place.
func writeFileAtomic(path string, b []byte) error { return fsutil.WriteFile(path, "", b, false) }

// printDevYen prints, in the dev's banner, where the yen is and how a
// newcomer moves it: a deposit sent through the bank simulator, a
// withdrawal batched and settled.
func printDevYen(w io.Writer, c *core.Core, y *devYen, dir, coreURL string) {
	type va struct{ email, number, kana string }
	var vas []va
	var describe func(bank, branch string) string
	c.Read(func(st *core.State) {
		m := st.Yen.Master
		describe = func(bank, branch string) string {
			if m == nil {
				return bank + "-" + branch
			}
			return m.Describe(bank, branch)
		}
		for i, p := range demo.Customers {
			n, _ := st.Yen.VirtualOf(uint64(p.Customer))
			k, _ := st.Yen.KanaOf(uint64(p.Customer))
			if i < len(demo.CustomersYen) {
				vas = append(vas, va{p.Email, n, k})
			}
		}
	})
	tr, op := demo.YenTrust, demo.YenOperating
	fmt.Fprintf(w, "\nYen (docs/yen.md): customers' yen is in the trust account %s at %s, the house's own in its operating account %s at %s;\n"+
		"  kinko reserves --data %s shows them apart. The bank simulator (control %s, books in %s) and the\n"+
		"  payment-provider simulator (control %s) run in this process; the connector reads and writes %s.\n",
		tr.Key(), describe(tr.Bank, tr.Branch), op.Key(), describe(op.Bank, op.Branch), dir, y.bankCtl,
		filepath.Join(dir, devYenDir, devBankBooksFile), y.payCtl, y.drop)
	fmt.Fprintf(w, "  Virtual accounts (振込入金口座) at %s:", describe(tr.Bank, demo.YenVirtualBranch))
	for _, v := range vas {
		fmt.Fprintf(w, " %s %s (%s);", v.email, v.number, v.kana)
	}
	fmt.Fprintln(w)
	first := demo.CustomersYen[0]
	number := "2000001"
	if len(vas) > 0 && vas[0].number != "" {
		number = vas[0].number
	}
	fmt.Fprintf(w, "  A deposit: kinko bank-sim transfer --data %s --to %s --amount 50000 --sender '%s'\n"+
		"    (credited within a second from the bank's notice; from another name it is held for review: kinko yen status --data %s)\n",
		dir, number, first.Kana, dir)
	fmt.Fprintf(w, "  A withdrawal: the customer registers an account in their own name, e.g. {\"bank\":%q,\"branch\":%q,\"type\":1,\"number\":%q,\"name\":%q}\n"+
		"    (POST /v1/me/yen/bank-accounts with a TOTP code; usable after the cool-down), then asks (POST /v1/me/yen/withdrawals\n"+
		"    {\"request_id\":\"y1\",\"account\":%q,\"amount\":\"10000\"}); an operator puts the queued ones in a transfer file:\n"+
		"      kinko yen batch --core %s --operator kenji --key %s\n"+
		"    the bank pays the file and its result settles each one (paid, or 振込不能: voided, the yen back). The bank pays\n"+
		"    the demo customers' own accounts:",
		first.Own.Bank, first.Own.Branch, first.Own.Number, first.Own.Name, first.Own.Key(), coreURL, demo.KeyFile(dir, "kenji"))
	for _, cy := range demo.CustomersYen {
		fmt.Fprintf(w, " %s %s %s;", cy.Own.Key(), cy.Own.Name, describe(cy.Own.Bank, cy.Own.Branch))
	}
	fmt.Fprintf(w, "\n  The day's statement: kinko bank-sim close --data %s (imported and reconciled); balances: kinko bank-sim balances --data %s\n"+
		"  Card, pay-easy, convenience store: POST /v1/me/yen/payments {\"method\":\"pay-easy\",\"amount\":\"5000\"}, then kinko pay-sim pay --data %s --payment ID\n",
		dir, dir, dir)
}
