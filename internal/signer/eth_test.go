package signer

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/devnet"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/chain/eth/safe/safetest"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/cosigner"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/mtls"
	"kinko/internal/operators"
	"kinko/internal/people"
	"kinko/internal/watch"
	"kinko/internal/withdraw"
)

// milli returns m thousandths of one ether, in wei.
func milli(m int64) *big.Int { return new(big.Int).Mul(big.NewInt(m), big.NewInt(1e15)) }

const ethAsset ledger.AssetID = 3

// ethWdFee is the ETH withdrawal fee of these tests: 0.001 ETH, in wei.
const ethWdFee = 1_000_000_000_000_000

// ethHotOwner owns the hot Safe's ledger account (custody wallet 11).
const ethHotOwner = ledger.OwnerHouseMin + 111

// ethE2E is a geth dev node with the Safe contracts (SafeL2), a hot Safe
// 2-of-3 (hot signer, co-signer, offline backup) holding 5 ETH and a cold
// Safe of three offline owners holding 95 ETH; a core with ether, the
// hot and cold Safes registered in custody, three customers holding the
// hot Safe's 5 ETH in the ledger with whitelisted Ethereum addresses; the
// co-signer as its real mutual-TLS server, fed the journal, past its
// cool-down; the hot signer with hot key #1 and the house gas account,
// registered in the core with its funding (1 ETH, by the funding
// transaction's hash); an ETH withdrawal fee of ethWdFee.
type ethE2E struct {
	ctx  context.Context
	node *devnet.Node
	c    *eth.Client
	d    *safe.Deployment
	gas  *ecdsa.PrivateKey // deploys and funds the test's contracts
	// exec is the house gas account: it sends execTransaction and pays
	// its gas, registered and funded in the core.
	exec                     *ecdsa.PrivateKey
	hotKey, coKey, backupKey *ecdsa.PrivateKey
	descs                    []string // custody descriptors of the Safes newSafe made, in order
	hot, cold                common.Address
	reverter                 common.Address // a contract that refuses ether
	core                     *core.Core
	cs                       *cosigner.Cosigner
	csURL, tdir              string
	co                       followSafe
	intent                   map[ledger.OwnerID]ed25519.PrivateKey
	seq                      int
}

func ethPayee(i ledger.OwnerID) common.Address {
	return common.BytesToAddress(bytes.Repeat([]byte{0xE0 + byte(i)}, 20))
}

// followSafe lets the co-signer read the journal up to the batch, then
// asks it over its HTTP route.
type followSafe struct {
	l *Local
	r *Remote
}

func (f followSafe) CoSignSafeTx(ctx context.Context, req cosigner.SafeTxRequest) (safe.Signature, error) {
	if err := f.l.Follow(); err != nil {
		return safe.Signature{}, err
	}
	return f.r.CoSignSafeTx(ctx, req)
}

// ethLimits are the co-signer's ETH limits of the tests.
const ethLimits = `"per_customer_hour":2000000000000000000,"per_customer_day":4000000000000000000,"per_asset_hour":3000000000000000000,"per_asset_day":6000000000000000000,
    "fee_max":10000000000000000,"fee_hour":50000000000000000,"fee_day":100000000000000000,"tx_hour":10,"tx_day":20,"yen_per_coin":500000,"decimals":18}},
  "all_assets":{"yen_hour":30000000,"yen_day":60000000,"tx_hour":20,"tx_day":40}`

func newEthE2E(t testing.TB) *ethE2E { return newEthE2EWith(t, ethLimits) }

// newEthE2EWith is newEthE2E with the co-signer's limits given: the ETH
// limits' body after "limits":{"ETH":{, and all_assets.
func newEthE2EWith(t testing.TB, limits string) *ethE2E {
	return newEthE2ESetup(t, ethSetup{limits: limits, hotMilli: 5_000, custMilli: map[ledger.OwnerID]int64{1: 1_500, 2: 1_500, 3: 2_000}, coreMaxMilli: 5_000})
}

// ethSetup is what an ethE2E is made with: the co-signer's limits (as
// newEthE2EWith takes them), the hot Safe's ether and the customers'
// share of it in the ledger (thousandths of ETH), and the core's amount
// limits of ETH (each of the four, thousandths).
type ethSetup struct {
	limits       string
	hotMilli     int64
	custMilli    map[ledger.OwnerID]int64
	coreMaxMilli int64
}

// weiAmount is wei as the ledger's 128-bit amount.
func weiAmount(t testing.TB, wei *big.Int) ledger.Amount {
	t.Helper()
	a, err := withdraw.AmountFromBig(wei)
	if err != nil {
		t.Fatal(err)
	}
	return a.Ledger()
}

func newEthE2ESetup(t testing.TB, setup ethSetup) *ethE2E {
	limits := setup.limits
	art, err := safe.LoadInstalled()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	n := devnet.New(t, devnet.Options{})
	e := &ethE2E{ctx: ctx, node: n, c: n.Client(), intent: map[ledger.OwnerID]ed25519.PrivateKey{}}
	if e.gas, err = n.NewKey(ctx, milli(100_000)); err != nil {
		t.Fatal(err)
	}
	if e.d, err = safe.Deploy(ctx, e.c, e.gas, art, safe.L2); err != nil {
		t.Fatal(err)
	}
	e.hotKey, _ = crypto.GenerateKey()
	e.coKey, _ = crypto.GenerateKey()
	e.backupKey, _ = crypto.GenerateKey()
	e.hot = e.newSafe(t, 1, milli(setup.hotMilli), e.hotKey, e.coKey, e.backupKey)
	var cold []*ecdsa.PrivateKey
	for range 3 {
		k, _ := crypto.GenerateKey()
		cold = append(cold, k)
	}
	e.cold = e.newSafe(t, 2, milli(95_000), cold...)
	// A contract whose code is PUSH1 0 PUSH1 0 REVERT: it refuses ether.
	r, err := e.c.Send(ctx, e.gas, eth.Tx{Data: common.FromHex("0x600580600b6000396000f360006000fd"), Gas: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	e.reverter = r.ContractAddress
	e.exec, _ = crypto.GenerateKey()
	funding, err := n.Fund(ctx, crypto.PubkeyToAddress(e.exec.PublicKey), milli(1_000))
	if err != nil {
		t.Fatal(err)
	}

	// The core, its entries dated two days ago (past its cool-downs).
	e.core, err = core.Open(ctx, core.Config{Dir: t.TempDir(), CheckInvariants: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.core.Close() })
	t0 := time.Now().Add(-48 * time.Hour)
	e.submit(t, t0, core.CreateAssets{Assets: []ledger.Asset{{ID: ethAsset, Code: "ETH", Decimals: 18, Class: ledger.ClassChain}}})
	team := operators.Crew("ether signer test")
	for _, cmd := range team.Bootstrap(t0) {
		e.submit(t, t0, cmd)
	}
	eth5 := map[string]withdraw.Amount{"ETH": withdraw.Amount(weiAmount(t, milli(setup.coreMaxMilli)))}
	for _, cmd := range team.Approved(core.KindSetWithdrawalRulesRequest, core.SetWithdrawalRulesPayload{Rules: withdraw.Rules{CoolDownSeconds: 3600,
		PerWithdrawalMax: eth5, PerCustomerDay: eth5, PerAssetHour: eth5, ApprovalAbove: eth5, WithdrawalFee: map[string]withdraw.Amount{"ETH": withdraw.AmountOf(ethWdFee)}}}, "aiko", "ren", people.RoleAdmin, "test", t0) {
		e.submit(t, t0, cmd)
	}
	e.submit(t, t0, core.RegisterGasAccount{Asset: "ETH", Address: crypto.PubkeyToAddress(e.exec.PublicKey).Hex()})
	e.submit(t, t0, core.FundGasAccount{Asset: "ETH", TxHash: funding.TxHash.Hex(), Amount: ledger.AmountOf(milli(1_000).Uint64())})
	for _, cmd := range team.RegisterWallets(t0,
		custody.Wallet{ID: 11, Kind: custody.HotCustomer, Asset: ethAsset, Descriptor: e.descs[0], Owner: ethHotOwner},
		custody.Wallet{ID: 12, Kind: custody.ColdCustomer, Asset: ethAsset, Descriptor: e.descs[1], Owner: ledger.OwnerHouseMin + 112}) {
		e.submit(t, t0, cmd)
	}
	creds := people.Credentials{PasswordHash: strings.Repeat("h", 30), TOTPSealed: strings.Repeat("s", 30)}
	for i, m := range setup.custMilli {
		e.submit(t, t0, core.SignUp{Customer: people.Customer{ID: i, Email: string(rune('a'+i)) + "@x.jp", Name: "c", Creds: creds}})
		e.submit(t, t0, core.SetKYC{Customer: i, KYC: people.KYCVerified, Actor: "aiko", Reason: "ok"})
		pub, priv, _ := ed25519.GenerateKey(nil)
		e.intent[i] = priv
		e.submit(t, t0, core.RegisterIntentKey{Customer: i, PubKey: [32]byte(pub)})
		e.submit(t, t0, core.WhitelistAddress{Customer: i, Asset: "ETH", Address: ethPayee(i).Hex()})
		cust := ledger.AccountKey{Owner: i, Asset: ethAsset, Kind: ledger.KindAvailable}
		e.submit(t, t0, core.CreateAccounts{Keys: []ledger.AccountKey{cust}})
		e.submit(t, t0, core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 3, Lo: uint64(i)},
			Debit: ledger.AccountKey{Owner: ethHotOwner, Asset: ethAsset, Kind: ledger.KindWallet}, Credit: cust, Amount: weiAmount(t, milli(m))}}})
	}
	e.submit(t, t0, core.WhitelistAddress{Customer: 3, Asset: "ETH", Address: e.reverter.Hex()})

	// The co-signer: its policy pins the hot Safe, the chain and the
	// MultiSendCallOnly; its clock is a day on once it has read the
	// journal, so the addresses have cooled down by its own count.
	pol, err := cosigner.ParsePolicy([]byte(fmt.Sprintf(`{"cooldown":"24h",
  "safes":[{"name":"hot-eth","kind":"hot-customer","asset":"ETH","chain_id":%d,"address":%q,"multisend":%q},
    {"name":"cold-eth","kind":"cold-customer","asset":"ETH","chain_id":%d,"address":%q,"multisend":%q}],
  "limits":{"ETH":{%s}`,
		e.d.ChainID, e.hot.Hex(), e.d.MultiSendCallOnly.Hex(), e.d.ChainID, e.cold.Hex(), e.d.MultiSendCallOnly.Hex(), limits)), &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	var offset atomic.Int64
	e.cs, err = cosigner.Open(cosigner.Config{Net: &chaincfg.RegressionNetParams, Policy: pol, StateDir: t.TempDir(), NoSync: true,
		Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }, EthKey: e.coKey, EthNode: e.c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cs.Close() })
	if err := e.cs.VerifySafes(ctx, art); err != nil {
		t.Fatal(err)
	}
	local := &Local{C: e.cs, Core: e.core}
	if err := local.Follow(); err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(25 * time.Hour))
	e.csURL, e.tdir = serveCosigner(t, e.cs)
	ccfg, _ := mtls.Client(e.tdir)
	e.co = followSafe{local, NewRemote(e.csURL, ccfg)}
	return e
}

func (e *ethE2E) submit(t testing.TB, at time.Time, cmd core.Command) core.Outcome {
	t.Helper()
	o, err := e.core.Do(e.ctx, at, cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd.Kind(), err)
	}
	return o
}

func (e *ethE2E) newSafe(t testing.TB, salt int64, fund *big.Int, owners ...*ecdsa.PrivateKey) common.Address {
	t.Helper()
	e.descs = append(e.descs, safetest.Descriptor(e.d, safetest.Owners(owners...)).String())
	a, err := safetest.Funded(e.ctx, e.node, e.d, e.gas, salt, fund, safetest.Owners(owners...))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// withdraw journals a customer's signed withdrawal of wei to addr now.
func (e *ethE2E) withdraw(t testing.TB, cust ledger.OwnerID, addr common.Address, wei *big.Int) string {
	t.Helper()
	e.seq++
	in := withdraw.Intent{RequestID: fmt.Sprintf("r%d", e.seq), Asset: "ETH", Address: addr.Hex(), Amount: withdraw.Amount(weiAmount(t, wei)), Expiry: time.Now().Add(48 * time.Hour).Unix()}
	sig, _ := in.Sign(e.intent[cust])
	o := e.submit(t, time.Now(), core.RequestWithdrawal{Customer: cust, Intent: in, PubKey: [32]byte(e.intent[cust].Public().(ed25519.PublicKey)), Sig: sig})
	wd := o.Value.(withdraw.Withdrawal)
	if wd.Status != withdraw.StatusQueued {
		t.Fatalf("withdrawal %s is %s", wd.ID, wd.Status)
	}
	return wd.ID
}

func (e *ethE2E) signer(t testing.TB, hook func() error) *EthSigner {
	t.Helper()
	s, err := NewEth(EthConfig{Backend: InProcess{Core: e.core}, Node: e.c, ChainID: e.d.ChainID.Uint64(), Safe: e.hot, MultiSend: e.d.MultiSendCallOnly,
		Key: e.hotKey, Gas: e.exec, CoSigner: e.co, GasLimit: 500_000, MaxFeePerGas: big.NewInt(10_000_000_000), beforeSend: hook})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *ethE2E) balance(t testing.TB, a common.Address) *big.Int {
	t.Helper()
	v, err := e.c.Balance(e.ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// ledgerWei is an account's balance in the ledger, in wei.
func (e *ethE2E) ledgerWei(k ledger.AccountKey) *big.Int {
	var v ledger.Amount
	e.core.Read(func(s *core.State) {
		if a, ok := s.Ledger.Account(k); ok {
			v = a.Balance()
		}
	})
	return new(big.Int).Add(new(big.Int).Lsh(new(big.Int).SetUint64(v.Hi), 64), new(big.Int).SetUint64(v.Lo))
}

func (e *ethE2E) hotLedger() *big.Int {
	return e.ledgerWei(ledger.AccountKey{Owner: ethHotOwner, Asset: ethAsset, Kind: ledger.KindWallet})
}

// gasLedger is the house gas account's ledger account, in wei.
func (e *ethE2E) gasLedger() *big.Int { return e.ledgerWei(core.GasAccountKey(ethAsset)) }

// gasChain is the house gas account's balance on the node.
func (e *ethE2E) gasChain(t testing.TB) *big.Int {
	return e.balance(t, crypto.PubkeyToAddress(e.exec.PublicKey))
}

// feeLedger is the house's ETH account: the withdrawal fees it earned.
func (e *ethE2E) feeLedger() *big.Int {
	return e.ledgerWei(ledger.AccountKey{Owner: ledger.OwnerHouse, Asset: ethAsset, Kind: ledger.KindHouse})
}

func (e *ethE2E) custLedger(i ledger.OwnerID) *big.Int {
	return e.ledgerWei(ledger.AccountKey{Owner: i, Asset: ethAsset, Kind: ledger.KindAvailable})
}

func (e *ethE2E) batch(t testing.TB, id string) withdraw.Batch {
	t.Helper()
	var b withdraw.Batch
	e.core.Read(func(s *core.State) {
		wd, _ := s.Withdraw.Get(id)
		for _, x := range s.Withdraw.Batches() {
			for _, w := range x.Withdrawals {
				if w == wd.ID {
					b = x
				}
			}
		}
	})
	return b
}

func (e *ethE2E) status(id string) withdraw.Status {
	var st withdraw.Status
	e.core.Read(func(s *core.State) { wd, _ := s.Withdraw.Get(id); st = wd.Status })
	return st
}

func (e *ethE2E) nonce(t *testing.T) *big.Int {
	t.Helper()
	n, err := safe.Nonce(e.ctx, e.c, e.hot)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func eq(t *testing.T, what string, got, want *big.Int) {
	t.Helper()
	if got.Cmp(want) != 0 {
		t.Errorf("%s = %s wei; want %s", what, got, want)
	}
}

// TestEthWithdrawalsOnDevnet: withdrawals requested in the core are paid
// by the hot Safe on geth through the co-signer's real route: a batch of
// three through MultiSendCallOnly, exact in wei on chain and in the
// ledger; a signer stopped after journaling its execTransaction and
// before sending it, restarted, sends that one transaction once, and the
// same SafeTx sent again pays nothing (the Safe's nonce); a withdrawal to
// a contract that refuses ether reverts and is failed, its hold released.
func TestEthWithdrawalsOnDevnet(t *testing.T) {
	e := newEthE2E(t)
	eq(t, "the hot Safe's ledger account at the start", e.hotLedger(), e.balance(t, e.hot))
	eq(t, "the gas account's ledger account at the start", e.gasLedger(), e.gasChain(t))

	t.Run("Batch", func(t *testing.T) {
		amounts := map[ledger.OwnerID]*big.Int{1: milli(300), 2: milli(200), 3: milli(250)}
		ids := map[ledger.OwnerID]string{}
		before := map[ledger.OwnerID]*big.Int{}
		custBefore := map[ledger.OwnerID]*big.Int{}
		for i := ledger.OwnerID(1); i <= 3; i++ {
			before[i], custBefore[i] = e.balance(t, ethPayee(i)), e.custLedger(i)
			ids[i] = e.withdraw(t, i, ethPayee(i), amounts[i])
		}
		safeBefore, gasBefore, n0 := e.balance(t, e.hot), e.gasChain(t), e.nonce(t)
		gasLedgerBefore, feesBefore := e.gasLedger(), e.feeLedger()
		done, err := e.signer(t, nil).Step(e.ctx)
		if err != nil || len(done) != 1 {
			t.Fatalf("step = %v, %v", done, err)
		}
		b := e.batch(t, ids[1])
		if b.Status != withdraw.BatchConfirmed || len(b.Withdrawals) != 3 || b.Safe == nil || b.Safe.Operation != uint8(safe.OpDelegateCall) ||
			common.HexToAddress(b.Safe.To) != e.d.MultiSendCallOnly {
			t.Fatalf("batch %+v", b)
		}
		total := new(big.Int)
		for i := ledger.OwnerID(1); i <= 3; i++ {
			total.Add(total, amounts[i])
			eq(t, fmt.Sprintf("payee %d's gain", i), new(big.Int).Sub(e.balance(t, ethPayee(i)), before[i]), amounts[i])
			// The customer paid the amount and the withdrawal fee.
			eq(t, fmt.Sprintf("customer %d's ledger loss", i), new(big.Int).Sub(custBefore[i], e.custLedger(i)), new(big.Int).Add(amounts[i], big.NewInt(ethWdFee)))
			if st := e.status(ids[i]); st != withdraw.StatusDone {
				t.Errorf("withdrawal %s is %s", ids[i], st)
			}
		}
		eq(t, "the hot Safe's loss", new(big.Int).Sub(safeBefore, e.balance(t, e.hot)), total)
		eq(t, "the hot Safe's ledger account against its chain balance", e.hotLedger(), e.balance(t, e.hot))
		eq(t, "the Safe's nonce", e.nonce(t), new(big.Int).Add(n0, big.NewInt(1)))
		// The gas account paid exactly the receipt's gas.
		raw, _ := hex.DecodeString(b.RawTx)
		var tx types.Transaction
		if err := tx.UnmarshalBinary(raw); err != nil {
			t.Fatal(err)
		}
		r, err := e.c.WaitMined(e.ctx, tx.Hash())
		if err != nil {
			t.Fatal(err)
		}
		spent := new(big.Int).Sub(gasBefore, e.gasChain(t))
		eq(t, "the gas account's loss on chain", spent, eth.Fee(r))
		// The ledger moved exactly what the node says the gas account
		// spent, and holds what the node says it has.
		eq(t, "the gas account's ledger loss", new(big.Int).Sub(gasLedgerBefore, e.gasLedger()), spent)
		eq(t, "the gas account's ledger account against its chain balance", e.gasLedger(), e.gasChain(t))
		if b.Gas == nil || b.Gas.Wei != spent.String() || b.Gas.GasUsed != r.GasUsed || b.Gas.Tx != tx.Hash().Hex() {
			t.Errorf("the batch's recorded gas %+v; the receipt's %d gas, %s wei", b.Gas, r.GasUsed, spent)
		}
		eq(t, "the house's withdrawal fees", new(big.Int).Sub(e.feeLedger(), feesBefore), big.NewInt(3*ethWdFee))
		t.Logf("a batch of 3 withdrawals (%s wei) executed in %d gas (%d a withdrawal), %s wei of gas", total, r.GasUsed, r.GasUsed/3, eth.Fee(r))
	})

	t.Run("RestartBeforeSend", func(t *testing.T) {
		id := e.withdraw(t, 1, ethPayee(1), milli(100))
		before, safeBefore, n0 := e.balance(t, ethPayee(1)), e.balance(t, e.hot), e.nonce(t)
		crash := fmt.Errorf("killed before sending")
		if _, err := e.signer(t, func() error { return crash }).Step(e.ctx); err == nil || !strings.Contains(err.Error(), crash.Error()) {
			t.Fatalf("step = %v; want the crash", err)
		}
		// Journaled, signed by both, not sent: nothing on chain.
		b := e.batch(t, id)
		if b.Status != withdraw.BatchBroadcast || b.RawTx == "" {
			t.Fatalf("batch after the crash: %s", b.Status)
		}
		eq(t, "the payee's balance after the crash", e.balance(t, ethPayee(1)), before)
		eq(t, "the Safe's nonce after the crash", e.nonce(t), n0)
		// The restarted signer sends the journaled transaction, once.
		s := e.signer(t, nil)
		done, err := s.Step(e.ctx)
		if err != nil || len(done) != 1 || done[0] != b.ID {
			t.Fatalf("step after the restart = %v, %v", done, err)
		}
		if again, err := s.Step(e.ctx); err != nil || len(again) != 0 {
			t.Fatalf("a further step = %v, %v", again, err)
		}
		eq(t, "the payee's gain", new(big.Int).Sub(e.balance(t, ethPayee(1)), before), milli(100))
		eq(t, "the Safe's loss", new(big.Int).Sub(safeBefore, e.balance(t, e.hot)), milli(100))
		eq(t, "the Safe's nonce", e.nonce(t), new(big.Int).Add(n0, big.NewInt(1)))
		if st := e.status(id); st != withdraw.StatusDone {
			t.Fatalf("withdrawal %s is %s", id, st)
		}
		// The same execTransaction, with both signatures, sent again from
		// another account: mined, reverted (the Safe's nonce moved on),
		// nothing paid.
		raw, _ := hex.DecodeString(b.RawTx)
		var tx types.Transaction
		if err := tx.UnmarshalBinary(raw); err != nil {
			t.Fatal(err)
		}
		safeMid := e.balance(t, e.hot)
		to := e.hot
		if r, err := e.c.Send(e.ctx, e.gas, eth.Tx{To: &to, Data: tx.Data(), Gas: 500_000}); err == nil || r == nil || r.Status != types.ReceiptStatusFailed {
			t.Fatalf("the SafeTx executed twice: %v", err)
		}
		// And the journaled raw transaction itself again: the node has it.
		if err := e.c.SendSigned(e.ctx, &tx); err == nil || !sentBefore(err) {
			t.Fatalf("the journaled transaction sent again = %v", err)
		}
		eq(t, "the payee's gain after the replays", new(big.Int).Sub(e.balance(t, ethPayee(1)), before), milli(100))
		eq(t, "the Safe after the replays", e.balance(t, e.hot), safeMid)
		eq(t, "the hot Safe's ledger account against its chain balance", e.hotLedger(), e.balance(t, e.hot))
		eq(t, "the gas account's ledger account against its chain balance", e.gasLedger(), e.gasChain(t))
	})

	t.Run("GasAsJournaled", func(t *testing.T) {
		// The co-signer counts the gas the batch journaled, not another:
		// a request telling it less gas than journaled is refused.
		e.withdraw(t, 2, ethPayee(2), milli(40))
		s := e.signer(t, nil)
		v, err := s.cfg.Backend.View(e.ctx, "ETH")
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.prepare(e.ctx, v)
		if err != nil || b == nil {
			t.Fatalf("prepare = %v, %v", b, err)
		}
		tx, _, _, _ := core.SafeTxOf(b.Safe)
		if _, err := e.co.CoSignSafeTx(e.ctx, cosigner.SafeTxRequest{Withdrawals: b.Withdrawals, Tx: tx, Hash: common.Hash(b.TxID),
			GasLimit: 100_000, MaxFeePerGas: big.NewInt(10_000_000_000)}); err == nil || !strings.Contains(err.Error(), "the batch journaled gas 500000") {
			t.Fatalf("co-signing with less gas than journaled = %v", err)
		}
		if done, err := s.Step(e.ctx); err != nil || len(done) != 1 || done[0] != b.ID {
			t.Fatalf("step = %v, %v", done, err)
		}
		eq(t, "the gas account's ledger account against its chain balance", e.gasLedger(), e.gasChain(t))
	})

	t.Run("FailedCallFails", func(t *testing.T) {
		custBefore, safeBefore, n0 := e.custLedger(3), e.balance(t, e.hot), e.nonce(t)
		id := e.withdraw(t, 3, e.reverter, milli(100))
		if got := new(big.Int).Sub(custBefore, e.custLedger(3)); got.Sign() != 0 {
			// The hold moves available to held: the available balance shows it.
			t.Logf("customer 3's balance while held: %s wei less", got)
		}
		if _, err := e.signer(t, nil).Step(e.ctx); err != nil {
			t.Fatal(err)
		}
		b := e.batch(t, id)
		if b.Status != withdraw.BatchFailed || e.status(id) != withdraw.StatusFailed || !strings.Contains(b.Reason, "ExecutionFailure") {
			t.Fatalf("batch %s (%s), withdrawal %s", b.Status, b.Reason, e.status(id))
		}
		// The customer paid nothing, fee included; the failed
		// execution's gas left the gas account, in the ledger as on chain.
		eq(t, "customer 3's ledger balance (hold released)", e.custLedger(3), custBefore)
		eq(t, "the gas account's ledger account against its chain balance after the failure", e.gasLedger(), e.gasChain(t))
		if b.Gas == nil || b.Gas.Wei == "0" {
			t.Errorf("the failed batch's gas is not recorded: %+v", b.Gas)
		}
		eq(t, "the hot Safe", e.balance(t, e.hot), safeBefore)
		// The failed call used the nonce (safeTxGas is not 0): the SafeTx
		// can never execute, and the next withdrawal is signed at the next.
		eq(t, "the Safe's nonce", e.nonce(t), new(big.Int).Add(n0, big.NewInt(1)))
		eq(t, "the hot Safe's ledger account against its chain balance", e.hotLedger(), e.balance(t, e.hot))
		next := e.withdraw(t, 2, ethPayee(2), milli(50))
		if _, err := e.signer(t, nil).Step(e.ctx); err != nil {
			t.Fatalf("the next withdrawal after a failed one: %v", err)
		}
		if got := e.status(next); got != withdraw.StatusDone {
			t.Fatalf("the next withdrawal after a failed one is %s; want done", got)
		}
		eq(t, "the Safe's nonce after the next withdrawal", e.nonce(t), new(big.Int).Add(n0, big.NewInt(2)))
		eq(t, "the gas account's ledger account against its chain balance at the end", e.gasLedger(), e.gasChain(t))
	})
}

// haltedETH tells whether the core halts ether withdrawals.
func (e *ethE2E) haltedETH() bool {
	var halted bool
	e.core.Read(func(s *core.State) { halted = s.Controls.Allowed(ethAsset, controls.Withdraw) != nil })
	return halted
}

// TestEthWatcherHaltsDrain: the execution watcher on geth. A journaled
// withdrawal executed by the hot signer causes no halt (and is
// confirmed); then an attacker holding two of the hot Safe's three owner
// keys (the hot signer's and the offline backup's) signs and executes a
// drain of the hot Safe straight on the node, never asking the
// co-signer: the watcher halts ether withdrawals in the core, opens an
// incident with what left the Safe, and halts the co-signer over its
// mutual-TLS route with the watcher's certificate.
func TestEthWatcherHaltsDrain(t *testing.T) {
	e := newEthE2E(t)
	wcfg, err := mtls.Watcher(e.tdir)
	if err != nil {
		t.Fatal(err)
	}
	alarm := watch.NewAlarm([]string{e.csURL}, wcfg, nil)
	t.Cleanup(alarm.Stop)
	start, _ := e.c.BlockNumber(e.ctx)
	w, err := watch.NewEthExec(e.core, e.c, watch.EthExecConfig{Asset: ethAsset, MultiSend: e.d.MultiSendCallOnly, StartBlock: start,
		Safes:         []watch.WatchedSafe{{Name: "hot-eth", Address: e.hot, Kind: custody.HotCustomer}, {Name: "cold-eth", Address: e.cold, Kind: custody.ColdCustomer}},
		OnUnexplained: func(_ ledger.AssetID, h common.Hash, why string) { alarm.Halt("ETH", why) }})
	if err != nil {
		t.Fatal(err)
	}

	// A journaled withdrawal, executed: no halt.
	id := e.withdraw(t, 1, ethPayee(1), milli(300))
	if _, err := e.signer(t, nil).Step(e.ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := w.Step(e.ctx); err != nil || n != 1 {
		t.Fatalf("watcher step = %d, %v; want the one execution", n, err)
	}
	if e.haltedETH() || len(e.cs.Halts()) != 0 || e.status(id) != withdraw.StatusDone {
		t.Fatalf("a journaled withdrawal's execution: halted %v, co-signer halts %v, withdrawal %s", e.haltedETH(), e.cs.Halts(), e.status(id))
	}

	// The drain: the whole hot Safe to the thief, signed by the two
	// leaked keys, sent from the attacker's own account.
	thief := common.HexToAddress("0x7e1ef000000000000000000000000000000000ba")
	attacker, err := e.node.NewKey(e.ctx, milli(1_000))
	if err != nil {
		t.Fatal(err)
	}
	// Another journaled withdrawal executed just before the drain: the
	// watcher reads both executions in one step.
	id2 := e.withdraw(t, 2, ethPayee(2), milli(200))
	if _, err := e.signer(t, nil).Step(e.ctx); err != nil {
		t.Fatal(err)
	}
	hotBefore, coldBefore := e.balance(t, e.hot), e.balance(t, e.cold)
	tx := safe.Transfer(thief, hotBefore, e.nonce(t))
	h, _ := tx.Hash(e.d.ChainID, e.hot)
	s1, _ := safe.Sign(h, e.hotKey)
	s2, _ := safe.Sign(h, e.backupKey)
	sigs, err := safe.EncodeSignatures(h, []safe.Signature{s1, s2})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.d.Exec(e.ctx, e.c, attacker, e.hot, tx, sigs, 0)
	if err != nil {
		t.Fatal(err)
	}
	took := e.balance(t, thief)
	eq(t, "the thief's take", took, hotBefore)
	eq(t, "the cold Safe", e.balance(t, e.cold), coldBefore)
	if n, err := w.Step(e.ctx); err != nil || n != 2 {
		t.Fatalf("watcher step = %d, %v; want the withdrawal's and the drain's executions", n, err)
	}
	if e.status(id2) != withdraw.StatusDone {
		t.Errorf("the withdrawal executed before the drain is %s", e.status(id2))
	}
	if !e.haltedETH() {
		t.Fatal("ether withdrawals not halted after the drain")
	}
	var inc []string
	var loss withdraw.Amount
	e.core.Read(func(s *core.State) {
		for _, in := range s.Incidents.List() {
			inc = append(inc, in.ID)
			loss = in.Loss
			if !s.Incidents.Names(h.Hex()) || in.Detector != "watcher" {
				t.Errorf("incident %+v", in)
			}
		}
	})
	if len(inc) != 1 || loss.Ledger().Big().Cmp(took) != 0 {
		t.Fatalf("incidents %v, loss %s wei; want one of %s", inc, loss, took)
	}
	// The co-signer is halted by the watcher's alarm (in the background).
	for len(e.cs.Halts()) == 0 {
		select {
		case <-e.ctx.Done():
			t.Fatal("the co-signer was never halted")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if hs := e.cs.Halts(); hs[0].Asset != "ETH" {
		t.Fatalf("co-signer halts %+v", hs)
	}
	// The signer stops: withdrawals halted.
	e.withdrawHalted(t)
	// A restarted watcher reads the same blocks and journals nothing twice.
	w2, _ := watch.NewEthExec(e.core, e.c, watch.EthExecConfig{Asset: ethAsset, MultiSend: e.d.MultiSendCallOnly, StartBlock: start,
		Safes: []watch.WatchedSafe{{Name: "hot-eth", Address: e.hot, Kind: custody.HotCustomer}}})
	if _, err := w2.Step(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.core.Read(func(s *core.State) {
		if n := len(s.Incidents.List()); n != 1 {
			t.Errorf("%d incidents after a restart", n)
		}
	})
	total := new(big.Int).Add(hotBefore, coldBefore)
	bps := new(big.Int).Div(new(big.Int).Mul(took, big.NewInt(10_000)), total)
	t.Logf("drain: the attacker took %s wei (the hot Safe's whole balance; %s basis points of the %s wei held) in one execution of %d gas; the cold Safe's %s wei did not move; the watcher halted ETH and the co-signer",
		took, bps, total, r.GasUsed, coldBefore)
}

// withdrawHalted checks the hot signer refuses to batch while ether
// withdrawals are halted.
func (e *ethE2E) withdrawHalted(t *testing.T) {
	t.Helper()
	if _, err := e.signer(t, nil).Step(e.ctx); err == nil || !strings.Contains(err.Error(), "halted") {
		t.Fatalf("signer step while halted = %v", err)
	}
}
