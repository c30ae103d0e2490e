// Package nodetool finds the chain nodes that kinko's go.mod builds
// through its tool directive (btcd, geth) and the loopback ports the test
// harnesses run them on.
package nodetool

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

type found struct {
	once sync.Once
	path string
	err  error
}

var (
	mu    sync.Mutex
	tools = map[string]*found{}
)

// Binary returns the path of the tool name built from go.mod's tool
// directive (go tool -n name, run in the module's directory), or the one
// the environment variable env names. hint is added to a failure's
// message: what builds the tool. The answer is found once a process.
func Binary(name, env, hint string) (string, error) {
	mu.Lock()
	f := tools[name]
	if f == nil {
		f = &found{}
		tools[name] = f
	}
	mu.Unlock()
	f.once.Do(func() {
		if p := os.Getenv(env); p != "" {
			f.path = p
			return
		}
		gomod, err := exec.Command("go", "env", "GOMOD").Output()
		if m := strings.TrimSpace(string(gomod)); err != nil || m == "" || m == os.DevNull {
			f.err = fmt.Errorf("%s is built from kinko's go.mod: run from the repository (go run ./cmd/kinko dev), or set %s to a %s binary", name, env, name)
			return
		}
		cmd := exec.Command("go", "tool", "-n", name)
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			f.err = fmt.Errorf("go tool -n %s (%s): %v: %s", name, hint, err, stderr.String())
			return
		}
		f.path = strings.TrimSpace(string(out))
	})
	return f.path, f.err
}

// FreePort returns a port free on 127.0.0.1 now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Tail returns the last max bytes of the file at path (a node's output),
// for error messages; what cannot be read is empty.
func Tail(path string, max int) string {
	b, _ := os.ReadFile(path)
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// Start starts cmd and returns a channel that receives cmd.Wait's result
// when the process exits. The process is started, and waited for, from an
// OS thread locked to the waiting goroutine: Linux sends a child's
// parent-death signal (the harnesses' Pdeathsig, which kills a node its
// test process left behind) when the thread that forked it ends, not the
// process, and Go ends a thread whose goroutine exits locked to it (the
// core's checkpoint writer does, at low priority). A node forked from
// such a thread would be killed mid-test.
func Start(cmd *exec.Cmd) (<-chan error, error) {
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}
