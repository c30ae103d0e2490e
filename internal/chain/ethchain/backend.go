// Package ethchain is the Ethereum backend of the chain interface
// (internal/chain) over kinko's RPC client (internal/chain/eth): blocks
// with their full transactions (value to or from a watched address, kept
// only if the transaction succeeded) and the ERC-20 Transfer logs of the
// listed tokens; pending transactions from eth_subscribe
// newPendingTransactions over the node's WebSocket and from a pending
// transaction filter polled over HTTP; balances with eth_getBalance (or a
// token's balanceOf) at a block hash; raw transaction broadcast and the
// EIP-1559 fee estimate.
//
// Value a contract moves (an internal call) is in no block's
// transactions: a backend made WithTraces reads it from the node's call
// traces (debug_traceBlockByHash, callTracer; see trace.go), one without
// sees only the top level.
package ethchain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/ethclient/gethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"kinko/internal/chain"
	"kinko/internal/chain/eth"
)

// TransferTopic is the first topic of an ERC-20 Transfer(address indexed
// from, address indexed to, uint256 value) log.
var TransferTopic = crypto.Keccak256Hash([]byte("Transfer(address,address,uint256)"))

// transferSelector is the selector of ERC-20 transfer(address,uint256).
var transferSelector = crypto.Keccak256([]byte("transfer(address,uint256)"))[:4]

// MaxTxSize bounds a raw transaction Broadcast decodes (geth's pool takes
// 128 KiB).
const MaxTxSize = 128 << 10

// maxPendingBatch bounds the pending hashes one PollPending reads.
const maxPendingBatch = 4096

// Backend is the Ethereum chain.Backend. Safe for concurrent use.
type Backend struct {
	c      *eth.Client
	wsURL  string
	tokens map[common.Address]struct{}
	signer types.Signer

	traces bool

	mu     sync.Mutex
	filter string // the pending transaction filter's id, "" before one
}

// An Option configures a Backend.
type Option func(*Backend)

// WithTraces makes Block read the block's call traces and report the
// Ether contracts send to watched addresses (internal transfers). The
// node must serve the debug API (debug_traceBlockByHash) and hold the
// block's parent state (a full node keeps the last 128 blocks'; an
// archive node all).
func WithTraces(on bool) Option { return func(b *Backend) { b.traces = on } }

// New returns the backend over c. wsURL is the node's WebSocket endpoint
// for pushes ("" polls only); tokens are the ERC-20 contracts followed.
// Without WithTraces(true) it reads no call traces.
func New(c *eth.Client, wsURL string, tokens []common.Address, opts ...Option) *Backend {
	b := &Backend{c: c, wsURL: wsURL, tokens: make(map[common.Address]struct{}), signer: types.LatestSignerForChainID(c.ChainID())}
	for _, t := range tokens {
		b.tokens[t] = struct{}{}
	}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Traces reports whether Block reads call traces.
func (b *Backend) Traces() bool { return b.traces }

// Family is chain.Ethereum.
func (b *Backend) Family() chain.Family { return chain.Ethereum }

func id(h common.Hash) chain.ID { return chain.NewID(chain.Ethereum, h) }

func hash(i chain.ID) (common.Hash, error) {
	if i.Family() != chain.Ethereum {
		return common.Hash{}, fmt.Errorf("ethchain: %s id %s is not an ethereum id", i.Family(), i)
	}
	return common.Hash(i.Bytes()), nil
}

// ParseAddress takes 0x and forty hex digits (a mixed-case one must carry
// a correct EIP-55 checksum) and returns the EIP-55 form.
func (b *Backend) ParseAddress(s string) (string, error) {
	if len(s) != 42 || !strings.HasPrefix(s, "0x") || !common.IsHexAddress(s) {
		return "", fmt.Errorf("%w: %q", chain.ErrBadAddress, s)
	}
	a := common.HexToAddress(s)
	body := s[2:]
	if body != strings.ToLower(body) && body != strings.ToUpper(body) && a.Hex() != s {
		return "", fmt.Errorf("%w: %q has a wrong EIP-55 checksum", chain.ErrBadAddress, s)
	}
	return a.Hex(), nil
}

func (b *Backend) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, eth.CallTimeout)
}

// rpcBlock is the part of eth_getBlockBy* kinko reads.
type rpcBlock struct {
	Number       hexutil.Uint64 `json:"number"`
	Hash         common.Hash    `json:"hash"`
	ParentHash   common.Hash    `json:"parentHash"`
	Transactions []rpcTx        `json:"transactions"`
}

type rpcTx struct {
	Hash  common.Hash     `json:"hash"`
	From  common.Address  `json:"from"`
	To    *common.Address `json:"to"`
	Value *hexutil.Big    `json:"value"`
	Input hexutil.Bytes   `json:"input"`
}

func (b *Backend) block(ctx context.Context, method string, arg any, full bool) (*rpcBlock, error) {
	cctx, cancel := b.ctx(ctx)
	defer cancel()
	var raw json.RawMessage
	if err := b.c.RPC().CallContext(cctx, &raw, method, arg, full); err != nil {
		return nil, fmt.Errorf("ethchain: %s: %w", method, err)
	}
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fmt.Errorf("%w: block %v", chain.ErrNotFound, arg)
	}
	var blk rpcBlock
	if full {
		if err := json.Unmarshal(raw, &blk); err != nil {
			return nil, fmt.Errorf("ethchain: %s: %w", method, err)
		}
	} else {
		var hdr struct {
			Number     hexutil.Uint64 `json:"number"`
			Hash       common.Hash    `json:"hash"`
			ParentHash common.Hash    `json:"parentHash"`
		}
		if err := json.Unmarshal(raw, &hdr); err != nil {
			return nil, fmt.Errorf("ethchain: %s: %w", method, err)
		}
		blk = rpcBlock{Number: hdr.Number, Hash: hdr.Hash, ParentHash: hdr.ParentHash}
	}
	return &blk, nil
}

// Tip returns the latest block.
func (b *Backend) Tip(ctx context.Context) (chain.BlockRef, error) {
	blk, err := b.block(ctx, "eth_getBlockByNumber", "latest", false)
	if err != nil {
		return chain.BlockRef{}, err
	}
	return chain.BlockRef{Height: uint64(blk.Number), Hash: id(blk.Hash)}, nil
}

// HashAt returns the canonical block's hash at height.
func (b *Backend) HashAt(ctx context.Context, height uint64) (chain.ID, error) {
	blk, err := b.block(ctx, "eth_getBlockByNumber", hexutil.Uint64(height), false)
	if err != nil {
		return chain.ID{}, err
	}
	return id(blk.Hash), nil
}

// txTransfer returns the transfers a transaction makes at the top level
// to or from a watched address: its value, and for a listed token's
// transfer(to, amount) call the tokens (pending only: mined token
// transfers are read from their logs).
func (b *Backend) txTransfer(t rpcTx, w *chain.Watch, pending bool) []chain.Transfer {
	var out []chain.Transfer
	from := t.From.Hex()
	if t.Value != nil && t.To != nil && t.Value.ToInt().Sign() > 0 {
		to := t.To.Hex()
		if w.Has(to) || w.Has(from) {
			if v, err := chain.AmountFromBig(t.Value.ToInt()); err == nil {
				out = append(out, chain.Transfer{Tx: id(t.Hash), From: from, To: to, Amount: v})
			}
		}
	}
	if pending && t.To != nil && len(t.Input) == 68 && bytes.Equal(t.Input[:4], transferSelector) {
		if _, ok := b.tokens[*t.To]; ok && bytes.Equal(t.Input[4:16], make([]byte, 12)) {
			to := common.BytesToAddress(t.Input[16:36]).Hex()
			if w.Has(to) || w.Has(from) {
				if v, err := chain.AmountFromBig(new(big.Int).SetBytes(t.Input[36:68])); err == nil {
					out = append(out, chain.Transfer{Tx: id(t.Hash), Asset: t.To.Hex(), From: from, To: to, Amount: v})
				}
			}
		}
	}
	return out
}

// Block returns the block with hash h: its transactions' value to or from
// addresses in w (of transactions that succeeded), with WithTraces the
// Ether their internal calls send to addresses in w (Index
// chain.InternalIndex of the frame), and the listed tokens' Transfer logs
// to or from them. Bad data in the traces (chain.ErrChainData) refuses the
// whole block.
func (b *Backend) Block(ctx context.Context, h chain.ID, w *chain.Watch) (*chain.Block, error) {
	hh, err := hash(h)
	if err != nil {
		return nil, err
	}
	rb, err := b.block(ctx, "eth_getBlockByHash", hh, true)
	if err != nil {
		return nil, err
	}
	if rb.Hash != hh {
		return nil, fmt.Errorf("ethchain: asked for block %s, node answered %s", hh, rb.Hash)
	}
	blk := &chain.Block{Ref: chain.BlockRef{Height: uint64(rb.Number), Hash: h}, Parent: id(rb.ParentHash)}
	var internal []TxInternal
	if b.traces && w != nil && len(rb.Transactions) > 0 {
		txs := make([]common.Hash, len(rb.Transactions))
		for i, t := range rb.Transactions {
			txs[i] = t.Hash
		}
		if internal, err = b.readTraces(ctx, hh, txs, w); err != nil {
			return nil, err
		}
	}
	for i, t := range rb.Transactions {
		blk.TxIDs = append(blk.TxIDs, id(t.Hash))
		ts := b.txTransfer(t, w, false)
		if internal != nil && !internal[i].Failed {
			ts = append(ts, internal[i].Transfers...)
		}
		if len(ts) == 0 {
			continue
		}
		cctx, cancel := b.ctx(ctx)
		r, err := b.c.Eth().TransactionReceipt(cctx, t.Hash)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("ethchain: receipt of %s: %w", t.Hash, err)
		}
		ok := r.Status == types.ReceiptStatusSuccessful
		if internal != nil && internal[i].Failed == ok {
			return nil, fmt.Errorf("%w: %s: receipt status %d, its call trace's error %v", chain.ErrChainData, t.Hash, r.Status, internal[i].Failed)
		}
		if ok {
			blk.Transfers = append(blk.Transfers, ts...)
		}
	}
	if len(b.tokens) > 0 && w != nil {
		tokens := make([]common.Address, 0, len(b.tokens))
		for t := range b.tokens {
			tokens = append(tokens, t)
		}
		cctx, cancel := b.ctx(ctx)
		logs, err := b.c.Eth().FilterLogs(cctx, ethereum.FilterQuery{BlockHash: &hh, Addresses: tokens, Topics: [][]common.Hash{{TransferTopic}}})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("ethchain: token logs of %s: %w", hh, err)
		}
		for _, l := range logs {
			if l.BlockHash != hh {
				return nil, fmt.Errorf("ethchain: token log %s/%d of block %s, asked for %s", l.TxHash, l.Index, l.BlockHash, hh)
			}
			if _, listed := b.tokens[l.Address]; !listed {
				continue // the node's filter should not have let it through
			}
			t, ok, err := TransferLog(l)
			if !ok || (!w.Has(t.From) && !w.Has(t.To)) {
				continue
			}
			if err != nil {
				return nil, err
			}
			blk.Transfers = append(blk.Transfers, t)
		}
	}
	return blk, nil
}

// TransferLog decodes an ERC-20 Transfer(address indexed from, address
// indexed to, uint256 value) log: ok false for a log of another shape
// (another event, ERC-721's Transfer with a third indexed topic, a value
// not of 32 bytes, a removed log), which is no token transfer. A value of
// 2^128 or more is a transfer the ledger cannot hold: the transfer is
// returned without its amount, ok true and an error wrapping
// chain.ErrAmountRange, so a caller watching its addresses refuses the
// block rather than credit it wrongly. A topic whose high 12 bytes are
// not zero is no address: ok false.
func TransferLog(l types.Log) (chain.Transfer, bool, error) {
	if l.Removed || len(l.Topics) != 3 || l.Topics[0] != TransferTopic || len(l.Data) != 32 {
		return chain.Transfer{}, false, nil
	}
	var zero [12]byte
	if !bytes.Equal(l.Topics[1][:12], zero[:]) || !bytes.Equal(l.Topics[2][:12], zero[:]) || l.Index > 1<<32-1 {
		return chain.Transfer{}, false, nil
	}
	t := chain.Transfer{Tx: id(l.TxHash), Asset: l.Address.Hex(), Index: uint32(l.Index),
		From: common.BytesToAddress(l.Topics[1][12:]).Hex(), To: common.BytesToAddress(l.Topics[2][12:]).Hex()}
	v, err := chain.AmountFromBig(new(big.Int).SetBytes(l.Data))
	if err != nil {
		return t, true, fmt.Errorf("ethchain: token log %s/%d: %w", l.TxHash, l.Index, err)
	}
	t.Amount = v
	return t, true, nil
}

// TxBlock returns the canonical block holding txid, from its receipt.
func (b *Backend) TxBlock(ctx context.Context, txid chain.ID) (chain.ID, bool, error) {
	hh, err := hash(txid)
	if err != nil {
		return chain.ID{}, false, err
	}
	cctx, cancel := b.ctx(ctx)
	r, err := b.c.Eth().TransactionReceipt(cctx, hh)
	cancel()
	if err != nil {
		if errors.Is(err, ethereum.NotFound) || strings.Contains(err.Error(), "indexing is in progress") {
			return chain.ID{}, false, nil
		}
		return chain.ID{}, false, fmt.Errorf("ethchain: receipt of %s: %w", hh, err)
	}
	at, err := b.HashAt(ctx, r.BlockNumber.Uint64())
	if err != nil {
		return chain.ID{}, false, err
	}
	if at != id(r.BlockHash) {
		return chain.ID{}, false, nil
	}
	return at, true, nil
}

// PollPending reads the node's pending transaction filter (installing it
// on the first call, and again if the node dropped it) and returns the
// watched transfers of the transactions it names.
func (b *Backend) PollPending(ctx context.Context, w *chain.Watch) ([]chain.Transfer, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.filter == "" {
		cctx, cancel := b.ctx(ctx)
		err := b.c.RPC().CallContext(cctx, &b.filter, "eth_newPendingTransactionFilter")
		cancel()
		if err != nil {
			b.filter = ""
			return nil, fmt.Errorf("ethchain: eth_newPendingTransactionFilter: %w", err)
		}
		return nil, nil
	}
	var hashes []common.Hash
	cctx, cancel := b.ctx(ctx)
	err := b.c.RPC().CallContext(cctx, &hashes, "eth_getFilterChanges", b.filter)
	cancel()
	if err != nil {
		if strings.Contains(err.Error(), "filter not found") {
			b.filter = "" // expired or the node restarted: the blocks tell what was missed
			return nil, nil
		}
		return nil, fmt.Errorf("ethchain: eth_getFilterChanges: %w", err)
	}
	if len(hashes) > maxPendingBatch {
		hashes = hashes[len(hashes)-maxPendingBatch:]
	}
	var out []chain.Transfer
	for _, h := range hashes {
		var t *rpcTx
		cctx, cancel := b.ctx(ctx)
		err := b.c.RPC().CallContext(cctx, &t, "eth_getTransactionByHash", h)
		cancel()
		if err != nil || t == nil {
			continue // dropped since: nothing pending
		}
		out = append(out, b.txTransfer(*t, w, true)...)
	}
	return out, nil
}

// Subscribe opens the node's WebSocket and subscribes to new heads and
// to full pending transactions. The reading goroutine ends at Close or
// when the subscription fails (polling carries on).
func (b *Backend) Subscribe(ctx context.Context, w *chain.Watch, onBlock func(), onPending func(chain.Transfer)) (io.Closer, error) {
	if b.wsURL == "" {
		return nil, errors.New("ethchain: no websocket endpoint")
	}
	cctx, cancel := b.ctx(ctx)
	defer cancel()
	r, err := rpc.DialContext(cctx, b.wsURL)
	if err != nil {
		return nil, fmt.Errorf("ethchain: dial %s: %w", b.wsURL, err)
	}
	heads := make(chan *types.Header, 16)
	hs, err := ethclient.NewClient(r).SubscribeNewHead(cctx, heads)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("ethchain: subscribe newHeads: %w", err)
	}
	txs := make(chan *types.Transaction, 256)
	ts, err := gethclient.New(r).SubscribeFullPendingTransactions(cctx, txs)
	if err != nil {
		hs.Unsubscribe()
		r.Close()
		return nil, fmt.Errorf("ethchain: subscribe newPendingTransactions: %w", err)
	}
	s := &subscription{r: r, quit: make(chan struct{}), done: make(chan struct{})}
	go func() { // exits at Close or when a subscription fails
		defer close(s.done)
		for {
			select {
			case <-s.quit:
				return
			case <-hs.Err():
				return
			case <-ts.Err():
				return
			case <-heads:
				onBlock()
			case tx := <-txs:
				from, err := types.Sender(b.signer, tx)
				if err != nil {
					continue
				}
				v := hexutil.Big(*tx.Value())
				for _, t := range b.txTransfer(rpcTx{Hash: tx.Hash(), From: from, To: tx.To(), Value: &v, Input: tx.Data()}, w, true) {
					onPending(t)
				}
			}
		}
	}()
	s.subs = []ethereum.Subscription{hs, ts}
	return s, nil
}

type subscription struct {
	r    *rpc.Client
	subs []ethereum.Subscription
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

func (s *subscription) Close() error {
	s.once.Do(func() {
		close(s.quit)
		select {
		case <-s.done:
		case <-time.After(time.Second):
		}
		for _, x := range s.subs {
			x.Unsubscribe()
		}
		s.r.Close()
	})
	return nil
}

// Balance returns addr's wei (asset "") or its balance of a listed token
// at the block with hash at.
func (b *Backend) Balance(ctx context.Context, addr, asset string, at chain.ID) (chain.Amount, error) {
	a, err := b.ParseAddress(addr)
	if err != nil {
		return chain.Amount{}, err
	}
	hh, err := hash(at)
	if err != nil {
		return chain.Amount{}, err
	}
	cctx, cancel := b.ctx(ctx)
	defer cancel()
	if asset == "" {
		v, err := b.c.Eth().BalanceAtHash(cctx, common.HexToAddress(a), hh)
		if err != nil {
			return chain.Amount{}, fmt.Errorf("ethchain: balance of %s at %s: %w", a, hh, err)
		}
		return chain.AmountFromBig(v)
	}
	tok, err := b.ParseAddress(asset)
	if err != nil {
		return chain.Amount{}, err
	}
	ta := common.HexToAddress(tok)
	if _, ok := b.tokens[ta]; !ok {
		return chain.Amount{}, fmt.Errorf("%w: %s", chain.ErrUnknownAsset, tok)
	}
	data := append(crypto.Keccak256([]byte("balanceOf(address)"))[:4], common.LeftPadBytes(common.HexToAddress(a).Bytes(), 32)...)
	out, err := b.c.Eth().CallContractAtHash(cctx, ethereum.CallMsg{To: &ta, Data: data}, hh)
	if err != nil {
		return chain.Amount{}, fmt.Errorf("ethchain: balanceOf %s on %s at %s: %w", a, tok, hh, err)
	}
	if len(out) != 32 {
		return chain.Amount{}, fmt.Errorf("ethchain: balanceOf on %s answered %d bytes", tok, len(out))
	}
	return chain.AmountFromBig(new(big.Int).SetBytes(out))
}

// Broadcast decodes raw as a signed transaction (RLP or typed envelope)
// and sends it with eth_sendRawTransaction; the id is its hash. One the
// node has in its pool ("already known") or has mined is not an error.
func (b *Backend) Broadcast(ctx context.Context, raw []byte) (chain.ID, error) {
	if len(raw) == 0 || len(raw) > MaxTxSize {
		return chain.ID{}, fmt.Errorf("%w: %d bytes", chain.ErrMalformed, len(raw))
	}
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(raw); err != nil {
		return chain.ID{}, fmt.Errorf("%w: %w", chain.ErrMalformed, err)
	}
	if _, err := types.Sender(b.signer, tx); err != nil {
		return chain.ID{}, fmt.Errorf("%w: signature: %w", chain.ErrMalformed, err)
	}
	h := tx.Hash()
	err := b.c.SendSigned(ctx, tx)
	cctx, cancel := b.ctx(ctx)
	defer cancel()
	if err == nil || strings.Contains(err.Error(), "already known") {
		return id(h), nil
	}
	if ctx.Err() != nil {
		return id(h), err
	}
	// Mined already: the node answers "nonce too low", the chain has it.
	if _, _, e := b.c.Eth().TransactionByHash(cctx, h); e == nil {
		return id(h), nil
	}
	var rerr rpc.Error
	if errors.As(err, &rerr) {
		return id(h), fmt.Errorf("%w: %w", chain.ErrRejected, err)
	}
	return id(h), fmt.Errorf("ethchain: eth_sendRawTransaction: %w", err)
}

// FeeEstimate is the fee cap per gas an EIP-1559 transaction would offer:
// the node's suggested tip plus twice the latest base fee.
func (b *Backend) FeeEstimate(ctx context.Context) (chain.Fee, error) {
	cctx, cancel := b.ctx(ctx)
	defer cancel()
	tip, err := b.c.Eth().SuggestGasTipCap(cctx)
	if err != nil {
		return chain.Fee{}, fmt.Errorf("ethchain: gas tip: %w", err)
	}
	head, err := b.c.Eth().HeaderByNumber(cctx, nil)
	if err != nil {
		return chain.Fee{}, fmt.Errorf("ethchain: latest header: %w", err)
	}
	fee := new(big.Int).Add(tip, new(big.Int).Mul(head.BaseFee, big.NewInt(2)))
	v, err := chain.AmountFromBig(fee)
	if err != nil {
		return chain.Fee{}, err
	}
	return chain.Fee{Rate: v, Unit: "wei/gas"}, nil
}
