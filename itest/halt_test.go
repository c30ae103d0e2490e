package itest

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/chain/btc/regtest"
	"kinko/internal/cosigner"
	"kinko/internal/journal"
	"kinko/internal/journal/journaltest"
	"kinko/internal/keys"
	"kinko/internal/wallet"
)

// leakedKey loads one of the hot wallet's key files, as a thief who took it.
func leakedKey(t *testing.T, k Key) (acct interface{ String() string }, sign func(*wallet.Set, *psbt.Packet)) {
	t.Helper()
	pass, err := os.ReadFile(k.Passphrase)
	if err != nil {
		t.Fatal(err)
	}
	key, err := keys.Load(k.File, strings.TrimSpace(string(pass)), regtest.Net)
	if err != nil {
		t.Fatal(err)
	}
	ak, a, err := wallet.AccountKey(key.Master, regtest.Net, 0)
	if err != nil {
		t.Fatal(err)
	}
	return a, func(s *wallet.Set, p *psbt.Packet) {
		if _, err := s.Sign(p, a, ak.Fingerprint); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWatcherHaltsCosignerWithCoreDown: the core is down (killed); two hot
// keys leak (the signer's and the offline backup) and the thief sends the
// hot wallet straight to the node. The watcher, on its own host, sees it in
// the mempool and halts the co-signer directly within a second of the
// broadcast, though the core does not answer; the co-signer refuses from
// then on; when the core is back the watcher journals the halt and the
// incident it kept.
func TestWatcherHaltsCosignerWithCoreDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	d := Deploy(t, Options{})
	c, err := d.NewCustomer(ctx, "hanako@example.jp")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Fund(ctx, c, 5_0000_0000); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Refill(ctx, "refill-1"); err != nil {
		t.Fatal(err)
	}
	v := newAttacker(t, d).view(ctx)
	if len(v.UTXOs) == 0 {
		t.Fatal("no hot coin")
	}
	if err := d.WaitCosignerCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Core.Kill(); err != nil {
		t.Fatal(err)
	}

	// The theft, signed with the two leaked keys, broadcast to the node.
	hot := mustDescriptor(t, d.Wallets.HotCustomer)
	set, _ := wallet.NewSet([]wallet.Named{{ID: WalletHotCustomer, Kind: "hot-customer", Descriptor: d.Wallets.HotCustomer}}, hot)
	u := v.UTXOs[0]
	in := wallet.UTXO{OutPoint: wire.OutPoint{Hash: chainhash.Hash(u.Outpoint.TxID), Index: u.Outpoint.Vout}, Value: int64(u.Amount), Wallet: set.Wallets[0], Branch: u.Branch, Index: u.Index}
	p, err := wallet.Build([]wallet.UTXO{in}, []*wire.TxOut{toAddress(t, payee(t), int64(u.Amount)-20_000)}, nil, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []Key{d.HotKeys[0], d.HotKeys[2]} {
		_, sign := leakedKey(t, k)
		sign(set, p)
	}
	theft, err := wallet.Finalize(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Node.Client().Broadcast(ctx, theft); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var halted time.Duration
	for halted == 0 && time.Since(start) < 10*time.Second {
		if st, err := d.CosignerStatus(); err == nil {
			for _, h := range st.Halts {
				if h.Asset == "BTC" && h.By == "watcher" {
					halted = time.Since(start)
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("core down: broadcast -> co-signer halted by the watcher in %v", halted)
	if halted == 0 || halted > time.Second {
		t.Fatalf("co-signer halted %v after the broadcast, with the core down; want within 1s", halted)
	}
	// The co-signer refuses whatever it is asked now.
	a := newAttacker(t, d)
	if _, err := a.ask(ctx, a.psbtFrom(u, v.Hot.NextChange, 0, toAddress(t, payee(t), 10_000))); err == nil || !strings.Contains(err.Error(), "halted") {
		t.Fatalf("co-signer after the halt = %v; want halted", err)
	}

	// The core comes back: the watcher journals the halt and the incident
	// it kept on its host.
	if err := d.Core.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.wait(ctx, "the halt journaled", func() (bool, error) {
		st, err := d.Operator.Status(ctx)
		if err != nil {
			return false, nil
		}
		for _, h := range st.Halts {
			if strings.Contains(h.Reason, theft.TxHash().String()) {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	// The co-signer's own halt stays until lifted on its host.
	if out, err := d.Kinko(ctx, d.CosignerDir, "cosigner", "lift", "--state", filepath.Join(d.CosignerDir, "state"), "--asset", "BTC", "--by", "aiko", "--reason", "drill over"); err != nil || !strings.Contains(out, "lifted") {
		t.Fatalf("lift on the co-signer's host = %q, %v", out, err)
	}
	if st, _ := d.CosignerStatus(); len(st.Halts) != 0 {
		t.Fatalf("co-signer halts after the lift: %+v", st.Halts)
	}
}

// journalEntries reads every entry of a stopped core's journal.
func journalEntries(t *testing.T, dir string) []journal.Entry {
	t.Helper()
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var es []journal.Entry
	if err := j.Scan(1, func(e journal.Entry) error {
		e.Payload = append([]byte(nil), e.Payload...)
		es = append(es, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return es
}

// removeSnapshots deletes the core's snapshots, as an attacker who edits
// the journal would, so that the core replays the edited entries.
func removeSnapshots(t *testing.T, coreDir string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(coreDir, "snapshots")); err != nil {
		t.Fatal(err)
	}
}

// TestCosignerRefusesEditedJournal: with the core stopped, an attacker
// with its host cuts the journal's newest three entries, or rewrites an
// entry and re-hashes every later one, and starts the core again. The
// co-signer, which verified the history before, refuses it with a
// critical alert and halts everything; restarted, it still refuses; the
// watcher refuses it too and halts the co-signer.
func TestCosignerRefusesEditedJournal(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, dir string, es []journal.Entry)
	}{
		{"truncated", func(t *testing.T, dir string, es []journal.Entry) {
			for _, e := range es[len(es)-3:] {
				if err := journaltest.Delete(dir, e.Seq); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"rewritten", func(t *testing.T, dir string, es []journal.Entry) {
			var prev journal.Hash
			for i, e := range es {
				if i+1 == 10 {
					e.Time++
				}
				if i+1 >= 10 {
					buf := make([]byte, journal.EncodedSize(len(e.Payload)))
					e = journal.Seal(buf, prev, e.Seq, e.Time, e.Kind, e.Payload)
					if err := journaltest.Replace(dir, e.Seq, e.Encode()); err != nil {
						t.Fatal(err)
					}
				}
				prev = e.Hash
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			d := Deploy(t, Options{})
			if _, err := d.NewCustomer(ctx, "hanako@example.jp"); err != nil {
				t.Fatal(err)
			}
			// Both followers have verified the whole journal: what is cut
			// or rewritten is history they hold.
			if err := d.WaitFollowersCaughtUp(ctx); err != nil {
				t.Fatal(err)
			}
			// The watcher too must have verified the entries the attacker
			// cuts: its witness head says how far it has.
			if _, err := d.WaitWitnesses(ctx); err != nil {
				t.Fatal(err)
			}
			verified, _ := d.CosignerStatus()
			err := d.WithCoreStopped(ctx, func() error {
				dir := filepath.Join(d.CoreDir, "journal")
				tc.edit(t, dir, journalEntries(t, dir))
				removeSnapshots(t, d.CoreDir)
				return nil
			})
			if err != nil {
				t.Fatalf("the core did not start on the edited journal: %v", err)
			}
			for round := 0; round < 2; round++ {
				if err := d.wait(ctx, "the co-signer refusing the edited journal", func() (bool, error) {
					st, err := d.CosignerStatus()
					return err == nil && haltedAll(st), nil
				}); err != nil {
					t.Fatal(err)
				}
				st, _ := d.CosignerStatus()
				if st.Seq != verified.Seq || st.Head != verified.Head {
					t.Fatalf("round %d: the co-signer's checkpoint moved from %d %s to %d %s", round, verified.Seq, verified.Head, st.Seq, st.Head)
				}
				log, _ := os.ReadFile(filepath.Join(d.LogDir, "cosigner.log"))
				if n := strings.Count(string(log), "journal is not the history"); n < round+1 {
					t.Fatalf("round %d: %d critical alerts of the edited history in the co-signer's log", round, n)
				}
				if round == 0 {
					if err := d.Cosigner.Kill(); err != nil {
						t.Fatal(err)
					}
					if err := d.Cosigner.Start(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := d.wait(ctx, "the watcher refusing the edited journal", func() (bool, error) {
				log, _ := os.ReadFile(filepath.Join(d.LogDir, "watch.log"))
				return strings.Contains(string(log), "the core's journal is not the history the watcher verified"), nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func haltedAll(st cosigner.Status) bool {
	i := sort.Search(len(st.Halts), func(i int) bool { return st.Halts[i].Asset >= cosigner.AllAssets })
	return i < len(st.Halts) && st.Halts[i].Asset == cosigner.AllAssets
}
