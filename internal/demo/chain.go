package demo

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/btcsuite/btcd/btcutil"

	"kinko/internal/ceremony"
	"kinko/internal/chain/btc/regtest"
	"kinko/internal/chain/btcchain"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/keys"
	"kinko/internal/ledger"
	"kinko/internal/operators"
	"kinko/internal/reserves"
	"kinko/internal/wallet"
	"kinko/internal/watch"
)

// Confirmations is what the demo's watcher waits for before crediting.
const Confirmations = 6

// Tolerance is the reconciliation difference the demo accepts, in
// satoshi: the network fees the customer wallets paid for ceremonies until
// the house tops them up (docs/watch.md). Thefts are caught by the outflow
// check, which has no tolerance.
const Tolerance = 100_000

// KeyPassphrase protects the demo's key files. A demo only: real keys are
// made on offline machines with `kinko keys new`.
const KeyPassphrase = "kinko-demo-keys"

// Chain is the demo's Bitcoin side: a regtest node, the four wallets and
// the deposit watcher.
type Chain struct {
	Node    *regtest.Node
	KeyDir  string
	watcher *watch.Deposits
	cancel  context.CancelFunc
	done    chan struct{}
}

// demoWallets are the four wallets: id, kind and ledger owner.
var demoWallets = []struct {
	id    uint32
	kind  custody.WalletKind
	owner ledger.OwnerID
	name  string
}{
	{1, custody.ColdCustomer, OwnerColdCustomer, "cold-customer"},
	{2, custody.HotCustomer, OwnerHotCustomer, "hot-customer"},
	{3, custody.ColdHouse, OwnerColdHouse, "cold-house"},
	{4, custody.HotHouse, OwnerHotHouse, "hot-house"},
}

// StartChain starts a regtest node in dataDir/btcd; on a data directory
// without wallets it makes twelve keys (three a wallet) in dataDir/demo-keys,
// registers the four 2-of-3 wallets, hands each demo customer a deposit
// address and pays it on chain; then it runs the deposit watcher until Stop.
//
// cfg configures the watcher (alerts, detection latency, the co-signers to
// tell); its asset, books and confirmations are the demo's.
//
// The wallets are registered as an operator registers one: a
// register_wallet request asked by one of team's admins and approved by
// another.
func StartChain(ctx context.Context, c *core.Core, dataDir string, cfg watch.DepositConfig, team *operators.Team) (*Chain, error) {
	cfg.Confirmations, cfg.StartHeight = Confirmations, regtest.SegwitHeight
	if cfg.Tolerance == 0 {
		cfg.Tolerance = Tolerance
	}
	node, err := regtest.Start(ctx, regtest.Options{Dir: filepath.Join(dataDir, "btcd"), Keep: true})
	if err != nil {
		return nil, err
	}
	ch := &Chain{Node: node, KeyDir: filepath.Join(dataDir, "demo-keys")}
	fail := func(err error) (*Chain, error) { node.Stop(); return nil, err }
	var have int
	c.Read(func(s *core.State) {
		for _, w := range s.Custody.Wallets() {
			if w.Asset == 2 {
				have++
			}
		}
	})
	if have == 0 {
		if err := ch.seedWallets(ctx, c, team); err != nil {
			return fail(err)
		}
	}
	w, err := watch.ForAsset(ctx, c, btcchain.New(node.Client(), node.Config(), uint64(max(cfg.StartHeight, 0))), regtest.Net, "BTC", cfg)
	if err != nil {
		return fail(err)
	}
	ch.watcher = w
	if have == 0 {
		// The opening deposits: seen in the mempool, then six
		// confirmations, credited before kinko says it is running.
		if err := w.Step(ctx); err != nil {
			return fail(err)
		}
		if _, err := node.Generate(ctx, 6); err != nil {
			return fail(err)
		}
		if err := w.Step(ctx); err != nil {
			return fail(err)
		}
		// The opening refill: the hot wallet gets its share of the
		// customers' coins by the ceremony, two cold keys signing.
		if err := ch.refill(ctx, c, w); err != nil {
			return fail(err)
		}
	}
	wctx, cancel := context.WithCancel(context.Background())
	// The node pushes its mempool and blocks to the watcher; polling
	// covers what a gap misses.
	if err := w.Subscribe(wctx); err != nil {
		cancel()
		return fail(err)
	}
	ch.cancel, ch.done = cancel, make(chan struct{})
	// The watcher runs until Stop cancels its context.
	go func() { defer close(ch.done); w.Run(wctx) }()
	return ch, nil
}

// submitNow journals cmd in c now; a refusal, the command's or an
// event's, is its error.
func submitNow(ctx context.Context, c *core.Core, cmd core.Command) (any, error) {
	o, err := c.Do(ctx, time.Now(), cmd)
	return o.Value, err
}

func (ch *Chain) seedWallets(ctx context.Context, c *core.Core, team *operators.Team) error {
	if err := os.MkdirAll(ch.KeyDir, 0o700); err != nil {
		return err
	}
	submit := func(cmd core.Command) (any, error) { return submitNow(ctx, c, cmd) }
	descs := map[uint32]*wallet.Descriptor{}
	for _, dw := range demoWallets {
		d := &wallet.Descriptor{M: 2, Net: regtest.Net}
		for i := 1; i <= 3; i++ {
			k, err := keys.New(rand.Reader, regtest.Net)
			if err != nil {
				return err
			}
			if err := k.Save(filepath.Join(ch.KeyDir, fmt.Sprintf("%s-%d.key", dw.name, i)), KeyPassphrase, keys.TestKDF, regtest.Net); err != nil {
				return err
			}
			ak, _, err := wallet.AccountKey(k.Master, regtest.Net, 0)
			if err != nil {
				return err
			}
			d.Keys = append(d.Keys, ak)
		}
		descs[dw.id] = d
		for _, cmd := range team.RegisterWallets(time.Now(), custody.Wallet{ID: dw.id, Kind: dw.kind, Asset: 2, Descriptor: d.String(), Owner: dw.owner}) {
			if _, err := submit(cmd); err != nil {
				return fmt.Errorf("demo: wallet %s: %w", dw.name, err)
			}
		}
	}
	pay := map[string]btcutil.Amount{}
	for i, p := range Customers {
		v, err := submit(core.AssignAddress{Wallet: 1, Customer: p.Customer})
		if err != nil {
			return err
		}
		a, _, err := descs[1].Address(0, v.(uint32))
		if err != nil {
			return err
		}
		pay[a.EncodeAddress()] = btcutil.Amount(50_000_000 * (i + 1))
	}
	_, err := ch.Node.SendTo(ctx, pay)
	return err
}

// refill runs the refill ceremony on the demo's wallets: the core plans it
// and journals it with its inputs reserved, cold keys 1 and 2 sign it (on
// a demo's one machine; in service each on its offline machine with
// kinko cold sign), it is broadcast and mined, and the watcher records it.
func (ch *Chain) refill(ctx context.Context, c *core.Core, w *watch.Deposits) error {
	var cold, hot custody.Wallet
	c.Read(func(s *core.State) {
		cold, _ = s.Custody.Wallet(1)
		hot, _ = s.Custody.Wallet(2)
	})
	coldD, err := wallet.Parse(cold.Descriptor, regtest.Net)
	if err != nil {
		return err
	}
	set, err := wallet.NewSet([]wallet.Named{{ID: cold.ID, Kind: cold.Kind.String(), Descriptor: cold.Descriptor}, {ID: hot.ID, Kind: hot.Kind.String(), Descriptor: hot.Descriptor}}, coldD)
	if err != nil {
		return err
	}
	var plan *ceremony.Plan
	c.Read(func(s *core.State) {
		plan, err = ceremony.Tiers(s, set, reserves.DefaultPolicy, 10, "dev-refill-1", Operators[0].Name)
	})
	if err != nil {
		return fmt.Errorf("demo: refill: %w", err)
	}
	if o, err := c.Submit(ctx, time.Now(), plan.Command); err != nil || o.Err != nil {
		return fmt.Errorf("demo: refill: %v %v", err, o.Err)
	}
	for i := 1; i <= 2; i++ {
		k, err := keys.Load(filepath.Join(ch.KeyDir, fmt.Sprintf("cold-customer-%d.key", i)), KeyPassphrase, regtest.Net)
		if err != nil {
			return err
		}
		ak, acct, err := wallet.AccountKey(k.Master, regtest.Net, 0)
		if err != nil {
			return err
		}
		if _, err := set.Sign(plan.PSBT, acct, ak.Fingerprint); err != nil {
			return err
		}
	}
	tx, err := wallet.Finalize(plan.PSBT)
	if err != nil {
		return err
	}
	if _, err := ch.Node.Client().Broadcast(ctx, tx); err != nil {
		return err
	}
	if _, err := ch.Node.Generate(ctx, Confirmations); err != nil {
		return err
	}
	return w.Step(ctx)
}

// Watcher returns the chain watcher.
func (ch *Chain) Watcher() *watch.Deposits { return ch.watcher }

// Pending returns the deposits seen and not yet credited.
func (ch *Chain) Pending() []watch.Pending { return ch.watcher.Pending() }

// Stop stops the watcher, then the node.
func (ch *Chain) Stop() {
	if ch.cancel != nil {
		ch.cancel()
		<-ch.done
		ch.watcher.Unsubscribe()
	}
	ch.Node.Stop()
}
