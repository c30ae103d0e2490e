package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/devnet"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/ethcold"
	"kinko/internal/keys"
)

// wei of centi hundredths of an Ether: weiOf(125) is 1.25 ETH.
func weiOf(centi int64) *big.Int { return new(big.Int).Mul(big.NewInt(centi), big.NewInt(1e16)) }

// safeWorld is the chain side of the Safe ceremony test: a geth --dev
// node, the Safe contracts deployed, a gas account, a cold Safe of three
// offline owners and a hot Safe of others.
type safeWorld struct {
	t          *testing.T
	ctx        context.Context
	node       *devnet.Node
	c          *eth.Client
	d          *safe.Deployment
	gas        *ecdsa.PrivateKey
	cold, hot  common.Address
	cold2      common.Address // another cold Safe, a sweep's destination
	attacker   common.Address
	coldOwners []common.Address
	hotOwners  []common.Address
}

func (w *safeWorld) balance(a common.Address) *big.Int {
	w.t.Helper()
	v, err := w.c.Balance(w.ctx, a)
	if err != nil {
		w.t.Fatal(err)
	}
	return v
}

func (w *safeWorld) newSafe(owners []common.Address, salt int64, wei *big.Int) common.Address {
	w.t.Helper()
	init, err := w.d.Initializer(safe.Config{Owners: owners, Threshold: 2})
	if err != nil {
		w.t.Fatal(err)
	}
	want, _ := w.d.Predictor(init).Address(big.NewInt(salt))
	if wei.Sign() > 0 {
		if _, err := w.node.Fund(w.ctx, want, wei); err != nil {
			w.t.Fatal(err)
		}
	}
	got, _, err := w.d.CreateProxy(w.ctx, w.c, w.gas, init, big.NewInt(salt))
	if err != nil || got != want {
		w.t.Fatalf("CreateProxy = %s, %v; predicted %s", got, err, want)
	}
	return got
}

// TestSafeColdCeremonyCLI runs the refill of a hot Safe from a cold Safe
// through the command line on a real geth node: three key files on
// "offline machines" whose Ethereum owner keys own the cold 2-of-3 Safe;
// two machines register it and the hot Safe (a destination) after reading
// them in full; the online side prepares the refill at the Safe's nonce;
// an attacker on the online host rewrites the request (safeAttack) and
// every rewrite is refused with nothing written; one signer declines, then
// two sign; a signature over another SafeTx is refused at combine and at
// submit; the combined signatures are submitted, and the balances of both
// Safes, the attacker and the gas account are exact in wei. Then a sweep
// batched through the pinned MultiSendCallOnly, its calls shown one by one.
func TestSafeColdCeremonyCLI(t *testing.T) {
	art, err := safe.LoadInstalled()
	if err != nil {
		t.Fatalf("%v", err)
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
	chainID := w.c.ChainID()

	var keyFiles []string
	for i := range 3 {
		f := filepath.Join(tmp, fmt.Sprintf("cold-%c.key", 'a'+i))
		if out, code := run(t, "keys", "new", "--out", f, "--passphrase-file", pass, "--cheap-kdf"); code != 0 {
			t.Fatalf("keys new: %s", out)
		}
		out, code := run(t, "keys", "eth-address", "--key", f, "--passphrase-file", pass)
		k, err := keys.Load(f, passphrase, regtest.Net)
		if err != nil {
			t.Fatal(err)
		}
		ek, err := k.EthereumKey()
		if err != nil {
			t.Fatal(err)
		}
		a := crypto.PubkeyToAddress(ek.PublicKey)
		if code != 0 || out != a.Hex()+" m/44'/60'/0'/0/0\n" {
			t.Fatalf("keys eth-address = %d %q, want %s", code, out, a.Hex())
		}
		keyFiles = append(keyFiles, f)
		w.coldOwners = append(w.coldOwners, a)
	}
	for range 3 {
		k, _ := crypto.GenerateKey()
		w.hotOwners = append(w.hotOwners, crypto.PubkeyToAddress(k.PublicKey))
	}
	thief, _ := crypto.GenerateKey()
	w.attacker = crypto.PubkeyToAddress(thief.PublicKey)
	w.cold = w.newSafe(w.coldOwners, 1, weiOf(20_00))
	w.hot = w.newSafe(w.hotOwners, 2, weiOf(1_00))
	w.cold2 = w.newSafe(w.coldOwners, 3, weiOf(0))
	ms := w.d.MultiSendCallOnly.Hex()
	owners := strings.Join([]string{w.coldOwners[0].Hex(), w.coldOwners[1].Hex(), w.coldOwners[2].Hex()}, ",")
	hotOwners := strings.Join([]string{w.hotOwners[0].Hex(), w.hotOwners[1].Hex(), w.hotOwners[2].Hex()}, ",")
	cid := chainID.String()

	// Machines a and c register the cold Safe (a at the prompt, c from a
	// script) and the hot Safe and the second cold Safe as destinations.
	regs := []string{filepath.Join(tmp, "machine-a.safes"), filepath.Join(tmp, "machine-c.safes")}
	mk := []string{keyFiles[0], keyFiles[2]}
	out, err := runIn(t, passphrase+"\nyes\n", "cold", "register", "--key", mk[0], "--registry", regs[0], "--name", "cold", "--kind", "cold-customer",
		"--safe", w.cold.Hex(), "--chain-id", cid, "--owners", owners, "--threshold", "2", "--multisend", ms)
	if err != nil || !strings.Contains(out, fmt.Sprintf("Safe cold (cold-customer): 2-of-3 Safe %s on chain %s\n", w.cold.Hex(), cid)) ||
		!strings.Contains(out, "  owner 1: "+w.coldOwners[0].Hex()+"   <- this machine's key (m/44'/60'/0'/0/0)\n") ||
		strings.Count(out, "<- this machine's key") != 1 || !strings.Contains(out, "MultiSendCallOnly pinned: "+ms) ||
		!strings.Contains(out, "next nonce: 0") || !strings.Contains(out, "register this Safe? type yes: registered cold (cold-customer)") {
		t.Fatalf("cold register --safe = %v\n%s", err, out)
	}
	if out, code := run(t, "cold", "register", "--key", mk[1], "--passphrase-file", pass, "--registry", regs[1], "--name", "cold", "--kind", "cold-customer",
		"--safe", w.cold.Hex(), "--chain-id", cid, "--owners", owners, "--threshold", "2", "--multisend", ms, "--yes"); code != 0 ||
		!strings.Contains(out, "  owner 3: "+w.coldOwners[2].Hex()+"   <- this machine's key") {
		t.Fatalf("cold register --safe (machine c) = %d %s", code, out)
	}
	for i, reg := range regs {
		for _, d := range []struct{ name, kind, addr, owners string }{{"hot", "hot-customer", w.hot.Hex(), hotOwners}, {"cold2", "cold-house", w.cold2.Hex(), owners}} {
			if d.name == "cold2" {
				// cold2 holds this machine's key: registered as a Safe
				// signed for, not a destination.
				if out, code := run(t, "cold", "register", "--key", mk[i], "--passphrase-file", pass, "--registry", reg, "--name", d.name, "--kind", d.kind,
					"--safe", d.addr, "--chain-id", cid, "--owners", d.owners, "--threshold", "2", "--destination", "--yes"); code == 0 || !strings.Contains(out, "holds this machine's key") {
					t.Fatalf("a destination holding this machine's key = %d %s", code, out)
				}
				if out, code := run(t, "cold", "register", "--key", mk[i], "--passphrase-file", pass, "--registry", reg, "--name", d.name, "--kind", d.kind,
					"--safe", d.addr, "--chain-id", cid, "--owners", d.owners, "--threshold", "2", "--yes"); code != 0 {
					t.Fatalf("register cold2 = %d %s", code, out)
				}
				continue
			}
			if out, code := run(t, "cold", "register", "--key", mk[i], "--passphrase-file", pass, "--registry", reg, "--name", d.name, "--kind", d.kind,
				"--safe", d.addr, "--chain-id", cid, "--owners", d.owners, "--threshold", "2", "--destination", "--yes"); code != 0 || !strings.Contains(out, "as a DESTINATION") {
				t.Fatalf("cold register --safe --destination = %d %s", code, out)
			}
		}
	}
	// Refused registrations leave the registry as it was.
	before, _ := os.ReadFile(regs[0])
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"not an owner", []string{"--name", "hot2", "--safe", w.hot.Hex(), "--owners", hotOwners, "--threshold", "2"}, "is not an owner"},
		{"bad checksum", []string{"--name", "x", "--safe", w.cold2.Hex(), "--owners", strings.Replace(owners, w.coldOwners[1].Hex(), badChecksum(w.coldOwners[1]), 1), "--threshold", "2"}, "wrong EIP-55 checksum"},
		{"threshold", []string{"--name", "x", "--safe", w.cold2.Hex(), "--owners", owners, "--threshold", "4"}, "threshold 4 of 3"},
		{"name taken", []string{"--name", "cold", "--safe", w.cold2.Hex(), "--owners", owners, "--threshold", "2"}, "registered already"},
		{"no chain id", []string{"--name", "x", "--safe", w.cold2.Hex(), "--owners", owners, "--threshold", "2", "--chain-id", "0"}, "needs --chain-id"},
	} {
		args := append([]string{"cold", "register", "--key", mk[0], "--passphrase-file", pass, "--registry", regs[0], "--kind", "cold-customer", "--chain-id", cid, "--yes"}, c.args...)
		out, code := run(t, args...)
		if code == 0 || !strings.Contains(out, "nothing registered") || !strings.Contains(out, c.want) {
			t.Fatalf("register %s = %d %s", c.name, code, out)
		}
	}
	if after, _ := os.ReadFile(regs[0]); !bytes.Equal(before, after) {
		t.Fatal("a refused registration changed the registry")
	}

	// The online side prepares the refill of 5 ETH at the Safe's nonce.
	req := filepath.Join(tmp, "refill.json")
	out, code := run(t, "ceremony", "safe", "--eth-rpc", node.HTTPURL(), "--safe", w.cold.Hex(), "--pay", w.hot.Hex()+"=5", "--purpose", "refill", "--id", "refill-eth-1", "--out", req, "--unjournaled")
	if code != 0 || !strings.Contains(out, "refill refill-eth-1: 5.000000000000000000 ETH in 1 call(s) from Safe "+w.cold.Hex()+" at nonce 0 on chain "+cid) {
		t.Fatalf("ceremony safe = %d %s", code, out)
	}
	truth, err := ethcold.ReadRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := truth.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if h, err := safe.ContractHash(ctx, w.c, w.cold, tx.SafeTx); err != nil || h != tx.Hash {
		t.Fatalf("the Safe's getTransactionHash = %s, %v; the request's %s", h, err, tx.Hash)
	}
	coldBefore, hotBefore, thiefBefore := w.balance(w.cold), w.balance(w.hot), w.balance(w.attacker)
	gasAddr := crypto.PubkeyToAddress(w.gas.PublicKey)

	safeAttack(t, w, tmp, req, pass, mk[0], regs[0])

	// The first signer reads the refill in plain words and declines.
	sigs := []string{filepath.Join(tmp, "sig-a.json"), filepath.Join(tmp, "sig-c.json")}
	out, err = runIn(t, passphrase+"\nno\n", "cold", "sign", "--key", mk[0], "--registry", regs[0], "--request", req, "--out", sigs[0])
	if err == nil || !strings.Contains(out, "ceremony refill-eth-1 (refill)\nSafe transaction "+tx.Hash.Hex()+" (its EIP-712 hash, computed on this machine)\n") ||
		!strings.Contains(out, "  Safe: cold (cold-customer) "+w.cold.Hex()+" on chain "+cid+", 2-of-3, this machine's owner "+w.coldOwners[0].Hex()+"\n") ||
		!strings.Contains(out, "  nonce: 0\n") || !strings.Contains(out, "gas refund: none") || !strings.Contains(out, "  operation: CALL\n") ||
		!strings.Contains(out, "    1. 5.000000000000000000 ETH (5000000000000000000 wei)  "+w.hot.Hex()+"  [ours: hot (hot-customer)]\n") ||
		!strings.Contains(out, "paid to outside addresses: 0.000000000000000000 ETH (0 wei)") ||
		!strings.Contains(out, "sign this Safe transaction? type yes: kinko: not confirmed: nothing signed") {
		t.Fatalf("declined sign = %v\n%s", err, out)
	}
	if _, err := os.Stat(sigs[0]); err == nil {
		t.Fatal("a declined signature was written")
	}
	if out, err := runIn(t, passphrase+"\nyes\n", "cold", "sign", "--key", mk[0], "--registry", regs[0], "--request", req, "--out", sigs[0]); err != nil ||
		!strings.Contains(out, "signed SafeTx "+tx.Hash.Hex()+" as owner "+w.coldOwners[0].Hex()) {
		t.Fatalf("confirmed sign = %v\n%s", err, out)
	}
	if out, code := run(t, "cold", "sign", "--key", mk[1], "--passphrase-file", pass, "--registry", regs[1], "--request", req, "--out", sigs[1], "--yes"); code != 0 {
		t.Fatalf("cold sign (machine c) = %d %s", code, out)
	}
	// Machine a's key in machine c's registry: not the owner registered.
	if out, code := run(t, "cold", "sign", "--key", mk[0], "--passphrase-file", pass, "--registry", regs[1], "--request", req, "--out", filepath.Join(tmp, "x.json"), "--yes"); code == 0 || !strings.Contains(out, "is not the owner "+w.coldOwners[2].Hex()+" registered") {
		t.Fatalf("another machine's key = %d %s", code, out)
	}

	// A signature over another SafeTx (key b's over 19 ETH to the hot
	// Safe, from another ceremony) is refused at combine, whether the file
	// names its own hash or the request's.
	kb, _ := keys.Load(keyFiles[1], passphrase, regtest.Net)
	ekb, _ := kb.EthereumKey()
	otherTx := safe.Transfer(w.hot, weiOf(19_00), big.NewInt(0))
	otherHash, _ := otherTx.Hash(chainID, w.cold)
	otherSig, _ := safe.Sign(otherHash, ekb)
	for i, label := range []common.Hash{otherHash, tx.Hash} {
		f := &ethcold.SignatureFile{Kind: ethcold.KindSignature, ID: "refill-eth-1", ChainID: cid, Safe: w.cold.Hex(), SafeTxHash: label.Hex(),
			Owner: w.coldOwners[1].Hex(), Signature: "0x" + hex.EncodeToString(otherSig.RSV[:])}
		name := filepath.Join(tmp, fmt.Sprintf("sig-b-other-%d.json", i))
		ethcold.WriteNew(name, f, 0o644)
		comb := filepath.Join(tmp, "comb-other.json")
		out, code := run(t, "cold", "combine", "--request", req, "--out", comb, sigs[0], name)
		if code == 0 || !strings.Contains(out, "nothing written") || !strings.Contains(out, []string{"another SafeTx than the request's", "is not its signature of SafeTx"}[i]) {
			t.Fatalf("combine with a signature over another SafeTx (%d) = %d %s", i, code, out)
		}
		if _, err := os.Stat(comb); err == nil {
			t.Fatal("a refused combine was written")
		}
	}
	comb := filepath.Join(tmp, "combined.json")
	out, code = run(t, "cold", "combine", "--request", req, "--out", comb, sigs[1], sigs[0])
	lo, hi := w.coldOwners[0], w.coldOwners[2]
	if bytes.Compare(lo[:], hi[:]) > 0 {
		lo, hi = hi, lo
	}
	if code != 0 || !strings.Contains(out, "combined 2 signature(s) of SafeTx "+tx.Hash.Hex()+", sorted by owner ("+lo.Hex()+", "+hi.Hex()+")") {
		t.Fatalf("combine = %d %s", code, out)
	}

	// At submit: the combined file rewritten with b's signature over the
	// other SafeTx in place of c's, and with the request's value raised
	// (its hash recomputed) under the true signatures. Both refused before
	// anything is sent.
	gasKey := filepath.Join(tmp, "gas.key")
	os.WriteFile(gasKey, []byte(hex.EncodeToString(crypto.FromECDSA(w.gas))+"\n"), 0o600)
	var signed ethcold.SignedFile
	b, _ := os.ReadFile(comb)
	json.Unmarshal(b, &signed)
	sa, _ := ethcold.ReadSignatureFile(sigs[0])
	saSig, _ := sa.Check(tx)
	pair := []safe.Signature{saSig, {Owner: otherSig.Owner, RSV: otherSig.RSV}}
	if bytes.Compare(pair[0].Owner[:], pair[1].Owner[:]) > 0 {
		pair[0], pair[1] = pair[1], pair[0]
	}
	forged := signed
	forged.Signatures = "0x" + hex.EncodeToString(append(pair[0].RSV[:], pair[1].RSV[:]...))
	raised := signed
	rreq := *signed.Request
	rreq.TypedData.Message.Value = weiOf(19_00).String()
	rehash(t, &rreq)
	raised.Request = &rreq
	for name, f := range map[string]ethcold.SignedFile{"other signature": forged, "raised value": raised} {
		p := filepath.Join(tmp, "submit-"+strings.ReplaceAll(name, " ", "-")+".json")
		ethcold.WriteNew(p, f, 0o644)
		out, code := run(t, "cold", "submit", "--signed", p, "--eth-rpc", node.HTTPURL(), "--gas-key", gasKey)
		if code == 0 || !strings.Contains(out, "are not 2 of the Safe's owners'") || !strings.Contains(out, "nothing sent") {
			t.Fatalf("submit with %s = %d %s", name, code, out)
		}
	}
	if got := w.balance(w.cold); got.Cmp(coldBefore) != 0 {
		t.Fatalf("the cold Safe moved before submit: %s, was %s", got, coldBefore)
	}

	gasBefore := w.balance(gasAddr)
	out, code = run(t, "cold", "submit", "--signed", comb, "--eth-rpc", node.HTTPURL(), "--gas-key", gasKey)
	m := regexp.MustCompile(`in transaction (0x[0-9a-f]{64}) \(block \d+, gas (\d+), fee (\d+) wei`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("submit = %d %s", code, out)
	}
	r, err := w.c.Eth().TransactionReceipt(ctx, common.HexToHash(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	fee := eth.Fee(r)
	if fee.String() != m[3] {
		t.Fatalf("submit says fee %s, the receipt %s", m[3], fee)
	}
	five := weiOf(5_00)
	for _, c := range []struct {
		name       string
		addr       common.Address
		before, dt *big.Int
	}{
		{"cold Safe", w.cold, coldBefore, new(big.Int).Neg(five)},
		{"hot Safe", w.hot, hotBefore, five},
		{"attacker", w.attacker, thiefBefore, new(big.Int)},
		{"gas account", gasAddr, gasBefore, new(big.Int).Neg(fee)},
	} {
		want := new(big.Int).Add(c.before, c.dt)
		if got := w.balance(c.addr); got.Cmp(want) != 0 {
			t.Fatalf("%s: %s wei after the refill, want %s (before %s, change %s)", c.name, got, want, c.before, c.dt)
		}
	}
	t.Logf("refill: cold %s -> %s wei, hot %s -> %s wei, attacker %s wei, gas %d (%s wei)", coldBefore, w.balance(w.cold), hotBefore, w.balance(w.hot), w.balance(w.attacker), r.GasUsed, fee)
	if n, _ := safe.Nonce(ctx, w.c, w.cold); n.Int64() != 1 {
		t.Fatalf("cold nonce %s after the refill", n)
	}
	if out, code := run(t, "cold", "wallets", "--registry", regs[0]); code != 0 || !strings.Contains(out, "3 Safe(s) registered in "+regs[0]) ||
		!strings.Contains(out, "next nonce: 1") || !strings.Contains(out, "last signed here: nonce 0, SafeTx "+tx.Hash.Hex()+" (ceremony refill-eth-1)") ||
		!strings.Contains(out, "a destination: this machine holds none of its keys") {
		t.Fatalf("cold wallets = %d %s", code, out)
	}
	// Sent again: refused before sending, the nonce moved on.
	if out, code := run(t, "cold", "submit", "--signed", comb, "--eth-rpc", node.HTTPURL(), "--gas-key", gasKey); code == 0 || !strings.Contains(out, "the Safe's nonce is 1 and the SafeTx's 0") {
		t.Fatalf("submit again = %d %s", code, out)
	}
	// Another SafeTx at nonce 0, signed here already: refused.
	replay := *truth
	replay.TypedData.Message.Value = weiOf(1_00).String()
	rehash(t, &replay)
	rf := filepath.Join(tmp, "replay.json")
	ethcold.WriteNew(rf, &replay, 0o644)
	if out, code := run(t, "cold", "sign", "--key", mk[0], "--passphrase-file", pass, "--registry", regs[0], "--request", rf, "--out", filepath.Join(tmp, "replay-sig.json"), "--yes"); code == 0 || !strings.Contains(out, "signed another SafeTx at this nonce") {
		t.Fatalf("another SafeTx at a signed nonce = %d %s", code, out)
	}

	// A sweep batched through the pinned MultiSendCallOnly: 1 ETH to the
	// hot Safe and 2.5 ETH to the second cold Safe, each call shown.
	sreq := filepath.Join(tmp, "sweep.json")
	out, code = run(t, "ceremony", "safe", "--eth-rpc", node.HTTPURL(), "--safe", w.cold.Hex(), "--pay", w.hot.Hex()+"=1", "--pay", w.cold2.Hex()+"=2.5",
		"--multisend", ms, "--purpose", "sweep", "--id", "sweep-eth-1", "--out", sreq, "--unjournaled")
	if code != 0 || !strings.Contains(out, "3.500000000000000000 ETH in 2 call(s)") || !strings.Contains(out, "at nonce 1") {
		t.Fatalf("ceremony safe (batch) = %d %s", code, out)
	}
	ssigs := []string{filepath.Join(tmp, "sweep-a.json"), filepath.Join(tmp, "sweep-c.json")}
	for i := range 2 {
		out, code := run(t, "cold", "sign", "--key", mk[i], "--passphrase-file", pass, "--registry", regs[i], "--request", sreq, "--out", ssigs[i], "--yes")
		if code != 0 || !strings.Contains(out, "operation: DELEGATECALL to the MultiSendCallOnly pinned here ("+ms+")") ||
			!strings.Contains(out, "    1. 1.000000000000000000 ETH (1000000000000000000 wei)  "+w.hot.Hex()+"  [ours: hot (hot-customer)]\n") ||
			!strings.Contains(out, "    2. 2.500000000000000000 ETH (2500000000000000000 wei)  "+w.cold2.Hex()+"  [ours: cold2 (cold-house)]\n") ||
			!strings.Contains(out, "leaves the Safe: 3.500000000000000000 ETH") {
			t.Fatalf("sign the sweep (machine %d) = %d %s", i, code, out)
		}
	}
	scomb := filepath.Join(tmp, "sweep-combined.json")
	if out, code := run(t, "cold", "combine", "--request", sreq, "--out", scomb, ssigs[0], ssigs[1]); code != 0 {
		t.Fatalf("combine the sweep = %d %s", code, out)
	}
	coldMid, hotMid := w.balance(w.cold), w.balance(w.hot)
	if out, code := run(t, "cold", "submit", "--signed", scomb, "--eth-rpc", node.HTTPURL(), "--gas-key", gasKey); code != 0 {
		t.Fatalf("submit the sweep = %d %s", code, out)
	}
	for _, c := range []struct {
		name      string
		got, want *big.Int
	}{
		{"cold Safe", w.balance(w.cold), new(big.Int).Sub(coldMid, weiOf(3_50))},
		{"hot Safe", w.balance(w.hot), new(big.Int).Add(hotMid, weiOf(1_00))},
		{"second cold Safe", w.balance(w.cold2), weiOf(2_50)},
		{"attacker", w.balance(w.attacker), thiefBefore},
	} {
		if c.got.Cmp(c.want) != 0 {
			t.Fatalf("%s: %s wei after the sweep, want %s", c.name, c.got, c.want)
		}
	}
}

// rehash sets the request's hash to its typed data's, as an attacker who
// rewrites a request consistently does.
func rehash(t *testing.T, r *ethcold.Request) {
	t.Helper()
	chainID, addr, tx, err := r.TypedData.SafeTx()
	if err != nil {
		t.Fatal(err)
	}
	h, err := tx.Hash(chainID, addr)
	if err != nil {
		t.Fatal(err)
	}
	r.SafeTxHash = h.Hex()
}

// safeAttack plays the attacker on the online host: the true request is
// rewritten to pay him or to sign something else, and signer a must refuse
// each with its reason, writing neither a signature nor its registry.
func safeAttack(t *testing.T, w *safeWorld, tmp, reqFile, pass, key, registry string) {
	t.Helper()
	truth, err := ethcold.ReadRequest(reqFile)
	if err != nil {
		t.Fatal(err)
	}
	regBefore, _ := os.ReadFile(registry)
	thief := w.attacker.Hex()
	transfer := append(common.FromHex("0xa9059cbb"), common.LeftPadBytes(w.attacker[:], 32)...)
	transfer = append(transfer, common.LeftPadBytes(weiOf(1_00).Bytes(), 32)...)
	batch, _ := safe.EncodeMultiSend([]safe.Call{{To: w.hot, Value: weiOf(5_00)}, {To: w.attacker, Value: weiOf(1_00)}})
	for _, c := range []struct {
		name   string
		edit   func(m *ethcold.Message, td *ethcold.TypedData)
		rehash bool
		stdin  string // "" signs with --yes
		want   []string
	}{
		{"to", func(m *ethcold.Message, _ *ethcold.TypedData) { m.To = thief }, true, "",
			[]string{"5.000000000000000000 ETH (5000000000000000000 wei)  " + thief + "  [payment to an outside address]", "a payment to an outside address: call 1 pays 5.000000000000000000 ETH to " + thief}},
		{"hash", func(m *ethcold.Message, _ *ethcold.TypedData) { m.To = thief }, false, "",
			[]string{"the file's hash is not the EIP-712 hash of its SafeTx"}},
		{"value", func(m *ethcold.Message, _ *ethcold.TypedData) { m.Value = weiOf(19_00).String() }, true, "correct horse battery staple\nno\n",
			[]string{"1. 19.000000000000000000 ETH (19000000000000000000 wei)  " + w.hot.Hex() + "  [ours: hot (hot-customer)]", "not confirmed: nothing signed"}},
		{"data", func(m *ethcold.Message, _ *ethcold.TypedData) { m.Data = "0x" + hex.EncodeToString(transfer) }, true, "",
			[]string{"with 68 bytes of calldata, selector 0xa9059cbb", "a call with calldata"}},
		{"delegatecall", func(m *ethcold.Message, _ *ethcold.TypedData) { m.To, m.Value, m.Operation = thief, "0", "1" }, true, "",
			[]string{"operation: DELEGATECALL to " + thief + ", not the MultiSendCallOnly pinned here", "delegatecall refused"}},
		{"batch", func(m *ethcold.Message, _ *ethcold.TypedData) {
			m.To, m.Value, m.Operation, m.Data = w.d.MultiSendCallOnly.Hex(), "0", "1", "0x"+hex.EncodeToString(batch)
		}, true, "", []string{"    1. 5.000000000000000000 ETH (5000000000000000000 wei)  " + w.hot.Hex() + "  [ours: hot (hot-customer)]",
			"    2. 1.000000000000000000 ETH (1000000000000000000 wei)  " + thief + "  [payment to an outside address]", "call 2 pays 1.000000000000000000 ETH to " + thief}},
		{"refund", func(m *ethcold.Message, _ *ethcold.TypedData) {
			m.GasPrice, m.BaseGas, m.RefundReceiver = "1000000000", "1000000", thief
		}, true, "", []string{"refund receiver " + thief + "  [the Safe would pay it from its balance]", "gas refund refused"}},
		{"nonce", func(m *ethcold.Message, _ *ethcold.TypedData) { m.Nonce = "1" }, true, "",
			[]string{"nonce 1 skips ahead of 0, the next this machine knows of"}},
		{"chain id", func(_ *ethcold.Message, td *ethcold.TypedData) { td.Domain.ChainID = "1" }, true, "",
			[]string{"the Safe " + w.cold.Hex() + " on chain 1 is not registered on this machine (cold (cold-customer) is registered at that address on chain " + w.c.ChainID().String() + ")"}},
		{"safe", func(_ *ethcold.Message, td *ethcold.TypedData) { td.Domain.VerifyingContract = thief }, true, "",
			[]string{"the Safe " + thief + " on chain " + w.c.ChainID().String() + " is not registered on this machine"}},
		{"types", func(_ *ethcold.Message, td *ethcold.TypedData) { td.Types["SafeTx"][1].Type = "uint128" }, false, "",
			[]string{"not the typed data of a Safe transaction"}},
	} {
		r := *truth
		r.TypedData.Types = map[string][]ethcold.Field{}
		for k, v := range truth.TypedData.Types {
			r.TypedData.Types[k] = append([]ethcold.Field(nil), v...)
		}
		c.edit(&r.TypedData.Message, &r.TypedData)
		if c.rehash {
			rehash(t, &r)
		}
		f := filepath.Join(tmp, "safe-attack-"+strings.ReplaceAll(c.name, " ", "-")+".json")
		if err := ethcold.WriteNew(f, &r, 0o644); err != nil {
			t.Fatal(err)
		}
		out := f + ".sig"
		args := []string{"cold", "sign", "--key", key, "--registry", registry, "--request", f, "--out", out}
		if c.stdin == "" {
			args = append(args, "--passphrase-file", pass, "--yes")
		}
		text, err := runIn(t, c.stdin, args...)
		if err == nil {
			t.Fatalf("attack %s: signed\n%s", c.name, text)
		}
		for _, want := range c.want {
			if !strings.Contains(text, want) {
				t.Fatalf("attack %s: no %q in\n%s", c.name, want, text)
			}
		}
		if c.stdin == "" && !strings.Contains(text, "not signed, nothing written") {
			t.Fatalf("attack %s: not refused with nothing written:\n%s", c.name, text)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatalf("attack %s: a signature was written (%v)", c.name, err)
		}
		if after, _ := os.ReadFile(registry); !bytes.Equal(after, regBefore) {
			t.Fatalf("attack %s: the registry changed", c.name)
		}
	}
	// A request with a field no Safe request has is not read.
	b, _ := os.ReadFile(reqFile)
	extra := filepath.Join(tmp, "safe-attack-extra.json")
	os.WriteFile(extra, bytes.Replace(b, []byte(`"purpose"`), []byte(`"wallets": [], "purpose"`), 1), 0o644)
	if out, code := run(t, "cold", "sign", "--key", key, "--passphrase-file", pass, "--registry", registry, "--request", extra, "--out", extra+".sig", "--yes"); code == 0 || !strings.Contains(out, "not a Safe ceremony request") {
		t.Fatalf("a request with an unknown field = %d %s", code, out)
	}
}

// badChecksum writes a with the case of one letter flipped: its EIP-55
// checksum broken.
func badChecksum(a common.Address) string {
	b := []byte(a.Hex())
	for i := 2; i < len(b); i++ {
		switch {
		case b[i] >= 'a' && b[i] <= 'f':
			b[i] -= 'a' - 'A'
			return string(b)
		case b[i] >= 'A' && b[i] <= 'F':
			b[i] += 'a' - 'A'
			return string(b)
		}
	}
	return string(b)
}
