package cosigner

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"

	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/wallet"
	"kinko/internal/withdraw"
)

// Errors: every refusal says why.
var (
	ErrChainBroken     = errors.New("cosigner: journal chain broken; signing stopped")
	ErrUnexplained     = errors.New("cosigner: output pays neither a journaled withdrawal nor our hot wallet")
	ErrNotSignable     = errors.New("cosigner: withdrawal not signable")
	ErrCooling         = errors.New("cosigner: key or address not yet known for the cool-down by the co-signer's clock")
	ErrVelocity        = errors.New("cosigner: velocity limit reached")
	ErrFee             = errors.New("cosigner: fee above the cap")
	ErrHalted          = errors.New("cosigner: asset halted")
	ErrAlreadySigned   = errors.New("cosigner: withdrawal or transaction already signed")
	ErrNoPolicyForCoin = errors.New("cosigner: asset not in the co-signer's policy")
)

type keySeen struct {
	customer uint64
	pub      [32]byte
}

type addrSeen struct {
	customer uint64
	asset    string
	addr     string
}

type signedEvent struct {
	at       time.Time
	customer uint64
	asset    string
	amount   uint64
}

// Cosigner is the co-signer's state: its own replica of the core's state,
// rebuilt from the journal entries it verified, and what it has signed.
type Cosigner struct {
	mu      sync.Mutex
	net     *chaincfg.Params
	now     func() time.Time
	policy  *Policy
	account *hdkeychain.ExtendedKey // hot key #2, BIP48 account
	fp      [4]byte

	replica *core.Replica
	state   *core.State // the replica's
	broken  error
	keys    map[keySeen]time.Time
	addrs   map[addrSeen]time.Time
	signed  map[string]bool // withdrawal ids
	txs     map[[32]byte]bool
	events  []signedEvent

	set     *wallet.Set // our hot wallets, derived once per registry
	setSize int

	stateDir string         // where the log of what it signed is kept
	restored []signedRecord // signed before a restart, for velocity

	// halted are assets the watcher told it about directly: it stops
	// signing them whatever the journal says, until restarted by hand.
	halted map[string]string
}

// Halt stops signing an asset at once: what the watcher calls on an
// unexplained outflow, without going through the core.
func (c *Cosigner) Halt(asset, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.halted == nil {
		c.halted = map[string]string{}
	}
	if _, ok := c.halted[asset]; !ok {
		c.halted[asset] = reason
	}
}

// New returns a co-signer holding account (its hot key) with policy and its
// own clock.
func New(net *chaincfg.Params, account *hdkeychain.ExtendedKey, fp [4]byte, p *Policy, now func() time.Time) *Cosigner {
	r := core.NewReplica()
	return &Cosigner{net: net, now: now, policy: p, account: account, fp: fp, replica: r, state: r.State(),
		keys: map[keySeen]time.Time{}, addrs: map[addrSeen]time.Time{}, signed: map[string]bool{}, txs: map[[32]byte]bool{}}
}

// SetPolicy replaces the policy: called on SIGHUP after re-reading the file.
func (c *Cosigner) SetPolicy(p *Policy) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.policy = p
}

// Seq returns the last journal entry verified.
func (c *Cosigner) Seq() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.Seq()
}

// Broken returns why signing stopped, or nil.
func (c *Cosigner) Broken() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken
}

// Ingest verifies and applies the next journal entry, given as its stored
// bytes. An entry that does not decode, whose hash is wrong, or that does
// not link to the one before breaks the chain: the co-signer stops signing
// for good (until an operator restarts it on a verified journal).
func (c *Cosigner) Ingest(raw []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return c.broken
	}
	_, cmd, _, err := c.replica.Ingest(raw)
	if err != nil {
		c.broken = fmt.Errorf("%w: %v", ErrChainBroken, err)
		return c.broken
	}
	// The co-signer's own clock dates what it learns: a key or an address
	// is as old as the co-signer has known it, whatever the entry says.
	now := c.now()
	switch x := cmd.(type) {
	case core.RegisterIntentKey:
		k := keySeen{uint64(x.Customer), x.PubKey}
		if _, ok := c.keys[k]; !ok {
			c.keys[k] = now
		}
	case core.WhitelistAddress:
		k := addrSeen{uint64(x.Customer), x.Asset, x.Address}
		if _, ok := c.addrs[k]; !ok {
			c.addrs[k] = now
		}
	}
	return nil
}

// hotSet returns our hot customer wallets, recomputed from the descriptors
// in the journal.
func (c *Cosigner) hotSet() (*wallet.Set, error) {
	if n := len(c.state.Custody.Wallets()); c.set != nil && n == c.setSize {
		return c.set, nil
	}
	var ws []wallet.Named
	for _, w := range c.state.Custody.Wallets() {
		if w.Kind == custody.HotCustomer {
			ws = append(ws, wallet.Named{ID: w.ID, Kind: w.Kind.String(), Descriptor: w.Descriptor})
		}
	}
	if len(ws) == 0 {
		return nil, errors.New("cosigner: no hot wallet in the journal")
	}
	d, err := wallet.Parse(ws[0].Descriptor, c.net)
	if err != nil {
		return nil, err
	}
	set, err := wallet.NewSet(ws, d)
	if err != nil {
		return nil, err
	}
	c.set, c.setSize = set, len(c.state.Custody.Wallets())
	return set, nil
}

// Sign checks every output of p and, if all are explained and within the
// limits, signs the inputs of our hot wallet with the co-signer's key. It
// returns the withdrawals the transaction pays.
func (c *Cosigner) Sign(p *psbt.Packet) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return nil, c.broken
	}
	txid := [32]byte(p.UnsignedTx.TxHash())
	if c.txs[txid] {
		return nil, ErrAlreadySigned
	}
	set, err := c.hotSet()
	if err != nil {
		return nil, err
	}
	now := c.now()
	var in, out int64
	for i, pin := range p.Inputs {
		if pin.WitnessUtxo == nil {
			return nil, fmt.Errorf("cosigner: input %d has no witness utxo", i)
		}
		w, _, ok := set.Owner(pin.WitnessUtxo.PkScript)
		if !ok {
			return nil, fmt.Errorf("cosigner: input %d is not our hot wallet's", i)
		}
		if err := c.walletHalted(w.ID); err != nil {
			return nil, err
		}
		in += pin.WitnessUtxo.Value
	}
	var pays []string
	used := map[string]bool{}
	var asset string
	batch := map[uint64]uint64{} // customer -> amount in this transaction
	var batchTotal uint64
	for i, o := range p.UnsignedTx.TxOut {
		out += o.Value
		if _, _, ok := set.Owner(o.PkScript); ok {
			continue // back to our hot wallet, recomputed from its descriptor
		}
		_, addrs, _, err := txscript.ExtractPkScriptAddrs(o.PkScript, c.net)
		if err != nil || len(addrs) != 1 {
			return nil, fmt.Errorf("%w: output %d", ErrUnexplained, i)
		}
		wd, err := c.match(addrs[0].EncodeAddress(), uint64(o.Value), used, now, txid)
		if err != nil {
			return nil, fmt.Errorf("output %d: %w", i, err)
		}
		used[wd.ID] = true
		pays = append(pays, wd.ID)
		asset = wd.Intent.Asset
		batch[wd.Customer] += wd.Intent.Amount
		batchTotal += wd.Intent.Amount
	}
	if asset == "" {
		asset = "BTC"
	}
	if fm, ok := c.policy.FeeMax[asset]; !ok || in-out < 0 || uint64(in-out) > fm {
		return nil, fmt.Errorf("%w: %d", ErrFee, in-out)
	}
	if err := c.velocity(asset, batch, batchTotal, now); err != nil {
		return nil, err
	}
	if _, err := set.Sign(p, c.account, c.fp); err != nil {
		return nil, err
	}
	c.txs[txid] = true
	for _, id := range pays {
		c.signed[id] = true
	}
	for cust, amt := range batch {
		c.events = append(c.events, signedEvent{at: now, customer: cust, asset: asset, amount: amt})
	}
	return pays, nil
}

// walletHalted refuses a wallet whose asset is halted: by the journal, or
// by the watcher directly (before, or without, the core).
func (c *Cosigner) walletHalted(id uint32) error {
	w, ok := c.state.Custody.Wallet(id)
	if !ok {
		return fmt.Errorf("cosigner: wallet %d is not in the journal", id)
	}
	if err := c.state.Controls.Allowed(w.Asset, controls.Withdraw); err != nil {
		return fmt.Errorf("%w: %v", ErrHalted, err)
	}
	if a, ok := c.state.Ledger.Asset(w.Asset); ok {
		if why, ok := c.halted[a.Code]; ok {
			return fmt.Errorf("%w: told by the watcher: %s", ErrHalted, why)
		}
	}
	return nil
}

// match finds a withdrawal the output pays that passes every check: several
// withdrawals may share an address and amount, so a candidate that fails
// (already signed, not queued) does not end the search. With no candidate
// passing, the first candidate's refusal is the answer.
func (c *Cosigner) match(addr string, value uint64, used map[string]bool, now time.Time, txid [32]byte) (withdraw.Withdrawal, error) {
	var first error
	for _, wd := range c.state.Withdraw.Withdrawals(0) {
		if wd.Intent.Address != addr || wd.Intent.Amount != value || used[wd.ID] {
			continue
		}
		err := c.check(wd, now, txid)
		if err == nil {
			return wd, nil
		}
		if first == nil {
			first = err
		}
	}
	if first != nil {
		return withdraw.Withdrawal{}, first
	}
	return withdraw.Withdrawal{}, fmt.Errorf("%w: %s %d", ErrUnexplained, addr, value)
}

// check is every test one withdrawal must pass to be paid.
func (c *Cosigner) check(wd withdraw.Withdrawal, now time.Time, txid [32]byte) error {
	if c.signed[wd.ID] {
		return fmt.Errorf("%w: %s", ErrAlreadySigned, wd.ID)
	}
	switch wd.Status {
	case withdraw.StatusQueued:
	case withdraw.StatusSigning:
		// In a batch: only the batch's own registered transaction.
		b, ok := c.state.Withdraw.BatchByTx(txid)
		if !ok || !contains(b.Withdrawals, wd.ID) {
			return fmt.Errorf("%w: %s belongs to another batch", ErrNotSignable, wd.ID)
		}
	default:
		return fmt.Errorf("%w: %s is %s", ErrNotSignable, wd.ID, wd.Status)
	}
	if !wd.Intent.Verify(wd.PubKey[:], wd.Sig) {
		return fmt.Errorf("%w: %s has no valid customer signature", ErrNotSignable, wd.ID)
	}
	if now.Unix() >= wd.Intent.Expiry {
		return fmt.Errorf("%w: %s expired", ErrNotSignable, wd.ID)
	}
	cool := c.policy.CoolDown.Duration
	if t, ok := c.keys[keySeen{wd.Customer, wd.PubKey}]; !ok || now.Sub(t) < cool {
		return fmt.Errorf("%w: key of %s", ErrCooling, wd.ID)
	}
	if t, ok := c.addrs[addrSeen{wd.Customer, wd.Intent.Asset, wd.Intent.Address}]; !ok || now.Sub(t) < cool {
		return fmt.Errorf("%w: address of %s", ErrCooling, wd.ID)
	}
	a, ok := c.state.Ledger.AssetByCode(wd.Intent.Asset)
	if !ok {
		return ErrNoPolicyForCoin
	}
	if err := c.state.Controls.Allowed(a.ID, controls.Withdraw); err != nil {
		return fmt.Errorf("%w: %v", ErrHalted, err)
	}
	if why, ok := c.halted[wd.Intent.Asset]; ok {
		return fmt.Errorf("%w: told by the watcher: %s", ErrHalted, why)
	}
	return nil
}

// velocity checks the hour's limits by the co-signer's own clock.
func (c *Cosigner) velocity(asset string, batch map[uint64]uint64, total uint64, now time.Time) error {
	perCust, ok1 := c.policy.PerCustomerHour[asset]
	perAsset, ok2 := c.policy.PerAssetHour[asset]
	if !ok1 || !ok2 {
		return fmt.Errorf("%w: %s", ErrNoPolicyForCoin, asset)
	}
	sumAsset := total
	sums := map[uint64]uint64{}
	events := c.events
	for _, r := range c.restored {
		// Signed before a restart: amounts from the journal's withdrawals.
		for _, id := range r.Withdrawals {
			if wd, ok := c.state.Withdraw.Get(id); ok {
				events = append(events, signedEvent{at: r.Time, customer: wd.Customer, asset: wd.Intent.Asset, amount: wd.Intent.Amount})
			}
		}
	}
	for _, e := range events {
		if e.asset != asset || now.Sub(e.at) >= time.Hour {
			continue
		}
		sumAsset += e.amount
		sums[e.customer] += e.amount
	}
	if sumAsset > perAsset {
		return fmt.Errorf("%w: %s would reach %d this hour (limit %d)", ErrVelocity, asset, sumAsset, perAsset)
	}
	for cust, amt := range batch {
		if sums[cust]+amt > perCust {
			return fmt.Errorf("%w: customer %d would reach %d this hour (limit %d)", ErrVelocity, cust, sums[cust]+amt, perCust)
		}
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
