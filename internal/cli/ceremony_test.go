package cli

import (
	"context"
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
// on a real node: three key files on "offline machines", the core prepares
// the refill, two keys sign it in turn (one refusal first), the PSBTs are
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
	for _, cmd := range []core.Command{
		core.CreateAssets{Assets: []ledger.Asset{{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}},
		core.CreateCustomers{IDs: []ledger.OwnerID{1}},
		core.RegisterWallet{Wallet: custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: 2, Descriptor: cold.String(), Owner: ledger.OwnerHouseMin + 100}},
		core.RegisterWallet{Wallet: custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: 2, Descriptor: hot.String(), Owner: ledger.OwnerHouseMin + 101}},
		core.AssignAddress{Wallet: 1, Customer: 1},
	} {
		if o, err := c.Submit(ctx, time.Now(), cmd); err != nil || o.Err != nil {
			t.Fatal(err, o.Err)
		}
	}
	book := wallet.NewBook()
	book.Add(1, cold, 0, 0, 10)
	w, err := watch.NewDeposits(ctx, c, node.Client(), book, watch.DepositConfig{Asset: 2, Confirmations: 1, StartHeight: regtest.SegwitHeight})
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

	req := filepath.Join(tmp, "refill.json")
	out, code := run(t, "ceremony", "tiers", "--data", data, "--id", "refill-1", "--actor", "aiko", "--out", req)
	if code != 0 || !strings.Contains(out, "refill refill-1 of 1000000") {
		t.Fatalf("ceremony tiers = %d %s", code, out)
	}
	// The first signer reads the transaction in plain words and declines.
	root := NewRoot()
	var buf strings.Builder
	root.SetArgs([]string{"cold", "sign", "--key", keyFiles[0], "--request", req, "--out", filepath.Join(tmp, "declined.psbt")})
	root.SetIn(strings.NewReader("correct horse battery staple\nno\n"))
	root.SetOut(&buf)
	root.SetErr(&buf)
	if err := root.Execute(); err == nil || !strings.Contains(buf.String(), "ours: hot-customer wallet 2, receive 0") || !strings.Contains(buf.String(), "ours: cold-customer wallet 1, receive 0") {
		t.Fatalf("declined sign = %v\n%s", err, buf.String())
	}
	if _, err := os.Stat(filepath.Join(tmp, "declined.psbt")); err == nil {
		t.Fatal("a declined signature was written")
	}
	// The first signer confirms at the prompt; the second signs from a
	// script.
	signed := []string{filepath.Join(tmp, "signed-0.psbt"), filepath.Join(tmp, "signed-1.psbt")}
	root = NewRoot()
	buf.Reset()
	root.SetArgs([]string{"cold", "sign", "--key", keyFiles[0], "--request", req, "--out", signed[0]})
	root.SetIn(strings.NewReader("correct horse battery staple\nyes\n"))
	root.SetOut(&buf)
	root.SetErr(&buf)
	if err := root.Execute(); err != nil || !strings.Contains(buf.String(), "signed 1 input") {
		t.Fatalf("confirmed sign = %v\n%s", err, buf.String())
	}
	if out, code := run(t, "cold", "sign", "--key", keyFiles[2], "--passphrase-file", pass, "--request", req, "--out", signed[1], "--yes"); code != 0 || !strings.Contains(out, "signed 1 input") {
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
	if out, code := run(t, "cold", "sign", "--key", keyFiles[1], "--passphrase-file", pass, "--request", req, "--psbt", other, "--out", other+".s", "--yes"); code == 0 || !strings.Contains(out, "not the one the ceremony") {
		t.Fatalf("sign of a changed PSBT = %d %s", code, out)
	}

	node.Generate(ctx, 1)
	c, err = core.Open(ctx, core.Config{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w, _ = watch.NewDeposits(ctx, c, node.Client(), book, watch.DepositConfig{Asset: 2, Confirmations: 1, StartHeight: regtest.SegwitHeight})
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
