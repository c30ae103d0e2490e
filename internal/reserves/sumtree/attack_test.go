package sumtree

import (
	"crypto/sha256"
	"errors"
	"testing"

	"kinko/internal/ledger"
)

// The attacks below are the exchange's: it builds the tree and answers
// every customer, and wants to publish a total smaller than what it owes
// while every customer who checks still finds a proof that verifies. The
// security property a customer relies on (Hu, Zhang and Guo, ePrint
// 2018/1139, theorem for the fixed tree) is that the published total is at
// least the sum of the balances of the customers whose proofs verify. Each
// test builds the attacker's tree by hand, hands each customer the proof
// he would, and measures what he got away with.

// forged is a tree as an attacker committed it: levels[0] the leaf nodes,
// each level above made by his parent function, padded as ours is.
type forged struct {
	leaves []Leaf
	levels [][]Node
}

func forge(leaves []Leaf, parent func(l, r Node) Node) *forged {
	f := &forged{leaves: leaves}
	level := make([]Node, 1<<Depth(uint64(len(leaves))))
	for i := range level {
		level[i] = PadLeaf
		if i < len(leaves) {
			level[i] = leaves[i].Node()
		}
	}
	f.levels = append(f.levels, level)
	for len(level) > 1 {
		next := make([]Node, len(level)/2)
		for i := range next {
			next[i] = parent(level[2*i], level[2*i+1])
		}
		f.levels = append(f.levels, next)
		level = next
	}
	return f
}

func (f *forged) top() Node { return f.levels[len(f.levels)-1][0] }

// root is what he publishes.
func (f *forged) root() Root {
	n := uint64(len(f.leaves))
	return Root{Asset: "BTC", Seq: 5, Time: 6, Size: n, Hash: RootHash("BTC", 5, 6, n, f.top()), Total: f.top().Sum}
}

// proof is the proof he hands customer i: the true path of his tree.
func (f *forged) proof(i int) *Proof {
	p := &Proof{Root: f.root(), Index: uint64(i), Leaf: f.leaves[i]}
	for k := 0; k < len(f.levels)-1; k++ {
		p.Path = append(p.Path, f.levels[k][(i>>k)^1])
	}
	return p
}

// honestParent is our parent, for forged trees that cheat elsewhere.
func honestParent(l, r Node) Node {
	n, err := Parent(l, r)
	if err != nil {
		panic(err)
	}
	return n
}

func leavesOf(balances ...uint64) []Leaf {
	ls := make([]Leaf, len(balances))
	for i, b := range balances {
		ls[i] = Leaf{Salt: sha256.Sum256([]byte{byte(i)}), Account: uint64(100 + i), Balance: ledger.AmountOf(b)}
	}
	return ls
}

// measure checks every customer's proof and returns the balances of those
// whose proof verifies, and the customers whose proof fails.
func measure(t *testing.T, leaves []Leaf, proof func(i int) *Proof) (verified ledger.Amount, failed []int) {
	t.Helper()
	for i, l := range leaves {
		p := proof(i)
		if err := p.Verify(); err != nil {
			failed = append(failed, i)
			continue
		}
		if err := p.Check(l.Account, l.Balance); err != nil {
			failed = append(failed, i)
			continue
		}
		verified, _ = verified.Add(l.Balance)
	}
	return verified, failed
}

// TestLiabilitiesMaxwellAttack is Hu, Zhang and Guo's attack on Maxwell's
// original tree, whose node hashed the children's total only:
// H(s_l + s_r || h_l || h_r). The attacker gives each node the larger of
// its children's sums instead of their total and shows each customer the
// sibling sum that makes his own path add up. Against Maxwell's tree every
// customer's proof verifies and the total is the largest balance alone;
// against ours (each child's sum committed separately) the same attack
// leaves the total covering only the customers whose proofs verify.
func TestLiabilitiesMaxwellAttack(t *testing.T) {
	balances := []uint64{3000, 5000, 1200, 800, 9000, 4000, 2500, 100}
	leaves := leavesOf(balances...)
	var owed uint64
	for _, b := range balances {
		owed += b
	}

	// Maxwell's tree, attacked.
	type mnode struct {
		hash [32]byte
		sum  uint64
	}
	mhash := func(sum uint64, l, r [32]byte) [32]byte {
		var b []byte
		b = be.AppendUint64(b, sum)
		b = append(b, l[:]...)
		b = append(b, r[:]...)
		return sha256.Sum256(b)
	}
	level := make([]mnode, len(leaves))
	for i, l := range leaves {
		level[i] = mnode{hash: l.Node().Hash, sum: balances[i]}
	}
	levels := [][]mnode{level}
	for len(level) > 1 {
		next := make([]mnode, len(level)/2)
		for i := range next {
			l, r := level[2*i], level[2*i+1]
			s := max(l.sum, r.sum) // the lie
			next[i] = mnode{hash: mhash(s, l.hash, r.hash), sum: s}
		}
		levels = append(levels, next)
		level = next
	}
	mroot := level[0]
	verified := 0
	for i := range leaves {
		// The customer's own check under Maxwell's rules: climb with the
		// sibling sums shown, hashing the running total.
		cur := mnode{hash: leaves[i].Node().Hash, sum: balances[i]}
		for k := 0; k < len(levels)-1; k++ {
			claimed := levels[k+1][i>>(k+1)].sum
			sib := levels[k][(i>>k)^1]
			shown := claimed - cur.sum // the sibling sum that fits
			l, r := cur.hash, sib.hash
			if (i>>k)&1 == 1 {
				l, r = r, l
			}
			cur = mnode{hash: mhash(cur.sum+shown, l, r), sum: cur.sum + shown}
		}
		if cur == mroot {
			verified++
		}
	}
	if verified != len(leaves) || mroot.sum != 9000 {
		t.Fatalf("Maxwell's tree: %d of %d customers verify a total of %d; the attack should pass all of them at the largest balance", verified, len(leaves), mroot.sum)
	}
	t.Logf("Maxwell's tree: all %d customers verify a total of %d of the %d owed", verified, mroot.sum, owed)

	// The same attack on our tree: node sums the larger child's, each
	// customer shown the sibling sum that makes his path add up.
	f := forge(leaves, func(l, r Node) Node {
		n := honestParent(l, r)
		if l.Sum.Cmp(r.Sum) >= 0 {
			n.Sum = l.Sum
		} else {
			n.Sum = r.Sum
		}
		return n
	})
	got, failed := measure(t, leaves, func(i int) *Proof {
		p := f.proof(i)
		cur := leaves[i].Balance
		for k := range p.Path {
			claimed := f.levels[k+1][i>>(k+1)].Sum
			p.Path[k].Sum, _ = claimed.Sub(cur)
			cur = claimed
		}
		return p
	})
	total := f.root().Total
	if got.Cmp(total) > 0 {
		t.Fatalf("our tree: customers with %s verify a total of %s", got, total)
	}
	if len(failed) == 0 {
		t.Fatal("our tree: every customer verifies the understated total")
	}
	t.Logf("our tree: total %s published, customers %v (of %d) find their proof fails; those that verify hold %s", total, failed, len(leaves), got)

	// The attacker may instead show the true sibling sums of his tree:
	// then the sums no longer add up to what the hashes commit.
	got, failed = measure(t, leaves, f.proof)
	if got.Cmp(total) > 0 || len(failed) == 0 {
		t.Fatalf("our tree, true sibling sums: %s verify under a total of %s, failed %v", got, total, failed)
	}
}

// TestLiabilitiesNegativeBalance: the attacker offsets customer 0's
// balance with a "negative" leaf beside it (2^128 - 5000, so that sums
// taken modulo 2^128 drop by 5000). Build refuses such a leaf set; in his
// own tree, added modulo 2^128, customer 0's proof fails on the overflow
// (or, shown another sibling sum, on the hash), so the customer whose
// balance is hidden is the one who sees it.
func TestLiabilitiesNegativeBalance(t *testing.T) {
	leaves := leavesOf(5000, 0, 7000, 1000)
	neg := ledger.Amount{Hi: ^uint64(0), Lo: ^uint64(0) - 5000 + 1} // 2^128 - 5000
	leaves[1].Balance = neg
	if _, err := Build(append([]Leaf(nil), leaves...), "BTC", 5, 6); !errors.Is(err, ErrOverflow) {
		t.Fatalf("Build with a negative leaf = %v; want ErrOverflow", err)
	}
	wrap := func(l, r Node) Node {
		var n Node
		var b [nodeLen]byte
		b[0] = TagNode
		copy(b[1:], l.Hash[:])
		put128(b[33:], l.Sum)
		copy(b[49:], r.Hash[:])
		put128(b[81:], r.Sum)
		n.Hash = sha256.Sum256(b[:])
		n.Sum, _ = l.Sum.Add(r.Sum) // modulo 2^128
		return n
	}
	f := forge(leaves, wrap)
	if total := f.root().Total; total != ledger.AmountOf(8000) {
		t.Fatalf("the attacker's total %s; want 8000 (13000 owed less the 5000 offset)", total)
	}
	real := []Leaf{leaves[0], leaves[2], leaves[3]}
	idx := []int{0, 2, 3}
	got, failed := measure(t, real, func(i int) *Proof { return f.proof(idx[i]) })
	if len(failed) != 1 || failed[0] != 0 || got != ledger.AmountOf(8000) {
		t.Fatalf("negative leaf: failed %v, verified %s; want customer 0 alone to fail", failed, got)
	}
	if err := f.proof(0).Verify(); !errors.Is(err, ErrOverflow) {
		t.Fatalf("customer 0's proof = %v; want ErrOverflow", err)
	}
	// Shown the negative leaf's sum as 0 instead, customer 0's path no
	// longer hashes to the root.
	p := f.proof(0)
	p.Path[0].Sum = ledger.Amount{}
	if err := p.Verify(); !errors.Is(err, ErrProofRoot) && !errors.Is(err, ErrProofTotal) {
		t.Fatalf("customer 0 shown sum 0 for the negative leaf: %v; want a root or total mismatch", err)
	}
}

// TestLiabilitiesNodeBelowChild: the attacker makes a node's sum less than
// one of its children's (customer 1's balance dropped from the node over
// customers 0 and 1), the hashes honest. Customers 0 and 1 compute the
// node's sum themselves from the two child sums its hash commits, and at
// the next level their hash no longer matches: both find their proof
// fails; the others, who see only the node, cannot tell, but their own
// balances are counted.
func TestLiabilitiesNodeBelowChild(t *testing.T) {
	leaves := leavesOf(4000, 6000, 1500, 2500)
	hidden := false
	f := forge(leaves, func(l, r Node) Node {
		n := honestParent(l, r)
		if !hidden {
			n.Sum, hidden = l.Sum, true // the first node: customers 0 and 1
		}
		return n
	})
	got, failed := measure(t, leaves, f.proof)
	if total := f.root().Total; total != ledger.AmountOf(8000) || got.Cmp(total) > 0 {
		t.Fatalf("total %s, verified %s", total, got)
	}
	if len(failed) != 2 || failed[0] != 0 || failed[1] != 1 {
		t.Fatalf("node below its child: failed %v; want customers 0 and 1", failed)
	}
	for _, i := range failed {
		if err := f.proof(i).Verify(); !errors.Is(err, ErrProofRoot) && !errors.Is(err, ErrProofTotal) {
			t.Errorf("customer %d: %v; want a root or total mismatch", i, err)
		}
	}
}

// TestLiabilitiesDroppedCustomer: a tree without customer X. X asks for
// his proof: the tree has no leaf of his; his leaf on a neighbour's path
// does not reach the root; a tree that counts him at a smaller balance
// gives a proof that verifies but is not of his balance.
func TestLiabilitiesDroppedCustomer(t *testing.T) {
	all := leavesOf(100, 200, 300, 400, 500)
	x := all[2]
	without := []Leaf{all[0], all[1], all[3], all[4]}
	tr, err := Build(append([]Leaf(nil), without...), "BTC", 5, 6)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tr.Find(x.Salt, x.Account); ok {
		t.Fatal("the tree without X finds X")
	}
	for i := uint64(0); i < uint64(tr.Size()); i++ {
		p, _ := tr.Prove(i)
		p.Leaf = x
		if err := p.Verify(); err == nil {
			t.Fatalf("X's leaf on the path of leaf %d verifies", i)
		}
	}
	// X counted at 0: the proof verifies, X's own check does not.
	zero := append(append([]Leaf(nil), without...), Leaf{Salt: x.Salt, Account: x.Account})
	tr, err = Build(zero, "BTC", 5, 6)
	if err != nil {
		t.Fatal(err)
	}
	i, ok := tr.Find(x.Salt, x.Account)
	if !ok {
		t.Fatal("X not found at zero")
	}
	p, _ := tr.Prove(i)
	if err := p.Verify(); err != nil {
		t.Fatal(err)
	}
	if err := p.Check(x.Account, x.Balance); !errors.Is(err, ErrProofLeaf) {
		t.Fatalf("X's check of a proof at 0 = %v; want ErrProofLeaf", err)
	}
}
