package core

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"kinko/internal/journal"
	"kinko/internal/ledger"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv("KINKO_CRASH_DIR"); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

// crashChild is the child process of TestCrashRecovery: it writes transfers
// under load and prints each acknowledged id, until it is killed.
func crashChild(dir string) {
	run, _ := strconv.ParseUint(os.Getenv("KINKO_CRASH_RUN"), 10, 32)
	// Balance checkpoints often, so that kills land in their writing too.
	ckptRecords, ckptFraction = 500, 1<<62
	c, err := Open(context.Background(), Config{Dir: dir, SnapshotEvery: 97})
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(3)
	}
	if head, _, _ := c.Journal().Head(); head == 0 {
		keys := []ledger.AccountKey{xemWall}
		for i := uint64(1); i <= 4; i++ {
			keys = append(keys, custXEM(i))
		}
		for _, cmd := range []Command{
			CreateAssets{Assets: []ledger.Asset{{ID: 4, Code: "XEM", Decimals: 6, Class: ledger.ClassChain}}},
			CreateCustomers{IDs: []ledger.OwnerID{1, 2, 3, 4}},
			CreateAccounts{Keys: keys},
		} {
			if o, err := c.Submit(context.Background(), t0, cmd); err != nil || o.EventErr() != nil {
				fmt.Println("setup failed:", err, o.EventErr())
				os.Exit(3)
			}
		}
	}
	fmt.Println("ready")
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := uint64(0); w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(run, w))
			for n := uint64(0); ; {
				ts := make([]ledger.Transfer, rng.IntN(64)+1)
				for i := range ts {
					n++
					ts[i] = deposit(run<<40|w<<32|n, uint64(i%4+1), 1)
				}
				o, err := c.Submit(context.Background(), time.Now(), CreateTransfers{Transfers: ts})
				if err != nil || o.EventErr() != nil {
					fmt.Println("submit failed:", err, o.EventErr())
					os.Exit(4)
				}
				mu.Lock()
				for _, t := range ts {
					fmt.Fprintf(out, "ack %d\n", t.ID.Lo)
				}
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestCrashRecovery runs the core as a child process under load, kills it
// with SIGKILL at random points, restarts it, and checks that every
// acknowledged transfer is there exactly once, the chain verifies, the
// Merkle tree is its entries', and holdings from the balance log the kills
// cut short are a full replay's at any entry.
func TestCrashRecovery(t *testing.T) {
	rounds := 12
	if testing.Short() {
		rounds = 3
	}
	dir := t.TempDir()
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	acked := map[uint64]bool{}
	for r := 1; r <= rounds; r++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "KINKO_CRASH_DIR="+dir, fmt.Sprintf("KINKO_CRASH_RUN=%d", r))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		ready := make(chan struct{})
		done := make(chan []string)
		go func() {
			var lines []string
			for sc.Scan() {
				line := sc.Text()
				if line == "ready" {
					close(ready)
					continue
				}
				lines = append(lines, line)
			}
			done <- lines
		}()
		select {
		case <-ready:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("round %d: child did not start", r)
		}
		time.Sleep(time.Duration(20+rng.IntN(300)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		lines := <-done
		cmd.Wait()
		n := 0
		for _, l := range lines {
			v, ok := strings.CutPrefix(l, "ack ")
			if !ok {
				t.Fatalf("round %d: child said %q", r, l)
			}
			id, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				// The kill can cut the last line short: that id was
				// printed only in part, so it is not counted as acked.
				continue
			}
			acked[id] = true
			n++
		}
		t.Logf("round %d: %d acknowledged before the kill", r, n)
	}
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged: the test tested nothing")
	}
	withCheckpointsEvery(t, 500)
	c, err := Open(context.Background(), Config{Dir: dir, CheckInvariants: true})
	if err != nil {
		t.Fatalf("restart after the last kill: %v", err)
	}
	defer c.Close()
	if _, err := c.Journal().Verify(CheckPayload); err != nil {
		t.Fatalf("journal verify: %v", err)
	}
	// The Merkle tree the journal kept through the kills is the one its
	// entries make, computed afresh here with transparency-dev/merkle.
	fromEntries := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	if err := c.Journal().Scan(1, func(e journal.Entry) error {
		return fromEntries.Append(rfc6962.DefaultHasher.HashLeaf(e.Hash[:]), nil)
	}); err != nil {
		t.Fatal(err)
	}
	fresh, err := fromEntries.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	if th := c.Journal().TreeHead(); th.Size != fromEntries.End() || !bytes.Equal(th.Root[:], fresh) {
		t.Fatalf("the tree after the kills is %d %s; its entries make %d %x", th.Size, th.Root, fromEntries.End(), fresh)
	}
	// Every acknowledged transfer is in the ledger and in the journal
	// exactly once.
	seen := map[uint64]int{}
	err = c.Journal().Scan(1, func(e journal.Entry) error {
		if Kind(e.Kind) != KindCreateTransfers {
			return nil
		}
		cmd, err := DecodeCommand(e.Kind, e.Payload)
		if err != nil {
			return err
		}
		for _, tr := range cmd.(CreateTransfers).Transfers {
			seen[tr.ID.Lo]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Read(func(s *State) {
		for id := range acked {
			if _, ok := s.Ledger.Transfer(ledger.ID{Lo: id}); !ok {
				t.Errorf("acknowledged transfer %d lost", id)
			}
			if seen[id] != 1 {
				t.Errorf("acknowledged transfer %d journaled %d times", id, seen[id])
			}
		}
		// Each transfer moved 1 unit: the customers hold exactly as many
		// units as there are transfers.
		var sum uint64
		for i := uint64(1); i <= 4; i++ {
			a, _ := s.Ledger.Account(custXEM(i))
			v, _ := a.Balance().Uint64()
			sum += v
		}
		if sum != uint64(s.Ledger.TransferCount()) || sum != uint64(len(seen)) {
			t.Errorf("customers hold %d units for %d transfers (%d journaled)", sum, s.Ledger.TransferCount(), len(seen))
		}
	})
	t.Logf("%d acknowledged, %d durable (the rest were durable but not yet acknowledged when killed)", len(acked), len(seen))
	<-c.balanceLogReady()
	n := checkHoldings(t, rng, dir, c.Journal(), 40, true, func(code string, seq uint64) (IndexedHoldings, error) {
		return c.HoldingsAt(context.Background(), code, seq)
	})
	t.Logf("holdings at %d moments from the balance log, as a replay gives them; %d checkpoints", n, len(ckptSeqs(dir)))
}
