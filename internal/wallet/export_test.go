package wallet

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
)

// TestCoreImports: the importdescriptors JSON is an array of exactly the
// request fields Core's RPC takes (desc, active, range, next_index,
// timestamp, internal), one request per chain: the receive chain (every
// key /0/*, internal false) and the change chain (every key /1/*, internal
// true), each with a valid checksum, public keys only (a watch-only
// wallet), active, ranged [0, end] with its next index, and the rescan
// timestamp.
func TestCoreImports(t *testing.T) {
	_, d := testKeys(t)
	for _, typ := range []Type{WSH, TR} {
		d := &Descriptor{M: 2, Net: d.Net, Keys: d.Keys, Type: typ}
		text := d.CoreJSON(1999, 7, 3, 1_700_000_000)
		var reqs []map[string]json.RawMessage
		if err := json.Unmarshal([]byte(text), &reqs); err != nil {
			t.Fatalf("CoreJSON is not a JSON array of objects: %v\n%s", err, text)
		}
		if len(reqs) != 2 {
			t.Fatalf("%d requests; want 2 (receive and change)", len(reqs))
		}
		for i, want := range []struct {
			branch   string
			internal bool
			next     int
		}{{"0", false, 7}, {"1", true, 3}} {
			r := reqs[i]
			keys := make([]string, 0, len(r))
			for k := range r {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if got := strings.Join(keys, ","); got != "active,desc,internal,next_index,range,timestamp" {
				t.Errorf("request %d has fields %s; want active,desc,internal,next_index,range,timestamp", i, got)
			}
			var req struct {
				Desc      string
				Active    bool
				Range     []int
				NextIndex int `json:"next_index"`
				Timestamp int64
				Internal  bool
			}
			raw, _ := json.Marshal(r)
			if err := json.Unmarshal(raw, &req); err != nil {
				t.Fatal(err)
			}
			body, sum, ok := strings.Cut(req.Desc, "#")
			if want, _ := Checksum(body); !ok || sum != want || len(sum) != 8 {
				t.Errorf("request %d: checksum %q of %s; want %q", i, sum, body, want)
			}
			if strings.Contains(body, "prv") {
				t.Errorf("request %d carries a private key: %s", i, body)
			}
			if n := strings.Count(body, "/"+want.branch+"/*"); n != len(d.Keys) || strings.Contains(body, "<") {
				t.Errorf("request %d: %d keys on /%s/*; want all %d, single-chain: %s", i, n, want.branch, len(d.Keys), body)
			}
			if !req.Active || req.Internal != want.internal || !slices.Equal(req.Range, []int{0, 1999}) || req.NextIndex != want.next || req.Timestamp != 1_700_000_000 {
				t.Errorf("request %d = %+v; want active, internal %v, range [0,1999], next_index %d, timestamp 1700000000", i, req, want.internal, want.next)
			}
			p, err := Parse(req.Desc, regtest)
			if err != nil || !p.Same(d) {
				t.Errorf("request %d: Parse = %v, same wallet %v", i, err, err == nil && p.Same(d))
			}
			if req.Desc != d.Branch(uint32(i)) {
				t.Errorf("request %d: %s; want %s", i, req.Desc, d.Branch(uint32(i)))
			}
		}
		// The change descriptor is the receive one with /1/* for /0/*:
		// written out here and checksummed afresh.
		recv, _, _ := strings.Cut(d.Branch(0), "#")
		chg := strings.ReplaceAll(recv, "/0/*", "/1/*")
		sum, _ := Checksum(chg)
		if d.Branch(1) != chg+"#"+sum {
			t.Errorf("change descriptor %s; want %s#%s", d.Branch(1), chg, sum)
		}
	}
}

// coldcardKey is one key as Coldcard's file import reads it.
type coldcardKey struct {
	xfp   uint32 // little-endian, as Coldcard holds fingerprints
	deriv string
	xpub  string
}

// readColdcard reads a multisig setup file by the rules of Coldcard's
// firmware (shared/multisig.py, MultisigWallet.from_file and check_xpub),
// written out here from their documented behaviour: a line starting '#'
// is a comment, and so is the rest of a line after '#' unless a digit
// follows it; "label: value" lines, labels case-insensitive: name, policy
// ("M of N"), format (p2sh, p2wsh, p2sh-p2wsh), derivation (the path of
// the keys that follow), or an 8-hex-digit fingerprint with an xpub. The
// name is 1 to 20 ASCII characters, 1 <= M <= N <= 15, N keys, each
// derivation as deep as its xpub, each fingerprint once.
func readColdcard(text string, net *chaincfg.Params) (name string, m, n int, format string, keys []coldcardKey, err error) {
	deriv := ""
	m, n = -1, -1
	format = "p2sh"
	for _, ln := range strings.Split(text, "\n") {
		if c := strings.IndexByte(ln, '#'); c == 0 {
			continue
		} else if c > 0 && (c+1 >= len(ln) || ln[c+1] < '0' || ln[c+1] > '9') {
			ln = ln[:c]
		}
		ln = strings.TrimSpace(ln)
		label, value, ok := strings.Cut(ln, ":")
		if !ok {
			continue
		}
		label, value = strings.ToLower(label), strings.TrimSpace(value)
		switch {
		case label == "name":
			name = value
		case label == "policy":
			mm := regexp.MustCompile(`(\d+)\D*(\d+)`).FindStringSubmatch(value)
			if mm == nil {
				return "", 0, 0, "", nil, fmt.Errorf("bad policy line")
			}
			fmt.Sscan(mm[1], &m)
			fmt.Sscan(mm[2], &n)
		case label == "derivation":
			if value == "" || !strings.HasPrefix(value, "m") {
				return "", 0, 0, "", nil, fmt.Errorf("bad derivation line")
			}
			deriv = strings.ReplaceAll(value, "h", "'")
		case label == "format":
			switch strings.ToLower(value) {
			case "p2sh", "p2wsh", "p2sh-p2wsh", "p2wsh-p2sh":
				format = strings.ToLower(value)
			default:
				return "", 0, 0, "", nil, fmt.Errorf("bad format line")
			}
		case len(label) == 8:
			b, herr := hex.DecodeString(label)
			if herr != nil {
				continue
			}
			xfp := binary.LittleEndian.Uint32(b)
			k, kerr := hdkeychain.NewKeyFromString(value)
			if kerr != nil || k.IsPrivate() || !k.IsForNet(net) {
				return "", 0, 0, "", nil, fmt.Errorf("unable to parse xpub %q", value)
			}
			if deriv == "" || strings.Count(deriv, "/") != int(k.Depth()) {
				return "", 0, 0, "", nil, fmt.Errorf("deriv %q != %d xpub depth", deriv, k.Depth())
			}
			for _, o := range keys {
				if o.xfp == xfp {
					return "", 0, 0, "", nil, fmt.Errorf("dup XFP")
				}
			}
			keys = append(keys, coldcardKey{xfp, deriv, value})
		}
	}
	if len(keys) == 0 {
		return "", 0, 0, "", nil, fmt.Errorf("need xpubs")
	}
	if len(name) < 1 || len(name) > 20 || strings.IndexFunc(name, func(r rune) bool { return r > 127 }) >= 0 {
		return "", 0, 0, "", nil, fmt.Errorf("name must be ascii, 1..20 long")
	}
	if m < 1 || m > n || n > 15 || n != len(keys) {
		return "", 0, 0, "", nil, fmt.Errorf("M/N %d of %d with %d xpubs", m, n, len(keys))
	}
	return name, m, n, format, keys, nil
}

// TestColdcardFile: Coldcard's import rules read the file as the same
// wallet (threshold, format P2WSH, every key's fingerprint, path and
// xpub, rebuilt into the descriptor we hold); a taproot wallet, and a
// name Coldcard would refuse or misread, are refused.
func TestColdcardFile(t *testing.T) {
	_, d := testKeys(t)
	text, err := d.Coldcard("kinko cold 2of3")
	if err != nil {
		t.Fatal(err)
	}
	name, m, n, format, keys, err := readColdcard(text, regtest)
	if err != nil {
		t.Fatalf("Coldcard's rules refuse the file: %v\n%s", err, text)
	}
	if name != "kinko cold 2of3" || m != 2 || n != 3 || format != "p2wsh" {
		t.Fatalf("read name %q, %d of %d, format %s; want kinko cold 2of3, 2 of 3, p2wsh\n%s", name, m, n, format, text)
	}
	back := &Descriptor{M: m, Net: regtest}
	for _, k := range keys {
		var fp [4]byte
		binary.LittleEndian.PutUint32(fp[:], k.xfp)
		s := "[" + hex.EncodeToString(fp[:]) + strings.TrimPrefix(k.deriv, "m") + "]" + k.xpub
		key, err := ParseKey(s, regtest)
		if err != nil {
			t.Fatalf("key %s: %v", s, err)
		}
		back.Keys = append(back.Keys, key)
	}
	if !back.Same(d) {
		t.Fatalf("the file reads as %s; want %s\n%s", back, d, text)
	}
	for i := range d.Keys {
		want := fmt.Sprintf("Derivation: m/48'/1'/0'/2'\n%X: %s\n", d.Keys[i].Fingerprint, d.Keys[i].XPub)
		if !strings.Contains(text, want) {
			t.Errorf("key %d: the file lacks\n%s", i, want)
		}
	}

	tr := &Descriptor{M: 2, Net: regtest, Keys: d.Keys, Type: TR}
	if _, err := tr.Coldcard("tr"); err == nil {
		t.Error("a taproot wallet was written as a Coldcard P2WSH file")
	}
	for _, bad := range []string{"", "twenty-one characters", "a\nName: other", "a: b"} {
		if _, err := d.Coldcard(bad); err == nil {
			t.Errorf("Coldcard(%q) accepted", bad)
		}
	}
}

// sparrowParagraphs splits a file as Sparrow's Output Descriptor import
// reads it (sparrow io/Descriptor.java, getParagraphs): trimmed lines,
// '#' lines skipped, paragraphs split at blank lines; Sparrow imports the
// first paragraph.
func sparrowParagraphs(text string) []string {
	var out []string
	var p strings.Builder
	for _, ln := range strings.Split(text, "\n") {
		ln = strings.TrimSpace(ln)
		switch {
		case ln == "":
			if p.Len() > 0 {
				out = append(out, p.String())
				p.Reset()
			}
		case strings.HasPrefix(ln, "#"):
		default:
			p.WriteString(ln)
		}
	}
	if p.Len() > 0 {
		out = append(out, p.String())
	}
	return out
}

// TestSparrowFile: the paragraph Sparrow imports is the wallet's BIP389
// multipath descriptor, both chains, with a valid checksum; the comments
// name both single-chain descriptors.
func TestSparrowFile(t *testing.T) {
	_, d := testKeys(t)
	for _, typ := range []Type{WSH, TR} {
		d := &Descriptor{M: 2, Net: d.Net, Keys: d.Keys, Type: typ}
		text := d.Sparrow("kinko cold")
		ps := sparrowParagraphs(text)
		if len(ps) == 0 {
			t.Fatalf("Sparrow finds no descriptor in\n%s", text)
		}
		if ps[0] != d.Multipath() || strings.Count(ps[0], "/<0;1>/*") != len(d.Keys) {
			t.Fatalf("Sparrow imports %q; want the multipath %s", ps[0], d.Multipath())
		}
		p, err := Parse(ps[0], regtest)
		if err != nil || !p.Same(d) {
			t.Fatalf("Parse(%s) = %v", ps[0], err)
		}
		if !strings.Contains(text, "# receive: "+d.Branch(0)+"\n") || !strings.Contains(text, "# change:  "+d.Branch(1)+"\n") {
			t.Fatalf("the comments lack the single-chain descriptors:\n%s", text)
		}
	}
}
