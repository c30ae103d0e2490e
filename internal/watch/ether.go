package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/chain"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ethwallet"
	"kinko/internal/ethwallet/book"
	"kinko/internal/ledger"
)

// Errors of the Ether deposit watcher.
var (
	// ErrChainData reports a block from the node that contradicts itself
	// or what was asked (another height or hash, a transfer of another
	// chain, a transaction's value twice): nothing of it is taken.
	ErrChainData = errors.New("watch: inconsistent chain data from the node")
	// ErrWalletChain reports a wallet of the watched asset that is not a
	// Safe of the node's chain: the watcher does not start, or stops.
	ErrWalletChain = errors.New("watch: wallet is not a Safe of the node's chain")
)

// Bounds of the Ether deposit watcher.
const (
	// etherCreditBatch bounds the deposits of one credit_deposits command
	// (about 400 bytes each in the journal, below its 4 MiB payload).
	etherCreditBatch = 2048
	// etherKeep is how many block hashes beyond the confirmations the
	// watcher keeps to unwind a reorg (and journals).
	etherKeep = 16
	// DefaultEtherConfirmations is the confirmations an Ether deposit
	// needs by default before it is credited.
	DefaultEtherConfirmations = 12
	// DefaultEtherGap is how many addresses of each deposit wallet past
	// the last one handed out the watcher follows by default.
	DefaultEtherGap = 20
)

// EtherConfig configures an Ether deposit watcher.
type EtherConfig struct {
	Asset ledger.AssetID
	// ChainID is the node's chain id: every Safe wallet of the asset must
	// name it.
	ChainID uint64
	// Confirmations is the blocks a deposit needs, its own included,
	// before it is credited (default DefaultEtherConfirmations).
	Confirmations int32
	// StartHeight is the first block scanned when nothing is journaled
	// (at least 1: block StartHeight-1 anchors the chain followed).
	StartHeight int32
	// Gap is how many addresses past each wallet's last one handed out
	// are followed (default DefaultEtherGap), so that an address handed
	// out between two steps is watched before its first block.
	Gap    uint32
	Logger *slog.Logger
	Now    func() time.Time
	// CheckpointEvery, if positive, journals a checkpoint at least this
	// often even when no block came (as DepositConfig.CheckpointEvery): the
	// core's readiness reads its age to know the watcher runs.
	CheckpointEvery time.Duration
}

// etherPending is a deposit seen in a block and not yet credited.
type etherPending struct {
	seen     custody.Seen
	customer ledger.OwnerID
}

// EtherDeposits credits Ether sent at the top level of a transaction to
// the counterfactual Safe addresses of the asset's cold customer wallets
// (internal/ethwallet), read through the chain interface's Ethereum
// backend (internal/chain/ethchain: value of transactions that succeeded).
// It follows the best chain by parent hash from the journaled checkpoint,
// credits a deposit once its block has Confirmations (credit_deposits;
// custody credits each (transaction hash, index) once, so a restart or a
// second sighting credits nothing twice), reverses credited deposits whose
// block leaves the best chain (reverse_deposits, which halts the asset's
// deposits), halts deposits on a reorg deeper than the hashes it keeps,
// and journals a checkpoint after every block.
//
// The watcher of an asset bound to an ERC-20 contract (custody.Token)
// credits that contract's Transfer logs the same way instead
// (ether_token.go).
//
// Value moved by contracts (internal calls) is not seen: it needs the
// node's call traces (docs/ethereum.md).
//
// INVARIANT: inBlocks holds only deposits of blocks the follower keeps
// (f), none credited.
type EtherDeposits struct {
	cfg   EtherConfig
	core  Core
	b     chain.Backend
	book  *book.Book
	watch *chain.Watch

	mu sync.Mutex // held by Step
	// f follows the node's best chain, keeping keep() blocks.
	f *chain.Follower
	// lostTold: a reorg below the kept blocks halted deposits.
	lostTold bool
	inBlocks map[custody.Outpoint]etherPending
	descs    map[uint32]string // the Safe wallets added to the book
	// token is the asset's ERC-20 binding when the asset is a listed
	// token (ether_token.go); nil for Ether.
	token *custody.Token
	// checkpointed is when the last checkpoint was journaled.
	checkpointed time.Time
}

// NewEtherDeposits returns an Ether deposit watcher of cfg.Asset resuming
// from its journaled checkpoint; art are the installed Safe contracts (the
// proxy's creation code the addresses commit to). It rescans the blocks
// of the confirmation window for deposits seen before a restart and not
// yet credited.
func NewEtherDeposits(ctx context.Context, c Core, b chain.Backend, art *safe.Artifacts, cfg EtherConfig) (*EtherDeposits, error) {
	if b.Family() != chain.Ethereum {
		return nil, fmt.Errorf("watch: an Ether watcher needs an Ethereum backend, not %s", b.Family())
	}
	if cfg.ChainID == 0 {
		return nil, errors.New("watch: the node's chain id is needed")
	}
	if cfg.Confirmations <= 0 {
		cfg.Confirmations = DefaultEtherConfirmations
	}
	if cfg.StartHeight < 1 {
		cfg.StartHeight = 1
	}
	if cfg.Gap == 0 {
		cfg.Gap = DefaultEtherGap
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &EtherDeposits{cfg: cfg, core: c, b: b, book: book.New(art), watch: chain.NewWatch(),
		inBlocks: map[custody.Outpoint]etherPending{}, descs: map[uint32]string{}}
	if err := d.grow(); err != nil {
		return nil, err
	}
	var cp core.WatchCheckpoint
	var ok bool
	c.Read(func(s *core.State) { cp, ok = s.Checkpoints[cfg.Asset] })
	if ok && len(cp.Hashes) > 0 {
		resume := chain.Checkpoint{Height: uint64(cp.Height)}
		for _, h := range cp.Hashes {
			resume.Hashes = append(resume.Hashes, chain.NewID(chain.Ethereum, h))
		}
		d.f = chain.NewFollower(b, d.watch, resume, 0, d.keep())
		// Blocks within the confirmation window may hold deposits seen
		// before the restart and not yet credited, and so may those from
		// the lowest one held (kept through a halt): read them again, the
		// kept blocks by their hashes, those below by the best chain's.
		from := max(cp.Height-cfg.Confirmations+1, int32(d.f.Base()))
		if cp.Held > 0 {
			from = min(from, max(cp.Held, cfg.StartHeight))
		}
		err := rescan(ctx, b, d.watch, d.f, int64(from), cfg.Logger, func(h int64, id chain.ID, blk *chain.Block) error {
			ps, err := d.scan(blk, uint64(h), id)
			if err != nil {
				return fmt.Errorf("watch: rescan block %d: %w", h, err)
			}
			for _, p := range ps {
				d.inBlocks[p.seen.Outpoint] = p
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	// Nothing journaled: the block before the first scanned anchors the
	// chain.
	anchor := cfg.StartHeight - 1
	h, err := b.HashAt(ctx, uint64(anchor))
	if err != nil {
		return nil, fmt.Errorf("watch: anchor block %d: %w", anchor, err)
	}
	d.f = chain.NewFollower(b, d.watch, chain.Checkpoint{Height: uint64(anchor), Hashes: []chain.ID{h}}, 0, d.keep())
	return d, nil
}

// grow adds to the book and the watch set the addresses of every cold
// customer Safe wallet of the asset up to its next index plus the gap. A
// wallet of the asset that is not a Safe of the node's chain stops the
// watcher (ErrWalletChain).
func (d *EtherDeposits) grow() error {
	type want struct {
		id   uint32
		desc string
		upTo uint32
	}
	var ws []want
	var bad error
	d.core.Read(func(s *core.State) {
		if d.token == nil {
			if t, ok := s.Custody.Token(d.cfg.Asset); ok {
				d.token = &t
			}
		}
		for _, w := range s.Custody.Wallets() {
			if d.token != nil {
				// A token's deposits go to the Safe wallets of its chain.
				if w.Safe() && w.Kind == custody.ColdCustomer {
					ws = append(ws, want{w.ID, w.Descriptor, w.NextIndex + d.cfg.Gap})
				}
				continue
			}
			if w.Asset != d.cfg.Asset {
				continue
			}
			if !w.Safe() {
				bad = fmt.Errorf("%w: wallet %d's descriptor is not a Safe's", ErrWalletChain, w.ID)
				return
			}
			if w.Kind == custody.ColdCustomer {
				ws = append(ws, want{w.ID, w.Descriptor, w.NextIndex + d.cfg.Gap})
			}
		}
	})
	if bad != nil {
		return bad
	}
	if d.token != nil && d.token.ChainID != d.cfg.ChainID {
		return fmt.Errorf("%w: token %s is on chain %d, the node on %d", ErrWalletChain, d.token.Contract, d.token.ChainID, d.cfg.ChainID)
	}
	for _, w := range ws {
		desc, err := ethwallet.Parse(w.desc)
		if err != nil {
			return fmt.Errorf("%w: wallet %d: %w", ErrWalletChain, w.id, err)
		}
		if d.token != nil && desc.ChainID != d.token.ChainID {
			continue // a Safe of another chain: not where this token is
		}
		if desc.ChainID != d.cfg.ChainID {
			return fmt.Errorf("%w: wallet %d is on chain %d, the node on %d", ErrWalletChain, w.id, desc.ChainID, d.cfg.ChainID)
		}
		from := d.book.Next(w.id)
		if err := d.book.Add(w.id, desc, w.upTo); err != nil {
			return fmt.Errorf("watch: wallet %d: %w", w.id, err)
		}
		for i := from; i < w.upTo; i++ {
			a, _ := d.book.Address(w.id, i)
			if _, err := d.watch.Add(d.b, a.Hex()); err != nil {
				return fmt.Errorf("watch: wallet %d index %d: %w", w.id, i, err)
			}
		}
	}
	return nil
}

// scan returns the deposits of a block not yet credited, after checking
// the block is the one asked for: ErrChainData if anything in it
// contradicts that, and then nothing of it is taken.
func (d *EtherDeposits) scan(blk *chain.Block, height uint64, hash chain.ID) ([]etherPending, error) {
	if blk == nil || blk.Ref.Height != height || blk.Ref.Hash != hash {
		return nil, fmt.Errorf("%w: asked for block %d %s", ErrChainData, height, hash)
	}
	var out []etherPending
	seen := map[custody.Outpoint]bool{}
	for _, t := range blk.Transfers {
		if t.Tx.Family() != chain.Ethereum || t.Tx.IsZero() {
			return nil, fmt.Errorf("%w: block %d: transfer of transaction %s", ErrChainData, height, t.Tx)
		}
		if !d.ours(t) {
			continue // another asset: Ether, or another contract's log
		}
		if !common.IsHexAddress(t.To) {
			return nil, fmt.Errorf("%w: block %d: transfer to %q", ErrChainData, height, t.To)
		}
		p, ok := d.book.Lookup(common.HexToAddress(t.To))
		if !ok {
			continue // from one of ours, or to an address not ours
		}
		op, take, err := d.outpoint(t)
		if err != nil {
			return nil, fmt.Errorf("%w: block %d: %w", ErrChainData, height, err)
		}
		if !take {
			continue
		}
		if seen[op] {
			return nil, fmt.Errorf("%w: block %d: transfer %s twice", ErrChainData, height, op.EtherString())
		}
		seen[op] = true
		e := etherPending{seen: custody.Seen{Outpoint: op, Wallet: p.Wallet, Index: p.Index, Amount: t.Amount.Lo, AmountHi: t.Amount.Hi,
			Asset: d.seenAsset(), BlockHash: hash.Bytes(), Height: int32(height)}}
		var credited bool
		d.core.Read(func(s *core.State) {
			e.customer, _ = s.Custody.AddressOwner(p.Wallet, p.Index)
			_, credited = s.Custody.Deposit(op)
		})
		if !credited {
			out = append(out, e)
		}
	}
	return out, nil
}

// Step follows the node once: unwinds what left the best chain (reversing
// what was credited from it), connects new blocks, credits what has the
// confirmations and journals a checkpoint if the chain moved.
func (d *EtherDeposits) Step(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.core.(Syncer); ok {
		if err := s.Sync(ctx); err != nil {
			return fmt.Errorf("%w: %w", ErrCoreDown, err)
		}
	}
	if err := d.grow(); err != nil {
		return err
	}
	moved, err := d.follow(ctx)
	if err != nil {
		if moved {
			err = errors.Join(err, d.checkpoint(ctx))
		}
		return err
	}
	if err := d.credit(ctx); err != nil {
		return err
	}
	if moved || (d.cfg.CheckpointEvery > 0 && d.cfg.Now().Sub(d.checkpointed) >= d.cfg.CheckpointEvery) {
		return d.checkpoint(ctx)
	}
	return nil
}

// follow brings the watcher level with the node (as many blocks as one
// Follower poll connects) and tells whether it moved: it unwinds what
// left the best chain and scans each new block, as its Follower hands
// them over. A block whose data it refuses (ErrChainData) or whose
// reversal the core did not journal is not passed: the next step finds it
// again.
func (d *EtherDeposits) follow(ctx context.Context) (bool, error) {
	moved := false
	err := d.f.Each(ctx, func(e chain.FollowEvent) error {
		if !e.Connected {
			if err := d.disconnect(ctx, e.Ref.Hash); err != nil {
				return err
			}
			moved = true
			return nil
		}
		if e.Ref.Height > 1<<31-1 {
			return fmt.Errorf("%w: block height %d", ErrChainData, e.Ref.Height)
		}
		ps, err := d.scan(e.Block, e.Ref.Height, e.Ref.Hash)
		if err != nil {
			return err
		}
		for _, p := range ps {
			d.inBlocks[p.seen.Outpoint] = p
		}
		moved = true
		return nil
	})
	switch {
	case errors.Is(err, chain.ErrReorgTooDeep):
		// The journaled checkpoint stays where it was (the blocks
		// unwound were all it kept): the recovery starts from it.
		if d.lostTold {
			return false, fmt.Errorf("watch: %w: deposits halted; the way out: kinko watch recover-reorg", err)
		}
		d.lostTold = true
		reason := fmt.Sprintf("reorg deeper than the %d blocks kept: %v", d.keep(), err)
		return false, errors.Join(fmt.Errorf("watch: %w", err), haltDeposits(ctx, d.core, d.cfg.Now(), d.cfg.Asset, reason))
	case !errors.Is(err, ErrChainData) && (errors.Is(err, chain.ErrAmountRange) || errors.Is(err, chain.ErrChainData)):
		// The backend refused the block: a transfer of 2^128 base units
		// or more (no ledger amount), or a call trace no valid chain has.
		return moved, fmt.Errorf("%w: block %d: %w", ErrChainData, d.f.Height()+1, err)
	}
	return moved, err
}

// height is the last block connected.
func (d *EtherDeposits) height() int32 { return int32(d.f.Height()) }

func (d *EtherDeposits) keep() int { return int(d.cfg.Confirmations) + etherKeep }

// disconnect forgets what the block held and was not credited, and
// reverses what was credited from it.
func (d *EtherDeposits) disconnect(ctx context.Context, hash chain.ID) error {
	for op, p := range d.inBlocks {
		if p.seen.BlockHash == hash.Bytes() {
			delete(d.inBlocks, op)
		}
	}
	var credited []custody.Outpoint
	d.core.Read(func(s *core.State) {
		s.Custody.Deposits(func(dep *custody.Deposit) bool {
			if dep.BlockHash != hash.Bytes() || (dep.State != custody.DepositCredited && dep.State != custody.DepositReview) {
				return true
			}
			if _, ok := s.Custody.Wallet(dep.Wallet); ok && s.Custody.DepositAsset(dep) == d.cfg.Asset {
				credited = append(credited, dep.Outpoint)
			}
			return true
		})
	})
	if len(credited) == 0 {
		return nil
	}
	d.cfg.Logger.Warn("credited Ether deposits reorged out; reversing and halting deposits", "block", hash, "deposits", len(credited))
	o, err := d.core.Submit(ctx, d.cfg.Now(), core.ReverseDeposits{Outpoints: credited, Actor: "watcher",
		Reason: fmt.Sprintf("block %s left the best chain", hash)})
	if err == nil {
		err = o.Err
	}
	if err != nil {
		return fmt.Errorf("watch: reverse deposits: %w", err)
	}
	return nil
}

// credit journals the deposits with the confirmations, in the order of
// their blocks and transactions. While the asset's deposits are halted
// (or it awaits listing) it journals nothing and keeps them.
func (d *EtherDeposits) credit(ctx context.Context) error {
	var ready []custody.Seen
	for _, p := range d.inBlocks {
		if d.height()-p.seen.Height+1 >= d.cfg.Confirmations {
			ready = append(ready, p.seen)
		}
	}
	if len(ready) == 0 {
		return nil
	}
	if stopped := depositsStopped(d.core, d.cfg.Asset); stopped != nil {
		d.cfg.Logger.Info("Ether deposits kept, not credited", "deposits", len(ready), "why", stopped)
		return nil
	}
	return creditSeen(ctx, d.core, d.cfg.Now(), ready, etherCreditBatch,
		func(s custody.Seen) { delete(d.inBlocks, s.Outpoint) },
		func(s custody.Seen, err error) {
			d.cfg.Logger.Info("Ether deposit not credited", "tx", chain.NewID(chain.Ethereum, s.Outpoint.TxID), "err", err)
		})
}

func (d *EtherDeposits) checkpoint(ctx context.Context) error {
	cp := d.f.Checkpoint()
	w := core.WatchCheckpoint{Asset: d.cfg.Asset, Height: int32(cp.Height)}
	if tip, err := d.b.Tip(ctx); err == nil && tip.Height <= 1<<31-1 {
		w.Tip = int32(tip.Height)
	}
	for _, h := range cp.Hashes {
		w.Hashes = append(w.Hashes, h.Bytes())
	}
	for _, p := range d.inBlocks {
		if w.Held == 0 || p.seen.Height < w.Held {
			w.Held = p.seen.Height
		}
	}
	now := d.cfg.Now()
	o, err := d.core.Submit(ctx, now, w)
	if err == nil {
		err = o.Err
	}
	if err == nil {
		d.checkpointed = now
	}
	return err
}

// EtherPending is an Ether deposit seen in a block, not yet credited.
type EtherPending struct {
	Tx chain.ID
	// Vout is the deposit's index in its transaction: custody.EtherIndex
	// for the transaction's value, custody.InternalIndex for an internal
	// call's, custody.TokenIndex for a token log's.
	Vout          uint32
	Wallet, Index uint32
	Customer      ledger.OwnerID
	Amount        ledger.Amount
	Height        int32
	Confirmations int32
}

// Pending returns the deposits seen and not yet credited, by height and
// transaction.
func (d *EtherDeposits) Pending() []EtherPending {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []EtherPending
	for _, p := range d.inBlocks {
		out = append(out, EtherPending{Tx: chain.NewID(chain.Ethereum, p.seen.Outpoint.TxID), Vout: p.seen.Outpoint.Vout, Wallet: p.seen.Wallet, Index: p.seen.Index,
			Customer: p.customer, Amount: p.seen.Value(), Height: p.seen.Height, Confirmations: d.height() - p.seen.Height + 1})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Height != out[j].Height {
			return out[i].Height < out[j].Height
		}
		if out[i].Tx != out[j].Tx {
			return out[i].Tx.String() < out[j].Tx.String()
		}
		return out[i].Vout < out[j].Vout
	})
	return out
}

// Address returns the deposit address of a wallet's index, if the watcher
// follows it.
func (d *EtherDeposits) Address(wallet, index uint32) (common.Address, bool) {
	return d.book.Address(wallet, index)
}

// Run steps every poll until ctx ends; a failed step is logged and tried
// again at the next.
func (d *EtherDeposits) Run(ctx context.Context, poll time.Duration) {
	(&EtherWatch{Deposits: d, Logger: d.cfg.Logger}).Run(ctx, poll)
}
