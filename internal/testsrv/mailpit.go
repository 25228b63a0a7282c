package testsrv

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// MailpitVersion is the mailpit (github.com/axllent/mailpit) the tests run;
// scripts/test.sh installs it, and a test builds it when it is missing.
const MailpitVersion = "v1.27.11"

// Mailpit is a mailpit SMTP server with its HTTP API, started for one test.
type Mailpit struct {
	SMTP string // host:port
	API  string // http://host:port
	cmd  *exec.Cmd
	log  *logBuffer
}

// MailpitOptions turn on STARTTLS (a PEM certificate and key) and
// authentication (an htpasswd file).
type MailpitOptions struct {
	CertFile, KeyFile string
	AuthFile          string
}

// mailpitBinary finds mailpit on PATH or in GOPATH/bin, or builds it into
// the user's cache (a minute or more, once).
func mailpitBinary(t testing.TB) string {
	t.Helper()
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	dirs := []string{filepath.Join(string(trimNL(gopath)), "bin")}
	cache, err := os.UserCacheDir()
	if err == nil {
		dirs = append(dirs, filepath.Join(cache, "etlhub-test", "mailpit-"+MailpitVersion))
	}
	if bin, err := findBinary("mailpit", dirs...); err == nil {
		return bin
	}
	if cache == "" {
		Missing(t, "mailpit", err)
	}
	dir := dirs[len(dirs)-1]
	cmd := exec.Command("go", "install", "github.com/axllent/mailpit@"+MailpitVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		Missing(t, "mailpit", fmt.Errorf("go install: %v\n%s", err, out))
	}
	return filepath.Join(dir, "mailpit")
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// StartMailpit runs mailpit on free loopback ports; it stops when the test
// ends.
func StartMailpit(t testing.TB, o MailpitOptions) *Mailpit {
	t.Helper()
	bin := mailpitBinary(t)
	m := &Mailpit{SMTP: fmt.Sprintf("127.0.0.1:%d", FreePort(t)), log: &logBuffer{}}
	web := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	m.API = "http://" + web
	args := []string{"--smtp", m.SMTP, "--listen", web, "--database", filepath.Join(t.TempDir(), "mailpit.db"),
		"--smtp-disable-rdns", "--enable-chaos", "--quiet"}
	if o.CertFile != "" {
		args = append(args, "--smtp-tls-cert", o.CertFile, "--smtp-tls-key", o.KeyFile, "--smtp-require-starttls")
	}
	if o.AuthFile != "" {
		args = append(args, "--smtp-auth-file", o.AuthFile)
	}
	m.cmd = exec.Command(bin, args...)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start mailpit: %v", err)
	}
	t.Cleanup(m.Stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(m.API + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit did not become ready: %v\n%s", err, m.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Log is what mailpit printed.
func (m *Mailpit) Log() string { return m.log.String() }

// Stop kills the server.
func (m *Mailpit) Stop() {
	if m.cmd != nil && m.cmd.Process != nil {
		m.cmd.Process.Kill()
		m.cmd.Wait()
		m.cmd = nil
	}
}
