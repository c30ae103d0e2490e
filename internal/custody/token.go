package custody

import (
	"errors"
	"fmt"

	"kinko/internal/ethwallet"
	"kinko/internal/ledger"
)

// Errors of token registration and token deposits.
var (
	// ErrTokenInvalid reports a token binding that is malformed: no
	// asset, a chain id of 0, a contract address that is not in its
	// EIP-55 form or is zero.
	ErrTokenInvalid = errors.New("custody: token invalid")
	// ErrTokenRegistered reports a token asset bound already, or a
	// contract of a chain bound to another asset.
	ErrTokenRegistered = errors.New("custody: token already registered")
	// ErrTokenAsset reports an asset that cannot be a token (not a chain
	// asset, or one with wallets of its own), or a deposit of an asset
	// that is neither the wallet's nor a token of the wallet's chain.
	ErrTokenAsset = errors.New("custody: not a token asset of this wallet")
)

// Token binds a ledger asset to one ERC-20 contract on one EIP-155 chain:
// a listed token. Its deposits are Transfer logs of that contract (and of
// no other) to the counterfactual Safe deposit addresses of the cold
// customer Safe wallets of that chain, the same addresses as their Ether
// (one per customer per Safe wallet); they credit the token asset, on the
// Safe wallet's account of that asset (Owner the wallet's, Kind wallet).
// A token asset has no wallet of its own.
//
// The binding is journaled (a register_token request of two admins) so
// the watcher, the API and the signers read one answer; the co-signer
// pins the contracts it pays from on its own host.
type Token struct {
	Asset   ledger.AssetID
	ChainID uint64
	// Contract is the token contract's address in its EIP-55 form.
	Contract string
}

// MaxTokens bounds the tokens custody lists.
const MaxTokens = 256

// Tokens returns the registered tokens in registration order.
func (s *State) Tokens() []Token { return append([]Token(nil), s.tokens...) }

// Token returns the token bound to asset.
func (s *State) Token(asset ledger.AssetID) (Token, bool) {
	for _, t := range s.tokens {
		if t.Asset == asset {
			return t, true
		}
	}
	return Token{}, false
}

// CheckToken tells whether t can be registered now: a registered chain
// asset without wallets of its own and not bound yet, a chain id, a
// nonzero contract in its EIP-55 form not bound on that chain yet. It
// changes nothing.
func (s *State) CheckToken(l *ledger.Ledger, t Token) error {
	if t.Asset == 0 {
		return fmt.Errorf("%w: no asset", ErrTokenInvalid)
	}
	if t.ChainID == 0 {
		return fmt.Errorf("%w: chain id 0", ErrTokenInvalid)
	}
	a, err := ethwallet.ParseAddress(t.Contract)
	if err != nil {
		return fmt.Errorf("%w: contract %q is not 0x and 40 hex digits in their EIP-55 checksum case", ErrTokenInvalid, t.Contract)
	}
	if a == (ethwallet.Address{}) {
		return fmt.Errorf("%w: contract is the zero address", ErrTokenInvalid)
	}
	asset, ok := l.Asset(t.Asset)
	if !ok {
		return fmt.Errorf("%w: %d", ErrAssetUnknown, t.Asset)
	}
	if asset.Class != ledger.ClassChain {
		return fmt.Errorf("%w: asset %s is not a chain asset", ErrTokenAsset, asset.Code)
	}
	for _, w := range s.wallets {
		if w.Asset == t.Asset {
			return fmt.Errorf("%w: asset %s has wallet %d of its own", ErrTokenAsset, asset.Code, w.ID)
		}
	}
	if len(s.tokens) >= MaxTokens {
		return fmt.Errorf("%w: %d tokens listed already", ErrTokenInvalid, MaxTokens)
	}
	for _, o := range s.tokens {
		if o.Asset == t.Asset {
			return fmt.Errorf("%w: asset %s is bound to %s on chain %d", ErrTokenRegistered, asset.Code, o.Contract, o.ChainID)
		}
		if o.ChainID == t.ChainID && o.Contract == t.Contract {
			return fmt.Errorf("%w: %s on chain %d is asset %d", ErrTokenRegistered, o.Contract, o.ChainID, o.Asset)
		}
	}
	return nil
}

// RegisterToken binds t after CheckToken, or changes nothing.
func (s *State) RegisterToken(l *ledger.Ledger, t Token) error {
	if err := s.CheckToken(l, t); err != nil {
		return err
	}
	s.tokens = append(s.tokens, t)
	return nil
}

// TokenAccounts returns w's ledger accounts of the tokens bound on the
// chain of its Safe, in listing order (none for a wallet that is not a
// Safe): what it holds of each token, beside its own asset.
func (s *State) TokenAccounts(w Wallet) []ledger.AccountKey {
	chain, ok := safeChain(&w)
	if !ok {
		return nil
	}
	var out []ledger.AccountKey
	for _, t := range s.tokens {
		if t.ChainID == chain {
			out = append(out, walletAccount(&w, t.Asset))
		}
	}
	return out
}

// safeChain returns the chain id of a Safe wallet's descriptor.
func safeChain(w *Wallet) (uint64, bool) {
	if !w.Safe() {
		return 0, false
	}
	d, err := ethwallet.Parse(w.Descriptor)
	if err != nil {
		return 0, false // cannot happen: parsed at registration
	}
	return d.ChainID, true
}

// seenAsset returns the asset a deposit to w credits: w's own (asset 0 or
// w's), or a token bound on the chain of w's Safe.
func (s *State) seenAsset(w *Wallet, asset ledger.AssetID) (ledger.AssetID, error) {
	if asset == 0 || asset == w.Asset {
		return w.Asset, nil
	}
	t, ok := s.Token(asset)
	if !ok {
		return 0, fmt.Errorf("%w: asset %d is no token", ErrTokenAsset, asset)
	}
	chain, ok := safeChain(w)
	if !ok || chain != t.ChainID {
		return 0, fmt.Errorf("%w: asset %d is a token of chain %d, wallet %d is not a Safe of it", ErrTokenAsset, asset, t.ChainID, w.ID)
	}
	return asset, nil
}

// DepositAsset returns the asset a deposit credited: a token's (Asset
// set) or its wallet's.
func (s *State) DepositAsset(d *Deposit) ledger.AssetID {
	if d.Asset != 0 {
		return d.Asset
	}
	return s.wallets[s.walletIdx[d.Wallet]].Asset
}

// walletAccount returns w's ledger account of asset: its own, or the one
// it holds a token on.
func walletAccount(w *Wallet, asset ledger.AssetID) ledger.AccountKey {
	return ledger.AccountKey{Owner: w.Owner, Asset: asset, Kind: ledger.KindWallet}
}
