//go:build !linux

package itest

import (
	"os"
	"syscall"
)

// sysProcAttr is the default elsewhere: only the test's cleanup ends the
// roles' processes, and a process stays in the test's group.
func sysProcAttr(bool) *syscall.SysProcAttr { return nil }

// signalGroup sends sig to the process pgid only: it leads no group here.
func signalGroup(pgid int, sig syscall.Signal) error {
	p, err := os.FindProcess(pgid)
	if err != nil {
		return err
	}
	return p.Signal(sig)
}

// groupAlive reports false: no group is made here.
func groupAlive(int) bool { return false }
