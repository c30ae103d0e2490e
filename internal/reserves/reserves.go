// Package reserves answers, per asset, whether customers' assets are
// segregated and backed: customer liabilities on the ledger against what the
// customer wallets hold, the hot wallet's share against its target and
// Japan's 5% cap, and the house's backing for the hot customer part
// (履行保証暗号資産: the same quantity as the hot customer holdings).
// It only reads; callers pass the state and, for chain assets, what the
// chain says each wallet holds.
package reserves

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"sort"
	"strconv"
	"time"

	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/yen"
)

// Policy is the tier policy: the hot wallet's target share of customer
// holdings and its hard cap, in basis points.
type Policy struct {
	HotTargetBps uint32 `json:"hot_target_bps"` // default 200 (2%)
	HotCapBps    uint32 `json:"hot_cap_bps"`    // default 500 (5%, Japan's rule); never above 500
}

// DefaultPolicy is 2% target, 5% cap.
var DefaultPolicy = Policy{HotTargetBps: 200, HotCapBps: 500}

// MaxHotCapBps is the cap no configuration can raise.
const MaxHotCapBps = 500

// Validate checks the policy.
func (p Policy) Validate() error {
	if p.HotCapBps == 0 || p.HotCapBps > MaxHotCapBps || p.HotTargetBps > p.HotCapBps {
		return fmt.Errorf("reserves: hot target %d bps and cap %d bps: need 0 <= target <= cap <= %d", p.HotTargetBps, p.HotCapBps, MaxHotCapBps)
	}
	return nil
}

// Row is one asset's figures, all in base units.
type Row struct {
	Asset               string        `json:"asset"`
	Decimals            uint8         `json:"decimals"`
	CustomerLiabilities ledger.Amount `json:"customer_liabilities"`
	ColdCustomerLedger  ledger.Amount `json:"cold_customer_ledger"`
	HotCustomerLedger   ledger.Amount `json:"hot_customer_ledger"`
	ColdHouseLedger     ledger.Amount `json:"cold_house_ledger"`
	HotHouseLedger      ledger.Amount `json:"hot_house_ledger"`
	// OtherLedger is what other asset-side accounts hold for customers:
	// the yen trust bank account, wallets not yet registered.
	OtherLedger ledger.Amount `json:"other_ledger"`
	// Yen (a fiat asset with the yen accounts set up, docs/yen.md): the
	// trust bank account (顧客区分管理信託) is in OtherLedger and is what
	// segregates customers' yen; the house's own yen at its operating
	// account is HouseBank (counted in HouseHeld, never for customers);
	// InTransit is what the payment provider holds for customers and has
	// not yet paid into the trust (not counted: the trust must cover it).
	HouseBank       ledger.Amount  `json:"house_bank,omitzero"`
	InTransit       ledger.Amount  `json:"in_transit,omitzero"`
	CustomerWallets ledger.Amount  `json:"customer_wallets"` // cold + hot customer, ledger
	OnChainCustomer *ledger.Amount `json:"on_chain_customer,omitempty"`
	OnChainHouse    *ledger.Amount `json:"on_chain_house,omitempty"`
	Segregated      bool           `json:"segregated"` // customer wallets cover liabilities
	// Shortfall is what the customer side lacks when not segregated:
	// liabilities less the customer-side holdings (the chain's figure when
	// it says less); zero when segregated.
	Shortfall     ledger.Amount `json:"shortfall"`
	HotShareBps   uint32        `json:"hot_share_bps"`
	HotOverCap    bool          `json:"hot_over_cap"`
	HouseRequired ledger.Amount `json:"house_required"` // = hot customer holdings
	HouseHeld     ledger.Amount `json:"house_held"`
	HouseBacked   bool          `json:"house_backed"`
	// HouseShortfall is what the house's backing lacks: required less
	// held, zero when backed.
	HouseShortfall ledger.Amount `json:"house_shortfall"`
	// Refill is what moving to the target needs from cold to hot; Sweep
	// what must go from hot to cold. At most one is non-zero.
	Refill ledger.Amount `json:"refill"`
	Sweep  ledger.Amount `json:"sweep"`
}

// Report is the whole report. Time is the journal entry's, unix ns; the
// API and `kinko reserves --json` write it in RFC 3339.
type Report struct {
	Seq    uint64 `json:"seq"`
	Time   int64  `json:"-"`
	Policy Policy `json:"policy"`
	Rows   []Row  `json:"rows"`
}

// reportJSON is a Report as JSON: its time in RFC 3339.
type reportJSON struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Policy Policy    `json:"policy"`
	Rows   []Row     `json:"rows"`
}

// MarshalJSON writes the report with its time in RFC 3339.
func (r Report) MarshalJSON() ([]byte, error) {
	return json.Marshal(reportJSON{Seq: r.Seq, Time: time.Unix(0, r.Time).UTC(), Policy: r.Policy, Rows: r.Rows})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Report) UnmarshalJSON(b []byte) error {
	var v reportJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Report{Seq: v.Seq, Time: v.Time.UnixNano(), Policy: v.Policy, Rows: v.Rows}
	return nil
}

// Shortfalls lists the rows whose customer side is short of what they
// owe customers.
func (r *Report) Shortfalls() []Row {
	var out []Row
	for _, row := range r.Rows {
		if !row.Segregated {
			out = append(out, row)
		}
	}
	return out
}

// OK reports whether every asset is segregated, under the cap and backed.
func (r *Report) OK() bool {
	for _, row := range r.Rows {
		if !row.Segregated || row.HotOverCap || !row.HouseBacked {
			return false
		}
	}
	return true
}

func add(a, b ledger.Amount) ledger.Amount {
	s, o := a.Add(b)
	if o {
		panic("reserves: sum overflows 128 bits") // the ledger's own totals cannot
	}
	return s
}

// bps returns part/whole in basis points, rounded down; 0 for an empty
// whole.
func bps(part, whole ledger.Amount) uint32 {
	if whole.IsZero() {
		return 0
	}
	q := new(big.Int).Mul(part.Big(), big.NewInt(10000))
	q.Quo(q, whole.Big())
	if !q.IsUint64() || q.Uint64() > 1<<31 {
		return 1 << 31
	}
	return uint32(q.Uint64())
}

// share returns whole*b/10000, rounded down.
func share(whole ledger.Amount, b uint32) ledger.Amount {
	q := new(big.Int).Mul(whole.Big(), big.NewInt(int64(b)))
	q.Quo(q, big.NewInt(10000))
	lo := new(big.Int).And(q, new(big.Int).SetUint64(^uint64(0)))
	return ledger.Amount{Hi: new(big.Int).Rsh(q, 64).Uint64(), Lo: lo.Uint64()}
}

// addWallet adds what a wallet of kind k holds of the row's asset.
func addWallet(r *Row, k custody.WalletKind, bal ledger.Amount) {
	switch k {
	case custody.ColdCustomer:
		r.ColdCustomerLedger = add(r.ColdCustomerLedger, bal)
	case custody.HotCustomer:
		r.HotCustomerLedger = add(r.HotCustomerLedger, bal)
	case custody.ColdHouse:
		r.ColdHouseLedger = add(r.ColdHouseLedger, bal)
	case custody.HotHouse:
		r.HotHouseLedger = add(r.HotHouseLedger, bal)
	}
}

// Compute builds the report from the ledger and custody state. onChain, if
// not nil, gives what the chain says each wallet (by id) holds; wallets
// missing from it are reported from the ledger alone.
func Compute(l *ledger.Ledger, c *custody.State, p Policy, onChain map[uint32]ledger.Amount, seq uint64, t int64) (*Report, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	rep := &Report{Seq: seq, Time: t, Policy: p}
	rows := map[ledger.AssetID]*Row{}
	var order []ledger.AssetID
	for _, a := range l.Assets() {
		rows[a.ID] = &Row{Asset: a.Code, Decimals: a.Decimals}
		order = append(order, a.ID)
	}
	l.Accounts(func(a *ledger.Account) bool {
		if a.Key.Kind.IsCustomer() {
			r := rows[a.Key.Asset]
			r.CustomerLiabilities = add(r.CustomerLiabilities, a.Balance())
		}
		return true
	})
	registered := map[ledger.AccountKey]bool{}
	for _, w := range c.Wallets() {
		registered[w.Account()] = true
		for _, k := range c.TokenAccounts(w) {
			registered[k] = true
		}
	}
	l.Accounts(func(a *ledger.Account) bool {
		if a.Key.Kind == ledger.KindWallet && !registered[a.Key] {
			r := rows[a.Key.Asset]
			switch o := a.Key.Owner; {
			case o == yen.OwnerOperating:
				r.HouseBank = add(r.HouseBank, a.Balance())
			case o >= yen.OwnerProvider && o < yen.OwnerProvider+ledger.OwnerID(len(yen.ProviderChannels)):
				r.InTransit = add(r.InTransit, a.Balance())
			default:
				r.OtherLedger = add(r.OtherLedger, a.Balance())
			}
		}
		return true
	})
	for _, w := range c.Wallets() {
		// A Safe wallet holds its chain's tokens too (custody.Token), on
		// accounts of its own kind.
		for _, k := range c.TokenAccounts(w) {
			if r := rows[k.Asset]; r != nil {
				acct, _ := l.Account(k)
				addWallet(r, w.Kind, acct.Balance())
			}
		}
		r := rows[w.Asset]
		if r == nil {
			continue
		}
		acct, _ := l.Account(w.Account())
		addWallet(r, w.Kind, acct.Balance())
		if v, ok := onChain[w.ID]; ok {
			target := &r.OnChainHouse
			if w.Kind.Customer() {
				target = &r.OnChainCustomer
			}
			if *target == nil {
				*target = new(ledger.Amount)
			}
			**target = add(**target, v)
		}
	}
	for _, id := range order {
		r := rows[id]
		r.CustomerWallets = add(add(r.ColdCustomerLedger, r.HotCustomerLedger), r.OtherLedger)
		held := r.CustomerWallets
		if r.OnChainCustomer != nil && r.OnChainCustomer.Cmp(held) < 0 {
			held = *r.OnChainCustomer // the chain, if it says less, decides
		}
		r.Segregated = held.Cmp(r.CustomerLiabilities) >= 0
		if !r.Segregated {
			r.Shortfall, _ = r.CustomerLiabilities.Sub(held)
		}
		r.HotShareBps = bps(r.HotCustomerLedger, add(r.ColdCustomerLedger, r.HotCustomerLedger))
		r.HotOverCap = r.HotShareBps > p.HotCapBps
		r.HouseRequired = r.HotCustomerLedger
		r.HouseHeld = add(add(r.ColdHouseLedger, r.HotHouseLedger), r.HouseBank)
		if r.OnChainHouse != nil && r.OnChainHouse.Cmp(r.HouseHeld) < 0 {
			r.HouseHeld = *r.OnChainHouse
		}
		r.HouseBacked = r.HouseHeld.Cmp(r.HouseRequired) >= 0
		if !r.HouseBacked {
			r.HouseShortfall, _ = r.HouseRequired.Sub(r.HouseHeld)
		}
		target := share(add(r.ColdCustomerLedger, r.HotCustomerLedger), p.HotTargetBps)
		switch {
		case r.HotCustomerLedger.Cmp(target) < 0:
			r.Refill, _ = target.Sub(r.HotCustomerLedger)
			if r.Refill.Cmp(r.ColdCustomerLedger) > 0 {
				r.Refill = r.ColdCustomerLedger
			}
		case r.HotShareBps > p.HotCapBps:
			r.Sweep, _ = r.HotCustomerLedger.Sub(target)
		}
		rep.Rows = append(rep.Rows, *r)
	}
	return rep, nil
}

// WriteDailyCSV writes the record Japan requires every day: each customer's
// quantity of each asset (available plus held), as of the report's state,
// sorted by customer then asset.
func WriteDailyCSV(w io.Writer, l *ledger.Ledger, date string) error {
	type key struct {
		cust  ledger.OwnerID
		asset ledger.AssetID
	}
	sums := map[key]ledger.Amount{}
	l.Accounts(func(a *ledger.Account) bool {
		if a.Key.Kind.IsCustomer() {
			k := key{a.Key.Owner, a.Key.Asset}
			sums[k] = add(sums[k], a.Balance())
		}
		return true
	})
	keys := make([]key, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].cust != keys[j].cust {
			return keys[i].cust < keys[j].cust
		}
		return keys[i].asset < keys[j].asset
	})
	cw := csv.NewWriter(w)
	cw.Write([]string{"date", "customer", "asset", "quantity", "base_units"})
	for _, k := range keys {
		a, _ := l.Asset(k.asset)
		v := sums[k]
		cw.Write([]string{date, strconv.FormatUint(uint64(k.cust), 10), a.Code, v.FormatDecimal(a.Decimals), v.String()})
	}
	cw.Flush()
	return cw.Error()
}
