package core

import (
	"crypto/ed25519"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"kinko/internal/ledger"
	"kinko/internal/withdraw"
)

// wei parses a decimal amount of wei, failing the test on a bad one.
func wei(t *testing.T, s string) withdraw.Amount {
	t.Helper()
	a, err := withdraw.ParseAmount(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// requestETH signs and submits customer cust's withdrawal intent of
// amount wei to its whitelisted address.
func (e *gasEnv) requestETH(cust ledger.OwnerID, id string, amount withdraw.Amount) Outcome {
	e.t.Helper()
	in := withdraw.Intent{RequestID: id, Asset: "ETH", Address: gasPayee(cust).Hex(), Amount: amount, Expiry: e.now.Add(time.Hour).Unix()}
	sig, _ := in.Sign(e.keys[cust])
	return e.do(RequestWithdrawal{Customer: cust, Intent: in, PubKey: [32]byte(e.keys[cust].Public().(ed25519.PublicKey)), Sig: sig})
}

// TestWithdrawWideEther: a customer credited 100 ETH (10^20 wei, above
// 2^64) withdraws 50 ETH (5·10^19 wei, above 2^64): the hold is exactly
// the amount and the fee, the Safe batch pays exactly the amount, and
// once confirmed the customer keeps 100 − 50 − 0.001 ETH to the wei, the
// house has the fee and the hot wallet's books lost the 50 ETH. A limit
// above 2^64 is enforced to the wei: 1 wei over a per-withdrawal maximum
// of 2^64+5 is refused, holding nothing. The books replay the same.
func TestWithdrawWideEther(t *testing.T) {
	e := newGasEnv(t)
	e.register(500_000_000_000_000_000, "0x"+strings.Repeat("cd", 32)) // 0.5 ETH of gas
	// Customer 1 gets 99 ETH more: 100 ETH in all.
	hot := ledger.AccountKey{Owner: gasHotOwner, Asset: gasETH, Kind: ledger.KindWallet}
	e.must(CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 4, Lo: 1}, Debit: hot, Credit: avail(1, gasETH),
		Amount: wei(t, "99000000000000000000").Ledger()}}})
	if bk := e.books(""); bk.avail1 != "100000000000000000000" || bk.hot != "101000000000000000000" {
		t.Fatalf("credited: %+v", bk)
	}

	// A per-withdrawal maximum of 2^64+5 wei, day and hour limits far
	// above, and no approval below 200 ETH.
	two64 := new(big.Int).Lsh(big.NewInt(1), 64)
	max, _ := withdraw.AmountFromBig(new(big.Int).Add(two64, big.NewInt(5)))
	lots := wei(t, "200000000000000000000")
	rules := func(perWithdrawal withdraw.Amount) withdraw.Rules {
		return withdraw.Rules{CoolDownSeconds: 24 * 3600, PerWithdrawalMax: map[string]withdraw.Amount{"ETH": perWithdrawal},
			PerCustomerDay: map[string]withdraw.Amount{"ETH": lots}, PerAssetHour: map[string]withdraw.Amount{"ETH": lots},
			ApprovalAbove: map[string]withdraw.Amount{"ETH": lots}, WithdrawalFee: map[string]withdraw.Amount{"ETH": withdraw.AmountOf(gasWdFee)}}
	}
	e.setRules(rules(max))
	over, _ := max.Add(withdraw.AmountOf(1))
	o := e.requestETH(1, "over", over)
	rec, _ := o.Value.(withdraw.Withdrawal)
	if o.Err != nil || rec.Status != withdraw.StatusRejected || !strings.Contains(rec.Reason, "per-withdrawal maximum 18446744073709551621") {
		t.Fatalf("1 wei over a 2^64+5 maximum = %v %+v; want rejected by the per-withdrawal maximum", o.Err, rec)
	}
	if bk := e.books(""); bk.avail1 != "100000000000000000000" || bk.held1 != "0" {
		t.Fatalf("a refused withdrawal held something: %+v", bk)
	}
	// The maximum itself passes the policy (and is not withdrawn here).
	e.c.Read(func(s *State) {
		if d, why := s.Withdraw.Rules.Evaluate(withdraw.Request{Customer: 1, Asset: "ETH", Address: gasPayee(1).Hex(), Amount: max, Decimals: 18}, withdrawView{s}); d != withdraw.Allow {
			t.Fatalf("the 2^64+5 maximum itself: %v %q", d, why)
		}
	})

	// 50 ETH under a 60 ETH maximum.
	e.setRules(rules(wei(t, "60000000000000000000")))
	fifty := wei(t, "50000000000000000000")
	o = e.requestETH(1, "fifty", fifty)
	rec, _ = o.Value.(withdraw.Withdrawal)
	if o.Err != nil || rec.Status != withdraw.StatusQueued || rec.Intent.Amount != fifty || rec.Fee != withdraw.AmountOf(gasWdFee) {
		t.Fatalf("50 ETH = %v %+v; want queued with the fee", o.Err, rec)
	}
	e.c.Read(func(s *State) {
		hr, ok := s.Ledger.Transfer(ledger.ID{Hi: rec.HoldHi, Lo: rec.HoldLo})
		if !ok || hr.Amount.String() != "50001000000000000000" {
			t.Fatalf("hold = %v %s; want 50001000000000000000 wei (the amount and the fee)", ok, hr.Amount)
		}
	})
	held := e.books("")
	if held.avail1 != "49999000000000000000" || held.hot != "101000000000000000000" || held.house != "0" {
		t.Fatalf("held: %+v", held)
	}

	// The Safe batch pays exactly 50 ETH.
	b, tx := e.batch(0, e.gas, rec)
	if b.Safe.Value != "50000000000000000000" {
		t.Fatalf("the SafeTx's value = %s", b.Safe.Value)
	}
	e.must(ConfirmBatch{TxID: b.TxID, Height: 9, Gas: gasOf(tx, 73_855, 1_000_000_007)})
	paid := e.books(b.ID)
	gasLeft := new(big.Int).Sub(big.NewInt(500_000_000_000_000_000), new(big.Int).Mul(big.NewInt(73_855), big.NewInt(1_000_000_007)))
	want := books{gas: gasLeft.String(), equity: gasLeft.String(), house: "1000000000000000", hot: "51000000000000000000",
		avail1: "49999000000000000000", avail2: "1000000000000000000", held1: "0", held2: "0", batch: withdraw.BatchConfirmed,
		gasRecorded: new(big.Int).Mul(big.NewInt(73_855), big.NewInt(1_000_000_007)).String()}
	wantBooks(t, "paid", paid, want)

	// Replayed from the journal: the same books.
	e.c.Close()
	e.c = openCore(t, e.dir, 0)
	wantBooks(t, "replayed", e.books(b.ID), want)
}

// TestWithdrawWideRefusals: an amount and fee that overflow 128 bits and
// an amount of 0 are each refused with a clear error, and change nothing;
// a journaled amount is a JSON number below 2^128 and nothing else.
func TestWithdrawWideRefusals(t *testing.T) {
	e := newGasEnv(t)
	e.setRules(withdraw.Rules{CoolDownSeconds: 24 * 3600, PerWithdrawalMax: map[string]withdraw.Amount{"ETH": withdraw.MaxAmount},
		PerCustomerDay: map[string]withdraw.Amount{"ETH": withdraw.MaxAmount}, PerAssetHour: map[string]withdraw.Amount{"ETH": withdraw.MaxAmount},
		ApprovalAbove: map[string]withdraw.Amount{"ETH": withdraw.MaxAmount}, WithdrawalFee: map[string]withdraw.Amount{"ETH": withdraw.AmountOf(gasWdFee)}})
	before := e.books("")
	o := e.requestETH(1, "overflow", withdraw.MaxAmount)
	if !errors.Is(o.Err, ErrCommandInvalid) || !strings.Contains(o.Err.Error(), "overflow 128 bits") {
		t.Fatalf("2^128-1 wei and a fee = %v; want an overflow refusal", o.Err)
	}
	o = e.requestETH(1, "zero", withdraw.Amount{})
	if !errors.Is(o.Err, withdraw.ErrIntent) || !strings.Contains(o.Err.Error(), "amount 0") {
		t.Fatalf("0 wei = %v; want %v naming the amount", o.Err, withdraw.ErrIntent)
	}
	wantBooks(t, "after the refusals", e.books(""), before)
	e.c.Read(func(s *State) {
		for _, id := range []string{"1:overflow", "1:zero"} {
			if _, ok := s.Withdraw.Get(id); ok {
				t.Errorf("refused request %s recorded", id)
			}
		}
	})
	// The journaled form of an intent's amount: a JSON number of any size
	// (as when amounts were uint64), nothing else.
	for _, bad := range []string{`-1`, `1.5`, `1e20`, `"0x10"`, `340282366920938463463374607431768211456`} {
		p := []byte(`{"Customer":1,"Intent":{"RequestID":"r","Asset":"ETH","Address":"0x00","Amount":` + bad + `,"Expiry":1},"PubKey":[` + strings.Repeat("0,", 31) + `0],"Sig":null}`)
		if _, err := DecodeCommand(uint16(KindRequestWithdrawal), p); err == nil {
			t.Errorf("an intent amount of %s decoded", bad)
		}
	}
	p := []byte(`{"Customer":1,"Intent":{"RequestID":"r","Asset":"ETH","Address":"0x00","Amount":340282366920938463463374607431768211455,"Expiry":1},"PubKey":[` + strings.Repeat("0,", 31) + `0],"Sig":null}`)
	if c, err := DecodeCommand(uint16(KindRequestWithdrawal), p); err != nil || c.(RequestWithdrawal).Intent.Amount != withdraw.MaxAmount {
		t.Fatalf("an intent of 2^128-1 wei: %v %v", c, err)
	}
}
