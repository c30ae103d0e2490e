package chain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// EventKind says what an Event tells.
type EventKind uint8

const (
	// Connected: a block joined the best chain (oldest first).
	Connected EventKind = iota + 1
	// Disconnected: a block left the best chain in a reorg (newest
	// first); its transfers are no longer confirmed.
	Disconnected
	// Pending: a transaction touching a watched address is in the node's
	// pool, not yet mined.
	Pending
)

// String names the kind.
func (k EventKind) String() string {
	switch k {
	case Connected:
		return "connected"
	case Disconnected:
		return "disconnected"
	case Pending:
		return "pending"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Event is a change a Notifier tells of. Block is the block connected or
// disconnected (zero for Pending); Transfers are the block's transfers
// touching the watched addresses, or the one pending transfer; Spends the
// connected block's spends of watched outputs (Bitcoin), or the one
// pending spend (from a PendingSpender's polling; pushes carry transfers
// only).
type Event struct {
	Kind      EventKind
	Block     BlockRef
	Parent    ID
	Transfers []Transfer
	Spends    []Spend
}

// ConfKind says what a Conf tells.
type ConfKind uint8

const (
	// Update: the transaction is mined with Confirmations so far, fewer
	// than asked for.
	Update ConfKind = iota + 1
	// Confirmed: the transaction has the confirmations asked for.
	Confirmed
	// NegativeConf: the block holding the transaction left the best chain
	// (a reorg); it had Confirmations. It is pending again, or gone, and
	// is counted from zero if mined again.
	NegativeConf
)

// String names the kind.
func (k ConfKind) String() string {
	switch k {
	case Update:
		return "update"
	case Confirmed:
		return "confirmed"
	case NegativeConf:
		return "negative"
	}
	return fmt.Sprintf("conf(%d)", uint8(k))
}

// Conf is news of one transaction's confirmations. Block is the block
// holding it (the one that left, for NegativeConf).
type Conf struct {
	Kind          ConfKind
	Confirmations uint64
	Block         BlockRef
}

// ConfirmationEvent delivers a registered transaction's confirmations:
// Updates as blocks pile on it, one Confirmed when it reaches the number
// asked for, and NegativeConf if its block leaves the best chain (then the
// count starts again). The Notifier blocks on C until it is read or the
// Notifier stops: read it.
type ConfirmationEvent struct {
	C <-chan Conf
}

// Options configure a Notifier.
type Options struct {
	// PollInterval is how often the Notifier polls the node when nothing
	// is pushed (or the push subscription is down); default one second.
	PollInterval time.Duration
	// ReorgDepth bounds the blocks kept to unwind a reorg; default
	// DefaultReorgDepth.
	ReorgDepth int
	// Logger, default slog.Default().
	Logger *slog.Logger
	// Resume, if set, is where the Notifier starts instead of the node's
	// tip: a checkpoint journaled by the watcher (Checkpoint.Apply of the
	// events it handled). The first poll unwinds its kept blocks that left
	// the best chain while the Notifier was down (Disconnected, newest
	// first) and connects every block after it (Connected): nothing mined
	// meanwhile is missed.
	Resume *Checkpoint
}

// Checkpoint is where a Notifier stands: the height of the last block it
// connected and the kept hashes up to it, oldest first, to journal and
// resume from (Options.Resume), as btc.Follower's checkpoint.
type Checkpoint struct {
	Height uint64
	Hashes []ID // Hashes[i] is the block at Height-len(Hashes)+1+i
}

// ErrCheckpoint reports a checkpoint that is not a chain of kept blocks,
// or an event that does not follow it.
var ErrCheckpoint = errors.New("chain: checkpoint")

// Clone returns a copy of c that shares nothing with it.
func (c Checkpoint) Clone() Checkpoint {
	return Checkpoint{Height: c.Height, Hashes: slices.Clone(c.Hashes)}
}

// check refuses an empty checkpoint, one with more hashes than blocks
// below its height, or with ids of another family than f.
func (c Checkpoint) check(f Family) error {
	switch {
	case len(c.Hashes) == 0:
		return fmt.Errorf("%w: no block kept", ErrCheckpoint)
	case uint64(len(c.Hashes)) > c.Height+1:
		return fmt.Errorf("%w: %d hashes up to height %d", ErrCheckpoint, len(c.Hashes), c.Height)
	}
	for _, h := range c.Hashes {
		if h.Family() != f {
			return fmt.Errorf("%w: a %s id in a %s checkpoint", ErrCheckpoint, h.Family(), f)
		}
	}
	return nil
}

// Apply moves c by one event as the Notifier moved when it sent it: a
// Connected block is kept on top (the oldest dropped beyond depth, 0 for
// DefaultReorgDepth), a Disconnected one taken off; Pending changes
// nothing. A block that does not follow c (its parent or height) is
// ErrCheckpoint and c is unchanged. A watcher that journals c after
// handling the events it applied resumes exactly after them.
func (c *Checkpoint) Apply(e Event, depth int) error {
	if depth <= 0 {
		depth = DefaultReorgDepth
	}
	switch e.Kind {
	case Connected:
		if n := len(c.Hashes); n > 0 && (e.Parent != c.Hashes[n-1] || e.Block.Height != c.Height+1) {
			return fmt.Errorf("%w: block %d %s does not follow %d %s", ErrCheckpoint, e.Block.Height, e.Block.Hash, c.Height, c.Hashes[n-1])
		}
		c.Hashes = append(c.Hashes, e.Block.Hash)
		c.Height = e.Block.Height
		if len(c.Hashes) > depth {
			c.Hashes = slices.Delete(c.Hashes, 0, len(c.Hashes)-depth)
		}
	case Disconnected:
		n := len(c.Hashes)
		if n == 0 || e.Block.Hash != c.Hashes[n-1] || e.Block.Height != c.Height {
			return fmt.Errorf("%w: disconnected block %d %s is not the last kept", ErrCheckpoint, e.Block.Height, e.Block.Hash)
		}
		c.Hashes = c.Hashes[:n-1]
		c.Height--
	}
	return nil
}

// DefaultReorgDepth is how far back a Notifier keeps block hashes by
// default: two days of Bitcoin blocks, far beyond any Ethereum reorg
// since its finality.
const DefaultReorgDepth = 288

// Bounds on a Notifier's queues and memory.
const (
	maxBlocksPerPoll = 64      // blocks connected in one poll
	eventBuffer      = 256     // events queued before the Notifier waits for a reader
	pushQueue        = 4096    // pushed pending transfers queued; beyond, polling covers them
	maxSeen          = 1 << 16 // pending transfers remembered for deduplication
	maxRegistrations = 1 << 16 // confirmation registrations at once
	confBuffer       = 16      // Confs queued per registration
)

// ErrReorgTooDeep reports a reorg beyond the blocks a Notifier keeps.
var ErrReorgTooDeep = errors.New("chain: reorg deeper than the blocks kept")

// ErrNodeBehind reports a node whose best chain is shorter than what the
// Notifier has connected: a node restarted on a wiped or older database,
// or still syncing. The Notifier waits for it rather than unwind blocks
// it cannot see (a reorg to a shorter chain is told apart only when that
// chain outgrows the old one).
var ErrNodeBehind = errors.New("chain: node is behind the notifier")

// ErrStopped reports a call to a Notifier that has stopped.
var ErrStopped = errors.New("chain: notifier stopped")

// ErrTooManyRegistrations reports maxRegistrations registrations at once.
var ErrTooManyRegistrations = fmt.Errorf("chain: more than %d confirmation registrations", maxRegistrations)

// Notifier follows a Backend's best chain from the block after the tip it
// finds at Start, with a Follower on its own goroutine. It polls every
// PollInterval and at once when the node pushes a block; a block is
// connected only onto its parent, so a reorg is seen as a parent that
// differs from the hash kept at its height, and the kept blocks are
// disconnected down to the fork. Pending transfers come from the push
// subscription and from PollPending, deduplicated.
//
// INVARIANT: only the run goroutine touches f and regs (after Start).
type Notifier struct {
	b    Backend
	w    *Watch
	o    Options
	log  *slog.Logger
	evs  chan Event
	hint chan struct{}
	push chan Transfer
	reg  chan *registration
	stop chan struct{}
	done chan struct{}
	sub  io.Closer

	mu  sync.Mutex
	tip BlockRef
	err error // the last poll's error, nil when level with the node

	stopOnce sync.Once

	f      *Follower
	origin Checkpoint
	regs   []*registration
	seen   map[transferKey]struct{}
	order  []transferKey
}

// transferKey is a pending transfer's (Tx, Asset, Index), or a pending
// spend's (Tx, Input) with spend set.
type transferKey struct {
	tx    ID
	asset string
	index uint32
	spend bool
}

type registration struct {
	txid  ID
	want  uint64
	ch    chan Conf
	at    *BlockRef // the block holding it, nil while not mined
	sent  uint64    // confirmations last told
	ready chan error
}

// NewNotifier returns a Notifier of b's chain for the addresses in w.
func NewNotifier(b Backend, w *Watch, o Options) *Notifier {
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.ReorgDepth <= 0 {
		o.ReorgDepth = DefaultReorgDepth
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Notifier{
		b: b, w: w, o: o, log: o.Logger.With("subsystem", "chain", "chain", b.Family().String()),
		evs: make(chan Event, eventBuffer), hint: make(chan struct{}, 1), push: make(chan Transfer, pushQueue),
		reg: make(chan *registration), stop: make(chan struct{}), done: make(chan struct{}),
		seen: make(map[transferKey]struct{}),
	}
}

// Start reads the tip (or takes Options.Resume), subscribes to pushes
// (polling alone if the node cannot push) and starts following. The run
// goroutine exits at Stop.
func (n *Notifier) Start(ctx context.Context) error {
	if r := n.o.Resume; r != nil {
		if err := r.check(n.b.Family()); err != nil {
			return fmt.Errorf("chain: start: %w", err)
		}
		n.f = NewFollower(n.b, n.w, r.Clone(), 0, n.o.ReorgDepth)
		n.setTip(BlockRef{Height: r.Height, Hash: r.Hashes[len(r.Hashes)-1]})
		n.wake() // level with the node at once
	} else {
		tip, err := n.b.Tip(ctx)
		if err != nil {
			return fmt.Errorf("chain: start: %w", err)
		}
		n.f = NewFollower(n.b, n.w, Checkpoint{Height: tip.Height, Hashes: []ID{tip.Hash}}, 0, n.o.ReorgDepth)
		n.setTip(tip)
	}
	n.origin = n.f.Checkpoint()
	// Pending transfers already in the pool before Start are reported
	// too: a first poll marks where the backend stands.
	sub, err := n.b.Subscribe(ctx, n.w, n.wake, func(t Transfer) {
		select {
		case n.push <- t:
		default: // full: PollPending reports it
		}
	})
	if err != nil {
		n.log.Warn("no push subscription, polling only", "err", err)
	} else {
		n.sub = sub
	}
	go n.run()
	return nil
}

// Stop ends the Notifier and its subscription and waits for its goroutine.
func (n *Notifier) Stop() {
	n.stopOnce.Do(func() {
		close(n.stop)
		<-n.done
		if n.sub != nil {
			n.sub.Close()
		}
	})
}

// Origin returns where the Notifier stood at Start, before any event:
// the checkpoint a watcher applies the events it reads to.
func (n *Notifier) Origin() Checkpoint { return n.origin.Clone() }

// Events returns the channel of connected and disconnected blocks and
// pending transfers. The Notifier waits for a reader when eventBuffer
// events are queued.
func (n *Notifier) Events() <-chan Event { return n.evs }

// Tip returns the last block the Notifier connected.
func (n *Notifier) Tip() BlockRef {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.tip
}

// Err returns the error of the last poll of the chain, nil if it brought
// the Notifier level with the node. ErrReorgTooDeep stays: the Notifier
// cannot tell what to unwind, and a watcher must halt.
func (n *Notifier) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

func (n *Notifier) setTip(t BlockRef) {
	n.mu.Lock()
	n.tip = t
	n.mu.Unlock()
}

func (n *Notifier) wake() {
	select {
	case n.hint <- struct{}{}:
	default:
	}
}

// RegisterConfirmations asks for txid's confirmations until it has
// numConfs (at least 1) and after, for a reorg. A transaction mined
// already is found with TxBlock and counted from its block.
func (n *Notifier) RegisterConfirmations(ctx context.Context, txid ID, numConfs uint64) (*ConfirmationEvent, error) {
	if numConfs == 0 {
		return nil, errors.New("chain: register confirmations: want at least one")
	}
	r := &registration{txid: txid, want: numConfs, ch: make(chan Conf, confBuffer), ready: make(chan error, 1)}
	select {
	case n.reg <- r:
	case <-n.stop:
		return nil, ErrStopped
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case err := <-r.ready:
		if err != nil {
			return nil, err
		}
	case <-n.done:
		return nil, ErrStopped
	}
	n.wake()
	return &ConfirmationEvent{C: r.ch}, nil
}

// run is the Notifier's goroutine; it exits when stop is closed.
func (n *Notifier) run() {
	defer close(n.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // exits at stop or when run returns
		select {
		case <-n.stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	tick := time.NewTicker(n.o.PollInterval)
	defer tick.Stop()
	n.pollPending(ctx)
	for {
		select {
		case <-n.stop:
			return
		case t := <-n.push:
			n.pending(ctx, t)
			continue
		case r := <-n.reg:
			r.ready <- n.register(ctx, r)
			continue
		case <-n.hint:
		case <-tick.C:
		}
		err := n.poll(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			n.log.Warn("following the chain", "err", err)
		}
		n.mu.Lock()
		n.err = err
		n.mu.Unlock()
		n.pollPending(ctx)
	}
}

func (n *Notifier) emit(ctx context.Context, e Event) bool {
	select {
	case n.evs <- e:
		return true
	case <-ctx.Done():
		return false
	}
}

// fresh reports whether k is not yet told, and remembers it.
func (n *Notifier) fresh(k transferKey) bool {
	if _, ok := n.seen[k]; ok {
		return false
	}
	if len(n.order) >= maxSeen {
		delete(n.seen, n.order[0])
		n.order = n.order[1:]
	}
	n.seen[k] = struct{}{}
	n.order = append(n.order, k)
	return true
}

func (n *Notifier) pending(ctx context.Context, t Transfer) {
	if n.fresh(transferKey{t.Tx, t.Asset, t.Index, false}) {
		n.emit(ctx, Event{Kind: Pending, Transfers: []Transfer{t}})
	}
}

func (n *Notifier) pollPending(ctx context.Context) {
	var ts []Transfer
	var sp []Spend
	var err error
	if ps, ok := n.b.(PendingSpender); ok {
		var txs []PendingTx
		txs, _, err = ps.PollPendingTxs(ctx, n.w)
		for _, tx := range txs {
			ts = append(ts, tx.Transfers...)
			sp = append(sp, tx.Spends...)
		}
	} else {
		ts, err = n.b.PollPending(ctx, n.w)
	}
	if err != nil {
		if ctx.Err() == nil {
			n.log.Warn("polling pending transactions", "err", err)
		}
		return
	}
	for _, t := range ts {
		n.pending(ctx, t)
	}
	for _, s := range sp {
		if n.fresh(transferKey{tx: s.Tx, index: s.Input, spend: true}) {
			n.emit(ctx, Event{Kind: Pending, Spends: []Spend{s}})
		}
	}
}

// poll brings the Notifier level with the node: disconnections down to
// the fork, newest first, then connections, oldest first, each told as
// the Follower reports it.
func (n *Notifier) poll(ctx context.Context) error {
	err := n.f.Each(ctx, func(e FollowEvent) error {
		if e.Connected {
			return n.connect(ctx, e.Block)
		}
		return n.disconnect(ctx, e.Ref)
	})
	if h, ok := n.f.Kept(n.f.Height()); ok {
		n.setTip(BlockRef{Height: uint64(n.f.Height()), Hash: h})
	}
	if err == nil && n.f.Behind() {
		n.wake()
	}
	return err
}

func (n *Notifier) disconnect(ctx context.Context, ref BlockRef) error {
	if !n.emit(ctx, Event{Kind: Disconnected, Block: ref}) {
		return ctx.Err()
	}
	for _, r := range n.regs {
		if r.at != nil && r.at.Hash == ref.Hash {
			c := Conf{Kind: NegativeConf, Confirmations: r.sent, Block: *r.at}
			r.at, r.sent = nil, 0
			if !n.tell(ctx, r, c) {
				return ctx.Err()
			}
		}
	}
	return nil
}

func (n *Notifier) connect(ctx context.Context, b *Block) error {
	n.setTip(b.Ref)
	if !n.emit(ctx, Event{Kind: Connected, Block: b.Ref, Parent: b.Parent, Transfers: b.Transfers, Spends: b.Spends}) {
		return ctx.Err()
	}
	for _, r := range n.regs {
		if r.at == nil && slices.Contains(b.TxIDs, r.txid) {
			ref := b.Ref
			r.at = &ref
		}
	}
	return n.count(ctx, b.Ref.Height)
}

// count tells every mined registration its confirmations with the chain's
// tip at height, and forgets those confirmed beyond the reorg depth.
func (n *Notifier) count(ctx context.Context, height uint64) error {
	keep := n.regs[:0]
	for _, r := range n.regs {
		if r.at != nil {
			confs := height - r.at.Height + 1
			if confs > r.sent {
				kind := Update
				if confs >= r.want && r.sent < r.want {
					kind = Confirmed
				}
				if confs <= r.want || kind == Confirmed {
					if !n.tell(ctx, r, Conf{Kind: kind, Confirmations: confs, Block: *r.at}) {
						return ctx.Err()
					}
				}
				r.sent = confs
			}
			if confs >= r.want+uint64(n.o.ReorgDepth) {
				close(r.ch)
				continue
			}
		}
		keep = append(keep, r)
	}
	n.regs = keep
	return nil
}

func (n *Notifier) tell(ctx context.Context, r *registration, c Conf) bool {
	select {
	case r.ch <- c:
		return true
	case <-ctx.Done():
		return false
	}
}

func (n *Notifier) register(ctx context.Context, r *registration) error {
	if len(n.regs) >= maxRegistrations {
		return ErrTooManyRegistrations
	}
	h, mined, err := n.b.TxBlock(ctx, r.txid)
	if err != nil {
		return fmt.Errorf("chain: register %s: %w", r.txid, err)
	}
	if mined {
		blk, err := n.b.Block(ctx, h, nil)
		if err != nil {
			return fmt.Errorf("chain: register %s: %w", r.txid, err)
		}
		// Counted only if the block is on the chain the Notifier has
		// connected (a block above its tip is met when connected).
		if mine, ok := n.f.Kept(int64(blk.Ref.Height)); ok && mine == h {
			ref := blk.Ref
			r.at = &ref
		} else if int64(blk.Ref.Height) < n.f.Base() {
			ref := blk.Ref
			r.at = &ref
		}
	}
	n.regs = append(n.regs, r)
	return n.count(ctx, uint64(n.f.Height()))
}
