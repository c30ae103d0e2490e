package signer

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"time"

	ethereum "github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/safe"
	"kinko/internal/core"
	"kinko/internal/cosigner"
	"kinko/internal/signer/view"
	"kinko/internal/withdraw"
)

// SafeCoSigner is the co-signer as the Ether hot signer sees it: it
// returns its owner signature of the SafeTx, or refuses.
type SafeCoSigner interface {
	CoSignSafeTx(ctx context.Context, req cosigner.SafeTxRequest) (safe.Signature, error)
}

// EthConfig configures the hot signer of a Safe.
type EthConfig struct {
	Backend Backend
	Node    *eth.Client
	Asset   string // "ETH"
	// ChainID, Safe and MultiSend are pinned in the signer's own
	// configuration (roots of trust), never read from the core: the hot
	// Safe it signs for and the MultiSendCallOnly its batches call.
	ChainID   uint64
	Safe      common.Address
	MultiSend common.Address
	// Key is hot owner key #1 of the Safe; Gas the house gas account's
	// key, which sends execTransaction and pays its gas.
	Key      *ecdsa.PrivateKey
	Gas      *ecdsa.PrivateKey
	CoSigner SafeCoSigner
	// GasLimit and MaxFeePerGas are what execTransaction is sent with,
	// told to the co-signer, which counts their product as the fee.
	GasLimit     uint64
	MaxFeePerGas *big.Int
	// MaxBatch bounds the withdrawals of one SafeTx (default
	// withdraw.MaxBatchOutputs).
	MaxBatch int
	Logger   *slog.Logger
	// beforeSend, in tests, simulates a crash between journaling the
	// signed transaction and sending it.
	beforeSend func() error
}

// EthSigner is the hot signer of a Safe: it batches queued Ether
// withdrawals into one SafeTx (one CALL for one withdrawal, a
// MultiSendCallOnly batch for several), journals it before anyone signs,
// signs its hash with hot key #1, gets the co-signer's signature, journals
// the execTransaction it sends from the gas account, and records the
// outcome on chain: ConfirmBatch once the Safe logged ExecutionSuccess for
// the SafeTx's hash, FailBatch (holds released) once the SafeTx can never
// execute: the Safe logged ExecutionFailure for it (its call failed and
// used the nonce) or its nonce moved past it. A transaction that reverts
// as a whole leaves the SafeTx executable, and the batch in flight. Every step is idempotent: after a
// crash the next Step finishes the same SafeTx, and the Safe's nonce
// makes a second execution of it impossible.
//
// When the core has the asset's house gas account registered (the view's
// GasAccount), the signer sends only from it and reports the gas each
// journaled execTransaction spent, from its receipt (gas used × effective
// gas price, exact wei), with ConfirmBatch or FailBatch: the core checks it
// against the journaled transaction's gas limit × fee cap and moves it
// out of the gas account's ledger account.
type EthSigner struct {
	cfg EthConfig
	// gasLedger: the core holds the gas account (set at each Step).
	gasLedger bool
}

// NewEth returns the hot signer of a Safe.
func NewEth(cfg EthConfig) (*EthSigner, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Asset == "" {
		cfg.Asset = "ETH"
	}
	if cfg.MaxBatch <= 0 || cfg.MaxBatch > withdraw.MaxBatchOutputs {
		cfg.MaxBatch = withdraw.MaxBatchOutputs
	}
	// A batch's execTransaction must pass the Safe's GS010 check with the
	// safeTxGas of its calls: no more calls than the gas limit carries.
	for cfg.MaxBatch > 1 && safe.ExecGasFor(cfg.MaxBatch) > cfg.GasLimit {
		cfg.MaxBatch--
	}
	switch {
	case cfg.Backend == nil || cfg.Node == nil || cfg.Key == nil || cfg.Gas == nil || cfg.CoSigner == nil:
		return nil, errors.New("signer: the Ether signer needs a core, a node, its owner key, the gas key and a co-signer")
	case cfg.Safe == (common.Address{}) || cfg.MultiSend == (common.Address{}):
		return nil, errors.New("signer: no pinned Safe or MultiSendCallOnly")
	case cfg.GasLimit == 0 || cfg.MaxFeePerGas == nil || cfg.MaxFeePerGas.Sign() <= 0:
		return nil, errors.New("signer: a gas limit and a max fee per gas are needed")
	case cfg.GasLimit < safe.ExecGasFor(1):
		return nil, fmt.Errorf("signer: a gas limit of %d is below the %d one withdrawal's execTransaction needs", cfg.GasLimit, safe.ExecGasFor(1))
	case cfg.Node.ChainID().Cmp(new(big.Int).SetUint64(cfg.ChainID)) != 0:
		return nil, fmt.Errorf("signer: the node is on chain %s, the Safe pinned on %d", cfg.Node.ChainID(), cfg.ChainID)
	}
	return &EthSigner{cfg: cfg}, nil
}

// Step finishes any batch in flight, then batches what is queued. It
// returns the batches it finished.
func (s *EthSigner) Step(ctx context.Context) ([]string, error) {
	v, err := s.cfg.Backend.View(ctx, s.cfg.Asset)
	if err != nil {
		return nil, err
	}
	from := crypto.PubkeyToAddress(s.cfg.Gas.PublicKey)
	if v.GasAccount != "" && v.GasAccount != from.Hex() {
		return nil, fmt.Errorf("signer: the core's %s gas account is %s, the gas key's address %s", s.cfg.Asset, v.GasAccount, from.Hex())
	}
	s.gasLedger = v.GasAccount != ""
	var done []string
	for _, b := range v.InFlight {
		if b.Safe == nil {
			continue
		}
		if err := s.finish(ctx, b); err != nil {
			return done, fmt.Errorf("signer: batch %s: %w", b.ID, err)
		}
		done = append(done, b.ID)
	}
	if v.Halted != "" {
		return done, fmt.Errorf("%w: %s", errHalted, v.Halted)
	}
	b, err := s.prepare(ctx, v)
	if err != nil || b == nil {
		return done, err
	}
	if err := s.finish(ctx, *b); err != nil {
		return done, fmt.Errorf("signer: batch %s: %w", b.ID, err)
	}
	return append(done, b.ID), nil
}

// Run steps every interval until ctx ends.
func (s *EthSigner) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if done, err := s.Step(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("ether signer step", "err", err)
		} else if len(done) > 0 {
			s.cfg.Logger.Info("ether batches done", "batches", done)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// prepare builds the SafeTx paying the queue at the Safe's next nonce and
// journals it (ReserveBatch), or returns nil when nothing is queued.
func (s *EthSigner) prepare(ctx context.Context, v view.View) (*withdraw.Batch, error) {
	var calls []safe.Call
	var ids []string
	for _, wd := range v.Queued {
		if len(calls) == s.cfg.MaxBatch {
			break
		}
		if !common.IsHexAddress(wd.Intent.Address) || !strings.HasPrefix(wd.Intent.Address, "0x") || wd.Intent.Amount.IsZero() {
			s.cfg.Logger.Warn("withdrawal not payable on Ethereum; left queued", "withdrawal", wd.ID, "address", wd.Intent.Address)
			continue
		}
		calls = append(calls, safe.Call{To: common.HexToAddress(wd.Intent.Address), Value: wd.Intent.Amount.Big()})
		ids = append(ids, wd.ID)
	}
	if len(calls) == 0 {
		return nil, nil
	}
	nonce, err := safe.Nonce(ctx, s.cfg.Node, s.cfg.Safe)
	if err != nil {
		return nil, fmt.Errorf("signer: the Safe's nonce: %w", err)
	}
	if !nonce.IsUint64() {
		return nil, fmt.Errorf("signer: the Safe's nonce %s", nonce)
	}
	var tx *safe.SafeTx
	if len(calls) == 1 {
		tx = safe.Transfer(calls[0].To, calls[0].Value, nonce)
	} else if tx, err = safe.Batch(s.cfg.MultiSend, calls, nonce); err != nil {
		return nil, err
	}
	chainID := new(big.Int).SetUint64(s.cfg.ChainID)
	h, err := tx.Hash(chainID, s.cfg.Safe)
	if err != nil {
		return nil, err
	}
	value := new(big.Int)
	if tx.Value != nil {
		value = tx.Value
	}
	b := withdraw.Batch{ID: "e-" + hex.EncodeToString(h[:8]), Asset: s.cfg.Asset, Withdrawals: ids, TxID: [32]byte(h),
		Safe: &withdraw.SafeBatch{ChainID: s.cfg.ChainID, Safe: s.cfg.Safe.Hex(), To: tx.To.Hex(), Value: value.String(),
			Data: "0x" + hex.EncodeToString(tx.Data), Operation: uint8(tx.Operation), Nonce: nonce.Uint64(),
			GasLimit: s.cfg.GasLimit, MaxFeePerGas: s.cfg.MaxFeePerGas.String()}}
	if err := s.cfg.Backend.Submit(ctx, core.ReserveBatch{Batch: b}); err != nil {
		return nil, err
	}
	b.Status = withdraw.BatchSigning
	return &b, nil
}

// finish signs, co-signs, journals, sends and settles a batch, from
// wherever it stands.
func (s *EthSigner) finish(ctx context.Context, b withdraw.Batch) error {
	tx, chainID, sa, err := core.SafeTxOf(b.Safe)
	if err != nil {
		return err
	}
	if sa != s.cfg.Safe || chainID.Uint64() != s.cfg.ChainID {
		return fmt.Errorf("the batch's Safe %s on chain %s is not the pinned %s", sa, chainID, s.cfg.Safe)
	}
	h := common.Hash(b.TxID)
	if b.Status == withdraw.BatchSigning {
		// A SafeTx already executed or passed (a crash after sending,
		// before journaling) is settled without signing again.
		if done, err := s.settled(ctx, b, tx, nil, false); done || err != nil {
			return err
		}
		mine, err := safe.Sign(h, s.cfg.Key)
		if err != nil {
			return err
		}
		// The gas the batch journaled: told to the co-signer, sent with.
		limit, fee, err := journaledGas(b)
		if err != nil {
			return err
		}
		theirs, err := s.cfg.CoSigner.CoSignSafeTx(ctx, cosigner.SafeTxRequest{Withdrawals: b.Withdrawals, Tx: tx, Hash: h,
			GasLimit: limit, MaxFeePerGas: fee})
		if err != nil {
			return fmt.Errorf("co-signer refused: %w", err)
		}
		sigs, err := safe.EncodeSignatures(h, []safe.Signature{mine, theirs})
		if err != nil {
			return fmt.Errorf("co-signer's signature: %w", err)
		}
		data, err := safe.ExecCalldata(tx, sigs)
		if err != nil {
			return err
		}
		signed, err := s.signGas(ctx, data, limit, fee)
		if err != nil {
			return err
		}
		bin, _ := signed.MarshalBinary()
		b.RawTx = hex.EncodeToString(bin)
		if err := s.cfg.Backend.Submit(ctx, core.RecordSigned{Batch: b.ID, RawTx: b.RawTx}); err != nil {
			return err
		}
	}
	if s.cfg.beforeSend != nil {
		if err := s.cfg.beforeSend(); err != nil {
			return err
		}
	}
	bin, err := hex.DecodeString(b.RawTx)
	if err != nil {
		return err
	}
	var signed types.Transaction
	if err := signed.UnmarshalBinary(bin); err != nil {
		return err
	}
	wait := true
	if err := s.cfg.Node.SendSigned(ctx, &signed); err != nil {
		if !sentBefore(err) {
			return err
		}
		// Nonce too low: this transaction is mined, or another of the
		// gas account's took its nonce; the chain tells which.
		wait = !strings.Contains(strings.ToLower(err.Error()), "nonce too low")
	}
	done, err := s.settled(ctx, b, tx, &signed, wait)
	if err != nil || done {
		return err
	}
	// The journaled transaction was replaced at the gas account's nonce
	// and the SafeTx is still to execute: the same execTransaction again,
	// at the gas account's next nonce, journaled before it is sent.
	again, err := s.signGas(ctx, signed.Data(), signed.Gas(), signed.GasFeeCap())
	if err != nil {
		return err
	}
	bin, _ = again.MarshalBinary()
	if err := s.cfg.Backend.Submit(ctx, core.RecordSigned{Batch: b.ID, RawTx: hex.EncodeToString(bin)}); err != nil {
		return err
	}
	if err := s.cfg.Node.SendSigned(ctx, again); err != nil && !sentBefore(err) {
		return err
	}
	done, err = s.settled(ctx, b, tx, again, true)
	if err == nil && !done {
		err = fmt.Errorf("transaction %s mined without settling the SafeTx %s", again.Hash(), common.Hash(b.TxID))
	}
	return err
}

// sentBefore tells whether a send's refusal means the node has the
// transaction, or one at its nonce, already: the outcome is then read
// from the chain.
func sentBefore(err error) bool {
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "already known") || strings.Contains(m, "nonce too low")
}

// journaledGas is the gas limit and max fee per gas an Ether batch
// journaled.
func journaledGas(b withdraw.Batch) (uint64, *big.Int, error) {
	fee, ok := new(big.Int).SetString(b.Safe.MaxFeePerGas, 10)
	if !ok || fee.Sign() <= 0 || b.Safe.GasLimit == 0 {
		return 0, nil, fmt.Errorf("the batch journaled gas %d at %q wei", b.Safe.GasLimit, b.Safe.MaxFeePerGas)
	}
	return b.Safe.GasLimit, fee, nil
}

// signGas signs execTransaction's call from the gas account with the gas
// limit and fee cap the batch journaled and the co-signer was told.
func (s *EthSigner) signGas(ctx context.Context, data []byte, limit uint64, feeCap *big.Int) (*types.Transaction, error) {
	from := crypto.PubkeyToAddress(s.cfg.Gas.PublicKey)
	cctx, cancel := context.WithTimeout(ctx, eth.CallTimeout)
	defer cancel()
	nonce, err := s.cfg.Node.Eth().PendingNonceAt(cctx, from)
	if err != nil {
		return nil, fmt.Errorf("signer: gas account's nonce: %w", err)
	}
	tip, err := s.cfg.Node.Eth().SuggestGasTipCap(cctx)
	if err != nil {
		return nil, fmt.Errorf("signer: gas tip: %w", err)
	}
	if tip.Cmp(feeCap) > 0 {
		tip = new(big.Int).Set(feeCap)
	}
	to := s.cfg.Safe
	chainID := new(big.Int).SetUint64(s.cfg.ChainID)
	t := types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: new(big.Int).Set(feeCap),
		Gas: limit, To: &to, Data: data})
	return types.SignTx(t, types.LatestSignerForChainID(chainID), s.cfg.Gas)
}

// ErrSafeNonceTaken reports a batch whose SafeTx can no longer execute:
// the Safe's nonce moved past it without executing it (another SafeTx at
// its nonce, which the watcher halts on).
var ErrSafeNonceTaken = errors.New("signer: the Safe's nonce moved past the batch's SafeTx")

// settled reads the batch's outcome on chain and journals it: the
// Safe's ExecutionSuccess for the SafeTx's hash is ConfirmBatch at its
// block; its ExecutionFailure (the call failed, the nonce used) is
// FailBatch, as is a nonce moved past it without either. A sent
// transaction that reverted as a whole with the nonce still at the
// SafeTx's is ErrSafeTxLive: nothing is journaled, since the SafeTx can
// still execute. With sent nil (nothing journaled as sent) only an
// execution already on chain settles it. It reports whether the batch is
// settled.
func (s *EthSigner) settled(ctx context.Context, b withdraw.Batch, tx *safe.SafeTx, sent *types.Transaction, wait bool) (bool, error) {
	var ex execution
	var gas *withdraw.GasSpent
	if sent != nil && wait {
		r, err := s.cfg.Node.WaitMined(ctx, sent.Hash())
		if err != nil {
			return false, err
		}
		// The receipt is read before the node's head (its state and log
		// filters) may show its block: its own logs tell whether it
		// executed the SafeTx, and how.
		if found, success := executesIn(r, s.cfg.Safe, common.Hash(b.TxID)); found && r.Status == types.ReceiptStatusSuccessful {
			ex = execution{found: true, success: success, height: int32(r.BlockNumber.Int64()), tx: r.TxHash}
			if s.gasLedger {
				gas = gasSpent(r)
			}
		}
	}
	if !ex.found {
		var err error
		if ex, err = s.executed(ctx, common.Hash(b.TxID)); err != nil {
			return false, err
		}
		// The gas of our journaled transaction, if it is the one that
		// executed the SafeTx.
		if ex.found && sent != nil && ex.tx == sent.Hash() {
			if gas, err = s.gasOf(ctx, sent); err != nil {
				return false, err
			}
		}
	}
	if ex.found {
		if ex.success {
			return true, s.cfg.Backend.Submit(ctx, core.ConfirmBatch{TxID: b.TxID, Height: ex.height, Gas: gas})
		}
		// The call failed and the SafeTx used its nonce (its safeTxGas
		// is not 0): it can never execute, so the holds go back.
		s.cfg.Logger.Warn("SafeTx call failed; batch failed", "batch", b.ID, "tx", ex.tx, "block", ex.height)
		return true, s.cfg.Backend.Submit(ctx, core.FailBatch{Batch: b.ID, Reason: fmt.Sprintf("the Safe's call failed (ExecutionFailure) in transaction %s, block %d: the SafeTx used nonce %s and can never execute", ex.tx, ex.height, tx.Nonce), Gas: gas})
	}
	nonce, err := safe.Nonce(ctx, s.cfg.Node, s.cfg.Safe)
	if err != nil {
		return false, fmt.Errorf("the Safe's nonce: %w", err)
	}
	if nonce.Cmp(tx.Nonce) > 0 {
		// Our transaction, if mined, reverted and spent gas all the same.
		var gas *withdraw.GasSpent
		if sent != nil {
			if gas, err = s.gasOf(ctx, sent); err != nil && !errors.Is(err, ethereum.NotFound) {
				return false, err
			}
		}
		if err := s.cfg.Backend.Submit(ctx, core.FailBatch{Batch: b.ID, Reason: fmt.Sprintf("the Safe's nonce %s moved past the SafeTx's %s without executing it", nonce, tx.Nonce), Gas: gas}); err != nil {
			return false, err
		}
		return true, fmt.Errorf("%w: nonce %s, the SafeTx's %s", ErrSafeNonceTaken, nonce, tx.Nonce)
	}
	if sent == nil {
		return false, nil
	}
	r, err := s.cfg.Node.Eth().TransactionReceipt(ctx, sent.Hash())
	if errors.Is(err, ethereum.NotFound) && !wait {
		return false, nil // replaced at its gas nonce: to send again
	}
	if err != nil {
		return false, fmt.Errorf("receipt of %s: %w", sent.Hash(), err)
	}
	if r.Status == types.ReceiptStatusSuccessful {
		return false, fmt.Errorf("transaction %s succeeded without executing the SafeTx %s", sent.Hash(), common.Hash(b.TxID))
	}
	// The whole transaction reverted (the Safe's own checks, not the
	// call: that would have used the nonce) and the nonce did not move:
	// the SafeTx, its signatures now public, stays executable. Failing
	// the batch would give the holds back while anyone can still pay it,
	// so it stays in flight for an operator.
	return false, fmt.Errorf("%w: execTransaction %s reverted in block %s with the Safe's nonce still %s", ErrSafeTxLive, sent.Hash(), r.BlockNumber, tx.Nonce)
}

// ErrSafeTxLive reports an execTransaction that reverted as a whole
// (not its call) while the Safe's nonce stays at the SafeTx's: the
// co-signed SafeTx can still execute, so its batch is neither confirmed
// nor failed.
var ErrSafeTxLive = errors.New("signer: the SafeTx's execution reverted and it stays executable")

// execution is what the Safe logged for a SafeTx's hash: found, and
// whether its call succeeded, in which transaction and block.
type execution struct {
	found, success bool
	height         int32
	tx             common.Hash
}

// executesIn reports whether a receipt holds safeAddr's ExecutionSuccess
// or ExecutionFailure log for the SafeTx hash, and which.
func executesIn(r *types.Receipt, safeAddr common.Address, hash common.Hash) (found, success bool) {
	for _, l := range r.Logs {
		if l.Address == safeAddr && len(l.Topics) >= 2 && l.Topics[1] == hash && !l.Removed &&
			(l.Topics[0] == safe.EventExecutionSuccess || l.Topics[0] == safe.EventExecutionFailure) {
			return true, l.Topics[0] == safe.EventExecutionSuccess
		}
	}
	return false, false
}

// gasOf reads what a mined transaction of the gas account spent, from its
// receipt, when the core holds the gas account (nil otherwise).
func (s *EthSigner) gasOf(ctx context.Context, sent *types.Transaction) (*withdraw.GasSpent, error) {
	if !s.gasLedger {
		return nil, nil
	}
	cctx, cancel := context.WithTimeout(ctx, eth.CallTimeout)
	defer cancel()
	r, err := s.cfg.Node.Eth().TransactionReceipt(cctx, sent.Hash())
	if err != nil {
		return nil, fmt.Errorf("receipt of %s: %w", sent.Hash(), err)
	}
	return gasSpent(r), nil
}

// gasSpent is a receipt's gas in wei, exactly: gas used × effective gas
// price.
func gasSpent(r *types.Receipt) *withdraw.GasSpent {
	price := new(big.Int)
	if r.EffectiveGasPrice != nil {
		price.Set(r.EffectiveGasPrice)
	}
	wei := new(big.Int).Mul(new(big.Int).SetUint64(r.GasUsed), price)
	return &withdraw.GasSpent{Tx: r.TxHash.Hex(), GasUsed: r.GasUsed, Price: price.String(), Wei: wei.String()}
}

// executed finds the Safe's ExecutionSuccess or ExecutionFailure log for
// hash.
func (s *EthSigner) executed(ctx context.Context, hash common.Hash) (execution, error) {
	logs, err := s.cfg.Node.Eth().FilterLogs(ctx, ethereum.FilterQuery{FromBlock: big.NewInt(0), Addresses: []common.Address{s.cfg.Safe},
		Topics: [][]common.Hash{{safe.EventExecutionSuccess, safe.EventExecutionFailure}, {hash}}})
	if err != nil {
		return execution{}, fmt.Errorf("the Safe's executions: %w", err)
	}
	for _, l := range logs {
		if !l.Removed && len(l.Topics) > 0 {
			return execution{found: true, success: l.Topics[0] == safe.EventExecutionSuccess, height: int32(l.BlockNumber), tx: l.TxHash}, nil
		}
	}
	return execution{}, nil
}

// CoSignSafeTx asks the co-signer's POST /cosign/safetx and returns its
// signature, checked to be over the hash asked.
func (r *Remote) CoSignSafeTx(ctx context.Context, req cosigner.SafeTxRequest) (safe.Signature, error) {
	body, _ := json.Marshal(cosigner.NewSafeTxBody(req))
	hr, err := http.NewRequestWithContext(ctx, "POST", r.URL+"/cosign/safetx", bytes.NewReader(body))
	if err != nil {
		return safe.Signature{}, err
	}
	hr.Header.Set("Content-Type", "application/json")
	res, err := r.HTTP.Do(hr)
	if err != nil {
		return safe.Signature{}, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != 200 {
		return safe.Signature{}, fmt.Errorf("co-signer: %s: %s", res.Status, bytes.TrimSpace(b))
	}
	var a cosigner.SafeTxAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return safe.Signature{}, fmt.Errorf("co-signer: malformed answer: %w", err)
	}
	rsv, err := hex.DecodeString(strings.TrimPrefix(a.Signature, "0x"))
	if err != nil || len(rsv) != safe.SignatureLen || !common.IsHexAddress(a.Owner) || a.Hash != req.Hash.Hex() {
		return safe.Signature{}, errors.New("co-signer: malformed answer")
	}
	sig := safe.Signature{Owner: common.HexToAddress(a.Owner)}
	copy(sig.RSV[:], rsv)
	// EncodeSignatures checks it recovers to the owner it names.
	if _, err := safe.EncodeSignatures(req.Hash, []safe.Signature{sig}); err != nil {
		return safe.Signature{}, fmt.Errorf("co-signer: %w", err)
	}
	return sig, nil
}
