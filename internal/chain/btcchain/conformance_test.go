package btcchain_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/chain"
	"kinko/internal/chain/btc/regtest"
	"kinko/internal/chain/btcchain"
	"kinko/internal/chain/chaintest"
)

// harness drives a btcd regtest node for the conformance suite: it pays
// from a key of its own, funded once from the node's coinbase coins, each
// payment spending the change of the one before.
type harness struct {
	n       *regtest.Node
	b       *btcchain.Backend
	key     *btcec.PrivateKey
	pk      []byte
	coin    wire.OutPoint
	value   int64
	stamped int // payments to the node's own coins made for reorgs
	birth   uint64
	keys    map[string]*btcec.PrivateKey // of NewAddress's addresses
}

const fee = 2_000 // satoshi per payment: one input, two outputs

func newHarness(t *testing.T) *harness {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := regtest.New(t, regtest.Options{})
	key, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(key.PubKey().SerializeCompressed()), regtest.Net)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := txscript.PayToAddrScript(addr)
	tx, err := n.SendTo(ctx, map[string]btcutil.Amount{addr.EncodeAddress(): 10_0000_0000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Generate(ctx, 1); err != nil {
		t.Fatal(err)
	}
	h := &harness{n: n, key: key, pk: pk, keys: map[string]*btcec.PrivateKey{}}
	for i, o := range tx.TxOut {
		if bytes.Equal(o.PkScript, pk) {
			h.coin, h.value = wire.OutPoint{Hash: tx.TxHash(), Index: uint32(i)}, o.Value
		}
	}
	_, height, err := n.Client().BestBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h.birth = uint64(height)
	h.b = btcchain.New(n.Client(), n.Config(), h.birth)
	return h
}

func (h *harness) Backend() chain.Backend { return h.b }

func (h *harness) NewBackend() chain.Backend {
	return btcchain.New(h.n.Client(), h.n.Config(), h.birth)
}

func (h *harness) NewAddress(context.Context) (string, error) {
	k, err := btcec.NewPrivateKey()
	if err != nil {
		return "", err
	}
	a, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(k.PubKey().SerializeCompressed()), regtest.Net)
	if err != nil {
		return "", err
	}
	h.keys[a.EncodeAddress()] = k
	return a.EncodeAddress(), nil
}

// Spend spends op, paying addr (one of NewAddress's) value, to a fresh
// address, less the fee.
func (h *harness) Spend(ctx context.Context, op chain.Outpoint, addr string, value chain.Amount) ([]byte, error) {
	k, ok := h.keys[addr]
	v, fits := value.Uint64()
	if !ok || !fits || int64(v) <= fee+1000 {
		return nil, fmt.Errorf("harness: cannot spend %s paying %s to %s", value, addr, op.Tx)
	}
	to, err := h.NewAddress(ctx)
	if err != nil {
		return nil, err
	}
	ta, _ := btcutil.DecodeAddress(to, regtest.Net)
	toPK, _ := txscript.PayToAddrScript(ta)
	fa, _ := btcutil.DecodeAddress(addr, regtest.Net)
	fromPK, _ := txscript.PayToAddrScript(fa)
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash(op.Tx.Bytes()), Index: op.Index}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(int64(v)-fee, toPK))
	fetcher := txscript.NewCannedPrevOutputFetcher(fromPK, int64(v))
	w, err := txscript.WitnessSignature(tx, txscript.NewTxSigHashes(tx, fetcher), 0, int64(v), fromPK, txscript.SigHashAll, k, true)
	if err != nil {
		return nil, err
	}
	tx.TxIn[0].Witness = w
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (h *harness) Payment(_ context.Context, addr string, amount chain.Amount) ([]byte, error) {
	v, ok := amount.Uint64()
	if !ok || int64(v) <= 0 || int64(v)+fee+1000 > h.value {
		return nil, fmt.Errorf("harness: cannot pay %s from %d", amount, h.value)
	}
	a, err := btcutil.DecodeAddress(addr, regtest.Net)
	if err != nil {
		return nil, err
	}
	to, _ := txscript.PayToAddrScript(a)
	tx := wire.NewMsgTx(2)
	op := h.coin
	tx.AddTxIn(wire.NewTxIn(&op, nil, nil))
	tx.AddTxOut(wire.NewTxOut(int64(v), to))
	change := h.value - int64(v) - fee
	tx.AddTxOut(wire.NewTxOut(change, h.pk))
	fetcher := txscript.NewCannedPrevOutputFetcher(h.pk, h.value)
	w, err := txscript.WitnessSignature(tx, txscript.NewTxSigHashes(tx, fetcher), 0, h.value, h.pk, txscript.SigHashAll, h.key, true)
	if err != nil {
		return nil, err
	}
	tx.TxIn[0].Witness = w
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		return nil, err
	}
	h.coin, h.value = wire.OutPoint{Hash: tx.TxHash(), Index: 1}, change
	return buf.Bytes(), nil
}

func (h *harness) Mine(ctx context.Context, blocks int) error {
	_, err := h.n.Generate(ctx, uint32(blocks))
	return err
}

// Reorg invalidates the block and mines two on its parent: btcd puts the
// transactions of the invalidated blocks back in its mempool, and a
// payment of the node's own makes the new branch's first block differ
// from the invalidated one.
func (h *harness) Reorg(ctx context.Context, id chain.ID) error {
	hh := chainhash.Hash(id.Bytes())
	if err := h.n.RPC().InvalidateBlock(&hh); err != nil {
		return fmt.Errorf("invalidateblock %s: %w", hh, err)
	}
	h.stamped++
	other, err := h.NewAddress(ctx)
	if err != nil {
		return err
	}
	if _, err := h.n.SendTo(ctx, map[string]btcutil.Amount{other: btcutil.Amount(10_000 + h.stamped)}); err != nil {
		return err
	}
	return h.Mine(ctx, 2)
}

func (h *harness) TxIDs(_ context.Context, id chain.ID) ([]string, error) {
	hh := chainhash.Hash(id.Bytes())
	b, err := h.n.RPC().GetBlockVerbose(&hh)
	if err != nil {
		return nil, err
	}
	return b.Tx, nil
}

func (h *harness) Unit() chain.Amount { return chain.Amount{Lo: 100_000} }

// TestConformance runs the chain interface's suite on btcd regtest.
func TestConformance(t *testing.T) {
	chaintest.Run(t, newHarness(t))
}
