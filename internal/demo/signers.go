package demo

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"

	"kinko/internal/alert"
	"kinko/internal/chain/btc/regtest"
	"kinko/internal/chain/btcchain"
	"kinko/internal/core"
	"kinko/internal/cosigner"
	"kinko/internal/custody"
	"kinko/internal/keys"
	"kinko/internal/signer"
	"kinko/internal/wallet"
	"kinko/internal/withdraw"
)

// CoolDown is the dev's default cool-down for new intent keys and
// addresses, in the core's rules and by the dev co-signer's clock: short,
// so that a withdrawal can be tried within a minute. A real deployment
// keeps the default of 24 hours.
const CoolDown = 30 * time.Second

// Signers are the dev's hot signer and co-signer, in the dev's process:
// the same code as `kinko signer` and `kinko cosigner`, with the demo's
// hot keys #1 and #2 and a co-signer state directory in the dev's data.
type Signers struct {
	Cosigner *cosigner.Cosigner
	Signer   *signer.Signer
	// EthSigner is the hot Safe's signer when the dev runs Ethereum.
	EthSigner *signer.EthSigner
	cancel    context.CancelFunc
	done      chan struct{}
	admin     *http.Server
}

// devPolicy is the dev co-signer's policy: the four demo wallets pinned
// from their descriptors, the dev's cool-down, and limits a demo stays
// well within (5 BTC an hour leaving, fees included). With eth, the
// demo's two Safe wallets are pinned too, by their descriptors, chain and
// addresses (the cold wallet by its first counterfactual Safe), with
// limits of ETH.
func devPolicy(c *core.Core, coolDown time.Duration, eth *Eth) (*cosigner.Policy, error) {
	p := &cosigner.Policy{
		CoolDown: cosigner.Duration{Duration: coolDown},
		Limits: map[string]cosigner.Limits{"BTC": {
			PerCustomerHour: withdraw.AmountOf(2_0000_0000), PerCustomerDay: withdraw.AmountOf(10_0000_0000),
			PerAssetHour: withdraw.AmountOf(5_0000_0000), PerAssetDay: withdraw.AmountOf(20_0000_0000),
			FeeMax: withdraw.AmountOf(1_000_000), FeeHour: withdraw.AmountOf(5_000_000), FeeDay: withdraw.AmountOf(20_000_000),
			TxHour: 120, TxDay: 1000, YenPerCoin: 20_000_000, Decimals: 8}},
		AllAssets: cosigner.AllLimits{YenHour: 100_000_000, YenDay: 400_000_000, TxHour: 120, TxDay: 1000},
	}
	c.Read(func(s *core.State) {
		for _, w := range s.Custody.Wallets() {
			for _, dw := range demoWallets {
				if dw.id == w.ID {
					p.Wallets = append(p.Wallets, cosigner.PinnedWallet{Name: dw.name, Kind: w.Kind.String(), Asset: "BTC", Descriptor: w.Descriptor})
				}
			}
		}
	})
	if len(p.Wallets) != len(demoWallets) {
		return nil, fmt.Errorf("demo: %d of the %d demo wallets registered", len(p.Wallets), len(demoWallets))
	}
	if eth != nil {
		const e18 = 1_000_000_000_000_000_000
		p.Limits["ETH"] = cosigner.Limits{PerCustomerHour: withdraw.AmountOf(2 * e18), PerCustomerDay: withdraw.AmountOf(10 * e18), PerAssetHour: withdraw.AmountOf(5 * e18), PerAssetDay: withdraw.AmountOf(18 * e18),
			FeeMax: withdraw.AmountOf(e18 / 100), FeeHour: withdraw.AmountOf(e18 / 20), FeeDay: withdraw.AmountOf(e18 / 5), TxHour: 120, TxDay: 1000, YenPerCoin: 500_000, Decimals: 18}
		d := eth.Deployment
		for _, s := range []struct {
			name string
			id   uint32
			addr func() (string, error)
		}{
			{"hot-eth", HotEthWallet, func() (string, error) { return eth.HotSafe.Hex(), nil }},
			{"cold-eth", ColdEthWallet, func() (string, error) {
				a, ok := eth.Deposits.Address(ColdEthWallet, 0)
				if !ok {
					return "", fmt.Errorf("demo: the cold Safe wallet's first address is not followed")
				}
				return a.Hex(), nil
			}},
		} {
			var w custody.Wallet
			var ok bool
			c.Read(func(st *core.State) { w, ok = st.Custody.Wallet(s.id) })
			if !ok {
				return nil, fmt.Errorf("demo: the Safe wallet %d is not registered", s.id)
			}
			a, err := s.addr()
			if err != nil {
				return nil, err
			}
			p.Safes = append(p.Safes, cosigner.PinnedSafe{Name: s.name, Kind: w.Kind.String(), Asset: "ETH", ChainID: d.ChainID.Uint64(), Address: a,
				MultiSend: d.MultiSendCallOnly.Hex(), Descriptor: w.Descriptor})
		}
	}
	// Checked as a policy file would be.
	b, err := jsonOf(p)
	if err != nil {
		return nil, err
	}
	return cosigner.ParsePolicy(b, regtest.Net)
}

func hotKey(ch *Chain, i int) (*hdkeychain.ExtendedKey, [4]byte, error) {
	k, err := keys.Load(filepath.Join(ch.KeyDir, fmt.Sprintf("hot-customer-%d.key", i)), KeyPassphrase, regtest.Net)
	if err != nil {
		return nil, [4]byte{}, err
	}
	ak, acct, err := wallet.AccountKey(k.Master, regtest.Net, 0)
	return acct, ak.Fingerprint, err
}

// StartSigners starts the dev's co-signer and hot signer on the demo
// wallets of ch. The co-signer follows the journal in process; the signer
// batches queued withdrawals every second. Halts reach the co-signer
// through halt (set by the watcher's OnUnexplained). coolDown is the
// co-signer's, by its own clock.
//
// eth, if not nil, is the demo's Ethereum side: its Safe wallets are
// pinned in the co-signer's policy, the co-signer holds the hot Safe's
// owner key #2, and an Ether hot signer (owner key #1, the house gas
// account) pays ETH withdrawals from the hot Safe.
func StartSigners(ctx context.Context, c *core.Core, ch *Chain, dataDir string, coolDown time.Duration, send func(alert.Alert), log *slog.Logger, halt *atomic.Pointer[cosigner.Cosigner], eth *Eth) (*Signers, error) {
	pol, err := devPolicy(c, coolDown, eth)
	if err != nil {
		return nil, err
	}
	acct2, fp2, err := hotKey(ch, 2)
	if err != nil {
		return nil, err
	}
	ccfg := cosigner.Config{Net: regtest.Net, Account: acct2, FP: fp2, Policy: pol, Now: time.Now,
		StateDir: filepath.Join(dataDir, "cosigner-state"), Alert: send, Log: log.With("sub", "cosigner")}
	var ethHot []*ecdsa.PrivateKey
	var gas *ecdsa.PrivateKey
	if eth != nil {
		// The hot Safe's owner key #2 is the co-signer's, its own node
		// the dev's.
		if ethHot, err = eth.HotKeys(); err != nil {
			return nil, err
		}
		if gas, err = eth.GasKey(); err != nil {
			return nil, err
		}
		ccfg.EthKey, ccfg.EthNode = ethHot[1], eth.Node.Client()
	}
	cs, err := cosigner.Open(ccfg)
	if err != nil {
		return nil, err
	}
	acct1, fp1, err := hotKey(ch, 1)
	if err != nil {
		cs.Close()
		return nil, err
	}
	local := &signer.Local{C: cs, Core: c}
	if err := local.Follow(); err != nil {
		cs.Close()
		return nil, err
	}
	// Its admin socket, as kinko cosigner serves it: kinko cosigner
	// status|lift --state <data>/cosigner-state.
	stateDir := filepath.Join(dataDir, "cosigner-state")
	aln, err := cosigner.ListenAdmin(stateDir)
	if err != nil {
		cs.Close()
		return nil, err
	}
	admin := &http.Server{Handler: cs.AdminHandler(log.With("sub", "cosigner")), ReadHeaderTimeout: 5 * time.Second}
	go admin.Serve(aln) // ends when Stop closes it
	halt.Store(cs)
	s := signer.New(signer.Config{Backend: signer.InProcess{Core: c}, Chain: btcchain.New(ch.Node.Client(), ch.Node.Config(), 0), PrevTxs: ch.Node.Client(), Net: regtest.Net, Account: acct1, FP: fp1,
		CoSigner: local, Logger: log.With("sub", "signer")})
	var es *signer.EthSigner
	if eth != nil {
		// The Ether hot signer of the hot Safe: hot owner key #1, the
		// house gas account sending execTransaction.
		d := eth.Deployment
		if es, err = signer.NewEth(signer.EthConfig{Backend: signer.InProcess{Core: c}, Node: eth.Node.Client(), ChainID: d.ChainID.Uint64(),
			Safe: eth.HotSafe, MultiSend: d.MultiSendCallOnly, Key: ethHot[0], Gas: gas, CoSigner: local,
			GasLimit: EthGasLimit, MaxFeePerGas: big.NewInt(EthMaxFeePerGas), Logger: log.With("sub", "signer", "asset", "ETH")}); err != nil {
			admin.Close()
			cs.Close()
			return nil, err
		}
	}
	sctx, cancel := context.WithCancel(context.Background())
	out := &Signers{Cosigner: cs, Signer: s, EthSigner: es, cancel: cancel, done: make(chan struct{}), admin: admin}
	// The signers run until Stop cancels their context.
	go func() {
		defer close(out.done)
		if es != nil {
			done := make(chan struct{})
			go func() { defer close(done); es.Run(sctx, time.Second) }()
			defer func() { <-done }()
		}
		s.Run(sctx, time.Second)
	}()
	return out, nil
}

// The dev's Ether hot signer sends execTransaction with these: its
// batches fit the gas limit (safe.ExecGasFor), and the co-signer counts
// their product as the fee (0.005 ETH at most a batch, within the dev's
// co-signer's cap of 0.01).
const (
	EthGasLimit     = 500_000
	EthMaxFeePerGas = 10_000_000_000
)

// Stop stops the signer, then closes the co-signer's state.
func (s *Signers) Stop() {
	s.cancel()
	<-s.done
	s.admin.Close()
	s.Cosigner.Close()
}

func jsonOf(v any) ([]byte, error) { return json.Marshal(v) }
