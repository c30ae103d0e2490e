package itest

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/api"
	"kinko/internal/chain/btc"
	"kinko/internal/chain/btc/regtest"
	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/devnet"
	"kinko/internal/ledger"
	"kinko/internal/people"
	"kinko/internal/withdraw"
	"kinko/internal/yen"
)

// devBanner is what a test reads from kinko dev's banner.
type devBanner struct {
	url                string
	rpc, user, pass    string
	secrets, passwords map[string]string // by login name or email
	ids                map[string]ledger.OwnerID
}

var (
	healthLine = regexp.MustCompile(`health\s+(http://127\.0\.0\.1:\d+)/healthz`)
	rpcLine    = regexp.MustCompile(`RPC (\S+) \(user (\S+), password (\S+),`)
	ethRPCLine = regexp.MustCompile(`Ethereum dev node \(geth --dev, chain id \d+\): RPC (http://127\.0\.0\.1:\d+) `)
	loginLine  = regexp.MustCompile(`(?m)^\s+(\S+)\s+(customer (\d+)|operator: \S+)\s+password (\S+)\s+TOTP secret (\S+)`)
)

func readBanner(t *testing.T, log string, into *devBanner) {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	// The banner of the newest start.
	if i := bytes.LastIndex(b, []byte("=== start ")); i >= 0 {
		b = b[i:]
	}
	m := healthLine.FindSubmatch(b)
	r := rpcLine.FindSubmatch(b)
	if m == nil || r == nil {
		t.Fatalf("kinko dev's banner lacks its address or its node:\n%s", b)
	}
	into.url, into.rpc, into.user, into.pass = string(m[1]), string(r[1]), string(r[2]), string(r[3])
	if into.secrets == nil {
		into.secrets, into.passwords, into.ids = map[string]string{}, map[string]string{}, map[string]ledger.OwnerID{}
	}
	for _, l := range loginLine.FindAllSubmatch(b, -1) {
		name := string(l[1])
		into.passwords[name], into.secrets[name] = string(l[4]), string(l[5])
		if len(l[3]) > 0 {
			id, _ := strconv.ParseUint(string(l[3]), 10, 64)
			into.ids[name] = ledger.OwnerID(id)
		}
	}
}

// TestDevFlows runs kinko dev as a newcomer does, as its own process, and
// goes through it as a customer: a deposit paid from the dev node with
// kinko dev pay and mined with kinko dev mine is credited; a trade fills
// against the demo's book; an intent key and an address are registered and
// a withdrawal is paid on chain through the dev's hot signer and
// co-signer. Another customer's ether is paid to her counterfactual
// deposit address with kinko dev pay, credited, and a quarter of it
// withdrawn from the hot Safe through the dev's Ether hot signer and
// co-signer: the payee holds exactly that on the geth node. Then the dev is stopped and started again on its data: the
// chain, the balances and the withdrawal are all still there, and a second
// withdrawal completes.
func TestDevFlows(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	data := filepath.Join(root, "data")
	log := filepath.Join(root, "dev.log")
	dev := newProc("dev", bin, root, log, regexp.MustCompile(`(?m)^Ctrl-C stops it\.`), func() []string {
		return []string{"dev", "--data", data, "--addr", "127.0.0.1:0", "--cool-down", "2s"}
	})
	btcd, err := regtest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	geth, err := devnet.Binary()
	if err != nil {
		t.Fatal(err)
	}
	dev.Env = []string{"KINKO_BTCD=" + btcd, "KINKO_GETH=" + geth} // run outside the repository
	t.Cleanup(func() { dev.Stop() })
	if err := dev.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var bn devBanner
	readBanner(t, log, &bn)
	kinko := func(args ...string) string {
		t.Helper()
		out, err := runKinko(ctx, bin, root, args...)
		if err != nil {
			t.Fatalf("kinko %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	mine := func(n int) { kinko("dev", "mine", "--data", data, "--dev", bn.url, "--blocks", strconv.Itoa(n)) }

	// An operator verifies taro; taro logs in.
	kenji, err := LoginOperator(ctx, bn.url, "kenji", filepath.Join(data, "operators", "kenji.key"))
	if err != nil {
		t.Fatal(err)
	}
	taro, err := LoginCustomer(ctx, bn.url, bn.ids["taro@example.jp"], "taro@example.jp", bn.passwords["taro@example.jp"], bn.secrets["taro@example.jp"])
	if err != nil {
		t.Fatal(err)
	}
	if err := kenji.SetKYC(ctx, taro.ID, people.KYCVerified, "documents checked"); err != nil {
		t.Fatal(err)
	}
	// yuki, for ether: logged in, verified, an intent key and an ETH
	// address registered now, so that the cool-down and her TOTP steps
	// are behind her when she withdraws.
	yuki, err := LoginCustomer(ctx, bn.url, bn.ids["yuki@example.jp"], "yuki@example.jp", bn.passwords["yuki@example.jp"], bn.secrets["yuki@example.jp"])
	if err != nil {
		t.Fatal(err)
	}
	if err := kenji.SetKYC(ctx, yuki.ID, people.KYCVerified, "documents checked"); err != nil {
		t.Fatal(err)
	}
	if err := yuki.RegisterKey(ctx); err != nil {
		t.Fatal(err)
	}
	pk, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ethPayee := crypto.PubkeyToAddress(pk.PublicKey)
	if err := yuki.WhitelistAsset(ctx, "ETH", ethPayee.Hex()); err != nil {
		t.Fatal(err)
	}
	// A deposit: a new address, paid from the dev node, mined.
	addr, err := taro.DepositAddress(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := taro.Available(ctx)
	kinko("dev", "pay", "--data", data, "--dev", bn.url, "--address", addr, "--amount", "100000000")
	mine(6)
	if err := poll(ctx, "the deposit credited", func() (bool, error) {
		got, err := taro.Available(ctx)
		return err == nil && got == before+1_0000_0000, nil
	}); err != nil {
		t.Fatal(err)
	}
	// A trade: taro sells 0.01 BTC into the demo's resting bid.
	o, err := taro.Order(ctx, "BTC/JPY", "sell", 9_000_000, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	if filled, _ := o["filled"].(string); filled != "1000000" { // a decimal string, as every quantity
		t.Fatalf("taro's sell = %v; want filled against the demo's bid", o)
	}
	// A withdrawal through the dev's hot signer and co-signer.
	payTo := payee(t)
	if err := taro.RegisterKey(ctx); err != nil {
		t.Fatal(err)
	}
	if err := taro.Whitelist(ctx, payTo); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // the dev's cool-down, by the core and the co-signer
	node, err := btc.Dial(btc.Config{Host: bn.rpc, User: bn.user, Pass: bn.pass, DisableTLS: true, Net: regtest.Net})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	withdrawOnDev := func(c *Customer, id string, amount uint64) {
		t.Helper()
		w, err := c.Withdraw(ctx, id, payTo, amount)
		if err != nil || w.Status != string(withdraw.StatusQueued) {
			t.Fatalf("withdraw %s = %+v, %v", id, w, err)
		}
		wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		if err := poll(wctx, "withdrawal "+id+" done", func() (bool, error) {
			ws, err := c.Withdrawals(ctx)
			if err != nil {
				return false, nil
			}
			for _, x := range ws {
				if x.ID == w.ID && x.Status == string(withdraw.StatusDone) {
					return true, nil
				}
				if x.ID == w.ID && x.Status == string(withdraw.StatusBroadcast) {
					mine(1)
				}
			}
			return false, nil
		}); err != nil {
			t.Fatalf("%v\n%s", err, dev.LogTail(40))
		}
	}
	withdrawOnDev(taro, "dev-1", 1_000_000)
	if got := paidTo(ctx, t, node, payTo); got != 1_000_000 {
		t.Fatalf("the node shows %d satoshi at the payee; want 1,000,000", got)
	}

	// Ether, as the banner says: yuki's ETH deposit address (a
	// counterfactual Safe of the cold owners) paid from the dev node with
	// kinko dev pay, mined with kinko dev mine --asset ETH and credited; an
	// ETH address registered and a withdrawal paid from the hot Safe by the
	// dev's Ether hot signer and co-signer.
	m := ethRPCLine.FindStringSubmatch(dev.LogTail(1 << 20))
	if m == nil {
		t.Fatalf("kinko dev's banner lacks its Ethereum node:\n%s", dev.LogTail(60))
	}
	ec, err := eth.Dial(ctx, m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	ethAddr, err := yuki.DepositAddressOf(ctx, "ETH")
	if err != nil || !common.IsHexAddress(ethAddr) {
		t.Fatalf("yuki's ETH deposit address %q: %v", ethAddr, err)
	}
	wei0, err := AvailableWei(ctx, yuki)
	if err != nil {
		t.Fatal(err)
	}
	// One ether: a deposit of at most one coin is final at 6 blocks by
	// the default rules, and withdrawable then.
	oneEth := big.NewInt(1e18)
	kinko("dev", "pay", "--data", data, "--dev", bn.url, "--address", ethAddr, "--amount", oneEth.String())
	kinko("dev", "mine", "--asset", "ETH", "--blocks", "6", "--data", data, "--dev", bn.url)
	if err := poll(ctx, "the ETH deposit credited", func() (bool, error) {
		got, err := AvailableWei(ctx, yuki)
		return err == nil && got.Cmp(new(big.Int).Add(wei0, oneEth)) == 0, nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, dev.LogTail(40))
	}
	// Withdrawable once final: the watcher's journaled checkpoint, not
	// the node's tip, gives the deposit its 6 confirmations.
	if err := poll(ctx, "the ETH deposit final", func() (bool, error) {
		ds, err := yuki.Deposits(ctx)
		if err != nil {
			return false, nil
		}
		for _, d := range ds {
			if strings.HasPrefix(d.Outpoint, "0x") && d.Final {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, dev.LogTail(40))
	}
	half := new(big.Int).Div(oneEth, big.NewInt(4))
	w, err := yuki.WithdrawAsset(ctx, "ETH", "dev-eth-1", ethPayee.Hex(), half.Uint64())
	if err != nil || w.Status != string(withdraw.StatusQueued) {
		t.Fatalf("the ETH withdrawal = %+v, %v", w, err)
	}
	etherLog := func() string {
		var out []string
		for _, l := range strings.Split(dev.LogTail(1<<20), "\n") {
			if strings.Contains(l, "asset=ETH") || strings.Contains(l, "SafeTx") || strings.Contains(l, "ether") {
				out = append(out, l)
			}
		}
		return strings.Join(out[max(0, len(out)-30):], "\n")
	}
	if err := poll(ctx, "the ETH withdrawal done", func() (bool, error) {
		ws, err := yuki.Withdrawals(ctx)
		if err != nil {
			return false, nil
		}
		for _, x := range ws {
			if x.ID == w.ID {
				return x.Status == string(withdraw.StatusDone), nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, etherLog())
	}
	if got, err := ec.Balance(ctx, ethPayee); err != nil || got.Cmp(half) != 0 {
		t.Fatalf("the ETH payee holds %v wei (%v); want %s", got, err, half)
	}
	wei1, err := AvailableWei(ctx, yuki)
	if err != nil {
		t.Fatal(err)
	}
	// Any withdrawal fee is in ether, well below a hundredth of one.
	if paid := new(big.Int).Sub(new(big.Int).Add(wei0, oneEth), wei1); paid.Cmp(half) < 0 || paid.Cmp(new(big.Int).Add(half, big.NewInt(1e16))) > 0 {
		t.Fatalf("yuki paid %s wei for a withdrawal of %s", paid, half)
	}
	// The dev reconciles the hot Safe and the deposit addresses with the
	// ledger at every block: once the withdrawal's block is 6 deep, its
	// reconciliation finds no difference (a difference would halt ETH).
	paidAt, err := ec.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kinko("dev", "mine", "--asset", "ETH", "--blocks", "6", "--data", data, "--dev", bn.url)
	reconciled := regexp.MustCompile(`msg="Ether reconciled" .*?\bblock=(\d+) .*\blargest_difference_wei=(\d+)`)
	if err := poll(ctx, "the withdrawal's block reconciled", func() (bool, error) {
		for _, m := range reconciled.FindAllStringSubmatch(dev.LogTail(1<<20), -1) {
			if b, _ := strconv.ParseUint(m[1], 10, 64); b >= paidAt {
				if m[2] != "0" {
					return false, fmt.Errorf("block %s reconciled with a difference of %s wei", m[1], m[2])
				}
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, etherLog())
	}
	if strings.Contains(dev.LogTail(1<<20), "RECONCILIATION MISMATCH") {
		t.Fatalf("the dev's Ether reconciliation found a mismatch:\n%s", etherLog())
	}

	// Yen, as the banner says: a bank transfer to taro's virtual account
	// through the dev's bank simulator is credited; his own bank account
	// is registered, named from the bank master; a yen withdrawal to it is
	// put in a transfer file by an operator, paid by the bank and settled.
	ty, err := taro.Yen(ctx)
	if err != nil || ty.VirtualAccount.Number == "" || len(ty.Deposits) != 1 || ty.Deposits[0].Status != yen.DepositCredited {
		t.Fatalf("taro's yen = %+v, %v; want a virtual account and his opening deposit credited", ty, err)
	}
	jpy0, _, err := taro.JPY(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kinko("bank-sim", "transfer", "--data", data, "--to", ty.VirtualAccount.Number, "--amount", "50000", "--sender", "スズキ タロウ")
	if err := poll(ctx, "the yen deposit credited", func() (bool, error) {
		got, _, err := taro.JPY(ctx)
		return err == nil && got == jpy0+50_000, nil
	}); err != nil {
		t.Fatal(err)
	}
	acct, err := taro.RegisterBankAccount(ctx, api.BankAccountRequest{Bank: "0009", Branch: "200", Type: 1, Number: "2345678", Name: "ｽｽﾞｷ ﾀﾛｳ"})
	if err != nil || acct.BankLabel != "三井住友" || acct.BranchLabel != "本店営業部" {
		t.Fatalf("taro's bank account = %+v, %v; want it named 三井住友 本店営業部", acct, err)
	}
	time.Sleep(3 * time.Second) // the dev's cool-down
	if w, err := taro.WithdrawYen(ctx, "yen-1", acct.Key, 20_000); err != nil || w.Status != string(withdraw.StatusQueued) {
		t.Fatalf("yen withdrawal = %+v, %v", w, err)
	}
	if out := kinko("yen", "batch", "--core", bn.url, "--operator", "kenji", "--key", filepath.Join(data, "operators", "kenji.key")); !strings.Contains(out, "1 withdrawals, 20000 yen") {
		t.Fatalf("kinko yen batch: %s", out)
	}
	if err := poll(ctx, "the yen withdrawal paid and settled", func() (bool, error) {
		v, err := taro.Yen(ctx)
		return err == nil && len(v.Withdrawals) == 1 && v.Withdrawals[0].Status == string(withdraw.StatusDone), nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, dev.LogTail(40))
	}
	jpy1, _, _ := taro.JPY(ctx)
	if jpy1 != jpy0+50_000-20_000-110 {
		t.Fatalf("taro's yen after the withdrawal = %d; want %d less the 110 yen fee", jpy1, jpy0+30_000)
	}

	// Stopped (SIGTERM, as Ctrl-C) and started again on its data. It
	// says what it stops and how long that took.
	if err := dev.Stop(); err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`kinko stopped in (\S+)`).FindStringSubmatch(dev.LogTail(2000)); m == nil {
		t.Fatalf("kinko dev did not say it stopped:\n%s", dev.LogTail(10))
	} else {
		t.Logf("kinko dev stopped in %s", m[1])
	}
	if err := dev.Start(ctx); err != nil {
		t.Fatalf("kinko dev did not start again on its data: %v", err)
	}
	readBanner(t, log, &bn)
	node2, err := btc.Dial(btc.Config{Host: bn.rpc, User: bn.user, Pass: bn.pass, DisableTLS: true, Net: regtest.Net})
	if err != nil {
		t.Fatal(err)
	}
	defer node2.Close()
	if got := paidTo(ctx, t, node2, payTo); got != 1_000_000 {
		t.Fatalf("after the restart the node shows %d satoshi at the payee; want the chain kept", got)
	}
	taro.api = newAPIClient(bn.url)
	if err := taro.Login(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := taro.Available(ctx); got != before+1_0000_0000-1_000_000-1_000_000 {
		t.Fatalf("taro's bitcoin after the restart = %d", got)
	}
	// Nothing of the yen is credited twice by the restart: the bank
	// resumed from its books, and the trust account covers the customers.
	if got, _, _ := taro.JPY(ctx); got != jpy1 {
		t.Fatalf("taro's yen after the restart = %d; want %d", got, jpy1)
	}
	res := kinko("reserves", "--data", data)
	if m := regexp.MustCompile(`JPY: customers are owed (\d+); the trust \(bank\) holds (\d+): covered`).FindStringSubmatch(res); m == nil || m[1] == "0" {
		t.Fatalf("kinko reserves after the restart:\n%s", res)
	}
	withdrawOnDev(taro, "dev-2", 500_000)
	if got := paidTo(ctx, t, node2, payTo); got != 1_500_000 {
		t.Fatalf("after the second withdrawal the node shows %d satoshi at the payee", got)
	}
}

// paidTo sums the outputs in blocks paying address.
func paidTo(ctx context.Context, t *testing.T, node *btc.Node, address string) int64 {
	t.Helper()
	pk, err := scriptOf(address)
	if err != nil {
		t.Fatal(err)
	}
	_, height, err := node.BestBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for h := int32(regtest.SegwitHeight); h <= height; h++ {
		hash, err := node.BlockHash(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		b, err := node.Block(ctx, hash)
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range b.Transactions {
			for _, o := range tx.TxOut {
				if bytes.Equal(o.PkScript, pk) {
					sum += o.Value
				}
			}
		}
	}
	return sum
}
