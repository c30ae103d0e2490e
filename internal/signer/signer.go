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
	"sort"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/chain/btc"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/wallet"
	"kinko/internal/withdraw"
)

// CoSigner is the co-signer as the hot signer sees it: it returns the PSBT
// with its signatures, or refuses.
type CoSigner interface {
	CoSign(ctx context.Context, p *psbt.Packet) (*psbt.Packet, error)
}

// Config configures a hot signer.
type Config struct {
	Core     *core.Core
	Node     *btc.Node
	Net      *chaincfg.Params
	Account  *hdkeychain.ExtendedKey // hot key #1, BIP48 account
	FP       [4]byte
	CoSigner CoSigner
	Asset    string // "BTC"
	Logger   *slog.Logger
	// FeeTarget is the confirmation target asked of the node's estimator.
	FeeTarget int64
	// beforeBroadcast, in tests, simulates a crash between journaling the
	// signed transaction and sending it.
	beforeBroadcast func() error
}

// Signer is a hot signer.
type Signer struct{ cfg Config }

// New returns a hot signer.
func New(cfg Config) *Signer {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FeeTarget == 0 {
		cfg.FeeTarget = 6
	}
	if cfg.Asset == "" {
		cfg.Asset = "BTC"
	}
	return &Signer{cfg: cfg}
}

var errHalted = errors.New("signer: withdrawals halted")

// Step finishes any batch in flight, then batches what is queued. It
// returns the batches it sent.
func (s *Signer) Step(ctx context.Context) ([]string, error) {
	var inflight []withdraw.Batch
	var halted error
	s.cfg.Core.Read(func(st *core.State) {
		for _, b := range st.Withdraw.Batches() {
			if b.Status == withdraw.BatchSigning || b.Status == withdraw.BatchBroadcast {
				inflight = append(inflight, b)
			}
		}
		if a, ok := st.Ledger.AssetByCode(s.cfg.Asset); ok {
			halted = st.Controls.Allowed(a.ID, controls.Withdraw)
		}
	})
	var sent []string
	for _, b := range inflight {
		if err := s.finish(ctx, b); err != nil {
			return sent, fmt.Errorf("signer: batch %s: %w", b.ID, err)
		}
		sent = append(sent, b.ID)
	}
	if halted != nil {
		return sent, fmt.Errorf("%w: %v", errHalted, halted)
	}
	b, err := s.prepare(ctx)
	if err != nil || b == nil {
		return sent, err
	}
	if err := s.finish(ctx, *b); err != nil {
		return sent, fmt.Errorf("signer: batch %s: %w", b.ID, err)
	}
	return append(sent, b.ID), nil
}

func (s *Signer) submit(ctx context.Context, cmd core.Command) error {
	o, err := s.cfg.Core.Submit(ctx, time.Now(), cmd)
	if err == nil {
		err = o.Err
	}
	if err == nil {
		err = o.EventErr()
	}
	return err
}

// prepare builds and journals a batch of queued withdrawals, or returns nil.
func (s *Signer) prepare(ctx context.Context) (*withdraw.Batch, error) {
	var queued []withdraw.Withdrawal
	var hot custody.Wallet
	var hotN *wallet.Named
	var utxos []custody.UTXO
	var err error
	var set *wallet.Set
	s.cfg.Core.Read(func(st *core.State) {
		for _, w := range st.Withdraw.Withdrawals(0) {
			if w.Status == withdraw.StatusQueued && w.Intent.Asset == s.cfg.Asset && len(queued) < withdraw.MaxBatchOutputs {
				queued = append(queued, w)
			}
		}
		a, _ := st.Ledger.AssetByCode(s.cfg.Asset)
		for _, w := range st.Custody.Wallets() {
			if w.Asset == a.ID && w.Kind == custody.HotCustomer {
				hot = w
			}
		}
		if hot.ID == 0 {
			err = errors.New("no hot wallet")
			return
		}
		utxos = st.Custody.UTXOs(hot.ID, custody.UTXOAvailable)
		var d *wallet.Descriptor
		if d, err = wallet.Parse(hot.Descriptor, s.cfg.Net); err != nil {
			return
		}
		set, err = wallet.NewSet([]wallet.Named{{ID: hot.ID, Kind: hot.Kind.String(), Descriptor: hot.Descriptor}}, d)
	})
	if err != nil || len(queued) == 0 {
		return nil, err
	}
	hotN = set.Wallets[0]
	var outs []*wire.TxOut
	var need int64
	var ids []string
	for _, w := range queued {
		a, err := btcutil.DecodeAddress(w.Intent.Address, s.cfg.Net)
		if err != nil || !a.IsForNet(s.cfg.Net) {
			s.cfg.Logger.Warn("queued withdrawal to an address not of this network", "id", w.ID)
			continue
		}
		pk, _ := txscript.PayToAddrScript(a)
		outs = append(outs, wire.NewTxOut(int64(w.Intent.Amount), pk))
		need += int64(w.Intent.Amount)
		ids = append(ids, w.ID)
	}
	if len(outs) == 0 {
		return nil, nil
	}
	feeRate := s.cfg.Node.FeeRate(ctx, s.cfg.FeeTarget)
	sort.Slice(utxos, func(i, j int) bool { return utxos[i].Amount > utxos[j].Amount })
	var ins []wallet.UTXO
	var inputs []custody.Outpoint
	var have int64
	for _, u := range utxos {
		if have >= need+feeRate*int64(200+43*len(outs)) || len(ins) == custody.MaxCeremonyInputs {
			break
		}
		ins = append(ins, wallet.UTXO{OutPoint: wire.OutPoint{Hash: chainhash.Hash(u.Outpoint.TxID), Index: u.Outpoint.Vout}, Value: int64(u.Amount), Wallet: hotN, Branch: u.Branch, Index: u.Index})
		inputs = append(inputs, u.Outpoint)
		have += int64(u.Amount)
	}
	p, err := wallet.Build(ins, outs, hotN, hot.NextChange, feeRate)
	if err != nil {
		return nil, fmt.Errorf("signer: hot wallet cannot pay the queue: %w", err)
	}
	b64, _ := wallet.Encode(p)
	b := withdraw.Batch{ID: "b-" + p.UnsignedTx.TxHash().String()[:16], Asset: s.cfg.Asset, Withdrawals: ids, Inputs: inputs, TxID: p.UnsignedTx.TxHash(), PSBT: b64}
	if n := len(p.UnsignedTx.TxOut); n == len(outs)+1 {
		b.Change = &custody.CeremonyOutput{Vout: uint32(n - 1), Wallet: hot.ID, Branch: 1, Index: hot.NextChange, Amount: uint64(p.UnsignedTx.TxOut[n-1].Value)}
	}
	if err := s.submit(ctx, core.ReserveBatch{Batch: b}); err != nil {
		return nil, err
	}
	b.Status = withdraw.BatchSigning
	return &b, nil
}

// finish signs, co-signs, journals and broadcasts a batch, from wherever
// it stands.
func (s *Signer) finish(ctx context.Context, b withdraw.Batch) error {
	if b.Status == withdraw.BatchSigning {
		p, err := wallet.Read(strings.NewReader(b.PSBT))
		if err != nil {
			return err
		}
		var set *wallet.Set
		s.cfg.Core.Read(func(st *core.State) {
			for _, w := range st.Custody.Wallets() {
				if w.Kind == custody.HotCustomer {
					d, e := wallet.Parse(w.Descriptor, s.cfg.Net)
					if e != nil {
						err = e
						return
					}
					set, err = wallet.NewSet([]wallet.Named{{ID: w.ID, Kind: w.Kind.String(), Descriptor: w.Descriptor}}, d)
					return
				}
			}
		})
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
		tx, err := wallet.Finalize(p)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		tx.Serialize(&buf)
		b.RawTx = hex.EncodeToString(buf.Bytes())
		if err := s.submit(ctx, core.RecordSigned{Batch: b.ID, RawTx: b.RawTx}); err != nil {
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
	_, err = s.cfg.Node.Broadcast(ctx, tx)
	return err
}
