package deploy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"debug/macho"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const testToken = "image-test-token-0123456789"

// The release is built once per test binary and shared: TestReleaseSnapshot
// checks it and TestImage puts its linux/amd64 binary in the image,
// so the static binary is linked once.
var rel struct {
	once    sync.Once
	dist    string
	version string
	targets []string
	took    time.Duration
	err     error
}

// releaseTargets: what the snapshot builds, by default all the release
// script's targets, as a release does. From the Go build cache they take
// seconds each; from a cold cache each cross target compiles everything for
// its architecture (about 5 CPU-minutes each on the CI machine: BENCHMARKS.md).
// ETLHUB_RELEASE_TARGETS="linux/amd64" builds only what the image and the
// other tests run.
var defaultReleaseTargets = []string{"linux/amd64", "linux/arm64", "darwin/arm64"}

func releaseTargets() []string {
	if v := strings.TrimSpace(os.Getenv("ETLHUB_RELEASE_TARGETS")); v != "" {
		return strings.Fields(v)
	}
	return defaultReleaseTargets
}

func TestMain(m *testing.M) {
	code := m.Run()
	if rel.dist != "" {
		os.RemoveAll(rel.dist)
	}
	os.Exit(code)
}

// snapshot runs scripts/release.sh --snapshot once.
func snapshot(t *testing.T) (dist, version string) {
	t.Helper()
	rel.once.Do(func() {
		rel.targets = releaseTargets()
		rel.dist, rel.err = os.MkdirTemp("", "etlhub-release-")
		if rel.err != nil {
			return
		}
		cmd := exec.Command("../scripts/release.sh", "--snapshot")
		cmd.Env = append(os.Environ(), "DIST="+rel.dist, "TARGETS="+strings.Join(rel.targets, " "))
		start := time.Now()
		out, err := cmd.CombinedOutput()
		rel.took = time.Since(start)
		if err != nil {
			rel.err = fmt.Errorf("release.sh --snapshot: %v\n%s", err, out)
			return
		}
		vb, _ := os.ReadFile(filepath.Join(rel.dist, "VERSION"))
		rel.version = strings.TrimSpace(string(vb))
	})
	if rel.err != nil {
		t.Fatal(rel.err)
	}
	t.Logf("release.sh --snapshot (%s): %s", strings.Join(rel.targets, " "), rel.took.Round(time.Second))
	return rel.dist, rel.version
}

// staticBinary is the linux/amd64 etlhub from the snapshot release.
func staticBinary(t *testing.T) string {
	dist, version := snapshot(t)
	p := filepath.Join(dist, "etlhub_"+version+"_linux_amd64", "etlhub")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no linux/amd64 binary: %v", err)
	}
	return p
}

// TestReleaseSnapshot runs the release script in snapshot mode (checksums,
// archives, the version injected), then serves with the static linux/amd64
// binary and reads the version back from etlhub_build_info.
//
//	go test -run TestReleaseSnapshot -v ./deploy/
//	ETLHUB_RELEASE_TARGETS=linux/amd64 go test -run TestReleaseSnapshot ./deploy/
func TestReleaseSnapshot(t *testing.T) {
	dist, version := snapshot(t)
	if !regexp.MustCompile(`^v0\.0\.0-snapshot\.\d{14}\.[0-9a-f]+$`).MatchString(version) {
		t.Fatalf("version %q", version)
	}
	sums, err := os.ReadFile(filepath.Join(dist, "etlhub_"+version+"_SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(sums)), "\n")
	if len(lines) != len(rel.targets) {
		t.Fatalf("SHA256SUMS has %d lines for %d targets:\n%s", len(lines), len(rel.targets), sums)
	}
	bin := map[string]string{}
	for _, l := range lines {
		sum, name, _ := strings.Cut(l, "  ")
		data, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			t.Fatal(err)
		}
		if h := sha256.Sum256(data); hex.EncodeToString(h[:]) != sum {
			t.Fatalf("%s: checksum does not match", name)
		}
		target := strings.TrimSuffix(strings.TrimPrefix(name, "etlhub_"+version+"_"), ".tar.gz")
		bin[target] = untar(t, data, t.TempDir(), "etlhub_"+version+"_"+target+"/")
	}
	for _, target := range rel.targets {
		key := strings.ReplaceAll(target, "/", "_")
		p := bin[key]
		if p == "" {
			t.Fatalf("%s: no archive in SHA256SUMS", target)
		}
		switch key {
		case "linux_amd64":
			checkELF(t, p, elf.EM_X86_64)
		case "linux_arm64":
			checkELF(t, p, elf.EM_AARCH64)
		case "darwin_arm64":
			if f, err := macho.Open(p); err != nil || f.Cpu != macho.CpuArm64 {
				t.Fatalf("darwin_arm64: %v", err)
			}
		default:
			t.Fatalf("target %s: the test does not know how to check it", target)
		}
	}
	if bin["linux_amd64"] == "" {
		t.Fatal("no linux/amd64 archive")
	}
	got, err := exec.Command(bin["linux_amd64"], "version").Output()
	if err != nil || strings.TrimSpace(string(got)) != "etlhub "+version {
		t.Fatalf("etlhub version = %q (%v), want %q", got, err, version)
	}
	// The static binary serves on SQLite (pure Go) and says its version.
	addr, stop := serveWith(t, bin["linux_amd64"], t.TempDir())
	defer stop()
	metrics := get(t, "http://"+addr+"/metrics", testToken)
	if !regexp.MustCompile(`etlhub_build_info\{[^}]*version="` + regexp.QuoteMeta(version) + `"[^}]*\} 1`).MatchString(metrics) {
		t.Fatalf("etlhub_build_info does not carry %s:\n%s", version, grep(metrics, "build_info"))
	}
}

// untar unpacks the release archive gz into dir, checks that it holds
// etlhub, LICENSE, README.md and CHANGELOG.md under prefix and returns the
// path of etlhub.
func untar(t *testing.T, gz []byte, dir, prefix string) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	names := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names[h.Name] = true
		if h.Name == prefix+"etlhub" {
			if h.Mode&0o111 == 0 {
				t.Fatalf("%s: mode %o, not executable", h.Name, h.Mode)
			}
			f, err := os.OpenFile(filepath.Join(dir, "etlhub"), os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
	for _, want := range []string{"etlhub", "LICENSE", "README.md", "CHANGELOG.md"} {
		if !names[prefix+want] {
			t.Fatalf("%s%s is not in the archive: %v", prefix, want, names)
		}
	}
	return filepath.Join(dir, "etlhub")
}

// checkELF: the right machine and static (no program interpreter).
func checkELF(t *testing.T, path string, m elf.Machine) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != m {
		t.Fatalf("%s: machine %v, want %v", path, f.Machine, m)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s is dynamically linked", path)
		}
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func serveWith(t *testing.T, bin, dir string) (string, func()) {
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "etlhub.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen: %s\nstore: {path: %s}\nauth: {tokens: [{name: a, token: %q, role: admin}]}\n",
		addr, filepath.Join(dir, "hub.db"), testToken)), 0o600)
	cmd := exec.Command(bin, "serve", "--config", cfg)
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop := func() { cmd.Process.Signal(syscall.SIGTERM); <-done }
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return addr, stop
			}
		}
		select {
		case <-done:
			t.Fatalf("the static binary exited:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("not ready after 60s:\n%s", logs.String())
		}
	}
}

func get(t *testing.T, url, token string) string {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grep(s, word string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
