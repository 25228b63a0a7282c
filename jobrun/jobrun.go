// Package jobrun is `etlhub run`: it runs a command and reports the run to
// the hub's ping API (start, heartbeats while it runs, then success or
// failure with the exit code, the duration and the tail of its output), as
// cron wrappers of healthchecks.io and Cronitor do.
//
// The command comes first: its output passes through to the terminal as it
// is written, its exit code is passed through (128+N when a signal killed
// it, 127 or 126 when it could not start), and SIGINT and SIGTERM reach it.
// A hub that is slow or down never delays or fails the command: every call
// has a timeout and a few retries, the first failure is said once on
// stderr, and the ping key is never printed.
package jobrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/etlhub/etlhub/internal/termtext"
	"github.com/etlhub/etlhub/model"
)

// Limits of the tail sent with the finish.
const (
	// TailBytes bounds the tail: what the hub keeps of a failure's text.
	TailBytes = model.MaxErrorLen
	// ringBytes is how much raw output is kept to make the tail of: escape
	// sequences and progress bars shrink when cleaned.
	ringBytes = 64 << 10
	// waitDelay is how long output is still read after the command exits
	// (a background child of it may hold the pipes open for ever).
	waitDelay = 5 * time.Second
)

// Config is one run of a command.
type Config struct {
	// Hub is the hub's base URL (http://host:8080).
	Hub string
	// Key is the ping key of the job (auth.ping_keys): a secret.
	Key string
	// Job is the tenant and job the key reports for, named in messages.
	Job model.JobKey
	// Heartbeat is how often a running command is reported alive (0: never).
	Heartbeat time.Duration
	// TailLines bounds the lines of output sent with the finish (0: as many
	// as fit in TailBytes).
	TailLines int
	// Timeout bounds each call to the hub; Attempts is how many times a
	// call is tried (with backoff) before it is given up.
	Timeout  time.Duration
	Attempts int
	// Version goes in the User-Agent.
	Version string

	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Signals are forwarded to the command while it runs.
	Signals <-chan os.Signal
}

// Validate checks the config; its errors never show the key.
func (c *Config) Validate() error {
	if c.Job.Tenant == "" || c.Job.Job == "" {
		return errors.New("--job must be TENANT/JOB")
	}
	if c.Key == "" {
		return errors.New("no ping key: give --key or set ETLHUB_PING_KEY (the key of this job in the hub's auth.ping_keys)")
	}
	if !validKey(c.Key) {
		return errors.New("the ping key (--key or ETLHUB_PING_KEY) must be 16 to 128 of A-Z a-z 0-9 - . _ ~")
	}
	if _, err := hubURL(c.Hub); err != nil {
		return err
	}
	if c.Heartbeat < 0 || c.Heartbeat > 0 && c.Heartbeat < time.Second {
		return fmt.Errorf("--heartbeat %v: at least 1s (0 sends none)", c.Heartbeat)
	}
	if c.TailLines < 0 {
		return errors.New("--tail-lines must not be negative")
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Attempts <= 0 {
		c.Attempts = 3
	}
	return nil
}

func validKey(s string) bool {
	if len(s) < 16 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// Run runs argv, reporting it to the hub, and returns the exit code to
// exit with: the command's own. cfg must have passed Validate.
func Run(cfg Config, argv []string) int {
	if len(argv) == 0 {
		fmt.Fprintln(cfg.Stderr, "etlhub run: no command")
		return 2
	}
	rep := newReporter(cfg)
	started := time.Now()
	tail := &ring{max: ringBytes}

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = cfg.Stdin
	cmd.Stdout = &passThrough{w: cfg.Stdout, tail: tail}
	cmd.Stderr = &passThrough{w: cfg.Stderr, tail: tail}
	cmd.WaitDelay = waitDelay

	// The start and the heartbeats go in the background: the command
	// starts at once, whatever the hub does.
	live, stopLive := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	bg.Add(1)
	go func() {
		defer bg.Done()
		rep.send(live, "start", "")
		if cfg.Heartbeat <= 0 {
			return
		}
		t := time.NewTicker(cfg.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-live.Done():
				return
			case <-t.C:
				rep.send(live, "heartbeat", "")
			}
		}
	}()
	finish := func(code int, output string) int {
		stopLive()
		bg.Wait()
		rep.send(context.Background(), fmt.Sprint(code), output, "duration", fmt.Sprintf("%.3f", time.Since(started).Seconds()))
		return code
	}

	if err := cmd.Start(); err != nil {
		code, msg := startFailure(argv[0], err)
		fmt.Fprintln(cfg.Stderr, "etlhub run:", msg)
		return finish(code, msg)
	}
	waited := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-cfg.Signals:
				if !deliveredByTerminal(s) {
					cmd.Process.Signal(s)
				}
			case <-waited:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(waited)
	code := exitCode(cmd.ProcessState)
	if code < 0 {
		// Wait failed without an exit status: say so, and fail.
		fmt.Fprintln(cfg.Stderr, "etlhub run:", err)
		code = 1
	}
	return finish(code, tail.tail(cfg.TailLines, TailBytes))
}

// startFailure is a shell's answer to a command that cannot start: 127
// when there is no such command, 126 when it is not executable.
func startFailure(name string, err error) (int, string) {
	code := 126
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		code = 127
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		err = ee.Err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return code, fmt.Sprintf("%s: %v", termtext.Clean([]byte(name)), err)
}

// exitCode is what a shell would say of the process: its exit code, or
// 128+N when signal N killed it; -1 when there is no status.
func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// passThrough writes the command's output to the terminal as it comes and
// keeps it for the tail. A terminal that fails (closed, EPIPE) is not
// written again, but the command is never stopped for it.
type passThrough struct {
	w      io.Writer
	broken bool
	tail   *ring
}

func (p *passThrough) Write(b []byte) (int, error) {
	p.tail.Write(b)
	if !p.broken && p.w != nil {
		if _, err := p.w.Write(b); err != nil {
			p.broken = true
		}
	}
	return len(b), nil
}

// ring keeps the last max bytes written to it (stdout and stderr as they
// interleave).
type ring struct {
	mu   sync.Mutex
	max  int
	buf  []byte
	lost bool // earlier output was dropped
}

func (r *ring) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(b)
	if len(b) >= r.max {
		r.buf = append(r.buf[:0], b[len(b)-r.max:]...)
		r.lost = true
		return n, nil
	}
	if over := len(r.buf) + len(b) - r.max; over > 0 {
		r.buf = append(r.buf[:0], r.buf[over:]...)
		r.lost = true
	}
	r.buf = append(r.buf, b...)
	return n, nil
}

// tail is the end of the output made safe to send (valid UTF-8, no escape
// sequences or control characters), within lines and maxBytes.
func (r *ring) tail(lines, maxBytes int) string {
	r.mu.Lock()
	raw := append([]byte(nil), r.buf...)
	lost := r.lost
	r.mu.Unlock()
	if lost {
		// The first line kept may start inside a character or an escape sequence.
		if i := strings.IndexByte(string(raw), '\n'); i >= 0 {
			raw = raw[i+1:]
		}
	}
	s := termtext.LastLines(termtext.Clean(raw), lines)
	if lost && !strings.HasPrefix(s, "…\n") {
		s = "…\n" + s
	}
	return termtext.Tail(s, maxBytes)
}
