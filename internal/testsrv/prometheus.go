package testsrv

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Prometheus is a prometheus server (Debian package prometheus) started for
// one test with its own config and an empty TSDB.
type Prometheus struct {
	URL string
	cmd *exec.Cmd
	log *logBuffer
}

// StartPrometheus runs prometheus with config (YAML) on a free loopback
// port; it stops when the test ends. The config's global section should set
// a short scrape_interval (the test waits for a scrape).
func StartPrometheus(t testing.TB, config string) *Prometheus {
	t.Helper()
	bin, err := findBinary("prometheus", "/usr/bin", "/usr/local/bin")
	if err != nil {
		Missing(t, "prometheus", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	p := &Prometheus{URL: "http://" + addr, log: &logBuffer{}}
	p.cmd = exec.Command(bin, "--config.file="+path, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(p.Stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus did not become ready: %v\n%s", err, p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server.
func (p *Prometheus) Stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		p.cmd = nil
	}
}

// Promtool finds promtool (Debian package prometheus).
func Promtool(t testing.TB) string {
	t.Helper()
	bin, err := findBinary("promtool", "/usr/bin", "/usr/local/bin")
	if err != nil {
		Missing(t, "promtool", err)
	}
	return bin
}

// Amtool finds amtool (Debian package prometheus-alertmanager).
func Amtool(t testing.TB) string {
	t.Helper()
	bin, err := findBinary("amtool", "/usr/bin", "/usr/local/bin")
	if err != nil {
		Missing(t, "amtool", err)
	}
	return bin
}

// logBuffer collects a server's output for a failure message.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Log is what the server printed so far.
func (p *Prometheus) Log() string { return p.log.String() }
