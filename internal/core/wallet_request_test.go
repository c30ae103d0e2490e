package core

import (
	"context"
	"errors"
	"sync"
	"testing"

	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/people"
)

// TestRegisterWalletTwoPerson registers a wallet the only way there is:
// an admin asks, another admin approves. Every shortcut one person could
// take is refused and leaves no wallet.
func TestRegisterWalletTwoPerson(t *testing.T) {
	var (
		mu      sync.Mutex
		records []AuditRecord
	)
	dir := t.TempDir()
	c, err := Open(context.Background(), Config{Dir: dir, CheckInvariants: true, Audit: func(r AuditRecord) {
		mu.Lock()
		records = append(records, r)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	submit(t, c, t0, CreateAssets{Assets: []ledger.Asset{{ID: btcAsset, Code: "BTC", Decimals: 8, Class: ledger.ClassChain}}})
	for _, cmd := range founding(t0) {
		submit(t, c, t0, cmd)
	}
	hot := custody.Wallet{ID: 2, Kind: custody.HotCustomer, Asset: btcAsset, Descriptor: "wsh(sortedmulti(2,hot))#12345678", Owner: custody.WalletOwner(2)}
	wallets := func() []custody.Wallet {
		var ws []custody.Wallet
		c.Read(func(s *State) { ws = s.Custody.Wallets() })
		return ws
	}
	refused := func(what string, cmd Command, want error) {
		t.Helper()
		o, err := c.Submit(context.Background(), t0, cmd)
		if err != nil || !errors.Is(o.Err, want) {
			t.Fatalf("%s = %v, %v; want %v", what, err, o.Err, want)
		}
		if ws := wallets(); len(ws) != 0 {
			t.Fatalf("%s left wallets %+v", what, ws)
		}
	}
	refused("register_wallet given directly", RegisterWallet{Wallet: hot}, ErrTwoPerson)
	self := twoPersonBy(KindRegisterWalletRequest, RegisterWalletPayload{Wallet: hot, Name: "hot", Addresses: []string{"bcrt1qexample"}, Fingerprints: []string{"0a0b0c0d"}},
		"aiko", "aiko", people.RoleAdmin, t0)
	submit(t, c, t0, self[0])
	refused("aiko approves her own request", self[1], people.ErrSelfApproval)
	refused("an approver approves it", signed(DecideRequest{ID: self[0].(OpenRequest).Request.ID, Decider: "kenji", Reason: "x", Approve: true}), people.ErrWrongRole)
	refused("an approval without an assertion", DecideRequest{ID: self[0].(OpenRequest).Request.ID, Decider: "ren", Reason: "x", Approve: true}, people.ErrAssertion)
	refused("an approver asks for a wallet", twoPersonBy(KindRegisterWalletRequest, RegisterWalletPayload{Wallet: hot}, "kenji", "ren", people.RoleAdmin, t0)[0], people.ErrNotAuthorized)
	refused("a request approved by an approver role", twoPersonBy(KindRegisterWalletRequest, RegisterWalletPayload{Wallet: hot}, "aiko", "kenji", people.RoleApprover, t0)[0], people.ErrInvalid)

	// A second request for another wallet with the same descriptor is
	// approved first: the first request's approval is then refused and it
	// stays pending.
	rival := hot
	rival.ID, rival.Owner = 3, custody.WalletOwner(3)
	for _, cmd := range walletRegistered(rival, t0) {
		submit(t, c, t0, cmd)
	}
	o, err := c.Submit(context.Background(), t0, signed(DecideRequest{ID: self[0].(OpenRequest).Request.ID, Decider: "ren", Reason: "x", Approve: true}))
	if err != nil || !errors.Is(o.Err, custody.ErrDescriptorRegistered) {
		t.Fatalf("approval of a taken descriptor = %v, %v; want ErrDescriptorRegistered", err, o.Err)
	}
	c.Read(func(s *State) {
		r, _ := s.People.Request(self[0].(OpenRequest).Request.ID)
		if r.State != people.RequestPending {
			t.Errorf("request after a refused approval is %s; want pending", r.State)
		}
		ws := s.Custody.Wallets()
		if len(ws) != 1 || ws[0] != rival {
			t.Errorf("wallets = %+v; want the rival only", ws)
		}
		if _, ok := s.Ledger.Account(rival.Account()); !ok {
			t.Error("the approved wallet has no ledger account")
		}
	})
	// The state is the same after a replay of the journal.
	_, want := c.StateHash()
	c.Close()
	c2 := openCore(t, dir, 0)
	defer c2.Close()
	if _, got := c2.StateHash(); got != want {
		t.Fatal("state differs after a replay")
	}

	// The audit log saw every entry, in order, with who acted and what
	// was refused.
	mu.Lock()
	defer mu.Unlock()
	for i, r := range records {
		if r.Seq != uint64(i+1) {
			t.Fatalf("audit record %d has seq %d", i, r.Seq)
		}
	}
	byKind := func(seq uint64) AuditRecord { return records[seq-1] }
	direct := byKind(uint64(1 + len(founding(t0)) + 1))
	if direct.Kind != KindRegisterWallet || !errors.Is(direct.Err, ErrTwoPerson) {
		t.Errorf("audit of the direct register_wallet = %+v", direct)
	}
	last := records[len(records)-1]
	if last.Kind != KindDecideRequest || last.Actor != "ren" || !errors.Is(last.Err, custody.ErrDescriptorRegistered) {
		t.Errorf("audit of the refused approval = %+v", last)
	}
	approved := records[len(records)-2]
	if approved.Kind != KindDecideRequest || approved.Actor != "ren" || approved.Err != nil {
		t.Errorf("audit of the approval = %+v", approved)
	}
}

func TestActor(t *testing.T) {
	for _, tc := range []struct {
		cmd  Command
		want string
	}{
		{OpenRequest{Request: people.Request{Requester: "aiko"}}, "aiko"},
		{DecideRequest{Decider: "ren"}, "ren"},
		{SetKYC{Customer: 7, Actor: "kenji"}, "kenji"},
		{RegisterIntentKey{Customer: 1001}, "customer 1001"},
		{OperatorLogin{Session: people.Session{Operator: "yui"}}, "yui"},
		{Login{Session: people.Session{Customer: 12}}, "customer 12"},
		{WatchCheckpoint{Asset: 2, Height: 5}, ""},
		{CreateAssets{}, ""},
		{RegisterWallet{Wallet: custody.Wallet{ID: 1}}, ""},
	} {
		if got := Actor(tc.cmd); got != tc.want {
			t.Errorf("Actor(%T) = %q; want %q", tc.cmd, got, tc.want)
		}
	}
}

// TestRegisterWalletPayloadStrict: the payload decodes strictly and
// within its bounds.
func TestRegisterWalletPayloadStrict(t *testing.T) {
	long := make([]byte, 200)
	for i := range long {
		long[i] = 'a'
	}
	for _, p := range []string{
		`{"wallet":{"ID":1},"x":1}`,
		`{"wallet":{"ID":1}} {}`,
		`{"wallet":{"ID":1},"addresses":["a","a","a","a","a","a","a","a","a","a","a"]}`,
		`{"wallet":{"ID":1},"addresses":["` + string(long) + `"]}`,
		`[]`,
	} {
		if _, err := DecodeRegisterWallet([]byte(p)); !errors.Is(err, people.ErrInvalid) {
			t.Errorf("DecodeRegisterWallet(%.40s) = %v; want ErrInvalid", p, err)
		}
	}
	if p, err := DecodeRegisterWallet([]byte(`{"wallet":{"ID":1,"Kind":1,"Asset":2,"Descriptor":"d","Owner":5},"name":"cold","addresses":["a"],"fingerprints":["0a0b0c0d"]}`)); err != nil || p.Wallet.ID != 1 || p.Name != "cold" {
		t.Errorf("DecodeRegisterWallet of a good payload = %+v, %v", p, err)
	}
}
