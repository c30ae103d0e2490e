package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/keys"
	"kinko/internal/ledger"
	"kinko/internal/wallet"
	"kinko/internal/watch"
)

// TestColdCeremonyCLI runs the refill ceremony through the command line
// on a real node: three key files on "offline machines", two of which
// register the cold wallet, the core prepares the refill, an attacker on
// the online side rewrites the request to pay himself (coldAttack), two
// keys sign the true one in turn (one refusal first), the PSBTs are
// combined, finalized and broadcast, and the watcher records it.
func TestColdCeremonyCLI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	pass := filepath.Join(tmp, "pass")
	os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600)
	net := regtest.Net
	var keyFiles []string
	cold := &wallet.Descriptor{M: 2, Net: net}
	for i := 0; i < 3; i++ {
		f := filepath.Join(tmp, "cold-"+string(rune('a'+i))+".key")
		if out, code := run(t, "keys", "new", "--out", f, "--passphrase-file", pass, "--cheap-kdf"); code != 0 {
			t.Fatalf("keys new: %s", out)
		}
		k, err := keys.Load(f, "correct horse battery staple", net)
		if err != nil {
			t.Fatal(err)
		}
		ak, _, _ := wallet.AccountKey(k.Master, net, 0)
		cold.Keys = append(cold.Keys, ak)
		keyFiles = append(keyFiles, f)
	}
	hot := &wallet.Descriptor{M: 2, Net: net}
	for _, s := range []byte{4, 5, 6} {
		k, _ := keys.New(strings.NewReader(strings.Repeat(string(rune(s)), 32)), net)
		ak, _, _ := wallet.AccountKey(k.Master, net, 0)
		hot.Keys = append(hot.Keys, ak)
	}
	node := regtest.New(t, regtest.Options{})
	c, err := core.Open(ctx, core.Config{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	keyOf := foundCrew(t, c, tmp)
	for _, cmd := range []core.Command{
		core.CreateAssets{Assets: []ledger.Asset{{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}},
		core.CreateCustomers{IDs: []ledger.OwnerID{1}},
	} {
		if o, err := c.Submit(ctx, time.Now(), cmd); err != nil || o.Err != nil {
			t.Fatal(err, o.Err)
		}
	}
	registerWallets(t, c, custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: 2, Descriptor: cold.String(), Owner: ledger.OwnerHouseMin + 100},
		custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: 2, Descriptor: hot.String(), Owner: ledger.OwnerHouseMin + 101})
	if o, err := c.Submit(ctx, time.Now(), core.AssignAddress{Wallet: 1, Customer: 1}); err != nil || o.Err != nil {
		t.Fatal(err, o.Err)
	}
	book := wallet.NewBook()
	book.Add(1, cold, 0, 0, 10)
	w, err := watch.NewDeposits(ctx, c, node.Chain(), book, watch.DepositConfig{Asset: 2, Confirmations: 1, StartHeight: regtest.SegwitHeight})
	if err != nil {
		t.Fatal(err)
	}
	addr, _, _ := cold.Address(0, 0)
	node.SendTo(ctx, map[string]btcutil.Amount{addr.EncodeAddress(): 50_000_000})
	node.Generate(ctx, 1)
	if err := w.Step(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()

	// Each signing machine registers the cold wallet, after reading it in
	// full; the first at the prompt, the second from a script.
	coldDesc := cold.String()
	recv, _, _ := cold.Address(0, 0)
	chg, _, _ := cold.Address(1, 0)
	regs := []string{filepath.Join(tmp, "machine-a.registry"), filepath.Join(tmp, "machine-c.registry")}
	out, err := runIn(t, "correct horse battery staple\nyes\n", "cold", "register", "--key", keyFiles[0], "--registry", regs[0], "--name", "cold", "--kind", "cold-customer", "--descriptor", coldDesc)
	mine := fmt.Sprintf("key 1: fingerprint %x  derivation m/48h/1h/0h/2h  %s   <- this machine's key\n", cold.Keys[0].Fingerprint, cold.Keys[0].XPub)
	if err != nil || !strings.Contains(out, "wallet cold (cold-customer): 2-of-3 P2WSH multisig") || !strings.Contains(out, mine) ||
		strings.Count(out, "<- this machine's key") != 1 || !strings.Contains(out, "  descriptor: "+coldDesc+"\n") ||
		!strings.Contains(out, "first receive address: "+recv.EncodeAddress()) || !strings.Contains(out, "first change address:  "+chg.EncodeAddress()) ||
		!strings.Contains(out, "register this wallet? type yes: registered cold (cold-customer)") {
		t.Fatalf("cold register = %v\n%s", err, out)
	}
	if out, code := run(t, "cold", "register", "--key", keyFiles[2], "--passphrase-file", pass, "--registry", regs[1], "--name", "cold", "--kind", "cold-customer", "--descriptor", coldDesc, "--yes"); code != 0 || !strings.Contains(out, "<- this machine's key") {
		t.Fatalf("cold register (machine c) = %d %s", code, out)
	}
	// Machine c also registers the hot wallet as a destination: a refill
	// to it is then shown as ours there. A destination holding this
	// machine's key is refused.
	if out, code := run(t, "cold", "register", "--key", keyFiles[2], "--passphrase-file", pass, "--registry", regs[1], "--name", "hot", "--kind", "hot-customer", "--descriptor", hot.String(), "--destination", "--yes"); code != 0 || !strings.Contains(out, "as a DESTINATION") {
		t.Fatalf("cold register --destination = %d %s", code, out)
	}
	if out, code := run(t, "cold", "register", "--key", keyFiles[0], "--passphrase-file", pass, "--registry", regs[0], "--name", "cold2", "--kind", "cold-customer", "--descriptor", coldDesc, "--destination", "--yes"); code == 0 || !strings.Contains(out, "holds this machine's key") {
		t.Fatalf("a destination with this machine's key = %d %s", code, out)
	}

	req := filepath.Join(tmp, "refill.json")
	base, stop := serveCore(t, data)
	rpc := node.Config()
	out, code := run(t, "ceremony", "tiers", "--core", base, "--operator", "aiko", "--key", keyOf("aiko"), "--id", "refill-1", "--out", req,
		"--rpc", rpc.Host, "--rpcuser", rpc.User, "--rpcpass", rpc.Pass, "--notls")
	if code != 0 || !strings.Contains(out, "refill refill-1 of 1000000") {
		t.Fatalf("ceremony tiers = %d %s", code, out)
	}
	stop()
	hotAddr, _, _ := hot.Address(0, 0)
	coldAttack(t, tmp, req, pass, keyFiles[0], regs[0], cold)

	// The first signer reads the transaction in plain words and declines:
	// the cold input and change are the registered wallet's, the refill to
	// the hot wallet (none of this machine's keys) is an outside payment.
	out, err = runIn(t, "correct horse battery staple\nno\n", "cold", "sign", "--key", keyFiles[0], "--registry", regs[0], "--request", req, "--out", filepath.Join(tmp, "declined.psbt"))
	if err == nil || !strings.Contains(out, recv.EncodeAddress()+"  [ours: cold (cold-customer) receive #0]") ||
		!strings.Contains(out, "0.01000000 BTC  "+hotAddr.EncodeAddress()+"  [payment to an outside address]") ||
		!strings.Contains(out, chg.EncodeAddress()+"  [ours: cold (cold-customer) change #0]") ||
		!strings.Contains(out, "paid to outside addresses: 0.01000000 BTC") || !strings.Contains(out, "fee: ") {
		t.Fatalf("declined sign = %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(tmp, "declined.psbt")); err == nil {
		t.Fatal("a declined signature was written")
	}
	// Without this machine's registry, nothing is signed.
	if out, code := run(t, "cold", "sign", "--key", keyFiles[0], "--passphrase-file", pass, "--request", req, "--out", filepath.Join(tmp, "x.psbt"), "--yes"); code == 0 || !strings.Contains(out, `required flag(s) "registry" not set`) {
		t.Fatalf("sign without --registry = %d %s", code, out)
	}
	if out, code := run(t, "cold", "sign", "--key", keyFiles[0], "--passphrase-file", pass, "--registry", filepath.Join(tmp, "none.registry"), "--request", req, "--out", filepath.Join(tmp, "x.psbt"), "--yes"); code == 0 || !strings.Contains(out, "no wallet registry at") {
		t.Fatalf("sign with a missing registry = %d %s", code, out)
	}
	// The first signer confirms at the prompt; the second signs from a
	// script.
	signed := []string{filepath.Join(tmp, "signed-0.psbt"), filepath.Join(tmp, "signed-1.psbt")}
	if out, err := runIn(t, "correct horse battery staple\nyes\n", "cold", "sign", "--key", keyFiles[0], "--registry", regs[0], "--request", req, "--out", signed[0]); err != nil || !strings.Contains(out, "signed 1 input") {
		t.Fatalf("confirmed sign = %v\n%s", err, out)
	}
	if out, code := run(t, "cold", "sign", "--key", keyFiles[2], "--passphrase-file", pass, "--registry", regs[1], "--request", req, "--out", signed[1], "--yes"); code != 0 || !strings.Contains(out, "signed 1 input") ||
		!strings.Contains(out, hotAddr.EncodeAddress()+"  [ours: hot (hot-customer) receive #0]") {
		t.Fatalf("cold sign = %d %s", code, out)
	}
	comb := filepath.Join(tmp, "combined.psbt")
	if out, code := run(t, "cold", "combine", "--out", comb, signed[0], signed[1]); code != 0 {
		t.Fatalf("combine: %s", out)
	}
	txf := filepath.Join(tmp, "refill.tx")
	if out, code := run(t, "cold", "finalize", "--psbt", comb, "--out", txf); code != 0 {
		t.Fatalf("finalize: %s", out)
	}
	cfg := node.Config()
	if out, code := run(t, "cold", "broadcast", "--tx", txf, "--rpc", cfg.Host, "--rpcuser", cfg.User, "--rpcpass", cfg.Pass, "--notls"); code != 0 {
		t.Fatalf("broadcast: %s", out)
	}
	// A signer handed a PSBT of another transaction refuses it.
	other := filepath.Join(tmp, "other.psbt")
	p, _ := readPSBTFile(signed[0])
	p.UnsignedTx.TxOut[0].Value -= 1000
	writePSBTFile(other, p)
	if out, code := run(t, "cold", "sign", "--key", keyFiles[2], "--passphrase-file", pass, "--registry", regs[1], "--request", req, "--psbt", other, "--out", other+".s", "--yes"); code == 0 || !strings.Contains(out, "not the one the ceremony") {
		t.Fatalf("sign of a changed PSBT = %d %s", code, out)
	}

	node.Generate(ctx, 1)
	c, err = core.Open(ctx, core.Config{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w, _ = watch.NewDeposits(ctx, c, node.Chain(), book, watch.DepositConfig{Asset: 2, Confirmations: 1, StartHeight: regtest.SegwitHeight})
	if err := w.Step(ctx); err != nil {
		t.Fatal(err)
	}
	c.Read(func(st *core.State) {
		if cer, _ := st.Custody.Ceremony("refill-1"); cer.State != custody.CeremonyConfirmed {
			t.Fatalf("ceremony %s", cer.State)
		}
	})
	c.Close()
	out, code = run(t, "reserves", "--data", data)
	if code != 0 || !strings.Contains(out, "2.00%") {
		t.Fatalf("reserves after the refill = %d\n%s", code, out)
	}
}
