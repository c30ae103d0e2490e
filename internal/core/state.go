package core

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"

	"kinko/internal/compensation"
	"kinko/internal/controls"
	"kinko/internal/custody"
	"kinko/internal/incident"
	"kinko/internal/people"
	"kinko/internal/trading"
	"kinko/internal/withdraw"
	"kinko/internal/yen"

	"kinko/internal/journal"
	"kinko/internal/ledger"
)

// State is everything the journal has decided, rebuilt by applying its
// entries in order. Apply is deterministic: it reads no clock, draws no
// randomness, starts no goroutine, does no I/O, and never ranges over a map
// where the order could show; the same journal always gives the same state,
// byte for byte (see Hash).
type State struct {
	Ledger   *ledger.Ledger
	Custody  *custody.State
	Controls *controls.State
	People   *people.State
	Withdraw *withdraw.State
	// Incidents are the incident records.
	Incidents *incident.State
	// Trading is the markets, their books and open orders.
	Trading *trading.State
	// Compensation is the compensation plans.
	Compensation *compensation.State
	// Yen is customers' yen in and out: bank accounts, virtual
	// accounts, deposits, payouts, provider payments, reconciliations.
	Yen *yen.State
	// AML is the deny list: addresses traced from incidents.
	AML map[string]Denied
	// Checkpoints are where each asset's chain watcher stands.
	Checkpoints map[ledger.AssetID]WatchCheckpoint
	// Liabilities are the published liabilities roots of the proof of
	// reserves, in publication order (the last MaxPublishedRoots).
	Liabilities []PublishedRoot

	seq  uint64       // the last applied entry
	time int64        // its time
	hash journal.Hash // its hash

	transfers []ledger.Transfer // scratch for decoding, reused
	results   []ledger.Result   // scratch for results, reused
	// placeResults are trading's results, cut a chunk at a time.
	placeResults []PlaceResult
	// tradeSlab is where results' trade lists are cut from, likewise.
	tradeSlab []trading.Trade
	// taker is the record of a placed order that does not rest, while
	// its command settles.
	taker trading.Order
	// out gathers the transfers a trading or compensation command makes,
	// applied together at its end; reused.
	out []ledger.Transfer
	// outHints are the ledger's hints of out's accounts, one a transfer
	// (trading's; commit uses them when there is one for each).
	outHints []ledger.TransferHint
}

// NewState returns the state before the first entry.
func NewState() *State {
	return &State{Ledger: ledger.New(), Custody: custody.New(), Controls: controls.New(), People: people.New(), Withdraw: withdraw.New(), Incidents: incident.New(), Trading: trading.New(), Compensation: compensation.New(), Yen: yen.New()}
}

// Seq returns the sequence number of the last applied entry.
func (s *State) Seq() uint64 { return s.seq }

// Time returns the time of the last applied entry, in unix nanoseconds.
func (s *State) Time() int64 { return s.time }

// Head returns the hash of the last applied entry.
func (s *State) Head() journal.Hash { return s.hash }

// Outcome is what applying one entry did. Err is set when the command as a
// whole could not apply (it does not decode); Events lists the events of a
// batch that did not simply succeed, in TigerBeetle's manner.
type Outcome struct {
	Seq    uint64
	Time   int64
	Err    error
	Events []ledger.Result
	// Value is what a command returns beyond success, such as the index of
	// an assigned address; each command's doc says what.
	Value any
}

// EventErr returns the first event failure as an error, or nil; an event
// that Exists is a success.
func (o *Outcome) EventErr() error {
	if o.Err != nil {
		return o.Err
	}
	for _, r := range o.Events {
		if !r.Code.Succeeded() {
			return &ledger.EventError{Index: r.Index, Code: r.Code}
		}
	}
	return nil
}

// Apply applies one entry, which must follow the last applied one. The
// returned Outcome's Events alias scratch memory valid until the next Apply.
func (s *State) Apply(e *journal.Entry) Outcome {
	if e.Seq != s.seq+1 || e.Prev != s.hash {
		// A programmer error: the journal layer hands entries in order.
		panic(fmt.Sprintf("core: apply of entry %d after %d (broken chain)", e.Seq, s.seq))
	}
	s.seq, s.time, s.hash = e.Seq, e.Time, e.Hash
	o := Outcome{Seq: e.Seq, Time: e.Time}
	s.results = s.results[:0]
	switch Kind(e.Kind) {
	case KindCreateTransfers:
		// The hot path: decode into reused memory.
		ts, err := decodeTransfers(e.Payload, s.transfers)
		if err != nil {
			o.Err = err
			return o
		}
		s.transfers = ts
		s.results = s.Ledger.CreateTransfers(ts, e.Time, s.results)
	default:
		cmd, err := DecodeCommand(e.Kind, e.Payload)
		if err != nil {
			o.Err = err
			return o
		}
		sig, err := s.authenticate(cmd)
		if err != nil {
			o.Err = err
			return o
		}
		if ok, v, err := s.dispatch(cmd, e.Time); ok {
			if err == nil && sig != nil {
				s.People.Record(*sig)
			}
			o.Value, o.Err = v, err
			return o
		}
		if ok, v, err := s.applyReserves(cmd, e.Time); ok {
			o.Value, o.Err = v, err
			return o
		}
		s.results = s.apply(cmd, e.Time, s.results)
	}
	o.Events = s.results
	return o
}

// dispatch applies a command of a subsystem's own kinds; handled is false
// for the ledger's batch kinds.
func (s *State) dispatch(cmd Command, t int64) (handled bool, v any, err error) {
	if handled, v, err = s.applyCustody(cmd, t); handled {
		return
	}
	if handled, v, err = s.applyPeople(cmd, t); handled {
		return
	}
	if handled, v, err = s.applyKeys(cmd, t); handled {
		return
	}
	if handled, v, err = s.applyWithdraw(cmd, t); handled {
		return
	}
	if handled, v, err = s.applyBatch(cmd, t); handled {
		return
	}
	if handled, v, err = s.applyGas(cmd, t); handled {
		return
	}
	if handled, v, err = s.applyTrading(cmd, t); handled {
		return
	}
	if handled, v, err = s.applyCompensation(cmd, t); handled {
		return
	}
	if handled, v, err = s.applyAML(cmd, t); handled {
		return
	}
	if handled, v, err = s.applyYen(cmd, t); handled {
		return
	}
	return s.applyOwed(cmd, t)
}

func (s *State) apply(cmd Command, t int64, res []ledger.Result) []ledger.Result {
	switch c := cmd.(type) {
	case CreateAssets:
		return s.Ledger.CreateAssets(c.Assets, res)
	case CreateCustomers:
		return s.Ledger.CreateCustomers(c.IDs, res)
	case CreateAccounts:
		return s.Ledger.CreateAccounts(c.Keys, res)
	case CreateTransfers:
		return s.Ledger.CreateTransfers(c.Transfers, t, res)
	}
	panic(fmt.Sprintf("core: no apply for %T", cmd))
}

// CheckInvariants checks the invariants of every subsystem's state.
func (s *State) CheckInvariants() error {
	if err := s.Ledger.CheckInvariants(); err != nil {
		return fmt.Errorf("after entry %d: %w", s.seq, err)
	}
	if err := s.Trading.CheckInvariants(); err != nil {
		return fmt.Errorf("after entry %d: %w", s.seq, err)
	}
	if err := s.Custody.CheckInvariants(); err != nil {
		return fmt.Errorf("after entry %d: %w", s.seq, err)
	}
	if err := s.checkLiabilities(); err != nil {
		return fmt.Errorf("after entry %d: %w", s.seq, err)
	}
	return nil
}

// stateMagic names the encoding; KNKSTAT2 added deposits' finality and
// KNKSTAT3 markets' protections (bands, index, breaker, listing bounds),
// so a snapshot of an older encoding is passed over and the journal
// replayed.
const stateMagic = "KNKSTAT3"

// Encode writes the state deterministically: the same state gives the same
// bytes. Snapshots store it and Hash digests it.
func (s *State) Encode(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	var hdr [8 + 8 + 8 + journal.HashSize]byte
	copy(hdr[:], stateMagic)
	binary.BigEndian.PutUint64(hdr[8:], s.seq)
	binary.BigEndian.PutUint64(hdr[16:], uint64(s.time))
	copy(hdr[24:], s.hash[:])
	bw.Write(hdr[:])
	if err := s.Ledger.Encode(bw); err != nil {
		return err
	}
	ext, err := json.Marshal(s.extension())
	if err != nil {
		return err
	}
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(ext)))
	bw.Write(n[:])
	bw.Write(ext)
	return bw.Flush()
}

// stateExt is the part of the state kept as JSON: custody, controls and
// watcher checkpoints. Its fields hold slices, never maps, so the encoding
// is deterministic.
type stateExt struct {
	People       json.RawMessage     `json:"people"`
	Custody      json.RawMessage     `json:"custody"`
	Halts        []controls.Halt     `json:"halts"`
	Lifts        []controls.Lift     `json:"lifts"`
	Plans        []controls.Plan     `json:"plans,omitempty"`
	Checkpoints  []WatchCheckpoint   `json:"checkpoints"`
	Withdraw     json.RawMessage     `json:"withdraw"`
	Incidents    []incident.Incident `json:"incidents"`
	Trading      *trading.Snapshot   `json:"trading,omitempty"`
	Compensation []compensation.Plan `json:"compensation,omitempty"`
	AML          []Denied            `json:"aml,omitempty"`
	Liabilities  []PublishedRoot     `json:"liabilities,omitempty"`
	Yen          *yen.Snapshot       `json:"yen,omitempty"`
}

func (s *State) extension() stateExt {
	c, err := s.Custody.MarshalJSON()
	if err != nil {
		panic(err)
	}
	pp, err := s.People.MarshalJSON()
	if err != nil {
		panic(err)
	}
	wd, err := json.Marshal(s.Withdraw.Snapshot())
	if err != nil {
		panic(err)
	}
	ext := stateExt{People: pp, Custody: c, Halts: s.Controls.Halted(), Lifts: s.Controls.Lifts(), Plans: s.Controls.Plans(), Withdraw: wd, Incidents: s.Incidents.List(), Trading: s.Trading.Snapshot()}
	for _, p := range s.Compensation.List() {
		ext.Compensation = append(ext.Compensation, *p)
	}
	if len(s.AML) > 0 {
		ext.AML = s.DeniedList()
	}
	ext.Liabilities = s.Liabilities
	ext.Yen = s.Yen.Snapshot()
	for _, a := range s.Ledger.Assets() {
		if cp, ok := s.Checkpoints[a.ID]; ok {
			ext.Checkpoints = append(ext.Checkpoints, cp)
		}
	}
	return ext
}

// maxExtension bounds the JSON section of a state encoding.
const maxExtension = 1 << 30

func (s *State) restoreExtension(b []byte) error { return s.restoreExtensionWith(b, nil, nil) }

// restoreExtensionWith restores the JSON section, the compensation plans'
// payouts given apart (counts[i] of payouts for plan i, in order) when
// counts is not nil.
func (s *State) restoreExtensionWith(b []byte, counts []int, payouts []compensation.Payout) error {
	var ext stateExt
	if err := json.Unmarshal(b, &ext); err != nil {
		return err
	}
	if counts != nil || len(payouts) > 0 {
		if len(counts) != len(ext.Compensation) {
			return fmt.Errorf("payouts of %d plans for %d", len(counts), len(ext.Compensation))
		}
		for i, c := range counts {
			if len(ext.Compensation[i].Payouts) != 0 || c > len(payouts) {
				return fmt.Errorf("payouts of plan %d", i)
			}
			if c > 0 {
				ext.Compensation[i].Payouts = payouts[:c:c]
			}
			payouts = payouts[c:]
		}
		if len(payouts) != 0 {
			return fmt.Errorf("%d payouts left over", len(payouts))
		}
	}
	var err error
	if s.People, err = people.Decode(ext.People); err != nil {
		return err
	}
	if s.Custody, err = custody.Decode(ext.Custody); err != nil {
		return err
	}
	if s.Controls, err = controls.Restore(ext.Halts, ext.Lifts, ext.Plans); err != nil {
		return err
	}
	s.Incidents = incident.Restore(ext.Incidents)
	if s.Trading, err = trading.Restore(ext.Trading); err != nil {
		return err
	}
	s.Compensation = compensation.Restore(ext.Compensation)
	s.Liabilities = ext.Liabilities
	s.Yen = yen.Restore(ext.Yen)
	for _, d := range ext.AML {
		if s.AML == nil {
			s.AML = map[string]Denied{}
		}
		s.AML[d.Address] = d
	}
	if s.Withdraw, err = withdraw.Restore(ext.Withdraw, func(b []byte, v any) error { return json.Unmarshal(b, v) }); err != nil {
		return err
	}
	for _, cp := range ext.Checkpoints {
		if s.Checkpoints == nil {
			s.Checkpoints = map[ledger.AssetID]WatchCheckpoint{}
		}
		s.Checkpoints[cp.Asset] = cp
	}
	return nil
}

// DecodeState reads a state written by Encode.
func DecodeState(r io.Reader) (*State, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var hdr [8 + 8 + 8 + journal.HashSize]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, fmt.Errorf("core: state header: %w", err)
	}
	if string(hdr[:8]) != stateMagic {
		return nil, fmt.Errorf("core: state: bad magic")
	}
	s := &State{seq: binary.BigEndian.Uint64(hdr[8:]), time: int64(binary.BigEndian.Uint64(hdr[16:]))}
	copy(s.hash[:], hdr[24:])
	var err error
	if s.Ledger, err = ledger.Decode(br); err != nil {
		return nil, err
	}
	var n [8]byte
	if _, err := io.ReadFull(br, n[:]); err != nil {
		return nil, fmt.Errorf("core: state: %w", err)
	}
	size := binary.BigEndian.Uint64(n[:])
	if size > maxExtension {
		return nil, fmt.Errorf("core: state: section of %d bytes", size)
	}
	ext := make([]byte, size)
	if _, err := io.ReadFull(br, ext); err != nil {
		return nil, fmt.Errorf("core: state: %w", err)
	}
	if err := s.restoreExtension(ext); err != nil {
		return nil, fmt.Errorf("core: state: %w", err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, fmt.Errorf("core: state: trailing bytes")
	}
	return s, nil
}

// Hash returns the SHA-256 of the state's encoding: two states with the same
// hash are the same, byte for byte.
func (s *State) Hash() journal.Hash {
	h := sha256.New()
	if err := s.Encode(h); err != nil {
		panic(err) // hash.Hash writes never fail
	}
	var out journal.Hash
	h.Sum(out[:0])
	return out
}
