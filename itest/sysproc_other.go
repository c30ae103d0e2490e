//go:build !linux

package itest

import "syscall"

// sysProcAttr is the default elsewhere: only the test's cleanup ends the
// roles' processes.
func sysProcAttr() *syscall.SysProcAttr { return nil }
