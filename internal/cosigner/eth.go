package cosigner

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"kinko/internal/chain/eth/safe"
	"kinko/internal/custody"
	"kinko/internal/ethwallet"
	"kinko/internal/withdraw"
)

// Errors of the Ethereum path: every refusal says why.
var (
	// ErrNotBuilt refuses a SafeTx whose fields (to, value, data,
	// operation, gas fields, nonce) are not those the co-signer built
	// itself from the journaled withdrawals.
	ErrNotBuilt = errors.New("cosigner: the SafeTx is not the one the co-signer built from the journaled withdrawals")
	// ErrSafeTxHash refuses a hash to sign that is not the EIP-712 hash
	// the co-signer computed for the SafeTx it built.
	ErrSafeTxHash = errors.New("cosigner: the hash asked for is not the hash of the SafeTx the co-signer built")
	// ErrDelegateCall refuses a DELEGATECALL to anything but the pinned
	// MultiSendCallOnly, or one inside a batch.
	ErrDelegateCall = errors.New("cosigner: delegatecall refused")
	// ErrRefund refuses a SafeTx paying a gas refund (gasPrice, baseGas,
	// gasToken or refundReceiver set).
	ErrRefund = errors.New("cosigner: gas refund refused")
	// ErrNonce refuses a nonce other than the Safe's next: one already
	// used (a replay) or one beyond it (skipped).
	ErrNonce = errors.New("cosigner: not the Safe's next nonce")
	// ErrNonceSigned refuses a second SafeTx at a nonce the co-signer
	// already signed another at: never two signatures at one nonce.
	ErrNonceSigned = errors.New("cosigner: another SafeTx was signed at this nonce")
	// ErrNoSafe refuses a withdrawal of an asset with no pinned hot Safe,
	// or a co-signer without its Ethereum key or node.
	ErrNoSafe = errors.New("cosigner: no pinned hot Safe to sign for")
)

// safeNonce is one nonce of one Safe.
type safeNonce struct {
	safe  common.Address
	nonce string // decimal
}

// SafeTxRequest is what the hot signer asks the co-signer to sign for the
// hot Safe: the journaled withdrawals it pays, by id and in the order of
// the batch's calls; the SafeTx it built (nonce included) and the hash it
// asks to be signed; and the gas it will send execTransaction with, whose
// most (GasLimit × MaxFeePerGas, in wei) counts against the asset's fee
// and velocity limits as a Bitcoin transaction's fee does.
type SafeTxRequest struct {
	Withdrawals  []string
	Tx           *safe.SafeTx
	Hash         common.Hash
	GasLimit     uint64
	MaxFeePerGas *big.Int
}

// SafeTxSignature is the co-signer's signature of a SafeTx.
type SafeTxSignature struct {
	Hash        common.Hash
	Signature   safe.Signature
	Withdrawals []string
}

// parseEthAddress takes 0x and forty hex digits; a mixed-case address
// must carry its EIP-55 checksum. The zero address is refused.
func parseEthAddress(s string) (common.Address, error) {
	if len(s) != 42 || !strings.HasPrefix(s, "0x") || !common.IsHexAddress(s) {
		return common.Address{}, fmt.Errorf("%q is not an Ethereum address", s)
	}
	a := common.HexToAddress(s)
	body := s[2:]
	if body != strings.ToLower(body) && body != strings.ToUpper(body) && a.Hex() != s {
		return common.Address{}, fmt.Errorf("%q has a wrong EIP-55 checksum", s)
	}
	if a == (common.Address{}) {
		return common.Address{}, fmt.Errorf("the zero address")
	}
	return a, nil
}

// hotSafe returns the pinned hot-customer Safe of an asset.
func (c *Cosigner) hotSafe(asset string) (PinnedSafe, common.Address, common.Address, bool) {
	for _, s := range c.policy.Safes {
		if s.Asset == asset && custodyKind(s.Kind) == custody.HotCustomer {
			a, _ := parseEthAddress(s.Address) // checked by ParsePolicy
			m, _ := parseEthAddress(s.MultiSend)
			return s, a, m, true
		}
	}
	return PinnedSafe{}, common.Address{}, common.Address{}, false
}

// SignSafeTx signs a SafeTx of the pinned hot Safe only if it is the one
// the co-signer builds itself. From the journaled withdrawals req names,
// found in its own replay and each passing every check of the Bitcoin
// path (check: customer signature, cool-downs, freeze, status, expiry,
// halts), it builds the SafeTx: one withdrawal is a CALL paying its amount
// in wei to its address with no data; several are one DELEGATECALL to the
// pinned MultiSendCallOnly whose calls are those payments in req's order;
// safeTxGas, baseGas and gasPrice are 0, gasToken and refundReceiver
// zero; the nonce is the Safe's next (the node's, or the one after the
// last it signed if that is later). It computes the EIP-712 hash itself
// with the chain id and Safe address of its policy, and signs only if
// req's SafeTx and hash are exactly these, within the limits (limits).
// What it signed is durable before the signature leaves; the same SafeTx
// asked again gets the same signature.
func (c *Cosigner) SignSafeTx(ctx context.Context, req SafeTxRequest) (*SafeTxSignature, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.ready(); err != nil {
		return nil, err
	}
	if c.cfg.EthKey == nil || c.cfg.EthNode == nil {
		return nil, fmt.Errorf("%w: the co-signer has no Ethereum key or node", ErrNoSafe)
	}
	if req.Tx == nil || len(req.Withdrawals) == 0 || len(req.Withdrawals) > safe.MaxBatch {
		return nil, fmt.Errorf("%w: a SafeTx and 1 to %d withdrawals are needed", ErrMalformed, safe.MaxBatch)
	}
	// The withdrawals, from the co-signer's own replay of the journal.
	st := c.m.State()
	wds := make([]withdraw.Withdrawal, len(req.Withdrawals))
	seen := map[string]bool{}
	for i, id := range req.Withdrawals {
		if seen[id] {
			return nil, fmt.Errorf("%w: withdrawal %s named twice", ErrMalformed, id)
		}
		seen[id] = true
		wd, ok := st.Withdraw.Get(id)
		if !ok {
			return nil, fmt.Errorf("%w: withdrawal %s is not in the journal the co-signer replayed", ErrUnexplained, id)
		}
		if i > 0 && wd.Intent.Asset != wds[0].Intent.Asset {
			return nil, fmt.Errorf("%w: withdrawals of %s and %s in one SafeTx", ErrUnexplained, wds[0].Intent.Asset, wd.Intent.Asset)
		}
		wds[i] = wd
	}
	asset := wds[0].Intent.Asset
	pin, addr, multiSend, ok := c.hotSafe(asset)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoSafe, asset)
	}
	lim, ok := c.policy.Limits[asset]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoPolicy, asset)
	}
	if h, ok := c.halts[asset]; ok {
		return nil, fmt.Errorf("%w: %s, by %s: %s", ErrHalted, asset, h.By, h.Reason)
	}
	chainID := new(big.Int).SetUint64(pin.ChainID)
	if got := c.cfg.EthNode.ChainID(); got.Cmp(chainID) != 0 {
		return nil, fmt.Errorf("%w: the co-signer's node is on chain %s, the pinned Safe %s on chain %s", ErrNoSafe, got, pin.Name, chainID)
	}
	// What the requested SafeTx would make the Safe do, named first: a
	// DELEGATECALL elsewhere than the pinned MultiSendCallOnly, or a
	// refund, whatever else it says.
	if _, err := safe.Calls(req.Tx, multiSend); err != nil {
		switch {
		case errors.Is(err, safe.ErrRefund):
			return nil, fmt.Errorf("%w: %w", ErrRefund, err)
		case errors.Is(err, safe.ErrDelegateCall):
			return nil, fmt.Errorf("%w: %w", ErrDelegateCall, err)
		case errors.Is(err, safe.ErrField):
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrNotBuilt, err)
	}
	asked, err := req.Tx.Hash(chainID, addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if r, ok := c.txs[[32]byte(asked)]; ok && r.Safe == addr.Hex() {
		// Idempotent: the same SafeTx gets the same signature.
		if req.Hash != asked {
			return nil, fmt.Errorf("%w: asked %s, the SafeTx's is %s", ErrSafeTxHash, req.Hash, asked)
		}
		return c.signedBefore(asked, r)
	}
	// The nonce: the Safe's next, read from the co-signer's own node,
	// or the one after the last it signed if that is later.
	if req.Tx.Nonce == nil {
		return nil, fmt.Errorf("%w: no nonce", ErrMalformed)
	}
	onChain, err := safe.Nonce(ctx, c.cfg.EthNode, addr)
	if err != nil {
		return nil, fmt.Errorf("cosigner: the Safe's nonce from its node: %w", err)
	}
	next := onChain
	if t, ok := c.next[addr]; ok && t.Cmp(next) > 0 {
		next = t
	}
	if req.Tx.Nonce.Cmp(onChain) < 0 {
		return nil, fmt.Errorf("%w: nonce %s is used on chain (replayed); the next is %s", ErrNonce, req.Tx.Nonce, next)
	}
	if _, ok := c.atNonce[safeNonce{addr, req.Tx.Nonce.String()}]; ok {
		return nil, fmt.Errorf("%w: nonce %s of %s", ErrNonceSigned, req.Tx.Nonce, addr)
	}
	if req.Tx.Nonce.Cmp(next) != 0 {
		return nil, fmt.Errorf("%w: nonce %s skips ahead; the next is %s", ErrNonce, req.Tx.Nonce, next)
	}
	// The SafeTx, built here.
	calls := make([]safe.Call, len(wds))
	perCust := map[uint64]withdraw.Amount{}
	var out withdraw.Amount
	for i, wd := range wds {
		to, err := parseEthAddress(wd.Intent.Address)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrNotSignable, wd.ID, err)
		}
		calls[i] = safe.Call{To: to, Value: wd.Intent.Amount.Big()}
		var over, overC bool
		out, over = out.Add(wd.Intent.Amount)
		perCust[wd.Customer], overC = perCust[wd.Customer].Add(wd.Intent.Amount)
		if over || overC {
			return nil, fmt.Errorf("%w: %s withdrawals of one SafeTx pass 2^128 wei", ErrVelocity, asset)
		}
	}
	var built *safe.SafeTx
	if len(calls) == 1 {
		built = safe.Transfer(calls[0].To, calls[0].Value, next)
	} else if built, err = safe.Batch(multiSend, calls, next); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	own, err := built.Hash(chainID, addr)
	if err != nil {
		return nil, err
	}
	now := c.cfg.Now()
	for _, wd := range wds {
		if err := c.check(wd, now, [32]byte(own)); err != nil {
			return nil, err
		}
	}
	if err := sameSafeTx(req.Tx, built); err != nil {
		return nil, err
	}
	if req.Hash != own {
		return nil, fmt.Errorf("%w: asked %s, computed %s", ErrSafeTxHash, req.Hash, own)
	}
	// The gas, at its most, is a fee as for Bitcoin.
	if req.GasLimit == 0 || req.MaxFeePerGas == nil || req.MaxFeePerGas.Sign() <= 0 {
		return nil, fmt.Errorf("%w: a gas limit and a max fee per gas are needed", ErrMalformed)
	}
	// A journaled batch journaled its gas before anyone signed: the core
	// takes at most that from the gas account, so that is what is counted.
	if b, ok := st.Withdraw.BatchByTx([32]byte(own)); ok && b.Safe != nil &&
		(b.Safe.GasLimit != req.GasLimit || b.Safe.MaxFeePerGas != req.MaxFeePerGas.String()) {
		return nil, fmt.Errorf("%w: gas %d at %s wei asked, the batch journaled gas %d at %s", ErrFee, req.GasLimit, req.MaxFeePerGas, b.Safe.GasLimit, b.Safe.MaxFeePerGas)
	}
	gas := new(big.Int).Mul(new(big.Int).SetUint64(req.GasLimit), req.MaxFeePerGas)
	fee, err := withdraw.AmountFromBig(gas)
	if err != nil || fee.Cmp(lim.FeeMax) > 0 {
		return nil, fmt.Errorf("%w: gas %d × %s wei = %s wei, fee_max %s", ErrFee, req.GasLimit, req.MaxFeePerGas, gas, lim.FeeMax)
	}
	r := &Signed{Time: now, TxID: own.Hex(), Asset: asset, Withdrawals: append([]string(nil), req.Withdrawals...), Customers: perCust,
		Out: out, Fee: fee, Safe: addr.Hex(), Nonce: next.String()}
	if err := c.limits(r, now); err != nil {
		return nil, err
	}
	sig, err := safe.Sign(own, c.cfg.EthKey)
	if err != nil {
		return nil, err
	}
	r.SafeSig = hex.EncodeToString(sig.RSV[:])
	// Durable before the signature leaves.
	if err := c.st.putSigned([32]byte(own), r); err != nil {
		return nil, fmt.Errorf("cosigner: cannot record what it signs: %w", err)
	}
	c.txs[[32]byte(own)] = r
	for _, id := range r.Withdrawals {
		c.wds[id] = [32]byte(own)
	}
	if err := c.indexSafeTx([32]byte(own), r); err != nil {
		return nil, err
	}
	return &SafeTxSignature{Hash: own, Signature: sig, Withdrawals: r.Withdrawals}, nil
}

// sameSafeTx names the first field in which asked differs from built.
func sameSafeTx(asked, built *safe.SafeTx) error {
	eq := func(a, b *big.Int) bool {
		if a == nil {
			a = new(big.Int)
		}
		if b == nil {
			b = new(big.Int)
		}
		return a.Cmp(b) == 0
	}
	switch {
	case asked.Operation != built.Operation:
		return fmt.Errorf("%w: operation %s, built %s", ErrNotBuilt, asked.Operation, built.Operation)
	case asked.To != built.To:
		return fmt.Errorf("%w: to %s, built %s", ErrNotBuilt, asked.To, built.To)
	case !eq(asked.Value, built.Value):
		return fmt.Errorf("%w: value %s wei, built %s", ErrNotBuilt, asked.Value, built.Value)
	case !bytes.Equal(asked.Data, built.Data):
		return fmt.Errorf("%w: calldata of %d bytes (keccak %x), built %d bytes (keccak %x)", ErrNotBuilt,
			len(asked.Data), crypto.Keccak256(asked.Data), len(built.Data), crypto.Keccak256(built.Data))
	case !eq(asked.SafeTxGas, built.SafeTxGas) || !eq(asked.BaseGas, built.BaseGas) || !eq(asked.GasPrice, built.GasPrice) ||
		asked.GasToken != built.GasToken || asked.RefundReceiver != built.RefundReceiver:
		return fmt.Errorf("%w: gas fields (safeTxGas %v, baseGas %v, gasPrice %v, gasToken %s, refundReceiver %s), built all zero", ErrNotBuilt,
			asked.SafeTxGas, asked.BaseGas, asked.GasPrice, asked.GasToken, asked.RefundReceiver)
	case !eq(asked.Nonce, built.Nonce):
		return fmt.Errorf("%w: nonce %v, built %v", ErrNotBuilt, asked.Nonce, built.Nonce)
	}
	return nil
}

// signedBefore returns the signature kept for a SafeTx signed before.
func (c *Cosigner) signedBefore(h common.Hash, r *Signed) (*SafeTxSignature, error) {
	b, err := hex.DecodeString(r.SafeSig)
	if err != nil || len(b) != safe.SignatureLen {
		return nil, fmt.Errorf("cosigner: state: the signature kept for %s is malformed", h)
	}
	s := safe.Signature{Owner: crypto.PubkeyToAddress(c.cfg.EthKey.PublicKey)}
	copy(s.RSV[:], b)
	return &SafeTxSignature{Hash: h, Signature: s, Withdrawals: r.Withdrawals}, nil
}

// indexSafeTx records the nonce a kept SafeTx was signed at.
func (c *Cosigner) indexSafeTx(h [32]byte, r *Signed) error {
	a, err := parseEthAddress(r.Safe)
	n, ok := new(big.Int).SetString(r.Nonce, 10)
	if err != nil || !ok || n.Sign() < 0 {
		return fmt.Errorf("cosigner: state: malformed SafeTx record %x", h)
	}
	c.atNonce[safeNonce{a, n.String()}] = h
	n1 := new(big.Int).Add(n, big.NewInt(1))
	if t, ok := c.next[a]; !ok || n1.Cmp(t) > 0 {
		c.next[a] = n1
	}
	return nil
}

// SafeTxBody is the body of POST /cosign/safetx: a SafeTxRequest in JSON.
// Numbers are decimal strings (wei, gas, nonce), addresses and the hash
// 0x-hex, data 0x-hex ("0x" for none). Every field is required.
type SafeTxBody struct {
	Withdrawals    []string `json:"withdrawals"`
	To             string   `json:"to"`
	Value          string   `json:"value"`
	Data           string   `json:"data"`
	Operation      uint8    `json:"operation"`
	SafeTxGas      string   `json:"safe_tx_gas"`
	BaseGas        string   `json:"base_gas"`
	GasPrice       string   `json:"gas_price"`
	GasToken       string   `json:"gas_token"`
	RefundReceiver string   `json:"refund_receiver"`
	Nonce          string   `json:"nonce"`
	Hash           string   `json:"hash"`
	GasLimit       uint64   `json:"gas_limit"`
	MaxFeePerGas   string   `json:"max_fee_per_gas"`
}

// SafeTxAnswer is the answer of POST /cosign/safetx.
type SafeTxAnswer struct {
	Hash        string   `json:"hash"`
	Owner       string   `json:"owner"`
	Signature   string   `json:"signature"` // 0x r ‖ s ‖ v, v 27 or 28
	Withdrawals []string `json:"withdrawals"`
}

// NewSafeTxBody writes req as the route's body.
func NewSafeTxBody(req SafeTxRequest) SafeTxBody {
	n := func(x *big.Int) string {
		if x == nil {
			return "0"
		}
		return x.String()
	}
	tx := req.Tx
	return SafeTxBody{Withdrawals: req.Withdrawals, To: tx.To.Hex(), Value: n(tx.Value), Data: "0x" + hex.EncodeToString(tx.Data),
		Operation: uint8(tx.Operation), SafeTxGas: n(tx.SafeTxGas), BaseGas: n(tx.BaseGas), GasPrice: n(tx.GasPrice),
		GasToken: tx.GasToken.Hex(), RefundReceiver: tx.RefundReceiver.Hex(), Nonce: n(tx.Nonce), Hash: req.Hash.Hex(),
		GasLimit: req.GasLimit, MaxFeePerGas: n(req.MaxFeePerGas)}
}

// Request reads the body into a SafeTxRequest, refusing any field that
// is missing or not in its form.
func (b SafeTxBody) Request() (SafeTxRequest, error) {
	var bad []string
	num := func(name, s string) *big.Int {
		x, ok := new(big.Int).SetString(s, 10)
		if !ok || strings.Trim(s, "0123456789") != "" || x.BitLen() > 256 || (len(s) > 1 && s[0] == '0') {
			bad = append(bad, name)
			return nil
		}
		return x
	}
	addr := func(name, s string) common.Address {
		if len(s) != 42 || !strings.HasPrefix(s, "0x") || !common.IsHexAddress(s) {
			bad = append(bad, name)
		}
		return common.HexToAddress(s)
	}
	tx := &safe.SafeTx{To: addr("to", b.To), Value: num("value", b.Value), Operation: safe.Operation(b.Operation),
		SafeTxGas: num("safe_tx_gas", b.SafeTxGas), BaseGas: num("base_gas", b.BaseGas), GasPrice: num("gas_price", b.GasPrice),
		GasToken: addr("gas_token", b.GasToken), RefundReceiver: addr("refund_receiver", b.RefundReceiver), Nonce: num("nonce", b.Nonce)}
	if d, err := hex.DecodeString(strings.TrimPrefix(b.Data, "0x")); err != nil || !strings.HasPrefix(b.Data, "0x") {
		bad = append(bad, "data")
	} else {
		tx.Data = d
	}
	var h common.Hash
	if hb, err := hex.DecodeString(strings.TrimPrefix(b.Hash, "0x")); err != nil || len(hb) != 32 || !strings.HasPrefix(b.Hash, "0x") {
		bad = append(bad, "hash")
	} else {
		h = common.Hash(hb)
	}
	fee := num("max_fee_per_gas", b.MaxFeePerGas)
	if b.Operation > uint8(safe.OpDelegateCall) {
		bad = append(bad, "operation")
	}
	if len(b.Withdrawals) == 0 {
		bad = append(bad, "withdrawals")
	}
	if b.GasLimit == 0 {
		bad = append(bad, "gas_limit")
	}
	if len(bad) > 0 {
		return SafeTxRequest{}, fmt.Errorf("%w: missing or malformed: %s", ErrMalformed, strings.Join(bad, ", "))
	}
	return SafeTxRequest{Withdrawals: b.Withdrawals, Tx: tx, Hash: h, GasLimit: b.GasLimit, MaxFeePerGas: fee}, nil
}

// ErrSafeSetup reports a pinned hot Safe that is not what the co-signer
// can guard: its node on another chain, its key not an owner, a threshold
// below two (the hot signer alone would suffice), owners or a threshold
// other than its pinned descriptor's, or a MultiSendCallOnly whose code
// is not the audited contract's.
var ErrSafeSetup = errors.New("cosigner: pinned Safe not as the co-signer needs it")

// VerifySafes checks on the co-signer's own node, before it serves, that
// every pinned hot Safe has the co-signer's key among its owners and a
// threshold of at least two, the owners and threshold of the pinned
// descriptor if there is one, and that the code at its pinned
// MultiSendCallOnly is byte for byte the one of art (the Safe contracts
// 1.4.1 installed on its host), so a DELEGATECALL it signs runs that code
// only.
func (c *Cosigner) VerifySafes(ctx context.Context, art *safe.Artifacts) error {
	c.mu.Lock()
	pol := c.policy
	key, node := c.cfg.EthKey, c.cfg.EthNode
	c.mu.Unlock()
	if key == nil || node == nil {
		return fmt.Errorf("%w: the co-signer has no Ethereum key or node", ErrSafeSetup)
	}
	me := crypto.PubkeyToAddress(key.PublicKey)
	for _, pin := range pol.Safes {
		if custodyKind(pin.Kind) != custody.HotCustomer {
			continue
		}
		addr, _ := parseEthAddress(pin.Address)
		ms, _ := parseEthAddress(pin.MultiSend)
		if got := node.ChainID(); got.Cmp(new(big.Int).SetUint64(pin.ChainID)) != 0 {
			return fmt.Errorf("%w: %s: the node is on chain %s, the Safe pinned on %d", ErrSafeSetup, pin.Name, got, pin.ChainID)
		}
		cfg, err := safe.Owners(ctx, node, addr)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrSafeSetup, pin.Name, err)
		}
		mine := false
		for _, o := range cfg.Owners {
			mine = mine || o == me
		}
		if !mine || cfg.Threshold < 2 {
			return fmt.Errorf("%w: %s: owners %v, threshold %d; the co-signer is %s", ErrSafeSetup, pin.Name, cfg.Owners, cfg.Threshold, me)
		}
		if pin.Descriptor != "" {
			d, err := ethwallet.Parse(pin.Descriptor)
			if err != nil {
				return fmt.Errorf("%w: %s: descriptor: %w", ErrSafeSetup, pin.Name, err)
			}
			if !sameOwners(d, cfg.Owners, cfg.Threshold) {
				return fmt.Errorf("%w: %s: owners %v and threshold %d on chain, not the pinned descriptor's %s", ErrSafeSetup, pin.Name, cfg.Owners, cfg.Threshold, pin.Descriptor)
			}
		}
		code, err := node.Code(ctx, ms)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrSafeSetup, pin.Name, err)
		}
		if !bytes.Equal(code, art.MultiSendCallOnly.DeployedBytecode) {
			return fmt.Errorf("%w: %s: the code at its MultiSendCallOnly %s (%d bytes) is not MultiSendCallOnly 1.4.1's", ErrSafeSetup, pin.Name, ms, len(code))
		}
	}
	return nil
}

// sameOwners tells whether a Safe's owners and threshold on chain are
// the descriptor's (as sets: the Safe lists its owners in its own order).
func sameOwners(d ethwallet.Descriptor, owners []common.Address, threshold int) bool {
	if d.Threshold != threshold || len(d.Owners) != len(owners) {
		return false
	}
	on := map[common.Address]bool{}
	for _, o := range owners {
		on[o] = true
	}
	for _, o := range d.Owners {
		if !on[common.Address(o)] {
			return false
		}
	}
	return true
}
