package ledger

func hashKey(k acctKey) uint64 { return mix64(k.owner ^ mix64(k.rest+0x632be59bd9b4e019)) }

func hashOwner(id OwnerID) uint64 { return mix64(uint64(id) + 0x5851f42d4c957f2d) }

func hashID(id ID) uint64 { return mix64(id.Lo ^ mix64(id.Hi+0x9e3779b97f4a7c15)) }

// accountIndex returns the position of the account with key k: the
// table's probe written out, comparing the key's fields in place (every
// transfer looks up two accounts).
func (l *Ledger) accountIndex(k acctKey) (uint32, bool) {
	x := &l.accountIdx
	if x.n == 0 {
		return 0, false
	}
	h := hashKey(k)
	tag := h >> 32
	for i := x.home(h); ; i = (i + 1) & x.mask {
		s := x.slots[i]
		if s == 0 {
			return 0, false
		}
		if s>>32 == tag {
			p := uint32(s) - 1
			if a := &l.accounts[p].Key; uint64(a.Owner) == k.owner && uint64(a.Asset)<<8|uint64(a.Kind) == k.rest {
				return p, true
			}
		}
	}
}

// addAccountIndex indexes the account at position p.
func (l *Ledger) addAccountIndex(p uint32) {
	l.accountIdx.add(hashKey(l.accounts[p].Key.packed()), p)
}

// AvailableOf returns what the account named by key may still give
// (Account.Available), and false if there is no such account: Account
// without copying the record, for the trading path's checks.
func (l *Ledger) AvailableOf(key AccountKey) (Amount, bool) {
	i, ok := l.accountIndex(key.packed())
	if !ok {
		return Amount{}, false
	}
	return l.accounts[i].Available(), true
}
