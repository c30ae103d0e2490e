package cli

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/devnet"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/chain/eth/safe/safetest"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ethcold"
	"kinko/internal/keys"
	"kinko/internal/ledger"
	"kinko/internal/operators"
	"kinko/internal/people"
)

// TestDepositSweepCLI runs a deposit Safe's sweep through the command
// line on a real geth node: 0.7 ETH + 5 wei sent to customer 1's deposit
// address (index 0 of the cold customer Safe wallet, no code there);
// `kinko ceremony sweep-deposits` journals its sweep into the wallet's
// Safe (salt nonce 1000) through the core's API, bad inputs refused with
// nothing journaled or written; two offline machines registered with the
// wallet's descriptor derive the deposit Safe themselves, show it and
// sign, and refuse rewritten requests (paying the attacker, another
// wallet's deposit Safe, a descriptor not theirs); `kinko cold submit`
// deploys the deposit proxy from the gas account and executes: the
// wallet's Safe gains exactly the deposit, the deposit Safe holds 0.
func TestDepositSweepCLI(t *testing.T) {
	art, err := safe.LoadInstalled()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	const passphrase = "correct horse battery staple"
	pass := filepath.Join(tmp, "pass")
	os.WriteFile(pass, []byte(passphrase+"\n"), 0o600)
	node := devnet.New(t, devnet.Options{})
	w := &safeWorld{t: t, ctx: ctx, node: node, c: node.Client()}
	if w.gas, err = node.NewKey(ctx, weiOf(100_00)); err != nil {
		t.Fatal(err)
	}
	if w.d, err = safe.Deploy(ctx, w.c, w.gas, art, safe.L2); err != nil {
		t.Fatal(err)
	}
	cid := w.c.ChainID().String()
	var keyFiles []string
	for i := range 3 {
		f := filepath.Join(tmp, fmt.Sprintf("cold-%c.key", 'a'+i))
		if out, code := run(t, "keys", "new", "--out", f, "--passphrase-file", pass, "--cheap-kdf"); code != 0 {
			t.Fatalf("keys new: %s", out)
		}
		k, err := keys.Load(f, passphrase, regtest.Net)
		if err != nil {
			t.Fatal(err)
		}
		ek, err := k.EthereumKey()
		if err != nil {
			t.Fatal(err)
		}
		keyFiles = append(keyFiles, f)
		w.coldOwners = append(w.coldOwners, crypto.PubkeyToAddress(ek.PublicKey))
	}
	var otherOwners []common.Address
	for range 3 {
		k, _ := crypto.GenerateKey()
		otherOwners = append(otherOwners, crypto.PubkeyToAddress(k.PublicKey))
	}
	thief, _ := crypto.GenerateKey()
	w.attacker = crypto.PubkeyToAddress(thief.PublicKey)
	coldDesc, otherDesc := safetest.Descriptor(w.d, w.coldOwners).String(), safetest.Descriptor(w.d, otherOwners).String()
	const salt = 1000
	w.cold = w.newSafe(w.coldOwners, salt, new(big.Int))
	coldInit, _ := w.d.Initializer(safe.Config{Owners: w.coldOwners, Threshold: 2})
	otherInit, _ := w.d.Initializer(safe.Config{Owners: otherOwners, Threshold: 2})
	dep0, dep1 := w.d.Predictor(coldInit).AddressIndex(0), w.d.Predictor(coldInit).AddressIndex(1)
	otherDep0 := w.d.Predictor(otherInit).AddressIndex(0)
	amount := new(big.Int).Add(weiOf(70), big.NewInt(5))
	for _, a := range []common.Address{dep0, otherDep0} {
		if _, err := node.Fund(ctx, a, amount); err != nil {
			t.Fatal(err)
		}
	}

	// The core: the cold customer Safe wallet 1 (customers 1 and 2 hold
	// its deposit addresses 0 and 1) and another, wallet 4 (customer 1
	// holds its 0).
	data := filepath.Join(tmp, "data")
	c, err := core.Open(ctx, core.Config{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	keyOf := foundCrew(t, c, tmp)
	submit := func(cmd core.Command) {
		t.Helper()
		if o, err := c.Submit(ctx, time.Now(), cmd); err != nil || o.Err != nil {
			t.Fatal(cmd.Kind(), err, o.Err)
		}
	}
	submit(core.CreateAssets{Assets: []ledger.Asset{{ID: 3, Code: "ETH", Decimals: 18, Class: ledger.ClassChain}}})
	registerWallets(t, c,
		custody.Wallet{ID: 1, Kind: custody.ColdCustomer, Asset: 3, Descriptor: coldDesc, Owner: custody.WalletOwner(1)},
		custody.Wallet{ID: 4, Kind: custody.ColdCustomer, Asset: 3, Descriptor: otherDesc, Owner: custody.WalletOwner(4)})
	for i := ledger.OwnerID(1); i <= 2; i++ {
		submit(core.SignUp{Customer: people.Customer{ID: i, Email: fmt.Sprintf("c%d@example.jp", i), Name: "C", Creds: people.Credentials{Commit: strings.Repeat("ab", 32)}}})
		submit(core.AssignAddress{Wallet: 1, Customer: i})
	}
	submit(core.AssignAddress{Wallet: 4, Customer: 1})
	// A listed token, TT (the Safe package's ERC20Token, its supply the
	// gas account's), 5,000 base units of it at deposit address 1; and
	// the same code deployed again, an impostor.
	token, err := safetest.DeployERC20(ctx, w.c, w.gas)
	if err != nil {
		t.Fatal(err)
	}
	impostor, err := safetest.DeployERC20(ctx, w.c, w.gas)
	if err != nil {
		t.Fatal(err)
	}
	submit(core.CreateAssets{Assets: []ledger.Asset{{ID: 7, Code: "TT", Decimals: 18, Class: ledger.ClassChain}}})
	for _, cmd := range operators.Crew("cli test").RegisterTokens(time.Now(), custody.Token{Asset: 7, ChainID: w.c.ChainID().Uint64(), Contract: token.Hex()}) {
		submit(cmd)
	}
	for _, contract := range []common.Address{token, impostor} {
		if _, err := w.c.Send(ctx, w.gas, eth.Tx{To: &contract, Data: safetest.TransferCall(dep1, big.NewInt(5_000)), Gas: 100_000}); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	base, stop := serveCore(t, data)
	as := []string{"--core", base, "--operator", "aiko", "--key", keyOf("aiko")}
	outDir := filepath.Join(tmp, "requests")
	os.Mkdir(outDir, 0o755)
	sweepCmd := func(extra ...string) (string, int) {
		args := append([]string{"ceremony", "sweep-deposits", "--eth-rpc", node.HTTPURL(), "--out-dir", outDir}, extra...)
		return run(t, append(args, as...)...)
	}
	std := func(over map[string]string) []string {
		f := map[string]string{"--wallet": "1", "--descriptor": coldDesc, "--safe-salt": "1000", "--deposit": "0,1", "--id-prefix": "sweep-eth-1"}
		for k, v := range over {
			f[k] = v
		}
		var out []string
		for _, k := range []string{"--wallet", "--descriptor", "--safe-salt", "--deposit", "--id-prefix"} {
			if f[k] != "" {
				out = append(out, k, f[k])
			}
		}
		return out
	}
	for _, bad := range []struct {
		name, want string
		over       map[string]string
	}{
		{"no deposit", "give 1 to 500 --deposit", map[string]string{"--deposit": ""}},
		{"a deposit twice", "once", map[string]string{"--deposit": "0,0"}},
		{"the wallet's Safe as a deposit", "is the wallet's Safe", map[string]string{"--deposit": "1000"}},
		{"a bad descriptor", "--descriptor", map[string]string{"--descriptor": strings.Replace(coldDesc, "threshold=2", "threshold=1", 1)}},
		{"the wallet's Safe not deployed", "has no code", map[string]string{"--safe-salt": "999"}},
		{"nothing to sweep", "holds anything", map[string]string{"--deposit": "1"}},
		{"a deposit index never handed out", "never handed out", map[string]string{"--deposit": "5"}},
		{"another wallet's deposit Safe", "is not deposit address 0 of wallet 4", map[string]string{"--wallet": "4"}},
		{"a bad id prefix", "--id-prefix", map[string]string{"--id-prefix": "a b"}},
	} {
		if bad.name == "a deposit index never handed out" {
			// Index 5 of wallet 1, handed to no one, holds Ether too.
			if _, err := node.Fund(ctx, w.d.Predictor(coldInit).AddressIndex(5), big.NewInt(1)); err != nil {
				t.Fatal(err)
			}
		}
		out, code := sweepCmd(std(bad.over)...)
		if code == 0 || !strings.Contains(out, bad.want) {
			t.Fatalf("%s = %d %s", bad.name, code, out)
		}
		if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
			t.Fatalf("%s: %d request files written", bad.name, len(ents))
		}
	}
	// The token's sweep of deposit 1: another contract or an unlisted
	// code refused, nothing written.
	tokenReq := filepath.Join(outDir, "sweep-tt-1-d1.json")
	for _, bad := range []struct{ name, token, want string }{
		{"the impostor's contract", "TT=" + impostor.Hex(), "is not one call of " + token.Hex() + "'s transfer"},
		{"an unlisted asset", "XX=" + token.Hex(), "not a listed asset"},
		{"no contract", "TT", "CODE=0xCONTRACT"},
	} {
		if out, code := sweepCmd(append(std(map[string]string{"--deposit": "1", "--id-prefix": "sweep-tt-1"}), "--token", bad.token)...); code == 0 || !strings.Contains(out, bad.want) {
			t.Fatalf("token sweep with %s = %d %s", bad.name, code, out)
		}
		if _, err := os.Stat(tokenReq); err == nil {
			t.Fatalf("token sweep with %s: written", bad.name)
		}
	}
	if out, code := sweepCmd(append(std(map[string]string{"--deposit": "1", "--id-prefix": "sweep-tt-1"}), "--token", "TT="+token.Hex())...); code != 0 ||
		!strings.Contains(out, "sweep sweep-tt-1-d1: 5000 TT base units from deposit Safe 1 ("+dep1.Hex()+") at its nonce 0 to the wallet's Safe "+w.cold.Hex()) {
		t.Fatalf("token sweep = %d %s", code, out)
	}
	os.Rename(tokenReq, filepath.Join(tmp, "sweep-tt-1-d1.json"))
	tokenReq = filepath.Join(tmp, "sweep-tt-1-d1.json")
	out, code := sweepCmd(std(nil)...)
	req := filepath.Join(outDir, "sweep-eth-1-d0.json")
	if code != 0 || !strings.Contains(out, "deposit Safe 1 ("+dep1.Hex()+") holds nothing: skipped") ||
		!strings.Contains(out, "sweep sweep-eth-1-d0: 0.700000000000000005 ETH from deposit Safe 0 ("+dep0.Hex()+") at its nonce 0 to the wallet's Safe "+w.cold.Hex()) ||
		!strings.Contains(out, "journaled by aiko); request written to "+req) {
		t.Fatalf("ceremony sweep-deposits = %d %s", code, out)
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
	if c, err = core.Open(ctx, core.Config{Dir: data}); err != nil {
		t.Fatal(err)
	}
	c.Read(func(s *core.State) {
		cs := s.Custody.Ceremonies()
		if len(cs) != 2 || cs[0].ID != "sweep-tt-1-d1" || cs[0].Deposit == nil || *cs[0].Deposit != (custody.DepositSweep{Index: 1, SafeSalt: salt, Asset: 7}) || cs[0].Pays[0].Amount.Big().Int64() != 5_000 {
			t.Fatalf("the token sweep journaled %+v", cs)
		}
		cs = cs[1:]
		if cs[0].Deposit == nil || *cs[0].Deposit != (custody.DepositSweep{Index: 0, SafeSalt: salt}) ||
			common.Hash(cs[0].TxID) != tx.Hash || cs[0].Pays[0].Wallet != 1 || cs[0].Pays[0].Amount.Big().Cmp(amount) != 0 || cs[0].Actor != "aiko" {
			t.Fatalf("journaled %+v", cs)
		}
	})
	c.Close()

	// Two offline machines register the wallet's Safe with its
	// descriptor; one naming other owners is refused.
	regs := []string{filepath.Join(tmp, "machine-a.safes"), filepath.Join(tmp, "machine-c.safes")}
	mk := []string{keyFiles[0], keyFiles[2]}
	owners := strings.Join([]string{w.coldOwners[0].Hex(), w.coldOwners[1].Hex(), w.coldOwners[2].Hex()}, ",")
	register := func(i int, desc string) (string, int) {
		return run(t, "cold", "register", "--key", mk[i], "--passphrase-file", pass, "--registry", regs[i], "--name", "cold", "--kind", "cold-customer",
			"--safe", w.cold.Hex(), "--chain-id", cid, "--owners", owners, "--threshold", "2", "--safe-descriptor", desc, "--token", "TT:18:"+token.Hex(), "--yes")
	}
	if out, code := register(0, otherDesc); code == 0 || !strings.Contains(out, "the descriptor's owner 1 is") || !strings.Contains(out, "nothing registered") {
		t.Fatalf("a descriptor of other owners = %d %s", code, out)
	}
	for i := range regs {
		if out, code := register(i, coldDesc); code != 0 || !strings.Contains(out, "wallet descriptor: "+coldDesc) {
			t.Fatalf("cold register --safe-descriptor = %d %s", code, out)
		}
	}

	// Rewritten requests, each refused with nothing written.
	rewrite := func(name string, f func(r *ethcold.Request)) string {
		r, _ := ethcold.ReadRequest(req)
		f(r)
		rehash(t, r)
		p := filepath.Join(tmp, name+".json")
		if err := ethcold.WriteNew(p, r, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, bad := range []struct {
		name, want, file string
	}{
		{"pays the attacker", "not cold (cold-customer)'s own Safe", rewrite("attacker", func(r *ethcold.Request) { r.TypedData.Message.To = w.attacker.Hex() })},
		{"another wallet's deposit Safe", "is not deposit Safe 0 of any cold customer Safe registered", rewrite("other", func(r *ethcold.Request) {
			r.TypedData.Domain.VerifyingContract = otherDep0.Hex()
			r.Deposit.Descriptor = otherDesc
		})},
		{"deposit 1 named for deposit 0's Safe", "is not deposit Safe 1", rewrite("index", func(r *ethcold.Request) { r.Deposit.Index = 1 })},
		{"a descriptor not this machine's", "this machine registered", rewrite("desc", func(r *ethcold.Request) { r.Deposit.Descriptor = otherDesc })},
		{"the sweep without its deposit index", "not registered on this machine", rewrite("plain", func(r *ethcold.Request) { r.Deposit = nil })},
	} {
		sig := filepath.Join(tmp, "sig-"+bad.name+".json")
		before, _ := os.ReadFile(regs[0])
		out, code := run(t, "cold", "sign", "--key", mk[0], "--passphrase-file", pass, "--registry", regs[0], "--request", bad.file, "--out", sig, "--yes")
		if code == 0 || !strings.Contains(out, bad.want) || !strings.Contains(out, "not signed, nothing written") {
			t.Fatalf("sign %s = %d %s", bad.name, code, out)
		}
		after, _ := os.ReadFile(regs[0])
		if _, err := os.Stat(sig); err == nil || string(before) != string(after) {
			t.Fatalf("sign %s: written", bad.name)
		}
	}
	sigs := []string{filepath.Join(tmp, "sig-a.json"), filepath.Join(tmp, "sig-c.json")}
	for i := range sigs {
		out, code := run(t, "cold", "sign", "--key", mk[i], "--passphrase-file", pass, "--registry", regs[i], "--request", req, "--out", sigs[i], "--yes")
		if code != 0 || !strings.Contains(out, "Safe: deposit Safe 0 of cold (cold-customer): "+dep0.Hex()+", derived on this machine") ||
			!strings.Contains(out, "0.700000000000000005 ETH (700000000000000005 wei) to "+w.cold.Hex()+"  [ours: cold (cold-customer)'s own Safe]") {
			t.Fatalf("cold sign (machine %d) = %d %s", i, code, out)
		}
	}
	// Another SafeTx at that deposit Safe's nonce, on a machine that
	// signed one: refused.
	half := rewrite("half", func(r *ethcold.Request) { r.TypedData.Message.Value = weiOf(35).String() })
	if out, code := run(t, "cold", "sign", "--key", mk[0], "--passphrase-file", pass, "--registry", regs[0], "--request", half, "--out", filepath.Join(tmp, "x.json"), "--yes"); code == 0 ||
		!strings.Contains(out, "signed another SafeTx at this nonce") {
		t.Fatalf("another SafeTx at the deposit Safe's nonce = %d %s", code, out)
	}
	comb := filepath.Join(tmp, "combined.json")
	if out, code := run(t, "cold", "combine", "--request", req, "--out", comb, sigs[0], sigs[1]); code != 0 {
		t.Fatalf("combine = %d %s", code, out)
	}
	gasKey := filepath.Join(tmp, "gas.key")
	os.WriteFile(gasKey, []byte(hex.EncodeToString(crypto.FromECDSA(w.gas))+"\n"), 0o600)
	if code, err := w.c.Code(ctx, dep0); err != nil || len(code) != 0 {
		t.Fatalf("the deposit Safe has code before the sweep: %v", err)
	}
	cold0 := w.balance(w.cold)
	out, code = run(t, "cold", "submit", "--signed", comb, "--eth-rpc", node.HTTPURL(), "--gas-key", gasKey)
	if code != 0 || !strings.Contains(out, "deployed deposit Safe 0 at "+dep0.Hex()) || !strings.Contains(out, "executed SafeTx "+tx.Hash.Hex()+" of ceremony sweep-eth-1-d0") {
		t.Fatalf("cold submit = %d %s", code, out)
	}
	if d := new(big.Int).Sub(w.balance(w.cold), cold0); d.Cmp(amount) != 0 {
		t.Fatalf("the wallet's Safe gained %s wei; want %s", d, amount)
	}
	if b := w.balance(dep0); b.Sign() != 0 {
		t.Fatalf("the deposit Safe holds %s wei", b)
	}
	if b := w.balance(w.attacker); b.Sign() != 0 {
		t.Fatalf("the attacker holds %s wei", b)
	}
	if out, code := run(t, "cold", "submit", "--signed", comb, "--eth-rpc", node.HTTPURL(), "--gas-key", gasKey); code == 0 || !strings.Contains(out, "nothing sent") {
		t.Fatalf("submitted again = %d %s", code, out)
	}

	// The token's sweep: shown as the token's transfer into the wallet's
	// Safe; rewritten to pay the attacker, or the impostor's, refused.
	ttBalance := func(holder common.Address) int64 {
		b, err := tokenBalance(ctx, w.c, token, holder)
		if err != nil {
			t.Fatal(err)
		}
		return b.Int64()
	}
	rewriteTT := func(name string, f func(r *ethcold.Request)) string {
		r, _ := ethcold.ReadRequest(tokenReq)
		f(r)
		rehash(t, r)
		p := filepath.Join(tmp, name+".json")
		if err := ethcold.WriteNew(p, r, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, bad := range []struct{ name, want, file string }{
		{"a transfer to the attacker", "not cold (cold-customer)'s own Safe", rewriteTT("tt-attacker", func(r *ethcold.Request) {
			r.TypedData.Message.Data = "0x" + hex.EncodeToString(safetest.TransferCall(w.attacker, big.NewInt(5_000)))
		})},
		{"the impostor's transfer", "is not a token registered here", rewriteTT("tt-impostor", func(r *ethcold.Request) { r.TypedData.Message.To = impostor.Hex() })},
		{"Ether sent along", "along with the token's transfer", rewriteTT("tt-value", func(r *ethcold.Request) { r.TypedData.Message.Value = "1" })},
	} {
		sig := filepath.Join(tmp, "sig-"+bad.name+".json")
		if out, code := run(t, "cold", "sign", "--key", mk[0], "--passphrase-file", pass, "--registry", regs[0], "--request", bad.file, "--out", sig, "--yes"); code == 0 ||
			!strings.Contains(out, bad.want) || !strings.Contains(out, "not signed, nothing written") {
			t.Fatalf("sign %s = %d %s", bad.name, code, out)
		}
	}
	ttSigs := []string{filepath.Join(tmp, "tt-sig-a.json"), filepath.Join(tmp, "tt-sig-c.json")}
	for i := range ttSigs {
		out, code := run(t, "cold", "sign", "--key", mk[i], "--passphrase-file", pass, "--registry", regs[i], "--request", tokenReq, "--out", ttSigs[i], "--yes")
		if code != 0 || !strings.Contains(out, "transfer of 0.000000000000005000 TT (5000 base units) of the token TT at "+token.Hex()+", registered here, to "+w.cold.Hex()+"  [ours: cold (cold-customer)'s own Safe]") {
			t.Fatalf("cold sign the token sweep (machine %d) = %d %s", i, code, out)
		}
	}
	ttComb := filepath.Join(tmp, "tt-combined.json")
	if out, code := run(t, "cold", "combine", "--request", tokenReq, "--out", ttComb, ttSigs[0], ttSigs[1]); code != 0 {
		t.Fatalf("combine the token sweep = %d %s", code, out)
	}
	if out, code := run(t, "cold", "submit", "--signed", ttComb, "--eth-rpc", node.HTTPURL(), "--gas-key", gasKey); code != 0 || !strings.Contains(out, "deployed deposit Safe 1 at "+dep1.Hex()) {
		t.Fatalf("cold submit the token sweep = %d %s", code, out)
	}
	if a, b, x := ttBalance(w.cold), ttBalance(dep1), ttBalance(w.attacker); a != 5_000 || b != 0 || x != 0 {
		t.Fatalf("TT after the sweep: the wallet's Safe %d, deposit Safe 1 %d, the attacker %d", a, b, x)
	}
}
