package cosigner

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/devnet"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/chain/eth/safe/safetest"
	"kinko/internal/core"
	"kinko/internal/ethwallet"
	"kinko/internal/ledger"
	"kinko/internal/withdraw"
)

// milliEther returns m thousandths of one ether, in wei.
func milliEther(m int64) *big.Int { return new(big.Int).Mul(big.NewInt(m), big.NewInt(1e15)) }

// wei is milliEther as the uint64 of a withdrawal intent.
func wei(m int64) uint64 { return milliEther(m).Uint64() }

// The co-signer's ETH limits in the tests: 1.5 ETH an hour leaving, gas
// counted; 1 ETH a customer an hour; 0.01 ETH of gas a transaction.
const (
	ethPerAssetHour = 1_500_000_000_000_000_000
	ethFeeMax       = 10_000_000_000_000_000
)

// The gas every SafeTx is asked and sent with: 500,000 gas at most
// 10 gwei, 0.005 ETH counted as its fee.
const (
	ethGasLimit = 500_000
	ethMaxFee   = 10_000_000_000
)

// ethWorld is the co-signer's test world with Ether beside Bitcoin: the
// asset in the core, customers holding ether with whitelisted Ethereum
// addresses, a real geth dev node with the Safe contracts deployed, a hot
// Safe 2-of-3 whose owners are the hot signer, the co-signer and an
// offline backup, a cold Safe of offline owners holding 95% of the
// ether, and the co-signer holding its Ethereum key and reading the hot
// Safe's nonce from the node.
type ethWorld struct {
	*world
	ctx                      context.Context
	node                     *devnet.Node
	c                        *eth.Client
	d                        *safe.Deployment
	art                      *safe.Artifacts
	gas                      *ecdsa.PrivateKey // the house gas account: sends every execTransaction
	hotKey, coKey, backupKey *ecdsa.PrivateKey
	hot, cold                common.Address
}

func ethPayee(i ledger.OwnerID) common.Address {
	return common.BytesToAddress(bytes.Repeat([]byte{0xE0 + byte(i)}, 20))
}

func newEthWorld(t *testing.T) *ethWorld {
	art, err := safe.LoadInstalled()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	n := devnet.New(t, devnet.Options{})
	e := &ethWorld{world: newWorld(t), ctx: ctx, node: n, c: n.Client(), art: art}
	if e.gas, err = n.NewKey(ctx, milliEther(100_000)); err != nil {
		t.Fatal(err)
	}
	if e.d, err = safe.Deploy(ctx, e.c, e.gas, art, safe.L2); err != nil {
		t.Fatal(err)
	}
	e.hotKey, _ = crypto.GenerateKey()
	e.coKey, _ = crypto.GenerateKey()
	e.backupKey, _ = crypto.GenerateKey()
	e.hot = e.newSafe(1, milliEther(5_000), e.hotKey, e.coKey, e.backupKey)
	var cold []*ecdsa.PrivateKey
	for range 3 {
		k, _ := crypto.GenerateKey()
		cold = append(cold, k)
	}
	e.cold = e.newSafe(2, milliEther(95_000), cold...)

	// The core: ether, three customers and three accounts of the
	// attacker's, each with 3 ETH and a whitelisted Ethereum address.
	w := e.world
	w.submit(t0, core.CreateAssets{Assets: []ledger.Asset{{ID: 3, Code: "ETH", Decimals: 18, Class: ledger.ClassChain}}})
	for i := ledger.OwnerID(4); i <= 6; i++ {
		w.customer(i, t0)
	}
	hotAcct := ledger.AccountKey{Owner: ledger.OwnerHouseMin + 101, Asset: 3, Kind: ledger.KindWallet}
	keys := []ledger.AccountKey{hotAcct}
	for i := ledger.OwnerID(1); i <= 6; i++ {
		keys = append(keys, ledger.AccountKey{Owner: i, Asset: 3, Kind: ledger.KindAvailable})
	}
	if o := w.submit(t0, core.CreateAccounts{Keys: keys}); o.Err != nil {
		t.Fatal(o.Err)
	}
	for i := ledger.OwnerID(1); i <= 6; i++ {
		w.submit(t0, core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 3, Lo: uint64(i)}, Debit: hotAcct,
			Credit: ledger.AccountKey{Owner: i, Asset: 3, Kind: ledger.KindAvailable}, Amount: ledger.AmountOf(wei(3_000))}}})
		if o := w.submit(t0, core.WhitelistAddress{Customer: i, Asset: "ETH", Address: ethPayee(i).Hex()}); o.Err != nil {
			t.Fatal(o.Err)
		}
	}
	// The co-signer's policy pins the hot Safe, its chain and the
	// MultiSendCallOnly beside the Bitcoin wallets.
	pol, err := ParsePolicy([]byte(fmt.Sprintf(`{"cooldown":"24h",
  "wallets":[{"name":"hot","kind":"hot-customer","asset":"BTC","descriptor":%q},{"name":"cold","kind":"cold-customer","asset":"BTC","descriptor":%q}],
  "safes":[{"name":"hot-eth","kind":"hot-customer","asset":"ETH","chain_id":%d,"address":%q,"multisend":%q},
    {"name":"cold-eth","kind":"cold-customer","asset":"ETH","chain_id":%d,"address":%q,"multisend":%q}],
  "limits":{"BTC":{"per_customer_hour":100000000,"per_customer_day":200000000,"per_asset_hour":150000000,"per_asset_day":300000000,
    "fee_max":50000,"fee_hour":100000,"fee_day":200000,"tx_hour":10,"tx_day":20,"yen_per_coin":15000000,"decimals":8},
    "ETH":{"per_customer_hour":1000000000000000000,"per_customer_day":2000000000000000000,"per_asset_hour":%d,"per_asset_day":3000000000000000000,
    "fee_max":%d,"fee_hour":50000000000000000,"fee_day":100000000000000000,"tx_hour":10,"tx_day":20,"yen_per_coin":500000,"decimals":18}},
  "all_assets":{"yen_hour":30000000,"yen_day":60000000,"tx_hour":20,"tx_day":40}}`,
		w.hot.String(), w.cold.String(), e.d.ChainID, e.hot.Hex(), e.d.MultiSendCallOnly.Hex(), e.d.ChainID, e.cold.Hex(), e.d.MultiSendCallOnly.Hex(),
		uint64(ethPerAssetHour), uint64(ethFeeMax))), regnet)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cs.Close(); err != nil {
		t.Fatal(err)
	}
	w.pol, w.ethKey, w.ethNode = pol, e.coKey, e.c
	w.open()
	w.clock = t0
	if err := w.feed(); err != nil {
		t.Fatal(err)
	}
	return e
}

// newSafe deploys a 2-of-3 Safe of owners at salt nonce salt, funded
// with wei before it exists.
func (e *ethWorld) newSafe(salt int64, fund *big.Int, owners ...*ecdsa.PrivateKey) common.Address {
	e.t.Helper()
	a, err := safetest.Funded(e.ctx, e.node, e.d, e.gas, salt, fund, safetest.Owners(owners...))
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// withdrawEth journals a customer's signed withdrawal of ether to their
// whitelisted address, at entry time at.
func (e *ethWorld) withdrawEth(cust ledger.OwnerID, id string, amount uint64, at time.Time) string {
	e.t.Helper()
	w := e.world
	in := withdraw.Intent{RequestID: id, Asset: "ETH", Address: ethPayee(cust).Hex(), Amount: withdraw.AmountOf(amount), Expiry: at.Add(48 * time.Hour).Unix()}
	sig, _ := in.Sign(w.cust[cust])
	o := w.submit(at, core.RequestWithdrawal{Customer: cust, Intent: in, PubKey: [32]byte(w.cust[cust].Public().(ed25519.PublicKey)), Sig: sig})
	if o.Err != nil || o.Value.(withdraw.Withdrawal).Status != withdraw.StatusQueued {
		e.t.Fatalf("withdrawal %s: %v %+v", id, o.Err, o.Value)
	}
	return o.Value.(withdraw.Withdrawal).ID
}

func (e *ethWorld) balance(a common.Address) *big.Int {
	e.t.Helper()
	v, err := e.c.Balance(e.ctx, a)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func (e *ethWorld) nonce() *big.Int {
	e.t.Helper()
	v, err := safe.Nonce(e.ctx, e.c, e.hot)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func (e *ethWorld) hash(tx *safe.SafeTx) common.Hash {
	e.t.Helper()
	h, err := tx.Hash(e.d.ChainID, e.hot)
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

// ask is the hot signer asking the co-signer to sign tx, paying ids.
func (e *ethWorld) ask(tx *safe.SafeTx, ids ...string) (*SafeTxSignature, error) {
	return e.cs.SignSafeTx(e.ctx, SafeTxRequest{Withdrawals: ids, Tx: tx, Hash: e.hash(tx), GasLimit: ethGasLimit, MaxFeePerGas: big.NewInt(ethMaxFee)})
}

// sign is an owner's signature of tx.
func (e *ethWorld) sign(tx *safe.SafeTx, k *ecdsa.PrivateKey) safe.Signature {
	e.t.Helper()
	s, err := safe.Sign(e.hash(tx), k)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// exec sends execTransaction of tx with sigs from the gas account, with
// the gas limit the co-signer was told, and returns the receipt.
func (e *ethWorld) exec(tx *safe.SafeTx, sigs ...safe.Signature) (*types.Receipt, error) {
	e.t.Helper()
	enc, err := safe.EncodeSignatures(e.hash(tx), sigs)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := e.d.Exec(e.ctx, e.c, e.gas, e.hot, tx, enc, ethGasLimit)
	if r != nil {
		e.headAt(r.BlockNumber.Uint64())
	}
	return r, err
}

// headAt waits until the node's head is at block n or above: geth gives a
// receipt as soon as its block is written, and may answer calls at
// "latest" from the block before for a moment.
func (e *ethWorld) headAt(n uint64) {
	e.t.Helper()
	for {
		h, err := e.c.BlockNumber(e.ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if h >= n {
			return
		}
		select {
		case <-e.ctx.Done():
			e.t.Fatalf("the node's head stays below block %d", n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestSafeTxOnDevnet: the co-signer on a real geth dev node with the hot
// Safe 2-of-3 (hot signer, co-signer, offline backup). A withdrawal and a
// batch it built itself execute with the hot signer's and its
// signatures; every SafeTx it did not build is refused, and with the hot
// key alone does not execute; a run of withdrawals past its cap is
// stopped at the cap, gas counted; and two leaked hot owner keys drain
// the hot Safe, and only it, straight to the node.
func TestSafeTxOnDevnet(t *testing.T) {
	e := newEthWorld(t)
	at := t0.Add(25 * time.Hour)
	w1 := e.withdrawEth(1, "e1", wei(300), at)
	if err := e.feed(); err != nil {
		t.Fatal(err)
	}

	t.Run("VerifySafes", func(t *testing.T) {
		art := e.art
		if err := e.cs.VerifySafes(e.ctx, art); err != nil {
			t.Fatalf("the pinned hot Safe: %v", err)
		}
		good := *e.pol
		descOf := func(threshold int, keys ...*ecdsa.PrivateKey) string {
			d := safetest.Descriptor(e.d, safetest.Owners(keys...))
			d.Threshold = threshold
			return d.String()
		}
		// Pinned by its descriptor (owners in another order than the
		// Safe lists them): verified.
		pinned := good
		pinned.Wallets = nil
		pinned.Safes = append([]PinnedSafe(nil), good.Safes...)
		pinned.Safes[0].Descriptor = descOf(2, e.backupKey, e.hotKey, e.coKey)
		if err := e.cs.SetPolicy(&pinned); err != nil {
			t.Fatal(err)
		}
		if err := e.cs.VerifySafes(e.ctx, art); err != nil {
			t.Fatalf("the hot Safe pinned by its descriptor: %v", err)
		}
		other, _ := crypto.GenerateKey()
		for _, c := range []struct {
			name string
			edit func(*PinnedSafe)
		}{
			{"a descriptor with another owner", func(p *PinnedSafe) { p.Descriptor = descOf(2, e.hotKey, e.coKey, other) }},
			{"a descriptor with another threshold", func(p *PinnedSafe) { p.Descriptor = descOf(3, e.hotKey, e.coKey, e.backupKey) }},
			{"a Safe without the co-signer's key (the cold Safe pinned as hot)", func(p *PinnedSafe) { p.Address = e.cold.Hex() }},
			{"a MultiSendCallOnly that is another contract (the proxy factory)", func(p *PinnedSafe) { p.MultiSend = e.d.ProxyFactory.Hex() }},
			{"a MultiSendCallOnly with no code", func(p *PinnedSafe) { p.MultiSend = ethPayee(1).Hex() }},
			{"another chain", func(p *PinnedSafe) { p.ChainID++ }},
		} {
			bad := good
			bad.Wallets = nil // Safes alone: quicker to load than the descriptors' address sets
			bad.Safes = append([]PinnedSafe(nil), good.Safes...)
			c.edit(&bad.Safes[0])
			if err := e.cs.SetPolicy(&bad); err != nil {
				t.Fatal(err)
			}
			if err := e.cs.VerifySafes(e.ctx, art); !errors.Is(err, ErrSafeSetup) {
				t.Errorf("%s: VerifySafes = %v; want ErrSafeSetup", c.name, err)
			}
		}
		if err := e.cs.SetPolicy(&good); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Withdrawal", func(t *testing.T) {
		tx := safe.Transfer(ethPayee(1), milliEther(300), e.nonce())
		// The address was whitelisted a minute ago by the co-signer's
		// clock: it cools down whatever the journal's times say.
		e.clock = t0.Add(time.Minute)
		if _, err := e.ask(tx, w1); !errors.Is(err, ErrCooling) {
			t.Fatalf("fresh address by the co-signer's clock = %v; want ErrCooling", err)
		}
		e.clock = at
		sig, err := e.ask(tx, w1)
		if err != nil {
			t.Fatal(err)
		}
		if sig.Hash != e.hash(tx) || sig.Signature.Owner != crypto.PubkeyToAddress(e.coKey.PublicKey) {
			t.Fatalf("signed %s by %s", sig.Hash, sig.Signature.Owner)
		}
		// The contract's own hash of the SafeTx is the one signed.
		if h, err := safe.ContractHash(e.ctx, e.c, e.hot, tx); err != nil || h != sig.Hash {
			t.Fatalf("the Safe hashes it %s (%v); the co-signer signed %s", h, err, sig.Hash)
		}
		// Asked again (the answer was lost), and after a restart: the same
		// signature, byte for byte.
		again, err := e.ask(tx, w1)
		if err != nil || again.Signature.RSV != sig.Signature.RSV {
			t.Fatalf("asked again: %v, same %v", err, err == nil && again.Signature.RSV == sig.Signature.RSV)
		}
		e.restart()
		again, err = e.ask(tx, w1)
		if err != nil || again.Signature.RSV != sig.Signature.RSV {
			t.Fatalf("asked again after a restart: %v", err)
		}
		to, hot := e.balance(ethPayee(1)), e.balance(e.hot)
		n := e.nonce()
		if _, err := e.exec(tx, e.sign(tx, e.hotKey), sig.Signature); err != nil {
			t.Fatalf("execTransaction with the hot signer's and co-signer's signatures: %v", err)
		}
		if got := new(big.Int).Sub(e.balance(ethPayee(1)), to); got.Cmp(milliEther(300)) != 0 {
			t.Fatalf("the customer got %s wei; want %s", got, milliEther(300))
		}
		if lost := new(big.Int).Sub(hot, e.balance(e.hot)); lost.Cmp(milliEther(300)) != 0 {
			t.Fatalf("the hot Safe lost %s wei; want %s", lost, milliEther(300))
		}
		if got := e.nonce(); got.Cmp(new(big.Int).Add(n, big.NewInt(1))) != 0 {
			t.Fatalf("nonce %s after %s", got, n)
		}
		// The same withdrawal in another SafeTx, at the next nonce.
		if _, err := e.ask(safe.Transfer(ethPayee(1), milliEther(300), e.nonce()), w1); !errors.Is(err, ErrAlreadySigned) {
			t.Fatalf("paying a signed withdrawal again = %v; want ErrAlreadySigned", err)
		}
	})

	t.Run("Batch", func(t *testing.T) {
		w2 := e.withdrawEth(2, "e2", wei(200), at)
		w3 := e.withdrawEth(3, "e3", wei(250), at)
		if err := e.feed(); err != nil {
			t.Fatal(err)
		}
		calls := []safe.Call{{To: ethPayee(2), Value: milliEther(200)}, {To: ethPayee(3), Value: milliEther(250)}}
		tx, err := safe.Batch(e.d.MultiSendCallOnly, calls, e.nonce())
		if err != nil {
			t.Fatal(err)
		}
		// The batch in another order than the withdrawals named.
		if _, err := e.ask(tx, w3, w2); !errors.Is(err, ErrNotBuilt) {
			t.Fatalf("a batch in another order = %v; want ErrNotBuilt", err)
		}
		sig, err := e.ask(tx, w2, w3)
		if err != nil {
			t.Fatal(err)
		}
		b2, b3, hot := e.balance(ethPayee(2)), e.balance(ethPayee(3)), e.balance(e.hot)
		if _, err := e.exec(tx, sig.Signature, e.sign(tx, e.hotKey)); err != nil {
			t.Fatal(err)
		}
		for _, x := range []struct {
			a          common.Address
			before, wd *big.Int
		}{{ethPayee(2), b2, milliEther(200)}, {ethPayee(3), b3, milliEther(250)}} {
			if got := new(big.Int).Sub(e.balance(x.a), x.before); got.Cmp(x.wd) != 0 {
				t.Fatalf("%s got %s wei; want %s", x.a, got, x.wd)
			}
		}
		if lost := new(big.Int).Sub(hot, e.balance(e.hot)); lost.Cmp(milliEther(450)) != 0 {
			t.Fatalf("the hot Safe lost %s wei; want %s", lost, milliEther(450))
		}
	})

	t.Run("Route", func(t *testing.T) {
		// The hot signer's route, POST /cosign/safetx (mutual TLS in
		// front of it in production; see TestCosignerProcessParts).
		srv := httptest.NewServer(e.cs.Handler(slog.New(slog.DiscardHandler)))
		defer srv.Close()
		post := func(body any) (int, string) {
			b, _ := json.Marshal(body)
			r, err := http.Post(srv.URL+"/cosign/safetx", "application/json", bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Body.Close()
			out, _ := io.ReadAll(r.Body)
			return r.StatusCode, string(out)
		}
		w6 := e.withdrawEth(3, "e6", wei(50), at)
		if err := e.feed(); err != nil {
			t.Fatal(err)
		}
		tx := safe.Transfer(ethPayee(3), milliEther(50), e.nonce())
		req := SafeTxRequest{Withdrawals: []string{w6}, Tx: tx, Hash: e.hash(tx), GasLimit: ethGasLimit, MaxFeePerGas: big.NewInt(ethMaxFee)}
		body := NewSafeTxBody(req)
		for _, m := range []struct {
			name string
			edit func(*SafeTxBody)
		}{
			{"a negative value", func(b *SafeTxBody) { b.Value = "-1" }},
			{"a signed value", func(b *SafeTxBody) { b.Value = "+50" }},
			{"a value past 2^256", func(b *SafeTxBody) { b.Value = "1" + strings.Repeat("0", 78) }},
			{"a short address", func(b *SafeTxBody) { b.To = "0x1234" }},
			{"data without 0x", func(b *SafeTxBody) { b.Data = "" }},
			{"no hash", func(b *SafeTxBody) { b.Hash = "" }},
			{"operation 2", func(b *SafeTxBody) { b.Operation = 2 }},
			{"no gas limit", func(b *SafeTxBody) { b.GasLimit = 0 }},
			{"no withdrawals", func(b *SafeTxBody) { b.Withdrawals = nil }},
		} {
			b := body
			m.edit(&b)
			if code, msg := post(b); code != http.StatusBadRequest || !strings.Contains(msg, "malformed") {
				t.Errorf("%s: %d %s; want 400", m.name, code, msg)
			}
		}
		if code, msg := post(map[string]any{"withdrawals": []string{w6}, "extra": 1}); code != http.StatusBadRequest {
			t.Errorf("an unknown field: %d %s; want 400", code, msg)
		}
		// Refused with its reason: another to.
		thief := body
		thief.To = common.HexToAddress("0x00000000000000000000000000000000000000ff").Hex()
		if code, msg := post(thief); code != http.StatusForbidden || !strings.Contains(msg, ErrNotBuilt.Error()) {
			t.Fatalf("another to: %d %s; want 403 %v", code, msg, ErrNotBuilt)
		}
		code, msg := post(body)
		if code != http.StatusOK {
			t.Fatalf("POST /cosign/safetx = %d %s", code, msg)
		}
		var ans SafeTxAnswer
		if err := json.Unmarshal([]byte(msg), &ans); err != nil {
			t.Fatal(err)
		}
		var sig safe.Signature
		sig.Owner = common.HexToAddress(ans.Owner)
		rsv, err := hex.DecodeString(strings.TrimPrefix(ans.Signature, "0x"))
		if err != nil || len(rsv) != safe.SignatureLen || ans.Hash != e.hash(tx).Hex() {
			t.Fatalf("answer %+v", ans)
		}
		copy(sig.RSV[:], rsv)
		before := e.balance(ethPayee(3))
		if _, err := e.exec(tx, e.sign(tx, e.hotKey), sig); err != nil {
			t.Fatal(err)
		}
		if got := new(big.Int).Sub(e.balance(ethPayee(3)), before); got.Cmp(milliEther(50)) != 0 {
			t.Fatalf("the customer got %s wei through the route; want %s", got, milliEther(50))
		}
	})

	t.Run("Attacks", func(t *testing.T) {
		w4 := e.withdrawEth(1, "e4", wei(100), at)
		w5 := e.withdrawEth(2, "e5", wei(100), at)
		if err := e.feed(); err != nil {
			t.Fatal(err)
		}
		thief, _ := crypto.GenerateKey()
		thiefAddr := crypto.PubkeyToAddress(thief.PublicKey)
		n := e.nonce()
		pay := func(to common.Address, v *big.Int, nonce *big.Int) *safe.SafeTx { return safe.Transfer(to, v, nonce) }
		data := pay(ethPayee(1), milliEther(100), n)
		data.Data = append([]byte{0xa9, 0x05, 0x9c, 0xbb}, common.LeftPadBytes(thiefAddr[:], 32)...)
		refund := pay(ethPayee(1), milliEther(100), n)
		refund.GasPrice, refund.RefundReceiver, refund.BaseGas = big.NewInt(1e9), thiefAddr, big.NewInt(1_000_000)
		theft, err := safe.Batch(e.d.MultiSendCallOnly, []safe.Call{{To: thiefAddr, Value: milliEther(100)}, {To: thiefAddr, Value: milliEther(100)}}, n)
		if err != nil {
			t.Fatal(err)
		}
		gasField := pay(ethPayee(1), milliEther(100), n)
		gasField.SafeTxGas = big.NewInt(21_000)
		for _, a := range []struct {
			name string
			tx   *safe.SafeTx
			ids  []string
			want error
		}{
			{"a forged withdrawal", pay(thiefAddr, milliEther(1_000), n), []string{"9:forged"}, ErrUnexplained},
			{"a changed to", pay(thiefAddr, milliEther(100), n), []string{w4}, ErrNotBuilt},
			{"a changed value", pay(ethPayee(1), milliEther(1_100), n), []string{w4}, ErrNotBuilt},
			{"changed calldata", data, []string{w4}, ErrNotBuilt},
			{"a DELEGATECALL to a drainer", &safe.SafeTx{To: thiefAddr, Operation: safe.OpDelegateCall, Nonce: n}, []string{w4}, ErrDelegateCall},
			{"a batch through the pinned MultiSendCallOnly paying others", theft, []string{w4, w5}, ErrNotBuilt},
			{"a gas refund to a stranger", refund, []string{w4}, ErrRefund},
			{"a safeTxGas it did not set", gasField, []string{w4}, ErrNotBuilt},
			{"a skipped nonce", pay(ethPayee(1), milliEther(100), new(big.Int).Add(n, big.NewInt(1))), []string{w4}, ErrNonce},
			{"a replayed nonce", pay(ethPayee(1), milliEther(100), new(big.Int).Sub(n, big.NewInt(1))), []string{w4}, ErrNonce},
		} {
			_, refusal := e.ask(a.tx, a.ids...)
			if !errors.Is(refusal, a.want) {
				t.Errorf("%s: co-signer = %v; want %v", a.name, refusal, a.want)
				continue
			}
			// The attacker holds the hot key only: one signature does not
			// execute (the Safe's GS020), and nothing moves.
			thiefB, hot, before := e.balance(thiefAddr), e.balance(e.hot), e.nonce()
			r, err := e.exec(a.tx, e.sign(a.tx, e.hotKey))
			if !errors.Is(err, eth.ErrReverted) || r == nil || r.Status != types.ReceiptStatusFailed {
				t.Errorf("%s with the hot key alone: %v; want a mined, reverted execTransaction", a.name, err)
			}
			if e.balance(thiefAddr).Cmp(thiefB) != 0 || e.balance(e.hot).Cmp(hot) != 0 || e.nonce().Cmp(before) != 0 {
				t.Errorf("%s with the hot key alone moved something", a.name)
			}
			t.Logf("%s: refused (%v); with the hot key alone: reverted, nothing moved", a.name, refusal)
		}
		// The hash the hot signer asks for must be the one of what the
		// co-signer built: a right SafeTx sent with another's hash.
		right := pay(ethPayee(1), milliEther(100), n)
		if _, err := e.cs.SignSafeTx(e.ctx, SafeTxRequest{Withdrawals: []string{w4}, Tx: right, Hash: e.hash(pay(thiefAddr, milliEther(100), n)),
			GasLimit: ethGasLimit, MaxFeePerGas: big.NewInt(ethMaxFee)}); !errors.Is(err, ErrSafeTxHash) {
			t.Errorf("another hash = %v; want ErrSafeTxHash", err)
		}
		// Gas beyond fee_max: 30 million gas at 10 gwei is 0.3 ETH.
		if _, err := e.cs.SignSafeTx(e.ctx, SafeTxRequest{Withdrawals: []string{w4}, Tx: right, Hash: e.hash(right),
			GasLimit: 30_000_000, MaxFeePerGas: big.NewInt(ethMaxFee)}); !errors.Is(err, ErrFee) {
			t.Errorf("gas above fee_max = %v; want ErrFee", err)
		}
		// The right one is signed; then another SafeTx at its nonce is
		// not, though it pays a journaled withdrawal properly.
		sig, err := e.ask(right, w4)
		if err != nil {
			t.Fatal(err)
		}
		// after a restart too: what it signed is kept.
		e.restart()
		if _, err := e.ask(pay(ethPayee(2), milliEther(100), n), w5); !errors.Is(err, ErrNonceSigned) {
			t.Fatalf("a second SafeTx at a signed nonce = %v; want ErrNonceSigned", err)
		}
		if _, err := e.exec(right, e.sign(right, e.hotKey), sig.Signature); err != nil {
			t.Fatal(err)
		}
		// Executed, its signatures replayed: the Safe's nonce moved on.
		thiefB := e.balance(ethPayee(1))
		if r, err := e.exec(right, e.sign(right, e.hotKey), sig.Signature); !errors.Is(err, eth.ErrReverted) || r.Status != types.ReceiptStatusFailed {
			t.Fatalf("replayed execution: %v", err)
		}
		if e.balance(ethPayee(1)).Cmp(thiefB) != 0 {
			t.Fatal("a replayed execution paid again")
		}
		// w5 at the next nonce is signed and executes.
		tx5 := pay(ethPayee(2), milliEther(100), e.nonce())
		sig5, err := e.ask(tx5, w5)
		if err != nil {
			t.Fatalf("w5 at the next nonce: %v", err)
		}
		if _, err := e.exec(tx5, e.sign(tx5, e.hotKey), sig5.Signature); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Velocity", func(t *testing.T) {
		// The attacker holds the core and the hot signer, and three
		// customer accounts of its own whose addresses cooled down. It
		// journals nine withdrawals of 0.4 ETH (3.6 ETH), asks the
		// co-signer for each, and executes what it gets.
		e.clock = at.Add(2 * time.Hour)
		var ids []string
		for r := 0; r < 3; r++ {
			for c := ledger.OwnerID(4); c <= 6; c++ {
				ids = append(ids, e.withdrawEth(c, fmt.Sprintf("v%d", r), wei(400), e.clock))
			}
		}
		if err := e.feed(); err != nil {
			t.Fatal(err)
		}
		before := map[common.Address]*big.Int{}
		for c := ledger.OwnerID(4); c <= 6; c++ {
			before[ethPayee(c)] = e.balance(ethPayee(c))
		}
		gasSpent := new(big.Int)
		var signed, refused int
		var counted uint64
		for i, id := range ids {
			tx := safe.Transfer(ethPayee(ledger.OwnerID(4+i%3)), milliEther(400), e.nonce())
			sig, err := e.ask(tx, id)
			if err != nil {
				if !errors.Is(err, ErrVelocity) {
					t.Fatalf("%s refused for another reason: %v", id, err)
				}
				refused++
				continue
			}
			signed++
			counted += wei(400) + ethGasLimit*ethMaxFee
			r, err := e.exec(tx, e.sign(tx, e.hotKey), sig.Signature)
			if err != nil {
				t.Fatal(err)
			}
			gasSpent.Add(gasSpent, eth.Fee(r))
		}
		got := new(big.Int)
		for a, b := range before {
			got.Add(got, new(big.Int).Sub(e.balance(a), b))
		}
		take := new(big.Int).Add(got, gasSpent)
		t.Logf("attacker's take: %s wei to its addresses + %s wei of gas = %s wei (%d of 9 withdrawals signed, %d refused at the limit); counted by the co-signer %d wei; bound per_asset_hour %d wei",
			got, gasSpent, take, signed, refused, counted, uint64(ethPerAssetHour))
		if take.Cmp(new(big.Int).SetUint64(ethPerAssetHour)) > 0 {
			t.Fatalf("the attacker took %s wei (gas included) in an hour; the bound is %d", take, uint64(ethPerAssetHour))
		}
		if got.Sign() == 0 || refused == 0 {
			t.Fatalf("signed %d, refused %d: the attack did not run as written", signed, refused)
		}
		if counted > ethPerAssetHour || take.Cmp(new(big.Int).SetUint64(counted)) > 0 {
			t.Fatalf("counted %d wei; paid %s", counted, take)
		}
	})

	t.Run("TwoLeakedHotKeys", func(t *testing.T) {
		// The attacker holds the hot signer's key and the offline backup's:
		// two of the hot Safe's three owners. It never asks the co-signer;
		// it sends its own SafeTx straight to the node.
		thief, _ := crypto.GenerateKey()
		thiefAddr := crypto.PubkeyToAddress(thief.PublicKey)
		hot, cold := e.balance(e.hot), e.balance(e.cold)
		total := new(big.Int).Add(hot, cold)
		tx := safe.Transfer(thiefAddr, hot, e.nonce())
		r, err := e.exec(tx, e.sign(tx, e.hotKey), e.sign(tx, e.backupKey))
		if err != nil {
			t.Fatalf("the drain: %v", err)
		}
		got := e.balance(thiefAddr)
		t.Logf("two leaked hot owner keys: the attacker took %s wei, the hot Safe's whole balance (%s wei), in one execution of %d gas; the cold Safe kept %s wei; the hot Safe held %s of every %s wei of ether (%s basis points)",
			got, hot, r.GasUsed, e.balance(e.cold), hot, total, new(big.Int).Div(new(big.Int).Mul(hot, big.NewInt(10_000)), total))
		if got.Cmp(hot) != 0 || e.balance(e.hot).Sign() != 0 {
			t.Fatalf("the attacker got %s wei of the hot Safe's %s", got, hot)
		}
		if e.balance(e.cold).Cmp(cold) != 0 {
			t.Fatal("the cold Safe moved")
		}
		// Bounded by the hot cap: 5% of the ether held (at most 5 ETH here).
		if new(big.Int).Mul(got, big.NewInt(20)).Cmp(total) > 0 {
			t.Fatalf("the attacker got %s wei, above 5%% of %s", got, total)
		}
	})
}

// TestParsePolicySafes: a pinned Safe needs a kind, a unique name, a
// chain id, a well-formed address and MultiSendCallOnly (EIP-55 when
// mixed-case), and its asset's limits; one hot Safe an asset. A policy of
// Safes alone (no Bitcoin wallet) is usable.
func TestParsePolicySafes(t *testing.T) {
	hot, _ := descriptorOf(4, 5, 6)
	cold, _ := descriptorOf(7, 8, 9)
	safeA := common.HexToAddress("0x00000000000000000000000000000000000000a1").Hex()
	ms := common.HexToAddress("0x00000000000000000000000000000000000000b2").Hex()
	base := testPolicy("24h", hot, cold)
	eth := `"safes":[{"name":"hot-eth","kind":"hot-customer","asset":"ETH","chain_id":1337,"address":"` + safeA + `","multisend":"` + ms + `"}],
  "limits":{"ETH":{"per_customer_hour":1,"per_customer_day":2,"per_asset_hour":2,"per_asset_day":3,"fee_max":1,"fee_hour":1,"fee_day":1,"tx_hour":1,"tx_day":1,"yen_per_coin":1,"decimals":18},`
	good := strings.Replace(base, `"limits":{`, eth, 1)
	if _, err := ParsePolicy([]byte(good), regnet); err != nil {
		t.Fatal(err)
	}
	// Without the Bitcoin wallets: the hot Safe is enough.
	onlySafes := strings.Replace(good, good[strings.Index(good, `"wallets"`):strings.Index(good, `"safes"`)], "", 1)
	p, err := ParsePolicy([]byte(onlySafes), regnet)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := Open(Config{Net: regnet, Policy: p, StateDir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatalf("a co-signer of Safes only: %v", err)
	}
	cs.Close()
	mixed := strings.ToLower(safeA[:41]) + "A" // a mixed-case address with a wrong checksum
	desc := ethwallet.Descriptor{ChainID: 1337, Singleton: ethwallet.Address(common.HexToAddress("0x00000000000000000000000000000000000000c1")),
		Factory: ethwallet.Address(common.HexToAddress("0x00000000000000000000000000000000000000c2")), Fallback: ethwallet.Address(common.HexToAddress("0x00000000000000000000000000000000000000c3")),
		Threshold: 2, Owners: []ethwallet.Address{ethwallet.Address(common.HexToAddress("0x00000000000000000000000000000000000000d1")), ethwallet.Address(common.HexToAddress("0x00000000000000000000000000000000000000d2"))}}
	withDesc := strings.Replace(good, `"multisend":"`+ms+`"`, `"multisend":"`+ms+`","descriptor":"`+desc.String()+`"`, 1)
	if _, err := ParsePolicy([]byte(withDesc), regnet); err != nil {
		t.Fatalf("a Safe pinned with its descriptor: %v", err)
	}
	desc.ChainID = 1
	otherChain := desc.String()
	for _, c := range []struct{ name, from, to string }{
		{"no chain id", `"chain_id":1337`, `"chain_id":0`},
		{"bad address", `"address":"` + safeA, `"address":"0x12`},
		{"bad checksum", `"address":"` + safeA, `"address":"` + mixed},
		{"zero address", `"address":"` + safeA, `"address":"0x0000000000000000000000000000000000000000`},
		{"multisend is the Safe", `"multisend":"` + ms, `"multisend":"` + safeA},
		{"no limits", `"asset":"ETH"`, `"asset":"XEM"`},
		{"bad kind", `"kind":"hot-customer","asset":"ETH"`, `"kind":"warm","asset":"ETH"`},
		{"a wallet's name", `"name":"hot-eth"`, `"name":"hot"`},
		{"a descriptor that does not parse", `"multisend":"` + ms + `"`, `"multisend":"` + ms + `","descriptor":"safe-1.4.1(chain=1337)"`},
		{"a descriptor of another chain", `"multisend":"` + ms + `"`, `"multisend":"` + ms + `","descriptor":"` + otherChain + `"`},
		{"two hot Safes", `"safes":[`, `"safes":[{"name":"hot-eth2","kind":"hot-customer","asset":"ETH","chain_id":1337,"address":"` + ms + `","multisend":"` + safeA + `"},`},
	} {
		bad := strings.Replace(good, c.from, c.to, 1)
		if bad == good {
			t.Fatalf("%s: replacement did not apply", c.name)
		}
		if _, err := ParsePolicy([]byte(bad), regnet); !errors.Is(err, ErrPolicy) {
			t.Errorf("%s: ParsePolicy = %v; want ErrPolicy", c.name, err)
		}
	}
}
