package ledger

// AccountHint is where an account sits in the ledger, as AccountHint
// returned it (0: not known). A caller that names the same account again
// and again (an order's held account: in its hold, each of its fills and
// its release) keeps the hint and passes it with its transfers, and the
// ledger skips the hash look-up when the hint names the account. A hint
// never changes a result: one that does not name the account (stale,
// wrong, or from another ledger) is ignored and the account looked up.
// Accounts are only ever appended, so a hint stays right once it is.
type AccountHint uint32

// TransferHint is the hints of a transfer's debit and credit accounts.
type TransferHint struct{ Debit, Credit AccountHint }

// batchHints are the hints of the batch CreateTransfersHinted applies:
// at[i] is the i-th transfer's, i the transfer being applied.
type batchHints struct {
	at []TransferHint
	i  int
}

// AccountHint returns the hint of the account named by key (0 if there
// is none).
func (l *Ledger) AccountHint(key AccountKey) AccountHint {
	p, ok := l.accountIndex(key.packed())
	if !ok {
		return 0
	}
	return AccountHint(p + 1)
}

// hinted returns the position of the account named by k: h's if h names
// it, else the table's.
func (l *Ledger) hinted(k AccountKey, h AccountHint) (uint32, bool) {
	if p := uint32(h) - 1; uint(p) < uint(len(l.accounts)) && l.accounts[p].Key == k { // 0 wraps past the end
		return p, true
	}
	return l.accountIndex(k.packed())
}

// AvailableAt is AvailableOf given the account's hint.
func (l *Ledger) AvailableAt(key AccountKey, h AccountHint) (Amount, bool) {
	i, ok := l.hinted(key, h)
	if !ok {
		return Amount{}, false
	}
	return l.accounts[i].Available(), true
}

// CreateTransfersHinted is CreateTransfers given a hint for each transfer
// (hints[i] is ts[i]'s): the same results, the same state, fewer look-ups.
// Hints of another length than ts are not used.
func (l *Ledger) CreateTransfersHinted(ts []Transfer, hints []TransferHint, t int64, results []Result) []Result {
	if len(hints) != len(ts) {
		return l.CreateTransfers(ts, t, results)
	}
	l.hints.at = hints
	results = l.CreateTransfers(ts, t, results)
	l.hints.at = nil
	return results
}

// transferAccounts returns the positions of t's debit and credit
// accounts, by the batch's hints if it has them (the check written out:
// this is every transfer's path).
func (l *Ledger) transferAccounts(t *Transfer) (di uint32, dok bool, ci uint32, cok bool) {
	var h TransferHint
	if b := &l.hints; b.i < len(b.at) {
		h = b.at[b.i]
	}
	if p := uint32(h.Debit) - 1; uint(p) < uint(len(l.accounts)) && l.accounts[p].Key == t.Debit {
		di, dok = p, true
	} else {
		di, dok = l.accountIndex(t.Debit.packed())
	}
	if p := uint32(h.Credit) - 1; uint(p) < uint(len(l.accounts)) && l.accounts[p].Key == t.Credit {
		ci, cok = p, true
	} else {
		ci, cok = l.accountIndex(t.Credit.packed())
	}
	return
}
