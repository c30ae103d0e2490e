package core

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"kinko/internal/ledger"
	"kinko/internal/people"
	"kinko/internal/reserves"
	"kinko/internal/reserves/sumtree"
)

// TestPublishLiabilities: the root the builder computes from the state at
// an entry is journaled and kept, replayed and snapshotted the same;
// published again it changes nothing; a different root for the same
// moment, an older one, one of a later entry, of an unknown asset or
// actor, with more leaves than customers, are refused and leave the
// state as it was.
func TestPublishLiabilities(t *testing.T) {
	e := newTradeEnv(t, 5)
	at := e.st.Seq()
	key := bytes.Repeat([]byte{3}, reserves.KeySize)
	build := func(seq uint64) sumtree.Root {
		st := e.stateAt(seq)
		a, _ := st.Ledger.AssetByCode("BTC")
		lb, err := reserves.BuildLiabilities(st.Ledger, a, key, seq, st.Time())
		if err != nil {
			t.Fatal(err)
		}
		return lb.Root()
	}
	root := build(at)
	if root.Size != 5 || root.Total != ledger.AmountOf(50_0000_0000) {
		t.Fatalf("root %+v; want 5 customers owed 50 BTC", root)
	}
	// Customers trade on after the moment of the tree.
	e.must(CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Hi: 77, Lo: 1}, Debit: avail(1, btc), Credit: house(btc), Amount: ledger.AmountOf(1_0000_0000)}}})
	v := e.must(PublishLiabilities{Roots: []sumtree.Root{root}, Actor: "aiko"})
	recs, ok := v.([]PublishedRoot)
	if !ok || len(recs) != 1 || recs[0].Root != root || recs[0].Actor != "aiko" || recs[0].PublishedSeq != e.st.Seq() {
		t.Fatalf("publish = %#v", v)
	}
	rec := recs[0]
	if got, ok := e.st.PublishedLiabilities("BTC"); !ok || got != rec {
		t.Fatalf("PublishedLiabilities = %+v, %v", got, ok)
	}
	if got, ok := e.st.PublishedLiabilitiesAt("BTC", at); !ok || got != rec {
		t.Fatalf("PublishedLiabilitiesAt = %+v, %v", got, ok)
	}
	// Again: the same record, nothing added.
	if v := e.must(PublishLiabilities{Roots: []sumtree.Root{root}, Actor: "aiko"}); v.([]PublishedRoot)[0] != rec || len(e.st.Liabilities) != 1 {
		t.Fatalf("published again = %#v, %d roots", v, len(e.st.Liabilities))
	}
	other := root
	other.Hash[0] ^= 1
	older := build(at - 1)
	later := build(at + 1)
	later.Seq = 1 << 40
	big := root
	big.Size = 6
	wrongTime := root
	wrongTime.Time = e.now + int64(time.Hour)
	noAsset := root
	noAsset.Asset = "ETH"
	jpyRoot := func() sumtree.Root {
		st := e.stateAt(at)
		a, _ := st.Ledger.AssetByCode("JPY")
		lb, _ := reserves.BuildLiabilities(st.Ledger, a, key, at, st.Time())
		return lb.Root()
	}()
	one := func(r ...sumtree.Root) PublishLiabilities { return PublishLiabilities{Roots: r, Actor: "aiko"} }
	for _, c := range []struct {
		name string
		cmd  PublishLiabilities
		want error
	}{
		{"another root for the same moment", one(other), ErrLiabilitiesConflict},
		{"an older moment", one(older), ErrLiabilitiesOrder},
		{"an entry not yet journaled", one(later), ErrCommandInvalid},
		{"more leaves than customers", one(big), ErrCommandInvalid},
		{"a time after the entry", one(wrongTime), ErrCommandInvalid},
		{"an unlisted asset", one(noAsset), ErrCommandInvalid},
		{"a good JPY root beside a refused BTC one", one(jpyRoot, other), ErrLiabilitiesConflict},
		{"two roots of one asset", one(jpyRoot, jpyRoot), ErrCommandInvalid},
		{"no root", one(), ErrCommandInvalid},
		{"an unknown actor", PublishLiabilities{Roots: []sumtree.Root{root}, Actor: "mallory"}, people.ErrOperatorUnknown},
	} {
		if o := e.do(c.cmd); !errors.Is(o.Err, c.want) {
			t.Errorf("%s: %v; want %v", c.name, o.Err, c.want)
		}
	}
	if len(e.st.Liabilities) != 1 || e.st.Liabilities[0] != rec {
		t.Fatalf("refused publications changed the roots: %+v", e.st.Liabilities)
	}
	// Replayed from the journal, and through a snapshot's encoding, the
	// state keeps the same roots.
	replayed := e.stateAt(uint64(len(e.entries)))
	if len(replayed.Liabilities) != 1 || replayed.Liabilities[0] != rec {
		t.Fatalf("replayed roots %+v", replayed.Liabilities)
	}
	var buf bytes.Buffer
	if err := replayed.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	dec, err := DecodeState(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(dec.Liabilities) != 1 || dec.Liabilities[0] != rec || dec.Hash() != replayed.Hash() {
		t.Fatalf("decoded roots %+v", dec.Liabilities)
	}
	// The next moment publishes after it.
	next := build(uint64(len(e.entries)))
	if v := e.must(one(next, jpyRoot)); v.([]PublishedRoot)[0].Root != next || v.([]PublishedRoot)[1].Root != jpyRoot || len(e.st.Liabilities) != 3 {
		t.Fatalf("next roots = %#v", v)
	}
	if next.Total != ledger.AmountOf(49_0000_0000) {
		t.Fatalf("next total %s; want 49 BTC", next.Total)
	}
	if d := Describe(one(root)); d != "aiko publishes liabilities roots: BTC "+root.Hash.String()+" of entry "+strconv.FormatUint(at, 10)+" (5 customers, total 5000000000)" {
		t.Errorf("Describe = %q", d)
	}
}

// TestPublishLiabilitiesDurable: on a real core, the published root
// survives a restart by replay and by snapshot, and the state at the
// tree's entry rebuilds the same root.
func TestPublishLiabilitiesDurable(t *testing.T) {
	dir := t.TempDir()
	c := openCore(t, dir, 1_000_000)
	setupXEM(t, c, 3)
	submit(t, c, t0, CreateTransfers{Transfers: []ledger.Transfer{deposit(1, 1, 500), deposit(2, 2, 700)}})
	submit(t, c, t0, Bootstrap{RP: testRP, Founders: []people.Founder{{Name: "aiko", Roles: []people.Role{people.RoleAdmin}, Code: [32]byte{1}}, {Name: "ren", Roles: []people.Role{people.RoleAdmin}, Code: [32]byte{2}}}, Expires: t0.Add(time.Hour).UnixNano()})
	var at uint64
	c.Read(func(s *State) { at = s.Seq() })
	st, err := c.StateAt(context.Background(), at)
	if err != nil {
		t.Fatal(err)
	}
	xem, _ := st.Ledger.AssetByCode("XEM")
	key := bytes.Repeat([]byte{9}, reserves.KeySize)
	lb, err := reserves.BuildLiabilities(st.Ledger, xem, key, at, st.Time())
	if err != nil {
		t.Fatal(err)
	}
	submit(t, c, t0.Add(time.Second), PublishLiabilities{Roots: []sumtree.Root{lb.Root()}, Actor: "aiko"})
	check := func(c *Core, how string) {
		t.Helper()
		var got PublishedRoot
		var ok bool
		c.Read(func(s *State) { got, ok = s.PublishedLiabilities("XEM") })
		if !ok || got.Root != lb.Root() || got.Total != ledger.AmountOf(1200) || got.Size != 3 {
			t.Fatalf("%s: published %+v, %v", how, got, ok)
		}
		st, err := c.StateAt(context.Background(), got.Seq)
		if err != nil {
			t.Fatal(err)
		}
		again, err := reserves.BuildLiabilities(st.Ledger, xem, key, got.Seq, st.Time())
		if err != nil || again.Root() != got.Root {
			t.Fatalf("%s: the state at entry %d rebuilds %+v (%v)", how, got.Seq, again.Root(), err)
		}
	}
	check(c, "running")
	c.Close()
	c = openCore(t, dir, 1_000_000)
	check(c, "replayed")
	if err := c.Snapshot(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c = openCore(t, dir, 1_000_000)
	defer c.Close()
	check(c, "from the snapshot")
}

// FuzzPublishLiabilities decodes arbitrary publish_liabilities payloads:
// what decodes re-encodes to the same bytes, and applying it, after the
// trade env's setup, keeps every invariant (roots of ascending entries).
func FuzzPublishLiabilities(f *testing.F) {
	root := sumtree.Root{Asset: "BTC", Seq: 3, Time: 5, Size: 2, Total: ledger.AmountOf(7)}
	f.Add(PublishLiabilities{Roots: []sumtree.Root{root}, Actor: "aiko"}.AppendPayload(nil))
	root.Asset, root.Seq = "JPY", 1
	f.Add(PublishLiabilities{Roots: []sumtree.Root{root, {Asset: "BTC", Seq: 2}}, Actor: "aiko"}.AppendPayload(nil))
	f.Add([]byte(`{"Roots":null,"Actor":""}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		c, err := DecodeCommand(uint16(KindPublishLiabilities), p)
		if err != nil {
			if !errors.Is(err, ErrCommandInvalid) {
				t.Fatalf("DecodeCommand error %v is not ErrCommandInvalid", err)
			}
			return
		}
		if got := c.AppendPayload(nil); !bytes.Equal(got, p) {
			t.Fatalf("re-encoding differs")
		}
		e := newTradeEnv(t, 2)
		e.do(c)
		e.do(c)
		if err := e.st.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	})
}
