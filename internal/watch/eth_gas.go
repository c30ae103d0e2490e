package watch

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	ethereum "github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"kinko/internal/chain"
	"kinko/internal/chain/eth"
	"kinko/internal/core"
	"kinko/internal/incident"
	"kinko/internal/ledger"
	"kinko/internal/withdraw"
)

// EthGasBalance is the house gas account's reconciliation at one block.
// Ledger is its ledger account now (core.GasAccountKey); Expected what
// the chain should hold at the reconciled block given what is in flight:
//
//	Expected = Ledger + Recorded - Spent - FundedAbove + Unjournaled
//
// where Recorded is the gas the ledger has charged for the asset's
// batches (Batch.Gas, every batch), Spent the gas the batches' journaled
// execTransactions sent from the gas account spent on chain at or below
// the block (receipt gas used × effective gas price), FundedAbove the
// recorded fundings mined above the block (or not found on the node),
// Unjournaled the fundings mined at or below it that the ledger has not
// recorded yet. Chain is eth_getBalance of the gas address at the
// reconciled block's hash. A batch whose gas the ledger recorded and
// whose transaction is at or below the block is in both Recorded and
// Spent: it cancels, to the wei, when the recorded figures are the
// receipt's.
type EthGasBalance struct {
	Address     string
	Block       uint64
	Ledger      ledger.Amount
	Recorded    ledger.Amount
	Spent       ledger.Amount
	FundedAbove ledger.Amount
	Unjournaled ledger.Amount
	Expected    ledger.Amount
	Chain       ledger.Amount
}

// Difference is Expected less Chain, in wei: positive when the chain
// holds less than the ledger says (gas or ether spent that no batch
// journaled).
func (b EthGasBalance) Difference() *big.Int {
	return new(big.Int).Sub(b.Expected.Big(), b.Chain.Big())
}

// gasSnap is what one reconciliation reads of the gas account from the
// state.
type gasSnap struct {
	address  common.Address
	ledger   ledger.Amount
	fundings []withdraw.GasFunding
	batches  []gasBatch
}

// gasBatch is an Ether batch's journaled execTransaction sent from the
// gas account, with the gas the ledger recorded for it (zero if none).
type gasBatch struct {
	id       string
	tx       common.Hash
	recorded ledger.Amount
}

// minedTx is a transaction's block and fee, once it is mined.
type minedTx struct {
	block uint64
	fee   *big.Int
}

// seenFunding is a payment into the gas account found in a block.
type seenFunding struct {
	block  uint64
	amount ledger.Amount
}

// sentTx is a batch's journaled transaction decoded: its hash and
// sender, kept by batch with the raw form it was decoded from (the
// recovery of the sender is read once, not at every block).
type sentTx struct {
	raw  string
	hash common.Hash
	from common.Address
	ok   bool
}

// readGas reads the asset's gas account, if one is registered: its
// address, ledger balance, recorded fundings and the batches whose
// journaled transaction it sent.
func (r *EthRecon) readGas(s *core.State, code string, asset ledger.AssetID) *gasSnap {
	ga, ok := s.Withdraw.GasAccountOf(code)
	if !ok || !common.IsHexAddress(ga.Address) {
		return nil
	}
	g := &gasSnap{address: common.HexToAddress(ga.Address), fundings: append([]withdraw.GasFunding(nil), ga.Fundings...)}
	if a, ok := s.Ledger.Account(core.GasAccountKey(asset)); ok {
		g.ledger = a.Balance()
	}
	for _, b := range s.Withdraw.Batches() {
		if b.Safe == nil || b.Asset != code || b.RawTx == "" {
			continue
		}
		st, ok := r.gasSent[b.ID]
		if !ok || st.raw != b.RawTx {
			st = decodeSent(b.RawTx)
			r.gasSent[b.ID] = st
		}
		if !st.ok || st.from != g.address {
			continue
		}
		gb := gasBatch{id: b.ID, tx: st.hash}
		if b.Gas != nil {
			gb.recorded, _ = ledger.ParseAmount(b.Gas.Wei)
		}
		g.batches = append(g.batches, gb)
	}
	return g
}

// decodeSent decodes a journaled transaction and recovers its sender.
func decodeSent(raw string) sentTx {
	st := sentTx{raw: raw}
	bin, err := hex.DecodeString(raw)
	var tx types.Transaction
	if err == nil {
		err = tx.UnmarshalBinary(bin)
	}
	if err != nil {
		return st
	}
	from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), &tx)
	if err != nil {
		return st
	}
	st.hash, st.from, st.ok = tx.Hash(), from, true
	return st
}

// mined returns the block and fee of a transaction, or ok false when the
// node has no receipt of it. A receipt at or below the reconciled block
// is kept: it is read once.
func (r *EthRecon) mined(ctx context.Context, h common.Hash, at uint64) (minedTx, bool, error) {
	if m, ok := r.gasMined[h]; ok && m.block <= at {
		return m, true, nil
	}
	cctx, cancel := context.WithTimeout(ctx, eth.CallTimeout)
	defer cancel()
	rc, err := r.node.Eth().TransactionReceipt(cctx, h)
	if errors.Is(err, ethereum.NotFound) {
		return minedTx{}, false, nil
	}
	if err != nil {
		return minedTx{}, false, fmt.Errorf("watch: the receipt of %s: %w", h, err)
	}
	m := minedTx{block: rc.BlockNumber.Uint64(), fee: eth.Fee(rc)}
	if m.block <= at {
		r.gasMined[h] = m
	}
	return m, true, nil
}

// ethGasScanMax bounds the blocks one reconciliation reads for the gas
// account's fundings (one eth_getBlockByNumber each): a scan further
// behind catches up over the next steps, the gas account not compared
// until it has reached the reconciled block.
const ethGasScanMax = 2048

// scanFundings reads the blocks above the last scanned, up to at (at most
// ethGasScanMax of them), for
// transactions paying the gas address from another (value above zero,
// succeeded): the fundings. The first scan starts at the configured
// StartBlock, or at the highest block a recorded funding names.
func (r *EthRecon) scanFundings(ctx context.Context, g *gasSnap, at uint64) error {
	if r.gasScanned == 0 {
		start := r.cfg.StartBlock
		for _, f := range g.fundings {
			if f.Height > 0 {
				start = max(start, uint64(f.Height))
			}
		}
		if start == 0 {
			start = 1
		}
		r.gasScanned = start - 1
	}
	signer := types.LatestSignerForChainID(new(big.Int).SetUint64(r.cfg.ChainID))
	end := min(at, r.gasScanned+ethGasScanMax)
	for n := r.gasScanned + 1; n <= end; n++ {
		cctx, cancel := context.WithTimeout(ctx, eth.CallTimeout)
		blk, err := r.node.Eth().BlockByNumber(cctx, new(big.Int).SetUint64(n))
		cancel()
		if err != nil {
			return fmt.Errorf("watch: block %d (the gas account's fundings): %w", n, err)
		}
		for _, tx := range blk.Transactions() {
			if tx.To() == nil || *tx.To() != g.address || tx.Value().Sign() <= 0 {
				continue
			}
			if from, err := types.Sender(signer, tx); err != nil || from == g.address {
				continue // its own ether back to itself: no funding
			}
			cctx, cancel := context.WithTimeout(ctx, eth.CallTimeout)
			rc, err := r.node.Eth().TransactionReceipt(cctx, tx.Hash())
			cancel()
			if err != nil {
				return fmt.Errorf("watch: the receipt of %s: %w", tx.Hash(), err)
			}
			if rc.Status != types.ReceiptStatusSuccessful {
				continue
			}
			amt, err := chain.AmountFromBig(tx.Value())
			if err != nil {
				return fmt.Errorf("watch: funding %s: %w", tx.Hash(), err)
			}
			r.gasSeen[tx.Hash()] = seenFunding{block: n, amount: amt}
		}
		r.gasScanned = n
	}
	return nil
}

// reconcileGas reconciles the gas account at block at (its hash h):
// it scans the blocks for fundings, journals those not yet recorded
// (fund_gas_account with their block, once a transaction), and compares.
// While the scan has not reached at it compares nothing (nil).
func (r *EthRecon) reconcileGas(ctx context.Context, g *gasSnap, code string, at uint64, h chain.ID) (*EthGasBalance, error) {
	if err := r.scanFundings(ctx, g, at); err != nil {
		return nil, err
	}
	if r.gasScanned < at {
		r.log.Info("gas account fundings: scan catching up", "scanned", r.gasScanned, "block", at)
		return nil, nil
	}
	e := &EthGasBalance{Address: g.address.Hex(), Block: at, Ledger: g.ledger}
	spent := new(big.Int)
	for _, b := range g.batches {
		e.Recorded = sum(e.Recorded, b.recorded)
		m, ok, err := r.mined(ctx, b.tx, at)
		if err != nil {
			return nil, err
		}
		if ok && m.block <= at {
			spent.Add(spent, m.fee)
		}
	}
	var err error
	if e.Spent, err = chain.AmountFromBig(spent); err != nil {
		return nil, err
	}
	recorded := map[common.Hash]bool{}
	for _, f := range g.fundings {
		th := common.HexToHash(f.Tx)
		recorded[th] = true
		above := f.Height > 0 && uint64(f.Height) > at
		if f.Height == 0 {
			m, ok, err := r.mined(ctx, th, at)
			if err != nil {
				return nil, err
			}
			above = !ok || m.block > at
		}
		if above {
			e.FundedAbove = sum(e.FundedAbove, f.Amount.Ledger())
		}
	}
	var journal []core.FundGasAccount
	for th, s := range r.gasSeen {
		if recorded[th] {
			delete(r.gasSeen, th)
			continue
		}
		if s.block <= at {
			e.Unjournaled = sum(e.Unjournaled, s.amount)
		}
		journal = append(journal, core.FundGasAccount{Asset: code, TxHash: th.Hex(), Amount: s.amount, Height: int32(s.block)})
	}
	v, err := r.b.Balance(ctx, g.address.Hex(), "", h)
	if err != nil {
		return nil, fmt.Errorf("watch: reconcile the gas account %s: %w", g.address.Hex(), err)
	}
	e.Chain = v
	exp := new(big.Int).Add(e.Ledger.Big(), e.Recorded.Big())
	exp.Sub(exp, e.Spent.Big())
	exp.Sub(exp, e.FundedAbove.Big())
	exp.Add(exp, e.Unjournaled.Big())
	if exp.Sign() < 0 {
		exp.SetInt64(0) // more spent than the account holds: the chain side shows it
	}
	if e.Expected, err = chain.AmountFromBig(exp); err != nil {
		return nil, err
	}
	// The fundings found, journaled after the comparison counted them in
	// flight: a failure to journal is retried at the next step.
	sortFundings(journal)
	for _, f := range journal {
		o, err := r.core.Submit(ctx, r.cfg.Now(), f)
		if err == nil {
			err = o.Err
		}
		if err != nil && !errors.Is(err, core.ErrGasFundingExists) {
			r.log.Warn("gas account funding not recorded", "tx", f.TxHash, "err", err)
		}
	}
	return e, nil
}

// sortFundings orders fundings by block, then hash.
func sortFundings(fs []core.FundGasAccount) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && (fs[j].Height < fs[j-1].Height || fs[j].Height == fs[j-1].Height && fs[j].TxHash < fs[j-1].TxHash); j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

// haltGas halts ETH withdrawals, opens the incident mismatch-<asset>-gas
// and alerts on a gas account difference beyond the tolerance, once
// while it lasts.
func (r *EthRecon) haltGas(ctx context.Context, code string, e *EthGasBalance) error {
	d := e.Difference()
	why := fmt.Sprintf("gas account %s: ledger %s wei (%s with what is in flight: gas recorded %s, spent on chain at or below the block %s, fundings above the block %s, fundings not yet journaled %s), chain %s wei at block %d; difference %s wei (tolerance %s)",
		e.Address, e.Ledger, e.Expected, e.Recorded, e.Spent, e.FundedAbove, e.Unjournaled, e.Chain, e.Block, d, r.cfg.Tolerance)
	return r.mismatched.raise(ctx, r.core, r.cfg.Now(), r.log, r.cfg.Alert, r.cfg.Tolerance.Big(), mismatch{
		Scope: "gas", Figures: e.Expected.String() + ":" + e.Chain.String(), Diff: d, Code: code,
		Title: "gas account: ledger and chain differ", Why: why,
		Log: "GAS ACCOUNT RECONCILIATION MISMATCH", LogAttrs: []any{"address", e.Address, "expected", e.Expected.String(), "chain", e.Chain.String(), "block", e.Block},
		Halt:     []ledger.AssetID{r.cfg.Asset},
		Incident: incident.Incident{ID: "mismatch-" + code + "-gas", Asset: code, Detector: "reconciliation", Reason: why},
	})
}

// GasBalance returns the last reconciliation of the gas account (nil
// before one, or with no gas account registered).
func (r *EthRecon) GasBalance() *EthGasBalance {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gas == nil {
		return nil
	}
	g := *r.gas
	return &g
}
