package inbox

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/testsrv"
	"golang.org/x/crypto/ssh"
)

func TestMain(m *testing.M) { testsrv.Main(m) }

func cfgFor(s *testsrv.SSHD) Config {
	c := Config{Host: s.Host, Port: s.Port, User: s.User, PrivateKey: config.Secret(s.KeyPEM), KnownHosts: s.KnownHosts, Dir: s.Root}
	var p config.Problems
	c.Validate(&p, "sftp")
	return c
}

func TestDownloadResumesAndVerifies(t *testing.T) {
	s := testsrv.StartSSHD(t)
	data := make([]byte, 3<<20)
	rand.Read(data)
	os.WriteFile(filepath.Join(s.Root, "users.csv"), data, 0o644)
	os.WriteFile(filepath.Join(s.Root, "users.csv.filepart"), data[:10], 0o644)
	c, err := Dial(context.Background(), cfgFor(s))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	list, err := c.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("list = %+v, %v", list, err)
	}
	// An interrupted transfer left the first megabyte locally.
	local := filepath.Join(t.TempDir(), "users.csv")
	os.WriteFile(local, data[:1<<20], 0o644)
	sum, err := c.Download("users.csv", local)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	got, _ := os.ReadFile(local)
	if sum != hex.EncodeToString(want[:]) || len(got) != len(data) {
		t.Fatalf("resumed download: %d bytes, sum %s", len(got), sum)
	}
	// Reports go to the district's reports/ folder; processed files to archive/.
	if err := c.Put("reports/quality.csv", strings.NewReader("severity,code\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(s.Root, "reports", "quality.csv")); string(b) != "severity,code\n" {
		t.Fatalf("report on the server: %q", b)
	}
	if err := c.Archive("2026-09-01T0300Z", []string{"users.csv"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Root, "archive", "2026-09-01T0300Z", "users.csv")); err != nil {
		t.Fatal("not archived:", err)
	}
}

func TestHostKeyIsPinned(t *testing.T) {
	s := testsrv.StartSSHD(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	otherSigner, _ := ssh.NewSignerFromKey(other)
	changed := filepath.Join(dir, "changed")
	os.WriteFile(changed, []byte(fmt.Sprintf("[127.0.0.1]:%d %s", s.Port, ssh.MarshalAuthorizedKey(otherSigner.PublicKey()))), 0o600)
	for name, kh := range map[string]string{"unknown": empty, "changed": changed} {
		c := cfgFor(s)
		c.KnownHosts = kh
		_, err := Dial(context.Background(), c)
		var hke *HostKeyError
		if !errors.As(err, &hke) || hke.Changed != (name == "changed") {
			t.Fatalf("%s host key: %v", name, err)
		}
		if strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Fatal("the private key leaked into the error")
		}
	}
	c := cfgFor(s)
	c.PrivateKey = "not a key"
	if _, err := Dial(context.Background(), c); err == nil || !strings.Contains(err.Error(), "sftp private key") {
		t.Fatalf("bad key: %v", err)
	}
}

// TestHungServerTimesOut: a server that keeps the connection open but stops
// answering fails the call after the timeout instead of hanging the run;
// an idle connection between calls is not cut.
func TestHungServerTimesOut(t *testing.T) {
	s := testsrv.StartSSHD(t)
	os.WriteFile(filepath.Join(s.Root, "users.csv"), []byte("sourcedId\nu1\n"), 0o644)
	cfg := cfgFor(s)
	cfg.Timeout = 700 * time.Millisecond
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(1500 * time.Millisecond) // idle for longer than the timeout
	if _, err := c.List(); err != nil {
		t.Fatalf("an idle connection was cut: %v", err)
	}
	s.Freeze()
	defer s.Thaw()
	start := time.Now()
	_, err = c.Download("users.csv", filepath.Join(t.TempDir(), "users.csv"))
	if took := time.Since(start); err == nil || took > 5*time.Second {
		t.Fatalf("download from a hung server: %v after %v", err, took)
	}
	start = time.Now()
	if _, err := Dial(context.Background(), cfg); err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("dial to a hung server: %v after %v", err, time.Since(start))
	}
}
