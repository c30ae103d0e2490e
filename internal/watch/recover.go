package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"kinko/internal/chain"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
)

// ErrNoDeepReorg reports a recovery asked for while the journaled
// checkpoint still meets the node's best chain: the watcher follows on
// from it by itself, unwinding what left, and nothing is to be recovered.
var ErrNoDeepReorg = errors.New("watch: the journaled checkpoint is on the node's best chain: the watcher unwinds this reorg by itself")

// ReorgRecovery is the way out of the stop a reorg below the kept blocks
// makes (chain.ErrReorgTooDeep: the watcher halted the asset's deposits
// and follows no further, because what it credited below its window may
// be gone). The journal says where every credited deposit was mined; the
// node says what its best chain holds at each of those heights. A deposit
// whose block is no longer there is reversed, and a checkpoint is
// journaled on the best chain below both the gone deposits and the
// stopped window, so that the watcher, restarted, scans every block of
// the new branch: what it holds is credited again by outpoint (a
// reversed outpoint is refused again, as after any reversal: an
// operator's case), and its outflows are judged. Deposits stay halted
// until two operators lift the halt.
type ReorgRecovery struct {
	Asset ledger.AssetID
	// Stopped is the journaled checkpoint the watcher stopped at.
	Stopped core.WatchCheckpoint
	// Gone are the credited deposits (and those held for review) whose
	// block is not on the best chain at their height, oldest first.
	Gone []custody.Deposit
	// From is the new checkpoint: one block of the best chain, the one
	// below the lowest of the gone deposits and of the stopped window.
	From chain.BlockRef
	// Tip is the node's best block when the plan was made.
	Tip chain.BlockRef
}

// PlanReorgRecovery reads the journal's state (c) and the node (b) and
// returns what RecoverReorg would journal for asset. It journals nothing.
// ErrNoDeepReorg when the journaled checkpoint meets the best chain.
func PlanReorgRecovery(ctx context.Context, c Core, b chain.Backend, asset ledger.AssetID) (*ReorgRecovery, error) {
	var cp core.WatchCheckpoint
	var ok, known bool
	var deps []custody.Deposit
	c.Read(func(s *core.State) {
		_, known = s.Ledger.Asset(asset)
		cp, ok = s.Checkpoints[asset]
		s.Custody.Deposits(func(d *custody.Deposit) bool {
			if d.State != custody.DepositCredited && d.State != custody.DepositReview {
				return true
			}
			if _, w := s.Custody.Wallet(d.Wallet); w && s.Custody.DepositAsset(d) == asset {
				deps = append(deps, *d)
			}
			return true
		})
	})
	if !known {
		return nil, fmt.Errorf("watch: asset %d is not listed", asset)
	}
	if !ok || len(cp.Hashes) == 0 {
		return nil, fmt.Errorf("watch: asset %d has no journaled checkpoint: a watcher starts from its start height", asset)
	}
	tip, err := b.Tip(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch: the node's tip: %w", err)
	}
	if tip.Height > 1<<31-1 {
		return nil, fmt.Errorf("%w: tip height %d", ErrChainData, tip.Height)
	}
	if tip.Height < uint64(cp.Height) {
		// A node restarted on a wiped database or still syncing is not a
		// reorg: nothing of what it has not reached is gone.
		return nil, fmt.Errorf("%w: node at height %d, the journaled checkpoint at %d: wait for it to catch up", chain.ErrNodeBehind, tip.Height, cp.Height)
	}
	fam := b.Family()
	// The best chain's hash at each height asked, once.
	best := map[int32]chain.ID{}
	on := func(height int32, hash [32]byte) (bool, error) {
		if height < 0 || uint64(height) > tip.Height {
			return false, nil
		}
		h, seen := best[height]
		if !seen {
			if h, err = b.HashAt(ctx, uint64(height)); err != nil {
				return false, fmt.Errorf("watch: the best chain at %d: %w", height, err)
			}
			best[height] = h
		}
		return h == chain.NewID(fam, hash), nil
	}
	base := cp.Height - int32(len(cp.Hashes)) + 1
	for i, h := range cp.Hashes {
		meets, err := on(base+int32(i), h)
		if err != nil {
			return nil, err
		}
		if meets {
			return nil, ErrNoDeepReorg
		}
	}
	r := &ReorgRecovery{Asset: asset, Stopped: cp, Tip: tip}
	from := base - 1
	for _, d := range deps {
		meets, err := on(d.Height, d.BlockHash)
		if err != nil {
			return nil, err
		}
		if !meets {
			r.Gone = append(r.Gone, d)
			from = min(from, d.Height-1)
		}
	}
	slices.SortFunc(r.Gone, func(a, b custody.Deposit) int {
		if a.Height != b.Height {
			return int(a.Height - b.Height)
		}
		if c := bytes.Compare(a.Outpoint.TxID[:], b.Outpoint.TxID[:]); c != 0 {
			return c
		}
		return int(a.Outpoint.Vout) - int(b.Outpoint.Vout)
	})
	from = max(from, 0)
	h, err := b.HashAt(ctx, uint64(from))
	if err != nil {
		return nil, fmt.Errorf("watch: the best chain at %d: %w", from, err)
	}
	r.From = chain.BlockRef{Height: uint64(from), Hash: h}
	return r, nil
}

// RecoverReorg journals r: the gone deposits reversed (one command, whole
// or not at all), then the checkpoint at r.From. Before either it checks
// again that the journaled checkpoint is still r.Stopped: a watcher, or a
// second recovery, that moved it since the plan makes the plan stale.
// Restart the watcher after it: a watcher stopped by the reorg does not
// read a checkpoint it did not journal.
func RecoverReorg(ctx context.Context, c Core, now time.Time, r *ReorgRecovery, actor string) error {
	if s, ok := c.(Syncer); ok {
		// The journal as it is now, not as when the plan was made.
		if err := s.Sync(ctx); err != nil {
			return fmt.Errorf("%w: %w", ErrCoreDown, err)
		}
	}
	var cp core.WatchCheckpoint
	c.Read(func(s *core.State) { cp = s.Checkpoints[r.Asset] })
	if cp.Height != r.Stopped.Height || !slices.Equal(cp.Hashes, r.Stopped.Hashes) {
		return fmt.Errorf("watch: the journaled checkpoint moved since the plan (now at %d): plan again", cp.Height)
	}
	if len(r.Gone) > 0 {
		ops := make([]custody.Outpoint, len(r.Gone))
		for i, d := range r.Gone {
			ops[i] = d.Outpoint
		}
		o, err := c.Submit(ctx, now, core.ReverseDeposits{Outpoints: ops, Actor: actor,
			Reason: fmt.Sprintf("their blocks left the best chain in a reorg below the watcher's kept blocks (recovered to height %d)", r.From.Height)})
		if err == nil {
			err = o.Err
		}
		if err != nil {
			return fmt.Errorf("watch: reverse deposits: %w", err)
		}
	}
	w := core.WatchCheckpoint{Asset: r.Asset, Height: int32(r.From.Height), Hashes: [][32]byte{r.From.Hash.Bytes()}, Tip: int32(r.Tip.Height)}
	if r.Stopped.Held > 0 && r.Stopped.Held <= w.Height {
		// Deposits kept through a halt below the new checkpoint are read
		// again from the best chain by the restarted watcher.
		w.Held = r.Stopped.Held
	}
	o, err := c.Submit(ctx, now, w)
	if err == nil {
		err = o.Err
	}
	if err != nil {
		return fmt.Errorf("watch: checkpoint: %w", err)
	}
	return nil
}

// rescan reads again, at a watcher's start, the blocks from height from
// to f's: those f keeps by their hashes, those below by the best chain's,
// each handed to scan. A kept block that left the best chain while the
// watcher was down and that the node no longer reads (btcd reads no block
// off its main chain) is skipped: its deposits are not to be credited, and
// the first step unwinds it, or halts on a reorg below the kept blocks.
func rescan(ctx context.Context, b chain.Backend, w *chain.Watch, f *chain.Follower, from int64, log *slog.Logger, scan func(height int64, hash chain.ID, blk *chain.Block) error) error {
	for h := from; h <= f.Height(); h++ {
		hash, kept := f.Kept(h)
		if !kept {
			var err error
			if hash, err = b.HashAt(ctx, uint64(h)); err != nil {
				return fmt.Errorf("watch: rescan block %d: %w", h, err)
			}
		}
		blk, err := b.Block(ctx, hash, w)
		if err != nil {
			if best, herr := b.HashAt(ctx, uint64(h)); herr == nil && best != hash {
				log.Warn("a kept block left the best chain while the watcher was down", "height", h, "hash", hash)
				continue
			}
			return fmt.Errorf("watch: rescan block %d: %w", h, err)
		}
		if err := scan(h, hash, blk); err != nil {
			return err
		}
	}
	return nil
}
