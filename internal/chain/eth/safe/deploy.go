package safe

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain/eth"
)

// Variant is which singleton a deployment's Safes run.
type Variant uint8

const (
	// L2 is SafeL2: it logs every execTransaction with all its fields
	// (SafeMultiSigTransaction), so a watcher without a tracing node sees
	// what any execution did, even one made from another contract. kinko's
	// default.
	L2 Variant = iota
	// L1 is Safe: cheaper, logs only ExecutionSuccess or ExecutionFailure
	// with the transaction's hash.
	L1
)

// String names the variant as its contract.
func (v Variant) String() string {
	if v == L1 {
		return "Safe"
	}
	return "SafeL2"
}

// Addresses are where a deployment's contracts live.
type Addresses struct {
	Singleton         common.Address
	ProxyFactory      common.Address
	MultiSendCallOnly common.Address
	FallbackHandler   common.Address
}

// Deployment is the Safe contracts on one chain: the addresses kinko
// pins, the chain id its signatures are bound to, and the artifacts whose
// code must be at those addresses (Verify).
type Deployment struct {
	Addresses
	Variant Variant
	ChainID *big.Int
	art     *Artifacts
}

// NewDeployment describes contracts already on a chain; Verify checks
// that their code is the artifacts'.
func NewDeployment(art *Artifacts, v Variant, chainID *big.Int, a Addresses) *Deployment {
	return &Deployment{Addresses: a, Variant: v, ChainID: new(big.Int).Set(chainID), art: art}
}

func (d *Deployment) singleton() *Contract {
	if d.Variant == L1 {
		return d.art.Safe
	}
	return d.art.SafeL2
}

// Deploy creates the singleton of variant v, the proxy factory,
// MultiSendCallOnly and the fallback handler from key's account, and
// verifies the code each left.
func Deploy(ctx context.Context, c *eth.Client, key *ecdsa.PrivateKey, art *Artifacts, v Variant) (*Deployment, error) {
	d := &Deployment{Variant: v, ChainID: c.ChainID(), art: art}
	for _, x := range []struct {
		c   *Contract
		dst *common.Address
	}{
		{d.singleton(), &d.Singleton}, {art.ProxyFactory, &d.ProxyFactory},
		{art.MultiSendCallOnly, &d.MultiSendCallOnly}, {art.FallbackHandler, &d.FallbackHandler},
	} {
		r, err := c.Send(ctx, key, eth.Tx{Data: x.c.Bytecode})
		if err != nil {
			return nil, fmt.Errorf("safe: deploy %s: %w", x.c.Name, err)
		}
		*x.dst = r.ContractAddress
	}
	if err := d.Verify(ctx, c); err != nil {
		return nil, err
	}
	return d, nil
}

// ErrWrongCode reports an address whose code is not the pinned contract's.
var ErrWrongCode = errors.New("safe: code at a pinned address is not the contract's")

// Verify checks that the code at each of the deployment's addresses is
// the runtime code of its artifact: a MultiSend or singleton that someone
// else deployed at an address kinko was told is refused.
func (d *Deployment) Verify(ctx context.Context, c *eth.Client) error {
	for _, x := range []struct {
		c    *Contract
		addr common.Address
	}{
		{d.singleton(), d.Singleton}, {d.art.ProxyFactory, d.ProxyFactory},
		{d.art.MultiSendCallOnly, d.MultiSendCallOnly}, {d.art.FallbackHandler, d.FallbackHandler},
	} {
		code, err := c.Code(ctx, x.addr)
		if err != nil {
			return err
		}
		if !bytes.Equal(code, x.c.DeployedBytecode) {
			return fmt.Errorf("%w: %s at %s (%d bytes of code)", ErrWrongCode, x.c.Name, x.addr, len(code))
		}
	}
	return nil
}

// SentinelOwners is the Safe's list sentinel (address 1), which cannot be
// an owner.
var SentinelOwners = common.HexToAddress("0x0000000000000000000000000000000000000001")

// MaxOwners bounds a Safe's owners in kinko's configurations.
const MaxOwners = 16

// Config is a Safe's setup: its owners and how many must sign.
type Config struct {
	Owners    []common.Address
	Threshold int
}

// ErrConfig reports a Safe configuration the contract would refuse or
// kinko does not make.
var ErrConfig = errors.New("safe: bad Safe configuration")

// Validate checks the configuration as the Safe's setupOwners does
// (no zero or sentinel owner, none twice, 1 ≤ threshold ≤ owners).
func (cfg Config) Validate() error {
	if len(cfg.Owners) == 0 || len(cfg.Owners) > MaxOwners {
		return fmt.Errorf("%w: %d owners (1 to %d)", ErrConfig, len(cfg.Owners), MaxOwners)
	}
	if cfg.Threshold < 1 || cfg.Threshold > len(cfg.Owners) {
		return fmt.Errorf("%w: threshold %d of %d owners", ErrConfig, cfg.Threshold, len(cfg.Owners))
	}
	seen := map[common.Address]bool{}
	for _, o := range cfg.Owners {
		if o == (common.Address{}) || o == SentinelOwners {
			return fmt.Errorf("%w: owner %s", ErrConfig, o)
		}
		if seen[o] {
			return fmt.Errorf("%w: owner %s twice", ErrConfig, o)
		}
		seen[o] = true
	}
	return nil
}

// Initializer returns the calldata of setup for cfg, as the proxy factory
// passes it to a new proxy: the owners and threshold, the deployment's
// fallback handler, no module setup delegatecall (to 0, no data) and no
// payment.
func (d *Deployment) Initializer(cfg Config) ([]byte, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b, err := iface.Pack("setup", cfg.Owners, big.NewInt(int64(cfg.Threshold)), common.Address{}, []byte{},
		d.FallbackHandler, common.Address{}, new(big.Int), common.Address{})
	if err != nil {
		return nil, fmt.Errorf("safe: setup: %w", err)
	}
	return b, nil
}

// ProxyInitCodeHash returns keccak(proxy creation code ‖
// uint256(singleton)): the init code hash of every proxy of the
// deployment, as SafeProxyFactory.deployProxy builds it.
func (d *Deployment) ProxyInitCodeHash() common.Hash {
	var w [32]byte
	addrWord(w[:], d.Singleton)
	return crypto.Keccak256Hash(d.art.Proxy.Bytecode, w[:])
}

// Predictor computes the counterfactual addresses of Safes with one
// initializer and any salt nonce, from the factory's createProxyWithNonce
// (salt = keccak(keccak(initializer) ‖ uint256(saltNonce)), then CREATE2:
// keccak(0xff ‖ factory ‖ salt ‖ keccak(init code))[12:]), without the
// chain. A Predictor is not safe for concurrent use: make one per
// goroutine.
type Predictor struct {
	saltIn [64]byte // keccak(initializer) ‖ saltNonce
	create [85]byte // 0xff ‖ factory ‖ salt ‖ init code hash
	h      crypto.KeccakState
	out    [32]byte
}

// Predictor returns a predictor for the Safes whose setup is initializer.
func (d *Deployment) Predictor(initializer []byte) *Predictor {
	p := &Predictor{h: crypto.NewKeccakState()}
	ih := crypto.Keccak256Hash(initializer)
	copy(p.saltIn[:32], ih[:])
	p.create[0] = 0xff
	copy(p.create[1:21], d.ProxyFactory[:])
	ch := d.ProxyInitCodeHash()
	copy(p.create[53:85], ch[:])
	return p
}

// Address returns the address createProxyWithNonce(singleton,
// initializer, saltNonce) will deploy to; saltNonce must be a uint256.
func (p *Predictor) Address(saltNonce *big.Int) (common.Address, error) {
	if err := word(p.saltIn[32:], saltNonce, "salt nonce"); err != nil {
		return common.Address{}, err
	}
	p.h.Reset()
	p.h.Write(p.saltIn[:])
	p.h.Read(p.create[21:53])
	p.h.Reset()
	p.h.Write(p.create[:])
	p.h.Read(p.out[:])
	return common.BytesToAddress(p.out[12:]), nil
}

// AddressIndex is Address for a salt nonce that fits 64 bits (a deposit
// address's index): no allocation.
func (p *Predictor) AddressIndex(i uint64) common.Address {
	clear(p.saltIn[32:56])
	for k := range 8 {
		p.saltIn[63-k] = byte(i >> (8 * k))
	}
	p.h.Reset()
	p.h.Write(p.saltIn[:])
	p.h.Read(p.create[21:53])
	p.h.Reset()
	p.h.Write(p.create[:])
	p.h.Read(p.out[:])
	return common.BytesToAddress(p.out[12:])
}

// ErrNoProxyCreation reports a factory call whose receipt has no
// ProxyCreation event of the factory.
var ErrNoProxyCreation = errors.New("safe: no ProxyCreation event in the receipt")

// CreateProxy deploys the Safe proxy with initializer and saltNonce
// through the factory (from key's account, which pays the gas) and
// returns the address the factory's ProxyCreation event names.
func (d *Deployment) CreateProxy(ctx context.Context, c *eth.Client, key *ecdsa.PrivateKey, initializer []byte, saltNonce *big.Int) (common.Address, *types.Receipt, error) {
	data, err := iface.Pack("createProxyWithNonce", d.Singleton, initializer, orZero(saltNonce))
	if err != nil {
		return common.Address{}, nil, fmt.Errorf("safe: createProxyWithNonce: %w", err)
	}
	f := d.ProxyFactory
	r, err := c.Send(ctx, key, eth.Tx{To: &f, Data: data})
	if err != nil {
		return common.Address{}, r, fmt.Errorf("safe: create proxy: %w", err)
	}
	ev := iface.Events["ProxyCreation"]
	for _, l := range r.Logs {
		if l.Address == f && len(l.Topics) == 2 && l.Topics[0] == ev.ID {
			return common.BytesToAddress(l.Topics[1][:]), r, nil
		}
	}
	return common.Address{}, r, ErrNoProxyCreation
}

// call runs a view method of iface on addr and unpacks its outputs.
func call(ctx context.Context, c *eth.Client, addr common.Address, method string, args ...any) ([]any, error) {
	data, err := iface.Pack(method, args...)
	if err != nil {
		return nil, fmt.Errorf("safe: %s: %w", method, err)
	}
	out, err := c.Call(ctx, common.Address{}, addr, data)
	if err != nil {
		return nil, fmt.Errorf("safe: %s: %w", method, err)
	}
	vals, err := iface.Methods[method].Outputs.Unpack(out)
	if err != nil {
		return nil, fmt.Errorf("safe: %s at %s: %w", method, addr, err)
	}
	return vals, nil
}

// Nonce returns the Safe's next transaction nonce.
func Nonce(ctx context.Context, c *eth.Client, safe common.Address) (*big.Int, error) {
	v, err := call(ctx, c, safe, "nonce")
	if err != nil {
		return nil, err
	}
	return v[0].(*big.Int), nil
}

// Owners returns the Safe's owners and threshold as the chain has them.
func Owners(ctx context.Context, c *eth.Client, safe common.Address) (Config, error) {
	o, err := call(ctx, c, safe, "getOwners")
	if err != nil {
		return Config{}, err
	}
	t, err := call(ctx, c, safe, "getThreshold")
	if err != nil {
		return Config{}, err
	}
	th := t[0].(*big.Int)
	if !th.IsInt64() || th.Int64() > MaxOwners {
		return Config{}, fmt.Errorf("safe: threshold %s at %s", th, safe)
	}
	return Config{Owners: o[0].([]common.Address), Threshold: int(th.Int64())}, nil
}

// ContractHash asks the Safe for tx's hash (its getTransactionHash):
// what kinko computes itself with SafeTx.Hash, for tests to compare.
func ContractHash(ctx context.Context, c *eth.Client, safe common.Address, tx *SafeTx) (common.Hash, error) {
	v, err := call(ctx, c, safe, "getTransactionHash", tx.To, orZero(tx.Value), nonNil(tx.Data), uint8(tx.Operation),
		orZero(tx.SafeTxGas), orZero(tx.BaseGas), orZero(tx.GasPrice), tx.GasToken, tx.RefundReceiver, orZero(tx.Nonce))
	if err != nil {
		return common.Hash{}, err
	}
	return common.Hash(v[0].([32]byte)), nil
}

// ErrExecutionFailed reports an execTransaction that was mined but whose
// inner call failed (the Safe logged ExecutionFailure; possible only with
// a non-zero safeTxGas or gasPrice, which kinko does not set).
var ErrExecutionFailed = errors.New("safe: execution failed")

// Exec sends execTransaction of tx with sigs to the Safe at safe from
// key's account, which pays the gas; gas 0 estimates it (a transaction the
// Safe would refuse then fails before it is sent), a fixed gas sends it
// as it is. tx.Nonce must be the one signed. It returns the receipt once
// mined, with an error unless the Safe logged ExecutionSuccess for the
// hash kinko computes for tx.
func (d *Deployment) Exec(ctx context.Context, c *eth.Client, key *ecdsa.PrivateKey, safe common.Address, tx *SafeTx, sigs []byte, gas uint64) (*types.Receipt, error) {
	return Execute(ctx, c, key, d.ChainID, safe, tx, sigs, gas)
}

// Execute is Exec for a Safe on chain chainID known by its address alone,
// as an offline ceremony's submitter knows it: the hash it expects the
// Safe to log is the one it computes for that chain and Safe.
func Execute(ctx context.Context, c *eth.Client, key *ecdsa.PrivateKey, chainID *big.Int, safe common.Address, tx *SafeTx, sigs []byte, gas uint64) (*types.Receipt, error) {
	want, err := tx.Hash(chainID, safe)
	if err != nil {
		return nil, err
	}
	data, err := ExecCalldata(tx, sigs)
	if err != nil {
		return nil, err
	}
	r, err := c.Send(ctx, key, eth.Tx{To: &safe, Data: data, Gas: gas})
	if err != nil {
		return r, fmt.Errorf("safe: execTransaction: %w", err)
	}
	ok, fail := iface.Events["ExecutionSuccess"].ID, iface.Events["ExecutionFailure"].ID
	for _, l := range r.Logs {
		if l.Address != safe || len(l.Topics) != 2 {
			continue
		}
		switch {
		case l.Topics[0] == ok && l.Topics[1] == want:
			return r, nil
		case l.Topics[0] == fail:
			return r, ErrExecutionFailed
		}
	}
	return r, fmt.Errorf("safe: execTransaction mined without ExecutionSuccess for %s", want)
}

// Simulate runs execTransaction of tx with sigs as a call from from, at
// the latest block, without sending it: the Safe's refusal comes back as
// an error whose text has its code (GS020 too few signatures, GS026 not
// an owner's or not sorted, GS013 inner call failed).
func Simulate(ctx context.Context, c *eth.Client, from, safe common.Address, tx *SafeTx, sigs []byte) error {
	data, err := ExecCalldata(tx, sigs)
	if err != nil {
		return err
	}
	_, err = c.Call(ctx, from, safe, data)
	return err
}
