package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/keys"
	"kinko/internal/ledger"
	"kinko/internal/reserves/attest"
	"kinko/internal/reserves/bip322"
	"kinko/internal/wallet"
	"kinko/internal/watch"
)

// TestReservesAttestRegtest runs the proof of reserves through the command
// line on a real btcd regtest node: customers' deposits to the cold wallet
// are mined and credited; the liabilities are published; the message
// naming the exchange, BTC, the block and the root is written for the cold
// wallet; two of its three offline machines sign it (each shown the
// message; a request whose message was changed, or given to `cold sign`,
// is refused), the PSBTs are combined; the attestation shows the wallet's
// on-chain total at the block and the two-key proof verifying — and with
// one key's PSBT alone the proof does not verify and attest says so.
func TestReservesAttestRegtest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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
	cfg := node.Config()
	rpc := []string{"--rpc", cfg.Host, "--rpcuser", cfg.User, "--rpcpass", cfg.Pass, "--notls"}

	c, err := core.Open(ctx, core.Config{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	foundCrew(t, c, t.TempDir())
	for _, cmd := range []core.Command{
		core.CreateAssets{Assets: []ledger.Asset{{ID: 2, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}},
		core.CreateCustomers{IDs: []ledger.OwnerID{1, 2}},
	} {
		if o, err := c.Submit(ctx, time.Now(), cmd); err != nil || o.Err != nil {
			t.Fatal(cmd.Kind(), err, o.Err)
		}
	}
	registerWallets(t, c, custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: 2, Descriptor: cold.String(), Owner: ledger.OwnerHouseMin + 100},
		custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: 2, Descriptor: hot.String(), Owner: ledger.OwnerHouseMin + 101})
	for _, cmd := range []core.Command{
		core.AssignAddress{Wallet: 1, Customer: 1},
		core.AssignAddress{Wallet: 1, Customer: 2},
	} {
		if o, err := c.Submit(ctx, time.Now(), cmd); err != nil || o.Err != nil {
			t.Fatal(cmd.Kind(), err, o.Err)
		}
	}
	book := wallet.NewBook()
	book.Add(1, cold, 0, 0, 10)
	w, err := watch.NewDeposits(ctx, c, node.Chain(), book, watch.DepositConfig{Asset: 2, Confirmations: 1, StartHeight: regtest.SegwitHeight})
	if err != nil {
		t.Fatal(err)
	}
	a0, _, _ := cold.Address(0, 0)
	a1, _, _ := cold.Address(0, 1)
	if _, err := node.SendTo(ctx, map[string]btcutil.Amount{a0.EncodeAddress(): 50_000_000, a1.EncodeAddress(): 30_000_000}); err != nil {
		t.Fatal(err)
	}
	node.Generate(ctx, 1)
	if err := w.Step(ctx); err != nil {
		t.Fatal(err)
	}
	var owed ledger.Amount
	c.Read(func(s *core.State) {
		for _, id := range []ledger.OwnerID{1, 2} {
			a, _ := s.Ledger.Account(ledger.AccountKey{Owner: id, Asset: 2, Kind: ledger.KindAvailable})
			owed, _ = owed.Add(a.Balance())
		}
	})
	if owed != ledger.AmountOf(80_000_000) {
		t.Fatalf("credited %s; want 80000000", owed)
	}
	c.Close()

	out, code := run(t, "reserves", "publish", "--data", data, "--actor", "aiko")
	m := regexp.MustCompile(`BTC liabilities at entry (\d+): root ([0-9a-f]{64}), 2 customers, total 80000000 base units`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("publish = %d\n%s", code, out)
	}
	reqDir := filepath.Join(tmp, "requests")
	out, code = run(t, append([]string{"reserves", "message", "--data", data, "--exchange", "Kinko Exchange", "--out", reqDir}, rpc...)...)
	hm := regexp.MustCompile(`block (\d+) ([0-9a-f]{64}), liabilities of journal entry ` + m[1]).FindStringSubmatch(out)
	if code != 0 || hm == nil || strings.Count(out, "request written to") != 1 || !strings.Contains(out, "BTC wallet 1 (cold-customer)") {
		t.Fatalf("reserves message = %d\n%s", code, out)
	}
	height := hm[1]
	reqFile := filepath.Join(reqDir, fmt.Sprintf("por-BTC-%s-%s-wallet1.json", m[1], height))
	var req Request
	b, err := os.ReadFile(reqFile)
	if err != nil || json.Unmarshal(b, &req) != nil {
		t.Fatalf("request file: %v", err)
	}
	for _, want := range []string{"exchange: Kinko Exchange\n", "asset: BTC\n", "block: " + height + " " + hm[2] + "\n", "liabilities root: " + m[2] + "\n", "liabilities: 2 customers owed 0.8 BTC (80000000 base units) at journal entry " + m[1] + "\n", "wallet: 1 cold-customer, address " + a0.EncodeAddress()} {
		if !strings.Contains(req.Message, want) {
			t.Fatalf("the message lacks %q:\n%s", want, req.Message)
		}
	}

	// Machines a and c register the cold wallet; each is shown the
	// message and signs.
	regs := []string{filepath.Join(tmp, "machine-a.registry"), filepath.Join(tmp, "machine-c.registry")}
	for i, k := range []string{keyFiles[0], keyFiles[2]} {
		if out, code := run(t, "cold", "register", "--key", k, "--passphrase-file", pass, "--registry", regs[i], "--name", "cold", "--kind", "cold-customer", "--descriptor", cold.String(), "--yes"); code != 0 {
			t.Fatalf("cold register = %d %s", code, out)
		}
	}
	signed := []string{filepath.Join(tmp, "a.psbt"), filepath.Join(tmp, "c.psbt")}
	out, err = runIn(t, "correct horse battery staple\nyes\n", "cold", "sign-message", "--key", keyFiles[0], "--registry", regs[0], "--request", reqFile, "--out", signed[0])
	if err != nil || !strings.Contains(out, "proves control of: cold (cold-customer) receive #0, address "+a0.EncodeAddress()) ||
		!strings.Contains(out, "  | kinko proof of reserves\n  | exchange: Kinko Exchange\n  | asset: BTC\n") || !strings.Contains(out, "  | liabilities root: "+m[2]+"\n") ||
		!strings.Contains(out, "sign this message? type yes: signed the message with key") {
		t.Fatalf("cold sign-message (a) = %v\n%s", err, out)
	}
	if out, code := run(t, "cold", "sign-message", "--key", keyFiles[2], "--passphrase-file", pass, "--registry", regs[1], "--request", reqFile, "--out", signed[1], "--yes"); code != 0 {
		t.Fatalf("cold sign-message (c) = %d\n%s", code, out)
	}
	// The online side changes the message (a lower total) and keeps the
	// PSBT, or keeps the message and gives the PSBT of another; gives the
	// request to cold sign; hides a line with an escape sequence: all
	// refused, nothing written. (A forged message with its own true
	// to_sign is shown as it is: the operator reads the total.)
	forge := func(name string, edit func(r *Request)) string {
		r := req
		edit(&r)
		f := filepath.Join(tmp, name+".json")
		b, _ := json.Marshal(r)
		os.WriteFile(f, b, 0o644)
		return f
	}
	otherMsg := strings.Replace(req.Message, "owed 0.8 BTC (80000000", "owed 0.5 BTC (50000000", 1)
	pk, _ := txscript.PayToAddrScript(a0)
	otherPSBT, _ := bip322.NewPSBT(pk, []byte(otherMsg))
	wallet.AddInput(otherPSBT, 0, cold, 0, 0, 0)
	otherB64, _ := wallet.Encode(otherPSBT)
	for _, c := range []struct {
		name, file, cmd, want string
	}{
		{"changed message", forge("changed", func(r *Request) { r.Message = otherMsg }), "sign-message", "the PSBT is not BIP-322's to_sign of this message for this address: not signed, nothing written"},
		{"another PSBT", forge("other-psbt", func(r *Request) { r.PSBT, r.TxID = otherB64, otherPSBT.UnsignedTx.TxHash().String() }), "sign-message", "the PSBT is not BIP-322's to_sign of this message for this address"},
		{"escape", forge("escape", func(r *Request) { r.Message = req.Message + "\x1b[1A\x1b[2K" }), "sign-message", "holds characters that do not show plainly"},
		{"cold sign", reqFile, "sign", "is a BIP-322 message to sign, not a transaction: use kinko cold sign-message"},
	} {
		f := filepath.Join(tmp, c.name+".psbt")
		out, code := run(t, "cold", c.cmd, "--key", keyFiles[0], "--passphrase-file", pass, "--registry", regs[0], "--request", c.file, "--out", f, "--yes")
		if code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("%s: %d\n%s\nwant %q", c.name, code, out, c.want)
		}
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s: a PSBT was written", c.name)
		}
	}
	both := filepath.Join(tmp, "both.psbt")
	if out, code := run(t, "cold", "combine", "--out", both, signed[0], signed[1]); code != 0 {
		t.Fatalf("cold combine = %d %s", code, out)
	}

	// Attest with the two-key proof: the wallet's total on chain at the
	// block, the proof verifies, everything covered.
	outDir := filepath.Join(tmp, "report")
	out, code = run(t, append([]string{"reserves", "attest", "--data", data, "--at", m[1], "--height", height, "--exchange", "Kinko Exchange", "--signature", both, "--out", outDir}, rpc...)...)
	if code != 0 || !strings.Contains(out, "BTC: owed 0.8, held 0.8 on chain at block "+height+", coverage 100.00%; root "+m[2]+" published at entry") ||
		!strings.Contains(out, "wallet 1 (cold-customer) on chain 0.8: BIP-322 proof verifies") || !strings.Contains(out, "every asset covered, published and signed") {
		t.Fatalf("reserves attest = %d\n%s", code, out)
	}
	var rep attest.Report
	b, _ = os.ReadFile(filepath.Join(outDir, "attestation.json"))
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	btcRow := rep.Assets[0]
	wr := btcRow.Wallets[0]
	if !rep.OK || btcRow.Block.Hash != hm[2] || *wr.OnChain != ledger.AmountOf(80_000_000) || wr.UTXOs != 2 || !wr.Signature.Verifies || wr.Signature.Message != req.Message {
		t.Fatalf("report %+v / %+v", btcRow, wr)
	}
	// The full signature checks by itself, for the wallet's address.
	if err := bip322.VerifyFull(pk, []byte(wr.Signature.Message), wr.Signature.Signature); err != nil {
		t.Fatalf("the report's signature: %v", err)
	}
	if page, err := os.ReadFile(filepath.Join(outDir, "attestation.html")); err != nil || !strings.Contains(string(page), "<svg") || !strings.Contains(string(page), "verifies") {
		t.Fatalf("attestation.html: %v", err)
	}

	// One key's PSBT alone: the proof does not verify; attest exits 3.
	outDir = filepath.Join(tmp, "report-one")
	out, code = run(t, append([]string{"reserves", "attest", "--data", data, "--at", m[1], "--height", height, "--exchange", "Kinko Exchange", "--signature", signed[0], "--out", outDir}, rpc...)...)
	if code != 3 || !strings.Contains(out, "wallet 1 (cold-customer) on chain 0.8: BIP-322 proof does NOT verify: bip322: signature invalid") {
		t.Fatalf("attest with one key = %d\n%s", code, out)
	}
	b, _ = os.ReadFile(filepath.Join(outDir, "attestation.json"))
	rep = attest.Report{}
	json.Unmarshal(b, &rep)
	if rep.OK || rep.Assets[0].Wallets[0].Signature.Verifies || *rep.Assets[0].Wallets[0].OnChain != ledger.AmountOf(80_000_000) {
		t.Fatalf("report with one key: %s", b)
	}
}
