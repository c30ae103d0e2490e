//go:build !linux

package core

// lowPriority does nothing where threads have no priority of their own to
// set.
func lowPriority() {}
