// Package signer is the hot signer: it takes queued withdrawals, batches
// them into one transaction from the hot wallet, registers the batch in the
// journal with its inputs reserved before signing, signs with hot key #1,
// asks the independent co-signer for the second signature, journals the
// signed transaction, and broadcasts it. Every step is idempotent: after a
// crash anywhere, the next Step finishes the same transaction; it never
// builds a second one for the same withdrawals.
package signer

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/anchor"
	"kinko/internal/ceremony"
	"kinko/internal/chain"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/signer/view"
	"kinko/internal/wallet"
	"kinko/internal/withdraw"
)

// CoSigner is the co-signer as the hot signer sees it: it returns the PSBT
// with its signatures, or refuses.
type CoSigner interface {
	CoSign(ctx context.Context, p *psbt.Packet) (*psbt.Packet, error)
}

// PrevTxs gives a transaction by its id, from the node's transaction
// index. The hot signer puts the transaction each input spends into the
// PSBT (BIP-174's non-witness UTXO, as Core's PSBTs carry), so a signer
// can check the amount it spends without trusting a witness UTXO. That is
// Bitcoin's own (an account chain spends no previous outputs), so it is
// not part of chain.Backend; *btc.Node is one.
type PrevTxs interface {
	Tx(ctx context.Context, txid chainhash.Hash) (*wire.MsgTx, error)
}

// Config configures a hot signer.
type Config struct {
	Backend Backend
	// Chain is the Bitcoin backend of the chain interface
	// (internal/chain/btcchain): the tip, the fee estimate and broadcast.
	Chain chain.Backend
	// PrevTxs gives the transactions the batch's inputs spend from.
	PrevTxs  PrevTxs
	Net      *chaincfg.Params
	Account  *hdkeychain.ExtendedKey // hot key #1, BIP48 account
	FP       [4]byte
	CoSigner CoSigner
	Asset    string // "BTC"
	Logger   *slog.Logger
	// AnchorEvery is how often the journal's head is anchored on chain: a
	// batch built when the last anchor is older carries one (an OP_RETURN
	// output, internal/anchor). Default DefaultAnchorEvery; negative: never.
	AnchorEvery time.Duration
	// Now is the signer's clock (default time.Now).
	Now func() time.Time
	// beforeBroadcast, in tests, simulates a crash between journaling the
	// signed transaction and sending it; afterCoSign one between the
	// co-signer's answer and journaling it.
	beforeBroadcast func() error
	afterCoSign     func() error
}

// Signer is a hot signer.
type Signer struct{ cfg Config }

// New returns a hot signer.
func New(cfg Config) *Signer {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Asset == "" {
		cfg.Asset = "BTC"
	}
	if cfg.AnchorEvery == 0 {
		cfg.AnchorEvery = DefaultAnchorEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Signer{cfg: cfg}
}

// DefaultAnchorEvery is how often the journal's head is anchored by
// default: hourly, in the first batch after the hour.
const DefaultAnchorEvery = time.Hour

// anchorDue returns the head to anchor in the next batch, or nil: none
// anchored yet, or the last older than AnchorEvery by the signer's clock.
// A head that cannot be read is logged and the batch goes without one.
func (s *Signer) anchorDue(ctx context.Context, v view.View) *anchor.Anchor {
	if s.cfg.AnchorEvery < 0 {
		return nil
	}
	if la := v.LastAnchor; la != nil && s.cfg.Now().Sub(time.Unix(0, la.Time)) < s.cfg.AnchorEvery {
		return nil
	}
	h, err := s.cfg.Backend.Head(ctx)
	if err != nil || h.Size == 0 {
		s.cfg.Logger.Warn("no head to anchor; batching without one", "err", err)
		return nil
	}
	return &anchor.Anchor{Size: h.Size, Root: h.Root}
}

var errHalted = errors.New("signer: withdrawals halted")

// Step finishes any batch in flight, then batches what is queued. It
// returns the batches it sent.
func (s *Signer) Step(ctx context.Context) ([]string, error) {
	if err := s.checkChain(); err != nil {
		return nil, err
	}
	v, err := s.cfg.Backend.View(ctx, s.cfg.Asset)
	if err != nil {
		return nil, err
	}
	var sent []string
	for _, b := range v.InFlight {
		if err := s.finish(ctx, v, b); err != nil {
			return sent, fmt.Errorf("signer: batch %s: %w", b.ID, err)
		}
		sent = append(sent, b.ID)
	}
	if v.Halted != "" {
		return sent, fmt.Errorf("%w: %s", errHalted, v.Halted)
	}
	b, err := s.prepare(ctx, v)
	if err != nil || b == nil {
		return sent, err
	}
	if err := s.finish(ctx, v, *b); err != nil {
		return sent, fmt.Errorf("signer: batch %s: %w", b.ID, err)
	}
	return append(sent, b.ID), nil
}

// checkChain refuses a signer without its chain, or on another family's.
func (s *Signer) checkChain() error {
	switch {
	case s.cfg.Chain == nil:
		return errors.New("signer: no chain backend")
	case s.cfg.Chain.Family() != chain.Bitcoin:
		return fmt.Errorf("signer: the chain backend is %s's, not bitcoin's", s.cfg.Chain.Family())
	case s.cfg.PrevTxs == nil:
		return errors.New("signer: nothing gives the previous transactions")
	}
	return nil
}

// maxFeeRate bounds the fee rate the signer takes from the backend, in
// satoshi per virtual byte: above it a transaction of 1,000 vB would pay
// more than every bitcoin there is, and the estimate is not one.
const maxFeeRate uint64 = btcutil.MaxSatoshi / 1000

// feeRate returns the backend's fee estimate in satoshi per virtual byte.
func (s *Signer) feeRate(ctx context.Context) (int64, error) {
	f, err := s.cfg.Chain.FeeEstimate(ctx)
	if err != nil {
		return 0, fmt.Errorf("signer: fee estimate: %w", err)
	}
	if f.Unit != "sat/vB" {
		return 0, fmt.Errorf("signer: fee estimate in %q, not sat/vB", f.Unit)
	}
	if f.Rate.Hi != 0 || f.Rate.Lo == 0 || f.Rate.Lo > maxFeeRate {
		return 0, fmt.Errorf("signer: fee estimate of %s sat/vB is outside 1 to %d", f.Rate, maxFeeRate)
	}
	return int64(f.Rate.Lo), nil
}

// prevTx returns the transaction op spends from, checked to be the one
// op names and to have that output.
func (s *Signer) prevTx(ctx context.Context, op wire.OutPoint) (*wire.MsgTx, error) {
	tx, err := s.cfg.PrevTxs.Tx(ctx, op.Hash)
	if err != nil {
		return nil, fmt.Errorf("signer: previous transaction %s: %w", op.Hash, err)
	}
	if got := tx.TxHash(); got != op.Hash {
		return nil, fmt.Errorf("signer: asked for previous transaction %s, given %s", op.Hash, got)
	}
	if int(op.Index) >= len(tx.TxOut) {
		return nil, fmt.Errorf("signer: previous transaction %s has no output %d", op.Hash, op.Index)
	}
	return tx, nil
}

// Run steps every interval until ctx ends.
func (s *Signer) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if sent, err := s.Step(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("signer step", "err", err)
		} else if len(sent) > 0 {
			s.cfg.Logger.Info("batches sent", "batches", sent)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// hotSet returns the hot wallet, recomputed from its descriptor.
func (s *Signer) hotSet(v view.View) (*wallet.Set, error) {
	if v.Hot.ID == 0 {
		return nil, errors.New("signer: no hot wallet")
	}
	d, err := wallet.Parse(v.Hot.Descriptor, s.cfg.Net)
	if err != nil {
		return nil, err
	}
	return wallet.NewSet([]wallet.Named{{ID: v.Hot.ID, Kind: v.Hot.Kind.String(), Descriptor: v.Hot.Descriptor}}, d)
}

// prepare builds and journals a batch of queued withdrawals, or returns nil.
func (s *Signer) prepare(ctx context.Context, v view.View) (*withdraw.Batch, error) {
	if len(v.Queued) == 0 {
		return nil, nil
	}
	set, err := s.hotSet(v)
	if err != nil {
		return nil, err
	}
	hot, hotN := v.Hot, set.Wallets[0]
	for _, wd := range v.Queued {
		if _, fits := wd.Intent.Amount.Int64(); !fits {
			s.cfg.Logger.Warn("withdrawal not payable on Bitcoin: its amount is not below 2^63 satoshi; left queued", "withdrawal", wd.ID, "amount", wd.Intent.Amount.String())
		}
	}
	outs, ids, need := ceremony.Payouts(v.Queued, s.cfg.Net)
	if len(outs) == 0 {
		return nil, nil
	}
	var anc *withdraw.Anchor
	if a := s.anchorDue(ctx, v); a != nil {
		outs, anc = ceremony.WithAnchor(outs, *a)
	}
	feeRate, err := s.feeRate(ctx)
	if err != nil {
		return nil, err
	}
	utxos := append([]custody.UTXO(nil), v.UTXOs...)
	sort.Slice(utxos, func(i, j int) bool { return utxos[i].Amount > utxos[j].Amount })
	ins, inputs := ceremony.Coins(utxos, hotN, need, feeRate, len(outs))
	// Every input carries the transaction it spends from, as Core's PSBTs
	// do, fetched from the node (it runs with a transaction index).
	for i := range ins {
		tx, err := s.prevTx(ctx, ins[i].OutPoint)
		if err != nil {
			return nil, err
		}
		ins[i].PrevTx = tx
	}
	tip, err := s.cfg.Chain.Tip(ctx)
	if err != nil {
		return nil, fmt.Errorf("signer: chain tip: %w", err)
	}
	if tip.Height > math.MaxInt32 {
		return nil, fmt.Errorf("signer: chain tip at height %d, beyond a bitcoin height", tip.Height)
	}
	p, err := wallet.BuildWith(ins, outs, hotN, hot.NextChange, feeRate, wallet.BuildOptions{LockTime: wallet.AntiFeeSniping(int32(tip.Height), rand.IntN)})
	if err != nil {
		return nil, fmt.Errorf("signer: hot wallet cannot pay the queue: %w", err)
	}
	b64, _ := wallet.Encode(p)
	b := ceremony.NewBatch("b-"+p.UnsignedTx.TxHash().String()[:16], s.cfg.Asset, ids, inputs, p.UnsignedTx, p.UnsignedTx.TxOut, len(outs), b64, hot, false)
	b.Anchor = anc
	if err := s.cfg.Backend.Submit(ctx, core.ReserveBatch{Batch: b}); err != nil {
		return nil, err
	}
	b.Status = withdraw.BatchSigning
	return &b, nil
}

// finish signs, co-signs, journals and broadcasts a batch, from wherever
// it stands.
func (s *Signer) finish(ctx context.Context, v view.View, b withdraw.Batch) error {
	if b.Status == withdraw.BatchSigning {
		p, err := wallet.Read(strings.NewReader(b.PSBT))
		if err != nil {
			return err
		}
		set, err := s.hotSet(v)
		if err != nil {
			return err
		}
		if _, err := set.Sign(p, s.cfg.Account, s.cfg.FP); err != nil {
			return err
		}
		p, err = s.cfg.CoSigner.CoSign(ctx, p)
		if err != nil {
			return fmt.Errorf("co-signer refused: %w", err)
		}
		if s.cfg.afterCoSign != nil {
			if err := s.cfg.afterCoSign(); err != nil {
				return err
			}
		}
		tx, err := wallet.Finalize(p)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		tx.Serialize(&buf)
		b.RawTx = hex.EncodeToString(buf.Bytes())
		if err := s.cfg.Backend.Submit(ctx, core.RecordSigned{Batch: b.ID, RawTx: b.RawTx}); err != nil {
			return err
		}
	}
	if s.cfg.beforeBroadcast != nil {
		if err := s.cfg.beforeBroadcast(); err != nil {
			return err
		}
	}
	raw, err := hex.DecodeString(b.RawTx)
	if err != nil {
		return err
	}
	tx := wire.NewMsgTx(2)
	if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
		return err
	}
	// Sent again after a crash, or already mined, the backend answers
	// with the same id and no error; a refusal (chain.ErrRejected: an
	// input spent elsewhere, a fee below the node's floor) is returned and
	// the batch stays broadcast: the next Step sends it again, and the
	// watcher fails it once another transaction spends its inputs.
	want := tx.TxHash()
	got, err := s.cfg.Chain.Broadcast(ctx, raw)
	if err != nil {
		return fmt.Errorf("broadcast %s: %w", want, err)
	}
	if got.Bytes() != want {
		return fmt.Errorf("broadcast %s: the node knows it as %s", want, got)
	}
	return nil
}
