package watch

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/chain/btcchain"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/trace"
	"kinko/internal/wallet"
)

// keyed is a 2-of-3 descriptor from fixed seeds, with its account keys.
type keyed struct {
	d    *wallet.Descriptor
	acct []*hdkeychain.ExtendedKey
	fp   [][4]byte
}

func keyedDescriptor(t testing.TB, seeds ...byte) keyed {
	k := keyed{d: &wallet.Descriptor{M: 2, Net: regtest.Net}}
	for _, s := range seeds {
		m, _ := hdkeychain.NewMaster(bytes.Repeat([]byte{s}, 32), regtest.Net)
		key, a, err := wallet.AccountKey(m, regtest.Net, 0)
		if err != nil {
			t.Fatal(err)
		}
		k.d.Keys = append(k.d.Keys, key)
		k.acct = append(k.acct, a)
		k.fp = append(k.fp, key.Fingerprint)
	}
	return k
}

// spend signs with the first two keys a transaction spending one output
// of k (at branch 0, index idx) to outs.
func (k keyed) spend(t testing.TB, op wire.OutPoint, value int64, idx uint32, outs []*wire.TxOut) *wire.MsgTx {
	set, err := wallet.NewSet([]wallet.Named{{ID: 99, Kind: "cold-customer", Descriptor: k.d.String()}}, k.d)
	if err != nil {
		t.Fatal(err)
	}
	p, err := wallet.Build([]wallet.UTXO{{OutPoint: op, Value: value, Wallet: set.Wallets[0], Branch: 0, Index: idx}}, outs, nil, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := set.Sign(p, k.acct[i], k.fp[i]); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := wallet.Finalize(p)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func (k keyed) out(t testing.TB, idx uint32, value int64) *wire.TxOut {
	s, err := k.d.PkScript(0, idx)
	if err != nil {
		t.Fatal(err)
	}
	return wire.NewTxOut(value, s)
}

// TestTraceAndDeny: stolen coins go to the thief's address, then on to
// two more; tracing two hops from the theft finds all three; on the deny
// list, a deposit from one of them is held for review until an operator
// releases it, and a withdrawal to another is refused.
func TestTraceAndDeny(t *testing.T) {
	ctx := context.Background()
	e := newDepositEnv(t)
	cold := keyedDescriptor(t, 1, 2, 3) // the deposit wallet of newDepositEnv
	thief := keyedDescriptor(t, 0x31, 0x32, 0x33)
	if _, err := e.node.SendTo(ctx, map[string]btcutil.Amount{e.addr: 10_000_000}); err != nil {
		t.Fatal(err)
	}
	w, err := ForAsset(ctx, e.core, e.node.Chain(), regtest.Net, "BTC", DepositConfig{Confirmations: 1, StartHeight: regtest.SegwitHeight})
	if err != nil {
		t.Fatal(err)
	}
	e.step(w)
	e.node.Generate(ctx, 1)
	e.step(w)
	var u custody.UTXO
	e.core.Read(func(s *core.State) { u = s.Custody.UTXOs(1, custody.UTXOAvailable)[0] })
	_, tipBefore, _ := e.node.Client().BestBlock(ctx)
	// The theft, to thief/0; then thief/0 → thief/1 and thief/2.
	theft := cold.spend(t, wire.OutPoint{Hash: chainhash.Hash(u.Outpoint.TxID), Index: u.Outpoint.Vout}, int64(u.Amount), u.Index, []*wire.TxOut{thief.out(t, 0, 9_990_000)})
	if _, err := e.node.Client().Broadcast(ctx, theft); err != nil {
		t.Fatal(err)
	}
	e.node.Generate(ctx, 1)
	hop1 := thief.spend(t, wire.OutPoint{Hash: theft.TxHash(), Index: 0}, 9_990_000, 0, []*wire.TxOut{thief.out(t, 1, 5_000_000), thief.out(t, 2, 4_980_000)})
	if _, err := e.node.Client().Broadcast(ctx, hop1); err != nil {
		t.Fatal(err)
	}
	e.node.Generate(ctx, 1)
	g, err := trace.Trace(ctx, btcchain.New(e.node.Client(), e.node.Config(), 0), e.node.Client(), []chainhash.Hash{theft.TxHash()}, trace.Options{Hops: 2, FromHeight: tipBefore, Net: regtest.Net})
	if err != nil {
		t.Fatal(err)
	}
	addr := func(i uint32) string { a, _, _ := thief.d.Address(0, i); return a.EncodeAddress() }
	if got := strings.Join(g.AddressList(), " "); got != addr(0)+" "+strings.Join(sorted(addr(1), addr(2)), " ") || len(g.Txs) != 2 || len(g.Edges) != 1 || g.Txs[1].Height != tipBefore+2 {
		t.Fatalf("trace: %+v", g)
	}
	var svg bytes.Buffer
	if err := g.WriteSVG(&svg); err != nil || !strings.Contains(svg.String(), "<svg") || !strings.Contains(svg.String(), hop1.TxHash().String()[:16]) {
		t.Fatalf("svg: %v %s", err, svg.String())
	}
	// Bad bounds.
	if _, err := trace.Trace(ctx, btcchain.New(e.node.Client(), e.node.Config(), 0), e.node.Client(), []chainhash.Hash{theft.TxHash()}, trace.Options{Hops: 0, Net: regtest.Net}); err == nil {
		t.Fatal("zero hops accepted")
	}
	if _, err := trace.Trace(ctx, btcchain.New(e.node.Client(), e.node.Config(), 0), e.node.Client(), []chainhash.Hash{{1}}, trace.Options{Hops: 1, Net: regtest.Net}); err == nil {
		t.Fatal("an unknown transaction traced")
	}
	e.must(core.DenyAddresses{Addresses: g.AddressList(), Incident: "theft", Actor: "aiko", Reason: "traced from the theft"})
	// thief/1 pays the customer's deposit address: held for review.
	dep := thief.spend(t, wire.OutPoint{Hash: hop1.TxHash(), Index: 0}, 5_000_000, 1, []*wire.TxOut{wire.NewTxOut(4_990_000, mustScript(t, e.addr))})
	if _, err := e.node.Client().Broadcast(ctx, dep); err != nil {
		t.Fatal(err)
	}
	e.step(w)
	e.node.Generate(ctx, 1)
	e.step(w)
	heldKey := ledger.AccountKey{Owner: 1, Asset: btcAsset, Kind: ledger.KindHeld}
	var d custody.Deposit
	e.core.Read(func(s *core.State) {
		d, _ = s.Custody.Deposit(custody.Outpoint{TxID: dep.TxHash(), Vout: 0})
	})
	if d.State != custody.DepositReview || e.accountBalance(heldKey) != 4_990_000 {
		t.Fatalf("deposit from a denied address: %+v, held %d", d, e.accountBalance(heldKey))
	}
	e.must(core.ReleaseDeposit{Outpoint: d.Outpoint, Actor: "aiko", Reason: "source cleared by compliance"})
	if e.accountBalance(heldKey) != 0 || e.balance() != 10_000_000+4_990_000 {
		t.Fatalf("after release: held %d available %d", e.accountBalance(heldKey), e.balance())
	}
	if o, _ := e.core.Submit(ctx, time.Now(), core.ReleaseDeposit{Outpoint: d.Outpoint, Actor: "aiko", Reason: "again"}); o.Err == nil {
		t.Fatal("released twice")
	}
}

func sorted(a, b string) []string {
	if a < b {
		return []string{a, b}
	}
	return []string{b, a}
}

func (e *depositEnv) must(cmd core.Command) {
	e.t.Helper()
	o, err := e.core.Submit(context.Background(), time.Now(), cmd)
	if err == nil {
		err = o.Err
	}
	if err == nil {
		err = o.EventErr()
	}
	if err != nil {
		e.t.Fatalf("%s: %v", cmd.Kind(), err)
	}
}

func (e *depositEnv) accountBalance(k ledger.AccountKey) uint64 {
	var v uint64
	e.core.Read(func(s *core.State) {
		a, _ := s.Ledger.Account(k)
		v, _ = a.Balance().Uint64()
	})
	return v
}

func mustScript(t testing.TB, addr string) []byte {
	a, err := btcutil.DecodeAddress(addr, regtest.Net)
	if err != nil {
		t.Fatal(err)
	}
	s, err := txscript.PayToAddrScript(a)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
