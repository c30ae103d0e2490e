package withdraw

import (
	"errors"

	"kinko/internal/custody"
	"kinko/internal/journal/tree"
)

// More withdrawal states, for batches.
const (
	// StatusSigning: in a batch whose inputs are reserved in the journal.
	StatusSigning Status = "signing"
	// StatusBroadcast: its signed transaction is journaled and sent.
	StatusBroadcast Status = "broadcast"
)

// BatchStatus is where a batch stands.
type BatchStatus string

// Batch states.
const (
	BatchSigning   BatchStatus = "signing"
	BatchBroadcast BatchStatus = "broadcast"
	BatchConfirmed BatchStatus = "confirmed"
	BatchFailed    BatchStatus = "failed"
)

// MaxBatchOutputs bounds the withdrawals one transaction pays.
const MaxBatchOutputs = 100

// Batch is one transaction paying several withdrawals from the hot wallet.
// It is journaled with its inputs reserved before anyone signs, and its
// signed transaction is journaled before it is broadcast, so that a crash
// at any point re-sends this transaction and never builds a second one.
type Batch struct {
	ID          string                  `json:"id"`
	Asset       string                  `json:"asset"`
	Withdrawals []string                `json:"withdrawals"`
	Inputs      []custody.Outpoint      `json:"inputs"`
	Change      *custody.CeremonyOutput `json:"change,omitempty"`
	TxID        [32]byte                `json:"txid"`
	PSBT        string                  `json:"psbt"`
	RawTx       string                  `json:"raw_tx,omitempty"`
	// Cold batches are paid from the cold wallet by the offline ceremony
	// (the hot wallet halted, or too large a withdrawal); the hot signer
	// leaves them alone.
	Cold   bool        `json:"cold,omitempty"`
	Status BatchStatus `json:"status"`
	Reason string      `json:"reason,omitempty"`
	Height int32       `json:"height,omitempty"`
	// Anchor, if set, is the head of the journal's tree the transaction
	// anchors on chain in an OP_RETURN output (internal/anchor).
	Anchor *Anchor `json:"anchor,omitempty"`
	// Safe, for a batch of an account-model chain (Ether from a Safe
	// multisig wallet), is the SafeTx that pays it: TxID is the SafeTx's
	// EIP-712 hash, there are no inputs, no change and no PSBT, and RawTx
	// is the signed Ethereum transaction calling execTransaction.
	Safe *SafeBatch `json:"safe,omitempty"`
	// Gas, for an Ether batch, is the gas its journaled execTransaction
	// spent from the house gas account, once recorded (confirmed or
	// reverted).
	Gas *GasSpent `json:"gas,omitempty"`
}

// GasSpent is the gas an Ether transaction spent, from its receipt: gas
// used, the effective gas price and their product in wei, exactly
// (decimal strings), and the transaction's hash.
type GasSpent struct {
	Tx      string `json:"tx"`
	GasUsed uint64 `json:"gas_used"`
	Price   string `json:"price"`
	Wei     string `json:"wei"`
}

// SafeBatch is the SafeTx of an Ether batch, as journaled: the chain and
// Safe whose EIP-712 domain its hash binds, and the SafeTx's fields that
// kinko sets (safeTxGas, baseGas, gasPrice, gasToken and refundReceiver
// are always zero: no refund). One withdrawal is a CALL of its amount to
// its address; several are one DELEGATECALL to the MultiSendCallOnly
// whose entries are those CALLs, in the batch's order.
type SafeBatch struct {
	ChainID   uint64 `json:"chain_id"`
	Safe      string `json:"safe"`      // 0x address
	To        string `json:"to"`        // 0x address
	Value     string `json:"value"`     // wei, decimal
	Data      string `json:"data"`      // 0x hex
	Operation uint8  `json:"operation"` // 0 CALL, 1 DELEGATECALL
	Nonce     uint64 `json:"nonce"`
	// GasLimit and MaxFeePerGas (wei, decimal) are what execTransaction
	// is sent with from the house gas account, journaled before anyone
	// signs: their product bounds the gas the batch may spend, the fee
	// the co-signer counts, and the gas the ledger takes from the gas
	// account.
	GasLimit     uint64 `json:"gas_limit"`
	MaxFeePerGas string `json:"max_fee_per_gas"`
}

// Anchor is a head of the journal's Merkle tree written into a batch's
// transaction: the output that carries it, the tree's size and root, and
// the time of the entry that reserved the batch (set by the state machine).
type Anchor struct {
	Vout uint32    `json:"vout"`
	Size uint64    `json:"size"`
	Root tree.Hash `json:"root"`
	Time int64     `json:"time,omitempty"`
}

// Errors of batches.
var (
	ErrBatchExists  = errors.New("withdraw: batch id exists")
	ErrBatchUnknown = errors.New("withdraw: batch unknown")
	ErrBatchState   = errors.New("withdraw: batch is not in the state this needs")
	ErrNotQueued    = errors.New("withdraw: withdrawal is not queued")
)

// AddBatch records a batch.
func (s *State) AddBatch(b Batch) {
	if s.bIdx == nil {
		s.bIdx = map[string]int{}
	}
	s.bIdx[b.ID] = len(s.batches)
	s.batches = append(s.batches, b)
}

// Batch returns a batch by id.
func (s *State) Batch(id string) (*Batch, bool) {
	i, ok := s.bIdx[id]
	if !ok {
		return nil, false
	}
	return &s.batches[i], true
}

// BatchByTx returns the batch of a transaction.
func (s *State) BatchByTx(txid [32]byte) (*Batch, bool) {
	for i := range s.batches {
		if s.batches[i].TxID == txid {
			return &s.batches[i], true
		}
	}
	return nil, false
}

// LastAnchor returns the newest anchor of a batch of asset that has not
// failed (so is on chain, or on its way), or nil.
func (s *State) LastAnchor(asset string) *Anchor {
	for i := len(s.batches) - 1; i >= 0; i-- {
		b := &s.batches[i]
		if b.Anchor != nil && b.Asset == asset && b.Status != BatchFailed {
			a := *b.Anchor
			return &a
		}
	}
	return nil
}

// Batches returns every batch, oldest first.
func (s *State) Batches() []Batch { return append([]Batch(nil), s.batches...) }
