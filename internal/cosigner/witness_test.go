package cosigner

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"kinko/internal/anchor"
	"kinko/internal/journal"
	"kinko/internal/journal/tree"
	"kinko/internal/stream"
	"kinko/internal/witness"
)

// mirrorHead is the head of the co-signer's own mirror now.
func (w *world) mirrorHead() tree.Head {
	w.t.Helper()
	if err := w.cs.Flush(); err != nil {
		w.t.Fatal(err)
	}
	return w.cs.m.TreeHead()
}

// opReturn is an OP_RETURN output carrying data, of value sat.
func opReturn(t *testing.T, sat int64, data []byte) *wire.TxOut {
	t.Helper()
	s, err := txscript.NullDataScript(data)
	if err != nil {
		t.Fatal(err)
	}
	return wire.NewTxOut(sat, s)
}

// TestCosignerAnchors: the co-signer signs a batch carrying one anchor of
// a head its own mirror has (the newest or an older one), and refuses an
// anchor whose root or size its mirror does not have (an attacker with the
// core's host anchoring a false head), a second anchor, any other
// non-paying output beside it, an OP_RETURN carrying coins, and another
// version of the format.
func TestCosignerAnchors(t *testing.T) {
	w := newWorld(t)
	w.withdraw(1, "w1", 30_000_000, t0.Add(25*time.Hour))
	if err := w.feed(); err != nil {
		t.Fatal(err)
	}
	w.clock = t0.Add(25 * time.Hour)
	h := w.mirrorHead()
	// The core's own head agrees with the mirror: the core signs it.
	_, ch, _ := w.c.SignedHead()
	if ch.Size != h.Size || ch.Root != h.Root {
		t.Fatalf("core head %d %s, mirror %d %s", ch.Size, ch.Root, h.Size, h.Root)
	}
	good := anchor.Anchor{Size: h.Size, Root: h.Root}
	falseRoot := good
	falseRoot.Root[0] ^= 1
	ahead := anchor.Anchor{Size: h.Size + 5, Root: h.Root}
	v2 := append([]byte(nil), good.Data()...)
	v2[len(anchor.Prefix)] = 2
	for _, tc := range []struct {
		name string
		outs []*wire.TxOut
		want error
	}{
		{"a root the mirror does not have", []*wire.TxOut{pay(1, 30_000_000), falseRoot.Output()}, ErrAnchor},
		{"a size beyond the mirror", []*wire.TxOut{pay(1, 30_000_000), ahead.Output()}, ErrAnchor},
		{"two anchors", []*wire.TxOut{pay(1, 30_000_000), good.Output(), good.Output()}, ErrAnchor},
		{"a second non-paying output", []*wire.TxOut{pay(1, 30_000_000), good.Output(), opReturn(t, 0, []byte("hello"))}, ErrAnchor},
		{"an anchor carrying coins", []*wire.TxOut{pay(1, 30_000_000), wire.NewTxOut(10_000, good.Script())}, ErrAnchor},
		{"another version", []*wire.TxOut{pay(1, 30_000_000), opReturn(t, 0, v2)}, ErrAnchor},
		{"an empty OP_RETURN", []*wire.TxOut{pay(1, 30_000_000), wire.NewTxOut(0, []byte{txscript.OP_RETURN})}, ErrAnchor},
		{"a bare non-paying script", []*wire.TxOut{pay(1, 30_000_000), wire.NewTxOut(0, []byte{txscript.OP_TRUE})}, ErrUnexplained},
	} {
		if _, err := w.cs.Sign(w.psbtPaying(tc.outs...)); !errors.Is(err, tc.want) {
			t.Errorf("%s = %v; want %v", tc.name, err, tc.want)
		}
	}
	// An older head the mirror has is anchored as well as the newest.
	older, err := w.cs.m.RootAt(h.Size - 3)
	if err != nil {
		t.Fatal(err)
	}
	p := w.psbtPaying(pay(1, 30_000_000), anchor.Anchor{Size: h.Size - 3, Root: older}.Output())
	if paid, err := w.cs.Sign(p); err != nil || len(paid) != 1 {
		t.Fatalf("a batch anchoring a head of the mirror = %v, %v", paid, err)
	}
	verifies(t, p)
	if a, vout, err := anchor.Find(p.UnsignedTx); err != nil || vout != 1 || a.Size != h.Size-3 || a.Root != older {
		t.Fatalf("the signed transaction's anchor = %+v at %d, %v", a, vout, err)
	}
}

// TestCosignerWitness: the co-signer signs the head of its mirror at every
// size after each pull, with its own key, keeps them across a restart; a
// core that streams one history and signs a head of another (a rewritten
// one) is a fork: the co-signer halts everything with a critical alert,
// and stays halted after a restart.
func TestCosignerWitness(t *testing.T) {
	w := newWorld(t)
	w.withdraw(1, "w1", 30_000_000, t0.Add(25*time.Hour))
	var raws [][]byte
	w.c.Journal().Scan(1, func(e journal.Entry) error { raws = append(raws, e.Encode()); return nil })
	// The rewritten history's journal, whose head the "core" signs.
	forged, err := journal.Open(filepath.Join(t.TempDir(), "j"), journal.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer forged.Close()
	for _, raw := range rewritten(raws, 10) {
		e, _ := journal.Decode(raw)
		if _, err := forged.Append(e.Time, e.Kind, e.Payload); err != nil {
			t.Fatal(err)
		}
	}
	skey, _ := tree.GenerateKey("kinko.journal/00000000000000ff")
	hs, _ := tree.NewSigner(skey)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/journal/raw", func(rw http.ResponseWriter, r *http.Request) {
		from, _ := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
		for i := from; i >= 1 && i <= uint64(len(raws)); i++ {
			stream.WriteFrame(rw, raws[i-1])
		}
	})
	mux.HandleFunc("GET /v1/journal/head", func(rw http.ResponseWriter, r *http.Request) {
		note, _ := hs.Sign(forged.TreeHead())
		json.NewEncoder(rw).Encode(map[string]string{"signed_head": string(note)})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	f := &Follower{URL: srv.URL, HTTP: http.DefaultClient, C: w.cs, Log: slog.New(slog.DiscardHandler), HeadEvery: -1}
	if n, err := f.Poll(context.Background()); err != nil || n != len(raws) {
		t.Fatalf("poll = %d, %v", n, err)
	}
	// A head at every size, each its mirror's, with its own key.
	v, err := tree.NewVerifier(w.cs.Witness().VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	notes, _, err := w.cs.Witness().Heads(1, witness.MaxPage)
	if err != nil || len(notes) != len(raws) {
		t.Fatalf("%d heads, %v; want %d", len(notes), err, len(raws))
	}
	for i, n := range notes {
		h, err := v.Verify(n)
		root, _ := w.cs.m.RootAt(uint64(i + 1))
		if err != nil || h.Size != uint64(i+1) || h.Root != root {
			t.Fatalf("head %d = %+v, %v", i+1, h, err)
		}
	}
	if st := w.cs.Status(); st.WitnessHead != uint64(len(raws)) || st.Witness != w.cs.Witness().Origin() {
		t.Fatalf("status witness %q at %d", st.Witness, st.WitnessHead)
	}
	key := w.cs.Witness().VerifierKey()
	// The core's head contradicts the mirror: the follower's check halts
	// everything, with an alert.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	f.HeadEvery = 10 * time.Millisecond
	go func() { f.Run(rctx, 10*time.Millisecond); close(done) }()
	for !w.halted(AllAssets) {
		select {
		case <-ctx.Done():
			t.Fatal("the co-signer never refused the forked head")
		case <-time.After(10 * time.Millisecond):
		}
	}
	stop()
	<-done
	refused := func(when string) {
		t.Helper()
		w.clock = t0.Add(25 * time.Hour)
		if _, err := w.cs.Sign(w.psbtPaying(pay(1, 30_000_000))); !errors.Is(err, ErrHalted) {
			t.Fatalf("%s: sign after the fork = %v; want ErrHalted", when, err)
		}
		if !w.alerted("cosigner-fork") {
			t.Fatalf("%s: no critical alert of the fork: %+v", when, w.alerts)
		}
		w.alerts = nil
	}
	refused("running")
	// Restarted: the heads it kept, its key, its halt; and the fork found
	// again and alerted.
	w.restart()
	if w.cs.Witness().VerifierKey() != key {
		t.Fatal("the witness key changed across a restart")
	}
	if n, _ := w.cs.Witness().Count(); n != len(raws) {
		t.Fatalf("%d heads after a restart; want %d", n, len(raws))
	}
	if !w.halted(AllAssets) {
		t.Fatal("the halt did not survive the restart")
	}
	var fe *witness.ForkError
	if err := witness.CheckCore(ctx, http.DefaultClient, srv.URL, w.cs.m); !errors.As(err, &fe) || fe.Size != uint64(len(raws)) {
		t.Fatalf("CheckCore after the restart = %v; want a fork at %d", err, len(raws))
	}
	w.cs.Forked(fe)
	refused("restarted")
}
