package cosigner

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
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

	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/journal"
	"kinko/internal/ledger"
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
	t     *testing.T
	c     *core.Core
	hot   *wallet.Descriptor
	keys  []key // hot signer, co-signer, backup
	cust  map[ledger.OwnerID]ed25519.PrivateKey
	fed   uint64
	clock time.Time
	cs    *Cosigner
	set   *wallet.Set
}

func (w *world) submit(at time.Time, cmd core.Command) core.Outcome {
	w.t.Helper()
	o, err := w.c.Submit(context.Background(), at, cmd)
	if err != nil {
		w.t.Fatal(err)
	}
	return o
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, cust: map[ledger.OwnerID]ed25519.PrivateKey{}, clock: t0}
	c, err := core.Open(context.Background(), core.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w.c = c
	w.hot = &wallet.Descriptor{M: 2, Net: regnet}
	for _, s := range []byte{4, 5, 6} {
		m, _ := hdkeychain.NewMaster(bytes.Repeat([]byte{s}, 32), regnet)
		k, acct, _ := wallet.AccountKey(m, regnet, 0)
		w.hot.Keys = append(w.hot.Keys, k)
		w.keys = append(w.keys, key{acct, k.Fingerprint})
	}
	hotOwner := ledger.OwnerHouseMin + 101
	hotAcct := ledger.AccountKey{Owner: hotOwner, Asset: 2, Kind: ledger.KindWallet}
	w.submit(t0, core.CreateAssets{Assets: []ledger.Asset{{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}})
	w.submit(t0, core.CreateOperator{Operator: people.Operator{Name: "aiko", Roles: []people.Role{people.RoleAdmin}, Creds: creds}})
	w.submit(t0, core.RegisterWallet{Wallet: custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: 2, Descriptor: w.hot.String(), Owner: hotOwner}})
	for i := ledger.OwnerID(1); i <= 3; i++ {
		w.submit(t0, core.SignUp{Customer: people.Customer{ID: i, Email: string(rune('a'+i)) + "@x.jp", Name: "c", Creds: creds}})
		w.submit(t0, core.SetKYC{Customer: i, KYC: people.KYCVerified, Actor: "aiko", Reason: "ok"})
		w.submit(t0, core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Lo: uint64(i)}, Debit: hotAcct, Credit: ledger.AccountKey{Owner: i, Asset: 2, Kind: ledger.KindAvailable}, Amount: ledger.AmountOf(2_0000_0000)}}})
		pub, priv, _ := ed25519.GenerateKey(nil)
		w.cust[i] = priv
		w.submit(t0, core.RegisterIntentKey{Customer: i, PubKey: [32]byte(pub)})
		w.submit(t0, core.WhitelistAddress{Customer: i, Asset: "BTC", Address: payee(i)})
	}
	pol, err := ParsePolicy([]byte(`{"cooldown":"24h","per_customer_hour":{"BTC":100000000},"per_asset_hour":{"BTC":150000000},"fee_max":{"BTC":50000}}`))
	if err != nil {
		t.Fatal(err)
	}
	w.cs = New(regnet, w.keys[1].acct, w.keys[1].fp, pol, func() time.Time { return w.clock })
	w.set, _ = wallet.NewSet([]wallet.Named{{ID: 2, Kind: "hot-customer", Descriptor: w.hot.String()}}, w.hot)
	return w
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
	in := withdraw.Intent{RequestID: id, Asset: "BTC", Address: payee(cust), Amount: amount, Expiry: at.Add(48 * time.Hour).Unix()}
	sig, _ := in.Sign(w.cust[cust])
	o := w.submit(at, core.RequestWithdrawal{Customer: cust, Intent: in, PubKey: [32]byte(w.cust[cust].Public().(ed25519.PublicKey)), Sig: sig})
	if o.Err != nil || o.Value.(withdraw.Withdrawal).Status != withdraw.StatusQueued {
		w.t.Fatalf("withdrawal %s: %v %+v", id, o.Err, o.Value)
	}
}

// psbtPaying builds the hot signer's transaction paying outputs, signed by
// the hot signer's key, from a hot-wallet coin of 5 BTC.
func (w *world) psbtPaying(outs ...*wire.TxOut) *psbt.Packet {
	w.t.Helper()
	u := wallet.UTXO{OutPoint: wire.OutPoint{Hash: chainhash.Hash{byte(len(outs)), 7}, Index: uint32(len(outs))}, Value: 5_0000_0000, Wallet: w.set.Wallets[0], Branch: 0, Index: 0}
	p, err := wallet.Build([]wallet.UTXO{u}, outs, w.set.Wallets[0], 0, 10)
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.set.Sign(p, w.keys[0].acct, w.keys[0].fp); err != nil {
		w.t.Fatal(err)
	}
	return p
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
	paid, err := w.cs.Sign(p)
	if err != nil || len(paid) != 1 || paid[0] != "1:w1" {
		t.Fatalf("Sign = %v, %v", paid, err)
	}
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
	// Attack 5: the same PSBT again, or a new one paying the same
	// withdrawal.
	if _, err := w.cs.Sign(p); !errors.Is(err, ErrAlreadySigned) {
		t.Fatalf("replayed PSBT = %v", err)
	}
	if _, err := w.cs.Sign(w.psbtPaying(pay(1, 30_000_000), pay(1, 1))); !errors.Is(err, ErrAlreadySigned) && !errors.Is(err, ErrUnexplained) {
		t.Fatalf("paying a signed withdrawal again = %v", err)
	}
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
	in := withdraw.Intent{RequestID: "forged", Asset: "BTC", Address: payee(2), Amount: 50_000_000, Expiry: t0.Add(72 * time.Hour).Unix()}
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
	// again, or the next entry does not link: signing stops for good.
	raw := e.Encode()
	raw[30] ^= 1
	if err := w.cs.Ingest(raw); !errors.Is(err, ErrChainBroken) {
		t.Fatalf("altered entry = %v", err)
	}
	if _, err := w.cs.Sign(w.psbtPaying(pay(1, 1000))); !errors.Is(err, ErrChainBroken) {
		t.Fatalf("sign after a break = %v", err)
	}
}

// TestCosignerVelocity: withdrawals that each look valid, from many
// customers; the co-signer stops at its hourly limit of 1.5 BTC. That is the
// most an attacker holding every online system takes per hour.
func TestCosignerVelocity(t *testing.T) {
	w := newWorld(t)
	at := t0.Add(25 * time.Hour)
	w.withdraw(1, "a", 60_000_000, at)
	w.withdraw(2, "b", 60_000_000, at)
	w.withdraw(3, "c", 60_000_000, at)
	w.withdraw(1, "d", 50_000_000, at)
	w.feed()
	w.clock = at
	total := uint64(0)
	for _, tc := range []struct {
		cust ledger.OwnerID
		amt  int64
		ok   bool
	}{{1, 60_000_000, true}, {2, 60_000_000, true}, {3, 60_000_000, false}, {1, 50_000_000, false}} {
		_, err := w.cs.Sign(w.psbtPaying(pay(tc.cust, tc.amt)))
		if tc.ok != (err == nil) {
			t.Fatalf("customer %d %d: %v", tc.cust, tc.amt, err)
		}
		if err == nil {
			total += uint64(tc.amt)
		} else if !errors.Is(err, ErrVelocity) {
			t.Fatalf("refusal = %v; want ErrVelocity", err)
		}
	}
	if total > 150_000_000 {
		t.Fatalf("signed %d in an hour; limit 150,000,000", total)
	}
	// An hour later by its clock, the limit has room again.
	w.clock = at.Add(61 * time.Minute)
	if _, err := w.cs.Sign(w.psbtPaying(pay(3, 60_000_000))); err != nil {
		t.Fatalf("next hour = %v", err)
	}
}
