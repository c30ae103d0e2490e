package watch

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"kinko/internal/chain/eth/safe"
	"kinko/internal/chain/ethchain"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
)

// safeCeremony is the Ethereum ceremony of tx on the Safe at a paid by
// wallet src, its hash computed on w's chain.
func (w *ethWorld) safeCeremony(t *testing.T, id string, purpose custody.Purpose, src uint32, a common.Address, tx *safe.SafeTx, pays ...custody.SafePayment) custody.Ceremony {
	t.Helper()
	h, err := tx.Hash(w.d.ChainID, a)
	if err != nil {
		t.Fatal(err)
	}
	return custody.Ceremony{ID: id, Purpose: purpose, TxID: [32]byte(h), Actor: "aiko", Source: src, Pays: pays,
		Safe: &custody.SafeTx{ChainID: w.d.ChainID.Uint64(), Safe: a.Hex(), To: tx.To.Hex(), Value: tx.Value.String(), Data: "0x" + common.Bytes2Hex(tx.Data), Operation: uint8(tx.Operation), Nonce: tx.Nonce.Uint64()}}
}

// execOn returns execTransaction of tx on the Safe at a, signed by the
// owners given, sent from the gas account; not sent.
func (w *ethWorld) execOn(t *testing.T, a common.Address, tx *safe.SafeTx, owners ...*ecdsa.PrivateKey) *types.Transaction {
	t.Helper()
	h, err := tx.Hash(w.d.ChainID, a)
	if err != nil {
		t.Fatal(err)
	}
	return w.execAt(t, w.gas, a, tx, h, owners...)
}

func (w *ethWorld) walletBalance(id uint32) *big.Int {
	var v *big.Int
	w.k.Read(func(s *core.State) {
		a, _ := s.Ledger.Account(walletAccount(id))
		v = a.Balance().Big()
	})
	return v
}

// TestSafeCeremonyOnDevnet: a refill of 5 ETH from the cold Safe to the
// hot Safe is journaled before anyone signs (bad ceremonies refused
// first, nothing journaled), signed by two offline owners and executed:
// the watcher of Safe executions halts nothing and confirms it, the
// ledger's cold and hot wallet accounts move by exactly 5 ETH, and the
// reconciliation at every block (before the confirmation, the
// confirmation above the reconciled block, after) finds no difference.
// Then the two cold keys, stolen, execute at the next nonce a SafeTx
// other than the one journaled there (its value raised): ETH withdrawals
// halt, an incident names it, and the journaled ceremony stays prepared;
// and a journaled ceremony whose payment address is not the pinned Safe
// of the wallet it names halts too.
func TestSafeCeremonyOnDevnet(t *testing.T) {
	w := newEthWorld(t, milliETH(1_000))
	cold := w.safe(t, w.coldKeys, 1000, milliETH(20_000))
	w.book(t, ewCold, w.customer(3), milliETH(20_000))
	house := w.safe(t, w.houseKeys, 1, milliETH(1_000))
	equity := ledger.AccountKey{Owner: ledger.OwnerHouseMin + 500, Asset: ethAsset, Kind: ledger.KindEquity}
	w.submit(t, time.Now(), core.CreateAccounts{Keys: []ledger.AccountKey{equity}})
	w.book(t, ewHouse, equity, milliETH(1_000))
	safes, err := MatchWallets(w.ctx, w.k, w.c, ethAsset, []WatchedSafe{{Name: "hot-eth", Address: w.hot, Kind: custody.HotCustomer},
		{Name: "cold-eth", Address: cold, Kind: custody.ColdCustomer}, {Name: "house-eth", Address: house, Kind: custody.ColdHouse}})
	if err != nil {
		t.Fatal(err)
	}
	tip, err := w.c.BlockNumber(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	x, err := NewEthExec(w.k, w.c, EthExecConfig{Asset: ethAsset, Safes: safes, MultiSend: w.d.MultiSendCallOnly, StartBlock: tip + 1})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewEthRecon(w.k, ethchain.New(w.c, "", nil), w.c, w.art, EthReconConfig{Asset: ethAsset, ChainID: w.c.ChainID().Uint64(), Confirmations: 3,
		StartBlock: tip, Safes: safes})
	if err != nil {
		t.Fatal(err)
	}
	recon := func(what string) {
		t.Helper()
		if _, err := r.Step(w.ctx); err != nil {
			t.Fatalf("%s: reconciliation: %v", what, err)
		}
		bs, _ := r.Balances()
		if len(bs) != 3 {
			t.Fatalf("%s: %d wallets reconciled", what, len(bs))
		}
		for _, b := range bs {
			if d := b.Difference(); d.Sign() != 0 {
				t.Fatalf("%s: wallet %d differs by %s wei: %+v", what, b.Wallet, d, b)
			}
		}
		if w.haltedETH() {
			t.Fatalf("%s: ETH halted", what)
		}
	}
	w.n.Mine(w.ctx, 3)
	recon("the start")

	five := milliETH(5_000)
	five128, _ := ledgerAmount(five)
	refill := safe.Transfer(w.hot, five, big.NewInt(0))
	good := w.safeCeremony(t, "refill-eth-1", custody.Refill, ewCold, cold, refill, custody.SafePayment{Wallet: ewHot, Address: w.hot.Hex(), Amount: five128})

	// Bad ceremonies: each refused, nothing journaled.
	attacker := common.HexToAddress("0xbad0000000000000000000000000000000000bad")
	bads := map[string]custody.Ceremony{}
	c := good
	c.TxID[0] ^= 1
	bads["a hash not the SafeTx's"] = c
	six := safe.Transfer(w.hot, milliETH(6_000), big.NewInt(0))
	bads["the SafeTx pays 6 ETH, the payment says 5"] = w.safeCeremony(t, "bad", custody.Refill, ewCold, cold, six, custody.SafePayment{Wallet: ewHot, Address: w.hot.Hex(), Amount: five128})
	toAttacker := safe.Transfer(attacker, five, big.NewInt(0))
	bads["the SafeTx pays another address"] = w.safeCeremony(t, "bad", custody.Refill, ewCold, cold, toAttacker, custody.SafePayment{Wallet: ewHot, Address: w.hot.Hex(), Amount: five128})
	bads["a refill to the house's wallet"] = w.safeCeremony(t, "bad", custody.Refill, ewCold, cold, safe.Transfer(house, five, big.NewInt(0)), custody.SafePayment{Wallet: ewHouse, Address: house.Hex(), Amount: five128})
	bads["an unknown wallet"] = w.safeCeremony(t, "bad", custody.Refill, ewCold, cold, refill, custody.SafePayment{Wallet: 99, Address: w.hot.Hex(), Amount: five128})
	bads["paid to its source"] = w.safeCeremony(t, "bad", custody.Sweep, ewCold, cold, safe.Transfer(w.hot, five, big.NewInt(0)), custody.SafePayment{Wallet: ewCold, Address: w.hot.Hex(), Amount: five128})
	bads["a refill from the hot wallet"] = w.safeCeremony(t, "bad", custody.Refill, ewHot, w.hot, safe.Transfer(cold, five, big.NewInt(0)), custody.SafePayment{Wallet: ewCold, Address: cold.Hex(), Amount: five128})
	bads["nothing paid"] = w.safeCeremony(t, "bad", custody.Refill, ewCold, cold, safe.Transfer(w.hot, new(big.Int), big.NewInt(0)), custody.SafePayment{Wallet: ewHot, Address: w.hot.Hex()})
	erc := &safe.SafeTx{To: w.hot, Value: new(big.Int), Data: common.FromHex("0xa9059cbb000000000000000000000000bad0000000000000000000000000000000000bad0000000000000000000000000000000000000000000000004563918244f40000"),
		SafeTxGas: safe.SafeTxGasFor(1), BaseGas: new(big.Int), GasPrice: new(big.Int), Nonce: big.NewInt(0)}
	bads["calldata"] = w.safeCeremony(t, "bad", custody.Refill, ewCold, cold, erc, custody.SafePayment{Wallet: ewHot, Address: w.hot.Hex(), Amount: five128})
	c = w.safeCeremony(t, "bad", custody.Refill, ewCold, cold, refill, custody.SafePayment{Wallet: ewHot, Address: w.hot.Hex(), Amount: five128})
	c.Safe.ChainID, c.Purpose = 1, custody.Refill
	h1, _ := refill.Hash(big.NewInt(1), cold)
	c.TxID = [32]byte(h1)
	bads["another chain than the wallets'"] = c
	c = good
	c.Purpose = custody.Cover
	bads["purpose cover"] = c
	for why, bc := range bads {
		o, err := w.k.Submit(w.ctx, time.Now(), core.PrepareCeremony{Ceremony: bc})
		if err != nil {
			t.Fatal(err)
		}
		if o.Err == nil {
			t.Fatalf("%s: journaled", why)
		}
		t.Logf("%s: refused: %v", why, o.Err)
	}
	w.k.Read(func(s *core.State) {
		if n := len(s.Custody.Ceremonies()); n != 0 {
			t.Fatalf("%d ceremonies after the refusals", n)
		}
	})

	w.submit(t, time.Now(), core.PrepareCeremony{Ceremony: good})
	if o, _ := w.k.Submit(w.ctx, time.Now(), core.PrepareCeremony{Ceremony: good}); !errors.Is(o.Err, custody.ErrCeremonyExists) {
		t.Fatalf("the same ceremony again: %v", o.Err)
	}
	hot0, cold0 := w.walletBalance(ewHot), w.walletBalance(ewCold)
	exec := w.execOn(t, cold, refill, w.coldKeys[0], w.coldKeys[2])
	// In the node's pool first: explained, nothing halted.
	if err := x.CheckPending(w.ctx, exec); err != nil || w.haltedETH() {
		t.Fatalf("the journaled refill pending: %v, halted %v", err, w.haltedETH())
	}
	w.send(t, exec)
	if got := w.balance(t, w.hot); got.Cmp(milliETH(6_000)) != 0 {
		t.Fatalf("the hot Safe holds %s wei", got)
	}
	// The reconciliation before the watcher confirms: executed, not
	// confirmed, in flight.
	for range 3 {
		recon("executed, not confirmed")
		w.n.Mine(w.ctx, 1)
	}
	if _, err := x.Step(w.ctx); err != nil {
		t.Fatal(err)
	}
	if w.haltedETH() {
		t.Fatal("the journaled refill halted ETH")
	}
	w.k.Read(func(s *core.State) {
		cer, _ := s.Custody.Ceremony("refill-eth-1")
		if cer.State != custody.CeremonyConfirmed || cer.Height == 0 {
			t.Fatalf("ceremony %s at %d", cer.State, cer.Height)
		}
		if len(s.Incidents.List()) != 0 {
			t.Fatalf("incidents: %+v", s.Incidents.List())
		}
	})
	if d := new(big.Int).Sub(w.walletBalance(ewHot), hot0); d.Cmp(five) != 0 {
		t.Fatalf("the hot wallet's account moved by %s wei", d)
	}
	if d := new(big.Int).Sub(cold0, w.walletBalance(ewCold)); d.Cmp(five) != 0 {
		t.Fatalf("the cold wallet's account moved by %s wei", d)
	}
	// The next blocks: the confirmation at the executed block, reconciled
	// below it and then at it.
	for range 4 {
		recon("confirmed")
		w.n.Mine(w.ctx, 1)
	}

	// The thieves of two cold keys: at nonce 1 a ceremony of 1 ETH is
	// journaled; they execute 2 ETH to the hot Safe at that nonce.
	one, _ := ledgerAmount(milliETH(1_000))
	next := w.safeCeremony(t, "refill-eth-2", custody.Refill, ewCold, cold, safe.Transfer(w.hot, milliETH(1_000), big.NewInt(1)), custody.SafePayment{Wallet: ewHot, Address: w.hot.Hex(), Amount: one})
	w.submit(t, time.Now(), core.PrepareCeremony{Ceremony: next})
	changed := safe.Transfer(w.hot, milliETH(2_000), big.NewInt(1))
	ch, _ := changed.Hash(w.d.ChainID, cold)
	theft := w.execOn(t, cold, changed, w.coldKeys[0], w.coldKeys[1])
	// In the node's pool: signed by two cold owners, not journaled: it
	// halts before any block.
	if err := x.CheckPending(w.ctx, theft); err != nil {
		t.Fatal(err)
	}
	if !w.haltedETH() {
		t.Fatal("a pending SafeTx other than the journaled one at its nonce halted nothing")
	}
	w.send(t, theft)
	if _, err := x.Step(w.ctx); err != nil {
		t.Fatal(err)
	}
	w.k.Read(func(s *core.State) {
		if !s.Incidents.Names(ch.Hex()) {
			t.Fatalf("no incident names %s: %+v", ch.Hex(), s.Incidents.List())
		}
		if cer, _ := s.Custody.Ceremony("refill-eth-2"); cer.State != custody.CeremonyPrepared {
			t.Fatalf("the ceremony not executed is %s", cer.State)
		}
	})

	// A journaled ceremony naming the attacker's address as the hot
	// wallet's: the core cannot know, the watcher's pins do.
	lie := w.safeCeremony(t, "refill-eth-3", custody.Refill, ewCold, cold, safe.Transfer(attacker, milliETH(1_000), big.NewInt(2)), custody.SafePayment{Wallet: ewHot, Address: attacker.Hex(), Amount: one})
	w.submit(t, time.Now(), core.PrepareCeremony{Ceremony: lie})
	w.send(t, w.execOn(t, cold, safe.Transfer(attacker, milliETH(1_000), big.NewInt(2)), w.coldKeys[0], w.coldKeys[1]))
	if _, err := x.Step(w.ctx); err != nil {
		t.Fatal(err)
	}
	w.k.Read(func(s *core.State) {
		if !s.Incidents.Names(common.Hash(lie.TxID).Hex()) {
			t.Fatalf("no incident names the lying ceremony: %+v", s.Incidents.List())
		}
		found := false
		for _, in := range s.Incidents.List() {
			found = found || strings.Contains(in.Reason+strings.Join(in.TxIDs, " "), common.Hash(lie.TxID).Hex())
		}
		if cer, _ := s.Custody.Ceremony("refill-eth-3"); cer.State != custody.CeremonyPrepared || !found {
			t.Fatalf("the lying ceremony is %s", cer.State)
		}
	})
	if got := w.balance(t, attacker); got.Cmp(milliETH(1_000)) != 0 {
		t.Fatalf("the attacker got %s wei", got)
	}

	// The journaled command decodes strictly; the state's snapshot
	// encoding round-trips the ceremonies.
	cmd := core.PrepareCeremony{Ceremony: good}
	p := cmd.AppendPayload(nil)
	if back, err := core.DecodeCommand(uint16(core.KindPrepareCeremony), p); err != nil || !reflect.DeepEqual(back, cmd) {
		t.Fatalf("decode = %v %+v", err, back)
	}
	extra := strings.Replace(string(p), `"Pays":[`, `"Extra":1,"Pays":[`, 1)
	if _, err := core.DecodeCommand(uint16(core.KindPrepareCeremony), []byte(extra)); err == nil {
		t.Fatal("an unknown field decoded")
	}
	w.k.Read(func(s *core.State) {
		var buf bytes.Buffer
		if err := s.Encode(&buf); err != nil {
			t.Fatal(err)
		}
		back, err := core.DecodeState(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if back.Hash() != s.Hash() || !reflect.DeepEqual(back.Custody.Ceremonies(), s.Custody.Ceremonies()) {
			t.Fatal("the ceremonies do not round-trip the state's encoding")
		}
		if c, ok := back.Custody.CeremonyByTx(good.TxID); !ok || c.State != custody.CeremonyConfirmed || c.Pays[0].Amount != five128 {
			t.Fatalf("decoded ceremony %+v", c)
		}
	})
}
