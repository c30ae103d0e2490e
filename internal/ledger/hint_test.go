package ledger

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestHintsChangeNothing applies the same random batches to two ledgers,
// one with CreateTransfers and one with CreateTransfersHinted given hints
// that are right, wrong (another account's), stale-looking (past the end)
// or zero, and compares every result and the two encodings: a hint may
// only save a look-up.
func TestHintsChangeNothing(t *testing.T) {
	keys := []AccountKey{wallet, alice, aliceH, bob, bobJPY, equity,
		{Owner: 2, Asset: btc, Kind: KindHeld}, {Owner: 9, Asset: btc, Kind: KindAvailable}} // the last does not exist
	plain, hinted := newTestLedger(t), newTestLedger(t)
	rng := rand.New(rand.NewPCG(3, 4))
	hint := func(k AccountKey) AccountHint {
		switch rng.IntN(4) {
		case 0:
			return hinted.AccountHint(k) // right
		case 1:
			return hinted.AccountHint(keys[rng.IntN(len(keys))]) // another account's
		case 2:
			return AccountHint(hinted.AccountCount() + 1 + rng.IntN(3)) // past the end
		}
		return 0
	}
	next := uint64(100)
	for round := 0; round < 2000; round++ {
		var ts []Transfer
		var hs []TransferHint
		for range 1 + rng.IntN(6) {
			next++
			tr := Transfer{ID: id(next), Debit: keys[rng.IntN(len(keys))], Credit: keys[rng.IntN(len(keys))], Amount: AmountOf(uint64(rng.IntN(400)))}
			switch rng.IntN(6) {
			case 0:
				tr.Flags = FlagLinked
			case 1:
				tr.Flags = FlagPending
			}
			ts = append(ts, tr)
			hs = append(hs, TransferHint{Debit: hint(tr.Debit), Credit: hint(tr.Credit)})
		}
		if rng.IntN(10) == 0 {
			hs = hs[:len(hs)-1] // hints of another length are not used
		}
		want := plain.CreateTransfers(slices.Clone(ts), int64(round), nil)
		got := hinted.CreateTransfersHinted(slices.Clone(ts), hs, int64(round), nil)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: results %v with hints, %v without", round, got, want)
		}
	}
	check(t, hinted)
	var a, b bytes.Buffer
	wa, wb := bufio.NewWriter(&a), bufio.NewWriter(&b)
	if err := plain.Encode(wa); err != nil {
		t.Fatal(err)
	}
	if err := hinted.Encode(wb); err != nil {
		t.Fatal(err)
	}
	wa.Flush()
	wb.Flush()
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the ledgers differ after the same batches with and without hints")
	}
	if plain.TransferCount() < 1000 {
		t.Fatalf("only %d transfers applied: the test moved too little", plain.TransferCount())
	}
}
