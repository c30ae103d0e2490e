package itest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kinko/internal/withdraw"
)

// soakKills is the number of SIGKILLs of the soak: KINKO_SOAK_KILLS, or
// 100.
func soakKills(t *testing.T) int {
	if s := os.Getenv("KINKO_SOAK_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("KINKO_SOAK_KILLS=%q", s)
		}
		return n
	}
	return 100
}

// TestCrashSoak kills the signer, the core and the co-signer at random
// (SIGKILL), each restarted at once, while customers keep asking for
// withdrawals and blocks keep coming. Afterwards every withdrawal the core
// recorded is done and paid exactly once on chain, and none is stuck.
func TestCrashSoak(t *testing.T) {
	kills := soakKills(t)
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	pol := DefaultPolicy(time.Second)
	l := pol.Limits["BTC"]
	l.TxHour, l.TxDay = 10_000, 100_000
	pol.Limits["BTC"] = l
	pol.AllAssets.TxHour, pol.AllAssets.TxDay = 10_000, 100_000
	d := Deploy(t, Options{Policy: &pol})

	const customers = 20
	var cs []*Customer
	addrs := map[*Customer]string{}
	for i := 0; i < customers; i++ {
		c, err := d.NewCustomer(ctx, fmt.Sprintf("c%d@example.jp", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Fund(ctx, c, 1_0000_0000); err != nil {
			t.Fatal(err)
		}
		addrs[c] = payee(t)
		if err := c.RegisterKey(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.Whitelist(ctx, addrs[c]); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	if _, _, err := d.Refill(ctx, "refill-1"); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitCoolDown(ctx, cs[len(cs)-1]); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var asked, refused atomic.Int64
	var seq atomic.Int64
	// Customers withdraw as fast as their second factor lets them; an
	// answer lost to a crash is not retried (the request may be in the
	// journal): the core's record is what is checked.
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread over the second factor's steps, so that batches keep
			// being made rather than all at each step.
			jitter := rand.New(rand.NewPCG(uint64(i), 7))
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(jitter.IntN(12_000)) * time.Millisecond):
				}
				n := seq.Add(1)
				w, err := c.Withdraw(ctx, fmt.Sprintf("soak-%d", n), addrs[c], uint64(10_000+n))
				asked.Add(1)
				if err != nil {
					refused.Add(1)
					if ctx.Err() != nil {
						return
					}
					time.Sleep(200 * time.Millisecond)
					c.Login(ctx) // a session may not have survived the crash of its request
					continue
				}
				if w.Status != string(withdraw.StatusQueued) {
					t.Errorf("withdrawal %s is %s: %s", w.ID, w.Status, w.Reason)
				}
			}
		}()
	}
	// Blocks keep coming.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(700 * time.Millisecond):
				d.Chain.Mine(ctx, 1)
			}
		}
	}()
	// The killer.
	killed := map[string]int{}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	t.Logf("soak: %d kills", kills)
	start := time.Now()
	for i := 0; i < kills; i++ {
		time.Sleep(time.Duration(100+rng.IntN(700)) * time.Millisecond)
		p := []*Proc{d.Signer, d.Core, d.Cosigner}[rng.IntN(3)]
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		killed[p.Name]++
		if err := p.Start(ctx); err != nil {
			t.Fatalf("restart %s after kill %d: %v\n%s", p.Name, i+1, err, p.LogTail(30))
		}
	}
	close(stop)
	wg.Wait()
	soaked := time.Since(start)

	// Every withdrawal the core recorded is paid, once.
	var all []string
	err := d.wait(ctx, "every withdrawal done", func() (bool, error) {
		// A halt of the co-signer by the watcher stops every withdrawal
		// for good (lifted only on its host): said at once, not waited
		// out.
		if st, err := d.CosignerStatus(); err == nil {
			for _, h := range st.Halts {
				if h.By == "watcher" {
					return false, fmt.Errorf("itest: the watcher halted the co-signer during the soak (%s: %s)", h.Asset, h.Reason)
				}
			}
		}
		d.Chain.Mine(ctx, 1)
		ws, err := d.Operator.Withdrawals(ctx)
		if err != nil {
			return false, nil
		}
		all = all[:0]
		for _, w := range ws {
			all = append(all, w.ID)
			if w.Status != string(withdraw.StatusDone) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		ws, _ := d.Operator.Withdrawals(ctx)
		for _, w := range ws {
			if w.Status != string(withdraw.StatusDone) {
				t.Logf("not done: %s %s %s", w.ID, w.Status, w.Reason)
			}
		}
		t.Fatal(err)
	}
	ws, err := d.Operator.Withdrawals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	paid := map[string]map[int64]int{}
	for _, c := range cs {
		outs, err := d.Chain.Outputs(ctx, addrs[c])
		if err != nil {
			t.Fatal(err)
		}
		paid[addrs[c]] = map[int64]int{}
		for _, v := range outs {
			paid[addrs[c]][v]++
		}
	}
	var total int
	for _, w := range ws {
		amt64, _ := w.Amount.Uint64()
		amt := int64(amt64)
		if n := paid[w.Address][amt]; n != 1 {
			t.Errorf("withdrawal %s of %d to %s paid %d times on chain", w.ID, amt, w.Address, n)
		}
		delete(paid[w.Address], amt)
		total++
	}
	for addr, left := range paid {
		for v, n := range left {
			t.Errorf("%d output(s) of %d to %s that no withdrawal asked for", n, v, addr)
		}
	}
	st, err := d.CosignerStatus()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Halts) != 0 {
		t.Errorf("co-signer halted after the soak: %+v", st.Halts)
	}
	t.Logf("soak: %d SIGKILLs in %v (signer %d, core %d, co-signer %d); %d requests (%d answers lost or refused); %d withdrawals recorded, all done, each paid exactly once; co-signer signed %d transactions",
		kills, soaked.Round(time.Second), killed["signer"], killed["core"], killed["cosigner"], asked.Load(), refused.Load(), total, st.Signed)
	if total == 0 {
		t.Fatal("no withdrawal was recorded: the soak did not run")
	}
}
