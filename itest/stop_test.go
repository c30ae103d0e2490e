package itest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/chain/eth/devnet"
)

// interrupted ends p as Ctrl-C in its terminal does (Interrupt: SIGINT)
// and checks that it exited by itself, with status 0, and printed its
// stop line (the last one matching stopLine after the signal).
func interrupted(t *testing.T, p *Proc, stopLine *regexp.Regexp) {
	t.Helper()
	mark := len(p.LogTail(1 << 30))
	if err := p.Interrupt(); err != nil {
		t.Fatalf("%s on SIGINT: %v", p.Name, err)
	}
	if err := p.ExitErr(); err != nil {
		t.Errorf("%s exited on SIGINT with %v:\n%s", p.Name, err, p.LogTail(2000))
	}
	said := p.LogTail(1 << 30)
	if mark <= len(said) {
		said = said[mark:]
	}
	m := stopLine.FindAllString(said, -1)
	if m == nil {
		t.Fatalf("%s said nothing on SIGINT (no line matching %s):\n%s", p.Name, stopLine, said)
	}
	t.Logf("%s: %s", p.Name, m[len(m)-1])
}

// TestCtrlCStopsEveryRole stops every role with SIGINT, as Ctrl-C in a
// terminal does, each run as its own process: the hot signer, the
// watcher, the co-signer and the core of a deployment, and kinko dev with
// its btcd and geth nodes, started in a process group of its own as a shell starts
// it and interrupted through the whole group. Each exits by itself with
// status 0 and prints its stop line (how long it took from the signal);
// nothing of the dev's group is left running after it. (docs/deploy.md,
// "Logs": within two seconds; the test measures nothing, it prints.)
func TestCtrlCStopsEveryRole(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	d := Deploy(t, Options{})
	for _, r := range []struct {
		p    *Proc
		line string
	}{
		{d.Signer, "kinko signer stopped in "}, {d.Watcher, "kinko watch stopped in "},
		{d.Cosigner, "kinko cosigner stopped in "}, {d.Core, "kinko stopped in "},
	} {
		interrupted(t, r.p, regexp.MustCompile(regexp.QuoteMeta(r.line)+`\S+`))
	}

	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	btcd, err := regtest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	geth, err := devnet.Binary()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	data := filepath.Join(root, "data")
	dev := newProc("dev", bin, root, filepath.Join(root, "dev.log"), regexp.MustCompile(`(?m)^Ctrl-C stops it\.`), func() []string {
		return []string{"dev", "--data", data, "--addr", "127.0.0.1:0", "--cool-down", "2s"}
	})
	dev.Env = []string{"KINKO_BTCD=" + btcd, "KINKO_GETH=" + geth}
	dev.Group = true
	gethRPC := regexp.MustCompile(`Ethereum dev node \(geth --dev, chain id 1337\): RPC (http://127\.0\.0\.1:\d+) `)
	t.Cleanup(func() { dev.Kill() })
	// Twice: on a fresh data directory, and started again on its data.
	for i := range 2 {
		if err := dev.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(dev.LogTail(1<<30), "starting a btcd regtest node") {
			t.Fatalf("kinko dev started no node:\n%s", dev.LogTail(2000))
		}
		pgid := dev.Pid()
		// Its geth node too, on the chain kept in the data directory.
		all := gethRPC.FindAllStringSubmatch(dev.LogTail(1<<30), -1)
		if len(all) == 0 {
			t.Fatalf("start %d: kinko dev started no geth node:\n%s", i+1, dev.LogTail(4000))
		}
		m := all[len(all)-1]
		ethRPC := func() error {
			r, err := http.Post(m[1], "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`))
			if err == nil {
				r.Body.Close()
			}
			return err
		}
		if err := ethRPC(); err != nil {
			t.Fatalf("start %d: kinko dev's geth does not answer at %s: %v", i+1, m[1], err)
		}
		// The bank simulator it runs answers until it stops.
		bankCtl, err := os.ReadFile(filepath.Join(data, "yen", "bank-sim.addr"))
		if err != nil {
			t.Fatal(err)
		}
		balances := strings.TrimSpace(string(bankCtl)) + "/balances"
		if r, err := http.Get(balances); err != nil || r.StatusCode != http.StatusOK {
			t.Fatalf("start %d: kinko dev's bank simulator does not answer at %s: %v", i+1, balances, err)
		} else {
			r.Body.Close()
		}
		interrupted(t, dev, regexp.MustCompile(`kinko stopped in \S+`))
		if r, err := http.Get(balances); err == nil {
			r.Body.Close()
			t.Errorf("start %d: kinko dev's bank simulator still answers after Ctrl-C", i+1)
		}
		if ethRPC() == nil {
			t.Errorf("start %d: kinko dev's geth still answers at %s after Ctrl-C", i+1, m[1])
		}
		if !strings.Contains(dev.LogTail(4000), "stopping: the API, then the signers, the watcher and the node, then the bank and provider simulators, then the core") {
			t.Errorf("start %d: kinko dev did not say what it stops:\n%s", i+1, dev.LogTail(2000))
		}
		// The node it started ends with it.
		if err := waitFor(ctx, fmt.Sprintf("kinko dev's process group %d to end", pgid), func() bool { return !groupAlive(pgid) }); err != nil {
			t.Fatal(err)
		}
	}
}

// waitFor polls ok until it holds or ctx ends.
func waitFor(ctx context.Context, what string, ok func() bool) error {
	for !ok() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("itest: waiting for %s: %w", what, ctx.Err())
		case <-time.After(pollEvery):
		}
	}
	return nil
}
