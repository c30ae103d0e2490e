package api

import (
	"context"
	"strings"
	"testing"

	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/reserves/attest"
	"kinko/internal/reserves/sumtree"
)

// TestReservesProofAPI: an operator publishes the liabilities roots; a
// customer fetches their proof and checks it by themselves against the
// public root, with their own balance, and one with nothing finds himself
// at zero; a customer who signed up after the tree's entry has none;
// after a balance changes and a new publication, the proof is
// of the new tree; a root journaled that is not the books' tree serves no
// proof.
func TestReservesProofAPI(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alice, at := e.signUp("alice@example.jp")
	bob, bt := e.signUp("bob@example.jp")
	eq := ledger.AccountKey{Owner: ledger.OwnerEquity, Asset: 2, Kind: ledger.KindEquity}
	av := ledger.AccountKey{Owner: alice, Asset: 2, Kind: ledger.KindAvailable}
	fund := func(id uint64, amt uint64, keys ...ledger.AccountKey) {
		t.Helper()
		for _, cmd := range []core.Command{core.CreateAccounts{Keys: keys}, core.CreateTransfers{Transfers: []ledger.Transfer{{ID: ledger.ID{Lo: id}, Debit: eq, Credit: av, Amount: ledger.AmountOf(amt)}}}} {
			if o, err := e.core.Submit(ctx, e.clock.Now(), cmd); err != nil || o.EventErr() != nil {
				t.Fatal(err, o.EventErr())
			}
		}
	}
	fund(1, 123_456_789, eq, av)

	r := e.do("GET", "/v1/me/reserves/proof?asset=BTC", at, nil)
	if r.status != 404 || !strings.Contains(string(r.body), "no liabilities tree of BTC is published") {
		t.Fatalf("proof before publication = %d %s", r.status, r.body)
	}
	op := e.loginOperator("aiko")
	if r := e.do("POST", "/v1/reserves/liabilities", at, "{}", "Idempotency-Key", "c1"); r.status != 403 {
		t.Fatalf("publish by a customer = %d %s", r.status, r.body)
	}
	r = e.do("POST", "/v1/reserves/liabilities", op, "{}", "Idempotency-Key", "p1")
	var pub struct{ Items []LiabilitiesRootView }
	r.json(t, &pub)
	if r.status != 201 || len(pub.Items) != 2 || pub.Items[1].Asset != "BTC" || pub.Items[1].Total != "123456789" || pub.Items[1].Size != 2 {
		t.Fatalf("publish = %d %s", r.status, r.body)
	}

	// The public list: the same root for everyone, without a session.
	var roots struct{ Items []LiabilitiesRootView }
	e.do("GET", "/v1/reserves/roots?asset=BTC", "", nil).json(t, &roots)
	if len(roots.Items) != 1 || roots.Items[0] != pub.Items[1] {
		t.Fatalf("roots = %+v", roots.Items)
	}
	published, err := sumtree.ParseHash(roots.Items[0].Hash)
	if err != nil {
		t.Fatal(err)
	}
	check := func(body []byte, who ledger.OwnerID, want uint64, root sumtree.Hash) {
		t.Helper()
		// What the customer does: read the answer, check it alone, then
		// that it is theirs and leads to the published root.
		p, err := sumtree.ReadProof(body)
		if err != nil {
			t.Fatalf("ReadProof = %v\n%s", err, body)
		}
		if err := p.VerifyRoot(root); err != nil {
			t.Fatalf("VerifyRoot = %v", err)
		}
		if err := p.Check(uint64(who), ledger.AmountOf(want)); err != nil {
			t.Fatalf("Check = %v", err)
		}
	}
	r = e.do("GET", "/v1/me/reserves/proof?asset=btc", at, nil)
	if r.status != 200 {
		t.Fatalf("proof = %d %s", r.status, r.body)
	}
	check(r.body, alice, 123_456_789, published)
	var cp attest.CustomerProof
	r.json(t, &cp)
	if cp.PublishedSeq != roots.Items[0].PublishedSeq || cp.Proof.Leaf.Account != uint64(alice) {
		t.Fatalf("proof answer %+v", cp)
	}
	r = e.do("GET", "/v1/me/reserves/proof?asset=BTC", bt, nil)
	check(r.body, bob, 0, published)
	_, ct := e.signUp("carol@example.jp")

	for _, c := range []struct {
		path, token string
		status      int
		want        string
	}{
		{"/v1/me/reserves/proof?asset=BTC", ct, 404, "you had no account of BTC"},
		{"/v1/me/reserves/proof?asset=BTC", "", 401, ""},
		{"/v1/me/reserves/proof?asset=BTC", op, 403, ""},
		{"/v1/me/reserves/proof?asset=b-t-c", at, 400, "asset"},
		{"/v1/me/reserves/proof", at, 400, "asset"},
		{"/v1/me/reserves/proof?asset=ETH", at, 404, "no liabilities tree of ETH"},
	} {
		r := e.do("GET", c.path, c.token, nil)
		if r.status != c.status || !strings.Contains(string(r.body), c.want) {
			t.Errorf("GET %s (token %v) = %d %s; want %d %q", c.path, c.token != "", r.status, r.body, c.status, c.want)
		}
	}

	// Alice's balance changes; the next publication is of the new books.
	fund(2, 1, eq)
	r = e.do("POST", "/v1/reserves/liabilities", op, `{"assets":["BTC"]}`, "Idempotency-Key", "p2")
	if r.status != 201 {
		t.Fatalf("second publish = %d %s", r.status, r.body)
	}
	e.do("GET", "/v1/reserves/roots?asset=BTC", "", nil).json(t, &roots)
	if len(roots.Items) != 2 || roots.Items[0].Total != "123456790" {
		t.Fatalf("roots after the second publication = %+v", roots.Items)
	}
	newRoot, _ := sumtree.ParseHash(roots.Items[0].Hash)
	r = e.do("GET", "/v1/me/reserves/proof?asset=BTC", at, nil)
	check(r.body, alice, 123_456_790, newRoot)
	if p, _ := sumtree.ReadProof(r.body); p.VerifyRoot(published) == nil {
		t.Fatal("the new proof leads to the old root")
	}
	// The same key again is the same answer; a later entry published
	// earlier is a conflict.
	if r := e.do("POST", "/v1/reserves/liabilities", op, `{"assets":["BTC"]}`, "Idempotency-Key", "p2"); r.status != 201 {
		t.Fatalf("replayed publish = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/reserves/liabilities", op, `{"at":3,"assets":["BTC"]}`, "Idempotency-Key", "p3"); r.status != 409 {
		t.Fatalf("publish of an older entry = %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/reserves/liabilities", op, `{"assets":["XYZ"]}`, "Idempotency-Key", "p4"); r.status != 422 {
		t.Fatalf("publish of an unlisted asset = %d %s", r.status, r.body)
	}

	// A root journaled that is not the tree of the books (the JPY tree
	// claims a customer and a total it does not have): no proof is
	// served from it, and the log says why.
	var seq uint64
	e.core.Read(func(st *core.State) { seq = st.Seq() })
	fake := sumtree.Root{Asset: "JPY", Seq: seq, Size: 1, Total: ledger.AmountOf(5)}
	fake.Hash[0] = 1
	if o, err := e.core.Submit(ctx, e.clock.Now(), core.PublishLiabilities{Roots: []sumtree.Root{fake}, Actor: "aiko"}); err != nil || o.Err != nil {
		t.Fatal(err, o.Err)
	}
	r = e.do("GET", "/v1/me/reserves/proof?asset=JPY", at, nil)
	if r.status != 500 || !strings.Contains(e.logs.String(), "PUBLISHED LIABILITIES ROOT DOES NOT MATCH THE JOURNAL") {
		t.Fatalf("proof from a fabricated root = %d %s", r.status, r.body)
	}
}
