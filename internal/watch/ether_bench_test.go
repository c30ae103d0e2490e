package watch

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/chain"
	"kinko/internal/chain/ethchain"
	"kinko/internal/core"
	"kinko/internal/ledger"
)

// BenchmarkEtherCredit measures the Ether watcher and the core crediting
// deposits: each iteration is one block of 1,000 top-level Ether transfers
// of 20 ETH (above 2^64 wei) to the deposit addresses of 1,000 customers,
// read from an in-memory backend (the node's reads are not counted),
// scanned, credited by one credit_deposits command journaled by the core
// (its apply, ledger transfers and journal write), and checkpointed. It
// reports deposits credited per second.
func BenchmarkEtherCredit(b *testing.B) {
	const customers = 1000
	ctx := context.Background()
	cold, hot := fakeDescriptors()
	c := etherCore(b, cold, hot)
	ids := make([]ledger.OwnerID, 0, customers)
	for i := ledger.OwnerID(4); i <= customers+3; i++ {
		ids = append(ids, i)
	}
	if o, err := c.Submit(ctx, time.Now(), core.CreateCustomers{IDs: ids}); err != nil || o.Err != nil {
		b.Fatal(err, o.Err)
	}
	for i := 3; i <= customers+3; i++ {
		if o, err := c.Submit(ctx, time.Now(), core.AssignAddress{Wallet: 1, Customer: ledger.OwnerID(i)}); err != nil || o.Err != nil {
			b.Fatal(err, o.Err)
		}
	}
	f := newFakeChain()
	d, err := NewEtherDeposits(ctx, c, f, artifacts(b), EtherConfig{Asset: ethAsset, ChainID: 1337, Confirmations: 1})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Step(ctx); err != nil { // the book grows to the addresses
		b.Fatal(err)
	}
	addrs := make([]string, customers)
	for i := range addrs {
		a, ok := d.Address(1, uint32(i+2))
		if !ok {
			b.Fatalf("address %d not followed", i+2)
		}
		addrs[i] = a.Hex()
	}
	var serial uint64
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		ts := make([]chain.Transfer, customers)
		for i := range ts {
			serial++
			var id [32]byte
			binary.BigEndian.PutUint64(id[:], serial)
			id[31] = 0xee
			ts[i] = chain.Transfer{Tx: chain.NewID(chain.Ethereum, id), To: addrs[i], Amount: twentyETH}
		}
		f.mine(ts...)
		b.StartTimer()
		if err := d.Step(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	var n int
	c.Read(func(s *core.State) { n = len(s.Custody.Addresses(3)) })
	if got := ethBalance(c, 3); got.Big().Cmp(new(big.Int).Mul(twentyETH.Big(), big.NewInt(int64(b.N)))) != 0 || n != 1 {
		b.Fatalf("customer 3 holds %s after %d blocks; want %d × 20 ETH", got, b.N, b.N)
	}
	b.ReportMetric(float64(customers*b.N)/b.Elapsed().Seconds(), "deposits/s")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/block")
}

// benchCredit is the set-up of the credit benchmarks: 1,000 customers
// with a deposit address each, a watcher over a fake chain, and the
// addresses.
func benchCredit(b *testing.B, customers int) (*core.Core, *fakeChain, *EtherDeposits, []string) {
	ctx := context.Background()
	cold, hot := fakeDescriptors()
	c := etherCore(b, cold, hot)
	ids := make([]ledger.OwnerID, 0, customers)
	for i := ledger.OwnerID(4); i <= ledger.OwnerID(customers)+3; i++ {
		ids = append(ids, i)
	}
	if o, err := c.Submit(ctx, time.Now(), core.CreateCustomers{IDs: ids}); err != nil || o.Err != nil {
		b.Fatal(err, o.Err)
	}
	for i := 3; i <= customers+3; i++ {
		if o, err := c.Submit(ctx, time.Now(), core.AssignAddress{Wallet: 1, Customer: ledger.OwnerID(i)}); err != nil || o.Err != nil {
			b.Fatal(err, o.Err)
		}
	}
	f := newFakeChain()
	d, err := NewEtherDeposits(ctx, c, f, artifacts(b), EtherConfig{Asset: ethAsset, ChainID: 1337, Confirmations: 1})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Step(ctx); err != nil { // the book grows to the addresses
		b.Fatal(err)
	}
	addrs := make([]string, customers)
	for i := range addrs {
		a, ok := d.Address(1, uint32(i+2))
		if !ok {
			b.Fatalf("address %d not followed", i+2)
		}
		addrs[i] = a.Hex()
	}
	return c, f, d, addrs
}

// BenchmarkInternalEtherCredit measures crediting Ether sent by
// contracts: each iteration is one block of one transaction whose call
// trace (geth's callTracer JSON, about 190 KB) holds 1,000 internal CALLs
// of 20 ETH to the deposit addresses of 1,000 customers, decoded by
// ethchain.DecodeTraces, then scanned, credited by one credit_deposits
// command journaled by the core, and checkpointed (the node's RPC is not
// counted). It reports deposits credited per second.
func BenchmarkInternalEtherCredit(b *testing.B) {
	const customers = 1000
	ctx := context.Background()
	c, f, d, addrs := benchCredit(b, customers)
	watched := map[string]bool{}
	for _, a := range addrs {
		watched[a] = true
	}
	from := common.HexToAddress("0x00000000000000000000000000000000000000f0").Hex()
	value := "0x" + twentyETH.Big().Text(16)
	var serial uint64
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		serial++
		var id [32]byte
		binary.BigEndian.PutUint64(id[:], serial)
		id[31] = 0xef
		var sb strings.Builder
		fmt.Fprintf(&sb, `[{"txHash":"%s","result":{"type":"CALL","from":"%s","to":"%s","value":"0x0","calls":[`, common.Hash(id).Hex(), from, from)
		for i, a := range addrs {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"type":"CALL","from":"%s","to":"%s","value":"%s","gas":"0x0","gasUsed":"0x0","input":"0x"}`, from, a, value)
		}
		sb.WriteString("]}}]")
		raw := []byte(sb.String())
		b.StartTimer()
		txs, err := ethchain.DecodeTraces(raw, []common.Hash{id}, func(a string) bool { return watched[a] })
		if err != nil || len(txs[0].Transfers) != customers {
			b.Fatalf("decoded %d transfers, %v", len(txs[0].Transfers), err)
		}
		f.mine(txs[0].Transfers...)
		if err := d.Step(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got := ethBalance(c, 3); got.Big().Cmp(new(big.Int).Mul(twentyETH.Big(), big.NewInt(int64(b.N)))) != 0 {
		b.Fatalf("customer 3 holds %s after %d blocks; want %d × 20 ETH", got, b.N, b.N)
	}
	b.ReportMetric(float64(customers*b.N)/b.Elapsed().Seconds(), "deposits/s")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/block")
}
