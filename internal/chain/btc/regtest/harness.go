// Package regtest starts and stops real btcd nodes in regtest mode for
// kinko's integration tests and `kinko dev`, as btcd's own
// integration/rpctest does. The node binary comes from go.mod's tool
// directive (`go tool -n btcd` builds it and prints its path). Nodes listen on
// 127.0.0.1 only, on free ports, with their own data directory.
package regtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/chain/btc"
	"kinko/internal/chain/btcchain"
	"kinko/internal/chain/nodetool"
)

// Net is the network of every harness node.
var Net = &chaincfg.RegressionNetParams

// Binary returns the path of the btcd binary built from go.mod's tool
// directive, or the one KINKO_BTCD names.
func Binary() (string, error) {
	p, err := nodetool.Binary("btcd", "KINKO_BTCD", "scripts/install-test-deps.sh builds it")
	if err != nil {
		return "", fmt.Errorf("regtest: %w", err)
	}
	return p, nil
}

// freePort returns a port free on 127.0.0.1 now.
func freePort() (int, error) { return nodetool.FreePort() }

// SegwitHeight is the height at which btcd's regtest has segwit active: it
// activates by BIP9 signalling over three windows of 144 blocks (defined,
// started, locked in), so the harness mines past it before anything else.
const SegwitHeight = 432

// Node is a running btcd regtest node with a funded harness wallet: a
// P2WPKH key that receives every block reward.
type Node struct {
	dir      string
	p2p, rpc string
	user     string
	pass     string
	cmd      *exec.Cmd
	exited   chan struct{}
	client   *btc.Node
	key      *btcec.PrivateKey
	addr     btcutil.Address
	pkScript []byte

	mu    sync.Mutex
	spent map[wire.OutPoint]bool

	keep   bool       // the chain is archived and restored (Options.Keep)
	archMu sync.Mutex // one archiving at a time
}

// Options configure a node.
type Options struct {
	// Dir is the node's data directory; a fresh temporary one if empty.
	Dir string
	// MatureBlocks is how many blocks Start mines; default SegwitHeight,
	// after which segwit is active and coinbase coins are spendable; -1
	// for none (a node that will sync from another).
	MatureBlocks int
	// Keep keeps the chain across restarts on the same Dir: btcd deletes
	// a regtest database at start, so the harness key and the blocks are
	// kept beside it and the blocks submitted again at start.
	Keep bool
}

// Start starts a node and waits until its RPC answers.
func Start(ctx context.Context, o Options) (*Node, error) {
	if _, err := Binary(); err != nil {
		return nil, err
	}
	var err error
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "kinko-btcd-*"); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	var key *btcec.PrivateKey
	var err2 error
	if o.Keep {
		key, err2 = loadOrMakeKey(o.Dir)
	} else {
		key, err2 = btcec.NewPrivateKey()
	}
	if err2 != nil {
		return nil, err2
	}
	addr, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(key.PubKey().SerializeCompressed()), Net)
	if err != nil {
		return nil, err
	}
	pk, _ := txscript.PayToAddrScript(addr)
	n := &Node{dir: o.Dir, user: "kinko", pass: fmt.Sprintf("p%d", time.Now().UnixNano()), key: key, addr: addr, pkScript: pk, spent: map[wire.OutPoint]bool{}, keep: o.Keep}
	if err := n.launch(); err != nil {
		return nil, err
	}
	if err := n.waitRPC(ctx); err != nil {
		n.Stop()
		return nil, err
	}
	mature := o.MatureBlocks
	if mature == 0 {
		mature = SegwitHeight
	}
	if o.Keep {
		restored, err := n.restore(ctx)
		if err != nil {
			n.Stop()
			return nil, err
		}
		if err := n.markSpent(ctx); err != nil {
			n.Stop()
			return nil, err
		}
		mature -= int(restored)
	}
	if mature > 0 {
		if _, err := n.Generate(ctx, uint32(mature)); err != nil {
			n.Stop()
			return nil, err
		}
	}
	return n, nil
}

func (n *Node) launch() error {
	bin, _ := Binary()
	if n.rpc == "" { // a restart keeps its ports, as a real node does
		p2p, err := freePort()
		if err != nil {
			return err
		}
		rpc, err := freePort()
		if err != nil {
			return err
		}
		n.p2p, n.rpc = fmt.Sprintf("127.0.0.1:%d", p2p), fmt.Sprintf("127.0.0.1:%d", rpc)
	}
	logf, err := os.OpenFile(filepath.Join(n.dir, "btcd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	n.cmd = exec.Command(bin, "--regtest", "--datadir="+filepath.Join(n.dir, "data"), "--logdir="+filepath.Join(n.dir, "logs"),
		"--listen="+n.p2p, "--rpclisten="+n.rpc, "--rpcuser="+n.user, "--rpcpass="+n.pass, "--notls",
		"--miningaddr="+n.addr.EncodeAddress(), "--txindex", "--nodnsseed", "--debuglevel=info", "--maxpeers=8")
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	n.cmd.SysProcAttr = sysProcAttr()
	waited, err := nodetool.Start(n.cmd)
	if err != nil {
		logf.Close()
		return fmt.Errorf("regtest: start btcd: %w", err)
	}
	n.exited = make(chan struct{})
	// The waiter exits when the process does.
	go func() { <-waited; logf.Close(); close(n.exited) }()
	c, err := btc.Dial(btc.Config{Host: n.rpc, User: n.user, Pass: n.pass, DisableTLS: true, Net: Net})
	if err != nil {
		return err
	}
	n.client = c
	return nil
}

func (n *Node) waitRPC(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			return fmt.Errorf("regtest: btcd exited at start:\n%s", n.LogTail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, _, err := n.client.BestBlock(cctx)
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("regtest: btcd RPC did not answer in 30s:\n%s", n.LogTail())
}

// LogTail returns the end of the node's output, for error messages.
func (n *Node) LogTail() string { return nodetool.Tail(filepath.Join(n.dir, "btcd.out"), 2000) }

// New starts a node for a test and stops it when the test ends.
func New(t testing.TB, o Options) *Node {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := Start(ctx, o)
	if err != nil {
		t.Fatalf("start btcd: %v", err)
	}
	t.Cleanup(n.Stop)
	return n
}

// Client returns kinko's client for the node.
func (n *Node) Client() *btc.Node { return n.client }

// Chain returns a new Bitcoin backend of the chain interface over the
// node's client, its balances read from SegwitHeight: each caller its own,
// since a backend keeps what of the mempool it has told.
func (n *Node) Chain() *btcchain.Backend { return btcchain.New(n.client, n.Config(), SegwitHeight) }

// RPC returns the raw RPC client.
func (n *Node) RPC() *rpcclient.Client { return n.client.RPC() }

// Config returns how to reach the node's RPC.
func (n *Node) Config() btc.Config {
	return btc.Config{Host: n.rpc, User: n.user, Pass: n.pass, DisableTLS: true, Net: Net}
}

// P2PAddr returns the node's peer-to-peer address.
func (n *Node) P2PAddr() string { return n.p2p }

// Generate mines n blocks to the harness address.
func (n *Node) Generate(ctx context.Context, blocks uint32) ([]*chainhash.Hash, error) {
	type res = []*chainhash.Hash
	ch := make(chan struct {
		h   res
		err error
	}, 1)
	// The goroutine exits when the RPC returns.
	go func() {
		h, err := n.RPC().Generate(blocks)
		ch <- struct {
			h   res
			err error
		}{h, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("regtest: generate: %w", r.err)
		}
		if err := n.Archive(ctx); err != nil {
			return r.h, fmt.Errorf("regtest: archive the chain: %w", err)
		}
		return r.h, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Connect connects n to other and waits until they see each other.
func (n *Node) Connect(ctx context.Context, other *Node) error {
	if err := n.RPC().Node(btcjson.NConnect, other.p2p, nil); err != nil && !strings.Contains(err.Error(), "already") {
		return fmt.Errorf("regtest: connect: %w", err)
	}
	for ctx.Err() == nil {
		peers, err := n.RPC().GetPeerInfo()
		if err == nil && len(peers) > 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ctx.Err()
}

// Disconnect drops every peer of n and waits until it has none.
func (n *Node) Disconnect(ctx context.Context) error {
	for ctx.Err() == nil {
		peers, err := n.RPC().GetPeerInfo()
		if err != nil {
			return err
		}
		if len(peers) == 0 {
			return nil
		}
		for _, p := range peers {
			n.RPC().Node(btcjson.NDisconnect, p.Addr, nil)
			n.RPC().Node(btcjson.NRemove, p.Addr, nil)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ctx.Err()
}

// WaitSynced waits until every node has the same best block.
func WaitSynced(ctx context.Context, nodes ...*Node) error {
	for ctx.Err() == nil {
		var first chainhash.Hash
		same := true
		for i, n := range nodes {
			h, _, err := n.client.BestBlock(ctx)
			if err != nil {
				return err
			}
			if i == 0 {
				first = h
			} else if h != first {
				same = false
			}
		}
		if same {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ctx.Err()
}

// ErrNoCoins reports a harness wallet without a mature coin large enough.
var ErrNoCoins = errors.New("regtest: no mature coinbase output to spend")

// SendTo pays amount to addr from a mature coinbase output of the harness
// key, with change back to it, and broadcasts. It returns the transaction.
func (n *Node) SendTo(ctx context.Context, outputs map[string]btcutil.Amount) (*wire.MsgTx, error) {
	var total btcutil.Amount
	tx := wire.NewMsgTx(2)
	for a, v := range outputs {
		addr, err := btcutil.DecodeAddress(a, Net)
		if err != nil {
			return nil, err
		}
		pk, _ := txscript.PayToAddrScript(addr)
		tx.AddTxOut(wire.NewTxOut(int64(v), pk))
		total += v
	}
	// 10,000 satoshi, and 50 a byte for a transaction with many outputs
	// (about 43 bytes each), so that the node relays it.
	fee := btcutil.Amount(max(10_000, 50*43*len(outputs)))
	op, value, err := n.coin(ctx, total+fee)
	if err != nil {
		return nil, err
	}
	tx.AddTxIn(wire.NewTxIn(&op, nil, nil))
	if change := value - total - fee; change > 1000 {
		tx.AddTxOut(wire.NewTxOut(int64(change), n.pkScript))
	}
	fetcher := txscript.NewCannedPrevOutputFetcher(n.pkScript, int64(value))
	w, err := txscript.WitnessSignature(tx, txscript.NewTxSigHashes(tx, fetcher), 0, int64(value), n.pkScript, txscript.SigHashAll, n.key, true)
	if err != nil {
		return nil, err
	}
	tx.TxIn[0].Witness = w
	if _, err := n.client.Broadcast(ctx, tx); err != nil {
		return nil, err
	}
	return tx, nil
}

// ErrNotOurs reports a transaction input the harness key cannot spend.
var ErrNotOurs = errors.New("regtest: input not paid to the harness key")

// DoubleSpend builds a transaction that spends every input of tx (each an
// output of the harness key, as SendTo's are) back to the harness key, and
// broadcasts it to the node on: a double spend of tx, made by the owner of
// its coins, for the other branch of a fork. It returns the transaction.
func (n *Node) DoubleSpend(ctx context.Context, tx *wire.MsgTx, on *Node) (*wire.MsgTx, error) {
	ds := wire.NewMsgTx(2)
	var total int64
	values := make([]int64, len(tx.TxIn))
	for i, in := range tx.TxIn {
		prev, err := on.client.Tx(ctx, in.PreviousOutPoint.Hash)
		if err != nil {
			return nil, fmt.Errorf("regtest: double spend: input %d: %w", i, err)
		}
		if int(in.PreviousOutPoint.Index) >= len(prev.TxOut) || !bytes.Equal(prev.TxOut[in.PreviousOutPoint.Index].PkScript, n.pkScript) {
			return nil, fmt.Errorf("%w: %s", ErrNotOurs, in.PreviousOutPoint)
		}
		values[i] = prev.TxOut[in.PreviousOutPoint.Index].Value
		total += values[i]
		op := in.PreviousOutPoint
		ds.AddTxIn(wire.NewTxIn(&op, nil, nil))
	}
	const fee = 20_000 // above tx's, as a double spend pays to win
	if total <= fee+1000 {
		return nil, fmt.Errorf("regtest: double spend: inputs of %d do not pay the fee", total)
	}
	ds.AddTxOut(wire.NewTxOut(total-fee, n.pkScript))
	prevs := make(map[wire.OutPoint]*wire.TxOut, len(ds.TxIn))
	for i, in := range ds.TxIn {
		prevs[in.PreviousOutPoint] = wire.NewTxOut(values[i], n.pkScript)
	}
	hashes := txscript.NewTxSigHashes(ds, txscript.NewMultiPrevOutFetcher(prevs))
	for i := range ds.TxIn {
		w, err := txscript.WitnessSignature(ds, hashes, i, values[i], n.pkScript, txscript.SigHashAll, n.key, true)
		if err != nil {
			return nil, err
		}
		ds.TxIn[i].Witness = w
	}
	if _, err := on.client.Broadcast(ctx, ds); err != nil {
		return nil, fmt.Errorf("regtest: double spend: %w", err)
	}
	return ds, nil
}

// coin finds an unspent mature coinbase output of at least min.
func (n *Node) coin(ctx context.Context, min btcutil.Amount) (wire.OutPoint, btcutil.Amount, error) {
	_, height, err := n.client.BestBlock(ctx)
	if err != nil {
		return wire.OutPoint{}, 0, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for h := int32(1); h <= height-100; h++ {
		hash, err := n.client.BlockHash(ctx, h)
		if err != nil {
			return wire.OutPoint{}, 0, err
		}
		b, err := n.client.Block(ctx, hash)
		if err != nil {
			return wire.OutPoint{}, 0, err
		}
		cb := b.Transactions[0]
		for i, o := range cb.TxOut {
			op := wire.OutPoint{Hash: cb.TxHash(), Index: uint32(i)}
			if bytes.Equal(o.PkScript, n.pkScript) && btcutil.Amount(o.Value) >= min && !n.spent[op] {
				n.spent[op] = true
				return op, btcutil.Amount(o.Value), nil
			}
		}
	}
	return wire.OutPoint{}, 0, ErrNoCoins
}

// Stop stops the node: a graceful stop (SIGINT, which btcd handles as its
// stop command), then a kill after five seconds. It waits for the process
// to exit and may be called again. A kept chain is archived first.
//
// The stop is a signal, not the RPC stop command: a node already exiting
// (Ctrl-C reaches a whole process group, the node with it) refuses the
// connection, and the RPC client retries a refused request for half a
// minute whatever its caller's deadline (it held kinko dev's Ctrl-C that
// long: TestCtrlCStopsEveryRole).
func (n *Node) Stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.exited:
		return
	default:
	}
	if n.keep {
		// Generate archives every block it mines; this catches up on any
		// other (a peer's). Bounded short: a node already exiting does
		// not answer, and waiting for it would hold the stop.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		n.Archive(ctx)
		cancel()
	}
	if err := n.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		n.cmd.Process.Kill()
	}
	select {
	case <-n.exited:
	case <-time.After(5 * time.Second):
		n.cmd.Process.Kill()
		<-n.exited
	}
	n.client.Close()
}

// Restart stops the node (if it runs) and starts it again on the same data
// directory and ports, as a node that went down and came back: clients of
// its old RPC address reconnect.
func (n *Node) Restart(ctx context.Context) error {
	n.Stop()
	if err := n.launch(); err != nil {
		return err
	}
	if err := n.waitRPC(ctx); err != nil {
		return err
	}
	if n.keep {
		_, err := n.restore(ctx)
		return err
	}
	return nil
}
