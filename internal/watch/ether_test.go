package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/chain"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ethwallet"
	"kinko/internal/ledger"
	"kinko/internal/operators"
)

const ethAsset ledger.AssetID = 3

// twentyETH is 2×10^19 wei: above 2^64 (about 1.8×10^19).
var twentyETH = ledger.Amount{Hi: 1, Lo: 20_000_000_000_000_000_000 - 1<<64}

func ethBalance(c Core, owner ledger.OwnerID) ledger.Amount {
	var v ledger.Amount
	c.Read(func(s *core.State) {
		a, _ := s.Ledger.Account(ledger.AccountKey{Owner: owner, Asset: ethAsset, Kind: ledger.KindAvailable})
		v = a.Balance()
	})
	return v
}

// etherCore opens a core with ETH (18 decimals), customers 1 to 3, the
// cold customer Safe wallet 1 of cold and the hot customer Safe wallet 2
// of hot, and hands wallet 1's addresses 0 and 1 to customers 1 and 2.
// Tests check the core's invariants after every command; benchmarks run it
// as it runs in production, without.
func etherCore(t testing.TB, cold, hot ethwallet.Descriptor) *core.Core {
	t.Helper()
	c, _ := etherCoreTeam(t, cold, hot)
	return c
}

// etherCoreTeam is etherCore and the team that founded it (its admins
// file and approve requests).
func etherCoreTeam(t testing.TB, cold, hot ethwallet.Descriptor) (*core.Core, *operators.Team) {
	t.Helper()
	ctx := context.Background()
	_, bench := t.(*testing.B)
	c, err := core.Open(ctx, core.Config{Dir: t.TempDir(), CheckInvariants: !bench})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	team := operators.Crew("ether deposit test")
	cmds := append([]core.Command{core.CreateAssets{Assets: []ledger.Asset{{ID: ethAsset, Code: "ETH", Decimals: 18, Class: ledger.ClassChain}}},
		core.CreateCustomers{IDs: []ledger.OwnerID{1, 2, 3}}}, team.Bootstrap(time.Now())...)
	cmds = append(cmds, team.RegisterWallets(time.Now(),
		custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: ethAsset, Descriptor: cold.String(), Owner: custody.WalletOwner(1)},
		custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: ethAsset, Descriptor: hot.String(), Owner: custody.WalletOwner(2)})...)
	cmds = append(cmds, core.AssignAddress{Wallet: 1, Customer: 1}, core.AssignAddress{Wallet: 1, Customer: 2})
	for _, cmd := range cmds {
		if o, err := c.Submit(ctx, time.Now(), cmd); err != nil || o.Err != nil || o.EventErr() != nil {
			t.Fatalf("%s: %v %v %v", cmd.Kind(), err, o.Err, o.EventErr())
		}
	}
	return c, team
}

func artifacts(t testing.TB) *safe.Artifacts {
	t.Helper()
	art, err := safe.LoadInstalled()
	if err != nil {
		t.Fatal(err)
	}
	return art
}

func fakeAddr(b byte) ethwallet.Address {
	var a ethwallet.Address
	a[0], a[19] = 0xc0, b
	return a
}

// fakeDescriptors are a cold and a hot Safe on chain 1337 with made-up
// contract and owner addresses (fakeChain never runs them).
func fakeDescriptors() (cold, hot ethwallet.Descriptor) {
	cold = ethwallet.Descriptor{ChainID: 1337, Singleton: fakeAddr(1), Factory: fakeAddr(2), Fallback: fakeAddr(3), Threshold: 2,
		Owners: []ethwallet.Address{fakeAddr(10), fakeAddr(11), fakeAddr(12)}}
	hot = cold
	hot.Owners = []ethwallet.Address{fakeAddr(20), fakeAddr(21), fakeAddr(22)}
	return cold, hot
}

// fakeChain is a chain.Backend over blocks held in memory, for the reorg
// logic geth --dev cannot show (it never reorganises). Blocks are built
// with mine; reorg replaces the best chain above a height.
type fakeChain struct {
	mu     sync.Mutex
	best   []*chain.Block // by height
	serial byte
	// lie, if set, changes the block Block returns.
	lie func(*chain.Block) *chain.Block
	// errFor, if set, is asked after lie for an error Block returns.
	errFor func() error
}

func newFakeChain() *fakeChain {
	f := &fakeChain{}
	f.best = []*chain.Block{{Ref: chain.BlockRef{Height: 0, Hash: f.id(0xff)}}}
	return f
}

func (f *fakeChain) id(tag byte) chain.ID {
	f.serial++
	return chain.NewID(chain.Ethereum, [32]byte{tag, f.serial, 0xbb})
}

// mine appends a block holding the transfers.
func (f *fakeChain) mine(ts ...chain.Transfer) *chain.Block {
	f.mu.Lock()
	defer f.mu.Unlock()
	top := f.best[len(f.best)-1]
	b := &chain.Block{Ref: chain.BlockRef{Height: top.Ref.Height + 1, Hash: f.id(byte(len(f.best)))}, Parent: top.Ref.Hash, Transfers: ts}
	for _, t := range ts {
		b.TxIDs = append(b.TxIDs, t.Tx)
	}
	f.best = append(f.best, b)
	return b
}

// reorg drops the best chain's blocks above height.
func (f *fakeChain) reorg(height uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.best = f.best[:height+1]
}

func (f *fakeChain) Family() chain.Family { return chain.Ethereum }
func (f *fakeChain) ParseAddress(s string) (string, error) {
	if !common.IsHexAddress(s) {
		return "", chain.ErrBadAddress
	}
	return common.HexToAddress(s).Hex(), nil
}
func (f *fakeChain) Tip(context.Context) (chain.BlockRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.best[len(f.best)-1].Ref, nil
}
func (f *fakeChain) HashAt(_ context.Context, h uint64) (chain.ID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h >= uint64(len(f.best)) {
		return chain.ID{}, chain.ErrNotFound
	}
	return f.best[h].Ref.Hash, nil
}
func (f *fakeChain) Block(_ context.Context, h chain.ID, w *chain.Watch) (*chain.Block, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.best {
		if b.Ref.Hash == h {
			out := *b
			out.Transfers = nil
			for _, t := range b.Transfers {
				if w.Has(t.To) || w.Has(t.From) {
					out.Transfers = append(out.Transfers, t)
				}
			}
			if f.lie != nil {
				lied := f.lie(&out)
				if f.errFor != nil {
					if err := f.errFor(); err != nil {
						return nil, err
					}
				}
				return lied, nil
			}
			return &out, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", chain.ErrNotFound, h)
}
func (f *fakeChain) TxBlock(context.Context, chain.ID) (chain.ID, bool, error) {
	return chain.ID{}, false, nil
}
func (f *fakeChain) PollPending(context.Context, *chain.Watch) ([]chain.Transfer, error) {
	return nil, nil
}
func (f *fakeChain) Subscribe(context.Context, *chain.Watch, func(), func(chain.Transfer)) (io.Closer, error) {
	return nil, errors.New("fake: no push")
}
func (f *fakeChain) Balance(context.Context, string, string, chain.ID) (chain.Amount, error) {
	return chain.Amount{}, errors.New("fake: no balances")
}
func (f *fakeChain) Broadcast(context.Context, []byte) (chain.ID, error) {
	return chain.ID{}, chain.ErrRejected
}
func (f *fakeChain) FeeEstimate(context.Context) (chain.Fee, error) { return chain.Fee{}, nil }

func stepOK(t *testing.T, d *EtherDeposits) {
	t.Helper()
	if err := d.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestEtherReorg (one package, a fake chain: geth --dev cannot
// reorganise): a 20 ETH deposit credited after three blocks is reversed
// when its block leaves the best chain (at the step after the one whose
// reversal the core's link refused), the asset's deposits halt, and the
// same transaction mined again on the new chain is kept, not credited,
// while they are halted; a reorg deeper than the blocks kept halts
// deposits and stops the watcher.
func TestEtherReorg(t *testing.T) {
	ctx := context.Background()
	cold, hot := fakeDescriptors()
	c := etherCore(t, cold, hot)
	art := artifacts(t)
	f := newFakeChain()
	link := &refuseReversal{Core: c}
	d, err := NewEtherDeposits(ctx, link, f, art, EtherConfig{Asset: ethAsset, ChainID: 1337, Confirmations: 3})
	if err != nil {
		t.Fatal(err)
	}
	addr, ok := d.Address(1, 0)
	if !ok {
		t.Fatal("address 0 not followed")
	}
	tx := f.id(0x77)
	f.mine()
	f.mine(chain.Transfer{Tx: tx, From: common.HexToAddress("0x1234").Hex(), To: addr.Hex(), Amount: twentyETH})
	f.mine()
	stepOK(t, d)
	if got := ethBalance(c, 1); !got.IsZero() {
		t.Fatalf("credited at 2 confirmations: %s", got)
	}
	f.mine()
	stepOK(t, d)
	if got := ethBalance(c, 1); got != twentyETH {
		t.Fatalf("balance at 3 confirmations = %s; want %s", got, twentyETH)
	}
	// The deposit's block leaves: the new best chain is longer, without it.
	f.reorg(1)
	f.mine()
	f.mine()
	f.mine()
	f.mine()
	if err := d.Step(ctx); err == nil || link.refused != 1 {
		t.Fatalf("step with the reversal refused: %v (%d refused); want its error", err, link.refused)
	}
	if got := ethBalance(c, 1); got != twentyETH {
		t.Fatalf("balance with the reversal refused = %s; want still %s", got, twentyETH)
	}
	stepOK(t, d)
	if got := ethBalance(c, 1); !got.IsZero() {
		t.Fatalf("balance after the reorg = %s; want 0", got)
	}
	var halted error
	var state custody.DepositState
	c.Read(func(s *core.State) {
		halted = s.Controls.Allowed(ethAsset, controls.Deposit)
		dep, _ := s.Custody.Deposit(custody.Outpoint{TxID: tx.Bytes()})
		state = dep.State
	})
	if halted == nil || state != custody.DepositReversed {
		t.Fatalf("after the reorg: deposits allowed (%v), deposit state %d; want halted and reversed", halted, state)
	}
	// The same transaction mined on the new chain: its outpoint was
	// reversed (custody refuses it again: an operator's case). A new
	// deposit with the confirmations is kept, not credited, while deposits
	// are halted.
	fresh := f.id(0x78)
	f.mine(chain.Transfer{Tx: tx, To: addr.Hex(), Amount: twentyETH}, chain.Transfer{Tx: fresh, To: addr.Hex(), Amount: ledger.AmountOf(7)})
	for range 4 {
		f.mine()
	}
	stepOK(t, d)
	if got := ethBalance(c, 1); !got.IsZero() {
		t.Fatalf("balance after re-mining while halted = %s", got)
	}
	if p := d.Pending(); len(p) != 1 || p[0].Tx != fresh || p[0].Amount != ledger.AmountOf(7) || p[0].Confirmations != 5 {
		t.Fatalf("pending = %+v; want the new deposit kept at 5 confirmations", p)
	}
	// A reorg deeper than Confirmations + etherKeep blocks.
	for range d.keep() + 5 {
		f.mine()
	}
	stepOK(t, d)
	tip, _ := f.Tip(ctx)
	f.reorg(tip.Height - uint64(d.keep()) - 2)
	for range d.keep() + 4 {
		f.mine()
	}
	if err := d.Step(ctx); !errors.Is(err, chain.ErrReorgTooDeep) {
		t.Fatalf("deep reorg: %v; want ErrReorgTooDeep", err)
	}
	if err := d.Step(ctx); !errors.Is(err, chain.ErrReorgTooDeep) {
		t.Fatalf("step after a deep reorg: %v; want ErrReorgTooDeep again", err)
	}
	c.Read(func(s *core.State) { halted = s.Controls.Allowed(ethAsset, controls.Deposit) })
	if halted == nil {
		t.Fatal("deposits not halted after a deep reorg")
	}
	// One started only now, on kept blocks the chain no longer has,
	// starts and stops the same way.
	late, err := NewEtherDeposits(ctx, c, f, art, EtherConfig{Asset: ethAsset, ChainID: 1337, Confirmations: 3})
	if err != nil {
		t.Fatalf("a watcher started after the deep reorg: %v", err)
	}
	if err := late.Step(ctx); !errors.Is(err, chain.ErrReorgTooDeep) {
		t.Fatalf("a watcher started after the deep reorg, its first step: %v; want ErrReorgTooDeep", err)
	}
	// The recovery: nothing credited left (the 20 ETH were reversed
	// before); the checkpoint on the best chain below the stopped window
	// holds the height of the 7 wei kept through the halt, which a
	// watcher started from it finds again on the best chain.
	// A node behind the checkpoint (wiped, or syncing) is no reorg:
	// nothing is planned.
	f.mu.Lock()
	saved := f.best
	f.best = f.best[:len(f.best)-d.keep()-8]
	f.mu.Unlock()
	if _, err := PlanReorgRecovery(ctx, c, f, ethAsset); !errors.Is(err, chain.ErrNodeBehind) {
		t.Fatalf("a recovery planned on a node behind the checkpoint: %v; want ErrNodeBehind", err)
	}
	f.mu.Lock()
	f.best = saved
	f.mu.Unlock()
	plan, err := PlanReorgRecovery(ctx, c, f, ethAsset)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Gone) != 0 || plan.From.Height >= uint64(plan.Stopped.Height)-uint64(len(plan.Stopped.Hashes))+1 {
		t.Fatalf("plan %+v; want nothing to reverse, a checkpoint below the stopped window", plan)
	}
	if err := RecoverReorg(ctx, c, time.Now(), plan, "aiko"); err != nil {
		t.Fatal(err)
	}
	d2, err := NewEtherDeposits(ctx, c, f, art, EtherConfig{Asset: ethAsset, ChainID: 1337, Confirmations: 3})
	if err != nil {
		t.Fatal(err)
	}
	stepOK(t, d2)
	if p := d2.Pending(); len(p) != 1 || p[0].Tx != fresh {
		t.Fatalf("pending after the recovery: %+v; want the 7 wei kept", p)
	}
	if _, err := PlanReorgRecovery(ctx, c, f, ethAsset); !errors.Is(err, ErrNoDeepReorg) {
		t.Fatalf("a second plan: %v; want ErrNoDeepReorg", err)
	}
}

// TestInternalEtherReorg (fake chain): one transaction's own value to
// customer 1 (index 0) and two internal calls' to customers 1 and 2
// (InternalIndex 1 and 2) are three deposits, credited at three
// confirmations, once each across steps and a restart; when their block
// leaves the best chain all three are reversed and deposits halt.
func TestInternalEtherReorg(t *testing.T) {
	ctx := context.Background()
	cold, hot := fakeDescriptors()
	c := etherCore(t, cold, hot)
	art := artifacts(t)
	f := newFakeChain()
	cfg := EtherConfig{Asset: ethAsset, ChainID: 1337, Confirmations: 3}
	d, err := NewEtherDeposits(ctx, c, f, art, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a0, _ := d.Address(1, 0)
	a1, _ := d.Address(1, 1)
	tx := f.id(0x79)
	from := common.HexToAddress("0x1234").Hex()
	f.mine()
	f.mine(chain.Transfer{Tx: tx, From: from, To: a0.Hex(), Amount: ledger.AmountOf(1e18)},
		chain.Transfer{Tx: tx, Index: chain.InternalIndex(1), From: from, To: a0.Hex(), Amount: ledger.AmountOf(3)},
		chain.Transfer{Tx: tx, Index: chain.InternalIndex(2), From: from, To: a1.Hex(), Amount: ledger.AmountOf(5)})
	f.mine()
	stepOK(t, d)
	if b1, b2 := ethBalance(c, 1), ethBalance(c, 2); !b1.IsZero() || !b2.IsZero() {
		t.Fatalf("credited at 2 confirmations: %s, %s", b1, b2)
	}
	if p := d.Pending(); len(p) != 3 || p[0].Vout != custody.EtherIndex || p[1].Vout != custody.InternalIndex(1) || p[2].Vout != custody.InternalIndex(2) {
		t.Fatalf("pending %+v; want the three by index", p)
	}
	f.mine()
	stepOK(t, d)
	d2, err := NewEtherDeposits(ctx, c, f, art, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.mine()
	stepOK(t, d2)
	stepOK(t, d)
	if b1, b2 := ethBalance(c, 1), ethBalance(c, 2); b1 != ledger.AmountOf(1e18+3) || b2 != ledger.AmountOf(5) {
		t.Fatalf("credited %s and %s; want 1 ETH + 3 wei and 5 wei", b1, b2)
	}
	count := func(state custody.DepositState) (n int) {
		c.Read(func(s *core.State) {
			s.Custody.Deposits(func(dp *custody.Deposit) bool {
				if dp.State == state {
					n++
				}
				return true
			})
		})
		return n
	}
	if n := count(custody.DepositCredited); n != 3 {
		t.Fatalf("%d deposits credited; want 3", n)
	}
	f.reorg(1)
	for range 5 {
		f.mine()
	}
	stepOK(t, d)
	if b1, b2 := ethBalance(c, 1), ethBalance(c, 2); !b1.IsZero() || !b2.IsZero() {
		t.Fatalf("after the reorg: %s and %s; want 0", b1, b2)
	}
	var halted error
	c.Read(func(s *core.State) { halted = s.Controls.Allowed(ethAsset, controls.Deposit) })
	if n := count(custody.DepositReversed); n != 3 || halted == nil {
		t.Fatalf("after the reorg: %d reversed, deposits allowed (%v); want 3 reversed and halted", n, halted)
	}
}

// TestEtherBadChainData: a block that is not the one asked for, or holds
// an Ether transfer with a log index (or an internal index of frame 0),
// a zero amount or a transaction's value twice, is refused with ErrChainData, and the watcher takes
// nothing of it: its height and the ledger stay.
func TestEtherBadChainData(t *testing.T) {
	ctx := context.Background()
	cold, hot := fakeDescriptors()
	c := etherCore(t, cold, hot)
	f := newFakeChain()
	d, err := NewEtherDeposits(ctx, c, f, artifacts(t), EtherConfig{Asset: ethAsset, ChainID: 1337, Confirmations: 1})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := d.Address(1, 0)
	good := chain.Transfer{Tx: f.id(0x55), To: addr.Hex(), Amount: ledger.AmountOf(5)}
	f.mine(good)
	for name, lie := range map[string]func(*chain.Block) *chain.Block{
		"another height": func(b *chain.Block) *chain.Block { b.Ref.Height++; return b },
		"another hash":   func(b *chain.Block) *chain.Block { b.Ref.Hash = chain.NewID(chain.Ethereum, [32]byte{1}); return b },
		"log index":      func(b *chain.Block) *chain.Block { b.Transfers[0].Index = 3; return b },
		"zero amount":    func(b *chain.Block) *chain.Block { b.Transfers[0].Amount = ledger.Amount{}; return b },
		"internal index of frame 0": func(b *chain.Block) *chain.Block {
			b.Transfers[0].Index = chain.InternalBase // the transaction's own frame is index 0
			return b
		},
		"twice": func(b *chain.Block) *chain.Block {
			b.Transfers = append(b.Transfers, b.Transfers[0])
			return b
		},
		"bitcoin id": func(b *chain.Block) *chain.Block {
			b.Transfers[0].Tx = chain.NewID(chain.Bitcoin, good.Tx.Bytes())
			return b
		},
	} {
		f.lie = lie
		if err := d.Step(ctx); !errors.Is(err, ErrChainData) {
			t.Errorf("%s: Step = %v; want ErrChainData", name, err)
		}
		if d.height() != 0 || len(d.inBlocks) != 0 || !ethBalance(c, 1).IsZero() {
			t.Fatalf("%s: height %d, %d pending, balance %s after bad data", name, d.height(), len(d.inBlocks), ethBalance(c, 1))
		}
	}
	f.lie = nil
	stepOK(t, d)
	if got := ethBalance(c, 1); got != ledger.AmountOf(5) {
		t.Fatalf("balance from the true block = %s; want 5 wei", got)
	}
}

// TestEtherWalletChain: a Safe wallet of the asset on another chain, or a
// wallet of the asset that is not a Safe, stops the watcher at start.
func TestEtherWalletChain(t *testing.T) {
	cold, hot := fakeDescriptors()
	c := etherCore(t, cold, hot)
	if _, err := NewEtherDeposits(context.Background(), c, newFakeChain(), artifacts(t), EtherConfig{Asset: ethAsset, ChainID: 1}); !errors.Is(err, ErrWalletChain) {
		t.Fatalf("wallets of chain 1337, node on 1: %v; want ErrWalletChain", err)
	}
}

// TestEtherCheckpointHeartbeat: on a chain that does not move (geth --dev
// seals nothing while idle), the watcher journals nothing more until
// CheckpointEvery has passed by its clock, then one checkpoint, so the
// core's readiness sees it run.
func TestEtherCheckpointHeartbeat(t *testing.T) {
	ctx := context.Background()
	cold, hot := fakeDescriptors()
	c := etherCore(t, cold, hot)
	f := newFakeChain()
	f.mine()
	now := time.Unix(1_800_000_000, 0)
	d, err := NewEtherDeposits(ctx, c, f, artifacts(t), EtherConfig{Asset: ethAsset, ChainID: 1337, Confirmations: 3,
		CheckpointEvery: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	stepOK(t, d) // the chain moved: a checkpoint
	head := func() uint64 { h, _, _ := c.Journal().Head(); return h }
	at := head()
	now = now.Add(59 * time.Second)
	stepOK(t, d)
	if head() != at {
		t.Fatalf("journal %d → %d within the interval on an idle chain", at, head())
	}
	now = now.Add(time.Second)
	stepOK(t, d)
	if head() != at+1 {
		t.Fatalf("journal %d → %d after the interval; want one checkpoint", at, head())
	}
	var cp core.WatchCheckpoint
	c.Read(func(s *core.State) { cp = s.Checkpoints[ethAsset] })
	if cp.Height != 1 {
		t.Fatalf("checkpoint at %d; want 1", cp.Height)
	}
}
