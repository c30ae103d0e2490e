package chain

import (
	"context"
	"errors"
	"testing"
)

type followed struct {
	conn bool
	h    uint64
}

// collect is the events of one call of f.Each, and its error.
func collect(f *Follower) ([]FollowEvent, error) {
	var evs []FollowEvent
	err := f.Each(context.Background(), func(e FollowEvent) error {
		evs = append(evs, e)
		return nil
	})
	return evs, err
}

func poll(t *testing.T, f *Follower) []followed {
	t.Helper()
	evs, err := collect(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []followed
	for _, e := range evs {
		if e.Connected != (e.Block != nil) {
			t.Fatalf("event %+v: a block with a disconnection, or none with a connection", e)
		}
		out = append(out, followed{e.Connected, e.Ref.Height})
	}
	return out
}

func same(t *testing.T, what string, got, want []followed) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: events %v; want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: events %v; want %v", what, got, want)
		}
	}
}

// TestFollowerReorg: a follower connects from its start height, unwinds a
// reorg newest first and connects the new branch oldest first, resumes
// from its checkpoint with nothing missed, also across a reorg made while
// it was down, and stops at a reorg below every block it kept.
func TestFollowerReorg(t *testing.T) {
	c := newFakeChain()
	for h := uint64(1); h <= 4; h++ {
		c.extend(h, nil)
	}
	f := NewFollower(c, NewWatch(), Checkpoint{}, 1, 0)
	same(t, "first poll", poll(t, f), []followed{{true, 1}, {true, 2}, {true, 3}, {true, 4}})
	same(t, "at the tip", poll(t, f), nil)
	old4 := c.best[4]
	for h := uint64(3); h <= 5; h++ {
		c.extend(h, nil)
	}
	evs, err := collect(f)
	if err != nil || len(evs) != 5 || evs[0].Ref.Hash != old4 {
		t.Fatalf("reorg: %+v, %v", evs, err)
	}
	f2 := NewFollower(c, NewWatch(), f.Checkpoint(), 1, 0)
	same(t, "resumed", poll(t, f2), nil)
	c.extend(6, nil)
	same(t, "resumed, a block", poll(t, f2), []followed{{true, 6}})
	for h := uint64(5); h <= 7; h++ {
		c.extend(h, nil)
	}
	f3 := NewFollower(c, NewWatch(), f2.Checkpoint(), 1, 0)
	same(t, "a reorg while down", poll(t, f3), []followed{{false, 6}, {false, 5}, {true, 5}, {true, 6}, {true, 7}})
	// A follower keeping 2 blocks resumes from its newest 2 and unwinds
	// no deeper.
	f5 := NewFollower(c, NewWatch(), f3.Checkpoint(), 1, 2)
	if cp := f5.Checkpoint(); cp.Height != 7 || len(cp.Hashes) != 2 || cp.Hashes[1] != c.best[7] || f5.Base() != 6 {
		t.Fatalf("depth 2: checkpoint %+v, base %d", cp, f5.Base())
	}
	// A caller that refuses an event keeps the follower before it (the
	// core it journals to is down, or the block's data is refused): the
	// next call hands it the same event again.
	ctx := context.Background()
	refused := errors.New("core down")
	c.extend(8, nil)
	if err := f3.Each(ctx, func(e FollowEvent) error {
		if e.Connected && e.Ref.Height == 8 {
			return refused
		}
		return nil
	}); !errors.Is(err, refused) || f3.Height() != 7 || !f3.Behind() {
		t.Fatalf("block 8 refused: %v, height %d, behind %v; want the refusal, 7, behind", err, f3.Height(), f3.Behind())
	}
	same(t, "after the refusal", poll(t, f3), []followed{{true, 8}})
	if f3.Behind() {
		t.Fatal("level with the node, and behind")
	}
	c.extend(8, nil)
	c.extend(9, nil)
	if err := f3.Each(ctx, func(e FollowEvent) error {
		if !e.Connected {
			return refused
		}
		return nil
	}); !errors.Is(err, refused) || f3.Height() != 8 {
		t.Fatalf("unwinding refused: %v, height %d; want the refusal, 8", err, f3.Height())
	}
	same(t, "the unwinding again", poll(t, f3), []followed{{false, 8}, {true, 8}, {true, 9}})
	// The node wiped: behind the follower, which waits.
	saved := c.best
	c.best = c.best[:3]
	if _, err := collect(f3); !errors.Is(err, ErrNodeBehind) {
		t.Fatalf("node behind: %v", err)
	}
	c.best = saved
	// Every kept block replaced: the fork point is beyond what was kept.
	f4 := NewFollower(c, NewWatch(), Checkpoint{Height: 7, Hashes: []ID{c.best[6], c.best[7]}}, 1, 0)
	for h := uint64(6); h <= 8; h++ {
		c.extend(h, nil)
	}
	evs, err = collect(f4)
	if !errors.Is(err, ErrReorgTooDeep) || len(evs) != 2 || evs[0].Connected || evs[1].Connected {
		t.Fatalf("reorg below the kept blocks: %+v, %v; want the two kept blocks disconnected and ErrReorgTooDeep", evs, err)
	}
	// It stays stopped: going on from below what it kept would leave the
	// blocks under it that left the best chain unwound.
	if evs, err := collect(f4); !errors.Is(err, ErrReorgTooDeep) || len(evs) != 0 {
		t.Fatalf("poll after the deep reorg: %+v, %v; want ErrReorgTooDeep again", evs, err)
	}
}
