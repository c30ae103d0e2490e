package wallet

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// CoreImport is one request of Bitcoin Core's importdescriptors RPC.
type CoreImport struct {
	Desc      string `json:"desc"`
	Active    bool   `json:"active"`
	Range     [2]int `json:"range"`
	NextIndex int    `json:"next_index"`
	Timestamp int64  `json:"timestamp"`
	Internal  bool   `json:"internal"`
}

// CoreImports returns the importdescriptors requests of the wallet for a
// watch-only descriptor wallet (createwallet disable_private_keys=true
// blank=true): the receive chain and the change chain (internal), both
// active, ranged [0, end], with next_index next on each and the rescan
// from timestamp (a Unix time; 0 scans the whole chain).
func (d *Descriptor) CoreImports(end, nextReceive, nextChange int, timestamp int64) []CoreImport {
	return []CoreImport{
		{Desc: d.Branch(0), Active: true, Range: [2]int{0, end}, NextIndex: nextReceive, Timestamp: timestamp},
		{Desc: d.Branch(1), Active: true, Range: [2]int{0, end}, NextIndex: nextChange, Timestamp: timestamp, Internal: true},
	}
}

// CoreJSON returns CoreImports as the JSON argument of importdescriptors.
func (d *Descriptor) CoreJSON(end, nextReceive, nextChange int, timestamp int64) string {
	b, err := json.MarshalIndent(d.CoreImports(end, nextReceive, nextChange, timestamp), "", "  ")
	if err != nil {
		panic(err) // plain values: cannot fail
	}
	return string(b)
}

// MaxColdcardName bounds a wallet name in Coldcard's multisig file.
const MaxColdcardName = 20

// Coldcard returns the wallet in Coldcard's multisig setup file format
// (Settings > Multisig Wallets > Import from SD; Sparrow and Nunchuk read
// it too): Name, Policy "M of N", Format P2WSH, and for each key a
// Derivation line and "XFP: xpub". Coldcard's file has no taproot
// multisig; a tr() wallet is exported as its descriptor (Sparrow).
func (d *Descriptor) Coldcard(name string) (string, error) {
	if d.Type != WSH {
		return "", fmt.Errorf("wallet: Coldcard's multisig file holds P2WSH wallets; export a tr() wallet as its descriptor")
	}
	if name == "" || len(name) > MaxColdcardName || strings.ContainsAny(name, "\r\n:") {
		return "", fmt.Errorf("wallet: a Coldcard wallet name is 1 to %d characters on one line, without ':'", MaxColdcardName)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Coldcard multisig setup file, from kinko's descriptor\n# %s\n#\n", d.Multipath())
	fmt.Fprintf(&b, "Name: %s\nPolicy: %d of %d\nFormat: P2WSH\n", name, d.M, len(d.Keys))
	for i := range d.Keys {
		k := &d.Keys[i]
		fmt.Fprintf(&b, "\nDerivation: %s\n%s: %s\n", strings.ReplaceAll(k.Derivation(), "h", "'"), strings.ToUpper(hex.EncodeToString(k.Fingerprint[:])), k.XPub.String())
	}
	return b.String(), nil
}

// Sparrow returns the wallet as Sparrow's output descriptor file (File >
// New Wallet > Import: Output Descriptor): the descriptor of both chains
// in BIP389's multipath form, with its checksum, and the two single-chain
// descriptors it expands to, as comments for readers without BIP389.
func (d *Descriptor) Sparrow(name string) string {
	return fmt.Sprintf("# %s: %d-of-%d %s\n# receive: %s\n# change:  %s\n%s\n", name, d.M, len(d.Keys), d.TypeName(), d.Branch(0), d.Branch(1), d.Multipath())
}
