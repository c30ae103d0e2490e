package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	ethereum "github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient/gethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"kinko/internal/alert"
	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ethwallet"
	"kinko/internal/ethwallet/book"
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
	// Wallet is the custody wallet whose ledger account holds what the
	// Safe holds, for the reconciliation (EthRecon); 0 leaves the Safe
	// out of it.
	Wallet uint32
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
	// WSURL, if set, is the node's WebSocket endpoint: Run subscribes
	// there to the full pending transactions (eth_subscribe
	// newPendingTransactions) and halts on an unexplained
	// execTransaction of a watched Safe while it is in the node's pool,
	// before it is mined; the blocks stay the fallback.
	WSURL  string
	Logger *slog.Logger
	Now    func() time.Time
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
// whose SafeTx has this hash and has not failed, or by a journaled
// Ethereum ceremony (a refill or sweep of the offline owners) of that
// Safe whose source and payments are the wallets of the Safes pinned here
// (WatchedSafe.Wallet: the core holds the addresses the operator named,
// the watcher believes only its pins); any other halts the asset's
// withdrawals, opens an incident with what left the Safe, and tells the
// co-signers first. A journaled batch's execution is confirmed
// (ConfirmBatch is idempotent: the hot signer confirms it too), and a
// ceremony's ExecutionSuccess journals its ConfirmCeremony, which moves
// the payments between the wallets' ledger accounts.
//
// The deposit Safes are watched too: the counterfactual Safes of every
// cold customer Safe wallet of the asset on the node's chain, up to its
// next deposit index plus ethExecDepositGap, derived from the journal's
// descriptors and the SafeProxy code pinned in the safe package (an
// address commits to its owners and threshold, so the journal cannot
// point the watcher at a Safe that is not the wallet's). A deposit
// Safe's execution is explained only by the journaled sweep of that
// deposit index (Ceremony.Deposit) of that wallet, paying the wallet's
// pinned Safe; any other halts as an unexplained execution of a pinned
// Safe does.
type EthExec struct {
	core Core
	node *eth.Client
	cfg  EthExecConfig
	log  *slog.Logger

	mu       sync.Mutex
	next     uint64
	reported map[common.Hash]bool
	pending  []execOutflow
	// pooled counts the pending execTransactions of watched Safes checked.
	pooled int

	deposits *book.Book
	dmu      sync.Mutex
	dwallets []depositWallet
}

// depositWallet is a cold customer Safe wallet whose deposit Safes the
// execution watcher follows: its setup, as its descriptor names it.
type depositWallet struct {
	id  uint32
	cfg safe.Config
}

// ethExecDepositGap is how many deposit indexes past a wallet's next the
// execution watcher follows (money can be sent to an address before it
// is handed out).
const ethExecDepositGap = 20

// ethExecAddressesPerQuery bounds the addresses of one eth_getLogs.
const ethExecAddressesPerQuery = 1000

// execOutflow is an unexplained execution to journal (halt and incident).
type execOutflow struct {
	hash, tx common.Hash
	why      string
	loss     *big.Int
	// again: found while the core did not answer, haltPending looks at it
	// again with the journal as the core has it then. safe is the Safe
	// that executes it; log is the execution's event, when it was mined.
	again bool
	safe  common.Address
	log   *types.Log
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
	w := &EthExec{core: c, node: node, cfg: cfg, log: cfg.Logger, next: cfg.StartBlock, reported: map[common.Hash]bool{},
		deposits: book.New(safe.ProxyArtifacts())}
	if _, err := w.followDeposits(); err != nil {
		return nil, err
	}
	return w, nil
}

// followDeposits puts in the book the deposit Safes of every cold
// customer Safe wallet of the asset on the node's chain, up to its next
// index plus ethExecDepositGap, and returns every address to watch: the
// pinned Safes, then the deposit Safes.
func (w *EthExec) followDeposits() ([]common.Address, error) {
	type want struct {
		id   uint32
		desc ethwallet.Descriptor
		upTo uint32
	}
	var ws []want
	var bad error
	chainID := w.node.ChainID().Uint64()
	w.core.Read(func(s *core.State) {
		for _, cw := range s.Custody.Wallets() {
			if cw.Asset != w.cfg.Asset || cw.Kind != custody.ColdCustomer || !cw.Safe() {
				continue
			}
			d, err := ethwallet.Parse(cw.Descriptor)
			if err != nil {
				bad = fmt.Errorf("%w: wallet %d: %w", ErrWalletChain, cw.ID, err)
				return
			}
			if d.ChainID != chainID {
				continue
			}
			ws = append(ws, want{cw.ID, d, min(cw.NextIndex, ^uint32(0)-ethExecDepositGap) + ethExecDepositGap})
		}
	})
	if bad != nil {
		return nil, bad
	}
	w.dmu.Lock()
	defer w.dmu.Unlock()
	for _, x := range ws {
		if err := w.deposits.Add(x.id, x.desc, x.upTo); err != nil {
			return nil, fmt.Errorf("watch: the deposit Safes of wallet %d: %w", x.id, err)
		}
		known := false
		for _, dw := range w.dwallets {
			known = known || dw.id == x.id
		}
		if !known {
			cfg := safe.Config{Threshold: int(x.desc.Threshold)}
			for _, o := range x.desc.Owners {
				cfg.Owners = append(cfg.Owners, common.Address(o))
			}
			w.dwallets = append(w.dwallets, depositWallet{id: x.id, cfg: cfg})
		}
	}
	addrs := make([]common.Address, 0, len(w.cfg.Safes)+w.deposits.Len())
	for _, s := range w.cfg.Safes {
		addrs = append(addrs, s.Address)
	}
	for _, dw := range w.dwallets {
		for i := range w.deposits.Next(dw.id) {
			a, _ := w.deposits.Address(dw.id, i)
			addrs = append(addrs, a)
		}
	}
	return addrs, nil
}

// depositSafe returns the wallet and index of the deposit Safe at a, and
// the setup its wallet's descriptor names.
func (w *EthExec) depositSafe(a common.Address) (book.Place, safe.Config, bool) {
	p, ok := w.deposits.Lookup(a)
	if !ok {
		return book.Place{}, safe.Config{}, false
	}
	w.dmu.Lock()
	defer w.dmu.Unlock()
	for _, dw := range w.dwallets {
		if dw.id == p.Wallet {
			return p, dw.cfg, true
		}
	}
	return book.Place{}, safe.Config{}, false
}

// safeAt returns the pinned Safe at a, or the deposit Safe at a as a
// cold customer Safe of its wallet.
func (w *EthExec) safeAt(a common.Address) (WatchedSafe, bool) {
	if sf, ok := w.watched(a); ok {
		return sf, true
	}
	if p, _, ok := w.depositSafe(a); ok {
		return WatchedSafe{Name: fmt.Sprintf("deposit %d of wallet %d", p.Index, p.Wallet), Address: a, Kind: custody.ColdCustomer}, true
	}
	return WatchedSafe{}, false
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
		addrs, err := w.followDeposits()
		if err != nil {
			return 0, err
		}
		var logs []types.Log
		for len(addrs) > 0 {
			part := addrs[:min(len(addrs), ethExecAddressesPerQuery)]
			addrs = addrs[len(part):]
			cctx, cancel := context.WithTimeout(ctx, eth.CallTimeout)
			got, err := w.node.Eth().FilterLogs(cctx, ethereum.FilterQuery{FromBlock: new(big.Int).SetUint64(w.next), ToBlock: new(big.Int).SetUint64(latest),
				Addresses: part, Topics: [][]common.Hash{{safe.EventExecutionSuccess, safe.EventExecutionFailure}}})
			cancel()
			if err != nil {
				return 0, fmt.Errorf("watch: the Safes' executions: %w", err)
			}
			logs = append(logs, got...)
		}
		// In the chain's order, whichever query found them.
		sort.SliceStable(logs, func(i, j int) bool {
			if logs[i].BlockNumber != logs[j].BlockNumber {
				return logs[i].BlockNumber < logs[j].BlockNumber
			}
			return logs[i].Index < logs[j].Index
		})
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

// Run steps every interval until ctx ends. With WSURL it also keeps a
// subscription to the node's pending transactions, subscribing again at
// the next interval when it drops (EtherWatch.Run).
func (w *EthExec) Run(ctx context.Context, every time.Duration) {
	(&EtherWatch{Exec: w, Logger: w.log}).Run(ctx, every)
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

// lookup tells what the journal holds of the SafeTx hash executed by
// the Safe at a: known when an incident names it (already reported),
// else the journaled batch of that Safe holding it, or the journaled
// Ethereum ceremony of that Safe holding it (explains only as
// ceremonyExplained says). A failed batch explains its SafeTx's
// ExecutionFailure (the call failed and used the nonce: failure true),
// never an ExecutionSuccess: that would pay withdrawals whose holds went
// back.
func (w *EthExec) lookup(hash common.Hash, a common.Address, failure bool) (known bool, batch *withdraw.Batch, cer *custody.Ceremony) {
	w.core.Read(func(s *core.State) {
		if known = s.Incidents.Names(hash.Hex()); known {
			return
		}
		if b, ok := s.Withdraw.BatchByTx([32]byte(hash)); ok && b.Safe != nil && strings.EqualFold(b.Safe.Safe, a.Hex()) &&
			(b.Status != withdraw.BatchFailed || failure) {
			c := *b
			batch = &c
		}
		if c, ok := s.Custody.CeremonyByTx([32]byte(hash)); ok && c.Safe != nil && strings.EqualFold(c.Safe.Safe, a.Hex()) {
			cer = &c
		}
	})
	return known, batch, cer
}

// ceremonyExplained checks a journaled Ethereum ceremony executed by the
// Safe at a against the watcher's own pins (the core takes the Safes'
// addresses from the operator): a must be the pinned Safe of the
// ceremony's source wallet (or, for a deposit Safe's sweep, that
// wallet's deposit Safe of the ceremony's index, as derived here) and
// every payment's address the pinned Safe of its wallet. It returns why
// not, or "".
func (w *EthExec) ceremonyExplained(c *custody.Ceremony, a common.Address) string {
	if c.Deposit != nil {
		if p, _, ok := w.depositSafe(a); !ok || p.Wallet != c.Source || p.Index != c.Deposit.Index {
			return fmt.Sprintf("ceremony %s names the paying Safe %s as deposit Safe %d of wallet %d, which it is not", c.ID, a.Hex(), c.Deposit.Index, c.Source)
		}
	} else if sf, ok := w.watched(a); !ok || sf.Wallet != c.Source {
		return fmt.Sprintf("ceremony %s names the paying Safe %s as wallet %d's, which is not the Safe pinned for it", c.ID, a.Hex(), c.Source)
	}
	for _, p := range c.Pays {
		sf, ok := w.watched(common.HexToAddress(p.Address))
		if !ok || sf.Wallet != p.Wallet || !common.IsHexAddress(p.Address) {
			return fmt.Sprintf("ceremony %s pays %s wei to %s as wallet %d's, which is not the Safe pinned for it", c.ID, p.Amount, p.Address, p.Wallet)
		}
	}
	return ""
}

// check looks at one execution: explained by a journaled batch (then
// confirmed if it succeeded), or kept to halt on.
func (w *EthExec) check(ctx context.Context, l types.Log, resynced bool) error {
	hash := l.Topics[1]
	if w.reported[hash] {
		return nil
	}
	known, explained, note, err := w.settle(ctx, l)
	if err != nil || explained {
		return err
	}
	if known {
		w.reported[hash] = true
		return nil
	}
	if note != "" {
		resynced = true // the ceremony is journaled: no newer state explains it otherwise
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
	sf, _ := w.safeAt(l.Address)
	loss := w.loss(ctx, l)
	why := fmt.Sprintf("the %s Safe %s (%s) executed SafeTx %s in transaction %s, block %d, that no journaled batch or ceremony holds; %s wei left it",
		sf.Kind, sf.Name, l.Address.Hex(), hash.Hex(), l.TxHash.Hex(), l.BlockNumber, loss)
	if note != "" {
		why = fmt.Sprintf("the %s Safe %s (%s) executed SafeTx %s in transaction %s, block %d: %s; %s wei left it",
			sf.Kind, sf.Name, l.Address.Hex(), hash.Hex(), l.TxHash.Hex(), l.BlockNumber, note, loss)
	}
	_, syncs := w.core.(Syncer)
	w.report(execOutflow{hash: hash, tx: l.TxHash, why: why, loss: loss, again: syncs && !resynced, log: &l}, l.Address, "unexplained Safe execution")
	return nil
}

// settle looks an execution up in the journal as the watcher's replica
// has it: known if an incident already names it; explained if a journaled
// batch or ceremony holds it, and then journals what that calls for (the
// confirmation of a success); note says why a journaled ceremony does not
// explain it.
func (w *EthExec) settle(ctx context.Context, l types.Log) (known, explained bool, note string, err error) {
	known, batch, cer := w.lookup(l.Topics[1], l.Address, l.Topics[0] == safe.EventExecutionFailure)
	if known {
		return true, false, "", nil
	}
	if cer != nil && batch == nil {
		if note = w.ceremonyExplained(cer, l.Address); note != "" {
			return false, false, note, nil
		}
		// An ExecutionFailure used the nonce and moved nothing: the
		// ceremony stays prepared, never executable again.
		if l.Topics[0] == safe.EventExecutionSuccess && cer.State == custody.CeremonyPrepared {
			if err := w.confirm(ctx, core.ConfirmCeremony{TxID: cer.TxID, Height: int32(l.BlockNumber)}, "ceremony "+cer.ID); err != nil {
				return false, false, "", err
			}
		}
		return false, true, "", nil
	}
	if batch != nil {
		if l.Topics[0] == safe.EventExecutionSuccess && batch.Status != withdraw.BatchConfirmed {
			if err := w.confirm(ctx, core.ConfirmBatch{TxID: batch.TxID, Height: int32(l.BlockNumber)}, "batch "+batch.ID); err != nil {
				return false, false, "", err
			}
		}
		return false, true, "", nil
	}
	return false, false, "", nil
}

// report tells of an unexplained execution, in a block or in the pool:
// the co-signers first (they need neither the core nor this host), then
// the critical alert and the log; the halt and the incident are kept to
// journal (haltPending).
func (w *EthExec) report(o execOutflow, sf common.Address, title string) {
	o.safe = sf
	w.reported[o.hash] = true
	if w.cfg.OnUnexplained != nil {
		w.cfg.OnUnexplained(w.cfg.Asset, o.hash, o.why)
	}
	if w.cfg.Alert != nil {
		w.cfg.Alert(alert.Alert{Key: "safe-exec:" + o.hash.Hex(), Severity: alert.Critical, Title: title, Detail: o.why, Time: w.cfg.Now()})
	}
	w.log.Error(strings.ToUpper(title), "safe", sf, "safe_tx", o.hash, "tx", o.tx)
	w.pending = append(w.pending, o)
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
	if len(w.pending) == 0 {
		return nil
	}
	// One found while the core did not answer is looked at again with the
	// journal as the core has it now: it may be our own batch, journaled
	// before its execution and not yet read. Without the core, nothing is
	// journaled anyway.
	if s, ok := w.core.(Syncer); ok && slices.ContainsFunc(w.pending, func(o execOutflow) bool { return o.again }) {
		if err := s.Sync(ctx); err != nil {
			return fmt.Errorf("watch: %w: %w", ErrCoreDown, err)
		}
	}
	for len(w.pending) > 0 {
		o := w.pending[0]
		known, explained, err := w.lookAgain(ctx, o)
		if err != nil {
			return err
		}
		if known {
			// The journal holds its halt and incident already.
			w.pending = w.pending[1:]
			continue
		}
		if explained {
			w.log.Warn("an execution found while the core did not answer is explained by its journal: not halted", "safe_tx", o.hash, "was", o.why)
			if w.cfg.Alert != nil {
				w.cfg.Alert(alert.Alert{Key: "safe-exec:" + o.hash.Hex(), Severity: alert.Warning, Title: "execution explained by the journal once the core answered: not halted",
					Detail: fmt.Sprintf("SafeTx %s, seen as: %s; a co-signer that did not sign it may have halted (lift it on its host)", o.hash.Hex(), o.why), Time: w.cfg.Now()})
			}
			w.pending = w.pending[1:]
			continue
		}
		var code string
		w.core.Read(func(s *core.State) {
			if a, ok := s.Ledger.Asset(w.cfg.Asset); ok {
				code = a.Code
			}
		})
		loss, err := withdraw.AmountFromBig(o.loss)
		if err != nil {
			loss = withdraw.MaxAmount // more than 2^128-1 wei cannot leave a Safe
		}
		if err := haltAndOpen(ctx, w.core, w.cfg.Now(), w.cfg.Asset, "watcher", o.why,
			incident.Incident{ID: fmt.Sprintf("exec-%s-%s", code, o.hash.Hex()[2:18]), Asset: code, Detector: "watcher",
				Reason: "unexplained Safe execution", TxIDs: []string{o.hash.Hex(), o.tx.Hex()}, Loss: loss}); err != nil {
			return err
		}
		w.pending = w.pending[1:]
	}
	return nil
}

// confirm journals the confirmation cmd of what (a batch or ceremony).
func (w *EthExec) confirm(ctx context.Context, cmd core.Command, what string) error {
	o, err := w.core.Submit(ctx, w.cfg.Now(), cmd)
	if err == nil {
		err = o.Err
	}
	if err != nil {
		return fmt.Errorf("watch: confirm %s: %w", what, err)
	}
	return nil
}

// lookAgain looks at an execution kept to look at again (again) with the
// journal as the replica has it now (settle). One seen in the pool is
// explained by a journaled batch or ceremony that holds it; the watcher
// then forgets it was reported, so that its execution, once mined, is
// checked and confirmed.
func (w *EthExec) lookAgain(ctx context.Context, o execOutflow) (known, explained bool, err error) {
	if !o.again {
		return false, false, nil
	}
	if o.log != nil {
		known, explained, _, err = w.settle(ctx, *o.log)
		return known, explained, err
	}
	known, batch, cer := w.lookup(o.hash, o.safe, false)
	if known {
		return true, false, nil
	}
	if batch != nil || (cer != nil && w.ceremonyExplained(cer, o.safe) == "") {
		delete(w.reported, o.hash)
		return false, true, nil
	}
	return false, false, nil
}

// pendingBuffer bounds the pending transactions the subscription holds
// before the watcher reads them (the RPC client queues more, up to its
// own bound, then drops the subscription: Run subscribes again).
const pendingBuffer = 256

// PendingSubscription is the watcher's subscription to the node's full
// pending transactions (EthExec.Subscribe).
type PendingSubscription struct {
	r    *rpc.Client
	sub  ethereum.Subscription
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

// Close ends the subscription and waits for its reader to exit.
func (p *PendingSubscription) Close() error {
	p.once.Do(func() {
		close(p.quit)
		<-p.done
		p.sub.Unsubscribe()
		p.r.Close()
	})
	return nil
}

// Dropped reports whether the subscription has ended (the node closed it
// or the connection failed): blocks are then the only path until Run
// subscribes again.
func (p *PendingSubscription) Dropped() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Subscribe opens cfg.WSURL and subscribes to the node's full pending
// transactions (eth_subscribe newPendingTransactions, full). Each
// transaction calling execTransaction on a watched Safe is checked as it
// arrives, before it is mined: a SafeTx no journaled batch holds, signed
// by enough of the Safe's owners (read on the node) or that the Safe
// would execute, is an unexplained execution in the making, reported and
// journaled at once as one in a block is (the same incident, so the block
// adds nothing). Its reader exits at Close, at ctx's end or when the
// subscription fails.
func (w *EthExec) Subscribe(ctx context.Context) (*PendingSubscription, error) {
	if w.cfg.WSURL == "" {
		return nil, errors.New("watch: no websocket endpoint for pending transactions")
	}
	cctx, cancel := context.WithTimeout(ctx, eth.CallTimeout)
	defer cancel()
	r, err := rpc.DialContext(cctx, w.cfg.WSURL)
	if err != nil {
		return nil, fmt.Errorf("watch: dial %s: %w", w.cfg.WSURL, err)
	}
	txs := make(chan *types.Transaction, pendingBuffer)
	sub, err := gethclient.New(r).SubscribeFullPendingTransactions(cctx, txs)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("watch: subscribe newPendingTransactions: %w", err)
	}
	p := &PendingSubscription{r: r, sub: sub, quit: make(chan struct{}), done: make(chan struct{})}
	go func() { // exits at Close, at ctx's end or when the subscription fails
		defer close(p.done)
		for {
			select {
			case <-p.quit:
				return
			case <-ctx.Done():
				return
			case err := <-sub.Err():
				if err != nil {
					w.log.Warn("pending transactions subscription ended", "err", err)
				}
				return
			case tx := <-txs:
				if err := w.CheckPending(ctx, tx); err != nil && ctx.Err() == nil {
					w.log.Warn("pending transaction", "tx", tx.Hash(), "err", err)
				}
			}
		}
	}()
	return p, nil
}

// CheckPending looks at one transaction of the node's pool. Only a call
// of execTransaction on a watched Safe (pinned, or a deposit Safe
// followed at the last step) matters. Its calldata carries no
// nonce: the SafeTx is the one at the Safe's nonce at the latest block,
// the one before (mined meanwhile) or the one after (queued behind
// another), whichever a journaled batch holds or the signatures sign.
// One explained by a journaled batch (the hot signer's own execution) or
// already reported is left to the blocks. Any other is reported
// (co-signers first, then the alert) and the halt and incident journaled
// before it returns, if it can move the Safe's value: its signatures are
// enough distinct owners' of the Safe (so two keys have leaked, whether
// or not it gets mined), or the Safe would execute it (a call at the
// latest block succeeds, or it is mined already with the Safe's
// ExecutionSuccess). Calldata anyone can send that would execute nothing
// halts nothing.
func (w *EthExec) CheckPending(ctx context.Context, tx *types.Transaction) error {
	to := tx.To()
	if to == nil {
		return nil
	}
	sf, ok := w.safeAt(*to) // the deposit Safes as of the last step (and the gap past each wallet's next index)
	if !ok {
		return nil
	}
	st, sigs, err := safe.DecodeExecTransaction(tx.Data())
	if err != nil {
		return nil // not an execTransaction: moves nothing of the Safe's
	}
	cur, err := safe.Nonce(ctx, w.node, *to)
	if _, _, dep := w.depositSafe(*to); err != nil && dep {
		// A deposit Safe not deployed yet: its first SafeTx is at nonce 0
		// (the proxy may be deployed in the same block).
		if code, cerr := w.node.Code(ctx, *to); cerr == nil && len(code) == 0 {
			cur, err = new(big.Int), nil
		}
	}
	if err != nil {
		return fmt.Errorf("watch: the Safe's nonce: %w", err)
	}
	chainID := w.node.ChainID()
	var cands []common.Hash
	for _, d := range []int64{0, -1, 1} {
		n := new(big.Int).Add(cur, big.NewInt(d))
		if n.Sign() < 0 {
			continue
		}
		c := *st
		c.Nonce = n
		if h, err := c.Hash(chainID, *to); err == nil {
			cands = append(cands, h)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pooled++
	// explained tells whether a candidate is reported, known or a
	// journaled batch's that has not failed. A failed batch's SafeTx is
	// co-signed by our own keys, so its signatures prove nothing: it
	// halts only if the Safe would execute it successfully (paying
	// withdrawals whose holds went back), not as a replay the Safe
	// refuses or runs to ExecutionFailure.
	ours := map[common.Hash]bool{}
	explained := func() bool {
		for _, h := range cands {
			if w.reported[h] {
				return true
			}
			known, batch, cer := w.lookup(h, *to, true)
			if known {
				w.reported[h] = true
				return true
			}
			if cer != nil && batch == nil && w.ceremonyExplained(cer, *to) == "" {
				return true
			}
			if batch != nil && batch.Status != withdraw.BatchFailed {
				return true
			}
			if batch != nil {
				ours[h] = true
			}
		}
		return false
	}
	if explained() {
		return nil
	}
	// The replica may lag the batch the signer just journaled.
	stale := false
	if s, ok := w.core.(Syncer); ok {
		sctx, cancel := context.WithTimeout(ctx, resyncTimeout)
		err := s.Sync(sctx)
		cancel()
		if err == nil && explained() {
			return nil
		}
		stale = err != nil
	}
	hash, how, ok := w.canExecute(ctx, tx, *to, cands, sigs, ours)
	if !ok {
		w.log.Info("pending execTransaction of a watched Safe that would execute nothing", "safe", *to, "tx", tx.Hash())
		return nil
	}
	if w.reported[hash] {
		return nil
	}
	loss := new(big.Int)
	if calls, err := safe.Calls(st, w.cfg.MultiSend); err == nil {
		for _, c := range calls {
			loss.Add(loss, c.Value)
		}
	} else if b, err := w.node.Balance(ctx, *to); err == nil {
		loss = b // a DELEGATECALL elsewhere can take everything
	}
	why := fmt.Sprintf("the %s Safe %s (%s) is executing SafeTx %s in pending transaction %s, in the node's pool (%s), that no journaled batch holds; %s wei would leave it",
		sf.Kind, sf.Name, to.Hex(), hash.Hex(), tx.Hash().Hex(), how, loss)
	w.report(execOutflow{hash: hash, tx: tx.Hash(), why: why, loss: loss, again: stale}, *to, "unexplained Safe execution pending")
	return w.haltPending(ctx)
}

// pendingTries bounds the rounds canExecute asks the node (a receipt,
// then a call) for a transaction mined while it asks.
const pendingTries = 3

// canExecute tells whether a pending execTransaction of the Safe at a
// can move its value, which of the candidate SafeTx hashes it executes
// (cands[0] is the one at the Safe's nonce now), and how that is known.
// The signatures are not taken as proof for the hashes in ours (failed
// batches, signed by our own keys).
func (w *EthExec) canExecute(ctx context.Context, tx *types.Transaction, a common.Address, cands []common.Hash, sigs []byte, ours map[common.Hash]bool) (common.Hash, string, bool) {
	cfg, err := safe.Owners(ctx, w.node, a)
	if _, dcfg, ok := w.depositSafe(a); ok {
		// A deposit Safe's owners are its wallet's descriptor's (its
		// address commits to them), deployed or not.
		cfg, err = dcfg, nil
	}
	if err == nil {
		for _, h := range cands {
			if ours[h] {
				continue
			}
			if signers, err := safe.VerifySignatures(h, sigs, cfg.Owners, cfg.Threshold); err == nil {
				names := make([]string, len(signers))
				for i, s := range signers {
					names[i] = s.Hex()
				}
				return h, "signed by the owners " + strings.Join(names, ", "), true
			}
		}
	}
	from, err := types.Sender(types.LatestSignerForChainID(w.node.ChainID()), tx)
	if err != nil {
		return common.Hash{}, "", false
	}
	for range pendingTries {
		cctx, cancel := context.WithTimeout(ctx, eth.CallTimeout)
		r, err := w.node.Eth().TransactionReceipt(cctx, tx.Hash())
		cancel()
		if err == nil && r != nil {
			for _, l := range r.Logs {
				if l.Address == a && len(l.Topics) == 2 && l.Topics[0] == safe.EventExecutionSuccess {
					return l.Topics[1], fmt.Sprintf("mined in block %d, not yet read from the blocks", r.BlockNumber), true
				}
			}
			return common.Hash{}, "", false
		}
		// execTransaction returns true only for ExecutionSuccess: a SafeTx
		// with safeTxGas whose call fails returns false and moves nothing.
		if out, err := w.node.Call(ctx, from, a, tx.Data()); err == nil && len(out) == 32 && new(big.Int).SetBytes(out).Cmp(big.NewInt(1)) == 0 {
			return cands[0], "the Safe executes it at the latest block", true
		} else if err == nil {
			return common.Hash{}, "", false
		}
		if ctx.Err() != nil {
			break
		}
	}
	return common.Hash{}, "", false
}
