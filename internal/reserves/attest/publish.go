// Package attest is kinko's proof of reserves put together
// (docs/reserves.md): the liabilities trees of every asset at a journal
// entry and their publication in the journal, customers' inclusion
// proofs from the published roots, and the attestation report that sets,
// per asset, the liabilities total and root against the wallets'
// holdings on chain at one block, with BIP-322 signatures proving
// control of the cold wallets.
package attest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"kinko/internal/core"
	"kinko/internal/ledger"
	"kinko/internal/reserves"
	"kinko/internal/reserves/sumtree"
)

// Errors callers can test.
var (
	// ErrUnknownAsset reports an asset code the state does not list.
	ErrUnknownAsset = errors.New("attest: asset not listed")
	// ErrNotPublished reports an asset with no published liabilities root.
	ErrNotPublished = errors.New("attest: no liabilities root published for the asset")
	// ErrRootMismatch reports a published root that is not the root of
	// the tree the journal gives at its entry: the publication does not
	// match the books. Nothing is answered from such a tree.
	ErrRootMismatch = errors.New("attest: the published root is not the tree of the journal at its entry")
)

// Trees builds the liabilities tree of each asset named (every listed
// asset if none is) from st, the state at a journal entry, salted with
// key. It runs outside the core's apply.
func Trees(st *core.State, key []byte, assets []string) ([]*reserves.Liabilities, error) {
	var list []ledger.Asset
	if len(assets) == 0 {
		list = st.Ledger.Assets()
	}
	for _, code := range assets {
		a, ok := st.Ledger.AssetByCode(strings.ToUpper(code))
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownAsset, code)
		}
		list = append(list, a)
	}
	if len(list) > core.MaxRootsPerPublication {
		return nil, fmt.Errorf("attest: %d assets, more than %d", len(list), core.MaxRootsPerPublication)
	}
	out := make([]*reserves.Liabilities, 0, len(list))
	for _, a := range list {
		lb, err := reserves.BuildLiabilities(st.Ledger, a, key, st.Seq(), st.Time())
		if err != nil {
			return nil, err
		}
		out = append(out, lb)
	}
	return out, nil
}

// Publisher is what Publish needs of a core: the state at an entry, and
// submitting a command. *core.Core is one.
type Publisher interface {
	StateAt(ctx context.Context, seq uint64) (*core.State, error)
	Submit(ctx context.Context, at time.Time, cmd core.Command) (core.Outcome, error)
}

// Publish builds the trees of the assets named (all if none) from the
// state at journal entry seq and journals their roots in one
// publish_liabilities as actor: all of them, or none if any is refused.
func Publish(ctx context.Context, c Publisher, key []byte, actor string, seq uint64, assets []string, now time.Time) ([]core.PublishedRoot, error) {
	st, err := c.StateAt(ctx, seq)
	if err != nil {
		return nil, err
	}
	trees, err := Trees(st, key, assets)
	if err != nil {
		return nil, err
	}
	cmd := core.PublishLiabilities{Actor: actor}
	for _, t := range trees {
		cmd.Roots = append(cmd.Roots, t.Root())
	}
	o, err := c.Submit(ctx, now, cmd)
	if err == nil {
		err = o.Err
	}
	if err != nil {
		return nil, err
	}
	return o.Value.([]core.PublishedRoot), nil
}

// CustomerProof is a customer's proof as the API serves it and `kinko
// reserves proof` writes it: the proof (sumtree.ProofJSON, what `kinko
// reserves verify-proof` reads), and where the journal published its
// root.
type CustomerProof struct {
	Proof         *sumtree.ProofJSON `json:"proof"`
	PublishedSeq  uint64             `json:"published_seq"`
	PublishedTime string             `json:"published_time"`
}

// Prover answers customers' proofs from published roots. It rebuilds the
// tree of a root from the state at the root's entry (once: it keeps the
// last tree of each asset) and answers nothing from a tree whose root is
// not the published one. Safe for concurrent use; one tree is built at a
// time.
type Prover struct {
	key     []byte
	stateAt func(ctx context.Context, seq uint64) (*core.State, error)

	mu    sync.Mutex
	trees map[string]*reserves.Liabilities // by asset: the tree of its last root asked for
}

// NewProver returns a prover with the salt key and the way to the state
// at an entry (core.Core.StateAt).
func NewProver(key []byte, stateAt func(ctx context.Context, seq uint64) (*core.State, error)) *Prover {
	return &Prover{key: key, stateAt: stateAt, trees: map[string]*reserves.Liabilities{}}
}

// Tree returns the tree of the published root pub.
func (p *Prover) Tree(ctx context.Context, pub core.PublishedRoot) (*reserves.Liabilities, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.trees[pub.Asset]; ok && t.Root() == pub.Root {
		return t, nil
	}
	st, err := p.stateAt(ctx, pub.Seq)
	if err != nil {
		return nil, err
	}
	ts, err := Trees(st, p.key, []string{pub.Asset})
	if err != nil {
		return nil, err
	}
	if got := ts[0].Root(); got != pub.Root {
		return nil, fmt.Errorf("%w: %s at entry %d: published %s (total %s, %d customers), rebuilt %s (total %s, %d customers)",
			ErrRootMismatch, pub.Asset, pub.Seq, pub.Hash, pub.Total, pub.Size, got.Hash, got.Total, got.Size)
	}
	p.trees[pub.Asset] = ts[0]
	return ts[0], nil
}

// Proof returns customer's proof in the tree of the published root pub;
// reserves.ErrNotInTree if the customer had no account of the asset then.
func (p *Prover) Proof(ctx context.Context, pub core.PublishedRoot, customer ledger.OwnerID) (*CustomerProof, error) {
	t, err := p.Tree(ctx, pub)
	if err != nil {
		return nil, err
	}
	pr, err := t.Proof(customer)
	if err != nil {
		return nil, err
	}
	j, err := pr.JSON()
	if err != nil {
		return nil, err
	}
	return &CustomerProof{Proof: j, PublishedSeq: pub.PublishedSeq, PublishedTime: time.Unix(0, pub.PublishedTime).UTC().Format(time.RFC3339Nano)}, nil
}
