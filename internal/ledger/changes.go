package ledger

// Changed customer accounts: the balance-history index (internal/core's
// balance log) is written outside the deterministic apply, after each
// entry, from the accounts whose posted balance the entry changed. The
// ledger only notes their positions, in a slice it reuses: no allocation
// on the hot path once the slice has grown, and nothing when tracking is
// off. Only customers' liability accounts (available and held) are noted:
// they are what holdings read.

// BalanceChange is a customer account's posted balance after an entry.
type BalanceChange struct {
	Key     AccountKey
	Balance Amount
}

// TrackChanges turns the noting of changed customer accounts on or off
// (off drops what was noted). It is not part of the state: a snapshot or a
// decoded ledger starts with it off.
func (l *Ledger) TrackChanges(on bool) {
	l.track = on
	l.changed = l.changed[:0]
}

// noteChanged notes the accounts at positions d and c after their posted
// balances changed.
func (l *Ledger) noteChanged(d, c uint32) {
	if !l.track {
		return
	}
	if l.accounts[d].Key.Kind.IsCustomer() {
		l.changed = append(l.changed, d)
	}
	if l.accounts[c].Key.Kind.IsCustomer() {
		l.changed = append(l.changed, c)
	}
}

// DrainChanges appends to dst the posted balance of each customer account
// (available and held) whose posted balance changed since the last drain,
// and forgets them. An account may appear more than once (each time with
// its balance now), and an account whose change a failed linked chain
// rolled back appears with its balance as it was. The order is the order
// of the changes.
func (l *Ledger) DrainChanges(dst []BalanceChange) []BalanceChange {
	last := ^uint32(0)
	for _, p := range l.changed {
		if p == last {
			continue
		}
		last = p
		a := &l.accounts[p]
		dst = append(dst, BalanceChange{Key: a.Key, Balance: a.Balance()})
	}
	l.changed = l.changed[:0]
	return dst
}

// DrainChangesTo is DrainChanges calling fn with each account's key and
// posted balance, in the same order, without a slice between.
func (l *Ledger) DrainChangesTo(fn func(k *AccountKey, balance Amount)) {
	last := ^uint32(0)
	for _, p := range l.changed {
		if p == last {
			continue
		}
		last = p
		a := &l.accounts[p]
		fn(&a.Key, a.Balance())
	}
	l.changed = l.changed[:0]
}

// ChangesPending is how many changed accounts are noted (an account may
// count more than once): an upper bound on what a drain yields.
func (l *Ledger) ChangesPending() int { return len(l.changed) }

// AssetCount is the number of assets registered.
func (l *Ledger) AssetCount() int { return len(l.assets) }

// AssetAt is the i-th asset registered, in the order of registration.
func (l *Ledger) AssetAt(i int) Asset { return l.assets[i] }
