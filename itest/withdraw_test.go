package itest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/withdraw"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// payee returns a fresh address of someone outside the exchange.
func payee(t *testing.T) string {
	t.Helper()
	k, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	a, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(k.PubKey().SerializeCompressed()), regtest.Net)
	if err != nil {
		t.Fatal(err)
	}
	return a.EncodeAddress()
}

// withdrawAndConfirm has c withdraw amount to address and follows it
// through the deployment: queued by the core, batched, signed and
// broadcast by the signer with the co-signer's signature, mined, recorded
// by the watcher. It returns the transaction that paid it.
func withdrawAndConfirm(ctx context.Context, t *testing.T, d *Deployment, c *Customer, requestID, address string, amount uint64) chainhash.Hash {
	t.Helper()
	w, err := c.Withdraw(ctx, requestID, address, amount)
	if err != nil {
		t.Fatalf("withdraw %s: %v", requestID, err)
	}
	if w.Status != string(withdraw.StatusQueued) {
		t.Fatalf("withdrawal %s is %s (%s); want queued", requestID, w.Status, w.Reason)
	}
	if _, err := d.WaitWithdrawal(ctx, w.ID, withdraw.StatusBroadcast); err != nil {
		t.Fatal(err)
	}
	txid, err := d.Chain.WaitPaying(ctx, address)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Chain.Mine(ctx, uint32(d.Options.Confirmations)); err != nil {
		t.Fatal(err)
	}
	if err := d.Chain.WaitConfirmed(ctx, txid, int64(d.Options.Confirmations)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WaitWithdrawal(ctx, w.ID, withdraw.StatusDone); err != nil {
		t.Fatal(err)
	}
	got, err := d.Chain.Balance(ctx, address)
	if err != nil {
		t.Fatal(err)
	}
	if got != int64(amount) {
		t.Fatalf("the node sees %d satoshi at %s; the withdrawal was %d", got, address, amount)
	}
	return txid
}

// TestDeploymentWithdrawal deploys every role as its own process on btcd
// and withdraws through all of them: customers deposit on chain and the
// watcher credits them; the hot wallet is refilled from cold by the
// ceremony (two cold keys, offline); each customer registers an intent key
// and an address, waits out the cool-down and withdraws; the signer
// batches, the co-signer co-signs over mutual TLS, the signer broadcasts,
// the watcher records the mined transaction and the withdrawal is done,
// paying exactly its amount on chain. Then the signer is killed (SIGKILL)
// and restarted, and the next withdrawal completes the same way.
func TestDeploymentWithdrawal(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	d := Deploy(t, Options{})

	const deposit = 5_0000_0000
	var customers []*Customer
	for _, email := range []string{"hanako@example.jp", "taro@example.jp"} {
		c, err := d.NewCustomer(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Fund(ctx, c, deposit); err != nil {
			t.Fatal(err)
		}
		if got, err := c.Available(ctx); err != nil || got != deposit {
			t.Fatalf("%s available after the deposit = %d, %v; want %d", email, got, err, deposit)
		}
		customers = append(customers, c)
	}
	hanako, taro := customers[0], customers[1]
	payA, payB := payee(t), payee(t)
	for _, x := range []struct {
		c    *Customer
		addr string
	}{{hanako, payA}, {taro, payB}} {
		if err := x.c.RegisterKey(ctx); err != nil {
			t.Fatal(err)
		}
		if err := x.c.Whitelist(ctx, x.addr); err != nil {
			t.Fatal(err)
		}
	}

	// The hot wallet is empty until the refill: 2% of the 10 BTC
	// customers hold.
	refill, amount, err := d.Refill(ctx, "refill-1")
	if err != nil {
		t.Fatal(err)
	}
	if amount != 2*deposit/50 {
		t.Fatalf("refill of %d; want 2%% of %d", amount, 2*deposit)
	}

	if err := d.WaitCoolDown(ctx, taro); err != nil {
		t.Fatal(err)
	}
	const first, second = 1_500_000, 2_500_000
	tx1 := withdrawAndConfirm(ctx, t, d, hanako, "w-1", payA, first)
	paid, err := d.Node.Client().Tx(ctx, tx1)
	if err != nil {
		t.Fatal(err)
	}
	if in := paid.TxIn[0].PreviousOutPoint; len(paid.TxIn) != 1 || in.Hash != refill {
		t.Fatalf("the withdrawal spends %v; want the refill's output of %s", paid.TxIn, refill)
	}
	if got, err := hanako.Available(ctx); err != nil || got != deposit-first {
		t.Fatalf("hanako available after the withdrawal = %d, %v; want %d", got, err, deposit-first)
	}

	// The signer crashes and comes back; the next withdrawal goes through
	// the new process.
	pid := d.Signer.Pid()
	if err := d.Signer.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := d.Signer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if d.Signer.Pid() == pid {
		t.Fatalf("the signer still runs as process %d", pid)
	}
	tx2 := withdrawAndConfirm(ctx, t, d, taro, "w-2", payB, second)
	if tx2 == tx1 {
		t.Fatal("the second withdrawal was paid by the first transaction")
	}
	if got, err := d.Chain.Balance(ctx, payA); err != nil || got != first {
		t.Fatalf("payee A holds %d, %v after the second withdrawal; want %d", got, err, first)
	}
	if got, err := taro.Available(ctx); err != nil || got != deposit-second {
		t.Fatalf("taro available after the withdrawal = %d, %v; want %d", got, err, deposit-second)
	}

	// Nothing the watcher saw was unexplained: nothing is halted, and
	// every role still runs.
	st, err := d.Operator.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Halts) != 0 {
		t.Fatalf("halted: %+v", st.Halts)
	}
	if err := d.Check(); err != nil {
		t.Fatal(err)
	}
}
