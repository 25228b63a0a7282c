package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The jobs `etlhub run` reports for in these tests, each with its own ping key.
var runJobs = []string{"export-ok", "export-fail", "export-killed", "export-nostart", "export-signal", "export-hang"}

func runKey(job string) string { return "run-e2e-" + job + "-key-0123456789" }

// startRunHub runs `etlhub serve` with a ping key for each of runJobs (all
// of tenant dade, stale after 5s) and rules every second.
func startRunHub(t *testing.T) *hubProc {
	t.Helper()
	dir := t.TempDir()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	start := time.Now().UTC().Add(-time.Hour)
	due := start.Add(7 * time.Hour)
	var keys, jobs strings.Builder
	for i, j := range runJobs {
		env := fmt.Sprintf("T_PING_%d", i)
		t.Setenv(env, runKey(j))
		fmt.Fprintf(&keys, "    - {name: %s, key: \"${%s}\", tenant: dade, job: %s}\n", j, env, j)
		fmt.Fprintf(&jobs, "  - {tenant: dade, job: %s, timezone: UTC, schedule: \"%d %d * * *\", deadline: \"%s\", stale_after: 5s}\n",
			j, start.Minute(), start.Hour(), due.Format("15:04"))
	}
	cfg := fmt.Sprintf(`listen: %s
log: {level: debug, format: json}
store: {path: %s}
auth:
  tokens:
    - {name: viewer, token: "${T_VIEW}", role: viewer}
  ping_keys:
%sjobs:
%srules: {tick: 1s, timings: {stalled: {keep_firing_for: 0s}}}
`, addr, filepath.Join(dir, "hub.db"), keys.String(), jobs.String())
	return runHub(t, dir, addr, cfg)
}

// etlRun is a running `etlhub run`.
type etlRun struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	code           int
}

// startRun starts `etlhub run --job dade/JOB` with the job's key in
// ETLHUB_PING_KEY; args are more flags, then "--" and the command.
func startRun(t *testing.T, hub, job string, args ...string) *etlRun {
	t.Helper()
	r := &etlRun{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(binary, append([]string{"run", "--job", "dade/" + job, "--hub", hub}, args...)...)
	r.cmd.Env = append(os.Environ(), "ETLHUB_PING_KEY="+runKey(job))
	r.cmd.Stdout, r.cmd.Stderr = r.stdout, r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := r.cmd.Wait()
		r.code = r.cmd.ProcessState.ExitCode()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			r.code = -1
		}
		close(r.done)
	}()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.done
	})
	return r
}

func (r *etlRun) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
		return r.code
	case <-time.After(d):
		t.Fatalf("etlhub run still running after %v; stderr:\n%s", d, r.stderr.String())
		return -1
	}
}

// lastRun is the job's newest run as the hub's API answers it (nil if none).
func (h *hubProc) lastRun(job string) map[string]any {
	_, body := h.call("GET", "/api/v1/jobs/dade/"+job+"/runs", viewTok, nil)
	list, _ := body["runs"].([]any)
	if len(list) == 0 {
		return nil
	}
	return list[0].(map[string]any)
}

// firingStalled is the job's firing stalled alert (nil if none).
func (h *hubProc) firingStalled(job string) map[string]any {
	_, body := h.call("GET", "/api/v1/alerts?state=firing", viewTok, nil)
	list, _ := body["alerts"].([]any)
	for _, x := range list {
		if a := x.(map[string]any); a["rule"] == "stalled" && a["tenant"] == "dade" && a["job"] == job {
			return a
		}
	}
	return nil
}

// noKeyShown fails when any ping key appears in what was printed or logged.
func noKeyShown(t *testing.T, where string, text string) {
	t.Helper()
	for _, j := range runJobs {
		if strings.Contains(text, runKey(j)) {
			t.Errorf("%s shows the ping key of %s:\n%s", where, j, text)
		}
	}
}

// TestRunReportsToTheHub: `etlhub run` against a real `etlhub serve`: a
// command that succeeds, fails, is killed, cannot start, is signalled, and
// hangs (heartbeats, then none: the stall alert), each exit code passed
// through and each run as the hub shows it.
func TestRunReportsToTheHub(t *testing.T) {
	h := startRunHub(t)
	defer func() { noKeyShown(t, "the hub's logs", h.logs.String()) }()

	t.Run("succeeds", func(t *testing.T) {
		r := startRun(t, h.url, "export-ok", "--", "sh", "-c", "echo hello; echo careful >&2")
		if code := r.wait(t, 30*time.Second); code != 0 {
			t.Fatalf("exit %d, want 0; stderr:\n%s", code, r.stderr.String())
		}
		// The command's output passes through as it is; etlhub run adds nothing.
		if r.stdout.String() != "hello\n" || r.stderr.String() != "careful\n" {
			t.Fatalf("stdout %q, stderr %q", r.stdout.String(), r.stderr.String())
		}
		run := h.lastRun("export-ok")
		if run == nil || run["state"] != "succeeded" || run["finished_at"] == nil || run["started_at"] == nil || run["error"] != "" ||
			run["source"] != "ping:export-ok" {
			t.Fatalf("run = %v", run)
		}
	})

	t.Run("fails with exit 3 and the tail of its output", func(t *testing.T) {
		script := `for i in $(seq 1 50); do echo "line $i"; done; printf '\033[31mboom\033[0m \377\n'; sleep 0.3; echo "to stderr" >&2; sleep 1.2; exit 3`
		r := startRun(t, h.url, "export-fail", "--tail-lines", "3", "--", "sh", "-c", script)
		if code := r.wait(t, 30*time.Second); code != 3 {
			t.Fatalf("exit %d, want 3; stderr:\n%s", code, r.stderr.String())
		}
		if !strings.Contains(r.stdout.String(), "line 1\n") || !strings.Contains(r.stdout.String(), "\x1b[31mboom") {
			t.Fatalf("the terminal did not get the output as it was: %q", r.stdout.String())
		}
		run := h.lastRun("export-fail")
		if run == nil || run["state"] != "failed" {
			t.Fatalf("run = %v", run)
		}
		e := run["error"].(string)
		head, tail, _ := strings.Cut(e, "\n")
		if !regexp.MustCompile(`^exit code 3 after [0-9.]+m?s$`).MatchString(head) || tail != "…\nline 50\nboom \uFFFD\nto stderr" {
			t.Fatalf("error = %q, want exit code 3 after about 1.2s and the last 3 lines, cleaned", e)
		}
		d := mustTime(t, run["finished_at"]).Sub(mustTime(t, run["started_at"]))
		if d < time.Second || d > 10*time.Second {
			t.Fatalf("the run took %v, want about 1.2s", d)
		}
	})

	t.Run("killed by SIGKILL exits 137", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		r := startRun(t, h.url, "export-killed", "--", "sh", "-c", `echo $$ > `+pidFile+`; echo started; exec sleep 60`)
		h.eventually("the command is running", 20*time.Second, func() bool {
			run := h.lastRun("export-killed")
			return run != nil && run["state"] == "running" && strings.Contains(r.stdout.String(), "started")
		})
		data, _ := os.ReadFile(pidFile)
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			t.Fatalf("pid file: %q", data)
		}
		syscall.Kill(pid, syscall.SIGKILL)
		if code := r.wait(t, 30*time.Second); code != 137 {
			t.Fatalf("exit %d, want 137; stderr:\n%s", code, r.stderr.String())
		}
		run := h.lastRun("export-killed")
		if run == nil || run["state"] != "failed" || !strings.HasPrefix(run["error"].(string), "exit code 137 after ") ||
			!strings.HasSuffix(run["error"].(string), "\nstarted") {
			t.Fatalf("run = %v", run)
		}
	})

	t.Run("cannot start: 127 and 126", func(t *testing.T) {
		r := startRun(t, h.url, "export-nostart", "--", "/nonexistent/etl-job", "--flag")
		if code := r.wait(t, 30*time.Second); code != 127 {
			t.Fatalf("exit %d, want 127; stderr:\n%s", code, r.stderr.String())
		}
		if !strings.Contains(r.stderr.String(), "/nonexistent/etl-job: no such file or directory") {
			t.Fatalf("stderr = %q", r.stderr.String())
		}
		run := h.lastRun("export-nostart")
		if run == nil || run["state"] != "failed" || !strings.HasPrefix(run["error"].(string), "exit code 127") ||
			!strings.Contains(run["error"].(string), "no such file or directory") {
			t.Fatalf("run = %v", run)
		}
		notExec := filepath.Join(t.TempDir(), "job.sh")
		os.WriteFile(notExec, []byte("#!/bin/sh\necho never\n"), 0o644)
		r = startRun(t, h.url, "export-nostart", "--", notExec)
		if code := r.wait(t, 30*time.Second); code != 126 {
			t.Fatalf("exit %d, want 126; stderr:\n%s", code, r.stderr.String())
		}
		h.eventually("the second failure is the newest run", 10*time.Second, func() bool {
			run := h.lastRun("export-nostart")
			return run != nil && strings.HasPrefix(run["error"].(string), "exit code 126") && strings.Contains(run["error"].(string), "permission denied")
		})
	})

	t.Run("SIGTERM reaches the command", func(t *testing.T) {
		r := startRun(t, h.url, "export-signal", "--", "sh", "-c", `trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done`)
		h.eventually("the command is ready", 20*time.Second, func() bool { return strings.Contains(r.stdout.String(), "ready") })
		r.cmd.Process.Signal(syscall.SIGTERM)
		if code := r.wait(t, 30*time.Second); code != 7 {
			t.Fatalf("exit %d, want the command's 7; stdout %q stderr %q", code, r.stdout.String(), r.stderr.String())
		}
		run := h.lastRun("export-signal")
		if !strings.Contains(r.stdout.String(), "got TERM") || run == nil || run["state"] != "failed" ||
			!strings.HasSuffix(run["error"].(string), "ready\ngot TERM") {
			t.Fatalf("stdout %q, run %v", r.stdout.String(), run)
		}
	})

	t.Run("hangs: heartbeats, then none, then the stall alert", func(t *testing.T) {
		r := startRun(t, h.url, "export-hang", "--heartbeat", "1s", "--", "sleep", "120")
		var first time.Time
		h.eventually("the run is running", 20*time.Second, func() bool {
			run := h.lastRun("export-hang")
			if run != nil && run["state"] == "running" {
				first = mustTime(t, run["updated_at"])
				return true
			}
			return false
		})
		// Past stale_after (5s), heartbeats keep it fresh: no alert.
		time.Sleep(7 * time.Second)
		run := h.lastRun("export-hang")
		if upd := mustTime(t, run["updated_at"]); upd.Sub(first) < 4*time.Second {
			t.Fatalf("updated_at moved from %v to %v in 7s of heartbeats every second", first, upd)
		}
		if a := h.firingStalled("export-hang"); a != nil {
			t.Fatalf("stalled while heartbeating: %v", a)
		}
		// The wrapper stops (as a frozen host would): no more heartbeats.
		r.cmd.Process.Signal(syscall.SIGSTOP)
		stopped := time.Now()
		var alert map[string]any
		h.eventually("the stall alert fires", 30*time.Second, func() bool {
			alert = h.firingStalled("export-hang")
			return alert != nil
		})
		if d := time.Since(stopped); d < 3*time.Second {
			t.Fatalf("the stall alert fired %v after the heartbeats stopped, before stale_after", d)
		}
		if !strings.Contains(alert["summary"].(string), "stale after 5s") {
			t.Fatalf("alert = %v", alert)
		}
		// Heartbeats again: the alert resolves; then SIGTERM ends the command.
		r.cmd.Process.Signal(syscall.SIGCONT)
		h.eventually("the stall alert resolves", 30*time.Second, func() bool { return h.firingStalled("export-hang") == nil })
		r.cmd.Process.Signal(syscall.SIGTERM)
		if code := r.wait(t, 30*time.Second); code != 128+int(syscall.SIGTERM) {
			t.Fatalf("exit %d, want 143; stderr:\n%s", code, r.stderr.String())
		}
		h.eventually("the run failed with 143", 10*time.Second, func() bool {
			run := h.lastRun("export-hang")
			return run["state"] == "failed" && strings.HasPrefix(run["error"].(string), "exit code 143 after ")
		})
		noKeyShown(t, "etlhub run's stderr", r.stderr.String())
	})
}

// TestRunWithTheHubDown: the command runs and its exit code passes through
// whether the hub refuses connections or never answers; one warning, no key.
func TestRunWithTheHubDown(t *testing.T) {
	// A hub that accepts connections and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := "http://" + closed.Addr().String()
	closed.Close()

	for name, hub := range map[string]string{"refused": refused, "silent": "http://" + l.Addr().String()} {
		t.Run(name, func(t *testing.T) {
			began := time.Now()
			r := startRun(t, hub, "export-fail", "--timeout", "300ms", "--heartbeat", "1s", "--",
				"sh", "-c", "echo working; sleep 2.5; echo done; exit 3")
			if code := r.wait(t, 30*time.Second); code != 3 {
				t.Fatalf("exit %d, want 3; stderr:\n%s", code, r.stderr.String())
			}
			if took := time.Since(began); took > 8*time.Second {
				t.Fatalf("took %v for a 2.5s command (the hub blocked it)", took)
			}
			if r.stdout.String() != "working\ndone\n" {
				t.Fatalf("stdout = %q", r.stdout.String())
			}
			stderr := r.stderr.String()
			if n := strings.Count(stderr, "etlhub run:"); n != 1 || !strings.Contains(stderr, "dade/export-fail: the hub at "+hub+" did not take") {
				t.Fatalf("want one warning naming the hub, got %d:\n%s", n, stderr)
			}
			noKeyShown(t, "stderr", stderr)
			if bytes.Contains([]byte(stderr), []byte("/ping/")) {
				t.Fatalf("the warning shows the ping URL:\n%s", stderr)
			}
		})
	}
}

func mustTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %v: %v", v, err)
	}
	return tm
}

// TestReadmeShowsRunUsage: the README's section on etlhub run shows its
// usage as the binary prints it.
func TestReadmeShowsRunUsage(t *testing.T) {
	cmd := exec.Command(binary, "run", "--help")
	cmd.Env = append(os.Environ(), "ETLHUB_URL=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var block strings.Builder
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if l != "" {
			l = "    " + l
		}
		block.WriteString(l + "\n")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), block.String()) {
		t.Fatalf("README.md lacks the usage of etlhub run as it is now:\n%s", block.String())
	}
}
