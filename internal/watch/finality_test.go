package watch

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/journal"
	"kinko/internal/ledger"
	"kinko/internal/operators"
	"kinko/internal/people"
	"kinko/internal/wallet"
	"kinko/internal/withdraw"
)

// finalityEnv is a depositEnv whose customer 1 (the attacker) is a verified
// customer with an intent key and a whitelisted address of their own, all
// journaled two days ago so the cool-down is over, under withdrawal rules
// with BTC's finality tiers: 6 confirmations up to 1 BTC, 20 up to 10,
// 100 above.
type finalityEnv struct {
	team *operators.Team
	*depositEnv
	key  ed25519.PrivateKey
	dest string
	n    int
}

func newFinalityEnv(t *testing.T) *finalityEnv {
	ctx := context.Background()
	e := &finalityEnv{depositEnv: &depositEnv{t: t, node: regtest.New(t, regtest.Options{}), book: wallet.NewBook(), desc: coldDescriptor(t)}}
	c, err := core.Open(ctx, core.Config{Dir: t.TempDir(), CheckInvariants: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e.core = c
	_, priv, _ := ed25519.GenerateKey(nil)
	e.key = priv
	dest, _ := btcutil.NewAddressWitnessPubKeyHash(make([]byte, 20), regtest.Net)
	e.dest = dest.EncodeAddress()
	creds := people.Credentials{PasswordHash: strings.Repeat("h", 30), TOTPSealed: strings.Repeat("s", 30)}
	past := time.Now().Add(-48 * time.Hour)
	team := operators.Crew("watch test")
	e.team = team
	cmds := append([]core.Command{core.CreateAssets{Assets: []ledger.Asset{{ID: btcAsset, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}}}, team.Bootstrap(past)...)
	cmds = append(cmds, team.Approved(core.KindSetWithdrawalRulesRequest, core.SetWithdrawalRulesPayload{Rules: withdraw.Rules{CoolDownSeconds: 3600, Finality: map[string][]withdraw.Tier{
		"BTC": {{UpTo: withdraw.AmountOf(1_0000_0000), Depth: 6}, {UpTo: withdraw.AmountOf(10_0000_0000), Depth: 20}, {Depth: 100}}}}}, "aiko", "ren", people.RoleAdmin, "test", past)...)
	cmds = append(cmds, []core.Command{
		core.SignUp{Customer: people.Customer{ID: 1, Email: "attacker@example.jp", Name: "a", Creds: creds}},
		core.SetKYC{Customer: 1, KYC: people.KYCVerified, Actor: "aiko", Reason: "documents checked"},
	}...)
	cmds = append(cmds, team.RegisterWallets(past, custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: btcAsset, Descriptor: e.desc.String(), Owner: ledger.OwnerHouseMin + 100})...)
	for _, cmd := range append(cmds, []core.Command{
		core.AssignAddress{Wallet: 1, Customer: 1},
		core.RegisterIntentKey{Customer: 1, PubKey: [32]byte(priv.Public().(ed25519.PublicKey))},
		core.WhitelistAddress{Customer: 1, Asset: "BTC", Address: e.dest},
	}...) {
		if o, err := c.Submit(ctx, past, cmd); err != nil || o.Err != nil || o.EventErr() != nil {
			t.Fatal(cmd.Kind(), err, o.Err, o.EventErr())
		}
	}
	if err := e.book.Add(1, e.desc, 0, 0, 20); err != nil {
		t.Fatal(err)
	}
	a, _, _ := e.desc.Address(0, 0)
	e.addr = a.EncodeAddress()
	return e
}

// withdraw asks, as the attacker, to withdraw amount to their own address
// now, and returns the journaled record.
func (e *finalityEnv) withdraw(amount uint64) withdraw.Withdrawal {
	e.t.Helper()
	e.n++
	in := withdraw.Intent{RequestID: "w" + string(rune('0'+e.n)), Asset: "BTC", Address: e.dest, Amount: withdraw.AmountOf(amount), Expiry: time.Now().Add(time.Hour).Unix()}
	sig, err := in.Sign(e.key)
	if err != nil {
		e.t.Fatal(err)
	}
	o, err := e.core.Submit(context.Background(), time.Now(), core.RequestWithdrawal{Customer: 1, Intent: in, PubKey: [32]byte(e.key.Public().(ed25519.PublicKey)), Sig: sig})
	if err == nil {
		err = o.Err
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return o.Value.(withdraw.Withdrawal)
}

// mine mines n blocks on the node and lets the watcher step.
func (e *finalityEnv) mine(ctx context.Context, d *Deposits, n uint32) {
	e.t.Helper()
	if _, err := e.node.Generate(ctx, n); err != nil {
		e.t.Fatal(err)
	}
	e.step(d)
}

// inChain checks whether tx is in a block of the node's best chain.
func (e *finalityEnv) inChain(tx *wire.MsgTx, want bool) {
	e.t.Helper()
	h := tx.TxHash()
	v, err := e.node.RPC().GetRawTransactionVerbose(&h)
	got := err == nil && v.BlockHash != "" && v.Confirmations > 0
	if got != want {
		e.t.Fatalf("transaction %s in a block of the best chain: %v; want %v (%+v, %v)", h, got, want, v, err)
	}
}

// books returns the attacker's available and held BTC, what they owe, and
// the house's BTC equity (credits less debits).
func (e *finalityEnv) books() (avail, held, owed uint64, equity int64) {
	e.core.Read(func(s *core.State) {
		get := func(k ledger.AccountKey) ledger.Account { a, _ := s.Ledger.Account(k); return a }
		a := get(custAcct)
		avail, _ = a.Available().Uint64()
		h := get(ledger.AccountKey{Owner: 1, Asset: btcAsset, Kind: ledger.KindHeld})
		held, _ = h.Balance().Uint64()
		owed = custody.Owed(s.Ledger, 1, btcAsset)
		eq := get(ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: btcAsset, Kind: ledger.KindEquity})
		c, _ := eq.CreditsPosted.Uint64()
		d, _ := eq.DebitsPosted.Uint64()
		equity = int64(c) - int64(d)
	})
	return
}

// TestFinalityReorgDoubleSpend is the attack finality stops, on real btcd:
// the attacker deposits 0.3 BTC, is credited at 2 confirmations, asks at
// once to withdraw it (refused: not final at 6), then mines a longer
// branch on a second node in which the deposit's coin is spent back to
// themselves, and joins it: a 3-block reorganisation replaces the deposit
// with its double spend, so it never comes back. The watcher journals the
// reversal; the attacker's balance is back where it was, nothing was
// withdrawn, nothing is owed, the house's equity is untouched. A second
// deposit that reaches its depth is then withdrawable.
func TestFinalityReorgDoubleSpend(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := newFinalityEnv(t)
	other := e.fork(ctx)
	d := e.watcher(2)
	e.step(d)
	avail0, held0, owed0, equity0 := e.books()

	deposit, err := e.node.SendTo(ctx, map[string]btcutil.Amount{e.addr: 30_000_000})
	if err != nil {
		t.Fatal(err)
	}
	e.mine(ctx, d, 1)
	if a, _, _, _ := e.books(); a != avail0 {
		t.Fatalf("credited at 1 confirmation: %d", a)
	}
	e.mine(ctx, d, 1)
	if a, _, _, _ := e.books(); a != avail0+30_000_000 {
		t.Fatalf("available at 2 confirmations = %d; want %d", a, avail0+30_000_000)
	}
	op := depositOf(t, e.book, deposit)
	// The attacker asks at once for the coins: refused, nothing held.
	w := e.withdraw(30_000_000)
	if w.Status != withdraw.StatusRejected || !strings.Contains(w.Reason, "deposit "+op.String()) || !strings.Contains(w.Reason, "2 of the 6 confirmations") {
		t.Fatalf("withdrawal at 2 confirmations = %s %q", w.Status, w.Reason)
	}
	e.mine(ctx, d, 1)
	if w := e.withdraw(10_000_000); w.Status != withdraw.StatusRejected || !strings.Contains(w.Reason, "3 of the 6") {
		t.Fatalf("withdrawal at 3 confirmations = %s %q", w.Status, w.Reason)
	}
	if _, h, _, _ := e.books(); h != held0 {
		t.Fatalf("refused withdrawals hold %d", h-held0)
	}

	// The other branch: the deposit's coin spent back to the attacker,
	// five blocks against three.
	ds, err := e.node.DoubleSpend(ctx, deposit, other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Generate(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if err := other.Connect(ctx, e.node); err != nil {
		t.Fatal(err)
	}
	if err := regtest.WaitSynced(ctx, e.node, other); err != nil {
		t.Fatal(err)
	}
	e.step(d)
	e.inChain(ds, true)
	e.inChain(deposit, false)
	var reversal *core.ReverseDeposits
	if err := e.core.Journal().Scan(1, func(en journal.Entry) error {
		if core.Kind(en.Kind) == core.KindReverseDeposits {
			c, err := core.DecodeCommand(en.Kind, en.Payload)
			if err != nil {
				return err
			}
			r := c.(core.ReverseDeposits)
			reversal = &r
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if reversal == nil || len(reversal.Outpoints) != 1 || reversal.Outpoints[0] != op {
		t.Fatalf("reversal journaled: %+v; want one of %s", reversal, op)
	}
	a, h, owed, equity := e.books()
	if a != avail0 || h != held0 || owed != owed0 || equity != equity0 {
		t.Fatalf("after the reorganisation: available %d held %d owed %d equity %d; before the deposit %d %d %d %d", a, h, owed, equity, avail0, held0, owed0, equity0)
	}
	e.core.Read(func(s *core.State) {
		if dep, _ := s.Custody.Deposit(op); dep.State != custody.DepositReversed {
			t.Errorf("deposit state %v; want reversed", dep.State)
		}
		for _, w := range s.Withdraw.Withdrawals(1) {
			if w.Status != withdraw.StatusRejected {
				t.Errorf("withdrawal %s is %s: something left", w.ID, w.Status)
			}
		}
		if err := s.CheckInvariants(); err != nil {
			t.Error(err)
		}
	})
	// It never comes back: its input is spent on the best chain, so no
	// block can hold it (btcd may keep it in its mempool, where it stays
	// unminable), and more blocks credit nothing.
	e.mine(ctx, d, 6)
	e.inChain(deposit, false)
	if a, _, _, _ := e.books(); a != avail0 {
		t.Fatalf("available %d after more blocks; want %d", a, avail0)
	}

	// Deposits of BTC were halted by the reversal; two operators lift.
	for _, cmd := range e.team.Approved(core.KindLiftHalt, core.LiftHaltPayload{Switch: controls.Switch{Asset: btcAsset, Service: controls.Deposit}}, "aiko", "kenji", people.RoleApprover, "reorganisation investigated", time.Now()) {
		if o, err := e.core.Submit(ctx, time.Now(), cmd); err != nil || o.Err != nil {
			t.Fatal(err, o.Err)
		}
	}
	second, err := e.node.SendTo(ctx, map[string]btcutil.Amount{e.addr: 20_000_000})
	if err != nil {
		t.Fatal(err)
	}
	e.mine(ctx, d, 2)
	if a, _, _, _ := e.books(); a != avail0+20_000_000 {
		t.Fatalf("second deposit not credited at 2 confirmations: %d", a)
	}
	if w := e.withdraw(20_000_000); w.Status != withdraw.StatusRejected || !strings.Contains(w.Reason, "2 of the 6") {
		t.Fatalf("second deposit withdrawn at 2 confirmations: %s %q", w.Status, w.Reason)
	}
	e.mine(ctx, d, 4)
	e.core.Read(func(s *core.State) {
		dep, _ := s.Custody.Deposit(depositOf(t, e.book, second))
		if !dep.Final || dep.Confirmations(s.Checkpoints[btcAsset].Height) != 6 {
			t.Fatalf("second deposit at the journaled tip: %+v", dep)
		}
	})
	if w := e.withdraw(20_000_000); w.Status != withdraw.StatusQueued {
		t.Fatalf("final deposit's withdrawal = %s %q", w.Status, w.Reason)
	}
	if a, h, _, equity := e.books(); a != avail0 || h != held0 || equity != equity0 {
		t.Fatalf("after the withdrawal was held: available %d held %d equity %d", a, h, equity)
	}
}

// depositOf returns the outpoint of tx that pays one of the book's
// addresses.
func depositOf(t *testing.T, b *wallet.Book, tx *wire.MsgTx) custody.Outpoint {
	t.Helper()
	for i, o := range tx.TxOut {
		if _, _, ok := b.Lookup(o.PkScript); ok {
			return custody.Outpoint{TxID: tx.TxHash(), Vout: uint32(i)}
		}
	}
	t.Fatalf("transaction %s pays none of our addresses", tx.TxHash())
	return custody.Outpoint{}
}
