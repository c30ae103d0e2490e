//go:build linux

package core

import "syscall"

// lowPriority gives the calling OS thread the lowest scheduling priority
// (nice 19); the caller has locked its goroutine to the thread.
func lowPriority() { syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19) }
