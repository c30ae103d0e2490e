package ethchain_test

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain"
	"kinko/internal/chain/chaintest"
	"kinko/internal/chain/eth"
	"kinko/internal/chain/eth/devnet"
	"kinko/internal/chain/eth/evmtest"
	"kinko/internal/chain/ethchain"
)

// harness drives a geth --dev node for the conformance suite: payments
// are EIP-1559 transfers signed by a key funded from the developer
// account.
type harness struct {
	n      *devnet.Node
	b      *ethchain.Backend
	key    *ecdsa.PrivateKey
	tokens []common.Address
	fwd    common.Address // the forwarder of InternalPayment, once deployed
}

func newHarness(t *testing.T, tokens ...common.Address) *harness {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := devnet.New(t, devnet.Options{})
	key, err := n.NewKey(ctx, new(big.Int).Mul(big.NewInt(100), big.NewInt(1e18)))
	if err != nil {
		t.Fatal(err)
	}
	return &harness{n: n, b: ethchain.New(n.Client(), n.WSURL(), tokens, ethchain.WithTraces(true)), key: key, tokens: tokens}
}

func (h *harness) Backend() chain.Backend { return h.b }

func (h *harness) NewBackend() chain.Backend {
	return ethchain.New(h.n.Client(), h.n.WSURL(), h.tokens, ethchain.WithTraces(true))
}

func (h *harness) NewAddress(context.Context) (string, error) {
	k, err := crypto.GenerateKey()
	if err != nil {
		return "", err
	}
	return crypto.PubkeyToAddress(k.PublicKey).Hex(), nil
}

func (h *harness) Payment(ctx context.Context, addr string, amount chain.Amount) ([]byte, error) {
	to := common.HexToAddress(addr)
	tx, err := h.n.Client().Sign(ctx, h.key, eth.Tx{To: &to, Value: amount.Big(), Gas: 21_000})
	if err != nil {
		return nil, err
	}
	return tx.MarshalBinary()
}

func (h *harness) Mine(ctx context.Context, blocks int) error {
	_, err := h.n.Mine(ctx, blocks)
	return err
}

// Reorg: geth --dev cannot. It seals every block itself through a
// simulated beacon client and has no peers (--dev turns networking off),
// so its chain never has a second branch to switch to.
func (h *harness) Reorg(context.Context, chain.ID) error {
	return fmt.Errorf("%w: geth --dev seals its own single branch (simulated beacon, no peers); a reorg needs two nodes of a proof-of-stake devnet", chaintest.ErrCannotReorg)
}

func (h *harness) TxIDs(ctx context.Context, id chain.ID) ([]string, error) {
	var b struct {
		Transactions []string `json:"transactions"`
	}
	if err := h.n.Client().RPC().CallContext(ctx, &b, "eth_getBlockByHash", common.Hash(id.Bytes()), false); err != nil {
		return nil, err
	}
	return b.Transactions, nil
}

// InternalPayment deploys the forwarder (evmtest) at the first call and
// has it pay each address in a CALL of its own.
func (h *harness) InternalPayment(ctx context.Context, addrs []string, amounts []chain.Amount) (chain.ID, error) {
	c := h.n.Client()
	if h.fwd == (common.Address{}) {
		r, err := c.Send(ctx, h.key, eth.Tx{Data: evmtest.ForwarderCode(), Gas: 200_000})
		if err != nil {
			return chain.ID{}, err
		}
		h.fwd = r.ContractAddress
	}
	var calls []evmtest.Call
	sum := new(big.Int)
	for i, a := range addrs {
		calls = append(calls, evmtest.Call{To: common.HexToAddress(a), Value: amounts[i].Big()})
		sum.Add(sum, amounts[i].Big())
	}
	tx, err := c.Sign(ctx, h.key, eth.Tx{To: &h.fwd, Value: sum, Data: evmtest.ForwardData(calls...), Gas: 200_000})
	if err != nil {
		return chain.ID{}, err
	}
	if err := c.SendSigned(ctx, tx); err != nil {
		return chain.ID{}, err
	}
	return chain.NewID(chain.Ethereum, tx.Hash()), nil
}

func (h *harness) Unit() chain.Amount { return chain.Amount{Lo: 1e15} } // 0.001 ETH

// TestConformance runs the chain interface's suite on geth --dev.
func TestConformance(t *testing.T) {
	chaintest.Run(t, newHarness(t))
}
