package core

import (
	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"fmt"
	"math/big"
	"strings"
	"time"

	"kinko/internal/compensation"
	"kinko/internal/controls"
	"kinko/internal/custody"
	"kinko/internal/incident"
	"kinko/internal/journal"
	"kinko/internal/ledger"
)

// IncidentReport gathers an incident's report: its record, the timeline
// from a little before it was opened (the detector halts first), and the
// compensation plans that answer it, from st (the state at j's head) and
// the journal. Times in the customer notice are Japan's.
func IncidentReport(st *State, j *journal.Journal, id string) (*incident.Report, error) {
	in, ok := st.Incidents.Get(id)
	if !ok {
		return nil, fmt.Errorf("%w: %q", incident.ErrUnknown, id)
	}
	from := uint64(1)
	if in.Seq > 10 {
		from = in.Seq - 10
	}
	evs, err := Timeline(j, from, Applied(st), NamesOf(st))
	if err != nil {
		return nil, err
	}
	r := &incident.Report{Incident: in, Asset: in.Asset, Events: evs, Zone: time.FixedZone("JST", 9*3600)}
	if a, ok := st.Ledger.AssetByCode(in.Asset); ok {
		for _, h := range st.Controls.Halted() {
			if h.Switch.Asset == a.ID || h.Switch.Service == controls.Global {
				r.Halted = append(r.Halted, string(h.Switch.Service))
			}
		}
	}
	if a, ok := st.Ledger.AssetByCode(in.Asset); ok {
		for _, c := range st.Custody.Ceremonies() {
			if c.Purpose != custody.Cover || c.Created < in.Opened {
				continue
			}
			var amt uint64
			for _, o := range c.Outputs {
				if w, ok := st.Custody.Wallet(o.Wallet); ok && w.Kind.Customer() && w.Asset == a.ID {
					amt += o.Amount
				}
			}
			r.Covers = append(r.Covers, incident.CoverLine{ID: c.ID, Amount: money(amt, a), TxID: chainhash.Hash(c.TxID).String(), State: string(c.State)})
		}
	}
	for _, p := range st.Compensation.List() {
		if p.Incident != id {
			continue
		}
		held, _ := st.Ledger.Asset(p.Asset)
		pay, _ := st.Ledger.Asset(p.PayAsset)
		sum := compensation.Summarize(p.Payouts)
		line := incident.PlanLine{ID: p.ID, Rule: string(p.Rule), Rounding: p.Rounding, Customers: p.Count, Status: string(p.Status),
			Requester: p.Requester, Approver: p.Approver, Total: money(p.Total, pay), Largest: money(sum.Largest.Pay, pay)}
		if e, err := j.Get(p.At); err == nil {
			line.At = time.Unix(0, e.Time)
		}
		if p.Rule == compensation.FixedRate {
			rate := new(big.Rat).SetFrac(new(big.Int).SetUint64(p.RateNum), new(big.Int).SetUint64(p.RateDen))
			rate.Mul(rate, new(big.Rat).SetFrac(pow10(held.Decimals), pow10(pay.Decimals)))
			line.Rate = strings.TrimRight(strings.TrimRight(rate.FloatString(int(pay.Decimals)+6), "0"), ".") + " " + pay.Code + " per " + held.Code
		} else {
			line.Rate = "the difference to the mid at resumption, in " + pay.Code
		}
		r.Plans = append(r.Plans, line)
	}
	return r, nil
}

func pow10(n uint8) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }

// money formats base units of asset a with its decimals and code.
func money(v uint64, a ledger.Asset) string {
	return ledger.AmountOf(v).FormatDecimal(a.Decimals) + " " + a.Code
}
