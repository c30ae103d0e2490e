package watch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"kinko/internal/chain"
	"kinko/internal/controls"
	"kinko/internal/core"
	"kinko/internal/custody"
	"kinko/internal/ledger"
	"kinko/internal/operators"
	"kinko/internal/reserves"
)

// The token assets of the token tests: tt is the listed one, usd a chain
// asset bound to nothing, yen a fiat one.
const (
	ttAsset  ledger.AssetID = 7
	usdAsset ledger.AssetID = 8
	yenAsset ledger.AssetID = 9
)

func tokenBalance(c Core, owner ledger.OwnerID, asset ledger.AssetID) ledger.Amount {
	var v ledger.Amount
	c.Read(func(s *core.State) {
		a, _ := s.Ledger.Account(ledger.AccountKey{Owner: owner, Asset: asset, Kind: ledger.KindAvailable})
		v = a.Balance()
	})
	return v
}

// submit journals cmds and returns the first refusal.
func submit(t testing.TB, c *core.Core, cmds ...core.Command) error {
	t.Helper()
	for _, cmd := range cmds {
		o, err := c.Submit(context.Background(), time.Now(), cmd)
		if err == nil {
			err = o.Err
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// tokenAssets creates the token tests' assets.
func tokenAssets(t testing.TB, c *core.Core) {
	t.Helper()
	if err := submit(t, c, core.CreateAssets{Assets: []ledger.Asset{{ID: ttAsset, Code: "TT", Decimals: 18, Class: ledger.ClassChain},
		{ID: usdAsset, Code: "USDX", Decimals: 6, Class: ledger.ClassChain}, {ID: yenAsset, Code: "YEN", Class: ledger.ClassFiat}}}); err != nil {
		t.Fatal(err)
	}
}

// Two contract addresses in their EIP-55 form (EIP-55's own vectors).
const (
	contractA = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
	contractB = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
)

// tokenCore is etherCore over the fake descriptors with the token tests'
// assets, and its team.
func tokenCore(t testing.TB) (*core.Core, *operators.Team) {
	t.Helper()
	cold, hot := fakeDescriptors()
	c, team := etherCoreTeam(t, cold, hot)
	tokenAssets(t, c)
	return c, team
}

// listToken binds asset to contract on chain by a register_token request
// of the team's two admins.
func listToken(t testing.TB, c *core.Core, team *operators.Team, tok custody.Token) error {
	t.Helper()
	return submit(t, c, team.RegisterTokens(time.Now(), tok)...)
}

// TestRegisterTokenRefuses: a listing that is not exactly one chain asset
// bound to one nonzero EIP-55 contract of a chain is refused when the
// request is filed, with nothing registered and no request left pending;
// so is a second binding of the asset or of the contract, and a wallet of
// a token asset.
func TestRegisterTokenRefuses(t *testing.T) {
	c, team := tokenCore(t)
	good := contractA
	other := contractB
	for _, tc := range []struct {
		name string
		tok  custody.Token
		want error
	}{
		{"lower-case contract (no checksum)", custody.Token{Asset: ttAsset, ChainID: 1337, Contract: strings.ToLower(good)}, custody.ErrTokenInvalid},
		{"wrong checksum", custody.Token{Asset: ttAsset, ChainID: 1337, Contract: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"}, custody.ErrTokenInvalid},
		{"zero contract", custody.Token{Asset: ttAsset, ChainID: 1337, Contract: "0x0000000000000000000000000000000000000000"}, custody.ErrTokenInvalid},
		{"short contract", custody.Token{Asset: ttAsset, ChainID: 1337, Contract: good[:41]}, custody.ErrTokenInvalid},
		{"contract with a space", custody.Token{Asset: ttAsset, ChainID: 1337, Contract: good + " "}, custody.ErrTokenInvalid},
		{"no contract", custody.Token{Asset: ttAsset, ChainID: 1337}, custody.ErrTokenInvalid},
		{"chain 0", custody.Token{Asset: ttAsset, Contract: good}, custody.ErrTokenInvalid},
		{"no asset", custody.Token{ChainID: 1337, Contract: good}, custody.ErrTokenInvalid},
		{"unknown asset", custody.Token{Asset: 99, ChainID: 1337, Contract: good}, custody.ErrAssetUnknown},
		{"fiat asset", custody.Token{Asset: yenAsset, ChainID: 1337, Contract: good}, custody.ErrTokenAsset},
		{"asset with wallets (ETH)", custody.Token{Asset: ethAsset, ChainID: 1337, Contract: good}, custody.ErrTokenAsset},
	} {
		if err := listToken(t, c, team, tc.tok); !errors.Is(err, tc.want) {
			t.Errorf("%s: register_token(%+v) = %v; want %v", tc.name, tc.tok, err, tc.want)
		}
	}
	c.Read(func(s *core.State) {
		if n := len(s.Custody.Tokens()); n != 0 {
			t.Fatalf("%d tokens registered by refused requests", n)
		}
		for _, r := range s.People.Requests() {
			if r.Kind == core.KindRegisterTokenRequest {
				t.Fatalf("refused request %s left in the journal's state: %s", r.ID, r.State)
			}
		}
	})
	tt := custody.Token{Asset: ttAsset, ChainID: 1337, Contract: good}
	if err := listToken(t, c, team, tt); err != nil {
		t.Fatalf("register_token(%+v) = %v", tt, err)
	}
	for _, tc := range []struct {
		name string
		tok  custody.Token
	}{
		{"the same again", tt},
		{"the asset to another contract", custody.Token{Asset: ttAsset, ChainID: 1337, Contract: other}},
		{"the contract to another asset", custody.Token{Asset: usdAsset, ChainID: 1337, Contract: good}},
	} {
		if err := listToken(t, c, team, tc.tok); !errors.Is(err, custody.ErrTokenRegistered) {
			t.Errorf("%s: register_token(%+v) = %v; want ErrTokenRegistered", tc.name, tc.tok, err)
		}
	}
	// The same contract on another chain is another token.
	if err := listToken(t, c, team, custody.Token{Asset: usdAsset, ChainID: 1, Contract: good}); err != nil {
		t.Fatalf("the contract's address on chain 1: %v", err)
	}
	// A deposit of USDX (a token of chain 1) to wallet 1 (a Safe of chain
	// 1337) is refused, whoever journals it.
	o, err := c.Submit(context.Background(), time.Now(), core.CreditDeposits{Deposits: []custody.Seen{{Outpoint: custody.Outpoint{TxID: [32]byte{9}, Vout: 1},
		Wallet: 1, Index: 0, Amount: 5, Asset: usdAsset, Height: 1}}})
	if err != nil || o.Err != nil {
		t.Fatal(err, o.Err)
	}
	if res, _ := o.Value.([]custody.Result); len(res) != 1 || !errors.Is(res[0].Err, custody.ErrTokenAsset) || !tokenBalance(c, 1, usdAsset).IsZero() {
		t.Fatalf("a token of chain 1 credited to a Safe of chain 1337: %v, balance %s; want ErrTokenAsset, 0", res, tokenBalance(c, 1, usdAsset))
	}
	// A token asset takes no wallet of its own.
	desc, _ := fakeDescriptors()
	desc.Owners = append(desc.Owners[:2:2], fakeAddr(30))
	err = submit(t, c, team.RegisterWallets(time.Now(), custody.Wallet{ID: 9, Kind: custody.ColdCustomer, Asset: ttAsset, Descriptor: desc.String(), Owner: custody.WalletOwner(9)})...)
	if !errors.Is(err, custody.ErrTokenAsset) {
		t.Fatalf("a wallet of the token asset: %v; want ErrTokenAsset", err)
	}
	c.Read(func(s *core.State) {
		if got := s.Custody.Tokens(); len(got) != 2 || got[0] != tt {
			t.Fatalf("tokens = %+v; want %+v and USDX on chain 1", got, tt)
		}
		if _, ok := s.Custody.Wallet(9); ok {
			t.Fatal("wallet 9 registered")
		}
	})
	// A snapshot keeps them.
	var enc []byte
	c.Read(func(s *core.State) { enc, err = s.Custody.MarshalJSON() })
	if err != nil {
		t.Fatal(err)
	}
	back, err := custody.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := back.Token(ttAsset); !ok || got != tt {
		t.Fatalf("decoded token = %+v, %v; want %+v", got, ok, tt)
	}
}

// tokenSetup is the fake chain, a core with TT listed as the token at
// contract on chain 1337, and the TT and the Ether watchers on it.
func tokenSetup(t *testing.T) (c *core.Core, f *fakeChain, tokW, ethW *EtherDeposits, contract string) {
	t.Helper()
	ctx := context.Background()
	c, team := tokenCore(t)
	contract = contractA
	if err := listToken(t, c, team, custody.Token{Asset: ttAsset, ChainID: 1337, Contract: contract}); err != nil {
		t.Fatal(err)
	}
	art := artifacts(t)
	f = newFakeChain()
	var err error
	if tokW, err = NewEtherDeposits(ctx, c, f, art, EtherConfig{Asset: ttAsset, ChainID: 1337, Confirmations: 3}); err != nil {
		t.Fatal(err)
	}
	if ethW, err = NewEtherDeposits(ctx, c, f, art, EtherConfig{Asset: ethAsset, ChainID: 1337, Confirmations: 3}); err != nil {
		t.Fatal(err)
	}
	return c, f, tokW, ethW, contract
}

// TestTokenDeposits (one package, a fake chain): a Transfer log of the
// listed token of 2^128-1 base units to customer 1's deposit address (the
// address their Ether goes to) is credited exactly, once, at three
// confirmations, to the token asset and not to Ether; logs of another
// contract, Transfers of zero, the token to an address not ours and Ether
// are not the token watcher's; the token's logs are not the Ether
// watcher's. The journal replayed (from nothing and from a snapshot) has
// the same token and deposit. When the block leaves the best chain the
// deposit is reversed and the token's deposits halt.
func TestTokenDeposits(t *testing.T) {
	c, f, tokW, ethW, contract := tokenSetup(t)
	if tok, ok := tokW.Token(); !ok || tok.Contract != contract {
		t.Fatalf("watcher's token = %+v, %v; want %s", tok, ok, contract)
	}
	addr0, ok0 := tokW.Address(1, 0)
	ethAddr0, _ := ethW.Address(1, 0)
	addr1, _ := tokW.Address(1, 1)
	if !ok0 || addr0 != ethAddr0 {
		t.Fatalf("customer 1's token address %s (%v); want their Ether address %s", addr0, ok0, ethAddr0)
	}
	impostor := contractB
	from := common.HexToAddress("0x1234").Hex()
	most := ledger.Amount{Hi: math.MaxUint64, Lo: math.MaxUint64}
	tx, fake, zero, eth := f.id(0x71), f.id(0x72), f.id(0x73), f.id(0x74)
	f.mine()
	f.mine(
		chain.Transfer{Tx: tx, Asset: contract, Index: 4, From: from, To: addr0.Hex(), Amount: most},
		chain.Transfer{Tx: fake, Asset: impostor, Index: 5, From: from, To: addr1.Hex(), Amount: ledger.AmountOf(5)},
		chain.Transfer{Tx: zero, Asset: contract, Index: 6, From: from, To: addr1.Hex()},
		chain.Transfer{Tx: eth, From: from, To: addr1.Hex(), Amount: ledger.AmountOf(9)},
	)
	f.mine()
	stepOK(t, tokW)
	stepOK(t, ethW)
	if got := tokenBalance(c, 1, ttAsset); !got.IsZero() {
		t.Fatalf("credited at 2 confirmations: %s", got)
	}
	f.mine()
	stepOK(t, tokW)
	stepOK(t, ethW)
	if got := tokenBalance(c, 1, ttAsset); got != most {
		t.Fatalf("customer 1's TT = %s; want 2^128-1 = %s", got, most)
	}
	if got := tokenBalance(c, 2, ttAsset); !got.IsZero() {
		t.Fatalf("customer 2's TT = %s; want 0 (only an impostor's log, a zero Transfer and Ether)", got)
	}
	if got, want := ethBalance(c, 2), ledger.AmountOf(9); got != want {
		t.Fatalf("customer 2's wei = %s; want %s", got, want)
	}
	if got := ethBalance(c, 1); !got.IsZero() {
		t.Fatalf("customer 1's wei = %s; want 0 (the token is no Ether)", got)
	}
	op := custody.Outpoint{TxID: tx.Bytes(), Vout: custody.TokenIndex(4)}
	c.Read(func(s *core.State) {
		d, ok := s.Custody.Deposit(op)
		if !ok || d.Asset != ttAsset || d.Value() != most || d.Customer != 1 || s.Custody.DepositAsset(&d) != ttAsset {
			t.Fatalf("deposit %s = %+v, %v; want 2^128-1 TT to customer 1", op.EtherString(), d, ok)
		}
		n := 0
		s.Custody.Deposits(func(*custody.Deposit) bool { n++; return true })
		if n != 2 {
			t.Fatalf("%d deposits; want the token's and the Ether", n)
		}
		// The Ether reconciliation counts the Ether deposit alone in
		// flight, the token reconciliation the token's: counted in the
		// Ether's, a token deposit credited above the reconciled block
		// would read as Ether missing from the wallet.
		for _, c := range []struct {
			asset ledger.AssetID
			want  ledger.Amount
		}{{0, ledger.AmountOf(9)}, {ttAsset, most}} {
			d := readDeposits(s, nil, map[uint32]bool{1: true}, c.asset)
			if got := d.deposits[1]; len(got) != 1 || got[0].amount != c.want {
				t.Fatalf("the reconciliation's deposits of asset %d in wallet 1 = %+v; want one of %s", c.asset, got, c.want)
			}
		}
		w, _ := s.Ledger.Account(ledger.AccountKey{Owner: custody.WalletOwner(1), Asset: ttAsset, Kind: ledger.KindWallet})
		if w.Balance() != most {
			t.Fatalf("wallet 1's TT account = %s; want %s", w.Balance(), most)
		}
		// The reserves report holds it in the cold customer wallet.
		rep, err := reserves.Compute(s.Ledger, s.Custody, reserves.DefaultPolicy, nil, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range rep.Rows {
			if r.Asset != "TT" {
				continue
			}
			found = true
			if r.ColdCustomerLedger != most || r.CustomerLiabilities != most || !r.Segregated || !r.OtherLedger.IsZero() {
				t.Fatalf("reserves row of TT = %+v; want 2^128-1 in the cold customer wallet, segregated", r)
			}
		}
		if !found {
			t.Fatal("no reserves row of TT")
		}
	})
	// The journal replayed, from nothing and from a snapshot, holds the
	// same token and deposit, to the same state hash.
	seq, hash := c.StateHash()
	for _, snap := range []bool{false, true} {
		if snap {
			if err := c.Snapshot(); err != nil {
				t.Fatal(err)
			}
		}
		st, err := c.StateAt(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		d, ok := st.Custody.Deposit(op)
		if tok, _ := st.Custody.Token(ttAsset); tok.Contract != contract || !ok || d.Asset != ttAsset || d.Value() != most || st.Hash() != hash {
			t.Fatalf("replayed (snapshot %v): token %+v, deposit %+v %v, hash equal %v", snap, tok, d, ok, st.Hash() == hash)
		}
	}
	// Restarted, the watcher rescans its window and credits nothing twice.
	again, err := NewEtherDeposits(context.Background(), c, f, artifacts(t), EtherConfig{Asset: ttAsset, ChainID: 1337, Confirmations: 3})
	if err != nil {
		t.Fatal(err)
	}
	f.mine()
	stepOK(t, again)
	if got := tokenBalance(c, 1, ttAsset); got != most {
		t.Fatalf("after a restart customer 1's TT = %s; want %s", got, most)
	}
	// The block leaves the best chain.
	f.reorg(1)
	for range 6 {
		f.mine()
	}
	stepOK(t, again)
	stepOK(t, ethW)
	c.Read(func(s *core.State) {
		if d, _ := s.Custody.Deposit(op); d.State != custody.DepositReversed {
			t.Fatalf("token deposit state %d; want reversed", d.State)
		}
		if err := s.Controls.Allowed(ttAsset, controls.Deposit); err == nil {
			t.Fatal("TT deposits not halted after the reversal")
		}
	})
	if got := tokenBalance(c, 1, ttAsset); !got.IsZero() {
		t.Fatalf("customer 1's TT after the reorg = %s; want 0", got)
	}
}

// TestTokenBadChainData: a block with the token's log twice, a log index
// whose deposit id would wrap onto the Ether index or reach the internal
// calls' (2^31-1), or a backend that found a Transfer of 2^128 or more or
// bad data in the call traces is refused whole (ErrChainData), the watcher
// where it was and nothing credited; the true block then credits.
func TestTokenBadChainData(t *testing.T) {
	for _, tc := range []struct {
		name string
		lie  func(b *chain.Block) (*chain.Block, error)
	}{
		{"log twice", func(b *chain.Block) (*chain.Block, error) {
			b.Transfers = append(b.Transfers, b.Transfers...)
			return b, nil
		}},
		{"log index 2^32-1", func(b *chain.Block) (*chain.Block, error) {
			b.Transfers = append([]chain.Transfer(nil), b.Transfers...)
			b.Transfers[0].Index = math.MaxUint32
			return b, nil
		}},
		{"log index 2^31-1", func(b *chain.Block) (*chain.Block, error) {
			// Its deposit id would be the first internal call's.
			b.Transfers = append([]chain.Transfer(nil), b.Transfers...)
			b.Transfers[0].Index = chain.InternalBase - 1
			return b, nil
		}},
		{"amount of 2^128", func(b *chain.Block) (*chain.Block, error) {
			return nil, fmt.Errorf("ethchain: token log: %w", chain.ErrAmountRange)
		}},
		{"bad call trace", func(b *chain.Block) (*chain.Block, error) {
			return nil, fmt.Errorf("ethchain: call trace: %w", chain.ErrChainData)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, f, tokW, _, contract := tokenSetup(t)
			addr0, _ := tokW.Address(1, 0)
			tx := f.id(0x71)
			blk := f.mine(chain.Transfer{Tx: tx, Asset: contract, Index: 0, From: common.HexToAddress("0x1234").Hex(), To: addr0.Hex(), Amount: ledger.AmountOf(1000)})
			f.mine()
			f.mine()
			var lieErr error
			f.lie = func(b *chain.Block) *chain.Block {
				if b.Ref.Hash != blk.Ref.Hash {
					return b
				}
				out, err := tc.lie(b)
				lieErr = err
				return out
			}
			f.errFor = func() error { return lieErr }
			if err := tokW.Step(context.Background()); !errors.Is(err, ErrChainData) {
				t.Fatalf("Step = %v; want ErrChainData", err)
			}
			var cp core.WatchCheckpoint
			c.Read(func(s *core.State) { cp = s.Checkpoints[ttAsset] })
			if cp.Height != 0 || len(tokW.Pending()) != 0 || !tokenBalance(c, 1, ttAsset).IsZero() {
				t.Fatalf("after a lying block: checkpoint %d, pending %v, balance %s; want nothing taken", cp.Height, tokW.Pending(), tokenBalance(c, 1, ttAsset))
			}
			f.lie, f.errFor = nil, nil
			stepOK(t, tokW)
			if got, want := tokenBalance(c, 1, ttAsset), ledger.AmountOf(1000); got != want {
				t.Fatalf("after the true block customer 1's TT = %s; want %s", got, want)
			}
		})
	}
}

// TestTokenDepositsWatchers (fake chain): the token watchers of chain 1337
// start with the tokens listed there, a token listed later is watched from
// the next step, one of another chain is not; each credits its own
// contract's logs only.
func TestTokenDepositsWatchers(t *testing.T) {
	c, team := tokenCore(t)
	tt := contractA
	usdx := contractB
	if err := listToken(t, c, team, custody.Token{Asset: ttAsset, ChainID: 1337, Contract: tt}); err != nil {
		t.Fatal(err)
	}
	f := newFakeChain()
	var asked []string
	td := NewTokenDeposits(c, artifacts(t), func(contract string) chain.Backend { asked = append(asked, contract); return f },
		EtherConfig{ChainID: 1337, Confirmations: 3})
	if err := td.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	w, ok := td.Watcher(ttAsset)
	if !ok {
		t.Fatal("no TT watcher")
	}
	addr0, _ := w.Address(1, 0)
	from := common.HexToAddress("0x1234").Hex()
	f.mine(chain.Transfer{Tx: f.id(0x71), Asset: tt, Index: 0, From: from, To: addr0.Hex(), Amount: ledger.AmountOf(40)},
		chain.Transfer{Tx: f.id(0x72), Asset: usdx, Index: 1, From: from, To: addr0.Hex(), Amount: ledger.AmountOf(60)})
	// USDX listed on this chain after the block, and on chain 1 no token of
	// this node's.
	if err := listToken(t, c, team, custody.Token{Asset: usdAsset, ChainID: 1337, Contract: usdx}); err != nil {
		t.Fatal(err)
	}
	if err := submit(t, c, core.CreateAssets{Assets: []ledger.Asset{{ID: 10, Code: "OTHER", Decimals: 6, Class: ledger.ClassChain}}}); err != nil {
		t.Fatal(err)
	}
	if err := listToken(t, c, team, custody.Token{Asset: 10, ChainID: 1, Contract: usdx}); err != nil {
		t.Fatal(err)
	}
	f.mine()
	f.mine()
	if err := td.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := td.Watcher(10); ok {
		t.Fatal("a watcher of a token of chain 1 on chain 1337")
	}
	if got := tokenBalance(c, 1, ttAsset); got != ledger.AmountOf(40) {
		t.Fatalf("customer 1's TT = %s; want 40", got)
	}
	if got := tokenBalance(c, 1, usdAsset); got != ledger.AmountOf(60) {
		t.Fatalf("customer 1's USDX = %s; want 60 (watched from the step after its listing, from block 1)", got)
	}
	if len(asked) != 2 || asked[0] != tt || asked[1] != usdx {
		t.Fatalf("backends made for %v; want one for %s, one for %s", asked, tt, usdx)
	}
}
