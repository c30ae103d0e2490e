package core

import (
	"errors"
	"fmt"
	"strings"

	"kinko/internal/people"
	"kinko/internal/reserves/sumtree"
)

// Publication of the liabilities trees of the proof of reserves
// (docs/reserves.md). The tree of an asset at a journal entry is built
// outside apply (reserves.BuildLiabilities over the state at that entry,
// salted with the key on the core's host, which never enters the
// journal); publish_liabilities journals the root it computed, so the
// root is part of the audited history that customers' proofs and the
// attestation report point to. Apply checks what it can without the
// tree: a known operator, a listed asset, an entry before this one, a
// size no larger than the customers, and one root per asset and entry:
// a second, different root for the same moment (a tree shown to some
// customers and not others) is refused, and its attempt stays in the
// journal.

// Command kinds of the proof of reserves.
const (
	KindPublishLiabilities Kind = 90
)

func init() {
	kindNames[KindPublishLiabilities] = "publish_liabilities"
}

// Errors of publication.
var (
	// ErrLiabilitiesConflict reports a root for an asset and entry that
	// already has a different one.
	ErrLiabilitiesConflict = errors.New("core: a different liabilities root is published for this asset and entry")
	// ErrLiabilitiesOrder reports a root of an entry before the asset's
	// last published one.
	ErrLiabilitiesOrder = errors.New("core: liabilities root older than the asset's last published one")
)

// MaxPublishedRoots bounds the roots the state keeps, newest last; older
// ones stay in the journal.
const MaxPublishedRoots = 1024

// MaxRootsPerPublication bounds the roots of one publish_liabilities.
const MaxRootsPerPublication = 64

// PublishLiabilities journals the roots of the liabilities trees the
// builder computed, one per asset, all or none. The Outcome's Value is
// the []PublishedRoot recorded (a root published before, the same, is
// returned as it was).
type PublishLiabilities struct {
	Roots []sumtree.Root
	Actor string
}

func (PublishLiabilities) Kind() Kind                      { return KindPublishLiabilities }
func (c PublishLiabilities) AppendPayload(b []byte) []byte { return appendJSON(b, c) }

// PublishedRoot is a journaled liabilities root: the tree's root, who
// published it, and the entry that did.
type PublishedRoot struct {
	sumtree.Root
	Actor         string `json:"actor"`
	PublishedSeq  uint64 `json:"published_seq"`
	PublishedTime int64  `json:"published_time"`
}

func decodeReserves(kind Kind, p []byte) (Command, bool, error) {
	if kind != KindPublishLiabilities {
		return nil, false, nil
	}
	c, err := decodeJSON[PublishLiabilities](p)
	return c, true, err
}

func (s *State) applyReserves(cmd Command, t int64) (bool, any, error) {
	c, ok := cmd.(PublishLiabilities)
	if !ok {
		return false, nil, nil
	}
	if _, ok := s.Operator(c.Actor); !ok {
		return true, nil, people.ErrOperatorUnknown
	}
	if len(c.Roots) == 0 || len(c.Roots) > MaxRootsPerPublication {
		return true, nil, invalid("publish_liabilities: 1 to %d roots", MaxRootsPerPublication)
	}
	// Every root is checked before any is recorded.
	out := make([]PublishedRoot, len(c.Roots))
	add := make([]bool, len(c.Roots))
	for i, r := range c.Roots {
		for _, o := range c.Roots[:i] {
			if o.Asset == r.Asset {
				return true, nil, invalid("publish_liabilities: two roots of %s", r.Asset)
			}
		}
		if _, ok := s.Ledger.AssetByCode(r.Asset); !ok {
			return true, nil, invalid("publish_liabilities: asset %q is not listed", r.Asset)
		}
		if r.Seq == 0 || r.Seq >= s.seq {
			return true, nil, invalid("publish_liabilities: a tree of entry %d, which is not before this entry %d", r.Seq, s.seq)
		}
		if r.Time > t {
			return true, nil, invalid("publish_liabilities: a tree of a time after this entry's")
		}
		if r.Size > uint64(s.Ledger.CustomerCount()) || r.Size == 0 && !r.Total.IsZero() {
			return true, nil, invalid("publish_liabilities: %d leaves with a total of %s for %d customers", r.Size, r.Total, s.Ledger.CustomerCount())
		}
		out[i], add[i] = PublishedRoot{Root: r, Actor: c.Actor, PublishedSeq: s.seq, PublishedTime: t}, true
		if last, ok := s.PublishedLiabilities(r.Asset); ok {
			switch {
			case r.Seq == last.Seq && r == last.Root:
				out[i], add[i] = last, false // published before: the same root
			case r.Seq == last.Seq:
				return true, nil, fmt.Errorf("%w: %s at entry %d is %s", ErrLiabilitiesConflict, r.Asset, r.Seq, last.Hash)
			case r.Seq < last.Seq:
				return true, nil, fmt.Errorf("%w: %s at entry %d, last published at %d", ErrLiabilitiesOrder, r.Asset, r.Seq, last.Seq)
			}
		}
	}
	for i := range out {
		if add[i] {
			s.Liabilities = append(s.Liabilities, out[i])
		}
	}
	if n := len(s.Liabilities); n > MaxPublishedRoots {
		s.Liabilities = append([]PublishedRoot(nil), s.Liabilities[n-MaxPublishedRoots:]...)
	}
	return true, out, nil
}

// PublishedLiabilities returns the asset's last published root.
func (s *State) PublishedLiabilities(asset string) (PublishedRoot, bool) {
	for i := len(s.Liabilities) - 1; i >= 0; i-- {
		if s.Liabilities[i].Asset == asset {
			return s.Liabilities[i], true
		}
	}
	return PublishedRoot{}, false
}

// PublishedLiabilitiesAt returns the root published for the asset's tree
// of entry seq, if the state still keeps it.
func (s *State) PublishedLiabilitiesAt(asset string, seq uint64) (PublishedRoot, bool) {
	for i := len(s.Liabilities) - 1; i >= 0; i-- {
		if r := s.Liabilities[i]; r.Asset == asset && r.Seq == seq {
			return r, true
		}
	}
	return PublishedRoot{}, false
}

// checkLiabilities checks that each asset's published roots are of
// ascending entries, each published after the entry it is of.
func (s *State) checkLiabilities() error {
	last := map[string]uint64{}
	for _, r := range s.Liabilities {
		if r.Seq <= last[r.Asset] || r.Seq >= r.PublishedSeq {
			return fmt.Errorf("core: published liabilities root of %s at entry %d out of order (after %d, published at %d)", r.Asset, r.Seq, last[r.Asset], r.PublishedSeq)
		}
		last[r.Asset] = r.Seq
	}
	return nil
}

// describeReserves says what a publish_liabilities command asks.
func describeReserves(c Command) (string, bool) {
	c2, ok := c.(PublishLiabilities)
	if !ok {
		return "", false
	}
	var parts []string
	for _, r := range c2.Roots {
		parts = append(parts, fmt.Sprintf("%s %s of entry %d (%d customers, total %s)", r.Asset, r.Hash, r.Seq, r.Size, r.Total))
	}
	return fmt.Sprintf("%s publishes liabilities roots: %s", c2.Actor, strings.Join(parts, "; ")), true
}
