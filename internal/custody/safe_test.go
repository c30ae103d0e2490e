package custody

import (
	"errors"
	"strings"
	"testing"

	"kinko/internal/ethwallet"
	"kinko/internal/ledger"
)

func safeDescriptor() string {
	a := func(b byte) ethwallet.Address { var x ethwallet.Address; x[0], x[19] = 0xb0, b; return x }
	return ethwallet.Descriptor{ChainID: 1337, Singleton: a(1), Factory: a(2), Fallback: a(3), Threshold: 2,
		Owners: []ethwallet.Address{a(10), a(11), a(12)}}.String()
}

// twentyETH is 2×10^19 wei, above 2^64 (1.8×10^19).
var twentyETH = ledger.Amount{Hi: 1, Lo: 20_000_000_000_000_000_000 - 1<<64}

// newSafeState: ETH (asset 3, 18 decimals), customers 1 and 2 with
// deposit addresses 0 and 1 of a cold Safe wallet, and a Bitcoin wallet 2.
func newSafeState(t *testing.T) (*State, *ledger.Ledger) {
	t.Helper()
	l := ledger.New()
	l.CreateAssets([]ledger.Asset{{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}, {ID: 3, Code: "ETH", Decimals: 18, Class: ledger.ClassChain}}, nil)
	l.CreateCustomers([]ledger.OwnerID{1, 2}, nil)
	s := New()
	if err := s.RegisterWallet(l, Wallet{ID: 1, Kind: ColdCustomer, Asset: 3, Descriptor: safeDescriptor(), Owner: ledger.OwnerHouseMin + 100}); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterWallet(l, Wallet{ID: 2, Kind: ColdCustomer, Asset: 2, Descriptor: "cold", Owner: ledger.OwnerHouseMin + 101}); err != nil {
		t.Fatal(err)
	}
	for c := ledger.OwnerID(1); c <= 2; c++ {
		if _, err := s.AssignAddress(l, 1, c); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AssignAddress(l, 2, c); err != nil {
			t.Fatal(err)
		}
	}
	return s, l
}

func balance(l *ledger.Ledger, k ledger.AccountKey) ledger.Amount {
	a, _ := l.Account(k)
	return a.Balance()
}

// TestRegisterSafeRefuses: a Safe descriptor that does not parse is
// refused at registration, by RegisterWallet and CheckNew, with the
// reason, and opens no account.
func TestRegisterSafeRefuses(t *testing.T) {
	l := ledger.New()
	l.CreateAssets([]ledger.Asset{{ID: 3, Code: "ETH", Decimals: 18, Class: ledger.ClassChain}}, nil)
	s := New()
	good := safeDescriptor()
	for _, bad := range []string{
		strings.Replace(good, "threshold=2", "threshold=1", 1),
		strings.Replace(good, "chain=1337", "chain=0", 1),
		strings.ToLower(good),
		good + " ",
		"safe(whatever)",
	} {
		w := Wallet{ID: 7, Kind: ColdCustomer, Asset: 3, Descriptor: bad, Owner: ledger.OwnerHouseMin + 7}
		for name, err := range map[string]error{"CheckNew": s.CheckNew(l, w), "RegisterWallet": s.RegisterWallet(l, w)} {
			if !errors.Is(err, ErrDescriptorInvalid) || !errors.Is(err, ethwallet.ErrDescriptor) {
				t.Errorf("%s(%q) = %v; want ErrDescriptorInvalid", name, bad, err)
			}
		}
		if _, ok := s.Wallet(7); ok {
			t.Fatalf("wallet registered with %q", bad)
		}
		if _, ok := l.Account(ledger.AccountKey{Owner: ledger.OwnerHouseMin + 7, Asset: 3, Kind: ledger.KindWallet}); ok {
			t.Fatalf("account opened for %q", bad)
		}
	}
	w := Wallet{ID: 7, Kind: ColdCustomer, Asset: 3, Descriptor: good, Owner: ledger.OwnerHouseMin + 7}
	if err := s.CheckNew(l, w); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterWallet(l, w); err != nil || !func() bool { x, _ := s.Wallet(7); return x.Safe() }() {
		t.Fatalf("register good Safe: %v", err)
	}
}

// TestSafeDepositWide: a deposit of 20 ETH (above 2^64 wei) credits
// exactly, takes no UTXO, counts as unfinal in full, credits once, and
// reverses exactly, the shortfall owed exactly.
func TestSafeDepositWide(t *testing.T) {
	s, l := newSafeState(t)
	cust := ledger.AccountKey{Owner: 1, Asset: 3, Kind: ledger.KindAvailable}
	op := Outpoint{TxID: [32]byte{0xe7}, Vout: EtherIndex}
	var seenDepth ledger.Amount
	dep := func(_ ledger.AssetID, a ledger.Amount) int32 { seenDepth = a; return 12 }
	seen := Seen{Outpoint: op, Wallet: 1, Index: 0, Amount: twentyETH.Lo, AmountHi: twentyETH.Hi, BlockHash: [32]byte{9}, Height: 50}
	if res := s.CreditDeposits(l, []Seen{seen}, 1, dep); len(res) > 0 {
		t.Fatal(res[0].Err)
	}
	if got := balance(l, cust); got != twentyETH || got.String() != "20000000000000000000" {
		t.Fatalf("customer balance = %s; want 20000000000000000000", got)
	}
	if seenDepth != twentyETH {
		t.Fatalf("depth asked for %s; want the whole 20 ETH", seenDepth)
	}
	if d, _ := s.Deposit(op); d.Value() != twentyETH || d.FinalAt != 61 {
		t.Fatalf("deposit = %+v", d)
	}
	if _, ok := s.UTXO(op); ok {
		t.Fatal("a Safe deposit made a UTXO")
	}
	if got := s.UnfinalAmount(1, 3); got != twentyETH {
		t.Fatalf("unfinal = %s; want the whole 20 ETH", got)
	}
	// Again, and again with another amount or customer: nothing more.
	again := seen
	again.AmountHi = 5
	again.Index = 1
	if res := s.CreditDeposits(l, []Seen{seen, again}, 2, dep); len(res) != 2 || !errors.Is(res[0].Err, ErrDepositExists) || !errors.Is(res[1].Err, ErrDepositExists) {
		t.Fatalf("credit again = %v; want ErrDepositExists twice", res)
	}
	if got := balance(l, cust); got != twentyETH {
		t.Fatalf("balance after a second sighting = %s", got)
	}
	// Bitcoin wallets take no high bits.
	btc := Seen{Outpoint: Outpoint{TxID: [32]byte{0xb7}}, Wallet: 2, Index: 0, Amount: 1, AmountHi: 1, Height: 5}
	if res := s.CreditDeposits(l, []Seen{btc}, 3, dep); len(res) != 1 || !errors.Is(res[0].Err, ErrAmountRange) {
		t.Fatalf("wide BTC deposit = %v; want ErrAmountRange", res)
	}
	// The customer moves 1 ETH away (a trade), then the block reorgs out.
	one := ledger.AmountOf(1_000_000_000_000_000_000)
	other := ledger.AccountKey{Owner: 2, Asset: 3, Kind: ledger.KindAvailable}
	if res := l.CreateTransfers([]ledger.Transfer{{ID: ledger.ID{Lo: 77}, Debit: cust, Credit: other, Amount: one, Code: 1}}, 4, nil); len(res) > 0 {
		t.Fatal(res[0].Code)
	}
	short, err := s.ReverseDepositAmount(l, op, 5)
	if err != nil || short != one {
		t.Fatalf("reverse = %s, %v; want shortfall 1 ETH", short, err)
	}
	if got := balance(l, cust); !got.IsZero() {
		t.Fatalf("balance after reversal = %s", got)
	}
	if got := OwedAmount(l, 1, 3); got != one {
		t.Fatalf("owed = %s; want %s", got, one)
	}
	w, _ := s.Wallet(1)
	if got := balance(l, w.Account()); !got.IsZero() {
		t.Fatalf("wallet account after reversal = %s; want 0", got)
	}
	if !s.UnfinalAmount(1, 3).IsZero() {
		t.Fatal("a reversed deposit counts as unfinal")
	}
}
