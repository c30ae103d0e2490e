package itest

import (
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/api"
	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/devnet"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/chain/eth/safe/safetest"
	"kinko/internal/core"
	"kinko/internal/cosigner"
	"kinko/internal/custody"
	"kinko/internal/keys"
	"kinko/internal/ledger"
	"kinko/internal/opclient"
	"kinko/internal/people"
	"kinko/internal/trading"
	"kinko/internal/withdraw"
)

// ETH is the Ethereum deployment's asset: ether, in wei.
var ETH = ledger.Asset{ID: 3, Code: "ETH", Decimals: 18, Class: ledger.ClassChain}

// JPY is the yen the Ethereum deployment's ether trades against.
var JPY = ledger.Asset{ID: 1, Code: "JPY", Class: ledger.ClassFiat}

// EthMarket is the Ethereum deployment's order book: ether against yen,
// quantities in gwei (QtyUnit 10^9 wei), prices in yen per ether, the
// taker paying 12 basis points of the notional in yen, the maker none.
var EthMarket = trading.Listing{ID: 3, Code: "ETH/JPY", Base: ETH.ID, Quote: JPY.ID, QtyUnit: 1_000_000_000, Scale: 1_000_000_000,
	TickSize: 1_000, LotSize: 1_000_000, MinQty: 1_000_000, MaxQty: 1_000_000_000_000, MaxPrice: 1_000_000_000, MaxOrders: 1 << 10, TakerFeeBps: 12}

// EthIndexPrice is EthMarket's opening index, yen per ether.
const EthIndexPrice = 500_000

// The Ethereum deployment's wallets and their ledger owners.
const (
	WalletEthHot  uint32 = 11
	WalletEthCold uint32 = 12
	ownerEthHot          = ledger.OwnerHouseMin + 111
	ownerEthCold         = ledger.OwnerHouseMin + 112
)

// Milli returns m thousandths of one ether, in wei.
func Milli(m int64) *big.Int { return new(big.Int).Mul(big.NewInt(m), big.NewInt(1e15)) }

// The Ethereum deployment's gas settings: what the hot signer sends
// execTransaction with, and so the most the co-signer counts as its fee
// (0.005 ETH).
const (
	ethGasLimit     = 500_000
	ethMaxFeePerGas = 10_000_000_000
)

// EthDeployment is kinko deployed on Ethereum as on many machines: a
// geth --dev node with the Safe contracts 1.4.1 (SafeL2), a hot Safe
// 2-of-3 whose owners are the Ethereum keys (BIP-44) of the hot signer's
// key file, the co-signer's and the offline backup's, a cold Safe of
// three offline owners, and the core, the co-signer, the hot signer and
// the watcher each its own kinko process in its own host directory,
// reaching one another by the core's API with their tokens and the
// co-signer's mutual TLS.
type EthDeployment struct {
	*Deployment
	// Eth is the node; C a client of it; Contracts the Safe contracts
	// deployed on it.
	Eth       *devnet.Node
	C         *eth.Client
	Contracts *safe.Deployment
	// Hot and Cold are the Safes; HotOwners the hot Safe's owners (hot
	// signer, co-signer, backup) as `kinko keys eth-address` prints them.
	Hot, Cold common.Address
	HotOwners []common.Address
	// coldOwners are the cold Safe's; coldKeys their keys, as the
	// offline machines hold them (the test signs a ceremony with two).
	coldOwners []common.Address
	coldKeys   []*ecdsa.PrivateKey
	// Reverter is a contract that refuses ether until a call with data
	// switches it to accept ether.
	Reverter common.Address
	// Customers hold the hot Safe's ether in the ledger.
	Customers []*Customer
	// Payees are the customers' whitelisted addresses, one each; the
	// last customer's is Reverter.
	Payees []common.Address
}

// EthOptions configure an Ethereum deployment.
type EthOptions struct {
	// Hot and Cold are what the Safes hold at the start, in wei; the
	// customers' balances (Balances, wei, one customer each) are the hot
	// Safe's ether in the ledger and must add up to Hot.
	Hot, Cold *big.Int
	Balances  []*big.Int
	// Yen are the customers' yen balances (one customer each, or fewer),
	// journaled with their ether.
	Yen []uint64
}

// DeployEth lays out and starts an Ethereum deployment for t: the node
// and the Safes, the keys and certificates, the core (its opening state
// written with the library, as Deploy does), the customers signed up
// through the API with intent keys and whitelisted addresses and their
// balances journaled while the core is stopped, then the co-signer and
// the hot signer. The watcher is made but not started: the test starts it
// (d.Watcher.Start). The processes are killed when the test ends.
func DeployEth(t testing.TB, o EthOptions) *EthDeployment {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	art, err := safe.LoadInstalled()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	n := devnet.New(t, devnet.Options{})
	opts := Options{}
	opts.fill()
	d := &EthDeployment{Deployment: &Deployment{Root: root, Bin: bin, Options: opts,
		CoreDir: filepath.Join(root, "core"), SecretsDir: filepath.Join(root, "core-secrets"), SignerDir: filepath.Join(root, "signer"), CosignerDir: filepath.Join(root, "cosigner"),
		WatcherDir: filepath.Join(root, "watcher"), ColdDir: filepath.Join(root, "cold"), LogDir: filepath.Join(root, "logs")}, Eth: n, C: n.Client()}
	t.Cleanup(func() { d.shutdown(t) })
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	if err := d.upEth(ctx, art, o); err != nil {
		t.Fatalf("itest: deploy on Ethereum: %v\n%s", err, n.LogTail())
	}
	return d
}

func (d *EthDeployment) upEth(ctx context.Context, art *safe.Artifacts, o EthOptions) error {
	for _, dir := range []string{d.CoreDir, d.SignerDir, d.CosignerDir, d.WatcherDir, d.ColdDir, d.LogDir, filepath.Join(d.CosignerDir, "state")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	// The contracts, deployed by a funded account of the test's.
	deployer, err := d.Eth.NewKey(ctx, Milli(1_000_000))
	if err != nil {
		return err
	}
	if d.Contracts, err = safe.Deploy(ctx, d.C, deployer, art, safe.L2); err != nil {
		return err
	}
	// The hot Safe's owners: the Ethereum keys of the signer's key file,
	// the co-signer's and the offline backup's.
	for _, h := range []struct{ host, name string }{{d.SignerDir, "hot-1.key"}, {d.CosignerDir, "hot-2.key"}, {d.ColdDir, "backup.key"}} {
		k, err := d.newKey(ctx, h.host, h.name)
		if err != nil {
			return err
		}
		d.HotKeys = append(d.HotKeys, k)
		out, err := d.Kinko(ctx, h.host, "keys", "eth-address", "--key", k.File, "--passphrase-file", k.Passphrase, "--net", "regtest")
		if err != nil {
			return err
		}
		f := strings.Fields(out)
		if len(f) == 0 || !common.IsHexAddress(f[0]) {
			return fmt.Errorf("itest: kinko keys eth-address printed %q", out)
		}
		d.HotOwners = append(d.HotOwners, common.HexToAddress(f[0]))
	}
	for range 3 {
		k, err := crypto.GenerateKey()
		if err != nil {
			return err
		}
		d.coldOwners, d.coldKeys = append(d.coldOwners, crypto.PubkeyToAddress(k.PublicKey)), append(d.coldKeys, k)
	}
	if d.Hot, err = safetest.Funded(ctx, d.Eth, d.Contracts, deployer, 1, o.Hot, d.HotOwners); err != nil {
		return err
	}
	if d.Cold, err = safetest.Funded(ctx, d.Eth, d.Contracts, deployer, 2, o.Cold, d.coldOwners); err != nil {
		return err
	}
	// A contract that refuses ether until any call with data switches it
	// to accept (slot 0 set), as a customer's own contract could:
	//	CALLDATASIZE PUSH1 0x0e JUMPI PUSH1 0 SLOAD PUSH1 0x15 JUMPI
	//	PUSH1 0 DUP1 REVERT
	//	0x0e: JUMPDEST PUSH1 1 PUSH1 0 SSTORE STOP
	//	0x15: JUMPDEST STOP
	r, err := d.C.Send(ctx, deployer, eth.Tx{Data: common.FromHex("0x601780600b6000396000f3" + "36600e57600054601557600080fd5b600160005500" + "5b00"), Gas: 100_000})
	if err != nil {
		return err
	}
	d.Reverter = r.ContractAddress
	// The house gas account of the hot signer: its key in hex on the
	// signer's host.
	gas, err := d.Eth.NewKey(ctx, Milli(10_000))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.SignerDir, "gas.key"), []byte(hex.EncodeToString(crypto.FromECDSA(gas))+"\n"), 0o600); err != nil {
		return err
	}
	if err := d.makeCertificates(ctx); err != nil {
		return err
	}
	corePort, err := freePort()
	if err != nil {
		return err
	}
	d.CoreURL = fmt.Sprintf("http://127.0.0.1:%d", corePort)
	if err := d.prepareEthCore(ctx, o); err != nil {
		return err
	}
	if err := d.handOutTokens(); err != nil {
		return err
	}
	if err := d.writeEthPolicy(); err != nil {
		return err
	}
	csPort, err := freePort()
	if err != nil {
		return err
	}
	d.CosignerURL = fmt.Sprintf("https://127.0.0.1:%d", csPort)
	if err := d.pinWitnesses(ctx); err != nil {
		return err
	}
	logOf := func(role string) string { return filepath.Join(d.LogDir, role+".log") }
	d.Core = newProc("core", d.Bin, d.CoreDir, logOf("core"), regexp.MustCompile(`(?m)^kinko is running`), d.coreArgs)
	d.Cosigner = newProc("cosigner", d.Bin, d.CosignerDir, logOf("cosigner"), regexp.MustCompile(`(?m)^co-signer listening on `), d.ethCosignerArgs)
	d.Watcher = newProc("watch", d.Bin, d.WatcherDir, logOf("watch"), regexp.MustCompile(`(?m)^watching ETH `), d.ethWatchArgs)
	d.Signer = newProc("signer", d.Bin, d.SignerDir, logOf("signer"), regexp.MustCompile(`(?m)^hot signer running`), d.ethSignerArgs)
	if err := d.Core.Start(ctx); err != nil {
		return err
	}
	d.Operator = newOperator(d.Deployment)
	if err := d.Operator.Login(ctx); err != nil {
		return err
	}
	// The customers, through the API: signed up, verified, an intent key
	// and a whitelisted address each (the last customer's is the contract
	// that refuses ether). Every money move takes a fresh TOTP step, so
	// each customer makes only these two before withdrawing.
	for i := range o.Balances {
		c, err := d.NewCustomer(ctx, fmt.Sprintf("eth%d@itest.example", i+1))
		if err != nil {
			return err
		}
		if err := c.RegisterKey(ctx); err != nil {
			return err
		}
		k, err := crypto.GenerateKey()
		if err != nil {
			return err
		}
		p := crypto.PubkeyToAddress(k.PublicKey)
		if i == len(o.Balances)-1 {
			p = d.Reverter
		}
		if err := c.WhitelistAsset(ctx, "ETH", p.Hex()); err != nil {
			return err
		}
		d.Customers, d.Payees = append(d.Customers, c), append(d.Payees, p)
	}
	// Their balances: the hot Safe's ether in the ledger, journaled with
	// the library while the core is stopped (the core journals no
	// Ethereum ceremony yet to move it from cold).
	if err := d.WithCoreStopped(ctx, func() error { return d.fundEth(ctx, o.Balances, o.Yen) }); err != nil {
		return err
	}
	for _, p := range []*Proc{d.Cosigner, d.Signer} {
		if err := p.Start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// newOperator is the bootstrap admin's client of the core.
func newOperator(d *Deployment) *Operator {
	return &Operator{Name: OperatorName, KeyFile: d.OperatorKey(OperatorName), api: newAPIClient(d.CoreURL),
		client: opclient.New(d.CoreURL, OperatorName, d.Team.Get(OperatorName).Key)}
}

// descriptor is the custody descriptor of a 2-of-n Safe of the
// deployment's contracts.
func (d *EthDeployment) descriptor(owners []common.Address) string {
	return safetest.Descriptor(d.Contracts, owners).String()
}

// EthRules are the core's withdrawal rules of the Ethereum deployment:
// the cool-down, and limits above what the test withdraws.
func EthRules(coolDown time.Duration) withdraw.Rules {
	eth5 := map[string]withdraw.Amount{"ETH": withdraw.AmountOf(Milli(5_000).Uint64())}
	return withdraw.Rules{CoolDownSeconds: int64((coolDown + time.Second - 1) / time.Second),
		PerWithdrawalMax: eth5, PerCustomerDay: eth5, PerAssetHour: eth5, ApprovalAbove: eth5}
}

// prepareEthCore writes the core's opening state with the library while
// no core runs: the founding operators, ether, the house and wallet
// accounts, the hot and cold Safes registered as wallets (two admins
// each), the withdrawal rules, the cold Safe's ether as the house's, yen
// and the ether/yen market with its opening index (two admins list it, an
// admin asks for the index and the approver approves it).
func (d *EthDeployment) prepareEthCore(ctx context.Context, o EthOptions) error {
	c, done, err := d.openToPrepare(ctx)
	if err != nil {
		return err
	}
	defer done()
	now := time.Now()
	house := ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: ETH.ID, Kind: ledger.KindHouse}
	yenEquity := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: JPY.ID, Kind: ledger.KindEquity}
	coldAcct := ledger.AccountKey{Owner: ownerEthCold, Asset: ETH.ID, Kind: ledger.KindWallet}
	cmds := append(d.Team.Bootstrap(now), core.CreateAssets{Assets: []ledger.Asset{JPY, ETH}},
		core.CreateAccounts{Keys: []ledger.AccountKey{house, {Owner: ledger.OwnerEquity, Asset: ETH.ID, Kind: ledger.KindEquity}, yenEquity,
			{Owner: ownerEthHot, Asset: ETH.ID, Kind: ledger.KindWallet}, coldAcct}})
	cmds = append(cmds, d.Team.RegisterWallets(now,
		custody.Wallet{ID: WalletEthHot, Kind: custody.HotCustomer, Asset: ETH.ID, Descriptor: d.descriptor(d.HotOwners), Owner: ownerEthHot},
		custody.Wallet{ID: WalletEthCold, Kind: custody.ColdCustomer, Asset: ETH.ID, Descriptor: d.descriptor(d.coldOwners), Owner: ownerEthCold})...)
	cmds = append(cmds, d.Team.Approved(core.KindSetWithdrawalRulesRequest, core.SetWithdrawalRulesPayload{Rules: EthRules(d.Options.CoolDown)},
		OperatorName, SecondAdmin, people.RoleAdmin, "itest: the Ethereum deployment's rules", now)...)
	cmds = append(cmds, core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 30, Lo: 1}, Debit: coldAcct, Credit: house, Amount: weiAmount(o.Cold)}}})
	cmds = append(cmds, d.Team.Approved(core.KindListMarketRequest, core.ListMarketPayload{Listing: EthMarket}, OperatorName, SecondAdmin, people.RoleAdmin, "itest: ether against yen", now)...)
	cmds = append(cmds, d.Team.Approved(core.KindIndexPrice, core.MarketPricePayload{Market: EthMarket.ID, Price: EthIndexPrice}, OperatorName, ApproverName, people.RoleApprover, "itest: the opening index", now)...)
	return d.submitSigned(ctx, c, cmds)
}

// fundEth journals each customer's balance, from the hot Safe's ledger
// account, and yen, from the house's equity, with the library (the core
// stopped).
func (d *EthDeployment) fundEth(ctx context.Context, balances []*big.Int, yen []uint64) error {
	c, err := core.Open(ctx, core.Config{Dir: d.CoreDir, SecretsDir: d.SecretsDir})
	if err != nil {
		return err
	}
	defer c.Close()
	var cmds []core.Command
	for i, cust := range d.Customers {
		k := ledger.AccountKey{Owner: cust.ID, Asset: ETH.ID, Kind: ledger.KindAvailable}
		var exists bool
		c.Read(func(s *core.State) { _, exists = s.Ledger.Account(k) })
		if !exists {
			cmds = append(cmds, core.CreateAccounts{Keys: []ledger.AccountKey{k}})
		}
		cmds = append(cmds, core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 31, Lo: uint64(i + 1)},
			Debit: ledger.AccountKey{Owner: ownerEthHot, Asset: ETH.ID, Kind: ledger.KindWallet}, Credit: k, Amount: weiAmount(balances[i])}}})
		if i < len(yen) && yen[i] > 0 {
			y := ledger.AccountKey{Owner: cust.ID, Asset: JPY.ID, Kind: ledger.KindAvailable}
			c.Read(func(s *core.State) { _, exists = s.Ledger.Account(y) })
			if !exists {
				cmds = append(cmds, core.CreateAccounts{Keys: []ledger.AccountKey{y}})
			}
			cmds = append(cmds, core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 32, Lo: uint64(i + 1)},
				Debit: ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: JPY.ID, Kind: ledger.KindEquity}, Credit: y, Amount: ledger.AmountOf(yen[i])}}})
		}
	}
	return d.submitSigned(ctx, c, cmds)
}

// writeEthPolicy writes the co-signer's policy: the hot and cold Safes
// pinned with the chain id, the MultiSendCallOnly and their custody
// descriptors, ether's limits.
func (d *EthDeployment) writeEthPolicy() error {
	chainID := d.Contracts.ChainID.Uint64()
	ms := d.Contracts.MultiSendCallOnly.Hex()
	p := cosigner.Policy{CoolDown: cosigner.Duration{Duration: d.Options.CoolDown},
		Safes: []cosigner.PinnedSafe{{Name: "hot-eth", Kind: "hot-customer", Asset: "ETH", ChainID: chainID, Address: d.Hot.Hex(), MultiSend: ms, Descriptor: d.descriptor(d.HotOwners)},
			{Name: "cold-eth", Kind: "cold-customer", Asset: "ETH", ChainID: chainID, Address: d.Cold.Hex(), MultiSend: ms, Descriptor: d.descriptor(d.coldOwners)}},
		Limits: map[string]cosigner.Limits{"ETH": {PerCustomerHour: withdraw.AmountOf(Milli(2_000).Uint64()), PerCustomerDay: withdraw.AmountOf(Milli(4_000).Uint64()),
			PerAssetHour: withdraw.AmountOf(Milli(3_000).Uint64()), PerAssetDay: withdraw.AmountOf(Milli(6_000).Uint64()), FeeMax: withdraw.AmountOf(Milli(10).Uint64()), FeeHour: withdraw.AmountOf(Milli(50).Uint64()), FeeDay: withdraw.AmountOf(Milli(100).Uint64()),
			TxHour: 10, TxDay: 20, YenPerCoin: 500_000, Decimals: 18}},
		AllAssets: cosigner.AllLimits{YenHour: 30_000_000, YenDay: 60_000_000, TxHour: 20, TxDay: 40}}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	if _, err := cosigner.ParsePolicy(b, &chaincfg.RegressionNetParams); err != nil {
		return fmt.Errorf("itest: the co-signer would refuse its policy: %w", err)
	}
	return os.WriteFile(d.policyFile(), append(b, '\n'), 0o600)
}

// ethCosignerArgs is the co-signer's command line: its Ethereum key is
// hot-2.key's, its node the deployment's.
func (d *EthDeployment) ethCosignerArgs() []string {
	return append(d.cosignerArgs(), "--eth-node", d.Eth.HTTPURL(), "--eth-key", d.HotKeys[1].File)
}

// ethSignerArgs is the hot signer's command line as the signer of the
// hot Safe.
func (d *EthDeployment) ethSignerArgs() []string {
	k := d.HotKeys[0]
	return []string{"signer", "--key", k.File, "--passphrase-file", k.Passphrase, "--net", "regtest", "--core", d.CoreURL,
		"--signer-token-file", filepath.Join(d.SignerDir, "signer.token"), "--cosigner", d.CosignerURL, "--tls", filepath.Join(d.SignerDir, "tls"),
		"--eth-node", d.Eth.HTTPURL(), "--safe", d.Hot.Hex(), "--chain-id", d.Contracts.ChainID.String(), "--multisend", d.Contracts.MultiSendCallOnly.Hex(),
		"--gas-key", filepath.Join(d.SignerDir, "gas.key"), "--gas-limit", strconv.Itoa(ethGasLimit), "--max-fee-per-gas", strconv.Itoa(ethMaxFeePerGas)}
}

// ethWatchArgs is the watcher's command line on Ethereum.
func (d *EthDeployment) ethWatchArgs() []string {
	return []string{"watch", "--core", d.CoreURL, "--stream-token-file", filepath.Join(d.WatcherDir, "stream.token"),
		"--watcher-token-file", filepath.Join(d.WatcherDir, "watcher.token"), "--cosigner", d.CosignerURL, "--tls", filepath.Join(d.WatcherDir, "tls"),
		"--state", filepath.Join(d.WatcherDir, "state"), "--witness-listen", strings.TrimPrefix(d.WatcherWitnessURL, "http://"), "--head-every", WitnessInterval.String(),
		"--eth-node", d.Eth.HTTPURL(), "--eth-ws", d.Eth.WSURL(), "--chain-id", d.Contracts.ChainID.String(), "--hot-safe", d.Hot.Hex(), "--cold-safe", d.Cold.Hex(),
		"--multisend", d.Contracts.MultiSendCallOnly.Hex(), "--confirmations", "2", "--start-height", "1", "--eth-poll", "200ms"}
}

// LeakedKey is an owner key of the hot Safe as an attacker who copied its
// key file and passphrase holds it: the key file's Ethereum key.
func (d *EthDeployment) LeakedKey(i int) (*ecdsa.PrivateKey, error) {
	k := d.HotKeys[i]
	pass, err := os.ReadFile(k.Passphrase)
	if err != nil {
		return nil, err
	}
	kf, err := keys.Load(k.File, strings.TrimRight(string(pass), "\r\n"), &chaincfg.RegressionNetParams)
	if err != nil {
		return nil, err
	}
	return kf.EthereumKey()
}

// Wei is the chain balance of a.
func (d *EthDeployment) Wei(ctx context.Context, a common.Address) (*big.Int, error) {
	return d.C.Balance(ctx, a)
}

// AvailableWei is the customer's available ether in the ledger, in wei
// (GET /v1/me/balances).
func AvailableWei(ctx context.Context, c *Customer) (*big.Int, error) {
	var res struct {
		Balances []api.BalanceView `json:"balances"`
	}
	if err := c.api.do(ctx, "GET", "/v1/me/balances", c.token, nil, http.StatusOK, &res); err != nil {
		return nil, err
	}
	for _, b := range res.Balances {
		if b.Asset == "ETH" && b.Kind == ledger.KindAvailable.String() {
			return amountWei(b.Available), nil
		}
	}
	return new(big.Int), nil
}

// weiAmount is wei (below 2^128) as a ledger amount.
func weiAmount(v *big.Int) ledger.Amount {
	return ledger.Amount{Hi: new(big.Int).Rsh(v, 64).Uint64(), Lo: new(big.Int).And(v, new(big.Int).SetUint64(^uint64(0))).Uint64()}
}

// amountWei is a ledger amount as a *big.Int.
func amountWei(a ledger.Amount) *big.Int {
	return new(big.Int).Add(new(big.Int).Lsh(new(big.Int).SetUint64(a.Hi), 64), new(big.Int).SetUint64(a.Lo))
}
