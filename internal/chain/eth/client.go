// Package eth connects kinko to an Ethereum node over JSON-RPC: it reads
// balances, nonces and receipts, calls contracts and sends transactions
// signed with a key it is given. Amounts are wei in *big.Int, never
// floats. The Safe wallets built on it are in internal/chain/eth/safe; a
// geth node for tests and `kinko dev` in internal/chain/eth/devnet.
package eth

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
)

// Client is a connection to a node. Its methods are safe for concurrent
// use; Send from one key must not be called concurrently (it takes the
// key's next nonce from the node).
type Client struct {
	rpc     *rpc.Client
	eth     *ethclient.Client
	chainID *big.Int
}

// CallTimeout bounds one call to the node.
var CallTimeout = 5 * time.Second

// ErrReverted reports a transaction mined with status 0: it paid its gas
// and changed nothing else.
var ErrReverted = errors.New("eth: transaction reverted")

// Dial connects to the node at url (http://, ws:// or a path to its IPC
// socket) and reads its chain id.
func Dial(ctx context.Context, url string) (*Client, error) {
	r, err := rpc.DialContext(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("eth: dial %s: %w", url, err)
	}
	c := &Client{rpc: r, eth: ethclient.NewClient(r)}
	cctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	id, err := c.eth.ChainID(cctx)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("eth: chain id: %w", err)
	}
	c.chainID = id
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() { c.rpc.Close() }

// ChainID returns the node's chain id (EIP-155), read at Dial.
func (c *Client) ChainID() *big.Int { return new(big.Int).Set(c.chainID) }

// RPC returns the raw RPC client.
func (c *Client) RPC() *rpc.Client { return c.rpc }

// Eth returns go-ethereum's typed client over the same connection.
func (c *Client) Eth() *ethclient.Client { return c.eth }

// Balance returns addr's balance in wei at the latest block.
func (c *Client) Balance(ctx context.Context, addr common.Address) (*big.Int, error) {
	cctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	b, err := c.eth.BalanceAt(cctx, addr, nil)
	if err != nil {
		return nil, fmt.Errorf("eth: balance of %s: %w", addr, err)
	}
	return b, nil
}

// Code returns the code at addr at the latest block (empty for an
// account without a contract).
func (c *Client) Code(ctx context.Context, addr common.Address) ([]byte, error) {
	cctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	b, err := c.eth.CodeAt(cctx, addr, nil)
	if err != nil {
		return nil, fmt.Errorf("eth: code at %s: %w", addr, err)
	}
	return b, nil
}

// BlockNumber returns the number of the latest block.
func (c *Client) BlockNumber(ctx context.Context) (uint64, error) {
	cctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	n, err := c.eth.BlockNumber(cctx)
	if err != nil {
		return 0, fmt.Errorf("eth: block number: %w", err)
	}
	return n, nil
}

// Call runs a read-only call of data on to at the latest block, from
// from, and returns what it returned. A revert is an error that carries
// the revert reason (Safe's "GS026" and the like) in its text.
func (c *Client) Call(ctx context.Context, from common.Address, to common.Address, data []byte) ([]byte, error) {
	cctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	out, err := c.eth.CallContract(cctx, ethereum.CallMsg{From: from, To: &to, Data: data}, nil)
	if err != nil {
		return nil, fmt.Errorf("eth: call %s: %w", to, err)
	}
	return out, nil
}

// Tx is a transaction to send: to is nil for a contract creation. Gas 0
// asks the node to estimate it (a reverting call then fails before
// anything is sent); a fixed Gas sends it as it is, so that a transaction
// that reverts is mined and pays for its gas, as an attacker's would.
type Tx struct {
	To    *common.Address
	Value *big.Int
	Data  []byte
	Gas   uint64
}

// gasMargin is the share added to an estimate (in percent): estimates are
// exact for the state they ran on, and a Safe's execTransaction asks for
// gas beyond what it uses (its GS010 check).
const gasMargin = 25

// Send signs tx with key as an EIP-1559 transaction with the key's next
// nonce, sends it and waits until it is mined. It returns the receipt;
// a receipt with status 0 comes back with ErrReverted.
func (c *Client) Send(ctx context.Context, key *ecdsa.PrivateKey, tx Tx) (*types.Receipt, error) {
	signed, err := c.Sign(ctx, key, tx)
	if err != nil {
		return nil, err
	}
	if err := c.SendSigned(ctx, signed); err != nil {
		return nil, err
	}
	r, err := c.WaitMined(ctx, signed.Hash())
	if err != nil {
		return nil, err
	}
	if r.Status != types.ReceiptStatusSuccessful {
		return r, fmt.Errorf("%w: %s", ErrReverted, signed.Hash())
	}
	return r, nil
}

// poolLag is how long sendSigned waits for a node's transaction pool to
// catch up with its chain: geth moves its pool to a new head after the
// block is imported, so a transaction from an account funded in that
// block can be refused for "insufficient funds" for a moment after its
// receipt is out.
const poolLag = 10 * time.Second

// SendSigned sends a signed transaction (eth_sendRawTransaction), sent
// again while the node's pool refuses it for insufficient funds that the
// latest block shows it has (the pool behind the chain), up to poolLag.
func (c *Client) SendSigned(ctx context.Context, signed *types.Transaction) error {
	deadline := time.Now().Add(poolLag)
	for {
		cctx, cancel := context.WithTimeout(ctx, CallTimeout)
		err := c.eth.SendTransaction(cctx, signed)
		cancel()
		if err == nil {
			return nil
		}
		if !strings.Contains(err.Error(), "insufficient funds") || time.Now().After(deadline) || !c.covers(ctx, signed) {
			return fmt.Errorf("eth: send: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("eth: send: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// covers tells whether the sender's balance at the latest block pays for
// signed at its fee cap.
func (c *Client) covers(ctx context.Context, signed *types.Transaction) bool {
	from, err := types.Sender(types.LatestSignerForChainID(signed.ChainId()), signed)
	if err != nil {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	bal, err := c.eth.BalanceAt(cctx, from, nil)
	return err == nil && bal.Cmp(signed.Cost()) >= 0
}

// Sign builds and signs tx with key (its next pending nonce, the node's
// suggested tip and twice the base fee as the cap) without sending it.
func (c *Client) Sign(ctx context.Context, key *ecdsa.PrivateKey, tx Tx) (*types.Transaction, error) {
	from := crypto.PubkeyToAddress(key.PublicKey)
	cctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	nonce, err := c.eth.PendingNonceAt(cctx, from)
	if err != nil {
		return nil, fmt.Errorf("eth: nonce of %s: %w", from, err)
	}
	tip, err := c.eth.SuggestGasTipCap(cctx)
	if err != nil {
		return nil, fmt.Errorf("eth: gas tip: %w", err)
	}
	head, err := c.eth.HeaderByNumber(cctx, nil)
	if err != nil {
		return nil, fmt.Errorf("eth: latest header: %w", err)
	}
	feeCap := new(big.Int).Add(tip, new(big.Int).Mul(head.BaseFee, big.NewInt(2)))
	value := tx.Value
	if value == nil {
		value = new(big.Int)
	}
	gas := tx.Gas
	if gas == 0 {
		est, err := c.eth.EstimateGas(cctx, ethereum.CallMsg{From: from, To: tx.To, Value: value, Data: tx.Data})
		if err != nil {
			return nil, fmt.Errorf("eth: estimate gas: %w", err)
		}
		gas = est + est*gasMargin/100
	}
	t := types.NewTx(&types.DynamicFeeTx{
		ChainID: c.chainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap,
		Gas: gas, To: tx.To, Value: value, Data: tx.Data,
	})
	signed, err := types.SignTx(t, types.LatestSignerForChainID(c.chainID), key)
	if err != nil {
		return nil, fmt.Errorf("eth: sign: %w", err)
	}
	return signed, nil
}

// pollInterval is how often WaitMined asks for a receipt.
const pollInterval = 20 * time.Millisecond

// WaitMined waits until the transaction with hash h is in a block and
// returns its receipt.
func (c *Client) WaitMined(ctx context.Context, h common.Hash) (*types.Receipt, error) {
	for {
		cctx, cancel := context.WithTimeout(ctx, CallTimeout)
		r, err := c.eth.TransactionReceipt(cctx, h)
		cancel()
		if err == nil {
			return r, nil
		}
		// geth answers "transaction indexing is in progress" while it
		// indexes its first blocks: not yet known, as NotFound.
		if !errors.Is(err, ethereum.NotFound) && !strings.Contains(err.Error(), "indexing is in progress") {
			return nil, fmt.Errorf("eth: receipt of %s: %w", h, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("eth: receipt of %s: %w", h, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// Fee returns what a mined transaction paid for its gas, in wei: gas used
// times the effective gas price.
func Fee(r *types.Receipt) *big.Int {
	return new(big.Int).Mul(new(big.Int).SetUint64(r.GasUsed), r.EffectiveGasPrice)
}
