//go:build !linux

package devnet

import "testing"

// listening cannot read a process's sockets outside Linux.
func listening(t *testing.T, pid int) ([]string, bool) { return nil, false }
