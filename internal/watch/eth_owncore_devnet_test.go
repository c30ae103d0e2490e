package watch

import (
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/alert"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
)

// TestOwnExecutionWhileCoreDown: the Ether side of
// TestOwnTransactionWhileCoreDown. A refill ceremony is journaled and the
// core dies before the watcher reads it; the refill is executed, and so is
// a theft from the same Safe. The watcher cannot tell them apart and tells
// the co-signer of both. When the core answers it looks again: the refill
// is confirmed and not halted, the theft halted and recorded.
func TestOwnExecutionWhileCoreDown(t *testing.T) {
	w := newEthWorld(t, milliETH(1_000))
	cold := w.safe(t, w.coldKeys, 1000, milliETH(20_000))
	w.book(t, ewCold, w.customer(3), milliETH(20_000))
	safes, err := MatchWallets(w.ctx, w.k, w.c, ethAsset, []WatchedSafe{{Name: "hot-eth", Address: w.hot, Kind: custody.HotCustomer},
		{Name: "cold-eth", Address: cold, Kind: custody.ColdCustomer}})
	if err != nil {
		t.Fatal(err)
	}
	tip, err := w.c.BlockNumber(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	lag := &lagCore{src: w.k, rep: core.NewReplica()}
	if err := lag.Sync(w.ctx); err != nil {
		t.Fatal(err)
	}
	got := &alerts{}
	var told []common.Hash
	x, err := NewEthExec(lag, w.c, EthExecConfig{Asset: ethAsset, Safes: safes, MultiSend: w.d.MultiSendCallOnly, StartBlock: tip + 1, Alert: got.send,
		OnUnexplained: func(_ ledger.AssetID, h common.Hash, _ string) { told = append(told, h) }})
	if err != nil {
		t.Fatal(err)
	}
	five := milliETH(5_000)
	five128, _ := ledgerAmount(five)
	refill := safe.Transfer(w.hot, five, big.NewInt(0))
	cer := w.safeCeremony(t, "refill-eth-1", custody.Refill, ewCold, cold, refill, custody.SafePayment{Wallet: ewHot, Address: w.hot.Hex(), Amount: five128})
	w.submit(t, time.Now(), core.PrepareCeremony{Ceremony: cer})
	lag.down.Store(true)
	w.send(t, w.execOn(t, cold, refill, w.coldKeys[0], w.coldKeys[2]))
	theft := safe.Transfer(common.HexToAddress("0xbad0000000000000000000000000000000000bad"), milliETH(1_000), big.NewInt(1))
	w.send(t, w.execOn(t, cold, theft, w.coldKeys[0], w.coldKeys[2]))
	theftHash, _ := theft.Hash(w.d.ChainID, cold)
	if _, err := x.Step(w.ctx); !errors.Is(err, ErrCoreDown) {
		t.Fatalf("step with the core down = %v; want ErrCoreDown", err)
	}
	if len(told) != 2 || told[0] != common.Hash(cer.TxID) || told[1] != theftHash {
		t.Fatalf("co-signer told of %v; want the refill and the theft", told)
	}
	lag.down.Store(false)
	if _, err := x.Step(w.ctx); err != nil {
		t.Fatal(err)
	}
	w.k.Read(func(s *core.State) {
		c, _ := s.Custody.Ceremony("refill-eth-1")
		if c.State != custody.CeremonyConfirmed {
			t.Errorf("the refill's ceremony is %s; want confirmed", c.State)
		}
		if s.Incidents.Names(common.Hash(cer.TxID).Hex()) {
			t.Error("the refill recorded as an incident")
		}
		if !s.Incidents.Names(theftHash.Hex()) {
			t.Error("the theft not recorded")
		}
	})
	if !w.haltedETH() {
		t.Fatal("ETH withdrawals not halted for the theft")
	}
	warned := false
	got.mu.Lock()
	for _, a := range got.list {
		if a.Key == "safe-exec:"+common.Hash(cer.TxID).Hex() && a.Severity == alert.Warning {
			warned = true
		}
	}
	got.mu.Unlock()
	if !warned {
		t.Fatalf("no warning that the refill was explained: %+v", got.list)
	}
}
