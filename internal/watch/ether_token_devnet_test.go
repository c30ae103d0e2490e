package watch

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain"
	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/devnet"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/chain/eth/safe/safetest"
	"kinko/internal/chain/ethchain"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
)

// TestTokenDepositsOnDevnet: on geth --dev, the Safe package's compiled
// ERC20Token is deployed by an issuer holding its supply and listed as the
// asset TT (a register_token request of two admins); the issuer
// transfers TT to customer 1's and customer 2's counterfactual deposit
// addresses (their Ether addresses) and to an address that is no one's.
// An impostor contract logs the same Transfer event, 5×10^18 to customer
// 1's address, and is followed by the same backend: the watcher, not the
// node's filter, refuses it. Nothing credits below three confirmations;
// at three exactly the two transfers; a restarted watcher and the token
// watchers `kinko watch` runs credit nothing more. Listed too, the
// impostor (a contract that logs any amount) gets 2^128-1 credited
// exactly and a log of 2^128 refused as chain data, nothing of it
// credited.
func TestTokenDepositsOnDevnet(t *testing.T) {
	art := artifacts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n := devnet.New(t, devnet.Options{})
	c := n.Client()
	tenETH := new(big.Int).Mul(big.NewInt(10), big.NewInt(1e18))
	keys := make([]*ecdsa.PrivateKey, 3) // gas, the token's issuer, the attacker
	for i := range keys {
		k, err := n.NewKey(ctx, tenETH)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	gas, issuer, attacker := keys[0], keys[1], keys[2]
	dep, err := safe.Deploy(ctx, c, gas, art, safe.L2)
	if err != nil {
		t.Fatal(err)
	}
	token, err := safetest.DeployERC20(ctx, c, issuer)
	if err != nil {
		t.Fatal(err)
	}
	impostor, err := safetest.DeployLogEmitter(ctx, c, attacker)
	if err != nil {
		t.Fatal(err)
	}
	cold, hot := safeDescriptor(t, dep), safeDescriptor(t, dep)
	k, team := etherCoreTeam(t, cold, hot)
	tokenAssets(t, k)
	chainID := c.ChainID().Uint64()
	if err := listToken(t, k, team, custody.Token{Asset: ttAsset, ChainID: chainID, Contract: token.Hex()}); err != nil {
		t.Fatal(err)
	}
	backend := ethchain.New(c, "", []common.Address{token, impostor})
	cfg := EtherConfig{Asset: ttAsset, ChainID: chainID, Confirmations: 3}
	w, err := NewEtherDeposits(ctx, k, backend, art, cfg)
	if err != nil {
		t.Fatal(err)
	}
	init, err := dep.Initializer(safeConfig(cold))
	if err != nil {
		t.Fatal(err)
	}
	addr0, _ := w.Address(1, 0)
	addr1, _ := w.Address(1, 1)
	if p := dep.Predictor(init); addr0 != p.AddressIndex(0) || addr1 != p.AddressIndex(1) {
		t.Fatalf("token deposit addresses %s %s; want the cold wallet's counterfactual Safes %s %s", addr0, addr1, p.AddressIndex(0), p.AddressIndex(1))
	}
	call := func(from *ecdsa.PrivateKey, contract, to common.Address, amount *big.Int) int32 {
		t.Helper()
		r, err := c.Send(ctx, from, eth.Tx{To: &contract, Data: safetest.TransferCall(to, amount), Gas: 100_000})
		if err != nil {
			t.Fatal(err)
		}
		return int32(r.BlockNumber.Uint64())
	}
	nobody := common.HexToAddress("0x00000000000000000000000000000000000D00D0")
	fiveETHWorth := new(big.Int).Mul(big.NewInt(5), big.NewInt(1e18))
	call(issuer, token, nobody, big.NewInt(1))
	call(attacker, impostor, addr0, fiveETHWorth)
	call(issuer, token, addr0, big.NewInt(0)) // a Transfer of 0: no deposit, no refusal
	at2 := call(issuer, token, addr1, big.NewInt(1000))
	at1 := call(issuer, token, addr0, big.NewInt(123_456_789))
	bal := func(a common.Address) *big.Int {
		out, err := c.Call(ctx, a, token, append(crypto.Keccak256([]byte("balanceOf(address)"))[:4], common.LeftPadBytes(a.Bytes(), 32)...))
		if err != nil {
			t.Fatal(err)
		}
		return new(big.Int).SetBytes(out)
	}
	if got := bal(addr0); got.Int64() != 123_456_789 {
		t.Fatalf("token balance of address 0 on chain = %s; want 123456789", got)
	}
	want1, want2 := ledger.AmountOf(123_456_789), ledger.AmountOf(1000)
	stepUntilCredited(ctx, t, n, w,
		awaited{"customer 1's TT", at1, want1, func() ledger.Amount { return tokenBalance(k, 1, ttAsset) }},
		awaited{"customer 2's TT", at2, want2, func() ledger.Amount { return tokenBalance(k, 2, ttAsset) }})
	deposits := func(asset ledger.AssetID) (n int) {
		k.Read(func(s *core.State) {
			s.Custody.Deposits(func(d *custody.Deposit) bool {
				if s.Custody.DepositAsset(d) == asset {
					n++
				}
				return true
			})
		})
		return n
	}
	if got := deposits(ttAsset); got != 2 {
		t.Fatalf("%d TT deposits; want 2 (not the impostor's, not the zero Transfer)", got)
	}
	if b := ethBalance(k, 1); !b.IsZero() {
		t.Fatalf("customer 1's wei = %s; want 0", b)
	}
	// A restart, and the token watchers `kinko watch` runs beside it (a
	// backend following the token alone, from block 1): nothing twice.
	w2, err := NewEtherDeposits(ctx, k, backend, art, cfg)
	if err != nil {
		t.Fatal(err)
	}
	td := NewTokenDeposits(k, art, func(contract string) chain.Backend {
		return ethchain.New(c, "", []common.Address{common.HexToAddress(contract)})
	}, EtherConfig{ChainID: chainID, Confirmations: 3})
	if _, err := n.Mine(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for _, step := range []func(context.Context) error{w2.Step, td.Step, w2.Step} {
		if err := step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := td.Watcher(ttAsset); !ok {
		t.Fatal("no TT watcher among the token watchers")
	}
	if b1, b2 := tokenBalance(k, 1, ttAsset), tokenBalance(k, 2, ttAsset); b1 != want1 || b2 != want2 || deposits(ttAsset) != 2 {
		t.Fatalf("after a restart: %s and %s TT, %d deposits; want %s and %s, 2", b1, b2, deposits(ttAsset), want1, want2)
	}
	// Forged token credits, as an attacker holding the watcher's token
	// would journal them.
	for _, f := range []struct {
		name string
		seen custody.Seen
		want error
	}{
		{"an asset that is no token", custody.Seen{Outpoint: custody.Outpoint{TxID: [32]byte{0xf0}, Vout: 1}, Wallet: 1, Index: 0, Amount: 1, Asset: usdAsset, Height: at1}, custody.ErrTokenAsset},
		{"the token to the hot wallet", custody.Seen{Outpoint: custody.Outpoint{TxID: [32]byte{0xf1}, Vout: 1}, Wallet: 2, Index: 0, Amount: 1, Asset: ttAsset, Height: at1}, custody.ErrNotDepositWallet},
	} {
		o, err := k.Submit(ctx, time.Now(), core.CreditDeposits{Deposits: []custody.Seen{f.seen}})
		if err != nil || o.Err != nil {
			t.Fatalf("%s: %v %v", f.name, err, o.Err)
		}
		if res, _ := o.Value.([]custody.Result); len(res) != 1 || !errors.Is(res[0].Err, f.want) {
			t.Errorf("%s: results %v; want %v", f.name, res, f.want)
		}
	}

	// The impostor listed as a token of its own (USDX): a contract that
	// logs any amount. Its watcher starts after the impostor's first log.
	if err := listToken(t, k, team, custody.Token{Asset: usdAsset, ChainID: chainID, Contract: impostor.Hex()}); err != nil {
		t.Fatal(err)
	}
	tip, err := c.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wf, err := NewEtherDeposits(ctx, k, ethchain.New(c, "", []common.Address{impostor}), art,
		EtherConfig{Asset: usdAsset, ChainID: chainID, Confirmations: 3, StartHeight: int32(tip) + 1})
	if err != nil {
		t.Fatal(err)
	}
	most := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	call(attacker, impostor, addr1, most)
	if _, err := n.Mine(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := wf.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := tokenBalance(k, 2, usdAsset), (ledger.Amount{Hi: ^uint64(0), Lo: ^uint64(0)}); got != want {
		t.Fatalf("customer 2's USDX = %s; want 2^128-1 = %s", got, want)
	}
	atBad := call(attacker, impostor, addr0, new(big.Int).Lsh(big.NewInt(1), 128))
	if _, err := n.Mine(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := wf.Step(ctx); !errors.Is(err, ErrChainData) {
		t.Fatalf("Step over a Transfer of 2^128 = %v; want ErrChainData", err)
	}
	if wf.height() >= atBad || !tokenBalance(k, 1, usdAsset).IsZero() {
		t.Fatalf("after a Transfer of 2^128 in block %d: watcher at %d, customer 1's USDX %s; want it before that block, 0", atBad, wf.height(), tokenBalance(k, 1, usdAsset))
	}
	if b1, b2 := tokenBalance(k, 1, ttAsset), tokenBalance(k, 2, ttAsset); b1 != want1 || b2 != want2 {
		t.Fatalf("TT after the impostor's logs: %s and %s; want %s and %s", b1, b2, want1, want2)
	}
}

// awaited is a deposit mined at a height, and the balance it credits.
type awaited struct {
	name    string
	at      int32
	want    ledger.Amount
	balance func() ledger.Amount
}

// stepUntilCredited steps w and mines a block at a time until every
// deposit has w's confirmations, each balance 0 below them and exactly
// its amount from them.
func stepUntilCredited(ctx context.Context, t *testing.T, n *devnet.Node, w *EtherDeposits, ds ...awaited) {
	t.Helper()
	confs := w.cfg.Confirmations
	for range 40 {
		if err := w.Step(ctx); err != nil {
			t.Fatal(err)
		}
		done := true
		for _, d := range ds {
			got, have := d.balance(), w.height()-d.at+1
			if (have < confs) != got.IsZero() || (have >= confs && got != d.want) {
				t.Fatalf("%s at %d confirmations: %s; want 0 below %d, else %s", d.name, have, got, confs, d.want)
			}
			done = done && have >= confs
		}
		if done {
			return
		}
		if _, err := n.Mine(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("never reached %d confirmations", confs)
}
