package chain

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

// fakeChain is an in-memory chain for the Notifier's unit tests: blocks
// by hash and the best chain as a list of hashes, which a test rewrites
// to make reorgs of any depth. The conformance suite runs the Notifier on
// real nodes; this one reaches the reorgs a node in a test cannot.
type fakeChain struct {
	mu      sync.Mutex
	blocks  map[ID]*Block
	best    []ID // best[h] is the hash at height h
	pending []Transfer
	next    byte
}

func newFakeChain() *fakeChain {
	c := &fakeChain{blocks: map[ID]*Block{}}
	c.extend(0, nil)
	return c
}

// extend replaces the best chain above height with a new block holding
// txs, and returns it.
func (c *fakeChain) extend(height uint64, txs []ID) ID {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	var b [32]byte
	b[0], b[1] = c.next, byte(height)
	h := NewID(Ethereum, b)
	blk := &Block{Ref: BlockRef{Height: height, Hash: h}, TxIDs: txs}
	if height > 0 {
		blk.Parent = c.best[height-1]
	}
	for _, tx := range txs {
		blk.Transfers = append(blk.Transfers, Transfer{Tx: tx, To: "watched", Amount: Amount{Lo: 1}})
	}
	c.blocks[h] = blk
	c.best = append(c.best[:height], h)
	return h
}

func (c *fakeChain) Family() Family                        { return Ethereum }
func (c *fakeChain) ParseAddress(s string) (string, error) { return s, nil }
func (c *fakeChain) Tip(context.Context) (BlockRef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return BlockRef{Height: uint64(len(c.best) - 1), Hash: c.best[len(c.best)-1]}, nil
}
func (c *fakeChain) HashAt(_ context.Context, h uint64) (ID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h >= uint64(len(c.best)) {
		return ID{}, ErrNotFound
	}
	return c.best[h], nil
}
func (c *fakeChain) Block(_ context.Context, h ID, _ *Watch) (*Block, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.blocks[h]
	if !ok {
		return nil, ErrNotFound
	}
	cp := *b
	return &cp, nil
}
func (c *fakeChain) TxBlock(_ context.Context, tx ID) (ID, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.best {
		for _, t := range c.blocks[h].TxIDs {
			if t == tx {
				return h, true, nil
			}
		}
	}
	return ID{}, false, nil
}
func (c *fakeChain) PollPending(context.Context, *Watch) ([]Transfer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Transfer(nil), c.pending...), nil
}
func (c *fakeChain) Subscribe(context.Context, *Watch, func(), func(Transfer)) (io.Closer, error) {
	return nil, errors.New("fake: no push")
}
func (c *fakeChain) Balance(context.Context, string, string, ID) (Amount, error) {
	return Amount{}, nil
}
func (c *fakeChain) Broadcast(context.Context, []byte) (ID, error) { return ID{}, ErrMalformed }
func (c *fakeChain) FeeEstimate(context.Context) (Fee, error)      { return Fee{}, nil }

func txID(b byte) ID { return NewID(Ethereum, [32]byte{31: b}) }

func start(t *testing.T, c *fakeChain, depth int) (*Notifier, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	n := NewNotifier(c, NewWatch(), Options{PollInterval: 2 * time.Millisecond, ReorgDepth: depth})
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n, ctx
}

func nextEvent(t *testing.T, ctx context.Context, n *Notifier) Event {
	t.Helper()
	select {
	case e := <-n.Events():
		return e
	case <-ctx.Done():
		t.Fatal("no event")
	}
	return Event{}
}

func nextConf(t *testing.T, ctx context.Context, ev *ConfirmationEvent) Conf {
	t.Helper()
	select {
	case c := <-ev.C:
		return c
	case <-ctx.Done():
		t.Fatal("no confirmation")
	}
	return Conf{}
}

// TestNotifierReorg: a transaction mined in a block that a two-block
// reorg replaces is reported negative, then counted in its new block.
func TestNotifierReorg(t *testing.T) {
	c := newFakeChain()
	n, ctx := start(t, c, 0)
	tx := txID(1)
	ev, err := n.RegisterConfirmations(ctx, tx, 2)
	if err != nil {
		t.Fatal(err)
	}
	a1 := c.extend(1, nil)
	a2 := c.extend(2, []ID{tx})
	for _, want := range []ID{a1, a2} {
		if e := nextEvent(t, ctx, n); e.Kind != Connected || e.Block.Hash != want {
			t.Fatalf("event = %+v; want %s connected", e, want)
		}
	}
	if got := nextConf(t, ctx, ev); got.Kind != Update || got.Confirmations != 1 || got.Block.Hash != a2 {
		t.Fatalf("conf = %+v; want update 1 in %s", got, a2)
	}
	// A longer branch from the genesis, the transaction in its third block.
	c.mu.Lock()
	c.best = c.best[:1]
	c.mu.Unlock()
	b1 := c.extend(1, nil)
	b2 := c.extend(2, nil)
	b3 := c.extend(3, []ID{tx})
	for _, want := range []struct {
		kind EventKind
		h    ID
	}{{Disconnected, a2}, {Disconnected, a1}, {Connected, b1}, {Connected, b2}, {Connected, b3}} {
		if e := nextEvent(t, ctx, n); e.Kind != want.kind || e.Block.Hash != want.h {
			t.Fatalf("event = %s %s; want %s %s", e.Kind, e.Block.Hash, want.kind, want.h)
		}
	}
	if got := nextConf(t, ctx, ev); got.Kind != NegativeConf || got.Confirmations != 1 || got.Block.Hash != a2 {
		t.Fatalf("conf = %+v; want negative, 1, %s", got, a2)
	}
	if got := nextConf(t, ctx, ev); got.Kind != Update || got.Confirmations != 1 || got.Block.Hash != b3 {
		t.Fatalf("conf = %+v; want update 1 in %s", got, b3)
	}
	c.extend(4, nil)
	if got := nextConf(t, ctx, ev); got.Kind != Confirmed || got.Confirmations != 2 || got.Block.Hash != b3 {
		t.Fatalf("conf = %+v; want confirmed 2 in %s", got, b3)
	}
	if n.Err() != nil {
		t.Fatalf("Err() = %v", n.Err())
	}
}

// TestNotifierReorgTooDeep: a reorg below every kept block stops the
// Notifier with ErrReorgTooDeep rather than guess what to unwind.
func TestNotifierReorgTooDeep(t *testing.T) {
	c := newFakeChain()
	n, ctx := start(t, c, 2)
	for h := uint64(1); h <= 4; h++ {
		c.extend(h, nil)
		if e := nextEvent(t, ctx, n); e.Kind != Connected || e.Block.Height != h {
			t.Fatalf("event = %+v; want block %d connected", e, h)
		}
	}
	c.mu.Lock()
	c.best = c.best[:1]
	c.mu.Unlock()
	for h := uint64(1); h <= 5; h++ {
		c.extend(h, nil)
	}
	for i := 0; i < 2; i++ { // the two kept blocks are unwound, and no more
		if e := nextEvent(t, ctx, n); e.Kind != Disconnected {
			t.Fatalf("event = %+v; want a disconnection", e)
		}
	}
	for !errors.Is(n.Err(), ErrReorgTooDeep) {
		select {
		case e := <-n.Events():
			t.Fatalf("event after a reorg too deep: %+v", e)
		case <-ctx.Done():
			t.Fatalf("Err() = %v; want ErrReorgTooDeep", n.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// TestNotifierPendingOnce: a pending transfer the node shows at every
// poll is told once.
func TestNotifierPendingOnce(t *testing.T) {
	c := newFakeChain()
	tr := Transfer{Tx: txID(9), To: "watched", Amount: Amount{Lo: 5}}
	c.pending = []Transfer{tr}
	n, ctx := start(t, c, 0)
	pendings := 0
	for blocks := 0; blocks < 3; {
		e := nextEvent(t, ctx, n)
		switch e.Kind {
		case Pending:
			pendings++
			if e.Transfers[0] != tr {
				t.Fatalf("pending = %+v; want %+v", e.Transfers[0], tr)
			}
		case Connected:
			blocks++
		}
		if pendings == 1 && blocks == 0 {
			c.extend(1, nil) // polls after it see the transfer again
		}
		if blocks > 0 && blocks < 3 {
			c.extend(uint64(blocks+1), nil)
		}
	}
	if pendings != 1 {
		t.Fatalf("pending told %d times; want once", pendings)
	}
}

// TestNotifierNodeBehind: a node that comes back with a shorter chain
// (a wiped database) is waited for, not taken for a reorg: nothing is
// disconnected, and when it has caught up again the Notifier goes on.
func TestNotifierNodeBehind(t *testing.T) {
	c := newFakeChain()
	n, ctx := start(t, c, 0)
	var kept []ID
	for h := uint64(1); h <= 3; h++ {
		kept = append(kept, c.extend(h, nil))
		nextEvent(t, ctx, n)
	}
	c.mu.Lock()
	c.best = c.best[:3] // height 2
	c.mu.Unlock()
	for !errors.Is(n.Err(), ErrNodeBehind) {
		select {
		case e := <-n.Events():
			t.Fatalf("event while the node is behind: %+v", e)
		case <-ctx.Done():
			t.Fatalf("Err() = %v; want ErrNodeBehind", n.Err())
		case <-time.After(time.Millisecond):
		}
	}
	c.mu.Lock()
	c.best = append(c.best, kept[2])
	c.mu.Unlock()
	h4 := c.extend(4, nil)
	if e := nextEvent(t, ctx, n); e.Kind != Connected || e.Block.Hash != h4 {
		t.Fatalf("event = %+v; want %s connected", e, h4)
	}
}
