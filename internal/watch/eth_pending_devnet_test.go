package watch

import (
	"encoding/hex"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"kinko/internal/alert"
	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/withdraw"
)

// TestEthPendingExecutionHalts: the watcher of Safe executions
// subscribed to geth's pending transactions over its WebSocket, its
// block processing never run. A journaled batch's execution passes
// through the pool and halts nothing; nor does a journaled batch whose
// call fails (ExecutionFailure, the batch then failed) nor the replay of
// its co-signed calldata by an attacker, nor an execTransaction of the
// hot Safe signed by keys that are not its owners (calldata anyone can
// send); then an attacker holding two of the three hot owner
// keys (the hot signer's and the offline backup's) sends a drain of the
// hot Safe from its own account, first at a fee cap below the base fee
// (in the pool, and no block can hold it): ETH withdrawals are halted,
// the co-signers told and the incident opened naming the pending
// transaction while it is provably unmined and the hot Safe untouched,
// with no block read by the watcher. The attacker then replaces it at the
// going fee and it is mined: nothing is raised twice; reading the blocks
// afterwards adds no incident and confirms the batch.
func TestEthPendingExecutionHalts(t *testing.T) {
	w := newEthWorld(t, milliETH(5_000))
	start, err := w.c.BlockNumber(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var tells []common.Hash
	halted := make(chan common.Hash, 4)
	var alerts []alert.Alert
	var x *EthExec
	x, err = NewEthExec(w.k, w.c, EthExecConfig{Asset: ethAsset, Logger: slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug})), MultiSend: w.d.MultiSendCallOnly, StartBlock: start + 1, WSURL: w.n.WSURL(),
		Safes: []WatchedSafe{{Name: "hot-eth", Address: w.hot, Kind: custody.HotCustomer, Wallet: ewHot}},
		OnUnexplained: func(_ ledger.AssetID, h common.Hash, why string) {
			mu.Lock()
			defer mu.Unlock()
			tells = append(tells, h)
			halted <- h
		},
		Alert: func(a alert.Alert) { mu.Lock(); alerts = append(alerts, a); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := x.Subscribe(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })

	// 1. A journaled withdrawal's batch, executed: it passes through the
	// pool as any transaction does.
	id := w.withdraw(t, 1, milliETH(300))
	bt, bh := w.batch(t, id, payee(1), milliETH(300))
	if r := w.send(t, bt); r.Status != 1 {
		t.Fatalf("the batch's execution reverted")
	}
	// 2. A journaled batch whose call fails (the payee refuses ether):
	// ExecutionFailure, the nonce used, the batch failed as the signer
	// fails it; then its calldata replayed by the attacker: the SafeTx is
	// a failed batch's, co-signed by our own keys, and the Safe refuses
	// it (its nonce has moved): nothing halts.
	fid := w.withdrawTo(t, 3, w.reverter, milliETH(100))
	ftx, fh := w.batch(t, fid, w.reverter, milliETH(100))
	if r := w.send(t, ftx); r.Status != 1 {
		t.Fatal("the failing batch's execution reverted; want ExecutionFailure")
	}
	w.submit(t, time.Now(), core.FailBatch{Batch: "e-" + hex.EncodeToString(fh[:8]), Reason: "the Safe's call failed (ExecutionFailure)"})
	attacker, err := w.n.NewKey(w.ctx, milliETH(1_000))
	if err != nil {
		t.Fatal(err)
	}
	replay, err := w.c.Sign(w.ctx, attacker, eth.Tx{To: ftx.To(), Data: ftx.Data(), Gas: 300_000})
	if err != nil {
		t.Fatal(err)
	}
	if r := w.send(t, replay); r.Status != 0 {
		t.Fatal("the failed batch's replay did not revert")
	}
	// 3. An execTransaction of the hot Safe signed by two keys that own
	// nothing: anyone can send it; the Safe refuses it.
	nonce, _ := safe.Nonce(w.ctx, w.c, w.hot)
	thief := common.HexToAddress("0x7e1ef000000000000000000000000000000000ba")
	strangers := keys3(t)
	bogus := safe.Transfer(thief, milliETH(4_000), nonce)
	gh, _ := bogus.Hash(w.d.ChainID, w.hot)
	if r := w.send(t, w.exec(t, attacker, bogus, gh, strangers[0], strangers[1])); r.Status != 0 {
		t.Fatalf("strangers' execTransaction succeeded")
	}
	// 4. The drain: the hot Safe's whole balance, signed by the two
	// leaked keys, sent from the attacker's account, never asking the
	// co-signer.
	// First at a fee cap of 1 wei, below the base fee: valid, in the
	// node's pool, and no block can hold it.
	hotBefore := w.balance(t, w.hot)
	drain := safe.Transfer(thief, hotBefore, nonce)
	dh, _ := drain.Hash(w.d.ChainID, w.hot)
	call := w.exec(t, attacker, drain, dh, w.hotKey, w.backupKey)
	signAt := func(tip, feeCap int64) *types.Transaction {
		return types.MustSignNewTx(attacker, types.LatestSignerForChainID(w.d.ChainID), &types.DynamicFeeTx{ChainID: w.d.ChainID, Nonce: call.Nonce(),
			GasTipCap: big.NewInt(tip), GasFeeCap: big.NewInt(feeCap), Gas: call.Gas(), To: call.To(), Data: call.Data()})
	}
	stuck, dtx := signAt(1, 1), signAt(2e9, 100e9)
	if err := w.c.SendSigned(w.ctx, stuck); err != nil {
		t.Fatal(err)
	}
	var got common.Hash
	select {
	case got = <-halted:
	case <-w.ctx.Done():
		t.Fatal("no halt from the pending drain (the watcher read no block)")
	}
	// The co-signers are told while the watcher holds its lock, and the
	// halt journaled before it lets go: taking it waits for the journal.
	x.mu.Lock()
	next, pooled := x.next, x.pooled
	x.mu.Unlock()
	if !w.haltedETH() {
		t.Fatal("ETH withdrawals not halted while the drain is in the pool")
	}
	if r, err := w.c.Eth().TransactionReceipt(w.ctx, stuck.Hash()); err == nil || r != nil {
		t.Fatalf("the drain below the base fee was mined: %+v", r)
	}
	if b := w.balance(t, w.hot); b.Cmp(hotBefore) != 0 {
		t.Fatalf("the hot Safe holds %s wei before the drain is mined; want %s", b, hotBefore)
	}
	// Then the attacker replaces it at the going fee: mined at once.
	if err := w.c.SendSigned(w.ctx, dtx); err != nil {
		t.Fatal(err)
	}
	r, _ := w.c.WaitMined(w.ctx, dtx.Hash())
	took := w.balance(t, thief)
	if got != dh {
		t.Fatalf("the co-signers were told of SafeTx %s; want the drain's %s", got, dh)
	}
	if !w.haltedETH() {
		t.Fatal("ETH withdrawals not halted from the pending drain")
	}
	if pooled != 5 {
		t.Fatalf("%d pending execTransactions of the hot Safe checked; want the two batches', the replay's, the strangers' and the drain's", pooled)
	}
	// (The replacement, seen later, finds the SafeTx reported.)
	if next != start+1 {
		t.Fatalf("the watcher read blocks up to %d: the test needs its block processing stopped", next-1)
	}
	var incs []string
	var loss withdraw.Amount
	var batchStatus withdraw.BatchStatus
	w.k.Read(func(s *core.State) {
		for _, in := range s.Incidents.List() {
			incs = append(incs, in.ID)
			loss = in.Loss
			if in.Detector != "watcher" || !s.Incidents.Names(dh.Hex()) || !s.Incidents.Names(stuck.Hash().Hex()) || !strings.Contains(in.Reason, "unexplained") {
				t.Errorf("incident %+v: want the watcher's, naming SafeTx %s and pending transaction %s", in, dh, stuck.Hash())
			}
			if s.Incidents.Names(bh.Hex()) || s.Incidents.Names(gh.Hex()) || s.Incidents.Names(fh.Hex()) {
				t.Errorf("incident %s names a journaled batch or the strangers' SafeTx", in.ID)
			}
		}
		b, _ := s.Withdraw.BatchByTx([32]byte(bh))
		batchStatus = b.Status
	})
	if len(incs) != 1 || loss.Ledger().Big().Cmp(took) != 0 {
		t.Fatalf("incidents %v, loss %s wei; want one, of the %s wei taken", incs, loss, took)
	}
	if batchStatus == withdraw.BatchConfirmed {
		t.Fatal("the batch is confirmed: something read the blocks")
	}
	halts, reason := 0, ""
	w.k.Read(func(s *core.State) {
		for _, h := range s.Controls.Halted() {
			if h.Switch.Asset == ethAsset {
				halts++
				reason = h.Reason
				if h.Actor != "watcher" || !strings.Contains(h.Reason, "pending transaction "+stuck.Hash().Hex()) || !strings.Contains(h.Reason, "in the node's pool") {
					t.Errorf("halt %+v: want the watcher's, naming the pending transaction", h)
				}
			}
		}
	})
	if halts != 1 {
		t.Fatalf("%d ETH halts", halts)
	}

	// The blocks, read now: the batch confirmed, the drain already
	// reported, nothing new.
	if n, err := x.Step(w.ctx); err != nil || n != 3 {
		t.Fatalf("watcher step = %d, %v; want the batch's, the failed batch's and the drain's executions", n, err)
	}
	w.k.Read(func(s *core.State) {
		if n := len(s.Incidents.List()); n != 1 {
			t.Errorf("%d incidents after reading the blocks", n)
		}
		if b, _ := s.Withdraw.BatchByTx([32]byte(bh)); b.Status != withdraw.BatchConfirmed {
			t.Errorf("the batch is %s after reading its block", b.Status)
		}
	})
	mu.Lock()
	defer mu.Unlock()
	if len(tells) != 1 || len(alerts) != 1 {
		t.Fatalf("co-signers told %d times, %d alerts; want once each", len(tells), len(alerts))
	}
	t.Logf("pending drain: the attacker took %s wei (the hot Safe's whole balance) in block %d (gas %d); the journaled batches, the failed one's replay and the strangers' execTransaction halted nothing; the halt, journaled from the pool with no block read: %s",
		took, r.BlockNumber, r.GasUsed, reason)
}

// tlog writes a logger's lines to the test's log.
type tlog struct{ t *testing.T }

func (l tlog) Write(b []byte) (int, error) {
	l.t.Helper()
	l.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
