package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A port in use fails at once, before the store is opened (the database file
// is never created) or the rules warmed.
func TestServePortInUseFailsFast(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	db := filepath.Join(dir, "hub.db")
	cfg := filepath.Join(dir, "etlhub.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen: %s\nstore: {path: %s}\nauth: {tokens: [{name: a, token: %q, role: admin}]}\n",
		l.Addr(), db, adminTok)), 0o600)
	start := time.Now()
	out, err := exec.Command(binary, "serve", "--config", cfg).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "listen on "+l.Addr().String()) {
		t.Fatalf("exit %v:\n%s", err, out)
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the store was opened before the port was bound (%v)", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v to fail", d)
	}
}

// SIGTERM drains requests in flight for shutdown_grace; a second
// signal exits at once.
func TestServeSecondSignalExitsAtOnce(t *testing.T) {
	h := startHubIn(t, t.TempDir(), "  []", "  []", "shutdown_grace: 5m")
	// A request in flight: headers sent, the body never finished.
	c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /api/v1/observations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100000\r\n\r\n[", opTok)
	h.eventually("the hub is listening", 10*time.Second, func() bool {
		return strings.Contains(h.logs.String(), "api listening")
	})
	time.Sleep(300 * time.Millisecond) // the server has read the headers
	h.cmd.Process.Signal(syscall.SIGTERM)
	h.eventually("the hub says it is shutting down", 10*time.Second, func() bool {
		return strings.Contains(h.logs.String(), "shutting down")
	})
	select {
	case err := <-h.done:
		h.done <- err
		t.Fatalf("exited (%v) with a request in flight and 5m of grace", err)
	case <-time.After(time.Second):
	}
	sent := time.Now()
	h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-h.done:
		h.done <- err
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 || !strings.Contains(h.logs.String(), "second terminated: exiting now") {
			t.Fatalf("exit %v after the second signal; logs:\n%s", err, h.logs.String())
		}
		if d := time.Since(sent); d > 5*time.Second {
			t.Fatalf("took %v after the second signal", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after the second SIGTERM")
	}
}

// TestServeReloadsOnSIGHUP: SIGHUP reads the config again instead of ending
// the process.
func TestServeReloadsOnSIGHUP(t *testing.T) {
	h := startHub(t, "  []", jobsYAML)
	h.cmd.Process.Signal(syscall.SIGHUP)
	h.eventually("the hub reloads", 30*time.Second, func() bool { return strings.Contains(h.logs.String(), "config reloaded") })
	if code, _ := h.call("GET", "/healthz", "", nil); code != 200 {
		t.Fatalf("after SIGHUP: %d", code)
	}
}
