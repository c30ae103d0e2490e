package wallet

// Only returns the set of its wallet id alone, sharing the scripts derived:
// a signer that must sign the inputs of one wallet and no other.
func (s *Set) Only(id uint32) *Set {
	if w := s.wallet(id); w != nil {
		return &Set{Wallets: []*Named{w}, book: s.book, net: s.net}
	}
	return &Set{book: NewBook(), net: s.net}
}
