package core

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"kinko/internal/controls"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/people"
)

const btcAsset ledger.AssetID = 2

var coldWallet = custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: btcAsset, Descriptor: "wsh(sortedmulti(2,...))#abcdefgh", Owner: ledger.OwnerHouseMin + 100}

func custodyCore(t *testing.T) *Core {
	t.Helper()
	c := openCore(t, t.TempDir(), 0)
	submit(t, c, t0, CreateAssets{Assets: []ledger.Asset{{ID: btcAsset, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}})
	submit(t, c, t0, CreateCustomers{IDs: []ledger.OwnerID{1, 2}})
	for _, cmd := range founding(t0) {
		submit(t, c, t0, cmd)
	}
	for _, cmd := range walletRegistered(coldWallet, t0) {
		mustValue(t, c, cmd)
	}
	return c
}

// walletRequest is aiko's signed register_wallet request of w.
func walletRequest(w custody.Wallet) Command {
	return walletRegistered(w, t0)[0]
}

func mustValue(t *testing.T, c *Core, cmd Command) any {
	t.Helper()
	o, err := c.Submit(context.Background(), t0, signed(cmd))
	if err == nil {
		err = o.Err
	}
	if err != nil {
		t.Fatalf("%s: %v", cmd.Kind(), err)
	}
	return o.Value
}

func balanceOf(c *Core, k ledger.AccountKey) uint64 {
	var v uint64
	c.Read(func(s *State) {
		a, _ := s.Ledger.Account(k)
		v, _ = a.Balance().Uint64()
	})
	return v
}

func TestDepositCreditOnceAndReverse(t *testing.T) {
	c := custodyCore(t)
	defer c.Close()
	idx0 := mustValue(t, c, AssignAddress{Wallet: 1, Customer: 1}).(uint32)
	idx1 := mustValue(t, c, AssignAddress{Wallet: 1, Customer: 2}).(uint32)
	if idx0 != 0 || idx1 != 1 {
		t.Fatalf("indexes %d %d; want 0 1", idx0, idx1)
	}
	op := custody.Outpoint{TxID: [32]byte{1}, Vout: 0}
	dep := custody.Seen{Outpoint: op, Wallet: 1, Index: idx1, Amount: 5000, Height: 10}
	res := mustValue(t, c, CreditDeposits{Deposits: []custody.Seen{dep,
		{Outpoint: custody.Outpoint{TxID: [32]byte{2}}, Wallet: 1, Index: 7, Amount: 1}, // never handed out
		{Outpoint: custody.Outpoint{TxID: [32]byte{3}}, Wallet: 1, Index: 0, Amount: 0},
	}}).([]custody.Result)
	if len(res) != 2 || !errors.Is(res[0].Err, custody.ErrAddressUnassigned) || !errors.Is(res[1].Err, custody.ErrAmountZero) {
		t.Fatalf("results = %+v", res)
	}
	cust2 := ledger.AccountKey{Owner: 2, Asset: btcAsset, Kind: ledger.KindAvailable}
	if got := balanceOf(c, cust2); got != 5000 {
		t.Fatalf("customer 2 = %d; want 5000", got)
	}
	// The same outpoint again: a retry, credited once.
	res = mustValue(t, c, CreditDeposits{Deposits: []custody.Seen{dep}}).([]custody.Result)
	if len(res) != 1 || !errors.Is(res[0].Err, custody.ErrDepositExists) || balanceOf(c, cust2) != 5000 {
		t.Fatalf("retry = %+v, balance %d", res, balanceOf(c, cust2))
	}
	// The customer moves 3000 away, then the block is reorged out: 2000 is
	// taken back from the customer, 3000 is owed by them (their receivable
	// account; the house pays nothing), deposits of BTC halted.
	submit(t, c, t0, CreateAccounts{Keys: []ledger.AccountKey{{Owner: 1, Asset: btcAsset, Kind: ledger.KindAvailable}}})
	submit(t, c, t0, CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Lo: 1}, Debit: cust2, Credit: ledger.AccountKey{Owner: 1, Asset: btcAsset, Kind: ledger.KindAvailable}, Amount: ledger.AmountOf(3000)}}})
	o, err := c.Submit(context.Background(), t0, ReverseDeposits{Outpoints: []custody.Outpoint{{TxID: [32]byte{9}}}, Actor: "watcher", Reason: "reorg"})
	if err != nil || !errors.Is(o.Err, custody.ErrDepositUnknown) {
		t.Fatalf("reverse unknown = %v %v", err, o.Err)
	}
	short := mustValue(t, c, ReverseDeposits{Outpoints: []custody.Outpoint{op}, Actor: "watcher", Reason: "block reorged out"}).([]uint64)
	if len(short) != 1 || short[0] != 3000 || balanceOf(c, cust2) != 0 {
		t.Fatalf("reverse: shortfall %v, customer %d", short, balanceOf(c, cust2))
	}
	if got := balanceOf(c, custody.ReceivableAccount(2, btcAsset)); got != 3000 {
		t.Fatalf("customer 2 owes %d; want 3000", got)
	}
	if got := balanceOf(c, ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: btcAsset, Kind: ledger.KindEquity}); got != 0 {
		t.Fatalf("house equity charged %d for the reversal", got)
	}
	var halted error
	c.Read(func(s *State) {
		halted = s.Controls.Allowed(btcAsset, controls.Deposit)
		if d, _ := s.Custody.Deposit(op); d.State != custody.DepositReversed {
			t.Errorf("deposit state %v", d.State)
		}
	})
	if !errors.Is(halted, controls.ErrHalted) {
		t.Fatalf("deposits not halted after a reversal: %v", halted)
	}
	// While halted, new deposits are not credited.
	res = mustValue(t, c, CreditDeposits{Deposits: []custody.Seen{{Outpoint: custody.Outpoint{TxID: [32]byte{4}}, Wallet: 1, Index: 0, Amount: 10}}}).([]custody.Result)
	if len(res) != 1 || !errors.Is(res[0].Err, controls.ErrHalted) {
		t.Fatalf("credit while halted = %+v", res)
	}
	// A batch of a halted deposit and one the custody refuses (a wallet
	// it does not know): each result names its own deposit of the batch.
	res = mustValue(t, c, CreditDeposits{Deposits: []custody.Seen{{Outpoint: custody.Outpoint{TxID: [32]byte{5}}, Wallet: 1, Index: 0, Amount: 10},
		{Outpoint: custody.Outpoint{TxID: [32]byte{6}}, Wallet: 99, Index: 0, Amount: 10}}}).([]custody.Result)
	if len(res) != 2 {
		t.Fatalf("mixed batch = %+v; want two results", res)
	}
	for _, r := range res {
		if halt := errors.Is(r.Err, controls.ErrHalted); halt != (r.Index == 0) {
			t.Fatalf("mixed batch: result %+v names the wrong deposit (want the halt at 0, the wallet's refusal at 1)", r)
		}
	}
	// Lifting needs two different people; the direct command is refused.
	sw := controls.Switch{Asset: btcAsset, Service: controls.Deposit}
	o, _ = c.Submit(context.Background(), t0, Lift{Switch: sw, Requester: "aiko", Approver: "kenji", Reason: "ok"})
	if !errors.Is(o.Err, ErrTwoPerson) {
		t.Fatalf("direct lift = %v; want ErrTwoPerson", o.Err)
	}
	lift := lifted(sw, "kenji", "kenji", t0)
	mustValue(t, c, lift[0])
	if o, _ = c.Submit(context.Background(), t0, lift[1]); !errors.Is(o.Err, people.ErrSelfApproval) {
		t.Fatalf("self-approved lift = %v", o.Err)
	}
	for _, cmd := range lifted(sw, "aiko", "kenji", t0) {
		mustValue(t, c, cmd)
	}
	c.Read(func(s *State) {
		if err := s.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	})
	// The custody state survives a restart, byte for byte.
	_, want := c.StateHash()
	dir := c.cfg.Dir
	c.Close()
	c2 := openCore(t, dir, 0)
	defer c2.Close()
	if _, got := c2.StateHash(); got != want {
		t.Fatal("custody state differs after restart")
	}
	// The wallet exists from the approval on, not before.
	reg := uint64(2 + len(founding(t0)) + 2)
	for seq, want := range map[uint64]int{reg - 1: 0, reg: 1} {
		st, err := c2.StateAt(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(st.Custody.Wallets()); got != want {
			t.Fatalf("wallets at entry %d = %d; want %d", seq, got, want)
		}
	}
}

func TestCustodyBadInput(t *testing.T) {
	c := custodyCore(t)
	defer c.Close()
	for _, tc := range []struct {
		cmd  Command
		want error
	}{
		{walletRequest(custody.Wallet{ID: 2, Kind: 9, Asset: btcAsset, Descriptor: "x", Owner: ledger.OwnerHouseMin}), custody.ErrWalletKind},
		{walletRequest(custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: 77, Descriptor: "x", Owner: ledger.OwnerHouseMin}), custody.ErrAssetUnknown},
		{walletRequest(custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: btcAsset, Descriptor: "", Owner: ledger.OwnerHouseMin}), custody.ErrDescriptorEmpty},
		{walletRequest(custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: btcAsset, Descriptor: "x", Owner: 5}), custody.ErrOwnerInvalid},
		{walletRequest(custody.Wallet{ID: 0, Kind: custody.HotCustomer, Asset: btcAsset, Descriptor: "x", Owner: ledger.OwnerHouseMin}), custody.ErrWalletUnknown},
		{walletRequest(custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: btcAsset, Descriptor: "x", Owner: ledger.OwnerHouseMin, NextIndex: 3}), custody.ErrWalletKind},
		// The registered wallet again, its id with another descriptor,
		// its descriptor under another id, its ledger account.
		{walletRequest(coldWallet), custody.ErrWalletRegistered},
		{walletRequest(func() custody.Wallet { w := coldWallet; w.Descriptor = "other"; return w }()), custody.ErrWalletRegistered},
		{walletRequest(func() custody.Wallet { w := coldWallet; w.ID, w.Owner = 2, ledger.OwnerHouseMin+300; return w }()), custody.ErrDescriptorRegistered},
		{walletRequest(func() custody.Wallet { w := coldWallet; w.ID, w.Descriptor = 2, "other"; return w }()), custody.ErrAccountInUse},
		// An approver may not ask for a wallet; a payload that is not one
		// is refused.
		{signed(OpenRequest{Request: people.Request{ID: "w-approver", Kind: KindRegisterWalletRequest, Payload: []byte(`{"wallet":{"ID":5,"Kind":2,"Asset":2,"Descriptor":"y","Owner":9223372036854775908}}`),
			Requester: "kenji", Reason: "test", RequiredRole: people.RoleAdmin, Expires: t0.Add(time.Hour).UnixNano()}}), people.ErrNotAuthorized},
		{signed(OpenRequest{Request: people.Request{ID: "w-extra", Kind: KindRegisterWalletRequest, Payload: []byte(`{"wallet":{"ID":5},"extra":1}`),
			Requester: "aiko", Reason: "test", RequiredRole: people.RoleAdmin, Expires: t0.Add(time.Hour).UnixNano()}}), people.ErrInvalid},
		// Given directly, the wallet is refused, whatever it is.
		{RegisterWallet{Wallet: custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: btcAsset, Descriptor: "x", Owner: ledger.OwnerHouseMin + 300}}, ErrTwoPerson},
		{RegisterWallet{Wallet: coldWallet}, ErrTwoPerson},
		{AssignAddress{Wallet: 9, Customer: 1}, custody.ErrWalletUnknown},
		{AssignAddress{Wallet: 1, Customer: 99}, custody.ErrCustomerUnknown},
		{Halt{Switch: controls.Switch{Asset: btcAsset, Service: "fly"}, Actor: "a", Reason: "b"}, controls.ErrSwitchInvalid},
		{Halt{Switch: controls.Switch{Service: controls.Global}, Actor: "a", Reason: " "}, controls.ErrNoReason},
		{Lift{Switch: controls.Switch{Service: controls.Global}, Requester: "a", Approver: "b", Reason: "c"}, ErrTwoPerson},
	} {
		o, err := c.Submit(context.Background(), t0, tc.cmd)
		if err != nil || !errors.Is(o.Err, tc.want) {
			t.Errorf("%s %+v = %v, %v; want %v", tc.cmd.Kind(), tc.cmd, err, o.Err, tc.want)
		}
	}
	c.Read(func(s *State) {
		if ws := s.Custody.Wallets(); len(ws) != 1 || ws[0] != coldWallet {
			t.Errorf("wallets after the refusals = %+v; want only the cold wallet", ws)
		}
	})
	// Undecodable or non-canonical payloads never reach the journal.
	for _, p := range []string{`{"Wallet":1,"Customer":1,"Extra":1}`, `{"Wallet":1}{}`, `{ "Wallet":1,"Customer":1}`, `[]`} {
		if _, err := c.SubmitRaw(context.Background(), 0, KindAssignAddress, []byte(p)); !errors.Is(err, ErrCommandInvalid) {
			t.Errorf("payload %s = %v; want ErrCommandInvalid", p, err)
		}
	}
}

func TestDepositsOfUnlistedAssetRefused(t *testing.T) {
	c := custodyCore(t)
	defer c.Close()
	mustValue(t, c, AssignAddress{Wallet: 1, Customer: 1})
	// A proposed asset, with its own cold wallet: no address, no credit.
	mustValue(t, c, ProposeAsset{Asset: ledger.Asset{ID: 9, Code: "XEM", Decimals: 6, Class: ledger.ClassChain}, Actor: "aiko", Reason: "demand"})
	w := coldWallet
	w.ID, w.Asset, w.Owner, w.Descriptor = 2, 9, ledger.OwnerHouseMin+200, "xem cold"
	for _, cmd := range walletRegistered(w, t0) {
		mustValue(t, c, cmd)
	}
	o, err := c.Submit(context.Background(), t0, AssignAddress{Wallet: 2, Customer: 1})
	if err != nil || !errors.Is(o.Err, ErrAssetNotListed) {
		t.Fatalf("address of an unlisted asset = %v %v", err, o.Err)
	}
	res := mustValue(t, c, CreditDeposits{Deposits: []custody.Seen{{Outpoint: custody.Outpoint{TxID: [32]byte{7}}, Wallet: 2, Index: 0, Amount: 5}}}).([]custody.Result)
	if len(res) != 1 || !errors.Is(res[0].Err, ErrAssetNotListed) {
		t.Fatalf("deposit of an unlisted asset = %+v", res)
	}
}

// BenchmarkCreditDeposits credits the deposits of blocks with 4,096 outputs
// to 4,096 customers each, journaled and applied: deposits/s.
func BenchmarkCreditDeposits(b *testing.B) {
	const perBlock = 4096
	c, err := Open(context.Background(), Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	sub := func(cmd Command) any {
		o, err := c.Submit(context.Background(), t0, cmd)
		if err == nil {
			err = o.Err
		}
		if err != nil || o.EventErr() != nil {
			b.Fatal(err, o.EventErr())
		}
		return o.Value
	}
	sub(CreateAssets{Assets: []ledger.Asset{{ID: btcAsset, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}})
	ids := make([]ledger.OwnerID, perBlock)
	for i := range ids {
		ids[i] = ledger.OwnerID(i + 1)
	}
	sub(CreateCustomers{IDs: ids})
	for _, cmd := range append(founding(t0), walletRegistered(coldWallet, t0)...) {
		sub(signed(cmd))
	}
	for _, id := range ids {
		sub(AssignAddress{Wallet: 1, Customer: id})
	}
	blocks := (b.N + perBlock - 1) / perBlock
	cmds := make([]CreditDeposits, blocks)
	for k := range cmds {
		deps := make([]custody.Seen, perBlock)
		for i := range deps {
			var txid [32]byte
			binary.BigEndian.PutUint64(txid[:], uint64(k))
			deps[i] = custody.Seen{Outpoint: custody.Outpoint{TxID: txid, Vout: uint32(i)}, Wallet: 1, Index: uint32(i), Amount: 10_000, Height: int32(k)}
		}
		cmds[k] = CreditDeposits{Deposits: deps}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, cmd := range cmds {
		if res := sub(cmd).([]custody.Result); len(res) > 0 {
			b.Fatal(res[0].Err)
		}
	}
	b.ReportMetric(float64(blocks*perBlock)/b.Elapsed().Seconds(), "deposits/s")
}
