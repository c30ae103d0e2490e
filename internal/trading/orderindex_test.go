package trading

import (
	"math/rand/v2"
	"testing"

	"kinko/internal/market"
)

// TestOrderIndexModel runs random opens and closes, in bursts that grow
// and shrink the table, against a map, and checks every look-up and the
// table's invariant.
func TestOrderIndexModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := newOrderIndex(0)
	model := map[market.OrderID]*Order{}
	next := market.OrderID(0)
	for step := 0; step < 200_000; step++ {
		grow := (step/20_000)%2 == 0
		switch r := rng.IntN(10); {
		case r < 5 && (grow || len(model) == 0):
			next += market.OrderID(1 + rng.IntN(3))
			o := &Order{ID: next}
			x.put(o)
			model[o.ID] = o
		case r < 8:
			id := market.OrderID(1 + rng.IntN(int(next)+1))
			x.del(id)
			delete(model, id)
		default:
			id := market.OrderID(1 + rng.IntN(int(next)+1))
			got, ok := x.get(id)
			want, wok := model[id]
			if ok != wok || got != want {
				t.Fatalf("step %d: get(%d) = %v, %v; want %v, %v", step, id, got, ok, want, wok)
			}
		}
		if step%1000 == 0 && !x.check() {
			t.Fatalf("step %d: invariant broken", step)
		}
	}
	if x.len() != len(model) {
		t.Fatalf("%d records, the model has %d", x.len(), len(model))
	}
	for id, o := range model {
		if got, ok := x.get(id); !ok || got != o {
			t.Fatalf("order %d lost", id)
		}
	}
	n := 0
	x.each(func(*Order) { n++ })
	if n != len(model) || !x.check() {
		t.Fatalf("each saw %d of %d", n, len(model))
	}
}
