package tree

import (
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// ErrProof reports a proof that does not verify.
var ErrProof = errors.New("tree: proof does not verify")

// MaxPathLen bounds a proof's path: a tree of 2^64 leaves needs at most 64
// hashes for an inclusion proof and 128 for a consistency proof.
const MaxPathLen = 128

func toBytes(path []Hash) [][]byte {
	out := make([][]byte, len(path))
	for i := range path {
		out[i] = path[i][:]
	}
	return out
}

// VerifyInclusion checks that leaf is leaf index of the tree of size leaves
// whose root is root, by the RFC 6962 audit path.
func VerifyInclusion(index, size uint64, leaf Hash, path []Hash, root Hash) error {
	if len(path) > MaxPathLen {
		return fmt.Errorf("%w: path of %d hashes", ErrProof, len(path))
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, leaf[:], toBytes(path), root[:]); err != nil {
		return fmt.Errorf("%w: %v", ErrProof, err)
	}
	return nil
}

// VerifyConsistency checks that the tree of size2 leaves with root2 extends
// the tree of size1 leaves with root1, by the RFC 6962 consistency proof.
func VerifyConsistency(size1, size2 uint64, path []Hash, root1, root2 Hash) error {
	if len(path) > MaxPathLen {
		return fmt.Errorf("%w: path of %d hashes", ErrProof, len(path))
	}
	if size1 == 0 {
		// Every tree extends the empty tree, whose root is fixed; the
		// library checks neither root here.
		if root1 != EmptyRoot || (size2 == 0 && root2 != EmptyRoot) {
			return fmt.Errorf("%w: the empty tree's root is %s", ErrProof, EmptyRoot)
		}
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, size1, size2, toBytes(path), root1[:], root2[:]); err != nil {
		return fmt.Errorf("%w: %v", ErrProof, err)
	}
	return nil
}

// ConsistencyProof shows that the tree of To leaves extends the tree of From
// leaves: every entry of the older head is, unchanged and in the same place,
// in the newer.
type ConsistencyProof struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
	Path []Hash `json:"path"`
}

// Verify checks the proof between two heads of one log (whose signatures
// the caller has checked): old's size must be From, new's To.
func (p *ConsistencyProof) Verify(old, new Head) error {
	if old.Origin != new.Origin {
		return fmt.Errorf("%w: heads of two logs, %q and %q", ErrProof, old.Origin, new.Origin)
	}
	if old.Size != p.From || new.Size != p.To {
		return fmt.Errorf("%w: proof from %d to %d, heads of %d and %d", ErrProof, p.From, p.To, old.Size, new.Size)
	}
	if p.From > p.To {
		return fmt.Errorf("%w: from %d is after to %d", ErrProof, p.From, p.To)
	}
	return VerifyConsistency(p.From, p.To, p.Path, old.Root, new.Root)
}
