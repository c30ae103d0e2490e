package btc

import (
	"context"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// Source is what a Follower reads from a node. *Node is one.
type Source interface {
	BestBlock(ctx context.Context) (chainhash.Hash, int32, error)
	BlockHash(ctx context.Context, height int32) (chainhash.Hash, error)
	Block(ctx context.Context, h chainhash.Hash) (*wire.MsgBlock, error)
}

// MaxReorgDepth bounds how far back a Follower keeps block hashes and so
// how deep a reorg it can unwind. A deeper one is an error that stops it.
const MaxReorgDepth = 288

// maxBlocksPerPoll bounds the blocks one Poll connects, so a follower far
// behind catches up in bounded steps.
const maxBlocksPerPoll = 64

// ErrNodeBehind reports a node whose best chain is shorter than what the
// follower has connected: a node restarted on a wiped or older database,
// or still syncing. The follower waits for it rather than unwind what it
// cannot see (a reorg to a shorter chain is not told apart from it).
var ErrNodeBehind = errors.New("btc: node is behind the follower")

// ErrReorgTooDeep reports a reorg beyond MaxReorgDepth blocks.
var ErrReorgTooDeep = fmt.Errorf("btc: reorg deeper than %d blocks", MaxReorgDepth)

// Event is a change of the best chain: a block connected or disconnected.
type Event struct {
	Connected bool
	Height    int32
	Hash      chainhash.Hash
	Block     *wire.MsgBlock // connected blocks only
}

// Checkpoint is where a Follower stands: the hashes of the last blocks it
// has connected, newest last. It is what a watcher journals so that it
// resumes after a restart from where it was, and rescans.
type Checkpoint struct {
	Height int32            // the height of the last hash
	Hashes []chainhash.Hash // up to MaxReorgDepth, ending at Height
}

// Follower follows a node's best chain block by block, noticing reorgs by
// comparing the hashes it connected with the node's. It is not safe for
// concurrent use.
type Follower struct {
	src    Source
	height int32                    // last connected height; start-1 before any
	hashes map[int32]chainhash.Hash // connected blocks, the last MaxReorgDepth
}

// NewFollower returns a follower that resumes from cp, or starts at height
// start when cp has no hashes (the first block it connects is start).
func NewFollower(src Source, cp Checkpoint, start int32) *Follower {
	f := &Follower{src: src, height: start - 1, hashes: make(map[int32]chainhash.Hash)}
	if len(cp.Hashes) > 0 {
		f.height = cp.Height
		base := cp.Height - int32(len(cp.Hashes)) + 1
		for i, h := range cp.Hashes {
			f.hashes[base+int32(i)] = h
		}
	}
	return f
}

// Checkpoint returns where the follower stands.
func (f *Follower) Checkpoint() Checkpoint {
	cp := Checkpoint{Height: f.height}
	for h := f.height - MaxReorgDepth + 1; h <= f.height; h++ {
		if v, ok := f.hashes[h]; ok {
			cp.Hashes = append(cp.Hashes, v)
		}
	}
	return cp
}

// Height returns the last connected height.
func (f *Follower) Height() int32 { return f.height }

// Poll compares the follower's chain with the node's and returns the events
// that bring it level (disconnections first, newest first; then connections,
// oldest first), at most maxBlocksPerPoll connections at a time. On error the
// events so far are returned with it and the follower stands after them.
func (f *Follower) Poll(ctx context.Context) ([]Event, error) {
	best, bestHeight, err := f.src.BestBlock(ctx)
	if err != nil {
		return nil, err
	}
	if h, ok := f.hashes[f.height]; ok && h == best {
		return nil, nil
	}
	if len(f.hashes) > 0 && bestHeight < f.height {
		return nil, fmt.Errorf("%w: node at height %d, follower at %d", ErrNodeBehind, bestHeight, f.height)
	}
	var evs []Event
	hadAny := len(f.hashes) > 0
	// Unwind what the node's best chain no longer has.
	for {
		mine, ok := f.hashes[f.height]
		if !ok {
			break // nothing connected yet at this height: nothing to unwind
		}
		if f.height <= bestHeight {
			theirs, err := f.src.BlockHash(ctx, f.height)
			if err != nil {
				return evs, err
			}
			if theirs == mine {
				break
			}
		}
		evs = append(evs, Event{Height: f.height, Hash: mine})
		delete(f.hashes, f.height)
		f.height--
	}
	if hadAny && len(f.hashes) == 0 {
		// Every block we knew is gone: the fork point is beyond what we
		// kept, and what to unwind below it is unknown.
		return evs, ErrReorgTooDeep
	}
	for n := 0; f.height < bestHeight && n < maxBlocksPerPoll; n++ {
		h, err := f.src.BlockHash(ctx, f.height+1)
		if err != nil {
			return evs, err
		}
		b, err := f.src.Block(ctx, h)
		if err != nil {
			return evs, err
		}
		if prev, ok := f.hashes[f.height]; ok && b.Header.PrevBlock != prev {
			// The node reorganised between our calls: stop here and let
			// the next poll unwind.
			return evs, nil
		}
		f.height++
		f.hashes[f.height] = h
		delete(f.hashes, f.height-MaxReorgDepth)
		evs = append(evs, Event{Connected: true, Height: f.height, Hash: h, Block: b})
	}
	return evs, nil
}
