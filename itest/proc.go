package itest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"kinko/internal/chain/nodetool"
)

// Bounds of a role process's life.
const (
	// ReadyTimeout is how long Start waits for a role's ready line.
	ReadyTimeout = time.Minute
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout = 10 * time.Second
	// logTailBytes is how much of a log LogTail returns by default.
	logTailBytes = 4000
	// dumpWait is how long a hung process is given to print its
	// goroutines; dumpTailBytes how much of that a failure shows.
	dumpWait      = 5 * time.Second
	dumpTailBytes = 64 << 10
	// pollEvery is how often the harness looks again at what it waits for.
	pollEvery = 50 * time.Millisecond
)

// Proc is one role of a deployment as its own OS process: the kinko binary
// with the role's command line, run in the role's host directory, its
// standard output and error appended to its own log file. A Proc can be
// started, killed (SIGKILL, as a crash), stopped (SIGTERM, as an operator
// does) and started again on the same directory.
//
// The command line is recomputed at every start, so a restart picks up
// what the deployment changed (a policy file, a flag).
type Proc struct {
	// Name is the role: core, cosigner, signer, watch.
	Name string
	// Env is added to the process's environment.
	Env []string
	// Dir is the working directory: the role's host directory.
	Dir string
	// Log is the log file; every start appends a header line.
	Log string
	// Group starts the process in a process group of its own, as a
	// terminal starts a command: Interrupt then reaches it and every
	// process it started (kinko dev's btcd), as Ctrl-C does.
	Group bool

	bin   string
	args  func() []string
	ready *regexp.Regexp

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current process has exited
	exitErr  error         // its exit status, once done
	expected bool          // Kill or Stop ended it
	starts   int
}

// newProc returns a role's process, not started. ready matches the line
// the role prints once it serves.
func newProc(name, bin, dir, log string, ready *regexp.Regexp, args func() []string) *Proc {
	return &Proc{Name: name, Dir: dir, Log: log, bin: bin, args: args, ready: ready}
}

// Start starts the process and waits until it prints its ready line. A
// process that exits first, or prints nothing within ReadyTimeout, is an
// error carrying the end of its log.
func (p *Proc) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.running() {
		p.mu.Unlock()
		return fmt.Errorf("itest: %s is already running", p.Name)
	}
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.mu.Unlock()
		return err
	}
	args := p.args()
	p.starts++
	fmt.Fprintf(f, "=== start %d: kinko %s\n", p.starts, strings.Join(args, " "))
	offset, err := f.Seek(0, 2)
	if err != nil {
		f.Close()
		p.mu.Unlock()
		return err
	}
	cmd := exec.Command(p.bin, args...)
	cmd.Dir = p.Dir
	if len(p.Env) > 0 {
		cmd.Env = append(os.Environ(), p.Env...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr(p.Group)
	waited, err := nodetool.Start(cmd)
	if err != nil {
		f.Close()
		p.mu.Unlock()
		return fmt.Errorf("itest: start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.exitErr, p.expected = cmd, done, nil, false
	// The waiter exits when the process does.
	go func() {
		err := <-waited
		f.Close()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(done)
	}()
	p.mu.Unlock()
	return p.waitReady(ctx, offset, done)
}

// waitReady polls the log from offset for the ready line.
func (p *Proc) waitReady(ctx context.Context, offset int64, done chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	for {
		if b, err := os.ReadFile(p.Log); err == nil && int64(len(b)) >= offset && p.ready.Match(b[offset:]) {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("itest: %s exited before it was ready (%v):\n%s", p.Name, p.exitStatus(), p.LogTail(logTailBytes))
		case <-ctx.Done():
			return fmt.Errorf("itest: %s not ready (no line matching %q): %w\n%s", p.Name, p.ready, ctx.Err(), p.LogTail(logTailBytes))
		case <-time.After(pollEvery):
		}
	}
}

// running reports whether a process was started and has not exited.
// Call with mu held.
func (p *Proc) running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Running reports whether the process runs.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running()
}

// Pid returns the process id of the current (or last) process, 0 if it
// never started.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *Proc) exitStatus() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// Signal sends sig to the running process (SIGHUP reloads the co-signer's
// policy).
func (p *Proc) Signal(sig os.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running() {
		return fmt.Errorf("itest: %s is not running", p.Name)
	}
	return p.cmd.Process.Signal(sig)
}

// end sends sig and waits for the exit, sending SIGKILL after wait. With
// toGroup (a Proc started with Group) the signals go to its whole
// process group.
func (p *Proc) end(sig syscall.Signal, wait time.Duration, toGroup bool) error {
	p.mu.Lock()
	if !p.running() {
		p.mu.Unlock()
		return nil
	}
	p.expected = true
	proc, done := p.cmd.Process, p.done
	p.mu.Unlock()
	send := proc.Signal
	if toGroup {
		send = func(s os.Signal) error { return signalGroup(proc.Pid, s.(syscall.Signal)) }
	}
	if err := send(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("itest: signal %s: %w", p.Name, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(wait):
	}
	// A Go process that hangs is asked for its goroutines first (the
	// runtime prints every stack on SIGQUIT and exits), so the failure
	// says where it hung; whatever is left of its group is then killed.
	dumped := sig != syscall.SIGKILL && proc.Signal(syscall.SIGQUIT) == nil
	if dumped {
		select {
		case <-done:
		case <-time.After(dumpWait):
		}
	}
	send(syscall.SIGKILL)
	<-done
	if dumped {
		return fmt.Errorf("itest: %s did not stop within %s of %s; its goroutines (SIGQUIT), then killed; whole log %s:\n%s", p.Name, wait, sig, p.Log, p.LogTail(dumpTailBytes))
	}
	return fmt.Errorf("itest: %s did not stop within %s of %s; killed:\n%s", p.Name, wait, sig, p.LogTail(logTailBytes))
}

// Kill ends the process with SIGKILL, as a crash or a pulled plug, and
// waits until it has exited. Killing a stopped process does nothing.
func (p *Proc) Kill() error { return p.end(syscall.SIGKILL, StopTimeout, p.Group) }

// Stop ends the process with SIGTERM, as an operator does, and waits
// until it has exited (SIGKILL after StopTimeout, reported as an error).
func (p *Proc) Stop() error { return p.end(syscall.SIGTERM, StopTimeout, false) }

// Interrupt ends the process as Ctrl-C in its terminal does: SIGINT to
// its process group when it was started with Group (the process and
// every process it started), to the process otherwise; then it waits
// until the process has exited (SIGKILL after StopTimeout, reported as
// an error).
func (p *Proc) Interrupt() error { return p.end(syscall.SIGINT, StopTimeout, p.Group) }

// ExitErr returns the exit status of the last process once it has
// exited (nil: exit code 0), and nil while it runs.
func (p *Proc) ExitErr() error { return p.exitStatus() }

// Restart stops the process if it runs and starts it again on the same
// directory, waiting until it is ready.
func (p *Proc) Restart(ctx context.Context) error {
	if err := p.Stop(); err != nil {
		return err
	}
	return p.Start(ctx)
}

// Err returns why the process ended if it ended by itself (neither Kill
// nor Stop), with the end of its log; nil while it runs or after a
// deliberate end.
func (p *Proc) Err() error {
	p.mu.Lock()
	if p.done == nil || p.running() || p.expected {
		p.mu.Unlock()
		return nil
	}
	err := p.exitErr
	p.mu.Unlock()
	return fmt.Errorf("itest: %s exited by itself (%v):\n%s", p.Name, err, p.LogTail(logTailBytes))
}

// LogTail returns the last n bytes of the process's log (all starts), for
// failure messages.
func (p *Proc) LogTail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
