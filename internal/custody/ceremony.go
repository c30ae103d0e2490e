package custody

import (
	"errors"
	"fmt"

	"kinko/internal/ledger"
)

// UTXOState is where one of our outputs stands.
type UTXOState uint8

// UTXO states.
const (
	UTXOAvailable UTXOState = 1
	// UTXOReserved: a ceremony or withdrawal was prepared to spend it; no
	// other may.
	UTXOReserved UTXOState = 2
	UTXOSpent    UTXOState = 3
)

// UTXO is an output of one of our wallets, known from a credited deposit
// or a confirmed ceremony.
type UTXO struct {
	Outpoint Outpoint
	Wallet   uint32
	Branch   uint32
	Index    uint32
	Amount   uint64
	State    UTXOState
	Ceremony string // the ceremony that reserved or spent it
}

// Purpose says why a ceremony moves coins between our wallets.
type Purpose string

// Ceremony purposes.
const (
	// Refill moves coins from the cold customer wallet to the hot one.
	Refill Purpose = "refill"
	// Sweep moves coins from the hot customer wallet to the cold one.
	Sweep Purpose = "sweep"
)

// CeremonyState is where a ceremony stands.
type CeremonyState string

// Ceremony states.
const (
	CeremonyPrepared  CeremonyState = "prepared"
	CeremonyConfirmed CeremonyState = "confirmed"
	CeremonyCancelled CeremonyState = "cancelled"
)

// CeremonyOutput is an output of a ceremony transaction that pays one of
// our wallets.
type CeremonyOutput struct {
	Vout   uint32
	Wallet uint32
	Branch uint32
	Index  uint32
	Amount uint64
}

// Ceremony is an offline-signed transaction between our wallets, registered
// in the journal before anyone signs it: its inputs are reserved, and the
// watcher knows its txid as explained.
type Ceremony struct {
	ID      string
	Purpose Purpose
	TxID    [32]byte
	Inputs  []Outpoint
	Outputs []CeremonyOutput // ours only; the rest is the fee
	PSBT    string           // the unsigned PSBT, base64
	Actor   string
	State   CeremonyState
	Created int64
	Height  int32
	// Source, Safe and Pays are set on an Ethereum ceremony instead of
	// Inputs, Outputs and PSBT: the Safe wallet that pays, its SafeTx
	// (TxID is the SafeTx's EIP-712 hash) and each payment to a Safe
	// wallet of ours (PrepareSafe).
	Source uint32        `json:",omitempty"`
	Safe   *SafeTx       `json:",omitempty"`
	Pays   []SafePayment `json:",omitempty"`
	// Deposit is set on the sweep of a deposit Safe into its own
	// wallet's Safe (DepositSweep).
	Deposit *DepositSweep `json:",omitempty"`
}

// DepositSweep says which Safes of the Source wallet a deposit Safe's
// sweep moves between: Safe.Safe is the counterfactual Safe of deposit
// index Index, and its one payment is to the wallet's Safe at salt nonce
// SafeSalt, both derived by the core from the wallet's descriptor
// (core.checkSafeCeremony), so the Ether stays with the wallet's owners
// and threshold. Asset, if set, is a token bound on the wallet's chain
// (custody.Token): the sweep is then the SafeTx calling the token's
// transfer(wallet's Safe, amount), its payment's amount in the token's
// base units; 0 is Ether.
type DepositSweep struct {
	Index    uint32
	SafeSalt uint64
	Asset    ledger.AssetID `json:",omitempty"`
}

// Errors of ceremonies.
var (
	ErrCeremonyExists  = errors.New("custody: ceremony id exists")
	ErrCeremonyUnknown = errors.New("custody: ceremony unknown")
	ErrUTXOUnavailable = errors.New("custody: input is not an available output of ours")
	ErrCeremonyInvalid = errors.New("custody: ceremony invalid")
	ErrIndexNotNext    = errors.New("custody: output index is not the wallet's next")
)

// MaxCeremonyInputs bounds the inputs of a ceremony.
const MaxCeremonyInputs = 500

// Prepare registers a ceremony and reserves its inputs. Outputs to a
// receive branch must use the wallet's next receive index, outputs to the
// change branch its next change index; both advance.
func (s *State) Prepare(c Ceremony, t int64) error {
	if c.Safe != nil || c.Source != 0 || len(c.Pays) != 0 || c.Deposit != nil {
		return s.prepareSafe(c, t)
	}
	if c.ID == "" || len(c.ID) > 64 || len(c.Inputs) == 0 || len(c.Inputs) > MaxCeremonyInputs || len(c.Outputs) == 0 || len(c.PSBT) > 1<<20 {
		return ErrCeremonyInvalid
	}
	if c.Purpose != Refill && c.Purpose != Sweep && c.Purpose != Cover {
		return fmt.Errorf("%w: purpose %q", ErrCeremonyInvalid, c.Purpose)
	}
	if _, ok := s.cerIdx[c.ID]; ok {
		return ErrCeremonyExists
	}
	var in uint64
	seen := map[Outpoint]bool{}
	for _, o := range c.Inputs {
		i, ok := s.utxoIdx[o]
		if !ok || s.utxos[i].State != UTXOAvailable || seen[o] {
			return fmt.Errorf("%w: %s", ErrUTXOUnavailable, o)
		}
		seen[o] = true
		in += s.utxos[i].Amount
	}
	var out uint64
	next := map[[2]uint32]uint32{}
	for _, o := range c.Outputs {
		wi, ok := s.walletIdx[o.Wallet]
		if !ok || o.Branch > 1 || o.Amount == 0 {
			return fmt.Errorf("%w: output %d", ErrCeremonyInvalid, o.Vout)
		}
		w := s.wallets[wi]
		k := [2]uint32{o.Wallet, o.Branch}
		want, ok := next[k]
		if !ok {
			want = w.NextIndex
			if o.Branch == 1 {
				want = w.NextChange
			}
		}
		if o.Index != want {
			return fmt.Errorf("%w: wallet %d branch %d index %d, next %d", ErrIndexNotNext, o.Wallet, o.Branch, o.Index, want)
		}
		next[k] = want + 1
		out += o.Amount
	}
	if out > in {
		return fmt.Errorf("%w: outputs exceed inputs", ErrCeremonyInvalid)
	}
	if c.Purpose == Cover {
		if err := s.checkCover(c); err != nil {
			return err
		}
	}
	for k, v := range next {
		w := &s.wallets[s.walletIdx[k[0]]]
		if k[1] == 0 {
			w.NextIndex = v
		} else {
			w.NextChange = v
		}
	}
	for _, o := range c.Inputs {
		u := &s.utxos[s.utxoIdx[o]]
		u.State, u.Ceremony = UTXOReserved, c.ID
	}
	c.State, c.Created = CeremonyPrepared, t
	s.cerIdx[c.ID] = len(s.ceremonies)
	s.cerTx[c.TxID] = c.ID
	s.ceremonies = append(s.ceremonies, c)
	return nil
}

// ConfirmCeremony records a ceremony's transaction in a block: its inputs
// are spent, its outputs to our wallets become available outputs, and the
// ledger moves the amounts between the wallets' accounts; the fee is charged
// to the house equity account.
func (s *State) ConfirmCeremony(l *ledger.Ledger, txid [32]byte, height int32, equity ledger.OwnerID, t int64) error {
	id, ok := s.cerTx[txid]
	if !ok {
		return ErrCeremonyUnknown
	}
	c := &s.ceremonies[s.cerIdx[id]]
	if c.State == CeremonyConfirmed {
		return nil
	}
	if c.Safe != nil {
		return s.confirmSafe(l, c, height, t)
	}
	// What each wallet gave and got.
	delta := map[uint32]int64{}
	var order []uint32
	touch := func(w uint32) {
		if _, ok := delta[w]; !ok {
			delta[w] = 0
			order = append(order, w)
		}
	}
	var in, out uint64
	for _, o := range c.Inputs {
		u := s.utxos[s.utxoIdx[o]]
		touch(u.Wallet)
		delta[u.Wallet] -= int64(u.Amount)
		in += u.Amount
	}
	for _, o := range c.Outputs {
		touch(o.Wallet)
		delta[o.Wallet] += int64(o.Amount)
		out += o.Amount
	}
	fee := in - out
	// Transfers: each wallet that gave more than it got pays the others;
	// the fee leaves the first input's wallet to equity.
	var ts []ledger.Transfer
	n := uint64(0)
	tid := func() ledger.ID {
		n++
		return ceremonyTransferID(txid, n)
	}
	payer := s.utxos[s.utxoIdx[c.Inputs[0]]].Wallet
	pw := s.wallets[s.walletIdx[payer]]
	for _, w := range order {
		if w == payer || delta[w] == 0 {
			continue
		}
		ww := s.wallets[s.walletIdx[w]]
		if delta[w] > 0 {
			ts = append(ts, ledger.Transfer{ID: tid(), Debit: ww.Account(), Credit: pw.Account(), Amount: ledger.AmountOf(uint64(delta[w])), Code: CodeCeremony})
		} else {
			ts = append(ts, ledger.Transfer{ID: tid(), Debit: pw.Account(), Credit: ww.Account(), Amount: ledger.AmountOf(uint64(-delta[w])), Code: CodeCeremony})
		}
	}
	if fee > 0 {
		eq := ledger.AccountKey{Owner: equity, Asset: pw.Asset, Kind: ledger.KindEquity}
		l.CreateAccounts([]ledger.AccountKey{eq}, nil)
		ts = append(ts, ledger.Transfer{ID: tid(), Debit: eq, Credit: pw.Account(), Amount: ledger.AmountOf(fee), Code: CodeNetworkFee})
	}
	for i := 0; i < len(ts)-1; i++ {
		ts[i].Flags |= ledger.FlagLinked
	}
	if len(ts) > 0 {
		if res := l.CreateTransfers(ts, t, nil); len(res) > 0 && !res[len(res)-1].Code.Succeeded() {
			return res[len(res)-1].Code
		}
	}
	for _, o := range c.Inputs {
		s.utxos[s.utxoIdx[o]].State = UTXOSpent
	}
	for _, o := range c.Outputs {
		s.addUTXO(UTXO{Outpoint: Outpoint{TxID: txid, Vout: o.Vout}, Wallet: o.Wallet, Branch: o.Branch, Index: o.Index, Amount: o.Amount, State: UTXOAvailable})
	}
	c.State, c.Height = CeremonyConfirmed, height
	return nil
}

// ceremonyTransferID is the id of a ceremony's nth transfer (from 1).
func ceremonyTransferID(txid [32]byte, n uint64) ledger.ID {
	id := DepositTransferID(Outpoint{TxID: txid, Vout: uint32(n)}, false)
	id.Hi = 0xC1<<56 | id.Hi&(1<<56-1)
	return id
}

// Transfer codes of ceremonies.
const (
	CodeCeremony   = 20
	CodeNetworkFee = 21
)

func (s *State) addUTXO(u UTXO) {
	if _, ok := s.utxoIdx[u.Outpoint]; ok {
		return
	}
	s.utxoIdx[u.Outpoint] = len(s.utxos)
	s.utxos = append(s.utxos, u)
}

// UTXOs returns the outputs of a wallet in a state, oldest first.
func (s *State) UTXOs(wallet uint32, st UTXOState) []UTXO {
	var out []UTXO
	for _, u := range s.utxos {
		if u.Wallet == wallet && u.State == st {
			out = append(out, u)
		}
	}
	return out
}

// Ceremony returns a ceremony by id.
func (s *State) Ceremony(id string) (Ceremony, bool) {
	i, ok := s.cerIdx[id]
	if !ok {
		return Ceremony{}, false
	}
	return s.ceremonies[i], true
}

// CeremonyByTx returns the ceremony of a transaction.
func (s *State) CeremonyByTx(txid [32]byte) (Ceremony, bool) {
	id, ok := s.cerTx[txid]
	if !ok {
		return Ceremony{}, false
	}
	return s.Ceremony(id)
}

// Ceremonies returns every ceremony, oldest first.
func (s *State) Ceremonies() []Ceremony { return append([]Ceremony(nil), s.ceremonies...) }

// Reserve marks available outputs as reserved by owner (a ceremony or a
// withdrawal batch); all or none.
func (s *State) Reserve(inputs []Outpoint, owner string) error {
	seen := map[Outpoint]bool{}
	for _, o := range inputs {
		i, ok := s.utxoIdx[o]
		if !ok || s.utxos[i].State != UTXOAvailable || seen[o] {
			return fmt.Errorf("%w: %s", ErrUTXOUnavailable, o)
		}
		seen[o] = true
	}
	for _, o := range inputs {
		u := &s.utxos[s.utxoIdx[o]]
		u.State, u.Ceremony = UTXOReserved, owner
	}
	return nil
}

// Release makes reserved outputs available again (a failed batch).
func (s *State) Release(inputs []Outpoint) {
	for _, o := range inputs {
		if i, ok := s.utxoIdx[o]; ok && s.utxos[i].State == UTXOReserved {
			s.utxos[i].State, s.utxos[i].Ceremony = UTXOAvailable, ""
		}
	}
}

// Spend marks outputs spent and adds the new outputs of ours.
func (s *State) Spend(inputs []Outpoint, outputs []UTXO) {
	for _, o := range inputs {
		if i, ok := s.utxoIdx[o]; ok {
			s.utxos[i].State = UTXOSpent
		}
	}
	for _, u := range outputs {
		s.addUTXO(u)
	}
}

// InputTotal sums the amounts of outputs of ours.
func (s *State) InputTotal(inputs []Outpoint) (uint64, bool) {
	var n uint64
	for _, o := range inputs {
		i, ok := s.utxoIdx[o]
		if !ok {
			return 0, false
		}
		n += s.utxos[i].Amount
	}
	return n, true
}

// TakeChange claims a wallet's next change index; index must be it.
func (s *State) TakeChange(wallet, index uint32) error {
	i, ok := s.walletIdx[wallet]
	if !ok {
		return ErrWalletUnknown
	}
	if s.wallets[i].NextChange != index {
		return fmt.Errorf("%w: change %d, next %d", ErrIndexNotNext, index, s.wallets[i].NextChange)
	}
	s.wallets[i].NextChange++
	return nil
}

// UTXO returns one of our outputs.
func (s *State) UTXO(o Outpoint) (UTXO, bool) {
	i, ok := s.utxoIdx[o]
	if !ok {
		return UTXO{}, false
	}
	return s.utxos[i], true
}
