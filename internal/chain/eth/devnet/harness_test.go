package devnet

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain/eth"
)

// TestNodeFundsAndMines starts a node, pays an address from the developer
// account, seals empty blocks and stops it.
func TestNodeFundsAndMines(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := New(t, Options{})
	c := n.Client()
	// Mainnet's rules: geth prints its forks at start; none mainnet lacks.
	if forks := banner(t, n); !strings.Contains(forks, "- Osaka:") || strings.Contains(forks, "- Bogota:") || strings.Contains(forks, "- Amsterdam:") {
		t.Errorf("the chain's forks are not mainnet's:\n%s", forks)
	}
	if c.ChainID().Cmp(big.NewInt(ChainID)) != 0 {
		t.Fatalf("chain id = %s; want %d", c.ChainID(), ChainID)
	}
	// The WebSocket endpoint answers too.
	ws, err := eth.Dial(ctx, n.WSURL())
	if err != nil {
		t.Fatal(err)
	}
	ws.Close()

	to := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	wei, _ := new(big.Int).SetString("1234567890123456789012", 10) // more than 2^64
	r, err := n.Fund(ctx, to, wei)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Balance(ctx, to)
	if err != nil || got.Cmp(wei) != 0 {
		t.Fatalf("balance = %v, %v; want %s", got, err, wei)
	}
	if _, err := n.Fund(ctx, to, new(big.Int)); err == nil {
		t.Fatal("Fund of zero wei: no error")
	}
	last, err := n.Mine(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := r.BlockNumber.Uint64() + 3; last < want {
		t.Fatalf("Mine(3) ended at block %d; want %d or more", last, want)
	}
	if h, _ := c.BlockNumber(ctx); h < last {
		t.Fatalf("block number = %d; want %d or more", h, last)
	}
	// A key of its own, funded, sends a transaction it signed.
	k, err := n.NewKey(ctx, big.NewInt(1e18))
	if err != nil {
		t.Fatal(err)
	}
	r, err = c.Send(ctx, k, eth.Tx{To: &to, Value: big.NewInt(5)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = c.Balance(ctx, to)
	if want := new(big.Int).Add(wei, big.NewInt(5)); got.Cmp(want) != 0 {
		t.Fatalf("balance = %s; want %s", got, want)
	}
	fee := eth.Fee(r)
	left, _ := c.Balance(ctx, keyAddr(k))
	if want := new(big.Int).Sub(big.NewInt(1e18-5), fee); left.Cmp(want) != 0 {
		t.Fatalf("sender balance = %s; want 1e18 - 5 - fee %s = %s", left, fee, want)
	}

	// Only loopback listens: every port the process holds is on 127.0.0.1.
	if ports, ok := listening(t, n.cmd.Process.Pid); ok {
		// --dev drives the chain with a simulated beacon client, so the
		// engine API does not listen: HTTP and WebSocket are all there is.
		if !slices.Contains(ports, n.http) || !slices.Contains(ports, n.ws) {
			t.Errorf("geth listens on %v; want HTTP %s and WebSocket %s among them", ports, n.http, n.ws)
		}
		for _, a := range ports {
			if !strings.HasPrefix(a, "127.0.0.1:") {
				t.Errorf("geth listens on %s; want 127.0.0.1 only", a)
			}
		}
	}

	n.Stop()
	n.Stop() // idempotent
	select {
	case <-n.exited:
	default:
		t.Fatal("process still running after Stop")
	}
}

func keyAddr(k *ecdsa.PrivateKey) common.Address { return crypto.PubkeyToAddress(k.PublicKey) }

// banner returns the fork lines geth printed at start.
func banner(t *testing.T, n *Node) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.Dir(), "geth.out"))
	if err != nil {
		t.Fatal(err)
	}
	var forks []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, " - ") && strings.Contains(l, ":") && strings.Contains(l, "@") {
			forks = append(forks, strings.TrimSpace(l))
		}
	}
	return strings.Join(forks, "\n")
}

// TestRulesLatest runs geth --dev's own genesis: it has the forks the
// default leaves out, so the banner check above can tell them apart.
func TestRulesLatest(t *testing.T) {
	n := New(t, Options{Rules: Latest})
	if forks := banner(t, n); !strings.Contains(forks, "- Bogota:") {
		t.Errorf("geth --dev's own genesis without Bogota:\n%s", forks)
	}
}

// TestDurableSurvivesKill: a durable node killed (SIGKILL, no shutdown)
// comes back on its data directory with its blocks and its state: the
// payment made before the kill is there. (The same kill of a node of
// geth's defaults, pebble and the path scheme, came back at genesis here:
// both keep recent writes in memory until a clean shutdown, which is why
// kinko dev's node is durable.)
func TestDurableSurvivesKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wei := big.NewInt(1_234_567_890_123)
	for _, durable := range []bool{true} {
		dir := t.TempDir()
		n := New(t, Options{Dir: dir, Durable: durable})
		to := common.HexToAddress("0x00000000000000000000000000000000000D0A11")
		r, err := n.Fund(ctx, to, wei)
		if err != nil {
			t.Fatal(err)
		}
		n.cmd.Process.Kill()
		<-n.exited
		n2 := New(t, Options{Dir: dir, Durable: durable})
		bal, err := n2.Client().Balance(ctx, to)
		if err != nil {
			t.Fatal(err)
		}
		head, err := n2.Client().BlockNumber(ctx)
		if err != nil {
			t.Fatal(err)
		}
		kept := bal.Cmp(wei) == 0 && head >= r.BlockNumber.Uint64()
		t.Logf("durable %v: after a kill, head %d (the payment's block %d), balance %s wei", durable, head, r.BlockNumber, bal)
		if durable && !kept {
			t.Errorf("a durable node killed came back at head %d with %s wei at the payee; want block %d and %s wei", head, bal, r.BlockNumber, wei)
		}
		n2.Stop()
	}
}
