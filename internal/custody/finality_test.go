package custody

import (
	"testing"

	"kinko/internal/ledger"
)

// newFinState: BTC, customers 1 and 2 with deposit addresses 0 and 1 of
// the cold wallet.
func newFinState(t *testing.T) (*State, *ledger.Ledger) {
	t.Helper()
	l := ledger.New()
	l.CreateAssets([]ledger.Asset{{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}, nil)
	l.CreateCustomers([]ledger.OwnerID{1, 2}, nil)
	s := New()
	if err := s.RegisterWallet(l, Wallet{ID: 1, Kind: ColdCustomer, Asset: 2, Descriptor: "cold", Owner: ledger.OwnerHouseMin + 100}); err != nil {
		t.Fatal(err)
	}
	for c := ledger.OwnerID(1); c <= 2; c++ {
		if _, err := s.AssignAddress(l, 1, c); err != nil {
			t.Fatal(err)
		}
	}
	return s, l
}

// depth is a tier rule for the tests: 3 confirmations up to 1000, 10 above.
func depth(_ ledger.AssetID, amount ledger.Amount) int32 {
	if amount.Cmp(ledger.AmountOf(1000)) <= 0 {
		return 3
	}
	return 10
}

func hashAt(h int32) [32]byte { return [32]byte{byte(h), 0x77} }

func credit(t *testing.T, s *State, l *ledger.Ledger, n byte, cust ledger.OwnerID, amount uint64, h int32) Outpoint {
	t.Helper()
	op := Outpoint{TxID: [32]byte{n}}
	if res := s.CreditDeposits(l, []Seen{{Outpoint: op, Wallet: 1, Index: uint32(cust - 1), Amount: amount, BlockHash: hashAt(h), Height: h}}, 1, depth); len(res) > 0 {
		t.Fatalf("credit %d: %v", n, res[0].Err)
	}
	return op
}

func TestFinalizeInOrderOfFinalHeight(t *testing.T) {
	s, l := newFinState(t)
	big := credit(t, s, l, 1, 1, 5000, 100)  // final at 109
	small := credit(t, s, l, 2, 1, 700, 104) // final at 106
	other := credit(t, s, l, 3, 2, 300, 100) // final at 102
	check := func(tip int32, final []Outpoint, unfinal1, unfinal2 uint64) {
		t.Helper()
		var hashes [][32]byte
		for h := tip - 20; h <= tip; h++ {
			hashes = append(hashes, hashAt(h))
		}
		s.Finalize(2, tip, hashes)
		for _, op := range final {
			if d, _ := s.Deposit(op); !d.Final {
				t.Fatalf("at tip %d: %s not final (final at %d)", tip, op, d.FinalAt)
			}
		}
		if a, b := s.UnfinalAmount(1, 2), s.UnfinalAmount(2, 2); a != ledger.AmountOf(unfinal1) || b != ledger.AmountOf(unfinal2) {
			t.Fatalf("at tip %d: not final %d, %d; want %d, %d", tip, a, b, unfinal1, unfinal2)
		}
		if err := s.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	}
	check(101, nil, 5700, 300)
	check(102, []Outpoint{other}, 5700, 0)
	check(106, []Outpoint{other, small}, 5000, 0)
	if u := s.Unfinal(1); len(u) != 1 || u[0].Count != 1 || u[0].First.Outpoint != big || u[0].First.Depth() != 10 || u[0].First.Confirmations(106) != 7 {
		t.Fatalf("Unfinal(1) = %+v", u)
	}
	check(109, []Outpoint{other, small, big}, 0, 0)
	if s.PendingFinality(2) != 0 {
		t.Fatalf("%d still queued", s.PendingFinality(2))
	}
}

func TestReverseOwedAndRepaid(t *testing.T) {
	s, l := newFinState(t)
	op := credit(t, s, l, 1, 1, 5000, 100)
	avail := func(c ledger.OwnerID) ledger.AccountKey {
		return ledger.AccountKey{Owner: c, Asset: 2, Kind: ledger.KindAvailable}
	}
	l.CreateAccounts([]ledger.AccountKey{avail(2)}, nil)
	// Customer 1 passes 3000 on, then the deposit is reversed.
	if res := l.CreateTransfers([]ledger.Transfer{{ID: ledger.ID{Lo: 9}, Debit: avail(1), Credit: avail(2), Amount: ledger.AmountOf(3000)}}, 2, nil); len(res) > 0 {
		t.Fatal(res[0].Code)
	}
	short, err := s.ReverseDeposit(l, op, 3)
	if err != nil || short != 3000 || Owed(l, 1, 2) != 3000 {
		t.Fatalf("reverse = %d %v, owed %d", short, err, Owed(l, 1, 2))
	}
	if !s.UnfinalAmount(1, 2).IsZero() || s.PendingFinality(2) != 0 {
		t.Fatal("a reversed deposit is still tracked")
	}
	// A later deposit of 1000 repays 1000 as it is credited.
	credit(t, s, l, 2, 1, 1000, 120)
	if Owed(l, 1, 2) != 2000 {
		t.Fatalf("owed after a deposit of 1000 = %d", Owed(l, 1, 2))
	}
	if n, err := s.WriteOffOwed(l, 1, 2, ledger.OwnerEquity, ledger.ID{Hi: 0xD7, Lo: 1}, 4); err != nil || n != 2000 || Owed(l, 1, 2) != 0 {
		t.Fatalf("write-off = %d %v, owed %d", n, err, Owed(l, 1, 2))
	}
	if _, err := s.WriteOffOwed(l, 1, 2, ledger.OwnerEquity, ledger.ID{Hi: 0xD7, Lo: 2}, 5); err != ErrNothingOwed {
		t.Fatalf("write-off of nothing = %v", err)
	}
	if err := l.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	// The derived structures come back from the encoding.
	b, err := s.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if s2.UnfinalAmount(1, 2) != s.UnfinalAmount(1, 2) || s2.PendingFinality(2) != s.PendingFinality(2) {
		t.Fatal("finality differs after decode")
	}
}
