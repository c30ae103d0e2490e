package drill

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/ceremony"
	"kinko/internal/chain/btc/regtest"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/keys"
	"kinko/internal/ledger"
	"kinko/internal/reserves"
	"kinko/internal/wallet"
)

// leaked loads a demo key file as an attacker (or a ceremony) would use it.
func leaked(env *Env, name string) (*hdkeychain.ExtendedKey, [4]byte, error) {
	key, acct, err := accountOf(env, name)
	return acct, key.Fingerprint, err
}

// accountOf returns a demo key file's account key (xpub with origin) and
// its private key.
func accountOf(env *Env, name string) (wallet.Key, *hdkeychain.ExtendedKey, error) {
	k, err := keys.Load(filepath.Join(env.KeyDir, name), env.Passphrase, regtest.Net)
	if err != nil {
		return wallet.Key{}, nil, err
	}
	return wallet.AccountKey(k.Master, regtest.Net, 0)
}

// coldSign is one offline machine's part of a ceremony, as `kinko cold
// sign` does it: the machine registers wallet w, which must hold its key
// (the demo key file name), reads p against that registration alone,
// refuses it if an input or output claimed as ours is not the registered
// wallet's, and signs.
func coldSign(env *Env, name string, w custody.Wallet, p *psbt.Packet) error {
	key, acct, err := accountOf(env, name)
	if err != nil {
		return err
	}
	d, err := wallet.Parse(w.Descriptor, regtest.Net)
	if err != nil {
		return err
	}
	reg := wallet.NewRegistry(regtest.Net)
	if _, err := reg.Register(w.Kind.String(), w.Kind.String(), d, &key); err != nil {
		return fmt.Errorf("drill: %s registers %s: %w", name, w.Kind, err)
	}
	set, err := reg.Set()
	if err != nil {
		return err
	}
	desc, err := set.Describe(p, nil)
	if err != nil {
		return err
	}
	if err := desc.Refusal(); err != nil {
		return fmt.Errorf("drill: %s: %w", name, err)
	}
	_, err = set.Sign(p, acct, key.Fingerprint)
	return err
}

// mineAll mines until the mempool is empty (a block takes only so many
// large transactions), then confs more blocks on top.
func mineAll(ctx context.Context, node *regtest.Node, confs uint32) error {
	for range 100 {
		ids, err := node.Client().MempoolTxids(ctx)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			break
		}
		if _, err := node.Generate(ctx, 1); err != nil {
			return err
		}
	}
	_, err := node.Generate(ctx, confs)
	return err
}

// waitFor polls cond until it holds or the time is up.
func waitFor(what string, limit time.Duration, cond func() bool) error {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return nil
		}
	}
	return fmt.Errorf("drill: %s not within %v", what, limit)
}

// fundRunning prepares a running kinko dev the way its customers would:
// new customers get deposit addresses and pay their coins on chain, the
// dev's watcher credits them at its confirmations, and a refill ceremony,
// signed with two cold keys, moves the hot share to the hot wallet. Every
// step goes through the journal, so reconciliation agrees throughout.
func fundRunning(ctx context.Context, r *runner, env *Env, o Options, res *Result, say func(string, ...any)) (*hotSide, *houseSide, error) {
	c, node := env.Core, env.Node
	const jpy, btc ledger.AssetID = 1, 2
	confs := uint32(max(env.Confirmations, 1))
	var coldW, hotW, houseW custody.Wallet
	var base ledger.OwnerID
	c.Read(func(st *core.State) {
		for _, w := range st.Custody.Wallets() {
			if w.Asset == btc && w.Kind == custody.ColdCustomer && coldW.ID == 0 {
				coldW = w
			}
			if w.Asset == btc && w.Kind == custody.HotCustomer && hotW.ID == 0 {
				hotW = w
			}
			if w.Asset == btc && w.Kind == custody.ColdHouse && houseW.ID == 0 {
				houseW = w
			}
		}
		cs := st.Ledger.Customers()
		base = 1
		if len(cs) > 0 {
			base = cs[len(cs)-1] + 1
		}
	})
	if coldW.ID == 0 || hotW.ID == 0 || houseW.ID == 0 {
		return nil, nil, fmt.Errorf("drill: the running exchange has no BTC cold and hot customer wallets and cold house wallet")
	}
	r.first = base
	if err := signUpTraders(r, o); err != nil {
		return nil, nil, err
	}
	amounts, total := holdings(o)
	res.TotalSat = total
	if err := r.openCustomers(o.Customers, o); err != nil {
		return nil, nil, err
	}
	// Deposit addresses, then the coins on chain, a thousand outputs a
	// transaction.
	coldD, err := wallet.Parse(coldW.Descriptor, regtest.Net)
	if err != nil {
		return nil, nil, err
	}
	pay := map[string]btcutil.Amount{}
	flush := func() error {
		if len(pay) == 0 {
			return nil
		}
		_, err := node.SendTo(ctx, pay)
		pay = map[string]btcutil.Amount{}
		return err
	}
	for i := range o.Customers {
		id := base + ledger.OwnerID(i)
		ov, err := r.do(core.AssignAddress{Wallet: coldW.ID, Customer: id})
		if err != nil {
			return nil, nil, err
		}
		a, _, err := coldD.Address(0, ov.Value.(uint32))
		if err != nil {
			return nil, nil, err
		}
		pay[a.EncodeAddress()] = btcutil.Amount(amounts[i])
		if len(pay) == 1000 {
			if err := flush(); err != nil {
				return nil, nil, err
			}
			o.progress("paying deposits on chain", i+1, o.Customers)
		}
	}
	if err := flush(); err != nil {
		return nil, nil, err
	}
	if err := mineAll(ctx, node, confs); err != nil {
		return nil, nil, err
	}
	credited := func() bool {
		var sum int64
		c.Read(func(st *core.State) {
			for i := range o.Customers {
				a, _ := st.Ledger.Account(avail(base+ledger.OwnerID(i), btc))
				v, _ := a.Balance().Uint64()
				sum += int64(v)
			}
		})
		return sum == res.TotalSat
	}
	if err := waitFor("the deposits credited by the running watcher", 2*time.Minute, credited); err != nil {
		return nil, nil, err
	}
	say("holders: %d new customers deposited %s on chain, credited by the running watcher at %d confirmations", o.Customers, btcutil.Amount(res.TotalSat).Format(btcutil.AmountBTC), confs)

	// The refill ceremony: the core plans it with the wallets in its
	// journal; cold keys 1 and 2 sign the move of the hot share, each on
	// its offline machine against the cold wallet registered there.
	set, err := wallet.NewSet([]wallet.Named{{ID: coldW.ID, Kind: coldW.Kind.String(), Descriptor: coldW.Descriptor}, {ID: hotW.ID, Kind: hotW.Kind.String(), Descriptor: hotW.Descriptor}}, coldD)
	if err != nil {
		return nil, nil, err
	}
	var plan *ceremony.Plan
	c.Read(func(st *core.State) {
		plan, err = ceremony.Tiers(st, set, reserves.DefaultPolicy, 10, "drill-refill"+r.tag, r.ops[0])
	})
	if err != nil {
		return nil, nil, fmt.Errorf("drill: refill: %w", err)
	}
	if _, err := r.do(plan.Command); err != nil {
		return nil, nil, err
	}
	for _, name := range []string{"cold-customer-1.key", "cold-customer-2.key"} {
		if err := coldSign(env, name, coldW, plan.PSBT); err != nil {
			return nil, nil, err
		}
	}
	tx, err := wallet.Finalize(plan.PSBT)
	if err != nil {
		return nil, nil, err
	}
	if _, err := node.Client().Broadcast(ctx, tx); err != nil {
		return nil, nil, err
	}
	if err := mineAll(ctx, node, confs); err != nil {
		return nil, nil, err
	}
	// The hot wallet's coins from this refill (an earlier drill's stolen
	// ones are not spendable any more).
	var hotUTXOs []custody.UTXO
	if err := waitFor("the refill confirmed", 2*time.Minute, func() bool {
		hotUTXOs = hotUTXOs[:0]
		c.Read(func(st *core.State) {
			for _, u := range st.Custody.UTXOs(hotW.ID, custody.UTXOAvailable) {
				if u.Outpoint.TxID == [32]byte(tx.TxHash()) {
					hotUTXOs = append(hotUTXOs, u)
				}
			}
		})
		return len(hotUTXOs) > 0
	}); err != nil {
		return nil, nil, err
	}
	hotD, err := wallet.Parse(hotW.Descriptor, regtest.Net)
	if err != nil {
		return nil, nil, err
	}
	hotSet, err := wallet.NewSet([]wallet.Named{{ID: hotW.ID, Kind: hotW.Kind.String(), Descriptor: hotW.Descriptor}}, hotD)
	if err != nil {
		return nil, nil, err
	}
	h := &hotSide{set: hotSet, account: hotW.Account()}
	for _, u := range hotUTXOs {
		h.utxos = append(h.utxos, wallet.UTXO{OutPoint: wire.OutPoint{Hash: chainhash.Hash(u.Outpoint.TxID), Index: u.Outpoint.Vout}, Value: int64(u.Amount), Wallet: hotSet.Wallets[0], Branch: u.Branch, Index: u.Index})
		res.HotSat += int64(u.Amount)
	}
	for _, name := range []string{"hot-customer-1.key", "hot-customer-2.key"} {
		acct, fp, err := leaked(env, name)
		if err != nil {
			return nil, nil, err
		}
		h.acct, h.fp = append(h.acct, acct), append(h.fp, fp)
	}
	say("refill ceremony %s (two cold keys, each against the cold wallet registered on its machine) put %s in the hot wallet", plan.Command.Ceremony.ID, btcutil.Amount(res.HotSat).Format(btcutil.AmountBTC))
	if o.bitpoint {
		trust, made := r.yenTrust()
		if made {
			if _, err := r.do(core.CreateAccounts{Keys: []ledger.AccountKey{trust}}); err != nil {
				return nil, nil, err
			}
		}
		if err := openMarket(r, o.Customers, trust); err != nil {
			return nil, nil, err
		}
	}
	return h, &houseSide{w: houseW}, nil
}

func avail(o ledger.OwnerID, a ledger.AssetID) ledger.AccountKey {
	return ledger.AccountKey{Owner: o, Asset: a, Kind: ledger.KindAvailable}
}

func held(o ledger.OwnerID, a ledger.AssetID) ledger.AccountKey {
	return ledger.AccountKey{Owner: o, Asset: a, Kind: ledger.KindHeld}
}
