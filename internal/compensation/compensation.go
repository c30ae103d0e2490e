// Package compensation is how kinko pays customers after an incident:
// a plan written down with its rule and rounding, the list of who gets
// what computed from the journal (point-in-time holdings, or the fills of a
// suspension window), a dry run (count, total, distribution, largest),
// approval by a second operator, and execution as ledger transfers with
// one transfer id per customer and plan, so that running it again, or
// resuming it after a crash, pays nobody twice.
//
// Coincheck paid 88.549 yen per XEM held at the time of the theft, rounded
// down to the yen, to about 260,000 holders; BITPoint credited customers
// whose orders filled during its suspension at a worse price than the mid
// at resumption. Both are rules here.
package compensation

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sort"
	"strconv"
	"strings"
	"time"

	"kinko/internal/ledger"
)

// Rule is how a plan computes each payment.
type Rule string

// Rules.
const (
	// FixedRate pays Basis (the amount of Asset held at At) × RateNum /
	// RateDen in PayAsset, rounded down.
	FixedRate Rule = "fixed_rate"
	// SuspensionFills pays Basis, the yen each customer lost on fills
	// during a suspension against the mid at resumption.
	SuspensionFills Rule = "suspension_fills"
)

// Status is where a plan stands.
type Status string

// Statuses.
const (
	Draft    Status = "draft"    // written; payouts being added
	Approved Status = "approved" // a second operator approved; funded
	Done     Status = "done"     // every payout executed
)

// Errors.
var (
	ErrInvalid      = errors.New("compensation: invalid plan")
	ErrExists       = errors.New("compensation: plan id exists")
	ErrUnknown      = errors.New("compensation: unknown plan")
	ErrNotDraft     = errors.New("compensation: plan is no longer a draft")
	ErrIncomplete   = errors.New("compensation: plan's payouts are not all added, or differ from its totals")
	ErrNotApproved  = errors.New("compensation: plan not approved")
	ErrExecuted     = errors.New("compensation: plan already executed")
	ErrOutOfOrder   = errors.New("compensation: execution must continue where it stopped")
	ErrRateAbsurd   = errors.New("compensation: rate is zero, negative or absurd")
	ErrPayoutsOrder = errors.New("compensation: payouts must be in ascending customer order, once each")
)

// MaxRate bounds a fixed rate: pay units per held base unit.
const MaxRate = 1_000_000_000

// ChunkSize is how many payouts one journal entry adds or executes.
const ChunkSize = 8192

// Plan is a compensation plan.
type Plan struct {
	ID       string         `json:"id"`
	Incident string         `json:"incident"`
	Rule     Rule           `json:"rule"`
	Asset    ledger.AssetID `json:"asset"`     // held (fixed rate) or traded (fills)
	PayAsset ledger.AssetID `json:"pay_asset"` // paid in
	// At is the journal entry the basis was taken at: the holdings' moment
	// (fixed rate) or the resumption (fills).
	At      uint64 `json:"at"`
	RateNum uint64 `json:"rate_num,omitempty"`
	RateDen uint64 `json:"rate_den,omitempty"`
	// Rounding is stated for the record; payments always round down.
	Rounding string `json:"rounding"`
	// WriteOff writes off each customer's liability of Asset, up to the
	// basis, to equity when paying (the stolen coin is paid for).
	WriteOff bool   `json:"write_off,omitempty"`
	Reason   string `json:"reason"`
	Count    int    `json:"count"`
	Total    uint64 `json:"total"`
	// Digest chains the payouts, ChunkSize at a time: sha256(prev ‖ chunk).
	Digest    [32]byte `json:"digest"`
	Requester string   `json:"requester"`

	Status   Status   `json:"status"`
	Approver string   `json:"approver,omitempty"`
	Payouts  []Payout `json:"payouts,omitempty"`
	Loaded   [32]byte `json:"loaded"` // the digest of the payouts added so far
	Paid     int      `json:"paid"`   // payouts executed so far
	Written  int64    `json:"written"`
	Executed int64    `json:"executed,omitempty"`
	// The journal entries that wrote it and executed its parts.
	WrittenSeq uint64   `json:"written_seq"`
	PartSeqs   []uint64 `json:"part_seqs,omitempty"`
}

// Payout is one customer's payment.
type Payout struct {
	Customer ledger.OwnerID `json:"customer"`
	Basis    uint64         `json:"basis"` // held at At, or yen lost
	Pay      uint64         `json:"pay"`
}

// PayoutSize is a payout's binary size.
const PayoutSize = 24

// AppendPayout appends p's binary encoding.
func AppendPayout(b []byte, p Payout) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(p.Customer))
	b = binary.BigEndian.AppendUint64(b, p.Basis)
	return binary.BigEndian.AppendUint64(b, p.Pay)
}

// GetPayout decodes a payout.
func GetPayout(b []byte) Payout {
	return Payout{Customer: ledger.OwnerID(binary.BigEndian.Uint64(b)), Basis: binary.BigEndian.Uint64(b[8:]), Pay: binary.BigEndian.Uint64(b[16:])}
}

// Chain returns the digest after adding chunk to prev.
func Chain(prev [32]byte, chunk []Payout) [32]byte {
	buf := make([]byte, 0, 32+len(chunk)*PayoutSize)
	buf = append(buf, prev[:]...)
	for _, p := range chunk {
		buf = AppendPayout(buf, p)
	}
	return sha256.Sum256(buf)
}

// PayFor applies a fixed rate: basis × num / den, rounded down. ok is
// false when the result does not fit 64 bits.
func PayFor(basis, num, den uint64) (uint64, bool) {
	hi, lo := bits.Mul64(basis, num)
	if hi >= den {
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, den)
	return q, true
}

// Check checks a plan's header as written.
func (p *Plan) Check() error {
	if strings.TrimSpace(p.ID) == "" || len(p.ID) > 64 || strings.TrimSpace(p.Reason) == "" || strings.TrimSpace(p.Requester) == "" {
		return fmt.Errorf("%w: id, reason and requester", ErrInvalid)
	}
	if p.Asset == 0 || p.PayAsset == 0 || p.At == 0 || p.Count <= 0 {
		return fmt.Errorf("%w: assets, point in time and count", ErrInvalid)
	}
	switch p.Rule {
	case FixedRate:
		if p.RateNum == 0 || p.RateDen == 0 || p.RateNum/p.RateDen > MaxRate {
			return fmt.Errorf("%w: %d/%d", ErrRateAbsurd, p.RateNum, p.RateDen)
		}
	case SuspensionFills:
		if p.WriteOff {
			return fmt.Errorf("%w: suspension fills write nothing off", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: rule %q", ErrInvalid, p.Rule)
	}
	return nil
}

// CheckChunk checks payouts to add after last (the last customer so far):
// ascending customers, each once, and for a fixed rate the payment the rule
// gives.
func (p *Plan) CheckChunk(last ledger.OwnerID, chunk []Payout) error {
	for _, po := range chunk {
		if po.Customer <= last || po.Customer >= ledger.OwnerHouseMin {
			return fmt.Errorf("%w: customer %d after %d", ErrPayoutsOrder, po.Customer, last)
		}
		last = po.Customer
		switch p.Rule {
		case FixedRate:
			want, ok := PayFor(po.Basis, p.RateNum, p.RateDen)
			if !ok || want != po.Pay {
				return fmt.Errorf("%w: customer %d: basis %d at %d/%d pays %d, not %d", ErrInvalid, po.Customer, po.Basis, p.RateNum, p.RateDen, want, po.Pay)
			}
		case SuspensionFills:
			if po.Pay != po.Basis {
				return fmt.Errorf("%w: customer %d: pays %d of a %d loss", ErrInvalid, po.Customer, po.Pay, po.Basis)
			}
		}
	}
	return nil
}

// Summary is a plan's dry run.
type Summary struct {
	Count   int    `json:"count"`
	Total   uint64 `json:"total"`
	Largest Payout `json:"largest"`
	// Distribution counts payments by size: [0], [1, 9], [10, 99], ...
	Distribution []Bucket `json:"distribution"`
}

// Bucket is one range of payment sizes.
type Bucket struct {
	From, To uint64
	Count    int
	Total    uint64
}

// Summarize computes the dry run of payouts.
func Summarize(ps []Payout) Summary {
	s := Summary{Count: len(ps)}
	var buckets [21]Bucket
	for _, p := range ps {
		s.Total += p.Pay
		if p.Pay > s.Largest.Pay {
			s.Largest = p
		}
		i := 0
		for v := p.Pay; v > 0; v /= 10 {
			i++
		}
		buckets[i].Count++
		buckets[i].Total += p.Pay
	}
	lo := uint64(0)
	for i := range buckets {
		hi := lo*10 - 1
		if i == 0 {
			hi = 0
		}
		if buckets[i].Count > 0 {
			s.Distribution = append(s.Distribution, Bucket{From: lo, To: hi, Count: buckets[i].Count, Total: buckets[i].Total})
		}
		if i == 0 {
			lo = 1
		} else {
			lo *= 10
		}
	}
	return s
}

// Holding is one customer's holding of an asset at a moment.
type Holding struct {
	Customer  ledger.OwnerID `json:"customer"`
	Available uint64         `json:"available,string"`
	Held      uint64         `json:"held,string"`
	Total     uint64         `json:"total,string"`
}

// FixedRatePayouts turns holdings into a fixed-rate plan's payouts.
func FixedRatePayouts(hs []Holding, num, den uint64) ([]Payout, error) {
	out := make([]Payout, 0, len(hs))
	for _, h := range hs {
		if h.Total == 0 {
			continue
		}
		pay, ok := PayFor(h.Total, num, den)
		if !ok {
			return nil, fmt.Errorf("%w: customer %d's %d at %d/%d overflows", ErrRateAbsurd, h.Customer, h.Total, num, den)
		}
		out = append(out, Payout{Customer: h.Customer, Basis: h.Total, Pay: pay})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Customer < out[j].Customer })
	return out, nil
}

// ShareOf scales holdings to their share of part, the amount of the coin
// the customers are still owed after the house's backing made up what it
// could in kind: each holder's basis is Total × part / the holdings'
// total, rounded up (so the bases cover part: nobody is short by the
// rounding), at most what they held. part at or above the total is every
// holding in full. With a rate (num/den of the pay asset a base unit, as
// FixedRatePayouts takes it) a basis that would be paid a fraction of the
// pay asset's unit is rounded up to the next whole unit's worth, at most
// the holding: what the plan writes off it pays for, and the bases still
// cover part.
func ShareOf(hs []Holding, part, num, den uint64) []Holding {
	var total uint64
	for _, h := range hs {
		total += h.Total
	}
	out := make([]Holding, 0, len(hs))
	for _, h := range hs {
		if h.Total == 0 {
			continue
		}
		b := h.Total
		if part < total {
			hi, lo := bits.Mul64(h.Total, part)
			q, r := bits.Div64(hi, lo, total)
			if r > 0 {
				q++
			}
			b = min(q, h.Total)
		}
		if b > 0 && num > 0 && den > 0 && b < h.Total {
			// Up to a whole pay unit's worth: a share worth a fraction of
			// the pay asset's unit is neither paid for nor written off by
			// a plan that rounds payments down, so it would stay owed
			// with nothing behind it.
			vh, vl := bits.Mul64(b, num)
			if vh < den {
				pay, frac := bits.Div64(vh, vl, den)
				if hi, lo := bits.Mul64(pay+1, den); frac > 0 && hi < num {
					q, r := bits.Div64(hi, lo, num)
					if r > 0 {
						q++
					}
					b = min(max(q, b), h.Total)
				}
			}
		}
		if b > 0 {
			out = append(out, Holding{Customer: h.Customer, Total: b})
		}
	}
	return out
}

// Header fills a plan's count, total and digest from its payouts.
func (p *Plan) Header(ps []Payout) {
	p.Count, p.Total, p.Digest = len(ps), 0, [32]byte{}
	for _, x := range ps {
		p.Total += x.Pay
	}
	for i := 0; i < len(ps); i += ChunkSize {
		p.Digest = Chain(p.Digest, ps[i:min(i+ChunkSize, len(ps))])
	}
}

// TransferID is the ledger id of a plan's payment (leg 0) or write-off
// (leg 1) for a customer: the same every time, so nobody is paid twice.
func TransferID(plan string, customer ledger.OwnerID, leg byte) ledger.ID {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(customer))
	h := sha256.Sum256(append(append([]byte("kinko compensation\x00"+plan+"\x00"), b[:]...), leg))
	return ledger.ID{Hi: 0xC0<<56 | binary.BigEndian.Uint64(h[:8])>>8, Lo: binary.BigEndian.Uint64(h[8:16])}
}

// State is every plan.
type State struct {
	plans map[string]*Plan
	order []string
}

// New returns an empty state.
func New() *State { return &State{plans: map[string]*Plan{}} }

// Get returns a plan.
func (s *State) Get(id string) (*Plan, bool) {
	p, ok := s.plans[id]
	return p, ok
}

// Add stores a new plan.
func (s *State) Add(p *Plan) error {
	if _, ok := s.plans[p.ID]; ok {
		return ErrExists
	}
	s.plans[p.ID] = p
	s.order = append(s.order, p.ID)
	return nil
}

// List returns the plans in the order written.
func (s *State) List() []*Plan {
	out := make([]*Plan, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.plans[id])
	}
	return out
}

// Restore rebuilds a state.
func Restore(ps []Plan) *State {
	s := New()
	for i := range ps {
		p := ps[i]
		s.plans[p.ID] = &p
		s.order = append(s.order, p.ID)
	}
	return s
}

// HoldingsReport is who held how much of an asset at a moment.
// Amounts are base units, written in JSON as decimal strings; the time is
// the journal entry's, in RFC 3339.
type HoldingsReport struct {
	Asset    string    `json:"asset"`
	Decimals uint8     `json:"decimals"`
	Seq      uint64    `json:"seq"` // the last journal entry included
	Time     int64     `json:"-"`   // its time, unix ns
	At       time.Time `json:"time"`
	Holders  int       `json:"holders"`
	Total    uint64    `json:"total,string"`
	Holdings []Holding `json:"holdings"`
}

// NewHoldingsReport totals holdings.
func NewHoldingsReport(asset string, decimals uint8, seq uint64, t int64, hs []Holding) HoldingsReport {
	r := HoldingsReport{Asset: asset, Decimals: decimals, Seq: seq, Time: t, At: time.Unix(0, t).UTC(), Holders: len(hs), Holdings: hs}
	for _, h := range hs {
		r.Total += h.Total
	}
	if r.Holdings == nil {
		r.Holdings = []Holding{}
	}
	return r
}

// WriteJSON writes the report as encoding/json's Encoder writes it (the
// same bytes, a newline after), rows formatted straight into a buffer.
func (r HoldingsReport) WriteJSON(w io.Writer) error {
	code, err := json.Marshal(r.Asset)
	if err != nil {
		return err
	}
	at, err := json.Marshal(r.At)
	if err != nil {
		return err
	}
	quoted := func(b []byte, v uint64) []byte {
		b = append(b, '"')
		b = strconv.AppendUint(b, v, 10)
		return append(b, '"')
	}
	buf := make([]byte, 0, 1<<20)
	buf = append(buf, `{"asset":`...)
	buf = append(buf, code...)
	buf = append(buf, `,"decimals":`...)
	buf = strconv.AppendUint(buf, uint64(r.Decimals), 10)
	buf = append(buf, `,"seq":`...)
	buf = strconv.AppendUint(buf, r.Seq, 10)
	buf = append(buf, `,"time":`...)
	buf = append(buf, at...)
	buf = append(buf, `,"holders":`...)
	buf = strconv.AppendInt(buf, int64(r.Holders), 10)
	buf = append(buf, `,"total":`...)
	buf = quoted(buf, r.Total)
	buf = append(buf, `,"holdings":`...)
	if r.Holdings == nil {
		buf = append(buf, "null"...)
	} else {
		buf = append(buf, '[')
		for i, h := range r.Holdings {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, `{"customer":`...)
			buf = strconv.AppendUint(buf, uint64(h.Customer), 10)
			buf = append(buf, `,"available":`...)
			buf = quoted(buf, h.Available)
			buf = append(buf, `,"held":`...)
			buf = quoted(buf, h.Held)
			buf = append(buf, `,"total":`...)
			buf = quoted(buf, h.Total)
			buf = append(buf, '}')
			if len(buf) > cap(buf)-256 {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		buf = append(buf, ']')
	}
	buf = append(buf, "}\n"...)
	_, err = w.Write(buf)
	return err
}

// WriteCSV writes the report as CSV: a header, one row a customer, and a
// total row, amounts in base units. Rows are formatted into a buffer
// without a field slice per row (a row is digits, commas and the asset
// code, quoted as encoding/csv would if it ever needed quoting).
func (r HoldingsReport) WriteCSV(w io.Writer) error {
	var tail bytes.Buffer
	cw := csv.NewWriter(&tail)
	cw.Write([]string{r.Asset, strconv.FormatUint(r.Seq, 10)})
	cw.Flush()
	suffix := tail.Bytes() // "ASSET,SEQ\n", quoted as needed
	buf := make([]byte, 0, 1<<20)
	buf = append(buf, "customer,available,held,total,asset,seq\n"...)
	for _, h := range r.Holdings {
		buf = strconv.AppendUint(buf, uint64(h.Customer), 10)
		buf = append(buf, ',')
		buf = strconv.AppendUint(buf, h.Available, 10)
		buf = append(buf, ',')
		buf = strconv.AppendUint(buf, h.Held, 10)
		buf = append(buf, ',')
		buf = strconv.AppendUint(buf, h.Total, 10)
		buf = append(buf, ',')
		buf = append(buf, suffix...)
		if len(buf) > cap(buf)-256 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	buf = append(buf, "total,,,"...)
	buf = strconv.AppendUint(buf, r.Total, 10)
	buf = append(buf, ',')
	buf = append(buf, suffix...)
	_, err := w.Write(buf)
	return err
}
