package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEthRoleFlags: the Ethereum flags of kinko signer, watch and
// cosigner are refused with a clear error before anything is read or
// dialed.
func TestEthRoleFlags(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	safeA := "0x00000000000000000000000000000000000000A1"
	ms := "0x00000000000000000000000000000000000000b2"
	node := "http://127.0.0.1:1"
	signer := []string{"signer", "--key", filepath.Join(dir, "none.key"), "--signer-token-file", tok, "--eth-node", node}
	full := append(append([]string(nil), signer...), "--safe", safeA, "--chain-id", "1337", "--multisend", ms, "--gas-key", filepath.Join(dir, "gas.key"))
	watch := []string{"watch", "--stream-token-file", tok, "--watcher-token-file", tok, "--eth-node", node}
	wfull := append(append([]string(nil), watch...), "--chain-id", "1337", "--hot-safe", safeA, "--cold-safe", "0x00000000000000000000000000000000000000c3", "--multisend", ms)
	cos := []string{"cosigner", "--key", filepath.Join(dir, "none.key"), "--stream-token-file", tok}
	// The signer's pins from its own configuration file, one missing.
	conf := filepath.Join(dir, "signer.toml")
	if err := os.WriteFile(conf, []byte("eth-node = \""+node+"\"\nsafe = \""+safeA+"\"\nchain-id = 1337\ngas-key = \"g\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"signer, its configuration file without the MultiSendCallOnly", []string{"signer", "--key", "k", "--signer-token-file", tok, "--config", conf}, "--eth-node needs --safe, --chain-id, --multisend and --gas-key"},
		{"signer, the MultiSendCallOnly given on the command line over its file", []string{"signer", "--key", "k", "--signer-token-file", tok, "--config", conf, "--multisend", safeA}, "--multisend is the --safe's own address"},
		{"signer without its Safe", signer, "--eth-node needs --safe, --chain-id, --multisend and --gas-key"},
		{"signer, a short Safe address", append(append([]string(nil), signer...), "--safe", "0x12", "--chain-id", "1337", "--multisend", ms, "--gas-key", "g"), "--safe \"0x12\": not an Ethereum address"},
		{"signer, a wrong checksum", append(append([]string(nil), signer...), "--safe", "0x00000000000000000000000000000000000000a1", "--chain-id", "1337", "--multisend", "0x000000000000000000000000000000000000B2b2", "--gas-key", "g"), "wrong EIP-55 checksum"},
		{"signer, the MultiSendCallOnly is the Safe", append(append([]string(nil), signer...), "--safe", safeA, "--chain-id", "1337", "--multisend", safeA, "--gas-key", "g"), "--multisend is the --safe's own address"},
		{"signer, a fee in ether", append(append([]string(nil), full...), "--max-fee-per-gas", "1.5"), "--max-fee-per-gas \"1.5\": a positive whole number of wei"},
		{"signer, a negative fee", append(append([]string(nil), full...), "--max-fee-per-gas", "-5"), "a positive whole number of wei"},
		{"signer, a gas limit below a transfer", append(append([]string(nil), full...), "--gas-limit", "20000"), "--gas-limit 20000: 21000 to 30000000"},
		{"watch without its Safes", watch, "--eth-node needs --chain-id, --hot-safe, at least one --cold-safe and --multisend"},
		{"watch, the cold Safe is the hot one", append(append([]string(nil), watch...), "--chain-id", "1337", "--hot-safe", safeA, "--cold-safe", safeA, "--multisend", ms), "is given twice, or is the hot Safe"},
		{"watch, metrics on Ethereum", append(append([]string(nil), wfull...), "--metrics", "127.0.0.1:0"), "--metrics is served by the Bitcoin watcher only"},
		{"co-signer, a node without a key", append(append([]string(nil), cos...), "--eth-node", node), "--eth-node and --eth-key go together"},
		{"co-signer, a key without a node", append(append([]string(nil), cos...), "--eth-key", "k"), "--eth-node and --eth-key go together"},
		{"co-signer, a node that is not a URL", append(append([]string(nil), cos...), "--eth-node", "127.0.0.1:8545", "--eth-key", "k"), "an http(s):// or ws(s):// URL"},
	} {
		out, code := run(t, c.args...)
		if code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("%s: exit %d, %q; want %q", c.name, code, out, c.want)
		}
	}
}
