package ethwallet

import (
	"errors"
	"strings"
	"testing"
)

func addr(b byte) Address { var a Address; a[0], a[19] = 0xa0, b; return a }

func valid() Descriptor {
	return Descriptor{ChainID: 1337, Singleton: addr(1), Factory: addr(2), Fallback: addr(3), Threshold: 2,
		Owners: []Address{addr(10), addr(11), addr(12)}}
}

// TestAddressChecksum checks EIP-55's own examples.
func TestAddressChecksum(t *testing.T) {
	for _, s := range []string{
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
		"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
		"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
		"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
	} {
		a, err := ParseAddress(s)
		if err != nil || a.String() != s {
			t.Errorf("ParseAddress(%s) = %s, %v; want it back", s, a, err)
		}
		for _, bad := range []string{strings.ToLower(s), "0x" + strings.ToUpper(s[2:]), s[:41] + "0", s[2:] + "00"} {
			if bad == s {
				continue
			}
			if _, err := ParseAddress(bad); !errors.Is(err, ErrDescriptor) {
				t.Errorf("ParseAddress(%s) = %v; want ErrDescriptor", bad, err)
			}
		}
	}
}

func TestParseRoundTrip(t *testing.T) {
	d := valid()
	s := d.String()
	if !strings.HasPrefix(s, Prefix+"chain=1337;singleton=0x") || !IsSafe(s) {
		t.Fatalf("String() = %s", s)
	}
	got, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != s || got.Threshold != 2 || len(got.Owners) != 3 || got.ChainID != 1337 {
		t.Fatalf("Parse(String()) = %+v", got)
	}
}

// TestParseRefuses: each bad descriptor is refused with ErrDescriptor and
// a message naming what is wrong.
func TestParseRefuses(t *testing.T) {
	good := valid().String()
	mod := func(f func(*Descriptor)) string { d := valid(); f(&d); return d.String() }
	lower := strings.Replace(good, addr(1).String(), strings.ToLower(addr(1).String()), 1)
	cases := []struct{ name, s, want string }{
		{"empty", "", "must start"},
		{"other version", strings.Replace(good, "1.4.1", "1.3.0", 1), "must start"},
		{"no paren", strings.TrimSuffix(good, ")"), "must end"},
		{"space", strings.Replace(good, ";", "; ", 1), "field 2"},
		{"fields reordered", strings.Replace(strings.Replace(good, "singleton=", "X=", 1), "factory=", "singleton=", 1), "field 2"},
		{"missing field", strings.Replace(good, ";threshold=2", "", 1), "fields"},
		{"chain zero", strings.Replace(good, "chain=1337", "chain=0", 1), "chain id 0"},
		{"chain leading zero", strings.Replace(good, "chain=1337", "chain=01337", 1), "leading zeros"},
		{"chain signed", strings.Replace(good, "chain=1337", "chain=+1337", 1), "leading zeros"},
		{"chain huge", strings.Replace(good, "chain=1337", "chain=18446744073709551616", 1), "above 2^64-1"},
		{"no checksum", lower, "EIP-55"},
		{"zero singleton", mod(func(d *Descriptor) { d.Singleton = Address{} }), "zero address"},
		{"factory is singleton", mod(func(d *Descriptor) { d.Factory = d.Singleton }), "three contracts"},
		{"threshold 1", mod(func(d *Descriptor) { d.Threshold = 1 }), "threshold 1 of 3"},
		{"threshold 4 of 3", mod(func(d *Descriptor) { d.Threshold = 4 }), "threshold 4 of 3"},
		{"owner twice", mod(func(d *Descriptor) { d.Owners[2] = d.Owners[0] }), "twice"},
		{"sentinel owner", mod(func(d *Descriptor) { d.Owners[1] = sentinel }), "cannot own"},
		{"zero owner", mod(func(d *Descriptor) { d.Owners[1] = Address{} }), "cannot own"},
		{"contract owner", mod(func(d *Descriptor) { d.Owners[1] = d.Factory }), "pinned contract"},
		{"no owners", strings.Split(good, "owners=")[0] + "owners=)", "owner"},
		{"17 owners", mod(func(d *Descriptor) {
			for i := byte(0); i < 14; i++ {
				d.Owners = append(d.Owners, addr(100+i))
			}
		}), "17 owners"},
		{"too long", good + strings.Repeat("x", MaxLen), "more than"},
	}
	for _, c := range cases {
		_, err := Parse(c.s)
		if !errors.Is(err, ErrDescriptor) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Parse = %v; want ErrDescriptor saying %q", c.name, err, c.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(valid().String())
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if err == nil && d.String() != s {
			t.Fatalf("Parse(%q) accepted another spelling of %s", s, d)
		}
	})
}
