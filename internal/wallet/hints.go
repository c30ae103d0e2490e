package wallet

import (
	"bytes"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
)

// Only returns the set of its wallet id alone, sharing the scripts derived:
// a signer that must sign the inputs of one wallet and no other.
func (s *Set) Only(id uint32) *Set {
	if w := s.wallet(id); w != nil {
		return &Set{Wallets: []*Named{w}, book: s.book}
	}
	return &Set{book: NewBook()}
}

// Find says which wallet of the set a script belongs to: among the scripts
// derived, or at the branch and index a PSBT's BIP32 derivation claims for
// it, believed only when the wallet's own descriptor derives the same
// script there (the script is then learnt, so signing finds it too).
func (s *Set) Find(script []byte, hints []*psbt.Bip32Derivation) (*Named, Place, bool) {
	if w, p, ok := s.Owner(script); ok {
		return w, p, true
	}
	for _, h := range hints {
		n := len(h.Bip32Path)
		if n < 2 || h.Bip32Path[n-2] > 1 || h.Bip32Path[n-1] >= hdkeychain.HardenedKeyStart {
			continue
		}
		branch, index := h.Bip32Path[n-2], h.Bip32Path[n-1]
		for _, w := range s.Wallets {
			if got, err := w.desc.PkScript(branch, index); err == nil && bytes.Equal(got, script) {
				p := Place{Wallet: w.ID, Branch: branch, Index: index}
				s.book.AddScript(script, p)
				return w, p, true
			}
		}
	}
	return nil, Place{}, false
}
