package cli

import (
	"context"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain/eth/devnet"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/chain/eth/safe/safetest"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ethcold"
	"kinko/internal/ledger"
)

// TestSafeCeremonyJournaledCLI: `kinko ceremony safe` journals the refill
// through the core's API as the operator signed in, before the request is
// written: the journal holds the ceremony, its SafeTx's hash the
// request's, its actor the operator, its payment the hot wallet's exact
// wei. Refused with nothing journaled or written: a paid address without
// --dest, a destination the core refuses (a refill to the house's cold
// wallet), the same id again, and --unjournaled with core flags.
func TestSafeCeremonyJournaledCLI(t *testing.T) {
	art, err := safe.LoadInstalled()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	node := devnet.New(t, devnet.Options{})
	w := &safeWorld{t: t, ctx: ctx, node: node, c: node.Client()}
	if w.gas, err = node.NewKey(ctx, weiOf(100_00)); err != nil {
		t.Fatal(err)
	}
	if w.d, err = safe.Deploy(ctx, w.c, w.gas, art, safe.L2); err != nil {
		t.Fatal(err)
	}
	owners := func() []common.Address {
		var out []common.Address
		for range 3 {
			k, _ := crypto.GenerateKey()
			out = append(out, crypto.PubkeyToAddress(k.PublicKey))
		}
		return out
	}
	coldOwners, hotOwners, houseOwners, cold2Owners := owners(), owners(), owners(), owners()
	w.cold = w.newSafe(coldOwners, 1, weiOf(20_00))
	w.hot = w.newSafe(hotOwners, 2, weiOf(1_00))
	house := w.newSafe(houseOwners, 3, new(big.Int))
	w.cold2 = w.newSafe(cold2Owners, 4, new(big.Int))

	c, err := core.Open(ctx, core.Config{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	keyOf := foundCrew(t, c, tmp)
	if o, err := c.Submit(ctx, time.Now(), core.CreateAssets{Assets: []ledger.Asset{{ID: 3, Code: "ETH", Decimals: 18, Class: ledger.ClassChain}}}); err != nil || o.Err != nil {
		t.Fatal(err, o.Err)
	}
	desc := func(o []common.Address) string { return safetest.Descriptor(w.d, o).String() }
	registerWallets(t, c,
		custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: 3, Descriptor: desc(coldOwners), Owner: custody.WalletOwner(1)},
		custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: 3, Descriptor: desc(hotOwners), Owner: custody.WalletOwner(2)},
		custody.Wallet{ID: 3, Kind: custody.ColdHouse, Asset: 3, Descriptor: desc(houseOwners), Owner: custody.WalletOwner(3)},
		custody.Wallet{ID: 4, Kind: custody.ColdCustomer, Asset: 3, Descriptor: desc(cold2Owners), Owner: custody.WalletOwner(4)})
	c.Close()
	base, stop := serveCore(t, data)
	as := []string{"--core", base, "--operator", "aiko", "--key", keyOf("aiko")}
	req := filepath.Join(tmp, "refill.json")
	safeCmd := func(out string, extra ...string) (string, int) {
		args := append([]string{"ceremony", "safe", "--eth-rpc", node.HTTPURL(), "--safe", w.cold.Hex(), "--purpose", "refill", "--out", out}, extra...)
		return run(t, args...)
	}
	for _, bad := range []struct {
		name, want string
		args       []string
	}{
		{"no --dest", "give --dest " + w.hot.Hex(), append([]string{"--id", "r1", "--wallet", "1", "--pay", w.hot.Hex() + "=5"}, as...)},
		{"no --wallet", "give --wallet", append([]string{"--id", "r1", "--pay", w.hot.Hex() + "=5", "--dest", w.hot.Hex() + "=2"}, as...)},
		{"a refill to the house", "not both customers' or both the house's", append([]string{"--id", "r1", "--wallet", "1", "--pay", house.Hex() + "=5", "--dest", house.Hex() + "=3"}, as...)},
		{"the wrong wallet named as source", "a refill is paid by a cold wallet", append([]string{"--id", "r1", "--wallet", "2", "--pay", w.hot.Hex() + "=5", "--dest", w.hot.Hex() + "=1"}, as...)},
		{"unjournaled with an operator", "--unjournaled journals nothing", append([]string{"--id", "r1", "--unjournaled", "--pay", w.hot.Hex() + "=5"}, as...)},
		{"no operator", "--core URL --operator NAME --key FILE", []string{"--id", "r1", "--wallet", "1", "--pay", w.hot.Hex() + "=5", "--dest", w.hot.Hex() + "=2"}},
	} {
		out, code := safeCmd(req, bad.args...)
		if code == 0 || !strings.Contains(out, bad.want) {
			t.Fatalf("%s = %d %s", bad.name, code, out)
		}
		if _, err := os.Stat(req); err == nil {
			t.Fatalf("%s: the request was written", bad.name)
		}
	}
	out, code := safeCmd(req, append([]string{"--id", "refill-eth-1", "--wallet", "1", "--pay", w.hot.Hex() + "=5", "--dest", w.hot.Hex() + "=2"}, as...)...)
	if code != 0 || !strings.Contains(out, "refill refill-eth-1: 5.000000000000000000 ETH in 1 call(s) from Safe "+w.cold.Hex()+" at nonce 0") || !strings.Contains(out, "(journaled by aiko)") {
		t.Fatalf("ceremony safe = %d %s", code, out)
	}
	again := filepath.Join(tmp, "again.json")
	if out, code := safeCmd(again, append([]string{"--id", "refill-eth-1", "--wallet", "1", "--pay", w.hot.Hex() + "=5", "--dest", w.hot.Hex() + "=2"}, as...)...); code == 0 || !strings.Contains(out, "did not journal") {
		t.Fatalf("the same id again = %d %s", code, out)
	}
	if _, err := os.Stat(again); err == nil {
		t.Fatal("a refused ceremony's request was written")
	}
	// A sweep batched through the MultiSendCallOnly: 1 ETH to the hot
	// wallet, 2.5 ETH to the second cold customer wallet, journaled call
	// by call.
	sweep := filepath.Join(tmp, "sweep.json")
	out, code = run(t, append([]string{"ceremony", "safe", "--eth-rpc", node.HTTPURL(), "--safe", w.cold.Hex(), "--purpose", "sweep", "--out", sweep, "--id", "sweep-eth-1",
		"--wallet", "1", "--multisend", w.d.MultiSendCallOnly.Hex(), "--pay", w.hot.Hex() + "=1", "--pay", w.cold2.Hex() + "=2.5",
		"--dest", w.hot.Hex() + "=2", "--dest", w.cold2.Hex() + "=4"}, as...)...)
	if code != 0 || !strings.Contains(out, "3.500000000000000000 ETH in 2 call(s)") || !strings.Contains(out, "(journaled by aiko)") {
		t.Fatalf("ceremony safe (sweep) = %d %s", code, out)
	}
	stop()
	r, err := ethcold.ReadRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := r.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	c, err = core.Open(ctx, core.Config{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Read(func(s *core.State) {
		cs := s.Custody.Ceremonies()
		if len(cs) != 2 || len(cs[1].Pays) != 2 || cs[1].Pays[1].Wallet != 4 || cs[1].Pays[1].Amount.Big().Cmp(weiOf(2_50)) != 0 || cs[1].Safe.Operation != 1 {
			t.Fatalf("the sweep journaled: %+v", cs)
		}
		if len(cs) != 2 {
			t.Fatalf("%d ceremonies journaled", len(cs))
		}
		cer := cs[0]
		if cer.ID != "refill-eth-1" || cer.Actor != "aiko" || cer.State != custody.CeremonyPrepared || common.Hash(cer.TxID) != tx.Hash || cer.Source != 1 ||
			len(cer.Pays) != 1 || cer.Pays[0].Wallet != 2 || cer.Pays[0].Address != w.hot.Hex() || cer.Pays[0].Amount.Big().Cmp(weiOf(5_00)) != 0 ||
			!strings.EqualFold(cer.Safe.Safe, w.cold.Hex()) || cer.Safe.Nonce != 0 {
			t.Fatalf("journaled %+v %+v", cer, cer.Safe)
		}
	})
}
