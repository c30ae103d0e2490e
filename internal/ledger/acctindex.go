package ledger

func hashKey(k acctKey) uint64 { return mix64(k.owner ^ mix64(k.rest+0x632be59bd9b4e019)) }

func hashOwner(id OwnerID) uint64 { return mix64(uint64(id) + 0x5851f42d4c957f2d) }

func hashID(id ID) uint64 { return mix64(id.Lo ^ mix64(id.Hi+0x9e3779b97f4a7c15)) }

// accountIndex returns the position of the account with key k.
func (l *Ledger) accountIndex(k acctKey) (uint32, bool) {
	return l.accountIdx.find(hashKey(k), func(p uint32) bool { return l.accounts[p].Key.packed() == k })
}

// addAccountIndex indexes the account at position p.
func (l *Ledger) addAccountIndex(p uint32) {
	l.accountIdx.add(hashKey(l.accounts[p].Key.packed()), p)
}
