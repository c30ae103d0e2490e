package devnet

import "syscall"

// sysProcAttr has the kernel kill the node if the process that started it
// dies without stopping it (a SIGKILL, a crash): a dev node never
// outlives its harness.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
