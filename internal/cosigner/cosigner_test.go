package cosigner

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/alert"
	"kinko/internal/chain/eth"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/journal"
	"kinko/internal/ledger"
	"kinko/internal/operators"
	"kinko/internal/people"
	"kinko/internal/wallet"
	"kinko/internal/withdraw"
)

var (
	regnet = &chaincfg.RegressionNetParams
	t0     = time.Date(2026, 1, 26, 0, 0, 0, 0, time.UTC)
	creds  = people.Credentials{PasswordHash: strings.Repeat("h", 30), TOTPSealed: strings.Repeat("s", 30)}
)

type key struct {
	acct *hdkeychain.ExtendedKey
	fp   [4]byte
}

// world is a core with a hot wallet and customers, the raw journal the
// co-signer reads, and the keys of the hot wallet.
type world struct {
	t      *testing.T
	c      *core.Core
	hot    *wallet.Descriptor
	cold   *wallet.Descriptor // pinned on the co-signer's host
	thief  *wallet.Descriptor // registered in the journal as hot, never pinned
	keys   []key              // hot signer, co-signer, backup
	cust   map[ledger.OwnerID]ed25519.PrivateKey
	fed    uint64
	clock  time.Time
	cs     *Cosigner
	dir    string // the co-signer's state directory
	pol    *Policy
	set    *wallet.Set
	coins  byte // fake coins spent so far, so every PSBT is its own
	alerts []alert.Alert
	team   *operators.Team
	// ethKey and ethNode are the co-signer's on Ethereum (eth_test.go).
	ethKey  *ecdsa.PrivateKey
	ethNode *eth.Client
}

func (w *world) submit(at time.Time, cmd core.Command) core.Outcome {
	w.t.Helper()
	o, err := w.c.Submit(context.Background(), at, cmd)
	if err != nil {
		w.t.Fatal(err)
	}
	return o
}

func descriptorOf(seeds ...byte) (*wallet.Descriptor, []key) {
	d := &wallet.Descriptor{M: 2, Net: regnet}
	var ks []key
	for _, s := range seeds {
		m, _ := hdkeychain.NewMaster(bytes.Repeat([]byte{s}, 32), regnet)
		k, acct, _ := wallet.AccountKey(m, regnet, 0)
		d.Keys = append(d.Keys, k)
		ks = append(ks, key{acct, k.Fingerprint})
	}
	return d, ks
}

// testPolicy is the policy of the tests: 1.5 BTC an hour leaving, fees
// included; 1 BTC a customer; fees 50,000 a transaction and 100,000 an
// hour; 10 transactions an hour, 20 a day.
func testPolicy(cool string, hot, cold *wallet.Descriptor) string {
	return fmt.Sprintf(`{"cooldown":%q,
  "wallets":[{"name":"hot","kind":"hot-customer","asset":"BTC","descriptor":%q},{"name":"cold","kind":"cold-customer","asset":"BTC","descriptor":%q}],
  "limits":{"BTC":{"per_customer_hour":100000000,"per_customer_day":200000000,"per_asset_hour":150000000,"per_asset_day":300000000,
    "fee_max":50000,"fee_hour":100000,"fee_day":200000,"tx_hour":10,"tx_day":20,"yen_per_coin":15000000,"decimals":8}},
  "all_assets":{"yen_hour":30000000,"yen_day":60000000,"tx_hour":10,"tx_day":20}}`, cool, hot.String(), cold.String())
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, cust: map[ledger.OwnerID]ed25519.PrivateKey{}, clock: t0, dir: t.TempDir()}
	c, err := core.Open(context.Background(), core.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w.c = c
	w.hot, w.keys = descriptorOf(4, 5, 6)
	w.cold, _ = descriptorOf(7, 8, 9)
	// The thief's wallet holds the co-signer's public key beside two of
	// the thief's own: the journal calls it a hot customer wallet.
	w.thief, _ = descriptorOf(0xA, 0xB)
	w.thief.Keys = append(w.thief.Keys, w.hot.Keys[1])
	hotOwner := ledger.OwnerHouseMin + 101
	w.submit(t0, core.CreateAssets{Assets: []ledger.Asset{{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}})
	w.team = operators.Crew("cosigner test")
	for _, cmd := range w.team.Bootstrap(t0) {
		w.submit(t0, cmd)
	}
	// The core's limits, explicit and wider than the co-signer's own: these
	// tests are about the co-signer's (the core's defaults would send 0.6
	// BTC to two operators).
	two := func(v uint64) map[string]withdraw.Amount {
		return map[string]withdraw.Amount{"BTC": withdraw.AmountOf(v)}
	}
	rules := withdraw.Rules{CoolDownSeconds: withdraw.DefaultCoolDown,
		PerWithdrawalMax: two(2_0000_0000), PerCustomerDay: two(4_0000_0000), PerAssetHour: two(20_0000_0000), ApprovalAbove: two(2_0000_0000)}
	for _, cmd := range w.team.Approved(core.KindSetWithdrawalRulesRequest, core.SetWithdrawalRulesPayload{Rules: rules}, "aiko", "ren", people.RoleAdmin, "test rules", t0) {
		if o := w.submit(t0, cmd); o.Err != nil {
			t.Fatal(o.Err)
		}
	}
	// Both wallets are approved by two admins: the journal is evidence,
	// never what the co-signer takes for ours.
	for _, cmd := range w.team.RegisterWallets(t0, custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: 2, Descriptor: w.hot.String(), Owner: hotOwner},
		custody.Wallet{ID: 9, Kind: custody.HotCustomer, Asset: 2, Descriptor: w.thief.String(), Owner: ledger.OwnerHouseMin + 109}) {
		if o := w.submit(t0, cmd); o.Err != nil {
			t.Fatal(o.Err)
		}
	}
	for i := ledger.OwnerID(1); i <= 3; i++ {
		w.customer(i, t0)
	}
	pol, err := ParsePolicy([]byte(testPolicy("24h", w.hot, w.cold)), regnet)
	if err != nil {
		t.Fatal(err)
	}
	w.pol = pol
	w.open()
	w.set, _ = wallet.NewSet([]wallet.Named{{ID: 2, Kind: "hot-customer", Descriptor: w.hot.String()}}, w.hot)
	return w
}

// customer signs up a verified customer with 2 BTC, an intent key and a
// whitelisted address, at entry time at.
func (w *world) customer(i ledger.OwnerID, at time.Time) {
	hotAcct := ledger.AccountKey{Owner: ledger.OwnerHouseMin + 101, Asset: 2, Kind: ledger.KindWallet}
	w.submit(at, core.SignUp{Customer: people.Customer{ID: i, Email: string(rune('a'+i)) + "@x.jp", Name: "c", Creds: creds}})
	w.submit(at, core.SetKYC{Customer: i, KYC: people.KYCVerified, Actor: "aiko", Reason: "ok"})
	w.submit(at, core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Lo: uint64(i)}, Debit: hotAcct, Credit: ledger.AccountKey{Owner: i, Asset: 2, Kind: ledger.KindAvailable}, Amount: ledger.AmountOf(2_0000_0000)}}})
	pub, priv, _ := ed25519.GenerateKey(nil)
	w.cust[i] = priv
	w.submit(at, core.RegisterIntentKey{Customer: i, PubKey: [32]byte(pub)})
	w.submit(at, core.WhitelistAddress{Customer: i, Asset: "BTC", Address: payee(i)})
}

// open (re)opens the co-signer on its state directory, as a restart.
func (w *world) open() {
	w.t.Helper()
	cs, err := Open(Config{Net: regnet, Account: w.keys[1].acct, FP: w.keys[1].fp, Policy: w.pol, Now: func() time.Time { return w.clock },
		StateDir: w.dir, NoSync: true, Alert: func(a alert.Alert) { w.alerts = append(w.alerts, a) }, EthKey: w.ethKey, EthNode: w.ethNode})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { cs.Close() })
	w.cs = cs
	w.fed = cs.Seq()
}

// restart closes the co-signer and opens it again on its state.
func (w *world) restart() {
	w.t.Helper()
	if err := w.cs.Close(); err != nil {
		w.t.Fatal(err)
	}
	w.open()
}

// payee is customer i's own external address.
func payee(i ledger.OwnerID) string {
	a, _ := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{byte(i)}, 20), regnet)
	return a.EncodeAddress()
}

// feed gives the co-signer every journal entry it has not read, at its
// current clock.
func (w *world) feed() error {
	var err error
	w.c.Journal().Scan(w.fed+1, func(e journal.Entry) error {
		if err = w.cs.Ingest(e.Encode()); err != nil {
			return err
		}
		w.fed = e.Seq
		return nil
	})
	return err
}

// withdraw journals a customer's signed withdrawal at entry time at.
func (w *world) withdraw(cust ledger.OwnerID, id string, amount uint64, at time.Time) {
	w.t.Helper()
	in := withdraw.Intent{RequestID: id, Asset: "BTC", Address: payee(cust), Amount: withdraw.AmountOf(amount), Expiry: at.Add(48 * time.Hour).Unix()}
	sig, _ := in.Sign(w.cust[cust])
	o := w.submit(at, core.RequestWithdrawal{Customer: cust, Intent: in, PubKey: [32]byte(w.cust[cust].Public().(ed25519.PublicKey)), Sig: sig})
	if o.Err != nil || o.Value.(withdraw.Withdrawal).Status != withdraw.StatusQueued {
		w.t.Fatalf("withdrawal %s: %v %+v", id, o.Err, o.Value)
	}
}

// psbtPaying builds the hot signer's transaction paying outputs, signed by
// the hot signer's key, from a hot-wallet coin of 5 BTC of its own.
func (w *world) psbtPaying(outs ...*wire.TxOut) *psbt.Packet {
	return w.psbtFee(0, outs...)
}

// psbtFee is psbtPaying with the fee raised to fee (0: the builder's, at
// 10 sat/vB) by taking it from the change.
func (w *world) psbtFee(fee int64, outs ...*wire.TxOut) *psbt.Packet {
	w.t.Helper()
	w.coins++
	u := wallet.UTXO{OutPoint: wire.OutPoint{Hash: chainhash.Hash{w.coins, 7}, Index: uint32(len(outs))}, Value: 5_0000_0000, Wallet: w.set.Wallets[0], Branch: 0, Index: 0}
	// Whoever holds the hot signer's host is not held to Build's dust
	// rule: an output below its threshold is built at the threshold, then
	// put back to its value with the difference given to the change, so
	// the transaction pays exactly outs at the builder's fee.
	built := make([]*wire.TxOut, len(outs))
	var lifted int64
	for i, o := range outs {
		built[i] = o
		if d := wallet.Dust(o.PkScript); o.Value < d {
			built[i], lifted = wire.NewTxOut(d, o.PkScript), lifted+d-o.Value
		}
	}
	p, err := wallet.Build([]wallet.UTXO{u}, built, w.set.Wallets[0], uint32(w.coins), 10)
	if err != nil {
		w.t.Fatal(err)
	}
	if lifted > 0 {
		for i, o := range outs {
			p.UnsignedTx.TxOut[i].Value = o.Value
		}
		p.UnsignedTx.TxOut[len(p.UnsignedTx.TxOut)-1].Value += lifted
	}
	if fee > 0 {
		var out int64
		for _, o := range p.UnsignedTx.TxOut {
			out += o.Value
		}
		change := p.UnsignedTx.TxOut[len(p.UnsignedTx.TxOut)-1]
		change.Value -= fee - (u.Value - out)
	}
	if _, err := w.set.Sign(p, w.keys[0].acct, w.keys[0].fp); err != nil {
		w.t.Fatal(err)
	}
	return p
}

// toWallet is an output paying d's receive address i.
func toWallet(d *wallet.Descriptor, i uint32, amount int64) *wire.TxOut {
	pk, _ := d.PkScript(0, i)
	return wire.NewTxOut(amount, pk)
}

func pay(cust ledger.OwnerID, amount int64) *wire.TxOut {
	a, _ := btcutil.DecodeAddress(payee(cust), regnet)
	pk, _ := txscript.PayToAddrScript(a)
	return wire.NewTxOut(amount, pk)
}

func TestCosignerSignsWhatCustomersAsked(t *testing.T) {
	w := newWorld(t)
	w.withdraw(1, "w1", 30_000_000, t0.Add(25*time.Hour))
	if err := w.feed(); err != nil {
		t.Fatal(err)
	}
	// Attack 2: the journal says the key and address are 25 hours old,
	// but the co-signer first saw them a minute ago.
	w.clock = t0.Add(time.Minute)
	if _, err := w.cs.Sign(w.psbtPaying(pay(1, 30_000_000))); !errors.Is(err, ErrCooling) {
		t.Fatalf("fresh key by the co-signer's clock = %v; want ErrCooling", err)
	}
	// A day later by its own clock it signs, and the transaction is valid.
	w.clock = t0.Add(25 * time.Hour)
	p := w.psbtPaying(pay(1, 30_000_000))
	unsigned, _ := wallet.Encode(p)
	paid, err := w.cs.Sign(p)
	if err != nil || len(paid) != 1 || paid[0] != "1:w1" {
		t.Fatalf("Sign = %v, %v", paid, err)
	}
	signed, _ := wallet.Encode(p)
	verifies(t, p)
	p, _ = wallet.Read(strings.NewReader(signed))
	// Asked again for exactly the same transaction (a crash lost the
	// answer): the same signatures.
	again, _ := wallet.Read(strings.NewReader(unsigned))
	if paid, err := w.cs.Sign(again); err != nil || len(paid) != 1 {
		t.Fatalf("the same transaction again = %v, %v", paid, err)
	}
	if !sameSigs(p, again) {
		t.Fatal("the same transaction asked again got other signatures")
	}
	// Attack 5: another transaction paying the same withdrawal.
	if _, err := w.cs.Sign(w.psbtPaying(pay(1, 30_000_000))); !errors.Is(err, ErrAlreadySigned) {
		t.Fatalf("paying a signed withdrawal again = %v", err)
	}
}

func verifies(t *testing.T, p *psbt.Packet) {
	t.Helper()
	tx, err := wallet.Finalize(p)
	if err != nil {
		t.Fatal(err)
	}
	prev := p.Inputs[0].WitnessUtxo
	fetcher := txscript.NewCannedPrevOutputFetcher(prev.PkScript, prev.Value)
	vm, _ := txscript.NewEngine(prev.PkScript, tx, 0, txscript.StandardVerifyFlags, nil, txscript.NewTxSigHashes(tx, fetcher), prev.Value, fetcher)
	if err := vm.Execute(); err != nil {
		t.Fatalf("co-signed transaction does not verify: %v", err)
	}
}

func sameSigs(a, b *psbt.Packet) bool {
	for i := range a.Inputs {
		if len(a.Inputs[i].PartialSigs) != len(b.Inputs[i].PartialSigs) {
			return false
		}
		for j, s := range a.Inputs[i].PartialSigs {
			if !bytes.Equal(s.Signature, b.Inputs[i].PartialSigs[j].Signature) {
				return false
			}
		}
	}
	return true
}

func TestCosignerRefusesTamperedTransactions(t *testing.T) {
	w := newWorld(t)
	w.withdraw(1, "w1", 30_000_000, t0.Add(25*time.Hour))
	w.feed()
	w.clock = t0.Add(25 * time.Hour)
	thief, _ := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{0xEE}, 20), regnet)
	thiefPk, _ := txscript.PayToAddrScript(thief)
	cases := []struct {
		name string
		outs []*wire.TxOut
		want error
	}{
		{"extra output", []*wire.TxOut{pay(1, 30_000_000), wire.NewTxOut(10_000_000, thiefPk)}, ErrUnexplained},
		{"changed amount", []*wire.TxOut{pay(1, 31_000_000)}, ErrUnexplained},
		{"changed address", []*wire.TxOut{wire.NewTxOut(30_000_000, thiefPk)}, ErrUnexplained},
		// The journal registers the thief's wallet as a hot customer
		// wallet: not pinned here, so not ours.
		{"to a wallet only the journal calls ours", []*wire.TxOut{pay(1, 30_000_000), toWallet(w.thief, 0, 50_000_000)}, ErrUnexplained},
	}
	for _, c := range cases {
		if _, err := w.cs.Sign(w.psbtPaying(c.outs...)); !errors.Is(err, c.want) {
			t.Errorf("%s = %v; want %v", c.name, err, c.want)
		}
	}
	// A huge fee: the change is cut and the rest goes to miners.
	p := w.psbtPaying(pay(1, 30_000_000))
	p.UnsignedTx.TxOut = p.UnsignedTx.TxOut[:1]
	p.Outputs = p.Outputs[:1]
	if _, err := w.cs.Sign(p); !errors.Is(err, ErrFee) {
		t.Fatalf("huge fee = %v", err)
	}
	// Any sighash type but ALL would let someone change what was signed.
	for _, ht := range []txscript.SigHashType{txscript.SigHashNone, txscript.SigHashSingle, txscript.SigHashAll | txscript.SigHashAnyOneCanPay} {
		p := w.psbtPaying(pay(1, 30_000_000))
		p.Inputs[0].SighashType = ht
		if _, err := w.cs.Sign(p); !errors.Is(err, ErrSighash) {
			t.Errorf("sighash %#x = %v; want ErrSighash", uint32(ht), err)
		}
	}
	// An input of the journal's thief wallet (it holds the co-signer's
	// public key) is not an input of a pinned wallet.
	thiefSet, _ := wallet.NewSet([]wallet.Named{{ID: 9, Kind: "hot-customer", Descriptor: w.thief.String()}}, w.thief)
	u := wallet.UTXO{OutPoint: wire.OutPoint{Hash: chainhash.Hash{0xEE}}, Value: 1_0000_0000, Wallet: thiefSet.Wallets[0]}
	tp, _ := wallet.Build([]wallet.UTXO{u}, []*wire.TxOut{wire.NewTxOut(90_000_000, thiefPk)}, thiefSet.Wallets[0], 0, 10)
	if _, err := w.cs.Sign(tp); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("input of an unpinned wallet = %v; want ErrNotOurs", err)
	}
	// The journal's disagreement with the pinned wallets raised an alert.
	if !w.alerted("wallet-disagrees:9") || len(w.cs.Disagreements()) != 1 {
		t.Fatalf("alerts %+v, disagreements %v", w.alerts, w.cs.Disagreements())
	}
}

func (w *world) alerted(key string) bool {
	for _, a := range w.alerts {
		if a.Key == key && a.Severity == alert.Critical {
			return true
		}
	}
	return false
}

// TestCosignerForgedEntries: an attacker with write access to the core
// appends a withdrawal with a wrong customer signature, and alters an entry
// the co-signer has read.
func TestCosignerForgedEntries(t *testing.T) {
	w := newWorld(t)
	w.feed()
	// Attack 1: a forged request, written straight to the journal (the
	// core's checks bypassed), continuing the chain properly.
	seq, prev, _ := w.c.Journal().Head()
	in := withdraw.Intent{RequestID: "forged", Asset: "BTC", Address: payee(2), Amount: withdraw.AmountOf(50_000_000), Expiry: t0.Add(72 * time.Hour).Unix()}
	_, thiefKey, _ := ed25519.GenerateKey(nil)
	sig, _ := in.Sign(thiefKey)
	forged := core.RequestWithdrawal{Customer: 2, Intent: in, PubKey: [32]byte(w.cust[2].Public().(ed25519.PublicKey)), Sig: sig}
	payload := forged.AppendPayload(nil)
	buf := make([]byte, journal.EncodedSize(len(payload)))
	e := journal.Seal(buf, prev, seq+1, t0.Add(30*time.Hour).UnixNano(), uint16(forged.Kind()), payload)
	if err := w.cs.Ingest(e.Encode()); err != nil {
		t.Fatal(err)
	}
	w.clock = t0.Add(31 * time.Hour)
	if _, err := w.cs.Sign(w.psbtPaying(pay(2, 50_000_000))); !errors.Is(err, ErrUnexplained) {
		t.Fatalf("forged withdrawal = %v; want ErrUnexplained", err)
	}
	// Attack 6: an entry altered after the co-signer read it arrives
	// again, or the next entry does not link: signing stops for good,
	// with a critical alert, also after a restart.
	raw := e.Encode()
	raw[30] ^= 1
	if err := w.cs.Ingest(raw); !errors.Is(err, ErrChainBroken) {
		t.Fatalf("altered entry = %v", err)
	}
	if _, err := w.cs.Sign(w.psbtPaying(pay(1, 1000))); !errors.Is(err, ErrChainBroken) {
		t.Fatalf("sign after a break = %v", err)
	}
	if !w.alerted("cosigner-halt:*") {
		t.Fatalf("no critical alert: %+v", w.alerts)
	}
	w.restart()
	if _, err := w.cs.Sign(w.psbtPaying(pay(1, 1000))); !errors.Is(err, ErrHalted) {
		t.Fatalf("sign after a break and a restart = %v; want ErrHalted", err)
	}
}

// TestCosignerVelocity: withdrawals that each look valid, from many
// customers; the co-signer stops at its hourly limit of 1.5 BTC leaving,
// fees included. That is the most an attacker holding every online system
// takes per hour.
func TestCosignerVelocity(t *testing.T) {
	w := newWorld(t)
	at := t0.Add(25 * time.Hour)
	w.withdraw(1, "a", 60_000_000, at)
	w.withdraw(2, "b", 60_000_000, at)
	w.withdraw(3, "c", 60_000_000, at)
	w.withdraw(1, "d", 50_000_000, at)
	w.feed()
	w.clock = at
	var total uint64
	for _, tc := range []struct {
		cust ledger.OwnerID
		amt  int64
		ok   bool
	}{{1, 60_000_000, true}, {2, 60_000_000, true}, {3, 60_000_000, false}, {1, 50_000_000, false}} {
		p := w.psbtPaying(pay(tc.cust, tc.amt))
		_, err := w.cs.Sign(p)
		if tc.ok != (err == nil) {
			t.Fatalf("customer %d %d: %v", tc.cust, tc.amt, err)
		}
		if err == nil {
			total += uint64(tc.amt) + fee(p)
		} else if !errors.Is(err, ErrVelocity) {
			t.Fatalf("refusal = %v; want ErrVelocity", err)
		}
	}
	if total > 150_000_000 {
		t.Fatalf("signed %d leaving in an hour, fees included; limit 150,000,000", total)
	}
	// A restart forgets nothing: still refused.
	w.restart()
	if _, err := w.cs.Sign(w.psbtPaying(pay(3, 60_000_000))); !errors.Is(err, ErrVelocity) {
		t.Fatalf("after a restart = %v; want ErrVelocity", err)
	}
	// An hour later by its clock, the limit has room again.
	w.clock = at.Add(61 * time.Minute)
	if _, err := w.cs.Sign(w.psbtPaying(pay(3, 60_000_000))); err != nil {
		t.Fatalf("next hour = %v", err)
	}
}

func fee(p *psbt.Packet) uint64 {
	var in, out int64
	for _, i := range p.Inputs {
		in += i.WitnessUtxo.Value
	}
	for _, o := range p.UnsignedTx.TxOut {
		out += o.Value
	}
	return uint64(in - out)
}

// TestCosignerCountsEverythingThatLeaves: an attacker holding the core and
// the hot signer asks for transactions that pay only ourselves (our pinned
// cold wallet, change back to the hot wallet), each with the largest fee
// the policy allows. Fees and payments to our other wallets count: the
// fee budget, the transaction count and the asset's limit stop them.
func TestCosignerCountsEverythingThatLeaves(t *testing.T) {
	w := newWorld(t)
	w.feed()
	w.clock = t0.Add(time.Hour)
	var fees, signed uint64
	for i := 0; i < 50; i++ {
		p := w.psbtFee(50_000, toWallet(w.cold, uint32(i), 1_000_000))
		if _, err := w.cs.Sign(p); err != nil {
			if !errors.Is(err, ErrVelocity) {
				t.Fatalf("self-payment %d = %v", i, err)
			}
			continue
		}
		signed++
		fees += fee(p)
	}
	if fees > 100_000 || signed != 2 {
		t.Fatalf("signed %d self-payments with %d in fees; the fee budget is 100,000 an hour", signed, fees)
	}
	// Small fees: the transaction count stops them at 10 an hour.
	w.clock = w.clock.Add(2 * time.Hour)
	signed = 0
	for i := 0; i < 50; i++ {
		if _, err := w.cs.Sign(w.psbtPaying(toWallet(w.cold, uint32(100+i), 1_000_000))); err == nil {
			signed++
		}
	}
	if signed != 10 {
		t.Fatalf("signed %d transactions in an hour; limit 10", signed)
	}
	// A sweep to cold above the asset's hourly limit is refused too.
	w.clock = w.clock.Add(2 * time.Hour)
	if _, err := w.cs.Sign(w.psbtPaying(toWallet(w.cold, 200, 150_000_000))); !errors.Is(err, ErrVelocity) {
		t.Fatalf("sweep above the limit = %v; want ErrVelocity", err)
	}
	// The day's transaction count: 20, whatever the hours.
	for h := 0; h < 5; h++ {
		w.clock = w.clock.Add(time.Hour + time.Minute)
		for i := 0; i < 10; i++ {
			w.cs.Sign(w.psbtPaying(toWallet(w.cold, uint32(300+10*h+i), 1_000)))
		}
	}
	if st := w.cs.Status(); st.Day["BTC"].Txs != 20 {
		t.Fatalf("day's transactions %d; limit 20", st.Day["BTC"].Txs)
	}
}

// TestCosignerRemembers: a restart neither restarts the cool-downs nor
// forgets what was signed nor lifts a halt; a registration that did not
// take effect starts no cool-down.
func TestCosignerRemembers(t *testing.T) {
	w := newWorld(t)
	w.withdraw(1, "w1", 30_000_000, t0.Add(25*time.Hour))
	// A key registered for a customer who does not exist yet: refused by
	// apply, it must not start a cool-down.
	pub9, priv9, _ := ed25519.GenerateKey(nil)
	w.submit(t0, core.RegisterIntentKey{Customer: 9, PubKey: [32]byte(pub9)})
	w.feed()
	w.clock = t0.Add(25 * time.Hour)
	p := w.psbtPaying(pay(1, 30_000_000))
	unsigned, _ := wallet.Encode(p)
	if _, err := w.cs.Sign(p); err != nil {
		t.Fatal(err)
	}
	w.restart()
	// The same transaction: the same signatures; another one for w1:
	// refused.
	again, _ := wallet.Read(strings.NewReader(unsigned))
	if _, err := w.cs.Sign(again); err != nil || !sameSigs(p, again) {
		t.Fatalf("same transaction after a restart = %v", err)
	}
	if _, err := w.cs.Sign(w.psbtPaying(pay(1, 30_000_000))); !errors.Is(err, ErrAlreadySigned) {
		t.Fatalf("w1 again after a restart = %v", err)
	}
	// The cool-downs did not restart: a new withdrawal of customer 2
	// signs at once.
	w.withdraw(2, "w2", 10_000_000, w.clock)
	w.feed()
	if _, err := w.cs.Sign(w.psbtPaying(pay(2, 10_000_000))); err != nil {
		t.Fatalf("after a restart = %v", err)
	}
	// Customer 9 now exists and registers the same key for real at
	// t0+25h by the co-signer's clock; its withdrawal may sign from t0+49h
	// (a cool-down started by the refused registration at t0 would have
	// let it sign at t0+24h).
	w.customerWithKey(9, priv9, w.clock)
	w.withdraw(9, "w9", 10_000_000, t0.Add(50*time.Hour))
	w.feed()
	w.clock = t0.Add(48 * time.Hour)
	if _, err := w.cs.Sign(w.psbtPaying(pay(9, 10_000_000))); !errors.Is(err, ErrCooling) {
		t.Fatalf("a key whose first registration was refused = %v; want ErrCooling", err)
	}
	w.clock = t0.Add(49*time.Hour + time.Minute)
	if _, err := w.cs.Sign(w.psbtPaying(pay(9, 10_000_000))); err != nil {
		t.Fatalf("after its real cool-down = %v", err)
	}
	// A halt holds over a restart until lifted on the host.
	if err := w.cs.Halt("BTC", "watcher", "unexplained outflow"); err != nil {
		t.Fatal(err)
	}
	w.restart()
	w.withdraw(3, "w3", 10_000_000, t0.Add(50*time.Hour))
	w.feed()
	if _, err := w.cs.Sign(w.psbtPaying(pay(3, 10_000_000))); !errors.Is(err, ErrHalted) {
		t.Fatalf("after a halt and a restart = %v; want ErrHalted", err)
	}
	if err := w.cs.Lift("BTC", "aiko", "outflow explained"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.cs.Sign(w.psbtPaying(pay(3, 10_000_000))); err != nil {
		t.Fatalf("after the lift = %v", err)
	}
}

// customerWithKey is customer with the given intent key.
func (w *world) customerWithKey(i ledger.OwnerID, priv ed25519.PrivateKey, at time.Time) {
	hotAcct := ledger.AccountKey{Owner: ledger.OwnerHouseMin + 101, Asset: 2, Kind: ledger.KindWallet}
	w.submit(at, core.SignUp{Customer: people.Customer{ID: i, Email: "z@x.jp", Name: "c", Creds: creds}})
	w.submit(at, core.SetKYC{Customer: i, KYC: people.KYCVerified, Actor: "aiko", Reason: "ok"})
	w.submit(at, core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Lo: uint64(i)}, Debit: hotAcct, Credit: ledger.AccountKey{Owner: i, Asset: 2, Kind: ledger.KindAvailable}, Amount: ledger.AmountOf(2_0000_0000)}}})
	w.cust[i] = priv
	if o := w.submit(at, core.RegisterIntentKey{Customer: i, PubKey: [32]byte(priv.Public().(ed25519.PublicKey))}); o.Err != nil {
		w.t.Fatal(o.Err)
	}
	w.submit(at, core.WhitelistAddress{Customer: i, Asset: "BTC", Address: payee(i)})
}

func TestParsePolicy(t *testing.T) {
	hot, _ := descriptorOf(4, 5, 6)
	cold, _ := descriptorOf(7, 8, 9)
	good := testPolicy("24h", hot, cold)
	if _, err := ParsePolicy([]byte(good), regnet); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, from, to string }{
		{"no cool-down", `"cooldown":"24h"`, `"cooldown":"0s"`},
		{"unknown field", `"cooldown":"24h"`, `"cooldown":"24h","per_asset_hour":{}`},
		{"zero limit", `"fee_hour":100000`, `"fee_hour":0`},
		{"day below the hour", `"tx_day":20,"yen`, `"tx_day":5,"yen`},
		{"bad descriptor", hot.String()[:20], "wsh(nonsense"},
		{"bad kind", `"kind":"cold-customer"`, `"kind":"warm"`},
		{"no hot wallet", `"kind":"hot-customer"`, `"kind":"hot-house"`},
		{"no all-asset limits", `"all_assets":{"yen_hour":30000000`, `"all_assets":{"yen_hour":0`},
	} {
		bad := strings.Replace(good, c.from, c.to, 1)
		if bad == good {
			t.Fatalf("%s: replacement did not apply", c.name)
		}
		if _, err := ParsePolicy([]byte(bad), regnet); !errors.Is(err, ErrPolicy) {
			t.Errorf("%s: ParsePolicy = %v; want ErrPolicy", c.name, err)
		}
	}
}
