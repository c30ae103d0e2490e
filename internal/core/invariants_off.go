//go:build !invariants

package core

// invariantsBuild is true in builds with the invariants tag: every apply is
// followed by a full invariant check.
const invariantsBuild = false
