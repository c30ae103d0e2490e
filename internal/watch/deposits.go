// Package watch follows the chain for kinko's wallets: it credits deposits
// once they have enough confirmations, shows the unconfirmed ones as
// pending, reverses credits whose block leaves the best chain, and journals
// where it stands so that a restart resumes there.
package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"kinko/internal/alert"
	"kinko/internal/chain"
	"kinko/internal/chain/btc"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/incident"
	"kinko/internal/ledger"
	"kinko/internal/reserves"
	"kinko/internal/wallet"
	"kinko/internal/withdraw"
)

// ErrCoreDown reports a core the watcher cannot follow.
var ErrCoreDown = errors.New("watch: core does not answer")

// AddressBook tells which of our deposit addresses a script pays:
// the cold customer wallet and receive index, recomputed from descriptors.
type AddressBook interface {
	Lookup(script []byte) (wallet, index uint32, ok bool)
}

// Chain is what the deposit watcher reads from the node of a chain of
// outputs, through the chain interface (internal/chain): blocks with
// every spend (Watch.WatchAllSpends: each input is judged against the
// journal here, so no output of ours is spent unseen for want of having
// been registered), pending transactions a whole at a time, by poll and
// by push, the addresses a deposit's coins came from (the AML deny list),
// and the output script an address pays, to find it in the books of
// scripts derived from the descriptors. *btcchain.Backend is one.
type Chain interface {
	chain.Backend
	chain.PendingSpender
	chain.SourceReader
	// Script returns the output script that addr, a canonical address of
	// the chain, pays.
	Script(addr string) ([]byte, error)
}

// Pending is a deposit seen but not yet credited.
type Pending struct {
	Outpoint      custody.Outpoint
	Wallet        uint32
	Index         uint32
	Customer      ledger.OwnerID
	Amount        uint64
	Confirmations int32 // 0 in the mempool
	BlockHash     chainhash.Hash
	Height        int32
}

// DepositConfig configures a deposit watcher.
type DepositConfig struct {
	Asset         ledger.AssetID
	Confirmations int32 // default 6
	// StartHeight is the first block to scan when nothing is journaled.
	StartHeight int32
	Poll        time.Duration // default 200ms
	Logger      *slog.Logger
	Now         func() time.Time
	// OnUnexplained, if set, is told at once of an outflow no journaled
	// ceremony or batch explains — before anything is journaled — so the
	// co-signer stops signing the asset even if the core is down.
	OnUnexplained func(asset ledger.AssetID, txid chainhash.Hash, reason string)
	// Gap is how many receive addresses of each deposit wallet ForAsset
	// watches past the last one handed out (so past the last used one),
	// as a restored wallet scans its gap limit; zero means wallet.Gap,
	// at most MaxGap.
	Gap uint32
	// Owned, if set, holds the scripts of all our wallets of the asset
	// (both branches): with it the watcher reconciles each wallet's ledger
	// account with the chain at every block.
	Owned *wallet.Book
	// Tolerance is the difference, in base units, reconciliation accepts.
	Tolerance int64
	// Reserves is the hot-share policy checked at each reconciled block;
	// reserves.DefaultPolicy if zero.
	Reserves reserves.Policy
	// Alert, if set, receives critical alerts (outflows, mismatches) and
	// warnings (a node that does not answer).
	Alert func(alert.Alert)
	// Detected, if set, is told how long each unexplained outflow took
	// from first sight to its halt being journaled.
	Detected func(time.Duration)
	// StateDir, if set, keeps on the watcher's host the outflows found and
	// not yet journaled (the core down): they are delivered, in order,
	// when it answers again, also after a restart, and the co-signers are
	// told again at start.
	StateDir string
	// OnHistory, if set, is told once that the core's journal is no
	// longer the history the watcher verified (shorter, rewritten, or its
	// chain broken).
	OnHistory func(reason string)
	// CheckpointEvery, if positive, journals a checkpoint at least this
	// often even when no block came: the core's readiness reads its age
	// to know the watcher runs (kinko core --ready-watcher-age).
	CheckpointEvery time.Duration
}

// Deposits is a deposit watcher for one asset. Run drives it; Step is one
// poll, for tests.
type Deposits struct {
	cfg   DepositConfig
	core  Core
	chain Chain
	book  AddressBook
	// watch is what the blocks and pending transactions are read for:
	// every spend, and outputs paying the deposit and owned books.
	watch *chain.Watch
	f     *chain.Follower
	log   *slog.Logger

	mu sync.Mutex // held by Step
	// checkpointed is when the last checkpoint was journaled.
	checkpointed time.Time
	inBlocks     map[custody.Outpoint]Pending // confirmed but not yet credited
	cerTxs       map[chainhash.Hash]int32     // ceremony transactions seen in blocks, by height
	// conflicts are batches whose reserved inputs another transaction
	// spent: their own transaction can never confirm.
	conflicts map[string]chainhash.Hash
	// houseIn are outputs paying a house wallet's receive addresses that
	// no ceremony or batch of ours made: the house's own coins coming in
	// (its backing), journaled as fund_house at the confirmations, before
	// reconciliation counts them.
	houseIn map[custody.Outpoint]houseIn
	// outMu guards what outflow detection keeps: outflows, seenAt,
	// reported. It is taken alone by a transaction the node notified (Seen)
	// and under mu by Step, so a theft is handled the moment the node
	// tells of it, whatever Step is doing.
	outMu sync.Mutex
	// outflows are unexplained spends of our outputs, to halt and record:
	// the outbox, kept in the state directory until journaled.
	outflows *outbox
	seenAt   map[chainhash.Hash]time.Time
	// scanned is the highest block looked at for outflows while the core
	// did not answer (the follower stays where the journal has it).
	scanned int32
	// historyTold: OnHistory was called.
	historyTold bool
	// lostTold: a reorg below the kept blocks halted deposits.
	lostTold bool
	reported map[chainhash.Hash]bool
	// view is the chain side of reconciliation (nil without Owned);
	// viewMu guards its changes against Seen's reads.
	view       *chainView
	viewMu     sync.RWMutex
	mismatched map[string]bool
	// reservesAt is the height checkReserves last ran at; reserveFlags
	// the conditions raised and not yet cleared.
	reservesAt   int32
	reserveFlags map[string]bool
	// grow, if set, keeps the books ahead of the addresses handed out.
	grow    func() error
	mempool map[chainhash.Hash][]Pending // by txid
	// wake asks Run for a step now (a block notified); sub is the node's
	// notifications, when subscribed.
	wake chan struct{}
	sub  chain.Subscription
}

// scriptSet is a book of scripts as a chain.AddressSet: an address is in
// it when the script it pays is.
type scriptSet struct {
	c    Chain
	find func(script []byte) bool
}

func (s scriptSet) Has(addr string) bool {
	script, err := s.c.Script(addr)
	return err == nil && s.find(script)
}

// HasRaw is told an output script.
func (s scriptSet) HasRaw(script []byte) bool { return s.find(script) }

// blockTx is one transaction of a block or the pool as the watcher reads
// it: its outputs paying our books, and its inputs (all of them).
type blockTx struct {
	id        chainhash.Hash
	transfers []chain.Transfer
	spends    []chain.Spend
}

// txsOf groups a block's transfers and spends by transaction, in the
// block's order; a transaction touching nothing of ours (a coinbase) is
// left out.
func txsOf(b *chain.Block) []blockTx {
	at := make(map[chain.ID]int, len(b.TxIDs))
	out := make([]blockTx, len(b.TxIDs))
	for i, id := range b.TxIDs {
		at[id] = i
		out[i].id = chainhash.Hash(id.Bytes())
	}
	slot := func(id chain.ID) *blockTx {
		i, ok := at[id]
		if !ok { // not among the block's ids: judged all the same
			i = len(out)
			at[id] = i
			out = append(out, blockTx{id: chainhash.Hash(id.Bytes())})
		}
		return &out[i]
	}
	for _, sp := range b.Spends {
		t := slot(sp.Tx)
		t.spends = append(t.spends, sp)
	}
	for _, tr := range b.Transfers {
		t := slot(tr.Tx)
		t.transfers = append(t.transfers, tr)
	}
	n := 0
	for _, t := range out {
		if len(t.spends)+len(t.transfers) > 0 {
			out[n] = t
			n++
		}
	}
	return out[:n]
}

func pendingOf(p chain.PendingTx) blockTx {
	return blockTx{id: chainhash.Hash(p.Tx.Bytes()), transfers: p.Transfers, spends: p.Spends}
}

// NewDeposits returns a deposit watcher resuming from the journaled
// checkpoint of its asset. It rescans the blocks that may still hold
// uncredited deposits.
func NewDeposits(ctx context.Context, c Core, ch Chain, book AddressBook, cfg DepositConfig) (*Deposits, error) {
	if cfg.Confirmations <= 0 {
		cfg.Confirmations = 6
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 200 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Reserves == (reserves.Policy{}) {
		cfg.Reserves = reserves.DefaultPolicy
	}
	d := &Deposits{cfg: cfg, core: c, chain: ch, book: book, log: cfg.Logger, watch: chain.NewWatch(),
		inBlocks: map[custody.Outpoint]Pending{}, cerTxs: map[chainhash.Hash]int32{}, conflicts: map[string]chainhash.Hash{}, houseIn: map[custody.Outpoint]houseIn{}, seenAt: map[chainhash.Hash]time.Time{}, reported: map[chainhash.Hash]bool{}, mempool: map[chainhash.Hash][]Pending{}, wake: make(chan struct{}, 1)}
	d.watch.WatchAllSpends()
	d.watch.AddSet(scriptSet{c: ch, find: func(script []byte) bool { _, _, ok := book.Lookup(script); return ok }})
	if cfg.Owned != nil {
		d.watch.AddSet(scriptSet{c: ch, find: func(script []byte) bool { _, ok := cfg.Owned.Find(script); return ok }})
	}
	ob, err := openOutbox(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	d.outflows = ob
	for _, o := range ob.items {
		// Not yet journaled before a restart: the co-signers are told
		// again (their halts are idempotent), the core when it answers.
		d.reported[o.TxID] = true
		d.seenAt[o.TxID] = time.Now()
		if cfg.OnUnexplained != nil {
			cfg.OnUnexplained(cfg.Asset, o.TxID, o.Why)
		}
	}
	if cfg.StartHeight < 0 {
		return nil, fmt.Errorf("watch: start height %d", cfg.StartHeight)
	}
	var cp chain.Checkpoint
	var height, held int32
	c.Read(func(s *core.State) {
		if w, ok := s.Checkpoints[cfg.Asset]; ok && w.Height >= 0 {
			height, held = w.Height, w.Held
			cp.Height = uint64(w.Height)
			for _, h := range w.Hashes {
				cp.Hashes = append(cp.Hashes, chain.NewID(chain.Bitcoin, h))
			}
		}
	})
	d.f = chain.NewFollower(ch, d.watch, cp, uint64(cfg.StartHeight), 0)
	d.mismatched = map[string]bool{}
	d.reserveFlags = map[string]bool{}
	if cfg.Owned != nil {
		// The chain view is rebuilt from the start height at every start.
		d.view = newChainView(cfg.StartHeight)
		for h := cfg.StartHeight; h <= height && len(cp.Hashes) > 0; h++ {
			hash, err := ch.HashAt(ctx, uint64(h))
			if err != nil {
				return nil, fmt.Errorf("watch: rebuild chain view: %w", err)
			}
			b, err := ch.Block(ctx, hash, d.watch)
			if err != nil {
				return nil, fmt.Errorf("watch: rebuild chain view: %w", err)
			}
			d.view.pending[h] = txsOf(b)
		}
		d.advance(height)
	}
	// Blocks within the confirmation window may hold deposits seen before
	// the restart and not yet credited, and so may those from the lowest
	// one held (kept through a halt): read them again, the kept blocks by
	// their hashes, those below by the best chain's.
	from := height - cfg.Confirmations + 1
	if held > 0 {
		from = min(from, held)
	}
	if len(cp.Hashes) > 0 {
		err := rescan(ctx, ch, d.watch, d.f, int64(max(cfg.StartHeight, from)), d.log, func(h int64, hash chain.ID, b *chain.Block) error {
			d.scanBlock(txsOf(b), chainhash.Hash(hash.Bytes()), int32(h))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return d, nil
}

// houseIn is an output paying a house wallet from outside.
type houseIn struct {
	wallet, index uint32
	amount        uint64
	hash          chainhash.Hash
	height        int32
}

// scanBlock reads the transactions of the block hash at height (txsOf).
func (d *Deposits) scanBlock(txs []blockTx, hash chainhash.Hash, height int32) {
	for _, tx := range txs {
		txid := tx.id
		var pending, ours bool
		d.core.Read(func(s *core.State) {
			c, ok := s.Custody.CeremonyByTx(txid)
			pending, ours = ok && c.State == custody.CeremonyPrepared, ok
			if b, ok := s.Withdraw.BatchByTx(txid); ok {
				ours = true
				if b.Status == withdraw.BatchSigning || b.Status == withdraw.BatchBroadcast {
					pending = true
				}
			}
		})
		if pending {
			d.cerTxs[txid] = height
		}
		if !ours {
			d.houseFunding(tx, hash, height)
		}
		d.checkOutflow(tx, fmt.Sprintf("in block %d", height))
		d.core.Read(func(s *core.State) {
			for _, in := range tx.spends {
				u, ok := s.Custody.UTXO(outpointOf(in.Prev))
				id, isBatch := strings.CutPrefix(u.Ceremony, "batch:")
				if !ok || u.State != custody.UTXOReserved || !isBatch {
					continue
				}
				if b, ok := s.Withdraw.Batch(id); ok && b.TxID != [32]byte(txid) {
					d.conflicts[id] = txid
				}
			}
		})
		for _, p := range d.match(tx) {
			p.BlockHash, p.Height = hash, height
			d.inBlocks[p.Outpoint] = p
		}
		delete(d.mempool, txid)
	}
}

// outpointOf is a chain outpoint as the journal keys its coins.
func outpointOf(op chain.Outpoint) custody.Outpoint {
	return custody.Outpoint{TxID: op.Tx.Bytes(), Vout: op.Index}
}

// value is an output's amount in satoshi (no Bitcoin output holds 2^63).
func value(t chain.Transfer) int64 {
	if t.Amount.Hi != 0 || t.Amount.Lo > 1<<63-1 {
		return 0
	}
	return int64(t.Amount.Lo)
}

// houseFunding notes the outputs of tx paying a house wallet's receive
// addresses that the journal does not hold yet.
func (d *Deposits) houseFunding(tx blockTx, hash chainhash.Hash, height int32) {
	if d.cfg.Owned == nil {
		return
	}
	for _, o := range tx.transfers {
		script, err := d.chain.Script(o.To)
		if err != nil {
			continue
		}
		p, ok := d.cfg.Owned.Find(script)
		if !ok || p.Branch != 0 || value(o) <= 0 {
			continue
		}
		op := custody.Outpoint{TxID: tx.id, Vout: o.Index}
		var house, known bool
		d.core.Read(func(s *core.State) {
			w, ok := s.Custody.Wallet(p.Wallet)
			house = ok && (w.Kind == custody.ColdHouse || w.Kind == custody.HotHouse)
			_, known = s.Custody.UTXO(op)
		})
		if house && !known {
			d.houseIn[op] = houseIn{wallet: p.Wallet, index: p.Index, amount: uint64(value(o)), hash: hash, height: height}
		}
	}
}

func (d *Deposits) match(tx blockTx) []Pending {
	var out []Pending
	for _, o := range tx.transfers {
		script, err := d.chain.Script(o.To)
		if err != nil {
			continue
		}
		w, idx, ok := d.book.Lookup(script)
		if !ok || value(o) <= 0 {
			continue
		}
		p := Pending{Outpoint: custody.Outpoint{TxID: tx.id, Vout: o.Index}, Wallet: w, Index: idx, Amount: uint64(value(o))}
		credited := false
		d.core.Read(func(s *core.State) {
			p.Customer, _ = s.Custody.AddressOwner(w, idx)
			_, credited = s.Custody.Deposit(p.Outpoint)
		})
		if !credited {
			out = append(out, p)
		}
	}
	return out
}

// Step polls the node once: follows the chain, reverses what a reorg took
// away, credits what has enough confirmations, looks at the mempool, and
// journals where it stands.
func (d *Deposits) Step(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.core.(Syncer); ok {
		if err := s.Sync(ctx); err != nil {
			if errors.Is(err, ErrHistory) && !d.historyTold {
				d.historyTold = true
				d.alert(alert.Alert{Key: "history", Severity: alert.Critical, Title: "the core's journal is not the history the watcher verified", Detail: err.Error(), Time: d.cfg.Now()})
				if d.cfg.OnHistory != nil {
					d.cfg.OnHistory(err.Error())
				}
			}
			// The core does not answer (or cannot be followed): the chain
			// is still watched, and the co-signers told at once.
			if derr := d.detect(ctx); derr != nil {
				err = fmt.Errorf("%w (and the chain: %w)", err, derr)
			}
			if herr := d.haltOutflows(ctx); herr != nil {
				d.log.Warn("halts kept until the core answers", "pending", d.outflows.len(), "err", herr)
			}
			return fmt.Errorf("%w: %w", ErrCoreDown, err)
		}
	}
	if !d.lostTold {
		d.scanned = 0
	}
	if err := d.haltOutflows(ctx); err != nil {
		return err
	}
	if d.grow != nil {
		if err := d.grow(); err != nil {
			return err
		}
	}
	// The follower moves past a block only once apply has taken it: a
	// reversal the core did not journal is tried again at the next step.
	moved := false
	err := d.f.Each(ctx, func(ev chain.FollowEvent) error {
		if err := d.apply(ctx, ev); err != nil {
			return err
		}
		moved = true
		return nil
	})
	if errors.Is(err, chain.ErrReorgTooDeep) && !d.lostTold {
		// The blocks below those kept may hold credited deposits that
		// left the best chain: deposits stay halted until a checkpoint on
		// the new best chain is journaled (kinko watch recover-reorg).
		if herr := haltDeposits(ctx, d.core, d.cfg.Now(), d.cfg.Asset, err.Error()); herr != nil {
			return errors.Join(err, herr)
		}
		d.lostTold = true
		d.alert(alert.Alert{Key: fmt.Sprintf("reorg-too-deep:%d", d.cfg.Asset), Severity: alert.Critical, Title: "reorg deeper than the blocks the watcher keeps: deposits halted", Detail: err.Error() + "; the way out: kinko watch recover-reorg (docs/custody.md)", Time: d.cfg.Now()})
	}
	if errors.Is(err, chain.ErrReorgTooDeep) {
		// Stopped where it stands, the watcher still watches: the pool
		// and the new chain's blocks are read for outflows, as while the
		// core is down.
		if derr := d.detect(ctx); derr != nil {
			err = fmt.Errorf("%w (and the chain: %w)", err, derr)
		}
		return errors.Join(err, d.haltOutflows(ctx))
	}
	if err != nil {
		return err
	}
	if err := d.creditMatured(ctx); err != nil {
		return err
	}
	if err := d.failConflicts(ctx); err != nil {
		return err
	}
	if err := d.haltOutflows(ctx); err != nil {
		return err
	}
	if d.view != nil {
		d.advance(d.height())
		if err := d.haltMismatches(ctx); err != nil {
			return err
		}
		if err := d.checkReserves(ctx); err != nil {
			return err
		}
	}
	if moved || (d.cfg.CheckpointEvery > 0 && d.cfg.Now().Sub(d.checkpointed) >= d.cfg.CheckpointEvery) {
		if err := d.checkpoint(ctx); err != nil {
			return err
		}
	}
	if err := d.scanMempool(ctx); err != nil {
		return err
	}
	return d.haltOutflows(ctx)
}

// checkOutflow looks at every input of tx: one that spends an output of
// ours is explained only by the ceremony or batch that reserved it in the
// journal, as this very transaction. Anything else is an unexplained
// outflow: the co-signer is told at once, and the step halts and records.
func (d *Deposits) checkOutflow(tx blockTx, where string) { d.check(tx, where, false) }

// height is the last block followed.
func (d *Deposits) height() int32 { return int32(d.f.Height()) }

// resyncTimeout bounds the sync made before calling a spend unexplained.
const resyncTimeout = 500 * time.Millisecond

func (d *Deposits) check(tx blockTx, where string, resynced bool) {
	d.outMu.Lock()
	defer d.outMu.Unlock()
	d.checkLocked(tx, where, resynced)
}

func (d *Deposits) checkLocked(tx blockTx, where string, resynced bool) {
	txid := tx.id
	if d.reported[txid] {
		return
	}
	prevs := make([]chain.Outpoint, len(tx.spends))
	for i, in := range tx.spends {
		prevs[i] = in.Prev
	}
	known, why, loss := d.explain(txid, prevs, where)
	if known {
		d.reported[txid] = true
		return
	}
	if why == "" {
		return
	}
	if !resynced {
		// Our replica may lag the journal by the batch the signer just
		// reserved: look again with the journal as it is now, if the core
		// answers at once; if it does not, the spend stands unexplained.
		if s, ok := d.core.(Syncer); ok {
			sctx, cancel := context.WithTimeout(context.Background(), resyncTimeout)
			err := s.Sync(sctx)
			cancel()
			if err == nil {
				d.checkLocked(tx, where, true)
				return
			}
		}
	}
	d.reported[txid] = true
	d.seenAt[txid] = time.Now()
	// The co-signers first: they need neither the core nor this host's
	// disk.
	if d.cfg.OnUnexplained != nil {
		d.cfg.OnUnexplained(d.cfg.Asset, txid, why)
	}
	// Found with a replica the core could not bring up to date: its
	// spends are kept, to look at again when the core answers.
	var spends []custody.Outpoint
	if _, syncs := d.core.(Syncer); syncs && !resynced {
		spends = make([]custody.Outpoint, len(prevs))
		for i, p := range prevs {
			spends[i] = outpointOf(p)
		}
	}
	if err := d.outflows.add(pendingOutflow{TxID: txid, Asset: d.cfg.Asset, Why: why, Loss: loss, Spends: spends}); err != nil {
		d.log.Error("could not keep an outflow on the watcher's host", "err", err)
	}
	d.alert(alert.Alert{Key: "outflow:" + txid.String(), Severity: alert.Critical, Title: "unexplained outflow", Detail: why, Time: d.cfg.Now()})
	d.log.Error("UNEXPLAINED OUTFLOW", "tx", txid, "where", where)
}

// explain looks at the outputs of ours a transaction spends (prevs):
// each is explained only by the ceremony or batch that reserved it in the
// journal, as this very transaction. why is empty when every one is; loss
// sums those that are not. known reports a transaction the journal
// already names in an incident (recorded before a restart, or by another
// watcher).
func (d *Deposits) explain(txid chainhash.Hash, prevs []chain.Outpoint, where string) (known bool, why string, loss uint64) {
	d.core.Read(func(s *core.State) {
		// Recorded before a restart, or by another watcher: the journal
		// already holds the halt and the incident.
		if known = s.Incidents.Names(txid.String()); known {
			return
		}
		for _, prev := range prevs {
			op := outpointOf(prev)
			u, ok := s.Custody.UTXO(op)
			if !ok {
				// Not in the journal's coins, but ours by the descriptors
				// (coins sent straight to a wallet): nothing can have
				// reserved it.
				if c, mine := d.viewed(prev); mine {
					if why == "" {
						why = fmt.Sprintf("transaction %s %s spends our output %s (wallet %d, %d base units, never journaled) that no withdrawal or ceremony reserved", txid, where, op, c.wallet, c.value)
					}
					loss += uint64(max(c.value, 0))
				}
				continue
			}
			if u.State == custody.UTXOSpent {
				continue
			}
			if u.State == custody.UTXOReserved {
				if id, isBatch := strings.CutPrefix(u.Ceremony, "batch:"); isBatch {
					if b, ok := s.Withdraw.Batch(id); ok && b.TxID == [32]byte(txid) {
						continue
					}
				} else if c, ok := s.Custody.Ceremony(u.Ceremony); ok && c.TxID == [32]byte(txid) {
					continue
				}
			}
			if why == "" {
				why = fmt.Sprintf("transaction %s %s spends our output %s (wallet %d) that no journaled withdrawal or ceremony reserved for it", txid, where, op, u.Wallet)
			}
			loss += u.Amount
		}
	})
	return known, why, loss
}

// viewed returns an output of ours the chain view holds.
func (d *Deposits) viewed(op chain.Outpoint) (chainOut, bool) {
	d.viewMu.RLock()
	defer d.viewMu.RUnlock()
	if d.view == nil {
		return chainOut{}, false
	}
	c, ok := d.view.utxos[op]
	return c, ok
}

// haltOutflows journals, for each unexplained outflow in the outbox, in
// the order found, the halt of the asset's withdrawals and the incident
// record with the transaction; each leaves the outbox once journaled.
func (d *Deposits) haltOutflows(ctx context.Context) error {
	d.outMu.Lock()
	defer d.outMu.Unlock()
	return d.haltOutflowsLocked(ctx)
}

func (d *Deposits) haltOutflowsLocked(ctx context.Context) error {
	if d.outflows.len() == 0 {
		return nil
	}
	// One found while the core did not answer is looked at again with the
	// journal as the core has it now: it may be our own batch, journaled
	// before its broadcast and not yet read (the core died between the
	// two). Without the core, nothing is journaled anyway.
	if s, ok := d.core.(Syncer); ok && slices.ContainsFunc(d.outflows.items, func(o pendingOutflow) bool { return len(o.Spends) > 0 }) {
		if err := s.Sync(ctx); err != nil {
			return fmt.Errorf("watch: %w: %w", ErrCoreDown, err)
		}
	}
	for d.outflows.len() > 0 {
		o := d.outflows.items[0]
		if d.explainedNow(o) {
			d.log.Warn("an outflow found while the core did not answer is explained by its journal: not halted", "tx", o.TxID, "was", o.Why)
			d.alert(alert.Alert{Key: "outflow:" + o.TxID.String(), Severity: alert.Warning, Title: "outflow explained by the journal once the core answered: not halted",
				Detail: fmt.Sprintf("transaction %s, seen as: %s; a co-signer that did not sign it may have halted (lift it on its host)", o.TxID, o.Why), Time: d.cfg.Now()})
			if err := d.outflows.pop(); err != nil {
				return err
			}
			delete(d.seenAt, o.TxID)
			continue
		}
		var code string
		d.core.Read(func(s *core.State) {
			if a, ok := s.Ledger.Asset(o.Asset); ok {
				code = a.Code
			}
		})
		for _, cmd := range []core.Command{
			core.Halt{Switch: controls.Switch{Asset: o.Asset, Service: controls.Withdraw}, Actor: "watcher", Reason: o.Why},
			core.OpenIncident{Incident: incident.Incident{ID: fmt.Sprintf("outflow-%s-%s", code, o.TxID.String()[:16]), Asset: code, Detector: "watcher", Reason: "unexplained outflow", TxIDs: []string{o.TxID.String()}, Loss: withdraw.AmountOf(o.Loss)}},
		} {
			o, err := d.core.Submit(ctx, d.cfg.Now(), cmd)
			if err == nil {
				err = o.Err
			}
			if err != nil {
				return fmt.Errorf("watch: %s: %w", cmd.Kind(), err)
			}
		}
		if err := d.outflows.pop(); err != nil {
			return err
		}
		if at, ok := d.seenAt[o.TxID]; ok && d.cfg.Detected != nil {
			d.cfg.Detected(time.Since(at))
		}
		delete(d.seenAt, o.TxID)
	}
	return nil
}

// explainedNow reports whether the journal, as the watcher's replica has
// it, now explains every spend of an outflow kept in the outbox. One kept
// without its spends (found with the journal up to date, or by an older
// watcher) is not looked at again.
func (d *Deposits) explainedNow(o pendingOutflow) bool {
	if len(o.Spends) == 0 {
		return false
	}
	prevs := make([]chain.Outpoint, len(o.Spends))
	for i, op := range o.Spends {
		prevs[i] = chain.Outpoint{Tx: chain.NewID(chain.Bitcoin, op.TxID), Index: op.Vout}
	}
	known, why, _ := d.explain(o.TxID, prevs, "")
	return !known && why == ""
}

// detect looks at the mempool and at the blocks past the follower for
// outflows, changing nothing else: what the watcher does while the core
// does not answer.
func (d *Deposits) detect(ctx context.Context) error {
	if err := d.scanMempool(ctx); err != nil {
		return err
	}
	tip, err := d.chain.Tip(ctx)
	if err != nil {
		return err
	}
	if d.scanned < d.height() {
		d.scanned = d.height()
	}
	for h := d.scanned + 1; h <= int32(min(tip.Height, 1<<31-1)); h++ {
		hash, err := d.chain.HashAt(ctx, uint64(h))
		if err != nil {
			return err
		}
		b, err := d.chain.Block(ctx, hash, d.watch)
		if err != nil {
			return err
		}
		for _, tx := range txsOf(b) {
			d.checkOutflow(tx, fmt.Sprintf("in block %d", h))
		}
		d.scanned = h
	}
	return nil
}

func (d *Deposits) alert(a alert.Alert) {
	if d.cfg.Alert != nil {
		d.cfg.Alert(a)
	}
}

func (d *Deposits) apply(ctx context.Context, ev chain.FollowEvent) error {
	height, hash := int32(ev.Ref.Height), chainhash.Hash(ev.Ref.Hash.Bytes())
	if ev.Connected {
		txs := txsOf(ev.Block)
		d.scanBlock(txs, hash, height)
		if d.view != nil {
			d.view.pending[height] = txs
		}
		return nil
	}
	if d.view != nil {
		if height <= d.view.applied {
			// Deeper than the confirmations: the view cannot be
			// unwound; start it again from the followed blocks.
			d.log.Warn("reorg below the reconciled depth; chain view reset", "height", height)
			d.viewMu.Lock()
			d.view = newChainView(d.cfg.StartHeight)
			d.viewMu.Unlock()
			d.mismatched = map[string]bool{}
		}
		delete(d.view.pending, height)
	}
	// A block left the best chain: what it held and was not yet credited
	// is forgotten; what was credited is reversed.
	for txid, h := range d.cerTxs {
		if h == height {
			delete(d.cerTxs, txid)
		}
	}
	for op, p := range d.inBlocks {
		if p.BlockHash == hash {
			delete(d.inBlocks, op)
		}
	}
	for op, h := range d.houseIn {
		if h.hash == hash {
			delete(d.houseIn, op)
		}
	}
	var credited []custody.Outpoint
	d.core.Read(func(s *core.State) {
		s.Custody.Deposits(func(dep *custody.Deposit) bool {
			if dep.BlockHash == hash && dep.State == custody.DepositCredited {
				credited = append(credited, dep.Outpoint)
			}
			return true
		})
	})
	if len(credited) == 0 {
		return nil
	}
	d.log.Warn("credited deposits reorged out; reversing and halting deposits", "block", hash, "height", height, "deposits", len(credited))
	o, err := d.core.Submit(ctx, d.cfg.Now(), core.ReverseDeposits{Outpoints: credited, Actor: "watcher",
		Reason: fmt.Sprintf("block %s at height %d left the best chain", hash, height)})
	if err == nil {
		err = o.Err
	}
	return err
}

func (d *Deposits) creditMatured(ctx context.Context) error {
	tip := d.height()
	var cers []chainhash.Hash
	for txid, h := range d.cerTxs {
		if tip-h+1 >= d.cfg.Confirmations {
			cers = append(cers, txid)
		}
	}
	sort.Slice(cers, func(i, j int) bool { return string(cers[i][:]) < string(cers[j][:]) })
	for _, txid := range cers {
		var cmd core.Command = core.ConfirmCeremony{TxID: txid, Height: d.cerTxs[txid]}
		d.core.Read(func(s *core.State) {
			if _, ok := s.Withdraw.BatchByTx(txid); ok {
				cmd = core.ConfirmBatch{TxID: txid, Height: d.cerTxs[txid]}
			}
		})
		o, err := d.core.Submit(ctx, d.cfg.Now(), cmd)
		if err == nil {
			err = o.Err
		}
		if err != nil {
			return fmt.Errorf("watch: confirm ceremony %s: %w", txid, err)
		}
		delete(d.cerTxs, txid)
	}
	if err := d.fundHouse(ctx, tip); err != nil {
		return err
	}
	var ready []custody.Seen
	for _, p := range d.inBlocks {
		if tip-p.Height+1 >= d.cfg.Confirmations {
			ready = append(ready, custody.Seen{Outpoint: p.Outpoint, Wallet: p.Wallet, Index: p.Index, Amount: p.Amount, BlockHash: p.BlockHash, Height: p.Height})
		}
	}
	if len(ready) == 0 {
		return nil
	}
	if stopped := depositsStopped(d.core, d.cfg.Asset); stopped != nil {
		// Kept, and credited once deposits are lifted.
		d.log.Info("deposits kept, not credited", "deposits", len(ready), "why", stopped)
		return nil
	}
	for i := range ready {
		review, err := d.fromDenied(ctx, chainhash.Hash(ready[i].Outpoint.TxID))
		if err != nil {
			return err
		}
		ready[i].Review = review
	}
	return creditSeen(ctx, d.core, d.cfg.Now(), ready, custody.MaxBatch,
		func(s custody.Seen) { delete(d.inBlocks, s.Outpoint) },
		func(s custody.Seen, err error) {
			d.log.Info("deposit not credited", "outpoint", s.Outpoint, "err", err)
		})
}

// creditSeen journals the deposits of ready, in a stable order (height,
// then outpoint) so the journal reads the same however a map ran, in
// batches of at most batch: taken is called with each deposit of a
// journaled batch, refused with each one the core did not credit and why.
// One the core did not credit because deposits stopped since the caller
// looked (halted, or the asset awaiting listing) is neither: it stays
// with the caller, to be credited after the lift.
func creditSeen(ctx context.Context, c Core, now time.Time, ready []custody.Seen, batch int, taken func(custody.Seen), refused func(custody.Seen, error)) error {
	sort.Slice(ready, func(i, j int) bool {
		if ready[i].Height != ready[j].Height {
			return ready[i].Height < ready[j].Height
		}
		a, b := ready[i].Outpoint, ready[j].Outpoint
		if a.TxID != b.TxID {
			return string(a.TxID[:]) < string(b.TxID[:])
		}
		return a.Vout < b.Vout
	})
	for len(ready) > 0 {
		n := min(len(ready), batch)
		o, err := c.Submit(ctx, now, core.CreditDeposits{Deposits: ready[:n]})
		if err == nil {
			err = o.Err
		}
		if err != nil {
			return fmt.Errorf("watch: credit deposits: %w", err)
		}
		var why map[uint32]error
		if res, _ := o.Value.([]custody.Result); len(res) > 0 {
			why = make(map[uint32]error, len(res))
			for _, r := range res {
				why[r.Index] = r.Err
			}
		}
		for i, s := range ready[:n] {
			err, no := why[uint32(i)]
			if no && stopsDeposits(err) {
				continue
			}
			taken(s)
			if no {
				refused(s, err)
			}
		}
		ready = ready[n:]
	}
	return nil
}

// fundHouse journals the house fundings with the confirmations, in the
// order of their wallets' receive indexes (fund_house takes each wallet's
// next). One at an index the house wallet did not hand out next is
// logged and left out: reconciliation then shows the difference.
func (d *Deposits) fundHouse(ctx context.Context, tip int32) error {
	var ready []custody.HouseFunding
	for op, h := range d.houseIn {
		if tip-h.height+1 >= d.cfg.Confirmations {
			ready = append(ready, custody.HouseFunding{Wallet: h.wallet, Outpoint: op, Index: h.index, Amount: h.amount})
		}
	}
	sort.Slice(ready, func(i, j int) bool {
		if ready[i].Wallet != ready[j].Wallet {
			return ready[i].Wallet < ready[j].Wallet
		}
		return ready[i].Index < ready[j].Index
	})
	for _, f := range ready {
		o, err := d.core.Submit(ctx, d.cfg.Now(), core.FundHouse{Funding: f})
		if err == nil {
			err = o.Err
		}
		if err != nil && !errors.Is(err, custody.ErrFundingExists) {
			d.log.Warn("house funding not recorded", "outpoint", f.Outpoint, "err", err)
		}
		delete(d.houseIn, f.Outpoint)
	}
	return nil
}

// failConflicts fails the batches whose inputs another mined transaction
// spent: their holds are voided and their withdrawals can be asked again.
func (d *Deposits) failConflicts(ctx context.Context) error {
	ids := make([]string, 0, len(d.conflicts))
	for id := range d.conflicts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		by := d.conflicts[id]
		d.log.Error("withdrawal batch double-spent; failing it", "batch", id, "spent_by", by)
		o, err := d.core.Submit(ctx, d.cfg.Now(), core.FailBatch{Batch: id, Reason: "inputs spent by transaction " + by.String()})
		if err == nil {
			err = o.Err
		}
		if err != nil && !errors.Is(err, withdraw.ErrBatchState) {
			return fmt.Errorf("watch: fail batch %s: %w", id, err)
		}
		delete(d.conflicts, id)
	}
	return nil
}

func (d *Deposits) checkpoint(ctx context.Context) error {
	cp := d.f.Checkpoint()
	w := core.WatchCheckpoint{Asset: d.cfg.Asset, Height: d.height()}
	// The node's tip, for the core to see how far behind the watcher is.
	if tip, err := d.chain.Tip(ctx); err == nil && tip.Height <= 1<<31-1 {
		w.Tip = int32(tip.Height)
	}
	// The journaled window is the confirmation window plus a margin; the
	// follower keeps more in memory.
	keep := min(len(cp.Hashes), int(d.cfg.Confirmations)+16)
	for _, h := range cp.Hashes[len(cp.Hashes)-keep:] {
		w.Hashes = append(w.Hashes, h.Bytes())
	}
	for _, p := range d.inBlocks {
		if w.Held == 0 || p.Height < w.Held {
			w.Held = p.Height
		}
	}
	o, err := d.core.Submit(ctx, d.cfg.Now(), w)
	if err == nil {
		err = o.Err
	}
	if err == nil {
		d.checkpointed = d.cfg.Now()
	}
	return err
}

func (d *Deposits) scanMempool(ctx context.Context) error {
	txs, gone, err := d.chain.PollPendingTxs(ctx, d.watch)
	if err != nil {
		return err
	}
	for _, p := range txs {
		tx := pendingOf(p)
		d.checkOutflow(tx, "in the mempool")
		if ps := d.match(tx); len(ps) > 0 {
			d.mempool[tx.id] = ps
		}
	}
	for _, id := range gone {
		delete(d.mempool, chainhash.Hash(id.Bytes()))
	}
	return nil
}

// fromDenied tells whether a deposit transaction spends an output paying
// an address on the AML deny list: such a deposit is held for review. The
// node tells what its inputs spent.
func (d *Deposits) fromDenied(ctx context.Context, txid chainhash.Hash) (bool, error) {
	var any bool
	d.core.Read(func(s *core.State) { any = len(s.AML) > 0 })
	if !any {
		return false, nil
	}
	from, err := d.chain.Sources(ctx, chain.NewID(chain.Bitcoin, txid))
	if err != nil {
		return false, fmt.Errorf("watch: deposit %s: %w", txid, err)
	}
	for _, a := range from {
		var denied bool
		d.core.Read(func(s *core.State) { _, denied = s.IsDenied(a) })
		if denied {
			d.log.Warn("deposit from a denied address held for review", "tx", txid, "from", a)
			return true, nil
		}
	}
	return false, nil
}

// Pending returns the deposits seen but not yet credited: in the mempool
// (0 confirmations) and in blocks below the required confirmations.
func (d *Deposits) Pending() []Pending {
	d.mu.Lock()
	defer d.mu.Unlock()
	tip := d.height()
	var out []Pending
	for _, ps := range d.mempool {
		out = append(out, ps...)
	}
	for _, p := range d.inBlocks {
		p.Confirmations = tip - p.Height + 1
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Outpoint.String() < out[j].Outpoint.String() })
	return out
}

// Run polls until ctx ends. A node that does not answer is logged at each
// failure and retried at the next poll.
func (d *Deposits) Run(ctx context.Context) {
	t := time.NewTimer(d.cfg.Poll)
	defer t.Stop()
	// raised is the fault alerted and not yet over: one alert per outage,
	// however many polls fail.
	var raised string
	for {
		err := d.Step(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			if raised != "" {
				d.log.Info("watcher recovered", "after", raised)
			}
			raised = ""
		} else {
			d.log.Warn("deposit watcher step failed", "err", err)
			var key, title string
			switch {
			case errors.Is(err, btc.ErrNodeDown):
				key, title = "node-down", "chain node not answering"
			case errors.Is(err, chain.ErrNodeBehind):
				key, title = "node-behind", "chain node behind the watcher (restarted or resyncing)"
			case errors.Is(err, ErrCoreDown):
				key, title = "core-down", "core not answering the watcher"
			default:
				key, title = "step-failed", "watcher step failing"
			}
			if key != raised {
				raised = key
				d.alert(alert.Alert{Key: fmt.Sprintf("%s:%d:%d", key, d.cfg.Asset, d.cfg.Now().UnixNano()), Severity: alert.Warning, Title: title, Detail: err.Error(), Time: d.cfg.Now()})
			}
		}
		// With the node's notifications up, polling only covers what a
		// gap in them missed.
		every := d.cfg.Poll
		if d.sub != nil && d.sub.Connected() {
			every = SubscribedPoll
		}
		t.Reset(every)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.wake:
		}
	}
}

// SubscribedPoll is the poll interval while the node's notifications are
// up.
const SubscribedPoll = 2 * time.Second

// DefaultCheckpointEvery is how often `kinko watch` journals a checkpoint
// when no block comes (DepositConfig.CheckpointEvery).
const DefaultCheckpointEvery = time.Minute

// seen is told of a transaction the node accepted to its mempool (by a
// subscription): a spend of our outputs no journaled batch or ceremony
// explains is handled at once, without waiting for Step — the co-signers
// told, the halt and incident journaled.
func (d *Deposits) seen(ctx context.Context, tx blockTx) {
	d.check(tx, "in the mempool", false)
	d.outMu.Lock()
	defer d.outMu.Unlock()
	if d.outflows.len() > 0 {
		if err := d.haltOutflowsLocked(ctx); err != nil {
			d.log.Warn("halts kept until the core answers", "pending", d.outflows.len(), "err", err)
		}
	}
}

// Subscribe has the node push its pool's transactions and its blocks to
// the watcher (Chain.SubscribeTxs): transactions to seen, blocks as a
// step now. Polling goes on beside it, slower while the subscription is
// up, for what a gap in the connection missed. Close the subscription
// with the watcher's Unsubscribe.
func (d *Deposits) Subscribe(ctx context.Context) error {
	sub, err := d.chain.SubscribeTxs(ctx, d.watch, func() {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}, func(p chain.PendingTx) { d.seen(ctx, pendingOf(p)) })
	if err != nil {
		return err
	}
	d.sub = sub
	return nil
}

// Unsubscribe ends the node's notifications.
func (d *Deposits) Unsubscribe() {
	if d.sub != nil {
		d.sub.Close()
	}
}
