package custody

import (
	"fmt"
	"slices"
	"sort"

	"kinko/internal/ledger"
)

// DepthFunc returns the confirmations a deposit of amount base units of
// asset needs before it is final (at least 1): the withdrawal rules'
// finality tiers, which the core passes in. An amount of 2^64 or more (wei)
// is passed as 2^64-1: the highest tier.
type DepthFunc func(asset ledger.AssetID, amount ledger.Amount) int32

// custAsset names one customer's holding of one asset.
type custAsset struct {
	cust  ledger.OwnerID
	asset ledger.AssetID
}

// finality tracks the credited deposits that are not yet final, so that a
// withdrawal request reads what it needs from the customer's own few
// deposits and a checkpoint finalizes from the front of one queue, never
// scanning every deposit. Its steady state allocates nothing per deposit:
// the per-customer lists are linked through arrays beside the deposits.
//
// INVARIANT: a deposit is in queue[its asset] and in its customer's list
// exactly when it is credited (to available or held for review) and not
// Final; queue[a] is sorted by (FinalAt, index), a customer's list by
// index; sum[c, a] is the total of those of c and a credited to available.
type finality struct {
	queue map[ledger.AssetID][]int
	// byCust holds each customer's list: its first and last deposit;
	// next and prev link the list, by deposit index (-1: none).
	byCust     map[ledger.OwnerID]span
	next, prev []int32
	sum        map[custAsset]ledger.Amount
}

// span is the first and last deposit of a customer's list.
type span struct{ first, last int32 }

func newFinality() finality {
	return finality{queue: map[ledger.AssetID][]int{}, byCust: map[ledger.OwnerID]span{}, sum: map[custAsset]ledger.Amount{}}
}

// tracked reports whether a deposit belongs in the finality structures.
func tracked(d *Deposit) bool {
	return !d.Final && (d.State == DepositCredited || d.State == DepositReview)
}

// finalAt returns the height at which a deposit at height with depth
// confirmations needed is final.
func finalAt(height, depth int32) int32 {
	depth = max(depth, 1)
	if height > (1<<31-1)-depth {
		return 1<<31 - 1
	}
	return height + depth - 1
}

// less orders a queue: by FinalAt, then by credit order.
func (s *State) less(i, j int) bool {
	a, b := s.deposits[i].FinalAt, s.deposits[j].FinalAt
	if a != b {
		return a < b
	}
	return i < j
}

// link appends deposit i to its customer's list, keeping credit order
// (deposits are tracked as they are credited, so i is almost always the
// last).
func (s *State) link(i int) {
	f := &s.fin
	for len(f.next) < len(s.deposits) {
		f.next, f.prev = append(f.next, -1), append(f.prev, -1)
	}
	c := s.deposits[i].Customer
	sp, ok := f.byCust[c]
	if !ok {
		f.next[i], f.prev[i] = -1, -1
		f.byCust[c] = span{int32(i), int32(i)}
		return
	}
	after := sp.last // the deposit i goes after
	for after >= 0 && int(after) > i {
		after = f.prev[after]
	}
	f.prev[i] = after
	if after < 0 {
		f.next[i] = sp.first
		f.prev[sp.first] = int32(i)
		sp.first = int32(i)
	} else {
		f.next[i] = f.next[after]
		if f.next[after] >= 0 {
			f.prev[f.next[after]] = int32(i)
		} else {
			sp.last = int32(i)
		}
		f.next[after] = int32(i)
	}
	f.byCust[c] = sp
}

// unlink takes deposit i out of its customer's list.
func (s *State) unlink(i int) {
	f := &s.fin
	c := s.deposits[i].Customer
	sp := f.byCust[c]
	n, p := f.next[i], f.prev[i]
	if p >= 0 {
		f.next[p] = n
	} else {
		sp.first = n
	}
	if n >= 0 {
		f.prev[n] = p
	} else {
		sp.last = p
	}
	f.next[i], f.prev[i] = -1, -1
	if sp.first < 0 {
		delete(f.byCust, c)
	} else {
		f.byCust[c] = sp
	}
}

// custDeposits calls fn for each deposit in the customer's list, in credit
// order.
func (s *State) custDeposits(c ledger.OwnerID, fn func(i int)) {
	sp, ok := s.fin.byCust[c]
	if !ok {
		return
	}
	for i := sp.first; i >= 0; i = s.fin.next[i] {
		fn(int(i))
	}
}

// track adds deposit i, credited and not final, to the structures.
func (s *State) track(i int) {
	d := &s.deposits[i]
	asset := s.DepositAsset(d)
	q := s.fin.queue[asset]
	at := sort.Search(len(q), func(k int) bool { return !s.less(q[k], i) })
	s.fin.queue[asset] = slices.Insert(q, at, i)
	s.link(i)
	if d.State == DepositCredited {
		s.addSum(d, asset)
	}
}

// addSum counts a deposit credited to available in its customer's sum.
func (s *State) addSum(d *Deposit, asset ledger.AssetID) {
	k := custAsset{d.Customer, asset}
	v, _ := s.fin.sum[k].Add(d.Value()) // the ledger's balances bound it below 2^128
	s.fin.sum[k] = v
}

// untrack removes deposit i from the structures, before its state or Final
// changes; removeQueue says whether to take it out of its queue (a
// finalizing pass rebuilds the queue itself).
func (s *State) untrack(i int, removeQueue bool) {
	d := &s.deposits[i]
	asset := s.DepositAsset(d)
	if removeQueue {
		q := s.fin.queue[asset]
		at := sort.Search(len(q), func(k int) bool { return !s.less(q[k], i) })
		if at < len(q) && q[at] == i {
			s.fin.queue[asset] = slices.Delete(q, at, at+1)
		}
	}
	s.unlink(i)
	if d.State == DepositCredited {
		s.unsum(d, asset)
	}
}

// unsum takes a deposit credited to available out of its customer's sum.
func (s *State) unsum(d *Deposit, asset ledger.AssetID) {
	k := custAsset{d.Customer, asset}
	v, _ := s.fin.sum[k].Sub(d.Value())
	if s.fin.sum[k] = v; v.IsZero() {
		delete(s.fin.sum, k)
	}
}

// released counts a deposit released from review, not yet final, as
// available; it stays where it was in its queue and list.
func (s *State) released(i int) {
	d := &s.deposits[i]
	s.addSum(d, s.DepositAsset(d))
}

// rebuildFinality rebuilds the structures from the deposits, after a
// decode.
func (s *State) rebuildFinality() {
	s.fin = newFinality()
	for i := range s.deposits {
		d := &s.deposits[i]
		if !tracked(d) {
			continue
		}
		asset := s.DepositAsset(d)
		s.fin.queue[asset] = append(s.fin.queue[asset], i)
		s.link(i)
		if d.State == DepositCredited {
			s.addSum(d, asset)
		}
	}
	for _, q := range s.fin.queue {
		sort.Slice(q, func(a, b int) bool { return s.less(q[a], q[b]) })
	}
}

// Finalize marks final the deposits of asset whose FinalAt the chain tip
// has reached, as the watcher journaled it: tip is the checkpoint's height
// and hashes its last block hashes, the tip's last. A deposit whose height
// the hashes cover but whose block is not the one there is left as it is:
// its block left the best chain and its reversal is due, not its finality.
// It returns how many became final.
func (s *State) Finalize(asset ledger.AssetID, tip int32, hashes [][32]byte) int {
	q := s.fin.queue[asset]
	var stale []int
	n, k := 0, 0
	for ; k < len(q) && s.deposits[q[k]].FinalAt <= tip; k++ {
		d := &s.deposits[q[k]]
		if back := int(tip - d.Height); back >= 0 && back < len(hashes) && hashes[len(hashes)-1-back] != d.BlockHash {
			stale = append(stale, q[k])
			continue
		}
		s.untrack(q[k], false)
		d.Final = true
		n++
	}
	if k == 0 {
		return 0
	}
	// The stale ones stay in front, in order: their FinalAt is at most
	// tip, the rest's above it.
	start := k - len(stale)
	copy(q[start:], stale)
	s.fin.queue[asset] = q[start:]
	return n
}

// Refinalize recomputes the height at which each deposit not yet final
// becomes final, after the finality tiers changed. Deposits already final
// stay final. The caller then finalizes each asset at its tip.
func (s *State) Refinalize(depth DepthFunc) {
	for asset, q := range s.fin.queue {
		for _, i := range q {
			d := &s.deposits[i]
			d.FinalAt = finalAt(d.Height, depth(asset, d.Value()))
		}
		sort.Slice(q, func(a, b int) bool { return s.less(q[a], q[b]) })
	}
}

// Unfinal is one asset's deposits of a customer credited to their
// available balance and not yet final.
type Unfinal struct {
	Asset ledger.AssetID
	// Amount is their total, all 128 bits of it (withdrawals are 128-bit:
	// a total read as less would let the difference leave before it is
	// final).
	Amount ledger.Amount
	Count  int
	// First is the one that becomes final first.
	First Deposit
}

// Unfinal returns the customer's deposits credited to available and not yet
// final, by asset in ascending order. It reads only the customer's own
// deposits that are not final.
func (s *State) Unfinal(customer ledger.OwnerID) []Unfinal {
	var out []Unfinal
	s.custDeposits(customer, func(i int) {
		d := &s.deposits[i]
		if d.State != DepositCredited {
			return // held for review: not available, nothing to withdraw
		}
		asset := s.DepositAsset(d)
		j := slices.IndexFunc(out, func(u Unfinal) bool { return u.Asset == asset })
		if j < 0 {
			out = append(out, Unfinal{Asset: asset, Amount: s.fin.sum[custAsset{customer, asset}], First: *d})
			j = len(out) - 1
		}
		u := &out[j]
		u.Count++
		if d.FinalAt < u.First.FinalAt {
			u.First = *d
		}
	})
	sort.Slice(out, func(a, b int) bool { return out[a].Asset < out[b].Asset })
	return out
}

// UnfinalAmount returns the total of the customer's deposits of asset
// credited to available and not yet final.
func (s *State) UnfinalAmount(customer ledger.OwnerID, asset ledger.AssetID) ledger.Amount {
	return s.fin.sum[custAsset{customer, asset}]
}

// PendingFinality returns how many credited deposits of asset are not yet
// final.
func (s *State) PendingFinality(asset ledger.AssetID) int { return len(s.fin.queue[asset]) }

// CheckInvariants checks the finality structures against the deposits
// (see finality's INVARIANT), at the cost of a pass over every deposit.
func (s *State) CheckInvariants() error {
	want := s.copyForCheck()
	want.rebuildFinality()
	for a, q := range s.fin.queue {
		if !slices.Equal(q, want.fin.queue[a]) {
			return fmt.Errorf("custody: finality queue of asset %d is %v; the deposits give %v", a, q, want.fin.queue[a])
		}
	}
	for a, q := range want.fin.queue {
		if !slices.Equal(q, s.fin.queue[a]) {
			return fmt.Errorf("custody: finality queue of asset %d is %v; the deposits give %v", a, s.fin.queue[a], q)
		}
	}
	if len(want.fin.byCust) != len(s.fin.byCust) || len(want.fin.sum) != len(s.fin.sum) {
		return fmt.Errorf("custody: finality: %d customers, %d sums; the deposits give %d, %d",
			len(s.fin.byCust), len(s.fin.sum), len(want.fin.byCust), len(want.fin.sum))
	}
	for c := range want.fin.byCust {
		var got, exp []int
		s.custDeposits(c, func(i int) { got = append(got, i) })
		want.custDeposits(c, func(i int) { exp = append(exp, i) })
		if !slices.Equal(got, exp) {
			return fmt.Errorf("custody: deposits not final of customer %d are %v; the deposits give %v", c, got, exp)
		}
		// Walked backwards too: the links agree both ways.
		var back []int
		for i := s.fin.byCust[c].last; i >= 0; i = s.fin.prev[i] {
			back = append(back, int(i))
		}
		slices.Reverse(back)
		if !slices.Equal(back, exp) {
			return fmt.Errorf("custody: deposits not final of customer %d, walked back, are %v; the deposits give %v", c, back, exp)
		}
	}
	for k, v := range want.fin.sum {
		if s.fin.sum[k] != v {
			return fmt.Errorf("custody: not final of customer %d asset %d is %d; the deposits give %d", k.cust, k.asset, s.fin.sum[k], v)
		}
	}
	return nil
}

// copyForCheck returns a state sharing the deposits and wallets, for
// rebuilding the derived structures beside the live ones.
func (s *State) copyForCheck() *State {
	return &State{wallets: s.wallets, walletIdx: s.walletIdx, deposits: s.deposits}
}
