package core

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain/eth/safe"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/people"
	"kinko/internal/withdraw"
)

const (
	gasETH      ledger.AssetID = 3
	gasHotOwner                = ledger.OwnerHouseMin + 111
	// gasWdFee is the ETH withdrawal fee of these tests: 0.001 ETH.
	gasWdFee = 1_000_000_000_000_000
	oneETH   = 1_000_000_000_000_000_000
)

var (
	gasSafe      = common.HexToAddress("0x5afe00000000000000000000000000000000a11e")
	gasMultiSend = common.HexToAddress("0x3a17153e4d000000000000000000000000000001")
)

// gasEnv is a core with ETH (18 decimals), a hot Safe wallet holding the
// customers' 2 ETH in the ledger, customers 1 and 2 with 1 ETH each,
// whitelisted addresses and intent keys cooled down, an ETH withdrawal fee
// of 0.001 ETH, and a gas EOA's key (registered by each test as it needs).
type gasEnv struct {
	*wdEnv
	dir string
	gas *ecdsa.PrivateKey
	// owners sign SafeTx hashes (the core does not check whose).
	owners [2]*ecdsa.PrivateKey
	seq    int
}

func newGasEnv(t *testing.T) *gasEnv {
	dir := t.TempDir()
	e := &gasEnv{wdEnv: &wdEnv{t: t, c: openCore(t, dir, 0), now: t0, keys: map[ledger.OwnerID]ed25519.PrivateKey{}}, dir: dir}
	t.Cleanup(func() { e.c.Close() })
	e.gas, _ = crypto.GenerateKey()
	e.owners[0], _ = crypto.GenerateKey()
	e.owners[1], _ = crypto.GenerateKey()
	creds := people.Credentials{PasswordHash: strings.Repeat("h", 30), TOTPSealed: strings.Repeat("s", 30)}
	e.must(CreateAssets{Assets: []ledger.Asset{{ID: gasETH, Code: "ETH", Decimals: 18, Class: ledger.ClassChain}}})
	for _, c := range founding(e.now) {
		e.must(c)
	}
	for _, cmd := range walletRegistered(custody.Wallet{ID: 11, Kind: custody.HotCustomer, Asset: gasETH, Descriptor: "hot-eth", Owner: gasHotOwner}, e.now) {
		e.must(cmd)
	}
	hot := ledger.AccountKey{Owner: gasHotOwner, Asset: gasETH, Kind: ledger.KindWallet}
	for i := ledger.OwnerID(1); i <= 2; i++ {
		e.must(SignUp{Customer: people.Customer{ID: i, Email: string(rune('a'+i)) + "@example.jp", Name: "c", Creds: creds}})
		e.must(SetKYC{Customer: i, KYC: people.KYCVerified, Actor: "aiko", Reason: "ok"})
		e.must(CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 3, Lo: uint64(i)}, Debit: hot, Credit: ledger.AccountKey{Owner: i, Asset: gasETH, Kind: ledger.KindAvailable}, Amount: ledger.AmountOf(oneETH)}}})
		pub, priv, _ := ed25519.GenerateKey(nil)
		e.keys[i] = priv
		e.must(RegisterIntentKey{Customer: i, PubKey: [32]byte(pub)})
		e.must(WhitelistAddress{Customer: i, Asset: "ETH", Address: gasPayee(i).Hex()})
	}
	eth := map[string]withdraw.Amount{"ETH": withdraw.AmountOf(oneETH)}
	e.setRules(withdraw.Rules{CoolDownSeconds: 24 * 3600, PerWithdrawalMax: eth, PerCustomerDay: eth, PerAssetHour: map[string]withdraw.Amount{"ETH": withdraw.AmountOf(2 * oneETH)},
		ApprovalAbove: eth, WithdrawalFee: map[string]withdraw.Amount{"ETH": withdraw.AmountOf(gasWdFee)}})
	e.now = t0.Add(25 * time.Hour)
	return e
}

func gasPayee(i ledger.OwnerID) common.Address {
	return common.BytesToAddress([]byte{0xE0 + byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19})
}

// register journals the gas EOA as ETH's gas account, funded with wei by
// a transaction of hash tx.
func (e *gasEnv) register(wei uint64, tx string) {
	e.t.Helper()
	e.must(RegisterGasAccount{Asset: "ETH", Address: crypto.PubkeyToAddress(e.gas.PublicKey).Hex()})
	e.must(FundGasAccount{Asset: "ETH", TxHash: tx, Amount: ledger.AmountOf(wei)})
}

// withdrawETH journals customer cust's withdrawal of wei to its address.
func (e *gasEnv) withdrawETH(cust ledger.OwnerID, wei uint64) withdraw.Withdrawal {
	e.t.Helper()
	e.seq++
	in := withdraw.Intent{RequestID: fmt.Sprintf("g%d", e.seq), Asset: "ETH", Address: gasPayee(cust).Hex(), Amount: withdraw.AmountOf(wei), Expiry: e.now.Add(time.Hour).Unix()}
	sig, _ := in.Sign(e.keys[cust])
	wd := e.must(RequestWithdrawal{Customer: cust, Intent: in, PubKey: [32]byte(e.keys[cust].Public().(ed25519.PublicKey)), Sig: sig}).(withdraw.Withdrawal)
	if wd.Status != withdraw.StatusQueued || wd.Fee != withdraw.AmountOf(gasWdFee) {
		e.t.Fatalf("withdrawal %s: %s, fee %s", wd.ID, wd.Status, wd.Fee)
	}
	return wd
}

// batch journals a SafeTx paying the withdrawals at nonce and its
// execTransaction signed by from (gas limit 500,000, fee cap 10 gwei),
// and returns the batch and that transaction.
func (e *gasEnv) batch(nonce int64, from *ecdsa.PrivateKey, wds ...withdraw.Withdrawal) (withdraw.Batch, *types.Transaction) {
	e.t.Helper()
	var calls []safe.Call
	var ids []string
	for _, wd := range wds {
		calls = append(calls, safe.Call{To: common.HexToAddress(wd.Intent.Address), Value: wd.Intent.Amount.Big()})
		ids = append(ids, wd.ID)
	}
	var tx *safe.SafeTx
	if len(calls) == 1 {
		tx = safe.Transfer(calls[0].To, calls[0].Value, big.NewInt(nonce))
	} else {
		var err error
		if tx, err = safe.Batch(gasMultiSend, calls, big.NewInt(nonce)); err != nil {
			e.t.Fatal(err)
		}
	}
	chainID := big.NewInt(1337)
	h, _ := tx.Hash(chainID, gasSafe)
	value := new(big.Int)
	if tx.Value != nil {
		value = tx.Value
	}
	b := withdraw.Batch{ID: "e-" + hex.EncodeToString(h[:8]), Asset: "ETH", Withdrawals: ids, TxID: [32]byte(h),
		Safe: &withdraw.SafeBatch{ChainID: 1337, Safe: gasSafe.Hex(), To: tx.To.Hex(), Value: value.String(),
			Data: "0x" + hex.EncodeToString(tx.Data), Operation: uint8(tx.Operation), Nonce: uint64(nonce),
			GasLimit: 500_000, MaxFeePerGas: "10000000000"}}
	// The gas bound is journaled before anyone signs: a bad one refused.
	for _, g := range []struct {
		limit uint64
		fee   string
	}{{0, "10000000000"}, {20_999, "10000000000"}, {500_000, ""}, {500_000, "0"}, {500_000, "-1"}, {500_000, "010"}, {1 << 40, strings.Repeat("9", 30)}} {
		bb := b
		sb := *b.Safe
		sb.GasLimit, sb.MaxFeePerGas = g.limit, g.fee
		bb.Safe = &sb
		if err := e.errOf(ReserveBatch{Batch: bb}); !errors.Is(err, ErrCommandInvalid) {
			e.t.Fatalf("a batch journaling gas %d at %q: %v", g.limit, g.fee, err)
		}
	}
	e.must(ReserveBatch{Batch: b})
	s1, _ := safe.Sign(h, e.owners[0])
	s2, _ := safe.Sign(h, e.owners[1])
	sigs, err := safe.EncodeSignatures(h, []safe.Signature{s1, s2})
	if err != nil {
		e.t.Fatal(err)
	}
	data, _ := safe.ExecCalldata(tx, sigs)
	to := gasSafe
	sign := func(gas uint64, feeCap int64) (*types.Transaction, string) {
		signed, err := types.SignTx(types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: uint64(e.seq), GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(feeCap),
			Gas: gas, To: &to, Data: data}), types.LatestSignerForChainID(chainID), from)
		if err != nil {
			e.t.Fatal(err)
		}
		bin, _ := signed.MarshalBinary()
		return signed, hex.EncodeToString(bin)
	}
	// Sent with more gas, or a higher fee cap, than journaled: refused.
	for _, g := range []struct {
		gas uint64
		fee int64
	}{{500_001, 10e9}, {500_000, 10e9 + 1}, {400_000, 10e9}} {
		if _, raw := sign(g.gas, g.fee); !errors.Is(e.errOf(RecordSigned{Batch: b.ID, RawTx: raw}), ErrCommandInvalid) {
			e.t.Fatalf("an execTransaction with gas %d at %d wei recorded", g.gas, g.fee)
		}
	}
	signed, raw := sign(500_000, 10e9)
	e.must(RecordSigned{Batch: b.ID, RawTx: raw})
	return b, signed
}

// errOf submits cmd and returns its refusal, if any.
func (e *gasEnv) errOf(cmd Command) error {
	e.t.Helper()
	o := e.do(cmd)
	return o.EventErr()
}

// gasOf is a gas report of tx: gas used at price, its product as wei.
func gasOf(tx *types.Transaction, used uint64, price int64) *withdraw.GasSpent {
	wei := new(big.Int).Mul(new(big.Int).SetUint64(used), big.NewInt(price))
	return &withdraw.GasSpent{Tx: tx.Hash().Hex(), GasUsed: used, Price: fmt.Sprint(price), Wei: wei.String()}
}

// books is the figures the tests compare, in wei (decimal).
type books struct {
	gas, equity, house, hot, avail1, avail2, held1, held2 string
	batch                                                 withdraw.BatchStatus
	gasRecorded                                           string
}

func (e *gasEnv) books(batch string) books {
	var bk books
	e.c.Read(func(s *State) {
		bal := func(k ledger.AccountKey) string {
			a, _ := s.Ledger.Account(k)
			return a.SignedBalance().String()
		}
		// What the customer may still use: posted less held pending.
		free := func(k ledger.AccountKey) string {
			a, _ := s.Ledger.Account(k)
			return a.Available().String()
		}
		bk = books{gas: bal(GasAccountKey(gasETH)), equity: bal(ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: gasETH, Kind: ledger.KindEquity}),
			house: bal(house(gasETH)), hot: bal(ledger.AccountKey{Owner: gasHotOwner, Asset: gasETH, Kind: ledger.KindWallet}),
			avail1: free(avail(1, gasETH)), avail2: free(avail(2, gasETH)), held1: bal(held(1, gasETH)), held2: bal(held(2, gasETH))}
		if b, ok := s.Withdraw.Batch(batch); ok {
			bk.batch = b.Status
			if b.Gas != nil {
				bk.gasRecorded = b.Gas.Wei
			}
		}
	})
	return bk
}

func wantBooks(t *testing.T, what string, got, want books) {
	t.Helper()
	if got != want {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// TestEthGasLedger: a confirmed Ether batch of two withdrawals moves
// exactly the reported gas (gas used × effective price, wei) out of the
// house gas account against equity, and each customer's withdrawal fee
// to the house; the same confirmation again changes nothing; other
// figures for it are refused; every bad gas report is refused with
// nothing done; a restart replays to the same books.
func TestEthGasLedger(t *testing.T) {
	e := newGasEnv(t)
	fund := "0x" + strings.Repeat("ab", 32)
	e.register(500_000_000_000_000_000, fund) // 0.5 ETH
	w1, w2 := e.withdrawETH(1, 300_000_000_000_000_000), e.withdrawETH(2, 250_000_000_000_000_000)
	b, tx := e.batch(0, e.gas, w1, w2)
	start := e.books(b.ID)
	wantBooks(t, "after the request", start, books{gas: "500000000000000000", equity: "500000000000000000", house: "0", hot: "2000000000000000000",
		avail1: "699000000000000000", avail2: "749000000000000000", held1: "0", held2: "0", batch: withdraw.BatchBroadcast})

	// Bad reports, each refused with a clear error and nothing done.
	other, _ := types.SignTx(types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 99, GasFeeCap: big.NewInt(1), Gas: 21_000}), types.LatestSignerForChainID(big.NewInt(1337)), e.gas)
	bad := map[string]*withdraw.GasSpent{
		"gas used above the journaled gas limit": gasOf(tx, 500_001, 7),
		"gas used below any transaction's":       gasOf(tx, 20_999, 7),
		"a price above the journaled fee cap":    gasOf(tx, 200_000, 10_000_000_001),
		"wei not gas used × price":               {Tx: tx.Hash().Hex(), GasUsed: 200_000, Price: "7", Wei: "1400001"},
		"a negative price":                       {Tx: tx.Hash().Hex(), GasUsed: 200_000, Price: "-7", Wei: "1400000"},
		"a negative wei":                         {Tx: tx.Hash().Hex(), GasUsed: 200_000, Price: "7", Wei: "-1400000"},
		"a price with a leading zero":            {Tx: tx.Hash().Hex(), GasUsed: 200_000, Price: "07", Wei: "1400000"},
		"a price with a sign":                    {Tx: tx.Hash().Hex(), GasUsed: 200_000, Price: "+7", Wei: "1400000"},
		"a malformed wei":                        {Tx: tx.Hash().Hex(), GasUsed: 200_000, Price: "7", Wei: "1.4e6"},
		"an empty price":                         {Tx: tx.Hash().Hex(), GasUsed: 200_000, Price: "", Wei: "0"},
		"another transaction's receipt":          gasOf(other, 21_000, 1),
		"an upper-case hash":                     {Tx: strings.ToUpper(tx.Hash().Hex()), GasUsed: 200_000, Price: "7", Wei: "1400000"},
	}
	for what, g := range bad {
		if err := e.errOf(ConfirmBatch{TxID: b.TxID, Height: 9, Gas: g}); !errors.Is(err, ErrGasInvalid) {
			t.Errorf("%s: %v; want ErrGasInvalid", what, err)
		} else {
			t.Logf("%s: %v", what, err)
		}
		wantBooks(t, what+": the books", e.books(b.ID), start)
	}

	// The right one: 194,179 gas at 1,000,000,007 wei.
	g := gasOf(tx, 194_179, 1_000_000_007)
	e.must(ConfirmBatch{TxID: b.TxID, Height: 9, Gas: g})
	gasWei := new(big.Int).Mul(big.NewInt(194_179), big.NewInt(1_000_000_007))
	gasLeft := new(big.Int).Sub(big.NewInt(500_000_000_000_000_000), gasWei)
	after := books{gas: gasLeft.String(), equity: gasLeft.String(), house: fmt.Sprint(2 * gasWdFee),
		hot: "1450000000000000000", avail1: "699000000000000000", avail2: "749000000000000000", held1: "0", held2: "0",
		batch: withdraw.BatchConfirmed, gasRecorded: gasWei.String()}
	wantBooks(t, "confirmed", e.books(b.ID), after)

	// Idempotent: the same confirmation, with or without its gas, again.
	e.must(ConfirmBatch{TxID: b.TxID, Height: 9, Gas: g})
	e.must(ConfirmBatch{TxID: b.TxID, Height: 9})
	wantBooks(t, "confirmed again", e.books(b.ID), after)
	// Other figures for a batch whose gas is recorded: refused.
	if err := e.errOf(ConfirmBatch{TxID: b.TxID, Height: 9, Gas: gasOf(tx, 194_180, 1_000_000_007)}); !errors.Is(err, ErrGasInvalid) {
		t.Fatalf("other gas for a recorded batch: %v", err)
	}
	wantBooks(t, "other gas refused", e.books(b.ID), after)

	// A negative gas used does not decode.
	if _, err := DecodeCommand(uint16(KindConfirmBatch), []byte(`{"TxID":[`+strings.Repeat("0,", 31)+`0],"Height":1,"Gas":{"tx":"0x","gas_used":-1,"price":"1","wei":"1"}}`)); err == nil {
		t.Fatal("a negative gas used decoded")
	}

	// The fee is held with the amount: a withdrawal of everything the
	// customer has left, with no room for the fee, holds nothing.
	in := withdraw.Intent{RequestID: "all", Asset: "ETH", Address: gasPayee(1).Hex(), Amount: withdraw.AmountOf(699_000_000_000_000_000), Expiry: e.now.Add(time.Hour).Unix()}
	sig, _ := in.Sign(e.keys[1])
	if err := e.errOf(RequestWithdrawal{Customer: 1, Intent: in, PubKey: [32]byte(e.keys[1].Public().(ed25519.PublicKey)), Sig: sig}); err == nil {
		t.Fatal("a withdrawal whose fee the customer cannot pay was accepted")
	}
	wantBooks(t, "a withdrawal without room for its fee", e.books(b.ID), after)

	// Replayed from the journal: the same books.
	e.c.Close()
	e.c = openCore(t, e.dir, 0)
	wantBooks(t, "replayed", e.books(b.ID), after)
}

// TestEthGasWatcherFirstAndFailed: a batch the watcher confirmed without
// gas gets its gas from the signer's confirmation after, once; a failed
// batch's gas is recorded with its failure (the customers' holds, fees
// included, voided: they pay nothing), and again is a no-op.
func TestEthGasWatcherFirstAndFailed(t *testing.T) {
	e := newGasEnv(t)
	e.register(3_000_000_000_000_000, "0x"+strings.Repeat("01", 32))
	w1 := e.withdrawETH(1, 100_000_000_000_000_000)
	b, tx := e.batch(0, e.gas, w1)
	e.must(ConfirmBatch{TxID: b.TxID, Height: 5})
	bk := e.books(b.ID)
	if bk.gas != "3000000000000000" || bk.batch != withdraw.BatchConfirmed || bk.gasRecorded != "" || bk.house != fmt.Sprint(gasWdFee) {
		t.Fatalf("confirmed without gas: %+v", bk)
	}
	g := gasOf(tx, 73_855, 3_000_000_000)
	e.must(ConfirmBatch{TxID: b.TxID, Height: 5, Gas: g})
	e.must(ConfirmBatch{TxID: b.TxID, Height: 5, Gas: g})
	if bk := e.books(b.ID); bk.gas != fmt.Sprint(3_000_000_000_000_000-73_855*3_000_000_000) || bk.gasRecorded != fmt.Sprint(73_855*3_000_000_000) {
		t.Fatalf("gas after the watcher's confirmation: %+v", bk)
	}

	// A failed batch (its call failed: ExecutionFailure): holds voided, gas recorded.
	w2 := e.withdrawETH(2, 200_000_000_000_000_000)
	b2, tx2 := e.batch(1, e.gas, w2)
	before := e.books(b2.ID)
	if before.avail2 != fmt.Sprint(oneETH-200_000_000_000_000_000-gasWdFee) {
		t.Fatalf("customer 2 while held: %s", before.avail2)
	}
	// Above what the gas account holds in the ledger (its funding not
	// recorded): refused, nothing done.
	if err := e.errOf(FailBatch{Batch: b2.ID, Reason: "call failed", Gas: gasOf(tx2, 499_000, 10_000_000_000)}); !errors.Is(err, ErrGasInvalid) {
		t.Fatalf("gas above the account's ledger balance: %v", err)
	}
	wantBooks(t, "gas above the balance refused", e.books(b2.ID), before)
	g2 := gasOf(tx2, 45_000, 2_000_000_000)
	e.must(FailBatch{Batch: b2.ID, Reason: "the Safe's call failed", Gas: g2})
	gasLeft := 3_000_000_000_000_000 - 73_855*3_000_000_000 - 45_000*2_000_000_000
	want := before
	want.gas, want.equity, want.avail2, want.batch, want.gasRecorded = fmt.Sprint(gasLeft), fmt.Sprint(gasLeft), fmt.Sprint(oneETH), withdraw.BatchFailed, fmt.Sprint(45_000*2_000_000_000)
	wantBooks(t, "failed with its gas", e.books(b2.ID), want)
	e.must(FailBatch{Batch: b2.ID, Reason: "the Safe's call failed", Gas: g2})
	wantBooks(t, "failed again", e.books(b2.ID), want)
	if err := e.errOf(FailBatch{Batch: b2.ID, Reason: "again"}); !errors.Is(err, withdraw.ErrBatchState) {
		t.Fatalf("a failed batch failed again without gas: %v", err)
	}
}

// TestEthGasRefusals: gas reported with no gas account registered, or for
// a transaction another key sent, is refused with nothing done; the gas
// account's registration and funding refuse bad input.
func TestEthGasRefusals(t *testing.T) {
	e := newGasEnv(t)
	w1 := e.withdrawETH(1, 100_000_000_000_000_000)
	b, tx := e.batch(0, e.gas, w1)
	before := e.books(b.ID)
	if err := e.errOf(ConfirmBatch{TxID: b.TxID, Height: 3, Gas: gasOf(tx, 50_000, 7)}); !errors.Is(err, ErrGasAccountUnknown) {
		t.Fatalf("gas without a gas account: %v", err)
	}
	wantBooks(t, "no gas account", e.books(b.ID), before)
	if err := e.errOf(FundGasAccount{Asset: "ETH", TxHash: "0x" + strings.Repeat("02", 32), Amount: ledger.AmountOf(1)}); !errors.Is(err, ErrGasAccountUnknown) {
		t.Fatalf("funding without a gas account: %v", err)
	}

	addr := crypto.PubkeyToAddress(e.gas.PublicKey).Hex()
	for what, c := range map[string]RegisterGasAccount{
		"lower-case address": {Asset: "ETH", Address: strings.ToLower(addr)},
		"short address":      {Asset: "ETH", Address: addr[:40]},
		"zero address":       {Asset: "ETH", Address: common.Address{}.Hex()},
		"unknown asset":      {Asset: "XRP", Address: addr},
	} {
		if err := e.errOf(c); err == nil {
			t.Errorf("register %s: accepted", what)
		}
	}
	e.register(1_000_000_000_000_000, "0x"+strings.Repeat("03", 32))
	if err := e.errOf(RegisterGasAccount{Asset: "ETH", Address: addr}); !errors.Is(err, withdraw.ErrGasAccountExists) {
		t.Fatalf("a second gas account: %v", err)
	}
	for what, c := range map[string]FundGasAccount{
		"the same transaction again": {Asset: "ETH", TxHash: "0x" + strings.Repeat("03", 32), Amount: ledger.AmountOf(5)},
		"0 wei":                      {Asset: "ETH", TxHash: "0x" + strings.Repeat("04", 32)},
		"a short hash":               {Asset: "ETH", TxHash: "0x1234", Amount: ledger.AmountOf(5)},
		"an upper-case hash":         {Asset: "ETH", TxHash: "0x" + strings.Repeat("AB", 32), Amount: ledger.AmountOf(5)},
	} {
		if err := e.errOf(c); err == nil {
			t.Errorf("fund %s: accepted", what)
		}
	}
	if bk := e.books(b.ID); bk.gas != "1000000000000000" {
		t.Fatalf("gas account after refused fundings: %s", bk.gas)
	}
	// A negative funding does not decode.
	if _, err := DecodeCommand(uint16(KindFundGasAccount), []byte(`{"Asset":"ETH","TxHash":"0x`+strings.Repeat("05", 32)+`","Amount":"-5"}`)); err == nil {
		t.Fatal("a negative funding decoded")
	}

	// The journaled transaction sent by another key: its gas is not the
	// gas account's.
	thief, _ := crypto.GenerateKey()
	w2 := e.withdrawETH(2, 100_000_000_000_000_000)
	b2, tx2 := e.batch(1, thief, w2)
	before = e.books(b2.ID)
	if err := e.errOf(ConfirmBatch{TxID: b2.TxID, Height: 4, Gas: gasOf(tx2, 50_000, 7)}); !errors.Is(err, ErrGasInvalid) || !strings.Contains(err.Error(), "not the gas account") {
		t.Fatalf("gas of another sender's transaction: %v", err)
	}
	wantBooks(t, "another sender", e.books(b2.ID), before)
}

// TestEthGasAccountRequest: the gas account registered by a
// register_gas_account request: a bad payload refused when filed (nothing
// open), one admin deciding her own request refused, a second admin's
// approval registers it and opens its ledger account; a funding with its
// block is kept in the state (fund_gas_account's Height), a negative
// block refused, and the journal replayed and the snapshot restored give
// the same fundings.
func TestEthGasAccountRequest(t *testing.T) {
	e := newGasEnv(t)
	addr := crypto.PubkeyToAddress(e.gas.PublicKey).Hex()
	open := func() int {
		n := 0
		e.c.Read(func(s *State) {
			for _, r := range s.People.Requests() {
				if r.Kind == KindRegisterGasAccountRequest && r.State == people.RequestPending {
					n++
				}
			}
		})
		return n
	}
	for what, p := range map[string]RegisterGasAccountPayload{
		"zero address":    {Asset: "ETH", Address: common.Address{}.Hex()},
		"lower-case":      {Asset: "ETH", Address: strings.ToLower(addr)},
		"unknown asset":   {Asset: "XRP", Address: addr},
		"no address":      {Asset: "ETH"},
		"a short address": {Asset: "ETH", Address: addr[:41]},
	} {
		cmds := twoPersonBy(KindRegisterGasAccountRequest, p, "aiko", "ren", people.RoleAdmin, e.now)
		if o := e.do(cmds[0]); o.Err == nil {
			t.Errorf("request with %s: filed", what)
		}
	}
	if n := open(); n != 0 {
		t.Fatalf("%d requests open after bad ones", n)
	}
	self := twoPersonBy(KindRegisterGasAccountRequest, RegisterGasAccountPayload{Asset: "ETH", Address: addr}, "aiko", "aiko", people.RoleAdmin, e.now)
	if o := e.do(self[0]); o.Err != nil {
		t.Fatalf("filing: %v", o.Err)
	}
	if o := e.do(self[1]); o.Err == nil {
		t.Fatal("the requester approved her own register_gas_account")
	}
	e.c.Read(func(s *State) {
		if _, ok := s.Withdraw.GasAccountOf("ETH"); ok {
			t.Fatal("one admin alone registered the gas account")
		}
	})
	for _, c := range twoPersonBy(KindRegisterGasAccountRequest, RegisterGasAccountPayload{Asset: "ETH", Address: addr}, "aiko", "ren", people.RoleAdmin, e.now) {
		if o := e.do(c); o.Err != nil {
			t.Fatalf("%s: %v", c.Kind(), o.Err)
		}
	}
	tx := "0x" + strings.Repeat("0a", 32)
	if err := e.errOf(FundGasAccount{Asset: "ETH", TxHash: tx, Amount: ledger.AmountOf(7), Height: -1}); err == nil {
		t.Fatal("a funding at block -1 accepted")
	}
	e.must(FundGasAccount{Asset: "ETH", TxHash: tx, Amount: ledger.AmountOf(7), Height: 42})
	want := []withdraw.GasFunding{{Tx: tx, Amount: withdraw.AmountOf(7), Height: 42}}
	fundings := func(c *Core) []withdraw.GasFunding {
		var fs []withdraw.GasFunding
		c.Read(func(s *State) {
			g, ok := s.Withdraw.GasAccountOf("ETH")
			if !ok || g.Address != addr {
				t.Fatalf("gas account %+v, %v", g, ok)
			}
			if a, ok := s.Ledger.Account(GasAccountKey(gasETH)); !ok || a.Balance() != ledger.AmountOf(7) {
				t.Fatalf("the gas account's ledger account %+v, %v", a, ok)
			}
			fs = g.Fundings
		})
		return fs
	}
	if got := fundings(e.c); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fundings %+v; want %+v", got, want)
	}
	if err := e.c.Snapshot(); err != nil {
		t.Fatal(err)
	}
	e.c.Close()
	e.c = openCore(t, e.dir, 0)
	if got := fundings(e.c); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fundings after a restart %+v; want %+v", got, want)
	}
}
