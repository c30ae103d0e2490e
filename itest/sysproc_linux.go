package itest

import "syscall"

// sysProcAttr has the kernel kill a role's process if the test process
// dies without its cleanup (a timeout panic, a SIGKILL), so no role
// outlives the test that started it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
