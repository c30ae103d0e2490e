package itest

import "syscall"

// sysProcAttr has the kernel kill a role's process if the test process
// dies without its cleanup (a timeout panic, a SIGKILL), so no role
// outlives the test that started it. With group, the process leads a
// process group of its own, as a command started from a terminal does,
// so that a signal can reach it and every process it started.
func sysProcAttr(group bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: group}
}

// signalGroup sends sig to the process group pgid, as a terminal sends
// Ctrl-C to its foreground group.
func signalGroup(pgid int, sig syscall.Signal) error { return syscall.Kill(-pgid, sig) }

// groupAlive reports whether any process of group pgid still runs.
func groupAlive(pgid int) bool { return syscall.Kill(-pgid, 0) == nil }
