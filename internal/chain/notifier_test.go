package chain

import (
	"context"
	"errors"
	"io"
	"slices"
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

// startFrom starts a Notifier of c resuming from cp.
func startFrom(t *testing.T, c *fakeChain, cp Checkpoint, depth int) (*Notifier, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	n := NewNotifier(c, NewWatch(), Options{PollInterval: 2 * time.Millisecond, ReorgDepth: depth, Resume: &cp})
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n, ctx
}

// TestNotifierResume: a watcher keeps the checkpoint of the events it
// handled and stops; while it is down two blocks are mined on its last
// one and then a reorg replaces the newest of them and adds three. The
// Notifier resumed from the checkpoint disconnects the block that left
// and connects the new branch, nothing skipped; the watcher's checkpoint
// then holds the node's best chain.
func TestNotifierResume(t *testing.T) {
	c := newFakeChain()
	for h := uint64(1); h <= 3; h++ {
		c.extend(h, nil)
	}
	n, ctx := start(t, c, 0)
	cp := n.Origin()
	if cp.Height != 3 || len(cp.Hashes) != 1 || cp.Hashes[0] != c.best[3] {
		t.Fatalf("origin = %+v; want the tip at 3", cp)
	}
	a4 := c.extend(4, nil)
	a5 := c.extend(5, nil)
	for _, want := range []ID{a4, a5} {
		e := nextEvent(t, ctx, n)
		if e.Kind != Connected || e.Block.Hash != want {
			t.Fatalf("event = %+v; want %s connected", e, want)
		}
		if err := cp.Apply(e, 0); err != nil {
			t.Fatal(err)
		}
	}
	n.Stop()
	journaled := cp.Clone()
	b5 := c.extend(5, nil)
	b6 := c.extend(6, nil)
	b7 := c.extend(7, nil)
	n2, ctx2 := startFrom(t, c, journaled, 0)
	if o := n2.Origin(); o.Height != 5 || !slices.Equal(o.Hashes, journaled.Hashes) || o.Hashes[len(o.Hashes)-1] != a5 {
		t.Fatalf("resumed origin = %+v; want the checkpoint's, ending at 5 %s", o, a5)
	}
	for _, want := range []struct {
		kind EventKind
		h    ID
	}{{Disconnected, a5}, {Connected, b5}, {Connected, b6}, {Connected, b7}} {
		e := nextEvent(t, ctx2, n2)
		if e.Kind != want.kind || e.Block.Hash != want.h {
			t.Fatalf("event = %s %s; want %s %s", e.Kind, e.Block.Hash, want.kind, want.h)
		}
		if err := cp.Apply(e, 0); err != nil {
			t.Fatal(err)
		}
	}
	want := Checkpoint{Height: 7, Hashes: append([]ID(nil), c.best[3:]...)}
	if cp.Height != want.Height || !slices.Equal(cp.Hashes, want.Hashes) {
		t.Fatalf("checkpoint = %+v; want %+v", cp, want)
	}
	if n2.Err() != nil {
		t.Fatalf("Err() = %v", n2.Err())
	}
}

// TestNotifierResumeReorgTooDeep: every block of the checkpoint left the
// best chain while the Notifier was down: it unwinds them and stops with
// ErrReorgTooDeep, connecting nothing of the new branch.
func TestNotifierResumeReorgTooDeep(t *testing.T) {
	c := newFakeChain()
	var cp Checkpoint
	for h := uint64(1); h <= 3; h++ {
		cp.Hashes, cp.Height = append(cp.Hashes, c.extend(h, nil)), h
	}
	cp.Hashes = cp.Hashes[1:] // blocks 2 and 3 kept
	c.mu.Lock()
	c.best = c.best[:1]
	c.mu.Unlock()
	for h := uint64(1); h <= 4; h++ {
		c.extend(h, nil)
	}
	n, ctx := startFrom(t, c, cp, 0)
	for i := 0; i < 2; i++ {
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

// TestNotifierResumeRefusesBadCheckpoint: a checkpoint with no block,
// more hashes than blocks below its height, or another chain's ids is
// refused at Start.
func TestNotifierResumeRefusesBadCheckpoint(t *testing.T) {
	c := newFakeChain()
	h1 := c.extend(1, nil)
	for _, cp := range []Checkpoint{
		{Height: 1},
		{Height: 0, Hashes: []ID{c.best[0], h1}},
		{Height: 1, Hashes: []ID{NewID(Bitcoin, h1.Bytes())}},
	} {
		n := NewNotifier(c, NewWatch(), Options{Resume: &cp})
		if err := n.Start(context.Background()); !errors.Is(err, ErrCheckpoint) {
			n.Stop()
			t.Fatalf("Start from %+v = %v; want ErrCheckpoint", cp, err)
		}
	}
}

// TestCheckpointApply: a connected block that does not follow the
// checkpoint (another parent, a height skipped) or a disconnection of a
// block other than the last kept is refused and changes nothing; kept
// blocks beyond the depth are dropped, oldest first.
func TestCheckpointApply(t *testing.T) {
	id := func(b byte) ID { return NewID(Ethereum, [32]byte{b}) }
	cp := Checkpoint{Height: 10, Hashes: []ID{id(9), id(10)}}
	for _, e := range []Event{
		{Kind: Connected, Block: BlockRef{Height: 11, Hash: id(11)}, Parent: id(9)},
		{Kind: Connected, Block: BlockRef{Height: 12, Hash: id(11)}, Parent: id(10)},
		{Kind: Disconnected, Block: BlockRef{Height: 10, Hash: id(9)}},
		{Kind: Disconnected, Block: BlockRef{Height: 9, Hash: id(10)}},
	} {
		before := cp.Clone()
		if err := cp.Apply(e, 0); !errors.Is(err, ErrCheckpoint) {
			t.Fatalf("Apply(%+v) = %v; want ErrCheckpoint", e, err)
		}
		if cp.Height != before.Height || !slices.Equal(cp.Hashes, before.Hashes) {
			t.Fatalf("a refused event changed the checkpoint: %+v", cp)
		}
	}
	if err := cp.Apply(Event{Kind: Pending}, 0); err != nil {
		t.Fatal(err)
	}
	for h := byte(11); h <= 13; h++ {
		if err := cp.Apply(Event{Kind: Connected, Block: BlockRef{Height: uint64(h), Hash: id(h)}, Parent: id(h - 1)}, 3); err != nil {
			t.Fatal(err)
		}
	}
	if cp.Height != 13 || !slices.Equal(cp.Hashes, []ID{id(11), id(12), id(13)}) {
		t.Fatalf("checkpoint = %+v; want 11, 12, 13 kept at depth 3", cp)
	}
	if err := cp.Apply(Event{Kind: Disconnected, Block: BlockRef{Height: 13, Hash: id(13)}}, 3); err != nil || cp.Height != 12 || len(cp.Hashes) != 2 {
		t.Fatalf("after a disconnection = %+v, %v", cp, err)
	}
}
