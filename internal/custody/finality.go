package custody

import (
	"fmt"
	"slices"
	"sort"

	"kinko/internal/ledger"
)

// DepthFunc returns the confirmations a deposit of amount base units of
// asset needs before it is final (at least 1): the withdrawal rules'
// finality tiers, which the core passes in.
type DepthFunc func(asset ledger.AssetID, amount uint64) int32

// custAsset names one customer's holding of one asset.
type custAsset struct {
	cust  ledger.OwnerID
	asset ledger.AssetID
}

// finality tracks the credited deposits that are not yet final, so that a
// withdrawal request reads what it needs from the customer's own few
// deposits and a checkpoint finalizes from the front of one queue, never
// scanning every deposit.
//
// INVARIANT: a deposit is in queue[its asset] and in byCust[its customer]
// exactly when it is credited (to available or held for review) and not
// Final; queue[a] is sorted by (FinalAt, index), byCust[c] by index; sum[c,
// a] is the total of those of c and a credited to available.
type finality struct {
	queue  map[ledger.AssetID][]int
	byCust map[ledger.OwnerID][]int
	sum    map[custAsset]uint64
}

func newFinality() finality {
	return finality{queue: map[ledger.AssetID][]int{}, byCust: map[ledger.OwnerID][]int{}, sum: map[custAsset]uint64{}}
}

// depositAsset returns the asset of a deposit, by its wallet.
func (s *State) depositAsset(d *Deposit) ledger.AssetID {
	return s.wallets[s.walletIdx[d.Wallet]].Asset
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

// track adds deposit i, credited and not final, to the structures.
func (s *State) track(i int) {
	d := &s.deposits[i]
	asset := s.depositAsset(d)
	q := s.fin.queue[asset]
	at := sort.Search(len(q), func(k int) bool { return !s.less(q[k], i) })
	s.fin.queue[asset] = slices.Insert(q, at, i)
	l := s.fin.byCust[d.Customer]
	at, _ = slices.BinarySearch(l, i) // a deposit released from review comes back in credit order
	s.fin.byCust[d.Customer] = slices.Insert(l, at, i)
	if d.State == DepositCredited {
		s.fin.sum[custAsset{d.Customer, asset}] += d.Amount
	}
}

// untrack removes deposit i from the structures, before its state or Final
// changes; removeQueue says whether to take it out of its queue (a
// finalizing pass rebuilds the queue itself).
func (s *State) untrack(i int, removeQueue bool) {
	d := &s.deposits[i]
	asset := s.depositAsset(d)
	if removeQueue {
		q := s.fin.queue[asset]
		at := sort.Search(len(q), func(k int) bool { return !s.less(q[k], i) })
		if at < len(q) && q[at] == i {
			s.fin.queue[asset] = slices.Delete(q, at, at+1)
		}
		if len(s.fin.queue[asset]) == 0 {
			delete(s.fin.queue, asset)
		}
	}
	if l := s.fin.byCust[d.Customer]; len(l) > 0 {
		if at, ok := slices.BinarySearch(l, i); ok {
			l = slices.Delete(l, at, at+1)
		}
		if len(l) == 0 {
			delete(s.fin.byCust, d.Customer)
		} else {
			s.fin.byCust[d.Customer] = l
		}
	}
	if d.State == DepositCredited {
		k := custAsset{d.Customer, asset}
		if s.fin.sum[k] -= d.Amount; s.fin.sum[k] == 0 {
			delete(s.fin.sum, k)
		}
	}
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
		asset := s.depositAsset(d)
		s.fin.queue[asset] = append(s.fin.queue[asset], i)
		s.fin.byCust[d.Customer] = append(s.fin.byCust[d.Customer], i)
		if d.State == DepositCredited {
			s.fin.sum[custAsset{d.Customer, asset}] += d.Amount
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
	// The stale ones stay in front: their FinalAt is at most tip, the
	// rest's above it.
	rest := append(stale, q[k:]...)
	if len(rest) == 0 {
		delete(s.fin.queue, asset)
	} else {
		s.fin.queue[asset] = rest
	}
	return n
}

// Refinalize recomputes the height at which each deposit not yet final
// becomes final, after the finality tiers changed. Deposits already final
// stay final. The caller then finalizes each asset at its tip.
func (s *State) Refinalize(depth DepthFunc) {
	for asset, q := range s.fin.queue {
		for _, i := range q {
			d := &s.deposits[i]
			d.FinalAt = finalAt(d.Height, depth(asset, d.Amount))
		}
		sort.Slice(q, func(a, b int) bool { return s.less(q[a], q[b]) })
	}
}

// Unfinal is one asset's deposits of a customer credited to their
// available balance and not yet final.
type Unfinal struct {
	Asset  ledger.AssetID
	Amount uint64
	Count  int
	// First is the one that becomes final first.
	First Deposit
}

// Unfinal returns the customer's deposits credited to available and not yet
// final, by asset in ascending order. It reads only the customer's own
// deposits that are not final.
func (s *State) Unfinal(customer ledger.OwnerID) []Unfinal {
	var out []Unfinal
	for _, i := range s.fin.byCust[customer] {
		d := &s.deposits[i]
		if d.State != DepositCredited {
			continue // held for review: not available, nothing to withdraw
		}
		asset := s.depositAsset(d)
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
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Asset < out[b].Asset })
	return out
}

// UnfinalAmount returns the total of the customer's deposits of asset
// credited to available and not yet final.
func (s *State) UnfinalAmount(customer ledger.OwnerID, asset ledger.AssetID) uint64 {
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
	if len(want.fin.queue) != len(s.fin.queue) || len(want.fin.byCust) != len(s.fin.byCust) || len(want.fin.sum) != len(s.fin.sum) {
		return fmt.Errorf("custody: finality: %d queues, %d customers, %d sums; the deposits give %d, %d, %d",
			len(s.fin.queue), len(s.fin.byCust), len(s.fin.sum), len(want.fin.queue), len(want.fin.byCust), len(want.fin.sum))
	}
	for a, q := range want.fin.queue {
		if !slices.Equal(q, s.fin.queue[a]) {
			return fmt.Errorf("custody: finality queue of asset %d is %v; the deposits give %v", a, s.fin.queue[a], q)
		}
	}
	for c, l := range want.fin.byCust {
		if !slices.Equal(l, s.fin.byCust[c]) {
			return fmt.Errorf("custody: deposits not final of customer %d are %v; the deposits give %v", c, s.fin.byCust[c], l)
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
