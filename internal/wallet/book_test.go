package wallet

import (
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"testing"
)

func wshScript(i uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	h := sha256.Sum256(b[:])
	return append([]byte{0x00, 0x20}, h[:]...)
}

func TestBookPlaces(t *testing.T) {
	b := NewBook()
	_, d := testKeys(t)
	if err := b.Add(7, d, 1, 0, 3); err != nil {
		t.Fatal(err)
	}
	s, _ := d.PkScript(1, 2)
	if p, ok := b.Find(s); !ok || p != (Place{Wallet: 7, Branch: 1, Index: 2}) {
		t.Fatalf("Find = %+v %v", p, ok)
	}
	if _, _, ok := b.Lookup(s); ok {
		t.Fatal("a change script answered as a deposit address")
	}
	other := []byte{0x76, 0xa9, 0x14}
	if err := b.AddScript(other, Place{Wallet: 1, Index: 1<<31 - 1}); err != nil {
		t.Fatal(err)
	}
	if w, i, ok := b.Lookup(other); !ok || w != 1 || i != 1<<31-1 {
		t.Fatalf("Lookup(other) = %d %d %v", w, i, ok)
	}
	for _, bad := range []Place{{Branch: 2}, {Index: 1 << 31}} {
		if b.AddScript(wshScript(1), bad) == nil {
			t.Errorf("AddScript(%+v) accepted", bad)
		}
	}
	if b.Add(1, d, 2, 0, 1) == nil || b.Add(1, d, 0, 5, 4) == nil {
		t.Error("Add accepted a bad branch or range")
	}
	if b.Len() != 4 {
		t.Fatalf("Len = %d", b.Len())
	}
	if _, ok := b.Find(wshScript(99)); ok {
		t.Fatal("found a script never added")
	}
}

// BenchmarkBookMillion measures the memory of a million watched addresses
// and the time of one lookup among them: in a book sized for them, and in
// one grown an address at a time.
func BenchmarkBookMillion(b *testing.B) {
	b.Run("sized", func(b *testing.B) { benchBook(b, func() *Book { return NewBookSize(1_000_000) }) })
	b.Run("grown", func(b *testing.B) { benchBook(b, NewBook) })
}

func benchBook(b *testing.B, newBook func() *Book) {
	const n = 1_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	book := newBook()
	for i := uint64(0); i < n; i++ {
		book.AddScript(wshScript(i), Place{Wallet: 1, Index: uint32(i)})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perAddress := float64(after.HeapAlloc-before.HeapAlloc) / n
	probe := wshScript(n / 2)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, ok := book.Find(probe); !ok {
			b.Fatal("lost")
		}
	}
	b.StopTimer()
	b.ReportMetric(perAddress, "B/address")
	runtime.KeepAlive(book)
}
