package wallet

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
)

// otherKeys returns a 2-of-3 wallet of three keys none of testKeys has.
func otherKeys(t testing.TB, seed byte) *Descriptor {
	t.Helper()
	d := &Descriptor{M: 2, Net: regtest}
	for i := byte(0); i < 3; i++ {
		m, err := hdkeychain.NewMaster(bytes.Repeat([]byte{seed + i}, 32), regtest)
		if err != nil {
			t.Fatal(err)
		}
		k, _, err := AccountKey(m, regtest, 0)
		if err != nil {
			t.Fatal(err)
		}
		d.Keys = append(d.Keys, k)
	}
	return d
}

func TestRegistry(t *testing.T) {
	_, d := testKeys(t)
	mine := d.Keys[0]
	other := otherKeys(t, 40)
	r := NewRegistry(regtest)
	if added, err := r.Register("cold-main", "cold-customer", d, &mine); err != nil || !added {
		t.Fatalf("Register = %v, %v; want added", added, err)
	}
	// The same wallet again, even with its keys in another order: no-op.
	swapped := &Descriptor{M: 2, Net: regtest, Keys: []Key{d.Keys[2], d.Keys[0], d.Keys[1]}}
	if added, err := r.Register("cold-main", "cold-customer", swapped, &mine); err != nil || added {
		t.Fatalf("Register again = %v, %v; want a no-op", added, err)
	}
	withMine := &Descriptor{M: 2, Net: regtest, Keys: []Key{mine, other.Keys[1], other.Keys[2]}}
	for _, c := range []struct {
		name, kind string
		d          *Descriptor
		key        Key
		want       error
	}{
		{"cold-other", "cold-customer", other, mine, ErrNotThisMachine},
		{"cold-main", "cold-customer", withMine, mine, ErrNameTaken},
		{"cold-main", "cold-house", d, mine, ErrNameTaken},
		{"again", "cold-customer", swapped, mine, ErrRegisteredAs},
		{"has space", "cold-customer", withMine, mine, ErrName},
		{"", "cold-customer", withMine, mine, ErrName},
		{"ok", "Cold", withMine, mine, ErrName},
		{"ok", "cold-customer", &Descriptor{M: 2, Net: &chaincfg.TestNet3Params, Keys: withMine.Keys}, mine, ErrNetwork},
	} {
		if _, err := r.Register(c.name, c.kind, c.d, &c.key); !errors.Is(err, c.want) {
			t.Errorf("Register(%q, %q) = %v; want %v", c.name, c.kind, err, c.want)
		}
	}
	if len(r.Wallets) != 1 {
		t.Fatalf("refused registrations changed the registry: %d wallets", len(r.Wallets))
	}
	if added, err := r.Register("house", "cold-house", withMine, &mine); err != nil || !added {
		t.Fatalf("Register(house) = %v, %v", added, err)
	}

	path := filepath.Join(t.TempDir(), "registry.json")
	if err := r.Save(path); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("registry mode %v; want 0600", fi.Mode().Perm())
	}
	back, err := LoadRegistry(path, regtest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Marshal(), r.Marshal()) {
		t.Fatalf("LoadRegistry(Save(r)) = %s; want %s", back.Marshal(), r.Marshal())
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("Save left %d files; want only the registry", len(ents))
	}
	set, err := back.Set()
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := withMine.PkScript(1, 7)
	if w, p, ok := set.Owner(pk); !ok || w.Label() != "house" || w.Kind != "cold-house" || p.Branch != 1 || p.Index != 7 {
		t.Fatalf("Owner(house change 7) = %v %v %v", w, p, ok)
	}
	if _, err := LoadRegistry(filepath.Join(t.TempDir(), "none.json"), regtest); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadRegistry(missing) = %v; want os.ErrNotExist", err)
	}
}

// TestRegistryCorrupt: every way a registry file can be wrong is a clear
// error, ErrRegistry.
func TestRegistryCorrupt(t *testing.T) {
	_, d := testKeys(t)
	r := NewRegistry(regtest)
	r.Register("cold-main", "cold-customer", d, &d.Keys[0])
	good := string(r.Marshal())
	desc := d.String()
	badSum := desc[:len(desc)-1] + map[bool]string{true: "q", false: "p"}[desc[len(desc)-1] != 'q']
	other := otherKeys(t, 40)
	for name, b := range map[string]string{
		"empty":          "",
		"truncated":      good[:len(good)/2],
		"not json":       "wallets: cold-main",
		"trailing":       good + "{}",
		"unknown field":  strings.Replace(good, `"net"`, `"owner": "x", "net"`, 1),
		"version":        strings.Replace(good, `"version": 1`, `"version": 2`, 1),
		"network":        strings.Replace(good, `"net": "regtest"`, `"net": "mainnet"`, 1),
		"checksum":       strings.Replace(good, desc, badSum, 1),
		"no checksum":    strings.Replace(good, desc, desc[:len(desc)-9], 1),
		"not this key":   strings.Replace(good, `"key": "`+d.Keys[0].String(), `"key": "`+other.Keys[0].String(), 1),
		"key branch":     strings.Replace(good, `"key": "`+d.Keys[0].String(), `"key": "`+d.Keys[0].String()+"/0/*", 1),
		"duplicate name": strings.Replace(good, `"wallets": [`, `"wallets": [{"name": "cold-main", "kind": "cold-customer", "descriptor": "`+desc+`", "key": "`+d.Keys[1].String()+`"},`, 1),
		"bad name":       strings.Replace(good, `"cold-main"`, `"cold main"`, 1),
		"too large":      good + strings.Repeat(" ", MaxRegistryBytes),
	} {
		if _, err := ParseRegistry([]byte(b), regtest); !errors.Is(err, ErrRegistry) {
			t.Errorf("ParseRegistry(%s) = %v; want ErrRegistry", name, err)
		}
	}
}

// FuzzRegistry: a registry file that parses marshals to a file that
// parses to the same registry, byte for byte.
func FuzzRegistry(f *testing.F) {
	_, d := testKeys(f)
	r := NewRegistry(regtest)
	r.Register("cold-main", "cold-customer", d, &d.Keys[0])
	other := otherKeys(f, 40)
	withMine := &Descriptor{M: 1, Net: regtest, Keys: []Key{other.Keys[0], d.Keys[0]}}
	r.Register("house_1.a", "cold-house", withMine, &d.Keys[0])
	f.Add(r.Marshal())
	f.Add(NewRegistry(regtest).Marshal())
	f.Add([]byte(`{"version":1,"net":"regtest","wallets":null}`))
	f.Add([]byte(`{"version":1,"net":"regtest","wallets":[{"name":"x","kind":"y","descriptor":"wsh(sortedmulti(1,[00000000/48h]tpub/0/*))#aaaaaaaa","key":"[00000000]tpub"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRegistry(b, regtest)
		if err != nil {
			if !errors.Is(err, ErrRegistry) {
				t.Fatalf("ParseRegistry error %v is not ErrRegistry", err)
			}
			return
		}
		out := r.Marshal()
		back, err := ParseRegistry(out, regtest)
		if err != nil {
			t.Fatalf("ParseRegistry(Marshal(r)) = %v\n%s", err, out)
		}
		if again := back.Marshal(); !bytes.Equal(again, out) {
			t.Fatalf("Marshal(ParseRegistry(Marshal(r))) = %s; want %s", again, out)
		}
		if len(back.Wallets) != len(r.Wallets) {
			t.Fatalf("round trip has %d wallets; want %d", len(back.Wallets), len(r.Wallets))
		}
		for i := range r.Wallets {
			if back.Wallets[i] != r.Wallets[i] || !back.Descriptor(i).Same(r.Descriptor(i)) {
				t.Fatalf("wallet %d = %+v; want %+v", i, back.Wallets[i], r.Wallets[i])
			}
		}
	})
}

// TestRegistryDestination: a wallet holding none of this machine's keys
// registers only as a destination; it survives the file; its outputs are
// ours to the set, and a file that gives a destination a key is refused.
func TestRegistryDestination(t *testing.T) {
	_, d := testKeys(t)
	mine := d.Keys[0]
	hot := otherKeys(t, 60)
	r := NewRegistry(regtest)
	if _, err := r.Register("hot", "hot-customer", hot, &mine); !errors.Is(err, ErrNotThisMachine) {
		t.Fatalf("Register of a wallet without this key = %v; want ErrNotThisMachine", err)
	}
	if _, err := r.RegisterDestination("cold", "cold-customer", d, &mine); !errors.Is(err, ErrHoldsThisKey) {
		t.Fatalf("RegisterDestination of this machine's wallet = %v; want ErrHoldsThisKey", err)
	}
	if added, err := r.RegisterDestination("hot", "hot-customer", hot, &mine); err != nil || !added {
		t.Fatalf("RegisterDestination = %v, %v", added, err)
	}
	back, err := ParseRegistry(r.Marshal(), regtest)
	if err != nil || len(back.Wallets) != 1 || !back.Wallets[0].Destination || back.Wallets[0].Key != "" {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
	set, err := back.Set()
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := hot.PkScript(0, 3)
	if _, _, ok := set.Owner(pk); !ok {
		t.Fatal("a destination's output is not ours to the set")
	}
	bad := strings.Replace(string(r.Marshal()), `"destination": true`, `"key": "`+mine.String()+`", "destination": true`, 1)
	if _, err := ParseRegistry([]byte(bad), regtest); !errors.Is(err, ErrRegistry) {
		t.Fatalf("a destination with a key = %v; want ErrRegistry", err)
	}
}
