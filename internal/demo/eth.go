package demo

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/alert"
	"kinko/internal/chain"
	"kinko/internal/chain/btc/regtest"
	"kinko/internal/chain/eth/devnet"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/chain/ethchain"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ethwallet"
	"kinko/internal/keys"
	"kinko/internal/ledger"
	"kinko/internal/operators"
	"kinko/internal/watch"
)

// The demo's Ether.
const (
	// EthAsset is ETH in the demo's registry.
	EthAsset ledger.AssetID = 3
	// EthConfirmations is what the demo's Ether watcher waits for before
	// crediting (counting the deposit's own block).
	EthConfirmations = 3
	// ColdEthWallet is the cold customer Safe wallet (the customers'
	// counterfactual deposit Safes); HotEthWallet the hot Safe.
	ColdEthWallet uint32 = 5
	HotEthWallet  uint32 = 6
)

// HotEthFloat is the ether the dev puts in its hot Safe, from the node's
// developer account, the house's in the ledger: what the dev's Ether
// withdrawals are paid from (the customers' deposits stay cold).
var HotEthFloat = new(big.Int).Mul(big.NewInt(20), big.NewInt(1e18))

// hotEthFloatID is the ledger transfer that records the float, once.
var hotEthFloatID = ledger.ID{Hi: 0xE7_4F10A7, Lo: 1}

// ErrEthUnavailable reports that this machine lacks what the demo's
// Ethereum side needs (the geth binary, the Safe contracts): kinko dev
// then runs without ETH and says how to get them.
var ErrEthUnavailable = errors.New("demo: Ethereum is not available on this machine")

// ethState is what the demo keeps of its chain between starts
// (DATA/eth-dev.json): the Safe contracts it deployed and the hot Safe.
type ethState struct {
	ChainID           uint64         `json:"chain_id"`
	Singleton         common.Address `json:"singleton"`
	ProxyFactory      common.Address `json:"proxy_factory"`
	MultiSendCallOnly common.Address `json:"multisend_call_only"`
	FallbackHandler   common.Address `json:"fallback_handler"`
	HotSafe           common.Address `json:"hot_safe"`
}

// Eth is the demo's Ethereum side: a geth --dev node, the Safe contracts,
// the cold customer Safe wallet and the hot Safe, the Ether deposit
// watcher, the watcher of the hot Safe's executions (in blocks and in the
// node's pool), the deposit watchers of listed tokens and the
// reconciliation at every block.
type Eth struct {
	Node       *devnet.Node
	Deployment *safe.Deployment
	// Artifacts are the installed Safe contracts (the API derives the
	// customers' deposit addresses from them).
	Artifacts *safe.Artifacts
	HotSafe   common.Address
	KeyDir    string
	Deposits  *watch.EtherDeposits
	Exec      *watch.EthExec
	Tokens    *watch.TokenDeposits
	Recon     *watch.EthRecon
	cancel    context.CancelFunc
	done      chan struct{}
}

// EthOptions configure the demo's Ethereum watchers.
type EthOptions struct {
	Logger *slog.Logger
	Alert  func(alert.Alert)
	// OnUnexplained is told of an execution of the hot Safe no journaled
	// batch explains, before the core (the dev's co-signer halts ETH).
	OnUnexplained func(asset ledger.AssetID, safeTxHash common.Hash, reason string)
	// Poll is how often the watchers step (default 500 ms).
	Poll time.Duration
}

// artifacts loads the installed Safe contracts, installing them with the
// project's script when they are missing and npm is at hand.
func artifacts(say func(string, ...any)) (*safe.Artifacts, error) {
	art, err := safe.LoadInstalled()
	if !errors.Is(err, safe.ErrNoArtifacts) {
		return art, err
	}
	script := installScript()
	_, npmErr := exec.LookPath("npm")
	_, nodeErr := exec.LookPath("node")
	if script == "" || npmErr != nil || nodeErr != nil {
		return nil, fmt.Errorf("%w: the Safe contracts %s are not installed and cannot be here (npm and node are needed): install npm and node "+
			"(apt-get install npm nodejs, or brew install node), then run scripts/install-safe-contracts.sh from the repository", ErrEthUnavailable, safe.Version)
	}
	say("installing the Safe contracts %s from npm (%s)...", safe.Version, script)
	cmd := exec.Command("bash", script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%w: %s failed: %v: %s", ErrEthUnavailable, script, err, strings.TrimSpace(string(out)))
	}
	return safe.LoadInstalled()
}

// installScript is scripts/install-safe-contracts.sh of the module kinko
// runs from, or "" outside the repository.
func installScript() string {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	m := strings.TrimSpace(string(gomod))
	if err != nil || m == "" || m == os.DevNull {
		return ""
	}
	p := filepath.Join(filepath.Dir(m), "scripts", "install-safe-contracts.sh")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// StartEth starts a geth --dev node in dataDir/geth (its chain kept
// across starts); on its first start it deploys the Safe contracts,
// makes the demo's Ethereum keys in dataDir/demo-keys, deploys the hot
// Safe and keeps what it deployed in dataDir/eth-dev.json. It registers
// the cold customer Safe wallet and the hot Safe in custody when the
// journal lacks them (two of team's admins), hands each demo customer an
// ETH deposit address, and runs the Ether deposit watcher and the watcher
// of the hot Safe's executions until Stop. say tells what it does.
//
// A machine without geth or the Safe contracts gets ErrEthUnavailable,
// before anything started.
func StartEth(ctx context.Context, c *core.Core, dataDir string, team *operators.Team, o EthOptions, say func(string, ...any)) (*Eth, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if _, err := devnet.Binary(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEthUnavailable, err)
	}
	art, err := artifacts(say)
	if err != nil {
		return nil, err
	}
	node, err := devnet.Start(ctx, devnet.Options{Dir: filepath.Join(dataDir, "geth"), Durable: true})
	if err != nil {
		return nil, err
	}
	e := &Eth{Node: node, Artifacts: art, KeyDir: filepath.Join(dataDir, "demo-keys")}
	fail := func(err error) (*Eth, error) { node.Stop(); return nil, fmt.Errorf("demo: ethereum: %w", err) }
	cl := node.Client()
	statePath := filepath.Join(dataDir, "eth-dev.json")
	var st ethState
	b, err := os.ReadFile(statePath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if st, err = e.deploy(ctx, art); err != nil {
			return fail(err)
		}
		b, _ := json.MarshalIndent(st, "", "  ")
		if err := writeFileSync(statePath, append(b, '\n')); err != nil {
			return fail(err)
		}
	case err != nil:
		return fail(err)
	default:
		if err := json.Unmarshal(b, &st); err != nil {
			return fail(fmt.Errorf("%s: %w", statePath, err))
		}
	}
	if st.ChainID != cl.ChainID().Uint64() {
		return fail(fmt.Errorf("%s names chain %d; the node is on %s", statePath, st.ChainID, cl.ChainID()))
	}
	e.Deployment = safe.NewDeployment(art, safe.L2, cl.ChainID(), safe.Addresses{Singleton: st.Singleton, ProxyFactory: st.ProxyFactory,
		MultiSendCallOnly: st.MultiSendCallOnly, FallbackHandler: st.FallbackHandler})
	if err := e.Deployment.Verify(ctx, cl); err != nil {
		return fail(fmt.Errorf("the Safe contracts %s names are not on the node in %s (was its chain removed? remove both to start the chain afresh, which the journal's ETH wallets then do not match): %w",
			statePath, node.Dir(), err))
	}
	e.HotSafe = st.HotSafe
	if code, err := cl.Code(ctx, e.HotSafe); err != nil || len(code) == 0 {
		return fail(fmt.Errorf("no hot Safe at %s on the node (%v)", e.HotSafe, err))
	}
	if err := e.register(ctx, c, team); err != nil {
		return fail(err)
	}
	if err := e.deepen(ctx); err != nil {
		return fail(err)
	}
	backend := ethchain.New(cl, node.WSURL(), nil, ethchain.WithTraces(true)) // the dev node serves debug on loopback
	if e.Deposits, err = watch.NewEtherDeposits(ctx, c, backend, art, watch.EtherConfig{Asset: EthAsset, ChainID: st.ChainID,
		Confirmations: EthConfirmations, CheckpointEvery: watch.DefaultCheckpointEvery, Logger: o.Logger.With("asset", "ETH")}); err != nil {
		return fail(err)
	}
	hot := []watch.WatchedSafe{{Name: "hot-eth", Address: e.HotSafe, Kind: custody.HotCustomer, Wallet: HotEthWallet}}
	if e.Exec, err = watch.NewEthExec(c, cl, watch.EthExecConfig{Asset: EthAsset, MultiSend: st.MultiSendCallOnly, StartBlock: 1, WSURL: node.WSURL(),
		Safes: hot, Logger: o.Logger.With("asset", "ETH"), OnUnexplained: o.OnUnexplained, Alert: o.Alert}); err != nil {
		return fail(err)
	}
	// A token listed on the dev's chain (register_token) is watched by a
	// deposit watcher of its own, following that contract alone.
	e.Tokens = watch.NewTokenDeposits(c, art, func(contract string) chain.Backend {
		return ethchain.New(cl, "", []common.Address{common.HexToAddress(contract)})
	}, watch.EtherConfig{ChainID: st.ChainID, Confirmations: EthConfirmations, CheckpointEvery: watch.DefaultCheckpointEvery, Logger: o.Logger.With("chain", st.ChainID)})
	// The reconciliation at every block: the hot Safe against the hot
	// wallet's ledger account, the cold wallet's handed-out deposit
	// addresses against its own (its Safe is counterfactual in the dev).
	if e.Recon, err = watch.NewEthRecon(c, backend, cl, art, watch.EthReconConfig{Asset: EthAsset, ChainID: st.ChainID, Safes: hot,
		Confirmations: EthConfirmations, Deposits: e.Deposits, StartBlock: 1, Logger: o.Logger.With("asset", "ETH"), Alert: o.Alert}); err != nil {
		return fail(err)
	}
	w := &watch.EtherWatch{Deposits: e.Deposits, Exec: e.Exec, Tokens: e.Tokens, Recon: e.Recon, Logger: o.Logger.With("asset", "ETH")}
	// One step of each before kinko says it runs: a deposit confirmed
	// while it was stopped is credited, an execution made meanwhile read,
	// the wallets reconciled.
	if err := w.Step(ctx); err != nil {
		return fail(err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan struct{})
	// The watchers run until Stop cancels their context.
	go func() {
		defer close(e.done)
		w.Run(wctx, o.Poll)
	}()
	return e, nil
}

// deepen mines blocks until what the hot Safe holds at the tip is what it
// held EthConfirmations-1 blocks below, the block the reconciliation
// reads: the float, journaled as soon as it is paid, is then on the chain
// the reconciliation compares (on a young chain, or after a start killed
// between the float's payment and its blocks), and no difference halts.
func (e *Eth) deepen(ctx context.Context) error {
	cl := e.Node.Client()
	for range 3 {
		tip, err := cl.BlockNumber(ctx)
		if err != nil {
			return err
		}
		deep := tip - min(tip, EthConfirmations-1)
		atTip, err := cl.Eth().BalanceAt(ctx, e.HotSafe, new(big.Int).SetUint64(tip))
		if err != nil {
			return err
		}
		atDeep, err := cl.Eth().BalanceAt(ctx, e.HotSafe, new(big.Int).SetUint64(deep))
		if err != nil {
			return err
		}
		if atTip.Cmp(atDeep) == 0 {
			return nil
		}
		if _, err := e.Node.Mine(ctx, EthConfirmations); err != nil {
			return err
		}
	}
	return errors.New("the hot Safe's balance keeps moving at the node's tip")
}

func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ethKey returns the hex key at path, making it on first use.
func ethKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k, err := crypto.GenerateKey()
		if err != nil {
			return nil, err
		}
		if err := writeFileSync(path, []byte(hex.EncodeToString(crypto.FromECDSA(k))+"\n")); err != nil {
			return nil, err
		}
		return k, nil
	}
	if err != nil {
		return nil, err
	}
	k, err := crypto.HexToECDSA(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// HotKeys returns the hot Safe's three owner keys (hot signer, co-signer,
// offline backup), kept in hex in the key directory (dev only).
func (e *Eth) HotKeys() ([]*ecdsa.PrivateKey, error) {
	var out []*ecdsa.PrivateKey
	for i := 1; i <= 3; i++ {
		k, err := ethKey(filepath.Join(e.KeyDir, fmt.Sprintf("eth-hot-%d.hex", i)))
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// GasKey returns the house gas account's key (hex, in the key directory).
func (e *Eth) GasKey() (*ecdsa.PrivateKey, error) {
	return ethKey(filepath.Join(e.KeyDir, "eth-gas.hex"))
}

// coldOwners returns the cold Safe's owners: the Ethereum keys (BIP-44
// m/44'/60'/0'/0/0) of three kinko key files, eth-cold-N.key, made on
// first use as `kinko keys new` makes them (passphrase KeyPassphrase).
func (e *Eth) coldOwners() ([]common.Address, error) {
	var out []common.Address
	for i := 1; i <= 3; i++ {
		path := filepath.Join(e.KeyDir, fmt.Sprintf("eth-cold-%d.key", i))
		k, err := keys.Load(path, KeyPassphrase, regtest.Net)
		if errors.Is(err, os.ErrNotExist) {
			if k, err = keys.New(rand.Reader, regtest.Net); err == nil {
				err = k.Save(path, KeyPassphrase, keys.TestKDF, regtest.Net)
			}
		}
		if err != nil {
			return nil, err
		}
		ek, err := k.EthereumKey()
		if err != nil {
			return nil, err
		}
		out = append(out, crypto.PubkeyToAddress(ek.PublicKey))
	}
	return out, nil
}

// descriptor is the custody descriptor of a 2-of-3 Safe of owners.
func (e *Eth) descriptor(owners []common.Address) ethwallet.Descriptor {
	d := e.Deployment
	desc := ethwallet.Descriptor{ChainID: d.ChainID.Uint64(), Singleton: ethwallet.Address(d.Singleton), Factory: ethwallet.Address(d.ProxyFactory),
		Fallback: ethwallet.Address(d.FallbackHandler), Threshold: 2}
	for _, o := range owners {
		desc.Owners = append(desc.Owners, ethwallet.Address(o))
	}
	return desc
}

func addrs(ks []*ecdsa.PrivateKey) []common.Address {
	var out []common.Address
	for _, k := range ks {
		out = append(out, crypto.PubkeyToAddress(k.PublicKey))
	}
	return out
}

// deploy deploys the Safe contracts and the hot Safe (salt nonce 0 of its
// descriptor), paid by the house gas account, which the node's developer
// account funds.
func (e *Eth) deploy(ctx context.Context, art *safe.Artifacts) (ethState, error) {
	if err := os.MkdirAll(e.KeyDir, 0o700); err != nil {
		return ethState{}, err
	}
	gas, err := e.GasKey()
	if err != nil {
		return ethState{}, err
	}
	cl := e.Node.Client()
	if _, err := e.Node.Fund(ctx, crypto.PubkeyToAddress(gas.PublicKey), new(big.Int).Mul(big.NewInt(1000), big.NewInt(1e18))); err != nil {
		return ethState{}, err
	}
	if e.Deployment, err = safe.Deploy(ctx, cl, gas, art, safe.L2); err != nil {
		return ethState{}, err
	}
	hot, err := e.HotKeys()
	if err != nil {
		return ethState{}, err
	}
	init, err := e.Deployment.Initializer(safe.Config{Owners: addrs(hot), Threshold: 2})
	if err != nil {
		return ethState{}, err
	}
	at, _, err := e.Deployment.CreateProxy(ctx, cl, gas, init, new(big.Int))
	if err != nil {
		return ethState{}, err
	}
	d := e.Deployment
	return ethState{ChainID: d.ChainID.Uint64(), Singleton: d.Singleton, ProxyFactory: d.ProxyFactory, MultiSendCallOnly: d.MultiSendCallOnly,
		FallbackHandler: d.FallbackHandler, HotSafe: at}, nil
}

// register registers the cold customer Safe wallet and the hot Safe when
// the journal lacks them, and hands each demo customer without one an
// ETH deposit address.
func (e *Eth) register(ctx context.Context, c *core.Core, team *operators.Team) error {
	submit := func(cmd core.Command) (any, error) { return submitNow(ctx, c, cmd) }
	cold, err := e.coldOwners()
	if err != nil {
		return err
	}
	hot, err := e.HotKeys()
	if err != nil {
		return err
	}
	coldD, hotD := e.descriptor(cold), e.descriptor(addrs(hot))
	for _, w := range []custody.Wallet{
		{ID: ColdEthWallet, Kind: custody.ColdCustomer, Asset: EthAsset, Descriptor: coldD.String(), Owner: OwnerColdCustomer},
		{ID: HotEthWallet, Kind: custody.HotCustomer, Asset: EthAsset, Descriptor: hotD.String(), Owner: OwnerHotCustomer},
	} {
		var have custody.Wallet
		var ok bool
		c.Read(func(s *core.State) { have, ok = s.Custody.Wallet(w.ID) })
		if ok {
			if have.Descriptor != w.Descriptor || have.Asset != w.Asset {
				return fmt.Errorf("wallet %d in the journal is %s of asset %d, not the demo's %s: the journal and %s belong to different chains",
					w.ID, have.Descriptor, have.Asset, w.Descriptor, e.KeyDir)
			}
			continue
		}
		for _, cmd := range team.RegisterWallets(time.Now(), w) {
			if _, err := submit(cmd); err != nil {
				return fmt.Errorf("wallet %d: %w", w.ID, err)
			}
		}
	}
	// The hot Safe's float: paid on chain and journaled as the house's,
	// once (a dev data directory made before it gains it).
	var floated bool
	c.Read(func(s *core.State) { _, floated = s.Ledger.Transfer(hotEthFloatID) })
	if !floated {
		if _, err := e.Node.Fund(ctx, e.HotSafe, HotEthFloat); err != nil {
			return fmt.Errorf("the hot Safe's float: %w", err)
		}
		amt, err := chain.AmountFromBig(HotEthFloat)
		if err != nil {
			return err
		}
		if _, err := submit(core.CreateTransfers{Transfers: []ledger.Transfer{{ID: hotEthFloatID,
			Debit:  ledger.AccountKey{Owner: OwnerHotCustomer, Asset: EthAsset, Kind: ledger.KindWallet},
			Credit: ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: EthAsset, Kind: ledger.KindHouse}, Amount: amt, Code: 1}}}); err != nil {
			return fmt.Errorf("the hot Safe's float in the ledger: %w", err)
		}
	}
	for _, p := range Customers {
		if _, ok := e.DepositIndex(c, p.Customer); ok {
			continue
		}
		if _, err := submit(core.AssignAddress{Wallet: ColdEthWallet, Customer: p.Customer}); err != nil {
			return fmt.Errorf("customer %d's ETH address: %w", p.Customer, err)
		}
	}
	return nil
}

// DepositIndex is the latest index of the cold Safe wallet handed to
// customer.
func (e *Eth) DepositIndex(c *core.Core, customer ledger.OwnerID) (uint32, bool) {
	var idx uint32
	var ok bool
	c.Read(func(s *core.State) {
		for _, a := range s.Custody.Addresses(customer) {
			if a[0] == ColdEthWallet {
				idx, ok = a[1], true
			}
		}
	})
	return idx, ok
}

// DepositAddress is customer's latest ETH deposit address: the
// counterfactual Safe of the cold wallet at its index.
func (e *Eth) DepositAddress(c *core.Core, customer ledger.OwnerID) (common.Address, bool) {
	i, ok := e.DepositIndex(c, customer)
	if !ok {
		return common.Address{}, false
	}
	return e.Deposits.Address(ColdEthWallet, i)
}

// Stop stops the watchers, then the node.
func (e *Eth) Stop() {
	if e.cancel != nil {
		e.cancel()
		<-e.done
	}
	e.Node.Stop()
}
