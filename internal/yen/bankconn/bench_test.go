package bankconn

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/passkey"
	"kinko/internal/people"
	"kinko/internal/yen"
	"kinko/internal/yen/zengin"
)

// benchCore is a core with yen set up and n verified customers, each with
// a kana name and a virtual account.
func benchCore(b *testing.B, n int) (*core.Core, *Connector) {
	dir := b.TempDir()
	c, err := core.Open(context.Background(), core.Config{Dir: filepath.Join(dir, "core")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	do := func(cmd core.Command) {
		o, err := c.Submit(context.Background(), now, cmd)
		if err == nil {
			err = o.EventErr()
		}
		if err != nil {
			b.Fatalf("%s: %v", cmd.Kind(), err)
		}
	}
	do(core.Bootstrap{RP: passkey.RP{ID: "localhost", Origins: []string{"http://localhost"}}, Expires: now.Add(time.Hour).UnixNano(),
		Founders: []people.Founder{{Name: "aiko", Roles: []people.Role{people.RoleAdmin}, Code: sha256.Sum256([]byte("a"))}, {Name: "ren", Roles: []people.Role{people.RoleAdmin}, Code: sha256.Sum256([]byte("r"))},
			{Name: "mei", Roles: []people.Role{people.RoleOperator}, Code: sha256.Sum256([]byte("m"))}}})
	do(core.CreateAssets{Assets: []ledger.Asset{{ID: 1, Code: "JPY", Class: ledger.ClassFiat}}})
	do(core.YenSetup{Config: yen.Config{Asset: "JPY", Trust: trustAcct, Operating: opAcct, RequesterCode: "1234567890", Requester: "ｶ)ｷﾝｺ",
		VirtualBranch: "200", VirtualFirst: 2000001, VirtualCount: uint64(n), DepositMax: 10_000_000, PaymentMax: 300_000, ReviewTwoPersonAbove: 1_000_000}})
	// Customers are set up from many goroutines (group commit); their
	// virtual accounts in order, so customer i has 2000000+i.
	var wg sync.WaitGroup
	const workers = 16
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w + 1; i <= n; i += workers {
				id := ledger.OwnerID(i)
				do(core.SignUp{Customer: people.Customer{ID: id, Email: fmt.Sprintf("c%d@example.jp", i), Name: "c", Creds: people.Credentials{Commit: strings.Repeat("ab", 32)}}})
				do(core.SetKYC{Customer: id, KYC: people.KYCVerified, Actor: "mei", Reason: "ok"})
				do(core.YenSetKana{Customer: id, Name: "ﾔﾏﾀﾞ ﾀﾛｳ", Actor: "aiko", Reason: "KYC"})
			}
		}(w)
	}
	wg.Wait()
	for i := 1; i <= n; i++ {
		do(core.YenAssignVirtual{Customer: ledger.OwnerID(i)})
	}
	conn, err := New(Config{Core: c, Drop: filepath.Join(dir, "drop"), BankKey: []byte("bench-key-0123456789"), Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	return c, conn
}

// BenchmarkStatementImport imports statements of 100,000 transfers to
// 10,000 customers' virtual accounts: parsing, matching each to its
// customer by account and name, journaling (fsync) and crediting.
func BenchmarkStatementImport(b *testing.B) {
	const customers, transfers = 10_000, 100_000
	c, conn := benchCore(b, customers)
	d := zengin.Date{Year: 2026, Month: 12, Day: 1}
	ref := uint64(0)
	var balance int64
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		g := zengin.StatementGroup{Created: d, From: d, To: d, Account: trustAcct, Passbook: 1, Opening: balance}
		g.Entries = make([]zengin.Entry, transfers)
		for i := range g.Entries {
			ref++
			cust := i%customers + 1
			g.Entries[i] = zengin.Entry{Ref: ref, Date: d, ValueDate: d, Credit: true, Kind: zengin.TxTransfer, Amount: 1_000 + uint64(i%5000),
				Sender: "ﾔﾏﾀﾞ ﾀﾛｳ", Memo: fmt.Sprintf("200%07d", 2000000+cust)}
			balance += int64(g.Entries[i].Amount)
		}
		g.Closing = balance
		file, err := zengin.AppendStatement(nil, &zengin.Statement{Groups: []zengin.StatementGroup{g}})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		rep, err := conn.ImportStatement(context.Background(), "bench", file)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Results["credited"] != transfers || rep.Reconcile.Diff != 0 {
			b.Fatalf("import: %+v, %+v", rep.Results, rep.Reconcile)
		}
	}
	b.ReportMetric(float64(transfers*b.N)/b.Elapsed().Seconds(), "transfers/s")
	_ = c
}

// BenchmarkBatchFile writes the transfer file of a batch of 100,000
// payouts: the file rebuilt from the state, its hash checked, written and
// synced to the drop directory.
func BenchmarkBatchFile(b *testing.B) {
	const n = 100_000
	s := yen.New()
	s.Config = &yen.Config{Trust: trustAcct, RequesterCode: "1234567890", Requester: "ｶ)ｷﾝｺ"}
	batch := yen.Batch{ID: "B", Month: 12, Day: 2}
	for i := 0; i < n; i++ {
		p := s.AddPayout(yen.Payout{Withdrawal: fmt.Sprintf("%d:w", i), Customer: uint64(i + 1),
			To: zengin.Account{Bank: "0005", Branch: "135", Type: 1, Number: fmt.Sprintf("%07d", i), Name: "ﾔﾏﾀﾞ ﾀﾛｳ"}, Amount: 10_000 + uint64(i), Fee: 110})
		batch.Payouts = append(batch.Payouts, p.Number)
	}
	_, hash, err := s.FileBytes(&batch, nil)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	buf := make([]byte, 0, (n+3)*122)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, h, err := s.FileBytes(&batch, buf)
		if err != nil || h != hash {
			b.Fatal(err)
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("B%d.txt", i)))
		if err != nil {
			b.Fatal(err)
		}
		f.Write(out)
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "transfers/s")
}
