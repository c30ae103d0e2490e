package ledger

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

const (
	btc AssetID = 1
	jpy AssetID = 2
)

var (
	wallet = AccountKey{Owner: OwnerHouseMin + 100, Asset: btc, Kind: KindWallet}
	alice  = AccountKey{Owner: 1, Asset: btc, Kind: KindAvailable}
	aliceH = AccountKey{Owner: 1, Asset: btc, Kind: KindHeld}
	bob    = AccountKey{Owner: 2, Asset: btc, Kind: KindAvailable}
	bobJPY = AccountKey{Owner: 2, Asset: jpy, Kind: KindAvailable}
	equity = AccountKey{Owner: OwnerHouseMin + 2, Asset: btc, Kind: KindEquity}
)

func id(n uint64) ID { return ID{Lo: n} }

// newTestLedger returns a ledger with two assets, two customers, their
// accounts, and 1000 satoshi deposited for alice.
func newTestLedger(t *testing.T) *Ledger {
	t.Helper()
	l := New()
	must(t, l.CreateAssets([]Asset{{ID: btc, Code: "BTC", Decimals: 8, Class: ClassChain}, {ID: jpy, Code: "JPY", Class: ClassFiat}}, nil))
	must(t, l.CreateCustomers([]OwnerID{1, 2}, nil))
	must(t, l.CreateAccounts([]AccountKey{wallet, alice, aliceH, bob, bobJPY, equity}, nil))
	must(t, l.CreateTransfers([]Transfer{{ID: id(1), Debit: wallet, Credit: alice, Amount: AmountOf(1000)}}, 1, nil))
	return l
}

func must(t *testing.T, res []Result) {
	t.Helper()
	for _, r := range res {
		if !r.Code.Succeeded() {
			t.Fatalf("event %d: %v", r.Index, r.Code)
		}
	}
}

func check(t *testing.T, l *Ledger) {
	t.Helper()
	if err := l.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

func balance(t *testing.T, l *Ledger, k AccountKey) uint64 {
	t.Helper()
	a, ok := l.Account(k)
	if !ok {
		t.Fatalf("account %v missing", k)
	}
	v, _ := a.Balance().Uint64()
	return v
}

func TestTransferErrors(t *testing.T) {
	unknown := AccountKey{Owner: 9, Asset: btc, Kind: KindAvailable}
	tests := []struct {
		name string
		tr   Transfer
		want Code
	}{
		{"zero id", Transfer{Debit: alice, Credit: bob, Amount: AmountOf(1)}, ErrIDZero},
		{"unknown debit", Transfer{ID: id(10), Debit: unknown, Credit: bob, Amount: AmountOf(1)}, ErrDebitAccountUnknown},
		{"unknown credit", Transfer{ID: id(10), Debit: alice, Credit: unknown, Amount: AmountOf(1)}, ErrCreditAccountUnknown},
		{"same account", Transfer{ID: id(10), Debit: alice, Credit: alice, Amount: AmountOf(1)}, ErrAccountsSame},
		{"asset mismatch", Transfer{ID: id(10), Debit: alice, Credit: bobJPY, Amount: AmountOf(1)}, ErrAssetMismatch},
		{"zero amount", Transfer{ID: id(10), Debit: alice, Credit: bob}, ErrAmountZero},
		{"overdraft", Transfer{ID: id(10), Debit: alice, Credit: bob, Amount: AmountOf(1001)}, ErrExceedsCredits},
		{"wallet below zero", Transfer{ID: id(10), Debit: equity, Credit: wallet, Amount: AmountOf(1001)}, ErrExceedsDebits},
		{"overflow", Transfer{ID: id(10), Debit: equity, Credit: bob, Amount: Amount{Hi: ^uint64(0), Lo: ^uint64(0)}}, OK},
		{"overflow again", Transfer{ID: id(11), Debit: equity, Credit: bob, Amount: AmountOf(1)}, ErrOverflow},
		{"same id other fields", Transfer{ID: id(1), Debit: wallet, Credit: alice, Amount: AmountOf(999)}, ErrExistsWithDifferentFields},
		{"retry", Transfer{ID: id(1), Debit: wallet, Credit: alice, Amount: AmountOf(1000)}, Exists},
		{"unknown flags", Transfer{ID: id(12), Debit: alice, Credit: bob, Amount: AmountOf(1), Flags: 1 << 9}, ErrFlagsInvalid},
		{"post and void", Transfer{ID: id(12), PendingID: id(1), Flags: FlagPostPending | FlagVoidPending}, ErrFlagsInvalid},
		{"post unknown", Transfer{ID: id(12), PendingID: id(77), Flags: FlagPostPending}, ErrPendingUnknown},
		{"post a posted", Transfer{ID: id(12), PendingID: id(1), Flags: FlagPostPending}, ErrPendingNotPending},
	}
	l := newTestLedger(t)
	for _, tt := range tests {
		before := l.TransferCount()
		res := l.CreateTransfers([]Transfer{tt.tr}, 2, nil)
		got := OK
		if len(res) > 0 {
			got = res[0].Code
		}
		if got != tt.want {
			t.Errorf("%s: CreateTransfers = %v; want %v", tt.name, got, tt.want)
		}
		if got != OK && l.TransferCount() != before {
			t.Errorf("%s: a failed transfer was recorded", tt.name)
		}
		check(t, l)
	}
	if got := balance(t, l, alice); got != 1000 {
		t.Errorf("alice = %d; want 1000 (nothing applied by failures)", got)
	}
}

func TestBatchRestUnaffected(t *testing.T) {
	l := newTestLedger(t)
	res := l.CreateTransfers([]Transfer{
		{ID: id(10), Debit: alice, Credit: bob, Amount: AmountOf(100)},
		{ID: id(11), Debit: alice, Credit: bob, Amount: AmountOf(5000)}, // overdraft
		{ID: id(12), Debit: alice, Credit: bob, Amount: AmountOf(200)},
	}, 2, nil)
	if len(res) != 1 || res[0] != (Result{Index: 1, Code: ErrExceedsCredits}) {
		t.Fatalf("results = %v; want only event 1 overdraft", res)
	}
	if got := balance(t, l, bob); got != 300 {
		t.Errorf("bob = %d; want 300", got)
	}
	check(t, l)
}

func TestLinkedChainFailsTogether(t *testing.T) {
	l := newTestLedger(t)
	res := l.CreateTransfers([]Transfer{
		{ID: id(9), Debit: alice, Credit: bob, Amount: AmountOf(1)},
		{ID: id(10), Debit: alice, Credit: bob, Amount: AmountOf(100), Flags: FlagLinked},
		{ID: id(11), Debit: alice, Credit: aliceH, Amount: AmountOf(50), Flags: FlagLinked | FlagPending},
		{ID: id(12), Debit: bob, Credit: alice, Amount: AmountOf(5000)}, // fails: the chain fails
		{ID: id(13), Debit: alice, Credit: bob, Amount: AmountOf(7)},
	}, 2, nil)
	want := []Result{{1, ErrLinkedEventFailed}, {2, ErrLinkedEventFailed}, {3, ErrExceedsCredits}}
	if len(res) != len(want) {
		t.Fatalf("results = %v; want %v", res, want)
	}
	for i := range want {
		if res[i] != want[i] {
			t.Errorf("result %d = %v; want %v", i, res[i], want[i])
		}
	}
	if got := balance(t, l, bob); got != 8 {
		t.Errorf("bob = %d; want 8 (only the unlinked transfers)", got)
	}
	for _, n := range []uint64{10, 11, 12} {
		if _, ok := l.Transfer(id(n)); ok {
			t.Errorf("transfer %d of the failed chain is recorded", n)
		}
	}
	a, _ := l.Account(alice)
	if !a.DebitsPending.IsZero() {
		t.Errorf("alice pending = %v after rollback; want 0", a.DebitsPending)
	}
	check(t, l)

	// A chain that succeeds applies whole.
	must(t, l.CreateTransfers([]Transfer{
		{ID: id(20), Debit: alice, Credit: bob, Amount: AmountOf(10), Flags: FlagLinked},
		{ID: id(21), Debit: bob, Credit: alice, Amount: AmountOf(3)},
	}, 3, nil))
	// A chain left open at the end of a batch fails whole.
	res = l.CreateTransfers([]Transfer{
		{ID: id(30), Debit: alice, Credit: bob, Amount: AmountOf(1), Flags: FlagLinked},
		{ID: id(31), Debit: alice, Credit: bob, Amount: AmountOf(1), Flags: FlagLinked},
	}, 4, nil)
	if len(res) != 2 || res[0].Code != ErrLinkedEventFailed || res[1].Code != ErrLinkedEventChainOpen {
		t.Errorf("open chain results = %v", res)
	}
	check(t, l)
}

func TestPendingPostVoid(t *testing.T) {
	l := newTestLedger(t)
	must(t, l.CreateTransfers([]Transfer{
		{ID: id(10), Debit: alice, Credit: wallet, Amount: AmountOf(600), Flags: FlagPending},
	}, 2, nil))
	a, _ := l.Account(alice)
	if v, _ := a.Available().Uint64(); v != 400 {
		t.Fatalf("alice available = %d; want 400 while 600 is held", v)
	}
	// The hold counts against the balance: 500 more is an overdraft.
	if res := l.CreateTransfers([]Transfer{{ID: id(11), Debit: alice, Credit: bob, Amount: AmountOf(500)}}, 2, nil); len(res) != 1 || res[0].Code != ErrExceedsCredits {
		t.Fatalf("spend past hold = %v; want overdraft", res)
	}
	// Posting more than held is refused; a partial post releases the rest.
	if res := l.CreateTransfers([]Transfer{{ID: id(12), PendingID: id(10), Amount: AmountOf(601), Flags: FlagPostPending}}, 3, nil); len(res) != 1 || res[0].Code != ErrPostExceedsPending {
		t.Fatalf("over-post = %v; want ErrPostExceedsPending", res)
	}
	if res := l.CreateTransfers([]Transfer{{ID: id(12), PendingID: id(10), Debit: bob, Flags: FlagPostPending}}, 3, nil); len(res) != 1 || res[0].Code != ErrPendingAccountsDiffer {
		t.Fatalf("post with other account = %v", res)
	}
	must(t, l.CreateTransfers([]Transfer{{ID: id(12), PendingID: id(10), Amount: AmountOf(250), Flags: FlagPostPending}}, 3, nil))
	if got := balance(t, l, alice); got != 750 {
		t.Errorf("alice = %d after posting 250; want 750", got)
	}
	p, _ := l.Transfer(id(10))
	if p.State != StatePendingPosted || p.Posted != AmountOf(250) {
		t.Errorf("pending state = %v posted %v", p.State, p.Posted)
	}
	// A posted pending transfer never changes again.
	for _, f := range []TransferFlags{FlagPostPending, FlagVoidPending} {
		if res := l.CreateTransfers([]Transfer{{ID: id(13), PendingID: id(10), Flags: f}}, 4, nil); len(res) != 1 || res[0].Code != ErrPendingAlreadyPosted {
			t.Errorf("resolve a posted pending (%v) = %v; want already posted", f, res)
		}
	}
	// Void, then posting a voided transfer is refused.
	must(t, l.CreateTransfers([]Transfer{
		{ID: id(20), Debit: alice, Credit: aliceH, Amount: AmountOf(100), Flags: FlagPending},
		{ID: id(21), PendingID: id(20), Flags: FlagVoidPending},
	}, 5, nil))
	if res := l.CreateTransfers([]Transfer{{ID: id(22), PendingID: id(20), Flags: FlagPostPending}}, 6, nil); len(res) != 1 || res[0].Code != ErrPendingAlreadyVoided {
		t.Errorf("post a voided = %v; want ErrPendingAlreadyVoided", res)
	}
	if got := balance(t, l, alice); got != 750 {
		t.Errorf("alice = %d after void; want 750", got)
	}
	check(t, l)
}

func TestAccountsAndAssets(t *testing.T) {
	l := newTestLedger(t)
	tests := []struct {
		key  AccountKey
		want Code
	}{
		{AccountKey{Owner: 1, Asset: 99, Kind: KindAvailable}, ErrAssetUnknown},
		{AccountKey{Owner: 7, Asset: btc, Kind: KindAvailable}, ErrCustomerUnknown},
		{AccountKey{Owner: 1, Asset: btc, Kind: KindHouse}, ErrOwnerInvalid},
		{AccountKey{Owner: 1, Asset: btc, Kind: 0}, ErrKindInvalid},
		{AccountKey{Owner: 1, Asset: btc, Kind: 7}, ErrKindInvalid},
		{AccountKey{Owner: 7, Asset: btc, Kind: KindReceivable}, ErrCustomerUnknown},
		{alice, Exists},
		{AccountKey{Owner: 1, Asset: jpy, Kind: KindAvailable}, OK},
	}
	for _, tt := range tests {
		res := l.CreateAccounts([]AccountKey{tt.key}, nil)
		got := OK
		if len(res) > 0 {
			got = res[0].Code
		}
		if got != tt.want {
			t.Errorf("CreateAccounts(%v) = %v; want %v", tt.key, got, tt.want)
		}
	}
	assets := []struct {
		a    Asset
		want Code
	}{
		{Asset{ID: 0, Code: "X", Class: ClassChain}, ErrIDZero},
		{Asset{ID: 5, Code: "x", Class: ClassChain}, ErrAssetCodeInvalid},
		{Asset{ID: 5, Code: "TOOLONGCODE1", Class: ClassChain}, ErrAssetCodeInvalid},
		{Asset{ID: 5, Code: "ETH", Decimals: 31, Class: ClassChain}, ErrAssetDecimalsInvalid},
		{Asset{ID: 5, Code: "ETH", Decimals: 18, Class: 9}, ErrAssetClassInvalid},
		{Asset{ID: 5, Code: "BTC", Decimals: 8, Class: ClassChain}, ErrAssetCodeTaken},
		{Asset{ID: 1, Code: "BTC", Decimals: 7, Class: ClassChain}, ErrExistsWithDifferentFields},
		{Asset{ID: 5, Code: "ETH", Decimals: 18, Class: ClassChain}, OK},
	}
	for _, tt := range assets {
		res := l.CreateAssets([]Asset{tt.a}, nil)
		got := OK
		if len(res) > 0 {
			got = res[0].Code
		}
		if got != tt.want {
			t.Errorf("CreateAssets(%+v) = %v; want %v", tt.a, got, tt.want)
		}
	}
	if res := l.CreateCustomers([]OwnerID{0, OwnerHouseMin, 1, 3}, nil); len(res) != 3 || res[0].Code != ErrIDZero || res[1].Code != ErrOwnerInvalid || res[2].Code != Exists {
		t.Errorf("CreateCustomers = %v", res)
	}
	check(t, l)
}

func TestBatchBound(t *testing.T) {
	l := newTestLedger(t)
	res := l.CreateTransfers(make([]Transfer, MaxBatch+1), 1, nil)
	if len(res) != 1 || res[0].Code != ErrBatchTooLarge {
		t.Errorf("oversized batch = %v", res)
	}
}

func TestEventErrorIs(t *testing.T) {
	var err error = &EventError{Index: 3, Code: ErrExceedsCredits}
	if !errors.Is(err, ErrExceedsCredits) {
		t.Errorf("errors.Is(%v, ErrExceedsCredits) = false", err)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	l := newTestLedger(t)
	must(t, l.CreateTransfers([]Transfer{
		{ID: id(10), Debit: alice, Credit: wallet, Amount: AmountOf(600), Flags: FlagPending, Ref: 7, Code: 3},
		{ID: id(11), PendingID: id(10), Amount: AmountOf(100), Flags: FlagPostPending},
		{ID: id(12), Debit: alice, Credit: aliceH, Amount: AmountOf(5), Flags: FlagPending},
	}, 9, nil))
	var a bytes.Buffer
	bw := bufio.NewWriter(&a)
	if err := l.Encode(bw); err != nil {
		t.Fatal(err)
	}
	bw.Flush()
	l2, err := Decode(bufio.NewReader(bytes.NewReader(a.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	bw = bufio.NewWriter(&b)
	l2.Encode(bw)
	bw.Flush()
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("Decode(Encode(l)) encodes differently")
	}
	check(t, l2)
	// The decoded ledger behaves the same: post the open pending.
	must(t, l2.CreateTransfers([]Transfer{{ID: id(13), PendingID: id(12), Flags: FlagPostPending}}, 10, nil))
	// Truncations never decode.
	for _, n := range []int{0, 5, 8, 20, len(a.Bytes()) / 2, len(a.Bytes()) - 1} {
		if _, err := Decode(bufio.NewReader(bytes.NewReader(a.Bytes()[:n]))); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Decode(truncated to %d) = %v; want ErrCorrupt", n, err)
		}
	}
}

func TestAmount(t *testing.T) {
	max := Amount{Hi: ^uint64(0), Lo: ^uint64(0)}
	if _, o := max.Add(AmountOf(1)); !o {
		t.Error("max+1 did not overflow")
	}
	if _, b := AmountOf(1).Sub(AmountOf(2)); !b {
		t.Error("1-2 did not borrow")
	}
	for _, s := range []string{"0", "1", "18446744073709551616", "340282366920938463463374607431768211455"} {
		a, err := ParseAmount(s)
		if err != nil || a.String() != s {
			t.Errorf("ParseAmount(%q) = %v, %v", s, a, err)
		}
	}
	for _, s := range []string{"", "-1", "1.5", "1e9", "340282366920938463463374607431768211456", " 1"} {
		if _, err := ParseAmount(s); err == nil {
			t.Errorf("ParseAmount(%q) succeeded", s)
		}
	}
	fmts := []struct {
		v    uint64
		d    uint8
		want string
	}{{150000000, 8, "1.5"}, {1, 8, "0.00000001"}, {100, 0, "100"}, {0, 8, "0"}, {88549, 3, "88.549"}}
	for _, f := range fmts {
		if got := AmountOf(f.v).FormatDecimal(f.d); got != f.want {
			t.Errorf("FormatDecimal(%d, %d) = %s; want %s", f.v, f.d, got, f.want)
		}
	}
}

func FuzzAmountText(f *testing.F) {
	for _, s := range []string{"0", "12345", "340282366920938463463374607431768211455", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAmount(s)
		if err != nil {
			return
		}
		b, err := ParseAmount(a.String())
		if err != nil || a != b {
			t.Fatalf("round trip of %q: %v %v", s, b, err)
		}
	})
}

func FuzzDecode(f *testing.F) {
	l := New()
	l.CreateAssets([]Asset{{ID: 1, Code: "BTC", Decimals: 8, Class: ClassChain}}, nil)
	l.CreateCustomers([]OwnerID{1}, nil)
	l.CreateAccounts([]AccountKey{{Owner: 1, Asset: 1, Kind: KindAvailable}}, nil)
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	l.Encode(bw)
	bw.Flush()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := Decode(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		var out bytes.Buffer
		bw := bufio.NewWriter(&out)
		l.Encode(bw)
		bw.Flush()
		if !bytes.Equal(out.Bytes(), b[:out.Len()]) {
			t.Fatal("decoded ledger encodes differently")
		}
	})
}

// TestReceivable: what a customer owes is a debit-normal account of the
// customer: it grows by debits, is repaid by credits, and can never be
// credited below zero (an amount owed is never a negative liability).
func TestReceivable(t *testing.T) {
	l := newTestLedger(t)
	owes := AccountKey{Owner: 1, Asset: btc, Kind: KindReceivable}
	must(t, l.CreateAccounts([]AccountKey{owes}, nil))
	// A reversed deposit the customer no longer holds: the wallet never had
	// the coins, the customer owes them.
	must(t, l.CreateTransfers([]Transfer{{ID: id(10), Debit: owes, Credit: wallet, Amount: AmountOf(300)}}, 2, nil))
	if got := balance(t, l, owes); got != 300 {
		t.Fatalf("owed = %d; want 300", got)
	}
	check(t, l)
	// Repaid in part from the customer's available balance.
	must(t, l.CreateTransfers([]Transfer{{ID: id(11), Debit: alice, Credit: owes, Amount: AmountOf(200)}}, 3, nil))
	if got := balance(t, l, owes); got != 100 {
		t.Fatalf("owed after repaying 200 = %d; want 100", got)
	}
	// More than is owed is refused.
	res := l.CreateTransfers([]Transfer{{ID: id(12), Debit: alice, Credit: owes, Amount: AmountOf(101)}}, 4, nil)
	if len(res) != 1 || res[0].Code != ErrExceedsDebits {
		t.Fatalf("repaying more than owed = %+v; want %v", res, ErrExceedsDebits)
	}
	check(t, l)
}

// TestSignedBalance: a house account that paid out more than it took in is
// below zero, printed with its sign, never as 2^128 minus the amount.
func TestSignedBalance(t *testing.T) {
	for _, c := range []struct {
		kind               Kind
		debits, credits    uint64
		want, wantDecimals string
	}{
		{KindEquity, 150_000, 0, "-150000", "-0.0015"},
		{KindEquity, 0, 250_000_000, "250000000", "2.5"},
		{KindWallet, 100, 0, "100", "0.000001"},
		{KindWallet, 0, 100, "-100", "-0.000001"},
		{KindAvailable, 5, 5, "0", "0"},
	} {
		a := Account{Key: AccountKey{Owner: OwnerEquity, Asset: 2, Kind: c.kind}, DebitsPosted: AmountOf(c.debits), CreditsPosted: AmountOf(c.credits)}
		if got := a.SignedBalance().String(); got != c.want {
			t.Errorf("%s debits %d credits %d: SignedBalance = %s; want %s", c.kind, c.debits, c.credits, got, c.want)
		}
		if got := a.SignedBalance().FormatDecimal(8); got != c.wantDecimals {
			t.Errorf("%s: FormatDecimal = %s; want %s", c.kind, got, c.wantDecimals)
		}
	}
}
