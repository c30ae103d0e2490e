package cosigner

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/cockroachdb/pebble/v2"
	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/alert"
	"kinko/internal/anchor"
	"kinko/internal/chain/eth"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/mirror"
	"kinko/internal/people"
	"kinko/internal/wallet"
	"kinko/internal/withdraw"
	"kinko/internal/witness"
)

// Errors: every refusal says why.
var (
	ErrChainBroken   = errors.New("cosigner: journal chain broken; signing stopped")
	ErrUnexplained   = errors.New("cosigner: output pays neither a journaled withdrawal nor one of our pinned wallets")
	ErrNotOurs       = errors.New("cosigner: input is not of a pinned hot wallet holding the co-signer's key")
	ErrNotSignable   = errors.New("cosigner: withdrawal not signable")
	ErrCooling       = errors.New("cosigner: key or address not yet known for the cool-down by the co-signer's clock")
	ErrVelocity      = errors.New("cosigner: limit reached")
	ErrFee           = errors.New("cosigner: fee above the cap")
	ErrHalted        = errors.New("cosigner: halted")
	ErrAlreadySigned = errors.New("cosigner: withdrawal already signed in another transaction")
	ErrNoPolicy      = errors.New("cosigner: asset not in the co-signer's policy")
	ErrSighash       = errors.New("cosigner: only SIGHASH_ALL is signed")
	ErrMalformed     = errors.New("cosigner: malformed PSBT")
	// ErrAnchor refuses a non-paying output that is not exactly one anchor
	// of a head this host's mirror holds.
	ErrAnchor = errors.New("cosigner: OP_RETURN output is not an anchor of a head this host verified")
	// ErrFrozen refuses a withdrawal of a customer who froze theirs.
	ErrFrozen = errors.New("cosigner: the customer froze their withdrawals")
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

// credSeen is a customer's credential commitment after a change of
// password or second factor.
type credSeen struct {
	customer uint64
	commit   string
}

// Config configures a co-signer.
type Config struct {
	Net *chaincfg.Params
	// Account is hot key #2 (a BIP48 account private key), FP its master
	// fingerprint.
	Account *hdkeychain.ExtendedKey
	FP      [4]byte
	Policy  *Policy
	// Now is the co-signer's own clock.
	Now func() time.Time
	// StateDir holds the mirror of the journal and the co-signer's records.
	StateDir string
	// NoSync skips fsync (tests only).
	NoSync bool
	// Alert receives critical alerts (a broken history, a wallet the
	// journal registers that is not pinned, a halt).
	Alert func(alert.Alert)
	Log   *slog.Logger
	// EthKey is the co-signer's key on Ethereum, an owner of the pinned
	// hot Safes; EthNode the co-signer's own node, from which it reads a
	// Safe's next nonce (nil for a co-signer of Bitcoin only).
	EthKey  *ecdsa.PrivateKey
	EthNode *eth.Client
}

// Cosigner is the co-signer's state: its mirror of the journal and the
// replica of the state rebuilt from it, what it has seen and signed, and
// its halts, all kept in its state directory.
type Cosigner struct {
	mu     sync.Mutex
	cfg    Config
	policy *Policy
	pinned *wallet.Set
	byName map[uint32]PinnedWallet // pinned wallets by their set id

	m     *mirror.Mirror
	w     *witness.Witness // signs the heads of m
	st    *store
	seenB *pebble.Batch // first-seen times not yet durable
	keys  map[keySeen]time.Time
	addrs map[addrSeen]time.Time
	creds map[credSeen]time.Time
	txs   map[[32]byte]*Signed
	// atNonce is the SafeTx signed at each nonce of each Safe; next the
	// nonce after the highest signed, by Safe.
	atNonce map[safeNonce][32]byte
	next    map[common.Address]*big.Int
	wds     map[string][32]byte // withdrawal -> the transaction that paid it
	halts   map[string]Halt
	// disagree are the journal's wallets that are not pinned here.
	disagree map[uint32]string
	// lifts are the lift_halt requests signed by a pinned operator, by
	// request id, waiting for a pinned approver's signed approval.
	lifts  map[string]pendingLift
	closed bool
	// historyAlerted: the break of the history was alerted.
	historyAlerted bool
}

// Open opens the co-signer's state in cfg.StateDir (making it if needed)
// and replays its mirror of the journal: a restarted co-signer resumes
// from what it kept, never from what it is told.
func Open(cfg Config) (*Cosigner, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.StateDir == "" {
		return nil, errors.New("cosigner: a state directory is needed")
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	c := &Cosigner{cfg: cfg, keys: map[keySeen]time.Time{}, addrs: map[addrSeen]time.Time{}, creds: map[credSeen]time.Time{}, txs: map[[32]byte]*Signed{},
		wds: map[string][32]byte{}, halts: map[string]Halt{}, disagree: map[uint32]string{}, lifts: map[string]pendingLift{},
		atNonce: map[safeNonce][32]byte{}, next: map[common.Address]*big.Int{}}
	if err := c.setPolicy(cfg.Policy); err != nil {
		return nil, err
	}
	st, err := openStore(cfg.StateDir, cfg.NoSync)
	if err != nil {
		return nil, err
	}
	c.st = st
	if err := st.load(c.keys, c.addrs, c.creds, c.txs, c.halts); err != nil {
		st.close()
		return nil, err
	}
	for txid, r := range c.txs {
		for _, id := range r.Withdrawals {
			c.wds[id] = txid
		}
		if r.Safe != "" {
			if err := c.indexSafeTx(txid, r); err != nil {
				st.close()
				return nil, err
			}
		}
	}
	c.seenB = st.db.NewBatch()
	m, err := mirror.Open(cfg.StateDir+"/journal", cfg.NoSync, c.applied)
	if err != nil {
		st.close()
		return nil, err
	}
	c.m = m
	w, err := witness.Open(cfg.StateDir, "cosigner", m, cfg.NoSync)
	if err != nil {
		m.Close()
		st.close()
		return nil, err
	}
	c.w = w
	if err := c.flush(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the state.
func (c *Cosigner) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	err := c.flush()
	if e := c.m.Close(); err == nil {
		err = e
	}
	if e := c.w.Close(); err == nil {
		err = e
	}
	c.seenB.Close()
	if e := c.st.close(); err == nil {
		err = e
	}
	return err
}

// SetPolicy replaces the policy: called on SIGHUP after re-reading the file.
func (c *Cosigner) SetPolicy(p *Policy) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.setPolicy(p)
}

func (c *Cosigner) setPolicy(p *Policy) error {
	if p == nil {
		return fmt.Errorf("%w: none given", ErrPolicy)
	}
	ws := make([]wallet.Named, len(p.Wallets))
	byName := map[uint32]PinnedWallet{}
	for i, w := range p.Wallets {
		ws[i] = wallet.Named{ID: uint32(i + 1), Kind: w.Kind, Descriptor: w.Descriptor}
		byName[uint32(i+1)] = w
	}
	var set *wallet.Set
	if len(ws) > 0 {
		d0, err := wallet.Parse(ws[0].Descriptor, c.cfg.Net)
		if err != nil {
			return err
		}
		if set, err = wallet.NewSet(ws, d0); err != nil {
			return err
		}
	}
	c.policy, c.pinned, c.byName = p, set, byName
	return nil
}

// Seq returns the last journal entry verified.
func (c *Cosigner) Seq() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, _ := c.m.Head()
	return s
}

// Broken returns why following stopped, or nil.
func (c *Cosigner) Broken() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m.Broken()
}

// Halts returns the co-signer's own halts.
func (c *Cosigner) Halts() []Halt {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Halt, 0, len(c.halts))
	for _, h := range c.halts {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Asset < out[j].Asset })
	return out
}

func (c *Cosigner) alert(key, title, detail string) {
	c.cfg.Log.Error("ALERT "+title, "detail", detail)
	if c.cfg.Alert != nil {
		c.cfg.Alert(alert.Alert{Key: key, Severity: alert.Critical, Title: title, Detail: detail, Time: c.cfg.Now()})
	}
}

// Halt stops signing an asset (AllAssets: everything) at once, durably:
// what the watcher calls on an unexplained outflow, without going through
// the core. It stays until lifted on the co-signer's host.
func (c *Cosigner) Halt(asset, by, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.halt(asset, by, reason)
}

// ErrSignedHere declines a halt for a transaction this co-signer signed
// itself (HaltFor).
var ErrSignedHere = errors.New("cosigner: declined: this co-signer signed that transaction itself")

// ErrBadTxName reports a halt naming its transaction in no form HaltFor
// reads.
var ErrBadTxName = errors.New("cosigner: halt")

// HaltFor is Halt for one transaction the watcher could not explain: tx
// names it, a Bitcoin txid as shown or a SafeTx hash (0x…). It is declined
// with ErrSignedHere when this co-signer signed that very transaction of
// asset. It signed it only once its own mirror of the journal held the
// withdrawals it pays, within its limits; what the watcher missed is the
// journal's entry of it (the core died between the entry and the
// watcher's next read). A co-signer whose key an attacker holds signs
// without this process, and ignores halts anyway. Any other transaction
// halts asset as Halt does.
func (c *Cosigner) HaltFor(asset, tx, by, reason string) error {
	key, err := txKey(tx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.txs[key]; ok && r.Asset == asset {
		c.cfg.Log.Warn("a halt for a transaction this co-signer signed is declined", "asset", asset, "tx", tx, "signed", r.Time, "withdrawals", r.Withdrawals, "by", by, "reason", reason)
		return fmt.Errorf("%w: %s, signed %s for withdrawals %s", ErrSignedHere, tx, r.Time.UTC().Format(time.RFC3339), strings.Join(r.Withdrawals, ", "))
	}
	return c.halt(asset, by, reason)
}

// txKey is the key of c.txs for a transaction named as HaltFor takes it.
func txKey(tx string) ([32]byte, error) {
	if h, ok := strings.CutPrefix(tx, "0x"); ok {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 {
			return [32]byte{}, fmt.Errorf("%w: %q is not a SafeTx hash (0x and 64 hex digits)", ErrBadTxName, tx)
		}
		return [32]byte(b), nil
	}
	if len(tx) != 2*chainhash.HashSize {
		return [32]byte{}, fmt.Errorf("%w: %q is not a transaction id (64 hex digits)", ErrBadTxName, tx)
	}
	h, err := chainhash.NewHashFromStr(tx)
	if err != nil {
		return [32]byte{}, fmt.Errorf("%w: %q is not a transaction id: %v", ErrBadTxName, tx, err)
	}
	return [32]byte(*h), nil
}

func (c *Cosigner) halt(asset, by, reason string) error {
	if _, ok := c.halts[asset]; ok {
		return nil
	}
	h := Halt{Asset: asset, Reason: reason, By: by, Time: c.cfg.Now()}
	if err := c.st.putHalt(h); err != nil {
		return err
	}
	c.halts[asset] = h
	c.alert("cosigner-halt:"+asset, "co-signer halted "+asset, by+": "+reason)
	return nil
}

// Lift lifts one of the co-signer's own halts: done on its host only.
func (c *Cosigner) Lift(asset, by, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.halts[asset]; !ok {
		return fmt.Errorf("cosigner: %s is not halted here", asset)
	}
	if err := c.st.deleteHalt(asset); err != nil {
		return err
	}
	delete(c.halts, asset)
	c.cfg.Log.Warn("co-signer halt lifted on its host", "asset", asset, "by", by, "reason", reason)
	return nil
}

// Ingest verifies and applies the next journal entry, given as its stored
// bytes (durable at the next flush, which every Sign does first). An entry
// that does not decode, whose hash is wrong, or that does not link to the
// one before stops the co-signer for good.
func (c *Cosigner) Ingest(raw []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, err := c.m.Ingest(raw)
	if err != nil {
		return c.brokenHistory(err)
	}
	return c.applied(a)
}

// Flush makes what was ingested durable.
func (c *Cosigner) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flush()
}

func (c *Cosigner) flush() error {
	if err := c.m.Flush(); err != nil {
		return err
	}
	c.signHeads()
	if c.seenB.Empty() {
		return nil
	}
	err := c.seenB.Commit(c.st.sync)
	c.seenB.Close()
	c.seenB = c.st.db.NewBatch()
	return err
}

// Witness returns the co-signer's witness: the heads of its mirror it
// signed, to serve (Witness.Handler) and pin (Witness.VerifierKey).
func (c *Cosigner) Witness() *witness.Witness { return c.w }

// signHeads signs the heads of what the mirror gained. A head that cannot
// be signed or kept is logged: the mirror and its halts stand without it.
func (c *Cosigner) signHeads() {
	if err := c.w.Sign(); err != nil {
		c.cfg.Log.Error("witness: could not sign the mirror's heads", "err", err)
	}
}

// Forked halts everything on a core whose signed head the co-signer's own
// mirror contradicts, with a critical alert: the core shows a history that
// is not the one it streamed here.
func (c *Cosigner) Forked(fe *witness.ForkError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.alert("cosigner-fork", "the core signed a head the co-signer's mirror contradicts", fe.Error())
	if err := c.halt(AllAssets, "co-signer", "journal history: "+fe.Error()); err != nil {
		c.cfg.Log.Error("could not record the halt", "err", err)
	}
}

// brokenHistory halts everything on a history the co-signer cannot
// follow, with a critical alert (once per break).
func (c *Cosigner) brokenHistory(err error) error {
	why := err.Error()
	if !c.historyAlerted {
		c.historyAlerted = true
		if _, ok := c.halts[AllAssets]; ok {
			c.alert("cosigner-halt:"+AllAssets, "co-signer still halted: the journal is not the history it verified", why)
		} else if herr := c.halt(AllAssets, "co-signer", "journal history: "+why); herr != nil {
			c.cfg.Log.Error("could not record the halt", "err", herr)
		}
	}
	return fmt.Errorf("%w: %v", ErrChainBroken, err)
}

// applied records what an applied entry teaches the co-signer. Its own
// clock dates what it learns: a key, an address or a changed credential is
// as old as the co-signer has known it, whatever the entry says; and only
// a registration that took effect in its own replay counts. A revoked key
// or a removed address is forgotten at once (and its first-seen record
// with it): what it signs or pays is refused, and registered again it
// cools down anew.
//
// Every wallet the journal registers, or tries to, is compared with the
// wallets pinned here: an approved register_wallet request, and a
// register_wallet given directly, which apply refuses (only an approved
// request registers a wallet) but which says that someone writes the
// journal on the core's host.
func (c *Cosigner) applied(a mirror.Applied) error {
	if x, ok := a.Command.(core.RegisterWallet); ok {
		if !a.Replayed {
			c.alert(fmt.Sprintf("wallet-direct:%d", a.Outcome.Seq), "the journal holds a register_wallet given directly: written on the core's host, not approved by two operators",
				fmt.Sprintf("entry %d: wallet %d (%s) %s", a.Outcome.Seq, x.Wallet.ID, x.Wallet.Kind, x.Wallet.Descriptor))
		}
		c.compareWallet(x.Wallet, a.Replayed)
		return nil
	}
	if a.Outcome.Err != nil {
		return nil
	}
	if x, ok := a.Command.(core.DecideRequest); ok && x.Approve {
		if r, ok := a.Outcome.Value.(people.Request); ok && r.Kind == core.KindRegisterWalletRequest && r.State == people.RequestApproved {
			if p, err := core.DecodeRegisterWallet(r.Payload); err == nil {
				c.compareWallet(p.Wallet, a.Replayed)
			}
		}
	}
	c.followLifts(a)
	now := c.cfg.Now()
	switch x := a.Command.(type) {
	case core.RegisterIntentKey:
		k := keySeen{uint64(x.Customer), x.PubKey}
		if _, ok := c.keys[k]; !ok {
			c.keys[k] = now
			putSeen(c.seenB, keySeenKey(k), now)
		}
	case core.WhitelistAddress:
		k := addrSeen{uint64(x.Customer), x.Asset, x.Address}
		if _, ok := c.addrs[k]; !ok {
			c.addrs[k] = now
			putSeen(c.seenB, addrSeenKey(k), now)
		}
	case core.RevokeIntentKey:
		k := keySeen{uint64(x.Customer), x.PubKey}
		delete(c.keys, k)
		c.seenB.Delete(keySeenKey(k), nil)
	case core.RemoveAddress:
		k := addrSeen{uint64(x.Customer), x.Asset, x.Address}
		delete(c.addrs, k)
		c.seenB.Delete(addrSeenKey(k), nil)
	case core.ChangeCredentials:
		k := credSeen{uint64(x.Customer), x.Commit}
		if _, ok := c.creds[k]; !ok {
			c.creds[k] = now
			putSeen(c.seenB, credSeenKey(k), now)
		}
	}
	return nil
}

// compareWallet raises an alert for a wallet the journal registers that is
// not pinned here as the same kind: the journal is evidence, never
// authority on what is ours.
func (c *Cosigner) compareWallet(w custody.Wallet, replayed bool) {
	for _, sf := range c.policy.Safes {
		if sf.Descriptor == "" || sf.Descriptor != w.Descriptor {
			continue
		}
		if sf.Kind != w.Kind.String() {
			c.disagree[w.ID] = fmt.Sprintf("journal wallet %d is pinned here as the %s Safe %q, the journal says %s", w.ID, sf.Kind, sf.Name, w.Kind)
		}
		if !replayed && c.disagree[w.ID] != "" {
			c.alert(fmt.Sprintf("wallet-disagrees:%d", w.ID), "journal wallet disagrees with the co-signer's pinned wallets", c.disagree[w.ID])
		}
		return
	}
	for id, p := range c.byName {
		n := c.pinned.Wallets[id-1]
		if sameDescriptor(n.Descriptor, w.Descriptor) {
			if p.Kind != w.Kind.String() {
				c.disagree[w.ID] = fmt.Sprintf("journal wallet %d is pinned here as %s %q, the journal says %s", w.ID, p.Kind, p.Name, w.Kind)
			}
			if !replayed && c.disagree[w.ID] != "" {
				c.alert(fmt.Sprintf("wallet-disagrees:%d", w.ID), "journal wallet disagrees with the co-signer's pinned wallets", c.disagree[w.ID])
			}
			return
		}
	}
	c.disagree[w.ID] = fmt.Sprintf("journal wallet %d (%s) is not pinned on the co-signer's host: %s", w.ID, w.Kind, w.Descriptor)
	if !replayed {
		c.alert(fmt.Sprintf("wallet-disagrees:%d", w.ID), "journal registers a wallet not pinned on the co-signer's host", c.disagree[w.ID])
	}
}

func sameDescriptor(a, b string) bool {
	strip := func(s string) string {
		if i := strings.IndexByte(s, '#'); i >= 0 {
			return s[:i]
		}
		return s
	}
	return strip(a) == strip(b)
}

// Disagreements returns what the journal says about our wallets that the
// pinned wallets contradict.
func (c *Cosigner) Disagreements() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, s := range c.disagree {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// owner finds the pinned wallet a script pays (wallet.Set.Locate: derived
// indexes, or a PSBT's claimed place recomputed from the pinned descriptor).
func (c *Cosigner) owner(script []byte, hints []*psbt.Bip32Derivation) (*wallet.Named, bool) {
	if c.pinned == nil {
		return nil, false
	}
	w, _, ok := c.pinned.Locate(script, hints)
	return w, ok
}

// Sign checks every input and output of p and, if all are explained and
// within the limits, signs the inputs of the pinned hot wallet with the
// co-signer's key. Asked again for a transaction it signed, it returns the
// same signatures. It returns the withdrawals the transaction pays.
func (c *Cosigner) Sign(p *psbt.Packet) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.ready(); err != nil {
		return nil, err
	}
	if p.UnsignedTx == nil || len(p.Inputs) != len(p.UnsignedTx.TxIn) || len(p.Outputs) != len(p.UnsignedTx.TxOut) {
		return nil, ErrMalformed
	}
	txid := [32]byte(p.UnsignedTx.TxHash())
	// The source: every input of one pinned hot wallet holding our key.
	var src *wallet.Named
	var in int64
	for i, pin := range p.Inputs {
		if pin.WitnessUtxo == nil {
			return nil, fmt.Errorf("%w: input %d has no witness utxo", ErrMalformed, i)
		}
		if pin.SighashType != 0 && pin.SighashType != txscript.SigHashAll {
			return nil, fmt.Errorf("%w: input %d asks for sighash type %#x", ErrSighash, i, uint32(pin.SighashType))
		}
		if pin.NonWitnessUtxo != nil {
			op := p.UnsignedTx.TxIn[i].PreviousOutPoint
			if pin.NonWitnessUtxo.TxHash() != op.Hash || int(op.Index) >= len(pin.NonWitnessUtxo.TxOut) ||
				pin.NonWitnessUtxo.TxOut[op.Index].Value != pin.WitnessUtxo.Value || !bytes.Equal(pin.NonWitnessUtxo.TxOut[op.Index].PkScript, pin.WitnessUtxo.PkScript) {
				return nil, fmt.Errorf("%w: input %d: its previous transaction does not match its witness utxo", ErrMalformed, i)
			}
		}
		w, ok := c.owner(pin.WitnessUtxo.PkScript, pin.Bip32Derivation)
		if !ok || !custodyKind(w.Kind).Hot() || !c.holdsOurKey(w) {
			return nil, fmt.Errorf("%w: input %d", ErrNotOurs, i)
		}
		if src == nil {
			src = w
		} else if src != w {
			return nil, fmt.Errorf("%w: input %d is of another wallet than input 0", ErrNotOurs, i)
		}
		if pin.WitnessUtxo.Value <= 0 || in+pin.WitnessUtxo.Value < in {
			return nil, fmt.Errorf("%w: input %d value", ErrMalformed, i)
		}
		in += pin.WitnessUtxo.Value
	}
	if src == nil {
		return nil, fmt.Errorf("%w: no inputs", ErrMalformed)
	}
	asset := c.byName[src.ID].Asset
	lim, ok := c.policy.Limits[asset]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoPolicy, asset)
	}
	if h, ok := c.halts[asset]; ok {
		return nil, fmt.Errorf("%w: %s, by %s: %s", ErrHalted, asset, h.By, h.Reason)
	}
	if r, ok := c.txs[txid]; ok {
		// Idempotent: the same transaction gets the same signatures.
		return c.again(p, r)
	}
	now := c.cfg.Now()
	var pays []string
	used := map[string]bool{}
	perCust := map[uint64]withdraw.Amount{}
	var out, leaving int64
	anchored := -1
	for i, o := range p.UnsignedTx.TxOut {
		if o.Value < 0 || out+o.Value < out {
			return nil, fmt.Errorf("%w: output %d value", ErrMalformed, i)
		}
		out += o.Value
		if anchor.IsNullData(o.PkScript) {
			if err := c.checkAnchor(o, i, &anchored); err != nil {
				return nil, fmt.Errorf("output %d: %w", i, err)
			}
			continue
		}
		if w, ok := c.owner(o.PkScript, p.Outputs[i].Bip32Derivation); ok {
			if w != src {
				leaving += o.Value // to another of our wallets: it counts
			}
			continue
		}
		_, addrs, _, err := txscript.ExtractPkScriptAddrs(o.PkScript, c.cfg.Net)
		if err != nil || len(addrs) != 1 {
			return nil, fmt.Errorf("%w: output %d", ErrUnexplained, i)
		}
		wd, err := c.match(asset, addrs[0].EncodeAddress(), uint64(o.Value), used, now, txid)
		if err != nil {
			return nil, fmt.Errorf("output %d: %w", i, err)
		}
		used[wd.ID] = true
		pays = append(pays, wd.ID)
		perCust[wd.Customer] = perCust[wd.Customer].AddSat(wd.Intent.Amount)
		leaving += o.Value
	}
	fee := in - out
	if fee < 0 {
		return nil, fmt.Errorf("%w: outputs exceed inputs by %d", ErrMalformed, -fee)
	}
	if withdraw.AmountOf(uint64(fee)).Cmp(lim.FeeMax) > 0 {
		return nil, fmt.Errorf("%w: fee %d, fee_max %s", ErrFee, fee, lim.FeeMax)
	}
	r := &Signed{Time: now, TxID: fmt.Sprintf("%x", txid), Asset: asset, Withdrawals: pays, Customers: perCust, Out: withdraw.AmountOf(uint64(leaving)), Fee: withdraw.AmountOf(uint64(fee))}
	if err := c.limits(r, now); err != nil {
		return nil, err
	}
	if _, err := c.pinned.Only(src.ID).Sign(p, c.cfg.Account, c.cfg.FP); err != nil {
		return nil, err
	}
	s, err := wallet.Encode(p)
	if err != nil {
		return nil, err
	}
	r.PSBT = s
	// Durable before any signature leaves.
	if err := c.st.putSigned(txid, r); err != nil {
		return nil, fmt.Errorf("cosigner: cannot record what it signs: %w", err)
	}
	c.txs[txid] = r
	for _, id := range pays {
		c.wds[id] = txid
	}
	return pays, nil
}

// ready is what every signing starts with: what was ingested made
// durable, a history that holds, and no halt of everything.
func (c *Cosigner) ready() error {
	if err := c.flush(); err != nil {
		return err
	}
	if err := c.m.Broken(); err != nil {
		return c.brokenHistory(err)
	}
	if h, ok := c.halts[AllAssets]; ok {
		return fmt.Errorf("%w: everything, by %s: %s", ErrHalted, h.By, h.Reason)
	}
	return nil
}

// checkAnchor accepts the one OP_RETURN output a batch may carry: of 0
// sat, in the anchor format, naming a size and root that this host's own
// mirror holds, so no head the co-signer did not verify is anchored
// through it. Any other non-paying output is refused.
func (c *Cosigner) checkAnchor(o *wire.TxOut, i int, anchored *int) error {
	if *anchored >= 0 {
		return fmt.Errorf("%w: a second OP_RETURN output (output %d is one)", ErrAnchor, *anchored)
	}
	a, err := anchor.ParseOutput(o)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrAnchor, err)
	}
	th := c.m.TreeHead()
	if a.Size > th.Size {
		return fmt.Errorf("%w: it names a tree of %d entries; this host has verified %d", ErrAnchor, a.Size, th.Size)
	}
	root, err := c.m.RootAt(a.Size)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrAnchor, err)
	}
	if root != a.Root {
		return fmt.Errorf("%w: it names root %s for %d entries; this host's mirror has %s", ErrAnchor, a.Root, a.Size, root)
	}
	*anchored = i
	return nil
}

// again puts into p the signatures the co-signer gave the same
// transaction before.
func (c *Cosigner) again(p *psbt.Packet, r *Signed) ([]string, error) {
	prev, err := wallet.Read(strings.NewReader(r.PSBT))
	if err != nil {
		return nil, err
	}
	if err := wallet.Combine(p, prev); err != nil {
		return nil, err
	}
	return r.Withdrawals, nil
}

func custodyKind(s string) custody.WalletKind {
	k, _ := custody.ParseWalletKind(s)
	return k
}

func (c *Cosigner) holdsOurKey(w *wallet.Named) bool {
	pub, err := c.cfg.Account.Neuter()
	if err != nil {
		return false
	}
	for _, k := range w.Desc().Keys {
		if k.Fingerprint == c.cfg.FP && k.XPub.String() == pub.String() {
			return true
		}
	}
	return false
}

// match finds a withdrawal the output pays that passes every check: several
// withdrawals may share an address and amount, so a candidate that fails
// (already signed, not queued) does not end the search. With no candidate
// passing, the first candidate's refusal is the answer.
func (c *Cosigner) match(asset, addr string, value uint64, used map[string]bool, now time.Time, txid [32]byte) (withdraw.Withdrawal, error) {
	var first error
	for _, wd := range c.m.State().Withdraw.Withdrawals(0) {
		if wd.Intent.Asset != asset || wd.Intent.Address != addr || wd.Intent.Amount != withdraw.AmountOf(value) || used[wd.ID] {
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
	if other, ok := c.wds[wd.ID]; ok && other != txid {
		return fmt.Errorf("%w: %s", ErrAlreadySigned, wd.ID)
	}
	st := c.m.State()
	// What the co-signer keeps itself, first: the customer's freeze, and
	// how long it has known the key, the address and the credentials
	// (revoked, they are forgotten: unknown).
	if f := st.People.Frozen(ledger.OwnerID(wd.Customer)); f != nil {
		return fmt.Errorf("%w: %s, since entry %d (%s)", ErrFrozen, wd.ID, f.Seq, f.By)
	}
	cool := c.policy.CoolDown.Duration
	if t, ok := c.keys[keySeen{wd.Customer, wd.PubKey}]; !ok || now.Sub(t) < cool {
		return fmt.Errorf("%w: key of %s", ErrCooling, wd.ID)
	}
	if t, ok := c.addrs[addrSeen{wd.Customer, wd.Intent.Asset, wd.Intent.Address}]; !ok || now.Sub(t) < cool {
		return fmt.Errorf("%w: address of %s", ErrCooling, wd.ID)
	}
	if cu, ok := st.People.Customer(ledger.OwnerID(wd.Customer)); ok && cu.Creds.Changed != 0 {
		if t, ok := c.creds[credSeen{wd.Customer, cu.Creds.Commit}]; !ok || now.Sub(t) < cool {
			return fmt.Errorf("%w: the password or second factor of the customer of %s changed", ErrCooling, wd.ID)
		}
	}
	switch wd.Status {
	case withdraw.StatusQueued:
	case withdraw.StatusSigning:
		// In a batch: only the batch's own registered transaction.
		b, ok := st.Withdraw.BatchByTx(txid)
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

	a, ok := st.Ledger.AssetByCode(wd.Intent.Asset)
	if !ok {
		return ErrNoPolicy
	}
	if err := st.Controls.Allowed(a.ID, controls.Withdraw); err != nil {
		return fmt.Errorf("%w: %v", ErrHalted, err)
	}
	return nil
}

// usage is what was signed in a window.
type usage struct {
	cust       map[uint64]withdraw.Amount
	asset, fee withdraw.Amount
	tx         uint64
	allTx      uint64
	allYen     *big.Int
}

// window sums what was signed since since, in 128 bits. Sums that would
// pass 2^128 stay at 2^128-1, above every limit.
func (c *Cosigner) window(asset string, since time.Time) usage {
	u := usage{cust: map[uint64]withdraw.Amount{}, allYen: new(big.Int)}
	for _, r := range c.txs {
		if r.Time.Before(since) {
			continue
		}
		u.allTx++
		leaving := r.Out.AddSat(r.Fee)
		if l, ok := c.policy.Limits[r.Asset]; ok {
			u.allYen.Add(u.allYen, l.yen(leaving))
		}
		if r.Asset != asset {
			continue
		}
		u.tx++
		u.asset = u.asset.AddSat(leaving)
		u.fee = u.fee.AddSat(r.Fee)
		for cust, amt := range r.Customers {
			u.cust[cust] = u.cust[cust].AddSat(amt)
		}
	}
	return u
}

// limits checks r against every limit of the hour and the day, by the
// co-signer's own clock.
func (c *Cosigner) limits(r *Signed, now time.Time) error {
	lim := c.policy.Limits[r.Asset]
	all := c.policy.AllAssets
	leaving, over := r.Out.Add(r.Fee)
	if over {
		return fmt.Errorf("%w: %s leaving would pass 2^128 base units", ErrVelocity, r.Asset)
	}
	yen := lim.yen(leaving)
	for _, w := range []struct {
		name                   string
		span                   time.Duration
		perCust, perAsset, fee withdraw.Amount
		tx, yen, allTx         uint64
	}{
		{"hour", time.Hour, lim.PerCustomerHour, lim.PerAssetHour, lim.FeeHour, lim.TxHour, all.YenHour, all.TxHour},
		{"day", 24 * time.Hour, lim.PerCustomerDay, lim.PerAssetDay, lim.FeeDay, lim.TxDay, all.YenDay, all.TxDay},
	} {
		u := c.window(r.Asset, now.Add(-w.span))
		if got, over := u.asset.Add(leaving); over || got.Cmp(w.perAsset) > 0 {
			return fmt.Errorf("%w: %s leaving this %s would be %s, fees included (limit %s)", ErrVelocity, r.Asset, w.name, got, w.perAsset)
		}
		if got, over := u.fee.Add(r.Fee); over || got.Cmp(w.fee) > 0 {
			return fmt.Errorf("%w: %s fees this %s would be %s (limit %s)", ErrVelocity, r.Asset, w.name, got, w.fee)
		}
		if u.tx+1 > w.tx {
			return fmt.Errorf("%w: %d %s transactions this %s already (limit %d)", ErrVelocity, u.tx, r.Asset, w.name, w.tx)
		}
		if u.allTx+1 > w.allTx {
			return fmt.Errorf("%w: %d transactions of all assets this %s already (limit %d)", ErrVelocity, u.allTx, w.name, w.allTx)
		}
		if got := new(big.Int).Add(u.allYen, yen); got.Cmp(new(big.Int).SetUint64(w.yen)) > 0 {
			return fmt.Errorf("%w: all assets leaving this %s would be worth %s yen (limit %d)", ErrVelocity, w.name, got, w.yen)
		}
		custs := make([]uint64, 0, len(r.Customers))
		for cust := range r.Customers {
			custs = append(custs, cust)
		}
		sort.Slice(custs, func(i, j int) bool { return custs[i] < custs[j] })
		for _, cust := range custs {
			if got, over := u.cust[cust].Add(r.Customers[cust]); over || got.Cmp(w.perCust) > 0 {
				return fmt.Errorf("%w: customer %d would reach %s this %s (limit %s)", ErrVelocity, cust, got, w.name, w.perCust)
			}
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
