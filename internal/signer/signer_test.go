package signer

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/alert"
	"kinko/internal/api"
	"kinko/internal/auth"
	"kinko/internal/ceremony"
	"kinko/internal/chain/btc/regtest"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/cosigner"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/mirror"
	"kinko/internal/mtls"
	"kinko/internal/operators"
	"kinko/internal/people"
	"kinko/internal/reserves"
	"kinko/internal/signer/view"
	"kinko/internal/wallet"
	"kinko/internal/watch"
	"kinko/internal/withdraw"
)

// serveAPI serves c's API on loopback until the test ends.
func serveAPI(t testing.TB, c *core.Core) (*api.Server, string) {
	srv, err := api.New(api.Config{Core: c, DataDir: t.TempDir(), Argon2: auth.TestArgon2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return srv, "http://" + ln.Addr().String()
}

// serveCosigner serves cs behind mutual TLS on loopback until the test
// ends; tdir holds the certificates.
func serveCosigner(t testing.TB, cs *cosigner.Cosigner) (url, tdir string) {
	tdir = t.TempDir()
	if err := mtls.Init(tdir); err != nil {
		t.Fatal(err)
	}
	scfg, _ := mtls.Server(tdir)
	cln, _ := tls.Listen("tcp", "127.0.0.1:0", scfg)
	css := &http.Server{Handler: cs.Handler(slog.New(slog.DiscardHandler))}
	go css.Serve(cln)
	t.Cleanup(func() { css.Close() })
	return "https://" + cln.Addr().String(), tdir
}

type acct struct {
	a  *hdkeychain.ExtendedKey
	fp [4]byte
}

func keysOf(t testing.TB, seeds ...byte) (*wallet.Descriptor, []acct) {
	d := &wallet.Descriptor{M: 2, Net: regtest.Net}
	var out []acct
	for _, s := range seeds {
		m, _ := hdkeychain.NewMaster(bytes.Repeat([]byte{s}, 32), regtest.Net)
		k, a, err := wallet.AccountKey(m, regtest.Net, 0)
		if err != nil {
			t.Fatal(err)
		}
		d.Keys = append(d.Keys, k)
		out = append(out, acct{a, k.Fingerprint})
	}
	return d, out
}

func payee(i byte) string {
	a, _ := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{i}, 20), regtest.Net)
	return a.EncodeAddress()
}

// e2e is a node, a core with cold and hot wallets and two verified
// customers, a refilled hot wallet, a co-signer that has seen the journal
// and passed its cool-down, and two queued withdrawals.
type e2e struct {
	ctx          context.Context
	node         *regtest.Node
	c            *core.Core
	hotK         []acct
	coldK        []acct
	set          *wallet.Set // cold and hot
	intent       map[ledger.OwnerID]ed25519.PrivateKey
	w            *watch.Deposits
	cs           *cosigner.Cosigner
	local        *Local
	mineAndWatch func()
	hotD, coldD  *wallet.Descriptor
	// refill is the transaction that moved 2% of the deposits from cold
	// to hot, and refillFee what it paid.
	refill    *wire.MsgTx
	refillFee int64
}

// policy is a co-signer policy pinning the hot and cold wallets, with the
// given cool-down and hourly limits (the day's ten times the hour's, fees
// ten times fee_max an hour, 100 transactions an hour).
func policy(t testing.TB, hot, cold *wallet.Descriptor, cool string, perCust, perAsset, feeMax uint64) *cosigner.Policy {
	t.Helper()
	p, err := cosigner.ParsePolicy([]byte(fmt.Sprintf(`{"cooldown":%q,
  "wallets":[{"name":"hot","kind":"hot-customer","asset":"BTC","descriptor":%q},{"name":"cold","kind":"cold-customer","asset":"BTC","descriptor":%q}],
  "limits":{"BTC":{"per_customer_hour":%d,"per_customer_day":%d,"per_asset_hour":%d,"per_asset_day":%d,
    "fee_max":%d,"fee_hour":%d,"fee_day":%d,"tx_hour":100,"tx_day":1000,"yen_per_coin":15000000,"decimals":8}},
  "all_assets":{"yen_hour":1000000000000,"yen_day":10000000000000,"tx_hour":100,"tx_day":1000}}`,
		cool, hot.String(), cold.String(), perCust, 10*perCust, perAsset, 10*perAsset, feeMax, 10*feeMax, 100*feeMax)), regtest.Net)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// openCosigner opens a co-signer with hot key #2, pol, a state directory
// of its own and a clock offset from now.
func (e *e2e) openCosigner(t testing.TB, pol *cosigner.Policy, offset *atomic.Int64) *cosigner.Cosigner {
	t.Helper()
	cs, err := cosigner.Open(cosigner.Config{Net: regtest.Net, Account: e.hotK[1].a, FP: e.hotK[1].fp, Policy: pol,
		Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }, StateDir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func setup(t testing.TB) *e2e {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	node := regtest.New(t, regtest.Options{})
	c, err := core.Open(ctx, core.Config{Dir: t.TempDir(), CheckInvariants: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	coldD, coldK := keysOf(t, 1, 2, 3)
	hotD, hotK := keysOf(t, 4, 5, 6)
	sub := func(at time.Time, cmd core.Command) any {
		t.Helper()
		o, err := c.Submit(ctx, at, cmd)
		if err == nil {
			err = o.Err
		}
		if err == nil {
			err = o.EventErr()
		}
		if err != nil {
			t.Fatalf("%s: %v", cmd.Kind(), err)
		}
		return o.Value
	}
	now := time.Now()
	creds := people.Credentials{PasswordHash: strings.Repeat("h", 30), TOTPSealed: strings.Repeat("s", 30)}
	sub(now, core.CreateAssets{Assets: []ledger.Asset{{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}})
	team := operators.Crew("signer test")
	for _, cmd := range team.Bootstrap(now) {
		sub(now, cmd)
	}
	for _, cmd := range team.RegisterWallets(now, custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: 2, Descriptor: coldD.String(), Owner: ledger.OwnerHouseMin + 100},
		custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: 2, Descriptor: hotD.String(), Owner: ledger.OwnerHouseMin + 101}) {
		sub(now, cmd)
	}
	// Deposits here are final at one confirmation: the test is about
	// signing, not finality.
	for _, cmd := range team.Approved(core.KindSetWithdrawalRulesRequest, core.SetWithdrawalRulesPayload{Rules: withdraw.Rules{CoolDownSeconds: 1, DustLimit: map[string]withdraw.Amount{"BTC": withdraw.AmountOf(546)},
		Finality: map[string][]withdraw.Tier{"BTC": {{Depth: 1}}}}}, "aiko", "ren", people.RoleAdmin, "test", now) {
		sub(now, cmd)
	}
	intent := map[ledger.OwnerID]ed25519.PrivateKey{}
	book := wallet.NewBook()
	book.Add(1, coldD, 0, 0, 10)
	pay := map[string]btcutil.Amount{}
	for i := ledger.OwnerID(1); i <= 2; i++ {
		sub(now, core.SignUp{Customer: people.Customer{ID: i, Email: string(rune('a'+i)) + "@x.jp", Name: "c", Creds: creds}})
		sub(now, core.SetKYC{Customer: i, KYC: people.KYCVerified, Actor: "aiko", Reason: "ok"})
		pub, priv, _ := ed25519.GenerateKey(nil)
		intent[i] = priv
		sub(now, core.RegisterIntentKey{Customer: i, PubKey: [32]byte(pub)})
		sub(now, core.WhitelistAddress{Customer: i, Asset: "BTC", Address: payee(byte(i))})
		idx := sub(now, core.AssignAddress{Wallet: 1, Customer: i}).(uint32)
		a, _, _ := coldD.Address(0, idx)
		pay[a.EncodeAddress()] = 1_0000_0000
	}
	w, err := watch.NewDeposits(ctx, c, node.Chain(), book, watch.DepositConfig{Asset: 2, Confirmations: 1, StartHeight: regtest.SegwitHeight})
	if err != nil {
		t.Fatal(err)
	}
	mineAndWatch := func() {
		t.Helper()
		if _, err := node.Generate(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := w.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := node.SendTo(ctx, pay); err != nil {
		t.Fatal(err)
	}
	mineAndWatch()
	// Refill the hot wallet from cold: 2% of 2 BTC.
	set, _ := wallet.NewSet([]wallet.Named{{ID: 1, Kind: "cold-customer", Descriptor: coldD.String()}, {ID: 2, Kind: "hot-customer", Descriptor: hotD.String()}}, coldD)
	var plan *ceremony.Plan
	c.Read(func(st *core.State) {
		plan, err = ceremony.Tiers(st, set, reserves.DefaultPolicy, 10, "refill-1", "aiko")
	})
	if err != nil {
		t.Fatal(err)
	}
	sub(time.Now(), plan.Command)
	for _, k := range coldK[:2] {
		if _, err := set.Sign(plan.PSBT, k.a, k.fp); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := wallet.Finalize(plan.PSBT)
	if err != nil {
		t.Fatal(err)
	}
	node.Client().Broadcast(ctx, tx)
	mineAndWatch()
	// The refill's fee, from the chain: what its inputs spent less what
	// it pays.
	var refillFee int64
	for _, in := range tx.TxIn {
		prev, err := node.Client().Tx(ctx, in.PreviousOutPoint.Hash)
		if err != nil {
			t.Fatal(err)
		}
		refillFee += prev.TxOut[in.PreviousOutPoint.Index].Value
	}
	for _, o := range tx.TxOut {
		refillFee -= o.Value
	}

	// The co-signer: its own key, policy, clock and state.
	e := &e2e{ctx: ctx, node: node, c: c, hotK: hotK, coldK: coldK, set: set, intent: intent, w: w, mineAndWatch: mineAndWatch, hotD: hotD, coldD: coldD, refill: tx, refillFee: refillFee}
	var offset atomic.Int64
	cs := e.openCosigner(t, policy(t, hotD, coldD, "2s", 2000000, 3000000, 100000), &offset)
	local := &Local{C: cs, Core: c}
	if err := local.Follow(); err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(10 * time.Second)) // the co-signer's cool-down has passed by its clock

	later := time.Now().Add(3 * time.Second) // the core's cool-down, by entry time
	for i, amt := range map[ledger.OwnerID]uint64{1: 1_000_000, 2: 1_500_000} {
		in := withdraw.Intent{RequestID: "w", Asset: "BTC", Address: payee(byte(i)), Amount: withdraw.AmountOf(amt), Expiry: later.Add(time.Hour).Unix()}
		sig, _ := in.Sign(intent[i])
		rec := sub(later, core.RequestWithdrawal{Customer: i, Intent: in, PubKey: [32]byte(intent[i].Public().(ed25519.PublicKey)), Sig: sig}).(withdraw.Withdrawal)
		if rec.Status != withdraw.StatusQueued {
			t.Fatalf("withdrawal of %d: %s %s", i, rec.Status, rec.Reason)
		}
	}

	e.cs, e.local = cs, local
	return e
}

// TestWithdrawalEndToEnd: customers' signed withdrawals are batched by the
// hot signer, co-signed by the co-signer after its own checks, journaled,
// and broadcast to a real node; a crash between journaling and broadcasting
// re-sends the same transaction; the watcher sees it mined and the holds
// are posted.
func TestWithdrawalEndToEnd(t *testing.T) {
	e := setup(t)
	ctx, node, c, hotK, local, mineAndWatch := e.ctx, e.node, e.c, e.hotK, e.local, e.mineAndWatch
	crash := errors.New("killed between journaling and broadcasting")
	s1 := New(Config{Backend: InProcess{Core: c}, Chain: btcChain(node), PrevTxs: node.Client(), Net: regtest.Net, Account: hotK[0].a, FP: hotK[0].fp, CoSigner: local, beforeBroadcast: func() error { return crash }})
	if _, err := s1.Step(ctx); !errors.Is(err, crash) {
		t.Fatalf("first step = %v", err)
	}
	var batch withdraw.Batch
	c.Read(func(st *core.State) { batch = st.Withdraw.Batches()[0] })
	if batch.Status != withdraw.BatchBroadcast || len(batch.Withdrawals) != 2 {
		t.Fatalf("batch after the crash = %s with %d withdrawals", batch.Status, len(batch.Withdrawals))
	}
	if ids, _ := node.Client().MempoolTxids(ctx); len(ids) != 0 {
		t.Fatalf("mempool before the resend = %v", ids)
	}
	// The restarted signer sends the same transaction, and builds no other.
	s2 := New(Config{Backend: InProcess{Core: c}, Chain: btcChain(node), PrevTxs: node.Client(), Net: regtest.Net, Account: hotK[0].a, FP: hotK[0].fp, CoSigner: local})
	if sent, err := s2.Step(ctx); err != nil || len(sent) != 1 || sent[0] != batch.ID {
		t.Fatalf("resumed step = %v, %v", sent, err)
	}
	ids, _ := node.Client().MempoolTxids(ctx)
	if len(ids) != 1 || [32]byte(ids[0]) != batch.TxID {
		t.Fatalf("mempool = %v; want the batch's %x", ids, batch.TxID)
	}
	if sent, _ := s2.Step(ctx); len(sent) != 1 {
		t.Fatalf("a further step sent %v (the same batch again is expected, nothing new)", sent)
	}
	c.Read(func(st *core.State) {
		if n := len(st.Withdraw.Batches()); n != 1 {
			t.Fatalf("%d batches; want 1", n)
		}
	})
	mineAndWatch()
	c.Read(func(st *core.State) {
		for _, wd := range st.Withdraw.Withdrawals(0) {
			if wd.Status != withdraw.StatusDone {
				t.Errorf("withdrawal %s is %s", wd.ID, wd.Status)
			}
		}
		a, _ := st.Ledger.Account(ledger.AccountKey{Owner: 1, Asset: 2, Kind: ledger.KindAvailable})
		if v, _ := a.Balance().Uint64(); v != 99_000_000 {
			t.Errorf("customer 1 balance = %d; want 99,000,000", v)
		}
		if err := st.CheckInvariants(); err != nil {
			t.Error(err)
		}
	})
}

// TestCrashAfterCoSigning: the signer (or the core) dies after the
// co-signer signed and before the signed transaction is journaled. The
// batch stays signing; the next step signs the same PSBT again, the
// co-signer answers with the signatures it gave (it signs nothing new and
// counts nothing twice), and the same transaction is journaled and sent.
func TestCrashAfterCoSigning(t *testing.T) {
	e := setup(t)
	crash := errors.New("killed after the co-signer signed")
	cfg := Config{Backend: InProcess{Core: e.c}, Chain: btcChain(e.node), PrevTxs: e.node.Client(), Net: regtest.Net, Account: e.hotK[0].a, FP: e.hotK[0].fp, CoSigner: e.local}
	dying := cfg
	dying.afterCoSign = func() error { return crash }
	if _, err := New(dying).Step(e.ctx); !errors.Is(err, crash) {
		t.Fatalf("first step = %v", err)
	}
	var batch withdraw.Batch
	e.c.Read(func(st *core.State) { batch = st.Withdraw.Batches()[0] })
	if batch.Status != withdraw.BatchSigning {
		t.Fatalf("batch after the crash is %s; want signing", batch.Status)
	}
	signedBefore := e.cs.Status().Signed
	if sent, err := New(cfg).Step(e.ctx); err != nil || len(sent) != 1 || sent[0] != batch.ID {
		t.Fatalf("resumed step = %v, %v", sent, err)
	}
	if got := e.cs.Status().Signed; got != signedBefore {
		t.Fatalf("the co-signer signed %d transactions after the crash; want the same %d", got, signedBefore)
	}
	ids, _ := e.node.Client().MempoolTxids(e.ctx)
	if len(ids) != 1 || [32]byte(ids[0]) != batch.TxID {
		t.Fatalf("mempool = %v; want the batch's %x", ids, batch.TxID)
	}
	e.mineAndWatch()
	e.c.Read(func(st *core.State) {
		if n := len(st.Withdraw.Batches()); n != 1 {
			t.Fatalf("%d batches; want 1", n)
		}
		for _, wd := range st.Withdraw.Withdrawals(0) {
			if wd.Status != withdraw.StatusDone {
				t.Errorf("withdrawal %s is %s", wd.ID, wd.Status)
			}
		}
	})
}

// TestWithdrawalThroughProcessBoundaries runs the same withdrawal with each
// role behind its own boundary: the signer reaches the core only over its
// API with the signer token, the co-signer follows the core's journal over
// the read-only stream and answers the signer only over mutual TLS.
func TestWithdrawalThroughProcessBoundaries(t *testing.T) {
	e := setup(t)
	srv, coreURL := serveAPI(t, e.c)

	// The co-signer process: a fresh replica fed only by the stream.
	var offset atomic.Int64
	cs := e.openCosigner(t, policy(t, e.hotD, e.coldD, "2s", 2000000, 3000000, 100000), &offset)
	f := &cosigner.Follower{URL: coreURL, Token: srv.StreamToken(), HTTP: http.DefaultClient, C: cs, Log: slog.New(slog.DiscardHandler)}
	if _, err := f.Poll(e.ctx); err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(10 * time.Second))
	csURL, tdir := serveCosigner(t, cs)
	ccfg, _ := mtls.Client(tdir)
	remote := NewRemote(csURL, ccfg)

	// The signer process: the core over the API, the co-signer over mTLS.
	// Between its journal entries, the co-signer catches up on the stream.
	backend := API{URL: coreURL, Token: srv.SignerToken(), HTTP: http.DefaultClient}
	s := New(Config{Backend: backend, Chain: btcChain(e.node), PrevTxs: e.node.Client(), Net: regtest.Net, Account: e.hotK[0].a, FP: e.hotK[0].fp,
		CoSigner: followThen{f, remote}})
	if (API{URL: coreURL, Token: "wrong", HTTP: http.DefaultClient}).Submit(e.ctx, core.FailBatch{Batch: "x", Reason: "y"}) == nil {
		t.Fatal("the signer routes answered a wrong token")
	}
	if err := backend.Submit(e.ctx, core.CreditDeposits{}); err == nil || !strings.Contains(err.Error(), "does not journal") {
		t.Fatalf("the signer journaling another kind = %v", err)
	}
	// The signer settles its Ether batches only: a Bitcoin batch's
	// confirmation or failure is the watcher's.
	if err := backend.Submit(e.ctx, core.FailBatch{Batch: "x", Reason: "y"}); err == nil || !strings.Contains(err.Error(), "settles only its Ether batches") {
		t.Fatalf("the signer failing a batch that is not an Ether one = %v", err)
	}
	sent, err := s.Step(e.ctx)
	if err != nil || len(sent) != 1 {
		t.Fatalf("step = %v, %v", sent, err)
	}
	var sentTx [32]byte
	e.c.Read(func(st *core.State) {
		for _, b := range st.Withdraw.Batches() {
			if b.ID == sent[0] {
				sentTx = b.TxID
			}
		}
	})
	if sentTx == ([32]byte{}) {
		t.Fatalf("batch %s not in the journal", sent[0])
	}
	for _, cmd := range []core.Command{core.ConfirmBatch{TxID: sentTx, Height: 1}, core.FailBatch{Batch: sent[0], Reason: "forged"}} {
		if err := backend.Submit(e.ctx, cmd); err == nil || !strings.Contains(err.Error(), "403") {
			t.Fatalf("the signer journaling %s of its Bitcoin batch = %v; want 403", cmd.Kind(), err)
		}
	}
	e.mineAndWatch()
	e.c.Read(func(st *core.State) {
		for _, wd := range st.Withdraw.Withdrawals(0) {
			if wd.Status != withdraw.StatusDone {
				t.Errorf("withdrawal %s is %s", wd.ID, wd.Status)
			}
		}
	})
}

// followThen lets the co-signer read the journal up to the batch before it
// is asked to sign it; its own loop does this in `kinko cosigner`.
type followThen struct {
	f *cosigner.Follower
	r *Remote
}

func (x followThen) CoSign(ctx context.Context, p *psbt.Packet) (*psbt.Packet, error) {
	if _, err := x.f.Poll(ctx); err != nil {
		return nil, err
	}
	return x.r.CoSign(ctx, p)
}

// TestDoubleSpentBatchFails: a batch's reserved input is spent by another
// transaction (here signed with the hot keys outside kinko); when that is
// mined the watcher fails the batch: holds voided, withdrawals failed.
func TestDoubleSpentBatchFails(t *testing.T) {
	e := setup(t)
	var now atomic.Int64
	refusing := e.openCosigner(t, policy(t, e.hotD, e.coldD, "2s", 2000000, 3000000, 1), &now)
	s := New(Config{Backend: InProcess{Core: e.c}, Chain: btcChain(e.node), PrevTxs: e.node.Client(), Net: regtest.Net, Account: e.hotK[0].a, FP: e.hotK[0].fp, CoSigner: &Local{C: refusing, Core: e.c}})
	if _, err := s.Step(e.ctx); err == nil || !strings.Contains(err.Error(), "co-signer refused") {
		t.Fatalf("step = %v", err)
	}
	var b withdraw.Batch
	var v view.View
	e.c.Read(func(st *core.State) {
		b = st.Withdraw.Batches()[0]
		v = view.Of(st, "BTC")
	})
	if b.Status != withdraw.BatchSigning {
		t.Fatalf("batch %s", b.Status)
	}
	// Outside kinko, two hot keys spend the batch's input elsewhere.
	p, _ := wallet.Read(strings.NewReader(b.PSBT))
	p.UnsignedTx.TxOut = p.UnsignedTx.TxOut[:1]
	p.Outputs = p.Outputs[:1]
	p.UnsignedTx.TxOut[0].Value = 3_000_000
	set, _ := wallet.NewSet([]wallet.Named{{ID: v.Hot.ID, Kind: "hot-customer", Descriptor: v.Hot.Descriptor}}, mustParse(t, v.Hot.Descriptor))
	for _, k := range e.hotK[:2] {
		if _, err := set.Sign(p, k.a, k.fp); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := wallet.Finalize(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.node.Client().Broadcast(e.ctx, tx); err != nil {
		t.Fatal(err)
	}
	e.mineAndWatch()
	e.c.Read(func(st *core.State) {
		nb, _ := st.Withdraw.Batch(b.ID)
		if nb.Status != withdraw.BatchFailed || !strings.Contains(nb.Reason, "spent by") {
			t.Fatalf("batch after the double spend = %s %q", nb.Status, nb.Reason)
		}
		for _, id := range b.Withdrawals {
			wd, _ := st.Withdraw.Get(id)
			if wd.Status != withdraw.StatusFailed {
				t.Errorf("withdrawal %s is %s", id, wd.Status)
			}
		}
		a, _ := st.Ledger.Account(ledger.AccountKey{Owner: 1, Asset: 2, Kind: ledger.KindAvailable})
		if v, _ := a.Available().Uint64(); v != 1_0000_0000 {
			t.Errorf("customer 1 available = %d; the hold was not voided", v)
		}
		if err := st.CheckInvariants(); err != nil {
			t.Error(err)
		}
	})
}

func mustParse(t *testing.T, d string) *wallet.Descriptor {
	p, err := wallet.Parse(d, regtest.Net)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestColdPathWithdrawals: with withdrawals halted on the hot side, the
// queued withdrawals are paid from the cold wallet by the offline ceremony:
// a cold batch (inputs reserved), two cold keys, and the watcher confirms it;
// the hot signer leaves the cold batch alone.
func TestColdPathWithdrawals(t *testing.T) {
	e := setup(t)
	var rb core.ReserveBatch
	var p *psbt.Packet
	var err error
	e.c.Read(func(st *core.State) { rb, p, err = ceremony.ColdWithdrawals(st, e.set, 10, "cold-1", nil) })
	if err != nil {
		t.Fatal(err)
	}
	if o, err := e.c.Submit(e.ctx, time.Now(), rb); err != nil || o.Err != nil {
		t.Fatal(err, o.Err)
	}
	// The hot signer sees nothing to do.
	s := New(Config{Backend: InProcess{Core: e.c}, Chain: btcChain(e.node), PrevTxs: e.node.Client(), Net: regtest.Net, Account: e.hotK[0].a, FP: e.hotK[0].fp, CoSigner: e.local})
	if sent, err := s.Step(e.ctx); err != nil || len(sent) != 0 {
		t.Fatalf("hot signer with only a cold batch = %v, %v", sent, err)
	}
	desc, _ := e.set.Describe(p, nil)
	if !strings.Contains(desc.String(), "[payment to an outside address]") || !strings.Contains(desc.String(), "wallet 1 (cold-customer) change #") {
		t.Fatalf("description:\n%s", desc)
	}
	for _, k := range e.coldK[:2] {
		if _, err := e.set.Sign(p, k.a, k.fp); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := wallet.Finalize(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.node.Client().Broadcast(e.ctx, tx); err != nil {
		t.Fatal(err)
	}
	e.mineAndWatch()
	e.c.Read(func(st *core.State) {
		b, _ := st.Withdraw.Batch("cold-1")
		if b.Status != withdraw.BatchConfirmed {
			t.Fatalf("cold batch %s", b.Status)
		}
		for _, id := range b.Withdrawals {
			if wd, _ := st.Withdraw.Get(id); wd.Status != withdraw.StatusDone {
				t.Errorf("withdrawal %s is %s", id, wd.Status)
			}
		}
		hot, _ := st.Ledger.Account(ledger.AccountKey{Owner: ledger.OwnerHouseMin + 101, Asset: 2, Kind: ledger.KindWallet})
		if v, _ := hot.Balance().Uint64(); v != 4_000_000 {
			t.Errorf("hot wallet = %d; the cold path must not touch it", v)
		}
		if err := st.CheckInvariants(); err != nil {
			t.Error(err)
		}
	})
}

// TestAttacksOnRealNode plays the attacks of an attacker holding the core,
// the API and the hot signer with its key, against a real node: each fails
// at the co-signer, and no attacker transaction reaches the chain.
func TestAttacksOnRealNode(t *testing.T) {
	e := setup(t)
	var v view.View
	e.c.Read(func(st *core.State) { v = view.Of(st, "BTC") })
	set, _ := wallet.NewSet([]wallet.Named{{ID: v.Hot.ID, Kind: "hot-customer", Descriptor: v.Hot.Descriptor}}, mustParse(t, v.Hot.Descriptor))
	thief, _ := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{0xEE}, 20), regtest.Net)
	thiefPk, _ := txscript.PayToAddrScript(thief)
	u := v.UTXOs[0]
	build := func(outs ...*wire.TxOut) *psbt.Packet {
		in := wallet.UTXO{OutPoint: wire.OutPoint{Hash: chainhash.Hash(u.Outpoint.TxID), Index: u.Outpoint.Vout}, Value: int64(u.Amount), Wallet: set.Wallets[0], Branch: u.Branch, Index: u.Index}
		p, err := wallet.Build([]wallet.UTXO{in}, outs, set.Wallets[0], v.Hot.NextChange, 10)
		if err != nil {
			t.Fatal(err)
		}
		set.Sign(p, e.hotK[0].a, e.hotK[0].fp) // the attacker has hot key #1
		return p
	}
	payTo := func(i byte, amt int64) *wire.TxOut {
		a, _ := btcutil.DecodeAddress(payee(i), regtest.Net)
		pk, _ := txscript.PayToAddrScript(a)
		return wire.NewTxOut(amt, pk)
	}
	refused := func(name string, p *psbt.Packet, want error) {
		t.Helper()
		if _, err := e.local.CoSign(e.ctx, p); !errors.Is(err, want) {
			t.Errorf("%s: co-signer = %v; want %v", name, err, want)
		}
	}
	// 1. A withdrawal to the thief written into the journal with no valid
	// customer signature (the attacker holds the core: a direct append).
	in := withdraw.Intent{RequestID: "theft", Asset: "BTC", Address: thief.EncodeAddress(), Amount: withdraw.AmountOf(1_000_000), Expiry: time.Now().Add(time.Hour).Unix()}
	forged := core.RequestWithdrawal{Customer: 1, Intent: in, PubKey: [32]byte{1}, Sig: make([]byte, 64)}
	if _, err := e.c.Journal().Append(time.Now().UnixNano(), uint16(forged.Kind()), forged.AppendPayload(nil)); err != nil {
		t.Fatal(err)
	}
	refused("forged withdrawal", build(wire.NewTxOut(1_000_000, thiefPk)), cosigner.ErrUnexplained)
	// 2. A key and address registered just now — the attacker stamps the
	// entries as if the core's cool-down had passed — and a request the
	// new key really signed: the co-signer has known them for seconds.
	pub, priv, _ := ed25519.GenerateKey(nil)
	at := time.Now().Add(20 * time.Second)
	in2 := withdraw.Intent{RequestID: "new-key", Asset: "BTC", Address: thief.EncodeAddress(), Amount: withdraw.AmountOf(700_000), Expiry: at.Add(time.Hour).Unix()}
	sig2, _ := in2.Sign(priv)
	for i, cmd := range []core.Command{
		core.RegisterIntentKey{Customer: 1, PubKey: [32]byte(pub)},
		core.WhitelistAddress{Customer: 1, Asset: "BTC", Address: thief.EncodeAddress()},
		core.RequestWithdrawal{Customer: 1, Intent: in2, PubKey: [32]byte(pub), Sig: sig2},
	} {
		ts := at
		if i == 2 {
			ts = at.Add(5 * time.Second)
		}
		if _, err := e.c.Journal().Append(ts.UnixNano(), uint16(cmd.Kind()), cmd.AppendPayload(nil)); err != nil {
			t.Fatal(err)
		}
	}
	refused("key registered seconds ago", build(wire.NewTxOut(700_000, thiefPk)), cosigner.ErrCooling)
	// 3. A PSBT with an extra output, a changed amount, a huge fee.
	refused("extra output", build(payTo(1, 1_000_000), wire.NewTxOut(500_000, thiefPk)), cosigner.ErrUnexplained)
	refused("changed amount", build(payTo(1, 1_100_000)), cosigner.ErrUnexplained)
	huge := build(payTo(1, 1_000_000))
	huge.UnsignedTx.TxOut, huge.Outputs = huge.UnsignedTx.TxOut[:1], huge.Outputs[:1]
	refused("huge fee", huge, cosigner.ErrFee)
	// 4. Beyond the co-signer's hourly limit (3,000,000 in this policy):
	// both queued withdrawals (2,500,000) pass, then nothing more.
	ok := build(payTo(1, 1_000_000), payTo(2, 1_500_000))
	if _, err := e.local.CoSign(e.ctx, ok); err != nil {
		t.Fatalf("the customers' own withdrawals: %v", err)
	}
	// 5. The same transaction again gets the same signatures (nothing
	// more can leave by it); another transaction paying the same
	// withdrawals is refused.
	before := len(ok.Inputs[0].PartialSigs)
	if _, err := e.local.CoSign(e.ctx, ok); err != nil || len(ok.Inputs[0].PartialSigs) != before {
		t.Fatalf("the same transaction again: %v, %d signatures (had %d)", err, len(ok.Inputs[0].PartialSigs), before)
	}
	refused("the same withdrawals in another transaction", build(payTo(2, 1_500_000), payTo(1, 1_000_000)), cosigner.ErrAlreadySigned)
	// 6. An entry altered after the co-signer read it: the chain breaks.
	raw, _ := e.c.Journal().Get(3)
	b := raw.Encode()
	b[len(b)-40] ^= 1
	if err := e.cs.Ingest(b); !errors.Is(err, cosigner.ErrChainBroken) {
		t.Fatalf("altered entry = %v", err)
	}
	refused("after the break", build(payTo(1, 1_000_000)), cosigner.ErrChainBroken)
	// Nothing of the attacker's reached the node.
	ids, _ := e.node.Client().MempoolTxids(e.ctx)
	if len(ids) != 0 {
		t.Fatalf("mempool = %v", ids)
	}
}

// drain builds and signs, with two leaked hot keys, a transaction sending
// the whole hot wallet output to the thief.
func (e *e2e) drain(t *testing.T) *wire.MsgTx {
	var v view.View
	e.c.Read(func(st *core.State) { v = view.Of(st, "BTC") })
	set, _ := wallet.NewSet([]wallet.Named{{ID: v.Hot.ID, Kind: "hot-customer", Descriptor: v.Hot.Descriptor}}, mustParse(t, v.Hot.Descriptor))
	u := v.UTXOs[0]
	thief, _ := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{0xEE}, 20), regtest.Net)
	pk, _ := txscript.PayToAddrScript(thief)
	in := wallet.UTXO{OutPoint: wire.OutPoint{Hash: chainhash.Hash(u.Outpoint.TxID), Index: u.Outpoint.Vout}, Value: int64(u.Amount), Wallet: set.Wallets[0], Branch: u.Branch, Index: u.Index}
	p, err := wallet.Build([]wallet.UTXO{in}, []*wire.TxOut{wire.NewTxOut(int64(u.Amount)-20_000, pk)}, nil, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range e.hotK[:2] { // the attacker holds two of the three hot keys
		if _, err := set.Sign(p, k.a, k.fp); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := wallet.Finalize(p)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// payout builds a PSBT paying a customer's address from the hot wallet,
// as the hot signer would.
func (e *e2e) payout(t *testing.T) *psbt.Packet {
	var v view.View
	e.c.Read(func(st *core.State) { v = view.Of(st, "BTC") })
	set, _ := wallet.NewSet([]wallet.Named{{ID: v.Hot.ID, Kind: "hot-customer", Descriptor: v.Hot.Descriptor}}, mustParse(t, v.Hot.Descriptor))
	u := v.UTXOs[0]
	a, _ := btcutil.DecodeAddress(payee(1), regtest.Net)
	pk, _ := txscript.PayToAddrScript(a)
	p, err := wallet.Build([]wallet.UTXO{{OutPoint: wire.OutPoint{Hash: chainhash.Hash(u.Outpoint.TxID), Index: u.Outpoint.Vout}, Value: int64(u.Amount), Wallet: set.Wallets[0], Branch: u.Branch, Index: u.Index}},
		[]*wire.TxOut{wire.NewTxOut(1_000_000, pk)}, set.Wallets[0], v.Hot.NextChange, 10)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDrillMempoolTheft: two hot keys leak; the attacker broadcasts a
// transaction draining the hot wallet straight to the node. The watcher
// flags it from the mempool, tells the co-signer at once, and the halt and
// the incident are journaled within a second of the broadcast; the co-signer
// refuses to sign that asset afterwards; the loss is at most the hot
// wallet's balance, within the 5% cap.
func TestDrillMempoolTheft(t *testing.T) {
	e := setup(t)
	w, err := watch.NewDeposits(e.ctx, e.c, e.node.Chain(), wallet.NewBook(), watch.DepositConfig{Asset: 2, Confirmations: 1, StartHeight: regtest.SegwitHeight,
		OnUnexplained: func(_ ledger.AssetID, _ chainhash.Hash, why string) { e.cs.Halt("BTC", "watcher", why) }})
	if err != nil {
		t.Fatal(err)
	}
	w.Step(e.ctx)
	theft := e.drain(t)
	start := time.Now()
	if _, err := e.node.Client().Broadcast(e.ctx, theft); err != nil {
		t.Fatal(err)
	}
	var halted time.Duration
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := w.Step(e.ctx); err != nil {
			t.Fatal(err)
		}
		var stop error
		e.c.Read(func(st *core.State) { stop = st.Controls.Allowed(2, controls.Withdraw) })
		if stop != nil {
			halted = time.Since(start)
			break
		}
	}
	if halted == 0 || halted > time.Second {
		t.Fatalf("halt journaled %v after the broadcast; want within 1s", halted)
	}
	t.Logf("broadcast -> halt journaled in %v", halted)
	e.c.Read(func(st *core.State) {
		ins := st.Incidents.List()
		if len(ins) != 1 || len(ins[0].TxIDs) != 1 || ins[0].TxIDs[0] != theft.TxHash().String() {
			t.Fatalf("incidents = %+v; want one naming %s", ins, theft.TxHash())
		}
		rep, _ := reserves.Compute(st.Ledger, st.Custody, reserves.DefaultPolicy, nil, st.Seq(), st.Time())
		if r := rep.Rows[0]; r.HotShareBps > reserves.MaxHotCapBps || theft.TxOut[0].Value > int64(mustU(r.HotCustomerLedger)) {
			t.Fatalf("the theft (%d) is not bounded by the hot wallet (%v, %d bps)", theft.TxOut[0].Value, r.HotCustomerLedger, r.HotShareBps)
		}
	})
	// The timeline names the detection and the halt, with their actor.
	evs, err := core.Timeline(e.c.Journal(), 1, nil, core.Names{})
	if err != nil {
		t.Fatal(err)
	}
	var sawHalt, sawIncident bool
	for _, ev := range evs {
		sawHalt = sawHalt || (ev.Actor == "watcher" && strings.HasPrefix(ev.What, "halt") && strings.Contains(ev.Detail, theft.TxHash().String()))
		sawIncident = sawIncident || (strings.HasPrefix(ev.What, "incident") && strings.Contains(ev.Detail, theft.TxHash().String()))
	}
	if !sawHalt || !sawIncident {
		t.Fatalf("timeline = %+v", evs)
	}
	// The co-signer refuses the asset now, whatever the core says.
	if _, err := e.local.CoSign(e.ctx, e.payout(t)); !errors.Is(err, cosigner.ErrHalted) {
		t.Fatalf("a customer's own withdrawal after the halt = %v; want ErrHalted", err)
	}
}

// TestDrillBlockOnlyTheft: the theft is mined by another node and never
// seen in our node's mempool; the watcher catches it in the block.
func TestDrillBlockOnlyTheft(t *testing.T) {
	e := setup(t)
	w, err := watch.NewDeposits(e.ctx, e.c, e.node.Chain(), wallet.NewBook(), watch.DepositConfig{Asset: 2, Confirmations: 1, StartHeight: regtest.SegwitHeight})
	if err != nil {
		t.Fatal(err)
	}
	w.Step(e.ctx)
	other := regtest.New(t, regtest.Options{MatureBlocks: -1})
	if err := other.Connect(e.ctx, e.node); err != nil {
		t.Fatal(err)
	}
	regtest.WaitSynced(e.ctx, e.node, other)
	e.node.Disconnect(e.ctx)
	other.Disconnect(e.ctx)
	theft := e.drain(t)
	if _, err := other.Client().Broadcast(e.ctx, theft); err != nil {
		t.Fatal(err)
	}
	other.Generate(e.ctx, 1)
	w.Step(e.ctx)
	e.c.Read(func(st *core.State) {
		if st.Controls.Allowed(2, controls.Withdraw) != nil {
			t.Fatal("halted before the block arrived")
		}
	})
	other.Connect(e.ctx, e.node)
	regtest.WaitSynced(e.ctx, e.node, other)
	if err := w.Step(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.c.Read(func(st *core.State) {
		if err := st.Controls.Allowed(2, controls.Withdraw); !errors.Is(err, controls.ErrHalted) || !strings.Contains(err.Error(), "in block") {
			t.Fatalf("after the block = %v", err)
		}
	})
}

func mustU(a ledger.Amount) uint64 {
	v, _ := a.Uint64()
	return v
}

// TestDrillLedgerChainMismatch: no transaction at all, but the ledger's
// hot wallet account is changed (as by someone with write access to the
// core); reconciliation halts withdrawals at the next block.
func TestDrillLedgerChainMismatch(t *testing.T) {
	e := setup(t)
	owned := wallet.NewBook()
	e.c.Read(func(st *core.State) {
		for _, w := range st.Custody.Wallets() {
			d := mustParse(t, w.Descriptor)
			owned.Add(w.ID, d, 0, 0, 50)
			owned.Add(w.ID, d, 1, 0, 50)
		}
	})
	// The tolerance covers the refill's network fee, which the customer
	// wallets paid (docs/custody.md).
	w, err := watch.NewDeposits(e.ctx, e.c, e.node.Chain(), wallet.NewBook(), watch.DepositConfig{Asset: 2, Confirmations: 1, StartHeight: regtest.SegwitHeight, Owned: owned, Tolerance: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Step(e.ctx); err != nil {
		t.Fatal(err)
	}
	if m := w.Reconcile(); len(m) != 0 {
		t.Fatalf("ledger and chain differ before any tampering: %+v", m)
	}
	hot := ledger.AccountKey{Owner: ledger.OwnerHouseMin + 101, Asset: 2, Kind: ledger.KindWallet}
	eq := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: 2, Kind: ledger.KindEquity}
	if o, err := e.c.Submit(e.ctx, time.Now(), core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 9, Lo: 9}, Debit: hot, Credit: eq, Amount: ledger.AmountOf(500_000)}}}); err != nil || o.EventErr() != nil {
		t.Fatal(err, o.EventErr())
	}
	e.node.Generate(e.ctx, 1)
	if err := w.Step(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.c.Read(func(st *core.State) {
		err := st.Controls.Allowed(2, controls.Withdraw)
		if !errors.Is(err, controls.ErrHalted) || !strings.Contains(err.Error(), "reconciliation") {
			t.Fatalf("after the mismatch = %v", err)
		}
		// The wallet's ledger account says 500,000 more than the chain.
		ins := st.Incidents.List()
		if len(ins) != 1 || ins[0].ID != "mismatch-BTC-2" || !strings.Contains(ins[0].Reason, "ledger 4500000, chain 4000000") {
			t.Fatalf("incidents = %+v", ins)
		}
	})
}

// TestDrillSeparateWatcher runs the mempool theft drill with the watcher in
// its own process, as `kinko watch` runs it: its replica of the state comes
// from the journal stream, its commands go through the core's API with the
// watcher token, and it halts the co-signer directly over mutual TLS with
// its own certificate. The alert webhook receives one signed alert for the
// theft however many times the watcher sees it.
func TestDrillSeparateWatcher(t *testing.T) {
	e := setup(t)
	srv, coreURL := serveAPI(t, e.c)
	csURL, tdir := serveCosigner(t, e.cs)
	secret := []byte("a shared webhook secret")
	var mu sync.Mutex
	var alerts []alert.Alert
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get(alert.SignatureHeader) != alert.Sign(secret, body) {
			t.Errorf("alert with a bad signature: %s", body)
		}
		var a alert.Alert
		json.Unmarshal(body, &a)
		mu.Lock()
		alerts = append(alerts, a)
		mu.Unlock()
	}))
	defer hook.Close()
	wh := &alert.Webhook{URL: hook.URL, Secret: secret}
	wh.Start()

	mir, err := mirror.Open(t.TempDir(), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mir.Close()
	remote := watch.NewRemote(coreURL, srv.StreamToken(), srv.WatcherToken(), nil, mir)
	wcfg, err := mtls.Watcher(tdir)
	if err != nil {
		t.Fatal(err)
	}
	alarm := watch.NewAlarm([]string{csURL}, wcfg, nil)
	if err := remote.Sync(e.ctx); err != nil {
		t.Fatal(err)
	}
	w, err := watch.ForAsset(e.ctx, remote, e.node.Chain(), regtest.Net, "BTC", watch.DepositConfig{Confirmations: 1, StartHeight: regtest.SegwitHeight, Tolerance: 10_000,
		Alert: wh.Send, OnUnexplained: func(_ ledger.AssetID, _ chainhash.Hash, why string) { alarm.Halt("BTC", why) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Step(e.ctx); err != nil {
		t.Fatal(err)
	}
	if m := w.Reconcile(); len(m) != 0 {
		t.Fatalf("ledger and chain differ before the drill: %+v", m)
	}
	// The watcher's token journals only its own kinds.
	bad, _ := json.Marshal(watch.WatchCommand{Kind: "create_transfers", Payload: json.RawMessage(`{}`)})
	req, _ := http.NewRequest("POST", coreURL+"/v1/watch/commands", bytes.NewReader(bad))
	req.Header.Set("Authorization", "Bearer "+srv.WatcherToken())
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("the watcher journaling a transfer = %v %v", res.Status, err)
	}

	theft := e.drain(t)
	start := time.Now()
	if _, err := e.node.Client().Broadcast(e.ctx, theft); err != nil {
		t.Fatal(err)
	}
	var halted time.Duration
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && halted == 0; time.Sleep(20 * time.Millisecond) {
		if err := w.Step(e.ctx); err != nil {
			t.Fatal(err)
		}
		e.c.Read(func(st *core.State) {
			if st.Controls.Allowed(2, controls.Withdraw) != nil {
				halted = time.Since(start)
			}
		})
	}
	if halted == 0 || halted > time.Second {
		t.Fatalf("halt journaled %v after the broadcast; want within 1s", halted)
	}
	t.Logf("separate watcher: broadcast -> halt journaled in %v", halted)
	// The co-signer was told directly: it refuses even before it has read
	// the halt from the journal (its follower is not running here).
	alarm.Stop()
	if _, err := e.cs.Sign(e.payout(t)); !errors.Is(err, cosigner.ErrHalted) {
		t.Fatalf("co-signer after the alarm = %v; want ErrHalted", err)
	}
	// Seen again in later steps and in the block: one alert, one incident.
	e.node.Generate(e.ctx, 1)
	for range 3 {
		if err := w.Step(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	wh.Stop()
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for _, a := range alerts {
		if strings.HasPrefix(a.Key, "outflow:") {
			n++
			if a.Severity != alert.Critical || !strings.Contains(a.Detail, theft.TxHash().String()) {
				t.Errorf("alert = %+v", a)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d outflow alerts; want 1: %+v", n, alerts)
	}
	// One incident for the theft; once it is mined, reconciliation sees
	// the hot wallet's ledger account above the chain, and the customer
	// wallets on chain short of the liabilities, and records both. The
	// customer wallets hold the 2 BTC deposited less the refill's fee (by
	// the ledger, and on chain less the 0.04 BTC stolen too); the fee is
	// the refill's size once signed at the ceremony's 10 sat/vB, counting
	// each signature at the 71 bytes of a low-R one (a signature whose S
	// happens to be shorter saves the byte).
	wu := blockchain.GetTransactionWeight(btcutil.NewTx(e.refill))
	for _, in := range e.refill.TxIn {
		for _, sig := range in.Witness[1 : len(in.Witness)-1] {
			wu += int64(71 - len(sig))
		}
	}
	if vs := (wu + 3) / 4; e.refillFee != 10*vs {
		t.Fatalf("the refill paid %d sat for %d vB; want 10 sat/vB", e.refillFee, vs)
	}
	ledgerSide, chainSide := 200_000_000-e.refillFee, 200_000_000-e.refillFee-4_000_000
	segregated := fmt.Sprintf("liabilities 200000000, customer wallets %d by the ledger and %d on chain", ledgerSide, chainSide)
	e.c.Read(func(st *core.State) {
		var outflow, mismatch, segregation int
		for _, in := range st.Incidents.List() {
			switch {
			case in.Detector == "watcher" && len(in.TxIDs) == 1 && in.TxIDs[0] == theft.TxHash().String():
				outflow++
			case in.Detector == "reconciliation" && strings.Contains(in.Reason, "wallet 2: ledger 4000000, chain 0"):
				mismatch++
			case in.ID == "segregation-BTC" && strings.Contains(in.Reason, segregated):
				segregation++
			default:
				t.Errorf("incident %+v", in)
			}
		}
		if outflow != 1 || mismatch != 1 || segregation != 1 {
			t.Fatalf("incidents = %+v", st.Incidents.List())
		}
	})
	// Only the watcher's certificate may halt; only the signer's may ask
	// for a signature.
	scfg, _ := mtls.Client(tdir)
	signerClient := &http.Client{Transport: &http.Transport{TLSClientConfig: scfg}}
	if res, err := signerClient.Post(csURL+"/halt", "application/json", strings.NewReader(`{"asset":"BTC","reason":"x"}`)); err != nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("the signer's certificate halting = %v %v", res.Status, err)
	}
	watcherClient := &http.Client{Transport: &http.Transport{TLSClientConfig: wcfg}}
	if res, err := watcherClient.Post(csURL+"/cosign", "text/plain", strings.NewReader("cHNidP8=")); err != nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("the watcher's certificate asking for a signature = %v %v", res.Status, err)
	}
}

// TestBitcoinWithdrawalFee: the withdrawal fee rule on btcd, the same rule
// the Ether path applies in wei: a customer's withdrawal of 100,000 sat
// with a fee of 10,000 sat holds both, pays the amount on chain, and once
// the watcher confirms the batch the customer is down 110,000 sat and the
// house's account up exactly 10,000; the network fee is charged to equity,
// not the customer.
func TestBitcoinWithdrawalFee(t *testing.T) {
	e := setup(t)
	s := New(Config{Backend: InProcess{Core: e.c}, Chain: btcChain(e.node), PrevTxs: e.node.Client(), Net: regtest.Net, Account: e.hotK[0].a, FP: e.hotK[0].fp, CoSigner: e.local})
	if _, err := s.Step(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.mineAndWatch()
	at := time.Now().Add(5 * time.Second)
	submit := func(cmd core.Command) any {
		t.Helper()
		o, err := e.c.Submit(e.ctx, at, cmd)
		if err == nil {
			err = o.EventErr()
		}
		if err != nil {
			t.Fatalf("%s: %v", cmd.Kind(), err)
		}
		return o.Value
	}
	for _, cmd := range operators.Crew("signer test").Approved(core.KindSetWithdrawalRulesRequest, core.SetWithdrawalRulesPayload{Rules: withdraw.Rules{CoolDownSeconds: 1,
		DustLimit: map[string]withdraw.Amount{"BTC": withdraw.AmountOf(546)}, Finality: map[string][]withdraw.Tier{"BTC": {{Depth: 1}}}, WithdrawalFee: map[string]withdraw.Amount{"BTC": withdraw.AmountOf(10_000)}}},
		"aiko", "ren", people.RoleAdmin, "a withdrawal fee", at) {
		submit(cmd)
	}
	bal := func(k ledger.AccountKey) uint64 {
		var v uint64
		e.c.Read(func(st *core.State) { a, _ := st.Ledger.Account(k); v, _ = a.Balance().Uint64() })
		return v
	}
	cust := ledger.AccountKey{Owner: 1, Asset: 2, Kind: ledger.KindAvailable}
	house := ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: 2, Kind: ledger.KindHouse}
	custBefore, houseBefore := bal(cust), bal(house)
	in := withdraw.Intent{RequestID: "fee-1", Asset: "BTC", Address: payee(1), Amount: withdraw.AmountOf(100_000), Expiry: at.Add(time.Hour).Unix()}
	sig, _ := in.Sign(e.intent[1])
	rec := submit(core.RequestWithdrawal{Customer: 1, Intent: in, PubKey: [32]byte(e.intent[1].Public().(ed25519.PublicKey)), Sig: sig}).(withdraw.Withdrawal)
	if rec.Status != withdraw.StatusQueued || rec.Fee != withdraw.AmountOf(10_000) {
		t.Fatalf("withdrawal %s: %s (%s), fee %s", rec.ID, rec.Status, rec.Reason, rec.Fee)
	}
	if sent, err := s.Step(e.ctx); err != nil || len(sent) != 1 {
		t.Fatalf("step = %v, %v", sent, err)
	}
	e.mineAndWatch()
	e.c.Read(func(st *core.State) {
		if wd, _ := st.Withdraw.Get(rec.ID); wd.Status != withdraw.StatusDone {
			t.Fatalf("withdrawal %s is %s", rec.ID, wd.Status)
		}
		if err := st.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	})
	if got := custBefore - bal(cust); got != 110_000 {
		t.Errorf("the customer paid %d sat; want 110,000 (the amount and the fee)", got)
	}
	if got := bal(house) - houseBefore; got != 10_000 {
		t.Errorf("the house gained %d sat of fees; want 10,000", got)
	}
}
