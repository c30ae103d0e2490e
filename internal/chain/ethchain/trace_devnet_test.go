package ethchain_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain"
	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/evmtest"
	"kinko/internal/chain/ethchain"
)

// TestTraceInternalTransfers: a forwarder contract, called with 0.6 ETH
// + 7 wei, sends 0.3 ETH + 7 wei to watched address A and 0.2 ETH to
// watched B in two internal calls, 0.1 ETH to a relay that pays all of it
// on to watched C and then reverts, 10^30 wei it does not have to C, 1
// wei to an unwatched address and nothing to A. Block reports exactly
// the two to A and B, at InternalIndex(1) and (2), and nothing for C
// (whose balance stays 0); the same block read without traces reports
// neither; a transaction that itself reverts (the relay called directly,
// its inner call to C succeeding) reports nothing.
func TestTraceInternalTransfers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := newHarness(t)
	c := h.n.Client()
	newAddr := func() common.Address {
		k, _ := crypto.GenerateKey()
		return crypto.PubkeyToAddress(k.PublicKey)
	}
	a, b, cc, nobody := newAddr(), newAddr(), newAddr(), newAddr()
	deploy := func(code []byte, size int) common.Address {
		r, err := c.Send(ctx, h.key, eth.Tx{Data: code, Gas: 200_000})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.Code(ctx, r.ContractAddress); err != nil || len(got) != size {
			t.Fatalf("contract code = %d bytes, %v; want %d", len(got), err, size)
		}
		return r.ContractAddress
	}
	fwd := deploy(evmtest.ForwarderCode(), evmtest.ForwarderSize)
	relay := deploy(evmtest.RevertingRelayCode(cc), evmtest.RelaySize)
	w := chain.NewWatch()
	for _, x := range []common.Address{a, b, cc} {
		if _, err := w.Add(h.b, x.Hex()); err != nil {
			t.Fatal(err)
		}
	}
	eth1 := big.NewInt(1e18)
	frac := func(tenths int64, plus int64) *big.Int {
		v := new(big.Int).Mul(eth1, big.NewInt(tenths))
		return v.Div(v, big.NewInt(10)).Add(v, big.NewInt(plus))
	}
	huge, _ := new(big.Int).SetString("1000000000000000000000000000000", 10)
	data := evmtest.ForwardData(
		evmtest.Call{To: a, Value: frac(3, 7)}, evmtest.Call{To: b, Value: frac(2, 0)}, evmtest.Call{To: relay, Value: frac(1, 0)},
		evmtest.Call{To: cc, Value: huge}, evmtest.Call{To: nobody, Value: big.NewInt(1)}, evmtest.Call{To: a, Value: new(big.Int)})
	r, err := c.Send(ctx, h.key, eth.Tx{To: &fwd, Value: frac(6, 7), Data: data, Gas: 400_000})
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("forwarding: %v, %v", r, err)
	}
	blk, err := h.b.Block(ctx, chain.NewID(chain.Ethereum, r.BlockHash), w)
	if err != nil {
		t.Fatal(err)
	}
	tx := chain.NewID(chain.Ethereum, r.TxHash)
	from := fwd.Hex()
	want := []chain.Transfer{
		{Tx: tx, Index: chain.InternalIndex(1), From: from, To: a.Hex(), Amount: chain.Amount{Lo: frac(3, 7).Uint64()}},
		{Tx: tx, Index: chain.InternalIndex(2), From: from, To: b.Hex(), Amount: chain.Amount{Lo: frac(2, 0).Uint64()}},
	}
	if len(blk.Transfers) != len(want) {
		t.Fatalf("block transfers %+v; want %+v", blk.Transfers, want)
	}
	for i := range want {
		if blk.Transfers[i] != want[i] {
			t.Fatalf("transfer %d = %+v; want %+v", i, blk.Transfers[i], want[i])
		}
	}
	for _, x := range []struct {
		a    common.Address
		want *big.Int
	}{{a, frac(3, 7)}, {b, frac(2, 0)}, {cc, new(big.Int)}, {nobody, big.NewInt(1)}} {
		if got, err := c.Balance(ctx, x.a); err != nil || got.Cmp(x.want) != 0 {
			t.Fatalf("balance of %s = %v, %v; want %s", x.a, got, err, x.want)
		}
	}
	plain, err := ethchain.New(c, "", nil).Block(ctx, chain.NewID(chain.Ethereum, r.BlockHash), w)
	if err != nil || len(plain.Transfers) != 0 {
		t.Fatalf("without traces: %+v, %v; want no transfers", plain, err)
	}
	// The relay called directly: the transaction reverts.
	signed, err := c.Sign(ctx, h.key, eth.Tx{To: &relay, Value: frac(1, 0), Gas: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendSigned(ctx, signed); err != nil {
		t.Fatal(err)
	}
	r2, err := c.WaitMined(ctx, signed.Hash())
	if err != nil || r2.Status != types.ReceiptStatusFailed {
		t.Fatalf("the reverting transaction: %v, %v; want it failed", r2, err)
	}
	blk2, err := h.b.Block(ctx, chain.NewID(chain.Ethereum, r2.BlockHash), w)
	if err != nil || len(blk2.Transfers) != 0 {
		t.Fatalf("block of a reverted transaction: %+v, %v; want no transfers", blk2, err)
	}
}
