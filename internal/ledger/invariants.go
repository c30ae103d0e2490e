package ledger

import "fmt"

// sum192 accumulates amounts beyond 128 bits, for checks over all accounts.
type sum192 struct {
	a     Amount
	carry uint64
}

func (s *sum192) add(v Amount) {
	var o bool
	s.a, o = s.a.Add(v)
	if o {
		s.carry++
	}
}

// CheckInvariants checks the ledger's invariants (see the package comment)
// over the whole state and returns the first one broken. It costs a pass over
// all accounts and transfers: tests call it after every apply, and so does the
// core when built with the invariants tag or started with the flag.
func (l *Ledger) CheckInvariants() error {
	type sums struct{ dPost, cPost, dPend, cPend sum192 }
	perAsset := make(map[AssetID]*sums, len(l.assets))
	for _, a := range l.assets {
		perAsset[a.ID] = &sums{}
	}
	for i := range l.accounts {
		a := &l.accounts[i]
		s, ok := perAsset[a.Key.Asset]
		if !ok {
			return fmt.Errorf("account %v: asset unknown", a.Key)
		}
		s.dPost.add(a.DebitsPosted)
		s.cPost.add(a.CreditsPosted)
		s.dPend.add(a.DebitsPending)
		s.cPend.add(a.CreditsPending)
		if a.Key.Kind.creditNormal() {
			out, o := a.DebitsPosted.Add(a.DebitsPending)
			if o || out.Cmp(a.CreditsPosted) > 0 {
				return fmt.Errorf("account %v: debits %v+%v exceed credits %v", a.Key, a.DebitsPosted, a.DebitsPending, a.CreditsPosted)
			}
		}
		if a.Key.Kind.debitNormal() {
			out, o := a.CreditsPosted.Add(a.CreditsPending)
			if o || out.Cmp(a.DebitsPosted) > 0 {
				return fmt.Errorf("%s account %v: credits %v+%v exceed debits %v", a.Key.Kind, a.Key, a.CreditsPosted, a.CreditsPending, a.DebitsPosted)
			}
		}
	}
	for _, a := range l.assets {
		s := perAsset[a.ID]
		if s.dPost != s.cPost {
			return fmt.Errorf("asset %s: posted debits %v != posted credits %v", a.Code, s.dPost.a, s.cPost.a)
		}
		if s.dPend != s.cPend {
			return fmt.Errorf("asset %s: pending debits %v != pending credits %v", a.Code, s.dPend.a, s.cPend.a)
		}
	}
	// Pending amounts on accounts equal the open pending transfers.
	pend := make(map[uint32]*[2]Amount)
	for i := 0; i < l.transfers.len(); i++ {
		t := l.transfers.at(i)
		idx, ok := l.transferIndex(t.ID)
		if !ok || idx != uint32(i) {
			return fmt.Errorf("transfer %v: index broken", t.ID)
		}
		switch t.State {
		case StatePending:
			di, _ := l.accountIndex(t.Debit.packed())
			ci, _ := l.accountIndex(t.Credit.packed())
			for _, x := range [2]struct {
				idx  uint32
				side int
			}{{di, 0}, {ci, 1}} {
				p := pend[x.idx]
				if p == nil {
					p = new([2]Amount)
					pend[x.idx] = p
				}
				p[x.side], _ = p[x.side].Add(t.Amount)
			}
		case StatePendingPosted:
			if t.Posted.IsZero() || t.Posted.Cmp(t.Amount) > 0 {
				return fmt.Errorf("transfer %v: posted %v of pending %v", t.ID, t.Posted, t.Amount)
			}
		case StatePosted, StatePendingVoided:
		default:
			return fmt.Errorf("transfer %v: state %d", t.ID, t.State)
		}
	}
	if n := l.transferIdx.len(); n != l.transfers.len() {
		return fmt.Errorf("transfer index has %d entries for %d transfers", n, l.transfers.len())
	}
	for i := range l.accounts {
		a := &l.accounts[i]
		var want [2]Amount
		if p := pend[uint32(i)]; p != nil {
			want = *p
		}
		if a.DebitsPending != want[0] || a.CreditsPending != want[1] {
			return fmt.Errorf("account %v: pending %v/%v, open pending transfers %v/%v", a.Key, a.DebitsPending, a.CreditsPending, want[0], want[1])
		}
	}
	return nil
}
