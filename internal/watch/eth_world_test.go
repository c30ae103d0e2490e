package watch

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain"
	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/devnet"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/chain/eth/safe/safetest"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/operators"
	"kinko/internal/people"
	"kinko/internal/withdraw"
)

// milliETH returns m thousandths of one ether, in wei.
func milliETH(m int64) *big.Int { return new(big.Int).Mul(big.NewInt(m), big.NewInt(1e15)) }

// The custody wallets of ethWorld.
const (
	ewHot   uint32 = 11 // hot customer Safe: hot signer, co-signer, offline backup
	ewCold  uint32 = 12 // cold customer Safe wallet: the cold Safe and the deposit addresses
	ewHouse uint32 = 13 // the house's cold Safe
)

// ethWorld is a geth --dev node with the Safe contracts (SafeL2) and a
// core with ETH: the hot Safe 2-of-3 of hot signer, co-signer and backup
// keys, holding hotWei on chain and in the ledger (customers 1 to 3, a
// third each), its wallet registered in custody with the cold customer
// wallet and the house's wallet, withdrawals allowed past their
// cool-down to each customer's whitelisted payee.
type ethWorld struct {
	ctx                      context.Context
	n                        *devnet.Node
	c                        *eth.Client
	d                        *safe.Deployment
	art                      *safe.Artifacts
	gas                      *ecdsa.PrivateKey
	hotKey, coKey, backupKey *ecdsa.PrivateKey
	coldKeys, houseKeys      []*ecdsa.PrivateKey
	hot                      common.Address
	reverter                 common.Address // a contract that refuses ether, whitelisted for customer 3
	k                        *core.Core
	intent                   map[ledger.OwnerID]ed25519.PrivateKey
	seq, xfer                int
	team                     *operators.Team
}

func keys3(t *testing.T) []*ecdsa.PrivateKey {
	var out []*ecdsa.PrivateKey
	for range 3 {
		k, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	return out
}

func payee(i ledger.OwnerID) common.Address {
	return common.BytesToAddress([]byte{0xE0 + byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19})
}

func newEthWorld(t *testing.T, hotWei *big.Int) *ethWorld {
	t.Helper()
	return newEthWorldMax(t, hotWei, milliETH(5_000))
}

// newEthWorldMax is newEthWorld with the core's four amount limits of ETH
// at maxWei each.
func newEthWorldMax(t *testing.T, hotWei, maxWei *big.Int) *ethWorld {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	n := devnet.New(t, devnet.Options{})
	w := &ethWorld{ctx: ctx, n: n, c: n.Client(), art: artifacts(t), intent: map[ledger.OwnerID]ed25519.PrivateKey{}}
	var err error
	if w.gas, err = n.NewKey(ctx, milliETH(100_000)); err != nil {
		t.Fatal(err)
	}
	if w.d, err = safe.Deploy(ctx, w.c, w.gas, w.art, safe.L2); err != nil {
		t.Fatal(err)
	}
	hk := keys3(t)
	w.hotKey, w.coKey, w.backupKey = hk[0], hk[1], hk[2]
	w.coldKeys, w.houseKeys = keys3(t), keys3(t)
	w.hot = w.safe(t, hk, 1, hotWei)
	// A contract whose code is PUSH1 0 PUSH1 0 REVERT: it refuses ether.
	rr, err := w.c.Send(ctx, w.gas, eth.Tx{Data: common.FromHex("0x600580600b6000396000f360006000fd"), Gas: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	w.reverter = rr.ContractAddress

	if w.k, err = core.Open(ctx, core.Config{Dir: t.TempDir(), CheckInvariants: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.k.Close() })
	t0 := time.Now().Add(-48 * time.Hour)
	w.submit(t, t0, core.CreateAssets{Assets: []ledger.Asset{{ID: ethAsset, Code: "ETH", Decimals: 18, Class: ledger.ClassChain}}})
	team := operators.Crew("ether watch test")
	w.team = team
	for _, cmd := range team.Bootstrap(t0) {
		w.submit(t, t0, cmd)
	}
	maxAmount, err := withdraw.AmountFromBig(maxWei)
	if err != nil {
		t.Fatal(err)
	}
	eth5 := map[string]withdraw.Amount{"ETH": maxAmount}
	for _, cmd := range team.Approved(core.KindSetWithdrawalRulesRequest, core.SetWithdrawalRulesPayload{Rules: withdraw.Rules{CoolDownSeconds: 3600,
		PerWithdrawalMax: eth5, PerCustomerDay: eth5, PerAssetHour: eth5, ApprovalAbove: eth5}}, "aiko", "ren", people.RoleAdmin, "test", t0) {
		w.submit(t, t0, cmd)
	}
	desc := func(ks []*ecdsa.PrivateKey) string { return safetest.Descriptor(w.d, safetest.Owners(ks...)).String() }
	for _, cmd := range team.RegisterWallets(t0,
		custody.Wallet{ID: ewHot, Kind: custody.HotCustomer, Asset: ethAsset, Descriptor: desc(hk), Owner: custody.WalletOwner(ewHot)},
		custody.Wallet{ID: ewCold, Kind: custody.ColdCustomer, Asset: ethAsset, Descriptor: desc(w.coldKeys), Owner: custody.WalletOwner(ewCold)},
		custody.Wallet{ID: ewHouse, Kind: custody.ColdHouse, Asset: ethAsset, Descriptor: desc(w.houseKeys), Owner: custody.WalletOwner(ewHouse)}) {
		w.submit(t, t0, cmd)
	}
	creds := people.Credentials{PasswordHash: strings.Repeat("h", 30), TOTPSealed: strings.Repeat("s", 30)}
	third := new(big.Int).Div(hotWei, big.NewInt(3))
	for i := ledger.OwnerID(1); i <= 3; i++ {
		w.submit(t, t0, core.SignUp{Customer: people.Customer{ID: i, Email: fmt.Sprintf("c%d@x.jp", i), Name: "c", Creds: creds}})
		w.submit(t, t0, core.SetKYC{Customer: i, KYC: people.KYCVerified, Actor: "aiko", Reason: "ok"})
		pub, priv, _ := ed25519.GenerateKey(nil)
		w.intent[i] = priv
		w.submit(t, t0, core.RegisterIntentKey{Customer: i, PubKey: [32]byte(pub)})
		w.submit(t, t0, core.WhitelistAddress{Customer: i, Asset: "ETH", Address: payee(i).Hex()})
		w.submit(t, t0, core.CreateAccounts{Keys: []ledger.AccountKey{w.customer(i)}})
	}
	w.submit(t, t0, core.WhitelistAddress{Customer: 3, Asset: "ETH", Address: w.reverter.Hex()})
	// Booked now, after every entry dated t0 (the journal's times only
	// go forward).
	for i := ledger.OwnerID(1); i <= 3; i++ {
		amt := third
		if i == 3 {
			amt = new(big.Int).Sub(hotWei, new(big.Int).Mul(third, big.NewInt(2)))
		}
		w.book(t, ewHot, w.customer(i), amt)
	}
	return w
}

func (w *ethWorld) customer(i ledger.OwnerID) ledger.AccountKey {
	return ledger.AccountKey{Owner: i, Asset: ethAsset, Kind: ledger.KindAvailable}
}

func walletAccount(id uint32) ledger.AccountKey {
	return ledger.AccountKey{Owner: custody.WalletOwner(id), Asset: ethAsset, Kind: ledger.KindWallet}
}

// book journals wei into a wallet's ledger account, owed to credit.
func (w *ethWorld) book(t *testing.T, wallet uint32, credit ledger.AccountKey, wei *big.Int) {
	t.Helper()
	w.xfer++
	a, err := ledgerAmount(wei)
	if err != nil {
		t.Fatal(err)
	}
	w.submit(t, time.Now(), core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 77, Lo: uint64(w.xfer)},
		Debit: walletAccount(wallet), Credit: credit, Amount: a}}})
}

// ledgerAmount is wei as a ledger amount.
func ledgerAmount(v *big.Int) (ledger.Amount, error) { return chain.AmountFromBig(v) }

func (w *ethWorld) submit(t *testing.T, at time.Time, cmd core.Command) core.Outcome {
	t.Helper()
	o, err := w.k.Do(w.ctx, at, cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd.Kind(), err)
	}
	return o
}

// safe funds the 2-of-3 Safe of ks at salt with wei and creates it.
func (w *ethWorld) safe(t *testing.T, ks []*ecdsa.PrivateKey, salt int64, wei *big.Int) common.Address {
	t.Helper()
	a, err := safetest.Funded(w.ctx, w.n, w.d, w.gas, salt, wei, safetest.Owners(ks...))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (w *ethWorld) balance(t *testing.T, a common.Address) *big.Int {
	t.Helper()
	v, err := w.c.Balance(w.ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (w *ethWorld) haltedETH() bool {
	var halted bool
	w.k.Read(func(s *core.State) { halted = s.Controls.Allowed(ethAsset, controls.Withdraw) != nil })
	return halted
}

// withdraw journals a customer's signed withdrawal of wei to its payee.
func (w *ethWorld) withdraw(t *testing.T, cust ledger.OwnerID, wei *big.Int) string {
	t.Helper()
	return w.withdrawTo(t, cust, payee(cust), wei)
}

// withdrawTo journals a customer's signed withdrawal of wei to addr.
func (w *ethWorld) withdrawTo(t *testing.T, cust ledger.OwnerID, addr common.Address, wei *big.Int) string {
	t.Helper()
	w.seq++
	amount, err := withdraw.AmountFromBig(wei)
	if err != nil {
		t.Fatal(err)
	}
	in := withdraw.Intent{RequestID: fmt.Sprintf("r%d", w.seq), Asset: "ETH", Address: addr.Hex(), Amount: amount, Expiry: time.Now().Add(48 * time.Hour).Unix()}
	sig, _ := in.Sign(w.intent[cust])
	o := w.submit(t, time.Now(), core.RequestWithdrawal{Customer: cust, Intent: in, PubKey: [32]byte(w.intent[cust].Public().(ed25519.PublicKey)), Sig: sig})
	wd := o.Value.(withdraw.Withdrawal)
	if wd.Status != withdraw.StatusQueued {
		t.Fatalf("withdrawal %s is %s", wd.ID, wd.Status)
	}
	return wd.ID
}

// batch journals, as the hot signer does, the batch paying one queued
// withdrawal (ReserveBatch), signs its SafeTx with the hot signer's and
// the co-signer's owner keys and journals the execTransaction signed by
// the house gas account (RecordSigned). It returns that transaction,
// not sent, and the SafeTx's hash; the batch's id is "e-" and the
// hash's first 8 bytes in hex.
func (w *ethWorld) batch(t *testing.T, id string, to common.Address, wei *big.Int) (*types.Transaction, common.Hash) {
	t.Helper()
	nonce, err := safe.Nonce(w.ctx, w.c, w.hot)
	if err != nil {
		t.Fatal(err)
	}
	tx := safe.Transfer(to, wei, nonce)
	h, err := tx.Hash(w.d.ChainID, w.hot)
	if err != nil {
		t.Fatal(err)
	}
	signed := w.exec(t, w.gas, tx, h, w.hotKey, w.coKey)
	b := withdraw.Batch{ID: "e-" + hex.EncodeToString(h[:8]), Asset: "ETH", Withdrawals: []string{id}, TxID: [32]byte(h),
		Safe: &withdraw.SafeBatch{ChainID: w.d.ChainID.Uint64(), Safe: w.hot.Hex(), To: tx.To.Hex(), Value: wei.String(), Data: "0x", Nonce: nonce.Uint64(),
			GasLimit: signed.Gas(), MaxFeePerGas: signed.GasFeeCap().String()}}
	w.submit(t, time.Now(), core.ReserveBatch{Batch: b})
	bin, _ := signed.MarshalBinary()
	w.submit(t, time.Now(), core.RecordSigned{Batch: b.ID, RawTx: hex.EncodeToString(bin)})
	return signed, h
}

// exec returns execTransaction of tx on the hot Safe with the signatures
// of owners, signed by from with a fixed gas (sent as it is, so one the
// Safe refuses is mined and reverts), not sent.
func (w *ethWorld) exec(t *testing.T, from *ecdsa.PrivateKey, tx *safe.SafeTx, h common.Hash, owners ...*ecdsa.PrivateKey) *types.Transaction {
	t.Helper()
	return w.execAt(t, from, w.hot, tx, h, owners...)
}

// execAt is exec on the Safe at a.
func (w *ethWorld) execAt(t *testing.T, from *ecdsa.PrivateKey, a common.Address, tx *safe.SafeTx, h common.Hash, owners ...*ecdsa.PrivateKey) *types.Transaction {
	t.Helper()
	var sigs []safe.Signature
	for _, o := range owners {
		s, err := safe.Sign(h, o)
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, s)
	}
	enc, err := safe.EncodeSignatures(h, sigs)
	if err != nil {
		t.Fatal(err)
	}
	data, err := safe.ExecCalldata(tx, enc)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := w.c.Sign(w.ctx, from, eth.Tx{To: &a, Data: data, Gas: 300_000})
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// send sends a signed transaction and waits for its receipt (a reverted
// one too).
func (w *ethWorld) send(t *testing.T, tx *types.Transaction) *types.Receipt {
	t.Helper()
	if err := w.c.SendSigned(w.ctx, tx); err != nil {
		t.Fatal(err)
	}
	r, err := w.c.WaitMined(w.ctx, tx.Hash())
	if r == nil {
		t.Fatalf("transaction %s: %v", tx.Hash(), err)
	}
	return r
}
