// Package testsrv starts the real servers that tests use (PostgreSQL,
// redis-server, sshd) on free loopback ports, and stops them afterwards. Under
// CI=true a missing server fails the test; elsewhere it skips with the reason.
package testsrv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

var (
	mu       sync.Mutex
	stoppers []func()
)

// Main runs a package's tests and then stops every server they started. Use
// it from TestMain: func TestMain(m *testing.M) { testsrv.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	StopAll()
	os.Exit(code)
}

// StopAll stops the shared servers.
func StopAll() {
	mu.Lock()
	defer mu.Unlock()
	for i := len(stoppers) - 1; i >= 0; i-- {
		stoppers[i]()
	}
	stoppers = nil
}

func onStop(f func()) {
	mu.Lock()
	stoppers = append(stoppers, f)
	mu.Unlock()
}

// Missing fails the test under CI=true and skips it elsewhere.
func Missing(t testing.TB, what string, err error) {
	t.Helper()
	msg := fmt.Sprintf("%s is not available: %v (install it with ./scripts/test.sh)", what, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// findBinary looks for name on PATH and then in dirs (glob patterns).
func findBinary(name string, dirs ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range dirs {
		matches, _ := filepath.Glob(filepath.Join(d, name))
		for i := len(matches) - 1; i >= 0; i-- {
			if st, err := os.Stat(matches[i]); err == nil && !st.IsDir() {
				return matches[i], nil
			}
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in %v", name, dirs)
}

// killTree kills a process and every process descended from it (sshd's
// sessions start sessions of their own, so a process group would miss them).
func killTree(pid int) { signalTree(pid, syscall.SIGKILL) }

// signalTree sends sig to a process and all its descendants.
func signalTree(pid int, sig syscall.Signal) {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var p, pp int
		if _, err := fmt.Sscan(e.Name(), &p); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces; read after its ')'.
		rest := string(stat)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		var state string
		if _, err := fmt.Sscan(rest, &state, &pp); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	var walk func(int)
	walk = func(p int) {
		if sig != syscall.SIGCONT {
			syscall.Kill(p, syscall.SIGSTOP) // no new children while we look
		}
		for _, c := range children[p] {
			walk(c)
		}
		syscall.Kill(p, sig)
	}
	walk(pid)
}
