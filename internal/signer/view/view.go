// Package view is what the hot signer sees of the core, shared by the
// signer and the core's API so that neither imports the other.
package view

import (
	"encoding/json"

	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/withdraw"
)

// View is what the hot signer needs to know of the core's state.
type View struct {
	Queued   []withdraw.Withdrawal `json:"queued"`
	Hot      custody.Wallet        `json:"hot"`
	UTXOs    []custody.UTXO        `json:"utxos"`
	InFlight []withdraw.Batch      `json:"in_flight"`
	Halted   string                `json:"halted,omitempty"`
	// LastAnchor is the newest anchor of the journal's head in a batch
	// that has not failed: the signer anchors again when it is older than
	// its interval.
	LastAnchor *withdraw.Anchor `json:"last_anchor,omitempty"`
	// GasAccount is the address of the asset's registered house gas
	// account (account-model assets), if any: the Ether signer reports
	// the gas its transactions spent, and must send from it.
	GasAccount string `json:"gas_account,omitempty"`
}

// Of builds the signer's view from a state: the one function both
// backends use.
func Of(st *core.State, asset string) View {
	var v View
	a, ok := st.Ledger.AssetByCode(asset)
	if !ok {
		v.Halted = "asset unknown"
		return v
	}
	if err := st.Controls.Allowed(a.ID, controls.Withdraw); err != nil {
		v.Halted = err.Error()
	}
	for _, w := range st.Withdraw.Withdrawals(0) {
		if w.Status == withdraw.StatusQueued && w.Intent.Asset == asset && len(v.Queued) < withdraw.MaxBatchOutputs {
			v.Queued = append(v.Queued, w)
		}
	}
	for _, b := range st.Withdraw.Batches() {
		if b.Asset == asset && !b.Cold && (b.Status == withdraw.BatchSigning || b.Status == withdraw.BatchBroadcast) {
			v.InFlight = append(v.InFlight, b)
		}
	}
	v.LastAnchor = st.Withdraw.LastAnchor(asset)
	if g, ok := st.Withdraw.GasAccountOf(asset); ok {
		v.GasAccount = g.Address
	}
	for _, w := range st.Custody.Wallets() {
		if w.Asset == a.ID && w.Kind == custody.HotCustomer {
			v.Hot = w
			v.UTXOs = st.Custody.UTXOs(w.ID, custody.UTXOAvailable)
			break
		}
	}
	return v
}

// SignerCommand is the body of POST /v1/signer/commands.
type SignerCommand struct {
	Kind    string          `json:"kind"` // reserve_batch or record_signed
	Payload json.RawMessage `json:"payload"`
}
