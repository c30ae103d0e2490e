package itest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/ceremony"
	"kinko/internal/chain/btc/regtest"
	"kinko/internal/core"
	"kinko/internal/cosigner"
	"kinko/internal/custody"
	"kinko/internal/journal"
	"kinko/internal/keys"
	"kinko/internal/ledger"
	"kinko/internal/mtls"
	"kinko/internal/signer"
	"kinko/internal/signer/view"
	"kinko/internal/wallet"
	"kinko/internal/watch"
	"kinko/internal/withdraw"
)

// attacker holds everything on the core's host and the signer's: the data
// directory and its secrets (every token), the API, hot key #1 and the
// signer's TLS identity. It does not hold the co-signer's host, the
// watcher's, or the offline keys.
type attacker struct {
	t        *testing.T
	d        *Deployment
	hot1     *hdkeychain.ExtendedKey
	hot1FP   [4]byte
	hotSet   *wallet.Set // the hot wallet, from the journal's descriptor
	cosign   *signer.Remote
	api      signer.API
	watchTok string
	intent   ed25519.PrivateKey // the key it registers for its victims
	thief    []string           // its addresses
	thiefW   *wallet.Descriptor // a wallet of its own keys
	sent     []*wire.MsgTx      // what it broadcast
}

func newAttacker(t *testing.T, d *Deployment) *attacker {
	t.Helper()
	a := &attacker{t: t, d: d}
	// Hot key #1, as the signer's host holds it.
	pass, err := os.ReadFile(d.HotKeys[0].Passphrase)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keys.Load(d.HotKeys[0].File, strings.TrimSpace(string(pass)), regtest.Net)
	if err != nil {
		t.Fatal(err)
	}
	ak, acct, err := wallet.AccountKey(k.Master, regtest.Net, 0)
	if err != nil {
		t.Fatal(err)
	}
	a.hot1, a.hot1FP = acct, ak.Fingerprint
	hot, err := wallet.Parse(d.Wallets.HotCustomer, regtest.Net)
	if err != nil {
		t.Fatal(err)
	}
	a.hotSet, err = wallet.NewSet([]wallet.Named{{ID: WalletHotCustomer, Kind: "hot-customer", Descriptor: d.Wallets.HotCustomer}}, hot)
	if err != nil {
		t.Fatal(err)
	}
	// The signer's TLS identity and every token of the core's secrets.
	tcfg, err := mtls.Client(filepath.Join(d.SignerDir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	a.cosign = signer.NewRemote(d.CosignerURL, tcfg)
	a.api = signer.API{URL: d.CoreURL, Token: a.secret("signer.token"), HTTP: http.DefaultClient}
	a.watchTok = a.secret("watcher.token")
	_, a.intent, _ = ed25519.GenerateKey(nil)
	a.thiefW = &wallet.Descriptor{M: 2, Net: regtest.Net}
	for _, s := range []byte{0xA1, 0xA2, 0xA3} {
		m, _ := hdkeychain.NewMaster(bytes.Repeat([]byte{s}, 32), regtest.Net)
		k, _, _ := wallet.AccountKey(m, regtest.Net, 0)
		a.thiefW.Keys = append(a.thiefW.Keys, k)
	}
	for i := 0; i < 3; i++ {
		a.thief = append(a.thief, payee(t))
	}
	return a
}

func (a *attacker) secret(name string) string {
	b, err := os.ReadFile(filepath.Join(a.d.SecretsDir, name))
	if err != nil {
		a.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// writeJournal appends cmds straight to the stopped core's journal, each
// continuing the chain properly, stamped with the times the attacker
// chooses (the core's own checks are bypassed).
func (a *attacker) writeJournal(ctx context.Context, cmds []core.Command, at []time.Time) {
	a.t.Helper()
	err := a.d.WithCoreStopped(ctx, func() error {
		j, err := journal.Open(filepath.Join(a.d.CoreDir, "journal"), journal.Options{})
		if err != nil {
			return err
		}
		defer j.Close()
		for i, cmd := range cmds {
			if _, err := j.Append(at[i].UnixNano(), uint16(cmd.Kind()), cmd.AppendPayload(nil)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		a.t.Fatal(err)
	}
}

// ask sends p to the co-signer as the hot signer would; on success it
// returns the fully signed transaction.
func (a *attacker) ask(ctx context.Context, p *psbt.Packet) (*wire.MsgTx, error) {
	// kinko's own signer refuses a sighash type other than ALL; the
	// attacker then asks the co-signer for its signature first, with the
	// type the PSBT requests, as it would before signing with hot key #1
	// by its own means.
	if _, err := a.hotSet.Sign(p, a.hot1, a.hot1FP); err != nil && !errors.Is(err, wallet.ErrSighash) {
		a.t.Fatal(err)
	}
	p, err := a.cosign.CoSign(ctx, p)
	if err != nil {
		return nil, err
	}
	return wallet.Finalize(p)
}

// broadcast sends tx to the node straight.
func (a *attacker) broadcast(ctx context.Context, tx *wire.MsgTx) {
	a.t.Helper()
	if _, err := a.d.Node.Client().Broadcast(ctx, tx); err != nil {
		a.t.Fatalf("broadcast %s: %v", tx.TxHash(), err)
	}
	a.sent = append(a.sent, tx)
}

// view is the hot signer's view of the core, over the API with the
// signer's token.
func (a *attacker) view(ctx context.Context) view.View {
	a.t.Helper()
	v, err := a.api.View(ctx, "BTC")
	if err != nil {
		a.t.Fatal(err)
	}
	return v
}

// watcherCommand journals cmd with the watcher's token.
func (a *attacker) watcherCommand(ctx context.Context, cmd core.Command) error {
	body, _ := json.Marshal(watch.WatchCommand{Kind: cmd.Kind().String(), Payload: cmd.AppendPayload(nil)})
	req, _ := http.NewRequestWithContext(ctx, "POST", a.d.CoreURL+"/v1/watch/commands", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+a.watchTok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("watcher command %s: %s", cmd.Kind(), res.Status)
	}
	return nil
}

// psbtFrom builds a PSBT spending the hot wallet's coin u to outs, with
// change to the hot wallet's change index, at 10 sat/vB, and the fee then
// raised to fee (0: leave it).
func (a *attacker) psbtFrom(u custody.UTXO, changeIndex uint32, fee int64, outs ...*wire.TxOut) *psbt.Packet {
	a.t.Helper()
	in := wallet.UTXO{OutPoint: wire.OutPoint{Hash: chainhash.Hash(u.Outpoint.TxID), Index: u.Outpoint.Vout}, Value: int64(u.Amount), Wallet: a.hotSet.Wallets[0], Branch: u.Branch, Index: u.Index}
	p, err := wallet.Build([]wallet.UTXO{in}, outs, a.hotSet.Wallets[0], changeIndex, 10)
	if err != nil {
		a.t.Fatal(err)
	}
	if fee > 0 {
		var out int64
		for _, o := range p.UnsignedTx.TxOut {
			out += o.Value
		}
		p.UnsignedTx.TxOut[len(p.UnsignedTx.TxOut)-1].Value -= fee - (in.Value - out)
	}
	return p
}

func toAddress(t *testing.T, addr string, amount int64) *wire.TxOut {
	t.Helper()
	pk, err := scriptOf(addr)
	if err != nil {
		t.Fatal(err)
	}
	return wire.NewTxOut(amount, pk)
}

func toDescriptor(d *wallet.Descriptor, branch, index uint32, amount int64) *wire.TxOut {
	pk, _ := d.PkScript(branch, index)
	return wire.NewTxOut(amount, pk)
}

// TestAttackerHoldingTheOnlineHosts plays an attacker who holds every
// online machine but the co-signer's and the watcher's: the core's host
// (its data directory and secrets, every token, the API) and the signer's
// (hot key #1, its TLS identity). Through every write path those hosts
// offer — the journal written directly while the core is stopped, the API
// with the signer's and the watcher's tokens, the signer's TLS identity
// straight to the co-signer — it tries to take the hot wallet. What it got
// is measured on the node: the attacker's addresses plus every fee the
// hot wallet paid, never above the co-signer's per_asset_hour.
func TestAttackerHoldingTheOnlineHosts(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	pol := DefaultPolicy(2 * time.Second)
	const perAssetHour = 3_000_000
	pol.Limits["BTC"] = cosigner.Limits{PerCustomerHour: withdraw.AmountOf(2_000_000), PerCustomerDay: withdraw.AmountOf(20_000_000), PerAssetHour: withdraw.AmountOf(perAssetHour), PerAssetDay: withdraw.AmountOf(30_000_000),
		FeeMax: withdraw.AmountOf(50_000), FeeHour: withdraw.AmountOf(100_000), FeeDay: withdraw.AmountOf(1_000_000), TxHour: 20, TxDay: 200, YenPerCoin: 15_000_000, Decimals: 8}
	d := Deploy(t, Options{Policy: &pol})

	// Three honest customers hold 15 BTC; the hot wallet holds 2%.
	var victims []*Customer
	for i, email := range []string{"hanako@example.jp", "taro@example.jp", "jiro@example.jp"} {
		c, err := d.NewCustomer(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Fund(ctx, c, 5_0000_0000+int64(i)); err != nil {
			t.Fatal(err)
		}
		victims = append(victims, c)
	}
	if _, _, err := d.Refill(ctx, "refill-1"); err != nil {
		t.Fatal(err)
	}
	// The attacker takes the signer's host: the real signer stops.
	if err := d.Signer.Kill(); err != nil {
		t.Fatal(err)
	}
	a := newAttacker(t, d)
	v := a.view(ctx)
	if len(v.UTXOs) != 1 {
		t.Fatalf("hot wallet coins = %d; want the refill's one", len(v.UTXOs))
	}
	hotBefore := v.UTXOs[0].Amount

	// Path 1: the journal, written directly while the core is stopped.
	// A wallet of the attacker's keys registered as a hot customer wallet
	// (refused by apply: only two admins' approved request registers a
	// wallet; the co-signer alerts on the attempt); the attacker's intent key registered for every victim with
	// the attacker's addresses whitelisted; twelve withdrawals of 600,000
	// sat (7,200,000 in all, more than twice the hourly limit), each
	// stamped past the core's cool-down.
	now := time.Now()
	cmds := []core.Command{core.RegisterWallet{Wallet: custody.Wallet{ID: 99, Kind: custody.HotCustomer, Asset: BTC.ID, Descriptor: a.thiefW.String(), Owner: ledger.OwnerHouseMin + 99}}}
	at := []time.Time{now}
	pub := [32]byte(a.intent.Public().(ed25519.PublicKey))
	for i, c := range victims {
		cmds = append(cmds, core.RegisterIntentKey{Customer: c.ID, PubKey: pub}, core.WhitelistAddress{Customer: c.ID, Asset: "BTC", Address: a.thief[i]})
		at = append(at, now, now)
	}
	var ids []string
	for n := 0; n < 12; n++ {
		i := n % 3
		in := withdraw.Intent{RequestID: fmt.Sprintf("theft-%d", n), Asset: "BTC", Address: a.thief[i], Amount: withdraw.AmountOf(600_000), Expiry: now.Add(24 * time.Hour).Unix()}
		sig, _ := in.Sign(a.intent)
		cmds = append(cmds, core.RequestWithdrawal{Customer: victims[i].ID, Intent: in, PubKey: pub, Sig: sig})
		at = append(at, now.Add(time.Hour))
		ids = append(ids, fmt.Sprintf("%d:theft-%d", victims[i].ID, n))
	}
	a.writeJournal(ctx, cmds, at)
	v = a.view(ctx)
	if len(v.Queued) != 12 {
		t.Fatalf("queued after the direct writes = %d; want the 12 forged withdrawals", len(v.Queued))
	}
	utxo := v.UTXOs[0]
	change := v.Hot.NextChange
	if err := d.WaitCosignerCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}

	// Path 2: the signer's TLS identity straight to the co-signer.
	thiefOut := toAddress(t, a.thief[0], 10_000_000)
	refusals := []struct {
		name string
		p    *psbt.Packet
		want string
	}{
		{"the hot wallet to the attacker", a.psbtFrom(utxo, change, 0, toAddress(t, a.thief[0], 10_000_000)), "neither a journaled withdrawal"},
		{"the hot wallet to the journal's new 'hot' wallet as change", a.psbtFrom(utxo, change, 0, toDescriptor(a.thiefW, 1, 0, 10_000_000)), "neither a journaled withdrawal"},
		{"a forged withdrawal before the co-signer's own cool-down", a.psbtFrom(utxo, change, 0, toAddress(t, a.thief[0], 600_000)), "cool-down"},
		{"sighash NONE", func() *psbt.Packet {
			p := a.psbtFrom(utxo, change, 0, thiefOut)
			p.Inputs[0].SighashType = txscript.SigHashNone
			return p
		}(), "SIGHASH_ALL"},
	}
	for _, r := range refusals {
		if _, err := a.ask(ctx, r.p); err == nil || !strings.Contains(err.Error(), r.want) {
			t.Errorf("%s: co-signer = %v; want a refusal naming %q", r.name, err, r.want)
		}
	}

	// Wait out the co-signer's cool-down by its clock, then take what it
	// signs: one forged withdrawal per batch, each journaled through the
	// signer's token so the watcher sees its spend explained; a refused
	// batch is failed with the watcher's token, its coin freed for the
	// next.
	time.Sleep(pol.CoolDown.Duration + time.Second)
	var signedWithdrawals int
	for _, id := range ids {
		v := a.view(ctx)
		var wd withdraw.Withdrawal
		for _, q := range v.Queued {
			if q.ID == id {
				wd = q
			}
		}
		if wd.ID == "" || len(v.UTXOs) == 0 {
			t.Fatalf("withdrawal %s or a hot coin missing from the view", id)
		}
		outs, pays, _ := ceremony.Payouts([]withdraw.Withdrawal{wd}, regtest.Net)
		hotN := a.hotSet.Wallets[0]
		ins, inputs := ceremony.Coins(v.UTXOs, hotN, int64(wd.Intent.Amount.Lo), 10, 1)
		p, err := wallet.Build(ins, outs, hotN, v.Hot.NextChange, 10)
		if err != nil {
			t.Fatal(err)
		}
		b64, _ := wallet.Encode(p)
		b := ceremony.NewBatch("x-"+p.UnsignedTx.TxHash().String()[:16], "BTC", pays, inputs, p.UnsignedTx, p.UnsignedTx.TxOut, 1, b64, v.Hot, false)
		if err := a.api.Submit(ctx, core.ReserveBatch{Batch: b}); err != nil {
			t.Fatalf("reserve: %v", err)
		}
		tx, err := a.ask(ctx, p)
		if err != nil {
			if !strings.Contains(err.Error(), "limit reached") {
				t.Fatalf("withdrawal %s refused for another reason: %v", id, err)
			}
			if err := a.watcherCommand(ctx, core.FailBatch{Batch: b.ID, Reason: "refused"}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		var raw bytes.Buffer
		tx.Serialize(&raw)
		if err := a.api.Submit(ctx, core.RecordSigned{Batch: b.ID, RawTx: fmt.Sprintf("%x", raw.Bytes())}); err != nil {
			t.Fatal(err)
		}
		a.broadcast(ctx, tx)
		signedWithdrawals++
		if _, err := d.Chain.Mine(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := d.wait(ctx, "the batch confirmed", func() (bool, error) {
			v := a.view(ctx)
			return len(v.InFlight) == 0, nil
		}); err != nil {
			t.Fatal(err)
		}
	}

	// Then transactions that pay only ourselves, each with the largest
	// fee the policy allows, chained on each other's change: all asked of
	// the co-signer first, then all broadcast straight to the node.
	v = a.view(ctx)
	cold := mustDescriptor(t, d.Wallets.ColdCustomer)
	u := v.UTXOs[0]
	var selfPays []*wire.MsgTx
	for i := 0; i < 20; i++ {
		idx := v.Hot.NextChange + uint32(1+i)
		tx, err := a.ask(ctx, a.psbtFrom(u, idx, 50_000, toDescriptor(cold, 0, uint32(500+i), 100_000)))
		if err != nil {
			if !strings.Contains(err.Error(), "limit reached") {
				t.Fatalf("self-payment %d refused for another reason: %v", i, err)
			}
			continue
		}
		selfPays = append(selfPays, tx)
		last := len(tx.TxOut) - 1
		u = custody.UTXO{Outpoint: custody.Outpoint{TxID: tx.TxHash(), Vout: uint32(last)}, Amount: uint64(tx.TxOut[last].Value), Branch: 1, Index: idx}
	}
	for _, tx := range selfPays {
		a.broadcast(ctx, tx)
	}
	feeTxs := len(selfPays)
	if _, err := d.Chain.Mine(ctx, 1); err != nil {
		t.Fatal(err)
	}

	// What the attacker got, from the node: its addresses' coins, and
	// every fee the hot wallet paid for its transactions.
	var got, fees int64
	for _, addr := range a.thief {
		b, err := d.Chain.Balance(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		got += b
	}
	for _, tx := range a.sent {
		fees += a.fee(ctx, tx)
	}
	t.Logf("attacker's take: %d sat to its addresses + %d sat in fees = %d; bound per_asset_hour %d; hot wallet held %d; %d forged withdrawals of 12 signed, %d max-fee self-payments signed",
		got, fees, got+fees, perAssetHour, hotBefore, signedWithdrawals, feeTxs)
	if got+fees > perAssetHour {
		t.Fatalf("the attacker took %d (fees included) in under an hour; the bound is %d", got+fees, perAssetHour)
	}
	if got == 0 {
		t.Fatal("no forged withdrawal was paid: the attack did not run as written")
	}
	// The co-signer saw the journal register a wallet it does not pin,
	// and said so.
	if log, _ := os.ReadFile(filepath.Join(d.LogDir, "cosigner.log")); !strings.Contains(string(log), "journal registers a wallet not pinned") {
		t.Fatalf("the co-signer raised no alert for the journal's wallet 99:\n%s", d.Cosigner.LogTail(40))
	}
}

func mustDescriptor(t *testing.T, s string) *wallet.Descriptor {
	t.Helper()
	d, err := wallet.Parse(s, regtest.Net)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// fee is what tx paid miners, from the node's copies of the transactions
// it spends.
func (a *attacker) fee(ctx context.Context, tx *wire.MsgTx) int64 {
	a.t.Helper()
	var in, out int64
	for _, ti := range tx.TxIn {
		prev, err := a.d.Node.Client().Tx(ctx, ti.PreviousOutPoint.Hash)
		if err != nil {
			a.t.Fatal(err)
		}
		in += prev.TxOut[ti.PreviousOutPoint.Index].Value
	}
	for _, o := range tx.TxOut {
		out += o.Value
	}
	return in - out
}
