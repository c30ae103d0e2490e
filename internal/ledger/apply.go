package ledger

// MaxBatch bounds the events of one command: a bigger batch is refused whole.
const MaxBatch = 8192

// undoLog records what a linked chain changed, so a failed chain can be
// rolled back. It is reused across batches to keep apply free of
// allocations.
type undoLog struct {
	accounts  []accountUndo
	pendings  []pendingUndo
	transfers int // len(l.transfers) when the chain began
	active    bool
}

type accountUndo struct {
	idx  uint32
	prev Account
}

type pendingUndo struct {
	idx    uint32
	state  TransferState
	posted Amount
}

func (u *undoLog) begin(transfers int) {
	u.accounts = u.accounts[:0]
	u.pendings = u.pendings[:0]
	u.transfers = transfers
	u.active = true
}

func (l *Ledger) saveAccount(idx uint32) {
	if l.undo.active {
		l.undo.accounts = append(l.undo.accounts, accountUndo{idx: idx, prev: l.accounts[idx]})
	}
}

// rollback undoes the open chain, newest change first.
func (l *Ledger) rollback() {
	u := &l.undo
	for i := len(u.accounts) - 1; i >= 0; i-- {
		l.accounts[u.accounts[i].idx] = u.accounts[i].prev
	}
	for i := len(u.pendings) - 1; i >= 0; i-- {
		p := u.pendings[i]
		r := l.transfers.at(int(p.idx))
		r.State, r.Posted = p.state, p.posted
	}
	for i := l.transfers.len() - 1; i >= u.transfers; i-- {
		l.removeTransferIndex(uint32(i))
	}
	l.transfers.truncate(u.transfers)
	u.active = false
}

// CreateAssets registers assets. Results list the events that did not
// succeed with OK.
func (l *Ledger) CreateAssets(assets []Asset, results []Result) []Result {
	if len(assets) > MaxBatch {
		return append(results, Result{Index: 0, Code: ErrBatchTooLarge})
	}
	for i := range assets {
		if c := l.createAsset(&assets[i]); c != OK {
			results = append(results, Result{Index: uint32(i), Code: c})
		}
	}
	return results
}

func validAssetCode(s string) bool {
	if len(s) == 0 || len(s) > MaxAssetCode {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func (l *Ledger) createAsset(a *Asset) Code {
	switch {
	case a.ID == 0:
		return ErrIDZero
	case !validAssetCode(a.Code):
		return ErrAssetCodeInvalid
	case a.Decimals > MaxDecimals:
		return ErrAssetDecimalsInvalid
	case a.Class != ClassChain && a.Class != ClassFiat:
		return ErrAssetClassInvalid
	}
	if i, ok := l.assetIndex[a.ID]; ok {
		if l.assets[i] == *a {
			return Exists
		}
		return ErrExistsWithDifferentFields
	}
	if _, ok := l.assetCodes[a.Code]; ok {
		return ErrAssetCodeTaken
	}
	l.assetIndex[a.ID] = int32(len(l.assets))
	l.assetCodes[a.Code] = a.ID
	l.assets = append(l.assets, *a)
	return OK
}

// CreateCustomers registers customers in the ledger.
func (l *Ledger) CreateCustomers(ids []OwnerID, results []Result) []Result {
	if len(ids) > MaxBatch {
		return append(results, Result{Index: 0, Code: ErrBatchTooLarge})
	}
	for i, id := range ids {
		c := OK
		switch {
		case id == 0:
			c = ErrIDZero
		case id >= OwnerHouseMin:
			c = ErrOwnerInvalid
		default:
			if l.HasCustomer(id) {
				c = Exists
			} else {
				l.customers = append(l.customers, id)
				l.customerIdx.add(uint32(len(l.customers)-1), l.customers)
			}
		}
		if c != OK {
			results = append(results, Result{Index: uint32(i), Code: c})
		}
	}
	return results
}

// CreateAccounts opens accounts. An account of a customer-owned kind
// (available, held, receivable) needs a registered customer as owner; the
// other kinds need a house owner.
func (l *Ledger) CreateAccounts(keys []AccountKey, results []Result) []Result {
	if len(keys) > MaxBatch {
		return append(results, Result{Index: 0, Code: ErrBatchTooLarge})
	}
	for i := range keys {
		if c := l.createAccount(keys[i]); c != OK {
			results = append(results, Result{Index: uint32(i), Code: c})
		}
	}
	return results
}

func (l *Ledger) createAccount(k AccountKey) Code {
	if k.Kind < KindAvailable || k.Kind > kindMax {
		return ErrKindInvalid
	}
	if _, ok := l.assetIndex[k.Asset]; !ok {
		return ErrAssetUnknown
	}
	if k.Kind.CustomerOwned() {
		if !l.HasCustomer(k.Owner) {
			return ErrCustomerUnknown
		}
	} else if k.Owner < OwnerHouseMin {
		return ErrOwnerInvalid
	}
	p := k.packed()
	if _, ok := l.accountIndex(p); ok {
		return Exists
	}
	l.accounts = append(l.accounts, Account{Key: k})
	l.addAccountIndex(uint32(len(l.accounts) - 1))
	return OK
}

// CreateTransfers applies a batch of transfers at time t (unix nanoseconds)
// and appends the results of the events that did not succeed with OK.
func (l *Ledger) CreateTransfers(ts []Transfer, t int64, results []Result) []Result {
	if len(ts) > MaxBatch {
		return append(results, Result{Index: 0, Code: ErrBatchTooLarge})
	}
	chainStart := -1
	chainFailed := Code(OK)
	firstResult := len(results)
	for i := range ts {
		tr := &ts[i]
		linked := tr.Flags&FlagLinked != 0
		if chainStart < 0 && linked {
			chainStart = i
			chainFailed = OK
			l.undo.begin(l.transfers.len())
		}
		var c Code
		l.hints.i = i
		if chainStart >= 0 && chainFailed != OK {
			c = ErrLinkedEventFailed
		} else if linked && i == len(ts)-1 {
			c = ErrLinkedEventChainOpen
		} else {
			c = l.createTransfer(tr, t)
		}
		if chainStart >= 0 && c != OK && c != ErrLinkedEventFailed && chainFailed == OK {
			// The chain fails: undo what it did and mark the events
			// before this one.
			chainFailed = c
			l.rollback()
			results = results[:firstResultOf(results, firstResult, uint32(chainStart))]
			for j := chainStart; j < i; j++ {
				results = append(results, Result{Index: uint32(j), Code: ErrLinkedEventFailed})
			}
		}
		if c != OK {
			results = append(results, Result{Index: uint32(i), Code: c})
		}
		if chainStart >= 0 && !linked {
			chainStart = -1
			l.undo.active = false
		}
	}
	return results
}

// firstResultOf returns the position in results, at or after from, of the
// first result whose index is at least idx.
func firstResultOf(results []Result, from int, idx uint32) int {
	for i := from; i < len(results); i++ {
		if results[i].Index >= idx {
			return i
		}
	}
	return len(results)
}

func (l *Ledger) createTransfer(t *Transfer, now int64) Code {
	if t.ID.IsZero() {
		return ErrIDZero
	}
	if t.Flags&^flagsKnown != 0 {
		return ErrFlagsInvalid
	}
	if i, ok := l.transferIndex(t.ID); ok {
		if l.transfers.at(int(i)).Transfer.sameFields(t) {
			return Exists
		}
		return ErrExistsWithDifferentFields
	}
	switch t.Flags &^ FlagLinked {
	case 0, FlagPending:
		return l.createPlain(t, now)
	case FlagPostPending, FlagVoidPending:
		return l.resolvePending(t, now)
	}
	return ErrFlagsInvalid
}

// sameFields compares two transfers, ignoring nothing: a retry must match.
func (t *Transfer) sameFields(u *Transfer) bool { return *t == *u }

func (l *Ledger) createPlain(t *Transfer, now int64) Code {
	if !t.PendingID.IsZero() {
		return ErrFlagsInvalid
	}
	di, dok, ci, cok := l.transferAccounts(t)
	if !dok {
		return ErrDebitAccountUnknown
	}
	if !cok {
		return ErrCreditAccountUnknown
	}
	if di == ci {
		return ErrAccountsSame
	}
	if t.Debit.Asset != t.Credit.Asset {
		return ErrAssetMismatch
	}
	if t.Amount.IsZero() {
		return ErrAmountZero
	}
	d, c := &l.accounts[di], &l.accounts[ci]
	pending := t.Flags&FlagPending != 0
	// Compute the new figures first; change nothing until all checks pass.
	var dNew, cNew Amount
	var o1, o2 bool
	if pending {
		dNew, o1 = d.DebitsPending.Add(t.Amount)
		cNew, o2 = c.CreditsPending.Add(t.Amount)
	} else {
		dNew, o1 = d.DebitsPosted.Add(t.Amount)
		cNew, o2 = c.CreditsPosted.Add(t.Amount)
	}
	if o1 || o2 {
		return ErrOverflow
	}
	if d.Key.Kind.creditNormal() {
		// debits posted + debits pending must stay within credits posted.
		var total Amount
		var o bool
		if pending {
			total, o = dNew.Add(d.DebitsPosted)
		} else {
			total, o = dNew.Add(d.DebitsPending)
		}
		if o || total.Cmp(d.CreditsPosted) > 0 {
			return ErrExceedsCredits
		}
	}
	if c.Key.Kind.debitNormal() {
		var total Amount
		var o bool
		if pending {
			total, o = cNew.Add(c.CreditsPosted)
		} else {
			total, o = cNew.Add(c.CreditsPending)
		}
		if o || total.Cmp(c.DebitsPosted) > 0 {
			return ErrExceedsDebits
		}
	}
	l.saveAccount(di)
	l.saveAccount(ci)
	state := StatePosted
	if pending {
		d.DebitsPending, c.CreditsPending = dNew, cNew
		state = StatePending
	} else {
		d.DebitsPosted, c.CreditsPosted = dNew, cNew
		l.noteChanged(di, ci)
	}
	l.appendTransfer(t, now, state)
	return OK
}

func (l *Ledger) appendTransfer(t *Transfer, now int64, state TransferState) {
	r := l.transfers.extend()
	r.Transfer, r.Time, r.State, r.Posted = *t, now, state, Amount{}
	l.indexTransfer(uint32(l.transfers.len()-1), t.ID)
}

func (l *Ledger) resolvePending(t *Transfer, now int64) Code {
	pi, ok := l.transferIndex(t.PendingID)
	if !ok {
		return ErrPendingUnknown
	}
	p := l.transfers.at(int(pi))
	switch p.State {
	case StatePending:
	case StatePendingPosted:
		return ErrPendingAlreadyPosted
	case StatePendingVoided:
		return ErrPendingAlreadyVoided
	default:
		return ErrPendingNotPending
	}
	var zero AccountKey
	if (t.Debit != zero && t.Debit != p.Debit) || (t.Credit != zero && t.Credit != p.Credit) {
		return ErrPendingAccountsDiffer
	}
	post := t.Flags&FlagPostPending != 0
	amount := t.Amount
	if post {
		if amount.IsZero() {
			amount = p.Amount
		}
		if amount.Cmp(p.Amount) > 0 {
			return ErrPostExceedsPending
		}
	} else if !amount.IsZero() && amount != p.Amount {
		return ErrPostExceedsPending
	}
	di, _ := l.accountIndex(p.Debit.packed())
	ci, _ := l.accountIndex(p.Credit.packed())
	d, c := &l.accounts[di], &l.accounts[ci]
	var dPosted, cPosted Amount
	if post {
		var o1, o2 bool
		dPosted, o1 = d.DebitsPosted.Add(amount)
		cPosted, o2 = c.CreditsPosted.Add(amount)
		if o1 || o2 {
			return ErrOverflow
		}
	}
	l.saveAccount(di)
	l.saveAccount(ci)
	if l.undo.active {
		l.undo.pendings = append(l.undo.pendings, pendingUndo{idx: pi, state: p.State, posted: p.Posted})
	}
	// The whole pending amount leaves pending; what is posted moves to
	// posted, the rest is released.
	d.DebitsPending, _ = d.DebitsPending.Sub(p.Amount)
	c.CreditsPending, _ = c.CreditsPending.Sub(p.Amount)
	if post {
		d.DebitsPosted, c.CreditsPosted = dPosted, cPosted
		l.noteChanged(di, ci)
		p.State = StatePendingPosted
		p.Posted = amount
	} else {
		p.State = StatePendingVoided
	}
	// The record keeps the submitted fields so a retry compares equal; the
	// accounts and amount it resolved are those of the pending transfer.
	l.appendTransfer(t, now, StatePosted)
	return OK
}
