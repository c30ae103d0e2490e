package book

import (
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/chain/eth/safe"
	"kinko/internal/ethwallet"
)

func desc(owner byte) ethwallet.Descriptor {
	a := func(b byte) ethwallet.Address { var x ethwallet.Address; x[0], x[19] = 0xd0, b; return x }
	return ethwallet.Descriptor{ChainID: 1, Singleton: a(1), Factory: a(2), Fallback: a(3), Threshold: 2,
		Owners: []ethwallet.Address{a(owner), a(owner + 1), a(owner + 2)}}
}

// TestBook: the addresses are the Safe package's counterfactual ones for
// the descriptor's setup, found back by Lookup; another descriptor for a
// wallet is refused; other owners give other addresses.
func TestBook(t *testing.T) {
	art, err := safe.LoadInstalled()
	if err != nil {
		t.Fatal(err)
	}
	d := desc(10)
	dep := safe.NewDeployment(art, safe.L2, big.NewInt(1), safe.Addresses{Singleton: common.Address(d.Singleton), ProxyFactory: common.Address(d.Factory), FallbackHandler: common.Address(d.Fallback)})
	init, err := dep.Initializer(safe.Config{Owners: []common.Address{common.Address(d.Owners[0]), common.Address(d.Owners[1]), common.Address(d.Owners[2])}, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	b := New(art)
	if err := b.Add(4, d, 10); err != nil {
		t.Fatal(err)
	}
	for i := uint32(0); i < 10; i++ {
		want, _ := dep.Predictor(init).Address(big.NewInt(int64(i)))
		got, ok := b.Address(4, i)
		if !ok || got != want {
			t.Fatalf("Address(4, %d) = %s; want %s", i, got, want)
		}
		if p, ok := b.Lookup(want); !ok || p != (Place{4, i}) {
			t.Fatalf("Lookup(%s) = %+v", want, p)
		}
		if x, err := Derive(art, d, i); err != nil || x != want {
			t.Fatalf("Derive(%d) = %s, %v", i, x, err)
		}
	}
	if _, ok := b.Address(4, 10); ok {
		t.Fatal("index 10 held")
	}
	if err := b.Add(4, desc(20), 10); !errors.Is(err, ErrConflict) {
		t.Fatalf("another descriptor for wallet 4: %v; want ErrConflict", err)
	}
	other, _ := Derive(art, desc(20), 0)
	if _, ok := b.Lookup(other); ok || b.Len() != 10 {
		t.Fatalf("another Safe's address found (%v) or %d addresses", ok, b.Len())
	}
}
