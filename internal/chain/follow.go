package chain

import (
	"context"
	"fmt"
)

// FollowEvent is a change of the best chain a Follower tells: a block
// connected (Block is it, read with the Follower's Watch) or disconnected
// (Block nil; Ref is the block that left).
type FollowEvent struct {
	Connected bool
	Ref       BlockRef
	Block     *Block
}

// Follower follows a Backend's best chain block by block, in the caller's
// own time (Each), noticing reorgs by comparing the hashes it connected
// with the node's: what a watcher that judges each block before the next
// needs, and what a Notifier runs on its own goroutine. It keeps the
// hashes of the last depth blocks it connected, and so unwinds a reorg
// that deep; a deeper one is ErrReorgTooDeep. It is not safe for
// concurrent use.
type Follower struct {
	b      Backend
	w      *Watch
	depth  int64
	height int64        // last connected height; start-1 before any
	hashes map[int64]ID // connected blocks, the last depth
	best   int64        // the node's tip at the last Each
	// lost is set by a reorg below every kept block: what to unwind is
	// unknown, so the follower stops there for good.
	lost error
}

// NewFollower returns a follower of b reading blocks with w, resuming from
// cp (its newest depth hashes), or starting at height start when cp has no
// hashes (the first block it connects is start). It keeps depth blocks,
// DefaultReorgDepth when depth is 0 or less.
func NewFollower(b Backend, w *Watch, cp Checkpoint, start uint64, depth int) *Follower {
	if depth <= 0 {
		depth = DefaultReorgDepth
	}
	f := &Follower{b: b, w: w, depth: int64(depth), height: int64(start) - 1, hashes: make(map[int64]ID)}
	if len(cp.Hashes) > 0 {
		f.height = int64(cp.Height)
		base := f.height - int64(len(cp.Hashes)) + 1
		for i, h := range cp.Hashes {
			if base+int64(i) > f.height-f.depth {
				f.hashes[base+int64(i)] = h
			}
		}
	}
	f.best = f.height
	return f
}

// Checkpoint returns where the follower stands: its kept hashes, oldest
// first.
func (f *Follower) Checkpoint() Checkpoint {
	cp := Checkpoint{Height: uint64(max(f.height, 0))}
	for h := f.height - f.depth + 1; h <= f.height; h++ {
		if v, ok := f.hashes[h]; ok {
			cp.Hashes = append(cp.Hashes, v)
		}
	}
	return cp
}

// Height returns the last connected height (start-1 before any).
func (f *Follower) Height() int64 { return f.height }

// Kept returns the hash the follower connected at height, if it keeps it.
func (f *Follower) Kept(height int64) (ID, bool) {
	h, ok := f.hashes[height]
	return h, ok
}

// Base returns the lowest height whose hash the follower keeps (height+1
// when it keeps none).
func (f *Follower) Base() int64 { return f.height - int64(len(f.hashes)) + 1 }

// Behind reports whether the node's tip at the last Each is above the
// follower: a call of Each stops after maxBlocksPerPoll blocks, or where
// the node reorganised between its calls, and the next one goes on.
func (f *Follower) Behind() bool { return f.best > f.height }

// Each compares the follower's chain with the node's and hands fn the
// events that bring it level, one at a time as they are found:
// disconnections first, newest first; then connections, oldest first, at
// most maxBlocksPerPoll at a time. The follower moves past an event only
// once fn has taken it (returned nil). An event fn refuses ends the call
// with fn's error, and the next call finds the same event again: a block
// whose reversal the core did not journal is disconnected again, one
// whose data the caller refused is read again. A node whose tip is below
// the follower is ErrNodeBehind (restarted on a wiped database, or
// syncing: a reorg to a shorter chain is not told apart from it); a reorg
// below every kept block is ErrReorgTooDeep, and so is every call after
// it: following on from below would leave blocks that left the best chain
// unwound. Start again from a checkpoint on the best chain.
func (f *Follower) Each(ctx context.Context, fn func(FollowEvent) error) error {
	if f.lost != nil {
		return f.lost
	}
	tip, err := f.b.Tip(ctx)
	if err != nil {
		return err
	}
	best := int64(tip.Height)
	f.best = best
	if h, ok := f.hashes[f.height]; ok && h == tip.Hash {
		return nil
	}
	if len(f.hashes) > 0 && best < f.height {
		return fmt.Errorf("%w: node at height %d, follower at %d", ErrNodeBehind, best, f.height)
	}
	hadAny := len(f.hashes) > 0
	unwound := 0
	for {
		mine, ok := f.hashes[f.height]
		if !ok {
			break // nothing connected at this height: nothing to unwind
		}
		if f.height <= best {
			theirs, err := f.b.HashAt(ctx, uint64(f.height))
			if err != nil {
				return err
			}
			if theirs == mine {
				break
			}
		}
		if err := fn(FollowEvent{Ref: BlockRef{Height: uint64(f.height), Hash: mine}}); err != nil {
			return err
		}
		delete(f.hashes, f.height)
		f.height--
		unwound++
	}
	if hadAny && len(f.hashes) == 0 {
		// Every block we knew is gone: the fork point is beyond what we
		// kept, and what to unwind below it is unknown.
		f.lost = fmt.Errorf("%w: every one of the %d blocks kept up to height %d left the best chain", ErrReorgTooDeep, unwound, f.height+int64(unwound))
		return f.lost
	}
	for n := 0; f.height < best && n < maxBlocksPerPoll; n++ {
		h, err := f.b.HashAt(ctx, uint64(f.height+1))
		if err != nil {
			return err
		}
		b, err := f.b.Block(ctx, h, f.w)
		if err != nil {
			return err
		}
		if prev, ok := f.hashes[f.height]; ok && b.Parent != prev {
			// The node reorganised between our calls: stop here and let
			// the next poll unwind.
			return nil
		}
		if err := fn(FollowEvent{Connected: true, Ref: BlockRef{Height: uint64(f.height + 1), Hash: h}, Block: b}); err != nil {
			return err
		}
		f.height++
		f.hashes[f.height] = h
		delete(f.hashes, f.height-f.depth)
	}
	return nil
}
