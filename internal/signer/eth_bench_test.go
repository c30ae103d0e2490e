package signer

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"sort"
	"testing"
	"time"

	"kinko/internal/chain/eth/safe"
	"kinko/internal/core"
	"kinko/internal/cosigner"
	"kinko/internal/ledger"
	"kinko/internal/withdraw"
)

// benchEthLimits are the co-signer's ETH limits of the benchmark: wide
// enough for hundreds of batches an hour (the test's are a few).
const benchEthLimits = `"per_customer_hour":5000000000000000000,"per_customer_day":10000000000000000000,"per_asset_hour":15000000000000000000,"per_asset_day":18000000000000000000,
    "fee_max":10000000000000000,"fee_hour":5000000000000000000,"fee_day":10000000000000000000,"tx_hour":100000,"tx_day":1000000,"yen_per_coin":500000,"decimals":18}},
  "all_assets":{"yen_hour":100000000000,"yen_day":1000000000000,"tx_hour":100000,"tx_day":1000000}`

// streamSafe feeds the co-signer the journal over the core's stream, then
// asks its mutual-TLS route.
type streamSafe struct {
	f *cosigner.Follower
	r *Remote
}

func (x streamSafe) CoSignSafeTx(ctx context.Context, req cosigner.SafeTxRequest) (safe.Signature, error) {
	if _, err := x.f.Poll(ctx); err != nil {
		return safe.Signature{}, err
	}
	return x.r.CoSignSafeTx(ctx, req)
}

// phases times a signer step's parts: a Backend and a co-signer that note
// when each of the signer's commands was journaled and how long the
// co-signer took.
type phases struct {
	Backend
	co    SafeCoSigner
	stamp map[core.Kind]time.Time
	cosig time.Duration
}

func (p *phases) Submit(ctx context.Context, cmd core.Command) error {
	err := p.Backend.Submit(ctx, cmd)
	p.stamp[cmd.Kind()] = time.Now()
	return err
}

func (p *phases) CoSignSafeTx(ctx context.Context, req cosigner.SafeTxRequest) (safe.Signature, error) {
	t := time.Now()
	sig, err := p.co.CoSignSafeTx(ctx, req)
	p.cosig = time.Since(t)
	return sig, err
}

// BenchmarkEthWithdrawals measures an Ether withdrawal from its request
// to its execution on chain, on loopback with each role behind its
// boundary: geth --dev (mainnet's rules, a block sealed as soon as a
// transaction is pending), the hot signer reaching the core over its API,
// the co-signer as its real server fed by the journal stream and asked
// over mutual TLS, the house gas account registered (its gas reported
// and recorded). b.N withdrawals in rounds of the sub-benchmark's size,
// each round one SafeTx (one CALL, or a MultiSendCallOnly batch): each
// request is signed and journaled, then one signer step journals the
// batch, signs, co-signs, journals execTransaction, sends it, waits for
// its receipt and journals the confirmation with its gas. It reports
// p50/p99 from the request's acknowledgement to the confirmation
// (executed on chain and in the ledger), withdrawals per second and gas
// per withdrawal; allocations are the whole process's (core, API,
// co-signer, signer; not geth's).
func BenchmarkEthWithdrawals(b *testing.B) {
	e := newEthE2EWith(b, benchEthLimits)
	srv, coreURL := serveAPI(b, e.core)
	f := &cosigner.Follower{URL: coreURL, Token: srv.StreamToken(), HTTP: http.DefaultClient, C: e.cs, Log: slog.New(slog.DiscardHandler)}
	ph := &phases{Backend: API{URL: coreURL, Token: srv.SignerToken(), HTTP: http.DefaultClient}, co: streamSafe{f, e.co.r}, stamp: map[core.Kind]time.Time{}}
	s, err := NewEth(EthConfig{Backend: ph, Node: e.c, ChainID: e.d.ChainID.Uint64(),
		Safe: e.hot, MultiSend: e.d.MultiSendCallOnly, Key: e.hotKey, Gas: e.exec, CoSigner: ph, GasLimit: 1_000_000, MaxFeePerGas: big.NewInt(1_000_000_000)})
	if err != nil {
		b.Fatal(err)
	}
	// One withdrawal to each payee first, unmeasured: the payees exist.
	for i := ledger.OwnerID(1); i <= 3; i++ {
		e.withdraw(b, i, ethPayee(i), milli(1))
	}
	if _, err := s.Step(e.ctx); err != nil {
		b.Fatal(err)
	}
	for _, round := range []int{1, 10} {
		b.Run(fmt.Sprintf("round=%d", round), func(b *testing.B) {
			b.ReportAllocs()
			lat := make([]time.Duration, 0, b.N)
			// Per step: to the batch journaled, the co-signer's answer,
			// to execTransaction journaled, its sending and mining to the
			// confirmation journaled.
			var reserve, cosign, record, mined []time.Duration
			txs, gasUsed := 0, uint64(0)
			start := time.Now()
			for done := 0; done < b.N; {
				n := min(round, b.N-done)
				reqAt := make([]time.Time, n)
				ids := make([]string, n)
				for i := range n {
					cust := ledger.OwnerID(1 + (done+i)%3)
					ids[i] = e.withdraw(b, cust, ethPayee(cust), big.NewInt(1_000_000_000_000))
					reqAt[i] = time.Now()
				}
				stepAt := time.Now()
				fin, err := s.Step(e.ctx)
				if err != nil || len(fin) != 1 {
					b.Fatalf("step = %v, %v", fin, err)
				}
				at := time.Now()
				reserve = append(reserve, ph.stamp[core.KindReserveBatch].Sub(stepAt))
				cosign = append(cosign, ph.cosig)
				record = append(record, ph.stamp[core.KindRecordSigned].Sub(ph.stamp[core.KindReserveBatch]))
				mined = append(mined, ph.stamp[core.KindConfirmBatch].Sub(ph.stamp[core.KindRecordSigned]))
				for _, t := range reqAt {
					lat = append(lat, at.Sub(t))
				}
				bt := e.batch(b, ids[0])
				if bt.Status != withdraw.BatchConfirmed || len(bt.Withdrawals) != n || bt.Gas == nil {
					b.Fatalf("batch %s: %s, %d withdrawals, gas %+v", bt.ID, bt.Status, len(bt.Withdrawals), bt.Gas)
				}
				gasUsed += bt.Gas.GasUsed
				txs++
				done += n
			}
			elapsed := time.Since(start)
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "withdrawals/s")
			b.ReportMetric(float64(b.N)/float64(txs), "withdrawals/tx")
			b.ReportMetric(float64(gasUsed)/float64(b.N), "gas/withdrawal")
			for _, m := range []struct {
				name string
				d    []time.Duration
			}{{"reserve-p50-ms", reserve}, {"cosign-p50-ms", cosign}, {"signed-p50-ms", record}, {"mined-p50-ms", mined}} {
				sort.Slice(m.d, func(i, j int) bool { return m.d[i] < m.d[j] })
				b.ReportMetric(float64(m.d[len(m.d)/2].Microseconds())/1000, m.name)
			}
		})
	}
	b.StopTimer()
	if e.gasLedger().Cmp(e.gasChain(b)) != 0 {
		b.Fatalf("the gas account's ledger account %s wei, on chain %s", e.gasLedger(), e.gasChain(b))
	}
}
