package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sort"
	"sync"
	"time"

	ethereum "github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/alert"
	"kinko/internal/chain"
	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ethwallet"
	"kinko/internal/ethwallet/book"
	"kinko/internal/incident"
	"kinko/internal/ledger"
	"kinko/internal/reserves"
	"kinko/internal/withdraw"
)

// ethReconMaxAddresses bounds the addresses one reconciliation reads a
// balance of (one eth_getBalance each, at the reconciled block).
const ethReconMaxAddresses = 100_000

// ethReconExecWindow bounds how far below the reconciled block the
// executions of journaled batches not yet confirmed are searched for
// (eth_getLogs' range): the watcher of executions and the signer confirm
// a batch within blocks of its execution, so one executed further back
// and still not confirmed is itself a difference to look at.
const ethReconExecWindow = 8192

// ErrReconTooMany reports more addresses to reconcile than
// ethReconMaxAddresses: the reconciliation does not run.
var ErrReconTooMany = fmt.Errorf("watch: more than %d addresses to reconcile", ethReconMaxAddresses)

// EthReconConfig configures the reconciliation of the Safes' Ether with
// the ledger.
type EthReconConfig struct {
	Asset ledger.AssetID
	// ChainID is the node's chain id: every Safe wallet of the asset
	// whose deposit addresses are summed must name it.
	ChainID uint64
	// Safes are the Safes pinned in the watcher's configuration; each
	// with a Wallet is summed into that wallet's chain side.
	Safes []WatchedSafe
	// Confirmations is the depth reconciled: the block Confirmations-1
	// below the node's tip, the depth at which the deposit watcher has
	// credited (it must be the deposit watcher's; default
	// DefaultEtherConfirmations).
	Confirmations int32
	// Tolerance is the difference, in wei, either way, that halts
	// nothing.
	Tolerance ledger.Amount
	// Reserves is the hot cap and target (default reserves.DefaultPolicy).
	Reserves reserves.Policy
	// Deposits, if set, is the deposit watcher of the asset: the deposits
	// it has seen at the reconciled depth and not yet credited (kept
	// while deposits are halted, or not yet stepped) are in flight.
	Deposits *EtherDeposits
	// StartBlock is the first block searched for the executions of
	// journaled batches not yet confirmed (and at most 8,192 blocks below
	// the reconciled one).
	StartBlock uint64
	Logger     *slog.Logger
	Now        func() time.Time
	// Alert, if set, receives the alerts: a mismatch or a shortfall
	// (critical), the hot share above the cap, the house short (warning).
	Alert func(alert.Alert)
}

// EthBalance is one wallet's reconciliation at one block. Ledger is its
// custody account now; Expected what the chain should hold at the
// reconciled block given what is in flight:
//
//	Expected = Ledger + Confirmed + Deposits + CeremonyIn - Executed - Credited - CeremonyOut
//
// where Confirmed is the batches the ledger has paid (ConfirmBatch) whose
// execution is above the reconciled block, Executed the journaled
// batches not yet confirmed whose SafeTx the Safe executed at or below
// it (its ExecutionSuccess log), Deposits the deposits at or below it to
// the wallet's handed-out addresses that the deposit watcher has seen
// and custody has not yet credited, Credited the deposits credited whose
// block is above it. Chain is the sum of eth_getBalance of the wallet's
// addresses at the reconciled block's hash. The block is Confirmations-1
// below the node's tip; for a cold customer wallet (the deposits') it is
// also at most Confirmations-1 below the deposit watcher's journaled
// checkpoint, so that a deposit the watcher has not read yet is on
// neither side.
type EthBalance struct {
	Wallet    uint32
	Kind      custody.WalletKind
	Block     uint64 // the block reconciled
	Addresses int
	Ledger    ledger.Amount
	Confirmed ledger.Amount
	Deposits  ledger.Amount
	Credited  ledger.Amount
	Executed  ledger.Amount
	// CeremonyIn and CeremonyOut are the Ethereum ceremonies' payments
	// the chain and the ledger place on different sides of the block:
	// what the wallet got on chain at or below it and the ledger has not
	// confirmed, plus what it paid in a ceremony confirmed above it (In);
	// what it paid on chain not yet confirmed, plus what it got in one
	// confirmed above it (Out).
	CeremonyIn  ledger.Amount
	CeremonyOut ledger.Amount
	Expected    ledger.Amount
	Chain       ledger.Amount
}

// Difference is Expected less Chain, in wei: positive when the chain
// holds less than the ledger says.
func (b EthBalance) Difference() *big.Int {
	return new(big.Int).Sub(b.Expected.Big(), b.Chain.Big())
}

// EthRecon reconciles, at every block, what each Ether wallet holds on
// chain with its ledger account, as the Bitcoin reconciliation does: the
// chain read at a fixed depth (Confirmations-1 below the tip, by block
// hash), the ledger side brought to that block by what is in flight
// (EthBalance), so a deposit not yet credited or a batch executed and not
// yet confirmed is no difference. A wallet's addresses are its pinned
// Safes (WatchedSafe.Wallet) and, for a cold customer Safe wallet, its
// deposit addresses handed out (derived from its descriptor). A
// difference beyond the tolerance either way halts the asset's
// withdrawals, opens an incident (mismatch-ETH-<wallet>) and alerts, once
// while it lasts. At the same block the reserves checks run on the
// asset's row (customer wallets against liabilities, the hot share
// against its cap, the house's backing), with each watched wallet's chain
// figure brought to the ledger's moment (Ledger less the difference).
// A wallet of the asset with no address known (no pinned Safe and no
// deposit address handed out) is left out of the comparison.
type EthRecon struct {
	core Core
	b    chain.Backend
	node *eth.Client
	cfg  EthReconConfig
	log  *slog.Logger
	book *book.Book

	mu         sync.Mutex
	at         uint64 // the last block reconciled; 0 before one
	atDeposits uint64 // the last block the deposit wallets were reconciled at
	last       []EthBalance
	mismatched mismatches
	rc         reserveCheck

	// The house gas account's side: the last reconciliation, the
	// receipts read at or below a reconciled block, the fundings found
	// in blocks and not yet seen recorded, the last block scanned for
	// them, the difference raised while it lasts.
	gas        *EthGasBalance
	gasSent    map[string]sentTx
	gasMined   map[common.Hash]minedTx
	gasSeen    map[common.Hash]seenFunding
	gasScanned uint64
}

// NewEthRecon returns the reconciliation of cfg.Asset's Safe wallets over
// b (balances at a block hash) and node (the Safes' execution logs); art
// are the installed Safe contracts the deposit addresses commit to.
func NewEthRecon(c Core, b chain.Backend, node *eth.Client, art *safe.Artifacts, cfg EthReconConfig) (*EthRecon, error) {
	if b.Family() != chain.Ethereum {
		return nil, fmt.Errorf("watch: an Ether reconciliation needs an Ethereum backend, not %s", b.Family())
	}
	if cfg.ChainID == 0 {
		return nil, errors.New("watch: the node's chain id is needed")
	}
	if cfg.Confirmations <= 0 {
		cfg.Confirmations = DefaultEtherConfirmations
	}
	if cfg.Reserves == (reserves.Policy{}) {
		cfg.Reserves = reserves.DefaultPolicy
	}
	if err := cfg.Reserves.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &EthRecon{core: c, b: b, node: node, cfg: cfg, log: cfg.Logger, book: book.New(art), mismatched: map[string]bool{},
		gasSent: map[string]sentTx{}, gasMined: map[common.Hash]minedTx{}, gasSeen: map[common.Hash]seenFunding{}}
	r.rc = reserveCheck{core: c, asset: cfg.Asset, policy: cfg.Reserves, tol: cfg.Tolerance, now: cfg.Now, alert: cfg.Alert, log: cfg.Logger, flags: map[string]bool{}}
	return r, nil
}

// reconWallet is what the state says of one wallet of the asset.
type reconWallet struct {
	w    custody.Wallet
	bal  ledger.Amount
	next uint32
}

// openBatch is a journaled Safe batch the reconciliation must place
// against the reconciled block.
type openBatch struct {
	hash      common.Hash
	safe      common.Address
	amount    ledger.Amount
	confirmed bool
	height    int32
}

// openCeremony is a journaled Ethereum ceremony the reconciliation must
// place against the reconciled block: its Safe and source wallet, and
// each payment.
type openCeremony struct {
	hash      common.Hash
	safe      common.Address
	source    uint32
	pays      []custody.SafePayment
	confirmed bool
	height    int32
}

// snapshot is what one reconciliation reads from the state, at once.
type snapshot struct {
	code    string
	wallets []reconWallet
	hot     uint32 // the hot customer wallet paying the batches; 0 if none
	batches []openBatch
	cers    []openCeremony
	depositSide
	// checkpoint is the deposit watcher's journaled height (-1: none).
	checkpoint int32
	// gas is the asset's house gas account, if one is registered.
	gas *gasSnap
}

// depositAt is a credited deposit's amount and block height.
type depositAt struct {
	height int32
	amount ledger.Amount
}

// depositSide is what the state holds of a deposit watcher's deposits,
// for a reconciliation: which of the watcher's pending deposits custody
// holds already, and the credited deposits (in the ledger) of one asset by
// wallet, with their blocks' heights.
type depositSide struct {
	credited map[custody.Outpoint]bool
	deposits map[uint32][]depositAt
}

// readDeposits reads from s the deposit side of the pending deposits pend
// and of the deposits of asset (0: the wallets' own coin; else a token's
// asset) to the wallets ours.
func readDeposits(s *core.State, pend []EtherPending, ours map[uint32]bool, asset ledger.AssetID) depositSide {
	d := depositSide{credited: map[custody.Outpoint]bool{}, deposits: map[uint32][]depositAt{}}
	for _, p := range pend {
		op := custody.Outpoint{TxID: p.Tx.Bytes(), Vout: p.Vout}
		if _, ok := s.Custody.Deposit(op); ok {
			d.credited[op] = true
		}
	}
	s.Custody.Deposits(func(dep *custody.Deposit) bool {
		if ours[dep.Wallet] && dep.Asset == asset && (dep.State == custody.DepositCredited || dep.State == custody.DepositReview) {
			d.deposits[dep.Wallet] = append(d.deposits[dep.Wallet], depositAt{height: dep.Height, amount: dep.Value()})
		}
		return true
	})
	return d
}

// inFlight returns the deposits to wallet in flight at block at: those
// of pend seen at or below it, to an address handed out (below next), not
// yet credited; and those credited from blocks above it.
func (d depositSide) inFlight(pend []EtherPending, wallet, next uint32, at uint64) (seen, above ledger.Amount) {
	for _, p := range pend {
		op := custody.Outpoint{TxID: p.Tx.Bytes(), Vout: p.Vout}
		if p.Wallet == wallet && p.Index < next && p.Height > 0 && uint64(p.Height) <= at && !d.credited[op] {
			seen = sum(seen, p.Amount)
		}
	}
	for _, c := range d.deposits[wallet] {
		if c.height > 0 && uint64(c.height) > at {
			above = sum(above, c.amount)
		}
	}
	return seen, above
}

// read takes the state's side. The state is read before the node's tip:
// whatever it has credited or confirmed is then at or below that tip.
func (r *EthRecon) read(pend []EtherPending) snapshot {
	var sn snapshot
	sn.checkpoint = -1
	r.core.Read(func(s *core.State) {
		if cp, ok := s.Checkpoints[r.cfg.Asset]; ok {
			sn.checkpoint = cp.Height
		}
		a, ok := s.Ledger.Asset(r.cfg.Asset)
		if !ok {
			return
		}
		sn.code = a.Code
		sn.gas = r.readGas(s, a.Code, r.cfg.Asset)
		for _, w := range s.Custody.Wallets() {
			if w.Asset != r.cfg.Asset {
				continue
			}
			acct, _ := s.Ledger.Account(w.Account())
			sn.wallets = append(sn.wallets, reconWallet{w: w, bal: acct.Balance(), next: w.NextIndex})
			if w.Kind == custody.HotCustomer && sn.hot == 0 {
				sn.hot = w.ID
			}
		}
		for _, b := range s.Withdraw.Batches() {
			if b.Safe == nil || b.Asset != a.Code || b.Status == withdraw.BatchFailed {
				continue
			}
			var amt ledger.Amount
			for _, id := range b.Withdrawals {
				wd, _ := s.Withdraw.Get(id)
				hr, _ := s.Ledger.Transfer(ledger.ID{Hi: wd.HoldHi, Lo: wd.HoldLo})
				// The hold carries the withdrawal fee (Withdrawal.Fee),
				// which stays in the ledger: only the amount leaves the Safe.
				paid, under := hr.Amount.Sub(ledger.Amount(wd.Fee))
				if under {
					paid = hr.Amount
				}
				amt, _ = amt.Add(paid)
			}
			sn.batches = append(sn.batches, openBatch{hash: common.Hash(b.TxID), safe: common.HexToAddress(b.Safe.Safe), amount: amt,
				confirmed: b.Status == withdraw.BatchConfirmed, height: b.Height})
		}
		ours := map[uint32]bool{}
		for _, rw := range sn.wallets {
			ours[rw.w.ID] = true
		}
		for _, c := range s.Custody.Ceremonies() {
			if c.Safe == nil || !ours[c.Source] || c.State == custody.CeremonyCancelled {
				continue
			}
			sn.cers = append(sn.cers, openCeremony{hash: common.Hash(c.TxID), safe: common.HexToAddress(c.Safe.Safe), source: c.Source, pays: c.Pays,
				confirmed: c.State == custody.CeremonyConfirmed, height: c.Height})
		}
		cold := map[uint32]bool{}
		for _, rw := range sn.wallets {
			cold[rw.w.ID] = rw.w.Kind == custody.ColdCustomer
		}
		// The wallets' own Ether: a token's deposits are the token
		// reconciliation's.
		sn.depositSide = readDeposits(s, pend, cold, 0)
	})
	return sn
}

// Step reconciles the block Confirmations-1 below the node's tip, if it
// has not yet: it reads both sides, halts on a difference beyond the
// tolerance and runs the reserves checks. It returns the block
// reconciled (0 when the chain is not yet that deep) and any error.
func (r *EthRecon) Step(ctx context.Context) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var pend []EtherPending
	if r.cfg.Deposits != nil {
		pend = r.cfg.Deposits.Pending() // before the state: a deposit credited since is then in both, and counted once
	}
	sn := r.read(pend)
	if sn.code == "" {
		return 0, fmt.Errorf("watch: asset %d not in the ledger", r.cfg.Asset)
	}
	tip, err := r.b.Tip(ctx)
	if err != nil {
		return 0, err
	}
	depth := uint64(r.cfg.Confirmations) - 1
	if tip.Height < depth+1 {
		return 0, nil
	}
	at := tip.Height - depth
	// The deposit wallets at the deposit watcher's depth: what it has
	// not read yet is not in the ledger, nor on the chain compared.
	atDeposits := at
	if sn.checkpoint >= 0 {
		if cp := uint64(sn.checkpoint); cp < depth+1 {
			atDeposits = 0
		} else {
			atDeposits = min(at, cp-depth)
		}
	}
	if at == r.at && atDeposits == r.atDeposits && (sn.gas == nil || r.gasScanned >= at) {
		return at, nil
	}
	hashes := map[uint64]chain.ID{}
	for _, h := range []uint64{at, atDeposits} {
		if _, ok := hashes[h]; ok || h == 0 {
			continue
		}
		if hashes[h], err = r.b.HashAt(ctx, h); err != nil {
			return 0, err
		}
	}
	addrs, err := r.addresses(sn)
	if err != nil {
		return 0, err
	}
	executed, err := r.executed(ctx, sn, at)
	if err != nil {
		return 0, err
	}
	var out []EthBalance
	for _, rw := range sn.wallets {
		as := addrs[rw.w.ID]
		if len(as) == 0 {
			continue
		}
		wat := at
		if rw.w.Kind == custody.ColdCustomer {
			wat = atDeposits
		}
		if wat == 0 {
			continue
		}
		e := EthBalance{Wallet: rw.w.ID, Kind: rw.w.Kind, Block: wat, Addresses: len(as), Ledger: rw.bal}
		for _, a := range as {
			v, err := r.b.Balance(ctx, a.Hex(), "", hashes[wat])
			if err != nil {
				return 0, fmt.Errorf("watch: reconcile wallet %d: %w", rw.w.ID, err)
			}
			e.Chain = sum(e.Chain, v)
		}
		if rw.w.ID == sn.hot {
			for _, b := range sn.batches {
				switch {
				case b.confirmed && b.height > 0 && uint64(b.height) > wat:
					e.Confirmed = sum(e.Confirmed, b.amount)
				case !b.confirmed && executed[b.hash] > 0:
					e.Executed = sum(e.Executed, b.amount)
				}
			}
		}
		for _, c := range sn.cers {
			var paid, got ledger.Amount
			for _, p := range c.pays {
				if c.source == rw.w.ID {
					paid = sum(paid, p.Amount)
				}
				if p.Wallet == rw.w.ID {
					got = sum(got, p.Amount)
				}
			}
			switch {
			case c.confirmed && c.height > 0 && uint64(c.height) > wat:
				e.CeremonyIn, e.CeremonyOut = sum(e.CeremonyIn, paid), sum(e.CeremonyOut, got)
			case !c.confirmed && executed[c.hash] > 0 && executed[c.hash] <= wat:
				e.CeremonyIn, e.CeremonyOut = sum(e.CeremonyIn, got), sum(e.CeremonyOut, paid)
			}
		}
		e.Deposits, e.Credited = sn.inFlight(pend, rw.w.ID, rw.next, wat)
		exp := new(big.Int).Add(e.Ledger.Big(), e.Confirmed.Big())
		exp.Add(exp, e.Deposits.Big())
		exp.Add(exp, e.CeremonyIn.Big())
		exp.Sub(exp, e.Executed.Big())
		exp.Sub(exp, e.Credited.Big())
		exp.Sub(exp, e.CeremonyOut.Big())
		if exp.Sign() < 0 {
			exp.SetInt64(0) // more in flight than the account holds: the chain side shows it
		}
		if e.Expected, err = chain.AmountFromBig(exp); err != nil {
			return 0, err
		}
		out = append(out, e)
	}
	var gas *EthGasBalance
	if sn.gas != nil {
		if gas, err = r.reconcileGas(ctx, sn.gas, sn.code, at, hashes[at]); err != nil {
			return 0, err
		}
	}
	r.atDeposits = atDeposits
	r.at, r.last, r.gas = at, out, gas
	r.log.Info("Ether reconciled", "asset", sn.code, "block", at, "deposit_block", atDeposits, "wallets", len(out), "largest_difference_wei", largestDifference(out).String())
	if err := r.halt(ctx, sn.code, out); err != nil {
		return at, err
	}
	if gas != nil {
		r.log.Info("Ether gas account reconciled", "address", gas.Address, "block", at, "difference_wei", gas.Difference().String())
		if err := r.haltGas(ctx, sn.code, gas); err != nil {
			return at, err
		}
	}
	onChain := map[uint32]ledger.Amount{}
	for _, e := range out {
		// The chain's figure at the ledger's moment: the ledger less the
		// unexplained difference.
		v := new(big.Int).Sub(e.Ledger.Big(), e.Difference())
		if v.Sign() < 0 {
			v.SetInt64(0)
		}
		onChain[e.Wallet], _ = chain.AmountFromBig(v)
	}
	row, seq := reserveRow(r.core, r.cfg.Asset, r.cfg.Reserves, onChain)
	if row == nil {
		return at, nil
	}
	return at, r.rc.check(ctx, row, at, seq)
}

func sum(a, b ledger.Amount) ledger.Amount {
	s, o := a.Add(b)
	if o {
		return ledger.Amount{Hi: ^uint64(0), Lo: ^uint64(0)}
	}
	return s
}

// addresses returns each wallet's addresses: its pinned Safes and, for a
// cold customer Safe wallet, the deposit addresses handed out.
func (r *EthRecon) addresses(sn snapshot) (map[uint32][]common.Address, error) {
	out := map[uint32][]common.Address{}
	seen := map[common.Address]bool{}
	n := 0
	add := func(w uint32, a common.Address) error {
		if seen[a] {
			return nil
		}
		if n++; n > ethReconMaxAddresses {
			return ErrReconTooMany
		}
		seen[a] = true
		out[w] = append(out[w], a)
		return nil
	}
	for _, s := range r.cfg.Safes {
		if s.Wallet != 0 {
			if err := add(s.Wallet, s.Address); err != nil {
				return nil, err
			}
		}
	}
	for _, rw := range sn.wallets {
		if rw.w.Kind != custody.ColdCustomer || rw.next == 0 || !rw.w.Safe() {
			continue
		}
		desc, err := ethwallet.Parse(rw.w.Descriptor)
		if err != nil {
			return nil, fmt.Errorf("%w: wallet %d: %w", ErrWalletChain, rw.w.ID, err)
		}
		if desc.ChainID != r.cfg.ChainID {
			return nil, fmt.Errorf("%w: wallet %d is on chain %d, the node on %d", ErrWalletChain, rw.w.ID, desc.ChainID, r.cfg.ChainID)
		}
		if n+int(rw.next) > ethReconMaxAddresses {
			return nil, ErrReconTooMany
		}
		if err := r.book.Add(rw.w.ID, desc, rw.next); err != nil {
			return nil, fmt.Errorf("watch: wallet %d: %w", rw.w.ID, err)
		}
		for i := range rw.next {
			a, _ := r.book.Address(rw.w.ID, i)
			if err := add(rw.w.ID, a); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// executed returns, for each of the journaled batches and Ethereum
// ceremonies not yet confirmed that the Safe executed successfully at or
// below block at, the block it executed in.
func (r *EthRecon) executed(ctx context.Context, sn snapshot, at uint64) (map[common.Hash]uint64, error) {
	var hashes []common.Hash
	var safes []common.Address
	for _, b := range sn.batches {
		if !b.confirmed {
			hashes = append(hashes, b.hash)
			safes = append(safes, b.safe)
		}
	}
	for _, c := range sn.cers {
		if !c.confirmed {
			hashes = append(hashes, c.hash)
			safes = append(safes, c.safe)
		}
	}
	out := map[common.Hash]uint64{}
	if len(hashes) == 0 {
		return out, nil
	}
	from := min(r.cfg.StartBlock, at)
	if at > ethReconExecWindow {
		from = max(from, at-ethReconExecWindow)
	}
	cctx, cancel := context.WithTimeout(ctx, eth.CallTimeout)
	defer cancel()
	logs, err := r.node.Eth().FilterLogs(cctx, ethereum.FilterQuery{FromBlock: new(big.Int).SetUint64(from), ToBlock: new(big.Int).SetUint64(at),
		Addresses: safes, Topics: [][]common.Hash{{safe.EventExecutionSuccess}, hashes}})
	if err != nil {
		return nil, fmt.Errorf("watch: the batches' executions: %w", err)
	}
	for _, l := range logs {
		if l.Removed || len(l.Topics) != 2 {
			continue
		}
		for _, b := range sn.batches {
			if b.hash == l.Topics[1] && b.safe == l.Address {
				out[b.hash] = l.BlockNumber
			}
		}
		for _, c := range sn.cers {
			if c.hash == l.Topics[1] && c.safe == l.Address {
				out[c.hash] = l.BlockNumber
			}
		}
	}
	return out, nil
}

// halt halts and records each difference beyond the tolerance, once
// while it lasts.
func (r *EthRecon) halt(ctx context.Context, code string, bs []EthBalance) error {
	for _, e := range bs {
		d := e.Difference()
		why := fmt.Sprintf("wallet %d (%s): ledger %s wei (%s with what is in flight: batches confirmed above the block %s, executed and not confirmed %s, deposits not yet credited %s, credited above the block %s, ceremonies in %s, out %s), chain %s wei in %d addresses at block %d; difference %s wei (tolerance %s)",
			e.Wallet, e.Kind, e.Ledger, e.Expected, e.Confirmed, e.Executed, e.Deposits, e.Credited, e.CeremonyIn, e.CeremonyOut, e.Chain, e.Addresses, e.Block, d, r.cfg.Tolerance)
		if err := r.mismatched.raise(ctx, r.core, r.cfg.Now(), r.log, r.cfg.Alert, r.cfg.Tolerance.Big(), mismatch{
			Scope: fmt.Sprint(e.Wallet), Figures: e.Expected.String() + ":" + e.Chain.String(), Diff: d, Code: code,
			Title: "ledger and chain differ", Why: why,
			Log: "RECONCILIATION MISMATCH", LogAttrs: []any{"wallet", e.Wallet, "expected", e.Expected.String(), "chain", e.Chain.String(), "block", e.Block},
			Halt:     []ledger.AssetID{r.cfg.Asset},
			Incident: incident.Incident{ID: fmt.Sprintf("mismatch-%s-%d", code, e.Wallet), Asset: code, Detector: "reconciliation", Reason: why},
		}); err != nil {
			return err
		}
	}
	return nil
}

// Balances returns the last reconciliation, by wallet, and the block it
// was at (0 before one).
func (r *EthRecon) Balances() ([]EthBalance, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]EthBalance(nil), r.last...)
	sort.Slice(out, func(i, j int) bool { return out[i].Wallet < out[j].Wallet })
	return out, r.at
}

// MatchWallets sets each pinned Safe's Wallet to the custody wallet of
// the asset whose Safe descriptor names the owners and threshold the Safe
// has on the node (read with getOwners and getThreshold), so that an
// operator pins addresses and the reconciliation finds their accounts. A
// Safe no wallet describes keeps Wallet 0 (its executions are still
// watched; it is reconciled nowhere); one two wallets describe is an
// error.
func MatchWallets(ctx context.Context, c Core, node *eth.Client, asset ledger.AssetID, safes []WatchedSafe) ([]WatchedSafe, error) {
	type described struct {
		id        uint32
		owners    map[common.Address]bool
		threshold int
	}
	var ws []described
	var bad error
	c.Read(func(s *core.State) {
		for _, w := range s.Custody.Wallets() {
			if w.Asset != asset || !w.Safe() {
				continue
			}
			d, err := ethwallet.Parse(w.Descriptor)
			if err != nil {
				bad = fmt.Errorf("%w: wallet %d: %w", ErrWalletChain, w.ID, err)
				return
			}
			e := described{id: w.ID, owners: map[common.Address]bool{}, threshold: int(d.Threshold)}
			for _, o := range d.Owners {
				e.owners[common.Address(o)] = true
			}
			ws = append(ws, e)
		}
	})
	if bad != nil {
		return nil, bad
	}
	out := append([]WatchedSafe(nil), safes...)
	for i, s := range out {
		cfg, err := safe.Owners(ctx, node, s.Address)
		if err != nil {
			return nil, fmt.Errorf("watch: the owners of the %s Safe %s: %w", s.Kind, s.Address, err)
		}
		for _, w := range ws {
			if w.threshold != cfg.Threshold || len(w.owners) != len(cfg.Owners) {
				continue
			}
			all := true
			for _, o := range cfg.Owners {
				all = all && w.owners[o]
			}
			if !all {
				continue
			}
			if out[i].Wallet != 0 && out[i].Wallet != w.id {
				return nil, fmt.Errorf("watch: the %s Safe %s is described by wallets %d and %d", s.Kind, s.Address, out[i].Wallet, w.id)
			}
			out[i].Wallet = w.id
		}
	}
	return out, nil
}

// Run steps every poll until ctx ends; a failed step is logged and tried
// again at the next.
func (r *EthRecon) Run(ctx context.Context, poll time.Duration) {
	(&EtherWatch{Recon: r, Logger: r.log}).Run(ctx, poll)
}
