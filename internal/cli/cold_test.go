package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/keys"
	"kinko/internal/wallet"
)

// runIn runs the command line with stdin and returns what it printed
// (standard output and error, and the error as Main prints it).
func runIn(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := NewRoot()
	var buf bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&buf)
	root.SetErr(&buf)
	err := root.Execute()
	if err != nil {
		fmt.Fprintln(&buf, "kinko:", err)
	}
	return buf.String(), err
}

// madeKeys returns a 2-of-3 descriptor over three keys made from seeds.
func madeKeys(t *testing.T, seeds ...byte) *wallet.Descriptor {
	t.Helper()
	d := &wallet.Descriptor{M: 2, Net: regtest.Net}
	for _, s := range seeds {
		k, err := keys.New(bytes.NewReader(bytes.Repeat([]byte{s}, 32)), regtest.Net)
		if err != nil {
			t.Fatal(err)
		}
		ak, _, err := wallet.AccountKey(k.Master, regtest.Net, 0)
		if err != nil {
			t.Fatal(err)
		}
		d.Keys = append(d.Keys, ak)
	}
	return d
}

// coldAttack is an attacker who holds the online side and rewrites the
// true refill request reqFile: he makes a wallet of his own keys, takes
// 0.003 BTC from our change for his address, lists his descriptor among
// the request's wallets (as the cold-house wallet, or as the wallet his
// output is change of) or marks his output with our key's derivations,
// and writes a request whose txid matches his PSBT. The signer of machine
// a (key, registry) must never show his output as ours and must refuse
// every variant that claims it as ours or as change, writing nothing.
func coldAttack(t *testing.T, tmp, reqFile, pass, key, registry string, cold *wallet.Descriptor) {
	t.Helper()
	b, err := os.ReadFile(reqFile)
	if err != nil {
		t.Fatal(err)
	}
	var truth Request
	if err := json.Unmarshal(b, &truth); err != nil {
		t.Fatal(err)
	}
	attacker := madeKeys(t, 0xa1, 0xa2, 0xa3)
	// His descriptor with our key 1 in it: our xpubs are in the journal.
	mixed := &wallet.Descriptor{M: 2, Net: regtest.Net, Keys: []wallet.Key{attacker.Keys[0], attacker.Keys[1], cold.Keys[0]}}
	recvAddr, _, _ := attacker.Address(0, 0)
	recv, _ := attacker.PkScript(0, 0)
	chgAddr, _, _ := attacker.Address(1, 0)
	chg, _ := attacker.PkScript(1, 0)
	mixedAddr, _, _ := mixed.Address(0, 0)
	mixedRecv, _ := mixed.PkScript(0, 0)
	const stolen = 300_000
	forge := func(name string, script []byte, claim *wallet.Descriptor, kind string, edit func(p *psbt.Packet)) string {
		p, err := wallet.Read(strings.NewReader(truth.PSBT))
		if err != nil {
			t.Fatal(err)
		}
		p.UnsignedTx.TxOut[1].Value -= stolen // our change
		p.UnsignedTx.AddTxOut(wire.NewTxOut(stolen, script))
		p.Outputs = append(p.Outputs, psbt.POutput{})
		if edit != nil {
			edit(p)
		}
		req := truth
		req.TxID = p.UnsignedTx.TxHash().String()
		req.PSBT, _ = wallet.Encode(p)
		req.Wallets = append([]wallet.Named(nil), truth.Wallets...)
		if claim != nil {
			req.Wallets = append(req.Wallets, wallet.Named{ID: 9, Kind: kind, Descriptor: claim.String()})
		}
		f := filepath.Join(tmp, "attack-"+name+".json")
		b, _ := json.MarshalIndent(req, "", "  ")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	sign := func(name, req, stdin string, yes bool) (string, error, string) {
		out := filepath.Join(tmp, "attack-"+name+".psbt")
		args := []string{"cold", "sign", "--key", key, "--registry", registry, "--request", req, "--out", out}
		if yes {
			args = append(args, "--passphrase-file", pass, "--yes")
		}
		text, err := runIn(t, stdin, args...)
		return text, err, out
	}
	noFile := func(name, f string) {
		t.Helper()
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s: the refused PSBT was written (%v)", name, err)
		}
	}

	// The incident: his descriptor listed as our cold-house wallet. The
	// signer shows his output as what it is, a payment to an outside
	// address, and the operator, reading 0.013 BTC leave for a refill of
	// 0.01, declines.
	f := forge("cold-house", recv, attacker, "cold-house", nil)
	text, err, out := sign("cold-house", f, "correct horse battery staple\nno\n", false)
	if err == nil || !strings.Contains(text, fmt.Sprintf("3.       0.00300000 BTC  %s  [payment to an outside address]\n", recvAddr.EncodeAddress())) ||
		strings.Contains(text, "cold-house") || strings.Count(text, "ours:") != 2 || !strings.Contains(text, "paid to outside addresses: 0.01300000 BTC\n") ||
		!strings.Contains(text, "sign this transaction? type yes: kinko: not confirmed: nothing signed") {
		t.Fatalf("his cold-house wallet: sign = %v\n%s", err, text)
	}
	noFile("cold-house", out)

	// He marks his output as change: of his own wallet in the request's
	// list, with our key's derivations (copied from our true change), or
	// of a wallet of his that names our key. Refused whatever the
	// operator would type.
	var ourChange []*psbt.Bip32Derivation
	{
		p, _ := wallet.Read(strings.NewReader(truth.PSBT))
		ourChange = p.Outputs[1].Bip32Derivation
		if len(ourChange) != 3 {
			t.Fatalf("the true change output carries %d derivations; want 3", len(ourChange))
		}
	}
	v := ourChange[0].MasterKeyFingerprint
	firstFP := [4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
	for _, c := range []struct {
		name   string
		addr   string
		script []byte
		claim  *wallet.Descriptor
		kind   string
		edit   func(*psbt.Packet)
		why    string
	}{
		{"listed-change", chgAddr.EncodeAddress(), chg, attacker, "cold-customer", nil,
			"output 3 is listed by the request as change #0 of wallet 9 (cold-customer)"},
		{"our-derivations", recvAddr.EncodeAddress(), recv, nil, "", func(p *psbt.Packet) { p.Outputs[2].Bip32Derivation = ourChange },
			fmt.Sprintf("output 3 carries a BIP32 derivation of our key %x, as change does", firstFP)},
		{"both", chgAddr.EncodeAddress(), chg, attacker, "cold-house", func(p *psbt.Packet) { p.Outputs[2].Bip32Derivation = ourChange },
			fmt.Sprintf("output 3 carries a BIP32 derivation of our key %x, as change does", firstFP)},
		{"names-our-key", mixedAddr.EncodeAddress(), mixedRecv, mixed, "cold-customer", nil,
			fmt.Sprintf("output 3 is listed by the request as wallet 9 (cold-customer), a wallet naming our key %x", cold.Keys[0].Fingerprint)},
	} {
		f := forge(c.name, c.script, c.claim, c.kind, c.edit)
		text, err, out := sign(c.name, f, "", true)
		want := "kinko: wallet: refuses change to an unregistered wallet: " + c.why + ", but it is not a script of a wallet registered here\nnot signed, nothing written\n"
		if err == nil || !strings.Contains(text, fmt.Sprintf("3.       0.00300000 BTC  %s  [payment to an outside address]\n", c.addr)) ||
			strings.Count(text, "ours:") != 2 || !strings.HasSuffix(text, want) || strings.Contains(text, "passphrase") {
			t.Errorf("%s: sign = %v\n%s\nwant the refusal\n%s", c.name, err, text, want)
		}
		noFile(c.name, out)
	}
}

// TestColdRegister: a wallet without this machine's key, an unconfirmed
// prompt, a name taken by another wallet, a bad descriptor or kind are
// refused and leave the registry as it was; registering the same wallet
// again changes nothing; a corrupt registry is a clear error for every
// command that reads it.
func TestColdRegister(t *testing.T) {
	tmp := t.TempDir()
	pass := filepath.Join(tmp, "pass")
	os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600)
	key := filepath.Join(tmp, "a.key")
	if out, code := run(t, "keys", "new", "--out", key, "--passphrase-file", pass, "--cheap-kdf"); code != 0 {
		t.Fatalf("keys new: %s", out)
	}
	k, err := keys.Load(key, "correct horse battery staple", regtest.Net)
	if err != nil {
		t.Fatal(err)
	}
	ak, _, _ := wallet.AccountKey(k.Master, regtest.Net, 0)
	others := madeKeys(t, 0x31, 0x32, 0x33)
	ours := &wallet.Descriptor{M: 2, Net: regtest.Net, Keys: []wallet.Key{others.Keys[0], ak, others.Keys[1]}}
	other := &wallet.Descriptor{M: 2, Net: regtest.Net, Keys: []wallet.Key{ak, others.Keys[2], others.Keys[1]}}
	reg := filepath.Join(tmp, "registry.json")
	register := func(stdin, name, kind, desc string, extra ...string) (string, error) {
		args := append([]string{"cold", "register", "--key", key, "--registry", reg, "--name", name, "--kind", kind, "--descriptor", desc}, extra...)
		return runIn(t, stdin, args...)
	}
	yes := []string{"--passphrase-file", pass, "--yes"}
	exists := func() bool { _, err := os.Stat(reg); return err == nil }

	// A descriptor without this machine's key: refused before any prompt.
	out, err := register("", "theirs", "cold-customer", others.String(), yes...)
	if err == nil || !strings.Contains(out, "kinko: wallet: the descriptor does not contain this machine's key ("+ak.String()+"): nothing registered") || exists() {
		t.Fatalf("register without this key = %v exists=%v\n%s", err, exists(), out)
	}
	// Not confirmed: shown in full, nothing written.
	out, err = register("correct horse battery staple\nno\n", "cold", "cold-customer", ours.String())
	if err == nil || !strings.Contains(out, "key 2: fingerprint "+fmt.Sprintf("%x", ak.Fingerprint)) || !strings.Contains(out, "<- this machine's key") ||
		!strings.Contains(out, "register this wallet? type yes: kinko: not confirmed: nothing registered") || exists() {
		t.Fatalf("unconfirmed register = %v exists=%v\n%s", err, exists(), out)
	}
	// Bad descriptors and kinds.
	d := ours.String()
	for _, c := range []struct{ kind, desc, want string }{
		{"cold-customer", d[:len(d)-1] + map[bool]string{true: "q", false: "p"}[d[len(d)-1] != 'q'], "kinko: descriptor: wallet: descriptor checksum does not match: nothing registered"},
		{"cold-customer", d[:len(d)-9], "kinko: descriptor: wallet: descriptor has no checksum: nothing registered"},
		{"cold-customer", "pkh(" + ak.String() + ")#00000000", "kinko: descriptor: wallet: descriptor checksum does not match: nothing registered"},
		{"warm", d, `kinko: unknown wallet kind "warm"`},
	} {
		if out, err := register("", "cold", c.kind, c.desc, yes...); err == nil || !strings.Contains(out, c.want) || exists() {
			t.Errorf("register(%s, %.30s) = %v\n%s\nwant %q", c.kind, c.desc, err, out, c.want)
		}
	}
	// Confirmed; then the same wallet again is a no-op.
	if out, err := register("correct horse battery staple\nyes\n", "cold", "cold-customer", d); err != nil || !strings.Contains(out, "registered cold (cold-customer) in "+reg+" (1 wallet(s))") {
		t.Fatalf("register = %v\n%s", err, out)
	}
	before, _ := os.ReadFile(reg)
	if fi, _ := os.Stat(reg); fi.Mode().Perm() != 0o600 {
		t.Fatalf("registry mode %v; want 0600", fi.Mode().Perm())
	}
	if out, err := register("", "cold", "cold-customer", d, yes...); err != nil || !strings.Contains(out, "wallet cold (cold-customer) is already registered in "+reg+" with this descriptor: nothing changed") {
		t.Fatalf("register again = %v\n%s", err, out)
	}
	// The same name for another wallet (with this key too), the same
	// wallet under another name: refused.
	for _, c := range []struct{ name, desc, want string }{
		{"cold", other.String(), `kinko: wallet: the name is registered to another wallet: "cold" is ` + d + ": nothing registered"},
		{"cold-2", d, `kinko: wallet: this wallet is already registered under another name: "cold": nothing registered`},
	} {
		if out, err := register("", c.name, "cold-customer", c.desc, yes...); err == nil || !strings.Contains(out, c.want) {
			t.Errorf("register(%s) = %v\n%s\nwant %q", c.name, err, out, c.want)
		}
	}
	if after, _ := os.ReadFile(reg); !bytes.Equal(after, before) {
		t.Fatalf("refused registrations changed the registry:\n%s", after)
	}
	if out, code := run(t, "cold", "wallets", "--registry", reg); code != 0 || !strings.Contains(out, "1 wallet(s) registered in "+reg) || !strings.Contains(out, "  descriptor: "+d) {
		t.Fatalf("cold wallets = %d\n%s", code, out)
	}
	// A second wallet with this key.
	if out, err := register("", "house", "cold-house", other.String(), yes...); err != nil || !strings.Contains(out, "(2 wallet(s))") {
		t.Fatalf("register house = %v\n%s", err, out)
	}

	// A corrupt registry: every command says what is wrong and where.
	good, _ := os.ReadFile(reg)
	req := filepath.Join(tmp, "req.json")
	os.WriteFile(req, []byte(`{"id":"x","txid":"00","psbt":""}`), 0o644)
	for name, c := range map[string]struct{ body, want string }{
		"truncated": {string(good[:len(good)/2]), "wallet: registry malformed: unexpected EOF"},
		"checksum":  {strings.Replace(string(good), d, d[:len(d)-8]+"qqqqqqqq", 1), `wallet: registry malformed: wallet 1 ("cold"): wallet: descriptor checksum does not match`},
		"not ours":  {strings.Replace(string(good), `"key": "`+ak.String(), `"key": "`+others.Keys[2].String(), 1), `wallet: registry malformed: wallet 1 ("cold"): wallet: the descriptor does not contain this machine's key`},
	} {
		os.WriteFile(reg, []byte(c.body), 0o600)
		for _, args := range [][]string{
			{"cold", "wallets", "--registry", reg},
			{"cold", "register", "--key", key, "--passphrase-file", pass, "--registry", reg, "--name", "x", "--kind", "cold-customer", "--descriptor", d, "--yes"},
			{"cold", "sign", "--key", key, "--passphrase-file", pass, "--registry", reg, "--request", req, "--out", filepath.Join(tmp, "x.psbt"), "--yes"},
		} {
			out, code := run(t, args...)
			if code == 0 || !strings.Contains(out, "kinko: registry "+reg+": "+c.want) {
				t.Errorf("%s: %s = %d\n%s\nwant %q", name, args[1], code, out, c.want)
			}
		}
		if b, _ := os.ReadFile(reg); string(b) != c.body {
			t.Errorf("%s: a command rewrote the corrupt registry", name)
		}
	}
}
