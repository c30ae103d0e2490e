package reserves

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"kinko/internal/ledger"
	"kinko/internal/reserves/sumtree"
)

// The liabilities side of the proof of reserves: per asset, a Merkle sum
// tree (package sumtree) over what the ledger owes each customer at one
// journal entry, with the same definition of a customer liability as
// Compute: the posted balance of the customer's available and held
// accounts of the asset. Each leaf is hidden by a salt only the exchange
// can make, from a secret key kept on the core's host beside the journal
// (secrets/liabilities.key in the data directory), never in the journal:
//
//	salt = HMAC-SHA256(key, len(asset) (1 byte) || asset || account (8 bytes) || seq (8 bytes))
//
// so a customer's salt differs in every tree (the tree id is the journal
// entry the tree is of) and in every asset, and no one without the key
// can tell whose leaf a hash is or try balances against it. The key must
// be kept with the data directory: without it the published trees cannot
// be rebuilt to answer a customer's proof.

// KeyFile is where the salt key lives, under the data directory.
const KeyFile = "secrets/liabilities.key"

// KeySize is the salt key's length: 32 bytes, kept in hex.
const KeySize = 32

// Errors of the liabilities tree.
var (
	// ErrNoKey reports a data directory without the salt key.
	ErrNoKey = errors.New("reserves: no liabilities salt key in the data directory")
	// ErrNotInTree reports a customer the tree does not hold: no account
	// of the asset at the tree's journal entry.
	ErrNotInTree = errors.New("reserves: the customer has no balance in this tree")
)

// LoadKey reads the salt key of a data directory.
func LoadKey(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, KeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoKey, path)
	}
	if err != nil {
		return nil, fmt.Errorf("reserves: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("reserves: key file %s is not %d bytes in hex", path, KeySize)
	}
	return key, nil
}

// LoadOrCreateKey reads the salt key of a data directory, making it (0600,
// from crypto/rand) if there is none.
func LoadOrCreateKey(dataDir string) ([]byte, error) {
	key, err := LoadKey(dataDir)
	if !errors.Is(err, ErrNoKey) {
		return key, err
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("reserves: %w", err)
	}
	path := filepath.Join(dataDir, KeyFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("reserves: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadKey(dataDir) // made meanwhile by another process
	}
	if err != nil {
		return nil, fmt.Errorf("reserves: create key: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("reserves: write key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("reserves: write key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("reserves: write key: %w", err)
	}
	return key, nil
}

// salter makes salts with one HMAC, reset between leaves.
type salter struct {
	mac hash.Hash
	msg []byte
	out []byte
}

func newSalter(key []byte, asset string) *salter {
	s := &salter{mac: hmac.New(sha256.New, key), msg: make([]byte, 0, 1+len(asset)+16), out: make([]byte, 0, sha256.Size)}
	s.msg = append(s.msg, byte(len(asset)))
	s.msg = append(s.msg, asset...)
	return s
}

func (s *salter) salt(account, seq uint64) [32]byte {
	n := len(s.msg)
	m := binary.BigEndian.AppendUint64(s.msg, account)
	m = binary.BigEndian.AppendUint64(m, seq)
	s.mac.Reset()
	s.mac.Write(m)
	s.out = s.mac.Sum(s.out[:0])
	s.msg = m[:n]
	return [32]byte(s.out)
}

// Salt returns the salt of account's leaf in the tree of asset at journal
// entry seq: HMAC-SHA256(key, len(asset) || asset || account || seq), the
// integers 8 bytes big-endian.
func Salt(key []byte, asset string, account ledger.OwnerID, seq uint64) [32]byte {
	return newSalter(key, asset).salt(uint64(account), seq)
}

// CustomerBalances returns what the ledger owes each customer in asset,
// by customer in ascending order: the posted balances of their available
// and held accounts (Compute's customer liabilities, customer by
// customer), for every customer with either account; the salts are left
// zero.
func CustomerBalances(l *ledger.Ledger, asset ledger.AssetID) ([]sumtree.Leaf, error) {
	return gather(l, asset, nil, "", 0)
}

// gather returns the leaves of every customer with an account of asset,
// by customer in ascending order, salted with key (if not nil) for the
// tree of code at entry seq. Each processor takes a run of customers;
// the ledger is only read.
func gather(l *ledger.Ledger, asset ledger.AssetID, key []byte, code string, seq uint64) ([]sumtree.Leaf, error) {
	ids := l.Customers()
	out := make([]sumtree.Leaf, len(ids))
	w := max(1, min(runtime.GOMAXPROCS(0), len(ids)/(1<<14)))
	ends := make([]int, w)
	errs := make([]error, w)
	var wg sync.WaitGroup
	for i := 0; i < w; i++ {
		lo, hi := len(ids)*i/w, len(ids)*(i+1)/w
		wg.Add(1)
		// Each goroutine fills out[lo:] with its run's leaves and ends.
		go func() {
			defer wg.Done()
			var salts *salter
			if key != nil {
				salts = newSalter(key, code)
			}
			n := lo
			for _, id := range ids[lo:hi] {
				var bal ledger.Amount
				found := false
				for _, k := range []ledger.Kind{ledger.KindAvailable, ledger.KindHeld} {
					a, ok := l.Account(ledger.AccountKey{Owner: id, Asset: asset, Kind: k})
					if !ok {
						continue
					}
					found = true
					var over bool
					if bal, over = bal.Add(a.Balance()); over {
						errs[i] = fmt.Errorf("reserves: customer %d: %w", id, sumtree.ErrOverflow)
						return
					}
				}
				if !found {
					continue
				}
				out[n] = sumtree.Leaf{Account: uint64(id), Balance: bal}
				if salts != nil {
					out[n].Salt = salts.salt(uint64(id), seq)
				}
				n++
			}
			ends[i] = n
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Close the gaps the customers without an account left.
	n := 0
	for i := 0; i < w; i++ {
		lo := len(ids) * i / w
		n += copy(out[n:], out[lo:ends[i]])
	}
	return out[:n], nil
}

// Liabilities is one asset's liabilities tree at a journal entry, and the
// key that finds a customer's leaf in it.
type Liabilities struct {
	Tree *sumtree.Tree
	key  []byte
}

// Root returns the tree's root, as journaled by publish_liabilities.
func (lb *Liabilities) Root() sumtree.Root { return lb.Tree.Root() }

// BuildLiabilities builds asset's tree from the ledger as of journal entry
// seq, whose time is t: l must be the state at seq (core.StateAt), which
// no one changes meanwhile. It gathers and salts the leaves and builds on
// every processor: it is for outside the core's apply.
func BuildLiabilities(l *ledger.Ledger, asset ledger.Asset, key []byte, seq uint64, t int64) (*Liabilities, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("reserves: salt key of %d bytes; want %d", len(key), KeySize)
	}
	leaves, err := gather(l, asset.ID, key, asset.Code, seq)
	if err != nil {
		return nil, err
	}
	tr, err := sumtree.Build(leaves, asset.Code, seq, t)
	if err != nil {
		return nil, fmt.Errorf("reserves: %s: %w", asset.Code, err)
	}
	return &Liabilities{Tree: tr, key: key}, nil
}

// Proof returns customer's proof, or ErrNotInTree.
func (lb *Liabilities) Proof(customer ledger.OwnerID) (*sumtree.Proof, error) {
	r := lb.Tree.Root()
	i, ok := lb.Tree.Find(Salt(lb.key, r.Asset, customer, r.Seq), uint64(customer))
	if !ok {
		return nil, fmt.Errorf("%w: customer %d, %s at entry %d", ErrNotInTree, customer, r.Asset, r.Seq)
	}
	return lb.Tree.Prove(i)
}
