package store

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSQLiteOneHub: a second store on the same SQLite file is refused, with
// an error that says why and points at PostgreSQL, until the first closes.
func TestSQLiteOneHub(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	first := mustOpen(t, Config{Driver: "sqlite", Path: path})
	_, err := Open(context.Background(), Config{Driver: "sqlite", Path: path}, nil)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	for _, want := range []string{"another hub", "PostgreSQL", "store.driver: postgres", ".lock"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	first.Close()
	mustOpen(t, Config{Driver: "sqlite", Path: path})
}

// TestSQLiteOneHubAcrossProcesses: another process holding the file keeps
// this one out; once it dies (kill -9, no clean-up) the file is free.
func TestSQLiteOneHubAcrossProcesses(t *testing.T) {
	if p := os.Getenv("ETLHUB_LOCK_HELPER"); p != "" {
		s, err := Open(context.Background(), Config{Driver: "sqlite", Path: p}, nil)
		if err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(1)
		}
		defer s.Close()
		os.Stdout.WriteString("open\n")
		time.Sleep(time.Minute)
		return
	}
	path := filepath.Join(t.TempDir(), "hub.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSQLiteOneHubAcrossProcesses$")
	cmd.Env = append(os.Environ(), "ETLHUB_LOCK_HELPER="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "open\n" {
		t.Fatalf("helper: %q %v", line, err)
	}
	_, err = Open(context.Background(), Config{Driver: "sqlite", Path: path}, nil)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("open beside another process: %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "process ") {
		t.Errorf("error %q does not name the process holding it", err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	mustOpen(t, Config{Driver: "sqlite", Path: path})
}
