package core

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"

	"kinko/internal/compensation"
	"kinko/internal/incident"
	"kinko/internal/journal"
	"kinko/internal/ledger"
	"kinko/internal/market"
	"kinko/internal/passkey"
	"kinko/internal/people"
	"kinko/internal/reserves"
	"kinko/internal/trading"
	"kinko/internal/withdraw"
)

// Command kinds of compensation.
const (
	KindWriteCompensation   Kind = 70
	KindAddPayouts          Kind = 71
	KindExecuteCompensation Kind = 72
)

func init() {
	kindNames[KindWriteCompensation] = "write_compensation"
	kindNames[KindAddPayouts] = "add_payouts"
	kindNames[KindExecuteCompensation] = "execute_compensation"
}

// KindApproveCompensation is the request kind that approves a plan: a
// second operator, with the approver role, who did not write it.
const KindApproveCompensation people.RequestKind = "approve_compensation"

// ApproveCompensationPayload is its payload.
type ApproveCompensationPayload struct {
	Plan string `json:"plan"`
}

// CodeCompensation marks compensation's ledger transfers.
const CodeCompensation = 60

// OwnerCompensation owns the house compensation accounts: an approved plan
// is funded there from equity, and pays from there.
const OwnerCompensation = ledger.OwnerHouseMin + 4

// WriteCompensation writes a plan's header (its rule, rounding, point in
// time, count, total and digest) as a draft; its payouts follow in
// AddPayouts entries.
type WriteCompensation struct{ Plan compensation.Plan }

// AddPayouts adds up to compensation.ChunkSize payouts to a draft.
type AddPayouts struct {
	Plan    string
	Payouts []compensation.Payout
}

// ExecuteCompensation pays payouts [From, From+Count) of an approved plan.
// Running a part again pays nobody twice (one transfer id per customer and
// plan); a part may start anywhere up to where execution stopped.
type ExecuteCompensation struct {
	Plan  string
	From  int
	Count int
	Actor string
	// Run names this run of the execution (any text the executor picks):
	// a command signs once, so a run again is a new run.
	Run string `json:",omitempty"`
	// Assertion is the actor's signature over the command (SignedDigest).
	Assertion *passkey.Assertion `json:",omitempty"`
}

func (WriteCompensation) Kind() Kind   { return KindWriteCompensation }
func (AddPayouts) Kind() Kind          { return KindAddPayouts }
func (ExecuteCompensation) Kind() Kind { return KindExecuteCompensation }

func (c WriteCompensation) AppendPayload(b []byte) []byte   { return appendJSON(b, c) }
func (c ExecuteCompensation) AppendPayload(b []byte) []byte { return appendJSON(b, c) }

// AppendPayload: id length 1 | id | count 4 | payouts.
func (c AddPayouts) AppendPayload(b []byte) []byte {
	b = append(b, byte(len(c.Plan)))
	b = append(b, c.Plan...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.Payouts)))
	for _, p := range c.Payouts {
		b = compensation.AppendPayout(b, p)
	}
	return b
}

func decodeAddPayouts(p []byte) (AddPayouts, error) {
	if len(p) < 1 || len(p) < 1+int(p[0])+4 {
		return AddPayouts{}, invalid("add_payouts: %d bytes", len(p))
	}
	n := int(p[0])
	c := AddPayouts{Plan: string(p[1 : 1+n])}
	rest := p[1+n:]
	count := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if count == 0 || count > compensation.ChunkSize || len(rest) != int(count)*compensation.PayoutSize {
		return AddPayouts{}, invalid("add_payouts: %d payouts in %d bytes", count, len(rest))
	}
	c.Payouts = make([]compensation.Payout, count)
	for i := range c.Payouts {
		c.Payouts[i] = compensation.GetPayout(rest[i*compensation.PayoutSize:])
	}
	return c, nil
}

func decodeCompensation(kind Kind, p []byte) (Command, bool, error) {
	var c Command
	var err error
	switch kind {
	case KindWriteCompensation:
		c, err = decodeJSON[WriteCompensation](p)
	case KindAddPayouts:
		c, err = decodeAddPayouts(p)
	case KindExecuteCompensation:
		c, err = decodeJSON[ExecuteCompensation](p)
	default:
		return nil, false, nil
	}
	return c, true, err
}

func (s *State) applyCompensation(cmd Command, t int64) (bool, any, error) {
	switch c := cmd.(type) {
	case WriteCompensation:
		return true, nil, s.writeCompensation(c, t)
	case AddPayouts:
		return true, nil, s.addPayouts(c)
	case ExecuteCompensation:
		v, err := s.executeCompensation(c, t)
		return true, v, err
	}
	return false, nil, nil
}

func (s *State) writeCompensation(c WriteCompensation, t int64) error {
	p := c.Plan
	if err := p.Check(); err != nil {
		return err
	}
	if p.Status != "" || p.Approver != "" || len(p.Payouts) != 0 || p.Paid != 0 || p.Loaded != [32]byte{} || p.WrittenSeq != 0 || len(p.PartSeqs) != 0 {
		return fmt.Errorf("%w: a plan is written as a bare draft", compensation.ErrInvalid)
	}
	for _, a := range []ledger.AssetID{p.Asset, p.PayAsset} {
		if _, ok := s.Ledger.Asset(a); !ok {
			return fmt.Errorf("%w: unknown asset %d", compensation.ErrInvalid, a)
		}
	}
	if p.At > s.seq {
		return fmt.Errorf("%w: point in time %d is after the journal's %d", compensation.ErrInvalid, p.At, s.seq)
	}
	if _, ok := s.Operator(p.Requester); !ok {
		return people.ErrOperatorUnknown
	}
	if p.Incident != "" {
		if _, ok := s.Incidents.Get(p.Incident); !ok {
			return fmt.Errorf("%w: unknown incident %q", compensation.ErrInvalid, p.Incident)
		}
	}
	p.Status, p.Written, p.WrittenSeq = compensation.Draft, t, s.seq
	return s.Compensation.Add(&p)
}

func (s *State) addPayouts(c AddPayouts) error {
	p, ok := s.Compensation.Get(c.Plan)
	if !ok {
		return compensation.ErrUnknown
	}
	if p.Status != compensation.Draft {
		return compensation.ErrNotDraft
	}
	if len(p.Payouts)+len(c.Payouts) > p.Count {
		return fmt.Errorf("%w: %d payouts past the %d written", compensation.ErrIncomplete, len(p.Payouts)+len(c.Payouts), p.Count)
	}
	// The digest chains whole chunks: every part but the last is full.
	if len(p.Payouts)+len(c.Payouts) < p.Count && len(c.Payouts) != compensation.ChunkSize {
		return fmt.Errorf("%w: a part of %d payouts before the last; parts are %d", compensation.ErrInvalid, len(c.Payouts), compensation.ChunkSize)
	}
	var last ledger.OwnerID
	if n := len(p.Payouts); n > 0 {
		last = p.Payouts[n-1].Customer
	}
	if err := p.CheckChunk(last, c.Payouts); err != nil {
		return err
	}
	for _, po := range c.Payouts {
		if !s.Ledger.HasCustomer(po.Customer) {
			return fmt.Errorf("%w: customer %d", compensation.ErrInvalid, po.Customer)
		}
	}
	p.Payouts = append(p.Payouts, c.Payouts...)
	p.Loaded = compensation.Chain(p.Loaded, c.Payouts)
	return nil
}

// checkCompensationApproval tells whether plan may be approved by decider
// ("" when only the request is being filed).
func (s *State) checkCompensationApproval(id, decider string) error {
	p, ok := s.Compensation.Get(id)
	if !ok {
		return compensation.ErrUnknown
	}
	if p.Status != compensation.Draft {
		return compensation.ErrNotDraft
	}
	var total uint64
	for _, po := range p.Payouts {
		total += po.Pay
	}
	if len(p.Payouts) != p.Count || p.Loaded != p.Digest || total != p.Total {
		return compensation.ErrIncomplete
	}
	if decider != "" && decider == p.Requester {
		return fmt.Errorf("%w: %s wrote the plan", people.ErrSelfApproval, decider)
	}
	if decider != "" {
		if err := s.yenCanFund(p.PayAsset, p.Total); err != nil {
			return fmt.Errorf("compensation: %w", err)
		}
	}
	return nil
}

// approveCompensation marks the plan approved and funds the compensation
// account from equity with its total.
func (s *State) approveCompensation(r people.Request, decider string) error {
	var pp ApproveCompensationPayload
	json.Unmarshal(r.Payload, &pp)
	if err := s.checkCompensationApproval(pp.Plan, decider); err != nil {
		return err
	}
	p, _ := s.Compensation.Get(pp.Plan)
	comp := ledger.AccountKey{Owner: OwnerCompensation, Asset: p.PayAsset, Kind: ledger.KindHouse}
	eq := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: p.PayAsset, Kind: ledger.KindEquity}
	s.ensureAccounts(comp, eq)
	// A plan paying yen moves the house's yen into the trust account
	// first, as a bank instruction: refused, the plan is not approved.
	if err := s.yenFundCompensation(p.ID, p.PayAsset, p.Total, decider, s.time); err != nil {
		return fmt.Errorf("compensation: %w", err)
	}
	if p.Total > 0 {
		s.results = s.Ledger.CreateTransfers([]ledger.Transfer{{ID: compensation.TransferID(p.ID, 0, 2), Debit: eq, Credit: comp,
			Amount: ledger.AmountOf(p.Total), Code: CodeCompensation}}, s.time, s.results[:0])
		if len(s.results) > 0 {
			err := s.results[0].Code
			s.results = s.results[:0]
			return fmt.Errorf("compensation: funding the plan: %w", err)
		}
	}
	p.Status, p.Approver = compensation.Approved, decider
	return nil
}

func (s *State) ensureAccounts(keys ...ledger.AccountKey) {
	var missing []ledger.AccountKey
	for _, k := range keys {
		if _, ok := s.Ledger.Account(k); !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		s.results = s.Ledger.CreateAccounts(missing, s.results[:0])
		s.results = s.results[:0]
	}
}

// ExecutionResult is what an execution did.
type ExecutionResult struct {
	Paid    int    `json:"paid"`          // payouts paid by this entry
	Already int    `json:"already"`       // payouts of the part paid before
	Amount  uint64 `json:"amount,string"` // paid by this entry, base units
	Done    bool   `json:"done"`
	// Shortfalls are the assets of the plan (held and paid) whose customer
	// side is short of what is owed to customers once the plan is done,
	// each with the incident this entry opened for it.
	Shortfalls []Shortfall `json:"shortfalls,omitempty"`
}

// Shortfall is an asset whose customer liabilities exceed the customer
// side's holdings (reserves.Compute, by the ledger), in base units.
type Shortfall struct {
	Asset       string        `json:"asset"`
	Liabilities ledger.Amount `json:"liabilities"`
	Holdings    ledger.Amount `json:"holdings"`
	Short       ledger.Amount `json:"short"`
	Incident    string        `json:"incident"`
}

// ShortfallDetector is the detector of the incidents a compensation plan's
// shortfall opens.
const ShortfallDetector = "reserves"

// checkShortfalls runs when a plan is done: customers were paid in
// PayAsset (their liabilities grew) and, with a write-off, lost Asset. If
// the customer side of either is now short of what customers are owed,
// by the ledger, it opens an incident for it in this entry (id
// "shortfall-ASSET-PLAN", the shortfall as its loss): a plan paid in yen
// that no yen on the customers' side backs is a shortfall of segregated
// money, and nobody would see it otherwise. The core's caller raises a
// critical alert for each (Config.Alert).
func (s *State) checkShortfalls(p *compensation.Plan, t int64) []Shortfall {
	rep, err := reserves.Compute(s.Ledger, s.Custody, reserves.DefaultPolicy, nil, s.seq, t)
	if err != nil {
		return nil
	}
	var out []Shortfall
	assets := []ledger.AssetID{p.PayAsset}
	if p.Asset != p.PayAsset {
		assets = append(assets, p.Asset)
	}
	for _, id := range assets {
		a, ok := s.Ledger.Asset(id)
		if !ok {
			continue
		}
		for _, row := range rep.Rows {
			if row.Asset != a.Code || row.Segregated {
				continue
			}
			held, _ := row.CustomerLiabilities.Sub(row.Shortfall)
			sf := Shortfall{Asset: a.Code, Liabilities: row.CustomerLiabilities, Holdings: held, Short: row.Shortfall, Incident: "shortfall-" + a.Code + "-" + p.ID}
			loss := withdraw.Amount(row.Shortfall)
			reason := fmt.Sprintf("after compensation plan %s: %s customer liabilities %s, customer-side holdings %s: short by %s", p.ID, a.Code,
				row.CustomerLiabilities.FormatDecimal(a.Decimals), held.FormatDecimal(a.Decimals), row.Shortfall.FormatDecimal(a.Decimals))
			if s.Incidents.Open(incident.Incident{ID: sf.Incident, Asset: a.Code, Detector: ShortfallDetector, Reason: reason, Loss: loss}, t, s.seq) == nil {
				out = append(out, sf)
			}
		}
	}
	return out
}

func (s *State) executeCompensation(c ExecuteCompensation, t int64) (*ExecutionResult, error) {
	p, ok := s.Compensation.Get(c.Plan)
	if !ok {
		return nil, compensation.ErrUnknown
	}
	switch p.Status {
	case compensation.Done:
		return nil, compensation.ErrExecuted
	case compensation.Draft:
		return nil, compensation.ErrNotApproved
	}
	if strings.TrimSpace(c.Actor) == "" {
		return nil, fmt.Errorf("%w: actor", compensation.ErrInvalid)
	}
	if c.Count <= 0 || c.Count > compensation.ChunkSize || c.From < 0 || c.From+c.Count > len(p.Payouts) {
		return nil, fmt.Errorf("%w: payouts [%d, %d) of %d", compensation.ErrInvalid, c.From, c.From+c.Count, len(p.Payouts))
	}
	if c.From > p.Paid {
		return nil, fmt.Errorf("%w: at %d, asked from %d", compensation.ErrOutOfOrder, p.Paid, c.From)
	}
	comp := ledger.AccountKey{Owner: OwnerCompensation, Asset: p.PayAsset, Kind: ledger.KindHouse}
	eq := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: p.Asset, Kind: ledger.KindEquity}
	if p.WriteOff {
		s.ensureAccounts(eq)
	}
	res := &ExecutionResult{}
	ts := s.out[:0]
	var keys []ledger.AccountKey
	for _, po := range p.Payouts[c.From : c.From+c.Count] {
		keys = append(keys, avail(po.Customer, p.PayAsset))
	}
	s.ensureAccounts(keys...)
	// flush applies what is gathered, in batches the ledger takes; a
	// payment and its write-off are linked and never split.
	flush := func() error {
		if len(ts) == 0 {
			return nil
		}
		s.results = s.Ledger.CreateTransfers(ts, t, s.results[:0])
		defer func() { s.results, ts = s.results[:0], ts[:0] }()
		if len(s.results) > 0 {
			r := s.results[0]
			return fmt.Errorf("compensation: payment %+v refused: %w", ts[r.Index], r.Code)
		}
		return nil
	}
	for _, po := range p.Payouts[c.From : c.From+c.Count] {
		id := compensation.TransferID(p.ID, po.Customer, 0)
		if _, done := s.Ledger.Transfer(id); done || po.Pay == 0 {
			res.Already++
			continue
		}
		if len(ts)+2 > ledger.MaxBatch {
			if err := flush(); err != nil {
				s.out = ts[:0]
				return nil, err
			}
		}
		leg := ledger.Transfer{ID: id, Debit: comp, Credit: avail(po.Customer, p.PayAsset), Amount: ledger.AmountOf(po.Pay), Code: CodeCompensation}
		off := uint64(0)
		if p.WriteOff {
			off = min(po.Basis, uint64(max(s.spendable(avail(po.Customer, p.Asset)), 0)))
		}
		if off > 0 {
			leg.Flags = ledger.FlagLinked
			ts = append(ts, leg, ledger.Transfer{ID: compensation.TransferID(p.ID, po.Customer, 1), Debit: avail(po.Customer, p.Asset), Credit: eq,
				Amount: ledger.AmountOf(off), Code: CodeCompensation})
		} else {
			ts = append(ts, leg)
		}
		res.Paid++
		res.Amount += po.Pay
	}
	err := flush()
	s.out = ts[:0]
	if err != nil {
		return nil, err
	}
	p.Paid = max(p.Paid, c.From+c.Count)
	p.PartSeqs = append(p.PartSeqs, s.seq)
	if p.Paid == len(p.Payouts) {
		p.Status, p.Executed = compensation.Done, t
		res.Done = true
		res.Shortfalls = s.checkShortfalls(p, t)
	}
	return res, nil
}

// Holdings returns every customer's holding of asset (available and held)
// in this state, customers in ascending order, those holding nothing left
// out; with the state at a point in time (StateAt), who held what then.
// It reads the accounts once, in the order they were made (customers'
// accounts exist only for registered customers), in two halves at once
// (a query, never part of apply), and sorts only if the accounts were not
// made in customer order.
func (s *State) Holdings(asset ledger.AssetID) []compensation.Holding {
	n := s.Ledger.AccountCount()
	half := n / 2
	var first []ledger.CustomerBalance
	done := make(chan struct{})
	go func() {
		defer close(done)
		first = s.Ledger.CustomerBalances(asset, 0, half, nil)
	}()
	second := s.Ledger.CustomerBalances(asset, half, n, nil)
	<-done
	parts := append(first, second...)
	cmp := func(x, y ledger.CustomerBalance) int {
		if x.Owner != y.Owner {
			if x.Owner < y.Owner {
				return -1
			}
			return 1
		}
		return int(x.Kind) - int(y.Kind)
	}
	if !slices.IsSortedFunc(parts, cmp) {
		slices.SortFunc(parts, cmp)
	}
	out := make([]compensation.Holding, 0, len(parts))
	for _, p := range parts {
		if k := len(out); k == 0 || out[k-1].Customer != p.Owner {
			out = append(out, compensation.Holding{Customer: p.Owner})
		}
		h := &out[len(out)-1]
		if p.Kind == ledger.KindAvailable {
			h.Available = p.Balance
		} else {
			h.Held = p.Balance
		}
		h.Total = h.Available + h.Held
	}
	return out
}

// FillsBetween returns the market's fills made by entries (from, to], in
// order, replaying the journal from the state at from: the record of what
// filled during a suspension.
func FillsBetween(ctx context.Context, dir string, j *journal.Journal, market uint16, from, to uint64) ([]trading.Trade, error) {
	if to < from {
		return nil, fmt.Errorf("%w: window (%d, %d]", compensation.ErrInvalid, from, to)
	}
	end, err := StateAt(ctx, dir, j, to)
	if err != nil {
		return nil, err
	}
	if _, ok := end.Trading.Market(market); !ok {
		return nil, trading.ErrUnknownMarket
	}
	st, err := StateAt(ctx, dir, j, from)
	if err != nil {
		return nil, err
	}
	var out []trading.Trade
	err = replay(ctx, j, from+1, to, func(e *journal.Entry) error {
		o := st.Apply(e)
		if o.Err != nil {
			return nil
		}
		switch v := o.Value.(type) {
		case *PlaceResult:
			for _, t := range v.Trades {
				if t.Market == market {
					out = append(out, t)
				}
			}
		case *trading.Trade:
			if v.Market == market {
				out = append(out, *v)
			}
		}
		return nil
	})
	return out, err
}

// SuspensionPayouts applies BITPoint's rule: for each fill, the side that
// traded worse than mid (the market's mid at resumption) is owed the
// difference, |price − mid| × qty / Scale in the quote asset, rounded down;
// summed per customer. Dealer fills count for the customer (the house is
// not paid).
func SuspensionPayouts(l trading.Listing, fills []trading.Trade, mid int64) []compensation.Payout {
	owed := map[ledger.OwnerID]*big.Int{}
	add := func(c ledger.OwnerID, diff, qty int64) {
		if c == 0 || c >= ledger.OwnerHouseMin || diff <= 0 {
			return
		}
		v := new(big.Int).Mul(big.NewInt(diff), big.NewInt(qty))
		if owed[c] == nil {
			owed[c] = new(big.Int)
		}
		owed[c].Add(owed[c], v)
	}
	for _, f := range fills {
		buyer, seller := f.TakerOwn, f.MakerOwn
		if f.TakerSide == market.Sell {
			buyer, seller = f.MakerOwn, f.TakerOwn
		}
		add(buyer, f.Price-mid, f.Qty)  // paid above the mid
		add(seller, mid-f.Price, f.Qty) // sold below it
	}
	out := make([]compensation.Payout, 0, len(owed))
	scale := big.NewInt(l.Scale)
	for c, v := range owed {
		pay := new(big.Int).Quo(v, scale)
		if pay.Sign() > 0 && pay.IsUint64() {
			out = append(out, compensation.Payout{Customer: c, Basis: pay.Uint64(), Pay: pay.Uint64()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Customer < out[j].Customer })
	return out
}
