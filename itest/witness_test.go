package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/anchor"
	"kinko/internal/core"
	"kinko/internal/journal"
	"kinko/internal/journal/journaltest"
	"kinko/internal/journal/tree"
)

// witnessHead returns the size of the newest head a witness serves.
func witnessHead(ctx context.Context, url string) (uint64, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/witness/head", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, tree.MaxNoteSize))
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("witness %s: %s", url, res.Status)
	}
	h, err := tree.ParseHead(b)
	return h.Size, err
}

// WaitWitnesses waits until both witnesses have signed a head of the
// core's journal as it is now.
func (d *Deployment) WaitWitnesses(ctx context.Context) (uint64, error) {
	head, err := d.CoreHead(ctx)
	if err != nil {
		return 0, err
	}
	for _, url := range []string{d.CosignerWitnessURL, d.WatcherWitnessURL} {
		if err := d.wait(ctx, "witness "+url+" at entry "+strconv.FormatUint(head, 10), func() (bool, error) {
			n, err := witnessHead(ctx, url)
			return err == nil && n >= head, nil
		}); err != nil {
			return 0, err
		}
	}
	return head, nil
}

// problem is the core's answer to a request it refuses.
type problem struct {
	Status  int    `json:"status"`
	Title   string `json:"title"`
	Detail  string `json:"detail"`
	Witness string `json:"witness"`
	Size    uint64 `json:"size"`
}

func getProblem(ctx context.Context, url string) (int, problem, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, problem{}, err
	}
	defer res.Body.Close()
	var p problem
	json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&p)
	return res.StatusCode, p, nil
}

// stopAll stops every role, the last started first.
func (d *Deployment) stopAll(t *testing.T) {
	t.Helper()
	ps := d.Procs()
	for i := len(ps) - 1; i >= 0; i-- {
		if err := ps[i].Stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWitnessesRefuseEditedJournal: every role stopped, an attacker with
// the core's host edits its journal (cuts the newest three entries,
// rewrites entry 10 with every later hash and the tree recomputed, deletes
// a middle entry, flips a byte) and everything starts again, the witnesses
// (the co-signer and the watcher, from the mirrors and heads on their
// hosts) before the core. A cut or rewritten journal, which the core's own
// checks cannot see, is refused by its witnesses: the core answers 503
// naming the witness and the size, the co-signer halts everything with a
// critical alert and the watcher refuses it; a deleted entry or a flipped
// byte stops the core at start, naming the entry. Every witness is then
// killed and started again, then the core: the same. `kinko journal
// verify --witness` names the entry of each.
func TestWitnessesRefuseEditedJournal(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(t *testing.T, dir string, es []journal.Entry)
		serves bool               // the core starts (and refuses to serve)
		want   func(n int) string // what verify --witness names, for a journal of n entries
	}{
		{"truncated", func(t *testing.T, dir string, es []journal.Entry) {
			if err := journaltest.Truncate(dir, 3); err != nil {
				t.Fatal(err)
			}
		}, true, func(n int) string {
			return fmt.Sprintf("journal BAD at entry %d: missing: the journal ends at %d, the head has %d entries", n-2, n-3, n-2)
		}},
		{"rewritten with its tree", func(t *testing.T, dir string, es []journal.Entry) {
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
			if err := journaltest.DropTree(dir); err != nil {
				t.Fatal(err)
			}
		}, true, func(int) string {
			return "journal BAD at entry 10: it is not the entry the head of 10 entries signed (the head of 9 still matches)"
		}},
		{"middle entry deleted", func(t *testing.T, dir string, es []journal.Entry) {
			if err := journaltest.Delete(dir, 10); err != nil {
				t.Fatal(err)
			}
		}, false, func(int) string { return "journal BAD at entry 10" }},
		{"byte flipped", func(t *testing.T, dir string, es []journal.Entry) {
			if err := journaltest.FlipBit(dir, 10, 8*30+2); err != nil {
				t.Fatal(err)
			}
		}, false, func(int) string { return "journal BAD at entry 10" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
			defer cancel()
			d := Deploy(t, Options{})
			if _, err := d.NewCustomer(ctx, "hanako@example.jp"); err != nil {
				t.Fatal(err)
			}
			if err := d.WaitCosignerCaughtUp(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := d.WaitWitnesses(ctx); err != nil {
				t.Fatal(err)
			}
			// The core serves while its witnesses agree.
			if code, p, err := getProblem(ctx, d.CoreURL+"/healthz"); err != nil || code != http.StatusOK {
				t.Fatalf("healthz before the edit = %d %+v %v", code, p, err)
			}
			d.stopAll(t)
			dir := filepath.Join(d.CoreDir, "journal")
			es := journalEntries(t, dir)
			n := len(es)
			tc.edit(t, dir, es)
			removeSnapshots(t, d.CoreDir)
			alerts := 0
			for round := 0; round < 2; round++ {
				// The witnesses first, from what their hosts kept.
				for _, p := range []*Proc{d.Cosigner, d.Watcher} {
					if err := p.Start(ctx); err != nil {
						t.Fatal(err)
					}
				}
				// Each serves the heads it kept, the core down: of the
				// journal as it was, every entry.
				for _, url := range []string{d.CosignerWitnessURL, d.WatcherWitnessURL} {
					if got, err := witnessHead(ctx, url); err != nil || got != uint64(n) {
						t.Fatalf("round %d: witness %s serves a head of %d (%v); the journal had %d entries", round, url, got, err, n)
					}
				}
				err := d.Core.Start(ctx)
				if !tc.serves {
					if err == nil || !strings.Contains(d.Core.LogTail(4000), "entry 10") {
						t.Fatalf("round %d: the core started on a journal with entry 10 damaged: %v\n%s", round, err, d.Core.LogTail(2000))
					}
				} else {
					if err != nil {
						t.Fatalf("round %d: %v", round, err)
					}
					// Refused, naming the witness and the size of its head;
					// its health fails; the journal's evidence is served.
					for _, path := range []string{"/healthz", "/v1/status", "/v1/me"} {
						code, p, err := getProblem(ctx, d.CoreURL+path)
						if err != nil || code != http.StatusServiceUnavailable || p.Size != uint64(n) ||
							(p.Witness != d.CosignerWitnessURL && p.Witness != d.WatcherWitnessURL) {
							t.Fatalf("round %d: GET %s = %d %+v %v; want 503 naming a witness and size %d", round, path, code, p, err, n)
						}
					}
					if _, err := d.CoreHead(ctx); err != nil {
						t.Fatalf("round %d: the journal's head is not served: %v", round, err)
					}
					// The co-signer halts everything, from its own mirror,
					// with a critical alert; its checkpoint stays.
					alerts++
					if err := d.wait(ctx, "the co-signer refusing the edited journal", func() (bool, error) {
						st, err := d.CosignerStatus()
						log, _ := os.ReadFile(filepath.Join(d.LogDir, "cosigner.log"))
						return err == nil && haltedAll(st) && strings.Count(string(log), "journal is not the history") >= alerts, nil
					}); err != nil {
						t.Fatal(err)
					}
					if st, _ := d.CosignerStatus(); st.Seq != uint64(n) || st.Head != es[n-1].Hash.String() || st.WitnessHead != uint64(n) {
						t.Fatalf("round %d: the co-signer's checkpoint moved from %d to %d (witness head %d)", round, n, st.Seq, st.WitnessHead)
					}
					if err := d.wait(ctx, "the watcher refusing the edited journal", func() (bool, error) {
						log, _ := os.ReadFile(filepath.Join(d.LogDir, "watch.log"))
						return strings.Count(string(log), "the core's journal is not the history the watcher verified") >= round+1, nil
					}); err != nil {
						t.Fatal(err)
					}
					if err := d.Core.Stop(); err != nil {
						t.Fatal(err)
					}
				}
				// The journal against the heads the witnesses kept, with
				// the keys pinned on the core's host.
				out, err := d.Kinko(ctx, d.Root, "journal", "verify", "--data", d.CoreDir,
					"--witness", d.CosignerWitnessURL, "--witness-key", d.CosignerWitnessKey,
					"--witness", d.WatcherWitnessURL, "--witness-key", d.WatcherWitnessKey)
				t.Logf("round %d: verify --witness:\n%s", round, out)
				if err == nil || !strings.Contains(out, tc.want(n)) {
					t.Fatalf("round %d: verify --witness = %v\n%s\nwant %q", round, err, out, tc.want(n))
				}
				// Every witness restarts (SIGKILL), then the core again.
				for _, p := range []*Proc{d.Cosigner, d.Watcher} {
					if err := p.Kill(); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

// anchorLine is one line of `kinko journal anchors --json`.
type anchorLine struct {
	TxID   string    `json:"txid"`
	Vout   uint32    `json:"vout"`
	Status string    `json:"status"`
	Height int32     `json:"height"`
	Size   uint64    `json:"size"`
	Root   tree.Hash `json:"root"`
}

var checkAnchorOK = regexp.MustCompile(`anchor OK: entry (\d+) .* of the (\d+) anchored in ([0-9a-f]{64}) \(confirmations: (\d+)\)`)

// TestAnchorOnChain: a withdrawal batch of the deployment's hot signer
// carries the journal's head in an OP_RETURN output; the co-signer signs
// it after checking the head against its own mirror, btcd mines it, the
// journal records it (kinko journal anchors). kinko journal check-anchor
// proves from the node and a copy of the journal alone that the
// withdrawal's entry stood unaltered at the anchor, and refuses a copy
// rewritten since. Then, as an attacker holding the signer's host, a batch
// whose OP_RETURN names a root the co-signer's mirror does not have, or
// that carries a second non-paying output, is refused by the co-signer.
func TestAnchorOnChain(t *testing.T) {
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
	addr := payee(t)
	if err := c.RegisterKey(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Whitelist(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Refill(ctx, "refill-1"); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitCoolDown(ctx, c); err != nil {
		t.Fatal(err)
	}
	txid := withdrawAndConfirm(ctx, t, d, c, "w-anchor", addr, 1_000_000)

	// The journal's record of the anchor, read with the core stopped; a
	// copy of its journal taken meanwhile, as an auditor keeps one.
	copyDir := filepath.Join(t.TempDir(), "journal-copy")
	var lines string
	var requestSeq uint64
	if err := d.WithCoreStopped(ctx, func() error {
		var err error
		if lines, err = d.Kinko(ctx, d.Root, "journal", "anchors", "--data", d.CoreDir, "--json"); err != nil {
			return err
		}
		for _, e := range journalEntries(t, filepath.Join(d.CoreDir, "journal")) {
			if core.Kind(e.Kind) == core.KindRequestWithdrawal {
				requestSeq = e.Seq
			}
		}
		return copyTree(filepath.Join(d.CoreDir, "journal"), copyDir)
	}); err != nil {
		t.Fatal(err)
	}
	var a anchorLine
	if err := json.Unmarshal([]byte(strings.TrimSpace(lines)), &a); err != nil || a.TxID != txid.String() || a.Status != "confirmed" || a.Height == 0 || a.Size < requestSeq || requestSeq == 0 {
		t.Fatalf("kinko journal anchors = %q (%v); want the batch %s confirmed, anchoring entry %d", lines, err, txid, requestSeq)
	}
	tx, err := d.Node.Client().Tx(ctx, txid)
	if err != nil {
		t.Fatal(err)
	}
	if got, vout, err := anchor.Find(tx); err != nil || vout != a.Vout || got.Size != a.Size || got.Root != a.Root {
		t.Fatalf("the mined transaction's anchor = %+v at %d, %v; the journal says %+v", got, vout, err, a)
	}

	// From the node alone and the copy: the withdrawal's entry stood at
	// the anchor.
	node := d.nodeArgs()
	for _, seq := range []uint64{1, requestSeq} {
		out, err := d.Kinko(ctx, d.Root, append([]string{"journal", "check-anchor", "--tx", txid.String(), "--journal-copy", copyDir, "--seq", strconv.FormatUint(seq, 10)}, node...)...)
		t.Logf("check-anchor --seq %d:\n%s", seq, out)
		m := checkAnchorOK.FindStringSubmatch(out)
		if err != nil || m == nil || m[1] != strconv.FormatUint(seq, 10) || m[2] != strconv.FormatUint(a.Size, 10) || m[3] != txid.String() || m[4] == "0" {
			t.Fatalf("check-anchor --seq %d = %v\n%s", seq, err, out)
		}
	}
	// The copy rewritten from that entry, every hash and the tree
	// recomputed: the anchor on chain refuses it.
	if err := journaltest.Rewrite(copyDir, requestSeq, func(seq uint64, kind uint16, p []byte) []byte {
		if seq == requestSeq {
			return append(append([]byte(nil), p...), ' ')
		}
		return p
	}); err != nil {
		t.Fatal(err)
	}
	if err := journaltest.DropTree(copyDir); err != nil {
		t.Fatal(err)
	}
	out, err := d.Kinko(ctx, d.Root, append([]string{"journal", "check-anchor", "--tx", txid.String(), "--journal-copy", copyDir, "--seq", strconv.FormatUint(requestSeq, 10)}, node...)...)
	t.Logf("check-anchor of the rewritten copy:\n%s", out)
	if err == nil || !strings.Contains(out, "anchor BAD") || !strings.Contains(out, "are not the anchored history") {
		t.Fatalf("check-anchor of a rewritten copy = %v\n%s", err, out)
	}

	// The attacker holds the signer's host: the real signer goes, and it
	// asks the co-signer itself to sign a self-payment anchoring a root
	// the co-signer's mirror does not have, or carrying a second
	// non-paying output beside a true anchor.
	if err := d.Signer.Kill(); err != nil {
		t.Fatal(err)
	}
	att := newAttacker(t, d)
	v := att.view(ctx)
	if len(v.UTXOs) == 0 {
		t.Fatal("no hot-wallet coin to spend")
	}
	u := v.UTXOs[0]
	lie := anchor.Anchor{Size: a.Size, Root: a.Root}
	lie.Root[0] ^= 1
	hello, _ := txscript.NullDataScript([]byte("hello"))
	for _, tc := range []struct {
		name string
		outs []*wire.TxOut
	}{
		{"a root the co-signer's mirror does not have", []*wire.TxOut{lie.Output()}},
		{"a second non-paying output", []*wire.TxOut{anchor.Anchor{Size: a.Size, Root: a.Root}.Output(), wire.NewTxOut(0, hello)}},
	} {
		_, err := att.ask(ctx, att.psbtFrom(u, v.Hot.NextChange, 0, tc.outs...))
		if err == nil || !strings.Contains(err.Error(), "OP_RETURN output is not an anchor of a head this host verified") {
			t.Fatalf("%s: co-signer = %v; want refused", tc.name, err)
		}
	}
}

// copyTree copies the directory src to dst.
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		if info.Name() == "LOCK" {
			return nil
		}
		return copyFile(path, filepath.Join(dst, rel))
	})
}
