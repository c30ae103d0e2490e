package custody

import (
	"encoding/json"
	"fmt"
)

// snapshot is the custody state's encoding: slices only, so it is
// deterministic.
type snapshot struct {
	Wallets    []Wallet
	Assigned   []Assignment
	Deposits   []Deposit
	UTXOs      []UTXO
	Ceremonies []Ceremony
	Tokens     []Token `json:",omitempty"`
}

// MarshalJSON encodes the state deterministically, for snapshots and the
// state hash.
func (s *State) MarshalJSON() ([]byte, error) {
	return json.Marshal(snapshot{Wallets: s.wallets, Assigned: s.assigned, Deposits: s.deposits, UTXOs: s.utxos, Ceremonies: s.ceremonies, Tokens: s.tokens})
}

// Decode rebuilds a state from its encoding and checks it.
func Decode(b []byte) (*State, error) {
	var snap snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return nil, fmt.Errorf("custody: decode: %w", err)
	}
	s := New()
	for i, w := range snap.Wallets {
		if _, dup := s.walletIdx[w.ID]; dup || w.Kind < ColdCustomer || w.Kind > HotHouse {
			return nil, fmt.Errorf("custody: decode: wallet %d", w.ID)
		}
		s.walletIdx[w.ID] = i
	}
	s.wallets = snap.Wallets
	for _, t := range snap.Tokens {
		for _, o := range s.tokens {
			if o.Asset == t.Asset || (o.ChainID == t.ChainID && o.Contract == t.Contract) {
				return nil, fmt.Errorf("custody: decode: token %d twice", t.Asset)
			}
		}
		s.tokens = append(s.tokens, t)
	}
	for _, a := range snap.Assigned {
		i, ok := s.walletIdx[a.Wallet]
		if !ok || a.Index >= s.wallets[i].NextIndex {
			return nil, fmt.Errorf("custody: decode: assignment %+v", a)
		}
		s.assign(a)
	}
	for i, d := range snap.Deposits {
		if _, dup := s.depIdx[d.Outpoint]; dup {
			return nil, fmt.Errorf("custody: decode: deposit %s twice", d.Outpoint)
		}
		s.depIdx[d.Outpoint] = i
		s.used[addrKey{d.Wallet, d.Index}] = true
	}
	s.deposits = snap.Deposits
	for _, u := range snap.UTXOs {
		s.addUTXO(u)
	}
	for i, cer := range snap.Ceremonies {
		s.cerIdx[cer.ID] = i
		s.cerTx[cer.TxID] = cer.ID
	}
	s.ceremonies = snap.Ceremonies
	for i := range s.deposits {
		if _, ok := s.walletIdx[s.deposits[i].Wallet]; !ok {
			return nil, fmt.Errorf("custody: decode: deposit %s of unknown wallet %d", s.deposits[i].Outpoint, s.deposits[i].Wallet)
		}
		if a := s.deposits[i].Asset; a != 0 {
			if _, ok := s.Token(a); !ok {
				return nil, fmt.Errorf("custody: decode: deposit %s of asset %d, not a token", s.deposits[i].Outpoint, a)
			}
		}
	}
	s.rebuildFinality()
	return s, nil
}
