package nodetool

import (
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// startFromDyingThread starts `sleep 30` with a parent-death signal from a
// goroutine that then exits locked to its thread, which Go ends, as the
// core's checkpoint writer does. It reports whether the child still runs
// shortly after.
func startFromDyingThread(t *testing.T, start func(*exec.Cmd) (<-chan error, error)) bool {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var waited <-chan error
	var err error
	started := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		waited, err = start(cmd)
		close(started)
	}()
	<-started
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-waited:
		return false
	case <-time.After(300 * time.Millisecond):
		cmd.Process.Kill()
		<-waited
		return true
	}
}

// TestStartSurvivesThreadExit shows what Start is for: a child forked
// from a thread that Go then ends is killed by its parent-death signal,
// and one started through Start is not.
func TestStartSurvivesThreadExit(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep binary")
	}
	plain := func(cmd *exec.Cmd) (<-chan error, error) {
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		return done, nil
	}
	// Go keeps the main thread when a goroutine exits locked to it, so
	// one try of the control can miss; one of four does not.
	killed := 0
	for i := 0; i < 4; i++ {
		if !startFromDyingThread(t, plain) {
			killed++
		}
	}
	if killed == 0 {
		t.Fatal("no child forked from an ended thread was killed: this kernel does not send the parent-death signal per thread, and the test shows nothing")
	}
	for i := 0; i < 4; i++ {
		if !startFromDyingThread(t, Start) {
			t.Fatalf("a node started through Start was killed when the caller's thread ended (try %d)", i+1)
		}
	}
}
