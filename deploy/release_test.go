package deploy

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"debug/macho"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

const testToken = "image-test-token-0123456789"

// TestReleaseAndImage runs the release script in snapshot mode (the three
// targets, checksums, the version injected), serves with the static
// linux/amd64 binary and reads the version back from etlhub_build_info, then
// builds the container image from deploy/Dockerfile's runtime stage with
// buildah, starts it as its config says (user, env, entrypoint, cmd; own
// network namespace, its root as /) and runs its HEALTHCHECK.
//
//	go test -run TestReleaseAndImage -v ./deploy/
func TestReleaseAndImage(t *testing.T) {
	// Three cross builds from a cold cache take longer than the whole
	// suite may on two cores: this runs when asked for.
	if os.Getenv("ETLHUB_RELEASE_TEST") != "1" {
		t.Skip("set ETLHUB_RELEASE_TEST=1 to build the release and the image (tens of minutes on two cores)")
	}
	dist := t.TempDir()
	cmd := exec.Command("../scripts/release.sh", "--snapshot")
	cmd.Env = append(os.Environ(), "DIST="+dist)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("release.sh --snapshot: %v\n%s", err, out)
	}
	vb, _ := os.ReadFile(filepath.Join(dist, "VERSION"))
	version := strings.TrimSpace(string(vb))
	if !regexp.MustCompile(`^v0\.0\.0-snapshot\.\d{14}\.[0-9a-f]+$`).MatchString(version) {
		t.Fatalf("version %q", version)
	}
	bin := map[string]string{}
	t.Run("release", func(t *testing.T) {
		sums, err := os.ReadFile(filepath.Join(dist, "etlhub_"+version+"_SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(sums)), "\n")
		if len(lines) != 3 {
			t.Fatalf("SHA256SUMS:\n%s", sums)
		}
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
			bin[target] = untar(t, data, t.TempDir(), "etlhub_"+version+"_"+target+"/etlhub")
		}
		checkELF(t, bin["linux_amd64"], elf.EM_X86_64)
		checkELF(t, bin["linux_arm64"], elf.EM_AARCH64)
		if f, err := macho.Open(bin["darwin_arm64"]); err != nil || f.Cpu != macho.CpuArm64 {
			t.Fatalf("darwin_arm64: %v", err)
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
	})
	if bin["linux_amd64"] == "" {
		t.Fatal("no linux/amd64 binary")
	}
	t.Run("image", func(t *testing.T) { buildAndRunImage(t, bin["linux_amd64"]) })
}

func untar(t *testing.T, gz []byte, dir, want string) string {
	t.Helper()
	zr, err := gzip.NewReader(strings.NewReader(string(gz)))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	names := []string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == want {
			p := filepath.Join(dir, "etlhub")
			f, _ := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o755)
			io.Copy(f, tr)
			f.Close()
			return p
		}
	}
	t.Fatalf("%s not in the archive: %v", want, names)
	return ""
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

// instruction is one line of a Dockerfile stage (continuations joined).
type instruction struct {
	op, args string
}

// runtimeStage is the last stage of the Dockerfile.
func runtimeStage(t *testing.T, path string) []instruction {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var all []instruction
	var cont string
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") || (l == "" && cont == "") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cont += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		l = cont + l
		cont = ""
		op, args, _ := strings.Cut(l, " ")
		all = append(all, instruction{strings.ToUpper(op), strings.TrimSpace(args)})
	}
	last := 0
	for i, in := range all {
		if in.op == "FROM" {
			last = i
		}
	}
	if all[last].args != "scratch" {
		t.Fatalf("the runtime stage is FROM %s, not scratch", all[last].args)
	}
	return all[last+1:]
}

func jsonArgs(t *testing.T, s string) []string {
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%q is not a JSON array (exec form): %v", s, err)
	}
	return v
}

func buildAndRunImage(t *testing.T, bin string) {
	for _, tool := range []string{"buildah", "unshare", "nsenter", "chroot", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed (scripts/test.sh installs buildah)", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the image test runs the container with namespaces and chroot: it needs root")
		}
		t.Skip("not root")
	}
	work := t.TempDir()
	store := []string{"--root", filepath.Join(work, "storage"), "--runroot", filepath.Join(work, "run"), "--storage-driver", "vfs"}
	buildah := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("buildah", append(store, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("buildah %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	// What the build stage makes, from this machine: the binary the release
	// script built, the CA bundle, an empty data directory.
	fromBuild := map[string]string{"/out/etlhub": bin, "/etc/ssl/certs/ca-certificates.crt": "/etc/ssl/certs/ca-certificates.crt",
		"/out/data": filepath.Join(work, "data")}
	os.Mkdir(fromBuild["/out/data"], 0o755)
	if _, err := os.Stat(fromBuild["/etc/ssl/certs/ca-certificates.crt"]); err != nil {
		fromBuild["/etc/ssl/certs/ca-certificates.crt"] = filepath.Join(work, "empty-ca.crt")
		os.WriteFile(fromBuild["/etc/ssl/certs/ca-certificates.crt"], nil, 0o644)
	}
	ctr := buildah("from", "scratch")
	for _, in := range runtimeStage(t, "Dockerfile") {
		switch in.op {
		case "COPY":
			f := strings.Fields(in.args)
			var opts []string
			from := ""
			for len(f) > 2 && strings.HasPrefix(f[0], "--") {
				if v, ok := strings.CutPrefix(f[0], "--from="); ok {
					from = v
				} else {
					opts = append(opts, f[0])
				}
				f = f[1:]
			}
			src := filepath.Join("..", f[0])
			if from != "" {
				if src = fromBuild[f[0]]; src == "" {
					t.Fatalf("COPY --from=%s %s: the test does not know what the build stage puts there", from, f[0])
				}
			}
			buildah(append(append([]string{"copy"}, opts...), ctr, src, f[1])...)
		case "USER":
			buildah("config", "--user", in.args, ctr)
		case "VOLUME":
			buildah("config", "--volume", in.args, ctr)
		case "EXPOSE":
			buildah("config", "--port", in.args, ctr)
		case "ENV":
			buildah("config", "--env", in.args, ctr)
		case "ENTRYPOINT":
			buildah("config", "--entrypoint", in.args, ctr)
		case "CMD":
			buildah("config", "--cmd", strings.Join(jsonArgs(t, in.args), " "), ctr)
		case "HEALTHCHECK":
			args := []string{"config"}
			rest := in.args
			for strings.HasPrefix(rest, "--") {
				var opt string
				opt, rest, _ = strings.Cut(rest, " ")
				k, v, _ := strings.Cut(strings.TrimPrefix(opt, "--"), "=")
				args = append(args, "--healthcheck-"+k, v)
				rest = strings.TrimSpace(rest)
			}
			cmd, ok := strings.CutPrefix(rest, "CMD ")
			if !ok {
				t.Fatalf("HEALTHCHECK %s: want the exec form", in.args)
			}
			args = append(args, "--healthcheck", "CMD "+strings.Join(jsonArgs(t, cmd), " "), ctr)
			buildah(args...)
		case "ARG", "LABEL":
		default:
			t.Fatalf("Dockerfile runtime stage: %s is not handled here", in.op)
		}
	}
	buildah("commit", "--format", "docker", "--quiet", ctr, "localhost/etlhub:test")
	archive := filepath.Join(work, "etlhub-image.tar")
	buildah("push", "--quiet", "localhost/etlhub:test", "docker-archive:"+archive+":localhost/etlhub:test")
	if fi, err := os.Stat(archive); err != nil || fi.Size() < 1<<20 {
		t.Fatalf("image archive: %v", err)
	}

	// The image's own config decides how it runs.
	var img struct {
		Docker struct {
			Config struct {
				User         string
				Env          []string
				Entrypoint   []string
				Cmd          []string
				Volumes      map[string]struct{}
				ExposedPorts map[string]struct{}
				Healthcheck  struct{ Test []string }
			} `json:"config"`
		}
	}
	if err := json.Unmarshal([]byte(buildah("inspect", "--type", "image", "localhost/etlhub:test")), &img); err != nil {
		t.Fatal(err)
	}
	cfg := img.Docker.Config
	t.Logf("image config: %+v", cfg)
	if cfg.User == "" || strings.HasPrefix(cfg.User, "0") || cfg.User == "root" {
		t.Fatalf("user %q: the image must not run as root", cfg.User)
	}
	if _, ok := cfg.Volumes["/data"]; !ok {
		t.Fatalf("volumes %v: no /data", cfg.Volumes)
	}
	if len(cfg.Healthcheck.Test) < 2 || cfg.Healthcheck.Test[0] != "CMD" {
		t.Fatalf("healthcheck %v", cfg.Healthcheck.Test)
	}
	run := buildah("from", "localhost/etlhub:test")
	root := buildah("mount", run)
	defer buildah("umount", run)
	userspec := cfg.User
	argv := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
	env := append(append([]string{}, cfg.Env...), "ETLHUB_TOKEN="+testToken)

	// Its own network namespace (so its fixed port 8080 is its own), the
	// image's root as /, the image's user.
	c := exec.Command("unshare", append([]string{"--net", "--fork", "sh", "-c", `ip link set lo up && exec "$@"`, "sh",
		"chroot", "--userspec=" + userspec, root}, argv...)...)
	c.Env = env
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var logs strings.Builder
	c.Stdout, c.Stderr = &logs, &logs
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	defer func() {
		syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}()
	inside := func(args ...string) ([]byte, error) {
		a := append([]string{"--net=/proc/" + fmt.Sprint(c.Process.Pid) + "/ns/net", "chroot", "--userspec=" + userspec, root}, args...)
		x := exec.Command("nsenter", a...)
		x.Env = cfg.Env
		return x.CombinedOutput()
	}
	var hc []byte
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		var err error
		if hc, err = inside(cfg.Healthcheck.Test[1:]...); err == nil {
			break
		}
		select {
		case <-done:
			t.Fatalf("the container exited:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("HEALTHCHECK never passed (%v: %s); container logs:\n%s", err, hc, logs.String())
		}
	}
	t.Logf("HEALTHCHECK %v: %s", cfg.Healthcheck.Test[1:], hc)
	if out, err := inside("/usr/local/bin/etlhub", "healthcheck", "--url", "http://127.0.0.1:8080/readyz"); err != nil {
		t.Fatalf("/readyz: %v %s", err, out)
	}
	// The store is in the volume, the user's, private.
	fi, err := os.Stat(filepath.Join(root, "data", "etlhub.db"))
	if err != nil {
		t.Fatalf("no SQLite file in /data: %v\n%s", err, logs.String())
	}
	if st := fi.Sys().(*syscall.Stat_t); fmt.Sprint(st.Uid) != strings.Split(userspec, ":")[0] || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("/data/etlhub.db: uid %d, mode %v", st.Uid, fi.Mode())
	}
}
