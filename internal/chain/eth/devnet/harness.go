// Package devnet starts and stops real geth nodes in their developer mode
// (`geth --dev`) for kinko's Ethereum tests, as internal/chain/btc/regtest
// does for btcd. The node binary comes from go.mod's tool directive (`go
// tool -n geth` builds it and prints its path). Nodes serve HTTP and
// WebSocket RPC on 127.0.0.1 only, on free ports, have no peer-to-peer
// networking (--dev turns it off; --nodiscover and --maxpeers 0 say so
// again), their engine API on a free loopback port and their own data
// directory. The chain id is 1337; with the default block period of 0 a
// block is sealed as soon as a transaction arrives.
//
// geth --dev's own genesis turns on every fork geth knows, including
// ones mainnet does not run (in v1.17.8, Bogota with EIP-8037's state-gas
// pricing, which makes a new account or storage slot several times
// dearer). By default the harness gives the node a genesis with
// mainnet's rules instead (Options.Rules), so that gas measured here is
// gas on mainnet.
package devnet

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain/eth"
	"kinko/internal/chain/nodetool"
)

// ChainID is the chain id of every harness node (geth's --dev network).
const ChainID = 1337

// GasLimit is the block gas limit the harness asks for: mainnet's order
// of size, so that a batch that fits here fits there.
const GasLimit = 30_000_000

// Binary returns the path of the geth binary built from go.mod's tool
// directive, or the one KINKO_GETH names.
func Binary() (string, error) {
	p, err := nodetool.Binary("geth", "KINKO_GETH", "scripts/install-test-deps.sh builds it")
	if err != nil {
		return "", fmt.Errorf("devnet: %w", err)
	}
	return p, nil
}

// freePort returns a port free on 127.0.0.1 now.
func freePort() (int, error) { return nodetool.FreePort() }

// Node is a running geth --dev node. Its developer account (geth's
// well-known dev key, unlocked in the node's keystore) holds a vast
// balance and pays for Fund and Mine.
type Node struct {
	dir      string
	http, ws string
	authPort int
	cmd      *exec.Cmd
	exited   chan struct{}
	client   *eth.Client
	dev      common.Address
	mu       sync.Mutex // one developer-account transaction at a time
	stopOnce sync.Once
}

// Rules are the protocol rules of a node's chain.
type Rules uint8

const (
	// Mainnet is the forks mainnet runs (geth v1.17.8's mainnet chainspec:
	// through Osaka; its blob-parameter forks BPO1 and BPO2 change blob
	// limits only and are left out), from the first block: geth --dev's
	// genesis without the forks mainnet has not scheduled.
	Mainnet Rules = iota
	// Latest is geth --dev's own genesis: every fork geth knows.
	Latest
)

// String names the rules.
func (r Rules) String() string {
	if r == Latest {
		return "latest (geth --dev's own genesis)"
	}
	return "mainnet (through Osaka)"
}

// DevAccount is the address of geth's well-known developer key
// (cmd/utils.DeveloperKey), the account --dev unlocks and funds.
var DevAccount = common.HexToAddress("0x71562b71999873DB5b286dF957af199Ec94617F7")

// Options configure a node.
type Options struct {
	// Dir is the node's data directory; a fresh temporary one if empty.
	Dir string
	// Period is the block period in seconds; 0 (the default) seals a block
	// as soon as a transaction is pending, and none otherwise.
	Period uint64
	// Rules are the chain's protocol rules; Mainnet by default.
	Rules Rules
	// Durable writes every block and its state to the operating system
	// as the block is imported (LevelDB, geth's hash state scheme in
	// archive mode), for a node whose data directory outlives it (kinko
	// dev): geth's defaults (Pebble's asynchronous writes, the path
	// scheme's state kept in memory) lose what a clean shutdown did not
	// write, so a node killed instead (a shutdown past Stop's grace, a
	// crash) would come back at its genesis. It must be the same at every
	// start of a data directory (the engine and scheme are chosen when it
	// is made).
	Durable bool
}

// writeGenesis initialises dir's chain with geth --dev's genesis less
// the forks mainnet does not run, the developer account funded as --dev
// funds it. geth --dev then runs on that chain (a data directory with a
// chain merged at genesis is used as it is).
func writeGenesis(bin, dir string, durable bool) error {
	g := core.DeveloperGenesisBlock(GasLimit, &DevAccount)
	cfg := *g.Config
	cfg.AmsterdamTime, cfg.BogotaTime, cfg.UBTTime = nil, nil, nil
	g.Config = &cfg
	b, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("devnet: genesis: %w", err)
	}
	path := filepath.Join(dir, "genesis.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return err
	}
	args := []string{"init", "--datadir", filepath.Join(dir, "data")}
	if durable {
		args = append(args, "--state.scheme", "hash", "--db.engine", "leveldb")
	}
	out, err := exec.Command(bin, append(args, path)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("devnet: geth init: %v: %s", err, out)
	}
	return nil
}

// Start starts a node and waits until its RPC answers.
func Start(ctx context.Context, o Options) (*Node, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "kinko-geth-*"); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(o.Dir, "data")); o.Rules == Mainnet && errors.Is(err, os.ErrNotExist) {
		if err := writeGenesis(bin, o.Dir, o.Durable); err != nil {
			return nil, err
		}
	}
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	n := &Node{dir: o.Dir, http: fmt.Sprintf("127.0.0.1:%d", ports[0]), ws: fmt.Sprintf("127.0.0.1:%d", ports[1]), authPort: ports[2]}
	logf, err := os.OpenFile(filepath.Join(n.dir, "geth.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	// debug: the call traces the Ether deposit watcher reads (on loopback only).
	const apis = "eth,net,web3,txpool,debug"
	var durable []string
	if o.Durable {
		durable = []string{"--state.scheme", "hash", "--gcmode", "archive", "--db.engine", "leveldb"}
	}
	n.cmd = exec.Command(bin, append([]string{"--dev", "--dev.period", strconv.FormatUint(o.Period, 10), "--dev.gaslimit", strconv.Itoa(GasLimit),
		"--datadir", filepath.Join(n.dir, "data"), "--ipcdisable",
		"--http", "--http.addr", "127.0.0.1", "--http.port", strconv.Itoa(ports[0]), "--http.api", apis,
		"--ws", "--ws.addr", "127.0.0.1", "--ws.port", strconv.Itoa(ports[1]), "--ws.api", apis,
		"--authrpc.addr", "127.0.0.1", "--authrpc.port", strconv.Itoa(ports[2]),
		"--nodiscover", "--maxpeers", "0", "--port", "0", "--nat", "none",
		"--verbosity", "3"}, durable...)...)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	n.cmd.SysProcAttr = sysProcAttr()
	waited, err := nodetool.Start(n.cmd)
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("devnet: start geth: %w", err)
	}
	n.exited = make(chan struct{})
	// The waiter exits when the process does.
	go func() { <-waited; logf.Close(); close(n.exited) }()
	if err := n.waitRPC(ctx); err != nil {
		n.Stop()
		return nil, err
	}
	return n, nil
}

// startTimeout bounds how long a node may take to answer its RPC.
const startTimeout = 30 * time.Second

func (n *Node) waitRPC(ctx context.Context) error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			return fmt.Errorf("devnet: geth exited at start:\n%s", n.LogTail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := eth.Dial(cctx, n.HTTPURL())
		if err == nil {
			var accs []common.Address
			err = c.RPC().CallContext(cctx, &accs, "eth_accounts")
			if err == nil && len(accs) == 0 {
				err = fmt.Errorf("devnet: no developer account")
			}
			if err == nil {
				cancel()
				if id := c.ChainID(); id.Cmp(big.NewInt(ChainID)) != 0 {
					c.Close()
					return fmt.Errorf("devnet: chain id %s, want %d", id, ChainID)
				}
				if accs[0] != DevAccount {
					c.Close()
					return fmt.Errorf("devnet: developer account %s, want %s", accs[0], DevAccount)
				}
				n.client, n.dev = c, accs[0]
				return nil
			}
			c.Close()
		}
		cancel()
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("devnet: geth RPC did not answer in %s:\n%s", startTimeout, n.LogTail())
}

// LogTail returns the end of the node's output, for error messages.
func (n *Node) LogTail() string { return nodetool.Tail(filepath.Join(n.dir, "geth.out"), 4000) }

// New starts a node for a test and stops it when the test ends; if the
// test failed, the end of the node's log goes to the test's log.
func New(t testing.TB, o Options) *Node {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := Start(ctx, o)
	if err != nil {
		t.Fatalf("start geth: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("geth log (end):\n%s", n.LogTail())
		}
		n.Stop()
	})
	return n
}

// Client returns kinko's client for the node (over HTTP).
func (n *Node) Client() *eth.Client { return n.client }

// HTTPURL returns the node's HTTP RPC endpoint.
func (n *Node) HTTPURL() string { return "http://" + n.http }

// WSURL returns the node's WebSocket RPC endpoint.
func (n *Node) WSURL() string { return "ws://" + n.ws }

// Dir returns the node's data directory.
func (n *Node) Dir() string { return n.dir }

// sendDev sends a transaction from the developer account (unlocked in the
// node) and waits until it is mined.
func (n *Node) sendDev(ctx context.Context, to common.Address, wei *big.Int) (*types.Receipt, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var h common.Hash
	cctx, cancel := context.WithTimeout(ctx, eth.CallTimeout)
	defer cancel()
	err := n.client.RPC().CallContext(cctx, &h, "eth_sendTransaction", map[string]any{
		"from": n.dev, "to": to, "value": (*hexutil.Big)(wei),
	})
	if err != nil {
		return nil, fmt.Errorf("devnet: send from the developer account: %w", err)
	}
	r, err := n.client.WaitMined(ctx, h)
	if err != nil {
		return nil, err
	}
	if r.Status != types.ReceiptStatusSuccessful {
		return r, fmt.Errorf("devnet: %w: %s", eth.ErrReverted, h)
	}
	return r, nil
}

// Fund pays wei to addr from the developer account and waits until the
// payment is mined. It returns the receipt.
func (n *Node) Fund(ctx context.Context, addr common.Address, wei *big.Int) (*types.Receipt, error) {
	if wei == nil || wei.Sign() <= 0 {
		return nil, fmt.Errorf("devnet: fund %s: amount %v is not positive", addr, wei)
	}
	return n.sendDev(ctx, addr, wei)
}

// NewKey makes a fresh key and funds its address with wei.
func (n *Node) NewKey(ctx context.Context, wei *big.Int) (*ecdsa.PrivateKey, error) {
	k, err := crypto.GenerateKey()
	if err != nil {
		return nil, err
	}
	if _, err := n.Fund(ctx, crypto.PubkeyToAddress(k.PublicKey), wei); err != nil {
		return nil, err
	}
	return k, nil
}

// Mine seals at least blocks more blocks and returns the number of the
// latest one: it sends zero-value transactions of the developer account
// to itself, since a node with period 0 seals a block only when something
// is pending (it may seal an empty one after, so the count is a floor).
func (n *Node) Mine(ctx context.Context, blocks int) (uint64, error) {
	start, err := n.client.BlockNumber(ctx)
	if err != nil {
		return 0, err
	}
	target := start + uint64(max(blocks, 0))
	last := start
	for last < target {
		r, err := n.sendDev(ctx, n.dev, new(big.Int))
		if err != nil {
			return 0, err
		}
		last = max(last, r.BlockNumber.Uint64())
		if h, err := n.client.BlockNumber(ctx); err == nil {
			last = max(last, h)
		}
	}
	return last, nil
}

// stopGrace is how long Stop waits for geth to exit after SIGINT before
// it kills it.
const stopGrace = 5 * time.Second

// Stop stops the node: an interrupt (geth's graceful shutdown), then a
// kill after five seconds. It waits for the process to exit and may be
// called again.
func (n *Node) Stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	n.stopOnce.Do(func() {
		if n.client != nil {
			n.client.Close()
		}
		select {
		case <-n.exited:
			return
		default:
		}
		n.cmd.Process.Signal(os.Interrupt)
		select {
		case <-n.exited:
		case <-time.After(stopGrace):
			n.cmd.Process.Kill()
			<-n.exited
		}
	})
}
