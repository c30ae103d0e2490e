package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"

	ethereum "github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"kinko/internal/alert"
	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/incident"
	"kinko/internal/ledger"
	"kinko/internal/withdraw"
)

// WatchedSafe is a Safe the execution watcher guards, pinned in the
// watcher's own configuration (roots of trust), never read from the core.
type WatchedSafe struct {
	Name    string
	Address common.Address
	Kind    custody.WalletKind
}

// EthExecConfig configures the watcher of Safe executions.
type EthExecConfig struct {
	Asset ledger.AssetID
	Safes []WatchedSafe
	// MultiSend is the pinned MultiSendCallOnly, to read a batch's calls
	// when measuring what an execution took.
	MultiSend common.Address
	// StartBlock is the first block looked at.
	StartBlock uint64
	Logger     *slog.Logger
	Now        func() time.Time
	// OnUnexplained, if set, is told at once of an execution no journaled
	// batch holds, before anything is journaled, so the co-signers stop
	// signing the asset even if the core is down (Alarm.Halt).
	OnUnexplained func(asset ledger.AssetID, safeTxHash common.Hash, reason string)
	// Alert, if set, receives the critical alert of such an execution.
	Alert func(alert.Alert)
}

// EthExec watches every execution of our Safes in new blocks: the Safe's
// ExecutionSuccess and ExecutionFailure logs, which carry the SafeTx's
// EIP-712 hash, whoever sent execTransaction (an account or a contract).
// An execution is explained only by a journaled Ether batch of that Safe
// whose SafeTx has this hash and has not failed; any other halts the
// asset's withdrawals, opens an incident with what left the Safe, and
// tells the co-signers first. A journaled batch's execution is confirmed
// (ConfirmBatch is idempotent: the hot signer confirms it too).
type EthExec struct {
	core Core
	node *eth.Client
	cfg  EthExecConfig
	log  *slog.Logger

	mu       sync.Mutex
	next     uint64
	reported map[common.Hash]bool
	pending  []execOutflow
}

// execOutflow is an unexplained execution to journal (halt and incident).
type execOutflow struct {
	hash, tx common.Hash
	why      string
	loss     *big.Int
}

// NewEthExec returns the execution watcher of cfg.Safes on node.
func NewEthExec(c Core, node *eth.Client, cfg EthExecConfig) (*EthExec, error) {
	if len(cfg.Safes) == 0 {
		return nil, errors.New("watch: no Safe to watch")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &EthExec{core: c, node: node, cfg: cfg, log: cfg.Logger, next: cfg.StartBlock, reported: map[common.Hash]bool{}}, nil
}

// Step reads the executions of the blocks since the last step, up to the
// node's latest, and journals what they call for. It returns how many
// executions it read.
func (w *EthExec) Step(ctx context.Context) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	latest, err := w.node.BlockNumber(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	if w.next <= latest {
		addrs := make([]common.Address, len(w.cfg.Safes))
		for i, s := range w.cfg.Safes {
			addrs[i] = s.Address
		}
		cctx, cancel := context.WithTimeout(ctx, eth.CallTimeout)
		logs, err := w.node.Eth().FilterLogs(cctx, ethereum.FilterQuery{FromBlock: new(big.Int).SetUint64(w.next), ToBlock: new(big.Int).SetUint64(latest),
			Addresses: addrs, Topics: [][]common.Hash{{safe.EventExecutionSuccess, safe.EventExecutionFailure}}})
		cancel()
		if err != nil {
			return 0, fmt.Errorf("watch: the Safes' executions: %w", err)
		}
		for _, l := range logs {
			if l.Removed || len(l.Topics) != 2 {
				continue
			}
			if err := w.check(ctx, l, false); err != nil {
				return n, err
			}
			n++
		}
		w.next = latest + 1
	}
	return n, w.haltPending(ctx)
}

// Run steps every interval until ctx ends.
func (w *EthExec) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := w.Step(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("safe execution watcher", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// watched returns the pinned Safe at a.
func (w *EthExec) watched(a common.Address) (WatchedSafe, bool) {
	for _, s := range w.cfg.Safes {
		if s.Address == a {
			return s, true
		}
	}
	return WatchedSafe{}, false
}

// check looks at one execution: explained by a journaled batch (then
// confirmed if it succeeded), or kept to halt on.
func (w *EthExec) check(ctx context.Context, l types.Log, resynced bool) error {
	hash := l.Topics[1]
	if w.reported[hash] {
		return nil
	}
	var batch *withdraw.Batch
	var known bool
	w.core.Read(func(s *core.State) {
		if known = s.Incidents.Names(hash.Hex()); known {
			return
		}
		// A failed batch explains its SafeTx's ExecutionFailure (the call
		// failed and used the nonce), never an ExecutionSuccess: that
		// would pay withdrawals whose holds went back.
		if b, ok := s.Withdraw.BatchByTx([32]byte(hash)); ok && b.Safe != nil && strings.EqualFold(b.Safe.Safe, l.Address.Hex()) &&
			(b.Status != withdraw.BatchFailed || l.Topics[0] == safe.EventExecutionFailure) {
			c := *b
			batch = &c
		}
	})
	if known {
		w.reported[hash] = true
		return nil
	}
	if batch != nil {
		if l.Topics[0] == safe.EventExecutionSuccess && batch.Status != withdraw.BatchConfirmed {
			o, err := w.core.Submit(ctx, w.cfg.Now(), core.ConfirmBatch{TxID: batch.TxID, Height: int32(l.BlockNumber)})
			if err == nil {
				err = o.Err
			}
			if err != nil {
				return fmt.Errorf("watch: confirm batch %s: %w", batch.ID, err)
			}
		}
		return nil
	}
	if !resynced {
		// The replica may lag the batch the signer just journaled.
		if s, ok := w.core.(Syncer); ok {
			sctx, cancel := context.WithTimeout(ctx, resyncTimeout)
			err := s.Sync(sctx)
			cancel()
			if err == nil {
				return w.check(ctx, l, true)
			}
		}
	}
	sf, _ := w.watched(l.Address)
	loss := w.loss(ctx, l)
	why := fmt.Sprintf("the %s Safe %s (%s) executed SafeTx %s in transaction %s, block %d, that no journaled batch holds; %s wei left it",
		sf.Kind, sf.Name, l.Address.Hex(), hash.Hex(), l.TxHash.Hex(), l.BlockNumber, loss)
	w.reported[hash] = true
	// The co-signers first: they need neither the core nor this host.
	if w.cfg.OnUnexplained != nil {
		w.cfg.OnUnexplained(w.cfg.Asset, hash, why)
	}
	if w.cfg.Alert != nil {
		w.cfg.Alert(alert.Alert{Key: "safe-exec:" + hash.Hex(), Severity: alert.Critical, Title: "unexplained Safe execution", Detail: why, Time: w.cfg.Now()})
	}
	w.log.Error("UNEXPLAINED SAFE EXECUTION", "safe", l.Address, "safe_tx", hash, "tx", l.TxHash)
	w.pending = append(w.pending, execOutflow{hash: hash, tx: l.TxHash, why: why, loss: loss})
	return nil
}

// loss measures what an execution took from the Safe, in wei: the calls
// of the SafeTx when the transaction called the Safe itself and its
// SafeTx is a CALL or a batch through the pinned MultiSendCallOnly;
// otherwise (a call from a contract, a DELEGATECALL elsewhere) the Safe's
// balance drop over the execution's block.
func (w *EthExec) loss(ctx context.Context, l types.Log) *big.Int {
	cctx, cancel := context.WithTimeout(ctx, eth.CallTimeout)
	defer cancel()
	if tx, _, err := w.node.Eth().TransactionByHash(cctx, l.TxHash); err == nil && tx.To() != nil && *tx.To() == l.Address {
		if st, _, err := safe.DecodeExecTransaction(tx.Data()); err == nil {
			if calls, err := safe.Calls(st, w.cfg.MultiSend); err == nil {
				sum := new(big.Int)
				for _, c := range calls {
					sum.Add(sum, c.Value)
				}
				return sum
			}
		}
	}
	before, err1 := w.node.Eth().BalanceAt(cctx, l.Address, new(big.Int).SetUint64(l.BlockNumber-1))
	after, err2 := w.node.Eth().BalanceAt(cctx, l.Address, new(big.Int).SetUint64(l.BlockNumber))
	if err1 != nil || err2 != nil || before.Cmp(after) <= 0 {
		return new(big.Int)
	}
	return before.Sub(before, after)
}

// haltPending journals, for each unexplained execution in the order
// found, the halt of the asset's withdrawals and the incident; each leaves
// the list once journaled, so a core that does not answer gets them at
// the next step.
func (w *EthExec) haltPending(ctx context.Context) error {
	for len(w.pending) > 0 {
		o := w.pending[0]
		var code string
		w.core.Read(func(s *core.State) {
			if a, ok := s.Ledger.Asset(w.cfg.Asset); ok {
				code = a.Code
			}
		})
		loss := o.loss.Uint64()
		if !o.loss.IsUint64() {
			loss = ^uint64(0)
		}
		for _, cmd := range []core.Command{
			core.Halt{Switch: controls.Switch{Asset: w.cfg.Asset, Service: controls.Withdraw}, Actor: "watcher", Reason: o.why},
			core.OpenIncident{Incident: incident.Incident{ID: fmt.Sprintf("exec-%s-%s", code, o.hash.Hex()[2:18]), Asset: code, Detector: "watcher",
				Reason: "unexplained Safe execution", TxIDs: []string{o.hash.Hex(), o.tx.Hex()}, Loss: loss}},
		} {
			out, err := w.core.Submit(ctx, w.cfg.Now(), cmd)
			if err == nil {
				err = out.Err
			}
			if err != nil {
				return fmt.Errorf("watch: %s: %w", cmd.Kind(), err)
			}
		}
		w.pending = w.pending[1:]
	}
	return nil
}
